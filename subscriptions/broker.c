#include "broker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64 /* topic-table locks: publishes on different topics rarely meet */

struct topic_entry {
  struct topic_entry *next;
  uint64_t seq;
  atomic_size_t held; /* events held, not yet released: later publishes wait behind them */
  size_t len;
  char name[];
};

struct stripe {
  pthread_mutex_t lock;
  struct topic_entry **buckets;
  size_t nbuckets, count;
};

struct sink {
  pthread_mutex_t lock;
  struct sub_batch q;
  atomic_size_t depth; /* read without the lock for the overload check */
  atomic_size_t bytes; /* frame bytes queued; likewise */
  /* skip_idle_sinks: what its consumer subscribes to, as counts. Patterns
   * with a wildcard are counted in `wild`; concrete topics in the slot of
   * their hash (a counting filter: a collision only costs a wasted event). */
  atomic_long wild;
  atomic_uint *slots; /* INTEREST_SLOTS */
};

#define INTEREST_SLOTS 65536u /* 256 KiB a sink; 5,000 topics collide 7 % */

struct sub_broker {
  struct sub_broker_cfg cfg;
  struct stripe stripes[STRIPES];
  atomic_size_t topics;
  struct sink *sinks;
  sub_hold_fn hold;
  void *hold_arg;
};

const char *sub_err_name(enum sub_err e)
{
  switch(e) {
  case SUB_OK: return "ok";
  case SUB_ENOMEM: return "out_of_memory";
  case SUB_EOVERLOADED: return "overloaded";
  case SUB_ETOOMANYTOPICS: return "too_many_topics";
  case SUB_EINVAL: return "invalid_topic";
  }
  return "unknown";
}

struct sub_broker *sub_broker_new(const struct sub_broker_cfg *cfg)
{
  if(!cfg || cfg->nsinks < 1 || !cfg->sink_max_events || !cfg->sink_max_bytes || !cfg->max_topics)
    return NULL;
  struct sub_broker *b = calloc(1, sizeof(*b));
  if(!b)
    return NULL;
  b->cfg = *cfg;
  b->sinks = calloc((size_t)cfg->nsinks, sizeof(*b->sinks));
  if(!b->sinks) {
    free(b);
    return NULL;
  }
  for(int i = 0; i < STRIPES; i++)
    pthread_mutex_init(&b->stripes[i].lock, NULL);
  for(int i = 0; i < cfg->nsinks; i++) {
    pthread_mutex_init(&b->sinks[i].lock, NULL);
    if(cfg->skip_idle_sinks &&
       !(b->sinks[i].slots = calloc(INTEREST_SLOTS, sizeof(*b->sinks[i].slots)))) {
      b->cfg.nsinks = i + 1; /* what to free */
      sub_broker_free(b);
      return NULL;
    }
  }
  return b;
}

void sub_broker_set_wake(struct sub_broker *b, void (*wake)(void *arg, int sink), void *arg)
{
  b->cfg.wake = wake;
  b->cfg.wake_arg = arg;
}

void sub_batch_free(struct sub_batch *batch)
{
  for(size_t i = 0; i < batch->n; i++)
    sub_event_unref(batch->ev[i]);
  free(batch->ev);
  memset(batch, 0, sizeof(*batch));
}

void sub_broker_free(struct sub_broker *b)
{
  if(!b)
    return;
  for(int i = 0; i < STRIPES; i++) {
    struct stripe *s = &b->stripes[i];
    for(size_t k = 0; k < s->nbuckets; k++) {
      struct topic_entry *e = s->buckets[k];
      while(e) {
        struct topic_entry *next = e->next;
        free(e);
        e = next;
      }
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
  }
  for(int i = 0; i < b->cfg.nsinks; i++) {
    sub_batch_free(&b->sinks[i].q);
    free(b->sinks[i].slots);
    pthread_mutex_destroy(&b->sinks[i].lock);
  }
  free(b->sinks);
  free(b);
}

/* Returns the topic's entry, adding it when new; NULL when out of memory or
 * the table is full (*err says which). Called with the stripe locked. */
static struct topic_entry *topic_get(struct sub_broker *b, struct stripe *s, uint64_t h,
                                     const char *topic, size_t len, enum sub_err *err)
{
  if(s->nbuckets) {
    for(struct topic_entry *e = s->buckets[(h >> 6) & (s->nbuckets - 1)]; e; e = e->next)
      if(e->len == len && memcmp(e->name, topic, len) == 0)
        return e;
  }
  if(atomic_load(&b->topics) >= b->cfg.max_topics) {
    *err = SUB_ETOOMANYTOPICS;
    return NULL;
  }
  *err = SUB_ENOMEM;
  if(s->count >= s->nbuckets) { /* keep the load factor at or below 1 */
    size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
    struct topic_entry **bk = calloc(n, sizeof(*bk));
    if(!bk)
      return NULL;
    for(size_t i = 0; i < s->nbuckets; i++) {
      struct topic_entry *e = s->buckets[i];
      while(e) {
        struct topic_entry *next = e->next;
        size_t j = (sub_topic_hash(e->name, e->len) >> 6) & (n - 1);
        e->next = bk[j];
        bk[j] = e;
        e = next;
      }
    }
    free(s->buckets);
    s->buckets = bk;
    s->nbuckets = n;
  }
  struct topic_entry *e = malloc(sizeof(*e) + len);
  if(!e)
    return NULL;
  e->seq = 0;
  atomic_init(&e->held, 0);
  e->len = len;
  memcpy(e->name, topic, len);
  size_t j = (h >> 6) & (s->nbuckets - 1);
  e->next = s->buckets[j];
  s->buckets[j] = e;
  s->count++;
  atomic_fetch_add(&b->topics, 1);
  return e;
}

/* True when one more event of `len` frame bytes would pass a sink's caps. */
static bool sink_over(const struct sub_broker *b, const struct sink *k, size_t len)
{
  return atomic_load_explicit(&k->depth, memory_order_relaxed) >= b->cfg.sink_max_events ||
         atomic_load_explicit(&k->bytes, memory_order_relaxed) + len > b->cfg.sink_max_bytes;
}

void sub_broker_interest(struct sub_broker *b, int sink, const char *pattern, size_t len,
                         int delta)
{
  if(sink < 0 || sink >= b->cfg.nsinks || !b->cfg.skip_idle_sinks)
    return;
  struct sink *k = &b->sinks[sink];
  if(memchr(pattern, '*', len) || memchr(pattern, '>', len))
    atomic_fetch_add(&k->wild, delta);
  else
    atomic_fetch_add(&k->slots[sub_topic_hash(pattern, len) & (INTEREST_SLOTS - 1)],
                     (unsigned)delta);
}

/* Which sinks an event on the topic of hash h goes to (want[i]); returns
 * how many. */
static int sinks_wanting(struct sub_broker *b, uint64_t h, bool *want)
{
  int n = 0;
  for(int i = 0; i < b->cfg.nsinks; i++) {
    const struct sink *k = &b->sinks[i];
    want[i] = !b->cfg.skip_idle_sinks || atomic_load(&k->wild) > 0 ||
              atomic_load(&k->slots[h & (INTEREST_SLOTS - 1)]) > 0;
    n += want[i];
  }
  return n;
}

/* Cheap early refusal, before a topic entry or an event is made. */
static bool sinks_full(struct sub_broker *b, size_t len, const bool *want)
{
  for(int i = 0; i < b->cfg.nsinks; i++)
    if(want[i] && sink_over(b, &b->sinks[i], len))
      return true;
  return false;
}

/* Locks every sink queue (in index order) and makes room for one more event
 * in each, so that the pushes that follow cannot fail half-way. The locks
 * stay held until the push: in between, a concurrent take would swap the
 * room away (or a concurrent publish use it up). On error no sink is left
 * locked. Called with the topic's stripe locked. */
static enum sub_err sinks_lock_reserve(struct sub_broker *b, size_t len, const bool *want)
{
  enum sub_err err = SUB_OK;
  int i;
  for(i = 0; i < b->cfg.nsinks; i++) {
    struct sink *k = &b->sinks[i];
    if(!want[i])
      continue;
    pthread_mutex_lock(&k->lock);
    if(sink_over(b, k, len)) {
      err = SUB_EOVERLOADED;
      break;
    }
    if(k->q.n == k->q.cap) {
      size_t cap = k->q.cap ? k->q.cap * 2 : 256;
      struct sub_event **ev = realloc(k->q.ev, cap * sizeof(*ev));
      if(!ev) {
        err = SUB_ENOMEM;
        break;
      }
      k->q.ev = ev;
      k->q.cap = cap;
    }
  }
  if(err)
    for(; i >= 0; i--)
      if(want[i])
        pthread_mutex_unlock(&b->sinks[i].lock);
  return err;
}

void sub_broker_set_hold(struct sub_broker *b, sub_hold_fn hold, void *arg)
{
  b->hold = hold;
  b->hold_arg = arg;
}

/* Appends ev to every sink queue in want. With `reserved` those sinks are
 * locked and have room already (sinks_lock_reserve); otherwise they are
 * locked here and grown as needed, past the caps. Consumes the reference.
 * Returns SUB_ENOMEM only when !reserved and a queue could not grow (the
 * sinks after it miss the event). */
static enum sub_err sinks_push(struct sub_broker *b, struct sub_event *ev, bool reserved,
                               const bool *want, int *woken)
{
  enum sub_err err = SUB_OK;
  for(int i = 0; i < b->cfg.nsinks; i++) {
    struct sink *k = &b->sinks[i];
    woken[i] = 0;
    if(!want[i])
      continue;
    if(!reserved) {
      pthread_mutex_lock(&k->lock);
      if(k->q.n == k->q.cap) {
        size_t cap = k->q.cap ? k->q.cap * 2 : 256;
        struct sub_event **evs = realloc(k->q.ev, cap * sizeof(*evs));
        if(!evs) { /* the sinks before this one got it: the rest miss it */
          pthread_mutex_unlock(&k->lock);
          err = SUB_ENOMEM;
          break;
        }
        k->q.ev = evs;
        k->q.cap = cap;
      }
    }
    woken[i] = k->q.n == 0;
    k->q.ev[k->q.n++] = sub_event_ref(ev);
    atomic_store_explicit(&k->depth, k->q.n, memory_order_relaxed);
    atomic_fetch_add_explicit(&k->bytes, ev->frame->len, memory_order_relaxed);
    pthread_mutex_unlock(&k->lock); /* locked by sinks_lock_reserve or above */
  }
  sub_event_unref(ev);
  return err;
}

static void wake_sinks(struct sub_broker *b, const int *woken)
{
  if(b->cfg.wake)
    for(int i = 0; i < b->cfg.nsinks; i++)
      if(woken[i])
        b->cfg.wake(b->cfg.wake_arg, i);
}

enum sub_err sub_broker_publish_held(struct sub_broker *b, const char *topic, size_t topic_len,
                                     const char *data, size_t data_len, bool hold, void *ctx,
                                     struct sub_published *out, bool *held)
{
  *held = false;
  if(!sub_topic_valid(topic, topic_len, NULL))
    return SUB_EINVAL;
  uint64_t h = sub_topic_hash(topic, topic_len);
  struct stripe *s = &b->stripes[h % STRIPES];
  enum sub_err err = SUB_OK;
  int woken[b->cfg.nsinks];
  bool want[b->cfg.nsinks];
  struct sub_event *ev = NULL;
  sinks_wanting(b, h, want);

  /* Refuse early, before a topic entry or an event is made, on an upper
   * bound of the frame's size (the envelope around data and topic is under
   * 160 bytes); checked exactly again under the sink locks. */
  if(sinks_full(b, data_len + topic_len + 160, want))
    return SUB_EOVERLOADED;
  pthread_mutex_lock(&s->lock);
  struct topic_entry *e = topic_get(b, s, h, topic, topic_len, &err);
  if(!e)
    goto out;
  err = SUB_OK;
  /* Again under the topic's lock, so that the sinks an event goes to are
   * decided in seq order: a worker that starts getting a topic's events
   * gets every later one (no seq gap after a subscription). */
  int wanted = sinks_wanting(b, h, want);
  uint64_t ms;
  if(sub_id_new(out->id, &ms)) {
    err = SUB_ENOMEM;
    goto out;
  }
  if(!wanted && !(b->hold && (hold || atomic_load(&e->held) > 0))) {
    e->seq++; /* nobody to hand it to: accepted, numbered, no frame made */
    out->seq = e->seq;
    out->ms = ms;
    memset(woken, 0, sizeof(woken));
    goto out;
  }
  ev = sub_event_new(topic, topic_len, e->seq + 1, out->id, ms, data, data_len);
  if(!ev) {
    err = SUB_ENOMEM;
    goto out;
  }
  if(b->hold && (hold || atomic_load(&e->held) > 0)) {
    /* out is complete before the callback: the holder may finish the
     * publish (and its caller read out) before this function returns. */
    out->seq = e->seq + 1;
    out->ms = ms;
    ev->held = e;
    atomic_fetch_add(&e->held, 1);
    if(b->hold(b->hold_arg, ev, ctx)) {
      atomic_fetch_sub(&e->held, 1);
      ev->held = NULL;
      err = SUB_EOVERLOADED;
      goto out;
    }
    ev = NULL; /* owned by the hold callback now */
    e->seq++;
    *held = true;
    goto out;
  }
  err = sinks_lock_reserve(b, ev->frame->len, want);
  if(err)
    goto out;
  e->seq++;
  out->seq = e->seq;
  out->ms = ms;
  sinks_push(b, ev, true, want, woken);
  ev = NULL; /* owned by the sink queues now */
out:
  pthread_mutex_unlock(&s->lock);
  sub_event_unref(ev);
  if(err == SUB_OK && !*held)
    wake_sinks(b, woken);
  return err;
}

enum sub_err sub_broker_publish(struct sub_broker *b, const char *topic, size_t topic_len,
                                const char *data, size_t data_len, struct sub_published *out)
{
  bool held;
  return sub_broker_publish_held(b, topic, topic_len, data, data_len, false, NULL, out, &held);
}

void sub_broker_release(struct sub_broker *b, struct sub_event *ev, bool deliver)
{
  struct topic_entry *e = ev->held;
  ev->held = NULL;
  if(deliver) {
    int woken[b->cfg.nsinks];
    bool want[b->cfg.nsinks];
    sinks_wanting(b, sub_topic_hash(ev->topic, ev->topic_len), want);
    /* Queued before the count drops: a publish that then finds no held
     * event on the topic queues behind this one. */
    sinks_push(b, sub_event_ref(ev), false, want, woken);
    wake_sinks(b, woken);
  }
  atomic_fetch_sub(&e->held, 1);
  sub_event_unref(ev);
}

int sub_broker_seed(struct sub_broker *b, const char *topic, size_t topic_len, uint64_t seq)
{
  if(!sub_topic_valid(topic, topic_len, NULL))
    return -1;
  uint64_t h = sub_topic_hash(topic, topic_len);
  struct stripe *s = &b->stripes[h % STRIPES];
  enum sub_err err;
  pthread_mutex_lock(&s->lock);
  struct topic_entry *e = topic_get(b, s, h, topic, topic_len, &err);
  if(e && e->seq < seq)
    e->seq = seq;
  pthread_mutex_unlock(&s->lock);
  return e ? 0 : -1;
}

size_t sub_broker_take(struct sub_broker *b, int sink, struct sub_batch *batch)
{
  struct sink *k = &b->sinks[sink];
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

size_t sub_broker_topics(struct sub_broker *b)
{
  return atomic_load(&b->topics);
}
