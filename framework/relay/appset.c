/*
 * appset.c -- the apps relay holds in memory, and service port assignment.
 *
 * Each struct relay_app keeps its normalised definition plus the values
 * the keep-N loop reads often (resources, instances, backoff settings),
 * cached from the definition whenever it changes. Service ports come from
 * [--local_port_min, --local_port_max]: a port definition with port 0 (or
 * a port mapping with servicePort 0) reuses the port the app had at that
 * index, otherwise gets the lowest port no other app uses (reference §14);
 * an explicit servicePort of a port mapping must not be another app's.
 */
#include "relay.h"

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

/* the service port slots of def: its port definitions, or its port mappings */
static json_t *port_slots(const json_t *def, const char **key)
{
	bool host = relay_container_host_network(def);

	*key = host ? "port" : "servicePort";
	return host ? json_object_get(def, "portDefinitions") :
	    json_object_get(json_object_get(def, "container"), "portMappings");
}

/* the values of def's service port slots (0 where none is set); caller frees */
static json_int_t *slot_ports(const json_t *def, size_t *n)
{
	const char *key;
	json_t *slots = port_slots(def, &key), *pd;
	json_int_t *out = xcalloc(json_array_size(slots) + 1, sizeof *out);
	size_t i;

	json_array_foreach(slots, i, pd)
		out[i] = json_integer_value(json_object_get(pd, key));
	*n = json_array_size(slots);
	return out;
}

static void mark(const json_int_t *ports, size_t n, uint8_t *used)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ports[i] > 0 && ports[i] < 65536)
			used[ports[i]] = 1;
}

static void mark_ports(const json_t *def, uint8_t *used)
{
	size_t n;
	json_int_t *ports = slot_ports(def, &n);

	mark(ports, n, used);
	free(ports);
}

/* an explicit servicePort of a port mapping another app already has */
static int port_conflict(struct relay *r, const json_t *def, char **cause)
{
	const char *id = bt_json_string(def, "id"), *key;
	struct relay_app *app, *self;
	json_t *pm;
	size_t i, j;

	if (relay_container_host_network(def))
		return 0;
	self = relay_app_find(r, id);
	json_array_foreach(port_slots(def, &key), i, pm) {
		json_int_t p = json_integer_value(json_object_get(pm, key));
		if (p == 0)
			continue;
		TAILQ_FOREACH(app, &r->apps, entry) {
			if (app->host_network || app == self)
				continue;
			for (j = 0; j < app->nservice_ports; j++)
				if (app->service_ports[j] == p) {
					*cause = xasprintf("Requested service port %lld conflicts with a "
					    "service port in app %s", (long long)p, app->id);
					return -1;
				}
		}
	}
	return 0;
}

int relay_app_assign_ports(struct relay *r, json_t *def, const json_t *old, char **cause)
{
	return relay_app_assign_ports_with(r, def, old, NULL, cause);
}

int relay_app_assign_ports_with(struct relay *r, json_t *def, const json_t *old,
    const json_t *pending, char **cause)
{
	json_t *other;
	uint8_t *used = xcalloc(65536, 1);
	const char *id = bt_json_string(def, "id"), *key, *okey;
	json_t *pd, *slots = port_slots(def, &key), *old_slots = old ? port_slots(old, &okey) : NULL;
	struct relay_app *app, *self;
	size_t i;
	int rc = -1, next = r->cfg.local_port_min;

	if (port_conflict(r, def, cause) != 0)
		goto out;
	self = relay_app_find(r, id);
	TAILQ_FOREACH(app, &r->apps, entry)
		if (app != self)
			mark(app->service_ports, app->nservice_ports, used);
	json_array_foreach(pending, i, other)
		if (strcmp(bt_json_string(other, "id"), id) != 0)
			mark_ports(other, used);
	mark_ports(def, used);
	json_array_foreach(slots, i, pd) {
		json_int_t p = json_integer_value(json_object_get(pd, key));
		json_int_t reuse = old_slots ? json_integer_value(json_object_get(
		    json_array_get(old_slots, i), okey)) : 0;
		if (p != 0)
			continue;
		if (reuse >= r->cfg.local_port_min && reuse <= r->cfg.local_port_max && !used[reuse]) {
			p = reuse;
		} else {
			while (next <= r->cfg.local_port_max && used[next])
				next++;
			if (next > r->cfg.local_port_max) {
				*cause = xasprintf("All ports in the range [%d-%d) are already in use",
				    r->cfg.local_port_min, r->cfg.local_port_max);
				goto out;
			}
			p = next;
		}
		used[p] = 1;
		json_object_set_new(pd, key, json_integer(p));
	}
	rc = 0;
out:
	free(used);
	return rc;
}

struct relay_app *relay_app_find(struct relay *r, const char *id)
{
	return bt_map_get(&r->app_index, id);
}

static void cache_def(struct relay_app *app)
{
	const json_t *d = app->def;

	app->version = bt_json_string(d, "version");
	app->config_version = bt_json_string(json_object_get(d, "versionInfo"), "lastConfigChangeAt");
	if (app->version == NULL)
		app->version = "";
	if (app->config_version == NULL)
		app->config_version = app->version;
	app->cpus = bt_json_number(d, "cpus", 1);
	app->mem = bt_json_number(d, "mem", 128);
	app->disk = bt_json_number(d, "disk", 0);
	app->instances = (int)bt_json_number(d, "instances", 1);
	free(app->host_ports);
	app->host_ports = relay_container_host_ports(d, &app->nports);
	app->require_ports = json_is_true(json_object_get(d, "requirePorts"));
	app->host_network = relay_container_host_network(d);
	free(app->service_ports);
	app->service_ports = slot_ports(d, &app->nservice_ports);
	app->kill_oldest = strcmp(bt_json_string(d, "killSelection") ?
	    bt_json_string(d, "killSelection") : "", "OLDEST_FIRST") == 0;
	app->backoff_seconds = bt_json_number(d, "backoffSeconds", 1);
	app->backoff_factor = bt_json_number(d, "backoffFactor", 1.15);
	app->max_launch_delay = bt_json_number(d, "maxLaunchDelaySeconds", 300);
}

struct relay_app *relay_app_set(struct relay *r, json_t *def)
{
	const char *id = bt_json_string(def, "id");
	struct relay_app *app = relay_app_find(r, id);

	if (app == NULL) {
		app = xcalloc(1, sizeof *app);
		app->id = xstrdup(id);
		app->since = bt_now();
		TAILQ_INSERT_TAIL(&r->apps, app, entry);
		bt_map_put(&r->app_index, app->id, app);
	} else {
		json_decref(app->def);
	}
	app->def = def;
	relay_app_json_stale(app);
	cache_def(app);
	/* only this app's count and old tasks are looked at again (tasks.c) */
	app->recount = true;
	app->rolling = true;
	return app;
}

void relay_app_json_stale(struct relay_app *app)
{
	static unsigned long json_gen;

	app->json_gen = ++json_gen;
	free(app->def_json);
	free(app->service_ports_json);
	app->def_json = app->service_ports_json = NULL;
}

void relay_app_free(struct relay_app *app)
{
	size_t i;

	for (i = 0; i < app->nrelaunch; i++)
		free(app->relaunch[i].instance_id);
	free(app->relaunch);
	json_decref(app->last_failure);
	free(app->image_arch);
	free(app->image_arch_config);
	free(app->host_ports);
	free(app->service_ports);
	relay_offer_stats_free(app->offer_stats);
	relay_task_template_free(app->task_template);
	relay_app_json_stale(app);
	json_decref(app->def);
	free(app->id);
	free(app);
}

/* every app's count and the tasks of apps gone are looked at again at the next converge */
void relay_apps_changed(struct relay *r)
{
	r->counts_valid = false;
	r->check_outdated = true;
}

void relay_app_remove(struct relay *r, struct relay_app *app)
{
	TAILQ_REMOVE(&r->apps, app, entry);
	bt_map_remove(&r->app_index, app->id);
	relay_app_free(app);
	relay_apps_changed(r);
}
