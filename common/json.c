/*
 * json.c -- jansson helpers shared by all programs.
 *
 * Bodies are parsed with duplicate keys rejected (a request that names a
 * field twice is ambiguous) and the parser's own message becomes the cause.
 * Output is always compact text.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
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

/* ---- objects written straight into text ---- */

static void out_reserve(struct bt_json_out *o, size_t more)
{
	if (o->len + more + 1 <= o->cap)
		return;
	while (o->len + more + 1 > o->cap)
		o->cap = o->cap > 0 ? o->cap * 2 : 256;
	o->text = xrealloc(o->text, o->cap);
}

static void out_raw(struct bt_json_out *o, const char *text, size_t len)
{
	out_reserve(o, len);
	memcpy(o->text + o->len, text, len);
	o->len += len;
	o->text[o->len] = '\0';
}

/* a string literal with its quotes; what JSON must escape, escaped */
static void out_quoted(struct bt_json_out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;

	out_reserve(o, strlen(s) + 2);
	o->text[o->len++] = '"';
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			out_reserve(o, 2);
			o->text[o->len++] = '\\';
			o->text[o->len++] = (char)*p;
		} else if (*p < 0x20) {
			out_reserve(o, 6);
			memcpy(o->text + o->len, "\\u00", 4);
			o->text[o->len + 4] = hex[*p >> 4];
			o->text[o->len + 5] = hex[*p & 15];
			o->len += 6;
		} else {
			out_reserve(o, 1);
			o->text[o->len++] = (char)*p;
		}
	}
	out_reserve(o, 1);      /* escapes may have taken what was set aside for it */
	o->text[o->len++] = '"';
	o->text[o->len] = '\0';
}

/* the comma before a member or element, and the member's key */
static void out_key(struct bt_json_out *o, const char *key)
{
	if (o->more)
		out_raw(o, ",", 1);
	o->more = true;
	if (key != NULL) {
		out_quoted(o, key);
		out_raw(o, ":", 1);
	}
}

void bt_json_out_begin(struct bt_json_out *o)
{
	memset(o, 0, sizeof *o);
	out_raw(o, "{", 1);
}

void bt_json_out_string(struct bt_json_out *o, const char *key, const char *value)
{
	if (value == NULL)
		return;
	out_key(o, key);
	out_quoted(o, value);
}

void bt_json_out_int(struct bt_json_out *o, const char *key, long long value)
{
	char num[24];

	out_key(o, key);
	out_raw(o, num, (size_t)snprintf(num, sizeof num, "%lld", value));
}

/*
 * value's digits when it is a whole number of microseconds (the times
 * butte keeps): n / 10^6 printed exactly reads back as the double nearest
 * to it, which is value when value is the double nearest to n / 10^6 (an
 * IEEE division of two exact numbers); -1 otherwise. printf's %.17g costs
 * several times more.
 */
static int micro_text(char *out, double value)
{
	unsigned long long n, whole;
	unsigned frac;
	char digits[24];
	int len = 0, k = 0, i;

	if (!(fabs(value) < 9e9))       /* n below 2^53: exact as a double */
		return -1;
	n = (unsigned long long)llround(fabs(value) * 1e6);
	if ((double)n / 1e6 != fabs(value))
		return -1;
	if (signbit(value))
		out[len++] = '-';
	whole = n / 1000000;
	frac = (unsigned)(n % 1000000);
	do {
		digits[k++] = (char)('0' + whole % 10);
		whole /= 10;
	} while (whole > 0);
	while (k > 0)
		out[len++] = digits[--k];
	out[len++] = '.';
	for (i = 100000; i > 0; i /= 10) {
		out[len++] = (char)('0' + frac / (unsigned)i % 10);
		if (frac % (unsigned)i == 0)
			break;          /* the rest are zeros; ".0" at least */
	}
	out[len] = '\0';
	return len;
}

/* as jansson writes a real: exactly, and never like an integer */
void bt_json_out_real(struct bt_json_out *o, const char *key, double value)
{
	char num[40];
	int n;

	if (!isfinite(value))   /* NaN and the infinities have no JSON form */
		value = 0;
	if ((n = micro_text(num, value)) < 0) {
		n = snprintf(num, sizeof num, "%.17g", value);
		if (strpbrk(num, ".e") == NULL)
			n += snprintf(num + n, sizeof num - (size_t)n, ".0");
	}
	out_key(o, key);
	out_raw(o, num, (size_t)n);
}

void bt_json_out_array(struct bt_json_out *o, const char *key)
{
	out_key(o, key);
	out_raw(o, "[", 1);
	o->more = false;
}

void bt_json_out_array_end(struct bt_json_out *o)
{
	out_raw(o, "]", 1);
	o->more = true;
}

char *bt_json_out_end(struct bt_json_out *o, size_t *len)
{
	char *text;

	out_raw(o, "}", 1);
	text = o->text;
	if (len != NULL)
		*len = o->len;
	memset(o, 0, sizeof *o);
	return text;
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
