#ifndef HERALD_RATE_H
#define HERALD_RATE_H

#include <stdint.h>

#include "util/clock.h"

/* A token bucket: `rate` tokens a second, at most `burst` saved up. Not
 * locked: its owner serializes the calls. */
struct gw_bucket {
  double tokens;
  double rate, burst; /* rate 0: no limit */
  int64_t last_us;
};

/* Starts the bucket full. */
void gw_bucket_init(struct gw_bucket *b, double rate, double burst, int64_t now_us);

/* Takes one token. Returns 0 when there was one, else the milliseconds
 * (at least 1) until there will be. */
int64_t gw_bucket_take(struct gw_bucket *b, int64_t now_us);

/* Monotonic clock in microseconds (util_clock_mono_us; the name stays for
 * its callers). */
static inline int64_t gw_now_us(void)
{
  return util_clock_mono_us();
}

#endif
