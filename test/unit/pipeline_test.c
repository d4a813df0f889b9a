/* The publish pipeline with a fake engine, fake topic rules, a fake
 * durable-store lookup: the order of the stages, the domain results, the
 * hold for durability, and idempotency (claims, replays, conflicts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "pipeline.h"

/* ---- a fake engine ---- */

struct fake_engine {
  struct sub_engine engine;
  int calls;
  enum sub_err answer;
  bool hold_seen;            /* the last publish asked to hold */
  struct sub_hold_req *held; /* the last held publish's request */
  uint64_t seq;
};

static enum sub_err fake_publish(struct sub_engine *e, const struct sub_publish *p,
                                 struct sub_published *out, bool *held)
{
  struct fake_engine *f = (struct fake_engine *)e;
  f->calls++;
  f->hold_seen = p->hold;
  *held = false;
  if(f->answer)
    return f->answer;
  snprintf(out->id, sizeof(out->id), "0190a1b2-c3d4-7e5f-8a6b-%012llu",
           (unsigned long long)++f->seq);
  out->seq = f->seq;
  out->ms = 1000 + f->seq;
  if(p->hold) {
    f->held = p->ctx;
    *held = true;
  }
  return SUB_OK;
}

static const struct sub_engine_ops fake_ops = {.name = "fake", .publish = fake_publish};

/* ---- fake rules, durability and idempotency store ---- */

static enum pub_verdict rules_answer;

static enum pub_verdict fake_check(const void *rules, const char *topic, const json_t *data,
                                   struct schema_result *res, const char **rule)
{
  (void)rules;
  (void)topic;
  (void)data;
  *rule = "orders.>";
  res->count = 0;
  res->truncated = false;
  if(rules_answer == PUB_VERDICT_INVALID) {
    res->count = 1;
    res->truncated = true;
    snprintf(res->errors[0].instance_path, SCHEMA_PATH_MAX, "/qty");
    snprintf(res->errors[0].keyword_path, SCHEMA_PATH_MAX, "/properties/qty/type");
    snprintf(res->errors[0].message, SCHEMA_MESSAGE_MAX, "must be integer");
  }
  return rules_answer;
}

static bool rules_on = true;

static bool fake_active(const void *rules)
{
  (void)rules;
  return rules_on;
}

static bool fake_wants(void *arg, const char *topic)
{
  (void)arg;
  return strncmp(topic, "hooked.", 7) == 0;
}

/* one recorded key */
static struct {
  int answer; /* what lookup returns when the key matches */
  char key[PUB_IDEM_SCOPED_MAX + 1];
  unsigned char hash[PUB_IDEM_HASH_LEN];
  struct sub_published first;
} store;

static int fake_lookup(void *arg, const char *key, int64_t min_ms,
                       unsigned char hash[PUB_IDEM_HASH_LEN], struct sub_published *first)
{
  (void)arg;
  assert_true(min_ms > 0);
  if(store.answer < 0)
    return -1;
  if(strcmp(key, store.key) != 0)
    return 0;
  memcpy(hash, store.hash, PUB_IDEM_HASH_LEN);
  *first = store.first;
  return 1;
}

static struct fake_engine fe;
static struct pub_pipeline *pp;
static int dones;

static void on_done(struct pub_request *r)
{
  (void)r;
  dones++;
}

static int setup(void **state)
{
  (void)state;
  memset(&fe, 0, sizeof(fe));
  fe.engine.ops = &fake_ops;
  memset(&store, 0, sizeof(store));
  rules_answer = PUB_VERDICT_OK;
  rules_on = true;
  dones = 0;
  struct pub_config cfg = {
      .engine = &fe.engine,
      .rules = {.check = fake_check, .active = fake_active},
      .durable = {.wants = fake_wants},
      .idem = {.lookup = fake_lookup},
      .idempotency_ttl_ms = 86400000,
  };
  pp = pub_pipeline_new(&cfg);
  return pp ? 0 : -1;
}

static int teardown(void **state)
{
  (void)state;
  pub_pipeline_free(pp);
  return 0;
}

static void request(struct pub_request *r, const char *topic, const char *data, json_t *value)
{
  memset(r, 0, sizeof(*r));
  r->topic = topic;
  r->topic_len = strlen(topic);
  r->data = data;
  r->data_len = strlen(data);
  r->data_value = value;
  r->done = on_done;
}

static void test_accepted(void **state)
{
  (void)state;
  struct pub_request r;
  json_t *v = json_pack("{s:i}", "n", 1);
  request(&r, "orders.created", "{\"n\":1}", v);
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_ACCEPTED);
  assert_string_equal(pub_status_code(r.status), "ok");
  assert_int_equal(r.pub.seq, 1);
  assert_false(r.replayed);
  assert_false(fe.hold_seen); /* nothing wants it durable */
  assert_int_equal(fe.calls, 1);
  pub_request_clear(&r);
  json_decref(v);
}

/* The rules come first: a refused publish never reaches the engine. */
static void test_rules(void **state)
{
  (void)state;
  struct pub_request r;
  json_t *v = json_pack("{s:s}", "qty", "x");
  rules_answer = PUB_VERDICT_UNKNOWN_TOPIC;
  request(&r, "nope.created", "{\"qty\":\"x\"}", v);
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_UNKNOWN_TOPIC);
  assert_string_equal(pub_status_code(r.status), "unknown_topic");
  assert_string_equal(r.message,
                      "no topic rule matches this topic (schemas.unmatched_topics is \"reject\")");

  rules_answer = PUB_VERDICT_INVALID;
  request(&r, "orders.created", "{\"qty\":\"x\"}", v);
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_SCHEMA_VIOLATION);
  assert_string_equal(r.message, "data does not match the schema of topic rule \"orders.>\"");
  assert_true(r.errors_truncated);
  char *text = json_dumps(r.errors, JSON_COMPACT);
  assert_string_equal(text, "[{\"instance_path\":\"/qty\",\"keyword_path\":"
                            "\"/properties/qty/type\",\"message\":\"must be integer\"}]");
  free(text);
  pub_request_clear(&r);
  assert_null(r.errors);
  assert_int_equal(fe.calls, 0);

  /* inactive rules, or no parsed data (Herald's own events): not checked */
  rules_on = false;
  request(&r, "orders.created", "{\"qty\":\"x\"}", v);
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_ACCEPTED);
  rules_on = true;
  request(&r, "orders.created", "{\"qty\":\"x\"}", NULL);
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_ACCEPTED);
  assert_int_equal(fe.calls, 2);
  json_decref(v);
}

/* A topic the durable side wants is held; its outcome comes later. */
static void test_held(void **state)
{
  (void)state;
  struct pub_request r;
  request(&r, "hooked.a", "1", NULL);
  assert_int_equal(pub_publish(pp, &r), PUB_PENDING);
  assert_true(fe.hold_seen);
  assert_non_null(fe.held);
  assert_null(fe.held->idem_key);
  assert_int_equal(dones, 0);
  fe.held->done(fe.held, SUB_OK);
  assert_int_equal(dones, 1);
  assert_int_equal(r.status, PUB_ACCEPTED);
  assert_int_equal(r.pub.seq, 1);

  request(&r, "hooked.a", "1", NULL);
  assert_int_equal(pub_publish(pp, &r), PUB_PENDING);
  fe.held->done(fe.held, SUB_ESTOREFULL);
  assert_int_equal(r.status, PUB_STORE_FULL);
  assert_string_equal(pub_status_code(r.status), "store_full");
  request(&r, "hooked.a", "1", NULL);
  assert_int_equal(pub_publish(pp, &r), PUB_PENDING);
  fe.held->done(fe.held, SUB_ESTORE);
  assert_int_equal(r.status, PUB_STORE_FAILED);
  assert_string_equal(r.message, "the webhook store could not write the event; retry later");
  assert_int_equal(dones, 3);
}

static void test_engine_errors(void **state)
{
  (void)state;
  const struct {
    enum sub_err e;
    enum pub_status s;
    const char *code;
  } cases[] = {
      {SUB_EOVERLOADED, PUB_OVERLOADED, "overloaded"},
      {SUB_ETOOMANYTOPICS, PUB_TOO_MANY_TOPICS, "too_many_topics"},
      {SUB_EINVAL, PUB_INVALID_TOPIC, "invalid_topic"},
      {SUB_ENOMEM, PUB_NO_MEMORY, "internal_error"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct pub_request r;
    fe.answer = cases[i].e;
    request(&r, "a", "1", NULL);
    assert_int_equal(pub_publish(pp, &r), PUB_DONE);
    assert_int_equal(r.status, cases[i].s);
    assert_string_equal(pub_status_code(r.status), cases[i].code);
    assert_true(r.message[0] != '\0');
  }
  struct pub_request r;
  fe.answer = SUB_EOVERLOADED;
  request(&r, "a", "1", NULL);
  r.idem_key = "k-1";
  assert_int_equal(pub_publish(pp, &r), PUB_DONE);
  assert_int_equal(r.status, PUB_OVERLOADED);
  fe.answer = SUB_OK;
  request(&r, "a", "1", NULL); /* the key was given back: usable again */
  r.idem_key = "k-1";
  assert_int_equal(pub_publish(pp, &r), PUB_PENDING);
  fe.held->done(fe.held, SUB_OK);
  assert_int_equal(r.status, PUB_ACCEPTED);
}

/* A key: held (recorded with the event), claimed while in flight, then
 * answered again from the store, a conflict with other data. */
static void test_idempotency(void **state)
{
  (void)state;
  struct pub_request r, r2;
  request(&r, "orders.created", "{\"n\":1}", NULL);
  r.idem_key = "order-1042";
  assert_int_equal(pub_publish(pp, &r), PUB_PENDING);
  assert_true(fe.hold_seen); /* keyed: held to be recorded */
  assert_string_equal(fe.held->idem_key, "0::order-1042"); /* anonymous scope */
  unsigned char want[PUB_IDEM_HASH_LEN];
  assert_int_equal(pub_idem_hash("orders.created", 14, "{\"n\":1}", 7, want), 0);
  assert_memory_equal(fe.held->idem_hash, want, sizeof(want));

  request(&r2, "orders.created", "{\"n\":1}", NULL);
  r2.idem_key = "order-1042";
  assert_int_equal(pub_publish(pp, &r2), PUB_DONE);
  assert_int_equal(r2.status, PUB_IDEM_IN_PROGRESS);
  assert_int_equal(fe.calls, 1);

  fe.held->done(fe.held, SUB_OK);
  assert_int_equal(r.status, PUB_ACCEPTED);
  /* the store now has it */
  store.answer = 1;
  snprintf(store.key, sizeof(store.key), "0::order-1042");
  memcpy(store.hash, want, sizeof(want));
  store.first = r.pub;

  request(&r2, "orders.created", "{\"n\":1}", NULL);
  r2.idem_key = "order-1042";
  assert_int_equal(pub_publish(pp, &r2), PUB_DONE);
  assert_int_equal(r2.status, PUB_ACCEPTED);
  assert_true(r2.replayed);
  assert_string_equal(r2.pub.id, r.pub.id);
  assert_int_equal(r2.pub.seq, r.pub.seq);
  assert_int_equal(fe.calls, 1); /* not published again */

  request(&r2, "orders.created", "{\"n\":2}", NULL);
  r2.idem_key = "order-1042";
  assert_int_equal(pub_publish(pp, &r2), PUB_DONE);
  assert_int_equal(r2.status, PUB_IDEM_CONFLICT);
  assert_string_equal(pub_status_code(r2.status), "idempotency_conflict");

  store.answer = -1; /* the store cannot be read */
  request(&r2, "orders.created", "{\"n\":1}", NULL);
  r2.idem_key = "order-1043";
  assert_int_equal(pub_publish(pp, &r2), PUB_DONE);
  assert_int_equal(r2.status, PUB_STORE_FAILED);
  assert_int_equal(fe.calls, 1);
}

/* Keys are the caller's: the same key string from another API key (or
 * from anonymous callers) is another key, neither replayed, blocked nor
 * in conflict; within one caller a replay still works. */
static void test_idempotency_scoped(void **state)
{
  (void)state;
  struct pub_request a, b;
  request(&a, "billing.paid", "{\"n\":1}", NULL);
  a.idem_key = "order-1042";
  a.idem_scope = "billing";
  assert_int_equal(pub_publish(pp, &a), PUB_PENDING);
  assert_string_equal(fe.held->idem_key, "7:billing:order-1042");
  struct sub_hold_req *held_a = fe.held;

  /* in flight for billing: publisher's own key of the same name goes on */
  request(&b, "orders.created", "{\"n\":2}", NULL);
  b.idem_key = "order-1042";
  b.idem_scope = "publisher";
  assert_int_equal(pub_publish(pp, &b), PUB_PENDING);
  assert_string_equal(fe.held->idem_key, "9:publisher:order-1042");
  fe.held->done(fe.held, SUB_OK);
  held_a->done(held_a, SUB_OK);
  assert_int_equal(a.status, PUB_ACCEPTED);
  assert_int_equal(b.status, PUB_ACCEPTED);
  assert_int_equal(fe.calls, 2);

  /* billing's key recorded: publisher (and anonymous) are not answered by it */
  unsigned char want[PUB_IDEM_HASH_LEN];
  assert_int_equal(pub_idem_hash("billing.paid", 12, "{\"n\":1}", 7, want), 0);
  store.answer = 1;
  snprintf(store.key, sizeof(store.key), "7:billing:order-1042");
  memcpy(store.hash, want, sizeof(want));
  store.first = a.pub;
  request(&b, "orders.created", "{\"n\":3}", NULL);
  b.idem_key = "order-1042";
  b.idem_scope = "publisher";
  assert_int_equal(pub_publish(pp, &b), PUB_PENDING); /* not a conflict */
  fe.held->done(fe.held, SUB_OK);
  assert_int_equal(b.status, PUB_ACCEPTED);
  assert_false(b.replayed);
  request(&b, "billing.paid", "{\"n\":1}", NULL);
  b.idem_key = "order-1042"; /* anonymous: another scope again */
  assert_int_equal(pub_publish(pp, &b), PUB_PENDING);
  fe.held->done(fe.held, SUB_OK);
  assert_false(b.replayed);
  /* billing itself gets its answer again */
  request(&b, "billing.paid", "{\"n\":1}", NULL);
  b.idem_key = "order-1042";
  b.idem_scope = "billing";
  assert_int_equal(pub_publish(pp, &b), PUB_DONE);
  assert_true(b.replayed);
  assert_string_equal(b.pub.id, a.pub.id);
  assert_int_equal(fe.calls, 4);
}

static void test_scoped_key_spelling(void **state)
{
  (void)state;
  char out[PUB_IDEM_SCOPED_MAX + 1];
  assert_int_equal(pub_idem_scoped_key(NULL, "k", out), 0);
  assert_string_equal(out, "0::k");
  assert_int_equal(pub_idem_scoped_key("", "k", out), 0);
  assert_string_equal(out, "0::k");
  /* a scope holding the separator cannot pass for another pair */
  assert_int_equal(pub_idem_scoped_key("a:1", "k", out), 0);
  assert_string_equal(out, "3:a:1:k");
  assert_int_equal(pub_idem_scoped_key("a", "1:k", out), 0);
  assert_string_equal(out, "1:a:1:k");
  char scope[PUB_IDEM_SCOPE_MAX + 2], key[PUB_IDEM_KEY_MAX + 1];
  memset(scope, 's', sizeof(scope));
  scope[PUB_IDEM_SCOPE_MAX] = '\0';
  memset(key, 'k', sizeof(key));
  key[PUB_IDEM_KEY_MAX] = '\0';
  assert_int_equal(pub_idem_scoped_key(scope, key, out), 0); /* the longest fit */
  assert_int_equal(strlen(out), PUB_IDEM_SCOPED_MAX); /* "63:" scope ":" key */
  scope[PUB_IDEM_SCOPE_MAX] = 's';
  scope[PUB_IDEM_SCOPE_MAX + 1] = '\0';
  assert_int_equal(pub_idem_scoped_key(scope, key, out), -1);
}

static void test_key_valid(void **state)
{
  (void)state;
  char long_key[PUB_IDEM_KEY_MAX + 2];
  memset(long_key, 'k', sizeof(long_key));
  long_key[PUB_IDEM_KEY_MAX] = '\0';
  assert_true(pub_idem_key_valid(long_key));
  long_key[PUB_IDEM_KEY_MAX] = 'k';
  long_key[PUB_IDEM_KEY_MAX + 1] = '\0';
  assert_false(pub_idem_key_valid(long_key));
  assert_false(pub_idem_key_valid(""));
  assert_false(pub_idem_key_valid("a b"));
  assert_false(pub_idem_key_valid("a\x7f"));
  assert_true(pub_idem_key_valid("!~"));
}

static void test_claims(void **state)
{
  (void)state;
  struct pub_claims *c = pub_claims_new();
  assert_non_null(c);
  assert_true(pub_claims_take(c, "a"));
  assert_false(pub_claims_take(c, "a"));
  for(int i = 0; i < 40; i++) { /* growth past the first allocation */
    char k[8];
    snprintf(k, sizeof(k), "k%d", i);
    assert_true(pub_claims_take(c, k));
  }
  assert_int_equal(pub_claims_count(c), 41);
  pub_claims_release(c, "a");
  pub_claims_release(c, "never");
  assert_int_equal(pub_claims_count(c), 40);
  assert_true(pub_claims_take(c, "a"));
  pub_claims_free(c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_accepted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_held, setup, teardown),
      cmocka_unit_test_setup_teardown(test_engine_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotency_scoped, setup, teardown),
      cmocka_unit_test(test_scoped_key_spelling),
      cmocka_unit_test(test_key_valid),
      cmocka_unit_test(test_claims),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
