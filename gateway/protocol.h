#ifndef HERALD_PROTOCOL_H
#define HERALD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "engine.h"
#include "event.h"
#include "eventlog.h"
#include "util/caps.h"

/* The herald.v1 WebSocket protocol (docs/protocol.md): parsing what clients
 * send and building what the server answers. No I/O here. */

#define GW_MSG_ID_MAX 128

enum gw_op { GW_OP_SUBSCRIBE, GW_OP_UNSUBSCRIBE, GW_OP_PUBLISH, GW_OP_PING, GW_OP_AUTH };

enum gw_since { GW_SINCE_NONE, GW_SINCE_CURSOR, GW_SINCE_TIME };


struct gw_msg {
  enum gw_op op;
  char id[GW_MSG_ID_MAX + 1];
  char topic[SUB_TOPIC_MAX + 1];
  size_t topic_len;
  char *data; /* publish: compact JSON text of `data` (malloc'd), else NULL */
  size_t data_len;
  json_t *data_value; /* publish: `data` itself (one reference), for schema checks */
  char *token;        /* auth: the token (malloc'd), else NULL */
  size_t token_len;
  /* subscribe: resume from a cursor or a time, and what a gap does */
  enum gw_since since;
  char since_epoch[SUB_EPOCH_LEN + 1];
  uint64_t since_offset;
  uint64_t since_ms;
  bool gap_fail; /* "on_gap": "fail" */
};

/* What a resume did, for its ack: replayed (from, to] or a gap. */
struct gw_resume {
  uint64_t from, to;
  size_t replayed;
  enum sub_gap gap;
  const char *requested; /* the cursor or time as asked */
  uint64_t oldest;       /* gap: the offset the subscription continues from */
};

struct gw_proto_err {
  const char *code; /* invalid_utf8, invalid_json, invalid_message, unknown_op, invalid_topic */
  char message[200];
  bool has_id; /* the message's id could be read: echo it in the error */
  char id[GW_MSG_ID_MAX + 1];
};

/* Parses one client text message. Returns 0 with *msg filled (free with
 * gw_msg_clear), or -1 with *err filled. */
int gw_proto_parse(const char *buf, size_t len, struct gw_msg *msg, struct gw_proto_err *err);
void gw_msg_clear(struct gw_msg *msg);

/* Replies as ready-to-send frames (one reference each; NULL if out of
 * memory). `id` may be NULL for errors about messages without a readable id. */
struct sub_frame *gw_reply_ack(const char *id);
/* A publish's ack: the event's id, seq and, when logged, offset and cursor. */
struct sub_frame *gw_reply_ack_publish(const char *id, const struct sub_published *p);
/* A resuming subscribe's ack: {"resumed": {...}} or {"gap": {...}}. */
struct sub_frame *gw_reply_ack_resume(const char *id, const char *epoch, const struct gw_resume *r);
/* since_unavailable ("on_gap": "fail"), with the gap's fields. */
struct sub_frame *gw_reply_gap_error(const char *id, const char *message, const struct gw_resume *r,
                                     const char *epoch);
struct sub_frame *gw_reply_pong(const char *id);
struct sub_frame *gw_reply_error(const char *id, const char *code, const char *message);
/* The schema_violation error with its list of errors (errors: stolen). */
struct sub_frame *gw_reply_schema_violation(const char *id, const char *message, json_t *errors,
                                            bool truncated);

/* The herald.v1 encoding of an event, {"op":"event","topic",...,"data":...},
 * as a WebSocket text frame (a sub_encode_fn: arg is unused). Returns it
 * with one reference, or NULL when out of memory. */
struct sub_frame *gw_v1_event_frame(const struct sub_event *ev, void *arg);

/* The event's JSON up to its data ({"op":"event",...,"data":), shared by
 * every transport that sends the herald.v1 event object (SSE too): the
 * event's JSON is that, the data's text and "}". Returns its length, or -1
 * when it does not fit in cap (GW_EVENT_HEAD_MAX always does). */
#define GW_EVENT_HEAD_MAX (160 + SUB_TOPIC_MAX + SUB_ID_LEN + 3 * 20 + SUB_CURSOR_MAX + SUB_TIME_LEN)
int gw_event_head(const struct sub_event *ev, char *head, size_t cap);

#endif
