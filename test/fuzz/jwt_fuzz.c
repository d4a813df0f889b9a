/*
 * jwt_fuzz.c - libFuzzer harness for token verification (gateway/auth.c).
 *
 * The verifier has an HS256, an RS256 and an ES256 key; the HS256 secret is
 * fixed here, so the seed corpus can hold tokens it accepts. The first byte
 * of an input picks what the rest is:
 *   0: a token as a client would send it. Accepting one that this harness
 *      did not sign is a forgery: the harness aborts.
 *   1: a claims payload, signed here with the HS256 key (kid "hs"): the
 *      claims checks and the herald claim get fuzzed past the signature.
 *   2: "header JSON\npayload": the protected header is fuzzed too (alg,
 *      kid, crit...), signed with the HS256 key when cjose agrees to.
 * Whatever the input, a verdict must come with a reason or an identity
 * whose grants are valid patterns, and the same input must get the same
 * verdict twice. A token has one spelling: when one the harness signed is
 * accepted, every respelling of the unused low bits of a part's last
 * base64url character is refused.
 */
#include <cjose/cjose.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "topic.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000LL /* the verifier's clock: 2027-01-15 */

/* The HS256 secret: 32 bytes of 'k'; its JWK "k" is their base64url. */
static const char hs_jwk_k[] = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s";

static struct gw_auth *auth;
static cjose_jwk_t *hs_key;
static struct gw_config cfg;

static void broken(const char *what)
{
  fprintf(stderr, "jwt_fuzz: invariant broken: %s\n", what);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  cjose_err err;
  cjose_jwk_t *rsa = cjose_jwk_create_RSA_random(2048, NULL, 0, &err);
  cjose_jwk_t *ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
  char *rsa_json = rsa ? cjose_jwk_to_json(rsa, false, &err) : NULL;
  char *ec_json = ec ? cjose_jwk_to_json(ec, false, &err) : NULL;
  if(!rsa_json || !ec_json)
    broken("cannot make the RS256 and ES256 keys");
  char text[8192];
  snprintf(text, sizeof(text),
           "{\"auth\": {\"jwt_keys\": ["
           "{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":\"hs\",\"k\":\"%s\"},"
           "%.*s,\"alg\":\"RS256\",\"kid\":\"rs\"},"
           "%.*s,\"alg\":\"ES256\",\"kid\":\"es\"}],"
           "\"issuer\": \"https://issuer.example\", \"audience\": \"herald\", \"leeway_s\": 30,"
           "\"anonymous_subscribe\": [\"public.>\"], \"anonymous_publish\": []}}",
           hs_jwk_k, (int)strlen(rsa_json) - 1, rsa_json, (int)strlen(ec_json) - 1, ec_json);
  char msg[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&cfg);
  if(gw_config_load_text(&cfg, text, strlen(text), "jwt_fuzz", msg) ||
     !(auth = gw_auth_new(&cfg, msg))) {
    fprintf(stderr, "jwt_fuzz: %s\n", msg);
    broken("the verifier's configuration does not load");
  }
  uint8_t secret[32];
  memset(secret, 'k', sizeof(secret));
  hs_key = cjose_jwk_create_oct_spec(secret, sizeof(secret), &err);
  if(!hs_key)
    broken("cannot make the HS256 signing key");
  free(rsa_json);
  free(ec_json);
  cjose_jwk_release(rsa);
  cjose_jwk_release(ec);
  return 0;
}

/* Signs payload with the HS256 key under `header` (taken). Returns the
 * compact token (malloc'd) or NULL when cjose refuses the header. */
static char *sign(json_t *header, const uint8_t *payload, size_t len)
{
  cjose_err err;
  char *out = NULL;
  cjose_jws_t *jws = cjose_jws_sign(hs_key, (cjose_header_t *)header, payload, len, &err);
  const char *ser = NULL;
  if(jws && cjose_jws_export(jws, &ser, &err) && ser)
    out = strdup(ser);
  cjose_jws_release(jws);
  json_decref(header);
  return out;
}

static void check_identity(const struct gw_identity *id)
{
  const struct gw_grants *g = &id->grants;
  if(g->nsubscribe > 2 * GW_GRANTS_MAX || g->npublish > 2 * GW_GRANTS_MAX)
    broken("more grants than the limit");
  for(size_t i = 0; i < g->nsubscribe; i++)
    if(!sub_pattern_valid(g->subscribe[i], strlen(g->subscribe[i]), NULL))
      broken("an invalid subscribe pattern was granted");
  for(size_t i = 0; i < g->npublish; i++)
    if(!sub_pattern_valid(g->publish[i], strlen(g->publish[i]), NULL))
      broken("an invalid publish pattern was granted");
  if(id->exp + 30 < NOW)
    broken("an expired token was accepted");
  for(const char *s = id->sub; *s; s++)
    if(*s <= ' ' || *s >= 127 || *s == '"' || *s == '\\')
      broken("sub holds a character unsafe for the log");
}

/* Verifies twice; returns the verdict. */
static int verify(const char *token, size_t len)
{
  struct gw_identity id;
  char why[GW_AUTH_WHY_MAX];
  int rc = gw_auth_verify(auth, token, len, NOW, &id, why);
  if(rc == 0) {
    check_identity(&id);
    gw_identity_clear(&id);
  }
  else if(!why[0] || strlen(why) >= GW_AUTH_WHY_MAX)
    broken("a refusal without a reason");
  else if(len >= 16 && memmem(why, strlen(why), token, 16))
    broken("the reason quotes the token");
  struct gw_identity again;
  int rc2 = gw_auth_verify(auth, token, len, NOW, &again, why);
  if(rc2 == 0)
    gw_identity_clear(&again);
  if(rc != rc2)
    broken("two verdicts for one token");
  return rc;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Aborts when another spelling of the accepted token (a part's last
 * character with its unused bits set: the same bytes to a lax decoder) is
 * accepted too. token is NUL-terminated. */
static void check_one_spelling(const char *token, size_t len)
{
  char *copy = malloc(len + 1);
  if(!copy)
    return;
  memcpy(copy, token, len + 1);
  for(size_t start = 0, i = 0; i <= len; i++) {
    if(i < len && token[i] != '.')
      continue;
    size_t n = i - start;
    int unused = n % 4 == 2 ? 0x0f : n % 4 == 3 ? 0x03 : 0;
    const char *at = unused ? strchr(b64url, token[i - 1]) : NULL;
    for(int bits = 1; at && bits <= unused; bits++) {
      copy[i - 1] = b64url[(at - b64url) | bits];
      if(verify(copy, len) == 0)
        broken("a token was accepted in a second spelling (unused base64url bits set)");
    }
    if(at)
      copy[i - 1] = token[i - 1];
    start = i + 1;
  }
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  uint8_t mode = data[0] % 3;
  data++;
  size--;
  if(mode == 0) {
    if(verify((const char *)data, size) == 0)
      broken("a token the harness did not sign was accepted (forgery)");
    return 0;
  }
  json_t *header;
  const uint8_t *payload = data;
  size_t plen = size;
  if(mode == 1)
    header = json_pack("{s:s, s:s}", "alg", "HS256", "kid", "hs");
  else {
    const uint8_t *nl = memchr(data, '\n', size);
    if(!nl)
      return 0;
    header = json_loadb((const char *)data, (size_t)(nl - data), JSON_DECODE_ANY, NULL);
    if(!json_is_object(header)) {
      json_decref(header);
      return 0;
    }
    payload = nl + 1;
    plen = size - (size_t)(nl - data) - 1;
  }
  char *token = sign(header, payload, plen);
  if(token) {
    if(verify(token, strlen(token)) == 0)
      check_one_spelling(token, strlen(token));
    free(token);
  }
  return 0;
}
