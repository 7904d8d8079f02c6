/*
 * test_recordio.c -- RecordIO framing: encode, then decode however the
 * bytes arrive.
 *
 * A stream of records (text, binary with newlines inside, one byte, a few
 * kilobytes) is encoded once, then decoded byte by byte, in two pieces at
 * every split point, and in one feed; each way must give back the same
 * records. Malformed headers, an oversized record and a truncated tail are
 * checked separately.
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

#include "recordio.h"
#include "xmalloc.h"

#define NRECORDS 6

struct sample {
	char *data[NRECORDS];
	size_t len[NRECORDS];
	char *wire;
	size_t wire_len;
};

static void sample_init(struct sample *s)
{
	static const char binary[] = { 'a', '\n', '\0', '\n', '9', '\n', (char)0xff };
	struct evbuffer *out = evbuffer_new();
	size_t i;

	s->data[0] = xstrdup("{\"type\":\"HEARTBEAT\"}");
	s->data[1] = xmemdup(binary, sizeof binary);
	s->data[2] = xstrdup("x");
	s->data[3] = xmalloc(3000);
	for (i = 0; i < 3000; i++)
		s->data[3][i] = (char)(i * 7 + 3);
	s->data[4] = xstrdup("\n");
	s->data[5] = xstrdup("12\n");
	s->len[0] = strlen(s->data[0]);
	s->len[1] = sizeof binary;
	s->len[2] = 1;
	s->len[3] = 3000;
	s->len[4] = 1;
	s->len[5] = 3;
	for (i = 0; i < NRECORDS; i++)
		bt_recordio_encode(out, s->data[i], s->len[i]);
	s->wire_len = evbuffer_get_length(out);
	s->wire = xmalloc(s->wire_len);
	evbuffer_remove(out, s->wire, s->wire_len);
	evbuffer_free(out);
}

static void sample_release(struct sample *s)
{
	size_t i;

	for (i = 0; i < NRECORDS; i++)
		free(s->data[i]);
	free(s->wire);
}

/* take every whole record now available, checking them against s */
static void drain(struct bt_recordio *d, const struct sample *s, size_t *got)
{
	const char *rec;
	size_t len;
	char *cause = NULL;
	enum bt_recordio_result r;

	while ((r = bt_recordio_next(d, &rec, &len, &cause)) == BT_RECORDIO_RECORD) {
		assert_true(*got < NRECORDS);
		assert_int_equal(len, s->len[*got]);
		assert_memory_equal(rec, s->data[*got], len);
		(*got)++;
	}
	assert_int_equal(r, BT_RECORDIO_AGAIN);
	assert_null(cause);
}

static void test_encode_format(void **state)
{
	struct evbuffer *out = evbuffer_new();
	char text[32];
	size_t n;

	bt_recordio_encode(out, "hello", 5);
	bt_recordio_encode(out, "", 0);         /* refused: records are never empty */
	bt_recordio_encode(out, "ab\ncdefghijk", 12);
	n = evbuffer_get_length(out);
	assert_int_equal(n, strlen("5\nhello12\nab\ncdefghijk"));
	evbuffer_remove(out, text, n);
	assert_memory_equal(text, "5\nhello12\nab\ncdefghijk", n);
	evbuffer_free(out);
}

static void test_byte_by_byte(void **state)
{
	struct sample s;
	struct bt_recordio d;
	size_t i, got = 0;

	sample_init(&s);
	bt_recordio_init(&d, 1 << 20);
	for (i = 0; i < s.wire_len; i++) {
		bt_recordio_feed(&d, s.wire + i, 1);
		drain(&d, &s, &got);
	}
	assert_int_equal(got, NRECORDS);
	assert_int_equal(bt_recordio_pending(&d), 0);
	bt_recordio_release(&d);
	sample_release(&s);
}

static void test_every_split(void **state)
{
	struct sample s;
	size_t split;

	sample_init(&s);
	for (split = 0; split <= s.wire_len; split++) {
		struct bt_recordio d;
		size_t got = 0;

		bt_recordio_init(&d, 1 << 20);
		bt_recordio_feed(&d, s.wire, split);
		drain(&d, &s, &got);
		bt_recordio_feed(&d, s.wire + split, s.wire_len - split);
		drain(&d, &s, &got);
		assert_int_equal(got, NRECORDS);
		assert_int_equal(bt_recordio_pending(&d), 0);
		bt_recordio_release(&d);
	}
	sample_release(&s);
}

static void test_many_in_one_feed(void **state)
{
	struct evbuffer *out = evbuffer_new();
	struct bt_recordio d;
	const char *rec;
	char expect[32], *wire, *cause = NULL;
	size_t len, n, i;

	for (i = 0; i < 1000; i++) {
		n = (size_t)snprintf(expect, sizeof expect, "record %zu", i);
		bt_recordio_encode(out, expect, n);
	}
	n = evbuffer_get_length(out);
	wire = xmalloc(n);
	evbuffer_remove(out, wire, n);
	bt_recordio_init(&d, 64);
	bt_recordio_feed(&d, wire, n);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
		n = (size_t)snprintf(expect, sizeof expect, "record %zu", i);
		assert_int_equal(len, n);
		assert_memory_equal(rec, expect, n);
	}
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	assert_int_equal(bt_recordio_pending(&d), 0);
	bt_recordio_release(&d);
	free(wire);
	evbuffer_free(out);
}

/* feed text, expect an error whose cause contains want; the decoder stays failed */
static void expect_error(const char *text, size_t max, const char *want)
{
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL;
	size_t len;

	bt_recordio_init(&d, max);
	bt_recordio_feed(&d, text, strlen(text));
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_ERROR);
	assert_non_null(cause);
	if (strstr(cause, want) == NULL)
		fail_msg("cause '%s' does not mention '%s'", cause, want);
	free(cause);
	cause = NULL;
	bt_recordio_feed(&d, "3\nabc", 5);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_ERROR);
	assert_non_null(cause);
	free(cause);
	bt_recordio_release(&d);
}

static void test_malformed_headers(void **state)
{
	expect_error("x1\nabc", 1024, "invalid record length 'x'");
	expect_error("1x\nabc", 1024, "invalid record length '1x'");
	expect_error("-1\na", 1024, "invalid record length '-'");
	expect_error(" 1\na", 1024, "invalid record length");
	expect_error("\nabc", 1024, "empty record length");
	expect_error("0\n", 1024, "records are never empty");
	expect_error("000\n", 1024, "records are never empty");
	expect_error("000000000000000000001", SIZE_MAX, "longer than 20 digits");
	expect_error("99999999999999999999\n", SIZE_MAX, "does not fit in 64 bits");
	expect_error("1\r\nab", 1024, "invalid record length '1?'");
	/* a good record, then garbage */
	{
		struct bt_recordio d;
		const char *rec;
		char *cause = NULL;
		size_t len;

		bt_recordio_init(&d, 1024);
		bt_recordio_feed(&d, "2\nokz\n", 6);
		assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
		assert_memory_equal(rec, "ok", 2);
		assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_ERROR);
		assert_non_null(cause);
		assert_string_equal(cause, "invalid record length 'z'");
		free(cause);
		bt_recordio_release(&d);
	}
}

static void test_max_record(void **state)
{
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL;
	size_t len;

	/* exactly the limit is fine */
	bt_recordio_init(&d, 4);
	bt_recordio_feed(&d, "4\nabcd", 6);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
	assert_int_equal(len, 4);
	bt_recordio_release(&d);

	expect_error("5\nabcde", 4, "record of 5 bytes exceeds the limit of 4 bytes");
	expect_error("99999999999\n", 1 << 20,
	    "record of 99999999999 bytes exceeds the limit of 1048576 bytes");

	/* detected before the header is complete, so nothing huge is buffered */
	bt_recordio_init(&d, 100);
	bt_recordio_feed(&d, "1000", 4);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_ERROR);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "exceeds the limit of 100 bytes"));
	free(cause);
	bt_recordio_release(&d);
}

static void test_pending(void **state)
{
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL;
	size_t len;

	/* nothing fed yet: no buffer at all */
	bt_recordio_init(&d, 1024);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	bt_recordio_feed(&d, "", 0);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	assert_int_equal(bt_recordio_pending(&d), 0);
	bt_recordio_feed(&d, "3\nabc5\nxy", 9);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
	assert_int_equal(len, 3);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	assert_int_equal(bt_recordio_pending(&d), 4);
	bt_recordio_feed(&d, "z", 1);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	assert_int_equal(bt_recordio_pending(&d), 5);
	bt_recordio_feed(&d, "uv1", 3);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
	assert_memory_equal(rec, "xyzuv", 5);
	assert_int_equal(bt_recordio_pending(&d), 1);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_AGAIN);
	assert_null(cause);
	bt_recordio_release(&d);
}

/* a long stream through a small window keeps the buffer small */
static void test_buffer_stays_bounded(void **state)
{
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL;
	size_t len, i;

	bt_recordio_init(&d, 1024);
	for (i = 0; i < 100000; i++) {
		bt_recordio_feed(&d, "5\nhello", 7);
		assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
		assert_memory_equal(rec, "hello", 5);
	}
	assert_true(d.cap <= 256);
	bt_recordio_release(&d);
}

/* the room a big record needed is given back once it was taken */
static void test_big_record_buffer_freed(void **state)
{
	static char big[100000];
	struct bt_recordio d;
	const char *rec;
	char *cause = NULL, header[16];
	size_t len;
	int n;

	memset(big, 'b', sizeof big);
	bt_recordio_init(&d, 1 << 20);
	n = snprintf(header, sizeof header, "%zu\n", sizeof big);
	bt_recordio_feed(&d, header, (size_t)n);
	bt_recordio_feed(&d, big, sizeof big / 2);
	bt_recordio_feed(&d, big + sizeof big / 2, sizeof big / 2);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
	assert_int_equal(len, sizeof big);
	assert_true(d.cap >= sizeof big);
	bt_recordio_feed(&d, "5\nhello", 7);
	assert_true(d.cap <= 256);
	assert_int_equal(bt_recordio_next(&d, &rec, &len, &cause), BT_RECORDIO_RECORD);
	assert_memory_equal(rec, "hello", 5);
	bt_recordio_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_format),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_many_in_one_feed),
		cmocka_unit_test(test_malformed_headers),
		cmocka_unit_test(test_max_record),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_buffer_stays_bounded),
		cmocka_unit_test(test_big_record_buffer_freed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
