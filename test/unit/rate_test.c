/* The token bucket behind client.rate_per_s/rate_burst and the per-key API
 * rate: it starts full, refills at `rate` a second up to `burst`, and tells a
 * refused caller how long to wait. Time is given explicitly: no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "rate.h"

#define T0 ((int64_t)1000000000) /* an arbitrary start, in microseconds */
#define MS ((int64_t)1000)

/* Takes n tokens at `now`, each of which must be granted. */
static void take_n(struct gw_bucket *b, int n, int64_t now)
{
  for(int i = 0; i < n; i++)
    if(gw_bucket_take(b, now) != 0)
      fail_msg("take %d of %d at +%lld us refused", i + 1, n, (long long)(now - T0));
}

/* Asserts that the wait `w` returned at `now` is the time to the next token:
 * a take at now + w ms succeeds, one at now + (w - 2) ms does not (the wait is
 * rounded up, by at most 1 ms past the exact time). Probes copies of b. */
static void assert_wait_exact(const struct gw_bucket *b, int64_t now, int64_t w, double exact_ms)
{
  if(w < 1)
    fail_msg("wait %lld ms, want at least 1", (long long)w);
  if((double)w < exact_ms || (double)w > ceil(exact_ms) + 1)
    fail_msg("wait %lld ms, the next token comes in %.3f ms", (long long)w, exact_ms);
  struct gw_bucket probe = *b;
  if(gw_bucket_take(&probe, now + w * MS) != 0)
    fail_msg("still refused after the %lld ms it said to wait", (long long)w);
  if(w >= 2) {
    probe = *b;
    assert_true(gw_bucket_take(&probe, now + (w - 2) * MS) > 0);
  }
}

static void test_starts_full(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 10, 5, T0);
  take_n(&b, 5, T0);
  int64_t w = gw_bucket_take(&b, T0);
  assert_true(w >= 1);
  /* 10 a second: the next token in 100 ms */
  assert_wait_exact(&b, T0, w, 100);
  /* refusals take nothing: asking again says the same */
  assert_int_equal(gw_bucket_take(&b, T0), w);
  assert_int_equal(gw_bucket_take(&b, T0), w);
}

static void test_burst_larger_than_rate(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 100, 200, T0); /* the client port's defaults */
  take_n(&b, 200, T0);
  int64_t w = gw_bucket_take(&b, T0);
  assert_true(w >= 1);
  assert_wait_exact(&b, T0, w, 10);
}

static void test_refill(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 10, 20, T0);
  take_n(&b, 20, T0);
  assert_true(gw_bucket_take(&b, T0) > 0);

  /* one second later: exactly 10 more */
  take_n(&b, 10, T0 + 1000 * MS);
  assert_true(gw_bucket_take(&b, T0 + 1000 * MS) > 0);

  /* 99 ms: not yet a token; 101 ms: one (probed on copies: asking changes
   * nothing but the time the bucket last refilled) */
  struct gw_bucket probe = b;
  assert_true(gw_bucket_take(&probe, T0 + 1099 * MS) > 0);
  assert_int_equal(gw_bucket_take(&b, T0 + 1101 * MS), 0);
  assert_true(gw_bucket_take(&b, T0 + 1101 * MS) > 0);

  /* small steps add up like one big one: 999 x 0.1 ms is just short of a
   * token (100 ms at 10/s), 0.2 ms more makes it */
  gw_bucket_init(&b, 10, 1, T0);
  take_n(&b, 1, T0);
  int64_t t = T0;
  for(int i = 0; i < 999; i++) {
    t += 100;
    assert_true(gw_bucket_take(&b, t) > 0);
  }
  assert_int_equal(gw_bucket_take(&b, t + 200), 0);
}

static void test_never_beyond_burst(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 10, 5, T0);
  take_n(&b, 5, T0);
  /* an hour of silence saves up 5, not 36000 */
  int64_t later = T0 + 3600 * 1000 * MS;
  take_n(&b, 5, later);
  int64_t w = gw_bucket_take(&b, later);
  assert_true(w >= 1);
  assert_wait_exact(&b, later, w, 100);

  /* a full bucket left alone stays at burst */
  gw_bucket_init(&b, 1000, 3, T0);
  take_n(&b, 3, T0 + 10 * 1000 * MS);
  assert_true(gw_bucket_take(&b, T0 + 10 * 1000 * MS) > 0);
}

static void test_rate_zero_never_refuses(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 0, 1, T0);
  for(int i = 0; i < 100000; i++)
    assert_int_equal(gw_bucket_take(&b, T0), 0);
  /* negative rates are no limit too */
  gw_bucket_init(&b, -1, 1, T0);
  for(int i = 0; i < 1000; i++)
    assert_int_equal(gw_bucket_take(&b, T0 - i), 0);
}

/* The wait is the time to the next whole token, whatever is left over. */
static void test_wait_matches_next_token(void **state)
{
  (void)state;
  static const struct {
    double rate, burst;
    int64_t after_us; /* time since emptying when asked */
    double exact_ms;  /* then the next token comes in */
  } cases[] = {
      {1, 1, 0, 1000},
      {1, 1, 250 * MS, 750},
      {1, 1, 999 * MS, 1},
      {1, 1, 999 * MS + 500, 0.5},
      {4, 1, 100 * MS, 150},
      {3, 2, 0, 1000.0 / 3},
      {3, 2, 1, 1000.0 / 3 - 0.001},
      {0.5, 1, 0, 2000},
      {0.5, 1, 1500 * MS, 500},
      {7, 1, 0, 1000.0 / 7},
      {1000, 10, 0, 1},
      {1000000, 10, 0, 0.001}, /* less than a millisecond: still at least 1 */
      {10000000, 100, 0, 0.0001},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct gw_bucket b;
    gw_bucket_init(&b, cases[i].rate, cases[i].burst, T0);
    take_n(&b, (int)cases[i].burst, T0);
    int64_t now = T0 + cases[i].after_us;
    int64_t w = gw_bucket_take(&b, now);
    if(w < 1)
      fail_msg("case %zu: not refused (%lld)", i, (long long)w);
    assert_wait_exact(&b, now, w, cases[i].exact_ms);
  }
}

/* Waiting exactly as told, again and again, is granted every time: the
 * bucket gives `rate` a second to a caller that follows its answers. */
static void test_follow_the_waits(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 50, 1, T0);
  int64_t now = T0;
  take_n(&b, 1, now);
  int granted = 0;
  while(now < T0 + 10 * 1000 * MS) {
    int64_t w = gw_bucket_take(&b, now);
    if(w == 0) {
      granted++;
      continue;
    }
    assert_true(w >= 1 && w <= 21); /* 20 ms a token, rounded up */
    now += w * MS;
  }
  /* 10 s at 50/s: 500, less what the rounding up costs (at most 1 ms in 20) */
  assert_true(granted >= 475 && granted <= 500);
}

/* A burst below 1 would never grant anything: it holds one token. */
static void test_burst_at_least_one(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 1, 0, T0);
  assert_int_equal(gw_bucket_take(&b, T0), 0);
  assert_true(gw_bucket_take(&b, T0) >= 1);
  gw_bucket_init(&b, 1, 0.5, T0);
  assert_int_equal(gw_bucket_take(&b, T0), 0);
}

/* The clock never runs backwards, but if a caller passes an older time the
 * bucket neither refills nor breaks. */
static void test_time_backwards(void **state)
{
  (void)state;
  struct gw_bucket b;
  gw_bucket_init(&b, 10, 2, T0);
  take_n(&b, 2, T0);
  int64_t w = gw_bucket_take(&b, T0 - 1000 * MS);
  assert_true(w >= 1);
  struct gw_bucket probe = b;
  assert_true(gw_bucket_take(&probe, T0 + 99 * MS) > 0);
  assert_int_equal(gw_bucket_take(&b, T0 + 101 * MS), 0);
}

static void test_now_monotonic(void **state)
{
  (void)state;
  int64_t prev = gw_now_us();
  assert_true(prev > 0);
  for(int i = 0; i < 1000; i++) {
    int64_t t = gw_now_us();
    assert_true(t >= prev);
    prev = t;
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_starts_full),
      cmocka_unit_test(test_burst_larger_than_rate),
      cmocka_unit_test(test_refill),
      cmocka_unit_test(test_never_beyond_burst),
      cmocka_unit_test(test_rate_zero_never_refuses),
      cmocka_unit_test(test_wait_matches_next_token),
      cmocka_unit_test(test_follow_the_waits),
      cmocka_unit_test(test_burst_at_least_one),
      cmocka_unit_test(test_time_backwards),
      cmocka_unit_test(test_now_monotonic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
