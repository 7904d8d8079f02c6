/*
 * json.c -- jansson helpers shared by all programs.
 *
 * Bodies are parsed with duplicate keys rejected (a request that names a
 * field twice is ambiguous) and the parser's own message becomes the cause.
 * Output is always compact text.
 */
#include "json.h"

#include <string.h>

#include "xmalloc.h"

json_t *bt_json_parse(const void *data, size_t len, char **cause)
{
	json_error_t err;
	json_t *j;

	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL && cause != NULL) {
		if (err.line > 0)
			*cause = xasprintf("%s at line %d column %d", err.text, err.line,
			    err.column);
		else
			*cause = xstrdup(err.text[0] != '\0' ? err.text : "unable to parse JSON");
	}
	return j;
}

static char *dump(const json_t *j, size_t flags)
{
	char *text = json_dumps(j, flags);

	/* jansson returns NULL only for a NULL value or when out of memory */
	if (text == NULL)
		return xstrdup("null");
	return text;
}

char *bt_json_dump(const json_t *j)
{
	return dump(j, BT_JSON_DUMP_FLAGS);
}

char *bt_json_dump_exact(const json_t *j)
{
	return dump(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

const char *bt_json_string(const json_t *obj, const char *key)
{
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

double bt_json_number(const json_t *obj, const char *key, double fallback)
{
	json_t *v;

	if (!json_is_object(obj))
		return fallback;
	v = json_object_get(obj, key);
	return json_is_number(v) ? json_number_value(v) : fallback;
}
