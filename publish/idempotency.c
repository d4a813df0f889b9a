#include "idempotency.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

bool pub_idem_key_valid(const char *key)
{
  size_t n = strlen(key);
  if(n == 0 || n > PUB_IDEM_KEY_MAX)
    return false;
  for(size_t i = 0; i < n; i++)
    if(key[i] < 0x21 || key[i] > 0x7e)
      return false;
  return true;
}

int pub_idem_scoped_key(const char *scope, const char *key, char out[PUB_IDEM_SCOPED_MAX + 1])
{
  size_t n = scope ? strlen(scope) : 0;
  if(n > PUB_IDEM_SCOPE_MAX || strlen(key) > PUB_IDEM_KEY_MAX)
    return -1;
  snprintf(out, PUB_IDEM_SCOPED_MAX + 1, "%zu:%s:%s", n, n ? scope : "", key);
  return 0;
}

int pub_idem_hash(const char *topic, size_t topic_len, const char *data, size_t data_len,
                  unsigned char out[PUB_IDEM_HASH_LEN])
{
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
            EVP_DigestUpdate(c, topic, topic_len) && EVP_DigestUpdate(c, "\n", 1) &&
            EVP_DigestUpdate(c, data, data_len) && EVP_DigestFinal_ex(c, out, NULL);
  EVP_MD_CTX_free(c);
  return ok ? 0 : -1;
}

/* A handful of keys at a time (the publishes in flight with a key): a
 * list is enough. */
struct pub_claims {
  pthread_mutex_t lock;
  char **keys;
  size_t n, cap;
};

struct pub_claims *pub_claims_new(void)
{
  struct pub_claims *c = calloc(1, sizeof(*c));
  if(c)
    pthread_mutex_init(&c->lock, NULL);
  return c;
}

void pub_claims_free(struct pub_claims *c)
{
  if(!c)
    return;
  for(size_t i = 0; i < c->n; i++)
    free(c->keys[i]);
  free(c->keys);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

bool pub_claims_take(struct pub_claims *c, const char *key)
{
  bool ok = false;
  pthread_mutex_lock(&c->lock);
  for(size_t i = 0; i < c->n; i++)
    if(strcmp(c->keys[i], key) == 0)
      goto out;
  if(c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    char **n = realloc(c->keys, cap * sizeof(*n));
    if(!n)
      goto out;
    c->keys = n;
    c->cap = cap;
  }
  c->keys[c->n] = strdup(key);
  ok = c->keys[c->n] != NULL;
  c->n += ok;
out:
  pthread_mutex_unlock(&c->lock);
  return ok;
}

void pub_claims_release(struct pub_claims *c, const char *key)
{
  pthread_mutex_lock(&c->lock);
  for(size_t i = 0; i < c->n; i++)
    if(strcmp(c->keys[i], key) == 0) {
      free(c->keys[i]);
      c->keys[i] = c->keys[--c->n];
      break;
    }
  pthread_mutex_unlock(&c->lock);
}

size_t pub_claims_count(struct pub_claims *c)
{
  pthread_mutex_lock(&c->lock);
  size_t n = c->n;
  pthread_mutex_unlock(&c->lock);
  return n;
}
