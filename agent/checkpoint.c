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
 * Records are JSON written atomically (temporary file, rename); protobuf
 * messages inside them are stored as hex of their wire form, so a record
 * always decodes to exactly what was launched. Task records are not
 * fsynced: they must outlive the agent, which they do from the page
 * cache, but not the machine — a reboot ends every task, and a record of
 * an earlier boot is only read to report its task gone (a record the
 * crash left unreadable is skipped). The agent id is fsynced.
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
	char *bid = boot_id();
	size_t i;

	json_object_set_new(rec, "container_id", json_string(t->container_id));
	json_object_set_new(rec, "framework_id", json_string(t->framework_id));
	json_object_set_new(rec, "task_info", pb_hex(&t->info->base));
	if (t->framework != NULL)
		json_object_set_new(rec, "framework_info", pb_hex(&t->framework->base));
	json_object_set_new(rec, "sandbox", json_string(t->sandbox));
	json_object_set_new(rec, "supervisor_pid", json_integer(t->supervisor_pid));
	json_object_set_new(rec, "supervisor_start", json_integer((json_int_t)t->supervisor_start));
	json_object_set_new(rec, "task_pid", json_integer(t->task_pid));
	json_object_set_new(rec, "boot_id", json_string(bid));
	json_object_set_new(rec, "launched", json_real(t->launched));
	json_object_set_new(rec, "state", json_integer(t->state));
	json_object_set_new(rec, "killing", json_boolean(t->killing));
	json_object_set_new(rec, "forget", json_boolean(t->forget));
	json_object_set_new(rec, "kill_grace", json_real(t->kill_grace));
	json_object_set_new(rec, "ended", json_boolean(t->ended));
	for (i = 0; i < t->nstatuses; i++)
		json_array_append_new(st, pb_hex(&t->statuses[i]->base));
	json_object_set_new(rec, "statuses", st);
	json_object_set_new(rec, "acked", json_integer((json_int_t)t->acked));
	free(bid);
	return rec;
}

int agent_checkpoint_task(struct agent_task *t)
{
	json_t *rec;
	char *text, *path, *cause = NULL;
	int rc = 0;

	if (t->agent->simulated)
		return 0;
	rec = task_record(t);
	text = json_dumps(rec, JSON_COMPACT);
	path = xasprintf("%s/task.json", t->run_dir);

	if (bt_write_file_replace(path, text, strlen(text), &cause) != 0) {
		log_error("unable to checkpoint task '%s': %s", t->task_id, cause);
		free(cause);
		rc = -1;
	}
	free(path);
	free(text);
	json_decref(rec);
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
	char *bid = boot_id();

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
	free(bid);
}

/* one record into a task; NULL with *cause when it does not decode */
static struct agent_task *load_record(struct agent *a, const char *run_dir, char **cause)
{
	char *path = xasprintf("%s/task.json", run_dir);
	char *text = NULL;
	json_t *rec = NULL;
	json_error_t err;
	struct agent_task *t = NULL;
	size_t len;

	if (bt_read_file(path, &text, &len, cause) != 0)
		goto out;
	if ((rec = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		*cause = xasprintf("unable to parse '%s': %s", path, err.text);
		goto out;
	}
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
