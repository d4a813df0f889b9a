/* ECMA-262 patterns on PCRE2 (schemas/regex.h): what a schema's `pattern`
 * matches, how a bad pattern is reported, and that no pattern can hang the
 * gateway or break under concurrent use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

/* UTF-8 spellings used below */
#define NBSP "\xc2\xa0"          /* U+00A0 */
#define BOM "\xef\xbb\xbf"       /* U+FEFF */
#define LS "\xe2\x80\xa8"        /* U+2028 */
#define PS "\xe2\x80\xa9"        /* U+2029 */
#define IDEO_SP "\xe3\x80\x80"   /* U+3000 */
#define ZWSP "\xe2\x80\x8b"      /* U+200B: not white space in ECMA */
#define E_ACUTE "\xc3\xa9"       /* U+00E9 */
#define GRIN "\xf0\x9f\x98\x80"  /* U+1F600 */
#define ARABIC_0 "\xd9\xa0"      /* U+0660 ARABIC-INDIC DIGIT ZERO */
#define BENGALI_4 "\xe0\xa7\xaa" /* U+09EA BENGALI DIGIT FOUR */

struct search_case {
  const char *pattern, *subject;
  size_t len; /* 0: strlen(subject) */
  int want;
};

static const struct search_case search_cases[] = {
    /* not anchored: a pattern matches anywhere unless it says ^ or $ */
    {"b", "abc", 0, 1},
    {"^b", "abc", 0, 0},
    {"c$", "abc", 0, 1},
    {"b$", "abc", 0, 0},
    {"", "anything", 0, 1},
    {"x", "", 0, 0},
    /* ECMA \d and \w are ASCII only */
    {"^\\d$", "0", 0, 1},
    {"^\\d$", "9", 0, 1},
    {"^\\d$", ARABIC_0, 0, 0},
    {"^\\d$", BENGALI_4, 0, 0},
    {"^\\D$", BENGALI_4, 0, 1},
    {"^\\w$", "_", 0, 1},
    {"^\\w$", E_ACUTE, 0, 0},
    {"^\\W$", E_ACUTE, 0, 1},
    {"^[\\w]$", E_ACUTE, 0, 0},
    {"a\\b", "a" E_ACUTE, 0, 1}, /* e-acute is not a word character */
    {"\\bb", "ab", 0, 0},
    /* $ is the very end only, not before a trailing newline */
    {"^abc$", "abc", 0, 1},
    {"^abc$", "abc\n", 0, 0},
    {"abc$", "abc\n", 0, 0},
    /* \s is ECMA white space plus line terminators */
    {"^\\s$", " ", 0, 1},
    {"^\\s$", "\t", 0, 1},
    {"^\\s$", "\v", 0, 1},
    {"^\\s$", "\f", 0, 1},
    {"^\\s$", "\n", 0, 1},
    {"^\\s$", "\r", 0, 1},
    {"^\\s$", NBSP, 0, 1},
    {"^\\s$", BOM, 0, 1},
    {"^\\s$", LS, 0, 1},
    {"^\\s$", PS, 0, 1},
    {"^\\s$", IDEO_SP, 0, 1},
    {"^\\s$", "\xe2\x80\x85", 0, 1}, /* U+2005 FOUR-PER-EM SPACE (Zs) */
    {"^\\s$", ZWSP, 0, 0},
    {"^\\s$", "a", 0, 0},
    {"^\\s+$", " \t" NBSP BOM PS, 0, 1},
    {"^\\S$", NBSP, 0, 0},
    {"^\\S$", BOM, 0, 0},
    {"^\\S$", "a", 0, 1},
    {"^\\S$", E_ACUTE, 0, 1},
    {"^\\S$", ZWSP, 0, 1},
    /* \s and \S inside classes */
    {"^[\\s]$", NBSP, 0, 1},
    {"^[x\\s]$", PS, 0, 1},
    {"^[x\\s]$", "x", 0, 1},
    {"^[^\\s]$", NBSP, 0, 0},
    {"^[^\\s]$", "a", 0, 1},
    {"^[\\S]$", "a", 0, 1},
    {"^[\\S]$", NBSP, 0, 0},
    {"^[^\\S]$", NBSP, 0, 1},
    {"^[^\\S]$", "a", 0, 0},
    {"^[\\d\\S]+$", "1a", 0, 1},
    {"^[\\d\\S]+$", "1 ", 0, 0},
    {"^[ \\S]+$", "a b", 0, 1},
    {"^[ \\S]+$", "a" NBSP "b", 0, 0},
    {"^[^\\t\\S]$", "\t", 0, 0},
    {"^[^\\t\\S]$", " ", 0, 1},
    {"^[^\\t\\S]$", NBSP, 0, 1},
    {"^[^\\t\\S]$", "a", 0, 0},
    {"^[\\s\\S]$", "\n", 0, 1},
    {"^[\\s\\S]$", GRIN, 0, 1},
    {"^[\\S\\s]{2}$", "a ", 0, 1},
    {"^[^\\s\\S]$", "a", 0, 0},
    /* \v is vertical tab only (PCRE2's \v is any vertical space) */
    {"^\\v$", "\v", 0, 1},
    {"^\\v$", "\n", 0, 0},
    {"^[\\v]$", LS, 0, 0},
    /* \cX control escapes */
    {"^\\cC$", "\x03", 0, 1},
    {"^\\cc$", "\x03", 0, 1},
    {"^\\cJ$", "\n", 0, 1},
    {"^[\\cC]$", "\x03", 0, 1},
    {"^[\\c_]$", "\x1f", 0, 1}, /* Annex B, inside a class */
    {"^\\c1$", "\\c1", 0, 1},   /* not a control escape: literal */
    {"^\\cC$", "C", 0, 0},
    /* . excludes all four line terminators and matches a code point */
    {"^.$", "a", 0, 1},
    {"^.$", E_ACUTE, 0, 1},
    {"^.$", GRIN, 0, 1},
    {"^..$", E_ACUTE, 0, 0},
    {"^.$", "\n", 0, 0},
    {"^.$", "\r", 0, 0},
    {"^.$", LS, 0, 0},
    {"^.$", PS, 0, 0},
    {"^[.]$", "x", 0, 0},
    {"^[.]$", ".", 0, 1},
    /* [] matches nothing, [^] anything */
    {"^[^]$", "\n", 0, 1},
    {"^[^]$", GRIN, 0, 1},
    {"^[^]$", "", 0, 0},
    {"a[]", "a", 0, 0},
    {"a[]", "a]", 0, 0},
    {"^a[]*$", "a", 0, 1},
    {"^(?:x|[])b", "xb", 0, 1},
    /* [ is a literal inside a class, not a POSIX class */
    {"^[[:alpha:]]$", "a", 0, 0},
    {"^[[:alpha:]]$", "a]", 0, 1},
    {"^[[:alpha:]]$", "[]", 0, 1},
    {"^[a^]$", "^", 0, 1},
    {"^[\\^]$", "^", 0, 1},
    {"^[\\]]$", "]", 0, 1},
    {"^[a-c]+$", "abcba", 0, 1},
    {"^[a-c]+$", "abd", 0, 0},
    {"^[-a]$", "-", 0, 1},
    {"^[a-]$", "-", 0, 1},
    /* \u, \x and surrogate pairs */
    {"^\\u00e9$", E_ACUTE, 0, 1},
    {"^\\u{1F600}$", GRIN, 0, 1},
    {"^\\uD83D\\uDE00$", GRIN, 0, 1},
    {"^[\\ud83d\\ude00]$", GRIN, 0, 1},
    {"^\\x41$", "A", 0, 1},
    {"^[\\u00e0-\\u00ff]$", E_ACUTE, 0, 1},
    {"^" E_ACUTE "+$", E_ACUTE E_ACUTE, 0, 1},
    {"^[" GRIN "]$", GRIN, 0, 1},
    /* groups, backreferences, lookaround, quantifiers */
    {"^(a)\\1$", "aa", 0, 1},
    {"^(?<y>\\d{2})-\\k<y>$", "12-12", 0, 1},
    {"^(?<y>\\d{2})-\\k<y>$", "12-13", 0, 0},
    {"a(?=b)", "ab", 0, 1},
    {"a(?!b)", "ab", 0, 0},
    {"(?<=a)b", "ab", 0, 1},
    {"(?<!a)b", "ab", 0, 0},
    {"(?:ab)+", "abab", 0, 1},
    {"^(?<name>x)$", "x", 0, 1},
    {"^(?<n>a)\\k<n>$", "aa", 0, 1},
    {"^[(?i)]+$", "(?i)", 0, 1}, /* inside a class it is just characters */
    {"^\\(?i\\)$", "(i)", 0, 1}, /* an escaped ( followed by ? is no group */
    {"^\\(?i\\)$", "i)", 0, 1},
    /* not ECMA, but left to PCRE2 as the atomic/possessive forms are harmless */
    {"^(?>a+)b$", "aab", 0, 1},
    {"^a*+b$", "aab", 0, 1},
    {"^a{2,3}$", "aaaa", 0, 0},
    {"^\\p{Lu}$", "A", 0, 1},
    {"^\\p{L}$", E_ACUTE, 0, 1},
    {"^\\/$", "/", 0, 1},
    /* the length is authoritative: embedded NUL, and a prefix */
    {"^a\\x00b$", "a\0b", 3, 1},
    {"^a.b$", "a\0b", 3, 1},
    {"^ab$", "abc", 2, 1},
    /* patterns JSON Schema users actually write */
    {"^[A-Z]{2}-[0-9]{5}$", "EU-12345", 0, 1},
    {"^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$", "joe@example.com", 0, 1},
    {"^\\S(|(.|\\n)*\\S)$", "a b", 0, 1},
    {"^\\S(|(.|\\n)*\\S)$", "a b ", 0, 0},
};

static void test_search_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(search_cases) / sizeof(search_cases[0]); i++) {
    const struct search_case *c = &search_cases[i];
    size_t len = c->len ? c->len : strlen(c->subject);
    char err[256];
    struct schema_regex *re = schema_regex_compile(c->pattern, err, sizeof(err));
    if(!re)
      fail_msg("/%s/ did not compile: %s", c->pattern, err);
    int got = schema_regex_search(re, c->subject, len);
    if(got != c->want)
      fail_msg("/%s/ on \"%.*s\" = %d, want %d", c->pattern, (int)len, c->subject, got, c->want);
    schema_regex_free(re);
  }
}

struct error_case {
  const char *pattern;
  const char *message; /* exact, or NULL to only require failure */
  const char *contains;
};

static const struct error_case error_cases[] = {
    {"a(", "invalid regex \"a(\": missing closing parenthesis at offset 2", NULL},
    {"^(abc]", NULL, "missing closing parenthesis"},
    {"[a", "invalid regex \"[a\": missing terminating ] for character class at offset 0", NULL},
    {"a)", NULL, "unmatched closing parenthesis at offset 1"},
    {"*a", NULL, "quantifier does not follow a repeatable item at offset 0"},
    /* an offset after a rewritten \s still points into what the user wrote */
    {"\\s(", NULL, "missing closing parenthesis at offset 3"},
    {"[\\s]x)", NULL, "at offset 5"},
    {"..)", NULL, "at offset 2"},
    /* PCRE2-only escapes that ECMA-262 does not have */
    {"^\\S(|(.|\\n)*\\S)\\Z", NULL, "\\Z is not an ECMA-262 escape at offset 15"},
    {"\\Aabc", NULL, "\\A is not an ECMA-262 escape"},
    {"abc\\z", NULL, "\\z is not an ECMA-262 escape"},
    {"\\Qa.b\\E", NULL, "\\Q is not an ECMA-262 escape"},
    {"a\\Kb", NULL, "\\K is not an ECMA-262 escape"},
    {"\\h", NULL, "\\h is not an ECMA-262 escape"},
    {"[\\R]", NULL, "\\R is not an ECMA-262 escape"},
    {"\\a", NULL, "\\a is not an ECMA-262 escape"},
    {"\\C", NULL, "\\C is not an ECMA-262 escape"},
    /* PCRE2/Python group syntax that ECMA-262 does not have */
    {"(?i)abc", NULL, "(?i is not ECMA-262 group syntax at offset 0"},
    {"a(?ims)b", NULL, "(?i is not ECMA-262 group syntax at offset 1"},
    {"(?P<name>x)", NULL, "(?P is not ECMA-262 group syntax"},
    {"(?P<n>a)(?P=n)", NULL, "(?P is not ECMA-262 group syntax"},
    {"(?#comment)a", NULL, "(?# is not ECMA-262 group syntax"},
    {"(?|a)", NULL, "(?| is not ECMA-262 group syntax"},
    {"(a)(?1)", NULL, "(?1 is not ECMA-262 group syntax"},
    {"(?", NULL, "(? is not ECMA-262 group syntax"},
    {"(?" E_ACUTE ")",
     "invalid regex \"(?" E_ACUTE ")\": (? is not ECMA-262 group syntax at offset 0", NULL},
    /* ranges next to \s and \S would silently mean something else */
    {"[\\s-z]", NULL, "cannot start a range"},
    {"[a-\\s]", NULL, "cannot end a range"},
    {"[a-\\S]", NULL, "cannot end a range"},
    {"[z-a]", NULL, "range out of order"},
    {"a\\", NULL, "\\ at end of pattern"},
    {"(?<=a+)b", NULL, "lookbehind"},
    {"\\ud800", NULL, "disallowed Unicode code point"},
    {"\xff", NULL, "UTF-8 error"},
};

static void test_compile_errors(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
    const struct error_case *c = &error_cases[i];
    char err[256];
    memset(err, 'x', sizeof(err));
    struct schema_regex *re = schema_regex_compile(c->pattern, err, sizeof(err));
    if(re)
      fail_msg("/%s/ compiled, want an error", c->pattern);
    if(c->message && strcmp(err, c->message) != 0)
      fail_msg("/%s/: got '%s', want '%s'", c->pattern, err, c->message);
    if(c->contains && !strstr(err, c->contains))
      fail_msg("/%s/: got '%s', want it to contain '%s'", c->pattern, err, c->contains);
    if(strncmp(err, "invalid regex \"", 15) != 0)
      fail_msg("/%s/: message '%s' does not name the regex", c->pattern, err);
    /* no error buffer at all is fine too */
    assert_null(schema_regex_compile(c->pattern, NULL, 0));
  }
}

/* A long pattern is quoted in part; a short buffer gets a truncated message. */
static void test_error_message_size(void **state)
{
  (void)state;
  char pat[300], err[512];
  memset(pat, 'a', sizeof(pat));
  pat[sizeof(pat) - 2] = '(';
  pat[sizeof(pat) - 1] = '\0';
  assert_null(schema_regex_compile(pat, err, sizeof(err)));
  assert_true(strlen(err) < 150);
  assert_non_null(strstr(err, "aaa...\": missing closing parenthesis at offset 299"));

  char tiny[8];
  assert_null(schema_regex_compile("a(", tiny, sizeof(tiny)));
  assert_string_equal(tiny, "invalid");

  /* a cut never splits a UTF-8 sequence */
  char upat[200] = "";
  for(int i = 0; i < 40; i++)
    strcat(upat, E_ACUTE);
  strcat(upat, "(");
  assert_null(schema_regex_compile(upat, err, sizeof(err)));
  const char *q = strchr(err, '"') + 1;
  const char *dots = strstr(q, "...");
  assert_non_null(dots);
  assert_int_equal((dots - q) % 2, 0);
}

static void test_source_and_free(void **state)
{
  (void)state;
  const char *src = "^\\s[^]\\S.$";
  struct schema_regex *re = schema_regex_compile(src, NULL, 0);
  assert_non_null(re);
  assert_string_equal(schema_regex_source(re), src);
  assert_ptr_not_equal(schema_regex_source(re), src); /* a copy */
  schema_regex_free(re);
  schema_regex_free(NULL);
  assert_null(schema_regex_source(NULL));
  assert_int_equal(schema_regex_search(NULL, "a", 1), -1);
  assert_null(schema_regex_compile(NULL, NULL, 0));

  /* an empty subject may come as NULL */
  re = schema_regex_compile("^$", NULL, 0);
  assert_non_null(re);
  assert_int_equal(schema_regex_search(re, NULL, 0), 1);
  assert_int_equal(schema_regex_search(re, NULL, 1), -1);
  schema_regex_free(re);
}

/* Catastrophic backtracking ends with the limit error instead of a hang. */
static void test_catastrophic(void **state)
{
  (void)state;
  char s[64];
  memset(s, 'a', 40);
  s[40] = 'b';
  s[41] = '\0';
  const char *patterns[] = {"(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^(a+\\s?)+$", "^(a*)*$"};
  for(size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
    struct schema_regex *re = schema_regex_compile(patterns[i], NULL, 0);
    assert_non_null(re);
    int rc = schema_regex_search(re, s, 41);
    if(rc != -1 && rc != 0)
      fail_msg("/%s/ on a{40}b = %d, want -1 or 0", patterns[i], rc);
    /* and the same regex still answers ordinary questions */
    assert_int_equal(schema_regex_search(re, "aaaa", 4), 1);
    schema_regex_free(re);
  }
}

/* A long subject through a group repeat still gets an answer. */
static void test_long_subject(void **state)
{
  (void)state;
  size_t n = 100000;
  char *s = malloc(n);
  assert_non_null(s);
  for(size_t i = 0; i < n; i++)
    s[i] = (i % 3) ? 'a' : 'b';
  struct schema_regex *re = schema_regex_compile("^[ab]*$", NULL, 0);
  assert_non_null(re);
  assert_int_equal(schema_regex_search(re, s, n), 1);
  schema_regex_free(re);
  re = schema_regex_compile("^(?:a|b)*$", NULL, 0);
  assert_non_null(re);
  int rc = schema_regex_search(re, s, n);
  /* JIT matches it on a bigger stack; the interpreter (HERALD_REGEX_JIT=0,
   * as under valgrind) hits its depth limit and says so: -1, not a hang. */
  const char *jit = getenv("HERALD_REGEX_JIT");
  assert_int_equal(rc, jit && strcmp(jit, "0") == 0 ? -1 : 1);
  schema_regex_free(re);
  free(s);
}

struct thread_arg {
  const struct schema_regex *re;
  int failures;
};

#define THREAD_ROUNDS 20000

static void *search_thread(void *p)
{
  struct thread_arg *a = p;
  static const struct {
    const char *s;
    int want;
  } subjects[] = {
      {"orders.eu-1", 1}, {"orders." NBSP, 0}, {"x orders.a", 1}, {"orders.", 0}, {"", 0},
  };
  for(int i = 0; i < THREAD_ROUNDS; i++) {
    size_t k = (size_t)i % (sizeof(subjects) / sizeof(subjects[0]));
    if(schema_regex_search(a->re, subjects[k].s, strlen(subjects[k].s)) != subjects[k].want)
      a->failures++;
  }
  return NULL;
}

/* One compiled regex searched from several threads at once (the gateway's
 * workers share compiled schemas). */
static void test_concurrent(void **state)
{
  (void)state;
  struct schema_regex *re = schema_regex_compile("orders\\.[\\w-]+\\S*$", NULL, 0);
  assert_non_null(re);
  pthread_t t[4];
  struct thread_arg args[4];
  for(int i = 0; i < 4; i++) {
    args[i] = (struct thread_arg){.re = re, .failures = 0};
    assert_int_equal(pthread_create(&t[i], NULL, search_thread, &args[i]), 0);
  }
  for(int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(args[i].failures, 0);
  }
  schema_regex_free(re);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_search_table),       cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_error_message_size), cmocka_unit_test(test_source_and_free),
      cmocka_unit_test(test_catastrophic),       cmocka_unit_test(test_long_subject),
      cmocka_unit_test(test_concurrent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
