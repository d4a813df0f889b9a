/* Standard Webhooks signing: receivers verify our deliveries with the
 * spec's libraries, so the signature must match the spec byte for byte, and
 * secrets an operator pastes in must be refused with a reason when wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "signer.h"

/* The example of the Standard Webhooks spec (checked against Python's hmac). */
#define SPEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SPEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SPEC_TS 1614265330
#define SPEC_BODY "{\"test\": 2432232314}"
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static struct hook_secret parse_ok(const char *text)
{
  struct hook_secret s;
  const char *why = NULL;
  if(hook_secret_parse(text, &s, &why) != 0)
    fail_msg("hook_secret_parse(\"%s\") failed: %s", text, why);
  return s;
}

static void test_spec_vector(void **state)
{
  (void)state;
  struct hook_secret s = parse_ok(SPEC_SECRET);
  assert_int_equal(s.len, 24);
  char sig[HOOK_SIG_MAX];
  assert_int_equal(hook_sign(&s, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), sig), 0);
  assert_string_equal(sig, SPEC_SIG);
  assert_true(hook_verify(&s, SPEC_ID, SPEC_TS, SPEC_BODY, strlen(SPEC_BODY), SPEC_SIG));
}

/* The body is bytes, not a string: its length is what counts, NULs included. */
static void test_body_is_bytes(void **state)
{
  (void)state;
  struct hook_secret s = parse_ok(SPEC_SECRET);
  char a[HOOK_SIG_MAX], b[HOOK_SIG_MAX], c[HOOK_SIG_MAX];
  assert_int_equal(hook_sign(&s, "m", 1, "ab\0cd", 5, a), 0);
  assert_int_equal(hook_sign(&s, "m", 1, "ab\0ce", 5, b), 0);
  assert_int_equal(hook_sign(&s, "m", 1, "ab", 2, c), 0);
  assert_string_not_equal(a, b);
  assert_string_not_equal(a, c);
  assert_true(hook_verify(&s, "m", 1, "ab\0cd", 5, a));
  /* an empty body signs "<id>.<ts>." */
  assert_int_equal(hook_sign(&s, "m", 1, NULL, 0, a), 0);
  assert_int_equal(hook_sign(&s, "m", 1, "", 0, b), 0);
  assert_string_equal(a, b);
  assert_int_equal(hook_sign(&s, "m", 1, NULL, 3, a), -1);
  assert_int_equal(hook_sign(&s, NULL, 1, "x", 1, a), -1);
  assert_int_equal(hook_sign(NULL, "m", 1, "x", 1, a), -1);
}

static void test_generate(void **state)
{
  (void)state;
  for(size_t n = HOOK_SECRET_MIN; n <= HOOK_SECRET_MAX; n++) {
    char text[HOOK_SECRET_TEXT_MAX];
    assert_int_equal(hook_secret_generate(n, text, sizeof(text)), 0);
    assert_int_equal(strncmp(text, "whsec_", 6), 0);
    assert_int_equal(strlen(text), 6 + 4 * ((n + 2) / 3));
    struct hook_secret s = parse_ok(text);
    assert_int_equal(s.len, n);
  }
  char a[HOOK_SECRET_TEXT_MAX], b[HOOK_SECRET_TEXT_MAX];
  assert_int_equal(hook_secret_generate(32, a, sizeof(a)), 0);
  assert_int_equal(hook_secret_generate(32, b, sizeof(b)), 0);
  assert_string_not_equal(a, b);
}

static void test_generate_refuses(void **state)
{
  (void)state;
  char text[HOOK_SECRET_TEXT_MAX];
  assert_int_equal(hook_secret_generate(HOOK_SECRET_MIN - 1, text, sizeof(text)), -1);
  assert_int_equal(hook_secret_generate(HOOK_SECRET_MAX + 1, text, sizeof(text)), -1);
  assert_int_equal(hook_secret_generate(0, text, sizeof(text)), -1);
  /* 24 bytes need "whsec_" + 32 + NUL = 39 */
  assert_int_equal(hook_secret_generate(24, text, 38), -1);
  assert_int_equal(hook_secret_generate(24, text, 39), 0);
  assert_int_equal(strlen(text), 38);
  assert_int_equal(hook_secret_generate(24, NULL, 39), -1);
}

#define A21 "AAAAAAAAAAAAAAAAAAAAA"
#define A84 A21 A21 A21 A21

struct bad_secret {
  const char *text;
  const char *why_has; /* a word the reason must contain */
};

static const struct bad_secret bad_secrets[] = {
    {"", "whsec_"},
    {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"},
    {"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"},
    {"whsec", "whsec_"},
    {"whsec_", "empty"},
    /* not base64 */
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", "base64"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w", "base64"}, /* url-safe alphabet */
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_w", "base64"},
    {"whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "base64"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", "base64"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "base64"},
    {"whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaS", "base64"},
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "base64"},  /* length not a multiple of 4 */
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL=Sw", "base64"}, /* padding mid-text */
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=====", "base64"},
    {"whsec_====", "base64"},
    {"whsec_A===", "base64"},
    /* 25 bytes without their padding ("...AA==" is the valid form) */
    {"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "base64"},
    /* 23 bytes: 32 chars with one '=' */
    {"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "shorter"},
    {"whsec_AAAA", "shorter"},
    /* 65 bytes: 88 chars with one '=' */
    {"whsec_" A84 "AAA=", "longer"},
    /* 66 bytes: 88 chars, no padding */
    {"whsec_" A84 "AAAA", "longer"},
    /* 69 bytes: 92 chars */
    {"whsec_" A84 "AAAAAAAA", "longer"},
};

static void test_bad_secrets(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(bad_secrets) / sizeof(bad_secrets[0]); i++) {
    const struct bad_secret *c = &bad_secrets[i];
    struct hook_secret s;
    const char *why = NULL;
    if(hook_secret_parse(c->text, &s, &why) != -1)
      fail_msg("hook_secret_parse(\"%s\") accepted a bad secret", c->text);
    if(!why || !strstr(why, c->why_has))
      fail_msg("hook_secret_parse(\"%s\"): reason \"%s\" lacks \"%s\"", c->text,
               why ? why : "(null)", c->why_has);
    assert_int_equal(hook_secret_parse(c->text, &s, NULL), -1);
  }
  const char *why = NULL;
  struct hook_secret s;
  assert_int_equal(hook_secret_parse(NULL, &s, &why), -1);
  assert_non_null(why);
}

/* The limits themselves are accepted: 24 and 64 bytes, each padding form. */
#define S21 "/////////////////////"

static void test_secret_limits(void **state)
{
  (void)state;
  struct hook_secret s;
  s = parse_ok("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); /* 24 */
  assert_int_equal(s.len, 24);
  s = parse_ok("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="); /* 25 */
  assert_int_equal(s.len, 25);
  s = parse_ok("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); /* 26 */
  assert_int_equal(s.len, 26);
  s = parse_ok("whsec_" S21 S21 S21 S21 "/w=="); /* 64 */
  assert_int_equal(s.len, 64);
  for(size_t i = 0; i < 64; i++)
    assert_int_equal(s.key[i], 0xff);
  s = parse_ok(SPEC_SECRET);
  static const unsigned char head[] = {0x31, 0xf2, 0x90, 0xf6};
  assert_memory_equal(s.key, head, sizeof(head));
}

static void test_verify_rejects(void **state)
{
  (void)state;
  struct hook_secret s = parse_ok(SPEC_SECRET);
  char body[] = SPEC_BODY;
  size_t len = strlen(body);
  assert_true(hook_verify(&s, SPEC_ID, SPEC_TS, body, len, SPEC_SIG));
  /* every flipped body byte breaks it */
  for(size_t i = 0; i < len; i++) {
    body[i] ^= 0x01;
    assert_false(hook_verify(&s, SPEC_ID, SPEC_TS, body, len, SPEC_SIG));
    body[i] ^= 0x01;
  }
  assert_false(hook_verify(&s, SPEC_ID, SPEC_TS, body, len - 1, SPEC_SIG));
  assert_false(hook_verify(&s, "msg_p5jXN8AQM9LWM0D4loKWxJel", SPEC_TS, body, len, SPEC_SIG));
  assert_false(hook_verify(&s, SPEC_ID, SPEC_TS + 1, body, len, SPEC_SIG));
  assert_false(hook_verify(&s, SPEC_ID, -SPEC_TS, body, len, SPEC_SIG));
  struct hook_secret other = parse_ok("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx");
  assert_false(hook_verify(&other, SPEC_ID, SPEC_TS, body, len, SPEC_SIG));
  assert_false(hook_verify(NULL, SPEC_ID, SPEC_TS, body, len, SPEC_SIG));
  assert_false(hook_verify(&s, NULL, SPEC_TS, body, len, SPEC_SIG));
}

/* A receiver-side tool feeds hook_verify whatever arrived: it must say no,
 * never crash or read past the string. */
static void test_verify_malformed(void **state)
{
  (void)state;
  struct hook_secret s = parse_ok(SPEC_SECRET);
  size_t len = strlen(SPEC_BODY);
  static const char *const bad[] = {
      NULL,
      "",
      "v1,",
      "v1",
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",   /* padding cut */
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==", /* one '=' too many */
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= ",
      " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "v1,G0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", /* url-safe alphabet */
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n",
      "v1,\xff\xfe",
      "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if(hook_verify(&s, SPEC_ID, SPEC_TS, SPEC_BODY, len, bad[i]))
      fail_msg("hook_verify accepted \"%s\"", bad[i] ? bad[i] : "(null)");
  /* a very long string is refused without trouble */
  static char big[1 << 16];
  memset(big, 'A', sizeof(big) - 1);
  memcpy(big, SPEC_SIG, strlen(SPEC_SIG));
  assert_false(hook_verify(&s, SPEC_ID, SPEC_TS, SPEC_BODY, len, big));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_vector),    cmocka_unit_test(test_body_is_bytes),
      cmocka_unit_test(test_generate),       cmocka_unit_test(test_generate_refuses),
      cmocka_unit_test(test_bad_secrets),    cmocka_unit_test(test_secret_limits),
      cmocka_unit_test(test_verify_rejects), cmocka_unit_test(test_verify_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
