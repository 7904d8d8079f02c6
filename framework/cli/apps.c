/*
 * apps.c -- `butte app ...` and `butte task list`: relay's Marathon v2 API.
 *
 * Each command is one or two requests to relay: POST /v2/apps,
 * GET /v2/apps, GET /v2/apps/ID (plus its tasks), PUT /v2/apps/ID with
 * {"instances": N}, DELETE /v2/apps/ID, GET /v2/tasks. Answers are shown
 * as tables or pretty JSON; refusals are shown with relay's own message
 * and details, and the command exits 1.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "xmalloc.h"

#define MAX_APP_FILE (4u << 20)

static bool cli_force;                  /* app --force: ?force=true on changes */

/* the whole of a file, or of stdin for "-"; NULL after printing why */
static char *read_input(const char *name)
{
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
	char *buf = NULL;
	size_t len = 0, n;

	if (f == NULL) {
		cli_error("unable to open '%s': %s", name, strerror(errno));
		return NULL;
	}
	buf = xmalloc(MAX_APP_FILE + 1);
	while ((n = fread(buf + len, 1, MAX_APP_FILE - len, f)) > 0)
		len += n;
	if (ferror(f) || len >= MAX_APP_FILE) {
		cli_error("unable to read '%s': %s", name,
		    ferror(f) ? strerror(errno) : "file too large");
		free(buf);
		buf = NULL;
	} else {
		buf[len] = '\0';
	}
	if (f != stdin)
		fclose(f);
	return buf;
}

/* the deployment id from the header, or the body's deploymentId / deployments[0].id */
static const char *deployment_of(const struct cli_response *r, const json_t *body)
{
	const char *d = json_string_value(json_object_get(body, "deploymentId"));

	if (r->deployment_id != NULL)
		return r->deployment_id;
	if (d == NULL)
		d = json_string_value(json_object_get(
		    json_array_get(json_object_get(body, "deployments"), 0), "id"));
	return d != NULL ? d : "-";
}

/* send a request with a body, print relay's refusal; 0 with *out and *r on 2xx */
static int send_app(const struct cli *cli, const char *method, const char *path,
    const char *body, const char *what, json_t **out, struct cli_response *r)
{
	char *cause = NULL;
	int rc = -1;

	*out = NULL;
	if (cli_http(method, cli->relay, path, body, 30, r, &cause) == -1) {
		if (r->refused)
			cli_not_listening(cli->relay);
		else
			cli_error("%s", cause);
		goto out;
	}
	if (r->status < 200 || r->status > 299) {
		cli_print_http_error(what, r);
		goto out;
	}
	*out = r->len > 0 ? bt_json_parse(r->body, r->len, &cause) : json_object();
	if (*out == NULL)
		*out = json_object();
	rc = 0;
out:
	free(cause);
	return rc;
}

static int app_add(const struct cli *cli, int argc, char **argv)
{
	struct cli_response r = { 0 };
	char *body = NULL, *what = NULL;
	json_t *app = NULL;
	int rc = 1;

	if (argc != 1) {
		cli_error("usage: butte app add FILE|-");
		return 2;
	}
	if ((body = read_input(argv[0])) == NULL)
		goto out;
	what = xasprintf("relay refused the app in '%s'", argv[0]);
	if (send_app(cli, "POST", "/v2/apps", body, what, &app, &r) == -1)
		goto out;
	printf("created app %s (deployment %s)\n",
	    json_string_value(json_object_get(app, "id")) ?: "?", deployment_of(&r, app));
	rc = 0;
out:
	json_decref(app);
	cli_response_release(&r);
	free(what);
	free(body);
	return rc;
}

/* cmd shortened to fit a table cell */
static void cell(char *buf, size_t size, const char *s)
{
	size_t n;

	snprintf(buf, size, "%s", s != NULL ? s : "-");
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	}
	n = strlen(buf);
	if (n + 1 >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

static int app_list(const struct cli *cli, int argc, char **argv)
{
	json_t *apps = NULL, *a;
	struct cli_table *t;
	char cmd[48], inst[16], run[16], cpus[32], mem[32];
	size_t i;

	if (argc != 0) {
		cli_error("usage: butte app list");
		return 2;
	}
	if (cli_json("GET", cli->relay, "/v2/apps", NULL, &apps, NULL) == -1)
		return 1;
	t = cli_table_new(6, "ID", "INSTANCES", "RUNNING", "CPUS", "MEM", "CMD");
	json_array_foreach(json_object_get(apps, "apps"), i, a) {
		cell(cmd, sizeof cmd, json_string_value(json_object_get(a, "cmd")));
		snprintf(inst, sizeof inst, "%d", (int)bt_json_number(a, "instances", 0));
		snprintf(run, sizeof run, "%d", (int)bt_json_number(a, "tasksRunning", 0));
		snprintf(cpus, sizeof cpus, "%g", bt_json_number(a, "cpus", 0));
		snprintf(mem, sizeof mem, "%g", bt_json_number(a, "mem", 0));
		cli_table_add(t, json_string_value(json_object_get(a, "id")), inst, run, cpus, mem,
		    cmd);
	}
	cli_table_print(t);
	cli_table_free(t);
	json_decref(apps);
	return 0;
}

static int app_show(const struct cli *cli, int argc, char **argv)
{
	json_t *answer = NULL, *tasks = NULL, *app;
	char *path = NULL, *text;
	int rc = 1;

	if (argc != 1) {
		cli_error("usage: butte app show ID");
		return 2;
	}
	path = cli_app_path(argv[0], "?embed=app.tasks");
	if (cli_json("GET", cli->relay, path, NULL, &answer, NULL) == -1)
		goto out;
	app = json_object_get(answer, "app");
	if (!json_is_object(app)) {
		cli_error("relay's answer for '%s' has no app", argv[0]);
		goto out;
	}
	if (json_object_get(app, "tasks") == NULL) {
		free(path);
		path = cli_app_path(argv[0], "/tasks");
		if (cli_json("GET", cli->relay, path, NULL, &tasks, NULL) == -1)
			goto out;
		json_object_set(app, "tasks", json_object_get(tasks, "tasks") ?: json_array());
	}
	text = json_dumps(app, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
	printf("%s\n", text);
	free(text);
	rc = 0;
out:
	json_decref(tasks);
	json_decref(answer);
	free(path);
	return rc;
}

static int app_scale(const struct cli *cli, int argc, char **argv)
{
	struct cli_response r = { 0 };
	char *path = NULL, *body = NULL, *what = NULL, *end;
	json_t *dr = NULL;
	long n;
	int rc = 1;

	if (argc != 2) {
		cli_error("usage: butte app scale ID N");
		return 2;
	}
	errno = 0;
	n = strtol(argv[1], &end, 10);
	if (errno != 0 || end == argv[1] || *end != '\0' || n < 0 || n > 1000000) {
		cli_error("invalid number of instances '%s'", argv[1]);
		return 2;
	}
	path = cli_app_path(argv[0], cli_force ? "?force=true" : NULL);
	body = xasprintf("{\"instances\":%ld}", n);
	what = xasprintf("unable to scale '%s'", argv[0]);
	if (send_app(cli, "PUT", path, body, what, &dr, &r) == -1)
		goto out;
	printf("scaling %s to %ld instance%s (deployment %s)\n", argv[0], n, n == 1 ? "" : "s",
	    deployment_of(&r, dr));
	rc = 0;
out:
	json_decref(dr);
	cli_response_release(&r);
	free(what);
	free(body);
	free(path);
	return rc;
}

static int app_remove(const struct cli *cli, int argc, char **argv)
{
	struct cli_response r = { 0 };
	char *path = NULL, *what = NULL;
	json_t *dr = NULL;
	int rc = 1;

	if (argc != 1) {
		cli_error("usage: butte app remove ID");
		return 2;
	}
	path = cli_app_path(argv[0], cli_force ? "?force=true" : NULL);
	what = xasprintf("unable to remove '%s'", argv[0]);
	if (send_app(cli, "DELETE", path, NULL, what, &dr, &r) == -1)
		goto out;
	printf("removing %s (deployment %s)\n", argv[0], deployment_of(&r, dr));
	rc = 0;
out:
	json_decref(dr);
	cli_response_release(&r);
	free(what);
	free(path);
	return rc;
}

static const char app_usage[] =
    "butte app add FILE|-      create an app from a JSON app definition\n"
    "       butte app list            list apps: instances wanted and running\n"
    "       butte app show ID         the app and its tasks as JSON\n"
    "       butte app scale [--force] ID N   set the number of instances\n"
    "       butte app remove [--force] ID    remove the app and kill its tasks\n"
    "\n"
    "An app in a running deployment is locked: scale and remove answer\n"
    "relay's 409 unless --force cancels that deployment.\n"
    "App definitions follow Marathon's (see docs/examples/hello.json).";

int cli_app(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct cli *, int, char **);
	} subs[] = {
		{ "add", app_add }, { "create", app_add }, { "list", app_list }, { "ls", app_list },
		{ "show", app_show }, { "scale", app_scale }, { "remove", app_remove },
		{ "rm", app_remove }, { NULL, NULL },
	};
	const struct bt_flag flags[] = {
		{ "force", BT_FLAG_BOOL, &cli_force, "false",
		    "override the deployment that locks the app (Marathon's ?force=true)" },
		{ NULL, 0, NULL, NULL, NULL },
	};
	int rest = argc, sub_rest;

	if (cli_parse_flags(flags, argc, argv, app_usage, &rest) == -1)
		return 2;
	if (rest >= argc) {
		fprintf(stderr, "usage: %s\n", app_usage);
		return 2;
	}
	for (size_t i = 0; subs[i].name != NULL; i++) {
		if (strcmp(subs[i].name, argv[rest]) != 0)
			continue;
		argc -= rest;
		argv += rest;
		sub_rest = argc;
		if (cli_parse_flags(flags, argc, argv, app_usage, &sub_rest) == -1)
			return 2;
		return subs[i].fn(cli, argc - sub_rest, argv + sub_rest);
	}
	cli_error("unknown app command '%s' (see 'butte app --help')", argv[rest]);
	return 2;
}

/* "127.0.0.1:31000,31001" */
static void host_ports(char *buf, size_t size, const json_t *task)
{
	const json_t *p;
	size_t i, off;

	off = (size_t)snprintf(buf, size, "%s",
	    json_string_value(json_object_get(task, "host")) ?: "-");
	json_array_foreach(json_object_get(task, "ports"), i, p) {
		if (off >= size)
			break;
		off += (size_t)snprintf(buf + off, size - off, "%c%lld", i == 0 ? ':' : ',',
		    (long long)json_integer_value(p));
	}
}

static const char task_usage[] =
    "butte task list [APP-ID]\n"
    "\n"
    "List the tasks of every app, or of one: task id, app, host and ports, state.";

int cli_task(struct cli *cli, int argc, char **argv)
{
	const struct bt_flag flags[] = { { NULL, 0, NULL, NULL, NULL } };
	json_t *answer = NULL, *t;
	struct cli_table *table;
	char *path = NULL, where[128];
	int rest = argc, rc = 1;
	size_t i;

	if (cli_parse_flags(flags, argc, argv, task_usage, &rest) == -1)
		return 2;
	if (rest >= argc || strcmp(argv[rest], "list") != 0 || argc - rest > 2) {
		cli_error("usage: butte task list [APP-ID]");
		return 2;
	}
	path = argc - rest == 2 ? cli_app_path(argv[rest + 1], "/tasks") : xstrdup("/v2/tasks");
	if (cli_json("GET", cli->relay, path, NULL, &answer, NULL) == -1)
		goto out;
	table = cli_table_new(4, "TASK ID", "APP", "HOST:PORTS", "STATE");
	json_array_foreach(json_object_get(answer, "tasks"), i, t) {
		host_ports(where, sizeof where, t);
		cli_table_add(table, json_string_value(json_object_get(t, "id")),
		    json_string_value(json_object_get(t, "appId")), where,
		    json_string_value(json_object_get(t, "state")));
	}
	cli_table_print(table);
	cli_table_free(table);
	rc = 0;
out:
	json_decref(answer);
	free(path);
	return rc;
}
