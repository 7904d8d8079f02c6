/*
 * fuzz_protobuf.c -- protobuf bodies through the JSON mapping.
 *
 * Input is unpacked both as a mesos.v1.scheduler.Call and as an Event.
 * Whatever unpacks must map to JSON whose text parses again; converting
 * that JSON back may be refused (an enum number the proto does not name),
 * but with a cause, and when it succeeds the result maps to the same JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pbjson.h"
#include "scheduler.pb-c.h"

#define FUZZ_INPUT_MAX (1 << 16)

static void one(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m1, *m2;
	json_t *j1, *j2, *reparsed;
	char *cause = NULL, *text;

	m1 = bt_pb_decode(desc, false, data, size, &cause);
	if (m1 == NULL) {
		if (cause == NULL)
			abort();
		free(cause);
		return;
	}
	j1 = bt_pbjson_from_message(m1);
	text = bt_json_dump(j1);
	reparsed = bt_json_parse(text, strlen(text), &cause);
	if (reparsed == NULL)
		abort();
	m2 = bt_pbjson_to_message(desc, reparsed, &cause);
	if (m2 == NULL) {
		if (cause == NULL)
			abort();
		free(cause);
	} else {
		j2 = bt_pbjson_from_message(m2);
		if (!json_equal(j1, j2))
			abort();
		json_decref(j2);
		protobuf_c_message_free_unpacked(m2, NULL);
	}
	json_decref(reparsed);
	free(text);
	json_decref(j1);
	protobuf_c_message_free_unpacked(m1, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_INPUT_MAX)
		return 0;
	one(&mesos__v1__scheduler__call__descriptor, data, size);
	one(&mesos__v1__scheduler__event__descriptor, data, size);
	return 0;
}
