#ifndef HERALD_EVENT_H
#define HERALD_EVENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"
#include "topic.h"

/* A frame is one complete, pre-framed server-to-client WebSocket text
 * message (RFC 6455 header + payload), immutable once built and shared by
 * reference count: the event frame is built once per publish and written to
 * every receiving connection as it is. */
struct sub_frame {
  atomic_uint refs;
  size_t len;          /* bytes at `wire`: header + payload */
  size_t payload_len;  /* the JSON text alone, at wire + len - payload_len */
  unsigned char *wire; /* points into data[] */
  unsigned char data[];
};

/* Builds a frame around `payload` (copied). Returns it with one reference,
 * or NULL when out of memory. */
struct sub_frame *sub_frame_new(const char *payload, size_t len);
struct sub_frame *sub_frame_ref(struct sub_frame *f);
void sub_frame_unref(struct sub_frame *f);
/* The JSON text of the frame (not NUL-terminated). */
const char *sub_frame_payload(const struct sub_frame *f);

/* A published event: what the broker hands to each client worker. */
struct sub_event {
  atomic_uint refs;
  uint64_t seq;
  uint64_t ms;
  char id[SUB_ID_LEN + 1];
  char topic[SUB_TOPIC_MAX + 1];
  size_t topic_len;
  struct sub_frame *frame; /* {"op":"event",...}: owned */
  void *held;              /* the broker's topic entry while the event is held */
  size_t data_off;         /* where data starts in the frame's payload */
};

/* Builds the event and its frame. `data` is the compact JSON text of the
 * event's data. Returns it with one reference, or NULL when out of memory. */
struct sub_event *sub_event_new(const char *topic, size_t topic_len, uint64_t seq,
                                const char *id, uint64_t ms, const char *data, size_t data_len);
/* The event's data (compact JSON text, not NUL-terminated) in its frame. */
const char *sub_event_data(const struct sub_event *ev, size_t *len);
struct sub_event *sub_event_ref(struct sub_event *ev);
void sub_event_unref(struct sub_event *ev);

#endif
