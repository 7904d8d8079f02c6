/*
 * allocator.c -- DRF allocation of the agents' free resources to frameworks.
 *
 * The allocator knows agents and frameworks only by integer handles (slots
 * in two arrays, reused after removal) and by the user pointers it was
 * given. Each agent has a free pool and the cpus, mem and disk of its
 * total (the caller keeps the agent's id and total); each framework the sum of
 * cpus, mem and disk allocated to it (offered or in use by tasks), from
 * which its dominant share is computed: the largest of allocated / cluster
 * total over cpus, mem and disk (reference §7.2).
 *
 * An allocation run (allocator_allocate) expires filters, sorts the active,
 * unsuppressed frameworks by (share, id), shuffles the active agents, and
 * offers all of each agent's free resources to the first framework in that
 * order that does not filter the agent. The framework's share grows, so it
 * moves right in the order (binary search plus memmove); nothing is sorted
 * twice. An agent is offerable when it has at least 0.01 cpus or 32 MB of
 * memory free (Mesos's MIN_CPUS and MIN_MEM).
 *
 * Filters: a framework that declines an agent's resources for N seconds
 * gets a bit set in its bitmap indexed by agent handle, an entry in a small
 * open-addressing table (agent -> expiry) and an entry in a min-heap of
 * expiries. Checking a filter during a run is a bit test; expiry pops the
 * heap and clears the bit unless the table says a later filter replaced it.
 * So a run costs O(frameworks log frameworks + agents + filter checks).
 */
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmalloc.h"

#define MIN_CPUS 10                     /* thousandths: 0.01 cpus */
#define MIN_MEM 32000                   /* thousandths: 32 MB */
#define RUN_HISTORY 1024

struct filter_slot {
	int agent;                      /* -1: empty table slot */
	double until;
};

/* the caller keeps the agent's id and total; the allocator keeps what changes */
struct alloc_agent {
	void *user;
	bool used, active;
	struct bt_resources free;
	int64_t cpus, mem, disk;        /* totals in thousandths */
};

struct alloc_framework {
	char *id;
	void *user;
	bool used, active, suppressed;
	int64_t cpus, mem, disk;        /* allocated, thousandths */
	double share;
	uint64_t *bits;                 /* filtered agents */
	size_t nwords;
	struct filter_slot *heap;       /* min-heap by until */
	size_t nheap, capheap;
	struct filter_slot *tab;        /* agent -> until, linear probing */
	size_t tabcap, tabn;
};

struct allocator {
	double interval;
	struct alloc_agent *agents;
	size_t nagents, capagents;
	int *free_agents;
	size_t nfree_agents;
	struct alloc_framework *fws;
	size_t nfws, capfws;
	int *free_fws;
	size_t nfree_fws;
	int64_t total_cpus, total_mem, total_disk;
	int *order;
	size_t norder;
	int *agent_order;
	uint64_t rng;
	uint64_t runs;
	double run_ms[RUN_HISTORY];
	double last_ms;
};

struct allocator *allocator_new(double allocation_interval)
{
	struct allocator *a = xcalloc(1, sizeof *a);

	a->interval = allocation_interval;
	a->rng = (uint64_t)(bt_monotonic() * 1e9) ^ 0x9e3779b97f4a7c15ULL;
	if (a->rng == 0)
		a->rng = 1;
	return a;
}

static void framework_filters_release(struct alloc_framework *f)
{
	free(f->bits);
	free(f->heap);
	free(f->tab);
	f->bits = NULL;
	f->heap = f->tab = NULL;
	f->nwords = f->nheap = f->capheap = f->tabcap = f->tabn = 0;
}

void allocator_free(struct allocator *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->nagents; i++) {
		bt_resources_release(&a->agents[i].free);
	}
	for (size_t i = 0; i < a->nfws; i++) {
		free(a->fws[i].id);
		framework_filters_release(&a->fws[i]);
	}
	free(a->agents);
	free(a->free_agents);
	free(a->fws);
	free(a->free_fws);
	free(a->order);
	free(a->agent_order);
	free(a);
}

static struct alloc_agent *agent_at(const struct allocator *a, int h)
{
	if (h < 0 || (size_t)h >= a->nagents || !a->agents[h].used)
		return NULL;
	return &a->agents[h];
}

static struct alloc_framework *fw_at(const struct allocator *a, int h)
{
	if (h < 0 || (size_t)h >= a->nfws || !a->fws[h].used)
		return NULL;
	return &a->fws[h];
}

/* --- filters --- */

static size_t tab_find(const struct alloc_framework *f, int agent)
{
	size_t mask = f->tabcap - 1;
	size_t i = ((size_t)agent * 2654435761u) & mask;

	while (f->tab[i].agent != -1 && f->tab[i].agent != agent)
		i = (i + 1) & mask;
	return i;
}

static void tab_put(struct alloc_framework *f, int agent, double until)
{
	size_t i;

	if ((f->tabn + 1) * 2 > f->tabcap) {
		struct filter_slot *old = f->tab;
		size_t oldcap = f->tabcap;
		f->tabcap = oldcap ? oldcap * 2 : 16;
		f->tab = xmalloc(f->tabcap * sizeof *f->tab);
		for (size_t k = 0; k < f->tabcap; k++)
			f->tab[k].agent = -1;
		f->tabn = 0;
		for (size_t k = 0; k < oldcap; k++) {
			if (old[k].agent != -1) {
				f->tab[tab_find(f, old[k].agent)] = old[k];
				f->tabn++;
			}
		}
		free(old);
	}
	i = tab_find(f, agent);
	if (f->tab[i].agent == -1)
		f->tabn++;
	f->tab[i].agent = agent;
	f->tab[i].until = until;
}

static struct filter_slot *tab_get(const struct alloc_framework *f, int agent)
{
	size_t i;

	if (f->tabcap == 0)
		return NULL;
	i = tab_find(f, agent);
	return f->tab[i].agent == agent ? &f->tab[i] : NULL;
}

/* backward-shift deletion keeps probe chains intact without tombstones */
static void tab_del(struct alloc_framework *f, int agent)
{
	size_t mask, i, j;

	if (f->tabcap == 0)
		return;
	mask = f->tabcap - 1;
	i = tab_find(f, agent);
	if (f->tab[i].agent != agent)
		return;
	f->tab[i].agent = -1;
	f->tabn--;
	for (j = (i + 1) & mask; f->tab[j].agent != -1; j = (j + 1) & mask) {
		size_t home = ((size_t)f->tab[j].agent * 2654435761u) & mask;
		/* move j into the hole at i when its home is not in (i, j] */
		bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
		if (!between) {
			f->tab[i] = f->tab[j];
			f->tab[j].agent = -1;
			i = j;
		}
	}
}

static void bit_set(struct alloc_framework *f, int agent, bool on)
{
	size_t w = (size_t)agent / 64;

	if (w >= f->nwords) {
		if (!on)
			return;
		size_t n = w + 1 > f->nwords * 2 ? w + 1 : f->nwords * 2;
		f->bits = xreallocarray(f->bits, n, sizeof *f->bits);
		memset(f->bits + f->nwords, 0, (n - f->nwords) * sizeof *f->bits);
		f->nwords = n;
	}
	if (on)
		f->bits[w] |= 1ULL << (agent % 64);
	else
		f->bits[w] &= ~(1ULL << (agent % 64));
}

static bool bit_get(const struct alloc_framework *f, int agent)
{
	size_t w = (size_t)agent / 64;

	return w < f->nwords && (f->bits[w] & (1ULL << (agent % 64))) != 0;
}

static void heap_push(struct alloc_framework *f, int agent, double until)
{
	size_t i;

	if (f->nheap == f->capheap) {
		f->capheap = f->capheap ? f->capheap * 2 : 16;
		f->heap = xreallocarray(f->heap, f->capheap, sizeof *f->heap);
	}
	i = f->nheap++;
	while (i > 0 && f->heap[(i - 1) / 2].until > until) {
		f->heap[i] = f->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	f->heap[i].agent = agent;
	f->heap[i].until = until;
}

static struct filter_slot heap_pop(struct alloc_framework *f)
{
	struct filter_slot top = f->heap[0], last = f->heap[--f->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= f->nheap)
			break;
		if (c + 1 < f->nheap && f->heap[c + 1].until < f->heap[c].until)
			c++;
		if (f->heap[c].until >= last.until)
			break;
		f->heap[i] = f->heap[c];
		i = c;
	}
	if (f->nheap > 0)
		f->heap[i] = last;
	return top;
}

static void filters_expire(struct alloc_framework *f, double now)
{
	while (f->nheap > 0 && f->heap[0].until <= now) {
		struct filter_slot e = heap_pop(f);
		struct filter_slot *s = tab_get(f, e.agent);
		if (s != NULL && s->until <= now) {
			tab_del(f, e.agent);
			bit_set(f, e.agent, false);
		}
	}
}

/* --- agents and frameworks --- */

static int take_slot(int *free_list, size_t *nfree)
{
	if (*nfree == 0)
		return -1;
	return free_list[--*nfree];
}

int allocator_add_agent(struct allocator *a, const char *id, const struct bt_resources *total,
    void *user)
{
	int h = take_slot(a->free_agents, &a->nfree_agents);
	struct alloc_agent *ag;

	if (h < 0) {
		if (a->nagents == a->capagents) {
			a->capagents = a->capagents ? a->capagents * 2 : 64;
			a->agents = xreallocarray(a->agents, a->capagents, sizeof *a->agents);
			a->free_agents = xreallocarray(a->free_agents, a->capagents, sizeof *a->free_agents);
			a->agent_order = xreallocarray(a->agent_order, a->capagents,
			    sizeof *a->agent_order);
		}
		h = (int)a->nagents++;
	}
	ag = &a->agents[h];
	memset(ag, 0, sizeof *ag);
	ag->user = user;
	ag->used = ag->active = true;
	bt_resources_copy(&ag->free, total);
	ag->cpus = bt_resources_scalar(total, "cpus");
	ag->mem = bt_resources_scalar(total, "mem");
	ag->disk = bt_resources_scalar(total, "disk");
	a->total_cpus += ag->cpus;
	a->total_mem += ag->mem;
	a->total_disk += ag->disk;
	return h;
}

void allocator_remove_agent(struct allocator *a, int agent)
{
	struct alloc_agent *ag = agent_at(a, agent);

	if (ag == NULL)
		return;
	a->total_cpus -= ag->cpus;
	a->total_mem -= ag->mem;
	a->total_disk -= ag->disk;
	for (size_t i = 0; i < a->nfws; i++) {
		struct alloc_framework *f = &a->fws[i];
		if (f->used && bit_get(f, agent)) {
			bit_set(f, agent, false);
			tab_del(f, agent);
		}
	}
	bt_resources_release(&ag->free);
	memset(ag, 0, sizeof *ag);
	a->free_agents[a->nfree_agents++] = agent;
}

void allocator_activate_agent(struct allocator *a, int agent, bool active)
{
	struct alloc_agent *ag = agent_at(a, agent);

	if (ag != NULL)
		ag->active = active;
}

int allocator_add_framework(struct allocator *a, const char *id, void *user)
{
	int h = take_slot(a->free_fws, &a->nfree_fws);
	struct alloc_framework *f;

	if (h < 0) {
		if (a->nfws == a->capfws) {
			a->capfws = a->capfws ? a->capfws * 2 : 16;
			a->fws = xreallocarray(a->fws, a->capfws, sizeof *a->fws);
			a->free_fws = xreallocarray(a->free_fws, a->capfws, sizeof *a->free_fws);
			a->order = xreallocarray(a->order, a->capfws, sizeof *a->order);
		}
		h = (int)a->nfws++;
	}
	f = &a->fws[h];
	memset(f, 0, sizeof *f);
	f->id = xstrdup(id);
	f->user = user;
	f->used = true;
	f->active = false;
	return h;
}

void allocator_remove_framework(struct allocator *a, int framework)
{
	struct alloc_framework *f = fw_at(a, framework);

	if (f == NULL)
		return;
	free(f->id);
	framework_filters_release(f);
	memset(f, 0, sizeof *f);
	a->free_fws[a->nfree_fws++] = framework;
}

void allocator_activate_framework(struct allocator *a, int framework, bool active)
{
	struct alloc_framework *f = fw_at(a, framework);

	if (f != NULL)
		f->active = active;
}

void allocator_suppress(struct allocator *a, int framework)
{
	struct alloc_framework *f = fw_at(a, framework);

	if (f != NULL)
		f->suppressed = true;
}

void allocator_revive(struct allocator *a, int framework)
{
	struct alloc_framework *f = fw_at(a, framework);

	if (f == NULL)
		return;
	f->suppressed = false;
	if (f->bits != NULL)
		memset(f->bits, 0, f->nwords * sizeof *f->bits);
	f->nheap = 0;
	if (f->tab != NULL) {
		for (size_t i = 0; i < f->tabcap; i++)
			f->tab[i].agent = -1;
	}
	f->tabn = 0;
}

static void charge(struct alloc_framework *f, const struct bt_resources *res, int sign)
{
	f->cpus += sign * bt_resources_scalar(res, "cpus");
	f->mem += sign * bt_resources_scalar(res, "mem");
	f->disk += sign * bt_resources_scalar(res, "disk");
	if (f->cpus < 0)
		f->cpus = 0;
	if (f->mem < 0)
		f->mem = 0;
	if (f->disk < 0)
		f->disk = 0;
}

void allocator_use(struct allocator *a, int agent, int framework, const struct bt_resources *res)
{
	struct alloc_agent *ag = agent_at(a, agent);
	struct alloc_framework *f = fw_at(a, framework);

	if (ag != NULL)
		(void)bt_resources_subtract(&ag->free, res);
	if (f != NULL)
		charge(f, res, 1);
}

void allocator_recover(struct allocator *a, int agent, int framework,
    const struct bt_resources *res, double refuse_seconds, double now)
{
	struct alloc_agent *ag = agent_at(a, agent);
	struct alloc_framework *f = fw_at(a, framework);

	if (ag != NULL)
		bt_resources_add(&ag->free, res);
	if (f == NULL)
		return;
	charge(f, res, -1);
	if (ag != NULL && refuse_seconds > 0) {
		double until = now + (refuse_seconds > a->interval ? refuse_seconds : a->interval);
		struct filter_slot *s = tab_get(f, agent);
		if (s != NULL && s->until >= until)
			return;
		bit_set(f, agent, true);
		tab_put(f, agent, until);
		heap_push(f, agent, until);
	}
}

/* --- allocation --- */

static double share_of(const struct allocator *a, const struct alloc_framework *f)
{
	double s = 0, x;

	if (a->total_cpus > 0 && (x = (double)f->cpus / (double)a->total_cpus) > s)
		s = x;
	if (a->total_mem > 0 && (x = (double)f->mem / (double)a->total_mem) > s)
		s = x;
	if (a->total_disk > 0 && (x = (double)f->disk / (double)a->total_disk) > s)
		s = x;
	return s;
}

static int fw_cmp(const struct allocator *a, int x, int y)
{
	const struct alloc_framework *f = &a->fws[x], *g = &a->fws[y];

	if (f->share < g->share)
		return -1;
	if (f->share > g->share)
		return 1;
	return strcmp(f->id, g->id);
}

static const struct allocator *sort_ctx;

static int order_cmp(const void *x, const void *y)
{
	return fw_cmp(sort_ctx, *(const int *)x, *(const int *)y);
}

/* the framework at order[k] grew its share: move it right to its place */
static void reposition(struct allocator *a, size_t k)
{
	int f = a->order[k];
	size_t lo = k + 1, hi = a->norder;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fw_cmp(a, a->order[mid], f) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* f goes just before index lo */
	if (lo - 1 > k) {
		memmove(&a->order[k], &a->order[k + 1], (lo - 1 - k) * sizeof *a->order);
		a->order[lo - 1] = f;
	}
}

static uint64_t next_random(struct allocator *a)
{
	a->rng ^= a->rng << 13;
	a->rng ^= a->rng >> 7;
	a->rng ^= a->rng << 17;
	return a->rng;
}

static bool offerable(const struct alloc_agent *ag)
{
	return bt_resources_scalar(&ag->free, "cpus") >= MIN_CPUS ||
	    bt_resources_scalar(&ag->free, "mem") >= MIN_MEM;
}

static void allocate_agent(struct allocator *a, int agent, allocator_offer_cb cb, void *arg)
{
	struct alloc_agent *ag = &a->agents[agent];
	struct bt_resources res;

	for (size_t k = 0; k < a->norder; k++) {
		struct alloc_framework *f = &a->fws[a->order[k]];
		if (bit_get(f, agent))
			continue;
		res = ag->free;
		bt_resources_init(&ag->free);
		charge(f, &res, 1);
		f->share = share_of(a, f);
		reposition(a, k);
		cb(ag->user, f->user, &res, arg);
		bt_resources_release(&res);
		return;
	}
}

void allocator_allocate(struct allocator *a, double now, allocator_offer_cb cb, void *arg)
{
	double t0 = bt_monotonic();
	size_t nagents = 0;

	a->norder = 0;
	for (size_t i = 0; i < a->nfws; i++) {
		struct alloc_framework *f = &a->fws[i];
		if (!f->used)
			continue;
		filters_expire(f, now);
		if (!f->active || f->suppressed)
			continue;
		f->share = share_of(a, f);
		a->order[a->norder++] = (int)i;
	}
	if (a->norder > 0) {
		sort_ctx = a;
		qsort(a->order, a->norder, sizeof *a->order, order_cmp);
		for (size_t i = 0; i < a->nagents; i++) {
			if (a->agents[i].used && a->agents[i].active)
				a->agent_order[nagents++] = (int)i;
		}
		for (size_t i = nagents; i > 1; i--) {
			size_t j = next_random(a) % i;
			int t = a->agent_order[i - 1];
			a->agent_order[i - 1] = a->agent_order[j];
			a->agent_order[j] = t;
		}
		for (size_t i = 0; i < nagents; i++) {
			if (offerable(&a->agents[a->agent_order[i]]))
				allocate_agent(a, a->agent_order[i], cb, arg);
		}
	}
	a->last_ms = (bt_monotonic() - t0) * 1000.0;
	a->run_ms[a->runs % RUN_HISTORY] = a->last_ms;
	a->runs++;
}

bool allocator_filtered(const struct allocator *a, int framework, int agent)
{
	const struct alloc_framework *f = fw_at(a, framework);

	return f != NULL && agent >= 0 && bit_get(f, agent);
}

bool allocator_suppressed(const struct allocator *a, int framework)
{
	const struct alloc_framework *f = fw_at(a, framework);

	return f != NULL && f->suppressed;
}

double allocator_share(const struct allocator *a, int framework)
{
	const struct alloc_framework *f = fw_at(a, framework);

	return f != NULL ? share_of(a, f) : 0;
}

const struct bt_resources *allocator_free_resources(const struct allocator *a, int agent)
{
	const struct alloc_agent *ag = agent_at(a, agent);

	return ag != NULL ? &ag->free : NULL;
}

uint64_t allocator_runs(const struct allocator *a)
{
	return a->runs;
}

double allocator_run_ms(const struct allocator *a)
{
	return a->last_ms;
}

static int double_cmp(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;

	return p < q ? -1 : p > q;
}

double allocator_run_ms_percentile(const struct allocator *a, double pct)
{
	size_t n = a->runs < RUN_HISTORY ? (size_t)a->runs : RUN_HISTORY;
	double v[RUN_HISTORY], r;
	size_t k;

	if (n == 0)
		return 0;
	memcpy(v, a->run_ms, n * sizeof *v);
	qsort(v, n, sizeof *v, double_cmp);
	k = (size_t)(pct / 100.0 * (double)(n - 1) + 0.5);
	r = v[k < n ? k : n - 1];
	return r;
}
