/*
 * main.c -- `butte`: global flags, subcommand dispatch and messages.
 *
 * Global flags come before the subcommand (`butte --relay=URL app list`);
 * each subcommand parses its own flags and prints its own --help. The
 * addresses of the master and relay default, in this order, to the flag
 * or its BUTTE_MASTER / BUTTE_RELAY environment variable, to what the
 * state directory's cluster.json (written by `butte up`) says, and to
 * the standard ports on 127.0.0.1.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.h"
#include "log.h"
#include "xmalloc.h"

#define DEFAULT_MASTER "http://127.0.0.1:5050"
#define DEFAULT_RELAY "http://127.0.0.1:8080"

#define COMMANDS \
    "butte [global flags] COMMAND [flags] [arguments]\n" \
    "\n" \
    "A small cluster manager: butte-master, butte-agent and butte-relay.\n" \
    "\n" \
    "commands:\n" \
    "  up [--agents N]        start a local cluster in the background\n" \
    "  down                   stop the local cluster and its tasks\n" \
    "  status                 master, relay, agents and apps at a glance\n" \
    "  app add FILE|-         create an app from a Marathon app definition\n" \
    "  app list               list apps\n" \
    "  app show ID            an app and its tasks as JSON\n" \
    "  app scale ID N         set an app's number of instances\n" \
    "  app remove ID          remove an app and kill its tasks\n" \
    "  task list [ID]         list tasks, of all apps or of one\n" \
    "  agent list             list the agents the master knows\n" \
    "\n" \
    "Run 'butte COMMAND --help' for a command's flags.\n"

static const char usage[] = COMMANDS "\nglobal flags:";

struct command {
	const char *name;
	cli_command_fn fn;
};

static const struct command commands[] = {
	{ "up", cli_up },
	{ "down", cli_down },
	{ "status", cli_status },
	{ "app", cli_app },
	{ "apps", cli_app },
	{ "task", cli_task },
	{ "tasks", cli_task },
	{ "agent", cli_agent },
	{ "agents", cli_agent },
	{ NULL, NULL },
};

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("butte: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_parse_flags(const struct bt_flag *table, int argc, char **argv, const char *text,
    int *rest)
{
	char *cause = NULL;

	if (bt_flags_parse(table, argc, argv, text, rest, &cause) == -1) {
		cli_error("%s (see 'butte %s --help')", cause, argv[0]);
		free(cause);
		return -1;
	}
	return 0;
}

/* strip trailing slashes and add http:// when the scheme is missing */
static char *normalise_url(const char *url)
{
	char *u;
	size_t n;

	if (strstr(url, "://") == NULL)
		u = xasprintf("http://%s", url);
	else
		u = xstrdup(url);
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
	return u;
}

/* fill master and relay from cluster.json, then from the defaults */
static void fill_addresses(struct cli *cli)
{
	json_t *cluster = cli_cluster_read(cli->dir);
	const char *m = NULL, *r = NULL;
	char *tmp;

	if (cluster != NULL) {
		m = json_string_value(json_object_get(cluster, "master"));
		r = json_string_value(json_object_get(cluster, "relay"));
	}
	tmp = cli->master;
	cli->master = normalise_url(tmp != NULL ? tmp : m != NULL ? m : DEFAULT_MASTER);
	free(tmp);
	tmp = cli->relay;
	cli->relay = normalise_url(tmp != NULL ? tmp : r != NULL ? r : DEFAULT_RELAY);
	free(tmp);
	json_decref(cluster);
}

/* run the command named by argv[0] */
static int dispatch(struct cli *cli, int argc, char **argv)
{
	const struct command *c;

	for (c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, argv[0]) == 0)
			return c->fn(cli, argc, argv);
	}
	cli_error("unknown command '%s' (see 'butte --help')", argv[0]);
	return 2;
}

int main(int argc, char **argv)
{
	struct cli cli = { .prog = argv[0] };
	const struct bt_flag flags[] = {
		{ "master", BT_FLAG_STRING, &cli.master, NULL,
		    "master URL (default: from DIR/cluster.json, else " DEFAULT_MASTER ")" },
		{ "relay", BT_FLAG_STRING, &cli.relay, NULL,
		    "relay URL (default: from DIR/cluster.json, else " DEFAULT_RELAY ")" },
		{ "dir", BT_FLAG_STRING, &cli.dir, NULL,
		    "state directory of the local cluster (default /tmp/butte-<uid>)" },
		{ NULL, 0, NULL, NULL, NULL },
	};
	int rest = 0, rc = 1;
	char *cause = NULL;

	bt_log_init("butte", "warn");
	if (bt_flags_parse(flags, argc, argv, usage, &rest, &cause) == -1) {
		cli_error("%s (see 'butte --help')", cause);
		free(cause);
		return 2;
	}
	if (rest <= 0 || rest >= argc) {
		fprintf(stderr, "usage: %s\nRun 'butte --help' for the global flags.\n", COMMANDS);
		goto out;
	}
	if (cli.dir == NULL)
		cli.dir = xasprintf("/tmp/butte-%u", (unsigned)getuid());
	fill_addresses(&cli);
	bt_curl_global_init();
	rc = dispatch(&cli, argc - rest, argv + rest);
	curl_global_cleanup();
out:
	free(cli.master);
	free(cli.relay);
	free(cli.dir);
	return rc;
}
