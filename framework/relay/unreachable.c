/*
 * unreachable.c -- Marathon's unreachableStrategy: what happens to a task
 * whose agent the master lost touch with.
 *
 * relay subscribes as a PARTITION_AWARE framework, so such a task arrives
 * as TASK_UNREACHABLE, which is not the end of it: the task may well be
 * running behind a partition. By the app's strategy
 * {inactiveAfterSeconds, expungeAfterSeconds} (both 0 by default) the task
 *
 *   - keeps counting towards the app's instances (nothing is launched in
 *     its place) until it has been unreachable for inactiveAfterSeconds;
 *   - is then inactive: it no longer counts, a replacement is launched;
 *   - is forgotten (expunged) once unreachable for expungeAfterSeconds;
 *     should it turn up later, it is a task relay does not know and is
 *     killed (tasks.c).
 *
 * With "disabled" an unreachable task is never replaced nor forgotten. A
 * task that is reachable again before it is forgotten counts again, so an
 * app with a replacement is over capacity and scales down as usual. While
 * tasks are unreachable relay reconciles them every few seconds, since
 * the master tells nobody when an agent comes back. Unreachable tasks
 * count as neither healthy nor unhealthy, and never fail a health check.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define RECONCILE_EVERY 2.0     /* seconds between reconciliations of unreachable tasks */

static double last_reconcile;

/* the app's strategy: false when disabled */
static bool strategy(struct relay *r, const struct relay_task *t, double *inactive,
    double *expunge)
{
	struct relay_app *app = relay_app_find(r, t->app_id);
	json_t *s = app != NULL ? json_object_get(app->def, "unreachableStrategy") : NULL;

	*inactive = bt_json_number(s, "inactiveAfterSeconds", 0);
	*expunge = bt_json_number(s, "expungeAfterSeconds", 0);
	return !json_is_string(s);
}

/* inactive once unreachable for inactiveAfterSeconds */
static void check_inactive(struct relay *r, struct relay_task *t, double now)
{
	double inactive, expunge;

	if (t->inactive || !strategy(r, t, &inactive, &expunge) ||
	    now - t->unreachable_since < inactive)
		return;
	log_warn("task '%s' has been unreachable for %.0fs: replacing it", t->id,
	    now - t->unreachable_since);
	t->inactive = true;
	relay_task_recount(t);
	r->counts_valid = false;
	r->revive_wanted = true;
	relay_event_instance_changed(r, t, "UnreachableInactive");
}

void relay_unreachable_note(struct relay *r, struct relay_task *t, const Mesos__V1__TaskStatus *st)
{
	if (st->state == MESOS__V1__TASK_STATE__TASK_UNREACHABLE) {
		if (t->unreachable_since == 0) {
			t->unreachable_since = st->unreachable_time != NULL ?
			    (double)st->unreachable_time->nanoseconds / 1e9 : bt_now();
			r->nunreachable++;
			log_warn("task '%s' is unreachable%s%s", t->id, st->message ? ": " : "",
			    st->message ? st->message : "");
		}
		check_inactive(r, t, bt_now());
	} else if (t->unreachable_since > 0) {
		log_info("task '%s' is reachable again", t->id);
		t->unreachable_since = 0;
		t->inactive = false;
		r->nunreachable--;
		r->counts_valid = false;
	}
	relay_task_recount(t);
}

/* forget the task: it is expunged */
static void expunge(struct relay *r, struct relay_task *t)
{
	log_warn("task '%s' has been unreachable for %.0fs: forgetting it", t->id,
	    bt_now() - t->unreachable_since);
	relay_task_remove(r, t);
	relay_state_delete_task(r, t);
	relay_task_free(t);
	r->counts_valid = false;
}

static void reconcile(struct relay *r)
{
	json_t *list = json_array(), *item;
	struct relay_task *t;

	TAILQ_FOREACH(t, &r->tasks, entry) {
		if (t->unreachable_since == 0)
			continue;
		item = json_pack("{s:{s:s}}", "task_id", "value", t->id);
		if (t->agent_id != NULL)
			json_object_set_new(item, "agent_id", json_pack("{s:s}", "value", t->agent_id));
		json_array_append_new(list, item);
	}
	relay_call(r, json_pack("{s:s, s:{s:o}}", "type", "RECONCILE", "reconcile", "tasks", list));
}

void relay_unreachable_tick(struct relay *r)
{
	struct relay_task *t, *next;
	double now = bt_now(), mono = bt_monotonic(), inactive, expunge_after;

	if (r->nunreachable == 0)
		return;
	for (t = TAILQ_FIRST(&r->tasks); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		if (t->unreachable_since == 0)
			continue;
		check_inactive(r, t, now);
		if (t->inactive && strategy(r, t, &inactive, &expunge_after) &&
		    now - t->unreachable_since >= expunge_after)
			expunge(r, t);
	}
	if (r->nunreachable > 0 && mono - last_reconcile >= RECONCILE_EVERY) {
		last_reconcile = mono;
		reconcile(r);
	}
}
