#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "fanout.h"

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
  s->patterns[i] = s->patterns[--s->npatterns];
}

void gw_session_clear(struct gw_session *s)
{
  while(s->npatterns)
    unsubscribe_at(s, s->npatterns - 1);
  free(s->patterns);
  s->patterns = NULL;
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

enum gw_sub_result gw_session_subscribe(struct gw_session *s, const char *pattern, size_t len)
{
  struct gw_session_env *env = s->env;
  if(find_pattern(s, pattern) >= 0)
    return GW_SUB_EXISTS;
  int max = env->cfg->client_max_subscriptions;
  if(s->npatterns >= max)
    return GW_SUB_FULL;
  if(!s->patterns && !(s->patterns = calloc((size_t)max, sizeof(*s->patterns))))
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
  s->patterns[s->npatterns++] = p;
  return GW_SUB_ADDED;
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
