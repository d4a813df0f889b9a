#ifndef HERALD_UTIL_THROTTLE_H
#define HERALD_UTIL_THROTTLE_H

#include <stdbool.h>
#include <time.h>

/* At most one log line a second for an event a client can cause at will
 * (refused connections, slow consumers), counting the lines left out. One
 * struct per kind of line; zero-initialised (or UTIL_THROTTLE_INIT) it lets
 * the first line through. Not locked: its owner serializes the calls. */

struct util_throttle {
  time_t last;              /* the second of the last line let through */
  unsigned long suppressed; /* calls refused since then */
};

#define UTIL_THROTTLE_INIT {0, 0}

/* True when `now` is another second than that of the last true (so a clock
 * stepped back does not silence the line); then *suppressed (if not NULL)
 * gets the number of calls refused since, and the count restarts. Else
 * counts this call and returns false. */
bool util_throttle_ok(struct util_throttle *t, time_t now, unsigned long *suppressed);

#endif
