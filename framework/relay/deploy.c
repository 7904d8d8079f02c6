/*
 * deploy.c -- deployments: Marathon's plans of steps, app locks,
 * rollback and cancel, GET and DELETE /v2/deployments.
 *
 * A change (POST, PUT or DELETE of apps or groups, a restart, a kill with
 * scale; relay_api_apply() in api.c) first takes the locks of the apps it touches: an app belongs to
 * at most one deployment, and a second change answers 409 unless
 * force=true cancels the first. The change then begins a deployment,
 * notes each app before changing it (the originals, kept for a rollback),
 * changes the apps and commits. The plan follows Marathon's: one step
 * stopping removed apps, one starting new apps with 0 instances, then one
 * step per dependency layer scaling or restarting the rest.
 *
 * The keep-N loop (tasks.c) does the work; a deployment only says when:
 * an app whose step has not come yet, or whose dependencies do not yet
 * run healthy, is held (relay_app_want() is 0, nothing is killed). A step
 * is done when each of its apps runs exactly its instances of the current
 * config, every one running, healthy and ready, with no task of an older
 * config left; a stop is done when no task of the app is left. Progress
 * is checked shortly after every status update or change, and on the
 * tick. Deployments are stored in relay.db, so a restarted relay carries
 * on where it stopped.
 */
#include "relay.h"

#include "ids.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define CHECK_DELAY 0.02        /* seconds from a change to the next check */
#define CHECK_SHARE 20          /* ... or 20 times what the last check took, when more */
#define CHECK_DELAY_MAX 1.0     /* ... but never more than this */
#define MAX_LAYER 64            /* dependency chains longer than this are cycles */

static const char *const action_names[] = {
	[RELAY_START] = "StartApplication",
	[RELAY_SCALE] = "ScaleApplication",
	[RELAY_RESTART] = "RestartApplication",
	[RELAY_STOP] = "StopApplication",
};

static enum relay_action action_of(const json_t *action)
{
	const char *name = bt_json_string(action, "action");
	size_t i;

	for (i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
		if (name != NULL && strcmp(name, action_names[i]) == 0)
			return (enum relay_action)i;
	return RELAY_SCALE;
}

bool relay_deployment_affects(const struct relay_deployment *d, const char *app_id)
{
	return json_object_get(d->originals, app_id) != NULL;
}

static void deployment_free(struct relay_deployment *d)
{
	free(d->id);
	free(d->version);
	json_decref(d->steps);
	json_decref(d->originals);
	free(d);
}

static void store(struct relay *r, const struct relay_deployment *d)
{
	json_t *j = json_pack("{s:s, s:s, s:O, s:O, s:I}", "id", d->id, "version", d->version,
	    "steps", d->steps, "originals", d->originals, "current", (json_int_t)d->current);

	relay_state_save_deployment(r, d->id, j);
	json_decref(j);
}

/* ended deployments, freed at the next check: a handler may still answer with one */
static struct relay_deployments ended = TAILQ_HEAD_INITIALIZER(ended);

static void free_ended(void)
{
	struct relay_deployment *d;

	while ((d = TAILQ_FIRST(&ended)) != NULL) {
		TAILQ_REMOVE(&ended, d, entry);
		deployment_free(d);
	}
}

/* take d off the list and out of the store; reason != NULL: it failed */
static void drop(struct relay *r, struct relay_deployment *d, const char *reason)
{
	TAILQ_REMOVE(&r->deployments, d, entry);
	relay_state_delete_deployment(r, d->id);
	if (reason != NULL) {
		log_info("deployment '%s' %s", d->id, reason);
		relay_event_deployment_failed(r, d, reason);
	} else {
		log_info("deployment '%s' finished", d->id);
		relay_event_deployment_done(r, d);
	}
	TAILQ_INSERT_TAIL(&ended, d, entry);
}

/* ---- locks ---- */

bool relay_deployment_lock(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *const *app_ids, size_t n)
{
	struct relay_deployment *d, *next;
	json_t *conflicts = json_array();
	size_t i;

	TAILQ_FOREACH(d, &r->deployments, entry)
		for (i = 0; i < n; i++)
			if (relay_deployment_affects(d, app_ids[i])) {
				json_array_append_new(conflicts, json_pack("{s:s}", "id", d->id));
				break;
			}
	if (json_array_size(conflicts) == 0) {
		json_decref(conflicts);
		return true;
	}
	if (bt_http_query_bool(q, "force", 0) != 1) {
		relay_api_reply_error(req, 409, json_pack("{s:s, s:o}", "message",
		    "App is locked by one or more deployments. Override with the option "
		    "'?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
		    "deployments", conflicts));
		return false;
	}
	json_decref(conflicts);
	for (d = TAILQ_FIRST(&r->deployments); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		for (i = 0; i < n; i++)
			if (relay_deployment_affects(d, app_ids[i])) {
				drop(r, d, "cancelled by a forced change");
				break;
			}
	}
	return true;
}

/* ---- building plans ---- */

struct relay_deployment *relay_deployment_begin(struct relay *r, const char *version)
{
	struct relay_deployment *d = xcalloc(1, sizeof *d);

	d->id = bt_uuid_new();
	d->version = xstrdup(version);
	d->originals = json_object();
	return d;
}

void relay_deployment_touch(struct relay *r, struct relay_deployment *d, const char *app_id)
{
	struct relay_app *app;

	if (json_object_get(d->originals, app_id) != NULL)
		return;
	app = relay_app_find(r, app_id);
	/* definitions are replaced, never changed in place: keeping a reference is safe */
	json_object_set(d->originals, app_id, app != NULL ? app->def : json_null());
}

static int layer_of(struct relay *r, const struct relay_app *app, int depth);

/* the app's dependencies and those of the groups around it (new array) */
static json_t *dependencies_of(struct relay *r, const struct relay_app *app)
{
	json_t *deps = relay_group_dependencies(r, app->id);

	json_array_extend(deps, json_object_get(app->def, "dependencies"));
	return deps;
}

/* the deepest layer among the apps that dependency `dep` (an app or a group) names */
static int dependency_layer(struct relay *r, const struct relay_app *app, const char *dep,
    int depth)
{
	struct relay_app *other;
	size_t n = strlen(dep);
	int layer = -1, l;

	TAILQ_FOREACH(other, &r->apps, entry) {
		if (other == app || (strcmp(other->id, dep) != 0 &&
		    !(strncmp(other->id, dep, n) == 0 && (other->id[n] == '/' || dep[n - 1] == '/'))))
			continue;
		if ((l = layer_of(r, other, depth + 1)) < 0)
			return -2;
		if (l > layer)
			layer = l;
	}
	return layer;
}

static int layer_of(struct relay *r, const struct relay_app *app, int depth)
{
	json_t *deps, *dep;
	size_t i;
	int layer = 0, l;

	if (depth > MAX_LAYER)
		return -1;
	deps = dependencies_of(r, app);
	json_array_foreach(deps, i, dep) {
		if (json_string_value(dep) == NULL || json_string_length(dep) == 0)
			continue;
		l = dependency_layer(r, app, json_string_value(dep), depth);
		if (l < -1) {
			layer = -1;
			break;
		}
		if (l + 1 > layer)
			layer = l + 1;
	}
	json_decref(deps);
	return layer;
}

int relay_app_layer(struct relay *r, const char *app_id)
{
	struct relay_app *app = relay_app_find(r, app_id);

	return app != NULL ? layer_of(r, app, 0) : 0;
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* the affected app ids, sorted; caller frees the array (not the strings) */
static const char **affected(const struct relay_deployment *d, size_t *n)
{
	const char **ids = xcalloc(json_object_size(d->originals) + 1, sizeof *ids);
	const char *id;
	json_t *v;

	*n = 0;
	json_object_foreach(d->originals, id, v)
		ids[(*n)++] = id;
	qsort(ids, *n, sizeof *ids, id_cmp);
	return ids;
}

static void add_action(json_t *step, enum relay_action action, const char *app_id)
{
	json_array_append_new(json_object_get(step, "actions"), json_pack("{s:s, s:s}", "action",
	    action_names[action], "app", app_id));
}

static json_t *new_step(void)
{
	return json_pack("{s:[]}", "actions");
}

/* Marathon's steps: stops, starts, then a step per dependency layer */
static json_t *build_steps(struct relay *r, const struct relay_deployment *d)
{
	json_t *steps = json_array(), *stops = new_step(), *starts = new_step();
	json_t *layers = json_array(), *orig, *step;
	const char **ids;
	const char *ocv;
	struct relay_app *app;
	size_t i, n;
	int layer;

	ids = affected(d, &n);
	for (i = 0; i < n; i++) {
		orig = json_object_get(d->originals, ids[i]);
		app = relay_app_find(r, ids[i]);
		if (app == NULL) {
			if (!json_is_null(orig))
				add_action(stops, RELAY_STOP, ids[i]);
			continue;
		}
		if (json_is_null(orig))
			add_action(starts, RELAY_START, ids[i]);
		layer = layer_of(r, app, 0);
		while (layer >= 0 && json_array_size(layers) <= (size_t)layer)
			json_array_append_new(layers, new_step());
		ocv = bt_json_string(json_object_get(orig, "versionInfo"), "lastConfigChangeAt");
		add_action(json_array_get(layers, layer < 0 ? 0 : (size_t)layer),
		    !json_is_null(orig) && (ocv == NULL || strcmp(ocv, app->config_version) != 0) ?
		    RELAY_RESTART : RELAY_SCALE, ids[i]);
	}
	free(ids);
	json_array_insert_new(layers, 0, starts);
	json_array_insert_new(layers, 0, stops);
	json_array_foreach(layers, i, step)
		if (json_array_size(json_object_get(step, "actions")) > 0)
			json_array_append(steps, step);
	json_decref(layers);
	return steps;
}

static void update_holds(struct relay *r);
static void advance(struct relay *r, struct relay_deployment *d, bool may_end);

void relay_deployment_commit(struct relay *r, struct relay_deployment *d)
{
	d->steps = build_steps(r, d);
	TAILQ_INSERT_TAIL(&r->deployments, d, entry);
	log_info("deployment '%s' of %zu app(s) in %zu step(s)", d->id,
	    json_object_size(d->originals), json_array_size(d->steps));
	relay_event_deployment_new(r, d);
	store(r, d);
	update_holds(r);
	/* a deployment is listed at least until the next check, even one with nothing to do */
	advance(r, d, false);
	relay_deployments_changed(r);
}

/* ---- progress ---- */

bool relay_task_serving(const struct relay_app *app, const struct relay_task *t)
{
	return t->goal == RELAY_GOAL_RUNNING && t->state == MESOS__V1__TASK_STATE__TASK_RUNNING &&
	    t->config_version != NULL && strcmp(t->config_version, app->config_version) == 0 &&
	    (json_array_size(json_object_get(app->def, "healthChecks")) == 0 ||
	    (t->healthy_known && t->healthy)) &&
	    (json_array_size(json_object_get(app->def, "readinessChecks")) == 0 || t->ready);
}

/* exactly `instances` tasks, all of the current config and serving; nothing being killed */
static bool settled(struct relay *r, const struct relay_app *app)
{
	const struct relay_task *t;
	int serving = 0, alive = 0;

	/* serving tasks run and are not being killed: with fewer of those, no need to look */
	if (relay_app_live_running(r, app->id) < app->instances)
		return false;
	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (relay_task_terminal_state(t->state))
			continue;
		if (t->goal != RELAY_GOAL_RUNNING || !relay_task_serving(app, t))
			return false;
		alive++;
		serving++;
	}
	return serving == app->instances && alive == app->instances;
}

/* every app a dependency of app names runs healthy */
static bool dependencies_ready(struct relay *r, const struct relay_app *app)
{
	json_t *deps = dependencies_of(r, app), *dep;
	const struct relay_app *other;
	const char *name;
	bool ready = true;
	size_t i, n;

	json_array_foreach(deps, i, dep) {
		if ((name = json_string_value(dep)) == NULL || (n = strlen(name)) == 0)
			continue;
		TAILQ_FOREACH(other, &r->apps, entry)
			if (other != app && (strcmp(other->id, name) == 0 ||
			    (strncmp(other->id, name, n) == 0 &&
			    (other->id[n] == '/' || name[n - 1] == '/'))) &&
			    !settled(r, other))
				ready = false;
	}
	json_decref(deps);
	return ready;
}

static bool action_done(struct relay *r, const json_t *action)
{
	const char *id = bt_json_string(action, "app");
	struct relay_app *app = relay_app_find(r, id);
	const struct relay_task *t;

	switch (action_of(action)) {
	case RELAY_START:
		return true;
	case RELAY_STOP:
		RELAY_APP_TASKS_FOREACH(t, r, id)
			if (!relay_task_terminal_state(t->state))
				return app != NULL;     /* recreated meanwhile: nothing left to stop */
		return true;
	default:
		return app == NULL || (!app->held && settled(r, app));
	}
}

static bool step_done(struct relay *r, const struct relay_deployment *d, size_t i)
{
	json_t *actions = json_object_get(json_array_get(d->steps, i), "actions"), *a;
	size_t k;

	json_array_foreach(actions, k, a)
		if (!action_done(r, a))
			return false;
	return true;
}

/* finish the steps that are done; may_end: a deployment whose steps are all done ends */
static void advance(struct relay *r, struct relay_deployment *d, bool may_end)
{
	size_t before = d->current, last = json_array_size(d->steps);

	if (!may_end && last > 0)
		last--;
	while (d->current < last && step_done(r, d, d->current)) {
		relay_event_deployment_step(r, d, d->current);
		d->current++;
		update_holds(r);
	}
	if (may_end && d->current == last)
		drop(r, d, NULL);
	else if (d->current != before)
		store(r, d);
}

static void hold(struct relay *r, struct relay_app *app)
{
	if (app->held)
		return;
	app->held = true;
	r->held = xreallocarray(r->held, r->nheld + 1, sizeof *r->held);
	r->held[r->nheld++] = xstrdup(app->id);
}

static void hold_step(struct relay *r, const struct relay_deployment *d, size_t i, bool current)
{
	json_t *actions = json_object_get(json_array_get(d->steps, i), "actions"), *a;
	struct relay_app *app;
	size_t k;

	json_array_foreach(actions, k, a) {
		enum relay_action act = action_of(a);
		if (act == RELAY_START || act == RELAY_STOP ||
		    (app = relay_app_find(r, bt_json_string(a, "app"))) == NULL)
			continue;
		if (!current || !dependencies_ready(r, app))
			hold(r, app);
	}
}

/*
 * Hold the apps whose step has not come yet; true when an app was let
 * go. Only the apps held before are looked at again, not every app.
 */
static bool holds(struct relay *r)
{
	char **was = r->held;
	size_t i, nwas = r->nheld;
	struct relay_deployment *d;
	struct relay_app *app;
	bool released = false;

	for (i = 0; i < nwas; i++)
		if ((app = relay_app_find(r, was[i])) != NULL)
			app->held = false;
	r->held = NULL;
	r->nheld = 0;
	TAILQ_FOREACH(d, &r->deployments, entry)
		for (i = d->current; i < json_array_size(d->steps); i++)
			hold_step(r, d, i, i == d->current);
	for (i = 0; i < nwas; i++) {
		if ((app = relay_app_find(r, was[i])) != NULL && !app->held) {
			log_info("app '%s' may deploy now", app->id);
			released = true;
		}
		free(was[i]);
	}
	free(was);
	return released;
}

static void update_holds(struct relay *r)
{
	if (holds(r)) {
		r->revive_wanted = true;
		relay_converge(r);
	}
}

/* seconds the last check took: after a change, checks take at most 1/CHECK_SHARE of the time */
static double check_cost;

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	double t0;

	relay_batch_begin(r);
	t0 = bt_monotonic();
	relay_deployments_check(r);
	check_cost = bt_monotonic() - t0;      /* the commit that follows is not the check's */
	relay_batch_end(r);
}

void relay_deployments_changed(struct relay *r)
{
	double delay = check_cost * CHECK_SHARE;
	struct timeval tv;

	delay = delay < CHECK_DELAY ? CHECK_DELAY : delay > CHECK_DELAY_MAX ? CHECK_DELAY_MAX : delay;
	tv = bt_timeval(delay);

	if (r->deploy_timer == NULL)
		r->deploy_timer = evtimer_new(r->base, check_cb, r);
	if (!evtimer_pending(r->deploy_timer, NULL))
		evtimer_add(r->deploy_timer, &tv);
}

void relay_deployments_check(struct relay *r)
{
	struct relay_deployment *d, *next;
	struct relay_app *app;
	json_t *a;
	size_t i;
	bool rolling = false;

	free_ended();
	update_holds(r);
	for (d = TAILQ_FIRST(&r->deployments); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		advance(r, d, true);
	}
	TAILQ_FOREACH(d, &r->deployments, entry)
		json_array_foreach(json_object_get(json_array_get(d->steps, d->current), "actions"),
		    i, a)
			if ((app = relay_app_find(r, bt_json_string(a, "app"))) != NULL && !app->held)
				relay_readiness_poll(r, app);
	TAILQ_FOREACH(app, &r->apps, entry)
		rolling |= app->rolling;
	if (rolling)
		relay_converge(r);
}

/* ---- rollback, cancel, restarts ---- */

/* a new deployment taking d's apps back to where they were before d; d is dropped */
static struct relay_deployment *rollback(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, struct relay_deployment *d)
{
	json_t *originals = json_incref(d->originals), *orig;
	struct relay_change *ch = xcalloc(json_object_size(originals) + 1, sizeof *ch);
	struct relay_deployment *back;
	const char *id;
	size_t n = 0;

	drop(r, d, "rolled back");
	json_object_foreach(originals, id, orig) {
		ch[n].id = id;
		ch[n].def = json_is_null(orig) ? NULL : json_deep_copy(orig);
		ch[n].keep_version = true;
		n++;
	}
	back = relay_api_apply(r, req, q, ch, n);
	free(ch);
	json_decref(originals);
	return back;
}

void relay_api_deployments_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *q, void *arg)
{
	struct relay *r = arg;
	const char *method = bt_http_method(req), *id = path + strlen("/v2/deployments");
	struct relay_deployment *d;
	json_t *list;

	if (*id == '\0' || strcmp(id, "/") == 0) {
		if (strcmp(method, "GET") != 0) {
			relay_api_not_allowed(req);
			return;
		}
		list = json_array();
		TAILQ_FOREACH(d, &r->deployments, entry)
			json_array_append_new(list, relay_json_deployment(r, d));
		relay_api_reply(req, 200, list);
		return;
	}
	id++;
	if (strcmp(method, "DELETE") != 0) {
		relay_api_not_allowed(req);
		return;
	}
	TAILQ_FOREACH(d, &r->deployments, entry)
		if (strcmp(d->id, id) == 0)
			break;
	if (d == NULL) {
		bt_http_error(req, 404, "DeploymentPlan %s does not exist", id);
		return;
	}
	if (bt_http_query_bool(q, "force", 0) == 1) {
		drop(r, d, "cancelled");
		update_holds(r);
		relay_converge(r);
		bt_http_reply(req, 202, "application/json", NULL, 0);
		return;
	}
	relay_api_reply_dr(req, 200, rollback(r, req, q, d), NULL);
}

/* ---- JSON, loading, teardown ---- */

json_t *relay_json_deployment(struct relay *r, const struct relay_deployment *d)
{
	size_t total = json_array_size(d->steps), cur = d->current < total ? d->current :
	    total > 0 ? total - 1 : 0, i, n;
	json_t *current = json_array(), *a, *apps = json_array();
	const char **ids = affected(d, &n);
	struct relay_app *app;

	for (i = 0; i < n; i++)
		json_array_append_new(apps, json_string(ids[i]));
	free(ids);
	json_array_foreach(json_object_get(json_array_get(d->steps, cur), "actions"), i, a) {
		app = relay_app_find(r, bt_json_string(a, "app"));
		json_array_append_new(current, json_pack("{s:O, s:O, s:o}", "action",
		    json_object_get(a, "action"), "app", json_object_get(a, "app"),
		    "readinessCheckResults", app != NULL ? relay_readiness_results(r, app) :
		    json_array()));
	}
	return json_pack("{s:s, s:s, s:o, s:[], s:O, s:o, s:I, s:I}", "id", d->id, "version",
	    d->version, "affectedApps", apps, "affectedPods", "steps", d->steps,
	    "currentActions", current, "currentStep", (json_int_t)(total > 0 ? cur + 1 : 0),
	    "totalSteps", (json_int_t)total);
}

static int load_cb(const char *id, json_t *j, void *arg)
{
	struct relay *r = arg;
	struct relay_deployment *d;

	if (!json_is_array(json_object_get(j, "steps")) ||
	    !json_is_object(json_object_get(j, "originals")) || bt_json_string(j, "version") == NULL) {
		log_warn("ignoring unreadable deployment record '%s'", id);
		return 0;
	}
	d = xcalloc(1, sizeof *d);
	d->id = xstrdup(id);
	d->version = xstrdup(bt_json_string(j, "version"));
	d->steps = json_incref(json_object_get(j, "steps"));
	d->originals = json_incref(json_object_get(j, "originals"));
	d->current = (size_t)bt_json_number(j, "current", 0);
	TAILQ_INSERT_TAIL(&r->deployments, d, entry);
	return 0;
}

int relay_deployments_load(struct relay *r, char **cause)
{
	struct relay_deployment *d;
	size_t n = 0;

	relay_state_foreach_deployment(r, load_cb, r);
	TAILQ_FOREACH(d, &r->deployments, entry)
		n++;
	if (n > 0)
		log_info("loaded %zu deployment(s) in progress", n);
	holds(r);
	return 0;
}

void relay_deployments_release(struct relay *r)
{
	struct relay_deployment *d;

	while ((d = TAILQ_FIRST(&r->deployments)) != NULL) {
		TAILQ_REMOVE(&r->deployments, d, entry);
		deployment_free(d);
	}
	free_ended();
	while (r->nheld > 0)
		free(r->held[--r->nheld]);
	free(r->held);
	r->held = NULL;
	if (r->deploy_timer != NULL)
		event_free(r->deploy_timer);
	r->deploy_timer = NULL;
}
