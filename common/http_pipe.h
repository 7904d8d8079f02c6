/*
 * http_pipe.h -- short requests pipelined on a few kept-alive HTTP/1.1 connections.
 *
 * For a client that sends many small requests to one server and needs
 * nothing from each answer but its status: a framework acknowledging every
 * status update through the Mesos scheduler API makes two requests per
 * task it launches. libcurl sends one request per connection at a time,
 * so each costs a round trip and a handful of system calls on both sides.
 * A pipe writes each request at once behind those still waiting on its
 * connection (HTTP/1.1 pipelining, which the master's evhttp serves in
 * order): what one loop turn asks for leaves in one write, and the
 * answers, which come back in the order of the requests, are read
 * together.
 *
 * A request whose connection closes or fails before its answer ends with
 * status 0 and an error; it is never sent again, since the server may have
 * acted on it. Connections are opened when first needed and again after
 * they close. Nothing blocks: host names are resolved with evdns.
 */
#ifndef BT_HTTP_PIPE_H
#define BT_HTTP_PIPE_H

#include <event2/event.h>
#include <stddef.h>

struct bt_http_pipe;

/*
 * A request has ended, exactly once (unless the pipe was freed first).
 * status is the HTTP status, or 0 when no answer came (error says why);
 * body is the answer's body, len bytes, valid during the call.
 */
typedef void (*bt_http_pipe_done_cb)(int status, const char *body, size_t len,
    const char *error, void *arg);

/*
 * A pipe to url ("http://host:port/path": the path every request goes to),
 * over at most `connections` connections. timeout: seconds an answer may
 * keep its connection waiting, and a connection may take to open. NULL with
 * *cause when url is not such a URL.
 */
struct bt_http_pipe *bt_http_pipe_new(struct event_base *base, const char *url,
    int connections, double timeout, char **cause);
/* close every connection; requests still waiting end without a callback */
void bt_http_pipe_free(struct bt_http_pipe *p);
/*
 * POST body to the pipe's URL. headers: NULL-terminated "Name: value"
 * strings (Host and Content-Length are added). The body is copied. cb runs
 * from the loop, or before this returns when not even a socket can be
 * opened. A callback may post again, but not free the pipe.
 */
void bt_http_pipe_post(struct bt_http_pipe *p, const char *const *headers, const void *body,
    size_t len, bt_http_pipe_done_cb cb, void *arg);
/* the same, but takes ownership of body (a heap block), freed once sent: no copy */
void bt_http_pipe_post_take(struct bt_http_pipe *p, const char *const *headers, void *body,
    size_t len, bt_http_pipe_done_cb cb, void *arg);
/* requests sent or queued that have not ended */
size_t bt_http_pipe_waiting(const struct bt_http_pipe *p);

#endif
