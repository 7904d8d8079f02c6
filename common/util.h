/*
 * util.h -- time, small string helpers and file writes used everywhere.
 */
#ifndef BT_UTIL_H
#define BT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* wall clock in seconds since the epoch, and a monotonic clock in seconds */
double bt_now(void);
double bt_monotonic(void);
/* ISO-8601 UTC with milliseconds and 'Z', e.g. 2014-03-01T23:42:20.938Z */
void bt_time_iso8601(double t, char out[32]);
/* parse the format above (or without milliseconds); -1 when malformed */
int bt_time_parse_iso8601(const char *s, double *t);
/* a struct timeval for event_add() from seconds */
struct timeval bt_timeval(double seconds);

/*
 * x to the nearest integer, halves away from zero, as llround() does, for
 * |x| < 2^52; here so that a program needing no other maths links no libm
 */
int64_t bt_round(double x);

bool bt_str_has_prefix(const char *s, const char *prefix);
bool bt_str_has_suffix(const char *s, const char *suffix);

/* fsync the directory that holds path, so that a file just made there survives a crash; -1 with errno */
int bt_fsync_dir_of(const char *path);
/* write a whole file atomically: temporary file, fsync, rename, fsync dir */
int bt_write_file_atomic(const char *path, const void *data, size_t len, char **cause);
/*
 * The same without the fsyncs: readers see the old or the new content,
 * never a mix, and the file survives the writer's death, but not always
 * the machine's (for records that mean nothing after a reboot).
 */
int bt_write_file_replace(const char *path, const void *data, size_t len, char **cause);
/* append data to a file, creating it when missing (no fsync); -1 with cause */
int bt_append_file(const char *path, const void *data, size_t len, char **cause);
/* read a whole file (NUL-terminated); caller frees; -1 with cause */
int bt_read_file(const char *path, char **data, size_t *len, char **cause);
/* mkdir -p */
int bt_mkdirs(const char *path, int mode, char **cause);

/*
 * Allow at least `want` open descriptors: the soft limit goes up to the
 * hard one, and a privileged process raises the hard one too (up to
 * fs.nr_open). Returns the soft limit now in force.
 */
unsigned long bt_raise_nofile(unsigned long want);

#endif
