/*
 * updates.c -- the status update manager: reliable, ordered task updates.
 *
 * Every update a task produces is appended to its list of statuses and
 * checkpointed before it is sent. Per task the updates go out in order with
 * at most one outstanding: statuses[acked] is the one in flight; it is
 * resent after 10 s, doubling up to 10 min, and at once after every
 * re-subscription, until the master relays the framework's ACKNOWLEDGE with
 * its uuid. Then the next one goes. When the terminal update is
 * acknowledged and the process has ended, the task is dropped.
 */
#include "agent.h"
#include "ids.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_MIN               10.0
#define RETRY_MAX               600.0

bool agent_task_pending(const struct agent_task *t)
{
	return t->acked < t->nstatuses;
}

/*
 * Where the task runs, as Mesos reports it: the container id and the
 * task's address — a Docker container's own, else the agent's (frameworks
 * show it as the task's IP address).
 */
struct container_status {
	Mesos__V1__ContainerStatus cs;
	Mesos__V1__ContainerID cid;
	Mesos__V1__NetworkInfo net;
	Mesos__V1__NetworkInfo__IPAddress addr;
	Mesos__V1__NetworkInfo *nets[1];
	Mesos__V1__NetworkInfo__IPAddress *addrs[1];
};

static Mesos__V1__ContainerStatus *container_status(struct container_status *c,
    const struct agent_task *t)
{
	const char *ip = agent_docker_task_ip(t);

	if (ip == NULL)
		ip = t->agent->advertise_ip;
	mesos__v1__container_status__init(&c->cs);
	mesos__v1__container_id__init(&c->cid);
	mesos__v1__network_info__init(&c->net);
	mesos__v1__network_info__ipaddress__init(&c->addr);
	c->cid.value = t->container_id;
	c->cs.container_id = &c->cid;
	if (t->task_pid > 0) {
		c->cs.has_executor_pid = true;
		c->cs.executor_pid = (uint32_t)t->task_pid;
	}
	if (ip != NULL) {
		c->addr.has_protocol = true;
		c->addr.protocol = MESOS__V1__NETWORK_INFO__PROTOCOL__IPv4;
		c->addr.ip_address = (char *)ip;
		c->addrs[0] = &c->addr;
		c->net.n_ip_addresses = 1;
		c->net.ip_addresses = c->addrs;
		c->nets[0] = &c->net;
		c->cs.n_network_infos = 1;
		c->cs.network_infos = c->nets;
	}
	return &c->cs;
}

/* a heap TaskStatus (freed with mesos__v1__task_status__free_unpacked); t may be NULL */
static Mesos__V1__TaskStatus *status_new(struct agent *a, const struct agent_task *t,
    const char *task_id, Mesos__V1__TaskState state, const char *message, int reason,
    bool with_uuid)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
	struct container_status cs;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
	Mesos__V1__TaskStatus *copy;
	uint8_t uuid[16], *buf;
	size_t len;

	tid.value = (char *)task_id;
	eid.value = (char *)task_id;
	st.task_id = &tid;
	st.state = state;
	st.executor_id = &eid;
	if (message != NULL)
		st.message = (char *)message;
	if (a->agent_id != NULL) {
		aid.value = a->agent_id;
		st.agent_id = &aid;
	}
	st.has_timestamp = true;
	st.timestamp = bt_now();
	st.has_source = true;
	st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
	if (reason >= 0) {
		st.has_reason = true;
		st.reason = (Mesos__V1__TaskStatus__Reason)reason;
	}
	if (t != NULL)
		st.container_status = container_status(&cs, t);
	if (with_uuid) {
		bt_uuid_random(uuid);
		st.has_uuid = true;
		st.uuid.data = uuid;
		st.uuid.len = sizeof uuid;
	}
	len = mesos__v1__task_status__get_packed_size(&st);
	buf = xmalloc(len + 1);
	mesos__v1__task_status__pack(&st, buf);
	copy = mesos__v1__task_status__unpack(NULL, len, buf);
	free(buf);
	if (copy == NULL)
		bt_fatal("unable to copy a task status");
	return copy;
}

static void send_head(struct agent_task *t)
{
	struct agent *a = t->agent;
	char uuid[37] = "-";
	Mesos__V1__TaskStatus *st;

	if (!agent_task_pending(t) || !agent_link_subscribed(a->link))
		return;
	st = t->statuses[t->acked];
	if (BT_LOG_INFO >= bt_log_level) {
		if (st->has_uuid && st->uuid.len == 16)
			bt_uuid_format(st->uuid.data, uuid);
		log_info("sending %s update %s for task '%s' of framework '%s'",
		    bt_task_state_name(st->state), uuid, t->task_id, t->framework_id);
	}
	agent_link_send_update(a->link, t->framework_id, st);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_task *t = arg;
	struct timeval tv;

	if (!agent_task_pending(t))
		return;
	send_head(t);
	t->retry_interval *= 2;
	if (t->retry_interval > RETRY_MAX)
		t->retry_interval = RETRY_MAX;
	tv = bt_timeval(t->retry_interval);
	evtimer_add(t->retry_ev, &tv);
}

/* (re)start the retry clock of the update now first in line, and send it */
void agent_updates_start_retry(struct agent_task *t)
{
	struct timeval tv;

	if (t->retry_ev == NULL)
		t->retry_ev = evtimer_new(t->agent->base, retry_cb, t);
	evtimer_del(t->retry_ev);
	if (!agent_task_pending(t))
		return;
	t->retry_interval = RETRY_MIN;
	send_head(t);
	tv = bt_timeval(t->retry_interval);
	evtimer_add(t->retry_ev, &tv);
}

void agent_update_new(struct agent_task *t, Mesos__V1__TaskState state, const char *message,
    int reason)
{
	bool first = !agent_task_pending(t);

	t->statuses = xreallocarray(t->statuses, t->nstatuses + 1, sizeof *t->statuses);
	t->statuses[t->nstatuses++] = status_new(t->agent, t, t->task_id, state, message, reason,
	    true);
	t->state = state;
	log_info("task '%s' of framework '%s' is now %s%s%s", t->task_id, t->framework_id,
	    bt_task_state_name(state), message != NULL ? ": " : "", message != NULL ? message : "");
	agent_checkpoint_task(t);
	if (first)
		agent_updates_start_retry(t);
	agent_health_sync(t);
}

/* TASK_RUNNING with the task's health, as Mesos's executors send it */
void agent_update_health(struct agent_task *t, bool healthy, const char *message)
{
	bool first = !agent_task_pending(t);
	Mesos__V1__TaskStatus *st = status_new(t->agent, t, t->task_id,
	    MESOS__V1__TASK_STATE__TASK_RUNNING, message,
	    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, true);

	st->has_healthy = true;
	st->healthy = healthy;
	t->statuses = xreallocarray(t->statuses, t->nstatuses + 1, sizeof *t->statuses);
	t->statuses[t->nstatuses++] = st;
	log_info("task '%s' of framework '%s' is now %s%s%s", t->task_id, t->framework_id,
	    healthy ? "healthy" : "unhealthy", message != NULL ? ": " : "",
	    message != NULL ? message : "");
	agent_checkpoint_task(t);
	if (first)
		agent_updates_start_retry(t);
}

void agent_update_ack(struct agent *a, const char *framework_id, const char *task_id,
    const uint8_t *uuid, size_t uuid_len)
{
	struct agent_task *t = agent_task_find(a, framework_id, task_id);
	Mesos__V1__TaskStatus *head;

	if (t == NULL || !agent_task_pending(t)) {
		log_debug("acknowledgement for task '%s' of framework '%s' with nothing pending",
		    task_id, framework_id);
		return;
	}
	head = t->statuses[t->acked];
	if (!head->has_uuid || head->uuid.len != uuid_len ||
	    memcmp(head->uuid.data, uuid, uuid_len) != 0) {
		log_debug("acknowledgement for task '%s' does not match its pending update",
		    task_id);
		return;
	}
	t->acked++;
	log_debug("%s update of task '%s' acknowledged", bt_task_state_name(head->state), task_id);
	agent_checkpoint_task(t);
	agent_updates_start_retry(t);
	agent_task_maybe_remove(t);
}

void agent_updates_resend(struct agent *a)
{
	struct agent_task *t;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (agent_task_pending(t))
			agent_updates_start_retry(t);
	}
}

void agent_update_send_once(struct agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__TaskState state, const char *message, int reason)
{
	Mesos__V1__TaskStatus *st = status_new(a, NULL, task_id, state, message, reason, false);

	st->source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_AGENT;
	if (agent_link_subscribed(a->link))
		agent_link_send_update(a->link, framework_id, st);
	mesos__v1__task_status__free_unpacked(st, NULL);
}
