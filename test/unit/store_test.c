/* The webhook store interface (store.h) against its SQLite implementation,
 * on a temporary file: what the dispatcher and the endpoints API rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define T0 1700000000000LL /* a fixed "now" in ms */

struct fixture {
  char dir[64];
  char path[128];
  struct hook_store *s;
};

static struct hook_store *open_at(struct fixture *f, int64_t max_bytes)
{
  char err[512] = "";
  struct hook_store *s = hook_store_sqlite_open(f->path, max_bytes, err);
  if(!s)
    fail_msg("open: %s", err);
  return s;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/herald-store-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/herald.db", f->dir);
  f->s = open_at(f, 0);
  assert_int_equal(f->s->ops->turn_prepare(f->s), HOOK_STORE_OK);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  hook_store_close(f->s);
  const char *suffix[] = {"", "-wal", "-shm", "-journal"};
  for(size_t i = 0; i < 4; i++) {
    char p[160];
    snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(f->dir), 0);
  free(f);
  return 0;
}

/* ---- helpers ---- */

static struct hook_store_endpoint endpoint(const char *id)
{
  return (struct hook_store_endpoint){
      .id = id,
      .url = "https://example.com/hook",
      .topics = "[\"orders.>\"]",
      .description = "d",
      .secret = "whsec_AAAA",
      .old_secret = "",
      .enabled = true,
      .created_ms = T0,
      .updated_ms = T0,
      .disabled_reason = "",
  };
}

static void event_id(int n, char out[SUB_ID_LEN + 1])
{
  snprintf(out, SUB_ID_LEN + 1, "0190a1b2-c3d4-7e5f-8a6b-%012d", n);
}

/* One whole turn holding one publish of event n to the endpoints `eps`,
 * each delivery with `status`, due at next_ms. ids (may be NULL) get the
 * new delivery ids. Returns what write_item returned. */
static enum hook_store_err hold(struct hook_store *s, int n, const char *topic, uint64_t seq,
                                const char *const *eps, size_t neps, int status, int64_t next_ms,
                                const char *idem_key, int64_t *ids, size_t body_len)
{
  char id[SUB_ID_LEN + 1];
  event_id(n, id);
  static const unsigned char hash[HOOK_STORE_HASH_LEN] = {1, 2, 3, 4};
  char *body = malloc(body_len + 1);
  assert_non_null(body);
  memset(body, 'x', body_len);
  body[body_len] = '\0';
  struct hook_store_new_delivery ds[8];
  assert_true(neps <= 8);
  for(size_t i = 0; i < neps; i++)
    ds[i] = (struct hook_store_new_delivery){.endpoint = eps[i], .status = status,
                                             .next_ms = next_ms};
  struct hook_store_item it = {
      .event_id = id,
      .topic = topic,
      .topic_len = strlen(topic),
      .seq = seq,
      .ms = (uint64_t)(T0 + n),
      .body = neps ? body : NULL,
      .body_len = body_len,
      .deliveries = ds,
      .ndeliveries = neps,
      .idem_key = idem_key,
      .idem_hash = hash,
      .idem_ms = T0 + n,
  };
  const struct hook_store_ops *o = s->ops;
  assert_int_equal(o->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(o->part_begin(s, HOOK_STORE_ITEMS), HOOK_STORE_OK);
  enum hook_store_err e = o->write_item(s, &it);
  if(e) {
    if(o->turn_open(s))
      assert_int_equal(o->part_end(s, HOOK_STORE_ITEMS, false), HOOK_STORE_OK);
    else
      assert_int_equal(o->turn_begin(s), HOOK_STORE_OK);
  } else
    assert_int_equal(o->part_end(s, HOOK_STORE_ITEMS, true), HOOK_STORE_OK);
  assert_int_equal(o->turn_commit(s), HOOK_STORE_OK);
  for(size_t i = 0; ids && i < neps; i++)
    ids[i] = ds[i].id;
  free(body);
  return e;
}

static enum hook_store_err hold1(struct hook_store *s, int n, const char *ep, int status,
                                 int64_t next_ms, int64_t *id)
{
  const char *eps[] = {ep};
  return hold(s, n, "orders.eu", (uint64_t)n, eps, 1, status, next_ms, NULL, id, 16);
}

struct row {
  int64_t id;
  char event_id[SUB_ID_LEN + 1];
  char topic[64];
  int64_t seq;
  int status;
  int64_t next_ms;
  int attempts;
  int last_http;
  char last_error[64];
  char last_response[64];
};

struct page {
  struct row r[32];
  int n;
  int stop_after; /* 0: never */
};

static int on_row(void *ctx, const struct hook_store_delivery *d)
{
  struct page *p = ctx;
  if(p->stop_after && p->n == p->stop_after)
    return 1;
  assert_true(p->n < 32);
  struct row *r = &p->r[p->n++];
  memset(r, 0, sizeof(*r));
  r->id = d->id;
  snprintf(r->event_id, sizeof(r->event_id), "%s", d->event_id);
  snprintf(r->topic, sizeof(r->topic), "%s", d->topic ? d->topic : "(none)");
  r->seq = d->seq;
  r->status = d->status;
  r->next_ms = d->next_ms;
  return 0;
}

static void on_attempt(void *ctx, const struct hook_store_attempt *a)
{
  struct page *p = ctx;
  struct row *r = &p->r[p->n - 1];
  r->attempts++;
  r->last_http = a->http_status;
  snprintf(r->last_error, sizeof(r->last_error), "%s", a->error ? a->error : "");
  snprintf(r->last_response, sizeof(r->last_response), "%.*s", (int)a->response_len,
           a->response ? (const char *)a->response : "");
}

static struct page page_of(struct hook_store *s, const char *ep, int status, int64_t before,
                           int limit)
{
  struct page p = {.n = 0};
  assert_int_equal(s->ops->deliveries(s, ep, status, before, limit, on_row, on_attempt, &p),
                   HOOK_STORE_OK);
  return p;
}

struct taken {
  int64_t ids[HOOK_STORE_LOAD_MAX];
  char body[64];
  int n;
  int stop_after; /* -1: never */
};

static int take(void *ctx, const struct hook_store_due *d)
{
  struct taken *t = ctx;
  if(t->stop_after >= 0 && t->n == t->stop_after)
    return 1;
  t->ids[t->n++] = d->id;
  snprintf(t->body, sizeof(t->body), "%.*s", (int)d->body_len, (const char *)d->body);
  return 0;
}

/* One turn that only loads due deliveries of ep. */
static struct taken load(struct hook_store *s, const char *ep, bool ordered, int64_t now,
                         size_t want, int stop_after, int64_t *next)
{
  struct taken t = {.n = 0, .stop_after = stop_after};
  const struct hook_store_ops *o = s->ops;
  assert_int_equal(o->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(o->part_begin(s, HOOK_STORE_BOOK), HOOK_STORE_OK);
  assert_int_equal(o->load_due(s, ep, ordered, now, want, take, &t, next), HOOK_STORE_OK);
  assert_int_equal(o->part_end(s, HOOK_STORE_BOOK, true), HOOK_STORE_OK);
  assert_int_equal(o->turn_commit(s), HOOK_STORE_OK);
  return t;
}

static void outcome(struct hook_store *s, int64_t delivery, const char *ep, int status, long http,
                    int64_t ms, int64_t next_ms)
{
  struct hook_store_outcome o = {
      .delivery = delivery,
      .endpoint = ep,
      .status = status,
      .total = 1,
      .attempts = 1,
      .next_ms = next_ms,
      .ms = ms,
      .http_status = http,
      .latency_us = 1500,
      .error = http == 200 ? NULL : "HTTP 500",
      .response = "ok!",
      .response_len = 3,
  };
  const struct hook_store_ops *op = s->ops;
  assert_int_equal(op->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(op->part_begin(s, HOOK_STORE_BOOK), HOOK_STORE_OK);
  assert_int_equal(op->write_outcome(s, &o), HOOK_STORE_OK);
  assert_int_equal(op->part_end(s, HOOK_STORE_BOOK, true), HOOK_STORE_OK);
  assert_int_equal(op->turn_commit(s), HOOK_STORE_OK);
}

struct endpoints {
  int n;
  char id[4][40], url[4][64], topics[4][64], reason[4][32];
  bool enabled[4];
  int64_t failing[4], created[4], updated[4];
};

static int on_endpoint(void *ctx, const struct hook_store_endpoint *e)
{
  struct endpoints *l = ctx;
  assert_true(l->n < 4);
  int i = l->n++;
  snprintf(l->id[i], sizeof(l->id[i]), "%s", e->id);
  snprintf(l->url[i], sizeof(l->url[i]), "%s", e->url);
  snprintf(l->topics[i], sizeof(l->topics[i]), "%s", e->topics);
  snprintf(l->reason[i], sizeof(l->reason[i]), "%s", e->disabled_reason);
  l->enabled[i] = e->enabled;
  l->failing[i] = e->failing_since_ms;
  l->created[i] = e->created_ms;
  l->updated[i] = e->updated_ms;
  return 0;
}

static struct endpoints endpoints_of(struct hook_store *s)
{
  struct endpoints l = {.n = 0};
  assert_int_equal(s->ops->load_endpoints(s, on_endpoint, &l), HOOK_STORE_OK);
  return l;
}

/* ---- tests ---- */

static void test_endpoint_round_trip(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  struct hook_store_endpoint e = endpoint("ep-a");
  e.failing_since_ms = 42;
  assert_int_equal(s->ops->save_endpoint(s, &e, true), HOOK_STORE_OK);
  struct endpoints l = endpoints_of(s);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.id[0], "ep-a");
  assert_string_equal(l.url[0], "https://example.com/hook");
  assert_string_equal(l.topics[0], "[\"orders.>\"]");
  assert_true(l.enabled[0]);
  assert_int_equal(l.failing[0], 42);

  /* Without `state`, the enabled/failing fields stay as stored; the
   * creation time is kept on an update either way. */
  e.url = "https://example.com/other";
  e.enabled = false;
  e.failing_since_ms = 0;
  e.disabled_reason = "by_request";
  e.created_ms = T0 + 999;
  e.updated_ms = T0 + 5;
  assert_int_equal(s->ops->save_endpoint(s, &e, false), HOOK_STORE_OK);
  l = endpoints_of(s);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.url[0], "https://example.com/other");
  assert_true(l.enabled[0]);
  assert_int_equal(l.failing[0], 42);
  assert_string_equal(l.reason[0], "");
  assert_int_equal(l.created[0], T0);
  assert_int_equal(l.updated[0], T0 + 5);
  /* With it, they are written. */
  assert_int_equal(s->ops->save_endpoint(s, &e, true), HOOK_STORE_OK);
  l = endpoints_of(s);
  assert_false(l.enabled[0]);
  assert_string_equal(l.reason[0], "by_request");

  /* The dispatcher's state write. */
  assert_int_equal(s->ops->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(s->ops->write_endpoint_state(s, "ep-a", true, 77, "", T0 + 6), HOOK_STORE_OK);
  assert_int_equal(s->ops->turn_commit(s), HOOK_STORE_OK);
  l = endpoints_of(s);
  assert_true(l.enabled[0]);
  assert_int_equal(l.failing[0], 77);
  assert_int_equal(l.updated[0], T0 + 6);

  /* Deleting takes its deliveries (and attempts) with it. */
  struct hook_store_endpoint b = endpoint("ep-b");
  assert_int_equal(s->ops->save_endpoint(s, &b, true), HOOK_STORE_OK);
  int64_t id;
  assert_int_equal(hold1(s, 1, "ep-a", HOOK_DELIVERY_PENDING, T0, &id), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 2, "ep-b", HOOK_DELIVERY_PENDING, T0, NULL), HOOK_STORE_OK);
  assert_int_equal(page_of(s, "ep-a", -1, INT64_MAX, 10).n, 1);
  assert_int_equal(s->ops->delete_endpoint(s, "ep-a"), HOOK_STORE_OK);
  l = endpoints_of(s);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.id[0], "ep-b");
  assert_int_equal(page_of(s, "ep-a", -1, INT64_MAX, 10).n, 0);
  assert_int_equal(page_of(s, "ep-b", -1, INT64_MAX, 10).n, 1);
  enum hook_store_retry r;
  assert_int_equal(s->ops->retry(s, "ep-a", id, T0, &r), HOOK_STORE_OK);
  assert_int_equal(r, HOOK_RETRY_NOT_FOUND);
}

static void test_turn_and_deliveries_page(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  const char *eps[] = {"ep-a", "ep-b"};
  int64_t ids[2];
  assert_int_equal(hold(s, 1, "orders.eu", 7, eps, 2, HOOK_DELIVERY_PENDING, T0 + 10, NULL, ids, 20),
                   HOOK_STORE_OK);
  assert_true(ids[0] > 0);
  assert_true(ids[1] > ids[0]);
  for(int n = 2; n <= 4; n++)
    assert_int_equal(hold1(s, n, "ep-a", n == 4 ? HOOK_DELIVERY_QUEUED : HOOK_DELIVERY_PENDING,
                           T0 + n, NULL),
                     HOOK_STORE_OK);

  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 4);
  for(int i = 1; i < p.n; i++) /* newest first */
    assert_true(p.r[i - 1].id > p.r[i].id);
  char e1[SUB_ID_LEN + 1];
  event_id(1, e1);
  assert_int_equal(p.r[3].id, ids[0]);
  assert_string_equal(p.r[3].event_id, e1);
  assert_string_equal(p.r[3].topic, "orders.eu");
  assert_int_equal(p.r[3].seq, 7);
  assert_int_equal(p.r[3].status, HOOK_DELIVERY_PENDING);
  assert_int_equal(p.r[3].next_ms, T0 + 10);
  assert_int_equal(p.r[0].status, HOOK_DELIVERY_QUEUED);

  /* the limit, the cursor, the status filter (pending takes queued) */
  p = page_of(s, "ep-a", -1, INT64_MAX, 2);
  assert_int_equal(p.n, 2);
  struct page rest = page_of(s, "ep-a", -1, p.r[1].id, 10);
  assert_int_equal(rest.n, 2);
  assert_true(rest.r[0].id < p.r[1].id);
  assert_int_equal(page_of(s, "ep-a", HOOK_DELIVERY_PENDING, INT64_MAX, 10).n, 4);
  assert_int_equal(page_of(s, "ep-a", HOOK_DELIVERY_DELIVERED, INT64_MAX, 10).n, 0);
  /* a callback that stops */
  struct page stop = {.n = 0, .stop_after = 1};
  assert_int_equal(s->ops->deliveries(s, "ep-a", -1, INT64_MAX, 10, on_row, on_attempt, &stop),
                   HOOK_STORE_OK);
  assert_int_equal(stop.n, 1);

  p = page_of(s, "ep-b", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.r[0].id, ids[1]);

  /* An undone items savepoint leaves nothing; the turn still commits. */
  char id[SUB_ID_LEN + 1];
  event_id(9, id);
  struct hook_store_new_delivery d = {.endpoint = "ep-b", .status = 0, .next_ms = T0};
  struct hook_store_item it = {.event_id = id, .topic = "orders.x", .topic_len = 8, .seq = 1,
                               .ms = T0, .body = "{}", .body_len = 2, .deliveries = &d,
                               .ndeliveries = 1};
  assert_int_equal(s->ops->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(s->ops->part_begin(s, HOOK_STORE_ITEMS), HOOK_STORE_OK);
  assert_int_equal(s->ops->write_item(s, &it), HOOK_STORE_OK);
  assert_int_equal(s->ops->part_end(s, HOOK_STORE_ITEMS, false), HOOK_STORE_OK);
  assert_true(s->ops->turn_open(s));
  assert_int_equal(s->ops->turn_commit(s), HOOK_STORE_OK);
  assert_false(s->ops->turn_open(s));
  assert_int_equal(page_of(s, "ep-b", -1, INT64_MAX, 10).n, 1);
  /* and a rolled back turn leaves nothing either */
  assert_int_equal(s->ops->turn_begin(s), HOOK_STORE_OK);
  assert_int_equal(s->ops->write_item(s, &it), HOOK_STORE_OK);
  s->ops->turn_rollback(s);
  assert_false(s->ops->turn_open(s));
  assert_int_equal(page_of(s, "ep-b", -1, INT64_MAX, 10).n, 1);
}

static void test_refill(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  int64_t a, b, c, later;
  /* due at T0+3, T0+1, T0+2 (in that id order), and one not due yet */
  assert_int_equal(hold1(s, 1, "ep-a", HOOK_DELIVERY_PENDING, T0 + 3, &a), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 2, "ep-a", HOOK_DELIVERY_PENDING, T0 + 1, &b), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 3, "ep-a", HOOK_DELIVERY_PENDING, T0 + 2, &c), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 4, "ep-a", HOOK_DELIVERY_PENDING, T0 + 5000, &later), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 5, "ep-b", HOOK_DELIVERY_PENDING, T0, NULL), HOOK_STORE_OK);

  /* a page that comes full: look again now */
  int64_t next = 0;
  struct taken t = load(s, "ep-a", false, T0 + 100, 2, -1, &next);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.ids[0], b); /* oldest due first */
  assert_int_equal(t.ids[1], c);
  assert_string_equal(t.body, "xxxxxxxxxxxxxxxx");
  assert_int_equal(next, T0 + 100);
  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  for(int i = 0; i < p.n; i++)
    assert_int_equal(p.r[i].status,
                     p.r[i].id == b || p.r[i].id == c ? HOOK_DELIVERY_QUEUED : HOOK_DELIVERY_PENDING);

  /* fewer than asked: the next due time of what is left */
  t = load(s, "ep-a", false, T0 + 100, 10, -1, &next);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.ids[0], a);
  assert_int_equal(next, T0 + 5000);

  /* a callback that refuses a row leaves it pending */
  t = load(s, "ep-a", false, T0 + 6000, 10, 0, &next);
  assert_int_equal(t.n, 0);
  assert_int_equal(next, T0 + 5000);
  t = load(s, "ep-a", false, T0 + 6000, 10, -1, &next);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.ids[0], later);
  /* nothing pending any more */
  t = load(s, "ep-a", false, T0 + 6000, 10, -1, &next);
  assert_int_equal(t.n, 0);
  assert_int_equal(next, -1);

  /* ordered: by id, and a head not due yet holds back what follows */
  int64_t o1, o2;
  assert_int_equal(hold1(s, 6, "ep-o", HOOK_DELIVERY_PENDING, T0 + 50, &o1), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 7, "ep-o", HOOK_DELIVERY_PENDING, T0, &o2), HOOK_STORE_OK);
  t = load(s, "ep-o", true, T0 + 10, 1, -1, &next);
  assert_int_equal(t.n, 0);
  assert_int_equal(next, T0 + 50);
  t = load(s, "ep-o", true, T0 + 50, 1, -1, &next);
  assert_int_equal(t.n, 1);
  assert_int_equal(t.ids[0], o1);
  assert_int_equal(next, T0 + 50);
}

static void test_outcome(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  int64_t loaded, pending;
  assert_int_equal(hold1(s, 1, "ep-a", HOOK_DELIVERY_QUEUED, T0, &loaded), HOOK_STORE_OK);
  assert_int_equal(hold1(s, 2, "ep-a", HOOK_DELIVERY_PENDING, T0, &pending), HOOK_STORE_OK);
  outcome(s, loaded, "ep-a", HOOK_DELIVERY_DELIVERED, 200, T0 + 7, T0 + 7);
  /* not loaded: the delivery's state stays, the attempt is recorded */
  outcome(s, pending, "ep-a", HOOK_DELIVERY_FAILED, 500, T0 + 8, T0 + 8);
  /* the wrong endpoint: neither (a reused id of a deleted delivery) */
  outcome(s, loaded, "ep-z", HOOK_DELIVERY_FAILED, 500, T0 + 9, T0 + 9);

  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 2);
  struct row *l = p.r[0].id == loaded ? &p.r[0] : &p.r[1];
  struct row *q = p.r[0].id == loaded ? &p.r[1] : &p.r[0];
  assert_int_equal(l->status, HOOK_DELIVERY_DELIVERED);
  assert_int_equal(l->attempts, 1);
  assert_int_equal(l->last_http, 200);
  assert_string_equal(l->last_error, "");
  assert_string_equal(l->last_response, "ok!");
  assert_int_equal(q->status, HOOK_DELIVERY_PENDING);
  assert_int_equal(q->attempts, 1);
  assert_string_equal(q->last_error, "HTTP 500");
}

static void test_retry_and_replay(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  int64_t ids[4];
  for(int n = 0; n < 4; n++) {
    assert_int_equal(hold1(s, n + 1, "ep-a", HOOK_DELIVERY_QUEUED, T0, &ids[n]), HOOK_STORE_OK);
    outcome(s, ids[n], "ep-a", n == 3 ? HOOK_DELIVERY_FAILED : HOOK_DELIVERY_DELIVERED, 200, T0,
            T0);
  }
  enum hook_store_retry r;
  assert_int_equal(s->ops->retry(s, "ep-a", ids[0], T0 + 50, &r), HOOK_STORE_OK);
  assert_int_equal(r, HOOK_RETRY_REQUEUED);
  struct page p = page_of(s, "ep-a", HOOK_DELIVERY_PENDING, INT64_MAX, 10);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.r[0].id, ids[0]);
  assert_int_equal(p.r[0].next_ms, T0 + 50);
  /* pending already, and none */
  assert_int_equal(s->ops->retry(s, "ep-a", ids[0], T0 + 60, &r), HOOK_STORE_OK);
  assert_int_equal(r, HOOK_RETRY_PENDING);
  assert_int_equal(s->ops->retry(s, "ep-a", ids[3] + 100, T0, &r), HOOK_STORE_OK);
  assert_int_equal(r, HOOK_RETRY_NOT_FOUND);
  assert_int_equal(s->ops->retry(s, "ep-b", ids[1], T0, &r), HOOK_STORE_OK);
  assert_int_equal(r, HOOK_RETRY_NOT_FOUND);

  /* replay since event 3's time: events 3 (delivered) and 4 (failed) */
  int64_t requeued = -1;
  assert_int_equal(s->ops->replay(s, "ep-a", T0 + 3, T0 + 70, &requeued), HOOK_STORE_OK);
  assert_int_equal(requeued, 2);
  p = page_of(s, "ep-a", HOOK_DELIVERY_PENDING, INT64_MAX, 10);
  assert_int_equal(p.n, 3);
  p = page_of(s, "ep-a", HOOK_DELIVERY_DELIVERED, INT64_MAX, 10);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.r[0].id, ids[1]);
  assert_int_equal(s->ops->replay(s, "ep-b", 0, T0, &requeued), HOOK_STORE_OK);
  assert_int_equal(requeued, 0);
}

struct seqs {
  int n;
  char topic[4][32];
  uint64_t seq[4];
};

static void on_seq(void *ctx, const char *topic, uint64_t seq)
{
  struct seqs *q = ctx;
  assert_true(q->n < 4);
  snprintf(q->topic[q->n], sizeof(q->topic[0]), "%s", topic);
  q->seq[q->n++] = seq;
}

static void test_recover(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  const char *eps[] = {"ep-a"};
  assert_int_equal(hold(s, 1, "a.one", 5, eps, 1, HOOK_DELIVERY_QUEUED, T0, NULL, NULL, 4),
                   HOOK_STORE_OK);
  assert_int_equal(hold(s, 2, "a.one", 3, eps, 1, HOOK_DELIVERY_QUEUED, T0, NULL, NULL, 4),
                   HOOK_STORE_OK); /* a lower seq never lowers the topic's */
  assert_int_equal(hold(s, 3, "b.two", 9, eps, 1, HOOK_DELIVERY_PENDING, T0, NULL, NULL, 4),
                   HOOK_STORE_OK);
  /* a publish with no endpoint (held for its idempotency key) keeps its seq too */
  assert_int_equal(hold(s, 4, "c.three", 2, NULL, 0, 0, 0, "key-c", NULL, 4), HOOK_STORE_OK);

  struct seqs q = {.n = 0};
  int64_t requeued = -1;
  assert_int_equal(s->ops->recover(s, on_seq, &q, &requeued), HOOK_STORE_OK);
  assert_int_equal(requeued, 2);
  assert_int_equal(q.n, 3);
  for(int i = 0; i < q.n; i++) {
    if(strcmp(q.topic[i], "a.one") == 0)
      assert_int_equal(q.seq[i], 5);
    else if(strcmp(q.topic[i], "b.two") == 0)
      assert_int_equal(q.seq[i], 9);
    else {
      assert_string_equal(q.topic[i], "c.three");
      assert_int_equal(q.seq[i], 2);
    }
  }
  assert_int_equal(page_of(s, "ep-a", HOOK_DELIVERY_PENDING, INT64_MAX, 10).n, 3);
  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  for(int i = 0; i < p.n; i++)
    assert_int_equal(p.r[i].status, HOOK_DELIVERY_PENDING);

  /* reset_loaded (at stop) does the same for what the dispatcher loaded */
  int64_t next;
  assert_int_equal(load(s, "ep-a", false, T0, 10, -1, &next).n, 3);
  s->ops->reset_loaded(s);
  p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  for(int i = 0; i < p.n; i++)
    assert_int_equal(p.r[i].status, HOOK_DELIVERY_PENDING);
}

static void test_idempotency(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  const char *eps[] = {"ep-a"};
  assert_int_equal(hold(s, 3, "orders.eu", 11, eps, 1, HOOK_DELIVERY_PENDING, T0, "key-1", NULL, 4),
                   HOOK_STORE_OK);
  struct hook_store_idem r;
  bool found = false;
  assert_int_equal(s->ops->idem_lookup(s, "key-1", T0, &r, &found), HOOK_STORE_OK);
  assert_true(found);
  assert_int_equal(r.hash_len, HOOK_STORE_HASH_LEN);
  static const unsigned char hash[HOOK_STORE_HASH_LEN] = {1, 2, 3, 4};
  assert_memory_equal(r.hash, hash, HOOK_STORE_HASH_LEN);
  char id[SUB_ID_LEN + 1];
  event_id(3, id);
  assert_string_equal(r.id, id);
  assert_int_equal(r.seq, 11);
  assert_int_equal(r.ms, T0 + 3);
  /* used before the oldest time asked for: expired */
  assert_int_equal(s->ops->idem_lookup(s, "key-1", T0 + 4, &r, &found), HOOK_STORE_OK);
  assert_false(found);
  assert_int_equal(s->ops->idem_lookup(s, "key-2", 0, &r, &found), HOOK_STORE_OK);
  assert_false(found);
}

static void test_prune(void **state)
{
  struct fixture *f = *state;
  struct hook_store *s = f->s;
  int64_t old_done, new_done, old_pending;
  assert_int_equal(hold1(s, 1, "ep-a", HOOK_DELIVERY_QUEUED, T0, &old_done), HOOK_STORE_OK);
  outcome(s, old_done, "ep-a", HOOK_DELIVERY_DELIVERED, 200, T0 + 10, T0 + 10);
  assert_int_equal(hold1(s, 2, "ep-a", HOOK_DELIVERY_QUEUED, T0, &new_done), HOOK_STORE_OK);
  outcome(s, new_done, "ep-a", HOOK_DELIVERY_DELIVERED, 200, T0 + 500, T0 + 500);
  assert_int_equal(hold1(s, 3, "ep-a", HOOK_DELIVERY_PENDING, T0, &old_pending), HOOK_STORE_OK);
  const char *eps[] = {"ep-a"};
  assert_int_equal(hold(s, 4, "orders.eu", 4, eps, 1, 0, T0, "key-old", NULL, 4), HOOK_STORE_OK);

  assert_int_equal(s->ops->prune(s, T0 + 100, T0 + 100, 1000), HOOK_STORE_OK);
  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 3);
  for(int i = 0; i < p.n; i++)
    assert_true(p.r[i].id != old_done);
  struct hook_store_idem r;
  bool found = true;
  assert_int_equal(s->ops->idem_lookup(s, "key-old", 0, &r, &found), HOOK_STORE_OK);
  assert_false(found);
  /* a retry of the pruned delivery finds nothing */
  enum hook_store_retry rr;
  assert_int_equal(s->ops->retry(s, "ep-a", old_done, T0, &rr), HOOK_STORE_OK);
  assert_int_equal(rr, HOOK_RETRY_NOT_FOUND);
  /* a batch of 0 deletes no delivery */
  assert_int_equal(s->ops->prune(s, T0 + 1000, 0, 0), HOOK_STORE_OK);
  assert_int_equal(page_of(s, "ep-a", -1, INT64_MAX, 10).n, 3);
}

static void test_full(void **state)
{
  struct fixture *f = *state;
  /* A store of its own, capped at 40 pages (the schema takes about 12). */
  hook_store_close(f->s);
  unlink(f->path);
  f->s = open_at(f, 40 * 4096);
  struct hook_store *s = f->s;
  assert_int_equal(s->ops->turn_prepare(s), HOOK_STORE_OK);
  struct hook_store_endpoint e = endpoint("ep-a");
  assert_int_equal(s->ops->save_endpoint(s, &e, true), HOOK_STORE_OK);
  int64_t first;
  assert_int_equal(hold1(s, 1, "ep-a", HOOK_DELIVERY_PENDING, T0, &first), HOOK_STORE_OK);

  /* a 1 MB event does not fit: full, and the turn can still commit */
  const char *eps[] = {"ep-a"};
  assert_int_equal(hold(s, 2, "orders.eu", 2, eps, 1, 0, T0, NULL, NULL, 1 << 20), HOOK_STORE_FULL);
  assert_string_equal(s->ops->errstr(s), "database or disk is full");
  assert_true(strlen(s->ops->errmsg(s)) > 0);
  /* nor does a big endpoint row through the API's path */
  char *big = malloc(1 << 20);
  assert_non_null(big);
  memset(big, 'd', (1 << 20) - 1);
  big[(1 << 20) - 1] = '\0';
  struct hook_store_endpoint b = endpoint("ep-big");
  b.description = big;
  assert_int_equal(s->ops->save_endpoint(s, &b, true), HOOK_STORE_FULL);
  free(big);

  /* what was there before is intact, and small writes still go in */
  struct endpoints l = endpoints_of(s);
  assert_int_equal(l.n, 1);
  assert_string_equal(l.id[0], "ep-a");
  struct page p = page_of(s, "ep-a", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.r[0].id, first);
  assert_int_equal(hold1(s, 3, "ep-a", HOOK_DELIVERY_PENDING, T0, NULL), HOOK_STORE_OK);
  assert_int_equal(page_of(s, "ep-a", -1, INT64_MAX, 10).n, 2);
}

/* A second handle on the same file (the API's next to the dispatcher's)
 * sees what a turn committed. */
static void test_two_handles(void **state)
{
  struct fixture *f = *state;
  struct hook_store *api = open_at(f, 0);
  assert_int_equal(hold1(f->s, 1, "ep-a", HOOK_DELIVERY_PENDING, T0, NULL), HOOK_STORE_OK);
  struct page p = page_of(api, "ep-a", -1, INT64_MAX, 10);
  assert_int_equal(p.n, 1);
  hook_store_close(api);
  hook_store_close(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_endpoint_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_turn_and_deliveries_page, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refill, setup, teardown),
      cmocka_unit_test_setup_teardown(test_outcome, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retry_and_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
