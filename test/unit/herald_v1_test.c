/* The herald.v1 operations (gateway/herald_v1.c) without a socket: each
 * client message goes in, and what a client would read comes out through a
 * fake transport output, byte for byte: acks, pongs, errors and closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client_fixture.h"
#include "client_port.h"
#include "herald_v1.h"
#include "protocol.h"

static const char config_text[] =
    "{\"client\": {\"max_subscriptions\": 2},"
    " \"auth\": {" FX_JWT_KEYS ", \"leeway_s\": 0,"
    " \"anonymous_subscribe\": [\"public.>\"], \"anonymous_publish\": [\"public.*\"]}}";

static const char rate_config_text[] =
    "{\"client\": {\"rate_per_s\": 1, \"rate_burst\": 1, \"rate_close_after\": 3},"
    " \"auth\": {" FX_JWT_KEYS ", \"anonymous_subscribe\": [\"public.>\"]}}";

static const char closed_config_text[] =
    "{\"auth\": {" FX_JWT_KEYS ", \"timeout_ms\": 1000,"
    " \"anonymous_subscribe\": [], \"anonymous_publish\": []}}";

enum pub_mode { MODE_OK, MODE_FAIL, MODE_LATER, MODE_BUSY, MODE_INVALID };

/* The fake transport: what was sent, how it closed, what was published. */
struct fake {
  struct gw_session s; /* first: the output ops find the fake from it */
  char *sent[16];
  int nsent;
  int closes;
  uint16_t code;
  char reason[128];
  bool flush;
  enum pub_mode mode;
  int publishes;
  char pub_id[GW_MSG_ID_MAX + 1], pub_topic[256], pub_data[256];
};

static const struct gw_v1_out fake_out;

static void fake_send(struct gw_session *s, struct sub_frame *f)
{
  struct fake *k = (struct fake *)s;
  assert_true(k->nsent < 16);
  if(!f) {
    k->sent[k->nsent++] = strdup("(out of memory)");
    return;
  }
  /* the payload is not NUL-terminated (strndup would read past it) */
  char *text = malloc(f->payload_len + 1);
  assert_non_null(text);
  memcpy(text, sub_frame_payload(f), f->payload_len);
  text[f->payload_len] = '\0';
  k->sent[k->nsent++] = text;
  sub_frame_unref(f);
}

static void fake_close(struct gw_session *s, uint16_t code, const char *reason, bool flush)
{
  struct fake *k = (struct fake *)s;
  k->closes++;
  k->code = code;
  snprintf(k->reason, sizeof(k->reason), "%s", reason);
  k->flush = flush;
}

static enum gw_v1_pub_state fake_publish(struct gw_session *s, const struct gw_v1_publish *req)
{
  struct fake *k = (struct fake *)s;
  k->publishes++;
  snprintf(k->pub_id, sizeof(k->pub_id), "%s", req->id);
  snprintf(k->pub_topic, sizeof(k->pub_topic), "%.*s", (int)req->topic_len, req->topic);
  snprintf(k->pub_data, sizeof(k->pub_data), "%.*s", (int)req->data_len, req->data);
  struct pub_request pr = {.status = PUB_ACCEPTED, .pub = {.seq = 7}};
  snprintf(pr.pub.id, sizeof(pr.pub.id), "01J0000000000000000000SEQ7");
  switch(k->mode) {
  case MODE_BUSY: return GW_V1_PUB_BUSY;
  case MODE_LATER: return GW_V1_PUB_TAKEN;
  case MODE_FAIL:
    pr.status = PUB_STORE_FULL;
    snprintf(pr.message, sizeof(pr.message), "the durable store is full");
    break;
  case MODE_INVALID:
    pr.status = PUB_SCHEMA_VIOLATION;
    pr.rule = "public.*";
    snprintf(pr.message, sizeof(pr.message), "data does not match the schema of topic rule "
                                             "\"public.*\"");
    pr.errors = json_pack("[{s:s, s:s, s:s}]", "instance_path", "", "keyword_path", "/type",
                          "message", "expected object, got integer");
    pr.errors_truncated = false;
    break;
  case MODE_OK: break;
  }
  struct gw_v1_published r = {req->id, req->topic, &pr};
  gw_v1_published(&fake_out, s, &r);
  pub_request_clear(&pr);
  return GW_V1_PUB_TAKEN;
}

static void fake_event(struct gw_session *s, struct sub_event *ev)
{
  fake_send(s, gw_v1_event_frame(ev, NULL));
}

static const struct gw_v1_out fake_out = {fake_send, fake_close, fake_publish, fake_event};

struct world {
  struct fixture f;
  struct fake k;
};

static void world_init(struct world *w, const char *config, struct gw_identity *id)
{
  fx_init(&w->f, config);
  memset(&w->k, 0, sizeof(w->k));
  gw_session_init(&w->k.s, &w->f.env, id, gw_now_us());
}

static int setup(void **state)
{
  struct world *w = malloc(sizeof(*w));
  world_init(w, config_text, NULL);
  *state = w;
  return 0;
}

static void forget_sent(struct fake *k)
{
  for(int i = 0; i < k->nsent; i++)
    free(k->sent[i]);
  k->nsent = 0;
}

static int teardown(void **state)
{
  struct world *w = *state;
  forget_sent(&w->k);
  gw_session_clear(&w->k.s);
  fx_free(&w->f);
  free(w);
  return 0;
}

/* Sends text as one client text message. */
static void msg(struct world *w, const char *text)
{
  gw_v1_message(&fake_out, &w->k.s, text, strlen(text), false);
}

/* Asserts that exactly `want` was sent since the last check. */
static void expect(struct world *w, const char *want)
{
  if(w->k.nsent != 1)
    fail_msg("%d frames sent, want 1: %s", w->k.nsent, want);
  assert_string_equal(w->k.sent[0], want);
  forget_sent(&w->k);
}

static void expect_nothing_closed(struct world *w)
{
  assert_int_equal(w->k.closes, 0);
}

static void test_subscribe_ack(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"public.*\"}");
  expect(w, "{\"op\":\"ack\",\"id\":\"1\"}");
  assert_int_equal(w->k.s.npatterns, 1);
  assert_int_equal(fx_reaches_worker(&w->f, "public.news"), 1); /* before the ack */
  /* a second subscribe to the same pattern: acked, nothing added */
  msg(w, "{\"op\":\"subscribe\",\"id\":\"2\",\"topic\":\"public.*\"}");
  expect(w, "{\"op\":\"ack\",\"id\":\"2\"}");
  assert_int_equal(w->k.s.npatterns, 1);
  expect_nothing_closed(w);
}

static void test_too_many_subscriptions(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"public.a\"}");
  msg(w, "{\"op\":\"subscribe\",\"id\":\"2\",\"topic\":\"public.b\"}");
  forget_sent(&w->k);
  msg(w, "{\"op\":\"subscribe\",\"id\":\"3\",\"topic\":\"public.c\"}");
  expect(w, "{\"op\":\"error\",\"id\":\"3\",\"code\":\"too_many_subscriptions\","
            "\"message\":\"at most 2 subscriptions per connection\"}");
  assert_int_equal(w->k.s.npatterns, 2);
  expect_nothing_closed(w);
}

static void test_forbidden(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"orders.>\"}");
  expect(w, "{\"op\":\"error\",\"id\":\"1\",\"code\":\"forbidden\",\"message\":\"subscribing to "
            "orders.> is not granted to this connection (anonymous: authenticate with a "
            "token)\"}");
  assert_int_equal(w->k.s.npatterns, 0);
  msg(w, "{\"op\":\"publish\",\"id\":\"2\",\"topic\":\"orders.eu\",\"data\":{}}");
  expect(w, "{\"op\":\"error\",\"id\":\"2\",\"code\":\"forbidden\",\"message\":\"publishing on "
            "orders.eu is not granted to this connection (anonymous: authenticate with a "
            "token)\"}");
  assert_int_equal(w->k.publishes, 0);
  expect_nothing_closed(w);
}

static void test_unsubscribe(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"public.*\"}");
  forget_sent(&w->k);
  msg(w, "{\"op\":\"unsubscribe\",\"id\":\"2\",\"topic\":\"public.*\"}");
  expect(w, "{\"op\":\"ack\",\"id\":\"2\"}");
  assert_int_equal(w->k.s.npatterns, 0);
  assert_int_equal(fx_reaches_worker(&w->f, "public.news"), 0);
  /* twice is not an error */
  msg(w, "{\"op\":\"unsubscribe\",\"id\":\"3\",\"topic\":\"public.*\"}");
  expect(w, "{\"op\":\"ack\",\"id\":\"3\"}");
}

static void test_ping(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"ping\",\"id\":\"4\"}");
  expect(w, "{\"op\":\"pong\",\"id\":\"4\"}");
}

static void test_auth_invalid_token(void **state)
{
  struct world *w = *state;
  const char *bad = "abc.def.ghi";
  struct gw_identity id;
  char why[GW_AUTH_WHY_MAX], want[512];
  assert_int_not_equal(gw_auth_verify(w->f.auth, bad, strlen(bad), (long long)time(NULL), &id,
                                      why),
                       0);
  snprintf(want, sizeof(want),
           "{\"op\":\"error\",\"id\":\"5\",\"code\":\"invalid_token\",\"message\":\"%s\"}", why);
  msg(w, "{\"op\":\"auth\",\"id\":\"5\",\"token\":\"abc.def.ghi\"}");
  expect(w, want);
  assert_false(w->k.s.authed); /* a refused token changes nothing */
  expect_nothing_closed(w);
}

/* A token that grants less drops the subscriptions it does not cover, each
 * told under the auth message's id, before the ack. */
static void test_auth_narrower_token(void **state)
{
  struct world *w = *state;
  char claims[256], text[2048];
  long long exp = (long long)time(NULL) + 3600;
  fx_claims(claims, sizeof(claims), "dave", exp, "[\"orders.>\",\"chat.>\"]", "[]");
  char *t = fx_token(claims);
  snprintf(text, sizeof(text), "{\"op\":\"auth\",\"id\":\"5\",\"token\":\"%s\"}", t);
  free(t);
  msg(w, text);
  expect(w, "{\"op\":\"ack\",\"id\":\"5\"}");
  msg(w, "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"chat.*\"}");
  msg(w, "{\"op\":\"subscribe\",\"id\":\"2\",\"topic\":\"orders.*\"}");
  forget_sent(&w->k);
  fx_claims(claims, sizeof(claims), "dave", exp, "[\"orders.>\"]", "[]");
  t = fx_token(claims);
  snprintf(text, sizeof(text), "{\"op\":\"auth\",\"id\":\"6\",\"token\":\"%s\"}", t);
  free(t);
  msg(w, text);
  assert_int_equal(w->k.nsent, 2);
  assert_string_equal(w->k.sent[0], "{\"op\":\"error\",\"id\":\"6\",\"code\":\"forbidden\","
                                    "\"message\":\"subscription chat.* dropped: the new token "
                                    "does not grant it\"}");
  assert_string_equal(w->k.sent[1], "{\"op\":\"ack\",\"id\":\"6\"}");
  forget_sent(&w->k);
  assert_true(w->k.s.authed);
  assert_int_equal(w->k.s.npatterns, 1);
  assert_string_equal(w->k.s.patterns[0], "orders.*");
}

static void test_rate_limited(void **state)
{
  (void)state;
  struct world w;
  world_init(&w, rate_config_text, NULL);
  msg(&w, "{\"op\":\"ping\",\"id\":\"1\"}");
  expect(&w, "{\"op\":\"pong\",\"id\":\"1\"}");
  msg(&w, "{\"op\":\"ping\",\"id\":\"2\"}");
  assert_int_equal(w.k.nsent, 1);
  const char *head = "{\"op\":\"error\",\"id\":\"2\",\"code\":\"rate_limited\",\"message\":\"more "
                     "than 1 messages a second (burst 1): wait ";
  const char *tail = " ms; the connection closes if this goes on\"}";
  const char *got = w.k.sent[0];
  assert_memory_equal(got, head, strlen(head));
  assert_string_equal(got + strlen(got) - strlen(tail), tail);
  long wait = strtol(got + strlen(head), NULL, 10);
  assert_true(wait >= 1 && wait <= 1000);
  forget_sent(&w.k);
  msg(&w, "not json at all"); /* refused before it is looked at: no id to echo */
  assert_int_equal(w.k.nsent, 1);
  assert_memory_equal(w.k.sent[0], "{\"op\":\"error\",\"code\":\"rate_limited\"", 35);
  forget_sent(&w.k);
  expect_nothing_closed(&w);
  /* the third refusal in a row closes, after what is queued, with 1008 */
  msg(&w, "{\"op\":\"ping\",\"id\":\"3\"}");
  assert_int_equal(w.k.nsent, 0);
  assert_int_equal(w.k.closes, 1);
  assert_int_equal(w.k.code, 1008);
  assert_string_equal(w.k.reason, "rate limit exceeded");
  assert_true(w.k.flush);
  gw_session_clear(&w.k.s);
  fx_free(&w.f);
}

static void test_bad_messages(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":");
  assert_int_equal(w->k.nsent, 1);
  const char *head = "{\"op\":\"error\",\"code\":\"invalid_json\",\"message\":\"message is not "
                     "valid JSON: ";
  assert_memory_equal(w->k.sent[0], head, strlen(head));
  forget_sent(&w->k);
  msg(w, "{\"op\":\"frobnicate\",\"id\":\"9\"}");
  expect(w, "{\"op\":\"error\",\"id\":\"9\",\"code\":\"unknown_op\",\"message\":\"unknown op "
            "'frobnicate' (expected subscribe, unsubscribe, publish, ping or auth)\"}");
  gw_v1_message(&fake_out, &w->k.s, "\x01\x02", 2, true);
  expect(w, "{\"op\":\"error\",\"code\":\"unsupported_frame\",\"message\":\"binary frames are not "
            "supported: send JSON text frames\"}");
  expect_nothing_closed(w); /* the connection stays open */
}

/* A message on an expired token: token_expired with its id, then 4001. */
static void test_token_expired(void **state)
{
  (void)state;
  struct world w;
  world_init(&w, config_text, NULL);
  char claims[256];
  struct gw_identity id;
  long long exp = (long long)time(NULL) + 60;
  fx_claims(claims, sizeof(claims), "erin", exp, "[\"public.>\"]", "[]");
  fx_identity(&w.f, claims, &id);
  gw_session_clear(&w.k.s);
  gw_session_init(&w.k.s, &w.f.env, &id, gw_now_us());
  assert_false(gw_v1_tick(&fake_out, &w.k.s, gw_now_us(), exp));
  w.k.s.id.exp = (long long)time(NULL) - 10; /* expired since the last tick */
  msg(&w, "{\"op\":\"ping\",\"id\":\"7\"}");
  expect(&w, "{\"op\":\"error\",\"id\":\"7\",\"code\":\"token_expired\",\"message\":\"the token "
             "has expired: send an auth message with a fresh token before exp\"}");
  assert_int_equal(w.k.closes, 1);
  assert_int_equal(w.k.code, GW_CLOSE_TOKEN_EXPIRED);
  assert_int_equal(w.k.code, 4001);
  assert_string_equal(w.k.reason, "token expired");
  assert_true(w.k.flush);
  /* the tick finds it too, with no id */
  w.k.closes = 0;
  assert_true(gw_v1_tick(&fake_out, &w.k.s, gw_now_us(), (long long)time(NULL)));
  expect(&w, "{\"op\":\"error\",\"code\":\"token_expired\",\"message\":\"the token has expired: "
             "send an auth message with a fresh token before exp\"}");
  assert_int_equal(w.k.code, 4001);
  gw_session_clear(&w.k.s);
  fx_free(&w.f);
}

static void test_auth_timeout(void **state)
{
  (void)state;
  struct world w;
  world_init(&w, closed_config_text, NULL);
  int64_t due = w.k.s.auth_deadline_us;
  assert_false(gw_v1_tick(&fake_out, &w.k.s, due - 1, (long long)time(NULL)));
  assert_int_equal(w.k.nsent, 0);
  assert_true(gw_v1_tick(&fake_out, &w.k.s, due, (long long)time(NULL)));
  expect(&w, "{\"op\":\"error\",\"code\":\"auth_timeout\",\"message\":\"no auth message with a "
             "valid token in time (auth.timeout_ms)\"}");
  assert_int_equal(w.k.code, GW_CLOSE_AUTH_TIMEOUT);
  assert_string_equal(w.k.reason, "authentication timeout");
  assert_true(w.k.flush);
  gw_session_clear(&w.k.s);
  fx_free(&w.f);
}

static void test_publish(void **state)
{
  struct world *w = *state;
  msg(w, "{\"op\":\"publish\",\"id\":\"3\",\"topic\":\"public.chat\",\"data\":{ \"a\" : 1 }}");
  expect(w, "{\"op\":\"ack\",\"id\":\"3\",\"event\":{\"id\":\"01J0000000000000000000SEQ7\","
            "\"seq\":7}}");
  assert_int_equal(w->k.publishes, 1);
  assert_string_equal(w->k.pub_id, "3");
  assert_string_equal(w->k.pub_topic, "public.chat");
  assert_string_equal(w->k.pub_data, "{\"a\":1}"); /* compact */

  w->k.mode = MODE_FAIL;
  msg(w, "{\"op\":\"publish\",\"id\":\"4\",\"topic\":\"public.chat\",\"data\":1}");
  expect(w, "{\"op\":\"error\",\"id\":\"4\",\"code\":\"store_full\",\"message\":\"the durable "
            "store is full\"}");

  w->k.mode = MODE_BUSY;
  msg(w, "{\"op\":\"publish\",\"id\":\"5\",\"topic\":\"public.chat\",\"data\":1}");
  expect(w, "{\"op\":\"error\",\"id\":\"5\",\"code\":\"overloaded\",\"message\":\"too many "
            "publishes of this connection are waiting to be stored; wait for their acks\"}");

  /* answered later, once stored */
  w->k.mode = MODE_LATER;
  msg(w, "{\"op\":\"publish\",\"id\":\"6\",\"topic\":\"public.chat\",\"data\":1}");
  assert_int_equal(w->k.nsent, 0);
  struct pub_request pr = {.status = PUB_ACCEPTED, .pub = {.seq = 9}};
  snprintf(pr.pub.id, sizeof(pr.pub.id), "01J0000000000000000000SEQ9");
  struct gw_v1_published r = {"6", "public.chat", &pr};
  gw_v1_published(&fake_out, &w->k.s, &r);
  expect(w, "{\"op\":\"ack\",\"id\":\"6\",\"event\":{\"id\":\"01J0000000000000000000SEQ9\","
            "\"seq\":9}}");

  /* the pipeline's schema violation, with its errors */
  w->k.mode = MODE_INVALID;
  msg(w, "{\"op\":\"publish\",\"id\":\"7\",\"topic\":\"public.chat\",\"data\":1}");
  expect(w, "{\"op\":\"error\",\"id\":\"7\",\"code\":\"schema_violation\",\"message\":\"data "
            "does not match the schema of topic rule \\\"public.*\\\"\",\"errors\":[{"
            "\"instance_path\":\"\",\"keyword_path\":\"/type\",\"message\":\"expected object, "
            "got integer\"}],\"truncated\":false}");
  expect_nothing_closed(w);
}

/* herald.v1's frame of an event is built once, cached on the event and
 * shared by reference, not copied per connection. */
static void test_encode(void **state)
{
  (void)state;
  char id[SUB_ID_LEN + 1];
  memset(id, '0', SUB_ID_LEN);
  id[SUB_ID_LEN] = '\0';
  struct sub_event *ev = sub_event_new("a.b", 3, 1, id, 1, "{}", 2);
  assert_non_null(ev);
  struct sub_frame *f = sub_event_encoded(ev, 0, gw_v1_event_frame, NULL);
  assert_non_null(f);
  assert_ptr_equal(sub_event_encoded(ev, 0, gw_v1_event_frame, NULL), f); /* built once, shared */
  assert_int_equal(f->refs, 1); /* the event's cache holds it */
  assert_memory_equal(sub_frame_payload(f), "{\"op\":\"event\",\"topic\":\"a.b\"", 27);
  sub_event_unref(ev);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_subscribe_ack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_too_many_subscriptions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forbidden, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsubscribe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auth_invalid_token, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auth_narrower_token, setup, teardown),
      cmocka_unit_test(test_rate_limited),
      cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
      cmocka_unit_test(test_token_expired),
      cmocka_unit_test(test_auth_timeout),
      cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
      cmocka_unit_test(test_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
