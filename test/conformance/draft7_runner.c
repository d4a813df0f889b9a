/*
 * draft7_runner.c - runs the official JSON-Schema-Test-Suite (draft7) through
 * Herald's validator and prints "N passed, M failed".
 *
 * Usage: draft7_runner SUITE_DIR [-v]
 * SUITE_DIR is the suite's root (Debian: /usr/share/json-schema-test-suite).
 * Runs every required file of tests/draft7, and optional/format for the
 * formats Herald asserts. refRemote's http://localhost:1234/ is served from
 * SUITE_DIR/remotes on disk. Exits 1 when any case fails, 2 when the suite
 * cannot be read.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "schema.h"

static const char *const FORMATS[] = {
    "date-time", "date", "time",          "email", "hostname",     "ipv4",
    "ipv6",      "uri",  "uri-reference", "regex", "json-pointer", "uuid",
};

struct tally {
  unsigned passed, failed;
};

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one suite file; adds to t. Returns -1 when it cannot be read. */
static int run_file(const char *path, const char *label, const struct schema_options *opts,
                    bool verbose, struct tally *t)
{
  json_error_t jerr;
  json_t *groups = json_load_file(path, 0, &jerr);
  if(!json_is_array(groups)) {
    fprintf(stderr, "%s: %s\n", path, groups ? "not an array" : jerr.text);
    json_decref(groups);
    return -1;
  }
  struct tally file = {0, 0};
  size_t gi;
  json_t *group;
  json_array_foreach(groups, gi, group)
  {
    const char *gdesc = json_string_value(json_object_get(group, "description"));
    char err[512];
    struct schema *s = schema_compile(json_object_get(group, "schema"), opts, err, sizeof err);
    size_t ti;
    json_t *tc;
    json_array_foreach(json_object_get(group, "tests"), ti, tc)
    {
      const char *tdesc = json_string_value(json_object_get(tc, "description"));
      bool expect = json_is_true(json_object_get(tc, "valid"));
      if(!s) {
        file.failed++;
        printf("FAIL %s: %s: %s: schema did not compile: %s\n", label, gdesc, tdesc, err);
        continue;
      }
      struct schema_result res;
      bool got = schema_validate(s, json_object_get(tc, "data"), &res);
      bool quiet_got = schema_validate(s, json_object_get(tc, "data"), NULL);
      if(got == expect && quiet_got == expect && got == (res.count == 0)) {
        file.passed++;
        if(verbose)
          printf("ok   %s: %s: %s\n", label, gdesc, tdesc);
      } else {
        file.failed++;
        printf("FAIL %s: %s: %s: expected %s, got %s (quiet %s)%s%s\n", label, gdesc, tdesc,
               expect ? "valid" : "invalid", got ? "valid" : "invalid",
               quiet_got ? "valid" : "invalid", res.count ? " first error: " : "",
               res.count ? res.errors[0].message : "");
      }
    }
    schema_free(s);
  }
  json_decref(groups);
  printf("%-36s %4u passed, %u failed\n", label, file.passed, file.failed);
  t->passed += file.passed;
  t->failed += file.failed;
  return 0;
}

int main(int argc, char **argv)
{
  if(argc < 2) {
    fprintf(stderr, "usage: %s SUITE_DIR [-v]\n", argv[0]);
    return 2;
  }
  const char *suite = argv[1];
  bool verbose = argc > 2 && !strcmp(argv[2], "-v");
  char dir[1024], remotes[1024], path[2048];
  snprintf(dir, sizeof dir, "%s/tests/draft7", suite);
  snprintf(remotes, sizeof remotes, "%s/remotes", suite);
  struct schema_mapping map = {.prefix = "http://localhost:1234/", .dir = remotes};
  struct schema_options opts = {.mappings = &map, .mapping_count = 1};

  DIR *d = opendir(dir);
  if(!d) {
    fprintf(stderr, "%s: cannot open (install the json-schema-test-suite package)\n", dir);
    return 2;
  }
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  while((e = readdir(d)) && n < 256) {
    size_t len = strlen(e->d_name);
    if(len > 5 && !strcmp(e->d_name + len - 5, ".json"))
      names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(*names), name_cmp);

  struct tally required = {0, 0}, format = {0, 0};
  int rc = 0;
  for(size_t i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if(run_file(path, names[i], &opts, verbose, &required))
      rc = 2;
    free(names[i]);
  }
  if(n == 0) {
    fprintf(stderr, "%s: no test files\n", dir);
    rc = 2;
  }
  for(size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++) {
    snprintf(path, sizeof path, "%s/optional/format/%s.json", dir, FORMATS[i]);
    FILE *f = fopen(path, "r");
    if(!f)
      continue; /* this suite version has no file for the format */
    fclose(f);
    char label[64];
    snprintf(label, sizeof label, "format/%s.json", FORMATS[i]);
    if(run_file(path, label, &opts, verbose, &format))
      rc = 2;
  }
  /* The other optional files are reported, not required: see docs/schemas.md. */
  static const char *const OPTIONAL[] = {"bignum", "ecmascript-regex", "zeroTerminatedFloats",
                                         "content"};
  struct tally optional = {0, 0};
  for(size_t i = 0; i < sizeof OPTIONAL / sizeof OPTIONAL[0]; i++) {
    snprintf(path, sizeof path, "%s/optional/%s.json", dir, OPTIONAL[i]);
    FILE *f = fopen(path, "r");
    if(!f)
      continue;
    fclose(f);
    char label[64];
    snprintf(label, sizeof label, "optional/%s.json", OPTIONAL[i]);
    run_file(path, label, &opts, verbose, &optional);
  }
  printf("draft7 required: %u passed, %u failed\n", required.passed, required.failed);
  printf("draft7 optional/format (Herald's formats): %u passed, %u failed\n", format.passed,
         format.failed);
  printf("draft7 other optional (informational, not counted): %u passed, %u failed\n",
         optional.passed, optional.failed);
  printf("%u passed, %u failed\n", required.passed + format.passed,
         required.failed + format.failed);
  if(rc)
    return rc;
  return required.failed || format.failed ? 1 : 0;
}
