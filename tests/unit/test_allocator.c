/*
 * test_allocator.c -- unit tests for master/allocator.c through its own
 * interface: DRF order and tie-breaking, filters and their expiry (with
 * the allocation interval as the minimum), suppress and revive, the
 * minimum offerable resources, inactive agents and frameworks, slot reuse,
 * and a larger run checking that every agent is offered exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../master/allocator.c"

#define MAX_OFFERS 20000

struct record {
	size_t n;
	void *agent[MAX_OFFERS];
	void *fw[MAX_OFFERS];
	int64_t cpus[MAX_OFFERS];
};

static void record_cb(void *agent, void *fw, const struct bt_resources *res, void *arg)
{
	struct record *r = arg;

	assert_true(r->n < MAX_OFFERS);
	r->agent[r->n] = agent;
	r->fw[r->n] = fw;
	r->cpus[r->n] = bt_resources_scalar(res, "cpus");
	r->n++;
}

static struct bt_resources res(const char *text)
{
	struct bt_resources r;
	char *cause = NULL;

	if (bt_resources_parse(&r, text, NULL, &cause) != 0)
		fail_msg("parse '%s': %s", text, cause);
	return r;
}

static int add_agent(struct allocator *a, const char *id, const char *text, void *user)
{
	struct bt_resources r = res(text);
	int h = allocator_add_agent(a, id, &r, user);

	bt_resources_release(&r);
	return h;
}

static int add_fw(struct allocator *a, const char *id, void *user)
{
	int h = allocator_add_framework(a, id, user);

	allocator_activate_framework(a, h, true);
	return h;
}

static struct record *run(struct allocator *a, double now)
{
	struct record *r = calloc(1, sizeof *r);

	allocator_allocate(a, now, record_cb, r);
	return r;
}

/* give back everything that was offered in r, with a filter */
static void decline_all(struct allocator *a, struct record *r, int *agent_handles,
    int *fw_handles, char **agent_names, char **fw_names, const char *text, double refuse,
    double now)
{
	for (size_t i = 0; i < r->n; i++) {
		struct bt_resources back = res(text);
		int ag = -1, fw = -1;
		for (int k = 0; agent_names[k] != NULL; k++)
			if (r->agent[i] == agent_names[k])
				ag = agent_handles[k];
		for (int k = 0; fw_names[k] != NULL; k++)
			if (r->fw[i] == fw_names[k])
				fw = fw_handles[k];
		allocator_recover(a, ag, fw, &back, refuse, now);
		bt_resources_release(&back);
	}
}

static void test_drf_tie_break_and_share(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a", *B = "b";
	struct record *r;

	add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	add_agent(a, "s2", "cpus:4;mem:4096", "s2");
	add_fw(a, "fw-b", B);
	add_fw(a, "fw-a", A);
	r = run(a, 0);
	/* equal shares: the smaller id first; then it has the larger share */
	assert_int_equal(r->n, 2);
	assert_ptr_equal(r->fw[0], A);
	assert_ptr_equal(r->fw[1], B);
	assert_ptr_not_equal(r->agent[0], r->agent[1]);
	assert_int_equal(r->cpus[0], 4000);
	assert_true(allocator_share(a, 0) > 0.49 && allocator_share(a, 0) < 0.51);
	free(r);
	/* nothing is free now */
	r = run(a, 0.5);
	assert_int_equal(r->n, 0);
	free(r);
	assert_int_equal(allocator_runs(a), 2);
	allocator_free(a);
}

static void test_drf_lowest_share_first(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a", *B = "b";
	int s1, fa;
	struct bt_resources used = res("cpus:3;mem:100");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	add_agent(a, "s2", "cpus:4;mem:4096", "s2");
	fa = add_fw(a, "fw-a", A);
	add_fw(a, "fw-b", B);
	allocator_use(a, s1, fa, &used);        /* a holds 3 of 8 cpus already */
	r = run(a, 0);
	/* b (share 0) is served first; then b holds 4/8 > 3/8, so a gets the next */
	assert_int_equal(r->n, 2);
	assert_ptr_equal(r->fw[0], B);
	assert_ptr_equal(r->fw[1], A);
	free(r);
	bt_resources_release(&used);
	allocator_free(a);
}

static void test_filter_expiry(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a";
	int s1, fa;
	struct bt_resources all = res("cpus:4;mem:4096");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	fa = add_fw(a, "fw-a", A);
	r = run(a, 0);
	assert_int_equal(r->n, 1);
	free(r);
	allocator_recover(a, s1, fa, &all, 10, 0);
	assert_true(allocator_filtered(a, fa, s1));
	r = run(a, 5);
	assert_int_equal(r->n, 0);
	free(r);
	r = run(a, 10.5);
	assert_int_equal(r->n, 1);
	assert_false(allocator_filtered(a, fa, s1));
	free(r);
	/* a filter shorter than the allocation interval lasts one interval */
	allocator_recover(a, s1, fa, &all, 0.1, 20);
	r = run(a, 20.5);
	assert_int_equal(r->n, 0);
	free(r);
	r = run(a, 21);
	assert_int_equal(r->n, 1);
	free(r);
	/* refuse 0: no filter at all */
	allocator_recover(a, s1, fa, &all, 0, 30);
	r = run(a, 30);
	assert_int_equal(r->n, 1);
	free(r);
	bt_resources_release(&all);
	allocator_free(a);
}

static void test_filter_replaced_by_longer(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a";
	int s1, fa;
	struct bt_resources half = res("cpus:2;mem:2048");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	fa = add_fw(a, "fw-a", A);
	r = run(a, 0);
	free(r);
	/* two pieces come back: 5 s then 100 s; the longer one wins */
	allocator_recover(a, s1, fa, &half, 5, 0);
	allocator_recover(a, s1, fa, &half, 100, 1);
	r = run(a, 50);
	assert_int_equal(r->n, 0);
	free(r);
	r = run(a, 102);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->cpus[0], 4000);
	free(r);
	bt_resources_release(&half);
	allocator_free(a);
}

static void test_filtered_goes_to_next(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a", *B = "b";
	int s1, fa;
	struct bt_resources all = res("cpus:4;mem:4096");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	fa = add_fw(a, "fw-a", A);
	r = run(a, 0);
	assert_ptr_equal(r->fw[0], A);
	free(r);
	add_fw(a, "fw-b", B);
	allocator_recover(a, s1, fa, &all, 60, 0);
	r = run(a, 1);
	assert_int_equal(r->n, 1);
	assert_ptr_equal(r->fw[0], B);
	free(r);
	bt_resources_release(&all);
	allocator_free(a);
}

static void test_suppress_revive(void **state)
{
	struct allocator *a = allocator_new(1);
	char *A = "a";
	int s1, fa;
	struct bt_resources all = res("cpus:4;mem:4096");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:4;mem:4096", "s1");
	fa = add_fw(a, "fw-a", A);
	allocator_suppress(a, fa);
	assert_true(allocator_suppressed(a, fa));
	r = run(a, 0);
	assert_int_equal(r->n, 0);
	free(r);
	allocator_revive(a, fa);
	r = run(a, 0);
	assert_int_equal(r->n, 1);
	free(r);
	/* revive also clears filters */
	allocator_recover(a, s1, fa, &all, 3600, 1);
	r = run(a, 2);
	assert_int_equal(r->n, 0);
	free(r);
	allocator_revive(a, fa);
	assert_false(allocator_filtered(a, fa, s1));
	r = run(a, 3);
	assert_int_equal(r->n, 1);
	free(r);
	bt_resources_release(&all);
	allocator_free(a);
}

static void test_min_resources(void **state)
{
	struct allocator *a = allocator_new(1);
	struct record *r;

	add_agent(a, "tiny", "cpus:0.005;mem:16;disk:100", "tiny");
	add_agent(a, "memonly", "mem:32", "memonly");
	add_agent(a, "cpuonly", "cpus:0.01", "cpuonly");
	add_fw(a, "fw-a", "a");
	r = run(a, 0);
	assert_int_equal(r->n, 2);
	for (size_t i = 0; i < r->n; i++)
		assert_string_not_equal((char *)r->agent[i], "tiny");
	free(r);
	allocator_free(a);
}

static void test_inactive(void **state)
{
	struct allocator *a = allocator_new(1);
	int s1, fa, fb;
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:1;mem:128", "s1");
	fa = add_fw(a, "fw-a", "a");
	fb = add_fw(a, "fw-b", "b");
	allocator_activate_agent(a, s1, false);
	r = run(a, 0);
	assert_int_equal(r->n, 0);
	free(r);
	allocator_activate_agent(a, s1, true);
	allocator_activate_framework(a, fa, false);
	r = run(a, 0);
	assert_int_equal(r->n, 1);
	assert_string_equal((char *)r->fw[0], "b");
	free(r);
	allocator_remove_framework(a, fb);
	allocator_remove_framework(a, fa);
	allocator_free(a);
}

static void test_remove_agent_clears_filters(void **state)
{
	struct allocator *a = allocator_new(1);
	int s1, s2, fa;
	struct bt_resources all = res("cpus:1;mem:128");
	struct record *r;

	s1 = add_agent(a, "s1", "cpus:1;mem:128", "s1");
	fa = add_fw(a, "fw-a", "a");
	r = run(a, 0);
	free(r);
	allocator_recover(a, s1, fa, &all, 3600, 0);
	allocator_remove_agent(a, s1);
	assert_false(allocator_filtered(a, fa, s1));
	/* recovering against a removed agent only uncharges the framework */
	allocator_recover(a, s1, fa, &all, 0, 0);
	s2 = add_agent(a, "s2", "cpus:1;mem:128", "s2");
	assert_int_equal(s2, s1);               /* the slot is reused */
	r = run(a, 1);
	assert_int_equal(r->n, 1);
	assert_string_equal((char *)r->agent[0], "s2");
	free(r);
	assert_null(allocator_free_resources(a, 99));
	bt_resources_release(&all);
	allocator_free(a);
}

static void test_many_agents_each_offered_once(void **state)
{
	enum { NAGENTS = 2000, NFWS = 50 };
	struct allocator *a = allocator_new(1);
	static char names[NAGENTS][16];
	static char fwnames[NFWS][16];
	static int counts[NFWS];
	struct record *r;
	char id[32];

	for (int i = 0; i < NAGENTS; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		add_agent(a, names[i], "cpus:8;mem:16384;disk:1000;ports:[31000-32000]", names[i]);
	}
	for (int i = 0; i < NFWS; i++) {
		snprintf(fwnames[i], sizeof fwnames[i], "f%03d", i);
		snprintf(id, sizeof id, "fw-%03d", i);
		add_fw(a, id, fwnames[i]);
	}
	r = run(a, 0);
	assert_int_equal(r->n, NAGENTS);
	for (size_t i = 0; i < r->n; i++)
		counts[atoi((char *)r->fw[i] + 1)]++;
	/* DRF spreads identical agents evenly */
	for (int i = 0; i < NFWS; i++)
		assert_int_equal(counts[i], NAGENTS / NFWS);
	free(r);
	assert_true(allocator_run_ms_percentile(a, 99) >= 0);
	allocator_free(a);
}

static void test_decline_all_then_filtered(void **state)
{
	struct allocator *a = allocator_new(1);
	char *agents[] = { "s1", "s2", NULL };
	char *fws[] = { "a", NULL };
	int ah[2], fh[1];
	struct record *r;

	ah[0] = add_agent(a, "s1", "cpus:1;mem:128", agents[0]);
	ah[1] = add_agent(a, "s2", "cpus:1;mem:128", agents[1]);
	fh[0] = add_fw(a, "fw-a", fws[0]);
	r = run(a, 0);
	assert_int_equal(r->n, 2);
	decline_all(a, r, ah, fh, agents, fws, "cpus:1;mem:128", 5, 0);
	free(r);
	r = run(a, 4);
	assert_int_equal(r->n, 0);
	free(r);
	r = run(a, 5);
	assert_int_equal(r->n, 2);
	free(r);
	allocator_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drf_tie_break_and_share),
		cmocka_unit_test(test_drf_lowest_share_first),
		cmocka_unit_test(test_filter_expiry),
		cmocka_unit_test(test_filter_replaced_by_longer),
		cmocka_unit_test(test_filtered_goes_to_next),
		cmocka_unit_test(test_suppress_revive),
		cmocka_unit_test(test_min_resources),
		cmocka_unit_test(test_inactive),
		cmocka_unit_test(test_remove_agent_clears_filters),
		cmocka_unit_test(test_many_agents_each_offered_once),
		cmocka_unit_test(test_decline_all_then_filtered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
