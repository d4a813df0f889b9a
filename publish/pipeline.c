#include "pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "id.h"

struct pub_pipeline {
  struct pub_config cfg;
  struct pub_claims *claims;
};

const char *pub_status_code(enum pub_status s)
{
  switch(s) {
  case PUB_ACCEPTED: return "ok";
  case PUB_UNKNOWN_TOPIC: return "unknown_topic";
  case PUB_SCHEMA_VIOLATION: return "schema_violation";
  case PUB_INVALID_TOPIC: return "invalid_topic";
  case PUB_IDEM_CONFLICT: return "idempotency_conflict";
  case PUB_IDEM_IN_PROGRESS: return "idempotency_in_progress";
  case PUB_OVERLOADED: return "overloaded";
  case PUB_TOO_MANY_TOPICS: return "too_many_topics";
  case PUB_STORE_FULL: return "store_full";
  case PUB_STORE_FAILED: return "store_failed";
  case PUB_NO_MEMORY: return "internal_error";
  }
  return "internal_error";
}

struct pub_pipeline *pub_pipeline_new(const struct pub_config *cfg)
{
  struct pub_pipeline *pp = calloc(1, sizeof(*pp));
  if(!pp)
    return NULL;
  pp->cfg = *cfg;
  pp->claims = pub_claims_new();
  if(!pp->claims) {
    free(pp);
    return NULL;
  }
  return pp;
}

void pub_pipeline_free(struct pub_pipeline *pp)
{
  if(!pp)
    return;
  pub_claims_free(pp->claims);
  free(pp);
}

void pub_request_clear(struct pub_request *r)
{
  json_decref(r->errors);
  r->errors = NULL;
}

/* Sets an error outcome. Returns PUB_DONE. */
static enum pub_state fail(struct pub_request *r, enum pub_status s, const char *msg)
{
  r->status = s;
  snprintf(r->message, sizeof(r->message), "%s", msg);
  return PUB_DONE;
}

static json_t *errors_json(const struct schema_result *res)
{
  json_t *arr = json_array();
  for(size_t i = 0; arr && i < res->count; i++) {
    const struct schema_error *e = &res->errors[i];
    if(json_array_append_new(arr,
                             json_pack("{s:s, s:s, s:s}", "instance_path", e->instance_path,
                                       "keyword_path", e->keyword_path, "message", e->message))) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

/* The topic rules. Returns true when they refuse the publish (r answered). */
static bool refused_by_rules(struct pub_pipeline *pp, struct pub_request *r)
{
  const struct pub_rules *rules = &pp->cfg.rules;
  if(!rules->check || !r->data_value || !rules->active(rules->rules))
    return false;
  struct schema_result res;
  switch(rules->check(rules->rules, r->topic, r->data_value, &res, &r->rule)) {
  case PUB_VERDICT_OK: return false;
  case PUB_VERDICT_UNKNOWN_TOPIC:
    fail(r, PUB_UNKNOWN_TOPIC,
         "no topic rule matches this topic (schemas.unmatched_topics is \"reject\")");
    return true;
  case PUB_VERDICT_INVALID: break;
  }
  r->errors = errors_json(&res);
  if(!r->errors) {
    fail(r, PUB_NO_MEMORY, "out of memory");
    return true;
  }
  r->errors_truncated = res.truncated;
  r->status = PUB_SCHEMA_VIOLATION;
  snprintf(r->message, sizeof(r->message), "data does not match the schema of topic rule \"%s\"",
           r->rule);
  return true;
}

static void release_claim(struct pub_pipeline *pp, struct pub_request *r)
{
  if(r->claimed) {
    pub_claims_release(pp->claims, r->idem_scoped);
    r->claimed = false;
  }
}

/* The first answer's offset and cursor, from the history log while it still
 * holds the event (the key's record keeps id, seq and time). */
static void replayed_offset(struct pub_pipeline *pp, struct pub_request *r)
{
  struct sub_log *log = sub_engine_history(pp->cfg.engine);
  struct sub_event *ev = log ? sub_log_find(log, r->pub.id, r->pub.ms) : NULL;
  if(ev) {
    r->pub.offset = ev->offset;
    r->pub.epoch = ev->epoch;
  }
  sub_event_unref(ev);
}

/* Idempotency: claims the key and looks it up. Returns true when that
 * answered the publish (a replay, a conflict or an error). */
static bool answered_by_key(struct pub_pipeline *pp, struct pub_request *r)
{
  if(pub_idem_scoped_key(r->idem_scope, r->idem_key, r->idem_scoped)) {
    fail(r, PUB_NO_MEMORY, "the caller's name is too long to scope an Idempotency-Key");
    return true;
  }
  if(pub_idem_hash(r->topic, r->topic_len, r->data, r->data_len, r->hold.idem_hash)) {
    fail(r, PUB_NO_MEMORY, "out of memory");
    return true;
  }
  if(!pub_claims_take(pp->claims, r->idem_scoped)) {
    fail(r, PUB_IDEM_IN_PROGRESS,
         "a request with this Idempotency-Key is in progress; retry later");
    return true;
  }
  r->claimed = true;
  const struct pub_idem_store *st = &pp->cfg.idem;
  unsigned char hash[PUB_IDEM_HASH_LEN];
  int found = st->lookup ? st->lookup(st->arg, r->idem_scoped,
                                      (int64_t)sub_now_ms() - pp->cfg.idempotency_ttl_ms, hash,
                                      &r->pub)
                         : -1;
  if(found == 0)
    return false; /* a new key: it stays claimed until the publish is stored */
  release_claim(pp, r);
  if(found < 0)
    fail(r, PUB_STORE_FAILED, "the webhook store could not be read");
  else if(memcmp(hash, r->hold.idem_hash, sizeof(hash)) != 0)
    fail(r, PUB_IDEM_CONFLICT, "this Idempotency-Key was used with a different topic or body");
  else if(!r->pub.id[0])
    fail(r, PUB_STORE_FAILED, "the webhook store could not be read");
  else {
    r->status = PUB_ACCEPTED;
    r->replayed = true;
    replayed_offset(pp, r);
  }
  return true;
}

/* Maps what the engine (or, later, the holder) answered. */
static enum pub_state engine_answer(struct pub_request *r, enum sub_err e)
{
  switch(e) {
  case SUB_OK: r->status = PUB_ACCEPTED; return PUB_DONE;
  case SUB_EOVERLOADED:
    return fail(r, PUB_OVERLOADED, "the server is falling behind; retry later");
  case SUB_ETOOMANYTOPICS:
    return fail(r, PUB_TOO_MANY_TOPICS, "the topic table is full (broker.max_topics)");
  case SUB_EINVAL: return fail(r, PUB_INVALID_TOPIC, "invalid topic");
  case SUB_ESTOREFULL:
    return fail(r, PUB_STORE_FULL, "the webhook store is full (webhooks.store_max_bytes or the disk)");
  case SUB_ESTORE:
    return fail(r, PUB_STORE_FAILED, "the webhook store could not write the event; retry later");
  case SUB_ENOMEM: break;
  }
  return fail(r, PUB_NO_MEMORY, "out of memory");
}

/* The holder finished a held publish (its thread): SUB_OK, SUB_ESTOREFULL
 * or SUB_ESTORE, mapped as the engine's own answers are. */
static void hold_done(struct sub_hold_req *h, enum sub_err result)
{
  struct pub_request *r = (struct pub_request *)((char *)h - offsetof(struct pub_request, hold));
  engine_answer(r, result);
  release_claim(r->pp, r);
  r->done(r); /* r may be gone now */
}

enum pub_state pub_publish(struct pub_pipeline *pp, struct pub_request *r)
{
  r->status = PUB_ACCEPTED;
  r->replayed = false;
  r->message[0] = '\0';
  r->rule = NULL;
  r->errors = NULL;
  r->errors_truncated = false;
  r->pp = pp;
  r->claimed = false;
  r->hold = (struct sub_hold_req){.done = hold_done};
  if(refused_by_rules(pp, r))
    return PUB_DONE;
  if(r->idem_key && answered_by_key(pp, r))
    return PUB_DONE;
  r->hold.idem_key = r->idem_key ? r->idem_scoped : NULL;
  struct sub_publish p = {
      .topic = r->topic,
      .topic_len = r->topic_len,
      .data = r->data,
      .data_len = r->data_len,
      .hold = r->idem_key || (pp->cfg.durable.wants && pp->cfg.durable.wants(pp->cfg.durable.arg,
                                                                              r->topic)),
      .ctx = &r->hold,
  };
  if(pp->cfg.rules.history)
    pp->cfg.rules.history(pp->cfg.rules.rules, r->topic, &p.no_history, &p.max_age_ms);
  bool held = false;
  enum sub_err e = sub_engine_publish(pp->cfg.engine, &p, &r->pub, &held);
  if(e == SUB_OK && held)
    return PUB_PENDING; /* hold_done finishes it (maybe already has) */
  release_claim(pp, r);
  return engine_answer(r, e);
}

struct waiter {
  pthread_mutex_t m;
  pthread_cond_t c;
  bool done;
};

static void waiter_done(struct pub_request *r)
{
  struct waiter *w = r->arg;
  pthread_mutex_lock(&w->m);
  w->done = true;
  pthread_cond_signal(&w->c);
  pthread_mutex_unlock(&w->m);
}

void pub_publish_wait(struct pub_pipeline *pp, struct pub_request *r)
{
  struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
  r->done = waiter_done;
  r->arg = &w;
  if(pub_publish(pp, r) == PUB_PENDING) {
    pthread_mutex_lock(&w.m);
    while(!w.done)
      pthread_cond_wait(&w.c, &w.m);
    pthread_mutex_unlock(&w.m);
  }
  pthread_mutex_destroy(&w.m);
  pthread_cond_destroy(&w.c);
}
