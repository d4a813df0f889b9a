/*
 * schema.h - a JSON Schema draft-07 validator over jansson.
 *
 * A schema is compiled once (all $refs resolved, regexes compiled, keywords
 * turned into a flat node per subschema) and then validates any number of
 * instances, from any number of threads at once: validation only reads the
 * compiled form. $refs to other documents are served by a loader: the
 * draft-07 meta-schema is built in, everything else comes from local
 * directories mapped to URI prefixes. Nothing is ever fetched from the network.
 */
#ifndef HERALD_SCHEMAS_SCHEMA_H
#define HERALD_SCHEMAS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SCHEMA_MAX_ERRORS 10
#define SCHEMA_PATH_MAX 256
#define SCHEMA_MESSAGE_MAX 256
/* Nesting of subschema evaluation (each properties/items/allOf... level;
 * $ref hops are free). */
#define SCHEMA_MAX_DEPTH 256
/* Subschema evaluations in one schema_validate call; past it the data is
 * refused (branching recursion could otherwise take exponential time). */
#define SCHEMA_MAX_STEPS 1000000
/* CPU time pattern matching may take in one schema_validate call (checked
 * every 16 matches); past it the data is refused. */
#define SCHEMA_MAX_REGEX_NS 100000000LL

struct schema;

struct schema_error {
  char instance_path[SCHEMA_PATH_MAX]; /* JSON Pointer into the instance; "" is the root */
  char keyword_path[SCHEMA_PATH_MAX];  /* where the failing keyword sits in the schema */
  char message[SCHEMA_MESSAGE_MAX];
};

struct schema_result {
  size_t count;   /* errors[0..count) are filled */
  bool truncated; /* more errors existed than SCHEMA_MAX_ERRORS */
  struct schema_error errors[SCHEMA_MAX_ERRORS];
};

/* A local directory that serves every URI starting with prefix, e.g.
 * "http://localhost:1234/" -> "/usr/share/json-schema-test-suite/remotes". */
struct schema_mapping {
  const char *prefix;
  const char *dir;
};

struct schema_options {
  /* Base URI of the root document when it has no $id; NULL means
   * "urn:herald:root" (relative refs then resolve only by fragment). */
  const char *base_uri;
  /* For schema_compile without base_uri: a directory whose files serve the
   * schema's relative $refs (its file: URI becomes the base). */
  const char *base_dir;
  const struct schema_mapping *mappings;
  size_t mapping_count;
  /* Assert `format` (default true: the zero value of this struct means on). */
  bool formats_off;
};

/* Compiles doc (borrowed; the compiled schema keeps its own reference).
 * Returns NULL with a message in err when the schema is not a valid draft-07
 * schema, a $ref cannot be resolved, a pattern does not compile, or memory
 * runs out. */
struct schema *schema_compile(json_t *doc, const struct schema_options *opts, char *err,
                              size_t errlen);

/* Reads and compiles a schema file; its base URI is file://<absolute path>,
 * so relative $refs resolve to sibling files (which must be under a mapping
 * or in the same directory tree). */
struct schema *schema_compile_file(const char *path, const struct schema_options *opts, char *err,
                                   size_t errlen);

/* Validates instance. Returns true when valid. When res is not NULL it is
 * filled with up to SCHEMA_MAX_ERRORS errors (count 0 when valid). */
bool schema_validate(const struct schema *s, const json_t *instance, struct schema_result *res);

void schema_free(struct schema *s);

/* A new reference to the built-in draft-07 meta-schema document, or NULL
 * when out of memory. */
json_t *schema_metaschema(void);

/* Deep equality as JSON Schema defines it (1 == 1.0, key order ignored). */
bool schema_json_equal(const json_t *a, const json_t *b);

#endif
