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
 * TaskInfos on their app's template (taskinfo.c). Offers that launch nothing are held
 * a moment for a need to come, then declined with --decline_offer_duration
 * (see "held" below); when nothing is missing relay suppresses offers, and
 * tasks.c revives them when a need appears that the held ones do not meet.
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
 * fits; *wanted tells whether any app could launch at all. `left` offers
 * of this event remain, this one included: an app takes its share of what
 * it misses from each, but no less than 1/SPREAD_MAX of what it missed
 * when the event's matching began (its quota for the event): spread over
 * more agents than that, a big app would not start sooner, while each
 * offer it takes costs an ACCEPT, a launch event to an agent and the offer
 * itself, which the master makes again.
 */
#define SPREAD_MAX 100
static unsigned match_round;    /* the event being matched: an app's quota holds for it */
static unsigned match_rounds;   /* events matched so far */

static bool match_offer(struct relay *r, const Mesos__V1__Offer *o, struct avail *a,
    size_t left, bool *wanted)
{
	struct relay_offer_role role = { a->role, a->alloc_role };
	struct relay_launch **launches = NULL;
	size_t n = 0, cap = 0;
	struct relay_app *app;
	double now = bt_now();
	uint64_t ports[256];

	TAILQ_FOREACH(app, &r->apps, entry) {
		int want = relay_app_want(r, app), missing = want, launched = 0;
		if (want <= 0 && app->offer_stats != NULL)
			relay_offer_stats_reset(app);           /* the launch attempt is over */
		if (want <= 0 || now < app->launch_not_before || !relay_launch_ready(app))
			continue;
		*wanted = true;
		if (app->spread_round != match_round) {
			app->spread_round = match_round;
			app->spread_quota = (missing + SPREAD_MAX - 1) / SPREAD_MAX;
		}
		want = (int)(((size_t)want + left - 1) / left);
		if (want < app->spread_quota)
			want = app->spread_quota < missing ? app->spread_quota : missing;
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
 *
 * Offers nothing was launched on are held, not declined, for
 * --offer_hold_duration from when they came. A need that appears
 * meanwhile -- an app POSTed a moment after another, a task to replace --
 * is matched against them at once (relay_offers_rematch) instead of a
 * REVIVE, after which the master would offer every agent again: on a big
 * cluster ten thousand offers to make, match and decline for each app.
 * What is held longer is declined in one call; a new subscription forgets
 * what is held, a RESCIND drops it.
 */
#define OFFERS_SLICE 0.005
#define OFFERS_AT_ONCE 64               /* offers matched without a copy, at once */
#define HOLD_CHECK 0.25                 /* seconds: the longest between looks at held offers */

struct relay_offers_job {
	TAILQ_ENTRY(relay_offers_job) entry;
	Mesos__V1__Scheduler__Event__Offers *offers;    /* owned */
	double *since;                  /* held offers matched again: when each came; else NULL */
	size_t next;                    /* the first offer not matched yet */
	unsigned round;                 /* apps' spread quotas hold for the whole event */
};

static TAILQ_HEAD(, relay_offers_job) jobs = TAILQ_HEAD_INITIALIZER(jobs);
static struct event *jobs_ev;

struct held_offer {
	Mesos__V1__Offer *offer;        /* owned */
	double since;                   /* monotonic: when the master sent it */
};

static struct {
	struct held_offer *v;
	size_t n, cap;
	struct event *expire_ev, *rematch_ev;
	bool rematching;                /* a job matches what was held */
	bool rematched;                 /* that job is done: read once by relay_offers_rematched */
} held;

/* DECLINE the offers of ids[0, n) in one call, packed at once */
static void decline_offers(struct relay *r, Mesos__V1__OfferID **ids, size_t n)
{
	Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
	Mesos__V1__Scheduler__Call__Decline decline = MESOS__V1__SCHEDULER__CALL__DECLINE__INIT;
	Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;

	filters.has_refuse_seconds = true;
	filters.refuse_seconds = relay_decline_duration(r);
	decline.n_offer_ids = n;
	decline.offer_ids = ids;
	decline.filters = &filters;
	call.has_type = true;
	call.type = MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE;
	call.decline = &decline;
	relay_call_pb(r, &call);
	r->offers_declined += n;
}

/* how often held offers are looked at for expiry */
static struct timeval check_interval(const struct relay *r)
{
	return bt_timeval(r->cfg.offer_hold_duration < HOLD_CHECK ? r->cfg.offer_hold_duration :
	    HOLD_CHECK);
}

/* decline what was held --offer_hold_duration */
static void expire_cb(evutil_socket_t unused, short what, void *arg)
{
	struct relay *r = arg;
	Mesos__V1__OfferID **ids = xcalloc(held.n + 1, sizeof *ids);
	Mesos__V1__Offer **gone = xcalloc(held.n + 1, sizeof *gone);
	double now = bt_monotonic();
	size_t i, kept = 0, n = 0;
	struct timeval tv = check_interval(r);

	for (i = 0; i < held.n; i++) {
		if (now - held.v[i].since < r->cfg.offer_hold_duration) {
			held.v[kept++] = held.v[i];
			continue;
		}
		gone[n] = held.v[i].offer;
		ids[n++] = held.v[i].offer->id;
	}
	held.n = kept;
	if (n > 0)
		decline_offers(r, ids, n);
	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&gone[i]->base, NULL);
	free(gone);
	free(ids);
	if (held.n > 0)
		evtimer_add(held.expire_ev, &tv);
}

/* keep o (owned) until a need comes or --offer_hold_duration after since */
static void hold(struct relay *r, Mesos__V1__Offer *o, double since)
{
	struct timeval tv = check_interval(r);

	if (held.n == held.cap) {
		held.cap = held.cap ? held.cap * 2 : 64;
		held.v = xreallocarray(held.v, held.cap, sizeof *held.v);
	}
	held.v[held.n++] = (struct held_offer){ o, since };
	if (held.expire_ev == NULL)
		held.expire_ev = evtimer_new(r->base, expire_cb, r);
	if (!evtimer_pending(held.expire_ev, NULL))
		evtimer_add(held.expire_ev, &tv);
}

/*
 * Match offers[from, to); hold what fits nothing. owned: the offers belong
 * to a job, and those held are taken out of it; else they are copied.
 * since: the offers were held before (when each came), else they are new.
 */
static void match_range(struct relay *r, Mesos__V1__Scheduler__Event__Offers *offers,
    size_t from, size_t *to, double until, bool owned, const double *since)
{
	double now = bt_monotonic();
	struct avail a;
	size_t i;
	bool wanted = true;

	for (i = from; i < *to; i++) {
		Mesos__V1__Offer *o = offers->offers[i];
		bool used = false;

		if (until > 0 && i > from && bt_monotonic() >= until)
			break;
		if (since == NULL) {
			r->offers_seen++;
			relay_placement_note_offer(o);
		}
		if (wanted) {           /* once no app can launch, the rest is only held */
			wanted = false;
			offer_avail(r, o, &a);
			used = match_offer(r, o, &a, offers->n_offers - i, &wanted);
			free(a.role);
			free(a.alloc_role);
		}
		if (used)
			continue;
		if (owned) {
			hold(r, o, since != NULL ? since[i] : now);
			offers->offers[i] = NULL;       /* the job no longer frees it */
		} else {
			hold(r, (Mesos__V1__Offer *)bt_pb_copy(&o->base), now);
		}
	}
	*to = i;
}

static void job_free(struct relay_offers_job *job)
{
	TAILQ_REMOVE(&jobs, job, entry);
	protobuf_c_message_free_unpacked(&job->offers->base, NULL);
	free(job->since);
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
	match_round = job->round;
	match_range(r, job->offers, job->next, &to, bt_monotonic() + OFFERS_SLICE, true,
	    job->since);
	job->next = to;
	if (job->next == job->offers->n_offers) {
		if (job->since != NULL) {
			held.rematching = false;
			held.rematched = true;
		}
		job_free(job);
		relay_converge(r);
	}
	relay_batch_end(r);
	if (!TAILQ_EMPTY(&jobs))
		evtimer_add(jobs_ev, &now);
}

/* match at once when small and nothing waits; true when done (owned: as match_range) */
static bool offers_now(struct relay *r, Mesos__V1__Scheduler__Event__Offers *offers, bool owned)
{
	size_t to = offers->n_offers;

	if (offers->n_offers > OFFERS_AT_ONCE || !TAILQ_EMPTY(&jobs))
		return false;
	match_round = ++match_rounds;
	match_range(r, offers, 0, &to, 0, owned, NULL);
	relay_converge(r);
	return true;
}

/* queue offers (owned) and match their first slice if they are first in line */
static void offers_queue(struct relay *r, Mesos__V1__Scheduler__Event__Offers *offers,
    double *since)
{
	struct relay_offers_job *job = xcalloc(1, sizeof *job);

	job->offers = offers;
	job->since = since;
	job->round = ++match_rounds;
	TAILQ_INSERT_TAIL(&jobs, job, entry);
	if (jobs_ev == NULL)
		jobs_ev = evtimer_new(r->base, jobs_cb, r);
	if (TAILQ_FIRST(&jobs) == job)
		jobs_cb(-1, 0, r);      /* the first slice now: it is what the event is for */
}

void relay_offers(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers)
{
	/* decoded for the moment only: what is held or queued is copied */
	if (!offers_now(r, (Mesos__V1__Scheduler__Event__Offers *)offers, false))
		offers_queue(r, (Mesos__V1__Scheduler__Event__Offers *)bt_pb_copy(&offers->base),
		    NULL);
}

void relay_offers_take(struct relay *r, Mesos__V1__Scheduler__Event *ev)
{
	Mesos__V1__Scheduler__Event__Offers *offers = ev->offers;

	if (offers == NULL || offers_now(r, offers, true)) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return;
	}
	ev->offers = NULL;      /* a submessage of its own: it outlives the event */
	protobuf_c_message_free_unpacked(&ev->base, NULL);
	offers_queue(r, offers, NULL);
}

/* the held offers, matched again as one event of their own */
static void rematch_cb(evutil_socket_t unused, short what, void *arg)
{
	struct relay *r = arg;
	Mesos__V1__Scheduler__Event__Offers *offers;
	double *since;
	size_t i;

	relay_batch_begin(r);
	if (held.n == 0) {              /* expired meanwhile */
		held.rematching = false;
		held.rematched = true;
		relay_converge(r);
		relay_batch_end(r);
		return;
	}
	offers = xmalloc(sizeof *offers);
	mesos__v1__scheduler__event__offers__init(offers);
	offers->n_offers = held.n;
	offers->offers = xcalloc(held.n, sizeof *offers->offers);
	since = xcalloc(held.n, sizeof *since);
	for (i = 0; i < held.n; i++) {
		offers->offers[i] = held.v[i].offer;
		since[i] = held.v[i].since;
	}
	held.n = 0;
	offers_queue(r, offers, since);
	relay_batch_end(r);
}

bool relay_offers_rematch(struct relay *r)
{
	if (held.rematching)
		return true;            /* its end converges again */
	if (held.n == 0)
		return false;
	if (held.rematch_ev == NULL)
		held.rematch_ev = event_new(r->base, -1, 0, rematch_cb, r);
	held.rematching = true;
	event_active(held.rematch_ev, 0, 0);
	return true;
}

bool relay_offers_rematched(void)
{
	bool was = held.rematched;

	held.rematched = false;
	return was;
}

void relay_offers_rescind(struct relay *r, const char *offer_id)
{
	size_t i;

	for (i = 0; i < held.n; i++)
		if (strcmp(held.v[i].offer->id->value, offer_id) == 0) {
			protobuf_c_message_free_unpacked(&held.v[i].offer->base, NULL);
			held.v[i] = held.v[--held.n];
			return;
		}
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
	while (held.n > 0)
		protobuf_c_message_free_unpacked(&held.v[--held.n].offer->base, NULL);
	free(held.v);
	if (held.expire_ev != NULL)
		event_free(held.expire_ev);
	if (held.rematch_ev != NULL)
		event_free(held.rematch_ev);
	memset(&held, 0, sizeof held);
}
