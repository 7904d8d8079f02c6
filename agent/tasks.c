/*
 * tasks.c -- a running task's life after launch: end, kill, recovery, removal.
 *
 * A task ends when its supervisor does. The agent hears of that through
 * SIGCHLD (its own supervisors, reaped with a waitpid(-1, WNOHANG) loop)
 * or, for supervisors recovered after an agent restart, through a pidfd
 * (or a one-second poll where pidfds are missing). It then reads the exit
 * status the supervisor wrote and sends the terminal update: FINISHED for
 * exit 0, FAILED otherwise, KILLED when a kill was asked for. A kill sends
 * SIGTERM to the task's process group and SIGKILL after the grace period.
 * A task is dropped once it has ended and its terminal update is
 * acknowledged; removal goes through a graveyard freed from the loop so no
 * callback ever runs on a freed task.
 */
#include "agent.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int agent_proc_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p, state;
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || sscanf(p + 1, " %c", &state) != 1)
		return -1;
	if (state == 'Z' || state == 'X')
		return -1;
	/* field 3 is the state; the start time is field 22 */
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return -1;
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

void agent_task_add(struct agent *a, struct agent_task *t)
{
	TAILQ_INSERT_TAIL(&a->tasks, t, entry);
	if (bt_map_get(&a->task_index, t->task_id) != NULL)
		a->task_id_clashes++;
	bt_map_put(&a->task_index, t->task_id, t);
}

void agent_task_unlink(struct agent *a, struct agent_task *t)
{
	TAILQ_REMOVE(&a->tasks, t, entry);
	if (bt_map_get(&a->task_index, t->task_id) == t)
		bt_map_remove(&a->task_index, t->task_id);
}

/*
 * The index holds one task per id: the newest. Two frameworks' tasks of
 * the same id are rare; once that happened, what the index misses is
 * looked for by a walk.
 */
struct agent_task *agent_task_find(struct agent *a, const char *framework_id, const char *task_id)
{
	struct agent_task *t = bt_map_get(&a->task_index, task_id);

	if (t != NULL && (framework_id == NULL || strcmp(t->framework_id, framework_id) == 0))
		return t;
	if (a->task_id_clashes == 0)
		return NULL;
	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (strcmp(t->task_id, task_id) == 0 &&
		    (framework_id == NULL || strcmp(t->framework_id, framework_id) == 0))
			return t;
	}
	return NULL;
}

size_t agent_tasks_alive(const struct agent *a)
{
	const struct agent_task *t;
	size_t n = 0;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (!t->ended && (t->supervisor_pid > 0 || t->docker != NULL))
			n++;
	}
	return n;
}

static void close_pipe(struct agent_task *t)
{
	if (t->exec_ev != NULL)
		event_free(t->exec_ev);
	t->exec_ev = NULL;
	if (t->exec_fd >= 0)
		close(t->exec_fd);
	t->exec_fd = -1;
}

/* the launch pipe is closed: exec worked (RUNNING) or it failed (FAILED) */
static void pipe_eof(struct agent_task *t)
{
	close_pipe(t);
	if (bt_task_state_terminal(t->state))
		return;
	if (t->supervisor_pid <= 0) {
		t->ended = true;
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_FAILED,
		    "the task's supervisor did not start",
		    MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED);
		agent_task_maybe_remove(t);
		return;
	}
	if (t->exec_errno != 0) {
		char *why = agent_launch_error(t);
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_FAILED, why,
		    MESOS__V1__TASK_STATUS__REASON__REASON_COMMAND_EXECUTOR_FAILED);
		free(why);
		return;
	}
	if (t->task_pid > 0 && (t->state == MESOS__V1__TASK_STATE__TASK_STARTING ||
	    t->state == MESOS__V1__TASK_STATE__TASK_STAGING))
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_RUNNING, NULL, -1);
}

void agent_exec_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_task *t = arg;

	if (agent_exec_pipe_read(t))
		pipe_eof(t);
}

static void stop_watching(struct agent_task *t)
{
	if (t->watch_ev != NULL)
		event_free(t->watch_ev);
	t->watch_ev = NULL;
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pidfd = -1;
	if (t->kill_ev != NULL)
		evtimer_del(t->kill_ev);
}

/* the terminal state and message from the supervisor's "exited N" / "signaled N" */
static int final_state(struct agent_task *t, char **message, int *reason)
{
	char *path = xasprintf("%s/exit_status", t->run_dir);
	char *text = NULL, *cause = NULL, what[16] = "";
	int code = 0, state;

	*reason = -1;
	if (bt_read_file(path, &text, NULL, &cause) != 0 ||
	    sscanf(text, "%15s %d", what, &code) != 2) {
		*message = xstrdup("the task's supervisor ended without an exit status; "
		    "the task process was lost");
		*reason = MESOS__V1__TASK_STATUS__REASON__REASON_EXECUTOR_TERMINATED;
		state = MESOS__V1__TASK_STATE__TASK_FAILED;
		goto out;
	}
	if (strcmp(what, "signaled") == 0)
		*message = xasprintf("Command terminated with signal %s", strsignal(code));
	else
		*message = xasprintf("Command exited with status %d", code);
	if (t->killing)
		state = MESOS__V1__TASK_STATE__TASK_KILLED;
	else if (strcmp(what, "exited") == 0 && code == 0)
		state = MESOS__V1__TASK_STATE__TASK_FINISHED;
	else
		state = MESOS__V1__TASK_STATE__TASK_FAILED;
out:
	free(cause);
	free(text);
	free(path);
	return state;
}

static void supervisor_ended(struct agent_task *t)
{
	char *message = NULL;
	int state, reason;

	if (t->ended)
		return;
	if (t->exec_fd >= 0) {
		agent_exec_pipe_read(t);
		pipe_eof(t);
	}
	stop_watching(t);
	t->ended = true;
	log_info("the supervisor of task '%s' (pid %d) has ended", t->task_id,
	    (int)t->supervisor_pid);
	if (bt_task_state_terminal(t->state)) {
		agent_checkpoint_task(t);
		agent_task_maybe_remove(t);
		return;
	}
	state = final_state(t, &message, &reason);
	agent_update_new(t, state, message, reason);
	free(message);
	agent_task_maybe_remove(t);
}

static struct agent_task *find_supervised(struct agent *a, pid_t pid)
{
	struct agent_task *t;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (t->child && t->supervisor_pid == pid)
			return t;
	}
	return NULL;
}

/*
 * The task a reaped supervisor ran. A supervisor announces itself on its
 * launch pipe before anything else, so one the agent has not heard of yet
 * is found by reading the pipes of tasks still waiting for theirs.
 */
static struct agent_task *reaped_task(struct agent *a, pid_t pid)
{
	struct agent_task *t = find_supervised(a, pid);

	if (t != NULL)
		return t;
	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (t->supervisor_pid <= 0 && t->exec_fd >= 0)
			agent_exec_pipe_read(t);
	}
	return find_supervised(a, pid);
}

void agent_reap_children(struct agent *a)
{
	struct agent_task *t;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		t = reaped_task(a, pid);
		if (t == NULL) {
			if (agent_launcher_reaped(a, pid) || agent_health_reaped(a, pid, st) ||
			    agent_fetch_reaped(a, pid, st))
				continue;
			log_debug("reaped process %d", (int)pid);
			continue;
		}
		if (WIFSIGNALED(st))
			log_warn("the supervisor of task '%s' was killed by signal %d", t->task_id,
			    WTERMSIG(st));
		supervisor_ended(t);
	}
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_task *t = arg;

	if (t->ended || t->task_pid <= 0)
		return;
	log_info("task '%s' outlived its %.1f s grace period; sending SIGKILL", t->task_id,
	    t->kill_grace);
	if (killpg(t->task_pid, SIGKILL) != 0 && errno != ESRCH)
		log_warn("unable to kill task '%s': %s", t->task_id, strerror(errno));
}

static void signal_task(struct agent_task *t)
{
	struct timeval tv = bt_timeval(t->kill_grace);

	if (t->task_pid > 0 && killpg(t->task_pid, SIGTERM) != 0 && errno != ESRCH)
		log_warn("unable to signal task '%s': %s", t->task_id, strerror(errno));
	if (t->kill_ev == NULL)
		t->kill_ev = evtimer_new(t->agent->base, kill_cb, t);
	evtimer_add(t->kill_ev, &tv);
}

static bool wants_killing_state(struct agent_task *t)
{
	const Mesos__V1__FrameworkInfo *fw = agent_task_framework(t);
	size_t i;

	for (i = 0; fw != NULL && i < fw->n_capabilities; i++) {
		if (fw->capabilities[i]->type ==
		    MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE)
			return true;
	}
	return false;
}

void agent_kill_task(struct agent_task *t, double grace)
{
	if (t->ended || bt_task_state_terminal(t->state) || t->killing)
		return;
	t->killing = true;
	if (t->fetch != NULL) {
		agent_fetch_kill(t);
		return;
	}
	agent_health_sync(t);
	t->kill_grace = grace < 0 ? 0 : grace;
	log_info("killing task '%s' of framework '%s' (grace period %.1f s)", t->task_id,
	    t->framework_id, t->kill_grace);
	if (wants_killing_state(t))
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_KILLING, NULL, -1);
	else
		agent_checkpoint_task(t);
	if (t->docker != NULL)
		agent_docker_kill(t);
	else
		signal_task(t);
}

void agent_kill(struct agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__KillPolicy *policy)
{
	struct agent_task *t = agent_task_find(a, framework_id, task_id);
	double grace;

	if (t == NULL) {
		log_info("kill for task '%s' of framework '%s', which this agent does not run",
		    task_id, framework_id);
		agent_update_send_once(a, framework_id, task_id, MESOS__V1__TASK_STATE__TASK_LOST,
		    "the task is not running on this agent",
		    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_UNKNOWN);
		return;
	}
	grace = t->kill_grace;
	if (policy != NULL && policy->grace_period != NULL)
		grace = (double)policy->grace_period->nanoseconds / 1e9;
	agent_kill_task(t, grace);
}

void agent_shutdown_framework(struct agent *a, const char *framework_id)
{
	struct agent_task *t, *next;

	log_info("shutting down framework '%s'", framework_id);
	TAILQ_FOREACH_SAFE(t, &a->tasks, entry, next) {
		if (strcmp(t->framework_id, framework_id) != 0)
			continue;
		t->forget = true;
		agent_kill_task(t, t->kill_grace);
		agent_task_maybe_remove(t);
	}
}

static void pidfd_cb(evutil_socket_t fd, short what, void *arg)
{
	supervisor_ended(arg);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_task *t = arg;
	unsigned long long start;

	if (agent_proc_start_time(t->supervisor_pid, &start) != 0 || start != t->supervisor_start)
		supervisor_ended(t);
}

static void watch(struct agent_task *t)
{
	struct event_base *base = t->agent->base;
	int fd = (int)syscall(SYS_pidfd_open, t->supervisor_pid, 0);
	struct timeval tv = bt_timeval(1.0);

	if (fd >= 0) {
		t->pidfd = fd;
		t->watch_ev = event_new(base, fd, EV_READ, pidfd_cb, t);
		event_add(t->watch_ev, NULL);
		return;
	}
	log_debug("pidfd_open(%d): %s; polling instead", (int)t->supervisor_pid, strerror(errno));
	t->watch_ev = event_new(base, -1, EV_PERSIST, poll_cb, t);
	event_add(t->watch_ev, &tv);
}

/* the task under a supervisor whose pid report the agent missed, or 0 */
static pid_t first_child(pid_t pid)
{
	char path[96];
	FILE *f;
	int child = 0;

	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fscanf(f, "%d", &child) != 1)
		child = 0;
	fclose(f);
	return (pid_t)child;
}

/* a checkpointed task after an agent restart: reattach, or learn how it ended */
void agent_recover_task(struct agent_task *t)
{
	unsigned long long start;

	if (t->ended || bt_task_state_terminal(t->state)) {
		t->ended = true;
		agent_task_maybe_remove(t);
		return;
	}
	if (agent_docker_wanted(t->info)) {
		agent_docker_recover(t);
		return;
	}
	if (t->supervisor_pid <= 0) {
		t->ended = true;
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_FAILED,
		    "the agent stopped while it was launching the task",
		    MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_RESTARTED);
		return;
	}
	if (agent_proc_start_time(t->supervisor_pid, &start) != 0 || start != t->supervisor_start) {
		log_info("task '%s' ended while the agent was down", t->task_id);
		supervisor_ended(t);
		return;
	}
	if (t->task_pid <= 0)
		t->task_pid = first_child(t->supervisor_pid);
	log_info("recovered task '%s' of framework '%s' (supervisor %d, task %d)", t->task_id,
	    t->framework_id, (int)t->supervisor_pid, (int)t->task_pid);
	watch(t);
	agent_health_sync(t);
	if (t->state == MESOS__V1__TASK_STATE__TASK_STARTING && t->task_pid > 0)
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_RUNNING, NULL, -1);
	if (t->killing)
		signal_task(t);
}

/* for /state's completed_frameworks; a simulated agent serves no /state */
static void completed_add(struct agent *a, struct agent_task *t)
{
	if (a->simulated)
		return;
	json_array_append_new(a->completed, json_pack("{s:o, s:o}", "framework",
	    agent_framework_json(t), "executor", agent_executor_json(t)));
	while (json_array_size(a->completed) > AGENT_COMPLETED_MAX)
		json_array_remove(a->completed, 0);
}

void agent_task_maybe_remove(struct agent_task *t)
{
	struct agent *a = t->agent;

	if (!t->ended || (!bt_task_state_terminal(t->state) && !t->forget))
		return;
	if (agent_task_pending(t) && !t->forget)
		return;
	log_debug("forgetting task '%s' of framework '%s'", t->task_id, t->framework_id);
	completed_add(a, t);
	agent_checkpoint_remove(t);
	close_pipe(t);
	stop_watching(t);
	if (t->retry_ev != NULL)
		evtimer_del(t->retry_ev);
	agent_task_unlink(a, t);
	TAILQ_INSERT_TAIL(&a->graveyard, t, entry);
	event_active(a->graveyard_ev, EV_TIMEOUT, 0);
}

void agent_task_free(struct agent_task *t)
{
	size_t i;

	agent_health_free(t);
	agent_docker_task_free(t);
	agent_fetch_free(t);
	close_pipe(t);
	stop_watching(t);
	if (t->kill_ev != NULL)
		event_free(t->kill_ev);
	if (t->retry_ev != NULL)
		event_free(t->retry_ev);
	for (i = 0; i < t->nstatuses; i++)
		mesos__v1__task_status__free_unpacked(t->statuses[i], NULL);
	free(t->statuses);
	if (t->info != NULL)
		mesos__v1__task_info__free_unpacked(t->info, NULL);
	if (t->framework != NULL)
		mesos__v1__framework_info__free_unpacked(t->framework, NULL);
	free(t->packed_info);
	free(t->packed_framework);
	free(t->container_id);
	free(t->framework_id);
	free(t->task_id);
	free(t->sandbox);
	free(t->run_dir);
	free(t);
}
