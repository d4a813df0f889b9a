/*
 * herald_schema.c - the herald-schema command: check JSON documents against a
 * draft-07 JSON Schema with the same validator heraldd uses.
 *
 *   herald-schema validate [--remote PREFIX=DIR]... [--no-format] SCHEMA.json INSTANCE.json...
 *   herald-schema check [--remote PREFIX=DIR]... SCHEMA.json
 *
 * Exit status: 0 all valid, 1 any instance invalid (or not JSON), 2 the
 * schema is invalid or unreadable, or the command line is wrong.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "util/json_text.h"

#define MAX_REMOTES 16

static void usage(FILE *out)
{
  fprintf(out,
          "usage: herald-schema validate [options] SCHEMA.json INSTANCE.json [INSTANCE.json...]\n"
          "       herald-schema check [options] SCHEMA.json\n"
          "\n"
          "Validates JSON documents against a JSON Schema (draft-07), as heraldd does\n"
          "for the events of topics bound to a schema.\n"
          "\n"
          "options:\n"
          "  --remote PREFIX=DIR  serve $refs to URIs starting with PREFIX from DIR\n"
          "                       (repeatable; nothing is ever fetched from the network;\n"
          "                       files next to SCHEMA.json are always served)\n"
          "  --no-format          treat \"format\" as an annotation, not an assertion\n"
          "  --help, --version\n"
          "\n"
          "exit status: 0 all valid, 1 some instance invalid or not JSON,\n"
          "             2 the schema is invalid or unreadable, or a usage error\n");
}

/* Prints every error of one instance; returns true when it is valid. */
static bool validate_file(const struct schema *s, const char *path)
{
  json_error_t jerr;
  json_t *inst = util_json_load_file(path, JSON_DECODE_ANY, &jerr);
  if(!inst) {
    if(jerr.line < 0) /* not a syntax error: the file could not be read */
      printf("%s: cannot read: %s\n", path, jerr.text);
    else
      printf("%s: not JSON: line %d column %d: %s\n", path, jerr.line, jerr.column, jerr.text);
    return false;
  }
  struct schema_result res;
  bool ok = schema_validate(s, inst, &res);
  for(size_t i = 0; i < res.count; i++) {
    const struct schema_error *e = &res.errors[i];
    printf("%s: %s: %s (schema %s)\n", path, *e->instance_path ? e->instance_path : "(root)",
           e->message, *e->keyword_path ? e->keyword_path : "(root)");
  }
  if(res.truncated)
    printf("%s: more than %d errors; the rest are not shown\n", path, SCHEMA_MAX_ERRORS);
  json_decref(inst);
  return ok;
}

int main(int argc, char **argv)
{
  static const struct option LONG[] = {
      {"remote", required_argument, NULL, 'r'},
      {"no-format", no_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  struct schema_mapping maps[MAX_REMOTES];
  struct schema_options opts = {.mappings = maps};
  int c;
  while((c = getopt_long(argc, argv, "", LONG, NULL)) != -1) {
    switch(c) {
    case 'r': {
      char *eq = strchr(optarg, '=');
      if(!eq || eq == optarg || !eq[1] || opts.mapping_count == MAX_REMOTES) {
        fprintf(stderr, "herald-schema: --remote wants PREFIX=DIR (at most %d)\n", MAX_REMOTES);
        return 2;
      }
      *eq = '\0';
      maps[opts.mapping_count].prefix = optarg;
      maps[opts.mapping_count].dir = eq + 1;
      opts.mapping_count++;
      break;
    }
    case 'F': opts.formats_off = true; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("herald-schema %s (JSON Schema draft-07)\n", HERALD_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  int rest = argc - optind;
  const char *cmd = rest > 0 ? argv[optind] : "";
  bool validate = !strcmp(cmd, "validate"), check = !strcmp(cmd, "check");
  if((!validate && !check) || (validate && rest < 3) || (check && rest != 2)) {
    usage(stderr);
    return 2;
  }
  char err[1024];
  struct schema *s = schema_compile_file(argv[optind + 1], &opts, err, sizeof err);
  if(!s) {
    fprintf(stderr, "herald-schema: invalid schema: %s\n", err);
    return 2;
  }
  bool all_ok = true;
  for(int i = optind + 2; i < argc; i++)
    all_ok &= validate_file(s, argv[i]);
  schema_free(s);
  return all_ok ? 0 : 1;
}
