/*
 * test_fetch.c -- the agent's fetcher (agent/fetch.c): URI kinds, file names,
 * output_file checks, archive types, and whole fetches of local files driven
 * by a real event loop (copy, executable, tar and gzip extraction, a missing
 * file, a corrupt archive, a kill and the --executor_registration_timeout
 * bound on a copy that never ends).
 *
 * The rest of the agent is replaced by stubs that record what the fetcher
 * reports: the update it sends and whether the launch went on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/fetch.c"

#include <sys/wait.h>

/* ---- stubs for the rest of the agent ---- */

static int last_state = -1, last_reason = -1, launched;
static char last_message[1024];

void agent_update_new(struct agent_task *t, Mesos__V1__TaskState state, const char *message,
    int reason)
{
	t->state = state;
	last_state = state;
	last_reason = reason;
	snprintf(last_message, sizeof last_message, "%s", message != NULL ? message : "");
}

void agent_task_maybe_remove(struct agent_task *t)
{
}

int agent_checkpoint_task(struct agent_task *t)
{
	return 0;
}

void agent_launch_fetched(struct agent_task *t)
{
	launched++;
}

/* ---- pure helpers ---- */

static void test_uri_kind(void **state)
{
	char *cause = NULL;

	assert_int_equal(uri_kind("http://127.0.0.1/x", &cause), URI_HTTP);
	assert_int_equal(uri_kind("https://example.org/x.tgz", &cause), URI_HTTP);
	assert_int_equal(uri_kind("file:///tmp/x", &cause), URI_LOCAL);
	assert_int_equal(uri_kind("/tmp/x", &cause), URI_LOCAL);
	assert_null(cause);
	assert_int_equal(uri_kind("hdfs://nn/x.tgz", &cause), URI_BAD);
	assert_string_equal(cause, "unsupported URI scheme 'hdfs' (butte-agent fetches http, "
	    "https and file URIs)");
	free(cause);
	cause = NULL;
	assert_int_equal(uri_kind("s3://bucket/x", &cause), URI_BAD);
	assert_non_null(strstr(cause, "'s3'"));
	free(cause);
	cause = NULL;
	assert_int_equal(uri_kind("relative/x", &cause), URI_BAD);
	assert_non_null(strstr(cause, "relative path"));
	free(cause);
	cause = NULL;
	assert_int_equal(uri_kind("", &cause), URI_BAD);
	assert_string_equal(cause, "the URI is empty");
	free(cause);
}

static void test_local_path(void **state)
{
	char *cause = NULL, *p;

	p = local_path("file:///srv/a b/x.tgz", &cause);
	assert_string_equal(p, "/srv/a b/x.tgz");
	free(p);
	p = local_path("file://localhost/srv/x", &cause);
	assert_string_equal(p, "/srv/x");
	free(p);
	p = local_path("/srv/y", &cause);
	assert_string_equal(p, "/srv/y");
	free(p);
	assert_null(local_path("file://otherhost/srv/x", &cause));
	assert_non_null(strstr(cause, "absolute path"));
	free(cause);
}

static void test_basename(void **state)
{
	static const struct {
		const char *uri, *name;
	} cases[] = {
		{ "http://h:8080/a/b/app.tar.gz", "app.tar.gz" },
		{ "http://h/a/file.tgz?token=x/y#frag", "file.tgz" },
		{ "https://h/run.sh#x", "run.sh" },
		{ "/opt/pkgs/tool", "tool" },
		{ "file:///opt/x.zip", "x.zip" },
		{ "http://h", NULL },
		{ "http://h/", NULL },
		{ "http://h/dir/", NULL },
		{ "http://h/dir/..", NULL },
		{ "http://h/?q=1", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *name = uri_basename(cases[i].uri);
		if (cases[i].name == NULL)
			assert_null(name);
		else
			assert_string_equal(name, cases[i].name);
		free(name);
	}
}

static void test_output_name(void **state)
{
	Mesos__V1__CommandInfo__URI u = MESOS__V1__COMMAND_INFO__URI__INIT;
	static const char *const good[] = { "x", "a/b/c.tgz", "a//b", "./x", "..x", "x.." };
	static const char *const bad[] = { "/etc/passwd", "..", "../x", "a/../../x", "a/..",
		"a/" };
	char *cause = NULL, *name;
	size_t i;

	u.value = "http://h/dir/pkg.tgz";
	name = output_name(&u, &cause);
	assert_string_equal(name, "pkg.tgz");
	free(name);
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		u.output_file = (char *)good[i];
		name = output_name(&u, &cause);
		assert_non_null(name);
		assert_string_equal(name, good[i]);
		free(name);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		u.output_file = (char *)bad[i];
		assert_null(output_name(&u, &cause));
		assert_non_null(strstr(cause, "invalid output_file"));
		free(cause);
		cause = NULL;
	}
	u.output_file = NULL;
	u.value = "http://h/";
	assert_null(output_name(&u, &cause));
	assert_string_equal(cause, "the URI names no file; give an output_file");
	free(cause);
}

static void test_archive_kind(void **state)
{
	assert_int_equal(archive_kind("a.tar"), AR_TAR);
	assert_int_equal(archive_kind("a.tar.gz"), AR_TAR);
	assert_int_equal(archive_kind("a.tgz"), AR_TAR);
	assert_int_equal(archive_kind("a.tar.bz2"), AR_TAR);
	assert_int_equal(archive_kind("a.tbz2"), AR_TAR);
	assert_int_equal(archive_kind("a.tar.xz"), AR_TAR);
	assert_int_equal(archive_kind("a.txz"), AR_TAR);
	assert_int_equal(archive_kind("a.zip"), AR_ZIP);
	assert_int_equal(archive_kind("a.gz"), AR_GZ);
	assert_int_equal(archive_kind("run.sh"), AR_NONE);
	assert_int_equal(archive_kind("a.tar.bz"), AR_NONE);
	assert_int_equal(archive_kind("a.TGZ"), AR_NONE);
}

static void test_duration_text(void **state)
{
	static const struct {
		double s;
		const char *text;
	} cases[] = {
		{ 60, "1mins" }, { 1, "1secs" }, { 90, "90secs" }, { 7200, "2hrs" },
		{ 0.25, "250ms" }, { 1.5, "1500ms" }, { 0.0001, "0.0001secs" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *t = duration_text(cases[i].s);
		assert_string_equal(t, cases[i].text);
		free(t);
	}
}

static void test_find_program(void **state)
{
	char *p = find_program("sh");

	assert_non_null(p);
	assert_int_equal(access(p, X_OK), 0);
	free(p);
	assert_null(find_program("no-such-program-for-butte"));
	assert_null(find_program("/no/such/program"));
}

static void test_resolve_url(void **state)
{
	char *u = resolve_url("http://h:1/a/b?x=1", "/c/d.tgz");

	assert_string_equal(u, "http://h:1/c/d.tgz");
	free(u);
	u = resolve_url("http://h:1/a/b", "e.tgz");
	assert_string_equal(u, "http://h:1/a/e.tgz");
	free(u);
	u = resolve_url("http://h:1/a/b", "https://other/x");
	assert_string_equal(u, "https://other/x");
	free(u);
}

/* ---- whole fetches of local files in a real loop ---- */

struct world {
	struct agent agent;
	struct agent_task task;
	Mesos__V1__TaskInfo info;
	Mesos__V1__CommandInfo cmd;
	Mesos__V1__CommandInfo__URI uris[4];
	Mesos__V1__CommandInfo__URI *uriv[4];
	struct event *sigchld;
	char src[PATH_MAX];             /* files to fetch from */
	char box[PATH_MAX + 16];        /* the sandbox */
};

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
	struct world *w = arg;
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		agent_fetch_reaped(&w->agent, pid, st);
}

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void world_init(struct world *w, size_t nuris)
{
	char tmpl[] = "/tmp/butte-fetch-XXXXXX", *dir;
	size_t i;

	memset(w, 0, sizeof *w);
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	assert_non_null(realpath(dir, w->src));
	snprintf(w->box, sizeof w->box, "%s/sandbox", w->src);
	assert_int_equal(mkdir(w->box, 0755), 0);
	w->agent.base = event_base_new();
	w->agent.executor_registration_timeout = 20;
	TAILQ_INIT(&w->agent.tasks);
	w->sigchld = evsignal_new(w->agent.base, SIGCHLD, sigchld_cb, w);
	event_add(w->sigchld, NULL);
	mesos__v1__task_info__init(&w->info);
	mesos__v1__command_info__init(&w->cmd);
	for (i = 0; i < nuris; i++) {
		mesos__v1__command_info__uri__init(&w->uris[i]);
		w->uriv[i] = &w->uris[i];
	}
	w->cmd.n_uris = nuris;
	w->cmd.uris = w->uriv;
	w->info.command = &w->cmd;
	w->task.agent = &w->agent;
	w->task.task_id = "t";
	w->task.framework_id = "f";
	w->task.sandbox = w->box;
	w->task.info = &w->info;
	w->task.state = MESOS__V1__TASK_STATE__TASK_STAGING;
	TAILQ_INSERT_TAIL(&w->agent.tasks, &w->task, entry);
	last_state = last_reason = -1;
	last_message[0] = '\0';
	launched = 0;
}

static void world_release(struct world *w)
{
	agent_fetch_free(&w->task);
	agent_fetch_release(&w->agent);
	event_free(w->sigchld);
	event_base_free(w->agent.base);
	sh("rm -rf '%s'", w->src);
}

/* run the loop until the fetch is over (launched or an update), at most 15 s */
static void world_run(struct world *w)
{
	double deadline = bt_monotonic() + 15;
	struct timeval tick = { 0, 20000 };

	while (w->task.fetch != NULL && bt_monotonic() < deadline) {
		event_base_loopexit(w->agent.base, &tick);
		event_base_dispatch(w->agent.base);
	}
	assert_null(w->task.fetch);
}

static char *slurp(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name), *text = NULL, *cause = NULL;

	if (bt_read_file(path, &text, NULL, &cause) != 0) {
		free(cause);
		text = NULL;
	}
	free(path);
	return text;
}

static void test_local_fetch_copies_and_extracts(void **state)
{
	struct world w;
	char *uri0, *uri1, *uri2, *text, *path;
	struct stat st;

	world_init(&w, 3);
	sh("cd '%s' && mkdir pkg && echo inside > pkg/data.txt && tar -czf pkg.tgz pkg && "
	    "rm -r pkg && printf '#!/bin/sh\\necho hi\\n' > run.sh && echo zipped > notes && "
	    "gzip notes", w.src);
	uri0 = xasprintf("file://%s/pkg.tgz", w.src);
	uri1 = xasprintf("%s/run.sh", w.src);
	uri2 = xasprintf("%s/notes.gz", w.src);
	w.uris[0].value = uri0;
	w.uris[1].value = uri1;
	w.uris[1].has_executable = true;
	w.uris[1].executable = true;
	w.uris[1].output_file = "bin/run";
	w.uris[2].value = uri2;
	agent_fetch_start(&w.task);
	world_run(&w);
	assert_int_equal(launched, 1);
	assert_int_equal(last_state, -1);
	text = slurp(w.box, "pkg/data.txt");
	assert_string_equal(text, "inside\n");
	free(text);
	text = slurp(w.box, "notes");
	assert_string_equal(text, "zipped\n");
	free(text);
	path = xasprintf("%s/pkg.tgz", w.box);
	assert_int_equal(stat(path, &st), 0);
	free(path);
	path = xasprintf("%s/bin/run", w.box);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	free(path);
	text = slurp(w.box, "stderr");
	assert_non_null(strstr(text, "Fetching URI 'file://"));
	assert_non_null(strstr(text, "Extracting with command: tar -C"));
	free(text);
	world_release(&w);
	free(uri0);
	free(uri1);
	free(uri2);
}

static void test_missing_file_fails(void **state)
{
	struct world w;

	world_init(&w, 1);
	w.uris[0].value = "file:///nonexistent/butte/x.tgz";
	agent_fetch_start(&w.task);
	assert_null(w.task.fetch);
	assert_int_equal(launched, 0);
	assert_true(w.task.ended);
	assert_int_equal(last_state, MESOS__V1__TASK_STATE__TASK_FAILED);
	assert_int_equal(last_reason, REASON(CONTAINER_LAUNCH_FAILED));
	assert_string_equal(last_message, "Failed to fetch 'file:///nonexistent/butte/x.tgz': "
	    "unable to read '/nonexistent/butte/x.tgz': No such file or directory");
	world_release(&w);
}

static void test_corrupt_archive_fails(void **state)
{
	struct world w;
	char *uri;

	world_init(&w, 1);
	sh("echo 'not an archive' > '%s/bad.tar'", w.src);
	uri = xasprintf("%s/bad.tar", w.src);
	w.uris[0].value = uri;
	agent_fetch_start(&w.task);
	world_run(&w);
	assert_int_equal(launched, 0);
	assert_int_equal(last_state, MESOS__V1__TASK_STATE__TASK_FAILED);
	assert_non_null(strstr(last_message, "unable to extract 'bad.tar': tar: "));
	world_release(&w);
	free(uri);
}

/* a FIFO nobody writes to: cp never ends */
static void stuck_copy(struct world *w, char **uri)
{
	sh("mkfifo '%s/stuck'", w->src);
	*uri = xasprintf("%s/stuck", w->src);
	w->uris[0].value = *uri;
}

static void test_timeout_fails_and_kills_the_copy(void **state)
{
	struct world w;
	pid_t child;
	char *uri;

	world_init(&w, 1);
	stuck_copy(&w, &uri);
	w.agent.executor_registration_timeout = 0.3;
	agent_fetch_start(&w.task);
	assert_non_null(w.task.fetch);
	child = w.task.fetch->child;
	assert_true(child > 0);
	world_run(&w);
	assert_int_equal(launched, 0);
	assert_int_equal(last_state, MESOS__V1__TASK_STATE__TASK_FAILED);
	assert_int_equal(last_reason, REASON(EXECUTOR_REGISTRATION_TIMEOUT));
	assert_non_null(strstr(last_message, "not done within 300ms "
	    "(--executor_registration_timeout)"));
	/* killed, and reaped by the loop's SIGCHLD handler or here */
	assert_true(waitpid(child, NULL, 0) == child || errno == ECHILD);
	assert_int_equal(kill(child, 0), -1);
	world_release(&w);
	free(uri);
}

static void test_kill_cancels(void **state)
{
	struct world w;
	pid_t child;
	char *uri;

	world_init(&w, 1);
	stuck_copy(&w, &uri);
	agent_fetch_start(&w.task);
	child = w.task.fetch->child;
	agent_fetch_kill(&w.task);
	assert_null(w.task.fetch);
	assert_int_equal(last_state, MESOS__V1__TASK_STATE__TASK_KILLED);
	assert_int_equal(last_reason, REASON(TASK_KILLED_DURING_LAUNCH));
	assert_int_equal(waitpid(child, NULL, 0), child);
	assert_int_equal(launched, 0);
	world_release(&w);
	free(uri);
}

static void test_no_uris_launches_at_once(void **state)
{
	struct world w;

	world_init(&w, 0);
	agent_fetch_start(&w.task);
	assert_int_equal(launched, 1);
	assert_null(w.task.fetch);
	assert_null(w.agent.fetch_client);
	world_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_kind),
		cmocka_unit_test(test_local_path),
		cmocka_unit_test(test_basename),
		cmocka_unit_test(test_output_name),
		cmocka_unit_test(test_archive_kind),
		cmocka_unit_test(test_duration_text),
		cmocka_unit_test(test_find_program),
		cmocka_unit_test(test_resolve_url),
		cmocka_unit_test(test_local_fetch_copies_and_extracts),
		cmocka_unit_test(test_missing_file_fails),
		cmocka_unit_test(test_corrupt_archive_fails),
		cmocka_unit_test(test_timeout_fails_and_kills_the_copy),
		cmocka_unit_test(test_kill_cancels),
		cmocka_unit_test(test_no_uris_launches_at_once),
	};

	bt_log_init("test_fetch", "error");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
