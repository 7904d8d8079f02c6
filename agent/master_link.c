/*
 * master_link.c -- the agent's subscription to the master (docs/agent-channel.md).
 *
 * SUBSCRIBE is a POST to /api/v1/agent whose response stays open as a
 * RecordIO stream of AgentEvents; its bytes arrive through the HTTP
 * client's on_data and are cut into records by a RecordIO decoder. Every
 * other call (UPDATE, HEARTBEAT) is a separate POST carrying the stream's
 * Mesos-Stream-Id. The link counts the master gone when the stream ends,
 * when nothing arrives for five heartbeat intervals, or when a call is
 * answered 4xx; it then subscribes again after a random delay in [0, b],
 * b starting at --registration_backoff_factor and doubling up to one
 * minute, reset by SUBSCRIBED. Resubscription always runs from a timer,
 * never inside a callback of the stream being replaced.
 *
 * Updates produced in one turn of the loop (a LAUNCH of many tasks, a
 * record of acknowledgements) leave together in one UPDATE call: each is
 * packed at once as an AgentCall holding only that entry of `updates`,
 * and protobuf's rule that concatenated encodings merge (repeated fields
 * append) makes the header plus those pieces one AgentCall.
 */
#include "agent.h"
#include "http_client.h"
#include "ids.h"
#include "log.h"
#include "pbjson.h"
#include "recordio.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define BACKOFF_MAX             60.0
#define FIRST_EVENT_TIMEOUT     30.0
#define MAX_RECORD              (64u * 1024 * 1024)
#define DEFAULT_HEARTBEAT       15.0
#define MISSED_HEARTBEATS       5

enum link_state { LINK_IDLE, LINK_SUBSCRIBING, LINK_SUBSCRIBED };

/* one outstanding call other than the stream; knows which stream it was sent on */
struct link_call {
	TAILQ_ENTRY(link_call) entry;
	struct agent_link *link;
	unsigned gen;
	const char *what;
};

struct agent_link {
	struct agent *agent;
	enum link_state state;
	unsigned gen;                   /* bumped for every subscription attempt */
	struct bt_http_call *stream;
	char *stream_id;
	struct bt_recordio rio;
	double backoff;                 /* current bound b */
	double heartbeat;               /* interval the master announced */
	char *master_hostname;
	struct event *subscribe_ev;
	struct event *watchdog_ev;
	struct event *flush_ev;         /* sends the batch of updates, once per loop turn */
	uint8_t *batch;                 /* packed AgentCall pieces, one per update */
	size_t batch_len, batch_cap;
	TAILQ_HEAD(, link_call) calls;
};

static void schedule_subscribe(struct agent_link *l);

bool agent_link_subscribed(const struct agent_link *l)
{
	return l != NULL && l->state == LINK_SUBSCRIBED;
}

const char *agent_link_master_hostname(const struct agent_link *l)
{
	return l->master_hostname;
}

/* the master is gone or refused us: drop the stream and subscribe again later */
static void link_lost(struct agent_link *l, const char *why)
{
	if (l->state == LINK_IDLE && l->stream == NULL)
		return;
	if (l->state == LINK_SUBSCRIBED)
		log_warn("lost the master at %s: %s", l->agent->master_url, why);
	else
		log_info("unable to subscribe to the master at %s: %s", l->agent->master_url, why);
	if (l->stream != NULL) {
		bt_http_call_cancel(l->stream);
		l->stream = NULL;
	}
	free(l->stream_id);
	l->stream_id = NULL;
	l->state = LINK_IDLE;
	/* unsent updates go again after the next SUBSCRIBED (updates.c) */
	l->batch_len = 0;
	evtimer_del(l->watchdog_ev);
	schedule_subscribe(l);
}

static void arm_watchdog(struct agent_link *l)
{
	double t = l->state == LINK_SUBSCRIBED ? l->heartbeat * MISSED_HEARTBEATS :
	    FIRST_EVENT_TIMEOUT;
	struct timeval tv = bt_timeval(t);

	evtimer_add(l->watchdog_ev, &tv);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_link *l = arg;

	link_lost(l, l->state == LINK_SUBSCRIBED ? "no heartbeat from the master" :
	    "no answer to the subscription");
}

/* POST an AgentCall; a 4xx answer to a call of the current stream means resubscribe */
static void call_done_cb(int status, const char *body, size_t len, const char *error, void *arg)
{
	struct link_call *c = arg;
	struct agent_link *l = c->link;
	unsigned gen = c->gen;
	const char *what = c->what;

	TAILQ_REMOVE(&l->calls, c, entry);
	free(c);
	if (status == 0) {
		log_debug("%s call failed: %s", what, error != NULL ? error : "no response");
		return;
	}
	if (status >= 200 && status < 300)
		return;
	log_warn("%s call answered %d: %.*s", what, status, (int)(len > 512 ? 512 : len),
	    body != NULL ? body : "");
	if (status >= 400 && status < 500 && gen == l->gen && l->state != LINK_IDLE) {
		char *why = xasprintf("%s call answered %d", what, status);
		link_lost(l, why);
		free(why);
	}
}

/*
 * Calls are pipelined (common/http_pipe.h): an agent's updates and pongs,
 * and at scale those of thousands of simulated agents, leave a loop turn's
 * worth at a time on a few connections.
 */
struct bt_http_pipe *agent_calls_new(struct agent *a, int connections, char **cause)
{
	char *url = xasprintf("%s/api/v1/agent", a->master_url);
	struct bt_http_pipe *p = bt_http_pipe_new(a->base, url, connections, 30, cause);

	free(url);
	return p;
}

/* POST an AgentCall's bytes on the current stream */
static void post_bytes(struct agent_link *l, const uint8_t *buf, size_t len, const char *what)
{
	char *sid = xasprintf("Mesos-Stream-Id: %s", l->stream_id != NULL ? l->stream_id : "");
	const char *headers[] = { "Content-Type: application/x-protobuf",
	    "Accept: application/x-protobuf", sid, NULL };
	struct link_call *c = xcalloc(1, sizeof *c);

	c->link = l;
	c->gen = l->gen;
	c->what = what;
	TAILQ_INSERT_TAIL(&l->calls, c, entry);
	bt_http_pipe_post(l->agent->calls, headers, buf, len, call_done_cb, c);
	free(sid);
}

/* append a packed AgentCall to *buf at *len, growing *cap */
static void pack_append(Butte__AgentCall *call, uint8_t **buf, size_t *len, size_t *cap)
{
	size_t n = butte__agent_call__get_packed_size(call);

	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	butte__agent_call__pack(call, *buf + *len);
	*len += n;
}

static void post_call(struct agent_link *l, Butte__AgentCall *call, const char *what)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	pack_append(call, &buf, &len, &cap);
	post_bytes(l, buf, len, what);
	free(buf);
}

/* the updates of this loop turn: the header, then the pieces in the batch */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_link *l = arg;
	Butte__AgentCall call = BUTTE__AGENT_CALL__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (l->batch_len == 0 || l->state != LINK_SUBSCRIBED)
		return;
	aid.value = l->agent->agent_id;
	call.agent_id = &aid;
	call.has_type = true;
	call.type = BUTTE__AGENT_CALL__TYPE__UPDATE;
	pack_append(&call, &buf, &len, &cap);
	buf = xrealloc(buf, len + l->batch_len);
	memcpy(buf + len, l->batch, l->batch_len);
	post_bytes(l, buf, len + l->batch_len, "UPDATE");
	l->batch_len = 0;
	free(buf);
}

void agent_link_send_update(struct agent_link *l, const char *framework_id,
    Mesos__V1__TaskStatus *status)
{
	Butte__AgentCall piece = BUTTE__AGENT_CALL__INIT;
	Butte__AgentCall__Update up = BUTTE__AGENT_CALL__UPDATE__INIT;
	Butte__AgentCall__Update *ups[1] = { &up };
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;

	if (l->state != LINK_SUBSCRIBED)
		return;
	fid.value = (char *)framework_id;
	up.framework_id = &fid;
	up.status = status;
	piece.n_updates = 1;
	piece.updates = ups;
	if (l->batch_len == 0)
		event_active(l->flush_ev, EV_TIMEOUT, 0);
	pack_append(&piece, &l->batch, &l->batch_len, &l->batch_cap);
}

static void send_pong(struct agent_link *l)
{
	Butte__AgentCall call = BUTTE__AGENT_CALL__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;

	aid.value = l->agent->agent_id;
	call.agent_id = &aid;
	call.has_type = true;
	call.type = BUTTE__AGENT_CALL__TYPE__HEARTBEAT;
	post_call(l, &call, "HEARTBEAT");
}

static void on_subscribed(struct agent_link *l, Butte__AgentEvent__Subscribed *s)
{
	struct agent *a = l->agent;
	char *cause = NULL;

	if (s == NULL || s->agent_id == NULL || s->agent_id->value == NULL ||
	    *s->agent_id->value == '\0') {
		link_lost(l, "SUBSCRIBED without an agent id");
		return;
	}
	if (a->agent_id == NULL || strcmp(a->agent_id, s->agent_id->value) != 0) {
		if (a->agent_id != NULL)
			log_warn("the master changed this agent's id from '%s' to '%s'",
			    a->agent_id, s->agent_id->value);
		free(a->agent_id);
		a->agent_id = xstrdup(s->agent_id->value);
		if (agent_checkpoint_save_id(a, &cause) != 0) {
			log_error("%s", cause);
			free(cause);
		}
	}
	l->heartbeat = s->has_heartbeat_interval_seconds && s->heartbeat_interval_seconds > 0 ?
	    s->heartbeat_interval_seconds : DEFAULT_HEARTBEAT;
	free(l->master_hostname);
	l->master_hostname = NULL;
	if (s->master_info != NULL && s->master_info->hostname != NULL)
		l->master_hostname = xstrdup(s->master_info->hostname);
	l->state = LINK_SUBSCRIBED;
	l->backoff = a->backoff_factor;
	log_info("subscribed to the master at %s as agent '%s' (heartbeat every %.1f s)",
	    a->master_url, a->agent_id, l->heartbeat);
	agent_updates_resend(a);
}

static void handle_event(struct agent_link *l, Butte__AgentEvent *ev)
{
	struct agent *a = l->agent;

	if (ev->type != BUTTE__AGENT_EVENT__TYPE__SUBSCRIBED && l->state != LINK_SUBSCRIBED) {
		link_lost(l, "the first event of the stream is not SUBSCRIBED");
		return;
	}
	switch (ev->type) {
	case BUTTE__AGENT_EVENT__TYPE__SUBSCRIBED:
		on_subscribed(l, ev->subscribed);
		break;
	case BUTTE__AGENT_EVENT__TYPE__HEARTBEAT:
		log_debug("heartbeat from the master");
		send_pong(l);
		break;
	case BUTTE__AGENT_EVENT__TYPE__LAUNCH:
		if (ev->launch != NULL && a->simulated)
			agent_sim_launch(a, ev->launch);
		else if (ev->launch != NULL)
			agent_launch(a, ev->launch);
		break;
	case BUTTE__AGENT_EVENT__TYPE__KILL:
		if (ev->kill != NULL && ev->kill->framework_id != NULL && ev->kill->task_id != NULL &&
		    a->simulated)
			agent_sim_kill(a, ev->kill->framework_id->value, ev->kill->task_id->value);
		else if (ev->kill != NULL && ev->kill->framework_id != NULL &&
		    ev->kill->task_id != NULL)
			agent_kill(a, ev->kill->framework_id->value, ev->kill->task_id->value,
			    ev->kill->kill_policy);
		break;
	case BUTTE__AGENT_EVENT__TYPE__ACKNOWLEDGE:
		if (ev->acknowledge != NULL && ev->acknowledge->framework_id != NULL &&
		    ev->acknowledge->task_id != NULL)
			agent_update_ack(a, ev->acknowledge->framework_id->value,
			    ev->acknowledge->task_id->value, ev->acknowledge->uuid.data,
			    ev->acknowledge->uuid.len);
		break;
	case BUTTE__AGENT_EVENT__TYPE__SHUTDOWN_FRAMEWORK:
		if (ev->shutdown_framework != NULL && ev->shutdown_framework->framework_id != NULL &&
		    a->simulated)
			agent_sim_shutdown_framework(a,
			    ev->shutdown_framework->framework_id->value);
		else if (ev->shutdown_framework != NULL &&
		    ev->shutdown_framework->framework_id != NULL)
			agent_shutdown_framework(a, ev->shutdown_framework->framework_id->value);
		break;
	case BUTTE__AGENT_EVENT__TYPE__ERROR:
		log_error("the master reports an error: %s",
		    ev->error != NULL ? ev->error->message : "(no message)");
		break;
	default:
		log_warn("ignoring an agent event of unknown type %d", (int)ev->type);
		break;
	}
}

static void stream_response_cb(struct bt_http_call *call, void *arg)
{
	struct agent_link *l = arg;
	const char *sid = bt_http_call_header(call, "Mesos-Stream-Id");

	if (bt_http_call_status(call) != 200)
		return;
	free(l->stream_id);
	l->stream_id = sid != NULL ? xstrdup(sid) : NULL;
}

static int stream_data_cb(struct bt_http_call *call, const void *data, size_t len, void *arg)
{
	struct agent_link *l = arg;
	const char *rec;
	size_t rlen;
	char *cause = NULL;

	bt_recordio_feed(&l->rio, data, len);
	for (;;) {
		enum bt_recordio_result r = bt_recordio_next(&l->rio, &rec, &rlen, &cause);
		Butte__AgentEvent *ev;

		if (r == BT_RECORDIO_AGAIN)
			return 0;
		if (r == BT_RECORDIO_ERROR) {
			log_error("bad record from the master: %s", cause);
			free(cause);
			return -1;
		}
		ev = (Butte__AgentEvent *)bt_pb_decode_scoped(&butte__agent_event__descriptor, false,
		    rec, rlen, &cause);
		if (ev == NULL) {
			log_error("undecodable event of %zu bytes from the master", rlen);
			free(cause);
			return -1;
		}
		evtimer_del(l->watchdog_ev);
		handle_event(l, ev);
		bt_pb_decoded_free(&ev->base);
		if (l->stream != call)
			return -1;      /* the handler dropped this stream */
		arm_watchdog(l);
	}
}

static void stream_done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct agent_link *l = arg;
	char *why;

	if (l->stream != call)
		return;
	l->stream = NULL;
	if (status == 0)
		why = xasprintf("%s", error != NULL ? error : "connection failed");
	else if (status == 200)
		why = xstrdup("the event stream ended");
	else
		why = xasprintf("subscription answered %d: %.*s", status,
		    (int)(len > 512 ? 512 : len), body != NULL ? body : "");
	link_lost(l, why);
	free(why);
}

/* a task as the master should learn it again; its pieces are borrowed from t */
static Mesos__V1__Task *task_report(struct agent *a, struct agent_task *t)
{
	Mesos__V1__Task *k = xcalloc(1, sizeof *k);
	const Mesos__V1__TaskInfo *info = agent_task_info(t);

	mesos__v1__task__init(k);
	k->name = info->name;
	k->task_id = info->task_id;
	k->framework_id = xcalloc(1, sizeof *k->framework_id);
	mesos__v1__framework_id__init(k->framework_id);
	k->framework_id->value = t->framework_id;
	k->executor_id = xcalloc(1, sizeof *k->executor_id);
	mesos__v1__executor_id__init(k->executor_id);
	k->executor_id->value = t->task_id;
	k->agent_id = xcalloc(1, sizeof *k->agent_id);
	mesos__v1__agent_id__init(k->agent_id);
	k->agent_id->value = a->agent_id != NULL ? a->agent_id : "";
	k->state = t->state;
	k->n_resources = info->n_resources;
	k->resources = info->resources;
	k->n_statuses = t->nstatuses;
	k->statuses = t->statuses;
	if (agent_task_pending(t)) {
		Mesos__V1__TaskStatus *newest = t->statuses[t->nstatuses - 1];
		k->has_status_update_state = true;
		k->status_update_state = newest->state;
		if (newest->has_uuid) {
			k->has_status_update_uuid = true;
			k->status_update_uuid = newest->uuid;
		}
	}
	k->labels = info->labels;
	k->discovery = info->discovery;
	k->container = info->container;
	k->health_check = info->health_check;
	k->kill_policy = info->kill_policy;
	return k;
}

/* the tasks and frameworks to report: everything still running or with pending updates */
static void fill_subscribe(struct agent_link *l, Butte__AgentCall__Subscribe *sub)
{
	struct agent *a = l->agent;
	struct agent_task *t;
	Mesos__V1__FrameworkInfo *fw;
	size_t n = 0, nf = 0, i, cap = 0;

	TAILQ_FOREACH(t, &a->tasks, entry)
		cap++;
	sub->tasks = xcalloc(cap + 1, sizeof *sub->tasks);
	sub->frameworks = xcalloc(cap + 1, sizeof *sub->frameworks);
	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (bt_task_state_terminal(t->state) && !agent_task_pending(t))
			continue;
		sub->tasks[n++] = task_report(a, t);
		for (i = 0; i < nf; i++) {
			if (strcmp(sub->frameworks[i]->id->value, t->framework_id) == 0)
				break;
		}
		fw = agent_task_framework(t);
		if (i == nf && fw != NULL && fw->id != NULL)
			sub->frameworks[nf++] = fw;
	}
	sub->n_tasks = n;
	sub->n_frameworks = nf;
}

static void free_subscribe(Butte__AgentCall__Subscribe *sub)
{
	size_t i;

	for (i = 0; i < sub->n_tasks; i++) {
		free(sub->tasks[i]->executor_id);
		free(sub->tasks[i]->agent_id);
		free(sub->tasks[i]->framework_id);
		free(sub->tasks[i]);
	}
	free(sub->tasks);
	free(sub->frameworks);
}

/* the SUBSCRIBE call as bytes; caller frees */
static uint8_t *subscribe_body(struct agent_link *l, size_t *len, size_t *ntasks)
{
	struct agent *a = l->agent;
	Butte__AgentCall call = BUTTE__AGENT_CALL__INIT;
	Butte__AgentCall__Subscribe sub = BUTTE__AGENT_CALL__SUBSCRIBE__INIT;
	Mesos__V1__AgentInfo info = MESOS__V1__AGENT_INFO__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	uint8_t *buf;

	info.hostname = a->hostname;
	info.has_port = true;
	info.port = a->port;
	info.resources = bt_resources_to_pb(&a->resources, NULL, &info.n_resources);
	info.attributes = bt_attributes_to_pb(&a->attributes, &info.n_attributes);
	if (a->agent_id != NULL) {
		aid.value = a->agent_id;
		info.id = &aid;
		call.agent_id = &aid;
	}
	sub.agent_info = &info;
	sub.version = AGENT_VERSION;
	fill_subscribe(l, &sub);
	call.has_type = true;
	call.type = BUTTE__AGENT_CALL__TYPE__SUBSCRIBE;
	call.subscribe = &sub;
	*len = butte__agent_call__get_packed_size(&call);
	buf = xmalloc(*len + 1);
	butte__agent_call__pack(&call, buf);
	*ntasks = sub.n_tasks;
	free_subscribe(&sub);
	bt_attributes_pb_free(info.attributes, info.n_attributes);
	bt_resources_pb_free(info.resources, info.n_resources);
	return buf;
}

static void subscribe(struct agent_link *l)
{
	struct agent *a = l->agent;
	struct bt_http_request_opts o = { 0 };
	const char *headers[] = { "Content-Type: application/x-protobuf",
	    "Accept: application/x-protobuf", NULL };
	char *url = xasprintf("%s/api/v1/agent", a->master_url);
	size_t len, ntasks;
	uint8_t *buf = subscribe_body(l, &len, &ntasks);

	if (l->stream != NULL)
		bt_http_call_cancel(l->stream);
	l->gen++;
	bt_recordio_release(&l->rio);
	bt_recordio_init(&l->rio, MAX_RECORD);
	l->state = LINK_SUBSCRIBING;
	o.method = "POST";
	o.url = url;
	o.headers = headers;
	o.body = buf;
	o.body_len = len;
	o.on_response = stream_response_cb;
	o.on_data = stream_data_cb;
	o.on_done = stream_done_cb;
	o.arg = l;
	log_info("subscribing to the master at %s%s%s with %zu task(s)", a->master_url,
	    a->agent_id != NULL ? " as " : "", a->agent_id != NULL ? a->agent_id : "", ntasks);
	l->stream = bt_http_request(a->client, &o);
	arm_watchdog(l);
	free(buf);
	free(url);
}

static void subscribe_cb(evutil_socket_t fd, short what, void *arg)
{
	subscribe(arg);
}

/* random delay in [0, b], then double b up to a minute */
static void schedule_subscribe(struct agent_link *l)
{
	uint32_t r = 0;
	double delay;
	struct timeval tv;

	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (uint32_t)rand();
	delay = l->backoff * ((double)r / (double)UINT32_MAX);
	l->backoff *= 2;
	if (l->backoff > BACKOFF_MAX)
		l->backoff = BACKOFF_MAX;
	if (l->backoff <= 0)
		l->backoff = 1;
	log_debug("subscribing again in %.3f s", delay);
	tv = bt_timeval(delay);
	evtimer_add(l->subscribe_ev, &tv);
}

struct agent_link *agent_link_new(struct agent *a)
{
	struct agent_link *l = xcalloc(1, sizeof *l);

	l->agent = a;
	l->state = LINK_IDLE;
	l->backoff = a->backoff_factor > 0 ? a->backoff_factor : 0.001;
	l->heartbeat = DEFAULT_HEARTBEAT;
	bt_recordio_init(&l->rio, MAX_RECORD);
	l->subscribe_ev = evtimer_new(a->base, subscribe_cb, l);
	l->watchdog_ev = evtimer_new(a->base, watchdog_cb, l);
	l->flush_ev = event_new(a->base, -1, 0, flush_cb, l);
	TAILQ_INIT(&l->calls);
	return l;
}

void agent_link_start(struct agent_link *l)
{
	schedule_subscribe(l);
}

/* the call pipe must be freed first: it drops the calls without callbacks */
void agent_link_free(struct agent_link *l)
{
	struct link_call *c;

	if (l == NULL)
		return;
	while ((c = TAILQ_FIRST(&l->calls)) != NULL) {
		TAILQ_REMOVE(&l->calls, c, entry);
		free(c);
	}
	event_free(l->subscribe_ev);
	event_free(l->watchdog_ev);
	event_free(l->flush_ev);
	free(l->batch);
	bt_recordio_release(&l->rio);
	free(l->stream_id);
	free(l->master_hostname);
	free(l);
}
