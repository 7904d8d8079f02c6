/*
 * test_resources.c -- unit tests for common/resources.c: the --resources
 * text form and its errors, merging, arithmetic, the JSON and flat JSON
 * forms and the protobuf round trip (run under ASan for leaks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "resources.h"

static struct bt_resources parsed(const char *text)
{
	struct bt_resources r;
	char *cause = NULL;

	if (bt_resources_parse(&r, text, NULL, &cause) != 0)
		fail_msg("parse '%s' failed: %s", text, cause);
	return r;
}

static void assert_format(const struct bt_resources *r, const char *want)
{
	char *got = bt_resources_format(r);

	assert_string_equal(got, want);
	free(got);
}

static void assert_json(json_t *j, const char *want)
{
	char *got = json_dumps(j, JSON_COMPACT);

	assert_string_equal(got, want);
	free(got);
	json_decref(j);
}

/* same entries in the same order */
static bool resources_equal(const struct bt_resources *a, const struct bt_resources *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) != 0 ||
		    strcmp(a->v[i].role, b->v[i].role) != 0 ||
		    !bt_value_equal(&a->v[i].value, &b->v[i].value))
			return false;
	return true;
}

static void assert_parse_error(const char *text, const char *want)
{
	struct bt_resources r;
	char *cause = NULL;

	assert_int_equal(bt_resources_parse(&r, text, NULL, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	assert_int_equal(r.n, 0);
	bt_resources_release(&r);
	free(cause);
}

static void test_ports_string(void **state)
{
	struct bt_resources r = parsed("ports(*):[7000-8000, 31000-32000]");
	const struct bt_resource *p;

	assert_int_equal(r.n, 1);
	p = &r.v[0];
	assert_string_equal(p->name, "ports");
	assert_string_equal(p->role, "*");
	assert_int_equal(p->value.type, BT_RANGES);
	assert_int_equal(p->value.nranges, 2);
	assert_int_equal(p->value.ranges[0].begin, 7000);
	assert_int_equal(p->value.ranges[0].end, 8000);
	assert_int_equal(p->value.ranges[1].begin, 31000);
	assert_int_equal(p->value.ranges[1].end, 32000);
	assert_format(&r, "ports(*):[7000-8000, 31000-32000]");
	bt_resources_release(&r);
}

static void test_full_string(void **state)
{
	struct bt_resources r = parsed("cpus:4;mem:8192;disk:1000;ports(*):[7000-8000, 31000-32000]");
	struct bt_resources again;
	char *text;

	assert_int_equal(r.n, 4);
	assert_int_equal(bt_resources_scalar(&r, "cpus"), 4000);
	assert_int_equal(bt_resources_scalar(&r, "mem"), 8192000);
	assert_int_equal(bt_resources_scalar(&r, "disk"), 1000000);
	assert_int_equal(bt_resources_scalar(&r, "gpus"), 0);
	assert_non_null(bt_resources_find(&r, "ports", "*"));
	assert_non_null(bt_resources_find(&r, "ports", NULL));
	assert_null(bt_resources_find(&r, "ports", "web"));
	text = bt_resources_format(&r);
	assert_string_equal(text,
	    "cpus(*):4; mem(*):8192; disk(*):1000; ports(*):[7000-8000, 31000-32000]");
	again = parsed(text);
	assert_true(resources_equal(&r, &again));
	free(text);
	bt_resources_release(&again);
	bt_resources_release(&r);
}

static void test_roles_and_whitespace(void **state)
{
	struct bt_resources r;
	char *cause = NULL;

	assert_int_equal(bt_resources_parse(&r, " cpus : 2 ; mem(web) : 64 ;; disks( ops ):{b, a} ;",
	    "analytics", &cause), 0);
	assert_format(&r, "cpus(analytics):2; mem(web):64; disks(ops):{a,b}");
	bt_resources_release(&r);
	r = parsed("");
	assert_int_equal(r.n, 0);
	assert_true(bt_resources_empty(&r));
	bt_resources_release(&r);
}

static void test_merge(void **state)
{
	struct bt_resources r = parsed("cpus:1;cpus:2.5;ports:[1-3];ports:[4-5];cpus(web):1;cpus:0");

	assert_format(&r, "cpus(*):3.5; ports(*):[1-5]; cpus(web):1");
	assert_int_equal(bt_resources_scalar(&r, "cpus"), 4500);
	bt_resources_release(&r);
}

static void test_parse_errors(void **state)
{
	assert_parse_error("cpus:x", "unable to parse resources 'cpus:x': 'x' is not a number");
	assert_parse_error("ports:[5-1]",
	    "unable to parse resources 'ports:[5-1]': range begin 5 is after end 1");
	assert_parse_error("mem", "unable to parse resources 'mem': missing ':'");
	assert_parse_error("cpus:4;mem", "unable to parse resources 'mem': missing ':'");
	assert_parse_error("cpus:-1", "unable to parse resources 'cpus:-1': scalar must not be negative");
	assert_parse_error(":4", "unable to parse resources ':4': empty resource name");
	assert_parse_error("(web):4", "unable to parse resources '(web):4': empty resource name");
	assert_parse_error("cpus:1; [x:2", "unable to parse resources '[x:2': resource name '[x' "
	    "must not start with '['");
	assert_parse_error("cpus():4", "unable to parse resources 'cpus():4': empty role in 'cpus()'");
	assert_parse_error("cpus(web:4",
	    "unable to parse resources 'cpus(web:4': role of 'cpus(web' is not closed by ')'");
	assert_parse_error("cpus:NaN", "unable to parse resources 'cpus:NaN': 'NaN' is not a number");
	assert_parse_error("cpus:1e400",
	    "unable to parse resources 'cpus:1e400': '1e400' is not a finite number");
	assert_parse_error("cpus:", "unable to parse resources 'cpus:': missing value");
	assert_parse_error("ports:[1-x]",
	    "unable to parse resources 'ports:[1-x]': range bound 'x' is not a number");
	assert_parse_error("ports:[1-2",
	    "unable to parse resources 'ports:[1-2': '[1-2' is not closed by ']'");
	assert_parse_error("ports:1-2",
	    "unable to parse resources 'ports:1-2': '1-2' is not a number");
	assert_parse_error("disks:{a,,b}",
	    "unable to parse resources 'disks:{a,,b}': '{a,,b}' has an empty item");
	assert_parse_error("rack:abc", "unable to parse resources 'rack:abc': 'abc' is not a number");
	assert_parse_error("cpus:1;cpus:[1-2]",
	    "unable to parse resources 'cpus:[1-2]': 'cpus' of role '*' is given as both a "
	    "scalar and ranges");
	assert_parse_error("[{\"name\":\"cpus\",\"type\":\"SCALAR\"}]",
	    "unable to parse resources JSON: invalid resource 'cpus': type SCALAR but no "
	    "numeric 'scalar.value'");
	assert_parse_error("[{\"type\":\"SCALAR\",\"scalar\":{\"value\":1}}]",
	    "unable to parse resources JSON: invalid resource at index 0: 'name' is missing or empty");
	assert_parse_error("[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":-1}}]",
	    "unable to parse resources JSON: invalid resource 'cpus': scalar must not be negative");
	assert_parse_error("[{\"name\":\"ports\",\"type\":\"RANGES\",\"ranges\":{\"range\":"
	    "[{\"begin\":9,\"end\":2}]}}]",
	    "unable to parse resources JSON: invalid resource 'ports': range begin 9 is after end 2");
}

static void test_arithmetic(void **state)
{
	struct bt_resources total = parsed("cpus:4;mem:1024;ports:[31000-31010]");
	struct bt_resources task = parsed("cpus:0.5;mem:128;ports:[31005-31005]");
	struct bt_resources big = parsed("cpus:5");
	struct bt_resources other_role = parsed("cpus(web):1");
	struct bt_resources copy;

	assert_true(bt_resources_contains(&total, &task));
	assert_false(bt_resources_contains(&task, &total));
	assert_false(bt_resources_contains(&total, &big));
	assert_false(bt_resources_contains(&total, &other_role));
	assert_int_equal(bt_resources_subtract(&total, &big), -1);
	assert_format(&total, "cpus(*):4; mem(*):1024; ports(*):[31000-31010]");

	bt_resources_copy(&copy, &total);
	assert_int_equal(bt_resources_subtract(&copy, &task), 0);
	assert_format(&copy, "cpus(*):3.5; mem(*):896; ports(*):[31000-31004, 31006-31010]");
	assert_false(bt_resources_contains(&copy, &task));
	bt_resources_add(&copy, &task);
	assert_true(resources_equal(&copy, &total));

	/* subtracting everything drops every entry */
	assert_int_equal(bt_resources_subtract(&copy, &total), 0);
	assert_int_equal(copy.n, 0);
	assert_true(bt_resources_empty(&copy));
	bt_resources_release(&copy);

	bt_resources_release(&total);
	bt_resources_release(&task);
	bt_resources_release(&big);
	bt_resources_release(&other_role);
}

static void test_subtract_drops_empty(void **state)
{
	struct bt_resources r = parsed("cpus:1;mem:64;ports:[1-2]"), s = parsed("cpus:1;ports:[1-2]");

	assert_int_equal(bt_resources_subtract(&r, &s), 0);
	assert_format(&r, "mem(*):64");
	assert_null(bt_resources_find(&r, "cpus", NULL));
	bt_resources_release(&r);
	bt_resources_release(&s);
}

static void test_json_round_trip(void **state)
{
	struct bt_resources r = parsed("cpus:0.5;mem:8192;ports:[7000-8000, 31000-32000];"
	    "disks(ops):{a,b}"), again;
	json_t *j = bt_resources_to_json(&r);
	char *text = json_dumps(j, JSON_COMPACT), *cause = NULL;

	assert_string_equal(text,
	    "[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":0.5},\"role\":\"*\"},"
	    "{\"name\":\"mem\",\"type\":\"SCALAR\",\"scalar\":{\"value\":8192},\"role\":\"*\"},"
	    "{\"name\":\"ports\",\"type\":\"RANGES\",\"ranges\":{\"range\":[{\"begin\":7000,"
	    "\"end\":8000},{\"begin\":31000,\"end\":32000}]},\"role\":\"*\"},"
	    "{\"name\":\"disks\",\"type\":\"SET\",\"set\":{\"item\":[\"a\",\"b\"]},"
	    "\"role\":\"ops\"}]");
	assert_int_equal(bt_resources_parse(&again, text, NULL, &cause), 0);
	assert_true(resources_equal(&r, &again));
	bt_resources_release(&again);
	assert_int_equal(bt_resources_from_json(&again, j, &cause), 0);
	assert_true(resources_equal(&r, &again));
	bt_resources_release(&again);
	free(text);
	json_decref(j);
	bt_resources_release(&r);

	/* role defaults to the default role, then "*" */
	assert_int_equal(bt_resources_parse(&r,
	    "[{\"name\":\"cpus\",\"type\":\"SCALAR\",\"scalar\":{\"value\":2}}]", "web", &cause), 0);
	assert_format(&r, "cpus(web):2");
	bt_resources_release(&r);
}

static void test_flat_json(void **state)
{
	struct bt_resources r = parsed("cpus:4;mem:8192;disk:1000;ports:[31000-32000]");

	assert_json(bt_resources_flat_json(&r),
	    "{\"cpus\":4,\"gpus\":0,\"mem\":8192,\"disk\":1000,\"ports\":\"[31000-32000]\"}");
	bt_resources_release(&r);

	r = parsed("cpus:0.5;cpus(web):1;ports:[40000-40010];ports(web):[31000-32000];"
	    "disks:{b};disks(web):{a}");
	assert_json(bt_resources_flat_json(&r),
	    "{\"cpus\":1.5,\"gpus\":0,\"mem\":0,\"disk\":0,"
	    "\"ports\":\"[31000-32000, 40000-40010]\",\"disks\":\"{a,b}\"}");
	bt_resources_release(&r);

	r = parsed("");
	assert_json(bt_resources_flat_json(&r), "{\"cpus\":0,\"gpus\":0,\"mem\":0,\"disk\":0}");
	bt_resources_release(&r);
}

static void test_pb_round_trip(void **state)
{
	struct bt_resources r = parsed("cpus:1.5;mem:256;ports:[31000-31002, 31010-31010];"
	    "disks(ops):{a,b}"), again;
	Mesos__V1__Resource **pb;
	char *cause = NULL;
	size_t n, i;

	pb = bt_resources_to_pb(&r, "web", &n);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		assert_non_null(pb[i]->allocation_info);
		assert_string_equal(pb[i]->allocation_info->role, "web");
	}
	assert_int_equal(pb[0]->type, MESOS__V1__VALUE__TYPE__SCALAR);
	assert_true(pb[0]->scalar->value == 1.5);
	assert_int_equal(pb[2]->ranges->n_range, 2);
	assert_int_equal(bt_resources_from_pb(&again, pb, n, &cause), 0);
	assert_true(resources_equal(&r, &again));
	bt_resources_release(&again);
	bt_resources_pb_free(pb, n);

	/* each message may also be freed on its own */
	pb = bt_resources_to_pb(&r, NULL, &n);
	assert_null(pb[0]->allocation_info);
	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&pb[i]->base, NULL);
	free(pb);

	/* and survive a pack/unpack */
	pb = bt_resources_to_pb(&r, NULL, &n);
	for (i = 0; i < n; i++) {
		uint8_t buf[256];
		size_t len = mesos__v1__resource__pack(pb[i], buf);
		Mesos__V1__Resource *u = mesos__v1__resource__unpack(NULL, len, buf);
		struct bt_resources one;
		assert_non_null(u);
		assert_int_equal(bt_resources_from_pb(&one, &u, 1, &cause), 0);
		assert_string_equal(one.v[0].role, r.v[i].role);
		assert_true(bt_value_equal(&one.v[0].value, &r.v[i].value));
		bt_resources_release(&one);
		mesos__v1__resource__free_unpacked(u, NULL);
	}
	bt_resources_pb_free(pb, n);
	bt_resources_release(&r);
}

static void test_pb_errors(void **state)
{
	Mesos__V1__Resource m = MESOS__V1__RESOURCE__INIT, *mp = &m;
	Mesos__V1__Value__Scalar s = MESOS__V1__VALUE__SCALAR__INIT;
	struct bt_resources r;
	char *cause = NULL;

	m.name = "cpus";
	m.type = MESOS__V1__VALUE__TYPE__SCALAR;
	assert_int_equal(bt_resources_from_pb(&r, &mp, 1, &cause), -1);
	assert_string_equal(cause, "invalid resource 'cpus': type SCALAR but no 'scalar' field");
	free(cause);

	m.scalar = &s;
	s.value = -2;
	assert_int_equal(bt_resources_from_pb(&r, &mp, 1, &cause), -1);
	assert_string_equal(cause, "invalid resource 'cpus': scalar must not be negative");
	free(cause);

	m.type = MESOS__V1__VALUE__TYPE__RANGES;
	assert_int_equal(bt_resources_from_pb(&r, &mp, 1, &cause), -1);
	assert_string_equal(cause, "invalid resource 'cpus': type RANGES but no 'ranges' field");
	free(cause);

	m.name = "";
	assert_int_equal(bt_resources_from_pb(&r, &mp, 1, &cause), -1);
	assert_string_equal(cause, "invalid resource at index 0: 'name' is missing");
	free(cause);

	/* unset role is "*" */
	m.name = "cpus";
	m.type = MESOS__V1__VALUE__TYPE__SCALAR;
	s.value = 2;
	assert_int_equal(bt_resources_from_pb(&r, &mp, 1, &cause), 0);
	assert_format(&r, "cpus(*):2");
	bt_resources_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports_string),
		cmocka_unit_test(test_full_string),
		cmocka_unit_test(test_roles_and_whitespace),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_arithmetic),
		cmocka_unit_test(test_subtract_drops_empty),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_flat_json),
		cmocka_unit_test(test_pb_round_trip),
		cmocka_unit_test(test_pb_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
