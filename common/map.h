/*
 * map.h -- a string-keyed hash table of pointers.
 *
 * Separate chaining with FNV-1a hashes; the bucket array doubles when the
 * table holds more entries than buckets, so lookups stay O(1) for tens of
 * thousands of agents, tasks and apps. Each entry keeps its key's hash: a
 * lookup reads only the keys whose hash matches, and growing hashes
 * nothing. Keys are copied; values are not owned.
 */
#ifndef BT_MAP_H
#define BT_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

struct bt_map_entry {
	char *key;
	void *value;
	struct bt_map_entry *next;
	uint64_t hash;                  /* of key: compared before the key, kept for growing */
};

struct bt_map {
	struct bt_map_entry **buckets;
	size_t nbuckets, n;
	bool borrow_keys;               /* keys are the caller's (bt_map_init_borrowed) */
};

/* a zeroed map is an empty one too: put initialises it */
void bt_map_init(struct bt_map *m);
/*
 * A map that keeps the caller's key pointers instead of copies: each key
 * must stay valid and unchanged until its entry is removed or replaced
 * (e.g. the id stored in the value itself).
 */
void bt_map_init_borrowed(struct bt_map *m);
/* frees the keys and entries, not the values */
void bt_map_release(struct bt_map *m);
void *bt_map_get(const struct bt_map *m, const char *key);
/* insert or replace */
void bt_map_put(struct bt_map *m, const char *key, void *value);
/* the removed value, or NULL */
void *bt_map_remove(struct bt_map *m, const char *key);
/* a heap array of the values (unspecified order); caller frees the array */
void **bt_map_values(const struct bt_map *m, size_t *n);

#endif
