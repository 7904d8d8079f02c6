/*
 * state.c -- what relay keeps across restarts, in SQLite (<work_dir>/relay.db).
 *
 * Namespaces of common/store.h: "framework" holds the framework id under
 * "id"; "apps" each app's current normalised definition by app id;
 * "versions" every stored version of every app by "<app id>\t<version>",
 * kept when the app is deleted; "apphistory" and "grouphistory" what
 * group versions need besides (history.c);
 * "tasks" one record per task relay launched and has not yet seen end,
 * written at its launch and when it is killed; "taskstates" what status
 * updates changed since (state, start, agent, address), one record per
 * task. Both are keyed by a number that grows with every write, so the
 * records written together lie together (relay_state_save_task_state);
 * "groups" the groups an app id cannot tell (empty ones, dependencies);
 * "deployments" each deployment in progress (its steps, how far it got and
 * the apps' definitions before it, for a rollback).
 * A task record is written before the ACCEPT that launches it, so a crash
 * can never forget a task that may be running.
 *
 * Writes made while the event stream is handled share one transaction
 * (relay_state_begin/relay_state_commit, driven by relay_batch_begin/end),
 * so an offers event launching a thousand tasks costs one fsync, not a
 * thousand; the calls that depend on those records wait for the commit.
 * The writes of one change made through the API (its app, versions and
 * deployment; relay_api_apply) are one transaction too.
 *
 * A commit does not wait for the disk on the event loop: the store syncs
 * in a thread (bt_store_sync_start), and what depends on a commit waits
 * for that sync instead -- the calls of relay_flush() and, through
 * bt_http_set_gate(), the answer to the request that made it -- so a
 * slow fsync delays those alone and no other request.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* an answer whose handler wrote to the store waits until that is on disk */
#define STORE_CACHE_KIB (64 * 1024)       /* pages, as far as they are used */

static unsigned long writes_mark(void *arg)
{
	struct relay *r = arg;

	return r->store != NULL ? bt_store_writes(r->store) : 0;
}

static void durable_hold(void *arg, void (*send)(void *ctx), void *ctx)
{
	relay_state_when_durable(arg, send, ctx);
}

int relay_state_open(struct relay *r, char **cause)
{
	struct bt_http_gate gate = { writes_mark, durable_hold, r };
	char *path;

	if (bt_mkdirs(r->cfg.work_dir, 0755, cause) != 0)
		return -1;
	path = xasprintf("%s/relay.db", r->cfg.work_dir);
	r->store = bt_store_open(path, cause);
	free(path);
	/* every task has a row, rewritten when it runs: its page stays in memory */
	if (r->store == NULL || bt_store_cache(r->store, STORE_CACHE_KIB, cause) != 0 ||
	    bt_store_sync_start(r->store, r->base, cause) != 0)
		return -1;
	/* an answer to a change leaves once the change is on disk */
	bt_http_set_gate(&gate);
	return 0;
}

static bool tx_open;

void relay_state_begin(struct relay *r)
{
	char *cause = NULL;

	if (tx_open || r->store == NULL)
		return;
	if (bt_store_begin(r->store, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return;
	}
	tx_open = true;
}

void relay_state_commit(struct relay *r)
{
	char *cause = NULL;

	if (!tx_open)
		return;
	tx_open = false;
	if (bt_store_commit(r->store, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
	}
}

void relay_state_when_durable(struct relay *r, void (*cb)(void *arg), void *arg)
{
	if (r->store == NULL)
		cb(arg);
	else
		bt_store_when_durable(r->store, cb, arg);
}

/* what waits for the disk (answers, calls) is let go before the store closes */
void relay_state_close(struct relay *r)
{
	relay_state_commit(r);
	bt_http_set_gate(NULL);
	if (r->store != NULL)
		bt_store_close(r->store);
	r->store = NULL;
}

/* text under a key of ns; takes the text */
static void put_text(struct relay *r, const char *ns, const char *key, char *text, size_t len)
{
	char *cause = NULL;

	if (bt_store_put(r->store, ns, key, text, len, &cause) != 0) {
		log_error("unable to store %s '%s': %s", ns, key, cause);
		free(cause);
	}
	free(text);
}

static void put_json(struct relay *r, const char *ns, const char *key, const json_t *j)
{
	char *text = bt_json_dump_exact(j);

	put_text(r, ns, key, text, strlen(text));
}

static void delete_key(struct relay *r, const char *ns, const char *key)
{
	char *cause = NULL;

	if (bt_store_delete(r->store, ns, key, &cause) != 0) {
		log_error("unable to delete %s '%s': %s", ns, key, cause);
		free(cause);
	}
}

/*
 * What the API answers for (apps, the framework id) is on disk before the
 * answer: a group commit that holds it open is finished now.
 */
static void durable(struct relay *r)
{
	if (r->batch > 0)
		r->flush_now = true;
	else if (r->commit_pending)
		relay_flush(r);
}

void relay_state_save_framework_id(struct relay *r)
{
	char *cause = NULL;

	if (r->framework_id == NULL) {
		delete_key(r, "framework", "id");
	} else if (bt_store_put(r->store, "framework", "id", r->framework_id,
	    strlen(r->framework_id), &cause) != 0) {
		log_error("unable to store the framework id: %s", cause);
		free(cause);
	}
	durable(r);
}

void relay_state_save_app(struct relay *r, const struct relay_app *app)
{
	char *key = xasprintf("%s\t%s", app->id, app->version);

	put_json(r, "apps", app->id, app->def);
	put_json(r, "versions", key, app->def);
	free(key);
	durable(r);
}

struct versions_walk {
	const char *id;
	json_t *out;
	const char *want;               /* one version, or NULL for the list */
	json_t *found;
};

static int versions_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct versions_walk *w = arg;
	size_t n = strlen(w->id);

	if (strncmp(key, w->id, n) != 0 || key[n] != '\t')
		return 0;
	if (w->want == NULL) {
		json_array_append_new(w->out, json_string(key + n + 1));
		return 0;
	}
	if (strcmp(key + n + 1, w->want) == 0) {
		w->found = bt_json_parse(value, len, NULL);
		return 1;
	}
	return 0;
}

/* its versions stay: group versions from before the delete name them (history.c) */
void relay_state_delete_app(struct relay *r, const char *id)
{
	delete_key(r, "apps", id);
	durable(r);
}

/* newest first, as Marathon lists them */
json_t *relay_state_app_versions(struct relay *r, const char *id)
{
	struct versions_walk w = { id, json_array(), NULL, NULL };
	json_t *rev = json_array();
	size_t i;

	bt_store_foreach(r->store, "versions", versions_cb, &w);
	for (i = json_array_size(w.out); i > 0; i--)
		json_array_append(rev, json_array_get(w.out, i - 1));
	json_decref(w.out);
	return rev;
}

json_t *relay_state_app_version(struct relay *r, const char *id, const char *version)
{
	struct versions_walk w = { id, NULL, version, NULL };

	bt_store_foreach(r->store, "versions", versions_cb, &w);
	return w.found;
}

/* the state record's key: fixed-width hex, so the store's order is the order of writing */
static void state_key_text(uint64_t key, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, key);
}

static void delete_task_state(struct relay *r, struct relay_task *t)
{
	char key[17];

	if (t->state_key == 0)
		return;
	state_key_text(t->state_key, key);
	delete_key(r, "taskstates", key);
	t->state_key = 0;
}

/*
 * Task records are written as text straight away (bt_json_out), not as a
 * jansson tree: at a hundred thousand launches that tree cost more than
 * SQLite's insert. The loader reads them as any JSON (task_cb).
 */
void relay_state_save_task(struct relay *r, struct relay_task *t)
{
	struct bt_json_out o;
	size_t i, len;
	char *text;

	bt_json_out_begin(&o);
	bt_json_out_string(&o, "id", t->id);
	bt_json_out_string(&o, "appId", t->app_id);
	bt_json_out_string(&o, "instanceId", t->instance_id);
	bt_json_out_int(&o, "incarnation", t->incarnation);
	bt_json_out_string(&o, "agentId", t->agent_id);
	bt_json_out_string(&o, "host", t->host);
	bt_json_out_string(&o, "ip", t->ip);
	bt_json_out_int(&o, "state", t->state);
	bt_json_out_real(&o, "stagedAt", t->staged_at);
	bt_json_out_real(&o, "startedAt", t->started_at);
	bt_json_out_string(&o, "version", t->version);
	bt_json_out_string(&o, "configVersion", t->config_version);
	bt_json_out_int(&o, "goal", (int)t->goal);
	bt_json_out_array(&o, "ports");
	for (i = 0; i < t->nports; i++)
		bt_json_out_int(&o, NULL, (long long)t->ports[i]);
	bt_json_out_array_end(&o);
	if (t->unreachable_since > 0)
		bt_json_out_real(&o, "unreachableSince", t->unreachable_since);
	text = bt_json_out_end(&o, &len);
	if (t->record_key != NULL)
		delete_key(r, "tasks", t->record_key);
	free(t->record_key);
	t->record_key = xmalloc(17);
	state_key_text(++r->record_seq, t->record_key);
	put_text(r, "tasks", t->record_key, text, len);
	delete_task_state(r, t);        /* the whole record holds it now */
}

/*
 * A status update rewrites no task record: tasks run in whatever order
 * their agents report, so rewriting the records would change a page of
 * the store for nearly every update. The state is appended instead, under
 * a key that grows, so the updates of a commit share a few pages; it
 * replaces the task's earlier state record and is folded into the task's
 * record when that is written whole.
 */
void relay_state_save_task_state(struct relay *r, struct relay_task *t)
{
	struct bt_json_out o;
	char key[17], *text;
	size_t len;

	bt_json_out_begin(&o);
	bt_json_out_string(&o, "id", t->id);
	bt_json_out_int(&o, "state", t->state);
	bt_json_out_real(&o, "startedAt", t->started_at);
	bt_json_out_string(&o, "agentId", t->agent_id);
	bt_json_out_string(&o, "ip", t->ip);
	if (t->unreachable_since > 0)
		bt_json_out_real(&o, "unreachableSince", t->unreachable_since);
	text = bt_json_out_end(&o, &len);
	delete_task_state(r, t);
	t->state_key = ++r->record_seq;
	state_key_text(t->state_key, key);
	put_text(r, "taskstates", key, text, len);
}

void relay_state_delete_task(struct relay *r, struct relay_task *t)
{
	if (t->record_key != NULL)
		delete_key(r, "tasks", t->record_key);
	delete_task_state(r, t);
}

void relay_state_save_deployment(struct relay *r, const char *id, const json_t *j)
{
	put_json(r, "deployments", id, j);
	durable(r);
}

void relay_state_delete_deployment(struct relay *r, const char *id)
{
	delete_key(r, "deployments", id);
}

void relay_state_save_group(struct relay *r, const char *id, const json_t *j)
{
	put_json(r, "groups", id, j);
	durable(r);
}

void relay_state_delete_group(struct relay *r, const char *id)
{
	delete_key(r, "groups", id);
}

static int group_cb(const char *key, const char *value, size_t len, void *arg)
{
	json_t *j = bt_json_parse(value, len, NULL);

	if (j == NULL || !json_is_array(json_object_get(j, "dependencies")) ||
	    bt_json_string(j, "version") == NULL) {
		log_warn("ignoring unreadable group record '%s'", key);
		json_decref(j);
		return 0;
	}
	json_object_set_new(arg, key, j);
	return 0;
}

json_t *relay_state_groups_load(struct relay *r)
{
	json_t *out = json_object();

	if (r->store != NULL)
		bt_store_foreach(r->store, "groups", group_cb, out);
	return out;
}

struct deployments_walk {
	int (*fn)(const char *id, json_t *j, void *arg);
	void *arg;
};

static int deployment_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct deployments_walk *w = arg;
	json_t *j = bt_json_parse(value, len, NULL);
	int rc;

	if (j == NULL) {
		log_warn("ignoring unreadable deployment record '%s'", key);
		return 0;
	}
	rc = w->fn(key, j, w->arg);
	json_decref(j);
	return rc;
}

void relay_state_foreach_deployment(struct relay *r, int (*fn)(const char *id, json_t *j, void *arg),
    void *arg)
{
	struct deployments_walk w = { fn, arg };

	bt_store_foreach(r->store, "deployments", deployment_cb, &w);
}

static char *dup_member(const json_t *j, const char *key)
{
	const char *s = bt_json_string(j, key);
	return s != NULL ? xstrdup(s) : NULL;
}

static int load_task_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct relay *r = arg;
	json_t *j = bt_json_parse(value, len, NULL);
	const char *id;
	struct relay_task *t;
	json_t *ports;
	size_t i;

	if (j == NULL || bt_json_string(j, "appId") == NULL || bt_json_string(j, "instanceId") == NULL) {
		log_warn("ignoring unreadable task record '%s'", key);
		json_decref(j);
		return 0;
	}
	/* keyed by the order of writing (stores of older versions: by the task id) */
	id = bt_json_string(j, "id") != NULL ? bt_json_string(j, "id") : key;
	if (strlen(key) == 16 && strspn(key, "0123456789abcdef") == 16 &&
	    strtoull(key, NULL, 16) > r->record_seq)
		r->record_seq = strtoull(key, NULL, 16);
	if (relay_task_find(r, id) != NULL) {
		log_warn("ignoring a second record '%s' of task '%s'", key, id);
		json_decref(j);
		return 0;
	}
	t = xcalloc(1, sizeof *t);
	t->id = xstrdup(id);
	t->record_key = xstrdup(key);
	t->app_id = dup_member(j, "appId");
	t->instance_id = dup_member(j, "instanceId");
	t->incarnation = (int)bt_json_number(j, "incarnation", 1);
	t->agent_id = dup_member(j, "agentId");
	t->host = dup_member(j, "host");
	t->ip = dup_member(j, "ip");
	t->state = (int)bt_json_number(j, "state", MESOS__V1__TASK_STATE__TASK_STAGING);
	t->staged_at = bt_json_number(j, "stagedAt", 0);
	t->started_at = bt_json_number(j, "startedAt", 0);
	t->version = dup_member(j, "version");
	t->config_version = dup_member(j, "configVersion");
	t->goal = (enum relay_goal)bt_json_number(j, "goal", RELAY_GOAL_RUNNING);
	t->unreachable_since = bt_json_number(j, "unreachableSince", 0);
	t->last_update = bt_monotonic();
	ports = json_object_get(j, "ports");
	t->nports = json_array_size(ports);
	t->ports = xcalloc(t->nports + 1, sizeof *t->ports);
	for (i = 0; i < t->nports; i++)
		t->ports[i] = (uint64_t)json_integer_value(json_array_get(ports, i));
	relay_task_insert(r, t);
	json_decref(j);
	return 0;
}

/* a state record, in the order they were written: the newest one of a task wins */
static int load_state_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct relay *r = arg;
	json_t *j = bt_json_parse(value, len, NULL);
	const char *id = j != NULL ? bt_json_string(j, "id") : NULL;
	struct relay_task *t = id != NULL ? relay_task_find(r, id) : NULL;
	uint64_t seq = strtoull(key, NULL, 16);
	bool was_unreachable;

	if (seq > r->record_seq)
		r->record_seq = seq;
	if (t == NULL) {
		/* its task ended, or its record never made it: nothing to apply */
		json_array_append_new(r->stale_states, json_string(key));
		json_decref(j);
		return 0;
	}
	if (t->state_key != 0) {
		char old[17];
		state_key_text(t->state_key, old);
		json_array_append_new(r->stale_states, json_string(old));
	}
	t->state_key = seq;
	t->state = (int)bt_json_number(j, "state", t->state);
	t->started_at = bt_json_number(j, "startedAt", t->started_at);
	was_unreachable = t->unreachable_since > 0;
	t->unreachable_since = bt_json_number(j, "unreachableSince", 0);
	if (was_unreachable != (t->unreachable_since > 0))
		r->nunreachable += was_unreachable ? (size_t)-1 : 1;
	if (bt_json_string(j, "agentId") != NULL) {
		free(t->agent_id);
		t->agent_id = dup_member(j, "agentId");
	}
	if (bt_json_string(j, "ip") != NULL) {
		free(t->ip);
		t->ip = dup_member(j, "ip");
	}
	relay_task_recount(t);
	json_decref(j);
	return 0;
}

/* state records no task needs, deleted after the walk that found them */
static void delete_stale_states(struct relay *r)
{
	json_t *key;
	size_t i;

	json_array_foreach(r->stale_states, i, key)
		delete_key(r, "taskstates", json_string_value(key));
	json_decref(r->stale_states);
	r->stale_states = NULL;
}

static int load_app_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct relay *r = arg;
	json_t *def = bt_json_parse(value, len, NULL);

	if (def == NULL || bt_json_string(def, "id") == NULL) {
		log_warn("ignoring unreadable app record '%s'", key);
		json_decref(def);
		return 0;
	}
	relay_app_set(r, def);
	return 0;
}

int relay_state_load(struct relay *r, char **cause)
{
	char *id = NULL;
	size_t len;
	size_t napps = 0, ntasks = 0;
	struct relay_app *app;
	struct relay_task *t;

	if (bt_store_get(r->store, "framework", "id", &id, &len) == 0 && len > 0)
		r->framework_id = id;
	else
		free(id);
	r->stale_states = json_array();
	if (bt_store_foreach(r->store, "apps", load_app_cb, r) != 0 ||
	    bt_store_foreach(r->store, "tasks", load_task_cb, r) != 0 ||
	    bt_store_foreach(r->store, "taskstates", load_state_cb, r) != 0) {
		json_decref(r->stale_states);
		r->stale_states = NULL;
		*cause = xasprintf("unable to read the state in '%s/relay.db'", r->cfg.work_dir);
		return -1;
	}
	delete_stale_states(r);
	TAILQ_FOREACH(app, &r->apps, entry)
		napps++;
	TAILQ_FOREACH(t, &r->tasks, entry)
		ntasks++;
	log_info("loaded framework id '%s', %zu apps, %zu tasks",
	    r->framework_id ? r->framework_id : "(none)", napps, ntasks);
	return 0;
}
