/*
 * test_relay_apps.c -- relay's app definitions: validation messages,
 * defaults, legacy forms, partial updates and service port assignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../framework/relay/apps.c"
#include "../../framework/relay/appset.c"
#include "../../framework/relay/container.c"
#include "../../framework/relay/taskinfo.c"

/* health.c is not linked in: TaskInfos built here carry no health check */
json_t *relay_health_task_check(const struct relay_app *app, const uint64_t *ports, size_t n)
{
	return NULL;
}

static struct relay *new_relay(void)
{
	struct relay *r = calloc(1, sizeof *r);

	TAILQ_INIT(&r->apps);
	TAILQ_INIT(&r->tasks);
	TAILQ_INIT(&r->deployments);
	r->cfg.local_port_min = 10000;
	r->cfg.local_port_max = 10002;
	return r;
}

static void free_relay(struct relay *r)
{
	struct relay_app *app;

	while ((app = TAILQ_FIRST(&r->apps)) != NULL)
		relay_app_remove(r, app);
	bt_map_release(&r->app_index);
	free(r);
}

static json_t *normalize(struct relay *r, const char *text, const json_t *base, const char *id,
    int *status, json_t **err)
{
	json_t *body = json_loads(text, 0, NULL), *out;

	assert_non_null(body);
	out = relay_app_normalize(r, body, base, id, status, err);
	json_decref(body);
	return out;
}

static void test_defaults(void **state)
{
	struct relay *r = new_relay();
	json_t *err, *app = normalize(r, "{\"id\":\"web\",\"cmd\":\"sleep 1\"}", NULL, NULL,
	    &(int){0}, &err);

	assert_non_null(app);
	assert_string_equal(bt_json_string(app, "id"), "/web");
	assert_true(bt_json_number(app, "cpus", 0) == 1);
	assert_true(bt_json_number(app, "mem", 0) == 128);
	assert_true(bt_json_number(app, "instances", 0) == 1);
	assert_true(bt_json_number(app, "backoffFactor", 0) == 1.15);
	assert_true(bt_json_number(app, "maxLaunchDelaySeconds", 0) == 300);
	assert_string_equal(bt_json_string(app, "killSelection"), "YOUNGEST_FIRST");
	assert_int_equal(json_array_size(json_object_get(app, "portDefinitions")), 1);
	assert_string_equal(bt_json_string(json_array_get(json_object_get(app, "portDefinitions"), 0),
	    "name"), "default");
	assert_null(json_object_get(app, "ports"));
	json_decref(app);
	free_relay(r);
}

static void test_no_command(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	json_t *err, *app = normalize(r, "{\"id\":\"web\"}", NULL, NULL, &status, &err);
	json_t *detail;

	assert_null(app);
	assert_int_equal(status, 422);
	assert_string_equal(bt_json_string(err, "message"), "Object is not valid");
	detail = json_array_get(json_object_get(err, "details"), 0);
	assert_string_equal(bt_json_string(detail, "path"), "/");
	assert_string_equal(json_string_value(json_array_get(json_object_get(detail, "errors"), 0)),
	    CMD_ARGS_MSG);
	json_decref(err);
	free_relay(r);
}

static void test_type_error_and_ids(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	json_t *err, *app;

	app = normalize(r, "{\"id\":\"web\",\"cmd\":\"x\",\"mem\":\"big\"}", NULL, NULL, &status,
	    &err);
	assert_null(app);
	assert_int_equal(status, 400);
	assert_string_equal(bt_json_string(err, "message"), "Invalid JSON");
	json_decref(err);

	app = normalize(r, "{\"id\":\"/a/-bad\",\"cmd\":\"x\"}", NULL, NULL, &status, &err);
	assert_null(app);
	assert_int_equal(status, 422);
	json_decref(err);

	/* a null id is missing, never the root "/" */
	app = normalize(r, "{\"id\":null,\"cmd\":\"x\"}", NULL, NULL, &status, &err);
	assert_null(app);
	assert_int_equal(status, 422);
	assert_string_equal(bt_json_string(json_array_get(json_object_get(err, "details"), 0), "path"),
	    "/id");
	json_decref(err);

	app = normalize(r, "{\"id\":\"/a.b/c-d/e\",\"cmd\":\"x\"}", NULL, NULL, &status, &err);
	assert_non_null(app);
	json_decref(app);
	free_relay(r);
}

static void test_legacy_ports_and_uris(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	json_t *err, *app, *pds;

	app = normalize(r, "{\"id\":\"x\",\"args\":[\"a\",\"b\"],\"ports\":[0,8080],"
	    "\"uris\":[\"http://h/f.zip\",\"http://h/g\"]}", NULL, NULL, &status, &err);
	assert_non_null(app);
	pds = json_object_get(app, "portDefinitions");
	assert_int_equal(json_array_size(pds), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(pds, 1), "port")), 8080);
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(app, "fetch"), 0),
	    "extract")));
	assert_true(json_is_false(json_object_get(json_array_get(json_object_get(app, "fetch"), 1),
	    "extract")));
	json_decref(app);

	app = normalize(r, "{\"id\":\"x\",\"cmd\":\"a\",\"args\":[\"a\"]}", NULL, NULL, &status, &err);
	assert_null(app);
	assert_int_equal(status, 422);
	json_decref(err);
	free_relay(r);
}

static void test_partial_update_and_scale(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	json_t *err, *base, *app;

	base = normalize(r, "{\"id\":\"x\",\"cmd\":\"a\",\"instances\":2}", NULL, NULL, &status, &err);
	assert_non_null(base);
	app = normalize(r, "{\"instances\":5}", base, "/x", &status, &err);
	assert_non_null(app);
	assert_int_equal(json_integer_value(json_object_get(app, "instances")), 5);
	assert_string_equal(bt_json_string(app, "cmd"), "a");
	assert_false(relay_app_config_changed(base, app));
	json_decref(app);
	app = normalize(r, "{\"args\":[\"b\"]}", base, "/x", &status, &err);
	assert_non_null(app);
	assert_null(json_object_get(app, "cmd"));
	assert_true(relay_app_config_changed(base, app));
	json_decref(app);
	json_decref(base);
	free_relay(r);
}

static void test_service_ports(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	char *cause = NULL;
	json_t *err, *a, *b, *c;

	a = normalize(r, "{\"id\":\"a\",\"cmd\":\"x\",\"ports\":[0,0]}", NULL, NULL, &status, &err);
	assert_int_equal(relay_app_assign_ports(r, a, NULL, &cause), 0);
	relay_app_set(r, a);
	b = normalize(r, "{\"id\":\"b\",\"cmd\":\"x\"}", NULL, NULL, &status, &err);
	assert_int_equal(relay_app_assign_ports(r, b, NULL, &cause), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
	    json_object_get(b, "portDefinitions"), 0), "port")), 10002);
	relay_app_set(r, b);
	c = normalize(r, "{\"id\":\"c\",\"cmd\":\"x\"}", NULL, NULL, &status, &err);
	assert_int_equal(relay_app_assign_ports(r, c, NULL, &cause), -1);
	assert_string_equal(cause, "All ports in the range [10000-10002) are already in use");
	free(cause);
	json_decref(c);
	free_relay(r);
}

/* the first error path of a failed normalisation, and its status */
static char *first_error(struct relay *r, const char *text, int *status)
{
	json_t *err = NULL, *app = normalize(r, text, NULL, NULL, status, &err);
	char *path;

	assert_null(app);
	assert_non_null(err);
	path = xstrdup(bt_json_string(json_array_get(json_object_get(err, "details"), 0), "path"));
	json_decref(err);
	return path;
}

static void test_integers_in_range(void **state)
{
	struct relay *r = new_relay();
	int status = 0;
	char *path;
	json_t *err, *app;

	/* integers beyond 32 bits are not integers to Marathon: no overflowing casts */
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"instances\":1e20}", &status);
	assert_int_equal(status, 400);
	assert_string_equal(path, "/instances");
	free(path);
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"gpus\":1e300}", &status);
	assert_int_equal(status, 400);
	assert_string_equal(path, "/gpus");
	free(path);
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"portDefinitions\":[{\"port\":1e30}]}",
	    &status);
	assert_int_equal(status, 400);
	assert_string_equal(path, "/portDefinitions(0)/port");
	free(path);
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"unreachableStrategy\":"
	    "{\"inactiveAfterSeconds\":\"soon\"}}", &status);
	assert_int_equal(status, 400);
	assert_string_equal(path, "/unreachableStrategy/inactiveAfterSeconds");
	free(path);
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"unreachableStrategy\":"
	    "{\"inactiveAfterSeconds\":1e300,\"expungeAfterSeconds\":1e301}}", &status);
	assert_int_equal(status, 400);
	free(path);
	path = first_error(r, "{\"id\":\"x\",\"cmd\":\"a\",\"taskKillGracePeriodSeconds\":-1}",
	    &status);
	assert_int_equal(status, 422);
	assert_string_equal(path, "/taskKillGracePeriodSeconds");
	free(path);

	app = normalize(r, "{\"id\":\"x\",\"cmd\":\"a\",\"instances\":2147483647,\"gpus\":1.0,"
	    "\"unreachableStrategy\":{\"inactiveAfterSeconds\":60,\"expungeAfterSeconds\":600}}",
	    NULL, NULL, &status, &err);
	assert_non_null(app);
	assert_int_equal(json_integer_value(json_object_get(app, "instances")), 2147483647);
	assert_int_equal(json_integer_value(json_object_get(app, "gpus")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(app,
	    "unreachableStrategy"), "expungeAfterSeconds")), 600);
	json_decref(app);
	free_relay(r);
}

static void test_helpers(void **state)
{
	char *s = relay_app_id_absolute("a//b/");
	assert_string_equal(s, "/a/b");
	free(s);
	s = relay_app_safe_id("/grp/app");
	assert_string_equal(s, "grp_app");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_no_command),
		cmocka_unit_test(test_type_error_and_ids),
		cmocka_unit_test(test_legacy_ports_and_uris),
		cmocka_unit_test(test_partial_update_and_scale),
		cmocka_unit_test(test_service_ports),
		cmocka_unit_test(test_integers_in_range),
		cmocka_unit_test(test_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
