/*
 * test_map.c -- unit tests for common/map.c: put, get, replace and remove
 * across the table's growth, borrowed keys, keys that share a bucket, and
 * the list of values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "xmalloc.h"

enum { N = 20000 };

static void key_of(char *buf, size_t len, int i)
{
	snprintf(buf, len, "web.instance-%08x-%d._app.1", (unsigned)i * 2654435761u, i);
}

/* every key put is found again, through several doublings, and removed once */
static void test_many_keys(void **state)
{
	struct bt_map m;
	char key[64];
	int *v = xcalloc(N, sizeof *v);

	bt_map_init(&m);
	for (int i = 0; i < N; i++) {
		key_of(key, sizeof key, i);
		bt_map_put(&m, key, &v[i]);
	}
	assert_int_equal(m.n, N);
	assert_true(m.nbuckets >= N);
	for (int i = 0; i < N; i++) {
		key_of(key, sizeof key, i);
		assert_ptr_equal(bt_map_get(&m, key), &v[i]);
	}
	assert_null(bt_map_get(&m, "web.instance-missing"));
	assert_null(bt_map_get(&m, ""));
	assert_null(bt_map_get(&m, NULL));
	for (int i = 0; i < N; i += 2) {
		key_of(key, sizeof key, i);
		assert_ptr_equal(bt_map_remove(&m, key), &v[i]);
		assert_null(bt_map_remove(&m, key));
	}
	assert_int_equal(m.n, N / 2);
	for (int i = 0; i < N; i++) {
		key_of(key, sizeof key, i);
		if (i % 2 == 0)
			assert_null(bt_map_get(&m, key));
		else
			assert_ptr_equal(bt_map_get(&m, key), &v[i]);
	}
	bt_map_release(&m);
	free(v);
}

/* a put of a key already there replaces its value; the count stays */
static void test_replace(void **state)
{
	struct bt_map m;
	int a, b;

	bt_map_init(&m);
	bt_map_put(&m, "k", &a);
	bt_map_put(&m, "k", &b);
	assert_int_equal(m.n, 1);
	assert_ptr_equal(bt_map_get(&m, "k"), &b);
	bt_map_release(&m);
}

/* keys that differ only past a shared prefix, or by length, stay apart */
static void test_similar_keys(void **state)
{
	struct bt_map m;
	const char *keys[] = { "a", "ab", "abc", "abd", "b", "", "aa", "a\xff" };
	size_t n = sizeof keys / sizeof keys[0];
	int v[8];

	bt_map_init(&m);
	for (size_t i = 0; i < n; i++)
		bt_map_put(&m, keys[i], &v[i]);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(bt_map_get(&m, keys[i]), &v[i]);
	assert_null(bt_map_get(&m, "abe"));
	bt_map_release(&m);
}

/* a borrowed map keeps the caller's key pointers; a zeroed map works too */
static void test_borrowed_and_zeroed(void **state)
{
	struct bt_map m, z;
	char *key = xstrdup("agent-1"), *held = NULL;
	int a;

	bt_map_init_borrowed(&m);
	bt_map_put(&m, key, &a);
	for (size_t i = 0; i < m.nbuckets; i++)
		if (m.buckets[i] != NULL)
			held = m.buckets[i]->key;
	assert_ptr_equal(held, key);    /* the caller's pointer, not a copy */
	assert_ptr_equal(bt_map_get(&m, "agent-1"), &a);
	assert_ptr_equal(bt_map_remove(&m, "agent-1"), &a);
	bt_map_release(&m);
	free(key);

	memset(&z, 0, sizeof z);
	assert_null(bt_map_get(&z, "x"));
	bt_map_put(&z, "x", &a);
	assert_ptr_equal(bt_map_get(&z, "x"), &a);
	bt_map_release(&z);
}

/* bt_map_values lists each value once */
static void test_values(void **state)
{
	struct bt_map m;
	char key[64];
	int v[100], seen[100] = { 0 };
	void **all;
	size_t n;

	bt_map_init(&m);
	for (int i = 0; i < 100; i++) {
		key_of(key, sizeof key, i);
		bt_map_put(&m, key, &v[i]);
	}
	all = bt_map_values(&m, &n);
	assert_int_equal(n, 100);
	for (size_t i = 0; i < n; i++)
		seen[(int *)all[i] - v]++;
	for (int i = 0; i < 100; i++)
		assert_int_equal(seen[i], 1);
	free(all);
	bt_map_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_similar_keys),
		cmocka_unit_test(test_borrowed_and_zeroed),
		cmocka_unit_test(test_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
