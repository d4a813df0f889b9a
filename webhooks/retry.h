#ifndef HERALD_RETRY_H
#define HERALD_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The retry policy of webhook deliveries. schedule[i] is the delay in
 * seconds before attempt i+1 (schedule[0] is the first attempt, normally 0:
 * immediately); a delivery has as many attempts as the schedule has entries. */

#define HOOK_RETRY_AFTER_MIN_S 1        /* Retry-After is clamped to [1 s, 1 day] */
#define HOOK_RETRY_AFTER_MAX_S 86400

/* Returns the delay in milliseconds before the next attempt after
 * `attempts` attempts have failed (attempts >= 1), with jitter: the
 * scheduled delay times a factor uniform in [1 - jitter, 1 + jitter]
 * derived from `rnd` (any 64 random bits; jitter in 0..1). Returns -1 when
 * the schedule is exhausted (the delivery has failed for good). */
int64_t hook_retry_delay_ms(const int *schedule_s, size_t n, unsigned attempts, double jitter,
                            uint64_t rnd);

/* Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", relative to `now`). Returns the delay in
 * milliseconds clamped to [HOOK_RETRY_AFTER_MIN_S, HOOK_RETRY_AFTER_MAX_S]
 * seconds, or -1 when the value is missing or malformed. */
int64_t hook_retry_after_ms(const char *value, time_t now);

#endif
