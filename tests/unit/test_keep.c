/*
 * test_keep.c -- unit tests for common/keep.c: which allocations land in
 * the arena, reuse of freed blocks through free(), resizing, nesting,
 * libevent's allocations, and the descriptor records made ahead of need.
 * Under AddressSanitizer the arena is off: everything is asserted to come
 * from the heap instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "keep.h"
#include "xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA false
#endif
#endif
#ifndef ARENA
#define ARENA true
#endif

static int libevent_warnings;

static void *kept(size_t size)
{
	void *p;

	bt_keep_begin();
	p = xmalloc(size);
	bt_keep_end();
	return p;
}

static void test_heap_outside_keep_mode(void **state)
{
	void *p = xmalloc(64), *q;

	assert_false(bt_keeping());
	assert_false(bt_keep_owns(p));
	q = kept(64);
	assert_int_equal(bt_keep_owns(q), ARENA);
	free(q);
	q = xmalloc(64);
	assert_false(bt_keep_owns(q));
	free(q);
	free(p);
}

static void test_sizes(void **state)
{
	static const size_t small[] = { 0, 1, 15, 16, 17, 100, 511, BT_KEEP_MAX };
	void *p;
	char *s;

	for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
		p = kept(small[i]);
		assert_int_equal(bt_keep_owns(p), ARENA);
		memset(p, 0x5a, small[i]);
		free(p);
	}
	p = kept(BT_KEEP_MAX + 1);
	assert_false(bt_keep_owns(p));
	free(p);
	bt_keep_begin();
	s = xstrdup("agent-S1");
	p = xcalloc(BT_KEEP_MAX / 8 + 1, 8);
	bt_keep_end();
	assert_int_equal(bt_keep_owns(s), ARENA);
	assert_string_equal(s, "agent-S1");
	assert_false(bt_keep_owns(p));
	free(p);
	free(s);
}

static void test_free_reuses_blocks(void **state)
{
	char *p = kept(100), *q, *r;
	uintptr_t freed = (uintptr_t)p;

	if (!ARENA) {
		free(p);
		skip();
		return;
	}
	memset(p, 0xff, 100);
	free(p);
	bt_keep_begin();
	q = xcalloc(4, 25);             /* the same block, zeroed */
	r = xmalloc(200);               /* another size: another slab */
	bt_keep_end();
	assert_true((uintptr_t)q == freed);
	for (int i = 0; i < 100; i++)
		assert_int_equal(q[i], 0);
	assert_true(bt_keep_owns(r));
	assert_true((uintptr_t)r / (64 << 10) != (uintptr_t)q / (64 << 10));
	free(q);
	free(r);
}

static void test_resize_keeps_blocks_in_the_arena(void **state)
{
	char *p = kept(20);

	strcpy(p, "nineteen characters");
	p = xrealloc(p, 30);            /* outside keep mode, and still kept */
	assert_int_equal(bt_keep_owns(p), ARENA);
	p = xrealloc(p, 300);
	assert_int_equal(bt_keep_owns(p), ARENA);
	assert_string_equal(p, "nineteen characters");
	p = xrealloc(p, 4096);          /* too large for the arena */
	assert_false(bt_keep_owns(p));
	assert_string_equal(p, "nineteen characters");
	free(p);
	bt_keep_begin();
	p = xrealloc(NULL, 40);
	bt_keep_end();
	assert_int_equal(bt_keep_owns(p), ARENA);
	free(p);
}

static void test_nesting(void **state)
{
	bt_keep_begin();
	bt_keep_begin();
	bt_keep_end();
	assert_int_equal(bt_keeping(), ARENA);
	bt_keep_end();
	assert_false(bt_keeping());
	bt_keep_end();                  /* one end too many changes nothing */
	assert_false(bt_keeping());
}

static void test_libevent_allocates_in_keep_mode(void **state)
{
	struct evbuffer *a = evbuffer_new(), *b;

	assert_non_null(a);
	assert_false(bt_keep_owns(a));
	bt_keep_begin();
	b = evbuffer_new();
	bt_keep_end();
	assert_non_null(b);
	assert_int_equal(bt_keep_owns(b), ARENA);
	assert_int_equal(evbuffer_add_printf(b, "%s", "a record"), 8);
	evbuffer_free(b);               /* back through libevent's free function */
	evbuffer_free(a);
}

static int fired;

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	char c;

	if (read(fd, &c, 1) == 1)
		fired++;
}

static void test_descriptors_made_ahead(void **state)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;
	struct event *ev;
	int fds[2], far;

	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	assert_non_null(base);
	assert_int_equal(pipe(fds), 0);
	/* records for descriptors that are not open: nothing reaches epoll */
	bt_keep_descriptors(base, fds[0]);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(libevent_warnings, 0);
	/* a descriptor numbered among the records made ahead is watched as usual */
	far = dup2(fds[0], 900);
	assert_int_equal(far, 900);
	ev = event_new(base, far, EV_READ | EV_PERSIST, read_cb, NULL);
	assert_int_equal(event_add(ev, NULL), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(fired, 1);
	bt_keep_descriptors(base, far);
	assert_int_equal(write(fds[1], "y", 1), 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(fired, 2);
	assert_int_equal(libevent_warnings, 0);
	event_free(ev);
	close(far);
	close(fds[0]);
	close(fds[1]);
	event_base_free(base);
}

static void count_warnings(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		libevent_warnings++;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heap_outside_keep_mode),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_free_reuses_blocks),
		cmocka_unit_test(test_resize_keeps_blocks_in_the_arena),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_libevent_allocates_in_keep_mode),
		cmocka_unit_test(test_descriptors_made_ahead),
	};

	bt_keep_libevent();             /* before any other libevent call */
	event_set_log_callback(count_warnings);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
