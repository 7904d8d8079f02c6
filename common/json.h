/*
 * json.h -- jansson helpers shared by all programs.
 */
#ifndef BT_JSON_H
#define BT_JSON_H

#include <jansson.h>
#include <stdbool.h>
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
/*
 * An object written straight into text, for records written by the
 * hundred thousand (relay's task records): no tree and no allocation per
 * member. Members go in the order they are added; a NULL key adds an
 * element to the array opened last; a NULL string is left out, as
 * json_pack's "s?" leaves it out. Doubles are written exactly, as
 * bt_json_dump_exact() writes them. bt_json_out_end() returns the text,
 * which the caller frees, and its length.
 */
struct bt_json_out {
	char *text;
	size_t len, cap;
	bool more;                      /* a member or element was written: a comma comes first */
};
void bt_json_out_begin(struct bt_json_out *o);
void bt_json_out_string(struct bt_json_out *o, const char *key, const char *value);
void bt_json_out_int(struct bt_json_out *o, const char *key, long long value);
void bt_json_out_real(struct bt_json_out *o, const char *key, double value);
void bt_json_out_array(struct bt_json_out *o, const char *key);
void bt_json_out_array_end(struct bt_json_out *o);
char *bt_json_out_end(struct bt_json_out *o, size_t *len);

/* a string member or NULL; a number member as double or the fallback */
const char *bt_json_string(const json_t *obj, const char *key);
double bt_json_number(const json_t *obj, const char *key, double fallback);

#endif
