/* The dispatcher thread: it owns the store's writing connection and the
 * libcurl multi handle. Each turn of its loop
 *   1. commits, in one transaction, the publishes held since the last turn
 *      (their events and deliveries), the outcomes of finished attempts, and
 *      the deliveries it loads from the store;
 *   2. releases the committed events to the engine and answers the
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
#include "util/clock.h"
#include "util/dynbuf.h"

#define POLL_MAX_MS 1000
#define PRUNE_BATCH 20000
/* Outcomes of attempts wait for the next commit a publish or a load makes
 * anyway, but no longer than this many or this long: an outcome lost in a
 * crash only means the delivery is sent again (at least once). */
#define OUTCOME_BATCH 512
#define OUTCOME_DELAY_MS 20
#define EASY_POOL_MAX 512 /* idle libcurl handles kept for reuse */

_Static_assert(HOOK_READY_MAX <= HOOK_STORE_LOAD_MAX, "a refill asks the store for at most this");

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

/* A failed write: its class, and the store's reason (a static string). */
struct fault {
  enum hook_store_err err;
  const char *why;
};

struct loop {
  struct hook_service *h;
  struct hook_store *s; /* the dispatcher's own connection */
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

/* Records e, a failure of the store, in f. Returns e. */
static enum hook_store_err faulted(struct loop *l, struct fault *f, enum hook_store_err e)
{
  if(e) {
    f->err = e;
    f->why = l->s->ops->errstr(l->s);
  }
  return e;
}

static const struct fault no_memory = {HOOK_STORE_FAILED, "out of memory"};

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

/* An endpoint a held publish goes to, and whether its delivery is kept
 * in memory (sent without a load) or left pending in the store. */
struct pick {
  struct endpoint *ep;
  bool direct;
};

/* The envelope around an event's data: its fixed text, the topic, the
 * time, the id and a 20-digit seq at most. */
#define ENVELOPE_MAX (64 + SUB_TOPIC_MAX + SUB_TIME_LEN + SUB_ID_LEN + 20)

struct blob *hook_envelope(const struct sub_event *ev)
{
  size_t dlen;
  const char *data = sub_event_data(ev, &dlen);
  char time[SUB_TIME_LEN + 1];
  sub_time_format(ev->ms, time);
  struct util_dynbuf text;
  util_dynbuf_init(&text, dlen + ENVELOPE_MAX);
  /* a failed add frees what the buffer held */
  if(util_dynbuf_addf(&text, "{\"type\":\"%s\",\"timestamp\":\"%s\",\"id\":\"%s\",\"seq\":%llu,\"data\":",
                      ev->topic, time, ev->id, (unsigned long long)ev->seq) ||
     util_dynbuf_addn(&text, data, dlen) || util_dynbuf_addn(&text, "}", 1))
    return NULL;
  struct blob *b = hook_blob_new(util_dynbuf_ptr(&text), util_dynbuf_len(&text));
  util_dynbuf_free(&text);
  return b;
}

/* Writes one held publish: its event, a delivery per endpoint, the topic's
 * seq and the idempotency key. Returns 0, or -1 with f set (the caller
 * undoes the items). */
static int write_item(struct loop *l, struct item *it, struct blob **body, struct fault *f)
{
  struct hook_service *h = l->h;
  struct sub_event *ev = it->ev;
  bool idem = it->req && it->req->idem_key;
  *body = NULL;
  if(!it->neps && !idem)
    return 0;
  struct hook_store_new_delivery *ds = it->neps ? calloc(it->neps, sizeof(*ds)) : NULL;
  struct pick *picks = it->neps ? calloc(it->neps, sizeof(*picks)) : NULL;
  int ret = -1;
  *body = hook_envelope(ev);
  if(!*body || (it->neps && (!ds || !picks))) {
    *f = no_memory;
    goto out;
  }
  int64_t now = util_clock_wall_ms();
  int64_t first = (int64_t)h->cfg.schedule_s[0] * 1000; /* the first attempt's delay */
  size_t nd = 0;
  for(size_t i = 0; i < it->neps; i++) {
    pthread_mutex_lock(&h->lock);
    struct endpoint *ep = hook_endpoint_find_locked(h, it->eps[i]);
    bool gone = !ep || ep->deleting; /* deleted since the publish matched it */
    bool direct = !gone && !ep->ordered && first == 0 && room(ep) > 0;
    pthread_mutex_unlock(&h->lock);
    if(gone)
      continue;
    picks[nd] = (struct pick){ep, direct};
    ds[nd++] = (struct hook_store_new_delivery){
        .endpoint = it->eps[i], .status = direct ? D_QUEUED : D_PENDING, .next_ms = now + first};
  }
  struct hook_store_item rec = {
      .event_id = ev->id,
      .topic = ev->topic,
      .topic_len = ev->topic_len,
      .seq = ev->seq,
      .ms = ev->ms,
      .body = it->neps ? (*body)->data : NULL,
      .body_len = (*body)->len,
      .deliveries = ds,
      .ndeliveries = nd,
      .idem_key = idem ? it->req->idem_key : NULL,
      .idem_hash = idem ? it->req->idem_hash : NULL,
      .idem_ms = now,
  };
  if(faulted(l, f, l->s->ops->write_item(l->s, &rec)))
    goto out;
  for(size_t i = 0; i < nd; i++) {
    struct endpoint *ep = picks[i].ep;
    if(picks[i].direct) {
      struct ready r = {.id = ds[i].id, .body = hook_blob_ref(*body)};
      memcpy(r.event_id, ev->id, sizeof(r.event_id));
      if(stage(l, ep, &r)) {
        hook_blob_unref(r.body);
        *f = no_memory;
        goto out;
      }
    } else { /* dispatcher-only fields */
      if(!ep->more || ep->next_check_ms > now + first)
        ep->next_check_ms = now + first;
      ep->more = true;
    }
  }
  ret = 0;
out:
  free(ds);
  free(picks);
  return ret;
}

static void drop_staged(struct loop *l, size_t from)
{
  for(size_t i = from; i < l->nstaged; i++) {
    hook_blob_unref(l->staged[i].r.body);
    l->staged[i].ep->staged--;
  }
  l->nstaged = from;
}

/* Writes the items; on failure undoes them and marks every item failed.
 * Returns 0 (the turn goes on; *items_f says whether the items failed), or
 * -1 when the turn's transaction itself is gone (*items_f set). */
static int write_items(struct loop *l, struct item *items, struct fault *items_f)
{
  struct hook_store *s = l->s;
  size_t staged0 = l->nstaged;
  *items_f = (struct fault){HOOK_STORE_OK, NULL};
  if(faulted(l, items_f, s->ops->part_begin(s, HOOK_STORE_ITEMS)))
    return -1;
  struct fault f = {HOOK_STORE_OK, NULL};
  int rc = 0;
  for(struct item *it = items; it && !rc; it = it->next) {
    struct blob *body;
    rc = write_item(l, it, &body, &f);
    hook_blob_unref(body);
  }
  int ret = 0;
  struct fault ignored;
  if(rc) {
    *items_f = f;
    drop_staged(l, staged0);
    /* After a full store or an I/O error the store may have rolled back
     * the whole turn already: then begin a new one for the rest. */
    if(!s->ops->turn_open(s))
      ret = faulted(l, &ignored, s->ops->turn_begin(s)) ? -1 : 0;
    else if(faulted(l, &ignored, s->ops->part_end(s, HOOK_STORE_ITEMS, false)))
      ret = -1;
  } else if(faulted(l, items_f, s->ops->part_end(s, HOOK_STORE_ITEMS, true)))
    ret = -1;
  for(struct item *it = items; it; it = it->next)
    it->ok = items_f->err == HOOK_STORE_OK;
  return ret;
}

static void outcome_free(struct outcome *o)
{
  free(o->error);
  free(o->response);
  free(o);
}

/* Writes the outcomes of finished attempts. Returns 0, or -1 with f set. */
static int write_outcomes(struct loop *l, struct fault *f)
{
  for(struct outcome *o = l->outcomes; o; o = o->next) {
    struct hook_store_outcome r = {
        .delivery = o->delivery,
        .endpoint = o->endpoint,
        .status = o->status,
        .total = o->total,
        .attempts = o->attempts,
        .next_ms = o->next_ms,
        .ms = o->ms,
        .http_status = o->http_status,
        .latency_us = o->latency_us,
        .error = o->error,
        .response = o->response,
        .response_len = o->response_len,
    };
    if(faulted(l, f, l->s->ops->write_outcome(l->s, &r)))
      return -1;
  }
  return 0;
}

/* The endpoint a refill loads for. */
struct refilling {
  struct loop *l;
  struct endpoint *ep;
};

/* load_due's callback: stages one due delivery for the endpoint. Returns 0,
 * or -1 out of memory (the load stops; that row stays pending). */
static int take_due(void *ctx, const struct hook_store_due *d)
{
  struct refilling *rf = ctx;
  struct ready r = {.id = d->id, .attempts = d->attempts, .total = d->total};
  snprintf(r.event_id, sizeof(r.event_id), "%s", d->event_id);
  r.body = hook_blob_new(d->body, d->body_len);
  if(!r.body || stage(rf->l, rf->ep, &r)) {
    hook_blob_unref(r.body);
    return -1;
  }
  return 0;
}

/* Loads due deliveries of ep from the store (marking them loaded).
 * Returns 0, or -1 with f set. */
static int refill(struct loop *l, struct endpoint *ep, int64_t now, struct fault *f)
{
  size_t want = room(ep);
  if(ep->ordered)
    want = ep->qlen == 0 && ep->inflight == 0 ? 1 : 0;
  if(!want)
    return 0;
  struct refilling rf = {l, ep};
  int64_t next = -1;
  if(faulted(l, f, l->s->ops->load_due(l->s, ep->id, ep->ordered, now, want, take_due, &rf, &next)))
    return -1;
  if(next >= 0)
    ep->next_check_ms = next;
  else
    ep->more = false;
  return 0;
}

/* ---- 2. after the commit ---- */

static void finish_items(struct loop *l, struct item *items, struct fault rc)
{
  struct hook_service *h = l->h;
  enum sub_err failed = rc.err == HOOK_STORE_FULL ? SUB_ESTOREFULL : SUB_ESTORE;
  while(items) {
    struct item *it = items;
    items = it->next;
    bool durable = it->neps || (it->req && it->req->idem_key);
    bool ok = it->ok || !durable;
    if(!ok)
      hook_log(h, UTIL_LOG_ERROR, "publish_not_stored", "topic=%s id=%s error=%s", it->ev->topic,
               it->ev->id, rc.why ? rc.why : "unknown error");
    struct sub_event *ev = it->ev;
    if(it->req)
      it->req->done(it->req, ok ? SUB_OK : failed); /* the request may be gone now */
    /* After the answer: a publisher subscribed to the topic gets its ack
     * before the event, as without webhooks. */
    sub_engine_release(h->engine, ev, ok);
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
 * Returns 0, or -1 with f set. */
static int write_endpoints(struct loop *l, struct fault *f)
{
  struct hook_service *h = l->h;
  if(!l->endpoints_dirty)
    return 0;
  enum hook_store_err e = HOOK_STORE_OK;
  pthread_mutex_lock(&h->lock);
  for(size_t i = 0; i < h->neps && !e; i++) {
    struct endpoint *ep = h->eps[i];
    if(ep->dirty)
      e = faulted(l, f,
                  l->s->ops->write_endpoint_state(l->s, ep->id, ep->enabled, ep->failing_since_ms,
                                                  ep->disabled_reason, ep->updated_ms));
  }
  pthread_mutex_unlock(&h->lock);
  return e ? -1 : 0;
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
  struct hook_store *s = l->s;
  int64_t now = util_clock_wall_ms();
  /* After a failed write the bookkeeping waits (backing off); publishes
   * never do: they are answered, 503 if the store still cannot write. */
  bool backing_off = now < l->backoff_until_ms && !force;
  want_refill = want_refill && !backing_off && refill_due(h, now);
  bool outcomes_due =
      (l->outcomes || l->endpoints_dirty) && !backing_off &&
      (force || l->noutcomes >= OUTCOME_BATCH || now - l->first_outcome_ms >= OUTCOME_DELAY_MS);
  if(!items && !outcomes_due && !want_refill)
    return;
  struct fault rc = {HOOK_STORE_OK, NULL};
  faulted(l, &rc, s->ops->turn_begin(s));
  struct fault items_rc = rc;
  if(!rc.err && items && write_items(l, items, &items_rc)) {
    rc = items_rc; /* write_items sets it whenever it fails */
    s->ops->turn_rollback(s);
  }
  /* Outcomes and loads in a savepoint of their own: when they cannot be
   * written (a full store: attempt rows need pages) the publishes of the
   * turn still commit. */
  bool book_ok = false, book_tried = !rc.err && (outcomes_due || want_refill || items);
  size_t staged_mark = l->nstaged;
  struct fault book_rc = {HOOK_STORE_FAILED, "unknown error"};
  if(book_tried && !s->ops->part_begin(s, HOOK_STORE_BOOK)) {
    book_ok = write_outcomes(l, &book_rc) == 0 && write_endpoints(l, &book_rc) == 0;
    if(book_ok && want_refill) {
      pthread_mutex_lock(&h->lock);
      size_t n = h->neps;
      struct endpoint **eps = malloc(n * sizeof(*eps));
      if(eps)
        memcpy(eps, h->eps, n * sizeof(*eps));
      pthread_mutex_unlock(&h->lock);
      /* Endpoints are freed by this thread only, so the copy stays valid. */
      for(size_t i = 0; eps && i < n && book_ok; i++)
        if(wants_load(eps[i], now) && refill(l, eps[i], now, &book_rc))
          book_ok = false;
      free(eps);
    }
    if(!book_ok) {
      drop_staged(l, staged_mark);
      if(!s->ops->turn_open(s)) /* the store rolled back everything */
        rc = book_rc;
      else
        faulted(l, &rc, s->ops->part_end(s, HOOK_STORE_BOOK, false));
    } else
      faulted(l, &rc, s->ops->part_end(s, HOOK_STORE_BOOK, true));
  }
  if(!rc.err)
    faulted(l, &rc, s->ops->turn_commit(s)); /* rolled back if it fails */
  if(rc.err || !book_ok) {
    /* Outcomes stay for a later turn; loaded rows were rolled back. */
    int64_t wait = l->backoff_ms ? l->backoff_ms * 2 : 20;
    l->backoff_ms = wait > 1000 ? 1000 : wait;
    l->backoff_until_ms = now + l->backoff_ms;
    pthread_mutex_lock(&h->lock);
    for(size_t i = 0; i < h->neps; i++)
      h->eps[i]->more = true;
    pthread_mutex_unlock(&h->lock);
  }
  if(rc.err) {
    hook_log(h, UTIL_LOG_ERROR, "store_commit_failed", "error=\"%s\"", rc.why);
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
    hook_log(h, UTIL_LOG_WARN, "store_outcomes_deferred", "outcomes=%zu retry_in_ms=%lld", l->noutcomes,
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
  hook_log(l->h, UTIL_LOG_ERROR, "delivery_not_started", "endpoint=%s delivery=%lld", ep->id,
           (long long)r->id);
  hook_blob_unref(r->body);
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
  ep->updated_ms = util_clock_wall_ms();
  snprintf(ep->disabled_reason, sizeof(ep->disabled_reason), "%s", reason);
  hook_endpoint_reindex_locked(l->h, ep); /* out of the index: cannot fail */
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
  hook_blob_unref(x->r.body);
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
  int64_t now = util_clock_wall_ms();
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
    hook_log(h, UTIL_LOG_ERROR, "outcome_lost", "delivery=%lld error=out_of_memory",
             (long long)x->r.id); /* it stays loaded; sent again after a restart */
  hook_log(h, ok ? UTIL_LOG_DEBUG : UTIL_LOG_INFO, ok ? "delivered" : "delivery_failed",
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
    sub_time_format((uint64_t)util_clock_wall_ms(), at);
    hook_log(l->h, UTIL_LOG_WARN, "endpoint_disabled", "id=%s reason=%s", d->id, d->reason);
    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "endpoint_id", d->id, "url",
                             d->url ? d->url : "", "reason", d->reason, "disabled_at", at);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if(text && l->h->cfg.announce)
      l->h->cfg.announce(l->h->cfg.announce_arg, HOOK_DISABLED_TOPIC, text, strlen(text));
    else if(!text)
      hook_log(l->h, UTIL_LOG_WARN, "internal_publish_failed", "topic=%s error=internal_error",
               HOOK_DISABLED_TOPIC);
    free(text);
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
      hook_endpoint_free(ep);
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
  struct hook_store *s = l->s;
  if(s->ops->prune(s, now - h->cfg.retention_ms, now - h->cfg.idempotency_ttl_ms, PRUNE_BATCH))
    hook_log(h, UTIL_LOG_WARN, "store_prune_failed", "error=\"%s\"", s->ops->errmsg(s));
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

void *hook_dispatch_main(void *arg)
{
  struct hook_service *h = arg;
  struct loop l = {.h = h, .s = h->store};
  struct fault f = {HOOK_STORE_OK, NULL};
  if(faulted(&l, &f, l.s->ops->turn_prepare(l.s))) {
    /* Publishes that need the store are refused from now on (503). */
    hook_log(h, UTIL_LOG_ERROR, "store_prepare_failed", "error=\"%s\"", l.s->ops->errmsg(l.s));
    hook_log(h, UTIL_LOG_ERROR, "webhooks_dispatcher_failed", "error=\"%s\"", l.s->ops->errmsg(l.s));
    atomic_store(&h->dead, true);
    pthread_mutex_lock(&h->lock);
    struct item *items = h->qhead;
    h->qhead = h->qtail = NULL;
    h->nqueue = 0;
    pthread_mutex_unlock(&h->lock);
    for(struct item *it = items; it; it = it->next)
      it->ok = false;
    finish_items(&l, items, f);
    return NULL;
  }
  l.next_prune_ms = util_clock_wall_ms();
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
    int64_t now = util_clock_wall_ms();
    commit_turn(&l, items, !stopping, stopping);
    if(stopping)
      break;
    announce(&l);
    reap(&l);
    prune(&l, now);
    schedule(&l, util_clock_wall_ms());
    int running = 0;
    curl_multi_poll(h->multi, NULL, 0, (int)poll_timeout(&l, util_clock_wall_ms()), NULL);
    curl_multi_perform(h->multi, &running);
    collect(&l);
    /* Freed slots take the next deliveries before the commit, not after.
     * What that perform finishes is collected now: a finished transfer
     * makes no socket activity for the next poll to wake on. */
    schedule(&l, util_clock_wall_ms());
    curl_multi_perform(h->multi, &running);
    collect(&l);
  }
  /* Stopping: what is in flight is abandoned; those deliveries go back to
   * pending and are sent again at the next start. */
  while(l.xfers)
    xfer_free(&l, l.xfers);
  commit_turn(&l, NULL, false, true); /* the last outcomes */
  l.s->ops->reset_loaded(l.s);
  apply_outcomes(&l);
  drop_staged(&l, 0);
  free(l.staged);
  for(size_t i = 0; i < l.npool; i++)
    curl_easy_cleanup(l.pool[i]);
  announce(&l);
  free(l.disabled);
  return NULL;
}
