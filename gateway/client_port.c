/* The client port's workers: each a thread with its own libwebsockets
 * context on a libev loop, its own subscription index and connections. A
 * worker adopts the sockets the acceptor hands it, takes batches of events
 * from the fan-out, matches each against its index and hands it to every
 * matching connection's transport. Start, quiesce and stop are here too. */
#include "client_port.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "client_internal.h"
#include "handshake.h"
#include "ip_limit.h"
#include "log.h"
#include "net.h"
#include "ws_rx_guard.h"
#include "ws_transport.h"

/* --- connections --------------------------------------------------------- */

void gw_conn_open(struct gw_conn *c, const struct gw_transport *t, struct gw_worker *w,
                  struct gw_identity *id)
{
  gw_session_init(&c->s, &w->env, id, gw_now_us());
  c->t = t;
  c->w = w;
  c->prev = NULL;
  c->next = w->conns;
  if(w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  t->open(c);
  gw_debug("client_connected", "worker=%d connections=%zu", w->idx, w->nconns);
  if(atomic_load(&w->stopping))
    t->close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

void gw_conn_closed(struct gw_conn *c)
{
  struct gw_worker *w = c->w;
  gw_session_clear(&c->s);
  gw_client_publish_orphan(c);
  if(c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if(c->next)
    c->next->prev = c->prev;
  w->nconns--;
}

/* --- delivering a batch of events ---------------------------------------- */

/* One event on its way to the worker's connections, with each transport's
 * frame of it (borrowed from the event's cache, encoded when the first
 * connection of that transport anywhere gets it). */
struct delivery {
  struct gw_worker *w;
  struct sub_event *ev;
  struct sub_frame *frame[GW_TRANSPORT_SLOTS];
};

/* The transport's frame of the event: the one place events are encoded. */
static struct sub_frame *delivery_frame(struct delivery *d, const struct gw_transport *t)
{
  if(!d->frame[t->slot])
    d->frame[t->slot] = sub_event_encoded(d->ev, t->slot, t->encode, NULL);
  return d->frame[t->slot];
}

static void deliver(struct sub_subscriber *sub, void *arg)
{
  struct delivery *d = arg;
  struct gw_session *s = (struct gw_session *)((char *)sub - offsetof(struct gw_session, sub));
  struct gw_conn *c = gw_conn_of(s);
  if(c->t->deliver(c, delivery_frame(d, c->t)) && !c->dirty) {
    c->dirty = true; /* flushed when the batch is done */
    c->dirty_next = d->w->dirty;
    d->w->dirty = c;
  }
}

/* Lets each connection the batch gave frames write them, at once. */
static void flush_dirty(struct gw_worker *w)
{
  struct gw_conn *c = w->dirty;
  w->dirty = NULL;
  while(c) {
    struct gw_conn *next = c->dirty_next;
    c->dirty = false;
    c->dirty_next = NULL;
    c->t->flush(c);
    c = next;
  }
}

static void deliver_events(struct gw_worker *w, struct sub_batch *b)
{
  for(size_t i = 0; i < b->n; i++) {
    struct delivery d = {w, b->ev[i], {NULL}};
    sub_index_match(w->env.index, d.ev->topic, d.ev->topic_len, deliver, &d);
    sub_event_unref(d.ev); /* and the frames borrowed from it */
  }
  b->n = 0;
  flush_dirty(w);
}

static void deliver_batch(struct gw_worker *w)
{
  deliver_events(w, &w->batch);
}

/* A resume's handoff: what the worker's queue held up to the mark goes to
 * the subscriptions as they were. */
static void drain(void *arg, struct sub_batch *batch)
{
  deliver_events(arg, batch);
}

/* --- the worker's service thread ----------------------------------------- */

/* Adopts the sockets the acceptor handed over: each is HTTP until it
 * upgrades (or is served the demo page). */
static void adopt(struct gw_worker *w, struct gw_handed *fds, size_t nfds)
{
  for(size_t i = 0; i < nfds; i++) {
    struct gw_sock_info *si = calloc(1, sizeof(*si));
    gw_rx_guard_track(fds[i].fd); /* before libwebsockets reads from it */
    struct lws *wsi = si ? lws_adopt_socket_vhost(w->vh, fds[i].fd) : NULL;
    if(!wsi) {
      gw_warn("adopt_failed", "worker=%d", w->idx);
      if(!si)
        close(fds[i].fd);
      free(si);
      gw_ip_release(w->cp->ips, fds[i].ip);
      atomic_fetch_sub(&w->cp->live, 1); /* lws closed the socket */
      continue;
    }
    si->ip = fds[i].ip; /* owned by the socket now */
    lws_set_opaque_user_data(wsi, si);
    /* until the WebSocket handshake completes (TLS included); a socket that
     * sends nothing is not timed out by libwebsockets 4.1 otherwise */
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, w->cp->cfg->client_handshake_timeout_s);
  }
}

void gw_worker_wake(struct gw_worker *w)
{
  pthread_mutex_lock(&w->lock);
  struct gw_handed *fds = w->fds;
  size_t nfds = w->nfds;
  w->fds = NULL;
  w->nfds = w->capfds = 0;
  struct gw_pending *done = w->answers;
  w->answers = w->answers_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  gw_client_publish_answer(done);
  adopt(w, fds, nfds);
  free(fds);

  if(sub_fanout_take(w->cp->fanout, w->idx, &w->batch))
    deliver_batch(w);

  if(atomic_load(&w->stopping)) {
    for(struct gw_conn *c = w->conns; c; c = c->next)
      c->t->close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
    if(!w->nconns)
      atomic_store(&w->done, true);
  }
  if(atomic_load(&w->exit))
    ev_break(w->loop, EVBREAK_ALL);
}

void gw_worker_socket_gone(struct gw_worker *w, struct gw_sock_info *si)
{
  gw_ip_release(w->cp->ips, si->ip);
  if(si->id) {
    gw_identity_clear(si->id);
    free(si->id);
  }
  free(si);
  atomic_fetch_sub(&w->cp->live, 1);
}

/* Timers of every connection of the worker, every TICK_MS. */
static void tick(lws_sorted_usec_list_t *sul)
{
  struct gw_worker *w = lws_container_of(sul, struct gw_worker, tick);
  int64_t now = gw_now_us();
  long long wall = (long long)time(NULL);
  for(struct gw_conn *c = w->conns; c; c = c->next)
    c->t->tick(c, now, wall);
  lws_sul_schedule(w->ctx, 0, &w->tick, tick, (lws_usec_t)TICK_MS * LWS_US_PER_MS);
}

static void *worker_main(void *arg)
{
  struct gw_worker *w = arg;
  if(!w->cp->cfg->client_tls_cert[0] && gw_rx_guard_thread_init()) /* TLS: OpenSSL reads */
    gw_warn("rx_guard_failed", "worker=%d (out of memory: unmasked frames are not refused)", w->idx);
  while(!atomic_load(&w->exit))
    if(!ev_run(w->loop, 0)) /* returns at ev_break (w->exit set), or with */
      break;                /* no watcher left that could ever wake it */
  gw_rx_guard_thread_free();
  return NULL;
}

static void wake_worker(void *arg, int sink)
{
  struct gw_client_port *cp = arg;
  lws_cancel_service(cp->workers[sink].ctx);
}

/* The worker's libwebsockets context, on its libev loop. Returns 0 or -1. */
static int worker_context(struct gw_client_port *cp, struct gw_worker *w)
{
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
  if(tls && w->idx == 0)
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = w;
  info.timeout_secs = (unsigned)cfg->client_handshake_timeout_s; /* handshake, TLS included */
  info.max_http_header_data = UTIL_TOKEN_MAX + 4096; /* room for a token in a header */
  info.token_limits = gw_handshake_token_limits(); /* a longer header: 431 */
  w->ctx = lws_create_context(&info);
  if(!w->ctx) {
    /* the usual cause: libwebsockets found no libev plugin to load */
    gw_error("client_context_failed", "worker=%d hint=\"is libwebsockets-evlib-ev installed? "
                                      "(scripts/install-deps.sh)\"",
             w->idx);
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
  return w->vh ? 0 : -1;
}

static int worker_init(struct gw_client_port *cp, struct gw_worker *w, int idx)
{
  w->idx = idx;
  w->cp = cp;
  pthread_mutex_init(&w->lock, NULL);
  w->env = (struct gw_session_env){.cfg = cp->cfg,
                                   .auth = cp->auth,
                                   .fanout = cp->fanout,
                                   .index = sub_index_new(),
                                   .worker = idx,
                                   .engine = cp->engine,
                                   .drain = drain,
                                   .drain_arg = w};
  w->scratch = malloc(LWS_PRE + WRITE_CHUNK);
  /* libwebsockets' default loop calls poll() on every socket of the worker
   * at each wakeup: with 5,000 connections that scan cost more than the
   * delivery itself. Its libev plugin on a loop of ours uses epoll. */
  w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
  if(!w->env.index || !w->scratch || !w->loop || worker_context(cp, w))
    return -1;
  lws_sul_schedule(w->ctx, 0, &w->tick, tick, (lws_usec_t)TICK_MS * LWS_US_PER_MS);
  return 0;
}

static void worker_free(struct gw_client_port *cp, struct gw_worker *w)
{
  if(w->ctx)
    lws_context_destroy(w->ctx); /* closes what is left: CLOSED runs */
  if(w->loop)
    ev_loop_destroy(w->loop); /* its thread has left it */
  gw_client_publish_drop(w);
  for(size_t k = 0; k < w->nfds; k++) {
    close(w->fds[k].fd);
    gw_ip_release(cp->ips, w->fds[k].ip);
  }
  free(w->fds);
  sub_batch_free(&w->batch);
  sub_index_free(w->env.index);
  free(w->scratch);
  pthread_mutex_destroy(&w->lock);
}

/* --- the acceptor's hand-over ------------------------------------------ */

static void hand_over(void *arg, int worker, int fd, struct gw_ip_node *ip)
{
  struct gw_client_port *cp = arg;
  struct gw_worker *w = &cp->workers[worker];
  pthread_mutex_lock(&w->lock);
  if(w->nfds == w->capfds) {
    size_t cap = w->capfds ? w->capfds * 2 : 16;
    struct gw_handed *nf = realloc(w->fds, cap * sizeof(*nf));
    if(!nf) {
      pthread_mutex_unlock(&w->lock);
      close(fd);
      gw_ip_release(cp->ips, ip);
      atomic_fetch_sub(&cp->live, 1);
      return;
    }
    w->fds = nf;
    w->capfds = cap;
  }
  w->fds[w->nfds++] = (struct gw_handed){fd, ip};
  pthread_mutex_unlock(&w->lock);
  lws_cancel_service(w->ctx);
}

/* --- start and stop ---------------------------------------------------- */

static void free_port(struct gw_client_port *cp)
{
  gw_acceptor_free(cp->acceptor);
  for(int i = 0; i < cp->nworkers; i++)
    worker_free(cp, &cp->workers[i]);
  free(cp->workers);
  gw_ip_limit_free(cp->ips);
  free(cp);
}

/* The port's acceptor on listen_fd (taken over). Returns 0 or -1. */
static int port_acceptor(struct gw_client_port *cp, int listen_fd)
{
  const struct gw_config *cfg = cp->cfg;
  struct gw_acceptor_conf ac = {
      .listen_fd = listen_fd,
      .max_connections = cfg->client_max_connections,
      .max_per_ip = cfg->client_max_connections_per_ip,
      .live = &cp->live,
      .nworkers = cfg->client_workers,
      .hand_over = hand_over,
      .arg = cp,
  };
  if(ac.max_per_ip && !(cp->ips = gw_ip_limit_new(ac.max_per_ip))) {
    close(listen_fd);
    return -1;
  }
  ac.ips = cp->ips;
  cp->acceptor = gw_acceptor_new(&ac);
  return cp->acceptor ? 0 : -1;
}

struct gw_client_port *gw_client_start(const struct gw_config *cfg, struct sub_engine *engine,
                                       struct pub_pipeline *pp, struct gw_auth *auth,
                                       int listen_fd)
{
  struct gw_client_port *cp = calloc(1, sizeof(*cp));
  if(!cp) {
    close(listen_fd);
    return NULL;
  }
  cp->cfg = cfg;
  cp->engine = engine;
  cp->fanout = sub_engine_fanout(engine);
  cp->pp = pp;
  cp->auth = auth;
  cp->open_loopback = gw_open_on_loopback(cfg, "client");
  gw_ws_protocol(&cp->protocols[0]);
  if(port_acceptor(cp, listen_fd))
    goto fail;
  cp->workers = calloc((size_t)cfg->client_workers, sizeof(*cp->workers));
  if(!cp->workers)
    goto fail;
  cp->nworkers = cfg->client_workers;
  for(int i = 0; i < cp->nworkers; i++) {
    if(worker_init(cp, &cp->workers[i], i)) {
      gw_error("client_worker_failed", "worker=%d", i);
      goto fail;
    }
  }
  sub_fanout_set_wake(cp->fanout, wake_worker, cp);
  for(int i = 0; i < cp->nworkers; i++) {
    struct gw_worker *w = &cp->workers[i];
    if(pthread_create(&w->thread, NULL, worker_main, w))
      goto fail;
    w->started = true;
  }
  if(gw_acceptor_run(cp->acceptor))
    goto fail;
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
  if(cp->acceptor)
    gw_acceptor_stop(cp->acceptor);
}

/* Waits up to timeout_ms for every worker's clients to take their close
 * frames, waking the workers now and then: a loop may sleep through a
 * quiet second. */
static void wait_for_clients(struct gw_client_port *cp, int timeout_ms)
{
  for(int waited = 0; waited < timeout_ms; waited += 20) {
    bool all = true;
    for(int i = 0; i < cp->nworkers; i++) {
      struct gw_worker *w = &cp->workers[i];
      if(w->started && !atomic_load(&w->done)) {
        all = false;
        lws_cancel_service(w->ctx);
      }
    }
    if(all)
      break;
    sleep_ms(20);
  }
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
  wait_for_clients(cp, timeout_ms);
  for(int i = 0; i < cp->nworkers; i++) {
    struct gw_worker *w = &cp->workers[i];
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
