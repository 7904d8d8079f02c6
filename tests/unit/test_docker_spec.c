/*
 * test_docker_spec.c -- the POST /containers/create body butte-agent builds
 * from a DOCKER TaskInfo (agent/docker_spec.c, with agent/env.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/env.c"
#include "../../agent/docker_spec.c"

struct fixture {
	struct agent agent;
	struct agent_task task;
	struct agent_docker_task dt;
	Mesos__V1__TaskInfo info;
	Mesos__V1__TaskID tid;
	Mesos__V1__CommandInfo cmd;
	Mesos__V1__ContainerInfo container;
	Mesos__V1__ContainerInfo__DockerInfo docker;
	Mesos__V1__Resource cpus, mem;
	Mesos__V1__Value__Scalar cpus_v, mem_v;
	Mesos__V1__Resource *resv[2];
	Mesos__V1__Environment env;
	Mesos__V1__Environment__Variable var;
	Mesos__V1__Environment__Variable *vars[1];
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	f->agent.agent_id = "agent-1";
	f->agent.work_dir = "/var/lib/butte/agent";
	f->agent.endpoint = "127.0.0.1:5051";
	f->agent.hostname = "node1";
	f->task.agent = &f->agent;
	f->task.task_id = "mysql.1";
	f->task.framework_id = "fw-1";
	f->task.container_id = "cid-1";
	f->task.sandbox = "/var/lib/butte/agent/slaves/a/frameworks/f/executors/t/runs/cid-1";
	f->task.info = &f->info;
	f->dt.task = &f->task;
	f->dt.name = "mesos-cid-1";
	mesos__v1__task_info__init(&f->info);
	mesos__v1__task_id__init(&f->tid);
	mesos__v1__command_info__init(&f->cmd);
	mesos__v1__container_info__init(&f->container);
	mesos__v1__container_info__docker_info__init(&f->docker);
	mesos__v1__resource__init(&f->cpus);
	mesos__v1__resource__init(&f->mem);
	mesos__v1__value__scalar__init(&f->cpus_v);
	mesos__v1__value__scalar__init(&f->mem_v);
	mesos__v1__environment__init(&f->env);
	mesos__v1__environment__variable__init(&f->var);
	f->tid.value = "mysql.1";
	f->info.task_id = &f->tid;
	f->info.command = &f->cmd;
	f->info.container = &f->container;
	f->container.type = MESOS__V1__CONTAINER_INFO__TYPE__DOCKER;
	f->container.docker = &f->docker;
	f->docker.image = "localhost/busybox";
	f->cpus.name = "cpus";
	f->cpus_v.value = 0.5;
	f->cpus.scalar = &f->cpus_v;
	f->mem.name = "mem";
	f->mem_v.value = 16;
	f->mem.scalar = &f->mem_v;
	f->resv[0] = &f->cpus;
	f->resv[1] = &f->mem;
	f->info.resources = f->resv;
	f->info.n_resources = 2;
	f->var.name = "MYSQL_USER";
	f->var.value = "test";
	f->vars[0] = &f->var;
	f->env.variables = f->vars;
	f->env.n_variables = 1;
	f->cmd.environment = &f->env;
}

static json_t *at(json_t *j, const char *path)
{
	char *copy = xstrdup(path), *save = NULL, *tok;

	for (tok = strtok_r(copy, ".", &save); tok != NULL && j != NULL;
	    tok = strtok_r(NULL, ".", &save))
		j = json_object_get(j, tok);
	free(copy);
	return j;
}

static bool has_string(json_t *arr, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

static json_t *build(struct fixture *f, char **cause)
{
	*cause = NULL;
	return docker_create_body(&f->dt, cause);
}

static void test_shell_command_env_labels_limits(void **state)
{
	struct fixture f;
	char *cause;
	json_t *b;

	fixture_init(&f);
	f.cmd.value = "echo hi";
	b = build(&f, &cause);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_array_get(at(b, "Entrypoint"), 0)), "/bin/sh");
	assert_string_equal(json_string_value(json_array_get(at(b, "Cmd"), 0)), "-c");
	assert_string_equal(json_string_value(json_array_get(at(b, "Cmd"), 1)), "echo hi");
	assert_true(has_string(at(b, "Env"), "MYSQL_USER=test"));
	assert_true(has_string(at(b, "Env"), "MESOS_SANDBOX=/mnt/mesos/sandbox"));
	assert_true(has_string(at(b, "Env"), "MESOS_TASK_ID=mysql.1"));
	assert_true(has_string(at(b, "Env"), "MESOS_CONTAINER_NAME=mesos-cid-1"));
	assert_false(has_string(at(b, "Env"), "PATH=" TASK_PATH));
	assert_string_equal(json_string_value(at(b, "WorkingDir")), "/mnt/mesos/sandbox");
	assert_string_equal(json_string_value(json_object_get(at(b, "Labels"), "butte.work_dir")),
	    "/var/lib/butte/agent");
	assert_string_equal(json_string_value(json_object_get(at(b, "Labels"), "butte.task_id")),
	    "mysql.1");
	assert_int_equal(json_integer_value(at(b, "HostConfig.CpuShares")), 512);
	assert_int_equal(json_integer_value(at(b, "HostConfig.Memory")), 32 * 1024 * 1024);
	assert_string_equal(json_string_value(at(b, "HostConfig.NetworkMode")), "host");
	assert_true(has_string(at(b, "HostConfig.Binds"),
	    "/var/lib/butte/agent/slaves/a/frameworks/f/executors/t/runs/cid-1:/mnt/mesos/sandbox:rw"));
	json_decref(b);
	f.mem_v.value = 64;
	f.cpus_v.value = 0.001;
	b = build(&f, &cause);
	assert_int_equal(json_integer_value(at(b, "HostConfig.Memory")), 64 * 1024 * 1024);
	assert_int_equal(json_integer_value(at(b, "HostConfig.CpuShares")), 2);
	json_decref(b);
}

static void test_argv_and_image_default(void **state)
{
	struct fixture f;
	char *args[] = { "-c", "exit 0" }, *cause;
	json_t *b;

	fixture_init(&f);
	f.cmd.has_shell = true;
	f.cmd.shell = false;
	f.cmd.arguments = args;
	f.cmd.n_arguments = 2;
	b = build(&f, &cause);
	assert_null(at(b, "Entrypoint"));
	assert_int_equal(json_array_size(at(b, "Cmd")), 2);
	assert_string_equal(json_string_value(json_array_get(at(b, "Cmd"), 1)), "exit 0");
	json_decref(b);
	f.cmd.value = "sh";
	b = build(&f, &cause);
	assert_int_equal(json_array_size(at(b, "Cmd")), 3);
	assert_string_equal(json_string_value(json_array_get(at(b, "Cmd"), 0)), "sh");
	json_decref(b);
	f.cmd.value = NULL;
	f.cmd.n_arguments = 0;
	b = build(&f, &cause);
	assert_null(at(b, "Cmd"));
	assert_null(at(b, "Entrypoint"));
	json_decref(b);
}

static void test_networks_and_port_mappings(void **state)
{
	struct fixture f;
	Mesos__V1__ContainerInfo__DockerInfo__PortMapping pm, pm2, *pms[2] = { &pm, &pm2 };
	Mesos__V1__NetworkInfo net, *nets[1] = { &net };
	json_t *b, *bind;
	char *cause;

	fixture_init(&f);
	mesos__v1__container_info__docker_info__port_mapping__init(&pm);
	mesos__v1__container_info__docker_info__port_mapping__init(&pm2);
	pm.host_port = 31005;
	pm.container_port = 3306;
	pm.protocol = "tcp";
	pm2.host_port = 31006;
	pm2.container_port = 53;
	pm2.protocol = "udp,tcp";
	f.docker.port_mappings = pms;
	f.docker.n_port_mappings = 2;
	f.docker.has_network = true;
	f.docker.network = MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__BRIDGE;
	b = build(&f, &cause);
	assert_non_null(b);
	assert_string_equal(json_string_value(at(b, "HostConfig.NetworkMode")), "bridge");
	bind = json_array_get(json_object_get(at(b, "HostConfig.PortBindings"), "3306/tcp"), 0);
	assert_string_equal(json_string_value(json_object_get(bind, "HostPort")), "31005");
	assert_string_equal(json_string_value(json_object_get(bind, "HostIp")), "");
	assert_non_null(json_object_get(at(b, "HostConfig.PortBindings"), "53/udp"));
	assert_non_null(json_object_get(at(b, "HostConfig.PortBindings"), "53/tcp"));
	assert_non_null(json_object_get(at(b, "ExposedPorts"), "3306/tcp"));
	json_decref(b);

	f.docker.network = MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__HOST;
	assert_null(build(&f, &cause));
	assert_non_null(strstr(cause, "port mappings are only supported"));
	free(cause);

	f.docker.network = MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__USER;
	assert_null(build(&f, &cause));
	assert_non_null(strstr(cause, "USER network"));
	free(cause);
	mesos__v1__network_info__init(&net);
	net.name = "backend";
	f.container.network_infos = nets;
	f.container.n_network_infos = 1;
	b = build(&f, &cause);
	assert_string_equal(json_string_value(at(b, "HostConfig.NetworkMode")), "backend");
	json_decref(b);

	f.docker.n_port_mappings = 0;
	f.docker.network = MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__NONE;
	b = build(&f, &cause);
	assert_string_equal(json_string_value(at(b, "HostConfig.NetworkMode")), "none");
	json_decref(b);
}

static void test_parameters(void **state)
{
	struct fixture f;
	Mesos__V1__Parameter p[6], *pv[6];
	const char *kv[][2] = { { "env", "A=1" }, { "label", "team=db" },
	    { "shm-size", "64m" }, { "ulimit", "nofile=1024:2048" }, { "read-only", "true" },
	    { "cap-add", "NET_ADMIN" } };
	json_t *b;
	char *cause;
	size_t i;

	fixture_init(&f);
	for (i = 0; i < 6; i++) {
		mesos__v1__parameter__init(&p[i]);
		p[i].key = (char *)kv[i][0];
		p[i].value = (char *)kv[i][1];
		pv[i] = &p[i];
	}
	f.docker.parameters = pv;
	f.docker.n_parameters = 6;
	f.docker.has_privileged = true;
	f.docker.privileged = true;
	b = build(&f, &cause);
	assert_non_null(b);
	assert_true(has_string(at(b, "Env"), "A=1"));
	assert_string_equal(json_string_value(json_object_get(at(b, "Labels"), "team")), "db");
	assert_non_null(json_object_get(at(b, "Labels"), "butte.container_id"));
	assert_int_equal(json_integer_value(at(b, "HostConfig.ShmSize")), 64 * 1024 * 1024);
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(at(b, "HostConfig.Ulimits"), 0), "Hard")), 2048);
	assert_true(json_is_true(at(b, "HostConfig.ReadonlyRootfs")));
	assert_true(json_is_true(at(b, "HostConfig.Privileged")));
	assert_true(has_string(at(b, "HostConfig.CapAdd"), "NET_ADMIN"));
	json_decref(b);

	p[2].value = "lots";
	assert_null(build(&f, &cause));
	assert_string_equal(cause, "invalid value 'lots' for docker parameter 'shm-size'");
	free(cause);
	p[2].key = "publish-all";
	assert_null(build(&f, &cause));
	assert_string_equal(cause, "unsupported docker parameter 'publish-all'");
	free(cause);
}

static void test_volumes(void **state)
{
	struct fixture f;
	Mesos__V1__Volume v[4], *vv[4];
	Mesos__V1__Volume__Source src;
	Mesos__V1__Volume__Source__DockerVolume dv;
	json_t *b;
	char *cause;
	size_t i;

	fixture_init(&f);
	for (i = 0; i < 4; i++) {
		mesos__v1__volume__init(&v[i]);
		vv[i] = &v[i];
	}
	v[0].container_path = "/etc/cfg";
	v[0].host_path = "/srv/cfg";
	v[0].mode = MESOS__V1__VOLUME__MODE__RO;
	v[1].container_path = "data";
	v[1].host_path = "data";
	mesos__v1__volume__source__init(&src);
	mesos__v1__volume__source__docker_volume__init(&dv);
	dv.name = "dbdata";
	src.docker_volume = &dv;
	v[2].container_path = "/var/lib/mysql";
	v[2].source = &src;
	v[3].container_path = "/scratch";
	f.container.volumes = vv;
	f.container.n_volumes = 4;
	b = build(&f, &cause);
	assert_true(has_string(at(b, "HostConfig.Binds"), "/srv/cfg:/etc/cfg:ro"));
	assert_true(has_string(at(b, "HostConfig.Binds"),
	    "/var/lib/butte/agent/slaves/a/frameworks/f/executors/t/runs/cid-1/data:"
	    "/mnt/mesos/sandbox/data:rw"));
	assert_true(has_string(at(b, "HostConfig.Binds"), "dbdata:/var/lib/mysql:rw"));
	assert_non_null(json_object_get(at(b, "Volumes"), "/scratch"));
	json_decref(b);
}

static void test_parse_bytes(void **state)
{
	assert_int_equal(parse_bytes("512"), 512);
	assert_int_equal(parse_bytes("1k"), 1024);
	assert_int_equal(parse_bytes("2GB"), 2LL * 1024 * 1024 * 1024);
	assert_int_equal(parse_bytes("-1"), -1);
	assert_int_equal(parse_bytes("1x"), -1);
	assert_int_equal(parse_bytes(""), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shell_command_env_labels_limits),
		cmocka_unit_test(test_argv_and_image_default),
		cmocka_unit_test(test_networks_and_port_mappings),
		cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_volumes),
		cmocka_unit_test(test_parse_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
