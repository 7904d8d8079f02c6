/*
 * pbjson.c -- protobuf messages to and from JSON by Mesos's mapping rules.
 *
 * Both directions walk the protobuf-c descriptors, so one converter serves
 * every message type. A field's value lives at desc->fields[i].offset in
 * the C struct; its presence is the has_ flag at quantifier_offset for
 * optional scalars and bytes, a non-NULL pointer (other than the default's)
 * for optional strings and messages, and the n_ count at quantifier_offset
 * for repeated fields.
 *
 * Message -> JSON follows stout's protobuf.hpp: set fields, plus unset
 * optional fields with a declared, non-deprecated default; repeated fields
 * only when non-empty. JSON -> message allocates every part separately on
 * the heap so that protobuf_c_message_free_unpacked(msg, NULL) frees the
 * tree, both on success and when a half-built message is thrown away after
 * an error. Errors name the field's path: "field 'a.b[2].c' ...".
 */
#include "pbjson.h"

#include <errno.h>
#include <event2/buffer.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "xmalloc.h"

#define MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))
#define CMEMBER(type, msg, off) (*(type const *)((const char *)(msg) + (off)))

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *bt_base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = b64_alphabet[v >> 6 & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* standard alphabet; padding may be left out but must be right when given */
int bt_base64_decode(const char *text, void **data, size_t *len)
{
	size_t n = strlen(text), pad = 0, i, o = 0;
	unsigned char *out;
	uint32_t acc = 0;

	if (n > 0 && text[n - 1] == '=')
		pad++;
	if (n > 1 && text[n - 2] == '=')
		pad++;
	if (pad > 0 && n % 4 != 0)
		return -1;
	n -= pad;
	if (n % 4 == 1)
		return -1;
	out = xmalloc(n / 4 * 3 + 3);
	for (i = 0; i < n; i++) {
		int v = b64_value((unsigned char)text[i]);
		if (v < 0) {
			free(out);
			return -1;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = acc >> 16 & 0xff;
			out[o++] = acc >> 8 & 0xff;
			out[o++] = acc & 0xff;
		}
	}
	if (n % 4 == 2) {
		out[o++] = acc >> 4 & 0xff;
	} else if (n % 4 == 3) {
		out[o++] = acc >> 10 & 0xff;
		out[o++] = acc >> 2 & 0xff;
	}
	*data = out;
	*len = o;
	return 0;
}

/* ---- message -> JSON ---- */

static size_t utf8_sequence(const unsigned char *s)
{
	uint32_t cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* a JSON string; bytes that are not UTF-8 become U+FFFD */
static json_t *string_to_json(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	json_t *j = json_string(s);
	char *clean, *o;

	if (j != NULL)
		return j;
	clean = o = xmalloc(strlen(s) * 3 + 1);
	while (*p != '\0') {
		size_t n = utf8_sequence(p);
		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, n);
		o += n;
		p += n;
	}
	*o = '\0';
	j = json_string(clean);
	free(clean);
	return j != NULL ? j : json_string("");
}

static json_t *double_to_json(double d)
{
	if (isnan(d))
		return json_string("NaN");
	if (isinf(d))
		return json_string(d > 0 ? "Infinity" : "-Infinity");
	return json_real(d);
}

static json_t *uint64_to_json(uint64_t v)
{
	char text[32];

	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	/* JSON numbers beyond int64 do not survive parsers; keep it exact */
	snprintf(text, sizeof text, "%llu", (unsigned long long)v);
	return json_string(text);
}

static json_t *enum_to_json(const ProtobufCEnumDescriptor *ed, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);

	return ev != NULL ? json_string(ev->name) : json_integer(v);
}

/* the value of one field (or one element of a repeated field) at src */
static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *src)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)src);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return json_integer(*(const int64_t *)src);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)src);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return uint64_to_json(*(const uint64_t *)src);
	case PROTOBUF_C_TYPE_FLOAT:
		return double_to_json(*(const float *)src);
	case PROTOBUF_C_TYPE_DOUBLE:
		return double_to_json(*(const double *)src);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)src);
	case PROTOBUF_C_TYPE_ENUM:
		return enum_to_json(f->descriptor, *(const int *)src);
	case PROTOBUF_C_TYPE_STRING:
		return string_to_json(*(char *const *)src);
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = src;
		char *text = bt_base64_encode(b->data, b->data != NULL ? b->len : 0);
		json_t *j = json_string(text);
		free(text);
		return j;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return bt_pbjson_from_message(*(ProtobufCMessage *const *)src);
	}
	return json_null();
}

static size_t element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

static json_t *repeated_to_json(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
	size_t n = CMEMBER(size_t, msg, f->quantifier_offset), i, size = element_size(f->type);
	const char *arr = CMEMBER(const char *, msg, f->offset);
	json_t *a;

	if (n == 0 || arr == NULL)
		return NULL;
	a = json_array();
	for (i = 0; i < n; i++) {
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
			if (((void *const *)arr)[i] == NULL)
				continue;
		}
		json_array_append_new(a, value_to_json(f, arr + i * size));
	}
	return a;
}

/* is an optional (or proto3 implicit) field set in msg? */
static bool field_present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
		const void *p = CMEMBER(const void *, msg, f->offset);
		return p != NULL && p != f->default_value;
	}
	if (f->label == PROTOBUF_C_LABEL_NONE)
		return true;
	return CMEMBER(protobuf_c_boolean, msg, f->quantifier_offset) != 0;
}

/* the JSON for one field, or NULL when it is not emitted */
static json_t *field_to_json(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
	const void *src = (const char *)msg + f->offset;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (CMEMBER(uint32_t, msg, f->quantifier_offset) != f->id)
			return NULL;
		return value_to_json(f, src);
	}
	switch (f->label) {
	case PROTOBUF_C_LABEL_REPEATED:
		return repeated_to_json(f, msg);
	case PROTOBUF_C_LABEL_REQUIRED:
		if ((f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) &&
		    CMEMBER(const void *, msg, f->offset) == NULL)
			return NULL;
		return value_to_json(f, src);
	default:
		if (field_present(f, msg))
			return value_to_json(f, src);
		if (f->default_value == NULL || (f->flags & PROTOBUF_C_FIELD_FLAG_DEPRECATED))
			return NULL;
		if (f->type == PROTOBUF_C_TYPE_STRING)
			return string_to_json(f->default_value);
		return value_to_json(f, f->default_value);
	}
}

json_t *bt_pbjson_from_message(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc;
	json_t *obj = json_object();
	unsigned i;

	if (msg == NULL)
		return obj;
	desc = msg->descriptor;
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		json_t *v = field_to_json(f, msg);
		if (v != NULL)
			json_object_set_new(obj, f->name, v);
	}
	return obj;
}

/* ---- JSON -> message ---- */

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *desc,
    const json_t *json, const char *path, char **cause);

static char *child_path(const char *parent, const char *name)
{
	return parent[0] != '\0' ? xasprintf("%s.%s", parent, name) : xstrdup(name);
}

static void set_cause(char **cause, char *text)
{
	if (cause != NULL)
		*cause = text;
	else
		free(text);
}

/* a number, or a numeric string, as an integer in [min, max] */
static int json_to_int64(const json_t *j, int64_t min, int64_t max, int64_t *out)
{
	if (json_is_integer(j)) {
		*out = json_integer_value(j);
	} else if (json_is_real(j)) {
		double d = json_real_value(j);
		if (d != floor(d))
			return -1;
		if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
			return -2;
		*out = (int64_t)d;
	} else if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;
		if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
			return -1;
		errno = 0;
		*out = strtoll(s, &end, 10);
		if (end == s || *end != '\0')
			return -1;
		if (errno == ERANGE)
			return -2;
	} else {
		return -1;
	}
	return *out < min || *out > max ? -2 : 0;
}

static int json_to_uint64(const json_t *j, uint64_t max, uint64_t *out)
{
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;
		if (s[0] == '-')
			return -2;
		if (!(s[0] >= '0' && s[0] <= '9'))
			return -1;
		errno = 0;
		*out = strtoull(s, &end, 10);
		if (end == s || *end != '\0')
			return -1;
		if (errno == ERANGE)
			return -2;
	} else if (json_is_real(j)) {
		double d = json_real_value(j);
		if (d != floor(d))
			return -1;
		if (!(d >= 0 && d < 18446744073709551616.0))
			return -2;
		*out = (uint64_t)d;
	} else {
		int64_t v;
		int rc = json_to_int64(j, INT64_MIN, INT64_MAX, &v);
		if (rc != 0)
			return rc;
		if (v < 0)
			return -2;
		*out = (uint64_t)v;
	}
	return *out > max ? -2 : 0;
}

static int json_to_double(const json_t *j, double *out)
{
	if (json_is_number(j)) {
		*out = json_number_value(j);
		return 0;
	}
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;
		if (strcmp(s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
			*out = s[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		if (!(s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
			return -1;
		*out = strtod(s, &end);
		if (end == s || *end != '\0')
			return -1;
		return 0;
	}
	return -1;
}

static const char *type_name(ProtobufCType type)
{
	static const char *const names[] = {
		"int32", "sint32", "sfixed32", "int64", "sint64", "sfixed64", "uint32",
		"fixed32", "uint64", "fixed64", "float", "double", "bool", "enum", "string",
		"bytes", "message",
	};
	return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "value";
}

static int number_error(int rc, const json_t *j, const ProtobufCFieldDescriptor *f,
    const char *path, char **cause)
{
	char *text;

	if (rc == -1) {
		set_cause(cause, xasprintf("field '%s' must be %s", path,
		    f->type == PROTOBUF_C_TYPE_FLOAT || f->type == PROTOBUF_C_TYPE_DOUBLE ?
		    "a number" : "an integer"));
		return -1;
	}
	text = json_dumps(j, BT_JSON_DUMP_FLAGS);
	set_cause(cause, xasprintf("field '%s': %s is out of range for %s", path,
	    text != NULL ? text : "value", type_name(f->type)));
	free(text);
	return -1;
}

static int integer_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *dst,
    const char *path, char **cause)
{
	int64_t s;
	uint64_t u;
	int rc;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((rc = json_to_int64(j, INT32_MIN, INT32_MAX, &s)) == 0)
			*(int32_t *)dst = (int32_t)s;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((rc = json_to_uint64(j, UINT32_MAX, &u)) == 0)
			*(uint32_t *)dst = (uint32_t)u;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((rc = json_to_uint64(j, UINT64_MAX, &u)) == 0)
			*(uint64_t *)dst = u;
		break;
	default:
		if ((rc = json_to_int64(j, INT64_MIN, INT64_MAX, &s)) == 0)
			*(int64_t *)dst = s;
		break;
	}
	return rc == 0 ? 0 : number_error(rc, j, f, path, cause);
}

static int real_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *dst,
    const char *path, char **cause)
{
	double d;

	if (json_to_double(j, &d) != 0)
		return number_error(-1, j, f, path, cause);
	if (f->type == PROTOBUF_C_TYPE_DOUBLE) {
		*(double *)dst = d;
		return 0;
	}
	if (isfinite(d) && fabs(d) > FLT_MAX)
		return number_error(-2, j, f, path, cause);
	*(float *)dst = (float)d;
	return 0;
}

static int enum_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *dst,
    const char *path, char **cause)
{
	const ProtobufCEnumDescriptor *ed = f->descriptor;
	const ProtobufCEnumValue *ev = NULL;

	if (json_is_string(j)) {
		ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
		if (ev == NULL) {
			set_cause(cause, xasprintf("field '%s': unknown enum value '%s' for %s",
			    path, json_string_value(j), ed->name));
			return -1;
		}
	} else if (json_is_integer(j)) {
		json_int_t v = json_integer_value(j);
		if (v >= INT32_MIN && v <= INT32_MAX)
			ev = protobuf_c_enum_descriptor_get_value(ed, (int)v);
		if (ev == NULL) {
			set_cause(cause, xasprintf("field '%s': unknown enum value %lld for %s",
			    path, (long long)v, ed->name));
			return -1;
		}
	} else {
		set_cause(cause, xasprintf("field '%s' must be the name of a %s value", path,
		    ed->name));
		return -1;
	}
	*(int *)dst = ev->value;
	return 0;
}

static int bytes_from_json(const json_t *j, void *dst, const char *path, char **cause)
{
	ProtobufCBinaryData *b = dst;
	void *data;
	size_t len;

	if (!json_is_string(j)) {
		set_cause(cause, xasprintf("field '%s' must be a base64 string", path));
		return -1;
	}
	if (bt_base64_decode(json_string_value(j), &data, &len) != 0) {
		set_cause(cause, xasprintf("field '%s' is not valid base64", path));
		return -1;
	}
	b->data = data;
	b->len = len;
	return 0;
}

/*
 * Store the value for f from j at dst. Heap parts (strings, bytes,
 * messages) are stored only when complete, so a failure leaves dst as it
 * was and the message can still be freed.
 */
static int value_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *dst,
    const char *path, char **cause)
{
	ProtobufCMessage *sub;

	switch (f->type) {
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		return real_from_json(f, j, dst, path, cause);
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(j)) {
			set_cause(cause, xasprintf("field '%s' must be a boolean", path));
			return -1;
		}
		*(protobuf_c_boolean *)dst = json_is_true(j);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		return enum_from_json(f, j, dst, path, cause);
	case PROTOBUF_C_TYPE_STRING:
		if (!json_is_string(j)) {
			set_cause(cause, xasprintf("field '%s' must be a string", path));
			return -1;
		}
		*(char **)dst = xstrdup(json_string_value(j));
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		return bytes_from_json(j, dst, path, cause);
	case PROTOBUF_C_TYPE_MESSAGE:
		sub = message_from_json(f->descriptor, j, path, cause);
		if (sub == NULL)
			return -1;
		*(ProtobufCMessage **)dst = sub;
		return 0;
	default:
		return integer_from_json(f, j, dst, path, cause);
	}
}

static int repeated_from_json(const ProtobufCFieldDescriptor *f, const json_t *j,
    ProtobufCMessage *msg, const char *path, char **cause)
{
	size_t n, i, size = element_size(f->type);
	char *arr;

	if (!json_is_array(j)) {
		set_cause(cause, xasprintf("field '%s' must be an array", path));
		return -1;
	}
	n = json_array_size(j);
	if (n == 0)
		return 0;
	arr = xcalloc(n, size);
	/* the array and its count are in the message from here on */
	MEMBER(void *, msg, f->offset) = arr;
	for (i = 0; i < n; i++) {
		char *elem = xasprintf("%s[%zu]", path, i);
		int rc = value_from_json(f, json_array_get(j, i), arr + i * size, elem, cause);
		free(elem);
		if (rc != 0)
			return -1;
		MEMBER(size_t, msg, f->quantifier_offset) = i + 1;
	}
	return 0;
}

static int field_from_json(const ProtobufCFieldDescriptor *f, const json_t *j,
    ProtobufCMessage *msg, const char *path, char **cause)
{
	void *dst = (char *)msg + f->offset;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return repeated_from_json(f, j, msg, path, cause);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (MEMBER(uint32_t, msg, f->quantifier_offset) != 0) {
			set_cause(cause, xasprintf("field '%s' is one of a oneof that is already set",
			    path));
			return -1;
		}
		if (value_from_json(f, j, dst, path, cause) != 0)
			return -1;
		MEMBER(uint32_t, msg, f->quantifier_offset) = f->id;
		return 0;
	}
	if (value_from_json(f, j, dst, path, cause) != 0)
		return -1;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
	return 0;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *desc,
    const json_t *json, const char *path, char **cause)
{
	ProtobufCMessage *msg;
	unsigned i;

	if (!json_is_object(json)) {
		if (path[0] != '\0')
			set_cause(cause, xasprintf("field '%s' must be an object", path));
		else
			set_cause(cause, xasprintf("expected a JSON object for %s", desc->name));
		return NULL;
	}
	msg = xmalloc(desc->sizeof_message);
	desc->message_init(msg);
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		json_t *j = json_object_get(json, f->name);
		char *fpath;
		int rc = 0;

		if (j == NULL || json_is_null(j)) {
			if (f->label != PROTOBUF_C_LABEL_REQUIRED)
				continue;
			fpath = child_path(path, f->name);
			set_cause(cause, xasprintf("field '%s' is required", fpath));
			free(fpath);
			goto fail;
		}
		fpath = child_path(path, f->name);
		rc = field_from_json(f, j, msg, fpath, cause);
		free(fpath);
		if (rc != 0)
			goto fail;
	}
	return msg;

fail:
	protobuf_c_message_free_unpacked(msg, NULL);
	return NULL;
}

ProtobufCMessage *bt_pbjson_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
    char **cause)
{
	return message_from_json(desc, json, "", cause);
}

/* ---- either encoding ---- */

ProtobufCMessage *bt_pb_decode(const ProtobufCMessageDescriptor *desc, bool json,
    const void *data, size_t len, char **cause)
{
	ProtobufCMessage *msg;
	char *why = NULL;
	json_t *j;

	if (!json) {
		msg = protobuf_c_message_unpack(desc, NULL, len, data);
		if (msg == NULL)
			set_cause(cause, xasprintf("unable to parse protobuf body as %s", desc->name));
		return msg;
	}
	j = bt_json_parse(data, len, &why);
	if (j == NULL) {
		set_cause(cause, xasprintf("unable to parse JSON body: %s", why));
		free(why);
		return NULL;
	}
	msg = bt_pbjson_to_message(desc, j, cause);
	json_decref(j);
	return msg;
}

/* ---- messages that live for one handler ---- */

#define SCOPE_BLOCK (64u * 1024)        /* the block kept between uses */
#define SCOPE_ALIGN 16u

struct scope_block {
	struct scope_block *next;
	size_t size, used;
	max_align_t data[];
};

/*
 * The blocks of the messages decoded since the last moment none was held
 * (depth 0), newest first, and the messages that came from JSON (heap
 * trees, freed part by part). Under AddressSanitizer every allocation is
 * a block of its own, so overruns are still caught.
 */
static struct {
	struct scope_block *blocks;
	int depth;
	ProtobufCMessage **heap;
	size_t nheap, aheap;
} scope;

static struct scope_block *scope_block_new(size_t size)
{
	struct scope_block *b = xmalloc(sizeof *b + size);

	b->size = size;
	b->used = 0;
	b->next = NULL;
	return b;
}

static void *scope_alloc(void *unused, size_t size)
{
	struct scope_block *b = scope.blocks;

	(void)unused;
	size = (size + SCOPE_ALIGN - 1) & ~(size_t)(SCOPE_ALIGN - 1);
#if !defined(__SANITIZE_ADDRESS__)
	if (b != NULL && b->size - b->used >= size) {
		void *p = (char *)b->data + b->used;
		b->used += size;
		return p;
	}
	if (size <= SCOPE_BLOCK / 4) {
		b = scope_block_new(SCOPE_BLOCK);       /* a fresh current block */
		b->used = size;
		b->next = scope.blocks;
		scope.blocks = b;
		return b->data;
	}
#endif
	/* a block of its own, behind the current one, which stays in use */
	b = scope_block_new(size);
	b->used = size;
	if (scope.blocks != NULL) {
		b->next = scope.blocks->next;
		scope.blocks->next = b;
	} else {
		scope.blocks = b;
	}
	return b->data;
}

static void scope_free(void *unused, void *p)
{
	(void)unused;
	(void)p;                /* everything goes when the scope ends */
}

static ProtobufCAllocator scope_allocator = { scope_alloc, scope_free, NULL };

ProtobufCMessage *bt_pb_decode_scoped(const ProtobufCMessageDescriptor *desc, bool json,
    const void *data, size_t len, char **cause)
{
	ProtobufCMessage *msg;

	if (json) {
		msg = bt_pb_decode(desc, true, data, len, cause);
		if (msg == NULL)
			return NULL;
		if (scope.nheap == scope.aheap) {
			scope.aheap = scope.aheap ? scope.aheap * 2 : 8;
			scope.heap = xreallocarray(scope.heap, scope.aheap, sizeof *scope.heap);
		}
		scope.heap[scope.nheap++] = msg;
		scope.depth++;
		return msg;
	}
	scope.depth++;
	msg = protobuf_c_message_unpack(desc, &scope_allocator, len, data);
	if (msg == NULL) {
		bt_pb_decoded_free(NULL);
		set_cause(cause, xasprintf("unable to parse protobuf body as %s", desc->name));
	}
	return msg;
}

/* msg may be NULL: the scope a failed decode opened ends */
void bt_pb_decoded_free(ProtobufCMessage *msg)
{
	struct scope_block *b, *next, *keep = NULL;

	(void)msg;
	if (scope.depth == 0 || --scope.depth > 0)
		return;
	for (b = scope.blocks; b != NULL; b = next) {
		next = b->next;
		if (keep == NULL && b->size == SCOPE_BLOCK) {
			keep = b;
			continue;
		}
		free(b);
	}
	if (keep != NULL) {
		keep->used = 0;
		keep->next = NULL;
	}
	scope.blocks = keep;
	while (scope.nheap > 0)
		protobuf_c_message_free_unpacked(scope.heap[--scope.nheap], NULL);
	if (scope.aheap > 64) {
		free(scope.heap);
		scope.heap = NULL;
		scope.aheap = 0;
	}
}

void *bt_pb_encode_alloc(const ProtobufCMessage *msg, bool json, size_t *len)
{
	uint8_t *buf;
	char *text;

	if (json) {
		json_t *j = bt_pbjson_from_message(msg);
		text = bt_json_dump(j);
		json_decref(j);
		*len = strlen(text);
		return text;
	}
	*len = protobuf_c_message_get_packed_size(msg);
	buf = xmalloc(*len);
	protobuf_c_message_pack(msg, buf);
	return buf;
}

void bt_pb_encode(struct evbuffer *out, const ProtobufCMessage *msg, bool json)
{
	size_t len;
	void *buf = bt_pb_encode_alloc(msg, json, &len);

	evbuffer_add(out, buf, len);
	free(buf);
}
