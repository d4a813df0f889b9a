/* What the client port's unit tests share: a configuration, its auth (one
 * HS256 key, kid "hs"), a worker's index and broker, a session env, and
 * tokens signed for that key. Header-only: each test program includes it
 * once. */
#ifndef HERALD_TEST_CLIENT_FIXTURE_H
#define HERALD_TEST_CLIENT_FIXTURE_H

#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "broker.h"
#include "config.h"
#include "index.h"
#include "session.h"

struct fixture {
  struct gw_config cfg;
  struct gw_auth *auth;
  struct sub_broker *broker; /* one sink, skipping idle ones: interest is observable */
  struct sub_index *index;
  struct gw_session_env env;
};

/* The HS256 key of every fixture: 32 bytes of 'k'. */
#define FX_JWT_KEYS                                                                           \
  "\"jwt_keys\": [{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":\"hs\","                         \
  "\"k\":\"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s\"}]"

/* Loads config_text (a JSON object) over the defaults and builds the rest. */
static void fx_init(struct fixture *f, const char *config_text)
{
  char err[GW_CONFIG_ERR_MAX];
  memset(f, 0, sizeof(*f));
  gw_config_defaults(&f->cfg);
  if(gw_config_load_text(&f->cfg, config_text, strlen(config_text), "test", err))
    fail_msg("config: %s", err);
  gw_config_resolve(&f->cfg);
  f->auth = gw_auth_new(&f->cfg, err);
  if(!f->auth)
    fail_msg("auth: %s", err);
  struct sub_broker_cfg bc = {.nsinks = 1, .sink_max_events = 1024, .sink_max_bytes = 1 << 20,
                              .max_topics = 1024, .skip_idle_sinks = true};
  f->broker = sub_broker_new(&bc);
  f->index = sub_index_new();
  assert_non_null(f->broker);
  assert_non_null(f->index);
  f->env = (struct gw_session_env){
      .cfg = &f->cfg, .auth = f->auth, .fanout = sub_broker_fanout(f->broker), .index = f->index};
}

static void fx_free(struct fixture *f)
{
  sub_index_free(f->index);
  sub_broker_free(f->broker);
  gw_auth_free(f->auth);
  gw_config_release(&f->cfg);
}

/* A compact JWS of claims (a JSON object) for the fixture's key. */
static char *fx_token(const char *claims)
{
  cjose_err err;
  uint8_t secret[32];
  memset(secret, 'k', sizeof(secret));
  cjose_jwk_t *k = cjose_jwk_create_oct_spec(secret, sizeof(secret), &err);
  cjose_header_t *h = cjose_header_new(&err);
  assert_non_null(k);
  assert_non_null(h);
  assert_true(cjose_header_set(h, CJOSE_HDR_ALG, "HS256", &err));
  assert_true(cjose_header_set(h, CJOSE_HDR_KID, "hs", &err));
  cjose_jws_t *jws = cjose_jws_sign(k, h, (const uint8_t *)claims, strlen(claims), &err);
  const char *ser = NULL;
  assert_non_null(jws);
  assert_true(cjose_jws_export(jws, &ser, &err));
  char *out = strdup(ser);
  cjose_jws_release(jws);
  cjose_header_release(h);
  cjose_jwk_release(k);
  return out;
}

/* Claims for subject sub, expiring at exp, granting the JSON arrays
 * subscribe and publish. */
static void fx_claims(char *buf, size_t size, const char *sub, long long exp,
                      const char *subscribe, const char *publish)
{
  snprintf(buf, size, "{\"sub\":\"%s\",\"exp\":%lld,\"herald\":{\"subscribe\":%s,\"publish\":%s}}",
           sub, exp, subscribe, publish);
}

/* A verified identity for claims, as the handshake or an auth message
 * would give it. */
static void fx_identity(struct fixture *f, const char *claims, struct gw_identity *id)
{
  char why[GW_AUTH_WHY_MAX];
  char *t = fx_token(claims);
  if(gw_auth_verify(f->auth, t, strlen(t), (long long)time(NULL), id, why))
    fail_msg("token refused: %s", why);
  free(t);
}

/* Publishes {} on topic and returns how many events the sink got: 1 when
 * the broker knew of a subscription that can match it, else 0. */
static size_t fx_reaches_worker(struct fixture *f, const char *topic)
{
  struct sub_published out;
  assert_int_equal(sub_broker_publish(f->broker, topic, strlen(topic), "{}", 2, &out), SUB_OK);
  struct sub_batch batch = {0};
  size_t n = sub_fanout_take(sub_broker_fanout(f->broker), 0, &batch);
  for(size_t i = 0; i < n; i++)
    sub_event_unref(batch.ev[i]);
  batch.n = 0;
  sub_batch_free(&batch);
  return n;
}

#endif
