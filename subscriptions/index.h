#ifndef HERALD_INDEX_H
#define HERALD_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* The subscription index: a trie with one node per topic segment, plus a `*`
 * child and a `>` child per node. Matching a topic walks at most the exact,
 * `*` and `>` branches at each level, so its cost grows with the topic's
 * depth, not with the number of subscriptions.
 *
 * One index belongs to one client worker and is used from that worker's
 * thread only: it takes no locks. */

/* Embed this in whatever subscribes (a connection). The index uses `mark` to
 * hand each subscriber to the match callback once per match, however many of
 * its patterns match; a subscriber must belong to one index only. */
struct sub_subscriber {
  uint64_t mark;
};

struct sub_index;

typedef void (*sub_match_fn)(struct sub_subscriber *s, void *ctx);

/* Returns a new empty index, or NULL when out of memory. */
struct sub_index *sub_index_new(void);
void sub_index_free(struct sub_index *idx);

/* Adds `s` under the valid pattern. The caller keeps (pattern, s) pairs
 * unique. Returns 0, or -1 when out of memory (the index is unchanged). */
int sub_index_add(struct sub_index *idx, const char *pattern, size_t len, struct sub_subscriber *s);

/* Removes `s` from under the pattern and frees the nodes left empty.
 * Returns 0, or -1 when the pair was not in the index. */
int sub_index_remove(struct sub_index *idx, const char *pattern, size_t len,
                     struct sub_subscriber *s);

/* Calls fn once for every subscriber with at least one pattern matching the
 * valid concrete topic. Returns the number of subscribers called. */
size_t sub_index_match(struct sub_index *idx, const char *topic, size_t len, sub_match_fn fn,
                       void *ctx);

/* Number of trie nodes (the root included) and of (pattern, subscriber)
 * pairs: for tests and metrics. */
size_t sub_index_nodes(const struct sub_index *idx);
size_t sub_index_entries(const struct sub_index *idx);

#endif
