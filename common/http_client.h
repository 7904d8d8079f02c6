/*
 * http_client.h -- HTTP requests on libcurl's multi-socket API in the event loop.
 *
 * Nothing blocks: a request is started, libcurl's sockets and timers are
 * driven by libevent (curl's hiperfifo pattern), and callbacks report the
 * response. Streaming responses (the scheduler event stream, the Docker
 * events stream) deliver their body piece by piece through on_data.
 * Requests may go over a Unix socket (the Docker Engine API).
 */
#ifndef BT_HTTP_CLIENT_H
#define BT_HTTP_CLIENT_H

#include <event2/event.h>
#include <stddef.h>

struct bt_http_client;
struct bt_http_call;

/* status line and headers have arrived */
typedef void (*bt_http_response_cb)(struct bt_http_call *call, void *arg);
/* body bytes of a 2xx response as they arrive; return -1 to abort the call (on_done then reports it) */
typedef int (*bt_http_data_cb)(struct bt_http_call *call, const void *data, size_t len, void *arg);
/*
 * The call has ended, exactly once unless it was cancelled. status is the
 * HTTP status, or 0 when no response came (error then says why, e.g.
 * "Failed to connect to 127.0.0.1 port 5050: Connection refused").
 * body holds the whole body when on_data is NULL or the status is not 2xx.
 * The call is freed after on_done returns.
 */
typedef void (*bt_http_done_cb)(struct bt_http_call *call, int status, const char *body,
    size_t len, const char *error, void *arg);

struct bt_http_request_opts {
	const char *method;             /* "GET" when NULL */
	const char *url;                /* "http://127.0.0.1:5050/api/v1/scheduler" */
	const char *unix_socket;        /* connect through this socket, or NULL */
	const char *const *headers;     /* NULL-terminated "Name: value" strings, or NULL */
	const void *body;               /* copied; may be NULL */
	size_t body_len;
	double timeout;                 /* whole request in seconds; 0 means none */
	double connect_timeout;         /* seconds; 0 means 10 */
	bt_http_response_cb on_response;
	bt_http_data_cb on_data;
	bt_http_done_cb on_done;
	void *arg;
};

/* curl_global_init, once per process, keeping OpenSSL lean (http_client.c) */
void bt_curl_global_init(void);

struct bt_http_client *bt_http_client_new(struct event_base *base);
/* cancels every call still running (no callbacks) */
void bt_http_client_free(struct bt_http_client *c);
/*
 * At most max calls in flight at once, and as many connections to one
 * host (0: no limit, the default); further requests wait in order for a
 * call to end and reuse its connection instead of opening a new one each.
 * A long-lived stream holds one of them.
 */
void bt_http_client_limit(struct bt_http_client *c, long max);

/* never NULL; errors arrive through on_done */
struct bt_http_call *bt_http_request(struct bt_http_client *c, const struct bt_http_request_opts *o);
/* stop the call; no callback runs afterwards; safe to call from inside its own callbacks */
void bt_http_call_cancel(struct bt_http_call *call);
/* the status once on_response ran, else 0 */
int bt_http_call_status(const struct bt_http_call *call);
/* a response header (case-insensitive name), or NULL */
const char *bt_http_call_header(const struct bt_http_call *call, const char *name);

#endif
