/*
 * registry.c -- what the master keeps across restarts, in SQLite.
 *
 * The store (common/store.h) lives at <work_dir>/registry.db with three
 * namespaces: "agents" maps an agent id to its AgentInfo (protobuf),
 * "frameworks" a framework id to its FrameworkInfo (protobuf), and "meta"
 * holds the next agent number. A restarted master loads the agents as
 * "recovered, not yet re-subscribed" and the frameworks as known but not
 * subscribed; tasks are rebuilt from what the agents report when they
 * re-subscribe (as Mesos does, reference §14.3-14.4).
 */
#include "master.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "xmalloc.h"

#define REGISTRY_HEAP_LIMIT (512 * 1024)     /* bytes SQLite may keep in the master */

int master_registry_open(struct master *m, char **cause)
{
	char *path = xasprintf("%s/registry.db", m->flags.work_dir);

	/*
	 * The registry is written, and read only at start-up: SQLite's page
	 * cache (2 MB by default) would only duplicate the kernel's.
	 */
	sqlite3_soft_heap_limit64(REGISTRY_HEAP_LIMIT);
	m->store = bt_store_open(path, cause);
	free(path);
	return m->store != NULL ? 0 : -1;
}

void master_registry_close(struct master *m)
{
	if (m->store != NULL)
		bt_store_close(m->store);
	m->store = NULL;
}

static int agent_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct master *m = arg;
	Mesos__V1__AgentInfo *info;

	info = mesos__v1__agent_info__unpack(NULL, len, (const uint8_t *)value);
	if (info == NULL || info->id == NULL || strcmp(info->id->value, key) != 0) {
		log_warn("registry: ignoring a malformed record for agent '%s'", key);
		if (info != NULL)
			mesos__v1__agent_info__free_unpacked(info, NULL);
		return 0;
	}
	master_agent_recovered(m, info);
	mesos__v1__agent_info__free_unpacked(info, NULL);
	return 0;
}

static int framework_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct master *m = arg;
	Mesos__V1__FrameworkInfo *info;

	info = mesos__v1__framework_info__unpack(NULL, len, (const uint8_t *)value);
	if (info == NULL || info->id == NULL || strcmp(info->id->value, key) != 0) {
		log_warn("registry: ignoring a malformed record for framework '%s'", key);
		if (info != NULL)
			mesos__v1__framework_info__free_unpacked(info, NULL);
		return 0;
	}
	if (master_framework_find(m, key) == NULL)
		master_framework_new(m, info, FRAMEWORK_RECOVERED);
	mesos__v1__framework_info__free_unpacked(info, NULL);
	return 0;
}

void master_registry_recover(struct master *m)
{
	char *value = NULL;
	size_t len;

	if (bt_store_get(m->store, "meta", "next_agent", &value, &len) == 0) {
		m->next_agent = strtoull(value, NULL, 10);
		free(value);
	}
	bt_store_foreach(m->store, "agents", agent_cb, m);
	bt_store_foreach(m->store, "frameworks", framework_cb, m);
	log_info("registry: recovered %zu agents and %zu frameworks", m->agents.n,
	    m->frameworks.n);
}

void master_registry_put_agent(struct master *m, struct master_agent *a)
{
	char next[32], *cause = NULL;
	size_t len;
	uint8_t *buf = master_agent_info_packed(a, &len);

	snprintf(next, sizeof next, "%llu", (unsigned long long)m->next_agent);
	if (bt_store_begin(m->store, &cause) != 0 ||
	    bt_store_put(m->store, "agents", a->id, buf, len, &cause) != 0 ||
	    bt_store_put(m->store, "meta", "next_agent", next, strlen(next), &cause) != 0 ||
	    bt_store_commit(m->store, &cause) != 0) {
		log_error("registry: unable to store agent '%s': %s", a->id, cause);
		free(cause);
		bt_store_rollback(m->store);
	}
	free(buf);
}

void master_registry_put_framework(struct master *m, struct master_framework *fw)
{
	size_t len = mesos__v1__framework_info__get_packed_size(fw->info);
	uint8_t *buf = xmalloc(len + 1);
	char *cause = NULL;

	mesos__v1__framework_info__pack(fw->info, buf);
	if (bt_store_put(m->store, "frameworks", fw->id, buf, len, &cause) != 0) {
		log_error("registry: unable to store framework '%s': %s", fw->id, cause);
		free(cause);
	}
	free(buf);
}

void master_registry_remove_framework(struct master *m, const char *id)
{
	char *cause = NULL;

	if (bt_store_delete(m->store, "frameworks", id, &cause) != 0) {
		log_error("registry: unable to remove framework '%s': %s", id, cause);
		free(cause);
	}
}
