/*
 * auth_bench.c - what authentication costs per connection and per request.
 *
 *   auth_bench [ROUNDS=5] [SECONDS_PER_LOOP=0.5]
 *
 * Times, in the thread's CPU time, interleaved within each round so a noisy
 * neighbour hurts all alike:
 *   HS256, RS256 (2048-bit), ES256 (P-256): gw_auth_verify of a valid token
 *       with a herald claim, as at a WebSocket handshake or an auth message
 *   api key: gw_auth_api_key among 16 configured keys (SHA-256 and a
 *       constant-time compare with every one), as per REST request
 *   cover: gw_grants_can_subscribe of "orders.*.created" against 7 grants,
 *       as per subscribe and publish
 * Prints per round and, last, the medians ("summary:" key=value line).
 * Bounded: ROUNDS x 5 loops x SECONDS, and every loop stops after MAX_ITERS.
 */
#include <cjose/cjose.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"

#define MAX_ITERS 10000000L
#define NOW 1800000000LL
#define LOOPS 5

static double cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
  fprintf(stderr, "auth_bench: %s\n", what);
  exit(1);
}

/* A JWK (public part) with its alg and kid, as JSON text for the config. */
static char *jwk_text(cjose_jwk_t *k, const char *alg, const char *kid)
{
  cjose_err err;
  char *pub = cjose_jwk_to_json(k, false, &err);
  json_t *j = pub ? json_loads(pub, 0, NULL) : NULL;
  if(!j)
    die("jwk");
  json_object_set_new(j, "alg", json_string(alg));
  json_object_set_new(j, "kid", json_string(kid));
  char *out = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  free(pub);
  return out;
}

static char *sign(cjose_jwk_t *k, const char *alg, const char *kid)
{
  cjose_err err;
  cjose_header_t *h = cjose_header_new(&err);
  cjose_header_set(h, CJOSE_HDR_ALG, alg, &err);
  cjose_header_set(h, CJOSE_HDR_KID, kid, &err);
  const char *claims = "{\"sub\":\"bench\",\"exp\":4102444800,\"herald\":{\"subscribe\":"
                       "[\"orders.>\",\"chat.*\"],\"publish\":[\"chat.*\"]}}";
  cjose_jws_t *jws = cjose_jws_sign(k, h, (const uint8_t *)claims, strlen(claims), &err);
  const char *ser = NULL;
  if(!jws || !cjose_jws_export(jws, &ser, &err))
    die("sign");
  char *out = strdup(ser);
  cjose_jws_release(jws);
  cjose_header_release(h);
  return out;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  double secs = argc > 2 ? atof(argv[2]) : 0.5;
  if(rounds < 1 || rounds > 20 || secs <= 0 || secs > 2)
    die("usage: auth_bench [ROUNDS 1..20] [SECONDS_PER_LOOP 0..2]");
  cjose_err err;
  cjose_jwk_t *hs = cjose_jwk_create_oct_random(256, &err) /* bits */;
  cjose_jwk_t *rs = cjose_jwk_create_RSA_random(2048, NULL, 0, &err);
  cjose_jwk_t *es = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
  if(!hs || !rs || !es)
    die("keys");
  char *hj = cjose_jwk_to_json(hs, true, &err), *rj = jwk_text(rs, "RS256", "rs"),
       *ej = jwk_text(es, "ES256", "es");
  json_t *h = json_loads(hj, 0, NULL);
  json_object_set_new(h, "alg", json_string("HS256"));
  json_object_set_new(h, "kid", json_string("hs"));
  char *hjs = json_dumps(h, JSON_COMPACT);
  json_decref(h);

  /* 16 API keys; the one presented is the last */
  char keys[4096] = "", hex[65], presented[32];
  for(int i = 0; i < 16; i++) {
    snprintf(presented, sizeof(presented), "bench-api-key-%02d-xxxxxxx", i);
    gw_auth_hash_key(presented, strlen(presented), hex);
    size_t n = strlen(keys);
    snprintf(keys + n, sizeof(keys) - n, "%s{\"name\":\"k%d\",\"sha256\":\"%s\"}", i ? "," : "",
             i, hex);
  }
  size_t tlen = strlen(hjs) + strlen(rj) + strlen(ej) + strlen(keys) + 512;
  char *text = malloc(tlen);
  snprintf(text, tlen,
           "{\"auth\":{\"jwt_keys\":[%s,%s,%s],\"api_keys\":[%s],"
           "\"anonymous_subscribe\":[\"public.>\",\"a.*.b\",\"x.>\",\"y.*\",\"z\"],"
           "\"anonymous_publish\":[]}}",
           hjs, rj, ej, keys);
  struct gw_config cfg;
  char msg[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&cfg);
  struct gw_auth *a = NULL;
  if(gw_config_load_text(&cfg, text, strlen(text), "auth_bench", msg) ||
     !(a = gw_auth_new(&cfg, msg))) {
    fprintf(stderr, "auth_bench: %s\n", msg);
    return 1;
  }
  char *tok[3] = {sign(hs, "HS256", "hs"), sign(rs, "RS256", "rs"), sign(es, "ES256", "es")};
  const char *names[LOOPS] = {"HS256", "RS256", "ES256", "api key", "cover"};
  double per_op[LOOPS][20];
  struct gw_identity held; /* 7 grants: anonymous's 5 and the token's 2 */
  char why[GW_AUTH_WHY_MAX];
  if(gw_auth_verify(a, tok[0], strlen(tok[0]), NOW, &held, why))
    die(why);

  for(int r = 0; r < rounds; r++) {
    printf("round %d:", r + 1);
    for(int l = 0; l < LOOPS; l++) {
      long n = 0;
      double t0 = cpu_s(), t;
      do {
        for(int k = 0; k < 16; k++, n++) {
          if(l < 3) {
            struct gw_identity id;
            if(gw_auth_verify(a, tok[l], strlen(tok[l]), NOW, &id, why))
              die(why);
            gw_identity_clear(&id);
          }
          else if(l == 3) {
            if(!gw_auth_api_key(a, presented, strlen(presented)))
              die("api key not found");
          }
          else if(!gw_grants_can_subscribe(&held.grants, "orders.*.created"))
            die("cover");
        }
        t = cpu_s() - t0;
      } while(t < secs && n < MAX_ITERS);
      per_op[l][r] = t / (double)n * 1e6;
      printf("  %s %.2f us", names[l], per_op[l][r]);
    }
    printf("\n");
  }
  printf("summary:");
  for(int l = 0; l < LOOPS; l++) {
    qsort(per_op[l], (size_t)rounds, sizeof(double), cmp);
    printf(" %s_us=%.2f", l == 3 ? "api_key" : l == 4 ? "cover" : names[l], per_op[l][rounds / 2]);
  }
  printf("\n");
  gw_identity_clear(&held);
  for(int i = 0; i < 3; i++)
    free(tok[i]);
  gw_auth_free(a);
  gw_config_release(&cfg);
  free(text);
  free(hjs);
  free(hj);
  free(rj);
  free(ej);
  cjose_jwk_release(hs);
  cjose_jwk_release(rs);
  cjose_jwk_release(es);
  return 0;
}
