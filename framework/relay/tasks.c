/*
 * tasks.c -- the keep-N loop: status updates, kills, scaling, backoff, reconciliation.
 *
 * Every app wants `instances` tasks of its current config version. Tasks
 * of deleted apps and surplus tasks (youngest first, staging before
 * running, or oldest first for OLDEST_FIRST) are killed; tasks of an older
 * config are replaced by a rolling restart that follows the app's
 * upgradeStrategy (roll()); an app a deployment holds (deploy.c) neither
 * launches nor kills. Kills are resent until a terminal update confirms them. A task
 * that ends on its own is replaced: its instance id is kept for the next
 * incarnation, and for TASK_FAILED, TASK_FINISHED and TASK_ERROR the app
 * waits backoffSeconds, growing by backoffFactor per failure up to
 * maxLaunchDelaySeconds. Tasks whose state is unknown keep counting as
 * they were, so a master that has not heard from an agent yet never
 * causes duplicates; reconciliation (after every subscription and every
 * --reconciliation_interval) settles them, and updates for tasks relay
 * does not know are answered with a kill.
 *
 * Launches that stall: tasks still staging or starting that no update
 * has confirmed since the subscription are reconciled again every few
 * seconds. A master that knows a task answers with its
 * state, which confirms it; one that does not answers TASK_LOST (or
 * TASK_GONE / TASK_UNKNOWN to partition-aware frameworks), which ends the
 * task like any terminal update -- but it says nothing at all while the
 * task's agent is recovered from its registry and has not come back. A
 * staging task the master has not confirmed within
 * --task_launch_confirm_timeout of its launch (or of the subscription,
 * whichever is later) is therefore given up as TASK_LOST and replaced; a
 * confirmed task not running within --task_launch_timeout is killed and
 * replaced.
 *
 * Costs: tasks are found by id through a hash table, and each app keeps
 * the number of its tasks that count towards its instances (`active`),
 * adjusted as tasks come, go and are killed and recounted in one pass
 * only after an app changes, so an offer or a status update costs the
 * same with a hundred thousand tasks as with ten. A REVIVE goes out as
 * soon as an instance is missing, at most every REVIVE_MIN_INTERVAL; one
 * held back by that limit leaves on a timer the moment it expires.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REVIVE_MIN_INTERVAL 0.01
#define SHORT_DECLINE 5.0
#define STAGING_RECONCILE_AFTER 15.0
#define STAGING_RECONCILE_MIN 0.5

static double last_staging_reconcile;

bool relay_task_terminal_state(int s)
{
	if (bt_task_state_terminal(s))
		return true;
	switch (s) {
	/* an unknown task is lost to relay; an unreachable one is not (unreachable.c) */
	case MESOS__V1__TASK_STATE__TASK_UNKNOWN:
		return true;
	default:
		return false;
	}
}

const char *relay_task_state_name(int s)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &mesos__v1__task_state__descriptor, s);
	return v != NULL ? v->name : "TASK_UNKNOWN";
}

static bool is_failure_state(int s)
{
	return s != MESOS__V1__TASK_STATE__TASK_FINISHED && s != MESOS__V1__TASK_STATE__TASK_KILLED &&
	    relay_task_terminal_state(s);
}

static bool is_backoff_state(int s)
{
	return s == MESOS__V1__TASK_STATE__TASK_FAILED || s == MESOS__V1__TASK_STATE__TASK_FINISHED ||
	    s == MESOS__V1__TASK_STATE__TASK_ERROR;
}

static size_t hash_id(const char *s)
{
	size_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct relay_task *relay_task_find(struct relay *r, const char *id)
{
	struct relay_task *t;

	if (r->task_hash_size == 0)
		return NULL;
	for (t = r->task_hash[hash_id(id) & (r->task_hash_size - 1)]; t != NULL; t = t->hnext)
		if (strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

static void hash_grow(struct relay *r)
{
	size_t size = r->task_hash_size ? r->task_hash_size * 2 : 1024, b;
	struct relay_task **table = xcalloc(size, sizeof *table), *t, *next;

	for (b = 0; b < r->task_hash_size; b++)
		for (t = r->task_hash[b]; t != NULL; t = next) {
			next = t->hnext;
			t->hnext = table[hash_id(t->id) & (size - 1)];
			table[hash_id(t->id) & (size - 1)] = t;
		}
	free(r->task_hash);
	r->task_hash = table;
	r->task_hash_size = size;
}

static bool counts_for(const struct relay_task *t, const struct relay_app *app);

/* the app whose instance count t adds to, or NULL */
static struct relay_app *counted_in(struct relay *r, const struct relay_task *t)
{
	struct relay_app *app = relay_app_find(r, t->app_id);

	if (app == NULL || !counts_for(t, app) || t->config_version == NULL ||
	    strcmp(t->config_version, app->config_version) != 0)
		return NULL;
	return app;
}

static void count_task(struct relay *r, const struct relay_task *t, int delta)
{
	struct relay_app *app;

	if (r->counts_valid && (app = counted_in(r, t)) != NULL)
		app->active += delta;
}

struct relay_group *relay_group_find(struct relay *r, const char *app_id)
{
	return bt_map_get(&r->groups, app_id);
}

enum {
	RELAY_COUNT_STAGED = 1 << 0,
	RELAY_COUNT_RUNNING = 1 << 1,
	RELAY_COUNT_HEALTHY = 1 << 2,
	RELAY_COUNT_UNHEALTHY = 1 << 3,
	RELAY_COUNT_LIVE_RUNNING = 1 << 4,
};

/* what t adds to its group's counts, as relay_app_counts() defines them */
static unsigned contribution(const struct relay_task *t)
{
	unsigned c = 0;

	if (t->group == NULL)
		return 0;
	if (t->goal == RELAY_GOAL_RUNNING && t->state == MESOS__V1__TASK_STATE__TASK_RUNNING)
		c |= RELAY_COUNT_LIVE_RUNNING;
	if (!counts_for(t, NULL))
		return c;
	if (t->state == MESOS__V1__TASK_STATE__TASK_RUNNING)
		c |= RELAY_COUNT_RUNNING;
	else if (t->state == MESOS__V1__TASK_STATE__TASK_STAGING ||
	    t->state == MESOS__V1__TASK_STATE__TASK_STARTING)
		c |= RELAY_COUNT_STAGED;
	if (t->healthy_known && t->unreachable_since == 0)
		c |= t->healthy ? RELAY_COUNT_HEALTHY : RELAY_COUNT_UNHEALTHY;
	return c;
}

static void count_in(struct relay_group *g, unsigned c, int sign)
{
	if (c & RELAY_COUNT_STAGED)
		g->staged += sign;
	if (c & RELAY_COUNT_RUNNING)
		g->running += sign;
	if (c & RELAY_COUNT_HEALTHY)
		g->healthy += sign;
	if (c & RELAY_COUNT_UNHEALTHY)
		g->unhealthy += sign;
	if (c & RELAY_COUNT_LIVE_RUNNING)
		g->live_running += sign;
}

void relay_task_recount(struct relay_task *t)
{
	unsigned now = contribution(t);

	if (now == t->counted || t->group == NULL)
		return;
	count_in(t->group, t->counted, -1);
	count_in(t->group, now, 1);
	t->counted = now;
}

int relay_app_live_running(struct relay *r, const char *app_id)
{
	const struct relay_group *g = relay_group_find(r, app_id);

	return g != NULL ? g->live_running : 0;
}

static void group_add(struct relay *r, struct relay_task *t)
{
	struct relay_group *g = relay_group_find(r, t->app_id);

	if (g == NULL) {
		g = xcalloc(1, sizeof *g);
		g->app_id = xstrdup(t->app_id);
		TAILQ_INIT(&g->tasks);
		bt_map_put(&r->groups, g->app_id, g);
	}
	TAILQ_INSERT_TAIL(&g->tasks, t, gentry);
	g->n++;
	t->group = g;
	t->counted = 0;
	relay_task_recount(t);
	relay_group_json_stale(g);
}

static void group_del(struct relay *r, struct relay_task *t)
{
	struct relay_group *g = t->group;

	count_in(g, t->counted, -1);
	t->counted = 0;
	TAILQ_REMOVE(&g->tasks, t, gentry);
	t->group = NULL;
	relay_group_json_stale(g);
	if (--g->n == 0) {
		bt_map_remove(&r->groups, g->app_id);
		free(g->app_id);
		free(g);
	}
}

void relay_groups_release(struct relay *r)
{
	size_t i, n;
	struct relay_group **gs = (struct relay_group **)bt_map_values(&r->groups, &n);

	for (i = 0; i < n; i++) {
		relay_group_json_stale(gs[i]);
		free(gs[i]->app_id);
		free(gs[i]);
	}
	free(gs);
	bt_map_release(&r->groups);
}

void relay_task_insert(struct relay *r, struct relay_task *t)
{
	size_t b;

	if (r->ntasks + 1 > r->task_hash_size / 2)
		hash_grow(r);
	b = hash_id(t->id) & (r->task_hash_size - 1);
	t->hnext = r->task_hash[b];
	r->task_hash[b] = t;
	r->ntasks++;
	TAILQ_INSERT_TAIL(&r->tasks, t, entry);
	group_add(r, t);
	count_task(r, t, 1);
	if (t->unreachable_since > 0)
		r->nunreachable++;
	relay_event_task_launched(r, t);        /* nobody listens while state loads */
}

void relay_task_remove(struct relay *r, struct relay_task *t)
{
	struct relay_task **pp;

	count_task(r, t, -1);
	if (t->unreachable_since > 0)
		r->nunreachable--;
	TAILQ_REMOVE(&r->tasks, t, entry);
	group_del(r, t);
	pp = &r->task_hash[hash_id(t->id) & (r->task_hash_size - 1)];
	while (*pp != NULL && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp == t)
		*pp = t->hnext;
	r->ntasks--;
}

static void recount_app(struct relay *r, struct relay_app *app)
{
	struct relay_task *t;

	app->active = 0;
	RELAY_APP_TASKS_FOREACH(t, r, app->id)
		if (counts_for(t, app) && t->config_version != NULL &&
		    strcmp(t->config_version, app->config_version) == 0)
			app->active++;
	app->recount = false;
}

/* recount every app's counting tasks: one pass over each app's tasks */
static void recount(struct relay *r)
{
	struct relay_app *app;

	TAILQ_FOREACH(app, &r->apps, entry)
		recount_app(r, app);
	r->counts_valid = true;
}

void relay_task_json_stale(struct relay_task *t)
{
	free(t->json);
	t->json = NULL;
	if (t->group != NULL)
		relay_group_json_stale(t->group);
}

void relay_group_json_stale(struct relay_group *g)
{
	relay_text_unref(g->json);
	g->json = NULL;
}

void relay_task_free(struct relay_task *t)
{
	relay_health_free(t);
	relay_readiness_free(t);
	relay_task_json_stale(t);
	free(t->id);
	free(t->app_id);
	free(t->instance_id);
	free(t->agent_id);
	free(t->host);
	free(t->ip);
	free(t->version);
	free(t->config_version);
	free(t->ports);
	free(t->record_key);
	free(t);
}

static void send_kill(struct relay *r, const char *task_id, const char *agent_id)
{
	json_t *kill = json_pack("{s:{s:s}}", "task_id", "value", task_id);

	if (agent_id != NULL)
		json_object_set_new(kill, "agent_id", json_pack("{s:s}", "value", agent_id));
	relay_call(r, json_pack("{s:s, s:o}", "type", "KILL", "kill", kill));
}

void relay_task_kill(struct relay *r, struct relay_task *t)
{
	bool first = t->goal != RELAY_GOAL_STOPPED;

	count_task(r, t, -1);
	relay_task_json_stale(t);
	t->goal = RELAY_GOAL_STOPPED;
	relay_task_recount(t);
	t->kill_sent_at = bt_monotonic();
	if (first) {
		log_info("killing task '%s'", t->id);
		relay_state_save_task(r, t);
	}
	send_kill(r, t->id, t->agent_id);
}

/* t, a task of app's id, counts towards its instances */
static bool counts_for(const struct relay_task *t, const struct relay_app *app)
{
	return t->goal == RELAY_GOAL_RUNNING && !relay_task_terminal_state(t->state) &&
	    !t->inactive;
}

int relay_app_want(struct relay *r, struct relay_app *app)
{
	int want, room;

	if (!r->counts_valid)
		recount(r);
	else if (app->recount)
		recount_app(r, app);
	if (app->held)
		return 0;
	want = app->instances - app->active;
	room = app->roll_cap - app->active;
	if (app->rolling && want > room)
		want = room > 0 ? room : 0;
	return want;
}

/*
 * Instances relay has yet to see RUNNING: missing ones it may launch now
 * and launched ones still staging or starting. What an app may not launch
 * yet (a backoff, a deployment step not reached) does not count.
 */
int relay_launch_backlog(struct relay *r)
{
	struct relay_app *app;
	const struct relay_group *g;
	double now = bt_now();
	int n = 0, want;

	TAILQ_FOREACH(app, &r->apps, entry) {
		want = relay_app_want(r, app);
		if (want > 0 && now >= app->launch_not_before)
			n += want;
		if ((g = relay_group_find(r, app->id)) != NULL)
			n += g->staged;
	}
	return n;
}

void relay_app_counts(struct relay *r, const struct relay_app *app, int *staged, int *running,
    int *healthy, int *unhealthy)
{
	const struct relay_group *g = relay_group_find(r, app->id);
	bool checks = json_array_size(json_object_get(app->def, "healthChecks")) > 0;

	*staged = *running = *healthy = *unhealthy = 0;
	if (g == NULL)
		return;
#ifdef BUTTE_CHECKS
	{
		/* the sanitizer builds count the long way too: the kept counts must agree */
		const struct relay_task *t;
		int c[5] = { 0 };
		RELAY_APP_TASKS_FOREACH(t, r, app->id) {
			unsigned k = contribution(t);
			for (int i = 0; i < 5; i++)
				c[i] += (k >> i) & 1;
		}
		if (c[0] != g->staged || c[1] != g->running || c[2] != g->healthy ||
		    c[3] != g->unhealthy || c[4] != g->live_running)
			bt_fatal("task counts of app '%s' drifted: kept %d/%d/%d/%d/%d, "
			    "counted %d/%d/%d/%d/%d", app->id, g->staged, g->running, g->healthy,
			    g->unhealthy, g->live_running, c[0], c[1], c[2], c[3], c[4]);
	}
#endif
	*staged = g->staged;
	*running = g->running;
	if (checks) {
		*healthy = g->healthy;
		*unhealthy = g->unhealthy;
	}
}

void relay_app_reset_delay(struct relay_app *app)
{
	app->delay = 0;
	app->launch_not_before = 0;
}

/* sort key for scale-down: staging before running, then by killSelection */
static int victim_cmp(const struct relay_task *a, const struct relay_task *b, bool oldest)
{
	bool ra = a->state == MESOS__V1__TASK_STATE__TASK_RUNNING;
	bool rb = b->state == MESOS__V1__TASK_STATE__TASK_RUNNING;

	if (ra != rb)
		return ra ? 1 : -1;
	if (a->staged_at == b->staged_at)
		return 0;
	if (oldest)
		return a->staged_at < b->staged_at ? -1 : 1;
	return a->staged_at > b->staged_at ? -1 : 1;
}

static void scale_down(struct relay *r, struct relay_app *app, int surplus)
{
	struct relay_task *t, *best;

	while (surplus-- > 0) {
		best = NULL;
		RELAY_APP_TASKS_FOREACH(t, r, app->id)
			if (counts_for(t, app) && strcmp(t->config_version, app->config_version) == 0 &&
			    (best == NULL || victim_cmp(t, best, app->kill_oldest) < 0))
				best = t;
		if (best == NULL)
			return;
		log_info("scaling app '%s' down: killing task '%s'", app->id, best->id);
		relay_task_kill(r, best);
	}
}

/* kill the tasks of apps that are gone; apps with tasks of an old config roll */
static void kill_outdated(struct relay *r)
{
	struct relay_group **gs;
	struct relay_task *t;
	struct relay_app *app;
	size_t i, n;

	gs = (struct relay_group **)bt_map_values(&r->groups, &n);
	for (i = 0; i < n; i++) {
		if ((app = relay_app_find(r, gs[i]->app_id)) != NULL) {
			app->rolling = true;
			continue;
		}
		TAILQ_FOREACH(t, &gs[i]->tasks, gentry) {
			if (t->goal != RELAY_GOAL_RUNNING || relay_task_terminal_state(t->state))
				continue;
			log_info("task '%s' belongs to no app", t->id);
			relay_task_kill(r, t);
		}
	}
	free(gs);
}

static bool is_current(const struct relay_task *t, const struct relay_app *app)
{
	return t->config_version != NULL && strcmp(t->config_version, app->config_version) == 0;
}

/* an old task that serves: running and not known to be unhealthy */
static bool old_serving(const struct relay_task *t)
{
	return t->goal == RELAY_GOAL_RUNNING && t->state == MESOS__V1__TASK_STATE__TASK_RUNNING &&
	    (!t->healthy_known || t->healthy);
}

static bool roll_kill_oldest;

/* old tasks to kill first: those not serving, then by killSelection */
static int roll_cmp(const void *pa, const void *pb)
{
	const struct relay_task *a = *(struct relay_task *const *)pa;
	const struct relay_task *b = *(struct relay_task *const *)pb;

	if (old_serving(a) != old_serving(b))
		return old_serving(a) ? 1 : -1;
	return victim_cmp(a, b, roll_kill_oldest);
}

/*
 * A rolling restart step, by Marathon's rule: old tasks go while at
 * least ceil(instances x minimumHealthCapacity) tasks keep serving (old
 * ones running and healthy, new ones running, healthy and ready), and
 * new tasks start while old and new together stay within
 * floor(instances x (1 + maximumOverCapacity)); when those two are equal
 * one more is allowed, or nothing could ever move.
 */
static void roll(struct relay *r, struct relay_app *app)
{
	json_t *strategy = json_object_get(app->def, "upgradeStrategy");
	struct relay_task *t, **old = xcalloc(relay_group_find(r, app->id) ?
	    relay_group_find(r, app->id)->n + 1 : 1, sizeof *old);
	int alive = 0, serving = 0, ready = 0, min_healthy, max_cap;
	size_t i, n = 0;

	RELAY_APP_TASKS_FOREACH(t, r, app->id) {
		if (relay_task_terminal_state(t->state))
			continue;
		if (is_current(t, app)) {
			ready += relay_task_serving(app, t);
			continue;
		}
		alive++;
		if (t->goal == RELAY_GOAL_RUNNING)
			old[n++] = t;
		serving += old_serving(t);
	}
	min_healthy = (int)ceil(app->instances *
	    bt_json_number(strategy, "minimumHealthCapacity", 1) - 1e-9);
	max_cap = (int)floor(app->instances *
	    (1 + bt_json_number(strategy, "maximumOverCapacity", 1)) + 1e-9);
	if (min_healthy == max_cap && app->instances > 0)
		max_cap++;
	roll_kill_oldest = app->kill_oldest;
	qsort(old, n, sizeof *old, roll_cmp);
	for (i = 0; i < n; i++) {
		if (old_serving(old[i]) && serving - 1 + ready < min_healthy)
			continue;
		log_info("rolling app '%s': killing task '%s' of an old config", app->id, old[i]->id);
		serving -= old_serving(old[i]);
		relay_task_kill(r, old[i]);
	}
	app->rolling = alive > 0;
	app->roll_cap = max_cap - alive;
	free(old);
}

static void revive_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	relay_batch_begin(r);
	relay_converge(r);
	relay_batch_end(r);
}

/* a REVIVE held back by the rate limit goes out when the interval ends */
static void revive_later(struct relay *r, double wait)
{
	struct timeval tv = bt_timeval(wait);

	if (r->revive_timer == NULL)
		r->revive_timer = evtimer_new(r->base, revive_timer_cb, r);
	if (!evtimer_pending(r->revive_timer, NULL))
		evtimer_add(r->revive_timer, &tv);
}

static void revive_or_suppress(struct relay *r, bool need_now, bool need_later)
{
	double now = bt_monotonic();
	bool rematched = relay_offers_rematched();

	if (!r->subscribed)
		return;
	if (need_now && (r->revive_wanted || r->suppressed)) {
		/* offers held from earlier events first; a REVIVE when they did not do */
		if (!rematched && relay_offers_rematch(r))
			return;
		if (now - r->last_revive < REVIVE_MIN_INTERVAL) {
			revive_later(r, REVIVE_MIN_INTERVAL - (now - r->last_revive));
			return;
		}
		log_debug("reviving offers");
		relay_call(r, json_pack("{s:s}", "type", "REVIVE"));
		r->revive_wanted = false;
		r->suppressed = false;
		r->last_revive = now;
		return;
	}
	if (!need_now)
		r->revive_wanted = false;
	if (!need_now && !need_later && !r->suppressed) {
		log_debug("nothing to launch: suppressing offers");
		relay_call(r, json_pack("{s:s}", "type", "SUPPRESS"));
		r->suppressed = true;
	}
}

void relay_converge(struct relay *r)
{
	struct relay_app *app;
	bool need_now = false, need_later = false;
	double now = bt_now();
	int want;

	if (r->check_outdated) {
		r->check_outdated = false;
		kill_outdated(r);
	}
	TAILQ_FOREACH(app, &r->apps, entry) {
		if (app->rolling && !app->held)
			roll(r, app);
		want = relay_app_want(r, app);
		if (want < 0)
			scale_down(r, app, -want);
		if (want > 0 && now >= app->launch_not_before)
			need_now = true;
		else if (want > 0)
			need_later = true;
		if (want <= 0)
			app->since = now;
	}
	revive_or_suppress(r, need_now, need_later);
}

double relay_decline_duration(struct relay *r)
{
	struct relay_app *app;

	TAILQ_FOREACH(app, &r->apps, entry)
		if (relay_app_want(r, app) > 0)
			return r->cfg.decline_offer_duration < SHORT_DECLINE ?
			    r->cfg.decline_offer_duration : SHORT_DECLINE;
	return r->cfg.decline_offer_duration;
}

static void record_failure(struct relay_app *app, const struct relay_task *t,
    const Mesos__V1__TaskStatus *st)
{
	char ts[32];

	bt_time_iso8601(bt_now(), ts);
	json_decref(app->last_failure);
	app->last_failure = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?}",
	    "appId", app->id, "host", t->host,
	    "message", st->message ? st->message : "",
	    "state", relay_task_state_name(st->state), "taskId", t->id,
	    "timestamp", ts, "version", t->version, "slaveId", t->agent_id);
	json_object_set_new(app->last_failure, "instanceId", json_string(t->instance_id));
}

static void apply_backoff(struct relay_app *app)
{
	double now = bt_now();

	if (app->delay > 0 && now - app->last_failure_at > app->delay + app->max_launch_delay)
		app->delay = 0;
	if (app->delay == 0)
		app->delay = app->backoff_seconds;
	else
		app->delay *= app->backoff_factor;
	if (app->delay > app->max_launch_delay)
		app->delay = app->max_launch_delay;
	app->last_failure_at = now;
	app->launch_not_before = now + app->delay;
	log_info("app '%s' backs off for %.2fs", app->id, app->delay);
}

static void push_relaunch(struct relay_app *app, const struct relay_task *t)
{
	app->relaunch = xreallocarray(app->relaunch, app->nrelaunch + 1, sizeof *app->relaunch);
	app->relaunch[app->nrelaunch].instance_id = xstrdup(t->instance_id);
	app->relaunch[app->nrelaunch].incarnation = t->incarnation + 1;
	app->nrelaunch++;
}

static void task_ended(struct relay *r, struct relay_task *t, const Mesos__V1__TaskStatus *st)
{
	struct relay_app *app = relay_app_find(r, t->app_id);

	log_info("task '%s' ended: %s%s%s", t->id, relay_task_state_name(st->state),
	    st->message ? ": " : "", st->message ? st->message : "");
	if (app != NULL && t->goal == RELAY_GOAL_RUNNING) {
		bool wrong_arch = false;
		if (is_failure_state(st->state)) {
			record_failure(app, t, st);
			wrong_arch = relay_placement_learn_failure(app, st->message);
		}
		if (is_backoff_state(st->state) && !wrong_arch)
			apply_backoff(app);
		if (t->config_version != NULL && strcmp(t->config_version, app->config_version) == 0)
			push_relaunch(app, t);
		r->revive_wanted = true;
	}
	relay_task_remove(r, t);
	relay_state_delete_task(r, t);
	relay_task_free(t);
}

static void acknowledge(struct relay *r, const Mesos__V1__TaskStatus *st, const char *agent_id)
{
	Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
	Mesos__V1__Scheduler__Call__Acknowledge ack = MESOS__V1__SCHEDULER__CALL__ACKNOWLEDGE__INIT;
	Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;

	if (!st->has_uuid || st->uuid.len == 0 || agent_id == NULL)
		return;
	aid.value = (char *)agent_id;
	tid.value = st->task_id->value;
	ack.agent_id = &aid;
	ack.task_id = &tid;
	ack.uuid = st->uuid;
	call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE;
	call.has_type = true;
	call.acknowledge = &ack;
	relay_call_pb(r, &call);
}

static void note_status(struct relay_task *t, const Mesos__V1__TaskStatus *st)
{
	const Mesos__V1__ContainerStatus *cs = st->container_status;

	relay_task_json_stale(t);       /* its health results may change too */
	if (st->agent_id != NULL && (t->agent_id == NULL || strcmp(t->agent_id, st->agent_id->value))) {
		free(t->agent_id);
		t->agent_id = xstrdup(st->agent_id->value);
	}
	if (st->state == MESOS__V1__TASK_STATE__TASK_RUNNING && t->started_at == 0)
		t->started_at = st->has_timestamp && st->timestamp > 0 ? st->timestamp : bt_now();
	if (cs != NULL && cs->n_network_infos > 0 && cs->network_infos[0]->n_ip_addresses > 0 &&
	    cs->network_infos[0]->ip_addresses[0]->ip_address != NULL) {
		free(t->ip);
		t->ip = xstrdup(cs->network_infos[0]->ip_addresses[0]->ip_address);
	}
}

void relay_task_update(struct relay *r, const Mesos__V1__TaskStatus *st)
{
	struct relay_task *t = relay_task_find(r, st->task_id->value);
	const char *agent = st->agent_id ? st->agent_id->value : NULL;
	char *agent_copy;

	r->updates_seen++;
	log_debug("update for task '%s': %s%s", st->task_id->value, relay_task_state_name(st->state),
	    st->has_uuid ? "" : " (no uuid)");
	if (t == NULL) {
		if (!relay_task_terminal_state(st->state)) {
			log_info("unknown task '%s' is %s: killing it", st->task_id->value,
			    relay_task_state_name(st->state));
			send_kill(r, st->task_id->value, agent);
		}
		acknowledge(r, st, agent);
		return;
	}
	t->last_update = bt_monotonic();
	t->confirmed = true;
	agent_copy = xstrdup(agent ? agent : t->agent_id ? t->agent_id : "");
	note_status(t, st);
	relay_event_status_update(r, t, st);
	if (relay_task_terminal_state(st->state)) {
		task_ended(r, t, st);
		relay_converge(r);
	} else {
		bool changed = t->state != (int)st->state;
		if (relay_task_terminal_state(t->state))
			r->counts_valid = false;        /* a task thought ended counts again */
		t->state = st->state;
		relay_unreachable_note(r, t, st);
		/* STAGING to STARTING changes nothing a restarted relay needs: not written */
		if (changed && st->state != MESOS__V1__TASK_STATE__TASK_STARTING)
			relay_state_save_task_state(r, t);
		if (t->goal == RELAY_GOAL_STOPPED && changed)
			send_kill(r, t->id, t->agent_id);
		relay_health_update(r, t, st);
		relay_task_recount(t);
	}
	relay_deployments_changed(r);
	acknowledge(r, st, agent_copy[0] ? agent_copy : NULL);
	free(agent_copy);
}

static bool launching(const struct relay_task *t)
{
	return t->state == MESOS__V1__TASK_STATE__TASK_STAGING ||
	    t->state == MESOS__V1__TASK_STATE__TASK_STARTING;
}

/*
 * How often unconfirmed launches are reconciled again: every 15 s, but
 * often enough that a task the master knows is confirmed well within the
 * confirm timeout (a task waits at most two periods).
 */
static double staging_period(const struct relay *r)
{
	double p = STAGING_RECONCILE_AFTER;

	if (r->cfg.task_launch_confirm_timeout / 4 < p)
		p = r->cfg.task_launch_confirm_timeout / 4;
	return p < STAGING_RECONCILE_MIN ? STAGING_RECONCILE_MIN : p;
}

static void reconcile_tasks(struct relay *r, bool only_staging)
{
	json_t *list = json_array();
	struct relay_task *t;
	double now = bt_monotonic(), period = staging_period(r);

	TAILQ_FOREACH(t, &r->tasks, entry) {
		json_t *item;
		/*
		 * Only launches the master has not confirmed: one it reported is
		 * known to it, and the launch timeout covers the rest. Asking
		 * again about confirmed ones would, at a hundred thousand
		 * launching tasks, answer with as many updates as the launches
		 * themselves make, while those still queue.
		 */
		if (only_staging && (!launching(t) || t->confirmed || now - t->last_update < period))
			continue;
		item = json_pack("{s:{s:s}}", "task_id", "value", t->id);
		if (t->agent_id != NULL)
			json_object_set_new(item, "agent_id", json_pack("{s:s}", "value", t->agent_id));
		json_array_append_new(list, item);
	}
	if (json_array_size(list) == 0) {
		json_decref(list);
		return;
	}
	log_debug("reconciling %zu tasks explicitly", json_array_size(list));
	relay_call(r, json_pack("{s:s, s:{s:o}}", "type", "RECONCILE", "reconcile", "tasks", list));
}

void relay_reconcile(struct relay *r)
{
	reconcile_tasks(r, false);
	relay_call(r, json_pack("{s:s, s:{}}", "type", "RECONCILE", "reconcile"));
	r->next_reconcile = bt_monotonic() + r->cfg.reconciliation_interval;
}

void relay_tasks_subscribed(struct relay *r)
{
	struct relay_task *t;

	TAILQ_FOREACH(t, &r->tasks, entry) {
		t->confirmed = false;
		t->kill_sent_at = 0;    /* unconfirmed kills go out again on the next tick */
	}
}

/*
 * Seconds the task has been launching as far as this subscription can
 * tell: since its launch, but never more than since the subscription, so
 * that the master always gets a full window to report it after a restart.
 */
static double launching_for(const struct relay *r, const struct relay_task *t)
{
	double staged = bt_now() - t->staged_at, subscribed = bt_monotonic() - r->subscribed_at;

	return staged < subscribed ? staged : subscribed;
}

/* give up a task the master never confirmed: it ends as TASK_LOST and is replaced */
static void expunge(struct relay *r, struct relay_task *t)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
	Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
	char *msg = xasprintf("Task launch was not confirmed by the master within %gs",
	    r->cfg.task_launch_confirm_timeout);

	/* should it turn up after all, the kill (or the unknown-task kill) ends it */
	send_kill(r, t->id, t->agent_id);
	tid.value = t->id;
	st.task_id = &tid;
	st.state = MESOS__V1__TASK_STATE__TASK_LOST;
	st.message = msg;
	relay_event_status_update(r, t, &st);
	task_ended(r, t, &st);
	free(msg);
}

/*
 * The timeouts of single tasks, in one pass over them all: kills not
 * confirmed are sent again, launches the master never confirmed are given
 * up, and tasks that never reached TASK_RUNNING are replaced.
 */
static void check_task_timeouts(struct relay *r)
{
	struct relay_task *t, *next;
	double mono = bt_monotonic(), elapsed;
	bool ended = false;

	for (t = TAILQ_FIRST(&r->tasks); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		if (t->goal == RELAY_GOAL_STOPPED &&
		    mono - t->kill_sent_at >= r->cfg.kill_retry_timeout) {
			log_info("kill of task '%s' not confirmed: sending it again", t->id);
			t->kill_sent_at = mono;
			send_kill(r, t->id, t->agent_id);
		}
		if (!launching(t))
			continue;
		elapsed = launching_for(r, t);
		if (!t->confirmed && t->state == MESOS__V1__TASK_STATE__TASK_STAGING &&
		    elapsed > r->cfg.task_launch_confirm_timeout) {
			log_warn("the master has not confirmed task '%s' in %.0fs: giving it up", t->id,
			    elapsed);
			expunge(r, t);
			ended = true;
		} else if (t->goal == RELAY_GOAL_RUNNING && elapsed > r->cfg.task_launch_timeout) {
			log_warn("task '%s' did not reach TASK_RUNNING in %.0fs: replacing it", t->id,
			    elapsed);
			relay_task_kill(r, t);
		}
	}
	if (ended)
		r->revive_wanted = true;
}

#define TASK_SCAN_EVERY 1.0     /* seconds between looks at every task's timeouts */
static double last_task_scan;

void relay_tasks_tick(struct relay *r)
{
	struct relay_app *app;
	double mono = bt_monotonic(), now = bt_now();

	if (!r->subscribed)
		return;
	TAILQ_FOREACH(app, &r->apps, entry)
		if (app->launch_not_before > 0 && now >= app->launch_not_before) {
			app->launch_not_before = 0;
			r->revive_wanted = true;
		}
	/* the timeouts of single tasks are seconds long: every task is looked at once a second */
	if (mono - last_task_scan >= TASK_SCAN_EVERY) {
		last_task_scan = mono;
		check_task_timeouts(r);
	}
	relay_unreachable_tick(r);
	if (mono - last_staging_reconcile > staging_period(r)) {
		last_staging_reconcile = mono;
		reconcile_tasks(r, true);
	}
	relay_converge(r);
}
