#ifndef HERALD_TOPIC_H
#define HERALD_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Topics are dot-separated segments of [A-Za-z0-9_-], 1..255 bytes and at
 * most 32 segments in all. Patterns may also use `*` (exactly one segment)
 * and `>` (one or more trailing segments, last segment only). The grammar of
 * NATS subjects, with a depth bound: matching walks one trie level per
 * segment, so deep wildcard patterns would let one client make every publish
 * expensive. */

#define SUB_TOPIC_MAX 255
#define SUB_TOPIC_MAX_SEGMENTS 32
#define SUB_TOPIC_MAX_DEPTH 128 /* 255 bytes cannot hold more segments: array sizes */

/* Returns true when `s` (len bytes, need not be NUL-terminated) is a valid
 * concrete topic. On false, *why (if non-NULL) says what is wrong. */
bool sub_topic_valid(const char *s, size_t len, const char **why);

/* Returns true when `s` is a valid subscription pattern (a concrete topic is
 * a valid pattern too). On false, *why says what is wrong. */
bool sub_pattern_valid(const char *s, size_t len, const char **why);

/* Returns true when the valid pattern matches the valid concrete topic.
 * The reference implementation the index is tested against. */
bool sub_pattern_matches(const char *pattern, const char *topic);

/* Returns true when every topic `pattern` can match is matched by at least
 * one of the n `grants` (all valid patterns): a permission check. Exact for
 * the union, e.g. {"a.*", "a.*.>"} covers "a.>"; "orders.>" covers
 * "orders.*.created"; "orders.*" does not cover "orders.>". */
bool sub_patterns_cover(const char *const *grants, size_t n, const char *pattern);

/* Splits a valid topic or pattern into at most `max` segments, pointing into
 * `s`. Returns the number of segments, or -1 if there are more than `max`. */
int sub_topic_split(const char *s, size_t len, const char **seg, size_t *seglen, int max);

/* FNV-1a over len bytes: the hash of the topic table and of the trie's
 * child tables. */
uint64_t sub_topic_hash(const char *s, size_t len);

#endif
