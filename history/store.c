/* The history store in SQLite: every statement the history log runs.
 *
 * One file, <data_dir>/history.db, in WAL mode with synchronous=NORMAL: a
 * commit survives a crash of the process (not always a power loss), which
 * is what docs/history.md promises, for a fraction of FULL's fsyncs. The
 * schema has a version (PRAGMA user_version); a newer one is refused.
 *
 * Tables:
 *   meta    one row: the log's epoch and the next offset it gives
 *   segments  the retained events, one row per commit of the log's writer
 *           (segment.h: one blob of its events), keyed by its first
 *           offset, with its last
 *   topics  the highest seq of topics whose events left `segments`: written
 *           when segments are pruned (and at load), not per commit, since
 *           each stored event carries its own seq
 * A commit of the log's writer is one INSERT of one segment and nothing
 * else: the next offset is the last segment's last + 1 (meta's only once
 * every segment was pruned). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "id.h"
#include "segment.h"
#include "topic.h"
#include "util/throttle.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 5000
#define PRUNE_CHUNK 1000 /* segments one DELETE removes: the write lock is let go between */

static const char schema_sql[] =
    "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK(id = 1), epoch TEXT NOT NULL,"
    " next INTEGER NOT NULL);"
    "CREATE TABLE segments(first INTEGER PRIMARY KEY, last INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE TABLE topics(topic TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;";

/* Prepared once at open, kept for the life of the store. */
enum {
  TX_BEGIN,
  TX_COMMIT,
  TX_ROLLBACK,
  INS_SEGMENT,
  UPS_SEQ,
  UPD_NEXT,
  SEL_BELOW,
  DEL_BELOW,
  DEL_ALL,
  SET_META,
  SEL_META,
  SEL_LAST,
  SEL_SCAN,
  SEL_SEQS,
  STMTS
};

static const char *const stmt_sql[STMTS] = {
    [TX_BEGIN] = "BEGIN IMMEDIATE",
    [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",
    [INS_SEGMENT] = "INSERT INTO segments(first,last,body) VALUES(?1,?2,?3)",
    [UPS_SEQ] = ("INSERT INTO topics(topic,seq) VALUES(?1,?2) ON CONFLICT(topic)"
                 " DO UPDATE SET seq=max(seq,excluded.seq)"),
    /* a segment goes once all of it is below the log's first offset */
    [UPD_NEXT] = "UPDATE meta SET next=max(next,?1) WHERE id=1",
    [SEL_BELOW] = "SELECT first, body, last FROM segments WHERE last<?1 ORDER BY first LIMIT ?2",
    [DEL_BELOW] = "DELETE FROM segments WHERE first<=?1 AND last<?2",
    [DEL_ALL] = "DELETE FROM segments",
    [SET_META] = "INSERT OR REPLACE INTO meta(id,epoch,next) VALUES(1,?1,?2)",
    [SEL_META] = "SELECT epoch, next FROM meta WHERE id=1",
    [SEL_LAST] = "SELECT max(last) FROM segments",
    [SEL_SCAN] = "SELECT first, body FROM segments ORDER BY first DESC",
    [SEL_SEQS] = "SELECT topic, seq FROM topics",
};

struct hist_store {
  sqlite3 *db;
  sqlite3_stmt *st[STMTS];
  struct sub_log_store seam;
  struct util_throttle log_throttle; /* the writer's failure lines */
  struct util_dynbuf seg;            /* the writer's segment being built */
  char msg[256];                     /* the last failure */
};

/* Records the connection's last failure (quotes and line ends taken out:
 * it goes into a log line). Returns -1. */
static int fail(struct hist_store *s)
{
  snprintf(s->msg, sizeof(s->msg), "%s", sqlite3_errmsg(s->db));
  for(char *p = s->msg; *p; p++)
    if(*p == '"' || *p == '\n' || *p == '\r')
      *p = ' ';
  return -1;
}

/* Records a failure of our own. Returns -1. */
static int fail_msg(struct hist_store *s, const char *msg)
{
  snprintf(s->msg, sizeof(s->msg), "%s", msg);
  return -1;
}

/* Steps a statement that returns no row and resets it. Returns 0, or -1
 * (recorded). */
static int run(struct hist_store *s, sqlite3_stmt *st)
{
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(s);
  sqlite3_reset(st);
  return rc;
}

/* Rolls back the open transaction, if SQLite has not already. */
static void rollback(struct hist_store *s)
{
  if(!sqlite3_get_autocommit(s->db)) {
    sqlite3_step(s->st[TX_ROLLBACK]);
    sqlite3_reset(s->st[TX_ROLLBACK]);
  }
}

/* One line per failure of the writer, one a second at most: a full disk
 * fails every commit. */
static void log_failure(struct hist_store *s, const char *op, size_t events)
{
  unsigned long suppressed;
  if(!util_throttle_ok(&s->log_throttle, time(NULL), &suppressed))
    return;
  char ts[SUB_TIME_LEN + 1];
  sub_time_format(sub_now_ms(), ts);
  char line[512];
  int n = snprintf(line, sizeof(line),
                   "ts=%s level=error event=history_store_failed op=%s events=%zu"
                   " error=\"%s\" suppressed=%lu\n",
                   ts, op, events, s->msg, suppressed);
  if(n <= 0)
    return;
  if((size_t)n >= sizeof(line)) { /* cut, but keep the line a line */
    n = (int)sizeof(line) - 1;
    line[n - 1] = '\n';
  }
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

/* ---- the writer's seam ---- */

static int write_seq(struct hist_store *s, const struct sub_event *ev)
{
  sqlite3_stmt *seq = s->st[UPS_SEQ];
  sqlite3_bind_text(seq, 1, ev->topic, (int)ev->topic_len, SQLITE_STATIC);
  sqlite3_bind_int64(seq, 2, (sqlite3_int64)ev->seq);
  return run(s, seq);
}

#define SEQ_SLOTS 2048 /* > the log's batch (1,024): a table of the batch's topics */

/* Upserts each topic's seq once per batch: its last event's, the highest
 * (a topic's events come in seq order). Returns 0 or -1. */
static int write_seqs(struct hist_store *s, struct sub_event *const *ev, size_t n)
{
  const struct sub_event *seen[SEQ_SLOTS];
  if(n > SEQ_SLOTS / 2) { /* not from the log's writer: one upsert per event */
    for(size_t i = 0; i < n; i++)
      if(write_seq(s, ev[i]))
        return -1;
    return 0;
  }
  memset(seen, 0, sizeof(seen));
  for(size_t i = n; i-- > 0;) {
    size_t k = sub_topic_hash(ev[i]->topic, ev[i]->topic_len) & (SEQ_SLOTS - 1);
    bool dup = false;
    for(; seen[k]; k = (k + 1) & (SEQ_SLOTS - 1))
      if(seen[k]->topic_len == ev[i]->topic_len &&
         memcmp(seen[k]->topic, ev[i]->topic, ev[i]->topic_len) == 0) {
        dup = true;
        break;
      }
    if(dup)
      continue;
    seen[k] = ev[i];
    if(write_seq(s, ev[i]))
      return -1;
  }
  return 0;
}

static int seam_append(void *arg, struct sub_event *const *ev, size_t n)
{
  struct hist_store *s = arg;
  if(!n)
    return 0;
  util_dynbuf_reset(&s->seg);
  for(size_t i = 0; i < n; i++)
    if(hist_segment_put(&s->seg, ev[i])) {
      fail_msg(s, "out of memory");
      log_failure(s, "append", n);
      return -1;
    }
  /* One statement, its own transaction: the segment holds each event's
   * seq, and the next offset is the last segment's last + 1, so nothing
   * else is written per commit (topics' seqs go to `topics` at prune). */
  sqlite3_stmt *ins = s->st[INS_SEGMENT];
  sqlite3_bind_int64(ins, 1, (sqlite3_int64)ev[0]->offset);
  sqlite3_bind_int64(ins, 2, (sqlite3_int64)ev[n - 1]->offset);
  sqlite3_bind_blob(ins, 3, util_dynbuf_ptr(&s->seg), (int)util_dynbuf_len(&s->seg),
                    SQLITE_STATIC);
  int rc = run(s, ins);
  if(rc)
    log_failure(s, "append", n);
  return rc;
}

/* The events of a segment being pruned: their topics' seqs are kept. */
struct seqs_of {
  struct hist_store *s;
  struct sub_event *ev[1024];
  size_t n;
  int rc;
};

static int seq_event(void *arg, struct sub_event *ev)
{
  struct seqs_of *so = arg;
  if(so->n == sizeof(so->ev) / sizeof(so->ev[0])) { /* a long segment: flush */
    if(!so->rc)
      so->rc = write_seqs(so->s, so->ev, so->n);
    for(size_t i = 0; i < so->n; i++)
      sub_event_unref(so->ev[i]);
    so->n = 0;
  }
  so->ev[so->n++] = ev;
  return 0;
}

/* Removes up to PRUNE_CHUNK segments wholly below first, in one
 * transaction, their topics' seqs written to `topics` first. Returns the
 * number removed, or -1. */
static int prune_chunk(struct hist_store *s, uint64_t first)
{
  sqlite3_stmt *sel = s->st[SEL_BELOW], *del = s->st[DEL_BELOW];
  int rc = run(s, s->st[TX_BEGIN]), n = 0, step = SQLITE_DONE;
  sqlite3_int64 upto = 0, last = 0;
  struct seqs_of *so = rc ? NULL : calloc(1, sizeof(*so));
  if(!rc && !so)
    rc = fail_msg(s, "out of memory");
  if(!rc) {
    so->s = s;
    sqlite3_bind_int64(sel, 1, (sqlite3_int64)first);
    sqlite3_bind_int(sel, 2, PRUNE_CHUNK);
    /* SEL_BELOW: first, body, last */
    while(!rc && (step = sqlite3_step(sel)) == SQLITE_ROW) {
      upto = sqlite3_column_int64(sel, 0);
      if(sqlite3_column_int64(sel, 2) > last)
        last = sqlite3_column_int64(sel, 2);
      /* a damaged segment has no seqs to keep: it goes all the same */
      hist_segment_decode(sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1),
                          seq_event, so);
      if(so->n)
        rc = so->rc ? so->rc : write_seqs(s, so->ev, so->n);
      for(size_t i = 0; i < so->n; i++)
        sub_event_unref(so->ev[i]);
      so->n = 0;
      n++;
    }
    if(!rc && step != SQLITE_DONE && step != SQLITE_ROW)
      rc = fail(s);
    sqlite3_reset(sel);
  }
  free(so);
  if(!rc && n) {
    sqlite3_bind_int64(del, 1, upto);
    sqlite3_bind_int64(del, 2, (sqlite3_int64)first);
    rc = run(s, del);
  }
  if(!rc && n) { /* the offsets go on after the last segment is gone */
    sqlite3_bind_int64(s->st[UPD_NEXT], 1, last + 1);
    rc = run(s, s->st[UPD_NEXT]);
  }
  if(!rc)
    rc = run(s, s->st[TX_COMMIT]);
  if(rc) {
    rollback(s);
    return -1;
  }
  return n;
}

static void seam_prune(void *arg, uint64_t first)
{
  struct hist_store *s = arg;
  int n;
  /* each chunk its own transaction: the store never holds the lock long */
  while((n = prune_chunk(s, first)) == PRUNE_CHUNK)
    ;
  if(n < 0)
    log_failure(s, "prune", 0);
}

const struct sub_log_store *hist_store_seam(struct hist_store *s)
{
  return &s->seam;
}

/* ---- before the writer: meta, reset, load ---- */

const char *hist_store_errmsg(const struct hist_store *s)
{
  return s->msg;
}

static bool epoch_ok(const char *e, size_t len)
{
  if(len != SUB_EPOCH_LEN)
    return false;
  for(size_t i = 0; i < len; i++)
    if(!((e[i] >= 'a' && e[i] <= 'z') || (e[i] >= '0' && e[i] <= '9')))
      return false;
  return true;
}

/* The last stored offset (0: none). Returns 0 or -1. */
static int last_offset(struct hist_store *s, uint64_t *last)
{
  sqlite3_stmt *st = s->st[SEL_LAST];
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : fail(s);
  *last = rc ? 0 : (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc;
}

int hist_store_meta(struct hist_store *s, char epoch[SUB_EPOCH_LEN + 1], uint64_t *next,
                    bool *found)
{
  sqlite3_stmt *st = s->st[SEL_META];
  uint64_t recorded = 1, last;
  int rc = 0;
  epoch[0] = '\0';
  *found = false;
  int step = sqlite3_step(st);
  if(step == SQLITE_ROW) {
    const char *e = (const char *)sqlite3_column_text(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    if(e && epoch_ok(e, len)) {
      memcpy(epoch, e, SUB_EPOCH_LEN + 1);
      recorded = (uint64_t)sqlite3_column_int64(st, 1);
      *found = true;
    } else
      rc =
          fail_msg(s, "the stored epoch is malformed: move history.db away to start a new history");
  } else if(step != SQLITE_DONE)
    rc = fail(s);
  sqlite3_reset(st);
  if(rc || last_offset(s, &last))
    return -1;
  *next = recorded > last ? recorded : last + 1;
  return 0;
}

int hist_store_reset(struct hist_store *s, const char *epoch, uint64_t next)
{
  if(!epoch || !epoch_ok(epoch, strlen(epoch)) || !next)
    return fail_msg(s, "invalid epoch or next offset");
  sqlite3_stmt *meta = s->st[SET_META];
  int rc = run(s, s->st[TX_BEGIN]);
  if(!rc)
    rc = run(s, s->st[DEL_ALL]);
  if(!rc) {
    sqlite3_bind_text(meta, 1, epoch, SUB_EPOCH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(meta, 2, (sqlite3_int64)next);
    rc = run(s, meta);
  }
  if(!rc)
    rc = run(s, s->st[TX_COMMIT]);
  if(rc)
    rollback(s);
  return rc;
}

/* The events of one segment, newest last, while the load decides. */
struct seg_events {
  struct sub_event **ev;
  size_t n, cap;
};

static int take_event(void *arg, struct sub_event *ev)
{
  struct seg_events *se = arg;
  if(se->n == se->cap) {
    size_t cap = se->cap ? se->cap * 2 : 64;
    struct sub_event **p = realloc(se->ev, cap * sizeof(*p));
    if(!p) {
      sub_event_unref(ev);
      return -1;
    }
    se->ev = p;
    se->cap = cap;
  }
  se->ev[se->n++] = ev;
  return 0;
}

static void drop_events(struct seg_events *se)
{
  for(size_t i = 0; i < se->n; i++)
    sub_event_unref(se->ev[i]);
  se->n = 0;
}

/* Loads the newest run of events within the bounds: segments newest first,
 * each one's events newest first, until a bound says stop; then hands them
 * over oldest first. */
static int load_events(struct hist_store *s, size_t max_events, size_t max_bytes,
                       uint64_t min_ms, int (*on_event)(void *arg, struct sub_event *ev),
                       void *arg)
{
  sqlite3_stmt *st = s->st[SEL_SCAN];
  struct seg_events seg = {0}, keep = {0}; /* keep: newest first */
  size_t bytes = 0;
  int rc = 0, step = SQLITE_DONE;
  bool full = false;
  while(!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const unsigned char *body = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    if(hist_segment_decode(body, len, take_event, &seg) < 0) {
      snprintf(s->msg, sizeof(s->msg),
               "the stored segment at offset %lld is damaged: move history.db away to start a "
               "new history",
               (long long)sqlite3_column_int64(st, 0));
      rc = -1;
      break;
    }
    if(write_seqs(s, seg.ev, seg.n)) { /* `topics` gets every stored seq */
      rc = -1;
      break;
    }
    if(keep.n && seg.ev[seg.n - 1]->offset >= keep.ev[keep.n - 1]->offset) {
      fail_msg(s, "the stored segments overlap: move history.db away to start a new history");
      rc = -1;
      break;
    }
    while(seg.n) {
      struct sub_event *ev = seg.ev[seg.n - 1];
      if(!full && (ev->ms < min_ms || (max_events && keep.n >= max_events) ||
                   (max_bytes && ev->size > max_bytes - bytes)))
        full = true;
      if(full) { /* past the bounds (stored, not yet pruned): its seq only */
        seg.n--;
        sub_event_unref(ev);
        continue;
      }
      bytes += ev->size;
      seg.n--;
      if(take_event(&keep, ev)) {
        fail_msg(s, "out of memory");
        rc = -1;
        break;
      }
    }
    drop_events(&seg);
  }
  if(!rc && step != SQLITE_DONE)
    rc = fail(s);
  sqlite3_reset(st);
  drop_events(&seg);
  free(seg.ev);
  size_t i = keep.n;
  while(!rc && i > 0) {
    struct sub_event *ev = keep.ev[--i];
    keep.ev[i] = NULL;
    if(on_event(arg, ev)) /* owned by on_event now */
      rc = fail_msg(s, "loading an event failed");
  }
  for(size_t k = 0; k < i; k++)
    sub_event_unref(keep.ev[k]);
  free(keep.ev);
  return rc;
}

static int load_seqs(struct hist_store *s,
                     int (*on_seq)(void *arg, const char *topic, size_t len, uint64_t seq),
                     void *arg)
{
  sqlite3_stmt *st = s->st[SEL_SEQS];
  int rc = 0, step = SQLITE_DONE;
  while(!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *topic = (const char *)sqlite3_column_text(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    if(!topic)
      rc = fail(s);
    else if(on_seq(arg, topic, len, (uint64_t)sqlite3_column_int64(st, 1)))
      rc = fail_msg(s, "loading a topic's seq failed");
  }
  if(!rc && step != SQLITE_DONE)
    rc = fail(s);
  sqlite3_reset(st);
  return rc;
}

int hist_store_load(struct hist_store *s, size_t max_events, size_t max_bytes, uint64_t min_ms,
                    int (*on_event)(void *arg, struct sub_event *ev),
                    int (*on_seq)(void *arg, const char *topic, size_t len, uint64_t seq),
                    void *arg)
{
  /* one transaction: the segments' seqs go into `topics` as they are read */
  if(run(s, s->st[TX_BEGIN]))
    return -1;
  if(load_events(s, max_events, max_bytes, min_ms, on_event, arg)) {
    rollback(s);
    return -1;
  }
  if(run(s, s->st[TX_COMMIT])) {
    rollback(s);
    return -1;
  }
  return load_seqs(s, on_seq, arg);
}

/* ---- open and close ---- */

/* Creates the file 0600 when it does not exist, whatever the umask: the
 * events are the publishers' data. SQLite then creates -wal and -shm with
 * this file's mode. An existing file keeps its mode. Returns 0 or -1 with
 * errno. */
static int create_private(const char *path)
{
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if(fd < 0)
    return errno == EEXIST ? 0 : -1;
  int rc = fchmod(fd, 0600);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* The integer a PRAGMA answers. Returns 0 or -1. */
static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
  sqlite3_stmt *st;
  if(sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return -1;
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
  if(!rc)
    *out = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return rc;
}

/* Sets WAL mode, which a file system without shared memory may refuse
 * without an error. Returns 0 or -1. */
static int set_wal(sqlite3 *db)
{
  sqlite3_stmt *st;
  if(sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
    return -1;
  int rc = -1;
  if(sqlite3_step(st) == SQLITE_ROW) {
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    rc = mode && strcmp(mode, "wal") == 0 ? 0 : -1;
  }
  sqlite3_finalize(st);
  return rc;
}

static int exec(sqlite3 *db, const char *sql)
{
  return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Creates the schema in a new file, or checks an existing one's version.
 * Returns 0, or -1 with err set. */
static int schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
  int version, tables;
  if(pragma_int(db, "PRAGMA user_version", &version)) {
    snprintf(err, errlen,
             "cannot read the history store %s: %s: move it away to start a new history", path,
             sqlite3_errmsg(db));
    return -1;
  }
  if(version > SCHEMA_VERSION) {
    snprintf(err, errlen,
             "the history store %s has schema version %d, newer than this heraldd's (%d):"
             " run a newer heraldd, or move the file away to start a new history",
             path, version, SCHEMA_VERSION);
    return -1;
  }
  if(version == SCHEMA_VERSION)
    return 0;
  if(pragma_int(db, "SELECT count(*) FROM sqlite_schema", &tables) || tables) {
    snprintf(err, errlen,
             "%s is not a Herald history store (a database without its schema version):"
             " move it away or choose another data_dir",
             path);
    return -1;
  }
  char sql[sizeof(schema_sql) + 64];
  snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE;%sPRAGMA user_version=%d;COMMIT;", schema_sql,
           SCHEMA_VERSION);
  if(exec(db, sql)) {
    snprintf(err, errlen, "cannot create the schema of the history store %s: %s", path,
             sqlite3_errmsg(db));
    exec(db, "ROLLBACK");
    return -1;
  }
  return 0;
}

/* Connects to path with Herald's pragmas and schema. Returns 0, or -1 with
 * err set. */
static int open_db(struct hist_store *s, const char *path, char *err, size_t errlen)
{
  if(sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
     SQLITE_OK) {
    snprintf(err, errlen, "cannot open the history store %s: %s", path,
             s->db ? sqlite3_errmsg(s->db) : "out of memory");
    return -1;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  if(sqlite3_db_readonly(s->db, "main") == 1) {
    snprintf(err, errlen, "the history store %s is read-only: make it writable by heraldd", path);
    return -1;
  }
  if(schema(s->db, path, err, errlen))
    return -1;
  if(set_wal(s->db) || exec(s->db, "PRAGMA synchronous=NORMAL")) {
    snprintf(err, errlen, "cannot set WAL mode on the history store %s: %s", path,
             sqlite3_errmsg(s->db));
    return -1;
  }
  for(int i = 0; i < STMTS; i++) {
    if(sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
       SQLITE_OK) {
      snprintf(err, errlen, "cannot use the history store %s: %s", path, sqlite3_errmsg(s->db));
      return -1;
    }
  }
  return 0;
}

struct hist_store *hist_store_open(const char *dir, char *err, size_t errlen)
{
  char buf[1];
  if(!errlen) { /* nowhere to say why: still fail cleanly */
    err = buf;
    errlen = sizeof(buf);
  }
  char path[4096];
  int n = snprintf(path, sizeof(path), "%s/history.db", dir);
  if(n < 0 || (size_t)n >= sizeof(path)) {
    snprintf(err, errlen, "the history store's directory name is too long: %.64s...", dir);
    return NULL;
  }
  if(create_private(path)) {
    snprintf(err, errlen,
             "cannot create the history store %s: %s: check that data_dir exists and that"
             " heraldd may write to it",
             path, strerror(errno));
    return NULL;
  }
  struct hist_store *s = calloc(1, sizeof(*s));
  if(s)
    util_dynbuf_init(&s->seg, (size_t)1 << 30); /* a commit's events: at most 1,024 */
  if(!s) {
    snprintf(err, errlen, "cannot open the history store %s: out of memory", path);
    return NULL;
  }
  if(open_db(s, path, err, errlen)) {
    hist_store_close(s);
    return NULL;
  }
  s->seam = (struct sub_log_store){.append = seam_append, .prune = seam_prune, .arg = s};
  return s;
}

void hist_store_close(struct hist_store *s)
{
  if(!s)
    return;
  for(int i = 0; i < STMTS; i++)
    sqlite3_finalize(s->st[i]);
  sqlite3_close(s->db);
  util_dynbuf_free(&s->seg);
  free(s);
}
