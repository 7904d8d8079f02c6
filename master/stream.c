/*
 * stream.c -- agent streams on bare sockets.
 *
 * An agent's subscription stays open for as long as the agent runs, so
 * what each open stream costs is paid ten thousand times on a large
 * cluster. Held by evhttp, a stream keeps a connection, a bufferevent, a
 * request with its headers and body, and four evbuffers: about 3.4 KB. Here
 * the master takes the socket over once the subscription is accepted and
 * keeps only what a stream needs: the descriptor, one event and an output
 * buffer that exists only while bytes wait to be sent.
 *
 * The take-over uses evhttp's public API only. The bufferevent stops
 * watching the socket at once, and one loop turn later -- when the event
 * base has told epoll, which it does in a batch at the start of each turn
 * (main.c sets EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) -- the socket is
 * duplicated and an unconnected placeholder socket is put in its place
 * under the old descriptor number. evhttp is then given an ordinary reply,
 * which fails on the placeholder, so evhttp frees its connection and
 * request by its usual error path: its shutdown() and close() reach the
 * placeholder, never the agent's socket. (Duplicating before epoll forgot
 * the socket would leave epoll watching it under a number that is no
 * longer its own.) Records sent before the take-over wait in the output.
 *
 * The response head is written by hand (chunked for HTTP/1.1, body until
 * close for HTTP/1.0), then every record goes out as one chunk holding
 * "<len>\n<bytes>". Reads only watch for the peer going away; anything the
 * peer sends is discarded. A write error or EOF ends the stream from the
 * loop and tells the owner through closed_cb, as does a peer whose unsent
 * output passes max_buffered (then at once, like bt_http_stream_write).
 */
#include "master.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event_struct.h>
#include <event2/http_struct.h>

#include "http_server.h"
#include "keep.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

struct master_stream {
	struct event ev;
	int fd;                         /* -1: not taken over (yet) */
	struct evhttp_request *req;     /* until the take-over */
	struct event *take_ev;          /* the take-over, a loop turn after the request */
	char *head;                     /* the response head, until the take-over */
	bool chunked;
	bool writing;                   /* ev also waits for EV_WRITE */
	bool broken;                    /* a write failed: end it from the loop */
	bool in_closed_cb;
	bool dirty;                     /* in `dirty`: output waits for the end of the loop turn */
	TAILQ_ENTRY(master_stream) dentry;
	size_t max_buffered;
	struct evbuffer *out;           /* NULL while nothing waits */
	master_stream_closed_cb closed_cb;
	void *arg;
};

static void stream_event_cb(evutil_socket_t fd, short what, void *arg);
static int flush(struct master_stream *st);
static void stream_end(struct master_stream *st);
static void watch(struct master_stream *st, bool writing);

/*
 * Records are buffered and the stream joins `dirty`; once the turn's
 * other callbacks have run, each dirty stream is written with one write --
 * the ten launches an agent gets from one ACCEPT, or the acknowledgements
 * of its ten updates, leave in one write, not ten. On loopback a write
 * costs the sender the receiver's TCP processing too, so the writes, not
 * the bytes, are what a busy master pays for. A busy master's turns are
 * short (a few requests each), so the flushes are spaced at least
 * FLUSH_SPACING apart: an agent's acknowledgements, sent by the framework
 * over several connections and read over several turns, still leave in one
 * write. An idle master flushes at the end of the turn.
 */
#define FLUSH_SPACING 0.001

static TAILQ_HEAD(, master_stream) dirty = TAILQ_HEAD_INITIALIZER(dirty);
static struct event *flush_ev;
static double last_flush;       /* monotonic */

static void undirty(struct master_stream *st)
{
	if (st->dirty) {
		TAILQ_REMOVE(&dirty, st, dentry);
		st->dirty = false;
	}
}

static void flush_dirty_cb(evutil_socket_t unused, short what, void *arg)
{
	struct master_stream *st;

	last_flush = bt_monotonic();
	while ((st = TAILQ_FIRST(&dirty)) != NULL) {
		undirty(st);
		if (flush(st) != 0) {
			stream_end(st);
			continue;
		}
		watch(st, st->out != NULL);
	}
}

static void mark_dirty(struct master_stream *st)
{
	if (st->dirty || st->writing)
		return;
	if (flush_ev == NULL)
		flush_ev = event_new(event_get_base(&st->ev), -1, 0, flush_dirty_cb, NULL);
	if (TAILQ_EMPTY(&dirty)) {
		double wait = last_flush + FLUSH_SPACING - bt_monotonic();
		struct timeval tv = bt_timeval(wait);

		if (wait > 0)
			evtimer_add(flush_ev, &tv);
		else
			event_active(flush_ev, 0, 0);
	}
	TAILQ_INSERT_TAIL(&dirty, st, dentry);
	st->dirty = true;
}

static void watch(struct master_stream *st, bool writing)
{
	struct event_base *base = event_get_base(&st->ev);

	if (st->writing == writing && event_initialized(&st->ev))
		return;
	if (event_initialized(&st->ev))
		event_del(&st->ev);
	event_assign(&st->ev, base, st->fd, EV_READ | EV_PERSIST | (writing ? EV_WRITE : 0),
	    stream_event_cb, st);
	event_add(&st->ev, NULL);
	st->writing = writing;
}

static void stream_free(struct master_stream *st)
{
	if (st->take_ev != NULL) {
		/* not taken over: evhttp keeps the connection and ends it with an error */
		event_free(st->take_ev);
		bt_http_error(st->req, 503, "the stream was closed before it opened");
	}
	undirty(st);
	free(st->head);
	if (st->fd >= 0) {
		event_del(&st->ev);
		close(st->fd);
	}
	if (st->out != NULL)
		evbuffer_free(st->out);
	free(st);
}

/* the peer went away or the stream was dropped: tell the owner, then free */
static void stream_end(struct master_stream *st)
{
	st->in_closed_cb = true;
	if (st->closed_cb != NULL)
		st->closed_cb(st, st->arg);
	stream_free(st);
}

/* send what waits; -1 when the socket failed */
static int flush(struct master_stream *st)
{
	while (st->out != NULL && evbuffer_get_length(st->out) > 0) {
		int n = evbuffer_write(st->out, st->fd);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			return -1;
		}
		if (n == 0)
			return 0;
	}
	if (st->out != NULL) {
		evbuffer_free(st->out);
		st->out = NULL;
	}
	return 0;
}

/* read and discard (a bounded amount per call, for fairness); -1 on EOF or error */
static int drain_input(int fd)
{
	char buf[1024];

	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
	return 0;
}

static void stream_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_stream *st = arg;

	if (st->broken || ((what & EV_READ) && drain_input(st->fd) != 0)) {
		log_debug("agent stream on fd %d closed", st->fd);
		stream_end(st);
		return;
	}
	if ((what & EV_WRITE) && flush(st) != 0) {
		stream_end(st);
		return;
	}
	watch(st, st->out != NULL);
}

/* the status line and headers, by hand */
static char *response_head(struct evhttp_request *req, const char *content_type,
    const char *stream_id, bool chunked)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return xasprintf("HTTP/1.%d 200 OK\r\nContent-Type: %s\r\nMesos-Stream-Id: %s\r\n"
	    "Date: %s\r\n%s\r\n", chunked ? 1 : 0, content_type, stream_id, date,
	    chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
}

/*
 * Leave evhttp with a placeholder under fd and a reply to fail on; returns
 * the duplicated socket, or -1 (the request is then answered with 500).
 */
static int take_socket(struct evhttp_request *req, struct evhttp_connection *evcon,
    struct evbuffer *pending)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	int fd = bufferevent_getfd(bev), own, hole, err;

	own = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	hole = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (own < 0 || hole < 0 || dup3(hole, fd, O_CLOEXEC) < 0) {
		err = errno;
		log_warn("agent stream: unable to take the connection over: %s", strerror(err));
		if (own >= 0)
			close(own);
		if (hole >= 0)
			close(hole);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		bt_http_error(req, 500, "unable to open the stream: %s", strerror(err));
		return -1;
	}
	close(hole);
	/* a reply evhttp has not sent yet goes first */
	evbuffer_prepend_buffer(pending, bufferevent_get_output(bev));
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	evhttp_send_reply(req, 200, "OK", NULL);
	return own;
}

/* a loop turn after the request: epoll has forgotten the socket, so it can change hands */
static void take_cb(evutil_socket_t unused, short what, void *arg)
{
	struct master_stream *st = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(st->req);

	event_free(st->take_ev);
	st->take_ev = NULL;
	evbuffer_prepend(st->out, st->head, strlen(st->head));
	free(st->head);
	st->head = NULL;
	if (evcon == NULL || (st->fd = take_socket(st->req, evcon, st->out)) < 0) {
		st->fd = -1;
		st->broken = true;
		stream_end(st);
		return;
	}
	st->req = NULL;
	bt_keep_descriptors(event_get_base(&st->ev), st->fd);
	evutil_make_socket_nonblocking(st->fd);
	event_assign(&st->ev, event_get_base(&st->ev), st->fd, EV_READ | EV_PERSIST,
	    stream_event_cb, st);
	st->writing = false;
	event_add(&st->ev, NULL);
	if (flush(st) != 0)
		st->broken = true;
	watch(st, st->out != NULL || st->broken);
}

struct master_stream *master_stream_take(struct event_base *base, struct evhttp_request *req,
    const char *content_type, const char *stream_id, size_t max_buffered,
    master_stream_closed_cb closed_cb, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct master_stream *st;
	struct timeval now = { 0, 0 };

	bt_keep_begin();        /* a stream lasts as long as its agent's or framework's subscription */
	st = xcalloc(1, sizeof *st);
	bt_keep_end();

	st->fd = -1;
	st->max_buffered = max_buffered;
	st->closed_cb = closed_cb;
	st->arg = arg;
	st->chunked = !(req->major == 1 && req->minor == 0);
	/* the base for take_cb's event_assign */
	event_assign(&st->ev, base, -1, 0, stream_event_cb, st);
	if (evcon == NULL) {
		/* the peer left before the answer: the first write reports it */
		log_warn("agent stream requested on a closed connection");
		evhttp_send_reply_end(req);
		return st;
	}
	bt_keep_descriptors(base, bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)));
	st->req = req;
	st->out = evbuffer_new();
	st->head = response_head(req, content_type, stream_id, st->chunked);
	bufferevent_disable(evhttp_connection_get_bufferevent(evcon), EV_READ | EV_WRITE);
	st->take_ev = evtimer_new(base, take_cb, st);
	evtimer_add(st->take_ev, &now);
	return st;
}

int master_stream_send(struct master_stream *st, const void *rec, size_t len)
{
	char pre[48], size[24];
	int npre, nsize = 0;
	size_t total, queued;

	if (st->in_closed_cb)
		return -1;
	if (st->fd < 0 && st->take_ev == NULL) {
		stream_end(st);
		return -1;
	}
	if (st->broken || len == 0)
		return 0;
	npre = snprintf(pre, sizeof pre, "%zu\n", len);
	if (st->chunked)
		nsize = snprintf(size, sizeof size, "%zx\r\n", (size_t)npre + len);
	total = (size_t)nsize + (size_t)npre + len + (st->chunked ? 2 : 0);
	queued = st->out != NULL ? evbuffer_get_length(st->out) : 0;
	if (queued > 0 && queued + total > st->max_buffered) {
		log_warn("dropping slow agent stream on fd %d (%zu bytes waiting)", st->fd, queued);
		stream_end(st);
		return -1;
	}
	if (st->out == NULL)
		st->out = evbuffer_new();
	if (st->chunked)
		evbuffer_add(st->out, size, (size_t)nsize);
	evbuffer_add(st->out, pre, (size_t)npre);
	evbuffer_add(st->out, rec, len);
	if (st->chunked)
		evbuffer_add(st->out, "\r\n", 2);
	if (st->fd >= 0)
		mark_dirty(st);
	return 0;
}

void master_stream_close(struct master_stream *st)
{
	if (st == NULL || st->in_closed_cb)
		return;
	if (st->fd >= 0 && !st->broken) {
		if (st->chunked) {
			if (st->out == NULL)
				st->out = evbuffer_new();
			evbuffer_add(st->out, "0\r\n\r\n", 5);
		}
		(void)flush(st);
		(void)drain_input(st->fd);
		shutdown(st->fd, SHUT_WR);
	}
	stream_free(st);
}
