#ifndef HERALD_UTIL_JSON_TEXT_H
#define HERALD_UTIL_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* JSON as text: what Herald does to a publisher's bytes without parsing
 * them into values, so that numbers, string escapes and key order reach
 * every receiver exactly as they were sent (docs/protocol.md, "What is sent
 * byte for byte"). Values are still parsed, by jansson, to check the text
 * and to apply schemas; these functions only move bytes. */

/* Containers nested deeper are refused (jansson's own limit). */
#define UTIL_JSON_MAX_DEPTH 2048

/* Copies the RFC 8259 JSON text in[0..len) (one value of any type, with
 * optional whitespace around it) to out without its insignificant
 * whitespace (space, tab, LF, CR outside strings); every token is copied
 * byte for byte. out must hold len bytes (the result is never longer) and
 * may not overlap in. Returns 0 with *out_len set, or -1 when the text is
 * not JSON, with *err_off the offset of the first byte that is wrong (len
 * when the text ends too early) and *why a static message. Strings must be
 * valid UTF-8 with valid escapes and no raw control characters. Duplicate
 * object keys are not checked (the parser does that). */
int util_json_minify(const char *in, size_t len, char *out, size_t *out_len, size_t *err_off,
                     const char **why);

/* Finds the member `name` (NUL-terminated, ASCII) of the top-level object
 * of the JSON text [0..len): *off and *vlen get the span of its value's
 * text. Keys are compared after their escapes are decoded ("d\u0061ta" is
 * "data"); with duplicate keys the last one counts, as jansson's does.
 * Returns 0, or -1 when the text is not an object or has no such member.
 * The text must be valid JSON (parse it first). */
int util_json_member(const char *text, size_t len, const char *name, size_t *off, size_t *vlen);

/* json_loadb, accepting every RFC 8259 number: when jansson refuses a
 * number as too big (an integer beyond 64 bits, a real beyond a double's
 * range), the text is parsed again with such integers read as reals and
 * out-of-range reals clamped to the largest double of their sign, so that
 * schemas can still check them. The caller keeps the original text for
 * what it passes on. */
json_t *util_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err);

/* util_json_loadb of a whole file (jansson's own message when it cannot
 * be read: err->line is then -1). */
json_t *util_json_load_file(const char *path, size_t flags, json_error_t *err);

#endif
