/* util/json_text: the minifier that keeps a publisher's tokens byte for
 * byte, the member finder of the WebSocket publish, and the loader that
 * accepts every RFC 8259 number. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json_text.h"

/* Minifies `in` (NUL-terminated) and checks the result is `want`, and
 * that jansson reads the same value from both. */
static void minifies(const char *in, const char *want)
{
  size_t len = strlen(in), out_len = 0, bad = 0;
  char *out = malloc(len ? len : 1);
  assert_non_null(out);
  const char *why = NULL;
  if(util_json_minify(in, len, out, &out_len, &bad, &why))
    fail_msg("refused %s: %s at %zu", in, why, bad);
  if(out_len != strlen(want) || memcmp(out, want, out_len) != 0)
    fail_msg("%s -> %.*s, want %s", in, (int)out_len, out, want);
  json_t *a = json_loadb(in, len, JSON_DECODE_ANY, NULL), *b = json_loadb(out, out_len, JSON_DECODE_ANY, NULL);
  if(a) /* jansson's own limits (big numbers) aside, the values agree */
    assert_true(json_equal(a, b));
  json_decref(a);
  json_decref(b);
  free(out);
}

static void refused_n(const char *in, size_t len, size_t want_off)
{
  size_t out_len = 0, bad = 99999;
  char *out = malloc(len ? len : 1);
  assert_non_null(out);
  const char *why = NULL;
  if(util_json_minify(in, len, out, &out_len, &bad, &why) == 0)
    fail_msg("accepted %s", in);
  assert_non_null(why);
  if(bad != want_off)
    fail_msg("%s: refused at %zu (%s), want %zu", in, bad, why, want_off);
  free(out);
}

static void refused(const char *in, size_t want_off)
{
  refused_n(in, strlen(in), want_off);
}

static void minify_every_token_kind(void **state)
{
  (void)state;
  minifies("null", "null");
  minifies("true", "true");
  minifies(" false ", "false");
  minifies("0", "0");
  minifies("-0", "-0");
  minifies("\t42\r\n", "42");
  minifies("\"\"", "\"\"");
  minifies("\"a b\"", "\"a b\"");
  minifies("[]", "[]");
  minifies("{}", "{}");
  minifies("[ ]", "[]");
  minifies("{ }", "{}");
  minifies("{ \"a\" : 1 , \"b\" : [ true , null , { } ] }", "{\"a\":1,\"b\":[true,null,{}]}");
  minifies("{\"z\":1,\"a\":2}", "{\"z\":1,\"a\":2}"); /* key order kept */
}

/* The point of it all: numbers are never re-spelled. */
static void minify_numbers_byte_for_byte(void **state)
{
  (void)state;
  minifies("0.1", "0.1");
  minifies("1.5e300", "1.5e300");
  minifies("1.0", "1.0");
  minifies("1E+2", "1E+2");
  minifies("-1.25e-7", "-1.25e-7");
  minifies("18446744073709551615", "18446744073709551615");
  minifies("123456789012345678901234567890", "123456789012345678901234567890");
  minifies("1e999", "1e999");
  minifies("[ 0.10000000000000000555 , 2.50 ]", "[0.10000000000000000555,2.50]");
}

static void minify_strings_and_escapes(void **state)
{
  (void)state;
  minifies("\"\\u00e9\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u00e9\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
  minifies("\"\\uD83D\\uDE00\"", "\"\\uD83D\\uDE00\""); /* a surrogate pair, as sent */
  minifies("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  minifies("\" { : , } [ ] \"", "\" { : , } [ ] \""); /* whitespace inside strings stays */
  minifies("{ \"a b\" : \" c \" }", "{\"a b\":\" c \"}");
}

static void minify_deep_nesting(void **state)
{
  (void)state;
  size_t n = UTIL_JSON_MAX_DEPTH;
  char *in = malloc(4 * n + 2), *want = malloc(2 * n + 2);
  assert_non_null(in);
  assert_non_null(want);
  size_t i = 0, j = 0;
  for(size_t k = 0; k < n; k++) {
    in[i++] = '[';
    in[i++] = ' ';
    want[j++] = '[';
  }
  for(size_t k = 0; k < n; k++) {
    in[i++] = ' ';
    in[i++] = ']';
    want[j++] = ']';
  }
  in[i] = want[j] = '\0';
  minifies(in, want);
  /* one more level is refused, at the bracket that passes the limit */
  char *deeper = malloc(2 * n + 3);
  assert_non_null(deeper);
  memset(deeper, '[', n + 1);
  memset(deeper + n + 1, ']', n + 1);
  deeper[2 * n + 2] = '\0';
  refused(deeper, n);
  free(deeper);
  free(in);
  free(want);
}

static void minify_refuses_what_is_not_json(void **state)
{
  (void)state;
  refused("", 0);
  refused("   ", 3);
  refused("nul", 0);
  refused("True", 0);
  refused("01", 1);
  refused("1.", 2);
  refused(".5", 0);
  refused("1e", 2);
  refused("1e+", 3);
  refused("+1", 0);
  refused("-", 1);
  refused("0x10", 1);
  refused("NaN", 0);
  refused("[1,]", 3);
  refused("[1 2]", 3);
  refused("{\"a\"}", 4);
  refused("{\"a\":}", 5);
  refused("{a:1}", 1);
  refused("{\"a\":1,}", 7);
  refused("[", 1);
  refused("{\"a\":1", 6);
  refused("1 2", 2);
  refused("\"abc", 4);
  refused("\"a\nb\"", 2);         /* raw control character */
  refused("\"\\x41\"", 2);        /* unknown escape */
  refused("\"\\u12G4\"", 5);      /* not hex */
  refused("\"\\u12\"", 6);        /* too short: the text ends first */
  refused("\"\xc3\"", 1);         /* cut UTF-8 */
  refused("\"\xc0\xaf\"", 1);     /* overlong */
  refused("\"\xed\xa0\x80\"", 1); /* a surrogate in UTF-8 */
  refused("\"\xf4\x90\x80\x80\"", 1); /* above U+10FFFF */
  refused("\xef\xbb\xbf{}", 0);   /* a byte order mark is not JSON (RFC 8259 §8.1) */
  refused_n("[1]\x00", 4, 3);
  refused_n("\"a\x00b\"", 5, 2);
}

static void member(const char *text, const char *name, const char *want)
{
  size_t off = 0, vlen = 0;
  int rc = util_json_member(text, strlen(text), name, &off, &vlen);
  if(!want) {
    assert_int_equal(rc, -1);
    return;
  }
  assert_int_equal(rc, 0);
  if(vlen != strlen(want) || memcmp(text + off, want, vlen) != 0)
    fail_msg("%s[%s] = %.*s, want %s", text, name, (int)vlen, text + off, want);
}

static void member_spans(void **state)
{
  (void)state;
  member("{\"op\":\"publish\",\"data\":{\"x\":0.1}}", "data", "{\"x\":0.1}");
  member("{ \"data\" : [ 1 , 2 ] , \"op\" : \"p\" }", "data", "[ 1 , 2 ]");
  member("{\"d\\u0061ta\":1.50}", "data", "1.50"); /* an escaped key */
  member("{\"data\":1,\"data\":2}", "data", "2");   /* the last, as jansson */
  member("{\"x\":{\"data\":1}}", "data", NULL);     /* only the top level */
  member("{\"dat\":1,\"datas\":2}", "data", NULL);
  member("{\"s\":\"\\\"data\\\":1\",\"data\":\"v\"}", "data", "\"v\"");
  member("[{\"data\":1}]", "data", NULL);
  member("{}", "data", NULL);
  member("{\"data\":null}", "data", "null");
}

static json_t *load(const char *text, json_error_t *err)
{
  return util_json_loadb(text, strlen(text), 0, err);
}

static void load_any_number(void **state)
{
  (void)state;
  json_error_t err;
  /* a uint64 id: read as a real for the schemas, the text is kept elsewhere */
  json_t *v = load("{\"id\":18446744073709551615,\"n\":3}", &err);
  assert_non_null(v);
  assert_true(json_is_real(json_object_get(v, "id")));
  assert_true(json_real_value(json_object_get(v, "id")) == 18446744073709551615.0);
  assert_true(json_is_integer(json_object_get(v, "n"))); /* small ones stay integers */
  json_decref(v);
  /* beyond a double: clamped */
  v = load("[1e999,-1e999,1e-999]", &err);
  assert_non_null(v);
  assert_true(json_real_value(json_array_get(v, 0)) > 1.7e308);
  assert_true(json_real_value(json_array_get(v, 1)) < -1.7e308);
  assert_true(json_real_value(json_array_get(v, 2)) == 0);
  json_decref(v);
  /* a string that looks like a number is not touched */
  v = load("[\"18446744073709551615\",18446744073709551616]", &err);
  assert_non_null(v);
  assert_string_equal(json_string_value(json_array_get(v, 0)), "18446744073709551615");
  json_decref(v);
  /* not JSON stays refused, with jansson's message */
  assert_null(load("{\"id\":18446744073709551615,", &err));
  assert_null(load("[1,2", &err));
  assert_true(strlen(err.text) > 0);
}

static void load_file_any_number(void **state)
{
  (void)state;
  char path[] = "/tmp/json_text_testXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "{\"maximum\": 1e400, \"id\": 99999999999999999999}";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  json_error_t err;
  json_t *v = util_json_load_file(path, 0, &err);
  assert_non_null(v);
  assert_true(json_is_real(json_object_get(v, "id")));
  json_decref(v);
  unlink(path);
  assert_null(util_json_load_file(path, 0, &err));
  assert_int_equal(err.line, -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(minify_every_token_kind),
      cmocka_unit_test(minify_numbers_byte_for_byte),
      cmocka_unit_test(minify_strings_and_escapes),
      cmocka_unit_test(minify_deep_nesting),
      cmocka_unit_test(minify_refuses_what_is_not_json),
      cmocka_unit_test(member_spans),
      cmocka_unit_test(load_any_number),
      cmocka_unit_test(load_file_any_number),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
