/*
 * test_attributes.c -- unit tests for common/attributes.c: parsing the
 * --attributes text form (text, scalar, ranges, set), errors, the value
 * strings constraints compare against, flat JSON and protobuf.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "attributes.h"

static struct bt_attributes parsed(const char *text)
{
	struct bt_attributes a;
	char *cause = NULL;

	if (bt_attributes_parse(&a, text, &cause) != 0)
		fail_msg("parse '%s' failed: %s", text, cause);
	return a;
}

static void assert_value_string(const struct bt_attributes *a, const char *name,
    const char *want)
{
	const struct bt_attribute *attr = bt_attributes_find(a, name);
	char *got;

	assert_non_null(attr);
	got = bt_attribute_value_string(attr);
	assert_string_equal(got, want);
	free(got);
}

static void assert_parse_error(const char *text, const char *want)
{
	struct bt_attributes a;
	char *cause = NULL;

	assert_int_equal(bt_attributes_parse(&a, text, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	assert_int_equal(a.n, 0);
	bt_attributes_release(&a);
	free(cause);
}

static bool attributes_equal(const struct bt_attributes *a, const struct bt_attributes *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) != 0 ||
		    !bt_value_equal(&a->v[i].value, &b->v[i].value))
			return false;
	return true;
}

static void test_parse(void **state)
{
	struct bt_attributes a = parsed("rack:abc;zone:west;level:10;keys:[1000-1500];"
	    " weight : 0.50 ; disks:{b,a}");

	assert_int_equal(a.n, 6);
	assert_int_equal(bt_attributes_find(&a, "rack")->value.type, BT_TEXT);
	assert_int_equal(bt_attributes_find(&a, "level")->value.type, BT_SCALAR);
	assert_int_equal(bt_attributes_find(&a, "keys")->value.type, BT_RANGES);
	assert_int_equal(bt_attributes_find(&a, "disks")->value.type, BT_SET);
	assert_null(bt_attributes_find(&a, "missing"));
	assert_value_string(&a, "rack", "abc");
	assert_value_string(&a, "zone", "west");
	assert_value_string(&a, "level", "10");
	assert_value_string(&a, "weight", "0.5");
	assert_value_string(&a, "keys", "[1000-1500]");
	assert_value_string(&a, "disks", "{a,b}");
	bt_attributes_release(&a);
}

static void test_format_round_trip(void **state)
{
	struct bt_attributes a = parsed("rack:abc;level:10;keys:[1000-1500];weight:-1.5;os:linux 5.10"),
	    b, c;
	char *text = bt_attributes_format(&a);

	assert_string_equal(text, "rack:abc;level:10;keys:[1000-1500];weight:-1.5;os:linux 5.10");
	b = parsed(text);
	assert_true(attributes_equal(&a, &b));
	bt_attributes_copy(&c, &a);
	assert_true(attributes_equal(&a, &c));
	free(text);
	bt_attributes_release(&a);
	bt_attributes_release(&b);
	bt_attributes_release(&c);
}

static void test_errors(void **state)
{
	assert_parse_error("rack", "unable to parse attributes 'rack': missing ':'");
	assert_parse_error("rack:a;zone", "unable to parse attributes 'zone': missing ':'");
	assert_parse_error(":a", "unable to parse attributes ':a': empty attribute name");
	assert_parse_error("rack:", "unable to parse attributes 'rack:': missing value");
	assert_parse_error("keys:[9-1]",
	    "unable to parse attributes 'keys:[9-1]': range begin 9 is after end 1");
	assert_parse_error("keys:[1-2",
	    "unable to parse attributes 'keys:[1-2': '[1-2' is not closed by ']'");
	assert_parse_error("rack:a;rack:b",
	    "unable to parse attributes 'rack:b': attribute 'rack' is given twice");
}

static void test_set_text(void **state)
{
	struct bt_attributes a = parsed("rack:abc");

	bt_attributes_set_text(&a, "arch", "x86_64");
	bt_attributes_set_text(&a, "rack", "def");
	assert_int_equal(a.n, 2);
	assert_value_string(&a, "arch", "x86_64");
	assert_value_string(&a, "rack", "def");
	bt_attributes_release(&a);
}

static void test_flat_json(void **state)
{
	struct bt_attributes a = parsed("rack:abc;level:10;keys:[1000-1500];weight:0.5;s:{x}");
	json_t *j = bt_attributes_flat_json(&a);
	char *text = json_dumps(j, JSON_COMPACT);

	assert_string_equal(text, "{\"rack\":\"abc\",\"level\":10,\"keys\":\"[1000-1500]\","
	    "\"weight\":0.5,\"s\":\"{x}\"}");
	free(text);
	json_decref(j);
	bt_attributes_release(&a);
}

static void test_pb_round_trip(void **state)
{
	struct bt_attributes a = parsed("rack:abc;level:10;keys:[1000-1500, 2000-2001];s:{x,y}"), b;
	Mesos__V1__Attribute **pb;
	char *cause = NULL;
	size_t n;

	pb = bt_attributes_to_pb(&a, &n);
	assert_int_equal(n, 4);
	assert_int_equal(pb[0]->type, MESOS__V1__VALUE__TYPE__TEXT);
	assert_string_equal(pb[0]->text->value, "abc");
	assert_true(pb[1]->scalar->value == 10);
	assert_int_equal(bt_attributes_from_pb(&b, pb, n, &cause), 0);
	assert_true(attributes_equal(&a, &b));
	bt_attributes_release(&b);
	bt_attributes_pb_free(pb, n);

	pb = bt_attributes_to_pb(&a, &n);
	protobuf_c_message_free_unpacked(&pb[1]->base, NULL);
	pb[1] = pb[0];          /* the same name twice */
	assert_int_equal(bt_attributes_from_pb(&b, pb, 2, &cause), -1);
	assert_string_equal(cause, "invalid attribute 'rack': given twice");
	free(cause);
	pb[1] = NULL;
	protobuf_c_message_free_unpacked(&pb[0]->base, NULL);
	protobuf_c_message_free_unpacked(&pb[2]->base, NULL);
	protobuf_c_message_free_unpacked(&pb[3]->base, NULL);
	free(pb);
	bt_attributes_release(&a);
}

static void test_pb_missing_text(void **state)
{
	Mesos__V1__Attribute m = MESOS__V1__ATTRIBUTE__INIT, *mp = &m;
	struct bt_attributes a;
	char *cause = NULL;

	m.name = "rack";
	m.type = MESOS__V1__VALUE__TYPE__TEXT;
	assert_int_equal(bt_attributes_from_pb(&a, &mp, 1, &cause), -1);
	assert_string_equal(cause, "invalid attribute 'rack': type TEXT but no 'text' field");
	free(cause);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_set_text),
		cmocka_unit_test(test_flat_json),
		cmocka_unit_test(test_pb_round_trip),
		cmocka_unit_test(test_pb_missing_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
