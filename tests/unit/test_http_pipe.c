/*
 * test_http_pipe.c -- the pipelining HTTP client against servers in the
 * same event loop: the project's evhttp server for ordinary answers (an
 * echo, a route that tags each answer with the connection it came on, a
 * route that holds its first request back), and a raw TCP listener that
 * writes canned bytes for everything evhttp never sends: chunks with
 * extensions and trailers, bodies that run to the close, 1xx answers,
 * answers split into single bytes or packed two to a write, "Connection:
 * close", malformed status lines, headers and lengths, silence. Also URL
 * parsing, refused connections, timeouts, idle connections the server
 * closes, freeing a pipe with requests waiting, posting from a callback,
 * posting again from the callback of a connection's last answer or of a
 * failure, and parse_answer() on buffers directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../common/http_pipe.c"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <event2/listener.h>

#include "http_server.h"

#define MAX_SEEN 16                     /* requests whose head the raw server keeps */

/* what the raw server does when a request has come in whole */
enum raw_action {
	RAW_SILENT,                     /* nothing: the request waits forever */
	RAW_WRITE,                      /* write the bytes */
	RAW_WRITE_CLOSE,                /* write the bytes, close once they are out */
	RAW_BYTEWISE,                   /* write the bytes one per loop turn */
	RAW_CLOSE,                      /* close without a word */
};

struct canned {
	enum raw_action action;
	const char *bytes;
};

/* a connection the raw server accepted */
struct raw_conn {
	struct fx *f;
	struct bufferevent *bev;        /* NULL once closed */
	struct evbuffer *slow;          /* bytes RAW_BYTEWISE still has to write */
	struct event *tick;
	bool close_when_sent;
	struct raw_conn *next;
};

struct fx {
	struct event_base *base;
	struct event *guard;            /* bounds one EVLOOP_ONCE turn */
	struct bt_http_server *server;
	char url[128];                  /* evhttp: http://127.0.0.1:<port> */
	struct bt_http_pipe *pipe;      /* the pipe under test */
	int ended;                      /* callbacks run so far */

	/* the raw server */
	struct evconnlistener *raw;
	int raw_port;
	char raw_url[128];
	const struct canned *script;    /* by request number, from 0 */
	size_t nscript;
	int requests;                   /* requests read whole */
	char *heads[MAX_SEEN];          /* their request line and headers */
	int accepted, closed;           /* connections */
	int bytewise_writes;
	struct raw_conn *raw_conns;

	/* the holding route */
	struct evhttp_request *held;
	bool held_once;
	struct event *hold_timer;
	size_t unsent_when_held;        /* bytes still in the pipe's output then */
	size_t waiting_when_held;
};

/* one request posted through the pipe */
struct result {
	int calls;                      /* times its callback ran */
	int seq;                        /* its place among all callbacks */
	int status;
	char *body;
	size_t len;
	char *error;
	char sent[32];                  /* the body posted */
	struct result *then;            /* posted from this one's callback */
	const char *then_body;
};

static struct fx *F;

/* ---- running the loop ---- */

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* one turn of the loop, never blocked for more than 10 ms */
static void loop_once(struct fx *f)
{
	struct timeval tv = { 0, 10000 };

	evtimer_add(f->guard, &tv);
	event_base_loop(f->base, EVLOOP_ONCE);
	evtimer_del(f->guard);
}

/* turn the loop until cond holds; fail after secs */
#define WAIT_FOR(f, cond, secs) do { \
	double deadline_ = bt_monotonic() + (secs); \
	while (!(cond) && bt_monotonic() < deadline_) \
		loop_once(f); \
	if (!(cond)) \
		fail_msg("timed out waiting for %s", #cond); \
} while (0)

/* turn the loop for secs, whatever happens */
static void run_for(struct fx *f, double secs)
{
	double deadline = bt_monotonic() + secs;

	while (bt_monotonic() < deadline)
		loop_once(f);
}

/* ---- the client side ---- */

static void post(struct fx *f, struct result *r, const char *body);

static void done_cb(int status, const char *body, size_t len, const char *error, void *arg)
{
	struct result *r = arg;
	struct fx *f = F;

	r->calls++;
	r->seq = f->ended++;
	r->status = status;
	free(r->body);
	free(r->error);
	r->body = xmalloc(len + 1);
	if (len > 0)
		memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->len = len;
	r->error = error != NULL ? xstrdup(error) : NULL;
	if (r->then != NULL)
		post(f, r->then, r->then_body);
}

static void post(struct fx *f, struct result *r, const char *body)
{
	if (body != NULL)
		snprintf(r->sent, sizeof r->sent, "%s", body);
	bt_http_pipe_post(f->pipe, NULL, r->sent, strlen(r->sent), done_cb, r);
}

static bool all_ended(const struct result *r, int n)
{
	for (int i = 0; i < n; i++)
		if (r[i].calls == 0)
			return false;
	return true;
}

static void results_free(struct result *r, int n)
{
	for (int i = 0; i < n; i++) {
		free(r[i].body);
		free(r[i].error);
	}
}

/* the pipe under test, to url (the one before is freed) */
static void pipe_to(struct fx *f, const char *url, int connections, double timeout)
{
	char *cause = NULL;

	bt_http_pipe_free(f->pipe);
	f->pipe = bt_http_pipe_new(f->base, url, connections, timeout, &cause);
	if (f->pipe == NULL)
		fail_msg("%s", cause);
}

/* a request that ended with an answer */
static void assert_answer(const struct result *r, int status, const char *body)
{
	assert_int_equal(r->calls, 1);
	if (r->status != status)
		fail_msg("status %d, wanted %d (%s)", r->status, status,
		    r->error != NULL ? r->error : "no error");
	assert_null(r->error);
	assert_string_equal(r->body, body);
	assert_int_equal(r->len, strlen(body));
}

/* a request that ended without one; the error names the server and says why */
static void assert_failed(const struct result *r, int port, const char *why)
{
	char where[64];

	snprintf(where, sizeof where, "127.0.0.1:%d", port);
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->len, 0);
	assert_non_null(r->error);
	if (strstr(r->error, where) == NULL || strstr(r->error, why) == NULL)
		fail_msg("error '%s' should name '%s' and say '%s'", r->error, where, why);
}

/* ---- the evhttp server's routes ---- */

static void echo_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	size_t len;
	const char *body = bt_http_body(req, &len);

	bt_http_reply(req, 202, "text/plain", body, len);
}

/* "<body> <client port>": which connection the request came on */
static void tagged_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	size_t len;
	const char *body = bt_http_body(req, &len);
	char *addr = NULL, *text;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	text = xasprintf("%.*s %u", (int)len, body, port);
	bt_http_reply(req, 202, "text/plain", text, strlen(text));
	free(text);
}

/* the first request is answered 50 ms later, from a timer; the rest at once */
static void hold_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct fx *f = F;
	struct timeval tv = { 0, 50000 };

	if (!f->held_once) {
		f->held_once = true;
		f->held = req;
		evtimer_add(f->hold_timer, &tv);
		return;
	}
	echo_cb(req, path, query, arg);
}

static void hold_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;
	struct conn *c = &f->pipe->conns[0];
	size_t len;
	const char *body = bt_http_body(f->held, &len);

	f->unsent_when_held = c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) :
	    (size_t)-1;
	f->waiting_when_held = bt_http_pipe_waiting(f->pipe);
	bt_http_reply(f->held, 202, "text/plain", body, len);
	f->held = NULL;
}

/* ---- the raw server ---- */

static void raw_conn_close(struct raw_conn *rc)
{
	if (rc->bev == NULL)
		return;
	bufferevent_free(rc->bev);
	rc->bev = NULL;
	evtimer_del(rc->tick);
	rc->f->closed++;
}

/* one whole request off in: its head (caller frees), or NULL while it is incomplete */
static char *take_request(struct evbuffer *in)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t head, body = 0;
	char *text, *cl;

	if (end.pos < 0)
		return NULL;
	head = (size_t)end.pos + 4;
	text = xmalloc(head + 1);
	evbuffer_copyout(in, text, head);
	text[head] = '\0';
	if ((cl = strcasestr(text, "\r\nContent-Length:")) != NULL)
		body = strtoul(cl + 17, NULL, 10);
	if (evbuffer_get_length(in) < head + body) {
		free(text);
		return NULL;
	}
	evbuffer_drain(in, head + body);
	return text;
}

static void raw_act(struct raw_conn *rc, const struct canned *c)
{
	struct timeval tv = { 0, 1000 };

	switch (c->action) {
	case RAW_SILENT:
		break;
	case RAW_WRITE_CLOSE:
		rc->close_when_sent = true;
		/* FALLTHROUGH */
	case RAW_WRITE:
		bufferevent_write(rc->bev, c->bytes, strlen(c->bytes));
		break;
	case RAW_BYTEWISE:
		evbuffer_add(rc->slow, c->bytes, strlen(c->bytes));
		evtimer_add(rc->tick, &tv);
		break;
	case RAW_CLOSE:
		raw_conn_close(rc);
		break;
	}
}

static void raw_read_cb(struct bufferevent *bev, void *arg)
{
	struct raw_conn *rc = arg;
	struct fx *f = rc->f;
	char *head;
	int n;

	while (rc->bev != NULL && (head = take_request(bufferevent_get_input(bev))) != NULL) {
		n = f->requests++;
		if (n < MAX_SEEN)
			f->heads[n] = head;
		else
			free(head);
		if ((size_t)n < f->nscript)
			raw_act(rc, &f->script[n]);
	}
}

static void raw_write_cb(struct bufferevent *bev, void *arg)
{
	struct raw_conn *rc = arg;

	if (rc->close_when_sent && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		raw_conn_close(rc);
}

static void raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
	raw_conn_close(arg);
}

/* RAW_BYTEWISE: one byte, and the next on a later turn */
static void raw_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct raw_conn *rc = arg;
	struct timeval tv = { 0, 1000 };

	if (rc->bev == NULL || evbuffer_get_length(rc->slow) == 0)
		return;
	evbuffer_remove_buffer(rc->slow, bufferevent_get_output(rc->bev), 1);
	rc->f->bytewise_writes++;
	if (evbuffer_get_length(rc->slow) > 0)
		evtimer_add(rc->tick, &tv);
}

static void raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct fx *f = arg;
	struct raw_conn *rc = xcalloc(1, sizeof *rc);

	rc->f = f;
	rc->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	rc->slow = evbuffer_new();
	rc->tick = evtimer_new(f->base, raw_tick_cb, rc);
	rc->next = f->raw_conns;
	f->raw_conns = rc;
	f->accepted++;
	bufferevent_setcb(rc->bev, raw_read_cb, raw_write_cb, raw_event_cb, rc);
	bufferevent_enable(rc->bev, EV_READ | EV_WRITE);
}

/* the raw server follows script from now on, counting from request 0 */
static void raw_script(struct fx *f, const struct canned *script, size_t n)
{
	for (int i = 0; i < MAX_SEEN; i++) {
		free(f->heads[i]);
		f->heads[i] = NULL;
	}
	f->script = script;
	f->nscript = n;
	f->requests = 0;
	f->accepted = 0;
	f->closed = 0;
	f->bytewise_writes = 0;
}

/* a loopback port nothing listens on: bound a moment ago, then closed */
static int free_port(void)
{
	struct sockaddr_in sin = { 0 };
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	struct sockaddr_in sin = { 0 };
	socklen_t sl = sizeof sin;
	char *cause = NULL;

	signal(SIGPIPE, SIG_IGN);
	f->base = event_base_new();
	f->guard = evtimer_new(f->base, guard_cb, NULL);
	f->hold_timer = evtimer_new(f->base, hold_timer_cb, f);
	f->server = bt_http_server_new(f->base, "127.0.0.1", 0, &cause);
	if (f->server == NULL) {
		fprintf(stderr, "%s\n", cause);
		return -1;
	}
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", bt_http_server_port(f->server));
	bt_http_server_route(f->server, "/echo", BT_ROUTE_EXACT, echo_cb, NULL);
	bt_http_server_route(f->server, "/tagged", BT_ROUTE_EXACT, tagged_cb, NULL);
	bt_http_server_route(f->server, "/hold", BT_ROUTE_EXACT, hold_cb, NULL);

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->raw = evconnlistener_new_bind(f->base, raw_accept_cb, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16, (struct sockaddr *)&sin, sizeof sin);
	if (f->raw == NULL)
		return -1;
	getsockname(evconnlistener_get_fd(f->raw), (struct sockaddr *)&sin, &sl);
	f->raw_port = ntohs(sin.sin_port);
	snprintf(f->raw_url, sizeof f->raw_url, "http://127.0.0.1:%d/api/v1/scheduler",
	    f->raw_port);
	F = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct raw_conn *rc, *next;

	bt_http_pipe_free(f->pipe);
	for (rc = f->raw_conns; rc != NULL; rc = next) {
		next = rc->next;
		raw_conn_close(rc);
		event_free(rc->tick);
		evbuffer_free(rc->slow);
		free(rc);
	}
	raw_script(f, NULL, 0);
	evconnlistener_free(f->raw);
	bt_http_server_free(f->server);
	event_free(f->hold_timer);
	event_free(f->guard);
	event_base_free(f->base);
	free(f);
	F = NULL;
	return 0;
}

/* ---- through evhttp ---- */

/* 1,000 posts on two connections: each ends once, with its own answer, in order per connection */
static void test_many_two_connections(void **state)
{
	struct fx *f = *state;
	enum { N = 1000 };
	struct result *r = xcalloc(N, sizeof *r);
	int ports[2] = { 0, 0 }, count[2] = { 0, 0 }, last[2] = { -1, -1 };
	char url[160], body[32], *sp;

	snprintf(url, sizeof url, "%s/tagged", f->url);
	pipe_to(f, url, 2, 10);
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof body, "post-%d", i);
		post(f, &r[i], body);
	}
	assert_int_equal(bt_http_pipe_waiting(f->pipe), N);
	WAIT_FOR(f, all_ended(r, N), 4);
	run_for(f, 0.02);
	for (int i = 0; i < N; i++) {
		int port, k;

		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, 202);
		assert_null(r[i].error);
		sp = strrchr(r[i].body, ' ');
		assert_non_null(sp);
		*sp = '\0';
		assert_string_equal(r[i].body, r[i].sent);
		port = atoi(sp + 1);
		for (k = 0; k < 2 && ports[k] != 0 && ports[k] != port; k++)
			;
		if (k == 2)
			fail_msg("answers came on more than two connections");
		ports[k] = port;
		count[k]++;
		/* answers on one connection end their requests in the order they were posted */
		assert_true(r[i].seq > last[k]);
		last[k] = r[i].seq;
	}
	assert_int_equal(count[0], N / 2);
	assert_int_equal(count[1], N / 2);
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, N);
	free(r);
}

/* on one connection the callbacks run in the order of the posts */
static void test_many_one_connection(void **state)
{
	struct fx *f = *state;
	enum { N = 1000 };
	struct result *r = xcalloc(N, sizeof *r);
	char url[160], body[32];

	snprintf(url, sizeof url, "%s/echo", f->url);
	pipe_to(f, url, 1, 10);
	for (int i = 0; i < N; i++) {
		snprintf(body, sizeof body, "one-%d", i);
		post(f, &r[i], body);
	}
	WAIT_FOR(f, all_ended(r, N), 4);
	for (int i = 0; i < N; i++) {
		assert_answer(&r[i], 202, r[i].sent);
		assert_int_equal(r[i].seq, i);
	}
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, N);
	free(r);
}

/* a host name: resolved without blocking, IPv4 first (the server listens on 127.0.0.1 only) */
static void test_host_name(void **state)
{
	struct fx *f = *state;
	struct result r[2] = { 0 };
	char url[160];

	snprintf(url, sizeof url, "http://localhost:%d/echo", bt_http_server_port(f->server));
	pipe_to(f, url, 1, 5);
	post(f, &r[0], "by-name-1");
	post(f, &r[1], "by-name-2");
	WAIT_FOR(f, all_ended(r, 2), 4);
	assert_answer(&r[0], 202, "by-name-1");
	assert_answer(&r[1], 202, "by-name-2");
	results_free(r, 2);
}

/* the first answer comes late, after the others were sent: order holds */
static void test_held_answer(void **state)
{
	struct fx *f = *state;
	struct result r[3] = { 0 };
	char url[160];

	snprintf(url, sizeof url, "%s/hold", f->url);
	pipe_to(f, url, 1, 5);
	post(f, &r[0], "first");
	post(f, &r[1], "second");
	post(f, &r[2], "third");
	WAIT_FOR(f, all_ended(r, 3), 3);
	/* when the held answer left, all three requests were out and waiting */
	assert_int_equal(f->unsent_when_held, 0);
	assert_int_equal(f->waiting_when_held, 3);
	for (int i = 0; i < 3; i++) {
		assert_answer(&r[i], 202, r[i].sent);
		assert_int_equal(r[i].seq, i);
	}
	results_free(r, 3);
}

/* a callback posts the next request: a chain of twenty, in order, on the same pipe */
static void test_post_from_callback(void **state)
{
	struct fx *f = *state;
	enum { N = 20 };
	struct result r[N] = { 0 };
	char url[160], names[N][24];

	snprintf(url, sizeof url, "%s/echo", f->url);
	pipe_to(f, url, 2, 5);
	for (int i = 0; i + 1 < N; i++) {
		snprintf(names[i + 1], sizeof names[i + 1], "chain-%d", i + 1);
		r[i].then = &r[i + 1];
		r[i].then_body = names[i + 1];
	}
	post(f, &r[0], "chain-0");
	WAIT_FOR(f, all_ended(r, N), 3);
	for (int i = 0; i < N; i++) {
		assert_answer(&r[i], 202, r[i].sent);
		assert_int_equal(r[i].seq, i);
	}
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, N);
}

/* ---- failures ---- */

/* nothing listens: every request ends with status 0 and an error naming the server */
static void test_refused(void **state)
{
	struct fx *f = *state;
	struct result r[4] = { 0 };
	int port = free_port();
	char url[128];

	snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/scheduler", port);
	pipe_to(f, url, 2, 5);
	post(f, &r[0], "a");
	post(f, &r[1], "b");
	post(f, &r[2], "c");
	assert_true(bt_http_pipe_waiting(f->pipe) <= 3);
	WAIT_FOR(f, all_ended(r, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_failed(&r[i], port, "refused");
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	/* the next post tries again, and fails the same way */
	post(f, &r[3], "d");
	WAIT_FOR(f, all_ended(r, 4), 3);
	assert_failed(&r[3], port, "refused");
	run_for(f, 0.02);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i].calls, 1);
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, 4);
}

/* a server that accepts and never answers: the pipe's timeout ends the request */
static void test_timeout(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = { { RAW_SILENT, NULL }, { RAW_SILENT, NULL } };
	struct result r[2] = { 0 };
	double start, took;

	raw_script(f, script, 2);
	pipe_to(f, f->raw_url, 1, 0.3);
	start = bt_monotonic();
	post(f, &r[0], "a");
	post(f, &r[1], "b");
	WAIT_FOR(f, all_ended(r, 2), 3);
	took = bt_monotonic() - start;
	assert_int_equal(f->requests, 2);
	assert_failed(&r[0], f->raw_port, "timed out");
	assert_failed(&r[1], f->raw_port, "timed out");
	if (took < 0.25 || took > 1.5)
		fail_msg("the requests ended after %.3fs, not 0.3s", took);
	WAIT_FOR(f, f->closed == 1, 1);
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, 2);
}

/* an idle kept-alive connection the server closes is opened again for the next post */
static void test_idle_close(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" },
		{ RAW_WRITE, "HTTP/1.1 202 Accepted\r\nContent-Length: 6\r\n\r\nsecond" },
	};
	struct result r[2] = { 0 };

	raw_script(f, script, 2);
	pipe_to(f, f->raw_url, 1, 2);
	post(f, &r[0], "a");
	WAIT_FOR(f, all_ended(r, 1), 3);
	assert_answer(&r[0], 200, "first");
	/* the close reaches the pipe while nothing waits: no callback, the connection is gone */
	WAIT_FOR(f, f->pipe->conns[0].bev == NULL, 2);
	assert_int_equal(r[0].calls, 1);
	post(f, &r[1], "b");
	WAIT_FOR(f, all_ended(r, 2), 3);
	assert_answer(&r[1], 202, "second");
	assert_int_equal(f->accepted, 2);
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	results_free(r, 2);
}

/* freed with requests out and waiting: no callback afterwards, connections closed */
static void test_free_waiting(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = { { RAW_SILENT, NULL } };
	struct result r[8] = { 0 };
	char url[128];

	raw_script(f, script, 1);
	pipe_to(f, f->raw_url, 2, 5);
	for (int i = 0; i < 4; i++)
		post(f, &r[i], "never answered");
	WAIT_FOR(f, f->requests == 4, 3);
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 4);
	bt_http_pipe_free(f->pipe);
	f->pipe = NULL;
	WAIT_FOR(f, f->closed == 2, 2);

	/* freed before the loop ran: a refusal and a connect still in flight */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", free_port());
	pipe_to(f, url, 1, 5);
	post(f, &r[4], "refused");
	post(f, &r[5], "refused");
	pipe_to(f, f->url, 1, 5);
	post(f, &r[6], "connecting");
	post(f, &r[7], "connecting");
	bt_http_pipe_free(f->pipe);
	f->pipe = NULL;
	run_for(f, 0.05);
	for (int i = 0; i < 8; i++)
		assert_int_equal(r[i].calls, 0);
	assert_int_equal(f->ended, 0);
	results_free(r, 8);
}

/* ---- canned answers from the raw server ---- */

/* post n requests on one connection to the raw server following script; wait for all */
static void exchange(struct fx *f, const struct canned *script, size_t nscript,
    struct result *r, int n)
{
	char body[16];

	raw_script(f, script, nscript);
	pipe_to(f, f->raw_url, 1, 5);
	for (int i = 0; i < n; i++) {
		snprintf(body, sizeof body, "req-%d", i);
		post(f, &r[i], body);
	}
	WAIT_FOR(f, all_ended(r, n), 3);
	/* a request posted again from a callback may still wait */
	for (int i = 0; i < n; i++)
		if (r[i].then != NULL)
			return;
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
}

/* what goes on the wire: the path, Host, Content-Length, the caller's headers, the body */
static void test_request_bytes(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" },
	};
	const char *headers[] = { "Content-Type: application/x-protobuf",
	    "Mesos-Stream-Id: 1f2e", NULL };
	struct result r = { 0 };
	char *want;

	raw_script(f, script, 1);
	pipe_to(f, f->raw_url, 1, 5);
	bt_http_pipe_post(f->pipe, headers, "\x08\x01\x00", 3, done_cb, &r);
	WAIT_FOR(f, all_ended(&r, 1), 3);
	assert_answer(&r, 202, "");
	assert_int_equal(f->requests, 1);
	want = xasprintf("POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	    "Content-Length: 3\r\nContent-Type: application/x-protobuf\r\n"
	    "Mesos-Stream-Id: 1f2e\r\n\r\n", f->raw_port);
	assert_string_equal(f->heads[0], want);
	free(want);
	results_free(&r, 1);
}

/* a body handed over (bt_http_pipe_post_take) goes out as a copied one does, and is freed */
static void test_post_take(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
		    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" },
	};
	struct result r[2] = { 0 };

	raw_script(f, script, 1);
	pipe_to(f, f->raw_url, 1, 5);
	bt_http_pipe_post_take(f->pipe, NULL, xstrdup("taken"), 5, done_cb, &r[0]);
	bt_http_pipe_post_take(f->pipe, NULL, xmalloc(1), 0, done_cb, &r[1]);
	WAIT_FOR(f, all_ended(r, 2), 3);
	assert_answer(&r[0], 202, "");
	assert_answer(&r[1], 202, "");
	assert_int_equal(f->requests, 2);
	assert_non_null(strstr(f->heads[0], "Content-Length: 5\r\n"));
	assert_non_null(strstr(f->heads[1], "Content-Length: 0\r\n"));
	results_free(r, 2);
}

/*
 * Small and large bodies, copied or handed over, between calls with a
 * head too long to be made in one piece: each arrives whole and in order.
 */
static void test_body_sizes(void **state)
{
	struct fx *f = *state;
	enum { N = 6 };
	struct result r[N] = { 0 };
	size_t sizes[N] = { 10, 5000, 4095, 4096, 1, 70000 };
	char url[160], header[700], *bodies[N];
	const char *long_head[] = { header, NULL }, *const *heads;

	memset(header, 'h', sizeof header - 1);
	memcpy(header, "X-Long: ", 8);
	header[sizeof header - 1] = '\0';
	snprintf(url, sizeof url, "%s/echo", f->url);
	pipe_to(f, url, 1, 5);
	for (int i = 0; i < N; i++) {
		bodies[i] = xmalloc(sizes[i] + 1);
		for (size_t k = 0; k < sizes[i]; k++)
			bodies[i][k] = (char)('a' + (k + (size_t)i) % 26);
		bodies[i][sizes[i]] = '\0';
		heads = i % 2 == 0 ? long_head : NULL;
		if (i < 3)
			bt_http_pipe_post(f->pipe, heads, bodies[i], sizes[i], done_cb, &r[i]);
		else
			bt_http_pipe_post_take(f->pipe, heads, xstrdup(bodies[i]), sizes[i], done_cb,
			    &r[i]);
	}
	WAIT_FOR(f, all_ended(r, N), 4);
	for (int i = 0; i < N; i++) {
		assert_answer(&r[i], 202, bodies[i]);
		free(bodies[i]);
	}
	results_free(r, N);
}

/* chunks with an extension and a trailer; Transfer-Encoding wins over Content-Length */
static void test_chunked(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5;name=value\r\nhello\r\n2\r\n, \r\nA\r\nchunked wo\r\n2\r\nrl\r\n1\r\nd\r\n"
		    "0\r\nX-Checksum: 1234\r\nX-More: yes\r\n\r\n" },
		{ RAW_WRITE, "HTTP/1.1 201 Created\r\nContent-Length: 999\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n4\r\nnext\r\n0\r\n\r\n" },
		{ RAW_WRITE, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast" },
	};
	struct result r[3] = { 0 };

	exchange(f, script, 3, r, 3);
	assert_answer(&r[0], 200, "hello, chunked world");
	assert_answer(&r[1], 201, "next");
	assert_answer(&r[2], 200, "last");
	results_free(r, 3);
}

/* no Content-Length: the body runs until the server closes; requests behind it fail */
static void test_body_to_close(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE_CLOSE, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
		    "all of this\r\nuntil the end" },
	};
	static const struct canned script10[] = {
		{ RAW_WRITE_CLOSE, "HTTP/1.0 200 OK\r\n\r\nold school" },
	};
	struct result r[2] = { 0 }, r10 = { 0 };

	exchange(f, script, 1, r, 2);
	assert_answer(&r[0], 200, "all of this\r\nuntil the end");
	assert_failed(&r[1], f->raw_port, "closed");
	exchange(f, script10, 1, &r10, 1);
	assert_answer(&r10, 200, "old school");
	results_free(r, 2);
	results_free(&r10, 1);
}

/* 1xx answers are skipped: the real one ends the request */
static void test_continue(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE, "HTTP/1.1 100 Continue\r\n\r\n" },
		{ RAW_WRITE, "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nmade"
		    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-A: b\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
	};
	struct result r[2] = { 0 };

	exchange(f, script, 2, r, 2);
	assert_answer(&r[0], 201, "made");
	assert_answer(&r[1], 200, "ok");
	results_free(r, 2);
}

/* 204 and Content-Length 0 end at once, without taking the next answer's bytes */
static void test_no_body(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_SILENT, NULL },
		{ RAW_SILENT, NULL },
		{ RAW_WRITE, "HTTP/1.1 204 No Content\r\nServer: raw\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthird" },
	};
	struct result r[3] = { 0 };

	exchange(f, script, 3, r, 3);
	assert_answer(&r[0], 204, "");
	assert_answer(&r[1], 200, "");
	assert_answer(&r[2], 200, "third");
	results_free(r, 3);
}

/* an answer that comes one byte per write */
static void test_bytewise(void **state)
{
	struct fx *f = *state;
	static const char answer[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3;x=y\r\none\r\n4\r\n two\r\n0\r\nT: 1\r\n\r\n";
	static const struct canned script[] = {
		{ RAW_BYTEWISE, answer },
		{ RAW_BYTEWISE, "HTTP/1.1 100 Continue\r\n\r\n"
		    "HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nyes" },
	};
	struct result r[2] = { 0 };

	exchange(f, script, 2, r, 2);
	assert_answer(&r[0], 200, "one two");
	assert_answer(&r[1], 202, "yes");
	assert_true(f->bytewise_writes > (int)strlen(answer));
	results_free(r, 2);
}

/* two answers in one write, for two requests waiting */
static void test_pipelined_pair(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_SILENT, NULL },
		{ RAW_WRITE, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
		    "HTTP/1.1 409 Conflict\r\nContent-Length: 3\r\n\r\ntwo" },
	};
	struct result r[2] = { 0 };

	exchange(f, script, 2, r, 2);
	assert_answer(&r[0], 200, "one");
	assert_answer(&r[1], 409, "two");
	assert_true(r[0].seq < r[1].seq);
	assert_int_equal(f->accepted, 1);
	results_free(r, 2);
}

/* "Connection: close" on the first of two answers: the second request ends with status 0 */
static void test_connection_close(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_SILENT, NULL },
		/* the server leaves its side open: only the header tells */
		{ RAW_WRITE, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" },
	};
	struct result r[2] = { 0 };

	exchange(f, script, 2, r, 2);
	assert_answer(&r[0], 200, "ok");
	assert_failed(&r[1], f->raw_port, "closed");
	WAIT_FOR(f, f->closed == 1, 2);
	results_free(r, 2);
}

/* answers that cannot be read end every request waiting with status 0 and the reason */
static void expect_unreadable(struct fx *f, const char *answer, const char *why)
{
	const struct canned script[] = { { RAW_SILENT, NULL }, { RAW_WRITE, answer } };
	struct result r[2] = { 0 };

	raw_script(f, script, 2);
	pipe_to(f, f->raw_url, 1, 5);
	post(f, &r[0], "first");
	post(f, &r[1], "second");
	WAIT_FOR(f, all_ended(r, 1), 3);
	assert_failed(&r[0], f->raw_port, "cannot be read");
	assert_failed(&r[0], f->raw_port, why);
	WAIT_FOR(f, all_ended(r, 2), 1);
	assert_failed(&r[1], f->raw_port, "cannot be read");
	assert_int_equal(bt_http_pipe_waiting(f->pipe), 0);
	WAIT_FOR(f, f->closed == 1, 2);
	f->script = NULL;               /* it lives on this stack */
	f->nscript = 0;
	results_free(r, 2);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;

	expect_unreadable(f, "HTCPCP/1.0 418 I'm a teapot\r\n\r\n", "malformed status line");
	expect_unreadable(f, "HTTP/1.1 OK 200\r\n\r\n", "malformed status line");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
	    "malformed Content-Length");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\nhello",
	    "malformed Content-Length");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
	    "malformed Content-Length");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
	    "malformed chunk size");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nabc\r\n0\r\n\r\n", "chunk not followed by CRLF");
	expect_unreadable(f, "HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\n", "too long");
}

/* a header line longer than 64 KiB */
static void long_header(struct fx *f, size_t size)
{
	char *answer = xmalloc(size + 128);
	int n = sprintf(answer, "HTTP/1.1 200 OK\r\nX-Big: ");

	memset(answer + n, 'a', size);
	strcpy(answer + n + size, "\r\nContent-Length: 2\r\n\r\nok");
	expect_unreadable(f, answer, "answer line too long");
	free(answer);
}

static void test_long_header(void **state)
{
	long_header(*state, 256 * 1024);
}

/* just over the limit: the line's end comes in the read that crosses it */
static void test_long_header_just_over(void **state)
{
	long_header(*state, 64 * 1024 + 100);
}

/* an answer on a closing connection: a post from its callback goes out on a new one */
static void test_post_after_close(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_WRITE, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" },
		{ RAW_WRITE, "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nagain" },
	};
	struct result r[2] = { 0 };

	r[0].then = &r[1];
	r[0].then_body = "again";
	exchange(f, script, 2, r, 1);
	WAIT_FOR(f, all_ended(r, 2), 3);
	assert_answer(&r[0], 200, "ok");
	assert_answer(&r[1], 202, "again");
	assert_int_equal(f->requests, 2);
	results_free(r, 2);
}

/* a failed request retried from its callback is a new attempt, ended by its own answer */
static void test_retry_from_failure(void **state)
{
	struct fx *f = *state;
	static const struct canned script[] = {
		{ RAW_CLOSE, NULL },
		{ RAW_WRITE, "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nretry" },
	};
	struct result r[2] = { 0 };

	r[0].then = &r[1];
	r[0].then_body = "retry";
	exchange(f, script, 2, r, 1);
	WAIT_FOR(f, all_ended(r, 2), 3);
	assert_failed(&r[0], f->raw_port, "closed");
	WAIT_FOR(f, f->requests == 2, 2);
	run_for(f, 0.05);
	assert_answer(&r[1], 202, "retry");
	results_free(r, 2);
}

/* ---- URLs ---- */

static void test_urls(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"ftp://x", "http://", "http://h:0/", "http://h:99999/", "http://[::1/x",
		"http://h:/", "http://h:80x/", "http://[::1]x/", "http://:80/", "", NULL,
	};
	static const struct {
		const char *url, *host, *authority, *path;
		int port;
	} good[] = {
		{ "http://127.0.0.1:5050/api/v1/scheduler", "127.0.0.1", "127.0.0.1:5050",
		    "/api/v1/scheduler", 5050 },
		{ "http://[::1]:80", "::1", "[::1]:80", "/", 80 },
		{ "http://localhost", "localhost", "localhost", "/", 80 },
		{ "http://master.mesos:5050/", "master.mesos", "master.mesos:5050", "/", 5050 },
		{ "http://[fe80::1]/a/b", "fe80::1", "[fe80::1]", "/a/b", 80 },
	};
	struct bt_http_pipe *p;
	char *cause, *quoted;

	for (int i = 0; bad[i] != NULL; i++) {
		cause = NULL;
		p = bt_http_pipe_new(f->base, bad[i], 1, 1, &cause);
		if (p != NULL)
			fail_msg("'%s' was taken for a URL", bad[i]);
		assert_non_null(cause);
		quoted = xasprintf("'%s'", bad[i]);
		if (strstr(cause, quoted) == NULL)
			fail_msg("cause '%s' does not name %s", cause, quoted);
		free(quoted);
		free(cause);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		cause = NULL;
		p = bt_http_pipe_new(f->base, good[i].url, 0, 0, &cause);
		if (p == NULL)
			fail_msg("'%s': %s", good[i].url, cause);
		assert_null(cause);
		assert_string_equal(p->host, good[i].host);
		assert_string_equal(p->authority, good[i].authority);
		assert_string_equal(p->path, good[i].path);
		assert_int_equal(p->port, good[i].port);
		/* no connection count or timeout: one connection, 30 s */
		assert_int_equal(p->nconns, 1);
		assert_true(p->timeout == 30);
		assert_int_equal(bt_http_pipe_waiting(p), 0);
		bt_http_pipe_free(p);
	}
	bt_http_pipe_free(NULL);
}

/* ---- parse_answer() on buffers ---- */

struct parsed {
	int rc;
	char *why;
	struct answer a;
	struct evbuffer *in;
};

/* feed text in pieces of `piece` bytes (0: all at once) until it is done or broken */
static void parse_text(struct parsed *p, const char *text, size_t len, size_t piece)
{
	size_t off = 0;

	memset(p, 0, sizeof *p);
	p->in = evbuffer_new();
	answer_reset(&p->a);
	p->rc = PARSE_AGAIN;
	if (piece == 0)
		piece = len > 0 ? len : 1;
	while (off < len && p->rc == PARSE_AGAIN) {
		size_t n = len - off < piece ? len - off : piece;

		evbuffer_add(p->in, text + off, n);
		off += n;
		p->rc = parse_answer(&p->a, p->in, &p->why);
	}
	/* what was never fed counts as left over */
	evbuffer_add(p->in, text + off, len - off);
}

static void parsed_release(struct parsed *p)
{
	free(p->why);
	evbuffer_free(p->a.body);
	evbuffer_free(p->in);
}

static char *body_of(struct parsed *p)
{
	size_t n = evbuffer_get_length(p->a.body);
	char *s = xmalloc(n + 1);

	evbuffer_copyout(p->a.body, s, n);
	s[n] = '\0';
	return s;
}

/* done at every piece size, with this status, body and close, leaving `rest` */
static void expect_done(const char *text, int status, const char *body, bool close_after,
    const char *rest)
{
	size_t len = strlen(text);

	for (size_t piece = 0; piece <= len; piece = piece < 8 ? piece + 1 : piece * 2) {
		struct parsed p;
		char *got, *left;

		parse_text(&p, text, len, piece);
		if (p.rc != PARSE_DONE)
			fail_msg("piece %zu: rc %d (%s) for '%s'", piece, p.rc,
			    p.why != NULL ? p.why : "", text);
		assert_null(p.why);
		assert_int_equal(p.a.status, status);
		assert_int_equal(p.a.close, close_after);
		got = body_of(&p);
		assert_string_equal(got, body);
		left = xmalloc(evbuffer_get_length(p.in) + 1);
		left[evbuffer_copyout(p.in, left, evbuffer_get_length(p.in))] = '\0';
		assert_string_equal(left, rest);
		free(got);
		free(left);
		parsed_release(&p);
	}
}

/* broken, for this reason (len 0: strlen(text)) */
static void expect_error(const char *text, size_t len, const char *why)
{
	struct parsed p;

	parse_text(&p, text, len != 0 ? len : strlen(text), 0);
	if (p.rc != PARSE_ERROR)
		fail_msg("rc %d for '%.60s', wanted an error '%s'", p.rc, text, why);
	assert_non_null(p.why);
	if (strstr(p.why, why) == NULL)
		fail_msg("error '%s' should say '%s'", p.why, why);
	parsed_release(&p);
}

static void test_parse_answer(void **state)
{
	char *big;

	/* LF-only line ends */
	expect_done("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", 200, "abc", false, "");
	expect_done("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", 200, "abc",
	    false, "");
	/* header names and values in any case */
	expect_done("HTTP/1.1 201 CREATED\r\nCONTENT-LENGTH: 2\r\nCONNECTION: CLOSE\r\n\r\nok",
	    201, "ok", true, "");
	expect_done("HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	    200, "ok", false, "");
	/* chunked as the last of several codings */
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	    "4\r\n\x1f\x8b\x08\x01\r\n0\r\n\r\n", 200, "\x1f\x8b\x08\x01", false, "");
	/* spaces around the length, a reason phrase with spaces, none at all */
	expect_done("HTTP/1.1 404 Not Found Here\r\nContent-Length:\t 4 \r\n\r\nnope", 404, "nope",
	    false, "");
	expect_done("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx", 200, "x", false, "");
	/* HTTP/1.0 closes unless it keeps alive; keep-alive after close wins */
	expect_done("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, "x", true, "");
	expect_done("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", 200,
	    "x", false, "");
	/* empty lines before the status line are skipped, 1xx answers too */
	expect_done("\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
	    "Link: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny", 200, "y", false, "");
	/* 204 and 304 have no body, whatever they say; the next answer's bytes stay */
	expect_done("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200", 204, "",
	    false, "HTTP/1.1 200");
	expect_done("HTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200", 304, "", false,
	    "HTTP/1.1 200");
	expect_done("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n",
	    200, "abc", false, "HTTP/1.1 204 No Content\r\n\r\n");
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b;c\r\nz\r\n0\r\n"
	    "Trailer-One: 1\r\nTrailer-Two: 2\r\n\r\nnext", 200, "z", false, "next");

	expect_error("HTTP/2 200 OK\r\n", 0, "malformed status line");
	expect_error("HTTP/1.1 99 Low\r\n", 0, "malformed status line");
	expect_error("HTTP/1.1 600 High\r\n", 0, "malformed status line");
	expect_error("HTTP/1.1 2000 OK\r\n", 0, "malformed status line");
	expect_error("HTTP/1.1 -200 OK\r\n", 0, "malformed status line");
	expect_error("ICY 200 OK\r\n", 0, "malformed status line");
	expect_error("HTTP/1.1 200 OK\r\nX\r\n", 0, "malformed header line");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n", 0, "malformed Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length:\r\n", 0, "malformed Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n", 0,
	    "malformed Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\n", 0, "too long");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\n", 0,
	    "malformed chunk size");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4000001\r\n", 0,
	    "malformed chunk size");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n", 0,
	    "malformed chunk size");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 0,
	    "chunk not followed by CRLF");

	/* a line that never ends */
	big = xmalloc(MAX_LINE + 64);
	memset(big, 'h', MAX_LINE + 64);
	memcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
	expect_error(big, MAX_LINE + 64, "answer line too long");
	free(big);
}

/* no length, no chunks: the body is whatever comes until the close */
static void test_parse_to_close(void **state)
{
	struct parsed p;
	const char *text = "HTTP/1.1 200 OK\r\nX: y\r\n\r\npart one, ";
	char *body;

	parse_text(&p, text, strlen(text), 3);
	assert_int_equal(p.rc, PARSE_AGAIN);
	assert_int_equal(p.a.state, A_BODY_TO_CLOSE);
	assert_true(p.a.close);
	evbuffer_add(p.in, "part two", 8);
	assert_int_equal(parse_answer(&p.a, p.in, &p.why), PARSE_AGAIN);
	assert_int_equal(evbuffer_get_length(p.in), 0);
	body = body_of(&p);
	assert_string_equal(body, "part one, part two");
	free(body);
	parsed_release(&p);
}

/* the line limit holds for a line that arrives whole, too */
static void test_parse_long_line_whole(void **state)
{
	size_t n = 2 * MAX_LINE;
	char *text;
	int k;

	text = xmalloc(n + 64);
	k = sprintf(text, "HTTP/1.1 200 OK\r\nX-Big: ");
	memset(text + k, 'a', n);
	strcpy(text + k + n, "\r\nContent-Length: 2\r\n\r\nok");
	expect_error(text, strlen(text), "answer line too long");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_two_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_one_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_take, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_to_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bytewise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_header_just_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_post_after_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_from_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
		cmocka_unit_test(test_parse_answer),
		cmocka_unit_test(test_parse_to_close),
		cmocka_unit_test(test_parse_long_line_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
