/*
 * files.c -- /files/read and /files/browse on task sandboxes, as Mesos serves them.
 *
 * A path is accepted when it lies under <work_dir>/slaves, where every
 * sandbox lives: either the absolute path of a sandbox file (what /state
 * shows as an executor's "directory") or Mesos's virtual forms
 * "/slaves/<agent>/frameworks/..." and "/frameworks/<fw>/executors/...",
 * which are mapped below the work dir. The path is resolved with
 * realpath(3) and must still lie below the sandboxes afterwards, so
 * symlinks cannot lead out.
 *
 * /files/read?path=P&offset=N&length=M answers {"data": "...", "offset": N}
 * with at most 16 pages; offset -1 (or none) answers the file's size as
 * the offset and no data, which is how Mesos's web UI finds the end of a
 * file. Bytes that are not valid UTF-8 are sent as '?', one for one, so
 * offsets stay byte offsets.
 */
#include "agent.h"
#include "http_server.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_PAGES      16

/* the absolute path of the sandboxes' root, resolved */
static char *sandbox_root(const struct agent *a)
{
	char *root = xasprintf("%s/slaves", a->work_dir);
	char *real = realpath(root, NULL);

	if (real == NULL)
		return root;
	free(root);
	return real;
}

static bool under(const char *path, const char *root)
{
	size_t n = strlen(root);

	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/*
 * Resolve a request path. Returns the real path, or NULL with *code and
 * *cause set (403 outside the sandboxes, 404 missing).
 */
static char *resolve(const struct agent *a, const char *path, int *code, char **cause)
{
	char *root = sandbox_root(a), *want, *real = NULL;

	if (bt_str_has_prefix(path, "/slaves/"))
		want = xasprintf("%s%s", a->work_dir, path);
	else if (bt_str_has_prefix(path, "/frameworks/") && a->agent_id != NULL)
		want = xasprintf("%s/slaves/%s%s", a->work_dir, a->agent_id, path);
	else
		want = xstrdup(path);
	if (!under(want, a->work_dir) || !bt_str_has_prefix(want + strlen(a->work_dir), "/slaves")) {
		*code = 403;
		*cause = xasprintf("path '%s' is outside the task sandboxes", path);
		goto out;
	}
	real = realpath(want, NULL);
	if (real == NULL) {
		*code = errno == ENOENT || errno == ENOTDIR ? 404 : 403;
		*cause = xasprintf("unable to find '%s': %s", path, strerror(errno));
		goto out;
	}
	if (!under(real, root)) {
		*code = 403;
		*cause = xasprintf("path '%s' is outside the task sandboxes", path);
		free(real);
		real = NULL;
	}
out:
	free(want);
	free(root);
	return real;
}

/* parse a signed integer query value; -1 when it is not one */
static int query_long(const struct evkeyvalq *q, const char *name, long long def, long long *out)
{
	const char *v = bt_http_query(q, name);
	char *end;

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

static void sanitize_utf8(char *buf, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_len((unsigned char *)buf + i, n - i);
		if (l == 0) {
			buf[i++] = '?';
			continue;
		}
		i += l;
	}
}

/* path, offset and length of a read; answers 400 and returns -1 when one is wrong */
static int read_params(struct evhttp_request *req, const struct evkeyvalq *query,
    long long *offset, long long *length)
{
	const char *want = bt_http_query(query, "path");

	if (want == NULL || *want == '\0') {
		bt_http_error(req, 400, "expecting 'path=value' in query");
		return -1;
	}
	if (query_long(query, "offset", -1, offset) != 0) {
		bt_http_error(req, 400, "failed to parse offset '%s': not a number",
		    bt_http_query(query, "offset"));
		return -1;
	}
	if (*offset < -1) {
		bt_http_error(req, 400, "negative offset provided: %lld", *offset);
		return -1;
	}
	if (query_long(query, "length", -1, length) != 0) {
		bt_http_error(req, 400, "failed to parse length '%s': not a number",
		    bt_http_query(query, "length"));
		return -1;
	}
	if (*length < -1) {
		bt_http_error(req, 400, "negative length provided: %lld", *length);
		return -1;
	}
	return 0;
}

static void read_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct agent *a = arg;
	const char *want = bt_http_query(query, "path");
	long long offset, length;
	char *real = NULL, *cause = NULL, *buf = NULL;
	struct stat st;
	size_t cap = (size_t)READ_PAGES * (size_t)sysconf(_SC_PAGESIZE);
	ssize_t got;
	int code, fd = -1;

	if (read_params(req, query, &offset, &length) != 0)
		return;
	if ((real = resolve(a, want, &code, &cause)) == NULL) {
		bt_http_error(req, code, "%s", cause);
		goto out;
	}
	if ((fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
		bt_http_error(req, errno == ENOENT ? 404 : 403, "unable to open '%s': %s", want,
		    strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		bt_http_error(req, 400, "cannot read '%s': it is a directory", want);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		bt_http_error(req, 400, "cannot read '%s': not a regular file", want);
		goto out;
	}
	if (offset == -1 || offset >= (long long)st.st_size) {
		bt_http_reply_json(req, 200, json_pack("{s:s, s:I}", "data", "",
		    "offset", (json_int_t)(offset == -1 ? st.st_size : offset)));
		goto out;
	}
	if (length >= 0 && (size_t)length < cap)
		cap = (size_t)length;
	buf = xmalloc(cap + 1);
	got = pread(fd, buf, cap, (off_t)offset);
	if (got < 0) {
		bt_http_error(req, 500, "unable to read '%s': %s", want, strerror(errno));
		goto out;
	}
	sanitize_utf8(buf, (size_t)got);
	bt_http_reply_json(req, 200, json_pack("{s:s%, s:I}", "data", buf, (size_t)got,
	    "offset", (json_int_t)offset));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(cause);
	free(real);
}

static void mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	out[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' :
	    S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : '-';
	for (i = 0; i < 9; i++)
		out[i + 1] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	out[10] = '\0';
}

static json_t *entry_json(const char *path, const struct stat *st)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char pbuf[1024], gbuf[1024], mode[11], uid[32], gid[32];

	mode_string(st->st_mode, mode);
	snprintf(uid, sizeof uid, "%u", (unsigned)st->st_uid);
	snprintf(gid, sizeof gid, "%u", (unsigned)st->st_gid);
	getpwuid_r(st->st_uid, &pw, pbuf, sizeof pbuf, &pwp);
	getgrgid_r(st->st_gid, &gr, gbuf, sizeof gbuf, &grp);
	return json_pack("{s:s, s:I, s:s, s:f, s:I, s:s, s:s}", "path", path,
	    "size", (json_int_t)st->st_size, "mode", mode, "mtime", (double)st->st_mtime,
	    "nlink", (json_int_t)st->st_nlink, "uid", pwp != NULL ? pwp->pw_name : uid,
	    "gid", grp != NULL ? grp->gr_name : gid);
}

static void browse_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct agent *a = arg;
	const char *want = bt_http_query(query, "path");
	char *real = NULL, *cause = NULL;
	json_t *out;
	struct stat st;
	struct dirent *de;
	DIR *d;
	int code;

	if (want == NULL || *want == '\0') {
		bt_http_error(req, 400, "expecting 'path=value' in query");
		return;
	}
	if ((real = resolve(a, want, &code, &cause)) == NULL) {
		bt_http_error(req, code, "%s", cause);
		goto out;
	}
	if ((d = opendir(real)) == NULL) {
		if (errno == ENOTDIR && lstat(real, &st) == 0)
			bt_http_reply_json(req, 200, json_pack("[o]", entry_json(want, &st)));
		else
			bt_http_error(req, 404, "unable to browse '%s': %s", want, strerror(errno));
		goto out;
	}
	out = json_array();
	while ((de = readdir(d)) != NULL) {
		char *full;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		full = xasprintf("%s%s%s", want, bt_str_has_suffix(want, "/") ? "" : "/", de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			json_array_append_new(out, entry_json(full, &st));
		free(full);
	}
	closedir(d);
	bt_http_reply_json(req, 200, out);
out:
	free(cause);
	free(real);
}

void agent_files_routes(struct agent *a)
{
	bt_http_server_route(a->http, "/files/read", BT_ROUTE_EXACT, read_cb, a);
	bt_http_server_route(a->http, "/files/read.json", BT_ROUTE_EXACT, read_cb, a);
	bt_http_server_route(a->http, "/files/browse", BT_ROUTE_EXACT, browse_cb, a);
	bt_http_server_route(a->http, "/files/browse.json", BT_ROUTE_EXACT, browse_cb, a);
}
