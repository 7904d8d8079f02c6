/*
 * recordio.h -- RecordIO framing: "<decimal length>\n<bytes>" repeated.
 *
 * The scheduler API's event stream and butte's agent channel carry one
 * protobuf or JSON message per record. The encoder appends a framed record
 * to an evbuffer; the decoder is fed whatever bytes arrive (chunk
 * boundaries mean nothing) and hands back whole records one at a time.
 */
#ifndef BT_RECORDIO_H
#define BT_RECORDIO_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* append "<len>\n<data>" to out; len must be > 0 */
void bt_recordio_encode(struct evbuffer *out, const void *data, size_t len);

enum bt_recordio_result {
	BT_RECORDIO_ERROR = -1,         /* malformed header or record too large */
	BT_RECORDIO_RECORD = 0,         /* a record is returned */
	BT_RECORDIO_AGAIN = 1,          /* more bytes are needed */
};

struct bt_recordio {
	char *buf;                      /* bytes fed and not yet consumed */
	size_t len, cap, off;
	size_t max_record;
	int failed;
};

/* max_record bounds one record's length (e.g. 64 MiB); a larger header is an error */
void bt_recordio_init(struct bt_recordio *d, size_t max_record);
void bt_recordio_release(struct bt_recordio *d);
void bt_recordio_feed(struct bt_recordio *d, const void *data, size_t len);
/*
 * Take the next whole record. On BT_RECORDIO_RECORD, *rec and *len point
 * into the decoder's buffer and stay valid until the next feed or next
 * call. On BT_RECORDIO_ERROR, *cause says why ("invalid record length
 * 'x1'", "record of 99999999999 bytes exceeds the limit of ..."), caller
 * frees it, and the decoder stays failed.
 */
enum bt_recordio_result bt_recordio_next(struct bt_recordio *d, const char **rec, size_t *len,
    char **cause);
/* bytes held that do not yet form a whole record (for "truncated stream" checks) */
size_t bt_recordio_pending(const struct bt_recordio *d);

#endif
