/*
 * value.h -- Mesos values: fixed-point scalars, ranges, sets and text.
 *
 * A value is what sits after the ':' in "cpus:4", "ports:[31000-32000]",
 * "disks:{a,b}" or "rack:abc". Scalars are kept as integer thousandths, as
 * Mesos does (Value::Scalar rounds to three decimal digits), so that adding
 * and subtracting never drifts. Ranges are kept sorted and coalesced; sets
 * sorted and unique. Resources (resources.h) and attributes (attributes.h)
 * are a name plus one of these.
 */
#ifndef BT_VALUE_H
#define BT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesos.pb-c.h"

/* the same numbers as mesos.v1.Value.Type */
enum bt_value_type { BT_SCALAR = 0, BT_RANGES = 1, BT_SET = 2, BT_TEXT = 3 };

struct bt_range {
	uint64_t begin, end;            /* inclusive */
};

struct bt_value {
	enum bt_value_type type;
	int64_t scalar;                 /* BT_SCALAR: thousandths */
	struct bt_range *ranges;        /* BT_RANGES: sorted, coalesced */
	size_t nranges;
	char **items;                   /* BT_SET: sorted, unique */
	size_t nitems;
	char *text;                     /* BT_TEXT */
};

/* double <-> thousandths, rounding to the nearest thousandth */
int64_t bt_scalar_from_double(double v);
double bt_scalar_to_double(int64_t milli);

void bt_value_init(struct bt_value *v);
void bt_value_release(struct bt_value *v);
void bt_value_copy(struct bt_value *dst, const struct bt_value *src);
bool bt_value_equal(const struct bt_value *a, const struct bt_value *b);

/*
 * Parse the text after ':' -- "4", "0.5", "[1-5, 10-20]", "{a,b}" or any
 * other text. Resources accept only scalars, ranges and sets (allow_text
 * false); attributes also accept text. Whitespace around items is ignored.
 * Returns 0, or -1 with *cause, e.g. "invalid range '[5-1]': begin is after end".
 */
int bt_value_parse(struct bt_value *v, const char *text, bool allow_text, char **cause);
/* "4", "0.5", "[31000-32000, 40000-40010]", "{a,b}", "abc"; caller frees */
char *bt_value_format(const struct bt_value *v);

/* ranges: keep an array sorted and coalesced */
void bt_ranges_add(struct bt_range **r, size_t *n, uint64_t begin, uint64_t end);
void bt_ranges_subtract(struct bt_range **r, size_t *n, uint64_t begin, uint64_t end);
bool bt_ranges_contains(const struct bt_range *r, size_t n, uint64_t begin, uint64_t end);
uint64_t bt_ranges_count(const struct bt_range *r, size_t n);   /* number of values */

/*
 * Arithmetic on two values of the same type (a mismatch returns -1):
 * add: scalars sum, ranges and sets unite; subtract: scalars may go to 0
 * (never below -- the caller checks contains first), ranges and sets
 * lose what b has; contains: a >= b element-wise.
 */
int bt_value_add(struct bt_value *a, const struct bt_value *b);
int bt_value_subtract(struct bt_value *a, const struct bt_value *b);
bool bt_value_contains(const struct bt_value *a, const struct bt_value *b);
bool bt_value_is_empty(const struct bt_value *v);  /* 0 scalar, no ranges, no items */

/* protobuf: fill a heap-allocated Mesos__V1__Value's pieces / read them */
int bt_value_from_pb_parts(struct bt_value *v, Mesos__V1__Value__Type type,
    const Mesos__V1__Value__Scalar *scalar, const Mesos__V1__Value__Ranges *ranges,
    const Mesos__V1__Value__Set *set, const Mesos__V1__Value__Text *text, char **cause);

/*
 * The reverse: heap sub-messages for v's type (the others left NULL), each
 * piece separately allocated so protobuf_c_message_free_unpacked() of the
 * enclosing message frees them.
 */
void bt_value_to_pb_parts(const struct bt_value *v, Mesos__V1__Value__Scalar **scalar,
    Mesos__V1__Value__Ranges **ranges, Mesos__V1__Value__Set **set,
    Mesos__V1__Value__Text **text);

#endif
