#ifndef HERALD_ACCEPTOR_H
#define HERALD_ACCEPTOR_H

#include <stdatomic.h>
#include <stddef.h>

#include "ip_limit.h"

/* The client port's accept loop: one thread accepts on the listening
 * socket, refuses what is over client.max_connections (or the per-address
 * limit), and hands each accepted socket to a worker, round robin. */

struct gw_ip_node;

struct gw_acceptor_conf {
  int listen_fd;
  int max_connections;    /* live sockets in all */
  int max_per_ip;         /* 0: no per-address limit */
  struct gw_ip_limit *ips; /* NULL when max_per_ip is 0 */
  atomic_size_t *live;    /* counted up here for each socket handed over */
  int nworkers;
  /* Takes over fd (and ip, its address's count, NULL without a limit) for
   * worker `worker`. Called from the acceptor thread. */
  void (*hand_over)(void *arg, int worker, int fd, struct gw_ip_node *ip);
  void *arg;
};

struct gw_acceptor;

/* Makes an acceptor (not yet running) for conf->listen_fd, which it takes
 * over even on failure. Returns NULL when out of memory. */
struct gw_acceptor *gw_acceptor_new(const struct gw_acceptor_conf *conf);

/* Starts the accept thread. Returns 0, or -1 when it could not start. */
int gw_acceptor_run(struct gw_acceptor *a);

/* Stops accepting: joins the thread (if it runs) and closes the listening
 * socket, so new clients are refused from here on. Idempotent. */
void gw_acceptor_stop(struct gw_acceptor *a);

/* Stops (if not done yet) and frees the acceptor. NULL: nothing. */
void gw_acceptor_free(struct gw_acceptor *a);

#endif
