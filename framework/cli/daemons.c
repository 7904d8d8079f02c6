/*
 * daemons.c -- start, watch and stop the processes of a local cluster.
 *
 * `butte up` starts each daemon detached: fork, a new session (setsid),
 * stdin from /dev/null, stdout and stderr appended to <dir>/<name>.log,
 * every other descriptor closed, then exec. A close-on-exec pipe tells
 * the parent whether exec itself worked. Pid files record who runs;
 * before signalling a pid from a file, /proc/<pid>/exe must name a
 * butte- binary, so a recycled pid is never hit. Task processes are found
 * the way the tests find them: by a working directory under the state dir.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "xmalloc.h"

char *cli_exe_dir(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	char *slash;

	if (n <= 0)
		return xstrdup(".");
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return xstrdup(".");
	*slash = '\0';
	return xstrdup(buf[0] != '\0' ? buf : "/");
}

/* in the child: never returns */
static void exec_child(const char *path, char *const argv[], int log_fd, int err_fd)
{
	int null_fd = open("/dev/null", O_RDONLY);
	long fd, max = sysconf(_SC_OPEN_MAX);
	int e;

	setsid();
	if (null_fd != -1 && null_fd != 0) {
		dup2(null_fd, 0);
		close(null_fd);
	}
	dup2(log_fd, 1);
	dup2(log_fd, 2);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++) {
		if (fd != err_fd)
			close((int)fd);
	}
	signal(SIGPIPE, SIG_DFL);
	execv(path, argv);
	e = errno;
	if (write(err_fd, &e, sizeof e) < 0)
		_exit(127);
	_exit(127);
}

int cli_spawn(const char *path, char *const argv[], const char *log_path, pid_t *pid,
    char **cause)
{
	int log_fd = -1, pipefd[2] = { -1, -1 }, child_errno = 0, rc = -1;
	ssize_t n;

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd == -1) {
		*cause = xasprintf("unable to open '%s': %s", log_path, strerror(errno));
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) == -1) {
		*cause = xasprintf("pipe: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	*pid = fork();
	if (*pid == -1) {
		*cause = xasprintf("fork: %s", strerror(errno));
		goto out;
	}
	if (*pid == 0)
		exec_child(path, argv, log_fd, pipefd[1]);
	close(pipefd[1]);
	pipefd[1] = -1;
	do
		n = read(pipefd[0], &child_errno, sizeof child_errno);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)sizeof child_errno) {
		waitpid(*pid, NULL, 0);
		*cause = xasprintf("unable to run '%s': %s", path, strerror(child_errno));
		goto out;
	}
	rc = 0;
out:
	if (pipefd[0] != -1)
		close(pipefd[0]);
	if (pipefd[1] != -1)
		close(pipefd[1]);
	if (log_fd != -1)
		close(log_fd);
	return rc;
}

/* the state letter of /proc/<pid>/stat, or 0 when the process is gone */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	if (paren == NULL || paren[1] == '\0' || paren[2] == '\0')
		return 0;
	return paren[2];
}

bool cli_pid_alive(pid_t pid)
{
	char st;

	if (pid <= 0)
		return false;
	/* reap it if it is our own child (started by this very `butte up`) */
	waitpid(pid, NULL, WNOHANG);
	st = proc_state(pid);
	return st != 0 && st != 'Z' && st != 'X';
}

bool cli_pid_is_butte(pid_t pid)
{
	char path[64], exe[PATH_MAX], *base;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base != NULL ? base + 1 : exe;
	return bt_str_has_prefix(base, "butte-");
}

pid_t cli_pid_read(const char *path)
{
	char *data = NULL, *cause = NULL, *end;
	size_t len;
	long v;

	if (bt_read_file(path, &data, &len, &cause) == -1) {
		free(cause);
		return 0;
	}
	v = strtol(data, &end, 10);
	if (end == data || v <= 0 || v > INT_MAX)
		v = 0;
	free(data);
	return (pid_t)v;
}

int cli_pid_write(const char *path, pid_t pid, char **cause)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);

	return bt_write_file_atomic(path, buf, (size_t)n, cause);
}

static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int cli_wait_gone(const pid_t *pids, int n, double timeout)
{
	double deadline = bt_monotonic() + timeout;
	int i, left;

	for (;;) {
		left = 0;
		for (i = 0; i < n; i++) {
			if (cli_pid_alive(pids[i]))
				left++;
		}
		if (left == 0 || bt_monotonic() >= deadline)
			return left;
		nap(50);
	}
}

void cli_print_log_tail(const char *path, int lines)
{
	char *data = NULL, *cause = NULL, *p;
	size_t len;
	int seen = 0;

	if (bt_read_file(path, &data, &len, &cause) == -1) {
		fprintf(stderr, "  (no log: %s)\n", cause);
		free(cause);
		return;
	}
	p = data + len;
	if (p > data && p[-1] == '\n')
		p--;
	while (p > data) {
		if (p[-1] == '\n' && ++seen == lines)
			break;
		p--;
	}
	fprintf(stderr, "----- last lines of %s -----\n%s%s", path, p,
	    len > 0 && data[len - 1] != '\n' ? "\n" : "");
	free(data);
}

/* does /proc/<pid>/cwd lie under root (already resolved)? */
static bool cwd_under(pid_t pid, const char *root)
{
	char path[64], cwd[PATH_MAX];
	size_t n = strlen(root);
	ssize_t len;

	snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
	len = readlink(path, cwd, sizeof cwd - 1);
	if (len <= 0)
		return false;
	cwd[len] = '\0';
	return strncmp(cwd, root, n) == 0 && (cwd[n] == '\0' || cwd[n] == '/');
}

int cli_kill_under(const char *root)
{
	char real[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int killed = 0;
	pid_t pid, self = getpid();

	if (realpath(root, real) == NULL || (d = opendir("/proc")) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		pid = (pid_t)atoi(e->d_name);
		if (pid <= 1 || pid == self || !cli_pid_alive(pid) || !cwd_under(pid, real))
			continue;
		if (getpgid(pid) == pid)
			kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		killed++;
	}
	closedir(d);
	return killed;
}

bool cli_port_busy(const char *ip, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, one = 1;
	bool busy = false;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return false;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 && errno == EADDRINUSE)
		busy = true;
	close(fd);
	return busy;
}
