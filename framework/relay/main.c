/*
 * main.c -- butte-relay: flags, the event loop, signals and shutdown.
 *
 * Parses the flag table, opens the SQLite state under --work_dir and loads
 * the framework id, apps and tasks, starts the REST API and the scheduler
 * connection, and runs one libevent loop. A periodic tick drives
 * heartbeat checks, kill retries, revives and deployment bookkeeping.
 * SIGINT and SIGTERM end the loop; the framework stays registered with
 * the master (failover), so a restarted relay adopts its running tasks.
 */
#include "relay.h"

#include "flags.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <malloc.h>

#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct relay *relay_main;

static const char usage[] =
    "butte-relay [--flag=value ...]\n"
    "A Marathon-compatible framework: keeps N instances of every app running\n"
    "on a butte (or Mesos) cluster and serves the Marathon v2 REST API.";

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;

	relay_batch_begin(r);
	relay_scheduler_tick(r);
	relay_tasks_tick(r);
	relay_deployments_check(r);
	relay_batch_end(r);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct relay *r = arg;

	log_info("signal %d: shutting down", (int)sig);
	event_base_loopbreak(r->base);
}

static char *current_user(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return xstrdup(pw != NULL ? pw->pw_name : "root");
}

static char *local_hostname(void)
{
	char name[256];

	if (gethostname(name, sizeof name) != 0)
		return xstrdup("localhost");
	name[sizeof name - 1] = '\0';
	return xstrdup(name);
}

/* "host:port", "http://host:port" or "http://host:port/" -> url and host:port */
static int parse_master(struct relay_config *c, char **cause)
{
	const char *m = c->master;
	size_t n;

	if (bt_str_has_prefix(m, "zk://")) {
		*cause = xasprintf("unsupported master '%s': use host:port", m);
		return -1;
	}
	if (bt_str_has_prefix(m, "http://"))
		m += strlen("http://");
	n = strcspn(m, "/");
	if (n == 0) {
		*cause = xasprintf("invalid master '%s'", c->master);
		return -1;
	}
	c->master_hostport = xstrndup(m, n);
	if (strchr(c->master_hostport, ':') == NULL) {
		char *hp = xasprintf("%s:5050", c->master_hostport);
		free(c->master_hostport);
		c->master_hostport = hp;
	}
	c->master_url = xasprintf("http://%s/api/v1/scheduler", c->master_hostport);
	return 0;
}

static void relay_free(struct relay *r)
{
	struct relay_app *app;
	struct relay_task *t;

	relay_deployments_release(r);
	while ((app = TAILQ_FIRST(&r->apps)) != NULL) {
		TAILQ_REMOVE(&r->apps, app, entry);
		relay_app_free(app);
	}
	while ((t = TAILQ_FIRST(&r->tasks)) != NULL) {
		TAILQ_REMOVE(&r->tasks, t, entry);
		relay_task_free(t);
	}
	relay_groups_release(r);
	relay_app_groups_release(r);
	bt_map_release(&r->app_index);
	free(r->task_hash);
	free(r->framework_id);
	free(r->stream_id);
	free(r->stream_header);
	free(r->cfg.master_url);
	free(r->cfg.master_hostport);
	free(r);
}

#define NFLAGS 21
#define RELAY_HEAP_KEEP (32 << 20)
#define CALL_CONNECTIONS 32      /* pipelined connections for calls to the master */

/* the flag table, pointing into c */
static void flag_table(struct bt_flag *f, struct relay_config *c)
{
	const struct bt_flag t[NFLAGS] = {
		{ "master", BT_FLAG_STRING, &c->master, "127.0.0.1:5050",
		    "the master: host:port or http://host:port" },
		{ "http_port", BT_FLAG_INT, &c->http_port, "8080", "port of the REST API" },
		{ "http_address", BT_FLAG_STRING, &c->http_address, "0.0.0.0",
		    "address the REST API listens on" },
		{ "hostname", BT_FLAG_STRING, &c->hostname, NULL,
		    "host name advertised to the master and in /v2/leader (default: this host's name)" },
		{ "work_dir", BT_FLAG_STRING, &c->work_dir, "/var/lib/butte/relay",
		    "directory of the state database relay.db" },
		{ "framework_name", BT_FLAG_STRING, &c->framework_name, "marathon",
		    "framework name registered with the master" },
		{ "mesos_user", BT_FLAG_STRING, &c->mesos_user, NULL,
		    "user tasks run as (default: the current user)" },
		{ "mesos_role", BT_FLAG_STRING, &c->mesos_role, "*", "role of the framework" },
		{ "failover_timeout", BT_FLAG_DURATION, &c->failover_timeout, "604800secs",
		    "how long the master keeps the framework's tasks while relay is away" },
		{ "local_port_min", BT_FLAG_INT, &c->local_port_min, "10000",
		    "lowest service port" },
		{ "local_port_max", BT_FLAG_INT, &c->local_port_max, "20000",
		    "highest service port" },
		{ "decline_offer_duration", BT_FLAG_STRING, &c->decline_offer_duration_text, "120000",
		    "refuse filter on declined offers (ms, or a duration such as 2mins)" },
		{ "offer_hold_duration", BT_FLAG_STRING, &c->offer_hold_duration_text, "1000",
		    "how long offers nothing was launched on are held for apps to come before "
		    "they are declined (ms; 0: declined at once)" },
		{ "launch_backlog", BT_FLAG_INT, &c->launch_backlog, "5000",
		    "changes to apps and groups wait while this many instances are yet to be "
		    "seen RUNNING (0: they never wait)" },
		{ "launch_backlog_wait", BT_FLAG_STRING, &c->launch_backlog_wait_text, "1000",
		    "the longest a change waits for the launch backlog (ms)" },
		{ "reconciliation_interval", BT_FLAG_STRING, &c->reconciliation_interval_text, "600000",
		    "period of task reconciliation, also done after every subscription (ms)" },
		{ "kill_retry_timeout", BT_FLAG_STRING, &c->kill_retry_timeout_text, "10000",
		    "resend a kill that has not been confirmed after this long (ms)" },
		{ "task_launch_timeout", BT_FLAG_STRING, &c->task_launch_timeout_text, "300000",
		    "a task that has not reached TASK_RUNNING by then is killed and replaced (ms)" },
		{ "task_launch_confirm_timeout", BT_FLAG_STRING, &c->task_launch_confirm_timeout_text,
		    "300000", "a launched task the master has not confirmed by then is given up as "
		    "TASK_LOST and replaced (ms)" },
		{ "log_level", BT_FLAG_STRING, &c->log_level, "info", "debug, info, warn or error" },
		{ NULL, 0, NULL, NULL, NULL },
	};

	memcpy(f, t, sizeof t);
}

/* a Marathon timing flag: milliseconds as Marathon takes them, or a duration ("5mins") */
static int marathon_ms(const char *name, const char *text, double *seconds, char **cause)
{
	char *end, *reason = NULL;
	double ms;

	errno = 0;
	ms = strtod(text, &end);
	if (end != text && *end == '\0' && errno == 0 && isfinite(ms) && ms >= 0 &&
	    strspn(text, "0123456789.") == strlen(text)) {
		*seconds = ms / 1000;
		return 0;
	}
	if (bt_duration_parse(text, seconds, &reason) == 0)
		return 0;
	*cause = xasprintf("invalid value '%s' for flag '--%s': expecting milliseconds or a "
	    "duration such as '5mins'", text, name);
	free(reason);
	return -1;
}

/* the Marathon timing flags into seconds; -1 with *cause */
static int finish_timeouts(struct relay_config *c, char **cause)
{
	const struct {
		const char *name;
		const char *text;
		double *dst;
	} t[] = {
		{ "decline_offer_duration", c->decline_offer_duration_text, &c->decline_offer_duration },
		{ "offer_hold_duration", c->offer_hold_duration_text, &c->offer_hold_duration },
		{ "launch_backlog_wait", c->launch_backlog_wait_text, &c->launch_backlog_wait },
		{ "reconciliation_interval", c->reconciliation_interval_text,
		    &c->reconciliation_interval },
		{ "kill_retry_timeout", c->kill_retry_timeout_text, &c->kill_retry_timeout },
		{ "task_launch_timeout", c->task_launch_timeout_text, &c->task_launch_timeout },
		{ "task_launch_confirm_timeout", c->task_launch_confirm_timeout_text,
		    &c->task_launch_confirm_timeout },
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		if (marathon_ms(t[i].name, t[i].text, t[i].dst, cause) != 0)
			return -1;
	return 0;
}

/* defaults that depend on the machine, and checks; -1 with *cause */
static int finish_config(struct relay_config *c, char **cause)
{
	if (finish_timeouts(c, cause) != 0)
		return -1;
	if (c->mesos_user == NULL)
		c->mesos_user = current_user();
	if (c->hostname == NULL)
		c->hostname = local_hostname();
	if (c->launch_backlog < 0) {
		*cause = xasprintf("invalid value '%d' for flag '--launch_backlog': expecting 0 "
		    "or more instances", c->launch_backlog);
		return -1;
	}
	if (c->local_port_min <= 0 || c->local_port_max > 65535 ||
	    c->local_port_min > c->local_port_max) {
		*cause = xasprintf("invalid service port range [%d-%d]", c->local_port_min,
		    c->local_port_max);
		return -1;
	}
	return parse_master(c, cause);
}

/* state, API, signals, the tick, the master connection */
static int setup(struct relay *r, char **cause)
{
	struct timeval tv = bt_timeval(0.25);

	signal(SIGPIPE, SIG_IGN);
	/*
	 * A GET /v2/tasks of 10,000 tasks builds a 4 MB answer. With glibc's
	 * defaults the heap shrinks after each and grows again for the next:
	 * a page fault per 4 KiB, a third of relay's time under a stream of
	 * such GETs. The heap keeps up to RELAY_HEAP_KEEP free at its top, and
	 * buffers that large come from it, not from mmap.
	 */
	mallopt(M_MMAP_THRESHOLD, RELAY_HEAP_KEEP);
	mallopt(M_TRIM_THRESHOLD, RELAY_HEAP_KEEP);
	TAILQ_INIT(&r->apps);
	bt_map_init(&r->app_index);
	bt_map_init(&r->groups);
	r->check_outdated = true;
	TAILQ_INIT(&r->tasks);
	TAILQ_INIT(&r->deployments);
	relay_main = r;
	r->started_at = bt_now();
	r->base = event_base_new();
	relay_events_init(r);
	if (relay_state_open(r, cause) != 0 || relay_state_load(r, cause) != 0 ||
	    relay_deployments_load(r, cause) != 0)
		return -1;
	r->client = bt_http_client_new(r->base);
	/*
	 * Calls (two ACKNOWLEDGEs for every task launched) are pipelined: what
	 * a loop turn sends leaves in one write per connection, and the master
	 * answers a connection's whole pipeline in one turn of its own. A few
	 * connections spread them over the master's reads.
	 */
	r->calls = bt_http_pipe_new(r->base, r->cfg.master_url, CALL_CONNECTIONS, 30, cause);
	if (r->calls == NULL)
		return -1;
	if (relay_api_start(r, cause) != 0)
		return -1;
	relay_admission_start(r);
	r->sigint = evsignal_new(r->base, SIGINT, signal_cb, r);
	r->sigterm = evsignal_new(r->base, SIGTERM, signal_cb, r);
	event_add(r->sigint, NULL);
	event_add(r->sigterm, NULL);
	r->tick = event_new(r->base, -1, EV_PERSIST, tick_cb, r);
	event_add(r->tick, &tv);
	log_info("relay %s listening on %s:%d, master %s, framework '%s'", RELAY_VERSION,
	    r->cfg.http_address, bt_http_server_port(r->http), r->cfg.master_hostport,
	    r->cfg.framework_name);
	relay_scheduler_start(r);
	return 0;
}

static void teardown(struct relay *r)
{
	struct relay_task *t;

	relay_scheduler_stop(r);
	relay_state_close(r);           /* answers and calls waiting for the disk leave first */
	TAILQ_FOREACH(t, &r->tasks, entry)
		relay_readiness_free(t);
	relay_readiness_release(r);
	relay_deployments_release(r);
	if (r->tick != NULL)
		event_free(r->tick);
	if (r->sigint != NULL)
		event_free(r->sigint);
	if (r->sigterm != NULL)
		event_free(r->sigterm);
	relay_events_release(r);        /* closes the event streams before the server goes */
	relay_admission_stop(r);
	if (r->http != NULL)
		bt_http_server_free(r->http);
	bt_http_pipe_free(r->calls);
	if (r->client != NULL)
		bt_http_client_free(r->client);
	/*
	 * A connection freed while one of its callbacks was still deferred
	 * keeps a reference until that callback runs (it finds no callback
	 * set and lets go); event_base_free() would drop it unrun.
	 */
	if (r->base != NULL) {
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		event_base_free(r->base);
	}
}

int main(int argc, char **argv)
{
	struct relay *r = xcalloc(1, sizeof *r);
	struct bt_flag flags[NFLAGS];
	char *cause = NULL;
	int rc = 1;

	flag_table(flags, &r->cfg);
	if (bt_flags_parse(flags, argc, argv, usage, NULL, &cause) != 0) {
		fprintf(stderr, "butte-relay: %s\n", cause);
		goto out;
	}
	if (bt_log_init("butte-relay", r->cfg.log_level) != 0) {
		fprintf(stderr, "butte-relay: unknown log level '%s'\n", r->cfg.log_level);
		goto out;
	}
	if (finish_config(&r->cfg, &cause) != 0 || setup(r, &cause) != 0) {
		log_error("%s", cause);
		goto out;
	}
	event_base_dispatch(r->base);
	rc = 0;
out:
	free(cause);
	teardown(r);
	bt_flags_release(flags);
	relay_placement_release();
	relay_free(r);
	return rc;
}
