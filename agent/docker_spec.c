/*
 * docker_spec.c -- a Docker task's TaskInfo as the body of POST /containers/create.
 *
 * What Mesos's docker containerizer passes to `docker run`, as Engine API
 * fields:
 *   command    CommandInfo.shell (the default): Entrypoint ["/bin/sh"] and
 *              Cmd ["-c", value]; shell false: Cmd = value (if any) followed
 *              by the arguments, the image's entrypoint kept; no command or
 *              nothing in it: the image's defaults
 *   Env        the variables a process task gets (env.c: MESOS_*, HOST,
 *              PORT*, the task's own) without PATH, the image sets that;
 *              MESOS_SANDBOX is /mnt/mesos/sandbox, where the sandbox is
 *              bind-mounted, which is also the working directory
 *   Labels     task, framework, agent and container ids and the agent's work
 *              dir: an agent only ever adopts or removes its own containers
 *   HostConfig NetworkMode host/bridge/none or the USER network's name
 *              (ContainerInfo.network_infos[0].name), PortBindings and
 *              ExposedPorts from DockerInfo.port_mappings (bridge and user
 *              networks only), CpuShares 1024 x cpus (at least 2), Memory
 *              max(mem, 32 MB), Privileged, Binds from ContainerInfo.volumes
 *              (relative host paths are inside the sandbox, relative
 *              container paths inside /mnt/mesos/sandbox, a docker_volume
 *              source is a named volume)
 *   docker.parameters  the `docker run` options of the table below; any
 *              other one fails the task, as `docker run` would
 */
#include "docker.h"
#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum param_kind {
	P_STRING,       /* "Key": value */
	P_APPEND,       /* "Key": [..., value] */
	P_BOOL,         /* "Key": true unless value is "false" */
	P_INT,          /* "Key": integer */
	P_BYTES,        /* "Key": bytes from 64m, 1g, ... */
	P_MAP,          /* "Key": {k: v} from "k=v" */
	P_ARRAY1,       /* "Key": [value] */
	P_LOG_DRIVER,   /* LogConfig.Type */
	P_LOG_OPT,      /* LogConfig.Config */
	P_ULIMIT,       /* Ulimits: name=soft[:hard] */
	P_TMPFS,        /* Tmpfs: /path[:options] */
	P_DEVICE,       /* Devices: host[:container[:permissions]] */
};

struct param {
	const char *name;       /* the docker run option */
	enum param_kind kind;
	bool host;              /* a HostConfig key, else a Config key */
	const char *key;
};

static const struct param params[] = {
	{ "add-host", P_APPEND, true, "ExtraHosts" },
	{ "cap-add", P_APPEND, true, "CapAdd" },
	{ "cap-drop", P_APPEND, true, "CapDrop" },
	{ "cpu-period", P_INT, true, "CpuPeriod" },
	{ "cpu-quota", P_INT, true, "CpuQuota" },
	{ "cpuset-cpus", P_STRING, true, "CpusetCpus" },
	{ "cpuset-mems", P_STRING, true, "CpusetMems" },
	{ "device", P_DEVICE, true, "Devices" },
	{ "dns", P_APPEND, true, "Dns" },
	{ "dns-option", P_APPEND, true, "DnsOptions" },
	{ "dns-search", P_APPEND, true, "DnsSearch" },
	{ "entrypoint", P_ARRAY1, false, "Entrypoint" },
	{ "env", P_APPEND, false, "Env" },
	{ "group-add", P_APPEND, true, "GroupAdd" },
	{ "hostname", P_STRING, false, "Hostname" },
	{ "init", P_BOOL, true, "Init" },
	{ "ipc", P_STRING, true, "IpcMode" },
	{ "label", P_MAP, false, "Labels" },
	{ "log-driver", P_LOG_DRIVER, true, "LogConfig" },
	{ "log-opt", P_LOG_OPT, true, "LogConfig" },
	{ "memory-reservation", P_BYTES, true, "MemoryReservation" },
	{ "memory-swap", P_BYTES, true, "MemorySwap" },
	{ "oom-kill-disable", P_BOOL, true, "OomKillDisable" },
	{ "oom-score-adj", P_INT, true, "OomScoreAdj" },
	{ "pid", P_STRING, true, "PidMode" },
	{ "pids-limit", P_INT, true, "PidsLimit" },
	{ "read-only", P_BOOL, true, "ReadonlyRootfs" },
	{ "security-opt", P_APPEND, true, "SecurityOpt" },
	{ "shm-size", P_BYTES, true, "ShmSize" },
	{ "stop-signal", P_STRING, false, "StopSignal" },
	{ "sysctl", P_MAP, true, "Sysctls" },
	{ "tmpfs", P_TMPFS, true, "Tmpfs" },
	{ "ulimit", P_ULIMIT, true, "Ulimits" },
	{ "user", P_STRING, false, "User" },
	{ "uts", P_STRING, true, "UTSMode" },
	{ "volume", P_APPEND, true, "Binds" },
	{ "workdir", P_STRING, false, "WorkingDir" },
};

/* "64m" -> bytes; -1 when it is not a size */
static long long parse_bytes(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < 0)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case '\0': return v;
	case 'b': break;
	case 'k': v *= 1024; break;
	case 'm': v *= 1024 * 1024; break;
	case 'g': v *= 1024LL * 1024 * 1024; break;
	default: return -1;
	}
	end++;
	if (*end == 'b' || *end == 'B')
		end++;
	return *end == '\0' ? v : -1;
}

static json_t *object_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_object(v)) {
		v = json_object();
		json_object_set_new(obj, key, v);
	}
	return v;
}

static json_t *array_member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_array(v)) {
		v = json_array();
		json_object_set_new(obj, key, v);
	}
	return v;
}

/* "k=v" into obj[key][k] = v */
static int put_kv(json_t *obj, const char *key, const char *value)
{
	const char *eq = strchr(value, '=');
	char *k;

	if (eq == NULL || eq == value)
		return -1;
	k = xstrndup(value, (size_t)(eq - value));
	json_object_set_new(object_member(obj, key), k, json_string(eq + 1));
	free(k);
	return 0;
}

static int put_ulimit(json_t *host, const char *value)
{
	long long soft, hard;
	char name[64], *end;
	const char *eq = strchr(value, '=');

	if (eq == NULL || eq == value || (size_t)(eq - value) >= sizeof name)
		return -1;
	memcpy(name, value, (size_t)(eq - value));
	name[eq - value] = '\0';
	soft = strtoll(eq + 1, &end, 10);
	hard = soft;
	if (*end == ':')
		hard = strtoll(end + 1, &end, 10);
	if (*end != '\0' || end == eq + 1)
		return -1;
	json_array_append_new(array_member(host, "Ulimits"),
	    json_pack("{s:s, s:I, s:I}", "Name", name, "Soft", (json_int_t)soft,
	    "Hard", (json_int_t)hard));
	return 0;
}

static int put_device(json_t *host, const char *value)
{
	char *copy = xstrdup(value), *save = NULL;
	char *on_host = strtok_r(copy, ":", &save);
	char *in_ctr = strtok_r(NULL, ":", &save);
	char *perm = strtok_r(NULL, ":", &save);

	if (on_host == NULL) {
		free(copy);
		return -1;
	}
	json_array_append_new(array_member(host, "Devices"), json_pack("{s:s, s:s, s:s}",
	    "PathOnHost", on_host, "PathInContainer", in_ctr != NULL ? in_ctr : on_host,
	    "CgroupPermissions", perm != NULL ? perm : "rwm"));
	free(copy);
	return 0;
}

/* one docker.parameters entry; -1 with *cause when it cannot be applied */
static int apply_param(json_t *cfg, json_t *host, const char *name, const char *value,
    char **cause)
{
	const struct param *p = NULL;
	json_t *obj;
	long long n;
	char *end, *path;
	size_t i;

	for (i = 0; i < sizeof params / sizeof params[0] && p == NULL; i++) {
		if (strcmp(params[i].name, name) == 0)
			p = &params[i];
	}
	if (p == NULL) {
		*cause = xasprintf("unsupported docker parameter '%s'", name);
		return -1;
	}
	obj = p->host ? host : cfg;
	switch (p->kind) {
	case P_STRING:
		json_object_set_new(obj, p->key, json_string(value));
		return 0;
	case P_APPEND:
		json_array_append_new(array_member(obj, p->key), json_string(value));
		return 0;
	case P_ARRAY1:
		json_object_set_new(obj, p->key, json_pack("[s]", value));
		return 0;
	case P_BOOL:
		json_object_set_new(obj, p->key, json_boolean(strcmp(value, "false") != 0));
		return 0;
	case P_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			break;
		json_object_set_new(obj, p->key, json_integer((json_int_t)n));
		return 0;
	case P_BYTES:
		if ((n = parse_bytes(value)) < 0)
			break;
		json_object_set_new(obj, p->key, json_integer((json_int_t)n));
		return 0;
	case P_MAP:
		if (put_kv(obj, p->key, value) != 0)
			break;
		return 0;
	case P_LOG_DRIVER:
		json_object_set_new(object_member(obj, p->key), "Type", json_string(value));
		return 0;
	case P_LOG_OPT:
		if (put_kv(object_member(obj, p->key), "Config", value) != 0)
			break;
		return 0;
	case P_ULIMIT:
		if (put_ulimit(obj, value) != 0)
			break;
		return 0;
	case P_TMPFS:
		path = xstrndup(value, strcspn(value, ":"));
		json_object_set_new(object_member(obj, p->key), path,
		    json_string(strchr(value, ':') != NULL ? strchr(value, ':') + 1 : ""));
		free(path);
		return 0;
	case P_DEVICE:
		if (put_device(obj, value) != 0)
			break;
		return 0;
	}
	*cause = xasprintf("invalid value '%s' for docker parameter '%s'", value, name);
	return -1;
}

static void set_command(json_t *cfg, const Mesos__V1__CommandInfo *cmd)
{
	json_t *argv;
	size_t i;

	if (cmd == NULL)
		return;
	if (!cmd->has_shell || cmd->shell) {
		if (cmd->value == NULL || *cmd->value == '\0')
			return;
		json_object_set_new(cfg, "Entrypoint", json_pack("[s]", "/bin/sh"));
		json_object_set_new(cfg, "Cmd", json_pack("[s, s]", "-c", cmd->value));
		return;
	}
	argv = json_array();
	if (cmd->value != NULL && *cmd->value != '\0')
		json_array_append_new(argv, json_string(cmd->value));
	for (i = 0; i < cmd->n_arguments; i++)
		json_array_append_new(argv, json_string(cmd->arguments[i]));
	if (json_array_size(argv) > 0)
		json_object_set_new(cfg, "Cmd", argv);
	else
		json_decref(argv);
}

static json_t *env_array(struct agent_task *t, const char *name)
{
	char **env = agent_task_env(t);
	json_t *arr = json_array();
	size_t i;

	for (i = 0; env[i] != NULL; i++) {
		if (bt_str_has_prefix(env[i], "PATH=") || bt_str_has_prefix(env[i], "MESOS_SANDBOX="))
			continue;
		json_array_append_new(arr, json_string(env[i]));
	}
	json_array_append_new(arr, json_string("MESOS_SANDBOX=" DOCKER_SANDBOX));
	json_array_append_new(arr, json_sprintf("MESOS_CONTAINER_NAME=%s", name));
	agent_strv_free(env);
	return arr;
}

static double scalar(const Mesos__V1__TaskInfo *info, const char *name, bool *found)
{
	double sum = 0;
	size_t i;

	*found = false;
	for (i = 0; i < info->n_resources; i++) {
		const Mesos__V1__Resource *r = info->resources[i];
		if (r->name != NULL && strcmp(r->name, name) == 0 && r->scalar != NULL) {
			sum += r->scalar->value;
			*found = true;
		}
	}
	return sum;
}

static void set_limits(json_t *host, const Mesos__V1__TaskInfo *info)
{
	bool found;
	double cpus = scalar(info, "cpus", &found), mem;
	long long shares, bytes;

	if (found) {
		shares = (long long)(cpus * 1024);
		json_object_set_new(host, "CpuShares", json_integer(shares < 2 ? 2 : shares));
	}
	mem = scalar(info, "mem", &found);
	if (found) {
		bytes = (long long)(mem * 1024 * 1024);
		json_object_set_new(host, "Memory", json_integer(bytes < DOCKER_MIN_MEMORY ?
		    DOCKER_MIN_MEMORY : bytes));
	}
}

static int set_network(json_t *cfg, json_t *host, const Mesos__V1__ContainerInfo *c,
    char **cause)
{
	const Mesos__V1__ContainerInfo__DockerInfo *di = c->docker;
	int net = di->has_network ? (int)di->network : MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__HOST;
	json_t *bindings, *exposed;
	size_t i;

	switch (net) {
	case MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__BRIDGE:
		json_object_set_new(host, "NetworkMode", json_string("bridge"));
		break;
	case MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__NONE:
		json_object_set_new(host, "NetworkMode", json_string("none"));
		break;
	case MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__USER:
		if (c->n_network_infos != 1 || c->network_infos[0]->name == NULL ||
		    *c->network_infos[0]->name == '\0') {
			*cause = xstrdup("a USER network needs exactly one network info with a name");
			return -1;
		}
		json_object_set_new(host, "NetworkMode", json_string(c->network_infos[0]->name));
		break;
	default:
		json_object_set_new(host, "NetworkMode", json_string("host"));
		break;
	}
	if (di->n_port_mappings == 0)
		return 0;
	if (net != MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__BRIDGE &&
	    net != MESOS__V1__CONTAINER_INFO__DOCKER_INFO__NETWORK__USER) {
		*cause = xstrdup("port mappings are only supported for bridge and user-defined "
		    "networks");
		return -1;
	}
	bindings = object_member(host, "PortBindings");
	exposed = object_member(cfg, "ExposedPorts");
	for (i = 0; i < di->n_port_mappings; i++) {
		const Mesos__V1__ContainerInfo__DockerInfo__PortMapping *pm = di->port_mappings[i];
		char *protos = xstrdup(pm->protocol != NULL && *pm->protocol != '\0' ?
		    pm->protocol : "tcp"), *save = NULL, *proto;
		for (proto = strtok_r(protos, ",", &save); proto != NULL;
		    proto = strtok_r(NULL, ",", &save)) {
			char *key = xasprintf("%u/%s", pm->container_port, proto);
			char *hp = pm->host_port != 0 ? xasprintf("%u", pm->host_port) : xstrdup("");
			json_array_append_new(array_member(bindings, key),
			    json_pack("{s:s, s:s}", "HostIp", "", "HostPort", hp));
			json_object_set_new(exposed, key, json_object());
			free(hp);
			free(key);
		}
		free(protos);
	}
	return 0;
}

static void set_volumes(json_t *cfg, json_t *host, const struct agent_task *t)
{
	const Mesos__V1__ContainerInfo *c = t->info->container;
	json_t *binds = array_member(host, "Binds");
	size_t i;

	json_array_append_new(binds, json_sprintf("%s:%s:rw", t->sandbox, DOCKER_SANDBOX));
	for (i = 0; i < c->n_volumes; i++) {
		const Mesos__V1__Volume *v = c->volumes[i];
		const char *mode = v->mode == MESOS__V1__VOLUME__MODE__RO ? "ro" : "rw";
		char *cpath, *hpath = NULL;
		if (v->container_path == NULL || *v->container_path == '\0')
			continue;
		cpath = v->container_path[0] == '/' ? xstrdup(v->container_path) :
		    xasprintf("%s/%s", DOCKER_SANDBOX, v->container_path);
		if (v->host_path != NULL && *v->host_path != '\0')
			hpath = v->host_path[0] == '/' ? xstrdup(v->host_path) :
			    xasprintf("%s/%s", t->sandbox, v->host_path);
		else if (v->source != NULL && v->source->docker_volume != NULL &&
		    v->source->docker_volume->name != NULL)
			hpath = xstrdup(v->source->docker_volume->name);
		if (hpath != NULL)
			json_array_append_new(binds, json_sprintf("%s:%s:%s", hpath, cpath, mode));
		else
			json_object_set_new(object_member(cfg, "Volumes"), cpath, json_object());
		free(hpath);
		free(cpath);
	}
}

static void set_labels(json_t *cfg, const struct agent_docker_task *dt)
{
	const struct agent_task *t = dt->task;
	const struct agent *a = t->agent;
	json_t *labels = object_member(cfg, "Labels");

	json_object_set_new(labels, DOCKER_LABEL_TASK, json_string(t->task_id));
	json_object_set_new(labels, DOCKER_LABEL_FRAMEWORK, json_string(t->framework_id));
	json_object_set_new(labels, DOCKER_LABEL_AGENT,
	    json_string(a->agent_id != NULL ? a->agent_id : ""));
	json_object_set_new(labels, DOCKER_LABEL_WORK_DIR, json_string(a->work_dir));
	json_object_set_new(labels, DOCKER_LABEL_CONTAINER, json_string(t->container_id));
}

json_t *docker_create_body(struct agent_docker_task *dt, char **cause)
{
	struct agent_task *t = dt->task;
	const Mesos__V1__ContainerInfo *c = t->info->container;
	const Mesos__V1__ContainerInfo__DockerInfo *di = c->docker;
	json_t *cfg = json_object(), *host = json_object();
	size_t i;

	json_object_set_new(cfg, "Image", json_string(di->image));
	json_object_set_new(cfg, "WorkingDir", json_string(DOCKER_SANDBOX));
	json_object_set_new(cfg, "Env", env_array(t, dt->name));
	if (c->hostname != NULL && *c->hostname != '\0')
		json_object_set_new(cfg, "Hostname", json_string(c->hostname));
	set_command(cfg, t->info->command);
	set_limits(host, t->info);
	if (di->has_privileged && di->privileged)
		json_object_set_new(host, "Privileged", json_true());
	set_volumes(cfg, host, t);
	if (set_network(cfg, host, c, cause) != 0)
		goto fail;
	for (i = 0; i < di->n_parameters; i++) {
		const Mesos__V1__Parameter *p = di->parameters[i];
		if (p->key == NULL || apply_param(cfg, host, p->key,
		    p->value != NULL ? p->value : "", cause) != 0) {
			if (*cause == NULL)
				*cause = xstrdup("a docker parameter without a key");
			goto fail;
		}
	}
	set_labels(cfg, dt);
	json_object_set_new(cfg, "HostConfig", host);
	return cfg;
fail:
	json_decref(host);
	json_decref(cfg);
	return NULL;
}
