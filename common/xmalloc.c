/*
 * xmalloc.c -- allocation that never returns NULL.
 *
 * A failed allocation prints one line and aborts: a daemon that cannot
 * allocate a few bytes has nothing sensible left to do. Between
 * bt_keep_begin() and bt_keep_end() small blocks come from the arena of
 * keep.c, and a block of the arena stays there when it is resized.
 */
#include "xmalloc.h"
#include "keep.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void __attribute__((noreturn)) out_of_memory(size_t size)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = bt_keeping() ? bt_keep_alloc(size) : NULL;
	if (p == NULL && (p = malloc(size ? size : 1)) == NULL)
		out_of_memory(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p;
	if (bt_keeping() && (size == 0 || nmemb <= BT_KEEP_MAX / size) &&
	    (p = bt_keep_alloc(nmemb * size)) != NULL)
		return memset(p, 0, nmemb * size);
	p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		out_of_memory(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p;
	if (ptr == NULL)
		return xmalloc(size);
	p = bt_keep_owns(ptr) ? bt_keep_realloc(ptr, size) : realloc(ptr, size ? size : 1);
	if (p == NULL)
		out_of_memory(size);
	return p;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		out_of_memory(SIZE_MAX);
	return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s) + 1);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void *xmemdup(const void *src, size_t n)
{
	void *p = xmalloc(n);
	if (n)
		memcpy(p, src, n);
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory(strlen(fmt));
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}
