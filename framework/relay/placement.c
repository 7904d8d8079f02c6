/*
 * placement.c -- Marathon constraints against offers, and health checks for TaskInfos.
 *
 * relay remembers each agent's attributes from the offers it sees, so that
 * the value a constraint field has for a running task can be compared with
 * the offered agent's: "hostname"/"@hostname", "@region", "@zone" or any
 * attribute name. Values are compared as Marathon formats them: text as
 * is, scalars rounded to thousandths without trailing zeros ("10", "2.5"),
 * ranges "[1-5,8-9]", sets "{a,b}". The operators are Marathon's:
 *
 *   UNIQUE     no other task of the app has the offer's value
 *   CLUSTER    the value given; without one, the value of the first task
 *   GROUP_BY   a value no task has yet is fine; a used one only when it has
 *              the fewest tasks and at least N values are in use. N is the
 *              count given, else the number of distinct values among the
 *              agents that offered in the last AGENT_FRESH seconds (Marathon
 *              counts only the values of placed tasks there, and so stacks a
 *              spread app on the first agent it hears from)
 *   MAX_PER    fewer than N tasks have the offer's value
 *   LIKE       the value matches the regular expression as a whole
 *   UNLIKE     it does not
 *   IS         the value equals the given one (a number compared rounded)
 *
 * An agent without the attribute satisfies only UNLIKE. Regular expressions
 * are POSIX extended ones anchored at both ends, with Java's \d and \D
 * translated (apps.c refuses what does not compile). When an agent refused
 * a Docker image of another architecture ("image 'X' is built for ppc64le
 * but this agent is x86_64 ..."), the app's current config gets an
 * implicit ["arch", "LIKE", "ppc64le"], kept in memory. Health checks of an
 * app become the TaskInfo's HealthCheck, run next to the task by the agent.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_FRESH 600.0       /* s: an agent that offered since counts for GROUP_BY */

static json_t *agents;          /* agent id -> {"@hostname": …, "<attribute>": …} */
static json_t *agent_seen;      /* agent id -> monotonic time of its last offer */
static struct {                 /* the last count of values_seen() */
	char *field;
	double at;
	int n;
} seen_cache;

/* a scalar as Marathon's DecimalFormat("0.###") writes it */
static void scalar_text(double v, char *buf, size_t size)
{
	char *p;

	snprintf(buf, size, "%.3f", v);
	p = buf + strlen(buf) - 1;
	while (p > buf && *p == '0')
		*p-- = '\0';
	if (p > buf && *p == '.')
		*p = '\0';
	if (strcmp(buf, "-0") == 0)
		strcpy(buf, "0");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "[1-5,8-9]" and "{a,b}", Mesos' attribute formatting */
static json_t *list_text(const Mesos__V1__Attribute *a)
{
	char *text = NULL, **items;
	size_t len = 0, i, n;
	FILE *f = open_memstream(&text, &len);
	json_t *j;

	if (a->type == MESOS__V1__VALUE__TYPE__RANGES) {
		fputc('[', f);
		for (i = 0; a->ranges != NULL && i < a->ranges->n_range; i++)
			fprintf(f, "%s%llu-%llu", i ? "," : "",
			    (unsigned long long)a->ranges->range[i]->begin,
			    (unsigned long long)a->ranges->range[i]->end);
		fputc(']', f);
	} else {
		n = a->set != NULL ? a->set->n_item : 0;
		items = xcalloc(n + 1, sizeof *items);
		for (i = 0; i < n; i++)
			items[i] = a->set->item[i];
		qsort(items, n, sizeof *items, cmp_str);
		fputc('{', f);
		for (i = 0; i < n; i++)
			fprintf(f, "%s%s", i ? "," : "", items[i]);
		fputc('}', f);
		free(items);
	}
	fclose(f);
	j = json_string(text);
	free(text);
	return j;
}

static json_t *attribute_value(const Mesos__V1__Attribute *a)
{
	char buf[64];

	switch (a->type) {
	case MESOS__V1__VALUE__TYPE__SCALAR:
		scalar_text(a->scalar ? a->scalar->value : 0, buf, sizeof buf);
		return json_string(buf);
	case MESOS__V1__VALUE__TYPE__TEXT:
		return json_string(a->text && a->text->value ? a->text->value : "");
	case MESOS__V1__VALUE__TYPE__RANGES:
	case MESOS__V1__VALUE__TYPE__SET:
		return list_text(a);
	default:
		return NULL;
	}
}

void relay_placement_note_offer(const Mesos__V1__Offer *o)
{
	json_t *vals = json_object(), *seen;
	size_t i;

	if (agents == NULL) {
		agents = json_object();
		agent_seen = json_object();
	}
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
	if (json_equal(json_object_get(agents, o->agent_id->value), vals)) {
		json_decref(vals);              /* the usual case: keep what is there */
	} else {
		free(seen_cache.field);         /* a new agent or new values: count again */
		seen_cache.field = NULL;
		json_object_set_new(agents, o->agent_id->value, vals);
	}
	seen = json_object_get(agent_seen, o->agent_id->value);
	if (seen != NULL)
		json_real_set(seen, bt_monotonic());
	else
		json_object_set_new(agent_seen, o->agent_id->value, json_real(bt_monotonic()));
}

void relay_placement_release(void)
{
	json_decref(agents);
	json_decref(agent_seen);
	agents = agent_seen = NULL;
	free(seen_cache.field);
	seen_cache.field = NULL;
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

/* "^(p)$" with Java's \d and \D as POSIX classes; caller frees */
static char *anchored_regex(const char *pattern)
{
	char *out = xmalloc(strlen(pattern) * 12 + 8), *p = out;
	const char *s;

	p += sprintf(p, "^(");
	for (s = pattern; *s != '\0'; s++) {
		if (s[0] == '\\' && (s[1] == 'd' || s[1] == 'D')) {
			p += sprintf(p, s[1] == 'd' ? "[0-9]" : "[^0-9]");
			s++;
		} else if (s[0] == '\\' && s[1] != '\0') {
			*p++ = *s++;
			*p++ = *s;
		} else {
			*p++ = *s;
		}
	}
	strcpy(p, ")$");
	return out;
}

static bool full_match(const char *pattern, const char *value)
{
	char *anchored = anchored_regex(pattern);
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

/* IS: a number in the constraint is compared as Marathon formats scalars */
static bool is_match(const char *arg, const char *value)
{
	char buf[64];
	const char *p = arg;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p > arg && *p == '.' && p[1] >= '0' && p[1] <= '9')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (p > arg && *p == '\0') {
		scalar_text(strtod(arg, NULL), buf, sizeof buf);
		return strcmp(buf, value) == 0;
	}
	return strcmp(arg, value) == 0;
}

/* Marathon's integer value of GROUP_BY and MAX_PER ("inf" is no limit); def if none */
static int int_value(const char *arg, int def)
{
	char *end;
	long v;

	if (arg == NULL)
		return def;
	if (strcmp(arg, "inf") == 0)
		return INT_MAX;
	v = strtol(arg, &end, 10);
	return *arg != '\0' && *end == '\0' && v >= INT_MIN && v <= INT_MAX ? (int)v : def;
}

/* how the app's tasks spread over the values of a field */
struct spread {
	int same;               /* tasks with the offer's value */
	int groups;             /* distinct values with tasks */
	int fewest;             /* tasks of the smallest group (0 when none) */
	const char *first;      /* the value of the first task, or NULL */
};

static void count_values(struct relay *r, const struct relay_app *app, const char *field,
    const char *value, struct spread *s)
{
	struct relay_task *t;
	json_t *counts = json_object(), *v;
	const char *k, *tv;

	memset(s, 0, sizeof *s);
	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (t->goal != RELAY_GOAL_RUNNING ||
		    relay_task_terminal_state(t->state) || (tv = task_value(t, field)) == NULL)
			continue;
		if (s->first == NULL)
			s->first = tv;
		if (strcmp(tv, value) == 0)
			s->same++;
		json_object_set_new(counts, tv, json_integer(
		    json_integer_value(json_object_get(counts, tv)) + 1));
	}
	s->groups = (int)json_object_size(counts);
	json_object_foreach(counts, k, v)
		if (s->fewest == 0 || json_integer_value(v) < s->fewest)
			s->fewest = (int)json_integer_value(v);
	json_decref(counts);
}

/* distinct values of field among the agents that offered lately (recounted once a second) */
static int values_seen(const char *field)
{
	json_t *seen, *vals;
	double now = bt_monotonic();
	const char *id, *v;
	int n;

	if (seen_cache.field != NULL && strcmp(seen_cache.field, field) == 0 &&
	    now - seen_cache.at < 1.0)
		return seen_cache.n;
	seen = json_object();
	json_object_foreach(agents, id, vals) {
		if (now - json_real_value(json_object_get(agent_seen, id)) > AGENT_FRESH)
			continue;
		if ((v = bt_json_string(vals, field)) != NULL)
			json_object_set_new(seen, v, json_true());
	}
	n = (int)json_object_size(seen);
	json_decref(seen);
	free(seen_cache.field);
	seen_cache.field = xstrdup(field);
	seen_cache.at = now;
	seen_cache.n = n;
	return n;
}

static bool group_by_ok(const struct spread *s, const char *field, const char *arg)
{
	int minimum;

	if (s->same == 0)
		return true;
	minimum = arg != NULL ? int_value(arg, 0) : values_seen(field);
	return s->groups >= minimum && s->same == s->fewest;
}

static bool one_constraint(struct relay *r, const struct relay_app *app, const json_t *c,
    const Mesos__V1__Offer *o)
{
	const char *field = field_name(json_string_value(json_array_get(c, 0)));
	const char *op = json_string_value(json_array_get(c, 1));
	const char *arg = json_string_value(json_array_get(c, 2));
	const char *value = bt_json_string(json_object_get(agents, o->agent_id->value), field);
	struct spread s;

	if (field == NULL || op == NULL)
		return false;
	if (value == NULL)
		return strcmp(op, "UNLIKE") == 0;
	if (strcmp(op, "LIKE") == 0)
		return arg != NULL && *arg != '\0' && full_match(arg, value);
	if (strcmp(op, "UNLIKE") == 0)
		return arg != NULL && *arg != '\0' && !full_match(arg, value);
	if (strcmp(op, "IS") == 0)
		return is_match(arg != NULL ? arg : "", value);
	count_values(r, app, field, value, &s);
	if (strcmp(op, "UNIQUE") == 0)
		return s.same == 0;
	if (strcmp(op, "CLUSTER") == 0)
		return arg != NULL && *arg != '\0' ? strcmp(arg, value) == 0 :
		    s.first == NULL || strcmp(s.first, value) == 0;
	if (strcmp(op, "MAX_PER") == 0)
		return s.same < int_value(arg, 0);
	if (strcmp(op, "GROUP_BY") == 0)
		return group_by_ok(&s, field, arg);
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
