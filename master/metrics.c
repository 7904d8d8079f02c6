/*
 * metrics.c -- /metrics/snapshot: a flat JSON object of Mesos's metric names.
 *
 * Gauges (agents, frameworks, live tasks, resources, offers) are counted
 * from the tables at request time; terminal task counts are counters kept
 * as tasks complete; the allocator reports its runs and their duration
 * (reference §12).
 */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static void set(json_t *j, const char *name, double v)
{
	json_object_set_new(j, name, json_real(v));
}

static void agent_metrics(struct master *m, json_t *j, int64_t *total,
    struct bt_resources *used)
{
	size_t n, connected = 0, disconnected = 0, unreachable = 0;
	void **v = bt_map_values(&m->agents, &n);

	for (size_t i = 0; i < n; i++) {
		struct master_agent *a = v[i];
		struct master_task *t;
		if (a->state == AGENT_CONNECTED)
			connected++;
		else if (a->state == AGENT_DISCONNECTED)
			disconnected++;
		else if (a->state == AGENT_UNREACHABLE)
			unreachable++;
		if (a->state != AGENT_CONNECTED && a->state != AGENT_DISCONNECTED)
			continue;
		for (size_t k = 0; k < MASTER_NSCALARS; k++)
			total[k] += a->scalars[k];
		TAILQ_FOREACH(t, &a->tasks, agent_entry) {
			if (!t->released)
				bt_resources_add(used, t->resources);
		}
	}
	free(v);
	set(j, "master/slaves_active", (double)connected);
	set(j, "master/slaves_connected", (double)connected);
	set(j, "master/slaves_disconnected", (double)disconnected);
	set(j, "master/slaves_inactive", (double)disconnected);
	set(j, "master/slaves_unreachable", (double)unreachable);
}

static void framework_metrics(struct master *m, json_t *j)
{
	size_t n, connected = 0, other = 0;
	size_t live[16] = { 0 };
	void **v = bt_map_values(&m->frameworks, &n);

	for (size_t i = 0; i < n; i++) {
		struct master_framework *fw = v[i];
		size_t nt;
		void **tv = bt_map_values(&fw->tasks, &nt);
		if (fw->state == FRAMEWORK_CONNECTED)
			connected++;
		else
			other++;
		for (size_t k = 0; k < nt; k++) {
			struct master_task *t = tv[k];
			if (t->state >= 0 && t->state < 16 && !bt_task_state_terminal(t->state))
				live[t->state]++;
		}
		free(tv);
	}
	free(v);
	set(j, "master/frameworks_active", (double)connected);
	set(j, "master/frameworks_connected", (double)connected);
	set(j, "master/frameworks_disconnected", (double)other);
	set(j, "master/frameworks_inactive", (double)other);
	set(j, "master/tasks_staging", (double)live[MESOS__V1__TASK_STATE__TASK_STAGING]);
	set(j, "master/tasks_starting", (double)live[MESOS__V1__TASK_STATE__TASK_STARTING]);
	set(j, "master/tasks_running", (double)live[MESOS__V1__TASK_STATE__TASK_RUNNING]);
	set(j, "master/tasks_killing", (double)live[MESOS__V1__TASK_STATE__TASK_KILLING]);
	set(j, "master/tasks_unreachable", (double)live[MESOS__V1__TASK_STATE__TASK_UNREACHABLE]);
}

static void terminal_metrics(struct master *m, json_t *j)
{
	static const struct {
		const char *name;
		int state;
	} names[] = {
		{ "master/tasks_finished", MESOS__V1__TASK_STATE__TASK_FINISHED },
		{ "master/tasks_failed", MESOS__V1__TASK_STATE__TASK_FAILED },
		{ "master/tasks_killed", MESOS__V1__TASK_STATE__TASK_KILLED },
		{ "master/tasks_lost", MESOS__V1__TASK_STATE__TASK_LOST },
		{ "master/tasks_error", MESOS__V1__TASK_STATE__TASK_ERROR },
		{ "master/tasks_dropped", MESOS__V1__TASK_STATE__TASK_DROPPED },
		{ "master/tasks_gone", MESOS__V1__TASK_STATE__TASK_GONE },
		{ "master/tasks_gone_by_operator", MESOS__V1__TASK_STATE__TASK_GONE_BY_OPERATOR },
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		set(j, names[i].name, (double)m->tasks_completed[names[i].state]);
}

/* total: the agents' scalars in the order of names */
static void resource_metrics(json_t *j, const int64_t *total, const struct bt_resources *used)
{
	static const char *const names[MASTER_NSCALARS] = { "cpus", "mem", "disk", "gpus" };
	char key[64];

	for (size_t i = 0; i < MASTER_NSCALARS; i++) {
		double t = (double)total[i] / 1000.0;
		double u = (double)bt_resources_scalar(used, names[i]) / 1000.0;
		snprintf(key, sizeof key, "master/%s_total", names[i]);
		set(j, key, t);
		snprintf(key, sizeof key, "master/%s_used", names[i]);
		set(j, key, u);
		snprintf(key, sizeof key, "master/%s_percent", names[i]);
		set(j, key, t > 0 ? u / t : 0);
	}
}

void master_metrics_json(struct master *m, json_t *j)
{
	int64_t total[MASTER_NSCALARS] = { 0 };
	struct bt_resources used;

	bt_resources_init(&used);
	set(j, "master/elected", 1);
	set(j, "master/uptime_secs", bt_now() - m->start_time);
	agent_metrics(m, j, total, &used);
	framework_metrics(m, j);
	terminal_metrics(m, j);
	resource_metrics(j, total, &used);
	set(j, "master/outstanding_offers", (double)m->offers.n);
	set(j, "master/tasks_launched", (double)m->tasks_launched);
	set(j, "master/event_queue_messages", 0);
	set(j, "master/event_queue_dispatches", 0);
	set(j, "master/event_queue_http_requests", 0);
	set(j, "allocator/mesos/allocation_runs", (double)allocator_runs(m->allocator));
	set(j, "allocator/mesos/allocation_run_ms", allocator_run_ms(m->allocator));
	set(j, "allocator/mesos/allocation_run_ms/p50",
	    allocator_run_ms_percentile(m->allocator, 50));
	set(j, "allocator/mesos/allocation_run_ms/p99",
	    allocator_run_ms_percentile(m->allocator, 99));
	bt_resources_release(&used);
}
