/*
 * supervise.h -- the contract between butte-agent and butte-supervise.
 *
 * butte-supervise runs in one of two roles. As the launcher (argv[1]
 * "--launcher"), one per agent, started by the agent with posix_spawn,
 * it reads requests from a SOCK_SEQPACKET socket on SUPERVISE_LAUNCH_FD
 * and starts a supervisor for each: a request is one message holding a
 * supervisor's argv (below) as NUL-terminated strings back to back, at
 * most SUPERVISE_REQUEST_MAX bytes, with the write end of the task's
 * launch pipe passed as SCM_RIGHTS. Each supervisor is made a child of
 * the agent (clone with CLONE_PARENT, sharing the launcher's memory;
 * where that is refused, as under qemu-user, a grandchild the agent
 * adopts as its subreaper), so the agent reaps supervisors as its own.
 * The launcher loads the filter on itself, once, for all of its
 * supervisors and their tasks. The launcher exits at EOF. As a
 * supervisor started on its own (when the launcher cannot be used) it
 * gets that argv directly, with the launch pipe on SUPERVISE_PIPE_FD.
 * Either way it runs with stdin, stdout and stderr on /dev/null, in the
 * agent's environment, and when tasks get a syscall filter, the filter
 * is a classic BPF program (an array of struct sock_filter) readable
 * from SUPERVISE_FILTER_FD of the process the agent spawned.
 *
 * A supervisor's argv:
 *   argv[1]  the sandbox: the task's working directory, holding its
 *            stdout and stderr files
 *   argv[2]  the run's meta dir, where the exit status is written
 *   argv[3]  options, one letter each: 'p' look the file up in the task's
 *            PATH, 'f' load the filter, 'n' set no_new_privs first
 *   argv[4]  the file to execute
 *   argv[5]  N, the number of the task's argv strings that follow
 *   argv[6 .. 6+N)     the task's argv
 *   argv[6+N ..]       the task's environment, "NAME=value" each
 *
 * The launch pipe carries struct supervise_rec records (writes of this
 * size are atomic): first the supervisor's own pid, then the task's pid
 * once forked, then a failed set-up step or exec with its errno. It is
 * close-on-exec in the task, so EOF after the task's pid without an error
 * record means the task's exec succeeded, and EOF before the supervisor's
 * pid that no supervisor started.
 */
#ifndef AGENT_SUPERVISE_H
#define AGENT_SUPERVISE_H

#include <stdint.h>

#define SUPERVISE_PROGRAM       "butte-supervise"
#define SUPERVISE_LAUNCHER_ARG  "--launcher"
#define SUPERVISE_LAUNCH_FD     3       /* the launcher's request socket */
#define SUPERVISE_PIPE_FD       3       /* a supervisor's launch pipe */
#define SUPERVISE_FILTER_FD     4
#define SUPERVISE_REQUEST_MAX   (192 * 1024)
#define SUPERVISE_ARGV_FIXED    6       /* argv entries before the task's argv */

struct supervise_rec {
	int32_t kind;
	int32_t stage;
	int32_t value;
};

enum {
	SUPERVISE_REC_PID = 1,          /* value: the task's pid */
	SUPERVISE_REC_EXEC = 2,         /* value: exec's errno */
	SUPERVISE_REC_SETUP = 3,        /* stage: the step that failed; value: its errno */
	SUPERVISE_REC_SUPERVISOR = 4,   /* value: the supervisor's pid */
};

/* the set-up step a SUPERVISE_REC_SETUP record names */
enum {
	SUPERVISE_STAGE_STDIN = 1, SUPERVISE_STAGE_STDOUT, SUPERVISE_STAGE_STDERR,
	SUPERVISE_STAGE_CHDIR, SUPERVISE_STAGE_FORK, SUPERVISE_STAGE_ARGS,
	SUPERVISE_STAGE_MAX = SUPERVISE_STAGE_ARGS
};

#endif
