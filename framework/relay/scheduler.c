/*
 * scheduler.c -- relay's connection to the master: the Mesos v1 scheduler API.
 *
 * SUBSCRIBE is a long POST to /api/v1/scheduler in protobuf whose response
 * is a RecordIO stream of Events; the Mesos-Stream-Id response header and
 * the framework id go with every other call, each on its own request.
 * Calls are built as JSON in Mesos's mapping, turned into protobuf by
 * common/pbjson and sent with Content-Type application/x-protobuf. When
 * the stream ends, or five heartbeats are missed, relay subscribes again
 * with its stored framework id after a backoff that doubles up to 5 s.
 */
#include "relay.h"

#include "ids.h"
#include "json.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define PROTOBUF "application/x-protobuf"
#define SUB_BACKOFF_MIN 0.25
#define SUB_BACKOFF_MAX 5.0
#define MAX_RECORD (64u * 1024 * 1024)
#define GROUP_COMMIT 0.005             /* seconds between commits while events keep coming */

static void subscribe(struct relay *r);

static void sub_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	subscribe(arg);
}

/* the stream is gone: forget it and subscribe again after the backoff */
static void schedule_resubscribe(struct relay *r)
{
	struct timeval tv;
	double delay = r->sub_backoff;

	r->subscribed = false;
	relay_offers_drop(r);
	free(r->stream_id);
	r->stream_id = NULL;
	free(r->stream_header);
	r->stream_header = NULL;
	bt_recordio_release(&r->rio);
	r->sub_backoff = r->sub_backoff == 0 ? SUB_BACKOFF_MIN : r->sub_backoff * 2;
	if (r->sub_backoff > SUB_BACKOFF_MAX)
		r->sub_backoff = SUB_BACKOFF_MAX;
	tv = bt_timeval(delay);
	evtimer_add(r->sub_timer, &tv);
	log_debug("subscribing again in %.2fs", delay);
}

static json_t *framework_info(struct relay *r)
{
	json_t *fi = json_pack("{s:s, s:s, s:f, s:b, s:s, s:s}",
	    "user", r->cfg.mesos_user,
	    "name", r->cfg.framework_name,
	    "failover_timeout", r->cfg.failover_timeout,
	    "checkpoint", 1,
	    "hostname", r->cfg.hostname,
	    "role", r->cfg.mesos_role);
	char *url = xasprintf("http://%s:%d", r->cfg.hostname, r->cfg.http_port);

	json_object_set_new(fi, "webui_url", json_string(url));
	/* TASK_UNREACHABLE rather than TASK_LOST: unreachableStrategy decides (unreachable.c) */
	json_object_set_new(fi, "capabilities", json_pack("[{s:s}]", "type", "PARTITION_AWARE"));
	free(url);
	if (r->framework_id != NULL)
		json_object_set_new(fi, "id", json_pack("{s:s}", "value", r->framework_id));
	return fi;
}

static void on_subscribed(struct relay *r, const Mesos__V1__Scheduler__Event__Subscribed *s)
{
	const char *id = s->framework_id->value;

	if (r->framework_id == NULL || strcmp(r->framework_id, id) != 0) {
		free(r->framework_id);
		r->framework_id = xstrdup(id);
		relay_state_save_framework_id(r);
	}
	r->subscribed = true;
	r->sub_backoff = 0;
	r->suppressed = false;
	r->heartbeat_interval = s->has_heartbeat_interval_seconds &&
	    s->heartbeat_interval_seconds > 0 ? s->heartbeat_interval_seconds : 15;
	r->subscribed_at = bt_monotonic();
	relay_tasks_subscribed(r);
	log_info("subscribed as framework '%s' (heartbeat %.1fs)", id, r->heartbeat_interval);
	relay_reconcile(r);
	r->revive_wanted = true;
	relay_converge(r);
}

static void on_error_event(struct relay *r, const char *message)
{
	log_error("master error: %s", message);
	/* the master forgot us (failover timeout ran out): start as a new framework */
	if (strstr(message, "removed") != NULL) {
		free(r->framework_id);
		r->framework_id = NULL;
		relay_state_save_framework_id(r);
	}
}

static void handle_event(struct relay *r, const Mesos__V1__Scheduler__Event *ev)
{
	switch (ev->type) {
	case MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED:
		if (ev->subscribed != NULL)
			on_subscribed(r, ev->subscribed);
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS:
		if (ev->offers != NULL)
			relay_offers(r, ev->offers);
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__RESCIND:
		log_debug("offer '%s' rescinded", ev->rescind ? ev->rescind->offer_id->value : "?");
		if (ev->rescind != NULL && ev->rescind->offer_id != NULL)
			relay_offers_rescind(r, ev->rescind->offer_id->value);
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE:
		if (ev->update != NULL && ev->update->status != NULL)
			relay_task_update(r, ev->update->status);
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE:
		log_info("failure reported for agent '%s'", ev->failure && ev->failure->agent_id ?
		    ev->failure->agent_id->value : "?");
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__ERROR:
		on_error_event(r, ev->error ? ev->error->message : "?");
		break;
	case MESOS__V1__SCHEDULER__EVENT__TYPE__HEARTBEAT:
		log_debug("heartbeat");
		break;
	default:
		log_debug("ignoring event type %d", (int)ev->type);
		break;
	}
}

static void sub_response_cb(struct bt_http_call *call, void *arg)
{
	struct relay *r = arg;
	const char *sid = bt_http_call_header(call, "Mesos-Stream-Id");

	if (bt_http_call_status(call) != 200)
		return;
	free(r->stream_id);
	r->stream_id = sid != NULL ? xstrdup(sid) : NULL;
	free(r->stream_header);
	r->stream_header = NULL;
	r->last_event = bt_monotonic();
	log_debug("subscription stream '%s' open", sid ? sid : "");
}

/*
 * A big OFFERS event outlives its handler (offers.c matches it a slice at a
 * time), so it is unpacked on the heap and handed over instead of decoded
 * for the moment and copied. It is told by its first field, the type, which
 * a master writes first (protobuf writes fields in the order of their
 * numbers); anything else takes the common path.
 */
#define BIG_OFFERS (16u << 10)

static bool big_offers(const char *rec, size_t len)
{
	return len >= BIG_OFFERS && (unsigned char)rec[0] == 0x08 &&      /* field 1, varint */
	    (unsigned char)rec[1] == MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS;
}

static int sub_data_cb(struct bt_http_call *call, const void *data, size_t len, void *arg)
{
	struct relay *r = arg;
	const char *rec;
	size_t rlen;
	char *cause = NULL;
	enum bt_recordio_result res;

	int rc = -1;

	r->last_event = bt_monotonic();
	bt_recordio_feed(&r->rio, data, len);
	relay_batch_begin(r);
	while ((res = bt_recordio_next(&r->rio, &rec, &rlen, &cause)) == BT_RECORDIO_RECORD) {
		Mesos__V1__Scheduler__Event *ev;

		if (big_offers(rec, rlen)) {
			ev = mesos__v1__scheduler__event__unpack(NULL, rlen, (const uint8_t *)rec);
			if (ev != NULL && ev->type == MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS) {
				relay_offers_take(r, ev);
				if (r->sub_call == NULL)
					goto out;
				continue;
			}
			if (ev != NULL)
				mesos__v1__scheduler__event__free_unpacked(ev, NULL);
		}
		ev = (Mesos__V1__Scheduler__Event *)bt_pb_decode_scoped(
		    &mesos__v1__scheduler__event__descriptor, false, rec, rlen, &cause);
		if (ev == NULL) {
			log_error("undecodable event from the master: %s", cause);
			free(cause);
			goto out;
		}
		handle_event(r, ev);
		bt_pb_decoded_free(&ev->base);
		if (r->sub_call == NULL)
			goto out;
	}
	if (res == BT_RECORDIO_ERROR) {
		log_error("bad event stream from the master: %s", cause);
		free(cause);
		goto out;
	}
	rc = 0;
out:
	relay_batch_end(r);
	return rc;
}

static void sub_done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct relay *r = arg;

	r->sub_call = NULL;
	if (status == 0)
		log_warn("subscription to %s failed: %s", r->cfg.master_hostport,
		    error ? error : "no response");
	else if (status != 200)
		log_warn("subscription refused: %d %.*s", status, (int)(len > 300 ? 300 : len),
		    body ? body : "");
	else
		log_warn("subscription stream to %s ended", r->cfg.master_hostport);
	schedule_resubscribe(r);
}

static void subscribe(struct relay *r)
{
	json_t *call = json_pack("{s:s, s:{s:o}}", "type", "SUBSCRIBE", "subscribe",
	    "framework_info", framework_info(r));
	const char *headers[] = { "Content-Type: " PROTOBUF, "Accept: " PROTOBUF, NULL };
	struct bt_http_request_opts o = { 0 };
	ProtobufCMessage *msg;
	char *cause = NULL;
	void *body;
	size_t len;

	if (r->framework_id != NULL)
		json_object_set_new(call, "framework_id", json_pack("{s:s}", "value", r->framework_id));
	msg = bt_pbjson_to_message(&mesos__v1__scheduler__call__descriptor, call, &cause);
	json_decref(call);
	if (msg == NULL) {
		log_error("unable to build SUBSCRIBE: %s", cause);
		free(cause);
		schedule_resubscribe(r);
		return;
	}
	body = bt_pb_encode_alloc(msg, false, &len);
	protobuf_c_message_free_unpacked(msg, NULL);
	bt_recordio_release(&r->rio);
	bt_recordio_init(&r->rio, MAX_RECORD);
	o.method = "POST";
	o.url = r->cfg.master_url;
	o.headers = headers;
	o.body = body;
	o.body_len = len;
	o.connect_timeout = 5;
	o.on_response = sub_response_cb;
	o.on_data = sub_data_cb;
	o.on_done = sub_done_cb;
	o.arg = r;
	log_info("subscribing to %s%s%s", r->cfg.master_hostport,
	    r->framework_id ? " as " : "", r->framework_id ? r->framework_id : "");
	r->sub_call = bt_http_request(r->client, &o);
	free(body);
}

void relay_scheduler_start(struct relay *r)
{
	r->sub_timer = evtimer_new(r->base, sub_timer_cb, r);
	bt_recordio_init(&r->rio, MAX_RECORD);
	subscribe(r);
}

void relay_scheduler_stop(struct relay *r)
{
	relay_offers_drop(r);
	relay_state_commit(r);
	r->commit_pending = false;
	if (r->commit_timer != NULL) {
		event_free(r->commit_timer);
		r->commit_timer = NULL;
	}
	if (r->revive_timer != NULL) {
		event_free(r->revive_timer);
		r->revive_timer = NULL;
	}
	while (r->npending > 0)
		free(r->pending[--r->npending].body);
	free(r->pending);
	r->pending = NULL;
	r->apending = 0;
	if (r->sub_call != NULL) {
		bt_http_call_cancel(r->sub_call);
		r->sub_call = NULL;
	}
	if (r->sub_timer != NULL) {
		event_free(r->sub_timer);
		r->sub_timer = NULL;
	}
	bt_recordio_release(&r->rio);
}

static void call_done_cb(int status, const char *body, size_t len, const char *error, void *arg)
{
	const char *type = arg;         /* a static enum name: nothing to free */

	if (status == 202 || status == 200)
		log_debug("%s accepted", type);
	else if (status == 0)
		log_warn("%s call failed: %s", type, error ? error : "no response");
	else
		log_warn("%s call answered %d: %.*s", type, status, (int)(len > 300 ? 300 : len),
		    body ? body : "");
	if (status != 202 && status != 200 && strcmp(type, "REVIVE") == 0) {
		/* offers may still be suppressed: the tick revives again */
		relay_main->revive_wanted = true;
		relay_main->suppressed = true;
	}
}

void relay_batch_begin(struct relay *r)
{
	if (r->batch++ == 0)
		relay_state_begin(r);
}

static void post_call(struct relay *r, void *body, size_t len, const char *type);

/* calls whose records were committed, waiting until they are on disk */
struct durable_calls {
	struct relay *r;
	struct relay_pending *p;
	size_t n;
};

static void post_durable_cb(void *arg)
{
	struct durable_calls *d = arg;
	size_t i;

	for (i = 0; i < d->n; i++)
		post_call(d->r, d->p[i].body, d->p[i].len, d->p[i].type);
	free(d->p);
	free(d);
}

/* commit what the batches wrote and send the calls that waited for it, once it is on disk */
void relay_flush(struct relay *r)
{
	struct durable_calls *d;

	if (r->batch > 0)
		return;
	if (r->commit_timer != NULL)
		evtimer_del(r->commit_timer);
	r->commit_pending = false;
	relay_state_commit(r);
	r->last_commit = bt_monotonic();
	if (r->npending == 0)
		return;
	d = xmalloc(sizeof *d);
	d->r = r;
	d->p = r->pending;
	d->n = r->npending;
	r->pending = NULL;
	r->npending = r->apending = 0;
	relay_state_when_durable(r, post_durable_cb, d);
}

static void commit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_flush(arg);
}

/*
 * Group commit: while work keeps coming, the transaction stays open
 * until GROUP_COMMIT has passed since the last commit, so one fsync
 * covers many events; the calls that depend on it wait as long.
 */
void relay_batch_end(struct relay *r)
{
	double wait;
	struct timeval tv;

	if (r->batch == 0 || --r->batch > 0)
		return;
	wait = r->last_commit + GROUP_COMMIT - bt_monotonic();
	if (wait <= 0 || r->flush_now) {
		r->flush_now = false;
		relay_flush(r);
		return;
	}
	if (r->commit_timer == NULL)
		r->commit_timer = evtimer_new(r->base, commit_timer_cb, r);
	if (!r->commit_pending) {
		tv = bt_timeval(wait);
		evtimer_add(r->commit_timer, &tv);
		r->commit_pending = true;
	}
}

/* POST a packed Call to the master; takes ownership of body */
static void post_call(struct relay *r, void *body, size_t len, const char *type)
{
	const char *headers[] = { "Content-Type: " PROTOBUF, "Accept: application/json", NULL, NULL };

	if (!r->subscribed || r->stream_id == NULL) {
		log_debug("not subscribed: dropping %s", type);
		free(body);
		return;
	}
	if (r->stream_header == NULL)
		r->stream_header = xasprintf("Mesos-Stream-Id: %s", r->stream_id);
	headers[2] = r->stream_header;
	bt_http_pipe_post_take(r->calls, headers, body, len, call_done_cb, (void *)type);
}

void relay_call_pb(struct relay *r, Mesos__V1__Scheduler__Call *call)
{
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
	const ProtobufCEnumValue *name;
	const char *type;
	struct relay_pending *p;
	void *body;
	size_t len;

	name = protobuf_c_enum_descriptor_get_value(&mesos__v1__scheduler__call__type__descriptor,
	    (int)call->type);
	type = name != NULL ? name->name : "UNKNOWN";   /* static: outlives the call */
	if (!r->subscribed || r->framework_id == NULL) {
		log_debug("not subscribed: dropping %s", type);
		return;
	}
	if (call->framework_id == NULL) {
		fid.value = r->framework_id;
		call->framework_id = &fid;
	}
	body = bt_pb_encode_alloc(&call->base, false, &len);
	if (call->framework_id == &fid)
		call->framework_id = NULL;
	/* ACCEPT carries tasks whose records must be on disk first, ACKNOWLEDGE an update recorded */
	if ((r->batch > 0 || r->commit_pending) &&
	    (call->type == MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT ||
	    call->type == MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE)) {
		if (r->npending == r->apending) {
			r->apending = r->apending ? r->apending * 2 : 64;
			r->pending = xreallocarray(r->pending, r->apending, sizeof *r->pending);
		}
		p = &r->pending[r->npending++];
		p->body = body;
		p->len = len;
		p->type = type;
		return;
	}
	post_call(r, body, len, type);
}

void relay_call(struct relay *r, json_t *call)
{
	const char *type = bt_json_string(call, "type") ? bt_json_string(call, "type") : "call";
	ProtobufCMessage *msg;
	char *cause = NULL;

	msg = bt_pbjson_to_message(&mesos__v1__scheduler__call__descriptor, call, &cause);
	if (msg == NULL) {
		log_error("unable to build %s call: %s", type, cause);
		free(cause);
	} else {
		relay_call_pb(r, (Mesos__V1__Scheduler__Call *)msg);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	json_decref(call);
}

void relay_scheduler_tick(struct relay *r)
{
	double now = bt_monotonic();

	if (r->subscribed && r->sub_call != NULL &&
	    now - r->last_event > 5 * r->heartbeat_interval) {
		log_warn("no event from the master for %.0fs: subscribing again", now - r->last_event);
		bt_http_call_cancel(r->sub_call);
		r->sub_call = NULL;
		schedule_resubscribe(r);
		return;
	}
	if (r->subscribed && now >= r->next_reconcile)
		relay_reconcile(r);
}
