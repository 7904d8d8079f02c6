/*
 * fuzz_recordio.c -- the RecordIO decoder on arbitrary streams.
 *
 * The first input byte picks the size of the pieces the rest is fed in,
 * so one input exercises many chunk boundaries. Every record taken out
 * must respect the limit; the records are then framed again and decoded
 * from one feed, which must give back the same records. Input is bounded
 * so a run stays fast.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recordio.h"

#define MAX_RECORD 4096
#define FUZZ_INPUT_MAX (1 << 16)

/* take every whole record now available; -1 once the stream is broken */
static int drain(struct bt_recordio *d, struct evbuffer *again, size_t *count)
{
	enum bt_recordio_result r;
	const char *rec;
	char *cause = NULL;
	size_t len;

	while ((r = bt_recordio_next(d, &rec, &len, &cause)) == BT_RECORDIO_RECORD) {
		if (len == 0 || len > MAX_RECORD)
			abort();
		bt_recordio_encode(again, rec, len);
		(*count)++;
	}
	if (r == BT_RECORDIO_ERROR) {
		if (cause == NULL || cause[0] == '\0')
			abort();
		free(cause);
		return -1;
	}
	if (cause != NULL)
		abort();
	return 0;
}

/* the re-framed records decode in one go to the same count */
static void check_reframed(struct evbuffer *again, size_t count)
{
	size_t n = evbuffer_get_length(again), got = 0, len;
	unsigned char *wire = evbuffer_pullup(again, -1);
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL;

	bt_recordio_init(&d, MAX_RECORD);
	bt_recordio_feed(&d, wire, n);
	while (bt_recordio_next(&d, &rec, &len, &cause) == BT_RECORDIO_RECORD)
		got++;
	if (cause != NULL || got != count || bt_recordio_pending(&d) != 0)
		abort();
	bt_recordio_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *again;
	struct bt_recordio d;
	size_t piece, off = 0, count = 0;
	int broken = 0;

	if (size < 1 || size > FUZZ_INPUT_MAX)
		return 0;
	piece = data[0] % 17 + 1;
	data++;
	size--;
	again = evbuffer_new();
	bt_recordio_init(&d, MAX_RECORD);
	while (off < size && !broken) {
		size_t n = size - off < piece ? size - off : piece;
		bt_recordio_feed(&d, data + off, n);
		off += n;
		broken = drain(&d, again, &count) != 0;
	}
	if (!broken && bt_recordio_pending(&d) > size)
		abort();
	check_reframed(again, count);
	bt_recordio_release(&d);
	evbuffer_free(again);
	return 0;
}
