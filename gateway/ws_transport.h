#ifndef HERALD_WS_TRANSPORT_H
#define HERALD_WS_TRANSPORT_H

#include <libwebsockets.h>

#include "transport.h"

/* herald.v1 over WebSocket (/ws), on libwebsockets: the protocol callback
 * of the client port's vhost, message assembly, coalesced writes, pings and
 * the close handshake. */

/* The transport table of herald.v1 over WebSocket. */
extern const struct gw_transport gw_ws_herald_v1;

/* Fills *p with the libwebsockets protocol that serves the client port:
 * WebSocket at /ws, the demo page at / (its callback gets the worker from
 * the context's user data). */
void gw_ws_protocol(struct lws_protocols *p);

#endif
