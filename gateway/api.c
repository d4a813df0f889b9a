#include "api.h"

#include <jansson.h>
#include <pthread.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "eventlog.h"
#include "linger.h"
#include "log.h"
#include "net.h"
#include "protocol.h"
#include "topic.h"
#include "util/bearer.h"
#include "util/dynbuf.h"
#include "util/json_text.h"
#include "util/throttle.h"

#define TOPICS_PREFIX "/v1/topics/"
#define EVENTS_SUFFIX "/events"
#define LATEST_SUFFIX "/events/latest"
#define EVENTS_PATH "/v1/events"
#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000
/* A page of GET /v1/events stops before the event that would take its body
 * past this (it holds one event whatever its size): `more` then says so. */
#define EVENTS_PAGE_BYTES (4u << 20)
/* The page's end: next, more and a gap with its three cursors. */
#define EVENTS_TAIL_MAX (3 * SUB_CURSOR_MAX + 128)
#define DISCARD_MAX (1u << 20) /* body bytes read and dropped past the limit */
#define API_CONN_MEMORY 16384 /* per connection: request line, headers, read buffer */
/* Lingering close (linger.h): sockets at once, bytes each, and time. A
 * client that reads while it sends stops at the answer; one that sends
 * the whole body first gets it read, up to the bound. */
#define LINGER_SOCKS 256
#define LINGER_BYTES (8u << 20)
#define LINGER_MS 5000

struct gw_api {
  const struct gw_config *cfg;
  struct pub_pipeline *pp;
  struct hook_service *hooks;
  struct gw_auth *auth;
  bool open_loopback; /* no API keys, on loopback: Host is checked */
  char *tls_cert, *tls_key; /* PEM text, kept while libmicrohttpd runs */
  struct MHD_Daemon *d;
  struct gw_linger *linger; /* answered sockets whose input is still coming */
  int listen_fd;
  atomic_bool quiesced;
  atomic_int inflight;
  atomic_int suspended; /* publishes waiting for their commit */
};

enum route {
  R_PUBLISH,         /* POST /v1/topics/{topic}/events */
  R_HOOKS,           /* /v1/webhooks */
  R_HOOK,            /* /v1/webhooks/{id} */
  R_HOOK_ROTATE,     /* /v1/webhooks/{id}/rotate-secret */
  R_HOOK_DELIVERIES, /* /v1/webhooks/{id}/deliveries */
  R_HOOK_RETRY,      /* /v1/webhooks/{id}/deliveries/{delivery}/retry */
  R_HOOK_REPLAY,     /* /v1/webhooks/{id}/replay */
  R_EVENTS,          /* GET /v1/events: a page of the history log */
  R_LATEST,          /* GET /v1/topics/{topic}/events/latest */
};

/* One request's state, kept by libmicrohttpd between calls. */
struct request {
  char *body;
  size_t len, cap;
  bool too_large;
  size_t discarded; /* body bytes dropped after too_large */
  bool body_end; /* the last call came: the request was read to its end */
  enum route route;
  char id[64], sub[32]; /* the endpoint and delivery ids of a webhooks route */
  /* a publish waiting for its commit (suspended connection) */
  struct MHD_Connection *conn;
  struct pub_request pub;
  char topic[SUB_TOPIC_MAX + 1]; /* NUL-terminated, as the pipeline takes it; a
                                  * history read's pattern or topic */
  size_t topic_len;
  char *data_text;
  char idem[PUB_IDEM_KEY_MAX + 1];
  const char *caller; /* the API key's name, "" for anonymous: the scope of idem */
  struct gw_api *api;
  pthread_mutex_t lock;
  bool pending, done, suspended;
};

/* Queues `len` bytes of JSON text (copied) as the response. */
static enum MHD_Result send_text_hdr(struct MHD_Connection *conn, unsigned status,
                                     const char *text, size_t len, const char *allow,
                                     const char *hname, const char *hvalue)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
  if(!r)
    return MHD_NO; /* out of memory: drop the connection */
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if(allow)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  if(hname)
    MHD_add_response_header(r, hname, hvalue);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_json_hdr(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                     const char *allow, const char *hname, const char *hvalue)
{
  char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(obj);
  if(!text)
    return MHD_NO; /* out of memory: drop the connection */
  enum MHD_Result ret = send_text_hdr(conn, status, text, strlen(text), allow, hname, hvalue);
  free(text);
  return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                 const char *allow)
{
  return send_json_hdr(conn, status, obj, allow, NULL, NULL);
}

/* Answers 400 invalid_parameter naming the query parameter in error.field. */
static enum MHD_Result bad_parameter(struct MHD_Connection *conn, const char *field,
                                     const char *msg)
{
  gw_debug("api_error", "status=400 code=invalid_parameter field=%s", field);
  return send_json(conn, MHD_HTTP_BAD_REQUEST,
                   json_pack("{s:{s:s, s:s, s:s}}", "error", "code", "invalid_parameter",
                             "message", msg, "field", field),
                   NULL);
}

/* Answers {"error":{"code","message"}}; `allow` (may be NULL) sets Allow. */
static enum MHD_Result send_error_allow(struct MHD_Connection *conn, unsigned status,
                                        const char *allow, const char *code, const char *fmt,
                                        va_list ap)
{
  char msg[256];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  gw_debug("api_error", "status=%u code=%s", status, code);
  return send_json(conn, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg),
                   allow);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *code,
                                  const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum MHD_Result r = send_error_allow(conn, status, NULL, code, fmt, ap);
  va_end(ap);
  return r;
}

static enum MHD_Result method_not_allowed(struct MHD_Connection *conn, const char *allow,
                                          const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result method_not_allowed(struct MHD_Connection *conn, const char *allow,
                                          const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum MHD_Result r =
      send_error_allow(conn, MHD_HTTP_METHOD_NOT_ALLOWED, allow, "method_not_allowed", fmt, ap);
  va_end(ap);
  return r;
}

static bool is_json_type(const char *ct)
{
  static const char want[] = "application/json";
  if(!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
    return false;
  char next = ct[sizeof(want) - 1];
  return next == '\0' || next == ';' || next == ' ';
}

/* RFC 9110 §5.6.2: a header name is a token. */
static bool is_token(const char *s, size_t n)
{
  static const char extra[] = "!#$%&'*+-.^_`|~";
  for(size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if(!alnum && !(c && strchr(extra, c)))
      return false;
  }
  return n > 0;
}

/* The framing headers of a request, every one of them: libmicrohttpd uses
 * only the first of a repeated header, and lets Transfer-Encoding override
 * Content-Length. */
struct framing {
  unsigned cl, te, host; /* Content-Length, Transfer-Encoding and Host headers */
  const char *cl_value, *te_value; /* the first of each */
  bool cl_differ, bad_name;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t klen, const char *value, size_t vlen)
{
  struct framing *f = cls;
  (void)kind;
  (void)vlen;
  if(!is_token(key, klen))
    f->bad_name = true; /* "Content-Length : 5" is named "Content-Length " */
  else if(klen == 14 && strncasecmp(key, "Content-Length", 14) == 0) {
    if(f->cl++ == 0)
      f->cl_value = value;
    else if(strcmp(f->cl_value, value) != 0)
      f->cl_differ = true;
  } else if(klen == 17 && strncasecmp(key, "Transfer-Encoding", 17) == 0) {
    if(f->te++ == 0)
      f->te_value = value;
  } else if(klen == 4 && strncasecmp(key, "Host", 4) == 0)
    f->host++;
  return MHD_YES;
}

#if MHD_VERSION == 0x00097500
/* libmicrohttpd 0.9.75 parses a request's head in place, in one buffer
 * that starts at the method: each line end (CRLF, or a bare LF) and each
 * header's colon become NUL bytes, and a value is the C string after the
 * colon and its spaces. So a NUL inside a value cuts the value short
 * unseen, a bare LF ends a line, and an obs-fold line is joined to the
 * value in another buffer, all with no trace in its API. This walks the
 * head as it lies in the buffer, header by header in the order they came:
 * every line must end in CRLF (two NULs) right where its value ends, and
 * the next header's name must follow at once. */
struct head_walk {
  uintptr_t p, end; /* where the last line seen ends; where the head ends */
  bool ok;
};

/* Whether the two bytes at w->p are a CRLF made NUL, and what follows is `next`. */
static bool crlf_then(const struct head_walk *w, uintptr_t next)
{
  const char *at = (const char *)w->p;
  return w->p + 2 <= w->end && !at[0] && !at[1] && w->p + 2 == next;
}

static enum MHD_Result walk_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t klen, const char *value, size_t vlen)
{
  struct head_walk *w = cls;
  (void)kind;
  uintptr_t k = (uintptr_t)key, colon = k + klen, v = (uintptr_t)value;
  w->ok = w->ok && crlf_then(w, k) && colon < w->end && !key[klen] && v > colon &&
          v + vlen <= w->end;
  for(const char *q = key + klen + 1; w->ok && q < value; q++)
    w->ok = *q == ' ' || *q == '\t';
  w->p = v + vlen;
  return w->ok ? MHD_YES : MHD_NO;
}

/* True when the head (from `method`, which `version` ends) is what its
 * headers say it is: no NUL, no obs-fold, no bare LF. */
static bool head_intact(struct MHD_Connection *conn, const char *method, const char *version)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if(!ci)
    return false;
  struct head_walk w = {(uintptr_t)version + strlen(version),
                        (uintptr_t)method + ci->header_size, true};
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, walk_line, &w);
  /* the last line's CRLF, then the empty line's, then the head's end */
  return w.ok && crlf_then(&w, w.p + 2) && (w.p += 2, crlf_then(&w, w.end));
}
#else
#error "head_intact reads libmicrohttpd 0.9.75's request buffer: check it against this version"
#endif

/* Checks the framing of a request's head (RFC 9112) past what libmicrohttpd
 * refuses by itself (docs/security.md, HTTP framing). Returns 0, or the
 * status to refuse the request with and *why. */
static unsigned framing_check(struct MHD_Connection *conn, const char *method,
                              const char *version, const char **why)
{
  struct framing f = {0};
  MHD_get_connection_values_n(conn, MHD_HEADER_KIND, count_framing, &f);
  if(!head_intact(conn, method, version))
    *why = "the request head has a NUL byte, a folded header line (obs-fold) or a line "
           "that does not end in CRLF";
  else if(f.bad_name)
    *why = "a header name is not a token (a space before its colon?)";
  else if(f.host > 1 || (!f.host && strcmp(version, MHD_HTTP_VERSION_1_1) == 0))
    *why = "an HTTP/1.1 request needs exactly one Host header";
  else if(f.cl_differ)
    *why = "Content-Length is given more than once, with different values";
  else if(f.te && f.cl)
    *why = "the request has both Content-Length and Transfer-Encoding: send one";
  else if(f.te && strcmp(version, MHD_HTTP_VERSION_1_1) != 0)
    *why = "Transfer-Encoding needs HTTP/1.1";
  else if(f.te && (f.te > 1 || strcasecmp(f.te_value, "chunked") != 0)) {
    /* RFC 9112 §6.3: a body not ended by chunked has no knowable length
     * (400); chunked after another coding is one Herald does not know */
    size_t n = strlen(f.te_value);
    bool chunked_last = f.te == 1 && n >= 7 && strcasecmp(f.te_value + n - 7, "chunked") == 0;
    *why = chunked_last ? "Transfer-Encoding: only chunked is supported"
                        : "Transfer-Encoding must be chunked (the body's length cannot be known)";
    return chunked_last ? MHD_HTTP_NOT_IMPLEMENTED : MHD_HTTP_BAD_REQUEST;
  } else
    return 0;
  return MHD_HTTP_BAD_REQUEST;
}

/* Answers a request whose framing is refused, and closes its connection:
 * where its body ends, and so where a next request would start, is not
 * known. */
static enum MHD_Result framing_refused(struct MHD_Connection *conn, unsigned status,
                                       const char *why)
{
  const char *code = status == MHD_HTTP_BAD_REQUEST ? "invalid_request" : "not_implemented";
  gw_debug("api_error", "status=%u code=%s", status, code);
  return send_json_hdr(conn, status,
                       json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", why), NULL,
                       MHD_HTTP_HEADER_CONNECTION, "close");
}

/* Returns the topic part of /v1/topics/{topic}<suffix>, or NULL. */
static const char *topic_route(const char *url, const char *suffix, size_t *topic_len)
{
  size_t n = strlen(url), pre = strlen(TOPICS_PREFIX), suf = strlen(suffix);
  if(n < pre + suf || strncmp(url, TOPICS_PREFIX, pre) != 0 || strcmp(url + n - suf, suffix) != 0)
    return NULL;
  *topic_len = n - pre - suf;
  return url + pre;
}

/* The HTTP status of a publish's outcome. */
static unsigned publish_status(enum pub_status s)
{
  switch(s) {
  case PUB_ACCEPTED: return MHD_HTTP_ACCEPTED;
  case PUB_UNKNOWN_TOPIC: return MHD_HTTP_NOT_FOUND;
  case PUB_SCHEMA_VIOLATION: return MHD_HTTP_UNPROCESSABLE_CONTENT;
  case PUB_INVALID_TOPIC: return MHD_HTTP_BAD_REQUEST;
  case PUB_IDEM_CONFLICT:
  case PUB_IDEM_IN_PROGRESS: return MHD_HTTP_CONFLICT;
  case PUB_OVERLOADED:
  case PUB_TOO_MANY_TOPICS:
  case PUB_STORE_FULL:
  case PUB_STORE_FAILED: return MHD_HTTP_SERVICE_UNAVAILABLE;
  case PUB_NO_MEMORY: break;
  }
  return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* Answers a refused publish. */
static enum MHD_Result publish_refused(struct MHD_Connection *conn, const char *topic,
                                       size_t topic_len, struct pub_request *p)
{
  unsigned status = publish_status(p->status);
  const char *code = pub_status_code(p->status);
  switch(p->status) {
  case PUB_UNKNOWN_TOPIC:
    return send_error(conn, status, code,
                      "no topic rule matches \"%.*s\" (schemas.unmatched_topics is \"reject\")",
                      (int)topic_len, topic);
  case PUB_SCHEMA_VIOLATION: {
    gw_debug("publish_rejected", "source=rest topic=%.*s rule=%s errors=%zu", (int)topic_len,
             topic, p->rule, json_array_size(p->errors));
    json_t *errors = p->errors;
    p->errors = NULL; /* the answer takes it */
    return send_json(conn, status,
                     json_pack("{s:{s:s, s:s, s:o, s:b}}", "error", "code", code, "message",
                               p->message, "errors", errors, "truncated", p->errors_truncated),
                     NULL);
  }
  default:
    if(status >= 500)
      gw_warn("publish_failed", "source=rest topic=%.*s error=%s", (int)topic_len, topic, code);
    return send_error(conn, status, code, "%s", p->message);
  }
}

/* Answers a publish from its outcome. */
static enum MHD_Result publish_answer(struct MHD_Connection *conn, const char *topic,
                                      size_t topic_len, struct pub_request *p)
{
  if(p->status != PUB_ACCEPTED)
    return publish_refused(conn, topic, topic_len, p);
  gw_debug("published", "source=rest topic=%.*s seq=%llu id=%s%s", (int)topic_len, topic,
           (unsigned long long)p->pub.seq, p->pub.id, p->replayed ? " replayed=true" : "");
  /* written out: the id is hex and dashes, and a valid topic needs no
   * escaping (building it with jansson was a tenth of a publish's CPU) */
  char text[SUB_ID_LEN + SUB_TOPIC_MAX + SUB_CURSOR_MAX + 128];
  int n;
  if(p->pub.offset)
    n = snprintf(text, sizeof(text),
                 "{\"id\":\"%s\",\"topic\":\"%.*s\",\"seq\":%llu,\"offset\":%llu,"
                 "\"cursor\":\"%s:%llu\"}",
                 p->pub.id, (int)topic_len, topic, (unsigned long long)p->pub.seq,
                 (unsigned long long)p->pub.offset, p->pub.epoch,
                 (unsigned long long)p->pub.offset);
  else
    n = snprintf(text, sizeof(text), "{\"id\":\"%s\",\"topic\":\"%.*s\",\"seq\":%llu}",
                 p->pub.id, (int)topic_len, topic, (unsigned long long)p->pub.seq);
  if(n < 0 || (size_t)n >= sizeof(text))
    return MHD_NO;
  return send_text_hdr(conn, MHD_HTTP_ACCEPTED, text, (size_t)n, NULL,
                       p->replayed ? "Idempotent-Replayed" : NULL, "true");
}

/* The pipeline finished a publish that waited for its commit. */
static void publish_done(struct pub_request *p)
{
  struct request *req = p->arg;
  pthread_mutex_lock(&req->lock);
  req->done = true;
  bool resume = req->suspended;
  struct MHD_Connection *conn = req->conn;
  struct gw_api *api = req->api;
  pthread_mutex_unlock(&req->lock);
  /* Not under the lock: once resumed, the request may be answered and
   * freed by an MHD thread at once. */
  if(resume) {
    MHD_resume_connection(conn);
    atomic_fetch_sub(&api->suspended, 1);
  }
}

static enum MHD_Result publish(struct gw_api *api, struct MHD_Connection *conn, const char *topic,
                               size_t topic_len, struct request *req)
{
  if(req->pending) /* resumed: the commit is done */
    return publish_answer(conn, topic, topic_len, &req->pub);
  if(req->too_large)
    return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                      "the body is larger than %d bytes (api.max_body_bytes)",
                      api->cfg->api_max_body_bytes);
  if(req->len == 0)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is empty: send the event's data as JSON");
  /* Parsed for the topic rules; what is published is the body itself,
   * minified: numbers and escapes stay as the publisher wrote them.
   * Duplicate keys are refused: receivers that keep the first of two would
   * see another value than the schema checked. */
  json_error_t jerr;
  json_t *data = util_json_loadb(req->body, req->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                                 &jerr);
  if(!data)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                      jerr.column);
  size_t data_len, bad;
  const char *why;
  req->data_text = malloc(req->len);
  if(!req->data_text) {
    json_decref(data);
    return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  }
  if(util_json_minify(req->body, req->len, req->data_text, &data_len, &bad, &why)) {
    json_decref(data);
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is not valid JSON: %s (at byte %zu)", why, bad);
  }

  struct pub_request *p = &req->pub;
  memcpy(req->topic, topic, topic_len); /* valid: at most SUB_TOPIC_MAX bytes */
  req->topic[topic_len] = '\0';
  p->topic = req->topic;
  p->topic_len = topic_len;
  p->data = req->data_text;
  p->data_len = data_len;
  p->data_value = data; /* for the topic rules, read during pub_publish only */
  p->idem_key = req->idem[0] ? req->idem : NULL;
  p->idem_scope = req->caller;
  p->done = publish_done;
  p->arg = req;
  req->conn = conn;
  req->api = api;
  enum pub_state st = pub_publish(api->pp, p);
  p->data_value = NULL;
  json_decref(data);
  if(st == PUB_DONE)
    return publish_answer(conn, topic, topic_len, p);
  /* Waits for the commit without holding an API thread: resumed by
   * publish_done, which may already have run. */
  pthread_mutex_lock(&req->lock);
  req->pending = true;
  bool done = req->done;
  if(!done) {
    atomic_fetch_add(&api->suspended, 1);
    MHD_suspend_connection(conn);
    req->suspended = true;
  }
  pthread_mutex_unlock(&req->lock);
  return done ? publish_answer(conn, topic, topic_len, p) : MHD_YES;
}

/* Parses /v1/webhooks[/{id}[/...]] into req. Returns false when the path is
 * not a webhooks route. */
static bool hooks_route(const char *url, struct request *req)
{
  static const char pre[] = "/v1/webhooks";
  if(strncmp(url, pre, sizeof(pre) - 1) != 0)
    return false;
  const char *p = url + sizeof(pre) - 1;
  if(*p == '\0' || strcmp(p, "/") == 0) {
    req->route = R_HOOKS;
    return true;
  }
  if(*p != '/')
    return false;
  p++;
  char seg[4][64];
  int n = 0;
  while(*p && n < 4) {
    size_t len = strcspn(p, "/");
    if(len == 0 || len >= sizeof(seg[0]))
      return false;
    memcpy(seg[n], p, len);
    seg[n++][len] = '\0';
    p += len;
    if(*p == '/')
      p++;
  }
  if(*p)
    return false;
  snprintf(req->id, sizeof(req->id), "%s", seg[0]);
  if(n == 1)
    req->route = R_HOOK;
  else if(n == 2 && strcmp(seg[1], "rotate-secret") == 0)
    req->route = R_HOOK_ROTATE;
  else if(n == 2 && strcmp(seg[1], "deliveries") == 0)
    req->route = R_HOOK_DELIVERIES;
  else if(n == 2 && strcmp(seg[1], "replay") == 0)
    req->route = R_HOOK_REPLAY;
  else if(n == 4 && strcmp(seg[1], "deliveries") == 0 && strcmp(seg[3], "retry") == 0 &&
          strlen(seg[2]) < sizeof(req->sub)) {
    req->route = R_HOOK_RETRY;
    memcpy(req->sub, seg[2], strlen(seg[2]) + 1); /* fits: checked above */
  } else
    return false;
  return true;
}

/* The methods a webhooks route takes, for 405 and Allow. */
static const char *hooks_methods(enum route r)
{
  switch(r) {
  case R_HOOKS: return "GET, POST";
  case R_HOOK: return "GET, PATCH, DELETE";
  case R_HOOK_DELIVERIES: return "GET";
  default: return "POST";
  }
}

static bool method_in(const char *method, const char *list)
{
  size_t n = strlen(method);
  for(const char *p = list; (p = strstr(p, method)); p += n)
    if((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

/* Runs a webhooks route once its body (if any) is in. */
static enum MHD_Result hooks_call(struct gw_api *api, struct MHD_Connection *conn,
                                  const char *method, struct request *req)
{
  if(req->too_large)
    return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                      "the body is larger than %d bytes (api.max_body_bytes)",
                      api->cfg->api_max_body_bytes);
  json_t *body = NULL;
  bool wants_body = strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0;
  if(wants_body && req->len) {
    json_error_t jerr;
    body = json_loadb(req->body, req->len, 0, &jerr);
    if(!body)
      return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                        "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                        jerr.column);
  }
  if(wants_body && !body &&
     (req->route == R_HOOKS || req->route == R_HOOK || req->route == R_HOOK_REPLAY))
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is empty: send a JSON object");
  const char *cursor = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
  const char *limit = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
  json_t *out = NULL;
  int status;
  bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  struct hook_service *h = api->hooks;
  switch(req->route) {
  case R_HOOKS:
    status = get ? hook_api_list(h, cursor, limit, &out) : hook_api_create(h, body, &out);
    break;
  case R_HOOK:
    status = get                            ? hook_api_get(h, req->id, &out)
             : strcmp(method, "PATCH") == 0 ? hook_api_patch(h, req->id, body, &out)
                                            : hook_api_delete(h, req->id, &out);
    break;
  case R_HOOK_ROTATE: status = hook_api_rotate(h, req->id, &out); break;
  case R_HOOK_DELIVERIES:
    status = hook_api_deliveries(h, req->id,
                                 MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "status"),
                                 cursor, limit, &out);
    break;
  case R_HOOK_RETRY: status = hook_api_retry(h, req->id, req->sub, &out); break;
  case R_HOOK_REPLAY:
    status = hook_api_replay(h, req->id, body, (size_t)api->cfg->history_max_replay, &out);
    break;
  default: status = 500; break;
  }
  json_decref(body);
  if(!out)
    return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  return send_json(conn, (unsigned)status, out, NULL);
}

/* ---- reading the history log ---- */

/* The query parameter `key` (the first if repeated): true with its decoded
 * value and length (a "%00" in it counts: the caller refuses it), false
 * when absent. A key without "=" has the value "". */
static bool query_arg(struct MHD_Connection *conn, const char *key, const char **v, size_t *len)
{
  *v = NULL;
  *len = 0;
  if(MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), v, len) !=
     MHD_YES)
    return false;
  if(!*v) {
    *v = "";
    *len = 0;
  }
  return true;
}

/* Checks a history read's path or `topic` parameter in the first call and
 * keeps it in req. Returns MHD_YES with *answered false to go on; otherwise
 * the request has been answered (400 invalid_topic). */
static enum MHD_Result history_topic(struct MHD_Connection *conn, const char *topic, size_t len,
                                     struct request *req, bool *answered)
{
  const char *why = "holds a NUL byte (%00)";
  bool pattern = req->route == R_EVENTS;
  *answered = true;
  if(!topic)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_topic",
                      "topic: required, the pattern of the topics to read (e.g. orders.>)");
  bool valid = !memchr(topic, '\0', len) &&
               (pattern ? sub_pattern_valid(topic, len, &why) : sub_topic_valid(topic, len, &why));
  if(!valid)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_topic", "%s%s", pattern ? "topic: " : "",
                      why);
  memcpy(req->topic, topic, len); /* valid: at most SUB_TOPIC_MAX bytes */
  req->topic[len] = '\0';
  req->topic_len = len;
  *answered = false;
  return MHD_YES;
}

/* Parses `limit`: 1 to EVENTS_LIMIT_MAX, decimal digits only. Returns 0 or -1. */
static int parse_limit(const char *v, size_t len, size_t *limit)
{
  size_t n = 0;
  if(len == 0 || len > 4)
    return -1;
  for(size_t i = 0; i < len; i++) {
    if(v[i] < '0' || v[i] > '9')
      return -1;
    n = n * 10 + (size_t)(v[i] - '0');
  }
  if(n < 1 || n > EVENTS_LIMIT_MAX)
    return -1;
  *limit = n;
  return 0;
}

static bool page_match(void *arg, const struct sub_event *ev)
{
  return sub_pattern_matches(arg, ev->topic);
}

/* Appends ev's herald.v1 object (as the WebSocket sends it) to b. Returns 0
 * or -1 (b is then freed). */
static int add_event(struct util_dynbuf *b, const struct sub_event *ev)
{
  char head[GW_EVENT_HEAD_MAX];
  int hn = gw_event_head(ev, head, sizeof(head));
  if(hn < 0) {
    util_dynbuf_free(b);
    return -1;
  }
  return util_dynbuf_addn(b, head, (size_t)hn) || util_dynbuf_addn(b, ev->data, ev->data_len) ||
                 util_dynbuf_addn(b, "}", 1)
             ? -1
             : 0;
}

/* A page's request: where it starts, and what it tells of a gap. */
struct page_req {
  bool has_since;
  const char *since; /* as given: a valid cursor */
  uint64_t after;
  enum sub_gap gap; /* epoch_changed, found before the read */
};

/* Writes the page of r (its first n events) as {"events","next","more"[,"gap"]}
 * to b. Returns 0 or -1 (out of memory). */
static int page_json(struct util_dynbuf *b, struct sub_log *log, const struct page_req *p,
                     const struct sub_log_result *r)
{
  const char *epoch = sub_log_epoch(log);
  uint64_t last = r->last;
  bool more = r->more;
  size_t n = 0;
  if(util_dynbuf_add(b, "{\"events\":["))
    return -1;
  for(; n < r->n; n++) {
    const struct sub_event *ev = r->ev[n];
    if(n && util_dynbuf_len(b) + ev->data_len + GW_EVENT_HEAD_MAX > EVENTS_PAGE_BYTES) {
      more = true; /* the page is full: the next one starts at this event */
      last = r->ev[n - 1]->offset;
      break;
    }
    if((n && util_dynbuf_addn(b, ",", 1)) || add_event(b, ev))
      return -1;
  }
  if(last < p->after)
    last = p->after; /* a cursor not yet pushed: never go back */
  char next[SUB_CURSOR_MAX + 1], oldest[SUB_CURSOR_MAX + 1];
  sub_cursor_format(epoch, last, next);
  if(util_dynbuf_addf(b, "],\"next\":\"%s\",\"more\":%s", next, more ? "true" : "false"))
    return -1;
  /* Without since the read starts at the oldest retained: nothing was asked
   * for that is gone. */
  enum sub_gap gap = p->gap ? p->gap : p->has_since ? r->gap : SUB_GAP_NONE;
  if(gap) {
    uint64_t o = r->gap ? r->oldest : r->n ? r->ev[0]->offset : r->hwm + 1;
    sub_cursor_format(epoch, o, oldest);
    if(util_dynbuf_addf(b, ",\"gap\":{\"requested\":\"%s\",\"oldest\":\"%s\",\"reason\":\"%s\"}",
                        p->since, oldest, sub_gap_name(gap)))
      return -1;
  }
  return util_dynbuf_addn(b, "}", 1) ? -1 : 0;
}

/* Answers 200 with the JSON built in b, or 500 when building it ran out of
 * memory (rc); frees b. */
static enum MHD_Result send_built(struct MHD_Connection *conn, int rc, struct util_dynbuf *b)
{
  enum MHD_Result ret =
      rc ? send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory")
         : send_text_hdr(conn, MHD_HTTP_OK, util_dynbuf_ptr(b), util_dynbuf_len(b), NULL, NULL,
                         NULL);
  util_dynbuf_free(b);
  return ret;
}

/* GET /v1/events: the events matching req->topic after `since` (from the
 * oldest retained without it), oldest first, at most `limit`. */
static enum MHD_Result events_page(struct MHD_Connection *conn, struct sub_log *log,
                                   struct request *req)
{
  struct page_req p = {0};
  size_t limit = EVENTS_LIMIT_DEFAULT, len;
  const char *v;
  char epoch[SUB_EPOCH_LEN + 1];
  if(query_arg(conn, "limit", &v, &len) && parse_limit(v, len, &limit))
    return bad_parameter(conn, "limit", "limit: a number from 1 to 1000 (100 when absent)");
  p.has_since = query_arg(conn, "since", &p.since, &len);
  if(p.has_since && sub_cursor_parse(p.since, len, epoch, &p.after))
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_cursor",
                      "since: not a cursor (<epoch>:<offset>, as an event's \"cursor\" or a "
                      "page's \"next\")");
  if(p.has_since && strcmp(epoch, sub_log_epoch(log)) != 0) {
    p.gap = SUB_GAP_EPOCH_CHANGED; /* history was lost since: from the oldest */
    p.after = 0;
  } else if(p.has_since && p.after >= sub_log_next(log))
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_cursor",
                      "since: the cursor is ahead of this server's history log");
  struct sub_log_query q = {
      .after = p.after, .match = page_match, .arg = req->topic, .max = limit, .newest = false};
  struct sub_log_result r;
  if(sub_log_read(log, &q, &r))
    return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
  struct util_dynbuf b;
  /* the soft bound, and room for one event past it (a page holds one at least) */
  util_dynbuf_init(&b, EVENTS_PAGE_BYTES + GW_EVENT_HEAD_MAX + (r.n ? r.ev[0]->data_len : 0) +
                           EVENTS_TAIL_MAX);
  int rc = page_json(&b, log, &p, &r);
  sub_log_result_clear(&r);
  return send_built(conn, rc, &b);
}

/* GET /v1/topics/{topic}/events/latest: the topic's last retained event. */
static enum MHD_Result latest_event(struct MHD_Connection *conn, struct sub_engine *e,
                                    struct request *req)
{
  struct sub_event *ev = sub_engine_latest(e, req->topic, req->topic_len);
  if(!ev)
    return send_error(conn, MHD_HTTP_NOT_FOUND, "not_found",
                      "no event of %s is in the history log", req->topic);
  struct util_dynbuf b;
  util_dynbuf_init(&b, GW_EVENT_HEAD_MAX + ev->data_len + 1);
  int rc = add_event(&b, ev);
  sub_event_unref(ev);
  return send_built(conn, rc, &b);
}

/* Runs a history read once the request is in. */
static enum MHD_Result history_call(struct gw_api *api, struct MHD_Connection *conn,
                                    struct request *req)
{
  struct sub_engine *e = hook_engine(api->hooks);
  struct sub_log *log = sub_engine_history(e);
  if(!log)
    return send_error(conn, MHD_HTTP_CONFLICT, "history_disabled",
                      "history is off on this server (history.enabled): there are no events to "
                      "read");
  return req->route == R_LATEST ? latest_event(conn, e, req) : events_page(conn, log, req);
}

/* Answers 401 with the Bearer challenge. */
static enum MHD_Result unauthorized(struct MHD_Connection *conn, const char *msg)
{
  gw_debug("api_error", "status=401 code=unauthorized");
  return send_json_hdr(conn, MHD_HTTP_UNAUTHORIZED,
                       json_pack("{s:{s:s, s:s}}", "error", "code", "unauthorized", "message", msg),
                       NULL, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"herald\"");
}

/* Authenticates and authorizes a request for `route` (the topic for a
 * publish, the pattern or topic for a history read). Returns MHD_YES with *answered false to go on, and *caller the
 * API key's name ("" when the API has no keys: every caller is anonymous);
 * otherwise the request has been answered (401, 403 or 429). */
static enum MHD_Result authorize(struct gw_api *api, struct MHD_Connection *conn,
                                 enum route route, const char *topic, size_t topic_len,
                                 bool *answered, const char **caller)
{
  *answered = false;
  *caller = "";
  const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if(h && !h[strspn(h, " \t")]) {
    /* present but empty: a client that meant to send a key and has none
     * (an unset variable), refused even where no key is needed */
    *answered = true;
    return unauthorized(conn, "the Authorization header is empty: send Authorization: Bearer "
                              "<key>, or no Authorization header");
  }
  if(!gw_auth_api_keys_required(api->auth)) {
    /* open: allowed on loopback (or with auth.insecure), where a page whose
     * name was re-pointed at 127.0.0.1 (DNS rebinding) must not get in */
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    if(api->open_loopback && !gw_host_is_loopback(host)) {
      *answered = true;
      return send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
                        "this API has no keys and serves loopback names only (Host: "
                        "localhost, 127.0.0.1 or [::1]); configure auth.api_keys");
    }
    return MHD_YES;
  }
  *answered = true;
  const char *key = "";
  size_t klen = 0;
  switch(util_bearer_parse(h, &key, &klen)) {
  case UTIL_BEARER_OK:
  case UTIL_BEARER_EMPTY: break; /* an empty key fails the lookup below */
  case UTIL_BEARER_MISSING:
    return unauthorized(conn, "this API needs a key: send Authorization: Bearer <key>");
  case UTIL_BEARER_NOT_BEARER: return unauthorized(conn, "use Authorization: Bearer <key>");
  }
  struct gw_api_key *k = gw_auth_api_key(api->auth, key, klen);
  if(!k) {
    /* one line a second per API thread: anyone can send bad keys at will */
    static _Thread_local struct util_throttle auth_log;
    unsigned long suppressed;
    if(util_throttle_ok(&auth_log, time(NULL), &suppressed))
      gw_info("api_auth_failed", "reason=unknown_key suppressed=%lu", suppressed);
    return unauthorized(conn, "the API key is not valid");
  }
  char t[SUB_TOPIC_MAX + 1];
  snprintf(t, sizeof(t), "%.*s", (int)topic_len, topic ? topic : "");
  if(route == R_EVENTS || route == R_LATEST) {
    if(!k->admin && !gw_grants_can_subscribe(&k->grants, t)) {
      gw_info("api_forbidden", "key=%s route=events topic=%s", k->name, t);
      return send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
                        "the API key \"%s\" may not read %s (its subscribe patterns do not "
                        "cover it)",
                        k->name, t);
    }
    *answered = false;
    *caller = k->name;
    return MHD_YES;
  }
  if(route != R_PUBLISH) {
    if(!k->admin) {
      gw_info("api_forbidden", "key=%s route=webhooks", k->name);
      return send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
                        "the API key \"%s\" has no admin scope (needed for /v1/webhooks)",
                        k->name);
    }
    *answered = false;
    return MHD_YES;
  }
  if(!gw_grants_can_publish(&k->grants, t)) {
    gw_info("api_forbidden", "key=%s topic=%s", k->name, t);
    return send_error(conn, MHD_HTTP_FORBIDDEN, "forbidden",
                      "the API key \"%s\" may not publish on %s", k->name, t);
  }
  pthread_mutex_lock(&k->lock);
  int64_t wait_ms = gw_bucket_take(&k->bucket, gw_now_us());
  pthread_mutex_unlock(&k->lock);
  if(wait_ms) {
    char after[24];
    snprintf(after, sizeof(after), "%lld", (long long)((wait_ms + 999) / 1000));
    gw_debug("api_error", "status=429 code=rate_limited key=%s", k->name);
    return send_json_hdr(
        conn, MHD_HTTP_TOO_MANY_REQUESTS,
        json_pack("{s:{s:s, s:s, s:I}}", "error", "code", "rate_limited", "message",
                  "too many publishes with this API key: wait retry_after_ms",
                  "retry_after_ms", (json_int_t)wait_ms),
        NULL, MHD_HTTP_HEADER_RETRY_AFTER, after);
  }
  *answered = false;
  *caller = k->name;
  return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
  struct gw_api *api = cls;
  struct request *req = *req_cls;

  if(!req) { /* first call: headers only */
    req = calloc(1, sizeof(*req));
    if(!req)
      return MHD_NO;
    pthread_mutex_init(&req->lock, NULL);
    *req_cls = req;
    atomic_fetch_add(&api->inflight, 1);
    const char *bad = NULL;
    unsigned refused = framing_check(conn, method, version, &bad);
    if(refused)
      return framing_refused(conn, refused, bad);

    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, "HEAD") == 0;
    if(strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
      if(!get)
        return method_not_allowed(conn, "GET, HEAD", "use GET %s", url);
      if(url[1] == 'r' && atomic_load(&api->quiesced))
        return send_json(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                         json_pack("{s:s}", "status", "stopping"), NULL);
      return send_json(conn, MHD_HTTP_OK,
                       json_pack("{s:s}", "status", url[1] == 'r' ? "ready" : "ok"), NULL);
    }
    size_t topic_len;
    const char *latest = topic_route(url, LATEST_SUFFIX, &topic_len);
    if(latest || strcmp(url, EVENTS_PATH) == 0) {
      req->route = latest ? R_LATEST : R_EVENTS;
      if(strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return method_not_allowed(conn, "GET", "use GET %s", url);
      const char *pattern = latest;
      if(!latest && !query_arg(conn, "topic", &pattern, &topic_len))
        pattern = NULL;
      bool answered;
      enum MHD_Result r = history_topic(conn, pattern, topic_len, req, &answered);
      if(!answered)
        r = authorize(api, conn, req->route, req->topic, req->topic_len, &answered, &req->caller);
      return r; /* answered, or a body may follow (read and dropped) */
    }
    const char *topic = topic_route(url, EVENTS_SUFFIX, &topic_len);
    if(!topic) {
      if(!hooks_route(url, req))
        return send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such route: %s", url);
      const char *allow = hooks_methods(req->route);
      if(!method_in(method, allow))
        return method_not_allowed(conn, allow, "use %s", allow);
      bool answered;
      enum MHD_Result r = authorize(api, conn, req->route, NULL, 0, &answered, &req->caller);
      if(answered)
        return r;
      if(strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        bool empty = cl && strcmp(cl, "0") == 0;
        if(ct && !is_json_type(ct))
          return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                            "Content-Type must be application/json");
        if(!ct && !empty && req->route != R_HOOK_ROTATE && req->route != R_HOOK_RETRY)
          return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                            "Content-Type must be application/json");
      }
      return MHD_YES; /* a body may follow */
    }
    req->route = R_PUBLISH;
    if(strcmp(method, MHD_HTTP_METHOD_POST) != 0)
      return method_not_allowed(conn, "POST", "use POST to publish");
    const char *why = NULL;
    if(!sub_topic_valid(topic, topic_len, &why))
      return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_topic", "%s", why);
    bool answered;
    enum MHD_Result r = authorize(api, conn, R_PUBLISH, topic, topic_len, &answered, &req->caller);
    if(answered)
      return r;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if(!is_json_type(ct))
      return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                        "Content-Type must be application/json");
    /* Refused on Content-Length in this first call, before a byte of the
     * body: a client that sent Expect: 100-continue gets the 413 instead of
     * 100 and sends nothing. libmicrohttpd then closes the connection, and
     * completed() lingers it, so a client already sending reads the 413.
     * (Reading the body to its end here first would hold the answer back
     * until the whole body came, and give none past a bound.) */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if(cl && strtoull(cl, NULL, 10) > (unsigned long long)api->cfg->api_max_body_bytes)
      return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                        "the body is larger than %d bytes (api.max_body_bytes)",
                        api->cfg->api_max_body_bytes);
    const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    if(key) {
      if(!pub_idem_key_valid(key))
        return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_idempotency_key",
                          "Idempotency-Key must be 1 to 255 visible ASCII characters");
      snprintf(req->idem, sizeof(req->idem), "%s", key);
    }
    return MHD_YES; /* the body follows */
  }

  if(*upload_size) { /* a piece of the body */
    size_t max = (size_t)api->cfg->api_max_body_bytes;
    /* libmicrohttpd 0.9.75 takes no response once the body has begun (only
     * in the first call or after the last piece), so a body past the limit
     * (chunked: no Content-Length to refuse up front) is read and dropped,
     * to answer 413 at its end; one that keeps coming past DISCARD_MAX more
     * bytes gets its connection closed instead, unanswered. */
    if(req->too_large || req->len + *upload_size > max) {
      if(!req->too_large) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->len = req->cap = 0;
      }
      req->discarded += *upload_size;
      *upload_size = 0;
      if(req->discarded > DISCARD_MAX) {
        gw_warn("api_body_dropped", "reason=too_large max=%zu", max);
        return MHD_NO;
      }
      return MHD_YES;
    }
    if(req->len + *upload_size > req->cap) {
      size_t cap = req->cap ? req->cap : 1024;
      while(cap < req->len + *upload_size)
        cap *= 2;
      if(cap > max)
        cap = max;
      char *nb = realloc(req->body, cap);
      if(!nb)
        return MHD_NO;
      req->body = nb;
      req->cap = cap;
    }
    memcpy(req->body + req->len, upload, *upload_size);
    req->len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  req->body_end = true; /* the last call: the body is in */

  if(req->route == R_EVENTS || req->route == R_LATEST)
    return history_call(api, conn, req);
  if(req->route != R_PUBLISH)
    return hooks_call(api, conn, method, req);
  size_t topic_len = 0; /* gcc -O2 cannot see topic_route set it (maybe-uninitialized) */
  const char *topic = topic_route(url, EVENTS_SUFFIX, &topic_len);
  return publish(api, conn, topic, topic_len, req);
}

/* Keeps a socket libmicrohttpd is about to close open, through a
 * duplicate, until its input is drained (linger.h). libmicrohttpd 0.9.75
 * has written the whole answer when it reports a request completed, then
 * shuts the socket's write side (TLS: after close_notify), takes it out of
 * its epoll set and closes its descriptor; the duplicate keeps the socket,
 * so the client reads the answer and an end of file, not a reset. */
static void linger(struct gw_api *api, struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  int fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
  if(fd < 0 || !gw_linger_add(api->linger, fd)) {
    static _Thread_local struct util_throttle full_log;
    unsigned long suppressed;
    if(util_throttle_ok(&full_log, time(NULL), &suppressed))
      gw_warn("api_linger_full", "max=%d suppressed=%lu", LINGER_SOCKS, suppressed);
  }
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
  struct gw_api *api = cls;
  struct request *req = *req_cls;
  if(!req)
    return;
  /* answered in the first call, before the request was read to its end:
   * libmicrohttpd 0.9.75 then reads nothing more and closes the socket
   * (MHD_queue_response sets discard_request), with a body or a pipelined
   * request maybe still coming, which would reset the connection */
  if(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !req->body_end)
    linger(api, conn);
  free(req->body);
  free(req->data_text);
  pub_request_clear(&req->pub);
  pthread_mutex_destroy(&req->lock);
  free(req);
  *req_cls = NULL;
  atomic_fetch_sub(&api->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  (void)cls;
  char msg[256];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  for(char *p = msg; *p; p++)
    if(*p == '\n' || *p == '"')
      *p = ' ';
  gw_warn("mhd", "msg=\"%s\"", msg);
}

/* Reads a whole PEM file as a string (libmicrohttpd takes TLS material in
 * memory). Returns it (malloc'd) or NULL. */
static char *read_pem(const char *path)
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return NULL;
  char *buf = malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if(!buf || n == 0 || n == (1 << 20) - 1) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

struct gw_api *gw_api_start(const struct gw_config *cfg, struct pub_pipeline *pp,
                            struct hook_service *hooks, struct gw_auth *auth, int listen_fd)
{
  struct gw_api *api = calloc(1, sizeof(*api));
  if(!api) {
    close(listen_fd);
    return NULL;
  }
  api->cfg = cfg;
  api->pp = pp;
  api->hooks = hooks;
  api->auth = auth;
  api->open_loopback = gw_open_on_loopback(cfg, "api");
  api->listen_fd = listen_fd;
  api->linger = gw_linger_new(LINGER_SOCKS, LINGER_BYTES, LINGER_MS);
  if(!api->linger) {
    gw_error("api_start_failed", "reason=\"no memory or thread for lingering closes\"");
    close(listen_fd);
    free(api);
    return NULL;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
                                  {MHD_OPTION_END, 0, NULL}};
  if(cfg->api_tls_cert[0]) {
    /* libmicrohttpd does TLS with GnuTLS, as Debian builds it */
    if(MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      gw_error("api_start_failed", "reason=\"this libmicrohttpd has no TLS: api.tls_cert\"");
      close(listen_fd);
      gw_linger_free(api->linger);
      free(api);
      return NULL;
    }
    api->tls_cert = read_pem(cfg->api_tls_cert);
    api->tls_key = read_pem(cfg->api_tls_key);
    if(!api->tls_cert || !api->tls_key) {
      gw_error("api_start_failed", "reason=\"cannot read api.tls_cert or api.tls_key\"");
      close(listen_fd);
      goto fail;
    }
    flags |= MHD_USE_TLS;
    tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert};
    tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls_key};
  }
  api->d = MHD_start_daemon(
      flags, 0, NULL, NULL, handle, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
      MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->api_threads,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->api_max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, completed, api,
      /* headers and a read buffer (bodies are copied out as they come):
       * libmicrohttpd zeroes the whole pool for each keep-alive request,
       * and its 32 KiB default cost 7 % of a publish */
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY,
      /* MHD_OPTION_STRICT_FOR_CLIENT stays 0: at 1, 0.9.75 refuses an
       * HTTP/1.1 request without Host with its response head written
       * twice, and at -1 it only refuses a space before a header's colon;
       * framing_check does both (docs/security.md, HTTP framing) */
      MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
  if(!api->d) {
    gw_error("api_start_failed", NULL); /* MHD has closed listen_fd */
    goto fail;
  }
  return api;
fail:
  gw_linger_free(api->linger);
  free(api->tls_cert);
  free(api->tls_key);
  free(api);
  return NULL;
}

void gw_api_quiesce(struct gw_api *api)
{
  if(!api || atomic_exchange(&api->quiesced, true))
    return;
  /* With internal threads the socket may be closed only after
   * MHD_stop_daemon; shutting it down already turns newcomers away. */
  MHD_socket fd = MHD_quiesce_daemon(api->d);
  api->listen_fd = fd;
  if(fd != MHD_INVALID_SOCKET)
    shutdown(fd, SHUT_RDWR);
}

void gw_api_stop(struct gw_api *api, int timeout_ms)
{
  if(!api)
    return;
  gw_api_quiesce(api);
  for(int waited = 0; waited < timeout_ms && atomic_load(&api->inflight) > 0; waited += 10) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  /* A publish waiting for its commit is answered within a dispatcher turn
   * (the webhooks layer stops after this port); libmicrohttpd must not be
   * stopped while a connection is suspended. */
  for(int waited = 0; atomic_load(&api->suspended) > 0 && waited < 60000; waited += 10) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  int left = atomic_load(&api->inflight);
  if(left)
    gw_warn("api_stop_with_requests", "inflight=%d suspended=%d", left,
            atomic_load(&api->suspended));
  MHD_stop_daemon(api->d);
  gw_linger_free(api->linger); /* after the daemon: it adds sockets */
  if(api->listen_fd != MHD_INVALID_SOCKET)
    close(api->listen_fd);
  free(api->tls_cert);
  free(api->tls_key);
  free(api);
}
