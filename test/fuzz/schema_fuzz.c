/*
 * schema_fuzz.c - libFuzzer harness for the draft-07 validator (schemas/schema.h).
 *
 * An input is a schema text, a NUL byte, and an instance text. Both are parsed
 * with jansson (any value, NUL allowed in strings); the schema is compiled and
 * the instance validated with and without a result. When there is no NUL, or
 * the instance does not parse, the schema document validates itself, so no
 * input is wasted. $refs to http://localhost:1234/ are served from the
 * official suite's remotes directory when it exists; nothing is fetched.
 *
 * Besides what ASan and UBSan catch, the harness aborts when a promise of
 * schema.h breaks: the verdict does not depend on asking for errors, valid
 * means no errors, at most SCHEMA_MAX_ERRORS errors with `truncated` only
 * when full, every error string terminated and valid UTF-8 (the gateway puts
 * them into JSON) and every message non-empty, the same result twice in a
 * row, and a refused schema always has a message.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schema.h"

#define SUITE_DEFAULT_DIR "/usr/share/json-schema-test-suite"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char remotes[1024];
static struct schema_mapping mapping = {"http://localhost:1234/", remotes};
static struct schema_options options;

/* Prints what broke and aborts, so libFuzzer saves the input. */
static void broken(const char *what, const struct schema_result *res)
{
  fprintf(stderr, "schema_fuzz: invariant broken: %s\n", what);
  for(size_t i = 0; res && i < res->count && i < SCHEMA_MAX_ERRORS; i++)
    fprintf(stderr, "  error %zu: %.*s | %.*s | %.*s\n", i, SCHEMA_PATH_MAX,
            res->errors[i].instance_path, SCHEMA_PATH_MAX, res->errors[i].keyword_path,
            SCHEMA_MESSAGE_MAX, res->errors[i].message);
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  const char *suite = getenv("JSON_SCHEMA_TEST_SUITE");
  struct stat st;
  snprintf(remotes, sizeof(remotes), "%s/remotes", suite && *suite ? suite : SUITE_DEFAULT_DIR);
  if(stat(remotes, &st) == 0 && S_ISDIR(st.st_mode)) {
    options.mappings = &mapping;
    options.mapping_count = 1;
  }
  return 0;
}

/* True when s is well-formed UTF-8 (no overlong forms or surrogates checked:
 * the validator only cuts, it never makes up bytes). */
static bool utf8_ok(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  while(*p) {
    int n = *p < 0x80             ? 0
            : (*p & 0xe0) == 0xc0 ? 1
            : (*p & 0xf0) == 0xe0 ? 2
            : (*p & 0xf8) == 0xf0 ? 3
                                  : -1;
    if(n < 0)
      return false;
    p++;
    for(int i = 0; i < n; i++, p++)
      if((*p & 0xc0) != 0x80)
        return false;
  }
  return true;
}

/* Checks the result of one validation with errors requested. */
static void check_result(bool valid, const struct schema_result *res)
{
  if(res->count > SCHEMA_MAX_ERRORS)
    broken("count > SCHEMA_MAX_ERRORS", NULL);
  if(valid != (res->count == 0))
    broken(valid ? "valid with errors" : "invalid without errors", res);
  if(res->truncated && res->count != SCHEMA_MAX_ERRORS)
    broken("truncated before the error list is full", res);
  for(size_t i = 0; i < res->count; i++) {
    const struct schema_error *e = &res->errors[i];
    if(!memchr(e->instance_path, '\0', sizeof(e->instance_path)) ||
       !memchr(e->keyword_path, '\0', sizeof(e->keyword_path)) ||
       !memchr(e->message, '\0', sizeof(e->message)))
      broken("an error string is not NUL-terminated", NULL);
    if(!e->message[0])
      broken("an empty error message", res);
    if(!utf8_ok(e->instance_path) || !utf8_ok(e->keyword_path) || !utf8_ok(e->message))
      broken("an error string is not valid UTF-8", res);
    if(e->instance_path[0] && e->instance_path[0] != '/')
      broken("instance_path is not a JSON Pointer", res);
  }
}

static bool same_errors(const struct schema_result *a, const struct schema_result *b)
{
  if(a->count != b->count || a->truncated != b->truncated)
    return false;
  for(size_t i = 0; i < a->count; i++)
    if(strcmp(a->errors[i].instance_path, b->errors[i].instance_path) ||
       strcmp(a->errors[i].keyword_path, b->errors[i].keyword_path) ||
       strcmp(a->errors[i].message, b->errors[i].message))
      return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const uint8_t *sep = memchr(data, '\0', size);
  size_t schema_len = sep ? (size_t)(sep - data) : size;
  json_t *doc = json_loadb((const char *)data, schema_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if(!doc)
    return 0;
  json_t *instance = NULL;
  if(sep)
    instance = json_loadb((const char *)sep + 1, size - schema_len - 1,
                          JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  if(!instance)
    instance = json_incref(doc);

  char err[512];
  memset(err, 'x', sizeof(err));
  struct schema *s = schema_compile(doc, &options, err, sizeof(err));
  if(!memchr(err, '\0', sizeof(err)))
    broken("compile error message not NUL-terminated", NULL);
  if(!s) {
    if(!err[0])
      broken("schema refused without a message", NULL);
    goto out;
  }
  /* schema_compile keeps its own reference: the caller's may go first */
  json_decref(doc);
  doc = NULL;

  static struct schema_result res, again;
  memset(&res, 0xa5, sizeof(res));
  bool quiet = schema_validate(s, instance, NULL);
  bool full = schema_validate(s, instance, &res);
  if(quiet != full)
    broken(quiet ? "valid without a result, invalid with one"
                 : "invalid without a result, valid with one",
           &res);
  check_result(full, &res);
  if(schema_validate(s, instance, &again) != full || !same_errors(&res, &again))
    broken("a second validation gave another result", &again);
  if(!schema_json_equal(instance, instance))
    broken("schema_json_equal(x, x) is false", NULL);
  schema_free(s);
out:
  json_decref(instance);
  json_decref(doc);
  return 0;
}
