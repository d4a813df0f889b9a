#include "topic.h"

#include <string.h>

static bool seg_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

static bool check(const char *s, size_t len, bool pattern, const char **why)
{
  const char *dummy;
  if(!why)
    why = &dummy;
  if(!s || len == 0) {
    *why = "topic is empty";
    return false;
  }
  if(len > SUB_TOPIC_MAX) {
    *why = "topic is longer than 255 bytes";
    return false;
  }
  size_t seg_start = 0;
  int nseg = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && s[i] != '.')
      continue;
    if(++nseg > SUB_TOPIC_MAX_SEGMENTS) {
      *why = "topic has more than 32 segments";
      return false;
    }
    size_t n = i - seg_start;
    const char *seg = s + seg_start;
    if(n == 0) {
      *why = "topic has an empty segment (leading, trailing or double dot)";
      return false;
    }
    if(n == 1 && (seg[0] == '*' || seg[0] == '>')) {
      if(!pattern) {
        *why = "wildcards (* and >) are only allowed in subscription patterns";
        return false;
      }
      if(seg[0] == '>' && i != len) {
        *why = "'>' must be the last segment";
        return false;
      }
    }
    else {
      for(size_t k = 0; k < n; k++) {
        if(!seg_char((unsigned char)seg[k])) {
          *why = (seg[k] == '*' || seg[k] == '>')
                     ? "wildcards must stand alone as a whole segment"
                     : "topic segments may only contain A-Z a-z 0-9 _ -";
          return false;
        }
      }
    }
    seg_start = i + 1;
  }
  return true;
}

bool sub_topic_valid(const char *s, size_t len, const char **why)
{
  return check(s, len, false, why);
}

bool sub_pattern_valid(const char *s, size_t len, const char **why)
{
  return check(s, len, true, why);
}

int sub_topic_split(const char *s, size_t len, const char **seg, size_t *seglen, int max)
{
  int n = 0;
  size_t start = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && s[i] != '.')
      continue;
    if(n == max)
      return -1;
    seg[n] = s + start;
    seglen[n] = i - start;
    n++;
    start = i + 1;
  }
  return n;
}

bool sub_pattern_matches(const char *pattern, const char *topic)
{
  const char *ps[SUB_TOPIC_MAX_DEPTH], *ts[SUB_TOPIC_MAX_DEPTH];
  size_t pl[SUB_TOPIC_MAX_DEPTH], tl[SUB_TOPIC_MAX_DEPTH];
  int np = sub_topic_split(pattern, strlen(pattern), ps, pl, SUB_TOPIC_MAX_DEPTH);
  int nt = sub_topic_split(topic, strlen(topic), ts, tl, SUB_TOPIC_MAX_DEPTH);
  if(np < 0 || nt < 0)
    return false;
  for(int i = 0; i < np; i++) {
    if(pl[i] == 1 && ps[i][0] == '>')
      return nt > i; /* one or more remaining segments */
    if(i >= nt)
      return false;
    if(pl[i] == 1 && ps[i][0] == '*')
      continue;
    if(pl[i] != tl[i] || memcmp(ps[i], ts[i], pl[i]) != 0)
      return false;
  }
  return np == nt;
}

uint64_t sub_topic_hash(const char *s, size_t len)
{
  uint64_t h = 1469598103934665603ull;
  for(size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}
