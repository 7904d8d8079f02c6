/*
 * events.c -- the event bus: GET /v2/events as server-sent events.
 *
 * A client asks with "Accept: text/event-stream" (anything else is 405,
 * as Marathon's EventSourceServlet answers) and optionally repeats
 * ?event_type=<type> to filter and adds ?plan-format=light. The answer is
 * "text/event-stream;charset=UTF-8", HTTP/1.0 style with
 * "Connection: close": no chunks, the body runs until the connection
 * ends. Each event is "event: <type>\r\ndata: <one-line JSON>\r\n\r\n";
 * a bare "\r\n" goes out every 10 s as a heartbeat. Joining publishes
 * event_stream_attached to every subscriber (the new one first sees its
 * own), leaving publishes event_stream_detached to the others.
 *
 * Publishing: relay calls relay_event_*() where things happen. Each one
 * first checks whether any live subscriber wants that event type (a mask
 * kept as subscribers come and go), so with nobody listening an event
 * costs one function call and a test and builds no JSON. Otherwise the
 * event is built once and serialised at most twice: with full deployment
 * plans (the root group before and after, as the python marathon client
 * needs) and with light ones ({id, steps, version}).
 *
 * Deployments: relay_event_deployment_new() is called when a change is
 * committed (deploy.c), after the apps changed: the plan's "original" is
 * the root group with the deployment's apps as they were before, its
 * "target" the root group now, and deployment_info of the current step
 * goes out at once. Each finished step emits deployment_step_success
 * and deployment_info of the next; the end emits deployment_success; a
 * deployment rolled back, cancelled or overridden by force emits
 * deployment_failed.
 *
 * Slow clients: like Marathon's --event_stream_max_outstanding_messages
 * (1024), a subscriber with MAX_OUTSTANDING events not yet handed to its
 * socket is too slow and is closed -- once it has stayed that far behind
 * for SLOW_GRACE, so that a burst published in one loop turn (a scale to
 * a thousand instances) does not cost a reader that keeps up its stream.
 * Outstanding events are counted from the bytes still buffered: the end
 * offset of each event is remembered in a ring (when it is full, the
 * newest slot grows to cover the newer events), and those below the
 * number of bytes already sent are done. The stream itself drops the
 * client at once past MAX_BUFFERED bytes. Either way relay's memory per
 * subscriber stays bounded. A closed subscriber is only marked dead in the callbacks and
 * freed from the loop by a zero timeout, so no publisher ever walks a
 * freed subscriber.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_OUTSTANDING         1024            /* Marathon's default */
#define SLOW_GRACE              1.0             /* seconds a full ring is tolerated */
#define MAX_BUFFERED            (8u << 20)      /* bytes waiting for one subscriber */
#define HEARTBEAT_INTERVAL      10.0            /* seconds, as Jetty's EventSource */

enum ev_type {
	ET_STATUS_UPDATE,
	ET_INSTANCE_CHANGED,
	ET_HEALTH_CHANGED,
	ET_FAILED_HEALTH_CHECK,
	ET_UNHEALTHY_KILL,
	ET_API_POST,
	ET_DEPLOYMENT_INFO,
	ET_DEPLOYMENT_STEP_SUCCESS,
	ET_DEPLOYMENT_SUCCESS,
	ET_DEPLOYMENT_FAILED,
	ET_APP_TERMINATED,
	ET_ATTACHED,
	ET_DETACHED,
	ET_COUNT
};

static const char *type_names[ET_COUNT] = {
	"status_update_event",
	"instance_changed_event",
	"health_status_changed_event",
	"failed_health_check_event",
	"unhealthy_instance_kill_event",
	"api_post_event",
	"deployment_info",
	"deployment_step_success",
	"deployment_success",
	"deployment_failed",
	"app_terminated_event",
	"event_stream_attached",
	"event_stream_detached",
};

#define BIT(t)          (1u << (t))
#define DEPLOYMENT_BITS (BIT(ET_DEPLOYMENT_INFO) | BIT(ET_DEPLOYMENT_STEP_SUCCESS) | \
	BIT(ET_DEPLOYMENT_SUCCESS) | BIT(ET_DEPLOYMENT_FAILED))

struct sub {
	TAILQ_ENTRY(sub) entry;
	struct relay_events *bus;
	struct bt_http_stream *st;      /* NULL once closed */
	struct event *heartbeat;
	char *peer;
	uint32_t mask;                  /* event types wanted */
	bool light;                     /* plan-format=light */
	bool dead;
	uint64_t written;               /* bytes queued so far */
	uint64_t ends[MAX_OUTSTANDING]; /* end offsets of events maybe not yet sent */
	size_t head, count;
	double full_since;              /* monotonic time the ring filled up; 0: not full */
};

/* a deployment announced to subscribers: its plan stays the same until it ends */
struct plan {
	TAILQ_ENTRY(plan) entry;
	char *id;
	char *version;
	json_t *steps;
	json_t *original;               /* root group before the change */
	json_t *target;                 /* root group after it; NULL until announced */
	size_t current;                 /* the step in progress when it was created */
};

struct relay_events {
	struct relay *r;
	TAILQ_HEAD(, sub) subs;
	TAILQ_HEAD(, plan) plans;
	uint32_t wanted;                /* union of the live subscribers' masks */
	struct event *reap;             /* frees dead subscribers */
};

/* ---- helpers ---- */

static bool wants(struct relay *r, uint32_t bits)
{
	return r->events != NULL && (r->events->wanted & bits) != 0;
}

static json_t *new_event(enum ev_type type)
{
	char ts[32];

	bt_time_iso8601(bt_now(), ts);
	return json_pack("{s:s, s:s}", "eventType", type_names[type], "timestamp", ts);
}

static void recompute_wanted(struct relay_events *b)
{
	struct sub *s;

	b->wanted = 0;
	TAILQ_FOREACH(s, &b->subs, entry)
		if (!s->dead)
			b->wanted |= s->mask;
}

/* the full framed text of an event; light replaces a plan with {id, steps, version} */
static char *frame(enum ev_type type, json_t *ev, bool light, size_t *len)
{
	json_t *plan = json_object_get(ev, "plan"), *copy = ev;
	char *data, *out;

	if (light && plan != NULL) {
		copy = json_copy(ev);
		json_object_set_new(copy, "plan", json_pack("{s:O?, s:O?, s:O?}",
		    "id", json_object_get(plan, "id"), "steps", json_object_get(plan, "steps"),
		    "version", json_object_get(plan, "version")));
	}
	data = bt_json_dump(copy);
	out = xasprintf("event: %s\r\ndata: %s\r\n\r\n", type_names[type], data);
	*len = strlen(out);
	free(data);
	if (copy != ev)
		json_decref(copy);
	return out;
}

/* ---- subscribers ---- */

static void schedule_reap(struct relay_events *b)
{
	event_active(b->reap, EV_TIMEOUT, 1);
}

static void closed_cb(struct bt_http_stream *st, void *arg)
{
	struct sub *s = arg;

	log_info("event stream to %s closed", s->peer);
	s->st = NULL;
	s->dead = true;
	recompute_wanted(s->bus);
	schedule_reap(s->bus);
}

/* how many events are still waiting in relay's buffer for this subscriber */
static size_t outstanding(struct sub *s)
{
	size_t buffered = bt_http_stream_buffered(s->st);
	uint64_t sent = s->written > buffered ? s->written - buffered : 0;

	while (s->count > 0 && s->ends[s->head] <= sent) {
		s->head = (s->head + 1) % MAX_OUTSTANDING;
		s->count--;
	}
	return s->count;
}

static void drop_slow(struct sub *s)
{
	log_warn("event stream to %s: %d events waiting for %gs, dropping the slow client",
	    s->peer, MAX_OUTSTANDING, SLOW_GRACE);
	bt_http_stream_close(s->st);
	s->st = NULL;
	s->dead = true;
	recompute_wanted(s->bus);
	schedule_reap(s->bus);
}

/* too many events waiting for too long? */
static bool too_slow(struct sub *s)
{
	double now;

	if (outstanding(s) < MAX_OUTSTANDING) {
		s->full_since = 0;
		return false;
	}
	now = bt_monotonic();
	if (s->full_since == 0)
		s->full_since = now;
	return now - s->full_since >= SLOW_GRACE;
}

/* queue bytes; an event (counted) takes a slot among the outstanding ones */
static void sub_write(struct sub *s, const char *data, size_t len, bool counted)
{
	if (s->dead || s->st == NULL)
		return;
	if (counted && too_slow(s)) {
		drop_slow(s);
		return;
	}
	if (bt_http_stream_write(s->st, data, len) != 0)
		return;         /* closed_cb ran: s is dead */
	s->written += len;
	if (!counted)
		return;
	if (s->count == MAX_OUTSTANDING) {
		s->ends[(s->head + s->count - 1) % MAX_OUTSTANDING] = s->written;
		return;
	}
	s->ends[(s->head + s->count) % MAX_OUTSTANDING] = s->written;
	s->count++;
}

static void publish(struct relay_events *b, enum ev_type type, json_t *ev)
{
	char *text[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };
	struct sub *s;
	int v;

	TAILQ_FOREACH(s, &b->subs, entry) {
		if (s->dead || (s->mask & BIT(type)) == 0)
			continue;
		v = s->light ? 1 : 0;
		if (text[v] == NULL)
			text[v] = frame(type, ev, v == 1, &len[v]);
		sub_write(s, text[v], len[v], true);
	}
	free(text[0]);
	free(text[1]);
	json_decref(ev);
}

static void sub_free(struct sub *s)
{
	if (s->st != NULL)
		bt_http_stream_close(s->st);
	if (s->heartbeat != NULL)
		event_free(s->heartbeat);
	free(s->peer);
	free(s);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay_events *b = arg;
	struct sub *s, *next;

	for (s = TAILQ_FIRST(&b->subs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (!s->dead)
			continue;
		TAILQ_REMOVE(&b->subs, s, entry);
		if (b->wanted & BIT(ET_DETACHED)) {
			json_t *ev = new_event(ET_DETACHED);
			json_object_set_new(ev, "remoteAddress", json_string(s->peer));
			publish(b, ET_DETACHED, ev);
		}
		sub_free(s);
	}
	recompute_wanted(b);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	sub_write(arg, "\r\n", 2, false);
}

/* does an Accept header list text/event-stream? */
static bool accepts_sse(const char *accept)
{
	const char *p = accept;
	size_t n;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		n = strcspn(p, ",;");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == strlen("text/event-stream") && strncasecmp(p, "text/event-stream", n) == 0)
			return true;
		p = strchr(p, ',');
	}
	return false;
}

/* the event types asked for with event_type=..., or every type */
static uint32_t type_mask(const struct evkeyvalq *q)
{
	const struct evkeyval *kv;
	uint32_t mask = 0;
	bool filtered = false;
	int i;

	TAILQ_FOREACH(kv, q, next) {
		if (strcmp(kv->key, "event_type") != 0)
			continue;
		filtered = true;
		for (i = 0; i < ET_COUNT; i++)
			if (strcmp(kv->value, type_names[i]) == 0)
				mask |= BIT(i);
	}
	return filtered ? mask : BIT(ET_COUNT) - 1;
}

void relay_events_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg)
{
	struct relay *r = arg;
	struct relay_events *b = r->events;
	const char *accept = bt_http_header(req, "Accept"), *fmt = bt_http_query(q, "plan-format");
	struct timeval tv = bt_timeval(HEARTBEAT_INTERVAL);
	char *leader;
	struct sub *s;
	json_t *ev;

	if (strcmp(bt_http_method(req), "GET") != 0) {
		bt_http_error(req, 405, "HTTP method %s is not supported by this URL",
		    bt_http_method(req));
		return;
	}
	if (accept == NULL || !accepts_sse(accept)) {
		bt_http_error(req, 405, "HTTP method GET is not supported by this URL without "
		    "'Accept: text/event-stream'");
		return;
	}
	s = xcalloc(1, sizeof *s);
	s->bus = b;
	s->mask = type_mask(q);
	s->light = fmt != NULL && strcasecmp(fmt, "light") == 0;
	s->peer = xstrdup(bt_http_peer(req));
	leader = xasprintf("http://%s:%d", r->cfg.hostname, r->cfg.http_port);
	bt_http_add_header(req, "X-Marathon-Leader", leader);
	free(leader);
	s->st = bt_http_stream_start(req, 200, "text/event-stream;charset=UTF-8", false,
	    MAX_BUFFERED, closed_cb, s);
	s->heartbeat = event_new(r->base, -1, EV_PERSIST, heartbeat_cb, s);
	event_add(s->heartbeat, &tv);
	TAILQ_INSERT_TAIL(&b->subs, s, entry);
	log_info("event stream to %s opened (%s plans)", s->peer, s->light ? "light" : "full");
	b->wanted |= s->mask;
	if (b->wanted & BIT(ET_ATTACHED)) {
		ev = new_event(ET_ATTACHED);
		json_object_set_new(ev, "remoteAddress", json_string(s->peer));
		publish(b, ET_ATTACHED, ev);
	}
}

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

static void plan_free(struct plan *p)
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
	ev = new_event(type);
	json_object_set_new(ev, "plan", plan_json(p));
	json_object_set(ev, "currentStep", json_array_get(p->steps, i));
	publish(b, type, ev);
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

	if (!wants(r, DEPLOYMENT_BITS))
		return;
	p = plan_new(r, d, root_group(r, d, NULL));
	TAILQ_INSERT_TAIL(&b->plans, p, entry);
	announce(b, p);
}

void relay_event_deployment_step(struct relay *r, const struct relay_deployment *d, size_t i)
{
	struct relay_events *b = r->events;
	struct plan *p;

	if (b == NULL || !wants(r, DEPLOYMENT_BITS))
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
	if (!wants(r, DEPLOYMENT_BITS)) {
		if ((p = plan_find(r->events, d->id)) != NULL) {
			TAILQ_REMOVE(&r->events->plans, p, entry);
			plan_free(p);
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
	if (wants(r, BIT(ET_DEPLOYMENT_SUCCESS))) {
		ev = new_event(ET_DEPLOYMENT_SUCCESS);
		json_object_set_new(ev, "id", json_string(p->id));
		json_object_set_new(ev, "plan", plan_json(p));
		publish(r->events, ET_DEPLOYMENT_SUCCESS, ev);
	}
	plan_free(p);
}

void relay_event_deployment_failed(struct relay *r, const struct relay_deployment *d,
    const char *reason)
{
	struct plan *p;
	json_t *ev;

	if ((p = deployment_plan(r, d)) == NULL)
		return;
	if (wants(r, BIT(ET_DEPLOYMENT_FAILED))) {
		ev = new_event(ET_DEPLOYMENT_FAILED);
		json_object_set_new(ev, "id", json_string(p->id));
		json_object_set_new(ev, "plan", plan_json(p));
		if (reason != NULL)
			json_object_set_new(ev, "reason", json_string(reason));
		publish(r->events, ET_DEPLOYMENT_FAILED, ev);
	}
	plan_free(p);
}

/* ---- apps and tasks ---- */

void relay_event_api_post(struct relay *r, struct evhttp_request *req, const json_t *def)
{
	const char *uri = evhttp_request_get_uri(req);
	json_t *ev;

	if (!wants(r, BIT(ET_API_POST)) || def == NULL)
		return;
	ev = new_event(ET_API_POST);
	json_object_set_new(ev, "clientIp", json_string(bt_http_peer(req)));
	json_object_set_new(ev, "uri", json_stringn(uri, strcspn(uri, "?")));
	json_object_set(ev, "appDefinition", (json_t *)def);
	publish(r->events, ET_API_POST, ev);
}

void relay_event_app_terminated(struct relay *r, const char *app_id)
{
	json_t *ev;

	if (!wants(r, BIT(ET_APP_TERMINATED)))
		return;
	announce_pending(r->events);    /* the StopApplication step began first */
	ev = new_event(ET_APP_TERMINATED);
	json_object_set_new(ev, "appId", json_string(app_id));
	publish(r->events, ET_APP_TERMINATED, ev);
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
	json_t *ev = new_event(ET_INSTANCE_CHANGED);

	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "condition", json_string(cond));
	json_object_set_new(ev, "runSpecId", json_string(t->app_id));
	json_object_set_new(ev, "agentId", json_string(agent_id ? agent_id : ""));
	json_object_set_new(ev, "host", json_string(t->host ? t->host : ""));
	json_object_set_new(ev, "runSpecVersion", json_string(t->version ? t->version : ""));
	publish(r->events, ET_INSTANCE_CHANGED, ev);
}

static void status_update(struct relay *r, const struct relay_task *t, int state,
    const char *message, const char *agent_id)
{
	json_t *ev = new_event(ET_STATUS_UPDATE), *ports = json_array(), *ips = json_array();
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
	publish(r->events, ET_STATUS_UPDATE, ev);
}

void relay_event_instance_changed(struct relay *r, const struct relay_task *t, const char *cond)
{
	if (wants(r, BIT(ET_INSTANCE_CHANGED)))
		instance_changed(r, t, cond, t->agent_id);
}

void relay_event_task_launched(struct relay *r, const struct relay_task *t)
{
	if (!wants(r, BIT(ET_STATUS_UPDATE) | BIT(ET_INSTANCE_CHANGED)))
		return;
	if (wants(r, BIT(ET_STATUS_UPDATE)))
		status_update(r, t, MESOS__V1__TASK_STATE__TASK_STAGING, "", t->agent_id);
	if (wants(r, BIT(ET_INSTANCE_CHANGED)))
		instance_changed(r, t, "Provisioned", t->agent_id);
}

void relay_event_status_update(struct relay *r, const struct relay_task *t,
    const Mesos__V1__TaskStatus *st)
{
	const char *agent, *was, *now;

	if (!wants(r, BIT(ET_STATUS_UPDATE) | BIT(ET_INSTANCE_CHANGED)))
		return;
	agent = st->agent_id ? st->agent_id->value : t->agent_id;
	if (wants(r, BIT(ET_STATUS_UPDATE)))
		status_update(r, t, st->state, st->message, agent);
	was = condition(t->state, -1);
	now = condition(st->state, st->has_reason ? (int)st->reason : -1);
	if (wants(r, BIT(ET_INSTANCE_CHANGED)) && strcmp(was, now) != 0)
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

	if (!wants(r, BIT(ET_HEALTH_CHANGED)))
		return;
	ev = new_event(ET_HEALTH_CHANGED);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "version", json_string(t->version ? t->version : ""));
	json_object_set_new(ev, "alive", json_boolean(alive));
	publish(r->events, ET_HEALTH_CHANGED, ev);
}

void relay_event_failed_health_check(struct relay *r, const struct relay_task *t,
    const json_t *check)
{
	json_t *ev;

	if (!wants(r, BIT(ET_FAILED_HEALTH_CHECK)))
		return;
	ev = new_event(ET_FAILED_HEALTH_CHECK);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "taskId", json_string(t->id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "healthCheck", health_check_json(r, t, check));
	publish(r->events, ET_FAILED_HEALTH_CHECK, ev);
}

void relay_event_unhealthy_kill(struct relay *r, const struct relay_task *t, const char *reason)
{
	json_t *ev;

	if (!wants(r, BIT(ET_UNHEALTHY_KILL)))
		return;
	ev = new_event(ET_UNHEALTHY_KILL);
	json_object_set_new(ev, "appId", json_string(t->app_id));
	json_object_set_new(ev, "taskId", json_string(t->id));
	json_object_set_new(ev, "instanceId", json_string(t->instance_id));
	json_object_set_new(ev, "version", json_string(t->version ? t->version : ""));
	json_object_set_new(ev, "reason", json_string(reason ? reason : "unhealthy"));
	json_object_set_new(ev, "host", json_string(t->host ? t->host : ""));
	json_object_set_new(ev, "slaveId", t->agent_id ? json_string(t->agent_id) : json_null());
	publish(r->events, ET_UNHEALTHY_KILL, ev);
}

/* ---- setup ---- */

void relay_events_init(struct relay *r)
{
	struct relay_events *b = xcalloc(1, sizeof *b);

	b->r = r;
	TAILQ_INIT(&b->subs);
	TAILQ_INIT(&b->plans);
	b->reap = event_new(r->base, -1, 0, reap_cb, b);
	r->events = b;
}

void relay_events_release(struct relay *r)
{
	struct relay_events *b = r->events;
	struct sub *s;
	struct plan *p;

	if (b == NULL)
		return;
	r->events = NULL;
	while ((s = TAILQ_FIRST(&b->subs)) != NULL) {
		TAILQ_REMOVE(&b->subs, s, entry);
		sub_free(s);
	}
	while ((p = TAILQ_FIRST(&b->plans)) != NULL) {
		TAILQ_REMOVE(&b->plans, p, entry);
		plan_free(p);
	}
	event_free(b->reap);
	free(b);
}
