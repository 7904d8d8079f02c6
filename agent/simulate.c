/*
 * simulate.c -- butte-agent --simulate=N: many agents in one process.
 *
 * For benchmarks of the master and of frameworks at scale. Each simulated
 * agent is a struct agent of its own (hostname and name sim-<i>, the
 * resources of --resources) with its own agent_link: its own subscription
 * stream to the master, its own agent id, its own calls. They share one
 * event loop, one HTTP client for the streams and one pipe (http_pipe.h,
 * a few connections) for the calls. The protocol is the real one: the link
 * code of master_link.c and the reliable updates of updates.c serve them
 * unchanged; only what would touch the machine differs. A launched task
 * starts no process: it is reported TASK_RUNNING (with a fresh uuid, resent
 * until acknowledged, exactly as a real agent does; with
 * --simulate_starting, TASK_STARTING first, as a real agent's executor
 * reports it), a killed task is reported TASK_KILLED,
 * and nothing is checkpointed (checkpoint.c skips simulated agents).
 * Simulated agents serve no HTTP endpoints. SIGTERM or SIGINT ends them.
 */
#include "agent.h"
#include "http_client.h"
#include "ids.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define SIM_CALL_CONNECTIONS 16         /* pipelined */

struct sim {
	struct agent **agents;
	int n;
	struct event *sigterm_ev, *sigint_ev;
};

/* one simulated agent: a copy of the prototype with its own identity and tables */
static struct agent *sim_agent_new(struct agent *proto, int i)
{
	struct agent *a = xmalloc(sizeof *a);

	*a = *proto;
	a->simulated = true;
	a->hostname = xasprintf("sim-%d", i);
	a->agent_id = NULL;
	a->http = NULL;
	a->lock_fd = -1;
	a->advertise_ip = NULL;
	TAILQ_INIT(&a->tasks);
	bt_map_init_borrowed(&a->task_index);
	TAILQ_INIT(&a->graveyard);
	a->completed = json_array();
	a->graveyard_ev = NULL;
	a->link = agent_link_new(a);
	return a;
}

static void graveyard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	struct agent_task *t;

	while ((t = TAILQ_FIRST(&a->graveyard)) != NULL) {
		TAILQ_REMOVE(&a->graveyard, t, entry);
		agent_task_free(t);
	}
}

/* after the shared HTTP client was freed (it cancels the calls without callbacks) */
static void sim_agent_free(struct agent *a)
{
	struct agent_task *t;

	agent_link_free(a->link);
	while ((t = TAILQ_FIRST(&a->tasks)) != NULL) {
		agent_task_unlink(a, t);
		agent_task_free(t);
	}
	bt_map_release(&a->task_index);
	graveyard_cb(-1, 0, a);
	if (a->graveyard_ev != NULL)
		event_free(a->graveyard_ev);
	json_decref(a->completed);
	free(a->agent_id);
	free(a->hostname);
	free(a);
}

static void sim_task_start(struct agent *a, Mesos__V1__FrameworkInfo *fw,
    const Mesos__V1__TaskInfo *info)
{
	struct agent_task *t;

	if (agent_task_find(a, fw->id->value, info->task_id->value) != NULL) {
		log_warn("ignoring a second launch of task '%s' of framework '%s'",
		    info->task_id->value, fw->id->value);
		return;
	}
	/* its sandbox and run dir are only names: nothing is created or checkpointed */
	t = agent_task_new(a, fw, info);
	agent_task_add(a, t);
	if (a->simulate_starting)
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_STARTING, NULL, -1);
	agent_update_new(t, MESOS__V1__TASK_STATE__TASK_RUNNING, NULL, -1);
}

void agent_sim_launch(struct agent *a, Butte__AgentEvent__Launch *launch)
{
	size_t i;

	if (launch->framework == NULL || launch->framework->id == NULL) {
		log_warn("ignoring a launch without a framework id");
		return;
	}
	for (i = 0; i < launch->n_tasks; i++) {
		if (launch->tasks[i]->task_id != NULL)
			sim_task_start(a, launch->framework, launch->tasks[i]);
	}
}

static void sim_task_end(struct agent_task *t)
{
	if (!t->ended) {
		t->ended = true;
		agent_update_new(t, MESOS__V1__TASK_STATE__TASK_KILLED, "killed", -1);
	}
	agent_task_maybe_remove(t);
}

void agent_sim_kill(struct agent *a, const char *framework_id, const char *task_id)
{
	struct agent_task *t = agent_task_find(a, framework_id, task_id);

	if (t == NULL) {
		agent_update_send_once(a, framework_id, task_id, MESOS__V1__TASK_STATE__TASK_LOST,
		    "the task is not running on this agent",
		    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_UNKNOWN);
		return;
	}
	sim_task_end(t);
}

void agent_sim_shutdown_framework(struct agent *a, const char *framework_id)
{
	struct agent_task *t, *next;

	TAILQ_FOREACH_SAFE(t, &a->tasks, entry, next) {
		if (strcmp(t->framework_id, framework_id) != 0)
			continue;
		t->forget = true;
		sim_task_end(t);
	}
}

/* every simulated agent holds a stream; the calls share SIM_CALL_CONNECTIONS */
static void raise_nofile(int n)
{
	unsigned long have = bt_raise_nofile((unsigned long)n + 256);

	if (have < (unsigned long)n + 256)
		log_warn("%d simulated agents may need more descriptors than the limit of %lu", n, have);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;

	log_info("%s: stopping the simulated agents", strsignal((int)sig));
	event_base_loopbreak(base);
}

int agent_simulate(struct agent *proto)
{
	struct sim s = { 0 };
	char *cause = NULL;
	int i;

	raise_nofile(proto->simulate);
	signal(SIGPIPE, SIG_IGN);
	proto->base = event_base_new();
	proto->client = bt_http_client_new(proto->base);
	/* the calls of all agents share a few connections: descriptors go to the streams */
	if ((proto->calls = agent_calls_new(proto, SIM_CALL_CONNECTIONS, &cause)) == NULL) {
		log_error("%s", cause);
		free(cause);
		bt_http_client_free(proto->client);
		return 1;
	}
	s.sigterm_ev = evsignal_new(proto->base, SIGTERM, signal_cb, proto->base);
	s.sigint_ev = evsignal_new(proto->base, SIGINT, signal_cb, proto->base);
	event_add(s.sigterm_ev, NULL);
	event_add(s.sigint_ev, NULL);
	s.n = proto->simulate;
	s.agents = xcalloc((size_t)s.n, sizeof *s.agents);
	for (i = 0; i < s.n; i++) {
		s.agents[i] = sim_agent_new(proto, i);
		s.agents[i]->graveyard_ev = event_new(proto->base, -1, 0, graveyard_cb,
		    s.agents[i]);
		agent_link_start(s.agents[i]->link);
	}
	log_info("butte-agent %s: %d simulated agents for master %s", AGENT_VERSION, s.n,
	    proto->master_url);
	event_base_dispatch(proto->base);
	bt_http_pipe_free(proto->calls);
	bt_http_client_free(proto->client);
	proto->client = NULL;
	proto->calls = NULL;
	for (i = 0; i < s.n; i++)
		sim_agent_free(s.agents[i]);
	free(s.agents);
	event_free(s.sigterm_ev);
	event_free(s.sigint_ev);
	/*
	 * A connection freed while one of its callbacks was still deferred
	 * keeps a reference until that callback runs (it finds no callback set
	 * and lets go); event_base_free() would drop it unrun. Everything else
	 * on the loop is freed by now.
	 */
	event_base_loop(proto->base, EVLOOP_NONBLOCK);
	return 0;
}
