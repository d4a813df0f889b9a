#ifndef HERALD_FANOUT_H
#define HERALD_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"

/* The local fan-out: one queue of event references per sink (a client
 * worker), bounded in events and bytes, with a wake callback when a queue
 * goes from empty to not, and per-sink interest (what its subscribers can
 * match) so that a worker without a subscriber of a topic gets none of its
 * events. An engine decides what enters (and in which order); the workers
 * take their queue in one swap and match it against their own index. */

#define SUB_SINKS_MAX 256 /* client.workers is at most 256 */

/* A set of sinks. */
struct sub_sinkset {
  uint64_t bits[SUB_SINKS_MAX / 64];
};

struct sub_fanout_cfg {
  int nsinks;             /* 1..SUB_SINKS_MAX */
  size_t sink_max_events; /* queued events per sink before publishes fail */
  size_t sink_max_bytes;  /* and queued event bytes (sub_event.size) per sink */
  /* With true, a sink gets only the events its consumer may have a
   * subscriber for (sub_fanout_interest). */
  bool skip_idle_sinks;
};

struct sub_fanout;

/* Returns a new fan-out, or NULL when out of memory or cfg is invalid. */
struct sub_fanout *sub_fanout_new(const struct sub_fanout_cfg *cfg);
/* Frees it and every event still queued. */
void sub_fanout_free(struct sub_fanout *f);
int sub_fanout_sinks(const struct sub_fanout *f);

/* Sets the callback run (from the queuing thread; it must be thread-safe)
 * after events were appended to an empty sink queue. */
void sub_fanout_set_wake(struct sub_fanout *f, void (*wake)(void *arg, int sink), void *arg);

/* Counts what the consumer of `sink` subscribes to (skip_idle_sinks):
 * delta +1 when it adds the pattern, -1 when it removes it. The consumer
 * counts a subscription before it acknowledges it, so a publish that
 * follows the acknowledgement reaches it. Thread-safe; no-op without
 * skip_idle_sinks or for an unknown sink. */
void sub_fanout_interest(struct sub_fanout *f, int sink, const char *pattern, size_t len,
                         int delta);

/* Fills *want with the sinks an event on the topic of hash h (see
 * sub_topic_hash) goes to. Returns how many. */
int sub_fanout_wanting(struct sub_fanout *f, uint64_t h, struct sub_sinkset *want);

/* True when one more event of `size` bytes would pass the cap of a sink in
 * want (read without locks: the cheap early refusal). */
bool sub_fanout_full(struct sub_fanout *f, size_t size, const struct sub_sinkset *want);

/* Locks every sink in want (in index order) and makes room for one more
 * event of `size` bytes in each, so that the sub_fanout_push that must
 * follow cannot fail half-way. Returns SUB_OK with those sinks locked, or
 * SUB_EOVERLOADED / SUB_ENOMEM with none locked. */
enum sub_err sub_fanout_reserve(struct sub_fanout *f, size_t size, const struct sub_sinkset *want);

/* Unlocks the sinks sub_fanout_reserve locked, pushing nothing. */
void sub_fanout_unreserve(struct sub_fanout *f, const struct sub_sinkset *want);

/* Appends ev to every sink in want, consuming the caller's reference. With
 * `reserved` those sinks were locked by sub_fanout_reserve; otherwise they
 * are locked here and grown past the caps (an event accepted already).
 * *woken gets the sinks whose queue was empty: pass it to sub_fanout_wake
 * once no lock of the caller's is held. */
void sub_fanout_push(struct sub_fanout *f, struct sub_event *ev, bool reserved,
                     const struct sub_sinkset *want, struct sub_sinkset *woken);
void sub_fanout_wake(struct sub_fanout *f, const struct sub_sinkset *woken);

/* A sink's batch: taken from the queue in one swap, processed without locks. */
struct sub_batch {
  struct sub_event **ev;
  size_t n, cap;
};

/* Moves every event queued for `sink` into `batch` (which must be empty;
 * its storage is swapped with the queue's). The caller owns one reference to
 * each event in the batch and sets n to 0 once done. Returns batch->n. */
size_t sub_fanout_take(struct sub_fanout *f, int sink, struct sub_batch *batch);
void sub_batch_free(struct sub_batch *batch);

#endif
