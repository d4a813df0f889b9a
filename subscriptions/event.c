#include "event.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct sub_frame *sub_frame_alloc(size_t headroom, size_t payload_len)
{
  struct sub_frame *f = malloc(sizeof(*f) + headroom + payload_len);
  if(!f)
    return NULL;
  atomic_init(&f->refs, 1);
  f->payload_len = payload_len;
  f->len = payload_len;
  f->wire = f->data + headroom;
  return f;
}

unsigned char *sub_frame_body(struct sub_frame *f)
{
  return f->wire + (f->len - f->payload_len);
}

void sub_frame_prepend(struct sub_frame *f, const void *header, size_t n)
{
  f->wire -= n;
  f->len += n;
  memcpy(f->wire, header, n);
}

struct sub_frame *sub_frame_ref(struct sub_frame *f)
{
  atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
  return f;
}

void sub_frame_unref(struct sub_frame *f)
{
  if(f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
    free(f);
}

const char *sub_frame_payload(const struct sub_frame *f)
{
  return (const char *)f->wire + (f->len - f->payload_len);
}

size_t sub_event_size(size_t topic_len, size_t data_len)
{
  return sizeof(struct sub_event) + topic_len + 1 + data_len + 1;
}

struct sub_event *sub_event_new(const char *topic, size_t topic_len, uint64_t seq,
                                const char *id, uint64_t ms, const char *data, size_t data_len)
{
  if(topic_len > SUB_TOPIC_MAX)
    return NULL;
  size_t size = sub_event_size(topic_len, data_len);
  struct sub_event *ev = malloc(size);
  if(!ev)
    return NULL;
  atomic_init(&ev->refs, 1);
  ev->seq = seq;
  ev->ms = ms;
  memcpy(ev->id, id, SUB_ID_LEN + 1);
  char *p = ev->buf;
  memcpy(p, topic, topic_len);
  p[topic_len] = '\0';
  ev->topic = p;
  ev->topic_len = topic_len;
  p += topic_len + 1;
  memcpy(p, data, data_len);
  p[data_len] = '\0';
  ev->data = p;
  ev->data_len = data_len;
  ev->size = size;
  ev->held = NULL;
  ev->offset = 0;
  ev->log_ms = 0;
  ev->max_age_ms = 0;
  ev->epoch = NULL;
  for(int i = 0; i < SUB_EVENT_ENCODINGS; i++) {
    atomic_init(&ev->enc[i], NULL);
    atomic_init(&ev->enc_state[i], 0);
  }
  return ev;
}

const char *sub_event_data(const struct sub_event *ev, size_t *len)
{
  *len = ev->data_len;
  return ev->data;
}

struct sub_event *sub_event_ref(struct sub_event *ev)
{
  atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
  return ev;
}

void sub_event_unref(struct sub_event *ev)
{
  if(ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1) {
    for(int i = 0; i < SUB_EVENT_ENCODINGS; i++)
      sub_frame_unref(atomic_load_explicit(&ev->enc[i], memory_order_relaxed));
    free(ev);
  }
}

struct sub_frame *sub_event_encoded(struct sub_event *ev, unsigned slot, sub_encode_fn fn,
                                    void *arg)
{
  struct sub_frame *f = atomic_load_explicit(&ev->enc[slot], memory_order_acquire);
  if(f)
    return f;
  unsigned char none = 0;
  if(atomic_compare_exchange_strong(&ev->enc_state[slot], &none, 1)) {
    f = fn(ev, arg);
    atomic_store_explicit(&ev->enc[slot], f, memory_order_release);
    atomic_store_explicit(&ev->enc_state[slot], f ? 2 : 0, memory_order_release);
    return f;
  }
  /* Another worker is encoding it: an encoding takes microseconds, and
   * waiting keeps serialize-once true for every socket of the transport. */
  while(atomic_load_explicit(&ev->enc_state[slot], memory_order_acquire) == 1)
    sched_yield();
  return atomic_load_explicit(&ev->enc[slot], memory_order_acquire);
}
