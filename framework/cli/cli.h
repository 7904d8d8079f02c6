/*
 * cli.h -- the `butte` command line tool.
 *
 * butte is a plain, short-lived C program: it parses the global flags,
 * picks a subcommand and talks to the cluster only through the public HTTP
 * APIs (the master's /master/state and /health, relay's Marathon /v2 API)
 * with blocking libcurl requests. `butte up` and `butte down` also start
 * and stop the daemons of a local cluster whose state lives in one
 * directory (--dir): work dirs, logs, pid files and cluster.json.
 */
#ifndef BT_CLI_H
#define BT_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "flags.h"

/* everything a subcommand needs from the global flags */
struct cli {
	char *master;                   /* "http://127.0.0.1:5050", no trailing slash */
	char *relay;                    /* "http://127.0.0.1:8080" */
	char *dir;                      /* state directory of a local cluster */
	const char *prog;               /* argv[0] of butte, for messages */
};

/* one finished HTTP exchange */
struct cli_response {
	long status;                    /* HTTP status; 0 when nothing answered */
	char *body;                     /* NUL-terminated, possibly empty; caller frees via cli_response_release */
	size_t len;
	char *deployment_id;            /* Marathon-Deployment-Id header, or NULL */
	bool refused;                   /* nothing is listening (connection refused) */
};

/* subcommand entry point: argv[0] is the subcommand's name; returns the exit code */
typedef int (*cli_command_fn)(struct cli *cli, int argc, char **argv);

/* main.c -- flags, dispatch, messages */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* parse a subcommand's flags; positional arguments start at *rest; -1 after printing the error */
int cli_parse_flags(const struct bt_flag *table, int argc, char **argv, const char *usage, int *rest);

/* http.c -- blocking requests against the public APIs */
/*
 * Send one request to base + path. body may be NULL. Returns 0 when an
 * HTTP answer arrived (any status), -1 with *cause otherwise; r->refused
 * tells a connection refusal apart from other failures.
 */
int cli_http(const char *method, const char *base, const char *path, const char *body,
    double timeout, struct cli_response *r, char **cause);
void cli_response_release(struct cli_response *r);
/*
 * Request and decode a JSON answer. On success (2xx) returns 0 and *out
 * (caller decrefs). Otherwise prints what went wrong -- nothing listening,
 * the server's {"message","details"}, or a transport error -- and returns -1.
 */
int cli_json(const char *method, const char *base, const char *path, const char *body,
    json_t **out, struct cli_response *keep);
/* print the "nothing is listening at URL" message */
void cli_not_listening(const char *base);
/* print an error answer: the status, Marathon's message and its details */
void cli_print_http_error(const char *what, const struct cli_response *r);
/* "/v2/apps" + "/" + id without doubled slashes; caller frees */
char *cli_app_path(const char *id, const char *suffix);

/* cluster.c -- up and down of a local cluster */
int cli_up(struct cli *cli, int argc, char **argv);
int cli_down(struct cli *cli, int argc, char **argv);
/* read D/cluster.json; NULL when absent or unreadable */
json_t *cli_cluster_read(const char *dir);

/* daemons.c -- starting, watching and stopping the daemon processes */
struct cli_daemon {
	char name[32];                  /* "master", "relay", "agent-0" */
	char binary[64];                /* "butte-master" */
	pid_t pid;
};
/* path of the directory holding the butte executable; caller frees */
char *cli_exe_dir(void);
/* fork, setsid, redirect stdout/stderr to log, exec; -1 with *cause */
int cli_spawn(const char *path, char *const argv[], const char *log_path, pid_t *pid,
    char **cause);
/* the process exists and is not a zombie */
bool cli_pid_alive(pid_t pid);
/* the process runs an executable whose file name starts with "butte-" */
bool cli_pid_is_butte(pid_t pid);
/* read a pid file; 0 when absent or malformed */
pid_t cli_pid_read(const char *path);
int cli_pid_write(const char *path, pid_t pid, char **cause);
/* wait until every listed pid is gone or timeout seconds passed; returns how many remain */
int cli_wait_gone(const pid_t *pids, int n, double timeout);
/* the last lines of a file, for "this daemon died at start" */
void cli_print_log_tail(const char *path, int lines);
/* SIGKILL every process (and its group) whose cwd lies under root; returns how many */
int cli_kill_under(const char *root);
/* something accepts or holds ip:port (a bind attempt fails with EADDRINUSE) */
bool cli_port_busy(const char *ip, int port);

/* table.c -- aligned text tables; every row passes exactly ncols strings (NULL prints "-") */
struct cli_table;
struct cli_table *cli_table_new(size_t ncols, ...);     /* the header row */
void cli_table_add(struct cli_table *t, ...);
void cli_table_print(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

/* status.c -- status and agent list over the master's and relay's APIs */
int cli_status(struct cli *cli, int argc, char **argv);
int cli_agent(struct cli *cli, int argc, char **argv);

/* apps.c -- app and task commands over relay's Marathon API */
int cli_app(struct cli *cli, int argc, char **argv);
int cli_task(struct cli *cli, int argc, char **argv);

#endif
