/*
 * api_json.c -- the JSON shapes relay answers with: AppInfo, Task,
 * Deployment, /v2/info, /v2/queue and /metrics.
 *
 * Shapes follow Marathon 1.10 and keep to the keys the python marathon
 * client declares (its models reject any other key): no checkResult in
 * tasks, no role in queue items, info's *_config members always objects.
 */
#include "relay.h"

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *iso(double t)
{
	char buf[32];

	bt_time_iso8601(t, buf);
	return json_string(buf);
}

static json_t *service_ports(struct relay *r, const char *app_id)
{
	struct relay_app *app = relay_app_find(r, app_id);

	return app ? relay_container_service_ports(app->def) : json_array();
}

json_t *relay_json_task(struct relay *r, const struct relay_task *t, bool with_service_ports)
{
	json_t *ports = json_array(), *j, *hc = relay_health_results(t);
	const char *state = relay_task_state_name(t->state);
	size_t i;

	if (t->goal == RELAY_GOAL_STOPPED && !relay_task_terminal_state(t->state))
		state = "TASK_KILLING";
	for (i = 0; i < t->nports; i++)
		json_array_append_new(ports, json_integer((json_int_t)t->ports[i]));
	j = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:o, s:s, s:s, s:o, s:s, s:o, s:[]}",
	    "id", t->id, "appId", t->app_id, "host", t->host ? t->host : "",
	    "ipAddresses", "ipAddress", t->ip ? t->ip : t->host ? t->host : "", "protocol", "IPv4",
	    "ports", ports, "slaveId", t->agent_id ? t->agent_id : "", "state", state,
	    "stagedAt", iso(t->staged_at), "version", t->version ? t->version : "",
	    "healthCheckResults", hc, "localVolumes");
	if (t->started_at > 0)
		json_object_set_new(j, "startedAt", iso(t->started_at));
	if (with_service_ports)
		json_object_set_new(j, "servicePorts", service_ports(r, t->app_id));
	return j;
}

/* taskStats: counts and life time of the tasks in one category, or NULL without tasks */
struct stats {
	int staged, running, healthy, unhealthy;
	double *life;                   /* seconds since started, of running tasks */
	size_t n, nlife;
};

static void stats_add(struct stats *s, const struct relay_task *t, bool checks, double now)
{
	s->n++;
	if (t->state == MESOS__V1__TASK_STATE__TASK_RUNNING) {
		s->running++;
		if (t->started_at > 0)
			s->life[s->nlife++] = now - t->started_at;
	} else if (t->state == MESOS__V1__TASK_STATE__TASK_STAGING ||
	    t->state == MESOS__V1__TASK_STATE__TASK_STARTING) {
		s->staged++;
	}
	if (checks && t->healthy_known)
		(*(t->healthy ? &s->healthy : &s->unhealthy))++;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void stats_put(json_t *out, const char *key, struct stats *s)
{
	json_t *st;
	double sum = 0, median;
	size_t i;

	if (s->n > 0) {
		st = json_pack("{s:{s:i, s:i, s:i, s:i}}", "counts", "staged", s->staged,
		    "running", s->running, "healthy", s->healthy, "unhealthy", s->unhealthy);
		if (s->nlife > 0) {
			qsort(s->life, s->nlife, sizeof *s->life, dbl_cmp);
			for (i = 0; i < s->nlife; i++)
				sum += s->life[i];
			median = s->nlife % 2 ? s->life[s->nlife / 2] :
			    (s->life[s->nlife / 2 - 1] + s->life[s->nlife / 2]) / 2;
			json_object_set_new(st, "lifeTime", json_pack("{s:f, s:f}", "averageSeconds",
			    sum / (double)s->nlife, "medianSeconds", median));
		}
		json_object_set_new(out, key, json_pack("{s:o}", "stats", st));
	}
	free(s->life);
}

/*
 * Marathon's taskStats: the app's live tasks as a whole, those started
 * since the last scaling, those of the current config and those of an
 * older one; a category without tasks is left out.
 */
static json_t *task_stats(struct relay *r, const struct relay_app *app)
{
	struct relay_group *g = relay_group_find(r, app->id);
	size_t cap = g != NULL ? g->n + 1 : 1;
	struct stats total = { 0 }, scaled = { 0 }, latest = { 0 }, outdated = { 0 }, *s;
	const char *scaling = bt_json_string(json_object_get(app->def, "versionInfo"),
	    "lastScalingAt");
	bool checks = json_array_size(json_object_get(app->def, "healthChecks")) > 0;
	double now = bt_now(), since = 0;
	const struct relay_task *t;
	json_t *out = json_object();

	if (scaling != NULL && bt_time_parse_iso8601(scaling, &since) != 0)
		since = 0;
	total.life = xcalloc(cap, sizeof *total.life);
	scaled.life = xcalloc(cap, sizeof *scaled.life);
	latest.life = xcalloc(cap, sizeof *latest.life);
	outdated.life = xcalloc(cap, sizeof *outdated.life);
	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (relay_task_terminal_state(t->state))
			continue;
		stats_add(&total, t, checks, now);
		if (t->staged_at >= since)
			stats_add(&scaled, t, checks, now);
		s = t->config_version != NULL && strcmp(t->config_version, app->config_version) == 0 ?
		    &latest : &outdated;
		stats_add(s, t, checks, now);
	}
	stats_put(out, "startedAfterLastScaling", &scaled);
	stats_put(out, "withLatestConfig", &latest);
	stats_put(out, "withOutdatedConfig", &outdated);
	stats_put(out, "totalSummary", &total);
	return out;
}

json_t *relay_json_app(struct relay *r, const struct relay_app *app, unsigned embed)
{
	/* a shallow copy: only top-level members are added, def stays as it is */
	json_t *j = json_copy(app->def), *deps, *list;
	struct relay_deployment *d;
	struct relay_task *t;
	int staged, running, healthy, unhealthy;

	if (embed & RELAY_EMBED_COUNTS) {
		relay_app_counts(r, app, &staged, &running, &healthy, &unhealthy);
		json_object_set_new(j, "tasksStaged", json_integer(staged));
		json_object_set_new(j, "tasksRunning", json_integer(running));
		json_object_set_new(j, "tasksHealthy", json_integer(healthy));
		json_object_set_new(j, "tasksUnhealthy", json_integer(unhealthy));
	}
	if (embed & (RELAY_EMBED_DEPLOYMENTS | RELAY_EMBED_TASKS)) {
		deps = json_array();
		TAILQ_FOREACH(d, &r->deployments, entry)
			if (relay_deployment_affects(d, app->id))
				json_array_append_new(deps, json_pack("{s:s}", "id", d->id));
		json_object_set_new(j, "deployments", deps);
	}
	if (embed & RELAY_EMBED_TASKS) {
		list = json_array();
		RELAY_APP_TASKS_FOREACH(t, r, app->id)
			json_array_append_new(list, relay_json_task(r, t, true));
		json_object_set_new(j, "tasks", list);
	}
	if ((embed & RELAY_EMBED_FAILURE) && app->last_failure != NULL)
		json_object_set(j, "lastTaskFailure", app->last_failure);
	if (embed & RELAY_EMBED_STATS)
		json_object_set_new(j, "taskStats", task_stats(r, app));
	if (embed & RELAY_EMBED_READINESS)
		json_object_set_new(j, "readinessCheckResults", relay_readiness_results(r, app));
	return j;
}

json_t *relay_json_info(struct relay *r)
{
	const struct relay_config *c = &r->cfg;
	char *leader = xasprintf("%s:%d", c->hostname, c->http_port);
	char *webui = xasprintf("http://%s:%d", c->hostname, c->http_port);
	char *master = xasprintf("http://%s", c->master_hostport);
	json_t *mc = json_pack("{s:s, s:I, s:s, s:b, s:b, s:i, s:i, s:s, s:s, s:s, s:s,"
	    " s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:[], s:s?, s:I}",
	    "master", master, "failover_timeout", (json_int_t)c->failover_timeout,
	    "framework_name", c->framework_name, "ha", 0, "checkpoint", 1,
	    "local_port_min", c->local_port_min, "local_port_max", c->local_port_max,
	    "executor", "//cmd", "hostname", c->hostname, "webui_url", webui,
	    "mesos_role", c->mesos_role,
	    "task_launch_timeout", (json_int_t)(c->task_launch_timeout * 1000),
	    "task_reservation_timeout", (json_int_t)20000,
	    "reconciliation_initial_delay", (json_int_t)0,
	    "reconciliation_interval", (json_int_t)(c->reconciliation_interval * 1000),
	    "mesos_user", c->mesos_user,
	    "leader_proxy_connection_timeout_ms", (json_int_t)5000,
	    "leader_proxy_read_timeout_ms", (json_int_t)10000,
	    "features", "mesos_leader_ui_url", NULL,
	    "decline_offer_duration", (json_int_t)(c->decline_offer_duration * 1000));
	json_object_set_new(mc, "task_launch_confirm_timeout",
	    json_integer((json_int_t)(c->task_launch_confirm_timeout * 1000)));
	json_t *info = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s?, s:o, s:{s:s, s:I, s:I, s:I},"
	    " s:{s:i, s:i}}",
	    "name", "marathon", "version", RELAY_VERSION, "buildref", "butte-" RELAY_VERSION,
	    "elected", 1, "leader", leader, "frameworkId", r->framework_id,
	    "marathon_config", mc,
	    "zookeeper_config", "zk", "", "zk_timeout", (json_int_t)10000,
	    "zk_session_timeout", (json_int_t)10000, "zk_max_versions", (json_int_t)50,
	    "http_config", "http_port", c->http_port, "https_port", 8443);

	free(leader);
	free(webui);
	free(master);
	return info;
}

json_t *relay_json_queue(struct relay *r)
{
	json_t *queue = json_array();
	struct relay_app *app;
	double now = bt_now();

	TAILQ_FOREACH(app, &r->apps, entry) {
		int want = relay_app_want(r, app);
		double left = app->launch_not_before > now ? app->launch_not_before - now : 0;
		if (want <= 0)
			continue;
		/* whole seconds, as Marathon's; rounded up so that 0 means overdue */
		json_array_append_new(queue, json_pack("{s:o, s:i, s:{s:I, s:b}, s:o, s:o}",
		    "app", relay_json_app(r, app, RELAY_EMBED_COUNTS | RELAY_EMBED_DEPLOYMENTS), "count", want,
		    "delay", "timeLeftSeconds", (json_int_t)ceil(left), "overdue", left == 0,
		    "since", iso(app->since),
		    "processedOffersSummary", relay_offer_stats_json(app)));
	}
	return json_pack("{s:o}", "queue", queue);
}

json_t *relay_json_metrics(struct relay *r)
{
	struct relay_app *app;
	struct relay_task *t;
	json_int_t napps = 0, ntasks = 0;

	TAILQ_FOREACH(app, &r->apps, entry)
		napps++;
	TAILQ_FOREACH(t, &r->tasks, entry)
		ntasks++;
	return json_pack("{s:s, s:{s:{s:I}, s:{s:I}, s:{s:I}, s:{s:I}},"
	    " s:{s:{s:I}, s:{s:I}, s:{s:f}, s:{s:i}, s:{s:i}, s:{s:I}}, s:{}, s:{}, s:{}}",
	    "version", "4.0.0",
	    "counters",
	    "marathon.mesos.offers.incoming.counter", "count", (json_int_t)r->offers_seen,
	    "marathon.mesos.offers.declined.counter", "count", (json_int_t)r->offers_declined,
	    "marathon.tasks.launched.counter", "count", (json_int_t)r->tasks_launched,
	    "marathon.mesos.task-updates.counter", "count", (json_int_t)r->updates_seen,
	    "gauges",
	    "marathon.apps.active.gauge", "value", napps,
	    "marathon.instances.running.gauge", "value", ntasks,
	    "marathon.uptime.gauge", "value", bt_now() - r->started_at,
	    "marathon.leadership.elected.gauge", "value", r->subscribed ? 1 : 0,
	    "relay.instances.launch-backlog.gauge", "value", relay_launch_backlog(r),
	    "relay.http.requests-waiting.gauge", "value", (json_int_t)relay_admission_waiting(),
	    "histograms", "meters", "timers");
}
