#ifndef HERALD_IDEMPOTENCY_H
#define HERALD_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Idempotent publishing (the Idempotency-Key header): a key names one
 * publish; the same key with the same topic and data within the TTL gets
 * the first answer again, with another topic or data a conflict. Keys are
 * scoped to the caller (an API key's name; anonymous callers share the
 * empty scope): the same key string from two callers names two publishes,
 * and no caller can replay, block or probe another's. The keys
 * being published right now are claimed in memory, so two requests with
 * one key never both publish; the keys published are recorded by the
 * engine's durable store, in the same commit as their event. */

#define PUB_IDEM_KEY_MAX 255
#define PUB_IDEM_HASH_LEN 32
#define PUB_IDEM_SCOPE_MAX 63
/* A scoped key: "<scope length>:<scope>:<key>". */
#define PUB_IDEM_SCOPED_MAX (4 + PUB_IDEM_SCOPE_MAX + PUB_IDEM_KEY_MAX)

/* True when `key` is a usable Idempotency-Key: 1..255 visible ASCII bytes. */
bool pub_idem_key_valid(const char *key);

/* Writes the scoped key of `key` for the caller `scope` (NULL or "":
 * anonymous) into out: "<scope length>:<scope>:<key>", so that no two
 * (scope, key) pairs share one. It is what claims and the store hold.
 * Returns 0, or -1 when the scope is longer than PUB_IDEM_SCOPE_MAX. */
int pub_idem_scoped_key(const char *scope, const char *key, char out[PUB_IDEM_SCOPED_MAX + 1]);

/* The request hash a key is bound to: SHA-256 of topic, "\n" and data.
 * Returns 0, or -1 when out of memory. */
int pub_idem_hash(const char *topic, size_t topic_len, const char *data, size_t data_len,
                  unsigned char out[PUB_IDEM_HASH_LEN]);

/* Where recorded keys are found again: the durable store. */
struct pub_idem_store {
  /* Looks `key` (a scoped key) up among the keys recorded at or after min_ms. Returns 1
   * when found (hash and the first publish's id, seq and ms filled; an empty
   * id when the answer could not be read), 0 when not, -1 when the store
   * could not be read. Thread-safe. */
  int (*lookup)(void *arg, const char *key, int64_t min_ms, unsigned char hash[PUB_IDEM_HASH_LEN],
                struct sub_published *first);
  void *arg;
};

/* The keys in progress. */
struct pub_claims;

struct pub_claims *pub_claims_new(void);
void pub_claims_free(struct pub_claims *c);
/* Claims key for one publish. Returns true, or false when it is claimed
 * already (or out of memory). Thread-safe. */
bool pub_claims_take(struct pub_claims *c, const char *key);
/* Gives a claimed key back. */
void pub_claims_release(struct pub_claims *c, const char *key);
/* Keys claimed now (for tests). */
size_t pub_claims_count(struct pub_claims *c);

#endif
