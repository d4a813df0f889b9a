#ifndef HERALD_HERALD_V1_H
#define HERALD_HERALD_V1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event.h"
#include "pipeline.h"
#include "session.h"

/* The herald.v1 operations (docs/protocol.md): what a client's message does
 * to its session and what is answered. No socket here: answers and closes
 * go through a gw_v1_out, so a unit test can stand in for the transport.
 * Worker thread only. */

/* A publish to make for a client; valid during the publish call only. */
struct gw_v1_publish {
  const char *id; /* the request's id: the answer echoes it */
  const char *topic;
  size_t topic_len;
  const char *data; /* compact JSON text */
  size_t data_len;
  const json_t *data_value; /* data parsed, for the topic rules */
};

/* The outcome of a publish, handed to gw_v1_published. */
struct gw_v1_published {
  const char *id;    /* the request's */
  const char *topic; /* for the log lines */
  struct pub_request *r; /* the pipeline's outcome (its errors may be taken) */
};

enum gw_v1_pub_state {
  GW_V1_PUB_TAKEN, /* answered, now or later, through gw_v1_published */
  GW_V1_PUB_BUSY,  /* too many publishes of the session wait: answer overloaded */
  GW_V1_PUB_NOMEM, /* out of memory: answer internal_error */
};

/* How herald.v1 answers a session; a transport implements it. */
struct gw_v1_out {
  /* Queues frame f for the session, taking its one reference; f NULL
   * means building it ran out of memory: close the connection (1011). */
  void (*send)(struct gw_session *s, struct sub_frame *f);
  /* Closes with code and reason: after what is queued when flush, else
   * dropping what is queued but a frame begun. */
  void (*close)(struct gw_session *s, uint16_t code, const char *reason, bool flush);
  /* Makes the publish req (its grants passed) through the publish
   * pipeline. The one place a publish leaves the protocol. */
  enum gw_v1_pub_state (*publish)(struct gw_session *s, const struct gw_v1_publish *req);
  /* Queues an event (a replayed one) as the transport encodes it, counted
   * against the send queue like a live one. Borrows ev. */
  void (*event)(struct gw_session *s, struct sub_event *ev);
};

/* Handles one complete client message (binary: a binary frame). */
void gw_v1_message(const struct gw_v1_out *out, struct gw_session *s, const char *buf,
                   size_t len, bool binary);

/* Answers a publish made through out->publish (now or later). */
void gw_v1_published(const struct gw_v1_out *out, struct gw_session *s,
                     const struct gw_v1_published *r);

/* The session's protocol timers at now_us / wall: no token by the auth
 * deadline (answered, closed with 4002) or the token expired (answered,
 * closed with 4001). Returns true when it closed the session. */
bool gw_v1_tick(const struct gw_v1_out *out, struct gw_session *s, int64_t now_us, long long wall);

/* The event's herald.v1 frame ({"op":"event",...}): one reference. */

#endif
