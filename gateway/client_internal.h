#ifndef HERALD_CLIENT_INTERNAL_H
#define HERALD_CLIENT_INTERNAL_H

/* What the client port's files share (gateway/client_port.c and the files
 * it was split into): the worker, the port, the socket's user data. Not for
 * use outside the client port. */

#include <ev.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "fanout.h"
#include "pipeline.h"
#include "client_port.h"
#include "herald_v1.h"
#include "index.h"
#include "session.h"
#include "transport.h"
#include "util/throttle.h"

#define WRITE_CHUNK 65536 /* bytes coalesced into one write */
#define TICK_MS 250       /* timers: auth deadline, token expiry, pings, idle */

struct gw_ip_node;
struct gw_ip_limit;
struct gw_acceptor;

/* What Herald keeps on each adopted socket (libwebsockets' opaque user
 * data), from accept to destruction: its address's count, and the identity
 * a token verified at the handshake gave, until the connection takes it. */
struct gw_sock_info {
  struct gw_ip_node *ip;  /* NULL without a per-address limit */
  struct gw_identity *id; /* verified at the handshake, not yet taken */
};

struct gw_worker {
  int idx;
  struct gw_client_port *cp;
  pthread_t thread;
  bool started;
  struct ev_loop *loop; /* epoll: libwebsockets' own loop is poll() */
  struct lws_context *ctx;
  struct lws_vhost *vh;
  struct gw_session_env env; /* its index, for its sessions */
  struct sub_batch batch;
  struct gw_conn *conns;
  size_t nconns;
  struct gw_conn *dirty;  /* connections given frames by the batch */
  unsigned char *scratch; /* LWS_PRE + WRITE_CHUNK: coalesced writes */
  lws_sorted_usec_list_t tick;
  struct util_throttle refused_log; /* refusals are logged once a second */
  struct util_throttle slow_log;    /* and slow consumers */

  pthread_mutex_t lock; /* guards the fields below: the acceptor's hand-over */
  struct gw_handed {
    int fd;
    struct gw_ip_node *ip;
  } *fds;
  size_t nfds, capfds;

  struct gw_pending *answers, *answers_tail; /* committed publishes to answer (under lock) */
  atomic_int outstanding;                    /* publishes the pipeline still holds */

  atomic_bool stopping; /* close every client with 1001 */
  atomic_bool exit;     /* leave the service loop */
  atomic_bool done;     /* no connection left (or the loop has left) */
};

struct gw_client_port {
  const struct gw_config *cfg;
  struct sub_engine *engine;
  struct sub_fanout *fanout; /* the engine's: the workers' queues */
  struct pub_pipeline *pp;   /* where publishes go */
  struct gw_auth *auth;
  struct gw_acceptor *acceptor;
  struct gw_ip_limit *ips; /* NULL without client.max_connections_per_ip */
  atomic_size_t live;
  int nworkers;
  struct gw_worker *workers;
  struct lws_protocols protocols[2];
  bool open_loopback; /* no authentication, on loopback: Host is checked */
};


/* client_port.c: runs on the worker's thread after lws_cancel_service:
 * adopts handed-over sockets, answers committed publishes, delivers queued
 * events, starts closing on shutdown, and leaves the loop on exit. */
void gw_worker_wake(struct gw_worker *w);

/* client_port.c: a socket Herald adopted is destroyed: releases its user
 * data si (address count, unused identity) and counts it gone. */
void gw_worker_socket_gone(struct gw_worker *w, struct gw_sock_info *si);

/* client_publish.c: makes a client's publish through the publish pipeline;
 * the answer goes through out (now, or later from gw_worker_wake). */
enum gw_v1_pub_state gw_client_publish(const struct gw_v1_out *out, struct gw_conn *c,
                                       const struct gw_v1_publish *req);

/* client_publish.c: answers (where the connection is still there) and frees
 * a list of completed publishes. Worker thread. */
void gw_client_publish_answer(struct gw_pending *done);

/* client_publish.c: c is going: its pending publishes will not be answered. */
void gw_client_publish_orphan(struct gw_conn *c);

/* client_publish.c: frees the completed publishes left on w (at stop),
 * answering none. */
void gw_client_publish_drop(struct gw_worker *w);

#endif
