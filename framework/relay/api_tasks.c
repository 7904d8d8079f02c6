/*
 * api_tasks.c -- the REST API beyond apps: app tasks and their kills,
 * /v2/tasks, /v2/queue, /v2/info,
 * /v2/leader, /ping, /metrics and the 404 for unknown paths.
 */
#include "relay.h"

#include <event2/buffer.h>

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- tasks ---- */

/* the change scaling app down by n after kills */
static void scale_change(struct relay_change *ch, const struct relay_app *app, int n)
{
	int instances = app->instances - n;

	ch->id = app->id;
	ch->def = json_deep_copy(app->def);
	json_object_set_new(ch->def, "instances", json_integer(instances < 0 ? 0 : instances));
}

/* scale the app down by n after kills: the deployment (locked already) */
static struct relay_deployment *scale_by(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, struct relay_app *app, int n)
{
	struct relay_change ch = { 0 };

	scale_change(&ch, app, n);
	return relay_api_apply(r, req, q, &ch, 1);
}

static int kill_flags(struct evhttp_request *req, const struct evkeyvalq *q, int *scale)
{
	int wipe = bt_http_query_bool(q, "wipe", 0);

	*scale = bt_http_query_bool(q, "scale", 0);
	if (*scale < 0 || wipe < 0) {
		bt_http_error(req, 400, "scale and wipe must be true or false");
		return -1;
	}
	if (*scale && wipe) {
		bt_http_error(req, 400, "You cannot use scale and wipe at the same time.");
		return -1;
	}
	return 0;
}

void relay_api_app_tasks(struct relay *r, struct evhttp_request *req, const char *id,
    const struct evkeyvalq *q)
{
	struct relay_app *app = relay_app_find(r, id);
	const char *method = bt_http_method(req), *host = bt_http_query(q, "host");
	json_t *list = json_array();
	struct relay_task *t;
	int scale, killed = 0;

	if (app == NULL) {
		json_decref(list);
		relay_api_not_found(req, id);
		return;
	}
	if (strcmp(method, "GET") == 0) {
		RELAY_APP_TASKS_FOREACH(t, r, id)
			json_array_append_new(list, relay_json_task(r, t, true));
		relay_api_reply(req, 200, json_pack("{s:o}", "tasks", list));
		return;
	}
	if (strcmp(method, "DELETE") != 0 || kill_flags(req, q, &scale) != 0 ||
	    (scale && !relay_deployment_lock(r, req, q, (const char *const *)&app->id, 1))) {
		if (strcmp(method, "DELETE") != 0)
			relay_api_not_allowed(req);
		json_decref(list);
		return;
	}
	RELAY_APP_TASKS_FOREACH(t, r, id) {
		if (t->goal != RELAY_GOAL_RUNNING ||
		    (host != NULL && strcmp(host, "*") != 0 && strcmp(host, t->host ? t->host : "")))
			continue;
		json_array_append_new(list, relay_json_task(r, t, false));
		relay_task_kill(r, t);
		killed++;
	}
	if (scale) {
		json_decref(list);
		relay_api_reply_dr(req, 200, scale_by(r, req, q, app, killed), NULL);
		return;
	}
	relay_converge(r);
	relay_api_reply(req, 200, json_pack("{s:o}", "tasks", list));
}

void relay_api_app_task(struct relay *r, struct evhttp_request *req, const char *id,
    const char *task_id, const struct evkeyvalq *q)
{
	struct relay_app *app = relay_app_find(r, id);
	struct relay_task *t = relay_task_find(r, task_id);
	const char *method = bt_http_method(req);
	json_t *j;
	int scale;

	if (app == NULL) {
		relay_api_not_found(req, id);
		return;
	}
	if (t == NULL || strcmp(t->app_id, id) != 0) {
		bt_http_error(req, 404, "Task '%s' does not exist", task_id);
		return;
	}
	if (strcmp(method, "GET") == 0) {
		relay_api_reply(req, 200, json_pack("{s:o}", "task", relay_json_task(r, t, true)));
		return;
	}
	if (strcmp(method, "DELETE") != 0) {
		relay_api_not_allowed(req);
		return;
	}
	if (kill_flags(req, q, &scale) != 0 ||
	    (scale && !relay_deployment_lock(r, req, q, (const char *const *)&app->id, 1)))
		return;
	j = relay_json_task(r, t, false);
	relay_task_kill(r, t);
	if (scale) {
		json_decref(j);
		relay_api_reply_dr(req, 200, scale_by(r, req, q, app, 1), NULL);
		return;
	}
	relay_converge(r);
	relay_api_reply(req, 200, json_pack("{s:o}", "task", j));
}

static bool status_selected(const struct relay_task *t, const void *arg)
{
	const struct evkeyvalq *q = arg;
	const struct evkeyval *kv;
	bool any = false;
	const char *state = relay_task_state_name(t->state);

	TAILQ_FOREACH(kv, q, next) {
		if (strcmp(kv->key, "status") != 0 && strcmp(kv->key, "status[]") != 0)
			continue;
		any = true;
		if (strlen(state) > 5 && strcasecmp(state + 5, kv->value) == 0)
			return true;
	}
	return !any;
}

/* the kills of POST /v2/tasks/delete?scale=true: one deployment scaling every app down */
static struct relay_deployment *scale_apps(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, json_t *killed)
{
	struct relay_change *ch = xcalloc(json_object_size(killed) + 1, sizeof *ch);
	struct relay_deployment *d;
	const char *id;
	json_t *n;
	size_t k = 0;

	json_object_foreach(killed, id, n)
		scale_change(&ch[k++], relay_app_find(r, id), (int)json_integer_value(n));
	d = relay_api_apply(r, req, q, ch, k);
	free(ch);
	return d;
}

/* the apps of the tasks to kill (each with how many), or NULL when a task is unknown */
static json_t *apps_of(struct relay *r, struct evhttp_request *req, const json_t *ids)
{
	json_t *apps = json_object(), *id;
	struct relay_task *t;
	size_t i;

	json_array_foreach(ids, i, id) {
		t = json_is_string(id) ? relay_task_find(r, json_string_value(id)) : NULL;
		if (t == NULL) {
			bt_http_error(req, 400, "Invalid task id '%s'. [unknown task]",
			    json_is_string(id) ? json_string_value(id) : "?");
			json_decref(apps);
			return NULL;
		}
		if (t->goal == RELAY_GOAL_RUNNING && relay_app_find(r, t->app_id) != NULL)
			json_object_set_new(apps, t->app_id, json_integer(1 +
			    json_integer_value(json_object_get(apps, t->app_id))));
	}
	return apps;
}

static void delete_tasks(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q)
{
	json_t *body, *ids, *id, *list = json_array(), *apps = NULL, *v;
	struct relay_task *t;
	struct relay_deployment *d = NULL;
	const char **locked = NULL, *aid;
	size_t i, n = 0;
	int scale;

	if (kill_flags(req, q, &scale) != 0 || (body = relay_api_read_body(req)) == NULL) {
		json_decref(list);
		return;
	}
	ids = json_object_get(body, "ids");
	if ((apps = apps_of(r, req, ids)) == NULL)
		goto out;
	locked = xcalloc(json_object_size(apps) + 1, sizeof *locked);
	json_object_foreach(apps, aid, v)
		locked[n++] = aid;
	if (scale && !relay_deployment_lock(r, req, q, locked, n))
		goto out;
	json_array_foreach(ids, i, id) {
		t = relay_task_find(r, json_string_value(id));
		if (t->goal != RELAY_GOAL_RUNNING)
			continue;
		json_array_append_new(list, relay_json_task(r, t, false));
		relay_task_kill(r, t);
	}
	if (scale && n > 0)
		d = scale_apps(r, req, q, apps);
	relay_converge(r);
	if (d != NULL)
		relay_api_reply_dr(req, 200, d, NULL);
	else
		relay_api_reply(req, 200, json_pack("{s:O}", "tasks", list));
out:
	free(locked);
	json_decref(apps);
	json_decref(list);
	json_decref(body);
}

void relay_api_tasks_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	const char *method = bt_http_method(req), *accept = bt_http_header(req, "Accept");
	struct evbuffer *out;

	if (strcmp(path, "/v2/tasks/delete") == 0 && strcmp(method, "POST") == 0) {
		delete_tasks(r, req, q);
		return;
	}
	if (strcmp(path, "/v2/tasks") != 0) {
		bt_http_error(req, 404, "URI not found");
		return;
	}
	if (strcmp(method, "GET") != 0) {
		relay_api_not_allowed(req);
		return;
	}
	/* Marathon 1.10 serves the old text/plain listing only behind a deprecated feature */
	if (accept != NULL && strstr(accept, "text/plain") != NULL &&
	    strstr(accept, "json") == NULL && strstr(accept, "*/*") == NULL) {
		bt_http_error(req, 406, "HTTP 406 Not Acceptable");
		return;
	}
	out = evbuffer_new();
	relay_listing_tasks(r, out, bt_http_query(q, "status") != NULL ||
	    bt_http_query(q, "status[]") != NULL ? status_selected : NULL, q);
	relay_api_reply_buffer(req, 200, out);
}

/* ---- queue, info, leader, ping, metrics ---- */

void relay_api_queue_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	const char *method = bt_http_method(req);
	char *rawid, *id;
	struct relay_app *app;

	if (strcmp(path, "/v2/queue") == 0 && strcmp(method, "GET") == 0) {
		json_t *queue = relay_json_queue(r);
		relay_queue_embed(r, queue, q);
		relay_api_reply(req, 200, queue);
		return;
	}
	if (!bt_str_has_suffix(path, "/delay") || strcmp(method, "DELETE") != 0 ||
	    strlen(path) <= strlen("/v2/queue/delay")) {
		bt_http_error(req, 404, "URI not found");
		return;
	}
	rawid = xstrndup(path + strlen("/v2/queue"), strlen(path) - strlen("/v2/queue/delay"));
	id = relay_app_id_absolute(rawid);
	app = relay_app_find(r, id);
	if (app == NULL) {
		relay_api_not_found(req, id);
	} else {
		relay_app_reset_delay(app);
		r->revive_wanted = true;
		relay_converge(r);
		bt_http_reply(req, 204, NULL, NULL, 0);
	}
	free(id);
	free(rawid);
}

void relay_api_info_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	relay_api_reply(req, 200, relay_json_info(arg));
}

void relay_api_leader_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	char *leader;

	if (strcmp(bt_http_method(req), "GET") != 0) {
		relay_api_not_allowed(req);
		return;
	}
	leader = xasprintf("%s:%d", r->cfg.hostname, r->cfg.http_port);
	relay_api_reply(req, 200, json_pack("{s:s}", "leader", leader));
	free(leader);
}

void relay_api_ping_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	const char *accept = bt_http_header(req, "Accept");

	if (accept != NULL && strcmp(accept, "application/json") == 0)
		bt_http_reply(req, 200, "application/json", "\"pong\"", 6);
	else
		bt_http_reply(req, 200, "text/plain", "pong", 4);
}

void relay_api_metrics_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	relay_api_reply(req, 200, relay_json_metrics(arg));
}

void relay_api_fallback_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	bt_http_error(req, 404, "URI not found");
}
