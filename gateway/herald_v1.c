#include "herald_v1.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client_port.h"
#include "engine.h"
#include "eventlog.h"
#include "log.h"
#include "protocol.h"
#include "util/throttle.h"

#define CLOSE_POLICY_VIOLATION 1008 /* RFC 6455 */

/* Refuses a subscribe or publish (op) the grants do not cover. */
static void reply_forbidden(const struct gw_v1_out *out, struct gw_session *s, const char *id,
                            const char *op, const char *topic)
{
  char msg[SUB_TOPIC_MAX + 96];
  snprintf(msg, sizeof(msg), "%s %s is not granted to this connection%s",
           op[0] == 's' ? "subscribing to" : "publishing on", topic,
           s->authed ? "" : " (anonymous: authenticate with a token)");
  gw_info("client_forbidden", "worker=%d sub=%s op=%s topic=%s", s->env->worker,
          gw_session_who(s), op, topic);
  out->send(s, gw_reply_error(id, "forbidden", msg));
}

/* A subscribe with "since": the ack says what the resume did, then the
 * replayed events go, then live ones. */
static void handle_resume(const struct gw_v1_out *out, struct gw_session *s,
                          const struct gw_msg *m)
{
  char requested[SUB_CURSOR_MAX + 40];
  if(m->since == GW_SINCE_CURSOR)
    sub_cursor_format(m->since_epoch, m->since_offset, requested);
  else
    sub_time_format(m->since_ms, requested);
  struct gw_since_req q = {.kind = m->since,
                           .epoch = m->since_epoch,
                           .offset = m->since_offset,
                           .ms = m->since_ms,
                           .gap_fail = m->gap_fail,
                           /* half the queue: room left for live events */
                           .max_bytes = (size_t)s->env->cfg->client_send_queue_bytes / 2};
  struct gw_resume res;
  struct sub_log_result replay;
  enum gw_resume_result rr = gw_session_resume(s, m->topic, m->topic_len, &q, &res, &replay);
  res.requested = requested;
  struct sub_log *log = s->env->engine ? sub_engine_history(s->env->engine) : NULL;
  switch(rr) {
  case GW_RESUME_OK:
    gw_debug("client_resumed", "worker=%d topic=%s from=%s replayed=%zu gap=%s", s->env->worker,
             m->topic, requested, res.replayed, res.gap ? sub_gap_name(res.gap) : "none");
    out->send(s, gw_reply_ack_resume(m->id, sub_log_epoch(log), &res));
    for(size_t i = 0; i < replay.n; i++)
      out->event(s, replay.ev[i]);
    sub_log_result_clear(&replay);
    return;
  case GW_RESUME_EXISTS: out->send(s, gw_reply_ack(m->id)); return;
  case GW_RESUME_FULL: {
    char msg[96];
    snprintf(msg, sizeof(msg), "at most %d subscriptions per connection",
             s->env->cfg->client_max_subscriptions);
    out->send(s, gw_reply_error(m->id, "too_many_subscriptions", msg));
    return;
  }
  case GW_RESUME_NOMEM: out->send(s, gw_reply_error(m->id, "internal_error", "out of memory")); return;
  case GW_RESUME_NO_HISTORY:
    out->send(s, gw_reply_error(m->id, "history_disabled",
                                "history is off on this server (history.enabled): 'since' "
                                "cannot be served"));
    return;
  case GW_RESUME_BAD_CURSOR:
    out->send(s, gw_reply_error(m->id, "invalid_cursor",
                                "the cursor is ahead of this server's history log"));
    return;
  case GW_RESUME_GAP: {
    char msg[SUB_CURSOR_MAX + 160], oldest[SUB_CURSOR_MAX + 1];
    sub_cursor_format(sub_log_epoch(log), res.oldest, oldest);
    snprintf(msg, sizeof(msg), "events after %s are no longer available (%s); the oldest is %s",
             requested, sub_gap_name(res.gap), oldest);
    out->send(s, gw_reply_gap_error(m->id, msg, &res, sub_log_epoch(log)));
    return;
  }
  }
}

static void handle_subscribe(const struct gw_v1_out *out, struct gw_session *s,
                             const struct gw_msg *m)
{
  if(!gw_grants_can_subscribe(gw_session_grants(s), m->topic)) {
    reply_forbidden(out, s, m->id, "subscribe", m->topic);
    return;
  }
  if(m->since != GW_SINCE_NONE) {
    handle_resume(out, s, m);
    return;
  }
  switch(gw_session_subscribe(s, m->topic, m->topic_len)) {
  case GW_SUB_ADDED:
  case GW_SUB_EXISTS: /* already subscribed: nothing to do */
    out->send(s, gw_reply_ack(m->id));
    break;
  case GW_SUB_FULL: {
    char msg[96];
    snprintf(msg, sizeof(msg), "at most %d subscriptions per connection",
             s->env->cfg->client_max_subscriptions);
    out->send(s, gw_reply_error(m->id, "too_many_subscriptions", msg));
    break;
  }
  case GW_SUB_NOMEM: out->send(s, gw_reply_error(m->id, "internal_error", "out of memory")); break;
  }
}

static void handle_unsubscribe(const struct gw_v1_out *out, struct gw_session *s,
                               const struct gw_msg *m)
{
  gw_session_unsubscribe(s, m->topic);
  out->send(s, gw_reply_ack(m->id)); /* unsubscribing twice is not an error */
}

static void handle_publish(const struct gw_v1_out *out, struct gw_session *s,
                           const struct gw_msg *m)
{
  if(!gw_grants_can_publish(gw_session_grants(s), m->topic)) {
    reply_forbidden(out, s, m->id, "publish", m->topic);
    return;
  }
  struct gw_v1_publish req = {m->id, m->topic, m->topic_len, m->data, m->data_len, m->data_value};
  switch(out->publish(s, &req)) {
  case GW_V1_PUB_TAKEN: break;
  case GW_V1_PUB_BUSY:
    out->send(s, gw_reply_error(m->id, "overloaded",
                                "too many publishes of this connection are waiting to be "
                                "stored; wait for their acks"));
    break;
  case GW_V1_PUB_NOMEM:
    out->send(s, gw_reply_error(m->id, "internal_error", "out of memory"));
    break;
  }
}

void gw_v1_published(const struct gw_v1_out *out, struct gw_session *s,
                     const struct gw_v1_published *p)
{
  struct pub_request *r = p->r;
  const char *code = pub_status_code(r->status);
  switch(r->status) {
  case PUB_ACCEPTED:
    out->send(s, gw_reply_ack_publish(p->id, &r->pub));
    return;
  case PUB_UNKNOWN_TOPIC: break;
  case PUB_SCHEMA_VIOLATION: {
    gw_debug("publish_rejected", "source=ws topic=%s rule=%s errors=%zu", p->topic, r->rule,
             json_array_size(r->errors));
    json_t *errors = r->errors;
    r->errors = NULL; /* the answer takes it */
    out->send(s, gw_reply_schema_violation(p->id, r->message, errors, r->errors_truncated));
    return;
  }
  default: gw_warn("publish_failed", "source=ws topic=%s error=%s", p->topic, code); break;
  }
  out->send(s, gw_reply_error(p->id, code, r->message));
}

struct revoke_ctx {
  const struct gw_v1_out *out;
  struct gw_session *s;
  const char *id;
};

/* Tells the client about a subscription its new token dropped. */
static void revoked(void *arg, const char *pattern)
{
  struct revoke_ctx *r = arg;
  char msg[SUB_TOPIC_MAX + 96];
  snprintf(msg, sizeof(msg), "subscription %s dropped: the new token does not grant it", pattern);
  r->out->send(r->s, gw_reply_error(r->id, "forbidden", msg));
}

/* {"op":"auth","token":...}: a first token, or a fresh one before the
 * current one expires. A refused token changes nothing. */
static void handle_auth(const struct gw_v1_out *out, struct gw_session *s, const struct gw_msg *m)
{
  struct gw_identity id;
  char why[GW_AUTH_WHY_MAX];
  if(gw_auth_verify(s->env->auth, m->token, m->token_len, (long long)time(NULL), &id, why)) {
    if(util_throttle_ok(&s->env->auth_log, time(NULL), NULL))
      gw_info("client_auth_failed", "worker=%d reason=\"%s\"", s->env->worker, why);
    out->send(s, gw_reply_error(m->id, "invalid_token", why));
    return;
  }
  gw_session_authenticate(s, &id);
  gw_debug("client_authenticated", "worker=%d sub=%s exp=%lld", s->env->worker,
           gw_session_who(s), s->id.exp);
  if(s->npatterns) {
    struct revoke_ctx r = {out, s, m->id};
    gw_session_revoke(s, revoked, &r);
  }
  out->send(s, gw_reply_ack(m->id));
}

/* Charges one message to the session's bucket. Returns true when it may
 * be handled; otherwise it was answered (or the connection is closing). */
static bool rate_ok(const struct gw_v1_out *out, struct gw_session *s, const char *id)
{
  const struct gw_config *cfg = s->env->cfg;
  int64_t wait_ms;
  switch(gw_session_rate(s, gw_now_us(), &wait_ms)) {
  case GW_RATE_OK: return true;
  case GW_RATE_CLOSE:
    gw_warn("client_rate_closed", "worker=%d refused=%d", s->env->worker, s->refused);
    out->close(s, CLOSE_POLICY_VIOLATION, "rate limit exceeded", true);
    return false;
  case GW_RATE_REFUSED: break;
  }
  if(s->refused == 1)
    gw_info("client_rate_limited", "worker=%d rate_per_s=%d", s->env->worker,
            cfg->client_rate_per_s);
  char msg[128];
  snprintf(msg, sizeof(msg),
           "more than %d messages a second (burst %d): wait %lld ms; the connection closes "
           "if this goes on",
           cfg->client_rate_per_s, cfg->client_rate_burst, (long long)wait_ms);
  out->send(s, gw_reply_error(id, "rate_limited", msg));
  return false;
}

/* When the session's token has expired at `wall`: answers token_expired
 * (with the request id, if any) and closes with 4001. Returns true when it
 * did. */
static bool close_if_expired(const struct gw_v1_out *out, struct gw_session *s, const char *id,
                             long long wall)
{
  if(!gw_session_expired(s, wall))
    return false;
  gw_info("client_token_expired", "worker=%d sub=%s", s->env->worker, gw_session_who(s));
  out->send(s, gw_reply_error(id, "token_expired",
                              "the token has expired: send an auth message with a fresh token "
                              "before exp"));
  out->close(s, GW_CLOSE_TOKEN_EXPIRED, "token expired", true);
  return true;
}

/* The dispatch of one parsed message. */
static void handle_op(const struct gw_v1_out *out, struct gw_session *s, const struct gw_msg *m)
{
  switch(m->op) {
  case GW_OP_SUBSCRIBE: handle_subscribe(out, s, m); break;
  case GW_OP_UNSUBSCRIBE: handle_unsubscribe(out, s, m); break;
  case GW_OP_PUBLISH: handle_publish(out, s, m); break;
  case GW_OP_PING: out->send(s, gw_reply_pong(m->id)); break;
  case GW_OP_AUTH: handle_auth(out, s, m); break;
  }
}

void gw_v1_message(const struct gw_v1_out *out, struct gw_session *s, const char *buf,
                   size_t len, bool binary)
{
  if(binary) {
    if(rate_ok(out, s, NULL))
      out->send(s, gw_reply_error(NULL, "unsupported_frame",
                                  "binary frames are not supported: send JSON text frames"));
    return;
  }
  struct gw_msg m;
  struct gw_proto_err err;
  int bad = gw_proto_parse(buf, len, &m, &err);
  if(!rate_ok(out, s, bad ? (err.has_id ? err.id : NULL) : m.id)) {
    if(!bad)
      gw_msg_clear(&m);
    return;
  }
  if(bad) {
    gw_debug("client_bad_message", "worker=%d code=%s", s->env->worker, err.code);
    out->send(s, gw_reply_error(err.has_id ? err.id : NULL, err.code, err.message));
    return;
  }
  /* expired since the last tick: nothing more on this token but a new one */
  if(m.op == GW_OP_AUTH || !close_if_expired(out, s, m.id, (long long)time(NULL)))
    handle_op(out, s, &m);
  gw_msg_clear(&m);
}

bool gw_v1_tick(const struct gw_v1_out *out, struct gw_session *s, int64_t now_us, long long wall)
{
  if(gw_session_auth_overdue(s, now_us)) {
    gw_info("client_auth_timeout", "worker=%d timeout_ms=%d", s->env->worker,
            s->env->cfg->auth_timeout_ms);
    out->send(s, gw_reply_error(NULL, "auth_timeout",
                                "no auth message with a valid token in time "
                                "(auth.timeout_ms)"));
    out->close(s, GW_CLOSE_AUTH_TIMEOUT, "authentication timeout", true);
    return true;
  }
  return close_if_expired(out, s, NULL, wall);
}


