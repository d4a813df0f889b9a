#ifndef HERALD_UTIL_HEX_H
#define HERALD_UTIL_HEX_H

#include <stddef.h>

/* Hex digits: key hashes in the config, URI %XX escapes, regex \uXXXX,
 * event ids. */

/* The value of one hex digit (either case), or -1 if c is not one. */
int util_hexval(char c);

/* Writes the 2 * n lowercase hex digits of `in` and a NUL to `out`, which
 * holds `outsize` bytes. Returns 0, or -1 (writing nothing) when
 * outsize < 2 * n + 1. */
int util_hex_encode(char *out, size_t outsize, const void *in, size_t n);

/* Decodes `hexlen` hex digits (either case) into `out`, which holds
 * `outsize` bytes. Returns the bytes written (hexlen / 2), or -1 (out
 * partly written) for an odd hexlen, a non-hex character or too small an
 * out. */
long util_hex_decode(void *out, size_t outsize, const char *hex, size_t hexlen);

#endif
