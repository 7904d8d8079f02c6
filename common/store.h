/*
 * store.h -- the embedded state store: namespaced keys and values in SQLite.
 *
 * Each daemon keeps what must survive a restart here: the master its agent
 * registry, relay its framework id, apps, versions and tasks, the agent its
 * id and checkpointed tasks. Every write is a transaction; several writes
 * can be grouped with begin/commit so that they land together or not at
 * all. The database runs in WAL mode with synchronous=FULL, or, once
 * bt_store_sync_start() was called, syncs off the event loop.
 */
#ifndef BT_STORE_H
#define BT_STORE_H

#include <stddef.h>

struct bt_store;
struct event_base;

/* open or create the database file; NULL with *cause */
struct bt_store *bt_store_open(const char *path, char **cause);
void bt_store_close(struct bt_store *s);
/*
 * Let SQLite keep up to kib KiB of pages in memory (its default is 2 MiB):
 * a store whose rows are rewritten all over, such as relay's tasks, then
 * reads no page back from the file to change it.
 */
int bt_store_cache(struct bt_store *s, size_t kib, char **cause);

int bt_store_put(struct bt_store *s, const char *ns, const char *key, const void *value,
    size_t len, char **cause);
/* 0 and a heap copy (NUL-terminated; caller frees) when found, 1 when absent, -1 on error */
int bt_store_get(struct bt_store *s, const char *ns, const char *key, char **value, size_t *len);
int bt_store_delete(struct bt_store *s, const char *ns, const char *key, char **cause);
/* every key of ns in key order; a callback returning non-zero stops the walk */
typedef int (*bt_store_each_cb)(const char *key, const char *value, size_t len, void *arg);
int bt_store_foreach(struct bt_store *s, const char *ns, bt_store_each_cb cb, void *arg);

/* group writes; transactions do not nest */
int bt_store_begin(struct bt_store *s, char **cause);
int bt_store_commit(struct bt_store *s, char **cause);
void bt_store_rollback(struct bt_store *s);

/*
 * Durability off the event loop. After bt_store_sync_start() a commit
 * (and a write outside a transaction, which is one) returns once SQLite
 * wrote it, before it is on disk: a thread fdatasync()s the write-ahead
 * log after each and checkpoints the log into the database, syncing both,
 * from a connection of its own. A pause of the disk then holds back only
 * what waits for it, through bt_store_when_durable(), never the loop.
 */
int bt_store_sync_start(struct bt_store *s, struct event_base *base, char **cause);
/* commits so far; writes (puts and deletes) so far */
unsigned long bt_store_commits(const struct bt_store *s);
unsigned long bt_store_writes(const struct bt_store *s);
/*
 * Run cb(arg) in the loop once every commit so far, and the open
 * transaction's once it is committed, is on disk: at once when it is (and
 * always without bt_store_sync_start()). Waits are run in the order they
 * were made; bt_store_close() runs those left. If a sync fails, the
 * daemon exits instead.
 */
void bt_store_when_durable(struct bt_store *s, void (*cb)(void *arg), void *arg);

#endif
