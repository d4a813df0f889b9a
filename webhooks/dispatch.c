/* The dispatcher thread: it owns the store's writing connection and the
 * libcurl multi handle. Each turn of its loop
 *   1. commits, in one transaction, the publishes held since the last turn
 *      (their events and deliveries), the outcomes of finished attempts, and
 *      the deliveries it loads from the store;
 *   2. releases the committed events to the broker and answers the
 *      publishers (a failed commit answers 503 and delivers nothing);
 *   3. starts due deliveries, round-robin over endpoints, within the
 *      per-endpoint and global caps;
 *   4. waits in curl_multi_poll (woken by publishers and the API) and
 *      collects finished transfers.
 * One transaction per turn is the group commit: its fsync is shared by
 * every publish and outcome of the turn. */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hooks_internal.h"
#include "id.h"
#include "retry.h"

#define POLL_MAX_MS 1000
#define PRUNE_BATCH 20000
/* Outcomes of attempts wait for the next commit a publish or a load makes
 * anyway, but no longer than this many or this long: an outcome lost in a
 * crash only means the delivery is sent again (at least once). */
#define OUTCOME_BATCH 512
#define OUTCOME_DELAY_MS 20
#define EASY_POOL_MAX 512 /* idle libcurl handles kept for reuse */

struct xfer {
  struct xfer *prev, *next; /* the loop's transfers in flight */
  CURL *easy;
  struct hook_service *h;
  struct endpoint *ep;
  struct ready r;
  struct curl_slist *headers;
  char response[HOOK_RESPONSE_KEEP];
  size_t response_len;
  char retry_after[64];
  char refused[200];
  char errbuf[CURL_ERROR_SIZE];
  int64_t ms;
};

/* A delivery loaded in this turn, handed to its endpoint after the commit. */
struct staged {
  struct endpoint *ep;
  struct ready r;
};

struct disabled {
  char id[HOOK_ID_LEN + 1];
  char *url;
  char reason[64];
};

struct loop {
  struct hook_service *h;
  sqlite3 *db;
  sqlite3_stmt *ins_event, *ins_delivery, *ins_seq, *ins_idem, *upd_delivery, *ins_attempt,
      *sel_ready, *sel_ordered, *sel_next, *mark_queued, *upd_endpoint;
  sqlite3_stmt *tx_begin, *tx_commit, *tx_rollback, *sp_items, *sp_release, *sp_rollback, *sp_book,
      *sp_book_release, *sp_book_rollback;
  int64_t backoff_ms, backoff_until_ms; /* after a failed write of outcomes or loads */
  struct outcome *outcomes, *outcomes_tail;
  size_t noutcomes;
  int64_t first_outcome_ms; /* when the oldest unwritten outcome came */
  bool endpoints_dirty;     /* some endpoint's failing/disabled state is unwritten */
  CURL *pool[EASY_POOL_MAX];
  size_t npool;
  struct staged *staged;
  size_t nstaged, staged_cap;
  struct disabled *disabled;
  size_t ndisabled;
  int inflight;
  struct xfer *xfers;
  size_t rr; /* round-robin start */
  int64_t next_prune_ms;
};

static int64_t now_ms(void)
{
  return (int64_t)sub_now_ms();
}

static uint64_t next_rand(struct hook_service *h)
{
  /* xorshift64*: jitter only, needs no secrecy */
  uint64_t x = h->rng ? h->rng : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  h->rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

static int prepare_all(struct loop *l)
{
  struct {
    sqlite3_stmt **st;
    const char *sql;
  } s[] = {
      {&l->ins_event, "INSERT OR IGNORE INTO events(id,topic,seq,ms,body) VALUES(?1,?2,?3,?4,?5)"},
      {&l->ins_delivery,
       "INSERT INTO deliveries(endpoint,event_id,event_ms,status,next_ms,created_ms,updated_ms)"
       " VALUES(?1,?2,?3,?4,?5,?5,?5)"},
      {&l->ins_seq, "INSERT INTO topic_seq(topic,seq) VALUES(?1,?2) ON CONFLICT(topic)"
                    " DO UPDATE SET seq=max(seq,excluded.seq)"},
      {&l->ins_idem,
       "INSERT OR REPLACE INTO idempotency(key,hash,response,ms) VALUES(?1,?2,?3,?4)"},
      /* Only the row this attempt was for: ids of deleted rows can be reused. */
      {&l->upd_delivery, "UPDATE deliveries SET status=?2, attempts=?3, total=?4, next_ms=?5,"
                         " updated_ms=?6 WHERE id=?1 AND endpoint=?7 AND status=3"},
      /* not for a delivery deleted (with its endpoint) while in flight */
      {&l->ins_attempt, "INSERT OR REPLACE INTO attempts(delivery,n,ms,http_status,latency_us,"
                        "error,response) SELECT ?1,?2,?3,?4,?5,?6,?7"
                        " WHERE EXISTS (SELECT 1 FROM deliveries WHERE id=?1 AND endpoint=?8)"},
      {&l->sel_ready, "SELECT d.id, d.attempts, d.total, d.event_id, e.body, d.next_ms"
                      " FROM deliveries d JOIN events e ON e.id = d.event_id"
                      " WHERE d.endpoint=?1 AND d.status=0 AND d.next_ms<=?2"
                      " ORDER BY d.next_ms, d.id LIMIT ?3"},
      {&l->sel_ordered, "SELECT d.id, d.attempts, d.total, d.event_id, e.body, d.next_ms"
                        " FROM deliveries d JOIN events e ON e.id = d.event_id"
                        " WHERE d.endpoint=?1 AND d.status=0 ORDER BY d.id LIMIT ?3"},
      {&l->sel_next, "SELECT min(next_ms) FROM deliveries WHERE endpoint=?1 AND status=0"},
      {&l->mark_queued, "UPDATE deliveries SET status=3 WHERE id=?1"},
      {&l->upd_endpoint, "UPDATE endpoints SET enabled=?2, failing_since_ms=?3,"
                         " disabled_reason=?4, updated_ms=?5 WHERE id=?1"},
      {&l->tx_begin, "BEGIN IMMEDIATE"},
      {&l->tx_commit, "COMMIT"},
      {&l->tx_rollback, "ROLLBACK"},
      {&l->sp_items, "SAVEPOINT items"},
      {&l->sp_release, "RELEASE items"},
      {&l->sp_rollback, "ROLLBACK TO items"},
      {&l->sp_book, "SAVEPOINT book"},
      {&l->sp_book_release, "RELEASE book"},
      {&l->sp_book_rollback, "ROLLBACK TO book"},
  };
  for(size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
    if(sqlite3_prepare_v3(l->db, s[i].sql, -1, SQLITE_PREPARE_PERSISTENT, s[i].st, NULL) !=
       SQLITE_OK) {
      hook_log(l->h, HLOG_ERROR, "store_prepare_failed", "error=\"%s\"", sqlite3_errmsg(l->db));
      return -1;
    }
  return 0;
}

static void finalize_all(struct loop *l)
{
  sqlite3_stmt *all[] = {l->ins_event,    l->ins_delivery, l->ins_seq,         l->ins_idem,
                         l->upd_delivery, l->ins_attempt,  l->sel_ready,       l->sel_ordered,
                         l->sel_next,     l->mark_queued,  l->upd_endpoint,    l->tx_begin,
                         l->tx_commit,    l->tx_rollback,  l->sp_items,        l->sp_release,
                         l->sp_rollback,  l->sp_book,      l->sp_book_release, l->sp_book_rollback};
  for(size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    sqlite3_finalize(all[i]);
}

/* Steps a write statement once and resets it. Returns 0 or SQLite's
 * (extended) error code. */
static int step_done(sqlite3_stmt *st)
{
  int rc = sqlite3_step(st);
  if(rc != SQLITE_DONE)
    rc = sqlite3_extended_errcode(sqlite3_db_handle(st));
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? 0 : rc;
}

static int stage(struct loop *l, struct endpoint *ep, const struct ready *r)
{
  if(l->nstaged == l->staged_cap) {
    size_t cap = l->staged_cap ? l->staged_cap * 2 : 256;
    struct staged *n = realloc(l->staged, cap * sizeof(*n));
    if(!n)
      return -1;
    l->staged = n;
    l->staged_cap = cap;
  }
  l->staged[l->nstaged].ep = ep;
  l->staged[l->nstaged++].r = *r;
  ep->staged++;
  return 0;
}

/* How many more deliveries ep's memory queue can take this turn. */
static size_t room(const struct endpoint *ep)
{
  size_t used = ep->qlen + ep->staged;
  return used < HOOK_READY_MAX ? HOOK_READY_MAX - used : 0;
}

/* ---- 1. the turn's transaction ---- */

/* Writes one held publish: its event, a delivery per endpoint, the topic's
 * seq and the idempotency key. Returns 0 or an SQLite error code (the
 * caller rolls back). */
static int write_item(struct loop *l, struct item *it, struct blob **body)
{
  struct hook_service *h = l->h;
  struct sub_event *ev = it->ev;
  bool idem = it->p && it->p->idem_key;
  *body = NULL;
  if(!it->neps && !idem)
    return 0;
  size_t dlen;
  const char *data = sub_event_data(ev, &dlen);
  char time[SUB_TIME_LEN + 1];
  sub_time_format(ev->ms, time);
  /* The Standard Webhooks envelope, built once: its bytes are what every
   * attempt to every endpoint sends and signs. */
  size_t cap = dlen + ev->topic_len + 160;
  char *text = malloc(cap);
  if(!text)
    return SQLITE_NOMEM;
  int n = snprintf(text, cap,
                   "{\"type\":\"%s\",\"timestamp\":\"%s\",\"id\":\"%s\",\"seq\":%llu,\"data\":",
                   ev->topic, time, ev->id, (unsigned long long)ev->seq);
  memcpy(text + n, data, dlen);
  text[n + dlen] = '}';
  *body = blob_new(text, (size_t)n + dlen + 1);
  free(text);
  if(!*body)
    return SQLITE_NOMEM;
  int64_t now = now_ms();
  int64_t first = (int64_t)h->cfg.schedule_s[0] * 1000; /* the first attempt's delay */
  int rc;
  if(it->neps) {
    sqlite3_bind_text(l->ins_event, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(l->ins_event, 2, ev->topic, (int)ev->topic_len, SQLITE_STATIC);
    sqlite3_bind_int64(l->ins_event, 3, (sqlite3_int64)ev->seq);
    sqlite3_bind_int64(l->ins_event, 4, (sqlite3_int64)ev->ms);
    sqlite3_bind_blob(l->ins_event, 5, (*body)->data, (int)(*body)->len, SQLITE_STATIC);
    if((rc = step_done(l->ins_event)))
      return rc;
  }
  for(size_t i = 0; i < it->neps; i++) {
    pthread_mutex_lock(&h->lock);
    struct endpoint *ep = endpoint_find_locked(h, it->eps[i]);
    bool gone = !ep || ep->deleting; /* deleted since the publish matched it */
    bool direct = !gone && !ep->ordered && first == 0 && room(ep) > 0;
    pthread_mutex_unlock(&h->lock);
    if(gone)
      continue;
    sqlite3_bind_text(l->ins_delivery, 1, it->eps[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(l->ins_delivery, 2, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(l->ins_delivery, 3, (sqlite3_int64)ev->ms);
    sqlite3_bind_int(l->ins_delivery, 4, direct ? D_QUEUED : D_PENDING);
    sqlite3_bind_int64(l->ins_delivery, 5, now + first);
    if((rc = step_done(l->ins_delivery)))
      return rc;
    if(direct) {
      struct ready r = {.id = sqlite3_last_insert_rowid(l->db), .body = blob_ref(*body)};
      memcpy(r.event_id, ev->id, sizeof(r.event_id));
      if(stage(l, ep, &r)) {
        blob_unref(r.body);
        return -1;
      }
    } else { /* dispatcher-only fields */
      if(!ep->more || ep->next_check_ms > now + first)
        ep->next_check_ms = now + first;
      ep->more = true;
    }
  }
  sqlite3_bind_text(l->ins_seq, 1, ev->topic, (int)ev->topic_len, SQLITE_STATIC);
  sqlite3_bind_int64(l->ins_seq, 2, (sqlite3_int64)ev->seq);
  if((rc = step_done(l->ins_seq)))
    return rc;
  if(idem) {
    char resp[SUB_TOPIC_MAX + 160];
    snprintf(resp, sizeof(resp), "{\"id\":\"%s\",\"topic\":\"%s\",\"seq\":%llu,\"ms\":%llu}",
             ev->id, ev->topic, (unsigned long long)ev->seq, (unsigned long long)ev->ms);
    sqlite3_bind_text(l->ins_idem, 1, it->p->idem_key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(l->ins_idem, 2, it->p->idem_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(l->ins_idem, 3, resp, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(l->ins_idem, 4, now);
    if((rc = step_done(l->ins_idem)))
      return rc;
  }
  return 0;
}

static void drop_staged(struct loop *l, size_t from)
{
  for(size_t i = from; i < l->nstaged; i++) {
    blob_unref(l->staged[i].r.body);
    l->staged[i].ep->staged--;
  }
  l->nstaged = from;
}

/* Writes the items; on failure undoes them and marks every item failed.
 * Returns 0, the SQLite error code when the items failed (the turn's
 * transaction goes on), or -1 when the transaction itself is gone. */
static int write_items(struct loop *l, struct item *items, int *items_rc)
{
  size_t staged0 = l->nstaged;
  *items_rc = 0;
  if((*items_rc = step_done(l->sp_items)))
    return -1;
  int rc = 0;
  for(struct item *it = items; it && !rc; it = it->next) {
    struct blob *body;
    rc = write_item(l, it, &body);
    blob_unref(body);
  }
  int ret = 0;
  if(rc) {
    *items_rc = rc;
    drop_staged(l, staged0);
    /* After SQLITE_FULL or an I/O error SQLite may have rolled back the
     * whole transaction already: then begin a new one for the rest. */
    if(sqlite3_get_autocommit(l->db))
      ret = step_done(l->tx_begin) ? -1 : 0;
    else if(step_done(l->sp_rollback) || step_done(l->sp_release))
      ret = -1;
  } else if((*items_rc = step_done(l->sp_release)))
    ret = -1;
  for(struct item *it = items; it; it = it->next)
    it->ok = *items_rc == 0;
  return ret;
}

static void outcome_free(struct outcome *o)
{
  free(o->error);
  free(o->response);
  free(o);
}

/* Writes the outcomes of finished attempts. Returns 0 or -1. */
static int write_outcomes(struct loop *l)
{
  for(struct outcome *o = l->outcomes; o; o = o->next) {
    sqlite3_bind_int64(l->upd_delivery, 1, o->delivery);
    sqlite3_bind_int(l->upd_delivery, 2, o->status);
    sqlite3_bind_int(l->upd_delivery, 3, o->attempts);
    sqlite3_bind_int(l->upd_delivery, 4, o->total);
    sqlite3_bind_int64(l->upd_delivery, 5, o->next_ms);
    sqlite3_bind_int64(l->upd_delivery, 6, o->ms);
    sqlite3_bind_text(l->upd_delivery, 7, o->endpoint, -1, SQLITE_STATIC);
    if(step_done(l->upd_delivery))
      return -1;
    sqlite3_stmt *a = l->ins_attempt;
    sqlite3_bind_int64(a, 1, o->delivery);
    sqlite3_bind_int(a, 2, o->total);
    sqlite3_bind_int64(a, 3, o->ms);
    sqlite3_bind_int64(a, 4, o->http_status);
    sqlite3_bind_int64(a, 5, o->latency_us);
    if(o->error)
      sqlite3_bind_text(a, 6, o->error, -1, SQLITE_STATIC);
    if(o->response)
      sqlite3_bind_blob(a, 7, o->response, (int)o->response_len, SQLITE_STATIC);
    sqlite3_bind_text(a, 8, o->endpoint, -1, SQLITE_STATIC);
    if(step_done(a))
      return -1;
  }
  return 0;
}

/* Loads due deliveries of ep from the store (marking them loaded). */
static int refill(struct loop *l, struct endpoint *ep, int64_t now)
{
  size_t want = room(ep);
  sqlite3_stmt *st = ep->ordered ? l->sel_ordered : l->sel_ready;
  if(ep->ordered)
    want = ep->qlen == 0 && ep->inflight == 0 ? 1 : 0;
  if(!want)
    return 0;
  sqlite3_bind_text(st, 1, ep->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)want);
  size_t got = 0;
  int rc;
  int64_t ordered_next = -1;
  int64_t ids[HOOK_READY_MAX];
  while((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t next = sqlite3_column_int64(st, 5);
    if(ep->ordered && next > now) { /* the head waits for its retry time */
      ordered_next = next;
      break;
    }
    struct ready r = {.id = sqlite3_column_int64(st, 0),
                      .attempts = sqlite3_column_int(st, 1),
                      .total = sqlite3_column_int(st, 2)};
    snprintf(r.event_id, sizeof(r.event_id), "%s", (const char *)sqlite3_column_text(st, 3));
    r.body = blob_new(sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4));
    if(!r.body || stage(l, ep, &r)) {
      blob_unref(r.body);
      break;
    }
    ids[got++] = r.id;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for(size_t i = 0; i < got; i++) {
    sqlite3_bind_int64(l->mark_queued, 1, ids[i]);
    if(step_done(l->mark_queued))
      return -1;
  }
  if(ordered_next >= 0) {
    ep->next_check_ms = ordered_next;
    return 0;
  }
  if(got == want) {
    ep->next_check_ms = now; /* maybe more: look again next turn */
    return 0;
  }
  /* Fewer than asked: the next due time of what is left, if anything. */
  sqlite3_bind_text(l->sel_next, 1, ep->id, -1, SQLITE_STATIC);
  if(sqlite3_step(l->sel_next) == SQLITE_ROW && sqlite3_column_type(l->sel_next, 0) != SQLITE_NULL)
    ep->next_check_ms = sqlite3_column_int64(l->sel_next, 0);
  else
    ep->more = false;
  sqlite3_reset(l->sel_next);
  sqlite3_clear_bindings(l->sel_next);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* ---- 2. after the commit ---- */

static void finish_items(struct loop *l, struct item *items, int rc)
{
  struct hook_service *h = l->h;
  const char *code = (rc & 0xff) == SQLITE_FULL ? "store_full" : "store_failed";
  while(items) {
    struct item *it = items;
    items = it->next;
    bool durable = it->neps || (it->p && it->p->idem_key);
    bool ok = it->ok || !durable;
    if(!ok)
      hook_log(h, HLOG_ERROR, "publish_not_stored", "topic=%s id=%s error=%s", it->ev->topic,
               it->ev->id, sqlite3_errstr(rc));
    struct sub_event *ev = it->ev;
    struct hook_publish *p = it->p;
    if(p) {
      if(ok)
        p->status = 202;
      else {
        p->status = 503;
        p->error_code = code;
        snprintf(p->error_message, sizeof(p->error_message), "%s",
                 (rc & 0xff) == SQLITE_FULL
                     ? "the webhook store is full (webhooks.store_max_bytes or the disk)"
                     : "the webhook store could not write the event; retry later");
      }
      if(p->idem_claimed) {
        claims_release(h, p->idem_key);
        p->idem_claimed = false;
      }
      p->done(p); /* p may be gone now */
    }
    /* After the answer: a publisher subscribed to the topic gets its ack
     * before the event, as without webhooks. */
    sub_broker_release(h->broker, ev, ok);
    free(it->eps);
    free(it);
  }
}

static void apply_staged(struct loop *l)
{
  for(size_t i = 0; i < l->nstaged; i++) {
    struct endpoint *ep = l->staged[i].ep;
    ep->q[(ep->qhead + ep->qlen) % HOOK_READY_MAX] = l->staged[i].r;
    ep->qlen++;
    ep->staged--;
  }
  l->nstaged = 0;
}

static void apply_outcomes(struct loop *l)
{
  while(l->outcomes) {
    struct outcome *o = l->outcomes;
    l->outcomes = o->next;
    outcome_free(o);
  }
  l->outcomes_tail = NULL;
  l->noutcomes = 0;
}

/* Writes the failing/disabled state of the endpoints whose state changed.
 * Returns 0 or -1. */
static int write_endpoints(struct loop *l)
{
  struct hook_service *h = l->h;
  if(!l->endpoints_dirty)
    return 0;
  int rc = 0;
  pthread_mutex_lock(&h->lock);
  for(size_t i = 0; i < h->neps && !rc; i++) {
    struct endpoint *ep = h->eps[i];
    if(!ep->dirty)
      continue;
    sqlite3_bind_text(l->upd_endpoint, 1, ep->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(l->upd_endpoint, 2, ep->enabled);
    sqlite3_bind_int64(l->upd_endpoint, 3, ep->failing_since_ms);
    sqlite3_bind_text(l->upd_endpoint, 4, ep->disabled_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(l->upd_endpoint, 5, ep->updated_ms);
    rc = step_done(l->upd_endpoint);
  }
  pthread_mutex_unlock(&h->lock);
  return rc ? -1 : 0;
}

/* After a commit: the endpoint rows are up to date. */
static void endpoints_written(struct loop *l)
{
  struct hook_service *h = l->h;
  if(!l->endpoints_dirty)
    return;
  pthread_mutex_lock(&h->lock);
  for(size_t i = 0; i < h->neps; i++)
    h->eps[i]->dirty = false;
  pthread_mutex_unlock(&h->lock);
  l->endpoints_dirty = false;
}

/* True when ep should load deliveries from the store now: it may have
 * due ones there, and room (an ordered endpoint: nothing loaded at all). */
static bool wants_load(const struct endpoint *ep, int64_t now)
{
  if(ep->deleted || !ep->enabled || !ep->more || ep->next_check_ms > now)
    return false;
  return ep->ordered ? ep->qlen == 0 && ep->inflight == 0 : ep->qlen <= HOOK_READY_MAX / 2;
}

static bool refill_due(struct hook_service *h, int64_t now)
{
  bool due = false;
  pthread_mutex_lock(&h->lock);
  for(size_t i = 0; i < h->neps && !due; i++)
    due = wants_load(h->eps[i], now);
  pthread_mutex_unlock(&h->lock);
  return due;
}

/* One turn's transaction: the held publishes (always at once: they wait
 * for it), the outcomes and endpoint states (when due), and the loads. */
static void commit_turn(struct loop *l, struct item *items, bool want_refill, bool force)
{
  struct hook_service *h = l->h;
  int64_t now = now_ms();
  /* After a failed write the bookkeeping waits (backing off); publishes
   * never do: they are answered, 503 if the store still cannot write. */
  bool backing_off = now < l->backoff_until_ms && !force;
  want_refill = want_refill && !backing_off && refill_due(h, now);
  bool outcomes_due =
      (l->outcomes || l->endpoints_dirty) && !backing_off &&
      (force || l->noutcomes >= OUTCOME_BATCH || now - l->first_outcome_ms >= OUTCOME_DELAY_MS);
  if(!items && !outcomes_due && !want_refill)
    return;
  int rc = step_done(l->tx_begin);
  int items_rc = rc;
  if(!rc && items && write_items(l, items, &items_rc)) {
    rc = items_rc ? items_rc : SQLITE_ERROR;
    if(!sqlite3_get_autocommit(l->db))
      step_done(l->tx_rollback);
  }
  /* Outcomes and loads in a savepoint of their own: when they cannot be
   * written (a full store: attempt rows need pages) the publishes of the
   * turn still commit. */
  bool book_ok = false, book_tried = !rc && (outcomes_due || want_refill || items);
  size_t staged_mark = l->nstaged;
  if(book_tried && !step_done(l->sp_book)) {
    book_ok = write_outcomes(l) == 0 && write_endpoints(l) == 0;
    if(book_ok && want_refill) {
      pthread_mutex_lock(&h->lock);
      size_t n = h->neps;
      struct endpoint **eps = malloc(n * sizeof(*eps));
      if(eps)
        memcpy(eps, h->eps, n * sizeof(*eps));
      pthread_mutex_unlock(&h->lock);
      /* Endpoints are freed by this thread only, so the copy stays valid. */
      for(size_t i = 0; eps && i < n && book_ok; i++)
        if(wants_load(eps[i], now) && refill(l, eps[i], now))
          book_ok = false;
      free(eps);
    }
    if(!book_ok) {
      drop_staged(l, staged_mark);
      if(sqlite3_get_autocommit(l->db)) /* SQLite rolled back everything */
        rc = sqlite3_extended_errcode(l->db) ? sqlite3_extended_errcode(l->db) : SQLITE_ERROR;
      else if(step_done(l->sp_book_rollback) || step_done(l->sp_book_release))
        rc = SQLITE_ERROR;
    } else if(step_done(l->sp_book_release))
      rc = SQLITE_ERROR;
  }
  if(!rc && (rc = step_done(l->tx_commit))) {
    if(!sqlite3_get_autocommit(l->db))
      step_done(l->tx_rollback);
  }
  if(rc || !book_ok) {
    /* Outcomes stay for a later turn; loaded rows were rolled back. */
    int64_t wait = l->backoff_ms ? l->backoff_ms * 2 : 20;
    l->backoff_ms = wait > 1000 ? 1000 : wait;
    l->backoff_until_ms = now + l->backoff_ms;
    pthread_mutex_lock(&h->lock);
    for(size_t i = 0; i < h->neps; i++)
      h->eps[i]->more = true;
    pthread_mutex_unlock(&h->lock);
  }
  if(rc) {
    hook_log(h, HLOG_ERROR, "store_commit_failed", "error=\"%s\"", sqlite3_errstr(rc));
    drop_staged(l, 0);
    for(struct item *it = items; it; it = it->next)
      it->ok = false;
    finish_items(l, items, rc);
    return;
  }
  apply_staged(l);
  if(book_ok) {
    apply_outcomes(l);
    endpoints_written(l);
    l->backoff_ms = 0;
    l->backoff_until_ms = 0;
  } else if(book_tried)
    hook_log(h, HLOG_WARN, "store_outcomes_deferred", "outcomes=%zu retry_in_ms=%lld", l->noutcomes,
             (long long)l->backoff_ms);
  finish_items(l, items, items_rc);
}

/* ---- 3. sending ---- */

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
  struct xfer *x = arg;
  size_t len = size * n, keep = sizeof(x->response) - x->response_len;
  if(keep > len)
    keep = len;
  memcpy(x->response + x->response_len, ptr, keep);
  x->response_len += keep;
  return len; /* the rest is read and dropped */
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
  struct xfer *x = arg;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if(len > sizeof(name) && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
    const char *v = buf + sizeof(name) - 1;
    size_t vl = len - (sizeof(name) - 1);
    while(vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while(vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    snprintf(x->retry_after, sizeof(x->retry_after), "%.*s", (int)vl, v);
  }
  return len;
}

/* libcurl's open-socket callback: the target guard on the address actually
 * connected to. */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
  struct xfer *x = arg;
  (void)purpose;
  const char *cls = hook_guard_check(x->h->cfg.allowed, x->h->cfg.nallowed, &a->addr);
  if(cls) {
    char addr[INET6_ADDRSTRLEN] = "?";
    if(a->family == AF_INET)
      inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, addr, sizeof(addr));
    else if(a->family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, addr, sizeof(addr));
    snprintf(x->refused, sizeof(x->refused),
             "refused to connect to %s: a %s address (webhooks.allowed_cidrs)", addr, cls);
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int start(struct loop *l, struct endpoint *ep, struct ready *r, int64_t now)
{
  struct hook_service *h = l->h;
  struct xfer *x = calloc(1, sizeof(*x));
  if(!x)
    return -1;
  x->h = h;
  x->ep = ep;
  x->r = *r;
  x->ms = now;
  x->easy = l->npool ? l->pool[--l->npool] : curl_easy_init();
  if(!x->easy) {
    free(x);
    return -1;
  }
  /* Sign with the current secret and, during a rotation, the old one. */
  int64_t ts = now / 1000;
  char sig[2 * HOOK_SIG_MAX + 24] = "webhook-signature: ";
  char hid[64], hts[48];
  /* The secrets are parsed under the lock (an API thread may rotate them),
   * the HMACs computed outside it. */
  struct hook_secret keys[2];
  int nkeys = 0;
  pthread_mutex_lock(&h->lock);
  const char *secrets[2] = {ep->secret,
                            ep->old_secret[0] && ep->old_until_ms > now ? ep->old_secret : NULL};
  char *url = strdup(ep->url);
  for(int i = 0; i < 2; i++)
    if(secrets[i] && hook_secret_parse(secrets[i], &keys[nkeys], NULL) == 0)
      nkeys++;
  pthread_mutex_unlock(&h->lock);
  int signed_ok = 0;
  for(int i = 0; i < nkeys; i++) {
    char one[HOOK_SIG_MAX];
    if(hook_sign(&keys[i], r->event_id, ts, r->body->data, r->body->len, one) == 0) {
      if(signed_ok)
        strcat(sig, " ");
      strcat(sig, one);
      signed_ok++;
    }
  }
  OPENSSL_cleanse(keys, sizeof(keys));
  snprintf(hid, sizeof(hid), "webhook-id: %s", r->event_id);
  snprintf(hts, sizeof(hts), "webhook-timestamp: %lld", (long long)ts);
  struct curl_slist *hd = NULL;
  const char *lines[] = {"Content-Type: application/json", hid, hts, sig, "Expect:"};
  for(size_t i = 0; i < 5; i++) {
    struct curl_slist *n = curl_slist_append(hd, lines[i]);
    if(!n)
      break;
    hd = n;
  }
  x->headers = hd;
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, url ? url : "");
  free(url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)x->r.body->data);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body->len);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "Herald/" HERALD_VERSION);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->cfg.request_timeout_ms);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never through a proxy from the environment */
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  if(!signed_ok || curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    curl_slist_free_all(hd);
    curl_easy_reset(e);
    if(l->npool < EASY_POOL_MAX)
      l->pool[l->npool++] = e;
    else
      curl_easy_cleanup(e);
    free(x);
    return -1;
  }
  ep->inflight++;
  l->inflight++;
  x->next = l->xfers;
  if(l->xfers)
    l->xfers->prev = x;
  l->xfers = x;
  return 0;
}

static void queue_outcome(struct loop *l, struct outcome *o);

/* A delivery that could not even be started (out of memory, or a secret
 * that no longer parses): recorded as a failed attempt, retried in a
 * second, so the endpoint's queue does not stall on it. */
static void start_failed(struct loop *l, struct endpoint *ep, struct ready *r, int64_t now)
{
  struct outcome *o = calloc(1, sizeof(*o));
  if(o) {
    o->delivery = r->id;
    memcpy(o->endpoint, ep->id, sizeof(o->endpoint));
    o->total = r->total + 1;
    o->attempts = r->attempts;
    o->ms = now;
    o->error = strdup("the request could not be started (out of memory or an unusable secret)");
    o->status = D_PENDING;
    o->next_ms = now + 1000;
    if(!l->outcomes && !l->endpoints_dirty)
      l->first_outcome_ms = now;
    queue_outcome(l, o);
  }
  if(!ep->more || ep->next_check_ms > now + 1000)
    ep->next_check_ms = now + 1000;
  ep->more = true;
  hook_log(l->h, HLOG_ERROR, "delivery_not_started", "endpoint=%s delivery=%lld", ep->id,
           (long long)r->id);
  blob_unref(r->body);
}

static void schedule(struct loop *l, int64_t now)
{
  struct hook_service *h = l->h;
  pthread_mutex_lock(&h->lock);
  size_t n = h->neps;
  struct endpoint **eps = n ? malloc(n * sizeof(*eps)) : NULL;
  if(eps)
    memcpy(eps, h->eps, n * sizeof(*eps));
  pthread_mutex_unlock(&h->lock);
  if(!eps)
    return;
  /* Round-robin, one delivery per endpoint per pass: a busy endpoint
   * cannot take every free slot from the others. */
  bool started = true;
  while(started && l->inflight < h->cfg.max_inflight) {
    started = false;
    for(size_t k = 0; k < n && l->inflight < h->cfg.max_inflight; k++) {
      struct endpoint *ep = eps[(l->rr + k) % n];
      int cap = ep->ordered ? 1 : h->cfg.max_inflight_per_endpoint;
      if(ep->deleted || !ep->enabled || !ep->qlen || ep->inflight >= cap)
        continue;
      struct ready r = ep->q[ep->qhead];
      ep->qhead = (ep->qhead + 1) % HOOK_READY_MAX;
      ep->qlen--;
      if(start(l, ep, &r, now))
        start_failed(l, ep, &r, now);
      else
        started = true;
    }
  }
  l->rr++;
  free(eps);
}

/* ---- 4. finished transfers ---- */

static void queue_outcome(struct loop *l, struct outcome *o)
{
  if(l->outcomes_tail)
    l->outcomes_tail->next = o;
  else
    l->outcomes = o;
  l->outcomes_tail = o;
  l->noutcomes++;
}

static void disable_locked(struct loop *l, struct endpoint *ep, const char *reason)
{
  ep->enabled = false;
  ep->updated_ms = now_ms();
  snprintf(ep->disabled_reason, sizeof(ep->disabled_reason), "%s", reason);
  struct disabled *n = realloc(l->disabled, (l->ndisabled + 1) * sizeof(*n));
  if(!n)
    return;
  l->disabled = n;
  memcpy(n[l->ndisabled].id, ep->id, sizeof(ep->id));
  n[l->ndisabled].url = strdup(ep->url);
  snprintf(n[l->ndisabled].reason, sizeof(n[0].reason), "%s", reason);
  l->ndisabled++;
}

static void xfer_free(struct loop *l, struct xfer *x)
{
  if(x->prev)
    x->prev->next = x->next;
  else
    l->xfers = x->next;
  if(x->next)
    x->next->prev = x->prev;
  curl_multi_remove_handle(l->h->multi, x->easy);
  curl_slist_free_all(x->headers);
  /* Reused: a fresh handle and its setup cost more than a reset. The
   * connections stay in the multi handle's cache either way. */
  curl_easy_reset(x->easy);
  if(l->npool < EASY_POOL_MAX)
    l->pool[l->npool++] = x->easy;
  else
    curl_easy_cleanup(x->easy);
  blob_unref(x->r.body);
  free(x);
}

static void finished(struct loop *l, CURL *e, CURLcode code)
{
  struct hook_service *h = l->h;
  struct xfer *x = NULL;
  curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
  struct endpoint *ep = x->ep;
  long status = 0;
  curl_off_t total_us = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);
  int64_t now = now_ms();
  struct outcome *o = calloc(1, sizeof(*o));
  char err[320] = "";
  bool ok = code == CURLE_OK && status >= 200 && status <= 299;
  if(code != CURLE_OK)
    snprintf(err, sizeof(err), "%s",
             x->refused[0]  ? x->refused
             : x->errbuf[0] ? x->errbuf
                            : curl_easy_strerror(code));
  else if(!ok)
    snprintf(err, sizeof(err), "HTTP %ld%s", status,
             status >= 300 && status <= 399 ? " (redirects are not followed)" : "");
  if(o) {
    o->delivery = x->r.id;
    memcpy(o->endpoint, ep->id, sizeof(o->endpoint));
    o->total = x->r.total + 1;
    o->attempts = x->r.attempts + 1;
    o->ms = x->ms;
    o->http_status = code == CURLE_OK ? status : 0;
    o->latency_us = (int64_t)total_us;
    o->error = err[0] ? strdup(err) : NULL;
    if(x->response_len) {
      o->response = malloc(x->response_len);
      if(o->response) {
        memcpy(o->response, x->response, x->response_len);
        o->response_len = x->response_len;
      }
    }
  }
  pthread_mutex_lock(&h->lock);
  bool was_failing = ep->failing_since_ms != 0;
  bool endpoint_changed = false;
  if(ok) {
    if(o)
      o->status = D_DELIVERED;
    endpoint_changed = was_failing;
    ep->failing_since_ms = 0;
  } else {
    int64_t delay = -1;
    if(status != 410) {
      delay = hook_retry_delay_ms(h->cfg.schedule_s, h->cfg.schedule_n,
                                  (unsigned)(x->r.attempts + 1), h->cfg.jitter, next_rand(h));
      if(delay >= 0 && (status == 429 || status == 503) && x->retry_after[0]) {
        int64_t ra = hook_retry_after_ms(x->retry_after, time(NULL));
        if(ra >= 0)
          delay = ra;
      }
    }
    if(o) {
      o->status = delay < 0 ? D_FAILED : D_PENDING;
      o->next_ms = delay < 0 ? now : now + delay;
    }
    if(!was_failing) {
      ep->failing_since_ms = now;
      endpoint_changed = true;
    }
    if(ep->enabled && !ep->deleted) {
      if(status == 410) {
        disable_locked(l, ep, "gone");
        endpoint_changed = true;
      } else if(now - ep->failing_since_ms >= h->cfg.disable_after_ms) {
        disable_locked(l, ep, "failing");
        endpoint_changed = true;
      }
    }
    if(o && o->status == D_PENDING) { /* back to the store, due at next_ms */
      if(!ep->more || ep->next_check_ms > o->next_ms)
        ep->next_check_ms = o->next_ms;
      ep->more = true;
    }
  }
  ep->inflight--;
  pthread_mutex_unlock(&h->lock);
  l->inflight--;
  if(o && !l->outcomes && !l->endpoints_dirty)
    l->first_outcome_ms = now;
  if(endpoint_changed) { /* written with the outcomes */
    ep->dirty = true;
    if(!l->outcomes && !l->endpoints_dirty)
      l->first_outcome_ms = now;
    l->endpoints_dirty = true;
  }
  if(o)
    queue_outcome(l, o);
  else
    hook_log(h, HLOG_ERROR, "outcome_lost", "delivery=%lld error=out_of_memory",
             (long long)x->r.id); /* it stays loaded; sent again after a restart */
  hook_log(h, ok ? HLOG_DEBUG : HLOG_INFO, ok ? "delivered" : "delivery_failed",
           "endpoint=%s delivery=%lld attempt=%d status=%ld latency_ms=%.1f%s%s%s", ep->id,
           (long long)x->r.id, x->r.total + 1, status, (double)total_us / 1000.0,
           err[0] ? " error=\"" : "", err, err[0] ? "\"" : "");
  xfer_free(l, x);
}

static void collect(struct loop *l)
{
  CURLMsg *m;
  int left;
  while((m = curl_multi_info_read(l->h->multi, &left)))
    if(m->msg == CURLMSG_DONE)
      finished(l, m->easy_handle, m->data.result);
}

/* Announces disabled endpoints on HOOK_DISABLED_TOPIC (no lock held). */
static void announce(struct loop *l)
{
  for(size_t i = 0; i < l->ndisabled; i++) {
    struct disabled *d = &l->disabled[i];
    char at[SUB_TIME_LEN + 1];
    sub_time_format(sub_now_ms(), at);
    hook_log(l->h, HLOG_WARN, "endpoint_disabled", "id=%s reason=%s", d->id, d->reason);
    hook_publish_internal(l->h, HOOK_DISABLED_TOPIC,
                          json_pack("{s:s, s:s, s:s, s:s}", "endpoint_id", d->id, "url",
                                    d->url ? d->url : "", "reason", d->reason, "disabled_at", at));
    free(d->url);
  }
  l->ndisabled = 0;
}

/* Frees endpoints deleted through the API once nothing of theirs is in flight. */
static void reap(struct loop *l)
{
  struct hook_service *h = l->h;
  pthread_mutex_lock(&h->lock);
  for(size_t i = 0; i < h->neps;) {
    struct endpoint *ep = h->eps[i];
    if(ep->deleted && ep->inflight == 0) {
      h->eps[i] = h->eps[--h->neps];
      endpoint_free(ep);
      continue;
    }
    i++;
  }
  pthread_mutex_unlock(&h->lock);
}

/* Deletes delivered deliveries (and their attempts) older than the
 * retention, events nothing refers to, and expired idempotency keys; in
 * batches, so a turn stays short. */
static void prune(struct loop *l, int64_t now)
{
  struct hook_service *h = l->h;
  int64_t interval = h->cfg.retention_ms / 2;
  if(interval > 60000)
    interval = 60000;
  if(interval < 1000)
    interval = 1000;
  if(now < l->next_prune_ms)
    return;
  l->next_prune_ms = now + interval;
  char sql[1024];
  long long cut = (long long)(now - h->cfg.retention_ms);
  snprintf(sql, sizeof(sql),
           "BEGIN IMMEDIATE;"
           "CREATE TEMP TABLE IF NOT EXISTS prune(id INTEGER PRIMARY KEY);"
           "DELETE FROM prune;"
           "INSERT INTO prune SELECT id FROM deliveries WHERE status=1 AND updated_ms<%lld"
           " LIMIT %d;"
           "DELETE FROM attempts WHERE delivery IN (SELECT id FROM prune);"
           "DELETE FROM deliveries WHERE id IN (SELECT id FROM prune);"
           "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.ms<%lld AND NOT"
           " EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id=e.id) LIMIT %d);"
           "DELETE FROM idempotency WHERE ms<%lld;"
           "COMMIT;",
           cut, PRUNE_BATCH, cut, PRUNE_BATCH, (long long)(now - h->cfg.idempotency_ttl_ms));
  if(store_exec(l->db, sql)) {
    hook_log(h, HLOG_WARN, "store_prune_failed", "error=\"%s\"", sqlite3_errmsg(l->db));
    store_exec(l->db, "ROLLBACK");
  }
}

static long poll_timeout(struct loop *l, int64_t now)
{
  struct hook_service *h = l->h;
  int64_t t = POLL_MAX_MS;
  pthread_mutex_lock(&h->lock);
  if(h->qhead)
    t = 0;
  for(size_t i = 0; i < h->neps && t > 0; i++) {
    struct endpoint *ep = h->eps[i];
    if(ep->deleted || !ep->enabled)
      continue;
    int cap = ep->ordered ? 1 : h->cfg.max_inflight_per_endpoint;
    if((ep->qlen && ep->inflight < cap && l->inflight < h->cfg.max_inflight) ||
       (now >= l->backoff_until_ms && wants_load(ep, now)))
      t = 0;
    else if(ep->more && ep->next_check_ms > now && ep->next_check_ms - now < t)
      t = ep->next_check_ms - now;
  }
  pthread_mutex_unlock(&h->lock);
  if(l->next_prune_ms - now < t)
    t = l->next_prune_ms - now;
  if(l->backoff_until_ms > now && l->backoff_until_ms - now < t)
    t = l->backoff_until_ms - now;
  if(l->outcomes || l->endpoints_dirty) {
    int64_t due = l->first_outcome_ms + OUTCOME_DELAY_MS;
    if(due < l->backoff_until_ms)
      due = l->backoff_until_ms;
    if(due - now < t)
      t = due - now;
  }
  return t < 0 ? 0 : (long)t;
}

void *dispatch_main(void *arg)
{
  struct hook_service *h = arg;
  struct loop l = {.h = h, .db = h->db};
  if(prepare_all(&l)) {
    /* Publishes that need the store are refused from now on (503). */
    hook_log(h, HLOG_ERROR, "webhooks_dispatcher_failed", "error=\"%s\"", sqlite3_errmsg(l.db));
    atomic_store(&h->dead, true);
    finalize_all(&l);
    pthread_mutex_lock(&h->lock);
    struct item *items = h->qhead;
    h->qhead = h->qtail = NULL;
    h->nqueue = 0;
    pthread_mutex_unlock(&h->lock);
    for(struct item *it = items; it; it = it->next)
      it->ok = false;
    finish_items(&l, items, SQLITE_ERROR);
    return NULL;
  }
  l.next_prune_ms = now_ms();
  bool stopping = false;
  while(!stopping) {
    stopping = atomic_load(&h->stop);
    if(atomic_exchange(&h->poke, false)) {
      pthread_mutex_lock(&h->lock);
      for(size_t i = 0; i < h->neps; i++) {
        h->eps[i]->more = true;
        h->eps[i]->next_check_ms = 0;
      }
      pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_lock(&h->lock);
    struct item *items = h->qhead;
    h->qhead = h->qtail = NULL;
    h->nqueue = 0;
    pthread_mutex_unlock(&h->lock);
    int64_t now = now_ms();
    commit_turn(&l, items, !stopping, stopping);
    if(stopping)
      break;
    announce(&l);
    reap(&l);
    prune(&l, now);
    schedule(&l, now_ms());
    int running = 0;
    curl_multi_poll(h->multi, NULL, 0, (int)poll_timeout(&l, now_ms()), NULL);
    curl_multi_perform(h->multi, &running);
    collect(&l);
    /* Freed slots take the next deliveries before the commit, not after.
     * What that perform finishes is collected now: a finished transfer
     * makes no socket activity for the next poll to wake on. */
    schedule(&l, now_ms());
    curl_multi_perform(h->multi, &running);
    collect(&l);
  }
  /* Stopping: what is in flight is abandoned; those deliveries go back to
   * pending and are sent again at the next start. */
  while(l.xfers)
    xfer_free(&l, l.xfers);
  commit_turn(&l, NULL, false, true); /* the last outcomes */
  store_exec(l.db, "UPDATE deliveries SET status=0 WHERE status=3");
  apply_outcomes(&l);
  drop_staged(&l, 0);
  free(l.staged);
  for(size_t i = 0; i < l.npool; i++)
    curl_easy_cleanup(l.pool[i]);
  announce(&l);
  free(l.disabled);
  finalize_all(&l);
  return NULL;
}
