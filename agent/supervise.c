/*
 * supervise.c -- butte-supervise: the process between the agent and a task.
 *
 * The agent spawns one per task (the arguments and descriptors it gets
 * are in supervise.h). The supervisor starts its own session, becomes
 * the subreaper of everything the task starts, forks the task and waits
 * for it; then it kills and reaps what is left of the task's process
 * group, writes the exit status atomically to the run's meta dir and
 * exits. Because the task is never the agent's child, a task outlives an
 * agent restart without losing its exit status.
 *
 * The task process starts its own session and process group (so a kill
 * reaches everything it started), takes stdin from /dev/null and appends
 * stdout and stderr to the sandbox, runs in the sandbox with the
 * environment the agent computed, without core dumps and behind the
 * agent's seccomp filter, and execs its file. The launch pipe tells the
 * agent the task's pid and, by EOF or an error record, how its exec went.
 *
 * A separate small program rather than a fork of the agent: forking a
 * supervisor from the launcher copies nothing of the agent and execs
 * nothing, and forking the task from a supervisor is cheap. It links
 * only the C library (and common/child.c); after a fork it makes system
 * calls only.
 */
#include "child.h"
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REAP_TRIES      200     /* x 5 ms: how long the supervisor waits for the group */
#define FILTER_MAX      (BPF_MAXINSNS * sizeof(struct sock_filter))

extern char **environ;

/* the task as argv describes it */
struct plan {
	const char *sandbox;
	char *stdout_path, *stderr_path;
	char *status_path;
	const char *file;
	char **argv;
	char **envp;
	int search_path;
	int no_new_privs;
	int with_filter;
};

/* the tasks' seccomp filter, read once; .len 0 when there is none */
static struct sock_fprog filter;
static volatile sig_atomic_t supervised_pid;

static void report(int kind, int stage, int value)
{
	struct supervise_rec r = { kind, stage, value };
	ssize_t n;

	do
		n = write(SUPERVISE_PIPE_FD, &r, sizeof r);
	while (n < 0 && errno == EINTR);
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

static char *path_join(const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p != NULL)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/* the filter from SUPERVISE_FILTER_FD; 0 when it could be read */
static int read_filter(void)
{
	char *buf = malloc(FILTER_MAX);
	size_t n = 0;
	ssize_t got;

	if (buf == NULL)
		return -1;
	while (n < FILTER_MAX && (got = pread(SUPERVISE_FILTER_FD, buf + n, FILTER_MAX - n,
	    (off_t)n)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return -1;
		}
		n += (size_t)got;
	}
	if (n == 0 || n % sizeof(struct sock_filter) != 0) {
		free(buf);
		return -1;
	}
	filter.len = (unsigned short)(n / sizeof(struct sock_filter));
	filter.filter = (struct sock_filter *)buf;
	return 0;
}

/* argv as supervise.h lays it out; 0 when it is well formed */
static int parse_args(struct plan *p, int argc, char **argv)
{
	const char *opts;
	char *end;
	long n;
	int i;

	memset(p, 0, sizeof *p);
	if (argc < SUPERVISE_ARGV_FIXED)
		return -1;
	errno = 0;
	n = strtol(argv[5], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > argc - SUPERVISE_ARGV_FIXED)
		return -1;
	p->sandbox = argv[1];
	opts = argv[3];
	p->file = argv[4];
	p->search_path = strchr(opts, 'p') != NULL;
	p->no_new_privs = strchr(opts, 'n') != NULL;
	p->with_filter = strchr(opts, 'f') != NULL;
	p->argv = calloc((size_t)n + 1, sizeof *p->argv);
	p->stdout_path = path_join(argv[1], "stdout");
	p->stderr_path = path_join(argv[1], "stderr");
	p->status_path = path_join(argv[2], "exit_status");
	if (p->argv == NULL || p->stdout_path == NULL || p->stderr_path == NULL ||
	    p->status_path == NULL)
		return -1;
	for (i = 0; i < n; i++)
		p->argv[i] = argv[SUPERVISE_ARGV_FIXED + i];
	p->envp = &argv[SUPERVISE_ARGV_FIXED + n];
	if (p->with_filter && filter.len == 0)
		return -1;
	return 0;
}

static void task_child(const struct plan *p) __attribute__((noreturn));
static void task_child(const struct plan *p)
{
	struct rlimit core = { 0, 0 };

	setsid();
	bt_child_reset_signals();
	if (redirect("/dev/null", O_RDONLY, 0) != 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_STDIN, errno);
		_exit(127);
	}
	if (redirect(p->stdout_path, O_WRONLY | O_CREAT | O_APPEND, 1) != 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_STDOUT, errno);
		_exit(127);
	}
	if (redirect(p->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 2) != 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_STDERR, errno);
		_exit(127);
	}
	if (chdir(p->sandbox) != 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_CHDIR, errno);
		_exit(127);
	}
	setrlimit(RLIMIT_CORE, &core);
	if (p->with_filter) {
		if (p->no_new_privs)
			prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0)
			dprintf(2, "butte-supervise: unable to load the seccomp filter: %s\n",
			    strerror(errno));
	}
	environ = p->envp;
	if (p->search_path)
		execvp(p->file, p->argv);
	else
		execve(p->file, p->argv, p->envp);
	report(SUPERVISE_REC_EXEC, 0, errno);
	_exit(127);
}

static void forward_term(int sig)
{
	if (supervised_pid > 0)
		killpg(supervised_pid, SIGTERM);
}

/*
 * One write of a few bytes into a file of its own: the agent reads it
 * once the supervisor is gone, so it is complete by then. Not fsynced:
 * like the agent's task records it must outlive the agent, not the
 * machine (a reboot ends every task).
 */
static void write_status(const struct plan *p, const char *text)
{
	int fd = open(p->status_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0)
		unlink(p->status_path);
	close(fd);
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

/* the supervisor's own state: its session, no signals of the agent's, no stray fds */
static void detach(void)
{
	struct sigaction sa;

	setsid();
	bt_child_reset_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	close_range(SUPERVISE_PIPE_FD + 1, ~0U, 0);
	fcntl(SUPERVISE_PIPE_FD, F_SETFD, FD_CLOEXEC);
	/* hold no sandbox as cwd: the supervisor is not a task process */
	(void)chdir("/");
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_term;
	sigaction(SIGTERM, &sa, NULL);
}

/* one task from fork to exit status; the launch pipe is on SUPERVISE_PIPE_FD */
static void supervise(int argc, char **argv) __attribute__((noreturn));
static void supervise(int argc, char **argv)
{
	struct plan plan;
	sigset_t all, old;
	char text[64];
	pid_t pid;
	int st;

	report(SUPERVISE_REC_SUPERVISOR, 0, (int)getpid());
	detach();
	if (parse_args(&plan, argc, argv) != 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_ARGS, EINVAL);
		_exit(1);
	}
	/*
	 * vfork: the task borrows the supervisor's memory until its exec, so
	 * nothing is copied or faulted in again. No handler of the
	 * supervisor's may run in it meanwhile: signals stay blocked until
	 * task_child() has reset them.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0)
		task_child(&plan);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_FORK, errno);
		_exit(1);
	}
	supervised_pid = pid;
	report(SUPERVISE_REC_PID, 0, pid);
	close(SUPERVISE_PIPE_FD);
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
	write_status(&plan, text);
	_exit(0);
}

/*
 * A new process whose parent is the agent: 0 in it, its pid (or the
 * short-lived middle one's) in the launcher, -1 on failure. clone with
 * CLONE_PARENT does it in one step, as runc's nsexec does; where that is
 * refused (qemu-user takes only plain forks) a middle child forks the
 * supervisor and exits, and the orphan goes to the agent, its subreaper.
 */
static pid_t fork_for_agent(void)
{
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);

	if (pid >= 0 || errno != EINVAL)
		return pid;
	pid = fork();
	if (pid == 0) {
		pid_t grandchild = fork();
		if (grandchild != 0)
			_exit(grandchild < 0 ? 1 : 0);
		return 0;
	}
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return pid;
}

/* the strings of a request: argv for supervise(), pointing into buf */
static char **request_argv(char *buf, size_t len, int *argc)
{
	size_t i, n = 0, k = 0;
	char **argv;

	if (len == 0 || buf[len - 1] != '\0')
		return NULL;
	for (i = 0; i < len; i++)
		n += buf[i] == '\0';
	if ((argv = calloc(n + 1, sizeof *argv)) == NULL)
		return NULL;
	for (i = 0; i < len; i += strlen(buf + i) + 1)
		argv[k++] = buf + i;
	*argc = (int)n;
	return argv;
}

/* one request: its bytes into buf, its launch pipe into *fd; the length, 0 at EOF */
static ssize_t read_request(char *buf, int *fd)
{
	union {
		struct cmsghdr hdr;
		char space[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { buf, SUPERVISE_REQUEST_MAX };
	struct msghdr msg;
	struct cmsghdr *c;
	ssize_t n;

	*fd = -1;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.space;
	msg.msg_controllen = sizeof ctl.space;
	do
		n = recvmsg(SUPERVISE_LAUNCH_FD, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (c = CMSG_FIRSTHDR(&msg); n > 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	}
	if (n > 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
		n = -1;
	return n;
}

/* the launcher: a supervisor per request until the agent closes the socket */
static void launch_loop(void) __attribute__((noreturn));
static void launch_loop(void)
{
	char *buf = malloc(SUPERVISE_REQUEST_MAX);
	char **argv;
	ssize_t n;
	int fd, argc;

	close_range(SUPERVISE_FILTER_FD + 1, ~0U, 0);
	if (fcntl(SUPERVISE_FILTER_FD, F_GETFD) >= 0 && read_filter() != 0)
		filter.len = 0;
	close(SUPERVISE_FILTER_FD);
	(void)chdir("/");
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "butte-launcher");
	while (buf != NULL && (n = read_request(buf, &fd)) != 0) {
		if (n < 0 && fd < 0)
			_exit(1);
		/* a request the launcher cannot use: the pipe closes unused, the task fails */
		if (n > 0 && fd >= 0 && (argv = request_argv(buf, (size_t)n, &argc)) != NULL) {
			if (fork_for_agent() == 0) {
				dup2(fd, SUPERVISE_PIPE_FD);
				close(fd);
				prctl(PR_SET_NAME, SUPERVISE_PROGRAM);
				supervise(argc, argv);
			}
			free(argv);
		}
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

static const char usage[] =
    "usage: butte-supervise --launcher\n"
    "       butte-supervise <sandbox> <run dir> <options> <file> <n> <argv...> <env...>\n"
    "The process between butte-agent and a task; butte-agent starts it (agent/supervise.h).\n";

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], SUPERVISE_LAUNCHER_ARG) == 0)
		launch_loop();
	if (argc > 3 && strchr(argv[3], 'f') != NULL && read_filter() != 0)
		filter.len = 0;
	supervise(argc, argv);
}
