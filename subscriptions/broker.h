#ifndef HERALD_BROKER_H
#define HERALD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"
#include "fanout.h"

/* The embedded engine: per-topic seq counters in process, and the local
 * fan-out it delivers into. It turns one publish into one event (id,
 * per-topic seq) and appends a reference to it to every interested sink's
 * queue. Publishing is thread-safe; events of one topic enter every sink in
 * seq order. sub_broker_engine() gives it as a struct sub_engine. */

struct sub_broker;

struct sub_broker_cfg {
  int nsinks;             /* client workers, 1..SUB_SINKS_MAX */
  size_t sink_max_events; /* queued events per sink before publishes fail */
  size_t sink_max_bytes;  /* and queued event bytes per sink */
  size_t max_topics;      /* distinct topics with a seq counter */
  /* Called after events were appended to an empty sink queue, from the
   * publishing thread; must be thread-safe (lws_cancel_service is). */
  void (*wake)(void *arg, int sink);
  void *wake_arg;
  /* With true, a sink gets only the events its consumer may have a
   * subscriber for (sub_fanout_interest): a worker with no subscriber of
   * the topic is not woken, and a topic nobody listens to costs no event. */
  bool skip_idle_sinks;
};

/* Returns a new broker, or NULL when out of memory or cfg is invalid. */
struct sub_broker *sub_broker_new(const struct sub_broker_cfg *cfg);
/* Frees the broker and every event still queued. No publish may run. */
void sub_broker_free(struct sub_broker *b);

/* The broker as an engine (lives as long as the broker). */
struct sub_engine *sub_broker_engine(struct sub_broker *b);
/* Its fan-out (the sinks' queues). */
struct sub_fanout *sub_broker_fanout(struct sub_broker *b);

/* Publishes `data` (JSON text) on the concrete topic. On SUB_OK fills *out;
 * on error nothing was queued and no seq was used. */
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
enum sub_err sub_broker_publish_held(struct sub_broker *b, const struct sub_publish *p,
                                     struct sub_published *out, bool *held);

/* History (log.h): the log's deliver callback (arg: the broker), to set in
 * the log's config, and the log, set once before any publish. Events then
 * get offsets and reach the sinks in offset order, through the log. */
struct sub_log;
void sub_broker_log_deliver(void *arg, struct sub_event *ev);
void sub_broker_set_log(struct sub_broker *b, struct sub_log *log);
/* Puts a stored event back into the log at start-up (before any publish),
 * raising its topic's seq. Returns 0, 1 when the event is in the log but
 * the topic table is full (broker.max_topics: its seq is not kept), or -1. */
int sub_broker_restore(struct sub_broker *b, struct sub_event *ev);

/* Ends the hold of an event taken by the hold callback (consuming its
 * reference): queues it to every sink when `deliver` (past the caps: it has
 * been accepted already), else drops it (its seq stays unused: a gap).
 * Held events of a topic must be released in the order they were held. */
void sub_broker_release(struct sub_broker *b, struct sub_event *ev, bool deliver);

/* Raises a topic's seq counter to at least `seq` (restored from the durable
 * store at start-up, before any publish). Returns 0, 1 when the table is
 * full (broker.max_topics), or -1 when out of memory or not a topic. */
int sub_broker_seed(struct sub_broker *b, const char *topic, size_t topic_len, uint64_t seq);

/* Number of distinct topics seen, for metrics and tests. */
size_t sub_broker_topics(struct sub_broker *b);

#endif
