#include "acceptor.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util/throttle.h"

struct gw_acceptor {
  struct gw_acceptor_conf conf;
  int stop_fd; /* eventfd: wakes the thread to stop */
  pthread_t thread;
  bool started;
  size_t next; /* the worker that gets the next socket */
  struct util_throttle full_log, emfile_log, ip_log; /* once a second each */
};

struct gw_acceptor *gw_acceptor_new(const struct gw_acceptor_conf *conf)
{
  struct gw_acceptor *a = calloc(1, sizeof(*a));
  if(!a) {
    close(conf->listen_fd);
    return NULL;
  }
  a->conf = *conf;
  a->stop_fd = eventfd(0, EFD_CLOEXEC);
  if(a->stop_fd < 0) {
    gw_acceptor_free(a);
    return NULL;
  }
  return a;
}

/* Logs a refused connection, at most once a second per reason. */
static void log_refusal(const char *reason, int max, struct util_throttle *t)
{
  if(util_throttle_ok(t, time(NULL), NULL))
    gw_warn("connection_refused", "reason=%s max=%d", reason, max);
}

/* accept4 failed: out of descriptors is logged (once a second) and waited
 * out a little; anything else (EAGAIN) ends the burst. */
static void accept_failed(struct gw_acceptor *a)
{
  if(errno != EMFILE && errno != ENFILE)
    return;
  if(util_throttle_ok(&a->emfile_log, time(NULL), NULL))
    gw_error("accept_failed", "error=\"%s\"", strerror(errno));
  usleep(10000); /* let sockets close before trying again */
}

/* Admits or refuses one accepted socket. */
static void admit(struct gw_acceptor *a, int fd, const struct sockaddr_storage *peer)
{
  const struct gw_acceptor_conf *c = &a->conf;
  if(atomic_load(c->live) >= (size_t)c->max_connections) {
    close(fd);
    log_refusal("max_connections", c->max_connections, &a->full_log);
    return;
  }
  struct gw_ip_node *ip = NULL;
  if(c->max_per_ip && !(ip = gw_ip_acquire(c->ips, peer))) {
    close(fd);
    log_refusal("max_connections_per_ip", c->max_per_ip, &a->ip_log);
    return;
  }
  /* small frames go out at once, not after the client's delayed ACK
   * (libwebsockets sets it only on sockets it accepts itself) */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  atomic_fetch_add(c->live, 1);
  c->hand_over(c->arg, (int)(a->next++ % (size_t)c->nworkers), fd, ip);
}

static void *acceptor_main(void *arg)
{
  struct gw_acceptor *a = arg;
  int lfd = a->conf.listen_fd;
  struct pollfd pfd[2] = {{lfd, POLLIN, 0}, {a->stop_fd, POLLIN, 0}};
  for(;;) {
    if(poll(pfd, 2, -1) < 0 && errno != EINTR)
      break;
    if(pfd[1].revents)
      break;
    for(;;) {
      struct sockaddr_storage peer;
      socklen_t plen = sizeof(peer);
      int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if(fd < 0) {
        accept_failed(a);
        break;
      }
      admit(a, fd, &peer);
    }
  }
  return NULL;
}

int gw_acceptor_run(struct gw_acceptor *a)
{
  if(pthread_create(&a->thread, NULL, acceptor_main, a))
    return -1;
  a->started = true;
  return 0;
}

void gw_acceptor_stop(struct gw_acceptor *a)
{
  if(a->started) {
    uint64_t one = 1;
    ssize_t r = write(a->stop_fd, &one, sizeof(one));
    (void)r;
    pthread_join(a->thread, NULL);
    a->started = false;
  }
  if(a->conf.listen_fd >= 0)
    close(a->conf.listen_fd); /* new clients are refused from here on */
  a->conf.listen_fd = -1;
}

void gw_acceptor_free(struct gw_acceptor *a)
{
  if(!a)
    return;
  gw_acceptor_stop(a);
  if(a->stop_fd >= 0)
    close(a->stop_fd);
  free(a);
}
