/*
 * How matching works. Every pattern is a path from the root: exact segments
 * are hashed children, `*` and `>` are two dedicated child slots. A topic
 * `a.b.c` is matched by walking, at each level, the exact child for the
 * segment and the `*` child; a `>` child met on the way matches whatever is
 * left (one or more segments), and the subscribers stored on the node reached
 * after the last segment match exactly. Subscribers found on several paths
 * (`a.*` and `a.>` and `a.b`) are reported once thanks to the per-match mark.
 */
#include "index.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

struct node {
  struct node *parent;
  char *seg; /* NULL for the root, "*" and ">" slots */
  size_t seglen;
  struct node **kids; /* open addressing, linear probing, cap a power of 2 */
  uint32_t nkids, kidcap;
  struct node *star, *rest;
  struct sub_subscriber **subs;
  uint32_t nsubs, subcap;
};

struct sub_index {
  struct node root;
  uint64_t gen;
  size_t nodes, entries;
};

static uint32_t seg_hash(const char *s, size_t n)
{
  return (uint32_t)sub_topic_hash(s, n);
}

static struct node *kid_find(const struct node *n, const char *s, size_t len)
{
  if(!n->kidcap)
    return NULL;
  uint32_t mask = n->kidcap - 1;
  for(uint32_t i = seg_hash(s, len) & mask;; i = (i + 1) & mask) {
    struct node *k = n->kids[i];
    if(!k)
      return NULL;
    if(k->seglen == len && memcmp(k->seg, s, len) == 0)
      return k;
  }
}

static void kid_place(struct node **kids, uint32_t cap, struct node *k)
{
  uint32_t mask = cap - 1;
  uint32_t i = seg_hash(k->seg, k->seglen) & mask;
  while(kids[i])
    i = (i + 1) & mask;
  kids[i] = k;
}

/* Returns 0, or -1 when growing the table failed. */
static int kid_insert(struct node *n, struct node *k)
{
  if((n->nkids + 1) * 4 > n->kidcap * 3) {
    uint32_t cap = n->kidcap ? n->kidcap * 2 : 4;
    struct node **kids = calloc(cap, sizeof(*kids));
    if(!kids)
      return -1;
    for(uint32_t i = 0; i < n->kidcap; i++)
      if(n->kids[i])
        kid_place(kids, cap, n->kids[i]);
    free(n->kids);
    n->kids = kids;
    n->kidcap = cap;
  }
  kid_place(n->kids, n->kidcap, k);
  n->nkids++;
  return 0;
}

/* Linear-probing delete with backward shift, so no tombstones pile up. */
static void kid_delete(struct node *n, struct node *k)
{
  uint32_t mask = n->kidcap - 1;
  uint32_t i = seg_hash(k->seg, k->seglen) & mask;
  while(n->kids[i] != k)
    i = (i + 1) & mask;
  n->kids[i] = NULL;
  for(uint32_t j = (i + 1) & mask; n->kids[j]; j = (j + 1) & mask) {
    struct node *m = n->kids[j];
    n->kids[j] = NULL;
    kid_place(n->kids, n->kidcap, m);
  }
  n->nkids--;
  if(!n->nkids) {
    free(n->kids);
    n->kids = NULL;
    n->kidcap = 0;
  }
}

static bool node_empty(const struct node *n)
{
  return !n->nsubs && !n->nkids && !n->star && !n->rest;
}

static void node_free(struct node *n)
{
  for(uint32_t i = 0; i < n->kidcap; i++)
    if(n->kids[i])
      node_free(n->kids[i]);
  if(n->star)
    node_free(n->star);
  if(n->rest)
    node_free(n->rest);
  free(n->kids);
  free(n->subs);
  free(n->seg);
  free(n);
}

/* Unlinks and frees empty nodes from `n` up towards the root. */
static void prune(struct sub_index *idx, struct node *n)
{
  while(n != &idx->root && node_empty(n)) {
    struct node *p = n->parent;
    if(p->star == n)
      p->star = NULL;
    else if(p->rest == n)
      p->rest = NULL;
    else
      kid_delete(p, n);
    free(n->subs);
    free(n->seg);
    free(n);
    idx->nodes--;
    n = p;
  }
}

struct sub_index *sub_index_new(void)
{
  struct sub_index *idx = calloc(1, sizeof(*idx));
  if(idx)
    idx->nodes = 1;
  return idx;
}

void sub_index_free(struct sub_index *idx)
{
  if(!idx)
    return;
  for(uint32_t i = 0; i < idx->root.kidcap; i++)
    if(idx->root.kids[i])
      node_free(idx->root.kids[i]);
  if(idx->root.star)
    node_free(idx->root.star);
  if(idx->root.rest)
    node_free(idx->root.rest);
  free(idx->root.kids);
  free(idx->root.subs);
  free(idx);
}

/* Returns the child of `n` for the segment, creating it when `create`;
 * NULL when absent (or out of memory). */
static struct node *child(struct sub_index *idx, struct node *n, const char *s, size_t len,
                          bool create)
{
  struct node **slot = NULL;
  if(len == 1 && s[0] == '*')
    slot = &n->star;
  else if(len == 1 && s[0] == '>')
    slot = &n->rest;
  struct node *k = slot ? *slot : kid_find(n, s, len);
  if(k || !create)
    return k;
  k = calloc(1, sizeof(*k));
  if(!k)
    return NULL;
  k->parent = n;
  k->seglen = len;
  k->seg = malloc(len + 1);
  if(!k->seg) {
    free(k);
    return NULL;
  }
  memcpy(k->seg, s, len);
  k->seg[len] = '\0';
  if(slot)
    *slot = k;
  else if(kid_insert(n, k)) {
    free(k->seg);
    free(k);
    return NULL;
  }
  idx->nodes++;
  return k;
}

int sub_index_add(struct sub_index *idx, const char *pattern, size_t len, struct sub_subscriber *s)
{
  const char *seg[SUB_TOPIC_MAX_DEPTH];
  size_t seglen[SUB_TOPIC_MAX_DEPTH];
  int n = sub_topic_split(pattern, len, seg, seglen, SUB_TOPIC_MAX_DEPTH);
  if(n < 0)
    return -1;
  struct node *node = &idx->root;
  for(int i = 0; i < n; i++) {
    struct node *next = child(idx, node, seg[i], seglen[i], true);
    if(!next) {
      prune(idx, node);
      return -1;
    }
    node = next;
  }
  if(node->nsubs == node->subcap) {
    uint32_t cap = node->subcap ? node->subcap * 2 : 2;
    struct sub_subscriber **subs = realloc(node->subs, cap * sizeof(*subs));
    if(!subs) {
      prune(idx, node);
      return -1;
    }
    node->subs = subs;
    node->subcap = cap;
  }
  node->subs[node->nsubs++] = s;
  idx->entries++;
  return 0;
}

int sub_index_remove(struct sub_index *idx, const char *pattern, size_t len,
                     struct sub_subscriber *s)
{
  const char *seg[SUB_TOPIC_MAX_DEPTH];
  size_t seglen[SUB_TOPIC_MAX_DEPTH];
  int n = sub_topic_split(pattern, len, seg, seglen, SUB_TOPIC_MAX_DEPTH);
  if(n < 0)
    return -1;
  struct node *node = &idx->root;
  for(int i = 0; i < n && node; i++)
    node = child(idx, node, seg[i], seglen[i], false);
  if(!node)
    return -1;
  for(uint32_t i = 0; i < node->nsubs; i++) {
    if(node->subs[i] != s)
      continue;
    node->subs[i] = node->subs[--node->nsubs];
    if(!node->nsubs) {
      free(node->subs);
      node->subs = NULL;
      node->subcap = 0;
    }
    idx->entries--;
    prune(idx, node);
    return 0;
  }
  return -1;
}

struct walk {
  const char **seg;
  size_t *seglen;
  int nseg;
  uint64_t gen;
  sub_match_fn fn;
  void *ctx;
  size_t called;
};

static void deliver(struct walk *w, const struct node *n)
{
  for(uint32_t i = 0; i < n->nsubs; i++) {
    struct sub_subscriber *s = n->subs[i];
    if(s->mark == w->gen)
      continue;
    s->mark = w->gen;
    w->called++;
    w->fn(s, w->ctx);
  }
}

static void walk(struct walk *w, const struct node *n, int depth)
{
  if(depth == w->nseg) {
    deliver(w, n);
    return;
  }
  if(n->rest)
    deliver(w, n->rest); /* `>` takes the one or more segments left */
  if(n->star)
    walk(w, n->star, depth + 1);
  const struct node *k = kid_find(n, w->seg[depth], w->seglen[depth]);
  if(k)
    walk(w, k, depth + 1);
}

size_t sub_index_match(struct sub_index *idx, const char *topic, size_t len, sub_match_fn fn,
                       void *ctx)
{
  const char *seg[SUB_TOPIC_MAX_DEPTH];
  size_t seglen[SUB_TOPIC_MAX_DEPTH];
  int n = sub_topic_split(topic, len, seg, seglen, SUB_TOPIC_MAX_DEPTH);
  if(n <= 0)
    return 0;
  struct walk w = {seg, seglen, n, ++idx->gen, fn, ctx, 0};
  walk(&w, &idx->root, 0);
  return w.called;
}

size_t sub_index_nodes(const struct sub_index *idx)
{
  return idx->nodes;
}

size_t sub_index_entries(const struct sub_index *idx)
{
  return idx->entries;
}
