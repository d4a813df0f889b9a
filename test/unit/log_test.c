/* The history log (subscriptions/eventlog.h): offsets, bounds and the gaps they
 * leave, held events, reads, resume by time, restore, the writer of a
 * durable store, and the cursor and time parsers. A fake clock drives every
 * age; `deliver` records the offsets the log pushed, in the order it did. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventlog.h"

#define ID "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b" /* any SUB_ID_LEN chars */
#define T0 1796673894000ull                      /* 2026-12-07T20:04:54Z */
#define MAX_DELIVERED 8192

/* The clock and the fan-out the log sees. deliver may run on the writer
 * thread (with a store): `mu` guards what it records. */
struct fx {
  uint64_t now;
  uint64_t seq;
  pthread_mutex_t mu;
  uint64_t delivered[MAX_DELIVERED];
  size_t ndelivered;
  struct fake_store *store; /* with a store: every delivered offset must be appended */
  bool early;               /* an offset was delivered before the store had it */
};

struct fake_store {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;      /* false: append waits until the test opens the gate */
  bool in_append; /* the writer is waiting at the gate */
  int result;     /* what append returns */
  uint64_t appended[MAX_DELIVERED];
  size_t nappended;
  size_t calls;
  uint64_t pruned; /* the last `first` prune was given (0: none) */
};

static uint64_t fake_now(void *arg)
{
  return ((struct fx *)arg)->now;
}

static bool store_has(struct fake_store *st, uint64_t o)
{
  pthread_mutex_lock(&st->mu);
  bool found = false;
  for(size_t i = 0; i < st->nappended && !found; i++)
    found = st->appended[i] == o;
  pthread_mutex_unlock(&st->mu);
  return found;
}

static void record(void *arg, struct sub_event *ev)
{
  struct fx *f = arg;
  if(f->store && !store_has(f->store, ev->offset))
    f->early = true;
  pthread_mutex_lock(&f->mu);
  if(f->ndelivered < MAX_DELIVERED)
    f->delivered[f->ndelivered++] = ev->offset;
  pthread_mutex_unlock(&f->mu);
}

static size_t ndelivered(struct fx *f)
{
  pthread_mutex_lock(&f->mu);
  size_t n = f->ndelivered;
  pthread_mutex_unlock(&f->mu);
  return n;
}

static int store_append(void *arg, struct sub_event *const *ev, size_t n)
{
  struct fake_store *st = arg;
  pthread_mutex_lock(&st->mu);
  st->in_append = true;
  pthread_cond_broadcast(&st->cv);
  while(!st->open)
    pthread_cond_wait(&st->cv, &st->mu);
  int rc = st->result;
  for(size_t i = 0; !rc && i < n && st->nappended < MAX_DELIVERED; i++)
    st->appended[st->nappended++] = ev[i]->offset; /* a failure writes nothing */
  st->calls++;
  st->in_append = false;
  pthread_mutex_unlock(&st->mu);
  return rc;
}

static void store_prune(void *arg, uint64_t first)
{
  struct fake_store *st = arg;
  pthread_mutex_lock(&st->mu);
  st->pruned = first;
  pthread_mutex_unlock(&st->mu);
}

static void fx_init(struct fx *f)
{
  memset(f, 0, sizeof(*f));
  f->now = T0;
  pthread_mutex_init(&f->mu, NULL);
}

static struct sub_log_cfg cfg_of(struct fx *f)
{
  return (struct sub_log_cfg){.max_pending = 1 << 16, .now_ms = fake_now, .clock_arg = f,
                              .deliver = record, .deliver_arg = f};
}

static struct sub_event *mkev(struct fx *f, const char *topic)
{
  struct sub_event *ev = sub_event_new(topic, strlen(topic), ++f->seq, ID, f->now, "{}", 2);
  assert_non_null(ev);
  return ev;
}

static enum sub_err append(struct sub_log *l, struct sub_event *ev, enum sub_log_state st)
{
  sub_log_lock(l);
  enum sub_err err = sub_log_append_locked(l, ev, st);
  sub_log_unlock(l);
  return err;
}

static void settle(struct sub_log *l, struct sub_event *ev, bool deliver)
{
  sub_log_lock(l);
  sub_log_settle_locked(l, ev, deliver);
  sub_log_unlock(l);
}

static bool direct(struct sub_log *l)
{
  sub_log_lock(l);
  bool d = sub_log_direct_locked(l);
  sub_log_unlock(l);
  return d;
}

/* Appends a READY event on topic; returns its offset. */
static uint64_t push(struct fx *f, struct sub_log *l, const char *topic)
{
  struct sub_event *ev = mkev(f, topic);
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_OK);
  uint64_t o = ev->offset;
  sub_event_unref(ev);
  return o;
}

/* Appends a HELD event; the caller keeps the returned reference to settle. */
static struct sub_event *hold(struct fx *f, struct sub_log *l, const char *topic)
{
  struct sub_event *ev = mkev(f, topic);
  assert_int_equal(append(l, ev, SUB_LOG_HELD), SUB_OK);
  return ev;
}

static void assert_delivered(struct fx *f, const uint64_t *want, size_t n)
{
  pthread_mutex_lock(&f->mu);
  size_t got = f->ndelivered;
  uint64_t copy[64];
  for(size_t i = 0; i < got && i < 64; i++)
    copy[i] = f->delivered[i];
  pthread_mutex_unlock(&f->mu);
  assert_int_equal(got, n);
  for(size_t i = 0; i < n; i++)
    assert_int_equal(copy[i], want[i]);
}

static struct sub_log_stats stats(struct sub_log *l)
{
  struct sub_log_stats st;
  sub_log_stats(l, &st);
  return st;
}

/* Reads (after, upto] with max and newest; match NULL: every event. */
static void read_q(struct sub_log *l, uint64_t after, uint64_t upto, size_t max, bool newest,
                   bool (*match)(void *, const struct sub_event *), void *arg,
                   struct sub_log_result *r)
{
  struct sub_log_query q = {.after = after, .upto = upto, .match = match, .arg = arg, .max = max,
                            .newest = newest};
  assert_int_equal(sub_log_read(l, &q, r), 0);
}

static void read_all(struct sub_log *l, uint64_t after, struct sub_log_result *r)
{
  read_q(l, after, 0, MAX_DELIVERED, false, NULL, NULL, r);
}

static void assert_offsets(const struct sub_log_result *r, const uint64_t *want, size_t n)
{
  assert_int_equal(r->n, n);
  for(size_t i = 0; i < n; i++)
    assert_int_equal(r->ev[i]->offset, want[i]);
}

static bool topic_is(void *arg, const struct sub_event *ev)
{
  return strcmp(ev->topic, arg) == 0;
}

static bool epoch_chars_ok(const char *e)
{
  if(strlen(e) != SUB_EPOCH_LEN)
    return false;
  for(int i = 0; i < SUB_EPOCH_LEN; i++)
    if(!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9')))
      return false;
  return true;
}

/* ---- creation, offsets, epoch ---- */

static void test_new_refuses_bad_config(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  assert_null(sub_log_new(NULL, NULL, 1));
  assert_null(sub_log_new(&c, NULL, 0)); /* offsets start at 1 */
  c.deliver = NULL;
  assert_null(sub_log_new(&c, NULL, 1));
  c = cfg_of(&f);
  c.max_pending = 0;
  assert_null(sub_log_new(&c, NULL, 1));
}

static void test_epoch_given_random_invalid(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, "abc12345", 1);
  assert_non_null(l);
  assert_string_equal(sub_log_epoch(l), "abc12345");
  sub_log_free(l);

  struct sub_log *a = sub_log_new(&c, NULL, 1), *b = sub_log_new(&c, NULL, 1);
  assert_non_null(a);
  assert_non_null(b);
  assert_true(epoch_chars_ok(sub_log_epoch(a)));
  assert_true(epoch_chars_ok(sub_log_epoch(b)));
  assert_string_not_equal(sub_log_epoch(a), sub_log_epoch(b)); /* 36^8: never equal by chance */
  sub_log_free(a);
  sub_log_free(b);

  static const char *const bad[] = {"", "abc1234", "abc123456", "ABC12345", "abc-2345",
                                    "abc 2345", "abc1234:", "abcdefg\xe9"};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_null(sub_log_new(&c, bad[i], 1));
}

static void test_offsets_count_from_next(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, "abc12345", 42);
  assert_non_null(l);
  assert_int_equal(sub_log_next(l), 42);
  assert_int_equal(sub_log_pushed(l), 41);
  struct sub_event *ev = mkev(&f, "a");
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_OK);
  assert_int_equal(ev->offset, 42);
  assert_ptr_equal(ev->epoch, sub_log_epoch(l));
  assert_int_equal(ev->log_ms, T0);
  sub_event_unref(ev);
  f.now += 10;
  assert_int_equal(push(&f, l, "b"), 43);
  /* an event stamped earlier than the last one keeps the log's time monotonic */
  ev = sub_event_new("c", 1, 9, ID, T0 - 5000, "{}", 2);
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_OK);
  assert_int_equal(ev->offset, 44);
  assert_int_equal(ev->log_ms, T0 + 10);
  sub_event_unref(ev);
  assert_delivered(&f, (uint64_t[]){42, 43, 44}, 3);
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.first, 42);
  assert_int_equal(st.last, 44);
  assert_int_equal(st.events, 3);
  assert_int_equal(st.pushed, 44);
  assert_int_equal(st.next, 45);
  assert_int_equal(sub_log_pushed(l), 44);
  /* offsets below next were given in an earlier run: a reader from before
   * them is told they are gone */
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_offsets(&r, (uint64_t[]){42, 43, 44}, 3);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 42);
  sub_log_result_clear(&r);
  read_all(l, 41, &r);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  enum sub_gap gap;
  assert_int_equal(sub_log_after_time(l, T0, &gap), 41);
  assert_int_equal(gap, SUB_GAP_EVICTED);
  sub_log_free(l);
}

static void test_direct_push(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  assert_true(direct(l));
  struct sub_event *ev = mkev(&f, "a");
  assert_int_equal(append(l, ev, SUB_LOG_PUSHED), SUB_OK);
  sub_event_unref(ev);
  assert_int_equal(ndelivered(&f), 0); /* the caller pushed it */
  assert_int_equal(sub_log_pushed(l), 1);
  assert_true(direct(l));
  struct sub_event *h = hold(&f, l, "a");
  assert_false(direct(l)); /* something waits: a push now would overtake it */
  push(&f, l, "a");
  assert_false(direct(l));
  settle(l, h, true);
  sub_event_unref(h);
  assert_true(direct(l));
  assert_delivered(&f, (uint64_t[]){2, 3}, 2);
  sub_log_free(l);

  /* with a store every event goes through the writer */
  struct fake_store st = {.open = true};
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  struct sub_log_store s = {store_append, store_prune, &st};
  c.store = &s;
  l = sub_log_new(&c, NULL, 1);
  assert_false(direct(l));
  sub_log_free(l);
  pthread_cond_destroy(&st.cv);
  pthread_mutex_destroy(&st.mu);
}

/* ---- bounds and gaps ---- */

static void test_max_events(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 3;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 5; i++)
    push(&f, l, "a");
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.events, 3);
  assert_int_equal(st.first, 3);
  assert_null(sub_log_get(l, 1));
  assert_null(sub_log_get(l, 2));
  struct sub_event *ev = sub_log_get(l, 3);
  assert_non_null(ev);
  sub_event_unref(ev);
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 3);
  assert_offsets(&r, (uint64_t[]){3, 4, 5}, 3);
  assert_int_equal(r.hwm, 5);
  assert_int_equal(r.last, 5);
  assert_false(r.more);
  sub_log_result_clear(&r);
  read_all(l, 2, &r); /* nothing after 2 was removed */
  assert_int_equal(r.gap, SUB_GAP_NONE);
  assert_offsets(&r, (uint64_t[]){3, 4, 5}, 3);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

static void test_max_bytes(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  size_t size = sub_event_size(1, 2);
  c.max_bytes = 2 * size + size / 2; /* room for two */
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 4; i++)
    push(&f, l, "a");
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.events, 2);
  assert_int_equal(st.bytes, 2 * size);
  assert_int_equal(st.first, 3);
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 3);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

static void test_max_age(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_age_ms = 1000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  push(&f, l, "a");
  push(&f, l, "a");
  f.now += 500;
  push(&f, l, "a");
  f.now += 500; /* exactly max_age: still kept */
  struct sub_event *ev = sub_log_get(l, 1);
  assert_non_null(ev);
  sub_event_unref(ev);
  f.now += 1;
  assert_null(sub_log_get(l, 1)); /* past max_age before any eviction ran */
  assert_null(sub_log_get(l, 2));
  ev = sub_log_get(l, 3);
  assert_non_null(ev);
  sub_event_unref(ev);
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_EXPIRED);
  assert_int_equal(r.oldest, 3);
  assert_offsets(&r, (uint64_t[]){3}, 1);
  sub_log_result_clear(&r);
  assert_int_equal(stats(l).first, 3);
  f.now += 10000;
  read_all(l, 0, &r); /* all gone: the read continues past the high-water mark */
  assert_int_equal(r.gap, SUB_GAP_EXPIRED);
  assert_int_equal(r.oldest, 4);
  assert_int_equal(r.n, 0);
  sub_log_result_clear(&r);
  assert_int_equal(stats(l).events, 0);
  sub_log_free(l);
}

/* Bounds remove only what was pushed: a held event and everything after it
 * stay, over the bound, until it settles. */
static void test_evicts_only_pushed(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 1;
  c.max_age_ms = 1000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *h = hold(&f, l, "a");
  push(&f, l, "a");
  push(&f, l, "a");
  f.now += 5000;
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_int_equal(r.n, 0);
  assert_int_equal(r.hwm, 0);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.events, 3);
  assert_int_equal(st.first, 1);
  assert_int_equal(ndelivered(&f), 0);
  f.now = T0;
  settle(l, h, true);
  sub_event_unref(h);
  assert_delivered(&f, (uint64_t[]){1, 2, 3}, 3);
  st = stats(l);
  assert_int_equal(st.events, 1);
  assert_int_equal(st.first, 3);
  sub_log_free(l);
}

/* The reason a reader is given is the one of the first run removed after
 * its offset. */
static void test_gap_runs(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 2;
  c.max_age_ms = 1000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 4; i++)
    push(&f, l, "a"); /* 1, 2 evicted */
  f.now += 2000;
  push(&f, l, "a"); /* 3, 4 expired */
  push(&f, l, "a");
  push(&f, l, "a"); /* 5 evicted */
  static const struct {
    uint64_t after;
    enum sub_gap gap;
  } cases[] = {{0, SUB_GAP_EVICTED}, {1, SUB_GAP_EVICTED}, {2, SUB_GAP_EXPIRED},
               {3, SUB_GAP_EXPIRED}, {4, SUB_GAP_EVICTED}, {5, SUB_GAP_NONE}};
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct sub_log_result r;
    read_all(l, cases[i].after, &r);
    assert_int_equal(r.gap, cases[i].gap);
    assert_int_equal(r.oldest, cases[i].gap ? 6 : 0);
    assert_offsets(&r, (uint64_t[]){6, 7}, 2);
    sub_log_result_clear(&r);
  }
  assert_string_equal(sub_gap_name(SUB_GAP_EVICTED), "evicted");
  assert_string_equal(sub_gap_name(SUB_GAP_EXPIRED), "expired");
  assert_string_equal(sub_gap_name(SUB_GAP_EPOCH_CHANGED), "epoch_changed");
  assert_string_equal(sub_gap_name(SUB_GAP_LIMIT), "limit");
  assert_null(sub_gap_name(SUB_GAP_NONE));
  sub_log_free(l);
}

/* A dropped event removed from the front is no loss: no gap for it, and the
 * gap after an eviction names the first event kept, past the hole. */
static void test_gap_skips_holes(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 2;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  push(&f, l, "a");                  /* 1 */
  struct sub_event *h = hold(&f, l, "a"); /* 2, dropped */
  push(&f, l, "a");                  /* 3 */
  settle(l, h, false);
  sub_event_unref(h);
  push(&f, l, "a"); /* 4 (1 was evicted behind the hold, the hole 2 went after it) */
  struct sub_log_result r;
  read_all(l, 1, &r);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  assert_offsets(&r, (uint64_t[]){3, 4}, 2);
  sub_log_result_clear(&r);
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 3);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

/* ---- get, ring growth ---- */

static void test_get(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 7);
  for(int i = 0; i < 10; i++)
    push(&f, l, "a");
  for(uint64_t o = 7; o < 17; o++) {
    struct sub_event *ev = sub_log_get(l, o);
    assert_non_null(ev);
    assert_int_equal(ev->offset, o);
    assert_int_equal(ev->seq, o - 6);
    sub_event_unref(ev);
  }
  assert_null(sub_log_get(l, 0));
  assert_null(sub_log_get(l, 6));
  assert_null(sub_log_get(l, 17)); /* not given yet */
  struct sub_event *h = hold(&f, l, "a");
  assert_int_equal(h->offset, 17);
  assert_null(sub_log_get(l, 17)); /* not pushed */
  settle(l, h, true);
  sub_event_unref(h);
  struct sub_event *ev = sub_log_get(l, 17);
  assert_non_null(ev);
  sub_event_unref(ev);
  sub_log_free(l);
}

/* The newest pushed event of a topic, scanning back past other topics, a
 * held event and a dropped one. */
static void test_latest(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_age_ms = 1000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  assert_null(sub_log_latest(l, "a", 1, 100)); /* empty */
  push(&f, l, "a");                            /* 1 */
  push(&f, l, "ab");                           /* 2: a longer name, not "a" */
  push(&f, l, "b");                            /* 3 */
  struct sub_event *h = hold(&f, l, "a");      /* 4 */
  push(&f, l, "a");                            /* 5, waits behind 4 */
  struct sub_event *ev = sub_log_latest(l, "a", 1, 5);
  assert_non_null(ev);
  assert_int_equal(ev->offset, 1); /* 4 and 5 are not pushed */
  sub_event_unref(ev);
  settle(l, h, false); /* 4 dropped, 5 pushed */
  sub_event_unref(h);
  ev = sub_log_latest(l, "a", 1, 4);
  assert_non_null(ev);
  assert_int_equal(ev->offset, 1);
  sub_event_unref(ev);
  ev = sub_log_latest(l, "a", 1, 99);
  assert_non_null(ev);
  assert_int_equal(ev->offset, 5);
  sub_event_unref(ev);
  assert_null(sub_log_latest(l, "c", 1, 99));
  assert_null(sub_log_latest(l, "a", 1, 0));
  /* once the newest has expired, so have the older ones */
  f.now += 1001;
  assert_null(sub_log_latest(l, "a", 1, 99));
  sub_log_free(l);
}

/* Past the first 1024 slots the ring grows, with and without unpushed
 * events in it, and keeps offsets where they were. */
static void test_ring_growth(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 1000);
  for(int i = 0; i < 3000; i++)
    push(&f, l, "a");
  struct sub_event *h = hold(&f, l, "a"); /* 4000 */
  for(int i = 0; i < 3000; i++)
    push(&f, l, "a"); /* waiting behind it, past two more doublings */
  assert_int_equal(ndelivered(&f), 3000);
  settle(l, h, true);
  sub_event_unref(h);
  assert_int_equal(ndelivered(&f), 6001);
  for(size_t i = 0; i < 6001; i++)
    assert_int_equal(f.delivered[i], 1000 + i);
  for(uint64_t o = 1000; o < 7001; o += 7) {
    struct sub_event *ev = sub_log_get(l, o);
    assert_non_null(ev);
    assert_int_equal(ev->offset, o);
    sub_event_unref(ev);
  }
  struct sub_log_result r;
  read_all(l, 999, &r);
  assert_int_equal(r.n, 6001);
  for(size_t i = 0; i < r.n; i++)
    assert_int_equal(r.ev[i]->offset, 1000 + i);
  sub_log_result_clear(&r);
  assert_int_equal(stats(l).events, 6001);
  sub_log_free(l);
}

/* ---- held events ---- */

static void test_held_order(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *a = hold(&f, l, "a"); /* 1 */
  push(&f, l, "b");                       /* 2 */
  struct sub_event *b = hold(&f, l, "a"); /* 3 */
  push(&f, l, "b");                       /* 4 */
  assert_int_equal(ndelivered(&f), 0);
  assert_int_equal(sub_log_pushed(l), 0);
  settle(l, b, true); /* ready, but 1 is still held */
  assert_int_equal(ndelivered(&f), 0);
  settle(l, a, true);
  assert_delivered(&f, (uint64_t[]){1, 2, 3, 4}, 4);
  assert_int_equal(sub_log_pushed(l), 4);
  settle(l, a, true); /* settled already: nothing */
  settle(l, b, false);
  assert_int_equal(ndelivered(&f), 4);
  assert_int_equal(stats(l).events, 4);
  sub_event_unref(a);
  sub_event_unref(b);
  sub_log_free(l);
}

static void test_held_dropped(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *a = hold(&f, l, "a"); /* 1 */
  push(&f, l, "b");                       /* 2 */
  settle(l, a, false);
  assert_delivered(&f, (uint64_t[]){2}, 1);
  assert_null(sub_log_get(l, 1));
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.events, 1);
  assert_int_equal(st.bytes, sub_event_size(1, 2));
  assert_int_equal(st.pushed, 2);
  assert_int_equal(st.next, 3); /* the dropped offset is never given again */
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  assert_offsets(&r, (uint64_t[]){2}, 1);
  sub_log_result_clear(&r);
  settle(l, a, true); /* dropped already: nothing */
  assert_int_equal(ndelivered(&f), 1);
  sub_event_unref(a);
  assert_int_equal(push(&f, l, "a"), 3);
  sub_log_free(l);
}

static void test_max_pending(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_pending = 2;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *h = hold(&f, l, "a");
  push(&f, l, "a");
  struct sub_event *ev = mkev(&f, "a");
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_EOVERLOADED);
  assert_int_equal(ev->offset, 0);
  assert_int_equal(append(l, ev, SUB_LOG_HELD), SUB_EOVERLOADED);
  assert_int_equal(sub_log_next(l), 3);
  assert_int_equal(stats(l).events, 2);
  settle(l, h, true);
  sub_event_unref(h);
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_OK);
  assert_int_equal(ev->offset, 3);
  sub_event_unref(ev);
  assert_delivered(&f, (uint64_t[]){1, 2, 3}, 3);
  sub_log_free(l);
}

/* ---- reads ---- */

/* Ten events, a on the odd offsets and b on the even ones. */
static struct sub_log *ab_log(struct fx *f)
{
  struct sub_log_cfg c = cfg_of(f);
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 10; i++)
    push(f, l, i % 2 ? "b" : "a");
  return l;
}

static void test_read_newest_limit(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log *l = ab_log(&f);
  struct sub_log_result r;
  read_q(l, 0, 0, 3, true, topic_is, "a", &r);
  assert_offsets(&r, (uint64_t[]){5, 7, 9}, 3);
  assert_int_equal(r.gap, SUB_GAP_LIMIT);
  assert_int_equal(r.oldest, 5);
  assert_int_equal(r.hwm, 10);
  assert_int_equal(r.last, 10);
  assert_false(r.more);
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 5, true, topic_is, "a", &r); /* exactly max: no cut */
  assert_offsets(&r, (uint64_t[]){1, 3, 5, 7, 9}, 5);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 7, true, topic_is, "b", &r);
  assert_offsets(&r, (uint64_t[]){2, 4, 6, 8, 10}, 5);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 1, true, NULL, NULL, &r);
  assert_offsets(&r, (uint64_t[]){10}, 1);
  assert_int_equal(r.gap, SUB_GAP_LIMIT);
  assert_int_equal(r.oldest, 10);
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 4, true, topic_is, "zz", &r);
  assert_int_equal(r.n, 0);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

static void test_read_pages(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log *l = ab_log(&f);
  struct sub_log_result r;
  read_q(l, 0, 0, 2, false, topic_is, "a", &r);
  assert_offsets(&r, (uint64_t[]){1, 3}, 2);
  assert_true(r.more);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  uint64_t last = r.last;
  assert_true(last >= 3 && last < 5); /* continue after it: 5 comes next */
  sub_log_result_clear(&r);
  read_q(l, last, 0, 2, false, topic_is, "a", &r);
  assert_offsets(&r, (uint64_t[]){5, 7}, 2);
  assert_true(r.more);
  last = r.last;
  sub_log_result_clear(&r);
  read_q(l, last, 0, 2, false, topic_is, "a", &r);
  assert_offsets(&r, (uint64_t[]){9}, 1);
  assert_false(r.more);
  assert_int_equal(r.last, 10);
  sub_log_result_clear(&r);
  /* a page that ends exactly with the last match has no `more` */
  read_q(l, 6, 0, 2, false, topic_is, "a", &r);
  assert_offsets(&r, (uint64_t[]){7, 9}, 2);
  assert_false(r.more);
  assert_int_equal(r.last, 10);
  sub_log_result_clear(&r);
  /* upto bounds the read, and the page */
  read_q(l, 0, 4, 10, false, NULL, NULL, &r);
  assert_offsets(&r, (uint64_t[]){1, 2, 3, 4}, 4);
  assert_int_equal(r.hwm, 4);
  assert_int_equal(r.last, 4);
  assert_false(r.more);
  sub_log_result_clear(&r);
  read_q(l, 2, 4, 1, false, NULL, NULL, &r);
  assert_offsets(&r, (uint64_t[]){3}, 1);
  assert_true(r.more);
  assert_int_equal(r.last, 3);
  sub_log_result_clear(&r);
  read_q(l, 0, 100, 100, false, NULL, NULL, &r); /* upto past the mark: the mark */
  assert_int_equal(r.hwm, 10);
  assert_int_equal(r.n, 10);
  sub_log_result_clear(&r);
  read_q(l, 10, 0, 5, false, NULL, NULL, &r);
  assert_int_equal(r.n, 0);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  assert_false(r.more);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

/* A cursor from the future reads nothing, up to the largest offset a
 * cursor can carry (after + 1 must not wrap to the start of the log). */
static void test_read_after_future(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log *l = ab_log(&f);
  static const uint64_t afters[] = {11, 1000, UINT64_MAX - 1, UINT64_MAX};
  for(size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
    struct sub_log_result r;
    read_all(l, afters[i], &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.gap, SUB_GAP_NONE);
    assert_false(r.more);
    sub_log_result_clear(&r);
  }
  sub_log_free(l);
}

/* A topic's own retention, shorter than the log's, removes its events from
 * reads as expired while the log still holds them. */
static void test_read_topic_retention(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_age_ms = 60000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *ev = mkev(&f, "short");
  ev->max_age_ms = 100;
  assert_int_equal(append(l, ev, SUB_LOG_READY), SUB_OK);
  sub_event_unref(ev);
  push(&f, l, "long");
  struct sub_log_result r;
  read_all(l, 0, &r);
  assert_offsets(&r, (uint64_t[]){1, 2}, 2);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  f.now += 200;
  read_all(l, 0, &r);
  assert_offsets(&r, (uint64_t[]){2}, 1);
  assert_int_equal(r.gap, SUB_GAP_EXPIRED);
  assert_int_equal(r.oldest, 2);
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 10, false, topic_is, "short", &r);
  assert_int_equal(r.n, 0);
  assert_int_equal(r.gap, SUB_GAP_EXPIRED);
  assert_int_equal(r.oldest, 3); /* nothing left: past the mark */
  sub_log_result_clear(&r);
  read_q(l, 0, 0, 10, false, topic_is, "long", &r); /* another topic: no gap */
  assert_offsets(&r, (uint64_t[]){2}, 1);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  assert_int_equal(stats(l).events, 2); /* still in the log */
  /* and what a read calls expired is not retained for a lookup either */
  assert_null(sub_log_get(l, 1));
  ev = sub_log_get(l, 2);
  assert_non_null(ev);
  sub_event_unref(ev);
  sub_log_free(l);
}

/* ---- resume by time ---- */

/* The first event after the offset sub_log_after_time gives is at or after
 * ms, and the events up to that offset are before it. */
static void assert_after_time(struct sub_log *l, uint64_t ms, uint64_t want, enum sub_gap want_gap)
{
  enum sub_gap gap = SUB_GAP_LIMIT;
  uint64_t o = sub_log_after_time(l, ms, &gap);
  assert_int_equal(o, want);
  assert_int_equal(gap, want_gap);
  struct sub_log_result r;
  read_all(l, 0, &r);
  for(size_t i = 0; i < r.n; i++)
    if(r.ev[i]->offset <= o)
      assert_true(r.ev[i]->log_ms < ms);
    else
      assert_true(r.ev[i]->log_ms >= ms);
  sub_log_result_clear(&r);
}

/* A read lets publishes in every few thousand slots: appends that evict
 * what it has not read yet meanwhile turn into a gap from the first event
 * still held, and the events it returns are always every one above that,
 * in order. */
struct racer {
  struct sub_log *log;
  int n;
};

static void *race_appends(void *arg)
{
  struct racer *r = arg;
  for(int i = 0; i < r->n; i++) {
    struct sub_event *ev = sub_event_new("r", 1, (uint64_t)i + 1, ID, T0, "{}", 2);
    assert_non_null(ev);
    assert_int_equal(append(r->log, ev, SUB_LOG_READY), SUB_OK);
    sub_event_unref(ev);
  }
  return NULL;
}

static void test_read_while_evicting(void **state)
{
  (void)state;
  static struct fx f; /* big: off the stack */
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 20000;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 20000; i++)
    push(&f, l, "r");
  struct racer rc = {l, 300000};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, race_appends, &rc), 0);
  int gaps = 0;
  for(int round = 0; round < 200; round++) {
    struct sub_log_query q = {.after = 0, .max = 1 << 20, .newest = false};
    struct sub_log_result r;
    assert_int_equal(sub_log_read(l, &q, &r), 0);
    if(r.gap == SUB_GAP_NONE) { /* read before the first eviction */
      assert_true(r.n > 0);
      assert_int_equal(r.ev[0]->offset, 1);
    } else {
      assert_int_equal(r.gap, SUB_GAP_EVICTED);
      /* (everything up to the mark may have gone while it read) */
      assert_int_equal(r.n ? r.ev[0]->offset : r.hwm + 1, r.oldest);
    }
    for(size_t i = 1; i < r.n; i++)
      assert_int_equal(r.ev[i]->offset, r.ev[i - 1]->offset + 1);
    if(r.n)
      assert_int_equal(r.ev[r.n - 1]->offset, r.hwm);
    gaps += r.n < 20000;
    sub_log_result_clear(&r);
  }
  pthread_join(t, NULL);
  (void)gaps; /* how often the race hit: timing, not a verdict */
  sub_log_free(l);
}

static void test_after_time(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  struct sub_event *h;
  f.now = 1000;
  push(&f, l, "a"); /* 1 */
  f.now = 1500;
  h = hold(&f, l, "a"); /* 2: a hole */
  settle(l, h, false);
  sub_event_unref(h);
  f.now = 2000;
  push(&f, l, "a"); /* 3 */
  push(&f, l, "a"); /* 4 */
  f.now = 2500;
  h = hold(&f, l, "a"); /* 5: a hole */
  settle(l, h, false);
  sub_event_unref(h);
  h = hold(&f, l, "a"); /* 6: a hole */
  settle(l, h, false);
  sub_event_unref(h);
  f.now = 3000;
  push(&f, l, "a"); /* 7 */
  assert_after_time(l, 0, 0, SUB_GAP_NONE);
  assert_after_time(l, 1000, 0, SUB_GAP_NONE);
  assert_after_time(l, 1001, 1, SUB_GAP_NONE);
  assert_after_time(l, 1500, 1, SUB_GAP_NONE);
  assert_after_time(l, 2000, 1, SUB_GAP_NONE);
  assert_after_time(l, 2001, 4, SUB_GAP_NONE);
  assert_after_time(l, 2999, 4, SUB_GAP_NONE);
  assert_after_time(l, 3000, 4, SUB_GAP_NONE);
  assert_after_time(l, 3001, 7, SUB_GAP_NONE);
  assert_after_time(l, UINT64_MAX, 7, SUB_GAP_NONE);
  struct sub_event *held = hold(&f, l, "a"); /* not pushed: not searched */
  assert_after_time(l, 3001, 7, SUB_GAP_NONE);
  settle(l, held, true);
  sub_event_unref(held);
  assert_after_time(l, 3001, 8, SUB_GAP_NONE);
  sub_log_free(l);

  /* many events: the search is a search */
  fx_init(&f);
  l = sub_log_new(&c, NULL, 1);
  for(int i = 0; i < 5000; i++) {
    f.now = 10000 + (uint64_t)(i / 3) * 10; /* three per time */
    push(&f, l, "a");
  }
  enum sub_gap gap;
  for(int i = 0; i < 5000; i += 97) {
    uint64_t t = 10000 + (uint64_t)(i / 3) * 10;
    assert_int_equal(sub_log_after_time(l, t, &gap), (uint64_t)(i / 3) * 3);
    assert_int_equal(sub_log_after_time(l, t + 1, &gap), (uint64_t)(i / 3) * 3 + 3);
  }
  sub_log_free(l);
}

static void test_after_time_gap(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  c.max_events = 2;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  f.now = 1000;
  push(&f, l, "a"); /* evicted */
  f.now = 2000;
  push(&f, l, "a");
  f.now = 3000;
  push(&f, l, "a");
  assert_after_time(l, 500, 1, SUB_GAP_EVICTED);
  assert_after_time(l, 1000, 1, SUB_GAP_EVICTED); /* the removed one was at ms */
  assert_after_time(l, 1001, 1, SUB_GAP_NONE);
  assert_after_time(l, 2500, 2, SUB_GAP_NONE);
  sub_log_free(l);

  fx_init(&f);
  c = cfg_of(&f);
  c.max_age_ms = 1000;
  l = sub_log_new(&c, NULL, 1);
  f.now = 1000;
  push(&f, l, "a");
  push(&f, l, "a");
  f.now = 1800;
  push(&f, l, "a");
  f.now = 2100; /* 1 and 2 expired */
  assert_after_time(l, 1000, 2, SUB_GAP_EXPIRED);
  assert_after_time(l, 1001, 2, SUB_GAP_NONE);
  f.now = 5000; /* all expired */
  assert_after_time(l, 1500, 3, SUB_GAP_EXPIRED);
  assert_after_time(l, 1801, 3, SUB_GAP_NONE);
  sub_log_free(l);
}

/* ---- restore ---- */

static struct sub_event *stored(uint64_t offset, uint64_t ms)
{
  struct sub_event *ev = sub_event_new("a", 1, offset, ID, ms, "{}", 2);
  assert_non_null(ev);
  ev->offset = offset;
  return ev;
}

static void test_restore(void **state)
{
  (void)state;
  struct fx f;
  fx_init(&f);
  struct sub_log_cfg c = cfg_of(&f);
  /* the store's next is 12: 9, 10 and 11 were given and dropped */
  struct sub_log *l = sub_log_new(&c, "abc12345", 12);
  struct sub_event *ev = stored(0, T0);
  assert_int_equal(sub_log_restore(l, ev), -1); /* no offset */
  sub_event_unref(ev);
  static const uint64_t offs[] = {5, 6, 8}; /* 7 was dropped */
  for(size_t i = 0; i < 3; i++) {
    ev = stored(offs[i], T0 - 100 + i);
    assert_int_equal(sub_log_restore(l, ev), 0);
    assert_ptr_equal(ev->epoch, sub_log_epoch(l));
    sub_event_unref(ev);
  }
  static const uint64_t late[] = {7, 8};
  for(size_t i = 0; i < 2; i++) {
    ev = stored(late[i], T0);
    assert_int_equal(sub_log_restore(l, ev), -1); /* not above the last restored */
    sub_event_unref(ev);
  }
  assert_int_equal(ndelivered(&f), 0); /* pushed before the log was made */
  struct sub_log_stats st = stats(l);
  assert_int_equal(st.first, 5);
  assert_int_equal(st.events, 3);
  assert_int_equal(st.pushed, 11);
  assert_int_equal(st.next, 12);
  assert_true(direct(l));
  assert_null(sub_log_get(l, 7));
  assert_null(sub_log_get(l, 10));
  ev = sub_log_get(l, 8);
  assert_non_null(ev);
  sub_event_unref(ev);
  assert_int_equal(push(&f, l, "a"), 12);
  assert_delivered(&f, (uint64_t[]){12}, 1);
  struct sub_log_result r;
  read_all(l, 0, &r); /* what came before the first restored counts as evicted */
  assert_offsets(&r, (uint64_t[]){5, 6, 8, 12}, 4);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 5);
  sub_log_result_clear(&r);
  read_all(l, 4, &r);
  assert_offsets(&r, (uint64_t[]){5, 6, 8, 12}, 4);
  assert_int_equal(r.gap, SUB_GAP_NONE);
  sub_log_result_clear(&r);
  read_all(l, 6, &r);
  assert_offsets(&r, (uint64_t[]){8, 12}, 2);
  sub_log_result_clear(&r);
  ev = stored(20, T0); /* after an append: refused */
  assert_int_equal(sub_log_restore(l, ev), -1);
  sub_event_unref(ev);
  assert_int_equal(sub_log_next(l), 13);
  sub_log_free(l);

  /* restored past the store's next: the log goes on after the last one */
  fx_init(&f);
  l = sub_log_new(&c, NULL, 3);
  for(uint64_t o = 3; o <= 5; o++) {
    ev = stored(o, T0);
    assert_int_equal(sub_log_restore(l, ev), 0);
    sub_event_unref(ev);
  }
  assert_int_equal(push(&f, l, "a"), 6);
  sub_log_free(l);

  /* restored events count against the bounds like pushed ones */
  fx_init(&f);
  c = cfg_of(&f);
  c.max_events = 2;
  l = sub_log_new(&c, NULL, 1);
  for(uint64_t o = 1; o <= 3; o++) {
    ev = stored(o, T0);
    assert_int_equal(sub_log_restore(l, ev), 0);
    sub_event_unref(ev);
  }
  push(&f, l, "a");
  st = stats(l);
  assert_int_equal(st.events, 2);
  assert_int_equal(st.first, 3);
  read_all(l, 0, &r);
  assert_int_equal(r.gap, SUB_GAP_EVICTED);
  assert_int_equal(r.oldest, 3);
  sub_log_result_clear(&r);
  sub_log_free(l);
}

/* ---- a durable store ---- */

static void sleep_ms(long ms)
{
  nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* Waits (up to 10 s) for the high-water mark to reach o. */
static void wait_pushed(struct sub_log *l, uint64_t o)
{
  for(int i = 0; i < 10000 && sub_log_pushed(l) < o; i++)
    sleep_ms(1);
  assert_int_equal(sub_log_pushed(l), o);
}

static void wait_in_append(struct fake_store *st)
{
  pthread_mutex_lock(&st->mu);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  while(!st->in_append)
    if(pthread_cond_timedwait(&st->cv, &st->mu, &until))
      break;
  bool in = st->in_append;
  pthread_mutex_unlock(&st->mu);
  assert_true(in);
}

static void open_gate(struct fake_store *st)
{
  pthread_mutex_lock(&st->mu);
  st->open = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
}

static void assert_appended(struct fake_store *st, const uint64_t *want, size_t n)
{
  pthread_mutex_lock(&st->mu);
  size_t got = st->nappended;
  uint64_t copy[64];
  for(size_t i = 0; i < got && i < 64; i++)
    copy[i] = st->appended[i];
  pthread_mutex_unlock(&st->mu);
  assert_int_equal(got, n);
  for(size_t i = 0; i < n; i++)
    assert_int_equal(copy[i], want[i]);
}

static void test_store(void **state)
{
  (void)state;
  static struct fx f; /* big: off the stack */
  fx_init(&f);
  struct fake_store st = {.open = false};
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  f.store = &st;
  struct sub_log_store s = {store_append, store_prune, &st};
  struct sub_log_cfg c = cfg_of(&f);
  c.store = &s;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  assert_int_equal(sub_log_start(l), 0);
  assert_int_equal(sub_log_start(l), 0); /* once */
  push(&f, l, "a");
  push(&f, l, "a");
  wait_in_append(&st);
  sleep_ms(20);
  assert_int_equal(ndelivered(&f), 0); /* the store has not returned */
  assert_int_equal(sub_log_pushed(l), 0);
  open_gate(&st);
  wait_pushed(l, 2);
  assert_delivered(&f, (uint64_t[]){1, 2}, 2);
  assert_appended(&st, (uint64_t[]){1, 2}, 2);

  /* commits stop at a held event */
  struct sub_event *h = hold(&f, l, "a"); /* 3 */
  push(&f, l, "a");                       /* 4 */
  sleep_ms(20);
  assert_appended(&st, (uint64_t[]){1, 2}, 2);
  assert_int_equal(sub_log_pushed(l), 2);
  settle(l, h, true);
  sub_event_unref(h);
  wait_pushed(l, 4);
  assert_appended(&st, (uint64_t[]){1, 2, 3, 4}, 4);
  assert_delivered(&f, (uint64_t[]){1, 2, 3, 4}, 4);

  /* a dropped event is skipped: the store sees the offsets jump */
  h = hold(&f, l, "a"); /* 5 */
  push(&f, l, "a");     /* 6 */
  settle(l, h, false);
  sub_event_unref(h);
  wait_pushed(l, 6);
  assert_appended(&st, (uint64_t[]){1, 2, 3, 4, 6}, 5);
  assert_delivered(&f, (uint64_t[]){1, 2, 3, 4, 6}, 5);

  /* a failed append pushes nothing; the commit is tried again */
  pthread_mutex_lock(&st.mu);
  st.result = -1;
  size_t calls = st.calls;
  pthread_mutex_unlock(&st.mu);
  push(&f, l, "a"); /* 7 */
  size_t now = calls;
  for(int i = 0; i < 5000 && now < calls + 2; i++) { /* a first try and a retry */
    sleep_ms(1);
    pthread_mutex_lock(&st.mu);
    now = st.calls;
    pthread_mutex_unlock(&st.mu);
  }
  assert_true(now >= calls + 2);
  assert_int_equal(sub_log_pushed(l), 6); /* still failing: not pushed */
  assert_delivered(&f, (uint64_t[]){1, 2, 3, 4, 6}, 5);
  pthread_mutex_lock(&st.mu);
  st.result = 0;
  pthread_mutex_unlock(&st.mu);
  wait_pushed(l, 7);
  assert_appended(&st, (uint64_t[]){1, 2, 3, 4, 6, 7}, 6);

  /* free commits and delivers what it was given first */
  for(int i = 0; i < 3; i++)
    push(&f, l, "a"); /* 8, 9, 10 */
  sub_log_free(l);
  assert_appended(&st, (uint64_t[]){1, 2, 3, 4, 6, 7, 8, 9, 10}, 9);
  assert_delivered(&f, (uint64_t[]){1, 2, 3, 4, 6, 7, 8, 9, 10}, 9);
  assert_false(f.early);
  pthread_cond_destroy(&st.cv);
  pthread_mutex_destroy(&st.mu);
}

/* Evicted events are forgotten by the store too, in batches. */
static void test_store_prune(void **state)
{
  (void)state;
  static struct fx f;
  fx_init(&f);
  struct fake_store st = {.open = true};
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  f.store = &st;
  struct sub_log_store s = {store_append, store_prune, &st};
  struct sub_log_cfg c = cfg_of(&f);
  c.store = &s;
  c.max_events = 10;
  struct sub_log *l = sub_log_new(&c, NULL, 1);
  assert_int_equal(sub_log_start(l), 0);
  for(int i = 0; i < 6000; i++)
    push(&f, l, "a");
  wait_pushed(l, 6000);
  assert_int_equal(stats(l).events, 10);
  sub_log_free(l);
  assert_int_equal(st.nappended, 6000);
  assert_true(st.pruned > 4096 && st.pruned <= 5991);
  assert_int_equal(f.ndelivered, 6000);
  for(size_t i = 0; i < 6000; i++)
    assert_int_equal(f.delivered[i], i + 1);
  assert_false(f.early);
  pthread_cond_destroy(&st.cv);
  pthread_mutex_destroy(&st.mu);
}

/* ---- cursors ---- */

static void test_cursor_round_trip(void **state)
{
  (void)state;
  static const uint64_t offs[] = {0, 1, 9, 10, 42, 1000000, UINT64_MAX / 10, UINT64_MAX - 1,
                                  UINT64_MAX};
  for(size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
    char out[SUB_CURSOR_MAX + 1];
    size_t n = sub_cursor_format("abc12345", offs[i], out);
    char want[64];
    snprintf(want, sizeof(want), "abc12345:%llu", (unsigned long long)offs[i]);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    char epoch[SUB_EPOCH_LEN + 1];
    uint64_t o = 7;
    assert_int_equal(sub_cursor_parse(out, n, epoch, &o), 0);
    assert_string_equal(epoch, "abc12345");
    assert_int_equal(o, offs[i]);
  }
  char out[SUB_CURSOR_MAX + 1];
  assert_int_equal(sub_cursor_format("zz99aa00", UINT64_MAX, out), SUB_CURSOR_MAX);
  /* the length given is the cursor, not the NUL */
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t o;
  assert_int_equal(sub_cursor_parse("abc12345:123junk", 12, epoch, &o), 0);
  assert_int_equal(o, 123);
}

static void test_cursor_rejects(void **state)
{
  (void)state;
  static const char *const bad[] = {
      "",
      "abc12345",                       /* missing colon and offset */
      "abc12345:",                      /* no digits */
      "abc123456",                      /* no colon */
      "abc12345;1",                     /* not a colon */
      "abc1234:1",                      /* short epoch */
      "abc1234:12",                     /* short epoch, long enough */
      "abc123456:1",                    /* long epoch */
      "ABC12345:1",                     /* upper case */
      "abc-2345:1",                     /* not [a-z0-9] */
      "abc 2345:1",
      "abc12345:01",                    /* leading zero */
      "abc12345:00",
      "abc12345:007",
      "abc12345:-1",
      "abc12345:+1",
      "abc12345: 1",
      "abc12345:1 ",
      "abc12345:1a",
      "abc12345:1:2",
      "abc12345:18446744073709551616",  /* UINT64_MAX + 1 */
      "abc12345:18446744073709551620",
      "abc12345:99999999999999999999",  /* 20 digits, too big */
      "abc12345:100000000000000000000", /* 21 digits */
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char epoch[SUB_EPOCH_LEN + 1];
    uint64_t o = 7;
    if(sub_cursor_parse(bad[i], strlen(bad[i]), epoch, &o) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(o, 7);
  }
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t o;
  assert_int_equal(sub_cursor_parse("abc12345:1\0" "2", 12, epoch, &o), -1); /* a NUL */
  assert_int_equal(sub_cursor_parse("abc12\0" "45:1", 10, epoch, &o), -1);
  assert_int_equal(sub_cursor_parse("abc12345:10", 10, epoch, &o), 0); /* cut to "...:1" */
  assert_int_equal(o, 1);
}

/* ---- times ---- */

static void test_time_parse(void **state)
{
  (void)state;
  static const struct {
    const char *s;
    uint64_t ms;
  } ok[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00:00.001Z", 1},
      {"2026-12-07T20:04:54Z", T0},
      {"2026-12-07t20:04:54z", T0},
      {"2026-12-07 20:04:54Z", T0},
      {"2026-12-07T21:04:54+01:00", T0},
      {"2026-12-07T14:34:54-05:30", T0},
      {"2026-12-07T20:04:54-00:00", T0},
      {"2026-12-07T20:04:54.5Z", T0 + 500},
      {"2026-12-07T20:04:54.12Z", T0 + 120},
      {"2026-12-07T20:04:54.123Z", T0 + 123},
      {"2026-12-07T20:04:54.123999999Z", T0 + 123}, /* truncated to ms */
      {"2026-12-07T21:04:54.250+01:00", T0 + 250},
      {"2024-02-29T12:00:00Z", 1709208000000ull},     /* leap day */
      {"2000-02-29T00:00:00Z", 951782400000ull},      /* divisible by 400 */
      {"2016-12-31T23:59:60Z", 1483228799000ull},     /* a leap second: as :59 */
      {"9999-12-31T23:59:59.999Z", 253402300799999ull},
  };
  for(size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    uint64_t ms = 7;
    if(sub_time_parse(ok[i].s, strlen(ok[i].s), &ms) != 0)
      fail_msg("refused \"%s\"", ok[i].s);
    if(ms != ok[i].ms)
      fail_msg("\"%s\": %llu, want %llu", ok[i].s, (unsigned long long)ms,
               (unsigned long long)ok[i].ms);
  }
  static const char *const bad[] = {
      "",
      "2026",
      "2026-12-07",                   /* no time */
      "2026-12-07T20:04Z",            /* no seconds */
      "2026-12-07T20:04:54",          /* no offset */
      "2026-12-07X20:04:54Z",
      "2026-12-07T20:04:54Zjunk",     /* trailing garbage */
      "2026-12-07T20:04:54Z ",
      "2026-12-07T20:04:54+01:00Z",
      "2026-12-07T20:04:54.Z",        /* a point without digits */
      "2026-12-07T20:04:54.1234567890Z", /* over 9 digits */
      "2026-12-07T20:04:54+0100",
      "2026-12-07T20:04:54+01",
      "2026-12-07T20:04:54+01:0",
      "2026-12-07T20:04:54+24:00",
      "2026-12-07T20:04:54+01:60",
      "2026-13-07T20:04:54Z",         /* month */
      "2026-00-07T20:04:54Z",
      "2026-12-00T20:04:54Z",         /* day */
      "2026-12-32T20:04:54Z",
      "2026-04-31T20:04:54Z",
      "2026-02-30T00:00:00Z",
      "2023-02-29T00:00:00Z",         /* not a leap year */
      "2100-02-29T00:00:00Z",         /* divisible by 100, not 400 */
      "2026-12-07T24:00:00Z",
      "2026-12-07T20:60:00Z",
      "2026-12-07T20:04:61Z",
      "1969-12-31T23:59:59Z",         /* before 1970 */
      "1970-01-01T00:00:00+00:01",    /* before 1970 once in UTC */
      "26-12-07T20:04:54Z",
      "2026-1-07T20:04:54Z",
      "2026-12-7T20:04:54Z",
      "2026-12-07T2:04:54Z",
      "+2026-12-07T20:04:54Z",
      "2026-12-07T20:04:54.-1Z",
      "2026/12/07T20:04:54Z",
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t ms = 7;
    if(sub_time_parse(bad[i], strlen(bad[i]), &ms) != -1)
      fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(ms, 7);
  }
  /* the length given is the time */
  uint64_t ms;
  assert_int_equal(sub_time_parse("2026-12-07T20:04:54Zjunk", 20, &ms), 0);
  assert_int_equal(ms, T0);
  assert_int_equal(sub_time_parse("2026-12-07T20:04:54Z", 19, &ms), -1);
  assert_int_equal(sub_time_parse("2026-12-07T20:04:54\0Z", 21, &ms), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_refuses_bad_config),
      cmocka_unit_test(test_epoch_given_random_invalid),
      cmocka_unit_test(test_offsets_count_from_next),
      cmocka_unit_test(test_direct_push),
      cmocka_unit_test(test_max_events),
      cmocka_unit_test(test_max_bytes),
      cmocka_unit_test(test_max_age),
      cmocka_unit_test(test_evicts_only_pushed),
      cmocka_unit_test(test_gap_runs),
      cmocka_unit_test(test_gap_skips_holes),
      cmocka_unit_test(test_get),
      cmocka_unit_test(test_latest),
      cmocka_unit_test(test_ring_growth),
      cmocka_unit_test(test_held_order),
      cmocka_unit_test(test_held_dropped),
      cmocka_unit_test(test_max_pending),
      cmocka_unit_test(test_read_newest_limit),
      cmocka_unit_test(test_read_pages),
      cmocka_unit_test(test_read_after_future),
      cmocka_unit_test(test_read_topic_retention),
      cmocka_unit_test(test_read_while_evicting),
      cmocka_unit_test(test_after_time),
      cmocka_unit_test(test_after_time_gap),
      cmocka_unit_test(test_restore),
      cmocka_unit_test(test_store),
      cmocka_unit_test(test_store_prune),
      cmocka_unit_test(test_cursor_round_trip),
      cmocka_unit_test(test_cursor_rejects),
      cmocka_unit_test(test_time_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
