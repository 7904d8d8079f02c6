/*
 * http_flush.h -- evhttp replies written by the loop turn that made them.
 *
 * Part of the HTTP server (http_server.c sends every reply through it);
 * see http_flush.c for how and why.
 */
#ifndef BT_HTTP_FLUSH_H
#define BT_HTTP_FLUSH_H

#include <event2/http.h>

/* evhttp_send_reply(req, code, reason, NULL), written out at the end of this turn */
void bt_http_flush_send(struct evhttp_request *req, int code, const char *reason);
/* the last server is gone: drop what waits (its connections are closed already) */
void bt_http_flush_release(void);

#endif
