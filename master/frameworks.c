/*
 * frameworks.c -- framework lifecycle: subscription, failover, removal.
 *
 * A framework is CONNECTED while its SUBSCRIBE stream is open; the stream
 * gets HEARTBEAT events every --heartbeat_interval. When the stream
 * closes the framework is DISCONNECTED: its offers are recovered and its
 * FrameworkInfo.failover_timeout starts (default 0, so by default it is
 * removed at once, reference §2.5). Removal (failover timeout or TEARDOWN)
 * kills its tasks through SHUTDOWN_FRAMEWORK on every agent that runs
 * them, recovers its offers, and moves it to the bounded list of
 * completed frameworks, from which it can no longer subscribe. Frameworks
 * learned from the registry or from re-subscribing agents are RECOVERED
 * until they subscribe again with their id.
 */
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "ids.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

bool master_framework_partition_aware(const Mesos__V1__FrameworkInfo *info)
{
	for (size_t i = 0; i < info->n_capabilities; i++) {
		if (info->capabilities[i]->has_type && info->capabilities[i]->type ==
		    MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__PARTITION_AWARE)
			return true;
	}
	return false;
}

struct master_framework *master_framework_find(struct master *m, const char *id)
{
	return bt_map_get(&m->frameworks, id);
}

struct master_framework *master_framework_find_completed(struct master *m, const char *id)
{
	for (size_t i = 0; i < m->ncompleted_frameworks; i++) {
		if (strcmp(m->completed_frameworks[i]->id, id) == 0)
			return m->completed_frameworks[i];
	}
	return NULL;
}

static void set_info(struct master_framework *fw, const Mesos__V1__FrameworkInfo *info)
{
	if (fw->info != NULL)
		mesos__v1__framework_info__free_unpacked(fw->info, NULL);
	fw->info = (Mesos__V1__FrameworkInfo *)bt_pb_copy(&info->base);
	fw->partition_aware = master_framework_partition_aware(info);
}

struct master_framework *master_framework_new(struct master *m, const Mesos__V1__FrameworkInfo *info,
    enum master_framework_state state)
{
	struct master_framework *fw = xcalloc(1, sizeof *fw);

	fw->m = m;
	fw->id = xstrdup(info->id->value);
	set_info(fw, info);
	fw->state = state;
	fw->alloc = allocator_add_framework(m->allocator, fw->id, fw);
	bt_map_init_borrowed(&fw->tasks);
	TAILQ_INIT(&fw->completed);
	TAILQ_INIT(&fw->offers);
	bt_map_put(&m->frameworks, fw->id, fw);
	return fw;
}

void master_framework_send(struct master_framework *fw, const Mesos__V1__Scheduler__Event *ev)
{
	size_t len;
	void *buf;

	if (fw->stream == NULL)
		return;
	buf = bt_pb_encode_alloc(&ev->base, fw->json, &len);
	if (master_http_stream_send(fw->stream, buf, len) != 0)
		log_warn("framework '%s': stream dropped", fw->id);
	free(buf);
}

void master_framework_send_update(struct master_framework *fw, const Mesos__V1__TaskStatus *status)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
	Mesos__V1__Scheduler__Event__Update up = MESOS__V1__SCHEDULER__EVENT__UPDATE__INIT;

	up.status = (Mesos__V1__TaskStatus *)status;
	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE;
	ev.update = &up;
	master_framework_send(fw, &ev);
}

static void send_heartbeat(struct master_framework *fw)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;

	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__HEARTBEAT;
	master_framework_send(fw, &ev);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	send_heartbeat(arg);
}

static void failover_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_framework *fw = arg;

	if (fw->state == FRAMEWORK_DISCONNECTED)
		master_framework_remove(fw, "failover timeout expired");
}

static void disconnected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_framework *fw = arg;
	double timeout = fw->info->has_failover_timeout ? fw->info->failover_timeout : 0;
	struct timeval tv;

	if (fw->state != FRAMEWORK_DISCONNECTED)
		return;
	master_offers_remove_framework(fw, false);
	if (!(timeout > 0)) {
		master_framework_remove(fw, "disconnected without a failover timeout");
		return;
	}
	if (timeout > MASTER_MAX_REFUSE_SECONDS * 10)
		timeout = MASTER_MAX_REFUSE_SECONDS * 10;
	log_info("framework '%s' disconnected; removing it in %.3f s unless it re-subscribes",
	    fw->id, timeout);
	if (fw->failover_ev == NULL)
		fw->failover_ev = event_new(fw->m->base, -1, 0, failover_cb, fw);
	tv = bt_timeval(timeout);
	event_add(fw->failover_ev, &tv);
}

static void stream_closed_cb(struct bt_http_stream *st, void *arg)
{
	struct master_framework *fw = arg;
	struct timeval now = { 0, 0 };

	if (fw->stream != st)
		return;
	log_info("framework '%s' (%s) disconnected", fw->id, fw->info->name);
	fw->stream = NULL;
	free(fw->stream_id);
	fw->stream_id = NULL;
	fw->state = FRAMEWORK_DISCONNECTED;
	fw->unregistered_time = bt_now();
	allocator_activate_framework(fw->m->allocator, fw->alloc, false);
	if (fw->heartbeat_ev != NULL)
		event_del(fw->heartbeat_ev);
	/* the rest sends events and may remove the framework: do it from the loop */
	if (fw->disconnect_ev == NULL)
		fw->disconnect_ev = event_new(fw->m->base, -1, 0, disconnected_cb, fw);
	event_add(fw->disconnect_ev, &now);
}

static void send_subscribed(struct master_framework *fw)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
	Mesos__V1__Scheduler__Event__Subscribed sub = MESOS__V1__SCHEDULER__EVENT__SUBSCRIBED__INIT;
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
	Mesos__V1__MasterInfo info = MESOS__V1__MASTER_INFO__INIT;
	Mesos__V1__Address addr = MESOS__V1__ADDRESS__INIT;

	fid.value = fw->id;
	master_info_fill(fw->m, &info, &addr);
	sub.framework_id = &fid;
	sub.has_heartbeat_interval_seconds = true;
	sub.heartbeat_interval_seconds = fw->m->flags.heartbeat_interval;
	sub.master_info = &info;
	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED;
	ev.subscribed = &sub;
	master_framework_send(fw, &ev);
}

void master_framework_connect(struct master_framework *fw, struct evhttp_request *req, bool json,
    const Mesos__V1__FrameworkInfo *info)
{
	struct master *m = fw->m;
	struct timeval tv;

	if (fw->stream != NULL) {
		log_info("framework '%s' re-subscribed; closing its previous stream", fw->id);
		bt_http_stream_close(fw->stream);
	}
	set_info(fw, info);
	master_registry_put_framework(m, fw);
	if (fw->failover_ev != NULL)
		event_del(fw->failover_ev);
	if (fw->disconnect_ev != NULL)
		event_del(fw->disconnect_ev);
	/* offers made to an earlier connection are unknown to this one */
	master_offers_remove_framework(fw, false);
	free(fw->stream_id);
	fw->stream_id = bt_uuid_new();
	fw->json = json;
	bt_http_add_header(req, "Mesos-Stream-Id", fw->stream_id);
	fw->stream = bt_http_stream_start(req, 200, json ? "application/json" :
	    "application/x-protobuf", true, MASTER_FRAMEWORK_STREAM_MAX_BUFFERED, stream_closed_cb,
	    fw);
	if (fw->registered_time == 0)
		fw->registered_time = bt_now();
	else
		fw->reregistered_time = bt_now();
	fw->state = FRAMEWORK_CONNECTED;
	allocator_activate_framework(m->allocator, fw->alloc, true);
	allocator_revive(m->allocator, fw->alloc);
	send_subscribed(fw);
	send_heartbeat(fw);
	if (fw->heartbeat_ev == NULL)
		fw->heartbeat_ev = event_new(m->base, -1, EV_PERSIST, heartbeat_cb, fw);
	tv = bt_timeval(m->flags.heartbeat_interval);
	event_add(fw->heartbeat_ev, &tv);
	log_info("framework '%s' (%s) subscribed (%s)", fw->id, fw->info->name,
	    json ? "json" : "protobuf");
	master_allocate_soon(m);
}

static void push_completed(struct master *m, struct master_framework *fw)
{
	if (m->ncompleted_frameworks == MASTER_MAX_COMPLETED_FRAMEWORKS) {
		master_framework_free(m->completed_frameworks[0]);
		memmove(&m->completed_frameworks[0], &m->completed_frameworks[1],
		    (m->ncompleted_frameworks - 1) * sizeof *m->completed_frameworks);
		m->ncompleted_frameworks--;
	}
	m->completed_frameworks = xreallocarray(m->completed_frameworks,
	    m->ncompleted_frameworks + 1, sizeof *m->completed_frameworks);
	m->completed_frameworks[m->ncompleted_frameworks++] = fw;
}

/* kill every task: SHUTDOWN_FRAMEWORK to each agent that runs one, then complete them */
static void kill_tasks(struct master_framework *fw)
{
	struct bt_map agents;
	size_t n;
	void **v = bt_map_values(&fw->tasks, &n);

	bt_map_init(&agents);
	for (size_t i = 0; i < n; i++) {
		struct master_task *t = v[i];
		if (t->agent != NULL && bt_map_get(&agents, t->agent->id) == NULL) {
			bt_map_put(&agents, t->agent->id, t->agent);
			master_agent_send_shutdown(t->agent, fw->id);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct master_task *t = v[i];
		if (bt_task_state_terminal(t->state))
			master_task_complete(t);
		else
			master_task_transition(t, MESOS__V1__TASK_STATE__TASK_KILLED,
			    MESOS__V1__TASK_STATUS__REASON__REASON_FRAMEWORK_REMOVED,
			    "Framework removed");
	}
	bt_map_release(&agents);
	free(v);
}

void master_framework_remove(struct master_framework *fw, const char *why)
{
	struct master *m = fw->m;

	if (fw->state == FRAMEWORK_REMOVED)
		return;
	log_info("removing framework '%s' (%s): %s", fw->id, fw->info->name, why);
	if (fw->stream != NULL)
		bt_http_stream_close(fw->stream);
	fw->stream = NULL;
	free(fw->stream_id);
	fw->stream_id = NULL;
	if (fw->heartbeat_ev != NULL)
		event_del(fw->heartbeat_ev);
	if (fw->failover_ev != NULL)
		event_del(fw->failover_ev);
	if (fw->disconnect_ev != NULL)
		event_del(fw->disconnect_ev);
	master_offers_remove_framework(fw, false);
	fw->state = FRAMEWORK_REMOVED;
	kill_tasks(fw);
	allocator_remove_framework(m->allocator, fw->alloc);
	fw->alloc = -1;
	fw->unregistered_time = bt_now();
	bt_map_remove(&m->frameworks, fw->id);
	master_registry_remove_framework(m, fw->id);
	push_completed(m, fw);
	master_allocate_soon(m);
}

void master_framework_free(struct master_framework *fw)
{
	struct master_task *t;
	size_t n;
	void **v = bt_map_values(&fw->tasks, &n);

	for (size_t i = 0; i < n; i++)
		master_task_free(v[i]);
	free(v);
	while ((t = TAILQ_FIRST(&fw->completed)) != NULL) {
		TAILQ_REMOVE(&fw->completed, t, completed_entry);
		master_task_free(t);
	}
	bt_map_release(&fw->tasks);
	free(fw->pending);
	if (fw->stream != NULL)
		bt_http_stream_close(fw->stream);
	if (fw->heartbeat_ev != NULL)
		event_free(fw->heartbeat_ev);
	if (fw->failover_ev != NULL)
		event_free(fw->failover_ev);
	if (fw->disconnect_ev != NULL)
		event_free(fw->disconnect_ev);
	free(fw->stream_id);
	if (fw->info != NULL)
		mesos__v1__framework_info__free_unpacked(fw->info, NULL);
	free(fw->id);
	free(fw);
}
