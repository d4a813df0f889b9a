/* The retry policy: when a failed delivery is tried again, when it is given
 * up, and how a receiver's Retry-After is honoured within bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "retry.h"

static const int schedule[] = {0, 5, 30, 300};
#define N (sizeof(schedule) / sizeof(schedule[0]))

static void test_schedule_exact(void **state)
{
  (void)state;
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 0.0, 12345), 5000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 2, 0.0, UINT64_MAX), 30000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 3, 0.0, 0), 300000);
}

/* After as many attempts as the schedule has entries, the delivery has failed. */
static void test_exhausted(void **state)
{
  (void)state;
  assert_int_equal(hook_retry_delay_ms(schedule, N, N, 0.0, 0), -1);
  assert_int_equal(hook_retry_delay_ms(schedule, N, N, 0.5, UINT64_MAX), -1);
  assert_int_equal(hook_retry_delay_ms(schedule, N, N + 1, 0.0, 0), -1);
  assert_int_equal(hook_retry_delay_ms(schedule, N, UINT_MAX, 0.0, 0), -1);
  assert_int_equal(hook_retry_delay_ms(schedule, 1, 1, 0.0, 0), -1);
  assert_int_equal(hook_retry_delay_ms(schedule, 0, 1, 0.0, 0), -1);
  assert_int_equal(hook_retry_delay_ms(NULL, 4, 1, 0.0, 0), -1);
}

static void test_jitter_bounds(void **state)
{
  (void)state;
  /* rnd = 0 is the low end, exactly */
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 0.2, 0), 4000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 3, 0.1, 0), 270000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 1.0, 0), 0);
  /* rnd = UINT64_MAX is just under the high end, which rounds to it */
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 0.2, UINT64_MAX), 6000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 3, 0.1, UINT64_MAX), 330000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 1.0, UINT64_MAX), 10000);
  /* the middle of the range is the scheduled delay */
  assert_int_equal(hook_retry_delay_ms(schedule, N, 2, 0.5, UINT64_C(1) << 63), 30000);
  /* only the top 53 bits count */
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 0.2, 0x7ff), 4000);
}

/* Jitter outside 0..1 (or NaN) is held to it: never a negative wait. */
static void test_jitter_clamped(void **state)
{
  (void)state;
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, -0.5, 0), 5000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, NAN, 0), 5000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 3.0, 0), 0);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, 3.0, UINT64_MAX), 10000);
  assert_int_equal(hook_retry_delay_ms(schedule, N, 1, INFINITY, UINT64_MAX), 10000);
}

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Random draws stay within [1 - jitter, 1 + jitter] and spread over it. */
static void test_jitter_spread(void **state)
{
  (void)state;
  uint64_t seed = 42;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for(int i = 0; i < 10000; i++) {
    int64_t d = hook_retry_delay_ms(schedule, N, 2, 0.25, splitmix64(&seed));
    if(d < 22500 || d > 37500)
      fail_msg("delay %lld outside [22500, 37500]", (long long)d);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(lo < 23000);
  assert_true(hi > 37000);
}

static void test_schedule_zeros(void **state)
{
  (void)state;
  static const int s[] = {0, 0, 0, 10, -5, INT_MAX};
  size_t n = sizeof(s) / sizeof(s[0]);
  assert_int_equal(hook_retry_delay_ms(s, n, 1, 0.0, 0), 0);
  assert_int_equal(hook_retry_delay_ms(s, n, 1, 0.5, UINT64_MAX), 0);
  assert_int_equal(hook_retry_delay_ms(s, n, 2, 1.0, UINT64_MAX), 0);
  assert_int_equal(hook_retry_delay_ms(s, n, 3, 0.0, 0), 10000);
  /* a negative entry is no wait, not a negative one */
  assert_int_equal(hook_retry_delay_ms(s, n, 4, 0.5, UINT64_MAX), 0);
  /* the largest entry does not overflow */
  assert_int_equal(hook_retry_delay_ms(s, n, 5, 0.0, 0), (int64_t)INT_MAX * 1000);
  assert_true(hook_retry_delay_ms(s, n, 5, 1.0, UINT64_MAX) > (int64_t)INT_MAX * 1000);
  assert_int_equal(hook_retry_delay_ms(s, n, 6, 0.0, 0), -1);
}

#define NOW 1445412480 /* Wed, 21 Oct 2015 07:28:00 GMT */

struct after_case {
  const char *value;
  time_t now;
  int64_t ms;
};

static const struct after_case after_cases[] = {
    /* delta-seconds */
    {"120", NOW, 120000},
    {"1", NOW, 1000},
    {"0", NOW, 1000}, /* clamped up: never a busy loop */
    {"00120", NOW, 120000},
    {"86400", NOW, 86400000},
    {"86401", NOW, 86400000}, /* clamped down */
    {"999999999999", NOW, 86400000},
    {"9223372036854775807", NOW, 86400000},
    {" 120", NOW, 120000}, /* whitespace around the field value */
    {"120\t ", NOW, 120000},
    {"9223372036854775808", NOW, -1}, /* does not fit: malformed */
    {"99999999999999999999999999", NOW, -1},
    {"-1", NOW, -1},
    {"+120", NOW, -1},
    {"1.5", NOW, -1},
    {"1e3", NOW, -1},
    {"0x10", NOW, -1},
    {"12a", NOW, -1},
    {"a12", NOW, -1},
    {"1 2", NOW, -1},
    {"120,", NOW, -1},
    {"", NOW, -1},
    {" ", NOW, -1},
    {"\t", NOW, -1},
    /* HTTP-date */
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW - 120, 120000},
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW - 1, 1000},
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW, 1000},        /* now: the minimum */
    {"Wed, 21 Oct 2015 07:28:00 GMT", NOW + 3600, 1000}, /* past: the minimum */
    {"Thu, 01 Jan 1970 00:00:00 GMT", NOW, 1000},
    {"Thu, 22 Oct 2015 07:28:00 GMT", NOW, 86400000},
    {"Fri, 23 Oct 2015 07:28:00 GMT", NOW, 86400000}, /* beyond a day: the maximum */
    {"Fri, 31 Dec 9999 23:59:59 GMT", NOW, 86400000},
    {"Wed, 21 Oct 2015 07:30:00 GMT", NOW, 120000},
    {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 60, 60000}, /* RFC 9110's example */
    {" Wed, 21 Oct 2015 07:30:00 GMT ", NOW, 120000},
    {"Wed, 21 Oct 2015 07:30:00 UTC", NOW, -1},
    {"Wed, 1 Oct 2015 07:30:00 GMT", NOW, -1}, /* IMF-fixdate has two-digit days */
    {"Wed,21 Oct 2015 07:30:00 GMT", NOW, -1},
    {"Wed, 21 Oct 2015  7:30:00 GMT", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:00 gmt", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:0a GMT", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:00 GMT\n", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:00", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:00 GMTx", NOW, -1},
    {"Wed, 21 Oct 2015 07:30:00 GMT x", NOW, -1},
    {"Wed, 21 Foo 2015 07:30:00 GMT", NOW, -1},
    {"Wed, 32 Oct 2015 07:30:00 GMT", NOW, -1},
    {"Wed, 21 Oct 2015 25:30:00 GMT", NOW, -1},
    {"Wed, 21 Oct 2015 07:60:00 GMT", NOW, -1},
    {"Xyz, 21 Oct 2015 07:30:00 GMT", NOW, -1},
    {"Wednesday, 21-Oct-15 07:30:00 GMT", NOW, -1}, /* RFC 850 form */
    {"Wed Oct 21 07:30:00 2015", NOW, -1},          /* asctime form */
    {"2015-10-21T07:30:00Z", NOW, -1},
};

static void test_retry_after(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(after_cases) / sizeof(after_cases[0]); i++) {
    const struct after_case *c = &after_cases[i];
    int64_t got = hook_retry_after_ms(c->value, c->now);
    if(got != c->ms)
      fail_msg("hook_retry_after_ms(\"%s\", %lld) = %lld, want %lld", c->value, (long long)c->now,
               (long long)got, (long long)c->ms);
  }
  assert_int_equal(hook_retry_after_ms(NULL, NOW), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schedule_exact), cmocka_unit_test(test_exhausted),
      cmocka_unit_test(test_jitter_bounds),  cmocka_unit_test(test_jitter_clamped),
      cmocka_unit_test(test_jitter_spread),  cmocka_unit_test(test_schedule_zeros),
      cmocka_unit_test(test_retry_after),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
