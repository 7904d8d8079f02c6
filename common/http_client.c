/*
 * http_client.c -- HTTP requests on libcurl's multi-socket API in the event loop.
 *
 * One curl multi handle per client; libcurl tells us which sockets to watch
 * (socket_cb) and when to wake it (timer_cb), libevent tells libcurl when a
 * socket is ready (sock_event_cb) and check_multi_info() collects finished
 * transfers. Each call is an easy handle whose CURLOPT_PRIVATE points back
 * at the call. The header callback records the status line and headers of
 * the final response and reports them once; the write callback hands 2xx
 * bodies to on_data or collects them for on_done.
 *
 * libcurl refuses most multi calls from inside its own callbacks, and our
 * users cancel calls or start new ones from inside theirs. So no curl
 * function is called from a user callback: new calls wait in the `start`
 * queue and cancelled ones in the `reap` queue for a "kick" event that
 * runs on the next loop iteration, and a cancelled call's curl callbacks
 * simply refuse further data. With a limit (bt_http_client_limit) the
 * kick starts calls in order only while fewer than the limit are in
 * flight, so libcurl never holds more handles than connections; the
 * work per call stays constant however many wait.
 */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "http_client.h"
#include "log.h"
#include "xmalloc.h"

#define IDLE_HANDLES 64        /* easy handles kept for reuse: creating one costs kilobytes */

struct header {
	char *name;
	char *value;
};

enum queue { Q_NONE, Q_START, Q_REAP };

struct bt_http_call {
	struct bt_http_client *client;
	struct bt_http_call *prev, *next;
	struct bt_http_call *qprev, *qnext;     /* in the client's start or reap queue */
	enum queue queue;
	CURL *easy;                     /* NULL until the call starts */
	struct bt_http_request_opts *opts;      /* a copy, until the call starts */
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char *setup_error;              /* reported by the kick instead of running */

	bt_http_response_cb on_response;
	bt_http_data_cb on_data;
	bt_http_done_cb on_done;
	void *arg;

	bool added;                     /* in the multi handle */
	bool dead;                      /* cancelled: no callback runs any more */
	bool done;                      /* on_done ran or is running */
	bool responded;                 /* on_response ran */
	bool aborted;                   /* on_data asked to stop */

	int hdr_status;                 /* status line of the response being read */
	int status;                     /* final status once its headers are complete */
	struct header *hdrs;
	size_t nhdrs;

	char *body;
	size_t len, cap;
};

struct sock {
	struct bt_http_client *client;
	struct sock *prev, *next;
	curl_socket_t fd;
	struct event *ev;
};

struct bt_http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct event *kick;
	struct bt_http_call *calls;
	struct { struct bt_http_call *head, *tail; } q[3];     /* indexed by enum queue */
	long limit;                     /* calls in flight at most; 0: no limit */
	long inflight;                  /* calls in the multi handle */
	struct sock *socks;
	CURL *idle[IDLE_HANDLES];       /* easy handles of ended calls, reset for the next */
	size_t nidle;
};

static void check_multi_info(struct bt_http_client *c);
static void opts_free(struct bt_http_request_opts *o);
static void call_prepare(struct bt_http_call *call);

static void headers_clear(struct bt_http_call *call)
{
	size_t i;

	for (i = 0; i < call->nhdrs; i++) {
		free(call->hdrs[i].name);
		free(call->hdrs[i].value);
	}
	free(call->hdrs);
	call->hdrs = NULL;
	call->nhdrs = 0;
}

static void dequeue(struct bt_http_call *call)
{
	struct bt_http_client *c = call->client;

	if (call->queue == Q_NONE)
		return;
	if (call->qprev != NULL)
		call->qprev->qnext = call->qnext;
	else
		c->q[call->queue].head = call->qnext;
	if (call->qnext != NULL)
		call->qnext->qprev = call->qprev;
	else
		c->q[call->queue].tail = call->qprev;
	call->qprev = call->qnext = NULL;
	call->queue = Q_NONE;
}

/* to the end of queue q for the next kick */
static void enqueue(struct bt_http_call *call, enum queue q)
{
	struct bt_http_client *c = call->client;

	dequeue(call);
	call->queue = q;
	call->qprev = c->q[q].tail;
	if (c->q[q].tail != NULL)
		c->q[q].tail->qnext = call;
	else
		c->q[q].head = call;
	c->q[q].tail = call;
	event_active(c->kick, 0, 0);
}

/* unlink and free a call; it must not be inside a curl callback */
static void call_destroy(struct bt_http_call *call)
{
	struct bt_http_client *c = call->client;

	dequeue(call);
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	if (call->added) {
		curl_multi_remove_handle(c->multi, call->easy);
		c->inflight--;
		if (c->q[Q_START].head != NULL)
			event_active(c->kick, 0, 0);
	}
	if (call->easy != NULL && c->nidle < IDLE_HANDLES) {
		curl_easy_reset(call->easy);
		c->idle[c->nidle++] = call->easy;
	} else if (call->easy != NULL) {
		curl_easy_cleanup(call->easy);
	}
	opts_free(call->opts);
	curl_slist_free_all(call->headers);
	headers_clear(call);
	free(call->setup_error);
	free(call->body);
	free(call);
}

static void body_append(struct bt_http_call *call, const void *data, size_t n)
{
	if (call->len + n + 1 > call->cap) {
		while (call->len + n + 1 > call->cap)
			call->cap = call->cap == 0 ? 4096 : call->cap * 2;
		call->body = xrealloc(call->body, call->cap);
	}
	memcpy(call->body + call->len, data, n);
	call->len += n;
	call->body[call->len] = '\0';
}

static void call_respond(struct bt_http_call *call)
{
	if (call->responded || call->dead)
		return;
	call->responded = true;
	call->status = call->hdr_status;
	if (call->on_response != NULL)
		call->on_response(call, call->arg);
}

/* one header line of any response, including the status line and the blank line */
static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
	struct bt_http_call *call = userdata;
	size_t n = size * nitems, vlen;
	const char *colon, *v;
	struct header *h;

	if (call->dead)
		return 0;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', n);
		call->hdr_status = sp != NULL ? atoi(sp + 1) : 0;
		headers_clear(call);
	} else if (n == 0) {
		if (call->hdr_status >= 200 || call->hdr_status == 0 ||
		    call->hdr_status == 101)
			call_respond(call);
	} else if ((line[0] == ' ' || line[0] == '\t') && call->nhdrs > 0) {
		h = &call->hdrs[call->nhdrs - 1];
		v = line + strspn(line, " \t");
		char *joined = xasprintf("%s %.*s", h->value, (int)(n - (size_t)(v - line)), v);
		free(h->value);
		h->value = joined;
	} else if ((colon = memchr(line, ':', n)) != NULL) {
		call->hdrs = xreallocarray(call->hdrs, call->nhdrs + 1, sizeof *call->hdrs);
		h = &call->hdrs[call->nhdrs++];
		h->name = xstrndup(line, (size_t)(colon - line));
		v = colon + 1 + strspn(colon + 1, " \t");
		vlen = n - (size_t)(v - line);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		h->value = xstrndup(v, vlen);
	}
	return size * nitems;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct bt_http_call *call = userdata;
	size_t n = size * nmemb;

	if (call->dead || call->aborted)
		return 0;
	if (!call->responded)
		call_respond(call);
	if (call->dead)
		return 0;
	if (call->on_data != NULL && call->status >= 200 && call->status < 300) {
		if (call->on_data(call, data, n, call->arg) != 0) {
			call->aborted = true;
			return 0;
		}
		return call->dead ? 0 : n;
	}
	body_append(call, data, n);
	return n;
}

/* report the end of a call and free it */
static void call_finish(struct bt_http_call *call, CURLcode result)
{
	const char *error = NULL, *body = "";
	size_t len = 0;
	int status;

	if (call->dead) {
		call_destroy(call);
		return;
	}
	if (call->setup_error != NULL)
		error = call->setup_error;
	else if (call->aborted)
		error = "aborted by the receiver";
	else if (result != CURLE_OK)
		error = call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(result);
	if (result == CURLE_OK && call->setup_error == NULL && !call->responded)
		call_respond(call);
	status = call->responded ? call->status : 0;
	if (call->body != NULL) {
		body = call->body;
		len = call->len;
	}
	call->done = true;
	log_debug("http client: call done: status %d%s%s", status, error != NULL ? ", " : "",
	    error != NULL ? error : "");
	if (call->on_done != NULL)
		call->on_done(call, status, body, len, error, call->arg);
	call_destroy(call);
}

static void check_multi_info(struct bt_http_client *c)
{
	CURLMsg *msg;
	CURLcode result;
	CURL *easy;
	char *priv;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		result = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		if (priv != NULL)
			call_finish((struct bt_http_call *)priv, result);
	}
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bt_http_client *c = arg;
	int action = 0, running = 0;

	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, action, &running);
	check_multi_info(c);
	if (running <= 0)
		evtimer_del(c->timer);
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bt_http_client *c = arg;
	int running = 0;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info(c);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct bt_http_client *c = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	return 0;
}

static void sock_free(struct bt_http_client *c, struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct bt_http_client *c = userp;
	struct sock *s = socketp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_free(c, s);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->client = c;
		s->fd = fd;
		s->next = c->socks;
		if (c->socks != NULL)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	s->ev = event_new(c->base, fd, kind, sock_event_cb, c);
	event_add(s->ev, NULL);
	return 0;
}

/* the next loop iteration: drop cancelled calls, start new ones */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bt_http_client *c = arg;
	struct bt_http_call *call;
	CURLMcode rc;

	while ((call = c->q[Q_REAP].head) != NULL)
		call_destroy(call);
	while ((call = c->q[Q_START].head) != NULL && (c->limit == 0 || c->inflight < c->limit)) {
		dequeue(call);
		if (call->setup_error == NULL) {
			call_prepare(call);
			rc = curl_multi_add_handle(c->multi, call->easy);
			if (rc == CURLM_OK) {
				call->added = true;
				c->inflight++;
				continue;
			}
			call->setup_error = xasprintf("unable to start request: %s",
			    curl_multi_strerror(rc));
		}
		/* on_done may cancel or start calls: they join the queues */
		call_finish(call, CURLE_FAILED_INIT);
	}
}

/*
 * Debian's libcurl reaches OpenSSL's libcrypto through libssh2, whose
 * initialisation (run by curl_global_init) loads openssl.cnf and all of
 * OpenSSL's error strings: about 1 MiB resident in every process, for text
 * butte never prints.  OpenSSL's first initialisation decides, so it is
 * asked first, when libcrypto is loaded at all, to skip both.
 */
#define OPENSSL_NO_CRYPTO_STRINGS	0x00000001L	/* OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS */
#define OPENSSL_NO_CONFIG		0x00000080L	/* OPENSSL_INIT_NO_LOAD_CONFIG */

void bt_curl_global_init(void)
{
	static bool done;
	int (*openssl_init)(uint64_t, const void *);

	if (done)
		return;
	*(void **)&openssl_init = dlsym(RTLD_DEFAULT, "OPENSSL_init_crypto");
	if (openssl_init != NULL)
		openssl_init(OPENSSL_NO_CRYPTO_STRINGS | OPENSSL_NO_CONFIG, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		bt_fatal("unable to initialise libcurl");
	done = true;
}

struct bt_http_client *bt_http_client_new(struct event_base *base)
{
	struct bt_http_client *c = xcalloc(1, sizeof *c);

	bt_curl_global_init();
	c->base = base;
	c->multi = curl_multi_init();
	if (c->multi == NULL)
		bt_fatal("unable to create a curl multi handle");
	c->timer = evtimer_new(base, timer_event_cb, c);
	c->kick = event_new(base, -1, 0, kick_cb, c);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
	return c;
}

void bt_http_client_limit(struct bt_http_client *c, long max)
{
	c->limit = max > 0 ? max : 0;
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->limit);
	if (c->limit > 64)
		curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->limit);
}

void bt_http_client_free(struct bt_http_client *c)
{
	if (c == NULL)
		return;
	while (c->calls != NULL)
		call_destroy(c->calls);
	while (c->nidle > 0)
		curl_easy_cleanup(c->idle[--c->nidle]);
	curl_multi_cleanup(c->multi);
	while (c->socks != NULL)
		sock_free(c, c->socks);
	event_free(c->kick);
	event_free(c->timer);
	free(c);
}

/* what call_set_options() needs later, copied; the headers go into *headers */
static struct bt_http_request_opts *opts_copy(const struct bt_http_request_opts *o,
    struct curl_slist **headers)
{
	struct bt_http_request_opts *c = xmalloc(sizeof *c);
	const char *const *h;

	*c = *o;
	c->method = o->method != NULL ? xstrdup(o->method) : NULL;
	c->url = xstrdup(o->url);
	c->unix_socket = o->unix_socket != NULL ? xstrdup(o->unix_socket) : NULL;
	c->headers = NULL;
	if (o->body != NULL) {
		void *body = xmalloc(o->body_len + 1);
		memcpy(body, o->body, o->body_len);
		c->body = body;
	}
	for (h = o->headers; h != NULL && *h != NULL; h++)
		*headers = curl_slist_append(*headers, *h);
	*headers = curl_slist_append(*headers, "Expect:");
	return c;
}

static void opts_free(struct bt_http_request_opts *o)
{
	if (o == NULL)
		return;
	free((char *)o->method);
	free((char *)o->url);
	free((char *)o->unix_socket);
	free((void *)o->body);
	free(o);
}

static void call_set_body(struct bt_http_call *call, const struct bt_http_request_opts *o,
    const char *method)
{
	CURL *e = call->easy;

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		return;
	}
	if (o->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body != NULL ? o->body : "");
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	else if (strcmp(method, "GET") == 0 && o->body != NULL)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
}

static void call_set_options(struct bt_http_call *call, const struct bt_http_request_opts *o);

/*
 * A call gets its easy handle (a reused one when there is) only when it
 * starts: thousands of calls may wait in the start queue, and a handle
 * costs kilobytes to create.
 */
static void call_prepare(struct bt_http_call *call)
{
	struct bt_http_client *c = call->client;

	call->easy = c->nidle > 0 ? c->idle[--c->nidle] : curl_easy_init();
	if (call->easy == NULL)
		bt_fatal("unable to create a curl handle");
	call_set_options(call, call->opts);
	opts_free(call->opts);
	call->opts = NULL;
}

static void call_set_options(struct bt_http_call *call, const struct bt_http_request_opts *o)
{
	CURL *e = call->easy;
	double ct = o->connect_timeout > 0 ? o->connect_timeout : 10;

	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(ct * 1000));
	if (o->timeout > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
	if (o->unix_socket != NULL)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	call_set_body(call, o, o->method != NULL ? o->method : "GET");
}

struct bt_http_call *bt_http_request(struct bt_http_client *c, const struct bt_http_request_opts *o)
{
	struct bt_http_call *call = xcalloc(1, sizeof *call);

	call->client = c;
	call->on_response = o->on_response;
	call->on_data = o->on_data;
	call->on_done = o->on_done;
	call->arg = o->arg;
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	if (o->url == NULL)
		call->setup_error = xstrdup("no url given");
	else
		call->opts = opts_copy(o, &call->headers);
	log_debug("http client: %s %s%s%s", o->method != NULL ? o->method : "GET",
	    o->url != NULL ? o->url : "(none)", o->unix_socket != NULL ? " via " : "",
	    o->unix_socket != NULL ? o->unix_socket : "");
	enqueue(call, Q_START);
	return call;
}

void bt_http_call_cancel(struct bt_http_call *call)
{
	if (call == NULL || call->dead || call->done)
		return;
	call->dead = true;
	enqueue(call, Q_REAP);
}

int bt_http_call_status(const struct bt_http_call *call)
{
	return call->responded ? call->status : 0;
}

const char *bt_http_call_header(const struct bt_http_call *call, const char *name)
{
	size_t i;

	for (i = 0; i < call->nhdrs; i++)
		if (strcasecmp(call->hdrs[i].name, name) == 0)
			return call->hdrs[i].value;
	return NULL;
}
