/*
 * resources.c -- Mesos resources: parsing, arithmetic, JSON and protobuf.
 *
 * A struct bt_resources is a small array with one entry per (name, role,
 * type); entries never hold an empty value (adding an empty value is a
 * no-op and subtracting drops entries that become empty), as Mesos's
 * Resources class does. The allocator calls find/scalar/contains on every
 * offer cycle, so those walk the array without allocating.
 *
 * The parse functions (text, JSON, protobuf) initialise their output and
 * leave it empty on failure; bt_resources_copy() treats dst as
 * uninitialised storage. Protobuf messages from bt_resources_to_pb() are
 * built piece by piece on the heap, so each one may also be freed with
 * protobuf_c_message_free_unpacked(msg, NULL); bt_resources_pb_free()
 * does exactly that for every element and then frees the array.
 */
#include "resources.h"
#include "json.h"
#include "xmalloc.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = { "SCALAR", "RANGES", "SET", "TEXT" };
static const char *const type_words[] = { "a scalar", "ranges", "a set", "text" };

/*
 * Names and roles: the common ones are shared constants, others heap
 * copies. Ten thousand agents each hold cpus, mem, disk and ports in "*"
 * several times over (total, free pool, offers); sharing the strings saves
 * two allocations per resource. Only this fixed list is shared, so no
 * name a framework sends can grow it.
 */
static const char *const common_strings[] = { "*", "cpus", "mem", "disk", "ports", "gpus" };

static char *str_dup(const char *s)
{
	for (size_t i = 0; i < sizeof common_strings / sizeof common_strings[0]; i++)
		if (strcmp(s, common_strings[i]) == 0)
			return (char *)common_strings[i];
	return xstrdup(s);
}

static void str_free(char *s)
{
	for (size_t i = 0; i < sizeof common_strings / sizeof common_strings[0]; i++)
		if (s == common_strings[i])
			return;
	free(s);
}

void bt_resources_init(struct bt_resources *r)
{
	r->v = NULL;
	r->n = 0;
}

void bt_resources_release(struct bt_resources *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		str_free(r->v[i].name);
		str_free(r->v[i].role);
		bt_value_release(&r->v[i].value);
	}
	free(r->v);
	bt_resources_init(r);
}

void bt_resources_copy(struct bt_resources *dst, const struct bt_resources *src)
{
	size_t i;

	bt_resources_init(dst);
	if (src->n == 0)
		return;
	dst->v = xreallocarray(NULL, src->n, sizeof *dst->v);
	for (i = 0; i < src->n; i++) {
		dst->v[i].name = str_dup(src->v[i].name);
		dst->v[i].role = str_dup(src->v[i].role);
		bt_value_copy(&dst->v[i].value, &src->v[i].value);
	}
	dst->n = src->n;
}

/* ---- lookup and arithmetic ---- */

static struct bt_resource *find_typed(const struct bt_resources *r, const char *name,
    const char *role, enum bt_value_type type)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->v[i].value.type == type && strcmp(r->v[i].name, name) == 0 &&
		    strcmp(r->v[i].role, role) == 0)
			return &r->v[i];
	return NULL;
}

const struct bt_resource *bt_resources_find(const struct bt_resources *r, const char *name,
    const char *role)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0 &&
		    (role == NULL || strcmp(r->v[i].role, role) == 0))
			return &r->v[i];
	return NULL;
}

int64_t bt_resources_scalar(const struct bt_resources *r, const char *name)
{
	struct bt_value sum = { .type = BT_SCALAR };
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->v[i].value.type == BT_SCALAR && strcmp(r->v[i].name, name) == 0)
			bt_value_add(&sum, &r->v[i].value);
	return sum.scalar;
}

void bt_resources_add_one(struct bt_resources *r, const char *name, const char *role,
    const struct bt_value *v)
{
	struct bt_resource *e;

	if (role == NULL)
		role = "*";
	if (bt_value_is_empty(v))
		return;
	e = find_typed(r, name, role, v->type);
	if (e != NULL) {
		bt_value_add(&e->value, v);
		return;
	}
	r->v = xreallocarray(r->v, r->n + 1, sizeof *r->v);
	e = &r->v[r->n++];
	e->name = str_dup(name);
	e->role = str_dup(role);
	bt_value_copy(&e->value, v);
}

void bt_resources_add(struct bt_resources *dst, const struct bt_resources *src)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		bt_resources_add_one(dst, src->v[i].name, src->v[i].role, &src->v[i].value);
}

static void remove_at(struct bt_resources *r, size_t i)
{
	str_free(r->v[i].name);
	str_free(r->v[i].role);
	bt_value_release(&r->v[i].value);
	memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
	r->n--;
}

int bt_resources_subtract(struct bt_resources *dst, const struct bt_resources *src)
{
	struct bt_resource *e;
	size_t i;

	if (!bt_resources_contains(dst, src))
		return -1;
	for (i = 0; i < src->n; i++) {
		e = find_typed(dst, src->v[i].name, src->v[i].role, src->v[i].value.type);
		if (e == NULL)
			continue;       /* src's entry is empty */
		bt_value_subtract(&e->value, &src->v[i].value);
		if (bt_value_is_empty(&e->value))
			remove_at(dst, (size_t)(e - dst->v));
	}
	return 0;
}

bool bt_resources_contains(const struct bt_resources *a, const struct bt_resources *b)
{
	const struct bt_resource *e;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (bt_value_is_empty(&b->v[i].value))
			continue;
		e = find_typed(a, b->v[i].name, b->v[i].role, b->v[i].value.type);
		if (e == NULL || !bt_value_contains(&e->value, &b->v[i].value))
			return false;
	}
	return true;
}

bool bt_resources_empty(const struct bt_resources *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!bt_value_is_empty(&r->v[i].value))
			return false;
	return true;
}

/*
 * Add one parsed entry, refusing a second type for the same name and role
 * ("cpus:1;cpus:[1-2]"). Empty values are skipped, as add_one does.
 */
static int add_checked(struct bt_resources *r, const char *name, const char *role,
    const struct bt_value *v, char **cause)
{
	size_t i;

	if (bt_value_is_empty(v))
		return 0;
	for (i = 0; i < r->n; i++)
		if (r->v[i].value.type != v->type && strcmp(r->v[i].name, name) == 0 &&
		    strcmp(r->v[i].role, role) == 0) {
			*cause = xasprintf("'%s' of role '%s' is given as both %s and %s", name,
			    role, type_words[r->v[i].value.type], type_words[v->type]);
			return -1;
		}
	bt_resources_add_one(r, name, role, v);
	return 0;
}

static int from_json(struct bt_resources *r, const json_t *array, const char *default_role,
    char **cause);

/* ---- text form ---- */

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

/* split "name(role)" (already trimmed) into name and role */
static int parse_name(const char *s, const char *default_role, char **name, char **role,
    char **cause)
{
	const char *paren = strchr(s, '(');
	size_t len = strlen(s);

	*name = *role = NULL;
	if (paren == NULL) {
		*name = xstrdup(s);
		*role = xstrdup(default_role);
	} else if (s[len - 1] != ')') {
		*cause = xasprintf("role of '%s' is not closed by ')'", s);
		return -1;
	} else {
		*name = trimmed(s, (size_t)(paren - s));
		*role = trimmed(paren + 1, (size_t)(s + len - 1 - (paren + 1)));
		if ((*role)[0] == '\0') {
			*cause = xasprintf("empty role in '%s'", s);
			return -1;
		}
	}
	if ((*name)[0] == '\0') {
		*cause = xstrdup("empty resource name");
		return -1;
	}
	/* a leading '[' would make the formatted text read as JSON */
	if ((*name)[0] == '[') {
		*cause = xasprintf("resource name '%s' must not start with '['", *name);
		return -1;
	}
	return 0;
}

/* one "name(role):value" piece, trimmed and non-empty */
static int parse_piece(struct bt_resources *r, const char *piece, const char *default_role,
    char **cause)
{
	const char *colon = strchr(piece, ':');
	char *head = NULL, *name = NULL, *role = NULL, *text = NULL;
	struct bt_value v;
	int rc = -1;

	bt_value_init(&v);
	if (colon == NULL) {
		*cause = xstrdup("missing ':'");
		goto out;
	}
	head = trimmed(piece, (size_t)(colon - piece));
	text = trimmed(colon + 1, strlen(colon + 1));
	if (parse_name(head, default_role, &name, &role, cause) != 0 ||
	    bt_value_parse(&v, text, false, cause) != 0)
		goto out;
	if (v.type == BT_SCALAR && text[0] == '-') {
		*cause = xstrdup("scalar must not be negative");
		goto out;
	}
	rc = add_checked(r, name, role, &v, cause);
out:
	bt_value_release(&v);
	free(text);
	free(role);
	free(name);
	free(head);
	return rc;
}

static int parse_text(struct bt_resources *r, const char *text, const char *default_role,
    char **cause)
{
	const char *p = text, *semi;
	char *piece, *why = NULL;
	int rc = 0;

	while (rc == 0 && *p != '\0') {
		semi = strchr(p, ';');
		if (semi == NULL)
			semi = p + strlen(p);
		piece = trimmed(p, (size_t)(semi - p));
		if (piece[0] != '\0' && parse_piece(r, piece, default_role, &why) != 0) {
			*cause = xasprintf("unable to parse resources '%s': %s", piece, why);
			free(why);
			rc = -1;
		}
		free(piece);
		p = *semi == ';' ? semi + 1 : semi;
	}
	return rc;
}

int bt_resources_parse(struct bt_resources *r, const char *text, const char *default_role,
    char **cause)
{
	const char *p = text;
	json_t *j;
	char *why = NULL;
	int rc;

	bt_resources_init(r);
	if (default_role == NULL || default_role[0] == '\0')
		default_role = "*";
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '[')
		rc = parse_text(r, p, default_role, cause);
	else if ((j = bt_json_parse(p, strlen(p), &why)) == NULL) {
		*cause = xasprintf("unable to parse resources JSON: %s", why);
		rc = -1;
	} else {
		rc = from_json(r, j, default_role, &why);
		if (rc != 0)
			*cause = xasprintf("unable to parse resources JSON: %s", why);
		json_decref(j);
	}
	free(why);
	if (rc != 0)
		bt_resources_release(r);
	return rc;
}

char *bt_resources_format(const struct bt_resources *r)
{
	char *buf = NULL, *value;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	for (i = 0; i < r->n; i++) {
		value = bt_value_format(&r->v[i].value);
		fprintf(f, "%s%s(%s):%s", i ? "; " : "", r->v[i].name, r->v[i].role, value);
		free(value);
	}
	fclose(f);
	return buf;
}

/* ---- JSON ---- */

/* whole numbers as JSON integers, others as reals: 4, 0.5 */
static json_t *scalar_json(int64_t milli)
{
	if (milli % 1000 == 0)
		return json_integer(milli / 1000);
	return json_real(bt_scalar_to_double(milli));
}

static json_t *value_json(json_t *o, const struct bt_value *v)
{
	json_t *arr;
	size_t i;

	switch (v->type) {
	case BT_SCALAR:
		json_object_set_new(o, "scalar", json_pack("{s:o}", "value", scalar_json(v->scalar)));
		break;
	case BT_RANGES:
		arr = json_array();
		for (i = 0; i < v->nranges; i++)
			json_array_append_new(arr, json_pack("{s:o,s:o}",
			    "begin", json_integer((json_int_t)v->ranges[i].begin),
			    "end", json_integer((json_int_t)v->ranges[i].end)));
		json_object_set_new(o, "ranges", json_pack("{s:o}", "range", arr));
		break;
	case BT_SET:
		arr = json_array();
		for (i = 0; i < v->nitems; i++)
			json_array_append_new(arr, json_string(v->items[i]));
		json_object_set_new(o, "set", json_pack("{s:o}", "item", arr));
		break;
	case BT_TEXT:
		json_object_set_new(o, "text", json_pack("{s:s}", "value", v->text ? v->text : ""));
		break;
	}
	return o;
}

json_t *bt_resources_to_json(const struct bt_resources *r)
{
	json_t *arr = json_array(), *o;
	size_t i;

	for (i = 0; i < r->n; i++) {
		o = json_pack("{s:s,s:s}", "name", r->v[i].name,
		    "type", type_names[r->v[i].value.type]);
		value_json(o, &r->v[i].value);
		json_object_set_new(o, "role", json_string(r->v[i].role));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* a range bound: a non-negative JSON integer */
static int json_u64(const json_t *j, uint64_t *out)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(j);
	return 0;
}

static int ranges_from_json(struct bt_value *v, const json_t *ranges, char **why)
{
	const json_t *arr = json_object_get(ranges, "range"), *r;
	uint64_t b, e;
	size_t i;

	if (!json_is_object(ranges) || (arr != NULL && !json_is_array(arr))) {
		*why = xstrdup("'ranges' must be an object with a 'range' array");
		return -1;
	}
	json_array_foreach(arr, i, r) {
		if (json_u64(json_object_get(r, "begin"), &b) != 0 ||
		    json_u64(json_object_get(r, "end"), &e) != 0) {
			*why = xasprintf("range %zu needs non-negative integers 'begin' and 'end'", i);
			return -1;
		}
		if (b > e) {
			*why = xasprintf("range begin %" PRIu64 " is after end %" PRIu64, b, e);
			return -1;
		}
		bt_ranges_add(&v->ranges, &v->nranges, b, e);
	}
	return 0;
}

static int set_from_json(struct bt_value *v, const json_t *set, char **why)
{
	const json_t *arr = json_object_get(set, "item"), *it;
	struct bt_value one = { .type = BT_SET, .nitems = 1 };
	char *item;
	size_t i;

	if (!json_is_object(set) || (arr != NULL && !json_is_array(arr))) {
		*why = xstrdup("'set' must be an object with an 'item' array");
		return -1;
	}
	json_array_foreach(arr, i, it) {
		if (!json_is_string(it) || json_string_value(it)[0] == '\0') {
			*why = xasprintf("set item %zu is not a non-empty string", i);
			return -1;
		}
		item = (char *)json_string_value(it);   /* only read by bt_value_add */
		one.items = &item;
		bt_value_add(v, &one);
	}
	return 0;
}

static int value_from_json(struct bt_value *v, const json_t *o, char **why)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const json_t *scalar;
	double d;

	bt_value_init(v);
	if (type != NULL && strcmp(type, "SCALAR") == 0) {
		scalar = json_object_get(json_object_get(o, "scalar"), "value");
		if (!json_is_number(scalar)) {
			*why = xstrdup("type SCALAR but no numeric 'scalar.value'");
			return -1;
		}
		d = json_number_value(scalar);
		if (d < 0) {
			*why = xstrdup("scalar must not be negative");
			return -1;
		}
		if (d > 1e12) {
			*why = xasprintf("scalar value %g is too large", d);
			return -1;
		}
		v->scalar = bt_scalar_from_double(d);
		return 0;
	}
	if (type != NULL && strcmp(type, "RANGES") == 0) {
		v->type = BT_RANGES;
		return ranges_from_json(v, json_object_get(o, "ranges"), why);
	}
	if (type != NULL && strcmp(type, "SET") == 0) {
		v->type = BT_SET;
		return set_from_json(v, json_object_get(o, "set"), why);
	}
	*why = xstrdup("'type' must be \"SCALAR\", \"RANGES\" or \"SET\"");
	return -1;
}

/* "role", else the innermost of "reservations", else default_role */
static const char *role_from_json(const json_t *o, const char *default_role)
{
	const json_t *res = json_object_get(o, "reservations");
	const char *role = json_string_value(json_object_get(o, "role"));

	if (json_array_size(res) > 0) {
		const char *inner = json_string_value(json_object_get(
		    json_array_get(res, json_array_size(res) - 1), "role"));
		if (inner != NULL && inner[0] != '\0')
			return inner;
	}
	return role != NULL && role[0] != '\0' ? role : default_role;
}

static int from_json(struct bt_resources *r, const json_t *array, const char *default_role,
    char **cause)
{
	const json_t *o;
	const char *name;
	struct bt_value v;
	char *why = NULL;
	size_t i;
	int rc = 0;

	bt_resources_init(r);
	if (!json_is_array(array)) {
		*cause = xstrdup("invalid resources: not a JSON array");
		return -1;
	}
	json_array_foreach(array, i, o) {
		name = json_string_value(json_object_get(o, "name"));
		bt_value_init(&v);
		if (!json_is_object(o))
			why = xstrdup("not an object");
		else if (name == NULL || name[0] == '\0')
			why = xstrdup("'name' is missing or empty");
		else if (value_from_json(&v, o, &why) == 0)
			add_checked(r, name, role_from_json(o, default_role), &v, &why);
		bt_value_release(&v);
		if (why != NULL) {
			if (name != NULL)
				*cause = xasprintf("invalid resource '%s': %s", name, why);
			else
				*cause = xasprintf("invalid resource at index %zu: %s", i, why);
			free(why);
			rc = -1;
			break;
		}
	}
	if (rc != 0)
		bt_resources_release(r);
	return rc;
}

int bt_resources_from_json(struct bt_resources *r, const json_t *array, char **cause)
{
	return from_json(r, array, "*", cause);
}

/* add v (a scalar) to the number at o[name] */
static void flat_add_scalar(json_t *o, const char *name, int64_t milli)
{
	json_t *old = json_object_get(o, name);
	struct bt_value sum = { .type = BT_SCALAR, .scalar = milli };
	struct bt_value prev = { .type = BT_SCALAR };

	if (json_is_number(old)) {
		prev.scalar = bt_scalar_from_double(json_number_value(old));
		bt_value_add(&sum, &prev);
	}
	json_object_set_new(o, name, scalar_json(sum.scalar));
}

json_t *bt_resources_flat_json(const struct bt_resources *r)
{
	static const char *const always[] = { "cpus", "gpus", "mem", "disk" };
	struct bt_resources merged;
	json_t *o = json_object();
	char *text;
	size_t i;

	for (i = 0; i < sizeof always / sizeof always[0]; i++)
		json_object_set_new(o, always[i], json_integer(0));
	/* ranges and sets of every role unite under one name */
	bt_resources_init(&merged);
	for (i = 0; i < r->n; i++) {
		if (r->v[i].value.type == BT_SCALAR)
			flat_add_scalar(o, r->v[i].name, r->v[i].value.scalar);
		else
			bt_resources_add_one(&merged, r->v[i].name, "*", &r->v[i].value);
	}
	for (i = 0; i < merged.n; i++) {
		text = bt_value_format(&merged.v[i].value);
		json_object_set_new(o, merged.v[i].name, json_string(text));
		free(text);
	}
	bt_resources_release(&merged);
	return o;
}

/* ---- protobuf ---- */

static const char *role_from_pb(const Mesos__V1__Resource *m)
{
	if (m->n_reservations > 0) {
		const Mesos__V1__Resource__ReservationInfo *inner =
		    m->reservations[m->n_reservations - 1];
		if (inner != NULL && inner->role != NULL && inner->role[0] != '\0')
			return inner->role;
	}
	/* Resource.role is deprecated in favour of reservations, yet still the v1 field */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	return m->role != NULL && m->role[0] != '\0' ? m->role : "*";
#pragma GCC diagnostic pop
}

static int one_from_pb(struct bt_resources *r, const Mesos__V1__Resource *m, char **why)
{
	struct bt_value v;
	int rc = -1;

	bt_value_init(&v);
	if (m->type == MESOS__V1__VALUE__TYPE__TEXT) {
		*why = xstrdup("type TEXT is not allowed for resources");
		goto out;
	}
	if (bt_value_from_pb_parts(&v, m->type, m->scalar, m->ranges, m->set, NULL, why) != 0)
		goto out;
	if (v.type == BT_SCALAR && m->scalar->value < 0) {
		*why = xstrdup("scalar must not be negative");
		goto out;
	}
	rc = add_checked(r, m->name, role_from_pb(m), &v, why);
out:
	bt_value_release(&v);
	return rc;
}

int bt_resources_from_pb(struct bt_resources *r, Mesos__V1__Resource *const *pb, size_t n,
    char **cause)
{
	char *why = NULL;
	size_t i;

	bt_resources_init(r);
	for (i = 0; i < n; i++) {
		if (pb[i] == NULL || pb[i]->name == NULL || pb[i]->name[0] == '\0') {
			*cause = xasprintf("invalid resource at index %zu: 'name' is missing", i);
			goto fail;
		}
		if (one_from_pb(r, pb[i], &why) != 0) {
			*cause = xasprintf("invalid resource '%s': %s", pb[i]->name, why);
			free(why);
			goto fail;
		}
	}
	return 0;
fail:
	bt_resources_release(r);
	return -1;
}

static Mesos__V1__Resource *one_to_pb(const struct bt_resource *e, const char *alloc_role)
{
	Mesos__V1__Resource *m = xmalloc(sizeof *m);

	mesos__v1__resource__init(m);
	m->name = xstrdup(e->name);
	m->type = (Mesos__V1__Value__Type)e->value.type;
	bt_value_to_pb_parts(&e->value, &m->scalar, &m->ranges, &m->set, NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	m->role = xstrdup(e->role);
#pragma GCC diagnostic pop
	if (alloc_role != NULL) {
		m->allocation_info = xmalloc(sizeof *m->allocation_info);
		mesos__v1__resource__allocation_info__init(m->allocation_info);
		m->allocation_info->role = xstrdup(alloc_role);
	}
	return m;
}

Mesos__V1__Resource **bt_resources_to_pb(const struct bt_resources *r, const char *alloc_role,
    size_t *n)
{
	Mesos__V1__Resource **pb = xreallocarray(NULL, r->n ? r->n : 1, sizeof *pb);
	size_t i;

	*n = 0;
	for (i = 0; i < r->n; i++)
		if (r->v[i].value.type != BT_TEXT)     /* a Resource cannot carry text */
			pb[(*n)++] = one_to_pb(&r->v[i], alloc_role);
	return pb;
}

void bt_resources_pb_free(Mesos__V1__Resource **pb, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&pb[i]->base, NULL);
	free(pb);
}
