/*
 * api.c -- the Marathon v2 REST API on common/http_server.
 *
 * Routes: /v2/apps (create, list, get, update, scale, delete, restart,
 * versions; app tasks are in api_tasks.c), /v2/tasks, /v2/deployments
 * (deploy.c), /v2/queue, /v2/groups (groups.c), /v2/info, /v2/leader,
 * /ping and /metrics; any other path is 404 {"message":"URI not found"}.
 * Every change goes through relay_api_apply(): the apps' locks, one
 * deployment, the new definitions, the keep-N loop. Errors use
 * Marathon's codes and bodies.
 */
#include "relay.h"

#include "ids.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- replies ---- */

static void leader_header(struct evhttp_request *req)
{
	struct relay *r = relay_main;
	char *leader = xasprintf("http://%s:%d", r->cfg.hostname, r->cfg.http_port);

	bt_http_add_header(req, "X-Marathon-Leader", leader);
	free(leader);
}

void relay_api_reply(struct evhttp_request *req, int code, json_t *body)
{
	char *text = json_dumps(body, RELAY_JSON_FLAGS);

	leader_header(req);
	bt_http_reply_take(req, code, "application/json", text, strlen(text));
	json_decref(body);
}

void relay_api_reply_buffer(struct evhttp_request *req, int code, struct evbuffer *body)
{
	leader_header(req);
	bt_http_reply_buffer(req, code, "application/json", body);
	evbuffer_free(body);
}

void relay_api_not_found(struct evhttp_request *req, const char *id)
{
	bt_http_error(req, 404, "App '%s' does not exist", id);
}

void relay_api_reply_error(struct evhttp_request *req, int code, json_t *err)
{
	bt_http_reply_json(req, code, err);
}

void relay_api_reply_dr(struct evhttp_request *req, int code, const struct relay_deployment *d,
    const char *location)
{
	bt_http_add_header(req, "Marathon-Deployment-Id", d->id);
	if (location != NULL)
		bt_http_add_header(req, "Location", location);
	relay_api_reply(req, code, json_pack("{s:s, s:s}", "deploymentId", d->id, "version", d->version));
}

void relay_api_not_allowed(struct evhttp_request *req)
{
	bt_http_error(req, 405, "HTTP 405 Method Not Allowed");
}

/* the body as JSON; on failure the reply is sent and NULL returned */
json_t *relay_api_read_body(struct evhttp_request *req)
{
	size_t len;
	const char *body = bt_http_body(req, &len);
	char *ct = bt_http_content_type(req), *cause = NULL;
	json_t *j = NULL;

	if (ct != NULL && strcmp(ct, "application/json") != 0 && strcmp(ct, "text/json") != 0) {
		bt_http_error(req, 415, "Unsupported media type '%s': send 'application/json'", ct);
		goto out;
	}
	if (len == 0) {
		relay_api_reply_error(req, 400, json_pack("{s:s, s:s}", "message", "Invalid JSON",
		    "details", "No content to map due to end-of-input"));
		goto out;
	}
	j = bt_json_parse(body, len, &cause);
	if (j == NULL) {
		relay_api_reply_error(req, 400, json_pack("{s:s, s:s}", "message", "Invalid JSON",
		    "details", cause ? cause : "unable to parse"));
		free(cause);
	}
out:
	free(ct);
	return j;
}

char *relay_api_now(void)
{
	char buf[32];

	bt_time_iso8601(bt_now(), buf);
	return xstrdup(buf);
}

/* Marathon's embed names; `tasks` implies deployments, `failures` is the old name of three */
static unsigned embed_bits(const char *name)
{
	static const struct { const char *name; unsigned bits; } names[] = {
		{ "counts", RELAY_EMBED_COUNTS }, { "deployments", RELAY_EMBED_DEPLOYMENTS },
		{ "tasks", RELAY_EMBED_TASKS | RELAY_EMBED_DEPLOYMENTS },
		{ "lastTaskFailure", RELAY_EMBED_FAILURE }, { "taskStats", RELAY_EMBED_STATS },
		{ "readiness", RELAY_EMBED_READINESS },
		{ "failures", RELAY_EMBED_TASKS | RELAY_EMBED_FAILURE | RELAY_EMBED_DEPLOYMENTS },
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(names[i].name, name) == 0)
			return names[i].bits;
	return 0;
}

unsigned relay_api_embeds(const struct evkeyvalq *q, bool group)
{
	static const char *const prefixes[] = { "group.apps.", "apps.", "app.", NULL };
	const struct evkeyval *kv;
	unsigned bits = 0;
	const char *v;
	int i;

	TAILQ_FOREACH(kv, q, next) {
		if (strcmp(kv->key, "embed") != 0 && strcmp(kv->key, "embed[]") != 0)
			continue;
		v = kv->value;
		for (i = 0; prefixes[i] != NULL && !bt_str_has_prefix(v, prefixes[i]); i++)
			;
		if (group && i != 0)
			continue;
		bits |= embed_bits(prefixes[i] != NULL ? v + strlen(prefixes[i]) : v);
	}
	return bits;
}

/* ---- app changes ---- */

void relay_api_stamp(json_t *def, const char *version, const char *config_version)
{
	json_object_set_new(def, "version", json_string(version));
	json_object_set_new(def, "versionInfo", json_pack("{s:s, s:s}", "lastScalingAt", version,
	    "lastConfigChangeAt", config_version));
}

void relay_api_app_changed(struct relay *r, struct relay_app *app, bool config)
{
	size_t i;

	if (config) {
		relay_app_reset_delay(app);
		for (i = 0; i < app->nrelaunch; i++)
			free(app->relaunch[i].instance_id);
		app->nrelaunch = 0;
	}
	relay_state_save_app(r, app);
	r->revive_wanted = true;
	relay_converge(r);
}

static void remove_app(struct relay *r, const char *id)
{
	struct relay_app *app = relay_app_find(r, id);
	struct relay_task *t;

	if (app == NULL)
		return;
	relay_state_delete_app(r, id);
	relay_app_remove(r, app);
	RELAY_APP_TASKS_FOREACH(t, r, id)
		if (t->goal == RELAY_GOAL_RUNNING)
			relay_task_kill(r, t);
	log_info("app '%s' deleted", id);
}

/* the new app of a change: stamped with version unless it keeps its own */
static struct relay_app *set_app(struct relay *r, struct relay_change *c, const char *version,
    bool *config)
{
	struct relay_app *old = relay_app_find(r, c->id);
	json_t *def = c->def;

	c->def = NULL;
	*config = old == NULL || c->restart || relay_app_config_changed(old->def, def);
	if (!c->keep_version)
		relay_api_stamp(def, version, *config ? version : old->config_version);
	return relay_app_set(r, def);
}

struct relay_deployment *relay_api_apply(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, struct relay_change *ch, size_t n)
{
	char **ids = xcalloc(n + 1, sizeof *ids);     /* copies: a removed app takes its id along */
	struct relay_deployment *d = NULL;
	struct relay_app **apps = xcalloc(n + 1, sizeof *apps);
	bool *config = xcalloc(n + 1, sizeof *config);
	char *version = relay_api_now();
	size_t i;

	for (i = 0; i < n; i++)
		ch[i].id = ids[i] = xstrdup(ch[i].id);
	if (!relay_deployment_lock(r, req, q, (const char *const *)ids, n))
		goto out;
	/* one transaction, committed before the caller answers: one fsync per change */
	relay_batch_begin(r);
	r->flush_now = true;
	d = relay_deployment_begin(r, version);
	for (i = 0; i < n; i++)
		relay_deployment_touch(r, d, ch[i].id);
	for (i = 0; i < n; i++) {
		if (ch[i].def == NULL) {
			remove_app(r, ch[i].id);
			relay_history_app(r, version, ch[i].id, NULL);
			continue;
		}
		apps[i] = set_app(r, &ch[i], version, &config[i]);
		if (strcmp(apps[i]->version, version) != 0)     /* back at an older version */
			relay_history_app(r, version, ch[i].id, apps[i]->version);
		log_info("app '%s' %s (%d instances)", apps[i]->id, ch[i].restart ? "restarted" :
		    config[i] ? "has a new config" : "scaled", apps[i]->instances);
		if (req != NULL && !ch[i].restart)
			relay_event_api_post(r, req, apps[i]->def);
	}
	relay_deployment_commit(r, d);
	for (i = 0; i < n; i++) {
		if (apps[i] != NULL)
			relay_api_app_changed(r, apps[i], config[i]);
		else if (relay_app_find(r, ch[i].id) == NULL)
			relay_event_app_terminated(r, ch[i].id);
	}
	relay_converge(r);
	relay_batch_end(r);
out:
	for (i = 0; i < n; i++) {
		json_decref(ch[i].def);
		free(ids[i]);
		ch[i].id = NULL;
	}
	free(version);
	free(config);
	free(apps);
	free(ids);
	return d;
}

static void create_app(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q)
{
	json_t *body = relay_api_read_body(req), *def, *err;
	struct relay_change ch = { 0 };
	struct relay_deployment *d;
	struct relay_app *app;
	char *cause = NULL, *location;
	int status;

	if (body == NULL)
		return;
	def = relay_app_normalize(r, body, NULL, NULL, &status, &err);
	json_decref(body);
	if (def == NULL) {
		relay_api_reply_error(req, status, err);
		return;
	}
	if (relay_app_find(r, bt_json_string(def, "id")) != NULL) {
		bt_http_error(req, 409, "An app with id [%s] already exists.", bt_json_string(def, "id"));
		json_decref(def);
		return;
	}
	if (relay_app_assign_ports(r, def, NULL, &cause) != 0) {
		bt_http_error(req, 422, "%s", cause);
		free(cause);
		json_decref(def);
		return;
	}
	ch.id = bt_json_string(def, "id");
	ch.def = def;
	if ((d = relay_api_apply(r, req, q, &ch, 1)) == NULL)
		return;
	app = TAILQ_LAST(&r->apps, relay_apps);        /* the app just created */
	location = xasprintf("/v2/apps%s", app->id);
	bt_http_add_header(req, "Location", location);
	bt_http_add_header(req, "Marathon-Deployment-Id", d->id);
	relay_api_reply(req, 201, relay_json_app(r, app, RELAY_EMBED_COUNTS |
	    RELAY_EMBED_DEPLOYMENTS));
	free(location);
}

/* the body for PUT: a rollback to a stored version, or the body itself */
static json_t *update_body(struct relay *r, struct evhttp_request *req, const char *id,
    json_t *body, bool *partial)
{
	json_t *stored;
	const char *v = bt_json_string(body, "version"), *k;
	json_t *val;

	if (json_object_get(body, "version") == NULL)
		return body;
	json_object_foreach(body, k, val)
		if (strcmp(k, "version") != 0 && strcmp(k, "id") != 0) {
			relay_api_reply_error(req, 422, json_pack("{s:s, s:[{s:s, s:[s]}]}", "message",
			    "Object is not valid", "details", "path", "/", "errors",
			    "The 'version' field may only be combined with the 'id' field."));
			json_decref(body);
			return NULL;
		}
	stored = v != NULL ? relay_state_app_version(r, id, v) : NULL;
	if (stored == NULL) {
		bt_http_error(req, 404, "App '%s' does not exist in version %s", id, v ? v : "");
		json_decref(body);
		return NULL;
	}
	json_decref(body);
	*partial = false;
	return stored;
}

/*
 * The new definition of app `id` from a PUT or PATCH body (taken); NULL
 * when the error reply was sent. Ports are assigned.
 */
json_t *relay_api_updated_def(struct relay *r, struct evhttp_request *req, const char *id,
    json_t *body, bool partial)
{
	struct relay_app *app = relay_app_find(r, id);
	json_t *def, *err;
	char *cause = NULL;
	int status;

	if ((body = update_body(r, req, id, body, &partial)) == NULL)
		return NULL;
	def = relay_app_normalize(r, body, partial && app ? app->def : NULL, id, &status, &err);
	json_decref(body);
	if (def == NULL) {
		relay_api_reply_error(req, status, err);
		return NULL;
	}
	if (relay_app_assign_ports(r, def, app ? app->def : NULL, &cause) != 0) {
		bt_http_error(req, 422, "%s", cause);
		free(cause);
		json_decref(def);
		return NULL;
	}
	return def;
}

static bool partial_update(struct evhttp_request *req, const struct evkeyvalq *q)
{
	return bt_http_query_bool(q, "partialUpdate", 1) != 0 ||
	    strcmp(bt_http_method(req), "PATCH") == 0;
}

static void update_app(struct relay *r, struct evhttp_request *req, const char *id,
    const struct evkeyvalq *q)
{
	json_t *body = relay_api_read_body(req);
	struct relay_change ch = { 0 };
	struct relay_deployment *d;
	char *location = NULL;

	if (body == NULL || (ch.def = relay_api_updated_def(r, req, id, body,
	    partial_update(req, q))) == NULL)
		return;
	if (relay_app_find(r, id) == NULL)
		location = xasprintf("/v2/apps%s", id);
	ch.id = id;
	if ((d = relay_api_apply(r, req, q, &ch, 1)) != NULL)
		relay_api_reply_dr(req, location ? 201 : 200, d, location);
	free(location);
}

/* PUT or PATCH /v2/apps with an array of apps: one deployment */
static void update_apps(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q)
{
	json_t *body = relay_api_read_body(req), *item;
	struct relay_change *ch;
	struct relay_deployment *d;
	size_t i, n, k;
	char **ids;

	if (body == NULL)
		return;
	if (!json_is_array(body)) {
		relay_api_reply_error(req, 400, json_pack("{s:s, s:[{s:s, s:[s]}]}", "message",
		    "Invalid JSON", "details", "path", "/", "errors", "error.expected.jsarray"));
		json_decref(body);
		return;
	}
	n = json_array_size(body);
	ch = xcalloc(n + 1, sizeof *ch);
	ids = xcalloc(n + 1, sizeof *ids);
	json_array_foreach(body, i, item) {
		if (!json_is_object(item) || bt_json_string(item, "id") == NULL) {
			relay_api_reply_error(req, 422, json_pack("{s:s, s:[{s:s, s:[s]}]}", "message",
			    "Object is not valid", "details", "path", "/id", "errors",
			    "error.path.missing"));
			goto out;
		}
		ids[i] = relay_app_id_absolute(bt_json_string(item, "id"));
		for (k = 0; k < i; k++)
			if (strcmp(ids[k], ids[i]) == 0) {
				bt_http_error(req, 422, "Duplicate app id '%s' in the list", ids[i]);
				goto out;
			}
		ch[i].id = ids[i];
		if ((ch[i].def = relay_api_updated_def(r, req, ids[i], json_incref(item),
		    partial_update(req, q))) == NULL)
			goto out;
	}
	if ((d = relay_api_apply(r, req, q, ch, n)) != NULL)
		relay_api_reply_dr(req, 200, d, NULL);
	n = 0;          /* the definitions were taken */
out:
	for (i = 0; i < n; i++)
		json_decref(ch[i].def);
	for (i = 0; i < json_array_size(body); i++)
		free(ids[i]);
	free(ids);
	free(ch);
	json_decref(body);
}

static void delete_app(struct relay *r, struct evhttp_request *req, const char *id,
    const struct evkeyvalq *q)
{
	struct relay_change ch = { 0 };
	struct relay_deployment *d;

	if (relay_app_find(r, id) == NULL) {
		relay_api_not_found(req, id);
		return;
	}
	ch.id = id;
	if ((d = relay_api_apply(r, req, q, &ch, 1)) != NULL)
		relay_api_reply_dr(req, 200, d, NULL);
}

static void restart_app(struct relay *r, struct evhttp_request *req, const char *id,
    const struct evkeyvalq *q)
{
	struct relay_app *app = relay_app_find(r, id);
	struct relay_change ch = { 0 };
	struct relay_deployment *d;

	if (app == NULL) {
		relay_api_not_found(req, id);
		return;
	}
	ch.id = id;
	ch.def = json_deep_copy(app->def);
	ch.restart = true;
	if ((d = relay_api_apply(r, req, q, &ch, 1)) != NULL)
		relay_api_reply_dr(req, 200, d, NULL);
}

/* ---- reading apps ---- */

/*
 * Label selectors (?label=): comma-separated, all must hold: `key`,
 * `key==value`, `key!=value`, `key in (a, b)`, `key notin (a, b)`. Terms
 * are [-A-Za-z0-9_.] and backslash-escaped characters; blanks between
 * tokens are skipped.
 */
struct selector_parser {
	const char *p;
	const json_t *labels;
};

static void skip_blanks(struct selector_parser *sp)
{
	while (*sp->p == ' ' || *sp->p == '\t')
		sp->p++;
}

static bool term_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_' || c == '.';
}

/* the next term, unescaped (caller frees), or NULL */
static char *term(struct selector_parser *sp)
{
	char *out = xmalloc(strlen(sp->p) + 1);
	size_t n = 0;

	skip_blanks(sp);
	while (*sp->p != '\0') {
		if (sp->p[0] == '\\' && sp->p[1] != '\0') {
			out[n++] = sp->p[1];
			sp->p += 2;
		} else if (term_char(*sp->p)) {
			out[n++] = *sp->p++;
		} else {
			break;
		}
	}
	out[n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

static bool token(struct selector_parser *sp, const char *tok)
{
	skip_blanks(sp);
	if (strncmp(sp->p, tok, strlen(tok)) != 0)
		return false;
	sp->p += strlen(tok);
	return true;
}

/* "(a, b)" holds value; -1 when malformed */
static int in_set(struct selector_parser *sp, const char *value)
{
	bool found = false;
	char *t;

	if (!token(sp, "("))
		return -1;
	if (token(sp, ")"))
		return 0;
	do {
		if ((t = term(sp)) == NULL)
			return -1;
		found |= value != NULL && strcmp(t, value) == 0;
		free(t);
	} while (token(sp, ","));
	return token(sp, ")") ? found : -1;
}

/* one selector: 1 holds, 0 does not, -1 malformed */
static int selector(struct selector_parser *sp)
{
	char *key = term(sp), *val;
	const char *value;
	int rc = -1;

	if (key == NULL)
		return -1;
	value = bt_json_string(sp->labels, key);
	skip_blanks(sp);
	if (token(sp, "==") || token(sp, "!=")) {
		bool eq = sp->p[-2] == '=';
		if ((val = term(sp)) != NULL)
			rc = (value != NULL && strcmp(value, val) == 0) == eq;
		free(val);
	} else if (strncmp(sp->p, "notin", 5) == 0 && !term_char(sp->p[5])) {
		sp->p += 5;
		rc = in_set(sp, value);
		rc = rc < 0 ? -1 : !rc;
	} else if (strncmp(sp->p, "in", 2) == 0 && !term_char(sp->p[2])) {
		sp->p += 2;
		rc = in_set(sp, value);
	} else {
		rc = json_object_get(sp->labels, key) != NULL;
	}
	free(key);
	return rc;
}

/* 1 when labels match every selector of sel, 0 when not, -1 when sel is malformed */
static int labels_match(const json_t *labels, const char *sel)
{
	struct selector_parser sp = { sel, labels };
	int all = 1, one;

	do {
		if ((one = selector(&sp)) < 0)
			return -1;
		all &= one;
	} while (token(&sp, ","));
	skip_blanks(&sp);
	return *sp.p == '\0' ? all : -1;
}

static bool app_selected(const struct relay_app *app, const struct evkeyvalq *q)
{
	const char *id = bt_http_query(q, "id"), *cmd = bt_http_query(q, "cmd");
	const char *label = bt_http_query(q, "label"), *acmd;

	if (id != NULL && strcasestr(app->id, id) == NULL)
		return false;
	if (cmd != NULL && ((acmd = bt_json_string(app->def, "cmd")) == NULL ||
	    strcasestr(acmd, cmd) == NULL))
		return false;
	if (label != NULL && labels_match(json_object_get(app->def, "labels"), label) != 1)
		return false;
	return true;
}

static void list_apps(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *prefix, const char *key)
{
	struct evbuffer *out;
	struct relay_app *app;
	const char *label = bt_http_query(q, "label");
	/* counts and deployments always; the apps of a group (an id ending in '*') as one app */
	unsigned embed = relay_api_embeds(q, false) | RELAY_EMBED_COUNTS | RELAY_EMBED_DEPLOYMENTS |
	    (prefix != NULL ? RELAY_EMBED_TASKS | RELAY_EMBED_FAILURE : 0);
	bool first = true;

	if (label != NULL && labels_match(NULL, label) < 0) {
		bt_http_error(req, 422, "Can not parse label selector %s", label);
		return;
	}
	out = evbuffer_new();
	evbuffer_add_printf(out, "{\"%s\":[", key);
	TAILQ_FOREACH(app, &r->apps, entry) {
		if (!app_selected(app, q))
			continue;
		if (prefix != NULL && !bt_str_has_prefix(app->id, prefix))
			continue;
		if (!first)
			evbuffer_add(out, ",", 1);
		first = false;
		relay_listing_add_app(r, out, app, embed);
	}
	evbuffer_add(out, "]}", 2);
	relay_api_reply_buffer(req, 200, out);
}

static void app_versions(struct relay *r, struct evhttp_request *req, const char *id,
    const char *version)
{
	json_t *def;

	if (relay_app_find(r, id) == NULL) {
		relay_api_not_found(req, id);
		return;
	}
	if (version == NULL) {
		relay_api_reply(req, 200, json_pack("{s:o}", "versions", relay_state_app_versions(r, id)));
		return;
	}
	def = relay_state_app_version(r, id, version);
	if (def == NULL) {
		bt_http_error(req, 404, "App '%s' does not exist in version %s", id, version);
		return;
	}
	relay_api_reply(req, 200, def);
}

/* "/x/tasks" -> suffix "tasks"; "/x/tasks/t" -> "tasks" and arg "t" */
static char *split_suffix(const char *rest, const char **suffix, const char **arg)
{
	static const char *names[] = { "tasks", "versions", "restart", NULL };
	char *id = xstrdup(rest), *p;
	int i;

	*suffix = *arg = NULL;
	for (i = 0; names[i] != NULL; i++) {
		size_t n = strlen(names[i]);
		size_t len = strlen(id);
		if (len > n + 1 && strcmp(id + len - n, names[i]) == 0 && id[len - n - 1] == '/') {
			id[len - n - 1] = '\0';
			*suffix = names[i];
			return id;
		}
	}
	p = strrchr(id, '/');
	if (p != NULL && p != id) {
		char *q = p - 1;
		while (q > id && *q != '/')
			q--;
		if (strncmp(q, "/tasks/", 7) == 0 && q + 6 == p) {
			*suffix = "tasks";
			*arg = rest + (p + 1 - id);
			*q = '\0';
		} else if (strncmp(q, "/versions/", 10) == 0 && q + 9 == p) {
			*suffix = "versions";
			*arg = rest + (p + 1 - id);
			*q = '\0';
		}
	}
	return id;
}

static void one_app(struct relay *r, struct evhttp_request *req, const char *raw,
    const struct evkeyvalq *q)
{
	const char *method = bt_http_method(req), *suffix, *arg;
	char *rawid = split_suffix(raw, &suffix, &arg);
	char *id = relay_app_id_absolute(rawid);
	struct relay_app *app;

	if (suffix == NULL && bt_str_has_suffix(id, "/*") && strcmp(method, "GET") == 0) {
		id[strlen(id) - 1] = '\0';
		list_apps(r, req, q, id, "*");
	} else if (suffix != NULL && strcmp(suffix, "tasks") == 0 && arg == NULL) {
		relay_api_app_tasks(r, req, id, q);
	} else if (suffix != NULL && strcmp(suffix, "tasks") == 0) {
		relay_api_app_task(r, req, id, arg, q);
	} else if (suffix != NULL && strcmp(suffix, "versions") == 0) {
		if (strcmp(method, "GET") == 0)
			app_versions(r, req, id, arg);
		else
			relay_api_not_allowed(req);
	} else if (suffix != NULL && strcmp(suffix, "restart") == 0) {
		if (strcmp(method, "POST") == 0)
			restart_app(r, req, id, q);
		else
			relay_api_not_allowed(req);
	} else if (strcmp(method, "GET") == 0) {
		app = relay_app_find(r, id);
		if (app == NULL)
			relay_api_not_found(req, id);
		else
			relay_api_reply(req, 200, json_pack("{s:o}", "app", relay_json_app(r, app,
			    relay_api_embeds(q, false) | RELAY_EMBED_COUNTS | RELAY_EMBED_DEPLOYMENTS |
			    RELAY_EMBED_TASKS | RELAY_EMBED_FAILURE)));
	} else if (strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
		update_app(r, req, id, q);
	} else if (strcmp(method, "DELETE") == 0) {
		delete_app(r, req, id, q);
	} else {
		relay_api_not_allowed(req);
	}
	free(id);
	free(rawid);
}

static void apps_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	const char *rest = path + strlen("/v2/apps"), *method = bt_http_method(req);

	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		if (strcmp(method, "GET") == 0)
			list_apps(r, req, q, NULL, "apps");
		else if (strcmp(method, "POST") == 0)
			create_app(r, req, q);
		else if (strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
			update_apps(r, req, q);
		else
			relay_api_not_allowed(req);
		return;
	}
	if (rest[0] != '/') {
		bt_http_error(req, 404, "URI not found");
		return;
	}
	one_app(r, req, rest, q);
}

int relay_api_start(struct relay *r, char **cause)
{
	r->http = bt_http_server_new(r->base, r->cfg.http_address, r->cfg.http_port, cause);
	if (r->http == NULL)
		return -1;
	if (r->cfg.http_port == 0)
		r->cfg.http_port = bt_http_server_port(r->http);
	bt_http_server_route(r->http, "/v2/apps", BT_ROUTE_PREFIX, apps_cb, r);
	bt_http_server_route(r->http, "/v2/tasks", BT_ROUTE_PREFIX, relay_api_tasks_cb, r);
	bt_http_server_route(r->http, "/v2/deployments", BT_ROUTE_PREFIX, relay_api_deployments_cb, r);
	bt_http_server_route(r->http, "/v2/queue", BT_ROUTE_PREFIX, relay_api_queue_cb, r);
	bt_http_server_route(r->http, "/v2/groups", BT_ROUTE_PREFIX, relay_groups_cb, r);
	bt_http_server_route(r->http, "/v2/info", BT_ROUTE_EXACT, relay_api_info_cb, r);
	bt_http_server_route(r->http, "/v2/leader", BT_ROUTE_EXACT, relay_api_leader_cb, r);
	bt_http_server_route(r->http, "/ping", BT_ROUTE_EXACT, relay_api_ping_cb, r);
	bt_http_server_route(r->http, "/metrics", BT_ROUTE_EXACT, relay_api_metrics_cb, r);
	bt_http_server_route(r->http, "/v2/events", BT_ROUTE_EXACT, relay_events_cb, r);
	bt_http_server_fallback(r->http, relay_api_fallback_cb, r);
	return 0;
}

