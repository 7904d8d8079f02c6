/*
 * health.c -- relay's side of health checks: what agents run, what they
 * reported, and when an unhealthy task is killed.
 *
 * relay never checks a task itself: every check runs on the agent next to
 * the task, so checking scales with the agents, not with relay. The
 * TaskInfo carries the app's Mesos check (or its first check) as a Mesos
 * HealthCheck, and the app's complete list of checks, ports resolved to
 * the task's host ports, as JSON in the variable BUTTE_HEALTH_CHECKS of
 * HealthCheck.command.environment. A butte agent that finds that list
 * runs every check in it and leaves kills to relay.
 *
 * Agents report TASK_RUNNING updates with TaskStatus.healthy and reason
 * REASON_TASK_HEALTH_CHECK_STATUS_UPDATED: healthy when every check
 * passes, unhealthy with the message "health check failed N consecutive
 * times: <why>" (or "health check #i failed ..." when there are several)
 * for each counted failure ("health check #i passed" when one of several
 * recovers while another still fails). relay keeps Marathon's result per check
 * (alive, consecutiveFailures, firstSuccess, lastSuccess, lastFailure,
 * lastFailureCause) for /v2 task JSON, and the task's overall health for
 * tasksHealthy/tasksUnhealthy.
 *
 * A task is killed and replaced once one of its checks failed
 * maxConsecutiveFailures times in a row (0: never), and only while relay
 * is subscribed, the task is running and reachable (an unreachable task is
 * no longer relay's), its grace period since it started has passed or it
 * passed its checks before (as in Marathon and Mesos, the grace period
 * covers only a task that has not been healthy yet), and the report is
 * fresh: updates an agent held back while it was cut off from the master
 * never kill.
 *
 * health_changed(), check_failed() and unhealthy_kill() are the points
 * where the event bus hears of a health change, a failed check and an
 * unhealthy kill.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_ENV      "BUTTE_HEALTH_CHECKS"
#define STALE_SLACK     10.0    /* seconds a failure report may lag beyond two intervals */
#define NEVER_KILL      2147483647

struct relay_check_result {
	bool alive;
	int consecutive;
	double first_success, last_success, last_failure;       /* wall clock; 0: never */
	char *cause;
};

struct relay_health {
	size_t n;
	struct relay_check_result *res;
};

/* ---- the TaskInfo's HealthCheck ---- */

static bool is_mesos_check(const json_t *hc)
{
	const char *proto = bt_json_string(hc, "protocol");

	return proto != NULL && (bt_str_has_prefix(proto, "MESOS_") || strcmp(proto, "COMMAND") == 0);
}

/* the port a check targets: its port, or the task's host port at its portIndex */
static json_int_t check_port(const json_t *hc, const uint64_t *ports, size_t nports)
{
	json_t *port = json_object_get(hc, "port");
	json_int_t idx;

	if (port != NULL)
		return json_integer_value(port);
	idx = json_integer_value(json_object_get(hc, "portIndex"));
	return idx >= 0 && (size_t)idx < nports ? (json_int_t)ports[idx] : 0;
}

static const char *command_value(const json_t *hc)
{
	const char *v = bt_json_string(json_object_get(hc, "command"), "value");

	return v != NULL ? v : "";
}

/* every check of the app for the agent, ports resolved; caller frees */
static char *agent_list(const json_t *checks, const uint64_t *ports, size_t nports)
{
	json_t *list = json_array(), *hc, *item;
	size_t i;
	char *text;

	json_array_foreach(checks, i, hc) {
		item = json_deep_copy(hc);
		json_object_del(item, "portIndex");
		json_object_set_new(item, "port", json_integer(check_port(hc, ports, nports)));
		if (json_object_get(hc, "command") != NULL)
			json_object_set_new(item, "command", json_string(command_value(hc)));
		json_array_append_new(list, item);
	}
	text = bt_json_dump(list);
	json_decref(list);
	return text;
}

/* the app's health checks as the TaskInfo's Mesos HealthCheck (JSON), or NULL */
json_t *relay_health_task_check(const struct relay_app *app, const uint64_t *ports, size_t nports)
{
	json_t *checks = json_object_get(app->def, "healthChecks"), *hc, *out, *item;
	const char *proto;
	double failures;
	char *list;
	size_t i;

	if (json_array_size(checks) == 0)
		return NULL;
	hc = json_array_get(checks, 0);
	json_array_foreach(checks, i, item)
		if (is_mesos_check(item)) {
			hc = item;
			break;
		}
	proto = bt_json_string(hc, "protocol") ? bt_json_string(hc, "protocol") : "HTTP";
	failures = bt_json_number(hc, "maxConsecutiveFailures", 3);
	list = agent_list(checks, ports, nports);
	out = json_pack("{s:f, s:f, s:f, s:f, s:I, s:{s:b, s:s, s:{s:[{s:s, s:s}]}}}",
	    "delay_seconds", bt_json_number(hc, "delaySeconds", 15),
	    "interval_seconds", bt_json_number(hc, "intervalSeconds", 60),
	    "timeout_seconds", bt_json_number(hc, "timeoutSeconds", 20),
	    "grace_period_seconds", bt_json_number(hc, "gracePeriodSeconds", 300),
	    "consecutive_failures", (json_int_t)(failures > 0 ? failures : NEVER_KILL),
	    "command", "shell", 1, "value", strcmp(proto, "COMMAND") == 0 ? command_value(hc) : "",
	    "environment", "variables", "name", HEALTH_ENV, "value", list);
	free(list);
	if (strcmp(proto, "COMMAND") == 0) {
		json_object_set_new(out, "type", json_string("COMMAND"));
	} else if (strstr(proto, "TCP") != NULL) {
		json_object_set_new(out, "type", json_string("TCP"));
		json_object_set_new(out, "tcp", json_pack("{s:I}", "port",
		    check_port(hc, ports, nports)));
	} else {
		json_object_set_new(out, "type", json_string("HTTP"));
		json_object_set_new(out, "http", json_pack("{s:I, s:s, s:s}", "port",
		    check_port(hc, ports, nports), "path", bt_json_string(hc, "path") ?
		    bt_json_string(hc, "path") : "/", "scheme", strstr(proto, "HTTPS") != NULL ?
		    "https" : "http"));
	}
	return out;
}

/* ---- event points: the event bus (events.c) publishes from here ---- */

/* the task's overall health changed (health_status_changed_event) */
static void health_changed(struct relay *r, const struct relay_task *t)
{
	log_info("task '%s' of app '%s' is now %s", t->id, t->app_id,
	    t->healthy ? "healthy" : "unhealthy");
	relay_event_health_changed(r, t, t->healthy);
}

/* check idx of the task failed once more (failed_health_check_event) */
static void check_failed(struct relay *r, const struct relay_task *t, const json_t *hc,
    const struct relay_check_result *res)
{
	log_debug("task '%s' failed its health check %d times in a row: %s", t->id,
	    res->consecutive, res->cause != NULL ? res->cause : "");
	relay_event_failed_health_check(r, t, hc);
}

/* the task is about to be killed for its health (unhealthy_instance_kill_event) */
static void unhealthy_kill(struct relay *r, const struct relay_task *t, const char *reason)
{
	log_info("killing unhealthy task '%s' of app '%s': %s", t->id, t->app_id, reason);
	relay_event_unhealthy_kill(r, t, reason);
}

/* ---- results ---- */

static struct relay_health *health_of(struct relay_task *t, size_t n)
{
	struct relay_health *h = t->health;

	if (n == 0)
		n = 1;
	if (h == NULL) {
		h = t->health = xcalloc(1, sizeof *h);
		h->res = xcalloc(n, sizeof *h->res);
		h->n = n;
	} else if (h->n < n) {
		h->res = xreallocarray(h->res, n, sizeof *h->res);
		memset(&h->res[h->n], 0, (n - h->n) * sizeof *h->res);
		h->n = n;
	}
	return h;
}

/* "health check [#i ]failed N consecutive times: <why>": the why, or NULL */
static const char *parse_failure(const char *msg, size_t *index, int *count)
{
	int i = 1, n = 0, used = 0;

	if (msg == NULL)
		return NULL;
	if (sscanf(msg, "health check #%d failed %d consecutive times: %n", &i, &n, &used) != 2 ||
	    used == 0) {
		i = 1;
		used = 0;
		if (sscanf(msg, "health check failed %d consecutive times: %n", &n, &used) != 1 ||
		    used == 0)
			return NULL;
	}
	if (i < 1 || n < 1)
		return NULL;
	*index = (size_t)(i - 1);
	*count = n;
	return msg + used;
}

static void note_success(struct relay_health *h, double ts)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		struct relay_check_result *res = &h->res[i];
		if (ts < res->last_success)
			continue;
		res->alive = true;
		res->consecutive = 0;
		res->last_success = ts;
		if (res->first_success == 0)
			res->first_success = ts;
	}
}

static void maybe_kill(struct relay *r, struct relay_app *app, struct relay_task *t,
    const json_t *hc, const struct relay_check_result *res, double ts)
{
	int max = (int)bt_json_number(hc, "maxConsecutiveFailures", 3);
	double grace = bt_json_number(hc, "gracePeriodSeconds", 300);
	double interval = bt_json_number(hc, "intervalSeconds", 60);
	double timeout = bt_json_number(hc, "timeoutSeconds", 20);
	double now = bt_now();
	char *reason;

	if (max <= 0 || res->consecutive < max || t->goal != RELAY_GOAL_RUNNING ||
	    t->state != MESOS__V1__TASK_STATE__TASK_RUNNING || !r->subscribed)
		return;
	if (res->first_success == 0 && (t->started_at <= 0 || now - t->started_at < grace)) {
		log_info("task '%s' is unhealthy but within its %g s grace period", t->id, grace);
		return;
	}
	if (now - ts > 2 * interval + timeout + STALE_SLACK) {
		log_info("task '%s': not acting on a health report from %.0f s ago", t->id, now - ts);
		return;
	}
	reason = xasprintf("failed %d consecutive health checks: %s", res->consecutive,
	    res->cause != NULL ? res->cause : "");
	unhealthy_kill(r, t, reason);
	free(reason);
	relay_task_kill(r, t);
	r->revive_wanted = true;
	relay_converge(r);
}

/* "health check #i passed": one of several checks recovered, another still fails */
static bool note_recovery(struct relay_health *h, const char *msg, double ts)
{
	int i = 0, used = 0;
	struct relay_check_result *res;

	if (msg == NULL || sscanf(msg, "health check #%d passed%n", &i, &used) != 1 ||
	    msg[used] != '\0' || i < 1 || (size_t)i > h->n)
		return false;
	res = &h->res[i - 1];
	if (ts >= res->last_success) {
		res->alive = true;
		res->consecutive = 0;
		res->last_success = ts;
		if (res->first_success == 0)
			res->first_success = ts;
	}
	return true;
}

static void note_failure(struct relay *r, struct relay_app *app, struct relay_task *t,
    const char *msg, double ts, bool fresh)
{
	struct relay_health *h = t->health;
	struct relay_check_result *res;
	const json_t *hc;
	size_t idx = 0;
	int n = 0;
	const char *why = parse_failure(msg, &idx, &n);

	if (why == NULL && note_recovery(h, msg, ts))
		return;

	if (idx >= h->n)
		idx = 0;
	res = &h->res[idx];
	if (why == NULL && !fresh) {
		/* a reconciliation answer: the health, not a new failure */
		res->alive = false;
		if (res->consecutive == 0)
			res->consecutive = 1;
		if (res->last_failure == 0)
			res->last_failure = ts;
		return;
	}
	if (why == NULL) {
		why = msg != NULL ? msg : "health check failed";
		n = res->consecutive + 1;
	}
	if (ts < res->last_failure)
		return;
	res->alive = false;
	res->consecutive = n;
	res->last_failure = ts;
	free(res->cause);
	res->cause = xstrdup(why);
	hc = app != NULL ? json_array_get(json_object_get(app->def, "healthChecks"), idx) : NULL;
	if (!fresh || hc == NULL)
		return;
	check_failed(r, t, hc, res);
	maybe_kill(r, app, t, hc, res, ts);
}

/* a status update of a running task: its health, when it tells one */
void relay_health_update(struct relay *r, struct relay_task *t, const Mesos__V1__TaskStatus *st)
{
	struct relay_app *app;
	bool was_known = t->healthy_known, was = t->healthy, fresh;
	double ts;

	if (!st->has_healthy || relay_task_terminal_state(st->state))
		return;
	app = relay_app_find(r, t->app_id);
	health_of(t, app != NULL ? json_array_size(json_object_get(app->def, "healthChecks")) : 1);
	fresh = st->has_reason &&
	    st->reason == MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
	ts = st->has_timestamp && st->timestamp > 0 ? st->timestamp : bt_now();
	t->healthy_known = true;
	t->healthy = st->healthy;
	relay_task_recount(t);
	if (st->healthy)
		note_success(t->health, ts);
	else
		note_failure(r, app, t, st->message, ts, fresh);
	if (!was_known || was != t->healthy)
		health_changed(r, t);
}

static json_t *time_or_null(double t)
{
	char buf[32];

	if (t <= 0)
		return json_null();
	bt_time_iso8601(t, buf);
	return json_string(buf);
}

/* healthCheckResults: one entry per check that has a result */
json_t *relay_health_results(const struct relay_task *t)
{
	json_t *out = json_array();
	size_t i;

	for (i = 0; t->health != NULL && i < t->health->n; i++) {
		const struct relay_check_result *res = &t->health->res[i];
		if (!res->alive && res->last_failure == 0 && res->first_success == 0)
			continue;
		json_array_append_new(out, json_pack("{s:b, s:i, s:o, s:o, s:o, s:o, s:s}",
		    "alive", res->alive, "consecutiveFailures", res->consecutive,
		    "firstSuccess", time_or_null(res->first_success),
		    "lastSuccess", time_or_null(res->last_success),
		    "lastFailure", time_or_null(res->last_failure),
		    "lastFailureCause", res->cause != NULL ? json_string(res->cause) : json_null(),
		    "instanceId", t->instance_id));
	}
	return out;
}

void relay_health_free(struct relay_task *t)
{
	size_t i;

	if (t->health == NULL)
		return;
	for (i = 0; i < t->health->n; i++)
		free(t->health->res[i].cause);
	free(t->health->res);
	free(t->health);
	t->health = NULL;
}
