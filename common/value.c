/*
 * value.c -- Mesos values: fixed-point scalars, ranges, sets and text.
 *
 * Scalars are integer thousandths (v * 1000 rounded), bounded so that a
 * formatted scalar always parses back to the same number; range bounds
 * read from text or protobuf are at most INT64_MAX, so that every form
 * (text, JSON, protobuf) can carry them. Ranges live in
 * an array kept sorted and coalesced: adding merges every range that
 * overlaps or touches the new one, subtracting trims or splits, and a
 * lookup is a binary search. Sets are sorted arrays of unique strings.
 * bt_value_parse() and the *_copy() functions overwrite their output
 * without releasing it first (it is treated as uninitialised storage);
 * a failed parse leaves an empty, initialised value behind.
 */
#include "util.h"
#include "value.h"
#include "xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1e12 units: large enough for any cluster, small enough to round-trip exactly */
#define SCALAR_MAX_UNITS 1e12
#define SCALAR_LIMIT     INT64_C(1000000000000000)      /* in thousandths */
/* range bounds that JSON (signed 64-bit integers in jansson) can carry */
#define RANGE_MAX        ((uint64_t)INT64_MAX)

int64_t bt_scalar_from_double(double v)
{
	if (isnan(v))
		return 0;
	if (v >= SCALAR_MAX_UNITS)
		return SCALAR_LIMIT;
	if (v <= -SCALAR_MAX_UNITS)
		return -SCALAR_LIMIT;
	return bt_round(v * 1000.0);
}

double bt_scalar_to_double(int64_t milli)
{
	return (double)milli / 1000.0;
}

void bt_value_init(struct bt_value *v)
{
	memset(v, 0, sizeof *v);
	v->type = BT_SCALAR;
}

void bt_value_release(struct bt_value *v)
{
	size_t i;

	free(v->ranges);
	for (i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	free(v->text);
	bt_value_init(v);
}

void bt_value_copy(struct bt_value *dst, const struct bt_value *src)
{
	size_t i;

	bt_value_init(dst);
	dst->type = src->type;
	dst->scalar = src->scalar;
	if (src->nranges > 0) {
		dst->ranges = xmemdup(src->ranges, src->nranges * sizeof *src->ranges);
		dst->nranges = src->nranges;
	}
	if (src->nitems > 0) {
		dst->items = xreallocarray(NULL, src->nitems, sizeof *dst->items);
		for (i = 0; i < src->nitems; i++)
			dst->items[i] = xstrdup(src->items[i]);
		dst->nitems = src->nitems;
	}
	if (src->text != NULL)
		dst->text = xstrdup(src->text);
}

bool bt_value_equal(const struct bt_value *a, const struct bt_value *b)
{
	size_t i;

	if (a->type != b->type)
		return false;
	switch (a->type) {
	case BT_SCALAR:
		return a->scalar == b->scalar;
	case BT_RANGES:
		if (a->nranges != b->nranges)
			return false;
		for (i = 0; i < a->nranges; i++)
			if (a->ranges[i].begin != b->ranges[i].begin ||
			    a->ranges[i].end != b->ranges[i].end)
				return false;
		return true;
	case BT_SET:
		if (a->nitems != b->nitems)
			return false;
		for (i = 0; i < a->nitems; i++)
			if (strcmp(a->items[i], b->items[i]) != 0)
				return false;
		return true;
	case BT_TEXT:
		return strcmp(a->text ? a->text : "", b->text ? b->text : "") == 0;
	}
	return false;
}

/* ---- ranges ---- */

/* index of the first range whose end is >= x (n when none) */
static size_t first_ending_at_or_after(const struct bt_range *r, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].end < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void bt_ranges_add(struct bt_range **r, size_t *n, uint64_t begin, uint64_t end)
{
	struct bt_range *a = *r;
	size_t i, j;

	if (begin > end)
		return;
	/* the first range that overlaps or touches [begin, end] from the left */
	i = first_ending_at_or_after(a, *n, begin == 0 ? 0 : begin - 1);
	/* j: one past the last range that overlaps or touches it on the right */
	for (j = i; j < *n; j++) {
		if (end != UINT64_MAX && a[j].begin > end + 1)
			break;
	}
	if (i == j) {
		a = xreallocarray(a, *n + 1, sizeof *a);
		memmove(&a[i + 1], &a[i], (*n - i) * sizeof *a);
		a[i].begin = begin;
		a[i].end = end;
		(*n)++;
		*r = a;
		return;
	}
	if (a[i].begin < begin)
		begin = a[i].begin;
	if (a[j - 1].end > end)
		end = a[j - 1].end;
	a[i].begin = begin;
	a[i].end = end;
	memmove(&a[i + 1], &a[j], (*n - j) * sizeof *a);
	*n -= j - i - 1;
}

void bt_ranges_subtract(struct bt_range **r, size_t *n, uint64_t begin, uint64_t end)
{
	struct bt_range *a = *r;
	size_t i, j;

	if (begin > end)
		return;
	i = first_ending_at_or_after(a, *n, begin);
	if (i == *n || a[i].begin > end)
		return;
	/* one range strictly containing [begin, end]: split it in two */
	if (a[i].begin < begin && a[i].end > end) {
		a = xreallocarray(a, *n + 1, sizeof *a);
		memmove(&a[i + 1], &a[i], (*n - i) * sizeof *a);
		a[i].end = begin - 1;
		a[i + 1].begin = end + 1;
		(*n)++;
		*r = a;
		return;
	}
	if (a[i].begin < begin) {
		a[i].end = begin - 1;
		i++;
	}
	/* ranges i..j-1 lie entirely inside [begin, end] */
	for (j = i; j < *n && a[j].end <= end; j++)
		;
	if (j < *n && a[j].begin <= end)
		a[j].begin = end + 1;
	memmove(&a[i], &a[j], (*n - j) * sizeof *a);
	*n -= j - i;
}

bool bt_ranges_contains(const struct bt_range *r, size_t n, uint64_t begin, uint64_t end)
{
	size_t i;

	if (begin > end)
		return true;
	i = first_ending_at_or_after(r, n, begin);
	return i < n && r[i].begin <= begin && r[i].end >= end;
}

uint64_t bt_ranges_count(const struct bt_range *r, size_t n)
{
	uint64_t total = 0, len;
	size_t i;

	for (i = 0; i < n; i++) {
		len = r[i].end - r[i].begin;
		if (len == UINT64_MAX || total + len + 1 < total)
			return UINT64_MAX;
		total += len + 1;
	}
	return total;
}

/* ---- sets ---- */

/* position of item in the sorted set, or where it would go (*found false) */
static size_t set_search(char *const *items, size_t n, const char *item, bool *found)
{
	size_t lo = 0, hi = n;
	int c;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		c = strcmp(items[mid], item);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void set_insert(struct bt_value *v, const char *item)
{
	bool found;
	size_t i = set_search(v->items, v->nitems, item, &found);

	if (found)
		return;
	v->items = xreallocarray(v->items, v->nitems + 1, sizeof *v->items);
	memmove(&v->items[i + 1], &v->items[i], (v->nitems - i) * sizeof *v->items);
	v->items[i] = xstrdup(item);
	v->nitems++;
}

static void set_remove(struct bt_value *v, const char *item)
{
	bool found;
	size_t i = set_search(v->items, v->nitems, item, &found);

	if (!found)
		return;
	free(v->items[i]);
	memmove(&v->items[i], &v->items[i + 1], (v->nitems - i - 1) * sizeof *v->items);
	v->nitems--;
}

/* ---- arithmetic ---- */

static int64_t clamp_scalar(int64_t x)
{
	if (x > SCALAR_LIMIT)
		return SCALAR_LIMIT;
	if (x < -SCALAR_LIMIT)
		return -SCALAR_LIMIT;
	return x;
}

int bt_value_add(struct bt_value *a, const struct bt_value *b)
{
	size_t i;

	if (a->type != b->type)
		return -1;
	switch (a->type) {
	case BT_SCALAR:
		/* both within the limit, so the sum cannot overflow int64 */
		a->scalar = clamp_scalar(clamp_scalar(a->scalar) + clamp_scalar(b->scalar));
		return 0;
	case BT_RANGES:
		for (i = 0; i < b->nranges; i++)
			bt_ranges_add(&a->ranges, &a->nranges, b->ranges[i].begin, b->ranges[i].end);
		return 0;
	case BT_SET:
		for (i = 0; i < b->nitems; i++)
			set_insert(a, b->items[i]);
		return 0;
	case BT_TEXT:
		return bt_value_equal(a, b) ? 0 : -1;
	}
	return -1;
}

int bt_value_subtract(struct bt_value *a, const struct bt_value *b)
{
	size_t i;

	if (a->type != b->type)
		return -1;
	switch (a->type) {
	case BT_SCALAR:
		a->scalar = clamp_scalar(a->scalar) - clamp_scalar(b->scalar);
		if (a->scalar < 0)
			a->scalar = 0;
		return 0;
	case BT_RANGES:
		for (i = 0; i < b->nranges; i++)
			bt_ranges_subtract(&a->ranges, &a->nranges, b->ranges[i].begin,
			    b->ranges[i].end);
		return 0;
	case BT_SET:
		for (i = 0; i < b->nitems; i++)
			set_remove(a, b->items[i]);
		return 0;
	case BT_TEXT:
		if (!bt_value_equal(a, b))
			return -1;
		free(a->text);
		a->text = xstrdup("");
		return 0;
	}
	return -1;
}

bool bt_value_contains(const struct bt_value *a, const struct bt_value *b)
{
	size_t i, j;

	if (a->type != b->type)
		return bt_value_is_empty(b);
	switch (a->type) {
	case BT_SCALAR:
		return a->scalar >= b->scalar;
	case BT_RANGES:
		for (i = 0; i < b->nranges; i++)
			if (!bt_ranges_contains(a->ranges, a->nranges, b->ranges[i].begin,
			    b->ranges[i].end))
				return false;
		return true;
	case BT_SET:
		/* both sorted: one merge walk */
		for (i = 0, j = 0; j < b->nitems; j++) {
			while (i < a->nitems && strcmp(a->items[i], b->items[j]) < 0)
				i++;
			if (i == a->nitems || strcmp(a->items[i], b->items[j]) != 0)
				return false;
		}
		return true;
	case BT_TEXT:
		return bt_value_is_empty(b) || bt_value_equal(a, b);
	}
	return false;
}

bool bt_value_is_empty(const struct bt_value *v)
{
	switch (v->type) {
	case BT_SCALAR:
		return v->scalar == 0;
	case BT_RANGES:
		return v->nranges == 0;
	case BT_SET:
		return v->nitems == 0;
	case BT_TEXT:
		return v->text == NULL || v->text[0] == '\0';
	}
	return true;
}

/* ---- text form ---- */

/* a heap copy of s[0..len) without leading and trailing white space */
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

/* [+-]digits[.digits][e[+-]digits], at least one digit before the exponent */
static bool looks_numeric(const char *s)
{
	size_t digits = 0;

	if (*s == '+' || *s == '-')
		s++;
	for (; isdigit((unsigned char)*s); s++)
		digits++;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			digits++;
	if (digits == 0)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

static int parse_scalar(struct bt_value *v, const char *s, char **cause)
{
	double d = strtod(s, NULL);

	if (!isfinite(d)) {
		*cause = xasprintf("'%s' is not a finite number", s);
		return -1;
	}
	if (fabs(d) > SCALAR_MAX_UNITS) {
		*cause = xasprintf("scalar '%s' is too large (at most %.0f)", s, SCALAR_MAX_UNITS);
		return -1;
	}
	v->type = BT_SCALAR;
	v->scalar = bt_scalar_from_double(d);
	return 0;
}

static int parse_bound(const char *s, uint64_t *out, char **cause)
{
	const char *p;
	unsigned long long x;

	for (p = s; isdigit((unsigned char)*p); p++)
		;
	if (p == s || *p != '\0') {
		*cause = xasprintf("range bound '%s' is not a number", s);
		return -1;
	}
	errno = 0;
	x = strtoull(s, NULL, 10);
	if (errno == ERANGE || x > RANGE_MAX) {
		*cause = xasprintf("range bound '%s' is too large (at most %" PRIu64 ")", s,
		    RANGE_MAX);
		return -1;
	}
	*out = x;
	return 0;
}

/* one "a-b" item of a ranges value */
static int parse_range_item(struct bt_value *v, const char *item, char **cause)
{
	const char *dash = strchr(item, '-');
	char *b = NULL, *e = NULL;
	uint64_t begin, end;
	int rc = -1;

	if (dash == NULL) {
		*cause = xasprintf("range '%s' is not of the form begin-end", item);
		goto out;
	}
	b = trimmed(item, (size_t)(dash - item));
	e = trimmed(dash + 1, strlen(dash + 1));
	if (parse_bound(b, &begin, cause) != 0 || parse_bound(e, &end, cause) != 0)
		goto out;
	if (begin > end) {
		*cause = xasprintf("range begin %" PRIu64 " is after end %" PRIu64, begin, end);
		goto out;
	}
	bt_ranges_add(&v->ranges, &v->nranges, begin, end);
	rc = 0;
out:
	free(e);
	free(b);
	return rc;
}

/*
 * The comma-separated items between s's brackets (s is trimmed and starts
 * with open); each is trimmed and handed to fn. "[]" and "{}" are empty.
 */
static int parse_list(struct bt_value *v, const char *s, char close,
    int (*fn)(struct bt_value *, const char *, char **), char **cause)
{
	size_t len = strlen(s);
	const char *p, *end, *comma;
	char *item;
	int rc;

	if (len < 2 || s[len - 1] != close) {
		*cause = xasprintf("'%s' is not closed by '%c'", s, close);
		return -1;
	}
	p = s + 1;
	end = s + len - 1;
	item = trimmed(p, (size_t)(end - p));
	rc = item[0] == '\0';
	free(item);
	if (rc)
		return 0;
	while (p <= end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		item = trimmed(p, (size_t)(comma - p));
		if (item[0] == '\0') {
			*cause = xasprintf("'%s' has an empty item", s);
			rc = -1;
		} else
			rc = fn(v, item, cause);
		free(item);
		if (rc != 0)
			return -1;
		p = comma + 1;
	}
	return 0;
}

static int parse_set_item(struct bt_value *v, const char *item, char **cause)
{
	set_insert(v, item);
	return 0;
}

int bt_value_parse(struct bt_value *v, const char *text, bool allow_text, char **cause)
{
	char *s = trimmed(text, strlen(text));
	int rc = -1;

	bt_value_init(v);
	if (s[0] == '\0') {
		*cause = xstrdup("missing value");
		goto out;
	}
	if (s[0] == '[') {
		v->type = BT_RANGES;
		rc = parse_list(v, s, ']', parse_range_item, cause);
	} else if (s[0] == '{') {
		v->type = BT_SET;
		rc = parse_list(v, s, '}', parse_set_item, cause);
	} else if (looks_numeric(s)) {
		rc = parse_scalar(v, s, cause);
	} else if (allow_text) {
		v->type = BT_TEXT;
		v->text = s;
		s = NULL;
		rc = 0;
	} else
		*cause = xasprintf("'%s' is not a number", s);
out:
	if (rc != 0)
		bt_value_release(v);
	free(s);
	return rc;
}

/* "4", "0.5", "-1.25": thousandths without trailing zeros */
static void format_scalar(FILE *f, int64_t milli)
{
	uint64_t u = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
	unsigned frac = (unsigned)(u % 1000);

	fprintf(f, "%s%" PRIu64, milli < 0 ? "-" : "", u / 1000);
	if (frac == 0)
		return;
	if (frac % 100 == 0)
		fprintf(f, ".%u", frac / 100);
	else if (frac % 10 == 0)
		fprintf(f, ".%02u", frac / 10);
	else
		fprintf(f, ".%03u", frac);
}

char *bt_value_format(const struct bt_value *v)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		abort();
	switch (v->type) {
	case BT_SCALAR:
		format_scalar(f, v->scalar);
		break;
	case BT_RANGES:
		fputc('[', f);
		for (i = 0; i < v->nranges; i++)
			fprintf(f, "%s%" PRIu64 "-%" PRIu64, i ? ", " : "",
			    v->ranges[i].begin, v->ranges[i].end);
		fputc(']', f);
		break;
	case BT_SET:
		fputc('{', f);
		for (i = 0; i < v->nitems; i++)
			fprintf(f, "%s%s", i ? "," : "", v->items[i]);
		fputc('}', f);
		break;
	case BT_TEXT:
		fputs(v->text ? v->text : "", f);
		break;
	}
	fclose(f);
	return buf;
}

/* ---- protobuf ---- */

static int scalar_from_pb(struct bt_value *v, const Mesos__V1__Value__Scalar *scalar,
    char **cause)
{
	if (scalar == NULL) {
		*cause = xstrdup("type SCALAR but no 'scalar' field");
		return -1;
	}
	if (!isfinite(scalar->value)) {
		*cause = xstrdup("scalar value is not a finite number");
		return -1;
	}
	if (fabs(scalar->value) > SCALAR_MAX_UNITS) {
		*cause = xasprintf("scalar value %g is too large (at most %.0f)", scalar->value,
		    SCALAR_MAX_UNITS);
		return -1;
	}
	v->scalar = bt_scalar_from_double(scalar->value);
	return 0;
}

static int ranges_from_pb(struct bt_value *v, const Mesos__V1__Value__Ranges *ranges,
    char **cause)
{
	size_t i;

	if (ranges == NULL) {
		*cause = xstrdup("type RANGES but no 'ranges' field");
		return -1;
	}
	for (i = 0; i < ranges->n_range; i++) {
		const Mesos__V1__Value__Range *r = ranges->range[i];
		if (r->end > RANGE_MAX) {
			*cause = xasprintf("range bound %" PRIu64 " is too large (at most %" PRIu64 ")",
			    r->end, RANGE_MAX);
			return -1;
		}
		if (r->begin > r->end) {
			*cause = xasprintf("range begin %" PRIu64 " is after end %" PRIu64,
			    r->begin, r->end);
			return -1;
		}
		bt_ranges_add(&v->ranges, &v->nranges, r->begin, r->end);
	}
	return 0;
}

static int set_from_pb(struct bt_value *v, const Mesos__V1__Value__Set *set, char **cause)
{
	size_t i;

	if (set == NULL) {
		*cause = xstrdup("type SET but no 'set' field");
		return -1;
	}
	for (i = 0; i < set->n_item; i++) {
		if (set->item[i] == NULL || set->item[i][0] == '\0') {
			*cause = xstrdup("set has an empty item");
			return -1;
		}
		set_insert(v, set->item[i]);
	}
	return 0;
}

int bt_value_from_pb_parts(struct bt_value *v, Mesos__V1__Value__Type type,
    const Mesos__V1__Value__Scalar *scalar, const Mesos__V1__Value__Ranges *ranges,
    const Mesos__V1__Value__Set *set, const Mesos__V1__Value__Text *text, char **cause)
{
	int rc = -1;

	bt_value_init(v);
	switch (type) {
	case MESOS__V1__VALUE__TYPE__SCALAR:
		v->type = BT_SCALAR;
		rc = scalar_from_pb(v, scalar, cause);
		break;
	case MESOS__V1__VALUE__TYPE__RANGES:
		v->type = BT_RANGES;
		rc = ranges_from_pb(v, ranges, cause);
		break;
	case MESOS__V1__VALUE__TYPE__SET:
		v->type = BT_SET;
		rc = set_from_pb(v, set, cause);
		break;
	case MESOS__V1__VALUE__TYPE__TEXT:
		v->type = BT_TEXT;
		if (text == NULL || text->value == NULL) {
			*cause = xstrdup("type TEXT but no 'text' field");
			break;
		}
		v->text = xstrdup(text->value);
		rc = 0;
		break;
	default:
		*cause = xasprintf("unknown value type %d", (int)type);
		break;
	}
	if (rc != 0)
		bt_value_release(v);
	return rc;
}

static Mesos__V1__Value__Ranges *ranges_to_pb(const struct bt_value *v)
{
	Mesos__V1__Value__Ranges *m = xmalloc(sizeof *m);
	size_t i;

	mesos__v1__value__ranges__init(m);
	if (v->nranges == 0)
		return m;
	m->range = xreallocarray(NULL, v->nranges, sizeof *m->range);
	for (i = 0; i < v->nranges; i++) {
		m->range[i] = xmalloc(sizeof *m->range[i]);
		mesos__v1__value__range__init(m->range[i]);
		m->range[i]->begin = v->ranges[i].begin;
		m->range[i]->end = v->ranges[i].end;
	}
	m->n_range = v->nranges;
	return m;
}

static Mesos__V1__Value__Set *set_to_pb(const struct bt_value *v)
{
	Mesos__V1__Value__Set *m = xmalloc(sizeof *m);
	size_t i;

	mesos__v1__value__set__init(m);
	if (v->nitems == 0)
		return m;
	m->item = xreallocarray(NULL, v->nitems, sizeof *m->item);
	for (i = 0; i < v->nitems; i++)
		m->item[i] = xstrdup(v->items[i]);
	m->n_item = v->nitems;
	return m;
}

void bt_value_to_pb_parts(const struct bt_value *v, Mesos__V1__Value__Scalar **scalar,
    Mesos__V1__Value__Ranges **ranges, Mesos__V1__Value__Set **set,
    Mesos__V1__Value__Text **text)
{
	*scalar = NULL;
	*ranges = NULL;
	*set = NULL;
	if (text != NULL)
		*text = NULL;
	switch (v->type) {
	case BT_SCALAR:
		*scalar = xmalloc(sizeof **scalar);
		mesos__v1__value__scalar__init(*scalar);
		(*scalar)->value = bt_scalar_to_double(v->scalar);
		break;
	case BT_RANGES:
		*ranges = ranges_to_pb(v);
		break;
	case BT_SET:
		*set = set_to_pb(v);
		break;
	case BT_TEXT:
		if (text == NULL)
			break;
		*text = xmalloc(sizeof **text);
		mesos__v1__value__text__init(*text);
		(*text)->value = xstrdup(v->text ? v->text : "");
		break;
	}
}
