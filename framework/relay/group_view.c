/*
 * group_view.c -- the JSON of groups: GET /v2/groups, /v2/groups/{id},
 * /v2/groups/{id}/versions and /v2/groups/{id}/versions/{version}.
 *
 * A group is {id, apps, groups, pods, dependencies, version}, its apps and
 * subgroups found from the app ids (groups.c). Marathon's embed parameters
 * choose what is in it: group.apps, group.groups and group.pods (all three
 * when no embed is given), and for each app group.apps.<name> as
 * /v2/apps takes it (counts, deployments, tasks, lastTaskFailure,
 * taskStats, readiness; an app without any is its bare definition). An
 * embed of group.apps.<name> alone also embeds the apps, which is what
 * asking for it means. The same code shows a group as it was at a stored
 * version (history.c), where apps are their stored definitions.
 */
#include "relay.h"

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define G_APPS          (1u << 0)
#define G_GROUPS        (1u << 1)
#define G_PODS          (1u << 2)

#define EPOCH "1970-01-01T00:00:00.000Z"

struct view {
	struct relay *r;
	json_t *apps;                   /* app id -> definition */
	json_t *records;                /* group id -> record */
	bool live;                      /* relay's apps now: app embeds apply */
	unsigned groups;                /* G_* */
	unsigned embed;                 /* RELAY_EMBED_* of each app */
};

static unsigned group_embeds(const struct evkeyvalq *q, unsigned apps)
{
	const struct evkeyval *kv;
	unsigned bits = 0;
	bool any = false;

	TAILQ_FOREACH(kv, q, next) {
		if (strcmp(kv->key, "embed") != 0 && strcmp(kv->key, "embed[]") != 0)
			continue;
		any = true;
		if (strcmp(kv->value, "group.apps") == 0)
			bits |= G_APPS;
		else if (strcmp(kv->value, "group.groups") == 0)
			bits |= G_GROUPS;
		else if (strcmp(kv->value, "group.pods") == 0)
			bits |= G_PODS;
	}
	if (!any)
		return G_APPS | G_GROUPS | G_PODS;
	return bits | (apps != 0 ? G_APPS : 0);
}

/* the direct subgroup of `group` on the way to id, or NULL when id is a direct child */
static char *child_group(const char *group, const char *id)
{
	size_t n = strcmp(group, "/") == 0 ? 0 : strlen(group);
	const char *next = strchr(id + n + 1, '/');

	return next == NULL ? NULL : xstrndup(id, (size_t)(next - id));
}

static void add_child(json_t *names, const char *group, const char *id)
{
	char *c = child_group(group, id);

	if (c != NULL)
		json_object_set_new(names, c, json_true());
	free(c);
}

static json_t *app_json(struct view *v, const char *id, json_t *def)
{
	struct relay_app *app;

	if (v->live && v->embed != 0 && (app = relay_app_find(v->r, id)) != NULL)
		return relay_json_app(v->r, app, v->embed);
	return json_incref(def);
}

/* group id of the view; version: the newest version under it, or the given one */
static json_t *group_json(struct view *v, const char *id, const char *version)
{
	json_t *apps = json_array(), *subs = json_array(), *names = json_object(), *rec, *def, *g;
	const char *k, *newest = "", *av;
	char *p;

	json_object_foreach(v->apps, k, def) {
		if (!relay_path_under(k, id) || strcmp(k, id) == 0)
			continue;
		if ((av = bt_json_string(def, "version")) != NULL && strcmp(av, newest) > 0)
			newest = av;
		p = relay_path_parent(k);
		if (strcmp(p, id) == 0)
			json_array_append_new(apps, app_json(v, k, def));
		else
			add_child(names, id, k);
		free(p);
	}
	json_object_foreach(v->records, k, rec)
		if (relay_path_under(k, id) && strcmp(k, id) != 0)
			add_child(names, id, k);
	if (v->groups & G_GROUPS)
		json_object_foreach(names, k, def)
			json_array_append_new(subs, group_json(v, k, version));
	json_decref(names);
	rec = json_object_get(v->records, id);
	if (rec != NULL && (av = bt_json_string(rec, "version")) != NULL && strcmp(av, newest) > 0)
		newest = av;
	g = json_pack("{s:s, s:o, s:s}", "id", id, "dependencies",
	    rec ? json_incref(json_object_get(rec, "dependencies")) : json_array(),
	    "version", version ? version : newest[0] ? newest : EPOCH);
	if (v->groups & G_APPS)
		json_object_set(g, "apps", apps);
	if (v->groups & G_GROUPS)
		json_object_set(g, "groups", subs);
	json_decref(apps);
	json_decref(subs);
	if (v->groups & G_PODS)
		json_object_set_new(g, "pods", json_array());
	return g;
}

static void reply_live(struct relay *r, struct evhttp_request *req, const char *gid,
    const struct evkeyvalq *q)
{
	struct view v = { r, json_object(), relay_group_records(r), true, 0, 0 };
	struct relay_app *app;

	v.embed = relay_api_embeds(q, true);
	v.groups = group_embeds(q, v.embed);
	TAILQ_FOREACH(app, &r->apps, entry)
		json_object_set(v.apps, app->id, app->def);
	relay_api_reply(req, 200, group_json(&v, gid, NULL));
	json_decref(v.apps);
}

static void reply_version(struct relay *r, struct evhttp_request *req, const char *gid,
    const char *version, const struct evkeyvalq *q)
{
	json_t *at = relay_history_group_at(r, gid, version);
	struct view v = { r, NULL, NULL, false, 0, 0 };

	if (at == NULL) {
		bt_http_error(req, 404, "Group '%s' does not exist in version %s", gid, version);
		return;
	}
	v.apps = json_object_get(at, "apps");
	v.records = json_object_get(at, "records");
	v.groups = group_embeds(q, relay_api_embeds(q, true));
	relay_api_reply(req, 200, group_json(&v, gid, version));
	json_decref(at);
}

void relay_groups_get(struct relay *r, struct evhttp_request *req, const char *gid,
    const char *version, bool versions, const struct evkeyvalq *q)
{
	if (version != NULL)
		reply_version(r, req, gid, version, q);
	else if (!relay_group_exists(r, gid))
		bt_http_error(req, 404, "Group '%s' does not exist", gid);
	else if (versions)
		relay_api_reply(req, 200, relay_history_versions(r, gid));
	else
		reply_live(r, req, gid, q);
}
