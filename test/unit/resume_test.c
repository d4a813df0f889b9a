/* The resume handoff (gw_session_resume) over a real broker and history log
 * with a fake clock: what the worker's queue held at the snapshot goes to
 * the subscriptions as they were, the replay covers (cursor, mark] without
 * what another subscription sent, events after the mark come live, and the
 * gap answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client_fixture.h"
#include "engine.h"
#include "eventlog.h"
#include "fanout.h"

struct world {
  struct fixture f;
  struct sub_log *log;
  uint64_t now;
  struct gw_session s;
  /* what reached the session through the index: drained or live */
  uint64_t got[256];
  int ngot;
};

static uint64_t fake_now(void *arg)
{
  return ((struct world *)arg)->now;
}

struct match_ctx {
  struct world *w;
  struct sub_event *ev;
};

static void got_it(struct sub_subscriber *sub, void *arg)
{
  struct match_ctx *m = arg;
  (void)sub;
  m->w->got[m->w->ngot++] = m->ev->offset;
}

/* The worker's delivery: every event of the batch through the index. */
static void deliver_batch(struct world *w, struct sub_batch *b)
{
  for(size_t i = 0; i < b->n; i++) {
    struct match_ctx m = {w, b->ev[i]};
    sub_index_match(w->f.index, b->ev[i]->topic, b->ev[i]->topic_len, got_it, &m);
    sub_event_unref(b->ev[i]);
  }
  b->n = 0;
}

static void drain(void *arg, struct sub_batch *b)
{
  deliver_batch(arg, b);
}

/* The worker's turn: take its queue and deliver it. */
static void worker_turn(struct world *w)
{
  struct sub_batch b = {0};
  sub_fanout_take(sub_broker_fanout(w->f.broker), 0, &b);
  deliver_batch(w, &b);
  sub_batch_free(&b);
}

static uint64_t pub(struct world *w, const char *topic)
{
  struct sub_published out;
  assert_int_equal(sub_broker_publish(w->f.broker, topic, strlen(topic), "{}", 2, &out), SUB_OK);
  return out.offset;
}

static int setup_with(void **state, const char *config)
{
  struct world *w = calloc(1, sizeof(*w));
  fx_init(&w->f, config);
  w->now = 1700000000000ull;
  struct sub_log_cfg lc = {.max_events = (size_t)w->f.cfg.history_max_events,
                           .max_pending = 1024,
                           .now_ms = fake_now,
                           .clock_arg = w,
                           .deliver = sub_broker_log_deliver,
                           .deliver_arg = w->f.broker};
  w->log = sub_log_new(&lc, "testepo1", 1);
  assert_non_null(w->log);
  sub_broker_set_log(w->f.broker, w->log);
  w->f.env.engine = sub_broker_engine(w->f.broker);
  w->f.env.drain = drain;
  w->f.env.drain_arg = w;
  gw_session_init(&w->s, &w->f.env, NULL, 0);
  *state = w;
  return 0;
}

static int setup(void **state)
{
  return setup_with(state, "{\"history\": {\"max_events\": 0, \"max_replay\": 100}}");
}

static int setup_small(void **state)
{
  return setup_with(state, "{\"history\": {\"max_events\": 4, \"max_replay\": 3}}");
}

static int teardown(void **state)
{
  struct world *w = *state;
  gw_session_clear(&w->s);
  sub_log_free(w->log);
  fx_free(&w->f);
  free(w);
  return 0;
}

static struct gw_since_req at(uint64_t offset)
{
  return (struct gw_since_req){.kind = GW_SINCE_CURSOR, .epoch = "testepo1", .offset = offset};
}

/* Events queued before the snapshot go to the subscriptions as they were;
 * the new one gets them by replay, once; later ones come live. */
/* the fixture's helpers this program does not need */
__attribute__((unused)) static void (*const unused_helpers[])(void) = {(void (*)(void))fx_reaches_worker, (void (*)(void))fx_identity, (void (*)(void))fx_claims};

static void test_handoff_queue_and_replay(void **state)
{
  struct world *w = *state;
  assert_int_equal(gw_session_subscribe(&w->s, "a.x", 3), GW_SUB_ADDED);
  uint64_t o1 = pub(w, "a.x"); /* queued, not yet taken by the worker */
  uint64_t o2 = pub(w, "a.y");
  uint64_t o3 = pub(w, "a.x");
  struct gw_since_req q = at(0);
  struct gw_resume res;
  struct sub_log_result replay;
  assert_int_equal(gw_session_resume(&w->s, "a.*", 3, &q, &res, &replay), GW_RESUME_OK);
  /* the drain delivered o1 and o3 to a.x (the old index) */
  assert_int_equal(w->ngot, 2);
  assert_int_equal(w->got[0], o1);
  assert_int_equal(w->got[1], o3);
  /* the replay has only what a.x did not send */
  assert_int_equal(res.gap, SUB_GAP_NONE);
  assert_int_equal(res.to, o3);
  assert_int_equal(replay.n, 1);
  assert_int_equal(replay.ev[0]->offset, o2);
  assert_int_equal(res.replayed, 1);
  sub_log_result_clear(&replay);
  /* live: one delivery per event however many patterns match */
  uint64_t o4 = pub(w, "a.x");
  uint64_t o5 = pub(w, "a.z");
  worker_turn(w);
  assert_int_equal(w->ngot, 4);
  assert_int_equal(w->got[2], o4);
  assert_int_equal(w->got[3], o5);
}

/* A held event (a webhooks commit) holds back later offsets: the mark stops
 * before it, and it comes live after its release, not in the replay. */
static int hold_cb(void *arg, struct sub_event *ev, void *ctx)
{
  (void)ctx;
  *(struct sub_event **)arg = ev;
  return 0;
}

static void test_held_event_is_live_not_replayed(void **state)
{
  struct world *w = *state;
  struct sub_event *held = NULL;
  sub_broker_set_hold(w->f.broker, hold_cb, &held);
  uint64_t o1 = pub(w, "b.x");
  struct sub_publish p = {.topic = "b.y", .topic_len = 3, .data = "{}", .data_len = 2, .hold = true};
  struct sub_published out;
  bool is_held;
  assert_int_equal(sub_broker_publish_held(w->f.broker, &p, &out, &is_held), SUB_OK);
  assert_true(is_held);
  uint64_t o3 = pub(w, "b.x"); /* waits behind the held one */
  struct gw_since_req q = at(0);
  struct gw_resume res;
  struct sub_log_result replay;
  assert_int_equal(gw_session_resume(&w->s, "b.*", 3, &q, &res, &replay), GW_RESUME_OK);
  assert_int_equal(res.to, o1);
  assert_int_equal(replay.n, 1);
  assert_int_equal(replay.ev[0]->offset, o1);
  sub_log_result_clear(&replay);
  sub_broker_release(w->f.broker, held, true);
  worker_turn(w);
  assert_int_equal(w->ngot, 2);
  assert_int_equal(w->got[0], out.offset);
  assert_int_equal(w->got[1], o3);
}

/* Gaps: eviction (oldest = first retained), the replay limit, another
 * epoch, on_gap fail (nothing subscribed), a cursor ahead of the log, and
 * a time after the fake clock moved. */
static void test_gaps(void **state)
{
  struct world *w = *state;
  uint64_t o[8];
  for(int i = 0; i < 8; i++) {
    o[i] = pub(w, "c.x");
    w->now += 1000;
  }
  struct gw_resume res;
  struct sub_log_result replay;
  struct gw_since_req q = at(o[0]);
  assert_int_equal(gw_session_resume(&w->s, "c.x", 3, &q, &res, &replay), GW_RESUME_OK);
  /* 4 kept (o[4..7]), and 3 replayed at most: the limit names the first replayed */
  assert_int_equal(res.gap, SUB_GAP_LIMIT);
  assert_int_equal(replay.n, 3);
  assert_int_equal(res.oldest, o[5]);
  assert_int_equal(replay.ev[0]->offset, o[5]);
  sub_log_result_clear(&replay);

  q = at(o[4]); /* within the bounds: no gap, 3 replayed */
  assert_int_equal(gw_session_resume(&w->s, "c.*", 3, &q, &res, &replay), GW_RESUME_OK);
  /* c.x (above) sent everything after o[4] already */
  assert_int_equal(res.gap, SUB_GAP_NONE);
  assert_int_equal(replay.n, 0);
  sub_log_result_clear(&replay);

  q = at(o[1]);
  q.gap_fail = true;
  assert_int_equal(gw_session_resume(&w->s, "c.>", 3, &q, &res, &replay), GW_RESUME_GAP);
  assert_int_equal(res.gap, SUB_GAP_EVICTED);
  assert_int_equal(res.oldest, o[4]);
  assert_int_equal(w->s.npatterns, 2); /* not subscribed */

  q = (struct gw_since_req){.kind = GW_SINCE_CURSOR, .epoch = "otherep0", .offset = 3};
  assert_int_equal(gw_session_resume(&w->s, "d.x", 3, &q, &res, &replay), GW_RESUME_OK);
  assert_int_equal(res.gap, SUB_GAP_EPOCH_CHANGED);
  sub_log_result_clear(&replay);

  q = at(o[7] + 5);
  assert_int_equal(gw_session_resume(&w->s, "e.x", 3, &q, &res, &replay), GW_RESUME_BAD_CURSOR);

  /* a time (events carry the wall clock's): one after every event replays
   * nothing and, nothing newer having been removed, is no gap; one before
   * them all names the eviction */
  q = (struct gw_since_req){.kind = GW_SINCE_TIME, .ms = (uint64_t)time(NULL) * 1000 + 60000};
  assert_int_equal(gw_session_resume(&w->s, "c.y.>", 5, &q, &res, &replay), GW_RESUME_OK);
  assert_int_equal(res.gap, SUB_GAP_NONE);
  assert_int_equal(res.from, o[7]);
  assert_int_equal(replay.n, 0);
  sub_log_result_clear(&replay);
  q = (struct gw_since_req){.kind = GW_SINCE_TIME, .ms = 1000};
  assert_int_equal(gw_session_resume(&w->s, "c.z.>", 5, &q, &res, &replay), GW_RESUME_OK);
  assert_int_equal(res.gap, SUB_GAP_EVICTED);
  sub_log_result_clear(&replay);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handoff_queue_and_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_held_event_is_live_not_replayed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_gaps, setup_small, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
