#ifndef HERALD_TRANSPORT_H
#define HERALD_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "session.h"

/* A client transport: how one kind of connection on the client port (today
 * herald.v1 over WebSocket; next SSE, GraphQL over WebSocket) gets events
 * and speaks its protocol. The worker knows connections only as gw_conn
 * and reaches the transport through its table. Every op runs on the
 * connection's worker thread. docs/internals/transport.md has the rules an
 * implementation keeps. */

#define GW_TRANSPORT_SLOTS SUB_EVENT_ENCODINGS /* transports at most: the per-event encodings */

struct gw_conn;
struct gw_worker;
struct gw_pending;

struct gw_transport {
  const char *name; /* for logs and docs: "herald.v1" */
  unsigned slot;    /* < GW_TRANSPORT_SLOTS, one per transport */
  /* The transport's frame for an event, with one reference (NULL: out of
   * memory). Built once per event per transport (sub_event_encoded caches
   * it on the event, for every worker), and the same frame is handed to
   * every connection of the transport that gets the event. */
  sub_encode_fn encode;
  /* c was attached to its worker, its session started: begin serving. */
  void (*open)(struct gw_conn *c);
  /* Queues f (encode's, or NULL: nothing to send) for c, taking a reference
   * of its own; never writes or frees c. Returns true when c wants a
   * flush once the worker's batch of events is delivered. */
  bool (*deliver)(struct gw_conn *c, struct sub_frame *f);
  /* Writes what deliver queued (ideally in one write). Never frees c. */
  void (*flush)(struct gw_conn *c);
  /* Handles one complete message from the client. */
  void (*receive)(struct gw_conn *c, const char *buf, size_t len, bool binary);
  /* Every 250 ms: the connection's timers (auth, expiry, pings, idle, stalls). */
  void (*tick)(struct gw_conn *c, int64_t now_us, long long wall);
  /* Starts closing c with code and reason (shutdown: 1001); c is freed
   * later, by its transport, after gw_conn_closed. Idempotent. */
  void (*close)(struct gw_conn *c, uint16_t code, const char *reason);
};

/* What every connection is to its worker, whatever its transport: embed it
 * first in the transport's own connection struct. */
struct gw_conn {
  struct gw_session s; /* s.sub is what the worker's index matches */
  const struct gw_transport *t;
  struct gw_worker *w;
  struct gw_conn *prev, *next; /* the worker's connections */
  struct gw_conn *dirty_next;  /* the worker's list to flush after a batch */
  bool dirty;
  struct gw_pending *pubs; /* publishes waiting for their commit */
  int npubs;
};

/* The connection whose session s is. */
static inline struct gw_conn *gw_conn_of(struct gw_session *s)
{
  return (struct gw_conn *)((char *)s - offsetof(struct gw_conn, s));
}

/* Attaches c (zeroed) to worker w with transport t and starts its session
 * (id: a token verified at the handshake, taken; may be NULL), then calls
 * t->open, and t->close with 1001 when the worker is shutting down. */
void gw_conn_open(struct gw_conn *c, const struct gw_transport *t, struct gw_worker *w,
                  struct gw_identity *id);

/* Detaches c from its worker: its subscriptions, identity and pending
 * publishes (they will not be answered) go. The transport frees c after. */
void gw_conn_closed(struct gw_conn *c);

#endif
