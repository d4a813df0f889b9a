#ifndef HERALD_EVENTLOG_H
#define HERALD_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "event.h"

/* The history log: one per gateway. Every event it takes gets the next
 * gateway-wide `offset` (1, 2, 3, ... in the order events enter it) and is
 * kept, by reference, in a ring indexed by offset (finding an offset is
 * O(1), a time O(log n)), bounded in events, bytes and age. The log has an
 * `epoch`, a short random string that changes only when history is lost;
 * a cursor is "<epoch>:<offset>".
 *
 * Events leave the log in offset order to the fan-out ("pushed"): an event
 * is pushed once every event before it is, once it is no longer held (a
 * webhooks commit) and, with a durable store, once it is committed there.
 * The high-water mark (the last pushed offset) is what a resume replays up
 * to: everything at or below it is in the log or was removed (a gap the
 * reader is told of), everything above it will reach the fan-out after the
 * reader counted its interest under the log's lock. docs/history.md has
 * the model; docs/internals/engine.md what an engine keeps of it. */

#define SUB_EPOCH_LEN 8 /* [a-z0-9] */
#define SUB_CURSOR_MAX (SUB_EPOCH_LEN + 1 + 20)

/* Where a durable log writes (the history store, history/store.c). Called
 * from the log's writer thread only. */
struct sub_log_store {
  /* Writes n events (offset order; offsets may skip: dropped events) and
   * their topics' seq in one transaction. Returns 0, or -1 (nothing
   * written; the failure logged by the store): the events are not pushed
   * and the writer tries again, 10 ms to 1 s apart. */
  int (*append)(void *arg, struct sub_event *const *ev, size_t n);
  /* Forgets the events below offset `first` (no longer in the log). */
  void (*prune)(void *arg, uint64_t first);
  void *arg;
};

struct sub_log_cfg {
  size_t max_events;   /* 0: no bound */
  size_t max_bytes;    /* event bytes (sub_event.size); 0: no bound */
  uint64_t max_age_ms; /* 0: no bound */
  size_t max_pending;  /* accepted events not yet pushed before appends are refused */
  /* The clock, in Unix milliseconds (NULL: the wall clock); tests fake it. */
  uint64_t (*now_ms)(void *arg);
  void *clock_arg;
  /* NULL: memory only. Else a writer thread commits events there before
   * they are pushed. */
  const struct sub_log_store *store;
  /* Pushes one event to the fan-out: called under the log's lock, in offset
   * order, for every event not appended as SUB_LOG_PUSHED. Borrows ev. */
  void (*deliver)(void *arg, struct sub_event *ev);
  void *deliver_arg;
};

struct sub_log;

/* Returns a new log, or NULL when out of memory or cfg is invalid. epoch:
 * the stored one (SUB_EPOCH_LEN chars of [a-z0-9]), or NULL for a fresh
 * random one. next: the offset the first append gets (>= 1). */
struct sub_log *sub_log_new(const struct sub_log_cfg *cfg, const char *epoch, uint64_t next);
/* Stops the writer (committing what it was given first) and frees the log
 * and its references. */
void sub_log_free(struct sub_log *l);
/* Starts the writer thread (with a store). Returns 0 or -1. */
int sub_log_start(struct sub_log *l);

const char *sub_log_epoch(const struct sub_log *l);

/* Puts a stored event back (ev->offset set, above every restored one),
 * before any append: it counts as pushed. Takes a reference. The log then
 * starts at the first restored event (what came before counts as evicted)
 * and goes on at the larger of `next` and the last restored offset + 1.
 * Returns 0, or -1 when out of memory or out of order. */
int sub_log_restore(struct sub_log *l, struct sub_event *ev);

/* ---- the engine's side: offsets and pushes, under the log's lock ---- */

void sub_log_lock(struct sub_log *l);
void sub_log_unlock(struct sub_log *l);

enum sub_log_state {
  SUB_LOG_PUSHED, /* the caller pushes it now (only when sub_log_direct_locked) */
  SUB_LOG_READY,  /* the log pushes it when its turn comes */
  SUB_LOG_HELD,   /* not before sub_log_settle_locked */
};

/* True when an event appended now may be pushed by the caller at once: a
 * memory log with nothing accepted still waiting. */
bool sub_log_direct_locked(const struct sub_log *l);

/* Gives ev the next offset (ev->offset, ev->log_ms) and keeps a reference.
 * SUB_OK, SUB_EOVERLOADED (cfg.max_pending events wait) or SUB_ENOMEM;
 * on error no offset was used. */
enum sub_err sub_log_append_locked(struct sub_log *l, struct sub_event *ev,
                                   enum sub_log_state st);

/* Ends the hold of an appended event: it is pushed in its turn when
 * `deliver`, else dropped (its offset stays unused). */
void sub_log_settle_locked(struct sub_log *l, struct sub_event *ev, bool deliver);

/* The high-water mark: the last offset pushed (0: none). */
uint64_t sub_log_pushed_locked(const struct sub_log *l);
/* The same, under the log's lock: a push that read a subscription's
 * interest before it was counted has ended, and its offset is in the mark;
 * every push after it sees the interest. */
uint64_t sub_log_pushed(struct sub_log *l);
/* The offset the next append gets. */
uint64_t sub_log_next(struct sub_log *l);

/* ---- reading ---- */

enum sub_gap {
  SUB_GAP_NONE = 0,
  SUB_GAP_EXPIRED,       /* removed by max_age_s (or the topic's shorter retention) */
  SUB_GAP_EVICTED,       /* removed by max_events / max_bytes */
  SUB_GAP_EPOCH_CHANGED, /* the cursor is from another epoch */
  SUB_GAP_LIMIT,         /* more matched than the read may return */
};

/* "expired", "evicted", "epoch_changed", "limit" (NULL for none). */
const char *sub_gap_name(enum sub_gap g);

struct sub_log_query {
  uint64_t after; /* events with offset > after ... */
  uint64_t upto;  /* ... and <= upto (0: the high-water mark now) */
  /* Which events (NULL: all). Called under the log's lock: no locks, no I/O. */
  bool (*match)(void *arg, const struct sub_event *ev);
  void *arg;
  size_t max;  /* at most this many (>= 1) */
  /* When more than max match: true keeps the newest max and reports a
   * SUB_GAP_LIMIT (a replay), false the oldest max with `more` (a page). */
  bool newest;
};

struct sub_log_result {
  struct sub_event **ev; /* references, in offset order: sub_log_result_clear */
  size_t n;
  uint64_t hwm;   /* the upper bound read to */
  enum sub_gap gap; /* events after `after` were removed, or the limit cut */
  uint64_t oldest;  /* on a gap: the offset the read continued from (inclusive) */
  bool more;        /* a page: more matching events follow the last one */
  uint64_t last;    /* the offset read through: continue after it */
};

/* Reads matching events. Returns 0, or -1 when out of memory. */
int sub_log_read(struct sub_log *l, const struct sub_log_query *q, struct sub_log_result *r);
void sub_log_result_clear(struct sub_log_result *r);

/* The offset to resume after to get every retained event at or after Unix
 * time ms; *gap says whether events at or after it may have been removed. */
uint64_t sub_log_after_time(struct sub_log *l, uint64_t ms, enum sub_gap *gap);

/* The event at offset, with a reference (NULL: not retained). */
struct sub_event *sub_log_get(struct sub_log *l, uint64_t offset);

/* The newest retained event of topic pushed at or below offset from, with a
 * reference (NULL: none). A scan back: for when the topic's last offset is
 * not pushed yet (held, or not committed) or was dropped. */
struct sub_event *sub_log_latest(struct sub_log *l, const char *topic, size_t len, uint64_t from);

/* The retained event with this id published at Unix time ms (its id's
 * time), with a reference (NULL: not retained): a binary search by time and
 * a short scan. */
struct sub_event *sub_log_find(struct sub_log *l, const char *id, uint64_t ms);

struct sub_log_stats {
  uint64_t first, last; /* retained offsets (first > last: empty) */
  size_t events, bytes;
  uint64_t pushed, next;
};
void sub_log_stats(struct sub_log *l, struct sub_log_stats *st);

/* ---- cursors ---- */

/* Writes "<epoch>:<offset>" (NUL-terminated) to out. Returns its length. */
size_t sub_cursor_format(const char *epoch, uint64_t offset, char out[SUB_CURSOR_MAX + 1]);
/* Parses a cursor: SUB_EPOCH_LEN chars of [a-z0-9], ':', a decimal offset
 * without leading zeros (0 allowed: before the first event). Returns 0 or -1. */
int sub_cursor_parse(const char *s, size_t len, char epoch[SUB_EPOCH_LEN + 1], uint64_t *offset);
/* Parses an RFC 3339 time ("2026-12-07T20:04:54Z", fractions and offsets
 * allowed) to Unix milliseconds. Returns 0 or -1. */
int sub_time_parse(const char *s, size_t len, uint64_t *ms);

#endif
