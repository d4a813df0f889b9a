#ifndef HERALD_UTIL_UTF8_H
#define HERALD_UTIL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* UTF-8 as RFC 3629 has it: no overlong forms, no surrogates (U+D800 to
 * U+DFFF), nothing past U+10FFFF. The one check of it for every module:
 * WebSocket text messages and close reasons, strings in published JSON. */

/* UTF-8 checked as it arrives, piece by piece: a sequence may be split
 * between pieces. Zero it to start. */
struct util_utf8 {
  unsigned char need;   /* continuation bytes still to come */
  unsigned char lo, hi; /* the range the next one must be in */
};

/* Checks the next len bytes of a text. Returns 0 while it is valid so far
 * (u->need: a sequence is still open), or -1 at the first byte that makes
 * it invalid. */
int util_utf8_feed(struct util_utf8 *u, const unsigned char *s, size_t len);

/* True when buf holds whole, valid UTF-8. */
bool util_utf8_valid(const unsigned char *buf, size_t len);

#endif
