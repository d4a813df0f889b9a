#include "throttle.h"

bool util_throttle_ok(struct util_throttle *t, time_t now, unsigned long *suppressed)
{
  if(now == t->last) {
    t->suppressed++;
    return false;
  }
  if(suppressed)
    *suppressed = t->suppressed;
  t->suppressed = 0;
  t->last = now;
  return true;
}
