/*
 * ids.c -- UUIDs and the random bytes behind them.
 *
 * Random bytes come from getrandom(2) a page at a time rather than a
 * system call per id: a busy master or relay makes tens of thousands of
 * ids a second. The page is thrown away in a forked child, which must
 * never repeat its parent's ids. Time-ordered ids (version 7) put the
 * milliseconds first and count within one, so ids made one after the other
 * sort one after the other: records keyed by them land side by side.
 */
#include "ids.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define POOL 4096

static struct {
	uint8_t bytes[POOL];
	size_t left;                    /* unused bytes at the end of `bytes` */
	bool atfork;
} pool;

static void forget_pool(void)
{
	memset(pool.bytes, 0, sizeof pool.bytes);
	pool.left = 0;
}

static void fill_pool(void)
{
	size_t got = 0;

	if (!pool.atfork) {
		pthread_atfork(NULL, NULL, forget_pool);
		pool.atfork = true;
	}
	while (got < POOL) {
		ssize_t n = getrandom(pool.bytes + got, POOL - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bt_fatal("getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	pool.left = POOL;
}

void bt_random_bytes(void *out, size_t n)
{
	uint8_t *o = out;
	size_t take;

	while (n > 0) {
		if (pool.left == 0)
			fill_pool();
		take = n < pool.left ? n : pool.left;
		memcpy(o, pool.bytes + POOL - pool.left, take);
		pool.left -= take;
		o += take;
		n -= take;
	}
}

void bt_uuid_random(uint8_t out[16])
{
	bt_random_bytes(out, 16);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void bt_uuid_time_ordered(uint8_t out[16])
{
	static uint64_t last_ms;
	static unsigned seq;            /* 12 bits: ids within one millisecond */
	uint64_t ms = (uint64_t)(bt_now() * 1000.0);
	int i;

	if (ms <= last_ms) {
		/* the same millisecond, or the clock went back: count on from the last id */
		ms = last_ms;
		if (++seq > 0xfff) {
			seq = 0;
			ms++;
		}
	} else {
		seq = 0;
	}
	last_ms = ms;
	bt_random_bytes(out + 8, 8);
	for (i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | (seq >> 8));
	out[7] = (uint8_t)(seq & 0xff);
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void bt_uuid_format(const uint8_t u[16], char out[37])
{
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
	    u[12], u[13], u[14], u[15]);
}

char *bt_uuid_new(void)
{
	uint8_t u[16];
	char text[37];

	bt_uuid_random(u);
	bt_uuid_format(u, text);
	return xstrdup(text);
}

char *bt_uuid_new_ordered(void)
{
	uint8_t u[16];
	char text[37];

	bt_uuid_time_ordered(u);
	bt_uuid_format(u, text);
	return xstrdup(text);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int bt_uuid_parse(const char *s, uint8_t out[16])
{
	int i, j = 0;

	if (strlen(s) != 36)
		return -1;
	for (i = 0; i < 36;) {
		int hi, lo;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return 0;
}
