/*
 * scheduler.c -- POST /api/v1/scheduler: content negotiation, validation
 * and dispatch of scheduler calls (reference §2).
 *
 * The request body is a mesos.v1.scheduler.Call in JSON or protobuf,
 * chosen by Content-Type (missing: 400, anything else: 415). SUBSCRIBE
 * answers with a chunked RecordIO stream whose encoding is negotiated from
 * Accept (JSON preferred when acceptable, then protobuf, else 406; a
 * missing Accept or a bare wildcard means the request's own type). Every
 * other call must name a known (400), subscribed (403) framework and carry
 * the stream id of its subscription (400), and is answered 202 with an
 * empty body once handled. Calls butte has nothing to do for (MESSAGE,
 * SHUTDOWN, REQUEST, inverse offers, operation feedback) are accepted
 * with 202 and ignored, since butte runs no executors.
 */
#include "master.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "log.h"
#include "pbjson.h"
#include "xmalloc.h"

#define CT_JSON "application/json"
#define CT_PROTOBUF "application/x-protobuf"

/* one media range of an Accept header; 0 when q=0 */
static bool range_acceptable(const char *item, char *type, size_t size)
{
	const char *semi = strchr(item, ';'), *p;
	size_t n = semi != NULL ? (size_t)(semi - item) : strlen(item);

	while (n > 0 && isspace((unsigned char)*item)) {
		item++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)item[n - 1]))
		n--;
	if (n >= size)
		n = size - 1;
	for (size_t i = 0; i < n; i++)
		type[i] = (char)tolower((unsigned char)item[i]);
	type[n] = '\0';
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		const char *q = p + 1;
		while (isspace((unsigned char)*q))
			q++;
		if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=' && strtod(q + 2, NULL) <= 0)
			return false;
	}
	return true;
}

/* 0 and *json, or -1 when neither type is acceptable */
static int negotiate(const char *accept, bool request_json, bool *json)
{
	bool want_json = false, want_pb = false, wildcard = false;
	char *copy, *save = NULL, *item;
	char type[128];

	if (accept == NULL || accept[0] == '\0') {
		*json = request_json;
		return 0;
	}
	copy = xstrdup(accept);
	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		if (!range_acceptable(item, type, sizeof type))
			continue;
		if (strcmp(type, CT_JSON) == 0)
			want_json = true;
		else if (strcmp(type, CT_PROTOBUF) == 0)
			want_pb = true;
		else if (strcmp(type, "*/*") == 0 || strcmp(type, "application/*") == 0)
			wildcard = true;
	}
	free(copy);
	if (want_json)
		*json = true;
	else if (want_pb)
		*json = false;
	else if (wildcard)
		*json = request_json;
	else
		return -1;
	return 0;
}

static void noop_closed_cb(struct bt_http_stream *st, void *arg)
{
}

/* a stream that carries one ERROR event and ends */
static void subscribe_error(struct evhttp_request *req, bool json, const char *message)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
	Mesos__V1__Scheduler__Event__Error err = MESOS__V1__SCHEDULER__EVENT__ERROR__INIT;
	struct bt_http_stream *st;
	size_t len;
	void *buf;

	err.message = (char *)message;
	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__ERROR;
	ev.error = &err;
	st = bt_http_stream_start(req, 200, json ? CT_JSON : CT_PROTOBUF, true,
	    MASTER_STREAM_MAX_BUFFERED, noop_closed_cb, NULL);
	buf = bt_pb_encode_alloc(&ev.base, json, &len);
	if (master_http_stream_send(st, buf, len) == 0)
		bt_http_stream_close(st);
	free(buf);
}

static void subscribe(struct master *m, struct evhttp_request *req, Mesos__V1__Scheduler__Call *call,
    bool json)
{
	Mesos__V1__FrameworkInfo *info = call->subscribe->framework_info;
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
	struct master_framework *fw;
	char *id = NULL;

	if (info->id != NULL && info->id->value != NULL && info->id->value[0] != '\0') {
		fw = master_framework_find(m, info->id->value);
		if (fw == NULL && master_framework_find_completed(m, info->id->value) != NULL) {
			log_info("framework '%s' tried to subscribe after its removal", info->id->value);
			subscribe_error(req, json, "Framework has been removed");
			return;
		}
		if (fw == NULL) {
			log_info("framework '%s' is unknown; accepting its id (failover)",
			    info->id->value);
			fw = master_framework_new(m, info, FRAMEWORK_RECOVERED);
		}
		master_framework_connect(fw, req, json, info);
		return;
	}
	id = xasprintf("%s-%04llu", m->id, (unsigned long long)m->next_framework++);
	fid.value = id;
	info->id = &fid;
	fw = master_framework_new(m, info, FRAMEWORK_RECOVERED);
	master_framework_connect(fw, req, json, info);
	info->id = NULL;        /* the call is freed by the caller */
	free(id);
}

static void subscribe_call(struct master *m, struct evhttp_request *req,
    Mesos__V1__Scheduler__Call *call, bool request_json)
{
	Mesos__V1__FrameworkInfo *info;
	bool json;

	if (bt_http_header(req, "Mesos-Stream-Id") != NULL) {
		bt_http_error(req, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' "
		    "header");
		return;
	}
	if (call->subscribe == NULL || call->subscribe->framework_info == NULL) {
		bt_http_error(req, 400, "Expecting 'subscribe' to be present");
		return;
	}
	info = call->subscribe->framework_info;
	if (call->framework_id != NULL && (info->id == NULL ||
	    strcmp(call->framework_id->value, info->id->value) != 0)) {
		bt_http_error(req, 400, "'framework_id' differs from "
		    "'subscribe.framework_info.id'");
		return;
	}
	if (negotiate(bt_http_header(req, "Accept"), request_json, &json) != 0) {
		bt_http_error(req, 406, "Expecting 'Accept' to allow 'application/json' or "
		    "'application/x-protobuf'");
		return;
	}
	subscribe(m, req, call, json);
}

/* the framework a non-SUBSCRIBE call is for, or NULL after answering the error */
static struct master_framework *caller(struct master *m, struct evhttp_request *req,
    const Mesos__V1__Scheduler__Call *call)
{
	struct master_framework *fw;
	const char *sid;

	if (call->framework_id == NULL || call->framework_id->value == NULL) {
		bt_http_error(req, 400, "Expecting 'framework_id' to be present");
		return NULL;
	}
	fw = master_framework_find(m, call->framework_id->value);
	if (fw == NULL) {
		bt_http_error(req, 400, "Framework cannot be found");
		return NULL;
	}
	if (fw->state != FRAMEWORK_CONNECTED || fw->stream == NULL) {
		bt_http_error(req, 403, "Framework is not subscribed");
		return NULL;
	}
	sid = bt_http_header(req, "Mesos-Stream-Id");
	if (sid == NULL) {
		bt_http_error(req, 400, "All non-subscribe calls should include the "
		    "'Mesos-Stream-Id' header");
		return NULL;
	}
	if (strcmp(sid, fw->stream_id) != 0) {
		bt_http_error(req, 400, "The stream ID '%s' included in this request didn't match "
		    "the stream ID currently associated with framework ID '%s'", sid, fw->id);
		return NULL;
	}
	return fw;
}

static void reconcile_operations(struct evhttp_request *req, bool request_json)
{
	Mesos__V1__Scheduler__Response r = MESOS__V1__SCHEDULER__RESPONSE__INIT;
	Mesos__V1__Scheduler__Response__ReconcileOperations ro =
	    MESOS__V1__SCHEDULER__RESPONSE__RECONCILE_OPERATIONS__INIT;
	size_t len;
	void *buf;
	bool json;

	if (negotiate(bt_http_header(req, "Accept"), request_json, &json) != 0) {
		bt_http_error(req, 406, "Expecting 'Accept' to allow 'application/json' or "
		    "'application/x-protobuf'");
		return;
	}
	r.has_type = true;
	r.type = MESOS__V1__SCHEDULER__RESPONSE__TYPE__RECONCILE_OPERATIONS;
	r.reconcile_operations = &ro;
	buf = bt_pb_encode_alloc(&r.base, json, &len);
	bt_http_reply(req, 200, json ? CT_JSON : CT_PROTOBUF, buf, len);
	free(buf);
}

static void update_framework(struct master_framework *fw, struct evhttp_request *req,
    const Mesos__V1__Scheduler__Call *call)
{
	Mesos__V1__FrameworkInfo *info;

	if (call->update_framework == NULL || call->update_framework->framework_info == NULL) {
		bt_http_error(req, 400, "Expecting 'update_framework' to be present");
		return;
	}
	info = call->update_framework->framework_info;
	if (info->id == NULL || strcmp(info->id->value, fw->id) != 0) {
		bt_http_error(req, 400, "'framework_info.id' differs from 'framework_id'");
		return;
	}
	mesos__v1__framework_info__free_unpacked(fw->info, NULL);
	fw->info = (Mesos__V1__FrameworkInfo *)bt_pb_copy(&info->base);
	fw->partition_aware = master_framework_partition_aware(info);
	master_registry_put_framework(fw->m, fw);
	bt_http_reply(req, 200, NULL, NULL, 0);
}

/* 0 when the payload named by the call type is present, else answers 400 */
static int need(struct evhttp_request *req, const void *payload, const char *name)
{
	if (payload != NULL)
		return 0;
	bt_http_error(req, 400, "Expecting '%s' to be present", name);
	return -1;
}

static void dispatch(struct master *m, struct evhttp_request *req, Mesos__V1__Scheduler__Call *call,
    bool request_json)
{
	struct master_framework *fw = caller(m, req, call);

	if (fw == NULL)
		return;
	switch (call->type) {
	case MESOS__V1__SCHEDULER__CALL__TYPE__TEARDOWN:
		bt_http_reply(req, 202, NULL, NULL, 0);
		master_framework_remove(fw, "teardown requested");
		return;
	case MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT:
		if (need(req, call->accept, "accept") != 0)
			return;
		master_accept(fw, call->accept);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE:
		if (need(req, call->decline, "decline") != 0)
			return;
		master_decline(fw, call->decline);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__REVIVE:
		allocator_revive(m->allocator, fw->alloc);
		master_allocate_soon(m);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__SUPPRESS:
		allocator_suppress(m->allocator, fw->alloc);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__KILL:
		if (need(req, call->kill, "kill") != 0)
			return;
		master_task_kill(fw, call->kill->task_id->value,
		    call->kill->agent_id != NULL ? call->kill->agent_id->value : NULL,
		    call->kill->kill_policy);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE:
		if (need(req, call->acknowledge, "acknowledge") != 0)
			return;
		if (call->acknowledge->uuid.len != 16) {
			bt_http_error(req, 400, "'acknowledge.uuid' is not a valid UUID");
			return;
		}
		master_task_acknowledge(fw, call->acknowledge->agent_id->value,
		    call->acknowledge->task_id->value, call->acknowledge->uuid.data,
		    call->acknowledge->uuid.len);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE:
		if (need(req, call->reconcile, "reconcile") != 0)
			return;
		master_reconcile(fw, call->reconcile);
		break;
	case MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE_OPERATIONS:
		reconcile_operations(req, request_json);
		return;
	case MESOS__V1__SCHEDULER__CALL__TYPE__UPDATE_FRAMEWORK:
		update_framework(fw, req, call);
		return;
	case MESOS__V1__SCHEDULER__CALL__TYPE__MESSAGE:
	case MESOS__V1__SCHEDULER__CALL__TYPE__SHUTDOWN:
	case MESOS__V1__SCHEDULER__CALL__TYPE__REQUEST:
	case MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT_INVERSE_OFFERS:
	case MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE_INVERSE_OFFERS:
	case MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE_OPERATION_STATUS:
		log_debug("framework '%s': call type %d accepted and ignored (no executors)",
		    fw->id, (int)call->type);
		break;
	default:
		bt_http_error(req, 400, "Unknown call type %d", (int)call->type);
		return;
	}
	bt_http_reply(req, 202, NULL, NULL, 0);
}

void master_scheduler_api_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct master *m = arg;
	Mesos__V1__Scheduler__Call *call;
	char *ctype, *cause = NULL;
	const char *body;
	size_t len;
	bool json;

	if (strcmp(bt_http_method(req), "POST") != 0) {
		bt_http_error(req, 405, "Expecting a 'POST' request, received '%s'",
		    bt_http_method(req));
		return;
	}
	ctype = bt_http_content_type(req);
	if (ctype == NULL) {
		bt_http_error(req, 400, "Expecting 'Content-Type' to be present");
		return;
	}
	if (strcmp(ctype, CT_JSON) != 0 && strcmp(ctype, CT_PROTOBUF) != 0) {
		bt_http_error(req, 415, "Expecting 'Content-Type' of application/json or "
		    "application/x-protobuf, received '%s'", ctype);
		free(ctype);
		return;
	}
	json = strcmp(ctype, CT_JSON) == 0;
	free(ctype);
	body = bt_http_body(req, &len);
	call = (Mesos__V1__Scheduler__Call *)bt_pb_decode_scoped(
	    &mesos__v1__scheduler__call__descriptor, json, body, len, &cause);
	if (call == NULL) {
		bt_http_error(req, 400, "Failed to parse body into Call: %s", cause);
		free(cause);
		return;
	}
	if (!call->has_type || call->type == MESOS__V1__SCHEDULER__CALL__TYPE__UNKNOWN)
		bt_http_error(req, 400, "Expecting 'type' to be present");
	else if (call->type == MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE)
		subscribe_call(m, req, call, json);
	else
		dispatch(m, req, call, json);
	bt_pb_decoded_free(&call->base);
}
