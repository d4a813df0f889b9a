/* The small shared helpers of util/: the capped buffer's cap, growth and
 * ownership; once-a-second throttling; Bearer parsing as both ports need
 * it; the clocks; hex; the time in a UUIDv7 id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/bearer.h"
#include "util/caps.h"
#include "util/clock.h"
#include "util/dynbuf.h"
#include "util/hex.h"
#include "util/log_level.h"
#include "util/throttle.h"
#include "util/uuid7.h"

/* ---- dynbuf ---- */

static void dynbuf_starts_empty(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 16);
  assert_null(util_dynbuf_ptr(&d));
  assert_int_equal(util_dynbuf_len(&d), 0);
  assert_null(util_dynbuf_take(&d, NULL));
  util_dynbuf_free(&d); /* freeing an empty one is fine */
}

static void dynbuf_cap_reached_exactly(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 10);
  assert_int_equal(util_dynbuf_add(&d, "01234"), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_addn(&d, "56789", 5), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_len(&d), 10);
  assert_string_equal(util_dynbuf_ptr(&d), "0123456789");
  /* full: even one byte more fails, an empty add does not */
  assert_int_equal(util_dynbuf_addn(&d, "", 0), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_len(&d), 10);
  util_dynbuf_free(&d);
}

static void dynbuf_cap_passed_frees(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 10);
  assert_int_equal(util_dynbuf_add(&d, "0123456789"), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_add(&d, "x"), UTIL_DYNBUF_TOO_LARGE);
  assert_null(util_dynbuf_ptr(&d));
  assert_int_equal(util_dynbuf_len(&d), 0);
  /* reusable afterwards, with the same cap */
  assert_int_equal(util_dynbuf_add(&d, "abc"), UTIL_DYNBUF_OK);
  assert_string_equal(util_dynbuf_ptr(&d), "abc");
  assert_int_equal(util_dynbuf_add(&d, "defghijk"), UTIL_DYNBUF_TOO_LARGE);
  assert_int_equal(util_dynbuf_len(&d), 0);
  /* a single add larger than the cap fails at once */
  assert_int_equal(util_dynbuf_add(&d, "0123456789A"), UTIL_DYNBUF_TOO_LARGE);
  assert_null(util_dynbuf_ptr(&d));
  /* a length that would wrap size_t is refused, not wrapped */
  assert_int_equal(util_dynbuf_add(&d, "a"), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_addn(&d, "b", SIZE_MAX), UTIL_DYNBUF_TOO_LARGE);
  assert_null(util_dynbuf_ptr(&d));
  util_dynbuf_free(&d);
}

static void dynbuf_cap_zero(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 0);
  assert_int_equal(util_dynbuf_add(&d, ""), UTIL_DYNBUF_OK);
  assert_string_equal(util_dynbuf_ptr(&d), "");
  assert_int_equal(util_dynbuf_add(&d, "a"), UTIL_DYNBUF_TOO_LARGE);
  util_dynbuf_free(&d);
}

static void dynbuf_grows_over_many_adds(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 100000);
  for(int i = 0; i < 10000; i++)
    assert_int_equal(util_dynbuf_addn(&d, &"abcdefghij"[i % 10], 1), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_len(&d), 10000);
  const char *p = util_dynbuf_ptr(&d);
  for(int i = 0; i < 10000; i++)
    assert_int_equal(p[i], "abcdefghij"[i % 10]);
  assert_int_equal(p[10000], '\0');
  util_dynbuf_free(&d);
}

static void dynbuf_printf_grows(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 4096);
  assert_int_equal(util_dynbuf_addf(&d, "id=%d", 7), UTIL_DYNBUF_OK);
  assert_string_equal(util_dynbuf_ptr(&d), "id=7");
  char *first = util_dynbuf_ptr(&d);
  assert_int_equal(util_dynbuf_addf(&d, "+%d", 1), UTIL_DYNBUF_OK); /* fits: formatted in place */
  assert_ptr_equal(util_dynbuf_ptr(&d), first);
  assert_string_equal(util_dynbuf_ptr(&d), "id=7+1");
  /* longer than the first allocation: measured, grown, formatted again */
  char big[300];
  memset(big, 'z', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(util_dynbuf_addf(&d, " v=%s n=%zu", big, sizeof(big)), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_len(&d), strlen("id=7+1 v=") + 299 + strlen(" n=300"));
  assert_memory_equal(util_dynbuf_ptr(&d), "id=7+1 v=zzz", 12);
  assert_string_equal(util_dynbuf_ptr(&d) + util_dynbuf_len(&d) - 6, " n=300");
  assert_int_equal(strlen(util_dynbuf_ptr(&d)), util_dynbuf_len(&d));
  /* an empty format still makes the buffer a string */
  struct util_dynbuf e;
  util_dynbuf_init(&e, 8);
  assert_int_equal(util_dynbuf_addf(&e, "%s", ""), UTIL_DYNBUF_OK);
  assert_string_equal(util_dynbuf_ptr(&e), "");
  util_dynbuf_free(&e);
  util_dynbuf_free(&d);
}

static void dynbuf_printf_cap(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 8);
  assert_int_equal(util_dynbuf_addf(&d, "%s=%d", "ab", 12345), UTIL_DYNBUF_OK); /* 8 exactly */
  assert_string_equal(util_dynbuf_ptr(&d), "ab=12345");
  util_dynbuf_reset(&d);
  assert_int_equal(util_dynbuf_addf(&d, "%s=%d", "abc", 12345), UTIL_DYNBUF_TOO_LARGE);
  assert_null(util_dynbuf_ptr(&d));
  assert_int_equal(util_dynbuf_len(&d), 0);
  /* a formatted add that passes the cap after earlier text frees it all */
  assert_int_equal(util_dynbuf_add(&d, "1234"), UTIL_DYNBUF_OK);
  assert_int_equal(util_dynbuf_addf(&d, "%05d", 1), UTIL_DYNBUF_TOO_LARGE);
  assert_null(util_dynbuf_ptr(&d));
  util_dynbuf_free(&d);
}

static void dynbuf_take_hands_over(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 64);
  assert_int_equal(util_dynbuf_add(&d, "hello"), UTIL_DYNBUF_OK);
  size_t len = 0;
  char *p = util_dynbuf_take(&d, &len);
  assert_non_null(p);
  assert_int_equal(len, 5);
  assert_string_equal(p, "hello");
  assert_null(util_dynbuf_ptr(&d));
  assert_int_equal(util_dynbuf_len(&d), 0);
  /* the buffer is reusable and does not touch what was taken */
  assert_int_equal(util_dynbuf_add(&d, "world"), UTIL_DYNBUF_OK);
  assert_string_equal(p, "hello");
  assert_string_equal(util_dynbuf_ptr(&d), "world");
  free(p);
  util_dynbuf_free(&d);
}

static void dynbuf_reset_keeps_memory(void **state)
{
  (void)state;
  struct util_dynbuf d;
  util_dynbuf_init(&d, 64);
  assert_int_equal(util_dynbuf_add(&d, "abcdef"), UTIL_DYNBUF_OK);
  char *before = util_dynbuf_ptr(&d);
  util_dynbuf_reset(&d);
  assert_int_equal(util_dynbuf_len(&d), 0);
  assert_ptr_equal(util_dynbuf_ptr(&d), before);
  assert_string_equal(util_dynbuf_ptr(&d), "");
  assert_int_equal(util_dynbuf_add(&d, "xy"), UTIL_DYNBUF_OK);
  assert_ptr_equal(util_dynbuf_ptr(&d), before);
  assert_string_equal(util_dynbuf_ptr(&d), "xy");
  util_dynbuf_free(&d);
  util_dynbuf_reset(&d); /* on a freed buffer too */
  assert_int_equal(util_dynbuf_len(&d), 0);
}

static void dynbuf_error_names(void **state)
{
  (void)state;
  assert_string_equal(util_dynbuf_strerror(UTIL_DYNBUF_OK), "ok");
  assert_string_equal(util_dynbuf_strerror(UTIL_DYNBUF_TOO_LARGE), "too_large");
  assert_string_equal(util_dynbuf_strerror(UTIL_DYNBUF_NOMEM), "out_of_memory");
  assert_string_equal(util_dynbuf_strerror(UTIL_DYNBUF_FORMAT), "format");
  assert_string_equal(util_dynbuf_strerror(99), "unknown");
}

/* ---- throttle ---- */

static void throttle_once_a_second(void **state)
{
  (void)state;
  struct util_throttle t = UTIL_THROTTLE_INIT;
  unsigned long n = 99;
  assert_true(util_throttle_ok(&t, 1000, &n)); /* the first line goes out */
  assert_int_equal(n, 0);
  /* within the same second: refused, counted */
  assert_false(util_throttle_ok(&t, 1000, &n));
  assert_false(util_throttle_ok(&t, 1000, NULL));
  assert_false(util_throttle_ok(&t, 1000, &n));
  assert_int_equal(t.suppressed, 3);
  /* the next second: allowed, with what was left out */
  n = 0;
  assert_true(util_throttle_ok(&t, 1001, &n));
  assert_int_equal(n, 3);
  assert_int_equal(t.suppressed, 0);
  /* nothing left out since: zero */
  assert_true(util_throttle_ok(&t, 1002, &n));
  assert_int_equal(n, 0);
  /* a suppressed count may be ignored (NULL), and restarts all the same */
  assert_false(util_throttle_ok(&t, 1002, NULL));
  assert_true(util_throttle_ok(&t, 1010, NULL));
  assert_false(util_throttle_ok(&t, 1010, NULL));
  assert_true(util_throttle_ok(&t, 1011, &n));
  assert_int_equal(n, 1);
}

static void throttle_clock_stepped_back(void **state)
{
  (void)state;
  struct util_throttle t = {0};
  assert_true(util_throttle_ok(&t, 500, NULL));
  assert_true(util_throttle_ok(&t, 400, NULL)); /* not silenced until 500 comes again */
  assert_false(util_throttle_ok(&t, 400, NULL));
}

/* ---- bearer ---- */

static void bearer_ok(const char *value, const char *want)
{
  const char *tok = NULL;
  size_t len = 0;
  if(util_bearer_parse(value, &tok, &len) != UTIL_BEARER_OK)
    fail_msg("\"%s\" refused", value);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(tok, want, len);
  assert_true(tok >= value && tok + len == value + strlen(value)); /* points into value */
}

static void bearer_err(const char *value, int want)
{
  const char *tok = (const char *)&tok;
  size_t len = 12345;
  assert_int_equal(util_bearer_parse(value, &tok, &len), want);
  assert_ptr_equal(tok, (const char *)&tok); /* left alone */
  assert_int_equal(len, 12345);
}

static void bearer_variants(void **state)
{
  (void)state;
  bearer_ok("Bearer abc.def.ghi", "abc.def.ghi");
  bearer_ok("bearer k", "k");
  bearer_ok("BEARER k", "k");
  bearer_ok("bEaReR k", "k");
  bearer_ok("Bearer    spaced", "spaced");  /* spaces after the scheme skipped */
  bearer_ok("Bearer tok with spaces ", "tok with spaces "); /* the rest, as it is */
  bearer_ok("Bearer \tx", "\tx");           /* only spaces are skipped */
  bearer_err(NULL, UTIL_BEARER_MISSING);
  bearer_err("", UTIL_BEARER_NOT_BEARER);
  bearer_err("Basic dXNlcjpwYXNz", UTIL_BEARER_NOT_BEARER);
  bearer_err("Bearer", UTIL_BEARER_NOT_BEARER);
  bearer_err("Bearerabc", UTIL_BEARER_NOT_BEARER);
  bearer_err("Bearer\tabc", UTIL_BEARER_NOT_BEARER);
  bearer_err(" Bearer abc", UTIL_BEARER_NOT_BEARER);
  bearer_err("Bearer ", UTIL_BEARER_EMPTY);
  bearer_err("Bearer      ", UTIL_BEARER_EMPTY);
  bearer_err("bearer ", UTIL_BEARER_EMPTY);
}

/* ---- clock ---- */

static void clock_monotonic_non_decreasing(void **state)
{
  (void)state;
  int64_t prev = util_clock_mono_us();
  assert_true(prev > 0);
  for(int i = 0; i < 100000; i++) {
    int64_t t = util_clock_mono_us();
    assert_true(t >= prev);
    prev = t;
  }
}

static void clock_wall_is_unix_ms(void **state)
{
  (void)state;
  /* time() may read a coarser clock: a second of slack either side */
  int64_t before = (int64_t)time(NULL) * 1000 - 1000;
  int64_t ms = util_clock_wall_ms();
  int64_t after = (int64_t)time(NULL) * 1000 + 2000;
  assert_true(ms >= before && ms < after);
  assert_true(ms > INT64_C(1700000000000)); /* after November 2023: milliseconds, not seconds */
}

/* ---- hex ---- */

static void hexval_every_class(void **state)
{
  (void)state;
  for(int c = 0; c < 256; c++) {
    int want = -1;
    if(c >= '0' && c <= '9')
      want = c - '0';
    else if(c >= 'a' && c <= 'f')
      want = c - 'a' + 10;
    else if(c >= 'A' && c <= 'F')
      want = c - 'A' + 10;
    if(util_hexval((char)c) != want)
      fail_msg("util_hexval(0x%02x) = %d, want %d", c, util_hexval((char)c), want);
  }
  assert_int_equal(util_hexval('0'), 0);
  assert_int_equal(util_hexval('9'), 9);
  assert_int_equal(util_hexval('a'), 10);
  assert_int_equal(util_hexval('F'), 15);
  assert_int_equal(util_hexval('g'), -1);
  assert_int_equal(util_hexval('G'), -1);
  assert_int_equal(util_hexval('/'), -1);
  assert_int_equal(util_hexval(':'), -1);
  assert_int_equal(util_hexval('@'), -1);
  assert_int_equal(util_hexval('`'), -1);
  assert_int_equal(util_hexval('\0'), -1);
  assert_int_equal(util_hexval((char)0xe9), -1);
}

static void hex_encode_known(void **state)
{
  (void)state;
  const unsigned char b[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  char out[13];
  memset(out, 'X', sizeof(out));
  assert_int_equal(util_hex_encode(out, sizeof(out), b, sizeof(b)), 0);
  assert_string_equal(out, "00017f80abff");
  /* one byte short of the NUL: refused, nothing written */
  memset(out, 'X', sizeof(out));
  assert_int_equal(util_hex_encode(out, 12, b, sizeof(b)), -1);
  assert_int_equal(out[0], 'X');
  assert_int_equal(util_hex_encode(out, 0, b, 0), -1);
  assert_int_equal(util_hex_encode(out, 1, b, 0), 0);
  assert_string_equal(out, "");
}

static void hex_round_trip(void **state)
{
  (void)state;
  unsigned char in[256], back[256];
  for(int i = 0; i < 256; i++)
    in[i] = (unsigned char)(255 - i);
  char hex[513];
  assert_int_equal(util_hex_encode(hex, sizeof(hex), in, sizeof(in)), 0);
  assert_int_equal(strlen(hex), 512);
  assert_int_equal(util_hex_decode(back, sizeof(back), hex, 512), 256);
  assert_memory_equal(in, back, sizeof(in));
  /* either case decodes */
  unsigned char two[2];
  assert_int_equal(util_hex_decode(two, sizeof(two), "aBCd", 4), 2);
  assert_int_equal(two[0], 0xab);
  assert_int_equal(two[1], 0xcd);
  /* odd length, non-hex, too small an out */
  assert_int_equal(util_hex_decode(two, sizeof(two), "abc", 3), -1);
  assert_int_equal(util_hex_decode(two, sizeof(two), "ag", 2), -1);
  assert_int_equal(util_hex_decode(two, sizeof(two), "0x12", 4), -1);
  assert_int_equal(util_hex_decode(two, sizeof(two), "001122", 6), -1);
  assert_int_equal(util_hex_decode(two, sizeof(two), "", 0), 0);
}

/* ---- uuid7 ---- */

static void uuid7_good(void **state)
{
  (void)state;
  int64_t ms = -1;
  assert_int_equal(util_uuid7_ms("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b", &ms), 0);
  assert_int_equal(ms, INT64_C(0x0190a1b2c3d4));
  assert_int_equal(util_uuid7_ms("0190A1B2-C3D4-7E5F-8A6B-1C2D3E4F5A6B", &ms), 0);
  assert_int_equal(ms, INT64_C(0x0190a1b2c3d4));
  assert_int_equal(util_uuid7_ms("00000000-0000-7000-8000-000000000000", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(util_uuid7_ms("ffffffff-ffff-7fff-bfff-ffffffffffff", &ms), 0);
  assert_int_equal(ms, INT64_C(0xffffffffffff));
}

static void uuid7_bad(const char *id)
{
  int64_t ms = 42;
  if(util_uuid7_ms(id, &ms) != -1)
    fail_msg("\"%s\" accepted", id);
  assert_int_equal(ms, 42);
}

static void uuid7_refused(void **state)
{
  (void)state;
  uuid7_bad("0190a1b2-c3d4-4e5f-8a6b-1c2d3e4f5a6b");  /* version 4 */
  uuid7_bad("0190a1b2-c3d4-8e5f-8a6b-1c2d3e4f5a6b");  /* version 8 */
  uuid7_bad("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6");   /* 35 characters */
  uuid7_bad("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b0"); /* 37 */
  uuid7_bad("");
  uuid7_bad("0190a1b2c3d47e5f8a6b1c2d3e4f5a6b");      /* no dashes */
  uuid7_bad("0190a1g2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");  /* non-hex in the time */
  uuid7_bad("0190a1b2-c3dz-7e5f-8a6b-1c2d3e4f5a6b");
  uuid7_bad(" 190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");  /* what sscanf("%2x") let by */
  uuid7_bad("+190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");
  uuid7_bad("-190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");
  uuid7_bad("0x90a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b");
  uuid7_bad("0190a1b2xc3d4-7e5f-8a6b-1c2d3e4f5a6b");  /* no '-' after 8 digits */
  uuid7_bad("2026-11-28T00:25:57.123Z-0000-7000-00"); /* a time, not an id */
}

/* ---- shared constants ---- */

static void constants(void **state)
{
  (void)state;
  assert_int_equal(UTIL_TOKEN_MAX, 8192);
  /* passed between modules as int: the values are part of the contract */
  assert_int_equal(UTIL_LOG_DEBUG, 0);
  assert_int_equal(UTIL_LOG_INFO, 1);
  assert_int_equal(UTIL_LOG_WARN, 2);
  assert_int_equal(UTIL_LOG_ERROR, 3);
  assert_int_equal(UTIL_UUID7_LEN, 36);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dynbuf_starts_empty),
      cmocka_unit_test(dynbuf_cap_reached_exactly),
      cmocka_unit_test(dynbuf_cap_passed_frees),
      cmocka_unit_test(dynbuf_cap_zero),
      cmocka_unit_test(dynbuf_grows_over_many_adds),
      cmocka_unit_test(dynbuf_printf_grows),
      cmocka_unit_test(dynbuf_printf_cap),
      cmocka_unit_test(dynbuf_take_hands_over),
      cmocka_unit_test(dynbuf_reset_keeps_memory),
      cmocka_unit_test(dynbuf_error_names),
      cmocka_unit_test(throttle_once_a_second),
      cmocka_unit_test(throttle_clock_stepped_back),
      cmocka_unit_test(bearer_variants),
      cmocka_unit_test(clock_monotonic_non_decreasing),
      cmocka_unit_test(clock_wall_is_unix_ms),
      cmocka_unit_test(hexval_every_class),
      cmocka_unit_test(hex_encode_known),
      cmocka_unit_test(hex_round_trip),
      cmocka_unit_test(uuid7_good),
      cmocka_unit_test(uuid7_refused),
      cmocka_unit_test(constants),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
