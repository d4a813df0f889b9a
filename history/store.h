#ifndef HERALD_HISTORY_STORE_H
#define HERALD_HISTORY_STORE_H

/* The durable store of the history log (eventlog.h): <data_dir>/history.db,
 * SQLite. It keeps the log's epoch and next offset, the retained events by
 * offset and every topic's highest seq, so that after a restart the log
 * goes on where it stopped. The log writes through hist_store_seam (its
 * writer thread only); hist_store_open, _meta, _reset and _load run before
 * that thread starts. docs/history.md has the model. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventlog.h"

struct hist_store;

/* Opens, creating when missing, <dir>/history.db (created 0600; WAL,
 * synchronous=NORMAL, a busy timeout). Returns NULL with a message in err
 * that says what to do (not a database, unwritable dir, a schema of another
 * version). */
struct hist_store *hist_store_open(const char *dir, char *err, size_t errlen);
/* Closes s (NULL is fine). */
void hist_store_close(struct hist_store *s);

/* The last failure of meta, reset or load (SQLite's message, never a
 * secret); "" when none. */
const char *hist_store_errmsg(const struct hist_store *s);

/* The stored epoch (SUB_EPOCH_LEN chars) and the next offset to give: the
 * larger of the recorded one and the last stored event's offset + 1.
 * *found false on a fresh store (epoch "" then). Returns 0 or -1. */
int hist_store_meta(struct hist_store *s, char epoch[SUB_EPOCH_LEN + 1], uint64_t *next,
                    bool *found);

/* Records the epoch (SUB_EPOCH_LEN chars of [a-z0-9]) and next offset (>= 1)
 * of a fresh log and forgets every stored event: a new epoch means the old
 * offsets mean nothing. Topics' seqs are kept: a seq never goes back.
 * Returns 0 or -1. */
int hist_store_reset(struct hist_store *s, const char *epoch, uint64_t next);

/* Loads the newest run of stored events within the bounds, oldest first:
 * at most max_events, at most max_bytes (counted as sub_event.size), none
 * with ms < min_ms (0 / 0 / 0: no bound); the run stops at the first older
 * event out of a bound, and no more than max_events rows are read. on_event
 * takes each as a new event with one reference (offset, seq, id, ms, data,
 * max_age_ms set), whatever it returns: 0 goes on, -1 stops with an error.
 * Then on_seq gets every topic's highest seq ever stored, pruned events
 * included. Returns 0 or -1. */
int hist_store_load(struct hist_store *s, size_t max_events, size_t max_bytes, uint64_t min_ms,
                    int (*on_event)(void *arg, struct sub_event *ev),
                    int (*on_seq)(void *arg, const char *topic, size_t len, uint64_t seq),
                    void *arg);

/* The store as sub_log_cfg.store (valid as long as s). append writes a
 * batch, the topics' seqs and the next offset in one transaction, rolled
 * back on failure; prune deletes the events below an offset in chunks.
 * Failures go to stderr, one line a second at most. */
const struct sub_log_store *hist_store_seam(struct hist_store *s);

#endif
