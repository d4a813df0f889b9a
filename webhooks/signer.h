#ifndef HERALD_SIGNER_H
#define HERALD_SIGNER_H

#include <stddef.h>
#include <stdint.h>

/* Standard Webhooks signing (https://www.standardwebhooks.com/):
 *   webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>
 * Secrets are "whsec_" + standard base64 of 24..64 random bytes. */

#define HOOK_SECRET_MIN 24
#define HOOK_SECRET_MAX 64
#define HOOK_SECRET_TEXT_MAX 96 /* "whsec_" + base64(64 bytes) + NUL fits */
#define HOOK_SIG_MAX 48         /* "v1," + base64(32 bytes) + NUL fits */

struct hook_secret {
  unsigned char key[HOOK_SECRET_MAX];
  size_t len;
};

/* Parses "whsec_<base64>" (standard alphabet, padding required as in the
 * spec's examples) into *out. Returns 0, or -1 with *why (a static string
 * naming the problem, e.g. "must start with whsec_") when invalid: wrong
 * prefix, not base64, or fewer than 24 / more than 64 decoded bytes. */
int hook_secret_parse(const char *text, struct hook_secret *out, const char **why);

/* Writes a new secret of `nbytes` (24..64) random bytes (OpenSSL RAND_bytes)
 * as "whsec_<base64>" into out (NUL-terminated). Returns 0, or -1 when
 * nbytes is out of range, outsz too small, or no random bytes were had. */
int hook_secret_generate(size_t nbytes, char *out, size_t outsz);

/* Writes "v1,<base64 signature>" (NUL-terminated) of msg_id.timestamp.body
 * into out (at least HOOK_SIG_MAX bytes). Returns 0, or -1 on failure. */
int hook_sign(const struct hook_secret *s, const char *msg_id, int64_t timestamp, const char *body,
              size_t body_len, char out[HOOK_SIG_MAX]);

/* True when `sig` (one "v1,..." entry) is the signature of the message with
 * secret s; compares with CRYPTO_memcmp. For tests and tools. */
int hook_verify(const struct hook_secret *s, const char *msg_id, int64_t timestamp,
                const char *body, size_t body_len, const char *sig);

#endif
