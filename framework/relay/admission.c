/*
 * admission.c -- changes wait while relay has a launch backlog.
 *
 * A client that POSTs apps one after the other as fast as relay answers
 * can hand it far more instances than the cluster starts in a second;
 * each new app then waits behind all the others, and every app's time
 * to RUNNING grows with the queue. So a request that changes apps or
 * groups (POST, PUT or PATCH under /v2/apps or /v2/groups) waits,
 * unanswered, while --launch_backlog or more instances are still to be
 * seen RUNNING (relay_launch_backlog(): missing ones relay may launch now
 * and launched ones staging or starting), and for at most
 * --launch_backlog_wait: a backlog that does not drain (an app larger
 * than the cluster) delays changes by that much, never blocks them.
 * Waiting requests go on in the order they came, one at a time, each
 * once the backlog has fallen below the bound again (or its wait is
 * over), so the queue of work stays about --launch_backlog deep however
 * fast the client is. Reads, DELETEs and everything else never wait.
 */
#include "relay.h"

#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define CHECK_INTERVAL 0.002    /* seconds between looks at the backlog while requests wait */

struct waiting {
	struct evhttp_request *req;
	double since;           /* monotonic */
};

static struct {
	struct waiting *v;      /* oldest first; a handful at most, one per client connection */
	size_t n, cap;
	struct event *timer;
} queue;

/* a change of apps or groups: what admission may hold back */
static bool is_change(struct evhttp_request *req, const char *path)
{
	const char *method = bt_http_method(req);
	const char *under[] = { "/v2/apps", "/v2/groups" };
	size_t i, len;

	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
	    strcmp(method, "PATCH") != 0)
		return false;
	for (i = 0; i < sizeof under / sizeof under[0]; i++) {
		len = strlen(under[i]);
		if (strncmp(path, under[i], len) == 0 && (path[len] == '\0' || path[len] == '/'))
			return true;
	}
	return false;
}

static void check_later(void)
{
	struct timeval tv = bt_timeval(CHECK_INTERVAL);

	evtimer_add(queue.timer, &tv);
}

/* let waiting requests go on: the oldest, when the backlog allows or its wait is over */
static void check_cb(evutil_socket_t unused, short what, void *arg)
{
	struct relay *r = arg;
	struct evhttp_request *req;

	while (queue.n > 0) {
		if (bt_monotonic() - queue.v[0].since < r->cfg.launch_backlog_wait &&
		    relay_launch_backlog(r) >= r->cfg.launch_backlog)
			break;
		req = queue.v[0].req;
		memmove(queue.v, queue.v + 1, --queue.n * sizeof *queue.v);
		bt_http_server_dispatch(r->http, req);
	}
	if (queue.n > 0)
		check_later();
}

static bool admit_cb(struct evhttp_request *req, const char *path, void *arg)
{
	struct relay *r = arg;
	int backlog;

	if (!is_change(req, path))
		return true;
	backlog = relay_launch_backlog(r);
	if (queue.n == 0 && backlog < r->cfg.launch_backlog)
		return true;
	log_debug("%s %s waits: %d instances not yet RUNNING", bt_http_method(req), path, backlog);
	if (queue.n == queue.cap) {
		queue.cap = queue.cap ? queue.cap * 2 : 16;
		queue.v = xreallocarray(queue.v, queue.cap, sizeof *queue.v);
	}
	queue.v[queue.n++] = (struct waiting){ req, bt_monotonic() };
	if (queue.n == 1)
		check_later();
	return false;
}

size_t relay_admission_waiting(void)
{
	return queue.n;
}

void relay_admission_start(struct relay *r)
{
	if (r->cfg.launch_backlog <= 0)
		return;
	queue.timer = evtimer_new(r->base, check_cb, r);
	bt_http_server_admit(r->http, admit_cb, r);
}

/* before the server goes: the waiting requests are freed with their connections */
void relay_admission_stop(struct relay *r)
{
	if (queue.timer != NULL)
		event_free(queue.timer);
	free(queue.v);
	memset(&queue, 0, sizeof queue);
}
