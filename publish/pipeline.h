#ifndef HERALD_PIPELINE_H
#define HERALD_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "idempotency.h"
#include "schema.h"

/* The publish pipeline: every port publishes through it (REST, the
 * WebSocket protocols, Herald's own announcements). One publish goes
 * through the topic rules (JSON Schemas bound to topics), then idempotency
 * (an Idempotency-Key answered again, or claimed), then the engine, which
 * gives it its id and seq and holds it until durable when a webhook
 * endpoint takes its topic or it has a key. The result is a domain status
 * that each port maps to its own answer (an HTTP status, an error op).
 * docs/internals/publish.md says what each stage guarantees. */

/* What topic rules say of a publish (gateway/topic_rules.c decides). */
enum pub_verdict {
  PUB_VERDICT_OK,            /* publish it */
  PUB_VERDICT_UNKNOWN_TOPIC, /* no rule matches and schemas.unmatched_topics is "reject" */
  PUB_VERDICT_INVALID,       /* data fails the rule's schema; errors in the result */
};

struct pub_rules {
  /* Decides whether data may be published on topic (NUL-terminated). res
   * gets the schema errors of PUB_VERDICT_INVALID, *rule the matching
   * rule's pattern. Thread-safe. */
  enum pub_verdict (*check)(const void *rules, const char *topic, const json_t *data,
                            struct schema_result *res, const char **rule);
  /* True when publishes must be checked at all. */
  bool (*active)(const void *rules);
  /* What history keeps of topic's events (NULL: everything, the log's
   * retention): excluded, or a shorter retention. */
  void (*history)(const void *rules, const char *topic, bool *excluded, uint64_t *max_age_ms);
  const void *rules;
};

/* Who must have an event durable before it is delivered (the webhooks
 * layer: an endpoint that takes the topic). */
struct pub_durable {
  /* True when events on topic (NUL-terminated) must be held until stored. */
  bool (*wants)(void *arg, const char *topic);
  void *arg;
};

struct pub_config {
  struct sub_engine *engine;
  struct pub_rules rules;       /* check NULL: no topic rules */
  struct pub_durable durable;   /* wants NULL: nothing held but keyed publishes */
  struct pub_idem_store idem;   /* lookup NULL: Idempotency-Keys are refused (store_failed) */
  int64_t idempotency_ttl_ms;   /* keys are answered again this long */
};

enum pub_status {
  PUB_ACCEPTED = 0,
  PUB_UNKNOWN_TOPIC,       /* the topic rules refuse the topic */
  PUB_SCHEMA_VIOLATION,    /* data fails the topic's schema: schema, rule */
  PUB_INVALID_TOPIC,       /* not a concrete topic */
  PUB_IDEM_CONFLICT,       /* the key was used with another topic or data */
  PUB_IDEM_IN_PROGRESS,    /* a publish with the key is in progress */
  PUB_OVERLOADED,          /* workers or the commit queue fall behind */
  PUB_TOO_MANY_TOPICS,     /* the engine's topic table is full */
  PUB_STORE_FULL,          /* the durable store is full */
  PUB_STORE_FAILED,        /* the durable store failed */
  PUB_NO_MEMORY,           /* out of memory */
};

/* The stable error code of a status ("overloaded", ...; "ok" for accepted). */
const char *pub_status_code(enum pub_status s);

struct pub_request;

/* Called, from another thread, when a publish that pub_publish left
 * pending has its outcome. */
typedef void (*pub_done_fn)(struct pub_request *r);

/* One publish. The caller fills the inputs and keeps the request (and
 * what it points to) alive until the outcome is known. */
struct pub_request {
  /* inputs */
  const char *topic; /* a concrete topic (NUL-terminated at topic_len) */
  size_t topic_len;
  const char *data;  /* the data's JSON text */
  size_t data_len;
  const json_t *data_value; /* data parsed, for the topic rules (NULL: not checked);
                             * read during pub_publish only */
  const char *idem_key;     /* NULL, or a key that passed pub_idem_key_valid */
  const char *idem_scope;   /* whose key it is: an API key's name; NULL or "" for
                             * anonymous callers (at most PUB_IDEM_SCOPE_MAX bytes) */
  pub_done_fn done;
  void *arg;
  /* outputs */
  enum pub_status status;
  bool replayed; /* the answer of an earlier publish with the same key */
  struct sub_published pub;   /* accepted: id, seq, ms */
  char message[200];          /* an error: what to tell the client */
  const char *rule; /* PUB_SCHEMA_VIOLATION: the rule's pattern */
  /* PUB_SCHEMA_VIOLATION: [{"instance_path","keyword_path","message"}]
   * (owned: pub_request_clear frees it unless the caller took it) and
   * whether more errors existed than were kept */
  json_t *errors;
  bool errors_truncated;
  /* the pipeline's own */
  struct pub_pipeline *pp;
  struct sub_hold_req hold;
  char idem_scoped[PUB_IDEM_SCOPED_MAX + 1]; /* the key as claimed and stored */
  bool claimed;
};

struct pub_pipeline;

/* Returns a pipeline over cfg (copied), or NULL when out of memory. */
struct pub_pipeline *pub_pipeline_new(const struct pub_config *cfg);
void pub_pipeline_free(struct pub_pipeline *pp);

enum pub_state { PUB_DONE, PUB_PENDING };

/* Publishes r. Returns PUB_DONE when its outcome is known (r->status), or
 * PUB_PENDING when the event waits to be made durable: r->done is then
 * called once, from another thread (maybe before this returns), and r must
 * stay valid until it is. Thread-safe. */
enum pub_state pub_publish(struct pub_pipeline *pp, struct pub_request *r);

/* Frees what the outcome holds (errors). */
void pub_request_clear(struct pub_request *r);

/* Like pub_publish, but waits for the outcome (for threads that may block). */
void pub_publish_wait(struct pub_pipeline *pp, struct pub_request *r);

#endif
