/*
 * health.c -- health checks next to the task: HTTP(S), TCP and COMMAND.
 *
 * A task whose TaskInfo carries a HealthCheck is checked from the moment
 * it runs until it is killed or ends, inside the agent's event loop:
 * HTTP and HTTPS through libcurl's multi-socket API (no certificate
 * verification, as Marathon; 200-399 is healthy, 1xx is ignored or a
 * failure by ignoreHttp1xx), TCP through a non-blocking connect, COMMAND
 * through "/bin/sh -c" in the task's sandbox with the task's environment,
 * killed at its timeout and reaped by the agent's SIGCHLD loop.
 *
 * What runs: relay passes the app's complete list of Marathon checks
 * (ports resolved) as JSON in the variable BUTTE_HEALTH_CHECKS of
 * HealthCheck.command.environment. Such checks only report: the framework
 * decides kills. Any other framework's HealthCheck is run with Mesos's
 * semantics, including the kill after consecutive_failures.
 *
 * Results go out as TASK_RUNNING updates with TaskStatus.healthy, source
 * SOURCE_EXECUTOR and reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED: one
 * "healthy" update when every check passes after the task was not known
 * healthy, and one "unhealthy" update per counted failure, with the
 * message "health check failed N consecutive times: <why>" (with several
 * checks: "health check #i failed ...", and "health check #i passed" when
 * one recovers while another still fails). Past maxConsecutiveFailures + 3
 * failures in a row, failure updates go out only at powers of two and at
 * most every 30 s otherwise, and
 * only the newest few acknowledged health updates are kept per task, so
 * update volume and memory stay bounded. As in Mesos, failures before the
 * first success are not counted within the grace period; nor are failures
 * while the agent is disconnected from the master.
 */
#include "agent.h"
#include "child.h"
#include "http_client.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEALTH_ENV              "BUTTE_HEALTH_CHECKS"
#define REPORT_EVERY            30.0    /* seconds between failure updates past the bound */
#define REPORT_BOUND_MIN        3
#define KEEP_HEALTH_STATUSES    8       /* acknowledged health updates kept per task */

extern char **environ;

enum check_kind { CHECK_HTTP, CHECK_TCP, CHECK_COMMAND };
enum check_result { RESULT_OK, RESULT_FAIL, RESULT_IGNORE };

struct agent_check {
	struct agent_health *h;
	size_t index;
	enum check_kind kind;
	bool https;
	bool mesos;                     /* a Mesos-run kind: delaySeconds applies */
	int port;
	char *path;
	char *command;
	char *url;
	double grace, interval, timeout, delay;
	int max_failures;
	bool ignore_1xx;

	struct event *timer;            /* the next run */
	struct event *io_ev;            /* TCP connect or COMMAND timeout */
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];
	int fd;
	pid_t pid;
	bool timed_out;
	bool running;
	bool warned;
	double run_at;                  /* monotonic start of the latest run */

	int consecutive;
	bool has_result, ok, ever_ok;
	double last_report;             /* monotonic */
};

struct agent_health {
	struct agent_task *task;
	struct agent_check *checks;
	size_t n;
	bool report_only;               /* the framework decides kills */
	bool stopped;
	double started_at;              /* monotonic */
	bool reported, reported_healthy;
};

static void check_done(struct agent_check *c, enum check_result res, const char *why);

/* ---- libcurl multi in the loop (one per process) ---- */

static CURLM *multi;
static struct event_base *curl_base;
static struct event *curl_timer;

static void curl_collect(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
		char *priv = NULL;
		struct agent_check *c;
		CURLcode result = msg->data.result;
		long code = 0;
		char *why;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		c = (struct agent_check *)priv;
		curl_multi_remove_handle(multi, c->easy);
		curl_easy_cleanup(c->easy);
		c->easy = NULL;
		if (code >= 200 && code < 400) {
			check_done(c, RESULT_OK, NULL);
			continue;
		}
		if (code >= 100 && code < 200 && c->ignore_1xx) {
			check_done(c, RESULT_IGNORE, "informational status ignored");
			continue;
		}
		if (code > 0)
			why = xasprintf("HTTP GET %s returned status %ld", c->url, code);
		else
			why = xasprintf("HTTP GET %s failed: %s", c->url, c->errbuf[0] != '\0' ?
			    c->errbuf : curl_easy_strerror(result));
		check_done(c, RESULT_FAIL, why);
		free(why);
	}
}

static void curl_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	int action = 0, running = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(multi, fd, action, &running);
	curl_collect();
}

static void curl_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	int running = 0;

	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	curl_collect();
}

static int curl_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(curl_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(curl_timer, &tv);
	return 0;
}

static int curl_socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct event *ev = sockp;
	short kind = EV_PERSIST;

	if (ev != NULL)
		event_free(ev);
	if (what == CURL_POLL_REMOVE) {
		curl_multi_assign(multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	ev = event_new(curl_base, fd, kind, curl_sock_cb, NULL);
	event_add(ev, NULL);
	curl_multi_assign(multi, fd, ev);
	return 0;
}

static void curl_setup(struct event_base *base)
{
	if (multi != NULL)
		return;
	bt_curl_global_init();
	multi = curl_multi_init();
	if (multi == NULL)
		bt_fatal("unable to create a curl multi handle");
	curl_base = base;
	curl_timer = evtimer_new(base, curl_timeout_cb, NULL);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
}

static size_t discard_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/* ---- running one check ---- */

/* where checks connect: the agent's address (the task's host port lives there) */
static const char *target_ip(const struct agent *a)
{
	return a->advertise_ip != NULL ? a->advertise_ip : "127.0.0.1";
}

static void run_http(struct agent_check *c)
{
	long ms = (long)(c->timeout * 1000);
	CURL *e = curl_easy_init();

	if (e == NULL)
		bt_fatal("unable to create a curl handle");
	c->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "butte-agent/" AGENT_VERSION);
	c->easy = e;
	if (curl_multi_add_handle(multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		c->easy = NULL;
		check_done(c, RESULT_FAIL, "unable to start the HTTP request");
	}
}

static void tcp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_check *c = arg;
	const char *ip = target_ip(c->h->task->agent);
	int err = 0;
	socklen_t len = sizeof err;
	char *why = NULL;

	event_free(c->io_ev);
	c->io_ev = NULL;
	if (what & EV_TIMEOUT)
		why = xasprintf("connection to %s:%d timed out after %g s", ip, c->port, c->timeout);
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
		why = xasprintf("connection to %s:%d failed: %s", ip, c->port,
		    strerror(err != 0 ? err : errno));
	close(c->fd);
	c->fd = -1;
	check_done(c, why == NULL ? RESULT_OK : RESULT_FAIL, why);
	free(why);
}

static void run_tcp(struct agent_check *c)
{
	const char *ip = target_ip(c->h->task->agent);
	struct sockaddr_in sin;
	struct timeval tv = bt_timeval(c->timeout);
	char *why;
	int fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)c->port);
	inet_pton(AF_INET, ip, &sin.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0) {
		close(fd);
		check_done(c, RESULT_OK, NULL);
		return;
	}
	if (fd < 0 || errno != EINPROGRESS) {
		why = xasprintf("connection to %s:%d failed: %s", ip, c->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		check_done(c, RESULT_FAIL, why);
		free(why);
		return;
	}
	c->fd = fd;
	c->io_ev = event_new(c->h->task->agent->base, fd, EV_WRITE, tcp_cb, c);
	event_add(c->io_ev, &tv);
}

static void command_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_check *c = arg;

	if (c->pid <= 0)
		return;
	c->timed_out = true;
	killpg(c->pid, SIGKILL);
}

static void command_child(const struct agent_task *t, char **argv, char **envp)
    __attribute__((noreturn));
static void command_child(const struct agent_task *t, char **argv, char **envp)
{
	int null;

	setsid();
	bt_child_reset_signals();
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	close_range(3, ~0U, 0);
	if (chdir(t->sandbox) != 0)
		_exit(126);
	environ = envp;
	execve("/bin/sh", argv, envp);
	_exit(127);
}

static bool is_docker(const struct agent_task *t)
{
	return t->info->container != NULL &&
	    t->info->container->type == MESOS__V1__CONTAINER_INFO__TYPE__DOCKER;
}

static void run_command(struct agent_check *c)
{
	struct agent_task *t = c->h->task;
	struct timeval tv = bt_timeval(c->timeout);
	char *argv[] = { "sh", "-c", c->command, NULL };
	char **envp;
	pid_t pid;
	char *why;

	if (is_docker(t)) {
		if (!c->warned)
			log_warn("task '%s': COMMAND health checks of Docker tasks are not run",
			    t->task_id);
		c->warned = true;
		check_done(c, RESULT_IGNORE, "not run for Docker tasks");
		return;
	}
	envp = agent_task_env(t);
	pid = fork();
	if (pid == 0)
		command_child(t, argv, envp);
	agent_strv_free(envp);
	if (pid < 0) {
		why = xasprintf("unable to fork the check command: %s", strerror(errno));
		check_done(c, RESULT_FAIL, why);
		free(why);
		return;
	}
	c->pid = pid;
	c->io_ev = evtimer_new(t->agent->base, command_timeout_cb, c);
	evtimer_add(c->io_ev, &tv);
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_check *c = arg;

	if (c->h->stopped || c->running)
		return;
	c->running = true;
	c->timed_out = false;
	c->run_at = bt_monotonic();
	switch (c->kind) {
	case CHECK_HTTP:
		run_http(c);
		break;
	case CHECK_TCP:
		run_tcp(c);
		break;
	case CHECK_COMMAND:
		run_command(c);
		break;
	}
}

static void cancel(struct agent_check *c)
{
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (c->io_ev != NULL)
		event_free(c->io_ev);
	c->io_ev = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->easy != NULL) {
		curl_multi_remove_handle(multi, c->easy);
		curl_easy_cleanup(c->easy);
	}
	c->easy = NULL;
	if (c->pid > 0)
		killpg(c->pid, SIGKILL);
	c->pid = 0;
	c->running = false;
}

/* ---- results ---- */

static bool is_health_status(const Mesos__V1__TaskStatus *st)
{
	return st->has_reason && st->reason ==
	    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_HEALTH_CHECK_STATUS_UPDATED;
}

/* drop the oldest acknowledged health update once a task holds enough of them */
static void prune_statuses(struct agent_task *t)
{
	size_t i, n = 0, first = 0;

	for (i = 0; i < t->acked; i++) {
		if (!is_health_status(t->statuses[i]))
			continue;
		if (n++ == 0)
			first = i;
	}
	if (n < KEEP_HEALTH_STATUSES)
		return;
	mesos__v1__task_status__free_unpacked(t->statuses[first], NULL);
	memmove(&t->statuses[first], &t->statuses[first + 1],
	    (t->nstatuses - first - 1) * sizeof *t->statuses);
	t->nstatuses--;
	t->acked--;
}

static void report(struct agent_health *h, bool healthy, const char *message)
{
	struct agent_task *t = h->task;

	if (t->killing || t->ended || t->state != MESOS__V1__TASK_STATE__TASK_RUNNING)
		return;
	prune_statuses(t);
	h->reported = true;
	h->reported_healthy = healthy;
	agent_update_health(t, healthy, message);
}

static bool all_ok(const struct agent_health *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (!h->checks[i].has_result || !h->checks[i].ok)
			return false;
	return true;
}

static void check_ok(struct agent_check *c)
{
	struct agent_health *h = c->h;
	bool was_ok = c->has_result && c->ok;
	char *msg;

	if (!c->ever_ok)
		log_info("task '%s': health check %zu passed for the first time", h->task->task_id,
		    c->index + 1);
	c->consecutive = 0;
	c->ok = c->has_result = c->ever_ok = true;
	if (all_ok(h)) {
		if (!h->reported || !h->reported_healthy)
			report(h, true, NULL);
	} else if (!was_ok && h->n > 1 && h->reported && !h->reported_healthy) {
		/* one of several checks recovered while another still fails */
		msg = xasprintf("health check #%zu passed", c->index + 1);
		report(h, false, msg);
		free(msg);
	}
}

static void check_failed(struct agent_check *c, const char *why)
{
	struct agent_health *h = c->h;
	struct agent_task *t = h->task;
	double now = bt_monotonic();
	int bound = (c->max_failures > 0 ? c->max_failures : 0) + REPORT_BOUND_MIN;
	char *msg;

	if (!c->ever_ok && now - h->started_at < c->grace) {
		log_debug("task '%s': health check failed within its grace period: %s", t->task_id,
		    why);
		return;
	}
	if (!agent_link_subscribed(t->agent->link)) {
		log_info("task '%s': health check failed while the agent is disconnected from the "
		    "master (not counted): %s", t->task_id, why);
		return;
	}
	c->consecutive++;
	c->ok = false;
	c->has_result = true;
	if (h->n > 1)
		msg = xasprintf("health check #%zu failed %d consecutive times: %s", c->index + 1,
		    c->consecutive, why);
	else
		msg = xasprintf("health check failed %d consecutive times: %s", c->consecutive, why);
	log_info("task '%s': %s", t->task_id, msg);
	if (!h->reported || h->reported_healthy || c->consecutive <= bound ||
	    (c->consecutive & (c->consecutive - 1)) == 0 || now - c->last_report >= REPORT_EVERY) {
		c->last_report = now;
		report(h, false, msg);
	}
	free(msg);
	if (!h->report_only && c->max_failures > 0 && c->consecutive >= c->max_failures) {
		log_info("task '%s' failed its health check %d times in a row: killing it",
		    t->task_id, c->consecutive);
		agent_kill_task(t, t->kill_grace);
	}
}

static void check_done(struct agent_check *c, enum check_result res, const char *why)
{
	struct agent_health *h = c->h;
	double next;
	struct timeval tv;

	c->running = false;
	if (h->stopped)
		return;
	if (res == RESULT_OK)
		check_ok(c);
	else if (res == RESULT_FAIL)
		check_failed(c, why);
	else
		log_debug("task '%s': health check result ignored: %s", h->task->task_id, why);
	if (h->stopped)
		return;
	next = c->interval - (bt_monotonic() - c->run_at);
	tv = bt_timeval(next > 0 ? next : 0);
	evtimer_add(c->timer, &tv);
}

/* a child of the agent ended: the COMMAND check it ran is done */
bool agent_health_reaped(struct agent *a, pid_t pid, int status)
{
	struct agent_task *t;
	struct agent_check *c;
	char *why = NULL;
	size_t i;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		for (i = 0; t->health != NULL && i < t->health->n; i++) {
			c = &t->health->checks[i];
			if (c->pid != pid)
				continue;
			c->pid = 0;
			if (c->io_ev != NULL)
				event_free(c->io_ev);
			c->io_ev = NULL;
			if (c->timed_out)
				why = xasprintf("command '%s' timed out after %g s", c->command,
				    c->timeout);
			else if (WIFSIGNALED(status))
				why = xasprintf("command '%s' terminated with signal %s", c->command,
				    strsignal(WTERMSIG(status)));
			else if (WEXITSTATUS(status) != 0)
				why = xasprintf("command '%s' exited with status %d", c->command,
				    WEXITSTATUS(status));
			check_done(c, why == NULL ? RESULT_OK : RESULT_FAIL, why);
			free(why);
			return true;
		}
	}
	return false;
}

/* ---- setup ---- */

/* one check of relay's list: {"protocol", "port", "path", "command", timings...} */
static bool parse_marathon(struct agent_check *c, const json_t *j)
{
	const char *proto = bt_json_string(j, "protocol");

	if (proto == NULL)
		proto = "HTTP";
	c->mesos = bt_str_has_prefix(proto, "MESOS_") || strcmp(proto, "COMMAND") == 0;
	if (c->mesos && strcmp(proto, "COMMAND") != 0)
		proto += strlen("MESOS_");
	if (strcmp(proto, "COMMAND") == 0)
		c->kind = CHECK_COMMAND;
	else if (strcmp(proto, "TCP") == 0)
		c->kind = CHECK_TCP;
	else if (strcmp(proto, "HTTP") == 0 || strcmp(proto, "HTTPS") == 0)
		c->kind = CHECK_HTTP;
	else
		return false;
	c->https = strcmp(proto, "HTTPS") == 0;
	c->port = (int)bt_json_number(j, "port", 0);
	c->path = xstrdup(bt_json_string(j, "path") ? bt_json_string(j, "path") : "/");
	c->command = xstrdup(bt_json_string(j, "command") ? bt_json_string(j, "command") : "");
	c->grace = bt_json_number(j, "gracePeriodSeconds", 300);
	c->interval = bt_json_number(j, "intervalSeconds", 60);
	c->timeout = bt_json_number(j, "timeoutSeconds", 20);
	c->delay = c->mesos ? bt_json_number(j, "delaySeconds", 15) : 0;
	c->max_failures = (int)bt_json_number(j, "maxConsecutiveFailures", 3);
	c->ignore_1xx = json_is_true(json_object_get(j, "ignoreHttp1xx"));
	return c->kind == CHECK_COMMAND || (c->port > 0 && c->port < 65536);
}

/* a Mesos HealthCheck, with Mesos's defaults */
static bool parse_mesos(struct agent_check *c, const Mesos__V1__HealthCheck *hc)
{
	bool command = hc->has_type ? hc->type == MESOS__V1__HEALTH_CHECK__TYPE__COMMAND :
	    hc->command != NULL && hc->http == NULL;

	c->mesos = true;
	if (command && hc->command != NULL && hc->command->value != NULL) {
		c->kind = CHECK_COMMAND;
		c->command = xstrdup(hc->command->value);
	} else if ((!hc->has_type || hc->type == MESOS__V1__HEALTH_CHECK__TYPE__HTTP) &&
	    hc->http != NULL) {
		c->kind = CHECK_HTTP;
		c->port = (int)hc->http->port;
		c->path = xstrdup(hc->http->path != NULL ? hc->http->path : "/");
		c->https = hc->http->scheme != NULL && strcmp(hc->http->scheme, "https") == 0;
	} else if (hc->has_type && hc->type == MESOS__V1__HEALTH_CHECK__TYPE__TCP &&
	    hc->tcp != NULL) {
		c->kind = CHECK_TCP;
		c->port = (int)hc->tcp->port;
	} else {
		return false;
	}
	if (c->path == NULL)
		c->path = xstrdup("/");
	if (c->command == NULL)
		c->command = xstrdup("");
	c->grace = hc->has_grace_period_seconds ? hc->grace_period_seconds : 10;
	c->interval = hc->has_interval_seconds ? hc->interval_seconds : 10;
	c->timeout = hc->has_timeout_seconds ? hc->timeout_seconds : 20;
	c->delay = hc->has_delay_seconds ? hc->delay_seconds : 15;
	c->max_failures = hc->has_consecutive_failures ? (int)hc->consecutive_failures : 3;
	return c->kind == CHECK_COMMAND || (c->port > 0 && c->port < 65536);
}

/* relay's list of checks from the HealthCheck's environment, or NULL */
static json_t *relay_checks(const Mesos__V1__HealthCheck *hc)
{
	const Mesos__V1__Environment *env = hc->command != NULL ? hc->command->environment : NULL;
	char *cause = NULL;
	json_t *list;
	size_t i;

	for (i = 0; env != NULL && i < env->n_variables; i++) {
		const Mesos__V1__Environment__Variable *v = env->variables[i];
		if (v->name == NULL || strcmp(v->name, HEALTH_ENV) != 0 || v->value == NULL)
			continue;
		list = bt_json_parse(v->value, strlen(v->value), &cause);
		if (list == NULL || !json_is_array(list)) {
			log_warn("ignoring an invalid %s: %s", HEALTH_ENV, cause ? cause : "not a list");
			free(cause);
			json_decref(list);
			return NULL;
		}
		return list;
	}
	return NULL;
}

static void check_init(struct agent_health *h, struct agent_check *c)
{
	struct agent *a = h->task->agent;
	struct timeval tv;

	c->h = h;
	c->index = (size_t)(c - h->checks);
	c->fd = -1;
	if (c->interval <= 0)
		c->interval = 1;
	if (c->timeout <= 0)
		c->timeout = c->interval;
	if (c->kind == CHECK_HTTP)
		c->url = xasprintf("%s://%s:%d%s%s", c->https ? "https" : "http", target_ip(a),
		    c->port, c->path[0] == '/' ? "" : "/", c->path);
	c->timer = evtimer_new(a->base, run_cb, c);
	tv = bt_timeval(c->delay > 0 ? c->delay : 0);
	evtimer_add(c->timer, &tv);
}

/* the newest TaskStatus.healthy this task reported (after an agent restart) */
static void previous_health(struct agent_health *h)
{
	const struct agent_task *t = h->task;
	size_t i;

	for (i = t->nstatuses; i > 0; i--) {
		if (!t->statuses[i - 1]->has_healthy)
			continue;
		h->reported = true;
		h->reported_healthy = t->statuses[i - 1]->healthy;
		return;
	}
}

static void start(struct agent_task *t)
{
	const Mesos__V1__HealthCheck *hc = t->info->health_check;
	struct agent_health *h = xcalloc(1, sizeof *h);
	json_t *list = relay_checks(hc), *j;
	size_t i, n = list != NULL ? json_array_size(list) : 1;

	t->health = h;
	h->task = t;
	h->started_at = bt_monotonic();
	h->report_only = list != NULL;
	h->checks = xcalloc(n, sizeof *h->checks);
	for (i = 0; i < n; i++) {
		struct agent_check *c = &h->checks[h->n];
		bool ok;
		j = list != NULL ? json_array_get(list, i) : NULL;
		ok = j != NULL ? parse_marathon(c, j) : parse_mesos(c, hc);
		if (!ok) {
			log_warn("task '%s': ignoring health check %zu, which names no port or "
			    "command", t->task_id, i + 1);
			free(c->path);
			free(c->command);
			memset(c, 0, sizeof *c);
			continue;
		}
		h->n++;
	}
	json_decref(list);
	previous_health(h);
	if (h->n > 0)
		curl_setup(t->agent->base);
	for (i = 0; i < h->n; i++)
		check_init(h, &h->checks[i]);
	log_info("task '%s': running %zu health check%s", t->task_id, h->n, h->n == 1 ? "" : "s");
}

static void stop(struct agent_health *h)
{
	size_t i;

	if (h->stopped)
		return;
	h->stopped = true;
	for (i = 0; i < h->n; i++)
		cancel(&h->checks[i]);
}

/* start the checks when the task runs; stop them once it is killed or ends */
void agent_health_sync(struct agent_task *t)
{
	bool running = t->state == MESOS__V1__TASK_STATE__TASK_RUNNING && !t->killing &&
	    !t->ended;

	if (t->agent->simulated || t->info == NULL || t->info->health_check == NULL)
		return;
	if (t->health != NULL) {
		if (!running)
			stop(t->health);
		return;
	}
	if (running)
		start(t);
}

void agent_health_free(struct agent_task *t)
{
	struct agent_health *h = t->health;
	size_t i;

	if (h == NULL)
		return;
	stop(h);
	for (i = 0; i < h->n; i++) {
		struct agent_check *c = &h->checks[i];
		if (c->timer != NULL)
			event_free(c->timer);
		free(c->path);
		free(c->command);
		free(c->url);
	}
	free(h->checks);
	free(h);
	t->health = NULL;
}
