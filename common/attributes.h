/*
 * attributes.h -- agent attributes: "rack:abc;zone:west;level:10;keys:[1000-1500]".
 *
 * An attribute is a name and a value that may be text, a scalar, ranges or
 * a set. A value that parses as a number is a scalar, "[..]" ranges, "{..}"
 * a set, anything else text (as Mesos's Attributes::parse does).
 */
#ifndef BT_ATTRIBUTES_H
#define BT_ATTRIBUTES_H

#include <jansson.h>
#include <stddef.h>

#include "mesos.pb-c.h"
#include "value.h"

struct bt_attribute {
	char *name;
	struct bt_value value;
};

struct bt_attributes {
	struct bt_attribute *v;
	size_t n;
};

void bt_attributes_init(struct bt_attributes *a);
void bt_attributes_release(struct bt_attributes *a);
void bt_attributes_copy(struct bt_attributes *dst, const struct bt_attributes *src);
/* -1 with *cause, e.g. "unable to parse attributes 'rack': missing ':'" */
int bt_attributes_parse(struct bt_attributes *a, const char *text, char **cause);
/* "rack:abc;level:10;keys:[1000-1500]", which bt_attributes_parse reads back; caller frees */
char *bt_attributes_format(const struct bt_attributes *a);
/* set or replace one text attribute (used for the detected "arch") */
void bt_attributes_set_text(struct bt_attributes *a, const char *name, const char *text);
const struct bt_attribute *bt_attributes_find(const struct bt_attributes *a, const char *name);
/* the value as the string a constraint compares against: "abc", "10", "[1-2]"; caller frees */
char *bt_attribute_value_string(const struct bt_attribute *attr);
/* {"rack":"abc","level":10,"keys":"[1000-1500]"} as /master/state shows it */
json_t *bt_attributes_flat_json(const struct bt_attributes *a);
int bt_attributes_from_pb(struct bt_attributes *a, Mesos__V1__Attribute *const *pb, size_t n,
    char **cause);
/* heap array of heap messages; free with bt_attributes_pb_free() */
Mesos__V1__Attribute **bt_attributes_to_pb(const struct bt_attributes *a, size_t *n);
void bt_attributes_pb_free(Mesos__V1__Attribute **pb, size_t n);

#endif
