#ifndef HERALD_ENGINE_H
#define HERALD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The engine: what turns an accepted publish into an event with its id
 * and per-topic seq and hands it to the local fan-out, holding it first
 * when it must be made durable. The embedded engine (broker.c) keeps the
 * seq counters in process; a distributed engine (NATS JetStream, a later
 * issue) implements the same table. docs/internals/engine.md says what an
 * implementation must guarantee. */

enum sub_err {
  SUB_OK = 0,
  SUB_ENOMEM,         /* out of memory */
  SUB_EOVERLOADED,    /* a sink's queue is over its cap: workers fall behind */
  SUB_ETOOMANYTOPICS, /* the topic table is full */
  SUB_EINVAL,         /* not a valid concrete topic */
  SUB_ESTOREFULL,     /* the durable store is full */
  SUB_ESTORE,         /* the durable store failed */
};

/* Returns a short, stable, lower-case name for the error. */
const char *sub_err_name(enum sub_err e);

/* What a publish got: its id, seq and time, and its place in the history
 * log (offset 0, epoch NULL: not logged). */
struct sub_published {
  char id[SUB_ID_LEN + 1];
  uint64_t seq;
  uint64_t ms;
  uint64_t offset;
  const char *epoch; /* lives as long as the engine */
};

/* One publish as the engine takes it. */
struct sub_publish {
  const char *topic;
  size_t topic_len;
  const char *data; /* the data's JSON text */
  size_t data_len;
  bool hold; /* hold the event (to make it durable) before delivering it */
  void *ctx; /* handed to the hold callback with the event */
  bool no_history;     /* keep it out of the history log (a topic rule) */
  uint64_t max_age_ms; /* the topic's retention when shorter than the log's (0: the log's) */
};

/* What a publisher hands, as sub_publish.ctx, with a publish it asks to
 * hold, and how the holder (the one who makes the event durable: the
 * webhooks store in the embedded engine) reports back. */
struct sub_hold_req {
  const char *idem_key; /* record this Idempotency-Key with the event, or NULL */
  unsigned char idem_hash[32];
  /* Called once, from the holder's thread, when the hold ends: SUB_OK when
   * the event is durable (then delivered), SUB_ESTOREFULL or SUB_ESTORE when
   * it could not be stored (then dropped). */
  void (*done)(struct sub_hold_req *r, enum sub_err result);
};

/* Takes a held event: called under the topic's lock, so the held events of
 * one topic arrive in seq order. It owns the reference passed and must later
 * hand the event to sub_engine_release. Returns 0, or -1 to refuse it (the
 * publish then fails with SUB_EOVERLOADED and gives its seq back). */
typedef int (*sub_hold_fn)(void *arg, struct sub_event *ev, void *ctx);

struct sub_engine;
struct sub_fanout;
struct sub_batch;
struct sub_log;

struct sub_engine_ops {
  const char *name;
  /* Publishes p on its concrete topic: gives it the topic's next seq, and
   * queues it to the fan-out, or, when p->hold (or an earlier event of the
   * topic is still held), passes it to the hold callback with p->ctx and sets
   * *held. On SUB_OK fills *out (before the hold callback runs); on error
   * nothing was queued and no seq was used. Thread-safe. */
  enum sub_err (*publish)(struct sub_engine *e, const struct sub_publish *p,
                          struct sub_published *out, bool *held);
  /* Ends the hold of an event (consuming its reference): delivers it when
   * `deliver`, else drops it (its seq stays unused). Held events of a topic
   * are released in the order they were held. */
  void (*release)(struct sub_engine *e, struct sub_event *ev, bool deliver);
  /* Sets the hold callback (NULL: publishes are never held). */
  void (*set_hold)(struct sub_engine *e, sub_hold_fn hold, void *arg);
  /* Raises a topic's seq counter to at least seq (from a durable store at
   * start, before any publish). Returns 0, or -1. */
  int (*seed)(struct sub_engine *e, const char *topic, size_t topic_len, uint64_t seq);
  /* The local fan-out the engine delivers into (the client workers' queues). */
  struct sub_fanout *(*fanout)(struct sub_engine *e);
  /* Distinct topics with a seq counter. */
  size_t (*topics)(struct sub_engine *e);
  /* The history log (eventlog.h) to read from, or NULL when history is off
   * (NULL op: never; snapshot and latest are then never called). */
  struct sub_log *(*history)(struct sub_engine *e);
  /* The resume handoff of a consumer (a client worker, the sink's only
   * taker) whose new subscription's interest is already counted: under the
   * lock every push takes, reads the high-water mark and moves what was
   * queued to the sink so far into batch (empty). Every event above the
   * mark reaches the sink later; the ones at or below it are in batch, or
   * were taken before, or were never the sink's. Returns the mark. */
  uint64_t (*snapshot)(struct sub_engine *e, int sink, struct sub_batch *batch);
  /* The last event of a concrete topic still in the history log, with a
   * reference (NULL: none). */
  struct sub_event *(*latest)(struct sub_engine *e, const char *topic, size_t len);
};

/* An engine is this table first in its own struct. */
struct sub_engine {
  const struct sub_engine_ops *ops;
};

static inline enum sub_err sub_engine_publish(struct sub_engine *e, const struct sub_publish *p,
                                              struct sub_published *out, bool *held)
{
  return e->ops->publish(e, p, out, held);
}

static inline void sub_engine_release(struct sub_engine *e, struct sub_event *ev, bool deliver)
{
  e->ops->release(e, ev, deliver);
}

static inline void sub_engine_set_hold(struct sub_engine *e, sub_hold_fn hold, void *arg)
{
  e->ops->set_hold(e, hold, arg);
}

static inline int sub_engine_seed(struct sub_engine *e, const char *topic, size_t len,
                                  uint64_t seq)
{
  return e->ops->seed(e, topic, len, seq);
}

static inline struct sub_fanout *sub_engine_fanout(struct sub_engine *e)
{
  return e->ops->fanout(e);
}

static inline struct sub_log *sub_engine_history(struct sub_engine *e)
{
  return e->ops->history ? e->ops->history(e) : NULL; /* an engine without history */
}

static inline uint64_t sub_engine_snapshot(struct sub_engine *e, int sink, struct sub_batch *batch)
{
  return e->ops->snapshot(e, sink, batch);
}

static inline struct sub_event *sub_engine_latest(struct sub_engine *e, const char *topic,
                                                  size_t len)
{
  return e->ops->latest(e, topic, len);
}

#endif
