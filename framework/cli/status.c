/*
 * status.c -- `butte status` and `butte agent list`: the cluster at a glance.
 *
 * Both read only public endpoints: the master's /health and /master/state
 * (agents with their flat resource maps and attributes, frameworks) and
 * relay's /ping and /v2/apps. status exits 0 when the master and relay
 * both answer, 1 otherwise.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "xmalloc.h"

/* "0.3/2" from used and total resource maps */
static void used_total(char *buf, size_t size, const json_t *slave, const char *name)
{
	double total = bt_json_number(json_object_get(slave, "resources"), name, 0);
	double used = bt_json_number(json_object_get(slave, "used_resources"), name, 0);

	snprintf(buf, size, "%g/%g", used, total);
}

/* an attribute as text (attributes are a flat map of strings or numbers) */
static void attribute(char *buf, size_t size, const json_t *slave, const char *name)
{
	const json_t *v = json_object_get(json_object_get(slave, "attributes"), name);

	if (json_is_string(v))
		snprintf(buf, size, "%s", json_string_value(v));
	else if (json_is_number(v))
		snprintf(buf, size, "%g", json_number_value(v));
	else
		snprintf(buf, size, "-");
}

static void print_agents(const json_t *state)
{
	struct cli_table *t = cli_table_new(6, "ID", "HOSTNAME", "ARCH", "CPUS", "MEM", "ACTIVE");
	const json_t *s;
	char cpus[48], mem[48], arch[64];
	size_t i;

	json_array_foreach(json_object_get(state, "slaves"), i, s) {
		used_total(cpus, sizeof cpus, s, "cpus");
		used_total(mem, sizeof mem, s, "mem");
		attribute(arch, sizeof arch, s, "arch");
		cli_table_add(t, json_string_value(json_object_get(s, "id")),
		    json_string_value(json_object_get(s, "hostname")), arch, cpus, mem,
		    json_is_false(json_object_get(s, "active")) ? "no" : "yes");
	}
	cli_table_print(t);
	cli_table_free(t);
}

/* GET path from base as JSON without printing errors; NULL when it fails */
static json_t *quiet_get(const char *base, const char *path, bool *refused)
{
	struct cli_response r;
	char *cause = NULL;
	json_t *j = NULL;

	*refused = false;
	if (cli_http("GET", base, path, NULL, 5, &r, &cause) == 0 && r.status == 200)
		j = bt_json_parse(r.body, r.len, &cause);
	else
		*refused = r.refused;
	cli_response_release(&r);
	free(cause);
	return j;
}

static bool show_master(const struct cli *cli)
{
	bool refused;
	json_t *state = quiet_get(cli->master, "/master/state", &refused);

	if (state == NULL) {
		printf("master  %-24s  DOWN (%s)\n", cli->master,
		    refused ? "nothing is listening" : "no valid answer to /master/state");
		return false;
	}
	printf("master  %-24s  up, %zu agent(s), %zu framework(s)\n", cli->master,
	    json_array_size(json_object_get(state, "slaves")),
	    json_array_size(json_object_get(state, "frameworks")));
	printf("\n");
	print_agents(state);
	printf("\n");
	json_decref(state);
	return true;
}

static bool show_relay(const struct cli *cli)
{
	bool refused;
	json_t *apps = quiet_get(cli->relay, "/v2/apps", &refused), *a;
	int instances = 0, running = 0;
	size_t i;

	if (apps == NULL) {
		printf("relay   %-24s  DOWN (%s)\n", cli->relay,
		    refused ? "nothing is listening" : "no valid answer to /v2/apps");
		return false;
	}
	json_array_foreach(json_object_get(apps, "apps"), i, a) {
		instances += (int)bt_json_number(a, "instances", 0);
		running += (int)bt_json_number(a, "tasksRunning", 0);
	}
	printf("relay   %-24s  up, %zu app(s), %d of %d instance(s) running\n", cli->relay,
	    json_array_size(json_object_get(apps, "apps")), running, instances);
	json_array_foreach(json_object_get(apps, "apps"), i, a) {
		printf("  %-30s %d/%d running\n", json_string_value(json_object_get(a, "id")) ?: "?",
		    (int)bt_json_number(a, "tasksRunning", 0), (int)bt_json_number(a, "instances", 0));
	}
	json_decref(apps);
	return true;
}

static const char status_usage[] =
    "butte status\n"
    "\n"
    "Show whether the master and relay answer, the agents with their used and\n"
    "total resources, and the apps with their running instances.";

int cli_status(struct cli *cli, int argc, char **argv)
{
	const struct bt_flag flags[] = { { NULL, 0, NULL, NULL, NULL } };
	int rest = argc;
	bool master_up, relay_up;

	if (cli_parse_flags(flags, argc, argv, status_usage, &rest) == -1)
		return 2;
	if (rest < argc) {
		cli_error("status takes no arguments");
		return 2;
	}
	printf("state   %s\n", cli->dir);
	master_up = show_master(cli);
	relay_up = show_relay(cli);
	if (!master_up && !relay_up)
		printf("\nnothing is listening: is the cluster up? try 'butte up'\n");
	return master_up && relay_up ? 0 : 1;
}

static const char agent_usage[] =
    "butte agent list\n"
    "\n"
    "List the agents the master knows: id, hostname, arch attribute, cpus and\n"
    "memory (used/total).";

int cli_agent(struct cli *cli, int argc, char **argv)
{
	const struct bt_flag flags[] = { { NULL, 0, NULL, NULL, NULL } };
	json_t *state = NULL;
	int rest = argc;

	if (cli_parse_flags(flags, argc, argv, agent_usage, &rest) == -1)
		return 2;
	if (rest >= argc || strcmp(argv[rest], "list") != 0 || rest + 1 != argc) {
		cli_error("usage: butte agent list");
		return 2;
	}
	if (cli_json("GET", cli->master, "/master/state", NULL, &state, NULL) == -1)
		return 1;
	print_agents(state);
	json_decref(state);
	return 0;
}
