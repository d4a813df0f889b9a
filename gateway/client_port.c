#include "client_port.h"

#include <errno.h>
#include <ev.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "index.h"
#include "log.h"
#include "net.h"
#include "protocol.h"
#include "topic_rules.h"

#define WS_PUBS_MAX 64    /* publishes of one connection waiting for their commit */
#define WRITE_CHUNK 65536 /* bytes coalesced into one write */
#define CLOSE_GRACE_S 5   /* how long a closing socket may take to flush */
#define SEND_STALL_S 30   /* data queued and the socket never writeable: cut */
#define TICK_MS 250       /* timers: auth deadline, token expiry, pings, idle */
#define IP_BUCKETS 4096   /* the per-address connection counts */

struct worker;

/* Frames waiting to be written to one connection: a ring of references. */
struct outq {
  struct sub_frame **f;
  size_t head, n, cap;
  size_t bytes; /* of the frames queued, the partly written head included */
  size_t off;   /* bytes of the head frame already written */
};

/* Open sockets from one client address (client.max_connections_per_ip). */
struct ip_node {
  unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 */
  int count;
  struct ip_node *next;
};

/* What Herald keeps on each adopted socket (libwebsockets' opaque user
 * data), from accept to destruction: its address's count, and the identity
 * a token verified at the handshake gave, until the connection takes it. */
struct sock_info {
  struct ip_node *ip;       /* NULL without a per-address limit */
  struct gw_identity *id;   /* verified at the handshake, not yet taken */
};

/* One WebSocket connection: libwebsockets' per-session data. */
struct ws_pub;

struct conn {
  struct sub_subscriber sub; /* in the worker's index */
  struct ws_pub *pubs;       /* publishes waiting for their commit */
  int npubs;
  struct worker *w;
  struct lws *wsi;
  struct conn *prev, *next; /* the worker's list of connections */
  char **patterns;
  int npatterns;
  struct outq out;
  unsigned char *rx; /* a message arriving in several fragments */
  size_t rx_len, rx_cap;
  bool rx_binary;
  bool established;
  bool closing;
  bool page_pending; /* plain HTTP: the demo page's body is still to be sent */
  uint16_t close_code;
  char close_reason[124]; /* what fits a close frame after the code */
  bool close_sent;        /* our close frame is out: waiting for the peer's */
  bool authed;              /* id holds a verified token */
  struct gw_identity id;
  int64_t auth_deadline_us; /* 0: no auth message required */
  int64_t last_rx_us;       /* anything received, pongs included */
  int64_t progress_us;      /* frames queued: since when nothing was written */
  bool ping_due;            /* send a ping at the next writeable moment */
  bool dirty;               /* on the worker's list of connections to write */
  struct conn *dirty_next;
  bool ping_sent;
  struct gw_bucket bucket;
  int refused;             /* messages rate-limited since the last quiet second */
  int64_t last_refused_us;
};

struct worker {
  int idx;
  struct gw_client_port *cp;
  pthread_t thread;
  bool started;
  struct ev_loop *loop; /* epoll: libwebsockets' own loop is poll() */
  struct lws_context *ctx;
  struct lws_vhost *vh;
  struct sub_index *index;
  struct sub_batch batch;
  struct conn *conns;
  size_t nconns;
  bool delivering;    /* in a batch of events: conn_send defers to dirty */
  struct conn *dirty; /* connections given frames by the batch */
  unsigned char *scratch; /* LWS_PRE + WRITE_CHUNK: coalesced writes */
  lws_sorted_usec_list_t tick;
  time_t last_refused_log, last_auth_log; /* refusals are logged once a second */
  time_t last_slow_log;                    /* and slow consumers */
  unsigned long slow_unlogged;             /* closed since the last such line */

  pthread_mutex_t lock; /* guards the fields below: the acceptor's hand-over */
  struct handed {
    int fd;
    struct ip_node *ip;
  } *fds;
  size_t nfds, capfds;

  struct ws_pub *answers, *answers_tail; /* committed publishes to answer (under lock) */
  atomic_int outstanding;                /* publishes the webhooks layer still holds */

  atomic_bool stopping; /* close every client with 1001 */
  atomic_bool exit;     /* leave the service loop */
  atomic_bool done;     /* no connection left (or the loop has left) */
};

struct gw_client_port {
  const struct gw_config *cfg;
  struct sub_broker *broker;
  struct sub_fanout *fanout;
  const struct gw_rules *rules;
  struct hook_service *hooks;
  struct gw_auth *auth;
  int listen_fd;
  int stop_fd; /* eventfd: wakes the acceptor to stop */
  pthread_t acceptor;
  bool acceptor_started;
  atomic_size_t live;
  int nworkers;
  struct worker *workers;
  struct lws_protocols protocols[2];
  bool open_loopback;      /* no authentication, on loopback: Host is checked */
  pthread_mutex_t ip_lock; /* the acceptor adds, the workers remove */
  struct ip_node *ips[IP_BUCKETS];
};

/* The demo page, gateway/demo.html, embedded at build time. */
extern const char gw_demo_page[];
extern const size_t gw_demo_page_len;

/* --- connections per client address --------------------------------- */

static size_t ip_hash(const unsigned char addr[16])
{
  return (size_t)(sub_topic_hash((const char *)addr, 16) % IP_BUCKETS);
}

/* Counts one more socket from addr. Returns its node, or NULL when the
 * address is at its limit (or out of memory). */
static struct ip_node *ip_acquire(struct gw_client_port *cp, const unsigned char addr[16])
{
  size_t h = ip_hash(addr);
  struct ip_node *n;
  pthread_mutex_lock(&cp->ip_lock);
  for(n = cp->ips[h]; n && memcmp(n->addr, addr, 16) != 0; n = n->next)
    ;
  if(!n && (n = calloc(1, sizeof(*n)))) {
    memcpy(n->addr, addr, 16);
    n->next = cp->ips[h];
    cp->ips[h] = n;
  }
  if(n && n->count >= cp->cfg->client_max_connections_per_ip)
    n = NULL;
  else if(n)
    n->count++;
  pthread_mutex_unlock(&cp->ip_lock);
  return n;
}

static void ip_release(struct gw_client_port *cp, struct ip_node *n)
{
  if(!n)
    return;
  size_t h = ip_hash(n->addr);
  pthread_mutex_lock(&cp->ip_lock);
  if(--n->count == 0) {
    struct ip_node **pp = &cp->ips[h];
    while(*pp != n)
      pp = &(*pp)->next;
    *pp = n->next;
    free(n);
  }
  pthread_mutex_unlock(&cp->ip_lock);
}

static void sock_info_free(struct gw_client_port *cp, struct sock_info *si)
{
  if(!si)
    return;
  ip_release(cp, si->ip);
  if(si->id) {
    gw_identity_clear(si->id);
    free(si->id);
  }
  free(si);
}

/* --- the outgoing queue ------------------------------------------------ */

/* Drops every frame but the head when the head is partly written: cutting
 * a frame short would leave the peer's parser inside it. */
static void outq_drop_unstarted(struct outq *q)
{
  size_t keep = q->off ? 1 : 0;
  while(q->n > keep) {
    size_t last = (q->head + q->n - 1) % q->cap;
    q->bytes -= q->f[last]->len;
    sub_frame_unref(q->f[last]);
    q->n--;
  }
}

static void outq_clear(struct outq *q)
{
  for(size_t i = 0; i < q->n; i++)
    sub_frame_unref(q->f[(q->head + i) % q->cap]);
  free(q->f);
  memset(q, 0, sizeof(*q));
}

/* Appends a reference to f. Returns 0, or -1 when out of memory. */
static int outq_push(struct outq *q, struct sub_frame *f)
{
  if(q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 8;
    struct sub_frame **nf = malloc(cap * sizeof(*nf));
    if(!nf)
      return -1;
    for(size_t i = 0; i < q->n; i++)
      nf[i] = q->f[(q->head + i) % q->cap];
    free(q->f);
    q->f = nf;
    q->cap = cap;
    q->head = 0;
  }
  q->f[(q->head + q->n) % q->cap] = sub_frame_ref(f);
  q->n++;
  q->bytes += f->len;
  return 0;
}

static struct sub_frame *outq_peek(struct outq *q)
{
  return q->n ? q->f[q->head] : NULL;
}

static void outq_drop_head(struct outq *q)
{
  struct sub_frame *f = q->f[q->head];
  q->bytes -= f->len;
  q->off = 0;
  q->head = (q->head + 1) % q->cap;
  q->n--;
  sub_frame_unref(f);
}

/* --- closing ----------------------------------------------------------- */

/* Starts closing the connection with code/reason: drops what is queued
 * (memory is freed now, not when the peer reads) but the rest of a frame
 * already partly written, sends the close frame after it at the next
 * writeable moments, and kills the socket if they never come. */
static void close_with(struct conn *c, uint16_t code, const char *reason, bool flush)
{
  if(c->closing)
    return;
  c->closing = true;
  c->close_code = code;
  snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
  if(!flush)
    outq_drop_unstarted(&c->out);
  free(c->rx);
  c->rx = NULL;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
  lws_callback_on_writable(c->wsi);
}

/* Closes the socket without a close frame (it cannot take one), after the
 * current callback: the connection is not freed under its caller. */
static void conn_cut(struct conn *c)
{
  c->closing = true;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void conn_close(struct conn *c, uint16_t code, const char *reason)
{
  close_with(c, code, reason, false);
}

/* Closes after what is queued (an error op explaining why) is written. */
static void conn_close_flush(struct conn *c, uint16_t code, const char *reason)
{
  close_with(c, code, reason, true);
}

/* True at most once a second per *last: for log lines a client can cause
 * at will. */
static bool log_now(time_t *last)
{
  time_t now = time(NULL);
  if(now == *last)
    return false;
  *last = now;
  return true;
}

/* Queues a frame for the connection, closing it as a slow consumer when its
 * queue would pass the cap. Takes no reference from the caller. */
static void conn_send(struct conn *c, struct sub_frame *f)
{
  if(c->closing || !f)
    return;
  size_t cap = (size_t)c->w->cp->cfg->client_send_queue_bytes;
  if(c->out.bytes + f->len > cap) {
    c->w->slow_unlogged++; /* one line a second: a publish can cut thousands */
    if(log_now(&c->w->last_slow_log)) {
      gw_warn("slow_consumer", "worker=%d queued_bytes=%zu cap=%zu closed=%lu", c->w->idx,
              c->out.bytes, cap, c->w->slow_unlogged);
      c->w->slow_unlogged = 0;
    }
    conn_close(c, GW_CLOSE_SLOW_CONSUMER, "slow consumer");
    return;
  }
  bool was_empty = c->out.n == 0;
  if(outq_push(&c->out, f)) {
    conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return;
  }
  if(was_empty) {
    if(c->w->delivering) { /* written when the batch is done */
      if(!c->dirty) {
        c->dirty = true;
        c->dirty_next = c->w->dirty;
        c->w->dirty = c;
      }
    } else
      lws_callback_on_writable(c->wsi);
    /* the stall clock starts; the worker's tick checks it (a libwebsockets
     * timeout here would be a sorted-list insert per delivery: 59 % of the
     * CPU at 10,000 connections) */
    c->progress_us = gw_now_us();
  }
}

static void conn_reply(struct conn *c, struct sub_frame *f)
{
  conn_send(c, f);
  if(f)
    sub_frame_unref(f);
  else
    conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
}

/* --- handling client messages ----------------------------------------- */

/* What the connection may do now: its token's grants, or anonymous's. */
static const struct gw_grants *conn_grants(const struct conn *c)
{
  return c->authed ? &c->id.grants : gw_auth_anonymous(c->w->cp->auth);
}

/* Refuses a subscribe or publish (op) the grants do not cover. */
static void reply_forbidden(struct conn *c, const char *id, const char *op, const char *topic)
{
  char msg[SUB_TOPIC_MAX + 96];
  snprintf(msg, sizeof(msg), "%s %s is not granted to this connection%s",
           op[0] == 's' ? "subscribing to" : "publishing on", topic,
           c->authed ? "" : " (anonymous: authenticate with a token)");
  gw_info("client_forbidden", "worker=%d sub=%s op=%s topic=%s", c->w->idx,
          c->authed && c->id.sub[0] ? c->id.sub : "-", op, topic);
  conn_reply(c, gw_reply_error(id, "forbidden", msg));
}

static int find_pattern(const struct conn *c, const char *p)
{
  for(int i = 0; i < c->npatterns; i++)
    if(strcmp(c->patterns[i], p) == 0)
      return i;
  return -1;
}

static void handle_subscribe(struct conn *c, const struct gw_msg *m)
{
  if(!gw_grants_can_subscribe(conn_grants(c), m->topic)) {
    reply_forbidden(c, m->id, "subscribe", m->topic);
    return;
  }
  if(find_pattern(c, m->topic) >= 0) {
    conn_reply(c, gw_reply_ack(m->id)); /* already subscribed: nothing to do */
    return;
  }
  int max = c->w->cp->cfg->client_max_subscriptions;
  if(c->npatterns >= max) {
    char msg[96];
    snprintf(msg, sizeof(msg), "at most %d subscriptions per connection", max);
    conn_reply(c, gw_reply_error(m->id, "too_many_subscriptions", msg));
    return;
  }
  if(!c->patterns) {
    c->patterns = calloc((size_t)max, sizeof(*c->patterns));
    if(!c->patterns)
      goto oom;
  }
  char *p = strdup(m->topic);
  if(!p)
    goto oom;
  if(sub_index_add(c->w->index, p, m->topic_len, &c->sub)) {
    free(p);
    goto oom;
  }
  sub_fanout_interest(c->w->cp->fanout, c->w->idx, p, m->topic_len, 1); /* before the ack */
  c->patterns[c->npatterns++] = p;
  conn_reply(c, gw_reply_ack(m->id));
  return;
oom:
  conn_reply(c, gw_reply_error(m->id, "internal_error", "out of memory"));
}

/* Removes the connection's subscription i (the last one takes its place). */
static void unsubscribe_at(struct conn *c, int i)
{
  sub_index_remove(c->w->index, c->patterns[i], strlen(c->patterns[i]), &c->sub);
  sub_fanout_interest(c->w->cp->fanout, c->w->idx, c->patterns[i], strlen(c->patterns[i]), -1);
  free(c->patterns[i]);
  c->patterns[i] = c->patterns[--c->npatterns];
}

static void handle_unsubscribe(struct conn *c, const struct gw_msg *m)
{
  int i = find_pattern(c, m->topic);
  if(i >= 0)
    unsubscribe_at(c, i);
  conn_reply(c, gw_reply_ack(m->id)); /* unsubscribing twice is not an error */
}

/* A WebSocket publish the webhooks layer may hold until its commit. */
struct ws_pub {
  struct hook_publish p;
  struct worker *w;
  struct conn *c;               /* NULL once the connection is gone (worker thread only) */
  struct ws_pub *cprev, *cnext; /* the connection's pending publishes */
  struct ws_pub *done_next;     /* the worker's done list */
  char req_id[GW_MSG_ID_MAX + 1];
  char topic[SUB_TOPIC_MAX + 1];
};

/* Answers the publish (if its connection is still there) and frees it.
 * Worker thread. */
static void ws_pub_finish(struct ws_pub *wp)
{
  struct conn *c = wp->c;
  if(c) {
    if(wp->cprev)
      wp->cprev->cnext = wp->cnext;
    else
      c->pubs = wp->cnext;
    if(wp->cnext)
      wp->cnext->cprev = wp->cprev;
    c->npubs--;
    if(wp->p.status == 202)
      conn_reply(c,
                 gw_reply_ack_publish(wp->req_id, wp->p.pub.id, (unsigned long long)wp->p.pub.seq));
    else {
      gw_warn("publish_failed", "source=ws topic=%s error=%s", wp->topic, wp->p.error_code);
      conn_reply(c, gw_reply_error(wp->req_id, wp->p.error_code, wp->p.error_message));
    }
  }
  free((void *)wp->p.data);
  free(wp);
}

/* The webhooks layer finished a held publish (dispatcher thread): hand it
 * to its worker. */
static void ws_pub_done(struct hook_publish *p)
{
  struct ws_pub *wp = p->arg;
  struct worker *w = wp->w;
  pthread_mutex_lock(&w->lock);
  if(w->answers_tail)
    w->answers_tail->done_next = wp;
  else
    w->answers = wp;
  w->answers_tail = wp;
  pthread_mutex_unlock(&w->lock);
  lws_cancel_service(w->ctx);
  atomic_fetch_sub(&w->outstanding, 1); /* last: w may be freed once it is 0 */
}

static void handle_publish(struct conn *c, const struct gw_msg *m)
{
  if(!gw_grants_can_publish(conn_grants(c), m->topic)) {
    reply_forbidden(c, m->id, "publish", m->topic);
    return;
  }
  const struct gw_rules *rules = c->w->cp->rules;
  if(gw_rules_active(rules)) {
    struct schema_result res;
    const char *rule;
    switch(gw_rules_check(rules, m->topic, m->data_value, &res, &rule)) {
    case GW_VERDICT_OK: break;
    case GW_VERDICT_UNKNOWN_TOPIC:
      conn_reply(c, gw_reply_error(m->id, "unknown_topic",
                                   "no topic rule matches this topic (schemas.unmatched_topics is "
                                   "\"reject\")"));
      return;
    case GW_VERDICT_INVALID: {
      char msg[SUB_TOPIC_MAX + 64];
      snprintf(msg, sizeof(msg), "data does not match the schema of topic rule \"%s\"", rule);
      gw_debug("publish_rejected", "source=ws topic=%s rule=%s errors=%zu", m->topic, rule,
               res.count);
      conn_reply(c,
                 gw_reply_schema_violation(m->id, msg, gw_rules_errors_json(&res), res.truncated));
      return;
    }
    }
  }
  if(c->npubs >= WS_PUBS_MAX) {
    conn_reply(c, gw_reply_error(m->id, "overloaded",
                                 "too many publishes of this connection are waiting to be "
                                 "stored; wait for their acks"));
    return;
  }
  struct ws_pub *wp = calloc(1, sizeof(*wp));
  char *data = wp ? malloc(m->data_len + 1) : NULL;
  if(!data) {
    free(wp);
    conn_reply(c, gw_reply_error(m->id, "internal_error", "out of memory"));
    return;
  }
  memcpy(data, m->data, m->data_len);
  data[m->data_len] = '\0';
  memcpy(wp->topic, m->topic, m->topic_len + 1);
  memcpy(wp->req_id, m->id, sizeof(wp->req_id));
  wp->p.topic = wp->topic;
  wp->p.topic_len = m->topic_len;
  wp->p.data = data;
  wp->p.data_len = m->data_len;
  wp->p.done = ws_pub_done;
  wp->p.arg = wp;
  wp->w = c->w;
  wp->c = c;
  wp->cnext = c->pubs;
  if(c->pubs)
    c->pubs->cprev = wp;
  c->pubs = wp;
  c->npubs++;
  /* When webhooks match the topic the ack waits for the commit: the worker
   * goes on serving meanwhile, and answers from worker_wake. */
  atomic_fetch_add(&c->w->outstanding, 1);
  if(hook_publish(c->w->cp->hooks, &wp->p) == HOOK_PUB_DONE) {
    atomic_fetch_sub(&c->w->outstanding, 1);
    ws_pub_finish(wp);
  }
}

/* Drops the subscriptions the connection's grants no longer cover (after a
 * new token), telling the client about each under the auth message's id. */
static void revoke_subscriptions(struct conn *c, const char *id)
{
  for(int i = 0; i < c->npatterns;) {
    if(gw_grants_can_subscribe(conn_grants(c), c->patterns[i])) {
      i++;
      continue;
    }
    char msg[SUB_TOPIC_MAX + 96];
    snprintf(msg, sizeof(msg), "subscription %s dropped: the new token does not grant it",
             c->patterns[i]);
    conn_reply(c, gw_reply_error(id, "forbidden", msg));
    unsubscribe_at(c, i);
  }
}

/* {"op":"auth","token":...}: a first token, or a fresh one before the
 * current one expires. A refused token changes nothing. */
static void handle_auth(struct conn *c, const struct gw_msg *m)
{
  struct gw_identity id;
  char why[GW_AUTH_WHY_MAX];
  if(gw_auth_verify(c->w->cp->auth, m->token, m->token_len, (long long)time(NULL), &id, why)) {
    if(log_now(&c->w->last_auth_log))
      gw_info("client_auth_failed", "worker=%d reason=\"%s\"", c->w->idx, why);
    conn_reply(c, gw_reply_error(m->id, "invalid_token", why));
    return;
  }
  if(c->authed)
    gw_identity_clear(&c->id);
  c->id = id;
  c->authed = true;
  c->auth_deadline_us = 0;
  gw_debug("client_authenticated", "worker=%d sub=%s exp=%lld", c->w->idx,
           c->id.sub[0] ? c->id.sub : "-", c->id.exp);
  if(c->npatterns)
    revoke_subscriptions(c, m->id);
  conn_reply(c, gw_reply_ack(m->id));
}

/* Charges one message to the connection's bucket. Returns true when it may
 * be handled; otherwise it was answered (or the connection is closing). */
static bool rate_ok(struct conn *c, const char *id)
{
  const struct gw_config *cfg = c->w->cp->cfg;
  int64_t now = gw_now_us();
  int64_t wait_ms = gw_bucket_take(&c->bucket, now);
  if(!wait_ms) {
    /* a flood that lets one message through now and then goes on counting */
    if(c->refused && now - c->last_refused_us > 1000000)
      c->refused = 0;
    return true;
  }
  c->last_refused_us = now;
  if(++c->refused >= cfg->client_rate_close_after) {
    gw_warn("client_rate_closed", "worker=%d refused=%d", c->w->idx, c->refused);
    conn_close_flush(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded");
    return false;
  }
  if(c->refused == 1)
    gw_info("client_rate_limited", "worker=%d rate_per_s=%d", c->w->idx, cfg->client_rate_per_s);
  char msg[128];
  snprintf(msg, sizeof(msg),
           "more than %d messages a second (burst %d): wait %lld ms; the connection closes "
           "if this goes on",
           cfg->client_rate_per_s, cfg->client_rate_burst, (long long)wait_ms);
  conn_reply(c, gw_reply_error(id, "rate_limited", msg));
  return false;
}

/* When the connection's token has expired (past the leeway) at `wall`:
 * answers token_expired (with the request id, if any) and closes with 4001.
 * Returns true when it did. */
static bool close_if_expired(struct conn *c, const char *id, long long wall)
{
  if(!c->authed || wall - c->w->cp->cfg->auth_leeway_s <= c->id.exp)
    return false;
  gw_info("client_token_expired", "worker=%d sub=%s", c->w->idx, c->id.sub[0] ? c->id.sub : "-");
  conn_reply(c, gw_reply_error(id, "token_expired",
                               "the token has expired: send an auth message with a fresh token "
                               "before exp"));
  conn_close_flush(c, GW_CLOSE_TOKEN_EXPIRED, "token expired");
  return true;
}

static void handle_message(struct conn *c, const char *buf, size_t len, bool binary)
{
  if(binary) {
    if(rate_ok(c, NULL))
      conn_reply(c, gw_reply_error(NULL, "unsupported_frame",
                                   "binary frames are not supported: send JSON text frames"));
    return;
  }
  struct gw_msg m;
  struct gw_proto_err err;
  int bad = gw_proto_parse(buf, len, &m, &err);
  if(!rate_ok(c, bad ? (err.has_id ? err.id : NULL) : m.id)) {
    if(!bad)
      gw_msg_clear(&m);
    return;
  }
  if(bad) {
    gw_debug("client_bad_message", "worker=%d code=%s", c->w->idx, err.code);
    conn_reply(c, gw_reply_error(err.has_id ? err.id : NULL, err.code, err.message));
    return;
  }
  /* expired since the last tick: nothing more on this token but a new one */
  if(m.op != GW_OP_AUTH && close_if_expired(c, m.id, (long long)time(NULL))) {
    gw_msg_clear(&m);
    return;
  }
  switch(m.op) {
  case GW_OP_SUBSCRIBE: handle_subscribe(c, &m); break;
  case GW_OP_UNSUBSCRIBE: handle_unsubscribe(c, &m); break;
  case GW_OP_PUBLISH: handle_publish(c, &m); break;
  case GW_OP_PING: conn_reply(c, gw_reply_pong(m.id)); break;
  case GW_OP_AUTH: handle_auth(c, &m); break;
  }
  gw_msg_clear(&m);
}

/* Takes in one piece of a message. Returns 0, or -1 to close the connection
 * (the close reason is set). */
static int conn_receive(struct conn *c, const void *in, size_t len)
{
  struct lws *wsi = c->wsi;
  size_t max = (size_t)c->w->cp->cfg->client_max_message_bytes;
  c->last_rx_us = gw_now_us();
  c->ping_sent = false;
  bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
  if(first) {
    c->rx_len = 0;
    c->rx_binary = lws_frame_is_binary(wsi);
  }
  if(c->rx_len + len + lws_remaining_packet_payload(wsi) > max) {
    char reason[64];
    snprintf(reason, sizeof(reason), "message larger than %zu bytes", max);
    gw_info("client_message_too_large", "worker=%d max=%zu", c->w->idx, max);
    conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, reason); /* the rest is read and dropped */
    return 0;
  }
  if(first && final) {
    handle_message(c, in ? in : "", len, c->rx_binary);
    return 0;
  }
  if(c->rx_len + len > c->rx_cap) { /* grow by doubling, never past max */
    size_t cap = c->rx_cap ? c->rx_cap : 4096;
    while(cap < c->rx_len + len)
      cap *= 2;
    if(cap > max)
      cap = max;
    unsigned char *nb = realloc(c->rx, cap);
    if(!nb) {
      lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, (unsigned char *)"oom", 3);
      return -1;
    }
    c->rx = nb;
    c->rx_cap = cap;
  }
  if(len) /* an empty fragment may come with in == NULL */
    memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
  if(final) {
    handle_message(c, c->rx ? (const char *)c->rx : "", c->rx_len, c->rx_binary);
    free(c->rx); /* big buffers only live while a message is in flight */
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
  }
  return 0;
}

/* Writes the head of the queue, up to WRITE_CHUNK bytes coalesced from as
 * many frames as fit (a bigger frame goes in slices), in one lws_write per
 * writeable callback. What the kernel does not take, libwebsockets keeps
 * and flushes before calling back again, so it holds at most WRITE_CHUNK
 * bytes of a connection beside the queue. Returns 0, or -1 on failure. */
static int conn_write(struct conn *c)
{
  unsigned char *buf = c->w->scratch + LWS_PRE;
  size_t n = 0;
  if(c->ping_due && c->out.off == 0) { /* never inside a frame begun */
    c->ping_due = false;
    buf[0] = 'h'; /* libwebsockets reports empty pongs to nobody */
    if(lws_write(c->wsi, buf, 1, LWS_WRITE_PING) < 0)
      return -1;
    if(c->out.n)
      lws_callback_on_writable(c->wsi);
    return 0;
  }
  struct sub_frame *f;
  while(n < WRITE_CHUNK && (f = outq_peek(&c->out))) {
    size_t take = f->len - c->out.off;
    if(take > WRITE_CHUNK - n)
      take = WRITE_CHUNK - n;
    memcpy(buf + n, f->wire + c->out.off, take);
    n += take;
    c->out.off += take;
    if(c->out.off < f->len)
      break;
    outq_drop_head(&c->out);
  }
  if(n && lws_write(c->wsi, buf, n, LWS_WRITE_RAW) < (int)n)
    return -1;
  if(c->closing) { /* the close frame follows; its timeout stays as set */
    lws_callback_on_writable(c->wsi);
    return 0;
  }
  if(c->out.n) {
    lws_callback_on_writable(c->wsi);
    c->progress_us = gw_now_us(); /* progress: the stall clock restarts */
  }
  return 0;
}

static void conn_established(struct conn *c, struct lws *wsi, struct worker *w)
{
  const struct gw_config *cfg = w->cp->cfg;
  memset(c, 0, sizeof(*c));
  c->w = w;
  c->wsi = wsi;
  c->established = true;
  int64_t now = gw_now_us();
  c->last_rx_us = now;
  gw_bucket_init(&c->bucket, cfg->client_rate_per_s, cfg->client_rate_burst, now);
  struct sock_info *si = lws_get_opaque_user_data(wsi);
  if(si && si->id) { /* the handshake's token: the connection owns it now */
    c->id = *si->id;
    c->authed = true;
    free(si->id);
    si->id = NULL;
  }
  lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* the handshake's is over */
  const struct gw_grants *anon = gw_auth_anonymous(w->cp->auth);
  if(!c->authed && !anon->nsubscribe && !anon->npublish)
    c->auth_deadline_us = now + (int64_t)cfg->auth_timeout_ms * 1000;
  c->next = w->conns;
  if(w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  gw_debug("client_connected", "worker=%d connections=%zu", w->idx, w->nconns);
  if(atomic_load(&w->stopping))
    conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

static void conn_closed(struct conn *c)
{
  struct worker *w = c->w;
  if(!c->established)
    return;
  if(!c->closing && c->out.n)
    gw_warn("send_stalled", "worker=%d queued_bytes=%zu", w->idx, c->out.bytes);
  while(c->npatterns)
    unsubscribe_at(c, c->npatterns - 1);
  free(c->patterns);
  outq_clear(&c->out);
  free(c->rx);
  if(c->authed)
    gw_identity_clear(&c->id);
  c->authed = false;
  for(struct ws_pub *wp = c->pubs; wp; wp = wp->cnext)
    wp->c = NULL; /* their answers have nowhere to go */
  c->pubs = NULL;
  c->npubs = 0;
  if(c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if(c->next)
    c->next->prev = c->prev;
  w->nconns--;
  c->established = false;
  gw_debug("client_closed", "worker=%d code=%u connections=%zu", w->idx,
           c->closing ? c->close_code : 0u, w->nconns);
}

/* Sends the close frame and waits for the peer's (or CLOSE_GRACE_S): closing
 * the socket at once would reset the connection when the peer's data is
 * still in flight, and the peer would lose the close frame with the code.
 * Returns what the writeable callback returns. */
static int send_close(struct conn *c)
{
  if(c->close_sent)
    return 0;
  /* built here (libwebsockets 4.1 has no public close write), as raw
   * bytes like every frame Herald sends */
  unsigned char *buf = c->w->scratch + LWS_PRE;
  size_t n = strlen(c->close_reason); /* at most 123: the frame stays a control frame */
  buf[0] = 0x88; /* FIN, close */
  buf[1] = (unsigned char)(n + 2);
  buf[2] = (unsigned char)(c->close_code >> 8);
  buf[3] = (unsigned char)c->close_code;
  memcpy(buf + 4, c->close_reason, n);
  if(lws_write(c->wsi, buf, n + 4, LWS_WRITE_RAW) < (int)(n + 4))
    return -1;
  c->close_sent = true;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
  return 0;
}

/* --- the worker's service thread --------------------------------------- */

/* Writes what the batch of events queued, at once: one write per
 * connection, all the batch's frames for it coalesced. Waiting for the
 * writeable callback instead costs two epoll_ctl calls per connection and a
 * loop turn. A connection that cannot take it now (closing, a ping due,
 * bytes libwebsockets still holds) waits for its callback as before.
 * Nothing here closes a connection synchronously: the list stays valid. */
static void write_dirty(struct worker *w)
{
  struct conn *c = w->dirty;
  w->dirty = NULL;
  while(c) {
    struct conn *next = c->dirty_next;
    c->dirty = false;
    c->dirty_next = NULL;
    if(c->closing || c->ping_due || lws_partial_buffered(c->wsi))
      lws_callback_on_writable(c->wsi);
    else if(conn_write(c)) /* the socket failed */
      conn_cut(c);
    c = next;
  }
}

static void deliver(struct sub_subscriber *s, void *arg)
{
  struct conn *c = (struct conn *)((char *)s - offsetof(struct conn, sub));
  conn_send(c, arg);
}

/* Runs on the worker's thread after lws_cancel_service: adopts handed-over
 * sockets, delivers queued events, and starts closing on shutdown. */
static void worker_wake(struct worker *w)
{
  pthread_mutex_lock(&w->lock);
  struct handed *fds = w->fds;
  size_t nfds = w->nfds;
  w->fds = NULL;
  w->nfds = w->capfds = 0;
  struct ws_pub *done = w->answers;
  w->answers = w->answers_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  while(done) {
    struct ws_pub *next = done->done_next;
    ws_pub_finish(done);
    done = next;
  }
  for(size_t i = 0; i < nfds; i++) {
    struct sock_info *si = calloc(1, sizeof(*si));
    struct lws *wsi = si ? lws_adopt_socket_vhost(w->vh, fds[i].fd) : NULL;
    if(!wsi) {
      gw_warn("adopt_failed", "worker=%d", w->idx);
      if(!si)
        close(fds[i].fd);
      free(si);
      ip_release(w->cp, fds[i].ip);
      atomic_fetch_sub(&w->cp->live, 1); /* lws closed the socket */
      continue;
    }
    si->ip = fds[i].ip; /* owned by the socket now */
    lws_set_opaque_user_data(wsi, si);
    /* until the WebSocket handshake completes (TLS included); a socket that
     * sends nothing is not timed out by libwebsockets 4.1 otherwise */
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, w->cp->cfg->client_handshake_timeout_s);
  }
  free(fds);

  if(sub_fanout_take(w->cp->fanout, w->idx, &w->batch)) {
    w->delivering = true;
    for(size_t i = 0; i < w->batch.n; i++) {
      struct sub_event *ev = w->batch.ev[i];
      struct sub_frame *f = sub_event_encoded(ev, 0, gw_v1_event_frame, NULL);
      if(f) /* else out of memory: nobody gets it */
        sub_index_match(w->index, ev->topic, ev->topic_len, deliver, f);
      sub_event_unref(ev);
    }
    w->batch.n = 0;
    w->delivering = false;
    write_dirty(w);
  }

  if(atomic_load(&w->stopping)) {
    for(struct conn *c = w->conns; c; c = c->next)
      conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    if(!w->nconns)
      atomic_store(&w->done, true);
  }
}

/* Answers GET or HEAD / with the embedded demo page: headers now, the body
 * (GET only) at the next writeable callback. Returns what the lws callback
 * returns. */
static int demo_page_headers(struct lws *wsi, struct conn *c)
{
  unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
  if(lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/html; charset=utf-8", gw_demo_page_len,
                                 &p, end) ||
     lws_finalize_write_http_header(wsi, start, &p, end))
    return 1;
  if(!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) /* HEAD: headers only */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  c->page_pending = true;
  lws_callback_on_writable(wsi);
  return 0;
}

static int demo_page_body(struct lws *wsi, struct conn *c)
{
  struct worker *w = lws_context_user(lws_get_context(wsi));
  if(!c->page_pending) /* a writeable callback we did not ask for */
    return 0;
  c->page_pending = false;
  if(gw_demo_page_len > WRITE_CHUNK)
    return -1;
  memcpy(w->scratch + LWS_PRE, gw_demo_page, gw_demo_page_len);
  if(lws_write(wsi, w->scratch + LWS_PRE, gw_demo_page_len, LWS_WRITE_HTTP_FINAL) !=
     (int)gw_demo_page_len)
    return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* True when the handshake may go on as far as its Origin goes: no Origin
 * (not a browser), one listed in client.allowed_origins ("*": any), or with
 * no list, the page's own origin (Origin's host equal to the Host header). */
static bool origin_allowed(const struct gw_client_port *cp, struct lws *wsi)
{
  char origin[256], host[256];
  if(lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0)
    return true;
  if(lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
    return false;
  json_t *list = cp->cfg->client_allowed_origins;
  if(list && json_array_size(list)) {
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
      const char *o = json_string_value(v);
      if(o && (strcmp(o, "*") == 0 || strcmp(o, origin) == 0))
        return true;
    }
    return false;
  }
  if(lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
    return false;
  const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                     : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                              : NULL;
  return rest && strcasecmp(rest, host) == 0;
}

/* Copies the handshake's token (Authorization: Bearer, else ?token=) into
 * buf. Returns its length, 0 when there is none, -1 when malformed. */
static int handshake_token(struct lws *wsi, char *buf, int size)
{
  int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  if(n > 0) {
    if(n >= size || lws_hdr_copy(wsi, buf, size, WSI_TOKEN_HTTP_AUTHORIZATION) != n ||
       strncasecmp(buf, "Bearer ", 7) != 0)
      return -1;
    const char *t = buf + 7;
    while(*t == ' ')
      t++;
    n = (int)strlen(t);
    if(n == 0) /* "Bearer " and nothing: malformed, not anonymous */
      return -1;
    memmove(buf, t, (size_t)n + 1);
    return n;
  }
  const char *t = lws_get_urlarg_by_name(wsi, "token=", buf, size);
  if(!t)
    return 0;
  n = (int)strlen(t);
  memmove(buf, t, (size_t)n + 1);
  return n;
}

/* Checks a WebSocket handshake: the Origin, then the token if one came.
 * Returns 0 to go on, else the HTTP status it was refused with. */
static int handshake_check(struct worker *w, struct lws *wsi)
{
  struct gw_client_port *cp = w->cp;
  if(cp->open_loopback) {
    /* open on loopback: a page whose name was re-pointed at 127.0.0.1 (DNS
     * rebinding) passes the same-origin check, but not this one */
    char host[256];
    int n = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    if(n < 0 || (n > 0 && !gw_host_is_loopback(host))) {
      if(log_now(&w->last_refused_log))
        gw_info("client_refused", "worker=%d status=403 reason=host_not_loopback", w->idx);
      return HTTP_STATUS_FORBIDDEN;
    }
  }
  if(!origin_allowed(cp, wsi)) {
    if(log_now(&w->last_refused_log))
      gw_info("client_refused", "worker=%d status=403 reason=origin", w->idx);
    return HTTP_STATUS_FORBIDDEN;
  }
  /* bigger than any token taken, so a longer one is seen (and refused)
   * rather than taken for no token: lws finds no argument that does not fit */
  static _Thread_local char token[2 * GW_TOKEN_MAX + 4096];
  int n = handshake_token(wsi, token, (int)sizeof(token));
  if(n == 0)
    return 0;
  struct sock_info *si = lws_get_opaque_user_data(wsi);
  struct gw_identity *id = calloc(1, sizeof(*id));
  char why[GW_AUTH_WHY_MAX] = "the Authorization header is not Bearer <token>";
  if(!si || !id || n < 0 ||
     gw_auth_verify(cp->auth, token, (size_t)n, (long long)time(NULL), id, why)) {
    free(id);
    if(log_now(&w->last_refused_log))
      gw_info("client_refused", "worker=%d status=401 reason=\"%s\"", w->idx, why);
    return HTTP_STATUS_UNAUTHORIZED;
  }
  if(si->id) { /* a second upgrade request on the socket */
    gw_identity_clear(si->id);
    free(si->id);
  }
  si->id = id;
  return 0;
}

/* Timers of every connection of the worker, every TICK_MS: the auth
 * deadline, token expiry, pings and the idle timeout. */
static void tick(lws_sorted_usec_list_t *sul)
{
  struct worker *w = lws_container_of(sul, struct worker, tick);
  const struct gw_config *cfg = w->cp->cfg;
  int64_t now = gw_now_us();
  long long wall = (long long)time(NULL);
  int64_t ping_us = (int64_t)cfg->client_ping_interval_s * 1000000;
  int64_t idle_us = (int64_t)cfg->client_idle_timeout_s * 1000000;
  for(struct conn *c = w->conns; c; c = c->next) {
    if(c->closing)
      continue;
    if(c->auth_deadline_us && !c->authed && now >= c->auth_deadline_us) {
      gw_info("client_auth_timeout", "worker=%d timeout_ms=%d", w->idx, cfg->auth_timeout_ms);
      conn_reply(c, gw_reply_error(NULL, "auth_timeout",
                                   "no auth message with a valid token in time "
                                   "(auth.timeout_ms)"));
      conn_close_flush(c, GW_CLOSE_AUTH_TIMEOUT, "authentication timeout");
      continue;
    }
    if(close_if_expired(c, NULL, wall))
      continue;
    if(c->out.n && now - c->progress_us >= (int64_t)SEND_STALL_S * 1000000) {
      gw_warn("send_stalled", "worker=%d queued_bytes=%zu", w->idx, c->out.bytes);
      conn_cut(c); /* nothing can be written */
      continue;
    }
    if(idle_us && now - c->last_rx_us >= idle_us) {
      gw_info("client_idle", "worker=%d idle_timeout_s=%d", w->idx, cfg->client_idle_timeout_s);
      conn_close(c, GW_CLOSE_IDLE, "idle timeout: no pong");
      continue;
    }
    if(ping_us && !c->ping_sent && now - c->last_rx_us >= ping_us) {
      c->ping_sent = true;
      c->ping_due = true;
      lws_callback_on_writable(c->wsi);
    }
  }
  lws_sul_schedule(w->ctx, 0, &w->tick, tick, (lws_usec_t)TICK_MS * LWS_US_PER_MS);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
  struct conn *c = user;
  struct lws_context *ctx = lws_get_context(wsi);
  struct worker *w = ctx ? lws_context_user(ctx) : NULL;
  char uri[64];

  switch(reason) {
  case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
    worker_wake(w);
    if(atomic_load(&w->exit))
      ev_break(w->loop, EVBREAK_ALL);
    return 0;
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    /* WebSocket at /ws only; no other upgrade (lws would take h2c). */
    if(strcasecmp(in, "websocket") != 0)
      return -1;
    if(lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/ws") != 0) {
      lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
      return 1;
    }
    int status = handshake_check(w, wsi);
    if(status) {
      lws_return_http_status(wsi, (unsigned)status,
                             status == HTTP_STATUS_FORBIDDEN ? "origin not allowed"
                                                             : "invalid token");
      return 1;
    }
    return 0;
  case LWS_CALLBACK_RAW_ADOPT:
  case LWS_CALLBACK_RAW_RX:
    return -1; /* CONNECT makes a raw socket of the connection: not here */
  case LWS_CALLBACK_HTTP:
    /* Plain HTTP on the client port: the demo page at /, nothing else; a
     * request with a body is answered and closed, not read to its end */
    if(!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
       !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)) {
      lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
      return -1;
    }
    if(strcmp(in, "/") != 0 || (!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
                                !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)))
      return lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL) ||
             lws_http_transaction_completed(wsi);
    return demo_page_headers(wsi, c);
  case LWS_CALLBACK_HTTP_WRITEABLE: return demo_page_body(wsi, c);
  case LWS_CALLBACK_ESTABLISHED: conn_established(c, wsi, w); return 0;
  case LWS_CALLBACK_RECEIVE_PONG:
    if(c && c->established) {
      c->last_rx_us = gw_now_us();
      c->ping_sent = false;
    }
    return 0;
  case LWS_CALLBACK_RECEIVE:
    if(c->closing)
      return 0;
    return conn_receive(c, in, len);
  case LWS_CALLBACK_SERVER_WRITEABLE:
    if(c->closing && c->out.n)
      return conn_write(c); /* finish the frame begun, then close */
    if(c->closing)
      return send_close(c);
    return conn_write(c);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    /* the answer to our close frame: the closing handshake is complete */
    return c && c->established && c->close_sent ? -1 : 0;
  case LWS_CALLBACK_CLOSED:
    conn_closed(c);
    if(atomic_load(&w->stopping) && !w->nconns)
      atomic_store(&w->done, true);
    return 0;
  case LWS_CALLBACK_WSI_DESTROY: {
    struct sock_info *si = lws_get_opaque_user_data(wsi);
    if(si) { /* one Herald adopted */
      lws_set_opaque_user_data(wsi, NULL);
      sock_info_free(w->cp, si);
      atomic_fetch_sub(&w->cp->live, 1);
    }
    return 0;
  }
  default: return 0;
  }
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  while(!atomic_load(&w->exit))
    if(!ev_run(w->loop, 0)) /* returns at ev_break (w->exit set), or with */
      break;                /* no watcher left that could ever wake it */
  return NULL;
}

static void wake_worker(void *arg, int sink)
{
  struct gw_client_port *cp = arg;
  lws_cancel_service(cp->workers[sink].ctx);
}

static int worker_init(struct gw_client_port *cp, struct worker *w, int idx)
{
  w->idx = idx;
  w->cp = cp;
  pthread_mutex_init(&w->lock, NULL);
  w->index = sub_index_new();
  w->scratch = malloc(LWS_PRE + WRITE_CHUNK);
  /* libwebsockets' default loop calls poll() on every socket of the worker
   * at each wakeup: with 5,000 connections that scan cost more than the
   * delivery itself. Its libev plugin on a loop of ours uses epoll. */
  w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  if(!w->index || !w->scratch || !w->loop)
    return -1;

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  const struct gw_config *cfg = cp->cfg;
  bool tls = cfg->client_tls_cert[0] != '\0';
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_LIBEV;
  void *loops[1] = {w->loop};
  info.foreign_loops = loops;
  /* OpenSSL's global init by the first context only: libwebsockets 4.1.6
   * never frees the vhost SSL_CTX of a context that asked for it but was not
   * the last to be destroyed (one lost per extra worker, seen by valgrind) */
  if(tls && idx == 0)
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = w;
  info.timeout_secs = (unsigned)cfg->client_handshake_timeout_s; /* handshake, TLS included */
  info.max_http_header_data = GW_TOKEN_MAX + 4096; /* room for a token in a header */
  w->ctx = lws_create_context(&info);
  if(!w->ctx) {
    /* the usual cause: libwebsockets found no libev plugin to load */
    gw_error("client_context_failed", "worker=%d hint=\"is libwebsockets-evlib-ev installed? "
                                      "(scripts/install-deps.sh)\"",
             idx);
    return -1;
  }
  memset(&info, 0, sizeof(info));
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* sockets come from the acceptor */
  info.protocols = cp->protocols;
  info.vhost_name = "herald";
  if(tls) {
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = cfg->client_tls_cert;
    info.ssl_private_key_filepath = cfg->client_tls_key;
    /* HTTP/1.1 only: a WebSocket over HTTP/2 (RFC 8441) would not pass
     * through LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, where the path, Origin and
     * token are checked */
    info.alpn = "http/1.1";
  }
  w->vh = lws_create_vhost(w->ctx, &info);
  if(!w->vh)
    return -1;
  lws_sul_schedule(w->ctx, 0, &w->tick, tick, (lws_usec_t)TICK_MS * LWS_US_PER_MS);
  return 0;
}

/* --- the acceptor ------------------------------------------------------ */

static void hand_over(struct worker *w, int fd, struct ip_node *ip)
{
  pthread_mutex_lock(&w->lock);
  if(w->nfds == w->capfds) {
    size_t cap = w->capfds ? w->capfds * 2 : 16;
    struct handed *nf = realloc(w->fds, cap * sizeof(*nf));
    if(!nf) {
      pthread_mutex_unlock(&w->lock);
      close(fd);
      ip_release(w->cp, ip);
      atomic_fetch_sub(&w->cp->live, 1);
      return;
    }
    w->fds = nf;
    w->capfds = cap;
  }
  w->fds[w->nfds++] = (struct handed){fd, ip};
  pthread_mutex_unlock(&w->lock);
  lws_cancel_service(w->ctx);
}

/* Logs a refused connection, at most once a second per reason. */
static void log_refusal(const char *reason, int max, time_t *last)
{
  time_t now = time(NULL);
  if(now != *last) {
    gw_warn("connection_refused", "reason=%s max=%d", reason, max);
    *last = now;
  }
}

static void *acceptor_main(void *arg)
{
  struct gw_client_port *cp = arg;
  size_t next = 0;
  time_t last_full_log = 0, last_emfile_log = 0, last_ip_log = 0;
  struct pollfd pfd[2] = {{cp->listen_fd, POLLIN, 0}, {cp->stop_fd, POLLIN, 0}};
  for(;;) {
    if(poll(pfd, 2, -1) < 0 && errno != EINTR)
      break;
    if(pfd[1].revents)
      break;
    for(;;) {
      struct sockaddr_storage peer;
      socklen_t plen = sizeof(peer);
      int fd = accept4(cp->listen_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if(fd < 0) {
        if(errno == EMFILE || errno == ENFILE) {
          time_t now = time(NULL);
          if(now != last_emfile_log) {
            gw_error("accept_failed", "error=\"%s\"", strerror(errno));
            last_emfile_log = now;
          }
          usleep(10000); /* let sockets close before trying again */
        }
        break;
      }
      if(atomic_load(&cp->live) >= (size_t)cp->cfg->client_max_connections) {
        close(fd);
        log_refusal("max_connections", cp->cfg->client_max_connections, &last_full_log);
        continue;
      }
      struct ip_node *ip = NULL;
      if(cp->cfg->client_max_connections_per_ip) {
        unsigned char addr[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if(peer.ss_family == AF_INET6) {
          memcpy(addr, &((struct sockaddr_in6 *)&peer)->sin6_addr, 16);
          /* one client holds a whole /64: count it as one address */
          if(!IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr))
            memset(addr + 8, 0, 8);
        }
        else
          memcpy(addr + 12, &((struct sockaddr_in *)&peer)->sin_addr, 4);
        if(!(ip = ip_acquire(cp, addr))) {
          close(fd);
          log_refusal("max_connections_per_ip", cp->cfg->client_max_connections_per_ip,
                      &last_ip_log);
          continue;
        }
      }
      /* small frames go out at once, not after the client's delayed ACK
       * (libwebsockets sets it only on sockets it accepts itself) */
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      atomic_fetch_add(&cp->live, 1);
      hand_over(&cp->workers[next++ % (size_t)cp->nworkers], fd, ip);
    }
  }
  return NULL;
}

/* --- start and stop ---------------------------------------------------- */

static void free_port(struct gw_client_port *cp)
{
  for(int i = 0; i < cp->nworkers; i++) {
    struct worker *w = &cp->workers[i];
    if(w->ctx)
      lws_context_destroy(w->ctx); /* closes what is left: CLOSED runs */
    if(w->loop)
      ev_loop_destroy(w->loop); /* its thread has left it */
    while(w->answers) {
      struct ws_pub *next = w->answers->done_next;
      w->answers->c = NULL;
      ws_pub_finish(w->answers);
      w->answers = next;
    }
    for(size_t k = 0; k < w->nfds; k++) {
      close(w->fds[k].fd);
      ip_release(cp, w->fds[k].ip);
    }
    free(w->fds);
    sub_batch_free(&w->batch);
    sub_index_free(w->index);
    free(w->scratch);
    pthread_mutex_destroy(&w->lock);
  }
  free(cp->workers);
  for(size_t h = 0; h < IP_BUCKETS; h++)
    while(cp->ips[h]) { /* none left once every socket is destroyed */
      struct ip_node *n = cp->ips[h];
      cp->ips[h] = n->next;
      free(n);
    }
  pthread_mutex_destroy(&cp->ip_lock);
  if(cp->listen_fd >= 0)
    close(cp->listen_fd);
  if(cp->stop_fd >= 0)
    close(cp->stop_fd);
  free(cp);
}

struct gw_client_port *gw_client_start(const struct gw_config *cfg, struct sub_broker *broker,
                                       struct hook_service *hooks, const struct gw_rules *rules,
                                       struct gw_auth *auth, int listen_fd)
{
  struct gw_client_port *cp = calloc(1, sizeof(*cp));
  if(!cp) {
    close(listen_fd);
    return NULL;
  }
  cp->cfg = cfg;
  cp->broker = broker;
  cp->fanout = sub_broker_fanout(broker);
  cp->hooks = hooks;
  cp->rules = rules;
  cp->auth = auth;
  cp->open_loopback = gw_open_on_loopback(cfg, "client");
  pthread_mutex_init(&cp->ip_lock, NULL);
  cp->listen_fd = listen_fd;
  cp->stop_fd = eventfd(0, EFD_CLOEXEC);
  cp->nworkers = cfg->client_workers;
  cp->protocols[0] = (struct lws_protocols){
      .name = "herald.v1",
      .callback = callback,
      .per_session_data_size = sizeof(struct conn),
      /* libwebsockets allocates this per connection for its whole life:
       * at 4096 it was half of an idle connection's memory. Most messages
       * fit and are handled in place; longer ones come in 512-byte pieces
       * that conn_receive collects. */
      .rx_buffer_size = 512,
      .tx_packet_size = WRITE_CHUNK,
  };
  cp->workers = calloc((size_t)cp->nworkers, sizeof(*cp->workers));
  if(!cp->workers)
    cp->nworkers = 0;
  if(cp->stop_fd < 0 || !cp->workers)
    goto fail;
  for(int i = 0; i < cp->nworkers; i++) {
    if(worker_init(cp, &cp->workers[i], i)) {
      gw_error("client_worker_failed", "worker=%d", i);
      goto fail;
    }
  }
  sub_fanout_set_wake(cp->fanout, wake_worker, cp);
  for(int i = 0; i < cp->nworkers; i++) {
    struct worker *w = &cp->workers[i];
    if(pthread_create(&w->thread, NULL, worker_main, w))
      goto fail;
    w->started = true;
  }
  if(pthread_create(&cp->acceptor, NULL, acceptor_main, cp))
    goto fail;
  cp->acceptor_started = true;
  return cp;
fail:
  gw_client_stop(cp, 0);
  return NULL;
}

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void gw_client_quiesce(struct gw_client_port *cp)
{
  if(cp->acceptor_started) {
    uint64_t one = 1;
    ssize_t r = write(cp->stop_fd, &one, sizeof(one));
    (void)r;
    pthread_join(cp->acceptor, NULL);
    cp->acceptor_started = false;
  }
  if(cp->listen_fd >= 0)
    close(cp->listen_fd); /* new clients are refused from here on */
  cp->listen_fd = -1;
}

void gw_client_stop(struct gw_client_port *cp, int timeout_ms)
{
  if(!cp)
    return;
  gw_client_quiesce(cp);

  for(int i = 0; i < cp->nworkers; i++) {
    atomic_store(&cp->workers[i].stopping, true);
    if(cp->workers[i].ctx)
      lws_cancel_service(cp->workers[i].ctx);
  }
  /* Wait for the clients to take their close frames; wake the workers now
   * and then, since the loop may sleep through a quiet second. */
  for(int waited = 0; waited < timeout_ms; waited += 20) {
    bool all = true;
    for(int i = 0; i < cp->nworkers; i++) {
      struct worker *w = &cp->workers[i];
      if(w->started && !atomic_load(&w->done)) {
        all = false;
        lws_cancel_service(w->ctx);
      }
    }
    if(all)
      break;
    sleep_ms(20);
  }
  for(int i = 0; i < cp->nworkers; i++) {
    struct worker *w = &cp->workers[i];
    atomic_store(&w->exit, true);
    if(w->started) {
      lws_cancel_service(w->ctx);
      pthread_join(w->thread, NULL);
    }
    /* Publishes still held by the webhooks layer come back within one of
     * its turns (it stops after this port); they must not find w freed. */
    for(int waited = 0; atomic_load(&w->outstanding) > 0 && waited < 30000; waited += 5)
      sleep_ms(5);
  }
  size_t left = atomic_load(&cp->live);
  if(left)
    gw_info("client_port_closing", "connections_left=%zu", left);
  free_port(cp);
}

size_t gw_client_connections(struct gw_client_port *cp)
{
  return atomic_load(&cp->live);
}
