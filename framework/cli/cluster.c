/*
 * cluster.c -- `butte up`, `butte down` and `butte status`.
 *
 * A local cluster is one master on 127.0.0.1, N agents each on its own
 * loopback address (127.0.0.1, 127.0.0.2, ...: distinct hosts on one
 * machine, with disjoint task port ranges) and one relay. Everything it
 * keeps lives in the state directory: <name>/ work dirs, <name>.log,
 * <name>.pid and cluster.json, which tells later commands where the
 * master and relay listen. `up` waits, bounded, until the master is
 * healthy, every agent has registered and relay answers /ping; `down`
 * stops relay (so nothing is relaunched), asks the agents to kill their
 * tasks and exit (SIGUSR1), then stops the master (SIGTERM; SIGKILL for
 * whatever outlives its grace period).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "util.h"
#include "xmalloc.h"

#define MAX_AGENTS 64

struct up_opts {
	int agents, master_port, relay_port, agent_port, task_port_base;
	double timeout;
	char *log_level;
	char *exe_dir;
	const char *dir;
};

/* one started daemon */
struct started {
	struct cli_daemon d;
	char ip[24];
	int port;
	char *url;
	char *log;
};

json_t *cli_cluster_read(const char *dir)
{
	char *path = xasprintf("%s/cluster.json", dir), *data = NULL, *cause = NULL;
	json_t *j = NULL;
	size_t len;

	if (bt_read_file(path, &data, &len, &cause) == 0)
		j = bt_json_parse(data, len, &cause);
	free(cause);
	free(data);
	free(path);
	return j;
}

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* GET base+path answers 200 within a short timeout */
static bool answers(const char *base, const char *path)
{
	struct cli_response r;
	char *cause = NULL;
	bool ok = cli_http("GET", base, path, NULL, 2, &r, &cause) == 0 && r.status == 200;

	cli_response_release(&r);
	free(cause);
	return ok;
}

/* how many agents the master lists as active; -1 when it does not answer */
static int active_agents(const char *master)
{
	struct cli_response r;
	char *cause = NULL;
	json_t *state = NULL, *s;
	size_t i;
	int n = -1;

	if (cli_http("GET", master, "/master/state", NULL, 2, &r, &cause) == 0 && r.status == 200)
		state = bt_json_parse(r.body, r.len, &cause);
	if (state != NULL) {
		n = 0;
		json_array_foreach(json_object_get(state, "slaves"), i, s) {
			if (!json_is_false(json_object_get(s, "active")))
				n++;
		}
	}
	json_decref(state);
	cli_response_release(&r);
	free(cause);
	return n;
}

/* names of the pid files present in dir ("master", "agent-0", ...); NULL-terminated */
static char **pid_names(const char *dir)
{
	char **names = xcalloc(1, sizeof *names);
	struct dirent *e;
	size_t n = 0, len;
	DIR *d = opendir(dir);

	if (d == NULL)
		return names;
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len <= 4 || strcmp(e->d_name + len - 4, ".pid") != 0)
			continue;
		names = xreallocarray(names, n + 2, sizeof *names);
		names[n++] = xstrndup(e->d_name, len - 4);
		names[n] = NULL;
	}
	closedir(d);
	return names;
}

static void free_names(char **names)
{
	for (char **p = names; *p != NULL; p++)
		free(*p);
	free(names);
}

/* the pid recorded for name, if that process still runs a butte binary */
static pid_t live_pid(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s.pid", dir, name);
	pid_t pid = cli_pid_read(path);

	free(path);
	if (pid > 0 && cli_pid_alive(pid) && cli_pid_is_butte(pid))
		return pid;
	return 0;
}

static void remove_pid_file(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s.pid", dir, name);

	unlink(path);
	free(path);
}

/* -------------------------------------------------------------- up */

static void stop_started(struct started *s, int n, const char *dir)
{
	pid_t pids[MAX_AGENTS + 2];
	int i, k = 0;

	for (i = 0; i < n; i++) {
		if (s[i].d.pid > 0 && cli_pid_alive(s[i].d.pid)) {
			kill(s[i].d.pid, strncmp(s[i].d.name, "agent", 5) == 0 ? SIGUSR1 : SIGTERM);
			pids[k++] = s[i].d.pid;
		}
	}
	if (cli_wait_gone(pids, k, 5) > 0) {
		for (i = 0; i < k; i++)
			kill(pids[i], SIGKILL);
		cli_wait_gone(pids, k, 2);
	}
	for (i = 0; i < n; i++)
		remove_pid_file(dir, s[i].d.name);
	cli_kill_under(dir);
}

static int start_one(const struct up_opts *o, struct started *s, char **args)
{
	char *path = xasprintf("%s/%s", o->exe_dir, s->d.binary);
	char *pidfile = xasprintf("%s/%s.pid", o->dir, s->d.name);
	char *cause = NULL;
	int rc = -1;

	s->log = xasprintf("%s/%s.log", o->dir, s->d.name);
	args[0] = path;
	if (cli_spawn(path, args, s->log, &s->d.pid, &cause) == -1) {
		cli_error("unable to start the %s: %s", s->d.name, cause);
		goto out;
	}
	if (cli_pid_write(pidfile, s->d.pid, &cause) == -1) {
		cli_error("%s", cause);
		goto out;
	}
	rc = 0;
out:
	free(cause);
	free(pidfile);
	free(path);
	return rc;
}

static int start_master(const struct up_opts *o, struct started *s)
{
	char *args[] = { NULL, xstrdup("--ip=127.0.0.1"),
		xasprintf("--port=%d", o->master_port),
		xasprintf("--work_dir=%s/master", o->dir),
		xasprintf("--log_level=%s", o->log_level), NULL };
	int rc;

	snprintf(s->d.name, sizeof s->d.name, "master");
	snprintf(s->d.binary, sizeof s->d.binary, "butte-master");
	snprintf(s->ip, sizeof s->ip, "127.0.0.1");
	s->port = o->master_port;
	s->url = xasprintf("http://127.0.0.1:%d", o->master_port);
	rc = start_one(o, s, args);
	for (char **a = args + 1; *a != NULL; a++)
		free(*a);
	return rc;
}

static int start_agent(const struct up_opts *o, struct started *s, int i)
{
	int lo = o->task_port_base + i * 500;
	char *args[] = { NULL, xasprintf("--ip=127.0.0.%d", i + 1),
		xasprintf("--port=%d", o->agent_port),
		xasprintf("--work_dir=%s/agent-%d", o->dir, i),
		xasprintf("--master=127.0.0.1:%d", o->master_port),
		xasprintf("--resources=cpus:2;mem:1024;disk:2048;ports(*):[%d-%d]", lo, lo + 499),
		xasprintf("--log_level=%s", o->log_level), NULL };
	int rc;

	snprintf(s->d.name, sizeof s->d.name, "agent-%d", i);
	snprintf(s->d.binary, sizeof s->d.binary, "butte-agent");
	snprintf(s->ip, sizeof s->ip, "127.0.0.%d", i + 1);
	s->port = o->agent_port;
	s->url = xasprintf("http://%s:%d", s->ip, o->agent_port);
	rc = start_one(o, s, args);
	for (char **a = args + 1; *a != NULL; a++)
		free(*a);
	return rc;
}

static int start_relay(const struct up_opts *o, struct started *s)
{
	char *args[] = { NULL, xasprintf("--http_port=%d", o->relay_port),
		xstrdup("--http_address=127.0.0.1"),
		xasprintf("--work_dir=%s/relay", o->dir),
		xasprintf("--master=127.0.0.1:%d", o->master_port),
		xasprintf("--log_level=%s", o->log_level), NULL };
	int rc;

	snprintf(s->d.name, sizeof s->d.name, "relay");
	snprintf(s->d.binary, sizeof s->d.binary, "butte-relay");
	snprintf(s->ip, sizeof s->ip, "127.0.0.1");
	s->port = o->relay_port;
	s->url = xasprintf("http://127.0.0.1:%d", o->relay_port);
	rc = start_one(o, s, args);
	for (char **a = args + 1; *a != NULL; a++)
		free(*a);
	return rc;
}

/* the first started daemon that died, or NULL */
static struct started *dead_one(struct started *s, int n)
{
	for (int i = 0; i < n; i++) {
		if (!cli_pid_alive(s[i].d.pid))
			return &s[i];
	}
	return NULL;
}

/* poll until the whole cluster answers; -1 after saying what went wrong */
static int wait_ready(const struct up_opts *o, struct started *s, int n)
{
	double deadline = bt_monotonic() + o->timeout;
	const struct started *master = &s[0], *relay = &s[n - 1], *dead;
	bool master_ok = false, relay_ok = false;
	int agents = 0;

	while (bt_monotonic() < deadline) {
		if ((dead = dead_one(s, n)) != NULL) {
			cli_error("the %s (pid %d) exited during start", dead->d.name,
			    (int)dead->d.pid);
			cli_print_log_tail(dead->log, 20);
			return -1;
		}
		master_ok = master_ok || answers(master->url, "/health");
		if (master_ok)
			agents = active_agents(master->url);
		relay_ok = relay_ok || answers(relay->url, "/ping");
		if (master_ok && relay_ok && agents >= o->agents)
			return 0;
		nap_ms(100);
	}
	if (!master_ok)
		cli_error("the master did not answer %s/health within %.0f s", master->url, o->timeout);
	else if (agents < o->agents)
		cli_error("only %d of %d agents registered with the master within %.0f s",
		    agents < 0 ? 0 : agents, o->agents, o->timeout);
	else
		cli_error("relay did not answer %s/ping within %.0f s", relay->url, o->timeout);
	fprintf(stderr, "the daemons' logs are in %s\n", o->dir);
	return -1;
}

static int write_cluster_json(const struct up_opts *o, struct started *s, int n)
{
	json_t *j = json_object(), *agents = json_array(), *pids = json_object(), *a;
	char *text, *path = xasprintf("%s/cluster.json", o->dir), *cause = NULL;
	int rc, i;

	for (i = 0; i < n; i++) {
		json_object_set_new(pids, s[i].d.name, json_integer(s[i].d.pid));
		if (strncmp(s[i].d.name, "agent", 5) != 0)
			continue;
		a = json_pack("{s:s, s:s, s:i}", "name", s[i].d.name, "url", s[i].url, "pid",
		    (int)s[i].d.pid);
		json_array_append_new(agents, a);
	}
	json_object_set_new(j, "dir", json_string(o->dir));
	json_object_set_new(j, "master", json_string(s[0].url));
	json_object_set_new(j, "relay", json_string(s[n - 1].url));
	json_object_set_new(j, "agents", agents);
	json_object_set_new(j, "pids", pids);
	text = json_dumps(j, JSON_INDENT(2));
	rc = bt_write_file_atomic(path, text, strlen(text), &cause);
	if (rc == -1)
		cli_error("%s", cause);
	free(cause);
	free(text);
	free(path);
	json_decref(j);
	return rc;
}

/* refuse when a cluster already runs in dir or a port is taken */
static int check_free(const struct up_opts *o)
{
	char **names = pid_names(o->dir), ip[24];
	int rc = -1, i;

	for (char **p = names; *p != NULL; p++) {
		if (live_pid(o->dir, *p) > 0) {
			cli_error("a cluster is already running in %s (see 'butte status'; "
			    "stop it with 'butte down')", o->dir);
			goto out;
		}
		remove_pid_file(o->dir, *p);
	}
	if (cli_port_busy("127.0.0.1", o->master_port)) {
		cli_error("something is already listening on 127.0.0.1:%d, the master's port "
		    "(choose another with --master_port)", o->master_port);
		goto out;
	}
	if (cli_port_busy("127.0.0.1", o->relay_port)) {
		cli_error("something is already listening on 127.0.0.1:%d, relay's port "
		    "(choose another with --relay_port)", o->relay_port);
		goto out;
	}
	for (i = 0; i < o->agents; i++) {
		snprintf(ip, sizeof ip, "127.0.0.%d", i + 1);
		if (cli_port_busy(ip, o->agent_port)) {
			cli_error("something is already listening on %s:%d, agent-%d's port "
			    "(choose another with --agent_port)", ip, o->agent_port, i);
			goto out;
		}
	}
	rc = 0;
out:
	free_names(names);
	return rc;
}

/* every daemon binary sits next to butte */
static int check_binaries(const struct up_opts *o)
{
	static const char *const bins[] = { "butte-master", "butte-agent", "butte-relay" };
	char *path;
	int rc = 0;

	for (size_t i = 0; i < sizeof bins / sizeof bins[0] && rc == 0; i++) {
		path = xasprintf("%s/%s", o->exe_dir, bins[i]);
		if (access(path, X_OK) == -1) {
			cli_error("cannot run %s: %s (build it with 'make')", path, strerror(errno));
			rc = -1;
		}
		free(path);
	}
	return rc;
}

static void print_started(const struct up_opts *o, struct started *s, int n)
{
	printf("butte cluster is up; its state, logs and pid files are in %s\n", o->dir);
	printf("  master  %s   (Mesos v1 scheduler API, /master/state)\n", s[0].url);
	for (int i = 1; i < n - 1; i++)
		printf("  %-7s %s   (pid %d)\n", s[i].d.name, s[i].url, (int)s[i].d.pid);
	printf("  relay   %s   (Marathon v2 API, /v2/apps, /v2/tasks)\n", s[n - 1].url);
	printf("try:   butte app add docs/examples/hello.json\n");
	printf("stop it with: butte down\n");
}

static int run_up(struct up_opts *o)
{
	struct started s[MAX_AGENTS + 2];
	char *cause = NULL;
	int n = 0, i, rc = 1;

	memset(s, 0, sizeof s);
	if (bt_mkdirs(o->dir, 0755, &cause) == -1) {
		cli_error("%s", cause);
		goto out;
	}
	if (check_free(o) == -1 || check_binaries(o) == -1)
		goto out;
	if (start_master(o, &s[n++]) == -1)
		goto fail;
	for (i = 0; i < o->agents; i++) {
		if (start_agent(o, &s[n++], i) == -1)
			goto fail;
	}
	if (start_relay(o, &s[n++]) == -1)
		goto fail;
	if (wait_ready(o, s, n) == -1 || write_cluster_json(o, s, n) == -1)
		goto fail;
	print_started(o, s, n);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "stopping what was started\n");
	stop_started(s, n, o->dir);
out:
	for (i = 0; i < n; i++) {
		free(s[i].url);
		free(s[i].log);
	}
	free(cause);
	return rc;
}

static const char up_usage[] =
    "butte up [--agents N] [--dir DIR] [--master_port P] [--relay_port P] "
    "[--agent_port P]\n"
    "\n"
    "Start a local cluster in the background: a master on 127.0.0.1, N agents on\n"
    "127.0.0.1, 127.0.0.2, ... and relay. Work dirs, logs, pid files and\n"
    "cluster.json go to DIR. Stop it with 'butte down'.\n"
    "\n"
    "flags:";

int cli_up(struct cli *cli, int argc, char **argv)
{
	struct up_opts o = { 0 };
	char *dir = NULL;
	const struct bt_flag flags[] = {
		{ "agents", BT_FLAG_INT, &o.agents, "2", "number of agents" },
		{ "dir", BT_FLAG_STRING, &dir, NULL, "state directory (default: the global --dir)" },
		{ "master_port", BT_FLAG_INT, &o.master_port, "5050", "the master's port" },
		{ "relay_port", BT_FLAG_INT, &o.relay_port, "8080", "relay's HTTP port" },
		{ "agent_port", BT_FLAG_INT, &o.agent_port, "5051",
		    "the agents' port (each agent has its own address)" },
		{ "task_port_base", BT_FLAG_INT, &o.task_port_base, "31000",
		    "agent i offers task ports BASE+500i to BASE+500i+499" },
		{ "timeout", BT_FLAG_DURATION, &o.timeout, "30secs",
		    "how long to wait for the cluster to come up" },
		{ "log_level", BT_FLAG_STRING, &o.log_level, "info", "the daemons' log level" },
		{ NULL, 0, NULL, NULL, NULL },
	};
	int rest = argc, rc = 1;

	if (cli_parse_flags(flags, argc, argv, up_usage, &rest) == -1)
		goto out;
	if (rest < argc) {
		cli_error("up takes no arguments (see 'butte up --help')");
		goto out;
	}
	if (o.agents < 1 || o.agents > MAX_AGENTS) {
		cli_error("--agents must be between 1 and %d", MAX_AGENTS);
		goto out;
	}
	if (o.task_port_base < 1024 || o.task_port_base + o.agents * 500 > 65535) {
		cli_error("--task_port_base leaves no room for %d agents' task ports", o.agents);
		goto out;
	}
	o.dir = dir != NULL ? dir : cli->dir;
	o.exe_dir = cli_exe_dir();
	rc = run_up(&o);
out:
	free(o.exe_dir);
	free(o.log_level);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------ down */

/* signal every live daemon whose name starts with prefix; fills pids */
static int signal_daemons(const char *dir, char **names, const char *prefix, int sig,
    pid_t *pids, int max)
{
	int n = 0;
	pid_t pid;

	for (char **p = names; *p != NULL && n < max; p++) {
		if (!bt_str_has_prefix(*p, prefix))
			continue;
		pid = live_pid(dir, *p);
		if (pid <= 0)
			continue;
		kill(pid, sig);
		printf("stopping %s (pid %d)\n", *p, (int)pid);
		pids[n++] = pid;
	}
	return n;
}

static void stop_group(const char *dir, char **names, const char *prefix, int sig,
    double grace)
{
	pid_t pids[MAX_AGENTS + 8];
	int n = signal_daemons(dir, names, prefix, sig, pids, MAX_AGENTS + 8);

	fflush(stdout);
	if (n > 0 && cli_wait_gone(pids, n, grace) > 0) {
		for (int i = 0; i < n; i++) {
			if (cli_pid_alive(pids[i])) {
				printf("pid %d did not stop within %.0f s: killing it\n", (int)pids[i],
				    grace);
				kill(pids[i], SIGKILL);
			}
		}
		cli_wait_gone(pids, n, 3);
	}
}

static const char down_usage[] =
    "butte down [--dir DIR]\n"
    "\n"
    "Stop the local cluster in DIR: relay stops, the agents kill their tasks and\n"
    "exit, then the master stops. Work dirs and logs stay in DIR.\n"
    "\n"
    "flags:";

int cli_down(struct cli *cli, int argc, char **argv)
{
	char *dir = NULL, **names = NULL, *cj = NULL;
	const struct bt_flag flags[] = {
		{ "dir", BT_FLAG_STRING, &dir, NULL, "state directory (default: the global --dir)" },
		{ NULL, 0, NULL, NULL, NULL },
	};
	const char *d;
	int rest = argc, rc = 1, live = 0, killed;

	if (cli_parse_flags(flags, argc, argv, down_usage, &rest) == -1)
		goto out;
	d = dir != NULL ? dir : cli->dir;
	names = pid_names(d);
	for (char **p = names; *p != NULL; p++)
		live += live_pid(d, *p) > 0;
	cj = xasprintf("%s/cluster.json", d);
	if (live == 0 && access(cj, F_OK) == -1) {
		printf("no cluster in %s\n", d);
		rc = 0;
		goto out;
	}
	/*
	 * relay first, so that it does not replace the tasks the agents are
	 * about to kill; then the agents, which kill their tasks on SIGUSR1;
	 * the master last, so the agents can still report while they drain
	 */
	stop_group(d, names, "relay", SIGTERM, 5);
	stop_group(d, names, "agent", SIGUSR1, 20);
	stop_group(d, names, "master", SIGTERM, 5);
	killed = cli_kill_under(d);
	if (killed > 0)
		printf("killed %d task process%s left under %s\n", killed, killed == 1 ? "" : "es", d);
	for (char **p = names; *p != NULL; p++)
		remove_pid_file(d, *p);
	printf(live > 0 ? "cluster in %s stopped\n" : "no cluster running in %s\n", d);
	rc = 0;
out:
	if (names != NULL)
		free_names(names);
	free(cj);
	free(dir);
	return rc;
}
