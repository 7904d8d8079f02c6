/*
 * test_json.c -- unit tests for common/json.c: parsing with its causes,
 * the number helper, and objects written straight into text
 * (bt_json_out), which must read back as the values written: strings with
 * every character JSON escapes, doubles bit for bit, NULL strings left out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "xmalloc.h"

static json_t *parsed(const char *text)
{
	char *cause = NULL;
	json_t *j = bt_json_parse(text, strlen(text), &cause);

	if (j == NULL)
		fail_msg("'%s' does not parse: %s", text, cause);
	return j;
}

static void test_parse_cause(void **state)
{
	char *cause = NULL;

	assert_null(bt_json_parse("{\"a\":1,\"a\":2}", 13, &cause));
	assert_non_null(strstr(cause, "duplicate"));
	free(cause);
	cause = NULL;
	assert_null(bt_json_parse("x", 1, &cause));
	assert_non_null(strstr(cause, "line 1"));
	free(cause);
}

static void test_out_members(void **state)
{
	struct bt_json_out o;
	size_t len;
	char *text;
	json_t *j;

	bt_json_out_begin(&o);
	bt_json_out_string(&o, "id", "app.1");
	bt_json_out_string(&o, "host", NULL);  /* left out */
	bt_json_out_int(&o, "state", 1);
	bt_json_out_int(&o, "big", -9007199254740993LL);
	bt_json_out_array(&o, "ports");
	bt_json_out_int(&o, NULL, 31000);
	bt_json_out_int(&o, NULL, 31001);
	bt_json_out_array_end(&o);
	bt_json_out_array(&o, "none");
	bt_json_out_array_end(&o);
	bt_json_out_string(&o, "last", "");
	text = bt_json_out_end(&o, &len);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text, "{\"id\":\"app.1\",\"state\":1,\"big\":-9007199254740993,"
	    "\"ports\":[31000,31001],\"none\":[],\"last\":\"\"}");
	j = parsed(text);
	assert_null(json_object_get(j, "host"));
	json_decref(j);
	free(text);

	bt_json_out_begin(&o);
	text = bt_json_out_end(&o, NULL);
	assert_string_equal(text, "{}");
	free(text);
}

static void test_out_escapes(void **state)
{
	static const char nasty[] = "q\"b\\s/ nl\n tab\t cr\r \x01\x1f del\x7f \xc3\xa9t\xc3\xa9";
	struct bt_json_out o;
	char *text;
	json_t *j;

	bt_json_out_begin(&o);
	bt_json_out_string(&o, "k\"ey", nasty);
	text = bt_json_out_end(&o, NULL);
	assert_non_null(strstr(text, "\\u0001"));
	assert_null(strchr(text, '\n'));
	j = parsed(text);
	assert_string_equal(json_string_value(json_object_get(j, "k\"ey")), nasty);
	json_decref(j);
	free(text);

	/* escapes up to the very end of an allocation: the closing quote still fits */
	for (size_t plain = 0; plain < 4; plain++) {
		for (size_t n = 1; n < 300; n++) {
			char *s = xmalloc(plain + n + 1);

			memset(s, 'a', plain);
			memset(s + plain, '\x01', n);
			s[plain + n] = '\0';
			bt_json_out_begin(&o);
			bt_json_out_string(&o, NULL, s);
			text = bt_json_out_end(&o, NULL);
			assert_int_equal(strlen(text), 1 + 2 + plain + 6 * n + 1);
			free(text);
			free(s);
		}
	}
}

static void test_out_reals_exact(void **state)
{
	static const double values[] = {
		1765100000.123456, 1765100000.0, 0.1, 1.0 / 3.0, -2.5e-300, 1e300, 0.0, -0.0,
		5e-324, 123456789012345678.0, 1e-6, -1765100000.5, 1765100000.000001,
		1765100000.1234567, 8999999999.999999, 9e9 + 0.25,
	};
	struct bt_json_out o;
	char key[16], *text;
	size_t i;
	json_t *j, *v;

	bt_json_out_begin(&o);
	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		snprintf(key, sizeof key, "v%zu", i);
		bt_json_out_real(&o, key, values[i]);
	}
	bt_json_out_real(&o, "nan", NAN);
	bt_json_out_real(&o, "micro", 1765100000.12);
	bt_json_out_real(&o, "inf", INFINITY);
	text = bt_json_out_end(&o, NULL);
	j = parsed(text);
	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		snprintf(key, sizeof key, "v%zu", i);
		v = json_object_get(j, key);
		/* a real, never an integer, so json_real_value() reads it too */
		assert_true(json_is_real(v));
		assert_memory_equal(&values[i], &(double){ json_real_value(v) }, sizeof(double));
	}
	assert_non_null(strstr(text, "\"micro\":1765100000.12,"));
	assert_true(json_real_value(json_object_get(j, "nan")) == 0.0);
	assert_true(json_real_value(json_object_get(j, "inf")) == 0.0);
	assert_true(bt_json_number(j, "v0", -1) == values[0]);
	assert_true(bt_json_number(j, "missing", -1) == -1);
	json_decref(j);
	free(text);
}

/* a record longer than the first allocation grows without losing anything */
static void test_out_grows(void **state)
{
	struct bt_json_out o;
	char key[16], *text;
	size_t len;
	int i;
	json_t *j;

	bt_json_out_begin(&o);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof key, "k%d", i);
		bt_json_out_int(&o, key, i);
	}
	text = bt_json_out_end(&o, &len);
	assert_true(len > 4000);
	j = parsed(text);
	assert_int_equal(json_object_size(j), 500);
	assert_int_equal(json_integer_value(json_object_get(j, "k499")), 499);
	json_decref(j);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cause),
		cmocka_unit_test(test_out_members),
		cmocka_unit_test(test_out_escapes),
		cmocka_unit_test(test_out_reals_exact),
		cmocka_unit_test(test_out_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
