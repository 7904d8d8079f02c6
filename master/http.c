/*
 * http.c -- the master's operator endpoints.
 *
 * /master/state (and the legacy /master/state.json) in the shape of
 * reference §11.2 with flat resources and attributes (§11.3);
 * /master/slaves, /master/frameworks and /master/tasks as its parts;
 * /metrics/snapshot with Mesos's metric names (§12); /health and
 * /master/health (empty 200); /version; /master/redirect (307 to this
 * master, protocol-relative, as a single leading master); /flags and
 * /master/flags. Everything is computed on demand from the tables.
 */
#include "master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flags.h"
#include "http_server.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

static double build_time(void)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (strptime(__DATE__ " " __TIME__, "%b %d %Y %H:%M:%S", &tm) == NULL)
		return 0;
	return (double)mktime(&tm);
}

static void add_version(json_t *j)
{
	json_object_set_new(j, "version", json_string(MASTER_VERSION));
	json_object_set_new(j, "build_date", json_string(__DATE__ " " __TIME__));
	json_object_set_new(j, "build_time", json_real(build_time()));
	json_object_set_new(j, "build_user", json_string("butte"));
}

static void sum_offers(const struct master_offer_list *list, bool by_agent, struct bt_resources *r)
{
	struct master_offer *o;

	if (by_agent) {
		TAILQ_FOREACH(o, list, agent_entry)
			bt_resources_add(r, &o->resources);
	} else {
		TAILQ_FOREACH(o, list, fw_entry)
			bt_resources_add(r, &o->resources);
	}
}

static json_t *offer_json(const struct master_offer *o)
{
	json_t *j = json_object();

	json_object_set_new(j, "id", json_string(o->id));
	json_object_set_new(j, "framework_id", json_string(o->fw->id));
	json_object_set_new(j, "slave_id", json_string(o->agent->id));
	json_object_set_new(j, "resources", bt_resources_flat_json(&o->resources));
	return j;
}

static json_t *agent_json(const struct master_agent *a)
{
	json_t *j = json_object();
	struct bt_resources used, offered, total;
	struct master_task *t;
	char *pid = xasprintf("slave(1)@%s:%d", a->ip != NULL ? a->ip : a->hostname, a->port);
	char *cause = NULL;

	bt_resources_init(&used);
	bt_resources_init(&offered);
	bt_resources_init(&total);
	if (master_agent_total(a, &total, &cause) != 0)
		free(cause);
	TAILQ_FOREACH(t, &a->tasks, agent_entry) {
		if (!t->released)
			bt_resources_add(&used, t->resources);
	}
	sum_offers(&a->offers, true, &offered);
	json_object_set_new(j, "id", json_string(a->id));
	json_object_set_new(j, "hostname", json_string(a->hostname != NULL ? a->hostname : ""));
	json_object_set_new(j, "port", json_integer(a->port));
	json_object_set_new(j, "attributes", bt_attributes_flat_json(&a->attributes));
	json_object_set_new(j, "pid", json_string(pid));
	json_object_set_new(j, "registered_time", json_real(a->registered_time));
	if (a->reregistered_time > 0)
		json_object_set_new(j, "reregistered_time", json_real(a->reregistered_time));
	json_object_set_new(j, "resources", bt_resources_flat_json(&total));
	json_object_set_new(j, "used_resources", bt_resources_flat_json(&used));
	json_object_set_new(j, "offered_resources", bt_resources_flat_json(&offered));
	json_object_set_new(j, "reserved_resources", json_object());
	json_object_set_new(j, "unreserved_resources", bt_resources_flat_json(&total));
	json_object_set_new(j, "active", json_boolean(a->state == AGENT_CONNECTED));
	json_object_set_new(j, "deactivated", json_boolean(a->state != AGENT_CONNECTED));
	json_object_set_new(j, "version", json_string(a->version != NULL ? a->version : ""));
	json_object_set_new(j, "capabilities", json_array());
	bt_resources_release(&used);
	bt_resources_release(&offered);
	bt_resources_release(&total);
	free(pid);
	return j;
}

static json_t *capabilities_json(const Mesos__V1__FrameworkInfo *info)
{
	json_t *caps = json_array();

	for (size_t i = 0; i < info->n_capabilities; i++) {
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
		    &mesos__v1__framework_info__capability__type__descriptor,
		    info->capabilities[i]->type);
		if (v != NULL)
			json_array_append_new(caps, json_string(v->name));
	}
	return caps;
}

static void framework_tasks_json(const struct master_framework *fw, json_t *j,
    struct bt_resources *used)
{
	json_t *tasks = json_array(), *unreachable = json_array(), *completed = json_array();
	struct master_task *t;
	size_t n;
	void **v = bt_map_values(&fw->tasks, &n);

	for (size_t i = 0; i < n; i++) {
		t = v[i];
		json_array_append_new(t->unreachable ? unreachable : tasks, master_task_json(t));
		if (!t->released)
			bt_resources_add(used, t->resources);
	}
	free(v);
	TAILQ_FOREACH(t, &fw->completed, completed_entry)
		json_array_append_new(completed, master_task_json(t));
	json_object_set_new(j, "tasks", tasks);
	json_object_set_new(j, "unreachable_tasks", unreachable);
	json_object_set_new(j, "completed_tasks", completed);
}

static json_t *framework_json(const struct master_framework *fw)
{
	const Mesos__V1__FrameworkInfo *info = fw->info;
	json_t *j = json_object(), *offers = json_array(), *roles = json_array();
	struct bt_resources used, offered;
	struct master_offer *o;

	bt_resources_init(&used);
	bt_resources_init(&offered);
	json_object_set_new(j, "id", json_string(fw->id));
	json_object_set_new(j, "name", json_string(info->name != NULL ? info->name : ""));
	json_object_set_new(j, "pid", json_string(""));
	json_object_set_new(j, "user", json_string(info->user != NULL ? info->user : ""));
	json_object_set_new(j, "hostname", json_string(info->hostname ? info->hostname : ""));
	json_object_set_new(j, "webui_url", json_string(info->webui_url ? info->webui_url : ""));
	json_object_set_new(j, "principal", json_string(info->principal ? info->principal : ""));
	json_object_set_new(j, "capabilities", capabilities_json(info));
	json_object_set_new(j, "active", json_boolean(fw->state == FRAMEWORK_CONNECTED));
	json_object_set_new(j, "connected", json_boolean(fw->state == FRAMEWORK_CONNECTED));
	json_object_set_new(j, "recovered", json_boolean(fw->state == FRAMEWORK_RECOVERED));
	json_object_set_new(j, "failover_timeout", json_real(info->has_failover_timeout ?
	    info->failover_timeout : 0));
	json_object_set_new(j, "checkpoint", json_boolean(info->has_checkpoint && info->checkpoint));
	json_object_set_new(j, "registered_time", json_real(fw->registered_time));
	json_object_set_new(j, "reregistered_time", json_real(fw->reregistered_time));
	json_object_set_new(j, "unregistered_time", json_real(fw->unregistered_time));
	json_object_set_new(j, "role", json_string("*"));
	json_array_append_new(roles, json_string("*"));
	json_object_set_new(j, "roles", roles);
	framework_tasks_json(fw, j, &used);
	TAILQ_FOREACH(o, &fw->offers, fw_entry)
		json_array_append_new(offers, offer_json(o));
	sum_offers(&fw->offers, false, &offered);
	json_object_set_new(j, "offers", offers);
	json_object_set_new(j, "executors", json_array());
	json_object_set_new(j, "used_resources", bt_resources_flat_json(&used));
	json_object_set_new(j, "offered_resources", bt_resources_flat_json(&offered));
	json_object_set_new(j, "resources", bt_resources_flat_json(&used));
	bt_resources_release(&used);
	bt_resources_release(&offered);
	return j;
}

static json_t *master_info_json(struct master *m)
{
	Mesos__V1__MasterInfo info = MESOS__V1__MASTER_INFO__INIT;
	Mesos__V1__Address addr = MESOS__V1__ADDRESS__INIT;

	master_info_fill(m, &info, &addr);
	return bt_pbjson_from_message(&info.base);
}

static void add_agents(struct master *m, json_t *j)
{
	json_t *slaves = json_array(), *recovered = json_array();
	size_t n, active = 0, inactive = 0, unreachable = 0;
	void **v = bt_map_values(&m->agents, &n);

	for (size_t i = 0; i < n; i++) {
		struct master_agent *a = v[i];
		Mesos__V1__AgentInfo *info;
		switch (a->state) {
		case AGENT_RECOVERED:
			if ((info = master_agent_info(a)) != NULL) {
				json_array_append_new(recovered, bt_pbjson_from_message(&info->base));
				mesos__v1__agent_info__free_unpacked(info, NULL);
			}
			break;
		case AGENT_UNREACHABLE:
			unreachable++;
			break;
		default:
			if (a->state == AGENT_CONNECTED)
				active++;
			else
				inactive++;
			json_array_append_new(slaves, agent_json(a));
		}
	}
	free(v);
	json_object_set_new(j, "activated_slaves", json_integer((json_int_t)active));
	json_object_set_new(j, "deactivated_slaves", json_integer((json_int_t)inactive));
	json_object_set_new(j, "unreachable_slaves", json_integer((json_int_t)unreachable));
	json_object_set_new(j, "slaves", slaves);
	json_object_set_new(j, "recovered_slaves", recovered);
}

static void add_frameworks(struct master *m, json_t *j)
{
	json_t *fws = json_array(), *completed = json_array();
	size_t n;
	void **v = bt_map_values(&m->frameworks, &n);

	for (size_t i = 0; i < n; i++)
		json_array_append_new(fws, framework_json(v[i]));
	free(v);
	for (size_t i = 0; i < m->ncompleted_frameworks; i++)
		json_array_append_new(completed, framework_json(m->completed_frameworks[i]));
	json_object_set_new(j, "frameworks", fws);
	json_object_set_new(j, "completed_frameworks", completed);
	json_object_set_new(j, "unregistered_frameworks", json_array());
}

static void state_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	struct master *m = arg;
	json_t *j = json_object();

	add_version(j);
	json_object_set_new(j, "start_time", json_real(m->start_time));
	json_object_set_new(j, "elected_time", json_real(m->start_time));
	json_object_set_new(j, "id", json_string(m->id));
	json_object_set_new(j, "pid", json_string(m->pid));
	json_object_set_new(j, "hostname", json_string(m->hostname));
	json_object_set_new(j, "capabilities", json_array());
	json_object_set_new(j, "leader", json_string(m->pid));
	json_object_set_new(j, "leader_info", master_info_json(m));
	if (m->flags.cluster != NULL)
		json_object_set_new(j, "cluster", json_string(m->flags.cluster));
	json_object_set_new(j, "flags", bt_flags_json(m->flag_table));
	add_agents(m, j);
	add_frameworks(m, j);
	json_object_set_new(j, "orphan_tasks", json_array());
	bt_http_reply_json(req, 200, j);
}

static void slaves_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	json_t *j = json_object();

	add_agents(arg, j);
	json_object_del(j, "activated_slaves");
	json_object_del(j, "deactivated_slaves");
	json_object_del(j, "unreachable_slaves");
	bt_http_reply_json(req, 200, j);
}

static void frameworks_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	json_t *j = json_object();

	add_frameworks(arg, j);
	bt_http_reply_json(req, 200, j);
}

/* /master/tasks?limit=&offset=&order=&framework_id=&task_id= */
static void tasks_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	struct master *m = arg;
	const char *fid = bt_http_query(query, "framework_id");
	const char *tid = bt_http_query(query, "task_id");
	const char *s;
	long limit = 100, offset = 0;
	json_t *all = json_array(), *out = json_array(), *j = json_object();
	size_t n, total;
	void **v = bt_map_values(&m->frameworks, &n);

	if ((s = bt_http_query(query, "limit")) != NULL)
		limit = strtol(s, NULL, 10);
	if ((s = bt_http_query(query, "offset")) != NULL)
		offset = strtol(s, NULL, 10);
	for (size_t i = 0; i < n; i++) {
		struct master_framework *fw = v[i];
		json_t *fj;
		if (fid != NULL && strcmp(fid, fw->id) != 0)
			continue;
		fj = framework_json(fw);
		json_array_extend(all, json_object_get(fj, "tasks"));
		json_array_extend(all, json_object_get(fj, "unreachable_tasks"));
		json_array_extend(all, json_object_get(fj, "completed_tasks"));
		json_decref(fj);
	}
	free(v);
	total = json_array_size(all);
	s = bt_http_query(query, "order");
	for (size_t k = 0; k < total; k++) {
		size_t i = (s != NULL && strcmp(s, "asc") == 0) ? k : total - 1 - k;
		json_t *t = json_array_get(all, i);
		if (tid != NULL && strcmp(tid, json_string_value(json_object_get(t, "id"))) != 0)
			continue;
		if (offset > 0) {
			offset--;
			continue;
		}
		if (limit >= 0 && (long)json_array_size(out) >= limit)
			break;
		json_array_append(out, t);
	}
	json_decref(all);
	json_object_set_new(j, "tasks", out);
	bt_http_reply_json(req, 200, j);
}

static void health_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	bt_http_reply(req, 200, NULL, NULL, 0);
}

static void version_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	json_t *j = json_object();

	add_version(j);
	bt_http_reply_json(req, 200, j);
}

static void redirect_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct master *m = arg;
	char *loc = xasprintf("//%s:%d", m->hostname, m->flags.port);

	bt_http_add_header(req, "Location", loc);
	bt_http_reply(req, 307, NULL, NULL, 0);
	free(loc);
}

static void flags_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *query,
    void *arg)
{
	struct master *m = arg;
	json_t *j = json_object();

	json_object_set_new(j, "flags", bt_flags_json(m->flag_table));
	bt_http_reply_json(req, 200, j);
}

static void metrics_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	json_t *j = json_object();

	master_metrics_json(arg, j);
	bt_http_reply_json(req, 200, j);
}

void master_http_routes(struct master *m)
{
	struct bt_http_server *s = m->http;

	bt_http_server_route(s, "/api/v1/scheduler", BT_ROUTE_EXACT, master_scheduler_api_cb, m);
	bt_http_server_route(s, "/master/state", BT_ROUTE_EXACT, state_cb, m);
	bt_http_server_route(s, "/master/state.json", BT_ROUTE_EXACT, state_cb, m);
	bt_http_server_route(s, "/master/slaves", BT_ROUTE_EXACT, slaves_cb, m);
	bt_http_server_route(s, "/master/frameworks", BT_ROUTE_EXACT, frameworks_cb, m);
	bt_http_server_route(s, "/master/tasks", BT_ROUTE_EXACT, tasks_cb, m);
	bt_http_server_route(s, "/metrics/snapshot", BT_ROUTE_EXACT, metrics_cb, m);
	bt_http_server_route(s, "/health", BT_ROUTE_EXACT, health_cb, m);
	bt_http_server_route(s, "/master/health", BT_ROUTE_EXACT, health_cb, m);
	bt_http_server_route(s, "/version", BT_ROUTE_EXACT, version_cb, m);
	bt_http_server_route(s, "/master/redirect", BT_ROUTE_EXACT, redirect_cb, m);
	bt_http_server_route(s, "/flags", BT_ROUTE_EXACT, flags_cb, m);
	bt_http_server_route(s, "/master/flags", BT_ROUTE_EXACT, flags_cb, m);
}
