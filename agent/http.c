/*
 * http.c -- the agent's read-only HTTP endpoints.
 *
 * /health (empty 200), /version, /flags, /state in the shape of Mesos's
 * agent /state (also served as /state.json and /slave(1)/state for Mesos
 * tooling) and /monitor/statistics with each running task's CPU time and
 * resident memory from /proc. The sandbox file endpoints live in files.c.
 * Every handler builds its answer from the agent's in-memory state; none
 * blocks.
 */
#include "agent.h"
#include "http_server.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *resources_flat_pb(Mesos__V1__Resource **pb, size_t n)
{
	struct bt_resources r;
	char *cause = NULL;
	json_t *j;

	bt_resources_init(&r);
	if (bt_resources_from_pb(&r, pb, n, &cause) != 0) {
		log_debug("unable to read task resources: %s", cause);
		free(cause);
	}
	j = bt_resources_flat_json(&r);
	bt_resources_release(&r);
	return j;
}

static json_t *status_json(const Mesos__V1__TaskStatus *st)
{
	json_t *j = json_object();

	json_object_set_new(j, "state", json_string(bt_task_state_name(st->state)));
	json_object_set_new(j, "timestamp", json_real(st->timestamp));
	if (st->message != NULL)
		json_object_set_new(j, "message", json_string(st->message));
	if (st->has_healthy)
		json_object_set_new(j, "healthy", json_boolean(st->healthy));
	return j;
}

json_t *agent_task_json(const struct agent_task *t)
{
	const struct agent *a = t->agent;
	json_t *j = json_object(), *st = json_array();
	size_t i;

	json_object_set_new(j, "id", json_string(t->task_id));
	json_object_set_new(j, "name", json_string(t->info->name != NULL ? t->info->name : ""));
	json_object_set_new(j, "framework_id", json_string(t->framework_id));
	json_object_set_new(j, "executor_id", json_string(t->task_id));
	json_object_set_new(j, "slave_id", json_string(a->agent_id != NULL ? a->agent_id : ""));
	json_object_set_new(j, "state", json_string(bt_task_state_name(t->state)));
	json_object_set_new(j, "resources",
	    resources_flat_pb(t->info->resources, t->info->n_resources));
	for (i = 0; i < t->nstatuses; i++)
		json_array_append_new(st, status_json(t->statuses[i]));
	json_object_set_new(j, "statuses", st);
	if (t->info->labels != NULL) {
		json_t *lj = bt_pbjson_from_message(&t->info->labels->base);
		json_t *arr = json_object_get(lj, "labels");
		json_object_set_new(j, "labels", arr != NULL ? json_incref(arr) : json_array());
		json_decref(lj);
	}
	if (t->info->discovery != NULL)
		json_object_set_new(j, "discovery", bt_pbjson_from_message(&t->info->discovery->base));
	if (t->info->container != NULL)
		json_object_set_new(j, "container", bt_pbjson_from_message(&t->info->container->base));
	return j;
}

json_t *agent_executor_json(const struct agent_task *t)
{
	json_t *e = json_object(), *tasks = json_array(), *done = json_array();

	json_object_set_new(e, "id", json_string(t->task_id));
	json_object_set_new(e, "name", json_string(t->task_id));
	json_object_set_new(e, "source", json_string(t->task_id));
	json_object_set_new(e, "container", json_string(t->container_id));
	json_object_set_new(e, "directory", json_string(t->sandbox));
	json_object_set_new(e, "resources",
	    resources_flat_pb(t->info->resources, t->info->n_resources));
	if (t->supervisor_pid > 0)
		json_object_set_new(e, "pid", json_integer(t->task_pid));
	json_array_append_new(bt_task_state_terminal(t->state) ? done : tasks, agent_task_json(t));
	json_object_set_new(e, "tasks", tasks);
	json_object_set_new(e, "queued_tasks", json_array());
	json_object_set_new(e, "completed_tasks", done);
	return e;
}

json_t *agent_framework_json(const struct agent_task *t)
{
	const Mesos__V1__FrameworkInfo *fw = t->framework;
	json_t *f = json_object();

	json_object_set_new(f, "id", json_string(t->framework_id));
	json_object_set_new(f, "name", json_string(fw != NULL && fw->name ? fw->name : ""));
	json_object_set_new(f, "user", json_string(fw != NULL && fw->user ? fw->user : ""));
	json_object_set_new(f, "hostname",
	    json_string(fw != NULL && fw->hostname ? fw->hostname : ""));
	json_object_set_new(f, "role",
	    json_string(fw != NULL && fw->n_roles > 0 ? fw->roles[0] : "*"));
	json_object_set_new(f, "checkpoint", json_boolean(fw != NULL && fw->checkpoint));
	json_object_set_new(f, "failover_timeout",
	    json_real(fw != NULL ? fw->failover_timeout : 0));
	json_object_set_new(f, "executors", json_array());
	json_object_set_new(f, "completed_executors", json_array());
	return f;
}

static json_t *frameworks_json(const struct agent *a)
{
	json_t *by_id = json_object(), *out = json_array(), *f;
	const struct agent_task *t;
	const char *key;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		f = json_object_get(by_id, t->framework_id);
		if (f == NULL) {
			f = agent_framework_json(t);
			json_object_set_new(by_id, t->framework_id, f);
		}
		json_array_append_new(json_object_get(f, bt_task_state_terminal(t->state) ?
		    "completed_executors" : "executors"), agent_executor_json(t));
	}
	json_object_foreach(by_id, key, f)
		json_array_append(out, f);
	json_decref(by_id);
	return out;
}

static json_t *framework_in(json_t *list, const char *id)
{
	size_t i;
	json_t *f;

	json_array_foreach(list, i, f) {
		if (strcmp(json_string_value(json_object_get(f, "id")), id) == 0)
			return f;
	}
	return NULL;
}

/*
 * Forgotten tasks: {"framework": {...}, "executor": {...}} entries, shown under
 * their framework's completed_executors, or under completed_frameworks when
 * the agent runs nothing more for that framework.
 */
static void add_completed(const struct agent *a, json_t *frameworks, json_t *completed_fw)
{
	size_t i;
	json_t *c;

	json_array_foreach(a->completed, i, c) {
		json_t *fw = json_object_get(c, "framework");
		const char *id = json_string_value(json_object_get(fw, "id"));
		json_t *f = framework_in(frameworks, id);

		if (f == NULL && (f = framework_in(completed_fw, id)) == NULL) {
			f = json_deep_copy(fw);
			json_array_append_new(completed_fw, f);
		}
		json_array_append(json_object_get(f, "completed_executors"),
		    json_object_get(c, "executor"));
	}
}

static json_t *state_json(struct agent *a)
{
	json_t *j = json_object();
	const char *mh = agent_link_master_hostname(a->link);
	json_t *completed_fw = json_array(), *frameworks = frameworks_json(a);

	json_object_set_new(j, "version", json_string(AGENT_VERSION));
	json_object_set_new(j, "build_date", json_string(__DATE__));
	json_object_set_new(j, "build_time", json_real(0));
	json_object_set_new(j, "build_user", json_string(""));
	json_object_set_new(j, "start_time", json_real(a->start_time));
	json_object_set_new(j, "id", json_string(a->agent_id != NULL ? a->agent_id : ""));
	json_object_set_new(j, "pid", json_pack("s+", "slave(1)@", a->endpoint));
	json_object_set_new(j, "hostname", json_string(a->hostname));
	json_object_set_new(j, "port", json_integer(a->port));
	json_object_set_new(j, "subscribed", json_boolean(agent_link_subscribed(a->link)));
	if (mh != NULL)
		json_object_set_new(j, "master_hostname", json_string(mh));
	json_object_set_new(j, "resources", bt_resources_flat_json(&a->resources));
	json_object_set_new(j, "unreserved_resources", bt_resources_flat_json(&a->resources));
	json_object_set_new(j, "reserved_resources", json_object());
	json_object_set_new(j, "attributes", bt_attributes_flat_json(&a->attributes));
	json_object_set_new(j, "flags", bt_flags_json(a->flag_table));
	json_object_set_new(j, "frameworks", frameworks);
	add_completed(a, frameworks, completed_fw);
	json_object_set_new(j, "completed_frameworks", completed_fw);
	return j;
}

static void state_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_reply_json(req, 200, state_json(arg));
}

static void health_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_reply(req, 200, "text/plain", NULL, 0);
}

static void version_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_reply_json(req, 200, json_pack("{s:s, s:s, s:f, s:s}", "version", AGENT_VERSION,
	    "build_date", __DATE__, "build_time", 0.0, "build_user", ""));
}

static void flags_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct agent *a = arg;

	bt_http_reply_json(req, 200, json_pack("{s:o}", "flags", bt_flags_json(a->flag_table)));
}

/* utime, stime (seconds) and rss (bytes) of one process */
static int proc_usage(pid_t pid, double *utime, double *stime, double *rss)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, stt = 0;
	long pages = 0, tck = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* after ')': state(3) ... utime(14) stime(15) ... rss(24) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
	    "%*d %*d %*u %*u %ld", &ut, &stt, &pages) != 3)
		return -1;
	if (tck <= 0)
		tck = 100;
	*utime = (double)ut / (double)tck;
	*stime = (double)stt / (double)tck;
	*rss = (double)pages * (double)sysconf(_SC_PAGESIZE);
	return 0;
}

static json_t *task_statistics(const struct agent_task *t)
{
	double ut = 0, st = 0, rss = 0;
	json_t *s = json_object(), *e = json_object();
	size_t i;
	double cpus = 0, mem = 0;

	for (i = 0; i < t->info->n_resources; i++) {
		const Mesos__V1__Resource *r = t->info->resources[i];
		if (r->scalar == NULL || r->name == NULL)
			continue;
		if (strcmp(r->name, "cpus") == 0)
			cpus += r->scalar->value;
		else if (strcmp(r->name, "mem") == 0)
			mem += r->scalar->value;
	}
	if (t->task_pid > 0)
		proc_usage(t->task_pid, &ut, &st, &rss);
	json_object_set_new(s, "timestamp", json_real(bt_now()));
	json_object_set_new(s, "cpus_limit", json_real(cpus));
	json_object_set_new(s, "mem_limit_bytes", json_integer((json_int_t)(mem * 1024 * 1024)));
	json_object_set_new(s, "mem_rss_bytes", json_integer((json_int_t)rss));
	json_object_set_new(s, "cpus_user_time_secs", json_real(ut));
	json_object_set_new(s, "cpus_system_time_secs", json_real(st));
	json_object_set_new(e, "executor_id", json_string(t->task_id));
	json_object_set_new(e, "executor_name", json_string(t->task_id));
	json_object_set_new(e, "framework_id", json_string(t->framework_id));
	json_object_set_new(e, "source", json_string(t->task_id));
	json_object_set_new(e, "statistics", s);
	return e;
}

static void statistics_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct agent *a = arg;
	const struct agent_task *t;
	json_t *out = json_array();

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (!t->ended && t->supervisor_pid > 0)
			json_array_append_new(out, task_statistics(t));
	}
	bt_http_reply_json(req, 200, out);
}

int agent_http_init(struct agent *a, char **cause)
{
	static const char *const state_paths[] = {
		"/state", "/state.json", "/slave(1)/state", "/slave(1)/state.json",
	};
	size_t i;

	a->http = bt_http_server_new(a->base, a->ip, a->port, cause);
	if (a->http == NULL)
		return -1;
	for (i = 0; i < sizeof state_paths / sizeof state_paths[0]; i++)
		bt_http_server_route(a->http, state_paths[i], BT_ROUTE_EXACT, state_cb, a);
	bt_http_server_route(a->http, "/health", BT_ROUTE_EXACT, health_cb, a);
	bt_http_server_route(a->http, "/slave(1)/health", BT_ROUTE_EXACT, health_cb, a);
	bt_http_server_route(a->http, "/version", BT_ROUTE_EXACT, version_cb, a);
	bt_http_server_route(a->http, "/flags", BT_ROUTE_EXACT, flags_cb, a);
	bt_http_server_route(a->http, "/slave(1)/flags", BT_ROUTE_EXACT, flags_cb, a);
	bt_http_server_route(a->http, "/monitor/statistics", BT_ROUTE_EXACT, statistics_cb, a);
	bt_http_server_route(a->http, "/monitor/statistics.json", BT_ROUTE_EXACT, statistics_cb, a);
	agent_files_routes(a);
	return 0;
}
