/*
 * http_server.c -- an evhttp server with a route table and one error path.
 *
 * evhttp accepts the connections and parses the requests; every request
 * arrives in request_cb(), which splits the raw URI itself (evhttp's own
 * parser would read "//v2/apps" as a host name), percent-decodes the path,
 * collapses repeated slashes, parses the query and calls the handler of the
 * longest matching route. The path and query handed to a handler live only
 * for the duration of the call.
 *
 * Streams keep a response open. libevent 2.1 stops reading an incoming
 * connection once the request is in, so a stream turns reading back on to
 * learn at once when the peer goes away; evhttp then fails the connection,
 * detaches the unfinished request from it and calls our close callback,
 * where the request is freed and the owner told. A stream that must not be
 * chunked is answered as HTTP/1.0 with "Connection: close": its body runs
 * until the connection closes.
 *
 * With bt_http_set_gate() an answer is built at once but evhttp may be
 * told to send it later (relay: once what its handler committed is on
 * disk); evhttp allows a request to be answered later. With
 * bt_http_server_admit() a request may wait before its handler runs at
 * all (relay: its launch backlog), handed on later by the owner.
 *
 * Every reply leaves through http_flush.c: written at the end of the loop
 * turn that made it, together with the replies to the requests a client
 * pipelined behind it.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "http_flush.h"
#include "http_server.h"
#include <event2/http_struct.h>         /* after http.h, which it needs */
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define MAX_BODY_SIZE           (64 << 20)
#define IDLE_TIMEOUT            120             /* seconds for a keep-alive connection */
#define STREAM_READ_LIMIT       65536           /* bytes a stream's peer may send us */
#define LISTEN_BACKLOG          4096            /* the kernel caps it at net.core.somaxconn */

struct route {
	char *path;
	size_t len;
	int mode;
	bt_http_handler_cb cb;
	void *arg;
};

struct bt_http_server {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct route *routes;
	size_t nroutes;
	bt_http_handler_cb fallback;
	void *fallback_arg;
	bt_http_admit_cb admit;         /* may hold a request back (bt_http_server_admit) */
	void *admit_arg;
	struct event *accept_pause;     /* re-enables accepting after running out of descriptors */
	double emfile_logged;           /* monotonic time of the last such warning */
	struct bt_http_server *next;    /* in `servers` */
};

/* every server of the process: a listener's error callback finds its own here */
static struct bt_http_server *servers;

struct bt_http_stream {
	struct evhttp_request *req;
	struct evhttp_connection *evcon;        /* NULL once the connection is gone */
	size_t max_buffered;
	bt_http_stream_closed_cb closed_cb;
	void *arg;
	char *peer;
	int in_closed_cb;
};

static const char *reason_phrase(int code)
{
	switch (code) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	}
	if (code >= 200 && code < 300)
		return "OK";
	if (code >= 400 && code < 500)
		return "Bad Request";
	return "Error";
}

/* percent-decode, refusing an encoded NUL; NULL when malformed */
static char *uri_decode(const char *s, size_t len, int plus)
{
	char *raw = xstrndup(s, len), *dec;
	size_t n;

	dec = evhttp_uridecode(raw, plus, &n);
	free(raw);
	if (dec == NULL)
		return NULL;
	if (strlen(dec) != n) {
		free(dec);
		return NULL;
	}
	return dec;
}

/* decode the path, collapse "//" and drop one trailing slash (not of "/") */
static char *path_normalise(const char *raw, size_t len)
{
	char *dec = uri_decode(raw, len, 0), *out, *p;
	const char *q;

	if (dec == NULL)
		return NULL;
	out = p = xmalloc(strlen(dec) + 2);
	if (dec[0] != '/')
		*p++ = '/';
	for (q = dec; *q != '\0'; q++) {
		if (*q == '/' && p > out && p[-1] == '/')
			continue;
		*p++ = *q;
	}
	if (p - out > 1 && p[-1] == '/')
		p--;
	*p = '\0';
	free(dec);
	return out;
}

/* "a=1&b=x%20y&flag" into q; -1 when a part cannot be a query parameter */
static int query_parse(const char *s, size_t len, struct evkeyvalq *q)
{
	const char *end = s + len, *part, *amp, *eq;
	char *key, *value;
	int rc;

	for (part = s; part < end; part = amp + 1) {
		amp = memchr(part, '&', (size_t)(end - part));
		if (amp == NULL)
			amp = end;
		if (amp == part)
			continue;
		eq = memchr(part, '=', (size_t)(amp - part));
		key = uri_decode(part, (size_t)((eq != NULL ? eq : amp) - part), 1);
		value = eq != NULL ? uri_decode(eq + 1, (size_t)(amp - eq - 1), 1) : xstrdup("");
		rc = key != NULL && value != NULL && *key != '\0' ?
		    evhttp_add_header(q, key, value) : -1;
		free(key);
		free(value);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* split a request URI (origin or absolute form) into a clean path and query */
static int uri_split(const char *uri, char **path, struct evkeyvalq *query)
{
	const char *p = uri, *qmark, *hash;
	size_t plen;

	if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		p += strcspn(p, "/?#");
	}
	hash = p + strcspn(p, "#");
	qmark = memchr(p, '?', (size_t)(hash - p));
	plen = (size_t)((qmark != NULL ? qmark : hash) - p);
	if ((*path = path_normalise(p, plen)) == NULL)
		return -1;
	if (qmark != NULL && query_parse(qmark + 1, (size_t)(hash - qmark - 1), query) != 0) {
		free(*path);
		*path = NULL;
		return -1;
	}
	return 0;
}

static const struct route *route_find(const struct bt_http_server *s, const char *path)
{
	const struct route *best = NULL, *r;
	size_t i;

	for (i = 0; i < s->nroutes; i++) {
		r = &s->routes[i];
		if (best != NULL && r->len <= best->len)
			continue;
		if (strcmp(path, r->path) == 0)
			best = r;
		else if (r->mode == BT_ROUTE_PREFIX && strncmp(path, r->path, r->len) == 0 &&
		    (path[r->len] == '/' || r->path[r->len - 1] == '/'))
			best = r;
	}
	return best;
}

/* what answers wait for (bt_http_set_gate) */
static struct bt_http_gate gate;
static bool in_handler;
static unsigned long handler_mark;      /* the gate's mark when the handler began */

void bt_http_set_gate(const struct bt_http_gate *g)
{
	if (g != NULL)
		gate = *g;
	else
		memset(&gate, 0, sizeof gate);
}

/* parse the URI and call the route's handler, unless admission holds the request back */
static void handle(struct bt_http_server *s, struct evhttp_request *req, bool admit)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evkeyvalq query;
	const struct route *r;
	char *path = NULL;

	in_handler = true;
	handler_mark = gate.mark != NULL ? gate.mark(gate.arg) : 0;
	TAILQ_INIT(&query);
	log_debug("http: %s %s from %s", bt_http_method(req), uri, bt_http_peer(req));
	if (uri_split(uri, &path, &query) != 0) {
		bt_http_error(req, 400, "malformed request uri '%s'", uri);
		goto out;
	}
	if (admit && s->admit != NULL && !s->admit(req, path, s->admit_arg))
		goto out;
	if ((r = route_find(s, path)) != NULL)
		r->cb(req, path, &query, r->arg);
	else if (s->fallback != NULL)
		s->fallback(req, path, &query, s->fallback_arg);
	else
		bt_http_error(req, 404, "no handler for '%s'", path);
out:
	evhttp_clear_headers(&query);
	free(path);
	in_handler = false;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	handle(arg, req, true);
}

void bt_http_server_admit(struct bt_http_server *s, bt_http_admit_cb cb, void *arg)
{
	s->admit = cb;
	s->admit_arg = arg;
}

void bt_http_server_dispatch(struct bt_http_server *s, struct evhttp_request *req)
{
	handle(s, req, false);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bt_http_server *s = arg;

	evconnlistener_enable(evhttp_bound_socket_get_listener(s->bound));
}

/*
 * accept() failed. Out of descriptors the pending connection stays
 * queued and the listener would fire again at once: pause accepting for
 * a moment instead of spinning, and warn at most every ten seconds.
 */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct bt_http_server *s;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval pause = { 0, 100000 };
	double now = bt_monotonic();

	for (s = servers; s != NULL && evhttp_bound_socket_get_listener(s->bound) != l; s = s->next)
		;
	if (s == NULL)
		return;
	if (now - s->emfile_logged >= 10 || s->emfile_logged == 0) {
		log_warn("http: unable to accept a connection: %s", evutil_socket_error_to_string(err));
		s->emfile_logged = now;
	}
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	evconnlistener_disable(l);
	evtimer_add(s->accept_pause, &pause);
}

/*
 * A connection's bufferevent, as evhttp would make it, but writing up to
 * 1 MiB per writev() instead of 16 KiB: a listing of several megabytes
 * then leaves in a few turns of the loop, not hundreds.
 */
static struct bufferevent *connection_bev_cb(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);

	if (bev != NULL)
		bufferevent_set_max_single_write(bev, 1u << 20);
	return bev;
}

struct bt_http_server *bt_http_server_new(struct event_base *base, const char *ip, int port,
    char **cause)
{
	struct bt_http_server *s = xcalloc(1, sizeof *s);
	int one = 1;
	evutil_socket_t lfd;

	s->base = base;
	s->http = evhttp_new(base);
	if (s->http == NULL) {
		*cause = xstrdup("unable to create an http server");
		goto fail;
	}
	evhttp_set_max_body_size(s->http, MAX_BODY_SIZE);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(s->http, IDLE_TIMEOUT);
	evhttp_set_gencb(s->http, request_cb, s);
	s->bound = evhttp_bind_socket_with_handle(s->http, ip, (ev_uint16_t)port);
	if (s->bound == NULL) {
		*cause = xasprintf("unable to listen on '%s:%d': %s", ip, port,
		    errno != 0 ? strerror(errno) : "bind failed");
		goto fail;
	}
	/*
	 * evhttp writes a reply's head and body separately; without TCP_NODELAY
	 * Nagle's algorithm holds the body back until the client's delayed ACK,
	 * some 40 ms per request on keep-alive connections. Accepted sockets
	 * inherit it from the listening one.
	 */
	lfd = evconnlistener_get_fd(evhttp_bound_socket_get_listener(s->bound));
	(void)setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/*
	 * evhttp listens with a backlog of 128. Ten thousand agents subscribing
	 * at once, or a framework opening its connections while the loop is
	 * busy, overflow it: the kernel drops the SYN and the client waits 1,
	 * 3, 7 s to try again. As long a queue as the kernel allows instead.
	 */
	(void)listen(lfd, LISTEN_BACKLOG);
	evhttp_set_bevcb(s->http, connection_bev_cb, NULL);
	s->accept_pause = evtimer_new(base, accept_resume_cb, s);
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(s->bound), accept_error_cb);
	s->next = servers;
	servers = s;
	log_debug("http: listening on %s:%d", ip, bt_http_server_port(s));
	return s;
fail:
	bt_http_server_free(s);
	return NULL;
}

void bt_http_server_free(struct bt_http_server *s)
{
	struct bt_http_server **pp;
	size_t i;

	if (s == NULL)
		return;
	/* frees every connection; open streams hear of it through their close callback */
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->accept_pause != NULL)
		event_free(s->accept_pause);
	for (pp = &servers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	for (i = 0; i < s->nroutes; i++)
		free(s->routes[i].path);
	free(s->routes);
	free(s);
	if (servers == NULL)
		bt_http_flush_release();
}

int bt_http_server_port(const struct bt_http_server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	evutil_socket_t fd = evhttp_bound_socket_get_fd(s->bound);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

void bt_http_server_route(struct bt_http_server *s, const char *path, int mode,
    bt_http_handler_cb cb, void *arg)
{
	struct route *r;

	s->routes = xreallocarray(s->routes, s->nroutes + 1, sizeof *s->routes);
	r = &s->routes[s->nroutes++];
	r->path = xstrdup(path);
	r->len = strlen(path);
	r->mode = mode;
	r->cb = cb;
	r->arg = arg;
}

void bt_http_server_fallback(struct bt_http_server *s, bt_http_handler_cb cb, void *arg)
{
	s->fallback = cb;
	s->fallback_arg = arg;
}

static void free_body_cb(const void *data, size_t len, void *arg)
{
	free(arg);
}

/* the headers of a reply and, unless there is no body to send, its body */
/* Content-Type and Content-Length; false when the answer has no body (204, 304, HEAD) */
static bool reply_head(struct evhttp_request *req, int code, const char *content_type,
    size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	int has_body = code != 204 && code != 304 && (code < 100 || code >= 200);
	char n[32];

	if (content_type != NULL && has_body) {
		evhttp_remove_header(h, "Content-Type");
		evhttp_add_header(h, "Content-Type", content_type);
	}
	evhttp_remove_header(h, "Content-Length");
	if (!has_body)
		return false;
	snprintf(n, sizeof n, "%zu", len);
	evhttp_add_header(h, "Content-Length", n);
	return len > 0 && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD;
}

struct held_reply {
	struct evhttp_request *req;
	int code;
};

static void send_held_cb(void *arg)
{
	struct held_reply *h = arg;

	bt_http_flush_send(h->req, h->code, reason_phrase(h->code));
	free(h);
}

/* send what the request's output holds, now or once the gate lets it go */
static void send_reply(struct evhttp_request *req, int code)
{
	struct held_reply *h;

	if (gate.hold == NULL || (in_handler && gate.mark(gate.arg) == handler_mark)) {
		bt_http_flush_send(req, code, reason_phrase(code));
		return;
	}
	h = xmalloc(sizeof *h);
	h->req = req;
	h->code = code;
	gate.hold(gate.arg, send_held_cb, h);
}

static void reply(struct evhttp_request *req, int code, const char *content_type,
    const void *body, size_t len, bool take)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	bool sent = false;

	if (reply_head(req, code, content_type, len)) {
		if (take)
			sent = evbuffer_add_reference(out, body, len, free_body_cb, (void *)body) == 0;
		else
			evbuffer_add(out, body, len);
	}
	if (take && !sent)
		free((void *)body);
	send_reply(req, code);
}

void bt_http_reply(struct evhttp_request *req, int code, const char *content_type,
    const void *body, size_t len)
{
	reply(req, code, content_type, body, len, false);
}

void bt_http_reply_take(struct evhttp_request *req, int code, const char *content_type,
    char *body, size_t len)
{
	reply(req, code, content_type, body, len, true);
}

void bt_http_reply_buffer(struct evhttp_request *req, int code, const char *content_type,
    struct evbuffer *body)
{
	if (reply_head(req, code, content_type, evbuffer_get_length(body)))
		evbuffer_add_buffer(evhttp_request_get_output_buffer(req), body);
	send_reply(req, code);
}

void bt_http_reply_json(struct evhttp_request *req, int code, json_t *body)
{
	char *text = NULL;

	if (body != NULL)
		text = json_dumps(body, BT_JSON_DUMP_FLAGS);
	bt_http_reply(req, code, "application/json", text != NULL ? text : "",
	    text != NULL ? strlen(text) : 0);
	free(text);
	json_decref(body);
}

static void error_reply(struct evhttp_request *req, int code, json_t *extra, const char *fmt,
    va_list ap)
{
	char *msg = xvasprintf(fmt, ap);
	json_t *o = extra != NULL && json_is_object(extra) ? extra : json_object();
	json_t *m = json_string(msg);

	if (o != extra)
		json_decref(extra);
	if (m == NULL)
		m = json_string("(message is not valid utf-8)");
	log_debug("http: %d %s", code, msg);
	json_object_set_new(o, "message", m);
	free(msg);
	bt_http_reply_json(req, code, o);
}

void bt_http_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_reply(req, code, NULL, fmt, ap);
	va_end(ap);
}

void bt_http_error_json(struct evhttp_request *req, int code, json_t *extra, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_reply(req, code, extra, fmt, ap);
	va_end(ap);
}

const char *bt_http_header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

void bt_http_add_header(struct evhttp_request *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

const char *bt_http_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);

	*len = n;
	if (n == 0)
		return "";
	return (const char *)evbuffer_pullup(in, -1);
}

const char *bt_http_peer(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port;

	if (evcon == NULL)
		return "";
	evhttp_connection_get_peer(evcon, &addr, &port);
	return addr != NULL ? addr : "";
}

const char *bt_http_method(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "UNKNOWN";
}

int bt_http_query_bool(const struct evkeyvalq *q, const char *name, int def)
{
	const char *v = evhttp_find_header(q, name);

	if (v == NULL)
		return def;
	if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
		return 1;
	if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return 0;
	return -1;
}

const char *bt_http_query(const struct evkeyvalq *q, const char *name)
{
	return evhttp_find_header(q, name);
}

char *bt_http_content_type(struct evhttp_request *req)
{
	const char *v = bt_http_header(req, "Content-Type");
	size_t n;
	char *out, *p;

	if (v == NULL)
		return NULL;
	v += strspn(v, " \t");
	n = strcspn(v, ";");
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0)
		return NULL;
	out = xstrndup(v, n);
	for (p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

/* the connection went away (peer closed, error, dropped, or server freed) */
static void stream_conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct bt_http_stream *st = arg;

	st->evcon = NULL;
	/*
	 * When the peer closed, evhttp detached the unfinished request from
	 * the connection and left it to us; otherwise the connection frees it
	 * right after this callback.
	 */
	if (evhttp_request_get_connection(st->req) == NULL)
		evhttp_send_reply_end(st->req);
	st->req = NULL;
	log_debug("http: stream to %s closed", st->peer);
	st->in_closed_cb = 1;
	if (st->closed_cb != NULL)
		st->closed_cb(st, st->arg);
	free(st->peer);
	free(st);
}

/*
 * HTTP/1.0 framing: no chunks, the body ends when the connection does.
 * The request must not ask for keep-alive either, or evhttp would answer
 * with "Content-Length: 0".
 */
static void unchunked_framing(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	req->minor = 0;
	evhttp_remove_header(in, "Connection");
	evhttp_add_header(in, "Connection", "close");
	evhttp_remove_header(out, "Connection");
	evhttp_add_header(out, "Connection", "close");
}

/* a stream whose request lost its connection is returned dead: its first write fails */
struct bt_http_stream *bt_http_stream_start(struct evhttp_request *req, int code,
    const char *content_type, bool chunked, size_t max_buffered,
    bt_http_stream_closed_cb closed_cb, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct bufferevent *bev;
	struct bt_http_stream *st;

	st = xcalloc(1, sizeof *st);
	st->max_buffered = max_buffered;
	st->closed_cb = closed_cb;
	st->arg = arg;
	if (evcon == NULL) {
		/* the peer left before the answer: the first write reports it */
		log_warn("http: stream requested on a closed connection");
		st->peer = xstrdup("");
		evhttp_send_reply_end(req);
		return st;
	}
	st->req = req;
	st->evcon = evcon;
	st->peer = xstrdup(bt_http_peer(req));
	if (content_type != NULL) {
		evhttp_remove_header(h, "Content-Type");
		evhttp_add_header(h, "Content-Type", content_type);
	}
	evhttp_remove_header(h, "Content-Length");
	if (!chunked || req->minor == 0)
		unchunked_framing(req);
	evhttp_send_reply_start(req, code, reason_phrase(code));
	bev = evhttp_connection_get_bufferevent(evcon);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, STREAM_READ_LIMIT);
	bufferevent_enable(bev, EV_READ);
	evhttp_connection_set_closecb(evcon, stream_conn_closed_cb, st);
	log_debug("http: stream to %s started (%s)", st->peer, chunked ? "chunked" : "raw");
	return st;
}

size_t bt_http_stream_buffered(const struct bt_http_stream *st)
{
	if (st->evcon == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(st->evcon)));
}

int bt_http_stream_write(struct bt_http_stream *st, const void *data, size_t len)
{
	struct evbuffer *buf;
	size_t queued;

	if (st->in_closed_cb)
		return -1;
	if (st->evcon == NULL) {
		/* only a stream that never had a connection gets here */
		st->in_closed_cb = 1;
		if (st->closed_cb != NULL)
			st->closed_cb(st, st->arg);
		free(st->peer);
		free(st);
		return -1;
	}
	if (len == 0)
		return 0;
	queued = bt_http_stream_buffered(st);
	if (queued > 0 && queued + len > st->max_buffered) {
		log_warn("http: dropping slow stream to %s (%zu bytes waiting)", st->peer, queued);
		/* runs stream_conn_closed_cb, which tells the owner and frees st */
		evhttp_connection_free(st->evcon);
		return -1;
	}
	buf = evbuffer_new();
	evbuffer_add(buf, data, len);
	evhttp_send_reply_chunk(st->req, buf);
	evbuffer_free(buf);
	return 0;
}

void bt_http_stream_close(struct bt_http_stream *st)
{
	struct bufferevent *bev;
	struct timeval tv = { IDLE_TIMEOUT, 0 };

	if (st == NULL || st->in_closed_cb)
		return;
	if (st->evcon != NULL) {
		evhttp_connection_set_closecb(st->evcon, NULL, NULL);
		bev = evhttp_connection_get_bufferevent(st->evcon);
		bufferevent_set_timeouts(bev, &tv, &tv);
		evhttp_send_reply_end(st->req);
	}
	free(st->peer);
	free(st);
}

const char *bt_http_stream_peer(const struct bt_http_stream *st)
{
	return st->peer;
}
