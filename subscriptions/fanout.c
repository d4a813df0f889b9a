#include "fanout.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define INTEREST_SLOTS 65536u /* 256 KiB a sink; 5,000 topics collide 7 % */

struct sink {
  pthread_mutex_t lock;
  struct sub_batch q;
  atomic_size_t depth; /* read without the lock for the overload check */
  atomic_size_t bytes; /* event bytes queued; likewise */
  /* skip_idle_sinks: what its consumer subscribes to, as counts. Patterns
   * with a wildcard are counted in `wild`; concrete topics in the slot of
   * their hash (a counting filter: a collision only costs a wasted event). */
  atomic_long wild;
  atomic_uint *slots; /* INTEREST_SLOTS */
};

struct sub_fanout {
  struct sub_fanout_cfg cfg;
  struct sink *sinks;
  void (*wake)(void *arg, int sink);
  void *wake_arg;
};

static bool in_set(const struct sub_sinkset *s, int i)
{
  return (s->bits[i / 64] >> (i % 64)) & 1;
}

static void set_add(struct sub_sinkset *s, int i)
{
  s->bits[i / 64] |= (uint64_t)1 << (i % 64);
}

struct sub_fanout *sub_fanout_new(const struct sub_fanout_cfg *cfg)
{
  if(!cfg || cfg->nsinks < 1 || cfg->nsinks > SUB_SINKS_MAX || !cfg->sink_max_events ||
     !cfg->sink_max_bytes)
    return NULL;
  struct sub_fanout *f = calloc(1, sizeof(*f));
  if(!f)
    return NULL;
  f->cfg = *cfg;
  f->sinks = calloc((size_t)cfg->nsinks, sizeof(*f->sinks));
  if(!f->sinks) {
    free(f);
    return NULL;
  }
  for(int i = 0; i < cfg->nsinks; i++) {
    pthread_mutex_init(&f->sinks[i].lock, NULL);
    if(cfg->skip_idle_sinks &&
       !(f->sinks[i].slots = calloc(INTEREST_SLOTS, sizeof(*f->sinks[i].slots)))) {
      f->cfg.nsinks = i + 1; /* what to free */
      sub_fanout_free(f);
      return NULL;
    }
  }
  return f;
}

void sub_batch_free(struct sub_batch *batch)
{
  for(size_t i = 0; i < batch->n; i++)
    sub_event_unref(batch->ev[i]);
  free(batch->ev);
  memset(batch, 0, sizeof(*batch));
}

void sub_fanout_free(struct sub_fanout *f)
{
  if(!f)
    return;
  for(int i = 0; i < f->cfg.nsinks; i++) {
    sub_batch_free(&f->sinks[i].q);
    free(f->sinks[i].slots);
    pthread_mutex_destroy(&f->sinks[i].lock);
  }
  free(f->sinks);
  free(f);
}

int sub_fanout_sinks(const struct sub_fanout *f)
{
  return f->cfg.nsinks;
}

void sub_fanout_set_wake(struct sub_fanout *f, void (*wake)(void *arg, int sink), void *arg)
{
  f->wake = wake;
  f->wake_arg = arg;
}

void sub_fanout_interest(struct sub_fanout *f, int sink, const char *pattern, size_t len,
                         int delta)
{
  if(sink < 0 || sink >= f->cfg.nsinks || !f->cfg.skip_idle_sinks)
    return;
  struct sink *k = &f->sinks[sink];
  if(memchr(pattern, '*', len) || memchr(pattern, '>', len))
    atomic_fetch_add(&k->wild, delta);
  else
    atomic_fetch_add(&k->slots[sub_topic_hash(pattern, len) & (INTEREST_SLOTS - 1)],
                     (unsigned)delta);
}

int sub_fanout_wanting(struct sub_fanout *f, uint64_t h, struct sub_sinkset *want)
{
  int n = 0;
  memset(want, 0, sizeof(*want));
  for(int i = 0; i < f->cfg.nsinks; i++) {
    const struct sink *k = &f->sinks[i];
    if(!f->cfg.skip_idle_sinks || atomic_load(&k->wild) > 0 ||
       atomic_load(&k->slots[h & (INTEREST_SLOTS - 1)]) > 0) {
      set_add(want, i);
      n++;
    }
  }
  return n;
}

/* True when one more event of `size` bytes would pass a sink's caps. */
static bool sink_over(const struct sub_fanout *f, const struct sink *k, size_t size)
{
  return atomic_load_explicit(&k->depth, memory_order_relaxed) >= f->cfg.sink_max_events ||
         atomic_load_explicit(&k->bytes, memory_order_relaxed) + size > f->cfg.sink_max_bytes;
}

bool sub_fanout_full(struct sub_fanout *f, size_t size, const struct sub_sinkset *want)
{
  for(int i = 0; i < f->cfg.nsinks; i++)
    if(in_set(want, i) && sink_over(f, &f->sinks[i], size))
      return true;
  return false;
}

/* Makes room for one more event in a locked sink's queue. Returns 0 or -1. */
static int sink_grow(struct sink *k)
{
  if(k->q.n < k->q.cap)
    return 0;
  size_t cap = k->q.cap ? k->q.cap * 2 : 256;
  struct sub_event **ev = realloc(k->q.ev, cap * sizeof(*ev));
  if(!ev)
    return -1;
  k->q.ev = ev;
  k->q.cap = cap;
  return 0;
}

enum sub_err sub_fanout_reserve(struct sub_fanout *f, size_t size, const struct sub_sinkset *want)
{
  enum sub_err err = SUB_OK;
  int i;
  /* The locks stay held until the push: in between, a concurrent take
   * would swap the room away (or a concurrent publish use it up). */
  for(i = 0; i < f->cfg.nsinks; i++) {
    struct sink *k = &f->sinks[i];
    if(!in_set(want, i))
      continue;
    pthread_mutex_lock(&k->lock);
    if(sink_over(f, k, size)) {
      err = SUB_EOVERLOADED;
      break;
    }
    if(sink_grow(k)) {
      err = SUB_ENOMEM;
      break;
    }
  }
  if(err)
    for(; i >= 0; i--)
      if(in_set(want, i))
        pthread_mutex_unlock(&f->sinks[i].lock);
  return err;
}

void sub_fanout_unreserve(struct sub_fanout *f, const struct sub_sinkset *want)
{
  for(int i = f->cfg.nsinks - 1; i >= 0; i--)
    if(in_set(want, i))
      pthread_mutex_unlock(&f->sinks[i].lock);
}

void sub_fanout_push(struct sub_fanout *f, struct sub_event *ev, bool reserved,
                     const struct sub_sinkset *want, struct sub_sinkset *woken)
{
  memset(woken, 0, sizeof(*woken));
  for(int i = 0; i < f->cfg.nsinks; i++) {
    struct sink *k = &f->sinks[i];
    if(!in_set(want, i))
      continue;
    if(!reserved) {
      pthread_mutex_lock(&k->lock);
      if(sink_grow(k)) { /* the sinks before this one got it: the rest miss it */
        pthread_mutex_unlock(&k->lock);
        break;
      }
    }
    if(k->q.n == 0)
      set_add(woken, i);
    k->q.ev[k->q.n++] = sub_event_ref(ev);
    atomic_store_explicit(&k->depth, k->q.n, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->bytes, ev->size, memory_order_relaxed);
    pthread_mutex_unlock(&k->lock); /* locked by sub_fanout_reserve or above */
  }
  sub_event_unref(ev);
}

void sub_fanout_wake(struct sub_fanout *f, const struct sub_sinkset *woken)
{
  if(f->wake)
    for(int i = 0; i < f->cfg.nsinks; i++)
      if(in_set(woken, i))
        f->wake(f->wake_arg, i);
}

size_t sub_fanout_take(struct sub_fanout *f, int sink, struct sub_batch *batch)
{
  struct sink *k = &f->sinks[sink];
  pthread_mutex_lock(&k->lock);
  struct sub_batch mine = *batch;
  *batch = k->q;
  k->q = mine;
  k->q.n = 0;
  atomic_store_explicit(&k->depth, 0, memory_order_relaxed);
  atomic_store_explicit(&k->bytes, 0, memory_order_relaxed);
  pthread_mutex_unlock(&k->lock);
  return batch->n;
}
