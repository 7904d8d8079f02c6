/*
 * http_flush.c -- evhttp replies written by the loop turn that made them.
 *
 * evhttp queues a reply in the connection's bufferevent, which writes it
 * once epoll reports the socket writable, and only then does evhttp read
 * the connection's next request: per request a loop turn, a wait in
 * epoll, two epoll_ctl() (without a changelist) and a write. Instead:
 *
 * - Every connection that got a reply is written once the turn's other
 *   callbacks have run (flush_cb), and when the reply went out whole, the
 *   bufferevent's write callback runs at once (bufferevent_trigger), as
 *   the writable socket would have made it: evhttp finishes the request
 *   and goes on to the next.
 * - When the next request is already in the connection's input (a client
 *   that pipelines), the reply is not written yet: evhttp is told it went
 *   out and takes the next request, whose reply joins it, and the
 *   connection's replies leave in one write once its input holds no more,
 *   or on the next turn (later_cb) -- unless the client's next requests
 *   already wait in the socket: then they are read first, and the replies
 *   wait for theirs, up to HOLD_BYTES or HOLD_SECONDS. libevent reads 4 KiB
 *   of a socket a turn, so a client that pipelines steadily would
 *   otherwise get a write per turn for a handful of requests, and on
 *   loopback each write costs the sender the receiver's TCP work too. Only
 *   replies that keep the connection open are held back so: evhttp closes
 *   the others from its write callback, which would drop what waits.
 * - Bytes the socket would not take while evhttp already reads the next
 *   request are written by an event of our own when the socket is
 *   writable (struct leftover); the bufferevent no longer watches for it.
 * - A reply the socket does not take whole (the client is not reading its
 *   answers yet) does not stop the connection either: evhttp goes on to
 *   the next request while the rest waits for the socket, up to
 *   MAX_UNSENT bytes of a connection. Beyond that evhttp waits until the
 *   socket took it all, and so stops reading what the client sends: the
 *   client's own backpressure. Without this, a client that pipelines and
 *   reads its answers only now and then (a busy framework) would find its
 *   next requests unread until it did.
 *
 * Each entry holds a reference on its bufferevent, so a connection evhttp
 * frees meanwhile keeps its socket until the entry is done with it.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>         /* after http.h, which it needs */
#include <event2/keyvalq_struct.h>

#include "http_flush.h"
#include "util.h"
#include "xmalloc.h"

#define MAX_UNSENT (8u << 20)          /* bytes of a connection's replies the socket may owe */
#define HOLD_BYTES (16u << 10)          /* replies held while the next requests wait unread */
#define HOLD_SECONDS 0.002

/* a connection whose replies evhttp counts as sent, not written yet */
struct held {
	struct bufferevent *bev;        /* a reference */
	double since;                   /* when its first reply was held */
};

struct entry {
	struct bufferevent *bev;
	bool may_hold;                  /* the connection stays open after this reply */
};

/* unsent bytes of a connection evhttp reads from again */
struct leftover {
	struct leftover *next;
	struct bufferevent *bev;
	struct event *ev;
};

static struct {
	struct entry *v;                /* the replies of this turn */
	size_t n, cap;
	struct held *held;              /* one per connection */
	size_t nheld, capheld;
	struct event *ev;               /* flush_cb, at the end of the turn */
	struct event *later;            /* later_cb, on the next turn */
	struct leftover *leftovers;
} f;

/*
 * Write what out holds to fd, as the bufferevent's own write callback does:
 * a socket bufferevent keeps its output's start frozen, so that only it
 * drains the buffer, and thaws it around each write.
 */
static int drain(struct evbuffer *out, evutil_socket_t fd)
{
	int n;

	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
	return n;
}

static void leftover_end(struct leftover *l)
{
	struct leftover **pp;

	for (pp = &f.leftovers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	event_free(l->ev);
	bufferevent_decref(l->bev);
	free(l);
}

static void leftover_cb(evutil_socket_t fd, short what, void *arg)
{
	struct leftover *l = arg;
	struct evbuffer *out = bufferevent_get_output(l->bev);
	int n = 0;

	if (evbuffer_get_length(out) > 0)
		n = drain(out, fd);
	if (evbuffer_get_length(out) > 0 &&
	    (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))))
		return;                 /* the rest when the socket takes it */
	leftover_end(l);
}

/*
 * Write what bev's output holds. true when it all went out; otherwise the
 * rest is left to whoever writes next: the bufferevent if evhttp is
 * writing a reply (it watches for the socket then), or a leftover event.
 */
static bool write_out(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct leftover *l;

	if (fd < 0)
		return false;
	while (evbuffer_get_length(out) > 0 && drain(out, fd) > 0)
		;
	if (evbuffer_get_length(out) == 0)
		return true;
	for (l = f.leftovers; l != NULL; l = l->next)
		if (l->bev == bev)
			return false;   /* its event writes the rest */
	if (!(bufferevent_get_enabled(bev) & EV_WRITE)) {
		l = xmalloc(sizeof *l);
		l->bev = bev;
		bufferevent_incref(bev);
		l->ev = event_new(bufferevent_get_base(bev), fd, EV_WRITE | EV_PERSIST, leftover_cb, l);
		event_add(l->ev, NULL);
		l->next = f.leftovers;
		f.leftovers = l;
	}
	return false;
}

/* hold bev's replies (taking the reference given); a connection held already keeps its time */
static void hold(struct bufferevent *bev, double since)
{
	size_t i;

	for (i = 0; i < f.nheld; i++)
		if (f.held[i].bev == bev) {
			bufferevent_decref(bev);
			return;
		}
	if (f.nheld == f.capheld) {
		f.capheld = f.capheld ? f.capheld * 2 : 64;
		f.held = xreallocarray(f.held, f.capheld, sizeof *f.held);
	}
	f.held[f.nheld++] = (struct held){ bev, since };
}

/* the client's next requests are in the socket already: its replies may wait for theirs */
static bool may_wait(const struct held *h, double now)
{
	evutil_socket_t fd = bufferevent_getfd(h->bev);
	int unread = 0;

	return fd >= 0 && now - h->since < HOLD_SECONDS &&
	    evbuffer_get_length(bufferevent_get_output(h->bev)) < HOLD_BYTES &&
	    ioctl(fd, FIONREAD, &unread) == 0 && unread > 0;
}

/* the replies held back leave now, but for those whose next requests wait to be read */
static void later_cb(evutil_socket_t unused, short what, void *arg)
{
	struct timeval next_turn = { 0, 0 };
	double now = bt_monotonic();
	size_t i, kept = 0;

	for (i = 0; i < f.nheld; i++) {
		if (may_wait(&f.held[i], now)) {
			f.held[kept++] = f.held[i];
			continue;
		}
		write_out(f.held[i].bev);
		bufferevent_decref(f.held[i].bev);
	}
	f.nheld = kept;
	if (kept > 0)
		evtimer_add(f.later, &next_turn);
}

static void flush_cb(evutil_socket_t unused, short what, void *arg)
{
	struct timeval next_turn = { 0, 0 };
	double now = bt_monotonic();
	struct entry e;
	size_t i;

	/* entries added while this runs are taken too */
	for (i = 0; i < f.n; i++) {
		e = f.v[i];
		if (e.may_hold && bufferevent_getfd(e.bev) >= 0 &&
		    evbuffer_get_length(bufferevent_get_input(e.bev)) > 0) {
			/* the next request is here: evhttp takes it, the replies leave together */
			bufferevent_trigger(e.bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
			hold(e.bev, now);               /* the entry's reference goes with it */
			continue;
		}
		if (write_out(e.bev)) {
			bufferevent_trigger(e.bev, EV_WRITE, 0);
		} else if (e.may_hold && bufferevent_getfd(e.bev) >= 0 &&
		    evbuffer_get_length(bufferevent_get_output(e.bev)) <= MAX_UNSENT) {
			/* evhttp goes on (and stops watching the socket); the rest leaves later */
			bufferevent_trigger(e.bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
			write_out(e.bev);
		}
		bufferevent_decref(e.bev);
	}
	f.n = 0;
	if (f.nheld > 0 && !evtimer_pending(f.later, NULL))
		evtimer_add(f.later, &next_turn);
}

/* evhttp leaves the connection open after this reply (its own test, conservatively) */
static bool keeps_open(struct evhttp_request *req)
{
	const char *in = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
	const char *out = evhttp_find_header(evhttp_request_get_output_headers(req), "Connection");

	if (req->major != 1 || req->minor < 1)
		return false;
	return (in == NULL || strcasestr(in, "close") == NULL) &&
	    (out == NULL || strcasestr(out, "close") == NULL);
}

void bt_http_flush_send(struct evhttp_request *req, int code, const char *reason)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	bool may_hold = bev != NULL && keeps_open(req);

	evhttp_send_reply(req, code, reason, NULL);
	if (bev == NULL)
		return;
	if (f.ev == NULL) {
		f.ev = event_new(bufferevent_get_base(bev), -1, 0, flush_cb, NULL);
		f.later = evtimer_new(bufferevent_get_base(bev), later_cb, NULL);
	}
	if (f.n == f.cap) {
		f.cap = f.cap ? f.cap * 2 : 64;
		f.v = xreallocarray(f.v, f.cap, sizeof *f.v);
	}
	bufferevent_incref(bev);
	f.v[f.n++] = (struct entry){ bev, may_hold };
	if (f.n == 1)
		event_active(f.ev, 0, 0);
}

void bt_http_flush_release(void)
{
	while (f.n > 0)
		bufferevent_decref(f.v[--f.n].bev);
	while (f.nheld > 0)
		bufferevent_decref(f.held[--f.nheld].bev);
	while (f.leftovers != NULL)
		leftover_end(f.leftovers);
	free(f.v);
	free(f.held);
	if (f.ev != NULL) {
		event_free(f.ev);
		event_free(f.later);
	}
	memset(&f, 0, sizeof f);
}
