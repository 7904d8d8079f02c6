/*
 * container.c -- the container block of Marathon apps, their ports, and why offers go unused.
 *
 * Normalisation follows Marathon 1.5+ (AppNormalization): the legacy
 * container.docker.network (and ipAddress.networkName) becomes the
 * top-level "networks", container.docker.portMappings moves to
 * container.portMappings, a bridge mapping without hostPort gets 0, a
 * container on a non-host network without portMappings gets one default
 * mapping, and only keys the python marathon client accepts are kept.
 * Legacy NONE becomes the container network named "none" (Docker's own
 * name for "no network"). Values Marathon refuses are 422 details with
 * Marathon's messages; members of the wrong JSON type are 400 details.
 *
 * At launch the app's host ports are one slot per port definition (host
 * networking) or per port mapping with a hostPort: 0 takes any port of the
 * offer, anything else must lie in an offered range. The TaskInfo gets a
 * Mesos ContainerInfo as the docker containerizer reads it, and the task's
 * environment PORT0..n, PORT, PORTS, PORT_<port> and PORT_<NAME> the way
 * Marathon's EnvironmentHelper builds them.
 *
 * Offer statistics answer "why does it wait" in /v2/queue: per app, counters
 * plus the last unused offer of at most LAST_UNUSED agents. The hot path
 * only bumps counters; an offer's JSON snapshot is built once per offer
 * (not per app) when an app first cannot use it, and shared by reference.
 */
#include "relay.h"

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LAST_UNUSED 16                  /* unused offers remembered per app (distinct agents) */

/* ---- errors and member access ---- */

struct cx {
	json_t *type_errs;              /* 400 details */
	json_t *errs;                   /* 422 details */
};

static void add(json_t *list, const char *path, const char *msg)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		if (strcmp(bt_json_string(e, "path"), path) == 0) {
			json_array_append_new(json_object_get(e, "errors"), json_string(msg));
			return;
		}
	}
	json_array_append_new(list, json_pack("{s:s, s:[s]}", "path", path, "errors", msg));
}

static void addf(json_t *list, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void addf(json_t *list, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	add(list, path, msg);
	free(msg);
}

enum ct { C_STRING, C_INT, C_BOOL, C_ARRAY, C_OBJECT };

static bool type_ok(const json_t *v, enum ct t)
{
	switch (t) {
	case C_STRING: return json_is_string(v);
	case C_INT: return json_is_number(v) && json_number_value(v) == floor(json_number_value(v)) &&
	    fabs(json_number_value(v)) <= 2147483647.0;
	case C_BOOL: return json_is_boolean(v);
	case C_ARRAY: return json_is_array(v);
	default: return json_is_object(v);
	}
}

/* obj[key] when present (not null) and of type t; a 400 detail otherwise */
static json_t *member(struct cx *x, const json_t *obj, const char *key, enum ct t, const char *prefix)
{
	static const char *expected[] = { "error.expected.jsstring", "error.expected.jsnumber",
	    "error.expected.jsboolean", "error.expected.jsarray", "error.expected.jsobject" };
	json_t *v = json_object_get(obj, key);
	char *path;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (type_ok(v, t))
		return v;
	path = xasprintf("%s/%s", prefix, key);
	add(x->type_errs, path, expected[t]);
	free(path);
	return NULL;
}

static json_int_t ival(const json_t *v)
{
	return (json_int_t)json_number_value(v);
}

/* ---- networks ---- */

static const char *net_mode(const json_t *def)
{
	const char *mode = bt_json_string(json_array_get(json_object_get(def, "networks"), 0), "mode");

	return mode != NULL ? mode : "host";
}

bool relay_container_host_network(const json_t *def)
{
	return strcmp(net_mode(def), "host") == 0;
}

static json_t *network(const char *mode, const char *name, const json_t *labels)
{
	json_t *n = json_pack("{s:s}", "mode", mode);

	if (name != NULL)
		json_object_set_new(n, "name", json_string(name));
	if (json_object_size(labels) > 0)
		json_object_set_new(n, "labels", json_deep_copy(labels));
	return n;
}

static json_t *canonical_networks(struct cx *x, const json_t *list)
{
	json_t *out = json_array(), *n;
	size_t i;

	json_array_foreach(list, i, n) {
		char *path = xasprintf("/networks(%zu)", i);
		json_t *mode, *name, *labels;
		const char *m;

		if (!json_is_object(n)) {
			add(x->type_errs, path, "error.expected.jsobject");
			free(path);
			continue;
		}
		mode = member(x, n, "mode", C_STRING, path);
		name = member(x, n, "name", C_STRING, path);
		labels = member(x, n, "labels", C_OBJECT, path);
		m = mode ? json_string_value(mode) : "container";
		if (strcmp(m, "host") != 0 && strcmp(m, "container") != 0 &&
		    strcmp(m, "container/bridge") != 0) {
			addf(x->errs, path, "mode must be one of container, container/bridge or host");
			m = "host";
		}
		json_array_append_new(out, network(m, name ? json_string_value(name) : NULL, labels));
		free(path);
	}
	return out;
}

/* Marathon's rules on the canonical list (NetworkValidation, AppValidation) */
static void check_networks(struct cx *x, const json_t *nets)
{
	int host = 0, bridge = 0, container = 0, unnamed = 0;
	bool host_named = false, bridge_named = false, dup = false;
	json_t *n, *m;
	size_t i, j;

	json_array_foreach(nets, i, n) {
		const char *mode = bt_json_string(n, "mode"), *name = bt_json_string(n, "name");
		if (strcmp(mode, "host") == 0) {
			host++;
			host_named = host_named || name != NULL || json_object_get(n, "labels") != NULL;
		} else if (strcmp(mode, "container/bridge") == 0) {
			bridge++;
			bridge_named = bridge_named || name != NULL;
		} else {
			container++;
			unnamed += name == NULL;
		}
		json_array_foreach(nets, j, m)
			if (j < i && name != NULL && bt_json_string(m, "name") != NULL &&
			    strcmp(name, bt_json_string(m, "name")) == 0)
				dup = true;
	}
	if (host_named)
		add(x->errs, "/networks", "Host networks may not have names or labels");
	if (bridge_named)
		add(x->errs, "/networks", "Bridge networks may not have names");
	if (dup || unnamed > 1)
		add(x->errs, "/networks", "Duplicate networks are not allowed");
	if (!((host <= 1 && bridge == 0 && container == 0) || (host == 0 && bridge <= 1 &&
	    container == 0) || (host == 0 && bridge == 0 && container > 0)))
		add(x->errs, "/networks", "May specify a single host network, single bridge network, "
		    "or else 1-to-n container networks");
	if (unnamed > 0)
		add(x->errs, "/networks", "Network name must be specified when container network is "
		    "selected.");
}

/* container.docker.network as BRIDGE/HOST/NONE/USER, or NULL */
static const char *legacy_network(struct cx *x, const json_t *a, bool *given)
{
	static const char *modes[] = { "BRIDGE", "HOST", "NONE", "USER", NULL };
	json_t *c = json_object_get(a, "container"), *v;
	int i;

	v = json_is_object(c) ? json_object_get(json_object_get(c, "docker"), "network") : NULL;
	*given = v != NULL && !json_is_null(v);
	if (!*given)
		return NULL;
	if (!json_is_string(v)) {
		add(x->type_errs, "/container/docker/network", "error.expected.jsstring");
		return NULL;
	}
	for (i = 0; modes[i] != NULL; i++)
		if (strcasecmp(modes[i], json_string_value(v)) == 0)
			return modes[i];
	add(x->errs, "/container/docker/network", "must be one of BRIDGE, HOST, NONE or USER");
	return NULL;
}

/* the legacy forms (docker.network, ipAddress) as canonical networks */
static json_t *legacy_networks(const char *legacy, const json_t *ip)
{
	const char *ipname = bt_json_string(ip, "networkName");
	const json_t *labels = json_object_get(ip, "labels");

	if (!json_is_object(labels))
		labels = NULL;
	if (legacy == NULL || strcmp(legacy, "USER") == 0)
		return json_pack("[o]", network("container", ipname, labels));
	if (strcmp(legacy, "BRIDGE") == 0)
		return json_pack("[o]", network("container/bridge", NULL, labels));
	if (strcmp(legacy, "NONE") == 0)
		return json_pack("[o]", network("container", "none", NULL));
	return json_pack("[{s:s}]", "mode", "host");
}

json_t *relay_container_networks(const json_t *a, json_t *type_errs, json_t *errs)
{
	struct cx x = { type_errs, errs };
	json_t *list = member(&x, a, "networks", C_ARRAY, ""), *out;
	json_t *ip = member(&x, a, "ipAddress", C_OBJECT, "");
	bool given;
	const char *legacy = legacy_network(&x, a, &given);

	if (json_array_size(list) > 0) {
		if (given)
			add(errs, "/", "must not specify both container.docker.network and networks");
		if (ip != NULL)
			add(errs, "/", "must not specify both networks and ipAddress");
		out = canonical_networks(&x, list);
	} else if (legacy != NULL || ip != NULL) {
		out = legacy_networks(legacy, ip);
	} else {
		out = json_pack("[{s:s}]", "mode", "host");
	}
	if (json_array_size(out) == 0)
		json_array_append_new(out, json_pack("{s:s}", "mode", "host"));
	check_networks(&x, out);
	return out;
}

/* ---- port mappings ---- */

static void port_range(struct cx *x, const char *path, const char *key, const json_t *v)
{
	char *p;

	if (v == NULL || (ival(v) >= 0 && ival(v) <= 65535))
		return;
	p = xasprintf("%s/%s", path, key);
	addf(x->errs, p, "got %lld, expected between 0 and 65535", (long long)ival(v));
	free(p);
}

static const char *protocol(struct cx *x, const json_t *v, const char *path)
{
	const char *p = v ? json_string_value(v) : "tcp";
	char *ep;

	if (strcasecmp(p, "tcp") == 0)
		return "tcp";
	if (strcasecmp(p, "udp") == 0)
		return "udp";
	if (strcasecmp(p, "udp,tcp") == 0 || strcasecmp(p, "tcp,udp") == 0)
		return "udp,tcp";
	ep = xasprintf("%s/protocol", path);
	add(x->errs, ep, "protocol must be one of tcp, udp or udp,tcp");
	free(ep);
	return "tcp";
}

static json_t *default_mapping(bool bridge)
{
	json_t *m = json_pack("{s:i, s:i, s:s, s:{}}", "containerPort", 0, "servicePort", 0,
	    "protocol", "tcp", "labels");

	if (bridge)
		json_object_set_new(m, "hostPort", json_integer(0));
	return m;
}

static json_t *port_mapping(struct cx *x, const json_t *in, const char *src, const char *dst,
    bool bridge, json_t *names)
{
	json_t *cp, *hp, *sp, *name, *labels, *out;

	if (!json_is_object(in)) {
		add(x->type_errs, src, "error.expected.jsobject");
		return NULL;
	}
	cp = member(x, in, "containerPort", C_INT, src);
	hp = member(x, in, "hostPort", C_INT, src);
	sp = member(x, in, "servicePort", C_INT, src);
	name = member(x, in, "name", C_STRING, src);
	labels = member(x, in, "labels", C_OBJECT, src);
	port_range(x, dst, "containerPort", cp);
	port_range(x, dst, "hostPort", hp);
	port_range(x, dst, "servicePort", sp);
	out = json_pack("{s:I, s:I, s:s, s:o}", "containerPort", cp ? ival(cp) : 0,
	    "servicePort", sp ? ival(sp) : 0,
	    "protocol", protocol(x, member(x, in, "protocol", C_STRING, src), dst),
	    "labels", labels ? json_deep_copy(labels) : json_object());
	if (hp != NULL || bridge)
		json_object_set_new(out, "hostPort", json_integer(hp ? ival(hp) : 0));
	if (name != NULL) {
		if (json_object_get(names, json_string_value(name)) != NULL)
			add(x->errs, "/container/portMappings", "Port names must be unique.");
		json_object_set_new(names, json_string_value(name), json_true());
		json_object_set(out, "name", name);
	}
	return out;
}

static json_t *port_mappings(struct cx *x, const json_t *list, const char *src, bool bridge)
{
	json_t *out = json_array(), *names = json_object(), *item, *m;
	size_t i;

	json_array_foreach(list, i, item) {
		char *sp = xasprintf("%s(%zu)", src, i);
		char *dp = xasprintf("/container/portMappings(%zu)", i);
		if ((m = port_mapping(x, item, sp, dp, bridge, names)) != NULL)
			json_array_append_new(out, m);
		free(sp);
		free(dp);
	}
	json_decref(names);
	return out;
}

/* the canonical portMappings, or NULL for host networking */
static json_t *select_mappings(struct cx *x, const json_t *in, const json_t *docker,
    const json_t *nets, size_t npd)
{
	json_t *cpm = member(x, in, "portMappings", C_ARRAY, "/container");
	json_t *dpm = docker ? member(x, docker, "portMappings", C_ARRAY, "/container/docker") : NULL;
	const json_t *src = cpm ? cpm : dpm;
	bool bridge = strcmp(bt_json_string(json_array_get(nets, 0), "mode"), "container/bridge") == 0;
	json_t *out;

	if (cpm != NULL && json_array_size(dpm) > 0)
		add(x->errs, "/", "cannot specify both portMappings and docker.portMappings");
	if (strcmp(bt_json_string(json_array_get(nets, 0), "mode"), "host") == 0) {
		if (json_array_size(src) > 0)
			add(x->errs, "/", "portMappings are not allowed with host-networking");
		return NULL;
	}
	if (src != NULL) {
		out = port_mappings(x, src, cpm ? "/container/portMappings" :
		    "/container/docker/portMappings", bridge);
	} else {
		out = json_array();
		json_array_append_new(out, default_mapping(bridge));
	}
	while (json_array_size(out) < npd)
		json_array_append_new(out, default_mapping(bridge));
	return out;
}

/* ---- docker, volumes ---- */

static json_t *docker_parameters(struct cx *x, const json_t *docker)
{
	json_t *list = member(x, docker, "parameters", C_ARRAY, "/container/docker"), *out = json_array();
	json_t *p;
	size_t i;

	json_array_foreach(list, i, p) {
		char *path = xasprintf("/container/docker/parameters(%zu)", i), *kp, *vp;
		json_t *k, *v;

		if (!json_is_object(p)) {
			add(x->type_errs, path, "error.expected.jsobject");
			free(path);
			continue;
		}
		kp = xasprintf("%s/key", path);
		vp = xasprintf("%s/value", path);
		k = member(x, p, "key", C_STRING, path);
		v = member(x, p, "value", C_STRING, path);
		if (json_object_get(p, "key") == NULL)
			add(x->type_errs, kp, "error.path.missing");
		else if (k != NULL && json_string_length(k) == 0)
			add(x->type_errs, kp, "error.minLength");
		if (json_object_get(p, "value") == NULL)
			add(x->type_errs, vp, "error.path.missing");
		if (k != NULL && v != NULL)
			json_array_append_new(out, json_pack("{s:O, s:O}", "key", k, "value", v));
		free(kp);
		free(vp);
		free(path);
	}
	return out;
}

static json_t *docker_block(struct cx *x, const json_t *docker, bool is_docker)
{
	json_t *image = member(x, docker, "image", C_STRING, "/container/docker");
	json_t *fpi = member(x, docker, "forcePullImage", C_BOOL, "/container/docker");
	json_t *priv = member(x, docker, "privileged", C_BOOL, "/container/docker");
	json_t *params = docker_parameters(x, docker), *out;

	if (image == NULL || json_string_length(image) == 0)
		add(x->errs, "/container/docker/image", "must not be empty");
	out = json_pack("{s:s, s:b}", "image", image ? json_string_value(image) : "",
	    "forcePullImage", fpi && json_is_true(fpi));
	if (json_object_get(docker, "credential") != NULL)
		add(x->errs, "/container/docker/credential", "must be empty");
	if (is_docker) {
		json_object_set_new(out, "privileged", json_boolean(priv && json_is_true(priv)));
		json_object_set_new(out, "parameters", params);
		if (json_object_get(docker, "pullConfig") != NULL)
			add(x->errs, "/container/docker/pullConfig",
			    "pullConfig is not supported with Docker containerizer");
		return out;
	}
	if (json_array_size(params) > 0)
		add(x->errs, "/container/docker/parameters", "must be empty");
	if (json_array_size(json_object_get(docker, "portMappings")) > 0)
		add(x->errs, "/container/docker/portMappings", "must be empty");
	if (json_is_string(json_object_get(docker, "network")))
		add(x->errs, "/container/docker/network", "must be empty");
	json_decref(params);
	return out;
}

static json_t *one_volume(struct cx *x, const json_t *v, const char *path)
{
	json_t *cp = member(x, v, "containerPath", C_STRING, path);
	json_t *hp = member(x, v, "hostPath", C_STRING, path);
	json_t *mode = member(x, v, "mode", C_STRING, path);
	const char *m = mode ? json_string_value(mode) : "RW";
	char *p;

	if (json_object_get(v, "persistent") || json_object_get(v, "external") ||
	    json_object_get(v, "secret")) {
		add(x->errs, path, "only host volumes (containerPath, hostPath, mode) are supported");
		return NULL;
	}
	if (cp == NULL || json_string_length(cp) == 0) {
		p = xasprintf("%s/containerPath", path);
		add(x->errs, p, "must not be empty");
		free(p);
	}
	if (hp == NULL || json_string_length(hp) == 0) {
		p = xasprintf("%s/hostPath", path);
		add(x->errs, p, "must not be empty");
		free(p);
	}
	if (strcasecmp(m, "RO") != 0 && strcasecmp(m, "RW") != 0) {
		p = xasprintf("%s/mode", path);
		add(x->errs, p, "must be one of RO or RW");
		free(p);
	}
	return json_pack("{s:s, s:s, s:s}", "containerPath", cp ? json_string_value(cp) : "",
	    "hostPath", hp ? json_string_value(hp) : "", "mode",
	    strcasecmp(m, "RO") == 0 ? "RO" : "RW");
}

static json_t *volumes(struct cx *x, const json_t *in)
{
	json_t *list = member(x, in, "volumes", C_ARRAY, "/container"), *out = json_array(), *v, *o;
	size_t i;

	json_array_foreach(list, i, v) {
		char *path = xasprintf("/container/volumes(%zu)", i);
		if (!json_is_object(v))
			add(x->type_errs, path, "error.expected.jsobject");
		else if ((o = one_volume(x, v, path)) != NULL)
			json_array_append_new(out, o);
		free(path);
	}
	return out;
}

static const char *engine_type(struct cx *x, const json_t *in)
{
	json_t *t = member(x, in, "type", C_STRING, "/container");

	if (t == NULL || strcasecmp(json_string_value(t), "DOCKER") == 0)
		return "DOCKER";
	if (strcasecmp(json_string_value(t), "MESOS") == 0)
		return "MESOS";
	add(x->errs, "/container/type", "must be one of DOCKER or MESOS");
	return "DOCKER";
}

static void engine_rules(struct cx *x, const json_t *a, const json_t *nets, bool is_docker)
{
	json_t *n, *gpus = json_object_get(a, "gpus");
	size_t i;
	int container = 0;

	json_array_foreach(nets, i, n)
		container += strcmp(bt_json_string(n, "mode"), "container") == 0;
	if (is_docker && container > 1)
		add(x->errs, "/", "may only specify a single container network when using the Docker "
		    "container engine");
	if (is_docker && json_is_number(gpus) && json_number_value(gpus) > 0)
		add(x->errs, "/", "GPU resources only work with the Mesos containerizer");
}

json_t *relay_container_normalize(const json_t *a, const json_t *nets, size_t npd,
    json_t *type_errs, json_t *errs)
{
	struct cx x = { type_errs, errs };
	json_t *in = member(&x, a, "container", C_OBJECT, ""), *out, *docker, *pms;
	const char *type;

	if (in == NULL) {
		if (strcmp(bt_json_string(json_array_get(nets, 0), "mode"), "host") == 0)
			return NULL;
		/* a non-host network without a container: an empty Mesos container */
		in = json_pack("{s:{s:s}}", "container", "type", "MESOS");
		out = relay_container_normalize(in, nets, npd, type_errs, errs);
		json_decref(in);
		return out;
	}
	type = engine_type(&x, in);
	docker = member(&x, in, "docker", C_OBJECT, "/container");
	out = json_pack("{s:s}", "type", type);
	if (docker != NULL)
		json_object_set_new(out, "docker", docker_block(&x, docker, strcmp(type, "DOCKER") == 0));
	else if (strcmp(type, "DOCKER") == 0)
		add(errs, "/container/docker/image", "must not be empty");
	if ((pms = select_mappings(&x, in, docker, nets, npd)) != NULL)
		json_object_set_new(out, "portMappings", pms);
	json_object_set_new(out, "volumes", volumes(&x, in));
	engine_rules(&x, a, nets, strcmp(type, "DOCKER") == 0);
	return out;
}

/* ---- ports of tasks ---- */

/* the port definitions (host networking) or port mappings of def */
static json_t *port_list(const json_t *def, bool *host)
{
	*host = relay_container_host_network(def);
	if (*host)
		return json_object_get(def, "portDefinitions");
	return json_object_get(json_object_get(def, "container"), "portMappings");
}

uint64_t *relay_container_host_ports(const json_t *def, size_t *n)
{
	bool host, require = json_is_true(json_object_get(def, "requirePorts"));
	json_t *list = port_list(def, &host), *p, *hp;
	uint64_t *out = xcalloc(json_array_size(list) + 1, sizeof *out);
	size_t i;

	*n = 0;
	json_array_foreach(list, i, p) {
		if (host) {
			out[(*n)++] = require ? (uint64_t)json_integer_value(json_object_get(p, "port")) : 0;
		} else if ((hp = json_object_get(p, "hostPort")) != NULL) {
			out[(*n)++] = (uint64_t)json_integer_value(hp);
		}
	}
	return out;
}

json_t *relay_container_service_ports(const json_t *def)
{
	bool host;
	json_t *list = port_list(def, &host), *out = json_array(), *p;
	size_t i;

	json_array_foreach(list, i, p)
		json_array_append(out, json_object_get(p, host ? "port" : "servicePort"));
	return out;
}

static void env_port(json_t *env, const char *prefix, const char *suffix, uint64_t port)
{
	char name[160], value[24];
	char *p;

	snprintf(name, sizeof name, "%s%s", prefix, suffix);
	for (p = name + strlen(prefix); *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	snprintf(value, sizeof value, "%llu", (unsigned long long)port);
	json_object_set_new(env, name, json_string(value));
}

static void env_port_n(json_t *env, const char *prefix, uint64_t n, uint64_t port)
{
	char num[24];

	snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	env_port(env, prefix, num, port);
}

/*
 * PORT<i> is the host port of slot i (a mapping without one: its container
 * port), PORT_<requested> the host port of each requested port (the
 * service port of a definition, the container port of a mapping; the host
 * port itself when that is 0), PORT_<NAME> the same by name, PORT the
 * first host port and PORTS all of them.
 */
void relay_container_port_env(const struct relay_app *app, const uint64_t *ports, size_t n,
    json_t *env)
{
	bool host;
	json_t *list = port_list(app->def, &host), *p;
	size_t i, k = 0, len = 0;
	char all[24 * 64 + 1];

	all[0] = '\0';
	json_array_foreach(list, i, p) {
		const char *name = bt_json_string(p, "name");
		uint64_t req = (uint64_t)json_integer_value(json_object_get(p, host ? "port" :
		    "containerPort"));
		if ((host || json_object_get(p, "hostPort") != NULL) && k < n) {
			uint64_t eff = ports[k++];
			env_port_n(env, "PORT", i, eff);
			env_port_n(env, "PORT_", req ? req : eff, eff);
			if (name != NULL)
				env_port(env, "PORT_", name, eff);
			if (len + 24 < sizeof all)
				len += (size_t)snprintf(all + len, sizeof all - len, "%s%llu",
				    len ? "," : "", (unsigned long long)eff);
			if (k == 1)
				env_port(env, "PORT", "", eff);
		} else if (req != 0) {
			env_port_n(env, "PORT", i, req);
			env_port_n(env, "PORT_", req, req);
			if (name != NULL)
				env_port(env, "PORT_", name, req);
		}
	}
	if (json_array_size(list) > 0)
		json_object_set_new(env, "PORTS", json_string(all));
}

/* ---- TaskInfo ---- */

json_t *relay_labels_pb(const json_t *labels)
{
	json_t *list = json_array(), *v;
	const char *k;

	json_object_foreach((json_t *)labels, k, v)
		json_array_append_new(list, json_pack("{s:s, s:O}", "key", k, "value", v));
	return json_pack("{s:o}", "labels", list);
}

static json_t *network_infos(const json_t *def)
{
	json_t *out = json_array(), *n;
	size_t i;

	json_array_foreach(json_object_get(def, "networks"), i, n) {
		json_t *ni;
		if (strcmp(bt_json_string(n, "mode"), "container") != 0)
			continue;
		ni = json_pack("{s:s}", "name", bt_json_string(n, "name"));
		if (json_object_get(n, "labels") != NULL)
			json_object_set_new(ni, "labels", relay_labels_pb(json_object_get(n, "labels")));
		json_array_append_new(out, ni);
	}
	return out;
}

/* HOST, BRIDGE, NONE (the container network "none") or USER */
static const char *docker_network(const json_t *def)
{
	const char *mode = net_mode(def);
	const json_t *nets = json_object_get(def, "networks");

	if (strcmp(mode, "host") == 0)
		return "HOST";
	if (strcmp(mode, "container/bridge") == 0)
		return "BRIDGE";
	if (json_array_size(nets) == 1 && bt_json_string(json_array_get(nets, 0), "name") != NULL &&
	    strcmp(bt_json_string(json_array_get(nets, 0), "name"), "none") == 0)
		return "NONE";
	return "USER";
}

static void add_mapping(json_t *list, uint64_t host, json_int_t cport, const char *proto)
{
	json_array_append_new(list, json_pack("{s:I, s:I, s:s}", "host_port", (json_int_t)host,
	    "container_port", cport ? cport : (json_int_t)host, "protocol", proto));
}

/* docker.port_mappings: one per mapping with a host port, "udp,tcp" as two */
static json_t *docker_port_mappings(const json_t *def, const uint64_t *ports, size_t n)
{
	json_t *out = json_array(), *pm;
	size_t i, k = 0;

	json_array_foreach(json_object_get(json_object_get(def, "container"), "portMappings"), i, pm) {
		const char *proto = bt_json_string(pm, "protocol");
		json_int_t cport = json_integer_value(json_object_get(pm, "containerPort"));
		if (json_object_get(pm, "hostPort") == NULL || k >= n)
			continue;
		if (proto != NULL && strcmp(proto, "udp,tcp") == 0) {
			add_mapping(out, ports[k], cport, "tcp");
			add_mapping(out, ports[k], cport, "udp");
		} else {
			add_mapping(out, ports[k], cport, proto ? proto : "tcp");
		}
		k++;
	}
	return out;
}

static json_t *volumes_pb(const json_t *c)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(json_object_get(c, "volumes"), i, v) {
		const char *cp = bt_json_string(v, "containerPath"), *hp = bt_json_string(v, "hostPath");
		const char *mode = bt_json_string(v, "mode");
		if (cp == NULL || hp == NULL)
			continue;
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "container_path", cp,
		    "host_path", hp, "mode", mode != NULL && strcmp(mode, "RO") == 0 ? "RO" : "RW"));
	}
	return out;
}

json_t *relay_container_info(const struct relay_app *app, const uint64_t *ports, size_t n)
{
	const json_t *c = json_object_get(app->def, "container"), *docker, *p;
	const char *image, *net;
	json_t *out, *d, *params;
	size_t i;

	if (c == NULL)
		return NULL;
	docker = json_object_get(c, "docker");
	image = bt_json_string(docker, "image");
	out = json_pack("{s:s, s:o}", "type", bt_json_string(c, "type"), "volumes", volumes_pb(c));
	if (!relay_container_host_network(app->def) && strcmp(docker_network(app->def), "NONE") != 0)
		json_object_set_new(out, "network_infos", network_infos(app->def));
	if (strcmp(bt_json_string(c, "type"), "MESOS") == 0) {
		if (image != NULL)
			json_object_set_new(out, "mesos", json_pack("{s:{s:s, s:{s:s}, s:b}}", "image",
			    "type", "DOCKER", "docker", "name", image, "cached",
			    !json_is_true(json_object_get(docker, "forcePullImage"))));
		return out;
	}
	net = docker_network(app->def);
	params = json_array();
	json_array_foreach(json_object_get(docker, "parameters"), i, p)
		json_array_append_new(params, json_pack("{s:O, s:O}", "key", json_object_get(p, "key"),
		    "value", json_object_get(p, "value")));
	d = json_pack("{s:s, s:s, s:b, s:b, s:o}", "image", image ? image : "", "network", net,
	    "privileged", json_is_true(json_object_get(docker, "privileged")),
	    "force_pull_image", json_is_true(json_object_get(docker, "forcePullImage")),
	    "parameters", params);
	if (strcmp(net, "BRIDGE") == 0 || strcmp(net, "USER") == 0)
		json_object_set_new(d, "port_mappings", docker_port_mappings(app->def, ports, n));
	json_object_set_new(out, "docker", d);
	return out;
}

/* Docker runs args after the image's entrypoint: no command value of its own */
void relay_container_command(const struct relay_app *app, json_t *cmdinfo)
{
	const char *type = bt_json_string(json_object_get(app->def, "container"), "type");

	if (type != NULL && strcmp(type, "DOCKER") == 0 && bt_json_string(app->def, "cmd") == NULL)
		json_object_del(cmdinfo, "value");
}

/* ---- offer statistics ---- */

static const char *const reject_names[RELAY_NREJECT] = {
	"UnfulfilledRole", "UnfulfilledConstraint", "NoCorrespondingReservationFound",
	"AgentMaintenance", "InsufficientCpus", "InsufficientMemory", "InsufficientDisk",
	"InsufficientGpus", "InsufficientPorts", "DeclinedScarceResources",
};

struct unused_offer {
	uint64_t agent_hash;            /* FNV-1a of the agent id: most lookups stop here */
	char agent_id[128];
	json_t *offer;                  /* shared snapshot */
	double at;
	unsigned reasons;               /* 1 << enum relay_reject */
};

struct relay_offer_stats {
	unsigned long processed, unused;
	unsigned long attempt[RELAY_NREJECT];   /* first reason of each unused offer */
	double last_used_at, last_unused_at;
	struct unused_offer last[LAST_UNUSED];
	size_t nlast;
};

static json_t *snapshot;                /* JSON of the offer most recently left unused */
static char snapshot_id[128];

static json_t *ranges_json(const Mesos__V1__Value__Ranges *r)
{
	json_t *out = json_array();
	size_t i;

	for (i = 0; r != NULL && i < r->n_range; i++)
		json_array_append_new(out, json_pack("{s:I, s:I}", "begin", (json_int_t)r->range[i]->begin,
		    "end", (json_int_t)r->range[i]->end));
	return out;
}

static json_t *set_json(const Mesos__V1__Value__Set *s)
{
	json_t *out = json_array();
	size_t i;

	for (i = 0; s != NULL && i < s->n_item; i++)
		json_array_append_new(out, json_string(s->item[i]));
	return out;
}

const char *relay_resource_role(const Mesos__V1__Resource *res)
{
	if (res->n_reservations > 0 && res->reservations[res->n_reservations - 1]->role != NULL)
		return res->reservations[res->n_reservations - 1]->role;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	/* Resource.role is deprecated in Mesos but still how unrefined roles travel */
	return res->role != NULL ? res->role : "*";
#pragma GCC diagnostic pop
}

static void value_json(json_t *o, int type, const Mesos__V1__Value__Scalar *scalar,
    const Mesos__V1__Value__Ranges *ranges, const Mesos__V1__Value__Set *set)
{
	if (type == MESOS__V1__VALUE__TYPE__SCALAR && scalar != NULL)
		json_object_set_new(o, "scalar", json_real(scalar->value));
	else if (type == MESOS__V1__VALUE__TYPE__RANGES)
		json_object_set_new(o, "ranges", ranges_json(ranges));
	else if (type == MESOS__V1__VALUE__TYPE__SET)
		json_object_set_new(o, "set", set_json(set));
}

static json_t *offer_json(const Mesos__V1__Offer *o)
{
	json_t *res = json_array(), *attrs = json_array(), *j;
	size_t i;

	for (i = 0; i < o->n_resources; i++) {
		const Mesos__V1__Resource *r = o->resources[i];
		j = json_pack("{s:s, s:s}", "name", r->name, "role", relay_resource_role(r));
		value_json(j, r->type, r->scalar, r->ranges, r->set);
		json_array_append_new(res, j);
	}
	for (i = 0; i < o->n_attributes; i++) {
		const Mesos__V1__Attribute *a = o->attributes[i];
		j = json_pack("{s:s}", "name", a->name);
		value_json(j, a->type, a->scalar, a->ranges, a->set);
		if (a->type == MESOS__V1__VALUE__TYPE__TEXT && a->text != NULL && a->text->value)
			json_object_set_new(j, "text", json_string(a->text->value));
		json_array_append_new(attrs, j);
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", o->id->value, "agentId",
	    o->agent_id->value, "hostname", o->hostname ? o->hostname : "", "resources", res,
	    "attributes", attrs);
}

/* the offer's snapshot, built once per offer however many apps leave it unused */
static json_t *offer_snapshot(const Mesos__V1__Offer *o)
{
	if (snapshot == NULL || strncmp(snapshot_id, o->id->value, sizeof snapshot_id) != 0) {
		json_decref(snapshot);
		snapshot = offer_json(o);
		snprintf(snapshot_id, sizeof snapshot_id, "%s", o->id->value);
	}
	return snapshot;
}

static struct relay_offer_stats *stats(struct relay_app *app)
{
	if (app->offer_stats == NULL)
		app->offer_stats = xcalloc(1, sizeof *app->offer_stats);
	return app->offer_stats;
}

void relay_offer_stats_used(struct relay_app *app, double now)
{
	struct relay_offer_stats *s = stats(app);

	s->processed++;
	s->last_used_at = now;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int first_reason(unsigned reasons)
{
	int i;

	for (i = 0; i < RELAY_NREJECT; i++)
		if (reasons & (1u << i))
			return i;
	return -1;
}

void relay_offer_stats_unused(struct relay_app *app, const Mesos__V1__Offer *o, unsigned reasons,
    double now)
{
	struct relay_offer_stats *s = stats(app);
	struct unused_offer *u = NULL;
	int first = first_reason(reasons);
	uint64_t h = fnv1a(o->agent_id->value);
	size_t i;

	s->processed++;
	s->unused++;
	s->last_unused_at = now;
	if (first >= 0)
		s->attempt[first]++;
	for (i = 0; i < s->nlast && u == NULL; i++)
		if (s->last[i].agent_hash == h &&
		    strncmp(s->last[i].agent_id, o->agent_id->value, sizeof u->agent_id - 1) == 0)
			u = &s->last[i];
	if (u == NULL && s->nlast < LAST_UNUSED)
		u = &s->last[s->nlast++];
	if (u == NULL) {                        /* all taken: the oldest goes */
		u = &s->last[0];
		for (i = 1; i < s->nlast; i++)
			if (s->last[i].at < u->at)
				u = &s->last[i];
	}
	if (u->agent_hash != h || strncmp(u->agent_id, o->agent_id->value, sizeof u->agent_id - 1)) {
		size_t n = strnlen(o->agent_id->value, sizeof u->agent_id - 1);
		memcpy(u->agent_id, o->agent_id->value, n);
		u->agent_id[n] = '\0';
		u->agent_hash = h;
	}
	if (u->offer != snapshot || snapshot == NULL ||
	    strncmp(snapshot_id, o->id->value, sizeof snapshot_id) != 0) {
		json_decref(u->offer);
		u->offer = json_incref(offer_snapshot(o));
	}
	u->at = now;
	u->reasons = reasons;
}

void relay_offer_stats_free(struct relay_offer_stats *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nlast; i++)
		json_decref(s->last[i].offer);
	free(s);
}

void relay_offer_stats_reset(struct relay_app *app)
{
	relay_offer_stats_free(app->offer_stats);
	app->offer_stats = NULL;
}

static json_t *iso(double t)
{
	char buf[32];

	bt_time_iso8601(t, buf);
	return json_string(buf);
}

/* Marathon's funnel: each reason with the offers it declined out of those that reached it */
static json_t *funnel(const unsigned long *declined, unsigned long processed)
{
	json_t *out = json_array();
	int i;

	for (i = 0; i < RELAY_NREJECT; i++) {
		json_array_append_new(out, json_pack("{s:s, s:I, s:I}", "reason", reject_names[i],
		    "declined", (json_int_t)declined[i], "processed", (json_int_t)processed));
		processed = processed > declined[i] ? processed - declined[i] : 0;
	}
	return out;
}

json_t *relay_offer_stats_json(const struct relay_app *app)
{
	static const struct relay_offer_stats none;
	const struct relay_offer_stats *s = app->offer_stats ? app->offer_stats : &none;
	unsigned long last[RELAY_NREJECT] = { 0 };
	json_t *out;
	size_t i;

	for (i = 0; i < s->nlast; i++)
		if (first_reason(s->last[i].reasons) >= 0)
			last[first_reason(s->last[i].reasons)]++;
	out = json_pack("{s:I, s:I, s:o, s:o}", "processedOffersCount", (json_int_t)s->processed,
	    "unusedOffersCount", (json_int_t)s->unused,
	    "rejectSummaryLastOffers", funnel(last, s->nlast),
	    "rejectSummaryLaunchAttempt", funnel(s->attempt, s->processed));
	if (s->last_unused_at > 0)
		json_object_set_new(out, "lastUnusedOfferAt", iso(s->last_unused_at));
	if (s->last_used_at > 0)
		json_object_set_new(out, "lastUsedOfferAt", iso(s->last_used_at));
	return out;
}

static int by_time(const void *a, const void *b)
{
	const struct unused_offer *x = *(const struct unused_offer *const *)a;
	const struct unused_offer *y = *(const struct unused_offer *const *)b;

	return x->at < y->at ? -1 : x->at > y->at;
}

json_t *relay_offer_stats_unused_json(const struct relay_app *app)
{
	const struct relay_offer_stats *s = app->offer_stats;
	const struct unused_offer *order[LAST_UNUSED];
	json_t *out = json_array(), *reasons;
	size_t i;
	int k;

	for (i = 0; s != NULL && i < s->nlast; i++)
		order[i] = &s->last[i];
	if (s != NULL)
		qsort(order, s->nlast, sizeof order[0], by_time);
	for (i = 0; s != NULL && i < s->nlast; i++) {
		reasons = json_array();
		for (k = 0; k < RELAY_NREJECT; k++)
			if (order[i]->reasons & (1u << k))
				json_array_append_new(reasons, json_string(reject_names[k]));
		json_array_append_new(out, json_pack("{s:O, s:o, s:o}", "offer", order[i]->offer,
		    "timestamp", iso(order[i]->at), "reason", reasons));
	}
	return out;
}

/* ?embed=lastUnusedOffers: every queue item gets the app's last unused offers */
void relay_queue_embed(struct relay *r, json_t *queue, const struct evkeyvalq *q)
{
	const struct evkeyval *kv;
	json_t *item;
	bool wanted = false;
	size_t i;

	TAILQ_FOREACH(kv, q, next)
		wanted = wanted || (strcmp(kv->key, "embed") == 0 &&
		    strcmp(kv->value, "lastUnusedOffers") == 0);
	if (!wanted)
		return;
	json_array_foreach(json_object_get(queue, "queue"), i, item) {
		struct relay_app *app = relay_app_find(r, bt_json_string(json_object_get(item, "app"),
		    "id"));
		json_object_set_new(item, "lastUnusedOffers", app ? relay_offer_stats_unused_json(app) :
		    json_array());
	}
}
