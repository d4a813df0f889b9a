/*
 * segment_fuzz.c - libFuzzer harness for the history store's segment codec
 * (history/segment.h): the blob one commit of the durable history log is
 * stored as, read back at start-up from a file that may be damaged.
 *
 * The input is decoded as a segment in a heap buffer of exactly its length
 * (ASan sees any read past it), and cut one byte short. A segment that
 * decodes must come out again byte for byte when its events are encoded
 * (the codec has one encoding per event list), with offsets strictly
 * increasing, valid topics and 36-byte ids; one that does not decode may
 * have handed over some events first, each freed here (LeakSanitizer checks
 * that the decoder leaks none of its own).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segment.h"
#include "topic.h"

struct got {
  struct sub_event *ev[4096];
  size_t n;
};

static int take(void *arg, struct sub_event *ev)
{
  struct got *g = arg;
  if(g->n == sizeof(g->ev) / sizeof(g->ev[0])) {
    sub_event_unref(ev);
    return -1;
  }
  g->ev[g->n++] = ev;
  return 0;
}

static void check(const uint8_t *data, size_t size)
{
  unsigned char *buf = malloc(size ? size : 1);
  if(!buf)
    return;
  memcpy(buf, data, size);
  static struct got g;
  g.n = 0;
  long n = hist_segment_decode(buf, size, take, &g);
  if(n >= 0) {
    if((size_t)n != g.n || !n)
      abort();
    struct util_dynbuf b;
    util_dynbuf_init(&b, (size_t)1 << 26);
    for(size_t i = 0; i < g.n; i++) {
      const struct sub_event *ev = g.ev[i];
      if((i && ev->offset <= g.ev[i - 1]->offset) || !ev->offset || !ev->seq ||
         strlen(ev->id) != SUB_ID_LEN || !sub_topic_valid(ev->topic, ev->topic_len, NULL))
        abort();
      if(hist_segment_put(&b, ev))
        abort();
    }
    if(util_dynbuf_len(&b) != size || memcmp(util_dynbuf_ptr(&b), buf, size) != 0)
      abort();
    util_dynbuf_free(&b);
  }
  for(size_t i = 0; i < g.n; i++)
    sub_event_unref(g.ev[i]);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  check(data, size);
  if(size)
    check(data, size - 1);
  return 0;
}
