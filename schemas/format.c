/*
 * format.c - the draft-07 `format` assertions.
 *
 * Each check reads exactly s[0..len) and is strict about the grammar its RFC
 * gives: a value that "looks like" a date but is not an RFC 3339 date fails.
 * An embedded NUL fails every format, since no grammar here allows one and
 * C consumers of the value would see it cut short.
 */
#include "format.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uriparser/Uri.h>

#include "regex.h"

/* Longest textual IPv6 address: eight groups of four plus seven colons, or
 * six groups with a dotted quad (45 bytes). */
#define IPV6_TEXT_MAX 45
/* RFC 1123 / RFC 1035: 253 characters of names, 63 per label. */
#define HOSTNAME_MAX 253
#define LABEL_MAX 63
/* RFC 5321 section 4.5.3.1.1 */
#define EMAIL_LOCAL_MAX 64

static const struct {
  const char *name;
  enum schema_format f;
} formats[] = {
    {"date-time", SCHEMA_FORMAT_DATE_TIME},
    {"date", SCHEMA_FORMAT_DATE},
    {"time", SCHEMA_FORMAT_TIME},
    {"email", SCHEMA_FORMAT_EMAIL},
    {"hostname", SCHEMA_FORMAT_HOSTNAME},
    {"ipv4", SCHEMA_FORMAT_IPV4},
    {"ipv6", SCHEMA_FORMAT_IPV6},
    {"uri", SCHEMA_FORMAT_URI},
    {"uri-reference", SCHEMA_FORMAT_URI_REFERENCE},
    {"uuid", SCHEMA_FORMAT_UUID},
    {"regex", SCHEMA_FORMAT_REGEX},
    {"json-pointer", SCHEMA_FORMAT_JSON_POINTER},
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

enum schema_format schema_format_lookup(const char *name)
{
  if(!name)
    return SCHEMA_FORMAT_NONE;
  for(size_t i = 0; i < NFORMATS; i++)
    if(strcmp(formats[i].name, name) == 0)
      return formats[i].f;
  return SCHEMA_FORMAT_NONE;
}

const char *schema_format_name(enum schema_format f)
{
  for(size_t i = 0; i < NFORMATS; i++)
    if(formats[i].f == f)
      return formats[i].name;
  return "none";
}

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The value of the n ASCII digits at s, or -1 if one is not a digit. */
static int digits(const char *s, size_t n)
{
  int v = 0;
  for(size_t i = 0; i < n; i++) {
    if(!is_digit(s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static int days_in_month(int year, int month)
{
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if(month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    return 29;
  return days[month - 1];
}

/* RFC 3339 full-date: YYYY-MM-DD, a real calendar day. */
static bool full_date(const char *s, size_t len)
{
  if(len != 10 || s[4] != '-' || s[7] != '-')
    return false;
  int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
  if(y < 0 || m < 1 || m > 12 || d < 1)
    return false;
  return d <= days_in_month(y, m);
}

/* RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM). Second 60 (a leap
 * second) only where the time is 23:59 in UTC. */
static bool full_time(const char *s, size_t len)
{
  if(len < 9 || s[2] != ':' || s[5] != ':')
    return false;
  int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);
  if(h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60)
    return false;
  size_t i = 8;
  if(s[i] == '.') {
    size_t start = ++i;
    while(i < len && is_digit(s[i]))
      i++;
    if(i == start)
      return false;
  }
  if(i >= len)
    return false; /* the offset is not optional */
  int offset = 0; /* minutes east of UTC */
  if(s[i] == 'Z' || s[i] == 'z') {
    i++;
  } else if(s[i] == '+' || s[i] == '-') {
    if(len - i != 6 || s[i + 3] != ':')
      return false;
    int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
    if(oh < 0 || oh > 23 || om < 0 || om > 59)
      return false;
    offset = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
    i += 6;
  } else {
    return false;
  }
  if(i != len)
    return false;
  if(sec == 60) {
    int utc = ((h * 60 + m - offset) % 1440 + 1440) % 1440;
    if(utc != 23 * 60 + 59)
      return false;
  }
  return true;
}

static bool date_time(const char *s, size_t len)
{
  return len > 11 && (s[10] == 'T' || s[10] == 't') && full_date(s, 10) &&
         full_time(s + 11, len - 11);
}

/* Dotted quad: four decimal octets 0-255 without leading zeros (which some
 * parsers read as octal). */
static bool ipv4(const char *s, size_t len)
{
  size_t i = 0;
  for(int part = 0; part < 4; part++) {
    if(part > 0) {
      if(i >= len || s[i] != '.')
        return false;
      i++;
    }
    size_t start = i;
    int v = 0;
    while(i < len && is_digit(s[i]) && i - start < 3)
      v = v * 10 + (s[i++] - '0');
    size_t n = i - start;
    if(n == 0 || v > 255 || (n > 1 && s[start] == '0'))
      return false;
  }
  return i == len;
}

/* RFC 4291 text form, without a zone id (RFC 6874 is a different format). */
static bool ipv6(const char *s, size_t len)
{
  char buf[IPV6_TEXT_MAX + 1];
  unsigned char addr[16];
  if(len == 0 || len > IPV6_TEXT_MAX)
    return false;
  for(size_t i = 0; i < len; i++)
    if(!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
      return false;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return inet_pton(AF_INET6, buf, addr) == 1;
}

/* RFC 1123 section 2.1 host name: dot-separated labels of letters, digits
 * and hyphens, 1-63 long, not starting or ending with a hyphen. No trailing
 * dot: that is DNS zone-file notation, not part of the host name grammar. */
static bool hostname(const char *s, size_t len)
{
  if(len == 0 || len > HOSTNAME_MAX)
    return false;
  size_t start = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && s[i] != '.') {
      if(!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
        return false;
      continue;
    }
    size_t n = i - start;
    if(n == 0 || n > LABEL_MAX || s[start] == '-' || s[i - 1] == '-')
      return false;
    start = i + 1;
  }
  return true;
}

/* RFC 5322 atext, the characters of a dot-atom. */
static bool atext(char c)
{
  return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5321 Mailbox, ASCII only: Local-part "@" (Domain / address-literal).
 * The local part is a dot-atom or a quoted string; the domain a host name
 * or an IPv4 or IPv6 address in brackets. */
static bool email(const char *s, size_t len)
{
  size_t i = 0;
  if(len == 0)
    return false;
  if(s[0] == '"') {
    for(i = 1;; i++) {
      if(i >= len)
        return false;
      unsigned char c = (unsigned char)s[i];
      if(c == '"')
        break;
      if(c == '\\') {
        i++;
        if(i >= len || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
          return false;
      } else if(c < 0x20 || c > 0x7e) {
        return false;
      }
    }
    i++; /* the closing quote */
  } else {
    bool after_dot = true; /* no leading dot */
    for(; i < len && s[i] != '@'; i++) {
      if(s[i] == '.') {
        if(after_dot)
          return false;
        after_dot = true;
      } else if(atext(s[i])) {
        after_dot = false;
      } else {
        return false;
      }
    }
    if(after_dot)
      return false; /* empty, or a trailing dot */
  }
  if(i > EMAIL_LOCAL_MAX || i >= len || s[i] != '@')
    return false;

  const char *d = s + i + 1;
  size_t dlen = len - i - 1;
  if(dlen >= 2 && d[0] == '[' && d[dlen - 1] == ']') {
    if(dlen > 7 && strncasecmp(d + 1, "IPv6:", 5) == 0)
      return ipv6(d + 6, dlen - 7);
    return ipv4(d + 1, dlen - 2);
  }
  return hostname(d, dlen);
}

/* RFC 3986 URI (absolute: a scheme is required) or URI-reference. The
 * characters are checked here because uriparser is lenient with a few that
 * RFC 3986 never allows unencoded. */
static bool uri(const char *s, size_t len, bool need_scheme)
{
  for(size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if(c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
      return false;
  }
  UriUriA u;
  const char *error_pos = NULL;
  if(uriParseSingleUriExA(&u, s, s + len, &error_pos) != URI_SUCCESS)
    return false; /* uriparser frees its own state on a parse error */
  bool ok = !need_scheme || u.scheme.first != NULL;
  uriFreeUriMembersA(&u);
  return ok;
}

static bool uuid(const char *s, size_t len)
{
  if(len != 36)
    return false;
  for(size_t i = 0; i < len; i++) {
    bool hyphen_here = i == 8 || i == 13 || i == 18 || i == 23;
    if(hyphen_here ? s[i] != '-' : !is_hex(s[i]))
      return false;
  }
  return true;
}

static bool regex(const char *s, size_t len)
{
  /* the caller already refused embedded NULs, so a copy is the whole pattern */
  char *pattern = malloc(len + 1);
  if(!pattern)
    return false; /* cannot tell: refuse rather than wave it through */
  memcpy(pattern, s, len);
  pattern[len] = '\0';
  struct schema_regex *re = schema_regex_compile(pattern, NULL, 0);
  free(pattern);
  schema_regex_free(re);
  return re != NULL;
}

/* RFC 6901: "" or ("/" reference-token)*, where "~" is only "~0" or "~1". */
static bool json_pointer(const char *s, size_t len)
{
  if(len > 0 && s[0] != '/')
    return false;
  for(size_t i = 0; i < len; i++)
    if(s[i] == '~' && (i + 1 >= len || (s[i + 1] != '0' && s[i + 1] != '1')))
      return false;
  return true;
}

bool schema_format_check(enum schema_format f, const char *s, size_t len)
{
  if(f == SCHEMA_FORMAT_NONE)
    return true;
  if(!s) {
    if(len)
      return false;
    s = "";
  }
  if(memchr(s, '\0', len))
    return false;
  switch(f) {
  case SCHEMA_FORMAT_NONE: return true;
  case SCHEMA_FORMAT_DATE_TIME: return date_time(s, len);
  case SCHEMA_FORMAT_DATE: return full_date(s, len);
  case SCHEMA_FORMAT_TIME: return full_time(s, len);
  case SCHEMA_FORMAT_EMAIL: return email(s, len);
  case SCHEMA_FORMAT_HOSTNAME: return hostname(s, len);
  case SCHEMA_FORMAT_IPV4: return ipv4(s, len);
  case SCHEMA_FORMAT_IPV6: return ipv6(s, len);
  case SCHEMA_FORMAT_URI: return uri(s, len, true);
  case SCHEMA_FORMAT_URI_REFERENCE: return uri(s, len, false);
  case SCHEMA_FORMAT_UUID: return uuid(s, len);
  case SCHEMA_FORMAT_REGEX: return regex(s, len);
  case SCHEMA_FORMAT_JSON_POINTER: return json_pointer(s, len);
  }
  return true; /* a value outside the enum asserts nothing, like NONE */
}
