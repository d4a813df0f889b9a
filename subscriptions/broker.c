#include "broker.h"

#include "eventlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64 /* topic-table locks: publishes on different topics rarely meet */

struct topic_entry {
  struct topic_entry *next;
  uint64_t seq;
  uint64_t last_offset; /* its newest event in the history log (0: none) */
  atomic_size_t held; /* events held, not yet released: later publishes wait behind them */
  size_t len;
  char name[];
};

struct stripe {
  pthread_mutex_t lock;
  struct topic_entry **buckets;
  size_t nbuckets, count;
};

struct sub_broker {
  struct sub_engine engine; /* first: the engine table's functions cast back */
  struct sub_broker_cfg cfg;
  struct stripe stripes[STRIPES];
  atomic_size_t topics;
  struct sub_fanout *fanout;
  sub_hold_fn hold;
  void *hold_arg;
  struct sub_log *log; /* NULL: no history */
};

static const struct sub_engine_ops broker_engine_ops;

const char *sub_err_name(enum sub_err e)
{
  switch(e) {
  case SUB_OK: return "ok";
  case SUB_ENOMEM: return "out_of_memory";
  case SUB_EOVERLOADED: return "overloaded";
  case SUB_ETOOMANYTOPICS: return "too_many_topics";
  case SUB_EINVAL: return "invalid_topic";
  case SUB_ESTOREFULL: return "store_full";
  case SUB_ESTORE: return "store_failed";
  }
  return "unknown";
}

struct sub_broker *sub_broker_new(const struct sub_broker_cfg *cfg)
{
  if(!cfg || !cfg->max_topics)
    return NULL;
  struct sub_fanout_cfg fc = {.nsinks = cfg->nsinks,
                              .sink_max_events = cfg->sink_max_events,
                              .sink_max_bytes = cfg->sink_max_bytes,
                              .skip_idle_sinks = cfg->skip_idle_sinks};
  struct sub_fanout *f = sub_fanout_new(&fc);
  if(!f)
    return NULL;
  struct sub_broker *b = calloc(1, sizeof(*b));
  if(!b) {
    sub_fanout_free(f);
    return NULL;
  }
  b->engine.ops = &broker_engine_ops;
  b->cfg = *cfg;
  b->fanout = f;
  sub_fanout_set_wake(f, cfg->wake, cfg->wake_arg);
  for(int i = 0; i < STRIPES; i++)
    pthread_mutex_init(&b->stripes[i].lock, NULL);
  return b;
}

struct sub_engine *sub_broker_engine(struct sub_broker *b)
{
  return &b->engine;
}

struct sub_fanout *sub_broker_fanout(struct sub_broker *b)
{
  return b->fanout;
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
  sub_fanout_free(b->fanout);
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
  e->last_offset = 0;
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

void sub_broker_set_hold(struct sub_broker *b, sub_hold_fn hold, void *arg)
{
  b->hold = hold;
  b->hold_arg = arg;
}

/* Publishes an event the history log takes: under the topic's lock (seq
 * order) and the log's (offset order, and the order pushes reach the
 * sinks in, which a resume's snapshot is taken under). */
static enum sub_err publish_logged(struct sub_broker *b, struct topic_entry *e, uint64_t h,
                                   struct sub_event *ev, bool holding, void *ctx,
                                   struct sub_published *out, bool *held)
{
  struct sub_sinkset want, woken = {{0}};
  enum sub_err err;
  sub_log_lock(b->log);
  if(holding) {
    if((err = sub_log_append_locked(b->log, ev, SUB_LOG_HELD)))
      goto out;
    out->seq = ev->seq;
    out->offset = ev->offset;
    out->epoch = ev->epoch;
    ev->held = e;
    atomic_fetch_add(&e->held, 1);
    if(b->hold(b->hold_arg, sub_event_ref(ev), ctx)) {
      /* refused: the offset stays a hole, dropped from the log */
      sub_event_unref(ev); /* the reference the callback did not take */
      atomic_fetch_sub(&e->held, 1);
      ev->held = NULL;
      sub_log_settle_locked(b->log, ev, false);
      err = SUB_EOVERLOADED;
      goto out;
    }
    e->seq++;
    e->last_offset = ev->offset;
    *held = true;
    goto out;
  }
  if(sub_log_direct_locked(b->log)) {
    /* nothing waits before it: onto the sinks now, refused when full */
    sub_fanout_wanting(b->fanout, h, &want);
    if((err = sub_fanout_reserve(b->fanout, ev->size, &want)))
      goto out;
    if((err = sub_log_append_locked(b->log, ev, SUB_LOG_PUSHED))) {
      sub_fanout_unreserve(b->fanout, &want);
      goto out;
    }
    sub_fanout_push(b->fanout, sub_event_ref(ev), true, &want, &woken);
  } else if((err = sub_log_append_locked(b->log, ev, SUB_LOG_READY)))
    goto out; /* pushed in its turn, by the log (sub_broker_log_deliver) */
  e->seq++;
  e->last_offset = ev->offset;
  out->seq = ev->seq;
  out->offset = ev->offset;
  out->epoch = ev->epoch;
out:
  sub_log_unlock(b->log);
  if(!err)
    sub_fanout_wake(b->fanout, &woken);
  return err;
}

void sub_broker_log_deliver(void *arg, struct sub_event *ev)
{
  struct sub_broker *b = arg;
  struct sub_sinkset want, woken;
  sub_fanout_wanting(b->fanout, sub_topic_hash(ev->topic, ev->topic_len), &want);
  sub_fanout_push(b->fanout, sub_event_ref(ev), false, &want, &woken);
  sub_fanout_wake(b->fanout, &woken);
}

void sub_broker_set_log(struct sub_broker *b, struct sub_log *log)
{
  b->log = log;
}

enum sub_err sub_broker_publish_held(struct sub_broker *b, const struct sub_publish *p,
                                     struct sub_published *out, bool *held)
{
  *held = false;
  out->offset = 0;
  out->epoch = NULL;
  const char *topic = p->topic;
  size_t topic_len = p->topic_len;
  if(!sub_topic_valid(topic, topic_len, NULL))
    return SUB_EINVAL;
  uint64_t h = sub_topic_hash(topic, topic_len);
  struct stripe *s = &b->stripes[h % STRIPES];
  enum sub_err err = SUB_OK;
  struct sub_sinkset want, woken = {{0}};
  struct sub_event *ev = NULL;
  size_t size = sub_event_size(topic_len, p->data_len);
  bool logged = b->log && !p->no_history;
  sub_fanout_wanting(b->fanout, h, &want);

  /* Refuse early, before a topic entry or an event is made; checked again
   * under the sink locks. */
  if(sub_fanout_full(b->fanout, size, &want))
    return SUB_EOVERLOADED;
  pthread_mutex_lock(&s->lock);
  struct topic_entry *e = topic_get(b, s, h, topic, topic_len, &err);
  if(!e)
    goto out;
  err = SUB_OK;
  /* Again under the topic's lock, so that the sinks an event goes to are
   * decided in seq order: a worker that starts getting a topic's events
   * gets every later one (no seq gap after a subscription). */
  int wanted = sub_fanout_wanting(b->fanout, h, &want);
  uint64_t ms;
  if(sub_id_new(out->id, &ms)) {
    err = SUB_ENOMEM;
    goto out;
  }
  out->ms = ms;
  bool holding = b->hold && (p->hold || atomic_load(&e->held) > 0);
  if(!wanted && !holding && !logged) {
    e->seq++; /* nobody to hand it to: accepted, numbered, no event made */
    out->seq = e->seq;
    goto out;
  }
  ev = sub_event_new(topic, topic_len, e->seq + 1, out->id, ms, p->data, p->data_len);
  if(!ev) {
    err = SUB_ENOMEM;
    goto out;
  }
  ev->max_age_ms = p->max_age_ms;
  if(logged) {
    err = publish_logged(b, e, h, ev, holding, p->ctx, out, held);
    goto out;
  }
  if(holding) {
    /* out is complete before the callback: the holder may finish the
     * publish (and its caller read out) before this function returns. */
    out->seq = e->seq + 1;
    ev->held = e;
    atomic_fetch_add(&e->held, 1);
    if(b->hold(b->hold_arg, ev, p->ctx)) {
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
  err = sub_fanout_reserve(b->fanout, ev->size, &want);
  if(err)
    goto out;
  e->seq++;
  out->seq = e->seq;
  sub_fanout_push(b->fanout, ev, true, &want, &woken);
  ev = NULL; /* owned by the sink queues now */
out:
  pthread_mutex_unlock(&s->lock);
  sub_event_unref(ev);
  if(err == SUB_OK && !*held)
    sub_fanout_wake(b->fanout, &woken);
  return err;
}

enum sub_err sub_broker_publish(struct sub_broker *b, const char *topic, size_t topic_len,
                                const char *data, size_t data_len, struct sub_published *out)
{
  bool held;
  struct sub_publish p = {.topic = topic, .topic_len = topic_len, .data = data, .data_len = data_len};
  return sub_broker_publish_held(b, &p, out, &held);
}

void sub_broker_release(struct sub_broker *b, struct sub_event *ev, bool deliver)
{
  struct topic_entry *e = ev->held;
  ev->held = NULL;
  if(ev->offset) { /* in the log: pushed in its offset's turn */
    sub_log_lock(b->log);
    sub_log_settle_locked(b->log, ev, deliver);
    sub_log_unlock(b->log);
  } else if(deliver) {
    struct sub_sinkset want, woken;
    sub_fanout_wanting(b->fanout, sub_topic_hash(ev->topic, ev->topic_len), &want);
    /* Queued before the count drops: a publish that then finds no held
     * event on the topic queues behind this one. */
    sub_fanout_push(b->fanout, sub_event_ref(ev), false, &want, &woken);
    sub_fanout_wake(b->fanout, &woken);
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
  return e ? 0 : err == SUB_ETOOMANYTOPICS ? 1 : -1;
}

size_t sub_broker_topics(struct sub_broker *b)
{
  return atomic_load(&b->topics);
}

/* ---- the engine table ---- */

static struct sub_broker *of(struct sub_engine *e)
{
  return (struct sub_broker *)e; /* the table is the broker's first member */
}

static enum sub_err engine_publish(struct sub_engine *e, const struct sub_publish *p,
                                   struct sub_published *out, bool *held)
{
  return sub_broker_publish_held(of(e), p, out, held);
}

static void engine_release(struct sub_engine *e, struct sub_event *ev, bool deliver)
{
  sub_broker_release(of(e), ev, deliver);
}

static void engine_set_hold(struct sub_engine *e, sub_hold_fn hold, void *arg)
{
  sub_broker_set_hold(of(e), hold, arg);
}

static int engine_seed(struct sub_engine *e, const char *topic, size_t len, uint64_t seq)
{
  return sub_broker_seed(of(e), topic, len, seq);
}

static struct sub_fanout *engine_fanout(struct sub_engine *e)
{
  return of(e)->fanout;
}

static size_t engine_topics(struct sub_engine *e)
{
  return sub_broker_topics(of(e));
}

static struct sub_log *engine_history(struct sub_engine *e)
{
  return of(e)->log;
}

static uint64_t engine_snapshot(struct sub_engine *e, int sink, struct sub_batch *batch)
{
  struct sub_broker *b = of(e);
  if(!b->log) {
    sub_fanout_take(b->fanout, sink, batch);
    return 0;
  }
  sub_log_lock(b->log);
  uint64_t hwm = sub_log_pushed_locked(b->log);
  sub_fanout_take(b->fanout, sink, batch);
  sub_log_unlock(b->log);
  return hwm;
}

static struct sub_event *engine_latest(struct sub_engine *e, const char *topic, size_t len)
{
  struct sub_broker *b = of(e);
  if(!b->log || !sub_topic_valid(topic, len, NULL))
    return NULL;
  uint64_t h = sub_topic_hash(topic, len);
  struct stripe *s = &b->stripes[h % STRIPES];
  uint64_t off = 0;
  pthread_mutex_lock(&s->lock);
  if(s->nbuckets)
    for(struct topic_entry *t = s->buckets[(h >> 6) & (s->nbuckets - 1)]; t; t = t->next)
      if(t->len == len && memcmp(t->name, topic, len) == 0) {
        off = t->last_offset;
        break;
      }
  pthread_mutex_unlock(&s->lock);
  if(!off)
    return NULL;
  struct sub_event *ev = sub_log_get(b->log, off);
  return ev ? ev : sub_log_latest(b->log, topic, len, off - 1);
}

int sub_broker_restore(struct sub_broker *b, struct sub_event *ev)
{
  if(!b->log || !sub_topic_valid(ev->topic, ev->topic_len, NULL) || sub_log_restore(b->log, ev))
    return -1;
  uint64_t h = sub_topic_hash(ev->topic, ev->topic_len);
  struct stripe *s = &b->stripes[h % STRIPES];
  enum sub_err err;
  pthread_mutex_lock(&s->lock);
  struct topic_entry *e = topic_get(b, s, h, ev->topic, ev->topic_len, &err);
  if(e) {
    if(e->seq < ev->seq)
      e->seq = ev->seq;
    e->last_offset = ev->offset;
  }
  pthread_mutex_unlock(&s->lock);
  return e ? 0 : err == SUB_ETOOMANYTOPICS ? 1 : -1;
}

static const struct sub_engine_ops broker_engine_ops = {
    .name = "embedded",
    .publish = engine_publish,
    .release = engine_release,
    .set_hold = engine_set_hold,
    .seed = engine_seed,
    .fanout = engine_fanout,
    .topics = engine_topics,
    .history = engine_history,
    .snapshot = engine_snapshot,
    .latest = engine_latest,
};
