/*
 * offers.c -- matching offers against what the apps are missing.
 *
 * For each offer relay adds up the unreserved (or relay-role) cpus, mem,
 * disk and port ranges, then walks the apps that need instances and are
 * not in launch backoff, fitting as many tasks as the offer holds -- but
 * when one OFFERS event brings several offers, an app takes at most its
 * share of what it misses from each (missing / offers left), so its
 * instances spread over the agents and start on all of them at once. Every
 * task is recorded (TASK_STAGING) and persisted before the ACCEPT that
 * carries its LAUNCH goes out (what is matched in one go is one batch: one
 * transaction, and the calls leave after its commit; scheduler.c); a big
 * event is matched a few milliseconds at a time (relay_offers). The
 * apps' missing counts are kept by tasks.c, so matching an offer costs
 * O(apps + tasks launched); an app that cannot use an offer records why
 * (container.c: counters and a small table, for /v2/queue). Host ports
 * come from the app's port slots (container.c), fixed ones exactly as
 * asked. The tasks of one offer leave in one ACCEPT built in protobuf, their
 * TaskInfos on their app's template (taskinfo.c). Offers that launch nothing are declined
 * with --decline_offer_duration; when nothing is missing relay suppresses
 * offers, and tasks.c revives them when a need appears.
 */
#include "relay.h"

#include "ids.h"
#include "json.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

#include <arpa/inet.h>
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
		/* time-ordered, as Marathon's: the records of tasks launched together lie together */
		uuid = bt_uuid_new_ordered();
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

/* ACCEPT the offer with a LAUNCH of the tasks; the call is packed at once */
static void accept_offer(struct relay *r, const Mesos__V1__Offer *o, struct relay_launch **launches,
    size_t n)
{
	Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
	Mesos__V1__Scheduler__Call__Accept acc = MESOS__V1__SCHEDULER__CALL__ACCEPT__INIT;
	Mesos__V1__Offer__Operation op = MESOS__V1__OFFER__OPERATION__INIT, *ops[1] = { &op };
	Mesos__V1__Offer__Operation__Launch launch = MESOS__V1__OFFER__OPERATION__LAUNCH__INIT;
	Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;
	Mesos__V1__OfferID *ids[1] = { o->id };
	Mesos__V1__TaskInfo **infos = xcalloc(n, sizeof *infos);
	size_t i;

	for (i = 0; i < n; i++)
		infos[i] = relay_launch_task_info(launches[i]);
	launch.n_task_infos = n;
	launch.task_infos = infos;
	op.has_type = true;
	op.type = MESOS__V1__OFFER__OPERATION__TYPE__LAUNCH;
	op.launch = &launch;
	filters.has_refuse_seconds = true;
	filters.refuse_seconds = 1.0;
	acc.n_offer_ids = 1;
	acc.offer_ids = ids;
	acc.n_operations = 1;
	acc.operations = ops;
	acc.filters = &filters;
	call.has_type = true;
	call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT;
	call.accept = &acc;
	relay_call_pb(r, &call);
	free(infos);
}

/*
 * Fit tasks of every app into the offer and accept it; false when nothing
 * fits. `left` offers of this event remain, this one included: an app
 * takes its share of what it misses from each.
 */
static bool match_offer(struct relay *r, const Mesos__V1__Offer *o, struct avail *a,
    size_t left)
{
	struct relay_offer_role role = { a->role, a->alloc_role };
	struct relay_launch **launches = NULL;
	size_t n = 0, cap = 0;
	struct relay_app *app;
	double now = bt_now();
	uint64_t ports[256];

	TAILQ_FOREACH(app, &r->apps, entry) {
		int want = relay_app_want(r, app), launched = 0;
		if (want <= 0 && app->offer_stats != NULL)
			relay_offer_stats_reset(app);           /* the launch attempt is over */
		if (want <= 0 || now < app->launch_not_before || !relay_launch_ready(app))
			continue;
		want = (int)(((size_t)want + left - 1) / left);
		while (want > 0 && app->nports <= 256 && fits(app, a) && relay_placement_ok(r, app, o) &&
		    pick_ports(app, a, ports)) {
			struct relay_task *t = new_task(r, app, o, ports);
			struct relay_launch *l;
			a->cpus -= app->cpus;
			a->mem -= app->mem;
			a->disk -= app->disk;
			relay_task_insert(r, t);
			relay_state_save_task(r, t);
			if ((l = relay_launch_new(app, t, &role)) != NULL) {
				if (n == cap) {
					cap = cap ? cap * 2 : 16;
					launches = xreallocarray(launches, cap, sizeof *launches);
				}
				launches[n++] = l;
			}
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
	if (n > 0)
		accept_offer(r, o, launches, n);
	for (size_t i = 0; i < n; i++)
		relay_launch_free(launches[i]);
	free(launches);
	return n > 0;
}

/*
 * An OFFERS event is matched a slice of OFFERS_SLICE seconds at a time.
 * The first event to a framework holds an offer for every agent, and
 * matching ten thousand offers with a hundred thousand missing instances
 * takes seconds; done at once, the master and the agents would wait for
 * all of it before the first launch. So each slice ends the batch (its
 * tasks are committed and their ACCEPTs leave once on disk) and the rest
 * of the event waits for the next loop turn, while the master launches
 * what the slice accepted. A big event is kept that long: scheduler.c
 * unpacks one on the heap and hands it over (relay_offers_take); one
 * decoded for the moment only is copied.
 */
#define OFFERS_SLICE 0.005
#define OFFERS_AT_ONCE 64               /* offers matched without a copy, at once */

struct relay_offers_job {
	TAILQ_ENTRY(relay_offers_job) entry;
	Mesos__V1__Scheduler__Event__Offers *offers;    /* owned */
	size_t next;                    /* the first offer not matched yet */
};

static TAILQ_HEAD(, relay_offers_job) jobs = TAILQ_HEAD_INITIALIZER(jobs);
static struct event *jobs_ev;

/* match offers[from, to); decline what fits nothing, in one call */
static void match_range(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers,
    size_t from, size_t *to, double until)
{
	json_t *declines = json_array();
	struct avail a;
	size_t i;

	for (i = from; i < *to; i++) {
		const Mesos__V1__Offer *o = offers->offers[i];

		if (until > 0 && i > from && bt_monotonic() >= until)
			break;
		r->offers_seen++;
		relay_placement_note_offer(o);
		offer_avail(r, o, &a);
		if (!match_offer(r, o, &a, offers->n_offers - i)) {
			json_array_append_new(declines, json_pack("{s:s}", "value", o->id->value));
			r->offers_declined++;
		}
		free(a.role);
		free(a.alloc_role);
	}
	*to = i;
	if (json_array_size(declines) > 0)
		relay_call(r, json_pack("{s:s, s:{s:o, s:{s:f}}}", "type", "DECLINE", "decline",
		    "offer_ids", declines, "filters", "refuse_seconds", relay_decline_duration(r)));
	else
		json_decref(declines);
}

static void job_free(struct relay_offers_job *job)
{
	TAILQ_REMOVE(&jobs, job, entry);
	protobuf_c_message_free_unpacked(&job->offers->base, NULL);
	free(job);
}

/* one slice of the oldest event; the next one on the next loop turn */
static void jobs_cb(evutil_socket_t unused, short what, void *arg)
{
	struct relay *r = arg;
	struct relay_offers_job *job = TAILQ_FIRST(&jobs);
	struct timeval now = { 0, 0 };
	size_t to;

	if (job == NULL)
		return;
	relay_batch_begin(r);
	to = job->offers->n_offers;
	match_range(r, job->offers, job->next, &to, bt_monotonic() + OFFERS_SLICE);
	job->next = to;
	if (job->next == job->offers->n_offers) {
		job_free(job);
		relay_converge(r);
	}
	relay_batch_end(r);
	if (!TAILQ_EMPTY(&jobs))
		evtimer_add(jobs_ev, &now);
}

/* match at once when small and nothing waits; true when done */
static bool offers_now(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers)
{
	size_t to = offers->n_offers;

	if (offers->n_offers > OFFERS_AT_ONCE || !TAILQ_EMPTY(&jobs))
		return false;
	match_range(r, offers, 0, &to, 0);
	relay_converge(r);
	return true;
}

/* queue offers (owned) and match their first slice if they are first in line */
static void offers_queue(struct relay *r, Mesos__V1__Scheduler__Event__Offers *offers)
{
	struct relay_offers_job *job = xcalloc(1, sizeof *job);

	job->offers = offers;
	TAILQ_INSERT_TAIL(&jobs, job, entry);
	if (jobs_ev == NULL)
		jobs_ev = evtimer_new(r->base, jobs_cb, r);
	if (TAILQ_FIRST(&jobs) == job)
		jobs_cb(-1, 0, r);      /* the first slice now: it is what the event is for */
}

void relay_offers(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers)
{
	if (!offers_now(r, offers))
		offers_queue(r, (Mesos__V1__Scheduler__Event__Offers *)bt_pb_copy(&offers->base));
}

void relay_offers_take(struct relay *r, Mesos__V1__Scheduler__Event *ev)
{
	Mesos__V1__Scheduler__Event__Offers *offers = ev->offers;

	if (offers == NULL || offers_now(r, offers)) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return;
	}
	ev->offers = NULL;      /* a submessage of its own: it outlives the event */
	protobuf_c_message_free_unpacked(&ev->base, NULL);
	offers_queue(r, offers);
}

/* the subscription is gone, and its offers with it */
void relay_offers_drop(struct relay *r)
{
	while (!TAILQ_EMPTY(&jobs))
		job_free(TAILQ_FIRST(&jobs));
	if (jobs_ev != NULL) {
		event_free(jobs_ev);
		jobs_ev = NULL;
	}
}
