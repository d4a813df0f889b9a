#include "protocol.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_text.h"
#include "util/utf8.h"
#include "ws_frame.h"

static int perr(struct gw_proto_err *err, const char *code, const char *fmt, const char *arg)
{
  err->code = code;
  snprintf(err->message, sizeof(err->message), fmt, arg ? arg : "");
  return -1;
}

/* Copies a required string field into dst (size bytes). Returns 0 or -1. */
static int get_string(json_t *obj, const char *field, char *dst, size_t size, size_t *out_len,
                      struct gw_proto_err *err)
{
  json_t *v = json_object_get(obj, field);
  if(!v)
    return perr(err, "invalid_message", "missing field '%s'", field);
  if(!json_is_string(v))
    return perr(err, "invalid_message", "field '%s' must be a string", field);
  size_t n = json_string_length(v);
  if(n >= size) {
    err->code = "invalid_message";
    snprintf(err->message, sizeof(err->message), "field '%s' is longer than %zu bytes", field,
             size - 1);
    return -1;
  }
  memcpy(dst, json_string_value(v), n);
  dst[n] = '\0';
  if(out_len)
    *out_len = n;
  return 0;
}

/* A subscribe's "since" (a cursor, or {"time": RFC 3339}) and "on_gap". */
static int parse_since(json_t *root, struct gw_msg *msg, struct gw_proto_err *err)
{
  json_t *since = json_object_get(root, "since");
  json_t *on_gap = json_object_get(root, "on_gap");
  if(on_gap) {
    const char *g = json_string_value(on_gap);
    if(!g || (strcmp(g, "fail") != 0 && strcmp(g, "continue") != 0))
      return perr(err, "invalid_message", "field 'on_gap' must be \"fail\" or \"continue\"%s",
                  NULL);
    msg->gap_fail = strcmp(g, "fail") == 0;
  }
  if(!since || json_is_null(since))
    return 0;
  if(json_is_string(since)) {
    if(sub_cursor_parse(json_string_value(since), json_string_length(since), msg->since_epoch,
                        &msg->since_offset))
      return perr(err, "invalid_cursor",
                  "field 'since' must be a cursor \"<epoch>:<offset>\" as events carry it%s", NULL);
    msg->since = GW_SINCE_CURSOR;
    return 0;
  }
  json_t *t = json_object_get(since, "time");
  if(json_is_object(since) && json_is_string(t) && json_object_size(since) == 1) {
    if(sub_time_parse(json_string_value(t), json_string_length(t), &msg->since_ms))
      return perr(err, "invalid_message",
                  "field 'since.time' must be an RFC 3339 time, e.g. 2026-12-07T20:00:00Z%s", NULL);
    msg->since = GW_SINCE_TIME;
    return 0;
  }
  return perr(err, "invalid_message",
              "field 'since' must be a cursor string or {\"time\": \"<RFC 3339>\"}%s", NULL);
}

int gw_proto_parse(const char *buf, size_t len, struct gw_msg *msg, struct gw_proto_err *err)
{
  memset(msg, 0, sizeof(*msg));
  memset(err, 0, sizeof(*err));
  if(!util_utf8_valid((const unsigned char *)buf, len))
    return perr(err, "invalid_utf8", "message is not valid UTF-8%s", NULL);

  json_error_t jerr;
  json_t *root = util_json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
  if(!root)
    return perr(err, "invalid_json", "message is not valid JSON: %s", jerr.text);
  int rc = -1;
  if(!json_is_object(root)) {
    perr(err, "invalid_message", "message must be a JSON object%s", NULL);
    goto out;
  }
  json_t *id = json_object_get(root, "id");
  if(json_is_string(id) && json_string_length(id) <= GW_MSG_ID_MAX &&
     strlen(json_string_value(id)) == json_string_length(id)) {
    err->has_id = true;
    memcpy(err->id, json_string_value(id), json_string_length(id) + 1);
  }

  char op[16];
  if(get_string(root, "op", op, sizeof(op), NULL, err)) {
    if(json_is_string(json_object_get(root, "op")))
      perr(err, "unknown_op",
           "unknown op (expected subscribe, unsubscribe, publish, ping or auth)%s", NULL);
    goto out;
  }
  if(strcmp(op, "subscribe") == 0)
    msg->op = GW_OP_SUBSCRIBE;
  else if(strcmp(op, "unsubscribe") == 0)
    msg->op = GW_OP_UNSUBSCRIBE;
  else if(strcmp(op, "publish") == 0)
    msg->op = GW_OP_PUBLISH;
  else if(strcmp(op, "ping") == 0)
    msg->op = GW_OP_PING;
  else if(strcmp(op, "auth") == 0)
    msg->op = GW_OP_AUTH;
  else {
    perr(err, "unknown_op",
         "unknown op '%s' (expected subscribe, unsubscribe, publish, ping or auth)", op);
    goto out;
  }
  if(get_string(root, "id", msg->id, sizeof(msg->id), NULL, err))
    goto out;
  if(msg->op == GW_OP_AUTH) {
    json_t *t = json_object_get(root, "token");
    if(json_is_string(t) && json_string_length(t) > UTIL_TOKEN_MAX) {
      err->code = "invalid_token";
      snprintf(err->message, sizeof(err->message), "a token is 1 to %d bytes", UTIL_TOKEN_MAX);
      goto out;
    }
    if(!json_is_string(t) || json_string_length(t) == 0) {
      err->code = "invalid_message";
      snprintf(err->message, sizeof(err->message),
               "field 'token' must be a string of 1 to %d bytes", UTIL_TOKEN_MAX);
      goto out;
    }
    msg->token_len = json_string_length(t);
    msg->token = malloc(msg->token_len + 1);
    if(!msg->token) {
      perr(err, "internal_error", "out of memory%s", NULL);
      goto out;
    }
    memcpy(msg->token, json_string_value(t), msg->token_len + 1);
  }
  else if(msg->op != GW_OP_PING) {
    if(get_string(root, "topic", msg->topic, sizeof(msg->topic), &msg->topic_len, err)) {
      if(json_is_string(json_object_get(root, "topic")))
        perr(err, "invalid_topic", "topic is longer than 255 bytes%s", NULL);
      goto out;
    }
    const char *why = NULL;
    bool ok = msg->op == GW_OP_PUBLISH ? sub_topic_valid(msg->topic, msg->topic_len, &why)
                                       : sub_pattern_valid(msg->topic, msg->topic_len, &why);
    if(!ok) {
      perr(err, "invalid_topic", "%s", why);
      goto out;
    }
  }
  if(msg->op == GW_OP_SUBSCRIBE && parse_since(root, msg, err))
    goto out;
  if(msg->op == GW_OP_PUBLISH) {
    json_t *data = json_object_get(root, "data");
    if(!data) {
      perr(err, "invalid_message", "missing field '%s'", "data");
      goto out;
    }
    /* What is published is the publisher's own text of `data`, minified
     * (numbers and escapes as sent); the parsed value is for the rules. */
    size_t off, vlen, bad;
    const char *why;
    if(util_json_member(buf, len, "data", &off, &vlen)) {
      perr(err, "invalid_message", "missing field '%s'", "data");
      goto out;
    }
    msg->data = malloc(vlen + 1);
    if(!msg->data) {
      perr(err, "internal_error", "out of memory%s", NULL);
      goto out;
    }
    if(util_json_minify(buf + off, vlen, msg->data, &msg->data_len, &bad, &why)) {
      perr(err, "invalid_json", "message is not valid JSON: %s", why);
      free(msg->data);
      msg->data = NULL;
      goto out;
    }
    msg->data[msg->data_len] = '\0';
    msg->data_value = json_incref(data);
  }
  rc = 0;
out:
  json_decref(root);
  return rc;
}

void gw_msg_clear(struct gw_msg *msg)
{
  free(msg->data);
  msg->data = NULL;
  json_decref(msg->data_value);
  msg->data_value = NULL;
  free(msg->token);
  msg->token = NULL;
}

static struct sub_frame *dump_frame(json_t *obj)
{
  struct sub_frame *f = NULL;
  if(!obj)
    return NULL;
  char *text = json_dumps(obj, JSON_COMPACT);
  if(text)
    f = gw_ws_text_frame(text, strlen(text));
  free(text);
  json_decref(obj);
  return f;
}

struct sub_frame *gw_reply_ack(const char *id)
{
  return dump_frame(json_pack("{s:s, s:s}", "op", "ack", "id", id));
}

struct sub_frame *gw_reply_ack_publish(const char *id, const struct sub_published *p)
{
  json_t *ev = json_pack("{s:s, s:I}", "id", p->id, "seq", (json_int_t)p->seq);
  if(ev && p->offset) {
    char cursor[SUB_CURSOR_MAX + 1];
    sub_cursor_format(p->epoch, p->offset, cursor);
    json_object_set_new(ev, "offset", json_integer((json_int_t)p->offset));
    json_object_set_new(ev, "cursor", json_string(cursor));
  }
  if(!ev)
    return NULL;
  return dump_frame(json_pack("{s:s, s:s, s:o}", "op", "ack", "id", id, "event", ev));
}

struct sub_frame *gw_reply_ack_resume(const char *id, const char *epoch, const struct gw_resume *r)
{
  char a[SUB_CURSOR_MAX + 1], b[SUB_CURSOR_MAX + 1];
  json_t *what;
  if(r->gap) {
    sub_cursor_format(epoch, r->oldest, b);
    what = json_pack("{s:{s:s, s:s, s:s}}", "gap", "requested", r->requested, "oldest", b,
                     "reason", sub_gap_name(r->gap));
  } else {
    sub_cursor_format(epoch, r->from, a);
    sub_cursor_format(epoch, r->to, b);
    what = json_pack("{s:{s:s, s:s, s:I}}", "resumed", "from", a, "to", b, "replayed",
                     (json_int_t)r->replayed);
  }
  if(!what)
    return NULL;
  json_object_set_new(what, "op", json_string("ack"));
  json_object_set_new(what, "id", json_string(id));
  return dump_frame(what);
}

struct sub_frame *gw_reply_gap_error(const char *id, const char *message, const struct gw_resume *r,
                                     const char *epoch)
{
  char oldest[SUB_CURSOR_MAX + 1];
  sub_cursor_format(epoch, r->oldest, oldest);
  return dump_frame(json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "op", "error", "id", id,
                              "code", "since_unavailable", "message", message, "gap",
                              "requested", r->requested, "oldest", oldest, "reason",
                              sub_gap_name(r->gap)));
}

struct sub_frame *gw_reply_pong(const char *id)
{
  return dump_frame(json_pack("{s:s, s:s}", "op", "pong", "id", id));
}

struct sub_frame *gw_reply_error(const char *id, const char *code, const char *message)
{
  if(id)
    return dump_frame(json_pack("{s:s, s:s, s:s, s:s}", "op", "error", "id", id, "code", code,
                                "message", message));
  return dump_frame(json_pack("{s:s, s:s, s:s}", "op", "error", "code", code, "message", message));
}

struct sub_frame *gw_reply_schema_violation(const char *id, const char *message, json_t *errors,
                                            bool truncated)
{
  if(!errors)
    return NULL;
  return dump_frame(json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "op", "error", "id", id, "code",
                              "schema_violation", "message", message, "errors", errors,
                              "truncated", truncated));
}

int gw_event_head(const struct sub_event *ev, char *head, size_t cap)
{
  char time[SUB_TIME_LEN + 1];
  sub_time_format(ev->ms, time);
  /* the envelope around data: fixed text, the topic, the id, a 20-digit
   * seq at most, the offset and cursor when logged, and the time */
  int hn;
  if(ev->offset)
    hn = snprintf(head, cap,
                  "{\"op\":\"event\",\"topic\":\"%s\",\"id\":\"%s\",\"seq\":%" PRIu64
                  ",\"offset\":%" PRIu64 ",\"cursor\":\"%s:%" PRIu64 "\",\"time\":\"%s\",\"data\":",
                  ev->topic, ev->id, ev->seq, ev->offset, ev->epoch, ev->offset, time);
  else
    hn = snprintf(head, cap,
                  "{\"op\":\"event\",\"topic\":\"%s\",\"id\":\"%s\",\"seq\":%" PRIu64
                  ",\"time\":\"%s\",\"data\":",
                  ev->topic, ev->id, ev->seq, time);
  if(hn < 0 || (size_t)hn >= cap)
    return -1;
  return hn;
}

struct sub_frame *gw_v1_event_frame(const struct sub_event *ev, void *arg)
{
  (void)arg;
  char head[GW_EVENT_HEAD_MAX];
  int hn = gw_event_head(ev, head, sizeof(head));
  if(hn < 0)
    return NULL;
  struct sub_frame *f = gw_ws_frame_alloc((size_t)hn + ev->data_len + 1);
  if(!f)
    return NULL;
  unsigned char *p = sub_frame_body(f);
  memcpy(p, head, (size_t)hn);
  memcpy(p + hn, ev->data, ev->data_len);
  p[(size_t)hn + ev->data_len] = '}';
  gw_ws_seal_text(f);
  return f;
}
