#include "auth.h"

#include <cjose/cjose.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"
#include "util/hex.h"

/* A JWT verification key, pinned to one algorithm: a token whose header names
 * another is never checked against it (no `none`, no HS256 signed with an
 * RSA public key). */
struct jwt_key {
  char alg[8]; /* HS256, RS256 or ES256 */
  char kid[128]; /* "" when the key has none */
  cjose_jwk_t *jwk;
};

struct gw_auth {
  struct gw_api_key *keys;
  size_t nkeys;
  struct jwt_key *jwt;
  size_t njwt;
  struct gw_grants anonymous;
  char issuer[256], audience[256];
  int leeway_s;
};

/* --- grants -------------------------------------------------------------- */

bool gw_grants_can_subscribe(const struct gw_grants *g, const char *pattern)
{
  return sub_patterns_cover((const char *const *)g->subscribe, g->nsubscribe, pattern);
}

bool gw_grants_can_publish(const struct gw_grants *g, const char *topic)
{
  return sub_patterns_cover((const char *const *)g->publish, g->npublish, topic);
}

static void free_list(char **list, size_t n)
{
  for(size_t i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

void gw_grants_clear(struct gw_grants *g)
{
  free_list(g->subscribe, g->nsubscribe);
  free_list(g->publish, g->npublish);
  memset(g, 0, sizeof(*g));
}

/* Appends the patterns of `arr` (NULL: none) to *list, which may then hold
 * at most `max`. Returns 0, or -1 with why ("<where>[i]: ...") when one is
 * not a valid pattern or there are too many. */
static int add_patterns(char ***list, size_t *n, json_t *arr, size_t max, const char *where,
                        char *why, size_t whylen)
{
  size_t i;
  json_t *v;
  if(!arr)
    return 0;
  if(!json_is_array(arr)) {
    snprintf(why, whylen, "%s: expected an array of topic patterns", where);
    return -1;
  }
  if(*n + json_array_size(arr) > max) {
    snprintf(why, whylen, "%s: more than %d patterns", where, GW_GRANTS_MAX);
    return -1;
  }
  json_array_foreach(arr, i, v)
  {
    const char *p = json_string_value(v), *bad = "expected a string";
    if(!p || !sub_pattern_valid(p, strlen(p), &bad)) {
      snprintf(why, whylen, "%s[%zu]: %s", where, i, bad);
      return -1;
    }
    char **nl = realloc(*list, (*n + 1) * sizeof(*nl));
    if(!nl || !(nl[*n] = strdup(p))) {
      if(nl)
        *list = nl;
      snprintf(why, whylen, "%s: out of memory", where);
      return -1;
    }
    *list = nl;
    (*n)++;
  }
  return 0;
}

/* Appends copies of the n patterns of src to *list. Returns 0 or -1. */
static int copy_list(char ***list, size_t *len, char *const *src, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    char **nl = realloc(*list, (*len + 1) * sizeof(*nl));
    if(!nl)
      return -1;
    *list = nl;
    if(!(nl[*len] = strdup(src[i])))
      return -1;
    (*len)++;
  }
  return 0;
}

static int copy_grants(struct gw_grants *dst, const struct gw_grants *src)
{
  return copy_list(&dst->subscribe, &dst->nsubscribe, src->subscribe, src->nsubscribe) ||
                 copy_list(&dst->publish, &dst->npublish, src->publish, src->npublish)
             ? -1
             : 0;
}

/* --- building from the configuration ------------------------------------ */

int gw_auth_hash_key(const char *key, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  if(!EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
    return -1;
  return util_hex_encode(out, 65, md, sizeof(md));
}

static int load_api_keys(struct gw_auth *a, const struct gw_config *cfg,
                         char err[GW_CONFIG_ERR_MAX])
{
  size_t i;
  json_t *item;
  json_t *arr = cfg->auth_api_keys;
  if(!arr)
    return 0;
  a->keys = calloc(json_array_size(arr) ? json_array_size(arr) : 1, sizeof(*a->keys));
  if(!a->keys)
    return gw_config_error(err, "auth.api_keys: out of memory");
  int64_t now = gw_now_us();
  json_array_foreach(arr, i, item)
  {
    struct gw_api_key *k = &a->keys[i];
    const char *name = json_string_value(json_object_get(item, "name"));
    const char *hash = json_string_value(json_object_get(item, "sha256"));
    json_t *admin = json_object_get(item, "admin");
    pthread_mutex_init(&k->lock, NULL);
    a->nkeys++;
    if(!name || !*name || strlen(name) >= sizeof(k->name) ||
       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
           strlen(name))
      return gw_config_error(err,
                             "auth.api_keys[%zu].name: 1 to 63 characters of A-Z a-z 0-9 _ . - "
                             "(it is shown in logs)",
                             i);
    for(size_t j = 0; j < i; j++)
      if(strcmp(a->keys[j].name, name) == 0)
        return gw_config_error(err, "auth.api_keys[%zu].name: \"%s\" is used twice", i, name);
    snprintf(k->name, sizeof(k->name), "%s", name);
    if(!hash || strlen(hash) != 64)
      return gw_config_error(err,
                             "auth.api_keys[%zu].sha256: 64 hex digits, the SHA-256 of the key "
                             "(print it with: heraldd --hash-key < keyfile)",
                             i);
    if(util_hex_decode(k->hash, sizeof(k->hash), hash, 64) != 32)
      return gw_config_error(err, "auth.api_keys[%zu].sha256: not a hex digit", i);
    for(size_t j = 0; j < i; j++)
      if(memcmp(a->keys[j].hash, k->hash, 32) == 0)
        return gw_config_error(err, "auth.api_keys[%zu].sha256: the same key as \"%s\"", i,
                               a->keys[j].name);
    if(admin && !json_is_boolean(admin))
      return gw_config_error(err, "auth.api_keys[%zu].admin: expected true or false", i);
    k->admin = json_is_true(admin);
    char where[64], why[GW_AUTH_WHY_MAX];
    snprintf(where, sizeof(where), "auth.api_keys[%zu].publish", i);
    if(add_patterns(&k->grants.publish, &k->grants.npublish, json_object_get(item, "publish"),
                    GW_GRANTS_MAX, where, why, sizeof(why)))
      return gw_config_error(err, "%s", why);
    snprintf(where, sizeof(where), "auth.api_keys[%zu].subscribe", i);
    if(add_patterns(&k->grants.subscribe, &k->grants.nsubscribe,
                    json_object_get(item, "subscribe"), GW_GRANTS_MAX, where, why, sizeof(why)))
      return gw_config_error(err, "%s", why);
    json_t *rate = json_object_get(item, "rate_per_s"), *burst = json_object_get(item, "burst");
    if((rate && (!json_is_integer(rate) || json_integer_value(rate) < 0 ||
                 json_integer_value(rate) > 10000000)) ||
       (burst && (!json_is_integer(burst) || json_integer_value(burst) < 1 ||
                  json_integer_value(burst) > 10000000)))
      return gw_config_error(err, "auth.api_keys[%zu]: rate_per_s (0 to 10000000, 0: no limit) "
                                  "and burst (1 to 10000000) are integers",
                             i);
    gw_bucket_init(&k->bucket, rate ? (double)json_integer_value(rate) : cfg->api_rate_per_s,
                   burst ? (double)json_integer_value(burst) : cfg->api_rate_burst, now);
  }
  return 0;
}

/* Adds one JWK (from the config or the JWKS file, `where` names it). */
static int add_jwt_key(struct gw_auth *a, json_t *jwk, const char *where,
                       char err[GW_CONFIG_ERR_MAX])
{
  if(!json_is_object(jwk))
    return gw_config_error(err, "%s: expected a JWK object", where);
  const char *alg = json_string_value(json_object_get(jwk, "alg"));
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  const char *kid = json_string_value(json_object_get(jwk, "kid"));
  if(!alg || (strcmp(alg, "HS256") && strcmp(alg, "RS256") && strcmp(alg, "ES256")))
    return gw_config_error(err,
                           "%s.alg: every key names its algorithm: \"HS256\", \"RS256\" or "
                           "\"ES256\"",
                           where);
  const char *want = alg[0] == 'H' ? "oct" : alg[0] == 'R' ? "RSA" : "EC";
  if(!kty || strcmp(kty, want) != 0)
    return gw_config_error(err, "%s.kty: an %s key needs kty \"%s\"", where, alg, want);
  if(kid && strlen(kid) >= sizeof(a->jwt[0].kid))
    return gw_config_error(err, "%s.kid: at most 127 characters", where);
  if(kid)
    for(size_t j = 0; j < a->njwt; j++)
      if(strcmp(a->jwt[j].kid, kid) == 0)
        return gw_config_error(err, "%s.kid: \"%s\" is used twice", where, kid);
  cjose_err cerr;
  cjose_jwk_t *k = cjose_jwk_import_json((cjose_header_t *)jwk, &cerr);
  if(!k)
    return gw_config_error(err, "%s: not a usable JWK (%s)", where, cerr.message);
  size_t bits = cjose_jwk_get_keysize(k, &cerr);
  const char *weak = NULL;
  if(alg[0] == 'H' && bits < 256)
    weak = "an HS256 key needs at least 256 bits (32 bytes)";
  else if(alg[0] == 'R' && bits < 2048)
    weak = "an RS256 key needs at least 2048 bits";
  else if(alg[0] == 'E' && cjose_jwk_EC_get_curve(k, &cerr) != CJOSE_JWK_EC_P_256)
    weak = "an ES256 key is on the P-256 curve (crv \"P-256\")";
  if(weak) {
    cjose_jwk_release(k);
    return gw_config_error(err, "%s: %s", where, weak);
  }
  struct jwt_key *nk = realloc(a->jwt, (a->njwt + 1) * sizeof(*nk));
  if(!nk) {
    cjose_jwk_release(k);
    return gw_config_error(err, "%s: out of memory", where);
  }
  a->jwt = nk;
  struct jwt_key *e = &a->jwt[a->njwt++];
  snprintf(e->alg, sizeof(e->alg), "%s", alg);
  snprintf(e->kid, sizeof(e->kid), "%s", kid ? kid : "");
  e->jwk = k;
  return 0;
}

static int load_jwt_keys(struct gw_auth *a, const struct gw_config *cfg,
                         char err[GW_CONFIG_ERR_MAX])
{
  size_t i;
  json_t *item;
  char where[1200];
  if(cfg->auth_jwt_keys)
    json_array_foreach(cfg->auth_jwt_keys, i, item)
    {
      snprintf(where, sizeof(where), "auth.jwt_keys[%zu]", i);
      if(add_jwt_key(a, item, where, err))
        return -1;
    }
  if(!cfg->auth_jwks_file[0])
    return 0;
  json_error_t jerr;
  json_t *doc = json_load_file(cfg->auth_jwks_file, JSON_REJECT_DUPLICATES, &jerr);
  if(!doc)
    return gw_config_error(err, "auth.jwks_file: %s:%d: %s", cfg->auth_jwks_file, jerr.line,
                           jerr.text);
  json_t *keys = json_object_get(doc, "keys");
  int rc = 0;
  if(!json_is_array(keys))
    rc = gw_config_error(err, "auth.jwks_file: %s: expected {\"keys\": [JWK, ...]}",
                         cfg->auth_jwks_file);
  else
    json_array_foreach(keys, i, item)
    {
      const char *use = json_string_value(json_object_get(item, "use"));
      if(use && strcmp(use, "sig") != 0)
        continue; /* an encryption key, not ours to use */
      snprintf(where, sizeof(where), "auth.jwks_file: %s: keys[%zu]", cfg->auth_jwks_file, i);
      if((rc = add_jwt_key(a, item, where, err)))
        break;
    }
  json_decref(doc);
  return rc;
}

struct gw_auth *gw_auth_new(const struct gw_config *cfg, char err[GW_CONFIG_ERR_MAX])
{
  struct gw_auth *a = calloc(1, sizeof(*a));
  if(!a) {
    gw_config_error(err, "auth: out of memory");
    return NULL;
  }
  snprintf(a->issuer, sizeof(a->issuer), "%s", cfg->auth_issuer);
  snprintf(a->audience, sizeof(a->audience), "%s", cfg->auth_audience);
  a->leeway_s = cfg->auth_leeway_s;
  if(load_api_keys(a, cfg, err) || load_jwt_keys(a, cfg, err))
    goto fail;
  if(cfg->auth_jwks_file[0] && a->njwt == 0) {
    /* with no key the anonymous default (null) would open everything */
    gw_config_error(err, "auth.jwks_file: %s holds no signing key (use \"sig\", alg HS256, "
                         "RS256 or ES256)", cfg->auth_jwks_file);
    goto fail;
  }
  char why[GW_AUTH_WHY_MAX];
  /* null: anonymous gets everything while no JWT key is configured */
  static const char *const all = ">";
  bool open = a->njwt == 0;
  if(cfg->auth_anonymous_subscribe || !open) {
    if(add_patterns(&a->anonymous.subscribe, &a->anonymous.nsubscribe,
                    cfg->auth_anonymous_subscribe, GW_GRANTS_MAX, "auth.anonymous_subscribe", why,
                    sizeof(why)))
      goto fail_why;
  }
  else if(!(a->anonymous.subscribe = calloc(1, sizeof(char *))) ||
          !(a->anonymous.subscribe[a->anonymous.nsubscribe++] = strdup(all)))
    goto oom;
  if(cfg->auth_anonymous_publish || !open) {
    if(add_patterns(&a->anonymous.publish, &a->anonymous.npublish, cfg->auth_anonymous_publish,
                    GW_GRANTS_MAX, "auth.anonymous_publish", why, sizeof(why)))
      goto fail_why;
  }
  else if(!(a->anonymous.publish = calloc(1, sizeof(char *))) ||
          !(a->anonymous.publish[a->anonymous.npublish++] = strdup(all)))
    goto oom;
  return a;
oom:
  gw_config_error(err, "auth: out of memory");
  goto fail;
fail_why:
  gw_config_error(err, "%s", why);
fail:
  gw_auth_free(a);
  return NULL;
}

void gw_auth_free(struct gw_auth *a)
{
  if(!a)
    return;
  for(size_t i = 0; i < a->nkeys; i++) {
    gw_grants_clear(&a->keys[i].grants);
    pthread_mutex_destroy(&a->keys[i].lock);
  }
  free(a->keys);
  for(size_t i = 0; i < a->njwt; i++)
    cjose_jwk_release(a->jwt[i].jwk);
  free(a->jwt);
  gw_grants_clear(&a->anonymous);
  free(a);
}

/* --- API keys ------------------------------------------------------------ */

bool gw_auth_api_keys_required(const struct gw_auth *a)
{
  return a->nkeys > 0;
}

struct gw_api_key *gw_auth_api_key(struct gw_auth *a, const char *key, size_t len)
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  if(!EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
    return NULL;
  struct gw_api_key *found = NULL;
  for(size_t i = 0; i < a->nkeys; i++) /* every one: the time says nothing */
    if(CRYPTO_memcmp(a->keys[i].hash, md, 32) == 0)
      found = &a->keys[i];
  return found;
}

/* --- JWT ----------------------------------------------------------------- */

bool gw_auth_jwt_enabled(const struct gw_auth *a)
{
  return a->njwt > 0;
}

const struct gw_grants *gw_auth_anonymous(const struct gw_auth *a)
{
  return &a->anonymous;
}

void gw_identity_clear(struct gw_identity *id)
{
  gw_grants_clear(&id->grants);
  memset(id, 0, sizeof(*id));
}

/* Reads a NumericDate claim. Returns 1 when present and valid, 0 when absent,
 * -1 when not a number. */
static int numeric_date(json_t *claims, const char *name, long long *out)
{
  json_t *v = json_object_get(claims, name);
  if(!v)
    return 0;
  if(json_is_integer(v))
    *out = json_integer_value(v);
  else if(json_is_real(v) && json_real_value(v) > -1e15 && json_real_value(v) < 1e15)
    *out = (long long)json_real_value(v);
  else
    return -1;
  return 1;
}

static bool audience_ok(json_t *aud, const char *want)
{
  if(json_is_string(aud))
    return strcmp(json_string_value(aud), want) == 0;
  size_t i;
  json_t *v;
  if(json_is_array(aud))
    json_array_foreach(aud, i, v) if(json_is_string(v) && strcmp(json_string_value(v), want) == 0)
        return true;
  return false;
}

/* Checks the claims and fills *id. Returns 0 or -1 with why. */
static int check_claims(const struct gw_auth *a, json_t *claims, long long now,
                        struct gw_identity *id, char why[GW_AUTH_WHY_MAX])
{
  long long exp = 0, nbf = 0;
  int has;
  if(!json_is_object(claims)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token's payload is not a JSON object");
    return -1;
  }
  if((has = numeric_date(claims, "exp", &exp)) <= 0) {
    snprintf(why, GW_AUTH_WHY_MAX, has ? "exp is not a number" : "the token has no exp");
    return -1;
  }
  if(now - a->leeway_s > exp) { /* not exp + leeway: exp may be near LLONG_MAX */
    snprintf(why, GW_AUTH_WHY_MAX, "the token has expired");
    return -1;
  }
  if((has = numeric_date(claims, "nbf", &nbf)) < 0 || (has && now + a->leeway_s < nbf)) {
    snprintf(why, GW_AUTH_WHY_MAX, has < 0 ? "nbf is not a number" : "the token is not valid yet");
    return -1;
  }
  if(a->issuer[0]) {
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if(!iss || strcmp(iss, a->issuer) != 0) {
      snprintf(why, GW_AUTH_WHY_MAX, "the token's iss is not the configured issuer");
      return -1;
    }
  }
  if(a->audience[0] && !audience_ok(json_object_get(claims, "aud"), a->audience)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token's aud does not name the configured audience");
    return -1;
  }
  json_t *h = json_object_get(claims, "herald");
  if(h && !json_is_object(h)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the herald claim is not an object");
    return -1;
  }
  memset(id, 0, sizeof(*id));
  id->exp = exp;
  const char *sub = json_string_value(json_object_get(claims, "sub"));
  if(sub) {
    size_t o = 0;
    for(const char *s = sub; *s && o < sizeof(id->sub) - 1; s++)
      id->sub[o++] = *s > ' ' && *s < 127 && *s != '"' && *s != '\\' ? *s : '_';
  }
  /* the token's own lists count against the limit, not anonymous's */
  if(copy_grants(&id->grants, &a->anonymous) ||
     add_patterns(&id->grants.subscribe, &id->grants.nsubscribe, json_object_get(h, "subscribe"),
                  a->anonymous.nsubscribe + GW_GRANTS_MAX, "herald.subscribe", why,
                  GW_AUTH_WHY_MAX) ||
     add_patterns(&id->grants.publish, &id->grants.npublish, json_object_get(h, "publish"),
                  a->anonymous.npublish + GW_GRANTS_MAX, "herald.publish", why,
                  GW_AUTH_WHY_MAX)) {
    if(!why[0])
      snprintf(why, GW_AUTH_WHY_MAX, "out of memory");
    gw_identity_clear(id);
    return -1;
  }
  return 0;
}

/* The value of a base64url character (RFC 4648 §5), or -1. */
static int b64url_value(char ch)
{
  if(ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if(ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if(ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

/* NULL when token is three dot-separated parts of canonical base64url (RFC
 * 7515 §2): the url alphabet only, no padding, and a last character whose
 * unused low bits are zero, so that a token has one spelling (cjose decodes
 * those bits away: "…c" and "…d" would be one signature). Otherwise the
 * reason. A part whose length is 1 modulo 4 is no base64; cjose 0.6.2
 * asserts on one, and Debian builds it with assertions: such a token would
 * abort the process, so it never reaches cjose. */
static const char *compact_jws_problem(const char *token, size_t len)
{
  static const char shape[] = "not a compact JWS (three base64url parts)";
  int parts = 0;
  size_t start = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && token[i] != '.') {
      if(b64url_value(token[i]) < 0)
        return shape;
      continue;
    }
    size_t n = i - start;
    if(n == 0 || n % 4 == 1 || ++parts > 3)
      return shape;
    /* 2 or 3 characters past a multiple of 4 hold 1 or 2 bytes: the last
     * one's low 4 or 2 bits are left over */
    int unused = n % 4 == 2 ? 0x0f : n % 4 == 3 ? 0x03 : 0;
    if(b64url_value(token[i - 1]) & unused)
      return "not a compact JWS (a part is not canonical base64url: its last character's "
             "unused bits are set)";
    start = i + 1;
  }
  return parts == 3 ? NULL : shape;
}

/* 0 when the protected header (the token's first part, canonical base64url)
 * is a JSON object without a key twice; -1 with why otherwise. cjose parses
 * it letting the last of two keys win, so {"alg":"none","alg":"HS256"}
 * would mean one thing to cjose and another to the next reader. */
static int header_unique_keys(const char *token, size_t len, char why[GW_AUTH_WHY_MAX])
{
  const char *dot = memchr(token, '.', len);
  uint8_t *raw = NULL;
  size_t rawlen = 0;
  cjose_err cerr;
  if(!dot || !cjose_base64url_decode(token, (size_t)(dot - token), &raw, &rawlen, &cerr)) {
    snprintf(why, GW_AUTH_WHY_MAX, "not a compact JWS");
    return -1;
  }
  json_error_t jerr;
  json_t *hdr = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &jerr);
  cjose_get_dealloc()(raw);
  int rc = json_is_object(hdr) ? 0 : -1;
  if(rc)
    snprintf(why, GW_AUTH_WHY_MAX, "%s",
             hdr || json_error_code(&jerr) != json_error_duplicate_key
                 ? "the token's protected header is not a JSON object"
                 : "the token's protected header has a key twice");
  json_decref(hdr);
  return rc;
}

int gw_auth_verify(const struct gw_auth *a, const char *token, size_t len, long long now,
                   struct gw_identity *id, char why[GW_AUTH_WHY_MAX])
{
  cjose_err cerr;
  cjose_jws_t *jws = NULL;
  json_t *claims = NULL;
  int rc = -1;
  why[0] = '\0';
  if(!a->njwt) {
    snprintf(why, GW_AUTH_WHY_MAX, "no JWT keys are configured (auth.jwt_keys)");
    return -1;
  }
  if(len == 0 || len > UTIL_TOKEN_MAX || memchr(token, '\0', len)) {
    snprintf(why, GW_AUTH_WHY_MAX, "a token is 1 to %d bytes", UTIL_TOKEN_MAX);
    return -1;
  }
  const char *problem = compact_jws_problem(token, len);
  if(problem) {
    snprintf(why, GW_AUTH_WHY_MAX, "%s", problem);
    goto out;
  }
  if(header_unique_keys(token, len, why))
    goto out;
  jws = cjose_jws_import(token, len, &cerr);
  if(!jws) {
    snprintf(why, GW_AUTH_WHY_MAX, "not a compact JWS");
    goto out;
  }
  json_t *hdr = (json_t *)cjose_jws_get_protected(jws);
  const char *alg = json_string_value(json_object_get(hdr, "alg"));
  json_t *kidv = json_object_get(hdr, "kid");
  if(!alg || (strcmp(alg, "HS256") && strcmp(alg, "RS256") && strcmp(alg, "ES256"))) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token's alg is not HS256, RS256 or ES256");
    goto out;
  }
  if(json_object_get(hdr, "crit")) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token has critical header extensions (crit)");
    goto out;
  }
  if(kidv && !json_is_string(kidv)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token's kid is not a string");
    goto out;
  }
  const char *kid = json_string_value(kidv);
  if(kid && !*kid) { /* would match the keys configured without one */
    snprintf(why, GW_AUTH_WHY_MAX, "the token's kid is empty");
    goto out;
  }
  /* cjose 0.6.2 compares an HMAC over 32 bytes whatever the signature's
   * length (a heap over-read on a short one), and expects ES256's r||s:
   * signatures of any other length are refused before it sees them. */
  const char *dot = memrchr(token, '.', len);
  size_t siglen = dot ? len - (size_t)(dot - token) - 1 : 0;
  if((alg[0] == 'H' && siglen != 43) || (alg[0] == 'E' && siglen != 86)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token's signature has the wrong length for %s", alg);
    goto out;
  }
  bool kid_known = false, verified = false;
  for(size_t i = 0; i < a->njwt && !verified; i++) {
    const struct jwt_key *k = &a->jwt[i];
    if(kid && strcmp(k->kid, kid) != 0)
      continue;
    kid_known = true;
    if(strcmp(k->alg, alg) != 0)
      continue; /* pinned: never checked with an algorithm it is not for */
    verified = cjose_jws_verify(jws, k->jwk, &cerr);
  }
  if(!verified) {
    snprintf(why, GW_AUTH_WHY_MAX, "%s",
             kid && !kid_known ? "the token's kid names no configured key"
                               : "the token's signature does not verify with any key for its alg");
    goto out;
  }
  uint8_t *payload = NULL;
  size_t plen = 0;
  if(!cjose_jws_get_plaintext(jws, &payload, &plen, &cerr)) {
    snprintf(why, GW_AUTH_WHY_MAX, "the token has no payload");
    goto out;
  }
  json_error_t jerr;
  claims = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, &jerr);
  if(!claims) {
    snprintf(why, GW_AUTH_WHY_MAX, "%s",
             json_error_code(&jerr) == json_error_duplicate_key
                 ? "the token's payload has a key twice"
                 : "the token's payload is not JSON");
    goto out;
  }
  rc = check_claims(a, claims, now, id, why);
out:
  json_decref(claims);
  cjose_jws_release(jws);
  return rc;
}
