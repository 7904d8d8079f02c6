/*
 * map.c -- a string-keyed hash table of pointers (see map.h).
 */
#include "map.h"

#include <stdint.h>

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void buckets_init(struct bt_map *m)
{
	m->nbuckets = 16;
	m->buckets = xcalloc(m->nbuckets, sizeof *m->buckets);
	m->n = 0;
}

void bt_map_init(struct bt_map *m)
{
	m->borrow_keys = false;
	buckets_init(m);
}

void bt_map_init_borrowed(struct bt_map *m)
{
	m->borrow_keys = true;
	buckets_init(m);
}

void bt_map_release(struct bt_map *m)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct bt_map_entry *e = m->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			if (!m->borrow_keys)
				free(e->key);
			free(e);
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->nbuckets = m->n = 0;
}

static void grow(struct bt_map *m)
{
	size_t nb = m->nbuckets * 2;
	struct bt_map_entry **b = xcalloc(nb, sizeof *b);

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct bt_map_entry *e = m->buckets[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			size_t j = e->hash & (nb - 1);
			e->next = b[j];
			b[j] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

void *bt_map_get(const struct bt_map *m, const char *key)
{
	struct bt_map_entry *e;
	uint64_t h;

	if (key == NULL || m->nbuckets == 0)
		return NULL;
	h = hash(key);
	for (e = m->buckets[h & (m->nbuckets - 1)]; e != NULL; e = e->next) {
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e->value;
	}
	return NULL;
}

void bt_map_put(struct bt_map *m, const char *key, void *value)
{
	struct bt_map_entry *e;
	uint64_t h = hash(key);
	size_t i;

	if (m->nbuckets == 0)
		buckets_init(m);
	i = h & (m->nbuckets - 1);
	for (e = m->buckets[i]; e != NULL; e = e->next) {
		if (e->hash == h && strcmp(e->key, key) == 0) {
			if (m->borrow_keys)
				e->key = (char *)key;
			e->value = value;
			return;
		}
	}
	e = xmalloc(sizeof *e);
	e->key = m->borrow_keys ? (char *)key : xstrdup(key);
	e->value = value;
	e->hash = h;
	e->next = m->buckets[i];
	m->buckets[i] = e;
	if (++m->n > m->nbuckets)
		grow(m);
}

void *bt_map_remove(struct bt_map *m, const char *key)
{
	struct bt_map_entry **pp, *e;
	void *value;
	uint64_t h;

	if (key == NULL || m->nbuckets == 0)
		return NULL;
	h = hash(key);
	for (pp = &m->buckets[h & (m->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
		e = *pp;
		if (e->hash != h || strcmp(e->key, key) != 0)
			continue;
		*pp = e->next;
		value = e->value;
		if (!m->borrow_keys)
			free(e->key);
		free(e);
		m->n--;
		return value;
	}
	return NULL;
}

void **bt_map_values(const struct bt_map *m, size_t *n)
{
	void **v = xcalloc(m->n + 1, sizeof *v);
	size_t k = 0;

	for (size_t i = 0; i < m->nbuckets; i++) {
		for (struct bt_map_entry *e = m->buckets[i]; e != NULL; e = e->next)
			v[k++] = e->value;
	}
	*n = k;
	return v;
}
