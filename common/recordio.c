/*
 * recordio.c -- RecordIO framing: "<decimal length>\n<bytes>" repeated.
 *
 * The encoder writes the decimal length, a newline and the bytes into an
 * evbuffer. The decoder keeps the bytes fed so far in one growable buffer:
 * buf[off..len) is what has not been handed out yet. bt_recordio_next()
 * parses the header at off (at most 20 digits and a newline), and when the
 * whole record is present returns a pointer into buf and moves off past it.
 * Consumed bytes are dropped by bt_recordio_feed() when they make up at
 * least half of the buffer, so each byte is moved at most once on average.
 * A buffer that grew past RETAIN_MAX for a big record is freed once it is
 * drained: a process with ten thousand streams (simulated agents) would
 * otherwise keep on each the size of the biggest event it ever carried.
 * A malformed header or an oversized record fails the decoder for good:
 * after that nothing in the stream can be trusted.
 */
#include "recordio.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

#define RETAIN_MAX (16u << 10)

/* UINT64_MAX has 20 decimal digits */
#define HEADER_DIGITS_MAX 20

void bt_recordio_encode(struct evbuffer *out, const void *data, size_t len)
{
	if (len == 0) {
		log_error("recordio: refusing to encode an empty record");
		return;
	}
	evbuffer_add_printf(out, "%zu\n", len);
	evbuffer_add(out, data, len);
}

void bt_recordio_init(struct bt_recordio *d, size_t max_record)
{
	memset(d, 0, sizeof *d);
	d->max_record = max_record;
}

void bt_recordio_release(struct bt_recordio *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = d->off = 0;
}

/* drop consumed bytes when that is cheap relative to what was consumed */
static void compact(struct bt_recordio *d)
{
	size_t live = d->len - d->off;

	if (d->off == 0)
		return;
	if (live == 0) {
		d->off = d->len = 0;
		if (d->cap > RETAIN_MAX) {
			free(d->buf);
			d->buf = NULL;
			d->cap = 0;
		}
		return;
	}
	if (d->off >= live) {
		memmove(d->buf, d->buf + d->off, live);
		d->off = 0;
		d->len = live;
	}
}

void bt_recordio_feed(struct bt_recordio *d, const void *data, size_t len)
{
	size_t need;

	if (d->failed || len == 0)
		return;
	compact(d);
	need = d->len + len;
	if (need > d->cap) {
		size_t cap = d->cap ? d->cap : 256;
		while (cap < need)
			cap *= 2;
		d->buf = xrealloc(d->buf, cap);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, data, len);
	d->len += len;
}

#define HEADER_TEXT_MAX (HEADER_DIGITS_MAX + 8)

/* the header bytes seen so far, printable, for an error message */
static const char *header_text(char out[HEADER_TEXT_MAX], const char *p, size_t n)
{
	size_t i, shown = n > HEADER_DIGITS_MAX + 1 ? HEADER_DIGITS_MAX + 1 : n;

	for (i = 0; i < shown; i++)
		out[i] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'') ? p[i] : '?';
	out[i] = '\0';
	if (shown < n)
		strcat(out, "...");
	return out;
}

static enum bt_recordio_result fail(struct bt_recordio *d, char **cause, char *text)
{
	d->failed = 1;
	if (cause != NULL)
		*cause = text;
	else
		free(text);
	return BT_RECORDIO_ERROR;
}

static enum bt_recordio_result too_large(struct bt_recordio *d, char **cause, uint64_t v,
    bool complete)
{
	return fail(d, cause, xasprintf("record of %s%llu bytes exceeds the limit of %zu bytes",
	    complete ? "" : "at least ", (unsigned long long)v, d->max_record));
}

/*
 * Parse the header at off. Returns RECORD with *size and *hlen (header
 * length including the newline) when the header is complete, AGAIN when
 * more bytes are needed, ERROR as soon as the header cannot become valid
 * (a length over the limit only grows with more digits).
 */
static enum bt_recordio_result parse_header(struct bt_recordio *d, uint64_t *size,
    size_t *hlen, char **cause)
{
	const char *p;
	size_t avail = d->len - d->off, i;
	uint64_t v = 0;
	char text[HEADER_TEXT_MAX];

	if (avail == 0)
		return BT_RECORDIO_AGAIN;
	p = d->buf + d->off;

	for (i = 0; i < avail; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\n')
			break;
		if (c < '0' || c > '9')
			return fail(d, cause, xasprintf("invalid record length '%s'",
			    header_text(text, p, i + 1)));
		if (i >= HEADER_DIGITS_MAX)
			return fail(d, cause, xasprintf("record length '%s' is longer than %d digits",
			    header_text(text, p, i + 1), HEADER_DIGITS_MAX));
		if (v > (UINT64_MAX - (c - '0')) / 10)
			return fail(d, cause, xasprintf("record length '%s' does not fit in 64 bits",
			    header_text(text, p, i + 1)));
		v = v * 10 + (c - '0');
	}
	if (i == avail)
		return v > d->max_record ? too_large(d, cause, v, false) : BT_RECORDIO_AGAIN;
	if (i == 0)
		return fail(d, cause, xstrdup("empty record length"));
	if (v == 0)
		return fail(d, cause, xasprintf("invalid record length '%s': records are never empty",
		    header_text(text, p, i)));
	if (v > d->max_record)
		return too_large(d, cause, v, true);
	*size = v;
	*hlen = i + 1;
	return BT_RECORDIO_RECORD;
}

enum bt_recordio_result bt_recordio_next(struct bt_recordio *d, const char **rec, size_t *len,
    char **cause)
{
	enum bt_recordio_result r;
	uint64_t size;
	size_t hlen;

	if (d->failed) {
		if (cause != NULL)
			*cause = xstrdup("record stream is already broken");
		return BT_RECORDIO_ERROR;
	}
	r = parse_header(d, &size, &hlen, cause);
	if (r != BT_RECORDIO_RECORD)
		return r;
	if (d->len - d->off - hlen < size)
		return BT_RECORDIO_AGAIN;
	*rec = d->buf + d->off + hlen;
	*len = (size_t)size;
	d->off += hlen + (size_t)size;
	return BT_RECORDIO_RECORD;
}

size_t bt_recordio_pending(const struct bt_recordio *d)
{
	return d->len - d->off;
}
