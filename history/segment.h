#ifndef HERALD_HISTORY_SEGMENT_H
#define HERALD_HISTORY_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util/dynbuf.h"

/* A segment: the events of one commit of the history log, as one blob (one
 * SQLite row per commit instead of one per event: the insert is what a
 * durable publish paid most for). Each event, little-endian:
 *   u64 offset, u64 ms, u64 seq, u64 max_age_ms, 36 bytes id,
 *   u16 topic length, u32 data length, the topic, the data
 * Offsets strictly increase within a segment. The decoder checks every
 * length and field (a valid concrete topic, an id of [0-9a-f-], offsets in
 * order), so a damaged row is refused, never read past. */

#define HIST_SEGMENT_HEAD (4 * 8 + SUB_ID_LEN + 2 + 4) /* bytes before topic and data */

/* Appends ev's encoding to b. Returns 0 or a util_dynbuf error. */
int hist_segment_put(struct util_dynbuf *b, const struct sub_event *ev);

/* Decodes the segment in p (len bytes): calls fn(arg, ev) in offset order
 * with each event, made with one reference that fn takes (offset, seq, id,
 * ms, data, max_age_ms set). Returns the number of events, or -1 when the
 * segment is malformed or empty, out of memory, or fn returned non-zero
 * (the events before it were handed over). */
long hist_segment_decode(const unsigned char *p, size_t len,
                         int (*fn)(void *arg, struct sub_event *ev), void *arg);

#endif
