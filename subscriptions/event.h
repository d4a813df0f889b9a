#ifndef HERALD_EVENT_H
#define HERALD_EVENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"
#include "topic.h"

/* A frame is bytes ready for a socket (a transport's encoding of one
 * message: a WebSocket frame, an SSE record), immutable once built and
 * shared by reference count, so one encoding of an event is written to
 * every connection of a transport as it is. The core knows no transport's
 * format: it only allocates the bytes, with room in front for a header. */
struct sub_frame {
  atomic_uint refs;
  size_t len;          /* bytes at `wire`: header + payload */
  size_t payload_len;  /* the payload alone, at wire + len - payload_len */
  unsigned char *wire; /* points into data[] */
  unsigned char data[];
};

/* Allocates a frame for payload_len bytes with `headroom` bytes before
 * them for a header (sub_frame_prepend). The payload, at sub_frame_body(),
 * is the caller's to fill before the frame is shared. Returns the frame with
 * one reference, or NULL when out of memory. */
struct sub_frame *sub_frame_alloc(size_t headroom, size_t payload_len);
/* The writable payload area of a frame being built. */
unsigned char *sub_frame_body(struct sub_frame *f);
/* Puts n header bytes right before what the frame holds; n must fit in
 * the headroom left. */
void sub_frame_prepend(struct sub_frame *f, const void *header, size_t n);
struct sub_frame *sub_frame_ref(struct sub_frame *f);
void sub_frame_unref(struct sub_frame *f);
/* The payload of the frame (not NUL-terminated). */
const char *sub_frame_payload(const struct sub_frame *f);

/* How many transports may cache an encoding on an event (the slots of
 * sub_event_encoded, numbered by the caller from 0). */
#define SUB_EVENT_ENCODINGS 4

struct sub_event;

/* Builds a transport's encoding of an event. Returns a frame with one
 * reference (handed over to the event's cache), or NULL when out of memory. */
typedef struct sub_frame *(*sub_encode_fn)(const struct sub_event *ev, void *arg);

/* A published event: what an engine hands to each client worker. It holds
 * no transport's bytes, only what every transport encodes from. */
struct sub_event {
  atomic_uint refs;
  uint64_t seq;
  uint64_t ms;
  char id[SUB_ID_LEN + 1];
  const char *topic; /* NUL-terminated, in buf[] */
  size_t topic_len;
  const char *data; /* the data's JSON text, NUL-terminated, in buf[] */
  size_t data_len;
  size_t size;  /* bytes the event holds (struct, topic, data): what queues count */
  void *held;   /* the engine's topic entry while the event is held */
  /* History (log.h): the gateway-wide offset (0: not in the history log),
   * the log's time for it (monotonic over offsets, Unix ms), the topic's own
   * retention when shorter than the log's (0: the log's). Set before the
   * event is shared, read-only after. */
  uint64_t offset;
  uint64_t log_ms;
  uint64_t max_age_ms;
  const char *epoch; /* the log's epoch (lives as long as the log), or NULL */
  _Atomic(struct sub_frame *) enc[SUB_EVENT_ENCODINGS]; /* owned */
  atomic_uchar enc_state[SUB_EVENT_ENCODINGS];          /* 0 none, 1 building, 2 built */
  char buf[];
};

/* What sub_event_new would count as the size of such an event, before it is
 * made (for the queues' early refusal). */
size_t sub_event_size(size_t topic_len, size_t data_len);

/* Makes an event. `data` is the JSON text of the event's data (copied).
 * Returns it with one reference, or NULL when out of memory or the topic is
 * longer than SUB_TOPIC_MAX. */
struct sub_event *sub_event_new(const char *topic, size_t topic_len, uint64_t seq,
                                const char *id, uint64_t ms, const char *data, size_t data_len);
/* The event's data (JSON text, not counting its NUL). */
const char *sub_event_data(const struct sub_event *ev, size_t *len);
struct sub_event *sub_event_ref(struct sub_event *ev);
void sub_event_unref(struct sub_event *ev);

/* The event's encoding in `slot` (< SUB_EVENT_ENCODINGS): built by fn the
 * first time it is asked for, once however many threads ask at the same
 * time (the others wait for it), then shared. The frame is borrowed: valid
 * while the caller holds its reference to ev (take one with sub_frame_ref to
 * keep it longer). Returns NULL when fn failed (a later call tries again). */
struct sub_frame *sub_event_encoded(struct sub_event *ev, unsigned slot, sub_encode_fn fn,
                                    void *arg);

#endif
