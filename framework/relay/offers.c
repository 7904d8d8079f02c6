/*
 * offers.c -- matching offers against what the apps are missing, and TaskInfos.
 *
 * For each offer relay adds up the unreserved (or relay-role) cpus, mem,
 * disk and port ranges, then walks the apps that need instances and are
 * not in launch backoff, fitting as many tasks as the offer holds -- but
 * when one OFFERS event brings several offers, an app takes at most its
 * share of what it misses from each (missing / offers left), so its
 * instances spread over the agents and start on all of them at once. Every
 * task is recorded (TASK_STAGING) and persisted before the ACCEPT that
 * carries its LAUNCH goes out (the whole event is one batch: one
 * transaction, and the calls leave after its commit; scheduler.c). The
 * apps' missing counts are kept by tasks.c, so matching an offer costs
 * O(apps + tasks launched); an app that cannot use an offer records why
 * (container.c: counters and a small table, for /v2/queue). Host ports
 * come from the app's port slots (container.c), fixed ones exactly as
 * asked. Offers that launch nothing are declined
 * with --decline_offer_duration; when nothing is missing relay suppresses
 * offers, and tasks.c revives them when a need appears.
 */
#include "relay.h"

#include "ids.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANGES 64

struct avail {
	double cpus, mem, disk;
	char *role;                     /* role the resources are taken from */
	char *alloc_role;               /* allocation_info.role, or NULL */
	struct { uint64_t begin, end; } ranges[MAX_RANGES];
	size_t nranges;
};

static void take_ranges(struct avail *a, const Mesos__V1__Resource *res)
{
	size_t i;

	if (res->ranges == NULL)
		return;
	for (i = 0; i < res->ranges->n_range && a->nranges < MAX_RANGES; i++) {
		a->ranges[a->nranges].begin = res->ranges->range[i]->begin;
		a->ranges[a->nranges].end = res->ranges->range[i]->end;
		a->nranges++;
	}
}

static void offer_avail(struct relay *r, const Mesos__V1__Offer *o, struct avail *a)
{
	size_t i;

	memset(a, 0, sizeof *a);
	for (i = 0; i < o->n_resources; i++) {
		const Mesos__V1__Resource *res = o->resources[i];
		const char *role = relay_resource_role(res);
		double v = res->scalar != NULL ? res->scalar->value : 0;

		if (strcmp(role, "*") != 0 && strcmp(role, r->cfg.mesos_role) != 0)
			continue;
		if (a->role == NULL) {
			a->role = xstrdup(role);
			if (res->allocation_info != NULL && res->allocation_info->role != NULL)
				a->alloc_role = xstrdup(res->allocation_info->role);
		}
		if (strcmp(res->name, "cpus") == 0)
			a->cpus += v;
		else if (strcmp(res->name, "mem") == 0)
			a->mem += v;
		else if (strcmp(res->name, "disk") == 0 && res->disk == NULL)
			a->disk += v;
		else if (strcmp(res->name, "ports") == 0)
			take_ranges(a, res);
	}
	if (a->alloc_role == NULL && o->allocation_info != NULL && o->allocation_info->role != NULL)
		a->alloc_role = xstrdup(o->allocation_info->role);
}

static uint64_t ports_count(const struct avail *a)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < a->nranges; i++)
		n += a->ranges[i].end - a->ranges[i].begin + 1;
	return n;
}

static bool port_take(struct avail *a, uint64_t p)
{
	size_t i;

	for (i = 0; i < a->nranges; i++) {
		if (p < a->ranges[i].begin || p > a->ranges[i].end)
			continue;
		if (a->ranges[i].begin == a->ranges[i].end) {
			memmove(&a->ranges[i], &a->ranges[i + 1], (a->nranges - i - 1) * sizeof a->ranges[0]);
			a->nranges--;
		} else if (p == a->ranges[i].begin) {
			a->ranges[i].begin++;
		} else if (p == a->ranges[i].end) {
			a->ranges[i].end--;
		} else if (a->nranges < MAX_RANGES) {
			memmove(&a->ranges[i + 1], &a->ranges[i], (a->nranges - i) * sizeof a->ranges[0]);
			a->nranges++;
			a->ranges[i].end = p - 1;
			a->ranges[i + 1].begin = p + 1;
		} else {
			return false;
		}
		return true;
	}
	return false;
}

static uint64_t lowest_port(const struct avail *a)
{
	size_t i;
	uint64_t best = 0;

	for (i = 0; i < a->nranges; i++)
		if (best == 0 || a->ranges[i].begin < best)
			best = a->ranges[i].begin;
	return best;
}

/*
 * The host ports for the app's port slots (container.c): a slot asking for
 * a port gets exactly that one, the others the lowest free ones; false when
 * the offer lacks them.
 */
static bool pick_ports(const struct relay_app *app, struct avail *a, uint64_t *out)
{
	struct avail save = *a;
	size_t i;
	int pass;

	if (ports_count(a) < app->nports)
		return false;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < app->nports; i++) {
			uint64_t p = app->host_ports[i];
			if ((pass == 0) != (p != 0))
				continue;
			if (p == 0)
				p = lowest_port(a);
			if (p == 0 || !port_take(a, p)) {
				memcpy(a->ranges, save.ranges, sizeof a->ranges);
				a->nranges = save.nranges;
				return false;
			}
			out[i] = p;
		}
	}
	return true;
}

static bool fits(const struct relay_app *app, const struct avail *a)
{
	return app->cpus <= a->cpus + 1e-9 && app->mem <= a->mem + 1e-9 &&
	    app->disk <= a->disk + 1e-9 && ports_count(a) >= app->nports;
}

static json_t *scalar_res(const char *name, double v, const struct avail *a)
{
	json_t *res = json_pack("{s:s, s:s, s:{s:f}, s:s}", "name", name, "type", "SCALAR",
	    "scalar", "value", v, "role", a->role);
	if (a->alloc_role != NULL)
		json_object_set_new(res, "allocation_info", json_pack("{s:s}", "role", a->alloc_role));
	return res;
}

static json_t *task_resources(const struct relay_app *app, const struct avail *a,
    const uint64_t *ports, size_t nports)
{
	json_t *list = json_array(), *ranges, *res;
	size_t i;

	json_array_append_new(list, scalar_res("cpus", app->cpus, a));
	json_array_append_new(list, scalar_res("mem", app->mem, a));
	if (app->disk > 0)
		json_array_append_new(list, scalar_res("disk", app->disk, a));
	if (nports == 0)
		return list;
	ranges = json_array();
	for (i = 0; i < nports; i++)
		json_array_append_new(ranges, json_pack("{s:I, s:I}", "begin", (json_int_t)ports[i],
		    "end", (json_int_t)ports[i]));
	res = json_pack("{s:s, s:s, s:{s:o}, s:s}", "name", "ports", "type", "RANGES",
	    "ranges", "range", ranges, "role", a->role);
	if (a->alloc_role != NULL)
		json_object_set_new(res, "allocation_info", json_pack("{s:s}", "role", a->alloc_role));
	json_array_append_new(list, res);
	return list;
}

/* "PORT_HTTP" from "http"; non-alphanumerics become '_' */
static char *env_name(const char *prefix, const char *name)
{
	char *s = xasprintf("%s%s", prefix, name), *p;

	for (p = s + strlen(prefix); *p != '\0'; p++)
		*p = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
	return s;
}

static void setenv_j(json_t *env, const char *name, const char *value)
{
	json_object_set_new(env, name, json_string(value));
}

static json_t *environment(const struct relay_app *app, const char *task_id, const char *host,
    const uint64_t *ports, size_t nports)
{
	json_t *env = json_object(), *vars = json_array(), *v, *labels;
	const char *k;
	char buf[64], *keys = xstrdup(""), *tmp, *name;

	setenv_j(env, "HOST", host);
	relay_container_port_env(app, ports, nports, env);
	setenv_j(env, "MARATHON_APP_ID", app->id);
	setenv_j(env, "MARATHON_APP_VERSION", app->version);
	snprintf(buf, sizeof buf, "%g", app->cpus);
	setenv_j(env, "MARATHON_APP_RESOURCE_CPUS", buf);
	snprintf(buf, sizeof buf, "%g", app->mem);
	setenv_j(env, "MARATHON_APP_RESOURCE_MEM", buf);
	snprintf(buf, sizeof buf, "%g", app->disk);
	setenv_j(env, "MARATHON_APP_RESOURCE_DISK", buf);
	setenv_j(env, "MARATHON_APP_RESOURCE_GPUS", "0");
	if (bt_json_string(json_object_get(json_object_get(app->def, "container"), "docker"), "image"))
		setenv_j(env, "MARATHON_APP_DOCKER_IMAGE", bt_json_string(json_object_get(
		    json_object_get(app->def, "container"), "docker"), "image"));
	labels = json_object_get(app->def, "labels");
	json_object_foreach(labels, k, v) {
		name = env_name("MARATHON_APP_LABEL_", k);
		setenv_j(env, name, json_string_value(v));
		free(name);
		tmp = xasprintf("%s%s%s", keys, keys[0] ? " " : "", k);
		free(keys);
		keys = tmp;
	}
	setenv_j(env, "MARATHON_APP_LABELS", keys);
	free(keys);
	setenv_j(env, "MESOS_TASK_ID", task_id);
	json_object_foreach(json_object_get(app->def, "env"), k, v)
		if (json_is_string(v))
			json_object_set(env, k, v);
	json_object_foreach(env, k, v)
		json_array_append_new(vars, json_pack("{s:s, s:s, s:O}", "name", k, "type", "VALUE",
		    "value", v));
	json_decref(env);
	return json_pack("{s:o}", "variables", vars);
}

static json_t *command_info(const struct relay_app *app, json_t *env)
{
	const char *cmd = bt_json_string(app->def, "cmd");
	json_t *args = json_object_get(app->def, "args"), *cmdinfo, *uris = json_array(), *f;
	const char *user = bt_json_string(app->def, "user");
	size_t i;

	if (cmd != NULL)
		cmdinfo = json_pack("{s:b, s:s}", "shell", 1, "value", cmd);
	else if (json_array_size(args) > 0)
		cmdinfo = json_pack("{s:b, s:O, s:O}", "shell", 0, "value", json_array_get(args, 0),
		    "arguments", args);
	else
		cmdinfo = json_pack("{s:b}", "shell", 0);
	json_object_set_new(cmdinfo, "environment", env);
	json_array_foreach(json_object_get(app->def, "fetch"), i, f) {
		json_t *u = json_pack("{s:O, s:O, s:O, s:O}", "value", json_object_get(f, "uri"),
		    "extract", json_object_get(f, "extract"), "executable",
		    json_object_get(f, "executable"), "cache", json_object_get(f, "cache"));
		if (json_object_get(f, "destPath") != NULL)
			json_object_set(u, "output_file", json_object_get(f, "destPath"));
		json_array_append_new(uris, u);
	}
	if (json_array_size(uris) > 0)
		json_object_set_new(cmdinfo, "uris", uris);
	else
		json_decref(uris);
	if (user != NULL)
		json_object_set_new(cmdinfo, "user", json_string(user));
	return cmdinfo;
}

/* "/grp/app" -> "app.grp" (Mesos-DNS naming) */
static char *task_name(const char *id)
{
	char *copy = xstrdup(id), *out = xstrdup(""), *p, *tmp;

	while ((p = strrchr(copy, '/')) != NULL) {
		if (p[1] != '\0') {
			tmp = xasprintf("%s%s%s", out, out[0] ? "." : "", p + 1);
			free(out);
			out = tmp;
		}
		*p = '\0';
	}
	free(copy);
	return out;
}

static json_t *labels_pb(const struct relay_app *app)
{
	json_t *list = json_array(), *v;
	const char *k;

	json_object_foreach(json_object_get(app->def, "labels"), k, v)
		json_array_append_new(list, json_pack("{s:s, s:O}", "key", k, "value", v));
	return json_pack("{s:o}", "labels", list);
}

static bool is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return s != NULL && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/*
 * The agent's own address: its hostname when that is an address (agents
 * started with --ip advertise it as their hostname, e.g. 127.0.0.2 next to
 * an agent on 127.0.0.1), else Offer.url.address.ip -- which a master may
 * take from the agent's connection and so report the loopback address the
 * agent connected from -- else nothing.
 */
char *relay_offer_ip(const Mesos__V1__Offer *o)
{
	const char *ip = NULL;

	if (o->url != NULL && o->url->address != NULL)
		ip = o->url->address->ip;
	if (is_ip(o->hostname))
		ip = o->hostname;
	if (ip == NULL || !is_ip(ip) || strcmp(ip, "0.0.0.0") == 0)
		return NULL;
	return xstrdup(ip);
}

static struct relay_task *new_task(struct relay *r, struct relay_app *app,
    const Mesos__V1__Offer *o, const uint64_t *ports)
{
	struct relay_task *t = xcalloc(1, sizeof *t);
	char *safe = relay_app_safe_id(app->id), *uuid;

	if (app->nrelaunch > 0) {
		t->instance_id = app->relaunch[0].instance_id;
		t->incarnation = app->relaunch[0].incarnation;
		memmove(&app->relaunch[0], &app->relaunch[1], --app->nrelaunch * sizeof app->relaunch[0]);
	} else {
		uuid = bt_uuid_new();
		t->instance_id = xasprintf("%s.instance-%s", safe, uuid);
		t->incarnation = 1;
		free(uuid);
	}
	t->id = xasprintf("%s._app.%d", t->instance_id, t->incarnation);
	t->app_id = xstrdup(app->id);
	t->agent_id = xstrdup(o->agent_id->value);
	t->host = xstrdup(o->hostname);
	t->ip = relay_offer_ip(o);
	t->state = MESOS__V1__TASK_STATE__TASK_STAGING;
	t->staged_at = bt_now();
	t->version = xstrdup(app->version);
	t->config_version = xstrdup(app->config_version);
	t->nports = app->nports;
	t->ports = xcalloc(app->nports + 1, sizeof *t->ports);
	memcpy(t->ports, ports, app->nports * sizeof *ports);
	t->goal = RELAY_GOAL_RUNNING;
	t->last_update = bt_monotonic();
	free(safe);
	return t;
}

static json_t *task_info(struct relay_app *app, struct relay_task *t, const struct avail *a)
{
	char *name = task_name(app->id);
	json_t *ti = json_pack("{s:s, s:{s:s}, s:{s:s}, s:o, s:o, s:o}",
	    "name", name, "task_id", "value", t->id, "agent_id", "value", t->agent_id,
	    "resources", task_resources(app, a, t->ports, t->nports),
	    "command", command_info(app, environment(app, t->id, t->host, t->ports, t->nports)),
	    "labels", labels_pb(app));
	json_t *container = relay_container_info(app, t->ports, t->nports);
	json_t *grace = json_object_get(app->def, "taskKillGracePeriodSeconds");
	json_t *hc = relay_health_check(app, t->ports, t->nports);

	if (container != NULL)
		json_object_set_new(ti, "container", container);
	relay_container_command(app, json_object_get(ti, "command"));
	if (hc != NULL)
		json_object_set_new(ti, "health_check", hc);
	if (grace != NULL)
		json_object_set_new(ti, "kill_policy", json_pack("{s:{s:I}}", "grace_period",
		    "nanoseconds", (json_int_t)json_integer_value(grace) * 1000000000LL));
	free(name);
	return ti;
}

/* every fixed host port is offered and there are enough ports in all (nothing taken) */
static bool ports_fit(const struct relay_app *app, const struct avail *a)
{
	size_t i, j;

	for (i = 0; i < app->nports; i++) {
		uint64_t p = app->host_ports[i];
		for (j = 0; p != 0 && j < a->nranges; j++)
			if (p >= a->ranges[j].begin && p <= a->ranges[j].end)
				break;
		if (p != 0 && j == a->nranges)
			return false;
	}
	return ports_count(a) >= app->nports;
}

/* why app cannot use what is left of the offer; cheap: no copies, no allocation */
static unsigned reject_reasons(struct relay *r, const struct relay_app *app,
    const Mesos__V1__Offer *o, const struct avail *a)
{
	unsigned why = 0;

	if (a->role == NULL && o->n_resources > 0)
		why |= 1u << RELAY_REJECT_ROLE;
	if ((json_array_size(json_object_get(app->def, "constraints")) > 0 ||
	    relay_placement_has_image_arch(app)) && !relay_placement_ok(r, app, o))
		why |= 1u << RELAY_REJECT_CONSTRAINT;
	if (app->cpus > a->cpus + 1e-9)
		why |= 1u << RELAY_REJECT_CPUS;
	if (app->mem > a->mem + 1e-9)
		why |= 1u << RELAY_REJECT_MEM;
	if (app->disk > a->disk + 1e-9)
		why |= 1u << RELAY_REJECT_DISK;
	if (app->nports > 256 || !ports_fit(app, a))
		why |= 1u << RELAY_REJECT_PORTS;
	return why;
}

/* fit tasks of every app into the offer; the LAUNCH task_infos, or NULL */
/* the tasks this offer launches; `left` offers of this event remain, this one included */
static json_t *match_offer(struct relay *r, const Mesos__V1__Offer *o, struct avail *a,
    size_t left)
{
	json_t *infos = json_array();
	struct relay_app *app;
	double now = bt_now();
	uint64_t ports[256];

	TAILQ_FOREACH(app, &r->apps, entry) {
		int want = relay_app_want(r, app), launched = 0;
		if (want <= 0 && app->offer_stats != NULL)
			relay_offer_stats_reset(app);           /* the launch attempt is over */
		if (want <= 0 || now < app->launch_not_before)
			continue;
		want = (int)(((size_t)want + left - 1) / left);
		while (want > 0 && app->nports <= 256 && fits(app, a) && relay_placement_ok(r, app, o) &&
		    pick_ports(app, a, ports)) {
			struct relay_task *t = new_task(r, app, o, ports);
			a->cpus -= app->cpus;
			a->mem -= app->mem;
			a->disk -= app->disk;
			relay_task_insert(r, t);
			relay_state_save_task(r, t);
			json_array_append_new(infos, task_info(app, t, a));
			log_info("launching task '%s' of app '%s' on agent '%s' (%s)", t->id, app->id,
			    t->agent_id, t->host);
			r->tasks_launched++;
			want--;
			launched++;
		}
		if (launched > 0)
			relay_offer_stats_used(app, now);
		else
			relay_offer_stats_unused(app, o, reject_reasons(r, app, o, a), now);
	}
	if (json_array_size(infos) == 0) {
		json_decref(infos);
		return NULL;
	}
	return infos;
}

void relay_offers(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers)
{
	json_t *declines = json_array();
	struct avail a;
	size_t i;

	for (i = 0; i < offers->n_offers; i++) {
		const Mesos__V1__Offer *o = offers->offers[i];
		json_t *infos;

		r->offers_seen++;
		relay_placement_note_offer(o);
		offer_avail(r, o, &a);
		infos = match_offer(r, o, &a, offers->n_offers - i);
		if (infos != NULL) {
			relay_call(r, json_pack("{s:s, s:{s:[{s:s}], s:[{s:s, s:{s:o}}], s:{s:f}}}",
			    "type", "ACCEPT", "accept", "offer_ids", "value", o->id->value,
			    "operations", "type", "LAUNCH", "launch", "task_infos", infos,
			    "filters", "refuse_seconds", 1.0));
		} else {
			json_array_append_new(declines, json_pack("{s:s}", "value", o->id->value));
			r->offers_declined++;
		}
		free(a.role);
		free(a.alloc_role);
	}
	if (json_array_size(declines) > 0)
		relay_call(r, json_pack("{s:s, s:{s:o, s:{s:f}}}", "type", "DECLINE", "decline",
		    "offer_ids", declines, "filters", "refuse_seconds", relay_decline_duration(r)));
	else
		json_decref(declines);
	relay_converge(r);
}
