/*
 * resources.h -- Mesos resources: parsing, arithmetic, JSON and protobuf.
 *
 * A resource is a name, a role and a value: "cpus:4", "mem(*):8192",
 * "ports(*):[7000-8000, 31000-32000]", "disks(ops):{a,b}". A set of
 * resources holds at most one entry per (name, role, type); adding merges
 * into that entry, so "cpus:1;cpus:2" is cpus:3 and two port ranges
 * coalesce. The text form is the agent's --resources syntax; the JSON form
 * is the Mesos array of Resource objects; the flat form is what
 * /master/state shows ({"cpus":4,"mem":8192,"ports":"[31000-32000]"}).
 */
#ifndef BT_RESOURCES_H
#define BT_RESOURCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mesos.pb-c.h"
#include "value.h"

struct bt_resource {
	char *name;
	char *role;                     /* "*" when unreserved */
	struct bt_value value;
};

struct bt_resources {
	struct bt_resource *v;
	size_t n;
};

void bt_resources_init(struct bt_resources *r);
void bt_resources_release(struct bt_resources *r);
void bt_resources_copy(struct bt_resources *dst, const struct bt_resources *src);

/*
 * Parse the --resources text form "name(role):value;..." or, when the text
 * starts with '[', the JSON array form. default_role applies where no
 * (role) is written (NULL means "*"). Scalars must be finite and not
 * negative; names must be non-empty. Errors name the offending piece:
 * "unable to parse resources 'cpus:x': 'x' is not a number".
 */
int bt_resources_parse(struct bt_resources *r, const char *text, const char *default_role,
    char **cause);
/* "cpus(*):4; mem(*):8192; ports(*):[31000-32000]" style text; caller frees */
char *bt_resources_format(const struct bt_resources *r);

/* add one resource (merged into an existing entry of the same name, role, type) */
void bt_resources_add_one(struct bt_resources *r, const char *name, const char *role,
    const struct bt_value *v);
void bt_resources_add(struct bt_resources *dst, const struct bt_resources *src);
/* remove src from dst; entries that become empty are dropped; -1 when dst does not contain src */
int bt_resources_subtract(struct bt_resources *dst, const struct bt_resources *src);
bool bt_resources_contains(const struct bt_resources *a, const struct bt_resources *b);
bool bt_resources_empty(const struct bt_resources *r);
/* lookup: the entry for (name, role), or NULL; role NULL matches any role */
const struct bt_resource *bt_resources_find(const struct bt_resources *r, const char *name,
    const char *role);
/* sum of a scalar resource over all roles, in thousandths (0 if absent) */
int64_t bt_resources_scalar(const struct bt_resources *r, const char *name);

/* JSON: the Mesos array form [{"name":"cpus","type":"SCALAR","scalar":{"value":4},"role":"*"}] */
json_t *bt_resources_to_json(const struct bt_resources *r);
int bt_resources_from_json(struct bt_resources *r, const json_t *array, char **cause);
/* /master/state form: cpus, gpus, mem, disk always present; ranges and sets as strings */
json_t *bt_resources_flat_json(const struct bt_resources *r);

/*
 * protobuf: from_pb reads an array of Resource messages (role "*" when
 * unset); to_pb returns a heap array of heap messages, each with role and
 * allocation_info.role set when alloc_role is not NULL; free it with
 * bt_resources_pb_free().
 */
int bt_resources_from_pb(struct bt_resources *r, Mesos__V1__Resource *const *pb, size_t n,
    char **cause);
Mesos__V1__Resource **bt_resources_to_pb(const struct bt_resources *r, const char *alloc_role,
    size_t *n);
void bt_resources_pb_free(Mesos__V1__Resource **pb, size_t n);

#endif
