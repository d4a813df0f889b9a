#include "retry.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

int64_t hook_retry_delay_ms(const int *schedule_s, size_t n, unsigned attempts, double jitter,
                            uint64_t rnd)
{
  if(!schedule_s || attempts >= n)
    return -1;
  /* A config typo must not turn into a negative wait or a factor that
   * flips the sign; the config loader is where it gets reported. */
  if(!(jitter > 0))
    jitter = 0;
  else if(jitter > 1)
    jitter = 1;
  int s = schedule_s[attempts] > 0 ? schedule_s[attempts] : 0;
  double u = (double)(rnd >> 11) * 0x1.0p-53; /* the top 53 bits: uniform in [0, 1) */
  double factor = 1.0 - jitter + 2.0 * jitter * u;
  return llround((double)s * 1000.0 * factor);
}

static bool ows(char c)
{
  return c == ' ' || c == '\t';
}

/* Reads delta-seconds: 1*DIGIT. Returns 0 and *out, or -1 when s holds
 * anything else or more than int64 seconds. */
static int delta_seconds(const char *s, size_t len, int64_t *out)
{
  int64_t v = 0;
  if(len == 0)
    return -1;
  for(size_t i = 0; i < len; i++) {
    if(s[i] < '0' || s[i] > '9')
      return -1;
    int d = s[i] - '0';
    if(v > (INT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* True when c fits the place of `want` in a shape: '9' a digit, 'a' a
 * letter, anything else itself. */
static bool fits(char want, unsigned char c)
{
  if(want == '9')
    return c >= '0' && c <= '9';
  if(want == 'a')
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return c == (unsigned char)want;
}

/* Reads an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). strptime alone
 * would also take one-digit fields and any run of spaces, so the shape is
 * checked first. The obsolete RFC 850 and asctime forms are not taken:
 * servers have sent IMF-fixdate since RFC 7231, and a refused value only
 * means the retry schedule applies. Returns 0 and *out, or -1. */
static int imf_fixdate(const char *s, size_t len, time_t *out)
{
  static const char shape[] = "aaa, 99 aaa 9999 99:99:99 GMT";
  char buf[sizeof(shape)];
  struct tm tm;
  if(len != sizeof(shape) - 1)
    return -1;
  for(size_t i = 0; i < len; i++) {
    if(!fits(shape[i], (unsigned char)s[i]))
      return -1;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  memset(&tm, 0, sizeof(tm));
  const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if(!end || *end)
    return -1;
  time_t t = timegm(&tm);
  if(t == (time_t)-1)
    return -1;
  *out = t;
  return 0;
}

int64_t hook_retry_after_ms(const char *value, time_t now)
{
  if(!value)
    return -1;
  /* A field value may come with the whitespace around it (RFC 9110, 5.5). */
  size_t len = strlen(value);
  while(len && ows(value[len - 1]))
    len--;
  while(len && ows(*value)) {
    value++;
    len--;
  }
  double delay;
  int64_t secs;
  time_t when;
  if(delta_seconds(value, len, &secs) == 0)
    delay = (double)secs;
  else if(imf_fixdate(value, len, &when) == 0)
    delay = difftime(when, now); /* no overflow for any pair of time_t */
  else
    return -1;
  if(delay < HOOK_RETRY_AFTER_MIN_S)
    delay = HOOK_RETRY_AFTER_MIN_S;
  else if(delay > HOOK_RETRY_AFTER_MAX_S)
    delay = HOOK_RETRY_AFTER_MAX_S;
  return (int64_t)delay * 1000;
}
