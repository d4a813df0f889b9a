#ifndef HERALD_DEMO_PAGE_H
#define HERALD_DEMO_PAGE_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

/* Plain HTTP on the client port: the demo page (gateway/demo.html, embedded
 * at build time) at /, 404 for anything else. */

/* Answers the HTTP request for uri (LWS_CALLBACK_HTTP): GET or HEAD / gets
 * the page's headers now and, for GET, *pending is set: the body follows at
 * the next writeable callback. A request with a body is answered and
 * closed, not read to its end. Returns what the lws callback returns. */
int gw_demo_page_request(struct lws *wsi, const char *uri, bool *pending);

/* Writes the page's body if *pending (LWS_CALLBACK_HTTP_WRITEABLE), through
 * scratch (LWS_PRE + cap bytes). Returns what the lws callback returns. */
int gw_demo_page_body(struct lws *wsi, bool *pending, unsigned char *scratch, size_t cap);

#endif
