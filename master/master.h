/*
 * master.h -- butte-master: the state of the master and the prototypes of
 * every file of the program.
 *
 * One struct master holds everything: the flags, the event loop, the HTTP
 * server, the registry, and the tables of agents, frameworks and offers.
 * Agents, frameworks, tasks and offers point at each other directly:
 * a task belongs to one framework (its table by task id) and one agent
 * (the agent's task list); an offer belongs to one framework and one
 * agent (a list on each). The allocator (allocator.c) knows none of these
 * types: it works on integer handles and hands back the user pointers it
 * was given, so a unit test or a benchmark can drive it alone.
 */
#ifndef MASTER_H
#define MASTER_H

#include <sys/queue.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attributes.h"
#include "butte.pb-c.h"
#include "mesos.pb-c.h"
#include "resources.h"
#include "map.h"
#include "mesos_util.h"
#include "scheduler.pb-c.h"

#define MASTER_VERSION "0.1.0"
#define MASTER_MAX_COMPLETED_TASKS 1000         /* per framework */
#define MASTER_MAX_COMPLETED_FRAMEWORKS 50
#define MASTER_MAX_STATUSES 32                  /* status history kept per task */
#define MASTER_STREAM_MAX_BUFFERED (16u << 20)  /* bytes a slow agent stream may hold */
/*
 * A framework's stream carries an update per task state change and a
 * reply per task reconciled: at a hundred thousand tasks a burst of 30 MB
 * is normal, and dropping it would only make the framework subscribe and
 * reconcile again, sending the burst once more.
 */
#define MASTER_FRAMEWORK_STREAM_MAX_BUFFERED (512u << 20)
#define MASTER_MAX_REFUSE_SECONDS (365.0 * 24 * 3600)
#define MASTER_NSCALARS 4                       /* cpus, mem, disk, gpus */

struct bt_http_server;
struct bt_http_stream;
struct bt_store;
struct bt_flag;
struct master;
struct master_stream;

/* allocator.c -- DRF allocation of agents' free resources to frameworks */
struct allocator;
/* one offer: all of an agent's free resources for one framework */
typedef void (*allocator_offer_cb)(void *agent, void *framework, const struct bt_resources *res,
    void *arg);

struct allocator *allocator_new(double allocation_interval);
void allocator_free(struct allocator *a);
/* returns the agent's handle; the agent starts active with all of total free (id is not kept) */
int allocator_add_agent(struct allocator *a, const char *id, const struct bt_resources *total,
    void *user);
void allocator_remove_agent(struct allocator *a, int agent);
/* an inactive agent (disconnected) is never offered */
void allocator_activate_agent(struct allocator *a, int agent, bool active);
int allocator_add_framework(struct allocator *a, const char *id, void *user);
void allocator_remove_framework(struct allocator *a, int framework);
/* an inactive framework (not subscribed) is never offered to */
void allocator_activate_framework(struct allocator *a, int framework, bool active);
void allocator_suppress(struct allocator *a, int framework);
/* clear the framework's filters and end a suppression */
void allocator_revive(struct allocator *a, int framework);
/* res on agent is in use by the framework (a task reported by a re-subscribing agent) */
void allocator_use(struct allocator *a, int agent, int framework, const struct bt_resources *res);
/*
 * res allocated to framework on agent comes back (declined, unused, task
 * ended). refuse_seconds > 0 filters the agent for the framework until
 * now + max(refuse_seconds, allocation_interval). Either handle may be -1.
 */
void allocator_recover(struct allocator *a, int agent, int framework,
    const struct bt_resources *res, double refuse_seconds, double now);
/* one allocation run; cb is called once per offer */
void allocator_allocate(struct allocator *a, double now, allocator_offer_cb cb, void *arg);
bool allocator_filtered(const struct allocator *a, int framework, int agent);
bool allocator_suppressed(const struct allocator *a, int framework);
double allocator_share(const struct allocator *a, int framework);
/* the free resources of an agent (for tests and /master/state) */
const struct bt_resources *allocator_free_resources(const struct allocator *a, int agent);
uint64_t allocator_runs(const struct allocator *a);
/* duration of runs in ms: the last one, and a percentile (0..100) over recent runs */
double allocator_run_ms(const struct allocator *a);
double allocator_run_ms_percentile(const struct allocator *a, double pct);

/* the objects of the master */
enum master_agent_state {
	AGENT_RECOVERED,                /* from the registry, not re-subscribed since the restart */
	AGENT_CONNECTED,
	AGENT_DISCONNECTED,             /* stream closed; tasks kept until the ping timeouts */
	AGENT_UNREACHABLE,              /* ping timeouts ran out */
};

struct master_task;
struct master_offer;
TAILQ_HEAD(master_task_list, master_task);
TAILQ_HEAD(master_offer_list, master_offer);

/*
 * An agent is kept small: ten thousand of them live in one master. Its
 * AgentInfo stays packed (the registry stores those bytes; /master/state
 * and a re-subscription decode them), its total resources are in the
 * allocator and, as the four scalars the metrics sum, here.
 */
struct master_agent {
	struct master *m;
	char *hostname;
	char *ip;                       /* the peer address of its subscription */
	int port;
	const char *version;            /* interned in m->strings */
	uint8_t *info;                  /* packed AgentInfo without its id (see agents.c) */
	size_t info_len;
	int64_t scalars[MASTER_NSCALARS];       /* total cpus, mem, disk, gpus in thousandths */
	struct bt_attributes attributes;
	enum master_agent_state state;
	int alloc;                      /* allocator handle, -1 when not in the allocator */
	struct master_stream *stream;
	char stream_id[40];             /* "" while no stream is open */
	bool pinged;                    /* in the master's ping queue */
	bool heard;                     /* a call arrived during this ping period */
	int missed_pings;
	double ping_due;                /* monotonic time of the next ping */
	TAILQ_ENTRY(master_agent) ping_entry;
	struct event *disconnect_ev;    /* deferred work after the stream closed */
	double registered_time, reregistered_time, unreachable_time;
	struct master_task_list tasks;  /* active and unreachable tasks on the agent */
	struct master_offer_list offers;
	char id[];
};
TAILQ_HEAD(master_agent_queue, master_agent);

enum master_framework_state {
	FRAMEWORK_RECOVERED,            /* known from agents or the registry, not subscribed */
	FRAMEWORK_CONNECTED,
	FRAMEWORK_DISCONNECTED,         /* failover timeout running */
	FRAMEWORK_REMOVED,
};

struct master_framework {
	struct master *m;
	char *id;
	Mesos__V1__FrameworkInfo *info; /* heap copy, id set */
	bool partition_aware;
	enum master_framework_state state;
	int alloc;                      /* allocator handle, -1 once removed */
	struct bt_http_stream *stream;
	char *stream_id;
	bool json;                      /* stream encoding */
	struct event *heartbeat_ev;
	struct event *failover_ev;
	struct event *disconnect_ev;    /* deferred work after the stream closed */
	double registered_time, reregistered_time, unregistered_time;
	struct bt_map tasks;        /* task id (borrowed) -> active or unreachable task */
	struct master_task_list completed;
	size_t ncompleted;
	struct master_offer_list offers;
	struct master_offer **pending;  /* offers made in this allocation run, sent after it */
	size_t npending, cappending;
};

struct master_status_entry {
	double timestamp;
	int8_t state;
	bool has_healthy, healthy;
};

/*
 * A task holds what the master serves and needs, not the TaskInfo it came
 * from: its ids and name in one allocation with the struct, its resources
 * (a scalar-only set such as cpus and mem is shared by every task with the
 * same one), the history of states for /master/state, and the latest
 * status packed, without the fields reconciliation replaces anyway.
 */
struct master_task {
	struct master_framework *fw;
	struct master_agent *agent;     /* NULL once completed */
	const char *agent_id;           /* the agent record's id (agents are never freed) */
	const struct bt_resources *resources;
	uint8_t *status;                /* latest TaskStatus, packed (keep_status), NULL while staging */
	uint32_t status_len;
	int8_t state;                   /* latest known state */
	int8_t pending_state;
	uint8_t nstatuses, capstatuses;
	bool released;                  /* resources returned to the allocator */
	bool unreachable;
	bool completed;
	bool shared_resources;          /* resources belong to m->resource_sets */
	bool has_pending_uuid;          /* the newest forwarded update that awaits an ack */
	uint8_t pending_uuid[16];
	struct master_status_entry *statuses;
	json_t *extra;                  /* labels, container, discovery, health_check, or NULL */
	union {
		TAILQ_ENTRY(master_task) agent_entry;           /* while active */
		TAILQ_ENTRY(master_task) completed_entry;       /* once completed */
	};
	char *name;                     /* points after id */
	char id[];
};

struct master_offer {
	char *id;
	struct master_framework *fw;
	struct master_agent *agent;
	struct bt_resources resources;
	struct event *timeout_ev;
	double created;
	TAILQ_ENTRY(master_offer) fw_entry;
	TAILQ_ENTRY(master_offer) agent_entry;
};

struct master_flags {
	char *ip;
	int port;
	char *hostname;
	char *work_dir;
	char *log_level;
	char *cluster;
	double allocation_interval;
	double agent_ping_timeout;
	int max_agent_ping_timeouts;
	double heartbeat_interval;
	double offer_timeout;           /* 0: offers never time out */
	double agent_reregister_timeout;
};

struct master {
	struct event_base *base;
	struct bt_http_server *http;
	struct bt_store *store;
	struct master_flags flags;
	const struct bt_flag *flag_table;
	char *id;
	char *hostname;
	char *advertise_ip;             /* a concrete IPv4 for MasterInfo */
	uint32_t ip_be;
	char *pid;                      /* "master@ip:port" */
	double start_time;
	uint64_t next_framework, next_agent, next_offer;
	struct bt_map agents;       /* id (borrowed) -> agent (all states) */
	struct bt_map frameworks;   /* id -> framework (not removed) */
	struct bt_map offers;       /* id -> offer */
	struct bt_map resource_sets;    /* text -> resources shared by tasks (tasks.c) */
	struct bt_map strings;          /* interned strings (agent versions), never freed */
	struct master_framework **completed_frameworks;
	size_t ncompleted_frameworks;
	struct allocator *allocator;
	struct event *alloc_timer;
	struct event *alloc_soon;
	bool alloc_pending;
	struct event *reregister_ev;    /* end of the re-registration window after a restart */
	struct master_agent_queue pings;        /* agents by next ping time (all periods are equal) */
	struct event *ping_ev;          /* fires at the head's ping time */
	struct event *trim_ev;          /* returns free heap pages after bursts (main.c) */
	size_t trim_free;               /* free heap bytes at the last look */
	struct event *sigterm_ev, *sigint_ev;
	uint64_t tasks_launched;
	uint64_t tasks_completed[16];   /* by terminal state, for the metrics */
};

/* main.c */
/* run an allocation at the next loop iteration (coalesced) */
void master_allocate_soon(struct master *m);
/* fill a MasterInfo on the stack; strings point into m */
void master_info_fill(struct master *m, Mesos__V1__MasterInfo *info, Mesos__V1__Address *addr);
/* frame rec as one RecordIO record and queue it; -1 when the stream was dropped */
int master_http_stream_send(struct bt_http_stream *st, const void *rec, size_t len);

/* registry.c -- admitted agents and frameworks in SQLite */
int master_registry_open(struct master *m, char **cause);
void master_registry_close(struct master *m);
/* load the admitted agents (as AGENT_RECOVERED) and frameworks (as FRAMEWORK_RECOVERED) */
void master_registry_recover(struct master *m);
void master_registry_put_agent(struct master *m, struct master_agent *a);
void master_registry_put_framework(struct master *m, struct master_framework *fw);
void master_registry_remove_framework(struct master *m, const char *id);

/* stream.c -- agent streams on bare sockets */
typedef void (*master_stream_closed_cb)(struct master_stream *st, void *arg);
/*
 * Answer req with a 200 stream head (Mesos-Stream-Id: stream_id) and take
 * its socket from evhttp. closed_cb runs once, from the loop, when the
 * peer goes away (or at once when a send drops a slow peer); the stream
 * is freed right after it.
 */
struct master_stream *master_stream_take(struct event_base *base, struct evhttp_request *req,
    const char *content_type, const char *stream_id, size_t max_buffered,
    master_stream_closed_cb closed_cb, void *arg);
/* one RecordIO record as one chunk; -1 when the stream was dropped (closed_cb ran) */
int master_stream_send(struct master_stream *st, const void *rec, size_t len);
/* end the stream and free it (closed_cb is not called) */
void master_stream_close(struct master_stream *st);

/* agents.c -- the agent channel */
void master_agents_init(struct master *m);
void master_agent_api_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg);
struct master_agent *master_agent_find(struct master *m, const char *id);
/* a recovered agent record from the registry */
struct master_agent *master_agent_recovered(struct master *m, const Mesos__V1__AgentInfo *info);
void master_agent_send(struct master_agent *a, const Butte__AgentEvent *ev);
void master_agent_send_kill(struct master_agent *a, const char *framework_id, const char *task_id,
    Mesos__V1__KillPolicy *policy);
void master_agent_send_ack(struct master_agent *a, const char *framework_id, const char *task_id,
    const uint8_t *uuid, size_t len);
void master_agent_send_shutdown(struct master_agent *a, const char *framework_id);
/* the re-registration window after a restart ended: recovered agents become unreachable */
void master_agents_reregister_timeout(struct master *m);
void master_agent_free(struct master_agent *a);
/* the agent's total resources, decoded from its AgentInfo; -1 with *cause */
int master_agent_total(const struct master_agent *a, struct bt_resources *total, char **cause);
/* a heap AgentInfo decoded from the packed copy (free_unpacked it), or NULL */
Mesos__V1__AgentInfo *master_agent_info(const struct master_agent *a);
/* the packed AgentInfo with its id, as the registry stores it; caller frees */
uint8_t *master_agent_info_packed(const struct master_agent *a, size_t *len);

/* frameworks.c -- framework lifecycle */
struct master_framework *master_framework_find(struct master *m, const char *id);
struct master_framework *master_framework_find_completed(struct master *m, const char *id);
/* create a framework record; info is copied; id must be set in info */
struct master_framework *master_framework_new(struct master *m, const Mesos__V1__FrameworkInfo *info,
    enum master_framework_state state);
/* answer SUBSCRIBE with a new stream (closing an old one), SUBSCRIBED and a HEARTBEAT */
void master_framework_connect(struct master_framework *fw, struct evhttp_request *req, bool json,
    const Mesos__V1__FrameworkInfo *info);
void master_framework_send(struct master_framework *fw, const Mesos__V1__Scheduler__Event *ev);
/* send an UPDATE event carrying status */
void master_framework_send_update(struct master_framework *fw, const Mesos__V1__TaskStatus *status);
/* remove at once: kill tasks, recover offers, move to the completed frameworks */
void master_framework_remove(struct master_framework *fw, const char *why);
void master_framework_free(struct master_framework *fw);
bool master_framework_partition_aware(const Mesos__V1__FrameworkInfo *info);

/* scheduler.c -- POST /api/v1/scheduler */
void master_scheduler_api_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg);

/* offers.c -- offer objects, accept and decline */
/* allocator callback: create an offer and queue it for the framework */
void master_offer_cb(void *agent, void *framework, const struct bt_resources *res, void *arg);
/* send the offers queued during an allocation run */
void master_offers_flush(struct master *m);
struct master_offer *master_offer_find(struct master *m, const char *id);
/* drop an offer and give its resources back; rescind sends RESCIND to the framework */
void master_offer_remove(struct master_offer *o, bool rescind, double refuse_seconds);
void master_offers_rescind_agent(struct master_agent *a);
void master_offers_remove_framework(struct master_framework *fw, bool rescind);
/* refuse_seconds of a Filters message (default 5, negative -> default, capped) */
double master_refuse_seconds(const Mesos__V1__Filters *f);
void master_accept(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Accept *acc);
void master_decline(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Decline *dec);

/* tasks.c -- the task table, status updates, reconciliation */
/* a new task in TASK_STAGING from a validated TaskInfo */
struct master_task *master_task_new(struct master_framework *fw, struct master_agent *a,
    const Mesos__V1__TaskInfo *ti, const struct bt_resources *res);
/* re-add a task reported by a re-subscribing agent */
void master_task_reported(struct master_agent *a, const Mesos__V1__Task *t);
/* an update from an agent: record, release resources when terminal, forward */
void master_task_status_update(struct master_agent *a, const char *framework_id,
    const Mesos__V1__TaskStatus *status);
/* send a master-generated update (no uuid) and record the state */
void master_task_transition(struct master_task *t, int state, int reason, const char *message);
/* the framework acknowledged an update */
void master_task_acknowledge(struct master_framework *fw, const char *agent_id,
    const char *task_id, const uint8_t *uuid, size_t len);
void master_task_kill(struct master_framework *fw, const char *task_id, const char *agent_id,
    Mesos__V1__KillPolicy *policy);
/* the agent is unreachable: TASK_LOST or TASK_UNREACHABLE for each of its tasks */
void master_tasks_agent_lost(struct master_agent *a);
/* move a task to its framework's completed list (releases resources) */
void master_task_complete(struct master_task *t);
void master_task_free(struct master_task *t);
void master_reconcile(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Reconcile *r);
/* TaskStatus for a master-generated update; message and ids point at the arguments */
void master_status_fill(Mesos__V1__TaskStatus *st, Mesos__V1__TaskID *tid, Mesos__V1__AgentID *aid,
    int state, int reason, const char *message);
json_t *master_task_json(const struct master_task *t);

/* http.c -- operator endpoints */
void master_http_routes(struct master *m);

/* metrics.c -- /metrics/snapshot */
void master_metrics_json(struct master *m, json_t *j);

#endif
