/*
 * flags.c -- parse a program's option table from argv and the environment.
 *
 * Parsing runs in three passes over the same table: the defaults are
 * stored first, then every BUTTE_<NAME> variable that is set, then the
 * command line, so that a later pass simply overwrites an earlier one
 * (command line > environment > default). String destinations always own
 * a heap copy; bt_flags_release() frees them. Durations use Mesos's units
 * and are stored as seconds.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "util.h"
#include "xmalloc.h"

static const struct {
	const char *unit;
	double seconds;
} duration_units[] = {
	{ "ns", 1e-9 }, { "us", 1e-6 }, { "ms", 1e-3 },
	{ "secs", 1 }, { "sec", 1 }, { "s", 1 },
	{ "mins", 60 }, { "min", 60 }, { "m", 60 },
	{ "hrs", 3600 }, { "hr", 3600 }, { "h", 3600 },
	{ "days", 86400 }, { "day", 86400 }, { "d", 86400 },
	{ "weeks", 604800 }, { "week", 604800 }, { "w", 604800 },
};

/* the number and unit of a duration; *reason (heap) says what is wrong */
static int duration_parse(const char *text, double *seconds, char **reason)
{
	const char *p = text, *unit;
	char *number;
	double value;
	size_t i, digits = 0;

	if (*p == '-') {
		*reason = xstrdup("negative duration");
		return -1;
	}
	if (*p == '+')
		p++;
	for (; isdigit((unsigned char)*p); p++)
		digits++;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			digits++;
	if (digits == 0) {
		*reason = xstrdup("not a duration");
		return -1;
	}
	unit = p;
	number = xstrndup(text, (size_t)(unit - text));
	value = strtod(number, NULL);
	free(number);
	if (*unit == '\0') {
		*seconds = value;
		goto check;
	}
	for (i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
		if (strcmp(unit, duration_units[i].unit) == 0) {
			*seconds = value * duration_units[i].seconds;
			goto check;
		}
	}
	*reason = xasprintf("unknown duration unit '%s'", unit);
	return -1;
check:
	if (!isfinite(*seconds)) {
		*reason = xstrdup("duration too large");
		return -1;
	}
	return 0;
}

int bt_duration_parse(const char *text, double *seconds, char **cause)
{
	char *reason = NULL;

	if (duration_parse(text, seconds, &reason) != 0) {
		*cause = xasprintf("invalid duration '%s': %s", text, reason);
		free(reason);
		return -1;
	}
	return 0;
}

/* a duration as text in the largest unit that keeps it whole: "15secs" */
static char *duration_format(double seconds)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {
		{ "weeks", 604800 }, { "days", 86400 }, { "hrs", 3600 }, { "mins", 60 },
		{ "secs", 1 }, { "ms", 1e-3 }, { "us", 1e-6 }, { "ns", 1e-9 },
	};
	size_t i;

	if (seconds == 0)
		return xstrdup("0secs");
	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		double n = seconds / units[i].seconds;
		if (n >= 1 && n < 1e15 && fabs(n - (double)bt_round(n)) < 1e-9 * n)
			return xasprintf("%lld%s", (long long)bt_round(n), units[i].unit);
	}
	return xasprintf("%gsecs", seconds);
}

static int parse_bool(const char *text, bool *out)
{
	if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0 ||
	    strcasecmp(text, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0 ||
	    strcasecmp(text, "no") == 0) {
		*out = false;
		return 0;
	}
	return -1;
}

/* store text into f's destination; *reason (heap) on failure */
static int flag_set(const struct bt_flag *f, const char *text, char **reason)
{
	char *end;
	long l;
	double d;

	switch (f->type) {
	case BT_FLAG_STRING:
		free(*(char **)f->dst);
		*(char **)f->dst = xstrdup(text);
		return 0;
	case BT_FLAG_INT:
		errno = 0;
		l = strtol(text, &end, 10);
		if (*text == '\0' || isspace((unsigned char)*text) || *end != '\0') {
			*reason = xstrdup("not an integer");
			return -1;
		}
		if (errno == ERANGE || l < INT_MIN || l > INT_MAX) {
			*reason = xstrdup("integer out of range");
			return -1;
		}
		*(int *)f->dst = (int)l;
		return 0;
	case BT_FLAG_DOUBLE:
		d = strtod(text, &end);
		if (*text == '\0' || isspace((unsigned char)*text) || *end != '\0' ||
		    !isfinite(d)) {
			*reason = xstrdup("not a number");
			return -1;
		}
		*(double *)f->dst = d;
		return 0;
	case BT_FLAG_BOOL:
		if (parse_bool(text, (bool *)f->dst) != 0) {
			*reason = xstrdup("not a boolean (true or false)");
			return -1;
		}
		return 0;
	case BT_FLAG_DURATION:
		return duration_parse(text, (double *)f->dst, reason);
	}
	*reason = xstrdup("unknown flag type");
	return -1;
}

/* where: "" for the command line, " in BUTTE_X" for the environment */
static int flag_set_cause(const struct bt_flag *f, const char *text, const char *where,
    char **cause)
{
	char *reason = NULL;

	if (flag_set(f, text, &reason) == 0)
		return 0;
	*cause = xasprintf("invalid value '%s'%s for flag '--%s': %s", text, where, f->name,
	    reason);
	free(reason);
	return -1;
}

/* the flag called name (the first len bytes; '-' and '_' are the same) */
static const struct bt_flag *flag_find(const struct bt_flag *table, const char *name, size_t len)
{
	const struct bt_flag *f;
	size_t i;

	for (f = table; f->name != NULL; f++) {
		if (strlen(f->name) != len)
			continue;
		for (i = 0; i < len; i++) {
			char a = name[i] == '-' ? '_' : name[i];
			if (a != f->name[i])
				break;
		}
		if (i == len)
			return f;
	}
	return NULL;
}

static void print_help(const struct bt_flag *table, const char *usage)
{
	const struct bt_flag *f;
	size_t width = 0, w;
	char *left;

	printf("usage: %s\n\n", usage != NULL ? usage : "");
	for (f = table; f->name != NULL; f++) {
		w = strlen(f->name) + 2 + (f->type == BT_FLAG_BOOL ? 0 : strlen("=VALUE"));
		if (w > width)
			width = w;
	}
	for (f = table; f->name != NULL; f++) {
		left = xasprintf("--%s%s", f->name, f->type == BT_FLAG_BOOL ? "" : "=VALUE");
		printf("  %-*s   %s", (int)width, left, f->help != NULL ? f->help : "");
		if (f->def != NULL)
			printf(" (default: %s)", f->def);
		printf("\n");
		free(left);
	}
	fflush(stdout);
}

static int set_defaults(const struct bt_flag *table, char **cause)
{
	const struct bt_flag *f;
	char *reason = NULL;

	for (f = table; f->name != NULL; f++) {
		if (f->type == BT_FLAG_STRING)
			*(char **)f->dst = NULL;
		if (f->def == NULL)
			continue;
		if (flag_set(f, f->def, &reason) != 0) {
			*cause = xasprintf("invalid default '%s' for flag '--%s': %s", f->def,
			    f->name, reason);
			free(reason);
			return -1;
		}
	}
	return 0;
}

static int set_environment(const struct bt_flag *table, char **cause)
{
	const struct bt_flag *f;
	char *var, *where, *p;
	const char *value;
	int rc = 0;

	for (f = table; f->name != NULL && rc == 0; f++) {
		var = xasprintf("BUTTE_%s", f->name);
		for (p = var; *p != '\0'; p++)
			*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
		value = getenv(var);
		if (value != NULL) {
			where = xasprintf(" in %s", var);
			rc = flag_set_cause(f, value, where, cause);
			free(where);
		}
		free(var);
	}
	return rc;
}

/* one "--name[=value]" at argv[*i]; may consume argv[*i + 1] */
static int parse_one(const struct bt_flag *table, int argc, char **argv, int *i, char **cause)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
	size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	const struct bt_flag *f = flag_find(table, arg, len);

	if (f == NULL && len > 3 && strncmp(arg, "no-", 3) == 0 &&
	    (f = flag_find(table, arg + 3, len - 3)) != NULL && f->type == BT_FLAG_BOOL) {
		if (eq != NULL) {
			*cause = xasprintf("flag '--no-%s' takes no value", f->name);
			return -1;
		}
		*(bool *)f->dst = false;
		return 0;
	}
	if (f == NULL) {
		*cause = xasprintf("unknown flag '--%.*s' (see --help)", (int)len, arg);
		return -1;
	}
	if (eq != NULL)
		return flag_set_cause(f, eq + 1, "", cause);
	if (f->type == BT_FLAG_BOOL) {
		*(bool *)f->dst = true;
		return 0;
	}
	if (*i + 1 >= argc) {
		*cause = xasprintf("missing value for flag '--%s'", f->name);
		return -1;
	}
	(*i)++;
	return flag_set_cause(f, argv[*i], "", cause);
}

static bool wants_help(int argc, char **argv, bool stop_at_positional)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
		if (argv[i][0] != '-' && stop_at_positional)
			return false;
	}
	return false;
}

int bt_flags_parse(const struct bt_flag *table, int argc, char **argv, const char *usage,
    int *rest, char **cause)
{
	int i;

	if (wants_help(argc, argv, rest != NULL)) {
		print_help(table, usage);
		exit(0);
	}
	if (set_defaults(table, cause) != 0 || set_environment(table, cause) != 0)
		goto fail;
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		if (arg[1] != '-') {
			*cause = xasprintf("unknown flag '%s' (see --help)", arg);
			goto fail;
		}
		if (parse_one(table, argc, argv, &i, cause) != 0)
			goto fail;
	}
	if (rest != NULL)
		*rest = i;
	else if (i < argc) {
		*cause = xasprintf("unexpected argument '%s' (see --help)", argv[i]);
		goto fail;
	}
	return 0;
fail:
	bt_flags_release(table);
	return -1;
}

void bt_flags_release(const struct bt_flag *table)
{
	const struct bt_flag *f;

	for (f = table; f->name != NULL; f++) {
		if (f->type == BT_FLAG_STRING) {
			free(*(char **)f->dst);
			*(char **)f->dst = NULL;
		}
	}
}

static json_t *flag_json(const struct bt_flag *f)
{
	char *text;
	json_t *v;

	switch (f->type) {
	case BT_FLAG_STRING:
		if (*(char **)f->dst == NULL)
			return json_null();
		v = json_string(*(char **)f->dst);
		return v != NULL ? v : json_null();
	case BT_FLAG_INT:
		text = xasprintf("%d", *(int *)f->dst);
		break;
	case BT_FLAG_DOUBLE:
		text = xasprintf("%g", *(double *)f->dst);
		break;
	case BT_FLAG_BOOL:
		text = xstrdup(*(bool *)f->dst ? "true" : "false");
		break;
	case BT_FLAG_DURATION:
		text = duration_format(*(double *)f->dst);
		break;
	default:
		return json_null();
	}
	v = json_string(text);
	free(text);
	return v;
}

json_t *bt_flags_json(const struct bt_flag *table)
{
	const struct bt_flag *f;
	json_t *o = json_object();

	for (f = table; f->name != NULL; f++)
		json_object_set_new(o, f->name, flag_json(f));
	return o;
}
