#ifndef HERALD_HOOKS_INTERNAL_H
#define HERALD_HOOKS_INTERNAL_H

/* Shared by hooks.c (registry, publishing, the endpoints API) and
 * dispatch.c (the dispatcher thread). Not a public header. The store
 * behind them is store.h. */

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hooks.h"
#include "index.h"
#include "signer.h"
#include "store.h"

#define HOOK_ID_LEN SUB_ID_LEN
#define HOOK_READY_MAX 128      /* deliveries of one endpoint loaded in memory */
#define HOOK_RESPONSE_KEEP 1024 /* response body bytes kept per attempt */
#define HOOK_DISABLED_TOPIC "herald.webhooks.endpoint_disabled"

enum {
  D_PENDING = HOOK_DELIVERY_PENDING,
  D_DELIVERED = HOOK_DELIVERY_DELIVERED,
  D_FAILED = HOOK_DELIVERY_FAILED,
  D_QUEUED = HOOK_DELIVERY_QUEUED /* pending, loaded in memory */
};

/* A webhook body, shared by the deliveries of one event. */
struct blob {
  atomic_uint refs;
  size_t len;
  char data[];
};
/* A blob of len bytes (NUL-terminated) with one reference, or NULL. */
struct blob *hook_blob_new(const char *data, size_t len);
struct blob *hook_blob_ref(struct blob *b);
void hook_blob_unref(struct blob *b); /* frees it with its last reference; NULL is fine */

/* A delivery loaded in memory, due now. */
struct ready {
  int64_t id;
  int attempts; /* attempts made so far (reset by a manual retry or a replay) */
  int total;    /* attempts ever made: numbers the attempt records */
  char event_id[HOOK_ID_LEN + 1];
  struct blob *body;
};

struct endpoint {
  char id[HOOK_ID_LEN + 1];
  char *url;
  json_t *topics; /* array of pattern strings */
  char *description;
  char secret[HOOK_SECRET_TEXT_MAX];
  char old_secret[HOOK_SECRET_TEXT_MAX]; /* "" when none */
  int64_t old_until_ms;
  bool enabled, ordered, from_config, deleted;
  bool deleting; /* its rows are being deleted: matches no publish */
  /* In h->index while it takes publishes (hook_endpoint_reindex_locked). */
  struct sub_subscriber sub;
  json_t *indexed; /* the topics it is indexed under (a reference), or NULL */
  int64_t created_ms, updated_ms, failing_since_ms;
  char disabled_reason[64];
  /* the dispatcher's own, under no lock */
  struct ready q[HOOK_READY_MAX];
  size_t qhead, qlen;
  size_t staged; /* loaded this turn, joining q after the commit */
  bool dirty;    /* failing_since/enabled changed, not yet written */
  int inflight;
  bool more;             /* pending rows may wait in the store */
  int64_t next_check_ms; /* when to look for them */
};

/* A publish held by the engine until its deliveries are committed. */
struct item {
  struct item *next;
  struct sub_event *ev;
  struct sub_hold_req *req; /* NULL: held only to keep the topic's order */
  char (*eps)[HOOK_ID_LEN + 1];
  size_t neps;
  bool ok;
};

/* The result of one attempt, written in the dispatcher's next transaction. */
struct outcome {
  struct outcome *next;
  int64_t delivery;
  char endpoint[HOOK_ID_LEN + 1];
  int total;    /* the attempt's number */
  int attempts; /* attempts counted for the schedule after this one */
  int64_t ms;
  long http_status;
  int64_t latency_us;
  char *error;
  char *response;
  size_t response_len;
  int status; /* D_DELIVERED, D_PENDING (retry at next_ms) or D_FAILED */
  int64_t next_ms;
};

struct hook_service {
  struct hook_config cfg;
  struct sub_engine *engine;
  pthread_mutex_t lock; /* endpoints, index, queue */
  struct endpoint **eps;
  size_t neps, cap;
  atomic_bool any_eps; /* neps > 0: a publish skips the lock while false */
  struct sub_index *index; /* the patterns of the endpoints taking publishes */
  struct item *qhead, *qtail;
  size_t nqueue;
  pthread_mutex_t db_lock;      /* api_store */
  struct hook_store *api_store; /* the API's connection */
  struct hook_store *store;     /* the dispatcher's connection */
  CURLM *multi;
  pthread_t thread;
  atomic_bool stop;
  atomic_bool poke; /* pending work was added in the store: look again */
  atomic_bool dead; /* the dispatcher could not start: refuse held publishes */
  uint64_t rng;
  bool starting; /* hook_start is applying the config's endpoints */
};

/* One log line through cfg.log, when its level is on; fmt gives the
 * key=value fields (or NULL). */
void hook_log(struct hook_service *h, enum util_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* hooks.c */
/* The live (not deleted) endpoint with this id, or NULL; with h->lock. */
struct endpoint *hook_endpoint_find_locked(struct hook_service *h, const char *id);
/* Brings ep's entries in h->index in line with its topics and whether it
 * takes publishes (enabled, not deleted, not being deleted); with h->lock.
 * Returns 0, or -1 out of memory (ep is then in the index under no pattern). */
int hook_endpoint_reindex_locked(struct hook_service *h, struct endpoint *ep);
/* Frees ep and what it holds (NULL is fine). */
void hook_endpoint_free(struct endpoint *ep);

/* dispatch.c */
/* The dispatcher thread's body; arg is the service. */
void *hook_dispatch_main(void *arg);
/* The Standard Webhooks body of ev, built once: its bytes are what every
 * attempt to every endpoint sends and signs (a replay from the history log
 * builds the same). One reference, or NULL out of memory. */
struct blob *hook_envelope(const struct sub_event *ev);

#endif
