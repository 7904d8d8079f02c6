/*
 * test_health.c -- relay's side of health checks: the TaskInfo's
 * HealthCheck, reading the agent's reports, and when a task is killed.
 * The keep-N loop is stubbed: a kill only marks the task.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../framework/relay/health.c"

static struct relay_app *the_app;
static int kills;

struct relay_app *relay_app_find(struct relay *r, const char *id)
{
	return the_app;
}

void relay_task_kill(struct relay *r, struct relay_task *t)
{
	t->goal = RELAY_GOAL_STOPPED;
	kills++;
}

void relay_converge(struct relay *r)
{
}

void relay_event_health_changed(struct relay *r, const struct relay_task *t, bool alive)
{
}

void relay_event_failed_health_check(struct relay *r, const struct relay_task *t,
    const json_t *check)
{
}

void relay_event_unhealthy_kill(struct relay *r, const struct relay_task *t, const char *reason)
{
}

void relay_task_recount(struct relay_task *t)
{
	(void)t;
}

bool relay_task_terminal_state(int s)
{
	return bt_task_state_terminal(s) || s == MESOS__V1__TASK_STATE__TASK_UNREACHABLE;
}

static struct relay_app *app_with(const char *checks)
{
	struct relay_app *app = calloc(1, sizeof *app);

	app->id = "/web";
	app->def = json_pack("{s:s, s:o}", "id", "/web", "healthChecks",
	    json_loads(checks, 0, NULL));
	assert_non_null(json_object_get(app->def, "healthChecks"));
	return app;
}

static void app_free(struct relay_app *app)
{
	json_decref(app->def);
	free(app);
}

static void test_parse_failure(void **state)
{
	size_t idx = 9;
	int n = 0;
	const char *why;

	why = parse_failure("health check failed 3 consecutive times: refused", &idx, &n);
	assert_string_equal(why, "refused");
	assert_int_equal(idx, 0);
	assert_int_equal(n, 3);
	why = parse_failure("health check #2 failed 12 consecutive times: status 503", &idx, &n);
	assert_string_equal(why, "status 503");
	assert_int_equal(idx, 1);
	assert_int_equal(n, 12);
	assert_null(parse_failure("Reconciliation: Latest task state", &idx, &n));
	assert_null(parse_failure("health check failed 0 consecutive times: x", &idx, &n));
	assert_null(parse_failure("health check #0 failed 1 consecutive times: x", &idx, &n));
	assert_null(parse_failure(NULL, &idx, &n));
}

static void test_task_check(void **state)
{
	struct relay_app *app = app_with("[{\"protocol\":\"HTTP\",\"portIndex\":1,\"path\":\"/h\"},"
	    "{\"protocol\":\"MESOS_TCP\",\"port\":8080,\"maxConsecutiveFailures\":0,"
	    "\"intervalSeconds\":2}]");
	uint64_t ports[] = { 31000, 31001 };
	json_t *hc = relay_health_task_check(app, ports, 2), *vars, *list;

	assert_non_null(hc);
	/* the Mesos check is the one Mesos would run */
	assert_string_equal(bt_json_string(hc, "type"), "TCP");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(hc, "tcp"), "port")),
	    8080);
	assert_int_equal(json_integer_value(json_object_get(hc, "consecutive_failures")),
	    NEVER_KILL);
	assert_true(bt_json_number(hc, "interval_seconds", 0) == 2);
	vars = json_object_get(json_object_get(json_object_get(hc, "command"), "environment"),
	    "variables");
	assert_string_equal(bt_json_string(json_array_get(vars, 0), "name"), HEALTH_ENV);
	list = json_loads(bt_json_string(json_array_get(vars, 0), "value"), 0, NULL);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "port")),
	    31001);
	assert_null(json_object_get(json_array_get(list, 0), "portIndex"));
	assert_string_equal(bt_json_string(json_array_get(list, 0), "path"), "/h");
	json_decref(list);
	json_decref(hc);
	app_free(app);
}

static Mesos__V1__TaskStatus status(bool healthy, const char *message, double ts)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;

	st.state = MESOS__V1__TASK_STATE__TASK_RUNNING;
	st.has_healthy = true;
	st.healthy = healthy;
	st.has_reason = true;
	st.reason = MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
	st.message = (char *)message;
	st.has_timestamp = true;
	st.timestamp = ts;
	return st;
}

static void report(struct relay *r, struct relay_task *t, int n, double ts)
{
	char *msg = xasprintf("health check failed %d consecutive times: status 404", n);
	Mesos__V1__TaskStatus st = status(false, msg, ts);

	relay_health_update(r, t, &st);
	free(msg);
}

static void task_init(struct relay_task *t, double started)
{
	memset(t, 0, sizeof *t);
	t->id = "web.instance-1._app.1";
	t->app_id = "/web";
	t->instance_id = "web.instance-1";
	t->state = MESOS__V1__TASK_STATE__TASK_RUNNING;
	t->started_at = started;
}

static void test_kill_after_max_failures(void **state)
{
	struct relay r = { .subscribed = true };
	struct relay_task t;
	double now = bt_now();
	json_t *res;

	the_app = app_with("[{\"protocol\":\"HTTP\",\"portIndex\":0,\"gracePeriodSeconds\":5,"
	    "\"intervalSeconds\":1,\"timeoutSeconds\":1,\"maxConsecutiveFailures\":3}]");
	kills = 0;
	task_init(&t, now - 100);
	report(&r, &t, 1, now);
	report(&r, &t, 2, now);
	assert_int_equal(kills, 0);
	assert_true(t.healthy_known && !t.healthy);
	report(&r, &t, 3, now);
	assert_int_equal(kills, 1);
	assert_int_equal(t.goal, RELAY_GOAL_STOPPED);
	res = relay_health_results(&t);
	assert_int_equal(json_array_size(res), 1);
	assert_false(json_is_true(json_object_get(json_array_get(res, 0), "alive")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0),
	    "consecutiveFailures")), 3);
	assert_string_equal(bt_json_string(json_array_get(res, 0), "lastFailureCause"),
	    "status 404");
	assert_true(json_is_null(json_object_get(json_array_get(res, 0), "firstSuccess")));
	assert_string_equal(bt_json_string(json_array_get(res, 0), "instanceId"),
	    "web.instance-1");
	json_decref(res);
	relay_health_free(&t);

	/* within the grace period, never healthy: no kill; once healthy before: kill */
	task_init(&t, now - 1);
	report(&r, &t, 3, now);
	assert_int_equal(kills, 1);
	{
		Mesos__V1__TaskStatus ok = status(true, NULL, now - 0.5);
		relay_health_update(&r, &t, &ok);
	}
	assert_true(t.healthy);
	report(&r, &t, 3, now);
	assert_int_equal(kills, 2);
	relay_health_free(&t);

	/* a stale report (held back while the agent was cut off) never kills */
	task_init(&t, now - 100);
	report(&r, &t, 5, now - 60);
	assert_int_equal(kills, 2);
	/* nor does a relay without a master, or an unreachable task */
	r.subscribed = false;
	report(&r, &t, 6, now);
	r.subscribed = true;
	t.state = MESOS__V1__TASK_STATE__TASK_STAGING;
	report(&r, &t, 7, now);
	assert_int_equal(kills, 2);
	relay_health_free(&t);
	app_free(the_app);

	/* maxConsecutiveFailures 0: never */
	the_app = app_with("[{\"protocol\":\"TCP\",\"portIndex\":0,\"gracePeriodSeconds\":0,"
	    "\"intervalSeconds\":1,\"maxConsecutiveFailures\":0}]");
	task_init(&t, now - 100);
	report(&r, &t, 50, now);
	assert_int_equal(kills, 2);
	relay_health_free(&t);
	app_free(the_app);
	the_app = NULL;
}

static void test_reconciliation_is_not_a_failure(void **state)
{
	struct relay r = { .subscribed = true };
	struct relay_task t;
	double now = bt_now();
	Mesos__V1__TaskStatus st = status(false, "Reconciliation: Latest task state", now);
	json_t *res;

	the_app = app_with("[{\"protocol\":\"HTTP\",\"portIndex\":0,\"gracePeriodSeconds\":0,"
	    "\"intervalSeconds\":1,\"maxConsecutiveFailures\":1}]");
	kills = 0;
	task_init(&t, now - 100);
	st.reason = MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION;
	relay_health_update(&r, &t, &st);
	assert_int_equal(kills, 0);
	assert_true(t.healthy_known && !t.healthy);
	res = relay_health_results(&t);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0),
	    "consecutiveFailures")), 1);
	assert_true(json_is_null(json_object_get(json_array_get(res, 0), "lastFailureCause")));
	json_decref(res);
	relay_health_free(&t);
	app_free(the_app);
	the_app = NULL;
}

static void test_recovery_of_one_check(void **state)
{
	struct relay r = { .subscribed = true };
	struct relay_task t;
	double now = bt_now();
	Mesos__V1__TaskStatus st = status(false, "health check #1 failed 1 consecutive times: x",
	    now - 2);
	json_t *res;

	the_app = app_with("[{\"protocol\":\"TCP\",\"portIndex\":0},"
	    "{\"protocol\":\"TCP\",\"portIndex\":0,\"maxConsecutiveFailures\":0}]");
	task_init(&t, now - 100);
	relay_health_update(&r, &t, &st);
	st = status(false, "health check #2 failed 4 consecutive times: y", now - 1);
	relay_health_update(&r, &t, &st);
	st = status(false, "health check #1 passed", now);
	relay_health_update(&r, &t, &st);
	assert_false(t.healthy);
	res = relay_health_results(&t);
	assert_int_equal(json_array_size(res), 2);
	assert_true(json_is_true(json_object_get(json_array_get(res, 0), "alive")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 0),
	    "consecutiveFailures")), 0);
	assert_false(json_is_true(json_object_get(json_array_get(res, 1), "alive")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(res, 1),
	    "consecutiveFailures")), 4);
	json_decref(res);
	/* "#3" does not exist: an ordinary failure of the first check */
	st = status(false, "health check #3 passed", now);
	relay_health_update(&r, &t, &st);
	relay_health_free(&t);
	app_free(the_app);
	the_app = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_failure),
		cmocka_unit_test(test_task_check),
		cmocka_unit_test(test_kill_after_max_failures),
		cmocka_unit_test(test_reconciliation_is_not_a_failure),
		cmocka_unit_test(test_recovery_of_one_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
