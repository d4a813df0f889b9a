#ifndef HERALD_SSE_TRANSPORT_H
#define HERALD_SSE_TRANSPORT_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "transport.h"

/* Server-Sent Events at GET /sse on the client port (docs/protocol.md#sse-sse):
 * a long-lived HTTP response of libwebsockets' HTTP role, served by the
 * same workers, sessions and index as WebSocket connections. The client
 * port's protocol callback (ws_transport.c) routes the socket's HTTP
 * callbacks here; the stream's state lives in the socket's per-session
 * data, which gw_sse_conn_size() must fit. */

#define GW_SSE_PATH "/sse"

/* The transport table of SSE (frame cache slot 1). */
extern const struct gw_transport gw_sse;

/* Bytes of per-session data an SSE stream needs. */
size_t gw_sse_conn_size(void);

/* True when user (a socket's per-session data, may be NULL) is an SSE
 * stream that was opened: its HTTP callbacks are the stream's. */
bool gw_sse_is(const void *user);

/* LWS_CALLBACK_HTTP for GET /sse on wsi of worker w: checks the request
 * (Host, Origin, token, topics, grants, Last-Event-ID), subscribes or
 * resumes, and starts the stream; or answers with a JSON error. Returns
 * what the callback returns. */
int gw_sse_request(struct gw_worker *w, struct lws *wsi, void *user);

/* LWS_CALLBACK_HTTP_WRITEABLE of a stream. Returns what the callback
 * returns (-1: the stream is over, close the socket). */
int gw_sse_writeable(void *user);

/* The stream's socket is closing (LWS_CALLBACK_CLOSED_HTTP, or its
 * destruction): detaches it from its worker. Idempotent; nothing for a
 * socket that is no stream. */
void gw_sse_closed(void *user);

#endif
