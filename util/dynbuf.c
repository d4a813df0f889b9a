#include "dynbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_ALLOC 32 /* small adds do not realloc at every byte */

void util_dynbuf_init(struct util_dynbuf *d, size_t cap)
{
  d->buf = NULL;
  d->len = 0;
  d->alloc = 0;
  d->cap = cap > UTIL_DYNBUF_CAP_MAX ? UTIL_DYNBUF_CAP_MAX : cap;
}

void util_dynbuf_free(struct util_dynbuf *d)
{
  free(d->buf);
  d->buf = NULL;
  d->len = 0;
  d->alloc = 0;
}

/* Makes room for `more` bytes after what is held, and the NUL. Returns 0,
 * or an error after freeing the buffer. */
static int dynbuf__grow(struct util_dynbuf *d, size_t more)
{
  if(more > d->cap - d->len) { /* d->len <= d->cap always: no wrap */
    util_dynbuf_free(d);
    return UTIL_DYNBUF_TOO_LARGE;
  }
  size_t fit = d->len + more + 1;
  if(fit <= d->alloc)
    return UTIL_DYNBUF_OK;
  size_t a = d->alloc ? d->alloc : FIRST_ALLOC;
  while(a < fit)
    a *= 2; /* cap <= SIZE_MAX / 4: cannot wrap */
  if(a > d->cap + 1)
    a = d->cap + 1; /* never more than the cap can use */
  char *p = realloc(d->buf, a);
  if(!p) {
    util_dynbuf_free(d);
    return UTIL_DYNBUF_NOMEM;
  }
  d->buf = p;
  d->alloc = a;
  return UTIL_DYNBUF_OK;
}

int util_dynbuf_addn(struct util_dynbuf *d, const void *mem, size_t n)
{
  int rc = dynbuf__grow(d, n);
  if(rc)
    return rc;
  if(n)
    memcpy(d->buf + d->len, mem, n);
  d->len += n;
  d->buf[d->len] = '\0';
  return UTIL_DYNBUF_OK;
}

int util_dynbuf_add(struct util_dynbuf *d, const char *str)
{
  return util_dynbuf_addn(d, str, strlen(str));
}

int util_dynbuf_vaddf(struct util_dynbuf *d, const char *fmt, va_list ap)
{
  va_list again;
  va_copy(again, ap);
  /* formats in place when it fits what is allocated; else measures, grows
   * and formats a second time */
  size_t room = d->buf ? d->alloc - d->len : 0;
  int n = vsnprintf(d->buf ? d->buf + d->len : NULL, room, fmt, ap);
  int rc = UTIL_DYNBUF_OK;
  if(n < 0) {
    rc = UTIL_DYNBUF_FORMAT;
    util_dynbuf_free(d);
    goto out;
  }
  if((size_t)n >= room) {
    if(d->buf)
      d->buf[d->len] = '\0'; /* what the first try wrote is not kept */
    rc = dynbuf__grow(d, (size_t)n);
    if(rc)
      goto out;
    if(vsnprintf(d->buf + d->len, d->alloc - d->len, fmt, again) != n) {
      rc = UTIL_DYNBUF_FORMAT;
      util_dynbuf_free(d);
      goto out;
    }
  }
  d->len += (size_t)n;
out:
  va_end(again);
  return rc;
}

int util_dynbuf_addf(struct util_dynbuf *d, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = util_dynbuf_vaddf(d, fmt, ap);
  va_end(ap);
  return rc;
}

char *util_dynbuf_ptr(const struct util_dynbuf *d)
{
  return d->buf;
}

size_t util_dynbuf_len(const struct util_dynbuf *d)
{
  return d->len;
}

void util_dynbuf_reset(struct util_dynbuf *d)
{
  if(d->buf)
    d->buf[0] = '\0';
  d->len = 0;
}

char *util_dynbuf_take(struct util_dynbuf *d, size_t *len)
{
  char *p = d->buf;
  if(len)
    *len = d->len;
  d->buf = NULL; /* owned by the caller now */
  d->len = 0;
  d->alloc = 0;
  return p;
}

const char *util_dynbuf_strerror(int err)
{
  switch(err) {
  case UTIL_DYNBUF_OK: return "ok";
  case UTIL_DYNBUF_TOO_LARGE: return "too_large";
  case UTIL_DYNBUF_NOMEM: return "out_of_memory";
  case UTIL_DYNBUF_FORMAT: return "format";
  default: return "unknown";
  }
}
