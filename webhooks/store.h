#ifndef HERALD_STORE_H
#define HERALD_STORE_H

/* The webhook store: where endpoints, events, deliveries, attempts,
 * idempotency keys and topic seqs are kept durably. One table of
 * operations (struct hook_store_ops) and a handle per connection; the
 * SQLite implementation is store_sqlite.c, and docs/internals/webhook_store.md
 * says what each operation guarantees and how to add another one.
 *
 * A handle is used by one thread at a time. The service opens two: the
 * dispatcher's (its thread only: the turn, prune, reset_loaded) and the
 * API's (any thread holding h->db_lock; at start, before the dispatcher
 * runs, hook_start alone). Rows and records passed to callbacks are valid
 * during the call only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"

#define HOOK_STORE_LOAD_MAX 128 /* deliveries one load_due call hands over at most */
#define HOOK_STORE_HASH_LEN 32  /* an idempotency request hash (SHA-256) */

enum hook_store_err {
  HOOK_STORE_OK = 0,
  HOOK_STORE_FULL,  /* out of room: store_max_bytes or the disk (answered store_full) */
  HOOK_STORE_FAILED /* anything else (answered store_failed) */
};

/* A delivery's status as stored. */
enum hook_delivery_status {
  HOOK_DELIVERY_PENDING = 0,
  HOOK_DELIVERY_DELIVERED = 1,
  HOOK_DELIVERY_FAILED = 2,
  HOOK_DELIVERY_QUEUED = 3 /* pending, loaded by the dispatcher */
};

/* The two savepoints of a dispatcher turn: the held publishes, and the
 * bookkeeping (outcomes, endpoint states, loads). */
enum hook_store_part { HOOK_STORE_ITEMS, HOOK_STORE_BOOK };

enum hook_store_retry {
  HOOK_RETRY_REQUEUED, /* the delivered/failed delivery is pending again */
  HOOK_RETRY_PENDING,  /* it is pending already: nothing changed */
  HOOK_RETRY_NOT_FOUND /* the endpoint has no such delivery */
};

/* An endpoint's persistent fields. */
struct hook_store_endpoint {
  const char *id;
  const char *url;
  const char *topics; /* a JSON array of patterns, as text */
  const char *description;
  const char *secret;
  const char *old_secret; /* "" when none */
  int64_t old_until_ms;
  bool enabled, ordered, from_config;
  int64_t created_ms, updated_ms, failing_since_ms;
  const char *disabled_reason;
};

/* One row of the deliveries page (newest first), then its attempts. */
struct hook_store_delivery {
  int64_t id;
  const char *event_id;
  const char *topic; /* NULL when the event's row is gone */
  int64_t seq;
  int status; /* enum hook_delivery_status */
  int64_t next_ms, created_ms;
};
struct hook_store_attempt {
  int n;
  int64_t ms;
  int http_status; /* 0: no HTTP answer */
  int64_t latency_us;
  const char *error;    /* NULL when none */
  const void *response; /* NULL when none (or empty) */
  size_t response_len;
};

/* A delivery to create with a held publish; `id` is set by write_item. */
struct hook_store_new_delivery {
  const char *endpoint;
  int status; /* HOOK_DELIVERY_PENDING, or _QUEUED when the dispatcher keeps it */
  int64_t next_ms;
  int64_t id;
};

/* A held publish: its event row (when `body` is set), its deliveries,
 * the topic's seq, and its idempotency record (when `idem_key` is set). */
struct hook_store_item {
  const char *event_id;
  const char *topic;
  size_t topic_len;
  uint64_t seq, ms;
  const void *body; /* the webhook body every attempt sends; NULL: no event row */
  size_t body_len;
  struct hook_store_new_delivery *deliveries;
  size_t ndeliveries;
  const char *idem_key;
  const unsigned char *idem_hash; /* HOOK_STORE_HASH_LEN bytes */
  int64_t idem_ms;                /* when the key was used */
};

/* The result of one attempt. */
struct hook_store_outcome {
  int64_t delivery;
  const char *endpoint;
  int status;   /* DELIVERED, PENDING (again at next_ms) or FAILED */
  int total;    /* the attempt's number */
  int attempts; /* attempts counted for the schedule */
  int64_t next_ms, ms;
  long http_status;
  int64_t latency_us;
  const char *error;    /* NULL when none */
  const void *response; /* NULL when none */
  size_t response_len;
};

/* A due delivery handed over by load_due. */
struct hook_store_due {
  int64_t id;
  int attempts, total;
  const char *event_id;
  const void *body;
  size_t body_len;
};

/* What an idempotency key answered the first time. */
struct hook_store_idem {
  unsigned char hash[HOOK_STORE_HASH_LEN];
  size_t hash_len;          /* != HOOK_STORE_HASH_LEN: unusable, treat as a mismatch */
  char id[SUB_ID_LEN + 1];  /* "" when the stored answer cannot be read */
  uint64_t seq, ms;
};

/* Callbacks: a nonzero return from the int ones stops the enumeration. */
typedef int (*hook_store_endpoint_fn)(void *ctx, const struct hook_store_endpoint *e);
typedef int (*hook_store_delivery_fn)(void *ctx, const struct hook_store_delivery *d);
typedef void (*hook_store_attempt_fn)(void *ctx, const struct hook_store_attempt *a);
typedef void (*hook_store_seq_fn)(void *ctx, const char *topic, uint64_t seq);
typedef int (*hook_store_due_fn)(void *ctx, const struct hook_store_due *d);
/* enqueue's source: fills the event fields of *ev (event_id, topic,
 * topic_len, seq, ms, body, body_len; valid until the next call) for the
 * i-th event. Returns 0, or nonzero to give up (out of memory). */
typedef int (*hook_store_event_fn)(void *ctx, size_t i, struct hook_store_item *ev);

struct hook_store;

struct hook_store_ops {
  const char *name; /* "sqlite" */

  /* Closes the handle and frees it (hook_store_close also takes NULL). */
  void (*close)(struct hook_store *s);
  /* The last failure on this handle: a message for logs (may name a file
   * or a statement), and SQLite's short reason text (a static string, for
   * answers). Neither is ever a secret. */
  const char *(*errmsg)(const struct hook_store *s);
  const char *(*errstr)(const struct hook_store *s);

  /* -- the API's handle (under h->db_lock, or hook_start) -- */

  /* Calls fn with every endpoint; a nonzero return stops the reading (the
   * caller knows why: the call still returns OK). */
  enum hook_store_err (*load_endpoints)(struct hook_store *s, hook_store_endpoint_fn fn, void *ctx);
  /* Inserts or updates e; `state`: its enabled/failing fields too, else
   * those stay as stored (created_ms is kept on an update either way). */
  enum hook_store_err (*save_endpoint)(struct hook_store *s, const struct hook_store_endpoint *e,
                                       bool state);
  /* Deletes the endpoint, its deliveries and their attempts atomically. */
  enum hook_store_err (*delete_endpoint)(struct hook_store *s, const char *id);
  /* The deliveries of `endpoint` with an id below `before`, newest first,
   * at most `limit`; `status` -1 for all (PENDING also takes QUEUED).
   * on_row returning nonzero stops before that row's attempts. */
  enum hook_store_err (*deliveries)(struct hook_store *s, const char *endpoint, int status,
                                    int64_t before, int limit, hook_store_delivery_fn on_row,
                                    hook_store_attempt_fn on_attempt, void *ctx);
  /* Makes a delivered or failed delivery pending again, due now, its
   * schedule restarted; *result tells that from pending-already and none. */
  enum hook_store_err (*retry)(struct hook_store *s, const char *endpoint, int64_t delivery,
                               int64_t now_ms, enum hook_store_retry *result);
  /* Makes every delivered or failed delivery of events since since_ms
   * pending again; *requeued: how many. */
  enum hook_store_err (*replay)(struct hook_store *s, const char *endpoint, int64_t since_ms,
                                int64_t now_ms, int64_t *requeued);
  /* In one transaction (all or nothing): a new pending delivery to
   * `endpoint`, due at now_ms, of each of the n events fn hands over, in
   * that order, with the event's row when the store has none (a replay from
   * the history log). A nonzero fn fails it (HOOK_STORE_FAILED). */
  enum hook_store_err (*enqueue)(struct hook_store *s, const char *endpoint, size_t n,
                                 hook_store_event_fn fn, void *ctx, int64_t now_ms);
  /* Looks up an idempotency key used at or after oldest_ms; *found false
   * when there is none (out is then untouched). */
  enum hook_store_err (*idem_lookup)(struct hook_store *s, const char *key, int64_t oldest_ms,
                                     struct hook_store_idem *out, bool *found);
  /* At start: puts deliveries loaded at a stop or crash back to pending
   * (*requeued: how many), then calls fn with every topic's last seq. */
  enum hook_store_err (*recover)(struct hook_store *s, hook_store_seq_fn fn, void *ctx,
                                 int64_t *requeued);

  /* -- the dispatcher's handle (its thread only) -- */

  /* Readies the handle for turns; once, before the first. */
  enum hook_store_err (*turn_prepare)(struct hook_store *s);
  /* Opens the turn's transaction (one commit, one fsync, for the turn). */
  enum hook_store_err (*turn_begin)(struct hook_store *s);
  /* False when no turn is open: after a full disk or an I/O error the
   * store may have rolled the whole turn back by itself. */
  bool (*turn_open)(struct hook_store *s);
  /* Opens a savepoint in the turn. */
  enum hook_store_err (*part_begin)(struct hook_store *s, enum hook_store_part part);
  /* Ends the savepoint: `keep` its writes, or undo them (then the turn
   * goes on; call only while turn_open). */
  enum hook_store_err (*part_end)(struct hook_store *s, enum hook_store_part part, bool keep);
  /* Writes one held publish (sets the id of each new delivery). */
  enum hook_store_err (*write_item)(struct hook_store *s, struct hook_store_item *it);
  /* Writes an attempt's outcome: the delivery's new state (only while it
   * is loaded) and the attempt's record (only while the delivery exists). */
  enum hook_store_err (*write_outcome)(struct hook_store *s, const struct hook_store_outcome *o);
  /* Writes an endpoint's enabled/failing state. */
  enum hook_store_err (*write_endpoint_state)(struct hook_store *s, const char *id, bool enabled,
                                              int64_t failing_since_ms, const char *reason,
                                              int64_t updated_ms);
  /* The refill: hands fn up to `want` (<= HOOK_STORE_LOAD_MAX) pending
   * deliveries of `endpoint` due by now_ms, oldest due first (`ordered`:
   * by id, stopping at a head not due yet), and marks those fn took (it
   * returns 0; nonzero stops) QUEUED. *next_ms: when to look again
   * (now_ms when all `want` came), or -1 when nothing is pending. */
  enum hook_store_err (*load_due)(struct hook_store *s, const char *endpoint, bool ordered,
                                  int64_t now_ms, size_t want, hook_store_due_fn fn, void *ctx,
                                  int64_t *next_ms);
  /* Commits the turn; on failure it is rolled back. */
  enum hook_store_err (*turn_commit)(struct hook_store *s);
  /* Rolls the turn back if it is still open (errmsg/errstr unchanged). */
  void (*turn_rollback)(struct hook_store *s);
  /* In a transaction of its own: deletes up to `batch` delivered deliveries
   * last updated before delivered_before_ms with their attempts, up to
   * `batch` events older than that no delivery refers to, and idempotency
   * keys used before idem_before_ms. */
  enum hook_store_err (*prune)(struct hook_store *s, int64_t delivered_before_ms,
                               int64_t idem_before_ms, int batch);
  /* At stop: puts the deliveries still loaded back to pending. */
  void (*reset_loaded)(struct hook_store *s);
};

/* Every handle starts with its table. */
struct hook_store {
  const struct hook_store_ops *ops;
};

/* Opens (creating) the SQLite store at `path` (WAL, synchronous=FULL; at
 * most max_bytes when > 0). Returns a handle, or NULL with err set. */
struct hook_store *hook_store_sqlite_open(const char *path, int64_t max_bytes, char err[512]);

/* Closes s (NULL is fine). */
static inline void hook_store_close(struct hook_store *s)
{
  if(s)
    s->ops->close(s);
}

#endif
