#ifndef HERALD_BROKER_H
#define HERALD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The broker turns one publish into one event (id, per-topic seq, frame
 * serialized once) and appends a reference to it to every sink's queue.
 * A sink is one client worker: it takes its queued events in a batch and
 * matches them against its own index. Publishing is thread-safe; events of
 * one topic enter every sink in seq order. */

enum sub_err {
  SUB_OK = 0,
  SUB_ENOMEM,          /* out of memory */
  SUB_EOVERLOADED,     /* a sink's queue is over its cap: workers fall behind */
  SUB_ETOOMANYTOPICS,  /* the topic table is full */
  SUB_EINVAL,          /* not a valid concrete topic */
};

/* Returns a short, stable, lower-case name for the error. */
const char *sub_err_name(enum sub_err e);

struct sub_broker;

struct sub_broker_cfg {
  int nsinks;            /* client workers, >= 1 */
  size_t sink_max_events; /* queued events per sink before publishes fail */
  size_t sink_max_bytes;  /* and queued frame bytes per sink */
  size_t max_topics;      /* distinct topics with a seq counter */
  /* Called after events were appended to an empty sink queue, from the
   * publishing thread; must be thread-safe (lws_cancel_service is). */
  void (*wake)(void *arg, int sink);
  void *wake_arg;
  /* With true, a sink gets only the events its consumer may have a
   * subscriber for (sub_broker_interest): a worker with no subscriber of
   * the topic is not woken, and a topic nobody listens to costs no frame. */
  bool skip_idle_sinks;
};

/* Takes a held event (see sub_broker_publish_held): called under the
 * topic's lock, so the held events of one topic arrive in seq order. It
 * owns the reference passed and must later hand the event to
 * sub_broker_release. Returns 0, or -1 to refuse it (the publish then fails
 * with SUB_EOVERLOADED and gives its seq back). */
typedef int (*sub_hold_fn)(void *arg, struct sub_event *ev, void *ctx);

struct sub_published {
  char id[SUB_ID_LEN + 1];
  uint64_t seq;
  uint64_t ms;
};

/* Returns a new broker, or NULL when out of memory or cfg is invalid. */
struct sub_broker *sub_broker_new(const struct sub_broker_cfg *cfg);
/* Frees the broker and every event still queued. No publish may run. */
void sub_broker_free(struct sub_broker *b);

/* Sets the wake callback (it may not be known when the broker is made). */
void sub_broker_set_wake(struct sub_broker *b, void (*wake)(void *arg, int sink), void *arg);

/* Counts what the consumer of `sink` subscribes to (skip_idle_sinks):
 * delta +1 when it adds the pattern, -1 when it removes it. Events on
 * topics no subscription of a sink can match are not queued for it: a
 * worker with no subscriber of a topic is not woken for it. The consumer
 * counts a subscription before it acknowledges it, so a publish that
 * follows the acknowledgement reaches it. Thread-safe; no-op without
 * skip_idle_sinks. */
void sub_broker_interest(struct sub_broker *b, int sink, const char *pattern, size_t len,
                         int delta);

/* Publishes `data` (compact JSON text) on the concrete topic. On SUB_OK
 * fills *out; on error nothing was queued and no seq was used. */
enum sub_err sub_broker_publish(struct sub_broker *b, const char *topic, size_t topic_len,
                                const char *data, size_t data_len, struct sub_published *out);

/* Sets the hold callback (see sub_broker_publish_held). */
void sub_broker_set_hold(struct sub_broker *b, sub_hold_fn hold, void *arg);

/* Like sub_broker_publish, but when `hold` is true the event is not queued
 * to the sinks: with its id and seq it goes to the hold callback with `ctx`
 * (*held is then true), to be released once it is safe to deliver (made
 * durable). While a topic has held events, every publish on it is held too
 * (with its ctx, *held true), so events of a topic still enter the sinks in
 * seq order. */
enum sub_err sub_broker_publish_held(struct sub_broker *b, const char *topic, size_t topic_len,
                                     const char *data, size_t data_len, bool hold, void *ctx,
                                     struct sub_published *out, bool *held);

/* Ends the hold of an event taken by the hold callback (consuming its
 * reference): queues it to every sink when `deliver` (past the caps: it has
 * been accepted already), else drops it (its seq stays unused: a gap).
 * Held events of a topic must be released in the order they were held. */
void sub_broker_release(struct sub_broker *b, struct sub_event *ev, bool deliver);

/* Raises a topic's seq counter to at least `seq` (restored from the durable
 * store at start-up, before any publish). Returns 0, or -1 when out of
 * memory or the table is full. */
int sub_broker_seed(struct sub_broker *b, const char *topic, size_t topic_len, uint64_t seq);

/* A sink's batch: taken from the queue in one swap, processed without locks. */
struct sub_batch {
  struct sub_event **ev;
  size_t n, cap;
};

/* Moves every event queued for `sink` into `batch` (which must be empty;
 * its storage is swapped with the queue's). The caller owns one reference to
 * each event in the batch and sets n to 0 once done. Returns batch->n. */
size_t sub_broker_take(struct sub_broker *b, int sink, struct sub_batch *batch);
void sub_batch_free(struct sub_batch *batch);

/* Number of distinct topics seen, for metrics and tests. */
size_t sub_broker_topics(struct sub_broker *b);

#endif
