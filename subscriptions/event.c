#include "event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HEADROOM 10 /* the largest RFC 6455 server header */

/* Writes the unmasked FIN+text header for `len` payload bytes so that it ends
 * at `end`. Returns the header's length. */
static size_t ws_text_header(unsigned char *end, size_t len)
{
  unsigned char h[FRAME_HEADROOM];
  size_t n;
  h[0] = 0x81; /* FIN, opcode 1 (text) */
  if(len < 126) {
    h[1] = (unsigned char)len;
    n = 2;
  }
  else if(len <= 0xffff) {
    h[1] = 126;
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
    n = 4;
  }
  else {
    h[1] = 127;
    for(int i = 0; i < 8; i++)
      h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    n = 10;
  }
  memcpy(end - n, h, n);
  return n;
}

static struct sub_frame *frame_alloc(size_t payload_len)
{
  struct sub_frame *f = malloc(sizeof(*f) + FRAME_HEADROOM + payload_len);
  if(!f)
    return NULL;
  atomic_init(&f->refs, 1);
  f->payload_len = payload_len;
  return f;
}

static void frame_seal(struct sub_frame *f)
{
  size_t h = ws_text_header(f->data + FRAME_HEADROOM, f->payload_len);
  f->wire = f->data + FRAME_HEADROOM - h;
  f->len = h + f->payload_len;
}

struct sub_frame *sub_frame_new(const char *payload, size_t len)
{
  struct sub_frame *f = frame_alloc(len);
  if(!f)
    return NULL;
  memcpy(f->data + FRAME_HEADROOM, payload, len);
  frame_seal(f);
  return f;
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

struct sub_event *sub_event_new(const char *topic, size_t topic_len, uint64_t seq,
                                const char *id, uint64_t ms, const char *data, size_t data_len)
{
  if(topic_len > SUB_TOPIC_MAX)
    return NULL;
  char time[SUB_TIME_LEN + 1];
  sub_time_format(ms, time);
  char head[SUB_TOPIC_MAX + 160];
  int hn = snprintf(head, sizeof(head),
                    "{\"op\":\"event\",\"topic\":\"%.*s\",\"id\":\"%s\",\"seq\":%" PRIu64
                    ",\"time\":\"%s\",\"data\":",
                    (int)topic_len, topic, id, seq, time);
  if(hn < 0 || (size_t)hn >= sizeof(head))
    return NULL;

  struct sub_event *ev = malloc(sizeof(*ev));
  if(!ev)
    return NULL;
  ev->frame = frame_alloc((size_t)hn + data_len + 1);
  if(!ev->frame) {
    free(ev);
    return NULL;
  }
  unsigned char *p = ev->frame->data + FRAME_HEADROOM;
  memcpy(p, head, (size_t)hn);
  memcpy(p + hn, data, data_len);
  p[(size_t)hn + data_len] = '}';
  frame_seal(ev->frame);

  atomic_init(&ev->refs, 1);
  ev->seq = seq;
  ev->ms = ms;
  memcpy(ev->id, id, SUB_ID_LEN + 1);
  memcpy(ev->topic, topic, topic_len);
  ev->topic[topic_len] = '\0';
  ev->topic_len = topic_len;
  ev->held = NULL;
  ev->data_off = (size_t)hn;
  return ev;
}

const char *sub_event_data(const struct sub_event *ev, size_t *len)
{
  *len = ev->frame->payload_len - ev->data_off - 1;
  return sub_frame_payload(ev->frame) + ev->data_off;
}

struct sub_event *sub_event_ref(struct sub_event *ev)
{
  atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
  return ev;
}

void sub_event_unref(struct sub_event *ev)
{
  if(ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1) {
    sub_frame_unref(ev->frame);
    free(ev);
  }
}
