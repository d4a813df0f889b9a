#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "fanout.h"
#include "eventlog.h"
#include "topic.h"

void gw_session_init(struct gw_session *s, struct gw_session_env *env, struct gw_identity *id,
                     int64_t now_us)
{
  const struct gw_config *cfg = env->cfg;
  memset(s, 0, sizeof(*s));
  s->env = env;
  s->last_rx_us = now_us;
  gw_bucket_init(&s->bucket, cfg->client_rate_per_s, cfg->client_rate_burst, now_us);
  if(id) {
    s->id = *id; /* owned by the session now */
    s->authed = true;
  }
  const struct gw_grants *anon = gw_auth_anonymous(env->auth);
  if(!s->authed && !anon->nsubscribe && !anon->npublish)
    s->auth_deadline_us = now_us + (int64_t)cfg->auth_timeout_ms * 1000;
}

/* Removes subscription i (the last one takes its place). */
static void unsubscribe_at(struct gw_session *s, int i)
{
  struct gw_session_env *env = s->env;
  size_t len = strlen(s->patterns[i]);
  sub_index_remove(env->index, s->patterns[i], len, &s->sub);
  if(env->fanout)
    sub_fanout_interest(env->fanout, env->worker, s->patterns[i], len, -1);
  free(s->patterns[i]);
  s->npatterns--;
  s->patterns[i] = s->patterns[s->npatterns];
  s->covered[i] = s->covered[s->npatterns];
}

void gw_session_clear(struct gw_session *s)
{
  while(s->npatterns)
    unsubscribe_at(s, s->npatterns - 1);
  free(s->patterns);
  s->patterns = NULL;
  free(s->covered);
  s->covered = NULL;
  if(s->authed)
    gw_identity_clear(&s->id);
  s->authed = false;
}

const struct gw_grants *gw_session_grants(const struct gw_session *s)
{
  return s->authed ? &s->id.grants : gw_auth_anonymous(s->env->auth);
}

const char *gw_session_who(const struct gw_session *s)
{
  return s->authed && s->id.sub[0] ? s->id.sub : "-";
}

static int find_pattern(const struct gw_session *s, const char *p)
{
  for(int i = 0; i < s->npatterns; i++)
    if(strcmp(s->patterns[i], p) == 0)
      return i;
  return -1;
}

/* Makes room for the session's subscriptions. Returns 0 or -1. */
static int patterns_alloc(struct gw_session *s)
{
  int max = s->env->cfg->client_max_subscriptions;
  if(!s->patterns && !(s->patterns = calloc((size_t)max, sizeof(*s->patterns))))
    return -1;
  if(!s->covered && !(s->covered = calloc((size_t)max, sizeof(*s->covered))))
    return -1;
  return 0;
}

/* The history log's high-water mark now, read under the lock the pushes
 * take (0: no history). */
static uint64_t pushed_now(const struct gw_session_env *env)
{
  struct sub_log *log = env->engine ? sub_engine_history(env->engine) : NULL;
  return log ? sub_log_pushed(log) : 0;
}

enum gw_sub_result gw_session_subscribe(struct gw_session *s, const char *pattern, size_t len)
{
  struct gw_session_env *env = s->env;
  if(find_pattern(s, pattern) >= 0)
    return GW_SUB_EXISTS;
  if(s->npatterns >= env->cfg->client_max_subscriptions)
    return GW_SUB_FULL;
  if(patterns_alloc(s))
    return GW_SUB_NOMEM;
  char *p = strdup(pattern);
  if(!p)
    return GW_SUB_NOMEM;
  if(sub_index_add(env->index, p, len, &s->sub)) {
    free(p);
    return GW_SUB_NOMEM;
  }
  if(env->fanout) /* before the ack */
    sub_fanout_interest(env->fanout, env->worker, p, len, 1);
  /* read after the interest is counted, under the log's lock: every
   * event above it was pushed seeing the interest */
  s->covered[s->npatterns] = pushed_now(env);
  s->patterns[s->npatterns++] = p;
  return GW_SUB_ADDED;
}

struct replay_filter {
  const struct gw_session *s;
  const char *pattern;
};

/* A replayed event: it matches the new pattern, and no other subscription
 * of the session sent it already. */
static bool replay_match(void *arg, const struct sub_event *ev)
{
  const struct replay_filter *f = arg;
  if(!sub_pattern_matches(f->pattern, ev->topic))
    return false;
  for(int i = 0; i < f->s->npatterns; i++)
    if(ev->offset > f->s->covered[i] && sub_pattern_matches(f->s->patterns[i], ev->topic))
      return false;
  return true;
}

/* About the bytes an event's frame takes in a send queue: the event JSON
 * around the data (GW_EVENT_HEAD_MAX bounds it; this is its usual size) and
 * the frame's header. */
static size_t frame_estimate(const struct sub_event *ev)
{
  return 200 + ev->topic_len + ev->data_len;
}

/* Keeps the newest events of the replay whose frames fit in max_bytes (0:
 * all), reporting the cut as a limit gap from the first kept. */
static void trim_to_bytes(struct sub_log_result *r, size_t max_bytes)
{
  if(!max_bytes || !r->n)
    return;
  size_t bytes = 0, keep = 0;
  while(keep < r->n && bytes + frame_estimate(r->ev[r->n - 1 - keep]) <= max_bytes)
    bytes += frame_estimate(r->ev[r->n - 1 - keep++]);
  if(keep == r->n)
    return;
  size_t cut = r->n - keep;
  r->oldest = keep ? r->ev[cut]->offset : r->ev[r->n - 1]->offset + 1;
  for(size_t i = 0; i < cut; i++)
    sub_event_unref(r->ev[i]);
  memmove(r->ev, r->ev + cut, keep * sizeof(*r->ev));
  r->n = keep;
  r->gap = SUB_GAP_LIMIT;
}

enum gw_resume_result gw_session_resume(struct gw_session *s, const char *pattern, size_t len,
                                        const struct gw_since_req *q, struct gw_resume *res,
                                        struct sub_log_result *replay)
{
  struct gw_session_env *env = s->env;
  memset(replay, 0, sizeof(*replay));
  struct sub_log *log = env->engine ? sub_engine_history(env->engine) : NULL;
  if(!log)
    return GW_RESUME_NO_HISTORY;
  if(find_pattern(s, pattern) >= 0)
    return GW_RESUME_EXISTS;
  if(s->npatterns >= env->cfg->client_max_subscriptions)
    return GW_RESUME_FULL;
  bool same_epoch = q->kind != GW_SINCE_CURSOR || strcmp(q->epoch, sub_log_epoch(log)) == 0;
  if(same_epoch && q->kind == GW_SINCE_CURSOR && q->offset >= sub_log_next(log))
    return GW_RESUME_BAD_CURSOR;
  char *p = patterns_alloc(s) ? NULL : strdup(pattern);
  if(!p)
    return GW_RESUME_NOMEM;

  /* 1. counted, so that every event pushed after the snapshot comes */
  if(env->fanout)
    sub_fanout_interest(env->fanout, env->worker, p, len, 1);
  /* 2. the mark, and what was queued up to it, delivered as before */
  struct sub_batch batch = {0};
  uint64_t hwm = sub_engine_snapshot(env->engine, env->worker, &batch);
  if(env->drain)
    env->drain(env->drain_arg, &batch);
  sub_batch_free(&batch);

  /* 3. what to replay: (after, hwm] */
  enum sub_gap gap = SUB_GAP_NONE;
  uint64_t after = 0;
  if(!same_epoch)
    gap = SUB_GAP_EPOCH_CHANGED;
  else if(q->kind == GW_SINCE_CURSOR)
    after = q->offset;
  else
    after = sub_log_after_time(log, q->ms, &gap);
  if(after > hwm)
    after = hwm; /* accepted, not yet delivered: it comes live */
  struct replay_filter f = {s, p};
  struct sub_log_query lq = {.after = after,
                             .upto = hwm ? hwm : 0,
                             .match = replay_match,
                             .arg = &f,
                             .max = (size_t)env->cfg->history_max_replay,
                             .newest = true};
  if(!hwm) { /* nothing was ever pushed: nothing to replay */
    memset(replay, 0, sizeof(*replay));
  } else if(sub_log_read(log, &lq, replay)) {
    if(env->fanout)
      sub_fanout_interest(env->fanout, env->worker, p, len, -1);
    free(p);
    return GW_RESUME_NOMEM;
  }
  trim_to_bytes(replay, q->max_bytes);
  memset(res, 0, sizeof(*res));
  res->from = after;
  res->to = hwm;
  res->replayed = replay->n;
  if(gap == SUB_GAP_NONE)
    gap = replay->gap;
  if(gap) {
    res->gap = gap;
    res->oldest = replay->gap ? replay->oldest : replay->n ? replay->ev[0]->offset : hwm + 1;
  }
  if(gap && q->gap_fail) {
    sub_log_result_clear(replay);
    if(env->fanout)
      sub_fanout_interest(env->fanout, env->worker, p, len, -1);
    free(p);
    return GW_RESUME_GAP;
  }
  /* 4. live from here: events above the mark come through the index */
  if(sub_index_add(env->index, p, len, &s->sub)) {
    sub_log_result_clear(replay);
    if(env->fanout)
      sub_fanout_interest(env->fanout, env->worker, p, len, -1);
    free(p);
    return GW_RESUME_NOMEM;
  }
  s->covered[s->npatterns] = gap ? (res->oldest ? res->oldest - 1 : 0) : after;
  s->patterns[s->npatterns++] = p;
  return GW_RESUME_OK;
}

bool gw_session_unsubscribe(struct gw_session *s, const char *pattern)
{
  int i = find_pattern(s, pattern);
  if(i < 0)
    return false;
  unsubscribe_at(s, i);
  return true;
}

void gw_session_authenticate(struct gw_session *s, struct gw_identity *id)
{
  if(s->authed)
    gw_identity_clear(&s->id);
  s->id = *id; /* owned by the session now */
  s->authed = true;
  s->auth_deadline_us = 0;
}

int gw_session_revoke(struct gw_session *s, void (*dropped)(void *arg, const char *pattern),
                      void *arg)
{
  int n = 0;
  for(int i = 0; i < s->npatterns;) {
    if(gw_grants_can_subscribe(gw_session_grants(s), s->patterns[i])) {
      i++;
      continue;
    }
    dropped(arg, s->patterns[i]);
    unsubscribe_at(s, i);
    n++;
  }
  return n;
}

enum gw_rate_result gw_session_rate(struct gw_session *s, int64_t now_us, int64_t *wait_ms)
{
  *wait_ms = gw_bucket_take(&s->bucket, now_us);
  if(!*wait_ms) {
    /* a flood that lets one message through now and then goes on counting */
    if(s->refused && now_us - s->last_refused_us > 1000000)
      s->refused = 0;
    return GW_RATE_OK;
  }
  s->last_refused_us = now_us;
  if(++s->refused >= s->env->cfg->client_rate_close_after)
    return GW_RATE_CLOSE;
  return GW_RATE_REFUSED;
}

void gw_session_received(struct gw_session *s, int64_t now_us)
{
  s->last_rx_us = now_us;
  s->ping_sent = false;
}

bool gw_session_auth_overdue(const struct gw_session *s, int64_t now_us)
{
  return s->auth_deadline_us && !s->authed && now_us >= s->auth_deadline_us;
}

bool gw_session_expired(const struct gw_session *s, long long wall)
{
  return s->authed && wall - s->env->cfg->auth_leeway_s > s->id.exp;
}

bool gw_session_idle(const struct gw_session *s, int64_t now_us)
{
  int64_t idle_us = (int64_t)s->env->cfg->client_idle_timeout_s * 1000000;
  return idle_us && now_us - s->last_rx_us >= idle_us;
}

bool gw_session_ping_due(struct gw_session *s, int64_t now_us)
{
  int64_t ping_us = (int64_t)s->env->cfg->client_ping_interval_s * 1000000;
  if(!ping_us || s->ping_sent || now_us - s->last_rx_us < ping_us)
    return false;
  s->ping_sent = true;
  return true;
}
