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
 * The events themselves are built in events_emit.c (deployments with
 * their plans, apps and tasks, health).
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
#include "events.h"

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

/* ---- helpers ---- */

bool relay_events_wants(struct relay *r, uint32_t bits)
{
	return r->events != NULL && (r->events->wanted & bits) != 0;
}

json_t *relay_events_new(enum ev_type type)
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

void relay_events_publish(struct relay_events *b, enum ev_type type, json_t *ev)
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
			json_t *ev = relay_events_new(ET_DETACHED);
			json_object_set_new(ev, "remoteAddress", json_string(s->peer));
			relay_events_publish(b, ET_DETACHED, ev);
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
		ev = relay_events_new(ET_ATTACHED);
		json_object_set_new(ev, "remoteAddress", json_string(s->peer));
		relay_events_publish(b, ET_ATTACHED, ev);
	}
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
		relay_events_plan_free(p);
	}
	event_free(b->reap);
	free(b);
}
