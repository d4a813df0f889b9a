/* The webhooks service: the endpoint registry, publishing through the
 * durable queue (holding events in the engine until they are committed,
 * with their idempotency keys), and the endpoints API. The dispatcher thread that
 * commits and sends lives in dispatch.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventlog.h"
#include "hooks_internal.h"
#include "id.h"
#include "topic.h"
#include "util/clock.h"
#include "util/uuid7.h"

#define ENDPOINT_MAX_TOPICS 100
#define ENDPOINT_URL_MAX 2048
#define ENDPOINT_DESC_MAX 1024
#define ENDPOINTS_MAX 10000
#define PAGE_DEFAULT 50
#define PAGE_MAX 250

void hook_log(struct hook_service *h, enum util_log_level level, const char *event, const char *fmt, ...)
{
  if(!h->cfg.log || level < h->cfg.log_level)
    return;
  char buf[768];
  buf[0] = '\0';
  if(fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
  }
  h->cfg.log(level, event, fmt ? buf : NULL);
}

struct blob *hook_blob_new(const char *data, size_t len)
{
  struct blob *b = malloc(sizeof(*b) + len + 1);
  if(!b)
    return NULL;
  atomic_init(&b->refs, 1);
  b->len = len;
  memcpy(b->data, data, len);
  b->data[len] = '\0';
  return b;
}

struct blob *hook_blob_ref(struct blob *b)
{
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return b;
}

void hook_blob_unref(struct blob *b)
{
  if(b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
    free(b);
}

/* ---- answers ---- */

static int api_error(json_t **out, int status, const char *code, const char *field, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static int api_error(json_t **out, int status, const char *code, const char *field, const char *fmt,
                     ...)
{
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
  if(e && field)
    json_object_set_new(e, "field", json_string(field));
  *out = e ? json_pack("{s:o}", "error", e) : NULL;
  return status;
}

/* Answers a failure e of the API's store (logging why). Returns 503. */
static int db_error(struct hook_service *h, json_t **out, enum hook_store_err e)
{
  struct hook_store *s = h->api_store;
  hook_log(h, UTIL_LOG_ERROR, "store_failed", "error=\"%s\"", s->ops->errmsg(s));
  if(e == HOOK_STORE_FULL)
    return api_error(out, 503, "store_full", NULL, "the webhook store is full");
  return api_error(out, 503, "store_failed", NULL, "the webhook store failed: %s",
                   s->ops->errstr(s));
}

static void time_iso(int64_t ms, char out[SUB_TIME_LEN + 1])
{
  sub_time_format((uint64_t)ms, out);
}

/* ---- the registry ---- */

void hook_endpoint_free(struct endpoint *ep)
{
  if(!ep)
    return;
  for(size_t i = 0; i < ep->qlen; i++)
    hook_blob_unref(ep->q[(ep->qhead + i) % HOOK_READY_MAX].body);
  free(ep->url);
  free(ep->description);
  json_decref(ep->topics);
  json_decref(ep->indexed);
  OPENSSL_cleanse(ep->secret, sizeof(ep->secret));
  OPENSSL_cleanse(ep->old_secret, sizeof(ep->old_secret));
  free(ep);
}

struct endpoint *hook_endpoint_find_locked(struct hook_service *h, const char *id)
{
  for(size_t i = 0; i < h->neps; i++)
    if(!h->eps[i]->deleted && strcmp(h->eps[i]->id, id) == 0)
      return h->eps[i];
  return NULL;
}

/* True when ep gets the events of its topics now. */
static bool endpoint_live(const struct endpoint *ep)
{
  return ep->enabled && !ep->deleted && !ep->deleting;
}

/* True when topics[i] repeats an earlier pattern: the index takes each
 * (pattern, endpoint) pair once. */
static bool pattern_repeated(const json_t *topics, size_t i)
{
  const char *p = json_string_value(json_array_get(topics, i));
  for(size_t j = 0; j < i; j++)
  {
    const char *q = json_string_value(json_array_get(topics, j));
    if(p && q && strcmp(p, q) == 0)
      return true;
  }
  return false;
}

/* Removes the first n patterns of topics (under ep) from the index. */
static void index_remove(struct hook_service *h, struct endpoint *ep, const json_t *topics,
                         size_t n)
{
  for(size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(topics, i);
    if(!pattern_repeated(topics, i))
      sub_index_remove(h->index, json_string_value(v), json_string_length(v), &ep->sub);
  }
}

int hook_endpoint_reindex_locked(struct hook_service *h, struct endpoint *ep)
{
  bool live = endpoint_live(ep);
  if(live && ep->indexed == ep->topics)
    return 0;
  if(ep->indexed) {
    index_remove(h, ep, ep->indexed, json_array_size(ep->indexed));
    json_decref(ep->indexed);
    ep->indexed = NULL;
  }
  if(!live || !ep->topics)
    return 0;
  size_t n = json_array_size(ep->topics);
  for(size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(ep->topics, i);
    if(pattern_repeated(ep->topics, i))
      continue;
    if(sub_index_add(h->index, json_string_value(v), json_string_length(v), &ep->sub)) {
      index_remove(h, ep, ep->topics, i);
      return -1;
    }
  }
  ep->indexed = json_incref(ep->topics);
  return 0;
}

/* Adds ep to the registry and its patterns to the index. Returns 0, or -1
 * out of memory (ep in neither). */
static int registry_add_locked(struct hook_service *h, struct endpoint *ep)
{
  if(h->neps == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 16;
    struct endpoint **n = realloc(h->eps, cap * sizeof(*n));
    if(!n)
      return -1;
    h->eps = n;
    h->cap = cap;
  }
  if(hook_endpoint_reindex_locked(h, ep))
    return -1;
  ep->more = true; /* its pending deliveries, if any, are in the store */
  h->eps[h->neps++] = ep;
  atomic_store(&h->any_eps, true); /* endpoints are flagged deleted, never removed */
  return 0;
}

/* ---- endpoint fields: validation shared by the API and the config ---- */

/* Checks every address `host` resolves to against the target guard.
 * Returns NULL when fine, else why not (in buf). */
static const char *check_host(struct hook_service *h, const char *host, char *buf, size_t n)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  char bare[256];
  size_t len = strlen(host);
  if(len >= 2 && host[0] == '[' && host[len - 1] == ']') { /* an IPv6 literal */
    snprintf(bare, sizeof(bare), "%.*s", (int)(len - 2), host + 1);
    host = bare;
  }
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if(rc && h->starting) {
    /* A declared endpoint: a DNS hiccup at boot must not stop heraldd;
     * every attempt is checked on the address it connects to anyway. */
    hook_log(h, UTIL_LOG_WARN, "endpoint_host_unresolved", "host=%s error=\"%s\"", host,
             gai_strerror(rc));
    return NULL;
  }
  if(rc) {
    snprintf(buf, n, "the host \"%s\" does not resolve (%s)", host, gai_strerror(rc));
    return buf;
  }
  const char *why = NULL;
  for(struct addrinfo *a = res; a && !why; a = a->ai_next) {
    const char *cls = hook_guard_check(h->cfg.allowed, h->cfg.nallowed, a->ai_addr);
    if(cls) {
      char addr[INET6_ADDRSTRLEN] = "?";
      if(a->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, addr, sizeof(addr));
      else if(a->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, addr, sizeof(addr));
      snprintf(buf, n,
               "the host \"%s\" resolves to %s, a %s address: refused (webhooks.allowed_cidrs "
               "lets ranges through)",
               host, addr, cls);
      why = buf;
    }
  }
  freeaddrinfo(res);
  return why;
}

/* Returns NULL when `url` is an acceptable target, else why not (in buf). */
static const char *check_url(struct hook_service *h, const char *url, char *buf, size_t n)
{
  if(strlen(url) > ENDPOINT_URL_MAX)
    return "longer than 2048 bytes";
  CURLU *u = curl_url();
  if(!u)
    return "out of memory";
  const char *why = NULL;
  char *scheme = NULL, *host = NULL, *user = NULL, *frag = NULL;
  if(curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
    why = "not a valid absolute URL";
    goto out;
  }
  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_get(u, CURLUPART_HOST, &host, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
  if(!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
    why = "the scheme must be http or https";
  else if(!host || !*host)
    why = "the URL has no host";
  else if(user)
    why = "credentials in the URL are not accepted";
  else if(frag)
    why = "a fragment (#...) is not sent: remove it";
  else
    why = check_host(h, host, buf, n);
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_free(frag);
  curl_url_cleanup(u);
  return why;
}

/* Validates a topics array. Returns NULL or why not. */
static const char *check_topics(const json_t *v, char *buf, size_t n)
{
  if(!json_is_array(v) || json_array_size(v) == 0)
    return "must be a non-empty array of topic patterns";
  if(json_array_size(v) > ENDPOINT_MAX_TOPICS)
    return "at most 100 patterns";
  size_t i;
  json_t *p;
  json_array_foreach(v, i, p)
  {
    const char *why = NULL;
    if(!json_is_string(p)) {
      snprintf(buf, n, "element %zu is not a string", i);
      return buf;
    }
    if(!sub_pattern_valid(json_string_value(p), json_string_length(p), &why)) {
      snprintf(buf, n, "element %zu \"%.64s\": %s", i, json_string_value(p), why);
      return buf;
    }
  }
  return NULL;
}

/* Applies the fields of body to ep (creating: all required ones must be
 * there). Returns 0, or an HTTP status with *out set (422 naming a field). */
static int apply_fields(struct hook_service *h, struct endpoint *ep, const json_t *body,
                        bool creating, bool from_config, json_t **out)
{
  if(!json_is_object(body))
    return api_error(out, 400, "invalid_json", NULL, "the body must be a JSON object");
  char buf[512]; /* check_url names the host, an address and its class */
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)body, key, v)
  {
    if(strcmp(key, "url") == 0) {
      const char *why = json_is_string(v) ? check_url(h, json_string_value(v), buf, sizeof(buf))
                                          : "must be a string";
      if(why)
        return api_error(out, 422, "invalid_field", "url", "url: %s", why);
    } else if(strcmp(key, "topics") == 0) {
      const char *why = check_topics(v, buf, sizeof(buf));
      if(why)
        return api_error(out, 422, "invalid_field", "topics", "topics: %s", why);
    } else if(strcmp(key, "description") == 0) {
      if(!json_is_string(v) || json_string_length(v) > ENDPOINT_DESC_MAX)
        return api_error(out, 422, "invalid_field", "description",
                         "description: must be a string of at most 1024 bytes");
    } else if(strcmp(key, "secret") == 0) {
      struct hook_secret s;
      const char *why = "must be a string";
      if(!creating)
        return api_error(out, 422, "invalid_field", "secret",
                         "secret: cannot be changed here; use POST "
                         "/v1/webhooks/{id}/rotate-secret");
      if(!json_is_string(v) || hook_secret_parse(json_string_value(v), &s, &why))
        return api_error(out, 422, "invalid_field", "secret",
                         "secret: %s (whsec_ followed by base64 of 24 to 64 bytes)", why);
      OPENSSL_cleanse(&s, sizeof(s));
    } else if(strcmp(key, "enabled") == 0 || strcmp(key, "ordered") == 0) {
      if(!json_is_boolean(v))
        return api_error(out, 422, "invalid_field", key, "%s: must be true or false", key);
    } else if(!(from_config && strcmp(key, "id") == 0))
      return api_error(out, 422, "invalid_field", key, "%s: unknown field", key);
  }
  if(creating && !json_object_get(body, "url"))
    return api_error(out, 422, "invalid_field", "url", "url: required");
  if(creating && !json_object_get(body, "topics"))
    return api_error(out, 422, "invalid_field", "topics", "topics: required");
  if(from_config && !json_object_get(body, "secret"))
    return api_error(out, 422, "invalid_field", "secret",
                     "secret: required for an endpoint declared in the config");

  /* Everything checked: apply. */
  json_t *url = json_object_get(body, "url"), *topics = json_object_get(body, "topics"),
         *desc = json_object_get(body, "description"), *secret = json_object_get(body, "secret");
  char *nurl = url ? strdup(json_string_value(url)) : NULL;
  char *ndesc = desc ? strdup(json_string_value(desc)) : NULL;
  if((url && !nurl) || (desc && !ndesc)) {
    free(nurl);
    free(ndesc);
    return api_error(out, 500, "internal_error", NULL, "out of memory");
  }
  if(nurl) {
    free(ep->url);
    ep->url = nurl;
  }
  if(ndesc) {
    free(ep->description);
    ep->description = ndesc;
  }
  if(topics) {
    json_decref(ep->topics);
    ep->topics = json_deep_copy(topics);
  }
  if(secret)
    snprintf(ep->secret, sizeof(ep->secret), "%s", json_string_value(secret));
  if(json_object_get(body, "enabled")) {
    bool en = json_is_true(json_object_get(body, "enabled"));
    if(en && !ep->enabled) {
      ep->disabled_reason[0] = '\0';
      ep->failing_since_ms = 0;
    } else if(!en && ep->enabled)
      snprintf(ep->disabled_reason, sizeof(ep->disabled_reason), "by_request");
    ep->enabled = en;
  }
  if(json_object_get(body, "ordered"))
    ep->ordered = json_is_true(json_object_get(body, "ordered"));
  return 0;
}

static json_t *endpoint_json(const struct endpoint *ep, bool with_secret)
{
  char created[SUB_TIME_LEN + 1], updated[SUB_TIME_LEN + 1];
  time_iso(ep->created_ms, created);
  time_iso(ep->updated_ms, updated);
  json_t *o =
      json_pack("{s:s, s:s, s:O, s:s, s:b, s:b, s:s, s:s}", "id", ep->id, "url", ep->url, "topics",
                ep->topics, "description", ep->description ? ep->description : "", "enabled",
                ep->enabled, "ordered", ep->ordered, "created_at", created, "updated_at", updated);
  if(!o)
    return NULL;
  if(!ep->enabled && ep->disabled_reason[0])
    json_object_set_new(o, "disabled_reason", json_string(ep->disabled_reason));
  if(ep->from_config)
    json_object_set_new(o, "from_config", json_true());
  if(with_secret)
    json_object_set_new(o, "secret", json_string(ep->secret));
  return o;
}

/* Writes ep's row (insert or update). `state`: also its enabled/failing
 * state, which the dispatcher owns unless a request sets `enabled`. Called
 * with db_lock held (or at start). */
static enum hook_store_err endpoint_save(struct hook_store *s, const struct endpoint *ep,
                                         bool state)
{
  char *topics = json_dumps(ep->topics, JSON_COMPACT);
  if(!topics)
    return HOOK_STORE_FAILED;
  struct hook_store_endpoint r = {
      .id = ep->id,
      .url = ep->url,
      .topics = topics,
      .description = ep->description ? ep->description : "",
      .secret = ep->secret,
      .old_secret = ep->old_secret,
      .old_until_ms = ep->old_until_ms,
      .enabled = ep->enabled,
      .ordered = ep->ordered,
      .from_config = ep->from_config,
      .created_ms = ep->created_ms,
      .updated_ms = ep->updated_ms,
      .failing_since_ms = ep->failing_since_ms,
      .disabled_reason = ep->disabled_reason,
  };
  enum hook_store_err e = s->ops->save_endpoint(s, &r, state);
  free(topics);
  return e;
}

/* A copy of ep's persistent fields (not its dispatcher state). */
static struct endpoint *endpoint_clone(const struct endpoint *ep)
{
  struct endpoint *c = calloc(1, sizeof(*c));
  if(!c)
    return NULL;
  memcpy(c->id, ep->id, sizeof(c->id));
  c->url = strdup(ep->url);
  c->description = strdup(ep->description ? ep->description : "");
  c->topics = json_deep_copy(ep->topics);
  memcpy(c->secret, ep->secret, sizeof(c->secret));
  memcpy(c->old_secret, ep->old_secret, sizeof(c->old_secret));
  c->old_until_ms = ep->old_until_ms;
  c->enabled = ep->enabled;
  c->ordered = ep->ordered;
  c->from_config = ep->from_config;
  c->created_ms = ep->created_ms;
  c->updated_ms = ep->updated_ms;
  c->failing_since_ms = ep->failing_since_ms;
  memcpy(c->disabled_reason, ep->disabled_reason, sizeof(c->disabled_reason));
  if(!c->url || !c->description || !c->topics) {
    hook_endpoint_free(c);
    return NULL;
  }
  return c;
}

/* Copies the persistent fields of src into the live endpoint dst. */
static void endpoint_adopt(struct endpoint *dst, struct endpoint *src, bool state)
{
  char *u = dst->url, *d = dst->description;
  json_t *t = dst->topics;
  dst->url = src->url;
  dst->description = src->description;
  dst->topics = src->topics;
  src->url = u;
  src->description = d;
  src->topics = t;
  memcpy(dst->secret, src->secret, sizeof(dst->secret));
  memcpy(dst->old_secret, src->old_secret, sizeof(dst->old_secret));
  dst->old_until_ms = src->old_until_ms;
  dst->ordered = src->ordered;
  dst->updated_ms = src->updated_ms;
  if(state) {
    dst->enabled = src->enabled;
    dst->failing_since_ms = src->failing_since_ms;
    memcpy(dst->disabled_reason, src->disabled_reason, sizeof(dst->disabled_reason));
  }
}

/* ---- the endpoints API ---- */

static bool endpoint_exists(struct hook_service *h, const char *id)
{
  pthread_mutex_lock(&h->lock);
  bool found = hook_endpoint_find_locked(h, id) != NULL;
  pthread_mutex_unlock(&h->lock);
  return found;
}

/* Pending work was added in the store: the dispatcher looks again. */
static void poke_dispatcher(struct hook_service *h)
{
  atomic_store(&h->poke, true);
  curl_multi_wakeup(h->multi);
}

int hook_api_create(struct hook_service *h, const json_t *body, json_t **out)
{
  struct endpoint *ep = calloc(1, sizeof(*ep));
  if(!ep)
    return api_error(out, 500, "internal_error", NULL, "out of memory");
  ep->enabled = true;
  int status = apply_fields(h, ep, body, true, false, out);
  if(status)
    goto fail;
  uint64_t ms;
  if(sub_id_new(ep->id, &ms) ||
     (!ep->secret[0] && hook_secret_generate(32, ep->secret, sizeof(ep->secret)))) {
    status = api_error(out, 500, "internal_error", NULL, "no random bytes");
    goto fail;
  }
  if(!ep->description)
    ep->description = strdup("");
  ep->created_ms = ep->updated_ms = (int64_t)ms;
  pthread_mutex_lock(&h->lock);
  size_t n = h->neps;
  pthread_mutex_unlock(&h->lock);
  if(n >= ENDPOINTS_MAX) {
    status = api_error(out, 409, "too_many_endpoints", NULL, "at most %d endpoints", ENDPOINTS_MAX);
    goto fail;
  }
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e = endpoint_save(h->api_store, ep, true);
  if(e)
    status = db_error(h, out, e);
  pthread_mutex_unlock(&h->db_lock);
  if(e)
    goto fail;
  *out = endpoint_json(ep, true);
  pthread_mutex_lock(&h->lock);
  int rc = registry_add_locked(h, ep);
  pthread_mutex_unlock(&h->lock);
  if(rc) { /* stored; the next start loads it */
    json_decref(*out);
    status = api_error(out, 500, "internal_error", NULL, "out of memory");
    goto fail;
  }
  hook_log(h, UTIL_LOG_INFO, "endpoint_created", "id=%s topics=%zu", ep->id,
           json_array_size(ep->topics));
  return 201;
fail:
  hook_endpoint_free(ep);
  return status;
}

static int parse_limit(const char *limit, json_t **out, int *n)
{
  *n = PAGE_DEFAULT;
  if(!limit)
    return 0;
  char *end;
  long v = strtol(limit, &end, 10);
  if(!*limit || *end || v < 1 || v > PAGE_MAX)
    return api_error(out, 400, "invalid_parameter", "limit", "limit: a number from 1 to %d",
                     PAGE_MAX);
  *n = (int)v;
  return 0;
}

int hook_api_list(struct hook_service *h, const char *cursor, const char *limit, json_t **out)
{
  int n, status = parse_limit(limit, out, &n);
  if(status)
    return status;
  json_t *data = json_array();
  const char *last = NULL;
  bool more = false;
  pthread_mutex_lock(&h->lock);
  /* Ids sort by creation time; the registry is small (<= ENDPOINTS_MAX). */
  for(;;) {
    struct endpoint *best = NULL;
    for(size_t i = 0; i < h->neps; i++) {
      struct endpoint *e = h->eps[i];
      if(e->deleted || (cursor && strcmp(e->id, cursor) <= 0) || (last && strcmp(e->id, last) <= 0))
        continue;
      if(!best || strcmp(e->id, best->id) < 0)
        best = e;
    }
    if(!best)
      break;
    if(json_array_size(data) == (size_t)n) {
      more = true;
      break;
    }
    json_array_append_new(data, endpoint_json(best, false));
    last = best->id;
  }
  json_t *next = more && last ? json_string(last) : json_null();
  pthread_mutex_unlock(&h->lock);
  *out = json_pack("{s:o, s:o}", "data", data, "next_cursor", next);
  return 200;
}

int hook_api_get(struct hook_service *h, const char *id, json_t **out)
{
  pthread_mutex_lock(&h->lock);
  struct endpoint *ep = hook_endpoint_find_locked(h, id);
  *out = ep ? endpoint_json(ep, false) : NULL;
  pthread_mutex_unlock(&h->lock);
  if(!ep)
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  return 200;
}

int hook_api_patch(struct hook_service *h, const char *id, const json_t *body, json_t **out)
{
  pthread_mutex_lock(&h->lock);
  struct endpoint *live = hook_endpoint_find_locked(h, id);
  struct endpoint *c = live ? endpoint_clone(live) : NULL;
  pthread_mutex_unlock(&h->lock);
  if(!live)
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  if(!c)
    return api_error(out, 500, "internal_error", NULL, "out of memory");
  /* Changes are made on a copy, stored, then swapped in: a failure leaves
   * the endpoint as it was. */
  int status = apply_fields(h, c, body, false, false, out);
  if(status)
    goto out;
  c->updated_ms = util_clock_wall_ms();
  pthread_mutex_lock(&h->db_lock);
  bool state = json_object_get(body, "enabled") != NULL;
  enum hook_store_err e = endpoint_save(h->api_store, c, state);
  if(e)
    status = db_error(h, out, e);
  pthread_mutex_unlock(&h->db_lock);
  if(status)
    goto out;
  pthread_mutex_lock(&h->lock);
  live = hook_endpoint_find_locked(h, id);
  bool indexed = true;
  if(live) {
    endpoint_adopt(live, c, state);
    indexed = hook_endpoint_reindex_locked(h, live) == 0;
    *out = indexed ? endpoint_json(live, false) : NULL;
  }
  pthread_mutex_unlock(&h->lock);
  poke_dispatcher(h);
  if(!indexed) { /* stored: the next start or change indexes it */
    hook_log(h, UTIL_LOG_ERROR, "endpoint_index_failed", "id=%s error=out_of_memory", id);
    status = api_error(out, 500, "internal_error", NULL, "out of memory");
    goto out;
  }
  status = live ? 200 : api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
out:
  hook_endpoint_free(c);
  return status;
}

int hook_api_delete(struct hook_service *h, const char *id, json_t **out)
{
  /* Publishes stop matching it first: a delivery committed after the rows
   * are deleted would be left behind. */
  pthread_mutex_lock(&h->lock);
  struct endpoint *victim = hook_endpoint_find_locked(h, id);
  bool found = victim && !victim->deleting;
  if(found) {
    victim->deleting = true;
    hook_endpoint_reindex_locked(h, victim); /* out of the index: cannot fail */
  }
  pthread_mutex_unlock(&h->lock);
  if(!found)
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e = h->api_store->ops->delete_endpoint(h->api_store, id);
  int status = e ? db_error(h, out, e) : 0;
  pthread_mutex_unlock(&h->db_lock);
  pthread_mutex_lock(&h->lock);
  struct endpoint *ep = hook_endpoint_find_locked(h, id); /* only this thread deletes it */
  bool indexed = true;
  if(ep && status) {
    ep->deleting = false; /* not deleted after all */
    indexed = hook_endpoint_reindex_locked(h, ep) == 0;
  } else if(ep)
    ep->deleted = true; /* the dispatcher frees it once nothing is in flight */
  pthread_mutex_unlock(&h->lock);
  if(!indexed)
    hook_log(h, UTIL_LOG_ERROR, "endpoint_index_failed", "id=%s error=out_of_memory", id);
  if(status)
    return status;
  curl_multi_wakeup(h->multi);
  hook_log(h, UTIL_LOG_INFO, "endpoint_deleted", "id=%s", id);
  *out = json_pack("{s:s, s:b}", "id", id, "deleted", 1);
  return 200;
}

int hook_api_rotate(struct hook_service *h, const char *id, json_t **out)
{
  pthread_mutex_lock(&h->lock);
  struct endpoint *live = hook_endpoint_find_locked(h, id);
  struct endpoint *c = live ? endpoint_clone(live) : NULL;
  pthread_mutex_unlock(&h->lock);
  if(!live)
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  if(!c)
    return api_error(out, 500, "internal_error", NULL, "out of memory");
  int status = 0;
  int64_t now = util_clock_wall_ms();
  memcpy(c->old_secret, c->secret, sizeof(c->secret));
  c->old_until_ms = now + h->cfg.rotation_ms;
  if(hook_secret_generate(32, c->secret, sizeof(c->secret))) {
    status = api_error(out, 500, "internal_error", NULL, "no random bytes");
    goto out;
  }
  c->updated_ms = now;
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e = endpoint_save(h->api_store, c, false);
  if(e)
    status = db_error(h, out, e);
  pthread_mutex_unlock(&h->db_lock);
  if(status)
    goto out;
  char until[SUB_TIME_LEN + 1];
  time_iso(c->old_until_ms, until);
  pthread_mutex_lock(&h->lock);
  live = hook_endpoint_find_locked(h, id);
  if(live)
    endpoint_adopt(live, c, false);
  pthread_mutex_unlock(&h->lock);
  if(!live) {
    status = api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
    goto out;
  }
  hook_log(h, UTIL_LOG_INFO, "endpoint_secret_rotated", "id=%s old_until=%s", id, until);
  *out = json_pack("{s:s, s:s, s:s}", "id", id, "secret", live ? c->secret : "",
                   "previous_secret_expires_at", until);
  status = 200;
out:
  hook_endpoint_free(c);
  return status;
}

static const char *status_name(int s)
{
  switch(s) {
  case D_DELIVERED: return "delivered";
  case D_FAILED: return "failed";
  default: return "pending";
  }
}

/* A page of deliveries being built from the store's rows. */
struct page {
  json_t *data;
  size_t n; /* rows wanted: one more means there is a next page */
  json_t *attempts; /* of the row last added */
  int64_t last;
  bool more;
};

/* deliveries' row callback: appends the row, or stops (1) at the one past
 * the page, which only says there is a next page. */
static int page_row(void *ctx, const struct hook_store_delivery *r)
{
  struct page *pg = ctx;
  if(json_array_size(pg->data) == pg->n) {
    pg->more = true;
    return 1;
  }
  char created[SUB_TIME_LEN + 1];
  time_iso(r->created_ms, created);
  json_t *d = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s}", "id", (json_int_t)r->id, "event_id",
                        r->event_id, "topic", r->topic ? r->topic : "", "seq", (json_int_t)r->seq,
                        "status", status_name(r->status), "created_at", created);
  if(r->status == D_PENDING || r->status == D_QUEUED) {
    char next[SUB_TIME_LEN + 1];
    time_iso(r->next_ms, next);
    json_object_set_new(d, "next_attempt_at", json_string(next));
  }
  /* Filled by page_attempt; owned by d (none when d could not be made). */
  pg->attempts = d ? json_array() : NULL;
  if(d)
    json_object_set_new(d, "attempts", pg->attempts);
  json_array_append_new(pg->data, d);
  pg->last = r->id;
  return 0;
}

/* deliveries' attempt callback: appends the attempt to the last row's. */
static void page_attempt(void *ctx, const struct hook_store_attempt *r)
{
  struct page *pg = ctx;
  char at[SUB_TIME_LEN + 1];
  time_iso(r->ms, at);
  json_t *a = json_pack("{s:i, s:s, s:f}", "n", r->n, "at", at, "latency_ms",
                        (double)r->latency_us / 1000.0);
  json_object_set_new(a, "http_status", r->http_status ? json_integer(r->http_status) : json_null());
  json_object_set_new(a, "error", r->error ? json_string(r->error) : json_null());
  /* Response bytes are the receiver's: shown as text, invalid UTF-8 repaired. */
  const unsigned char *resp = r->response;
  size_t rlen = r->response_len;
  json_t *rs = resp ? json_stringn((const char *)resp, rlen) : json_null();
  if(!rs) {
    char *copy = malloc(rlen + 1);
    for(size_t i = 0; copy && i < rlen; i++)
      copy[i] = resp[i] < 0x80 ? (char)resp[i] : '?';
    rs = copy ? json_stringn(copy, rlen) : NULL;
    free(copy);
  }
  json_object_set_new(a, "response", rs ? rs : json_null());
  json_array_append_new(pg->attempts, a);
}

int hook_api_deliveries(struct hook_service *h, const char *id, const char *status,
                        const char *cursor, const char *limit, json_t **out)
{
  int n, rc = parse_limit(limit, out, &n);
  if(rc)
    return rc;
  int want = -1; /* all; pending also takes D_QUEUED */
  if(status) {
    if(strcmp(status, "pending") == 0)
      want = D_PENDING;
    else if(strcmp(status, "delivered") == 0)
      want = D_DELIVERED;
    else if(strcmp(status, "failed") == 0)
      want = D_FAILED;
    else
      return api_error(out, 400, "invalid_parameter", "status",
                       "status: one of pending, delivered, failed");
  }
  int64_t after = INT64_MAX;
  if(cursor) {
    char *end;
    long long v = strtoll(cursor, &end, 10);
    if(!*cursor || *end || v < 1)
      return api_error(out, 400, "invalid_parameter", "cursor", "cursor: not a cursor");
    after = v;
  }
  if(!endpoint_exists(h, id))
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);

  struct page pg = {.data = json_array(), .n = (size_t)n};
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e = h->api_store->ops->deliveries(h->api_store, id, want, after, n + 1,
                                                        page_row, page_attempt, &pg);
  int status_code = e ? db_error(h, out, e) : 200;
  pthread_mutex_unlock(&h->db_lock);
  if(status_code != 200) {
    json_decref(pg.data);
    return status_code;
  }
  char next[24];
  snprintf(next, sizeof(next), "%lld", (long long)pg.last);
  *out = json_pack("{s:o, s:o}", "data", pg.data, "next_cursor",
                   pg.more ? json_string(next) : json_null());
  return 200;
}

int hook_api_retry(struct hook_service *h, const char *id, const char *delivery, json_t **out)
{
  char *end;
  long long did = strtoll(delivery, &end, 10);
  if(!*delivery || *end || did < 1)
    return api_error(out, 404, "not_found", NULL, "no delivery %s", delivery);
  if(!endpoint_exists(h, id))
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  enum hook_store_retry result;
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e =
      h->api_store->ops->retry(h->api_store, id, did, util_clock_wall_ms(), &result);
  int status = e ? db_error(h, out, e) : 0;
  pthread_mutex_unlock(&h->db_lock);
  if(e)
    return status;
  if(result == HOOK_RETRY_PENDING)
    return api_error(out, 409, "delivery_pending", NULL,
                     "delivery %lld is pending already: it will be attempted as scheduled", did);
  if(result == HOOK_RETRY_NOT_FOUND)
    return api_error(out, 404, "not_found", NULL, "no delivery %lld of endpoint %s", did, id);
  poke_dispatcher(h);
  *out = json_pack("{s:I, s:s}", "id", (json_int_t)did, "status", "pending");
  return 202;
}

/* Parses RFC 3339 ("2026-11-28T04:00:00Z", "...00.123+01:00") into Unix
 * milliseconds. Returns 0 or -1. */
static int parse_rfc3339(const char *s, int64_t *ms)
{
  struct tm tm = {0};
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if(!p)
    return -1;
  int64_t frac = 0;
  if(*p == '.') {
    int digits = 0;
    for(p++; isdigit((unsigned char)*p); p++, digits++)
      if(digits < 3)
        frac = frac * 10 + (*p - '0');
    if(!digits)
      return -1;
    for(; digits < 3; digits++)
      frac *= 10;
  }
  int64_t off = 0;
  if(*p == 'Z' || *p == 'z')
    p++;
  else if(*p == '+' || *p == '-') {
    int hh, mm;
    if(sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
      return -1;
    off = (hh * 60 + mm) * 60 * (*p == '+' ? 1 : -1);
    p += 6;
  } else
    return -1;
  if(*p)
    return -1;
  *ms = ((int64_t)timegm(&tm) - off) * 1000 + frac;
  return 0;
}

/* ---- replay from the history log ---- */

/* The patterns of the endpoint replayed to, copied: the log's match runs
 * under the log's lock, where h->lock is not taken. */
struct replay_filter {
  char **patterns;
  size_t n;
};

static void filter_clear(struct replay_filter *f)
{
  for(size_t i = 0; i < f->n; i++)
    free(f->patterns[i]);
  free(f->patterns);
}

/* Copies the topics of endpoint id into f. Returns 0, 1 when there is no
 * such endpoint, or -1 out of memory (f is then empty). */
static int filter_of(struct hook_service *h, const char *id, struct replay_filter *f)
{
  int rc = 0;
  memset(f, 0, sizeof(*f));
  pthread_mutex_lock(&h->lock);
  struct endpoint *ep = hook_endpoint_find_locked(h, id);
  size_t n = ep ? json_array_size(ep->topics) : 0;
  if(!ep)
    rc = 1;
  else if(n && !(f->patterns = calloc(n, sizeof(*f->patterns))))
    rc = -1;
  for(size_t i = 0; !rc && i < n; i++, f->n++)
    if(!(f->patterns[i] = strdup(json_string_value(json_array_get(ep->topics, i)))))
      rc = -1;
  pthread_mutex_unlock(&h->lock);
  if(rc)
    filter_clear(f);
  return rc;
}

static bool replay_match(void *arg, const struct sub_event *ev)
{
  const struct replay_filter *f = arg;
  for(size_t i = 0; i < f->n; i++)
    if(sub_pattern_matches(f->patterns[i], ev->topic))
      return true;
  return false;
}

/* The events enqueue writes, each with its body built as it is asked for. */
struct replay_src {
  struct sub_event **ev;
  struct blob *body; /* the last one built */
};

static int replay_event(void *ctx, size_t i, struct hook_store_item *it)
{
  struct replay_src *src = ctx;
  struct sub_event *ev = src->ev[i];
  hook_blob_unref(src->body);
  if(!(src->body = hook_envelope(ev)))
    return -1;
  it->event_id = ev->id;
  it->topic = ev->topic;
  it->topic_len = ev->topic_len;
  it->seq = ev->seq;
  it->ms = ev->ms;
  it->body = src->body->data;
  it->body_len = src->body->len;
  return 0;
}

/* The answer of a replay from a cursor: how many were queued, whether the
 * bound cut it, where to go on from, and the gap, if any. */
static json_t *replay_answer(const char *epoch, const char *requested,
                             const struct sub_log_result *r, uint64_t next, enum sub_gap gap,
                             uint64_t oldest)
{
  char c[SUB_CURSOR_MAX + 1], o[SUB_CURSOR_MAX + 1];
  sub_cursor_format(epoch, next, c);
  json_t *a = json_pack("{s:I, s:b, s:s}", "queued", (json_int_t)r->n, "truncated", r->more,
                        "next", c);
  if(a && gap) {
    sub_cursor_format(epoch, oldest, o);
    json_object_set_new(a, "gap",
                        json_pack("{s:s, s:s, s:s}", "requested", requested, "oldest", o,
                                  "reason", sub_gap_name(gap)));
  }
  return a;
}

/* Queues a new delivery to endpoint id of every retained event after the
 * cursor (epoch, after) that the endpoint's patterns match, at most max,
 * oldest first, in one transaction of the store. */
static int replay_cursor(struct hook_service *h, const char *id, const char *requested,
                         const char *epoch, uint64_t after, size_t max, json_t **out)
{
  struct sub_log *log = sub_engine_history(h->engine);
  struct replay_filter f;
  int found = filter_of(h, id, &f);
  if(found < 0)
    return api_error(out, 500, "internal_error", NULL, "out of memory");
  if(found)
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  int status = 0;
  struct sub_log_result r = {0};
  enum sub_gap gap = SUB_GAP_NONE;
  if(!log) {
    status = api_error(out, 409, "history_disabled", NULL,
                       "history is off on this server (history.enabled): replay from an RFC "
                       "3339 time or an event id instead");
    goto out;
  }
  if(strcmp(epoch, sub_log_epoch(log)) != 0) {
    gap = SUB_GAP_EPOCH_CHANGED; /* history was lost since: from the oldest */
    after = 0;
  } else if(after >= sub_log_next(log)) {
    status = api_error(out, 422, "invalid_field", "since",
                       "since: the cursor is ahead of this server's history log");
    goto out;
  }
  struct sub_log_query q = {
      .after = after, .match = replay_match, .arg = &f, .max = max ? max : 1, .newest = false};
  if(sub_log_read(log, &q, &r)) {
    status = api_error(out, 500, "internal_error", NULL, "out of memory");
    goto out;
  }
  if(r.n) {
    struct replay_src src = {r.ev, NULL};
    pthread_mutex_lock(&h->db_lock);
    enum hook_store_err e = h->api_store->ops->enqueue(h->api_store, id, r.n, replay_event, &src,
                                                       util_clock_wall_ms());
    if(e)
      status = db_error(h, out, e);
    pthread_mutex_unlock(&h->db_lock);
    hook_blob_unref(src.body);
    if(e)
      goto out;
    poke_dispatcher(h);
  }
  uint64_t next = r.last > after ? r.last : after; /* never back: a cursor not yet pushed */
  uint64_t oldest = 0;
  if(!gap)
    gap = r.gap;
  if(gap)
    oldest = r.gap ? r.oldest : r.n ? r.ev[0]->offset : r.hwm + 1;
  hook_log(h, UTIL_LOG_INFO, "endpoint_replay", "id=%s since=%s queued=%zu truncated=%s gap=%s", id,
           requested, r.n, r.more ? "true" : "false", gap ? sub_gap_name(gap) : "none");
  *out = replay_answer(sub_log_epoch(log), requested, &r, next, gap, oldest);
  status = 202;
out:
  sub_log_result_clear(&r);
  filter_clear(&f);
  return status;
}

struct sub_engine *hook_engine(struct hook_service *h)
{
  return h->engine;
}

int hook_api_replay(struct hook_service *h, const char *id, const json_t *body, size_t max_events,
                    json_t **out)
{
  json_t *since = json_is_object(body) ? json_object_get(body, "since") : NULL;
  if(!json_is_string(since))
    return api_error(out, 422, "invalid_field", "since",
                     "since: required, a history cursor, an RFC 3339 time or an event id");
  const char *s = json_string_value(since);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t after;
  if(sub_cursor_parse(s, json_string_length(since), epoch, &after) == 0)
    return replay_cursor(h, id, s, epoch, after, max_events, out);
  int64_t ms;
  if(parse_rfc3339(s, &ms)) {
    /* An event id: a UUIDv7 carries its millisecond in its first 48 bits. */
    if(util_uuid7_ms(s, &ms))
      return api_error(out, 422, "invalid_field", "since",
                       "since: neither a history cursor, an RFC 3339 time nor an event id");
  }
  if(!endpoint_exists(h, id))
    return api_error(out, 404, "not_found", NULL, "no webhook endpoint %s", id);
  int64_t n = 0;
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e =
      h->api_store->ops->replay(h->api_store, id, ms, util_clock_wall_ms(), &n);
  int status = e ? db_error(h, out, e) : 0;
  pthread_mutex_unlock(&h->db_lock);
  if(e)
    return status;
  poke_dispatcher(h);
  hook_log(h, UTIL_LOG_INFO, "endpoint_replay", "id=%s since_ms=%lld requeued=%lld", id, (long long)ms,
           (long long)n);
  *out = json_pack("{s:I}", "requeued", (json_int_t)n);
  return 202;
}

/* ---- publishing ---- */

/* The endpoints a publish goes to, collected from the index. */
struct takers {
  char (*ids)[HOOK_ID_LEN + 1];
  size_t n, cap;
  bool oom;
};

/* The index's match callback: notes the endpoint (each comes once). */
static void take(struct sub_subscriber *s, void *ctx)
{
  struct takers *t = ctx;
  struct endpoint *ep = (struct endpoint *)((char *)s - offsetof(struct endpoint, sub));
  if(t->oom)
    return;
  if(t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4;
    void *n = realloc(t->ids, cap * sizeof(*t->ids));
    if(!n) {
      t->oom = true;
      return;
    }
    t->ids = n;
    t->cap = cap;
  }
  memcpy(t->ids[t->n++], ep->id, sizeof(ep->id));
}

/* A match callback for "does any endpoint take it?": counting is enough. */
static void taken(struct sub_subscriber *s, void *ctx)
{
  (void)s;
  (void)ctx;
}

/* The engine's hold callback: queues the event for the next commit, with
 * the endpoints it goes to. Runs under the topic's lock. ctx is the
 * publisher's struct sub_hold_req (NULL: held to keep the topic's order). */
static int on_hold(void *arg, struct sub_event *ev, void *ctx)
{
  struct hook_service *h = arg;
  struct item *it = calloc(1, sizeof(*it));
  if(!it)
    return -1;
  it->ev = ev;
  it->req = ctx;
  pthread_mutex_lock(&h->lock);
  if(h->nqueue >= (size_t)h->cfg.commit_queue_max || atomic_load(&h->stop) || atomic_load(&h->dead))
    goto refuse;
  struct takers t = {NULL, 0, 0, false};
  sub_index_match(h->index, ev->topic, ev->topic_len, take, &t);
  it->eps = t.ids;
  it->neps = t.n;
  if(t.oom)
    goto refuse;
  if(h->qtail)
    h->qtail->next = it;
  else
    h->qhead = it;
  h->qtail = it;
  h->nqueue++;
  pthread_mutex_unlock(&h->lock);
  curl_multi_wakeup(h->multi);
  return 0;
refuse:
  pthread_mutex_unlock(&h->lock);
  free(it->eps);
  free(it);
  return -1;
}

bool hook_wants(struct hook_service *h, const char *topic)
{
  if(!atomic_load(&h->any_eps))
    return false;
  pthread_mutex_lock(&h->lock); /* matching marks the endpoints: one at a time */
  bool wants = sub_index_match(h->index, topic, strlen(topic), taken, NULL) > 0;
  pthread_mutex_unlock(&h->lock);
  return wants;
}

int hook_idem_lookup(struct hook_service *h, const char *key, int64_t min_ms,
                     unsigned char hash[32], struct sub_published *first)
{
  struct hook_store_idem r;
  bool found = false;
  pthread_mutex_lock(&h->db_lock);
  enum hook_store_err e = h->api_store->ops->idem_lookup(h->api_store, key, min_ms, &r, &found);
  pthread_mutex_unlock(&h->db_lock);
  if(e)
    return -1;
  if(!found)
    return 0;
  if(r.hash_len == 32)
    memcpy(hash, r.hash, 32);
  else
    memset(hash, 0, 32); /* matches no request: a conflict */
  memcpy(first->id, r.id, SUB_ID_LEN + 1); /* "" when unreadable */
  first->seq = r.seq;
  first->ms = r.ms;
  return 1;
}

/* ---- start and stop ---- */

/* Loading the registry from the store at start. */
struct loading {
  struct hook_service *h;
  bool stopped; /* out of memory */
};

/* Adds one stored endpoint to the registry. Returns 0, or -1 out of memory. */
static int load_one(void *ctx, const struct hook_store_endpoint *r)
{
  struct loading *ld = ctx;
  struct endpoint *ep = calloc(1, sizeof(*ep));
  if(!ep) {
    ld->stopped = true;
    return -1;
  }
  snprintf(ep->id, sizeof(ep->id), "%s", r->id);
  ep->url = strdup(r->url);
  ep->topics = json_loads(r->topics, 0, NULL);
  ep->description = strdup(r->description);
  snprintf(ep->secret, sizeof(ep->secret), "%s", r->secret);
  snprintf(ep->old_secret, sizeof(ep->old_secret), "%s", r->old_secret);
  ep->old_until_ms = r->old_until_ms;
  ep->enabled = r->enabled;
  ep->ordered = r->ordered;
  ep->from_config = r->from_config;
  ep->created_ms = r->created_ms;
  ep->updated_ms = r->updated_ms;
  ep->failing_since_ms = r->failing_since_ms;
  snprintf(ep->disabled_reason, sizeof(ep->disabled_reason), "%s", r->disabled_reason);
  if(!ep->url || !ep->topics || !ep->description || registry_add_locked(ld->h, ep)) {
    hook_endpoint_free(ep);
    ld->stopped = true;
    return -1;
  }
  return 0;
}

/* Fills the registry from the store. Returns 0, or -1 with err set. */
static int load_endpoints(struct hook_service *h, char err[512])
{
  struct hook_store *s = h->api_store;
  struct loading ld = {h, false};
  enum hook_store_err e = s->ops->load_endpoints(s, load_one, &ld);
  if(e)
    snprintf(err, 512, "webhook store: %s", s->ops->errmsg(s));
  else if(ld.stopped)
    snprintf(err, 512, "webhook store: cannot load the endpoints");
  return e || ld.stopped ? -1 : 0;
}

/* Applies webhooks.endpoints from the config: each is stored under its id
 * (replacing what the API may have changed since the last start). */
static int config_endpoints(struct hook_service *h, char err[512])
{
  size_t i;
  json_t *v;
  json_array_foreach(h->cfg.endpoints, i, v)
  {
    const char *id = json_string_value(json_object_get(v, "id"));
    json_t *msg = NULL;
    struct endpoint *ep = calloc(1, sizeof(*ep));
    if(!ep) {
      snprintf(err, 512, "out of memory");
      return -1;
    }
    ep->enabled = true;
    int status = apply_fields(h, ep, v, true, true, &msg);
    if(!status && (!id || !*id || strlen(id) > HOOK_ID_LEN)) {
      status = 422;
      msg = json_pack("{s:{s:s}}", "error", "message", "id: required, 1 to 36 bytes");
    }
    if(status) {
      snprintf(err, 512, "webhooks.endpoints[%zu].%s", i,
               json_string_value(json_object_get(json_object_get(msg, "error"), "message")));
      json_decref(msg);
      hook_endpoint_free(ep);
      return -1;
    }
    snprintf(ep->id, sizeof(ep->id), "%s", id);
    ep->from_config = true;
    if(!ep->description)
      ep->description = strdup("");
    struct endpoint *old = hook_endpoint_find_locked(h, id);
    ep->created_ms = old ? old->created_ms : util_clock_wall_ms();
    ep->updated_ms = util_clock_wall_ms();
    if(old && strcmp(old->secret, ep->secret) == 0) { /* keep a rotation's state */
      memcpy(ep->old_secret, old->old_secret, sizeof(ep->old_secret));
      ep->old_until_ms = old->old_until_ms;
    }
    /* The stored enabled/failing state stands unless the file sets "enabled":
     * an endpoint disabled by a 410 stays so across restarts. */
    bool state = !old || json_object_get(v, "enabled") != NULL;
    if(endpoint_save(h->api_store, ep, state)) {
      snprintf(err, 512, "webhook store: %s", h->api_store->ops->errmsg(h->api_store));
      hook_endpoint_free(ep);
      return -1;
    }
    if(old) {
      endpoint_adopt(old, ep, state);
      old->from_config = true;
      hook_endpoint_free(ep);
      if(hook_endpoint_reindex_locked(h, old)) {
        snprintf(err, 512, "out of memory");
        return -1;
      }
    } else if(registry_add_locked(h, ep)) {
      hook_endpoint_free(ep);
      snprintf(err, 512, "out of memory");
      return -1;
    }
  }
  return 0;
}

/* Restoring the engine's seqs at start. */
struct seeding {
  struct hook_service *h;
  size_t topics;
};

/* recover's callback: the engine goes on from the topic's last stored seq. */
static void seed_one(void *ctx, const char *topic, uint64_t seq)
{
  struct seeding *sd = ctx;
  sub_engine_seed(sd->h->engine, topic, strlen(topic), seq);
  sd->topics++;
}

/* Restores the seq counters, and puts deliveries that were loaded (maybe
 * in flight) when the process stopped back to pending. */
static int recover(struct hook_service *h, char err[512])
{
  struct hook_store *s = h->api_store;
  struct seeding sd = {h, 0};
  int64_t requeued = 0;
  if(s->ops->recover(s, seed_one, &sd, &requeued)) {
    snprintf(err, 512, "webhook store: %s", s->ops->errmsg(s));
    return -1;
  }
  hook_log(h, UTIL_LOG_INFO, "webhooks_recovered", "topics=%zu requeued_in_flight=%lld", sd.topics,
           (long long)requeued);
  return 0;
}

struct hook_service *hook_start(const struct hook_config *cfg, struct sub_engine *engine,
                                char err[512])
{
  struct hook_service *h = calloc(1, sizeof(*h));
  if(!h) {
    snprintf(err, 512, "out of memory");
    return NULL;
  }
  h->cfg = *cfg;
  h->engine = engine;
  pthread_mutex_init(&h->lock, NULL);
  pthread_mutex_init(&h->db_lock, NULL);
  RAND_bytes((unsigned char *)&h->rng, sizeof(h->rng));
  h->index = sub_index_new();
  if(!h->index) {
    snprintf(err, 512, "out of memory");
    goto fail;
  }
  if(curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, 512, "libcurl failed to initialise");
    goto fail;
  }
  h->multi = curl_multi_init();
  if(!h->multi) {
    snprintf(err, 512, "out of memory");
    goto fail;
  }
  if(!(h->api_store = hook_store_sqlite_open(cfg->db_path, cfg->store_max_bytes, err)) ||
     !(h->store = hook_store_sqlite_open(cfg->db_path, cfg->store_max_bytes, err)))
    goto fail;
  h->starting = true;
  if(load_endpoints(h, err) || config_endpoints(h, err) || recover(h, err))
    goto fail;
  h->starting = false;
  sub_engine_set_hold(engine, on_hold, h);
  if(pthread_create(&h->thread, NULL, hook_dispatch_main, h)) {
    sub_engine_set_hold(engine, NULL, NULL);
    snprintf(err, 512, "cannot start the webhook dispatcher thread");
    goto fail;
  }
  size_t enabled = 0;
  for(size_t i = 0; i < h->neps; i++)
    enabled += h->eps[i]->enabled;
  hook_log(h, UTIL_LOG_INFO, "webhooks_started", "store=%s endpoints=%zu enabled=%zu", cfg->db_path,
           h->neps, enabled);
  return h;
fail:
  for(size_t i = 0; i < h->neps; i++)
    hook_endpoint_free(h->eps[i]);
  free(h->eps);
  sub_index_free(h->index);
  hook_store_close(h->store);
  hook_store_close(h->api_store);
  if(h->multi)
    curl_multi_cleanup(h->multi);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->db_lock);
  free(h);
  return NULL;
}

void hook_stop(struct hook_service *h)
{
  if(!h)
    return;
  atomic_store(&h->stop, true);
  curl_multi_wakeup(h->multi);
  pthread_join(h->thread, NULL);
  sub_engine_set_hold(h->engine, NULL, NULL);
  for(size_t i = 0; i < h->neps; i++)
    hook_endpoint_free(h->eps[i]);
  free(h->eps);
  sub_index_free(h->index);
  curl_multi_cleanup(h->multi);
  hook_store_close(h->store);
  hook_store_close(h->api_store);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->db_lock);
  free(h);
}
