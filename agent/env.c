/*
 * env.c -- the environment a task starts with.
 *
 * Tasks do not inherit the agent's environment. They get a fixed PATH, the
 * variables Mesos's executors set (MESOS_TASK_ID, MESOS_SANDBOX, ...), HOST,
 * and the port variables Marathon apps expect (PORT0..n, PORT, PORTS,
 * PORT_<NAME>) computed from the task's "ports" resource -- in the order of
 * DiscoveryInfo.ports when the task names them, ascending otherwise -- unless
 * the task's CommandInfo.environment sets them itself. The task's own
 * variables come last and win over everything.
 */
#include "agent.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_PATH       "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_PORT_VARS   1000

struct env {
	char **v;               /* "NAME=value", NULL-terminated */
	size_t n;
};

static ssize_t env_find(const struct env *e, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < e->n; i++) {
		if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=')
			return (ssize_t)i;
	}
	return -1;
}

static void env_set(struct env *e, const char *name, const char *value)
{
	ssize_t i = env_find(e, name);
	char *kv = xasprintf("%s=%s", name, value != NULL ? value : "");

	if (i >= 0) {
		free(e->v[i]);
		e->v[i] = kv;
		return;
	}
	e->v = xreallocarray(e->v, e->n + 2, sizeof *e->v);
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
}

/* names the task's own environment sets; those are never computed here */
static bool task_sets(const Mesos__V1__TaskInfo *info, const char *name)
{
	const Mesos__V1__Environment *env = info->command != NULL ? info->command->environment : NULL;
	size_t i;

	if (env == NULL)
		return false;
	for (i = 0; i < env->n_variables; i++) {
		if (env->variables[i]->name != NULL && strcmp(env->variables[i]->name, name) == 0)
			return true;
	}
	return false;
}

static void env_default(struct env *e, const Mesos__V1__TaskInfo *info, const char *name,
    const char *value)
{
	if (!task_sets(info, name))
		env_set(e, name, value);
}

/* the task's ports: discovery order first, then the rest ascending */
static uint64_t *task_ports(const Mesos__V1__TaskInfo *info, size_t *n)
{
	uint64_t *ports = NULL, *out;
	size_t np = 0, i, j, k = 0;
	const Mesos__V1__Ports *disc = info->discovery != NULL ? info->discovery->ports : NULL;

	for (i = 0; i < info->n_resources; i++) {
		const Mesos__V1__Resource *r = info->resources[i];
		if (r->name == NULL || strcmp(r->name, "ports") != 0 || r->ranges == NULL)
			continue;
		for (j = 0; j < r->ranges->n_range; j++) {
			uint64_t p;
			for (p = r->ranges->range[j]->begin; p <= r->ranges->range[j]->end &&
			    np < MAX_PORT_VARS; p++) {
				ports = xreallocarray(ports, np + 1, sizeof *ports);
				ports[np++] = p;
			}
		}
	}
	out = xcalloc(np + 1, sizeof *out);
	for (i = 0; disc != NULL && i < disc->n_ports; i++) {
		for (j = 0; j < np; j++) {
			if (ports[j] == disc->ports[i]->number && ports[j] != 0) {
				out[k++] = ports[j];
				ports[j] = 0;
				break;
			}
		}
	}
	/* the rest ascending (ranges from one resource come sorted; sort anyway) */
	for (;;) {
		size_t best = np;
		for (j = 0; j < np; j++) {
			if (ports[j] != 0 && (best == np || ports[j] < ports[best]))
				best = j;
		}
		if (best == np)
			break;
		out[k++] = ports[best];
		ports[best] = 0;
	}
	free(ports);
	*n = k;
	return out;
}

static char *port_var_name(const char *name)
{
	char *v = xasprintf("PORT_%s", name);
	char *p;

	for (p = v + 5; *p != '\0'; p++)
		*p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
	return v;
}

static void port_env(struct env *e, const Mesos__V1__TaskInfo *info)
{
	size_t n, i, len = 0;
	uint64_t *ports = task_ports(info, &n);
	const Mesos__V1__Ports *disc = info->discovery != NULL ? info->discovery->ports : NULL;
	char *list = xstrdup(""), num[32];

	for (i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "PORT%zu", i);
		snprintf(num, sizeof num, "%llu", (unsigned long long)ports[i]);
		env_default(e, info, name, num);
		list = xrealloc(list, len + strlen(num) + 2);
		len += (size_t)sprintf(list + len, "%s%s", i > 0 ? "," : "", num);
	}
	if (n > 0) {
		snprintf(num, sizeof num, "%llu", (unsigned long long)ports[0]);
		env_default(e, info, "PORT", num);
		env_default(e, info, "PORTS", list);
	}
	for (i = 0; disc != NULL && i < disc->n_ports; i++) {
		char *var;
		if (disc->ports[i]->name == NULL || *disc->ports[i]->name == '\0')
			continue;
		var = port_var_name(disc->ports[i]->name);
		snprintf(num, sizeof num, "%u", disc->ports[i]->number);
		env_default(e, info, var, num);
		free(var);
	}
	free(list);
	free(ports);
}

char **agent_task_env(struct agent_task *t)
{
	struct agent *a = t->agent;
	const Mesos__V1__TaskInfo *info = t->info;
	const Mesos__V1__Environment *tenv = info->command != NULL ?
	    info->command->environment : NULL;
	struct env e = { NULL, 0 };
	size_t i;

	e.v = xcalloc(1, sizeof *e.v);
	env_set(&e, "PATH", TASK_PATH);
	env_set(&e, "MESOS_TASK_ID", t->task_id);
	env_set(&e, "MESOS_FRAMEWORK_ID", t->framework_id);
	env_set(&e, "MESOS_AGENT_ID", a->agent_id != NULL ? a->agent_id : "");
	env_set(&e, "MESOS_SLAVE_ID", a->agent_id != NULL ? a->agent_id : "");
	env_set(&e, "MESOS_EXECUTOR_ID", t->task_id);
	env_set(&e, "MESOS_CONTAINER_ID", t->container_id);
	env_set(&e, "MESOS_SANDBOX", t->sandbox);
	env_set(&e, "MESOS_DIRECTORY", t->sandbox);
	env_set(&e, "MESOS_AGENT_ENDPOINT", a->endpoint);
	env_default(&e, info, "HOST", a->hostname);
	port_env(&e, info);
	for (i = 0; tenv != NULL && i < tenv->n_variables; i++) {
		const Mesos__V1__Environment__Variable *v = tenv->variables[i];
		if (v->name == NULL || *v->name == '\0' || strchr(v->name, '=') != NULL)
			continue;
		env_set(&e, v->name, v->value);
	}
	return e.v;
}

void agent_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
