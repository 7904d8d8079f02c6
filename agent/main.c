/*
 * main.c -- butte-agent: flags, startup, recovery, signals and the loop.
 *
 * Startup: parse the flag table (also BUTTE_<FLAG> from the environment),
 * create the work dir, work out the resources and attributes, read back
 * the agent id and the checkpointed tasks, reattach to the tasks that still
 * run, open the HTTP endpoints and start subscribing to the master.
 * Signals: SIGCHLD reaps task supervisors; SIGTERM and SIGINT leave the
 * tasks running (they are checkpointed and recovered by the next agent);
 * SIGUSR1 kills every task, waits for them (bounded) and exits -- this is
 * what `butte down` sends.
 */
#include "agent.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRAIN_EXTRA             10.0    /* seconds past the longest grace period */
#define DRAIN_POLL              0.1
#define DRAIN_LINGER            1.0     /* seconds to wait for acks after the last task */

static const char usage[] =
    "butte-agent [--flag=value ...]\n"
    "Runs tasks for a butte (or Mesos v1 compatible) master as sandboxed processes.";

/* the flag table, on the heap because it points into *a; caller frees */
static struct bt_flag *table_new(struct agent *a)
{
	const struct bt_flag table[] = {
		{ "master", BT_FLAG_STRING, &a->master, "127.0.0.1:5050",
		    "the master as host:port or http://host:port" },
		{ "ip", BT_FLAG_STRING, &a->ip, "0.0.0.0", "address to listen on" },
		{ "port", BT_FLAG_INT, &a->port, "5051", "port to listen on" },
		{ "hostname", BT_FLAG_STRING, &a->hostname, NULL,
		    "name the agent reports (default: --ip, or the host name for 0.0.0.0)" },
		{ "work_dir", BT_FLAG_STRING, &a->work_dir, "/var/lib/butte/agent",
		    "where sandboxes and checkpoints live" },
		{ "resources", BT_FLAG_STRING, &a->resources_flag, NULL,
		    "total resources, e.g. 'cpus:4;mem:8192;ports(*):[31000-32000]'; "
		    "what is left out is detected" },
		{ "attributes", BT_FLAG_STRING, &a->attributes_flag, NULL,
		    "attributes, e.g. 'rack:abc;zone:west'; 'arch' is detected unless given" },
		{ "log_level", BT_FLAG_STRING, &a->log_level, "info", "debug, info, warn or error" },
		{ "registration_backoff_factor", BT_FLAG_DURATION, &a->backoff_factor, "1secs",
		    "initial bound of the random delay before subscribing again" },
		{ "executor_shutdown_grace_period", BT_FLAG_DURATION, &a->kill_grace, "3secs",
		    "time between SIGTERM and SIGKILL when a task without kill policy is killed" },
		{ "executor_registration_timeout", BT_FLAG_DURATION,
		    &a->executor_registration_timeout, "1mins",
		    "how long fetching a task's URIs may take before the task fails" },
		{ "containerizers", BT_FLAG_STRING, &a->containerizers, "mesos",
		    "comma-separated: mesos (process containerizer), docker" },
		{ "docker_socket", BT_FLAG_STRING, &a->docker_socket, "/var/run/docker.sock",
		    "the Docker engine's Unix socket (with --containerizers=docker,...)" },
		{ "isolation", BT_FLAG_STRING, &a->isolation, "posix/cpu,posix/mem",
		    "isolators (informational; tasks always get rlimits and seccomp)" },
		{ "launcher_dir", BT_FLAG_STRING, &a->launcher_dir, NULL,
		    "where butte-supervise is (default: the directory of butte-agent)" },
		{ "simulate", BT_FLAG_INT, &a->simulate, "0",
		    "run this many simulated agents (sim-<i>) that report tasks RUNNING "
		    "without starting them (for benchmarks)" },
		{ "simulate_starting", BT_FLAG_BOOL, &a->simulate_starting, "false",
		    "simulated tasks report TASK_STARTING before TASK_RUNNING, as a real "
		    "agent's tasks do" },
		{ NULL, 0, NULL, NULL, NULL },
	};

	return xmemdup(table, sizeof table);
}

/* "host:port", "http://host:port" or "host" -> "http://host:port" */
static char *master_url(const char *master, char **cause)
{
	const char *hp = master;

	if (bt_str_has_prefix(master, "http://"))
		hp = master + 7;
	else if (strstr(master, "://") != NULL) {
		*cause = xasprintf("unsupported master '%s': expected host:port or http://host:port",
		    master);
		return NULL;
	}
	if (*hp == '\0' || *hp == ':' || *hp == '/') {
		*cause = xasprintf("invalid master '%s': no host", master);
		return NULL;
	}
	if (strchr(hp, '/') != NULL) {
		char *host = xstrndup(hp, strcspn(hp, "/"));
		char *url = strchr(host, ':') != NULL ? xasprintf("http://%s", host) :
		    xasprintf("http://%s:5050", host);
		free(host);
		return url;
	}
	return strchr(hp, ':') != NULL ? xasprintf("http://%s", hp) : xasprintf("http://%s:5050", hp);
}

static int check_containerizers(const char *list, char **cause)
{
	char *copy = xstrdup(list), *save = NULL, *tok;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "mesos") != 0 && strcmp(tok, "docker") != 0) {
			*cause = xasprintf("unknown containerizer '%s' in --containerizers", tok);
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

/* validate the flags and fill in what derives from them */
static int configure(struct agent *a, char **cause)
{
	char *real, host[HOST_NAME_MAX + 1];

	if (a->port < 0 || a->port > 65535) {
		*cause = xasprintf("invalid port '%d': not between 0 and 65535", a->port);
		return -1;
	}
	if (a->work_dir == NULL || *a->work_dir == '\0') {
		*cause = xstrdup("--work_dir must not be empty");
		return -1;
	}
	if (check_containerizers(a->containerizers, cause) != 0)
		return -1;
	if ((a->master_url = master_url(a->master, cause)) == NULL)
		return -1;
	if (bt_mkdirs(a->work_dir, 0755, cause) != 0)
		return -1;
	if ((real = realpath(a->work_dir, NULL)) == NULL) {
		*cause = xasprintf("unable to resolve '%s': %s", a->work_dir, strerror(errno));
		return -1;
	}
	free(a->work_dir);
	a->work_dir = real;
	if (agent_setup_resources(a, cause) != 0)
		return -1;
	if (a->hostname == NULL || *a->hostname == '\0') {
		free(a->hostname);
		if (strcmp(a->ip, "0.0.0.0") != 0)
			a->hostname = xstrdup(a->ip);
		else if (gethostname(host, sizeof host) == 0)
			a->hostname = xstrndup(host, sizeof host);
		else
			a->hostname = xstrdup("localhost");
	}
	return 0;
}

/* --ip unless it is 0.0.0.0, else the hostname when it is an address; caller frees */
static char *advertise_ip(const struct agent *a)
{
	struct in_addr in;

	if (strcmp(a->ip, "0.0.0.0") != 0 && inet_pton(AF_INET, a->ip, &in) == 1)
		return xstrdup(a->ip);
	if (inet_pton(AF_INET, a->hostname, &in) == 1)
		return xstrdup(a->hostname);
	return NULL;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg);

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct agent_task *t;
	bool pending = false;

	TAILQ_FOREACH(t, &a->tasks, entry)
		pending = pending || agent_task_pending(t);
	if (agent_tasks_alive(a) == 0 && a->drain_ended == 0)
		a->drain_ended = bt_monotonic();
	/* the terminal updates went out when the tasks ended; give the acks a moment */
	if (a->drain_ended > 0 && (!pending || !agent_link_subscribed(a->link) ||
	    bt_monotonic() > a->drain_ended + DRAIN_LINGER)) {
		log_info("every task has ended; exiting");
		agent_exit_loop(a);
	} else if (bt_monotonic() > a->drain_deadline) {
		log_warn("giving up waiting for %zu task(s) to end", agent_tasks_alive(a));
		agent_exit_loop(a);
	}
}

static void start_drain(struct agent *a)
{
	struct agent_task *t;
	struct timeval tv = bt_timeval(DRAIN_POLL);
	double longest = 0;

	if (a->draining)
		return;
	a->draining = true;
	log_info("SIGUSR1: killing every task before exiting");
	TAILQ_FOREACH(t, &a->tasks, entry) {
		agent_kill_task(t, t->kill_grace);
		if (t->kill_grace > longest)
			longest = t->kill_grace;
	}
	a->drain_deadline = bt_monotonic() + longest + DRAIN_EXTRA;
	a->drain_ev = event_new(a->base, -1, EV_PERSIST, drain_cb, a);
	event_add(a->drain_ev, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;

	switch (sig) {
	case SIGCHLD:
		agent_reap_children(a);
		break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: exiting; tasks keep running and are recovered on restart",
		    strsignal((int)sig));
		agent_exit_loop(a);
		break;
	case SIGUSR1:
		start_drain(a);
		break;
	}
}

void agent_exit_loop(struct agent *a)
{
	event_base_loopbreak(a->base);
}

static void graveyard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct agent_task *t;

	while ((t = TAILQ_FIRST(&a->graveyard)) != NULL) {
		TAILQ_REMOVE(&a->graveyard, t, entry);
		agent_task_free(t);
	}
}

static void recover(struct agent *a)
{
	struct agent_task *t, *next;
	char *cause = NULL;

	if (agent_checkpoint_load(a, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		return;
	}
	TAILQ_FOREACH_SAFE(t, &a->tasks, entry, next)
		agent_recover_task(t);
}

static void setup_signals(struct agent *a)
{
	signal(SIGPIPE, SIG_IGN);
	a->sigchld_ev = evsignal_new(a->base, SIGCHLD, signal_cb, a);
	a->sigterm_ev = evsignal_new(a->base, SIGTERM, signal_cb, a);
	a->sigint_ev = evsignal_new(a->base, SIGINT, signal_cb, a);
	a->sigusr1_ev = evsignal_new(a->base, SIGUSR1, signal_cb, a);
	event_add(a->sigchld_ev, NULL);
	event_add(a->sigterm_ev, NULL);
	event_add(a->sigint_ev, NULL);
	event_add(a->sigusr1_ev, NULL);
}

static void teardown(struct agent *a)
{
	struct agent_task *t;

	if (a->http != NULL)
		bt_http_server_free(a->http);
	if (a->client != NULL)
		bt_http_client_free(a->client);
	bt_http_pipe_free(a->calls);
	agent_link_free(a->link);
	while ((t = TAILQ_FIRST(&a->tasks)) != NULL) {
		agent_task_unlink(a, t);
		agent_task_free(t);
	}
	bt_map_release(&a->task_index);
	graveyard_cb(-1, 0, a);
	agent_containerizer_release(a);
	if (a->drain_ev != NULL)
		event_free(a->drain_ev);
	if (a->graveyard_ev != NULL)
		event_free(a->graveyard_ev);
	if (a->sigchld_ev != NULL) {
		event_free(a->sigchld_ev);
		event_free(a->sigterm_ev);
		event_free(a->sigint_ev);
		event_free(a->sigusr1_ev);
	}
	json_decref(a->completed);
	bt_resources_release(&a->resources);
	bt_attributes_release(&a->attributes);
	free(a->master_url);
	free(a->endpoint);
	free(a->advertise_ip);
	free(a->agent_id);
	free(a->boot_id);
	if (a->base != NULL)
		event_base_free(a->base);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
}

/* with 0, 1 or 2 closed, a pipe or socket could land there and be clobbered later */
static void keep_std_fds_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd < 3)
		;
	if (fd >= 3)
		close(fd);
}

int main(int argc, char **argv)
{
	struct agent agent, *a = &agent;
	struct bt_flag *table;
	char *cause = NULL;
	int rc = 1;

	keep_std_fds_open();
	memset(a, 0, sizeof *a);
	a->lock_fd = -1;
	a->filter_fd = -1;
	a->launcher_fd = -1;
	TAILQ_INIT(&a->tasks);
	bt_map_init_borrowed(&a->task_index);
	TAILQ_INIT(&a->graveyard);
	a->completed = json_array();
	a->start_time = bt_now();
	table = table_new(a);
	a->flag_table = table;
	bt_log_init("butte-agent", NULL);
	if (bt_flags_parse(table, argc, argv, usage, NULL, &cause) != 0 ||
	    (bt_log_init("butte-agent", a->log_level) != 0 &&
	    (cause = xasprintf("invalid log level '%s'", a->log_level)) != NULL) ||
	    configure(a, &cause) != 0) {
		fprintf(stderr, "butte-agent: %s\n", cause);
		goto out;
	}
	if (a->simulate > 0) {
		rc = agent_simulate(a);
		goto out;
	}
	a->base = event_base_new();
	a->graveyard_ev = event_new(a->base, -1, 0, graveyard_cb, a);
	setup_signals(a);
	if (agent_checkpoint_init(a, &cause) != 0 || agent_http_init(a, &cause) != 0 ||
	    agent_containerizer_init(a, &cause) != 0) {
		fprintf(stderr, "butte-agent: %s\n", cause);
		log_error("%s", cause);
		goto out;
	}
	if (a->port == 0)
		a->port = bt_http_server_port(a->http);
	a->advertise_ip = advertise_ip(a);
	a->endpoint = xasprintf("%s:%d", strcmp(a->ip, "0.0.0.0") == 0 ? a->hostname : a->ip,
	    a->port);
	a->client = bt_http_client_new(a->base);
	if ((a->calls = agent_calls_new(a, 2, &cause)) == NULL) {
		log_error("%s", cause);
		goto out;
	}
	a->link = agent_link_new(a);
	{
		char *res = bt_resources_format(&a->resources);
		log_info("butte-agent %s on %s (work dir '%s', master %s), resources %s",
		    AGENT_VERSION, a->endpoint, a->work_dir, a->master_url, res);
		free(res);
	}
	recover(a);
	agent_reap_children(a);
	agent_link_start(a->link);
	event_base_dispatch(a->base);
	rc = 0;
out:
	free(cause);
	teardown(a);
	bt_flags_release(table);
	free(table);
	return rc;
}
