/* Topic and pattern grammar (DESIGN.md, "Topics"): what clients may send as
 * a topic or a subscription pattern, and what a pattern matches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "topic.h"

struct valid_case {
  const char *s;
  size_t len; /* 0: strlen(s) */
  bool topic_ok, pattern_ok;
};

#define LEN_OF_S 0

static const struct valid_case valid_cases[] = {
    /* plain topics are valid as both */
    {"a", LEN_OF_S, true, true},
    {"orders", LEN_OF_S, true, true},
    {"orders.eu.created", LEN_OF_S, true, true},
    {"A-Z_az-09.x_y-z", LEN_OF_S, true, true},
    {"0.1.2", LEN_OF_S, true, true},
    {"-._", LEN_OF_S, true, true},
    /* empty and empty segments */
    {"", LEN_OF_S, false, false},
    {".", LEN_OF_S, false, false},
    {"..", LEN_OF_S, false, false},
    {".a", LEN_OF_S, false, false},
    {"a.", LEN_OF_S, false, false},
    {"a..b", LEN_OF_S, false, false},
    {"a.b.", LEN_OF_S, false, false},
    {".*", LEN_OF_S, false, false},
    {">.", LEN_OF_S, false, false},
    {"*..a", LEN_OF_S, false, false},
    /* wildcards: valid in patterns only, standing alone, `>` last */
    {"*", LEN_OF_S, false, true},
    {">", LEN_OF_S, false, true},
    {"orders.*", LEN_OF_S, false, true},
    {"orders.>", LEN_OF_S, false, true},
    {"orders.*.created", LEN_OF_S, false, true},
    {"*.*", LEN_OF_S, false, true},
    {"*.>", LEN_OF_S, false, true},
    {"*.a.*.>", LEN_OF_S, false, true},
    {">.a", LEN_OF_S, false, false},
    {"a.>.b", LEN_OF_S, false, false},
    {">.>", LEN_OF_S, false, false},
    {">.*", LEN_OF_S, false, false},
    {"a*", LEN_OF_S, false, false},
    {"*a", LEN_OF_S, false, false},
    {"a.b>", LEN_OF_S, false, false},
    {"a.>b", LEN_OF_S, false, false},
    {"**", LEN_OF_S, false, false},
    {">>", LEN_OF_S, false, false},
    {"a.*>", LEN_OF_S, false, false},
    /* bad characters */
    {"a b", LEN_OF_S, false, false},
    {" a", LEN_OF_S, false, false},
    {"a ", LEN_OF_S, false, false},
    {"a/b", LEN_OF_S, false, false},
    {"orders/eu", LEN_OF_S, false, false},
    {"caf\xc3\xa9", LEN_OF_S, false, false},     /* UTF-8 e-acute */
    {"a.\xe2\x82\xac", LEN_OF_S, false, false},  /* UTF-8 euro sign */
    {"\xff", LEN_OF_S, false, false},
    {"a\tb", LEN_OF_S, false, false},
    {"a:b", LEN_OF_S, false, false},
    {"a,b", LEN_OF_S, false, false},
    {"a#", LEN_OF_S, false, false},
    {"a+b", LEN_OF_S, false, false},
    {"a\"b", LEN_OF_S, false, false},
    /* an embedded NUL is a bad character, not the end of the topic */
    {"ab\0cd", 5, false, false},
    {"*\0", 2, false, false},
    /* the length passed is what counts: "ab" of "ab.cd" */
    {"ab.cd", 2, true, true},
    {"ab.", 2, true, true},
    {"a.>.b", 3, false, true},
};

static void test_valid_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
    const struct valid_case *c = &valid_cases[i];
    size_t len = c->len ? c->len : strlen(c->s);
    const char *why = NULL;
    bool t = sub_topic_valid(c->s, len, &why);
    if(t != c->topic_ok)
      fail_msg("sub_topic_valid(\"%.*s\") = %d, want %d", (int)len, c->s, t, c->topic_ok);
    if(!t && !why)
      fail_msg("sub_topic_valid(\"%.*s\") gave no reason", (int)len, c->s);
    why = NULL;
    bool p = sub_pattern_valid(c->s, len, &why);
    if(p != c->pattern_ok)
      fail_msg("sub_pattern_valid(\"%.*s\") = %d, want %d", (int)len, c->s, p, c->pattern_ok);
    if(!p && !why)
      fail_msg("sub_pattern_valid(\"%.*s\") gave no reason", (int)len, c->s);
    /* why is optional */
    assert_int_equal(sub_topic_valid(c->s, len, NULL), c->topic_ok);
    assert_int_equal(sub_pattern_valid(c->s, len, NULL), c->pattern_ok);
  }
}

static void test_null_is_invalid(void **state)
{
  (void)state;
  const char *why = NULL;
  assert_false(sub_topic_valid(NULL, 0, &why));
  assert_non_null(why);
  assert_false(sub_pattern_valid(NULL, 3, NULL));
}

/* The reason tells the user what to fix. */
static void test_reasons(void **state)
{
  (void)state;
  const char *why = NULL;
  assert_false(sub_topic_valid("orders.*", 8, &why));
  assert_non_null(strstr(why, "wildcard"));
  assert_false(sub_pattern_valid("a.>.b", 5, &why));
  assert_non_null(strstr(why, "last"));
  assert_false(sub_pattern_valid("a*", 2, &why));
  assert_non_null(strstr(why, "alone"));
  assert_false(sub_topic_valid("a..b", 4, &why));
  assert_non_null(strstr(why, "empty segment"));
  assert_false(sub_topic_valid("a/b", 3, &why));
  assert_non_null(strstr(why, "A-Z"));
  assert_false(sub_topic_valid("", 0, &why));
  assert_non_null(strstr(why, "empty"));
}

/* Fills buf with `len` bytes of "aaaa.aaaa..." style (segments of seg bytes). */
static void fill_topic(char *buf, size_t len, size_t seg)
{
  for(size_t i = 0; i < len; i++)
    buf[i] = (i % (seg + 1) == seg) ? '.' : 'a';
  if(len && buf[len - 1] == '.')
    buf[len - 1] = 'b';
  buf[len] = '\0';
}

static void test_length_limits(void **state)
{
  (void)state;
  char buf[600];
  const char *why = NULL;

  /* one long segment */
  memset(buf, 'x', sizeof(buf));
  assert_true(sub_topic_valid(buf, 255, NULL));
  assert_true(sub_pattern_valid(buf, 255, NULL));
  assert_false(sub_topic_valid(buf, 256, &why));
  assert_non_null(strstr(why, "255"));
  assert_false(sub_pattern_valid(buf, 256, NULL));
  assert_false(sub_topic_valid(buf, 599, NULL));

  /* many segments */
  fill_topic(buf, 255, 7);
  assert_int_equal(strlen(buf), 255);
  assert_true(sub_topic_valid(buf, 255, NULL));
  fill_topic(buf, 256, 7);
  assert_false(sub_topic_valid(buf, 256, NULL));

  /* a pattern of exactly 255 bytes ending in `>` */
  fill_topic(buf, 253, 15);
  assert_true(sub_topic_valid(buf, 253, NULL));
  strcpy(buf + 253, ".>");
  assert_int_equal(strlen(buf), 255);
  assert_true(sub_pattern_valid(buf, 255, NULL));
  strcpy(buf + 253, ".x>");
  assert_false(sub_pattern_valid(buf, 256, NULL));
}

/* Topics and patterns have at most 32 segments; split still takes the
 * deepest string that fits in 255 bytes (128 one-byte segments). */
static void test_depth(void **state)
{
  (void)state;
  char buf[300];
  const char *seg[SUB_TOPIC_MAX_DEPTH];
  size_t seglen[SUB_TOPIC_MAX_DEPTH];
  const char *why = NULL;

  fill_topic(buf, 63, 1); /* 32 segments */
  assert_true(sub_topic_valid(buf, 63, NULL));
  assert_true(sub_pattern_valid(buf, 63, NULL));
  buf[62] = '>';
  assert_true(sub_pattern_valid(buf, 63, NULL));
  fill_topic(buf, 65, 1); /* 33 segments */
  assert_false(sub_topic_valid(buf, 65, &why));
  assert_non_null(strstr(why, "32 segments"));
  assert_false(sub_pattern_valid(buf, 65, NULL));
  buf[64] = '>';
  assert_false(sub_pattern_valid(buf, 65, NULL));

  fill_topic(buf, 255, 1); /* a.a.a....a: 128 segments */
  assert_false(sub_topic_valid(buf, 255, NULL));
  assert_int_equal(sub_topic_split(buf, 255, seg, seglen, SUB_TOPIC_MAX_DEPTH), 128);
  for(int i = 0; i < 128; i++) {
    assert_int_equal(seglen[i], 1);
    assert_ptr_equal(seg[i], buf + 2 * i);
  }
  assert_true(sub_pattern_matches(buf, buf));

  /* the same depth with wildcards: matching still works, validation refuses */
  char pat[300];
  memcpy(pat, buf, 256);
  for(int i = 0; i < 128; i += 2)
    pat[2 * i] = '*';
  pat[254] = '>';
  assert_false(sub_pattern_valid(pat, 255, NULL));
  assert_true(sub_pattern_matches(pat, buf));

  /* too many segments for the caller's array */
  assert_int_equal(sub_topic_split(buf, 255, seg, seglen, 127), -1);
  assert_int_equal(sub_topic_split("a.b.c", 5, seg, seglen, 3), 3);
  assert_int_equal(sub_topic_split("a.b.c", 5, seg, seglen, 2), -1);

  /* split points into the string */
  const char *t = "orders.eu.created";
  assert_int_equal(sub_topic_split(t, strlen(t), seg, seglen, SUB_TOPIC_MAX_DEPTH), 3);
  assert_ptr_equal(seg[0], t);
  assert_int_equal(seglen[0], 6);
  assert_ptr_equal(seg[1], t + 7);
  assert_int_equal(seglen[1], 2);
  assert_ptr_equal(seg[2], t + 10);
  assert_int_equal(seglen[2], 7);
}

struct match_case {
  const char *pattern, *topic;
  bool match;
};

static const struct match_case match_cases[] = {
    /* exact */
    {"a", "a", true},
    {"a", "b", false},
    {"a", "ab", false},
    {"ab", "a", false},
    {"orders.eu.created", "orders.eu.created", true},
    {"orders.eu.created", "orders.eu.create", false},
    {"orders.eu.created", "orders.eu", false},
    {"orders.eu", "orders.eu.created", false},
    {"orders.eu", "Orders.eu", false},
    /* `*` is exactly one segment */
    {"*", "a", true},
    {"*", "orders", true},
    {"*", "a.b", false},
    {"orders.*", "orders.eu", true},
    {"orders.*", "orders", false},
    {"orders.*", "orders.eu.created", false},
    {"orders.*", "shipping.eu", false},
    {"orders.*.created", "orders.eu.created", true},
    {"orders.*.created", "orders.us.created", true},
    {"orders.*.created", "orders.created", false},
    {"orders.*.created", "orders.eu.x.created", false},
    {"orders.*.created", "orders.eu.deleted", false},
    {"*.created", "orders.created", true},
    {"*.created", "created", false},
    {"*.*", "a.b", true},
    {"*.*", "a", false},
    {"*.*", "a.b.c", false},
    {"*.*.*", "a.b.c", true},
    /* `>` is one or more trailing segments */
    {">", "a", true},
    {">", "a.b", true},
    {">", "a.b.c.d.e", true},
    {"orders.>", "orders.eu", true},
    {"orders.>", "orders.eu.created", true},
    {"orders.>", "orders", false},
    {"orders.>", "order.eu", false},
    {"orders.>", "ordersx.eu", false},
    {"orders.>", "shipping.orders.eu", false},
    {"*.>", "a", false},
    {"*.>", "a.b", true},
    {"*.>", "a.b.c", true},
    {"a.*.>", "a.b", false},
    {"a.*.>", "a.b.c", true},
    {"a.*.>", "x.b.c", false},
};

static void test_matches_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
    const struct match_case *c = &match_cases[i];
    /* the table only holds valid input */
    assert_true(sub_pattern_valid(c->pattern, strlen(c->pattern), NULL));
    assert_true(sub_topic_valid(c->topic, strlen(c->topic), NULL));
    bool m = sub_pattern_matches(c->pattern, c->topic);
    if(m != c->match)
      fail_msg("sub_pattern_matches(\"%s\", \"%s\") = %d, want %d", c->pattern, c->topic, m,
               c->match);
  }
}

/* A concrete topic used as a pattern matches itself only. */
static void test_topic_matches_itself(void **state)
{
  (void)state;
  const char *topics[] = {"a", "a.b", "a.b.c", "b.a", "a.a", "ab"};
  size_t n = sizeof(topics) / sizeof(topics[0]);
  for(size_t i = 0; i < n; i++)
    for(size_t j = 0; j < n; j++)
      assert_int_equal(sub_pattern_matches(topics[i], topics[j]), i == j);
}

/* Containment: the cases a permission check relies on. */
struct cover_case {
  const char *grants[3];
  const char *pattern;
  bool covered;
};

static const struct cover_case cover_cases[] = {
    {{"orders.>"}, "orders.*.created", true},
    {{"orders.>"}, "orders.eu", true},
    {{"orders.>"}, "orders.>", true},
    {{"orders.>"}, "orders", false},
    {{"orders.*"}, "orders.>", false},
    {{"orders.*"}, "orders.eu", true},
    {{"orders.*"}, "orders.*", true},
    {{"orders.*"}, "orders.eu.created", false},
    {{"orders.eu"}, "orders.*", false},
    {{"orders.*.created"}, "orders.eu.created", true},
    {{"orders.*.created"}, "orders.*.*", false},
    {{"orders.*.*"}, "orders.*.created", true},
    {{">"}, "a", true},
    {{">"}, ">", true},
    {{">"}, "a.*.>", true},
    {{"*"}, ">", false},
    {{"*"}, "*", true},
    {{"a.*", "a.*.>"}, "a.>", true}, /* only together */
    {{"a.*"}, "a.>", false},
    {{"a.*.>"}, "a.>", false},
    {{"a.x", "a.*"}, "a.*", true},
    {{"a.x", "a.y"}, "a.*", false},
    {{"a.*.c", "a.b.*"}, "a.b.c", true},
    {{"a.*.c", "a.b.*"}, "a.*.*", false},
    {{"*.*", "*.*.*", ">"}, "x.>", true},
    {{"b.>"}, "a.>", false},
    {{NULL}, "a", false},
};

static void test_cover_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(cover_cases) / sizeof(cover_cases[0]); i++) {
    const struct cover_case *c = &cover_cases[i];
    size_t n = 0;
    while(n < 3 && c->grants[n])
      n++;
    bool got = sub_patterns_cover(c->grants, n, c->pattern);
    if(got != c->covered)
      fail_msg("case %zu: grants %s%s%s%s cover \"%s\" = %d, want %d", i,
               n ? c->grants[0] : "(none)", n > 1 ? ", " : "", n > 1 ? c->grants[1] : "",
               n > 2 ? ", ..." : "", c->pattern, got, c->covered);
  }
}

/* A `>` stands for at most what a topic can hold: 32 segments in all. */
static void test_cover_depth_bound(void **state)
{
  (void)state;
  static char grants[31][80];
  const char *g[31];
  /* "a.*", "a.*.*", ... up to 31 stars: every topic under "a" */
  for(int k = 1; k <= 31; k++) {
    char *p = grants[k - 1];
    p += sprintf(p, "a");
    for(int j = 0; j < k; j++)
      p += sprintf(p, ".*");
    g[k - 1] = grants[k - 1];
  }
  assert_true(sub_patterns_cover(g, 31, "a.>"));
  assert_false(sub_patterns_cover(g, 30, "a.>")); /* a topic of 32 segments is left */
  assert_true(sub_patterns_cover(g, 30, "a.*.>") == false);
  assert_true(sub_patterns_cover(g + 1, 30, "a.*.>"));
}

/* Input that is not a valid pattern is never covered, not even by ">". */
static void test_cover_invalid(void **state)
{
  (void)state;
  static char longp[301], deep[100];
  const char *all[] = {">"};
  memset(longp, 'a', 300);
  for(int i = 0; i < 41; i++)
    strcat(deep, i ? ".a" : "a");
  assert_false(sub_patterns_cover(all, 1, longp));
  assert_false(sub_patterns_cover(all, 1, deep));
  assert_false(sub_patterns_cover(NULL, 0, longp));
}

/* Brute force: every pattern of up to 3 segments over {a, b, *, >}, every
 * grant set of one or two of them, checked against every topic of up to 5
 * segments over {a, b, c} ("c" is a value no grant names). A grant set covers
 * a pattern when every topic the pattern matches, one of the grants matches. */
#define BF_PATTERNS 52
#define BF_TOPICS 363

static int bf_patterns(char out[BF_PATTERNS][8])
{
  const char *mid[] = {"a", "b", "*"}, *last[] = {"a", "b", "*", ">"};
  int n = 0;
  for(int len = 1; len <= 3; len++) {
    int combos = 4;
    for(int i = 1; i < len; i++)
      combos *= 3;
    for(int c = 0; c < combos; c++) {
      char *p = out[n++];
      int v = c;
      p[0] = 0;
      for(int i = 0; i < len - 1; i++, v /= 3)
        strcat(strcat(p, mid[v % 3]), ".");
      strcat(p, last[v % 4]);
    }
  }
  return n;
}

static int bf_topics(char out[BF_TOPICS][12])
{
  const char *vals[] = {"a", "b", "c"};
  int n = 0;
  for(int len = 1; len <= 5; len++) {
    int combos = 1;
    for(int i = 0; i < len; i++)
      combos *= 3;
    for(int c = 0; c < combos; c++) {
      char *p = out[n++];
      int v = c;
      p[0] = 0;
      for(int i = 0; i < len; i++, v /= 3) {
        if(i)
          strcat(p, ".");
        strcat(p, vals[v % 3]);
      }
    }
  }
  return n;
}

static void test_cover_brute_force(void **state)
{
  (void)state;
  static char pats[BF_PATTERNS][8];
  static char tops[BF_TOPICS][12];
  static bool m[BF_PATTERNS][BF_TOPICS];
  assert_int_equal(bf_patterns(pats), BF_PATTERNS);
  assert_int_equal(bf_topics(tops), BF_TOPICS);
  for(int p = 0; p < BF_PATTERNS; p++) {
    assert_true(sub_pattern_valid(pats[p], strlen(pats[p]), NULL));
    for(int t = 0; t < BF_TOPICS; t++)
      m[p][t] = sub_pattern_matches(pats[p], tops[t]);
  }
  int covered = 0, checked = 0;
  for(int g1 = 0; g1 < BF_PATTERNS; g1++) {
    for(int g2 = g1; g2 < BF_PATTERNS; g2++) {
      const char *g[2] = {pats[g1], pats[g2]};
      size_t ng = g1 == g2 ? 1 : 2;
      for(int p = 0; p < BF_PATTERNS; p++) {
        bool want = true;
        for(int t = 0; t < BF_TOPICS && want; t++)
          if(m[p][t] && !m[g1][t] && !m[g2][t])
            want = false;
        bool got = sub_patterns_cover(g, ng, pats[p]);
        if(got != want)
          fail_msg("grants {%s, %s} cover \"%s\": got %d, brute force %d", g[0], g[ng - 1],
                   pats[p], got, want);
        covered += got;
        checked++;
      }
    }
  }
  /* the sets are not trivially all or nothing */
  assert_true(covered > checked / 20 && covered < checked / 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_table),   cmocka_unit_test(test_null_is_invalid),
      cmocka_unit_test(test_reasons),       cmocka_unit_test(test_length_limits),
      cmocka_unit_test(test_depth),         cmocka_unit_test(test_matches_table),
      cmocka_unit_test(test_topic_matches_itself), cmocka_unit_test(test_cover_table),
      cmocka_unit_test(test_cover_depth_bound),    cmocka_unit_test(test_cover_brute_force),
      cmocka_unit_test(test_cover_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
