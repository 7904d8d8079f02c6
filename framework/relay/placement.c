/*
 * placement.c -- Marathon constraints against offers, and health checks for TaskInfos.
 *
 * relay remembers each agent's attributes from the offers it sees, so that
 * the value a constraint field has for a running task can be compared with
 * the offered agent's: "hostname"/"@hostname", "@region", "@zone" or any
 * attribute name. The operators are Marathon's: UNIQUE, CLUSTER, GROUP_BY,
 * LIKE, UNLIKE (full-match regular expressions), MAX_PER and IS; an agent
 * without the attribute satisfies only UNLIKE. When an agent refused a
 * Docker image of another architecture ("image 'X' is built for ppc64le but
 * this agent is x86_64 ..."), the app's current config gets an implicit
 * ["arch", "LIKE", "ppc64le"], kept in memory. Health checks of an app
 * become the TaskInfo's HealthCheck, run next to the task by the agent.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "xmalloc.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *agents;                  /* agent id -> {"hostname":…, attr:…} */

static json_t *attribute_value(const Mesos__V1__Attribute *a)
{
	char buf[64];

	switch (a->type) {
	case MESOS__V1__VALUE__TYPE__SCALAR:
		snprintf(buf, sizeof buf, "%g", a->scalar ? a->scalar->value : 0);
		return json_string(buf);
	case MESOS__V1__VALUE__TYPE__TEXT:
		return json_string(a->text && a->text->value ? a->text->value : "");
	default:
		return NULL;
	}
}

void relay_placement_note_offer(const Mesos__V1__Offer *o)
{
	json_t *vals = json_object();
	size_t i;

	if (agents == NULL)
		agents = json_object();
	json_object_set_new(vals, "@hostname", json_string(o->hostname));
	if (o->domain && o->domain->fault_domain) {
		json_object_set_new(vals, "@region",
		    json_string(o->domain->fault_domain->region->name));
		json_object_set_new(vals, "@zone", json_string(o->domain->fault_domain->zone->name));
	}
	for (i = 0; i < o->n_attributes; i++) {
		json_t *v = attribute_value(o->attributes[i]);
		if (v != NULL)
			json_object_set_new(vals, o->attributes[i]->name, v);
	}
	json_object_set_new(agents, o->agent_id->value, vals);
}

void relay_placement_release(void)
{
	json_decref(agents);
	agents = NULL;
}

static const char *field_name(const char *field)
{
	return strcmp(field, "hostname") == 0 ? "@hostname" : field;
}

static const char *task_value(const struct relay_task *t, const char *field)
{
	if (strcmp(field, "@hostname") == 0)
		return t->host;
	if (t->agent_id == NULL)
		return NULL;
	return bt_json_string(json_object_get(agents, t->agent_id), field);
}

static bool full_match(const char *pattern, const char *value)
{
	char *anchored = xasprintf("^(%s)$", pattern);
	regex_t re;
	bool ok;

	if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) != 0) {
		free(anchored);
		return false;
	}
	ok = regexec(&re, value, 0, NULL, 0) == 0;
	regfree(&re);
	free(anchored);
	return ok;
}

/* tasks of the app by value of field: how many share the offer's value, the fewest per value */
static void count_values(struct relay *r, const struct relay_app *app, const char *field,
    const char *value, int *same, int *fewest, const char **first)
{
	struct relay_task *t;
	json_t *counts = json_object(), *v;
	const char *k, *tv;
	int min = -1;

	*same = 0;
	*first = NULL;
	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (t->goal != RELAY_GOAL_RUNNING ||
		    relay_task_terminal_state(t->state) || (tv = task_value(t, field)) == NULL)
			continue;
		if (*first == NULL)
			*first = tv;
		if (value != NULL && strcmp(tv, value) == 0)
			(*same)++;
		json_object_set_new(counts, tv, json_integer(
		    json_integer_value(json_object_get(counts, tv)) + 1));
	}
	json_object_foreach(counts, k, v)
		if (value == NULL || strcmp(k, value) != 0)
			if (min < 0 || json_integer_value(v) < min)
				min = (int)json_integer_value(v);
	json_decref(counts);
	*fewest = min;          /* fewest tasks on any other value, -1 when none */
}

static bool one_constraint(struct relay *r, const struct relay_app *app, const json_t *c,
    const Mesos__V1__Offer *o)
{
	const char *field = field_name(json_string_value(json_array_get(c, 0)));
	const char *op = json_string_value(json_array_get(c, 1));
	const char *arg = json_string_value(json_array_get(c, 2));
	const char *value = bt_json_string(json_object_get(agents, o->agent_id->value), field);
	const char *first;
	int same, fewest;

	if (value == NULL)
		return strcmp(op, "UNLIKE") == 0;
	count_values(r, app, field, value, &same, &fewest, &first);
	if (strcmp(op, "UNIQUE") == 0)
		return same == 0;
	if (strcmp(op, "CLUSTER") == 0)
		return arg != NULL ? strcmp(arg, value) == 0 : first == NULL || strcmp(first, value) == 0;
	if (strcmp(op, "LIKE") == 0)
		return arg != NULL && full_match(arg, value);
	if (strcmp(op, "UNLIKE") == 0)
		return arg == NULL || !full_match(arg, value);
	if (strcmp(op, "IS") == 0)
		return arg != NULL && strcmp(arg, value) == 0;
	if (strcmp(op, "MAX_PER") == 0)
		return arg != NULL && same < atoi(arg);
	if (strcmp(op, "GROUP_BY") == 0)
		return fewest < 0 || same <= fewest;
	return false;
}

bool relay_placement_has_image_arch(const struct relay_app *app)
{
	return app->image_arch != NULL && app->image_arch_config != NULL &&
	    strcmp(app->image_arch_config, app->config_version) == 0;
}

bool relay_placement_learn_failure(struct relay_app *app, const char *message)
{
	static const char marker[] = " is built for ";
	const char *p, *end;

	if (message == NULL || strncmp(message, "image '", 7) != 0 ||
	    (p = strstr(message, marker)) == NULL ||
	    strstr(p, " but this agent is ") == NULL)
		return false;
	p += sizeof marker - 1;
	end = strchr(p, ' ');
	if (end == NULL || end == p)
		return false;
	if (!relay_placement_has_image_arch(app) || strlen(app->image_arch) != (size_t)(end - p) ||
	    strncmp(app->image_arch, p, (size_t)(end - p)) != 0)
		log_info("app '%s': its image is built for %.*s; placing it on agents of that arch only",
		    app->id, (int)(end - p), p);
	free(app->image_arch);
	free(app->image_arch_config);
	app->image_arch = xstrndup(p, (size_t)(end - p));
	app->image_arch_config = xstrdup(app->config_version);
	return true;
}

bool relay_placement_ok(struct relay *r, const struct relay_app *app, const Mesos__V1__Offer *o)
{
	json_t *c;
	size_t i;

	if (relay_placement_has_image_arch(app)) {
		const char *arch = bt_json_string(json_object_get(agents, o->agent_id->value), "arch");
		if (arch == NULL || strcmp(arch, app->image_arch) != 0)
			return false;
	}
	json_array_foreach(json_object_get(app->def, "constraints"), i, c)
		if (!one_constraint(r, app, c, o))
			return false;
	return true;
}

/* the app's health checks as the TaskInfo's HealthCheck, or NULL (health.c) */
json_t *relay_health_check(const struct relay_app *app, const uint64_t *ports, size_t nports)
{
	return relay_health_task_check(app, ports, nports);
}
