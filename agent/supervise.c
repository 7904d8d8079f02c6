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
 * A separate small program rather than a fork of the agent, linked
 * static. The launcher makes each supervisor a process of its own that
 * shares the launcher's memory (clone with CLONE_VM, no CLONE_THREAD:
 * its own pid, descriptors, signal handlers and session, but no page of
 * memory copied or faulted in), the way posix_spawn shares memory until
 * exec; and the task is vforked from the supervisor. So a supervisor
 * costs about what a thread costs, where a fork cost a copy of the page
 * tables and a page fault per page either side writes afterwards. The
 * rules that come with shared memory: everything a supervisor needs is
 * prepared by the launcher in a mapping of the supervisor's own (struct
 * slot: its stack, its arguments, its paths); after clone it makes
 * system calls only -- no malloc, no stdio, no global written (errno
 * excepted: the C library keeps it in the launcher's thread storage, so
 * an errno a supervisor reports may rarely be another's; it only words
 * a failure's message, and no decision is taken on it); the
 * launcher's memory is never dumped (PR_SET_DUMPABLE 0), so one faulting
 * supervisor cannot take the others down with a core dump; and the slot
 * is unmapped once the kernel has cleared its tid word
 * (CLONE_CHILD_CLEARTID), which it does when the supervisor has left the
 * memory for good. Where CLONE_VM is refused (qemu-user), and under
 * AddressSanitizer, the launcher forks instead.
 */
#include "child.h"
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REAP_TRIES      200     /* x 5 ms: how long the supervisor waits for the group */
#define FILTER_MAX      (BPF_MAXINSNS * sizeof(struct sock_filter))
#define SLOT_STACK      (64 * 1024)     /* a supervisor's stack, also its task's until exec */
#define SWEEP_EVERY     64      /* slots made between two sweeps for ended supervisors */
#define DEFAULT_PATH    "/bin:/usr/bin"

#if defined(__SANITIZE_ADDRESS__)
#define SHARE_MEMORY    0       /* ASan keeps per-thread state a clone would share */
#else
#define SHARE_MEMORY    1
#endif

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

/*
 * One supervisor's private memory, one mapping: a guard page, the stack,
 * then this header and what the plan points at.
 */
struct slot {
	struct slot *next;      /* the launcher's list of slots in use */
	void *base;             /* of the mapping */
	size_t size;
	volatile pid_t tid;     /* non-zero until the supervisor has left (CLONE_CHILD_CLEARTID) */
	int pipe_fd;            /* the launch pipe, in the supervisor's descriptor table */
	struct plan plan;
	char *free, *end;       /* what is left of the mapping */
};

/* the tasks' seccomp filter, read once; .len 0 when there is none */
static struct sock_fprog filter;
/* set by the launcher: its filter (or the errno that refused it) is every supervisor's */
static int filter_inherited, filter_errno;

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

/* the filter on the calling process (and what it forks); 0 or an errno */
static int load_filter(int no_new_privs)
{
	if (no_new_privs)
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0 ? errno : 0;
}

static void slot_free(struct slot *s)
{
	munmap(s->base, s->size);
}

/* n bytes of the slot, aligned for pointers; NULL when they do not fit */
static void *slot_take(struct slot *s, size_t n)
{
	char *p = s->free;

	n = (n + 15) & ~(size_t)15;
	if ((size_t)(s->end - p) < n)
		return NULL;
	s->free += n;
	return p;
}

static char *slot_path(struct slot *s, const char *dir, const char *name)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *p = slot_take(s, len);

	if (p != NULL)
		snprintf(p, len, "%s/%s", dir, name);
	return p;
}

/*
 * A slot holding the plan of a request: len bytes of NUL-terminated
 * strings laid out as supervise.h says. NULL when the request is malformed
 * (errno EINVAL) or there is no memory.
 */
static struct slot *slot_new(const char *req, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), i, k = 0, nstr = 0, size;
	struct slot *s;
	struct plan *p;
	char **argv, *copy, *base, *end;
	const char *opts;
	long n;

	if (len == 0 || req[len - 1] != '\0') {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < len; i++)
		nstr += req[i] == '\0';
	/* guard, stack, header, the request's argv and strings, the task's argv, three paths */
	size = page + SLOT_STACK + sizeof *s + 16 + (nstr + 1) * sizeof(char *) + len + 16 +
	    (nstr + 1) * sizeof(char *) + 16 + 3 * (len + 32);
	size = (size + page - 1) & ~(page - 1);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	mprotect(base, page, PROT_NONE);
	s = (struct slot *)(base + page + SLOT_STACK);
	memset(s, 0, sizeof *s);
	s->base = base;
	s->size = size;
	s->pipe_fd = -1;
	s->free = (char *)(s + 1);
	s->end = base + size;
	argv = slot_take(s, (nstr + 1) * sizeof *argv);
	copy = slot_take(s, len);
	if (argv == NULL || copy == NULL)
		goto bad;
	memcpy(copy, req, len);
	for (i = 0; i < len; i += strlen(copy + i) + 1)
		argv[k++] = copy + i;
	argv[k] = NULL;

	p = &s->plan;
	if (nstr < SUPERVISE_ARGV_FIXED)
		goto bad;
	errno = 0;
	n = strtol(argv[5], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > (long)nstr - SUPERVISE_ARGV_FIXED)
		goto bad;
	p->sandbox = argv[1];
	opts = argv[3];
	p->file = argv[4];
	p->search_path = strchr(opts, 'p') != NULL;
	p->no_new_privs = strchr(opts, 'n') != NULL;
	p->with_filter = strchr(opts, 'f') != NULL;
	if ((p->argv = slot_take(s, ((size_t)n + 1) * sizeof *p->argv)) == NULL)
		goto bad;
	for (i = 0; i < (size_t)n; i++)
		p->argv[i] = argv[SUPERVISE_ARGV_FIXED + i];
	p->argv[n] = NULL;
	p->envp = &argv[SUPERVISE_ARGV_FIXED + n];
	p->stdout_path = slot_path(s, argv[1], "stdout");
	p->stderr_path = slot_path(s, argv[1], "stderr");
	p->status_path = slot_path(s, argv[2], "exit_status");
	if (p->stdout_path == NULL || p->stderr_path == NULL || p->status_path == NULL)
		goto bad;
	if (p->with_filter && filter.len == 0 && !filter_inherited)
		goto bad;
	return s;
bad:
	slot_free(s);
	errno = EINVAL;
	return NULL;
}

/*
 * execve of file, looked up in the task's PATH (not the launcher's) as
 * execvp does: a name with a slash as it is; a file found executable but
 * of no format the kernel knows is run by /bin/sh. Returns the errno to
 * report when nothing ran: EACCES when some candidate was there but not
 * executable, else ENOENT. The search is steered by return values only,
 * never by errno, which a supervisor shares with the launcher.
 */
static int exec_search(const struct plan *p)
{
	const char *path = DEFAULT_PATH, *dir, *next;
	size_t flen = strlen(p->file), argc = 0, i;
	char buf[PATH_MAX];
	int eacces = 0;

	if (strchr(p->file, '/') != NULL) {
		execve(p->file, p->argv, p->envp);
		return errno;
	}
	for (i = 0; p->envp[i] != NULL; i++) {
		if (strncmp(p->envp[i], "PATH=", 5) == 0)
			path = p->envp[i] + 5;
	}
	while (p->argv[argc] != NULL)
		argc++;
	for (dir = path; ; dir = next + 1) {
		size_t dlen;

		next = strchrnul(dir, ':');
		dlen = (size_t)(next - dir);
		if (dlen + flen + 2 <= sizeof buf) {
			/* an empty entry is the current directory */
			memcpy(buf, dlen == 0 ? "." : dir, dlen == 0 ? 1 : dlen);
			if (dlen == 0)
				dlen = 1;
			buf[dlen] = '/';
			memcpy(buf + dlen + 1, p->file, flen + 1);
			execve(buf, p->argv, p->envp);
			if (access(buf, X_OK) == 0) {
				char *sh_argv[argc + 2];
				sh_argv[0] = "/bin/sh";
				sh_argv[1] = buf;
				for (i = 1; i <= argc; i++)
					sh_argv[i + 1] = p->argv[i];
				execve("/bin/sh", sh_argv, p->envp);
				return errno;
			}
			if (access(buf, F_OK) == 0)
				eacces = 1;
		}
		if (*next == '\0')
			break;
	}
	return eacces ? EACCES : ENOENT;
}

static void task_child(const struct plan *p) __attribute__((noreturn));
static void task_child(const struct plan *p)
{
	struct rlimit core = { 0, 0 };
	struct sigaction dfl;
	sigset_t none;
	int err;

	setsid();
	/* what the supervisor ignores and blocks goes back to the defaults */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGHUP, &dfl, NULL);
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
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
	err = !p->with_filter ? 0 : filter_inherited ? filter_errno :
	    load_filter(p->no_new_privs);
	if (err != 0)
		dprintf(2, "butte-supervise: unable to load the seccomp filter: %s\n",
		    strerrordesc_np(err));
	if (p->search_path) {
		err = exec_search(p);
	} else {
		execve(p->file, p->argv, p->envp);
		err = errno;
	}
	report(SUPERVISE_REC_EXEC, 0, err);
	_exit(127);
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
	struct sigaction ign;

	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	close_range(SUPERVISE_PIPE_FD + 1, ~0U, 0);
	fcntl(SUPERVISE_PIPE_FD, F_SETFD, FD_CLOEXEC);
	/* hold no sandbox as cwd: the supervisor is not a task process */
	(void)chdir("/");
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	prctl(PR_SET_NAME, SUPERVISE_PROGRAM);
}

/*
 * One task from fork to exit status. Every signal but those of the wait
 * stays blocked: SIGTERM is passed on to the task's group and SIGCHLD
 * reaps, both taken with sigwaitinfo, so no handler (and no global) is
 * involved.
 */
static int supervise(void *arg)
{
	struct slot *s = arg;
	const struct plan *plan = &s->plan;
	sigset_t all, wait_set;
	siginfo_t si;
	char text[64];
	pid_t pid, r;
	int st = 0;

	if (s->pipe_fd >= 0 && s->pipe_fd != SUPERVISE_PIPE_FD) {
		dup2(s->pipe_fd, SUPERVISE_PIPE_FD);
		close(s->pipe_fd);
	}
	report(SUPERVISE_REC_SUPERVISOR, 0, (int)getpid());
	detach();
	/*
	 * vfork: the task borrows the supervisor's memory until its exec, so
	 * nothing is copied or faulted in again. Signals stay blocked until
	 * task_child() has reset them.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pid = vfork();
	if (pid == 0)
		task_child(plan);
	sigemptyset(&wait_set);
	sigaddset(&wait_set, SIGTERM);
	sigaddset(&wait_set, SIGCHLD);
	sigprocmask(SIG_SETMASK, &wait_set, NULL);
	if (pid < 0) {
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_FORK, errno);
		_exit(1);
	}
	report(SUPERVISE_REC_PID, 0, pid);
	close(SUPERVISE_PIPE_FD);
	/* as subreaper, orphans of the task are ours: reap them on the way */
	for (;;) {
		int sig = sigwaitinfo(&wait_set, &si);
		if (sig == SIGTERM) {
			killpg(pid, SIGTERM);
			continue;
		}
		while ((r = waitpid(-1, &st, WNOHANG)) > 0 && r != pid)
			;
		if (r == pid)
			break;
	}
	reap_group(pid);
	if (WIFEXITED(st))
		snprintf(text, sizeof text, "exited %d\n", WEXITSTATUS(st));
	else
		snprintf(text, sizeof text, "signaled %d\n", WTERMSIG(st));
	write_status(plan, text);
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

/* the slots of supervisors sharing the launcher's memory, newest first */
static struct slot *slots;
static int share_memory = SHARE_MEMORY;

/* unmap the slots whose supervisors have left; true when some are still in use */
static int sweep(void)
{
	struct slot **sp = &slots, *s;

	while ((s = *sp) != NULL) {
		if (__atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) == 0) {
			*sp = s->next;
			slot_free(s);
		} else {
			sp = &s->next;
		}
	}
	return slots != NULL;
}

/*
 * A supervisor for the slot's plan, a child of the agent; the slot is its
 * now. It starts with every signal blocked (supervise() keeps them so).
 */
static void start(struct slot *s)
{
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	if (share_memory) {
		s->tid = 1;
		pid = clone(supervise, s, CLONE_VM | CLONE_PARENT | CLONE_CHILD_CLEARTID | SIGCHLD,
		    s, NULL, NULL, &s->tid);
		if (pid > 0) {
			s->next = slots;
			slots = s;
			goto out;
		}
		if (errno == EINVAL)
			share_memory = 0;       /* qemu-user: the plain fork from now on */
	}
	if (!share_memory && fork_for_agent() == 0)
		supervise(s);
	slot_free(s);
out:
	sigprocmask(SIG_SETMASK, &old, NULL);
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
	struct pollfd pfd = { SUPERVISE_LAUNCH_FD, POLLIN, 0 };
	struct slot *s;
	int fd, made = 0, pending = 0;
	ssize_t n;

	close_range(SUPERVISE_FILTER_FD + 1, ~0U, 0);
	/* the filter goes on the launcher, once: every supervisor and task inherits it */
	if (fcntl(SUPERVISE_FILTER_FD, F_GETFD) >= 0 && read_filter() == 0) {
		filter_errno = load_filter(geteuid() != 0);
		filter_inherited = 1;
	}
	close(SUPERVISE_FILTER_FD);
	bt_child_reset_signals();
	(void)chdir("/");
	prctl(PR_SET_NAME, "butte-launcher");
	prctl(PR_SET_DUMPABLE, 0);
	while (buf != NULL) {
		/* idle: once a second, unmap what ended supervisors left */
		if (pending && poll(&pfd, 1, 1000) == 0) {
			pending = sweep();
			continue;
		}
		if ((n = read_request(buf, &fd)) == 0)
			break;
		if (n < 0 && fd < 0)
			_exit(1);
		/* a request the launcher cannot use: the pipe closes unused, the task fails */
		if (n > 0 && fd >= 0 && (s = slot_new(buf, (size_t)n)) != NULL) {
			s->pipe_fd = fd;
			start(s);
			if (++made % SWEEP_EVERY == 0)
				sweep();
			pending = slots != NULL;
		}
		if (fd >= 0)
			close(fd);
	}
	_exit(0);
}

/* a supervisor started on its own: argv is the request */
static void supervise_argv(int argc, char **argv) __attribute__((noreturn));
static void supervise_argv(int argc, char **argv)
{
	size_t len = 0, off = 0;
	struct slot *s;
	char *req;
	int i;

	bt_child_reset_signals();
	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	req = malloc(len > 0 ? len : 1);
	for (i = 0; req != NULL && i < argc; i++) {
		memcpy(req + off, argv[i], strlen(argv[i]) + 1);
		off += strlen(argv[i]) + 1;
	}
	if (req == NULL || (s = slot_new(req, len)) == NULL) {
		report(SUPERVISE_REC_SUPERVISOR, 0, (int)getpid());
		report(SUPERVISE_REC_SETUP, SUPERVISE_STAGE_ARGS, EINVAL);
		_exit(1);
	}
	free(req);
	supervise(s);
	_exit(1);
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
	supervise_argv(argc, argv);
}
