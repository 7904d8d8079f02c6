/*
 * keep.h -- an arena for small objects that live long.
 *
 * glibc puts a small allocation in the first free chunk that fits, so an
 * object that lives as long as an agent lands between the short-lived
 * buffers of the request that made it. When a burst of subscriptions is
 * over those buffers are free, but every page that also holds a few
 * long-lived bytes stays resident. Between bt_keep_begin() and
 * bt_keep_end(), xmalloc() and its kin (and libevent, after
 * bt_keep_libevent()) take blocks of up to BT_KEEP_MAX bytes from an arena
 * of their own instead: 64 KiB slabs, one block size each, which only such
 * objects share.
 *
 * A block is freed with free(): every program of butte is linked with
 * -Wl,--wrap=free, and __wrap_free() hands the arena's blocks back to it
 * and everything else to the C library. xrealloc() keeps a block in the
 * arena. Slabs are never returned to the system: what is kept there (an
 * agent's record, attributes and resources) lives as long as the master.
 *
 * Under AddressSanitizer the arena is not used, so that the sanitizer
 * sees every object's life.
 */
#ifndef BUTTE_KEEP_H
#define BUTTE_KEEP_H

#include <stdbool.h>
#include <stddef.h>

#define BT_KEEP_MAX 512

extern int bt_keep_depth;

/* allocations made until the matching bt_keep_end() go to the arena; they nest */
void bt_keep_begin(void);
void bt_keep_end(void);
static inline bool bt_keeping(void)
{
	return bt_keep_depth > 0;
}

/* a block of the arena, or NULL (too large, or the arena is full: use malloc) */
void *bt_keep_alloc(size_t size);
bool bt_keep_owns(const void *p);
/* p is a block of the arena: one of size bytes, kept in the arena when it fits; NULL when out of memory */
void *bt_keep_realloc(void *p, size_t size);

/* libevent allocates through the arena's rules too; call before any other libevent call */
void bt_keep_libevent(void);
struct event_base;
/* libevent's records of descriptor numbers up to twice fd are made now, in the arena (see keep.c) */
void bt_keep_descriptors(struct event_base *base, int fd);

#endif
