/*
 * test_value.c -- unit tests for common/value.c: fixed-point scalars,
 * range arithmetic (coalescing, splitting, containment, counting), sets,
 * the text form with its error messages, and the protobuf parts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "value.h"

/* parse text (must succeed) */
static struct bt_value parsed(const char *text, bool allow_text)
{
	struct bt_value v;
	char *cause = NULL;

	if (bt_value_parse(&v, text, allow_text, &cause) != 0)
		fail_msg("parse '%s' failed: %s", text, cause);
	return v;
}

static void assert_format(const struct bt_value *v, const char *want)
{
	char *got = bt_value_format(v);

	assert_string_equal(got, want);
	free(got);
}

static void assert_parse_error(const char *text, bool allow_text, const char *want)
{
	struct bt_value v;
	char *cause = NULL;

	assert_int_equal(bt_value_parse(&v, text, allow_text, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	/* a failed parse leaves an empty value that may be released */
	assert_true(bt_value_is_empty(&v));
	bt_value_release(&v);
	free(cause);
}

/* ranges from pairs: ranges_of(n, b0, e0, b1, e1, ...) via bt_ranges_add */
static void assert_ranges(const struct bt_range *r, size_t n, const uint64_t *want, size_t nwant)
{
	size_t i;

	assert_int_equal(n, nwant / 2);
	for (i = 0; i < n; i++) {
		assert_int_equal(r[i].begin, want[2 * i]);
		assert_int_equal(r[i].end, want[2 * i + 1]);
	}
}

#define ASSERT_RANGES(r, n, ...) do { \
	const uint64_t want_[] = { __VA_ARGS__ }; \
	assert_ranges((r), (n), want_, sizeof want_ / sizeof want_[0]); \
} while (0)

static void test_fixed_point(void **state)
{
	struct bt_value a = parsed("0.1", false), b = parsed("0.2", false);
	struct bt_value c = parsed("0.3", false);

	assert_int_equal(bt_value_add(&a, &b), 0);
	assert_true(bt_value_equal(&a, &c));
	assert_int_equal(a.scalar, 300);
	assert_format(&a, "0.3");

	assert_int_equal(bt_scalar_from_double(1.2344), 1234);
	assert_int_equal(bt_scalar_from_double(1.2346), 1235);
	assert_int_equal(bt_scalar_from_double(0.0004), 0);
	assert_int_equal(bt_scalar_from_double(2.5), 2500);
	assert_true(bt_scalar_to_double(2500) == 2.5);
	bt_value_release(&a);
	bt_value_release(&b);
	bt_value_release(&c);

	a = parsed("1.23456", false);
	assert_int_equal(a.scalar, 1235);
	assert_format(&a, "1.235");
	bt_value_release(&a);
}

static void test_scalar_format(void **state)
{
	struct bt_value v;

	bt_value_init(&v);
	v.scalar = 4000;
	assert_format(&v, "4");
	v.scalar = 500;
	assert_format(&v, "0.5");
	v.scalar = 1250;
	assert_format(&v, "1.25");
	v.scalar = 1;
	assert_format(&v, "0.001");
	v.scalar = -2500;
	assert_format(&v, "-2.5");
	v.scalar = 0;
	assert_format(&v, "0");
}

static void test_scalar_subtract_floor(void **state)
{
	struct bt_value a = parsed("1", false), b = parsed("1.5", false);

	assert_false(bt_value_contains(&a, &b));
	assert_true(bt_value_contains(&b, &a));
	assert_int_equal(bt_value_subtract(&a, &b), 0);
	assert_int_equal(a.scalar, 0);
	assert_true(bt_value_is_empty(&a));
	bt_value_release(&a);
	bt_value_release(&b);
}

static void test_ranges_add(void **state)
{
	struct bt_range *r = NULL;
	size_t n = 0;

	bt_ranges_add(&r, &n, 1, 3);
	bt_ranges_add(&r, &n, 4, 5);            /* adjacent: coalesce */
	ASSERT_RANGES(r, n, 1, 5);
	bt_ranges_add(&r, &n, 3, 8);            /* overlapping */
	ASSERT_RANGES(r, n, 1, 8);
	bt_ranges_add(&r, &n, 20, 30);          /* disjoint, after */
	bt_ranges_add(&r, &n, 12, 14);          /* disjoint, between */
	ASSERT_RANGES(r, n, 1, 8, 12, 14, 20, 30);
	bt_ranges_add(&r, &n, 9, 19);           /* bridges all three */
	ASSERT_RANGES(r, n, 1, 30);
	bt_ranges_add(&r, &n, 0, 0);            /* touches at the left edge */
	ASSERT_RANGES(r, n, 0, 30);
	bt_ranges_add(&r, &n, UINT64_MAX, UINT64_MAX);
	bt_ranges_add(&r, &n, UINT64_MAX - 1, UINT64_MAX - 1);
	ASSERT_RANGES(r, n, 0, 30, UINT64_MAX - 1, UINT64_MAX);
	bt_ranges_add(&r, &n, 5, 10);           /* already covered */
	ASSERT_RANGES(r, n, 0, 30, UINT64_MAX - 1, UINT64_MAX);
	bt_ranges_add(&r, &n, 31, UINT64_MAX - 2);
	ASSERT_RANGES(r, n, 0, UINT64_MAX);
	assert_int_equal(bt_ranges_count(r, n), UINT64_MAX);   /* saturates */
	free(r);
}

static void test_ranges_subtract(void **state)
{
	struct bt_range *r = NULL;
	size_t n = 0;

	bt_ranges_add(&r, &n, 1, 10);
	bt_ranges_subtract(&r, &n, 4, 6);       /* split */
	ASSERT_RANGES(r, n, 1, 3, 7, 10);
	bt_ranges_subtract(&r, &n, 20, 30);     /* nothing there */
	ASSERT_RANGES(r, n, 1, 3, 7, 10);
	bt_ranges_subtract(&r, &n, 3, 7);       /* trims both neighbours */
	ASSERT_RANGES(r, n, 1, 2, 8, 10);
	bt_ranges_subtract(&r, &n, 1, 1);       /* left edge */
	bt_ranges_subtract(&r, &n, 10, 10);     /* right edge */
	ASSERT_RANGES(r, n, 2, 2, 8, 9);
	bt_ranges_add(&r, &n, 20, 25);
	bt_ranges_subtract(&r, &n, 0, 21);      /* removes two, trims one */
	ASSERT_RANGES(r, n, 22, 25);
	bt_ranges_subtract(&r, &n, 22, 25);
	assert_int_equal(n, 0);
	bt_ranges_add(&r, &n, 0, UINT64_MAX);
	bt_ranges_subtract(&r, &n, 0, 0);
	bt_ranges_subtract(&r, &n, UINT64_MAX, UINT64_MAX);
	ASSERT_RANGES(r, n, 1, UINT64_MAX - 1);
	free(r);
}

static void test_ranges_contains_count(void **state)
{
	struct bt_range *r = NULL;
	size_t n = 0;

	assert_false(bt_ranges_contains(r, n, 1, 1));
	assert_int_equal(bt_ranges_count(r, n), 0);
	bt_ranges_add(&r, &n, 1, 3);
	bt_ranges_add(&r, &n, 5, 10);
	assert_true(bt_ranges_contains(r, n, 1, 3));
	assert_true(bt_ranges_contains(r, n, 5, 5));
	assert_true(bt_ranges_contains(r, n, 10, 10));
	assert_true(bt_ranges_contains(r, n, 6, 9));
	assert_false(bt_ranges_contains(r, n, 0, 1));
	assert_false(bt_ranges_contains(r, n, 4, 4));
	assert_false(bt_ranges_contains(r, n, 3, 5));   /* spans the gap */
	assert_false(bt_ranges_contains(r, n, 10, 11));
	assert_false(bt_ranges_contains(r, n, 11, 11));
	assert_int_equal(bt_ranges_count(r, n), 9);
	free(r);
}

static void test_ranges_value(void **state)
{
	struct bt_value a = parsed("[31000-32000, 7000-8000]", false);
	struct bt_value b = parsed(" [ 31500 - 31600 ] ", false);

	assert_int_equal(a.type, BT_RANGES);
	assert_format(&a, "[7000-8000, 31000-32000]");
	assert_true(bt_value_contains(&a, &b));
	assert_false(bt_value_contains(&b, &a));
	assert_int_equal(bt_value_subtract(&a, &b), 0);
	assert_format(&a, "[7000-8000, 31000-31499, 31601-32000]");
	assert_int_equal(bt_value_add(&a, &b), 0);
	assert_format(&a, "[7000-8000, 31000-32000]");
	bt_value_release(&a);
	bt_value_release(&b);

	a = parsed("[]", false);
	assert_true(bt_value_is_empty(&a));
	assert_format(&a, "[]");
	bt_value_release(&a);
	a = parsed("[5-5]", false);
	assert_format(&a, "[5-5]");
	bt_value_release(&a);
}

static void test_sets(void **state)
{
	struct bt_value a = parsed("{c, a,b,a}", false), b = parsed("{b}", false);
	struct bt_value s = parsed("4", false);

	assert_int_equal(a.type, BT_SET);
	assert_format(&a, "{a,b,c}");
	assert_true(bt_value_contains(&a, &b));
	assert_false(bt_value_contains(&b, &a));
	assert_int_equal(bt_value_subtract(&a, &b), 0);
	assert_format(&a, "{a,c}");
	assert_false(bt_value_contains(&a, &b));
	assert_int_equal(bt_value_add(&a, &b), 0);
	assert_format(&a, "{a,b,c}");
	/* a type mismatch is refused */
	assert_int_equal(bt_value_add(&a, &s), -1);
	assert_int_equal(bt_value_subtract(&a, &s), -1);
	assert_false(bt_value_contains(&a, &s));
	bt_value_release(&a);
	bt_value_release(&b);
	bt_value_release(&s);
}

static void test_text(void **state)
{
	struct bt_value a = parsed(" west ", true), b;

	assert_int_equal(a.type, BT_TEXT);
	assert_format(&a, "west");
	bt_value_copy(&b, &a);
	assert_true(bt_value_equal(&a, &b));
	bt_value_release(&a);
	bt_value_release(&b);
}

static void test_parse_errors(void **state)
{
	assert_parse_error("x", false, "'x' is not a number");
	assert_parse_error("", false, "missing value");
	assert_parse_error("  ", true, "missing value");
	assert_parse_error("nan", false, "'nan' is not a number");
	assert_parse_error("inf", false, "'inf' is not a number");
	assert_parse_error("1e999", false, "'1e999' is not a finite number");
	assert_parse_error("1e13", false, "scalar '1e13' is too large (at most 1000000000000)");
	assert_parse_error("1.2.3", false, "'1.2.3' is not a number");
	assert_parse_error("[5-1]", false, "range begin 5 is after end 1");
	assert_parse_error("[1-2", false, "'[1-2' is not closed by ']'");
	assert_parse_error("[a-2]", false, "range bound 'a' is not a number");
	assert_parse_error("[1--2]", false, "range bound '-2' is not a number");
	assert_parse_error("[5]", false, "range '5' is not of the form begin-end");
	assert_parse_error("[1-2,,3-4]", false, "'[1-2,,3-4]' has an empty item");
	assert_parse_error("[1-99999999999999999999]", false,
	    "range bound '99999999999999999999' is too large (at most 9223372036854775807)");
	assert_parse_error("[0-9223372036854775808]", false,
	    "range bound '9223372036854775808' is too large (at most 9223372036854775807)");
	assert_parse_error("{a,,b}", false, "'{a,,b}' has an empty item");
	assert_parse_error("{a, }", false, "'{a, }' has an empty item");
	assert_parse_error("{a", true, "'{a' is not closed by '}'");
}

static void test_pb_parts(void **state)
{
	const char *texts[] = { "2.5", "[1-3, 7-9]", "{x,y}", "abc" };
	Mesos__V1__Value__Scalar *scalar;
	Mesos__V1__Value__Ranges *ranges;
	Mesos__V1__Value__Set *set;
	Mesos__V1__Value__Text *text;
	struct bt_value a, b;
	char *cause = NULL;
	size_t i;

	for (i = 0; i < 4; i++) {
		a = parsed(texts[i], true);
		bt_value_to_pb_parts(&a, &scalar, &ranges, &set, &text);
		assert_int_equal(bt_value_from_pb_parts(&b, (Mesos__V1__Value__Type)a.type,
		    scalar, ranges, set, text, &cause), 0);
		assert_true(bt_value_equal(&a, &b));
		if (scalar)
			protobuf_c_message_free_unpacked(&scalar->base, NULL);
		if (ranges)
			protobuf_c_message_free_unpacked(&ranges->base, NULL);
		if (set)
			protobuf_c_message_free_unpacked(&set->base, NULL);
		if (text)
			protobuf_c_message_free_unpacked(&text->base, NULL);
		bt_value_release(&a);
		bt_value_release(&b);
	}
	assert_int_equal(bt_value_from_pb_parts(&b, MESOS__V1__VALUE__TYPE__SCALAR,
	    NULL, NULL, NULL, NULL, &cause), -1);
	assert_string_equal(cause, "type SCALAR but no 'scalar' field");
	free(cause);
}

static void test_pb_bad_range(void **state)
{
	Mesos__V1__Value__Range r = MESOS__V1__VALUE__RANGE__INIT, *rp = &r;
	Mesos__V1__Value__Ranges rs = MESOS__V1__VALUE__RANGES__INIT;
	struct bt_value v;
	char *cause = NULL;

	r.begin = 9;
	r.end = 3;
	rs.n_range = 1;
	rs.range = &rp;
	assert_int_equal(bt_value_from_pb_parts(&v, MESOS__V1__VALUE__TYPE__RANGES, NULL, &rs,
	    NULL, NULL, &cause), -1);
	assert_string_equal(cause, "range begin 9 is after end 3");
	free(cause);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_point),
		cmocka_unit_test(test_scalar_format),
		cmocka_unit_test(test_scalar_subtract_floor),
		cmocka_unit_test(test_ranges_add),
		cmocka_unit_test(test_ranges_subtract),
		cmocka_unit_test(test_ranges_contains_count),
		cmocka_unit_test(test_ranges_value),
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_pb_parts),
		cmocka_unit_test(test_pb_bad_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
