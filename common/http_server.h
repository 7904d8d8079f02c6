/*
 * http_server.h -- an evhttp server with a route table and one error path.
 *
 * Each daemon registers handlers for paths; the server collapses repeated
 * slashes, splits off and parses the query, and calls the handler with the
 * clean path. Every error reply goes through bt_http_error(), which writes
 * {"message": "..."}. Long-lived responses (the scheduler event stream,
 * server-sent events) use bt_http_stream, which bounds what a slow client
 * may have buffered and tells its owner when the peer goes away.
 */
#ifndef BT_HTTP_SERVER_H
#define BT_HTTP_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bt_http_server;

/*
 * path: normalised, percent-decoded, without the query ("/v2/apps/x");
 * query: the parsed query string (never NULL, may be empty).
 */
typedef void (*bt_http_handler_cb)(struct evhttp_request *req, const char *path,
    const struct evkeyvalq *query, void *arg);

enum { BT_ROUTE_EXACT = 0, BT_ROUTE_PREFIX = 1 };

/* listen on ip:port (port 0 picks one; see bt_http_server_port); NULL with *cause */
struct bt_http_server *bt_http_server_new(struct event_base *base, const char *ip, int port,
    char **cause);
void bt_http_server_free(struct bt_http_server *s);
int bt_http_server_port(const struct bt_http_server *s);
/*
 * Register a handler. BT_ROUTE_PREFIX matches the path itself and anything
 * below it ("/v2/apps" matches "/v2/apps/a/b"). The longest match wins;
 * a path with no match gets 404 {"message":"no handler for '/x'"} unless a
 * fallback is set.
 */
void bt_http_server_route(struct bt_http_server *s, const char *path, int mode,
    bt_http_handler_cb cb, void *arg);
void bt_http_server_fallback(struct bt_http_server *s, bt_http_handler_cb cb, void *arg);

/*
 * Requests that wait. With an admission callback set, each request is
 * shown to it (with its clean path) before its handler runs; when it
 * returns false the request waits, unanswered, until the owner hands it
 * to bt_http_server_dispatch(). The client keeps its connection meanwhile.
 */
typedef bool (*bt_http_admit_cb)(struct evhttp_request *req, const char *path, void *arg);
void bt_http_server_admit(struct bt_http_server *s, bt_http_admit_cb cb, void *arg);
void bt_http_server_dispatch(struct bt_http_server *s, struct evhttp_request *req);

/*
 * Answers that wait, e.g. until what their handler wrote is on disk. With
 * a gate set, mark() is read as each handler begins; an answer made when
 * the mark has moved since (or outside any handler) is handed to hold(),
 * which calls send(ctx) at once or later. NULL, the default: answers leave
 * at once.
 */
struct bt_http_gate {
	unsigned long (*mark)(void *arg);
	void (*hold)(void *arg, void (*send)(void *ctx), void *ctx);
	void *arg;
};
void bt_http_set_gate(const struct bt_http_gate *gate);

/* replies; each ends the request */
void bt_http_reply(struct evhttp_request *req, int code, const char *content_type,
    const void *body, size_t len);
/* the same, handing over a heap body: it is sent without a copy and freed after */
void bt_http_reply_take(struct evhttp_request *req, int code, const char *content_type,
    char *body, size_t len);
/* the same, moving what body holds into the reply (body is left empty, caller frees it) */
void bt_http_reply_buffer(struct evhttp_request *req, int code, const char *content_type,
    struct evbuffer *body);
/* takes ownership of body (NULL sends an empty body) */
void bt_http_reply_json(struct evhttp_request *req, int code, json_t *body);
/* {"message": "<formatted>"} with the status's reason phrase */
void bt_http_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* like bt_http_error but with extra members merged into the object (takes ownership) */
void bt_http_error_json(struct evhttp_request *req, int code, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* request helpers */
const char *bt_http_header(struct evhttp_request *req, const char *name);
void bt_http_add_header(struct evhttp_request *req, const char *name, const char *value);
/* the whole request body (not NUL-terminated), valid until the reply */
const char *bt_http_body(struct evhttp_request *req, size_t *len);
/* "ip" of the peer; valid while the request lives */
const char *bt_http_peer(struct evhttp_request *req);
const char *bt_http_method(struct evhttp_request *req);   /* "GET", "POST", ... */
/* "true"/"True"/"1" -> 1, "false"/"False"/"0" -> 0, absent -> def, anything else -> -1 */
int bt_http_query_bool(const struct evkeyvalq *q, const char *name, int def);
const char *bt_http_query(const struct evkeyvalq *q, const char *name);
/* the media type of Content-Type without parameters, lower case, or NULL; caller frees */
char *bt_http_content_type(struct evhttp_request *req);

/* a long-lived response */
struct bt_http_stream;
typedef void (*bt_http_stream_closed_cb)(struct bt_http_stream *st, void *arg);

/*
 * Send the status line and headers (added to req beforehand) and keep the
 * response open. chunked selects Transfer-Encoding: chunked (the scheduler
 * stream); otherwise the body simply runs until the connection closes
 * (server-sent events, "Connection: close"). closed_cb runs once when the
 * peer goes away or the stream is dropped for backpressure; after it the
 * stream is freed by the server and must not be used.
 */
struct bt_http_stream *bt_http_stream_start(struct evhttp_request *req, int code,
    const char *content_type, bool chunked, size_t max_buffered,
    bt_http_stream_closed_cb closed_cb, void *arg);
/*
 * Queue bytes. When more than max_buffered bytes wait to be sent the
 * client is too slow: the stream is closed, closed_cb runs, and -1 is
 * returned.
 */
int bt_http_stream_write(struct bt_http_stream *st, const void *data, size_t len);
size_t bt_http_stream_buffered(const struct bt_http_stream *st);
/* end the response and free the stream (closed_cb is not called) */
void bt_http_stream_close(struct bt_http_stream *st);
const char *bt_http_stream_peer(const struct bt_http_stream *st);

#endif
