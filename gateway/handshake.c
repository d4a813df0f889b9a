#include "handshake.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "client_internal.h"
#include "log.h"
#include "net.h"
#include "util/bearer.h"

const char *gw_handshake_listed_origin(const struct gw_client_port *cp, const char *origin)
{
  json_t *list = cp->cfg->client_allowed_origins;
  const char *any = NULL;
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v)
  {
    const char *o = json_string_value(v);
    if(o && strcmp(o, origin) == 0)
      return o;
    if(o && strcmp(o, "*") == 0)
      any = o;
  }
  return any;
}

/* True when the handshake may go on as far as its Origin goes: no Origin
 * (not a browser), one listed in client.allowed_origins ("*": any), or with
 * no list, the page's own origin (Origin's host equal to the Host header). */
static bool origin_allowed(const struct gw_client_port *cp, struct lws *wsi)
{
  char origin[256], host[256];
  if(lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0)
    return true;
  if(lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
    return false;
  json_t *list = cp->cfg->client_allowed_origins;
  if(list && json_array_size(list))
    return gw_handshake_listed_origin(cp, origin) != NULL;
  if(lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0)
    return false;
  const char *rest = strncasecmp(origin, "http://", 7) == 0    ? origin + 7
                     : strncasecmp(origin, "https://", 8) == 0 ? origin + 8
                                                              : NULL;
  return rest && strcasecmp(rest, host) == 0;
}

/* Open on loopback: a page whose name was re-pointed at 127.0.0.1 (DNS
 * rebinding) passes the same-origin check, but not this one. True when the
 * Host header is absent or a loopback name. */
static bool host_allowed(struct lws *wsi)
{
  char host[256];
  int n = lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
  return n == 0 || (n > 0 && gw_host_is_loopback(host));
}

/* Copies the handshake's token (Authorization: Bearer, else ?token=) into
 * buf. Returns its length, 0 when there is none, -1 when malformed (*why
 * says how): a header that is there but not "Bearer <token>", an empty one
 * included, or an empty ?token= (either is a mistake, not anonymity). */
static int handshake_token(struct lws *wsi, char *buf, int size, const char **why)
{
  int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  /* an empty header has no length, but has a fragment (copied: 0) */
  if(n > 0 || lws_hdr_copy_fragment(wsi, buf, size, WSI_TOKEN_HTTP_AUTHORIZATION, 0) == 0) {
    *why = "the Authorization header is not Bearer <token>";
    const char *t;
    size_t len;
    /* not Bearer, or "Bearer " and nothing: malformed, not anonymous */
    if(n >= size || lws_hdr_copy(wsi, buf, size, WSI_TOKEN_HTTP_AUTHORIZATION) != n ||
       util_bearer_parse(buf, &t, &len) != UTIL_BEARER_OK)
      return -1;
    memmove(buf, t, len + 1);
    return (int)len;
  }
  const char *t = lws_get_urlarg_by_name(wsi, "token=", buf, size);
  if(!t)
    return 0;
  n = (int)strlen(t);
  if(n == 0) {
    *why = "the token parameter is empty";
    return -1;
  }
  memmove(buf, t, (size_t)n + 1);
  return n;
}

/* Verifies the handshake's token, if any, and leaves its identity on the
 * socket. Returns 0, or 401. */
static int token_check(struct gw_worker *w, struct lws *wsi)
{
  /* bigger than any token taken, so a longer one is seen (and refused)
   * rather than taken for no token: lws finds no argument that does not fit */
  static _Thread_local char token[2 * UTIL_TOKEN_MAX + 4096];
  const char *malformed = NULL;
  int n = handshake_token(wsi, token, (int)sizeof(token), &malformed);
  if(n == 0)
    return 0;
  struct gw_sock_info *si = lws_get_opaque_user_data(wsi);
  struct gw_identity *id = calloc(1, sizeof(*id));
  char why[GW_AUTH_WHY_MAX] = "out of memory";
  if(malformed)
    snprintf(why, sizeof(why), "%s", malformed);
  if(!si || !id || n < 0 ||
     gw_auth_verify(w->cp->auth, token, (size_t)n, (long long)time(NULL), id, why)) {
    free(id);
    if(util_throttle_ok(&w->refused_log, time(NULL), NULL))
      gw_info("client_refused", "worker=%d status=401 reason=\"%s\"", w->idx, why);
    return HTTP_STATUS_UNAUTHORIZED;
  }
  if(si->id) { /* a second upgrade request on the socket */
    gw_identity_clear(si->id);
    free(si->id);
  }
  si->id = id;
  return 0;
}

static struct lws_token_limits limits;

static void limits_fill(void)
{
  for(int t = 0; t < WSI_TOKEN_COUNT; t++)
    limits.token_limit[t] = GW_HEADER_VALUE_MAX;
}

const struct lws_token_limits *gw_handshake_token_limits(void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, limits_fill); /* each worker makes its context */
  return &limits;
}

bool gw_handshake_refuse_too_large(struct gw_worker *w, struct lws *wsi)
{
  for(int t = 0; t < WSI_TOKEN_COUNT; t++) {
    if(lws_hdr_total_length(wsi, (enum lws_token_indexes)t) >= GW_HEADER_VALUE_MAX) {
      if(util_throttle_ok(&w->refused_log, time(NULL), NULL))
        gw_info("client_refused", "worker=%d status=431 reason=header_too_large max_bytes=%d",
                w->idx, GW_HEADER_VALUE_MAX - 1);
      lws_return_http_status(wsi, GW_HTTP_HEADERS_TOO_LARGE, "request headers too large");
      return true;
    }
  }
  return false;
}

int gw_handshake_check(struct gw_worker *w, struct lws *wsi)
{
  struct gw_client_port *cp = w->cp;
  if(cp->open_loopback && !host_allowed(wsi)) {
    if(util_throttle_ok(&w->refused_log, time(NULL), NULL))
      gw_info("client_refused", "worker=%d status=403 reason=host_not_loopback", w->idx);
    return HTTP_STATUS_FORBIDDEN;
  }
  if(!origin_allowed(cp, wsi)) {
    if(util_throttle_ok(&w->refused_log, time(NULL), NULL))
      gw_info("client_refused", "worker=%d status=403 reason=origin", w->idx);
    return HTTP_STATUS_FORBIDDEN;
  }
  return token_check(w, wsi);
}
