/*
 * flags.h -- one table of options per program.
 *
 * A table of struct bt_flag drives parsing, --help and the read-only /flags
 * view. Flags are written --name=value (or --name value); booleans also as
 * --name and --no-name. Every flag can come from the environment as
 * BUTTE_<NAME> (upper case); the command line wins over the environment,
 * the environment over the default. Durations take Mesos's units: "250ms",
 * "15secs", "1mins", "2hrs", "1days", "1weeks" (also "ns", "us", "s", "m",
 * "h" and a bare number of seconds).
 */
#ifndef BT_FLAGS_H
#define BT_FLAGS_H

#include <jansson.h>
#include <stdbool.h>

enum bt_flag_type {
	BT_FLAG_STRING,                 /* char ** (heap copy, NULL when no default) */
	BT_FLAG_INT,                    /* int * */
	BT_FLAG_DOUBLE,                 /* double * */
	BT_FLAG_BOOL,                   /* bool * */
	BT_FLAG_DURATION,               /* double * seconds */
};

struct bt_flag {
	const char *name;               /* "work_dir"; the table ends with a NULL name */
	enum bt_flag_type type;
	void *dst;
	const char *def;                /* default as text, or NULL */
	const char *help;
};

/*
 * Parse argv[1..] and the environment into the table's destinations.
 * --help prints the usage (summary, then every flag with its default) and
 * exits 0. When rest is NULL any positional argument is an error; when it
 * is not NULL parsing stops at the first positional argument and *rest is
 * its index. Returns 0, or -1 with *cause ("unknown flag '--x'",
 * "invalid value 'abc' for flag '--port': not an integer").
 */
int bt_flags_parse(const struct bt_flag *table, int argc, char **argv, const char *usage,
    int *rest, char **cause);
/* free the strings a parse stored */
void bt_flags_release(const struct bt_flag *table);
/* {"name":"value",...} with every flag's current value as text */
json_t *bt_flags_json(const struct bt_flag *table);
/* "15secs" -> 15.0; -1 with *cause */
int bt_duration_parse(const char *text, double *seconds, char **cause);

#endif
