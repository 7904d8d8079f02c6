/*
 * relay.h -- butte-relay, a Marathon-compatible framework: shared state.
 *
 * relay keeps the desired state (apps, their versions) in SQLite under
 * --work_dir, subscribes to the master as a Mesos v1 HTTP scheduler and
 * keeps N instances of every app running: it matches offers, launches,
 * reacts to status updates with backoff, scales up and down, reconciles
 * after every subscription, and serves the Marathon v2 REST API.
 *
 * Reading order: main.c (flags, loop), scheduler.c (the master
 * connection), tasks.c (the keep-N loop), unreachable.c (unreachable
 * tasks), offers.c (offer matching and
 * TaskInfo building), container.c (container block, ports, offer
 * statistics), placement.c (constraints), health.c (health checks:
 * results, unhealthy kills), apps.c
 * (app JSON), appset.c (the apps in memory, service ports), state.c
 * (SQLite), api.c, api_tasks.c and api_json.c (REST), deploy.c
 * (deployments: plans, locks, rollback), readiness.c (readiness checks),
 * groups.c (/v2/groups), group_view.c (group JSON), history.c (group
 * versions), events.c and events_emit.c (the /v2/events bus).
 */
#ifndef RELAY_H
#define RELAY_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "http_client.h"
#include "http_pipe.h"
#include "http_server.h"
#include "map.h"
#include "mesos_util.h"
#include "recordio.h"
#include "scheduler.pb-c.h"
#include "store.h"

struct relay_health;
struct relay_readiness;

#define RELAY_VERSION "0.1.0"

struct relay_config {
	char *master;                   /* "127.0.0.1:5050" or "http://host:port" */
	char *master_url;               /* "http://host:port/api/v1/scheduler" */
	char *master_hostport;          /* "host:port" */
	int http_port;
	char *http_address;
	char *hostname;
	char *work_dir;
	char *framework_name;
	char *mesos_user;
	char *mesos_role;
	double failover_timeout;
	int local_port_min, local_port_max;
	double decline_offer_duration;
	double offer_hold_duration;
	int launch_backlog;             /* changes wait while this many instances are not RUNNING */
	double launch_backlog_wait;     /* for at most this long */
	double reconciliation_interval;
	double kill_retry_timeout;
	double task_launch_timeout;
	double task_launch_confirm_timeout;
	/* the Marathon timing flags as given: milliseconds, or a duration like "5mins" */
	char *decline_offer_duration_text;
	char *offer_hold_duration_text;
	char *launch_backlog_wait_text;
	char *reconciliation_interval_text;
	char *kill_retry_timeout_text;
	char *task_launch_timeout_text;
	char *task_launch_confirm_timeout_text;
	char *log_level;
};

/* a packed scheduler Call waiting for the commit of what it depends on */
struct relay_pending {
	void *body;
	size_t len;
	const char *type;               /* static enum name */
};

/* one pending relaunch of an instance whose task ended: keeps the instance id */
struct relay_relaunch {
	char *instance_id;
	int incarnation;                /* of the next task */
};

struct relay_app {
	TAILQ_ENTRY(relay_app) entry;
	char *id;                       /* "/grp/x" */
	json_t *def;                    /* normalised app JSON incl. version and versionInfo */
	/* cached from def */
	const char *version;            /* def.version */
	const char *config_version;     /* def.versionInfo.lastConfigChangeAt */
	double cpus, mem, disk;
	int instances;
	size_t nports;
	uint64_t *host_ports;           /* nports slots: the host port asked for, 0 for any (container.c) */
	bool require_ports;
	bool host_network;              /* def's network is the host's (appset.c) */
	json_int_t *service_ports;      /* its service port slots, 0 where none is set */
	size_t nservice_ports;
	bool kill_oldest;
	double backoff_seconds, backoff_factor, max_launch_delay;
	/* launch backoff */
	double delay;                   /* current delay; 0 when none */
	double launch_not_before;       /* wall clock */
	double last_failure_at;
	json_t *last_failure;           /* lastTaskFailure JSON or NULL */
	struct relay_relaunch *relaunch;
	size_t nrelaunch;
	double since;                   /* when the app started waiting for instances */
	int active;                     /* counting tasks of the current config (tasks.c cache) */
	unsigned spread_round;          /* the offers event spread_quota was set for (offers.c) */
	int spread_quota;               /* the fewest instances it takes from an offer then */
	bool recount;                   /* its definition changed: `active` is counted again */
	struct relay_offer_stats *offer_stats;  /* why offers went unused (container.c), or NULL */
	/* the image's architecture an agent reported, for one config (placement.c), or NULL */
	char *image_arch;
	char *image_arch_config;        /* the config_version it was learned for */
	/* deployments (deploy.c) and rolling restarts (tasks.c) */
	bool held;                      /* a deployment has not reached this app's step yet */
	bool rolling;                   /* tasks of an older config may still be alive */
	int roll_cap;                   /* while rolling: tasks of the current config allowed */
	struct relay_task_template *task_template;      /* TaskInfo of this version (taskinfo.c) */
	char *def_json, *service_ports_json;    /* texts for listings, or NULL (listing.c) */
	size_t def_json_len;
	unsigned long json_gen;         /* changes whenever those texts are dropped (appset.c) */
};

enum relay_goal { RELAY_GOAL_RUNNING = 0, RELAY_GOAL_STOPPED = 1 };

struct relay_task {
	TAILQ_ENTRY(relay_task) entry;
	struct relay_task *hnext;       /* next in the task id hash chain */
	char *id;
	char *app_id;
	char *instance_id;
	int incarnation;
	char *agent_id;
	char *host;
	char *ip;                       /* agent address, or NULL */
	int state;                      /* Mesos__V1__TaskState */
	double staged_at, started_at;
	char *version;                  /* app version when launched */
	char *config_version;           /* app lastConfigChangeAt when launched */
	uint64_t *ports;                /* host ports */
	size_t nports;
	enum relay_goal goal;
	double kill_sent_at;            /* monotonic; 0 when no kill was sent */
	double last_update;             /* monotonic time of the last status update */
	bool confirmed;                 /* the master reported it since the last SUBSCRIBED */
	struct relay_group *group;      /* the tasks of its app id */
	TAILQ_ENTRY(relay_task) gentry; /* in group->tasks */
	bool healthy_known, healthy;
	struct relay_health *health;    /* per-check health results (health.c), or NULL */
	bool ready;                     /* every readiness check passed (readiness.c) */
	char *json;                     /* its JSON for listings, or NULL (listing.c) */
	size_t json_len;
	int json_state;                 /* state, goal and start the text was made with */
	enum relay_goal json_goal;
	double json_started_at;
	struct relay_readiness *readiness;  /* readiness probes, or NULL */
	double unreachable_since;       /* wall clock it became unreachable; 0: reachable */
	bool inactive;                  /* unreachable past inactiveAfterSeconds: counts no more */
	unsigned counted;               /* what it adds to its group's counts (RELAY_COUNT_*) */
	char *record_key;               /* the key of its record in the store's "tasks" (state.c) */
	uint64_t state_key;             /* its record in the store's "taskstates", or 0 (state.c) */
};

enum relay_action { RELAY_START, RELAY_SCALE, RELAY_RESTART, RELAY_STOP };

/*
 * A deployment: the steps of one change, run one after another (deploy.c).
 * steps is Marathon's JSON, [{"actions":[{"action":"ScaleApplication",
 * "app":"/x"}]}]; originals maps each affected app id to its definition
 * before the change (null for an app the change created).
 */
struct relay_deployment {
	TAILQ_ENTRY(relay_deployment) entry;
	char *id;
	char *version;
	json_t *steps;
	json_t *originals;
	size_t current;                 /* steps finished */
};

TAILQ_HEAD(relay_apps, relay_app);
TAILQ_HEAD(relay_tasks, relay_task);
TAILQ_HEAD(relay_deployments, relay_deployment);

/* the tasks of one app id, oldest first (kept by tasks.c; they may outlive the app) */
struct relay_group {
	char *app_id;
	struct relay_tasks tasks;       /* linked through gentry */
	size_t n;
	/*
	 * Of these tasks, kept as they change (relay_task_recount): those that
	 * count towards the app's instances staging or starting, running,
	 * healthy and unhealthy (relay_app_counts), and those running that
	 * are not being killed (counted or not: a deployment is settled only
	 * with `instances` of them).
	 */
	int staged, running, healthy, unhealthy, live_running;
	/* the listing of these tasks, or NULL (listing.c); made with the app's json_gen */
	char *json;
	size_t json_len;
	unsigned long json_gen;
};

struct relay {
	struct event_base *base;
	struct relay_config cfg;
	struct bt_store *store;
	struct bt_http_server *http;
	struct bt_http_client *client;  /* the subscription */
	struct bt_http_pipe *calls;     /* every other call to the master, pipelined */
	double started_at;

	/* the master connection (scheduler.c) */
	char *framework_id;
	char *stream_id;
	char *stream_header;             /* "Mesos-Stream-Id: <stream_id>", made once */
	struct bt_http_call *sub_call;
	struct bt_recordio rio;
	bool subscribed;
	double heartbeat_interval;
	double last_event;              /* monotonic */
	double sub_backoff;
	double subscribed_at;           /* monotonic */
	struct event *sub_timer;
	bool suppressed;
	bool revive_wanted;
	double last_revive;             /* monotonic */
	struct event *revive_timer;     /* a rate-limited REVIVE goes out when it fires */
	int batch;                      /* > 0: calls wait in `pending` for the commit */
	struct relay_pending *pending;  /* packed calls waiting for the commit */
	size_t npending, apending;
	bool commit_pending;            /* a group commit waits for commit_timer */
	bool flush_now;                 /* the batch wrote what must be on disk at its end */
	double last_commit;             /* monotonic */
	struct event *commit_timer;
	double next_reconcile;          /* monotonic */
	unsigned long offers_seen, offers_declined, tasks_launched, updates_seen;

	/* desired and actual state */
	struct relay_apps apps;
	struct bt_map app_index;        /* id -> struct relay_app */
	struct bt_map groups;           /* app id -> struct relay_group */
	json_t *group_records;          /* group id -> stored record, loaded on first use (groups.c) */
	struct relay_tasks tasks;
	struct relay_task **task_hash;  /* tasks by id */
	size_t task_hash_size, ntasks;
	size_t nunreachable;            /* tasks with unreachable_since set (unreachable.c) */
	uint64_t record_seq;            /* the last key of a task or task state record (state.c) */
	json_t *stale_states;           /* state records to delete once loaded (state.c) */
	bool counts_valid;              /* every app's `active` is up to date */
	bool check_outdated;            /* apps changed since old-config tasks were looked for */
	struct relay_deployments deployments;
	char **held;                    /* ids of the apps held by deployments (deploy.c) */
	size_t nheld;
	struct event *deploy_timer;     /* checks deployments soon after a change (deploy.c) */
	struct bt_http_client *probes;  /* readiness checks (readiness.c), or NULL */
	struct relay_events *events;    /* the /v2/events subscribers (events.c) */

	struct event *tick;
	struct event *sigint, *sigterm;
};

/* main.c */
extern struct relay *relay_main;

/* scheduler.c -- the Mesos v1 scheduler client */
void relay_scheduler_start(struct relay *r);
void relay_scheduler_stop(struct relay *r);
/* send a call (takes ownership of call); framework_id is added */
void relay_call(struct relay *r, json_t *call);
/* the same for a Call built in C (not taken over; framework_id is added when unset) */
void relay_call_pb(struct relay *r, Mesos__V1__Scheduler__Call *call);
void relay_scheduler_tick(struct relay *r);
/*
 * Group the work of one loop turn: state writes share one transaction,
 * and ACCEPT and ACKNOWLEDGE calls wait until it is committed, so each
 * still follows the records it depends on; other calls (REVIVE, DECLINE,
 * KILL, ...) leave at once. Batches nest. While busy, the commit of
 * several batches is grouped (at most GROUP_COMMIT apart).
 */
void relay_batch_begin(struct relay *r);
void relay_batch_end(struct relay *r);
/* commit now and send the calls that waited for it (not inside a batch) */
void relay_flush(struct relay *r);

/* tasks.c -- instances: status updates, kills, scaling, backoff, reconciliation */
struct relay_task *relay_task_find(struct relay *r, const char *id);
/* the tasks of an app id, or NULL when it has none */
struct relay_group *relay_group_find(struct relay *r, const char *app_id);
/* every task of app id `id`, oldest first; the body must not remove tasks */
#define RELAY_APP_TASKS_FOREACH(t, r, id) \
	for (struct relay_group *g_ = relay_group_find((r), (id)); g_ != NULL; g_ = NULL) \
		TAILQ_FOREACH(t, &g_->tasks, gentry)
/* free the groups once every task is gone (teardown) */
void relay_groups_release(struct relay *r);
/* add to / take from r->tasks and the id hash, keeping the app counts */
void relay_task_insert(struct relay *r, struct relay_task *t);
void relay_task_remove(struct relay *r, struct relay_task *t);
void relay_task_free(struct relay_task *t);
void relay_task_kill(struct relay *r, struct relay_task *t);
void relay_task_update(struct relay *r, const Mesos__V1__TaskStatus *st);
void relay_reconcile(struct relay *r);
/* a new subscription: every task must be confirmed by the master again */
void relay_tasks_subscribed(struct relay *r);
/* how many more instances the app needs now (ignores backoff) */
int relay_app_want(struct relay *r, struct relay_app *app);
/* kill surplus and outdated tasks, revive or suppress offers */
void relay_converge(struct relay *r);
/* refuse_seconds for an offer nothing fitted into: short while an app waits */
double relay_decline_duration(struct relay *r);
void relay_tasks_tick(struct relay *r);
int relay_launch_backlog(struct relay *r);
void relay_app_counts(struct relay *r, const struct relay_app *app, int *staged, int *running,
    int *healthy, int *unhealthy);
/* after t's state, goal, health, reachability or activity changed: its group's counts follow */
void relay_task_recount(struct relay_task *t);
/* tasks of the app id running and not being killed */
int relay_app_live_running(struct relay *r, const char *app_id);
void relay_app_reset_delay(struct relay_app *app);
bool relay_task_terminal_state(int state);
const char *relay_task_state_name(int state);

/* unreachable.c -- unreachableStrategy: unreachable tasks, inactive, expunged */
/* a status update of a non-terminal task, after t took its state */
void relay_unreachable_note(struct relay *r, struct relay_task *t, const Mesos__V1__TaskStatus *st);
void relay_unreachable_tick(struct relay *r);

/* offers.c -- offer matching and TaskInfo building */
void relay_offers(struct relay *r, const Mesos__V1__Scheduler__Event__Offers *offers);
/* the same for an OFFERS event unpacked on the heap: takes ownership of ev */
void relay_offers_take(struct relay *r, Mesos__V1__Scheduler__Event *ev);
void relay_offers_drop(struct relay *r);
/* match the offers held since earlier events; false when none are (REVIVE then) */
bool relay_offers_rematch(struct relay *r);
/* true once after such a match ended */
bool relay_offers_rematched(void);
void relay_offers_rescind(struct relay *r, const char *offer_id);
/* the role a resource is reserved to (the last reservation), or "*" */
const char *relay_resource_role(const Mesos__V1__Resource *res);
/* the agent's address for tasks launched from o, or NULL; caller frees */
char *relay_offer_ip(const Mesos__V1__Offer *o);

/* listing.c -- GET /v2/apps and /v2/tasks from the JSON texts of apps and tasks */
/* what relay answers JSON with: compact, "cpus":0.1 rather than 0.10000000000000001 */
#define RELAY_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* the task changed: its text and its group's are made again when next listed (tasks.c) */
void relay_task_json_stale(struct relay_task *t);
/* a task joined or left the group (tasks.c) */
void relay_group_json_stale(struct relay_group *g);
/* let go of a group's listing text (listing.c): freed once no answer holds it */
void relay_text_unref(char *text);
/* the app's definition was replaced, or the app goes (appset.c) */
void relay_app_json_stale(struct relay_app *app);
/* {"tasks":[...]} of every task selected (NULL selects all), with servicePorts */
void relay_listing_tasks(struct relay *r, struct evbuffer *out,
    bool (*selected)(const struct relay_task *t, const void *arg), const void *arg);
void relay_listing_add_task(struct relay *r, struct evbuffer *out, struct relay_task *t,
    bool service_ports);
/* the app as relay_json_app() gives it with the RELAY_EMBED_* bits of embed */
void relay_listing_add_app(struct relay *r, struct evbuffer *out, struct relay_app *app,
    unsigned embed);

/* taskinfo.c -- TaskInfos built on a template per app version */
struct relay_task_template;
struct relay_launch;
/* the role the resources of a launch are taken from, and the offer's allocation role */
struct relay_offer_role {
	const char *role;
	const char *alloc_role;         /* or NULL */
};
/* the app's template builds for its current version (it is built now if needed) */
bool relay_launch_ready(struct relay_app *app);
/* the TaskInfo of t, pointing into app's template, t and role (which must outlive it); NULL on error */
struct relay_launch *relay_launch_new(struct relay_app *app, const struct relay_task *t,
    const struct relay_offer_role *role);
Mesos__V1__TaskInfo *relay_launch_task_info(struct relay_launch *l);
void relay_launch_free(struct relay_launch *l);
void relay_task_template_free(struct relay_task_template *tt);

/* health.c -- health checks: the TaskInfo's HealthCheck, results, kills of unhealthy tasks */
json_t *relay_health_task_check(const struct relay_app *app, const uint64_t *ports, size_t nports);
/* a status update of a non-terminal task (after its state was noted) */
void relay_health_update(struct relay *r, struct relay_task *t, const Mesos__V1__TaskStatus *st);
/* the task's healthCheckResults array */
json_t *relay_health_results(const struct relay_task *t);
void relay_health_free(struct relay_task *t);

/* placement.c -- constraints and health checks */
void relay_placement_note_offer(const Mesos__V1__Offer *o);
void relay_placement_release(void);
bool relay_placement_ok(struct relay *r, const struct relay_app *app, const Mesos__V1__Offer *o);
/* an implicit ["arch", "LIKE", <image arch>] holds for the app's current config */
bool relay_placement_has_image_arch(const struct relay_app *app);
/* learn the image's arch from an agent's "is built for <arch>" failure; true if it was one */
bool relay_placement_learn_failure(struct relay_app *app, const char *message);

/* container.c -- the container block, ports of tasks, offer statistics for /v2/queue */
/* canonical "networks" of an app body (legacy docker.network and ipAddress folded in) */
json_t *relay_container_networks(const json_t *a, json_t *type_errs, json_t *errs);
/* canonical "container" for nets, or NULL; npd: port definitions given (padding) */
json_t *relay_container_normalize(const json_t *a, const json_t *nets, size_t npd,
    json_t *type_errs, json_t *errs);
bool relay_container_host_network(const json_t *def);
/* the host port slots of an app: the port asked for, 0 for any; caller frees */
uint64_t *relay_container_host_ports(const json_t *def, size_t *n);
/* servicePorts of an app's tasks */
json_t *relay_container_service_ports(const json_t *def);
/* PORT0..n, PORT, PORTS, PORT_<port>, PORT_<NAME> for the task's host ports */
void relay_container_port_env(const struct relay_app *app, const uint64_t *ports, size_t n,
    json_t *env);
/* the TaskInfo's ContainerInfo (Mesos JSON), or NULL without a container */
json_t *relay_container_info(const struct relay_app *app, const uint64_t *ports, size_t n);
/* Mesos Labels {"labels":[{key, value}]} of Marathon's labels object */
json_t *relay_labels_pb(const json_t *labels);
void relay_container_command(const struct relay_app *app, json_t *cmdinfo);
/* why an offer went unused, in Marathon's funnel order */
enum relay_reject {
	RELAY_REJECT_ROLE, RELAY_REJECT_CONSTRAINT, RELAY_REJECT_RESERVATION,
	RELAY_REJECT_MAINTENANCE, RELAY_REJECT_CPUS, RELAY_REJECT_MEM, RELAY_REJECT_DISK,
	RELAY_REJECT_GPUS, RELAY_REJECT_PORTS, RELAY_REJECT_SCARCE, RELAY_NREJECT
};
void relay_offer_stats_used(struct relay_app *app, double now);
/* reasons: bits 1 << enum relay_reject */
void relay_offer_stats_unused(struct relay_app *app, const Mesos__V1__Offer *o, unsigned reasons,
    double now);
/* the launch attempt is over: forget the statistics */
void relay_offer_stats_reset(struct relay_app *app);
void relay_offer_stats_free(struct relay_offer_stats *s);
json_t *relay_offer_stats_json(const struct relay_app *app);
json_t *relay_offer_stats_unused_json(const struct relay_app *app);
/* ?embed=lastUnusedOffers on GET /v2/queue */
void relay_queue_embed(struct relay *r, json_t *queue, const struct evkeyvalq *q);

/* apps.c -- app definitions */
/*
 * Normalise and validate an app body. base (may be NULL) is merged under
 * body first (partial update). On error returns NULL with *status (400 or
 * 422) and *err (the whole error JSON body, caller owns).
 */
json_t *relay_app_normalize(struct relay *r, const json_t *body, const json_t *base,
    const char *path_id, int *status, json_t **err);
/* "x" -> "/x", collapses "//"; caller frees */
char *relay_app_id_absolute(const char *id);
/* true when the configs differ in anything but instances and version info */
bool relay_app_config_changed(const json_t *a, const json_t *b);
/* "grp_x" */
char *relay_app_safe_id(const char *id);

/* appset.c -- the apps in memory, service ports */
/* apps were removed: recount every app, kill tasks that belong to no app */
void relay_apps_changed(struct relay *r);
/* assign service ports to port definitions with port 0; -1 with *cause */
int relay_app_assign_ports(struct relay *r, json_t *def, const json_t *old, char **cause);
/* the same, also keeping clear of the ports of pending (an array of new definitions) */
int relay_app_assign_ports_with(struct relay *r, json_t *def, const json_t *old,
    const json_t *pending, char **cause);
struct relay_app *relay_app_find(struct relay *r, const char *id);
/* create or replace the in-memory app from def (takes ownership of def) */
struct relay_app *relay_app_set(struct relay *r, json_t *def);
void relay_app_remove(struct relay *r, struct relay_app *app);
void relay_app_free(struct relay_app *app);

/* state.c -- persistence */
int relay_state_open(struct relay *r, char **cause);
void relay_state_close(struct relay *r);
int relay_state_load(struct relay *r, char **cause);
void relay_state_save_framework_id(struct relay *r);
void relay_state_save_app(struct relay *r, const struct relay_app *app);
void relay_state_delete_app(struct relay *r, const char *id);
json_t *relay_state_app_versions(struct relay *r, const char *id);
json_t *relay_state_app_version(struct relay *r, const char *id, const char *version);
/* the whole task record (at launch, at a kill) */
void relay_state_save_task(struct relay *r, struct relay_task *t);
/* what a status update changed: its state, start, agent and address, appended */
void relay_state_save_task_state(struct relay *r, struct relay_task *t);
void relay_state_delete_task(struct relay *r, struct relay_task *t);
void relay_state_save_deployment(struct relay *r, const char *id, const json_t *j);
void relay_state_delete_deployment(struct relay *r, const char *id);
/* the stored group records, an object by group id (new) */
json_t *relay_state_groups_load(struct relay *r);
void relay_state_save_group(struct relay *r, const char *id, const json_t *j);
void relay_state_delete_group(struct relay *r, const char *id);
/* calls fn for every stored deployment; stops early when fn returns non-zero */
void relay_state_foreach_deployment(struct relay *r, int (*fn)(const char *id, json_t *j, void *arg),
    void *arg);
/* one transaction around many writes (no-op when one is open); commit closes it */
void relay_state_begin(struct relay *r);
void relay_state_commit(struct relay *r);
/* cb(arg) once what was committed so far is on disk (at once when it is) */
void relay_state_when_durable(struct relay *r, void (*cb)(void *arg), void *arg);

/*
 * events.c, events_emit.c -- the event bus, GET /v2/events (server-sent events). Every
 * relay_event_*() returns at once, building nothing, when no subscriber
 * wants that event type.
 */
/* admission.c */
void relay_admission_start(struct relay *r);
void relay_admission_stop(struct relay *r);
size_t relay_admission_waiting(void);          /* requests waiting now */

void relay_events_init(struct relay *r);
void relay_events_release(struct relay *r);
void relay_events_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
/* api_post_event: an accepted app create or update (as Marathon: not a delete); def: the app */
void relay_event_api_post(struct relay *r, struct evhttp_request *req, const json_t *def);
void relay_event_app_terminated(struct relay *r, const char *app_id);
/* status_update_event TASK_STAGING and instance_changed_event Provisioned */
void relay_event_task_launched(struct relay *r, const struct relay_task *t);
/*
 * status_update_event, and instance_changed_event when the condition
 * changes; call before t takes the new state
 */
void relay_event_status_update(struct relay *r, const struct relay_task *t,
    const Mesos__V1__TaskStatus *st);
/* instance_changed_event with a condition of relay's own ("UnreachableInactive") */
void relay_event_instance_changed(struct relay *r, const struct relay_task *t, const char *cond);
/* health_status_changed_event */
void relay_event_health_changed(struct relay *r, const struct relay_task *t, bool alive);
/* failed_health_check_event; check: the app's health check JSON (NULL: its first one) */
void relay_event_failed_health_check(struct relay *r, const struct relay_task *t,
    const json_t *check);
/* unhealthy_instance_kill_event, before the kill */
void relay_event_unhealthy_kill(struct relay *r, const struct relay_task *t, const char *reason);
/* a deployment was committed (its apps are changed already) */
void relay_event_deployment_new(struct relay *r, const struct relay_deployment *d);
/* deployment_step_success of step i (0-based), then deployment_info of the next one */
void relay_event_deployment_step(struct relay *r, const struct relay_deployment *d, size_t i);
/* deployment_success, before d is freed */
void relay_event_deployment_done(struct relay *r, const struct relay_deployment *d);
/* deployment_failed: d was replaced by a newer deployment or cancelled */
void relay_event_deployment_failed(struct relay *r, const struct relay_deployment *d,
    const char *reason);

/*
 * deploy.c -- deployments. A change takes the locks of the apps it
 * touches (relay_deployment_lock), begins a deployment, notes each app
 * before changing it (relay_deployment_touch), changes the apps, then
 * commits: the steps are built (stops, starts, then one step per
 * dependency layer), stored and announced. relay_deployments_check()
 * moves each deployment through its steps: an app whose step has not
 * come yet is held (no launches, no kills); a step is done when its apps
 * run their instances of the new config, healthy and ready, with no old
 * task left (for a stop: no task left).
 */
/* true when the change may go ahead; else 409 was answered (force=true cancels the others) */
bool relay_deployment_lock(struct relay *r, struct evhttp_request *req, const struct evkeyvalq *q,
    const char *const *app_ids, size_t n);
struct relay_deployment *relay_deployment_begin(struct relay *r, const char *version);
void relay_deployment_touch(struct relay *r, struct relay_deployment *d, const char *app_id);
void relay_deployment_commit(struct relay *r, struct relay_deployment *d);
bool relay_deployment_affects(const struct relay_deployment *d, const char *app_id);
/* something changed that may move a deployment on: check soon */
void relay_deployments_changed(struct relay *r);
void relay_deployments_check(struct relay *r);
int relay_deployments_load(struct relay *r, char **cause);
void relay_deployments_release(struct relay *r);
json_t *relay_json_deployment(struct relay *r, const struct relay_deployment *d);
/* the dependency layer of an app (0: depends on nothing); -1 in a cycle */
int relay_app_layer(struct relay *r, const char *app_id);
/* a task of the app's current config that is running, healthy and ready */
bool relay_task_serving(const struct relay_app *app, const struct relay_task *t);
void relay_api_deployments_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *q, void *arg);

/* readiness.c -- readiness checks of new tasks while their app deploys */
void relay_readiness_poll(struct relay *r, struct relay_app *app);
void relay_readiness_free(struct relay_task *t);
json_t *relay_readiness_results(struct relay *r, const struct relay_app *app);
void relay_readiness_release(struct relay *r);

/* api.c -- the REST API: routes, apps */
int relay_api_start(struct relay *r, char **cause);
/* one app of a change: its new definition (taken), or NULL to delete it */
struct relay_change {
	const char *id;
	json_t *def;
	bool restart;                   /* a new config version even if nothing else changed */
	bool keep_version;              /* def keeps its version and versionInfo (a rollback) */
};
/*
 * Lock, begin a deployment, change the apps, commit, converge. NULL when
 * the apps are locked (409 sent; req may be NULL only with force). The
 * definitions are taken either way.
 */
struct relay_deployment *relay_api_apply(struct relay *r, struct evhttp_request *req,
    const struct evkeyvalq *q, struct relay_change *ch, size_t n);
/* the new definition of app id from a PUT/PATCH body (taken); NULL: the error was sent */
json_t *relay_api_updated_def(struct relay *r, struct evhttp_request *req, const char *id,
    json_t *body, bool partial);

/* groups.c -- /v2/groups */
void relay_groups_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
/* "/a/b" -> "/a", "/a" -> "/"; caller frees */
char *relay_path_parent(const char *id);
/* id is inside group, or is it */
bool relay_path_under(const char *id, const char *group);
/* the stored group records: group id -> {"id", "dependencies", "version"} (borrowed) */
json_t *relay_group_records(struct relay *r);
bool relay_group_exists(struct relay *r, const char *id);

/* group_view.c -- GET /v2/groups[/{id}[/versions[/{version}]]] with Marathon's embeds */
void relay_groups_get(struct relay *r, struct evhttp_request *req, const char *gid,
    const char *version, bool versions, const struct evkeyvalq *q);

/* history.c -- group versions (see there) */
/* the change of version `at` left the app at `version` (NULL: removed it) */
void relay_history_app(struct relay *r, const char *at, const char *app_id, const char *version);
/* the change of version `at` left the group's record at `record` (NULL: removed it) */
void relay_history_group(struct relay *r, const char *at, const char *gid, const json_t *record);
/* the versions of group gid, newest first (new array) */
json_t *relay_history_versions(struct relay *r, const char *gid);
/*
 * group gid at `version`: {"apps": {id: definition}, "records": {group id:
 * record}} (new), or NULL when gid has no such version
 */
json_t *relay_history_group_at(struct relay *r, const char *gid, const char *version);
/* the dependencies the groups around an app give it (new array) */
json_t *relay_group_dependencies(struct relay *r, const char *app_id);
void relay_app_groups_release(struct relay *r);

/* api.c: helpers shared with api_tasks.c */
/* the RELAY_EMBED_* bits of the query's embed parameters; group: only group.apps.<name> */
unsigned relay_api_embeds(const struct evkeyvalq *q, bool group);
void relay_api_reply(struct evhttp_request *req, int code, json_t *body);
/* the same with a body written into body (freed here) */
void relay_api_reply_buffer(struct evhttp_request *req, int code, struct evbuffer *body);
void relay_api_reply_error(struct evhttp_request *req, int code, json_t *err);
void relay_api_reply_dr(struct evhttp_request *req, int code, const struct relay_deployment *d,
    const char *location);
void relay_api_not_found(struct evhttp_request *req, const char *app_id);
void relay_api_not_allowed(struct evhttp_request *req);
/* the request body as JSON; on failure the error reply is sent and NULL returned */
json_t *relay_api_read_body(struct evhttp_request *req);
/* the current time as a version string; caller frees */
char *relay_api_now(void);
void relay_api_stamp(json_t *def, const char *version, const char *config_version);
/* persist the app and converge; config resets the backoff and relaunch list */
void relay_api_app_changed(struct relay *r, struct relay_app *app, bool config);

/* api_tasks.c -- tasks, deployments, queue, groups, info, leader, ping, metrics */
void relay_api_app_tasks(struct relay *r, struct evhttp_request *req, const char *id,
    const struct evkeyvalq *q);
void relay_api_app_task(struct relay *r, struct evhttp_request *req, const char *id,
    const char *task_id, const struct evkeyvalq *q);
void relay_api_tasks_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_queue_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_info_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_leader_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_ping_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_metrics_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);
void relay_api_fallback_cb(struct evhttp_request *req, const char *path, const struct evkeyvalq *q,
    void *arg);

/* api_json.c -- JSON shapes of apps, tasks, deployments, info */
json_t *relay_json_task(struct relay *r, const struct relay_task *t, bool service_ports);
/* what an AppInfo embeds (Marathon's embed=apps.<name>) */
enum {
	RELAY_EMBED_COUNTS = 1 << 0,            /* tasksStaged, ... tasksUnhealthy */
	RELAY_EMBED_DEPLOYMENTS = 1 << 1,
	RELAY_EMBED_TASKS = 1 << 2,             /* implies deployments */
	RELAY_EMBED_FAILURE = 1 << 3,           /* lastTaskFailure */
	RELAY_EMBED_STATS = 1 << 4,             /* taskStats */
	RELAY_EMBED_READINESS = 1 << 5,         /* readinessCheckResults */
};
json_t *relay_json_app(struct relay *r, const struct relay_app *app, unsigned embed);
json_t *relay_json_info(struct relay *r);
json_t *relay_json_queue(struct relay *r);
json_t *relay_json_metrics(struct relay *r);

#endif
