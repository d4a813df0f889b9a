#ifndef HERALD_SEND_QUEUE_H
#define HERALD_SEND_QUEUE_H

#include <stddef.h>

#include "event.h"

/* Frames waiting to be written to one connection: a ring of references to
 * shared, immutable frames (never copies), with the bytes they hold. The
 * head may be partly written: `off` of its bytes are out. Not locked: one
 * worker thread owns each queue. */
struct gw_send_queue {
  struct sub_frame **f;
  size_t head, n, cap;
  size_t bytes; /* of the frames queued, the partly written head included */
  size_t off;   /* bytes of the head frame already written */
};

/* Appends a reference to f (taken here; the caller keeps its own). Returns
 * 0, or -1 when out of memory (the queue is unchanged). */
int gw_sendq_push(struct gw_send_queue *q, struct sub_frame *f);

/* The head frame (not yet or partly written), or NULL when empty. */
struct sub_frame *gw_sendq_peek(const struct gw_send_queue *q);

/* Drops the head frame, written or not, and its reference. Not empty. */
void gw_sendq_drop_head(struct gw_send_queue *q);

/* Copies up to max bytes from the head on (as many frames as fit, the last
 * one possibly in part) into buf, dropping the frames fully copied. Returns
 * the bytes copied. */
size_t gw_sendq_take(struct gw_send_queue *q, unsigned char *buf, size_t max);

/* Drops every frame but the head when the head is partly written: cutting
 * a frame short would leave the peer's parser inside it. */
void gw_sendq_drop_unstarted(struct gw_send_queue *q);

/* Drops every frame and frees the ring; the queue is empty and reusable. */
void gw_sendq_clear(struct gw_send_queue *q);

#endif
