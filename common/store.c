/*
 * store.c -- namespaced keys and values in one SQLite table.
 *
 * The database holds a single table kv(ns, key, value) keyed by (ns, key)
 * and runs in WAL mode with synchronous=FULL, so a write that returned is
 * on disk. The statements are prepared once when the store opens. Outside
 * bt_store_begin()/bt_store_commit() every write is its own transaction
 * (SQLite's autocommit); inside, the writes land together or not at all.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
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

struct bt_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[STMT_COUNT];
	bool in_transaction;
};

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
	for (i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("unable to close store '%s': %s", s->path, sqlite3_errmsg(s->db));
	free(s->path);
	free(s);
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
