#include "rate.h"

void gw_bucket_init(struct gw_bucket *b, double rate, double burst, int64_t now_us)
{
  b->rate = rate;
  b->burst = burst < 1 ? 1 : burst;
  b->tokens = b->burst;
  b->last_us = now_us;
}

int64_t gw_bucket_take(struct gw_bucket *b, int64_t now_us)
{
  if(b->rate <= 0)
    return 0;
  if(now_us > b->last_us) {
    b->tokens += (double)(now_us - b->last_us) * b->rate / 1e6;
    if(b->tokens > b->burst)
      b->tokens = b->burst;
    b->last_us = now_us;
  }
  if(b->tokens >= 1) {
    b->tokens -= 1;
    return 0;
  }
  double exact = (1 - b->tokens) * 1000 / b->rate;
  int64_t ms = (int64_t)exact;
  if((double)ms < exact) /* rounded up: a token is there after the wait */
    ms++;
  return ms < 1 ? 1 : ms;
}
