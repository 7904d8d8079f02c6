/*
 * test_relay_container.c -- relay's container block: normalisation of the
 * legacy and canonical forms, host port slots, the port environment, the
 * Mesos ContainerInfo, and the bounded offer statistics of /v2/queue.
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
	bt_map_init(&r->app_index);
	r->cfg.local_port_min = 10000;
	r->cfg.local_port_max = 20000;
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

/* normalise, assign service ports and keep the app; NULL on a validation error */
static struct relay_app *add_app(struct relay *r, const char *text, json_t **err)
{
	json_t *body = json_loads(text, 0, NULL), *def;
	char *cause = NULL;
	int status = 0;

	assert_non_null(body);
	def = relay_app_normalize(r, body, NULL, NULL, &status, err);
	json_decref(body);
	if (def == NULL)
		return NULL;
	assert_int_equal(relay_app_assign_ports(r, def, NULL, &cause), 0);
	return relay_app_set(r, def);
}

/* the value at a dotted path ("a.0.b") as text: strings as they are, integers in decimal */
static const char *jpath(const json_t *j, const char *path)
{
	static char buf[256];
	char *copy = strdup(path), *tok, *save;
	const json_t *cur = j;

	for (tok = strtok_r(copy, ".", &save); tok != NULL && cur != NULL;
	    tok = strtok_r(NULL, ".", &save))
		cur = isdigit((unsigned char)tok[0]) ? json_array_get(cur, (size_t)atoi(tok)) :
		    json_object_get(cur, tok);
	if (json_is_integer(cur))
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(cur));
	else
		snprintf(buf, sizeof buf, "%s", json_is_string(cur) ? json_string_value(cur) :
		    cur == NULL ? "(null)" : "(other)");
	free(copy);
	return buf;
}

static void test_legacy_bridge(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL;
	struct relay_app *app = add_app(r, "{\"id\":\"mysql\",\"cpus\":0.5,\"mem\":64,"
	    "\"container\":{\"type\":\"DOCKER\",\"docker\":{\"image\":\"ppc64le/mysql\","
	    "\"network\":\"BRIDGE\",\"portMappings\":[{\"containerPort\":3306,\"hostPort\":0,"
	    "\"servicePort\":0,\"protocol\":\"tcp\"}]}}}", &err);

	assert_non_null(app);
	assert_string_equal(jpath(app->def, "networks.0.mode"), "container/bridge");
	assert_null(json_object_get(json_object_get(json_object_get(app->def, "container"), "docker"),
	    "network"));
	assert_string_equal(jpath(app->def, "container.portMappings.0.containerPort"), "3306");
	assert_string_equal(jpath(app->def, "container.portMappings.0.hostPort"), "0");
	assert_string_equal(jpath(app->def, "container.portMappings.0.servicePort"), "10000");
	assert_int_equal(json_array_size(json_object_get(app->def, "portDefinitions")), 0);
	assert_int_equal(app->nports, 1);
	assert_true(app->host_ports[0] == 0);
	free_relay(r);
}

static void test_refusals(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL;

	assert_null(add_app(r, "{\"id\":\"x\",\"cmd\":\"true\",\"container\":{\"docker\":{"
	    "\"image\":\"i\",\"network\":\"HOST\",\"portMappings\":[{\"containerPort\":1}]}}}", &err));
	assert_string_equal(jpath(err, "details.0.errors.0"),
	    "portMappings are not allowed with host-networking");
	json_decref(err);
	assert_null(add_app(r, "{\"id\":\"x\",\"cmd\":\"true\",\"networks\":[{\"mode\":\"container\"}],"
	    "\"container\":{\"docker\":{\"image\":\"i\"}}}", &err));
	assert_string_equal(jpath(err, "details.0.path"), "/networks");
	json_decref(err);
	free_relay(r);
}

static void test_host_port_slots(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL;
	struct relay_app *a = add_app(r, "{\"id\":\"a\",\"cmd\":\"true\",\"networks\":"
	    "[{\"mode\":\"container\",\"name\":\"dev\"}],\"container\":{\"docker\":{\"image\":\"i\"},"
	    "\"portMappings\":[{\"containerPort\":80},{\"containerPort\":81,\"hostPort\":7005},"
	    "{\"containerPort\":82,\"hostPort\":0}]}}", &err);
	struct relay_app *b = add_app(r, "{\"id\":\"b\",\"cmd\":\"true\",\"requirePorts\":true,"
	    "\"portDefinitions\":[{\"port\":9000},{\"port\":0}]}", &err);

	assert_non_null(a);
	assert_int_equal(a->nports, 2);
	assert_true(a->host_ports[0] == 7005 && a->host_ports[1] == 0);
	assert_non_null(b);
	assert_int_equal(b->nports, 2);
	assert_true(b->host_ports[0] == 9000 && b->host_ports[1] == 10003);
	free_relay(r);
}

static void test_port_env(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL, *env = json_object();
	struct relay_app *app = add_app(r, "{\"id\":\"a\",\"cmd\":\"true\",\"container\":{"
	    "\"docker\":{\"image\":\"i\",\"network\":\"BRIDGE\",\"portMappings\":["
	    "{\"containerPort\":3306,\"name\":\"db\"},{\"containerPort\":0}]}}}", &err);
	uint64_t ports[2] = { 31000, 31001 };

	assert_non_null(app);
	relay_container_port_env(app, ports, 2, env);
	assert_string_equal(jpath(env, "PORT0"), "31000");
	assert_string_equal(jpath(env, "PORT1"), "31001");
	assert_string_equal(jpath(env, "PORT"), "31000");
	assert_string_equal(jpath(env, "PORTS"), "31000,31001");
	assert_string_equal(jpath(env, "PORT_3306"), "31000");
	assert_string_equal(jpath(env, "PORT_DB"), "31000");
	assert_string_equal(jpath(env, "PORT_31001"), "31001");
	json_decref(env);
	free_relay(r);
}

static const char *var(const Mesos__V1__Environment *env, const char *name)
{
	const char *value = NULL;

	for (size_t i = 0; i < env->n_variables; i++)
		if (strcmp(env->variables[i]->name, name) == 0) {
			assert_null(value);             /* no name twice */
			value = env->variables[i]->value;
		}
	return value;
}

/* a launch: the app's template plus the task's ids, resources, ports and variables */
static void test_launch_task_info(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL;
	struct relay_app *app = add_app(r, "{\"id\":\"/shop/web\",\"cmd\":\"serve\","
	    "\"cpus\":0.5,\"mem\":64,\"env\":{\"HOST\":\"mine\",\"A\":\"1\"},"
	    "\"labels\":{\"tier\":\"front\"},\"taskKillGracePeriodSeconds\":7,"
	    "\"portDefinitions\":[{\"port\":0,\"name\":\"http\"},{\"port\":0}]}", &err);
	struct relay_task t = { .id = "shop_web.instance-1._app.1", .agent_id = "S1",
	    .host = "10.0.0.1", .nports = 2 };
	uint64_t ports[2] = { 31000, 31005 };
	struct relay_offer_role role = { "*", "relay" };
	struct relay_launch *l, *l2;
	Mesos__V1__TaskInfo *ti;
	void *packed;
	size_t len;

	assert_non_null(app);
	t.ports = ports;
	l = relay_launch_new(app, &t, &role);
	assert_non_null(l);
	ti = relay_launch_task_info(l);
	assert_string_equal(ti->name, "web.shop");
	assert_string_equal(ti->task_id->value, t.id);
	assert_string_equal(ti->agent_id->value, "S1");
	assert_int_equal(ti->n_resources, 3);
	assert_string_equal(ti->resources[0]->name, "cpus");
	assert_true(ti->resources[0]->scalar->value == 0.5);
	assert_string_equal(ti->resources[0]->allocation_info->role, "relay");
	assert_string_equal(ti->resources[2]->name, "ports");
	assert_int_equal(ti->resources[2]->ranges->n_range, 2);
	assert_int_equal(ti->resources[2]->ranges->range[1]->begin, 31005);
	assert_string_equal(ti->command->value, "serve");
	assert_string_equal(var(ti->command->environment, "HOST"), "mine");   /* the app's env wins */
	assert_string_equal(var(ti->command->environment, "A"), "1");
	assert_string_equal(var(ti->command->environment, "PORT0"), "31000");
	assert_string_equal(var(ti->command->environment, "PORT1"), "31005");
	assert_string_equal(var(ti->command->environment, "PORT_HTTP"), "31000");
	assert_string_equal(var(ti->command->environment, "PORTS"), "31000,31005");
	assert_string_equal(var(ti->command->environment, "MESOS_TASK_ID"), t.id);
	assert_string_equal(var(ti->command->environment, "MARATHON_APP_ID"), "/shop/web");
	assert_string_equal(var(ti->command->environment, "MARATHON_APP_LABEL_TIER"), "front");
	assert_int_equal(ti->labels->n_labels, 1);
	assert_int_equal(ti->kill_policy->grace_period->nanoseconds, 7000000000LL);
	/* the TaskInfo packs and reads back as it was built */
	packed = bt_pb_encode_alloc(&ti->base, false, &len);
	assert_non_null(packed);
	free(packed);
	/* a second task shares the template but has its own variables */
	t.id = "shop_web.instance-2._app.1";
	ports[0] = 31010;
	l2 = relay_launch_new(app, &t, &role);
	assert_string_equal(var(relay_launch_task_info(l2)->command->environment, "PORT0"), "31010");
	assert_string_equal(var(relay_launch_task_info(l)->command->environment, "PORT0"), "31000");
	assert_ptr_equal(relay_launch_task_info(l2)->labels, ti->labels);
	relay_launch_free(l2);
	relay_launch_free(l);
	free_relay(r);
}

static void test_container_info(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL, *ci, *cmd;
	struct relay_app *app = add_app(r, "{\"id\":\"a\",\"args\":[\"x\"],\"container\":{"
	    "\"docker\":{\"image\":\"i\",\"network\":\"BRIDGE\",\"privileged\":true,"
	    "\"portMappings\":[{\"containerPort\":53,\"protocol\":\"udp,tcp\"},{\"containerPort\":0}]},"
	    "\"volumes\":[{\"containerPath\":\"/d\",\"hostPath\":\"/h\",\"mode\":\"RO\"}]}}", &err);
	uint64_t ports[2] = { 31000, 31001 };

	assert_non_null(app);
	ci = relay_container_info(app, ports, 2);
	assert_string_equal(jpath(ci, "type"), "DOCKER");
	assert_string_equal(jpath(ci, "docker.network"), "BRIDGE");
	assert_true(json_is_true(json_object_get(json_object_get(ci, "docker"), "privileged")));
	assert_int_equal(json_array_size(json_object_get(json_object_get(ci, "docker"),
	    "port_mappings")), 3);
	assert_string_equal(jpath(ci, "docker.port_mappings.0.protocol"), "tcp");
	assert_string_equal(jpath(ci, "docker.port_mappings.1.protocol"), "udp");
	assert_string_equal(jpath(ci, "docker.port_mappings.1.container_port"), "53");
	assert_string_equal(jpath(ci, "docker.port_mappings.2.container_port"), "31001");
	assert_string_equal(jpath(ci, "volumes.0.mode"), "RO");
	assert_string_equal(jpath(ci, "volumes.0.host_path"), "/h");
	json_decref(ci);
	cmd = json_pack("{s:b, s:s, s:[s]}", "shell", 0, "value", "x", "arguments", "x");
	relay_container_command(app, cmd);
	assert_null(json_object_get(cmd, "value"));
	json_decref(cmd);

	app = add_app(r, "{\"id\":\"n\",\"cmd\":\"true\",\"container\":{\"docker\":{\"image\":\"i\","
	    "\"network\":\"NONE\"}}}", &err);
	ci = relay_container_info(app, NULL, 0);
	assert_string_equal(jpath(ci, "docker.network"), "NONE");
	assert_null(json_object_get(ci, "network_infos"));
	json_decref(ci);
	app = add_app(r, "{\"id\":\"u\",\"cmd\":\"true\",\"ipAddress\":{\"networkName\":\"dev\"},"
	    "\"container\":{\"docker\":{\"image\":\"i\",\"network\":\"USER\"}}}", &err);
	ci = relay_container_info(app, NULL, 0);
	assert_string_equal(jpath(ci, "docker.network"), "USER");
	assert_string_equal(jpath(ci, "network_infos.0.name"), "dev");
	json_decref(ci);
	free_relay(r);
}

static Mesos__V1__Offer *fake_offer(int agent, int n)
{
	Mesos__V1__Offer *o = calloc(1, sizeof *o);
	Mesos__V1__OfferID *id = calloc(1, sizeof *id);
	Mesos__V1__AgentID *aid = calloc(1, sizeof *aid);
	char buf[64];

	mesos__v1__offer__init(o);
	mesos__v1__offer_id__init(id);
	mesos__v1__agent_id__init(aid);
	snprintf(buf, sizeof buf, "offer-%d-%d", agent, n);
	id->value = strdup(buf);
	snprintf(buf, sizeof buf, "agent-%d", agent);
	aid->value = strdup(buf);
	o->id = id;
	o->agent_id = aid;
	o->hostname = strdup(buf);
	return o;
}

static void free_offer(Mesos__V1__Offer *o)
{
	free(o->id->value);
	free(o->id);
	free(o->agent_id->value);
	free(o->agent_id);
	free(o->hostname);
	free(o);
}

static void test_offer_stats(void **state)
{
	struct relay *r = new_relay();
	json_t *err = NULL, *sum, *unused;
	struct relay_app *app = add_app(r, "{\"id\":\"a\",\"cmd\":\"true\"}", &err);
	int i;

	/* 20 agents, one unused offer each (ports), then agent 19 again (constraint + cpus) */
	for (i = 0; i < 20; i++) {
		Mesos__V1__Offer *o = fake_offer(i, 0);
		relay_offer_stats_unused(app, o, 1u << RELAY_REJECT_PORTS, 100 + i);
		free_offer(o);
	}
	Mesos__V1__Offer *o = fake_offer(19, 1);
	relay_offer_stats_unused(app, o, (1u << RELAY_REJECT_CONSTRAINT) | (1u << RELAY_REJECT_CPUS),
	    200);
	free_offer(o);
	relay_offer_stats_used(app, 300);

	sum = relay_offer_stats_json(app);
	assert_string_equal(jpath(sum, "processedOffersCount"), "22");
	assert_string_equal(jpath(sum, "unusedOffersCount"), "21");
	/* the last offers: 16 agents, the newest 16; agent 19 now for its constraint */
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.0.processed"), "16");
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.1.reason"), "UnfulfilledConstraint");
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.1.declined"), "1");
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.8.reason"), "InsufficientPorts");
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.8.declined"), "15");
	assert_string_equal(jpath(sum, "rejectSummaryLastOffers.8.processed"), "15");
	assert_string_equal(jpath(sum, "rejectSummaryLaunchAttempt.0.processed"), "22");
	assert_string_equal(jpath(sum, "rejectSummaryLaunchAttempt.8.declined"), "20");
	assert_string_equal(jpath(sum, "rejectSummaryLaunchAttempt.8.processed"), "21");
	assert_string_equal(jpath(sum, "rejectSummaryLaunchAttempt.9.processed"), "1");
	json_decref(sum);

	unused = relay_offer_stats_unused_json(app);
	assert_int_equal(json_array_size(unused), 16);
	assert_string_equal(jpath(unused, "0.offer.agentId"), "agent-4");
	assert_string_equal(jpath(unused, "15.offer.id"), "offer-19-1");
	assert_string_equal(jpath(unused, "15.reason.0"), "UnfulfilledConstraint");
	assert_string_equal(jpath(unused, "15.reason.1"), "InsufficientCpus");
	json_decref(unused);

	relay_offer_stats_reset(app);
	assert_null(app->offer_stats);
	sum = relay_offer_stats_json(app);
	assert_string_equal(jpath(sum, "processedOffersCount"), "0");
	assert_null(json_object_get(sum, "lastUnusedOfferAt"));
	json_decref(sum);
	free_relay(r);
	json_decref(snapshot);
	snapshot = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_legacy_bridge),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_host_port_slots),
		cmocka_unit_test(test_port_env),
		cmocka_unit_test(test_launch_task_info),
		cmocka_unit_test(test_container_info),
		cmocka_unit_test(test_offer_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
