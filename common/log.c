/*
 * log.c -- leveled logging to stderr.
 *
 * One line per message: "2026-11-25T10:00:00.123Z butte-master INFO text".
 * libevent's warnings and errors come through the same path.
 */
#include "log.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int bt_log_level = BT_LOG_INFO;
static const char *log_prog = "butte";
static const char *level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

static void vlog(int level, const char *fmt, va_list ap)
{
	struct timeval tv;
	struct tm tm;
	char when[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03dZ %s %s ", when, (int)(tv.tv_usec / 1000), log_prog,
	    level_names[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void bt_log_write(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void bt_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(BT_LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

static void libevent_log_cb(int severity, const char *msg)
{
	int level = severity == EVENT_LOG_DEBUG ? BT_LOG_DEBUG :
	    severity == EVENT_LOG_MSG ? BT_LOG_INFO :
	    severity == EVENT_LOG_WARN ? BT_LOG_WARN : BT_LOG_ERROR;
	bt_log(level, "libevent: %s", msg);
}

int bt_log_init(const char *prog, const char *level)
{
	int i;

	log_prog = prog;
	setvbuf(stderr, NULL, _IOLBF, 0);
	event_set_log_callback(libevent_log_cb);
	if (level == NULL)
		return 0;
	for (i = 0; i < 4; i++) {
		if (strcasecmp(level, level_names[i]) == 0 ||
		    (i == BT_LOG_WARN && strcasecmp(level, "warning") == 0)) {
			bt_log_level = i;
			return 0;
		}
	}
	return -1;
}
