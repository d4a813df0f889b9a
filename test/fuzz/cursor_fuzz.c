/*
 * cursor_fuzz.c - libFuzzer harness for the history log's parsers
 * (subscriptions/eventlog.h): sub_cursor_parse, the `since` cursor a client
 * sends, and sub_time_parse, the RFC 3339 time it may send instead.
 *
 * The input is taken whole, and as the pieces before and after its first
 * newline (so one input can carry a cursor and a time). Each piece goes to
 * both parsers in a heap buffer of exactly its length (no terminator: ASan
 * sees a read past the end) and cut one byte short. The verdict and the
 * value must be those of the grammar, written again here in the plainest
 * way (a cursor: 8 chars of [a-z0-9], ':', a decimal u64 without leading
 * zeros; a time: fixed positions checked one by one, the value from
 * timegm). A refusal leaves the outputs alone. Round trips: a parsed cursor
 * formats back to the same bytes; the first 8 bytes, as an offset, format
 * and parse back to themselves; a parsed time formatted by sub_time_format
 * parses back to the same millisecond. Inputs are short (max_len 128).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventlog.h"
#include "id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0x5a5a5a5a5a5a5a5aull
#define MS_MAX 253402300799999ull /* 9999-12-31T23:59:59.999Z */

/* Prints what broke with the input piece and aborts, so libFuzzer saves it. */
static void broken(const char *what, const char *s, size_t len)
{
  fprintf(stderr, "cursor_fuzz: invariant broken: %s\n  input (%zu bytes): \"", what, len);
  for(size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if(c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
      fputc(c, stderr);
    else
      fprintf(stderr, "\\x%02x", c);
  }
  fprintf(stderr, "\"\n");
  abort();
}

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool epoch_char(char c)
{
  return (c >= 'a' && c <= 'z') || is_digit(c);
}

/* ---- cursors ---- */

/* The cursor grammar of eventlog.h; *offset set when valid. */
static bool ref_cursor(const char *s, size_t len, uint64_t *offset)
{
  static const char max[] = "18446744073709551615";
  if(len < SUB_EPOCH_LEN + 2 || s[SUB_EPOCH_LEN] != ':')
    return false;
  for(size_t i = 0; i < SUB_EPOCH_LEN; i++)
    if(!epoch_char(s[i]))
      return false;
  const char *d = s + SUB_EPOCH_LEN + 1;
  size_t nd = len - SUB_EPOCH_LEN - 1;
  for(size_t i = 0; i < nd; i++)
    if(!is_digit(d[i]))
      return false;
  if(nd > 1 && d[0] == '0')
    return false;
  /* no leading zeros: longer is larger, and equal lengths compare as text */
  if(nd > sizeof(max) - 1 || (nd == sizeof(max) - 1 && memcmp(d, max, nd) > 0))
    return false;
  uint64_t v = 0;
  for(size_t i = 0; i < nd; i++)
    v = v * 10 + (uint64_t)(d[i] - '0');
  *offset = v;
  return true;
}

static void check_cursor(const char *s, size_t len)
{
  char epoch[SUB_EPOCH_LEN + 1];
  memset(epoch, 'Q', sizeof(epoch));
  uint64_t offset = SENTINEL, want = 0;
  bool ok = sub_cursor_parse(s, len, epoch, &offset) == 0;
  if(ok != ref_cursor(s, len, &want))
    broken(ok ? "sub_cursor_parse accepts an invalid cursor"
              : "sub_cursor_parse refuses a valid cursor",
           s, len);
  if(!ok) {
    if(offset != SENTINEL || epoch[0] != 'Q')
      broken("sub_cursor_parse refused but wrote its outputs", s, len);
    return;
  }
  if(offset != want)
    broken("sub_cursor_parse: wrong offset", s, len);
  if(epoch[SUB_EPOCH_LEN] != '\0' || memcmp(epoch, s, SUB_EPOCH_LEN) != 0)
    broken("sub_cursor_parse: wrong epoch", s, len);
  char out[SUB_CURSOR_MAX + 1];
  size_t n = sub_cursor_format(epoch, offset, out);
  if(n != len || memcmp(out, s, len) != 0 || out[n] != '\0')
    broken("a parsed cursor does not format back to the same bytes", s, len);
}

/* Any offset formats to a cursor that parses back to it. */
static void check_offset(uint64_t offset)
{
  char out[SUB_CURSOR_MAX + 1], epoch[SUB_EPOCH_LEN + 1];
  size_t n = sub_cursor_format("z0y1x2w3", offset, out);
  uint64_t back = SENTINEL;
  if(n > SUB_CURSOR_MAX || strlen(out) != n || sub_cursor_parse(out, n, epoch, &back) != 0 ||
     back != offset || strcmp(epoch, "z0y1x2w3") != 0)
    broken("a formatted cursor does not parse back to its offset", out, strlen(out));
}

/* ---- times ---- */

/* n digits at s[i] (in bounds) as a number, or -1. */
static int num(const char *s, size_t len, size_t i, size_t n)
{
  if(i + n > len)
    return -1;
  int v = 0;
  for(size_t k = i; k < i + n; k++) {
    if(!is_digit(s[k]))
      return -1;
    v = v * 10 + (s[k] - '0');
  }
  return v;
}

static int days_in(int y, int m)
{
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : d[m - 1];
}

/* RFC 3339 as eventlog.h takes it, position by position; *ms set when valid. */
static bool ref_time(const char *s, size_t len, uint64_t *ms)
{
  if(len < 20 || s[4] != '-' || s[7] != '-' || !strchr("Tt ", s[10]) || s[10] == '\0' ||
     s[13] != ':' || s[16] != ':')
    return false;
  int y = num(s, len, 0, 4), mo = num(s, len, 5, 2), d = num(s, len, 8, 2);
  int h = num(s, len, 11, 2), mi = num(s, len, 14, 2), se = num(s, len, 17, 2);
  if(y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
     se > 60 || d > days_in(y, mo))
    return false;
  size_t i = 19;
  uint64_t frac = 0;
  if(s[i] == '.') {
    size_t start = ++i;
    while(i < len && is_digit(s[i]))
      i++;
    if(i == start || i - start > 9)
      return false;
    for(size_t k = 0; k < 3; k++)
      frac = frac * 10 + (start + k < i ? (uint64_t)(s[start + k] - '0') : 0);
  }
  long off = 0;
  if(i < len && (s[i] == 'Z' || s[i] == 'z'))
    i++;
  else if(i < len && (s[i] == '+' || s[i] == '-')) {
    int oh = num(s, len, i + 1, 2), om = num(s, len, i + 4, 2);
    if(i + 6 > len || s[i + 3] != ':' || oh < 0 || oh > 23 || om < 0 || om > 59)
      return false;
    off = (s[i] == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    i += 6;
  } else
    return false;
  if(i != len)
    return false;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                  .tm_min = mi, .tm_sec = se > 59 ? 59 : se};
  long long t = (long long)timegm(&tm) - off;
  if(t < 0)
    return false;
  *ms = (uint64_t)t * 1000 + frac;
  return true;
}

static void check_time(const char *s, size_t len)
{
  uint64_t ms = SENTINEL, want = 0;
  bool ok = sub_time_parse(s, len, &ms) == 0;
  if(ok != ref_time(s, len, &want))
    broken(ok ? "sub_time_parse accepts an invalid time" : "sub_time_parse refuses a valid time",
           s, len);
  if(!ok) {
    if(ms != SENTINEL)
      broken("sub_time_parse refused but wrote its output", s, len);
    return;
  }
  if(ms != want)
    broken("sub_time_parse: wrong value", s, len);
  if(ms > MS_MAX)
    broken("sub_time_parse: past year 9999", s, len);
  char out[SUB_TIME_LEN + 1];
  sub_time_format(ms, out);
  uint64_t back = SENTINEL;
  if(sub_time_parse(out, SUB_TIME_LEN, &back) != 0 || back != ms)
    broken("a parsed time does not format and parse back to itself", s, len);
}

/* Both parsers on s[0..len) in a buffer of exactly that length, then on one
 * byte less. */
static void check_piece(const char *s, size_t len)
{
  char *exact = malloc(len ? len : 1);
  if(!exact)
    return;
  memcpy(exact, s, len);
  check_cursor(exact, len);
  check_time(exact, len);
  if(len > 0) {
    check_cursor(exact, len - 1);
    check_time(exact, len - 1);
  }
  free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  check_piece(text, size);
  const char *nl = memchr(text, '\n', size);
  if(nl) {
    size_t a = (size_t)(nl - text);
    check_piece(text, a);
    check_piece(nl + 1, size - a - 1);
  }
  uint64_t offset = 0;
  memcpy(&offset, data, size < sizeof(offset) ? size : sizeof(offset));
  check_offset(offset);
  return 0;
}
