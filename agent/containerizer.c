/*
 * containerizer.c -- the process containerizer: launching a task.
 *
 * Every task gets a sandbox directory (Mesos's layout, under work_dir),
 * its CommandInfo.uris fetched into it (fetch.c), and a supervisor: a
 * butte-supervise process (supervise.c) that the agent starts with
 * posix_spawn, so that nothing of the agent's own image is copied per
 * task. The supervisor forks the task, waits for it and writes its exit
 * status; the task runs in the sandbox with the environment env.c
 * computes, without core dumps and behind a small seccomp deny-list,
 * which the agent compiles once at start-up into a BPF program that every
 * supervisor reads from an inherited memfd.
 *
 * The supervisor is what lets tasks outlive an agent restart without
 * losing their exit status: the task is never the agent's child. A
 * close-on-exec pipe from the supervisor and the task tells the agent the
 * task's pid, and either a failed step (an errno) or, at EOF, that exec
 * succeeded: TASK_STARTING is sent once the supervisor runs, TASK_RUNNING
 * at that EOF.
 */
#include "agent.h"
#include "ids.h"
#include "log.h"
#include "pbjson.h"
#include "supervise.h"
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define FILTER_FD_MIN   10      /* the memfd sits above every fd a spawn action names */

extern char **environ;

static int start_launcher(struct agent *a);

static const char *const denied_syscalls[] = {
	"kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module",
	"delete_module", "swapon", "swapoff",
};

/* the deny-list as a BPF program in a memfd every supervisor inherits; -1 without */
static int filter_memfd(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int fd, high = -1;
	size_t i;

	if (ctx == NULL) {
		log_warn("seccomp is not available; tasks run without a syscall filter");
		return -1;
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
	fd = memfd_create("butte-seccomp", MFD_CLOEXEC);
	if (fd < 0 || seccomp_export_bpf(ctx, fd) != 0 ||
	    (high = fcntl(fd, F_DUPFD_CLOEXEC, FILTER_FD_MIN)) < 0)
		log_warn("unable to compile the seccomp filter; tasks run without one");
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return high;
}

/* <launcher_dir>/butte-supervise; the launcher dir defaults to the agent's own */
static int find_supervisor(struct agent *a, char **cause)
{
	char exe[PATH_MAX], *dir = a->launcher_dir;
	ssize_t n;

	if (dir == NULL || *dir == '\0') {
		if ((n = readlink("/proc/self/exe", exe, sizeof exe - 1)) < 0) {
			*cause = xasprintf("unable to read '/proc/self/exe': %s", strerror(errno));
			return -1;
		}
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		dir = exe;
	}
	a->supervisor = xasprintf("%s/%s", *dir != '\0' ? dir : "", SUPERVISE_PROGRAM);
	if (access(a->supervisor, X_OK) != 0) {
		*cause = xasprintf("unable to use the task supervisor '%s': %s", a->supervisor,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int agent_containerizer_init(struct agent *a, char **cause)
{
	agent_docker_init(a);
	if (find_supervisor(a, cause) != 0)
		return -1;
	a->filter_fd = filter_memfd();
	/* orphans come to the agent: supervisors the launcher could only double-fork */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_debug("unable to become a subreaper: %s", strerror(errno));
	start_launcher(a);
	return 0;
}

void agent_containerizer_release(struct agent *a)
{
	agent_docker_release(a);
	agent_fetch_release(a);
	/* at EOF the launcher exits; supervisors are the agent's own children */
	if (a->launcher_fd >= 0)
		close(a->launcher_fd);
	a->launcher_fd = -1;
	if (a->filter_fd >= 0)
		close(a->filter_fd);
	a->filter_fd = -1;
	free(a->supervisor);
	a->supervisor = NULL;
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

/* the supervisor's argv for t, as supervise.h lays it out; agent_strv_free() it */
static char **supervisor_argv(struct agent_task *t)
{
	const Mesos__V1__CommandInfo *cmd = t->info->command;
	bool shell = !cmd->has_shell || cmd->shell;
	size_t nargs = shell ? 3 : cmd->n_arguments > 0 ? cmd->n_arguments : 1;
	char **env = agent_task_env(t), **v, opts[4], *o = opts;
	size_t nenv = 0, i, k = 0;

	while (env[nenv] != NULL)
		nenv++;
	if (!shell && strchr(cmd->value, '/') == NULL)
		*o++ = 'p';
	if (t->agent->filter_fd >= 0) {
		*o++ = 'f';
		/* root may load a filter without no_new_privs, so setuid programs keep working */
		if (geteuid() != 0)
			*o++ = 'n';
	}
	*o = '\0';
	v = xcalloc(SUPERVISE_ARGV_FIXED + nargs + nenv + 1, sizeof *v);
	v[k++] = xstrdup(SUPERVISE_PROGRAM);
	v[k++] = xstrdup(t->sandbox);
	v[k++] = xstrdup(t->run_dir);
	v[k++] = xstrdup(opts);
	v[k++] = xstrdup(shell ? "/bin/sh" : cmd->value);
	v[k++] = xasprintf("%zu", nargs);
	if (shell) {
		v[k++] = xstrdup("sh");
		v[k++] = xstrdup("-c");
		v[k++] = xstrdup(cmd->value != NULL ? cmd->value : "");
	} else if (cmd->n_arguments == 0) {
		v[k++] = xstrdup(cmd->value);
	}
	for (i = 0; !shell && i < cmd->n_arguments; i++)
		v[k++] = xstrdup(cmd->arguments[i]);
	for (i = 0; i < nenv; i++)
		v[k++] = env[i];
	free(env);
	return v;
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
	if (symlink(t->container_id, latest) != 0 && errno == EEXIST && unlink(latest) == 0 &&
	    symlink(t->container_id, latest) != 0)
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
	if (a->simulated) {
		t->packed_info = bt_pb_encode_alloc(&info->base, false, &t->packed_info_len);
		t->packed_framework = bt_pb_encode_alloc(&fw->base, false, &t->packed_framework_len);
	} else {
		t->info = (void *)bt_pb_copy(&info->base);
		t->framework = (void *)bt_pb_copy(&fw->base);
	}
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

/* msg, or the packed form unpacked into it (the packed form then goes) */
static ProtobufCMessage *unpacked(ProtobufCMessage **msg, void **packed, size_t len,
    const ProtobufCMessageDescriptor *desc)
{
	if (*msg == NULL && *packed != NULL) {
		*msg = protobuf_c_message_unpack(desc, NULL, len, *packed);
		if (*msg == NULL)
			bt_fatal("unable to unpack a task's own copy of a %s", desc->name);
		free(*packed);
		*packed = NULL;
	}
	return *msg;
}

Mesos__V1__TaskInfo *agent_task_info(struct agent_task *t)
{
	return (void *)unpacked((ProtobufCMessage **)&t->info, &t->packed_info,
	    t->packed_info_len, &mesos__v1__task_info__descriptor);
}

Mesos__V1__FrameworkInfo *agent_task_framework(struct agent_task *t)
{
	return (void *)unpacked((ProtobufCMessage **)&t->framework, &t->packed_framework,
	    t->packed_framework_len, &mesos__v1__framework_info__descriptor);
}

static void launch_failed(struct agent_task *t, const char *why, int reason)
{
	t->ended = true;
	agent_update_new(t, MESOS__V1__TASK_STATE__TASK_FAILED, why, reason);
}

/* posix_spawn butte-supervise with fd on fd 3 and the filter on fd 4; an errno or 0 */
static int spawn(struct agent *a, char *const argv[], int fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int err;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	/* fd > 2 and the filter fd >= FILTER_FD_MIN, so neither dup2 undoes the other */
	posix_spawn_file_actions_adddup2(&fa, fd, SUPERVISE_PIPE_FD);
	if (a->filter_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, a->filter_fd, SUPERVISE_FILTER_FD);
	err = posix_spawn(pid, a->supervisor, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

/* the launcher, a child of the agent reading requests from a socketpair */
static int start_launcher(struct agent *a)
{
	char *const argv[] = { SUPERVISE_PROGRAM, SUPERVISE_LAUNCHER_ARG, NULL };
	int sv[2], bufsize = 4 << 20, err;      /* a LAUNCH of hundreds of tasks fits */
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
		log_warn("unable to create the launcher's socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
	err = spawn(a, argv, sv[1], &pid);
	close(sv[1]);
	if (err != 0) {
		log_warn("unable to start the task launcher '%s': %s", a->supervisor, strerror(err));
		close(sv[0]);
		return -1;
	}
	evutil_make_socket_nonblocking(sv[0]);
	a->launcher_fd = sv[0];
	a->launcher_pid = pid;
	log_debug("task launcher started (pid %d)", (int)pid);
	return 0;
}

/* argv to the launcher with the launch pipe; 0 when the request left */
static int launcher_request(struct agent *a, char **argv, int pipe_w)
{
	union {
		struct cmsghdr hdr;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	size_t len = 0, i, n;
	char *buf;
	ssize_t sent;

	if (a->launcher_fd < 0 && (a->launcher_failed || start_launcher(a) != 0)) {
		a->launcher_failed = true;
		return -1;
	}
	for (i = 0; argv[i] != NULL; i++)
		len += strlen(argv[i]) + 1;
	if (len > SUPERVISE_REQUEST_MAX)
		return -1;
	buf = xmalloc(len);
	for (i = 0, len = 0; argv[i] != NULL; i++, len += n)
		memcpy(buf + len, argv[i], (n = strlen(argv[i]) + 1));
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&msg, 0, sizeof msg);
	memset(&ctl, 0, sizeof ctl);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.space;
	msg.msg_controllen = sizeof ctl.space;
	CMSG_FIRSTHDR(&msg)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&msg)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&msg)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&msg)), &pipe_w, sizeof(int));
	sent = sendmsg(a->launcher_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	free(buf);
	if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EMSGSIZE) {
		/* the launcher is gone; the next launch starts another */
		log_warn("the task launcher does not take requests: %s", strerror(errno));
		close(a->launcher_fd);
		a->launcher_fd = -1;
	}
	return sent == (ssize_t)len ? 0 : -1;
}

bool agent_launcher_reaped(struct agent *a, pid_t pid)
{
	if (pid <= 0 || pid != a->launcher_pid)
		return false;
	log_warn("the task launcher (pid %d) has ended", (int)pid);
	a->launcher_pid = 0;
	if (a->launcher_fd >= 0)
		close(a->launcher_fd);
	a->launcher_fd = -1;
	return true;
}

/*
 * A supervisor for t: through the launcher, or spawned on its own when the
 * launcher cannot take the request. The supervisor announces itself on
 * the launch pipe, which is where TASK_STARTING comes from.
 */
static void start_supervisor(struct agent_task *t)
{
	struct agent *a = t->agent;
	char **argv = supervisor_argv(t);
	int fds[2], err = 0;
	pid_t pid;
	char *why;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		why = xasprintf("unable to create a pipe: %s", strerror(errno));
		goto fail;
	}
	if (launcher_request(a, argv, fds[1]) != 0)
		err = spawn(a, argv, fds[1], &pid);
	close(fds[1]);
	if (err != 0) {
		why = xasprintf("unable to start the supervisor '%s': %s", a->supervisor,
		    strerror(err));
		close(fds[0]);
		goto fail;
	}
	agent_strv_free(argv);
	evutil_make_socket_nonblocking(fds[0]);
	t->exec_fd = fds[0];
	t->exec_ev = event_new(a->base, fds[0], EV_READ | EV_PERSIST, agent_exec_pipe_cb, t);
	event_add(t->exec_ev, NULL);
	return;
fail:
	agent_strv_free(argv);
	launch_failed(t, why, MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED);
	free(why);
}

/* the supervisor announced itself: record it, then TASK_STARTING */
static void supervisor_started(struct agent_task *t, pid_t pid)
{
	t->supervisor_pid = pid;
	t->child = true;
	agent_proc_start_time(pid, &t->supervisor_start);
	log_info("launched task '%s' of framework '%s' (supervisor %d) in '%s'", t->task_id,
	    t->framework_id, (int)pid, t->sandbox);
	/* the first checkpoint naming the supervisor goes before the update */
	if (t->state == MESOS__V1__TASK_STATE__TASK_STAGING)
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_STARTING, NULL, -1);
	else
		agent_checkpoint_task(t);
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
		start_supervisor(t);
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
		[SUPERVISE_STAGE_STDIN] = "open /dev/null",
		[SUPERVISE_STAGE_STDOUT] = "open the sandbox's stdout",
		[SUPERVISE_STAGE_STDERR] = "open the sandbox's stderr",
		[SUPERVISE_STAGE_CHDIR] = "enter the sandbox",
		[SUPERVISE_STAGE_FORK] = "fork the task",
		[SUPERVISE_STAGE_ARGS] = "read the supervisor's arguments",
	};
	const Mesos__V1__CommandInfo *cmd = t->info->command;

	if (t->setup_stage > 0 && t->setup_stage <= SUPERVISE_STAGE_MAX)
		return xasprintf("unable to %s: %s", stages[t->setup_stage],
		    strerror(t->exec_errno));
	return xasprintf("failed to execute '%s': %s",
	    cmd != NULL && cmd->value != NULL ? cmd->value : "", strerror(t->exec_errno));
}

/* read launch pipe records; returns 1 at EOF, 0 when more may come */
int agent_exec_pipe_read(struct agent_task *t)
{
	struct supervise_rec r;
	ssize_t n;

	for (;;) {
		n = read(t->exec_fd, &r, sizeof r);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n != (ssize_t)sizeof r)
			return 1;
		if (r.kind == SUPERVISE_REC_SUPERVISOR) {
			if (t->supervisor_pid <= 0 && r.value > 0)
				supervisor_started(t, r.value);
		} else if (r.kind == SUPERVISE_REC_PID) {
			t->task_pid = r.value;
			agent_checkpoint_task(t);
			if (t->killing)
				killpg(t->task_pid, SIGTERM);
		} else if (r.kind == SUPERVISE_REC_EXEC || r.kind == SUPERVISE_REC_SETUP) {
			t->exec_errno = r.value;
			t->setup_stage = r.kind == SUPERVISE_REC_SETUP ? r.stage : 0;
			if (t->exec_errno == 0)
				t->exec_errno = EIO;
		}
	}
}
