/*
 * topic_fuzz.c - libFuzzer harness for topics and patterns (subscriptions/topic.h).
 *
 * An input is a few strings separated by NUL or newline bytes: the first 16
 * are looked at, the first 8 distinct valid patterns among them kept. Each
 * one goes to sub_topic_valid and sub_pattern_valid in a heap buffer of
 * exactly its length (no terminator, so ASan sees a read past the end) and
 * cut one byte short, and so does the whole input, separators and all; the
 * verdict must be the one of the grammar in topic.h, written again here in
 * the plainest way, and a refusal must say why.
 *
 * The strings that are valid patterns (each once) then go to
 * sub_patterns_cover, each one as the requested pattern P with all the
 * others as the grants, and the answer must agree with an oracle: a set of
 * grants covers P exactly when it matches every topic made from P by putting
 * a fresh one-byte value (named by no grant at that position) at each `*`
 * and k fresh values at a final `>`, for every k a valid topic allows. Those
 * few topics are enough: any topic of P that no grant matches stays so when
 * its wildcard values are swapped for fresh ones, which only matter to a
 * grant with a wildcard there, and a one-byte value keeps it short enough.
 * Past one segment more than the longest grant, k changes nothing.
 * Besides: a pattern covers itself, `>` covers everything, a single grant's
 * cover holds for topics made with the grants' own values and "zz9",
 * cover({P}, t) is matches(P, t) for a concrete t, cover is transitive, and
 * sub_pattern_matches agrees with a matcher written here. Every exec stays
 * well under a millisecond: at most 8 patterns of at most 32 segments.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

#define MAX_PARTS 8   /* valid patterns kept */
#define MAX_PIECES 16 /* strings looked at */
#define MAX_VALUES 3  /* grant values tried at `*` besides "zz9" */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints what broke with the patterns involved and aborts, so libFuzzer
 * saves the input. */
static void broken(const char *what, const char *const *grants, size_t n, const char *pattern,
                   const char *topic)
{
  fprintf(stderr, "topic_fuzz: invariant broken: %s\n", what);
  for(size_t i = 0; i < n; i++)
    fprintf(stderr, "  grant %zu: \"%s\"\n", i, grants[i]);
  if(pattern)
    fprintf(stderr, "  pattern: \"%s\"\n", pattern);
  if(topic)
    fprintf(stderr, "  topic: \"%s\"\n", topic);
  abort();
}

static bool seg_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* The grammar of topic.h: 1..255 bytes, 1..32 non-empty dot-separated
 * segments of [A-Za-z0-9_-]; in a pattern a segment may also be `*`, and
 * `>` when it is the last one. */
static bool ref_valid(const char *s, size_t len, bool pattern)
{
  if(!s || len < 1 || len > SUB_TOPIC_MAX)
    return false;
  size_t start = 0, segs = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && s[i] != '.')
      continue;
    size_t n = i - start;
    if(++segs > SUB_TOPIC_MAX_SEGMENTS || n == 0)
      return false;
    bool wild = n == 1 && (s[start] == '*' || s[start] == '>');
    if(wild && (!pattern || (s[start] == '>' && i != len)))
      return false;
    for(size_t k = start; !wild && k < i; k++)
      if(!seg_char((unsigned char)s[k]))
        return false;
    start = i + 1;
  }
  return true;
}

/* Matching, one segment at a time on the strings themselves (both valid). */
static bool ref_match(const char *p, const char *t)
{
  for(;;) {
    if(!*p)
      return !*t;
    size_t pl = strcspn(p, ".");
    if(pl == 1 && *p == '>')
      return *t != '\0'; /* one or more segments left */
    if(!*t)
      return false;
    size_t tl = strcspn(t, ".");
    if(!(pl == 1 && *p == '*') && (pl != tl || memcmp(p, t, pl) != 0))
      return false;
    p += pl + (p[pl] == '.');
    t += tl + (t[tl] == '.');
  }
}

/* sub_pattern_matches, checked against ref_match. */
static bool matches(const char *pattern, const char *topic)
{
  bool m = sub_pattern_matches(pattern, topic);
  if(m != ref_match(pattern, topic))
    broken(m ? "sub_pattern_matches: true, should be false"
             : "sub_pattern_matches: false, should be true",
           NULL, 0, pattern, topic);
  return m;
}

static bool any_matches(const char *const *grants, size_t n, const char *topic)
{
  for(size_t g = 0; g < n; g++)
    if(matches(grants[g], topic))
      return true;
  return false;
}

/* Validates s[0..len) both ways and checks the verdicts and the reasons;
 * returns whether it is a valid pattern. */
static bool check_valid(const char *s, size_t len)
{
  const char *why = NULL;
  bool topic = sub_topic_valid(s, len, &why);
  if(topic != ref_valid(s, len, false))
    broken(topic ? "sub_topic_valid accepts an invalid topic"
                 : "sub_topic_valid refuses a valid topic",
           NULL, 0, NULL, NULL);
  if(!topic && (!why || !*why))
    broken("sub_topic_valid refuses without a reason", NULL, 0, NULL, NULL);
  why = NULL;
  bool pattern = sub_pattern_valid(s, len, &why);
  if(pattern != ref_valid(s, len, true))
    broken(pattern ? "sub_pattern_valid accepts an invalid pattern"
                   : "sub_pattern_valid refuses a valid pattern",
           NULL, 0, NULL, NULL);
  if(!pattern && (!why || !*why))
    broken("sub_pattern_valid refuses without a reason", NULL, 0, NULL, NULL);
  return pattern;
}

/* Splits a valid pattern into at most 32 segments; returns how many. */
static int split(const char *s, const char **seg, size_t *len)
{
  int n = sub_topic_split(s, strlen(s), seg, len, SUB_TOPIC_MAX_SEGMENTS);
  if(n < 1)
    broken("sub_topic_split refuses a valid pattern", NULL, 0, s, NULL);
  return n;
}

static bool is_wild(const char *seg, size_t len)
{
  return len == 1 && (seg[0] == '*' || seg[0] == '>');
}

/* Appends a segment to the topic being built in buf (at most 255 bytes);
 * returns false when it does not fit. */
static bool append(char *buf, size_t *len, const char *seg, size_t n)
{
  size_t need = (*len ? 1 : 0) + n;
  if(*len + need > SUB_TOPIC_MAX)
    return false;
  if(*len)
    buf[(*len)++] = '.';
  memcpy(buf + *len, seg, n);
  *len += n;
  buf[*len] = '\0';
  return true;
}

/* The fresh values of the oracle: fresh[pos] is a byte that no grant names
 * as its whole segment at pos. Returns the most segments a grant has. */
static int fresh_values(const char *const *grants, size_t n, char fresh[SUB_TOPIC_MAX_SEGMENTS])
{
  static const char alphabet[] = "zyxwvutsrqponmlkjihgfedcba9876543210";
  char used[SUB_TOPIC_MAX_SEGMENTS][MAX_PARTS];
  size_t nused[SUB_TOPIC_MAX_SEGMENTS] = {0};
  int longest = 0;
  if(n > MAX_PARTS)
    abort(); /* the harness never passes more */
  for(size_t g = 0; g < n; g++) {
    const char *gs[SUB_TOPIC_MAX_SEGMENTS];
    size_t gl[SUB_TOPIC_MAX_SEGMENTS];
    int ng = split(grants[g], gs, gl);
    longest = ng > longest ? ng : longest;
    for(int pos = 0; pos < ng; pos++)
      if(gl[pos] == 1 && !is_wild(gs[pos], 1))
        used[pos][nused[pos]++] = gs[pos][0];
  }
  for(int pos = 0; pos < SUB_TOPIC_MAX_SEGMENTS; pos++) {
    const char *c = alphabet; /* at most 8 grants: never runs out */
    while(memchr(used[pos], *c, nused[pos]))
      c++;
    fresh[pos] = *c;
  }
  return longest;
}

/* The oracle of sub_patterns_cover (see the top of the file), with the
 * grants' fresh values and their most segments from fresh_values. */
static bool oracle_cover(const char *const *grants, size_t n, const char *fresh, int longest,
                         const char *pattern)
{
  const char *ps[SUB_TOPIC_MAX_SEGMENTS];
  size_t pl[SUB_TOPIC_MAX_SEGMENTS];
  int np = split(pattern, ps, pl);
  bool tail = pl[np - 1] == 1 && ps[np - 1][0] == '>';
  int fixed = tail ? np - 1 : np;
  char topic[SUB_TOPIC_MAX + 1] = "";
  size_t len = 0;
  for(int i = 0; i < fixed; i++) {
    bool fits = is_wild(ps[i], pl[i]) ? append(topic, &len, &fresh[i], 1)
                                      : append(topic, &len, ps[i], pl[i]);
    if(!fits)
      broken("oracle: a valid pattern makes a topic too long", NULL, 0, pattern, topic);
  }
  if(!tail) {
    if(!ref_valid(topic, len, false))
      broken("oracle: made an invalid topic", NULL, 0, pattern, topic);
    return any_matches(grants, n, topic);
  }
  int k = 0;
  while(fixed + k < SUB_TOPIC_MAX_SEGMENTS && append(topic, &len, &fresh[fixed + k], 1)) {
    k++;
    if(!ref_valid(topic, len, false))
      broken("oracle: made an invalid topic", NULL, 0, pattern, topic);
    if(!any_matches(grants, n, topic))
      return false;
    /* Longer than every grant: only grants ending in `>` can match, and
     * they match a longer topic of fresh values as they match this one. */
    if(fixed + k > longest)
      return true;
  }
  if(k == 0)
    broken("oracle: no topic for a valid pattern", NULL, 0, pattern, NULL);
  return true;
}

/* cover({grant}, pattern) is true: every topic made from pattern with the
 * values in `values` (and "zz9") must match grant. */
static void check_single_cover(const char *grant, const char *pattern, const char **values,
                               const size_t *vlen, int nv)
{
  const char *ps[SUB_TOPIC_MAX_SEGMENTS];
  size_t pl[SUB_TOPIC_MAX_SEGMENTS];
  int np = split(pattern, ps, pl);
  /* r: the value of the first wildcard segment; each next one takes the
   * next value, so that a topic mixes them */
  for(int r = 0; r < nv; r++) {
    for(int tail = 1; tail <= 3; tail++) {
      char topic[SUB_TOPIC_MAX + 1] = "";
      size_t len = 0;
      bool fits = true;
      for(int i = 0, v = r; i < np && fits; i++) {
        if(pl[i] == 1 && ps[i][0] == '>') {
          for(int k = 0; k < tail && fits; k++, v = (v + 1) % nv)
            fits = append(topic, &len, values[v], vlen[v]);
        } else if(pl[i] == 1 && ps[i][0] == '*') {
          fits = append(topic, &len, values[v], vlen[v]);
          v = (v + 1) % nv;
        } else {
          fits = append(topic, &len, ps[i], pl[i]);
        }
      }
      if(!fits || !ref_valid(topic, len, false))
        continue; /* past 255 bytes or 32 segments: not a topic */
      if(!matches(grant, topic))
        broken("cover({G}, P) but G does not match a topic of P", &grant, 1, pattern, topic);
      if(!(pl[np - 1] == 1 && ps[np - 1][0] == '>'))
        break; /* no `>`: the tail length changes nothing */
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *text = (const char *)data;
  char *own[MAX_PARTS]; /* the valid patterns, terminated */
  const char *pats[MAX_PARTS];
  size_t npats = 0;

  check_valid(text, size); /* the whole input, separators and all */
  check_valid(NULL, 0);
  size_t start = 0, pieces = 0;
  for(size_t i = 0; i <= size && npats < MAX_PARTS && pieces < MAX_PIECES; i++) {
    if(i < size && data[i] != '\0' && data[i] != '\n')
      continue;
    size_t len = i - start;
    pieces++;
    char *exact = malloc(len ? len : 1);
    if(!exact)
      goto out;
    memcpy(exact, text + start, len);
    bool pattern = check_valid(exact, len);
    if(len > 0)
      check_valid(exact, len - 1);
    free(exact);
    for(size_t p = 0; p < npats && pattern; p++) /* a second copy tells nothing new */
      pattern = strlen(pats[p]) != len || memcmp(pats[p], text + start, len) != 0;
    if(!pattern) {
      start = i + 1;
      continue;
    }
    own[npats] = malloc(len + 1);
    if(!own[npats])
      goto out;
    memcpy(own[npats], text + start, len);
    own[npats][len] = '\0';
    pats[npats] = own[npats];
    npats++;
    start = i + 1;
  }

  /* The values the grants name, then "zz9" that none does (probably). */
  const char *values[MAX_VALUES + 1];
  size_t vlen[MAX_VALUES + 1];
  int nv = 0;
  for(size_t g = 0; g < npats && nv < MAX_VALUES; g++) {
    const char *gs[SUB_TOPIC_MAX_SEGMENTS];
    size_t gl[SUB_TOPIC_MAX_SEGMENTS];
    int ng = split(pats[g], gs, gl);
    for(int i = 0; i < ng && nv < MAX_VALUES; i++) {
      bool seen = is_wild(gs[i], gl[i]);
      for(int v = 0; v < nv && !seen; v++)
        seen = vlen[v] == gl[i] && memcmp(values[v], gs[i], gl[i]) == 0;
      if(!seen) {
        values[nv] = gs[i];
        vlen[nv++] = gl[i];
      }
    }
  }
  values[nv] = "zz9";
  vlen[nv++] = 3;

  /* cover({G}, P) for every pair, once: one[g][p] */
  bool one[MAX_PARTS][MAX_PARTS];
  for(size_t g = 0; g < npats; g++)
    for(size_t p = 0; p < npats; p++)
      one[g][p] = sub_patterns_cover(&pats[g], 1, pats[p]);

  static const char *const all[] = {">"};
  for(size_t p = 0; p < npats; p++) {
    const char *pattern = pats[p];
    const char *others[MAX_PARTS]; /* the grants: every other pattern */
    size_t nothers = 0;
    for(size_t g = 0; g < npats; g++)
      if(g != p)
        others[nothers++] = pats[g];
    char fresh[SUB_TOPIC_MAX_SEGMENTS];
    int longest = fresh_values(others, nothers, fresh);
    if(!one[p][p])
      broken("a pattern does not cover itself", &pattern, 1, pattern, NULL);
    if(!sub_patterns_cover(all, 1, pattern))
      broken("\">\" does not cover a pattern", all, 1, pattern, NULL);
    if(sub_patterns_cover(pats, 0, pattern))
      broken("no grants cover a pattern", NULL, 0, pattern, NULL);
    bool cover = sub_patterns_cover(others, nothers, pattern);
    if(cover != oracle_cover(others, nothers, fresh, longest, pattern))
      broken(cover ? "cover: true, but a topic of the pattern matches no grant"
                   : "cover: false, but every topic of the pattern matches a grant",
             others, nothers, pattern, NULL);
    bool concrete = sub_topic_valid(pattern, strlen(pattern), NULL);
    for(size_t g = 0; g < npats; g++) {
      const char *grant = pats[g];
      if(one[g][p] && g != p && !cover)
        broken("one grant covers a pattern, all of them do not", others, nothers, pattern, NULL);
      if(concrete && one[g][p] != matches(grant, pattern))
        broken(one[g][p] ? "cover({G}, t) but G does not match t"
                         : "G matches t, not cover({G}, t)",
               &grant, 1, pattern, NULL);
      if(one[g][p])
        check_single_cover(grant, pattern, values, vlen, nv);
      /* transitive: G covers P, P covers Q, so G covers Q */
      for(size_t q = 0; one[g][p] && q < npats; q++)
        if(one[p][q] && !one[g][q])
          broken("cover is not transitive (pattern: the middle one, topic: the last)", &grant, 1,
                 pattern, pats[q]);
    }
  }
out:
  for(size_t i = 0; i < npats; i++)
    free(own[i]);
  return 0;
}
