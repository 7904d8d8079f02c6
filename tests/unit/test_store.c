/*
 * test_store.c -- the SQLite store: put, get, delete, walk, transactions,
 * and that what was written is there after reopening.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "store.h"
#include "xmalloc.h"

struct fixture {
	char dir[64];
	char *path;
	struct bt_store *s;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof *f);
	char *cause = NULL;

	snprintf(f->dir, sizeof f->dir, "/tmp/butte-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->path = xasprintf("%s/state.db", f->dir);
	f->s = bt_store_open(f->path, &cause);
	if (f->s == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *p;

	bt_store_close(f->s);
	p = xasprintf("rm -rf '%s'", f->dir);
	if (system(p) != 0)
		fprintf(stderr, "unable to remove %s\n", f->dir);
	free(p);
	free(f->path);
	free(f);
	return 0;
}

static void check_value(struct bt_store *s, const char *ns, const char *key, const char *want)
{
	char *v = NULL;
	size_t len = 0;

	assert_int_equal(bt_store_get(s, ns, key, &v, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_string_equal(v, want);
	free(v);
}

static void check_absent(struct bt_store *s, const char *ns, const char *key)
{
	char *v = NULL;

	assert_int_equal(bt_store_get(s, ns, key, &v, NULL), 1);
	assert_null(v);
}

static void test_put_get_delete(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL, *v = NULL;
	size_t len = 99;

	check_absent(f->s, "apps", "a");
	assert_int_equal(bt_store_put(f->s, "apps", "a", "one", 3, &cause), 0);
	check_value(f->s, "apps", "a", "one");
	assert_int_equal(bt_store_put(f->s, "apps", "a", "two!", 4, &cause), 0);
	check_value(f->s, "apps", "a", "two!");
	check_absent(f->s, "tasks", "a");
	assert_int_equal(bt_store_put(f->s, "apps", "bin", "x\0y", 3, &cause), 0);
	assert_int_equal(bt_store_get(f->s, "apps", "bin", &v, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "x\0y", 3);
	free(v);
	assert_int_equal(bt_store_put(f->s, "apps", "empty", NULL, 0, &cause), 0);
	check_value(f->s, "apps", "empty", "");
	assert_int_equal(bt_store_delete(f->s, "apps", "a", &cause), 0);
	check_absent(f->s, "apps", "a");
	assert_int_equal(bt_store_delete(f->s, "apps", "missing", &cause), 0);
}

struct walk {
	char keys[512];
	int stop_after;
	int seen;
};

static int walk_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct walk *w = arg;

	strcat(w->keys, key);
	strcat(w->keys, "=");
	strncat(w->keys, value, len);
	strcat(w->keys, ";");
	return ++w->seen == w->stop_after;
}

static void test_foreach(void **state)
{
	struct fixture *f = *state;
	struct walk w = { "", 0, 0 };
	char *cause = NULL;

	assert_int_equal(bt_store_put(f->s, "ns", "c", "3", 1, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "ns", "a", "1", 1, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "ns", "b", "2", 1, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "other", "z", "9", 1, &cause), 0);
	assert_int_equal(bt_store_foreach(f->s, "ns", walk_cb, &w), 0);
	assert_string_equal(w.keys, "a=1;b=2;c=3;");
	memset(&w, 0, sizeof w);
	w.stop_after = 2;
	assert_int_equal(bt_store_foreach(f->s, "ns", walk_cb, &w), 0);
	assert_string_equal(w.keys, "a=1;b=2;");
	memset(&w, 0, sizeof w);
	assert_int_equal(bt_store_foreach(f->s, "none", walk_cb, &w), 0);
	assert_int_equal(w.seen, 0);
}

static void test_transactions(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;

	assert_int_equal(bt_store_begin(f->s, &cause), 0);
	assert_int_equal(bt_store_begin(f->s, &cause), -1);
	free(cause);
	assert_int_equal(bt_store_put(f->s, "t", "a", "1", 1, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "t", "b", "2", 1, &cause), 0);
	bt_store_rollback(f->s);
	check_absent(f->s, "t", "a");
	check_absent(f->s, "t", "b");

	assert_int_equal(bt_store_begin(f->s, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "t", "a", "1", 1, &cause), 0);
	assert_int_equal(bt_store_delete(f->s, "t", "a", &cause), 0);
	assert_int_equal(bt_store_put(f->s, "t", "b", "2", 1, &cause), 0);
	assert_int_equal(bt_store_commit(f->s, &cause), 0);
	check_absent(f->s, "t", "a");
	check_value(f->s, "t", "b", "2");
	assert_int_equal(bt_store_commit(f->s, &cause), -1);
	free(cause);
	bt_store_rollback(f->s);
}

static void test_reopen(void **state)
{
	struct fixture *f = *state;
	char *cause = NULL;

	assert_int_equal(bt_store_put(f->s, "fw", "id", "abc-123", 7, &cause), 0);
	assert_int_equal(bt_store_begin(f->s, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "fw", "pending", "x", 1, &cause), 0);
	/* closing with an open transaction loses it */
	bt_store_close(f->s);
	f->s = bt_store_open(f->path, &cause);
	assert_non_null(f->s);
	check_value(f->s, "fw", "id", "abc-123");
	check_absent(f->s, "fw", "pending");
}

/* the order in which waits ran: each appends its letter */
struct waits {
	char order[16];
	size_t n;
};

static struct waits ran;
static char letters[] = "abcdef";

static void wait_cb(void *arg)
{
	ran.order[ran.n++] = *(char *)arg;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* turn the loop until n waits ran, for at most 10 s */
static void run_until(struct event_base *base, const struct waits *w, size_t n)
{
	struct timeval tv = { 10, 0 };
	int expired = 0;
	struct event *deadline = evtimer_new(base, deadline_cb, &expired);

	evtimer_add(deadline, &tv);
	while (w->n < n && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	assert_true(w->n >= n);
}

static void test_sync_off_loop(void **state)
{
	struct fixture *f = *state;
	struct event_base *base = event_base_new();
	char *cause = NULL, *big = xmalloc(1 << 20);
	struct stat sb;
	int i;

	assert_int_equal(bt_store_sync_start(f->s, base, &cause), 0);
	/* nothing committed: a wait runs at once */
	bt_store_when_durable(f->s, wait_cb, &letters[0]);
	assert_int_equal(ran.n, 1);
	/* a write outside a transaction is a commit; its wait runs from the loop */
	assert_int_equal(bt_store_put(f->s, "t", "one", "1", 1, &cause), 0);
	assert_int_equal(bt_store_commits(f->s), 1);
	bt_store_when_durable(f->s, wait_cb, &letters[1]);
	assert_int_equal(ran.n, 1);
	/* past the checkpoint threshold: the thread checkpoints as well */
	memset(big, 'x', 1 << 20);
	assert_int_equal(bt_store_begin(f->s, &cause), 0);
	for (i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof key, "big%d", i);
		assert_int_equal(bt_store_put(f->s, "t", key, big, 1 << 20, &cause), 0);
	}
	assert_int_equal(bt_store_commit(f->s, &cause), 0);
	assert_int_equal(bt_store_commits(f->s), 2);
	bt_store_when_durable(f->s, wait_cb, &letters[2]);
	run_until(base, &ran, 3);
	assert_memory_equal(ran.order, "abc", 3);
	/* the thread checkpoints the log into the database file, after telling the loop */
	for (i = 0; i < 1000 && (stat(f->path, &sb) != 0 || sb.st_size <= 5 << 20); i++)
		usleep(10000);
	assert_true(sb.st_size > 5 << 20);
	/* all on disk: at once again */
	bt_store_when_durable(f->s, wait_cb, &letters[3]);
	assert_int_equal(ran.n, 4);
	/* a wait made inside a transaction waits for its commit and that sync */
	assert_int_equal(bt_store_begin(f->s, &cause), 0);
	assert_int_equal(bt_store_put(f->s, "t", "three", "3", 1, &cause), 0);
	bt_store_when_durable(f->s, wait_cb, &letters[4]);
	for (i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(ran.n, 4);
	assert_int_equal(bt_store_commit(f->s, &cause), 0);
	run_until(base, &ran, 5);
	/* closing runs the waits left, after syncing */
	assert_int_equal(bt_store_put(f->s, "t", "two", "2", 1, &cause), 0);
	bt_store_when_durable(f->s, wait_cb, &letters[5]);
	bt_store_close(f->s);
	assert_int_equal(ran.n, 6);
	assert_memory_equal(ran.order, "abcdef", 6);
	f->s = bt_store_open(f->path, &cause);
	assert_non_null(f->s);
	check_value(f->s, "t", "one", "1");
	check_value(f->s, "t", "two", "2");
	check_value(f->s, "t", "three", "3");
	free(big);
	event_base_free(base);
}

static void test_open_error(void **state)
{
	char *cause = NULL;

	assert_null(bt_store_open("/nonexistent-dir/x/state.db", &cause));
	assert_non_null(strstr(cause, "/nonexistent-dir/x/state.db"));
	free(cause);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_off_loop, setup, teardown),
		cmocka_unit_test(test_open_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
