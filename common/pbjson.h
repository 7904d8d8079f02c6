/*
 * pbjson.h -- protobuf messages to and from JSON by Mesos's mapping rules.
 *
 * One converter serves every message: it walks the protobuf-c descriptor.
 * The rules are those of stout's protobuf.hpp (reference §3): proto field
 * names in snake_case, enums as their name strings, bytes as base64,
 * 64-bit integers as JSON numbers, repeated fields only when non-empty,
 * and unset optional fields that have a declared default (and are not
 * deprecated) emitted with that default ("shell":true, "refuse_seconds":5).
 * Parsing ignores unknown keys, accepts numbers or numeric strings for
 * numeric fields and enum names (or numbers) for enums, and reports a
 * missing required field or a wrong type with its path:
 * "field 'subscribe.framework_info.user' is required".
 */
#ifndef BT_PBJSON_H
#define BT_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* new reference; never NULL */
json_t *bt_pbjson_from_message(const ProtobufCMessage *msg);
/* a heap message; free with protobuf_c_message_free_unpacked(msg, NULL); NULL with *cause */
ProtobufCMessage *bt_pbjson_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
    char **cause);

/*
 * A request or record body in either encoding: json true means the bytes
 * are JSON text, false means protobuf. Same ownership as above.
 */
ProtobufCMessage *bt_pb_decode(const ProtobufCMessageDescriptor *desc, bool json,
    const void *data, size_t len, char **cause);
/*
 * The same, for a message that lives no longer than the handler that
 * decodes it (a call, an event): protobuf goes into a bump allocator,
 * which frees it all at once instead of part by part. Release it with
 * bt_pb_decoded_free(), never protobuf_c_message_free_unpacked(); the
 * memory is reused once every such message of the moment is released,
 * so nothing may point into one afterwards (copy with bt_pb_copy()).
 * For the event loop's thread only.
 */
ProtobufCMessage *bt_pb_decode_scoped(const ProtobufCMessageDescriptor *desc, bool json,
    const void *data, size_t len, char **cause);
void bt_pb_decoded_free(ProtobufCMessage *msg);
/* serialise msg in either encoding and append it to out (unframed) */
void bt_pb_encode(struct evbuffer *out, const ProtobufCMessage *msg, bool json);
/* serialise into a heap buffer; caller frees */
void *bt_pb_encode_alloc(const ProtobufCMessage *msg, bool json, size_t *len);

/* base64 (standard alphabet, padded), used for bytes fields; caller frees */
char *bt_base64_encode(const void *data, size_t len);
int bt_base64_decode(const char *text, void **data, size_t *len);

#endif
