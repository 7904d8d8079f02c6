/*
 * http_pipe.c -- short requests pipelined on a few kept-alive HTTP/1.1 connections.
 *
 * Each connection is a bufferevent and a queue of the requests written to
 * it whose answers have not been read, oldest first. A new request goes to
 * the connection with the fewest waiting; its bytes are added to the
 * bufferevent's output, which libevent writes when the socket is writable,
 * so every request of one loop turn leaves in one writev. Answers are
 * parsed as they arrive (parse_answer: status line, headers, a body by
 * Content-Length, chunks or until the close) and each ends the request at
 * the head of the queue. A close, an error, a malformed answer or a
 * connection silent for the timeout while requests wait ends every
 * request still queued on it with status 0; the next request opens it
 * again.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/util.h>

#include "http_pipe.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#define MAX_LINE (64u * 1024)           /* a status or header line */
#define MAX_BODY (64u << 20)            /* an answer's body */

struct request {
	struct request *next;
	bt_http_pipe_done_cb cb;
	void *arg;
};

enum answer_state {
	A_STATUS, A_HEADERS, A_BODY, A_BODY_TO_CLOSE, A_CHUNK_SIZE, A_CHUNK_DATA, A_CHUNK_END,
	A_TRAILERS,
};

/* what is known of the answer being read */
struct answer {
	enum answer_state state;
	int status;
	int minor;                      /* HTTP/1.<minor> */
	long long length;               /* Content-Length, or -1 */
	bool chunked;
	bool close;                     /* the server closes after it */
	size_t left;                    /* body or chunk bytes still to come */
	struct evbuffer *body;
};

struct conn {
	struct bt_http_pipe *pipe;
	struct bufferevent *bev;        /* NULL: closed */
	struct request *head, *tail;    /* written, waiting for their answers */
	size_t waiting;
	struct answer a;
};

struct bt_http_pipe {
	struct event_base *base;
	struct evdns_base *dns;
	char *host;                     /* without brackets */
	char *authority;                /* host:port, as the Host header */
	char *path;
	int port;
	int family;                     /* of the addresses tried: see conn_open() */
	double timeout;
	struct conn *conns;
	int nconns;
};

enum { PARSE_AGAIN, PARSE_DONE, PARSE_ERROR };

static void answer_reset(struct answer *a)
{
	if (a->body != NULL)
		evbuffer_drain(a->body, evbuffer_get_length(a->body));
	else
		a->body = evbuffer_new();
	a->state = A_STATUS;
	a->status = 0;
	a->minor = 1;
	a->length = -1;
	a->chunked = false;
	a->close = false;
	a->left = 0;
}

/* a CRLF- or LF-terminated line, or NULL when none is complete yet (*toolong: it cannot be) */
static char *read_line(struct evbuffer *in, bool *toolong)
{
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);

	if (line != NULL && n > MAX_LINE) {
		free(line);
		line = NULL;
		*toolong = true;
		return NULL;
	}
	*toolong = line == NULL && evbuffer_get_length(in) > MAX_LINE;
	return line;
}

/* token (case-insensitive) is one of the comma-separated items of value */
static bool has_token(const char *value, const char *token)
{
	size_t n = strlen(token);
	const char *p = value;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == ',' || p[n] == ';'))
			return true;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return false;
}

static int parse_status(struct answer *a, const char *line, char **why)
{
	int major, minor, status, used = 0;

	if (sscanf(line, "HTTP/%d.%d %3d%n", &major, &minor, &status, &used) != 3 || major != 1 ||
	    status < 100 || status > 599 || (line[used] != '\0' && line[used] != ' ')) {
		*why = xasprintf("malformed status line '%.80s'", line);
		return PARSE_ERROR;
	}
	a->status = status;
	a->minor = minor;
	a->close = minor == 0;
	a->state = A_HEADERS;
	return PARSE_AGAIN;
}

static int parse_header(struct answer *a, char *line, char **why)
{
	char *colon = strchr(line, ':'), *value, *end;
	long long n;

	if (colon == NULL) {
		*why = xasprintf("malformed header line '%.80s'", line);
		return PARSE_ERROR;
	}
	*colon = '\0';
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	if (strcasecmp(line, "Content-Length") == 0) {
		errno = 0;
		n = strtoll(value, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno != 0 || end == value || *end != '\0' || n < 0) {
			*why = xasprintf("malformed Content-Length '%.40s'", value);
			return PARSE_ERROR;
		}
		a->length = n;
	} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
		a->chunked = has_token(value, "chunked");
	} else if (strcasecmp(line, "Connection") == 0) {
		if (has_token(value, "close"))
			a->close = true;
		else if (has_token(value, "keep-alive"))
			a->close = false;
	}
	return PARSE_AGAIN;
}

/* the headers are complete: how the body comes */
static int headers_done(struct answer *a, char **why)
{
	if (a->status < 200) {
		/* 1xx: the real answer follows, with headers of its own */
		a->state = A_STATUS;
		a->length = -1;
		a->chunked = false;
		return PARSE_AGAIN;
	}
	if (a->status == 204 || a->status == 304)
		return PARSE_DONE;
	if (a->chunked) {
		a->state = A_CHUNK_SIZE;
		return PARSE_AGAIN;
	}
	if (a->length >= 0) {
		if (a->length > (long long)MAX_BODY) {
			*why = xasprintf("answer of %lld bytes is too long", a->length);
			return PARSE_ERROR;
		}
		a->left = (size_t)a->length;
		a->state = A_BODY;
		return a->left == 0 ? PARSE_DONE : PARSE_AGAIN;
	}
	a->close = true;
	a->state = A_BODY_TO_CLOSE;
	return PARSE_AGAIN;
}

static int parse_chunk_size(struct answer *a, const char *line, char **why)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(line, &end, 16);
	if (errno != 0 || end == line || !isxdigit((unsigned char)line[0]) ||
	    (*end != '\0' && *end != ';' && *end != ' ' && *end != '\t') ||
	    n > MAX_BODY || evbuffer_get_length(a->body) + n > MAX_BODY) {
		*why = xasprintf("malformed chunk size '%.40s'", line);
		return PARSE_ERROR;
	}
	a->left = (size_t)n;
	a->state = n == 0 ? A_TRAILERS : A_CHUNK_DATA;
	return PARSE_AGAIN;
}

/* move up to a->left body bytes from in; true when they are all here */
static bool take_body(struct answer *a, struct evbuffer *in)
{
	size_t n = evbuffer_get_length(in);

	if (n > a->left)
		n = a->left;
	evbuffer_remove_buffer(in, a->body, n);
	a->left -= n;
	return a->left == 0;
}

/*
 * Read as much of one answer from in as has arrived: PARSE_DONE when it is
 * complete (the next one's bytes stay in `in`), PARSE_AGAIN when more must
 * come, PARSE_ERROR with *why.
 */
static int parse_answer(struct answer *a, struct evbuffer *in, char **why)
{
	bool toolong = false;
	char *line;
	int rc;

	for (;;) {
		switch (a->state) {
		case A_STATUS:
		case A_HEADERS:
		case A_CHUNK_SIZE:
		case A_CHUNK_END:
		case A_TRAILERS:
			if ((line = read_line(in, &toolong)) == NULL) {
				if (toolong) {
					*why = xstrdup("answer line too long");
					return PARSE_ERROR;
				}
				return PARSE_AGAIN;
			}
			rc = PARSE_AGAIN;
			if (a->state == A_STATUS)
				rc = line[0] == '\0' ? PARSE_AGAIN : parse_status(a, line, why);
			else if (a->state == A_HEADERS)
				rc = line[0] == '\0' ? headers_done(a, why) : parse_header(a, line, why);
			else if (a->state == A_CHUNK_SIZE)
				rc = parse_chunk_size(a, line, why);
			else if (a->state == A_CHUNK_END && line[0] != '\0') {
				*why = xstrdup("chunk not followed by CRLF");
				rc = PARSE_ERROR;
			} else if (a->state == A_CHUNK_END)
				a->state = A_CHUNK_SIZE;
			else if (line[0] == '\0')
				rc = PARSE_DONE;        /* the end of the trailers */
			free(line);
			if (rc != PARSE_AGAIN)
				return rc;
			break;
		case A_BODY:
			return take_body(a, in) ? PARSE_DONE : PARSE_AGAIN;
		case A_CHUNK_DATA:
			if (!take_body(a, in))
				return PARSE_AGAIN;
			a->state = A_CHUNK_END;
			break;
		case A_BODY_TO_CLOSE:
			if (evbuffer_get_length(a->body) + evbuffer_get_length(in) > MAX_BODY) {
				*why = xstrdup("answer too long");
				return PARSE_ERROR;
			}
			evbuffer_add_buffer(a->body, in);
			return PARSE_AGAIN;
		}
	}
}

/* ---- connections ---- */

static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_read_cb(struct bufferevent *bev, void *arg);

static struct request *pop(struct conn *c)
{
	struct request *q = c->head;

	if (q != NULL) {
		if ((c->head = q->next) == NULL)
			c->tail = NULL;
		c->waiting--;
	}
	return q;
}

/*
 * The connection is done with: the requests still on it are taken off it
 * (so that a callback posting again gets a fresh connection, never this
 * one) and end with status 0.
 */
static void conn_close(struct conn *c, const char *why)
{
	struct request *q, *list = c->head;
	size_t n = c->waiting;
	char *error;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->head = c->tail = NULL;
	c->waiting = 0;
	if (list == NULL)
		return;
	error = xasprintf("connection to %s %s", c->pipe->authority, why);
	log_debug("http pipe: %s (%zu requests end)", error, n);
	while ((q = list) != NULL) {
		list = q->next;
		q->cb(0, NULL, 0, error, q->arg);
		free(q);
	}
	free(error);
}

/* q's answer is complete: report it (an empty body as "") */
static void answered(struct request *q, struct answer *a)
{
	size_t n = evbuffer_get_length(a->body);
	const char *body = n > 0 ? (const char *)evbuffer_pullup(a->body, -1) : "";

	q->cb(a->status, body, n, NULL, q->arg);
	free(q);
}

/*
 * The answer to the head request is complete and the server closes after
 * it: the connection is closed first, so that what the callback posts goes
 * to a new one, then the request is answered and the rest end.
 */
static void answered_last(struct conn *c, const char *why)
{
	struct request *q = pop(c);
	struct conn rest = *c;
	struct answer a = c->a;

	c->head = c->tail = NULL;
	c->waiting = 0;
	c->a.body = NULL;               /* a fresh one when the connection opens again */
	conn_close(c, why);
	answered(q, &a);
	evbuffer_free(a.body);
	rest.bev = NULL;
	conn_close(&rest, why);
}

/* waiting requests bound how long the connection may stay silent */
static void arm_timeout(struct conn *c)
{
	struct timeval tv = bt_timeval(c->pipe->timeout);

	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, c->head != NULL ? &tv : NULL, &tv);
}

/* callbacks are deferred to the loop: none runs inside bt_http_pipe_post() */
static int conn_open(struct conn *c)
{
	struct bt_http_pipe *p = c->pipe;

	c->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		conn_close(c, "could not be opened: out of sockets");
		return -1;
	}
	answer_reset(&c->a);
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	arm_timeout(c);
	/*
	 * A connection goes to the first address the name resolves to; a
	 * name is asked for IPv4 first (where "localhost" is also ::1, a
	 * master listening on 0.0.0.0 would refuse that), and for any family
	 * once IPv4 found nothing.
	 */
	if (bufferevent_socket_connect_hostname(c->bev, p->dns, p->family, p->host, p->port) != 0) {
		conn_close(c, "could not be opened");
		return -1;
	}
	return 0;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char *why;
	int err;

	if (what & BEV_EVENT_CONNECTED) {
		evutil_socket_t fd = bufferevent_getfd(bev);
		int one = 1;
		/* requests are written whole and at once: Nagle would only hold them back */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		why = xasprintf("timed out after %gs", c->pipe->timeout);
	} else if (what & BEV_EVENT_EOF) {
		if (c->a.state == A_BODY_TO_CLOSE && c->head != NULL) {
			/* the body ran until the close: that is the answer */
			answered_last(c, "was closed by the server");
			return;
		}
		why = xstrdup("was closed by the server");
	} else if ((err = bufferevent_socket_get_dns_error(bev)) != 0) {
		why = xasprintf("failed: unable to resolve '%s': %s", c->pipe->host,
		    evutil_gai_strerror(err));
		c->pipe->family = AF_UNSPEC;    /* the next attempt asks for any address */
	} else {
		err = EVUTIL_SOCKET_ERROR();
		why = xasprintf("failed: %s", evutil_socket_error_to_string(err));
	}
	conn_close(c, why);
	free(why);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct request *q;
	char *why = NULL, *error;
	int rc;

	while (evbuffer_get_length(in) > 0) {
		if (c->head == NULL) {
			conn_close(c, "sent bytes nobody asked for");
			return;
		}
		rc = parse_answer(&c->a, in, &why);
		if (rc == PARSE_AGAIN)
			break;
		if (rc == PARSE_ERROR) {
			error = xasprintf("sent an answer that cannot be read: %s", why);
			free(why);
			conn_close(c, error);
			free(error);
			return;
		}
		if (c->a.close) {
			answered_last(c, "was closed by the server after an answer");
			return;
		}
		q = pop(c);
		answered(q, &c->a);
		answer_reset(&c->a);
	}
	arm_timeout(c);
}

/* ---- the pipe ---- */

/* "http://host:port/path" into its parts */
static int parse_url(struct bt_http_pipe *p, const char *url, char **cause)
{
	const char *h, *end, *slash;
	char *port_end;
	long port = 80;

	if (strncmp(url, "http://", 7) != 0) {
		*cause = xasprintf("unsupported URL '%s': only http:// is served", url);
		return -1;
	}
	h = url + 7;
	slash = strchr(h, '/');
	end = slash != NULL ? slash : h + strlen(h);
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (close == NULL)
			goto bad;
		p->host = xstrndup(h + 1, (size_t)(close - h - 1));
		h = close + 1;
	} else {
		const char *colon = memchr(h, ':', (size_t)(end - h));
		p->host = xstrndup(h, (size_t)((colon != NULL ? colon : end) - h));
		h = colon != NULL ? colon : end;
	}
	if (*h == ':') {
		errno = 0;
		port = strtol(h + 1, &port_end, 10);
		if (errno != 0 || port_end != end || port < 1 || port > 65535)
			goto bad;
	} else if (h != end) {
		goto bad;
	}
	if (p->host[0] == '\0')
		goto bad;
	p->port = (int)port;
	/* an IPv6 literal is what it is; a name or IPv4 literal is tried as IPv4 first */
	p->family = strchr(p->host, ':') != NULL ? AF_INET6 : AF_INET;
	p->authority = xstrndup(url + 7, (size_t)(end - url - 7));
	p->path = xstrdup(slash != NULL ? slash : "/");
	return 0;
bad:
	*cause = xasprintf("malformed URL '%s'", url);
	return -1;
}

struct bt_http_pipe *bt_http_pipe_new(struct event_base *base, const char *url,
    int connections, double timeout, char **cause)
{
	struct bt_http_pipe *p = xcalloc(1, sizeof *p);

	if (parse_url(p, url, cause) != 0) {
		bt_http_pipe_free(p);
		return NULL;
	}
	p->base = base;
	p->timeout = timeout > 0 ? timeout : 30;
	p->nconns = connections > 0 ? connections : 1;
	p->conns = xcalloc((size_t)p->nconns, sizeof *p->conns);
	for (int i = 0; i < p->nconns; i++)
		p->conns[i].pipe = p;
	p->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (p->dns == NULL)
		p->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	return p;
}

void bt_http_pipe_free(struct bt_http_pipe *p)
{
	struct request *q;

	if (p == NULL)
		return;
	for (int i = 0; i < p->nconns; i++) {
		struct conn *c = &p->conns[i];
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		while ((q = pop(c)) != NULL)
			free(q);
		if (c->a.body != NULL)
			evbuffer_free(c->a.body);
	}
	if (p->dns != NULL)
		evdns_base_free(p->dns, 0);
	free(p->conns);
	free(p->host);
	free(p->authority);
	free(p->path);
	free(p);
}

/* bodies this large are handed to the output buffer, not copied (ACCEPTs of many tasks) */
#define REFERENCE_MIN 4096

static void body_free_cb(const void *data, size_t len, void *arg)
{
	free(arg);
}

/* queue a request on the least busy connection; body is copied, or taken when take */
/*
 * The request line and headers, in one piece: written with the body into
 * the tail of the output buffer, a run of small calls shares its chunks
 * instead of allocating a few for each.
 */
static void head_add(struct evbuffer *out, const struct bt_http_pipe *p,
    const char *const *headers, size_t len)
{
	char stack[512], *head = stack;
	const char *const *h;
	size_t need = strlen(p->path) + strlen(p->authority) + 80, n;

	for (h = headers; h != NULL && *h != NULL; h++)
		need += strlen(*h) + 2;
	if (need > sizeof stack)
		head = xmalloc(need);
	n = (size_t)snprintf(head, need, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n",
	    p->path, p->authority, len);
	for (h = headers; h != NULL && *h != NULL; h++)
		n += (size_t)snprintf(head + n, need - n, "%s\r\n", *h);
	memcpy(head + n, "\r\n", 2);
	evbuffer_add(out, head, n + 2);
	if (head != stack)
		free(head);
}

static void enqueue(struct bt_http_pipe *p, const char *const *headers, const void *body,
    size_t len, bool take, bt_http_pipe_done_cb cb, void *arg)
{
	struct conn *c = &p->conns[0];
	struct request *q = xmalloc(sizeof *q);
	struct evbuffer *out;

	for (int i = 1; i < p->nconns && c->waiting > 0; i++)
		if (p->conns[i].waiting < c->waiting)
			c = &p->conns[i];
	q->next = NULL;
	q->cb = cb;
	q->arg = arg;
	if (c->tail != NULL)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->waiting++;
	if (c->bev == NULL && conn_open(c) != 0) {
		if (take)
			free((void *)body);
		return;         /* q has ended already, through conn_close() */
	}
	out = bufferevent_get_output(c->bev);
	head_add(out, p, headers, len);
	if (!take || len < REFERENCE_MIN) {
		evbuffer_add(out, body, len);
		if (take)
			free((void *)body);
	} else if (evbuffer_add_reference(out, body, len, body_free_cb, (void *)body) != 0) {
		evbuffer_add(out, body, len);
		free((void *)body);
	}
	if (c->waiting == 1)
		arm_timeout(c);
}

void bt_http_pipe_post(struct bt_http_pipe *p, const char *const *headers, const void *body,
    size_t len, bt_http_pipe_done_cb cb, void *arg)
{
	enqueue(p, headers, body, len, false, cb, arg);
}

void bt_http_pipe_post_take(struct bt_http_pipe *p, const char *const *headers, void *body,
    size_t len, bt_http_pipe_done_cb cb, void *arg)
{
	enqueue(p, headers, body, len, true, cb, arg);
}

size_t bt_http_pipe_waiting(const struct bt_http_pipe *p)
{
	size_t n = 0;

	for (int i = 0; i < p->nconns; i++)
		n += p->conns[i].waiting;
	return n;
}
