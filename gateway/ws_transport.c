#include "ws_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_internal.h"
#include "demo_page.h"
#include "handshake.h"
#include "herald_v1.h"
#include "protocol.h"
#include "log.h"
#include "rate.h"
#include "send_queue.h"
#include "sse_transport.h"
#include "util/utf8.h"
#include "ws_rx_guard.h"

#define CLOSE_GRACE_S 5 /* how long a closing socket may take to flush */
#define SEND_STALL_S 30 /* data queued and the socket never writeable: cut */

/* One WebSocket connection: libwebsockets' per-session data. */
struct ws_conn {
  struct gw_conn base; /* first: the worker's view */
  struct lws *wsi;
  struct gw_send_queue out;
  unsigned char *rx; /* a message arriving in several fragments */
  size_t rx_len, rx_cap;
  bool rx_binary;
  struct util_utf8 rx_utf8; /* a text message's UTF-8, checked as it comes */
  bool established;
  bool closing;
  bool page_pending; /* plain HTTP: the demo page's body is still to be sent */
  uint16_t close_code;
  char close_reason[124]; /* what fits a close frame after the code */
  bool peer_closed;       /* the peer's close frame came: nothing may follow the answer */
  int64_t progress_us;    /* frames queued: since when nothing was written */
  bool ping_due;          /* send a ping at the next writeable moment */
};

static const struct gw_v1_out ws_v1_out;

static struct ws_conn *ws_of(struct gw_conn *c)
{
  return (struct ws_conn *)c;
}

/* --- closing ----------------------------------------------------------- */

/* Starts closing the connection with code/reason: drops what is queued
 * (memory is freed now, not when the peer reads) but the rest of a frame
 * already partly written, sends the close frame after it at the next
 * writeable moments, and kills the socket if they never come. With flush,
 * what is queued (an error op explaining why) goes first. */
static void close_with(struct ws_conn *c, uint16_t code, const char *reason, bool flush)
{
  if(c->closing)
    return;
  c->closing = true;
  c->close_code = code;
  snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
  if(!flush)
    gw_sendq_drop_unstarted(&c->out);
  free(c->rx);
  c->rx = NULL;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
  lws_callback_on_writable(c->wsi);
}

/* Closes the socket without a close frame (it cannot take one), after the
 * current callback: the connection is not freed under its caller. */
static void conn_cut(struct ws_conn *c)
{
  c->closing = true;
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
  close_with(c, code, reason, false);
}

/* Hands the close over to libwebsockets, once no frame is left half
 * written: it sends the close frame next, answers no ping after it (RFC
 * 6455 §5.5.1: nothing follows a close frame), waits for the peer's close
 * frame up to 5 s, as closing the socket at once would reset it while the
 * peer's data is still in flight and lose the code, then closes the socket.
 * Returns -1: what the callback returns to start that. */
static int send_close(struct ws_conn *c)
{
  lws_close_reason(c->wsi, (enum lws_close_status)c->close_code, (unsigned char *)c->close_reason,
                   strlen(c->close_reason));
  return -1;
}

/* True once libwebsockets is closing the connection (its own protocol
 * errors, or ours handed over) or answering the peer's close: its close
 * frame is the last one, nothing of Herald's may be written. */
static bool lws_closing(struct ws_conn *c)
{
  return c->peer_closed || lws_get_close_length(c->wsi) != 0;
}

/* Fails the connection for what the peer sent (RFC 6455 §7.1.7) from the
 * receive callback: at once when no frame is half written (the close frame
 * goes before any pong), else after that frame. Returns what the callback
 * returns. */
static int conn_fail(struct ws_conn *c, uint16_t code, const char *reason)
{
  close_with(c, code, reason, false);
  if(c->out.n) /* the rest of a frame begun goes first */
    return 0;
  return send_close(c);
}

/* --- sending ----------------------------------------------------------- */

/* Queues a frame for the connection, closing it as a slow consumer when its
 * queue would pass the cap. Takes no reference from the caller. Returns
 * true when f is the first frame queued (the stall clock starts; the
 * caller arranges the write). */
static bool enqueue(struct ws_conn *c, struct sub_frame *f)
{
  if(c->closing || !f)
    return false;
  struct gw_worker *w = c->base.w;
  size_t cap = (size_t)w->cp->cfg->client_send_queue_bytes;
  if(c->out.bytes + f->len > cap) {
    unsigned long unlogged; /* one line a second: a publish can cut thousands */
    if(util_throttle_ok(&w->slow_log, time(NULL), &unlogged))
      gw_warn("slow_consumer", "worker=%d queued_bytes=%zu cap=%zu closed=%lu", w->idx,
              c->out.bytes, cap, unlogged + 1);
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
  /* the stall clock starts; the worker's tick checks it (a libwebsockets
   * timeout here would be a sorted-list insert per delivery: 59 % of the
   * CPU at 10,000 connections) */
  c->progress_us = gw_now_us();
  return true;
}

/* Writes the head of the queue, up to WRITE_CHUNK bytes coalesced from as
 * many frames as fit (a bigger frame goes in slices), in one lws_write per
 * writeable callback. What the kernel does not take, libwebsockets keeps
 * and flushes before calling back again, so it holds at most WRITE_CHUNK
 * bytes of a connection beside the queue. Returns 0, or -1 on failure. */
static int conn_write(struct ws_conn *c)
{
  unsigned char *buf = c->base.w->scratch + LWS_PRE;
  if(lws_closing(c))
    return 0;
  if(c->ping_due && c->out.off == 0) { /* never inside a frame begun */
    c->ping_due = false;
    buf[0] = 'h'; /* libwebsockets reports empty pongs to nobody */
    if(lws_write(c->wsi, buf, 1, LWS_WRITE_PING) < 0)
      return -1;
    if(c->out.n)
      lws_callback_on_writable(c->wsi);
    return 0;
  }
  size_t n = gw_sendq_take(&c->out, buf, WRITE_CHUNK);
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

/* --- herald.v1's output ------------------------------------------------ */

static void v1_send(struct gw_session *s, struct sub_frame *f)
{
  struct ws_conn *c = ws_of(gw_conn_of(s));
  if(!f) {
    conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    return;
  }
  if(enqueue(c, f))
    lws_callback_on_writable(c->wsi);
  sub_frame_unref(f);
}

static void v1_close(struct gw_session *s, uint16_t code, const char *reason, bool flush)
{
  close_with(ws_of(gw_conn_of(s)), code, reason, flush);
}

static enum gw_v1_pub_state v1_publish(struct gw_session *s, const struct gw_v1_publish *req)
{
  return gw_client_publish(&ws_v1_out, gw_conn_of(s), req);
}

static void v1_event(struct gw_session *s, struct sub_event *ev)
{
  struct sub_frame *f = sub_event_encoded(ev, gw_ws_herald_v1.slot, gw_ws_herald_v1.encode, NULL);
  v1_send(s, f ? sub_frame_ref(f) : NULL);
}

static const struct gw_v1_out ws_v1_out = {v1_send, v1_close, v1_publish, v1_event};

/* --- the transport's ops ----------------------------------------------- */

static void ws_open(struct gw_conn *gc)
{
  lws_set_timeout(ws_of(gc)->wsi, NO_PENDING_TIMEOUT, 0); /* the handshake's is over */
}

static bool ws_deliver(struct gw_conn *gc, struct sub_frame *f)
{
  return enqueue(ws_of(gc), f);
}

/* Writes what the batch of events queued, at once: one write per
 * connection, all the batch's frames for it coalesced. Waiting for the
 * writeable callback instead costs two epoll_ctl calls per connection and a
 * loop turn. A connection that cannot take it now (closing, a ping due,
 * bytes libwebsockets still holds) waits for its callback as before.
 * Nothing here closes a connection synchronously. */
static void ws_flush(struct gw_conn *gc)
{
  struct ws_conn *c = ws_of(gc);
  if(c->closing || c->ping_due || lws_partial_buffered(c->wsi))
    lws_callback_on_writable(c->wsi);
  else if(conn_write(c)) /* the socket failed */
    conn_cut(c);
}

static void ws_receive(struct gw_conn *gc, const char *buf, size_t len, bool binary)
{
  gw_v1_message(&ws_v1_out, &gc->s, buf, len, binary);
}

/* The auth deadline, token expiry, send stalls, the idle timeout, pings. */
static void ws_tick(struct gw_conn *gc, int64_t now, long long wall)
{
  struct ws_conn *c = ws_of(gc);
  const struct gw_config *cfg = gc->w->cp->cfg;
  if(c->closing || gw_v1_tick(&ws_v1_out, &gc->s, now, wall))
    return;
  if(c->out.n && now - c->progress_us >= (int64_t)SEND_STALL_S * 1000000) {
    gw_warn("send_stalled", "worker=%d queued_bytes=%zu", gc->w->idx, c->out.bytes);
    conn_cut(c); /* nothing can be written */
    return;
  }
  if(gw_session_idle(&gc->s, now)) {
    gw_info("client_idle", "worker=%d idle_timeout_s=%d", gc->w->idx, cfg->client_idle_timeout_s);
    conn_close(c, GW_CLOSE_IDLE, "idle timeout: no pong");
    return;
  }
  if(gw_session_ping_due(&gc->s, now)) {
    c->ping_due = true;
    lws_callback_on_writable(c->wsi);
  }
}

static void ws_close(struct gw_conn *gc, uint16_t code, const char *reason)
{
  conn_close(ws_of(gc), code, reason);
}

const struct gw_transport gw_ws_herald_v1 = {
    .name = "herald.v1",
    .slot = 0,
    .encode = gw_v1_event_frame,
    .open = ws_open,
    .deliver = ws_deliver,
    .flush = ws_flush,
    .receive = ws_receive,
    .tick = ws_tick,
    .close = ws_close,
};

/* --- receiving --------------------------------------------------------- */

/* Grows the assembly buffer to hold need bytes, by doubling, never past
 * max. Returns 0, or -1 when out of memory. */
static int rx_reserve(struct ws_conn *c, size_t need, size_t max)
{
  if(need <= c->rx_cap)
    return 0;
  size_t cap = c->rx_cap ? c->rx_cap : 4096;
  while(cap < need)
    cap *= 2;
  if(cap > max)
    cap = max;
  unsigned char *nb = realloc(c->rx, cap);
  if(!nb)
    return -1;
  c->rx = nb;
  c->rx_cap = cap;
  return 0;
}

/* Checks one piece of a text message as it comes, so that the first bad
 * byte fails the connection (RFC 6455 §8.1: close 1007) without waiting
 * for the rest of the message; a sequence may be split between fragments.
 * Returns true when it is invalid. */
static bool text_invalid(struct ws_conn *c, const void *in, size_t len, bool final)
{
  if(util_utf8_feed(&c->rx_utf8, in, len) == 0 && !(final && c->rx_utf8.need))
    return false;
  gw_info("client_invalid_utf8", "worker=%d", c->base.w->idx);
  return true;
}

/* Takes in one piece of a message. Returns 0, or -1 to close the connection
 * (the close reason is set). */
static int conn_receive(struct ws_conn *c, const void *in, size_t len)
{
  struct lws *wsi = c->wsi;
  struct gw_conn *gc = &c->base;
  size_t max = (size_t)gc->w->cp->cfg->client_max_message_bytes;
  gw_session_received(&gc->s, gw_now_us());
  bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
  if(first) {
    c->rx_len = 0;
    c->rx_binary = lws_frame_is_binary(wsi);
    memset(&c->rx_utf8, 0, sizeof(c->rx_utf8));
  }
  if(c->rx_len + len + lws_remaining_packet_payload(wsi) > max) {
    char reason[64];
    snprintf(reason, sizeof(reason), "message larger than %zu bytes", max);
    gw_info("client_message_too_large", "worker=%d max=%zu", gc->w->idx, max);
    conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, reason); /* the rest is read and dropped */
    return 0;
  }
  if(!c->rx_binary && text_invalid(c, in, len, final))
    return conn_fail(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text message is not valid UTF-8");
  if(first && final) {
    gc->t->receive(gc, in ? in : "", len, c->rx_binary);
    return 0;
  }
  if(rx_reserve(c, c->rx_len + len, max)) {
    lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, (unsigned char *)"oom", 3);
    return -1;
  }
  if(len) /* an empty fragment may come with in == NULL */
    memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
  if(final) {
    gc->t->receive(gc, c->rx ? (const char *)c->rx : "", c->rx_len, c->rx_binary);
    free(c->rx); /* big buffers only live while a message is in flight */
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
  }
  return 0;
}

/* --- the connection's life --------------------------------------------- */

static void conn_established(struct ws_conn *c, struct lws *wsi, struct gw_worker *w)
{
  memset(c, 0, sizeof(*c));
  c->wsi = wsi;
  c->established = true;
  gw_rx_guard_upgraded(lws_get_socket_fd(wsi)); /* frames follow: their mask bits are checked */
  struct gw_sock_info *si = lws_get_opaque_user_data(wsi);
  struct gw_identity *id = NULL;
  if(si && si->id) { /* the handshake's token: the connection owns it now */
    id = si->id;
    si->id = NULL;
  }
  gw_conn_open(&c->base, &gw_ws_herald_v1, w, id);
  free(id);
}

static void conn_closed(struct ws_conn *c)
{
  struct gw_worker *w = c->base.w;
  if(!c->established)
    return;
  if(!c->closing && c->out.n)
    gw_warn("send_stalled", "worker=%d queued_bytes=%zu", w->idx, c->out.bytes);
  gw_conn_closed(&c->base);
  gw_sendq_clear(&c->out);
  free(c->rx);
  c->established = false;
  gw_debug("client_closed", "worker=%d code=%u connections=%zu", w->idx,
           c->closing ? c->close_code : 0u, w->nconns);
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: WebSocket at /ws only, no other
 * upgrade (lws would take h2c); the handshake checks. The Upgrade header
 * is read here, not taken from the callback's `in`: libwebsockets 4.1.6
 * also calls this after it has answered an unknown upgrade with 403, when
 * the headers `in` points into may be gone (a use after free the ws_fuzz
 * harness found; lws_hdr_copy finds no headers then, and we hang up). */
static int confirm_upgrade(struct gw_worker *w, struct lws *wsi)
{
  char upgrade[16], uri[64];
  if(lws_hdr_copy(wsi, upgrade, sizeof(upgrade), WSI_TOKEN_UPGRADE) <= 0 ||
     strcasecmp(upgrade, "websocket") != 0)
    return -1;
  if(gw_handshake_refuse_too_large(w, wsi)) /* first: what was cut may be the path */
    return 1;
  if(lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/ws") != 0) {
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
    return 1;
  }
  int status = gw_handshake_check(w, wsi);
  if(status) {
    lws_return_http_status(wsi, (unsigned)status,
                           status == HTTP_STATUS_FORBIDDEN ? "origin not allowed"
                                                           : "invalid token");
    return 1;
  }
  return 0;
}

/* Rewrites the peer's close payload p (len >= 2) into our answer: code,
 * then as much of why as fits, padded with spaces (ASCII: still UTF-8).
 * libwebsockets echoes that payload and closes the socket at once: the
 * peer's close frame has come, no second one is awaited. */
static void answer_in_place(unsigned char *p, size_t len, uint16_t code, const char *why)
{
  size_t n = strlen(why);
  p[0] = (unsigned char)(code >> 8);
  p[1] = (unsigned char)code;
  memset(p + 2, ' ', len - 2);
  memcpy(p + 2, why, n < len - 2 ? n : len - 2);
}

/* The peer's close frame, before libwebsockets answers it with the same
 * payload. It has already made most codes no endpoint may send 1002 (0-999,
 * 1004-1006, 1012-2999), but not 5000 and up, nor does it look at the
 * reason; a 1-byte payload it would echo. Those get 1002, a reason that is
 * not UTF-8 gets 1007 (RFC 6455 §5.5.1, §7.4), answered in place; a 1-byte
 * payload has no room for a code: the connection is failed with 1002
 * (libwebsockets then waits up to 5 s for a close frame the peer has
 * already sent). Returns 0 to let libwebsockets answer, -1 to fail. */
static int peer_close(struct lws *wsi, unsigned char *p, size_t len)
{
  static const char one_byte[] = "close frame payload of 1 byte";
  if(len == 1) {
    lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)one_byte, sizeof(one_byte) - 1);
    return -1;
  }
  if(len < 2)
    return 0;
  if(!util_utf8_valid(p + 2, len - 2))
    answer_in_place(p, len, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "close reason is not valid UTF-8");
  else if((p[0] << 8 | p[1]) >= 5000)
    answer_in_place(p, len, LWS_CLOSE_STATUS_PROTOCOL_ERR, "invalid close code");
  return 0;
}

static int ws_writeable(struct ws_conn *c)
{
  if(lws_closing(c)) /* its close frame goes out without us */
    return 0;
  if(c->closing && c->out.n)
    return conn_write(c); /* finish the frame begun, then close */
  if(c->closing)
    return send_close(c);
  return conn_write(c);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
  struct ws_conn *c = user;
  struct lws_context *ctx = lws_get_context(wsi);
  struct gw_worker *w = ctx ? lws_context_user(ctx) : NULL;

  switch(reason) {
  case LWS_CALLBACK_EVENT_WAIT_CANCELLED: gw_worker_wake(w); return 0;
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return confirm_upgrade(w, wsi);
  case LWS_CALLBACK_RAW_ADOPT:
  case LWS_CALLBACK_RAW_RX:
    return -1; /* CONNECT makes a raw socket of the connection: not here */
  case LWS_CALLBACK_HTTP:
    if(gw_sse_is(c))
      return -1; /* a request pipelined behind a stream: the stream was the last answer */
    if(gw_handshake_refuse_too_large(w, wsi))
      return 1;
    if(strcmp(in, GW_SSE_PATH) == 0)
      return gw_sse_request(w, wsi, c);
    return gw_demo_page_request(wsi, in, &c->page_pending);
  case LWS_CALLBACK_HTTP_WRITEABLE:
    if(gw_sse_is(c))
      return gw_sse_writeable(c);
    return gw_demo_page_body(wsi, &c->page_pending, w->scratch, WRITE_CHUNK);
  case LWS_CALLBACK_CLOSED_HTTP: gw_sse_closed(c); return 0;
  case LWS_CALLBACK_ESTABLISHED: conn_established(c, wsi, w); return 0;
  case LWS_CALLBACK_RECEIVE_PONG:
    if(c && c->established)
      gw_session_received(&c->base.s, gw_now_us());
    return 0;
  case LWS_CALLBACK_RECEIVE:
    if(c->closing)
      return 0;
    return conn_receive(c, in, len);
  case LWS_CALLBACK_SERVER_WRITEABLE: return ws_writeable(c);
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if(c && c->established)
      c->peer_closed = true; /* libwebsockets answers it */
    return peer_close(wsi, in, len);
  case LWS_CALLBACK_CLOSED:
    conn_closed(c);
    if(atomic_load(&w->stopping) && !w->nconns)
      atomic_store(&w->done, true);
    return 0;
  case LWS_CALLBACK_WSI_DESTROY: {
    gw_sse_closed(c); /* when CLOSED_HTTP was not called */
    struct gw_sock_info *si = lws_get_opaque_user_data(wsi);
    if(si) { /* one Herald adopted */
      lws_set_opaque_user_data(wsi, NULL);
      gw_worker_socket_gone(w, si);
    }
    return 0;
  }
  default: return 0;
  }
}

void gw_ws_protocol(struct lws_protocols *p)
{
  *p = (struct lws_protocols){
      .name = "herald.v1",
      .callback = callback,
      .per_session_data_size =
          sizeof(struct ws_conn) > gw_sse_conn_size() ? sizeof(struct ws_conn) : gw_sse_conn_size(),
      /* libwebsockets allocates this per connection for its whole life:
       * at 4096 it was half of an idle connection's memory. Most messages
       * fit and are handled in place; longer ones come in 512-byte pieces
       * that conn_receive collects. */
      .rx_buffer_size = 512,
      .tx_packet_size = WRITE_CHUNK,
  };
}
