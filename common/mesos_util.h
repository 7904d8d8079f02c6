/*
 * mesos_util.h -- small facts about Mesos messages that every program needs.
 *
 * Which task states are terminal (reference §9.1), their wire names, and a
 * deep copy of any protobuf-c message.
 */
#ifndef BT_MESOS_UTIL_H
#define BT_MESOS_UTIL_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* FINISHED, FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR */
bool bt_task_state_terminal(int state);
/* "TASK_RUNNING"; "TASK_UNKNOWN" for a number the proto does not name */
const char *bt_task_state_name(int state);
/* a heap copy (pack, then unpack); free with protobuf_c_message_free_unpacked */
ProtobufCMessage *bt_pb_copy(const ProtobufCMessage *msg);

#endif
