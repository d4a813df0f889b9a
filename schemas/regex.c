/*
 * regex.c - ECMA-262 patterns on PCRE2.
 *
 * PCRE2 in UTF mode, without UCP, already agrees with ECMA-262 on most of the
 * syntax and on ASCII \d \w \b; PCRE2_DOLLAR_ENDONLY gives ECMA's `$` and
 * PCRE2_(EXTRA_)ALT_BSUX gives \xHH, \uHHHH and \u{H...}. What remains is a
 * small rewrite of the pattern before compiling:
 *
 *   \s, \S   ECMA means Unicode white space and line terminators; PCRE2
 *            without UCP means ASCII only. Spelled out as a class; a \S
 *            inside a class turns the class into a small alternation.
 *   .        ECMA excludes CR, U+2028 and U+2029 as well as LF.
 *   \v       ECMA: VT only; PCRE2: any vertical space.
 *   \cX      made explicit, so a non-letter after \c is not misread.
 *   [] [^]   ECMA: nothing / anything; PCRE2 reads `]` there as a literal.
 *   [ in [.] ECMA: a literal; PCRE2: maybe a POSIX class like [:alpha:].
 *   \uD83D\uDE00  a surrogate pair is one code point in ECMA; PCRE2 refuses
 *            lone surrogates in UTF mode.
 *
 * Letter escapes that ECMA-262 does not define (\A \Z \z \Q \K \h \R ...)
 * and group syntax it does not have ((?i) (?P<n> (?#...)) are refused:
 * PCRE2 would give them a meaning no ECMA engine has, and the draft-07
 * suite expects "\Z" to be rejected. Everything else (atomic groups,
 * possessive quantifiers, (*VERB)s) is left for PCRE2 to accept or refuse;
 * ECMA constructs PCRE2 lacks (variable-length lookbehind) fail to compile.
 * Every match runs with a match and depth limit.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hex.h"

/* Enough for any sane pattern, small enough that a catastrophic one stops
 * well under a second (JIT and interpreter both count against it). */
#define REGEX_MATCH_LIMIT 1000000u
/* Backtracking depth of the interpreter (used when JIT is unavailable);
 * JIT is bounded by its stack instead. */
#define REGEX_DEPTH_LIMIT 10000u
/* JIT stack for a match that overflows the default one: enough for a group
 * repeated over ~100 KB of subject; reserved, not touched, until used. */
#define REGEX_JIT_STACK_MAX (4u * 1024u * 1024u)
/* The rewritten pattern may be several times the source (\s becomes ~90
 * bytes); past this the pattern is refused rather than grown without end. */
#define REGEX_MAX_TRANSLATED (1024u * 1024u)
/* How much of the pattern an error message quotes. */
#define REGEX_QUOTE_MAX 60

/* ECMA-262 WhiteSpace and LineTerminator (Zs as of Unicode 15). */
#define WS_MEMBERS                                                                                 \
  "\\t\\n\\x0b\\f\\r\\x20\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"         \
  "\\ufeff"
#define WS_CLASS "[" WS_MEMBERS "]"
#define NOT_WS_CLASS "[^" WS_MEMBERS "]"
#define ECMA_DOT "[^\\n\\r\\u2028\\u2029]"
#define ECMA_ANY "[\\s\\S]" /* PCRE2's own \s and \S together: every code point */
#define ECMA_NOTHING "(?:(?!))"

struct schema_regex {
  pcre2_code *code;
  pcre2_match_context *mctx; /* read-only after compile, so shared by threads */
  char *source;
  bool jit; /* JIT-compiled: matched through pcre2_jit_match's fast path */
};

/* The rewrite of one pattern. Output grows up to REGEX_MAX_TRANSLATED. */
struct xlate {
  const char *pat;
  size_t len;
  char *out;
  size_t out_len, out_cap;
  bool oom, too_long;
  const char *why; /* set on a syntax error we detect ourselves */
  size_t why_at;
  char why_buf[64];
  /* Mapping a PCRE2 error offset in the output back to the source: the last
   * token boundary at or before map_target, and where the next one began. */
  size_t map_target, map_in, map_out, map_end;
  bool map_passed;
};

/* Appends n bytes; on failure records why and drops them (checked at the end). */
static void put(struct xlate *x, const char *s, size_t n)
{
  if(x->oom || x->too_long)
    return;
  if(n > REGEX_MAX_TRANSLATED - x->out_len) {
    x->too_long = true;
    return;
  }
  if(x->out_len + n + 1 > x->out_cap) {
    size_t cap = x->out_cap ? x->out_cap : 64;
    while(cap < x->out_len + n + 1)
      cap *= 2;
    char *p = realloc(x->out, cap);
    if(!p) {
      x->oom = true;
      return;
    }
    x->out = p;
    x->out_cap = cap;
  }
  memcpy(x->out + x->out_len, s, n);
  x->out_len += n;
  x->out[x->out_len] = '\0';
}

static void put_str(struct xlate *x, const char *s)
{
  put(x, s, strlen(s));
}

static void putf(struct xlate *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a short formatted piece (escapes of at most a few dozen bytes). */
static void putf(struct xlate *x, const char *fmt, ...)
{
  char tmp[32];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if(n > 0 && (size_t)n < sizeof(tmp))
    put(x, tmp, (size_t)n);
}

/* Records that source offset i starts a token emitted at the current output
 * offset; used only to report PCRE2's error offsets in source terms. */
static void mark(struct xlate *x, size_t i)
{
  if(x->map_passed)
    return;
  if(x->out_len <= x->map_target) {
    x->map_in = i;
    x->map_out = x->out_len;
  } else {
    x->map_passed = true;
    x->map_end = i;
  }
}

static void fail(struct xlate *x, size_t at, const char *why)
{
  if(!x->why) {
    x->why = why;
    x->why_at = at;
  }
}

/* The value of the four hex digits at x->pat[at..at+4), or -1. */
static long hex4(const struct xlate *x, size_t at)
{
  if(at + 4 > x->len)
    return -1;
  long v = 0;
  for(size_t k = 0; k < 4; k++) {
    int h = util_hexval(x->pat[at + k]);
    if(h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static bool is_letter(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Rewrites the escape at x->pat[i] ('\\'); returns the offset after it.
 * *class_escape is set when it stands for a set (\s \S) rather than one
 * character, which matters for ranges inside a class. */
static size_t escape(struct xlate *x, size_t i, bool in_class, bool *class_escape)
{
  *class_escape = false;
  if(i + 1 >= x->len) {
    put(x, "\\", 1); /* PCRE2 reports the trailing backslash */
    return i + 1;
  }
  char c = x->pat[i + 1];
  switch(c) {
  case 's':
    *class_escape = true;
    put_str(x, in_class ? WS_MEMBERS : WS_CLASS);
    return i + 2;
  case 'S':
    *class_escape = true;
    /* inside a class the caller wraps the class instead (see char_class()) */
    if(!in_class)
      put_str(x, NOT_WS_CLASS);
    return i + 2;
  case 'v': put_str(x, "\\x0b"); return i + 2;
  case 'c':
    /* ECMA: \c + letter is a control character; Annex B also allows a digit
     * or _ inside a class; anything else leaves a literal backslash. */
    if(i + 2 < x->len &&
       (is_letter(x->pat[i + 2]) ||
        (in_class && ((x->pat[i + 2] >= '0' && x->pat[i + 2] <= '9') || x->pat[i + 2] == '_')))) {
      putf(x, "\\x%02x", (unsigned)(x->pat[i + 2] & 0x1f));
      return i + 3;
    }
    put_str(x, "\\\\");
    return i + 1; /* the 'c' is copied as a literal next */
  case 'u': {
    long hi = hex4(x, i + 2), lo = -1;
    if(hi >= 0xd800 && hi <= 0xdbff && i + 7 < x->len && x->pat[i + 6] == '\\' &&
       x->pat[i + 7] == 'u')
      lo = hex4(x, i + 8);
    if(lo >= 0xdc00 && lo <= 0xdfff) {
      putf(x, "\\u{%lx}", 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
      return i + 12;
    }
    put(x, "\\u", 2); /* the digits or {...} follow as plain characters */
    return i + 2;
  }
  case 'b':
  case 'B':
  case 'd':
  case 'D':
  case 'w':
  case 'W':
  case 'f':
  case 'n':
  case 'r':
  case 't':
  case 'x':
  case 'k':
  case 'p':
  case 'P': put(x, x->pat + i, 2); return i + 2;
  default:
    if(is_letter(c)) {
      if(!x->why) {
        snprintf(x->why_buf, sizeof(x->why_buf), "\\%c is not an ECMA-262 escape", c);
        fail(x, i, x->why_buf);
      }
      return i + 2;
    }
    /* digits (backreferences, \0) and escaped punctuation mean the same in
     * both; a multi-byte character's continuation bytes follow unchanged */
    put(x, x->pat + i, 2);
    return i + 2;
  }
}

/* Rewrites the class starting at x->pat[i] ('['); returns the offset after
 * its closing ']'. */
static size_t char_class(struct xlate *x, size_t i)
{
  size_t j = i + 1;
  bool negated = j < x->len && x->pat[j] == '^';
  if(negated)
    j++;
  if(j < x->len && x->pat[j] == ']') {
    put_str(x, negated ? ECMA_ANY : ECMA_NOTHING);
    return j + 1;
  }

  /* First pass: find the end, and whether \S (which cannot be spelled
   * inside a PCRE2 class) occurs, and whether anything else does. */
  bool has_not_ws = false, has_other = false;
  size_t k = j;
  while(k < x->len && x->pat[k] != ']') {
    if(x->pat[k] == '\\' && k + 1 < x->len) {
      if(x->pat[k + 1] == 'S')
        has_not_ws = true;
      else
        has_other = true;
      k += 2;
    } else {
      has_other = true;
      k++;
    }
  }
  if(k >= x->len) {
    fail(x, i, "missing terminating ] for character class");
    return x->len;
  }
  size_t end = k;

  if(has_not_ws && !has_other) {
    /* [\S] is \S; [^\S] is \s */
    put_str(x, negated ? WS_CLASS : NOT_WS_CLASS);
    return end + 1;
  }
  /* [X\S] = (?:[X]|\S); [^X\S] = not X and not \S = (?:(?![X])\s) */
  if(has_not_ws)
    put_str(x, negated ? "(?:(?![" : "(?:[");
  else
    put_str(x, negated ? "[^" : "[");

  /* Ranges next to \s or \S are errors in ECMA's unicode mode, and the
   * expansion would silently turn them into a different range. */
  bool prev_atom = false, prev_set = false, range_open = false;
  k = j;
  while(k < end) {
    mark(x, k);
    char c = x->pat[k];
    if(c == '\\') {
      bool set;
      size_t at = k;
      k = escape(x, k, true, &set);
      if(set && range_open)
        fail(x, at, "\\s or \\S cannot end a range in a character class");
      prev_atom = !set && !range_open;
      prev_set = set;
      range_open = false;
      continue;
    }
    if(c == '-' && k + 1 < end) {
      if(prev_set) {
        fail(x, k, "\\s or \\S cannot start a range in a character class");
        k++;
        continue;
      }
      if(prev_atom) {
        put(x, "-", 1);
        range_open = true;
        prev_atom = false;
        k++;
        continue;
      }
    }
    /* '[' could open a POSIX class and '^' first would negate in PCRE2 */
    if(c == '[' || c == '^')
      put(x, "\\", 1);
    put(x, &c, 1);
    /* a UTF-8 continuation byte is part of the atom already counted */
    if(((unsigned char)c & 0xc0) != 0x80) {
      prev_atom = !range_open;
      range_open = false;
    }
    prev_set = false;
    k++;
  }
  mark(x, end);
  if(has_not_ws)
    put_str(x, negated ? "])" WS_CLASS ")" : "]|" NOT_WS_CLASS ")");
  else
    put(x, "]", 1);
  return end + 1;
}

/* Checks the "(?" at x->pat[i] opens a group ECMA-262 has: (?: (?= (?!
 * (?<= (?<! or (?<name>. PCRE2 would also take inline options like (?i),
 * (?P<name>, comments (?#...) and more, which no ECMA engine accepts. The
 * atomic group (?>...) is left to PCRE2, like possessive quantifiers. */
static bool ecma_group(struct xlate *x, size_t i)
{
  char c = i + 2 < x->len ? x->pat[i + 2] : '\0';
  if(c == ':' || c == '=' || c == '!' || c == '>')
    return true;
  if(c == '<')
    return true; /* lookbehind, or a group name PCRE2 checks */
  if(c > ' ' && c < 0x7f)
    snprintf(x->why_buf, sizeof(x->why_buf), "(?%c is not ECMA-262 group syntax", c);
  else
    snprintf(x->why_buf, sizeof(x->why_buf), "(? is not ECMA-262 group syntax");
  fail(x, i, x->why_buf);
  return false;
}

/* Rewrites x->pat into x->out (see the top of the file). */
static void translate(struct xlate *x)
{
  size_t i = 0;
  put(x, "", 0);
  while(i < x->len && !x->why) {
    mark(x, i);
    char c = x->pat[i];
    if(c == '\\') {
      bool set;
      i = escape(x, i, false, &set);
    } else if(c == '[') {
      i = char_class(x, i);
    } else if(c == '.') {
      put_str(x, ECMA_DOT);
      i++;
    } else if(c == '(' && i + 1 < x->len && x->pat[i + 1] == '?') {
      if(!ecma_group(x, i))
        break;
      put(x, "(?", 2);
      i += 2;
    } else {
      put(x, &c, 1);
      i++;
    }
  }
  mark(x, x->len);
  if(!x->map_passed)
    x->map_end = x->len;
}

/* Where, in the source, the byte at output offset `out_at` came from. */
static size_t source_offset(const char *pattern, size_t len, size_t out_at)
{
  struct xlate x = {.pat = pattern, .len = len, .map_target = out_at};
  translate(&x);
  free(x.out);
  size_t in = x.map_in + (out_at - x.map_out);
  return in < x.map_end ? in : x.map_end;
}

/* Quotes at most REGEX_QUOTE_MAX bytes of the pattern, not splitting a
 * UTF-8 sequence; sets *more when something was cut. */
static int quote_len(const char *pattern, size_t len, bool *more)
{
  *more = len > REGEX_QUOTE_MAX;
  if(!*more)
    return (int)len;
  size_t n = REGEX_QUOTE_MAX;
  while(n > 0 && ((unsigned char)pattern[n] & 0xc0) == 0x80)
    n--;
  return (int)n;
}

static void set_error(char *err, size_t errlen, const char *pattern, size_t len, const char *why,
                      size_t at)
{
  if(!err || !errlen)
    return;
  bool more;
  int q = quote_len(pattern, len, &more);
  snprintf(err, errlen, "invalid regex \"%.*s%s\": %s at offset %zu", q, pattern, more ? "..." : "",
           why, at);
}

struct schema_regex *schema_regex_compile(const char *pattern, char *err, size_t errlen)
{
  struct schema_regex *re = NULL;
  pcre2_compile_context *cctx = NULL;
  struct xlate x = {0};

  if(err && errlen)
    err[0] = '\0';
  if(!pattern) {
    if(err && errlen)
      snprintf(err, errlen, "invalid regex: no pattern given");
    return NULL;
  }
  x.pat = pattern;
  x.len = strlen(pattern);
  x.map_target = SIZE_MAX;
  translate(&x);
  if(x.why) {
    set_error(err, errlen, pattern, x.len, x.why, x.why_at);
    goto out;
  }
  if(x.too_long) {
    set_error(err, errlen, pattern, x.len, "pattern too long (shorten it)", 0);
    goto out;
  }
  if(x.oom)
    goto oom;

  re = calloc(1, sizeof(*re));
  cctx = pcre2_compile_context_create(NULL);
  if(!re || !cctx)
    goto oom;
  pcre2_set_compile_extra_options(cctx, PCRE2_EXTRA_ALT_BSUX);

  int errcode;
  PCRE2_SIZE erroff;
  /* NEVER_UCP keeps a pattern's own (*UCP) from making \d and \w Unicode;
   * NEVER_BACKSLASH_C because \C can split a UTF-8 character. */
  re->code = pcre2_compile((PCRE2_SPTR)x.out, x.out_len,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_NEVER_UCP |
                               PCRE2_NEVER_BACKSLASH_C,
                           &errcode, &erroff, cctx);
  if(!re->code) {
    if(errcode == PCRE2_ERROR_NOMEMORY)
      goto oom;
    char msg[256];
    if(pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg)) < 0)
      snprintf(msg, sizeof(msg), "PCRE2 error %d", errcode);
    set_error(err, errlen, pattern, x.len, msg, source_offset(pattern, x.len, erroff));
    goto fail;
  }
  /* Without JIT (not built in, no executable memory, or turned off with
   * HERALD_REGEX_JIT=0: valgrind cannot see into JIT code and reports its
   * reads as uninitialised) the interpreter gives the same results, slower. */
  const char *jit = getenv("HERALD_REGEX_JIT");
  if(!jit || strcmp(jit, "0") != 0)
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;

  re->mctx = pcre2_match_context_create(NULL);
  re->source = strdup(pattern);
  if(!re->mctx || !re->source)
    goto oom;
  pcre2_set_match_limit(re->mctx, REGEX_MATCH_LIMIT);
  pcre2_set_depth_limit(re->mctx, REGEX_DEPTH_LIMIT);
  goto out;

oom:
  if(err && errlen)
    snprintf(err, errlen, "out of memory compiling regex");
fail:
  schema_regex_free(re);
  re = NULL;
out:
  pcre2_compile_context_free(cctx);
  free(x.out);
  return re;
}

/* Retries a match that overflowed the default 32 KiB JIT stack (a group
 * repeated over a long subject needs ~40 bytes per character) on a private
 * stack of up to REGEX_JIT_STACK_MAX. Only this rare path pays for it. */
static int match_big_stack(const struct schema_regex *re, const char *s, size_t len,
                           pcre2_match_data *md)
{
  int rc = PCRE2_ERROR_NOMEMORY;
  pcre2_match_context *mctx = pcre2_match_context_copy(re->mctx);
  pcre2_jit_stack *stack = pcre2_jit_stack_create(64 * 1024, REGEX_JIT_STACK_MAX, NULL);
  if(mctx && stack) {
    pcre2_jit_stack_assign(mctx, NULL, stack);
    rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, mctx);
  }
  pcre2_jit_stack_free(stack);
  pcre2_match_context_free(mctx);
  return rc;
}

/* Match data is per thread, so threads never share it, and made once per
 * thread rather than per match (a validation runs a dozen matches). One pair
 * is enough because only "did it match" is asked (rc 0 still means a match).
 * It is freed when its thread exits. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;

static void md_destroy(void *md)
{
  pcre2_match_data_free(md);
}

static void md_key_init(void)
{
  md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

static pcre2_match_data *thread_match_data(void)
{
  pthread_once(&md_once, md_key_init);
  if(!md_key_ok)
    return NULL;
  pcre2_match_data *md = pthread_getspecific(md_key);
  if(!md) {
    md = pcre2_match_data_create(1, NULL);
    if(md && pthread_setspecific(md_key, md) != 0) {
      pcre2_match_data_free(md);
      md = NULL;
    }
  }
  return md;
}

int schema_regex_search(const struct schema_regex *re, const char *s, size_t len)
{
  if(!re)
    return -1;
  if(!s) {
    if(len)
      return -1;
    s = "";
  }
  pcre2_match_data *md = thread_match_data();
  if(!md)
    return -1;
  /* pcre2_jit_match skips pcre2_match's checks, the UTF-8 check of the
   * subject among them: the contract (valid UTF-8, as jansson's strings are)
   * stands in for it. Without JIT, pcre2_match checks. */
  int rc = re->jit ? pcre2_jit_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, re->mctx)
                   : pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, re->mctx);
  if(rc == PCRE2_ERROR_JIT_STACKLIMIT)
    rc = match_big_stack(re, s, len, md);
  if(rc >= 0)
    return 1;
  if(rc == PCRE2_ERROR_NOMATCH)
    return 0;
  return -1; /* match/depth/heap limit, no memory, or invalid UTF-8 */
}

const char *schema_regex_source(const struct schema_regex *re)
{
  return re ? re->source : NULL;
}

void schema_regex_free(struct schema_regex *re)
{
  if(!re)
    return;
  pcre2_code_free(re->code);
  pcre2_match_context_free(re->mctx);
  free(re->source);
  free(re);
}
