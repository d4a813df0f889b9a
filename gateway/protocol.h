#ifndef HERALD_PROTOCOL_H
#define HERALD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "event.h"
#include "util/caps.h"

/* The herald.v1 WebSocket protocol (docs/protocol.md): parsing what clients
 * send and building what the server answers. No I/O here. */

#define GW_MSG_ID_MAX 128

enum gw_op { GW_OP_SUBSCRIBE, GW_OP_UNSUBSCRIBE, GW_OP_PUBLISH, GW_OP_PING, GW_OP_AUTH };


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
struct sub_frame *gw_reply_ack_publish(const char *id, const char *event_id, unsigned long long seq);
struct sub_frame *gw_reply_pong(const char *id);
struct sub_frame *gw_reply_error(const char *id, const char *code, const char *message);
/* The schema_violation error with its list of errors (errors: stolen). */
struct sub_frame *gw_reply_schema_violation(const char *id, const char *message, json_t *errors,
                                            bool truncated);

/* The herald.v1 encoding of an event, {"op":"event","topic",...,"data":...},
 * as a WebSocket text frame (a sub_encode_fn: arg is unused). Returns it
 * with one reference, or NULL when out of memory. */
struct sub_frame *gw_v1_event_frame(const struct sub_event *ev, void *arg);

#endif
