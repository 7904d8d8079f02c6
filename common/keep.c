/*
 * keep.c -- an arena for small objects that live long (see keep.h).
 *
 * The arena is one reservation of address space, touched a 64 KiB slab at
 * a time. A slab holds blocks of one size (16 to BT_KEEP_MAX bytes, in
 * steps of 16) and starts with that size, so a block's size is found from
 * its address. Each size has a list of free blocks and the slab it is
 * carving.
 */
#include "keep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#if defined(__SANITIZE_ADDRESS__)
#define KEEP_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEP_ARENA 0
#endif
#endif
#ifndef KEEP_ARENA
#define KEEP_ARENA 1
#endif

#define SLAB (64u << 10)                /* also a multiple of every page size */
#define REGION ((size_t)1 << 30)        /* address space only: a slab is touched when used */
#define HEAD 16                         /* the slab's block size, at its start */
#define STEP 16
#define SIZES (BT_KEEP_MAX / STEP)

struct size_class {
	void *free;                     /* freed blocks, linked through their first word */
	char *next, *end;               /* the rest of the slab being carved */
};

int bt_keep_depth;

static char *region, *region_end, *next_slab;
static bool unavailable;                /* the reservation failed: everything goes to malloc */
static struct size_class sizes[SIZES];

void __real_free(void *p);
void __wrap_free(void *p);

void bt_keep_begin(void)
{
	if (KEEP_ARENA)
		bt_keep_depth++;
}

void bt_keep_end(void)
{
	if (bt_keep_depth > 0)
		bt_keep_depth--;
}

static bool reserve(void)
{
	void *p;

	if (region != NULL)
		return true;
	if (unavailable)
		return false;
	p = mmap(NULL, REGION + SLAB, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		unavailable = true;
		return false;
	}
	region = (char *)(((uintptr_t)p + SLAB - 1) & ~(uintptr_t)(SLAB - 1));
	region_end = region + REGION;
	next_slab = region;
	return true;
}

static size_t class_of(size_t size)
{
	return size == 0 ? 0 : (size - 1) / STEP;
}

bool bt_keep_owns(const void *p)
{
	return region != NULL && (const char *)p >= region && (const char *)p < region_end;
}

static size_t block_size(const void *p)
{
	return *(const uint32_t *)((uintptr_t)p & ~(uintptr_t)(SLAB - 1));
}

void *bt_keep_alloc(size_t size)
{
	struct size_class *c;
	size_t bsize;
	void *p;

	if (size > BT_KEEP_MAX)
		return NULL;
	c = &sizes[class_of(size)];
	if (c->free != NULL) {
		p = c->free;
		c->free = *(void **)p;
		return p;
	}
	bsize = (size_t)(c - sizes + 1) * STEP;
	if (c->next == c->end) {
		if (!reserve() || next_slab == region_end)
			return NULL;
		*(uint32_t *)next_slab = (uint32_t)bsize;
		c->next = next_slab + HEAD;
		c->end = c->next + (SLAB - HEAD) / bsize * bsize;
		next_slab += SLAB;
	}
	p = c->next;
	c->next += bsize;
	return p;
}

static void keep_free(void *p)
{
	struct size_class *c = &sizes[class_of(block_size(p))];

	*(void **)p = c->free;
	c->free = p;
}

void *bt_keep_realloc(void *p, size_t size)
{
	size_t have = block_size(p);
	void *q;

	if (size <= BT_KEEP_MAX && class_of(size) == class_of(have))
		return p;
	if ((q = bt_keep_alloc(size)) == NULL && (q = malloc(size ? size : 1)) == NULL)
		return NULL;
	memcpy(q, p, have < size ? have : size);
	keep_free(p);
	return q;
}

/* what free() means in butte's own code (-Wl,--wrap=free) */
void __wrap_free(void *p)
{
	if (bt_keep_owns(p))
		keep_free(p);
	else
		__real_free(p);
}

static void *libevent_malloc(size_t size)
{
	void *p = bt_keeping() ? bt_keep_alloc(size) : NULL;

	return p != NULL ? p : malloc(size);
}

static void *libevent_realloc(void *p, size_t size)
{
	if (p == NULL)
		return libevent_malloc(size);
	return bt_keep_owns(p) ? bt_keep_realloc(p, size) : realloc(p, size);
}

static void libevent_free(void *p)
{
	free(p);
}

void bt_keep_libevent(void)
{
	if (KEEP_ARENA)
		event_set_mem_functions(libevent_malloc, libevent_realloc, libevent_free);
}

static void unused_cb(evutil_socket_t fd, short what, void *arg)
{
}

/*
 * libevent makes a small record for each descriptor number the first time
 * it is watched, and keeps it for the life of the loop. Made one at a time
 * as connections arrive, those records too would sit between short-lived
 * buffers; here they are made in the arena ahead of need, for every number
 * up to twice the highest seen. The base must use
 * EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST: each watch added is removed in the
 * same loop turn, so epoll never hears of it.
 */
void bt_keep_descriptors(struct event_base *base, int fd)
{
	static int reserved;
	struct event ev;
	int upto;

	if (!KEEP_ARENA || fd < reserved)
		return;
	upto = fd < 512 ? 1024 : 2 * fd;
	bt_keep_begin();
	for (int i = reserved; i < upto; i++) {
		event_assign(&ev, base, i, EV_READ, unused_cb, NULL);
		event_add(&ev, NULL);
		event_del(&ev);
	}
	bt_keep_end();
	reserved = upto;
}
