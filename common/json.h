/*
 * json.h -- jansson helpers shared by all programs.
 */
#ifndef BT_JSON_H
#define BT_JSON_H

#include <jansson.h>
#include <stddef.h>

/*
 * Parse a body with duplicate keys rejected. NULL with *cause set to the
 * parser's message, e.g. "'[' or '{' expected near 'x' at line 1 column 1".
 */
json_t *bt_json_parse(const void *data, size_t len, char **cause);
/* compact text; caller frees */
char *bt_json_dump(const json_t *j);
/* a string member or NULL; a number member as double or the fallback */
const char *bt_json_string(const json_t *obj, const char *key);
double bt_json_number(const json_t *obj, const char *key, double fallback);

#endif
