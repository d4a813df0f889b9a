#ifndef HERALD_CLIENT_PORT_H
#define HERALD_CLIENT_PORT_H

#include <stddef.h>

#include "config.h"
#include "fanout.h"
#include "pipeline.h"

/* The client port: WebSocket clients at /ws, speaking herald.v1.
 *
 * One acceptor thread accepts on the listening socket and hands each new
 * socket to a worker (round robin). Each worker is a thread with its own
 * libwebsockets context, its own connections and its own subscription index;
 * it is woken with lws_cancel_service when sockets or events are queued for
 * it. Nothing on the delivery path is shared between workers but the
 * immutable, ref-counted event frames. */

/* Close codes Herald uses besides the RFC 6455 ones (docs/protocol.md). */
#define GW_CLOSE_TOKEN_EXPIRED 4001 /* the token expired and no fresh one came */
#define GW_CLOSE_AUTH_TIMEOUT 4002  /* no valid token in time, anonymous may do nothing */
#define GW_CLOSE_IDLE 4003          /* nothing received, not even a pong */
#define GW_CLOSE_SLOW_CONSUMER 4008

struct gw_client_port;
struct gw_auth;
struct sub_engine;

/* Starts the workers and the acceptor on listen_fd (taken over). The
 * engine's fan-out must have cfg->client_workers sinks (the workers take their
 * events from it); publishes go through pp; auth says who may do what. pp
 * and auth must outlive the port. Returns NULL on failure (logged). */
struct gw_client_port *gw_client_start(const struct gw_config *cfg, struct sub_engine *engine,
                                       struct pub_pipeline *pp, struct gw_auth *auth,
                                       int listen_fd);

/* Stops accepting new clients; those connected keep being served. */
void gw_client_quiesce(struct gw_client_port *cp);

/* Stops accepting (if not done yet), closes every client with 1001 "server shutting down",
 * waits up to timeout_ms for them to go, then stops the threads and frees
 * everything. */
void gw_client_stop(struct gw_client_port *cp, int timeout_ms);

/* Live client connections (sockets accepted and not yet closed). */
size_t gw_client_connections(struct gw_client_port *cp);

#endif
