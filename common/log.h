/*
 * log.h -- leveled logging to stderr.
 *
 * log_info("agent '%s' subscribed", id) writes one line with a timestamp,
 * the program name and the level. The macros test the level before they
 * evaluate their arguments. libevent's own messages are routed here.
 */
#ifndef BT_LOG_H
#define BT_LOG_H

enum bt_log_level { BT_LOG_DEBUG = 0, BT_LOG_INFO, BT_LOG_WARN, BT_LOG_ERROR };

extern int bt_log_level;

/* level: "debug", "info", "warn" or "error"; returns -1 for an unknown name */
int bt_log_init(const char *prog, const char *level);
void bt_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bt_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define bt_log(level, ...) \
	do { if ((level) >= bt_log_level) bt_log_write((level), __VA_ARGS__); } while (0)
#define log_debug(...) bt_log(BT_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  bt_log(BT_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  bt_log(BT_LOG_WARN, __VA_ARGS__)
#define log_error(...) bt_log(BT_LOG_ERROR, __VA_ARGS__)

#endif
