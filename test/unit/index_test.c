/* The subscription index: every subscriber whose pattern matches a topic is
 * called exactly once, and removing subscriptions gives all memory back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "topic.h"

struct sub {
  struct sub_subscriber base; /* first: the callback casts back */
  int calls;
};

static void count_call(struct sub_subscriber *s, void *ctx)
{
  struct sub *me = (struct sub *)s;
  me->calls++;
  if(ctx)
    (*(size_t *)ctx)++;
}

static int add(struct sub_index *idx, const char *pattern, struct sub *s)
{
  return sub_index_add(idx, pattern, strlen(pattern), &s->base);
}

static int rm(struct sub_index *idx, const char *pattern, struct sub *s)
{
  return sub_index_remove(idx, pattern, strlen(pattern), &s->base);
}

/* Matches `topic` after clearing every call count; returns the match count
 * after checking it agrees with the callbacks made. */
static size_t match(struct sub_index *idx, const char *topic, struct sub *subs, size_t nsubs)
{
  for(size_t i = 0; i < nsubs; i++)
    subs[i].calls = 0;
  size_t called = 0;
  size_t n = sub_index_match(idx, topic, strlen(topic), count_call, &called);
  assert_int_equal(n, called);
  size_t total = 0;
  for(size_t i = 0; i < nsubs; i++) {
    assert_in_range(subs[i].calls, 0, 1); /* never twice */
    total += (size_t)subs[i].calls;
  }
  assert_int_equal(total, n);
  return n;
}

static void test_empty(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  assert_non_null(idx);
  assert_int_equal(sub_index_nodes(idx), 1);
  assert_int_equal(sub_index_entries(idx), 0);
  struct sub s = {0};
  assert_int_equal(match(idx, "a", &s, 1), 0);
  assert_int_equal(match(idx, "a.b.c", &s, 1), 0);
  assert_int_equal(rm(idx, "a", &s), -1);
  assert_int_equal(rm(idx, ">", &s), -1);
  assert_int_equal(sub_index_nodes(idx), 1);
  sub_index_free(idx);
  sub_index_free(NULL); /* allowed, like free() */
}

static void test_add_match_remove(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub s[1] = {0};

  assert_int_equal(add(idx, "orders.eu.created", &s[0]), 0);
  assert_int_equal(sub_index_entries(idx), 1);
  assert_int_equal(sub_index_nodes(idx), 4); /* root + 3 segments */

  assert_int_equal(match(idx, "orders.eu.created", s, 1), 1);
  assert_int_equal(s[0].calls, 1);
  assert_int_equal(match(idx, "orders.eu", s, 1), 0);
  assert_int_equal(match(idx, "orders.eu.created.x", s, 1), 0);
  assert_int_equal(match(idx, "orders.us.created", s, 1), 0);
  assert_int_equal(match(idx, "orders", s, 1), 0);

  assert_int_equal(rm(idx, "orders.eu.created", &s[0]), 0);
  assert_int_equal(sub_index_entries(idx), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  assert_int_equal(match(idx, "orders.eu.created", s, 1), 0);
  assert_int_equal(rm(idx, "orders.eu.created", &s[0]), -1);
  sub_index_free(idx);
}

static void test_wildcards(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub s[4] = {0};
  assert_int_equal(add(idx, "orders.*", &s[0]), 0);
  assert_int_equal(add(idx, "orders.>", &s[1]), 0);
  assert_int_equal(add(idx, ">", &s[2]), 0);
  assert_int_equal(add(idx, "*.*.created", &s[3]), 0);

  assert_int_equal(match(idx, "orders", s, 4), 1);
  assert_int_equal(s[2].calls, 1);

  assert_int_equal(match(idx, "orders.eu", s, 4), 3);
  assert_int_equal(s[0].calls, 1);
  assert_int_equal(s[1].calls, 1);
  assert_int_equal(s[2].calls, 1);

  assert_int_equal(match(idx, "orders.eu.created", s, 4), 3);
  assert_int_equal(s[0].calls, 0); /* `*` is one segment only */
  assert_int_equal(s[1].calls, 1);
  assert_int_equal(s[2].calls, 1);
  assert_int_equal(s[3].calls, 1);

  assert_int_equal(match(idx, "shipping.eu.created", s, 4), 2);
  assert_int_equal(s[2].calls, 1);
  assert_int_equal(s[3].calls, 1);
  sub_index_free(idx);
}

/* One subscriber with overlapping patterns gets one call per match. */
static void test_overlap_delivers_once(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub s[2] = {0};
  const char *pats[] = {"a.*", "a.>", "a.b", ">", "*.b", "*.*", "*.>"};
  size_t np = sizeof(pats) / sizeof(pats[0]);
  for(size_t i = 0; i < np; i++)
    assert_int_equal(add(idx, pats[i], &s[0]), 0);
  assert_int_equal(add(idx, "a.b", &s[1]), 0);
  assert_int_equal(sub_index_entries(idx), np + 1);

  for(int round = 0; round < 3; round++) { /* the mark must reset each time */
    assert_int_equal(match(idx, "a.b", s, 2), 2);
    assert_int_equal(s[0].calls, 1);
    assert_int_equal(s[1].calls, 1);
  }
  assert_int_equal(match(idx, "a.c", s, 2), 1);
  assert_int_equal(s[0].calls, 1);
  assert_int_equal(match(idx, "a.b.c", s, 2), 1);
  assert_int_equal(s[0].calls, 1);

  /* take the patterns away one by one: still once while any matches */
  for(size_t i = 0; i < np; i++) {
    assert_int_equal(rm(idx, pats[i], &s[0]), 0);
    size_t n = match(idx, "a.b", s, 2);
    assert_int_equal(s[0].calls, i + 1 < np ? 1 : 0);
    assert_int_equal(n, (size_t)s[0].calls + 1);
  }
  assert_int_equal(rm(idx, "a.b", &s[1]), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  assert_int_equal(sub_index_entries(idx), 0);
  sub_index_free(idx);
}

static void test_several_subscribers(void **state)
{
  (void)state;
  enum { N = 50 };
  struct sub_index *idx = sub_index_new();
  struct sub s[N];
  memset(s, 0, sizeof(s));
  /* every subscriber on the same pattern, odd ones on a wildcard too */
  for(int i = 0; i < N; i++) {
    assert_int_equal(add(idx, "chat.lobby", &s[i]), 0);
    if(i % 2)
      assert_int_equal(add(idx, "chat.*", &s[i]), 0);
  }
  assert_int_equal(sub_index_entries(idx), N + N / 2);
  assert_int_equal(match(idx, "chat.lobby", s, N), N);
  for(int i = 0; i < N; i++)
    assert_int_equal(s[i].calls, 1);
  assert_int_equal(match(idx, "chat.other", s, N), N / 2);
  for(int i = 0; i < N; i++)
    assert_int_equal(s[i].calls, i % 2);

  /* remove every third from chat.lobby: the others still get it */
  for(int i = 0; i < N; i += 3)
    assert_int_equal(rm(idx, "chat.lobby", &s[i]), 0);
  size_t want = 0;
  for(int i = 0; i < N; i++)
    want += (i % 3 != 0 || i % 2) ? 1 : 0;
  assert_int_equal(want, 41); /* 50 minus the 9 even multiples of 3 */
  assert_int_equal(match(idx, "chat.lobby", s, N), want);
  for(int i = 0; i < N; i++)
    assert_int_equal(s[i].calls, (i % 3 != 0 || i % 2) ? 1 : 0);

  /* the pair must be exact: subscriber not under that pattern */
  assert_int_equal(rm(idx, "chat.lobby", &s[0]), -1);
  assert_int_equal(rm(idx, "chat.*", &s[0]), -1);
  assert_int_equal(rm(idx, "chat", &s[1]), -1);
  assert_int_equal(rm(idx, "chat.lobby.x", &s[1]), -1);
  assert_int_equal(rm(idx, "chat.>", &s[1]), -1);
  assert_int_equal(rm(idx, "*", &s[1]), -1);
  size_t nodes = sub_index_nodes(idx);
  size_t entries = sub_index_entries(idx);

  for(int i = 0; i < N; i++) {
    if(i % 3)
      assert_int_equal(rm(idx, "chat.lobby", &s[i]), 0);
    if(i % 2)
      assert_int_equal(rm(idx, "chat.*", &s[i]), 0);
  }
  assert_true(entries > 0 && nodes > 1);
  assert_int_equal(sub_index_entries(idx), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  assert_int_equal(match(idx, "chat.lobby", s, N), 0);
  sub_index_free(idx);
}

/* Removing one pattern frees only the nodes no other pattern uses. */
static void test_prune_keeps_shared_nodes(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub s[2] = {0};
  assert_int_equal(add(idx, "a.b.c", &s[0]), 0);
  assert_int_equal(add(idx, "a.b", &s[1]), 0);
  assert_int_equal(add(idx, "a.*.>", &s[1]), 0);
  assert_int_equal(sub_index_nodes(idx), 6); /* root a b c * > */

  assert_int_equal(rm(idx, "a.b.c", &s[0]), 0);
  assert_int_equal(sub_index_nodes(idx), 5);
  assert_int_equal(match(idx, "a.b", s, 2), 1);
  assert_int_equal(s[1].calls, 1);
  assert_int_equal(match(idx, "a.b.c", s, 2), 1);
  assert_int_equal(s[1].calls, 1);

  assert_int_equal(rm(idx, "a.b", &s[1]), 0);
  assert_int_equal(sub_index_nodes(idx), 4); /* root a * > */
  assert_int_equal(match(idx, "a.b", s, 2), 0);
  assert_int_equal(match(idx, "a.x.y", s, 2), 1);

  /* a wrong subscriber on an existing pattern changes nothing */
  assert_int_equal(rm(idx, "a.*.>", &s[0]), -1);
  assert_int_equal(sub_index_nodes(idx), 4);
  assert_int_equal(sub_index_entries(idx), 1);

  assert_int_equal(rm(idx, "a.*.>", &s[1]), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  assert_int_equal(sub_index_entries(idx), 0);

  /* the index is usable again after becoming empty */
  assert_int_equal(add(idx, "a.b.c", &s[0]), 0);
  assert_int_equal(match(idx, "a.b.c", s, 2), 1);
  assert_int_equal(rm(idx, "a.b.c", &s[0]), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  sub_index_free(idx);
}

/* Freeing an index that still holds subscriptions frees everything
 * (checked by the sanitizer and valgrind runs). */
static void test_free_nonempty(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub s[3] = {0};
  char t[64];
  for(int i = 0; i < 300; i++) {
    snprintf(t, sizeof(t), "x%d.y%d.z", i, i % 7);
    assert_int_equal(add(idx, t, &s[i % 3]), 0);
  }
  assert_int_equal(add(idx, ">", &s[0]), 0);
  assert_int_equal(add(idx, "*", &s[1]), 0);
  assert_int_equal(add(idx, "*.*.>", &s[2]), 0);
  assert_int_equal(add(idx, "x1", &s[2]), 0);
  assert_int_equal(match(idx, "x1.y1.z", s, 3), 3);
  sub_index_free(idx);
}

/* Many children under one node (and under the root) make the per-node hash
 * table grow many times; removing them in another order exercises the
 * backward-shift deletion, which must never lose a child still in use. */
enum { NTOPICS = 10000 };

static void topic_name(char *buf, size_t size, int i, int under_root)
{
  if(under_root)
    snprintf(buf, size, "r%d", i);
  else
    snprintf(buf, size, "many.c%d", i);
}

static void test_many_children(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct sub *s = calloc(NTOPICS, sizeof(*s));
  int *order = malloc(NTOPICS * sizeof(*order));
  unsigned char *present = calloc(NTOPICS, 1);
  assert_non_null(s);
  assert_non_null(order);
  assert_non_null(present);
  char t[64];

  for(int root = 0; root < 2; root++) {
    for(int i = 0; i < NTOPICS; i++) {
      topic_name(t, sizeof(t), i, root);
      assert_int_equal(add(idx, t, &s[i]), 0);
      present[i] = 1;
    }
    assert_int_equal(sub_index_entries(idx), NTOPICS);
    assert_int_equal(sub_index_nodes(idx), 1 + NTOPICS + (root ? 0 : 1));
    for(int i = 0; i < NTOPICS; i++) {
      topic_name(t, sizeof(t), i, root);
      s[i].calls = 0;
      assert_int_equal(sub_index_match(idx, t, strlen(t), count_call, NULL), 1);
      assert_int_equal(s[i].calls, 1);
    }
    /* absent siblings find nothing */
    topic_name(t, sizeof(t), NTOPICS, root);
    assert_int_equal(sub_index_match(idx, t, strlen(t), count_call, NULL), 0);

    /* remove in a shuffled order, in batches, checking everything after each */
    for(int i = 0; i < NTOPICS; i++)
      order[i] = i;
    srand(1234 + root);
    for(int i = NTOPICS - 1; i > 0; i--) {
      int j = rand() % (i + 1);
      int tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
    }
    int removed = 0;
    int batch = 1;
    while(removed < NTOPICS) {
      for(int k = 0; k < batch && removed < NTOPICS; k++, removed++) {
        int i = order[removed];
        topic_name(t, sizeof(t), i, root);
        assert_int_equal(rm(idx, t, &s[i]), 0);
        assert_int_equal(rm(idx, t, &s[i]), -1);
        present[i] = 0;
      }
      batch *= 2;
      assert_int_equal(sub_index_entries(idx), (size_t)(NTOPICS - removed));
      if(removed < NTOPICS)
        assert_int_equal(sub_index_nodes(idx), 1 + (size_t)(NTOPICS - removed) + (root ? 0 : 1));
      for(int i = 0; i < NTOPICS; i++) {
        topic_name(t, sizeof(t), i, root);
        s[i].calls = 0;
        size_t n = sub_index_match(idx, t, strlen(t), count_call, NULL);
        if(n != present[i] || s[i].calls != present[i])
          fail_msg("after %d removals, %s matched %zu (present %d)", removed, t, n, present[i]);
      }
    }
    assert_int_equal(sub_index_nodes(idx), 1);
    assert_int_equal(sub_index_entries(idx), 0);
  }
  free(present);
  free(order);
  free(s);
  sub_index_free(idx);
}

/* The index must agree with the reference matcher on random input. Small
 * alphabet and short topics so that patterns match often. */
enum { NSUBS = 500, NPATTERNS = 3000, NPROBES = 3000 };

static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
  rng_state ^= rng_state << 13; /* xorshift64: the same sequence everywhere */
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

static void random_name(char *buf, bool pattern)
{
  static const char *segs[] = {"a", "b", "c", "ab"};
  int depth = 1 + (int)rnd(4);
  buf[0] = '\0';
  for(int i = 0; i < depth; i++) {
    const char *seg;
    unsigned r = rnd(10);
    if(pattern && r == 0)
      seg = "*";
    else if(pattern && r == 1 && i == depth - 1)
      seg = ">";
    else
      seg = segs[rnd(4)];
    if(i)
      strcat(buf, ".");
    strcat(buf, seg);
  }
}

struct pair {
  char pattern[32];
  int sub;
  bool live;
};

struct cross {
  struct sub subs[NSUBS];
  size_t probes, hits; /* to show the check is not vacuous */
};

static void cross_check(struct sub_index *idx, struct cross *c, struct pair *pairs, int npairs,
                        int nprobes)
{
  char topic[32];
  for(int p = 0; p < nprobes; p++) {
    random_name(topic, false);
    assert_true(sub_topic_valid(topic, strlen(topic), NULL));
    bool want[NSUBS] = {false};
    size_t nwant = 0;
    for(int i = 0; i < npairs; i++) {
      if(pairs[i].live && !want[pairs[i].sub] &&
         sub_pattern_matches(pairs[i].pattern, topic)) {
        want[pairs[i].sub] = true;
        nwant++;
      }
    }
    size_t n = match(idx, topic, c->subs, NSUBS);
    c->probes++;
    c->hits += nwant;
    if(n != nwant)
      fail_msg("topic %s: index matched %zu subscribers, reference %zu", topic, n, nwant);
    for(int k = 0; k < NSUBS; k++)
      if(c->subs[k].calls != (int)want[k])
        fail_msg("topic %s: subscriber %d called %d times, want %d", topic, k,
                 c->subs[k].calls, want[k]);
  }
}

static void test_random_cross_check(void **state)
{
  (void)state;
  struct sub_index *idx = sub_index_new();
  struct cross *c = calloc(1, sizeof(*c));
  struct pair *pairs = calloc(NPATTERNS, sizeof(*pairs));
  assert_non_null(c);
  assert_non_null(pairs);
  int npairs = 0;
  size_t live = 0;

  rng_state = 0x9e3779b97f4a7c15ull;
  while(npairs < NPATTERNS) {
    struct pair *p = &pairs[npairs];
    random_name(p->pattern, true);
    p->sub = (int)rnd(NSUBS);
    assert_true(sub_pattern_valid(p->pattern, strlen(p->pattern), NULL));
    bool dup = false; /* the caller keeps (pattern, subscriber) pairs unique */
    for(int i = 0; i < npairs && !dup; i++)
      dup = pairs[i].sub == p->sub && strcmp(pairs[i].pattern, p->pattern) == 0;
    if(dup) {
      /* a duplicate: use it to remove a random live pair instead */
      int victim = (int)rnd((unsigned)npairs);
      if(pairs[victim].live) {
        assert_int_equal(rm(idx, pairs[victim].pattern, &c->subs[pairs[victim].sub]), 0);
        pairs[victim].live = false;
        live--;
      }
      continue;
    }
    assert_int_equal(add(idx, p->pattern, &c->subs[p->sub]), 0);
    p->live = true;
    live++;
    npairs++;
    if(npairs % 500 == 0) {
      assert_int_equal(sub_index_entries(idx), live);
      cross_check(idx, c, pairs, npairs, NPROBES / 6);
    }
  }
  /* Duplicates are common with this alphabet; some removals happened. */
  assert_true(live < (size_t)npairs);
  c->probes = c->hits = 0;
  cross_check(idx, c, pairs, npairs, NPROBES);
  /* topics match many subscribers, but far from all of them */
  assert_true(c->hits > c->probes * 20);
  assert_true(c->hits < c->probes * NSUBS / 2);

  /* remove everything in a different order, re-checking on the way */
  for(int i = npairs - 1; i >= 0; i--) {
    int k = (i * 7919) % npairs; /* a permutation: 7919 is prime, npairs is not a multiple */
    if(!pairs[k].live)
      continue;
    assert_int_equal(rm(idx, pairs[k].pattern, &c->subs[pairs[k].sub]), 0);
    pairs[k].live = false;
    live--;
    if(live % 500 == 0)
      cross_check(idx, c, pairs, npairs, NPROBES / 10);
  }
  assert_int_equal(live, 0);
  assert_int_equal(sub_index_entries(idx), 0);
  assert_int_equal(sub_index_nodes(idx), 1);
  free(pairs);
  free(c);
  sub_index_free(idx);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_add_match_remove),
      cmocka_unit_test(test_wildcards),
      cmocka_unit_test(test_overlap_delivers_once),
      cmocka_unit_test(test_several_subscribers),
      cmocka_unit_test(test_prune_keeps_shared_nodes),
      cmocka_unit_test(test_free_nonempty),
      cmocka_unit_test(test_many_children),
      cmocka_unit_test(test_random_cross_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
