#include "eventlog.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WRITE_BATCH 1024 /* events one store transaction takes at most */
#define RUNS_MAX 64      /* removal runs remembered for the gap reason */
#define PRUNE_EVERY 4096 /* removed events between two store prunes */
/* Under load (the last commit ended less than this ago) the writer waits
 * this long before the next one, so a commit takes many events: a commit
 * costs about the same for one event as for a hundred. */
#define LINGER_US 1000

enum slot_state { S_READY, S_HELD, S_DROPPED, S_PUSHED };

struct slot {
  struct sub_event *ev; /* NULL: dropped */
  uint64_t ms;          /* the log's time of the event */
  unsigned char state;
};

/* Offsets up to `upto` (from the previous run's) were removed for `reason`. */
struct run {
  uint64_t upto;
  enum sub_gap reason;
};

struct sub_log {
  struct sub_log_cfg cfg;
  char epoch[SUB_EPOCH_LEN + 1];
  pthread_mutex_t lock;
  struct slot *ring; /* offset o at ring[o & (cap - 1)], for first <= o < next */
  size_t cap;
  uint64_t first, next;
  uint64_t committed; /* with a store: the last offset the writer committed */
  uint64_t pushed;
  uint64_t last_ms;   /* the latest log time given */
  size_t events, bytes;
  struct run runs[RUNS_MAX];
  int nruns;
  uint64_t removed_max_ms; /* log time of the newest event removed */
  uint64_t pruned_to;      /* the store was told to forget below this */
  bool appended;           /* an append came: no more restores */
  uint64_t restore_next;   /* the next offset sub_log_new was given */
  uint64_t restore_end;    /* after the last restored event (0: none yet) */
  /* the writer */
  pthread_t writer;
  pthread_cond_t work;
  bool started, stop;
};

static uint64_t now_ms(const struct sub_log *l)
{
  if(l->cfg.now_ms)
    return l->cfg.now_ms(l->cfg.clock_arg);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool epoch_valid(const char *e)
{
  for(int i = 0; i < SUB_EPOCH_LEN; i++)
    if(!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9')))
      return false;
  return e[SUB_EPOCH_LEN] == '\0';
}

struct sub_log *sub_log_new(const struct sub_log_cfg *cfg, const char *epoch, uint64_t next)
{
  if(!cfg || !cfg->deliver || !cfg->max_pending || next < 1 || (epoch && !epoch_valid(epoch)))
    return NULL;
  struct sub_log *l = calloc(1, sizeof(*l));
  if(!l)
    return NULL;
  l->cfg = *cfg;
  l->cap = 1024;
  l->ring = calloc(l->cap, sizeof(*l->ring));
  if(!l->ring) {
    free(l);
    return NULL;
  }
  if(epoch)
    memcpy(l->epoch, epoch, SUB_EPOCH_LEN + 1);
  else {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[SUB_EPOCH_LEN];
    if(RAND_bytes(r, sizeof(r)) != 1) {
      free(l->ring);
      free(l);
      return NULL;
    }
    for(int i = 0; i < SUB_EPOCH_LEN; i++)
      l->epoch[i] = alphabet[r[i] % 36];
    l->epoch[SUB_EPOCH_LEN] = '\0';
  }
  l->first = l->next = next;
  l->committed = l->pushed = next - 1;
  l->pruned_to = next;
  l->restore_next = next;
  if(next > 1) { /* offsets before it were given in an earlier run: gone */
    l->runs[l->nruns++] = (struct run){next - 1, SUB_GAP_EVICTED};
    l->removed_max_ms = UINT64_MAX;
  }
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->work, NULL);
  return l;
}

const char *sub_log_epoch(const struct sub_log *l)
{
  return l->epoch;
}

static struct slot *slot_at(struct sub_log *l, uint64_t o)
{
  return &l->ring[o & (l->cap - 1)];
}

/* Makes room for one more slot. Returns 0 or -1. */
static int ring_grow(struct sub_log *l)
{
  if(l->next - l->first < l->cap)
    return 0;
  size_t cap = l->cap * 2;
  struct slot *r = calloc(cap, sizeof(*r));
  if(!r)
    return -1;
  for(uint64_t o = l->first; o < l->next; o++)
    r[o & (cap - 1)] = l->ring[o & (l->cap - 1)];
  free(l->ring);
  l->ring = r;
  l->cap = cap;
  return 0;
}

/* Remembers that the event at offset o was removed for reason. */
static void note_removed(struct sub_log *l, uint64_t o, uint64_t ms, enum sub_gap reason)
{
  if(ms > l->removed_max_ms)
    l->removed_max_ms = ms;
  if(l->nruns && l->runs[l->nruns - 1].reason == reason) {
    l->runs[l->nruns - 1].upto = o;
    return;
  }
  if(l->nruns == RUNS_MAX) { /* the two oldest runs become one */
    memmove(&l->runs[0], &l->runs[1], (RUNS_MAX - 1) * sizeof(l->runs[0]));
    l->nruns--;
  }
  l->runs[l->nruns++] = (struct run){o, reason};
}

/* Why events after `after` are gone (SUB_GAP_NONE: none was). */
static enum sub_gap removed_after(const struct sub_log *l, uint64_t after)
{
  for(int i = 0; i < l->nruns; i++)
    if(l->runs[i].upto > after)
      return l->runs[i].reason;
  return SUB_GAP_NONE;
}

static bool too_old(const struct sub_log *l, const struct slot *s, uint64_t now)
{
  uint64_t age = l->cfg.max_age_ms;
  return age && s->ms + age < now;
}

/* Past its topic's own, shorter retention (the slot holds an event). */
static bool topic_too_old(const struct slot *s, uint64_t now)
{
  return s->ev->max_age_ms && s->ms + s->ev->max_age_ms < now;
}

/* Removes from the front what the bounds no longer allow, never an event
 * not yet pushed (nor, then, committed). */
static void evict_locked(struct sub_log *l, uint64_t now)
{
  while(l->first <= l->pushed) {
    struct slot *s = slot_at(l, l->first);
    enum sub_gap why;
    if(!s->ev)
      why = SUB_GAP_NONE; /* a dropped event: nothing lost */
    else if(too_old(l, s, now))
      why = SUB_GAP_EXPIRED;
    else if((l->cfg.max_events && l->events > l->cfg.max_events) ||
            (l->cfg.max_bytes && l->bytes > l->cfg.max_bytes))
      why = SUB_GAP_EVICTED;
    else
      break;
    if(s->ev) {
      note_removed(l, l->first, s->ms, why);
      l->events--;
      l->bytes -= s->ev->size;
      sub_event_unref(s->ev);
    }
    memset(s, 0, sizeof(*s));
    l->first++;
  }
}

/* Pushes, in offset order, what may go now. */
static void advance_locked(struct sub_log *l)
{
  uint64_t bound = l->cfg.store ? l->committed : l->next - 1;
  while(l->pushed < bound) {
    struct slot *s = slot_at(l, l->pushed + 1);
    if(s->state == S_HELD)
      break;
    if(s->state == S_READY) {
      l->cfg.deliver(l->cfg.deliver_arg, s->ev);
      s->state = S_PUSHED;
    }
    l->pushed++;
  }
  evict_locked(l, now_ms(l));
}

void sub_log_lock(struct sub_log *l)
{
  pthread_mutex_lock(&l->lock);
}

void sub_log_unlock(struct sub_log *l)
{
  pthread_mutex_unlock(&l->lock);
}

bool sub_log_direct_locked(const struct sub_log *l)
{
  return !l->cfg.store && l->pushed == l->next - 1;
}

enum sub_err sub_log_append_locked(struct sub_log *l, struct sub_event *ev,
                                   enum sub_log_state st)
{
  if(l->next - 1 - l->pushed >= l->cfg.max_pending)
    return SUB_EOVERLOADED;
  if(ring_grow(l))
    return SUB_ENOMEM;
  uint64_t ms = ev->ms > l->last_ms ? ev->ms : l->last_ms;
  l->last_ms = ms;
  uint64_t o = l->next++;
  l->appended = true;
  ev->offset = o;
  ev->log_ms = ms;
  ev->epoch = l->epoch;
  struct slot *s = slot_at(l, o);
  s->ev = sub_event_ref(ev);
  s->ms = ms;
  s->state = st == SUB_LOG_PUSHED ? S_PUSHED : st == SUB_LOG_HELD ? S_HELD : S_READY;
  l->events++;
  l->bytes += ev->size;
  if(st == SUB_LOG_PUSHED) {
    l->pushed = o;
    evict_locked(l, ms);
  } else if(l->cfg.store) {
    if(st == SUB_LOG_READY)
      pthread_cond_signal(&l->work);
  } else if(st == SUB_LOG_READY)
    advance_locked(l);
  return SUB_OK;
}

void sub_log_settle_locked(struct sub_log *l, struct sub_event *ev, bool deliver)
{
  uint64_t o = ev->offset;
  if(o < l->first || o >= l->next)
    return;
  struct slot *s = slot_at(l, o);
  if(s->state != S_HELD || s->ev != ev)
    return;
  if(deliver)
    s->state = S_READY;
  else {
    s->state = S_DROPPED;
    l->events--;
    l->bytes -= ev->size;
    sub_event_unref(s->ev);
    s->ev = NULL;
  }
  if(l->cfg.store)
    pthread_cond_signal(&l->work);
  else
    advance_locked(l);
}

uint64_t sub_log_pushed_locked(const struct sub_log *l)
{
  return l->pushed;
}

uint64_t sub_log_pushed(struct sub_log *l)
{
  pthread_mutex_lock(&l->lock);
  uint64_t p = l->pushed;
  pthread_mutex_unlock(&l->lock);
  return p;
}

uint64_t sub_log_next(struct sub_log *l)
{
  pthread_mutex_lock(&l->lock);
  uint64_t n = l->next;
  pthread_mutex_unlock(&l->lock);
  return n;
}

/* Appends an empty (dropped) slot at next. Returns 0 or -1. */
static int hole(struct sub_log *l)
{
  if(ring_grow(l))
    return -1;
  struct slot *s = slot_at(l, l->next++);
  memset(s, 0, sizeof(*s));
  s->state = S_DROPPED;
  return 0;
}

int sub_log_restore(struct sub_log *l, struct sub_event *ev)
{
  pthread_mutex_lock(&l->lock);
  int rc = -1;
  if(l->appended || !ev->offset || (l->restore_end && ev->offset < l->restore_end))
    goto out;
  if(!l->restore_end) {
    /* the first retained: what came before it was removed in an earlier run */
    l->first = l->next = ev->offset;
    l->nruns = 0;
    if(ev->offset > 1) {
      l->runs[l->nruns++] = (struct run){ev->offset - 1, SUB_GAP_EVICTED};
      l->removed_max_ms = ev->ms;
    }
  } else {
    while(l->next > l->restore_end) /* the trailing holes of the last call */
      l->next--;
  }
  while(l->next < ev->offset)
    if(hole(l))
      goto out;
  if(ring_grow(l))
    goto out;
  uint64_t ms = ev->ms > l->last_ms ? ev->ms : l->last_ms;
  l->last_ms = ms;
  ev->log_ms = ms;
  ev->epoch = l->epoch;
  struct slot *s = slot_at(l, l->next++);
  s->ev = sub_event_ref(ev);
  s->ms = ms;
  s->state = S_PUSHED;
  l->events++;
  l->bytes += ev->size;
  l->restore_end = l->next;
  while(l->next < l->restore_next) /* offsets given before the restart */
    if(hole(l))
      goto out;
  l->pushed = l->committed = l->next - 1;
  l->pruned_to = l->first;
  rc = 0;
out:
  pthread_mutex_unlock(&l->lock);
  return rc;
}

/* ---- the writer ---- */

static uint64_t mono_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Waits us microseconds with the lock released, or until a stop (appends
 * meanwhile do not end it). Called with the lock held. */
static void timed_wait(struct sub_log *l, uint64_t us)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + us * 1000;
  ts.tv_sec += (time_t)(ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  while(!l->stop && pthread_cond_timedwait(&l->work, &l->lock, &ts) != ETIMEDOUT)
    ;
}

static void *writer_main(void *arg)
{
  struct sub_log *l = arg;
  uint64_t last_commit_us = 0;
  unsigned failures = 0; /* commits failed in a row */
  struct sub_event **batch;
  while(!(batch = malloc(WRITE_BATCH * sizeof(*batch))))
    nanosleep(&(struct timespec){0, 100000000}, NULL);
  pthread_mutex_lock(&l->lock);
  for(;;) {
    /* what may be committed: the ready events after the last commit, up
     * to the first held one */
    uint64_t o = l->committed + 1;
    size_t n = 0;
    while(o < l->next && n < WRITE_BATCH) {
      struct slot *s = slot_at(l, o);
      if(s->state == S_HELD)
        break;
      if(s->ev)
        batch[n++] = sub_event_ref(s->ev);
      o++;
    }
    if(o == l->committed + 1) {
      if(l->stop)
        break;
      pthread_cond_wait(&l->work, &l->lock);
      continue;
    }
    uint64_t end = o - 1;
    bool stopping = l->stop;
    pthread_mutex_unlock(&l->lock);
    if(n < WRITE_BATCH / 4 && !stopping && mono_us() - last_commit_us < LINGER_US) {
      /* busy: let the batch grow (appends do not cut the wait short) */
      for(size_t i = 0; i < n; i++)
        sub_event_unref(batch[i]);
      nanosleep(&(struct timespec){0, LINGER_US * 1000}, NULL);
      last_commit_us = 0; /* once per commit */
      pthread_mutex_lock(&l->lock);
      continue;
    }
    int rc = n ? l->cfg.store->append(l->cfg.store->arg, batch, n) : 0;
    for(size_t i = 0; i < n; i++)
      sub_event_unref(batch[i]);
    last_commit_us = mono_us();
    pthread_mutex_lock(&l->lock);
    if(rc) {
      /* Nothing is pushed that is not stored: a push now would be a hole
       * after a restart, or its offset given again. The events wait (new
       * appends stop at max_pending: publishers are told the gateway is
       * overloaded) and the commit is tried again, 10 ms to 1 s apart. At
       * stop, what the store never took is not delivered. */
      if(l->stop)
        break;
      failures += failures < 7;
      uint64_t wait_us = 10000ull << (failures - 1);
      timed_wait(l, wait_us > 1000000 ? 1000000 : wait_us);
      continue;
    }
    failures = 0;
    l->committed = end;
    advance_locked(l);
    if(l->first >= l->pruned_to + PRUNE_EVERY && l->cfg.store->prune) {
      uint64_t first = l->first;
      l->pruned_to = first;
      pthread_mutex_unlock(&l->lock);
      l->cfg.store->prune(l->cfg.store->arg, first);
      pthread_mutex_lock(&l->lock);
    }
  }
  pthread_mutex_unlock(&l->lock);
  free(batch);
  return NULL;
}

int sub_log_start(struct sub_log *l)
{
  if(!l->cfg.store || l->started)
    return 0;
  if(pthread_create(&l->writer, NULL, writer_main, l))
    return -1;
  l->started = true;
  return 0;
}

void sub_log_free(struct sub_log *l)
{
  if(!l)
    return;
  if(l->started) {
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->writer, NULL);
  }
  for(uint64_t o = l->first; o < l->next; o++)
    sub_event_unref(slot_at(l, o)->ev);
  free(l->ring);
  pthread_cond_destroy(&l->work);
  pthread_mutex_destroy(&l->lock);
  free(l);
}

/* ---- reading ---- */

const char *sub_gap_name(enum sub_gap g)
{
  switch(g) {
  case SUB_GAP_NONE: return NULL;
  case SUB_GAP_EXPIRED: return "expired";
  case SUB_GAP_EVICTED: return "evicted";
  case SUB_GAP_EPOCH_CHANGED: return "epoch_changed";
  case SUB_GAP_LIMIT: return "limit";
  }
  return NULL;
}

void sub_log_result_clear(struct sub_log_result *r)
{
  for(size_t i = 0; i < r->n; i++)
    sub_event_unref(r->ev[i]);
  free(r->ev);
  memset(r, 0, sizeof(*r));
}

/* A read scans this many slots at most under one hold of the lock. */
#define READ_CHUNK 4096

/* The first retained event's offset at or after o (hwm + 1: none). */
static uint64_t first_event_from(struct sub_log *l, uint64_t o, uint64_t hwm)
{
  for(; o <= hwm; o++)
    if(slot_at(l, o)->ev)
      return o;
  return hwm + 1;
}

int sub_log_read(struct sub_log *l, const struct sub_log_query *q, struct sub_log_result *r)
{
  memset(r, 0, sizeof(*r));
  size_t max = q->max ? q->max : 1;
  /* newest: a ring of the last max matches; oldest: the first max */
  struct sub_event **keep = malloc(max * sizeof(*keep));
  if(!keep)
    return -1;
  size_t seen = 0; /* matches */
  pthread_mutex_lock(&l->lock);
  uint64_t now = now_ms(l);
  evict_locked(l, now);
  uint64_t hwm = q->upto && q->upto < l->pushed ? q->upto : l->pushed;
  r->hwm = hwm;
  /* nothing past hwm; after + 1 would wrap for a cursor at UINT64_MAX */
  uint64_t o = q->after < hwm ? q->after + 1 : hwm + 1;
  if(o < l->first) {
    r->gap = removed_after(l, q->after);
    if(r->gap)
      r->oldest = first_event_from(l, l->first, hwm);
    o = l->first;
  }
  uint64_t last = hwm;
  bool topic_expired = false;
  size_t scanned = 0;
  for(; o <= hwm; o++) {
    if(++scanned % READ_CHUNK == 0) {
      /* let publishes in; what was evicted meanwhile is a gap from here */
      pthread_mutex_unlock(&l->lock);
      pthread_mutex_lock(&l->lock);
      if(o < l->first) {
        enum sub_gap why = removed_after(l, o - 1);
        if(why) { /* what was kept is older than the gap: forget it */
          for(size_t i = 0; i < (seen < max ? seen : max); i++)
            sub_event_unref(keep[i]);
          seen = 0;
          topic_expired = false;
          r->gap = why;
          r->oldest = first_event_from(l, l->first, hwm);
        }
        o = l->first;
        if(o > hwm)
          break;
      }
    }
    struct slot *s = slot_at(l, o);
    struct sub_event *ev = s->ev;
    if(!ev)
      continue;
    if(q->match && !q->match(q->arg, ev))
      continue;
    if(topic_too_old(s, now)) {
      topic_expired = true; /* the topic's own retention is past */
      continue;
    }
    if(!q->newest && seen == max) {
      r->more = true;
      last = o - 1;
      break;
    }
    if(q->newest && seen >= max)
      sub_event_unref(keep[seen % max]);
    keep[seen % max] = sub_event_ref(ev);
    seen++;
  }
  pthread_mutex_unlock(&l->lock);
  r->last = last;
  size_t n = seen < max ? seen : max;
  if(q->newest && seen > max) {
    /* the ring's oldest kept is at seen % max: put them in offset order */
    struct sub_event **ord = malloc(max * sizeof(*ord));
    if(!ord) {
      for(size_t i = 0; i < max; i++)
        sub_event_unref(keep[i]);
      free(keep);
      return -1;
    }
    for(size_t i = 0; i < max; i++)
      ord[i] = keep[(seen + i) % max];
    free(keep);
    keep = ord;
    r->gap = SUB_GAP_LIMIT;
    r->oldest = keep[0]->offset;
  } else if(topic_expired && !r->gap) {
    r->gap = SUB_GAP_EXPIRED;
    r->oldest = n ? keep[0]->offset : hwm + 1;
  }
  r->ev = keep;
  r->n = n;
  return 0;
}

uint64_t sub_log_after_time(struct sub_log *l, uint64_t ms, enum sub_gap *gap)
{
  pthread_mutex_lock(&l->lock);
  evict_locked(l, now_ms(l));
  *gap = SUB_GAP_NONE;
  if(l->removed_max_ms >= ms && l->nruns)
    *gap = l->runs[l->nruns - 1].reason;
  /* the first slot at or after ms, by binary search (times are monotonic
   * over offsets; a dropped slot keeps its neighbours' order, 0 counts low) */
  uint64_t lo = l->first, hi = l->pushed + 1;
  while(lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    struct slot *s = slot_at(l, mid);
    uint64_t t = s->ms;
    if(!s->ev) { /* a hole: use the time of the next event, if any */
      uint64_t k = mid + 1;
      while(k <= l->pushed && !slot_at(l, k)->ev)
        k++;
      t = k <= l->pushed ? slot_at(l, k)->ms : UINT64_MAX;
    }
    if(t < ms)
      lo = mid + 1;
    else
      hi = mid;
  }
  pthread_mutex_unlock(&l->lock);
  return lo - 1;
}

/* Whether the slot's event is retained at now: the topic's own retention
 * too, so that what a read calls expired is not served either. */
static bool retained(const struct sub_log *l, const struct slot *s, uint64_t now)
{
  return s->ev && !too_old(l, s, now) && !topic_too_old(s, now);
}

struct sub_event *sub_log_get(struct sub_log *l, uint64_t offset)
{
  struct sub_event *ev = NULL;
  pthread_mutex_lock(&l->lock);
  if(offset >= l->first && offset <= l->pushed) {
    struct slot *s = slot_at(l, offset);
    if(retained(l, s, now_ms(l)))
      ev = sub_event_ref(s->ev);
  }
  pthread_mutex_unlock(&l->lock);
  return ev;
}

struct sub_event *sub_log_latest(struct sub_log *l, const char *topic, size_t len, uint64_t from)
{
  struct sub_event *ev = NULL;
  pthread_mutex_lock(&l->lock);
  uint64_t now = now_ms(l);
  for(uint64_t o = from < l->pushed ? from : l->pushed; o >= l->first && o > 0; o--) {
    struct slot *s = slot_at(l, o);
    if(!s->ev || s->ev->topic_len != len || memcmp(s->ev->topic, topic, len) != 0)
      continue;
    if(retained(l, s, now)) /* else older ones of the topic are gone too */
      ev = sub_event_ref(s->ev);
    break;
  }
  pthread_mutex_unlock(&l->lock);
  return ev;
}

struct sub_event *sub_log_find(struct sub_log *l, const char *id, uint64_t ms)
{
  enum sub_gap gap;
  uint64_t o = sub_log_after_time(l, ms, &gap) + 1;
  struct sub_event *ev = NULL;
  pthread_mutex_lock(&l->lock);
  if(o < l->first)
    o = l->first;
  /* an event's log time is at least its own time, and later by the little
   * a publish waits between its id and its offset */
  for(uint64_t end = o + 4096; o < l->next && o < end; o++) { /* pushed or not */
    struct slot *s = slot_at(l, o);
    if(s->ev && s->ms > ms + 1000)
      break;
    if(s->ev && memcmp(s->ev->id, id, SUB_ID_LEN) == 0) {
      ev = sub_event_ref(s->ev);
      break;
    }
  }
  pthread_mutex_unlock(&l->lock);
  return ev;
}

void sub_log_stats(struct sub_log *l, struct sub_log_stats *st)
{
  pthread_mutex_lock(&l->lock);
  st->first = l->first;
  st->last = l->next - 1;
  st->events = l->events;
  st->bytes = l->bytes;
  st->pushed = l->pushed;
  st->next = l->next;
  pthread_mutex_unlock(&l->lock);
}

/* ---- cursors ---- */

size_t sub_cursor_format(const char *epoch, uint64_t offset, char out[SUB_CURSOR_MAX + 1])
{
  char digits[21];
  int n = 0;
  do {
    digits[n++] = (char)('0' + offset % 10);
    offset /= 10;
  } while(offset);
  memcpy(out, epoch, SUB_EPOCH_LEN);
  size_t len = SUB_EPOCH_LEN;
  out[len++] = ':';
  while(n)
    out[len++] = digits[--n];
  out[len] = '\0';
  return len;
}

int sub_cursor_parse(const char *s, size_t len, char epoch[SUB_EPOCH_LEN + 1], uint64_t *offset)
{
  if(len < SUB_EPOCH_LEN + 2 || len > SUB_CURSOR_MAX || s[SUB_EPOCH_LEN] != ':')
    return -1;
  for(int i = 0; i < SUB_EPOCH_LEN; i++)
    if(!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
      return -1;
  const char *d = s + SUB_EPOCH_LEN + 1;
  size_t nd = len - SUB_EPOCH_LEN - 1;
  if(nd > 1 && d[0] == '0')
    return -1;
  uint64_t v = 0;
  for(size_t i = 0; i < nd; i++) {
    if(d[i] < '0' || d[i] > '9')
      return -1;
    unsigned dig = (unsigned)(d[i] - '0');
    if(v > (UINT64_MAX - dig) / 10)
      return -1;
    v = v * 10 + dig;
  }
  memcpy(epoch, s, SUB_EPOCH_LEN);
  epoch[SUB_EPOCH_LEN] = '\0';
  *offset = v;
  return 0;
}

/* Reads exactly n digits at s[*i]. Returns -1 when they are not there. */
static int digits(const char *s, size_t len, size_t *i, int n, int *out)
{
  int v = 0;
  for(int k = 0; k < n; k++, (*i)++) {
    if(*i >= len || s[*i] < '0' || s[*i] > '9')
      return -1;
    v = v * 10 + (s[*i] - '0');
  }
  *out = v;
  return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int sub_time_parse(const char *s, size_t len, uint64_t *ms)
{
  size_t i = 0;
  int y, mo, d, h, mi, se;
  if(digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || digits(s, len, &i, 2, &mo) ||
     i >= len || s[i++] != '-' || digits(s, len, &i, 2, &d) || i >= len ||
     (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
    return -1;
  i++;
  if(digits(s, len, &i, 2, &h) || i >= len || s[i++] != ':' || digits(s, len, &i, 2, &mi) ||
     i >= len || s[i++] != ':' || digits(s, len, &i, 2, &se))
    return -1;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if(y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
    return -1;
  if(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return -1;
  int64_t frac_ms = 0;
  if(i < len && s[i] == '.') {
    i++;
    size_t start = i;
    int scale = 100;
    while(i < len && s[i] >= '0' && s[i] <= '9') {
      frac_ms += (s[i] - '0') * scale;
      scale /= 10;
      i++;
    }
    if(i == start || i - start > 9)
      return -1;
  }
  int64_t off_s = 0;
  if(i < len && (s[i] == 'Z' || s[i] == 'z'))
    i++;
  else if(i < len && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i++] == '-' ? -1 : 1, oh, om;
    if(digits(s, len, &i, 2, &oh) || i >= len || s[i++] != ':' || digits(s, len, &i, 2, &om) ||
       oh > 23 || om > 59)
      return -1;
    off_s = sign * (oh * 3600 + om * 60);
  } else
    return -1;
  if(i != len)
    return -1;
  int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (se > 59 ? 59 : se) - off_s;
  if(t < 0)
    return -1;
  *ms = (uint64_t)t * 1000 + (uint64_t)frac_ms;
  return 0;
}
