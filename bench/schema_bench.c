/*
 * schema_bench.c - how fast the draft-07 validator checks one event.
 *
 *   schema_bench SCHEMA.json INSTANCE.json [SECONDS_PER_ROUND=1] [ROUNDS=7]
 *
 * Compiles SCHEMA once, parses INSTANCE once, then runs ROUNDS rounds. Each
 * round times four loops of SECONDS each, interleaved so that a noisy
 * neighbour hurts all of them alike:
 *   validate  schema_validate(s, inst, NULL): the quiet path heraldd takes
 *   collect   schema_validate(s, inst, &res): errors and paths collected
 *   parse     json_loadb of the compact instance text alone
 *   parse+val json_loadb + quiet validate + json_decref
 * Times are the thread's CPU time (the loops neither sleep nor do I/O, so
 * time spent preempted by other processes is left out); the cpu/wall column
 * shows how busy the machine was. Per round and as medians over the rounds
 * it prints validations/s and ns per operation, and a last "summary:" line of
 * key=value medians for scripts (bench/schema_publish.js reads it).
 *
 * The instance must be valid: invalid data stops at the first failure on the
 * quiet path, which would time something else. Bounded: ROUNDS x 4 loops x
 * SECONDS, at most 60 s in all, and every loop also stops after MAX_ITERS.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema.h"

#define MAX_TOTAL_SECONDS 60.0
#define MAX_ROUNDS 1000
#define MAX_INSTANCE_BYTES (1 << 20)
#define CLOCK_EVERY 1024 /* iterations between clock reads */
#define MAX_ITERS 1000000000ULL

enum kind { K_VALIDATE, K_COLLECT, K_PARSE, K_PARSE_VALIDATE, K_COUNT };

static const char *const KIND_NAME[K_COUNT] = {"validate", "collect", "parse", "parse+val"};

struct bench {
  const struct schema *schema;
  json_t *inst;     /* parsed once, for validate and collect */
  const char *text; /* compact instance text, for the parse loops */
  size_t text_len;
  struct schema_result res; /* reused by collect: as big as heraldd's (on its stack) */
};

struct sample {
  unsigned long long iters;
  double cpu_ns, wall_ns;
};

/* ---- schema keyword count ---- */

static const char *const KEYWORDS[] = {
    "$schema",
    "$id",
    "$ref",
    "$comment",
    "title",
    "description",
    "default",
    "readOnly",
    "writeOnly",
    "examples",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "additionalItems",
    "items",
    "maxItems",
    "minItems",
    "uniqueItems",
    "contains",
    "maxProperties",
    "minProperties",
    "required",
    "additionalProperties",
    "definitions",
    "properties",
    "patternProperties",
    "dependencies",
    "propertyNames",
    "const",
    "enum",
    "type",
    "format",
    "contentMediaType",
    "contentEncoding",
    "if",
    "then",
    "else",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
};
#define KEYWORD_COUNT (sizeof KEYWORDS / sizeof KEYWORDS[0])

/* Annotations and containers: they cost nothing at validation time. */
static const char *const PASSIVE[] = {
    "$schema",  "$id",       "$comment", "title",       "description",      "default",
    "readOnly", "writeOnly", "examples", "definitions", "contentMediaType", "contentEncoding"};

/* Keywords whose value is one subschema, a list of them, or a name -> subschema map. */
static const char *const ONE_SUB[] = {"additionalItems",
                                      "items",
                                      "contains",
                                      "additionalProperties",
                                      "propertyNames",
                                      "if",
                                      "then",
                                      "else",
                                      "not"};
static const char *const LIST_SUB[] = {"items", "allOf", "anyOf", "oneOf"};
static const char *const MAP_SUB[] = {"definitions", "properties", "patternProperties",
                                      "dependencies"};

struct kw_count {
  size_t uses;
  size_t used[KEYWORD_COUNT]; /* uses per keyword */
};

static int find_word(const char *const *words, size_t n, const char *key)
{
  for(size_t i = 0; i < n; i++)
    if(!strcmp(words[i], key))
      return (int)i;
  return -1;
}
#define IN(words, key) (find_word(words, sizeof words / sizeof words[0], key) >= 0)

/* Counts keywords in schema s and its subschemas. Only schema positions are
 * walked: property names in "properties" (this schema has one called
 * "items") and the values of enum, const, default or examples are data. */
static void count_keywords(const json_t *s, struct kw_count *kc, int depth)
{
  const char *key;
  json_t *val;
  if(!json_is_object(s) || depth > SCHEMA_MAX_DEPTH)
    return;
  json_object_foreach((json_t *)s, key, val)
  {
    int w = find_word(KEYWORDS, KEYWORD_COUNT, key);
    if(w < 0)
      continue;
    kc->uses++;
    kc->used[w]++;
    if(IN(ONE_SUB, key) && json_is_object(val)) {
      count_keywords(val, kc, depth + 1);
    } else if(IN(LIST_SUB, key) && json_is_array(val)) {
      size_t i;
      json_t *sub;
      json_array_foreach(val, i, sub) count_keywords(sub, kc, depth + 1);
    } else if(IN(MAP_SUB, key) && json_is_object(val)) {
      const char *name;
      json_t *sub;
      json_object_foreach(val, name, sub)
          count_keywords(sub, kc, depth + 1); /* dependencies' arrays are skipped */
    }
  }
}

/* Prints the keyword figures of the schema file at path; returns 0 or -1. */
static int print_keywords(const char *path)
{
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  if(!doc) {
    fprintf(stderr, "schema_bench: %s: line %d: %s\n", path, jerr.line, jerr.text);
    return -1;
  }
  struct kw_count kc = {0};
  count_keywords(doc, &kc, 0);
  json_decref(doc);
  size_t distinct = 0, active = 0;
  for(size_t i = 0; i < KEYWORD_COUNT; i++) {
    if(!kc.used[i])
      continue;
    distinct++;
    if(!IN(PASSIVE, KEYWORDS[i]))
      active++;
  }
  printf("schema: %s: %zu keyword uses, %zu distinct draft-07 keywords (%zu that validate:", path,
         kc.uses, distinct, active);
  for(size_t i = 0; i < KEYWORD_COUNT; i++)
    if(kc.used[i] && !IN(PASSIVE, KEYWORDS[i]))
      printf(" %s", KEYWORDS[i]);
  printf(")\n");
  return 0;
}

/* ---- timing ---- */

static double now_ns(clockid_t clock)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One operation of the given kind; returns false when it failed (a bug or
 * out of memory: the run stops). */
static bool step(struct bench *b, enum kind kind)
{
  json_error_t jerr;
  json_t *doc;
  bool ok;
  switch(kind) {
  case K_VALIDATE: return schema_validate(b->schema, b->inst, NULL);
  case K_COLLECT: return schema_validate(b->schema, b->inst, &b->res);
  case K_PARSE:
    doc = json_loadb(b->text, b->text_len, 0, &jerr);
    json_decref(doc);
    return doc != NULL;
  case K_PARSE_VALIDATE:
    doc = json_loadb(b->text, b->text_len, 0, &jerr);
    ok = doc && schema_validate(b->schema, doc, NULL);
    json_decref(doc);
    return ok;
  case K_COUNT: break;
  }
  return false;
}

/* Runs kind for about seconds of wall time (the clock is read every
 * CLOCK_EVERY iterations). Returns 0, or -1 when an operation failed. */
static int run(struct bench *b, enum kind kind, double seconds, struct sample *out)
{
  double wall0 = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  double deadline = wall0 + seconds * 1e9, wall = wall0;
  unsigned long long n = 0;
  while(wall < deadline && n < MAX_ITERS) {
    for(int i = 0; i < CLOCK_EVERY; i++)
      if(!step(b, kind))
        return -1;
    n += CLOCK_EVERY;
    wall = now_ns(CLOCK_MONOTONIC);
  }
  out->iters = n;
  out->cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  out->wall_ns = wall - wall0;
  return 0;
}

static double ns_per_op(const struct sample *s)
{
  return s->cpu_ns / (double)s->iters;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of xs[0..n) (sorts xs; for even n the mean of the middle two). */
static double median(double *xs, size_t n)
{
  qsort(xs, n, sizeof *xs, cmp_double);
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

/* ---- input ---- */

/* Reads the file at path into a new NUL-terminated buffer; NULL on error. */
static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if(!f) {
    fprintf(stderr, "schema_bench: %s: %s\n", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MAX_INSTANCE_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MAX_INSTANCE_BYTES + 1, f) : 0;
  bool bad = !buf || ferror(f) || n > MAX_INSTANCE_BYTES;
  fclose(f);
  if(bad) {
    fprintf(stderr, "schema_bench: %s: unreadable, or larger than %d bytes\n", path,
            MAX_INSTANCE_BYTES);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Drops the whitespace between JSON tokens in place, so that the parse loops
 * read what a client would send (jansson's own dump would print reals with
 * 17 digits). Returns the new length. */
static size_t minify(char *s, size_t len)
{
  size_t o = 0;
  bool in_str = false, esc = false;
  for(size_t i = 0; i < len; i++) {
    char c = s[i];
    if(in_str) {
      if(esc)
        esc = false;
      else if(c == '\\')
        esc = true;
      else if(c == '"')
        in_str = false;
    } else if(c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      continue;
    } else if(c == '"') {
      in_str = true;
    }
    s[o++] = c;
  }
  s[o] = '\0';
  return o;
}

/* Parses a positive number argument; returns 0 or -1. */
static int parse_arg(const char *s, const char *what, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if(errno || end == s || *end || !(v > 0)) {
    fprintf(stderr, "schema_bench: %s: expected a positive number, got \"%s\"\n", what, s);
    return -1;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv)
{
  int rc = 2;
  double seconds = 1, rounds_d = 7;
  struct schema *schema = NULL;
  json_t *inst = NULL;
  char *text = NULL;
  struct sample *samples = NULL;
  double *xs = NULL;

  if(argc < 3 || argc > 5) {
    fprintf(stderr,
            "usage: schema_bench SCHEMA.json INSTANCE.json [SECONDS_PER_ROUND=1] [ROUNDS=7]\n"
            "  times the validator on one valid instance: quiet validation, with error\n"
            "  collection, JSON parsing alone and parse+validate; prints medians.\n");
    return 2;
  }
  if((argc > 3 && parse_arg(argv[3], "SECONDS_PER_ROUND", &seconds)) ||
     (argc > 4 && parse_arg(argv[4], "ROUNDS", &rounds_d)))
    return 2;
  if(rounds_d != (double)(size_t)rounds_d || rounds_d > MAX_ROUNDS) {
    fprintf(stderr, "schema_bench: ROUNDS: expected a whole number from 1 to %d\n", MAX_ROUNDS);
    return 2;
  }
  size_t rounds = (size_t)rounds_d;
  if(seconds * (double)rounds * K_COUNT > MAX_TOTAL_SECONDS) {
    fprintf(stderr,
            "schema_bench: %zu rounds x %d loops x %g s is more than %.0f s; use fewer or shorter "
            "rounds\n",
            rounds, K_COUNT, seconds, MAX_TOTAL_SECONDS);
    return 2;
  }

  char err[512];
  struct schema_options opts = {0};
  schema = schema_compile_file(argv[1], &opts, err, sizeof err);
  if(!schema) {
    fprintf(stderr, "schema_bench: %s: %s\n", argv[1], err);
    goto out;
  }
  if(print_keywords(argv[1]))
    goto out;

  size_t file_len = 0;
  if(!(text = read_file(argv[2], &file_len)))
    goto out;
  size_t text_len = minify(text, file_len);
  json_error_t jerr;
  if(!(inst = json_loadb(text, text_len, 0, &jerr))) {
    fprintf(stderr, "schema_bench: %s: not JSON: line %d column %d: %s\n", argv[2], jerr.line,
            jerr.column, jerr.text);
    goto out;
  }
  struct bench b = {.schema = schema, .inst = inst, .text = text, .text_len = text_len};
  if(!schema_validate(schema, inst, &b.res)) {
    fprintf(stderr,
            "schema_bench: %s is not valid against %s (first error: %s: %s); the benchmark times "
            "valid data\n",
            argv[2], argv[1], b.res.count ? b.res.errors[0].instance_path : "?",
            b.res.count ? b.res.errors[0].message : "?");
    rc = 1;
    goto out;
  }
  printf("instance: %s: %zu bytes compact (%zu as the file)\n", argv[2], text_len, file_len);
  printf("%zu rounds x %d loops x %g s; times are thread CPU time\n\n", rounds, K_COUNT, seconds);

  samples = calloc(rounds * K_COUNT, sizeof *samples);
  xs = calloc(rounds, sizeof *xs);
  if(!samples || !xs) {
    fprintf(stderr, "schema_bench: out of memory\n");
    goto out;
  }
  for(size_t r = 0; r < rounds; r++) {
    struct sample *row = &samples[r * K_COUNT];
    for(int k = 0; k < K_COUNT; k++) {
      if(run(&b, (enum kind)k, seconds, &row[k])) {
        fprintf(stderr, "schema_bench: %s failed during the run (out of memory?)\n", KIND_NAME[k]);
        goto out;
      }
    }
    double wall = 0, cpu = 0;
    for(int k = 0; k < K_COUNT; k++) {
      wall += row[k].wall_ns;
      cpu += row[k].cpu_ns;
    }
    printf("round %zu: %.0f validations/s, validate %.0f ns, collect %.0f ns, parse %.0f ns, "
           "parse+val %.0f ns (cpu/wall %.2f)\n",
           r + 1, 1e9 / ns_per_op(&row[K_VALIDATE]), ns_per_op(&row[K_VALIDATE]),
           ns_per_op(&row[K_COLLECT]), ns_per_op(&row[K_PARSE]), ns_per_op(&row[K_PARSE_VALIDATE]),
           cpu / wall);
  }

  double med[K_COUNT];
  for(int k = 0; k < K_COUNT; k++) {
    for(size_t r = 0; r < rounds; r++)
      xs[r] = ns_per_op(&samples[r * K_COUNT + k]);
    med[k] = median(xs, rounds);
  }
  for(size_t r = 0; r < rounds; r++)
    xs[r] = ns_per_op(&samples[r * K_COUNT + K_VALIDATE]) /
            ns_per_op(&samples[r * K_COUNT + K_PARSE_VALIDATE]);
  double share = median(xs, rounds);
  printf("\nmedian of %zu rounds:\n", rounds);
  printf("  validate (quiet, as heraldd):  %8.0f ns  %10.0f validations/s\n", med[K_VALIDATE],
         1e9 / med[K_VALIDATE]);
  printf("  validate collecting errors:    %8.0f ns  (%.2fx quiet)\n", med[K_COLLECT],
         med[K_COLLECT] / med[K_VALIDATE]);
  printf("  json_loadb alone:              %8.0f ns\n", med[K_PARSE]);
  printf("  json_loadb + validate + free:  %8.0f ns  (validation is %.0f%% of it)\n",
         med[K_PARSE_VALIDATE], share * 100);
  printf("summary: validate_ns=%.1f collect_ns=%.1f parse_ns=%.1f parse_validate_ns=%.1f "
         "validations_per_s=%.0f "
         "compact_bytes=%zu rounds=%zu\n",
         med[K_VALIDATE], med[K_COLLECT], med[K_PARSE], med[K_PARSE_VALIDATE],
         1e9 / med[K_VALIDATE], text_len, rounds);
  rc = 0;
out:
  free(xs);
  free(samples);
  json_decref(inst);
  free(text);
  schema_free(schema);
  return rc;
}
