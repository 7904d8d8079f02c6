/*
 * containerizer.c -- the process containerizer: launching a task.
 *
 * Every task gets a sandbox directory (Mesos's layout, under work_dir),
 * its CommandInfo.uris fetched into it (fetch.c), and a supervisor. The
 * agent forks the supervisor; the supervisor starts its own session,
 * becomes the subreaper of everything the task starts, forks
 * the task and waits for it; then it kills and reaps what is left of the
 * task's process group, writes the exit status atomically to the run's
 * meta dir and exits. The task process
 * starts its own session and process group (so a kill reaches everything
 * it started), takes stdin from /dev/null and appends stdout and stderr to
 * the sandbox, runs in the sandbox with a clean environment (env.c),
 * without core dumps and behind a small seccomp deny-list, and execs
 * "/bin/sh -c <value>" or, with shell=false, the program and its argv.
 *
 * The supervisor is what lets tasks outlive an agent restart without
 * losing their exit status: the task is never the agent's child. A
 * close-on-exec pipe from the supervisor and the task tells the agent the
 * task's pid, and either an exec failure (an errno) or, at EOF, that exec
 * succeeded: TASK_STARTING is sent at fork, TASK_RUNNING at that EOF.
 * Everything a child needs is prepared before fork; the children only
 * make system calls.
 */
#include "agent.h"
#include "ids.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define REAP_TRIES      200     /* x 5 ms: how long the supervisor waits for the group */

extern char **environ;

/* records on the launch pipe; writes of this size are atomic */
struct pipe_rec {
	int32_t kind;
	int32_t stage;
	int32_t value;
};

enum { REC_PID = 1, REC_EXEC = 2, REC_SETUP = 3 };
enum { STAGE_STDIN = 1, STAGE_STDOUT, STAGE_STDERR, STAGE_CHDIR, STAGE_FORK };

/* everything the children need, prepared before fork */
struct launch_plan {
	const char *file;
	char **argv;
	char **envp;
	char *stdout_path, *stderr_path;
	const char *sandbox;
	const char *run_dir;
	char *status_path, *status_tmp;
	int pipe_w;
	void *seccomp;
	bool search_path;
};

static const char *const denied_syscalls[] = {
	"kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module",
	"delete_module", "swapon", "swapoff",
};

int agent_containerizer_init(struct agent *a)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	size_t i;

	agent_docker_init(a);
	if (ctx == NULL) {
		log_warn("seccomp is not available; tasks run without a syscall filter");
		return 0;
	}
	/*
	 * Syscalls of another architecture are let through rather than killing
	 * the task: under qemu-user the kernel sees the emulator's syscalls.
	 * On x86_64 the 32-bit ABIs are filtered too.
	 */
	seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW);
	if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
		seccomp_arch_add(ctx, SCMP_ARCH_X86);
		seccomp_arch_add(ctx, SCMP_ARCH_X32);
	}
	for (i = 0; i < sizeof denied_syscalls / sizeof denied_syscalls[0]; i++) {
		int nr = seccomp_syscall_resolve_name(denied_syscalls[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0)
			log_debug("seccomp: unable to deny '%s'", denied_syscalls[i]);
	}
	/* root may load a filter without no_new_privs, so setuid programs keep working */
	if (geteuid() == 0)
		seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	a->seccomp = ctx;
	return 0;
}

void agent_containerizer_release(struct agent *a)
{
	agent_docker_release(a);
	agent_fetch_release(a);
	if (a->seccomp != NULL)
		seccomp_release(a->seccomp);
	a->seccomp = NULL;
}

/* ---- in the children: system calls only ---- */

static void report(int fd, int kind, int stage, int value)
{
	struct pipe_rec r = { kind, stage, value };
	ssize_t n;

	do
		n = write(fd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
}

static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t all;
	int sig;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static int redirect(const char *path, int flags, int target)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (dup2(fd, target) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void task_child(const struct launch_plan *p) __attribute__((noreturn));
static void task_child(const struct launch_plan *p)
{
	struct rlimit core = { 0, 0 };

	setsid();
	reset_signals();
	if (redirect("/dev/null", O_RDONLY, 0) != 0) {
		report(p->pipe_w, REC_SETUP, STAGE_STDIN, errno);
		_exit(127);
	}
	if (redirect(p->stdout_path, O_WRONLY | O_CREAT | O_APPEND, 1) != 0) {
		report(p->pipe_w, REC_SETUP, STAGE_STDOUT, errno);
		_exit(127);
	}
	if (redirect(p->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 2) != 0) {
		report(p->pipe_w, REC_SETUP, STAGE_STDERR, errno);
		_exit(127);
	}
	if (chdir(p->sandbox) != 0) {
		report(p->pipe_w, REC_SETUP, STAGE_CHDIR, errno);
		_exit(127);
	}
	setrlimit(RLIMIT_CORE, &core);
	if (p->seccomp != NULL) {
		int rc = seccomp_load(p->seccomp);
		if (rc != 0)
			dprintf(2, "butte-agent: unable to load the seccomp filter: %s\n",
			    strerror(-rc));
	}
	environ = p->envp;
	if (p->search_path)
		execvp(p->file, p->argv);
	else
		execve(p->file, p->argv, p->envp);
	report(p->pipe_w, REC_EXEC, 0, errno);
	_exit(127);
}

static volatile sig_atomic_t supervised_pid;

static void forward_term(int sig)
{
	if (supervised_pid > 0)
		killpg(supervised_pid, SIGTERM);
}

static void write_status(const struct launch_plan *p, const char *text)
{
	int fd = open(p->status_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0 || fsync(fd) != 0) {
		close(fd);
		return;
	}
	close(fd);
	rename(p->status_tmp, p->status_path);
}

/* whatever the task left behind in its process group goes with it */
static void reap_group(pid_t pgid)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	int i;

	killpg(pgid, SIGKILL);
	for (i = 0; i < REAP_TRIES; i++) {
		pid_t r;
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (r < 0 || killpg(pgid, 0) != 0)
			break;
		nanosleep(&pause, NULL);
	}
}

static void supervise(const struct launch_plan *p) __attribute__((noreturn));
static void supervise(const struct launch_plan *p)
{
	struct sigaction sa;
	char text[64];
	pid_t pid;
	int st, null;

	setsid();
	reset_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (p->pipe_w > 3)
		close_range(3, (unsigned)p->pipe_w - 1, 0);
	close_range((unsigned)p->pipe_w + 1, ~0U, 0);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	/* hold no sandbox as cwd: the supervisor is not a task process */
	(void)chdir("/");
	prctl(PR_SET_NAME, "butte-supervise");
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_term;
	sigaction(SIGTERM, &sa, NULL);

	pid = fork();
	if (pid < 0) {
		report(p->pipe_w, REC_SETUP, STAGE_FORK, errno);
		_exit(1);
	}
	if (pid == 0)
		task_child(p);
	supervised_pid = pid;
	report(p->pipe_w, REC_PID, 0, pid);
	close(p->pipe_w);
	/* as subreaper, orphans of the task are ours: reap them on the way */
	for (;;) {
		pid_t r = waitpid(-1, &st, 0);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			_exit(1);
	}
	reap_group(pid);
	if (WIFEXITED(st))
		snprintf(text, sizeof text, "exited %d\n", WEXITSTATUS(st));
	else
		snprintf(text, sizeof text, "signaled %d\n", WTERMSIG(st));
	write_status(p, text);
	_exit(0);
}

/* ---- in the agent ---- */

static bool valid_id(const char *id)
{
	const char *c;

	if (id == NULL || *id == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 ||
	    strlen(id) > 255)
		return false;
	for (c = id; *c != '\0'; c++) {
		if (*c == '/' || *c == '\\' || (unsigned char)*c < 0x20)
			return false;
	}
	return true;
}

static void plan_release(struct launch_plan *p)
{
	agent_strv_free(p->argv);
	agent_strv_free(p->envp);
	free(p->stdout_path);
	free(p->stderr_path);
	free(p->status_path);
	free(p->status_tmp);
}

static void plan_init(struct launch_plan *p, struct agent_task *t)
{
	const Mesos__V1__CommandInfo *cmd = t->info->command;
	size_t i;

	memset(p, 0, sizeof *p);
	p->sandbox = t->sandbox;
	p->run_dir = t->run_dir;
	p->seccomp = t->agent->seccomp;
	p->stdout_path = xasprintf("%s/stdout", t->sandbox);
	p->stderr_path = xasprintf("%s/stderr", t->sandbox);
	p->status_path = xasprintf("%s/exit_status", t->run_dir);
	p->status_tmp = xasprintf("%s/exit_status.tmp", t->run_dir);
	p->envp = agent_task_env(t);
	if (!cmd->has_shell || cmd->shell) {
		p->file = "/bin/sh";
		p->argv = xcalloc(4, sizeof *p->argv);
		p->argv[0] = xstrdup("sh");
		p->argv[1] = xstrdup("-c");
		p->argv[2] = xstrdup(cmd->value != NULL ? cmd->value : "");
		return;
	}
	p->file = cmd->value;
	p->search_path = strchr(cmd->value, '/') == NULL;
	p->argv = xcalloc(cmd->n_arguments + 2, sizeof *p->argv);
	if (cmd->n_arguments == 0)
		p->argv[0] = xstrdup(cmd->value);
	for (i = 0; i < cmd->n_arguments; i++)
		p->argv[i] = xstrdup(cmd->arguments[i]);
}

/* why a task cannot run here, or NULL */
static char *launch_problem(const Mesos__V1__TaskInfo *info)
{
	const Mesos__V1__ContainerInfo *c = info->container;

	if (info->executor != NULL)
		return xstrdup("custom executors are not supported by butte-agent");
	if (info->command == NULL)
		return xstrdup("the task has no command");
	if (c != NULL && c->mesos != NULL && c->mesos->image != NULL)
		return xstrdup("container images are not supported by the mesos containerizer");
	if (info->command->has_shell && !info->command->shell &&
	    (info->command->value == NULL || *info->command->value == '\0'))
		return xstrdup("the command has no value to execute");
	return NULL;
}

static void make_dirs(struct agent_task *t, char **cause)
{
	char *latest, *runs;

	if (bt_mkdirs(t->run_dir, 0755, cause) != 0)
		return;
	if (bt_mkdirs(t->sandbox, 0755, cause) != 0)
		return;
	/* runs/latest points at the newest run, as in Mesos */
	runs = xstrdup(t->sandbox);
	*strrchr(runs, '/') = '\0';
	latest = xasprintf("%s/latest", runs);
	unlink(latest);
	if (symlink(t->container_id, latest) != 0)
		log_debug("unable to link '%s': %s", latest, strerror(errno));
	free(latest);
	free(runs);
}

struct agent_task *agent_task_new(struct agent *a, Mesos__V1__FrameworkInfo *fw,
    const Mesos__V1__TaskInfo *info)
{
	struct agent_task *t = xcalloc(1, sizeof *t);

	t->agent = a;
	t->exec_fd = -1;
	t->pidfd = -1;
	t->container_id = bt_uuid_new();
	t->framework_id = xstrdup(fw->id->value);
	t->task_id = xstrdup(info->task_id->value);
	t->info = (void *)bt_pb_copy(&info->base);
	t->framework = (void *)bt_pb_copy(&fw->base);
	t->state = MESOS__V1__TASK_STATE__TASK_STAGING;
	t->launched = bt_now();
	t->kill_grace = a->kill_grace;
	if (info->kill_policy != NULL && info->kill_policy->grace_period != NULL)
		t->kill_grace = (double)info->kill_policy->grace_period->nanoseconds / 1e9;
	t->sandbox = xasprintf("%s/slaves/%s/frameworks/%s/executors/%s/runs/%s", a->work_dir,
	    a->agent_id != NULL ? a->agent_id : "unknown", t->framework_id, t->task_id,
	    t->container_id);
	t->run_dir = xasprintf("%s/meta/runs/%s", a->work_dir, t->container_id);
	return t;
}

static void launch_failed(struct agent_task *t, const char *why, int reason)
{
	t->ended = true;
	agent_update_new(t, MESOS__V1__TASK_STATE__TASK_FAILED, why, reason);
}

static void fork_supervisor(struct agent_task *t)
{
	struct agent *a = t->agent;
	struct launch_plan plan;
	int fds[2];
	pid_t pid;
	char *why;

	plan_init(&plan, t);
	if (pipe2(fds, O_CLOEXEC) != 0) {
		why = xasprintf("unable to create a pipe: %s", strerror(errno));
		goto fail;
	}
	plan.pipe_w = fds[1];
	agent_checkpoint_task(t);
	pid = fork();
	if (pid < 0) {
		why = xasprintf("unable to fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		goto fail;
	}
	if (pid == 0)
		supervise(&plan);
	close(fds[1]);
	evutil_make_socket_nonblocking(fds[0]);
	t->exec_fd = fds[0];
	t->exec_ev = event_new(a->base, fds[0], EV_READ | EV_PERSIST, agent_exec_pipe_cb, t);
	event_add(t->exec_ev, NULL);
	t->supervisor_pid = pid;
	t->child = true;
	agent_proc_start_time(pid, &t->supervisor_start);
	log_info("launched task '%s' of framework '%s' (supervisor %d) in '%s'", t->task_id,
	    t->framework_id, (int)pid, t->sandbox);
	agent_update_new(t, MESOS__V1__TASK_STATE__TASK_STARTING, NULL, -1);
	plan_release(&plan);
	return;
fail:
	plan_release(&plan);
	launch_failed(t, why, MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED);
	free(why);
}

static void launch_one(struct agent *a, Mesos__V1__FrameworkInfo *fw,
    const Mesos__V1__TaskInfo *info)
{
	struct agent_task *t;
	char *why = NULL, *cause = NULL;

	if (!valid_id(info->task_id->value) || !valid_id(fw->id->value)) {
		agent_update_send_once(a, fw->id->value, info->task_id->value,
		    MESOS__V1__TASK_STATE__TASK_ERROR, "invalid task or framework id",
		    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID);
		return;
	}
	if (agent_task_find(a, fw->id->value, info->task_id->value) != NULL) {
		log_warn("ignoring a second launch of task '%s' of framework '%s'",
		    info->task_id->value, fw->id->value);
		return;
	}
	t = agent_task_new(a, fw, info);
	agent_task_add(a, t);
	make_dirs(t, &cause);
	if (cause != NULL) {
		why = xasprintf("unable to create the sandbox: %s", cause);
		launch_failed(t, why, MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED);
		goto out;
	}
	if (!agent_docker_wanted(info) && (why = launch_problem(info)) != NULL) {
		launch_failed(t, why, MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID);
		goto out;
	}
	agent_fetch_start(t);
out:
	free(cause);
	free(why);
}

void agent_launch_fetched(struct agent_task *t)
{
	if (agent_docker_wanted(t->info))
		agent_docker_launch(t);
	else
		fork_supervisor(t);
}

void agent_launch(struct agent *a, Butte__AgentEvent__Launch *launch)
{
	size_t i;

	if (launch->framework == NULL || launch->framework->id == NULL) {
		log_warn("ignoring a launch without a framework id");
		return;
	}
	for (i = 0; i < launch->n_tasks; i++) {
		if (launch->tasks[i]->task_id == NULL)
			continue;
		if (a->draining)
			agent_update_send_once(a, launch->framework->id->value,
			    launch->tasks[i]->task_id->value, MESOS__V1__TASK_STATE__TASK_LOST,
			    "the agent is shutting down",
			    MESOS__V1__TASK_STATUS__REASON__REASON_AGENT_RESTARTED);
		else
			launch_one(a, launch->framework, launch->tasks[i]);
	}
}

/* the message for a task that could not start, from its launch pipe record */
char *agent_launch_error(const struct agent_task *t)
{
	static const char *const stages[] = {
		[STAGE_STDIN] = "open /dev/null", [STAGE_STDOUT] = "open the sandbox's stdout",
		[STAGE_STDERR] = "open the sandbox's stderr", [STAGE_CHDIR] = "enter the sandbox",
		[STAGE_FORK] = "fork the task",
	};
	const Mesos__V1__CommandInfo *cmd = t->info->command;

	if (t->setup_stage > 0 && t->setup_stage <= STAGE_FORK)
		return xasprintf("unable to %s: %s", stages[t->setup_stage],
		    strerror(t->exec_errno));
	return xasprintf("failed to execute '%s': %s",
	    cmd != NULL && cmd->value != NULL ? cmd->value : "", strerror(t->exec_errno));
}

/* read launch pipe records; returns 1 at EOF, 0 when more may come */
int agent_exec_pipe_read(struct agent_task *t)
{
	struct pipe_rec r;
	ssize_t n;

	for (;;) {
		n = read(t->exec_fd, &r, sizeof r);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n != (ssize_t)sizeof r)
			return 1;
		if (r.kind == REC_PID) {
			t->task_pid = r.value;
			agent_checkpoint_task(t);
			if (t->killing)
				killpg(t->task_pid, SIGTERM);
		} else if (r.kind == REC_EXEC || r.kind == REC_SETUP) {
			t->exec_errno = r.value;
			t->setup_stage = r.kind == REC_SETUP ? r.stage : 0;
			if (t->exec_errno == 0)
				t->exec_errno = EIO;
		}
	}
}
