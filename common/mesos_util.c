/*
 * mesos_util.c -- task states and message copies shared by every program.
 */
#include "mesos_util.h"

#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "mesos.pb-c.h"
#include "xmalloc.h"

bool bt_task_state_terminal(int state)
{
	switch (state) {
	case MESOS__V1__TASK_STATE__TASK_FINISHED:
	case MESOS__V1__TASK_STATE__TASK_FAILED:
	case MESOS__V1__TASK_STATE__TASK_KILLED:
	case MESOS__V1__TASK_STATE__TASK_ERROR:
	case MESOS__V1__TASK_STATE__TASK_LOST:
	case MESOS__V1__TASK_STATE__TASK_DROPPED:
	case MESOS__V1__TASK_STATE__TASK_GONE:
	case MESOS__V1__TASK_STATE__TASK_GONE_BY_OPERATOR:
		return true;
	default:
		return false;
	}
}

const char *bt_task_state_name(int state)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&mesos__v1__task_state__descriptor, state);

	return v != NULL ? v->name : "TASK_UNKNOWN";
}

ProtobufCMessage *bt_pb_copy(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = xmalloc(len + 1);
	ProtobufCMessage *copy;

	protobuf_c_message_pack(msg, buf);
	copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	free(buf);
	if (copy == NULL)
		bt_fatal("unable to copy a '%s' message", msg->descriptor->name);
	return copy;
}
