/*
 * test_pbjson.c -- protobuf <-> JSON by Mesos's mapping rules.
 *
 * Each scheduler Call and Event below goes JSON -> message -> JSON ->
 * message -> JSON, and also message -> protobuf bytes -> message -> JSON;
 * all the JSON produced must agree. Then the rules themselves are checked
 * on the output (defaults, enum names, int64 numbers, empty repeated
 * fields left out) and every kind of bad input must fail with a cause that
 * names the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "json.h"
#include "mesos.pb-c.h"
#include "pbjson.h"
#include "scheduler.pb-c.h"
#include "xmalloc.h"

#define CALL_DESC (&mesos__v1__scheduler__call__descriptor)
#define EVENT_DESC (&mesos__v1__scheduler__event__descriptor)

/* the value at a dotted path; numeric parts index arrays */
static json_t *at(json_t *j, const char *path)
{
	char *copy = xstrdup(path), *part, *save = NULL;

	for (part = strtok_r(copy, ".", &save); part != NULL && j != NULL;
	    part = strtok_r(NULL, ".", &save)) {
		if (json_is_array(j))
			j = json_array_get(j, strtoul(part, NULL, 10));
		else
			j = json_object_get(j, part);
	}
	free(copy);
	return j;
}

static void assert_str_at(json_t *j, const char *path, const char *want)
{
	json_t *v = at(j, path);

	if (!json_is_string(v))
		fail_msg("'%s' is not a string", path);
	assert_string_equal(json_string_value(v), want);
}

static void assert_num_at(json_t *j, const char *path, double want)
{
	json_t *v = at(j, path);

	if (!json_is_number(v))
		fail_msg("'%s' is not a number", path);
	assert_true(json_number_value(v) == want);
}

static json_t *parse(const char *text)
{
	char *cause = NULL;
	json_t *j = bt_json_parse(text, strlen(text), &cause);

	if (j == NULL)
		fail_msg("test JSON does not parse: %s", cause);
	return j;
}

static void assert_json_equal(json_t *a, json_t *b)
{
	if (!json_equal(a, b)) {
		char *ta = bt_json_dump(a), *tb = bt_json_dump(b);
		print_error("%s\n!=\n%s\n", ta, tb);
		free(ta);
		free(tb);
		fail();
	}
}

/*
 * JSON text -> message (returned, caller frees) with every round trip
 * checked; *out gets the message's JSON (caller decrefs).
 */
static ProtobufCMessage *roundtrip(const ProtobufCMessageDescriptor *desc, const char *text,
    json_t **out)
{
	json_t *in = parse(text), *j1, *j2, *j3;
	ProtobufCMessage *m1, *m2, *m3;
	char *cause = NULL;
	void *wire;
	size_t len;

	m1 = bt_pbjson_to_message(desc, in, &cause);
	if (m1 == NULL)
		fail_msg("to_message failed: %s", cause);
	j1 = bt_pbjson_from_message(m1);
	m2 = bt_pbjson_to_message(desc, j1, &cause);
	if (m2 == NULL)
		fail_msg("second to_message failed: %s", cause);
	j2 = bt_pbjson_from_message(m2);
	assert_json_equal(j1, j2);

	/* protobuf bytes carry the same message */
	wire = bt_pb_encode_alloc(m1, false, &len);
	m3 = bt_pb_decode(desc, false, wire, len, &cause);
	if (m3 == NULL)
		fail_msg("unpack failed: %s", cause);
	j3 = bt_pbjson_from_message(m3);
	assert_json_equal(j1, j3);

	free(wire);
	protobuf_c_message_free_unpacked(m3, NULL);
	protobuf_c_message_free_unpacked(m2, NULL);
	json_decref(j3);
	json_decref(j2);
	json_decref(in);
	*out = j1;
	return m1;
}

/* to_message must fail with exactly this cause */
static void expect_error(const ProtobufCMessageDescriptor *desc, const char *text,
    const char *want)
{
	json_t *in = parse(text);
	char *cause = NULL;
	ProtobufCMessage *m = bt_pbjson_to_message(desc, in, &cause);

	if (m != NULL)
		fail_msg("'%s' was accepted", text);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	free(cause);
	json_decref(in);
}

static void test_subscribe(void **state)
{
	const char *text = "{\"type\":\"SUBSCRIBE\",\"subscribe\":{\"framework_info\":"
	    "{\"user\":\"root\",\"name\":\"demo\",\"failover_timeout\":604800,"
	    "\"capabilities\":[{\"type\":\"PARTITION_AWARE\"}]}}}";
	Mesos__V1__Scheduler__Call *call;
	Mesos__V1__FrameworkInfo *fi;
	json_t *j;

	call = (Mesos__V1__Scheduler__Call *)roundtrip(CALL_DESC, text, &j);
	assert_true(call->has_type);
	assert_int_equal(call->type, MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE);
	fi = call->subscribe->framework_info;
	assert_string_equal(fi->user, "root");
	assert_string_equal(fi->name, "demo");
	assert_true(fi->has_failover_timeout);
	assert_true(fi->failover_timeout == 604800.0);
	assert_int_equal(fi->n_capabilities, 1);
	assert_int_equal(fi->capabilities[0]->type,
	    MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__PARTITION_AWARE);

	assert_str_at(j, "type", "SUBSCRIBE");
	assert_str_at(j, "subscribe.framework_info.user", "root");
	assert_num_at(j, "subscribe.framework_info.failover_timeout", 604800);
	assert_str_at(j, "subscribe.framework_info.capabilities.0.type", "PARTITION_AWARE");
	/* a non-deprecated default is emitted, a deprecated one is not */
	assert_true(json_is_false(at(j, "subscribe.framework_info.checkpoint")));
	assert_null(at(j, "subscribe.framework_info.role"));
	/* empty repeated fields and unset optionals without default are left out */
	assert_null(at(j, "subscribe.suppressed_roles"));
	assert_null(at(j, "subscribe.framework_info.roles"));
	assert_null(at(j, "subscribe.framework_info.id"));
	assert_null(at(j, "framework_id"));
	json_decref(j);
	protobuf_c_message_free_unpacked(&call->base, NULL);
}

static const char accept_text[] =
    "{\"type\":\"ACCEPT\",\"framework_id\":{\"value\":\"fw-1\"},\"accept\":{"
    "\"offer_ids\":[{\"value\":\"o-1\"},{\"value\":\"o-2\"}],"
    "\"operations\":[{\"type\":\"LAUNCH\",\"launch\":{\"task_infos\":[{"
    "\"name\":\"web\",\"task_id\":{\"value\":\"t-1\"},\"agent_id\":{\"value\":\"a-1\"},"
    "\"resources\":[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":0.5}},"
    "{\"name\":\"ports\",\"type\":\"RANGES\",\"ranges\":{\"range\":[{\"begin\":31000,\"end\":31005}]}}],"
    "\"command\":{\"value\":\"sleep 100\",\"environment\":{\"variables\":["
    "{\"name\":\"FOO\",\"value\":\"bar\"}]}},"
    "\"max_completion_time\":{\"nanoseconds\":\"9007199254740993\"}}]}}],"
    "\"filters\":{}}}";

static void test_accept(void **state)
{
	Mesos__V1__Scheduler__Call *call;
	Mesos__V1__TaskInfo *task;
	json_t *j, *begin;

	call = (Mesos__V1__Scheduler__Call *)roundtrip(CALL_DESC, accept_text, &j);
	assert_int_equal(call->accept->n_offer_ids, 2);
	assert_string_equal(call->accept->offer_ids[1]->value, "o-2");
	assert_int_equal(call->accept->n_operations, 1);
	task = call->accept->operations[0]->launch->task_infos[0];
	assert_string_equal(task->name, "web");
	assert_int_equal(task->n_resources, 2);
	assert_true(task->resources[0]->scalar->value == 0.5);
	assert_int_equal(task->resources[1]->ranges->range[0]->end, 31005);
	assert_string_equal(task->command->value, "sleep 100");
	assert_false(task->command->has_shell);
	assert_int_equal(task->max_completion_time->nanoseconds, 9007199254740993LL);

	assert_str_at(j, "accept.offer_ids.0.value", "o-1");
	assert_str_at(j, "accept.operations.0.type", "LAUNCH");
	assert_str_at(j, "accept.operations.0.launch.task_infos.0.resources.1.type", "RANGES");
	begin = at(j, "accept.operations.0.launch.task_infos.0.resources.1.ranges.range.0.begin");
	assert_true(json_is_integer(begin));
	assert_int_equal(json_integer_value(begin), 31000);
	/* defaults: shell, refuse_seconds, the variable type; not the deprecated role */
	assert_true(json_is_true(at(j, "accept.operations.0.launch.task_infos.0.command.shell")));
	assert_num_at(j, "accept.filters.refuse_seconds", 5);
	assert_str_at(j, "accept.operations.0.launch.task_infos.0.command.environment."
	    "variables.0.type", "VALUE");
	assert_null(at(j, "accept.operations.0.launch.task_infos.0.resources.0.role"));
	/* int64 is a JSON integer even when given as a string */
	assert_true(json_is_integer(at(j, "accept.operations.0.launch.task_infos.0."
	    "max_completion_time.nanoseconds")));
	assert_int_equal(json_integer_value(at(j, "accept.operations.0.launch.task_infos.0."
	    "max_completion_time.nanoseconds")), 9007199254740993LL);
	json_decref(j);
	protobuf_c_message_free_unpacked(&call->base, NULL);
}

static void test_acknowledge_uuid(void **state)
{
	const char *text = "{\"type\":\"ACKNOWLEDGE\",\"framework_id\":{\"value\":\"f\"},"
	    "\"acknowledge\":{\"agent_id\":{\"value\":\"a\"},\"task_id\":{\"value\":\"t\"},"
	    "\"uuid\":\"AAECAwQFBgcICQoLDA0ODw==\"}}";
	static const uint8_t raw[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	Mesos__V1__Scheduler__Call *call;
	json_t *j;

	call = (Mesos__V1__Scheduler__Call *)roundtrip(CALL_DESC, text, &j);
	assert_int_equal(call->acknowledge->uuid.len, 16);
	assert_memory_equal(call->acknowledge->uuid.data, raw, 16);
	assert_str_at(j, "acknowledge.uuid", "AAECAwQFBgcICQoLDA0ODw==");
	assert_str_at(j, "type", "ACKNOWLEDGE");
	json_decref(j);
	protobuf_c_message_free_unpacked(&call->base, NULL);
}

static void test_event_offers(void **state)
{
	const char *text = "{\"type\":\"OFFERS\",\"offers\":{\"offers\":[{"
	    "\"id\":{\"value\":\"o-1\"},\"framework_id\":{\"value\":\"f\"},"
	    "\"agent_id\":{\"value\":\"a\"},\"hostname\":\"localhost\","
	    "\"resources\":[{\"name\":\"mem\",\"type\":\"SCALAR\",\"scalar\":{\"value\":1024}},"
	    "{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":2},\"role\":\"*\"}]}]}}";
	Mesos__V1__Scheduler__Event *ev;
	json_t *j;

	ev = (Mesos__V1__Scheduler__Event *)roundtrip(EVENT_DESC, text, &j);
	assert_int_equal(ev->type, MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS);
	assert_int_equal(ev->offers->n_offers, 1);
	assert_string_equal(ev->offers->offers[0]->hostname, "localhost");
	assert_str_at(j, "type", "OFFERS");
	assert_str_at(j, "offers.offers.0.resources.0.name", "mem");
	assert_num_at(j, "offers.offers.0.resources.0.scalar.value", 1024);
	assert_null(at(j, "offers.offers.0.resources.0.role"));
	/* an explicitly set deprecated field is still emitted */
	assert_str_at(j, "offers.offers.0.resources.1.role", "*");
	assert_null(at(j, "offers.offers.0.executor_ids"));
	json_decref(j);
	protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static void test_event_update(void **state)
{
	const char *text = "{\"type\":\"UPDATE\",\"update\":{\"status\":{"
	    "\"task_id\":{\"value\":\"t-1\"},\"state\":\"TASK_RUNNING\","
	    "\"timestamp\":1700000000.125,\"source\":\"SOURCE_EXECUTOR\","
	    "\"agent_id\":{\"value\":\"a-1\"},\"uuid\":\"3q2+7w==\"}}}";
	Mesos__V1__Scheduler__Event *ev;
	Mesos__V1__TaskStatus *st;
	json_t *j;

	ev = (Mesos__V1__Scheduler__Event *)roundtrip(EVENT_DESC, text, &j);
	st = ev->update->status;
	assert_int_equal(st->state, MESOS__V1__TASK_STATE__TASK_RUNNING);
	assert_true(st->has_timestamp);
	assert_true(st->timestamp == 1700000000.125);
	assert_int_equal(st->uuid.len, 4);
	assert_memory_equal(st->uuid.data, "\xde\xad\xbe\xef", 4);
	assert_str_at(j, "update.status.state", "TASK_RUNNING");
	assert_str_at(j, "update.status.source", "SOURCE_EXECUTOR");
	assert_num_at(j, "update.status.timestamp", 1700000000.125);
	assert_str_at(j, "update.status.uuid", "3q2+7w==");
	assert_null(at(j, "update.status.healthy"));
	assert_null(at(j, "update.status.data"));
	json_decref(j);
	protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static void test_defaults(void **state)
{
	Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;
	Mesos__V1__FrameworkInfo fi = MESOS__V1__FRAMEWORK_INFO__INIT;
	Mesos__V1__ContainerInfo *ci;
	json_t *j;

	/* messages built on the stack */
	j = bt_pbjson_from_message(&filters.base);
	assert_num_at(j, "refuse_seconds", 5);
	json_decref(j);
	filters.has_refuse_seconds = 1;
	filters.refuse_seconds = 0.25;
	j = bt_pbjson_from_message(&filters.base);
	assert_num_at(j, "refuse_seconds", 0.25);
	json_decref(j);

	fi.user = "u";
	fi.name = "n";
	j = bt_pbjson_from_message(&fi.base);
	assert_null(at(j, "role"));
	assert_num_at(j, "failover_timeout", 0);
	assert_str_at(j, "user", "u");
	json_decref(j);

	ci = (Mesos__V1__ContainerInfo *)roundtrip(&mesos__v1__container_info__descriptor,
	    "{\"type\":\"DOCKER\",\"docker\":{\"image\":\"nginx\"}}", &j);
	assert_str_at(j, "docker.network", "HOST");
	assert_true(json_is_false(at(j, "docker.privileged")));
	assert_null(at(j, "docker.volume_driver"));
	assert_null(at(j, "docker.force_pull_image"));
	json_decref(j);
	protobuf_c_message_free_unpacked(&ci->base, NULL);
}

static void test_lenient_input(void **state)
{
	Mesos__V1__Scheduler__Call *call;
	Mesos__V1__Value__Range *range;
	json_t *j;

	/* unknown keys ignored, enums by number, null as absent */
	call = (Mesos__V1__Scheduler__Call *)roundtrip(CALL_DESC,
	    "{\"type\":2,\"bogus\":[1,2],\"framework_id\":{\"value\":\"f\",\"x\":{}},"
	    "\"accept\":null}", &j);
	assert_int_equal(call->type, MESOS__V1__SCHEDULER__CALL__TYPE__TEARDOWN);
	assert_str_at(j, "type", "TEARDOWN");
	assert_null(at(j, "bogus"));
	assert_null(at(j, "accept"));
	json_decref(j);
	protobuf_c_message_free_unpacked(&call->base, NULL);

	/* numeric strings and whole reals for integers; uint64 beyond int64 */
	range = (Mesos__V1__Value__Range *)roundtrip(&mesos__v1__value__range__descriptor,
	    "{\"begin\":\"31000\",\"end\":\"18446744073709551615\"}", &j);
	assert_int_equal(range->begin, 31000);
	assert_true(range->end == UINT64_MAX);
	assert_int_equal(json_integer_value(at(j, "begin")), 31000);
	assert_str_at(j, "end", "18446744073709551615");
	json_decref(j);
	protobuf_c_message_free_unpacked(&range->base, NULL);

	range = (Mesos__V1__Value__Range *)roundtrip(&mesos__v1__value__range__descriptor,
	    "{\"begin\":5.0,\"end\":6}", &j);
	assert_int_equal(range->begin, 5);
	json_decref(j);
	protobuf_c_message_free_unpacked(&range->base, NULL);
}

static void test_errors(void **state)
{
	expect_error(CALL_DESC, "{\"type\":\"SUBSCRIBE\",\"subscribe\":{\"framework_info\":"
	    "{\"name\":\"x\"}}}", "field 'subscribe.framework_info.user' is required");
	expect_error(CALL_DESC, "{\"accept\":{\"offer_ids\":[{\"value\":\"a\"},{}]}}",
	    "field 'accept.offer_ids[1].value' is required");
	expect_error(CALL_DESC, "{\"accept\":{\"offer_ids\":{\"value\":\"x\"}}}",
	    "field 'accept.offer_ids' must be an array");
	expect_error(CALL_DESC, "{\"subscribe\":\"x\"}", "field 'subscribe' must be an object");
	expect_error(CALL_DESC, "[1]", "expected a JSON object for mesos.v1.scheduler.Call");
	expect_error(CALL_DESC, "{\"framework_id\":{\"value\":7}}",
	    "field 'framework_id.value' must be a string");
	expect_error(CALL_DESC, "{\"subscribe\":{\"framework_info\":{\"user\":\"u\",\"name\":\"n\","
	    "\"checkpoint\":\"yes\"}}}", "field 'subscribe.framework_info.checkpoint' must be a boolean");
	expect_error(CALL_DESC, "{\"subscribe\":{\"framework_info\":{\"user\":\"u\",\"name\":\"n\","
	    "\"failover_timeout\":\"soon\"}}}",
	    "field 'subscribe.framework_info.failover_timeout' must be a number");
	expect_error(CALL_DESC, "{\"type\":\"FOO\"}",
	    "field 'type': unknown enum value 'FOO' for mesos.v1.scheduler.Call.Type");
	expect_error(CALL_DESC, "{\"type\":99}",
	    "field 'type': unknown enum value 99 for mesos.v1.scheduler.Call.Type");
	expect_error(CALL_DESC, "{\"type\":true}",
	    "field 'type' must be the name of a mesos.v1.scheduler.Call.Type value");
	expect_error(CALL_DESC, "{\"acknowledge\":{\"agent_id\":{\"value\":\"a\"},"
	    "\"task_id\":{\"value\":\"t\"},\"uuid\":\"!!!!\"}}",
	    "field 'acknowledge.uuid' is not valid base64");
	expect_error(CALL_DESC, "{\"acknowledge\":{\"agent_id\":{\"value\":\"a\"},"
	    "\"task_id\":{\"value\":\"t\"},\"uuid\":12}}",
	    "field 'acknowledge.uuid' must be a base64 string");
	expect_error(&mesos__v1__value__range__descriptor, "{\"begin\":-1,\"end\":2}",
	    "field 'begin': -1 is out of range for uint64");
	expect_error(&mesos__v1__value__range__descriptor, "{\"begin\":1.5,\"end\":2}",
	    "field 'begin' must be an integer");
	expect_error(&mesos__v1__value__range__descriptor, "{\"begin\":\"12abc\",\"end\":2}",
	    "field 'begin' must be an integer");
	expect_error(EVENT_DESC, "{\"failure\":{\"status\":3000000000}}",
	    "field 'failure.status': 3000000000 is out of range for int32");
	expect_error(&mesos__v1__value__scalar__descriptor, "{\"value\":[1]}",
	    "field 'value' must be a number");
}

static void test_decode_encode(void **state)
{
	const char *bad = "{\"type\":";
	char *cause = NULL, *text;
	struct evbuffer *out;
	ProtobufCMessage *m;
	size_t len;

	m = bt_pb_decode(CALL_DESC, true, bad, strlen(bad), &cause);
	assert_null(m);
	assert_non_null(strstr(cause, "unable to parse JSON body: "));
	assert_non_null(strstr(cause, "line 1"));
	free(cause);
	cause = NULL;

	m = bt_pb_decode(CALL_DESC, true, "{\"a\":1,\"a\":2}", 13, &cause);
	assert_null(m);
	assert_non_null(strstr(cause, "duplicate"));
	free(cause);
	cause = NULL;

	m = bt_pb_decode(CALL_DESC, false, "\xff\xff\xff", 3, &cause);
	assert_null(m);
	assert_string_equal(cause, "unable to parse protobuf body as mesos.v1.scheduler.Call");
	free(cause);
	cause = NULL;

	/* a missing required field fails protobuf decoding too */
	m = bt_pb_decode(&mesos__v1__task_id__descriptor, false, "", 0, &cause);
	assert_null(m);
	free(cause);
	cause = NULL;

	m = bt_pb_decode(CALL_DESC, true, "{\"type\":\"TEARDOWN\"}", 19, &cause);
	assert_non_null(m);
	out = evbuffer_new();
	bt_pb_encode(out, m, true);
	len = evbuffer_get_length(out);
	text = xmalloc(len + 1);
	evbuffer_remove(out, text, len);
	text[len] = '\0';
	assert_string_equal(text, "{\"type\":\"TEARDOWN\"}");
	free(text);
	bt_pb_encode(out, m, false);
	assert_int_equal(evbuffer_get_length(out), 2);
	evbuffer_free(out);
	text = bt_pb_encode_alloc(m, true, &len);
	assert_int_equal(len, strlen(text));
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* an ACCEPT of n tasks, each with a name of namelen characters, packed */
static uint8_t *packed_accept(size_t n, size_t namelen, size_t *len)
{
	Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
	Mesos__V1__Scheduler__Call__Accept acc = MESOS__V1__SCHEDULER__CALL__ACCEPT__INIT;
	Mesos__V1__Offer__Operation op = MESOS__V1__OFFER__OPERATION__INIT;
	Mesos__V1__Offer__Operation__Launch launch = MESOS__V1__OFFER__OPERATION__LAUNCH__INIT;
	Mesos__V1__TaskInfo *tasks = xcalloc(n, sizeof *tasks), **ptrs = xcalloc(n, sizeof *ptrs);
	Mesos__V1__TaskID *ids = xcalloc(n, sizeof *ids);
	Mesos__V1__AgentID agent = MESOS__V1__AGENT_ID__INIT;
	Mesos__V1__Offer__Operation *opp = &op;
	char *name = xmalloc(namelen + 1), idbuf[32];
	uint8_t *buf;
	size_t i;

	memset(name, 'n', namelen);
	name[namelen] = '\0';
	agent.value = "agent-1";
	for (i = 0; i < n; i++) {
		mesos__v1__task_info__init(&tasks[i]);
		mesos__v1__task_id__init(&ids[i]);
		snprintf(idbuf, sizeof idbuf, "task-%zu", i);
		ids[i].value = xstrdup(idbuf);
		tasks[i].task_id = &ids[i];
		tasks[i].agent_id = &agent;
		tasks[i].name = name;
		ptrs[i] = &tasks[i];
	}
	launch.n_task_infos = n;
	launch.task_infos = ptrs;
	op.has_type = true;
	op.type = MESOS__V1__OFFER__OPERATION__TYPE__LAUNCH;
	op.launch = &launch;
	acc.n_operations = 1;
	acc.operations = &opp;
	call.has_type = true;
	call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT;
	call.accept = &acc;
	*len = mesos__v1__scheduler__call__get_packed_size(&call);
	buf = xmalloc(*len);
	mesos__v1__scheduler__call__pack(&call, buf);
	for (i = 0; i < n; i++)
		free(ids[i].value);
	free(ids);
	free(ptrs);
	free(tasks);
	free(name);
	return buf;
}

static void assert_accept(const ProtobufCMessage *m, size_t n, size_t namelen)
{
	const Mesos__V1__Scheduler__Call *c = (const Mesos__V1__Scheduler__Call *)m;
	const Mesos__V1__Offer__Operation__Launch *l;
	char idbuf[32];
	size_t i;

	assert_non_null(c);
	assert_int_equal(c->type, MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT);
	l = c->accept->operations[0]->launch;
	assert_int_equal(l->n_task_infos, n);
	for (i = 0; i < n; i++) {
		snprintf(idbuf, sizeof idbuf, "task-%zu", i);
		assert_string_equal(l->task_infos[i]->task_id->value, idbuf);
		assert_int_equal(strlen(l->task_infos[i]->name), namelen);
	}
}

/* scoped messages: nested ones stay whole until the outermost is released */
static void test_decode_scoped(void **state)
{
	size_t small_len, big_len, i;
	uint8_t *small = packed_accept(3, 10, &small_len);
	uint8_t *big = packed_accept(2000, 40, &big_len);     /* past one block */
	uint8_t *huge = packed_accept(1, 100 * 1024, &i);    /* one string past a block */
	ProtobufCMessage *outer, *inner, *j, *h;
	char *cause = NULL;
	size_t huge_len = i;

	for (i = 0; i < 3; i++) {                       /* the memory is reused each round */
		outer = bt_pb_decode_scoped(CALL_DESC, false, small, small_len, &cause);
		inner = bt_pb_decode_scoped(CALL_DESC, false, big, big_len, &cause);
		h = bt_pb_decode_scoped(CALL_DESC, false, huge, huge_len, &cause);
		j = bt_pb_decode_scoped(CALL_DESC, true, "{\"type\":\"TEARDOWN\"}", 19, &cause);
		assert_non_null(j);
		assert_int_equal(((Mesos__V1__Scheduler__Call *)j)->type,
		    MESOS__V1__SCHEDULER__CALL__TYPE__TEARDOWN);
		assert_accept(inner, 2000, 40);
		assert_accept(h, 1, 100 * 1024);
		bt_pb_decoded_free(j);
		bt_pb_decoded_free(h);
		bt_pb_decoded_free(inner);
		assert_accept(outer, 3, 10);            /* the outer one is still whole */
		bt_pb_decoded_free(outer);
	}

	/* a failed decode closes its own scope and says why */
	assert_null(bt_pb_decode_scoped(CALL_DESC, false, "\xff\xff\xff", 3, &cause));
	assert_string_equal(cause, "unable to parse protobuf body as mesos.v1.scheduler.Call");
	free(cause);
	cause = NULL;
	assert_null(bt_pb_decode_scoped(CALL_DESC, true, "{", 1, &cause));
	assert_non_null(strstr(cause, "unable to parse JSON body"));
	free(cause);
	outer = bt_pb_decode_scoped(CALL_DESC, false, small, small_len, &cause);
	assert_accept(outer, 3, 10);
	bt_pb_decoded_free(outer);
	bt_pb_decoded_free(NULL);                       /* nothing open: no effect */
	free(small);
	free(big);
	free(huge);
}

static void test_base64(void **state)
{
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
	    "Zm9vYmFy" };
	static const char *const bad[] = { "Z", "Zm9v!", "Zm=v", "Zg=", "Zm9vY===", "Zm 9v" };
	size_t i, len;
	void *data;

	for (i = 0; i < 7; i++) {
		char *e = bt_base64_encode(plain[i], strlen(plain[i]));
		assert_string_equal(e, coded[i]);
		free(e);
		assert_int_equal(bt_base64_decode(coded[i], &data, &len), 0);
		assert_int_equal(len, strlen(plain[i]));
		assert_memory_equal(data, plain[i], len);
		free(data);
	}
	/* padding may be left out */
	assert_int_equal(bt_base64_decode("Zm9vYg", &data, &len), 0);
	assert_int_equal(len, 4);
	free(data);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (bt_base64_decode(bad[i], &data, &len) == 0)
			fail_msg("'%s' decoded", bad[i]);
}

static void test_odd_values(void **state)
{
	Mesos__V1__TaskID id = MESOS__V1__TASK_ID__INIT;
	Mesos__V1__Value__Scalar *s;
	json_t *j;

	/* bytes that are not UTF-8 still give valid JSON */
	id.value = "a\xff" "b";
	j = bt_pbjson_from_message(&id.base);
	assert_str_at(j, "value", "a\xef\xbf\xbd" "b");
	json_decref(j);

	s = (Mesos__V1__Value__Scalar *)roundtrip(&mesos__v1__value__scalar__descriptor,
	    "{\"value\":\"Infinity\"}", &j);
	assert_str_at(j, "value", "Infinity");
	json_decref(j);
	protobuf_c_message_free_unpacked(&s->base, NULL);

	s = (Mesos__V1__Value__Scalar *)roundtrip(&mesos__v1__value__scalar__descriptor,
	    "{\"value\":\"0.125\"}", &j);
	assert_true(s->value == 0.125);
	assert_num_at(j, "value", 0.125);
	json_decref(j);
	protobuf_c_message_free_unpacked(&s->base, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subscribe),
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_acknowledge_uuid),
		cmocka_unit_test(test_event_offers),
		cmocka_unit_test(test_event_update),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_lenient_input),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_decode_encode),
		cmocka_unit_test(test_decode_scoped),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_odd_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
