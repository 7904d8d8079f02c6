/*
 * util.c -- time, small string helpers and atomic file writes.
 */
#include "util.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

double bt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double bt_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void bt_time_iso8601(double t, char out[32])
{
	time_t secs = (time_t)t;
	int ms = (int)((t - (double)secs) * 1000.0);
	struct tm tm;
	char base[24];

	if (ms < 0)
		ms = 0;
	if (ms > 999)
		ms = 999;
	gmtime_r(&secs, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, ms);
}

int bt_time_parse_iso8601(const char *s, double *t)
{
	struct tm tm;
	const char *rest;
	double frac = 0;

	memset(&tm, 0, sizeof tm);
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return -1;
	if (*rest == '.') {
		char *end;
		frac = strtod(rest, &end);
		rest = end;
	}
	if (strcmp(rest, "Z") != 0)
		return -1;
	*t = (double)timegm(&tm) + frac;
	return 0;
}

struct timeval bt_timeval(double seconds)
{
	struct timeval tv;
	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	return tv;
}

int64_t bt_round(double x)
{
	return (int64_t)(x >= 0 ? x + 0.5 : x - 0.5);
}

bool bt_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool bt_str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int bt_fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, err;

	free(copy);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	err = errno;
	close(fd);
	errno = err;
	return rc;
}

/* all of data to fd; -1 with cause naming path */
static int write_all(int fd, const char *path, const void *data, size_t len, char **cause)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*cause = xasprintf("unable to write '%s': %s", path, strerror(errno));
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, bool durable,
    char **cause)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	int fd = -1, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*cause = xasprintf("unable to create '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, tmp, data, len, cause) != 0)
		goto out;
	if (durable && fsync(fd) != 0) {
		*cause = xasprintf("unable to sync '%s': %s", tmp, strerror(errno));
		goto out;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		*cause = xasprintf("unable to rename '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (durable)
		bt_fsync_dir_of(path);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

int bt_write_file_atomic(const char *path, const void *data, size_t len, char **cause)
{
	return write_file(path, data, len, true, cause);
}

int bt_write_file_replace(const char *path, const void *data, size_t len, char **cause)
{
	return write_file(path, data, len, false, cause);
}

int bt_append_file(const char *path, const void *data, size_t len, char **cause)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0) {
		*cause = xasprintf("unable to open '%s': %s", path, strerror(errno));
		return -1;
	}
	rc = write_all(fd, path, data, len, cause);
	close(fd);
	return rc;
}

int bt_read_file(const char *path, char **data, size_t *len, char **cause)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL) {
		*cause = xasprintf("unable to open '%s': %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		*cause = xasprintf("unable to read '%s': %s", path, strerror(errno));
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	if (buf == NULL)
		buf = xmalloc(1);
	buf[n] = '\0';
	*data = buf;
	if (len)
		*len = n;
	return 0;
}

/* mkdir -p from the leaf up: an existing parent costs one call */
int bt_mkdirs(const char *path, int mode, char **cause)
{
	char *parent, *slash;
	int rc;

	if (mkdir(path, (mode_t)mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || (slash = strrchr(path, '/')) == NULL || slash == path) {
		*cause = xasprintf("unable to create '%s': %s", path, strerror(errno));
		return -1;
	}
	parent = xstrndup(path, (size_t)(slash - path));
	rc = bt_mkdirs(parent, mode, cause);
	free(parent);
	if (rc == 0 && mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
		*cause = xasprintf("unable to create '%s': %s", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static unsigned long nr_open(void)
{
	unsigned long n = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

unsigned long bt_raise_nofile(unsigned long want)
{
	struct rlimit rl;
	unsigned long ceiling;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		struct rlimit up = rl;

		ceiling = nr_open();
		up.rlim_max = ceiling != 0 && ceiling < want ? ceiling : want;
		up.rlim_cur = up.rlim_max;
		if (up.rlim_max > rl.rlim_max && setrlimit(RLIMIT_NOFILE, &up) == 0)
			return up.rlim_cur;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : rl.rlim_cur;
}
