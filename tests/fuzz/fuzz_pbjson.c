/*
 * fuzz_pbjson.c -- JSON bodies into scheduler Calls and back.
 *
 * Input is parsed as JSON and converted to a mesos.v1.scheduler.Call.
 * When that succeeds, the Call's JSON must convert again to a Call that
 * gives the same JSON, and the protobuf encoding of the first Call must
 * decode to the same JSON too. Everything is freed so leaks show up.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pbjson.h"
#include "scheduler.pb-c.h"

#define FUZZ_INPUT_MAX (1 << 16)

static void check_same(json_t *a, const ProtobufCMessage *m)
{
	json_t *b = bt_pbjson_from_message(m);

	if (!json_equal(a, b))
		abort();
	json_decref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc = &mesos__v1__scheduler__call__descriptor;
	ProtobufCMessage *m1, *m2, *m3;
	char *cause = NULL, *text;
	json_t *j1, *reparsed;
	void *wire;
	size_t len;

	if (size > FUZZ_INPUT_MAX)
		return 0;
	m1 = bt_pb_decode(desc, true, data, size, &cause);
	if (m1 == NULL) {
		if (cause == NULL)
			abort();
		free(cause);
		return 0;
	}
	j1 = bt_pbjson_from_message(m1);

	/* the text form parses again and converts to an equal message */
	text = bt_json_dump(j1);
	reparsed = bt_json_parse(text, strlen(text), &cause);
	if (reparsed == NULL)
		abort();
	m2 = bt_pbjson_to_message(desc, reparsed, &cause);
	if (m2 == NULL)
		abort();
	check_same(j1, m2);

	/* and so does the protobuf form */
	wire = bt_pb_encode_alloc(m1, false, &len);
	m3 = bt_pb_decode(desc, false, wire, len, &cause);
	if (m3 == NULL)
		abort();
	check_same(j1, m3);

	protobuf_c_message_free_unpacked(m3, NULL);
	free(wire);
	protobuf_c_message_free_unpacked(m2, NULL);
	json_decref(reparsed);
	free(text);
	json_decref(j1);
	protobuf_c_message_free_unpacked(m1, NULL);
	return 0;
}
