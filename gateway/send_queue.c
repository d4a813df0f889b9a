#include "send_queue.h"

#include <stdlib.h>
#include <string.h>

int gw_sendq_push(struct gw_send_queue *q, struct sub_frame *f)
{
  if(q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 8;
    struct sub_frame **nf = malloc(cap * sizeof(*nf));
    if(!nf)
      return -1;
    for(size_t i = 0; i < q->n; i++)
      nf[i] = q->f[(q->head + i) % q->cap];
    free(q->f);
    q->f = nf;
    q->cap = cap;
    q->head = 0;
  }
  q->f[(q->head + q->n) % q->cap] = sub_frame_ref(f);
  q->n++;
  q->bytes += f->len;
  return 0;
}

struct sub_frame *gw_sendq_peek(const struct gw_send_queue *q)
{
  return q->n ? q->f[q->head] : NULL;
}

void gw_sendq_drop_head(struct gw_send_queue *q)
{
  struct sub_frame *f = q->f[q->head];
  q->bytes -= f->len;
  q->off = 0;
  q->head = (q->head + 1) % q->cap;
  q->n--;
  sub_frame_unref(f);
}

size_t gw_sendq_take(struct gw_send_queue *q, unsigned char *buf, size_t max)
{
  size_t n = 0;
  struct sub_frame *f;
  while(n < max && (f = gw_sendq_peek(q))) {
    size_t take = f->len - q->off;
    if(take > max - n)
      take = max - n;
    memcpy(buf + n, f->wire + q->off, take);
    n += take;
    q->off += take;
    if(q->off < f->len)
      break;
    gw_sendq_drop_head(q);
  }
  return n;
}

void gw_sendq_drop_unstarted(struct gw_send_queue *q)
{
  size_t keep = q->off ? 1 : 0;
  while(q->n > keep) {
    size_t last = (q->head + q->n - 1) % q->cap;
    q->bytes -= q->f[last]->len;
    sub_frame_unref(q->f[last]);
    q->n--;
  }
}

void gw_sendq_clear(struct gw_send_queue *q)
{
  for(size_t i = 0; i < q->n; i++)
    sub_frame_unref(q->f[(q->head + i) % q->cap]);
  free(q->f);
  memset(q, 0, sizeof(*q));
}
