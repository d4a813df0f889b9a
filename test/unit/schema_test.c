/* The draft-07 validator's public API (schemas/schema.h): the error list a
 * client gets back, the cap on it, what refuses to compile and why, $refs to
 * files and mapped directories (never the network), numbers beyond double
 * precision, recursion that must end, and many threads sharing one compiled
 * schema. The official suite's cases run in test/conformance; these are the
 * promises it does not check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "schema.h"

/* Debian/Ubuntu package json-schema-test-suite; JSON_SCHEMA_TEST_SUITE
 * points elsewhere (e.g. a git checkout of the suite). */
#define SUITE_DEFAULT_DIR "/usr/share/json-schema-test-suite"
#define META_ID "http://json-schema.org/draft-07/schema#"
/* How long a validation that must end may take in a watched child (generous
 * for valgrind; the cases here take microseconds natively). */
#define WATCHDOG_SECONDS 10

static const char *suite_dir(void)
{
  const char *dir = getenv("JSON_SCHEMA_TEST_SUITE");
  return dir && *dir ? dir : SUITE_DEFAULT_DIR;
}

/* Parses JSON text (any value), failing the test on a syntax error. */
static json_t *parse(const char *text)
{
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  if(!v)
    fail_msg("test JSON does not parse: %s: %s", text, jerr.text);
  return v;
}

/* Compiles schema text that must compile. */
static struct schema *compile_ok(const char *text, const struct schema_options *opts)
{
  char err[512] = "";
  json_t *doc = parse(text);
  struct schema *s = schema_compile(doc, opts, err, sizeof(err));
  json_decref(doc);
  if(!s)
    fail_msg("schema %s does not compile: %s", text, err);
  return s;
}

/* Compiles schema text that must not compile; the message goes to err. */
static void compile_fails(const char *text, char *err, size_t errlen)
{
  json_t *doc = parse(text);
  struct schema *s = schema_compile(doc, NULL, err, errlen);
  json_decref(doc);
  if(s) {
    schema_free(s);
    fail_msg("schema %s compiled; it must be refused", text);
  }
  if(!err[0])
    fail_msg("schema %s was refused without a message", text);
}

/* Validates instance text with and without a result. Returns NULL when both
 * agree with each other and with `want`, else what went wrong (in problem). */
static const char *try_check(const struct schema *s, const char *instance, bool want,
                             struct schema_result *res, char *problem, size_t len)
{
  json_t *inst = parse(instance);
  bool quiet = schema_validate(s, inst, NULL);
  bool full = schema_validate(s, inst, res);
  json_decref(inst);
  if(quiet != full)
    snprintf(problem, len, "%s: verdict %d without a result, %d with one", instance, quiet, full);
  else if(full != want)
    snprintf(problem, len, "%s: valid = %d, want %d (first error: %s)", instance, full, want,
             res->count ? res->errors[0].message : "none");
  else if(full != (res->count == 0))
    snprintf(problem, len, "%s: valid = %d with %zu errors", instance, full, res->count);
  else
    return NULL;
  return problem;
}

/* try_check that fails the test. Returns the error count. */
static size_t check(const struct schema *s, const char *instance, bool want,
                    struct schema_result *res)
{
  char problem[1024];
  if(try_check(s, instance, want, res, problem, sizeof(problem)))
    fail_msg("%s", problem);
  return res->count;
}

/* One-shot: compile schema text, check one instance, free (also on failure,
 * so that valgrind sees only the assertion). */
static void expect(const char *schema, const char *instance, bool want)
{
  struct schema_result res;
  char problem[1024];
  struct schema *s = compile_ok(schema, NULL);
  const char *bad = try_check(s, instance, want, &res, problem, sizeof(problem));
  schema_free(s);
  if(bad)
    fail_msg("%s | %s", schema, bad);
}

/* The error of res at instance_path and keyword_path, or NULL. */
static const struct schema_error *find_error(const struct schema_result *res,
                                             const char *instance_path, const char *keyword_path)
{
  for(size_t i = 0; i < res->count; i++)
    if(!strcmp(res->errors[i].instance_path, instance_path) &&
       !strcmp(res->errors[i].keyword_path, keyword_path))
      return &res->errors[i];
  return NULL;
}

static void dump_errors(const struct schema_result *res)
{
  for(size_t i = 0; i < res->count; i++)
    print_message("  error %zu: instance_path \"%s\" keyword_path \"%s\": %s\n", i,
                  res->errors[i].instance_path, res->errors[i].keyword_path,
                  res->errors[i].message);
}

/* ---- the error list ---- */

static void test_error_list(void **state)
{
  (void)state;
  struct schema *s =
      compile_ok("{\"type\":\"object\",\"required\":[\"id\"],\"properties\":{\"items\":"
                 "{\"type\":\"array\",\"items\":{\"properties\":{\"qty\":"
                 "{\"type\":\"integer\",\"minimum\":1}}}}}}",
                 NULL);
  struct schema_result res;
  size_t n = check(s, "{\"items\":[{\"qty\":1},{\"qty\":0},{\"qty\":2}]}", false, &res);
  dump_errors(&res);
  assert_int_equal(n, 2);
  assert_false(res.truncated);

  const struct schema_error *e =
      find_error(&res, "/items/1/qty", "/properties/items/items/properties/qty/minimum");
  assert_non_null(e);
  assert_non_null(strstr(e->message, "0"));
  assert_non_null(strstr(e->message, "1"));

  e = find_error(&res, "", "/required");
  assert_non_null(e);
  assert_non_null(strstr(e->message, "\"id\""));

  /* a valid instance: no errors, and a result reused from a failure is reset */
  assert_int_equal(check(s, "{\"id\":7,\"items\":[{\"qty\":1}]}", true, &res), 0);
  assert_false(res.truncated);
  schema_free(s);
}

/* Every message names what is wrong; paths of the root are "". */
static void test_messages_name_the_value(void **state)
{
  (void)state;
  struct schema_result res;
  struct schema *s =
      compile_ok("{\"type\":\"object\",\"maxProperties\":1,\"additionalProperties\":false,"
                 "\"properties\":{\"n\":{\"type\":\"string\",\"maxLength\":2}}}",
                 NULL);
  check(s, "{\"n\":\"abcdef\",\"extra\":1}", false, &res);
  dump_errors(&res);
  assert_int_equal(res.count, 3);
  const struct schema_error *e = find_error(&res, "", "/maxProperties");
  assert_non_null(e);
  assert_non_null(strstr(e->message, "2"));
  e = find_error(&res, "/n", "/properties/n/maxLength");
  assert_non_null(e);
  assert_non_null(strstr(e->message, "6"));
  /* additionalProperties reports at the property, and names it */
  e = find_error(&res, "/extra", "/additionalProperties");
  assert_non_null(e);
  assert_non_null(strstr(e->message, "\"extra\""));
  for(size_t i = 0; i < res.count; i++)
    assert_true(res.errors[i].message[0] != '\0');

  check(s, "[1]", false, &res);
  assert_int_equal(res.count, 1);
  assert_string_equal(res.errors[0].instance_path, "");
  assert_string_equal(res.errors[0].keyword_path, "/type");
  assert_non_null(strstr(res.errors[0].message, "array"));
  schema_free(s);
}

static void test_pointer_escaping(void **state)
{
  (void)state;
  struct schema_result res;
  struct schema *s =
      compile_ok("{\"properties\":{\"a/b\":{\"properties\":{\"c~d\":{\"type\":\"string\"}}},"
                 "\"~1\":{\"items\":{\"type\":\"string\"}}},"
                 "\"patternProperties\":{\"^x/\":{\"type\":\"integer\"}}}",
                 NULL);
  check(s, "{\"a/b\":{\"c~d\":1},\"~1\":[\"s\",2],\"x/~y\":\"no\"}", false, &res);
  dump_errors(&res);
  assert_int_equal(res.count, 3);
  assert_non_null(find_error(&res, "/a~1b/c~0d", "/properties/a~1b/properties/c~0d/type"));
  assert_non_null(find_error(&res, "/~01/1", "/properties/~01/items/type"));
  assert_non_null(find_error(&res, "/x~1~0y", "/patternProperties/^x~1/type"));
  schema_free(s);
}

/* ---- the cap on errors ---- */

/* An array of n integers, each failing {"type":"string"} once. */
static json_t *ints(size_t n)
{
  json_t *a = json_array();
  assert_non_null(a);
  for(size_t i = 0; i < n; i++)
    assert_int_equal(json_array_append_new(a, json_integer((json_int_t)i)), 0);
  return a;
}

static void test_error_cap(void **state)
{
  (void)state;
  struct schema *s = compile_ok("{\"items\":{\"type\":\"string\"}}", NULL);
  struct schema_result res;
  const size_t sizes[] = {SCHEMA_MAX_ERRORS - 1, SCHEMA_MAX_ERRORS, SCHEMA_MAX_ERRORS + 1, 25};
  for(size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    json_t *a = ints(sizes[k]);
    assert_false(schema_validate(s, a, &res));
    assert_false(schema_validate(s, a, NULL));
    size_t want = sizes[k] < SCHEMA_MAX_ERRORS ? sizes[k] : SCHEMA_MAX_ERRORS;
    assert_int_equal(res.count, want);
    assert_int_equal(res.truncated, sizes[k] > SCHEMA_MAX_ERRORS);
    /* the first errors in instance order */
    for(size_t i = 0; i < res.count; i++) {
      char path[32];
      snprintf(path, sizeof(path), "/%zu", i);
      assert_string_equal(res.errors[i].instance_path, path);
      assert_string_equal(res.errors[i].keyword_path, "/items/type");
    }
    json_decref(a);
  }
  schema_free(s);
}

/* ---- the verdict does not depend on asking for errors ---- */

struct verdict_case {
  const char *schema, *instance;
  bool valid;
};

static const struct verdict_case verdict_cases[] = {
    {"{\"not\":{\"type\":\"string\"}}", "\"s\"", false},
    {"{\"not\":{\"type\":\"string\"}}", "1", true},
    {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "3", false},
    {"{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}", "1", true},
    {"{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":2}]}", "1", false},
    {"{\"if\":{\"minimum\":10},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}", "11",
     false},
    {"{\"if\":{\"minimum\":10},\"then\":{\"multipleOf\":2},\"else\":{\"multipleOf\":3}}", "9",
     true},
    {"{\"dependencies\":{\"a\":[\"b\"],\"c\":{\"required\":[\"d\"]}}}", "{\"a\":1,\"c\":1}", false},
    {"{\"dependencies\":{\"a\":[\"b\"],\"c\":{\"required\":[\"d\"]}}}", "{\"a\":1,\"b\":1}", true},
    {"{\"propertyNames\":{\"maxLength\":2}}", "{\"abc\":1}", false},
    {"{\"contains\":{\"const\":3}}", "[1,2]", false},
    {"{\"contains\":{\"const\":3}}", "[1,3.0]", true},
    {"{\"additionalProperties\":false,\"propertyNames\":{\"pattern\":\"^a\"}}", "{\"b\":1}", false},
    {"{\"items\":[{\"type\":\"string\"}],\"additionalItems\":false}", "[\"a\",1]", false},
    {"{\"enum\":[[1,{\"a\":null}]]}", "[1.0,{\"a\":null}]", true},
    {"{\"allOf\":[{\"$ref\":\"#/definitions/"
     "x\"},{\"maximum\":3}],\"definitions\":{\"x\":{\"minimum\":1}}}",
     "5", false},
    {"false", "null", false},
    {"true", "null", true},
    {"{\"properties\":{\"a\":{\"$ref\":\"#\"}},\"required\":[\"b\"]}", "{\"a\":{\"a\":{}},\"b\":1}",
     false},
    {"{\"properties\":{\"a\":{\"$ref\":\"#\"}},\"required\":[\"b\"]}",
     "{\"a\":{\"a\":{\"b\":1},\"b\":1},\"b\":1}", true},
};

static void test_verdict_without_result(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(verdict_cases) / sizeof(verdict_cases[0]); i++) {
    print_message("  %s | %s\n", verdict_cases[i].schema, verdict_cases[i].instance);
    expect(verdict_cases[i].schema, verdict_cases[i].instance, verdict_cases[i].valid);
  }
}

/* ---- what does not compile ---- */

static void test_invalid_schemas(void **state)
{
  (void)state;
  static const struct {
    const char *schema, *says;
  } cases[] = {
      {"{\"type\":5}", "type"},
      {"{\"type\":\"strin\"}", "type"},
      {"{\"minLength\":-1}", "minLength"},
      {"{\"maxItems\":1.5}", "maxItems"},
      {"{\"pattern\":\"a(\"}", "pattern"},
      {"{\"patternProperties\":{\"a(\":{}}}", "a("},
      {"{\"properties\":{\"x\":{\"pattern\":\"[z-a]\"}}}", "pattern"},
      {"{\"$ref\":\"#/definitions/missing\"}", "#/definitions/missing"},
      {"{\"properties\":{\"a\":{\"$ref\":\"#/properties/b\"}}}", "#/properties/b"},
      {"{\"$ref\":\"#nowhere\"}", "#nowhere"},
      {"{\"$ref\":\"http://example.com/x.json\"}", "no local directory serves it"},
      {"{\"$ref\":\"https://example.com/x.json#/definitions/a\"}", "https://example.com/x.json"},
      {"{\"items\":{\"$ref\":\"other.json\"}}", "no local directory serves it"},
      {"5", "object or a boolean"},
      {"\"schema\"", "object or a boolean"},
      {"[]", "object or a boolean"},
      {"null", "object or a boolean"},
      {"{\"properties\":5}", "properties"},
      {"{\"allOf\":[]}", "allOf"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512] = "";
    compile_fails(cases[i].schema, err, sizeof(err));
    print_message("  %s -> %s\n", cases[i].schema, err);
    if(!strstr(err, cases[i].says))
      fail_msg("compiling %s: message \"%s\" does not mention \"%s\"", cases[i].schema, err,
               cases[i].says);
  }
  /* remote documents are never fetched, whatever the scheme */
  char err[512] = "";
  compile_fails("{\"$ref\":\"http://example.com/x.json\"}", err, sizeof(err));
  assert_non_null(strstr(err, "http://example.com/x.json"));
  assert_non_null(strstr(err, "never fetched"));

  /* a short buffer gets a cut, terminated message; no buffer is allowed */
  char small[12];
  memset(small, 'x', sizeof(small));
  compile_fails("{\"$ref\":\"http://example.com/x.json\"}", small, sizeof(small));
  assert_true(memchr(small, '\0', sizeof(small)) != NULL);
  json_t *doc = parse("{\"type\":5}");
  assert_null(schema_compile(doc, NULL, NULL, 0));
  json_decref(doc);
}

/* A $ref chain that comes back to where it started with no keyword in
 * between can never decide: check_ref_cycles refuses it at compile time. */
static void test_ref_loops_do_not_compile(void **state)
{
  (void)state;
  static const char *const loops[] = {
      "{\"$ref\":\"#\"}",
      "{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"$ref\":\"#/definitions/"
      "a\"}},"
      "\"$ref\":\"#/definitions/a\"}",
      "{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/a\"}},\"properties\":{\"x\":{\"$ref\":\"#/"
      "definitions/a\"}}}",
      "{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"$ref\":\"#/definitions/c\"},"
      "\"c\":{\"$ref\":\"#/definitions/b\"}},\"items\":{\"$ref\":\"#/definitions/a\"}}",
  };
  for(size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
    char err[512] = "";
    compile_fails(loops[i], err, sizeof(err));
    print_message("  %s -> %s\n", loops[i], err);
    assert_non_null(strstr(err, "loops back onto itself"));
  }
}

/* ---- recursion that must end ---- */

/* Runs `schema` on `instance` (a built value, borrowed) in a child process
 * under a watchdog, so that a hang or a crash fails the test instead of
 * stopping the suite. Returns WATCH_VALID, WATCH_INVALID (with errors),
 * WATCH_REFUSED (did not compile), WATCH_DISAGREE (verdicts with and without
 * a result differ), WATCH_HUNG or WATCH_CRASHED. */
enum { WATCH_INVALID, WATCH_VALID, WATCH_REFUSED, WATCH_DISAGREE, WATCH_HUNG, WATCH_CRASHED };

static int validate_watched(const char *schema, const json_t *instance)
{
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if(pid == 0) {
    alarm(WATCHDOG_SECONDS);
    char err[512];
    json_t *doc = json_loads(schema, 0, NULL);
    struct schema *s = doc ? schema_compile(doc, NULL, err, sizeof(err)) : NULL;
    json_decref(doc);
    if(!s)
      _exit(WATCH_REFUSED);
    struct schema_result res;
    bool quiet = schema_validate(s, instance, NULL);
    bool full = schema_validate(s, instance, &res);
    schema_free(s);
    if(quiet != full || full != (res.count == 0))
      _exit(WATCH_DISAGREE);
    _exit(full ? WATCH_VALID : WATCH_INVALID);
  }
  int status;
  while(waitpid(pid, &status, 0) < 0)
    assert_int_equal(errno, EINTR);
  if(WIFSIGNALED(status)) {
    bool hung = WTERMSIG(status) == SIGALRM;
    print_message("  %s: %s (signal %d)\n", schema,
                  hung ? "did not end within the watchdog" : "crashed", WTERMSIG(status));
    return hung ? WATCH_HUNG : WATCH_CRASHED;
  }
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/* {"children":[{"children":[...]}]} nested depth times. */
static json_t *tree(int depth)
{
  json_t *node = json_object();
  assert_non_null(node);
  for(int i = 0; i < depth; i++) {
    json_t *parent = json_object();
    json_t *children = json_array();
    assert_non_null(parent);
    assert_non_null(children);
    assert_int_equal(json_array_append_new(children, node), 0);
    assert_int_equal(json_object_set_new(parent, "children", children), 0);
    node = parent;
  }
  return node;
}

/* [[[...]]] nested depth times around `inner` (stolen). */
static json_t *nested_arrays(int depth, json_t *inner)
{
  json_t *v = inner;
  for(int i = 0; i < depth; i++) {
    json_t *a = json_array();
    assert_non_null(a);
    assert_int_equal(json_array_append_new(a, v), 0);
    v = a;
  }
  return v;
}

#define TREE_SCHEMA                                                                                \
  "{\"type\":\"object\",\"properties\":{\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#"  \
  "\"}}}}"

static void test_recursive_tree(void **state)
{
  (void)state;
  struct schema *s = compile_ok(TREE_SCHEMA, NULL);
  struct schema_result res;

  json_t *t = tree(50);
  assert_true(schema_validate(s, t, NULL));
  assert_true(schema_validate(s, t, &res));
  assert_int_equal(res.count, 0);
  json_decref(t);

  /* a bad leaf deep down is found and located */
  t = tree(20);
  json_t *n = t;
  for(int i = 0; i < 19; i++)
    n = json_array_get(json_object_get(n, "children"), 0);
  assert_int_equal(json_object_set_new(n, "children", json_string("no")), 0);
  assert_false(schema_validate(s, t, NULL));
  assert_false(schema_validate(s, t, &res));
  assert_int_equal(res.count, 1);
  char want[SCHEMA_PATH_MAX] = "";
  for(int i = 0; i < 19; i++)
    strcat(want, "/children/0");
  strcat(want, "/children");
  assert_string_equal(res.errors[0].instance_path, want);
  assert_string_equal(res.errors[0].keyword_path, "/properties/children/type");
  json_decref(t);

  /* 50 levels down the path no longer fits: it is cut, and says so */
  t = tree(50);
  n = t;
  for(int i = 0; i < 49; i++)
    n = json_array_get(json_object_get(n, "children"), 0);
  assert_int_equal(json_object_set_new(n, "children", json_integer(1)), 0);
  assert_false(schema_validate(s, t, &res));
  assert_int_equal(res.count, 1);
  size_t len = strlen(res.errors[0].instance_path);
  assert_true(len < SCHEMA_PATH_MAX);
  assert_true(len > 4);
  assert_string_equal(res.errors[0].instance_path + len - 4, "/...");
  assert_memory_equal(res.errors[0].instance_path, want, 100);
  json_decref(t);
  schema_free(s);
}

/* An instance nested deeper than SCHEMA_MAX_DEPTH cannot be validated by a
 * schema that follows it all the way down: an error, not a crash. */
static void test_too_deep_instance(void **state)
{
  (void)state;
  struct schema *s = compile_ok(TREE_SCHEMA, NULL);
  struct schema_result res;
  json_t *t = tree(SCHEMA_MAX_DEPTH + 10);
  assert_false(schema_validate(s, t, NULL));
  assert_false(schema_validate(s, t, &res));
  assert_int_equal(res.count, 1);
  assert_false(res.truncated);
  print_message("  %s: %s\n", res.errors[0].instance_path, res.errors[0].message);
  assert_non_null(strstr(res.errors[0].message, "deeper"));
  json_decref(t);
  schema_free(s);

  /* 20,000 nested arrays against a schema that descends: an error */
  json_t *deep = nested_arrays(20000, json_integer(1));
  s = compile_ok("{\"items\":{\"$ref\":\"#\"}}", NULL);
  assert_false(schema_validate(s, deep, &res));
  assert_int_equal(res.count, 1);
  assert_false(schema_validate(s, deep, NULL));
  schema_free(s);
  /* ...and against one that does not look inside: valid */
  s = compile_ok("{\"type\":\"array\",\"minItems\":1}", NULL);
  assert_true(schema_validate(s, deep, &res));
  assert_int_equal(res.count, 0);
  schema_free(s);
  json_decref(deep);
}

/* {"allOf":[{"$ref":"#"}]} has a keyword between the $ref and itself, so it
 * compiles; validating anything with it must end with an error. */
static void test_self_reference_ends(void **state)
{
  (void)state;
  static const char *const schemas[] = {
      "{\"allOf\":[{\"$ref\":\"#\"}]}",
      "{\"anyOf\":[{\"$ref\":\"#\"}]}",
      "{\"allOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}",
      "{\"properties\":{\"a\":{\"$ref\":\"#\"}},\"allOf\":[{\"$ref\":\"#/properties/a\"}]}",
      "{\"definitions\":{\"a\":{\"allOf\":[{\"$ref\":\"#/definitions/b\"}]},\"b\":{\"$ref\":\"#/"
      "definitions/a\"}},"
      "\"$ref\":\"#/definitions/a\"}",
  };
  json_t *instances[] = {json_integer(1), json_string("s"), json_object(), json_null()};
  for(size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++)
    for(size_t j = 0; j < sizeof(instances) / sizeof(instances[0]); j++) {
      int verdict = validate_watched(schemas[i], instances[j]);
      if(verdict != WATCH_INVALID && verdict != WATCH_REFUSED)
        fail_msg("%s: must end invalid (or refuse to compile), got %d", schemas[i], verdict);
    }
  for(size_t j = 0; j < sizeof(instances) / sizeof(instances[0]); j++)
    json_decref(instances[j]);

  /* in process too, for valgrind and ASan to see */
  struct schema_result res;
  struct schema *s = compile_ok("{\"allOf\":[{\"$ref\":\"#\"}]}", NULL);
  check(s, "{}", false, &res);
  assert_int_equal(res.count, 1);
  assert_non_null(strstr(res.errors[0].message, "deeper"));
  schema_free(s);
}

/* ---- numbers ---- */

static void test_huge_numbers(void **state)
{
  (void)state;
  expect("{\"multipleOf\":0.123456789}", "1e308", false);
  expect("{\"multipleOf\":0.123456789}", "-1e308", false);
  expect("{\"multipleOf\":1e-308}", "1e308", false);
  expect("{\"multipleOf\":0.5}", "4.5", true);
  expect("{\"multipleOf\":0.01}", "0.07", true); /* not exact in binary */
  expect("{\"multipleOf\":3}", "9223372036854775806", true);
  expect("{\"multipleOf\":3}", "9223372036854775807", false);
  expect("{\"multipleOf\":2}", "-9223372036854775807", false);
  /* integer against integer compares exactly, past double precision */
  expect("{\"maximum\":9223372036854775806}", "9223372036854775807", false);
  expect("{\"maximum\":9223372036854775806}", "9223372036854775806", true);
  expect("{\"exclusiveMaximum\":9223372036854775807}", "9223372036854775806", true);
  expect("{\"minimum\":-9223372036854775807}", "-9223372036854775808", false);
  expect("{\"exclusiveMinimum\":-9223372036854775808}", "-9223372036854775807", true);
  expect("{\"maximum\":1e308}", "9223372036854775807", true);
  expect("{\"minimum\":1e308}", "1.7976931348623157e308", true);
  /* 1.0 is an integer; 1.5 is not; big reals are integers too */
  expect("{\"type\":\"integer\"}", "1.0", true);
  expect("{\"type\":\"integer\"}", "-0.0", true);
  expect("{\"type\":\"integer\"}", "1.5", false);
  expect("{\"type\":\"integer\"}", "1e300", true);
  expect("{\"type\":\"number\"}", "9223372036854775807", true);
  expect("{\"const\":1}", "1.0", true);
  expect("{\"enum\":[2.0]}", "2", true);
}

static void test_unique_items(void **state)
{
  (void)state;
  expect("{\"uniqueItems\":true}", "[1, 1.0]", false);
  expect("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1.0}]", false);
  expect("{\"uniqueItems\":true}", "[[1,{\"x\":[]}],[1.0,{\"x\":[]}]]", false);
  expect("{\"uniqueItems\":true}", "[{\"a\":1},{\"a\":1,\"b\":null}]", true);
  expect("{\"uniqueItems\":true}", "[0, false, null, \"\", [], {}]", true);
  expect("{\"uniqueItems\":false}", "[1, 1]", true);

  struct schema *s = compile_ok("{\"uniqueItems\":true}", NULL);
  struct schema_result res;
  json_t *a = ints(1000);
  assert_true(schema_validate(s, a, &res));
  assert_int_equal(res.count, 0);
  /* a duplicate at the end, as a real: found, and its indexes given */
  assert_int_equal(json_array_append_new(a, json_real(998.0)), 0);
  assert_false(schema_validate(s, a, NULL));
  assert_false(schema_validate(s, a, &res));
  assert_int_equal(res.count, 1);
  assert_string_equal(res.errors[0].keyword_path, "/uniqueItems");
  assert_non_null(strstr(res.errors[0].message, "998"));
  assert_non_null(strstr(res.errors[0].message, "1000"));
  json_decref(a);

  /* many objects, equal up to key order and 1 == 1.0 */
  a = json_array();
  for(int i = 0; i < 100; i++)
    json_array_append_new(a, json_pack("{s:i, s:[i, s]}", "k", i, "v", i, "x"));
  assert_true(schema_validate(s, a, NULL));
  json_array_append_new(a, json_pack("{s:[f, s], s:f}", "v", 42.0, "x", "k", 42.0));
  assert_false(schema_validate(s, a, NULL));
  json_decref(a);
  schema_free(s);
}

/* ---- strings ---- */

static void test_length_counts_code_points(void **state)
{
  (void)state;
  /* U+1F600 (4 bytes) and U+00E9 (2 bytes): two characters */
  expect("{\"maxLength\":2}", "\"\xf0\x9f\x98\x80\xc3\xa9\"", true);
  expect("{\"minLength\":2}", "\"\xf0\x9f\x98\x80\xc3\xa9\"", true);
  expect("{\"maxLength\":1}", "\"\xf0\x9f\x98\x80\xc3\xa9\"", false);
  expect("{\"minLength\":3}", "\"\xf0\x9f\x98\x80\xc3\xa9\"", false);
  /* an escaped surrogate pair is one character too */
  expect("{\"maxLength\":1}", "\"\\ud83d\\ude00\"", true);
  expect("{\"maxLength\":0}", "\"\"", true);

  struct schema *s = compile_ok("{\"maxLength\":1}", NULL);
  struct schema_result res;
  check(s, "\"\xf0\x9f\x98\x80\xc3\xa9\"", false, &res);
  assert_non_null(strstr(res.errors[0].message, "2"));
  schema_free(s);
}

/* ---- files and mappings ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_true(fputs(text, f) >= 0);
  assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
}

/* Compiles dir/name, which must fail; the message goes to err. */
static void compile_file_fails(const char *dir, const char *name, char *err, size_t errlen)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  err[0] = '\0';
  struct schema *s = schema_compile_file(path, NULL, err, errlen);
  if(s) {
    schema_free(s);
    fail_msg("%s compiled; it must be refused", path);
  }
  print_message("  %s -> %s\n", name, err);
  assert_true(err[0] != '\0');
}

static void test_compile_file(void **state)
{
  (void)state;
  char dir[] = "/tmp/schema_test.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char sub[600];
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  assert_int_equal(mkdir(sub, 0700), 0);

  write_file(dir, "a.json", "{\"$ref\":\"b.json#/definitions/x\"}");
  write_file(dir, "b.json", "{\"definitions\":{\"x\":{\"type\":\"string\"}}}");
  write_file(dir, "outside.json", "{\"type\":\"string\"}");
  write_file(dir, "sub/in.json", "{\"items\":{\"$ref\":\"../b.json#/definitions/x\"}}");
  write_file(dir, "sub/up.json", "{\"$ref\":\"../outside.json\"}");
  write_file(dir, "sub/escaped.json", "{\"$ref\":\"%2e%2e/outside.json\"}");
  write_file(dir, "sub/absolute.json", "{\"$ref\":\"file:///etc/hostname\"}");
  write_file(dir, "c.json", "{\"$ref\":\"sub/d.json\"}");
  write_file(dir, "sub/d.json", "{\"maximum\":3}");
  write_file(dir, "dangling.json", "{\"$ref\":\"missing.json\"}");
  write_file(dir, "broken.json", "{\"type\":");

  char path[600], err[512];
  snprintf(path, sizeof(path), "%s/a.json", dir);
  struct schema *s = schema_compile_file(path, NULL, err, sizeof(err));
  if(!s)
    fail_msg("%s: %s", path, err);
  struct schema_result res;
  check(s, "\"s\"", true, &res);
  check(s, "1", false, &res);
  assert_non_null(strstr(res.errors[0].keyword_path, "b.json#/definitions/x/type"));
  schema_free(s);

  /* a relative $ref into a subdirectory stays in the tree */
  snprintf(path, sizeof(path), "%s/c.json", dir);
  s = schema_compile_file(path, NULL, err, sizeof(err));
  if(!s)
    fail_msg("%s: %s", path, err);
  check(s, "3", true, &res);
  check(s, "4", false, &res);
  schema_free(s);

  /* the tree of a file is its own directory: "../" leaves it */
  compile_file_fails(dir, "sub/in.json", err, sizeof(err));
  compile_file_fails(dir, "sub/up.json", err, sizeof(err));
  assert_non_null(strstr(err, "outside.json"));
  compile_file_fails(dir, "sub/escaped.json", err, sizeof(err));
  compile_file_fails(dir, "sub/absolute.json", err, sizeof(err));
  assert_non_null(strstr(err, "file:///etc/hostname"));

  /* missing and broken files name the path */
  compile_file_fails(dir, "nope.json", err, sizeof(err));
  assert_non_null(strstr(err, "nope.json"));
  compile_file_fails(dir, "dangling.json", err, sizeof(err));
  assert_non_null(strstr(err, "missing.json"));
  compile_file_fails(dir, "broken.json", err, sizeof(err));
  assert_non_null(strstr(err, "broken.json"));

  static const char *const files[] = {
      "a.json",      "b.json",           "outside.json",      "sub/in.json",
      "sub/up.json", "sub/escaped.json", "sub/absolute.json", "c.json",
      "sub/d.json",  "dangling.json",    "broken.json"};
  for(size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    remove_file(dir, files[i]);
  assert_int_equal(rmdir(sub), 0);
  assert_int_equal(rmdir(dir), 0);
}

static void test_mappings(void **state)
{
  (void)state;
  char remotes[512];
  snprintf(remotes, sizeof(remotes), "%s/remotes", suite_dir());
  struct stat st;
  if(stat(remotes, &st) != 0) {
    print_message("  %s not found: skipped\n", remotes);
    skip();
  }
  const struct schema_mapping map = {"http://localhost:1234/", remotes};
  const struct schema_options opts = {.mappings = &map, .mapping_count = 1};
  struct schema_result res;

  struct schema *s = compile_ok("{\"$ref\":\"http://localhost:1234/integer.json\"}", &opts);
  check(s, "1", true, &res);
  check(s, "\"a\"", false, &res);
  schema_free(s);

  s = compile_ok(
      "{\"properties\":{\"n\":{\"$ref\":\"http://localhost:1234/subSchemas.json#/refToInteger\"}}}",
      &opts);
  check(s, "{\"n\":2}", true, &res);
  check(s, "{\"n\":2.5}", false, &res);
  assert_string_equal(res.errors[0].instance_path, "/n");
  schema_free(s);

  s = compile_ok("{\"$ref\":\"http://localhost:1234/folder/folderInteger.json\"}", &opts);
  check(s, "1", true, &res);
  schema_free(s);

  /* a base URI under the mapping makes relative refs resolve there */
  const struct schema_options based = {
      .base_uri = "http://localhost:1234/x.json", .mappings = &map, .mapping_count = 1};
  s = compile_ok("{\"$ref\":\"integer.json\"}", &based);
  check(s, "1", true, &res);
  check(s, "1.5", false, &res);
  schema_free(s);

  /* without the mapping the same ref is refused, never fetched */
  char err[512] = "";
  compile_fails("{\"$ref\":\"http://localhost:1234/integer.json\"}", err, sizeof(err));
  assert_non_null(strstr(err, "no local directory serves it"));

  /* missing file under the mapping: the message names it */
  json_t *doc = parse("{\"$ref\":\"http://localhost:1234/no-such.json\"}");
  assert_null(schema_compile(doc, &opts, err, sizeof(err)));
  json_decref(doc);
  print_message("  %s\n", err);
  assert_non_null(strstr(err, "no-such.json"));
}

static void test_formats_off(void **state)
{
  (void)state;
  const struct schema_options on = {0}, off = {.formats_off = true};
  struct schema_result res;
  struct schema *s = compile_ok("{\"format\":\"ipv4\"}", &off);
  check(s, "\"x\"", true, &res);
  check(s, "\"192.168.0.1\"", true, &res);
  schema_free(s);

  s = compile_ok("{\"format\":\"ipv4\"}", &on);
  check(s, "\"x\"", false, &res);
  assert_string_equal(res.errors[0].keyword_path, "/format");
  assert_non_null(strstr(res.errors[0].message, "ipv4"));
  check(s, "\"192.168.0.1\"", true, &res);
  check(s, "17", true, &res); /* formats apply to strings only */
  schema_free(s);

  s = compile_ok("{\"format\":\"ipv4\"}", NULL);
  check(s, "\"x\"", false, &res);
  schema_free(s);

  /* unknown formats are annotations */
  expect("{\"format\":\"no-such-format\"}", "\"x\"", true);
}

static void test_metaschema(void **state)
{
  (void)state;
  json_t *meta = schema_metaschema();
  assert_non_null(meta);
  assert_true(json_is_object(meta));
  assert_string_equal(json_string_value(json_object_get(meta, "$id")), META_ID);
  json_decref(meta);

  /* the meta-schema is built in: no mapping needed */
  struct schema *s = compile_ok("{\"$ref\":\"" META_ID "\"}", NULL);
  struct schema_result res;
  check(s, "{\"type\":\"string\",\"minLength\":1}", true, &res);
  check(s, "{\"type\":5}", false, &res);
  check(s, "{\"minLength\":-1}", false, &res);
  check(s, "true", true, &res);
  check(s, "5", false, &res);
  schema_free(s);

  /* the meta-schema compiled from schema_metaschema() accepts itself */
  meta = schema_metaschema();
  char err[512];
  s = schema_compile(meta, NULL, err, sizeof(err));
  if(!s)
    fail_msg("meta-schema: %s", err);
  assert_true(schema_validate(s, meta, NULL));
  schema_free(s);
  json_decref(meta);
}

/* ---- threads ---- */

#define THREADS 8
#define ITERATIONS 2000

static const char thread_schema[] =
    "{\"type\":\"object\",\"required\":[\"name\"],"
    "\"properties\":{\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"},"
    "\"ip\":{\"type\":\"string\",\"format\":\"ipv4\"},"
    "\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"items\":{\"$ref\":\"#/definitions/"
    "tag\"}}},"
    "\"patternProperties\":{\"^x-\":{\"type\":\"integer\"}},"
    "\"definitions\":{\"tag\":{\"type\":\"string\",\"maxLength\":5}}}";

static const struct {
  const char *instance;
  size_t errors; /* 0: valid */
} thread_cases[] = {
    {"{\"name\":\"abc\"}", 0},
    {"{\"name\":\"abc\",\"ip\":\"10.0.0.1\",\"tags\":[\"a\",\"bb\"],\"x-n\":3}", 0},
    {"{\"name\":\"ABC\"}", 1},
    {"{\"ip\":\"300.1.1.1\"}", 2},
    {"{\"name\":\"a\",\"tags\":[\"toolong\",1],\"x-a\":\"s\"}", 3},
    {"{\"name\":\"a\",\"tags\":[\"a\",\"a\"]}", 1},
    {"5", 1},
    {"{\"name\":\"abc\",\"x-1\":1.5}", 1},
};

#define THREAD_CASES (sizeof(thread_cases) / sizeof(thread_cases[0]))

struct thread_arg {
  const struct schema *s;
  json_t *const *instances;
  unsigned seed;
  int mismatches;
};

static void *validate_thread(void *p)
{
  struct thread_arg *a = p;
  for(int i = 0; i < ITERATIONS; i++) {
    size_t k = (a->seed + (unsigned)i * 7u) % THREAD_CASES;
    struct schema_result res;
    bool want = thread_cases[k].errors == 0;
    if(schema_validate(a->s, a->instances[k], NULL) != want)
      a->mismatches++;
    if(schema_validate(a->s, a->instances[k], &res) != want ||
       res.count != thread_cases[k].errors || res.truncated)
      a->mismatches++;
  }
  return NULL;
}

static void test_threads(void **state)
{
  (void)state;
  struct schema *s = compile_ok(thread_schema, NULL);
  json_t *instances[THREAD_CASES];
  for(size_t k = 0; k < THREAD_CASES; k++) {
    instances[k] = parse(thread_cases[k].instance);
    /* the table itself, single-threaded */
    struct schema_result res;
    size_t n = check(s, thread_cases[k].instance, thread_cases[k].errors == 0, &res);
    if(n != thread_cases[k].errors) {
      dump_errors(&res);
      fail_msg("%s: %zu errors, want %zu", thread_cases[k].instance, n, thread_cases[k].errors);
    }
  }
  pthread_t t[THREADS];
  struct thread_arg args[THREADS];
  for(int i = 0; i < THREADS; i++) {
    args[i] = (struct thread_arg){.s = s, .instances = instances, .seed = (unsigned)i};
    assert_int_equal(pthread_create(&t[i], NULL, validate_thread, &args[i]), 0);
  }
  int mismatches = 0;
  for(int i = 0; i < THREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    mismatches += args[i].mismatches;
  }
  assert_int_equal(mismatches, 0);
  for(size_t k = 0; k < THREAD_CASES; k++)
    json_decref(instances[k]);
  schema_free(s);
}

/* ---- regressions: bugs found in review, fixed in schema.c ---- */

/* Every `false` (and `true`) in a jansson document is the same singleton, so
 * memoising boolean schemas by json_t* gave every one the location of the
 * first. Each boolean schema reports its own place. */
static void test_false_schema_keyword_path(void **state)
{
  (void)state;
  struct schema *s =
      compile_ok("{\"properties\":{\"a\":false,\"b\":false},\"items\":[true,false]}", NULL);
  struct schema_result res;
  check(s, "{\"b\":1}", false, &res);
  dump_errors(&res);
  schema_free(s);
  assert_int_equal(res.count, 1);
  assert_string_equal(res.errors[0].instance_path, "/b");
  assert_string_equal(res.errors[0].keyword_path, "/properties/b");

  s = compile_ok("{\"properties\":{\"a\":false,\"b\":false},\"items\":[true,false]}", NULL);
  check(s, "[1,2]", false, &res);
  schema_free(s);
  assert_int_equal(res.count, 1);
  assert_string_equal(res.errors[0].instance_path, "/1");
  assert_string_equal(res.errors[0].keyword_path, "/items/1");
}

/* uniqueItems compares pairwise up to 8 items and by hash past that: the hash
 * must agree with schema_json_equal for integral reals past 2^63 / 9.2e18. */
static void test_unique_items_big_integral_real(void **state)
{
  (void)state;
  expect("{\"uniqueItems\":true}", "[9210000000000000000, 9.21e18]", false);
  expect("{\"uniqueItems\":true}", "[9210000000000000000, 9.21e18, 1, 2, 3, 4, 5, 6, 7]", false);
  expect("{\"uniqueItems\":true}", "[1e19, 1e19, 1, 2, 3, 4, 5, 6, 7]", false);
  expect("{\"uniqueItems\":true}", "[9007199254740993, 9007199254740992.0, 1, 2, 3, 4, 5, 6, 7]",
         true);
  expect("{\"uniqueItems\":true}", "[9007199254740993, 9007199254740992.0]", true);
}

/* Counts given as reals past 9.2e18 still count (nothing is that long), and
 * an integer compares with a real exactly, not rounded to a double. */
static void test_numbers_past_double_precision(void **state)
{
  (void)state;
  static const struct verdict_case cases[] = {
      {"{\"minLength\":1e19}", "\"abc\"", false},
      {"{\"minItems\":1e19}", "[]", false},
      {"{\"minProperties\":9.3e18}", "{}", false},
      {"{\"maxItems\":1e19}", "[1,2,3]", true},
      {"{\"maximum\":9007199254740992.0}", "9007199254740993", false},
      {"{\"minimum\":9007199254740994.0}", "9007199254740993", false},
      {"{\"exclusiveMaximum\":9223372036854775807.0}", "9223372036854775807", true},
      {"{\"const\":9007199254740992.0}", "9007199254740993", false},
      {"{\"enum\":[9007199254740992.0]}", "9007199254740992", true},
  };
  int failures = 0;
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct schema_result res;
    char problem[1024];
    struct schema *s = compile_ok(cases[i].schema, NULL);
    if(try_check(s, cases[i].instance, cases[i].valid, &res, problem, sizeof(problem))) {
      print_message("  %s | %s\n", cases[i].schema, problem);
      failures++;
    }
    schema_free(s);
  }
  assert_int_equal(failures, 0);
}

/* anyOf, oneOf and if try branches quietly; two branches that recurse without
 * consuming the instance leave 2^depth paths under the depth bound. The step
 * budget ends them with an error. The last case consumes the instance: 40
 * nested arrays (81 bytes a client can send) against items: anyOf of two
 * $refs to the root. */
static void test_branching_recursion_ends(void **state)
{
  (void)state;
  static const char *const schemas[] = {
      "{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}",
      "{\"oneOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}",
      "{\"if\":{\"$ref\":\"#\"},\"then\":{\"$ref\":\"#\"},\"else\":{\"$ref\":\"#\"}}",
      "{\"not\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}}",
  };
  json_t *one = json_integer(1);
  int failures = 0;
  for(size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
    print_message("  %s\n", schemas[i]);
    int verdict = validate_watched(schemas[i], one);
    if(verdict != WATCH_INVALID && verdict != WATCH_REFUSED)
      failures++;
  }
  json_decref(one);
  json_t *deep = nested_arrays(40, json_integer(1));
  int verdict = validate_watched(
      "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}}", deep);
  if(verdict != WATCH_INVALID)
    failures++;
  assert_int_equal(failures, 0);

  /* in process: the refusal is an error with a message */
  struct schema_result res;
  struct schema *s = compile_ok(
      "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#\"}]}}", NULL);
  assert_false(schema_validate(s, deep, NULL));
  assert_false(schema_validate(s, deep, &res));
  json_decref(deep);
  schema_free(s);
  assert_true(res.count >= 1);
  print_message("  %s: %s\n", res.errors[0].keyword_path, res.errors[0].message);
}

/* True when s is valid UTF-8. */
static bool utf8_valid(const char *s)
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

/* Messages quote names with "%.100s" and paths are cut at a byte count, which
 * can split a UTF-8 character; the gateway puts errors into JSON (json_pack
 * "s" refuses invalid UTF-8, and the whole error reply would be lost). Every
 * string of a schema_error is valid UTF-8. */
static void test_error_strings_are_utf8(void **state)
{
  (void)state;
  int failures = 0;
  struct schema_result res;

  /* a property name of 99 ASCII bytes and an e-acute, quoted with %.100s */
  char key[300], instance[700];
  memset(key, 'a', 99);
  strcpy(key + 99, "\xc3\xa9");
  snprintf(instance, sizeof(instance), "{\"%s\":1}", key);
  struct schema *s = compile_ok("{\"additionalProperties\":false}", NULL);
  check(s, instance, false, &res);
  schema_free(s);
  if(!utf8_valid(res.errors[0].message)) {
    print_message("  message is not valid UTF-8: %s\n", res.errors[0].message);
    failures++;
  }

  /* an instance path of 100 "/\u00e9" tokens (3 bytes each), cut near
   * SCHEMA_PATH_MAX */
  json_t *inst = json_integer(1);
  for(int i = 0; i < 100; i++)
    inst = json_pack("{s:o}", "\xc3\xa9", inst);
  s = compile_ok("{\"additionalProperties\":{\"$ref\":\"#\"},\"type\":\"object\"}", NULL);
  schema_validate(s, inst, &res);
  json_decref(inst);
  schema_free(s);
  assert_int_equal(res.count, 1);
  if(!utf8_valid(res.errors[0].instance_path)) {
    print_message("  instance_path is not valid UTF-8: %s\n", res.errors[0].instance_path);
    failures++;
  }

  /* a keyword path past SCHEMA_PATH_MAX with a multi-byte character at the cut */
  memset(key, 'a', 239);
  key[239] = '\0';
  for(int i = 0; i < 10; i++)
    strcat(key, "\xc3\xa9");
  char schema[700];
  snprintf(schema, sizeof(schema), "{\"properties\":{\"%s\":{\"type\":\"string\"}}}", key);
  snprintf(instance, sizeof(instance), "{\"%s\":1}", key);
  s = compile_ok(schema, NULL);
  check(s, instance, false, &res);
  schema_free(s);
  if(!utf8_valid(res.errors[0].keyword_path)) {
    print_message("  keyword_path is not valid UTF-8: %s\n", res.errors[0].keyword_path);
    failures++;
  }
  assert_int_equal(failures, 0);
}

/* A file's base URI is its path as a file: URI, so a directory name with a
 * space, '#', '%' or non-ASCII characters still serves relative $refs. */
static void test_compile_file_path_needing_escapes(void **state)
{
  (void)state;
  static const char *const templates[] = {"/tmp/schema test.XXXXXX", "/tmp/schema#test.XXXXXX",
                                          "/tmp/schema%41test.XXXXXX",
                                          "/tmp/schema\xc3\xa9test.XXXXXX"};
  int failures = 0;
  for(size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
    char dir[64];
    snprintf(dir, sizeof(dir), "%s", templates[i]);
    assert_non_null(mkdtemp(dir));
    write_file(dir, "a.json", "{\"$ref\":\"b.json#/definitions/x\"}");
    write_file(dir, "b.json", "{\"definitions\":{\"x\":{\"type\":\"string\"}}}");
    char path[600], err[512] = "";
    snprintf(path, sizeof(path), "%s/a.json", dir);
    struct schema *s = schema_compile_file(path, NULL, err, sizeof(err));
    remove_file(dir, "a.json");
    remove_file(dir, "b.json");
    rmdir(dir);
    if(!s) {
      print_message("  %s\n", err);
      failures++;
      continue;
    }
    struct schema_result res;
    char problem[1024];
    if(try_check(s, "\"s\"", true, &res, problem, sizeof(problem)) ||
       try_check(s, "1", false, &res, problem, sizeof(problem))) {
      print_message("  %s: %s\n", path, problem);
      failures++;
    }
    schema_free(s);
  }
  assert_int_equal(failures, 0);
}

/* A pattern match that gives up (PCRE2 match limit) is not an answer: the
 * data is refused. "a"x32 "c" does match ^(?:(a+)+b|a+c)$ (second
 * alternative) once the first has backtracked past the limit, so taking the
 * give-up for "no match" let {"not":{"pattern": ...}} and `if` accept it.
 * And one give-up ends the validation: 2,200 such strings in an anyOf cost
 * one match limit, not 2,200 (11 s of CPU for a 64 KB message before). */
static void test_regex_give_up_refuses_data(void **state)
{
  (void)state;
  char subject[64];
  snprintf(subject, sizeof(subject), "\"%s\"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac");
  static const char *const schemas[] = {
      "{\"not\":{\"pattern\":\"^(?:(a+)+b|a+c)$\"}}",
      "{\"if\":{\"pattern\":\"^(?:(a+)+b|a+c)$\"},\"then\":false}",
      "{\"not\":{\"patternProperties\":{\"^(?:(a+)+b|a+c)$\":true},\"minProperties\":1,"
      "\"additionalProperties\":false}}",
  };
  char object[80];
  snprintf(object, sizeof(object), "{%s:1}", subject);
  /* the match itself, outside not/if: it gives up and says so */
  struct schema *s = compile_ok("{\"pattern\":\"^(?:(a+)+b|a+c)$\"}", NULL);
  struct schema_result res;
  check(s, subject, false, &res);
  schema_free(s);
  int failures = 0;
  for(size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
    char problem[1024];
    s = compile_ok(schemas[i], NULL);
    if(try_check(s, i == 2 ? object : subject, false, &res, problem, sizeof(problem))) {
      print_message("  %s | %s\n", schemas[i], problem);
      failures++;
    }
    schema_free(s);
  }

  json_t *many = json_array();
  assert_non_null(many);
  for(int i = 0; i < 2200; i++)
    assert_int_equal(json_array_append_new(many, json_string("aaaaaaaaaaaaaaaaaaaaaaaaab")), 0);
  int verdict = validate_watched(
      "{\"items\":{\"anyOf\":[{\"pattern\":\"^(a+)+$\"},{\"type\":\"string\"}]}}", many);
  json_decref(many);
  if(verdict != WATCH_INVALID) {
    print_message("  2,200 give-ups in an anyOf: verdict %d, want %d (refused)\n", verdict,
                  WATCH_INVALID);
    failures++;
  }
  assert_int_equal(failures, 0);
}

/* Review findings: multipleOf with large quotients, colliding uniqueItems
 * hashes, anchors named by an absolute URI, well-formed cut paths, and the
 * CPU cap on pattern matching. */
static void test_multiple_of_large_quotients(void **state)
{
  (void)state;
  expect("{\"multipleOf\":2}", "1000000001.0", false);
  expect("{\"multipleOf\":2}", "1000000002.0", true);
  expect("{\"multipleOf\":0.01}", "10000000.001", false);
  expect("{\"multipleOf\":3}", "10000000001.0", false);
  expect("{\"multipleOf\":0.1}", "12345678.9", true);
  expect("{\"multipleOf\":0.0001}", "0.0075", true);
  expect("{\"multipleOf\":0.0001}", "0.00751", false);
}

static void test_unique_items_colliding_doubles(void **state)
{
  (void)state;
  /* Integers in [2^62, 2^62 + 512) are one double apart: they must not all
   * land in one hash bucket (that made uniqueness quadratic). */
  json_t *arr = json_array();
  for(int i = 0; i < 512; i++)
    for(int j = 0; j < 4; j++)
      json_array_append_new(arr, json_pack("[I,i]", (json_int_t)(4611686018427387904LL + i), j));
  struct schema *s = compile_ok("{\"uniqueItems\":true}", NULL);
  assert_true(schema_validate(s, arr, NULL));
  json_array_append_new(arr, json_pack("[I,i]", (json_int_t)(4611686018427387904LL + 7), 3));
  assert_false(schema_validate(s, arr, NULL));
  schema_free(s);
  json_decref(arr);
}

static void test_anchor_by_absolute_uri(void **state)
{
  (void)state;
  const char *schema = "{\"allOf\":[{\"$ref\":\"http://localhost:1234/bar#foo\"}],"
                       "\"definitions\":{\"A\":{\"$id\":\"http://localhost:1234/bar#foo\","
                       "\"type\":\"integer\"}}}";
  expect(schema, "1", true);
  expect(schema, "\"a\"", false);
}

static bool pointer_well_formed(const char *p)
{
  for(; *p; p++)
    if(*p == '~' && p[1] != '0' && p[1] != '1')
      return false;
  return true;
}

static void test_cut_paths_stay_pointers(void **state)
{
  (void)state;
  /* a path of "~" keys that passes SCHEMA_PATH_MAX: each is "/~0" */
  json_t *inst = json_integer(1);
  for(int i = 0; i < 150; i++)
    inst = json_pack("{s:o}", "~", inst);
  struct schema *s =
      compile_ok("{\"additionalProperties\":{\"$ref\":\"#\"},\"type\":\"object\"}", NULL);
  struct schema_result res;
  assert_false(schema_validate(s, inst, &res));
  assert_true(res.count >= 1);
  assert_true(pointer_well_formed(res.errors[0].instance_path));
  assert_non_null(strstr(res.errors[0].instance_path, "/..."));
  schema_free(s);
  json_decref(inst);
}

static void test_base_dir(void **state)
{
  (void)state;
  char dir[] = "/tmp/schema base dir #XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[512];
  snprintf(path, sizeof(path), "%s/defs.json", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"definitions\":{\"x\":{\"type\":\"integer\"}}}", f);
  fclose(f);
  struct schema_options opts = {.base_dir = dir};
  struct schema *s = compile_ok("{\"$ref\":\"defs.json#/definitions/x\"}", &opts);
  struct schema_result res;
  check(s, "1", true, &res);
  check(s, "\"x\"", false, &res);
  schema_free(s);
  unlink(path);
  rmdir(dir);
}

static void test_pattern_cpu_cap(void **state)
{
  (void)state;
  /* Valid data, but every string makes the pattern backtrack a lot: the
   * matches' CPU time is capped and the data refused with a message. */
  json_t *arr = json_array();
  for(int i = 0; i < 4000; i++)
    json_array_append_new(arr, json_string("aaaaaaaaaaaaaaaaaaaaaaaaaa"));
  struct schema *s = compile_ok("{\"items\":{\"pattern\":\"^(?:(a|aa)+c|a+)$\"}}", NULL);
  struct schema_result res;
  bool ok = schema_validate(s, arr, &res);
  if(!ok) {
    assert_true(res.count >= 1);
    const char *why = res.errors[res.count - 1].message;
    /* the CPU cap, or (PCRE2's interpreter, as under valgrind) the match
     * limit first: either way refused, with the reason */
    if(!strstr(why, "ms of CPU") && !strstr(why, "gave up"))
      fail_msg("unexpected last error: %s", why);
  } /* a machine fast enough to finish under the cap accepts it: also right */
  schema_free(s);
  json_decref(arr);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_list),
      cmocka_unit_test(test_messages_name_the_value),
      cmocka_unit_test(test_pointer_escaping),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_verdict_without_result),
      cmocka_unit_test(test_invalid_schemas),
      cmocka_unit_test(test_ref_loops_do_not_compile),
      cmocka_unit_test(test_recursive_tree),
      cmocka_unit_test(test_too_deep_instance),
      cmocka_unit_test(test_self_reference_ends),
      cmocka_unit_test(test_huge_numbers),
      cmocka_unit_test(test_unique_items),
      cmocka_unit_test(test_length_counts_code_points),
      cmocka_unit_test(test_compile_file),
      cmocka_unit_test(test_mappings),
      cmocka_unit_test(test_formats_off),
      cmocka_unit_test(test_metaschema),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_false_schema_keyword_path),
      cmocka_unit_test(test_unique_items_big_integral_real),
      cmocka_unit_test(test_numbers_past_double_precision),
      cmocka_unit_test(test_branching_recursion_ends),
      cmocka_unit_test(test_error_strings_are_utf8),
      cmocka_unit_test(test_compile_file_path_needing_escapes),
      cmocka_unit_test(test_regex_give_up_refuses_data),
      cmocka_unit_test(test_multiple_of_large_quotients),
      cmocka_unit_test(test_unique_items_colliding_doubles),
      cmocka_unit_test(test_anchor_by_absolute_uri),
      cmocka_unit_test(test_cut_paths_stay_pointers),
      cmocka_unit_test(test_base_dir),
      cmocka_unit_test(test_pattern_cpu_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
