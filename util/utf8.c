#include "util/utf8.h"

/* The byte range the next byte of a sequence must fall in: after E0 only
 * A0-BF (no overlongs), after ED only 80-9F (no surrogates), after F0
 * only 90-BF, after F4 only 80-8F (nothing past U+10FFFF). */
static void utf8_lead(struct util_utf8 *u, unsigned char c)
{
  u->lo = 0x80;
  u->hi = 0xbf;
  if(c == 0xe0)
    u->lo = 0xa0;
  else if(c == 0xed)
    u->hi = 0x9f;
  else if(c == 0xf0)
    u->lo = 0x90;
  else if(c == 0xf4)
    u->hi = 0x8f;
}

int util_utf8_feed(struct util_utf8 *u, const unsigned char *s, size_t len)
{
  for(size_t i = 0; i < len; i++) {
    unsigned char c = s[i];
    if(u->need) {
      if(c < u->lo || c > u->hi)
        return -1;
      u->need--;
      u->lo = 0x80;
      u->hi = 0xbf;
      continue;
    }
    if(c < 0x80)
      continue;
    if(c >= 0xc2 && c <= 0xdf)
      u->need = 1;
    else if(c >= 0xe0 && c <= 0xef)
      u->need = 2;
    else if(c >= 0xf0 && c <= 0xf4)
      u->need = 3;
    else
      return -1; /* a continuation byte first, C0/C1 (overlong) or F5-FF */
    utf8_lead(u, c);
  }
  return 0;
}

bool util_utf8_valid(const unsigned char *s, size_t len)
{
  struct util_utf8 u = {0};
  return util_utf8_feed(&u, s, len) == 0 && u.need == 0;
}
