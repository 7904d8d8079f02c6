/*
 * test_http.c -- the HTTP server and client talking to each other in one
 * event loop: routing, path and query handling, error bodies, streams in
 * both framings, cancelling, peer-close detection, backpressure, refused
 * connections, many calls at once, a request over a Unix socket, and
 * answers held back by a gate.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "http_client.h"
#include "http_server.h"
#include "xmalloc.h"

struct fx {
	struct event_base *base;
	struct bt_http_server *server;
	struct bt_http_client *client;
	int port;
	char url[128];

	/* stream state */
	struct bt_http_stream *stream;
	struct event *tick;
	int ticks;
	int stream_closed;
	bool chunked;
	size_t written;
};

/* one finished (or streaming) client call */
struct result {
	int done;
	int status;
	char *body;
	size_t len;
	char *error;
	char *ctype;
	char *data;
	size_t data_len;
	int pieces;
	int responses;
	int cancel_after;
	int stop_after;
	char *te, *conn;
};

static struct fx *F;

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* run the loop until *flag is set; fail after secs */
static void run_until(struct fx *f, int *flag, double secs)
{
	struct timeval tv = { (time_t)secs, 0 };
	int timed_out = 0;
	struct event *t = evtimer_new(f->base, timeout_cb, &timed_out);

	evtimer_add(t, &tv);
	while (!*flag && !timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(t);
	if (!*flag)
		fail_msg("timed out waiting");
}

/* let the loop run for a little while */
static void run_for(struct fx *f, double secs)
{
	int flag = 0;
	struct timeval tv = { 0, (suseconds_t)(secs * 1e6) };
	struct event *t = evtimer_new(f->base, timeout_cb, &flag);

	evtimer_add(t, &tv);
	while (!flag)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(t);
}

static void result_free(struct result *r)
{
	free(r->body);
	free(r->error);
	free(r->ctype);
	free(r->data);
	free(r->te);
	free(r->conn);
}

static void done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct result *r = arg;
	const char *ct = bt_http_call_header(call, "content-type");

	r->done = 1;
	r->status = status;
	r->body = xmemdup(body != NULL ? body : "", len + 1);
	r->body[len] = '\0';
	r->len = len;
	r->error = error != NULL ? xstrdup(error) : NULL;
	r->ctype = ct != NULL ? xstrdup(ct) : NULL;
}

static void response_cb(struct bt_http_call *call, void *arg)
{
	struct result *r = arg;
	const char *te = bt_http_call_header(call, "Transfer-Encoding");
	const char *conn = bt_http_call_header(call, "Connection");

	r->responses++;
	assert_int_equal(bt_http_call_status(call), 200);
	r->te = te != NULL ? xstrdup(te) : NULL;
	r->conn = conn != NULL ? xstrdup(conn) : NULL;
}

static int data_cb(struct bt_http_call *call, const void *data, size_t len, void *arg)
{
	struct result *r = arg;

	r->data = xrealloc(r->data, r->data_len + len + 1);
	memcpy(r->data + r->data_len, data, len);
	r->data_len += len;
	r->data[r->data_len] = '\0';
	r->pieces++;
	if (r->cancel_after > 0 && r->pieces == r->cancel_after) {
		bt_http_call_cancel(call);
		bt_http_call_cancel(call);
		r->done = 1;
	}
	if (r->stop_after > 0 && r->pieces == r->stop_after)
		return -1;
	return 0;
}

static struct bt_http_call *request(struct fx *f, const char *method, const char *path,
    const char *body, struct result *r)
{
	struct bt_http_request_opts o = { 0 };
	const char *hdrs[] = { "Content-Type: text/plain; charset=UTF-8", NULL };
	char url[512];

	snprintf(url, sizeof url, "%s%s", f->url, path);
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.body = body;
	o.body_len = body != NULL ? strlen(body) : 0;
	o.timeout = 10;
	o.on_done = done_cb;
	o.arg = r;
	return bt_http_request(f->client, &o);
}

/* GET and return the finished result */
static void fetch(struct fx *f, const char *method, const char *path, const char *body,
    struct result *r)
{
	memset(r, 0, sizeof *r);
	request(f, method, path, body, r);
	run_until(f, &r->done, 10);
}

/* --- handlers --- */

static void hello_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_reply(req, 200, "text/plain", "hi", 2);
}

/* echo method, path, content type and body as JSON */
static void echo_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	size_t len;
	const char *body = bt_http_body(req, &len);
	char *ct = bt_http_content_type(req);
	json_t *o = json_pack("{s:s, s:s, s:s%, s:s?, s:s}", "method", bt_http_method(req),
	    "path", path, "body", body, len, "ctype", ct, "route", (const char *)arg);

	free(ct);
	bt_http_reply_json(req, 200, o);
}

static void query_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	const char *a = bt_http_query(query, "a"), *b = bt_http_query(query, "b");
	json_t *o = json_pack("{s:s?, s:s?, s:i, s:i, s:i, s:i, s:i}", "a", a, "b", b,
	    "t", bt_http_query_bool(query, "t", 7), "f", bt_http_query_bool(query, "f", 7),
	    "one", bt_http_query_bool(query, "one", 7),
	    "bad", bt_http_query_bool(query, "bad", 7),
	    "absent", bt_http_query_bool(query, "absent", 7));

	bt_http_reply_json(req, 200, o);
}

/* the peer's port, to tell whether a connection was reused */
static void port_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	char *addr = NULL, text[16];
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	snprintf(text, sizeof text, "%u", port);
	bt_http_reply(req, 200, "text/plain", text, strlen(text));
}

static void conflict_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_error_json(req, 409, json_pack("{s:s}", "deploymentId", "d1"),
	    "app '%s' is locked", "/x");
}

static void empty_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_reply_json(req, 204, NULL);
}

static void fallback_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	bt_http_error(req, 418, "fallback for '%s'", path);
}

static void stream_closed_cb(struct bt_http_stream *st, void *arg)
{
	struct fx *f = arg;

	assert_ptr_equal(st, f->stream);
	/* a stream that is going away refuses writes and closes */
	assert_int_equal(bt_http_stream_write(st, "x", 1), -1);
	assert_int_equal(bt_http_stream_buffered(st), 0);
	bt_http_stream_close(st);
	f->stream_closed++;
	f->stream = NULL;
	if (f->tick != NULL)
		evtimer_del(f->tick);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;
	struct timeval tv = { 0, 2000 };
	char piece[32];

	if (f->stream == NULL)
		return;
	if (f->ticks == 5) {
		/* the normal end of a short stream */
		bt_http_stream_close(f->stream);
		f->stream = NULL;
		return;
	}
	snprintf(piece, sizeof piece, "piece %d;", f->ticks++);
	assert_int_equal(bt_http_stream_write(f->stream, piece, strlen(piece)), 0);
	f->written += strlen(piece);
	evtimer_add(f->tick, &tv);
}

static void stream_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct fx *f = F;
	struct timeval tv = { 0, 2000 };

	bt_http_add_header(req, "Cache-Control", "no-cache");
	f->chunked = bt_http_query_bool(query, "chunked", 1) == 1;
	f->stream = bt_http_stream_start(req, 200, "text/event-stream", f->chunked, 1 << 20,
	    stream_closed_cb, f);
	assert_non_null(f->stream);
	assert_string_equal(bt_http_stream_peer(f->stream), "127.0.0.1");
	f->ticks = 0;
	f->written = 0;
	f->tick = evtimer_new(f->base, tick_cb, f);
	evtimer_add(f->tick, &tv);
}

/* one piece, then silence: only reading can tell that the peer left */
static void idle_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct fx *f = F;
	const char *ev = "22\n{\"type\":\"SUBSCRIBED\"}";

	f->stream = bt_http_stream_start(req, 200, "application/recordio", true, 1 << 20,
	    stream_closed_cb, f);
	assert_non_null(f->stream);
	assert_int_equal(bt_http_stream_write(f->stream, ev, strlen(ev)), 0);
}

/* a stream nobody reads: fill it until the server gives up */
static void flood_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	struct fx *f = F;

	f->stream = bt_http_stream_start(req, 200, "application/octet-stream", true, 256 << 10,
	    stream_closed_cb, f);
	assert_non_null(f->stream);
}

/* a gate whose mark counts writes; held answers wait in `held` until sent */
static unsigned long writes;
static void (*held_send)(void *ctx);
static void *held_ctx;

static unsigned long writes_mark(void *arg)
{
	return writes;
}

static void hold_answer(void *arg, void (*send)(void *ctx), void *ctx)
{
	held_send = send;
	held_ctx = ctx;
}

static void write_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	writes++;
	bt_http_reply(req, 201, "text/plain", "written", 7);
}

/* a 6000-byte answer; counts the requests it answered */
static int big_answers;
static void big_cb(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg)
{
	static char body[6000];

	memset(body, 'b', sizeof body);
	big_answers++;
	bt_http_reply(req, 200, "text/plain", body, sizeof body);
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	char *cause = NULL;

	signal(SIGPIPE, SIG_IGN);
	f->base = event_base_new();
	f->server = bt_http_server_new(f->base, "127.0.0.1", 0, &cause);
	if (f->server == NULL) {
		fprintf(stderr, "%s\n", cause);
		return -1;
	}
	f->port = bt_http_server_port(f->server);
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
	f->client = bt_http_client_new(f->base);
	bt_http_server_route(f->server, "/hello", BT_ROUTE_EXACT, hello_cb, NULL);
	bt_http_server_route(f->server, "/echo", BT_ROUTE_EXACT, echo_cb, "echo");
	bt_http_server_route(f->server, "/v2/apps", BT_ROUTE_PREFIX, echo_cb, "apps");
	bt_http_server_route(f->server, "/v2/apps/special", BT_ROUTE_EXACT, echo_cb, "special");
	bt_http_server_route(f->server, "/q", BT_ROUTE_EXACT, query_cb, NULL);
	bt_http_server_route(f->server, "/conflict", BT_ROUTE_EXACT, conflict_cb, NULL);
	bt_http_server_route(f->server, "/empty", BT_ROUTE_EXACT, empty_cb, NULL);
	bt_http_server_route(f->server, "/stream", BT_ROUTE_EXACT, stream_cb, NULL);
	bt_http_server_route(f->server, "/flood", BT_ROUTE_EXACT, flood_cb, NULL);
	bt_http_server_route(f->server, "/idle", BT_ROUTE_EXACT, idle_cb, NULL);
	bt_http_server_route(f->server, "/port", BT_ROUTE_EXACT, port_cb, NULL);
	bt_http_server_route(f->server, "/write", BT_ROUTE_EXACT, write_cb, NULL);
	bt_http_server_route(f->server, "/big", BT_ROUTE_EXACT, big_cb, NULL);
	F = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	bt_http_client_free(f->client);
	bt_http_server_free(f->server);
	if (f->tick != NULL)
		event_free(f->tick);
	event_base_free(f->base);
	free(f);
	F = NULL;
	return 0;
}

static json_t *body_json(const struct result *r)
{
	json_error_t err;
	json_t *j = json_loadb(r->body, r->len, 0, &err);

	if (j == NULL)
		fail_msg("not JSON: '%s'", r->body);
	return j;
}

/* an answer whose handler moved the gate's mark waits until the gate sends it */
static void test_gate(void **state)
{
	struct fx *f = *state;
	struct bt_http_gate gate = { writes_mark, hold_answer, NULL };
	struct result r;

	bt_http_set_gate(&gate);
	fetch(f, "GET", "/hello", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(held_send);
	result_free(&r);

	memset(&r, 0, sizeof r);
	request(f, "POST", "/write", "x", &r);
	run_for(f, 0.2);
	assert_false(r.done);
	assert_non_null(held_send);
	held_send(held_ctx);
	held_send = NULL;
	run_until(f, &r.done, 10);
	assert_int_equal(r.status, 201);
	assert_string_equal(r.body, "written");
	result_free(&r);
	bt_http_set_gate(NULL);

	/* without a gate the same answer leaves at once */
	fetch(f, "POST", "/write", "x", &r);
	assert_int_equal(r.status, 201);
	assert_null(held_send);
	result_free(&r);
}

static void test_get_post(void **state)
{
	struct fx *f = *state;
	struct result r;
	json_t *j;

	assert_true(f->port > 0);
	fetch(f, NULL, "/hello", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hi");
	assert_string_equal(r.ctype, "text/plain");
	assert_null(r.error);
	result_free(&r);

	fetch(f, "POST", "/echo", "{\"x\":1}", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "application/json");
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"x\":1}");
	assert_string_equal(json_string_value(json_object_get(j, "ctype")), "text/plain");
	json_decref(j);
	result_free(&r);

	fetch(f, "PUT", "/echo", "abc", &r);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "PUT");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "abc");
	json_decref(j);
	result_free(&r);

	fetch(f, "DELETE", "/echo", NULL, &r);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "DELETE");
	json_decref(j);
	result_free(&r);

	fetch(f, "GET", "/empty", NULL, &r);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.len, 0);
	result_free(&r);
}

static void expect_route(struct fx *f, const char *path, const char *route, const char *clean)
{
	struct result r;
	json_t *j;

	fetch(f, "GET", path, NULL, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "route")), route);
	assert_string_equal(json_string_value(json_object_get(j, "path")), clean);
	json_decref(j);
	result_free(&r);
}

static void test_routing(void **state)
{
	struct fx *f = *state;
	struct result r;
	json_t *j;

	expect_route(f, "/v2/apps", "apps", "/v2/apps");
	expect_route(f, "/v2/apps/", "apps", "/v2/apps");
	expect_route(f, "/v2/apps/a/b", "apps", "/v2/apps/a/b");
	expect_route(f, "/v2/apps/special", "special", "/v2/apps/special");
	expect_route(f, "/v2/apps/special/x", "apps", "/v2/apps/special/x");
	expect_route(f, "//v2//apps///x/", "apps", "/v2/apps/x");
	expect_route(f, "/v2/apps/my%20app", "apps", "/v2/apps/my app");

	fetch(f, "GET", "/v2/appsX", NULL, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.ctype, "application/json");
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "no handler for '/v2/appsX'");
	json_decref(j);
	result_free(&r);

	fetch(f, "GET", "/v2/apps/%00x", NULL, &r);
	assert_int_equal(r.status, 400);
	result_free(&r);

	bt_http_server_fallback(f->server, fallback_cb, NULL);
	fetch(f, "GET", "/nope", NULL, &r);
	assert_int_equal(r.status, 418);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "fallback for '/nope'");
	json_decref(j);
	result_free(&r);
}

static void test_query(void **state)
{
	struct fx *f = *state;
	struct result r;
	json_t *j;

	fetch(f, "GET", "/q?a=1&b=x%20y+z&t=True&f=false&one=1&bad=maybe&&flag", NULL, &r);
	assert_int_equal(r.status, 200);
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "a")), "1");
	assert_string_equal(json_string_value(json_object_get(j, "b")), "x y z");
	assert_int_equal(json_integer_value(json_object_get(j, "t")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "f")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "one")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "bad")), -1);
	assert_int_equal(json_integer_value(json_object_get(j, "absent")), 7);
	json_decref(j);
	result_free(&r);

	fetch(f, "GET", "/q?=x", NULL, &r);
	assert_int_equal(r.status, 400);
	j = body_json(&r);
	assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "malformed"));
	json_decref(j);
	result_free(&r);
}

static void test_error_body(void **state)
{
	struct fx *f = *state;
	struct result r;
	json_t *j;

	fetch(f, "GET", "/conflict", NULL, &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(r.ctype, "application/json");
	j = body_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	    "app '/x' is locked");
	assert_string_equal(json_string_value(json_object_get(j, "deploymentId")), "d1");
	json_decref(j);
	result_free(&r);
}

static struct bt_http_call *stream_request(struct fx *f, const char *path, struct result *r)
{
	struct bt_http_request_opts o = { 0 };
	char url[256];

	memset(r, 0, sizeof *r);
	snprintf(url, sizeof url, "%s%s", f->url, path);
	o.url = url;
	o.on_response = response_cb;
	o.on_data = data_cb;
	o.on_done = done_cb;
	o.arg = r;
	return bt_http_request(f->client, &o);
}

static void test_stream_chunked(void **state)
{
	struct fx *f = *state;
	struct result r;

	stream_request(f, "/stream", &r);
	run_until(f, &r.done, 10);
	assert_int_equal(r.status, 200);
	assert_null(r.error);
	assert_int_equal(r.responses, 1);
	assert_string_equal(r.te, "chunked");
	assert_string_equal(r.data, "piece 0;piece 1;piece 2;piece 3;piece 4;");
	assert_true(r.pieces > 1);
	assert_int_equal(r.len, 0);
	assert_int_equal(f->stream_closed, 0);
	result_free(&r);
}

static void test_stream_raw(void **state)
{
	struct fx *f = *state;
	struct result r;

	stream_request(f, "/stream?chunked=false", &r);
	run_until(f, &r.done, 10);
	assert_int_equal(r.status, 200);
	assert_null(r.error);
	assert_null(r.te);
	assert_string_equal(r.conn, "close");
	assert_string_equal(r.data, "piece 0;piece 1;piece 2;piece 3;piece 4;");
	result_free(&r);
}

static void test_cancel_in_data(void **state)
{
	struct fx *f = *state;
	struct result r;

	stream_request(f, "/stream", &r);
	r.cancel_after = 2;
	run_until(f, &r.done, 10);
	assert_int_equal(r.pieces, 2);
	/* the server notices the peer is gone without writing to it */
	run_until(f, &f->stream_closed, 10);
	assert_int_equal(f->stream_closed, 1);
	run_for(f, 0.05);
	assert_int_equal(r.pieces, 2);
	assert_int_equal(r.done, 1);
	assert_null(r.body);
	result_free(&r);
}

static void test_peer_close_idle(void **state)
{
	struct fx *f = *state;
	struct result r;

	stream_request(f, "/idle", &r);
	r.cancel_after = 1;
	run_until(f, &r.done, 10);
	assert_int_equal(r.pieces, 1);
	assert_string_equal(r.data, "22\n{\"type\":\"SUBSCRIBED\"}");
	run_until(f, &f->stream_closed, 10);
	assert_null(f->stream);
	result_free(&r);
}

static int raw_connect(int port)
{
	struct sockaddr_in sin = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

/* send raw bytes, run the loop until the server answers; returns the answer */
static char *raw_exchange(struct fx *f, const char *request)
{
	static char buf[4096];
	int fd = raw_connect(f->port), i;
	ssize_t n = -1;

	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	for (i = 0; i < 2000 && n <= 0; i++) {
		run_for(f, 0.005);
		n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
	}
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	return buf;
}

static void test_raw_requests(void **state)
{
	struct fx *f = *state;
	char *answer;

	answer = raw_exchange(f, "POST /echo HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 70000000\r\n\r\n");
	assert_non_null(strstr(answer, " 413 "));
	answer = raw_exchange(f, "GET http://example/v2/apps/x?embed=a HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(answer, "HTTP/1.1 200"));
	assert_non_null(strstr(answer, "\"path\":\"/v2/apps/x\""));
	answer = raw_exchange(f, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_non_null(strstr(answer, "Content-Length: 2"));
	assert_null(strstr(answer, "\r\n\r\nhi"));
	answer = raw_exchange(f, "GET /stream?chunked=false HTTP/1.1\r\nHost: x\r\n"
	    "Connection: keep-alive\r\n\r\n");
	assert_non_null(strstr(answer, "HTTP/1.0 200 OK"));
	assert_non_null(strstr(answer, "Connection: close"));
	assert_null(strstr(answer, "Content-Length"));
	assert_null(strstr(answer, "keep-alive"));
	run_until(f, &f->stream_closed, 10);
}

static void test_abort_from_data(void **state)
{
	struct fx *f = *state;
	struct result r;

	stream_request(f, "/stream", &r);
	r.stop_after = 1;
	run_until(f, &r.done, 10);
	assert_int_equal(r.status, 200);
	assert_non_null(r.error);
	assert_int_equal(r.pieces, 1);
	run_until(f, &f->stream_closed, 10);
	result_free(&r);
}

/* a raw client that asks for the flood and never reads */
static void test_backpressure(void **state)
{
	struct fx *f = *state;
	const char *get = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
	char chunk[16384];
	int fd, i;

	fd = raw_connect(f->port);
	assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
	while (f->stream == NULL)
		event_base_loop(f->base, EVLOOP_ONCE);
	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 100000 && f->stream != NULL; i++) {
		if (bt_http_stream_write(f->stream, chunk, sizeof chunk) != 0)
			break;
		event_base_loop(f->base, EVLOOP_NONBLOCK);
	}
	assert_int_equal(f->stream_closed, 1);
	assert_null(f->stream);
	close(fd);
}

/* status lines in what a client received */
static size_t count_answers(const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	size_t n = 0;

	while ((p = memmem(p, (size_t)(end - p), "HTTP/1.1 200", 12)) != NULL) {
		n++;
		p += 12;
	}
	return n;
}

/*
 * A client that pipelines requests and does not read the answers yet (a
 * busy framework) still has them all handled: 7.2 MB of answers, more
 * than the kernel's socket buffers hold, wait in the server for it.
 */
static void test_pipelined_unread(void **state)
{
	struct fx *f = *state;
	const char *get = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
	struct sockaddr_in sin = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 4096, flag = 0;
	size_t n = 1200, cap = n * 6400, answers = 0, total = 0, i;
	char *received = xmalloc(cap);
	struct timeval tv = { 20, 0 };
	struct event *t = evtimer_new(f->base, timeout_cb, &flag);
	ssize_t got;

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	big_answers = 0;
	evtimer_add(t, &tv);
	/* one request at a time, each sent once the one before was handled */
	for (i = 0; i < n && !flag; i++) {
		assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
		while (big_answers < (int)i + 1 && !flag)
			event_base_loop(f->base, EVLOOP_ONCE);
	}
	assert_int_equal(big_answers, (int)n);
	/* and every answer arrives once the client reads */
	while (answers < n && !flag) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		while (total < cap && (got = recv(fd, received + total, cap - total,
		    MSG_DONTWAIT)) > 0)
			total += (size_t)got;
		answers = count_answers(received, total);
	}
	event_free(t);
	close(fd);
	free(received);
	assert_int_equal(answers, n);
	assert_true(total > (n - 1) * 6000);
}

static void test_refused(void **state)
{
	struct fx *f = *state;
	struct bt_http_request_opts o = { 0 };
	struct result r = { 0 };
	struct sockaddr_in sin = { 0 };
	socklen_t sl = sizeof sin;
	char url[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	/* a port that was free a moment ago */
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
	o.url = url;
	o.on_done = done_cb;
	o.arg = &r;
	bt_http_request(f->client, &o);
	run_until(f, &r.done, 10);
	assert_int_equal(r.status, 0);
	assert_non_null(r.error);
	assert_non_null(strstr(r.error, "onnect"));
	result_free(&r);
}

static void test_reuse(void **state)
{
	struct fx *f = *state;
	struct result a, b;

	fetch(f, "GET", "/port", NULL, &a);
	fetch(f, "GET", "/port", NULL, &b);
	assert_int_equal(a.status, 200);
	assert_string_equal(a.body, b.body);
	result_free(&a);
	result_free(&b);
}

static void test_many(void **state)
{
	struct fx *f = *state;
	enum { N = 300 };
	struct result *r = xcalloc(N, sizeof *r);
	struct bt_http_call *cancelled;
	int i, all = 0, guard;

	for (i = 0; i < N; i++)
		request(f, "POST", "/echo", "x", &r[i]);
	cancelled = request(f, "GET", "/hello", NULL, &r[0]);
	bt_http_call_cancel(cancelled);
	for (guard = 0; !all && guard < 1000; guard++) {
		run_for(f, 0.01);
		all = 1;
		for (i = 0; i < N; i++)
			all &= r[i].done;
	}
	assert_true(all);
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].status, 200);
		result_free(&r[i]);
	}
	free(r);
}

/* 300 connections queued in the backlog before the server accepts one: every one is served */
static void test_many_connections_at_once(void **state)
{
	struct fx *f = *state;
	enum { N = 300 };
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	int fds[N], answered[N] = { 0 }, i, all = 0, guard;
	char buf[512];

	/* all connected (the kernel's backlog) and asking before the server accepts one */
	for (i = 0; i < N; i++) {
		fds[i] = raw_connect(f->port);
		assert_int_equal(write(fds[i], req, sizeof req - 1), (ssize_t)(sizeof req - 1));
	}
	for (guard = 0; !all && guard < 1000; guard++) {
		run_for(f, 0.01);
		all = 1;
		for (i = 0; i < N; i++) {
			ssize_t n;
			if (!answered[i] && (n = recv(fds[i], buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
				buf[n] = '\0';
				assert_non_null(strstr(buf, "HTTP/1.1 200"));
				answered[i] = 1;
			}
			all &= answered[i];
		}
	}
	assert_true(all);
	for (i = 0; i < N; i++)
		close(fds[i]);
}

/* a minimal HTTP server on a Unix socket (evhttp 2.1 cannot serve one) */
static void unix_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

/* the reply is out: close */
static void unix_write_cb(struct bufferevent *bev, void *arg)
{
	bufferevent_free(bev);
}

static void unix_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	const char *reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 11\r\nConnection: close\r\n\r\n{\"unix\":1}\n";

	if (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos < 0)
		return;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, unix_write_cb, unix_event_cb, NULL);
	bufferevent_write(bev, reply, strlen(reply));
}

static void unix_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE);

	bufferevent_setcb(bev, unix_read_cb, NULL, unix_event_cb, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void test_unix_socket(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sun = { 0 };
	struct bt_http_request_opts o = { 0 };
	struct result r = { 0 };
	struct evconnlistener *l;
	char dir[] = "/tmp/butte-http-XXXXXX";

	assert_non_null(mkdtemp(dir));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/sock", dir);
	l = evconnlistener_new_bind(f->base, unix_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
	    (struct sockaddr *)&sun, sizeof sun);
	assert_non_null(l);
	o.url = "http://localhost/v1.41/containers/json";
	o.unix_socket = sun.sun_path;
	o.on_done = done_cb;
	o.arg = &r;
	bt_http_request(f->client, &o);
	run_until(f, &r.done, 10);
	if (r.status != 200)
		fail_msg("status %d: %s", r.status, r.error != NULL ? r.error : "");
	assert_string_equal(r.body, "{\"unix\":1}\n");
	result_free(&r);
	evconnlistener_free(l);
	unlink(sun.sun_path);
	rmdir(dir);
}

/* calls still running when the client is freed get no callback */
static void test_free_with_calls(void **state)
{
	struct fx *f = *state;
	struct result r1, r2;

	memset(&r2, 0, sizeof r2);
	stream_request(f, "/stream", &r1);
	request(f, "GET", "/hello", NULL, &r2);
	run_until(f, &r1.responses, 10);
	bt_http_client_free(f->client);
	f->client = bt_http_client_new(f->base);
	assert_int_equal(r1.done, 0);
	run_until(f, &f->stream_closed, 10);
	result_free(&r1);
	result_free(&r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_post, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_in_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_from_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_close_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_unread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_calls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
