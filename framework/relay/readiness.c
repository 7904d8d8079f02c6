/*
 * readiness.c -- Marathon's readiness checks.
 *
 * A readiness check says when a new task may take traffic, which can be
 * later than when it is healthy (a cache warmed, a migration run). As in
 * Marathon, relay probes it itself and only while the task's app deploys:
 * once a task of the current config runs (and passes its health checks),
 * relay GETs http(s)://<task address>:<port named portName><path> every
 * intervalSeconds, each with timeoutSeconds, until the answer's status is
 * one of httpStatusCodesForReady. The task is then ready for good; a
 * deployment step (deploy.c) waits for every task of its apps to be ready.
 * Probes use their own HTTP client, so they never queue behind calls to
 * the master. Results are shown in the deployment's currentActions
 * (readinessCheckResults), with the last response when
 * preserveLastResponse is set.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

struct relay_readiness {
	struct relay *r;
	struct relay_task *t;
	struct event *timer;
	struct bt_http_call *call;
	json_t *result;                 /* the readinessCheckResults entry */
};

/* the app's readiness check (Marathon allows at most one), or NULL */
static const json_t *check_of(const struct relay_app *app)
{
	return json_array_get(json_object_get(app->def, "readinessChecks"), 0);
}

/* the host port of the task that the check's portName names, or 0 */
static uint64_t check_port(const struct relay_app *app, const struct relay_task *t,
    const json_t *check)
{
	bool host = relay_container_host_network(app->def);
	json_t *list = host ? json_object_get(app->def, "portDefinitions") :
	    json_object_get(json_object_get(app->def, "container"), "portMappings"), *p;
	const char *want = bt_json_string(check, "portName"), *name;
	size_t i, slot = 0;

	json_array_foreach(list, i, p) {
		if (!host && json_object_get(p, "hostPort") == NULL)
			continue;
		name = bt_json_string(p, "name");
		if (want != NULL && name != NULL && strcmp(want, name) == 0)
			return slot < t->nports ? t->ports[slot] : 0;
		slot++;
	}
	return 0;
}

static void probe(struct relay_readiness *rd);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	probe(arg);
}

static void again(struct relay_readiness *rd, double seconds)
{
	struct timeval tv = bt_timeval(seconds);

	if (rd->timer == NULL)
		rd->timer = evtimer_new(rd->r->base, timer_cb, rd);
	evtimer_add(rd->timer, &tv);
}

static bool status_ready(const json_t *check, int status)
{
	json_t *codes = json_object_get(check, "httpStatusCodesForReady"), *c;
	size_t i;

	if (json_array_size(codes) == 0)
		return status == 200;
	json_array_foreach(codes, i, c)
		if (json_integer_value(c) == status)
			return true;
	return false;
}

static void done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct relay_readiness *rd = arg;
	struct relay_app *app = relay_app_find(rd->r, rd->t->app_id);
	const json_t *check = app != NULL ? check_of(app) : NULL;
	bool ready;

	rd->call = NULL;
	if (check == NULL)
		return;
	ready = error == NULL && status_ready(check, status);
	json_object_set_new(rd->result, "ready", json_boolean(ready));
	if (json_is_true(json_object_get(check, "preserveLastResponse")))
		json_object_set_new(rd->result, "lastResponse", json_pack("{s:i, s:s, s:s%}",
		    "status", error != NULL ? 0 : status, "contentType",
		    bt_http_call_header(call, "Content-Type") ? bt_http_call_header(call,
		    "Content-Type") : "", "body", body ? body : "", body ? len : 0));
	if (ready) {
		log_info("task '%s' is ready", rd->t->id);
		rd->t->ready = true;
		relay_deployments_changed(rd->r);
		return;
	}
	log_debug("task '%s' is not ready yet: %s", rd->t->id,
	    error != NULL ? error : "status not ready");
	again(rd, bt_json_number(check, "intervalSeconds", 30));
}

static void probe(struct relay_readiness *rd)
{
	struct relay *r = rd->r;
	struct relay_app *app = relay_app_find(r, rd->t->app_id);
	const json_t *check = app != NULL ? check_of(app) : NULL;
	struct bt_http_request_opts o = { 0 };
	const char *path, *addr = rd->t->ip != NULL ? rd->t->ip : rd->t->host;
	uint64_t port;
	char *url;

	if (check == NULL || addr == NULL || rd->call != NULL)
		return;
	port = check_port(app, rd->t, check);
	path = bt_json_string(check, "path") ? bt_json_string(check, "path") : "/";
	url = xasprintf("%s://%s:%llu%s%s", strcmp(bt_json_string(check, "protocol") ?
	    bt_json_string(check, "protocol") : "HTTP", "HTTPS") == 0 ? "https" : "http", addr,
	    (unsigned long long)port, path[0] == '/' ? "" : "/", path);
	if (r->probes == NULL)
		r->probes = bt_http_client_new(r->base);
	o.url = url;
	o.timeout = bt_json_number(check, "timeoutSeconds", 10);
	o.connect_timeout = o.timeout;
	o.on_done = done_cb;
	o.arg = rd;
	rd->call = bt_http_request(r->probes, &o);
	free(url);
}

void relay_readiness_poll(struct relay *r, struct relay_app *app)
{
	const json_t *check = check_of(app);
	struct relay_readiness *rd;
	struct relay_task *t;
	bool checks = json_array_size(json_object_get(app->def, "healthChecks")) > 0;

	if (check == NULL)
		return;
	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (t->ready || t->readiness != NULL || t->goal != RELAY_GOAL_RUNNING ||
		    t->state != MESOS__V1__TASK_STATE__TASK_RUNNING || t->config_version == NULL ||
		    strcmp(t->config_version, app->config_version) != 0 ||
		    (checks && !(t->healthy_known && t->healthy)))
			continue;
		rd = xcalloc(1, sizeof *rd);
		rd->r = r;
		rd->t = t;
		rd->result = json_pack("{s:s, s:s, s:b}", "name", bt_json_string(check, "name") ?
		    bt_json_string(check, "name") : "readinessCheck", "taskId", t->id, "ready", 0);
		t->readiness = rd;
		probe(rd);
	}
}

json_t *relay_readiness_results(struct relay *r, const struct relay_app *app)
{
	json_t *out = json_array();
	const struct relay_task *t;

	RELAY_APP_TASKS_FOREACH(t, r, app->id)
		if (t->readiness != NULL)
			json_array_append(out, t->readiness->result);
	return out;
}

void relay_readiness_free(struct relay_task *t)
{
	struct relay_readiness *rd = t->readiness;

	if (rd == NULL)
		return;
	bt_http_call_cancel(rd->call);
	if (rd->timer != NULL)
		event_free(rd->timer);
	json_decref(rd->result);
	free(rd);
	t->readiness = NULL;
}

void relay_readiness_release(struct relay *r)
{
	if (r->probes != NULL)
		bt_http_client_free(r->probes);
	r->probes = NULL;
}
