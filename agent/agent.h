/*
 * agent.h -- butte-agent: the state of one agent and the prototypes of its parts.
 *
 * The agent subscribes to the master (master_link.c), fetches the URIs of
 * the tasks the master launches into their sandboxes (fetch.c), runs them
 * as supervised process trees in sandbox directories
 * (containerizer.c, with the environment from env.c) or, for DOCKER tasks,
 * as containers through the Docker Engine API (docker.c, docker_spec.c,
 * docker_tasks.c; docker.h), follows them until
 * they end or are killed (tasks.c), runs their health checks (health.c),
 * reports their states with reliable,
 * acknowledged status updates (updates.c), checkpoints everything to its
 * work dir so that a restart loses nothing (checkpoint.c), detects the
 * resources the operator did not name (detect.c) and serves /state, /health
 * and the sandbox files (http.c, files.c). main.c holds the flag table, the
 * loop and the signals.
 */
#ifndef AGENT_H
#define AGENT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "attributes.h"
#include "butte.pb-c.h"
#include "flags.h"
#include "http_pipe.h"
#include "map.h"
#include "mesos.pb-c.h"
#include "resources.h"
#include "mesos_util.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                      \
	for ((var) = TAILQ_FIRST(head);                                 \
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);      \
	    (var) = (tvar))
#endif

#define AGENT_VERSION           "1.11.0"
#define AGENT_DEFAULT_PORTS     "[31000-32000]"
#define AGENT_COMPLETED_MAX     100     /* finished tasks kept for /state */

struct agent_link;
struct agent_health;
struct agent_docker;
struct agent_docker_task;
struct agent_fetch;

/* what a task's checkpoint journal holds (checkpoint.c) */
struct agent_ckpt {
	int lines;                      /* lines in the file; 0: no file yet */
	pid_t supervisor_pid;
	unsigned long long supervisor_start;
	pid_t task_pid;
	int state;
	bool killing, forget, ended;
	double kill_grace;
	size_t acked, nstatuses;
};

/* One task, from launch until its terminal update is acknowledged. */
struct agent_task {
	TAILQ_ENTRY(agent_task) entry;
	struct agent *agent;

	char *container_id;             /* the run's uuid; names the run dirs */
	char *framework_id;
	char *task_id;
	Mesos__V1__TaskInfo *info;      /* unpacked; owned (see agent_task_info()) */
	Mesos__V1__FrameworkInfo *framework;    /* unpacked; owned (see agent_task_framework()) */
	void *packed_info, *packed_framework;   /* simulated: the two as protobuf, till needed */
	size_t packed_info_len, packed_framework_len;
	char *sandbox;                  /* .../executors/<task>/runs/<cid> */
	char *run_dir;                  /* <work_dir>/meta/runs/<cid>: checkpoint, exit status */

	pid_t supervisor_pid;           /* 0 until forked */
	unsigned long long supervisor_start;    /* /proc start time, against pid reuse */
	pid_t task_pid;                 /* leader of the task's process group */
	bool child;                     /* the supervisor is our child (SIGCHLD) */
	bool ended;                     /* the supervisor is gone; the final state is known */
	double launched;                /* wall clock */

	int state;                      /* latest TaskState */
	Mesos__V1__TaskStatus **statuses;       /* every update, in order; owned */
	size_t nstatuses;
	size_t acked;                   /* statuses[0..acked) are acknowledged */
	struct event *retry_ev;
	double retry_interval;

	bool killing;
	bool forget;                    /* framework shut down: drop once ended, acked or not */
	double kill_grace;              /* seconds between SIGTERM and SIGKILL */
	struct event *kill_ev;

	int exec_fd;                    /* launch pipe: task pid, exec errors; -1 when closed */
	struct event *exec_ev;
	int exec_errno;                 /* the task could not start: errno */
	int setup_stage;                /* 0 when exec failed, else the sandbox step that did */
	int pidfd;                      /* recovered supervisors: pidfd, or -1 */
	struct event *watch_ev;         /* pidfd readable, or a 1 s polling timer */
	struct agent_health *health;    /* health checks (health.c), or NULL */
	struct agent_docker_task *docker;       /* a DOCKER task's container (docker_tasks.c), or NULL */
	struct agent_fetch *fetch;      /* its URIs being fetched (fetch.c), or NULL */
	struct agent_ckpt ckpt;
};

TAILQ_HEAD(agent_tasks, agent_task);

struct agent {
	struct event_base *base;
	struct bt_http_server *http;
	struct bt_http_client *client;
	struct bt_http_pipe *calls;     /* AgentCalls to the master, pipelined (shared when simulated) */
	struct agent_link *link;
	struct agent_docker *docker;    /* the Docker engine (docker.c) */
	struct bt_http_client *fetch_client;    /* downloads of task URIs (fetch.c), or NULL */
	const struct bt_flag *flag_table;

	/* flags */
	char *master;
	char *ip;
	int port;
	char *hostname;
	char *work_dir;
	char *resources_flag;
	char *attributes_flag;
	char *log_level;
	double backoff_factor;
	double kill_grace;
	double executor_registration_timeout;   /* bound on fetching a task's URIs */
	char *containerizers;
	char *docker_socket;
	char *isolation;
	char *launcher_dir;             /* where butte-supervise is; default: the agent's dir */
	int simulate;                   /* --simulate=N: N simulated agents (simulate.c) */
	bool simulated;                 /* a simulated agent: no processes, no checkpoints */
	bool simulate_starting;         /* --simulate_starting: TASK_STARTING before TASK_RUNNING */

	/* derived */
	char *master_url;               /* http://host:port */
	char *endpoint;                 /* ip:port others use to reach this agent */
	char *advertise_ip;             /* the IPv4 address tasks are reached at, or NULL */
	struct bt_resources resources;  /* total, after detection */
	struct bt_attributes attributes;
	char *agent_id;                 /* NULL until the first SUBSCRIBED */
	double start_time;

	struct agent_tasks tasks;
	struct bt_map task_index;       /* task id (borrowed) -> task in `tasks` (tasks.c) */
	size_t task_id_clashes;         /* tasks added under an id another task had */
	struct agent_tasks graveyard;   /* removed tasks, freed from graveyard_ev */
	struct event *graveyard_ev;
	json_t *completed;              /* forgotten tasks for /state, newest last */
	int filter_fd;                  /* memfd: the tasks' seccomp filter as BPF, or -1 */
	char *supervisor;               /* <launcher_dir>/butte-supervise */
	int launcher_fd;                /* requests to the task launcher, or -1 */
	pid_t launcher_pid;             /* 0 when none runs */
	bool launcher_failed;           /* it could not be started: spawn supervisors */
	char *boot_id;                  /* this boot's, for task checkpoints */
	int lock_fd;                    /* flock on <work_dir>/meta/agent.lock, or -1 */

	struct event *sigchld_ev, *sigterm_ev, *sigint_ev, *sigusr1_ev;
	struct event *drain_ev;         /* SIGUSR1: waits for tasks to end */
	double drain_deadline;
	double drain_ended;             /* when the last task ended, or 0 */
	bool draining;
};

/* main.c */
void agent_exit_loop(struct agent *a);

/* detect.c -- resources and attributes the operator did not give */
int agent_detect_resources(struct bt_resources *r, const char *work_dir, char **cause);
const char *agent_detect_arch(void);
const char *agent_arch_from_engine(const char *arch, const char *variant);
char *agent_image_arch_problem(const struct agent *a, const char *image, const char *earch,
    const char *variant);
int agent_setup_resources(struct agent *a, char **cause);

/* master_link.c -- the subscription and calls to the master */
/* the pipe for a's calls to the master's agent API, over `connections`; NULL with *cause */
struct bt_http_pipe *agent_calls_new(struct agent *a, int connections, char **cause);
struct agent_link *agent_link_new(struct agent *a);
void agent_link_free(struct agent_link *l);
void agent_link_start(struct agent_link *l);
bool agent_link_subscribed(const struct agent_link *l);
const char *agent_link_master_hostname(const struct agent_link *l);
/* send an UPDATE call for this status (no retry here; updates.c retries) */
void agent_link_send_update(struct agent_link *l, const char *framework_id,
    Mesos__V1__TaskStatus *status);

/* updates.c -- the status update manager */
/* append a new update (fresh uuid unless no_uuid) and send it when it is first in line */
void agent_update_new(struct agent_task *t, Mesos__V1__TaskState state, const char *message,
    int reason);
void agent_update_ack(struct agent *a, const char *framework_id, const char *task_id,
    const uint8_t *uuid, size_t uuid_len);
/* resend the first unacknowledged update of every task (after SUBSCRIBED) */
void agent_updates_resend(struct agent *a);
/* send one update without uuid that is never retried (TASK_LOST for unknown kills) */
void agent_update_send_once(struct agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__TaskState state, const char *message, int reason);
void agent_updates_start_retry(struct agent_task *t);
bool agent_task_pending(const struct agent_task *t);
/* append a TASK_RUNNING update with TaskStatus.healthy (health.c) */
void agent_update_health(struct agent_task *t, bool healthy, const char *message);

/* containerizer.c -- the process containerizer */
/* find butte-supervise and compile the seccomp filter; -1 with cause */
int agent_containerizer_init(struct agent *a, char **cause);
void agent_containerizer_release(struct agent *a);
void agent_launch(struct agent *a, Butte__AgentEvent__Launch *launch);
/* t's URIs are in its sandbox (fetch.c): start it as a process or a container */
void agent_launch_fetched(struct agent_task *t);
/*
 * A task in TASK_STAGING with its ids, copies of info and fw, and the names
 * of its dirs. A simulated agent's task keeps the copies packed (one block
 * each instead of a hundred) until agent_task_info() or
 * agent_task_framework() unpacks them: it never reads them unless it
 * subscribes again.
 */
struct agent_task *agent_task_new(struct agent *a, Mesos__V1__FrameworkInfo *fw,
    const Mesos__V1__TaskInfo *info);
Mesos__V1__TaskInfo *agent_task_info(struct agent_task *t);
Mesos__V1__FrameworkInfo *agent_task_framework(struct agent_task *t);
void agent_kill(struct agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__KillPolicy *policy);
void agent_kill_task(struct agent_task *t, double grace);
void agent_shutdown_framework(struct agent *a, const char *framework_id);
void agent_reap_children(struct agent *a);
void agent_recover_task(struct agent_task *t);
struct agent_task *agent_task_find(struct agent *a, const char *framework_id, const char *task_id);
/* put t in a->tasks and the id index; unlink takes it out of both */
void agent_task_add(struct agent *a, struct agent_task *t);
void agent_task_unlink(struct agent *a, struct agent_task *t);
/* drop a task whose terminal update was acknowledged and whose process ended */
void agent_task_maybe_remove(struct agent_task *t);
void agent_task_free(struct agent_task *t);
size_t agent_tasks_alive(const struct agent *a);
/* "state" and start time of a process from /proc; -1 when it does not exist */
int agent_proc_start_time(pid_t pid, unsigned long long *start);
void agent_exec_pipe_cb(evutil_socket_t fd, short what, void *arg);
/* a reaped child that was the task launcher: true when it was */
bool agent_launcher_reaped(struct agent *a, pid_t pid);
int agent_exec_pipe_read(struct agent_task *t);
char *agent_launch_error(const struct agent_task *t);

/* health.c -- health checks next to the task */
/* start the checks when the task runs, stop them once it is killed or ends */
void agent_health_sync(struct agent_task *t);
void agent_health_free(struct agent_task *t);
/* a reaped child that was a COMMAND check: true when it was one */
bool agent_health_reaped(struct agent *a, pid_t pid, int status);

/* docker.c, docker_tasks.c -- the Docker containerizer (more in docker.h) */
void agent_docker_init(struct agent *a);
void agent_docker_release(struct agent *a);
bool agent_docker_wanted(const Mesos__V1__TaskInfo *info);
/* t is in a->tasks with its sandbox made; runs it in a container or fails it */
void agent_docker_launch(struct agent_task *t);
/* t->killing is set: stop the container with t->kill_grace */
void agent_docker_kill(struct agent_task *t);
void agent_docker_recover(struct agent_task *t);
void agent_docker_task_free(struct agent_task *t);
/* a Docker task's container address, or NULL (the agent's address applies) */
const char *agent_docker_task_ip(const struct agent_task *t);

/* fetch.c -- CommandInfo.uris into the sandbox before the task starts */
/* fetch t's URIs, then agent_launch_fetched(t); a failure ends t with TASK_FAILED */
void agent_fetch_start(struct agent_task *t);
/* t->fetch is set: cancel the fetch; t ends with TASK_KILLED */
void agent_fetch_kill(struct agent_task *t);
void agent_fetch_free(struct agent_task *t);
/* a reaped child that was a fetcher's cp, tar, gzip or unzip: true when it was one */
bool agent_fetch_reaped(struct agent *a, pid_t pid, int status);
void agent_fetch_release(struct agent *a);

/* env.c -- the environment and argv a task is started with */
char **agent_task_env(struct agent_task *t);
void agent_strv_free(char **v);

/* checkpoint.c -- the work dir's meta state */
int agent_checkpoint_init(struct agent *a, char **cause);
int agent_checkpoint_save_id(struct agent *a, char **cause);
int agent_checkpoint_task(struct agent_task *t);
void agent_checkpoint_remove(struct agent_task *t);
/* read every checkpointed task into a->tasks (not yet recovered) */
int agent_checkpoint_load(struct agent *a, char **cause);

/* http.c -- /state, /health, /flags, /version, /monitor/statistics */
int agent_http_init(struct agent *a, char **cause);
json_t *agent_task_json(const struct agent_task *t);
json_t *agent_executor_json(const struct agent_task *t);
json_t *agent_framework_json(const struct agent_task *t);

/* simulate.c -- --simulate=N: N agents in one process that report tasks without running them */
int agent_simulate(struct agent *proto);
void agent_sim_launch(struct agent *a, Butte__AgentEvent__Launch *launch);
void agent_sim_kill(struct agent *a, const char *framework_id, const char *task_id);
void agent_sim_shutdown_framework(struct agent *a, const char *framework_id);

/* files.c -- /files/read and /files/browse */
void agent_files_routes(struct agent *a);

#endif
