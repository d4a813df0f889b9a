/* The history store (history/store.h) on a temporary directory: what the
 * log relies on to go on after a restart with the same epoch, offsets,
 * seqs and retained events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"
#include "store.h"
#include "util/dynbuf.h"

#define T0 1700000000000ULL /* a fixed "now" in ms */
#define EPOCH "abc123de"

struct fixture {
  char dir[64];
  char path[128];
  struct hist_store *s;
};

static struct hist_store *open_dir(const char *dir)
{
  char err[512] = "";
  struct hist_store *s = hist_store_open(dir, err, sizeof(err));
  if(!s)
    fail_msg("open: %s", err);
  return s;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/herald-hist-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  hist_store_close(f->s);
  const char *suffix[] = {"", "-wal", "-shm", "-journal"};
  for(size_t i = 0; i < 4; i++) {
    char p[160];
    snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
    unlink(p);
  }
  assert_int_equal(rmdir(f->dir), 0);
  free(f);
  return 0;
}

static void reopen(struct fixture *f)
{
  hist_store_close(f->s);
  f->s = open_dir(f->dir);
}

/* ---- helpers ---- */

/* An event as the log hands it to the store: offset, seq, ms, max_age_ms
 * set; data of `pad` extra bytes. */
static struct sub_event *event(const char *topic, uint64_t offset, uint64_t seq, uint64_t ms,
                               uint64_t max_age_ms, size_t pad)
{
  char id[SUB_ID_LEN + 1];
  snprintf(id, sizeof(id), "0190a1b2-c3d4-7e5f-8a6b-%012llu", (unsigned long long)offset);
  char data[256];
  assert_true(pad < 200);
  int n = snprintf(data, sizeof(data), "{\"n\":\"%06llu\",\"p\":\"%*s\"}",
                   (unsigned long long)offset, (int)pad, "");
  struct sub_event *ev = sub_event_new(topic, strlen(topic), seq, id, ms, data, (size_t)n);
  assert_non_null(ev);
  ev->offset = offset;
  ev->max_age_ms = max_age_ms;
  return ev;
}

/* Appends one batch through the seam. Returns what append returned. */
static int append(struct hist_store *s, struct sub_event **ev, size_t n)
{
  const struct sub_log_store *seam = hist_store_seam(s);
  int rc = seam->append(seam->arg, ev, n);
  for(size_t i = 0; i < n; i++)
    sub_event_unref(ev[i]);
  return rc;
}

/* Offsets 1..n, topics "a.x" and "b.y" in turn, seq = offset, ms = T0 + offset. */
static void append_run(struct hist_store *s, uint64_t from, uint64_t n)
{
  struct sub_event *ev[64];
  assert_true(n <= 64);
  for(uint64_t i = 0; i < n; i++) {
    uint64_t o = from + i;
    ev[i] = event(o % 2 ? "a.x" : "b.y", o, o, T0 + o, 0, 0);
  }
  assert_int_equal(append(s, ev, n), 0);
}

#define MAX_LOADED 64

struct loaded {
  struct sub_event *ev[MAX_LOADED];
  size_t n;
  char topic[8][32];
  uint64_t seq[8];
  size_t ntopics;
  size_t stop_at; /* on_event fails at this event (1-based; 0: never) */
};

static int on_event(void *arg, struct sub_event *ev)
{
  struct loaded *l = arg;
  assert_true(l->n < MAX_LOADED);
  l->ev[l->n++] = ev;
  return l->stop_at && l->n == l->stop_at ? -1 : 0;
}

static int on_seq(void *arg, const char *topic, size_t len, uint64_t seq)
{
  struct loaded *l = arg;
  assert_true(l->ntopics < 8 && len < 32);
  memcpy(l->topic[l->ntopics], topic, len);
  l->topic[l->ntopics][len] = '\0';
  l->seq[l->ntopics++] = seq;
  return 0;
}

static void loaded_clear(struct loaded *l)
{
  for(size_t i = 0; i < l->n; i++)
    sub_event_unref(l->ev[i]);
  memset(l, 0, sizeof(*l));
}

static struct loaded load(struct hist_store *s, size_t max_events, size_t max_bytes,
                          uint64_t min_ms)
{
  struct loaded l = {.n = 0};
  int lrc = hist_store_load(s, max_events, max_bytes, min_ms, on_event, on_seq, &l);
  if(lrc)
    fprintf(stderr, "load: %s\n", hist_store_errmsg(s));
  assert_int_equal(lrc, 0);
  return l;
}

/* The seq stored for topic (0: none reported). */
static uint64_t seq_of(const struct loaded *l, const char *topic)
{
  for(size_t i = 0; i < l->ntopics; i++)
    if(strcmp(l->topic[i], topic) == 0)
      return l->seq[i];
  return 0;
}

static void assert_offsets(const struct loaded *l, uint64_t first, uint64_t last)
{
  assert_int_equal(l->n, last - first + 1);
  for(size_t i = 0; i < l->n; i++)
    assert_int_equal(l->ev[i]->offset, first + i);
}

static void prune(struct hist_store *s, uint64_t first)
{
  const struct sub_log_store *seam = hist_store_seam(s);
  seam->prune(seam->arg, first);
}

/* Runs one SQL script on the file with a connection of the test's own. */
static void sql_on(const char *path, const char *sql)
{
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* ---- tests ---- */

static void test_fresh(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next = 0;
  bool found = true;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_false(found);
  assert_string_equal(epoch, "");
  assert_int_equal(next, 1);
  struct loaded l = load(f->s, 0, 0, 0);
  assert_int_equal(l.n, 0);
  assert_int_equal(l.ntopics, 0);
}

/* What a restart restores: the epoch, the next offset and every event with
 * all its fields, in offset order. */
static void test_round_trip(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  struct sub_event *ev[3] = {event("orders.eu", 1, 7, T0 + 1, 0, 0),
                             event("prices.x-1_Z", 2, 3, T0 + 2, 60000, 5),
                             event("orders.eu", 3, 8, T0 + 3, 0, 0)};
  assert_int_equal(append(f->s, ev, 3), 0);
  struct sub_event *more[1] = {event("orders.us", 4, 1, T0 + 4, 0, 0)};
  assert_int_equal(append(f->s, more, 1), 0);
  reopen(f);

  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next;
  bool found;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_true(found);
  assert_string_equal(epoch, EPOCH);
  assert_int_equal(next, 5);

  struct loaded l = load(f->s, 0, 0, 0);
  assert_offsets(&l, 1, 4);
  struct sub_event *e = l.ev[1];
  assert_string_equal(e->topic, "prices.x-1_Z");
  assert_int_equal(e->topic_len, strlen("prices.x-1_Z"));
  assert_int_equal(e->seq, 3);
  assert_int_equal(e->ms, T0 + 2);
  assert_int_equal(e->max_age_ms, 60000);
  assert_string_equal(e->id, "0190a1b2-c3d4-7e5f-8a6b-000000000002");
  assert_string_equal(e->data, "{\"n\":\"000002\",\"p\":\"     \"}");
  assert_int_equal(e->data_len, strlen(e->data));
  assert_int_equal(e->size, sub_event_size(e->topic_len, e->data_len));
  assert_int_equal(l.ev[0]->max_age_ms, 0);
  assert_int_equal(l.ntopics, 3);
  assert_int_equal(seq_of(&l, "orders.eu"), 8);
  assert_int_equal(seq_of(&l, "prices.x-1_Z"), 3);
  assert_int_equal(seq_of(&l, "orders.us"), 1);
  loaded_clear(&l);
}

/* The next offset is the recorded one when it is past the last event (the
 * log gave offsets whose events were dropped), else the last + 1. */
static void test_next_offset(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 100), 0);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next;
  bool found;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_int_equal(next, 100);
  append_run(f->s, 100, 3);
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_int_equal(next, 103);
  /* every event pruned: the offsets still go on */
  prune(f->s, 103);
  reopen(f);
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_true(found);
  assert_int_equal(next, 103);
}

static void test_bounds(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  append_run(f->s, 1, 10);

  struct loaded l = load(f->s, 3, 0, 0); /* the newest 3 */
  assert_offsets(&l, 8, 10);
  assert_int_equal(l.ntopics, 2);
  loaded_clear(&l);

  l = load(f->s, 100, 0, 0);
  assert_offsets(&l, 1, 10);
  loaded_clear(&l);

  l = load(f->s, 0, 0, 0); /* every event of append_run has the same size */
  size_t size = l.ev[9]->size;
  assert_int_equal(l.ev[0]->size, size);
  loaded_clear(&l);

  l = load(f->s, 0, 4 * size, 0); /* exactly 4 fit */
  assert_offsets(&l, 7, 10);
  loaded_clear(&l);
  l = load(f->s, 0, 4 * size - 1, 0);
  assert_offsets(&l, 8, 10);
  loaded_clear(&l);
  l = load(f->s, 0, size - 1, 0); /* not even the newest */
  assert_int_equal(l.n, 0);
  assert_int_equal(l.ntopics, 2); /* seqs come all the same */
  loaded_clear(&l);

  l = load(f->s, 0, 0, T0 + 6);
  assert_offsets(&l, 6, 10);
  loaded_clear(&l);
  l = load(f->s, 0, 0, T0 + 11);
  assert_int_equal(l.n, 0);
  loaded_clear(&l);

  l = load(f->s, 2, 3 * size, T0 + 5); /* the tightest bound wins */
  assert_offsets(&l, 9, 10);
  loaded_clear(&l);
  l = load(f->s, 5, 2 * size, T0 + 5);
  assert_offsets(&l, 9, 10);
  loaded_clear(&l);
}

/* A topic's seq survives the pruning of all its events (and a reset):
 * after a restart its seq goes on, never back. */
static void test_seq_after_prune(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  struct sub_event *ev[4] = {event("gone.t", 1, 41, T0, 0, 0), event("gone.t", 2, 42, T0, 0, 0),
                             event("kept.t", 3, 5, T0, 0, 0), event("kept.t", 4, 4, T0, 0, 0)};
  /* a batch's topics are written once, at their last (highest) seq: a
   * topic's events come in seq order; across batches the store keeps the max */
  assert_int_equal(append(f->s, ev, 2), 0);
  assert_int_equal(append(f->s, ev + 2, 1), 0);
  assert_int_equal(append(f->s, ev + 3, 1), 0);
  prune(f->s, 3); /* the first commit's events are all below 3: gone */
  reopen(f);
  struct loaded l = load(f->s, 0, 0, 0);
  assert_offsets(&l, 3, 4);
  assert_int_equal(l.ntopics, 2);
  assert_int_equal(seq_of(&l, "gone.t"), 42);
  assert_int_equal(seq_of(&l, "kept.t"), 5); /* the max, not the last */
  loaded_clear(&l);

  assert_int_equal(hist_store_reset(f->s, "zzzz9999", 10), 0);
  l = load(f->s, 0, 0, 0);
  assert_int_equal(l.n, 0);
  assert_int_equal(seq_of(&l, "gone.t"), 42);
  loaded_clear(&l);
}

/* Offsets of dropped events are never stored: the holes load as they are. */
static void test_holes(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  struct sub_event *ev[3] = {event("a.x", 2, 1, T0, 0, 0), event("a.x", 5, 2, T0, 0, 0),
                             event("a.x", 6, 3, T0, 0, 0)};
  assert_int_equal(append(f->s, ev, 3), 0);
  struct sub_event *more[1] = {event("a.x", 9, 4, T0, 0, 0)};
  assert_int_equal(append(f->s, more, 1), 0);
  reopen(f);
  struct loaded l = load(f->s, 0, 0, 0);
  assert_int_equal(l.n, 4);
  const uint64_t want[4] = {2, 5, 6, 9};
  for(size_t i = 0; i < 4; i++)
    assert_int_equal(l.ev[i]->offset, want[i]);
  loaded_clear(&l);
  l = load(f->s, 3, 0, 0); /* the newest 3 rows, holes not counted */
  assert_int_equal(l.n, 3);
  assert_int_equal(l.ev[0]->offset, 5);
  loaded_clear(&l);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next;
  bool found;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_int_equal(next, 10);
}

/* Prune deletes below its offset only, in chunks however many there are. */
static void test_prune(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  /* commits of 10 events (2,500 segments: more than two prune chunks),
   * the last three events a commit each (a prune removes whole segments) */
  enum { N = 25000 };
  struct sub_event **ev = calloc(N, sizeof(*ev));
  assert_non_null(ev);
  for(uint64_t i = 0; i < N; i++)
    ev[i] = event("bulk.t", i + 1, i + 1, T0 + i, 0, 0);
  for(size_t i = 0; i < N - 3; i += 10) {
    size_t n = N - 3 - i < 10 ? N - 3 - i : 10;
    assert_int_equal(append(f->s, ev + i, n), 0);
  }
  for(size_t i = N - 3; i < N; i++)
    assert_int_equal(append(f->s, ev + i, 1), 0);
  free(ev);
  prune(f->s, 1); /* nothing below the first */
  struct loaded l = load(f->s, 1, 0, 0);
  assert_offsets(&l, N, N);
  loaded_clear(&l);
  prune(f->s, N - 2);
  reopen(f);
  l = load(f->s, 0, 0, 0);
  assert_offsets(&l, N - 2, N);
  assert_int_equal(seq_of(&l, "bulk.t"), N);
  loaded_clear(&l);
}

/* A failed batch leaves nothing of itself: not its events, not its seqs. */
static void test_append_rolls_back(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  append_run(f->s, 1, 2);
  /* a commit from offset 1 again: the segments' primary key refuses it */
  struct sub_event *ev[3] = {event("new.t", 1, 9, T0, 0, 0), event("new.t", 3, 10, T0, 0, 0),
                             event("new.t", 4, 11, T0, 0, 0)};
  assert_int_equal(append(f->s, ev, 3), -1);
  struct loaded l = load(f->s, 0, 0, 0);
  assert_offsets(&l, 1, 2);
  assert_int_equal(seq_of(&l, "new.t"), 0);
  loaded_clear(&l);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next;
  bool found;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_int_equal(next, 3);
  append_run(f->s, 3, 1); /* and the store goes on */
  l = load(f->s, 0, 0, 0);
  assert_offsets(&l, 1, 3);
  loaded_clear(&l);
}

/* on_event failing stops the load with an error; the events it got are its. */
static void test_load_stops(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  append_run(f->s, 1, 5);
  struct loaded l = {.stop_at = 2};
  assert_int_equal(hist_store_load(f->s, 0, 0, 0, on_event, on_seq, &l), -1);
  assert_int_equal(l.n, 2);
  assert_int_equal(l.ntopics, 0);
  assert_string_not_equal(hist_store_errmsg(f->s), "");
  loaded_clear(&l);
  l = load(f->s, 0, 0, 0); /* the statements were reset */
  assert_offsets(&l, 1, 5);
  loaded_clear(&l);
}

static void test_reset_forgets(void **state)
{
  struct fixture *f = *state;
  f->s = open_dir(f->dir);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  append_run(f->s, 1, 4);
  assert_int_equal(hist_store_reset(f->s, "newepoch", 1), 0);
  reopen(f);
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next;
  bool found;
  assert_int_equal(hist_store_meta(f->s, epoch, &next, &found), 0);
  assert_true(found);
  assert_string_equal(epoch, "newepoch");
  assert_int_equal(next, 1);
  struct loaded l = load(f->s, 0, 0, 0);
  assert_int_equal(l.n, 0);
  loaded_clear(&l);
  assert_int_equal(hist_store_reset(f->s, "short", 1), -1);
  assert_int_equal(hist_store_reset(f->s, "UPPER123", 1), -1);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 0), -1);
}

/* The file holds the publishers' data: 0600 whatever the umask. */
static void test_file_mode(void **state)
{
  struct fixture *f = *state;
  mode_t old = umask(0);
  f->s = open_dir(f->dir);
  umask(old);
  assert_int_equal(hist_store_reset(f->s, EPOCH, 1), 0);
  append_run(f->s, 1, 1);
  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char wal[160];
  snprintf(wal, sizeof(wal), "%s-wal", f->path);
  assert_int_equal(stat(wal, &st), 0); /* WAL mode */
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void assert_refused(const char *dir, const char *what)
{
  char err[512] = "";
  struct hist_store *s = hist_store_open(dir, err, sizeof(err));
  assert_null(s);
  if(!strstr(err, what))
    fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void test_refusals(void **state)
{
  struct fixture *f = *state;
  FILE *fp = fopen(f->path, "w");
  assert_non_null(fp);
  fputs("this is not a database, but it is long enough to have a header.....\n", fp);
  fclose(fp);
  assert_refused(f->dir, "not a database");
  unlink(f->path);

  char missing[128];
  snprintf(missing, sizeof(missing), "%s/none", f->dir);
  assert_refused(missing, "data_dir");

  /* a newer heraldd's file */
  f->s = open_dir(f->dir);
  hist_store_close(f->s);
  f->s = NULL;
  sql_on(f->path, "PRAGMA user_version=2");
  assert_refused(f->dir, "schema version 2");
  unlink(f->path);

  /* some other program's database */
  sql_on(f->path, "CREATE TABLE t(x)");
  assert_refused(f->dir, "not a Herald history store");
  unlink(f->path);

  char err[8];
  assert_null(hist_store_open(missing, err, sizeof(err))); /* a short buffer is cut */
  assert_int_equal(strlen(err), sizeof(err) - 1);
}

/* ---- the segment codec ---- */

static int take(void *arg, struct sub_event *ev)
{
  struct sub_event **out = arg;
  assert_null(*out);
  *out = ev;
  return 0;
}

static void put64_at(unsigned char *p, uint64_t v)
{
  for(int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* An event round-trips; a damaged one (cut short, a time or a retention
 * past year 9999) is refused, not decoded into nonsense. */
static void test_segment_codec(void **state)
{
  (void)state;
  struct sub_event *ev = event("a.b", 7, 3, 1700000000123ull, 5000, 4);
  struct util_dynbuf b;
  util_dynbuf_init(&b, 1 << 20);
  assert_int_equal(hist_segment_put(&b, ev), 0);
  size_t len = util_dynbuf_len(&b);
  unsigned char *p = malloc(len);
  assert_non_null(p);
  memcpy(p, util_dynbuf_ptr(&b), len);
  struct sub_event *got = NULL;
  assert_int_equal(hist_segment_decode(p, len, take, &got), 1);
  assert_non_null(got);
  assert_int_equal(got->offset, 7);
  assert_int_equal(got->seq, 3);
  assert_int_equal(got->ms, 1700000000123ull);
  assert_int_equal(got->max_age_ms, 5000);
  assert_string_equal(got->topic, "a.b");
  assert_string_equal(got->data, ev->data);
  sub_event_unref(got);
  got = NULL;
  assert_int_equal(hist_segment_decode(p, len - 1, take, &got), -1);
  assert_null(got);
  unsigned char *q = malloc(len);
  assert_non_null(q);
  memcpy(q, p, len);
  put64_at(q + 8, 253402300800000ull); /* ms: 10000-01-01 */
  assert_int_equal(hist_segment_decode(q, len, take, &got), -1);
  memcpy(q, p, len);
  put64_at(q + 24, UINT64_MAX); /* max_age_ms */
  assert_int_equal(hist_segment_decode(q, len, take, &got), -1);
  memcpy(q, p, len);
  put64_at(q + 8, 253402300799999ull); /* the last millisecond of 9999 is fine */
  assert_int_equal(hist_segment_decode(q, len, take, &got), 1);
  sub_event_unref(got);
  free(q);
  free(p);
  util_dynbuf_free(&b);
  sub_event_unref(ev);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_segment_codec),
      cmocka_unit_test_setup_teardown(test_fresh, setup, teardown),
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_next_offset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seq_after_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_holes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_append_rolls_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_stops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reset_forgets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
