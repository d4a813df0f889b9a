#include "topic.h"

#include <stdint.h>
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

static bool seg_is(const char *seg, size_t len, char c)
{
  return len == 1 && seg[0] == c;
}

/* Containment, one segment of the requested pattern at a time. A grant stays
 * in the running while it matches every topic of the pattern so far. Only
 * grants with a wildcard where the pattern has one can stay: a topic with a
 * value no grant names at that position exists, and must be matched too.
 * At the pattern's `>`, the remaining lengths 1..kmax must all be matched by
 * wildcard-only grant tails: `*` repeated k times, or `*`^j then `>` for
 * every k > j. The grants are examined together, so the answer is exact for
 * their union, not only for each one alone. */
bool sub_patterns_cover(const char *const *grants, size_t n, const char *pattern)
{
  const char *ps[SUB_TOPIC_MAX_DEPTH], *gs[SUB_TOPIC_MAX_DEPTH];
  size_t pl[SUB_TOPIC_MAX_DEPTH], gl[SUB_TOPIC_MAX_DEPTH];
  size_t plen = strlen(pattern);
  int np = sub_topic_split(pattern, plen, ps, pl, SUB_TOPIC_MAX_DEPTH);
  if(np <= 0 || np > SUB_TOPIC_MAX_SEGMENTS || plen > SUB_TOPIC_MAX)
    return false; /* not a valid pattern: nothing is granted for it */
  bool tail = seg_is(ps[np - 1], pl[np - 1], '>');
  int fixed = tail ? np - 1 : np; /* segments before a final `>` */
  /* The longest tail a `>` can stand for in a topic: 32 segments and 255
   * bytes in all, the shortest topic of the pattern being np segments long
   * with the same bytes. */
  int kmax = 1;
  if(tail) {
    int by_segments = SUB_TOPIC_MAX_SEGMENTS - np + 1;
    int by_bytes = 1 + (int)(SUB_TOPIC_MAX - plen) / 2;
    kmax = by_segments < by_bytes ? by_segments : by_bytes;
  }
  bool lengths[SUB_TOPIC_MAX_SEGMENTS + 2] = {false}; /* tail lengths matched */
  int threshold = INT32_MAX; /* every tail length >= this is matched */

  for(size_t g = 0; g < n; g++) {
    int ng = sub_topic_split(grants[g], strlen(grants[g]), gs, gl, SUB_TOPIC_MAX_DEPTH);
    if(ng <= 0)
      continue;
    int i = 0;
    bool alive = true;
    for(; i < fixed && alive; i++) {
      if(i >= ng)
        alive = false;
      else if(seg_is(gs[i], gl[i], '>'))
        return true; /* it matches whatever the pattern has from here */
      else if(seg_is(gs[i], gl[i], '*'))
        continue;
      else if(seg_is(ps[i], pl[i], '*') || gl[i] != pl[i] || memcmp(gs[i], ps[i], pl[i]) != 0)
        alive = false;
    }
    if(!alive)
      continue;
    if(!tail) {
      if(ng == np)
        return true;
      continue;
    }
    /* the grant's tail from position i: stars, then maybe `>` */
    int stars = 0;
    while(i + stars < ng && seg_is(gs[i + stars], gl[i + stars], '*'))
      stars++;
    if(i + stars == ng) {
      if(stars >= 1 && stars <= kmax)
        lengths[stars] = true;
    }
    else if(i + stars == ng - 1 && seg_is(gs[ng - 1], gl[ng - 1], '>')) {
      if(stars + 1 < threshold)
        threshold = stars + 1;
    }
  }
  if(!tail)
    return false;
  for(int k = 1; k <= kmax; k++)
    if(k < threshold && !lengths[k])
      return false;
  return true;
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
