#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/clock.h"

#define LINGER_READ 65536 /* one read per socket per turn, into the scratch buffer */
#define LINGER_TICK_MS 250 /* how often deadlines are looked at */

struct slot {
  int fd; /* -1: free */
  size_t bytes; /* read and dropped so far */
  int64_t deadline_us;
};

struct gw_linger {
  size_t max_socks, max_bytes;
  int64_t max_us;
  int ep, stop_fd;
  pthread_t thread;
  pthread_mutex_t lock; /* slots, n */
  size_t n;
  struct slot *slots;
  char scratch[LINGER_READ]; /* the thread's only */
};

/* Closes a slot's socket (under the lock). */
static void slot_drop(struct gw_linger *l, struct slot *s)
{
  epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  l->n--;
}

/* Reads once from a readable socket (under the lock); drops it at its end
 * or past the byte bound. */
static void slot_read(struct gw_linger *l, struct slot *s)
{
  ssize_t got = read(s->fd, l->scratch, sizeof(l->scratch));
  if(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if(got > 0)
    s->bytes += (size_t)got;
  if(got <= 0 || s->bytes > l->max_bytes)
    slot_drop(l, s);
}

static void *linger_main(void *arg)
{
  struct gw_linger *l = arg;
  struct epoll_event ev[32];
  for(bool stop = false; !stop;) {
    int n = epoll_wait(l->ep, ev, 32, LINGER_TICK_MS);
    int64_t now = util_clock_mono_us();
    pthread_mutex_lock(&l->lock);
    for(int i = 0; i < n; i++) {
      if(ev[i].data.ptr == NULL) {
        stop = true;
        continue;
      }
      struct slot *s = ev[i].data.ptr;
      if(s->fd >= 0)
        slot_read(l, s);
    }
    for(size_t i = 0; i < l->max_socks && l->n; i++)
      if(l->slots[i].fd >= 0 && now >= l->slots[i].deadline_us)
        slot_drop(l, &l->slots[i]);
    pthread_mutex_unlock(&l->lock);
  }
  return NULL;
}

struct gw_linger *gw_linger_new(size_t max_socks, size_t max_bytes, int max_ms)
{
  struct gw_linger *l = calloc(1, sizeof(*l));
  if(!l)
    return NULL;
  l->max_socks = max_socks;
  l->max_bytes = max_bytes;
  l->max_us = (int64_t)max_ms * 1000;
  l->ep = l->stop_fd = -1;
  l->slots = calloc(max_socks, sizeof(*l->slots));
  if(!l->slots)
    goto fail;
  for(size_t i = 0; i < max_socks; i++)
    l->slots[i].fd = -1;
  l->ep = epoll_create1(EPOLL_CLOEXEC);
  l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if(l->ep < 0 || l->stop_fd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->stop_fd, &ev))
    goto fail;
  pthread_mutex_init(&l->lock, NULL);
  if(pthread_create(&l->thread, NULL, linger_main, l)) {
    pthread_mutex_destroy(&l->lock);
    goto fail;
  }
  return l;
fail:
  if(l->stop_fd >= 0)
    close(l->stop_fd);
  if(l->ep >= 0)
    close(l->ep);
  free(l->slots);
  free(l);
  return NULL;
}

bool gw_linger_add(struct gw_linger *l, int fd)
{
  int fl = fcntl(fd, F_GETFL);
  if(fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    close(fd);
    return false;
  }
  pthread_mutex_lock(&l->lock);
  struct slot *s = NULL;
  for(size_t i = 0; i < l->max_socks && l->n < l->max_socks; i++)
    if(l->slots[i].fd < 0) {
      s = &l->slots[i];
      break;
    }
  bool ok = false;
  if(s) {
    *s = (struct slot){fd, 0, util_clock_mono_us() + l->max_us};
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    ok = epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) == 0;
    if(ok)
      l->n++;
    else
      s->fd = -1;
  }
  pthread_mutex_unlock(&l->lock);
  if(!ok)
    close(fd);
  return ok;
}

void gw_linger_free(struct gw_linger *l)
{
  if(!l)
    return;
  uint64_t one = 1;
  if(write(l->stop_fd, &one, sizeof(one)) != sizeof(one))
    abort(); /* an eventfd at 0 always takes a 1 */
  pthread_join(l->thread, NULL);
  for(size_t i = 0; i < l->max_socks; i++)
    if(l->slots[i].fd >= 0)
      slot_drop(l, &l->slots[i]);
  pthread_mutex_destroy(&l->lock);
  close(l->stop_fd);
  close(l->ep);
  free(l->slots);
  free(l);
}
