/*
 * checkpoint.c -- what the agent keeps in its work dir to survive a restart.
 *
 * Layout under --work_dir:
 *   meta/agent.lock               flock'ed while an agent uses this work dir
 *   meta/agent_id                 the id the master gave this agent
 *   meta/runs/<container>/task.json
 *                                 one record per task: its TaskInfo and the
 *                                 framework's FrameworkInfo, the sandbox, the
 *                                 supervisor's pid and start time, the boot
 *                                 id, the kill in progress, and every status
 *                                 update with how many were acknowledged
 *   meta/runs/<container>/exit_status
 *                                 written by the task's supervisor when the
 *                                 task ends ("exited 0", "signaled 9")
 *   slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>/
 *                                 the sandbox (stdout, stderr)
 * A task record is a journal of JSON lines, as Mesos appends status
 * updates and acknowledgements to its task.updates files: the first line
 * is the whole record, every later line holds only what changed since
 * (new statuses under "statuses_add", other members with their new
 * value), and reading applies the lines in order. Appending creates no
 * file, so a task's launch writes its record once and then adds a line
 * per update and acknowledgement; after CKPT_LINES_MAX lines, and on the
 * first write after a restart, the record is rewritten whole (temporary
 * file, rename). Protobuf messages inside are stored as hex of their
 * wire form, so a record always decodes to exactly what was launched.
 * Task records are not fsynced: they must outlive the agent, which they
 * do from the page cache, but not the machine — a reboot ends every task,
 * and a record of an earlier boot is only read to report its task gone
 * (a record the crash left unreadable is skipped, a torn last line is
 * ignored). The agent id is fsynced.
 */
#include "agent.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define CKPT_LINES_MAX          32      /* journal lines before the record is rewritten */

static char *hex_encode(const uint8_t *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *out = xmalloc(len * 2 + 1);
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[len * 2] = '\0';
	return out;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static uint8_t *hex_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), i;
	uint8_t *out;

	if (n % 2 != 0)
		return NULL;
	out = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

static json_t *pb_hex(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(len + 1);
	char *hex;
	json_t *j;

	protobuf_c_message_pack(m, buf);
	hex = hex_encode(buf, len);
	j = json_string(hex);
	free(hex);
	free(buf);
	return j;
}

static ProtobufCMessage *pb_unhex(const ProtobufCMessageDescriptor *d, const json_t *j)
{
	const char *s = json_string_value(j);
	ProtobufCMessage *m;
	uint8_t *buf;
	size_t len;

	if (s == NULL || (buf = hex_decode(s, &len)) == NULL)
		return NULL;
	m = protobuf_c_message_unpack(d, NULL, len, buf);
	free(buf);
	return m;
}

static const char *str_member(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static char *boot_id(void)
{
	char *data = NULL, *cause = NULL;

	if (bt_read_file("/proc/sys/kernel/random/boot_id", &data, NULL, &cause) != 0) {
		free(cause);
		return xstrdup("");
	}
	data[strcspn(data, "\n")] = '\0';
	return data;
}

/* one agent per work dir: an flock held for the agent's life (never inherited) */
static int lock_work_dir(struct agent *a, char **cause)
{
	char *path = xasprintf("%s/meta/agent.lock", a->work_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc = -1;

	if (fd < 0) {
		*cause = xasprintf("unable to open '%s': %s", path, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		*cause = errno == EWOULDBLOCK ?
		    xasprintf("work dir '%s' is in use by another butte-agent", a->work_dir) :
		    xasprintf("unable to lock '%s': %s", path, strerror(errno));
		close(fd);
		goto out;
	}
	a->lock_fd = fd;
	rc = 0;
out:
	free(path);
	return rc;
}

int agent_checkpoint_init(struct agent *a, char **cause)
{
	char *dir = xasprintf("%s/meta/runs", a->work_dir);
	char *path = xasprintf("%s/meta/agent_id", a->work_dir);
	char *data = NULL;
	int rc = -1;

	free(a->boot_id);
	a->boot_id = boot_id();
	if (bt_mkdirs(dir, 0755, cause) != 0)
		goto out;
	if (lock_work_dir(a, cause) != 0)
		goto out;
	if (access(path, F_OK) == 0) {
		if (bt_read_file(path, &data, NULL, cause) != 0)
			goto out;
		data[strcspn(data, "\n")] = '\0';
		if (*data != '\0') {
			a->agent_id = data;
			data = NULL;
			log_info("recovered agent id '%s' from '%s'", a->agent_id, path);
		}
	}
	rc = 0;
out:
	free(data);
	free(path);
	free(dir);
	return rc;
}

int agent_checkpoint_save_id(struct agent *a, char **cause)
{
	char *path, *text;
	int rc;

	if (a->simulated)
		return 0;
	path = xasprintf("%s/meta/agent_id", a->work_dir);
	text = xasprintf("%s\n", a->agent_id);
	rc = bt_write_file_atomic(path, text, strlen(text), cause);

	free(text);
	free(path);
	return rc;
}

static json_t *task_record(const struct agent_task *t)
{
	json_t *rec = json_object(), *st = json_array();
	size_t i;

	json_object_set_new(rec, "container_id", json_string(t->container_id));
	json_object_set_new(rec, "framework_id", json_string(t->framework_id));
	json_object_set_new(rec, "task_info", pb_hex(&t->info->base));
	if (t->framework != NULL)
		json_object_set_new(rec, "framework_info", pb_hex(&t->framework->base));
	json_object_set_new(rec, "sandbox", json_string(t->sandbox));
	json_object_set_new(rec, "boot_id", json_string(t->agent->boot_id));
	json_object_set_new(rec, "launched", json_real(t->launched));
	for (i = 0; i < t->nstatuses; i++)
		json_array_append_new(st, pb_hex(&t->statuses[i]->base));
	json_object_set_new(rec, "statuses", st);
	return rec;
}

/*
 * The members that change during a task's life: into rec those that
 * differ from what the journal holds (all of them when `all`), and the
 * journal's idea of them brought up to date.
 */
static void changed_members(struct agent_task *t, json_t *rec, bool all)
{
	struct agent_ckpt *c = &t->ckpt;
	json_t *add;
	size_t i;

#define CHANGED(field, key, value) do {                                 \
	if (all || t->field != c->field)                                \
		json_object_set_new(rec, key, value);                   \
	c->field = t->field;                                            \
} while (0)
	CHANGED(supervisor_pid, "supervisor_pid", json_integer(t->supervisor_pid));
	CHANGED(supervisor_start, "supervisor_start",
	    json_integer((json_int_t)t->supervisor_start));
	CHANGED(task_pid, "task_pid", json_integer(t->task_pid));
	CHANGED(state, "state", json_integer(t->state));
	CHANGED(killing, "killing", json_boolean(t->killing));
	CHANGED(forget, "forget", json_boolean(t->forget));
	CHANGED(kill_grace, "kill_grace", json_real(t->kill_grace));
	CHANGED(ended, "ended", json_boolean(t->ended));
	CHANGED(acked, "acked", json_integer((json_int_t)t->acked));
#undef CHANGED
	if (!all && t->nstatuses > c->nstatuses) {
		add = json_array();
		for (i = c->nstatuses; i < t->nstatuses; i++)
			json_array_append_new(add, pb_hex(&t->statuses[i]->base));
		json_object_set_new(rec, "statuses_add", add);
	}
	c->nstatuses = t->nstatuses;
}

/* one JSON line to the end of the task's journal, or the whole record anew */
static int write_record(struct agent_task *t, const char *path, bool whole, char **cause)
{
	json_t *rec = whole ? task_record(t) : json_object();
	char *text;
	int rc = 0;

	changed_members(t, rec, whole);
	if (json_object_size(rec) == 0)
		goto out;
	text = json_dumps(rec, JSON_COMPACT);
	text = xrealloc(text, strlen(text) + 2);
	strcat(text, "\n");
	if (whole && t->ckpt.lines > 0)
		rc = bt_write_file_replace(path, text, strlen(text), cause);
	else
		rc = bt_append_file(path, text, strlen(text), cause);
	free(text);
	if (rc == 0)
		t->ckpt.lines = whole ? 1 : t->ckpt.lines + 1;
out:
	json_decref(rec);
	return rc;
}

int agent_checkpoint_task(struct agent_task *t)
{
	char *path, *cause = NULL;
	bool whole;
	int rc;

	if (t->agent->simulated)
		return 0;
	path = xasprintf("%s/task.json", t->run_dir);
	whole = t->ckpt.lines == 0 || t->ckpt.lines >= CKPT_LINES_MAX ||
	    t->nstatuses < t->ckpt.nstatuses;
	rc = write_record(t, path, whole, &cause);
	if (rc != 0 && !whole) {
		/* the journal is gone or unwritable: try a whole record in its place */
		free(cause);
		cause = NULL;
		t->ckpt.lines = CKPT_LINES_MAX;
		rc = write_record(t, path, true, &cause);
	}
	if (rc != 0) {
		log_error("unable to checkpoint task '%s': %s", t->task_id, cause);
		free(cause);
		t->ckpt.lines = CKPT_LINES_MAX;
	}
	free(path);
	return rc;
}

void agent_checkpoint_remove(struct agent_task *t)
{
	static const char *const files[] = { "task.json", "exit_status" };
	size_t i;

	if (t->agent->simulated)
		return;
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		char *path = xasprintf("%s/%s", t->run_dir, files[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn("unable to remove '%s': %s", path, strerror(errno));
		free(path);
	}
	if (rmdir(t->run_dir) != 0 && errno != ENOENT)
		log_warn("unable to remove '%s': %s", t->run_dir, strerror(errno));
}

static int load_statuses(struct agent_task *t, const json_t *arr)
{
	size_t i;
	json_t *v;

	t->nstatuses = 0;
	t->statuses = xcalloc(json_array_size(arr) + 1, sizeof *t->statuses);
	json_array_foreach(arr, i, v) {
		ProtobufCMessage *m = pb_unhex(&mesos__v1__task_status__descriptor, v);
		if (m == NULL)
			return -1;
		t->statuses[t->nstatuses++] = (Mesos__V1__TaskStatus *)m;
	}
	return 0;
}

/* the plain members of a record; the messages are already decoded */
static void record_fields(struct agent_task *t, const json_t *rec)
{
	const char *bid = t->agent->boot_id;

	t->container_id = xstrdup(str_member(rec, "container_id"));
	t->framework_id = xstrdup(str_member(rec, "framework_id"));
	t->task_id = xstrdup(t->info->task_id->value);
	t->sandbox = xstrdup(str_member(rec, "sandbox"));
	t->supervisor_pid = (pid_t)json_integer_value(json_object_get(rec, "supervisor_pid"));
	t->supervisor_start =
	    (unsigned long long)json_integer_value(json_object_get(rec, "supervisor_start"));
	t->task_pid = (pid_t)json_integer_value(json_object_get(rec, "task_pid"));
	t->launched = json_number_value(json_object_get(rec, "launched"));
	t->state = (int)json_integer_value(json_object_get(rec, "state"));
	t->killing = json_is_true(json_object_get(rec, "killing"));
	t->forget = json_is_true(json_object_get(rec, "forget"));
	t->kill_grace = json_number_value(json_object_get(rec, "kill_grace"));
	t->ended = json_is_true(json_object_get(rec, "ended"));
	t->acked = (size_t)json_integer_value(json_object_get(rec, "acked"));
	if (t->acked > t->nstatuses)
		t->acked = t->nstatuses;
	if (str_member(rec, "boot_id") != NULL &&
	    strcmp(str_member(rec, "boot_id"), bid) != 0) {
		log_warn("task '%s' was started before the machine rebooted", t->task_id);
		t->supervisor_start = ULLONG_MAX;       /* matches no process */
	}
}

/* a journal line's changes into the record it follows */
static void apply_line(json_t *rec, json_t *line)
{
	json_t *add = json_object_get(line, "statuses_add");
	json_t *st = json_object_get(rec, "statuses");

	if (json_is_array(add) && json_is_array(st))
		json_array_extend(st, add);
	json_object_del(line, "statuses_add");
	json_object_update(rec, line);
}

/* the record a journal's lines add up to; NULL with *cause when the first is unreadable */
static json_t *read_journal(const char *path, const char *text, size_t len, char **cause)
{
	const char *p = text, *end = text + len, *nl;
	json_t *rec = NULL, *line;
	json_error_t err;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		line = json_loadb(p, (size_t)((nl != NULL ? nl : end) - p), JSON_REJECT_DUPLICATES,
		    &err);
		if (line == NULL && rec == NULL) {
			*cause = xasprintf("unable to parse '%s': %s", path, err.text);
			return NULL;
		}
		if (line == NULL || !json_is_object(line)) {
			/* a line the agent was writing when it stopped: what follows is newer */
			log_warn("ignoring a torn line in '%s': %s", path, line == NULL ? err.text :
			    "not an object");
			json_decref(line);
			break;
		}
		if (rec == NULL)
			rec = line;
		else {
			apply_line(rec, line);
			json_decref(line);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (rec == NULL)
		*cause = xasprintf("unable to parse '%s': the file is empty", path);
	return rec;
}

/* one record into a task; NULL with *cause when it does not decode */
static struct agent_task *load_record(struct agent *a, const char *run_dir, char **cause)
{
	char *path = xasprintf("%s/task.json", run_dir);
	char *text = NULL;
	json_t *rec = NULL, *scratch;
	struct agent_task *t = NULL;
	size_t len;

	if (bt_read_file(path, &text, &len, cause) != 0)
		goto out;
	if ((rec = read_journal(path, text, len, cause)) == NULL)
		goto out;
	t = xcalloc(1, sizeof *t);
	t->agent = a;
	t->exec_fd = -1;
	t->pidfd = -1;
	t->run_dir = xstrdup(run_dir);
	t->info = (Mesos__V1__TaskInfo *)pb_unhex(&mesos__v1__task_info__descriptor,
	    json_object_get(rec, "task_info"));
	if (json_object_get(rec, "framework_info") != NULL)
		t->framework = (Mesos__V1__FrameworkInfo *)pb_unhex(
		    &mesos__v1__framework_info__descriptor, json_object_get(rec, "framework_info"));
	if (t->info == NULL || str_member(rec, "container_id") == NULL ||
	    str_member(rec, "framework_id") == NULL ||
	    str_member(rec, "sandbox") == NULL ||
	    load_statuses(t, json_object_get(rec, "statuses")) != 0) {
		*cause = xasprintf("unable to decode the task record '%s'", path);
		agent_task_free(t);
		t = NULL;
		goto out;
	}
	record_fields(t, rec);
	/* the journal holds what was just read; the next checkpoint rewrites it whole */
	scratch = json_object();
	changed_members(t, scratch, true);
	json_decref(scratch);
	t->ckpt.lines = CKPT_LINES_MAX;
out:
	json_decref(rec);
	free(text);
	free(path);
	return t;
}

int agent_checkpoint_load(struct agent *a, char **cause)
{
	char *dir = xasprintf("%s/meta/runs", a->work_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = -1;

	if (d == NULL) {
		*cause = xasprintf("unable to open '%s': %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char *run_dir, *why = NULL, *rec;
		struct agent_task *t;

		if (de->d_name[0] == '.')
			continue;
		run_dir = xasprintf("%s/%s", dir, de->d_name);
		rec = xasprintf("%s/task.json", run_dir);
		if (access(rec, F_OK) != 0) {
			/* a launch that never got as far as its first record */
			rmdir(run_dir);
			free(rec);
			free(run_dir);
			continue;
		}
		t = load_record(a, run_dir, &why);
		if (t == NULL) {
			log_error("skipping a checkpointed task: %s", why);
			free(why);
		} else {
			agent_task_add(a, t);
		}
		free(rec);
		free(run_dir);
	}
	closedir(d);
	rc = 0;
out:
	free(dir);
	return rc;
}
