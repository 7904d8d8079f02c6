/*
 * attributes.c -- agent attributes: "rack:abc;zone:west;level:10;keys:[1000-1500]".
 *
 * The text form is split on ';', each piece on its first ':'; the value
 * goes through bt_value_parse() with text allowed, so a number becomes a
 * scalar, "[..]" ranges, "{..}" a set and anything else text. Names are
 * unique: a second attribute of the same name is an error. Constraints
 * compare against bt_attribute_value_string(), the same text that
 * bt_value_format() gives ("abc", "10", "0.5", "[1000-1500]").
 * Parse functions initialise their output and leave it empty on failure.
 */
#include "attributes.h"
#include "xmalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bt_attributes_init(struct bt_attributes *a)
{
	a->v = NULL;
	a->n = 0;
}

void bt_attributes_release(struct bt_attributes *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		free(a->v[i].name);
		bt_value_release(&a->v[i].value);
	}
	free(a->v);
	bt_attributes_init(a);
}

void bt_attributes_copy(struct bt_attributes *dst, const struct bt_attributes *src)
{
	size_t i;

	bt_attributes_init(dst);
	if (src->n == 0)
		return;
	dst->v = xreallocarray(NULL, src->n, sizeof *dst->v);
	for (i = 0; i < src->n; i++) {
		dst->v[i].name = xstrdup(src->v[i].name);
		bt_value_copy(&dst->v[i].value, &src->v[i].value);
	}
	dst->n = src->n;
}

const struct bt_attribute *bt_attributes_find(const struct bt_attributes *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0)
			return &a->v[i];
	return NULL;
}

/* append name with v, taking v's contents */
static void append(struct bt_attributes *a, const char *name, struct bt_value *v)
{
	a->v = xreallocarray(a->v, a->n + 1, sizeof *a->v);
	a->v[a->n].name = xstrdup(name);
	a->v[a->n].value = *v;
	a->n++;
	bt_value_init(v);
}

void bt_attributes_set_text(struct bt_attributes *a, const char *name, const char *text)
{
	struct bt_attribute *attr = (struct bt_attribute *)bt_attributes_find(a, name);
	struct bt_value v;

	bt_value_init(&v);
	v.type = BT_TEXT;
	v.text = xstrdup(text);
	if (attr == NULL) {
		append(a, name, &v);
		return;
	}
	bt_value_release(&attr->value);
	attr->value = v;
}

static char *trimmed(const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return xstrndup(s, len);
}

/* one "name:value" piece, trimmed and non-empty */
static int parse_piece(struct bt_attributes *a, const char *piece, char **cause)
{
	const char *colon = strchr(piece, ':');
	char *name = NULL;
	struct bt_value v;
	int rc = -1;

	bt_value_init(&v);
	if (colon == NULL) {
		*cause = xstrdup("missing ':'");
		goto out;
	}
	name = trimmed(piece, (size_t)(colon - piece));
	if (name[0] == '\0') {
		*cause = xstrdup("empty attribute name");
		goto out;
	}
	if (bt_attributes_find(a, name) != NULL) {
		*cause = xasprintf("attribute '%s' is given twice", name);
		goto out;
	}
	if (bt_value_parse(&v, colon + 1, true, cause) != 0)
		goto out;
	append(a, name, &v);
	rc = 0;
out:
	bt_value_release(&v);
	free(name);
	return rc;
}

int bt_attributes_parse(struct bt_attributes *a, const char *text, char **cause)
{
	const char *p = text, *semi;
	char *piece, *why = NULL;
	int rc = 0;

	bt_attributes_init(a);
	while (rc == 0 && *p != '\0') {
		semi = strchr(p, ';');
		if (semi == NULL)
			semi = p + strlen(p);
		piece = trimmed(p, (size_t)(semi - p));
		if (piece[0] != '\0' && parse_piece(a, piece, &why) != 0) {
			*cause = xasprintf("unable to parse attributes '%s': %s", piece, why);
			free(why);
			rc = -1;
		}
		free(piece);
		p = *semi == ';' ? semi + 1 : semi;
	}
	if (rc != 0)
		bt_attributes_release(a);
	return rc;
}

char *bt_attributes_format(const struct bt_attributes *a)
{
	char *buf = NULL, *value;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	for (i = 0; i < a->n; i++) {
		value = bt_value_format(&a->v[i].value);
		fprintf(f, "%s%s:%s", i ? ";" : "", a->v[i].name, value);
		free(value);
	}
	fclose(f);
	return buf;
}

char *bt_attribute_value_string(const struct bt_attribute *attr)
{
	return bt_value_format(&attr->value);
}

json_t *bt_attributes_flat_json(const struct bt_attributes *a)
{
	json_t *o = json_object(), *j;
	int64_t milli;
	char *text;
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (a->v[i].value.type == BT_SCALAR) {
			milli = a->v[i].value.scalar;
			if (milli % 1000 == 0)
				j = json_integer(milli / 1000);
			else
				j = json_real(bt_scalar_to_double(milli));
		} else {
			text = bt_value_format(&a->v[i].value);
			j = json_string(text);
			free(text);
		}
		json_object_set_new(o, a->v[i].name, j);
	}
	return o;
}

int bt_attributes_from_pb(struct bt_attributes *a, Mesos__V1__Attribute *const *pb, size_t n,
    char **cause)
{
	struct bt_value v;
	char *why = NULL;
	size_t i;

	bt_attributes_init(a);
	for (i = 0; i < n; i++) {
		if (pb[i] == NULL || pb[i]->name == NULL || pb[i]->name[0] == '\0') {
			*cause = xasprintf("invalid attribute at index %zu: 'name' is missing", i);
			goto fail;
		}
		if (bt_attributes_find(a, pb[i]->name) != NULL) {
			*cause = xasprintf("invalid attribute '%s': given twice", pb[i]->name);
			goto fail;
		}
		if (bt_value_from_pb_parts(&v, pb[i]->type, pb[i]->scalar, pb[i]->ranges,
		    pb[i]->set, pb[i]->text, &why) != 0) {
			*cause = xasprintf("invalid attribute '%s': %s", pb[i]->name, why);
			free(why);
			goto fail;
		}
		append(a, pb[i]->name, &v);
	}
	return 0;
fail:
	bt_attributes_release(a);
	return -1;
}

Mesos__V1__Attribute **bt_attributes_to_pb(const struct bt_attributes *a, size_t *n)
{
	Mesos__V1__Attribute **pb = xreallocarray(NULL, a->n ? a->n : 1, sizeof *pb);
	Mesos__V1__Attribute *m;
	size_t i;

	for (i = 0; i < a->n; i++) {
		m = xmalloc(sizeof *m);
		mesos__v1__attribute__init(m);
		m->name = xstrdup(a->v[i].name);
		m->type = (Mesos__V1__Value__Type)a->v[i].value.type;
		bt_value_to_pb_parts(&a->v[i].value, &m->scalar, &m->ranges, &m->set, &m->text);
		pb[i] = m;
	}
	*n = a->n;
	return pb;
}

void bt_attributes_pb_free(Mesos__V1__Attribute **pb, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&pb[i]->base, NULL);
	free(pb);
}
