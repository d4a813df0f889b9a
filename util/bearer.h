#ifndef HERALD_UTIL_BEARER_H
#define HERALD_UTIL_BEARER_H

#include <stddef.h>

/* The token of an "Authorization: Bearer <token>" header value (RFC 6750):
 * the REST port's API key and the WebSocket handshake's JWT. */

enum util_bearer_err {
  UTIL_BEARER_OK = 0,
  UTIL_BEARER_MISSING,    /* no header value (NULL) */
  UTIL_BEARER_NOT_BEARER, /* the value does not start "Bearer " */
  UTIL_BEARER_EMPTY,      /* "Bearer " and nothing after the spaces */
};

/* Parses a NUL-terminated header value: "Bearer" in any case, one space,
 * then any further spaces are skipped; the token is the rest, to the end
 * (the HTTP server has capped the value's length). Returns 0 with *token
 * pointing into `value` and *len its length, else an error (each is a 401
 * for the callers) and leaves *token and *len alone. */
int util_bearer_parse(const char *value, const char **token, size_t *len);

#endif
