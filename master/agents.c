/*
 * agents.c -- the agent channel (docs/agent-channel.md).
 *
 * POST /api/v1/agent takes protobuf AgentCalls. SUBSCRIBE admits or
 * re-admits an agent (assigning "<masterId>-S<n>" to a new one), rebuilds
 * its tasks from the report, and keeps the response open as a RecordIO
 * stream of AgentEvents on the bare socket (stream.c). UPDATE and
 * HEARTBEAT come on separate requests with the stream id. Every
 * --agent_ping_timeout the master sends an agent HEARTBEAT and counts the
 * periods in which the agent sent nothing; after --max_agent_ping_timeouts
 * of them the agent is unreachable. All agents share one ping timer: the
 * period is the same for all, so a queue in order of subscription is also
 * in order of the next ping, and the timer fires at its head. A closed
 * stream only disconnects the agent: its offers are rescinded and it is
 * offered no more, but its tasks stay until the pings run out.
 */
#include "master.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "ids.h"
#include "keep.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

static struct master_agent *agent_new(struct master *m, const char *id)
{
	struct master_agent *a = xcalloc(1, sizeof *a + strlen(id) + 1);

	a->m = m;
	strcpy(a->id, id);
	a->alloc = -1;
	a->port = 5051;
	bt_attributes_init(&a->attributes);
	TAILQ_INIT(&a->tasks);
	TAILQ_INIT(&a->offers);
	bt_map_put(&m->agents, a->id, a);       /* a borrowed key */
	return a;
}

struct master_agent *master_agent_find(struct master *m, const char *id)
{
	return bt_map_get(&m->agents, id);
}

static const char *const scalar_names[MASTER_NSCALARS] = { "cpus", "mem", "disk", "gpus" };

/*
 * Take hostname, port, resources and attributes from info; -1 with *cause.
 * The packed copy leaves the id out (the agent record holds it): a message
 * field may come anywhere in the encoding, so the id is appended as field
 * 6 when the registry or a reader needs the whole AgentInfo.
 */
static int agent_set_info(struct master_agent *a, const Mesos__V1__AgentInfo *info, char **cause)
{
	struct bt_resources total;
	struct bt_attributes attrs;
	Mesos__V1__AgentInfo copy = *info;
	int rc = -1;

	bt_resources_init(&total);
	bt_attributes_init(&attrs);
	if (bt_resources_from_pb(&total, info->resources, info->n_resources, cause) != 0)
		goto out;
	if (bt_attributes_from_pb(&attrs, info->attributes, info->n_attributes, cause) != 0)
		goto out;
	for (size_t i = 0; i < MASTER_NSCALARS; i++)
		a->scalars[i] = bt_resources_scalar(&total, scalar_names[i]);
	bt_attributes_release(&a->attributes);
	a->attributes = attrs;
	bt_attributes_init(&attrs);
	free(a->hostname);
	a->hostname = xstrdup(info->hostname != NULL ? info->hostname : "");
	a->port = info->has_port ? info->port : 5051;
	copy.id = NULL;
	free(a->info);
	a->info_len = mesos__v1__agent_info__get_packed_size(&copy);
	a->info = xmalloc(a->info_len + 1);
	mesos__v1__agent_info__pack(&copy, a->info);
	rc = 0;
out:
	bt_resources_release(&total);
	bt_attributes_release(&attrs);
	return rc;
}

uint8_t *master_agent_info_packed(const struct master_agent *a, size_t *len)
{
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	size_t idlen, n = a->info_len;
	uint8_t *buf;

	aid.value = (char *)a->id;
	idlen = mesos__v1__agent_id__get_packed_size(&aid);
	buf = xmalloc(a->info_len + idlen + 16);
	if (a->info_len > 0)
		memcpy(buf, a->info, a->info_len);
	buf[n++] = (6 << 3) | 2;        /* AgentInfo.id: field 6, length-delimited */
	for (size_t v = idlen; ; v >>= 7) {
		buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		if (v <= 0x7f)
			break;
	}
	n += mesos__v1__agent_id__pack(&aid, buf + n);
	*len = n;
	return buf;
}

Mesos__V1__AgentInfo *master_agent_info(const struct master_agent *a)
{
	Mesos__V1__AgentInfo *info;
	uint8_t *buf;
	size_t len;

	if (a->info == NULL)
		return NULL;
	buf = master_agent_info_packed(a, &len);
	info = mesos__v1__agent_info__unpack(NULL, len, buf);
	free(buf);
	return info;
}

int master_agent_total(const struct master_agent *a, struct bt_resources *total, char **cause)
{
	Mesos__V1__AgentInfo *info = master_agent_info(a);
	int rc;

	if (info == NULL) {
		*cause = xasprintf("agent '%s' has no agent info", a->id);
		return -1;
	}
	rc = bt_resources_from_pb(total, info->resources, info->n_resources, cause);
	mesos__v1__agent_info__free_unpacked(info, NULL);
	return rc;
}

/* --- pings: one timer for all agents --- */

/* (re)queue the agent for a ping one period from now */
static void ping_schedule(struct master_agent *a)
{
	struct master *m = a->m;
	struct timeval tv;

	if (a->pinged)
		TAILQ_REMOVE(&m->pings, a, ping_entry);
	a->ping_due = bt_monotonic() + m->flags.agent_ping_timeout;
	TAILQ_INSERT_TAIL(&m->pings, a, ping_entry);
	a->pinged = true;
	if (TAILQ_FIRST(&m->pings) == a) {
		tv = bt_timeval(m->flags.agent_ping_timeout);
		event_add(m->ping_ev, &tv);
	}
}

static void ping_unschedule(struct master_agent *a)
{
	if (!a->pinged)
		return;
	TAILQ_REMOVE(&a->m->pings, a, ping_entry);
	a->pinged = false;
}

struct master_agent *master_agent_recovered(struct master *m, const Mesos__V1__AgentInfo *info)
{
	struct master_agent *a;
	char *cause = NULL;
	int rc;

	bt_keep_begin();
	a = agent_new(m, info->id->value);
	rc = agent_set_info(a, info, &cause);
	bt_keep_end();
	if (rc != 0) {
		log_warn("registry: agent '%s': %s", a->id, cause);
		free(cause);
	}
	a->state = AGENT_RECOVERED;
	return a;
}

void master_agent_free(struct master_agent *a)
{
	ping_unschedule(a);
	if (a->disconnect_ev != NULL)
		event_free(a->disconnect_ev);
	if (a->stream != NULL)
		master_stream_close(a->stream);
	free(a->hostname);
	free(a->ip);
	free(a->info);
	bt_attributes_release(&a->attributes);
	free(a);
}

void master_agent_send(struct master_agent *a, const Butte__AgentEvent *ev)
{
	size_t len;
	void *buf;

	if (a->stream == NULL)
		return;
	buf = bt_pb_encode_alloc(&ev->base, false, &len);
	if (master_stream_send(a->stream, buf, len) != 0)
		log_warn("agent '%s': stream dropped", a->id);
	free(buf);
}

void master_agent_send_kill(struct master_agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__KillPolicy *policy)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;
	Butte__AgentEvent__Kill kill = BUTTE__AGENT_EVENT__KILL__INIT;
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;

	fid.value = (char *)framework_id;
	tid.value = (char *)task_id;
	kill.framework_id = &fid;
	kill.task_id = &tid;
	kill.kill_policy = policy;
	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__KILL;
	ev.kill = &kill;
	master_agent_send(a, &ev);
}

void master_agent_send_ack(struct master_agent *a, const char *framework_id, const char *task_id,
    const uint8_t *uuid, size_t len)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;
	Butte__AgentEvent__Acknowledge ack = BUTTE__AGENT_EVENT__ACKNOWLEDGE__INIT;
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;

	fid.value = (char *)framework_id;
	tid.value = (char *)task_id;
	ack.framework_id = &fid;
	ack.task_id = &tid;
	ack.uuid.data = (uint8_t *)uuid;
	ack.uuid.len = len;
	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__ACKNOWLEDGE;
	ev.acknowledge = &ack;
	master_agent_send(a, &ev);
}

void master_agent_send_shutdown(struct master_agent *a, const char *framework_id)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;
	Butte__AgentEvent__ShutdownFramework sd = BUTTE__AGENT_EVENT__SHUTDOWN_FRAMEWORK__INIT;
	Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;

	fid.value = (char *)framework_id;
	sd.framework_id = &fid;
	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__SHUTDOWN_FRAMEWORK;
	ev.shutdown_framework = &sd;
	master_agent_send(a, &ev);
}

static void send_heartbeat(struct master_agent *a)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;

	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__HEARTBEAT;
	master_agent_send(a, &ev);
}

/* the ping timeouts ran out */
static void agent_unreachable(struct master_agent *a)
{
	struct master *m = a->m;

	log_warn("agent '%s' (%s) is unreachable after %d missed pings", a->id, a->hostname,
	    a->missed_pings);
	a->state = AGENT_UNREACHABLE;
	a->unreachable_time = bt_now();
	ping_unschedule(a);
	if (a->stream != NULL)
		master_stream_close(a->stream);
	a->stream = NULL;
	a->stream_id[0] = '\0';
	master_offers_rescind_agent(a);
	master_tasks_agent_lost(a);
	allocator_remove_agent(m->allocator, a->alloc);
	a->alloc = -1;
}

/* one ping period of the agent ended */
static void ping_agent(struct master_agent *a)
{
	if (a->state != AGENT_CONNECTED && a->state != AGENT_DISCONNECTED)
		return;
	if (a->heard)
		a->missed_pings = 0;
	else
		a->missed_pings++;
	a->heard = false;
	if (a->missed_pings >= a->m->flags.max_agent_ping_timeouts) {
		agent_unreachable(a);
		return;
	}
	send_heartbeat(a);
	ping_schedule(a);
}

static void pings_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	struct master_agent *a;
	double now = bt_monotonic();
	struct timeval tv;

	while ((a = TAILQ_FIRST(&m->pings)) != NULL && a->ping_due <= now + 0.001) {
		ping_unschedule(a);
		ping_agent(a);
	}
	if (a != NULL) {
		tv = bt_timeval(a->ping_due - now);
		event_add(m->ping_ev, &tv);
	}
}

static void disconnected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_agent *a = arg;

	if (a->state == AGENT_DISCONNECTED)
		master_offers_rescind_agent(a);
}

static void stream_closed_cb(struct master_stream *st, void *arg)
{
	struct master_agent *a = arg;
	struct timeval now = { 0, 0 };

	if (a->stream != st)
		return;
	log_info("agent '%s' (%s) disconnected", a->id, a->hostname);
	a->stream = NULL;
	a->stream_id[0] = '\0';
	if (a->state == AGENT_CONNECTED)
		a->state = AGENT_DISCONNECTED;
	allocator_activate_agent(a->m->allocator, a->alloc, false);
	/* rescinding sends events; do it from the loop, not under the server's callback */
	if (a->disconnect_ev == NULL)
		a->disconnect_ev = event_new(a->m->base, -1, 0, disconnected_cb, a);
	event_add(a->disconnect_ev, &now);
}

void master_agents_reregister_timeout(struct master *m)
{
	size_t n;
	void **v = bt_map_values(&m->agents, &n);

	for (size_t i = 0; i < n; i++) {
		struct master_agent *a = v[i];
		if (a->state != AGENT_RECOVERED)
			continue;
		log_warn("agent '%s' did not re-subscribe within %.0f s of the restart; unreachable",
		    a->id, m->flags.agent_reregister_timeout);
		a->state = AGENT_UNREACHABLE;
		a->unreachable_time = bt_now();
	}
	free(v);
}

/* task key for the report check */
static char *task_key(const char *framework_id, const char *task_id)
{
	return xasprintf("%s\n%s", framework_id, task_id);
}

/* re-add the reported frameworks and tasks; tasks the agent no longer has are lost */
static void agent_take_report(struct master_agent *a, const Butte__AgentCall__Subscribe *sub)
{
	struct master *m = a->m;
	struct bt_map seen;
	struct master_task *t, *next;

	bt_map_init(&seen);
	for (size_t i = 0; i < sub->n_frameworks; i++) {
		Mesos__V1__FrameworkInfo *fi = sub->frameworks[i];
		if (fi->id == NULL || fi->id->value == NULL)
			continue;
		if (master_framework_find(m, fi->id->value) == NULL &&
		    master_framework_find_completed(m, fi->id->value) == NULL)
			master_framework_new(m, fi, FRAMEWORK_RECOVERED);
	}
	for (size_t i = 0; i < sub->n_tasks; i++) {
		Mesos__V1__Task *rt = sub->tasks[i];
		char *key;
		if (rt->framework_id == NULL || rt->task_id == NULL)
			continue;
		if (master_framework_find_completed(m, rt->framework_id->value) != NULL &&
		    master_framework_find(m, rt->framework_id->value) == NULL)
			continue;       /* shut down below */
		master_task_reported(a, rt);
		key = task_key(rt->framework_id->value, rt->task_id->value);
		bt_map_put(&seen, key, a);
		free(key);
	}
	for (t = TAILQ_FIRST(&a->tasks); t != NULL; t = next) {
		char *key = task_key(t->fw->id, t->id);
		bool found = bt_map_get(&seen, key) != NULL;
		next = TAILQ_NEXT(t, agent_entry);
		free(key);
		if (found || bt_task_state_terminal(t->state))
			continue;
		master_task_transition(t, t->fw->partition_aware ?
		    MESOS__V1__TASK_STATE__TASK_GONE : MESOS__V1__TASK_STATE__TASK_LOST,
		    MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION,
		    "Task is unknown to the re-subscribed agent");
	}
	bt_map_release(&seen);
}

/* give the allocator back what the agent's tasks hold (before the agent is re-added) */
static void uncharge_tasks(struct master_agent *a)
{
	struct master_task *t;

	TAILQ_FOREACH(t, &a->tasks, agent_entry) {
		if (t->released)
			continue;
		allocator_recover(a->m->allocator, a->alloc, t->fw->alloc, t->resources, 0, 0);
		t->released = true;
	}
}

/* charge the agent's live tasks to it and their frameworks (after the report) */
static void charge_tasks(struct master_agent *a)
{
	struct master_task *t;

	TAILQ_FOREACH(t, &a->tasks, agent_entry) {
		if (!t->released || bt_task_state_terminal(t->state) || t->unreachable)
			continue;
		allocator_use(a->m->allocator, a->alloc, t->fw->alloc, t->resources);
		t->released = false;
	}
}

static void send_subscribed(struct master_agent *a)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;
	Butte__AgentEvent__Subscribed sub = BUTTE__AGENT_EVENT__SUBSCRIBED__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	Mesos__V1__MasterInfo info = MESOS__V1__MASTER_INFO__INIT;
	Mesos__V1__Address addr = MESOS__V1__ADDRESS__INIT;

	aid.value = a->id;
	master_info_fill(a->m, &info, &addr);
	sub.agent_id = &aid;
	sub.has_heartbeat_interval_seconds = true;
	sub.heartbeat_interval_seconds = a->m->flags.agent_ping_timeout;
	sub.master_info = &info;
	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__SUBSCRIBED;
	ev.subscribed = &sub;
	master_agent_send(a, &ev);
}

/* shut down frameworks that were removed while the agent was away */
static void shutdown_removed_frameworks(struct master_agent *a, const Butte__AgentCall__Subscribe *sub)
{
	for (size_t i = 0; i < sub->n_tasks; i++) {
		Mesos__V1__Task *rt = sub->tasks[i];
		if (rt->framework_id == NULL)
			continue;
		if (master_framework_find(a->m, rt->framework_id->value) == NULL &&
		    master_framework_find_completed(a->m, rt->framework_id->value) != NULL)
			master_agent_send_shutdown(a, rt->framework_id->value);
	}
}

/* the one copy of s kept for the life of the master (agent versions repeat) */
static const char *intern(struct master *m, const char *s)
{
	char *v = bt_map_get(&m->strings, s);

	if (v == NULL) {
		v = xstrdup(s);
		bt_map_put(&m->strings, v, v);
	}
	return v;
}

/* the agent record for a subscription (new id when none is given); NULL after a 400 */
static struct master_agent *agent_admit(struct master *m, struct evhttp_request *req,
    const Mesos__V1__AgentInfo *info, bool *fresh)
{
	struct master_agent *a;
	char *cause = NULL, *id;
	int rc;

	*fresh = false;
	bt_keep_begin();        /* an agent's record lives as long as the master (keep.h) */
	if (info->id != NULL && info->id->value != NULL && info->id->value[0] != '\0') {
		a = master_agent_find(m, info->id->value);
		if (a == NULL)
			a = agent_new(m, info->id->value);
	} else {
		id = xasprintf("%s-S%llu", m->id, (unsigned long long)m->next_agent++);
		a = agent_new(m, id);
		free(id);
		*fresh = true;
	}
	rc = agent_set_info(a, info, &cause);
	bt_keep_end();
	if (rc != 0) {
		bt_http_error(req, 400, "%s", cause);
		free(cause);
		if (*fresh)
			master_agent_free(bt_map_remove(&m->agents, a->id));
		return NULL;
	}
	return a;
}

/* the agent's (possibly new) total replaces its old one in the allocator */
static void agent_reset_allocation(struct master_agent *a)
{
	struct allocator *al = a->m->allocator;
	struct bt_resources total;
	char *cause = NULL;

	bt_resources_init(&total);
	if (master_agent_total(a, &total, &cause) != 0) {
		log_warn("agent '%s': %s", a->id, cause);
		free(cause);
	}
	master_offers_rescind_agent(a);
	uncharge_tasks(a);
	allocator_remove_agent(al, a->alloc);
	bt_keep_begin();        /* the allocator's copy of the agent's resources */
	a->alloc = allocator_add_agent(al, a->id, &total, a);
	bt_keep_end();
	bt_resources_release(&total);
}

/*
 * The address frameworks are told to reach the agent at: its hostname when
 * that is an IP literal (an agent bound to 127.0.0.2 connects from
 * 127.0.0.1), else the address its subscription came from.
 */
static const char *agent_address(const Mesos__V1__AgentInfo *info, struct evhttp_request *req)
{
	struct in6_addr addr;

	if (info->hostname != NULL && (inet_pton(AF_INET, info->hostname, &addr) == 1 ||
	    inet_pton(AF_INET6, info->hostname, &addr) == 1))
		return info->hostname;
	return bt_http_peer(req) != NULL ? bt_http_peer(req) : "127.0.0.1";
}

static void agent_subscribe(struct master *m, struct evhttp_request *req, Butte__AgentCall *call)
{
	Butte__AgentCall__Subscribe *sub = call->subscribe;
	struct master_agent *a;
	char *uuid;
	bool fresh;

	if (sub == NULL || sub->agent_info == NULL) {
		bt_http_error(req, 400, "expecting 'subscribe.agent_info' to be present");
		return;
	}
	if ((a = agent_admit(m, req, sub->agent_info, &fresh)) == NULL)
		return;
	if (a->stream != NULL)
		master_stream_close(a->stream);
	a->stream = NULL;
	a->version = intern(m, sub->version != NULL ? sub->version : MASTER_VERSION);
	free(a->ip);
	bt_keep_begin();
	a->ip = xstrdup(agent_address(sub->agent_info, req));
	bt_keep_end();
	agent_reset_allocation(a);
	if (a->registered_time == 0)
		a->registered_time = bt_now();
	else
		a->reregistered_time = bt_now();
	a->state = AGENT_CONNECTED;
	a->heard = true;
	a->missed_pings = 0;
	uuid = bt_uuid_new();
	snprintf(a->stream_id, sizeof a->stream_id, "%s", uuid);
	free(uuid);
	agent_take_report(a, sub);
	charge_tasks(a);
	master_registry_put_agent(m, a);
	a->stream = master_stream_take(m->base, req, "application/x-protobuf", a->stream_id,
	    MASTER_STREAM_MAX_BUFFERED, stream_closed_cb, a);
	send_subscribed(a);
	shutdown_removed_frameworks(a, sub);
	ping_schedule(a);
	log_info("agent '%s' at %s:%d %s with %zu tasks", a->id, a->hostname, a->port,
	    fresh ? "subscribed" : "re-subscribed", sub->n_tasks);
	master_allocate_soon(m);
}

static bool update_valid(const Butte__AgentCall__Update *u)
{
	return u->status != NULL && u->framework_id != NULL;
}

/* an UPDATE holds at least one status, each with its framework */
static bool updates_valid(const Butte__AgentCall *call)
{
	size_t i;

	if (call->update == NULL && call->n_updates == 0)
		return false;
	if (call->update != NULL && !update_valid(call->update))
		return false;
	for (i = 0; i < call->n_updates; i++) {
		if (!update_valid(call->updates[i]))
			return false;
	}
	return true;
}

/* UPDATE and HEARTBEAT: the caller must hold the agent's current stream */
static void agent_call(struct master *m, struct evhttp_request *req, Butte__AgentCall *call)
{
	const char *sid = bt_http_header(req, "Mesos-Stream-Id");
	struct master_agent *a;
	size_t i;

	if (call->agent_id == NULL || call->agent_id->value == NULL) {
		bt_http_error(req, 400, "expecting 'agent_id' to be present");
		return;
	}
	a = master_agent_find(m, call->agent_id->value);
	if (a == NULL) {
		bt_http_error(req, 400, "agent '%s' is unknown", call->agent_id->value);
		return;
	}
	if (sid == NULL) {
		bt_http_error(req, 400, "all non-subscribe calls should include the "
		    "'Mesos-Stream-Id' header");
		return;
	}
	if (a->stream_id[0] == '\0' || strcmp(sid, a->stream_id) != 0) {
		bt_http_error(req, 400, "the stream id '%s' does not match the current "
		    "subscription of agent '%s'", sid, a->id);
		return;
	}
	a->heard = true;
	if (call->type == BUTTE__AGENT_CALL__TYPE__UPDATE && !updates_valid(call)) {
		bt_http_error(req, 400, "expecting 'update' or 'updates' to be present");
		return;
	}
	if (call->type == BUTTE__AGENT_CALL__TYPE__UPDATE) {
		if (call->update != NULL)
			master_task_status_update(a, call->update->framework_id->value,
			    call->update->status);
		for (i = 0; i < call->n_updates; i++)
			master_task_status_update(a, call->updates[i]->framework_id->value,
			    call->updates[i]->status);
	}
	bt_http_reply(req, 202, NULL, NULL, 0);
}

void master_agent_api_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct master *m = arg;
	Butte__AgentCall *call;
	char *ctype, *cause = NULL;
	const char *body;
	size_t len;

	if (strcmp(bt_http_method(req), "POST") != 0) {
		bt_http_error(req, 405, "expecting a 'POST' request, received '%s'",
		    bt_http_method(req));
		return;
	}
	ctype = bt_http_content_type(req);
	if (ctype == NULL) {
		bt_http_error(req, 400, "expecting 'Content-Type' to be present");
		return;
	}
	if (strcmp(ctype, "application/x-protobuf") != 0) {
		bt_http_error(req, 415, "expecting 'Content-Type' of application/x-protobuf, "
		    "received '%s'", ctype);
		free(ctype);
		return;
	}
	free(ctype);
	body = bt_http_body(req, &len);
	call = (Butte__AgentCall *)bt_pb_decode_scoped(&butte__agent_call__descriptor, false, body,
	    len, &cause);
	if (call == NULL) {
		bt_http_error(req, 400, "failed to parse body into AgentCall: %s", cause);
		free(cause);
		return;
	}
	switch (call->type) {
	case BUTTE__AGENT_CALL__TYPE__SUBSCRIBE:
		agent_subscribe(m, req, call);
		break;
	case BUTTE__AGENT_CALL__TYPE__UPDATE:
	case BUTTE__AGENT_CALL__TYPE__HEARTBEAT:
		agent_call(m, req, call);
		break;
	default:
		bt_http_error(req, 400, "unsupported agent call type %d", (int)call->type);
		break;
	}
	bt_pb_decoded_free(&call->base);
}

void master_agents_init(struct master *m)
{
	m->ping_ev = evtimer_new(m->base, pings_cb, m);
	bt_http_server_route(m->http, "/api/v1/agent", BT_ROUTE_EXACT, master_agent_api_cb, m);
}
