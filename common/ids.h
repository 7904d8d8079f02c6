/*
 * ids.h -- identifiers: random UUIDs and the Mesos id formats.
 *
 * Master ids are random UUIDs; frameworks are "<masterId>-0000", agents
 * "<masterId>-S<n>", offers "<masterId>-O<n>" (reference §6).
 */
#ifndef BT_IDS_H
#define BT_IDS_H

#include <stdint.h>

/* 16 random bytes, version-4 UUID bits set */
void bt_uuid_random(uint8_t out[16]);
/* canonical 36-character text form plus NUL */
void bt_uuid_format(const uint8_t in[16], char out[37]);
/* a fresh random UUID as text; caller frees */
char *bt_uuid_new(void);
/* parse the 36-character form; -1 when malformed */
int bt_uuid_parse(const char *s, uint8_t out[16]);

#endif
