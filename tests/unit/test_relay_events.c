/*
 * test_relay_events.c -- the event bus's pure parts: the Accept check,
 * event_type filters, framing with full and light plans, Marathon's
 * instance conditions, and publishing with nobody subscribed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../framework/relay/events.c"
#include "../../framework/relay/events_emit.c"

/* the few relay functions the bus reaches, reduced to what the tests need */
bool relay_deployment_affects(const struct relay_deployment *d, const char *app_id)
{
	return json_object_get(d->originals, app_id) != NULL;
}

struct relay_app *relay_app_find(struct relay *r, const char *id)
{
	struct relay_app *app;

	TAILQ_FOREACH(app, &r->apps, entry)
		if (strcmp(app->id, id) == 0)
			return app;
	return NULL;
}

const char *relay_task_state_name(int s)
{
	return s == MESOS__V1__TASK_STATE__TASK_RUNNING ? "TASK_RUNNING" : "TASK_OTHER";
}

static void test_accept(void **state)
{
	assert_true(accepts_sse("text/event-stream"));
	assert_true(accepts_sse("TEXT/Event-Stream"));
	assert_true(accepts_sse("application/json, text/event-stream;q=0.9"));
	assert_true(accepts_sse(" text/event-stream ; charset=utf-8"));
	assert_false(accepts_sse("*/*"));
	assert_false(accepts_sse("application/json"));
	assert_false(accepts_sse("text/event-streams"));
	assert_false(accepts_sse(""));
}

static void test_type_mask(void **state)
{
	struct evkeyvalq q;

	TAILQ_INIT(&q);
	assert_int_equal(type_mask(&q), BIT(ET_COUNT) - 1);
	evhttp_add_header(&q, "event_type", "status_update_event");
	evhttp_add_header(&q, "plan-format", "light");
	evhttp_add_header(&q, "event_type", "api_post_event");
	assert_int_equal(type_mask(&q), BIT(ET_STATUS_UPDATE) | BIT(ET_API_POST));
	evhttp_clear_headers(&q);
	evhttp_add_header(&q, "event_type", "no_such_event");
	assert_int_equal(type_mask(&q), 0);
	evhttp_clear_headers(&q);
}

static void test_frame(void **state)
{
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:{}, s:{}, s:[], s:s}, s:{}}",
	    "eventType", "deployment_info", "timestamp", "2026-01-01T00:00:00.000Z",
	    "plan", "id", "d1", "original", "target", "steps", "version", "v1", "currentStep");
	size_t len;
	char *full = frame(ET_DEPLOYMENT_INFO, ev, false, &len);
	char *light = frame(ET_DEPLOYMENT_INFO, ev, true, &len);

	assert_string_equal(full, "event: deployment_info\r\ndata: {\"eventType\":\"deployment_info\","
	    "\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"plan\":{\"id\":\"d1\",\"original\":{},"
	    "\"target\":{},\"steps\":[],\"version\":\"v1\"},\"currentStep\":{}}\r\n\r\n");
	assert_string_equal(light, "event: deployment_info\r\ndata: {\"eventType\":\"deployment_info\","
	    "\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"plan\":{\"id\":\"d1\",\"steps\":[],"
	    "\"version\":\"v1\"},\"currentStep\":{}}\r\n\r\n");
	assert_int_equal(len, strlen(light));
	/* the event itself is left as it was */
	assert_non_null(json_object_get(json_object_get(ev, "plan"), "original"));
	free(full);
	free(light);
	json_decref(ev);
}

static void test_condition(void **state)
{
	assert_string_equal(condition(MESOS__V1__TASK_STATE__TASK_RUNNING, -1), "Running");
	assert_string_equal(condition(MESOS__V1__TASK_STATE__TASK_KILLED, -1), "Killed");
	assert_string_equal(condition(MESOS__V1__TASK_STATE__TASK_LOST,
	    MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_REMOVED), "Gone");
	assert_string_equal(condition(MESOS__V1__TASK_STATE__TASK_LOST,
	    MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_DISCONNECTED), "Unreachable");
	assert_string_equal(condition(MESOS__V1__TASK_STATE__TASK_UNREACHABLE, -1), "Unreachable");
}

/* with nobody subscribed nothing is read from the task, let alone built */
static void test_nobody_listens(void **state)
{
	struct relay r;
	struct relay_task *bogus = (struct relay_task *)(uintptr_t)1;
	struct relay_deployment d = { .id = "d1", .version = "v1" };

	memset(&r, 0, sizeof r);
	TAILQ_INIT(&r.apps);
	relay_event_task_launched(&r, bogus);           /* before init */
	r.base = event_base_new();
	relay_events_init(&r);
	relay_event_task_launched(&r, bogus);
	relay_event_status_update(&r, bogus, NULL);
	relay_event_health_changed(&r, bogus, true);
	relay_event_failed_health_check(&r, bogus, NULL);
	relay_event_unhealthy_kill(&r, bogus, "x");
	relay_event_app_terminated(&r, "/x");
	d.steps = json_pack("[{s:[{s:s, s:s}]}]", "actions", "action", "ScaleApplication", "app", "/x");
	d.originals = json_pack("{s:n}", "/x");
	relay_event_deployment_new(&r, &d);
	relay_event_deployment_step(&r, &d, 0);
	relay_event_deployment_done(&r, &d);
	relay_event_deployment_failed(&r, &d, "x");
	assert_true(TAILQ_EMPTY(&r.events->plans));
	json_decref(d.steps);
	json_decref(d.originals);
	relay_events_release(&r);
	assert_null(r.events);
	event_base_free(r.base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_type_mask),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_condition),
		cmocka_unit_test(test_nobody_listens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
