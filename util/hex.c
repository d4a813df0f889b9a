#include "hex.h"

#include <limits.h>

int util_hexval(char c)
{
  if(c >= '0' && c <= '9')
    return c - '0';
  if(c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if(c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int util_hex_encode(char *out, size_t outsize, const void *in, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  const unsigned char *b = in;
  if(!outsize || n > (outsize - 1) / 2)
    return -1;
  for(size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
  return 0;
}

long util_hex_decode(void *out, size_t outsize, const char *hex, size_t hexlen)
{
  unsigned char *o = out;
  if(hexlen % 2 || hexlen / 2 > outsize || hexlen / 2 > (size_t)LONG_MAX)
    return -1;
  for(size_t i = 0; i < hexlen / 2; i++) {
    int hi = util_hexval(hex[2 * i]), lo = util_hexval(hex[2 * i + 1]);
    if(hi < 0 || lo < 0)
      return -1;
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return (long)(hexlen / 2);
}
