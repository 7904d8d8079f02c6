/*
 * test_flags.c -- the option table: types, precedence, booleans, durations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

static char *s_name;
static int s_port;
static double s_ratio;
static bool s_verbose;
static double s_timeout;
static char *s_nodef;

static const struct bt_flag table[] = {
	{ "name", BT_FLAG_STRING, &s_name, "butte", "a name" },
	{ "port", BT_FLAG_INT, &s_port, "5050", "the port" },
	{ "ratio", BT_FLAG_DOUBLE, &s_ratio, "0.5", "a ratio" },
	{ "verbose", BT_FLAG_BOOL, &s_verbose, "false", "say more" },
	{ "timeout", BT_FLAG_DURATION, &s_timeout, "15secs", "how long" },
	{ "nodef", BT_FLAG_STRING, &s_nodef, NULL, "no default" },
	{ NULL, 0, NULL, NULL, NULL },
};

static int parse(int argc, char **argv, int *rest, char **cause)
{
	return bt_flags_parse(table, argc, argv, "test [flags]", rest, cause);
}

static int setup(void **state)
{
	unsetenv("BUTTE_PORT");
	unsetenv("BUTTE_NAME");
	unsetenv("BUTTE_VERBOSE");
	return 0;
}

static int teardown(void **state)
{
	bt_flags_release(table);
	return 0;
}

static void test_defaults(void **state)
{
	char *argv[] = { "prog", NULL };
	char *cause = NULL;

	assert_int_equal(parse(1, argv, NULL, &cause), 0);
	assert_string_equal(s_name, "butte");
	assert_int_equal(s_port, 5050);
	assert_true(fabs(s_ratio - 0.5) < 1e-12);
	assert_false(s_verbose);
	assert_true(fabs(s_timeout - 15) < 1e-12);
	assert_null(s_nodef);
}

static void test_forms(void **state)
{
	char *argv[] = { "prog", "--name=x", "--port", "80", "--ratio=2.25", "--verbose",
	    "--timeout=250ms", "--nodef", "hello", NULL };
	char *cause = NULL;

	assert_int_equal(parse(9, argv, NULL, &cause), 0);
	assert_string_equal(s_name, "x");
	assert_int_equal(s_port, 80);
	assert_true(fabs(s_ratio - 2.25) < 1e-12);
	assert_true(s_verbose);
	assert_true(fabs(s_timeout - 0.25) < 1e-12);
	assert_string_equal(s_nodef, "hello");
}

static void test_booleans(void **state)
{
	char *a1[] = { "prog", "--verbose=true", "--no-verbose", NULL };
	char *a2[] = { "prog", "--verbose=false", NULL };
	char *a3[] = { "prog", "--verbose=maybe", NULL };
	char *a4[] = { "prog", "--no-verbose=true", NULL };
	char *cause = NULL;

	assert_int_equal(parse(3, a1, NULL, &cause), 0);
	assert_false(s_verbose);
	bt_flags_release(table);
	s_verbose = true;
	assert_int_equal(parse(2, a2, NULL, &cause), 0);
	assert_false(s_verbose);
	bt_flags_release(table);
	assert_int_equal(parse(2, a3, NULL, &cause), -1);
	assert_non_null(strstr(cause, "invalid value 'maybe' for flag '--verbose'"));
	free(cause);
	assert_int_equal(parse(2, a4, NULL, &cause), -1);
	free(cause);
}

static void test_environment(void **state)
{
	char *a1[] = { "prog", NULL };
	char *a2[] = { "prog", "--port=7", NULL };
	char *cause = NULL;

	setenv("BUTTE_PORT", "6060", 1);
	setenv("BUTTE_NAME", "fromenv", 1);
	setenv("BUTTE_VERBOSE", "true", 1);
	assert_int_equal(parse(1, a1, NULL, &cause), 0);
	assert_int_equal(s_port, 6060);
	assert_string_equal(s_name, "fromenv");
	assert_true(s_verbose);
	bt_flags_release(table);
	assert_int_equal(parse(2, a2, NULL, &cause), 0);
	assert_int_equal(s_port, 7);
	bt_flags_release(table);
	setenv("BUTTE_PORT", "abc", 1);
	assert_int_equal(parse(1, a1, NULL, &cause), -1);
	assert_non_null(strstr(cause, "BUTTE_PORT"));
	free(cause);
	setup(state);
}

static void test_errors(void **state)
{
	char *a1[] = { "prog", "--bogus=1", NULL };
	char *a2[] = { "prog", "--port=abc", NULL };
	char *a3[] = { "prog", "--port", NULL };
	char *a4[] = { "prog", "stray", NULL };
	char *a5[] = { "prog", "--port=99999999999", NULL };
	char *a6[] = { "prog", "--timeout=5parsecs", NULL };
	char *a7[] = { "prog", "--ratio=x1", NULL };
	char *cause = NULL;

	assert_int_equal(parse(2, a1, NULL, &cause), -1);
	assert_non_null(strstr(cause, "unknown flag '--bogus'"));
	assert_null(s_name);
	free(cause);
	assert_int_equal(parse(2, a2, NULL, &cause), -1);
	assert_string_equal(cause, "invalid value 'abc' for flag '--port': not an integer");
	free(cause);
	assert_int_equal(parse(2, a3, NULL, &cause), -1);
	assert_non_null(strstr(cause, "missing value for flag '--port'"));
	free(cause);
	assert_int_equal(parse(2, a4, NULL, &cause), -1);
	assert_non_null(strstr(cause, "'stray'"));
	free(cause);
	assert_int_equal(parse(2, a5, NULL, &cause), -1);
	free(cause);
	assert_int_equal(parse(2, a6, NULL, &cause), -1);
	assert_non_null(strstr(cause, "--timeout"));
	free(cause);
	assert_int_equal(parse(2, a7, NULL, &cause), -1);
	assert_non_null(strstr(cause, "not a number"));
	free(cause);
}

static void test_rest(void **state)
{
	char *argv[] = { "prog", "--port=1", "app", "--verbose", NULL };
	char *a2[] = { "prog", "--port=1", "--", "--x", NULL };
	char *cause = NULL;
	int rest = -1;

	assert_int_equal(parse(4, argv, &rest, &cause), 0);
	assert_int_equal(rest, 2);
	assert_false(s_verbose);
	bt_flags_release(table);
	assert_int_equal(parse(4, a2, &rest, &cause), 0);
	assert_int_equal(rest, 3);
}

static void check_duration(const char *text, double want)
{
	double got = -1;
	char *cause = NULL;

	if (bt_duration_parse(text, &got, &cause) != 0)
		fail_msg("'%s' rejected: %s", text, cause);
	if (fabs(got - want) > 1e-9 * (want > 1 ? want : 1))
		fail_msg("'%s' gave %g, want %g", text, got, want);
}

static void test_durations(void **state)
{
	const char *bad[] = { "", "abc", "-1secs", "5x", "secs", "1.5.5s", "1 s", ".s", "1e3s" };
	char *cause = NULL;
	double d;
	size_t i;

	check_duration("1ns", 1e-9);
	check_duration("3us", 3e-6);
	check_duration("250ms", 0.25);
	check_duration("15secs", 15);
	check_duration("2mins", 120);
	check_duration("2hrs", 7200);
	check_duration("1days", 86400);
	check_duration("1weeks", 604800);
	check_duration("10s", 10);
	check_duration("3m", 180);
	check_duration("1h", 3600);
	check_duration("42", 42);
	check_duration("1.5secs", 1.5);
	check_duration("0.5", 0.5);
	check_duration("0", 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (bt_duration_parse(bad[i], &d, &cause) == 0)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}
	assert_int_equal(bt_duration_parse("-5s", &d, &cause), -1);
	assert_non_null(strstr(cause, "negative"));
	free(cause);
}

static void test_json(void **state)
{
	char *argv[] = { "prog", "--timeout=90secs", "--verbose", NULL };
	char *cause = NULL;
	json_t *j;

	assert_int_equal(parse(3, argv, NULL, &cause), 0);
	j = bt_flags_json(table);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "butte");
	assert_string_equal(json_string_value(json_object_get(j, "port")), "5050");
	assert_string_equal(json_string_value(json_object_get(j, "verbose")), "true");
	assert_string_equal(json_string_value(json_object_get(j, "timeout")), "90secs");
	assert_true(json_is_null(json_object_get(j, "nodef")));
	json_decref(j);
	s_timeout = 0.25;
	j = bt_flags_json(table);
	assert_string_equal(json_string_value(json_object_get(j, "timeout")), "250ms");
	json_decref(j);
	s_timeout = 7200;
	j = bt_flags_json(table);
	assert_string_equal(json_string_value(json_object_get(j, "timeout")), "2hrs");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_booleans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
