/*
 * main.c -- butte-master: flags, start-up, the allocation timer, shutdown.
 *
 * The master parses its option table, opens its registry under --work_dir,
 * recovers the agents and frameworks admitted before a restart, starts the
 * HTTP server (scheduler API, agent channel, operator endpoints) and runs
 * one libevent loop. Allocation runs on a persistent timer every
 * --allocation_interval and, coalesced, at the next loop iteration after
 * events that make new offers possible (master_allocate_soon). SIGTERM and
 * SIGINT end the loop; everything is then freed in reverse order.
 */
#include "master.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "flags.h"
#include "http_server.h"
#include "ids.h"
#include "keep.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

static struct master master_state;

static const struct bt_flag master_flag_table[] = {
	{ "ip", BT_FLAG_STRING, &master_state.flags.ip, "0.0.0.0", "IP address to listen on" },
	{ "port", BT_FLAG_INT, &master_state.flags.port, "5050", "port to listen on" },
	{ "hostname", BT_FLAG_STRING, &master_state.flags.hostname, NULL,
	    "hostname to advertise (default: --ip, or the system hostname when --ip is 0.0.0.0)" },
	{ "work_dir", BT_FLAG_STRING, &master_state.flags.work_dir, "/var/lib/butte/master",
	    "directory of the registry (admitted agents and frameworks)" },
	{ "log_level", BT_FLAG_STRING, &master_state.flags.log_level, "info",
	    "debug, info, warn or error" },
	{ "cluster", BT_FLAG_STRING, &master_state.flags.cluster, NULL, "name of the cluster" },
	{ "allocation_interval", BT_FLAG_DURATION, &master_state.flags.allocation_interval, "1secs",
	    "time between batch allocations" },
	{ "agent_ping_timeout", BT_FLAG_DURATION, &master_state.flags.agent_ping_timeout, "15secs",
	    "time between pings of an agent; a period without any call from it is a missed ping" },
	{ "max_agent_ping_timeouts", BT_FLAG_INT, &master_state.flags.max_agent_ping_timeouts, "5",
	    "missed pings after which an agent is unreachable" },
	{ "heartbeat_interval", BT_FLAG_DURATION, &master_state.flags.heartbeat_interval, "15secs",
	    "time between HEARTBEAT events on scheduler streams" },
	{ "offer_timeout", BT_FLAG_DURATION, &master_state.flags.offer_timeout, NULL,
	    "rescind offers after this long (default: never)" },
	{ "agent_reregister_timeout", BT_FLAG_DURATION, &master_state.flags.agent_reregister_timeout,
	    "10mins", "after a restart, time agents have to re-subscribe before they are unreachable" },
	{ NULL, 0, NULL, NULL, NULL },
};

void master_allocate_soon(struct master *m)
{
	if (m->alloc_pending || m->alloc_soon == NULL)
		return;
	m->alloc_pending = true;
	event_active(m->alloc_soon, EV_TIMEOUT, 0);
}

static void allocation_run(struct master *m)
{
	m->alloc_pending = false;
	allocator_allocate(m->allocator, bt_monotonic(), master_offer_cb, m);
	master_offers_flush(m);
}

static void alloc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	allocation_run(arg);
}

static void reregister_cb(evutil_socket_t fd, short what, void *arg)
{
	master_agents_reregister_timeout(arg);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;

	log_info("received signal %d, shutting down", (int)sig);
	event_base_loopbreak(m->base);
}

void master_info_fill(struct master *m, Mesos__V1__MasterInfo *info, Mesos__V1__Address *addr)
{
	info->id = m->id;
	info->ip = m->ip_be;
	info->port = (uint32_t)m->flags.port;
	info->pid = m->pid;
	info->hostname = m->hostname;
	info->version = MASTER_VERSION;
	addr->hostname = m->hostname;
	addr->ip = m->advertise_ip;
	addr->port = m->flags.port;
	info->address = addr;
}

int master_http_stream_send(struct bt_http_stream *st, const void *rec, size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof head, "%zu\n", len);
	char *buf = xmalloc((size_t)n + len);
	int rc;

	/* one RecordIO record ("<len>\n<bytes>", recordio.h) in one copy */
	memcpy(buf, head, (size_t)n);
	memcpy(buf + n, rec, len);
	rc = bt_http_stream_write(st, buf, (size_t)n + len);
	free(buf);
	return rc;
}

/*
 * glibc gives back only the top of the heap by itself. A burst (a
 * first OFFERS event to ten thousand agents, a flood of updates) leaves
 * free pages between long-lived objects; once a second, when the free
 * bytes grew by more than TRIM_STEP, malloc_trim returns those pages.
 */
#define TRIM_STEP (4u << 20)

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	struct mallinfo2 mi = mallinfo2();

	if (mi.fordblks > m->trim_free + TRIM_STEP) {
		malloc_trim(0);
		log_debug("heap: returned free pages (%zu bytes free, %zu in use)", mi.fordblks,
		    mi.uordblks);
	}
	m->trim_free = mi.fordblks;
}

/* hostname and a concrete IPv4 to advertise */
static void resolve_identity(struct master *m)
{
	char host[256] = "localhost";
	struct in_addr in;
	bool any = strcmp(m->flags.ip, "0.0.0.0") == 0;

	if (m->flags.hostname != NULL)
		m->hostname = xstrdup(m->flags.hostname);
	else if (!any)
		m->hostname = xstrdup(m->flags.ip);
	else {
		if (gethostname(host, sizeof host - 1) != 0)
			strcpy(host, "localhost");
		m->hostname = xstrdup(host);
	}
	if (!any && inet_pton(AF_INET, m->flags.ip, &in) == 1) {
		m->advertise_ip = xstrdup(m->flags.ip);
	} else {
		struct addrinfo hints = { .ai_family = AF_INET }, *res = NULL;
		char buf[INET_ADDRSTRLEN] = "127.0.0.1";
		if (getaddrinfo(m->hostname, NULL, &hints, &res) == 0 && res != NULL) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf,
			    sizeof buf);
		}
		if (res != NULL)
			freeaddrinfo(res);
		m->advertise_ip = xstrdup(buf);
	}
	if (inet_pton(AF_INET, m->advertise_ip, &in) == 1)
		m->ip_be = in.s_addr;
	m->pid = xasprintf("master@%s:%d", m->advertise_ip, m->flags.port);
}

static int setup(struct master *m, char **cause)
{
	struct event_config *cfg;

	/* every agent and framework holds a stream or two */
	bt_raise_nofile(1UL << 18);
	/* a fixed threshold: big transient buffers are mapped and unmapped, never left in the heap */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	m->start_time = bt_now();
	m->id = bt_uuid_new();
	m->flag_table = master_flag_table;
	bt_map_init_borrowed(&m->agents);
	bt_map_init_borrowed(&m->strings);
	bt_map_init(&m->frameworks);
	bt_map_init(&m->offers);
	TAILQ_INIT(&m->pings);
	resolve_identity(m);
	/*
	 * Changes to what epoll watches are made once per loop turn, not one
	 * system call each: a reply evhttp writes and the next pipelined
	 * request it reads then cost no epoll_ctl() at all. (stream.c waits a
	 * turn for its socket take-over because of it.)
	 */
	if ((cfg = event_config_new()) != NULL) {
		event_config_set_flag(cfg, EVENT_BASE_FLAG_IGNORE_ENV);
		event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		m->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (m->base == NULL) {
		*cause = xstrdup("unable to create the event loop");
		return -1;
	}
	m->allocator = allocator_new(m->flags.allocation_interval);
	if (bt_mkdirs(m->flags.work_dir, 0755, cause) != 0)
		return -1;
	if (master_registry_open(m, cause) != 0)
		return -1;
	master_registry_recover(m);
	m->http = bt_http_server_new(m->base, m->flags.ip, m->flags.port, cause);
	if (m->http == NULL)
		return -1;
	master_http_routes(m);
	master_agents_init(m);
	m->alloc_soon = event_new(m->base, -1, 0, alloc_timer_cb, m);
	m->alloc_timer = event_new(m->base, -1, EV_PERSIST, alloc_timer_cb, m);
	struct timeval tv = bt_timeval(m->flags.allocation_interval);
	event_add(m->alloc_timer, &tv);
	m->trim_ev = event_new(m->base, -1, EV_PERSIST, trim_cb, m);
	tv = bt_timeval(1.0);
	event_add(m->trim_ev, &tv);
	if (m->agents.n > 0) {
		m->reregister_ev = event_new(m->base, -1, 0, reregister_cb, m);
		tv = bt_timeval(m->flags.agent_reregister_timeout);
		event_add(m->reregister_ev, &tv);
	}
	m->sigterm_ev = evsignal_new(m->base, SIGTERM, signal_cb, m);
	m->sigint_ev = evsignal_new(m->base, SIGINT, signal_cb, m);
	event_add(m->sigterm_ev, NULL);
	event_add(m->sigint_ev, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void free_event(struct event **ev)
{
	if (*ev != NULL)
		event_free(*ev);
	*ev = NULL;
}

static void teardown(struct master *m)
{
	void **v;
	size_t n;

	v = bt_map_values(&m->offers, &n);
	for (size_t i = 0; i < n; i++)
		master_offer_remove(v[i], false, 0);
	free(v);
	v = bt_map_values(&m->frameworks, &n);
	for (size_t i = 0; i < n; i++)
		master_framework_free(v[i]);
	free(v);
	for (size_t i = 0; i < m->ncompleted_frameworks; i++)
		master_framework_free(m->completed_frameworks[i]);
	free(m->completed_frameworks);
	v = bt_map_values(&m->agents, &n);
	for (size_t i = 0; i < n; i++)
		master_agent_free(v[i]);
	free(v);
	bt_map_release(&m->offers);
	bt_map_release(&m->resource_sets);
	v = bt_map_values(&m->strings, &n);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	bt_map_release(&m->strings);
	bt_map_release(&m->frameworks);
	bt_map_release(&m->agents);
	free_event(&m->alloc_soon);
	free_event(&m->alloc_timer);
	free_event(&m->reregister_ev);
	free_event(&m->ping_ev);
	free_event(&m->trim_ev);
	free_event(&m->sigterm_ev);
	free_event(&m->sigint_ev);
	if (m->http != NULL)
		bt_http_server_free(m->http);
	allocator_free(m->allocator);
	master_registry_close(m);
	if (m->base != NULL)
		event_base_free(m->base);
	free(m->id);
	free(m->hostname);
	free(m->advertise_ip);
	free(m->pid);
	bt_flags_release(master_flag_table);
}

int main(int argc, char **argv)
{
	struct master *m = &master_state;
	char *cause = NULL;
	int rc = 1;

	/* agents' long-lived objects, libevent's among them, go to an arena of their own */
	bt_keep_libevent();
	if (bt_flags_parse(master_flag_table, argc, argv,
	    "usage: butte-master [--flag=value ...]\n"
	    "The butte master: shares the resources of agents among frameworks.", NULL,
	    &cause) != 0) {
		fprintf(stderr, "butte-master: %s\n", cause);
		free(cause);
		bt_flags_release(master_flag_table);
		return 1;
	}
	if (bt_log_init("butte-master", m->flags.log_level) != 0) {
		fprintf(stderr, "butte-master: invalid --log_level '%s'\n", m->flags.log_level);
		bt_flags_release(master_flag_table);
		return 1;
	}
	if (m->flags.max_agent_ping_timeouts < 1 || m->flags.agent_ping_timeout <= 0 ||
	    m->flags.heartbeat_interval <= 0 || m->flags.allocation_interval <= 0) {
		fprintf(stderr, "butte-master: ping timeouts, --heartbeat_interval and "
		    "--allocation_interval must be positive\n");
		bt_flags_release(master_flag_table);
		return 1;
	}
	if (setup(m, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		goto out;
	}
	log_info("master %s listening on %s:%d (work dir %s)", m->id, m->flags.ip,
	    bt_http_server_port(m->http), m->flags.work_dir);
	event_base_dispatch(m->base);
	rc = 0;
out:
	teardown(m);
	return rc;
}
