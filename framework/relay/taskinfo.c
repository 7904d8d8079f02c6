/*
 * taskinfo.c -- the TaskInfos relay launches, built on a template per app.
 *
 * Every task of an app carries the same command, environment, labels,
 * container and health check but for a few things: its id, its agent, its
 * resources (role and host ports), and the variables HOST, MESOS_TASK_ID
 * and PORT0... So the TaskInfo is written out once per app version as
 * Mesos JSON (the readable part below), turned into protobuf once, and
 * each launch is a small struct that points into that template and holds
 * only what is its own. Packing the ACCEPT call (offers.c) reads through
 * the pointers; nothing of the template is copied per task.
 *
 * Two parts depend on the task's host ports: the container's port
 * mappings and the health check's port. An app that has host ports and
 * either of them gets those two built per task from JSON (the slow path);
 * every other app launches from the template alone.
 *
 * The app's own `env` wins over every variable relay sets, as in Marathon:
 * a per-task variable whose name the app's env sets is left out.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "pbjson.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_task_template {
	char *version;                  /* the app version it was built for */
	Mesos__V1__TaskInfo *ti;        /* unpacked; task_id and agent_id are placeholders */
	json_t *app_env;                /* the app's own env (borrowed from its def) */
	bool port_parts;                /* container and health check are built per task */
};

struct relay_launch {
	Mesos__V1__TaskInfo ti;
	Mesos__V1__TaskID task_id;
	Mesos__V1__AgentID agent_id;
	Mesos__V1__CommandInfo command;
	Mesos__V1__Environment env;
	Mesos__V1__Environment__Variable **vars;        /* the template's, then own */
	Mesos__V1__Environment__Variable *own;
	json_t *port_env;               /* names and values of the port variables */
	Mesos__V1__Resource res[4], *resp[4];
	Mesos__V1__Value__Scalar scalar[3];
	Mesos__V1__Value__Ranges ranges;
	Mesos__V1__Value__Range *range, **rangep;
	Mesos__V1__Resource__AllocationInfo alloc;
	ProtobufCMessage *port_parts;   /* a TaskInfo holding the per-task container and check */
};

/* ---- the template, as Mesos JSON ---- */

/* a label key as Marathon puts it in a name: upper case, each run of other characters one '_' */
static char *env_key(const char *key)
{
	char *s = xmalloc(strlen(key) + 1), *p = s;
	size_t i;

	for (i = 0; key[i] != '\0'; i++) {
		if (isalnum((unsigned char)key[i]) || key[i] == '_')
			*p++ = (char)toupper((unsigned char)key[i]);
		else if (i == 0 || isalnum((unsigned char)key[i - 1]) || key[i - 1] == '_')
			*p++ = '_';
	}
	*p = '\0';
	return s;
}

static void setenv_j(json_t *env, const char *name, const char *value)
{
	json_object_set_new(env, name, json_string(value));
}

/* a resource as Marathon writes it, with Java's Double.toString: "0.1", "128.0" */
static void setenv_double(json_t *env, const char *name, double v)
{
	char buf[64];
	int prec;

	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (strpbrk(buf, ".e") == NULL)
		strcat(buf, ".0");
	setenv_j(env, name, buf);
}

/* MARATHON_APP_LABELS and MARATHON_APP_LABEL_<KEY>, leaving out what is too long (512) */
static void label_env(const struct relay_app *app, json_t *env)
{
	json_t *v;
	const char *k;
	char *keys = xstrdup(""), *tmp, *key, *name;

	json_object_foreach(json_object_get(app->def, "labels"), k, v) {
		if (strlen(k) >= 512 - strlen("MARATHON_APP_LABEL_") || json_string_length(v) >= 512)
			continue;
		key = env_key(k);
		name = xasprintf("MARATHON_APP_LABEL_%s", key);
		setenv_j(env, name, json_string_value(v));
		tmp = xasprintf("%s%s%s", keys, keys[0] ? " " : "", key);
		free(keys);
		keys = tmp;
		free(name);
		free(key);
	}
	setenv_j(env, "MARATHON_APP_LABELS", keys);
	free(keys);
}

/* the variables every task of the app has: Marathon's MARATHON_APP_*, then the app's env */
static json_t *app_environment(const struct relay_app *app)
{
	json_t *env = json_object(), *vars = json_array(), *v;
	json_t *docker = json_object_get(json_object_get(app->def, "container"), "docker");
	const char *k;
	char gpus[32];

	if (app->nports == 0)
		relay_container_port_env(app, NULL, 0, env);
	setenv_j(env, "MARATHON_APP_ID", app->id);
	setenv_j(env, "MARATHON_APP_VERSION", app->version);
	setenv_double(env, "MARATHON_APP_RESOURCE_CPUS", app->cpus);
	setenv_double(env, "MARATHON_APP_RESOURCE_MEM", app->mem);
	setenv_double(env, "MARATHON_APP_RESOURCE_DISK", app->disk);
	snprintf(gpus, sizeof gpus, "%lld",
	    (long long)json_integer_value(json_object_get(app->def, "gpus")));
	setenv_j(env, "MARATHON_APP_RESOURCE_GPUS", gpus);
	if (bt_json_string(docker, "image") != NULL)
		setenv_j(env, "MARATHON_APP_DOCKER_IMAGE", bt_json_string(docker, "image"));
	label_env(app, env);
	json_object_foreach(json_object_get(app->def, "env"), k, v)
		if (json_is_string(v))
			json_object_set(env, k, v);
	json_object_foreach(env, k, v)
		json_array_append_new(vars, json_pack("{s:s, s:s, s:O}", "name", k, "type", "VALUE",
		    "value", v));
	json_decref(env);
	return json_pack("{s:o}", "variables", vars);
}

static json_t *command_info(const struct relay_app *app)
{
	const char *cmd = bt_json_string(app->def, "cmd");
	json_t *args = json_object_get(app->def, "args"), *cmdinfo, *uris = json_array(), *f;
	const char *user = bt_json_string(app->def, "user");
	size_t i;

	if (cmd != NULL)
		cmdinfo = json_pack("{s:b, s:s}", "shell", 1, "value", cmd);
	else if (json_array_size(args) > 0)
		cmdinfo = json_pack("{s:b, s:O, s:O}", "shell", 0, "value", json_array_get(args, 0),
		    "arguments", args);
	else
		cmdinfo = json_pack("{s:b}", "shell", 0);
	json_object_set_new(cmdinfo, "environment", app_environment(app));
	json_array_foreach(json_object_get(app->def, "fetch"), i, f) {
		json_t *u = json_pack("{s:O, s:O, s:O, s:O}", "value", json_object_get(f, "uri"),
		    "extract", json_object_get(f, "extract"), "executable",
		    json_object_get(f, "executable"), "cache", json_object_get(f, "cache"));
		if (json_object_get(f, "destPath") != NULL)
			json_object_set(u, "output_file", json_object_get(f, "destPath"));
		json_array_append_new(uris, u);
	}
	if (json_array_size(uris) > 0)
		json_object_set_new(cmdinfo, "uris", uris);
	else
		json_decref(uris);
	if (user != NULL)
		json_object_set_new(cmdinfo, "user", json_string(user));
	relay_container_command(app, cmdinfo);
	return cmdinfo;
}

/* "/grp/app" -> "app.grp" (Mesos-DNS naming) */
static char *task_name(const char *id)
{
	char *copy = xstrdup(id), *out = xstrdup(""), *p, *tmp;

	while ((p = strrchr(copy, '/')) != NULL) {
		if (p[1] != '\0') {
			tmp = xasprintf("%s%s%s", out, out[0] ? "." : "", p + 1);
			free(out);
			out = tmp;
		}
		*p = '\0';
	}
	free(copy);
	return out;
}

/* a TaskInfo with placeholder ids holding the parts that depend on the host ports */
static json_t *port_parts_json(const struct relay_app *app, const uint64_t *ports, size_t n)
{
	json_t *ti = json_pack("{s:s, s:{s:s}, s:{s:s}}", "name", "", "task_id", "value", "",
	    "agent_id", "value", "");
	json_t *container = relay_container_info(app, ports, n);
	json_t *hc = relay_health_task_check(app, ports, n);

	if (container != NULL)
		json_object_set_new(ti, "container", container);
	if (hc != NULL)
		json_object_set_new(ti, "health_check", hc);
	return ti;
}

static json_t *template_json(const struct relay_app *app, bool port_parts)
{
	char *name = task_name(app->id);
	json_t *ti = port_parts ? json_pack("{s:s, s:{s:s}, s:{s:s}}", "name", "", "task_id",
	    "value", "", "agent_id", "value", "") : port_parts_json(app, NULL, 0);
	json_t *grace = json_object_get(app->def, "taskKillGracePeriodSeconds");

	json_object_set_new(ti, "name", json_string(name));
	json_object_set_new(ti, "command", command_info(app));
	json_object_set_new(ti, "labels", relay_labels_pb(json_object_get(app->def, "labels")));
	if (grace != NULL)
		json_object_set_new(ti, "kill_policy", json_pack("{s:{s:I}}", "grace_period",
		    "nanoseconds", (json_int_t)json_integer_value(grace) * 1000000000LL));
	free(name);
	return ti;
}

static bool has_port_parts(const struct relay_app *app)
{
	json_t *checks = json_object_get(app->def, "healthChecks");

	return app->nports > 0 && (json_object_get(app->def, "container") != NULL ||
	    json_array_size(checks) > 0);
}

void relay_task_template_free(struct relay_task_template *tt)
{
	if (tt == NULL)
		return;
	if (tt->ti != NULL)
		protobuf_c_message_free_unpacked(&tt->ti->base, NULL);
	free(tt->version);
	free(tt);
}

static ProtobufCMessage *task_info_pb(json_t *ti, const char *app_id)
{
	char *cause = NULL;
	ProtobufCMessage *msg = bt_pbjson_to_message(&mesos__v1__task_info__descriptor, ti, &cause);

	if (msg == NULL) {
		log_error("unable to build the TaskInfo of app '%s': %s", app_id, cause);
		free(cause);
	}
	json_decref(ti);
	return msg;
}

/* the app's template for its current version, built when missing or stale; NULL on error */
static struct relay_task_template *template_of(struct relay_app *app)
{
	struct relay_task_template *tt = app->task_template;
	bool port_parts;

	if (tt != NULL && strcmp(tt->version, app->version) == 0)
		return tt->ti != NULL ? tt : NULL;
	relay_task_template_free(tt);
	port_parts = has_port_parts(app);
	tt = xcalloc(1, sizeof *tt);
	tt->version = xstrdup(app->version);
	tt->port_parts = port_parts;
	tt->app_env = json_object_get(app->def, "env");
	tt->ti = (Mesos__V1__TaskInfo *)task_info_pb(template_json(app, port_parts), app->id);
	app->task_template = tt;
	return tt->ti != NULL ? tt : NULL;
}

bool relay_launch_ready(struct relay_app *app)
{
	return template_of(app) != NULL;
}

/* ---- one launch ---- */

static bool app_sets(const struct relay_task_template *tt, const char *name)
{
	return json_is_string(json_object_get(tt->app_env, name));
}

static void add_var(struct relay_launch *l, size_t *nown, const struct relay_task_template *tt,
    const char *name, const char *value)
{
	Mesos__V1__Environment__Variable *v;

	if (app_sets(tt, name))
		return;
	v = &l->own[(*nown)++];
	mesos__v1__environment__variable__init(v);
	v->name = (char *)name;
	v->has_type = true;
	v->type = MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__VALUE;
	v->value = (char *)value;
	l->vars[l->env.n_variables++] = v;
}

/* the next resource of the launch, taken from role */
static Mesos__V1__Resource *resource(struct relay_launch *l, const char *name,
    Mesos__V1__Value__Type type, const struct relay_offer_role *role)
{
	Mesos__V1__Resource *res = &l->res[l->ti.n_resources];

	mesos__v1__resource__init(res);
	res->name = (char *)name;
	res->type = type;
	/* Resource.role is deprecated in favour of reservations, yet still the v1 field */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	res->role = (char *)role->role;
#pragma GCC diagnostic pop
	if (role->alloc_role != NULL)
		res->allocation_info = &l->alloc;
	l->resp[l->ti.n_resources++] = res;
	return res;
}

static void scalar(struct relay_launch *l, size_t i, const char *name, double value,
    const struct relay_offer_role *role)
{
	mesos__v1__value__scalar__init(&l->scalar[i]);
	l->scalar[i].value = value;
	resource(l, name, MESOS__V1__VALUE__TYPE__SCALAR, role)->scalar = &l->scalar[i];
}

static void resources(struct relay_launch *l, const struct relay_app *app,
    const struct relay_task *t, const struct relay_offer_role *role)
{
	size_t i;

	mesos__v1__resource__allocation_info__init(&l->alloc);
	l->alloc.role = (char *)role->alloc_role;
	l->ti.resources = l->resp;
	scalar(l, 0, "cpus", app->cpus, role);
	scalar(l, 1, "mem", app->mem, role);
	if (app->disk > 0)
		scalar(l, 2, "disk", app->disk, role);
	if (t->nports == 0)
		return;
	l->range = xcalloc(t->nports, sizeof *l->range);
	l->rangep = xcalloc(t->nports, sizeof *l->rangep);
	for (i = 0; i < t->nports; i++) {
		mesos__v1__value__range__init(&l->range[i]);
		l->range[i].begin = l->range[i].end = t->ports[i];
		l->rangep[i] = &l->range[i];
	}
	mesos__v1__value__ranges__init(&l->ranges);
	l->ranges.n_range = t->nports;
	l->ranges.range = l->rangep;
	resource(l, "ports", MESOS__V1__VALUE__TYPE__RANGES, role)->ranges = &l->ranges;
}

/* the template's variables, then HOST, the port variables and MESOS_TASK_ID */
static void environment(struct relay_launch *l, const struct relay_task_template *tt,
    const struct relay_app *app, const struct relay_task *t)
{
	const Mesos__V1__Environment *base = tt->ti->command->environment;
	size_t nbase = base != NULL ? base->n_variables : 0, nown = 0;
	const char *k;
	json_t *v;

	if (app->nports > 0) {
		l->port_env = json_object();
		relay_container_port_env(app, t->ports, t->nports, l->port_env);
	}
	mesos__v1__environment__init(&l->env);
	l->vars = xcalloc(nbase + 2 + json_object_size(l->port_env), sizeof *l->vars);
	l->own = xcalloc(2 + json_object_size(l->port_env), sizeof *l->own);
	if (nbase > 0)
		memcpy(l->vars, base->variables, nbase * sizeof *l->vars);
	l->env.n_variables = nbase;
	l->env.variables = l->vars;
	add_var(l, &nown, tt, "HOST", t->host);
	json_object_foreach(l->port_env, k, v)
		add_var(l, &nown, tt, k, json_string_value(v));
	add_var(l, &nown, tt, "MESOS_TASK_ID", t->id);
	l->command.environment = &l->env;
}

struct relay_launch *relay_launch_new(struct relay_app *app, const struct relay_task *t,
    const struct relay_offer_role *role)
{
	struct relay_task_template *tt = template_of(app);
	struct relay_launch *l;
	Mesos__V1__TaskInfo *parts;

	if (tt == NULL)
		return NULL;
	l = xcalloc(1, sizeof *l);
	l->ti = *tt->ti;
	mesos__v1__task_id__init(&l->task_id);
	l->task_id.value = t->id;
	mesos__v1__agent_id__init(&l->agent_id);
	l->agent_id.value = t->agent_id;
	l->ti.task_id = &l->task_id;
	l->ti.agent_id = &l->agent_id;
	l->ti.n_resources = 0;
	resources(l, app, t, role);
	l->command = *tt->ti->command;
	environment(l, tt, app, t);
	l->ti.command = &l->command;
	if (tt->port_parts) {
		l->port_parts = task_info_pb(port_parts_json(app, t->ports, t->nports), app->id);
		if (l->port_parts == NULL) {
			relay_launch_free(l);
			return NULL;
		}
		parts = (Mesos__V1__TaskInfo *)l->port_parts;
		l->ti.container = parts->container;
		l->ti.health_check = parts->health_check;
	}
	return l;
}

Mesos__V1__TaskInfo *relay_launch_task_info(struct relay_launch *l)
{
	return &l->ti;
}

void relay_launch_free(struct relay_launch *l)
{
	if (l == NULL)
		return;
	if (l->port_parts != NULL)
		protobuf_c_message_free_unpacked(l->port_parts, NULL);
	json_decref(l->port_env);
	free(l->vars);
	free(l->own);
	free(l->range);
	free(l->rangep);
	free(l);
}
