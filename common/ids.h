/*
 * ids.h -- identifiers: random UUIDs and the Mesos id formats.
 *
 * Master ids are random UUIDs; frameworks are "<masterId>-0000", agents
 * "<masterId>-S<n>", offers "<masterId>-O<n>" (reference §6).
 */
#ifndef BT_IDS_H
#define BT_IDS_H

#include <stddef.h>
#include <stdint.h>

/* n random bytes (from getrandom(2), a page at a time; never repeated after a fork) */
void bt_random_bytes(void *out, size_t n);
/* 16 random bytes, version-4 UUID bits set */
void bt_uuid_random(uint8_t out[16]);
/*
 * A version-7 UUID: the Unix time in milliseconds, a count within the
 * millisecond, random bits. Each one made by this process sorts after the
 * one before, as text too. For the event loop's thread only.
 */
void bt_uuid_time_ordered(uint8_t out[16]);
/* canonical 36-character text form plus NUL */
void bt_uuid_format(const uint8_t in[16], char out[37]);
/* a fresh random UUID as text; caller frees */
char *bt_uuid_new(void);
/* a fresh time-ordered UUID as text; caller frees */
char *bt_uuid_new_ordered(void);
/* parse the 36-character form; -1 when malformed */
int bt_uuid_parse(const char *s, uint8_t out[16]);

#endif
