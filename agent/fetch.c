/*
 * fetch.c -- the fetcher: a task's CommandInfo.uris into its sandbox before it starts.
 *
 * As Mesos's fetcher does, every URI of the task's command is fetched into
 * the sandbox, one after the other, before the task (process or Docker
 * container) is started; only when all of them arrived does the launch go
 * on (agent_launch_fetched). Meanwhile the task stays in TASK_STAGING.
 *
 *   http://, https://  downloaded with the agent's libcurl multi client in
 *                      the event loop, redirects followed (at most 10); a
 *                      final status other than 2xx is a failure naming it
 *   file://, /abs/path copied by a `cp` child
 *   anything else      fails the task (hdfs://, s3://, relative paths ...)
 *
 * The file is named after the last segment of the URI's path (query and
 * fragment left out) or, when set, output_file: a relative path inside the
 * sandbox. executable=true makes it mode 0755 (and it is not extracted);
 * extract=true unpacks .tar, .tar.gz/.tgz, .tar.bz2/.tbz2, .tar.xz/.txz
 * (tar -C <sandbox> -xf), .zip (unzip -o -d <sandbox>) and .gz (gzip -dc
 * into the name without .gz) into the sandbox; the archive stays, as in
 * Mesos. cache is accepted and ignored: every launch fetches afresh.
 *
 * Children (cp, tar, gzip, unzip) run in their own process group with the
 * sandbox's stderr as their stderr, so their complaints end up next to the
 * fetcher's own lines there, and the first of them in the failure message.
 * They are reaped by the agent's SIGCHLD loop (agent_fetch_reaped).
 *
 * A failure ends the task with TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED
 * and "Failed to fetch '<uri>': <cause>". The whole fetch is bounded by
 * --executor_registration_timeout (REASON_EXECUTOR_REGISTRATION_TIMEOUT);
 * a kill meanwhile cancels it and ends the task with TASK_KILLED.
 */
#include "agent.h"
#include "http_client.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_REDIRECTS   10
#define CHILD_ERR_MAX   400     /* bytes of a child's stderr quoted in a message */

#define REASON(r)       MESOS__V1__TASK_STATUS__REASON__REASON_##r

enum uri_kind { URI_HTTP, URI_LOCAL, URI_BAD };
enum archive { AR_NONE, AR_TAR, AR_GZ, AR_ZIP };

struct agent_fetch {
	struct agent_task *task;
	size_t next;                    /* index of the URI being fetched */
	const char *uri;                /* its value */
	char *path;                     /* where it goes (absolute, in the sandbox) */
	char *url;                      /* the HTTP URL being asked, after redirects */
	int redirects;
	int fd;                         /* the download's file, or -1 */
	char *write_error;              /* writing the download failed: why */
	struct bt_http_call *call;
	pid_t child;                    /* cp, tar, gzip or unzip; 0 when none */
	bool extracting;                /* the child extracts (else it copies) */
	int log_fd;                     /* the sandbox's stderr, or -1 */
	off_t log_mark;                 /* where the child's stderr starts in it */
	struct event *timer_ev;
};

static void next_uri(struct agent_fetch *f);
static void placed(struct agent_fetch *f);

/* ---- pure helpers ---- */

/* what fetches this URI; *cause says why nothing does */
static enum uri_kind uri_kind(const char *uri, char **cause)
{
	const char *sep = strstr(uri, "://");
	size_t n;

	if (bt_str_has_prefix(uri, "http://") || bt_str_has_prefix(uri, "https://"))
		return URI_HTTP;
	if (bt_str_has_prefix(uri, "file://") || uri[0] == '/')
		return URI_LOCAL;
	n = sep != NULL ? (size_t)(sep - uri) : 0;
	if (n > 0 && strspn(uri, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+.-") == n) {
		*cause = xasprintf("unsupported URI scheme '%.*s' (butte-agent fetches http, "
		    "https and file URIs)", (int)n, uri);
		return URI_BAD;
	}
	if (*uri == '\0')
		*cause = xstrdup("the URI is empty");
	else
		*cause = xstrdup("a relative path needs --frameworks_home, which butte-agent "
		    "does not have; give an absolute path or a URL");
	return URI_BAD;
}

/* the local path of "file:///p", "file://localhost/p" or "/p"; NULL with *cause */
static char *local_path(const char *uri, char **cause)
{
	const char *p = uri;

	if (bt_str_has_prefix(p, "file://")) {
		p += 7;
		if (bt_str_has_prefix(p, "localhost/"))
			p += 9;
	}
	if (*p != '/') {
		*cause = xstrdup("a file URI must name an absolute path on this agent "
		    "(file:///path)");
		return NULL;
	}
	return xstrdup(p);
}

/* the last segment of the URI's path, without query or fragment; NULL when empty */
static char *uri_basename(const char *uri)
{
	const char *start = uri, *sep = strstr(uri, "://"), *slash, *end;

	if (sep != NULL) {
		start = sep + 3;
		/* the authority is not a file name */
		if ((slash = strchr(start, '/')) == NULL)
			return NULL;
		start = slash;
	}
	end = start + strcspn(start, "?#");
	for (slash = start; slash < end; slash++)
		if (*slash == '/')
			start = slash + 1;
	if (end == start || (end - start == 1 && *start == '.') ||
	    (end - start == 2 && start[0] == '.' && start[1] == '.'))
		return NULL;
	return xstrndup(start, (size_t)(end - start));
}

/* a relative path that stays inside the directory it is relative to */
static bool inside_name(const char *name)
{
	const char *p = name;
	size_t n;

	if (*name == '\0' || *name == '/')
		return false;
	while (*p != '\0') {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p += n;
		p += strspn(p, "/");
	}
	return name[strlen(name) - 1] != '/';
}

/* the file name in the sandbox: output_file, else the URI's basename */
static char *output_name(const Mesos__V1__CommandInfo__URI *u, char **cause)
{
	char *name;

	if (u->output_file != NULL && *u->output_file != '\0') {
		if (!inside_name(u->output_file)) {
			*cause = xasprintf("invalid output_file '%s': it must be a relative path "
			    "inside the sandbox", u->output_file);
			return NULL;
		}
		return xstrdup(u->output_file);
	}
	if ((name = uri_basename(u->value)) == NULL)
		*cause = xstrdup("the URI names no file; give an output_file");
	return name;
}

static enum archive archive_kind(const char *name)
{
	static const char *const tars[] = {
		".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", NULL,
	};
	size_t i;

	for (i = 0; tars[i] != NULL; i++)
		if (bt_str_has_suffix(name, tars[i]))
			return AR_TAR;
	if (bt_str_has_suffix(name, ".zip"))
		return AR_ZIP;
	if (bt_str_has_suffix(name, ".gz") && strlen(name) > 3)
		return AR_GZ;
	return AR_NONE;
}

/* seconds in Mesos's duration style: "1mins", "30secs", "1.5secs", "250ms" */
static char *duration_text(double s)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = { { "hrs", 3600 }, { "mins", 60 }, { "secs", 1 }, { "ms", 1e-3 } };
	size_t i;

	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		double n = s / units[i].seconds;
		if (n >= 1 && n < 1e15 && fabs(n - (double)bt_round(n)) < 1e-9 * n)
			return xasprintf("%lld%s", (long long)bt_round(n), units[i].unit);
	}
	return xasprintf("%gsecs", s);
}

/* name as an executable in $PATH (or itself with a '/'); NULL when missing */
static char *find_program(const char *name)
{
	const char *path = getenv("PATH"), *p;
	char *dir, *full;
	size_t n;

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p += n + (p[n] == ':')) {
		n = strcspn(p, ":");
		dir = n > 0 ? xstrndup(p, n) : xstrdup(".");
		full = xasprintf("%s/%s", dir, name);
		free(dir);
		if (access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/* a relative redirect target against the URL it came from; NULL when malformed */
static char *resolve_url(const char *base, const char *location)
{
	CURLU *h = curl_url();
	char *out = NULL, *res = NULL;

	if (curl_url_set(h, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(h, CURLUPART_URL, location, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_URL, &out, 0) == CURLUE_OK) {
		res = xstrdup(out);
		curl_free(out);
	}
	curl_url_cleanup(h);
	return res;
}

/* ---- the fetch's life ---- */

static void sandbox_log(struct agent_fetch *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sandbox_log(struct agent_fetch *f, const char *fmt, ...)
{
	va_list ap;

	if (f->log_fd < 0)
		return;
	va_start(ap, fmt);
	dprintf(f->log_fd, "butte-fetcher: ");
	vdprintf(f->log_fd, fmt, ap);
	dprintf(f->log_fd, "\n");
	va_end(ap);
}

/* the current file's name in the sandbox */
static const char *relative(const struct agent_fetch *f)
{
	return f->path + strlen(f->task->sandbox) + 1;
}

/* stop what runs now: the download, the child, the file */
static void stop_step(struct agent_fetch *f)
{
	if (f->call != NULL)
		bt_http_call_cancel(f->call);
	f->call = NULL;
	if (f->child > 0 && killpg(f->child, SIGKILL) != 0 && errno != ESRCH)
		log_warn("unable to kill fetcher child %d: %s", (int)f->child, strerror(errno));
	f->child = 0;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	free(f->write_error);
	f->write_error = NULL;
	free(f->url);
	f->url = NULL;
	free(f->path);
	f->path = NULL;
}

void agent_fetch_free(struct agent_task *t)
{
	struct agent_fetch *f = t->fetch;

	if (f == NULL)
		return;
	stop_step(f);
	if (f->timer_ev != NULL)
		event_free(f->timer_ev);
	if (f->log_fd >= 0)
		close(f->log_fd);
	free(f);
	t->fetch = NULL;
}

/* the fetch is over without a task to start: t ends with this state */
static void end_task(struct agent_fetch *f, Mesos__V1__TaskState state, const char *msg,
    int reason)
{
	struct agent_task *t = f->task;

	sandbox_log(f, "%s", msg);
	log_info("task '%s' of framework '%s': %s", t->task_id, t->framework_id, msg);
	agent_fetch_free(t);
	t->ended = true;
	agent_update_new(t, state, msg, reason);
	agent_task_maybe_remove(t);
}

static void give_up(struct agent_fetch *f, int reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void give_up(struct agent_fetch *f, int reason, const char *fmt, ...)
{
	char *cause, *msg;
	va_list ap;

	va_start(ap, fmt);
	cause = xvasprintf(fmt, ap);
	va_end(ap);
	msg = xasprintf("Failed to fetch '%s': %s", f->uri, cause);
	end_task(f, MESOS__V1__TASK_STATE__TASK_FAILED, msg, reason);
	free(msg);
	free(cause);
}

void agent_fetch_kill(struct agent_task *t)
{
	struct agent_fetch *f = t->fetch;

	if (f == NULL)
		return;
	end_task(f, MESOS__V1__TASK_STATE__TASK_KILLED,
	    "the task was killed while the agent was fetching its URIs",
	    REASON(TASK_KILLED_DURING_LAUNCH));
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_fetch *f = arg;
	char *d = duration_text(f->task->agent->executor_registration_timeout);

	give_up(f, REASON(EXECUTOR_REGISTRATION_TIMEOUT),
	    "not done within %s (--executor_registration_timeout)", d);
	free(d);
}

/* ---- children: cp, tar, gzip, unzip ---- */

/* the child's complaint from the sandbox's stderr, its lines joined by "; "; caller frees */
static char *child_complaint(struct agent_fetch *f)
{
	char buf[CHILD_ERR_MAX + 1], out[2 * CHILD_ERR_MAX + 1];
	ssize_t n = f->log_fd >= 0 ? pread(f->log_fd, buf, CHILD_ERR_MAX, f->log_mark) : -1;
	size_t i, o = 0;

	if (n <= 0)
		return xstrdup("");
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	for (i = 0; i < (size_t)n; i++) {
		if (buf[i] == '\n') {
			if (o > 0 && out[o - 1] != ' ') {
				out[o++] = ';';
				out[o++] = ' ';
			}
		} else {
			out[o++] = (unsigned char)buf[i] < 0x20 ? ' ' : buf[i];
		}
	}
	out[o] = '\0';
	return xstrdup(out);
}

/* fork and exec prog with argv in the sandbox; stdout to out_fd or /dev/null */
static int spawn(struct agent_fetch *f, const char *prog, char *const *argv, int out_fd,
    char **cause)
{
	struct agent_task *t = f->task;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct stat st;
	sigset_t none;
	pid_t pid;

	if (null < 0) {
		*cause = xasprintf("unable to open /dev/null: %s", strerror(errno));
		return -1;
	}
	f->log_mark = f->log_fd >= 0 && fstat(f->log_fd, &st) == 0 ? st.st_size : 0;
	sigemptyset(&none);
	pid = fork();
	if (pid < 0) {
		*cause = xasprintf("unable to fork: %s", strerror(errno));
		close(null);
		return -1;
	}
	if (pid == 0) {
		/* system calls only from here on */
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : null, 1);
		dup2(f->log_fd >= 0 ? f->log_fd : null, 2);
		if (chdir(t->sandbox) != 0)
			_exit(126);
		close_range(3, ~0U, 0);
		execv(prog, argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(null);
	f->child = pid;
	return 0;
}

static void child_ended(struct agent_fetch *f, int status)
{
	char *why;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (f->extracting) {
			sandbox_log(f, "Extracted '%s' into '%s'", f->path, f->task->sandbox);
			next_uri(f);
		} else {
			placed(f);
		}
		return;
	}
	why = child_complaint(f);
	if (*why == '\0') {
		free(why);
		why = WIFEXITED(status) ? xasprintf("exited with status %d", WEXITSTATUS(status)) :
		    xasprintf("killed by signal %d", WTERMSIG(status));
	}
	if (f->extracting)
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to extract '%s': %s", relative(f),
		    why);
	else
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to copy it to '%s': %s",
		    relative(f), why);
	free(why);
}

bool agent_fetch_reaped(struct agent *a, pid_t pid, int status)
{
	struct agent_task *t;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (t->fetch != NULL && t->fetch->child == pid) {
			t->fetch->child = 0;
			child_ended(t->fetch, status);
			return true;
		}
	}
	return false;
}

/* run argv with its program looked up in $PATH, or give up */
static void run(struct agent_fetch *f, const char *what, char **argv, int out_fd)
{
	char *prog = find_program(argv[0]), *cause = NULL;

	if (prog == NULL)
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to %s: '%s' is not installed on "
		    "this agent", what, argv[0]);
	else if (spawn(f, prog, argv, out_fd, &cause) != 0)
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to %s: %s", what, cause);
	free(prog);
	free(cause);
}

/* the archive at f->path into the sandbox, as Mesos's fetcher extracts it */
static void extract(struct agent_fetch *f, enum archive kind)
{
	const char *sandbox = f->task->sandbox;
	char *what = xasprintf("extract '%s'", relative(f)), *out = NULL, *base;
	int out_fd = -1;

	f->extracting = true;
	if (kind == AR_TAR) {
		char *argv[] = { "tar", "-C", (char *)sandbox, "-xf", f->path, NULL };
		sandbox_log(f, "Extracting with command: tar -C '%s' -xf '%s'", sandbox, f->path);
		run(f, what, argv, -1);
	} else if (kind == AR_ZIP) {
		char *argv[] = { "unzip", "-o", "-d", (char *)sandbox, f->path, NULL };
		sandbox_log(f, "Extracting with command: unzip -o -d '%s' '%s'", sandbox, f->path);
		run(f, what, argv, -1);
	} else {
		char *argv[] = { "gzip", "-dc", f->path, NULL };
		base = strrchr(f->path, '/') + 1;
		out = xasprintf("%s/%.*s", sandbox, (int)(strlen(base) - 3), base);
		out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (out_fd < 0) {
			give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to create '%s': %s",
			    out + strlen(sandbox) + 1, strerror(errno));
			goto out;
		}
		sandbox_log(f, "Extracting with command: gzip -dc '%s' > '%s'", f->path, out);
		run(f, what, argv, out_fd);
	}
out:
	if (out_fd >= 0)
		close(out_fd);
	free(out);
	free(what);
}

/* the URI's file is in the sandbox: make it executable or extract it */
static void placed(struct agent_fetch *f)
{
	const Mesos__V1__CommandInfo__URI *u = f->task->info->command->uris[f->next];
	enum archive kind = archive_kind(f->path);

	sandbox_log(f, "Fetched '%s' to '%s'", f->uri, f->path);
	if (u->executable) {
		if (chmod(f->path, 0755) != 0) {
			give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to make '%s' executable: %s",
			    relative(f), strerror(errno));
			return;
		}
		next_uri(f);
	} else if (u->extract && kind != AR_NONE) {
		extract(f, kind);
	} else {
		next_uri(f);
	}
}

/* ---- downloads ---- */

static void request(struct agent_fetch *f);

static int data_cb(struct bt_http_call *call, const void *data, size_t len, void *arg)
{
	struct agent_fetch *f = arg;
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(f->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			f->write_error = xasprintf("unable to write '%s': %s", relative(f),
			    n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* a 3xx with a Location: ask there, or give up */
static void redirect(struct agent_fetch *f, struct bt_http_call *call, int status)
{
	const char *location = bt_http_call_header(call, "Location");
	char *next;

	if (location == NULL || *location == '\0') {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "received HTTP return code %d without a "
		    "Location header from '%s'", status, f->url);
		return;
	}
	if (++f->redirects > MAX_REDIRECTS) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "more than %d redirects", MAX_REDIRECTS);
		return;
	}
	next = resolve_url(f->url, location);
	if (next == NULL || (!bt_str_has_prefix(next, "http://") &&
	    !bt_str_has_prefix(next, "https://"))) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "'%s' redirects to '%s', which is not "
		    "an http or https URL", f->url, location);
		free(next);
		return;
	}
	log_debug("fetch: '%s' redirects to '%s'", f->url, next);
	free(f->url);
	f->url = next;
	if (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) < 0)
		log_debug("unable to truncate '%s': %s", f->path, strerror(errno));
	request(f);
}

static void done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct agent_fetch *f = arg;

	f->call = NULL;
	if (f->write_error != NULL) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "%s", f->write_error);
		return;
	}
	if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
		redirect(f, call, status);
		return;
	}
	if (status == 0 || (error != NULL && status >= 200 && status < 300)) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "%s", error != NULL ? error :
		    "no response");
		return;
	}
	if (status < 200 || status >= 300) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "received HTTP return code %d", status);
		return;
	}
	close(f->fd);
	f->fd = -1;
	placed(f);
}

static void request(struct agent_fetch *f)
{
	struct bt_http_request_opts o;

	memset(&o, 0, sizeof o);
	o.url = f->url;
	o.on_data = data_cb;
	o.on_done = done_cb;
	o.arg = f;
	f->call = bt_http_request(f->task->agent->fetch_client, &o);
}

static void download(struct agent_fetch *f)
{
	f->fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (f->fd < 0) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to create '%s': %s", relative(f),
		    strerror(errno));
		return;
	}
	sandbox_log(f, "Downloading resource from '%s' to '%s'", f->uri, f->path);
	f->url = xstrdup(f->uri);
	request(f);
}

/* ---- local files ---- */

static void copy(struct agent_fetch *f)
{
	char *cause = NULL, *src = local_path(f->uri, &cause);
	struct stat st;

	if (src == NULL) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "%s", cause);
		goto out;
	}
	if (stat(src, &st) != 0) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "unable to read '%s': %s", src,
		    strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "'%s' is a directory", src);
		goto out;
	}
	{
		char *argv[] = { "cp", "--", src, f->path, NULL };
		sandbox_log(f, "Copying resource with command: cp -- '%s' '%s'", src, f->path);
		f->extracting = false;
		run(f, "copy it", argv, -1);
	}
out:
	free(src);
	free(cause);
}

/* ---- the list of URIs ---- */

/* the destination of the URI: its dirs made, inside the sandbox, no symlink in place */
static char *destination(struct agent_fetch *f, const Mesos__V1__CommandInfo__URI *u,
    char **cause)
{
	const char *sandbox = f->task->sandbox;
	char *name = output_name(u, cause), *path = NULL, *dir = NULL, *real = NULL;
	struct stat st;

	if (name == NULL)
		return NULL;
	path = xasprintf("%s/%s", sandbox, name);
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	if (bt_mkdirs(dir, 0755, cause) != 0)
		goto fail;
	real = realpath(dir, NULL);
	if (real == NULL || (strcmp(real, sandbox) != 0 &&
	    !(bt_str_has_prefix(real, sandbox) && real[strlen(sandbox)] == '/'))) {
		*cause = xasprintf("'%s' leads out of the sandbox", name);
		goto fail;
	}
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		unlink(path);
	free(real);
	free(dir);
	free(name);
	return path;
fail:
	free(real);
	free(dir);
	free(path);
	free(name);
	return NULL;
}

/* every URI is in the sandbox: the launch goes on */
static void fetched_all(struct agent_fetch *f)
{
	struct agent_task *t = f->task;

	log_info("fetched the %zu URI(s) of task '%s' of framework '%s'",
	    t->info->command->n_uris, t->task_id, t->framework_id);
	agent_fetch_free(t);
	agent_launch_fetched(t);
}

/* fetch uris[f->next] */
static void start_uri(struct agent_fetch *f)
{
	const Mesos__V1__CommandInfo *cmd = f->task->info->command;
	const Mesos__V1__CommandInfo__URI *u;
	char *cause = NULL;
	enum uri_kind kind;

	stop_step(f);
	if (f->next >= cmd->n_uris) {
		fetched_all(f);
		return;
	}
	u = cmd->uris[f->next];
	f->uri = u->value != NULL ? u->value : "";
	f->redirects = 0;
	sandbox_log(f, "Fetching URI '%s'", f->uri);
	if ((kind = uri_kind(f->uri, &cause)) == URI_BAD ||
	    (f->path = destination(f, u, &cause)) == NULL) {
		give_up(f, REASON(CONTAINER_LAUNCH_FAILED), "%s", cause);
		free(cause);
		return;
	}
	if (kind == URI_HTTP)
		download(f);
	else
		copy(f);
}

static void next_uri(struct agent_fetch *f)
{
	f->next++;
	start_uri(f);
}

void agent_fetch_start(struct agent_task *t)
{
	const Mesos__V1__CommandInfo *cmd = t->info->command;
	struct agent *a = t->agent;
	struct agent_fetch *f;
	struct timeval tv;
	char *path;

	if (cmd == NULL || cmd->n_uris == 0) {
		agent_launch_fetched(t);
		return;
	}
	if (a->fetch_client == NULL)
		a->fetch_client = bt_http_client_new(a->base);
	f = xcalloc(1, sizeof *f);
	f->task = t;
	f->fd = -1;
	path = xasprintf("%s/stderr", t->sandbox);
	f->log_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (f->log_fd < 0)
		log_warn("unable to open '%s': %s", path, strerror(errno));
	free(path);
	t->fetch = f;
	if (a->executor_registration_timeout > 0) {
		tv = bt_timeval(a->executor_registration_timeout);
		f->timer_ev = evtimer_new(a->base, timeout_cb, f);
		evtimer_add(f->timer_ev, &tv);
	}
	agent_checkpoint_task(t);
	log_info("fetching %zu URI(s) for task '%s' of framework '%s' into '%s'", cmd->n_uris,
	    t->task_id, t->framework_id, t->sandbox);
	start_uri(f);
}

void agent_fetch_release(struct agent *a)
{
	if (a->fetch_client != NULL)
		bt_http_client_free(a->fetch_client);
	a->fetch_client = NULL;
}
