/* Server-Sent Events (docs/protocol.md#sse-sse): GET /sse?topic=P[&topic=P...]
 * is answered with a text/event-stream response that stays open. One
 * stream is one session: the request's topics are its subscriptions, its
 * Last-Event-ID the cursor they resume from. Nothing comes from the client
 * after the request, so no idle timeout applies: a comment line after
 * sse.heartbeat_s of silence keeps proxies from closing the stream, and a
 * peer gone is found when that write fails (or its socket reads as closed).
 *
 * libwebsockets 4.1 serves this as an HTTP transaction never completed: the
 * headers go with lws_finalize_write_http_header, the header table is given
 * back (lws_http_headers_detach: a stream must not hold one of the
 * context's few), the timeout is cancelled, and the body is written with
 * LWS_WRITE_HTTP. No Content-Length: the response is "Connection: close",
 * so nothing of HTTP keep-alive applies.
 *
 * In the middle of a transaction the HTTP role never reads its socket: a
 * socket that turns readable (the peer closed it, or sent more) would wake
 * the worker again and again. So the stream's socket is not polled for
 * reading (lws_rx_flow_control) while nothing waits to be written; and is
 * while something does, as the HTTP role serves a socket's writeable
 * moments from its read handler, which a flow-controlled socket skips. */
#include "sse_transport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client_internal.h"
#include "engine.h"
#include "eventlog.h"
#include "handshake.h"
#include "log.h"
#include "protocol.h"
#include "send_queue.h"
#include "topic.h"

#define CLOSE_GRACE_S 5 /* how long a closing stream may take to flush */
#define SEND_STALL_S 30 /* data queued and the socket never writeable: cut */
/* One event name for every event, the topic being inside data: a page's
 * EventSource needs an addEventListener per name, and topics are unbounded
 * and subscribed to by pattern (docs/protocol.md#sse-sse). */
#define EVENT_NAME "herald.event"

/* One stream: the socket's per-session data (ws_transport.c sizes it). */
struct sse_conn {
  struct gw_conn base; /* first: the worker's view, and what gw_sse_is reads */
  struct lws *wsi;
  struct gw_send_queue out;
  struct gw_send_queue held; /* subscribing: what the worker's queue handed over */
  bool open;                 /* attached to its worker */
  bool setup;                /* subscribing: deliveries are held, merged with the replay */
  bool setup_failed;         /* out of memory, or shutdown, while subscribing */
  bool closing;              /* nothing more is queued; the socket closes once out is written */
  bool cut;                  /* the socket is being killed */
  bool rx_off;               /* libwebsockets does not poll the socket for reading */
  int64_t progress_us;       /* frames queued: since when nothing was written */
  int64_t last_tx_us;        /* bytes last written: the heartbeat's clock */
};

static struct sse_conn *sse_of(struct gw_conn *c)
{
  return (struct sse_conn *)c;
}

size_t gw_sse_conn_size(void)
{
  return sizeof(struct sse_conn);
}

bool gw_sse_is(const void *user)
{
  return user && ((const struct gw_conn *)user)->t == &gw_sse;
}

/* --- records ------------------------------------------------------------ */

/* A frame of the n bytes at s, with one reference (NULL: out of memory). */
static struct sub_frame *text_frame(const char *s, size_t n)
{
  struct sub_frame *f = sub_frame_alloc(0, n);
  if(f)
    memcpy(sub_frame_body(f), s, n);
  return f;
}

/* The SSE record of an event: "id: <cursor>" (logged events only),
 * "event: herald.event", "data: " and the herald.v1 event object, then the
 * blank line. The object is one line: Herald writes it compact and `data`
 * is minified JSON, whose strings hold no raw line break. A sub_encode_fn. */
static struct sub_frame *sse_encode(const struct sub_event *ev, void *arg)
{
  static const char mid[] = "event: " EVENT_NAME "\ndata: ";
  char head[GW_EVENT_HEAD_MAX], id[SUB_CURSOR_MAX + 8];
  (void)arg;
  int hn = gw_event_head(ev, head, sizeof(head));
  if(hn < 0)
    return NULL;
  size_t idn = 0;
  if(ev->offset) {
    char cursor[SUB_CURSOR_MAX + 1];
    sub_cursor_format(ev->epoch, ev->offset, cursor);
    idn = (size_t)snprintf(id, sizeof(id), "id: %s\n", cursor);
  }
  size_t n = idn + sizeof(mid) - 1 + (size_t)hn + ev->data_len + 3;
  struct sub_frame *f = sub_frame_alloc(0, n);
  if(!f)
    return NULL;
  unsigned char *p = sub_frame_body(f);
  memcpy(p, id, idn);
  p += idn;
  memcpy(p, mid, sizeof(mid) - 1);
  p += sizeof(mid) - 1;
  memcpy(p, head, (size_t)hn);
  p += hn;
  memcpy(p, ev->data, ev->data_len);
  memcpy(p + ev->data_len, "}\n\n", 3);
  return f;
}

/* The offset in the id line of one of sse_encode's frames (0: none). */
static uint64_t frame_offset(const struct sub_frame *f)
{
  const unsigned char *p = f->wire, *end = f->wire + f->len;
  if(f->len < 4 + SUB_EPOCH_LEN + 2 || memcmp(p, "id: ", 4) != 0)
    return 0;
  uint64_t off = 0;
  for(p += 4 + SUB_EPOCH_LEN + 1; p < end && *p >= '0' && *p <= '9'; p++)
    off = off * 10 + (uint64_t)(*p - '0');
  return off;
}

/* --- closing ------------------------------------------------------------ */

/* Detaches the stream from its worker and frees what it holds. */
static void detach(struct sse_conn *c)
{
  struct gw_worker *w = c->base.w;
  c->open = false;
  gw_conn_closed(&c->base);
  gw_sendq_clear(&c->out);
  gw_sendq_clear(&c->held);
  if(atomic_load(&w->stopping) && !w->nconns)
    atomic_store(&w->done, true);
}

/* Polls the socket for reading, or stops (the header comment says why). */
static void rx_set(struct sse_conn *c, bool off)
{
  if(c->rx_off == off)
    return;
  c->rx_off = off;
  lws_rx_flow_control(c->wsi, off ? 0 : 1);
}

/* Asks for a writeable callback. */
static void want_write(struct sse_conn *c)
{
  rx_set(c, false);
  lws_callback_on_writable(c->wsi);
}

/* After a write: another writeable callback when something still waits
 * (the queue, the end of the stream, or bytes libwebsockets holds: it asks
 * for the callback itself), else the socket is left alone. */
static void write_done(struct sse_conn *c)
{
  if(c->out.n || c->closing)
    want_write(c);
  else
    rx_set(c, !lws_partial_buffered(c->wsi));
}

/* Ends the stream once what is queued is written; nothing more is. */
static void end_stream(struct sse_conn *c)
{
  c->closing = true;
  want_write(c);
}

/* Closes the stream with code and reason (Herald's own, plain ASCII), the
 * WebSocket close codes: drops what is queued but the rest of a record
 * begun, sends a herald.close record, and kills the socket if it takes
 * neither within CLOSE_GRACE_S. */
static void conn_close(struct sse_conn *c, uint16_t code, const char *reason)
{
  char rec[200];
  if(c->setup) { /* the request is refused instead */
    c->setup_failed = true;
    return;
  }
  if(c->closing)
    return;
  gw_sendq_drop_unstarted(&c->out);
  int n =
      snprintf(rec, sizeof(rec), "event: herald.close\ndata: {\"code\":%u,\"reason\":\"%s\"}\n\n",
               (unsigned)code, reason);
  struct sub_frame *f = n > 0 && (size_t)n < sizeof(rec) ? text_frame(rec, (size_t)n) : NULL;
  if(f && gw_sendq_push(&c->out, f) == 0 && c->out.n == 1)
    c->progress_us = gw_now_us();
  if(f)
    sub_frame_unref(f);
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
  end_stream(c);
}

/* Kills the socket after the current callback (it takes nothing). */
static void conn_cut(struct sse_conn *c)
{
  c->closing = c->cut = true;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* --- sending ------------------------------------------------------------ */

/* Queues f (NULL: out of memory) for the stream, closing it as a slow
 * consumer when its queue would pass client.send_queue_bytes. Takes no
 * reference from the caller. Returns true when f is the first frame queued
 * (the caller arranges the write). */
static bool enqueue(struct sse_conn *c, struct sub_frame *f)
{
  if(c->closing)
    return false;
  if(!f) {
    conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return false;
  }
  struct gw_worker *w = c->base.w;
  size_t cap = (size_t)w->cp->cfg->client_send_queue_bytes;
  if(c->out.bytes + f->len > cap) {
    unsigned long unlogged;
    if(util_throttle_ok(&w->slow_log, time(NULL), &unlogged))
      gw_warn("slow_consumer", "worker=%d transport=sse queued_bytes=%zu cap=%zu closed=%lu",
              w->idx, c->out.bytes, cap, unlogged + 1);
    conn_close(c, GW_CLOSE_SLOW_CONSUMER, "slow consumer");
    return false;
  }
  bool was_empty = c->out.n == 0;
  if(gw_sendq_push(&c->out, f)) {
    conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return false;
  }
  if(!was_empty)
    return false;
  c->progress_us = gw_now_us(); /* the stall clock starts */
  return true;
}

/* Writes the head of the queue, up to WRITE_CHUNK bytes coalesced, in one
 * lws_write (what the kernel does not take, libwebsockets keeps and
 * flushes before calling back). Returns 0, or -1 when the socket failed. */
static int conn_write(struct sse_conn *c)
{
  unsigned char *buf = c->base.w->scratch + LWS_PRE;
  size_t n = gw_sendq_take(&c->out, buf, WRITE_CHUNK);
  if(!n)
    return 0;
  if(lws_write(c->wsi, buf, n, LWS_WRITE_HTTP) < (int)n)
    return -1;
  c->last_tx_us = gw_now_us();
  if(c->out.n)
    c->progress_us = c->last_tx_us; /* progress: the stall clock restarts */
  write_done(c);
  return 0;
}

int gw_sse_writeable(void *user)
{
  struct sse_conn *c = user;
  if(!c->open || c->cut)
    return -1;
  if(c->out.n && conn_write(c))
    return -1;
  if(c->closing && !c->out.n)
    return -1; /* all of it written: libwebsockets flushes what it holds, then closes */
  write_done(c);
  return 0;
}

/* True when the peer has closed its side: the socket is not read while
 * idle, so its end is looked for here, without taking a byte. */
static bool peer_gone(struct sse_conn *c)
{
  char b;
  ssize_t n = recv(lws_get_socket_fd(c->wsi), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void sse_flush(struct gw_conn *gc);

/* A comment line after sse.heartbeat_s without a byte written. */
static void heartbeat(struct sse_conn *c)
{
  static const char hb[] = ": heartbeat\n\n";
  if(peer_gone(c)) {
    conn_cut(c);
    return;
  }
  struct sub_frame *f = text_frame(hb, sizeof(hb) - 1);
  if(enqueue(c, f))
    sse_flush(&c->base);
  if(f)
    sub_frame_unref(f);
}

/* --- the transport's ops ------------------------------------------------ */

static void sse_open(struct gw_conn *gc)
{
  (void)gc; /* the stream begins once subscribed (gw_sse_request) */
}

static bool sse_deliver(struct gw_conn *gc, struct sub_frame *f)
{
  struct sse_conn *c = sse_of(gc);
  if(!c->setup)
    return enqueue(c, f);
  if(!f || gw_sendq_push(&c->held, f))
    c->setup_failed = true;
  return false;
}

/* Writes what the batch queued, at once (as ws_flush does), unless the
 * stream is not begun, closing, or libwebsockets still holds bytes of it. */
static void sse_flush(struct gw_conn *gc)
{
  struct sse_conn *c = sse_of(gc);
  if(c->setup || c->cut)
    return;
  if(c->closing || lws_partial_buffered(c->wsi))
    want_write(c);
  else if(conn_write(c))
    conn_cut(c);
}

static void sse_receive(struct gw_conn *gc, const char *buf, size_t len, bool binary)
{
  (void)gc, (void)buf, (void)len, (void)binary; /* a stream receives nothing */
}

/* Send stalls, token expiry, heartbeats. No auth deadline (the request
 * had its token or anonymous may subscribe) and no idle timeout. */
static void sse_tick(struct gw_conn *gc, int64_t now, long long wall)
{
  struct sse_conn *c = sse_of(gc);
  const struct gw_config *cfg = gc->w->cp->cfg;
  if(c->cut || c->setup)
    return;
  if(c->out.n && now - c->progress_us >= (int64_t)SEND_STALL_S * 1000000) {
    gw_warn("send_stalled", "worker=%d transport=sse queued_bytes=%zu", gc->w->idx, c->out.bytes);
    conn_cut(c);
    return;
  }
  if(c->closing)
    return;
  if(gw_session_expired(&gc->s, wall)) {
    gw_info("client_token_expired", "worker=%d transport=sse sub=%s", gc->w->idx,
            gw_session_who(&gc->s));
    conn_close(c, GW_CLOSE_TOKEN_EXPIRED, "token expired");
    return;
  }
  if(!c->out.n && now - c->last_tx_us >= (int64_t)cfg->sse_heartbeat_s * 1000000)
    heartbeat(c);
}

static void sse_close(struct gw_conn *gc, uint16_t code, const char *reason)
{
  conn_close(sse_of(gc), code, reason);
}

const struct gw_transport gw_sse = {
    .name = "sse",
    .slot = 1,
    .encode = sse_encode,
    .open = sse_open,
    .deliver = sse_deliver,
    .flush = sse_flush,
    .receive = sse_receive,
    .tick = sse_tick,
    .close = sse_close,
};

/* --- the request --------------------------------------------------------- */

/* What a request to /sse asked for, read before its header table goes. */
struct sse_req {
  struct gw_worker *w;
  struct lws *wsi;
  char origin[256];
  const char *cors; /* client.allowed_origins' entry for origin: CORS headers; or NULL */
  bool resume;      /* a Last-Event-ID came: */
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t offset;
  char requested[SUB_CURSOR_MAX + 1]; /* the cursor as it came */
};

/* Why a request is refused: its status and JSON error. */
struct refusal {
  unsigned status;
  const char *code;
  char message[SUB_TOPIC_MAX + 160];
};

static void refusal_set(struct refusal *r, unsigned status, const char *code, const char *message)
{
  r->status = status;
  r->code = code;
  snprintf(r->message, sizeof(r->message), "%s", message);
}

/* A URI argument buffer: every argument fits (the URI is shorter than
 * GW_HEADER_VALUE_MAX, gw_handshake_refuse_too_large). */
static _Thread_local char arg[GW_HEADER_VALUE_MAX + 1];

/* The value of the next topic= argument from argument *i on (URL-decoded
 * by libwebsockets), in arg; *i moves past it. NULL when there is none. */
static const char *next_topic(struct lws *wsi, int *i)
{
  while(lws_hdr_copy_fragment(wsi, arg, (int)sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, (*i)++) >= 0)
    if(strncmp(arg, "topic=", 6) == 0)
      return arg + 6;
  return NULL;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
  return lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)value,
                                     (int)strlen(value), p, end);
}

/* CORS for an origin client.allowed_origins lists: that origin, with
 * credentials; for the "*" entry, "*" without (the Fetch standard refuses
 * the two together). An origin not listed gets nothing. Returns 0 or 1. */
static int add_cors(const struct sse_req *r, unsigned char **p, unsigned char *end)
{
  if(!r->cors)
    return 0;
  if(strcmp(r->cors, "*") == 0)
    return add_header(r->wsi, "access-control-allow-origin:", "*", p, end);
  return add_header(r->wsi, "access-control-allow-origin:", r->origin, p, end) ||
         add_header(r->wsi, "access-control-allow-credentials:", "true", p, end) ||
         add_header(r->wsi, "vary:", "Origin", p, end);
}

/* Answers the request with f's status and {"error":{"code","message"}},
 * then closes the socket (EventSource does not reconnect after a status
 * other than 200). Returns what the HTTP callback returns. */
static int refuse(const struct sse_req *r, const struct refusal *f)
{
  unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
  json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", f->code, "message", f->message);
  char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if(!body)
    return -1;
  size_t n = strlen(body);
  if(!lws_add_http_common_headers(r->wsi, f->status, "application/json", n, &p, end) &&
     !add_header(r->wsi, "cache-control:", "no-store", &p, end) && !add_cors(r, &p, end) &&
     !(f->status == HTTP_STATUS_UNAUTHORIZED &&
       add_header(r->wsi, "www-authenticate:", "Bearer", &p, end)) &&
     !(f->status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
       add_header(r->wsi, "allow:", "GET", &p, end)) &&
     !lws_finalize_http_header(r->wsi, &p, end) && (size_t)(end - p) >= n) {
    memcpy(p, body, n); /* HTTP/1.1: the body right behind the headers, in one write */
    p += n;
    lws_write(r->wsi, start, (size_t)(p - start), LWS_WRITE_HTTP);
  }
  free(body);
  return -1; /* closed once libwebsockets has flushed the answer */
}

/* Logs a refusal (once a second) and answers it. */
static int refuse_logged(const struct sse_req *r, const struct refusal *f)
{
  if(util_throttle_ok(&r->w->refused_log, time(NULL), NULL))
    gw_info("client_refused", "worker=%d transport=sse status=%u reason=%s", r->w->idx, f->status,
            f->code);
  return refuse(r, f);
}

/* Reads the Origin (for CORS) and the resume point: the Last-Event-ID
 * header, else the last_event_id argument (empty: none). Returns false when
 * it is there but no cursor. */
static bool read_request(struct sse_req *r)
{
  int n = lws_hdr_copy(r->wsi, r->origin, sizeof(r->origin), WSI_TOKEN_ORIGIN);
  if(n > 0)
    r->cors = gw_handshake_listed_origin(r->w->cp, r->origin);
  const char *v = NULL;
  n = lws_hdr_custom_length(r->wsi, "last-event-id:", 14);
  if(n > 0) {
    if(lws_hdr_custom_copy(r->wsi, arg, (int)sizeof(arg), "last-event-id:", 14) != n)
      return false;
    v = arg;
  } else
    v = lws_get_urlarg_by_name(r->wsi, "last_event_id=", arg, (int)sizeof(arg));
  if(!v || !*v)
    return true;
  if(sub_cursor_parse(v, strlen(v), r->epoch, &r->offset))
    return false;
  sub_cursor_format(r->epoch, r->offset, r->requested);
  r->resume = true;
  return true;
}

/* Checks every topic argument: there is one, each a valid pattern the
 * request's grants (its token's, or anonymous's) cover. Returns true, or
 * false with the refusal in *f. */
static bool check_topics(const struct sse_req *r, struct refusal *f)
{
  struct gw_sock_info *si = lws_get_opaque_user_data(r->wsi);
  const struct gw_grants *g = si && si->id ? &si->id->grants : gw_auth_anonymous(r->w->cp->auth);
  const char *t, *why;
  int i = 0, n = 0;
  for(; (t = next_topic(r->wsi, &i)); n++) {
    size_t len = strlen(t);
    if(!sub_pattern_valid(t, len, &why)) {
      f->status = HTTP_STATUS_BAD_REQUEST;
      f->code = "invalid_topic";
      snprintf(f->message, sizeof(f->message), "topic %d: %s", n + 1, why);
      return false;
    }
    if(!gw_grants_can_subscribe(g, t)) {
      bool token = si && si->id;
      f->status = token ? HTTP_STATUS_FORBIDDEN : HTTP_STATUS_UNAUTHORIZED;
      f->code = token ? "forbidden" : "unauthorized";
      snprintf(f->message, sizeof(f->message),
               token ? "subscribing to %s is not granted to this token"
                     : "subscribing to %s needs a token (?token= or Authorization: Bearer)",
               t);
      return false;
    }
  }
  if(!n)
    refusal_set(f, HTTP_STATUS_BAD_REQUEST, "invalid_topic",
                "no topic: ask for one or more, /sse?topic=PATTERN&topic=PATTERN");
  return n > 0;
}

/* --- subscribing, resuming, and the replay merged ---------------------- */

/* What the stream sends before live events, in offset order: each
 * pattern's replay, and what the worker's queue handed over meanwhile to
 * the patterns resumed before (gw_session_resume drains it), which would
 * otherwise come before older events of the later patterns. In order, a
 * Last-Event-ID is always a point the stream has passed entirely. */
struct item {
  uint64_t key; /* the offset (held events without one keep their place) */
  size_t n;     /* arrival: the order among equal keys */
  struct sub_frame *f;
};

struct merge {
  struct item *v;
  size_t n, cap;
};

static int merge_add(struct merge *m, uint64_t key, struct sub_frame *f)
{
  if(m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct item *nv = realloc(m->v, cap * sizeof(*nv));
    if(!nv)
      return -1;
    m->v = nv;
    m->cap = cap;
  }
  m->v[m->n] = (struct item){key, m->n, sub_frame_ref(f)};
  m->n++;
  return 0;
}

static void merge_free(struct merge *m)
{
  for(size_t i = 0; i < m->n; i++)
    sub_frame_unref(m->v[i].f);
  free(m->v);
}

static int item_cmp(const void *a, const void *b)
{
  const struct item *x = a, *y = b;
  if(x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* Adds a resume's replay, encoded as the stream sends it. Returns 0 or -1. */
static int merge_replay(struct merge *m, struct sub_log_result *replay)
{
  for(size_t i = 0; i < replay->n; i++) {
    struct sub_frame *f = sub_event_encoded(replay->ev[i], gw_sse.slot, gw_sse.encode, NULL);
    if(!f || merge_add(m, replay->ev[i]->offset, f))
      return -1;
  }
  return 0;
}

/* Queues the merge in order: as much as client.send_queue_bytes takes. A
 * replay bigger than that is sent in part and the stream then ends: the
 * browser reconnects with the last id it got and the rest is replayed (a
 * live event meanwhile is dropped, then replayed in its turn). Returns 0,
 * or -1 when out of memory. */
static int merge_queue(struct sse_conn *c, struct merge *m)
{
  struct gw_worker *w = c->base.w;
  size_t cap = (size_t)w->cp->cfg->client_send_queue_bytes;
  uint64_t key = 0;
  struct sub_frame *f;
  while((f = gw_sendq_peek(&c->held))) { /* arrived in offset order */
    uint64_t off = frame_offset(f);
    key = off ? off : key;
    if(merge_add(m, key, f))
      return -1;
    gw_sendq_drop_head(&c->held);
  }
  if(m->n > 1) /* qsort must not see the NULL of an empty merge */
    qsort(m->v, m->n, sizeof(*m->v), item_cmp);
  for(size_t i = 0; i < m->n; i++) {
    if(c->out.bytes + m->v[i].f->len > cap) {
      gw_info("sse_replay_cut", "worker=%d queued_bytes=%zu cap=%zu left=%zu", w->idx, c->out.bytes,
              cap, m->n - i);
      c->closing = true; /* end_stream once the headers are out */
      return 0;
    }
    if(gw_sendq_push(&c->out, m->v[i].f))
      return -1;
  }
  return 0;
}

/* Queues a herald.gap record: what the resume of pattern could not replay.
 * oldest NULL: history is off. Patterns and cursors need no JSON escape. */
static int queue_gap(struct sse_conn *c, const struct sse_req *r, const char *pattern,
                     const char *reason, const char *oldest)
{
  char rec[SUB_TOPIC_MAX + 2 * SUB_CURSOR_MAX + 128];
  int n = snprintf(rec, sizeof(rec),
                   "event: herald.gap\ndata: {\"requested\":\"%s\",\"oldest\":%s%s%s,"
                   "\"reason\":\"%s\",\"topic\":\"%s\"}\n\n",
                   r->requested, oldest ? "\"" : "", oldest ? oldest : "null", oldest ? "\"" : "",
                   reason, pattern);
  struct sub_frame *f = n > 0 && (size_t)n < sizeof(rec) ? text_frame(rec, (size_t)n) : NULL;
  int rc = f ? gw_sendq_push(&c->out, f) : -1;
  if(f)
    sub_frame_unref(f);
  return rc;
}

/* Subscribes to pattern live. Returns 0, or -1 with the refusal in *f. */
static int subscribe_one(struct sse_conn *c, const char *pattern, struct refusal *f)
{
  const struct gw_config *cfg = c->base.w->cp->cfg;
  switch(gw_session_subscribe(&c->base.s, pattern, strlen(pattern))) {
  case GW_SUB_ADDED:
  case GW_SUB_EXISTS: return 0;
  case GW_SUB_FULL:
    f->status = HTTP_STATUS_BAD_REQUEST;
    f->code = "too_many_subscriptions";
    snprintf(f->message, sizeof(f->message),
             "at most %d topics per stream (client.max_subscriptions)",
             cfg->client_max_subscriptions);
    return -1;
  case GW_SUB_NOMEM: break;
  }
  refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  return -1;
}

/* Resumes pattern from the request's cursor, exactly as a herald.v1
 * subscribe with since does (herald_v1.c, handle_resume): a gap is queued
 * as a herald.gap record, the replay added to the merge. History off: live,
 * with a history_disabled gap. Returns 0, or -1 with the refusal in *f. */
static int resume_one(struct sse_conn *c, const struct sse_req *r, const char *pattern,
                      struct merge *m, struct refusal *f)
{
  struct gw_since_req q = {.kind = GW_SINCE_CURSOR, .epoch = r->epoch, .offset = r->offset};
  struct gw_resume res;
  struct sub_log_result replay;
  struct sub_engine *engine = c->base.w->cp->engine;
  struct sub_log *log = engine ? sub_engine_history(engine) : NULL;
  char oldest[SUB_CURSOR_MAX + 1];
  int rc = -1;
  switch(gw_session_resume(&c->base.s, pattern, strlen(pattern), &q, &res, &replay)) {
  case GW_RESUME_OK:
    gw_debug("client_resumed", "worker=%d transport=sse topic=%s from=%s replayed=%zu gap=%s",
             c->base.w->idx, pattern, r->requested, res.replayed,
             res.gap ? sub_gap_name(res.gap) : "none");
    if(res.gap)
      sub_cursor_format(sub_log_epoch(log), res.oldest, oldest);
    if((res.gap && queue_gap(c, r, pattern, sub_gap_name(res.gap), oldest)) ||
       merge_replay(m, &replay))
      refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
    else
      rc = 0;
    sub_log_result_clear(&replay);
    return rc;
  case GW_RESUME_EXISTS: return 0;
  case GW_RESUME_FULL: return subscribe_one(c, pattern, f); /* refused the same way */
  case GW_RESUME_NO_HISTORY:
    if(subscribe_one(c, pattern, f))
      return -1;
    if(queue_gap(c, r, pattern, "history_disabled", NULL))
      break;
    return 0;
  case GW_RESUME_BAD_CURSOR:
    refusal_set(f, HTTP_STATUS_BAD_REQUEST, "invalid_cursor",
                "Last-Event-ID is ahead of this server's history log");
    return -1;
  case GW_RESUME_NOMEM:
  case GW_RESUME_GAP: /* not asked for: gaps are announced, not refused */ break;
  }
  refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  return -1;
}

/* Subscribes the stream to every topic of the request (or resumes each),
 * and queues what goes first: the retry field, the gaps, then the replay
 * merged in offset order. Returns 0, or -1 with the refusal in *f. */
static int subscribe_all(struct sse_conn *c, const struct sse_req *r, struct refusal *f)
{
  char retry[32];
  struct merge m = {0};
  int rc = -1, i = 0,
      n = snprintf(retry, sizeof(retry), "retry: %d\n\n", c->base.w->cp->cfg->sse_retry_ms);
  struct sub_frame *rf = text_frame(retry, (size_t)n);
  if(!rf || gw_sendq_push(&c->out, rf))
    goto nomem;
  const char *t;
  while((t = next_topic(r->wsi, &i))) {
    if(r->resume ? resume_one(c, r, t, &m, f) : subscribe_one(c, t, f))
      goto out;
  }
  if(merge_queue(c, &m))
    goto nomem;
  rc = 0;
  goto out;
nomem:
  refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
out:
  if(rf)
    sub_frame_unref(rf);
  merge_free(&m);
  return rc;
}

/* The 200 answer's headers. Returns 0 or 1. */
static int send_headers(const struct sse_req *r)
{
  unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
  return lws_add_http_common_headers(r->wsi, HTTP_STATUS_OK, "text/event-stream",
                                     LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
         add_header(r->wsi, "cache-control:", "no-cache", &p, end) ||
         add_header(r->wsi, "x-accel-buffering:", "no", &p, end) || add_cors(r, &p, end) ||
         lws_finalize_write_http_header(r->wsi, start, &p, end);
}

/* Opens the stream on c: the session, with the handshake's identity; its
 * subscriptions; the headers. Returns 0, or -1 with the refusal in *f
 * (c is then as it was: nothing attached). */
static int stream_open(struct sse_conn *c, const struct sse_req *r, struct refusal *f)
{
  struct gw_sock_info *si = lws_get_opaque_user_data(r->wsi);
  struct gw_identity *id = NULL;
  if(si && si->id) { /* the handshake's token: the stream owns it now */
    id = si->id;
    si->id = NULL;
  }
  memset(c, 0, sizeof(*c));
  c->wsi = r->wsi;
  c->setup = true;
  c->last_tx_us = gw_now_us();
  gw_conn_open(&c->base, &gw_sse, r->w, id);
  free(id);
  c->open = true;
  c->base.s.auth_deadline_us = 0; /* nothing can authenticate later */
  if(subscribe_all(c, r, f))
    goto fail;
  if(atomic_load(&r->w->stopping)) /* gw_conn_open closed it */
    refusal_set(f, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting_down",
                "the server is shutting down: reconnect later");
  else if(c->setup_failed)
    refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  else if(send_headers(r))
    refusal_set(f, HTTP_STATUS_INTERNAL_SERVER_ERROR, "internal_error", "cannot send headers");
  else
    return 0;
fail:
  detach(c);
  memset(c, 0, sizeof(*c));
  return -1;
}

int gw_sse_request(struct gw_worker *w, struct lws *wsi, void *user)
{
  struct sse_conn *c = user;
  struct sse_req r = {.w = w, .wsi = wsi};
  struct refusal f = {0};
  if(!c)
    return -1;
  bool cursor_ok = read_request(&r);
  if(!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) {
    refusal_set(&f, HTTP_STATUS_METHOD_NOT_ALLOWED, "method_not_allowed", "/sse takes GET only");
    return refuse_logged(&r, &f);
  }
  if(atomic_load(&w->stopping)) {
    refusal_set(&f, HTTP_STATUS_SERVICE_UNAVAILABLE, "shutting_down",
                "the server is shutting down: reconnect later");
    return refuse_logged(&r, &f);
  }
  int status = gw_handshake_check(w, wsi); /* logs its own refusals */
  if(status == HTTP_STATUS_FORBIDDEN) {
    refusal_set(&f, HTTP_STATUS_FORBIDDEN, "forbidden",
                "the request's Origin (or Host) is not allowed: see client.allowed_origins");
    return refuse(&r, &f);
  }
  if(status) {
    refusal_set(&f, HTTP_STATUS_UNAUTHORIZED, "invalid_token", "the token was refused");
    return refuse(&r, &f);
  }
  if(!cursor_ok) {
    refusal_set(&f, HTTP_STATUS_BAD_REQUEST, "invalid_cursor",
                "Last-Event-ID is not a cursor (<8 chars a-z 0-9>:<offset>)");
    return refuse_logged(&r, &f);
  }
  if(!check_topics(&r, &f) || stream_open(c, &r, &f))
    return refuse_logged(&r, &f);
  /* the stream is on: the header table goes back to the context, no
   * timeout applies (the worker's tick watches stalls), the body follows */
  lws_http_headers_detach(wsi);
  lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
  c->setup = false;
  gw_debug("client_sse_opened", "worker=%d sub=%s topics=%d resumed=%s", w->idx,
           gw_session_who(&c->base.s), c->base.s.npatterns, r.resume ? r.requested : "-");
  sse_flush(&c->base); /* a replay cut short (closing) ends after it */
  return 0;
}

void gw_sse_closed(void *user)
{
  struct sse_conn *c = user;
  if(!gw_sse_is(c) || !c->open)
    return;
  struct gw_worker *w = c->base.w;
  detach(c);
  gw_debug("client_closed", "worker=%d transport=sse connections=%zu", w->idx, w->nconns);
}
