/* Authentication (docs/security.md): the auth.* configuration and the errors
 * a user sees for it (each naming the key), API keys found by their SHA-256,
 * JWTs verified with keys pinned to one algorithm, and the topic grants a
 * caller ends up with. Tokens are signed here with cjose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"

#define NOW 1700000000LL /* the verification time of every token here */

/* Keys generated once for the whole run (RSA generation is slow). */
static struct {
  cjose_jwk_t *hs;       /* oct, 256 bits */
  cjose_jwk_t *hs_other; /* oct, 256 bits, not configured */
  cjose_jwk_t *hs_short; /* oct, 248 bits: too short */
  cjose_jwk_t *rs;       /* RSA 2048 */
  cjose_jwk_t *rs_other; /* RSA 2048, not configured */
  cjose_jwk_t *rs_small; /* RSA 1024: too short */
  cjose_jwk_t *ec;       /* EC P-256 */
  cjose_jwk_t *ec384;    /* EC P-384: not for ES256 */
} K;

static int setup_keys(void **state)
{
  (void)state;
  cjose_err e;
  static const uint8_t e65537[] = {0x01, 0x00, 0x01};
  K.hs = cjose_jwk_create_oct_random(256, &e);
  K.hs_other = cjose_jwk_create_oct_random(256, &e);
  K.hs_short = cjose_jwk_create_oct_random(248, &e);
  K.rs = cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &e);
  K.rs_other = cjose_jwk_create_RSA_random(2048, e65537, sizeof(e65537), &e);
  K.rs_small = cjose_jwk_create_RSA_random(1024, e65537, sizeof(e65537), &e);
  K.ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &e);
  K.ec384 = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_384, &e);
  return K.hs && K.hs_other && K.hs_short && K.rs && K.rs_other && K.rs_small && K.ec && K.ec384
             ? 0
             : -1;
}

static int teardown_keys(void **state)
{
  (void)state;
  cjose_jwk_t **all[] = {&K.hs,       &K.hs_other, &K.hs_short, &K.rs,
                         &K.rs_other, &K.rs_small, &K.ec,       &K.ec384};
  for(size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    cjose_jwk_release(*all[i]);
    *all[i] = NULL;
  }
  return 0;
}

/* ---- helpers: configuration --------------------------------------------- */

/* The JWK of k as a JSON object, with "alg" and "kid" (NULL: none) added:
 * the public part for RSA and EC, the secret for oct keys. */
static json_t *jwk_json(cjose_jwk_t *k, const char *alg, const char *kid)
{
  cjose_err e;
  bool secret = cjose_jwk_get_kty(k, &e) == CJOSE_JWK_KTY_OCT;
  char *text = cjose_jwk_to_json(k, secret, &e);
  assert_non_null(text);
  json_t *j = json_loads(text, 0, NULL);
  cjose_get_dealloc()(text);
  assert_non_null(j);
  if(alg)
    json_object_set_new(j, "alg", json_string(alg));
  if(kid)
    json_object_set_new(j, "kid", json_string(kid));
  return j;
}

/* Loads {"auth": auth} over the defaults, as a config file would be, then
 * builds the gw_auth. Takes auth. Returns NULL with err on either error. */
static struct gw_auth *auth_from_json(json_t *auth, char err[GW_CONFIG_ERR_MAX])
{
  json_t *root = json_pack("{s:o}", "auth", auth);
  assert_non_null(root);
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  assert_non_null(text);
  struct gw_config cfg;
  struct gw_auth *a = NULL;
  gw_config_defaults(&cfg);
  err[0] = '\0';
  if(gw_config_load_text(&cfg, text, strlen(text), "test.json", err) == 0)
    a = gw_auth_new(&cfg, err);
  gw_config_release(&cfg);
  free(text);
  return a;
}

/* The same from the text of the "auth" object. */
static struct gw_auth *auth_from(const char *auth_text, char err[GW_CONFIG_ERR_MAX])
{
  json_error_t jerr;
  json_t *auth = json_loads(auth_text, 0, &jerr);
  if(!auth)
    fail_msg("test bug: %s: %s", auth_text, jerr.text);
  return auth_from_json(auth, err);
}

/* Builds a gw_auth that must load; fails the test with the error otherwise. */
static struct gw_auth *must_load(json_t *auth)
{
  char err[GW_CONFIG_ERR_MAX];
  char *text = json_dumps(auth, JSON_COMPACT);
  struct gw_auth *a = auth_from_json(auth, err);
  if(!a)
    fail_msg("%s: %s", text, err);
  free(text);
  return a;
}

static void check_err(const char *what, const char *err, const char *piece1, const char *piece2)
{
  if(!err[0])
    fail_msg("%s: no error message", what);
  if(strlen(err) >= GW_CONFIG_ERR_MAX)
    fail_msg("%s: unterminated error", what);
  if(piece1 && !strstr(err, piece1))
    fail_msg("%s: error \"%s\" does not mention \"%s\"", what, err, piece1);
  if(piece2 && !strstr(err, piece2))
    fail_msg("%s: error \"%s\" does not mention \"%s\"", what, err, piece2);
}

/* Asserts that the configuration {"auth": auth} is refused, at load or by
 * gw_auth_new, with an error naming the key (piece1) and the reason
 * (piece2, or NULL). Takes auth. */
static void assert_auth_fails_json(json_t *auth, const char *piece1, const char *piece2)
{
  char err[GW_CONFIG_ERR_MAX];
  char *text = json_dumps(auth, JSON_COMPACT);
  struct gw_auth *a = auth_from_json(auth, err);
  if(a) {
    gw_auth_free(a);
    fail_msg("accepted, but should have failed: %s", text);
  }
  check_err(text, err, piece1, piece2);
  free(text);
}

static void assert_auth_fails(const char *auth_text, const char *piece1, const char *piece2)
{
  json_error_t jerr;
  json_t *auth = json_loads(auth_text, 0, &jerr);
  if(!auth)
    fail_msg("test bug: %s: %s", auth_text, jerr.text);
  assert_auth_fails_json(auth, piece1, piece2);
}

/* Calls gw_auth_new on a configuration whose auth.api_keys (and
 * auth.jwt_keys) are set directly, past the config schema: gw_auth_new's own
 * checks. Returns it or NULL with err. */
static struct gw_auth *auth_direct(const char *api_keys, json_t *jwt_keys,
                                   char err[GW_CONFIG_ERR_MAX])
{
  struct gw_config cfg;
  gw_config_defaults(&cfg);
  if(api_keys) {
    json_decref(cfg.auth_api_keys);
    cfg.auth_api_keys = json_loads(api_keys, 0, NULL);
    assert_non_null(cfg.auth_api_keys);
  }
  if(jwt_keys) {
    json_decref(cfg.auth_jwt_keys);
    cfg.auth_jwt_keys = jwt_keys;
  }
  err[0] = '\0';
  struct gw_auth *a = gw_auth_new(&cfg, err);
  gw_config_release(&cfg);
  return a;
}

static void assert_direct_fails(const char *api_keys, const char *piece1, const char *piece2)
{
  char err[GW_CONFIG_ERR_MAX];
  struct gw_auth *a = auth_direct(api_keys, NULL, err);
  if(a) {
    gw_auth_free(a);
    fail_msg("gw_auth_new accepted api_keys %s", api_keys);
  }
  check_err(api_keys, err, piece1, piece2);
}

/* ---- helpers: tokens ---------------------------------------------------- */

/* A compact JWS of `payload` signed with k, its header naming alg and kid
 * (NULL: none) and, when not NULL, `raw_name`: `raw_value` (JSON text). */
static char *sign_hdr(cjose_jwk_t *k, const char *alg, const char *kid, const char *payload,
                      const char *raw_name, const char *raw_value)
{
  cjose_err e;
  cjose_header_t *h = cjose_header_new(&e);
  assert_non_null(h);
  assert_true(cjose_header_set(h, CJOSE_HDR_ALG, alg, &e));
  if(kid)
    assert_true(cjose_header_set(h, CJOSE_HDR_KID, kid, &e));
  if(raw_name) {
    /* cjose_header_set_raw crashes in cjose 0.6.2; a header is a json_t */
    json_t *v = json_loads(raw_value, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_int_equal(json_object_set_new((json_t *)h, raw_name, v), 0);
  }
  cjose_jws_t *jws = cjose_jws_sign(k, h, (const uint8_t *)payload, strlen(payload), &e);
  if(!jws)
    fail_msg("cjose_jws_sign %s: %s", alg, e.message);
  const char *ser = NULL;
  assert_true(cjose_jws_export(jws, &ser, &e));
  char *out = strdup(ser);
  assert_non_null(out);
  cjose_jws_release(jws);
  cjose_header_release(h);
  return out;
}

static char *sign(cjose_jwk_t *k, const char *alg, const char *kid, const char *payload)
{
  return sign_hdr(k, alg, kid, payload, NULL, NULL);
}

static char *b64url(const char *s, size_t len)
{
  cjose_err e;
  char *out = NULL;
  size_t outlen = 0;
  assert_true(cjose_base64url_encode((const uint8_t *)s, len, &out, &outlen, &e));
  char *copy = strndup(out, outlen);
  cjose_get_dealloc()(out);
  return copy;
}

/* header.payload.sig assembled by hand (no signing). */
static char *hand_token(const char *header, const char *payload, const char *sig)
{
  char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
  size_t n = strlen(h) + strlen(p) + strlen(sig) + 3;
  char *t = malloc(n);
  assert_non_null(t);
  snprintf(t, n, "%s.%s.%s", h, p, sig);
  free(h);
  free(p);
  return t;
}

/* Claims text: {"exp": NOW+600, <extra>} */
static const char *claims(const char *extra)
{
  static char buf[65536];
  snprintf(buf, sizeof(buf), "{\"exp\":%lld%s%s}", NOW + 600, extra && *extra ? "," : "",
           extra ? extra : "");
  return buf;
}

/* Asserts why says nothing of the token: no piece of it of 6 bytes or more. */
static void assert_why_clean(const char *why, const char *token, size_t len)
{
  for(size_t i = 0; i + 6 <= len; i++) {
    char piece[7];
    memcpy(piece, token + i, 6);
    piece[6] = '\0';
    if(memchr(piece, '\0', 6))
      continue;
    if(strstr(why, piece))
      fail_msg("why \"%s\" holds \"%s\" of the token", why, piece);
  }
}

static void assert_accepted_len(const struct gw_auth *a, const char *token, size_t len,
                                long long now, struct gw_identity *id)
{
  char why[GW_AUTH_WHY_MAX];
  memset(id, 0, sizeof(*id));
  if(gw_auth_verify(a, token, len, now, id, why) != 0)
    fail_msg("token refused: %s", why);
}

static void assert_accepted(const struct gw_auth *a, const char *token, long long now,
                            struct gw_identity *id)
{
  assert_accepted_len(a, token, strlen(token), now, id);
}

/* Asserts that verifying fails with a reason holding `piece` (or any reason
 * when NULL) and nothing of the token, and leaves nothing to free. */
static void assert_refused_len(const struct gw_auth *a, const char *token, size_t len,
                               long long now, const char *piece)
{
  char why[GW_AUTH_WHY_MAX];
  struct gw_identity id;
  memset(&id, 0, sizeof(id));
  memset(why, 'x', sizeof(why));
  if(gw_auth_verify(a, token, len, now, &id, why) == 0) {
    gw_identity_clear(&id);
    fail_msg("token accepted, want refused (%s)", piece ? piece : "any reason");
  }
  if(!memchr(why, '\0', sizeof(why)) || !why[0])
    fail_msg("why is empty or unterminated");
  if(piece && !strstr(why, piece))
    fail_msg("why \"%s\" does not mention \"%s\"", why, piece);
  assert_why_clean(why, token, len);
  assert_null(id.grants.subscribe);
  assert_null(id.grants.publish);
  assert_int_equal(id.grants.nsubscribe, 0);
  assert_int_equal(id.grants.npublish, 0);
}

static void assert_refused(const struct gw_auth *a, const char *token, long long now,
                           const char *piece)
{
  assert_refused_len(a, token, strlen(token), now, piece);
}

static void assert_list(char **got, size_t n, const char *const *want, size_t nwant)
{
  if(n != nwant)
    fail_msg("%zu patterns, want %zu", n, nwant);
  for(size_t i = 0; i < n; i++)
    assert_string_equal(got[i], want[i]);
}

/* The standard JWT configuration: one key of each algorithm, with kids, and
 * anonymous may subscribe to public.> and publish nothing. */
static struct gw_auth *jwt_auth(const char *extra_auth_json)
{
  json_t *auth = json_pack("{s:[o,o,o], s:[s], s:[]}", "jwt_keys", jwk_json(K.hs, "HS256", "h1"),
                           jwk_json(K.rs, "RS256", "r1"), jwk_json(K.ec, "ES256", "e1"),
                           "anonymous_subscribe", "public.>", "anonymous_publish");
  assert_non_null(auth);
  if(extra_auth_json) {
    json_t *extra = json_loads(extra_auth_json, 0, NULL);
    assert_non_null(extra);
    json_object_update(auth, extra);
    json_decref(extra);
  }
  return must_load(auth);
}

/* ---- configuration errors ----------------------------------------------- */

#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_api_key_config_errors(void **state)
{
  (void)state;
  /* as a config file: each error names the key */
  assert_auth_fails("{\"api_keys\":[{\"sha256\":\"" H_ABC "\"}]}", "auth.api_keys", "name");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"\",\"sha256\":\"" H_ABC "\"}]}", "auth.api_keys",
                    "name");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "0\"}]}", "auth.api_keys",
                    "sha256");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"abc\"}]}", "auth.api_keys",
                    "sha256");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\"}]}", "auth.api_keys", "sha256");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":"
                    "\"ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}",
                    "auth.api_keys", "sha256");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "\"},"
                    "{\"name\":\"a\",\"sha256\":\"" H_EMPTY "\"}]}",
                    "auth.api_keys[1].name", "twice");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "\"},"
                    "{\"name\":\"b\",\"sha256\":\"" H_ABC "\"}]}",
                    "auth.api_keys[1].sha256", "\"a\"");
  /* the same hash in capitals is the same key */
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "\"},"
                    "{\"name\":\"b\",\"sha256\":"
                    "\"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"}]}",
                    "auth.api_keys[1].sha256", NULL);
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"admin\":\"yes\"}]}",
                    "auth.api_keys", "admin");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"admin\":1}]}",
                    "auth.api_keys", "admin");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC
                    "\",\"publish\":[\"a..b\"]}]}",
                    "auth.api_keys", "publish");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC
                    "\",\"publish\":[\"ok.*\",\"a.>.b\"]}]}",
                    "auth.api_keys", "publish");
  assert_auth_fails("{\"api_keys\":[{\"name\":\"a\",\"sha256\":\"" H_ABC
                    "\",\"publish\":\"a.b\"}]}",
                    "auth.api_keys", "publish");

  /* past the schema, gw_auth_new checks the same things itself */
  assert_direct_fails("[{\"sha256\":\"" H_ABC "\"}]", "auth.api_keys[0].name", NULL);
  assert_direct_fails("[{\"name\":\"\",\"sha256\":\"" H_ABC "\"}]", "auth.api_keys[0].name", NULL);
  assert_direct_fails("[{\"name\":\"0123456789012345678901234567890123456789012345678901234567890"
                      "123\",\"sha256\":\"" H_ABC "\"}]",
                      "auth.api_keys[0].name", "63");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\"},{\"name\":\"b\"}]",
                      "auth.api_keys[1].sha256", "64 hex");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "00\"}]", "auth.api_keys[0].sha256",
                      "64 hex");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":"
                      "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aZ\"}]",
                      "auth.api_keys[0].sha256", "hex");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":"
                      "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2001 ad\"}]",
                      "auth.api_keys[0].sha256", "hex");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"admin\":\"true\"}]",
                      "auth.api_keys[0].admin", NULL);
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"publish\":[\"a..b\"]}]",
                      "auth.api_keys[0].publish[0]", NULL);
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"publish\":[\"x\",7]}]",
                      "auth.api_keys[0].publish[1]", "string");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"rate_per_s\":-1}]",
                      "auth.api_keys[0]", "rate_per_s");
  assert_direct_fails("[{\"name\":\"a\",\"sha256\":\"" H_ABC "\",\"burst\":0}]", "auth.api_keys[0]",
                      "burst");
}

static void test_jwt_key_config_errors(void **state)
{
  (void)state;
  /* every key names its algorithm */
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, NULL, NULL)),
                         "auth.jwt_keys", "alg");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, "none", NULL)),
                         "auth.jwt_keys[0].alg", NULL);
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, "HS512", NULL)),
                         "auth.jwt_keys[0].alg", "HS256");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.rs, "PS256", NULL)),
                         "auth.jwt_keys[0].alg", NULL);
  assert_auth_fails_json(json_pack("{s:[o,o]}", "jwt_keys", jwk_json(K.hs, "HS256", NULL),
                                   jwk_json(K.ec, "hs256", NULL)),
                         "auth.jwt_keys[1].alg", NULL);
  /* the key type must be that of the algorithm */
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.rs, "HS256", NULL)),
                         "auth.jwt_keys[0].kty", "oct");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, "RS256", NULL)),
                         "auth.jwt_keys[0].kty", "RSA");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.rs, "ES256", NULL)),
                         "auth.jwt_keys[0].kty", "EC");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.ec, "RS256", NULL)),
                         "auth.jwt_keys[0].kty", "RSA");
  /* strength */
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs_short, "HS256", NULL)),
                         "auth.jwt_keys[0]", "32 bytes");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.rs_small, "RS256", NULL)),
                         "auth.jwt_keys[0]", "2048");
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.ec384, "ES256", NULL)),
                         "auth.jwt_keys[0]", "P-256");
  /* kids are unique and short */
  assert_auth_fails_json(json_pack("{s:[o,o]}", "jwt_keys", jwk_json(K.hs, "HS256", "same"),
                                   jwk_json(K.rs, "RS256", "same")),
                         "auth.jwt_keys[1].kid", "twice");
  char longkid[129];
  memset(longkid, 'k', 128);
  longkid[128] = '\0';
  assert_auth_fails_json(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, "HS256", longkid)),
                         "auth.jwt_keys[0].kid", NULL);
  /* not a key at all */
  assert_auth_fails(
      "{\"jwt_keys\":[{\"kty\":\"RSA\",\"alg\":\"RS256\",\"n\":\"!!\",\"e\":\"AQAB\"}]}",
      "auth.jwt_keys[0]", NULL);
  assert_auth_fails("{\"jwt_keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\"}]}", "auth.jwt_keys[0]",
                    NULL);
  assert_auth_fails("{\"jwt_keys\":[\"HS256\"]}", "auth.jwt_keys", NULL);

  /* past the schema: not an object, no alg */
  char err[GW_CONFIG_ERR_MAX];
  struct gw_auth *a = auth_direct(NULL, json_pack("[s]", "k"), err);
  assert_null(a);
  check_err("jwt_keys [\"k\"]", err, "auth.jwt_keys[0]", "JWK");
  a = auth_direct(NULL, json_pack("[o]", jwk_json(K.hs, NULL, NULL)), err);
  assert_null(a);
  check_err("jwt key without alg", err, "auth.jwt_keys[0].alg", NULL);

  /* what is accepted: one key of each algorithm, kids or none, 32 bytes */
  a = must_load(json_pack("{s:[o,o,o,o]}", "jwt_keys", jwk_json(K.hs, "HS256", NULL),
                          jwk_json(K.rs, "RS256", "r"), jwk_json(K.ec, "ES256", "e"),
                          jwk_json(K.hs_other, "HS256", NULL)));
  assert_true(gw_auth_jwt_enabled(a));
  assert_false(gw_auth_api_keys_required(a));
  gw_auth_free(a);
}

/* ---- the JWKS file ------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
}

/* {"jwks_file": path} plus the anonymous lists */
static json_t *jwks_auth(const char *path)
{
  return json_pack("{s:s}", "jwks_file", path);
}

static void test_jwks_file(void **state)
{
  (void)state;
  char path[128];
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/herald-auth-test-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));

  /* missing */
  snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "missing.json");

  /* not JSON */
  snprintf(path, sizeof(path), "%s/jwks.json", tmpdir);
  write_file(path, "{\"keys\": [");
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "jwks.json");

  /* JSON, but not {"keys": [...]} */
  write_file(path, "{\"key\": []}");
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "keys");
  write_file(path, "[]");
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "keys");
  write_file(path, "{\"keys\": {}}");
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "keys");

  /* a bad key names the file and its index */
  json_t *doc = json_pack("{s:[o,o]}", "keys", jwk_json(K.rs, "RS256", "a"),
                          jwk_json(K.rs_small, "RS256", "b"));
  char *text = json_dumps(doc, 0);
  write_file(path, text);
  free(text);
  json_decref(doc);
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "keys[1]");

  /* a kid of the file may not repeat one of jwt_keys */
  doc = json_pack("{s:[o]}", "keys", jwk_json(K.rs, "RS256", "dup"));
  text = json_dumps(doc, 0);
  write_file(path, text);
  free(text);
  json_decref(doc);
  json_t *auth = jwks_auth(path);
  json_object_set_new(auth, "jwt_keys", json_pack("[o]", jwk_json(K.hs, "HS256", "dup")));
  assert_auth_fails_json(auth, "kid", "twice");

  /* keys for encryption are skipped, "use":"sig" and no use are taken */
  json_t *enc = jwk_json(K.rs_small, "RSA-OAEP", "enc-1"); /* would fail if read */
  json_object_set_new(enc, "use", json_string("enc"));
  json_t *sig = jwk_json(K.rs, "RS256", "sig-1");
  json_object_set_new(sig, "use", json_string("sig"));
  doc = json_pack("{s:[o,o,o]}", "keys", enc, sig, jwk_json(K.ec, "ES256", "sig-2"));
  text = json_dumps(doc, 0);
  write_file(path, text);
  free(text);
  json_decref(doc);
  struct gw_auth *a = must_load(jwks_auth(path));
  assert_true(gw_auth_jwt_enabled(a));
  struct gw_identity id;
  char *tok = sign(K.rs, "RS256", "sig-1", claims(NULL));
  assert_accepted(a, tok, NOW, &id);
  gw_identity_clear(&id);
  free(tok);
  tok = sign(K.ec, "ES256", NULL, claims(NULL));
  assert_accepted(a, tok, NOW, &id);
  gw_identity_clear(&id);
  free(tok);
  tok = sign(K.rs, "RS256", "enc-1", claims(NULL));
  assert_refused(a, tok, NOW, "kid");
  free(tok);
  gw_auth_free(a);

  /* only an encryption key: no signing key, refused (anonymous null would
   * otherwise grant everything, the file notwithstanding) */
  enc = jwk_json(K.rs, "RS256", NULL);
  json_object_set_new(enc, "use", json_string("enc"));
  doc = json_pack("{s:[o]}", "keys", enc);
  text = json_dumps(doc, 0);
  write_file(path, text);
  free(text);
  json_decref(doc);
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "no signing key");
  write_file(path, "{\"keys\": []}");
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "no signing key");


  /* a JWKS key without alg */
  doc = json_pack("{s:[o]}", "keys", jwk_json(K.ec, NULL, NULL));
  text = json_dumps(doc, 0);
  write_file(path, text);
  free(text);
  json_decref(doc);
  assert_auth_fails_json(jwks_auth(path), "auth.jwks_file", "alg");

  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(tmpdir), 0);
}

/* ---- API keys ----------------------------------------------------------- */

static void test_hash_key(void **state)
{
  (void)state;
  char out[65];
  memset(out, 'x', sizeof(out));
  assert_int_equal(gw_auth_hash_key("abc", 3, out), 0);
  assert_string_equal(out, H_ABC);
  assert_int_equal(gw_auth_hash_key("", 0, out), 0);
  assert_string_equal(out, H_EMPTY);
  /* only len bytes count */
  assert_int_equal(gw_auth_hash_key("abcdef", 3, out), 0);
  assert_string_equal(out, H_ABC);
  assert_int_equal(gw_auth_hash_key("abc\0", 4, out), 0);
  assert_string_not_equal(out, H_ABC);
}

static void test_api_keys(void **state)
{
  (void)state;
  static const char alpha[] = "alpha-secret-key-0001", beta[] = "beta-secret-key-00002";
  char ha[65], hb[65];
  assert_int_equal(gw_auth_hash_key(alpha, strlen(alpha), ha), 0);
  assert_int_equal(gw_auth_hash_key(beta, strlen(beta), hb), 0);
  for(char *p = hb; *p; p++) /* capitals are the same hash */
    if(*p >= 'a' && *p <= 'f')
      *p = (char)(*p - 'a' + 'A');
  json_t *auth = json_pack("{s:[{s:s, s:s}, {s:s, s:s, s:[s,s], s:b, s:i, s:i}]}", "api_keys",
                           "name", "alpha", "sha256", ha, "name", "beta", "sha256", hb, "publish",
                           "orders.*", "chat.lobby", "admin", 1, "rate_per_s", 5, "burst", 7);
  struct gw_auth *a = must_load(auth);
  assert_true(gw_auth_api_keys_required(a));
  assert_false(gw_auth_jwt_enabled(a));

  struct gw_api_key *k = gw_auth_api_key(a, alpha, strlen(alpha));
  assert_non_null(k);
  assert_string_equal(k->name, "alpha");
  assert_false(k->admin);
  assert_int_equal(k->grants.npublish, 0);
  assert_false(gw_grants_can_publish(&k->grants, "orders.new"));
  /* the API defaults: 1000 a second, 2000 saved up */
  assert_true(k->bucket.rate == 1000 && k->bucket.burst == 2000);

  k = gw_auth_api_key(a, beta, strlen(beta));
  assert_non_null(k);
  assert_string_equal(k->name, "beta");
  assert_true(k->admin);
  static const char *const beta_pub[] = {"orders.*", "chat.lobby"};
  assert_list(k->grants.publish, k->grants.npublish, beta_pub, 2);
  assert_true(gw_grants_can_publish(&k->grants, "orders.new"));
  assert_true(gw_grants_can_publish(&k->grants, "chat.lobby"));
  assert_false(gw_grants_can_publish(&k->grants, "chat.other"));
  assert_false(gw_grants_can_publish(&k->grants, "orders.new.x"));
  assert_true(k->bucket.rate == 5 && k->bucket.burst == 7);

  /* wrong keys: none found */
  assert_null(gw_auth_api_key(a, "alpha-secret-key-0002", 21));
  assert_null(gw_auth_api_key(a, alpha, strlen(alpha) - 1));
  assert_null(gw_auth_api_key(a, "alpha-secret-key-00011", 22));
  assert_null(gw_auth_api_key(a, "", 0));
  assert_null(gw_auth_api_key(a, "ALPHA-SECRET-KEY-0001", 21));
  /* the hash itself is not the key */
  assert_null(gw_auth_api_key(a, ha, 64));
  /* only len bytes are read */
  assert_non_null(gw_auth_api_key(a, "alpha-secret-key-0001-and-more", 21));
  gw_auth_free(a);

  /* none configured: none found, none required */
  char err[GW_CONFIG_ERR_MAX];
  a = auth_from("{}", err);
  assert_non_null(a);
  assert_false(gw_auth_api_keys_required(a));
  assert_null(gw_auth_api_key(a, alpha, strlen(alpha)));
  gw_auth_free(a);
}

/* ---- anonymous ---------------------------------------------------------- */

static void test_anonymous(void **state)
{
  (void)state;
  char err[GW_CONFIG_ERR_MAX];
  static const char *const all[] = {">"};

  /* null and no JWT keys: everything */
  struct gw_auth *a = auth_from("{\"anonymous_subscribe\":null,\"anonymous_publish\":null}", err);
  assert_non_null(a);
  const struct gw_grants *g = gw_auth_anonymous(a);
  assert_list(g->subscribe, g->nsubscribe, all, 1);
  assert_list(g->publish, g->npublish, all, 1);
  assert_true(gw_grants_can_subscribe(g, ">"));
  assert_true(gw_grants_can_publish(g, "any.topic"));
  gw_auth_free(a);
  a = auth_from("{}", err); /* the default is null */
  assert_non_null(a);
  g = gw_auth_anonymous(a);
  assert_list(g->subscribe, g->nsubscribe, all, 1);
  assert_list(g->publish, g->npublish, all, 1);
  gw_auth_free(a);

  /* null with JWT keys: nothing */
  a = must_load(
      json_pack("{s:[o], s:n}", "jwt_keys", jwk_json(K.hs, "HS256", NULL), "anonymous_subscribe"));
  g = gw_auth_anonymous(a);
  assert_int_equal(g->nsubscribe, 0);
  assert_int_equal(g->npublish, 0);
  assert_false(gw_grants_can_subscribe(g, "a"));
  assert_false(gw_grants_can_publish(g, "a"));
  gw_auth_free(a);

  /* explicit lists are used as given, with or without JWT keys */
  static const char *const sub[] = {"public.>", "news.*"}, *const pub[] = {"chat.lobby"};
  a = auth_from("{\"anonymous_subscribe\":[\"public.>\",\"news.*\"],"
                "\"anonymous_publish\":[\"chat.lobby\"]}",
                err);
  assert_non_null(a);
  g = gw_auth_anonymous(a);
  assert_list(g->subscribe, g->nsubscribe, sub, 2);
  assert_list(g->publish, g->npublish, pub, 1);
  gw_auth_free(a);
  a = must_load(json_pack("{s:[o], s:[s,s], s:[s]}", "jwt_keys", jwk_json(K.hs, "HS256", NULL),
                          "anonymous_subscribe", "public.>", "news.*", "anonymous_publish",
                          "chat.lobby"));
  g = gw_auth_anonymous(a);
  assert_list(g->subscribe, g->nsubscribe, sub, 2);
  assert_list(g->publish, g->npublish, pub, 1);
  gw_auth_free(a);

  /* [] is nothing, even with no JWT keys; one list null, the other not */
  a = auth_from("{\"anonymous_subscribe\":[],\"anonymous_publish\":null}", err);
  assert_non_null(a);
  g = gw_auth_anonymous(a);
  assert_int_equal(g->nsubscribe, 0);
  assert_list(g->publish, g->npublish, all, 1);
  gw_auth_free(a);

  /* invalid patterns name the key */
  assert_auth_fails("{\"anonymous_subscribe\":[\"a..b\"]}", "auth.anonymous_subscribe", NULL);
  assert_auth_fails("{\"anonymous_publish\":[\"ok\",\">.x\"]}", "auth.anonymous_publish", NULL);
}

/* ---- grants ------------------------------------------------------------- */

static void test_grants(void **state)
{
  (void)state;
  char err[GW_CONFIG_ERR_MAX];
  struct gw_auth *a = auth_from("{\"anonymous_subscribe\":[\"orders.*\",\"public.>\",\"a.b\"],"
                                "\"anonymous_publish\":[\"chat.*\",\"log.>\"]}",
                                err);
  assert_non_null(a);
  const struct gw_grants *g = gw_auth_anonymous(a);
  assert_true(gw_grants_can_subscribe(g, "orders.new"));
  assert_true(gw_grants_can_subscribe(g, "orders.*"));
  assert_false(gw_grants_can_subscribe(g, "orders.>"));
  assert_false(gw_grants_can_subscribe(g, "orders.new.x"));
  assert_false(gw_grants_can_subscribe(g, "orders"));
  assert_true(gw_grants_can_subscribe(g, "public.>"));
  assert_true(gw_grants_can_subscribe(g, "public.news.*"));
  assert_true(gw_grants_can_subscribe(g, "public.x.y.z"));
  assert_false(gw_grants_can_subscribe(g, "public"));
  assert_true(gw_grants_can_subscribe(g, "a.b"));
  assert_false(gw_grants_can_subscribe(g, "a.*"));
  assert_false(gw_grants_can_subscribe(g, ">"));
  assert_false(gw_grants_can_subscribe(g, "*.new"));

  assert_true(gw_grants_can_publish(g, "chat.lobby"));
  assert_false(gw_grants_can_publish(g, "chat"));
  assert_false(gw_grants_can_publish(g, "chat.lobby.x"));
  assert_true(gw_grants_can_publish(g, "log.a.b.c"));
  assert_false(gw_grants_can_publish(g, "log"));
  assert_false(gw_grants_can_publish(g, "orders.new"));
  gw_auth_free(a);

  /* no grants: nothing */
  struct gw_grants none;
  memset(&none, 0, sizeof(none));
  assert_false(gw_grants_can_subscribe(&none, "a"));
  assert_false(gw_grants_can_publish(&none, "a"));
  gw_grants_clear(&none);
}

/* ---- JWT verification --------------------------------------------------- */

static void check_identity(const struct gw_identity *id, const char *sub)
{
  static const char *const want_sub[] = {"public.>", "orders.*"};
  static const char *const want_pub[] = {"chat.lobby"};
  assert_string_equal(id->sub, sub);
  assert_int_equal(id->exp, NOW + 600);
  /* anonymous's patterns, then the token's */
  assert_list(id->grants.subscribe, id->grants.nsubscribe, want_sub, 2);
  assert_list(id->grants.publish, id->grants.npublish, want_pub, 1);
  assert_true(gw_grants_can_subscribe(&id->grants, "orders.new"));
  assert_true(gw_grants_can_subscribe(&id->grants, "public.x.y"));
  assert_false(gw_grants_can_subscribe(&id->grants, "orders.>"));
  assert_true(gw_grants_can_publish(&id->grants, "chat.lobby"));
  assert_false(gw_grants_can_publish(&id->grants, "public.x"));
}

static void test_verify_valid(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  const char *c = claims("\"sub\":\"alice\",\"herald\":{\"subscribe\":[\"orders.*\"],"
                         "\"publish\":[\"chat.lobby\"]}");
  struct {
    cjose_jwk_t *k;
    const char *alg, *kid;
  } cases[] = {
      {K.hs, "HS256", "h1"}, {K.rs, "RS256", "r1"}, {K.ec, "ES256", "e1"},
      {K.hs, "HS256", NULL}, {K.rs, "RS256", NULL}, {K.ec, "ES256", NULL},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *tok = sign(cases[i].k, cases[i].alg, cases[i].kid, c);
    struct gw_identity id;
    assert_accepted(a, tok, NOW, &id);
    check_identity(&id, "alice");
    gw_identity_clear(&id);
    assert_null(id.grants.subscribe);
    gw_identity_clear(&id); /* twice is fine */
    free(tok);
  }

  /* no herald claim: anonymous's grants only; no sub: "" */
  char *tok = sign(K.hs, "HS256", "h1", claims(NULL));
  struct gw_identity id;
  assert_accepted(a, tok, NOW, &id);
  assert_string_equal(id.sub, "");
  assert_int_equal(id.grants.nsubscribe, 1);
  assert_string_equal(id.grants.subscribe[0], "public.>");
  assert_int_equal(id.grants.npublish, 0);
  gw_identity_clear(&id);
  free(tok);

  /* an empty herald claim, and empty lists */
  tok = sign(K.hs, "HS256", NULL, claims("\"herald\":{\"subscribe\":[],\"publish\":[]}"));
  assert_accepted(a, tok, NOW, &id);
  assert_int_equal(id.grants.nsubscribe, 1);
  gw_identity_clear(&id);
  free(tok);

  /* a sub is kept printable: quotes, backslashes, controls and non-ASCII
   * become '_', and it is cut at 127 bytes */
  tok = sign(K.hs, "HS256", NULL, claims("\"sub\":\"a\\\"b\\\\c d\\n\\u00e9\""));
  assert_accepted(a, tok, NOW, &id);
  assert_string_equal(id.sub, "a_b_c_d___");
  gw_identity_clear(&id);
  free(tok);
  char longsub[400];
  snprintf(longsub, sizeof(longsub), "\"sub\":\"%0300d\"", 7);
  tok = sign(K.hs, "HS256", NULL, claims(longsub));
  assert_accepted(a, tok, NOW, &id);
  assert_int_equal(strlen(id.sub), sizeof(id.sub) - 1);
  gw_identity_clear(&id);
  free(tok);
  tok = sign(K.hs, "HS256", NULL, claims("\"sub\":42"));
  assert_accepted(a, tok, NOW, &id);
  assert_string_equal(id.sub, "");
  gw_identity_clear(&id);
  free(tok);

  /* exp as a real number */
  tok = sign(K.hs, "HS256", NULL, "{\"exp\":1700000600.5}");
  assert_accepted(a, tok, NOW, &id);
  assert_int_equal(id.exp, NOW + 600);
  gw_identity_clear(&id);
  free(tok);

  /* a second configured key of the same alg, no kid: each is tried */
  gw_auth_free(a);
  a = must_load(json_pack("{s:[o,o]}", "jwt_keys", jwk_json(K.hs, "HS256", NULL),
                          jwk_json(K.hs_other, "HS256", NULL)));
  tok = sign(K.hs_other, "HS256", NULL, claims(NULL));
  assert_accepted(a, tok, NOW, &id);
  gw_identity_clear(&id);
  free(tok);
  gw_auth_free(a);
}

static void test_verify_times(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL); /* leeway 30 s, the default */
  struct gw_identity id;
  char text[256], *tok;

  tok = sign(K.hs, "HS256", "h1", "{\"sub\":\"x\"}");
  assert_refused(a, tok, NOW, "exp");
  free(tok);
  tok = sign(K.hs, "HS256", "h1", "{\"exp\":\"soon\"}");
  assert_refused(a, tok, NOW, "exp");
  free(tok);
  tok = sign(K.hs, "HS256", "h1", "{\"exp\":null}");
  assert_refused(a, tok, NOW, "exp");
  free(tok);

  /* expired: now > exp + leeway */
  snprintf(text, sizeof(text), "{\"exp\":%lld}", NOW - 31);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_refused(a, tok, NOW, "expired");
  free(tok);
  snprintf(text, sizeof(text), "{\"exp\":%lld}", NOW - 3600);
  tok = sign(K.rs, "RS256", "r1", text);
  assert_refused(a, tok, NOW, "expired");
  free(tok);
  /* within the leeway */
  long long within[] = {NOW - 30, NOW - 1, NOW, NOW + 1};
  for(size_t i = 0; i < sizeof(within) / sizeof(within[0]); i++) {
    snprintf(text, sizeof(text), "{\"exp\":%lld}", within[i]);
    tok = sign(K.hs, "HS256", "h1", text);
    assert_accepted(a, tok, NOW, &id);
    assert_int_equal(id.exp, within[i]);
    gw_identity_clear(&id);
    free(tok);
  }

  /* not yet valid: now + leeway < nbf */
  snprintf(text, sizeof(text), "{\"exp\":%lld,\"nbf\":%lld}", NOW + 600, NOW + 31);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_refused(a, tok, NOW, "not valid yet");
  free(tok);
  snprintf(text, sizeof(text), "{\"exp\":%lld,\"nbf\":\"later\"}", NOW + 600);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_refused(a, tok, NOW, "nbf");
  free(tok);
  long long nbf_ok[] = {NOW + 30, NOW, NOW - 1000};
  for(size_t i = 0; i < sizeof(nbf_ok) / sizeof(nbf_ok[0]); i++) {
    snprintf(text, sizeof(text), "{\"exp\":%lld,\"nbf\":%lld}", NOW + 600, nbf_ok[i]);
    tok = sign(K.ec, "ES256", "e1", text);
    assert_accepted(a, tok, NOW, &id);
    gw_identity_clear(&id);
    free(tok);
  }
  gw_auth_free(a);

  /* leeway 0 */
  a = jwt_auth("{\"leeway_s\":0}");
  snprintf(text, sizeof(text), "{\"exp\":%lld}", NOW - 1);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_refused(a, tok, NOW, "expired");
  free(tok);
  snprintf(text, sizeof(text), "{\"exp\":%lld}", NOW);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_accepted(a, tok, NOW, &id);
  gw_identity_clear(&id);
  free(tok);
  snprintf(text, sizeof(text), "{\"exp\":%lld,\"nbf\":%lld}", NOW + 600, NOW + 1);
  tok = sign(K.hs, "HS256", "h1", text);
  assert_refused(a, tok, NOW, "not valid yet");
  free(tok);
  gw_auth_free(a);
}

/* Regression (gateway/auth.c check_claims): `now > exp + a->leeway_s` overflowed a
 * long long when exp is near LLONG_MAX (undefined behaviour; in practice it
 * wraps and the token is refused as "expired"; the sanitizer build aborts).
 * A token that expires in the far future is valid. */
static void test_verify_exp_far_future(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  struct gw_identity id;
  char text[128], why[GW_AUTH_WHY_MAX];
  snprintf(text, sizeof(text), "{\"exp\":%lld}", LLONG_MAX);
  char *tok = sign(K.hs, "HS256", "h1", text);
  memset(&id, 0, sizeof(id));
  /* freed before asserting: a failure leaks nothing under valgrind */
  int rc = gw_auth_verify(a, tok, strlen(tok), NOW, &id, why);
  long long exp = id.exp;
  gw_identity_clear(&id);
  free(tok);
  gw_auth_free(a);
  if(rc != 0)
    fail_msg("exp %lld refused: %s", LLONG_MAX, why);
  assert_true(exp == LLONG_MAX);
}

static void test_verify_iss_aud(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth("{\"issuer\":\"https://id.example\",\"audience\":\"herald\"}");
  struct gw_identity id;
  static const struct {
    const char *extra;
    const char *refused; /* NULL: accepted */
  } cases[] = {
      {"\"iss\":\"https://id.example\",\"aud\":\"herald\"", NULL},
      {"\"iss\":\"https://id.example\",\"aud\":[\"other\",\"herald\"]", NULL},
      {"\"iss\":\"https://id.example\",\"aud\":[\"herald\"]", NULL},
      {"\"aud\":\"herald\"", "iss"},
      {"\"iss\":\"https://evil.example\",\"aud\":\"herald\"", "iss"},
      {"\"iss\":\"https://id.example/\",\"aud\":\"herald\"", "iss"},
      {"\"iss\":[\"https://id.example\"],\"aud\":\"herald\"", "iss"},
      {"\"iss\":\"https://id.example\"", "aud"},
      {"\"iss\":\"https://id.example\",\"aud\":\"Herald\"", "aud"},
      {"\"iss\":\"https://id.example\",\"aud\":[\"other\"]", "aud"},
      {"\"iss\":\"https://id.example\",\"aud\":[]", "aud"},
      {"\"iss\":\"https://id.example\",\"aud\":[7,{\"a\":\"herald\"}]", "aud"},
      {"\"iss\":\"https://id.example\",\"aud\":{\"herald\":true}", "aud"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *tok = sign(K.rs, "RS256", "r1", claims(cases[i].extra));
    if(cases[i].refused)
      assert_refused(a, tok, NOW, cases[i].refused);
    else {
      assert_accepted(a, tok, NOW, &id);
      gw_identity_clear(&id);
    }
    free(tok);
  }
  gw_auth_free(a);

  /* not configured: anything goes */
  a = jwt_auth(NULL);
  char *tok = sign(K.rs, "RS256", "r1", claims("\"iss\":\"whoever\",\"aud\":[\"x\"]"));
  assert_accepted(a, tok, NOW, &id);
  gw_identity_clear(&id);
  free(tok);
  gw_auth_free(a);
}

static void test_verify_keys(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  const char *c = claims("\"sub\":\"mallory\"");
  char *tok;

  /* unknown kid: refused even though the key would verify it */
  tok = sign(K.hs, "HS256", "h2", c);
  assert_refused(a, tok, NOW, "kid");
  free(tok);
  tok = sign(K.hs, "HS256", "", c);
  assert_refused(a, tok, NOW, NULL);
  free(tok);

  /* a kid is only tried with its own key, for its own alg */
  tok = sign(K.hs, "HS256", "r1", c); /* the kid of the RSA key */
  assert_refused(a, tok, NOW, "signature");
  free(tok);
  tok = sign(K.rs, "RS256", "h1", c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);
  tok = sign(K.ec, "ES256", "r1", c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);

  /* HS256 keyed with the RSA public key (the classic confusion): the RSA key
   * is never used for HS256 */
  cjose_err e;
  char *pub = cjose_jwk_to_json(K.rs, false, &e);
  assert_non_null(pub);
  cjose_jwk_t *confused = cjose_jwk_create_oct_spec((const uint8_t *)pub, strlen(pub), &e);
  cjose_get_dealloc()(pub);
  assert_non_null(confused);
  tok = sign(confused, "HS256", "r1", c);
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = sign(confused, "HS256", NULL, c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);
  cjose_jwk_release(confused);

  /* keys that are not configured */
  tok = sign(K.hs_other, "HS256", "h1", c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);
  tok = sign(K.hs_other, "HS256", NULL, c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);
  tok = sign(K.rs_other, "RS256", NULL, c);
  assert_refused(a, tok, NOW, "signature");
  free(tok);

  /* algorithms not allowed */
  tok = sign(K.hs, "HS384", "h1", c);
  assert_refused(a, tok, NOW, "alg");
  free(tok);
  tok = sign(K.rs, "PS256", "r1", c);
  assert_refused(a, tok, NOW, "alg");
  free(tok);

  /* alg none, built by hand, with and without a kid or a signature */
  tok = hand_token("{\"alg\":\"none\",\"kid\":\"h1\"}", c, "");
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = hand_token("{\"alg\":\"none\"}", c, "");
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = hand_token("{\"alg\":\"none\"}", c, "c2ln");
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = hand_token("{\"alg\":\"None\"}", c, "");
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = hand_token("{\"typ\":\"JWT\"}", c, "c2ln");
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  tok = hand_token("{\"alg\":7}", c, "c2ln");
  assert_refused(a, tok, NOW, NULL);
  free(tok);

  /* crit: refused though the signature is good */
  tok = sign_hdr(K.hs, "HS256", "h1", c, "crit", "[\"exp\"]");
  assert_refused(a, tok, NOW, "crit");
  free(tok);
  tok = sign_hdr(K.ec, "ES256", NULL, c, "crit", "[]");
  assert_refused(a, tok, NOW, "crit");
  free(tok);

  /* a kid that is not a string */
  tok = sign_hdr(K.hs, "HS256", NULL, c, "kid", "7");
  assert_refused(a, tok, NOW, "kid");
  free(tok);
  gw_auth_free(a);

  /* no JWT keys configured: every token refused */
  char err[GW_CONFIG_ERR_MAX];
  a = auth_from("{}", err);
  assert_non_null(a);
  assert_false(gw_auth_jwt_enabled(a));
  tok = sign(K.hs, "HS256", NULL, c);
  assert_refused(a, tok, NOW, "jwt_keys");
  free(tok);
  gw_auth_free(a);
}

/* Regression (found by jwt_fuzz): cjose 0.6.2 asserts when a base64url part
 * has a length of 1 modulo 4, and Debian's build keeps assertions, so such a
 * token aborted heraldd. The shape is checked before cjose sees it. */
static void test_verify_malformed_parts(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  static const char *const bad[] = {
      "a.bb.cc",         "eyJhbGciOiJIUzI1NiJ9.e.abcd", "aa.bb.ccccc", "aa.bb",
      "aa.bb.cc.dd",     "aa..cc",                      "aa.bb.",      ".bb.cc",
      "aa.b+.cc",        "aa.bb.cc=",                   "aa bb.cc.dd",
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_refused(a, bad[i], NOW, "compact JWS");
  gw_auth_free(a);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The value of a base64url character, or -1. */
static int b64_value(char ch)
{
  const char *at = ch ? strchr(b64_alphabet, ch) : NULL;
  return at ? (int)(at - b64_alphabet) : -1;
}

/* Issue 14: a token has one spelling. cjose decodes away the unused low bits
 * of a part's last character (4 bits when the part's length is 2 modulo 4,
 * 2 bits when 3), so every other value of those bits spelled the same
 * header, payload or signature, and a signature respelled so still
 * verified. Each respelling of each part is refused as not canonical; the
 * token itself still passes. Padding, the standard alphabet and whitespace
 * are refused too. */
static void test_verify_canonical_base64url(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  cjose_jwk_t *keys[] = {K.hs, K.rs, K.ec};
  const char *algs[] = {"HS256", "RS256", "ES256"}, *kids[] = {"h1", "r1", "e1"};
  size_t respelled[3] = {0, 0, 0}; /* per part */
  for(int k = 0; k < 3; k++) {
    /* payloads one byte apart: every length modulo 4 comes up */
    for(int pad = 0; pad < 3; pad++) {
      char extra[64];
      snprintf(extra, sizeof(extra), "\"sub\":\"%.*s\"", pad + 1, "bob");
      char *tok = sign(keys[k], algs[k], kids[k], claims(extra));
      struct gw_identity id;
      assert_accepted(a, tok, NOW, &id);
      gw_identity_clear(&id);
      const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
      const char *ends[3] = {d1, d2, tok + strlen(tok)};
      const char *starts[3] = {tok, d1 + 1, d2 + 1};
      for(int part = 2; part >= 0; part--) { /* the signature first: it verified */
        size_t n = (size_t)(ends[part] - starts[part]);
        int unused = n % 4 == 2 ? 0x0f : n % 4 == 3 ? 0x03 : 0;
        size_t last = (size_t)(ends[part] - tok) - 1;
        int v = b64_value(tok[last]);
        assert_true(v >= 0);
        assert_int_equal(v & unused, 0); /* cjose writes the canonical form */
        for(int bits = 1; bits <= unused; bits++) {
          char *bad = strdup(tok);
          assert_non_null(bad);
          bad[last] = b64_alphabet[v | bits];
          assert_refused(a, bad, NOW, "canonical");
          free(bad);
          respelled[part]++;
        }
      }

      /* padding, the standard alphabet, whitespace */
      size_t len = strlen(tok);
      char *bad = malloc(len + 3);
      assert_non_null(bad);
      snprintf(bad, len + 3, "%s=", tok);
      assert_refused(a, bad, NOW, "compact JWS");
      snprintf(bad, len + 3, "%s==", tok);
      assert_refused(a, bad, NOW, "compact JWS");
      snprintf(bad, len + 3, "%s\n", tok);
      assert_refused(a, bad, NOW, "compact JWS");
      snprintf(bad, len + 3, "%s", tok);
      bad[(size_t)(d1 - tok) + 2] = ' ';
      assert_refused(a, bad, NOW, "compact JWS");
      for(size_t i = 0; i < len; i++)
        if(tok[i] == '-' || tok[i] == '_') {
          snprintf(bad, len + 3, "%s", tok);
          bad[i] = tok[i] == '-' ? '+' : '/';
          assert_refused(a, bad, NOW, "compact JWS");
        }
      free(bad);
      free(tok);
    }
  }
  /* HS256 signatures are 43 characters (2 bits left over), RS256 342 and
   * ES256 86 (4 bits): 3 + 15 + 15 respellings for each payload */
  assert_int_equal(respelled[2], 3 * (3 + 15 + 15));
  assert_true(respelled[0] > 0);
  assert_true(respelled[1] > 0);
  gw_auth_free(a);
}

/* header.payload signed by hand with HMAC-SHA256 under K.hs: headers that
 * cjose would not write (a key twice). */
static char *hmac_token(const char *header, const char *payload)
{
  cjose_err e;
  uint8_t *secret = cjose_jwk_get_keydata(K.hs, &e);
  assert_non_null(secret);
  size_t secret_len = cjose_jwk_get_keysize(K.hs, &e) / 8;
  char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
  size_t n = strlen(h) + strlen(p) + 2;
  char *input = malloc(n);
  assert_non_null(input);
  snprintf(input, n, "%s.%s", h, p);
  unsigned char mac[32];
  unsigned int maclen = 0;
  assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)input,
                       strlen(input), mac, &maclen));
  assert_int_equal(maclen, 32);
  char *sig = b64url((const char *)mac, maclen);
  char *tok = hand_token(header, payload, sig);
  free(sig);
  free(input);
  free(h);
  free(p);
  return tok;
}

/* Issue 14: a protected header with a key twice was read last key winning
 * (jansson's default), {"alg":"none","alg":"HS256"} passing as HS256, while
 * a payload with a key twice was refused. Both are refused now; the same
 * header with each key once, signed the same way, passes. */
static void test_verify_duplicate_header_keys(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  char *c = strdup(claims("\"sub\":\"bob\""));
  assert_non_null(c);
  struct gw_identity id;
  char *tok = hmac_token("{\"alg\":\"HS256\",\"kid\":\"h1\"}", c);
  assert_accepted(a, tok, NOW, &id); /* the hand signer is right */
  assert_string_equal(id.sub, "bob");
  assert_int_equal(id.exp, NOW + 600);
  gw_identity_clear(&id);
  free(tok);

  static const char *const dups[] = {
      "{\"alg\":\"none\",\"alg\":\"HS256\",\"kid\":\"h1\"}",
      "{\"alg\":\"HS256\",\"alg\":\"HS256\",\"kid\":\"h1\"}",
      "{\"alg\":\"RS256\",\"kid\":\"h1\",\"alg\":\"HS256\"}",
      "{\"alg\":\"HS256\",\"kid\":\"r1\",\"kid\":\"h1\"}",
      "{\"alg\":\"HS256\",\"kid\":\"h1\",\"kid\":\"h1\"}",
      "{\"alg\":\"HS256\",\"kid\":\"h1\",\"x\":{\"a\":1,\"a\":2}}",
  };
  for(size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
    tok = hmac_token(dups[i], c);
    assert_refused(a, tok, NOW, "protected header has a key twice");
    free(tok);
  }
  /* a header that is JSON but no object */
  tok = hmac_token("[\"HS256\"]", c);
  assert_refused(a, tok, NOW, "protected header is not a JSON object");
  free(tok);
  /* and the payload's rule, for comparison */
  tok = hmac_token("{\"alg\":\"HS256\",\"kid\":\"h1\"}",
                   claims("\"sub\":\"bob\",\"sub\":\"admin\""));
  assert_refused(a, tok, NOW, "payload has a key twice");
  free(tok);
  free(c);
  gw_auth_free(a);
}

/* Regression (cjose 0.6.2.1, reached from gateway/auth.c gw_auth_verify): for
 * HS256, cjose_jws_verify compares 32 bytes of the token's signature with
 * cjose_const_memcmp before it checks the signature's length, so a token
 * whose signature decodes to fewer than 32 bytes makes it read past the end
 * of a heap buffer (valgrind: "Invalid read of size 1" in cjose_const_memcmp;
 * ASan does not see it, cjose is not instrumented). The token is refused, as
 * it must be, but the read happened: auth.c now refuses an HS256 signature
 * that is not 43 base64url characters before calling cjose. Under valgrind
 * (as in CI) this test fails if the read comes back. */
static void test_verify_short_hmac_signature(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  char *tok = sign(K.hs, "HS256", "h1", claims(NULL));
  const char *sig = strrchr(tok, '.') + 1;
  assert_int_equal(strlen(sig), 43);
  size_t head = (size_t)(sig - tok);
  for(size_t cut = 0; cut < 43; cut++) {
    if(cut % 4 == 1)
      continue; /* 1 base64 character is no byte: not base64 */
    assert_refused_len(a, tok, head + cut, NOW, NULL);
  }
  /* a longer signature than 32 bytes */
  size_t len = strlen(tok);
  char *longer = malloc(len + 8);
  assert_non_null(longer);
  snprintf(longer, len + 8, "%sAAAA", tok);
  assert_refused(a, longer, NOW, "signature");
  free(longer);
  free(tok);
  gw_auth_free(a);
}

/* Replaces the part'th (0..2) dot-separated part of tok with repl. */
static char *replace_part(const char *tok, int part, const char *repl)
{
  const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
  const char *start = part == 0 ? tok : part == 1 ? d1 + 1 : d2 + 1;
  const char *end = part == 0 ? d1 : part == 1 ? d2 : tok + strlen(tok);
  size_t n = strlen(tok) - (size_t)(end - start) + strlen(repl) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(start - tok), tok, repl, end);
  return out;
}

static void test_verify_tampered(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  /* copies: claims() reuses its buffer */
  char *c = strdup(claims("\"sub\":\"bob\",\"herald\":{\"subscribe\":[\"bob.*\"]}"));
  char *more = strdup(claims("\"sub\":\"bob\",\"herald\":{\"subscribe\":[\">\"]}"));
  assert_non_null(c);
  assert_non_null(more);
  cjose_jwk_t *keys[] = {K.hs, K.rs, K.ec};
  const char *algs[] = {"HS256", "RS256", "ES256"};
  for(int i = 0; i < 3; i++) {
    char *tok = sign(keys[i], algs[i], NULL, c);
    struct gw_identity id;
    assert_accepted(a, tok, NOW, &id);
    gw_identity_clear(&id);

    /* another payload under the same signature */
    char *p = b64url(more, strlen(more));
    char *bad = replace_part(tok, 1, p);
    assert_refused(a, bad, NOW, "signature");
    free(bad);
    free(p);

    /* one character of each part changed */
    for(int part = 0; part < 3; part++) {
      bad = strdup(tok);
      const char *d1 = strchr(bad, '.'), *d2 = strchr(d1 + 1, '.');
      char *at = part == 0 ? bad + 2 : part == 1 ? (char *)d1 + 3 : (char *)d2 + 3;
      *at = *at == 'A' ? 'B' : 'A';
      assert_refused(a, bad, NOW, NULL);
      free(bad);
    }

    /* signature cut, dropped, or the token cut (for HS256 these read past
     * the signature in cjose: see test_verify_short_hmac_signature) */
    bad = replace_part(tok, 2, "");
    assert_refused(a, bad, NOW, NULL);
    free(bad);
    size_t len = strlen(tok);
    assert_refused_len(a, tok, len - 1, NOW, NULL);
    assert_refused_len(a, tok, (size_t)(strrchr(tok, '.') - tok), NOW, NULL);
    free(tok);
  }
  free(c);
  free(more);

  /* not a JWS at all */
  static const char *const junk[] = {
      "x.y.z", "abc", "..", "a.b", "a.b.c.d", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9.e30", " "};
  for(size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
    assert_refused(a, junk[i], NOW, NULL);
  assert_refused_len(a, "", 0, NOW, "8192");

  /* a payload that is not a JSON object, or has a key twice */
  char *tok = sign(K.hs, "HS256", NULL, "hello");
  assert_refused(a, tok, NOW, "JSON");
  free(tok);
  tok = sign(K.hs, "HS256", NULL, "[1700000600]");
  assert_refused(a, tok, NOW, "object");
  free(tok);
  char dup[128];
  snprintf(dup, sizeof(dup), "{\"exp\":%lld,\"exp\":%lld}", NOW - 3600, NOW + 600);
  tok = sign(K.hs, "HS256", NULL, dup);
  assert_refused(a, tok, NOW, NULL);
  free(tok);
  gw_auth_free(a);
}

static void test_verify_size_and_nul(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  struct gw_identity id;

  /* a validly signed token of exactly 8192 bytes passes, 8193 and more not */
  static char pad[UTIL_TOKEN_MAX];
  char *payload = malloc(UTIL_TOKEN_MAX + 64);
  assert_non_null(payload);
  size_t base = 0;
  {
    snprintf(payload, UTIL_TOKEN_MAX + 64, "{\"exp\":%lld,\"pad\":\"\"}", NOW + 600);
    char *tok = sign(K.hs, "HS256", "h1", payload);
    base = strlen(tok);
    free(tok);
  }
  /* each payload byte is 4/3 of a token byte */
  size_t guess = (UTIL_TOKEN_MAX - base) * 3 / 4;
  bool seen_exact = false, seen_over = false;
  for(size_t n = guess > 8 ? guess - 8 : 0; n < guess + 8; n++) {
    memset(pad, 'p', n);
    pad[n] = '\0';
    snprintf(payload, UTIL_TOKEN_MAX + 64, "{\"exp\":%lld,\"pad\":\"%s\"}", NOW + 600, pad);
    char *tok = sign(K.hs, "HS256", "h1", payload);
    size_t len = strlen(tok);
    if(len <= UTIL_TOKEN_MAX) {
      assert_accepted(a, tok, NOW, &id);
      gw_identity_clear(&id);
      seen_exact |= len == UTIL_TOKEN_MAX;
    } else {
      assert_refused(a, tok, NOW, "8192");
      seen_over = true;
    }
    free(tok);
  }
  assert_true(seen_exact);
  assert_true(seen_over);
  free(payload);

  /* far too big */
  char *big = malloc(100000);
  assert_non_null(big);
  memset(big, 'A', 99999);
  big[99999] = '\0';
  big[10] = '.';
  big[20] = '.';
  assert_refused(a, big, NOW, "8192");
  free(big);

  /* a NUL anywhere in the token's length */
  char *tok = sign(K.hs, "HS256", "h1", claims(NULL));
  size_t len = strlen(tok);
  char *withnul = malloc(len + 2);
  assert_non_null(withnul);
  memcpy(withnul, tok, len + 1);
  assert_refused_len(a, withnul, len + 1, NOW, NULL); /* the terminator counted */
  withnul[len / 2] = '\0';
  assert_refused_len(a, withnul, len, NOW, NULL);
  memcpy(withnul, tok, len + 1);
  withnul[0] = '\0';
  assert_refused_len(a, withnul, len, NOW, NULL);
  free(withnul);
  /* the length given is the token: the same bytes with more after pass */
  char *more = malloc(len + 10);
  assert_non_null(more);
  memcpy(more, tok, len);
  memcpy(more + len, "garbage!!", 10);
  assert_accepted_len(a, more, len, NOW, &id);
  gw_identity_clear(&id);
  free(more);
  free(tok);
  gw_auth_free(a);
}

static void test_verify_herald_claim(void **state)
{
  (void)state;
  struct gw_auth *a = jwt_auth(NULL);
  static const struct {
    const char *extra;
    const char *piece;
  } bad[] = {
      {"\"herald\":[\"orders.*\"]", "herald"},
      {"\"herald\":\"orders.*\"", "herald"},
      {"\"herald\":true", "herald"},
      {"\"herald\":{\"subscribe\":\"orders.*\"}", "herald.subscribe"},
      {"\"herald\":{\"publish\":{\"a\":1}}", "herald.publish"},
      {"\"herald\":{\"subscribe\":[\"zz..yy\"]}", "herald.subscribe[0]"},
      {"\"herald\":{\"subscribe\":[\"ok.*\",\"zz.>.yy\"]}", "herald.subscribe[1]"},
      {"\"herald\":{\"subscribe\":[\"ok\",7]}", "herald.subscribe[1]"},
      {"\"herald\":{\"publish\":[\"\"]}", "herald.publish[0]"},
      {"\"herald\":{\"publish\":[\"zz yy\"]}", "herald.publish[0]"},
      {"\"herald\":{\"subscribe\":[\"ok\"],\"publish\":[\"zz*\"]}", "herald.publish[0]"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *tok = sign(K.hs, "HS256", "h1", claims(bad[i].extra));
    char why[GW_AUTH_WHY_MAX];
    struct gw_identity id;
    memset(&id, 0, sizeof(id));
    assert_refused(a, tok, NOW, bad[i].piece);
    /* nor the claim's text */
    assert_int_equal(gw_auth_verify(a, tok, strlen(tok), NOW, &id, why), -1);
    assert_null(strstr(why, "zz"));
    free(tok);
  }

  /* null is not an object either */
  char *tok = sign(K.hs, "HS256", "h1", claims("\"herald\":null"));
  assert_refused(a, tok, NOW, "herald");
  free(tok);
  gw_auth_free(a);
}

/* Builds "herald":{"<list>":["p0","p1",...]} with n patterns. */
static char *many_patterns(const char *list, size_t n)
{
  size_t cap = 64 + n * 16;
  char *s = malloc(cap);
  assert_non_null(s);
  size_t o = (size_t)snprintf(s, cap, "\"herald\":{\"%s\":[", list);
  for(size_t i = 0; i < n; i++)
    o += (size_t)snprintf(s + o, cap - o, "%s\"t.p%zu\"", i ? "," : "", i);
  snprintf(s + o, cap - o, "]}");
  return s;
}

static void test_verify_pattern_limit(void **state)
{
  (void)state;
  struct gw_identity id;
  char *extra, *tok;
  /* anonymous gets nothing here: the token's own lists */
  struct gw_auth *a = must_load(json_pack("{s:[o]}", "jwt_keys", jwk_json(K.hs, "HS256", NULL)));
  const char *lists[] = {"subscribe", "publish"};
  for(int l = 0; l < 2; l++) {
    extra = many_patterns(lists[l], GW_GRANTS_MAX);
    tok = sign(K.hs, "HS256", NULL, claims(extra));
    assert_accepted(a, tok, NOW, &id);
    assert_int_equal(l == 0 ? id.grants.nsubscribe : id.grants.npublish, GW_GRANTS_MAX);
    gw_identity_clear(&id);
    free(tok);
    free(extra);

    extra = many_patterns(lists[l], GW_GRANTS_MAX + 1);
    tok = sign(K.hs, "HS256", NULL, claims(extra));
    assert_refused(a, tok, NOW, "256");
    free(tok);
    free(extra);
  }
  gw_auth_free(a);
}

/* Regression (gateway/auth.c add_patterns via check_claims): the 256 limit was applied
 * to anonymous's patterns plus the token's, not to the token's own list as
 * docs say ("max 256 each"): with one anonymous pattern, a token with 256
 * subscribe patterns is refused with "herald.subscribe: more than 256
 * patterns". */
static void test_verify_pattern_limit_with_anonymous(void **state)
{
  (void)state;
  struct gw_identity id;
  char why[GW_AUTH_WHY_MAX];
  struct gw_auth *a = jwt_auth(NULL); /* anonymous: public.> */
  char *extra = many_patterns("subscribe", GW_GRANTS_MAX);
  char *tok = sign(K.hs, "HS256", NULL, claims(extra));
  memset(&id, 0, sizeof(id));
  /* freed before asserting: a failure leaks nothing under valgrind */
  int rc = gw_auth_verify(a, tok, strlen(tok), NOW, &id, why);
  size_t n = id.grants.nsubscribe;
  gw_identity_clear(&id);
  free(tok);
  free(extra);
  gw_auth_free(a);
  if(rc != 0)
    fail_msg("a token with %d subscribe patterns refused: %s", GW_GRANTS_MAX, why);
  assert_int_equal(n, GW_GRANTS_MAX + 1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_api_key_config_errors),
      cmocka_unit_test(test_jwt_key_config_errors),
      cmocka_unit_test(test_jwks_file),
      cmocka_unit_test(test_hash_key),
      cmocka_unit_test(test_api_keys),
      cmocka_unit_test(test_anonymous),
      cmocka_unit_test(test_grants),
      cmocka_unit_test(test_verify_valid),
      cmocka_unit_test(test_verify_times),
      cmocka_unit_test(test_verify_exp_far_future),
      cmocka_unit_test(test_verify_iss_aud),
      cmocka_unit_test(test_verify_keys),
      cmocka_unit_test(test_verify_tampered),
      cmocka_unit_test(test_verify_short_hmac_signature),
      cmocka_unit_test(test_verify_malformed_parts),
      cmocka_unit_test(test_verify_canonical_base64url),
      cmocka_unit_test(test_verify_duplicate_header_keys),
      cmocka_unit_test(test_verify_size_and_nul),
      cmocka_unit_test(test_verify_herald_claim),
      cmocka_unit_test(test_verify_pattern_limit),
      cmocka_unit_test(test_verify_pattern_limit_with_anonymous),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
