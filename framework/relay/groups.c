/*
 * groups.c -- /v2/groups: Marathon's tree of apps.
 *
 * A group is a path: the apps /shop/web and /shop/db are in the group
 * /shop, which is in the root group "/". The tree is derived from the app
 * ids; only what an app id cannot say is stored (namespace "groups" of
 * relay.db): groups created empty, and each group's dependencies and
 * version.
 *
 * POST creates a group with its apps and subgroups (app ids relative to
 * the group are made absolute, so are relative dependencies); PUT changes
 * one: the apps and groups it lists replace the group's (an app left out
 * is stopped), {"scaleBy": f} multiplies every instance count under it,
 * rounding up; DELETE stops every app under it. Each is one deployment
 * (api.c relay_api_apply), which starts apps in dependency order: a
 * group's dependencies hold for every app inside it (deploy.c asks
 * relay_group_dependencies()).
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64    /* dependency chains longer than this are cycles */

#define parent_of relay_path_parent
#define under relay_path_under

/* ---- paths ---- */

char *relay_path_parent(const char *id)
{
	const char *slash = strrchr(id, '/');

	if (slash == NULL || slash == id)
		return xstrdup("/");
	return xstrndup(id, (size_t)(slash - id));
}

bool relay_path_under(const char *id, const char *group)
{
	size_t n = strlen(group);

	if (strcmp(group, "/") == 0)
		return true;
	return strncmp(id, group, n) == 0 && (id[n] == '\0' || id[n] == '/');
}

/* a path relative to base ("db", "../db", "./db") made absolute; caller frees */
static char *resolve(const char *base, const char *rel)
{
	char *joined, *out, *seg, *save = NULL;
	size_t n = 0;

	if (rel[0] == '/')
		return relay_app_id_absolute(rel);
	joined = xasprintf("%s/%s", base, rel);
	out = xcalloc(strlen(joined) + 2, 1);
	for (seg = strtok_r(joined, "/", &save); seg != NULL; seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (n > 0 && out[--n] != '/')
				;
			out[n] = '\0';
			continue;
		}
		n += (size_t)sprintf(out + n, "/%s", seg);
	}
	if (n == 0)
		strcpy(out, "/");
	free(joined);
	return out;
}

/* ---- the stored records ---- */

/* r->group_records: group id -> {"id", "dependencies", "version"}, read once from relay.db */
json_t *relay_group_records(struct relay *r)
{
	if (r->group_records == NULL)
		r->group_records = relay_state_groups_load(r);
	return r->group_records;
}

#define records_of relay_group_records

static json_t *record_of(struct relay *r, const char *id)
{
	return json_object_get(records_of(r), id);
}

static void record_put(struct relay *r, const char *id, json_t *deps, const char *version)
{
	json_t *rec = json_pack("{s:s, s:O, s:s}", "id", id, "dependencies", deps, "version",
	    version);

	relay_state_save_group(r, id, rec);
	relay_history_group(r, version, id, rec);
	json_object_set_new(records_of(r), id, rec);
}

/* the records of id and every group under it go (a change of version `at`) */
static void record_del(struct relay *r, const char *id, const char *at)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(records_of(r), tmp, k, v)
		if (under(k, id)) {
			relay_state_delete_group(r, k);
			relay_history_group(r, at, k, NULL);
			json_object_del(r->group_records, k);
		}
}

json_t *relay_group_dependencies(struct relay *r, const char *app_id)
{
	json_t *out = json_array(), *rec;
	char *g = parent_of(app_id), *p;

	for (;;) {
		if ((rec = record_of(r, g)) != NULL)
			json_array_extend(out, json_object_get(rec, "dependencies"));
		if (strcmp(g, "/") == 0)
			break;
		p = parent_of(g);
		free(g);
		g = p;
	}
	free(g);
	return out;
}

void relay_app_groups_release(struct relay *r)
{
	json_decref(r->group_records);
	r->group_records = NULL;
}

/* ---- the tree ---- */

bool relay_group_exists(struct relay *r, const char *id)
{
	struct relay_app *app;

	if (strcmp(id, "/") == 0 || record_of(r, id) != NULL)
		return true;
	TAILQ_FOREACH(app, &r->apps, entry)
		if (under(app->id, id) && strcmp(app->id, id) != 0)
			return true;
	return false;
}

/* ---- reading a group body ---- */

struct build {
	struct relay *r;
	struct evhttp_request *req;
	json_t *apps;                   /* app id -> normalised definition */
	json_t *groups;                 /* group id -> dependencies */
	json_t *pending;                /* the definitions so far, for service ports */
};

static void invalid(struct evhttp_request *req, const char *path, const char *msg)
{
	relay_api_reply_error(req, 422, json_pack("{s:s, s:[{s:s, s:[s]}]}", "message",
	    "Object is not valid", "details", "path", path, "errors", msg));
}

/* the strings of list resolved against base, or NULL after a reply */
static json_t *resolved_list(struct build *b, const json_t *list, const char *base,
    const char *path)
{
	json_t *out = json_array(), *v;
	char *abs;
	size_t i;

	if (list != NULL && !json_is_null(list) && !json_is_array(list)) {
		invalid(b->req, path, "error.expected.jsarray");
		json_decref(out);
		return NULL;
	}
	json_array_foreach(list, i, v) {
		if (!json_is_string(v)) {
			invalid(b->req, path, "error.expected.jsstring");
			json_decref(out);
			return NULL;
		}
		abs = resolve(base, json_string_value(v));
		json_array_append_new(out, json_string(abs));
		free(abs);
	}
	return out;
}

/* the error body of an app normalisation, its paths under prefix */
static json_t *prefixed(json_t *err, const char *prefix)
{
	json_t *details = json_object_get(err, "details"), *d;
	char *p;
	size_t i;

	json_array_foreach(details, i, d) {
		if (bt_json_string(d, "path") == NULL)
			continue;
		p = xasprintf("%s%s", prefix, bt_json_string(d, "path"));
		json_object_set_new(d, "path", json_string(p));
		free(p);
	}
	return err;
}

static int add_app(struct build *b, const json_t *a, const char *gid, const char *path)
{
	json_t *body, *deps, *def, *err;
	struct relay_app *old;
	char *id, *cause = NULL, *dpath = xasprintf("%s/dependencies", path);
	int status, rc = -1;

	if (!json_is_object(a) || bt_json_string(a, "id") == NULL) {
		invalid(b->req, json_is_object(a) ? dpath : path, json_is_object(a) ?
		    "error.path.missing" : "error.expected.jsobject");
		free(dpath);
		return -1;
	}
	id = resolve(gid, bt_json_string(a, "id"));
	if (!under(id, gid) || strcmp(id, gid) == 0) {
		char *msg = xasprintf("App '%s' is not a child of group '%s'", id, gid);
		invalid(b->req, path, msg);
		free(msg);
		goto out;
	}
	if (json_object_get(b->apps, id) != NULL) {
		invalid(b->req, path, "Duplicate app id in the group");
		goto out;
	}
	if ((deps = resolved_list(b, json_object_get(a, "dependencies"), gid, dpath)) == NULL)
		goto out;
	body = json_deep_copy(a);
	json_object_set_new(body, "id", json_string(id));
	json_object_set_new(body, "dependencies", deps);
	def = relay_app_normalize(b->r, body, NULL, NULL, &status, &err);
	json_decref(body);
	if (def == NULL) {
		relay_api_reply_error(b->req, status, prefixed(err, path));
		goto out;
	}
	old = relay_app_find(b->r, id);
	if (relay_app_assign_ports_with(b->r, def, old ? old->def : NULL, b->pending, &cause) != 0) {
		bt_http_error(b->req, 422, "%s", cause);
		free(cause);
		json_decref(def);
		goto out;
	}
	json_array_append(b->pending, def);
	json_object_set_new(b->apps, id, def);
	rc = 0;
out:
	free(dpath);
	free(id);
	return rc;
}

/* a group body: its apps and subgroups, recursively; -1 after a reply */
static int add_group(struct build *b, const json_t *g, const char *gid, const char *path)
{
	json_t *deps, *list, *item;
	char *parent = parent_of(gid), *p, *sub;
	size_t i;
	int rc = -1;

	p = xasprintf("%s/dependencies", path);
	deps = resolved_list(b, json_object_get(g, "dependencies"), parent, p);
	free(p);
	if (deps == NULL)
		goto out;
	json_object_set_new(b->groups, gid, deps);
	list = json_object_get(g, "apps");
	json_array_foreach(list, i, item) {
		p = xasprintf("%s/apps(%zu)", path, i);
		rc = add_app(b, item, gid, p);
		free(p);
		if (rc != 0)
			goto out;
	}
	list = json_object_get(g, "groups");
	json_array_foreach(list, i, item) {
		p = xasprintf("%s/groups(%zu)", path, i);
		sub = json_is_object(item) && bt_json_string(item, "id") ?
		    resolve(gid, bt_json_string(item, "id")) : NULL;
		if (sub == NULL || !under(sub, gid) || strcmp(sub, gid) == 0) {
			invalid(b->req, p, sub == NULL ? "error.path.missing" :
			    "Group is not a child of its parent group");
			rc = -1;
		} else {
			rc = add_group(b, item, sub, p);
		}
		free(p);
		free(sub);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	free(parent);
	return rc;
}

/* ---- dependency cycles ---- */

static json_t *deps_in(struct build *b, const char *app_id)
{
	json_t *def = json_object_get(b->apps, app_id), *out = json_array();
	struct relay_app *app = relay_app_find(b->r, app_id);
	char *g = parent_of(app_id), *p;

	json_array_extend(out, json_object_get(def != NULL ? def : app ? app->def : NULL,
	    "dependencies"));
	for (;;) {
		json_t *gd = json_object_get(b->groups, g), *rec = record_of(b->r, g);
		json_array_extend(out, gd != NULL ? gd : json_object_get(rec, "dependencies"));
		if (strcmp(g, "/") == 0)
			break;
		p = parent_of(g);
		free(g);
		g = p;
	}
	free(g);
	return out;
}

/* every app id the change and the running apps know */
static json_t *all_ids(struct build *b)
{
	json_t *ids = json_object(), *v;
	struct relay_app *app;
	const char *k;

	TAILQ_FOREACH(app, &b->r->apps, entry)
		json_object_set_new(ids, app->id, json_true());
	json_object_foreach(b->apps, k, v)
		json_object_set_new(ids, k, json_true());
	return ids;
}

static bool reaches(struct build *b, json_t *ids, const char *from, const char *target, int depth)
{
	json_t *deps, *d, *v;
	const char *k;
	size_t i;
	bool found = false;

	if (depth > MAX_DEPTH)
		return true;
	deps = deps_in(b, from);
	json_array_foreach(deps, i, d) {
		json_object_foreach(ids, k, v) {
			if (!under(k, json_string_value(d)) || strcmp(k, from) == 0)
				continue;
			if (strcmp(k, target) == 0 || reaches(b, ids, k, target, depth + 1)) {
				found = true;
				break;
			}
		}
		if (found)
			break;
	}
	json_decref(deps);
	return found;
}

static bool cyclic(struct build *b)
{
	json_t *ids = all_ids(b), *v;
	const char *k;
	bool cycle = false;

	json_object_foreach(b->apps, k, v)
		if ((cycle = reaches(b, ids, k, k, 0)))
			break;
	json_decref(ids);
	return cycle;
}

/* ---- changes ---- */

/*
 * The deployment putting the built group in place of group gid: its apps
 * created or changed, apps under gid it does not list stopped (replace),
 * the group records stored. NULL after a reply.
 */
static struct relay_deployment *apply(struct build *b, const struct evkeyvalq *q,
    const char *gid, bool replace)
{
	struct relay *r = b->r;
	struct relay_change *ch;
	struct relay_deployment *d;
	struct relay_app *app;
	json_t *def, *deps;
	const char *id;
	size_t n = 0;

	if (cyclic(b)) {
		invalid(b->req, "/", "Dependency graph has cyclic dependencies.");
		return NULL;
	}
	TAILQ_FOREACH(app, &r->apps, entry)
		n++;
	ch = xcalloc(n + json_object_size(b->apps) + 1, sizeof *ch);
	n = 0;
	json_object_foreach(b->apps, id, def) {
		ch[n].id = id;
		ch[n++].def = json_incref(def);
	}
	if (replace)
		TAILQ_FOREACH(app, &r->apps, entry)
			if (under(app->id, gid) && json_object_get(b->apps, app->id) == NULL)
				ch[n++].id = app->id;
	d = relay_api_apply(r, b->req, q, ch, n);
	free(ch);
	if (d == NULL)
		return NULL;
	if (replace)
		record_del(r, gid, d->version);
	json_object_foreach(b->groups, id, deps)
		if (strcmp(id, "/") != 0)
			record_put(r, id, deps, d->version);
	return d;
}

static void build_free(struct build *b)
{
	json_decref(b->apps);
	json_decref(b->groups);
	json_decref(b->pending);
}

static void create_group(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *parent)
{
	struct build b = { r, req, json_object(), json_object(), json_array() };
	json_t *body = relay_api_read_body(req);
	struct relay_deployment *d;
	char *gid = NULL;

	if (body == NULL)
		goto out;
	if (!json_is_object(body) || bt_json_string(body, "id") == NULL) {
		invalid(req, "/id", "error.path.missing");
		goto out;
	}
	gid = resolve(parent, bt_json_string(body, "id"));
	if (relay_group_exists(r, gid)) {
		bt_http_error(req, 409, "Group %s is already created. Use PUT to change this group.",
		    gid);
		goto out;
	}
	if (add_group(&b, body, gid, "") != 0 || (d = apply(&b, q, gid, false)) == NULL)
		goto out;
	log_info("group '%s' created with %zu app(s)", gid, json_object_size(b.apps));
	relay_api_reply_dr(req, 201, d, NULL);
out:
	free(gid);
	json_decref(body);
	build_free(&b);
}

/* PUT {"scaleBy": f}: every instance count under the group times f, rounded up */
static void scale_group(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *gid, double by)
{
	struct relay_change *ch;
	struct relay_deployment *d;
	struct relay_app *app;
	size_t n = 0;

	TAILQ_FOREACH(app, &r->apps, entry)
		n++;
	ch = xcalloc(n + 1, sizeof *ch);
	n = 0;
	TAILQ_FOREACH(app, &r->apps, entry) {
		if (!under(app->id, gid))
			continue;
		ch[n].id = app->id;
		ch[n].def = json_deep_copy(app->def);
		json_object_set_new(ch[n++].def, "instances",
		    json_integer((json_int_t)ceil(app->instances * by - 1e-9)));
	}
	if ((d = relay_api_apply(r, req, q, ch, n)) != NULL)
		relay_api_reply_dr(req, 200, d, NULL);
	free(ch);
}

/*
 * PUT {"version": V}, or PUT /v2/groups/{id}/versions/{V}: the group
 * becomes what it was at V (history.c) through a change like any PUT of
 * the group: its apps of V come back with those definitions, apps that
 * came later are stopped, the group records are those of V.
 */
static void rollback_group(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, const char *gid, const char *version)
{
	struct build b = { r, req, json_object(), json_object(), json_array() };
	json_t *at = relay_history_group_at(r, gid, version), *apps, *groups, *body = NULL, *v;
	json_t *recs, *own;
	struct relay_deployment *d;
	const char *k;

	if (at == NULL) {
		bt_http_error(req, 404, "Group '%s' does not exist in version %s", gid, version);
		goto out;
	}
	apps = json_array();
	groups = json_array();
	recs = json_object_get(at, "records");
	json_object_foreach(json_object_get(at, "apps"), k, v)
		json_array_append(apps, v);
	json_object_foreach(recs, k, v)
		if (strcmp(k, gid) != 0)
			json_array_append_new(groups, json_pack("{s:s, s:O}", "id", k,
			    "dependencies", json_object_get(v, "dependencies")));
	own = json_object_get(json_object_get(recs, gid), "dependencies");
	body = json_pack("{s:s, s:o, s:o, s:o}", "id", gid, "apps", apps, "groups", groups,
	    "dependencies", own != NULL ? json_incref(own) : json_array());
	if (add_group(&b, body, gid, "") != 0 || (d = apply(&b, q, gid, true)) == NULL)
		goto out;
	log_info("group '%s' rolled back to version %s", gid, version);
	relay_api_reply_dr(req, 200, d, NULL);
out:
	json_decref(body);
	json_decref(at);
	build_free(&b);
}

static void add_step(json_t *steps, json_t *actions)
{
	if (json_array_size(actions) > 0)
		json_array_append_new(steps, json_pack("{s:o}", "actions", actions));
	else
		json_decref(actions);
}

static json_t *action(const char *name, const char *app_id)
{
	return json_pack("{s:s, s:s}", "action", name, "app", app_id);
}

/*
 * The steps a change of group gid would take (?dryRun=true), as
 * deploy.c's plans: stops, starts, then scales and restarts (dependency
 * layers folded into that one step).
 */
static json_t *dry_steps(struct build *b, const char *gid, bool replace)
{
	json_t *steps = json_array(), *stop = json_array(), *start = json_array();
	json_t *rest = json_array(), *def;
	struct relay_app *app;
	const char *id;

	if (replace)
		TAILQ_FOREACH(app, &b->r->apps, entry)
			if (under(app->id, gid) && json_object_get(b->apps, app->id) == NULL)
				json_array_append_new(stop, action("StopApplication", app->id));
	json_object_foreach(b->apps, id, def) {
		app = relay_app_find(b->r, id);
		if (app == NULL) {
			json_array_append_new(start, action("StartApplication", id));
			json_array_append_new(rest, action("ScaleApplication", id));
		} else if (relay_app_config_changed(app->def, def)) {
			json_array_append_new(rest, action("RestartApplication", id));
		} else if (bt_json_number(def, "instances", 1) != app->instances) {
			json_array_append_new(rest, action("ScaleApplication", id));
		}
	}
	add_step(steps, stop);
	add_step(steps, start);
	add_step(steps, rest);
	return steps;
}

static void update_group(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *gid)
{
	struct build b = { r, req, json_object(), json_object(), json_array() };
	json_t *body = relay_api_read_body(req), *by;
	struct relay_deployment *d;

	if (body == NULL)
		goto out;
	if (!json_is_object(body)) {
		invalid(req, "/", "error.expected.jsobject");
		goto out;
	}
	if ((by = json_object_get(body, "scaleBy")) != NULL) {
		if (!json_is_number(by) || json_number_value(by) < 0)
			invalid(req, "/scaleBy", "error.expected.jsnumber");
		else if (!relay_group_exists(r, gid))
			bt_http_error(req, 404, "Group '%s' does not exist", gid);
		else
			scale_group(r, req, q, gid, json_number_value(by));
		goto out;
	}
	if (json_object_get(body, "version") != NULL) {
		if (!json_is_string(json_object_get(body, "version")))
			invalid(req, "/version", "error.expected.jsstring");
		else
			rollback_group(r, req, q, gid, bt_json_string(body, "version"));
		goto out;
	}
	if (add_group(&b, body, gid, "") != 0)
		goto out;
	if (bt_http_query_bool(q, "dryRun", 0) == 1) {
		relay_api_reply(req, 200, json_pack("{s:o}", "steps", dry_steps(&b, gid,
		    json_object_get(body, "apps") != NULL)));
		goto out;
	}
	/* without "apps" the group's apps stay as they are */
	if ((d = apply(&b, q, gid, json_object_get(body, "apps") != NULL)) == NULL)
		goto out;
	log_info("group '%s' updated", gid);
	relay_api_reply_dr(req, 200, d, NULL);
out:
	json_decref(body);
	build_free(&b);
}

static void delete_group(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *gid)
{
	struct build b = { r, req, json_object(), json_object(), json_array() };
	struct relay_deployment *d;

	if (!relay_group_exists(r, gid)) {
		bt_http_error(req, 404, "Group '%s' does not exist", gid);
	} else if ((d = apply(&b, q, gid, true)) != NULL) {
		log_info("group '%s' deleted", gid);
		relay_api_reply_dr(req, 200, d, NULL);
	}
	build_free(&b);
}

/*
 * "/g/versions" -> "/g" and *versions; "/g/versions/V" -> "/g" and
 * *version = "V" (also "/g/version/V", the older rollback path, for PUT);
 * "/versions" is the root's
 */
static void split_versions(char *gid, const char **version, bool *versions, bool put)
{
	char *slash = strrchr(gid, '/'), *prev;

	*version = NULL;
	*versions = false;
	if (strcmp(slash, "/versions") == 0) {
		*versions = true;
		*slash = '\0';
	} else if (slash != gid) {
		*slash = '\0';
		prev = strrchr(gid, '/');
		if (strcmp(prev, "/versions") == 0 || (put && strcmp(prev, "/version") == 0)) {
			*version = slash + 1;
			*prev = '\0';
		} else {
			*slash = '/';
		}
	}
	if (gid[0] == '\0')
		strcpy(gid, "/");
}

void relay_groups_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	const char *method = bt_http_method(req), *version;
	char *gid = relay_app_id_absolute(path + strlen("/v2/groups"));
	bool versions, put = strcmp(method, "PUT") == 0;

	split_versions(gid, &version, &versions, put);
	if (strcmp(method, "GET") == 0) {
		relay_groups_get(r, req, gid, version, versions, q);
	} else if (versions || (version != NULL && !put)) {
		relay_api_not_allowed(req);
	} else if (put && version != NULL) {
		rollback_group(r, req, q, gid, version);
	} else if (strcmp(method, "POST") == 0) {
		create_group(r, req, q, gid);
	} else if (put || strcmp(method, "PATCH") == 0) {
		update_group(r, req, q, gid);
	} else if (strcmp(method, "DELETE") == 0) {
		delete_group(r, req, q, gid);
	} else {
		relay_api_not_allowed(req);
	}
	free(gid);
}
