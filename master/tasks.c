/*
 * tasks.c -- the task table: launches, status updates, acknowledgements,
 * kills, agent loss and reconciliation.
 *
 * A task lives in its framework's table (by task id) and on its agent's
 * list until it is terminal and nothing more is expected for it: an
 * agent-generated terminal update is kept until the framework acknowledges
 * it; a master-generated one (no uuid) completes the task at once.
 * Completed tasks move to the framework's bounded completed list. A task's
 * resources go back to the allocator on its terminal update (not on the
 * acknowledgement), or when its agent becomes unreachable.
 *
 * Master-generated updates (agent lost, kills of unknown tasks,
 * reconciliation) carry no uuid, source SOURCE_MASTER, and are never
 * acknowledged (reference §9.2). Reconciliation follows the six rows of
 * reference §10; rows 3-6 answer TASK_LOST to frameworks without the
 * PARTITION_AWARE capability.
 */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

void master_status_fill(Mesos__V1__TaskStatus *st, Mesos__V1__TaskID *tid, Mesos__V1__AgentID *aid,
    int state, int reason, const char *message)
{
	st->task_id = tid;
	st->agent_id = aid;
	st->state = state;
	st->message = (char *)message;
	st->has_timestamp = true;
	st->timestamp = bt_now();
	st->has_source = true;
	st->source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_MASTER;
	if (reason >= 0) {
		st->has_reason = true;
		st->reason = reason;
	}
}

static void json_extra(json_t **extra, const char *key, const ProtobufCMessage *msg)
{
	json_t *j;

	if (msg == NULL)
		return;
	if (*extra == NULL)
		*extra = json_object();
	j = bt_pbjson_from_message(msg);
	if (strcmp(key, "labels") == 0) {
		json_t *arr = json_object_get(j, "labels");
		if (arr != NULL)
			json_object_set(*extra, key, arr);
		json_decref(j);
		return;
	}
	json_object_set_new(*extra, key, j);
}

/* --- resources: scalar-only sets are shared --- */

struct shared_resources {
	struct bt_resources r;          /* first: a task points at it */
	size_t refs;
	char *key;
};

/*
 * The sharing key of a set of scalars, "name(role):milli;..." in the set's
 * order, written into buf; false for a set with ranges or sets (tasks with
 * ports) or one too long to share.
 */
static bool share_key(const struct bt_resources *r, char *buf, size_t size)
{
	size_t used = 0;
	int n;

	if (r->n == 0)
		return false;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].value.type != BT_SCALAR)
			return false;
		n = snprintf(buf + used, size - used, "%s(%s):%lld;", r->v[i].name, r->v[i].role,
		    (long long)r->v[i].value.scalar);
		if (n < 0 || (size_t)n >= size - used)
			return false;
		used += (size_t)n;
	}
	return true;
}

/* takes the contents of res (res is left empty) */
static void set_resources(struct master_task *t, struct bt_resources *res)
{
	struct master *m = t->fw->m;
	struct shared_resources *sr;
	struct bt_resources *own;
	char key[256];

	if (!share_key(res, key, sizeof key)) {
		own = xmalloc(sizeof *own);
		*own = *res;
		t->resources = own;
		t->shared_resources = false;
		bt_resources_init(res);
		return;
	}
	if ((sr = bt_map_get(&m->resource_sets, key)) == NULL) {
		sr = xcalloc(1, sizeof *sr);
		sr->r = *res;
		sr->key = xstrdup(key);
		bt_map_put(&m->resource_sets, sr->key, sr);
		bt_resources_init(res);
	} else {
		bt_resources_release(res);
	}
	sr->refs++;
	t->resources = &sr->r;
	t->shared_resources = true;
}

static void release_resources(struct master_task *t)
{
	struct shared_resources *sr;

	if (t->resources == NULL)
		return;
	if (!t->shared_resources) {
		bt_resources_release((struct bt_resources *)t->resources);
		free((void *)t->resources);
	} else {
		sr = (struct shared_resources *)t->resources;
		if (--sr->refs == 0) {
			bt_map_remove(&t->fw->m->resource_sets, sr->key);
			bt_resources_release(&sr->r);
			free(sr->key);
			free(sr);
		}
	}
	t->resources = NULL;
}

static struct master_task *task_alloc(struct master_framework *fw, struct master_agent *a,
    const char *id, const char *name)
{
	size_t idlen = strlen(id), namelen = name != NULL ? strlen(name) : 0;
	struct master_task *t = xcalloc(1, sizeof *t + idlen + namelen + 2);

	memcpy(t->id, id, idlen + 1);
	t->name = t->id + idlen + 1;
	if (namelen > 0)
		memcpy(t->name, name, namelen);
	t->fw = fw;
	t->agent = a;
	t->agent_id = a->id;
	t->state = MESOS__V1__TASK_STATE__TASK_STAGING;
	bt_map_put(&fw->tasks, t->id, t);       /* a borrowed key */
	TAILQ_INSERT_TAIL(&a->tasks, t, agent_entry);
	return t;
}

struct master_task *master_task_new(struct master_framework *fw, struct master_agent *a,
    const Mesos__V1__TaskInfo *ti, const struct bt_resources *res)
{
	struct master_task *t = task_alloc(fw, a, ti->task_id->value, ti->name);
	struct bt_resources copy;

	bt_resources_init(&copy);
	bt_resources_copy(&copy, res);
	set_resources(t, &copy);
	json_extra(&t->extra, "labels", ti->labels ? &ti->labels->base : NULL);
	json_extra(&t->extra, "container", ti->container ? &ti->container->base : NULL);
	json_extra(&t->extra, "discovery", ti->discovery ? &ti->discovery->base : NULL);
	json_extra(&t->extra, "health_check", ti->health_check ? &ti->health_check->base : NULL);
	fw->m->tasks_launched++;
	return t;
}

/*
 * Keep st packed without what reconciliation replaces (task id, agent id,
 * uuid, message, reason, source): a status from a simulated or a plain
 * agent then packs to a dozen bytes. TaskID is required, so an empty one
 * stands in.
 */
static void keep_status(struct master_task *t, const Mesos__V1__TaskStatus *st)
{
	Mesos__V1__TaskStatus copy = *st;
	Mesos__V1__TaskID none = MESOS__V1__TASK_ID__INIT;

	none.value = "";
	copy.task_id = &none;
	copy.agent_id = NULL;
	copy.has_uuid = false;
	copy.uuid.len = 0;
	copy.uuid.data = NULL;
	copy.message = NULL;
	copy.has_reason = false;
	copy.has_source = false;
	free(t->status);
	t->status_len = (uint32_t)mesos__v1__task_status__get_packed_size(&copy);
	t->status = xmalloc(t->status_len + 1);
	mesos__v1__task_status__pack(&copy, t->status);
}

static void record_status(struct master_task *t, const Mesos__V1__TaskStatus *st)
{
	struct master_status_entry *e;

	t->state = (int8_t)st->state;
	keep_status(t, st);
	if (t->nstatuses == MASTER_MAX_STATUSES) {
		memmove(&t->statuses[0], &t->statuses[1], (MASTER_MAX_STATUSES - 1) * sizeof t->statuses[0]);
		t->nstatuses--;
	} else if (t->nstatuses == t->capstatuses) {
		t->capstatuses = t->capstatuses == 0 ? 1 : t->capstatuses * 2;
		if (t->capstatuses > MASTER_MAX_STATUSES)
			t->capstatuses = MASTER_MAX_STATUSES;
		t->statuses = xreallocarray(t->statuses, t->capstatuses, sizeof *t->statuses);
	}
	e = &t->statuses[t->nstatuses++];
	e->state = (int8_t)st->state;
	e->timestamp = st->has_timestamp ? st->timestamp : bt_now();
	e->has_healthy = st->has_healthy;
	e->healthy = st->healthy;
}

/* give the task's resources back to the allocator (once) */
static void release(struct master_task *t)
{
	struct master *m = t->fw->m;

	if (t->released)
		return;
	t->released = true;
	allocator_recover(m->allocator, t->agent != NULL ? t->agent->alloc : -1, t->fw->alloc,
	    t->resources, 0, bt_monotonic());
	master_allocate_soon(m);
}

void master_task_reported(struct master_agent *a, const Mesos__V1__Task *rt)
{
	struct master *m = a->m;
	struct master_framework *fw = master_framework_find(m, rt->framework_id->value);
	struct master_task *t;
	struct bt_resources res;
	char *cause = NULL;

	if (fw == NULL) {
		Mesos__V1__FrameworkInfo fi = MESOS__V1__FRAMEWORK_INFO__INIT;
		fi.user = "";
		fi.name = "";
		fi.id = rt->framework_id;
		fw = master_framework_new(m, &fi, FRAMEWORK_RECOVERED);
	}
	t = bt_map_get(&fw->tasks, rt->task_id->value);
	if (t != NULL && t->agent != a) {
		log_warn("task '%s' of framework '%s' reported by agent '%s' but known on '%s'",
		    t->id, fw->id, a->id, t->agent_id);
		return;
	}
	if (t == NULL) {
		t = task_alloc(fw, a, rt->task_id->value, rt->name);
		t->released = true;     /* charged by the caller once the report is in */
		bt_resources_init(&res);
		if (bt_resources_from_pb(&res, rt->resources, rt->n_resources, &cause) != 0) {
			log_warn("task '%s': %s", t->id, cause);
			free(cause);
		}
		set_resources(t, &res);
		json_extra(&t->extra, "labels", rt->labels ? &rt->labels->base : NULL);
		json_extra(&t->extra, "container", rt->container ? &rt->container->base : NULL);
		json_extra(&t->extra, "discovery", rt->discovery ? &rt->discovery->base : NULL);
	}
	t->unreachable = false;
	if (rt->n_statuses > 0)
		record_status(t, rt->statuses[rt->n_statuses - 1]);
	t->state = (int8_t)rt->state;
	t->has_pending_uuid = rt->has_status_update_uuid && rt->status_update_uuid.len == 16;
	if (t->has_pending_uuid) {
		memcpy(t->pending_uuid, rt->status_update_uuid.data, 16);
		t->pending_state = (int8_t)(rt->has_status_update_state ? rt->status_update_state :
		    rt->state);
	}
}

void master_task_complete(struct master_task *t)
{
	struct master_framework *fw = t->fw;

	if (t->completed)
		return;
	release(t);
	if (bt_map_get(&fw->tasks, t->id) == t)
		bt_map_remove(&fw->tasks, t->id);
	if (t->agent != NULL)
		TAILQ_REMOVE(&t->agent->tasks, t, agent_entry);
	t->agent = NULL;
	t->completed = true;
	if (t->state >= 0 && t->state < 16)
		fw->m->tasks_completed[t->state]++;
	TAILQ_INSERT_TAIL(&fw->completed, t, completed_entry);
	if (++fw->ncompleted > MASTER_MAX_COMPLETED_TASKS) {
		struct master_task *old = TAILQ_FIRST(&fw->completed);
		TAILQ_REMOVE(&fw->completed, old, completed_entry);
		fw->ncompleted--;
		master_task_free(old);
	}
}

void master_task_free(struct master_task *t)
{
	if (t->agent != NULL)
		TAILQ_REMOVE(&t->agent->tasks, t, agent_entry);
	free(t->status);
	free(t->statuses);
	release_resources(t);
	json_decref(t->extra);
	free(t);
}

void master_task_transition(struct master_task *t, int state, int reason, const char *message)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	Mesos__V1__TimeInfo ut = MESOS__V1__TIME_INFO__INIT;

	tid.value = t->id;
	aid.value = (char *)t->agent_id;
	master_status_fill(&st, &tid, &aid, state, reason, message);
	if (state == MESOS__V1__TASK_STATE__TASK_UNREACHABLE) {
		ut.nanoseconds = (int64_t)(st.timestamp * 1e9);
		st.unreachable_time = &ut;
	}
	record_status(t, &st);
	t->has_pending_uuid = false;
	if (bt_task_state_terminal(state) || state == MESOS__V1__TASK_STATE__TASK_UNREACHABLE)
		release(t);
	if (state == MESOS__V1__TASK_STATE__TASK_UNREACHABLE)
		t->unreachable = true;
	master_framework_send_update(t->fw, &st);
	if (bt_task_state_terminal(state))
		master_task_complete(t);
}

/* an update for a framework the master removed: stop the agent's retries */
static void update_for_removed(struct master_agent *a, const char *framework_id,
    const Mesos__V1__TaskStatus *status)
{
	log_info("update %s for task '%s' of removed framework '%s'; shutting it down on '%s'",
	    bt_task_state_name(status->state), status->task_id->value, framework_id, a->id);
	if (status->has_uuid)
		master_agent_send_ack(a, framework_id, status->task_id->value, status->uuid.data,
		    status->uuid.len);
	master_agent_send_shutdown(a, framework_id);
}

void master_task_status_update(struct master_agent *a, const char *framework_id,
    const Mesos__V1__TaskStatus *status)
{
	struct master_framework *fw = master_framework_find(a->m, framework_id);
	struct master_task *t;

	if (status->task_id == NULL || status->task_id->value == NULL)
		return;
	if (fw == NULL) {
		if (master_framework_find_completed(a->m, framework_id) != NULL)
			update_for_removed(a, framework_id, status);
		else
			log_warn("update for task '%s' of unknown framework '%s' dropped",
			    status->task_id->value, framework_id);
		return;
	}
	log_debug("update %s for task '%s' of framework '%s' from agent '%s'",
	    bt_task_state_name(status->state), status->task_id->value, fw->id, a->id);
	t = bt_map_get(&fw->tasks, status->task_id->value);
	if (t != NULL) {
		record_status(t, status);
		t->unreachable = false;
		if (status->has_uuid && status->uuid.len == 16) {
			t->has_pending_uuid = true;
			memcpy(t->pending_uuid, status->uuid.data, 16);
			t->pending_state = (int8_t)status->state;
		}
		if (bt_task_state_terminal(status->state))
			release(t);
	}
	master_framework_send_update(fw, status);
	if (t != NULL && bt_task_state_terminal(t->state) && !status->has_uuid)
		master_task_complete(t);
}

void master_task_acknowledge(struct master_framework *fw, const char *agent_id,
    const char *task_id, const uint8_t *uuid, size_t len)
{
	struct master_agent *a = master_agent_find(fw->m, agent_id);
	struct master_task *t = bt_map_get(&fw->tasks, task_id);

	if (a != NULL && a->stream != NULL)
		master_agent_send_ack(a, fw->id, task_id, uuid, len);
	else
		log_info("acknowledgement for task '%s' not relayed: agent '%s' is not connected",
		    task_id, agent_id);
	if (t == NULL) {
		log_info("acknowledgement for unknown task '%s' of framework '%s'", task_id, fw->id);
		return;
	}
	if (t->has_pending_uuid && len == 16 && memcmp(t->pending_uuid, uuid, 16) == 0) {
		t->has_pending_uuid = false;
		if (bt_task_state_terminal(t->pending_state) && bt_task_state_terminal(t->state))
			master_task_complete(t);
	}
}

void master_task_kill(struct master_framework *fw, const char *task_id, const char *agent_id,
    Mesos__V1__KillPolicy *policy)
{
	struct master_task *t = bt_map_get(&fw->tasks, task_id);

	if (t == NULL) {
		Mesos__V1__Scheduler__Call__Reconcile r = MESOS__V1__SCHEDULER__CALL__RECONCILE__INIT;
		Mesos__V1__Scheduler__Call__Reconcile__Task rt =
		    MESOS__V1__SCHEDULER__CALL__RECONCILE__TASK__INIT;
		Mesos__V1__Scheduler__Call__Reconcile__Task *list[1] = { &rt };
		Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
		Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;

		log_info("kill of unknown task '%s' of framework '%s'; reconciling it", task_id,
		    fw->id);
		tid.value = (char *)task_id;
		aid.value = (char *)agent_id;
		rt.task_id = &tid;
		rt.agent_id = agent_id != NULL ? &aid : NULL;
		r.n_tasks = 1;
		r.tasks = list;
		master_reconcile(fw, &r);
		return;
	}
	if (t->agent == NULL || t->agent->stream == NULL) {
		log_info("kill of task '%s': agent '%s' is not connected", task_id, t->agent_id);
		return;
	}
	master_agent_send_kill(t->agent, fw->id, t->id, policy);
}

void master_tasks_agent_lost(struct master_agent *a)
{
	struct master_task *t, *next;
	char *msg = xasprintf("Agent %s (%s) is unreachable: it missed %d pings", a->id,
	    a->hostname, a->missed_pings);

	for (t = TAILQ_FIRST(&a->tasks); t != NULL; t = next) {
		next = TAILQ_NEXT(t, agent_entry);
		if (t->unreachable)
			continue;
		if (bt_task_state_terminal(t->state)) {
			master_task_complete(t);
			continue;
		}
		master_task_transition(t, t->fw->partition_aware ?
		    MESOS__V1__TASK_STATE__TASK_UNREACHABLE : MESOS__V1__TASK_STATE__TASK_LOST,
		    MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_REMOVED, msg);
	}
	free(msg);
}

/* one reconciliation reply for a known task: its latest status, without uuid */
static void reconcile_known(struct master_framework *fw, struct master_task *t)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
	Mesos__V1__TaskStatus *last = NULL;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;

	if (t->status != NULL)
		last = mesos__v1__task_status__unpack(NULL, t->status_len, t->status);
	if (last != NULL)
		st = *last;
	tid.value = t->id;
	aid.value = (char *)t->agent_id;
	master_status_fill(&st, &tid, &aid, t->state,
	    MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION,
	    "Reconciliation: Latest task state");
	if (last != NULL && last->has_timestamp)
		st.timestamp = last->timestamp;
	st.has_uuid = false;
	st.uuid.data = NULL;
	st.uuid.len = 0;
	master_framework_send_update(fw, &st);
	if (last != NULL)
		mesos__v1__task_status__free_unpacked(last, NULL);
}

static bool any_recovered(struct master *m)
{
	size_t n;
	void **v = bt_map_values(&m->agents, &n);
	bool found = false;

	for (size_t i = 0; i < n && !found; i++)
		found = ((struct master_agent *)v[i])->state == AGENT_RECOVERED;
	free(v);
	return found;
}

/* rows 2-6 of the table; transitional: some agent has not re-subscribed yet */
static void reconcile_unknown(struct master_framework *fw, Mesos__V1__TaskID *tid,
    Mesos__V1__AgentID *aid, bool transitional)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
	struct master_agent *a = aid != NULL ? master_agent_find(fw->m, aid->value) : NULL;
	int state;
	const char *msg;

	/* row 2: the agent (or, with no agent named, any agent) may still report it */
	if ((a != NULL && a->state == AGENT_RECOVERED) || (aid == NULL && transitional))
		return;
	if (a != NULL && a->state == AGENT_UNREACHABLE) {
		state = MESOS__V1__TASK_STATE__TASK_UNREACHABLE;
		msg = "Reconciliation: Task is unreachable";
	} else if (a != NULL) {
		state = MESOS__V1__TASK_STATE__TASK_GONE;
		msg = "Reconciliation: Task is unknown to the agent";
	} else {
		state = MESOS__V1__TASK_STATE__TASK_UNKNOWN;
		msg = "Reconciliation: Task is unknown";
	}
	if (!fw->partition_aware)
		state = MESOS__V1__TASK_STATE__TASK_LOST;
	master_status_fill(&st, tid, a != NULL ? aid : NULL, state,
	    MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION, msg);
	master_framework_send_update(fw, &st);
}

void master_reconcile(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Reconcile *r)
{
	bool transitional;

	if (r == NULL || r->n_tasks == 0) {
		size_t n;
		void **v = bt_map_values(&fw->tasks, &n);
		for (size_t i = 0; i < n; i++)
			reconcile_known(fw, v[i]);
		free(v);
		return;
	}
	transitional = any_recovered(fw->m);
	for (size_t i = 0; i < r->n_tasks; i++) {
		Mesos__V1__Scheduler__Call__Reconcile__Task *rt = r->tasks[i];
		struct master_task *t;
		if (rt->task_id == NULL || rt->task_id->value == NULL)
			continue;
		t = bt_map_get(&fw->tasks, rt->task_id->value);
		if (t != NULL)
			reconcile_known(fw, t);
		else
			reconcile_unknown(fw, rt->task_id, rt->agent_id, transitional);
	}
}

json_t *master_task_json(const struct master_task *t)
{
	json_t *j = json_object(), *statuses = json_array();
	const char *key;
	json_t *value;

	json_object_set_new(j, "id", json_string(t->id));
	json_object_set_new(j, "name", json_string(t->name));
	json_object_set_new(j, "framework_id", json_string(t->fw->id));
	json_object_set_new(j, "executor_id", json_string(""));
	json_object_set_new(j, "slave_id", json_string(t->agent_id));
	json_object_set_new(j, "state", json_string(bt_task_state_name(t->state)));
	json_object_set_new(j, "resources", bt_resources_flat_json(t->resources));
	json_object_set_new(j, "role", json_string("*"));
	for (size_t i = 0; i < t->nstatuses; i++) {
		json_t *s = json_object();
		json_object_set_new(s, "state", json_string(bt_task_state_name(t->statuses[i].state)));
		json_object_set_new(s, "timestamp", json_real(t->statuses[i].timestamp));
		if (t->statuses[i].has_healthy)
			json_object_set_new(s, "healthy", json_boolean(t->statuses[i].healthy));
		json_array_append_new(statuses, s);
	}
	json_object_set_new(j, "statuses", statuses);
	if (t->extra != NULL) {
		json_object_foreach(t->extra, key, value)
			json_object_set(j, key, value);
	}
	return j;
}
