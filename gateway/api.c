#include "api.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TOPICS_PREFIX "/v1/topics/"
#define EVENTS_SUFFIX "/events"
#define DISCARD_MAX (1u << 20) /* body bytes read and dropped past the limit */

struct gw_api {
  const struct gw_config *cfg;
  struct sub_broker *broker;
  const struct gw_rules *rules;
  struct MHD_Daemon *d;
  int listen_fd;
  atomic_bool quiesced;
  atomic_int inflight;
};

/* One request's state, kept by libmicrohttpd between calls. */
struct request {
  char *body;
  size_t len, cap;
  bool too_large;
  size_t discarded; /* body bytes dropped after too_large */
};

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *obj,
                                 const char *allow)
{
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if(!text)
    return MHD_NO; /* out of memory: drop the connection */
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  if(!r) {
    free(text);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if(allow)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
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
  enum MHD_Result r = send_error_allow(conn, MHD_HTTP_METHOD_NOT_ALLOWED, allow,
                                       "method_not_allowed", fmt, ap);
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

/* Returns the topic part of /v1/topics/{topic}/events, or NULL. */
static const char *events_route(const char *url, size_t *topic_len)
{
  size_t n = strlen(url), pre = strlen(TOPICS_PREFIX), suf = strlen(EVENTS_SUFFIX);
  if(n < pre + suf || strncmp(url, TOPICS_PREFIX, pre) != 0 ||
     strcmp(url + n - suf, EVENTS_SUFFIX) != 0)
    return NULL;
  *topic_len = n - pre - suf;
  return url + pre;
}

/* Applies the topic rules to data. Returns true when the publish is refused
 * (*r then holds the answer: 404 unknown_topic or 422 schema_violation). */
static bool check_rules(struct gw_api *api, struct MHD_Connection *conn, const char *topic,
                        size_t topic_len, const json_t *data, enum MHD_Result *r)
{
  char name[SUB_TOPIC_MAX + 1];
  snprintf(name, sizeof(name), "%.*s", (int)topic_len, topic);
  struct schema_result res;
  const char *rule;
  switch(gw_rules_check(api->rules, name, data, &res, &rule)) {
  case GW_VERDICT_OK: return false;
  case GW_VERDICT_UNKNOWN_TOPIC:
    *r = send_error(conn, MHD_HTTP_NOT_FOUND, "unknown_topic",
                    "no topic rule matches \"%s\" (schemas.unmatched_topics is \"reject\")", name);
    return true;
  case GW_VERDICT_INVALID: break;
  }
  gw_debug("publish_rejected", "source=rest topic=%s rule=%s errors=%zu", name, rule, res.count);
  json_t *errors = gw_rules_errors_json(&res);
  if(!errors) {
    *r = send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
    return true;
  }
  char msg[SUB_TOPIC_MAX + 64];
  snprintf(msg, sizeof(msg), "data does not match the schema of topic rule \"%s\"", rule);
  *r = send_json(conn, MHD_HTTP_UNPROCESSABLE_CONTENT,
                 json_pack("{s:{s:s, s:s, s:o, s:b}}", "error", "code", "schema_violation",
                           "message", msg, "errors", errors, "truncated", res.truncated),
                 NULL);
  return true;
}

static enum MHD_Result publish(struct gw_api *api, struct MHD_Connection *conn, const char *topic,
                               size_t topic_len, struct request *req)
{
  if(req->too_large)
    return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                      "the body is larger than %d bytes (api.max_body_bytes)",
                      api->cfg->api_max_body_bytes);
  if(req->len == 0)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is empty: send the event's data as JSON");
  json_error_t jerr;
  json_t *data = json_loadb(req->body, req->len, JSON_DECODE_ANY, &jerr);
  if(!data)
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_json",
                      "the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                      jerr.column);
  if(gw_rules_active(api->rules)) {
    enum MHD_Result r;
    if(check_rules(api, conn, topic, topic_len, data, &r)) {
      json_decref(data);
      return r;
    }
  }
  char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(data);
  if(!text)
    return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");

  struct sub_published pub;
  enum sub_err e = sub_broker_publish(api->broker, topic, topic_len, text, strlen(text), &pub);
  free(text);
  switch(e) {
  case SUB_OK:
    gw_debug("published", "source=rest topic=%.*s seq=%llu id=%s", (int)topic_len, topic,
             (unsigned long long)pub.seq, pub.id);
    return send_json(conn, MHD_HTTP_ACCEPTED,
                     json_pack("{s:s, s:s%, s:I}", "id", pub.id, "topic", topic, topic_len, "seq",
                               (json_int_t)pub.seq),
                     NULL);
  case SUB_EOVERLOADED:
    gw_warn("publish_failed", "source=rest error=overloaded");
    return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded",
                      "client workers are falling behind; retry later");
  case SUB_ETOOMANYTOPICS:
    gw_warn("publish_failed", "source=rest error=too_many_topics");
    return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_topics",
                      "the topic table is full (broker.max_topics)");
  case SUB_EINVAL:
    return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_topic", "invalid topic");
  case SUB_ENOMEM:
    break;
  }
  return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "out of memory");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
  struct gw_api *api = cls;
  struct request *req = *req_cls;
  (void)version;

  if(!req) { /* first call: headers only */
    req = calloc(1, sizeof(*req));
    if(!req)
      return MHD_NO;
    *req_cls = req;
    atomic_fetch_add(&api->inflight, 1);

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
    const char *topic = events_route(url, &topic_len);
    if(!topic)
      return send_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such route: %s", url);
    if(strcmp(method, MHD_HTTP_METHOD_POST) != 0)
      return method_not_allowed(conn, "POST", "use POST to publish");
    const char *why = NULL;
    if(!sub_topic_valid(topic, topic_len, &why))
      return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_topic", "%s", why);
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if(!is_json_type(ct))
      return send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                        "Content-Type must be application/json");
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if(cl && strtoull(cl, NULL, 10) > (unsigned long long)api->cfg->api_max_body_bytes)
      return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                        "the body is larger than %d bytes (api.max_body_bytes)",
                        api->cfg->api_max_body_bytes);
    return MHD_YES; /* the body follows */
  }

  if(*upload_size) { /* a piece of the body */
    size_t max = (size_t)api->cfg->api_max_body_bytes;
    /* libmicrohttpd 0.9.75 takes no response before the body is read, so a
     * body past the limit (chunked: no Content-Length to refuse up front) is
     * read and dropped, to answer 413 at its end; one that keeps coming
     * past DISCARD_MAX more bytes gets its connection closed instead. */
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

  size_t topic_len;
  const char *topic = events_route(url, &topic_len);
  return publish(api, conn, topic, topic_len, req);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
  struct gw_api *api = cls;
  struct request *req = *req_cls;
  (void)conn;
  (void)toe;
  if(!req)
    return;
  free(req->body);
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

struct gw_api *gw_api_start(const struct gw_config *cfg, struct sub_broker *broker,
                            const struct gw_rules *rules, int listen_fd)
{
  struct gw_api *api = calloc(1, sizeof(*api));
  if(!api) {
    close(listen_fd);
    return NULL;
  }
  api->cfg = cfg;
  api->broker = broker;
  api->rules = rules;
  api->listen_fd = listen_fd;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                   MHD_USE_ERROR_LOG;
  api->d = MHD_start_daemon(
      flags, 0, NULL, NULL, handle, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
      MHD_OPTION_LISTEN_SOCKET, listen_fd,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->api_threads, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)cfg->api_max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
      MHD_OPTION_NOTIFY_COMPLETED, completed, api, MHD_OPTION_END);
  if(!api->d) {
    gw_error("api_start_failed", NULL); /* MHD has closed listen_fd */
    free(api);
    return NULL;
  }
  return api;
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
  int left = atomic_load(&api->inflight);
  if(left)
    gw_warn("api_stop_with_requests", "inflight=%d", left);
  MHD_stop_daemon(api->d);
  if(api->listen_fd != MHD_INVALID_SOCKET)
    close(api->listen_fd);
  free(api);
}
