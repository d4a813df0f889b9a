#include "segment.h"

#include <stdbool.h>
#include <string.h>

#include "topic.h"

static void put64(unsigned char *p, uint64_t v)
{
  for(int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
  uint64_t v = 0;
  for(int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

int hist_segment_put(struct util_dynbuf *b, const struct sub_event *ev)
{
  unsigned char head[HIST_SEGMENT_HEAD], *p = head;
  put64(p, ev->offset);
  put64(p + 8, ev->ms);
  put64(p + 16, ev->seq);
  put64(p + 24, ev->max_age_ms);
  p += 32;
  memcpy(p, ev->id, SUB_ID_LEN);
  p += SUB_ID_LEN;
  p[0] = (unsigned char)ev->topic_len;
  p[1] = (unsigned char)(ev->topic_len >> 8);
  for(int i = 0; i < 4; i++)
    p[2 + i] = (unsigned char)(ev->data_len >> (8 * i));
  int rc = util_dynbuf_addn(b, head, sizeof(head));
  if(!rc)
    rc = util_dynbuf_addn(b, ev->topic, ev->topic_len);
  if(!rc && ev->data_len)
    rc = util_dynbuf_addn(b, ev->data, ev->data_len);
  return rc;
}

static bool id_ok(const unsigned char *id)
{
  for(int i = 0; i < SUB_ID_LEN; i++)
    if(!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-'))
      return false;
  return true;
}

/* The last millisecond of year 9999: past it a time is not one the log
 * gave (and RFC 3339 has no text for it); a retention no longer than it. */
#define MS_MAX 253402300799999ull

long hist_segment_decode(const unsigned char *p, size_t len,
                         int (*fn)(void *arg, struct sub_event *ev), void *arg)
{
  long n = 0;
  uint64_t last = 0;
  if(!len)
    return -1;
  while(len) {
    if(len < HIST_SEGMENT_HEAD)
      return -1;
    uint64_t offset = get64(p), ms = get64(p + 8), seq = get64(p + 16), age = get64(p + 24);
    const unsigned char *id = p + 32, *q = p + 32 + SUB_ID_LEN;
    size_t topic_len = (size_t)q[0] | (size_t)q[1] << 8;
    size_t data_len = (size_t)q[2] | (size_t)q[3] << 8 | (size_t)q[4] << 16 | (size_t)q[5] << 24;
    p += HIST_SEGMENT_HEAD;
    len -= HIST_SEGMENT_HEAD;
    if(!offset || offset <= last || !seq || ms > MS_MAX || age > MS_MAX || !id_ok(id) ||
       topic_len > len ||
       data_len > len - topic_len || !sub_topic_valid((const char *)p, topic_len, NULL))
      return -1;
    char sid[SUB_ID_LEN + 1];
    memcpy(sid, id, SUB_ID_LEN);
    sid[SUB_ID_LEN] = '\0';
    struct sub_event *ev = sub_event_new((const char *)p, topic_len, seq, sid, ms,
                                         (const char *)p + topic_len, data_len);
    if(!ev)
      return -1;
    ev->offset = offset;
    ev->max_age_ms = age;
    p += topic_len + data_len;
    len -= topic_len + data_len;
    last = offset;
    if(fn(arg, ev))
      return -1;
    n++;
  }
  return n;
}
