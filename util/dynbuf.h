#ifndef HERALD_UTIL_DYNBUF_H
#define HERALD_UTIL_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A growable buffer with a cap set at init, after curl's dynbuf
 * (docs/internals/buffers.md). It always ends in a NUL once anything was
 * added. An add that would pass the cap, or finds no memory, fails and
 * frees the buffer (it is empty again and can be reused): a half-built
 * result is never mistaken for a whole one. Not locked. The members are
 * private: use the functions. */

struct util_dynbuf {
  char *buf;    /* NULL until the first add */
  size_t len;   /* bytes held, the NUL not counted */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* most bytes it may hold, the NUL not counted */
};

enum util_dynbuf_err {
  UTIL_DYNBUF_OK = 0,
  UTIL_DYNBUF_TOO_LARGE, /* the add would pass the cap */
  UTIL_DYNBUF_NOMEM,     /* out of memory */
  UTIL_DYNBUF_FORMAT,    /* vsnprintf failed (a bad format or conversion) */
};

/* The largest cap init accepts; a larger one is lowered to it. */
#define UTIL_DYNBUF_CAP_MAX (SIZE_MAX / 4)

/* Starts an empty buffer that may hold up to `cap` bytes. Cannot fail and
 * allocates nothing. */
void util_dynbuf_init(struct util_dynbuf *d, size_t cap);

/* Appends `n` bytes. Returns 0, or an error after freeing the buffer. */
int util_dynbuf_addn(struct util_dynbuf *d, const void *mem, size_t n)
    __attribute__((warn_unused_result));

/* Appends a NUL-terminated string. Returns 0, or an error after freeing the
 * buffer. */
int util_dynbuf_add(struct util_dynbuf *d, const char *str) __attribute__((warn_unused_result));

/* Appends printf-formatted text. Returns 0, or an error after freeing the
 * buffer. */
int util_dynbuf_addf(struct util_dynbuf *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int util_dynbuf_vaddf(struct util_dynbuf *d, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0), warn_unused_result));

/* The bytes held (NUL-terminated), or NULL before the first add. Valid
 * until the next call that changes the buffer. */
char *util_dynbuf_ptr(const struct util_dynbuf *d);

/* The number of bytes held, the NUL not counted. */
size_t util_dynbuf_len(const struct util_dynbuf *d);

/* Empties the buffer but keeps its memory for the next adds. */
void util_dynbuf_reset(struct util_dynbuf *d);

/* Frees the memory; the buffer is empty and keeps its cap, ready for reuse. */
void util_dynbuf_free(struct util_dynbuf *d);

/* Hands the bytes to the caller, who frees them with free(); *len (if not
 * NULL) gets their length. The buffer is empty afterwards, cap kept.
 * Returns NULL when nothing was ever added. */
char *util_dynbuf_take(struct util_dynbuf *d, size_t *len);

/* A short, stable, lower-case name for an error of this module. */
const char *util_dynbuf_strerror(int err);

#endif
