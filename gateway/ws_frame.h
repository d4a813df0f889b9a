#ifndef HERALD_WS_FRAME_H
#define HERALD_WS_FRAME_H

#include <stddef.h>

#include "event.h"

/* Server-to-client RFC 6455 frames as Herald sends them: one unmasked
 * FIN text frame per message, header and payload in one shared buffer. */

#define GW_WS_HEADER_MAX 10 /* the largest server frame header */

/* Returns a text frame around `payload` (copied), with one reference, or
 * NULL when out of memory. */
struct sub_frame *gw_ws_text_frame(const char *payload, size_t len);

/* For builders that write the payload in place: a frame with room for a
 * header and len payload bytes at sub_frame_body(); seal it with
 * gw_ws_seal_text once the payload is written. */
struct sub_frame *gw_ws_frame_alloc(size_t len);
void gw_ws_seal_text(struct sub_frame *f);

#endif
