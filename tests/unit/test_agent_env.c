/*
 * test_agent_env.c -- the task environment (agent/env.c) and resource detection
 * (agent/detect.c) of butte-agent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/detect.c"
#include "../../agent/env.c"

static const char *env_get(char **env, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; env[i] != NULL; i++) {
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	}
	return NULL;
}

struct fixture {
	struct agent agent;
	struct agent_task task;
	Mesos__V1__TaskInfo info;
	Mesos__V1__TaskID tid;
	Mesos__V1__CommandInfo cmd;
	Mesos__V1__Resource ports;
	Mesos__V1__Resource *resv[1];
	Mesos__V1__Value__Ranges ranges;
	Mesos__V1__Value__Range r1, r2;
	Mesos__V1__Value__Range *rv[2];
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	mesos__v1__task_info__init(&f->info);
	mesos__v1__task_id__init(&f->tid);
	mesos__v1__command_info__init(&f->cmd);
	mesos__v1__resource__init(&f->ports);
	mesos__v1__value__ranges__init(&f->ranges);
	mesos__v1__value__range__init(&f->r1);
	mesos__v1__value__range__init(&f->r2);
	f->tid.value = "web.1";
	f->info.task_id = &f->tid;
	f->info.command = &f->cmd;
	f->cmd.value = "true";
	/* two ranges given out of order: 31005 and 31000-31001 */
	f->r1.begin = 31005;
	f->r1.end = 31005;
	f->r2.begin = 31000;
	f->r2.end = 31001;
	f->rv[0] = &f->r1;
	f->rv[1] = &f->r2;
	f->ranges.n_range = 2;
	f->ranges.range = f->rv;
	f->ports.name = "ports";
	f->ports.type = MESOS__V1__VALUE__TYPE__RANGES;
	f->ports.ranges = &f->ranges;
	f->resv[0] = &f->ports;
	f->info.n_resources = 1;
	f->info.resources = f->resv;
	f->agent.agent_id = "M-S0";
	f->agent.hostname = "node1";
	f->agent.endpoint = "10.0.0.1:5051";
	f->task.agent = &f->agent;
	f->task.info = &f->info;
	f->task.task_id = "web.1";
	f->task.framework_id = "M-0000";
	f->task.container_id = "c1";
	f->task.sandbox = "/w/slaves/M-S0/frameworks/M-0000/executors/web.1/runs/c1";
}

static void test_mesos_variables(void **state)
{
	struct fixture f;
	char **env;

	fixture_init(&f);
	env = agent_task_env(&f.task);
	assert_string_equal(env_get(env, "MESOS_TASK_ID"), "web.1");
	assert_string_equal(env_get(env, "MESOS_FRAMEWORK_ID"), "M-0000");
	assert_string_equal(env_get(env, "MESOS_AGENT_ID"), "M-S0");
	assert_string_equal(env_get(env, "MESOS_SANDBOX"), f.task.sandbox);
	assert_string_equal(env_get(env, "MESOS_DIRECTORY"), f.task.sandbox);
	assert_string_equal(env_get(env, "MESOS_AGENT_ENDPOINT"), "10.0.0.1:5051");
	assert_string_equal(env_get(env, "HOST"), "node1");
	assert_non_null(env_get(env, "PATH"));
	assert_null(env_get(env, "HOME"));
	agent_strv_free(env);
}

static void test_ports_ascending(void **state)
{
	struct fixture f;
	char **env;

	fixture_init(&f);
	env = agent_task_env(&f.task);
	assert_string_equal(env_get(env, "PORT0"), "31000");
	assert_string_equal(env_get(env, "PORT1"), "31001");
	assert_string_equal(env_get(env, "PORT2"), "31005");
	assert_null(env_get(env, "PORT3"));
	assert_string_equal(env_get(env, "PORT"), "31000");
	assert_string_equal(env_get(env, "PORTS"), "31000,31001,31005");
	agent_strv_free(env);
}

static void test_ports_in_discovery_order_with_names(void **state)
{
	struct fixture f;
	Mesos__V1__DiscoveryInfo disc = MESOS__V1__DISCOVERY_INFO__INIT;
	Mesos__V1__Ports dports = MESOS__V1__PORTS__INIT;
	Mesos__V1__Port p1 = MESOS__V1__PORT__INIT, p2 = MESOS__V1__PORT__INIT;
	Mesos__V1__Port *pv[2] = { &p1, &p2 };
	char **env;

	fixture_init(&f);
	p1.number = 31005;
	p1.name = "http-api";
	p2.number = 31001;
	p2.name = "admin";
	dports.n_ports = 2;
	dports.ports = pv;
	disc.ports = &dports;
	f.info.discovery = &disc;
	env = agent_task_env(&f.task);
	assert_string_equal(env_get(env, "PORTS"), "31005,31001,31000");
	assert_string_equal(env_get(env, "PORT0"), "31005");
	assert_string_equal(env_get(env, "PORT_HTTP_API"), "31005");
	assert_string_equal(env_get(env, "PORT_ADMIN"), "31001");
	agent_strv_free(env);
}

static void test_task_environment_wins(void **state)
{
	struct fixture f;
	Mesos__V1__Environment e = MESOS__V1__ENVIRONMENT__INIT;
	Mesos__V1__Environment__Variable v1 = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
	Mesos__V1__Environment__Variable v2 = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
	Mesos__V1__Environment__Variable v3 = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
	Mesos__V1__Environment__Variable *vv[3] = { &v1, &v2, &v3 };
	char **env;

	fixture_init(&f);
	v1.name = "PORT0";
	v1.value = "8080";
	v2.name = "HOST";
	v2.value = "elsewhere";
	v3.name = "BAD=NAME";
	v3.value = "x";
	e.n_variables = 3;
	e.variables = vv;
	f.cmd.environment = &e;
	env = agent_task_env(&f.task);
	assert_string_equal(env_get(env, "PORT0"), "8080");
	assert_string_equal(env_get(env, "PORT1"), "31001");
	assert_string_equal(env_get(env, "HOST"), "elsewhere");
	assert_null(env_get(env, "BAD"));
	agent_strv_free(env);
}

static void test_detection_fills_gaps(void **state)
{
	struct bt_resources r;
	const struct bt_resource *ports;
	char *cause = NULL, *text;

	bt_resources_init(&r);
	assert_int_equal(bt_resources_parse(&r, "cpus:3;mem:100", NULL, &cause), 0);
	assert_int_equal(agent_detect_resources(&r, "/", &cause), 0);
	assert_int_equal(bt_resources_scalar(&r, "cpus"), 3000);
	assert_int_equal(bt_resources_scalar(&r, "mem"), 100000);
	assert_true(bt_resources_scalar(&r, "disk") > 0);
	ports = bt_resources_find(&r, "ports", NULL);
	assert_non_null(ports);
	text = bt_value_format(&ports->value);
	assert_string_equal(text, "[31000-32000]");
	free(text);
	bt_resources_release(&r);
	assert_true(strlen(agent_detect_arch()) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mesos_variables),
		cmocka_unit_test(test_ports_ascending),
		cmocka_unit_test(test_ports_in_discovery_order_with_names),
		cmocka_unit_test(test_task_environment_wins),
		cmocka_unit_test(test_detection_fills_gaps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
