/*
 * bench_allocator.c -- the allocation cycle of master/allocator.c, in process.
 *
 * For every cell of a grid of agents x frameworks it builds an allocator
 * with that many agents (cpus:2;mem:1024;disk:1024;ports(*):[31000-32000])
 * and active frameworks, then runs allocation cycles in which every offer
 * is declined with a long refuse filter, as Mesos's DeclineOffers benchmark
 * does: each framework gives back what it got and filters that agent, so
 * later cycles walk past the frameworks that filter an agent before they
 * find one that does not. The time of allocator_allocate (offer callbacks
 * included; the callback copies the offered resources as the master does)
 * is measured for warm-up + runs cycles; the declines happen between the
 * timed cycles.
 *
 * Output: one JSON object per cell and line on stdout:
 *   {"agents": N, "frameworks": F, "offers": [...], "ms": [...]}
 * with the offers made and the duration of each timed cycle (warm-ups
 * excluded).
 *
 *   bench_allocator [--agents 1000,10000] [--frameworks 1,100] [--runs 5] [--warmup 1]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../master/allocator.c"

#define AGENT_RESOURCES "cpus:2;mem:1024;disk:1024;ports(*):[31000-32000]"
#define REFUSE_SECONDS (30.0 * 24 * 3600)
#define MAX_LIST 16

struct offer {
	int agent, framework;
	struct bt_resources res;
};

struct offers {
	struct offer *v;
	size_t n, cap;
};

static void offer_cb(void *agent, void *framework, const struct bt_resources *res, void *arg)
{
	struct offers *o = arg;
	struct offer *x;

	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 1024;
		o->v = xreallocarray(o->v, o->cap, sizeof *o->v);
	}
	x = &o->v[o->n++];
	x->agent = (int)(intptr_t)agent - 1;
	x->framework = (int)(intptr_t)framework - 1;
	bt_resources_copy(&x->res, res);
}

static void decline_all(struct allocator *a, struct offers *o, double now)
{
	for (size_t i = 0; i < o->n; i++) {
		allocator_recover(a, o->v[i].agent, o->v[i].framework, &o->v[i].res,
		    REFUSE_SECONDS, now);
		bt_resources_release(&o->v[i].res);
	}
	o->n = 0;
}

static void run_cell(int nagents, int nfws, int warmup, int runs)
{
	struct allocator *a = allocator_new(1.0);
	struct bt_resources total;
	struct offers o = { NULL, 0, 0 };
	char *cause = NULL, id[64];
	double now = 1000.0;

	if (bt_resources_parse(&total, AGENT_RESOURCES, NULL, &cause) != 0) {
		fprintf(stderr, "bench_allocator: %s\n", cause);
		exit(1);
	}
	for (int i = 0; i < nagents; i++) {
		snprintf(id, sizeof id, "bench-S%d", i);
		int h = allocator_add_agent(a, id, &total, (void *)(intptr_t)(i + 1));
		if (h != i) {
			fprintf(stderr, "bench_allocator: agent handle %d for %d\n", h, i);
			exit(1);
		}
	}
	for (int i = 0; i < nfws; i++) {
		snprintf(id, sizeof id, "bench-%04d", i);
		int h = allocator_add_framework(a, id, (void *)(intptr_t)(i + 1));
		allocator_activate_framework(a, h, true);
	}
	printf("{\"agents\": %d, \"frameworks\": %d, \"offers\": [", nagents, nfws);
	double *ms = xcalloc((size_t)runs, sizeof *ms);
	for (int r = 0; r < warmup + runs; r++) {
		double t0 = bt_monotonic();
		allocator_allocate(a, now, offer_cb, &o);
		double t = (bt_monotonic() - t0) * 1000.0;
		if (r >= warmup) {
			ms[r - warmup] = t;
			printf("%s%zu", r > warmup ? ", " : "", o.n);
		}
		decline_all(a, &o, now);
		now += 1.0;
	}
	printf("], \"ms\": [");
	for (int r = 0; r < runs; r++)
		printf("%s%.4f", r > 0 ? ", " : "", ms[r]);
	printf("]}\n");
	fflush(stdout);
	free(ms);
	free(o.v);
	bt_resources_release(&total);
	allocator_free(a);
}

static size_t parse_list(const char *s, int *v)
{
	size_t n = 0;
	char *end;

	while (*s != '\0' && n < MAX_LIST) {
		long x = strtol(s, &end, 10);
		if (end == s || x <= 0) {
			fprintf(stderr, "bench_allocator: bad list '%s'\n", s);
			exit(2);
		}
		v[n++] = (int)x;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0') {
			fprintf(stderr, "bench_allocator: bad list '%s'\n", s);
			exit(2);
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	int agents[MAX_LIST] = { 1000, 10000, 50000 }, fws[MAX_LIST] = { 1, 100, 1000 };
	size_t nagents = 3, nfws = 3;
	int runs = 5, warmup = 1;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "usage: bench_allocator [--agents L] [--frameworks L] "
			    "[--runs N] [--warmup N]\n");
			return 2;
		}
		if (strcmp(argv[i], "--agents") == 0)
			nagents = parse_list(v, agents);
		else if (strcmp(argv[i], "--frameworks") == 0)
			nfws = parse_list(v, fws);
		else if (strcmp(argv[i], "--runs") == 0)
			runs = atoi(v) > 0 ? atoi(v) : 1;
		else if (strcmp(argv[i], "--warmup") == 0)
			warmup = atoi(v) >= 0 ? atoi(v) : 0;
		else {
			fprintf(stderr, "bench_allocator: unknown option '%s'\n", argv[i]);
			return 2;
		}
		i++;
	}
	for (size_t f = 0; f < nfws; f++)
		for (size_t g = 0; g < nagents; g++)
			run_cell(agents[g], fws[f], warmup, runs);
	return 0;
}
