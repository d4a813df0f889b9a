#ifndef HERALD_ID_H
#define HERALD_ID_H

#include <stdint.h>

/* Event ids are UUIDv7: 48 bits of Unix milliseconds, then a counter and
 * random bits, so they are unique and sort by publish time. Ids from one
 * process strictly increase, even within one millisecond. */

#define SUB_ID_LEN 36   /* "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b" */
#define SUB_TIME_LEN 24 /* "2026-11-28T00:25:57.123Z" */

/* Writes a new id (NUL-terminated) to `out` and the millisecond it carries
 * to *ms. Thread-safe. Returns 0, or -1 when no random bytes were to be had. */
int sub_id_new(char out[SUB_ID_LEN + 1], uint64_t *ms);

/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds. */
void sub_time_format(uint64_t ms, char out[SUB_TIME_LEN + 1]);

/* The current time in Unix milliseconds. */
uint64_t sub_now_ms(void);

#endif
