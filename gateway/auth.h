#ifndef HERALD_AUTH_H
#define HERALD_AUTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "rate.h"
#include "util/caps.h"

/* Who may do what (docs/security.md): API keys for the REST port, JWTs for
 * WebSocket clients, and the topic patterns each is granted. Built once from
 * the configuration; read-only afterwards but for each API key's bucket. */

#define GW_GRANTS_MAX 256   /* patterns per list, per key or token */
#define GW_AUTH_WHY_MAX 160 /* the reason a token or key is refused */

/* Topic patterns a caller may subscribe to and publish on. */
struct gw_grants {
  char **subscribe;
  size_t nsubscribe;
  char **publish;
  size_t npublish;
};

/* True when every topic `pattern` can match is granted (sub_patterns_cover). */
bool gw_grants_can_subscribe(const struct gw_grants *g, const char *pattern);
bool gw_grants_can_publish(const struct gw_grants *g, const char *topic);
void gw_grants_clear(struct gw_grants *g);

/* One API key of auth.api_keys. */
struct gw_api_key {
  char name[64];
  unsigned char hash[32]; /* SHA-256 of the key */
  struct gw_grants grants; /* publish, and subscribe: what GET /v1/events may read */
  bool admin;
  pthread_mutex_t lock; /* guards bucket: libmicrohttpd's threads share the key */
  struct gw_bucket bucket;
};

/* A verified token: who, until when, and what it grants. */
struct gw_identity {
  char sub[128];      /* the token's `sub` (printable ASCII only), "" if none */
  long long exp;      /* expiry, seconds since the epoch */
  struct gw_grants grants; /* anonymous grants and the token's `herald` claim */
};

struct gw_auth;

/* Builds the keys and grants of the configuration (the auth.* keys, and the
 * JWKS file it names). Returns NULL with a message naming the key in err. */
struct gw_auth *gw_auth_new(const struct gw_config *cfg, char err[GW_CONFIG_ERR_MAX]);
void gw_auth_free(struct gw_auth *a);

/* True when API keys are configured: the REST port then requires one. */
bool gw_auth_api_keys_required(const struct gw_auth *a);

/* The API key whose hash is that of `key` (all are compared, in constant
 * time), or NULL. */
struct gw_api_key *gw_auth_api_key(struct gw_auth *a, const char *key, size_t len);

/* True when JWT keys are configured. */
bool gw_auth_jwt_enabled(const struct gw_auth *a);

/* What a connection without a token may do. */
const struct gw_grants *gw_auth_anonymous(const struct gw_auth *a);

/* Verifies a compact JWS at time `now` (seconds since the epoch). Returns 0
 * with *id filled (release with gw_identity_clear), or -1 with the reason in
 * why; nothing of the token is ever put in why. */
int gw_auth_verify(const struct gw_auth *a, const char *token, size_t len, long long now,
                   struct gw_identity *id, char why[GW_AUTH_WHY_MAX]);
void gw_identity_clear(struct gw_identity *id);

/* Writes the lowercase hex SHA-256 of key into out. Returns 0 or -1. */
int gw_auth_hash_key(const char *key, size_t len, char out[65]);

#endif
