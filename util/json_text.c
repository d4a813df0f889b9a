#include "util/json_text.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dynbuf.h"
#include "util/hex.h"
#include "util/utf8.h"

typedef const unsigned char *cursor;

static bool is_ws(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
  return c >= '0' && c <= '9';
}

static cursor skip_ws(cursor p, cursor end)
{
  while(p < end && is_ws(*p))
    p++;
  return p;
}

struct scan {
  cursor p, end;
  char *o; /* NULL: check only */
  cursor bad;
  const char *why;
};

static int wrong(struct scan *s, cursor at, const char *why)
{
  s->bad = at;
  s->why = why;
  return -1;
}

static void emit(struct scan *s, cursor from, size_t n)
{
  if(s->o) {
    memcpy(s->o, from, n);
    s->o += n;
  }
}

/* A string, from its opening quote. */
static int scan_string(struct scan *s)
{
  cursor start = s->p, p = s->p + 1;
  for(;;) {
    if(p == s->end)
      return wrong(s, p, "unterminated string");
    unsigned char c = *p;
    if(c == '"')
      break;
    if(c < 0x20)
      return wrong(s, p, "control character in a string (escape it)");
    if(c == '\\') {
      if(s->end - p < 2)
        return wrong(s, s->end, "unterminated string");
      unsigned char e = p[1];
      if(e == 'u') {
        if(s->end - p < 6)
          return wrong(s, s->end, "unterminated \\u escape");
        for(int k = 2; k < 6; k++)
          if(util_hexval((char)p[k]) < 0)
            return wrong(s, p + k, "\\u must be followed by four hex digits");
        p += 6;
      }
      else if(strchr("\"\\/bfnrt", e) && e)
        p += 2;
      else
        return wrong(s, p + 1, "invalid escape in a string");
      continue;
    }
    if(c < 0x80) {
      p++;
      continue;
    }
    /* a whole UTF-8 sequence; refused at its first byte */
    struct util_utf8 u = {0};
    cursor seq = p;
    do {
      if(p == s->end || util_utf8_feed(&u, p, 1))
        return wrong(s, seq, "invalid UTF-8 in a string");
      p++;
    } while(u.need);
  }
  p++; /* the closing quote */
  emit(s, start, (size_t)(p - start));
  s->p = p;
  return 0;
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(struct scan *s)
{
  cursor start = s->p, p = s->p, end = s->end;
  if(p < end && *p == '-')
    p++;
  if(p == end || !is_digit(*p))
    return wrong(s, p, "a number needs a digit");
  if(*p == '0')
    p++;
  else
    while(p < end && is_digit(*p))
      p++;
  if(p < end && *p == '.') {
    p++;
    if(p == end || !is_digit(*p))
      return wrong(s, p, "a digit must follow the decimal point");
    while(p < end && is_digit(*p))
      p++;
  }
  if(p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if(p < end && (*p == '+' || *p == '-'))
      p++;
    if(p == end || !is_digit(*p))
      return wrong(s, p, "an exponent needs a digit");
    while(p < end && is_digit(*p))
      p++;
  }
  emit(s, start, (size_t)(p - start));
  s->p = p;
  return 0;
}

static int scan_literal(struct scan *s)
{
  static const char *const WORDS[] = {"true", "false", "null"};
  for(size_t i = 0; i < 3; i++) {
    size_t n = strlen(WORDS[i]);
    if((size_t)(s->end - s->p) >= n && memcmp(s->p, WORDS[i], n) == 0) {
      emit(s, s->p, n);
      s->p += n;
      return 0;
    }
  }
  return wrong(s, s->p, "unexpected character (expected a JSON value)");
}

/* An object's key and its colon, from the key's opening quote. */
static int scan_key(struct scan *s)
{
  if(s->p == s->end || *s->p != '"')
    return wrong(s, s->p, s->p == s->end ? "unexpected end" : "expected a string key");
  if(scan_string(s))
    return -1;
  s->p = skip_ws(s->p, s->end);
  if(s->p == s->end || *s->p != ':')
    return wrong(s, s->p, s->p == s->end ? "unexpected end" : "expected ':' after a key");
  emit(s, s->p, 1);
  s->p = skip_ws(s->p + 1, s->end);
  return 0;
}

/* One JSON value, with the whitespace before it; with `whole`, the rest
 * must be whitespace too. Iterative: the stack holds the open containers. */
static int scan_value(struct scan *s, bool whole)
{
  unsigned char stack[UTIL_JSON_MAX_DEPTH];
  size_t depth = 0;
  s->p = skip_ws(s->p, s->end);
  for(;;) {
    /* a value */
    if(s->p == s->end)
      return wrong(s, s->p, "unexpected end (expected a JSON value)");
    unsigned char c = *s->p;
    if(c == '{' || c == '[') {
      if(depth == UTIL_JSON_MAX_DEPTH)
        return wrong(s, s->p, "nested too deep");
      stack[depth++] = c;
      emit(s, s->p, 1);
      s->p = skip_ws(s->p + 1, s->end);
      unsigned char close = c == '{' ? '}' : ']';
      if(s->p < s->end && *s->p == close) {
        emit(s, s->p++, 1);
        depth--;
      }
      else {
        if(c == '{' && scan_key(s))
          return -1;
        continue;
      }
    }
    else if(c == '"') {
      if(scan_string(s))
        return -1;
    }
    else if(c == '-' || is_digit(c)) {
      if(scan_number(s))
        return -1;
    }
    else if(scan_literal(s))
      return -1;
    /* after a value: a comma, or the ends of containers */
    for(;;) {
      cursor after = s->p;
      s->p = skip_ws(s->p, s->end);
      if(depth == 0) {
        if(!whole) {
          s->p = after; /* the value's text ends at its last token */
          return 0;
        }
        if(s->p != s->end)
          return wrong(s, s->p, "unexpected text after the JSON value");
        return 0;
      }
      unsigned char open = stack[depth - 1], close = open == '{' ? '}' : ']';
      if(s->p == s->end)
        return wrong(s, s->p, "unexpected end (a container is not closed)");
      if(*s->p == close) {
        emit(s, s->p++, 1);
        depth--;
        continue;
      }
      if(*s->p != ',')
        return wrong(s, s->p, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
      emit(s, s->p, 1);
      s->p = skip_ws(s->p + 1, s->end);
      if(open == '{' && scan_key(s))
        return -1;
      break; /* the next value */
    }
  }
}

int util_json_minify(const char *in, size_t len, char *out, size_t *out_len, size_t *err_off,
                     const char **why)
{
  struct scan s = {.p = (cursor)in, .end = (cursor)in + len, .o = out};
  if(scan_value(&s, true)) {
    *err_off = (size_t)(s.bad - (cursor)in);
    *why = s.why;
    return -1;
  }
  *out_len = (size_t)(s.o - out);
  return 0;
}

/* Whether the string token [p, end) (quotes included, valid) decodes to
 * name. */
static bool key_is(cursor p, cursor end, const char *name)
{
  p++;
  end--;
  const unsigned char *n = (const unsigned char *)name;
  while(p < end) {
    unsigned c = *p++;
    if(c == '\\') {
      unsigned char e = *p++;
      if(e == 'u') {
        c = 0;
        for(int k = 0; k < 4; k++)
          c = c << 4 | (unsigned)util_hexval((char)*p++);
      }
      else {
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        c = (unsigned char)to[strchr(from, e) - from];
      }
    }
    if(!*n || c != *n++)
      return false;
  }
  return !*n;
}

int util_json_member(const char *text, size_t len, const char *name, size_t *off, size_t *vlen)
{
  struct scan s = {.p = (cursor)text, .end = (cursor)text + len};
  s.p = skip_ws(s.p, s.end);
  if(s.p == s.end || *s.p != '{')
    return -1;
  s.p = skip_ws(s.p + 1, s.end);
  int found = -1;
  while(s.p < s.end && *s.p == '"') {
    cursor key = s.p;
    if(scan_string(&s))
      return -1;
    bool match = key_is(key, s.p, name);
    s.p = skip_ws(s.p, s.end);
    if(s.p == s.end || *s.p != ':')
      return -1;
    s.p = skip_ws(s.p + 1, s.end);
    cursor value = s.p;
    if(scan_value(&s, false))
      return -1;
    if(match) {
      *off = (size_t)(value - (cursor)text);
      *vlen = (size_t)(s.p - value);
      found = 0;
    }
    s.p = skip_ws(s.p, s.end);
    if(s.p == s.end || *s.p != ',')
      break;
    s.p = skip_ws(s.p + 1, s.end);
  }
  return found;
}

/* Rewrites every number jansson cannot hold: integers beyond 64 bits get
 * ".0" (read as reals), reals beyond a double's range become the largest
 * double of their sign. Strings are copied as they are. Returns the new
 * text (free it), or NULL when out of memory. */
static char *widen_numbers(const char *buf, size_t len, size_t *out_len)
{
  struct util_dynbuf d;
  util_dynbuf_init(&d, len + len / 2 + 64);
  cursor p = (cursor)buf, end = p + len;
  while(p < end) {
    cursor from = p;
    if(*p == '"') { /* a string, to its closing quote (or the end) */
      for(p++; p < end && *p != '"'; p++)
        if(*p == '\\' && p + 1 < end)
          p++;
      if(p < end)
        p++;
    }
    else if(*p == '-' || is_digit(*p)) {
      /* exactly one valid number token, or the byte is copied as it is
       * (only a number jansson would read may be rewritten) */
      struct scan num_scan = {.p = p, .end = end};
      if(scan_number(&num_scan)) {
        p++;
        if(util_dynbuf_addn(&d, from, 1))
          return NULL;
        continue;
      }
      p = num_scan.p;
      bool integral = !memchr(from, '.', (size_t)(p - from)) &&
                      !memchr(from, 'e', (size_t)(p - from)) &&
                      !memchr(from, 'E', (size_t)(p - from));
      char tmp[400], *num = tmp;
      size_t n = (size_t)(p - from);
      if(n >= sizeof tmp && !(num = malloc(n + 1))) {
        util_dynbuf_free(&d);
        return NULL;
      }
      memcpy(num, from, n);
      num[n] = '\0';
      errno = 0;
      char *stop;
      double v = strtod(num, &stop);
      bool huge = errno == ERANGE && (v > 1 || v < -1);
      bool wide = integral && !huge && (errno = 0, strtoll(num, &stop, 10), errno == ERANGE);
      if(num != tmp)
        free(num);
      int rc;
      if(huge)
        rc = util_dynbuf_add(&d, v < 0 ? "-1.7976931348623157e308" : "1.7976931348623157e308");
      else
        rc = util_dynbuf_addn(&d, from, n) || (wide && util_dynbuf_add(&d, ".0"));
      if(rc)
        return NULL; /* the dynbuf freed itself */
      continue;
    }
    else
      p++;
    if(util_dynbuf_addn(&d, from, (size_t)(p - from)))
      return NULL;
  }
  if(util_dynbuf_addn(&d, "", 0))
    return NULL;
  return util_dynbuf_take(&d, out_len);
}

json_t *util_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
  json_t *v = json_loadb(buf, len, flags, err);
  if(v || json_error_code(err) != json_error_numeric_overflow)
    return v;
  size_t wlen;
  char *wide = widen_numbers(buf, len, &wlen);
  if(!wide)
    return NULL; /* err still says why the first parse failed */
  v = json_loadb(wide, wlen, flags, err);
  free(wide);
  return v;
}

json_t *util_json_load_file(const char *path, size_t flags, json_error_t *err)
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return json_load_file(path, flags, err); /* its message, line -1 */
  struct util_dynbuf d;
  util_dynbuf_init(&d, UTIL_DYNBUF_CAP_MAX);
  char chunk[8192];
  size_t n;
  int rc = 0;
  while(!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = util_dynbuf_addn(&d, chunk, n);
  bool failed = ferror(f) || rc;
  fclose(f);
  if(failed) {
    util_dynbuf_free(&d);
    return json_load_file(path, flags, err);
  }
  json_t *v = util_json_loadb(util_dynbuf_ptr(&d) ? util_dynbuf_ptr(&d) : "", util_dynbuf_len(&d),
                              flags, err);
  util_dynbuf_free(&d);
  return v;
}
