#ifndef HERALD_HOOKS_H
#define HERALD_HOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "guard.h"
#include "util/log_level.h"

/* Outbound webhooks: the endpoint registry, the durable queue (SQLite, WAL,
 * synchronous=FULL) and the dispatcher thread that signs and sends
 * deliveries through libcurl's multi interface and records every attempt.
 *
 * The webhooks layer is the embedded engine's holder: an event the publish
 * pipeline holds (an endpoint takes its topic, or it has an idempotency key)
 * comes to it through the engine's hold callback; its deliveries, its seq
 * and its key are committed, then it is answered and released to the
 * client workers. Commits are grouped: every publish waiting when the
 * dispatcher comes round shares one transaction and one fsync. */

struct hook_config {
  char db_path[1100]; /* the SQLite file (data_dir/herald.db) */
  int schedule_s[32]; /* retry schedule: delay before each attempt */
  size_t schedule_n;
  double jitter; /* 0.2: each delay times 1 +- 20% */
  int connect_timeout_ms;
  int request_timeout_ms;
  int max_inflight; /* requests in flight in all */
  int max_inflight_per_endpoint;
  int64_t disable_after_ms;     /* failing continuously this long disables an endpoint */
  int64_t rotation_ms;          /* an old secret keeps signing this long after a rotation */
  int64_t retention_ms;         /* delivered deliveries are pruned after this */
  int64_t idempotency_ttl_ms;   /* idempotency keys are remembered this long */
  int64_t store_max_bytes;      /* 0: unbounded; else publishes get 503 store_full past it */
  int commit_queue_max;         /* publishes waiting for a commit; past it: 503 overloaded */
  struct hook_cidr allowed[64]; /* webhooks.allowed_cidrs */
  size_t nallowed;
  const json_t *endpoints; /* webhooks.endpoints from the config (may be NULL) */
  /* One log line: `fields` are the key=value pairs already formatted, or
   * NULL. The gateway passes them on to gw_log. */
  void (*log)(enum util_log_level level, const char *event, const char *fields);
  enum util_log_level log_level; /* lines below this level are not even formatted */
  /* Publishes an event of Herald's own (e.g. an endpoint disabled): data
   * is its JSON text. Called from the dispatcher thread with no lock held;
   * it must not wait for the outcome. */
  void (*announce)(void *arg, const char *topic, const char *data, size_t len);
  void *announce_arg;
};

struct hook_service;

/* Opens (creating) the store, restores topic seqs into the engine, resets
 * deliveries that were in flight at a crash, applies the config's
 * endpoints, becomes the engine's holder and starts the dispatcher thread.
 * Returns NULL with a message in err (size 512) on failure. */
struct hook_service *hook_start(const struct hook_config *cfg, struct sub_engine *engine,
                                char err[512]);

/* Finishes the commits waiting, stops sending (deliveries in flight stay
 * pending, to be sent again at the next start), and frees everything. */
void hook_stop(struct hook_service *h);

/* True when an enabled endpoint takes events on topic (NUL-terminated):
 * the publish pipeline then holds the event until its deliveries are
 * stored. Thread-safe. */
bool hook_wants(struct hook_service *h, const char *topic);

/* Looks up an Idempotency-Key recorded at or after min_ms in the store.
 * Returns 1 when found (hash: the request's SHA-256; first: the first
 * publish's id, seq and ms, an empty id when that could not be read), 0
 * when not, -1 when the store could not be read. Thread-safe. */
int hook_idem_lookup(struct hook_service *h, const char *key, int64_t min_ms,
                     unsigned char hash[32], struct sub_published *first);

/* The endpoints API. Each returns the HTTP status of the answer and sets
 * *out to its JSON body (a {"error":{...}} object on failure; a 422 names
 * the offending field in error.field). `query` holds the URL's query
 * parameters (status, cursor, limit) or NULL. */
int hook_api_create(struct hook_service *h, const json_t *body, json_t **out);
int hook_api_list(struct hook_service *h, const char *cursor, const char *limit, json_t **out);
int hook_api_get(struct hook_service *h, const char *id, json_t **out);
int hook_api_patch(struct hook_service *h, const char *id, const json_t *body, json_t **out);
int hook_api_delete(struct hook_service *h, const char *id, json_t **out);
int hook_api_rotate(struct hook_service *h, const char *id, json_t **out);
int hook_api_deliveries(struct hook_service *h, const char *id, const char *status,
                        const char *cursor, const char *limit, json_t **out);
int hook_api_retry(struct hook_service *h, const char *id, const char *delivery, json_t **out);
/* Replay: body {"since": T}. T a history cursor queues a new delivery of
 * every retained event after it that the endpoint's patterns match, at most
 * max_events (history.max_replay), oldest first; T a time or an event id
 * makes the delivered and failed deliveries since then pending again. */
int hook_api_replay(struct hook_service *h, const char *id, const json_t *body, size_t max_events,
                    json_t **out);

/* The engine the service holds events for (the one hook_start took). */
struct sub_engine *hook_engine(struct hook_service *h);

#endif
