#ifndef HERALD_UTIL_UUID7_H
#define HERALD_UTIL_UUID7_H

#include <stdint.h>

/* Event ids are UUIDv7 (RFC 9562): "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b",
 * the first 48 bits the Unix millisecond of the publish. */

#define UTIL_UUID7_LEN 36

/* Reads the millisecond out of a NUL-terminated id: it must be 36
 * characters, '7' at index 14 (the version), and 8 hex digits, '-', 4 hex
 * digits in front (the time). The rest is not checked. Returns 0 with *ms
 * set, or -1 and leaves *ms alone. */
int util_uuid7_ms(const char *id, int64_t *ms);

#endif
