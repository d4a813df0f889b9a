/*
 * json_fuzz.c - libFuzzer harness for JSON text (util/json_text.h).
 *
 * The input is JSON text (or not), in a heap buffer of exactly its length,
 * so ASan sees any read past the end. jansson is the oracle:
 *  - when util_json_loadb (jansson, with big numbers widened) accepts the
 *    text, util_json_minify must accept it too; its output is no longer than
 *    the input, has no whitespace outside strings, parses to a value equal
 *    to the input's, and minifies to itself;
 *  - whatever the minifier refuses, it names a byte inside the input (or
 *    its end) and a reason;
 *  - for an object, every ASCII key jansson found is found by
 *    util_json_member, and the span it gives parses to jansson's value of
 *    that key (the last of duplicates, like jansson).
 * jansson refuses a few texts the minifier passes (a lone \uD800 escape):
 * the minifier only moves bytes, so only the direction above is required.
 * And jansson 2.14 reads a raw NUL byte after a number as the end of the
 * number ("[1,9\0]" is accepted), which no RFC 8259 text has: inputs with
 * a NUL byte only get the checks of the minifier's own answer (it refuses
 * them, so Herald refuses such a body).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util/json_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ascii_key(const char *k)
{
  for(; *k; k++)
    if((unsigned char)*k < 0x20 || (unsigned char)*k > 0x7e)
      return false;
  return true;
}

/* No space, tab, LF or CR outside strings. */
static bool compact(const char *s, size_t n)
{
  bool in = false;
  for(size_t i = 0; i < n; i++) {
    char c = s[i];
    if(in) {
      if(c == '\\')
        i++;
      else if(c == '"')
        in = false;
    }
    else if(c == '"')
      in = true;
    else if(c == ' ' || c == '\t' || c == '\n' || c == '\r')
      return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size > 1 << 16)
    return 0;
  char *in = malloc(size ? size : 1), *out = malloc(size ? size : 1);
  if(!in || !out)
    abort();
  memcpy(in, data, size);
  size_t out_len = 0, bad = 0;
  const char *why = NULL;
  int rc = util_json_minify(in, size, out, &out_len, &bad, &why);
  if(rc) {
    if(bad > size || !why || !*why)
      abort();
  }
  else if(out_len > size || !compact(out, out_len))
    abort();

  json_error_t err;
  json_t *v = memchr(in, '\0', size)
                  ? NULL
                  : util_json_loadb(in, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if(memchr(in, '\0', size) && rc == 0)
    abort(); /* a raw NUL is never JSON */
  if(v) {
    if(rc)
      abort(); /* jansson read it: the minifier must too */
    json_t *w = util_json_loadb(out, out_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if(!w || !json_equal(v, w))
      abort();
    json_decref(w);
    char *again = malloc(out_len ? out_len : 1);
    size_t again_len = 0;
    if(!again || util_json_minify(out, out_len, again, &again_len, &bad, &why) ||
       again_len != out_len || memcmp(again, out, out_len) != 0)
      abort();
    free(again);
    if(json_is_object(v)) {
      const char *key;
      json_t *val;
      int n = 0;
      json_object_foreach(v, key, val) {
        if(n++ == 8)
          break;
        if(!ascii_key(key))
          continue;
        size_t off, vlen;
        if(util_json_member(in, size, key, &off, &vlen))
          abort();
        json_t *m = util_json_loadb(in + off, vlen, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if(!m || !json_equal(m, val))
          abort();
        json_decref(m);
      }
    }
    json_decref(v);
  }
  free(in);
  free(out);
  return 0;
}
