#include "signer.h"

#include <pthread.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define PREFIX "whsec_"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define B64_LEN(n) (4 * (((n) + 2) / 3))
#define MAC_LEN 32 /* SHA-256 */

static bool b64_char(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

/* Checks that s[0..len) is padded standard base64 and returns the number of
 * '=' at its end, or -1. EVP_DecodeBlock alone is too lenient (it skips
 * surrounding whitespace, takes '=' mid-text) and counts the padding as
 * decoded zero bytes, so the text is checked before it is decoded. */
static int b64_padding(const char *s, size_t len)
{
  if(len == 0 || len % 4 != 0)
    return -1;
  int pad = 0;
  if(s[len - 1] == '=')
    pad = s[len - 2] == '=' ? 2 : 1;
  for(size_t i = 0; i < len - (size_t)pad; i++)
    if(!b64_char((unsigned char)s[i]))
      return -1;
  return pad;
}

int hook_secret_parse(const char *text, struct hook_secret *out, const char **why)
{
  const char *dummy;
  if(!why)
    why = &dummy;
  if(!text || strncmp(text, PREFIX, PREFIX_LEN) != 0) {
    *why = "webhook secret must start with whsec_ followed by base64";
    return -1;
  }
  const char *b64 = text + PREFIX_LEN;
  size_t len = strlen(b64);
  if(len == 0) {
    *why = "webhook secret is empty after whsec_";
    return -1;
  }
  int pad = b64_padding(b64, len);
  if(pad < 0) {
    *why = "webhook secret is not valid base64 after whsec_ (standard alphabet, = padding, "
           "no spaces)";
    return -1;
  }
  /* Checked before decoding: it bounds the buffer below. */
  if(len > B64_LEN(HOOK_SECRET_MAX)) {
    *why = "webhook secret is longer than 64 bytes";
    return -1;
  }
  unsigned char buf[3 * B64_LEN(HOOK_SECRET_MAX) / 4];
  int rc = -1;
  int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
  if(n < 0 || (size_t)n != 3 * len / 4)
    *why = "webhook secret is not valid base64 after whsec_";
  else if((n -= pad) < HOOK_SECRET_MIN)
    *why = "webhook secret is shorter than 24 bytes; generate a new one";
  else if(n > HOOK_SECRET_MAX)
    *why = "webhook secret is longer than 64 bytes";
  else {
    memcpy(out->key, buf, (size_t)n);
    out->len = (size_t)n;
    rc = 0;
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return rc;
}

int hook_secret_generate(size_t nbytes, char *out, size_t outsz)
{
  unsigned char raw[HOOK_SECRET_MAX];
  if(nbytes < HOOK_SECRET_MIN || nbytes > HOOK_SECRET_MAX || !out ||
     outsz < PREFIX_LEN + B64_LEN(nbytes) + 1)
    return -1;
  if(RAND_bytes(raw, (int)nbytes) != 1)
    return -1;
  memcpy(out, PREFIX, PREFIX_LEN);
  EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, raw, (int)nbytes);
  OPENSSL_cleanse(raw, sizeof(raw));
  return 0;
}

/* OpenSSL's HMAC implementation, fetched once: a fetch per signature cost
 * about a microsecond (a provider lookup). Kept for the process's life. */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
  hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* The raw MAC of "<id>.<timestamp>.<body>" into mac. Returns 0 or -1. */
static int mac_message(const struct hook_secret *s, const char *msg_id, int64_t timestamp,
                       const char *body, size_t body_len, unsigned char mac[MAC_LEN])
{
  int rc = -1;
  EVP_MAC_CTX *ctx = NULL;
  char ts[24];
  size_t outl = 0;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
      OSSL_PARAM_construct_end(),
  };
  if(!s || s->len == 0 || s->len > HOOK_SECRET_MAX || !msg_id || (!body && body_len))
    goto out;
  int tsl = snprintf(ts, sizeof(ts), ".%" PRId64 ".", timestamp);
  if(tsl < 0 || (size_t)tsl >= sizeof(ts))
    goto out;
  pthread_once(&hmac_once, hmac_fetch);
  if(!hmac_alg)
    goto out;
  ctx = EVP_MAC_CTX_new(hmac_alg);
  if(!ctx)
    goto out;
  if(!EVP_MAC_init(ctx, s->key, s->len, params) ||
     !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
     !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tsl))
    goto out;
  if(body_len && !EVP_MAC_update(ctx, (const unsigned char *)body, body_len))
    goto out;
  if(!EVP_MAC_final(ctx, mac, &outl, MAC_LEN) || outl != MAC_LEN)
    goto out;
  rc = 0;
out:
  EVP_MAC_CTX_free(ctx);
  return rc;
}

int hook_sign(const struct hook_secret *s, const char *msg_id, int64_t timestamp, const char *body,
              size_t body_len, char out[HOOK_SIG_MAX])
{
  unsigned char mac[MAC_LEN];
  _Static_assert(3 + B64_LEN(MAC_LEN) + 1 <= HOOK_SIG_MAX, "HOOK_SIG_MAX too small");
  if(!out || mac_message(s, msg_id, timestamp, body, body_len, mac) != 0)
    return -1;
  memcpy(out, "v1,", 3);
  EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
  return 0;
}

int hook_verify(const struct hook_secret *s, const char *msg_id, int64_t timestamp,
                const char *body, size_t body_len, const char *sig)
{
  char want[HOOK_SIG_MAX];
  if(!sig || hook_sign(s, msg_id, timestamp, body, body_len, want) != 0)
    return 0;
  size_t n = strlen(want);
  if(strnlen(sig, n + 1) != n)
    return 0;
  return CRYPTO_memcmp(sig, want, n) == 0;
}
