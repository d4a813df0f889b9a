#ifndef HERALD_HANDSHAKE_H
#define HERALD_HANDSHAKE_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "util/caps.h"

struct gw_worker;
struct gw_client_port;

/* The longest request header value (or URI) kept: one this long or longer
 * is cut there by libwebsockets and the request refused with 431. Room for
 * "Bearer " and the longest token Herald takes, so that a token too long is
 * still refused as a token (401). The whole request must also fit the
 * context's max_http_header_data; past that libwebsockets drops the socket
 * without an answer. */
#define GW_HEADER_VALUE_MAX (UTIL_TOKEN_MAX + 2048)
#define GW_HTTP_HEADERS_TOO_LARGE 431 /* RFC 6585 */

/* The limits above for every header libwebsockets knows, for the context's
 * info.token_limits. */
const struct lws_token_limits *gw_handshake_token_limits(void);

/* True when a header of the request on wsi reached GW_HEADER_VALUE_MAX
 * (it was cut): the request has then been answered with 431 (the callback
 * returns 1), logged once a second (client_refused) on w. */
bool gw_handshake_refuse_too_large(struct gw_worker *w, struct lws *wsi);

/* Checks a WebSocket upgrade request on wsi before it is accepted: the
 * Host (open on loopback: DNS rebinding), the Origin, then the token if one
 * came (Authorization: Bearer, else ?token=), whose identity is left on the
 * socket's user data for the connection to take. Returns 0 to go on, else
 * the HTTP status it was refused with (403 Host or Origin, 401 token).
 * Check gw_handshake_refuse_too_large first. */
int gw_handshake_check(struct gw_worker *w, struct lws *wsi);

/* The entry of client.allowed_origins that lets origin in: the origin
 * itself, else "*" when listed, else NULL (also with no list: the
 * same-origin rule of the handshake is not a listing). For CORS headers. */
const char *gw_handshake_listed_origin(const struct gw_client_port *cp, const char *origin);

#endif
