/*
 * regex.h - ECMA-262 regular expressions for JSON Schema, on PCRE2.
 *
 * JSON Schema says `pattern` and `patternProperties` are ECMA-262 regexes,
 * not anchored. We compile them with PCRE2 in UTF mode with the options that
 * bring it closest to ECMA-262 (ASCII \d \w, `$` only at the very end, \uHHHH
 * escapes) and translate the few constructs PCRE2 spells differently. Every
 * match runs under a match and depth limit, so a catastrophic pattern ends
 * with an error instead of a hang.
 */
#ifndef HERALD_SCHEMAS_REGEX_H
#define HERALD_SCHEMAS_REGEX_H

#include <stddef.h>

struct schema_regex;

/* Compiles an ECMA-262 pattern (UTF-8, NUL-terminated). Returns NULL on a
 * syntax error (including PCRE2-only syntax such as \Z or (?i)) or on
 * allocation failure, with a human message in err (err may be NULL). */
struct schema_regex *schema_regex_compile(const char *pattern, char *err, size_t errlen);

/* Searches s[0..len) for the pattern anywhere. s must be valid UTF-8 (as
 * every jansson string is): with JIT the subject is not checked again.
 * Returns 1 on a match, 0 on none, -1 when the match limit was hit or
 * memory ran out. Safe to call from many threads at once on the same
 * compiled regex. */
int schema_regex_search(const struct schema_regex *re, const char *s, size_t len);

/* The pattern as it was given to schema_regex_compile. */
const char *schema_regex_source(const struct schema_regex *re);

void schema_regex_free(struct schema_regex *re);

#endif
