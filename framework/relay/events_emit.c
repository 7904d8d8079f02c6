/*
 * events_emit.c -- the events relay publishes on the bus (events.c):
 * deployments with their plans, app and task changes, health.
 *
 * Deployments: relay_event_deployment_new() is called when a change is
 * committed (deploy.c), after the apps changed: the plan's "original" is
 * the root group with the deployment's apps as they were before, its
 * "target" the root group now, and deployment_info of the current step
 * goes out at once. Each finished step emits deployment_step_success
 * and deployment_info of the next; the end emits deployment_success; a
 * deployment rolled back, cancelled or overridden by force emits
 * deployment_failed. Every function returns at once, building nothing,
 * when no subscriber wants its event types.
 */
#include "relay.h"
#include "events.h"

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* ---- deployments ---- */

/*
 * The root group as it is now, or with the apps of `before` as they were
 * before it (NULL: as they are); version: the given one, or the newest
 * app version.
 */
static json_t *root_group(struct relay *r, const struct relay_deployment *before,
    const char *version)
{
	json_t *apps = json_array(), *orig;
	struct relay_app *app;
	const char *newest = "", *id, *v;

	TAILQ_FOREACH(app, &r->apps, entry) {
		if (before != NULL && relay_deployment_affects(before, app->id))
			continue;
		/* definitions are replaced, never changed in place: sharing them is safe */
		json_array_append(apps, app->def);
		if (app->version != NULL && strcmp(app->version, newest) > 0)
			newest = app->version;
	}
	if (before != NULL)
		json_object_foreach(before->originals, id, orig) {
			if (json_is_null(orig))
				continue;
			json_array_append(apps, orig);
			if ((v = bt_json_string(orig, "version")) != NULL && strcmp(v, newest) > 0)
				newest = v;
		}
	if (version == NULL)
		version = newest[0] != '\0' ? newest : "1970-01-01T00:00:00.000Z";
	return json_pack("{s:s, s:o, s:[], s:[], s:[], s:s}", "id", "/", "apps", apps,
	    "groups", "pods", "dependencies", "version", version);
}

static struct plan *plan_find(struct relay_events *b, const char *id)
{
	struct plan *p;

	TAILQ_FOREACH(p, &b->plans, entry)
		if (strcmp(p->id, id) == 0)
			return p;
	return NULL;
}

void relay_events_plan_free(struct plan *p)
{
	free(p->id);
	free(p->version);
	json_decref(p->steps);
	json_decref(p->original);
	json_decref(p->target);
	free(p);
}

static struct plan *plan_new(struct relay *r, const struct relay_deployment *d, json_t *original)
{
	struct plan *p = xcalloc(1, sizeof *p);

	p->id = xstrdup(d->id);
	p->version = xstrdup(d->version);
	p->steps = json_incref(d->steps);
	p->original = original;
	p->current = d->current;
	return p;
}

static json_t *plan_json(const struct plan *p)
{
	return json_pack("{s:s, s:O, s:O, s:O, s:s}", "id", p->id, "original", p->original,
	    "target", p->target ? p->target : p->original, "steps", p->steps, "version", p->version);
}

/* deployment_info or deployment_step_success for step i (0-based) */
static void step_event(struct relay_events *b, enum ev_type type, const struct plan *p, size_t i)
{
	json_t *ev;

	if ((b->wanted & BIT(type)) == 0)
		return;
	ev = relay_events_new(type);
	json_object_set_new(ev, "plan", plan_json(p));
	json_object_set(ev, "currentStep", json_array_get(p->steps, i));
	relay_events_publish(b, type, ev);
}

static void announce(struct relay_events *b, struct plan *p)
{
	p->target = root_group(b->r, NULL, p->version);
	step_event(b, ET_DEPLOYMENT_INFO, p, p->current);
}

/* announce every deployment created since the last call */
static void announce_pending(struct relay_events *b)
{
	struct plan *p;

	TAILQ_FOREACH(p, &b->plans, entry)
		if (p->target == NULL)
			announce(b, p);
}

void relay_event_deployment_new(struct relay *r, const struct relay_deployment *d)
{
	struct relay_events *b = r->events;
	struct plan *p;

	if (!relay_events_wants(r, DEPLOYMENT_BITS))
		return;
	p = plan_new(r, d, root_group(r, d, NULL));
	TAILQ_INSERT_TAIL(&b->plans, p, entry);
	announce(b, p);
}

void relay_event_deployment_step(struct relay *r, const struct relay_deployment *d, size_t i)
{
	struct relay_events *b = r->events;
	struct plan *p;

	if (b == NULL || !relay_events_wants(r, DEPLOYMENT_BITS))
		return;
	announce_pending(b);
	if ((p = plan_find(b, d->id)) == NULL) {
		/* nobody listened when it began: the plan is made up now */
		p = plan_new(r, d, root_group(r, NULL, d->version));
		p->target = json_incref(p->original);
		TAILQ_INSERT_TAIL(&b->plans, p, entry);
	}
	step_event(b, ET_DEPLOYMENT_STEP_SUCCESS, p, i);
	if (i + 1 < json_array_size(p->steps))
		step_event(b, ET_DEPLOYMENT_INFO, p, i + 1);
}

/* the plan of d, announced or made up now (nobody listened when it began); caller frees */
static struct plan *take_plan(struct relay *r, const struct relay_deployment *d)
{
	struct relay_events *b = r->events;
	struct plan *p;

	announce_pending(b);
	p = plan_find(b, d->id);
	if (p != NULL) {
		TAILQ_REMOVE(&b->plans, p, entry);
		return p;
	}
	p = plan_new(r, d, root_group(r, NULL, d->version));
	p->target = json_incref(p->original);
	return p;
}

/*
 * The plan of a deployment that ends, taken from the bus (the caller frees
 * it), or NULL when nobody wants deployment events (a kept plan is dropped).
 */
static struct plan *deployment_plan(struct relay *r, const struct relay_deployment *d)
{
	struct plan *p;

	if (r->events == NULL)
		return NULL;
	if (!relay_events_wants(r, DEPLOYMENT_BITS)) {
		if ((p = plan_find(r->events, d->id)) != NULL) {
			TAILQ_REMOVE(&r->events->plans, p, entry);
			relay_events_plan_free(p);
		}
		return NULL;
	}
	return take_plan(r, d);
}

void relay_event_deployment_done(struct relay *r, const struct relay_deployment *d)
{
	struct plan *p;
	json_t *ev;

	if ((p = deployment_plan(r, d)) == NULL)
		return;
	if (relay_events_wants(r, BIT(ET_DEPLOYMENT_SUCCESS))) {
		ev = relay_events_new(ET_DEPLOYMENT_SUCCESS);
		json_object_set_new(ev, "id", json_string(p->id));
		json_object_set_new(ev, "plan", plan_json(p));
		relay_events_publish(r->events, ET_DEPLOYMENT_SUCCESS, ev);
	}
	relay_events_plan_free(p);
}

void relay_event_deployment_failed(struct relay *r, const struct relay_deployment *d,
    const char *reason)
{
	struct plan *p;
	json_t *ev;

	if ((p = deployment_plan(r, d)) == NULL)
		return;
	if (relay_events_wants(r, BIT(ET_DEPLOYMENT_FAILED))) {
		ev = relay_events_new(ET_DEPLOYMENT_FAILED);
		json_object_set_new(ev, "id", json_string(p->id));
		json_object_set_new(ev, "plan", plan_json(p));
		if (reason != NULL)
			json_object_set_new(ev, "reason", json_string(reason));
		relay_events_publish(r->events, ET_DEPLOYMENT_FAILED, ev);
	}
	relay_events_plan_free(p);
}

/* ---- apps and tasks ---- */

void relay_event_api_post(struct relay *r, struct evhttp_request *req, const json_t *def)
{
	const char *uri = evhttp_request_get_uri(req);
	json_t *ev;

	if (!relay_events_wants(r, BIT(ET_API_POST)) || def == NULL)
		return;
	ev = relay_events_new(ET_API_POST);
	json_object_set_new(ev, "clientIp", json_string(bt_http_peer(req)));
	json_object_set_new(ev, "uri", json_stringn(uri, strcspn(uri, "?")));
	json_object_set(ev, "appDefinition", (json_t *)def);
	relay_events_publish(r->events, ET_API_POST, ev);
}

void relay_event_app_terminated(struct relay *r, const char *app_id)
{
	json_t *ev;

	if (!relay_events_wants(r, BIT(ET_APP_TERMINATED)))
		return;
	announce_pending(r->events);    /* the StopApplication step began first */
	ev = relay_events_new(ET_APP_TERMINATED);
	json_object_set_new(ev, "appId", json_string(app_id));
	relay_events_publish(r->events, ET_APP_TERMINATED, ev);
}

/* Marathon's instance condition for a Mesos task state */
static const char *condition(int state, int reason)
{
	switch (state) {
	case MESOS__V1__TASK_STATE__TASK_STAGING: return "Staging";
	case MESOS__V1__TASK_STATE__TASK_STARTING: return "Starting";
	case MESOS__V1__TASK_STATE__TASK_RUNNING: return "Running";
	case MESOS__V1__TASK_STATE__TASK_KILLING: return "Killing";
	case MESOS__V1__TASK_STATE__TASK_FINISHED: return "Finished";
	case MESOS__V1__TASK_STATE__TASK_FAILED: return "Failed";
	case MESOS__V1__TASK_STATE__TASK_KILLED: return "Killed";
	case MESOS__V1__TASK_STATE__TASK_ERROR: return "Error";
	case MESOS__V1__TASK_STATE__TASK_DROPPED: return "Dropped";
	case MESOS__V1__TASK_STATE__TASK_GONE:
	case MESOS__V1__TASK_STATE__TASK_GONE_BY_OPERATOR: return "Gone";
	case MESOS__V1__TASK_STATE__TASK_UNREACHABLE: return "Unreachable";
	case MESOS__V1__TASK_STATE__TASK_LOST:
		switch (reason) {
		case MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_REMOVED:
		case MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_UNKNOWN:
		case MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION:
		case MESOS__V1__TASK_STATUS__REASON__REASON_INVALID_OFFERS:
		case MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED:
			return "Gone";
		default:
			return "Unreachable";
		}
	default: return "Unknown";
	}
}

static void instance_changed(struct relay *r, const struct relay_task *t, const char *cond,
    const char *agent_id)
{
	json_t *ev = relay_events_new(ET_INSTANCE_CHANGED);

	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "condition", json_string(cond));
	json_object_set_new(ev, "runSpecId", json_string(t->app_id));
	json_object_set_new(ev, "agentId", json_string(agent_id ? agent_id : ""));
	json_object_set_new(ev, "host", json_string(t->host ? t->host : ""));
	json_object_set_new(ev, "runSpecVersion", json_string(t->version ? t->version : ""));
	relay_events_publish(r->events, ET_INSTANCE_CHANGED, ev);
}

static void status_update(struct relay *r, const struct relay_task *t, int state,
    const char *message, const char *agent_id)
{
	json_t *ev = relay_events_new(ET_STATUS_UPDATE), *ports = json_array(), *ips = json_array();
	const char *ip = t->ip ? t->ip : t->host;
	size_t i;

	for (i = 0; i < t->nports; i++)
		json_array_append_new(ports, json_integer((json_int_t)t->ports[i]));
	if (ip != NULL && ip[0] != '\0')
		json_array_append_new(ips, json_pack("{s:s, s:s}", "ipAddress", ip,
		    "protocol", strchr(ip, ':') ? "IPv6" : "IPv4"));
	json_object_set_new(ev, "slaveId", json_string(agent_id ? agent_id : ""));
	json_object_set_new(ev, "taskId", json_string(t->id));
	json_object_set_new(ev, "taskStatus", json_string(relay_task_state_name(state)));
	json_object_set_new(ev, "message", json_string(message ? message : ""));
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "host", json_string(t->host ? t->host : ""));
	json_object_set_new(ev, "ipAddresses", ips);
	json_object_set_new(ev, "ports", ports);
	json_object_set_new(ev, "version", json_string(t->version ? t->version : ""));
	relay_events_publish(r->events, ET_STATUS_UPDATE, ev);
}

void relay_event_instance_changed(struct relay *r, const struct relay_task *t, const char *cond)
{
	if (relay_events_wants(r, BIT(ET_INSTANCE_CHANGED)))
		instance_changed(r, t, cond, t->agent_id);
}

void relay_event_task_launched(struct relay *r, const struct relay_task *t)
{
	if (!relay_events_wants(r, BIT(ET_STATUS_UPDATE) | BIT(ET_INSTANCE_CHANGED)))
		return;
	if (relay_events_wants(r, BIT(ET_STATUS_UPDATE)))
		status_update(r, t, MESOS__V1__TASK_STATE__TASK_STAGING, "", t->agent_id);
	if (relay_events_wants(r, BIT(ET_INSTANCE_CHANGED)))
		instance_changed(r, t, "Provisioned", t->agent_id);
}

void relay_event_status_update(struct relay *r, const struct relay_task *t,
    const Mesos__V1__TaskStatus *st)
{
	const char *agent, *was, *now;

	if (!relay_events_wants(r, BIT(ET_STATUS_UPDATE) | BIT(ET_INSTANCE_CHANGED)))
		return;
	/* a reconciliation that finds the task as it was changes nothing, as in Marathon */
	if ((int)st->state == t->state && st->has_reason &&
	    st->reason == MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION)
		return;
	agent = st->agent_id ? st->agent_id->value : t->agent_id;
	if (relay_events_wants(r, BIT(ET_STATUS_UPDATE)))
		status_update(r, t, st->state, st->message, agent);
	was = condition(t->state, -1);
	now = condition(st->state, st->has_reason ? (int)st->reason : -1);
	if (relay_events_wants(r, BIT(ET_INSTANCE_CHANGED)) && strcmp(was, now) != 0)
		instance_changed(r, t, now, agent);
}

/* ---- health ---- */

/* the app's health check number i as JSON, or an empty object */
static json_t *health_check_json(struct relay *r, const struct relay_task *t, const json_t *check)
{
	struct relay_app *app;
	json_t *hc;

	if (check != NULL)
		return json_incref((json_t *)check);
	app = relay_app_find(r, t->app_id);
	hc = app ? json_array_get(json_object_get(app->def, "healthChecks"), 0) : NULL;
	return hc != NULL ? json_incref(hc) : json_object();
}

void relay_event_health_changed(struct relay *r, const struct relay_task *t, bool alive)
{
	json_t *ev;

	if (!relay_events_wants(r, BIT(ET_HEALTH_CHANGED)))
		return;
	ev = relay_events_new(ET_HEALTH_CHANGED);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "version", json_string(t->version ? t->version : ""));
	json_object_set_new(ev, "alive", json_boolean(alive));
	relay_events_publish(r->events, ET_HEALTH_CHANGED, ev);
}

void relay_event_failed_health_check(struct relay *r, const struct relay_task *t,
    const json_t *check)
{
	json_t *ev;

	if (!relay_events_wants(r, BIT(ET_FAILED_HEALTH_CHECK)))
		return;
	ev = relay_events_new(ET_FAILED_HEALTH_CHECK);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "taskId", json_string(t->id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "healthCheck", health_check_json(r, t, check));
	relay_events_publish(r->events, ET_FAILED_HEALTH_CHECK, ev);
}

void relay_event_unhealthy_kill(struct relay *r, const struct relay_task *t, const char *reason)
{
	json_t *ev;

	if (!relay_events_wants(r, BIT(ET_UNHEALTHY_KILL)))
		return;
	ev = relay_events_new(ET_UNHEALTHY_KILL);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "taskId", json_string(t->id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "version", json_string(t->version ? t->version : ""));
	json_object_set_new(ev, "reason", json_string(reason ? reason : "unhealthy"));
	json_object_set_new(ev, "host", json_string(t->host ? t->host : ""));
	json_object_set_new(ev, "slaveId", t->agent_id ? json_string(t->agent_id) : json_null());
	relay_events_publish(r->events, ET_UNHEALTHY_KILL, ev);
}

