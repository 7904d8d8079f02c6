/*
 * docker_tasks.c -- running a task whose ContainerInfo.type is DOCKER.
 *
 * A launch walks these steps, each one non-blocking Engine API request
 * whose callback starts the next (docker.c sends them):
 *   engine ready?  wait for the first engine check; fail at once when the
 *                  engine is down or "docker" is not in --containerizers
 *   image          GET /images/{image}/json; 404 or forcePullImage: pull
 *                  (POST /images/create, the JSON progress stream is read as
 *                  it comes; an "error" in it or a 4xx/5xx fails the task
 *                  with Docker's message), then inspect it again. An image
 *                  whose "Architecture" (with "Variant") is not the agent's
 *                  "arch" attribute fails the task at once with
 *                  CONTAINER_LAUNCH_FAILED and "image 'X' is built for
 *                  ppc64le but this agent is x86_64 (engine architecture
 *                  'ppc64le')"; relay reads that shape to place the app
 *                  (docs/docker.md). An image without an architecture runs.
 *   create         POST /containers/create?name=mesos-<container id>
 *                  (docker_spec.c builds the body)
 *   start          POST /containers/{name}/start; then the container's logs
 *                  (followed and demultiplexed into the sandbox's stdout and
 *                  stderr) and POST /containers/{name}/wait, which answers
 *                  when the container exits
 *   inspect        the container's IP address; TASK_RUNNING
 * The exit code from wait (and OOMKilled from a last inspect) gives the
 * terminal update -- FINISHED for 0, FAILED otherwise, KILLED after a
 * kill -- once the log stream has drained (at most 2 s), then the container
 * is removed. A kill is POST /containers/{name}/stop?t=<grace>. Every
 * update carries the container's IP address in its container status.
 *
 * Recovery: the task record names the container (mesos-<container id>).
 * Once the engine answers, GET /containers/{name}/json tells whether it
 * still runs (the agent re-attaches: wait and logs again, the latter from
 * where the sandbox's stdout stopped), has exited meanwhile (its exit code
 * is reported) or is gone. A wait that breaks (engine restarted) falls back
 * to the same inspection.
 */
#include "docker.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEP_TIMEOUT    120.0   /* create, start, inspect */
#define PULL_TIMEOUT    3600.0
#define LOG_DRAIN       2.0     /* seconds the terminal update waits for the logs */
#define LINE_MAX_LEN    (1 << 20)

#define REASON(r)       MESOS__V1__TASK_STATUS__REASON__REASON_##r
#define STATE(s)        MESOS__V1__TASK_STATE__TASK_##s

static void begin_image(struct agent_docker_task *dt);
static void recheck(struct agent_docker_task *dt);
static void finish(struct agent_docker_task *dt);

bool agent_docker_wanted(const Mesos__V1__TaskInfo *info)
{
	return info->container != NULL &&
	    info->container->type == MESOS__V1__CONTAINER_INFO__TYPE__DOCKER;
}

static struct agent_docker *engine(const struct agent_docker_task *dt)
{
	return dt->task->agent->docker;
}

const char *agent_docker_task_ip(const struct agent_task *t)
{
	return t->docker != NULL ? t->docker->ip : NULL;
}

/* an update (its container status carries the container's address: updates.c) */
static void update(struct agent_docker_task *dt, Mesos__V1__TaskState state, const char *msg,
    int reason)
{
	agent_update_new(dt->task, state, msg, reason);
}

static void close_logs(struct agent_docker_task *dt)
{
	if (dt->out_fd >= 0)
		close(dt->out_fd);
	if (dt->err_fd >= 0)
		close(dt->err_fd);
	dt->out_fd = dt->err_fd = -1;
}

/* the task ends with this state; the container, if any, goes */
static void end_task(struct agent_docker_task *dt, Mesos__V1__TaskState state, const char *msg,
    int reason)
{
	struct agent_task *t = dt->task;

	docker_cancel(dt->call);
	dt->call = NULL;
	if (dt->timer_ev != NULL)
		evtimer_del(dt->timer_ev);
	dt->step = DOCKER_STEP_DONE;
	close_logs(dt);
	if (t->killing && state != STATE(FINISHED) && state != STATE(KILLED) &&
	    reason != REASON(CONTAINER_LIMITATION_MEMORY))
		state = STATE(KILLED);
	if (!bt_task_state_terminal(t->state))
		update(dt, state, msg, reason);
	t->ended = true;
	agent_checkpoint_task(t);
	if (dt->created && engine(dt)->client != NULL)
		docker_remove_container(engine(dt), dt->name, -1);
	dt->created = false;
	agent_task_maybe_remove(t);
}

static void fail(struct agent_docker_task *dt, const char *msg, int reason)
{
	end_task(dt, STATE(FAILED), msg, reason);
}

static char *call_error(struct agent_docker_task *dt, const char *what, int status,
    json_t *body, const char *raw, const char *error)
{
	char *m = docker_error_message(engine(dt), status, body, raw, error);
	char *msg = status == 0 ? xstrdup(m) : xasprintf("%s: %s", what, m);

	free(m);
	return msg;
}

static void arm_timer(struct agent_docker_task *dt, double seconds);

/* ---- logs: the multiplexed stream into the sandbox's stdout and stderr ---- */

static int log_data_cb(const void *data, size_t len, void *arg)
{
	struct agent_docker_task *dt = arg;
	const unsigned char *p = data;

	while (len > 0) {
		size_t n;
		if (dt->frame_left == 0) {
			n = sizeof dt->hdr - dt->hdr_len;
			if (n > len)
				n = len;
			memcpy(dt->hdr + dt->hdr_len, p, n);
			dt->hdr_len += n;
			p += n;
			len -= n;
			if (dt->hdr_len < sizeof dt->hdr)
				break;
			dt->hdr_len = 0;
			dt->frame_left = (size_t)dt->hdr[4] << 24 | (size_t)dt->hdr[5] << 16 |
			    (size_t)dt->hdr[6] << 8 | dt->hdr[7];
			dt->frame_fd = dt->hdr[0] == 2 ? dt->err_fd : dt->out_fd;
			continue;
		}
		n = dt->frame_left < len ? dt->frame_left : len;
		if (dt->frame_fd >= 0 && write(dt->frame_fd, p, n) < 0)
			log_debug("unable to write the logs of '%s': %s", dt->name, strerror(errno));
		dt->frame_left -= n;
		p += n;
		len -= n;
	}
	return 0;
}

static void logs_done_cb(int status, json_t *body, const char *raw, const char *error,
    void *arg)
{
	struct agent_docker_task *dt = arg;

	dt->logs = NULL;
	if (status != 200)
		log_debug("the log stream of '%s' ended with %d %s", dt->name, status,
		    error != NULL ? error : "");
	/* should the stream be followed again, only from here on */
	dt->logs_since = bt_now();
	if (dt->step == DOCKER_STEP_EXITED)
		finish(dt);
}

static int open_log(const struct agent_task *t, const char *file)
{
	char *path = xasprintf("%s/%s", t->sandbox, file);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		log_warn("unable to open '%s': %s", path, strerror(errno));
	free(path);
	return fd;
}

static void follow_logs(struct agent_docker_task *dt)
{
	char *path;

	if (dt->logs != NULL)
		return;
	if (dt->out_fd < 0)
		dt->out_fd = open_log(dt->task, "stdout");
	if (dt->err_fd < 0)
		dt->err_fd = open_log(dt->task, "stderr");
	dt->hdr_len = 0;
	dt->frame_left = 0;
	if (dt->logs_since > 0)
		path = xasprintf("/containers/%s/logs?follow=1&stdout=1&stderr=1&since=%.6f",
		    dt->name, dt->logs_since);
	else
		path = xasprintf("/containers/%s/logs?follow=1&stdout=1&stderr=1", dt->name);
	dt->logs = docker_request(engine(dt), "GET", path, NULL, 0, log_data_cb, logs_done_cb,
	    dt);
	free(path);
}

/* ---- the end of a container ---- */

static void finish(struct agent_docker_task *dt)
{
	char *msg;

	if (dt->step != DOCKER_STEP_EXITED)
		return;
	docker_cancel(dt->logs);
	dt->logs = NULL;
	if (dt->oom) {
		msg = xasprintf("Container exited with status %d: it ran out of memory",
		    dt->exit_code);
		end_task(dt, STATE(FAILED), msg, REASON(CONTAINER_LIMITATION_MEMORY));
	} else {
		msg = dt->exit_error != NULL && *dt->exit_error != '\0' ?
		    xasprintf("Container exited with status %d: %s", dt->exit_code,
		    dt->exit_error) : xasprintf("Container exited with status %d", dt->exit_code);
		end_task(dt, dt->task->killing ? STATE(KILLED) : dt->exit_code == 0 ?
		    STATE(FINISHED) : STATE(FAILED), msg, dt->exit_code == 0 || dt->task->killing ?
		    -1 : REASON(COMMAND_EXECUTOR_FAILED));
	}
	free(msg);
}

/* the exit is known; the terminal update waits for the logs to drain */
static void exited(struct agent_docker_task *dt)
{
	log_info("container '%s' of task '%s' exited with status %d", dt->name,
	    dt->task->task_id, dt->exit_code);
	docker_cancel(dt->wait);
	dt->wait = NULL;
	dt->step = DOCKER_STEP_EXITED;
	if (dt->logs == NULL) {
		finish(dt);
		return;
	}
	arm_timer(dt, LOG_DRAIN);
}

static void read_state(struct agent_docker_task *dt, json_t *state)
{
	dt->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
	dt->oom = json_is_true(json_object_get(state, "OOMKilled"));
	free(dt->exit_error);
	dt->exit_error = bt_json_string(state, "Error") != NULL ?
	    xstrdup(bt_json_string(state, "Error")) : NULL;
}

static void final_inspect_cb(int status, json_t *body, const char *raw, const char *error,
    void *arg)
{
	struct agent_docker_task *dt = arg;

	dt->call = NULL;
	if (status == 200)
		read_state(dt, json_object_get(body, "State"));
	exited(dt);
}

static void wait_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	char *path;

	dt->wait = NULL;
	if (status != 200 || json_object_get(body, "StatusCode") == NULL) {
		log_warn("lost the wait on container '%s': %d %s", dt->name, status,
		    error != NULL ? error : raw != NULL ? raw : "");
		dt->wait_failures++;
		arm_timer(dt, dt->wait_failures > 5 ? 5.0 : 1.0);
		return;
	}
	dt->wait_failures = 0;
	dt->exit_code = (int)json_integer_value(json_object_get(body, "StatusCode"));
	/* OOMKilled and the error are in the container's state */
	path = xasprintf("/containers/%s/json", dt->name);
	docker_cancel(dt->call);
	dt->call = docker_request(engine(dt), "GET", path, NULL, STEP_TIMEOUT, NULL,
	    final_inspect_cb, dt);
	free(path);
}

static void start_wait(struct agent_docker_task *dt)
{
	char *path = xasprintf("/containers/%s/wait", dt->name);

	docker_cancel(dt->wait);
	dt->wait = docker_request(engine(dt), "POST", path, NULL, 0, NULL, wait_cb, dt);
	free(path);
}

/* ---- kill ---- */

static void stop_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;

	dt->stop = NULL;
	if (status != 204 && status != 304)
		log_warn("unable to stop container '%s': %d %s", dt->name, status,
		    raw != NULL ? raw : error != NULL ? error : "");
}

static void stop_container(struct agent_docker_task *dt)
{
	double grace = dt->task->kill_grace;
	char *path = xasprintf("/containers/%s/stop?t=%d", dt->name, (int)(grace + 0.999));

	if (dt->stop == NULL)
		dt->stop = docker_request(engine(dt), "POST", path, NULL, grace + STEP_TIMEOUT,
		    NULL, stop_cb, dt);
	free(path);
}

void agent_docker_kill(struct agent_task *t)
{
	struct agent_docker_task *dt = t->docker;

	if (dt == NULL)
		return;
	switch (dt->step) {
	case DOCKER_STEP_WAIT_ENGINE:
		if (dt->recovering)
			break;  /* recheck() stops it once the engine answers */
		/* fall through */
	case DOCKER_STEP_IMAGE:
	case DOCKER_STEP_PULL:
		end_task(dt, STATE(KILLED), "the task was killed before its container started",
		    -1);
		break;
	case DOCKER_STEP_CREATE:
	case DOCKER_STEP_START:
		break;  /* their callbacks see t->killing */
	case DOCKER_STEP_INSPECT:
	case DOCKER_STEP_RUNNING:
		stop_container(dt);
		break;
	case DOCKER_STEP_EXITED:
	case DOCKER_STEP_DONE:
		break;
	}
}

/* ---- launch ---- */

static const char *container_ip(json_t *inspect)
{
	json_t *ns = json_object_get(inspect, "NetworkSettings");
	json_t *nets = json_object_get(ns, "Networks"), *n;
	const char *ip = bt_json_string(ns, "IPAddress"), *key;

	if (ip != NULL && *ip != '\0')
		return ip;
	json_object_foreach(nets, key, n) {
		ip = bt_json_string(n, "IPAddress");
		if (ip != NULL && *ip != '\0')
			return ip;
	}
	return NULL;
}

static void running(struct agent_docker_task *dt, json_t *inspect)
{
	struct agent_task *t = dt->task;
	const char *ip = container_ip(inspect);

	free(dt->ip);
	dt->ip = ip != NULL ? xstrdup(ip) : NULL;
	dt->step = DOCKER_STEP_RUNNING;
	dt->recovering = false;
	if (t->state == STATE(STAGING) || t->state == STATE(STARTING))
		update(dt, STATE(RUNNING), NULL, -1);
	if (t->killing)
		stop_container(dt);
}

static void inspect_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;

	dt->call = NULL;
	if (status != 200)
		log_warn("unable to inspect container '%s': %d %s", dt->name, status,
		    error != NULL ? error : "");
	log_info("container '%s' of task '%s' is running%s%s", dt->name, dt->task->task_id,
	    container_ip(body) != NULL ? " at " : "",
	    container_ip(body) != NULL ? container_ip(body) : "");
	running(dt, body);
}

static void start_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	char *path, *msg;

	dt->call = NULL;
	if (status != 204 && status != 304) {
		msg = call_error(dt, "unable to start the container", status, body, raw, error);
		fail(dt, msg, REASON(CONTAINER_LAUNCH_FAILED));
		free(msg);
		return;
	}
	follow_logs(dt);
	start_wait(dt);
	dt->step = DOCKER_STEP_INSPECT;
	path = xasprintf("/containers/%s/json", dt->name);
	dt->call = docker_request(engine(dt), "GET", path, NULL, STEP_TIMEOUT, NULL, inspect_cb,
	    dt);
	free(path);
}

static void create_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	char *path, *msg;

	dt->call = NULL;
	if (status != 201) {
		msg = call_error(dt, "unable to create the container", status, body, raw, error);
		fail(dt, msg, REASON(CONTAINER_LAUNCH_FAILED));
		free(msg);
		return;
	}
	dt->created = true;
	if (dt->task->killing) {
		end_task(dt, STATE(KILLED), "the task was killed before its container started",
		    -1);
		return;
	}
	dt->step = DOCKER_STEP_START;
	path = xasprintf("/containers/%s/start", dt->name);
	dt->call = docker_request(engine(dt), "POST", path, NULL, STEP_TIMEOUT, NULL, start_cb,
	    dt);
	free(path);
}

static void create(struct agent_docker_task *dt)
{
	char *cause = NULL, *path;
	json_t *body;

	if (dt->task->killing) {
		end_task(dt, STATE(KILLED), "the task was killed before its container started",
		    -1);
		return;
	}
	if ((body = docker_create_body(dt, &cause)) == NULL) {
		fail(dt, cause, REASON(TASK_INVALID));
		free(cause);
		return;
	}
	dt->step = DOCKER_STEP_CREATE;
	path = xasprintf("/containers/create?name=%s", dt->name);
	dt->call = docker_request(engine(dt), "POST", path, body, STEP_TIMEOUT, NULL, create_cb,
	    dt);
	free(path);
	json_decref(body);
}

/* one line of the pull's progress stream: remember the first error */
static void pull_line(struct agent_docker_task *dt, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL);
	const char *err = bt_json_string(json_object_get(j, "errorDetail"), "message");

	if (err == NULL)
		err = bt_json_string(j, "error");
	if (err != NULL && dt->pull_error == NULL)
		dt->pull_error = xstrdup(err);
	json_decref(j);
}

static int pull_data_cb(const void *data, size_t len, void *arg)
{
	struct agent_docker_task *dt = arg;
	const char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n') {
			pull_line(dt, dt->line != NULL ? dt->line : "", dt->line_len);
			dt->line_len = 0;
			continue;
		}
		if (dt->line_len >= LINE_MAX_LEN)
			continue;
		dt->line = xrealloc(dt->line, dt->line_len + 2);
		dt->line[dt->line_len++] = p[i];
	}
	return 0;
}

/* 0 when the inspected image may run here; otherwise fails the task, -1 */
static int check_arch(struct agent_docker_task *dt, json_t *inspect)
{
	char *msg = agent_image_arch_problem(dt->task->agent,
	    dt->task->info->container->docker->image,
	    json_string_value(json_object_get(inspect, "Architecture")),
	    json_string_value(json_object_get(inspect, "Variant")));

	if (msg == NULL)
		return 0;
	log_warn("task '%s': %s", dt->task->task_id, msg);
	fail(dt, msg, REASON(CONTAINER_LAUNCH_FAILED));
	free(msg);
	return -1;
}

/* the image again after a pull: its architecture decides */
static void pulled_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;

	dt->call = NULL;
	if (status == 200 && check_arch(dt, body) != 0)
		return;
	create(dt);
}

static void pull_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	const char *image = dt->task->info->container->docker->image;
	char *msg, *esc, *path;

	dt->call = NULL;
	if (dt->line_len > 0)
		pull_line(dt, dt->line, dt->line_len);
	dt->line_len = 0;
	if (status != 200 || dt->pull_error != NULL) {
		char *why = dt->pull_error != NULL ? xstrdup(dt->pull_error) :
		    docker_error_message(engine(dt), status, body, raw, error);
		msg = xasprintf("Failed to pull image '%s': %s", image, why);
		fail(dt, msg, REASON(CONTAINER_LAUNCH_FAILED));
		free(msg);
		free(why);
		return;
	}
	log_info("pulled image '%s' for task '%s'", image, dt->task->task_id);
	esc = docker_escape(image, "/:@");
	path = xasprintf("/images/%s/json", esc);
	dt->call = docker_request(engine(dt), "GET", path, NULL, STEP_TIMEOUT, NULL, pulled_cb,
	    dt);
	free(path);
	free(esc);
}

static void pull(struct agent_docker_task *dt)
{
	char *repo, *tag, *erepo, *etag, *path;

	docker_image_split(dt->task->info->container->docker->image, &repo, &tag);
	erepo = docker_escape(repo, "");
	etag = docker_escape(tag, "");
	path = xasprintf("/images/create?fromImage=%s&tag=%s", erepo, etag);
	log_info("pulling image '%s' for task '%s'", dt->task->info->container->docker->image,
	    dt->task->task_id);
	dt->step = DOCKER_STEP_PULL;
	dt->call = docker_request(engine(dt), "POST", path, NULL, PULL_TIMEOUT, pull_data_cb,
	    pull_cb, dt);
	free(path);
	free(etag);
	free(erepo);
	free(tag);
	free(repo);
}

static void image_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	char *msg, *what;

	dt->call = NULL;
	if (status == 200) {
		if (check_arch(dt, body) == 0)
			create(dt);
		return;
	}
	if (status == 404) {
		pull(dt);
		return;
	}
	what = xasprintf("unable to inspect image '%s'",
	    dt->task->info->container->docker->image);
	msg = call_error(dt, what, status, body, raw, error);
	fail(dt, msg, REASON(CONTAINER_LAUNCH_FAILED));
	free(msg);
	free(what);
}

static void begin_image(struct agent_docker_task *dt)
{
	const Mesos__V1__ContainerInfo__DockerInfo *di = dt->task->info->container->docker;
	char *esc, *path;

	if (di->has_force_pull_image && di->force_pull_image) {
		pull(dt);
		return;
	}
	esc = docker_escape(di->image, "/:@");
	path = xasprintf("/images/%s/json", esc);
	dt->step = DOCKER_STEP_IMAGE;
	dt->call = docker_request(engine(dt), "GET", path, NULL, STEP_TIMEOUT, NULL, image_cb, dt);
	free(path);
	free(esc);
}

/* ---- recovery and re-inspection ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_docker_task *dt = arg;

	if (dt->step == DOCKER_STEP_EXITED)
		finish(dt);
	else if (dt->step == DOCKER_STEP_RUNNING || dt->step == DOCKER_STEP_INSPECT ||
	    dt->step == DOCKER_STEP_WAIT_ENGINE)
		recheck(dt);
}

static void arm_timer(struct agent_docker_task *dt, double seconds)
{
	struct timeval tv = bt_timeval(seconds);

	if (dt->timer_ev == NULL)
		dt->timer_ev = evtimer_new(dt->task->agent->base, timer_cb, dt);
	evtimer_add(dt->timer_ev, &tv);
}

static void gone(struct agent_docker_task *dt)
{
	struct agent_task *t = dt->task;
	char *msg;

	dt->created = false;
	if (t->state == STATE(STAGING) || t->state == STATE(STARTING)) {
		fail(dt, "the agent stopped while it was launching the task", REASON(AGENT_RESTARTED));
		return;
	}
	msg = xasprintf("container '%s' no longer exists", dt->name);
	fail(dt, msg, REASON(EXECUTOR_TERMINATED));
	free(msg);
}

static void recheck_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker_task *dt = arg;
	json_t *state = json_object_get(body, "State");
	const char *st = bt_json_string(state, "Status");

	dt->call = NULL;
	if (status == 404) {
		gone(dt);
		return;
	}
	if (status != 200) {
		log_warn("unable to inspect container '%s': %d %s", dt->name, status,
		    error != NULL ? error : raw != NULL ? raw : "");
		dt->recovering = true;
		dt->step = DOCKER_STEP_WAIT_ENGINE;
		if (engine(dt)->state == DOCKER_ENGINE_READY)
			arm_timer(dt, 2.0);
		return;
	}
	dt->created = true;
	if (st != NULL && strcmp(st, "created") == 0) {
		fail(dt, "the agent stopped while it was launching the task", REASON(AGENT_RESTARTED));
		return;
	}
	if (json_is_true(json_object_get(state, "Running"))) {
		if (dt->recovering)
			log_info("re-attached to container '%s' of task '%s'", dt->name,
			    dt->task->task_id);
		follow_logs(dt);
		start_wait(dt);
		running(dt, body);
		return;
	}
	read_state(dt, state);
	dt->recovering = false;
	follow_logs(dt);
	exited(dt);
}

static void recheck(struct agent_docker_task *dt)
{
	char *path = xasprintf("/containers/%s/json", dt->name);

	docker_cancel(dt->call);
	dt->call = docker_request(engine(dt), "GET", path, NULL, STEP_TIMEOUT, NULL, recheck_cb,
	    dt);
	free(path);
}

void docker_engine_changed(struct agent *a)
{
	struct agent_task *t, *next;

	TAILQ_FOREACH_SAFE(t, &a->tasks, entry, next) {
		struct agent_docker_task *dt = t->docker;
		if (dt == NULL || dt->step != DOCKER_STEP_WAIT_ENGINE || dt->call != NULL)
			continue;
		if (a->docker->state == DOCKER_ENGINE_READY) {
			if (dt->recovering)
				recheck(dt);
			else
				begin_image(dt);
		} else if (a->docker->state == DOCKER_ENGINE_DOWN && !dt->recovering) {
			fail(dt, a->docker->error, REASON(CONTAINER_LAUNCH_FAILED));
		}
	}
}

static struct agent_docker_task *docker_task_new(struct agent_task *t)
{
	struct agent_docker_task *dt = xcalloc(1, sizeof *dt);

	dt->task = t;
	dt->name = xasprintf(DOCKER_NAME_PREFIX "%s", t->container_id);
	dt->out_fd = dt->err_fd = dt->frame_fd = -1;
	dt->step = DOCKER_STEP_WAIT_ENGINE;
	t->docker = dt;
	return dt;
}

/* why this agent cannot run the Docker task, or NULL */
static char *docker_problem(const struct agent_task *t)
{
	const struct agent *a = t->agent;
	const Mesos__V1__ContainerInfo *c = t->info->container;

	if (t->info->executor != NULL)
		return xstrdup("custom executors are not supported by butte-agent");
	if (c->docker == NULL || c->docker->image == NULL || *c->docker->image == '\0')
		return xstrdup("a DOCKER container needs docker.image");
	if (a->docker == NULL || !a->docker->enabled)
		return xasprintf("the docker containerizer is not enabled on this agent "
		    "(--containerizers=%s)", a->containerizers);
	return NULL;
}

void agent_docker_launch(struct agent_task *t)
{
	struct agent *a = t->agent;
	struct agent_docker_task *dt = docker_task_new(t);
	char *why = docker_problem(t);

	if (why != NULL) {
		fail(dt, why, a->docker != NULL && a->docker->enabled ?
		    REASON(TASK_INVALID) : REASON(CONTAINER_LAUNCH_FAILED));
		free(why);
		return;
	}
	if (a->docker->state == DOCKER_ENGINE_DOWN) {
		fail(dt, a->docker->error, REASON(CONTAINER_LAUNCH_FAILED));
		return;
	}
	log_info("launching task '%s' of framework '%s' in container '%s' (image '%s')",
	    t->task_id, t->framework_id, dt->name, t->info->container->docker->image);
	update(dt, STATE(STARTING), NULL, -1);
	if (a->docker->state == DOCKER_ENGINE_READY)
		begin_image(dt);
}

void agent_docker_recover(struct agent_task *t)
{
	struct agent *a = t->agent;
	struct agent_docker_task *dt = docker_task_new(t);
	char *path = xasprintf("%s/stdout", t->sandbox);
	struct stat st;

	dt->recovering = true;
	if (stat(path, &st) == 0)
		dt->logs_since = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
	free(path);
	if (a->docker == NULL || !a->docker->enabled) {
		dt->created = false;
		fail(dt, "the docker containerizer is not enabled on this agent any more",
		    REASON(AGENT_RESTARTED));
		return;
	}
	log_info("recovering task '%s' of framework '%s' in container '%s'", t->task_id,
	    t->framework_id, dt->name);
	if (a->docker->state == DOCKER_ENGINE_READY)
		recheck(dt);
}

void agent_docker_task_free(struct agent_task *t)
{
	struct agent_docker_task *dt = t->docker;

	if (dt == NULL)
		return;
	docker_cancel(dt->call);
	docker_cancel(dt->wait);
	docker_cancel(dt->logs);
	docker_cancel(dt->stop);
	if (dt->timer_ev != NULL)
		event_free(dt->timer_ev);
	close_logs(dt);
	free(dt->name);
	free(dt->ip);
	free(dt->pull_error);
	free(dt->line);
	free(dt->exit_error);
	free(dt);
	t->docker = NULL;
}
