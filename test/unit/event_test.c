/* Events, ids and the broker: what every WebSocket client receives (frame
 * bytes, event JSON), the id and seq guarantees of DESIGN.md, and the broker's
 * bounded, ordered fan-out to the client workers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "event.h"
#include "fanout.h"
#include "id.h"
#include "protocol.h"
#include "ws_frame.h"

/* The herald.v1 encoding of an event, cached on it (what a worker sends). */
static struct sub_frame *v1(struct sub_event *ev)
{
  return sub_event_encoded(ev, 0, gw_v1_event_frame, NULL);
}

/* ---- frames ---- */

struct hdr_case {
  size_t len;
  size_t hlen;
  unsigned char h[10];
};

static const struct hdr_case hdr_cases[] = {
    {0, 2, {0x81, 0x00}},
    {1, 2, {0x81, 0x01}},
    {125, 2, {0x81, 0x7d}},
    {126, 4, {0x81, 0x7e, 0x00, 0x7e}},
    {127, 4, {0x81, 0x7e, 0x00, 0x7f}},
    {256, 4, {0x81, 0x7e, 0x01, 0x00}},
    {65535, 4, {0x81, 0x7e, 0xff, 0xff}},
    {65536, 10, {0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}},
    {1000000, 10, {0x81, 0x7f, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40}},
};

static void test_frame_header(void **state)
{
  (void)state;
  char *payload = malloc(1000000);
  assert_non_null(payload);
  for(size_t i = 0; i < 1000000; i++)
    payload[i] = (char)('a' + i % 26);
  for(size_t i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
    const struct hdr_case *c = &hdr_cases[i];
    struct sub_frame *f = gw_ws_text_frame(payload, c->len);
    assert_non_null(f);
    assert_int_equal(f->payload_len, c->len);
    assert_int_equal(f->len, c->hlen + c->len);
    if(memcmp(f->wire, c->h, c->hlen) != 0)
      fail_msg("payload length %zu: wrong frame header", c->len);
    /* the payload follows the header, byte for byte */
    assert_ptr_equal(sub_frame_payload(f), (const char *)f->wire + c->hlen);
    if(c->len)
      assert_memory_equal(sub_frame_payload(f), payload, c->len);
    sub_frame_unref(f);
  }
  free(payload);
}

static void test_frame_refcount(void **state)
{
  (void)state;
  struct sub_frame *f = gw_ws_text_frame("{}", 2);
  assert_non_null(f);
  assert_int_equal(atomic_load(&f->refs), 1);
  assert_ptr_equal(sub_frame_ref(f), f);
  assert_int_equal(atomic_load(&f->refs), 2);
  sub_frame_unref(f);
  assert_int_equal(atomic_load(&f->refs), 1);
  assert_memory_equal(sub_frame_payload(f), "{}", 2); /* still alive */
  sub_frame_unref(f); /* freed: valgrind and ASan see a leak otherwise */
  sub_frame_unref(NULL);
}

/* ---- events ---- */

static json_t *parse_payload(const struct sub_frame *f)
{
  json_error_t jerr;
  json_t *j = json_loadb(sub_frame_payload(f), f->payload_len, JSON_REJECT_DUPLICATES, &jerr);
  if(!j)
    fail_msg("frame payload is not JSON: %s: %.*s", jerr.text, (int)f->payload_len,
             sub_frame_payload(f));
  return j;
}

static void test_event_new(void **state)
{
  (void)state;
  const char *id = "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b";
  const char *data = "{\"qty\":3,\"sku\":\"A-1\",\"tags\":[\"x\",null]}";
  struct sub_event *ev = sub_event_new("orders.eu.created", 17, 42, id, 1764289557123ull,
                                       data, strlen(data));
  assert_non_null(ev);
  assert_int_equal(atomic_load(&ev->refs), 1);
  assert_int_equal(ev->seq, 42);
  assert_int_equal(ev->ms, 1764289557123ull);
  assert_string_equal(ev->id, id);
  assert_string_equal(ev->topic, "orders.eu.created");
  assert_int_equal(ev->topic_len, 17);

  /* one text frame holding the whole event */
  struct sub_frame *f = v1(ev);
  assert_int_equal(f->wire[0], 0x81);
  assert_true(f->payload_len >= 126 && f->payload_len < 65536);
  assert_int_equal(f->wire[1], 126);
  assert_int_equal((f->wire[2] << 8) | f->wire[3], f->payload_len);
  assert_int_equal(f->len, 4 + f->payload_len);

  const char *want = "{\"op\":\"event\",\"topic\":\"orders.eu.created\","
                     "\"id\":\"0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b\",\"seq\":42,"
                     "\"time\":\"2025-11-28T00:25:57.123Z\","
                     "\"data\":{\"qty\":3,\"sku\":\"A-1\",\"tags\":[\"x\",null]}}";
  assert_int_equal(f->payload_len, strlen(want));
  assert_memory_equal(sub_frame_payload(f), want, strlen(want));

  json_t *j = parse_payload(f);
  assert_int_equal(json_object_size(j), 6);
  assert_string_equal(json_string_value(json_object_get(j, "op")), "event");
  assert_string_equal(json_string_value(json_object_get(j, "topic")), "orders.eu.created");
  assert_string_equal(json_string_value(json_object_get(j, "id")), id);
  assert_true(json_is_integer(json_object_get(j, "seq")));
  assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
  assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-11-28T00:25:57.123Z");
  json_t *want_data = json_loads(data, 0, NULL);
  assert_true(json_equal(json_object_get(j, "data"), want_data));
  json_decref(want_data);
  json_decref(j);

  assert_ptr_equal(sub_event_ref(ev), ev);
  assert_int_equal(atomic_load(&ev->refs), 2);
  sub_event_unref(ev);
  sub_event_unref(ev);
  sub_event_unref(NULL);
}

/* Any JSON value can be the data; large events get the 16- and 64-bit length
 * headers; the topic can be 255 bytes and seq can be huge. */
static void test_event_shapes(void **state)
{
  (void)state;
  const char *id = "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b";
  const char *datas[] = {"null", "0", "\"text\"", "[]", "{}", "true", "-1.5e3"};
  for(size_t i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
    struct sub_event *ev = sub_event_new("a", 1, 1, id, 0, datas[i], strlen(datas[i]));
    assert_non_null(ev);
    json_t *j = parse_payload(v1(ev));
    json_t *want = json_loads(datas[i], JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    assert_true(json_equal(json_object_get(j, "data"), want));
    assert_string_equal(json_string_value(json_object_get(j, "time")),
                        "1970-01-01T00:00:00.000Z");
    json_decref(want);
    json_decref(j);
    sub_event_unref(ev);
  }

  char topic[SUB_TOPIC_MAX + 2];
  memset(topic, 'T', sizeof(topic));
  topic[SUB_TOPIC_MAX] = '\0';
  size_t big = 70000;
  char *data = malloc(big + 1);
  assert_non_null(data);
  data[0] = '"';
  memset(data + 1, 'x', big - 2);
  data[big - 1] = '"';
  data[big] = '\0';
  struct sub_event *ev =
      sub_event_new(topic, SUB_TOPIC_MAX, INT64_MAX, id, 1000, data, big);
  assert_non_null(ev);
  assert_int_equal(ev->topic_len, SUB_TOPIC_MAX);
  assert_string_equal(ev->topic, topic);
  assert_int_equal(v1(ev)->wire[0], 0x81);
  assert_int_equal(v1(ev)->wire[1], 127); /* 64-bit length */
  assert_int_equal(v1(ev)->len, 10 + v1(ev)->payload_len);
  json_t *j = parse_payload(v1(ev));
  assert_string_equal(json_string_value(json_object_get(j, "topic")), topic);
  assert_int_equal(strlen(json_string_value(json_object_get(j, "data"))), big - 2);
  assert_true(json_integer_value(json_object_get(j, "seq")) == INT64_MAX);
  json_decref(j);
  sub_event_unref(ev);

  /* 2^64-1 does not fit jansson's integer: compare the text instead */
  ev = sub_event_new("a", 1, UINT64_MAX, id, 0, "1", 1);
  assert_non_null(ev);
  const char *want = "\"seq\":18446744073709551615,";
  assert_non_null(memmem(sub_frame_payload(v1(ev)), v1(ev)->payload_len, want,
                         strlen(want)));
  sub_event_unref(ev);

  /* a topic longer than the event can hold is refused */
  topic[SUB_TOPIC_MAX] = 'T';
  assert_null(sub_event_new(topic, SUB_TOPIC_MAX + 1, 1, id, 0, "1", 1));
  free(data);
}

/* ---- ids and time ---- */

static bool is_lower_hex(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_id_shape(const char *id)
{
  if(strlen(id) != SUB_ID_LEN)
    fail_msg("id %s: length %zu", id, strlen(id));
  for(int i = 0; i < SUB_ID_LEN; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if(dash ? id[i] != '-' : !is_lower_hex(id[i]))
      fail_msg("id %s: bad character at %d", id, i);
  }
  if(id[14] != '7')
    fail_msg("id %s: not version 7", id);
  if(!strchr("89ab", id[19]))
    fail_msg("id %s: not the RFC 9562 variant", id);
}

/* The first 48 bits of a UUIDv7 are its Unix milliseconds. */
static uint64_t id_ms(const char *id)
{
  char hex[13];
  memcpy(hex, id, 8);
  memcpy(hex + 8, id + 9, 4);
  hex[12] = '\0';
  return strtoull(hex, NULL, 16);
}

static void test_id_new(void **state)
{
  (void)state;
  enum { N = 10000 };
  char (*ids)[SUB_ID_LEN + 1] = malloc(N * sizeof(*ids));
  assert_non_null(ids);
  uint64_t before = sub_now_ms();
  uint64_t prev_ms = 0;
  for(int i = 0; i < N; i++) {
    uint64_t ms = 0;
    assert_int_equal(sub_id_new(ids[i], &ms), 0);
    check_id_shape(ids[i]);
    assert_int_equal(id_ms(ids[i]), ms);
    assert_true(ms >= prev_ms);
    prev_ms = ms;
    if(i && strcmp(ids[i - 1], ids[i]) >= 0)
      fail_msg("ids not strictly increasing: %s then %s", ids[i - 1], ids[i]);
  }
  uint64_t after = sub_now_ms();
  /* the ids carry the time they were made (a little ahead at most, when
   * more than ~4000 were made in one millisecond) */
  assert_true(id_ms(ids[0]) >= before);
  assert_true(id_ms(ids[N - 1]) <= after + N / 4000 + 1);
  /* the random part (from a pool refilled every 64 ids) never repeats */
  for(int i = 0; i < 300; i++)
    for(int j = i + 1; j < 300; j++)
      if(!strcmp(ids[i] + 19, ids[j] + 19))
        fail_msg("random parts repeat: %s and %s", ids[i], ids[j]);
  assert_int_equal(sub_id_new(ids[0], NULL), 0); /* ms is optional */
  check_id_shape(ids[0]);
  assert_true(strcmp(ids[N - 1], ids[0]) < 0);
  free(ids);
}

/* Ids from several threads are unique and each thread sees them increase. */
enum { ID_THREADS = 4, ID_PER_THREAD = 5000 };

struct id_thread {
  pthread_t t;
  char (*ids)[SUB_ID_LEN + 1];
  int bad;
};

static void *id_worker(void *arg)
{
  struct id_thread *w = arg;
  for(int i = 0; i < ID_PER_THREAD; i++) {
    if(sub_id_new(w->ids[i], NULL) || (i && strcmp(w->ids[i - 1], w->ids[i]) >= 0))
      w->bad++;
  }
  return NULL;
}

static int cmp_id(const void *a, const void *b)
{
  return strcmp(a, b);
}

static void test_id_threads(void **state)
{
  (void)state;
  char (*ids)[SUB_ID_LEN + 1] = malloc(ID_THREADS * ID_PER_THREAD * sizeof(*ids));
  assert_non_null(ids);
  struct id_thread w[ID_THREADS];
  for(int i = 0; i < ID_THREADS; i++) {
    w[i].ids = ids + i * ID_PER_THREAD;
    w[i].bad = 0;
    assert_int_equal(pthread_create(&w[i].t, NULL, id_worker, &w[i]), 0);
  }
  for(int i = 0; i < ID_THREADS; i++) {
    pthread_join(w[i].t, NULL);
    assert_int_equal(w[i].bad, 0);
  }
  qsort(ids, ID_THREADS * ID_PER_THREAD, sizeof(*ids), cmp_id);
  for(int i = 1; i < ID_THREADS * ID_PER_THREAD; i++)
    if(strcmp(ids[i - 1], ids[i]) == 0)
      fail_msg("duplicate id %s", ids[i]);
  free(ids);
}

static void test_time_format(void **state)
{
  (void)state;
  static const struct {
    uint64_t ms;
    const char *s;
  } cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1, "1970-01-01T00:00:00.001Z"},
      {1000, "1970-01-01T00:00:01.000Z"},
      {59999, "1970-01-01T00:00:59.999Z"},
      {86399999, "1970-01-01T23:59:59.999Z"},
      {951782400000ull, "2000-02-29T00:00:00.000Z"},
      {1764289557123ull, "2025-11-28T00:25:57.123Z"},
      {253402300799999ull, "9999-12-31T23:59:59.999Z"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char out[SUB_TIME_LEN + 1];
    memset(out, '#', sizeof(out));
    sub_time_format(cases[i].ms, out);
    assert_string_equal(out, cases[i].s);
    assert_int_equal(strlen(out), SUB_TIME_LEN);
  }
  /* and the clock is the wall clock */
  uint64_t now = sub_now_ms();
  time_t t = time(NULL);
  assert_true(now / 1000 + 1 >= (uint64_t)t && now / 1000 <= (uint64_t)t + 1);
}

/* ---- broker ---- */

struct wakes {
  pthread_mutex_t lock;
  int count[4];
};

static void on_wake(void *arg, int sink)
{
  struct wakes *w = arg;
  pthread_mutex_lock(&w->lock);
  w->count[sink]++;
  pthread_mutex_unlock(&w->lock);
}

static struct sub_broker *broker(int nsinks, size_t max_events, size_t max_topics)
{
  struct sub_broker_cfg cfg = {.nsinks = nsinks,
                               .sink_max_events = max_events,
                               .sink_max_bytes = 1 << 30,
                               .max_topics = max_topics};
  struct sub_broker *b = sub_broker_new(&cfg);
  assert_non_null(b);
  return b;
}

/* Two sinks of 2 events each that report their wakes to w. */
static struct sub_broker *broker_waking(struct wakes *w, bool skip_idle_sinks)
{
  struct sub_broker_cfg cfg = {.nsinks = 2,
                               .sink_max_events = 2,
                               .sink_max_bytes = 1 << 30,
                               .max_topics = 10,
                               .wake = on_wake,
                               .wake_arg = w,
                               .skip_idle_sinks = skip_idle_sinks};
  struct sub_broker *b = sub_broker_new(&cfg);
  assert_non_null(b);
  return b;
}

static enum sub_err pub(struct sub_broker *b, const char *topic, const char *data,
                        struct sub_published *out)
{
  struct sub_published dummy;
  return sub_broker_publish(b, topic, strlen(topic), data, strlen(data), out ? out : &dummy);
}

/* Takes everything queued for `sink` and drops it; returns how many. */
static size_t drain(struct sub_broker *b, int sink)
{
  struct sub_batch batch = {0};
  size_t n = sub_fanout_take(sub_broker_fanout(b), sink, &batch);
  sub_batch_free(&batch);
  return n;
}

static void test_broker_new_invalid(void **state)
{
  (void)state;
  struct sub_broker_cfg ok = {
      .nsinks = 1, .sink_max_events = 1, .sink_max_bytes = 1, .max_topics = 1};
  struct sub_broker_cfg c;
  assert_null(sub_broker_new(NULL));
  c = ok;
  c.nsinks = 0;
  assert_null(sub_broker_new(&c));
  c = ok;
  c.nsinks = -1;
  assert_null(sub_broker_new(&c));
  c = ok;
  c.sink_max_events = 0;
  assert_null(sub_broker_new(&c));
  c = ok;
  c.max_topics = 0;
  assert_null(sub_broker_new(&c));
  struct sub_broker *b = sub_broker_new(&ok);
  assert_non_null(b);
  assert_int_equal(sub_broker_topics(b), 0);
  sub_broker_free(b);
  sub_broker_free(NULL);
}

static void test_err_names(void **state)
{
  (void)state;
  assert_string_equal(sub_err_name(SUB_OK), "ok");
  assert_string_equal(sub_err_name(SUB_ENOMEM), "out_of_memory");
  assert_string_equal(sub_err_name(SUB_EOVERLOADED), "overloaded");
  assert_string_equal(sub_err_name(SUB_ETOOMANYTOPICS), "too_many_topics");
  assert_string_equal(sub_err_name(SUB_EINVAL), "invalid_topic");
  assert_string_equal(sub_err_name(SUB_ESTOREFULL), "store_full");
  assert_string_equal(sub_err_name(SUB_ESTORE), "store_failed");
  assert_string_equal(sub_err_name((enum sub_err)99), "unknown");
}

static void test_broker_seq_per_topic(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 100, 100);
  struct sub_published p;
  static const struct {
    const char *topic;
    uint64_t seq;
  } steps[] = {
      {"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"a.b", 1}, {"b", 2}, {"A", 1}, {"a.b", 2},
  };
  char prev_id[SUB_ID_LEN + 1] = "";
  /* Ids may run a few ms ahead of the clock after a burst (more than
   * ~4000 in one ms borrow the next): the first id's time is the floor. */
  char first[SUB_ID_LEN + 1];
  uint64_t before;
  assert_int_equal(sub_id_new(first, &before), 0);
  for(size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    memset(&p, 0, sizeof(p));
    assert_int_equal(pub(b, steps[i].topic, "{}", &p), SUB_OK);
    assert_int_equal(p.seq, steps[i].seq);
    check_id_shape(p.id);
    assert_true(strcmp(prev_id, p.id) < 0); /* sortable by publish time */
    assert_int_equal(id_ms(p.id), p.ms);
    uint64_t now = sub_now_ms();
    assert_true(p.ms >= before && p.ms <= (now > before ? now : before) + 1);
    strcpy(prev_id, p.id);
  }
  assert_int_equal(sub_broker_topics(b), 4);
  sub_broker_free(b); /* with events still queued: freed too */
}

/* Every sink gets every event, in publish order, as one shared event whose
 * frame is the serialized event. */
static void test_broker_fanout(void **state)
{
  (void)state;
  enum { NS = 3, NE = 300 };
  struct sub_broker *b = broker(NS, 1000, 100);
  struct sub_published p[NE];
  char data[64];
  for(int i = 0; i < NE; i++) {
    snprintf(data, sizeof(data), "{\"i\":%d}", i);
    assert_int_equal(pub(b, i % 2 ? "odd" : "even", data, &p[i]), SUB_OK);
    assert_int_equal(p[i].seq, (uint64_t)(i / 2 + 1));
  }
  struct sub_batch batch[NS];
  memset(batch, 0, sizeof(batch));
  for(int k = 0; k < NS; k++)
    assert_int_equal(sub_fanout_take(sub_broker_fanout(b), k, &batch[k]), NE);
  for(int i = 0; i < NE; i++) {
    struct sub_event *ev = batch[0].ev[i];
    for(int k = 1; k < NS; k++)
      assert_ptr_equal(batch[k].ev[i], ev); /* shared, not copied */
    assert_int_equal(atomic_load(&ev->refs), NS);
    assert_string_equal(ev->topic, i % 2 ? "odd" : "even");
    assert_int_equal(ev->seq, p[i].seq);
    assert_string_equal(ev->id, p[i].id);
    assert_int_equal(ev->ms, p[i].ms);
    json_t *j = parse_payload(v1(ev));
    assert_string_equal(json_string_value(json_object_get(j, "topic")), ev->topic);
    assert_string_equal(json_string_value(json_object_get(j, "id")), p[i].id);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), p[i].seq);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "i")), i);
    char t[SUB_TIME_LEN + 1];
    sub_time_format(p[i].ms, t);
    assert_string_equal(json_string_value(json_object_get(j, "time")), t);
    json_decref(j);
  }
  for(int k = 0; k < NS; k++) {
    sub_batch_free(&batch[k]);
    assert_int_equal(drain(b, k), 0);
  }
  sub_broker_free(b);
}

/* take hands over the whole queue in one swap: the caller's (emptied) batch
 * storage becomes the queue's, so two batches are reused back and forth. */
static void test_broker_take_swaps(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 1000, 10);
  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 0);
  assert_int_equal(batch.n, 0);

  assert_int_equal(pub(b, "t", "1", NULL), SUB_OK);
  assert_int_equal(pub(b, "t", "2", NULL), SUB_OK);
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 2);
  assert_int_equal(batch.n, 2);
  assert_true(batch.cap >= 2);
  assert_int_equal(batch.ev[0]->seq, 1);
  assert_int_equal(batch.ev[1]->seq, 2);
  struct sub_event **first = batch.ev;

  /* the queue is empty now */
  struct sub_batch other = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &other), 0);
  sub_batch_free(&other);

  for(size_t i = 0; i < batch.n; i++)
    sub_event_unref(batch.ev[i]);
  batch.n = 0;

  assert_int_equal(pub(b, "t", "3", NULL), SUB_OK);
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 1);
  assert_ptr_not_equal(batch.ev, first);
  assert_int_equal(batch.ev[0]->seq, 3);
  sub_event_unref(batch.ev[0]);
  batch.n = 0;

  assert_int_equal(pub(b, "t", "4", NULL), SUB_OK);
  assert_int_equal(pub(b, "u", "5", NULL), SUB_OK);
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 2);
  assert_ptr_equal(batch.ev, first); /* our first storage came back */
  assert_int_equal(batch.ev[0]->seq, 4);
  assert_string_equal(batch.ev[1]->topic, "u");
  assert_int_equal(batch.ev[1]->seq, 1);
  sub_batch_free(&batch);
  assert_null(batch.ev);
  assert_int_equal(batch.n, 0);
  assert_int_equal(batch.cap, 0);
  sub_broker_free(b);
}

/* A sink that is full refuses publishes; the refused publish uses no seq and
 * queues nothing anywhere. */
static void test_broker_overload(void **state)
{
  (void)state;
  struct sub_broker *b = broker(2, 3, 10);
  struct sub_published p;
  for(int i = 1; i <= 3; i++) {
    assert_int_equal(pub(b, "t", "{}", &p), SUB_OK);
    assert_int_equal(p.seq, (uint64_t)i);
  }
  assert_int_equal(pub(b, "t", "{}", &p), SUB_EOVERLOADED);
  assert_int_equal(pub(b, "other", "{}", &p), SUB_EOVERLOADED);

  /* sink 0 catches up, sink 1 is still full: still refused, and sink 0
   * receives nothing from the refused publishes */
  assert_int_equal(drain(b, 0), 3);
  assert_int_equal(pub(b, "t", "{}", &p), SUB_EOVERLOADED);
  assert_int_equal(drain(b, 0), 0);

  assert_int_equal(drain(b, 1), 3);
  memset(&p, 0, sizeof(p));
  assert_int_equal(pub(b, "t", "{}", &p), SUB_OK);
  assert_int_equal(p.seq, 4); /* no seq was used by the refusals */

  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 1, &batch), 1);
  assert_int_equal(batch.ev[0]->seq, 4);
  assert_string_equal(batch.ev[0]->id, p.id);
  sub_batch_free(&batch);
  assert_int_equal(drain(b, 0), 1);

  /* exactly sink_max_events fit again */
  for(int i = 0; i < 3; i++)
    assert_int_equal(pub(b, "other", "{}", &p), SUB_OK);
  assert_int_equal(p.seq, 3);
  assert_int_equal(pub(b, "other", "{}", &p), SUB_EOVERLOADED);
  sub_broker_free(b);
}

static void test_broker_max_topics(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 100, 2);
  struct sub_published p;
  assert_int_equal(pub(b, "a", "1", &p), SUB_OK);
  assert_int_equal(pub(b, "b", "1", &p), SUB_OK);
  assert_int_equal(sub_broker_topics(b), 2);
  assert_int_equal(pub(b, "c", "1", &p), SUB_ETOOMANYTOPICS);
  assert_int_equal(pub(b, "a.b", "1", &p), SUB_ETOOMANYTOPICS);
  assert_int_equal(sub_broker_topics(b), 2);
  /* known topics still work */
  assert_int_equal(pub(b, "a", "1", &p), SUB_OK);
  assert_int_equal(p.seq, 2);
  assert_int_equal(pub(b, "b", "1", &p), SUB_OK);
  assert_int_equal(p.seq, 2);
  assert_int_equal(drain(b, 0), 4); /* the refused ones were not queued */
  sub_broker_free(b);

  /* many topics: the per-stripe tables grow */
  b = broker(1, 100000, 5000);
  char t[32];
  for(int i = 0; i < 5000; i++) {
    snprintf(t, sizeof(t), "topic.%d", i);
    assert_int_equal(pub(b, t, "0", &p), SUB_OK);
    assert_int_equal(p.seq, 1);
  }
  assert_int_equal(sub_broker_topics(b), 5000);
  assert_int_equal(pub(b, "topic.x", "0", &p), SUB_ETOOMANYTOPICS);
  for(int i = 0; i < 5000; i++) {
    snprintf(t, sizeof(t), "topic.%d", i);
    assert_int_equal(pub(b, t, "0", &p), SUB_OK);
    assert_int_equal(p.seq, 2);
  }
  assert_int_equal(drain(b, 0), 10000);
  sub_broker_free(b);
}

/* The byte cap: a sink refuses events once their frames would pass it,
 * uses no seq nor topic entry for the refused ones, and takes again once
 * the worker took its batch. */
static void test_broker_byte_cap(void **state)
{
  (void)state;
  struct sub_broker_cfg cfg = {
      .nsinks = 2, .sink_max_events = 1000, .sink_max_bytes = 1000, .max_topics = 10};
  struct sub_broker *b = sub_broker_new(&cfg);
  assert_non_null(b);
  char data[402];
  memset(data, '1', 400); /* a 400-digit number: valid JSON, frame ~ 520 bytes */
  data[400] = '\0';
  struct sub_published p;
  assert_int_equal(pub(b, "big", data, &p), SUB_OK);
  assert_int_equal(pub(b, "big", data, &p), SUB_EOVERLOADED); /* 2 x 520 > 1000 */
  assert_int_equal(pub(b, "new.topic", data, &p), SUB_EOVERLOADED);
  assert_int_equal(sub_broker_topics(b), 1); /* no entry made for a refused publish */
  assert_int_equal(pub(b, "small", "1", &p), SUB_OK); /* small ones still fit */
  assert_int_equal(drain(b, 0), 2);
  /* sink 1 still holds its two: still over for a big one */
  assert_int_equal(pub(b, "big", data, &p), SUB_EOVERLOADED);
  assert_int_equal(drain(b, 1), 2);
  assert_int_equal(pub(b, "big", data, &p), SUB_OK);
  assert_int_equal(p.seq, 2);
  /* one event bigger than the whole cap never fits */
  char huge[1100];
  memset(huge, '2', 1000);
  huge[1000] = '\0';
  assert_int_equal(drain(b, 0) + drain(b, 1), 2);
  assert_int_equal(pub(b, "big", huge, &p), SUB_EOVERLOADED);
  sub_broker_free(b);
}

static void test_broker_invalid_topic(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 100, 100);
  struct sub_published p;
  const char *bad[] = {"", "a.*", "a.>", "*", ">", "a..b", ".a", "a.", "a b", "a/b"};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(pub(b, bad[i], "{}", &p), SUB_EINVAL);
  char long_topic[SUB_TOPIC_MAX + 2];
  memset(long_topic, 'x', sizeof(long_topic));
  long_topic[SUB_TOPIC_MAX + 1] = '\0';
  assert_int_equal(pub(b, long_topic, "{}", &p), SUB_EINVAL);
  long_topic[SUB_TOPIC_MAX] = '\0';
  assert_int_equal(pub(b, long_topic, "{}", &p), SUB_OK);
  assert_int_equal(sub_broker_topics(b), 1);
  assert_int_equal(drain(b, 0), 1);
  sub_broker_free(b);
}

/* The wake callback fires once when a sink's queue goes from empty to
 * non-empty, not for every event. */
static void test_broker_wake(void **state)
{
  (void)state;
  struct wakes w = {.lock = PTHREAD_MUTEX_INITIALIZER};
  struct sub_broker *b = broker_waking(&w, false);

  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(w.count[0], 1);
  assert_int_equal(w.count[1], 1);
  assert_int_equal(pub(b, "b", "1", NULL), SUB_OK);
  assert_int_equal(w.count[0], 1);
  assert_int_equal(w.count[1], 1);

  /* a refused publish wakes nobody */
  assert_int_equal(pub(b, "a", "1", NULL), SUB_EOVERLOADED);
  assert_int_equal(pub(b, "a.*", "1", NULL), SUB_EINVAL);
  assert_int_equal(w.count[0], 1);
  assert_int_equal(w.count[1], 1);

  assert_int_equal(drain(b, 1), 2);
  assert_int_equal(drain(b, 1), 0); /* taking from an empty queue */
  assert_int_equal(drain(b, 0), 2);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(w.count[0], 2);
  assert_int_equal(w.count[1], 2);

  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(w.count[0], 3); /* only the sink that had been emptied */
  assert_int_equal(w.count[1], 2);

  /* replaced and removed */
  struct wakes w2 = {.lock = PTHREAD_MUTEX_INITIALIZER};
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 2);
  sub_fanout_set_wake(sub_broker_fanout(b), on_wake, &w2);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(w2.count[0], 1);
  assert_int_equal(w2.count[1], 1);
  assert_int_equal(w.count[0], 3);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 1);
  sub_fanout_set_wake(sub_broker_fanout(b), NULL, NULL);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(w2.count[0], 1);
  sub_broker_free(b);
}

/* ---- concurrent publishers and consumers ---- */

enum { MT_PUBLISHERS = 4, MT_PER_THREAD = 2000, MT_TOPICS = 3, MT_SINKS = 2 };
static const char *mt_topics[MT_TOPICS] = {"orders.created", "chat.lobby", "x"};

struct mt_sink {
  pthread_t t;
  int sink;
  struct sub_broker *b;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool woken;
  /* what the consumer saw */
  uint64_t last_seq[MT_TOPICS];
  char last_id[MT_TOPICS][SUB_ID_LEN + 1];
  size_t received, batches;
  int errors;
  char first_error[200];
};

struct mt {
  struct sub_broker *b;
  struct mt_sink sinks[MT_SINKS];
};

struct mt_pub {
  pthread_t t;
  int n;
  struct sub_broker *b;
  int errors;
  uint64_t last_seq[MT_TOPICS];
};

static void mt_wake(void *arg, int sink)
{
  struct mt *m = arg;
  struct mt_sink *s = &m->sinks[sink];
  pthread_mutex_lock(&s->lock);
  s->woken = true;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->lock);
}

static void mt_error(struct mt_sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mt_error(struct mt_sink *s, const char *fmt, ...)
{
  if(!s->errors++) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
    va_end(ap);
  }
}

static void mt_check(struct mt_sink *s, struct sub_event *ev)
{
  int t = -1;
  for(int k = 0; k < MT_TOPICS; k++)
    if(strcmp(ev->topic, mt_topics[k]) == 0)
      t = k;
  if(t < 0) {
    mt_error(s, "unexpected topic %s", ev->topic);
    return;
  }
  if(ev->seq != s->last_seq[t] + 1)
    mt_error(s, "sink %d topic %s: seq %" PRIu64 " after %" PRIu64, s->sink, ev->topic, ev->seq,
             s->last_seq[t]);
  if(strcmp(ev->id, s->last_id[t]) <= 0)
    mt_error(s, "sink %d topic %s: id %s after %s", s->sink, ev->topic, ev->id, s->last_id[t]);
  s->last_seq[t] = ev->seq;
  memcpy(s->last_id[t], ev->id, sizeof(ev->id));
  /* the frame says the same */
  char want[64];
  int n = snprintf(want, sizeof(want), "\"seq\":%" PRIu64 ",", ev->seq);
  const char *payload = sub_frame_payload(v1(ev));
  if(!memmem(payload, v1(ev)->payload_len, want, (size_t)n))
    mt_error(s, "sink %d: frame does not carry %s", s->sink, want);
}

static void *mt_consumer(void *arg)
{
  struct mt_sink *s = arg;
  struct sub_batch batch = {0};
  const size_t total = (size_t)MT_PUBLISHERS * MT_PER_THREAD;
  while(s->received < total) {
    pthread_mutex_lock(&s->lock);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    int rc = 0;
    while(!s->woken && rc != ETIMEDOUT)
      rc = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    bool woken = s->woken;
    s->woken = false;
    pthread_mutex_unlock(&s->lock);
    if(!woken) {
      mt_error(s, "sink %d: no wake-up for 20 s after %zu events", s->sink, s->received);
      break;
    }
    size_t n = sub_fanout_take(sub_broker_fanout(s->b), s->sink, &batch);
    if(n)
      s->batches++;
    for(size_t i = 0; i < n; i++) {
      mt_check(s, batch.ev[i]);
      sub_event_unref(batch.ev[i]);
    }
    batch.n = 0;
    s->received += n;
  }
  sub_batch_free(&batch);
  return NULL;
}

static void *mt_publisher(void *arg)
{
  struct mt_pub *p = arg;
  char data[64];
  for(int i = 0; i < MT_PER_THREAD; i++) {
    int t = (i + p->n) % MT_TOPICS;
    snprintf(data, sizeof(data), "{\"publisher\":%d,\"i\":%d}", p->n, i);
    struct sub_published out = {0};
    enum sub_err e = sub_broker_publish(p->b, mt_topics[t], strlen(mt_topics[t]), data,
                                        strlen(data), &out);
    if(e != SUB_OK || out.seq <= p->last_seq[t])
      p->errors++;
    p->last_seq[t] = out.seq;
  }
  return NULL;
}

static void test_broker_threads(void **state)
{
  (void)state;
  struct mt *m = calloc(1, sizeof(*m));
  assert_non_null(m);
  struct sub_broker_cfg cfg = {.nsinks = MT_SINKS,
                               .sink_max_events = MT_PUBLISHERS * MT_PER_THREAD,
                               .sink_max_bytes = 1 << 30,
                               .max_topics = MT_TOPICS,
                               .wake = mt_wake,
                               .wake_arg = m};
  m->b = sub_broker_new(&cfg);
  assert_non_null(m->b);
  for(int k = 0; k < MT_SINKS; k++) {
    struct mt_sink *s = &m->sinks[k];
    s->sink = k;
    s->b = m->b;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    assert_int_equal(pthread_create(&s->t, NULL, mt_consumer, s), 0);
  }
  struct mt_pub pubs[MT_PUBLISHERS];
  memset(pubs, 0, sizeof(pubs));
  for(int i = 0; i < MT_PUBLISHERS; i++) {
    pubs[i].n = i;
    pubs[i].b = m->b;
    assert_int_equal(pthread_create(&pubs[i].t, NULL, mt_publisher, &pubs[i]), 0);
  }
  for(int i = 0; i < MT_PUBLISHERS; i++) {
    pthread_join(pubs[i].t, NULL);
    assert_int_equal(pubs[i].errors, 0);
  }
  for(int k = 0; k < MT_SINKS; k++) {
    struct mt_sink *s = &m->sinks[k];
    pthread_join(s->t, NULL);
    if(s->errors)
      fail_msg("%d errors, first: %s", s->errors, s->first_error);
    assert_int_equal(s->received, MT_PUBLISHERS * MT_PER_THREAD);
    uint64_t sum = 0;
    for(int t = 0; t < MT_TOPICS; t++)
      sum += s->last_seq[t];
    assert_int_equal(sum, MT_PUBLISHERS * MT_PER_THREAD); /* nothing lost */
    assert_true(s->batches >= 1);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
  }
  assert_int_equal(sub_broker_topics(m->b), MT_TOPICS);
  for(int k = 0; k < MT_SINKS; k++)
    assert_int_equal(drain(m->b, k), 0);
  sub_broker_free(m->b);
  free(m);
}

/* The hold callback of the tests: keeps held events in a list, in the order
 * the broker handed them over; refuses when `refuse` is set. */
struct holder {
  struct sub_event *ev[16];
  void *ctx[16];
  int n;
  bool refuse;
};

static int hold_cb(void *arg, struct sub_event *ev, void *ctx)
{
  struct holder *h = arg;
  if(h->refuse || h->n == 16)
    return -1;
  h->ev[h->n] = ev;
  h->ctx[h->n++] = ctx;
  return 0;
}

static enum sub_err pub_held(struct sub_broker *b, const char *topic, bool hold, void *ctx,
                             struct sub_published *out, bool *held)
{
  struct sub_publish p = {.topic = topic, .topic_len = strlen(topic), .data = "{}", .data_len = 2,
                         .hold = hold, .ctx = ctx};
  return sub_broker_publish_held(b, &p, out, held);
}

/* A held event reaches no sink until released; later publishes on its topic
 * are held behind it (ctx NULL), other topics are not; releasing in order
 * delivers in seq order; a dropped event leaves a gap and reaches nobody. */
static void test_broker_hold(void **state)
{
  (void)state;
  struct sub_broker *b = broker(2, 100, 100);
  struct holder h = {0};
  sub_broker_set_hold(b, hold_cb, &h);
  struct sub_published out;
  bool held;
  int ctx;
  assert_int_equal(pub_held(b, "a", true, &ctx, &out, &held), SUB_OK);
  assert_true(held);
  assert_int_equal(out.seq, 1);
  assert_ptr_equal(h.ctx[0], &ctx);
  assert_string_equal(h.ev[0]->id, out.id);
  assert_int_equal(drain(b, 0), 0); /* held: nobody has it yet */

  int ctx2;
  assert_int_equal(pub_held(b, "a", false, &ctx2, &out, &held), SUB_OK);
  assert_true(held); /* behind the first one, with its own ctx */
  assert_ptr_equal(h.ctx[1], &ctx2);
  assert_int_equal(out.seq, 2);
  assert_int_equal(pub_held(b, "other", false, NULL, &out, &held), SUB_OK);
  assert_false(held); /* another topic goes straight through */

  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 1, &batch), 1);
  assert_string_equal(batch.ev[0]->topic, "other");
  sub_batch_free(&batch);
  assert_int_equal(drain(b, 0), 1);

  sub_broker_release(b, h.ev[0], true);
  sub_broker_release(b, h.ev[1], true);
  for(int k = 0; k < 2; k++) {
    memset(&batch, 0, sizeof(batch));
    assert_int_equal(sub_fanout_take(sub_broker_fanout(b), k, &batch), 2);
    assert_int_equal(batch.ev[0]->seq, 1);
    assert_int_equal(batch.ev[1]->seq, 2);
    sub_batch_free(&batch);
  }
  /* Nothing held any more: the topic goes straight through again. */
  assert_int_equal(pub_held(b, "a", false, NULL, &out, &held), SUB_OK);
  assert_false(held);
  assert_int_equal(out.seq, 3);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 1);

  /* Dropped: a gap in seq, delivered to nobody. */
  h.n = 0;
  assert_int_equal(pub_held(b, "a", true, NULL, &out, &held), SUB_OK);
  assert_int_equal(out.seq, 4);
  sub_broker_release(b, h.ev[0], false);
  assert_int_equal(drain(b, 0), 0);
  assert_int_equal(pub(b, "a", "{}", &out), SUB_OK);
  assert_int_equal(out.seq, 5);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 1);

  /* Refused by the holder: an error, and the seq is given back. */
  h.refuse = true;
  assert_int_equal(pub_held(b, "a", true, NULL, &out, &held), SUB_EOVERLOADED);
  assert_false(held);
  assert_int_equal(pub(b, "a", "{}", &out), SUB_OK);
  assert_int_equal(out.seq, 6);
  sub_broker_free(b);
}

/* Seeding restores a topic's counter (never lowers it); the event's data
 * is found in its frame. */
/* skip_idle_sinks: a sink gets only events its consumer may have a
 * subscriber for, and no wake otherwise; the publish is still numbered;
 * held events go to the sinks interested when they are released. */
static void test_broker_idle_sinks(void **state)
{
  (void)state;
  struct wakes w = {.lock = PTHREAD_MUTEX_INITIALIZER};
  struct sub_broker *b = broker_waking(&w, true);
  struct sub_published out;

  for(int i = 1; i <= 3; i++) { /* past sink_max_events: nobody queues it */
    assert_int_equal(pub(b, "a", "1", &out), SUB_OK);
    assert_int_equal(out.seq, (uint64_t)i);
    assert_int_equal(strlen(out.id), SUB_ID_LEN);
  }
  assert_int_equal(w.count[0] + w.count[1], 0);
  assert_int_equal(drain(b, 0) + drain(b, 1), 0);

  /* a concrete topic: only its events, only to that sink */
  sub_fanout_interest(sub_broker_fanout(b), 1, "a", 1, 1);
  assert_int_equal(pub(b, "a", "1", &out), SUB_OK);
  assert_int_equal(out.seq, 4);
  assert_int_equal(pub(b, "other.topic", "1", NULL), SUB_OK);
  assert_int_equal(w.count[0], 0);
  assert_int_equal(w.count[1], 1);
  assert_int_equal(drain(b, 0), 0);
  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 1, &batch), 1);
  assert_int_equal(batch.ev[0]->seq, 4);
  assert_string_equal(batch.ev[0]->topic, "a");
  sub_batch_free(&batch);

  /* the overload check counts only the interested sinks */
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_EOVERLOADED);
  assert_int_equal(drain(b, 1), 2);

  /* a pattern with a wildcard: every topic, to that sink */
  sub_fanout_interest(sub_broker_fanout(b), 0, "x.*", 3, 1);
  assert_int_equal(pub(b, "other.topic", "1", NULL), SUB_OK);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(drain(b, 0), 2);
  assert_int_equal(drain(b, 1), 1);
  sub_fanout_interest(sub_broker_fanout(b), 0, "x.*", 3, -1);
  sub_fanout_interest(sub_broker_fanout(b), 0, "y.>", 3, 1);
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 1);
  sub_fanout_interest(sub_broker_fanout(b), 0, "y.>", 3, -1);

  /* a held event goes to whoever is interested at its release */
  struct holder h = {0};
  sub_broker_set_hold(b, hold_cb, &h);
  bool held;
  assert_int_equal(pub_held(b, "a", true, NULL, &out, &held), SUB_OK);
  assert_true(held);
  sub_fanout_interest(sub_broker_fanout(b), 1, "a", 1, -1);
  sub_fanout_interest(sub_broker_fanout(b), 0, "a", 1, 1);
  sub_fanout_interest(sub_broker_fanout(b), 0, "a", 1, 1); /* counted: two subscribers */
  sub_fanout_interest(sub_broker_fanout(b), 0, "a", 1, -1);
  sub_broker_release(b, h.ev[0], true);
  assert_int_equal(drain(b, 1), 0);
  assert_int_equal(drain(b, 0), 1);

  sub_fanout_interest(sub_broker_fanout(b), 0, "a", 1, -1); /* back to none */
  sub_fanout_interest(sub_broker_fanout(b), 7, "a", 1, 1);  /* no such sink: ignored */
  assert_int_equal(pub(b, "a", "1", NULL), SUB_OK);
  assert_int_equal(drain(b, 0) + drain(b, 1), 0);
  sub_broker_free(b);
}

/* Without skip_idle_sinks every sink gets every event, counted or not. */
static void test_broker_all_sinks(void **state)
{
  (void)state;
  struct sub_broker *b = broker(2, 10, 10);
  sub_fanout_interest(sub_broker_fanout(b), 0, "a", 1, 1); /* no-op */
  assert_int_equal(pub(b, "b", "1", NULL), SUB_OK);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(drain(b, 1), 1);
  sub_broker_free(b);
}

static void test_broker_seed_and_data(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 100, 100);
  assert_int_equal(sub_broker_seed(b, "a.b", 3, 41), 0);
  assert_int_equal(sub_broker_seed(b, "a.b", 3, 7), 0);
  assert_int_equal(sub_broker_seed(b, "a..b", 4, 7), -1);
  struct sub_published out;
  assert_int_equal(pub(b, "a.b", "{\"k\":[1,2]}", &out), SUB_OK);
  assert_int_equal(out.seq, 42);
  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 1);
  size_t len;
  const char *d = sub_event_data(batch.ev[0], &len);
  assert_int_equal(len, 11);
  assert_memory_equal(d, "{\"k\":[1,2]}", 11);
  sub_batch_free(&batch);
  sub_broker_free(b);
}


/* ---- encodings cached on an event ---- */

static atomic_int encodes;

static struct sub_frame *count_encode(const struct sub_event *ev, void *arg)
{
  atomic_fetch_add(&encodes, 1);
  if(arg) /* a slow encoder: the others must wait, not build their own */
    usleep(20000);
  return gw_ws_text_frame(ev->data, ev->data_len);
}

static struct sub_frame *failing_encode(const struct sub_event *ev, void *arg)
{
  (void)ev;
  (void)arg;
  atomic_fetch_add(&encodes, 1);
  return NULL;
}

struct enc_thread {
  struct sub_event *ev;
  struct sub_frame *got;
};

static void *enc_main(void *arg)
{
  struct enc_thread *t = arg;
  t->got = sub_event_encoded(t->ev, 1, count_encode, "slow");
  return NULL;
}

/* Each transport's encoding is built once per event, however many workers
 * ask at once, and shared; slots are independent; a failed encoding is
 * tried again; the event holds no transport's bytes until asked. */
static void test_event_encoded_once(void **state)
{
  (void)state;
  const char *id = "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b";
  struct sub_event *ev = sub_event_new("a.b", 3, 1, id, 0, "[1]", 3);
  assert_non_null(ev);
  assert_int_equal(ev->size, sub_event_size(3, 3));
  for(int i = 0; i < SUB_EVENT_ENCODINGS; i++)
    assert_null(atomic_load(&ev->enc[i]));

  atomic_store(&encodes, 0);
  enum { NT = 8 };
  pthread_t th[NT];
  struct enc_thread t[NT];
  for(int i = 0; i < NT; i++) {
    t[i] = (struct enc_thread){ev, NULL};
    assert_int_equal(pthread_create(&th[i], NULL, enc_main, &t[i]), 0);
  }
  for(int i = 0; i < NT; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&encodes), 1);
  for(int i = 0; i < NT; i++)
    assert_ptr_equal(t[i].got, t[0].got);
  assert_memory_equal(sub_frame_payload(t[0].got), "[1]", 3);

  /* another slot: its own encoding */
  struct sub_frame *f0 = v1(ev);
  assert_non_null(f0);
  assert_ptr_not_equal(f0, t[0].got);
  assert_ptr_equal(v1(ev), f0);

  /* a failure is not cached */
  atomic_store(&encodes, 0);
  assert_null(sub_event_encoded(ev, 2, failing_encode, NULL));
  assert_null(sub_event_encoded(ev, 2, failing_encode, NULL));
  assert_int_equal(atomic_load(&encodes), 2);
  assert_non_null(sub_event_encoded(ev, 2, count_encode, NULL));
  assert_int_equal(atomic_load(&encodes), 3);

  /* a frame kept past the event stays valid */
  struct sub_frame *kept = sub_frame_ref(f0);
  sub_event_unref(ev);
  assert_memory_equal(sub_frame_payload(kept), "{\"op\":\"event\"", 13);
  sub_frame_unref(kept);
}

/* A sink's byte cap counts what it queues: the events' own size. */
static void test_broker_counts_event_bytes(void **state)
{
  (void)state;
  size_t one = sub_event_size(1, 1);
  struct sub_broker_cfg cfg = {
      .nsinks = 1, .sink_max_events = 1000, .sink_max_bytes = 3 * one, .max_topics = 10};
  struct sub_broker *b = sub_broker_new(&cfg);
  assert_non_null(b);
  struct sub_published p;
  for(int i = 0; i < 3; i++)
    assert_int_equal(sub_broker_publish(b, "a", 1, "1", 1, &p), SUB_OK);
  assert_int_equal(sub_broker_publish(b, "a", 1, "1", 1, &p), SUB_EOVERLOADED);
  struct sub_batch batch = {0};
  assert_int_equal(sub_fanout_take(sub_broker_fanout(b), 0, &batch), 3);
  for(size_t i = 0; i < batch.n; i++)
    assert_int_equal(batch.ev[i]->size, one);
  sub_batch_free(&batch);
  assert_int_equal(sub_broker_publish(b, "a", 1, "1", 1, &p), SUB_OK);
  assert_int_equal(p.seq, 4);
  sub_broker_free(b);
}

/* The broker is an engine: its table publishes, holds, seeds and names
 * its fan-out. */
static int engine_hold(void *arg, struct sub_event *ev, void *ctx)
{
  struct sub_event **slot = arg;
  assert_string_equal(ctx, "ctx");
  *slot = ev;
  return 0;
}

static void test_broker_engine(void **state)
{
  (void)state;
  struct sub_broker *b = broker(1, 100, 100);
  struct sub_engine *e = sub_broker_engine(b);
  assert_string_equal(e->ops->name, "embedded");
  assert_ptr_equal(sub_engine_fanout(e), sub_broker_fanout(b));
  assert_int_equal(sub_engine_seed(e, "t", 1, 9), 0);
  struct sub_published out;
  bool held;
  struct sub_publish p = {.topic = "t", .topic_len = 1, .data = "2", .data_len = 1};
  assert_int_equal(sub_engine_publish(e, &p, &out, &held), SUB_OK);
  assert_false(held);
  assert_int_equal(out.seq, 10);
  struct sub_event *kept = NULL;
  sub_engine_set_hold(e, engine_hold, &kept);
  p.hold = true;
  p.ctx = "ctx";
  assert_int_equal(sub_engine_publish(e, &p, &out, &held), SUB_OK);
  assert_true(held);
  assert_int_equal(out.seq, 11);
  assert_non_null(kept);
  assert_int_equal(drain(b, 0), 1); /* the held one is not there yet */
  sub_engine_release(e, kept, true);
  assert_int_equal(drain(b, 0), 1);
  assert_int_equal(e->ops->topics(e), 1);
  sub_broker_free(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_header),
      cmocka_unit_test(test_frame_refcount),
      cmocka_unit_test(test_event_new),
      cmocka_unit_test(test_event_shapes),
      cmocka_unit_test(test_id_new),
      cmocka_unit_test(test_id_threads),
      cmocka_unit_test(test_time_format),
      cmocka_unit_test(test_broker_new_invalid),
      cmocka_unit_test(test_err_names),
      cmocka_unit_test(test_broker_seq_per_topic),
      cmocka_unit_test(test_broker_fanout),
      cmocka_unit_test(test_broker_take_swaps),
      cmocka_unit_test(test_broker_overload),
      cmocka_unit_test(test_broker_max_topics),
      cmocka_unit_test(test_broker_byte_cap),
      cmocka_unit_test(test_broker_invalid_topic),
      cmocka_unit_test(test_broker_wake),
      cmocka_unit_test(test_broker_threads),
      cmocka_unit_test(test_broker_hold),
      cmocka_unit_test(test_broker_idle_sinks),
      cmocka_unit_test(test_broker_all_sinks),
      cmocka_unit_test(test_broker_seed_and_data),
      cmocka_unit_test(test_event_encoded_once),
      cmocka_unit_test(test_broker_counts_event_bytes),
      cmocka_unit_test(test_broker_engine),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
