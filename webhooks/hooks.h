#ifndef HERALD_HOOKS_H
#define HERALD_HOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "guard.h"

/* Outbound webhooks: the endpoint registry, the durable queue (SQLite, WAL,
 * synchronous=FULL) and the dispatcher thread that signs and sends
 * deliveries through libcurl's multi interface and records every attempt.
 *
 * Publishing goes through hook_publish: an event that matches an enabled
 * endpoint (or carries an idempotency key) is held by the broker until its
 * deliveries are on disk, then released to the WebSocket side and answered.
 * Commits are grouped: every publish waiting when the dispatcher comes round
 * shares one transaction and one fsync. */

#define HOOK_IDEM_KEY_MAX 255

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
  void (*log)(int level, const char *event, const char *fields);
  int log_level; /* lines below this level are not even formatted */
};

struct hook_service;

/* Opens (creating) the store, restores topic seqs into the broker, resets
 * deliveries that were in flight at a crash, applies the config's
 * endpoints, and starts the dispatcher thread. Returns NULL with a message
 * in err (size 512) on failure. */
struct hook_service *hook_start(const struct hook_config *cfg, struct sub_broker *broker,
                                char err[512]);

/* Finishes the commits waiting, stops sending (deliveries in flight stay
 * pending, to be sent again at the next start), and frees everything. */
void hook_stop(struct hook_service *h);

/* One publish through the webhooks layer. The caller fills the inputs; the
 * outcome is in `status` (an HTTP status: 202, or 409/503...) and `pub`
 * (on 202), `error_code`/`error_message` otherwise. */
struct hook_publish {
  /* inputs */
  const char *topic;
  size_t topic_len;
  const char *data; /* compact JSON text */
  size_t data_len;
  const char *idem_key; /* NULL, or the Idempotency-Key (validated by hook_idem_valid) */
  /* Called from the dispatcher thread when a publish that hook_publish left
   * pending completes (not called when hook_publish returns done). */
  void (*done)(struct hook_publish *p);
  void *arg;
  /* outputs */
  int status;
  bool replayed; /* an earlier response to the same idempotency key */
  struct sub_published pub;
  const char *error_code;
  char error_message[160];
  /* internal */
  unsigned char idem_hash[32];
  bool idem_claimed;
};

enum hook_pub_state { HOOK_PUB_DONE, HOOK_PUB_PENDING };

/* Publishes p. Returns HOOK_PUB_DONE when the outcome is already known, or
 * HOOK_PUB_PENDING when it waits for a commit: p->done is then called
 * (once, from another thread) and p must stay valid until it is. */
enum hook_pub_state hook_publish(struct hook_service *h, struct hook_publish *p);

/* Like hook_publish, but waits for the outcome (for callers that may block). */
void hook_publish_wait(struct hook_service *h, struct hook_publish *p);

/* True when `key` is a usable Idempotency-Key: 1..255 visible ASCII bytes. */
bool hook_idem_valid(const char *key);

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
int hook_api_replay(struct hook_service *h, const char *id, const json_t *body, json_t **out);

#endif
