/* A client session (gateway/session.c), whatever transport carries it: its
 * subscriptions as the worker's index and the broker see them, the cap on
 * them, the grants a new token narrows, the rate bucket's refusals and the
 * close after too many, and the deadlines (auth, expiry, ping, idle). Time
 * is given explicitly: no sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client_fixture.h"

#define T0 ((int64_t)1000000000) /* an arbitrary monotonic start, microseconds */
#define S ((int64_t)1000000)

static const char config_text[] =
    "{\"client\": {\"max_subscriptions\": 3, \"rate_per_s\": 2, \"rate_burst\": 2,"
    " \"rate_close_after\": 3, \"ping_interval_s\": 3, \"idle_timeout_s\": 10},"
    " \"auth\": {" FX_JWT_KEYS ", \"leeway_s\": 5, \"timeout_ms\": 2000,"
    " \"anonymous_subscribe\": [\"public.>\"], \"anonymous_publish\": []}}";

/* Anonymous may do nothing: an auth message is due. */
static const char closed_config_text[] =
    "{\"auth\": {" FX_JWT_KEYS ", \"timeout_ms\": 2000,"
    " \"anonymous_subscribe\": [], \"anonymous_publish\": []}}";

static int setup(void **state)
{
  struct fixture *f = malloc(sizeof(*f));
  fx_init(f, config_text);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  fx_free(*state);
  free(*state);
  return 0;
}

static void count_match(struct sub_subscriber *s, void *arg)
{
  (void)s;
  (*(int *)arg)++;
}

/* How many sessions of the index the topic reaches. */
static int matches(struct fixture *f, const char *topic)
{
  int n = 0;
  sub_index_match(f->index, topic, strlen(topic), count_match, &n);
  return n;
}

static enum gw_sub_result subscribe(struct gw_session *s, const char *p)
{
  return gw_session_subscribe(s, p, strlen(p));
}

static void test_subscribe_bookkeeping(void **state)
{
  struct fixture *f = *state;
  struct gw_session s;
  gw_session_init(&s, &f->env, NULL, T0);
  assert_int_equal(fx_reaches_worker(f, "public.news"), 0); /* nobody listens yet */
  assert_int_equal(subscribe(&s, "public.*"), GW_SUB_ADDED);
  assert_int_equal(s.npatterns, 1);
  assert_int_equal(matches(f, "public.news"), 1);
  assert_int_equal(fx_reaches_worker(f, "public.news"), 1); /* counted before the ack */
  assert_int_equal(subscribe(&s, "public.*"), GW_SUB_EXISTS);
  assert_int_equal(s.npatterns, 1);
  assert_int_equal(sub_index_entries(f->index), 1);
  assert_int_equal(subscribe(&s, "public.>"), GW_SUB_ADDED);
  assert_int_equal(matches(f, "public.news"), 1); /* once, however many patterns match */

  assert_true(gw_session_unsubscribe(&s, "public.*"));
  assert_false(gw_session_unsubscribe(&s, "public.*"));
  assert_int_equal(s.npatterns, 1);
  assert_true(gw_session_unsubscribe(&s, "public.>"));
  assert_int_equal(matches(f, "public.news"), 0);
  assert_int_equal(fx_reaches_worker(f, "public.news"), 0);
  gw_session_clear(&s);
}

static void test_max_subscriptions(void **state)
{
  struct fixture *f = *state;
  struct gw_session s;
  gw_session_init(&s, &f->env, NULL, T0);
  assert_int_equal(subscribe(&s, "public.a"), GW_SUB_ADDED);
  assert_int_equal(subscribe(&s, "public.b"), GW_SUB_ADDED);
  assert_int_equal(subscribe(&s, "public.c"), GW_SUB_ADDED);
  assert_int_equal(subscribe(&s, "public.d"), GW_SUB_FULL);
  assert_int_equal(subscribe(&s, "public.a"), GW_SUB_EXISTS); /* not refused as full */
  assert_int_equal(s.npatterns, 3);
  assert_int_equal(matches(f, "public.d"), 0);
  assert_true(gw_session_unsubscribe(&s, "public.b"));
  assert_int_equal(subscribe(&s, "public.d"), GW_SUB_ADDED);
  gw_session_clear(&s); /* drops them all, from the index and the broker */
  assert_int_equal(sub_index_entries(f->index), 0);
  assert_int_equal(fx_reaches_worker(f, "public.a"), 0);
}

struct dropped {
  int n;
  char last[64];
};

static void on_dropped(void *arg, const char *pattern)
{
  struct dropped *d = arg;
  d->n++;
  snprintf(d->last, sizeof(d->last), "%s", pattern);
}

/* A new, narrower token drops what it does not grant, and only that. */
static void test_revoke_after_narrower_token(void **state)
{
  struct fixture *f = *state;
  char claims[512];
  long long exp = (long long)time(NULL) + 3600;
  struct gw_identity wide, narrow;
  fx_claims(claims, sizeof(claims), "alice", exp, "[\"orders.>\",\"chat.>\"]", "[]");
  fx_identity(f, claims, &wide);
  fx_claims(claims, sizeof(claims), "alice", exp, "[\"orders.>\"]", "[]");
  fx_identity(f, claims, &narrow);

  struct gw_session s;
  gw_session_init(&s, &f->env, &wide, T0);
  assert_true(s.authed);
  assert_string_equal(gw_session_who(&s), "alice");
  assert_true(gw_grants_can_subscribe(gw_session_grants(&s), "chat.>"));
  /* concrete topics: the broker counts wildcard interest as one for all */
  assert_int_equal(subscribe(&s, "orders.eu.created"), GW_SUB_ADDED);
  assert_int_equal(subscribe(&s, "chat.lobby"), GW_SUB_ADDED);
  assert_int_equal(subscribe(&s, "public.x"), GW_SUB_ADDED); /* the token's grants include anonymous's */

  gw_session_authenticate(&s, &narrow);
  struct dropped d = {0};
  assert_int_equal(gw_session_revoke(&s, on_dropped, &d), 1);
  assert_int_equal(d.n, 1);
  assert_string_equal(d.last, "chat.lobby");
  assert_int_equal(s.npatterns, 2);
  assert_int_equal(matches(f, "chat.lobby"), 0);
  assert_int_equal(fx_reaches_worker(f, "chat.lobby"), 0);
  assert_int_equal(matches(f, "orders.eu.created"), 1);
  assert_int_equal(gw_session_revoke(&s, on_dropped, &d), 0); /* nothing more to drop */
  gw_session_clear(&s);
}

/* rate 2/s, burst 2, closed after 3 refusals in a row. */
static void test_rate_refusals_and_close(void **state)
{
  struct fixture *f = *state;
  struct gw_session s;
  int64_t wait;
  gw_session_init(&s, &f->env, NULL, T0);
  assert_int_equal(gw_session_rate(&s, T0, &wait), GW_RATE_OK);
  assert_int_equal(gw_session_rate(&s, T0, &wait), GW_RATE_OK);
  assert_int_equal(gw_session_rate(&s, T0, &wait), GW_RATE_REFUSED);
  assert_int_equal(wait, 500); /* the next token, at 2 a second */
  assert_int_equal(s.refused, 1);
  assert_int_equal(gw_session_rate(&s, T0 + 100000, &wait), GW_RATE_REFUSED);
  assert_int_equal(s.refused, 2);
  /* one let through now and then does not reset the count */
  assert_int_equal(gw_session_rate(&s, T0 + 600000, &wait), GW_RATE_OK);
  assert_int_equal(s.refused, 2);
  assert_int_equal(gw_session_rate(&s, T0 + 600000, &wait), GW_RATE_CLOSE);
  assert_int_equal(s.refused, 3);
  gw_session_clear(&s);

  /* a quiet second after a refusal starts the count again */
  gw_session_init(&s, &f->env, NULL, T0);
  for(int i = 0; i < 2; i++)
    gw_session_rate(&s, T0, &wait);
  assert_int_equal(gw_session_rate(&s, T0, &wait), GW_RATE_REFUSED);
  assert_int_equal(gw_session_rate(&s, T0 + 1100000, &wait), GW_RATE_OK);
  assert_int_equal(s.refused, 0);
  gw_session_clear(&s);
}

static void test_auth_deadline(void **state)
{
  (void)state;
  struct fixture f;
  fx_init(&f, closed_config_text);
  struct gw_session s;
  gw_session_init(&s, &f.env, NULL, T0);
  assert_int_equal(s.auth_deadline_us, T0 + 2 * S);
  assert_false(gw_session_auth_overdue(&s, T0 + 2 * S - 1));
  assert_true(gw_session_auth_overdue(&s, T0 + 2 * S));
  char claims[256];
  struct gw_identity id;
  fx_claims(claims, sizeof(claims), "bob", (long long)time(NULL) + 60, "[\"a.>\"]", "[]");
  fx_identity(&f, claims, &id);
  gw_session_authenticate(&s, &id);
  assert_false(gw_session_auth_overdue(&s, T0 + 3 * S));
  gw_session_clear(&s);

  /* a token at the handshake: nothing is due */
  fx_identity(&f, claims, &id);
  gw_session_init(&s, &f.env, &id, T0);
  assert_int_equal(s.auth_deadline_us, 0);
  assert_false(gw_session_auth_overdue(&s, T0 + 60 * S));
  gw_session_clear(&s);
  fx_free(&f);
}

/* A token expires past exp + auth.leeway_s (5 s); anonymous never does. */
static void test_token_expiry(void **state)
{
  struct fixture *f = *state;
  long long exp = (long long)time(NULL) + 60;
  char claims[256];
  struct gw_identity id;
  fx_claims(claims, sizeof(claims), "carol", exp, "[]", "[]");
  fx_identity(f, claims, &id);
  struct gw_session s;
  gw_session_init(&s, &f->env, &id, T0);
  assert_false(gw_session_expired(&s, exp));
  assert_false(gw_session_expired(&s, exp + 5));
  assert_true(gw_session_expired(&s, exp + 6));
  gw_session_clear(&s);
  gw_session_init(&s, &f->env, NULL, T0);
  assert_false(gw_session_expired(&s, exp + 1000000));
  gw_session_clear(&s);
}

/* A ping after 3 quiet seconds, once until something comes; idle at 10. */
static void test_ping_and_idle(void **state)
{
  struct fixture *f = *state;
  struct gw_session s;
  gw_session_init(&s, &f->env, NULL, T0);
  assert_false(gw_session_ping_due(&s, T0 + 3 * S - 1));
  assert_true(gw_session_ping_due(&s, T0 + 3 * S));
  assert_false(gw_session_ping_due(&s, T0 + 4 * S)); /* sent, no answer yet */
  assert_false(gw_session_idle(&s, T0 + 10 * S - 1));
  assert_true(gw_session_idle(&s, T0 + 10 * S));
  gw_session_received(&s, T0 + 5 * S); /* a pong */
  assert_false(gw_session_idle(&s, T0 + 10 * S));
  assert_false(gw_session_ping_due(&s, T0 + 8 * S - 1));
  assert_true(gw_session_ping_due(&s, T0 + 8 * S));
  gw_session_clear(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_subscribe_bookkeeping, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_subscriptions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revoke_after_narrower_token, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rate_refusals_and_close, setup, teardown),
      cmocka_unit_test(test_auth_deadline),
      cmocka_unit_test_setup_teardown(test_token_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ping_and_idle, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
