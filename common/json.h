/*
 * json.h -- jansson helpers shared by all programs.
 */
#ifndef BT_JSON_H
#define BT_JSON_H

#include <jansson.h>
#include <stddef.h>

/*
 * How butte writes JSON: compact, any value at the top, and doubles with
 * 15 significant digits as Mesos does, so 0.1 cpus reads "0.1" and not
 * "0.10000000000000001".
 */
#define BT_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

/*
 * Parse a body with duplicate keys rejected. NULL with *cause set to the
 * parser's message, e.g. "'[' or '{' expected near 'x' at line 1 column 1".
 */
json_t *bt_json_parse(const void *data, size_t len, char **cause);
/* compact text as butte sends it (BT_JSON_DUMP_FLAGS); caller frees */
char *bt_json_dump(const json_t *j);
/* compact text with every double written exactly (17 digits), for state that
 * is stored and must read back bit for bit; caller frees */
char *bt_json_dump_exact(const json_t *j);
/* a string member or NULL; a number member as double or the fallback */
const char *bt_json_string(const json_t *obj, const char *key);
double bt_json_number(const json_t *obj, const char *key, double fallback);

#endif
