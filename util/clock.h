#ifndef HERALD_UTIL_CLOCK_H
#define HERALD_UTIL_CLOCK_H

#include <stdint.h>

/* Herald's two clocks. Intervals, timeouts and rates use the monotonic one,
 * which no clock step moves; what is shown or stored as a time of day
 * (event ids, log lines, delivery times) uses the wall clock. */

/* CLOCK_MONOTONIC in microseconds: only differences mean anything. */
int64_t util_clock_mono_us(void);

/* CLOCK_REALTIME in Unix milliseconds. */
int64_t util_clock_wall_ms(void);

#endif
