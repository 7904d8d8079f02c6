/*
 * store.c -- namespaced keys and values in one SQLite table.
 *
 * The database holds a single table kv(ns, key, value) keyed by (ns, key)
 * and runs in WAL mode with synchronous=FULL, so a write that returned is
 * on disk. The statements are prepared once when the store opens. Outside
 * bt_store_begin()/bt_store_commit() every write is its own transaction
 * (SQLite's autocommit); inside, the writes land together or not at all.
 *
 * With bt_store_sync_start() the loop's connection runs synchronous=NORMAL
 * (in WAL mode: no sync in a commit, only of the log's header when the log
 * starts over) and never checkpoints; a thread owns the durability
 * instead: woken with the number of commits made, it fdatasync()s the
 * -wal file (the commits SQLite wrote before are then on disk, exactly
 * what synchronous=FULL would have waited for in the commit), tells the
 * loop through a pipe how far the disk has got, and then checkpoints with
 * a connection of its own at synchronous=FULL once the log holds more
 * than CHECKPOINT_FRAMES pages. A sync that fails lets nothing go: the
 * daemon stops, as a commit that cannot be made durable must not be
 * answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "xmalloc.h"

enum {
	STMT_PUT,
	STMT_GET,
	STMT_DELETE,
	STMT_FOREACH,
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_COUNT
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_PUT] = "INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?1, ?2, ?3)",
	[STMT_GET] = "SELECT value FROM kv WHERE ns = ?1 AND key = ?2",
	[STMT_DELETE] = "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
	[STMT_FOREACH] = "SELECT key, value FROM kv WHERE ns = ?1 ORDER BY key",
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
};

#define CHECKPOINT_FRAMES 1000   /* the sync thread checkpoints a log of more pages than this */

/* a bt_store_when_durable() waiting for commit number `commit` */
struct durable_wait {
	unsigned long commit;
	void (*cb)(void *arg);
	void *arg;
	struct durable_wait *next;
};

struct store_sync {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long want, done;       /* under lock: commits made, commits on disk */
	int err;                        /* under lock: errno of a failed sync, or 0 */
	int frames;                     /* under lock: pages in the log after the last commit */
	bool stop;                      /* under lock: sync what is left, then end */
	sqlite3 *ckpt;                  /* the thread's connection, for checkpoints */
	char *wal_path;
	int wake[2];                    /* pipe: the thread tells the loop */
	struct event *ev;
	unsigned long durable;          /* the loop's copy of done */
	struct durable_wait *head, **tail;
};

struct bt_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[STMT_COUNT];
	bool in_transaction;
	unsigned long writes;           /* puts and deletes made */
	unsigned long commits;
	struct store_sync *sync;        /* NULL: every commit waits for the disk itself */
};

static void sync_stop(struct bt_store *s);

static int exec_sql(struct bt_store *s, const char *sql, char **cause)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		*cause = xasprintf("unable to run '%s' on '%s': %s", sql, s->path,
		    err != NULL ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

struct bt_store *bt_store_open(const char *path, char **cause)
{
	struct bt_store *s = xcalloc(1, sizeof *s);
	int i;

	s->path = xstrdup(path);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*cause = xasprintf("unable to open store '%s': %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (exec_sql(s, "PRAGMA journal_mode=WAL", cause) != 0 ||
	    exec_sql(s, "PRAGMA synchronous=FULL", cause) != 0 ||
	    exec_sql(s, "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, "
	    "value BLOB, PRIMARY KEY (ns, key)) WITHOUT ROWID", cause) != 0)
		goto fail;
	for (i = 0; i < STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		    &s->stmt[i], NULL) != SQLITE_OK) {
			*cause = xasprintf("unable to prepare '%s' on '%s': %s", stmt_sql[i],
			    path, sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	return s;
fail:
	bt_store_close(s);
	return NULL;
}

void bt_store_close(struct bt_store *s)
{
	int i;

	if (s == NULL)
		return;
	if (s->in_transaction)
		bt_store_rollback(s);
	sync_stop(s);
	for (i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("unable to close store '%s': %s", s->path, sqlite3_errmsg(s->db));
	free(s->path);
	free(s);
}

int bt_store_cache(struct bt_store *s, size_t kib, char **cause)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%zu", kib);
	return exec_sql(s, sql, cause);
}

/* bind ns and key as ?1 and ?2 */
static sqlite3_stmt *stmt_keyed(struct bt_store *s, int which, const char *ns, const char *key)
{
	sqlite3_stmt *st = s->stmt[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	if (key != NULL)
		sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	return st;
}

/* a commit was made: the sync thread is told */
static void committed(struct bt_store *s)
{
	s->commits++;
	if (s->sync == NULL)
		return;
	pthread_mutex_lock(&s->sync->lock);
	s->sync->want = s->commits;
	pthread_cond_signal(&s->sync->cond);
	pthread_mutex_unlock(&s->sync->lock);
}

/* run a statement that returns no rows */
static int stmt_run(struct bt_store *s, sqlite3_stmt *st, const char *what, char **cause)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		if (cause != NULL)
			*cause = xasprintf("unable to %s in store '%s': %s", what, s->path,
			    sqlite3_errmsg(s->db));
		else
			log_error("unable to %s in store '%s': %s", what, s->path,
			    sqlite3_errmsg(s->db));
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int bt_store_put(struct bt_store *s, const char *ns, const char *key, const void *value,
    size_t len, char **cause)
{
	sqlite3_stmt *st = stmt_keyed(s, STMT_PUT, ns, key);
	char *what;
	int rc;

	sqlite3_bind_blob64(st, 3, value != NULL ? value : "", len, SQLITE_STATIC);
	what = xasprintf("write '%s/%s'", ns, key);
	rc = stmt_run(s, st, what, cause);
	sqlite3_clear_bindings(st);
	free(what);
	if (rc == 0)
		s->writes++;
	if (rc == 0 && !s->in_transaction)
		committed(s);
	return rc;
}

int bt_store_get(struct bt_store *s, const char *ns, const char *key, char **value, size_t *len)
{
	sqlite3_stmt *st = stmt_keyed(s, STMT_GET, ns, key);
	int rc = sqlite3_step(st);
	const void *blob;
	size_t n;

	if (rc == SQLITE_DONE) {
		rc = 1;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		log_error("unable to read '%s/%s' in store '%s': %s", ns, key, s->path,
		    sqlite3_errmsg(s->db));
		rc = -1;
		goto out;
	}
	blob = sqlite3_column_blob(st, 0);
	n = (size_t)sqlite3_column_bytes(st, 0);
	*value = xmalloc(n + 1);
	if (n > 0)
		memcpy(*value, blob, n);
	(*value)[n] = '\0';
	if (len != NULL)
		*len = n;
	rc = 0;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int bt_store_delete(struct bt_store *s, const char *ns, const char *key, char **cause)
{
	sqlite3_stmt *st = stmt_keyed(s, STMT_DELETE, ns, key);
	char *what = xasprintf("delete '%s/%s'", ns, key);
	int rc = stmt_run(s, st, what, cause);

	sqlite3_clear_bindings(st);
	free(what);
	if (rc == 0)
		s->writes++;
	if (rc == 0 && !s->in_transaction)
		committed(s);
	return rc;
}

/* a copy of the current row, so that a callback may write to the store */
struct row {
	char *key;
	char *value;
	size_t len;
};

int bt_store_foreach(struct bt_store *s, const char *ns, bt_store_each_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt_keyed(s, STMT_FOREACH, ns, NULL);
	struct row *rows = NULL;
	size_t n = 0, cap = 0, i;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			rows = xreallocarray(rows, cap, sizeof *rows);
		}
		rows[n].key = xstrdup((const char *)sqlite3_column_text(st, 0));
		rows[n].value = xmalloc(len + 1);
		if (len > 0)
			memcpy(rows[n].value, blob, len);
		rows[n].value[len] = '\0';
		rows[n].len = len;
		n++;
	}
	if (rc != SQLITE_DONE)
		log_error("unable to list '%s' in store '%s': %s", ns, s->path,
		    sqlite3_errmsg(s->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	rc = rc == SQLITE_DONE ? 0 : -1;
	for (i = 0; i < n && rc == 0; i++)
		if (cb(rows[i].key, rows[i].value, rows[i].len, arg) != 0)
			break;
	for (i = 0; i < n; i++) {
		free(rows[i].key);
		free(rows[i].value);
	}
	free(rows);
	return rc;
}

int bt_store_begin(struct bt_store *s, char **cause)
{
	if (s->in_transaction) {
		*cause = xasprintf("unable to begin a transaction in store '%s': one is open",
		    s->path);
		return -1;
	}
	if (stmt_run(s, s->stmt[STMT_BEGIN], "begin a transaction", cause) != 0)
		return -1;
	s->in_transaction = true;
	return 0;
}

int bt_store_commit(struct bt_store *s, char **cause)
{
	if (!s->in_transaction) {
		*cause = xasprintf("unable to commit in store '%s': no transaction is open",
		    s->path);
		return -1;
	}
	if (stmt_run(s, s->stmt[STMT_COMMIT], "commit", cause) != 0) {
		bt_store_rollback(s);
		return -1;
	}
	s->in_transaction = false;
	committed(s);
	return 0;
}

void bt_store_rollback(struct bt_store *s)
{
	if (!s->in_transaction)
		return;
	if (sqlite3_get_autocommit(s->db) == 0)
		stmt_run(s, s->stmt[STMT_ROLLBACK], "roll back", NULL);
	s->in_transaction = false;
}

/* ---- durability off the loop ---- */

/* make the commits SQLite wrote so far durable: 0, or an errno */
static int sync_log(struct store_sync *y, int *fd)
{
	if (*fd < 0) {
		if ((*fd = open(y->wal_path, O_RDONLY | O_CLOEXEC)) < 0)
			return errno;
		/* the log may be new: its directory entry goes to disk too, as SQLite's own syncs do */
		if (bt_fsync_dir_of(y->wal_path) != 0)
			return errno;
	}
	return fdatasync(*fd) == 0 ? 0 : errno;
}

static void *sync_main(void *arg)
{
	struct store_sync *y = arg;
	unsigned long target;
	int fd = -1, err = 0, frames;

	pthread_mutex_lock(&y->lock);
	while (err == 0) {
		while (y->done == y->want && !y->stop)
			pthread_cond_wait(&y->cond, &y->lock);
		if (y->done == y->want)
			break;
		target = y->want;
		pthread_mutex_unlock(&y->lock);
		err = sync_log(y, &fd);
		pthread_mutex_lock(&y->lock);
		/* a failed sync lets nothing go: what waits stays held, and the loop gives up */
		if (err == 0)
			y->done = target;
		y->err = err;
		frames = y->frames;
		pthread_mutex_unlock(&y->lock);
		while (write(y->wake[1], "", 1) < 0 && errno == EINTR)
			;
		/* after the loop was told: a checkpoint delays no answer */
		if (err == 0 && frames > CHECKPOINT_FRAMES)
			sqlite3_wal_checkpoint_v2(y->ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&y->lock);
	}
	pthread_mutex_unlock(&y->lock);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* after each commit: how long the log has grown (SQLite's wal hook, in the loop) */
static int wal_hook_cb(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store_sync *y = arg;

	pthread_mutex_lock(&y->lock);
	y->frames = frames;
	pthread_mutex_unlock(&y->lock);
	return SQLITE_OK;
}

/* run the waits of the commits up to done */
static void release(struct store_sync *y, unsigned long done)
{
	struct durable_wait *w;

	y->durable = done;
	while ((w = y->head) != NULL && w->commit <= done) {
		if ((y->head = w->next) == NULL)
			y->tail = &y->head;
		w->cb(w->arg);
		free(w);
	}
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bt_store *s = arg;
	struct store_sync *y = s->sync;
	unsigned long done;
	char buf[64];
	int err;

	while (read(fd, buf, sizeof buf) > 0)
		;
	pthread_mutex_lock(&y->lock);
	done = y->done;
	err = y->err;
	pthread_mutex_unlock(&y->lock);
	if (err != 0) {
		log_error("unable to sync store '%s': %s: stopping, since what was written "
		    "cannot be made durable", s->path, strerror(err));
		exit(EXIT_FAILURE);
	}
	release(y, done);
}

int bt_store_sync_start(struct bt_store *s, struct event_base *base, char **cause)
{
	sigset_t all, old_mask;
	struct store_sync *y;

	if (s->sync != NULL)
		return 0;
	if (exec_sql(s, "PRAGMA synchronous=NORMAL", cause) != 0 ||
	    exec_sql(s, "PRAGMA wal_autocheckpoint=0", cause) != 0)
		return -1;
	y = xcalloc(1, sizeof *y);
	y->wake[0] = y->wake[1] = -1;
	y->tail = &y->head;
	y->want = y->done = y->durable = s->commits;
	y->wal_path = xasprintf("%s-wal", s->path);
	if (sqlite3_open_v2(s->path, &y->ckpt, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK ||
	    sqlite3_exec(y->ckpt, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
		*cause = xasprintf("unable to open store '%s' for checkpoints: %s", s->path,
		    y->ckpt != NULL ? sqlite3_errmsg(y->ckpt) : "out of memory");
		goto fail;
	}
	if (pipe2(y->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		*cause = xasprintf("unable to sync store '%s': pipe: %s", s->path, strerror(errno));
		goto fail;
	}
	y->ev = event_new(base, y->wake[0], EV_READ | EV_PERSIST, wake_cb, s);
	event_add(y->ev, NULL);
	pthread_mutex_init(&y->lock, NULL);
	pthread_cond_init(&y->cond, NULL);
	/* the thread takes no signal: the loop's handlers stay the loop's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old_mask);
	errno = pthread_create(&y->thread, NULL, sync_main, y);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (errno != 0) {
		*cause = xasprintf("unable to sync store '%s': thread: %s", s->path, strerror(errno));
		pthread_mutex_destroy(&y->lock);
		pthread_cond_destroy(&y->cond);
		goto fail;
	}
	s->sync = y;
	sqlite3_wal_hook(s->db, wal_hook_cb, y);
	return 0;
fail:
	if (y->ev != NULL)
		event_free(y->ev);
	if (y->wake[0] >= 0) {
		close(y->wake[0]);
		close(y->wake[1]);
	}
	sqlite3_close(y->ckpt);
	free(y->wal_path);
	free(y);
	if (sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
		log_warn("store '%s' stays at synchronous=NORMAL: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

/* sync what is left, run every wait, and go back to syncing in each commit */
static void sync_stop(struct bt_store *s)
{
	struct store_sync *y = s->sync;
	char *cause = NULL;

	if (y == NULL)
		return;
	pthread_mutex_lock(&y->lock);
	y->stop = true;
	pthread_cond_signal(&y->cond);
	pthread_mutex_unlock(&y->lock);
	pthread_join(y->thread, NULL);
	sqlite3_wal_hook(s->db, NULL, NULL);
	if (y->err != 0)
		log_error("unable to sync store '%s': %s", s->path, strerror(y->err));
	release(y, ULONG_MAX);          /* the store closes: every wait runs */
	event_free(y->ev);
	close(y->wake[0]);
	close(y->wake[1]);
	sqlite3_close(y->ckpt);
	pthread_mutex_destroy(&y->lock);
	pthread_cond_destroy(&y->cond);
	free(y->wal_path);
	free(y);
	s->sync = NULL;
	/* the checkpoint SQLite makes when the store closes syncs again */
	if (exec_sql(s, "PRAGMA synchronous=FULL", &cause) != 0) {
		log_warn("%s", cause);
		free(cause);
	}
}

unsigned long bt_store_commits(const struct bt_store *s)
{
	return s->commits;
}

unsigned long bt_store_writes(const struct bt_store *s)
{
	return s->writes;
}

void bt_store_when_durable(struct bt_store *s, void (*cb)(void *arg), void *arg)
{
	struct store_sync *y = s->sync;
	/* an open transaction is the next commit */
	unsigned long commit = s->commits + (s->in_transaction ? 1 : 0);
	struct durable_wait *w;

	if (y == NULL || y->durable >= commit) {
		cb(arg);
		return;
	}
	w = xmalloc(sizeof *w);
	w->commit = commit;
	w->cb = cb;
	w->arg = arg;
	w->next = NULL;
	*y->tail = w;
	y->tail = &w->next;
}
