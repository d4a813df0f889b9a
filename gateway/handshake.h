#ifndef HERALD_HANDSHAKE_H
#define HERALD_HANDSHAKE_H

#include <libwebsockets.h>

struct gw_worker;

/* Checks a WebSocket upgrade request on wsi before it is accepted: the
 * Host (open on loopback: DNS rebinding), the Origin, then the token if one
 * came (Authorization: Bearer, else ?token=), whose identity is left on the
 * socket's user data for the connection to take. Returns 0 to go on, else
 * the HTTP status it was refused with (403 Host or Origin, 401 token). */
int gw_handshake_check(struct gw_worker *w, struct lws *wsi);

#endif
