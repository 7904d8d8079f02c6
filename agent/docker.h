/*
 * docker.h -- the Docker containerizer of butte-agent (internal to agent/docker*.c).
 *
 * docker.c is the Engine API client: the engine check at start (/_ping,
 * /version, API version negotiation) and its retries, one helper for every
 * request over the Unix socket, the removal of containers and the sweep of
 * containers this agent no longer knows. docker_spec.c turns a TaskInfo into
 * the body of POST /containers/create. docker_tasks.c runs a task in a
 * container: image, create, start, logs, exit, kill, recovery.
 */
#ifndef AGENT_DOCKER_H
#define AGENT_DOCKER_H

#include "agent.h"
#include "http_client.h"

#define DOCKER_API_MAX_MINOR    41      /* newest Engine API butte speaks: v1.41 */
#define DOCKER_API_MIN_MINOR    25      /* oldest one it accepts */
#define DOCKER_SANDBOX          "/mnt/mesos/sandbox"
#define DOCKER_NAME_PREFIX      "mesos-"
#define DOCKER_MIN_MEMORY       (32LL * 1024 * 1024)
#define DOCKER_LABEL_TASK       "butte.task_id"
#define DOCKER_LABEL_FRAMEWORK  "butte.framework_id"
#define DOCKER_LABEL_AGENT      "butte.agent_id"
#define DOCKER_LABEL_WORK_DIR   "butte.work_dir"
#define DOCKER_LABEL_CONTAINER  "butte.container_id"

enum docker_engine_state {
	DOCKER_ENGINE_CHECKING,         /* first check under way */
	DOCKER_ENGINE_READY,
	DOCKER_ENGINE_DOWN,             /* last check failed; retried on a timer */
};

/* the engine, one per agent */
struct agent_docker {
	struct agent *agent;
	struct bt_http_client *client;
	enum docker_engine_state state;
	bool enabled;                   /* "docker" is in --containerizers */
	bool swept;                     /* unknown containers were cleaned up once */
	char *error;                    /* why the engine is down, or NULL */
	char *version;                  /* the engine's version, for the log */
	char prefix[16];                /* "/v1.41" */
	struct docker_req *check;
	TAILQ_HEAD(, docker_req) reqs;  /* every request under way */
	struct event *retry_ev;
	double retry_interval;
};

enum docker_step {
	DOCKER_STEP_WAIT_ENGINE,        /* waiting for the engine check */
	DOCKER_STEP_IMAGE,              /* GET /images/{name}/json */
	DOCKER_STEP_PULL,
	DOCKER_STEP_CREATE,
	DOCKER_STEP_START,
	DOCKER_STEP_INSPECT,
	DOCKER_STEP_RUNNING,
	DOCKER_STEP_EXITED,             /* waiting for the logs before the terminal update */
	DOCKER_STEP_DONE,
};

/* a task's container */
struct agent_docker_task {
	struct agent_task *task;
	enum docker_step step;
	bool recovering;                /* checkpointed task, not yet re-attached */
	bool created;
	char *name;                     /* mesos-<container id> */
	char *ip;                       /* the container's address, or NULL */
	struct docker_req *call;        /* the step's request */
	struct docker_req *wait;        /* POST /containers/{name}/wait */
	struct docker_req *logs;        /* GET /containers/{name}/logs?follow=1 */
	struct docker_req *stop;        /* POST /containers/{name}/stop */
	char *pull_error;               /* an error line of the pull stream */
	char *line;                     /* partial line of the pull stream */
	size_t line_len;
	unsigned char hdr[8];           /* partial log frame header */
	size_t hdr_len;
	size_t frame_left;              /* bytes of the current log frame still to come */
	int frame_fd;                   /* where the current frame goes */
	int out_fd, err_fd;             /* the sandbox's stdout and stderr, or -1 */
	double logs_since;              /* recovered: follow logs from this time */
	int exit_code;
	bool oom;
	char *exit_error;
	struct event *timer_ev;         /* log drain deadline, wait retry */
	int wait_failures;
};

/* docker.c -- the engine */
/* body bytes of a 2xx answer as they arrive; -1 aborts the request */
typedef int (*docker_data_cb)(const void *data, size_t len, void *arg);
/*
 * The request has ended: status (0: no answer, error says why), the body
 * parsed as JSON when it is JSON (else NULL) and the raw body (NULL when
 * it was streamed). The request is freed after it returns.
 */
typedef void (*docker_done_cb)(int status, json_t *body, const char *raw, const char *error,
    void *arg);
struct docker_req;
/*
 * One Engine API request to prefix+path; body (not stolen) is sent as JSON
 * when not NULL. With on_data set a 2xx body is streamed to it. Never NULL.
 */
struct docker_req *docker_request(struct agent_docker *d, const char *method, const char *path,
    const json_t *body, double timeout, docker_data_cb on_data, docker_done_cb on_done,
    void *arg);
/* free arg with free_arg when the request ends or is cancelled */
void docker_req_own_arg(struct docker_req *r, void (*free_arg)(void *));
/* stop the request; no callback runs afterwards; NULL is fine */
void docker_cancel(struct docker_req *r);
/* the message of a failed request: Docker's {"message"} or the transport error; caller frees */
char *docker_error_message(struct agent_docker *d, int status, json_t *body, const char *raw,
    const char *error);
/* percent-escape s, leaving unreserved characters and those in keep; caller frees */
char *docker_escape(const char *s, const char *keep);
/* stop (grace seconds; < 0: no stop) and remove a container; fire and forget */
void docker_remove_container(struct agent_docker *d, const char *name, double grace);
/* split "repo:tag" / "repo@digest" for a pull; caller frees both */
void docker_image_split(const char *image, char **repo, char **tag);

/* docker_spec.c -- the create body */
/* NULL with *cause when the task asks for something unsupported; caller decrefs */
json_t *docker_create_body(struct agent_docker_task *dt, char **cause);

/* docker_tasks.c -- engine state changes reach the tasks */
void docker_engine_changed(struct agent *a);

#endif
