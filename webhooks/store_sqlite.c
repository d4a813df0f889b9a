/* The webhook store in SQLite: every statement the webhooks layer runs.
 *
 * One file under data_dir, in WAL mode with synchronous=FULL: a commit is
 * on disk when it returns, readers (the API) never block the writer (the
 * dispatcher), and a crash at any point leaves the last committed state.
 *
 * Tables:
 *   endpoints    one row per webhook endpoint (secrets in clear: the HMAC needs them)
 *   events       the body of every event some endpoint got, by event id
 *   deliveries   one per (endpoint, event); status 0 pending, 1 delivered,
 *                2 failed, 3 pending and loaded by the dispatcher
 *   attempts     one per HTTP attempt of a delivery
 *   idempotency  Idempotency-Key -> request hash and the original answer
 *   topic_seq    the last seq of every topic that had a durable event */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "topic.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS endpoints("
    " id TEXT PRIMARY KEY, url TEXT NOT NULL, topics TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '', secret TEXT NOT NULL,"
    " old_secret TEXT NOT NULL DEFAULT '', old_until_ms INTEGER NOT NULL DEFAULT 0,"
    " enabled INTEGER NOT NULL, ordered INTEGER NOT NULL, from_config INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " failing_since_ms INTEGER NOT NULL DEFAULT 0, disabled_reason TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS events("
    " id TEXT PRIMARY KEY, topic TEXT NOT NULL, seq INTEGER NOT NULL, ms INTEGER NOT NULL,"
    " body BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS deliveries("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, event_id TEXT NOT NULL,"
    " event_ms INTEGER NOT NULL, status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " total INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(endpoint, status, next_ms);"
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_id);"
    "CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries(status, updated_ms);"
    "CREATE TABLE IF NOT EXISTS attempts("
    " delivery INTEGER NOT NULL, n INTEGER NOT NULL, ms INTEGER NOT NULL,"
    " http_status INTEGER NOT NULL, latency_us INTEGER NOT NULL, error TEXT, response BLOB,"
    " PRIMARY KEY(delivery, n)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " key TEXT PRIMARY KEY, hash BLOB NOT NULL, response TEXT NOT NULL, ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS topic_seq(topic TEXT PRIMARY KEY, seq INTEGER NOT NULL)"
    " WITHOUT ROWID;";

/* The statements of the dispatcher's turn, prepared once (turn_prepare). */
enum {
  INS_EVENT,
  INS_DELIVERY,
  INS_SEQ,
  INS_IDEM,
  UPD_DELIVERY,
  INS_ATTEMPT,
  SEL_READY,
  SEL_ORDERED,
  SEL_NEXT,
  MARK_QUEUED,
  UPD_ENDPOINT,
  TX_BEGIN,
  TX_COMMIT,
  TX_ROLLBACK,
  SP_ITEMS,
  SP_ITEMS_RELEASE,
  SP_ITEMS_ROLLBACK,
  SP_BOOK,
  SP_BOOK_RELEASE,
  SP_BOOK_ROLLBACK,
  TURN_STMTS
};

static const char *const turn_sql[TURN_STMTS] = {
    [INS_EVENT] = "INSERT OR IGNORE INTO events(id,topic,seq,ms,body) VALUES(?1,?2,?3,?4,?5)",
    [INS_DELIVERY] =
        "INSERT INTO deliveries(endpoint,event_id,event_ms,status,next_ms,created_ms,updated_ms)"
        " VALUES(?1,?2,?3,?4,?5,?5,?5)",
    [INS_SEQ] = "INSERT INTO topic_seq(topic,seq) VALUES(?1,?2) ON CONFLICT(topic)"
                " DO UPDATE SET seq=max(seq,excluded.seq)",
    [INS_IDEM] = "INSERT OR REPLACE INTO idempotency(key,hash,response,ms) VALUES(?1,?2,?3,?4)",
    /* Only the row this attempt was for: ids of deleted rows can be reused. */
    [UPD_DELIVERY] = "UPDATE deliveries SET status=?2, attempts=?3, total=?4, next_ms=?5,"
                     " updated_ms=?6 WHERE id=?1 AND endpoint=?7 AND status=3",
    /* not for a delivery deleted (with its endpoint) while in flight */
    [INS_ATTEMPT] = "INSERT OR REPLACE INTO attempts(delivery,n,ms,http_status,latency_us,"
                    "error,response) SELECT ?1,?2,?3,?4,?5,?6,?7"
                    " WHERE EXISTS (SELECT 1 FROM deliveries WHERE id=?1 AND endpoint=?8)",
    [SEL_READY] = "SELECT d.id, d.attempts, d.total, d.event_id, e.body, d.next_ms"
                  " FROM deliveries d JOIN events e ON e.id = d.event_id"
                  " WHERE d.endpoint=?1 AND d.status=0 AND d.next_ms<=?2"
                  " ORDER BY d.next_ms, d.id LIMIT ?3",
    [SEL_ORDERED] = "SELECT d.id, d.attempts, d.total, d.event_id, e.body, d.next_ms"
                    " FROM deliveries d JOIN events e ON e.id = d.event_id"
                    " WHERE d.endpoint=?1 AND d.status=0 ORDER BY d.id LIMIT ?3",
    [SEL_NEXT] = "SELECT min(next_ms) FROM deliveries WHERE endpoint=?1 AND status=0",
    [MARK_QUEUED] = "UPDATE deliveries SET status=3 WHERE id=?1",
    [UPD_ENDPOINT] = "UPDATE endpoints SET enabled=?2, failing_since_ms=?3,"
                     " disabled_reason=?4, updated_ms=?5 WHERE id=?1",
    [TX_BEGIN] = "BEGIN IMMEDIATE",
    [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",
    [SP_ITEMS] = "SAVEPOINT items",
    [SP_ITEMS_RELEASE] = "RELEASE items",
    [SP_ITEMS_ROLLBACK] = "ROLLBACK TO items",
    [SP_BOOK] = "SAVEPOINT book",
    [SP_BOOK_RELEASE] = "RELEASE book",
    [SP_BOOK_ROLLBACK] = "ROLLBACK TO book",
};

struct sq {
  struct hook_store base; /* first: a struct hook_store * is a struct sq * */
  sqlite3 *db;
  int last_rc;   /* SQLite's extended code of the last failure */
  char msg[512]; /* and its message */
  sqlite3_stmt *st[TURN_STMTS];
};

static struct sq *sq_of(struct hook_store *s)
{
  return (struct sq *)s;
}

static const struct sq *sq_const(const struct hook_store *s)
{
  return (const struct sq *)s;
}

/* Records the connection's last failure. Returns its class. */
static enum hook_store_err fail(struct sq *q)
{
  int rc = sqlite3_extended_errcode(q->db);
  q->last_rc = rc ? rc : SQLITE_ERROR;
  snprintf(q->msg, sizeof(q->msg), "%s", sqlite3_errmsg(q->db));
  return (q->last_rc & 0xff) == SQLITE_FULL ? HOOK_STORE_FULL : HOOK_STORE_FAILED;
}

static int exec(sqlite3 *db, const char *sql)
{
  return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static const char *text(sqlite3_stmt *st, int col)
{
  return (const char *)sqlite3_column_text(st, col);
}

/* Steps a write statement once and resets it. Returns OK, or the failure
 * (recorded). */
static enum hook_store_err step_done(struct sq *q, sqlite3_stmt *st)
{
  enum hook_store_err e = sqlite3_step(st) == SQLITE_DONE ? HOOK_STORE_OK : fail(q);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return e;
}

static const char *sq_errmsg(const struct hook_store *s)
{
  return sq_const(s)->msg;
}

static const char *sq_errstr(const struct hook_store *s)
{
  return sqlite3_errstr(sq_const(s)->last_rc);
}

static void sq_close(struct hook_store *s)
{
  struct sq *q = sq_of(s);
  for(int i = 0; i < TURN_STMTS; i++)
    sqlite3_finalize(q->st[i]);
  sqlite3_close(q->db);
  free(q);
}

/* ---- endpoints ---- */

static enum hook_store_err sq_load_endpoints(struct hook_store *s, hook_store_endpoint_fn fn,
                                             void *ctx)
{
  static const char sql[] =
      "SELECT id,url,topics,description,secret,old_secret,old_until_ms,enabled,ordered,"
      "from_config,created_ms,updated_ms,failing_since_ms,disabled_reason FROM endpoints";
  struct sq *q = sq_of(s);
  sqlite3_stmt *st;
  if(sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
    return fail(q);
  enum hook_store_err e = HOOK_STORE_OK;
  int rc;
  while((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct hook_store_endpoint r = {
        .id = text(st, 0),
        .url = text(st, 1),
        .topics = text(st, 2),
        .description = text(st, 3),
        .secret = text(st, 4),
        .old_secret = text(st, 5),
        .old_until_ms = sqlite3_column_int64(st, 6),
        .enabled = sqlite3_column_int(st, 7),
        .ordered = sqlite3_column_int(st, 8),
        .from_config = sqlite3_column_int(st, 9),
        .created_ms = sqlite3_column_int64(st, 10),
        .updated_ms = sqlite3_column_int64(st, 11),
        .failing_since_ms = sqlite3_column_int64(st, 12),
        .disabled_reason = text(st, 13),
    };
    if(fn(ctx, &r))
      break;
  }
  if(rc != SQLITE_ROW && rc != SQLITE_DONE)
    e = fail(q);
  sqlite3_finalize(st);
  return e;
}

static enum hook_store_err sq_save_endpoint(struct hook_store *s,
                                            const struct hook_store_endpoint *ep, bool state)
{
  static const char sql_all[] =
      "INSERT INTO endpoints(id,url,topics,description,secret,old_secret,old_until_ms,enabled,"
      "ordered,from_config,created_ms,updated_ms,failing_since_ms,disabled_reason)"
      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14) ON CONFLICT(id) DO UPDATE SET"
      " url=?2,topics=?3,description=?4,secret=?5,old_secret=?6,old_until_ms=?7,enabled=?8,"
      "ordered=?9,from_config=?10,updated_ms=?12,failing_since_ms=?13,disabled_reason=?14";
  static const char sql_fields[] =
      "INSERT INTO endpoints(id,url,topics,description,secret,old_secret,old_until_ms,enabled,"
      "ordered,from_config,created_ms,updated_ms,failing_since_ms,disabled_reason)"
      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14) ON CONFLICT(id) DO UPDATE SET"
      " url=?2,topics=?3,description=?4,secret=?5,old_secret=?6,old_until_ms=?7,"
      "ordered=?9,from_config=?10,updated_ms=?12";
  struct sq *q = sq_of(s);
  sqlite3_stmt *st;
  if(sqlite3_prepare_v2(q->db, state ? sql_all : sql_fields, -1, &st, NULL) != SQLITE_OK)
    return fail(q);
  sqlite3_bind_text(st, 1, ep->id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, ep->url, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, ep->topics, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, ep->description ? ep->description : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, ep->secret, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, ep->old_secret, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, ep->old_until_ms);
  sqlite3_bind_int(st, 8, ep->enabled);
  sqlite3_bind_int(st, 9, ep->ordered);
  sqlite3_bind_int(st, 10, ep->from_config);
  sqlite3_bind_int64(st, 11, ep->created_ms);
  sqlite3_bind_int64(st, 12, ep->updated_ms);
  sqlite3_bind_int64(st, 13, ep->failing_since_ms);
  sqlite3_bind_text(st, 14, ep->disabled_reason, -1, SQLITE_STATIC);
  enum hook_store_err e = sqlite3_step(st) == SQLITE_DONE ? HOOK_STORE_OK : fail(q);
  sqlite3_finalize(st);
  return e;
}

static enum hook_store_err sq_delete_endpoint(struct hook_store *s, const char *id)
{
  static const char *const sql[3] = {
      "DELETE FROM attempts WHERE delivery IN (SELECT id FROM deliveries WHERE endpoint=?1)",
      "DELETE FROM deliveries WHERE endpoint=?1", "DELETE FROM endpoints WHERE id=?1"};
  struct sq *q = sq_of(s);
  sqlite3_stmt *st[3] = {NULL, NULL, NULL};
  int rc = exec(q->db, "BEGIN IMMEDIATE");
  for(int i = 0; i < 3 && !rc; i++) {
    rc = sqlite3_prepare_v2(q->db, sql[i], -1, &st[i], NULL) != SQLITE_OK;
    if(!rc) {
      sqlite3_bind_text(st[i], 1, id, -1, SQLITE_STATIC);
      rc = sqlite3_step(st[i]) != SQLITE_DONE;
    }
  }
  if(!rc)
    rc = exec(q->db, "COMMIT");
  enum hook_store_err e = HOOK_STORE_OK;
  if(rc) {
    e = fail(q); /* before the rollback, which would replace the reason */
    exec(q->db, "ROLLBACK");
  }
  for(int i = 0; i < 3; i++)
    sqlite3_finalize(st[i]);
  return e;
}

/* ---- the endpoints API ---- */

static enum hook_store_err sq_deliveries(struct hook_store *s, const char *endpoint, int status,
                                         int64_t before, int limit, hook_store_delivery_fn on_row,
                                         hook_store_attempt_fn on_attempt, void *ctx)
{
  static const char sql[] =
      "SELECT d.id, d.event_id, e.topic, e.seq, d.status, d.next_ms, d.created_ms"
      " FROM deliveries d LEFT JOIN events e ON e.id = d.event_id"
      " WHERE d.endpoint=?1 AND d.id < ?2 AND (?3 < 0 OR d.status=?3"
      " OR (?3=0 AND d.status=3)) ORDER BY d.id DESC LIMIT ?4";
  static const char sql_attempts[] =
      "SELECT n, ms, http_status, latency_us, error, response FROM attempts"
      " WHERE delivery=?1 ORDER BY n";
  struct sq *q = sq_of(s);
  sqlite3_stmt *st = NULL, *sa = NULL;
  enum hook_store_err e = HOOK_STORE_OK;
  if(sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK ||
     sqlite3_prepare_v2(q->db, sql_attempts, -1, &sa, NULL) != SQLITE_OK) {
    e = fail(q);
    goto out;
  }
  sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, before);
  sqlite3_bind_int(st, 3, status);
  sqlite3_bind_int(st, 4, limit);
  int rc;
  while((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct hook_store_delivery d = {
        .id = sqlite3_column_int64(st, 0),
        .event_id = text(st, 1),
        .topic = text(st, 2),
        .seq = sqlite3_column_int64(st, 3),
        .status = sqlite3_column_int(st, 4),
        .next_ms = sqlite3_column_int64(st, 5),
        .created_ms = sqlite3_column_int64(st, 6),
    };
    if(on_row(ctx, &d))
      break;
    sqlite3_reset(sa);
    sqlite3_bind_int64(sa, 1, d.id);
    while(sqlite3_step(sa) == SQLITE_ROW) {
      struct hook_store_attempt a = {
          .n = sqlite3_column_int(sa, 0),
          .ms = sqlite3_column_int64(sa, 1),
          .http_status = sqlite3_column_int(sa, 2),
          .latency_us = sqlite3_column_int64(sa, 3),
          .error = text(sa, 4),
          .response = sqlite3_column_blob(sa, 5),
      };
      a.response_len = (size_t)sqlite3_column_bytes(sa, 5);
      on_attempt(ctx, &a);
    }
  }
  if(rc != SQLITE_ROW && rc != SQLITE_DONE)
    e = fail(q);
out:
  sqlite3_finalize(st);
  sqlite3_finalize(sa);
  return e;
}

/* Runs one UPDATE taking (endpoint, a, b). Sets *changed to the rows changed. */
static enum hook_store_err update3(struct sq *q, const char *sql, const char *endpoint, int64_t a,
                                   int64_t b, int64_t *changed)
{
  sqlite3_stmt *st = NULL;
  enum hook_store_err e = HOOK_STORE_FAILED;
  if(sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a);
    sqlite3_bind_int64(st, 3, b);
    if(sqlite3_step(st) == SQLITE_DONE) {
      *changed = sqlite3_changes64(q->db);
      e = HOOK_STORE_OK;
    }
  }
  if(e)
    e = fail(q);
  sqlite3_finalize(st);
  return e;
}

static enum hook_store_err sq_retry(struct hook_store *s, const char *endpoint, int64_t delivery,
                                    int64_t now_ms, enum hook_store_retry *result)
{
  struct sq *q = sq_of(s);
  int64_t n = 0;
  enum hook_store_err e =
      update3(q,
              "UPDATE deliveries SET status=0, attempts=0, next_ms=?3, updated_ms=?3"
              " WHERE endpoint=?1 AND id=?2 AND status IN (1,2)",
              endpoint, delivery, now_ms, &n);
  if(e)
    return e;
  *result = HOOK_RETRY_REQUEUED;
  if(n > 0)
    return HOOK_STORE_OK;
  /* Tell "pending already" from "no such delivery" (a failed look: none). */
  sqlite3_stmt *st = NULL;
  bool exists = false;
  if(sqlite3_prepare_v2(q->db, "SELECT 1 FROM deliveries WHERE endpoint=?1 AND id=?2", -1, &st,
                        NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, delivery);
    exists = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  *result = exists ? HOOK_RETRY_PENDING : HOOK_RETRY_NOT_FOUND;
  return HOOK_STORE_OK;
}

static enum hook_store_err sq_replay(struct hook_store *s, const char *endpoint, int64_t since_ms,
                                     int64_t now_ms, int64_t *requeued)
{
  return update3(sq_of(s),
                 "UPDATE deliveries SET status=0, attempts=0, next_ms=?3, updated_ms=?3"
                 " WHERE endpoint=?1 AND status IN (1,2) AND event_ms >= ?2",
                 endpoint, since_ms, now_ms, requeued);
}

static enum hook_store_err sq_enqueue(struct hook_store *s, const char *endpoint, size_t n,
                                      hook_store_event_fn fn, void *ctx, int64_t now_ms)
{
  struct sq *q = sq_of(s);
  sqlite3_stmt *ev = NULL, *dl = NULL;
  enum hook_store_err e = HOOK_STORE_OK;
  bool open = false;
  if(sqlite3_prepare_v2(q->db, turn_sql[INS_EVENT], -1, &ev, NULL) != SQLITE_OK ||
     sqlite3_prepare_v2(q->db, turn_sql[INS_DELIVERY], -1, &dl, NULL) != SQLITE_OK ||
     exec(q->db, "BEGIN IMMEDIATE")) {
    e = fail(q);
    goto out;
  }
  open = true;
  for(size_t i = 0; i < n; i++) {
    struct hook_store_item it = {0};
    if(fn(ctx, i, &it)) {
      q->last_rc = SQLITE_NOMEM;
      snprintf(q->msg, sizeof(q->msg), "out of memory");
      e = HOOK_STORE_FAILED;
      goto out;
    }
    sqlite3_bind_text(ev, 1, it.event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(ev, 2, it.topic, (int)it.topic_len, SQLITE_STATIC);
    sqlite3_bind_int64(ev, 3, (sqlite3_int64)it.seq);
    sqlite3_bind_int64(ev, 4, (sqlite3_int64)it.ms);
    sqlite3_bind_blob(ev, 5, it.body, (int)it.body_len, SQLITE_STATIC);
    sqlite3_bind_text(dl, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_text(dl, 2, it.event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(dl, 3, (sqlite3_int64)it.ms);
    sqlite3_bind_int(dl, 4, HOOK_DELIVERY_PENDING);
    sqlite3_bind_int64(dl, 5, now_ms);
    if((e = step_done(q, ev)) || (e = step_done(q, dl)))
      goto out;
  }
  if(exec(q->db, "COMMIT"))
    e = fail(q);
  else
    open = false;
out:
  if(open && !sqlite3_get_autocommit(q->db))
    exec(q->db, "ROLLBACK"); /* after fail(): the reason stays the first one */
  sqlite3_finalize(ev);
  sqlite3_finalize(dl);
  return e;
}

/* Reads a stored answer, {"id":...,"seq":...,"ms":...}; id "" when it cannot. */
static void idem_answer(const char *response, struct hook_store_idem *out)
{
  json_t *r = response ? json_loads(response, 0, NULL) : NULL;
  const char *id = json_string_value(json_object_get(r, "id"));
  out->id[0] = '\0';
  if(id && strlen(id) == SUB_ID_LEN)
    memcpy(out->id, id, SUB_ID_LEN + 1);
  out->seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
  out->ms = (uint64_t)json_integer_value(json_object_get(r, "ms"));
  json_decref(r);
}

static enum hook_store_err sq_idem_lookup(struct hook_store *s, const char *key, int64_t oldest_ms,
                                          struct hook_store_idem *out, bool *found)
{
  static const char sql[] = "SELECT hash, response FROM idempotency WHERE key=?1 AND ms >= ?2";
  struct sq *q = sq_of(s);
  sqlite3_stmt *st = NULL;
  enum hook_store_err e = HOOK_STORE_OK;
  *found = false;
  if(sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
    e = fail(q);
    goto out;
  }
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, oldest_ms);
  int rc = sqlite3_step(st);
  if(rc == SQLITE_DONE)
    goto out;
  if(rc != SQLITE_ROW) {
    e = fail(q);
    goto out;
  }
  const void *hash = sqlite3_column_blob(st, 0);
  int len = sqlite3_column_bytes(st, 0);
  out->hash_len = len > 0 ? (size_t)len : 0;
  memset(out->hash, 0, sizeof(out->hash));
  if(hash)
    memcpy(out->hash, hash, out->hash_len < sizeof(out->hash) ? out->hash_len : sizeof(out->hash));
  idem_answer(text(st, 1), out);
  *found = true;
out:
  sqlite3_finalize(st);
  return e;
}

/* ---- start and stop ---- */

static enum hook_store_err sq_recover(struct hook_store *s, hook_store_seq_fn fn, void *ctx,
                                      int64_t *requeued)
{
  struct sq *q = sq_of(s);
  sqlite3_stmt *st;
  if(exec(q->db, "UPDATE deliveries SET status=0 WHERE status=3") ||
     sqlite3_prepare_v2(q->db, "SELECT topic, seq FROM topic_seq", -1, &st, NULL) != SQLITE_OK)
    return fail(q);
  *requeued = sqlite3_changes(q->db);
  while(sqlite3_step(st) == SQLITE_ROW)
    fn(ctx, text(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
  sqlite3_finalize(st);
  return HOOK_STORE_OK;
}

static void sq_reset_loaded(struct hook_store *s)
{
  exec(sq_of(s)->db, "UPDATE deliveries SET status=0 WHERE status=3");
}

/* ---- the dispatcher's turn ---- */

static enum hook_store_err sq_turn_prepare(struct hook_store *s)
{
  struct sq *q = sq_of(s);
  for(int i = 0; i < TURN_STMTS; i++)
    if(!q->st[i] && sqlite3_prepare_v3(q->db, turn_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
                                       NULL) != SQLITE_OK)
      return fail(q);
  return HOOK_STORE_OK;
}

static enum hook_store_err sq_turn_begin(struct hook_store *s)
{
  return step_done(sq_of(s), sq_of(s)->st[TX_BEGIN]);
}

static bool sq_turn_open(struct hook_store *s)
{
  return !sqlite3_get_autocommit(sq_of(s)->db);
}

static enum hook_store_err sq_part_begin(struct hook_store *s, enum hook_store_part part)
{
  struct sq *q = sq_of(s);
  return step_done(q, q->st[part == HOOK_STORE_ITEMS ? SP_ITEMS : SP_BOOK]);
}

static enum hook_store_err sq_part_end(struct hook_store *s, enum hook_store_part part, bool keep)
{
  struct sq *q = sq_of(s);
  bool items = part == HOOK_STORE_ITEMS;
  enum hook_store_err e = HOOK_STORE_OK;
  if(!keep)
    e = step_done(q, q->st[items ? SP_ITEMS_ROLLBACK : SP_BOOK_ROLLBACK]);
  if(!e)
    e = step_done(q, q->st[items ? SP_ITEMS_RELEASE : SP_BOOK_RELEASE]);
  return e;
}

static enum hook_store_err sq_write_item(struct hook_store *s, struct hook_store_item *it)
{
  struct sq *q = sq_of(s);
  enum hook_store_err e;
  if(it->body) {
    sqlite3_stmt *st = q->st[INS_EVENT];
    sqlite3_bind_text(st, 1, it->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, it->topic, (int)it->topic_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)it->seq);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)it->ms);
    sqlite3_bind_blob(st, 5, it->body, (int)it->body_len, SQLITE_STATIC);
    if((e = step_done(q, st)))
      return e;
  }
  for(size_t i = 0; i < it->ndeliveries; i++) {
    struct hook_store_new_delivery *d = &it->deliveries[i];
    sqlite3_stmt *st = q->st[INS_DELIVERY];
    sqlite3_bind_text(st, 1, d->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, it->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)it->ms);
    sqlite3_bind_int(st, 4, d->status);
    sqlite3_bind_int64(st, 5, d->next_ms);
    if((e = step_done(q, st)))
      return e;
    d->id = sqlite3_last_insert_rowid(q->db);
  }
  sqlite3_stmt *st = q->st[INS_SEQ];
  sqlite3_bind_text(st, 1, it->topic, (int)it->topic_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)it->seq);
  if((e = step_done(q, st)) || !it->idem_key)
    return e;
  /* The answer the key gets again: what idem_lookup reads back. */
  char resp[64 + SUB_ID_LEN + SUB_TOPIC_MAX + 2 * 20]; /* the text, two 20-digit numbers */
  snprintf(resp, sizeof(resp), "{\"id\":\"%s\",\"topic\":\"%.*s\",\"seq\":%llu,\"ms\":%llu}",
           it->event_id, (int)it->topic_len, it->topic, (unsigned long long)it->seq,
           (unsigned long long)it->ms);
  st = q->st[INS_IDEM];
  sqlite3_bind_text(st, 1, it->idem_key, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, it->idem_hash, HOOK_STORE_HASH_LEN, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, resp, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, it->idem_ms);
  return step_done(q, st);
}

static enum hook_store_err sq_write_outcome(struct hook_store *s, const struct hook_store_outcome *o)
{
  struct sq *q = sq_of(s);
  sqlite3_stmt *u = q->st[UPD_DELIVERY];
  sqlite3_bind_int64(u, 1, o->delivery);
  sqlite3_bind_int(u, 2, o->status);
  sqlite3_bind_int(u, 3, o->attempts);
  sqlite3_bind_int(u, 4, o->total);
  sqlite3_bind_int64(u, 5, o->next_ms);
  sqlite3_bind_int64(u, 6, o->ms);
  sqlite3_bind_text(u, 7, o->endpoint, -1, SQLITE_STATIC);
  enum hook_store_err e = step_done(q, u);
  if(e)
    return e;
  sqlite3_stmt *a = q->st[INS_ATTEMPT];
  sqlite3_bind_int64(a, 1, o->delivery);
  sqlite3_bind_int(a, 2, o->total);
  sqlite3_bind_int64(a, 3, o->ms);
  sqlite3_bind_int64(a, 4, o->http_status);
  sqlite3_bind_int64(a, 5, o->latency_us);
  if(o->error)
    sqlite3_bind_text(a, 6, o->error, -1, SQLITE_STATIC);
  if(o->response)
    sqlite3_bind_blob(a, 7, o->response, (int)o->response_len, SQLITE_STATIC);
  sqlite3_bind_text(a, 8, o->endpoint, -1, SQLITE_STATIC);
  return step_done(q, a);
}

static enum hook_store_err sq_write_endpoint_state(struct hook_store *s, const char *id,
                                                   bool enabled, int64_t failing_since_ms,
                                                   const char *reason, int64_t updated_ms)
{
  struct sq *q = sq_of(s);
  sqlite3_stmt *st = q->st[UPD_ENDPOINT];
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, enabled);
  sqlite3_bind_int64(st, 3, failing_since_ms);
  sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, updated_ms);
  return step_done(q, st);
}

/* The next due time of what endpoint has pending, or -1 when nothing. */
static int64_t next_due(struct sq *q, const char *endpoint)
{
  sqlite3_stmt *st = q->st[SEL_NEXT];
  int64_t next = -1;
  sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
  if(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    next = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return next;
}

static enum hook_store_err sq_load_due(struct hook_store *s, const char *endpoint, bool ordered,
                                       int64_t now_ms, size_t want, hook_store_due_fn fn,
                                       void *ctx, int64_t *next_ms)
{
  struct sq *q = sq_of(s);
  sqlite3_stmt *st = q->st[ordered ? SEL_ORDERED : SEL_READY];
  if(want > HOOK_STORE_LOAD_MAX)
    want = HOOK_STORE_LOAD_MAX;
  sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, now_ms);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)want);
  size_t got = 0;
  int64_t head_next = -1; /* an ordered endpoint's head, waiting for its retry time */
  int64_t ids[HOOK_STORE_LOAD_MAX];
  int rc;
  while((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t next = sqlite3_column_int64(st, 5);
    if(ordered && next > now_ms) {
      head_next = next;
      break;
    }
    struct hook_store_due d = {
        .id = sqlite3_column_int64(st, 0),
        .attempts = sqlite3_column_int(st, 1),
        .total = sqlite3_column_int(st, 2),
        .event_id = text(st, 3),
        .body = sqlite3_column_blob(st, 4),
        .body_len = (size_t)sqlite3_column_bytes(st, 4),
    };
    if(fn(ctx, &d))
      break;
    ids[got++] = d.id;
  }
  enum hook_store_err read = rc == SQLITE_ROW || rc == SQLITE_DONE ? HOOK_STORE_OK : fail(q);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for(size_t i = 0; i < got; i++) {
    sqlite3_bind_int64(q->st[MARK_QUEUED], 1, ids[i]);
    enum hook_store_err e = step_done(q, q->st[MARK_QUEUED]);
    if(e)
      return e;
  }
  if(head_next >= 0) {
    *next_ms = head_next;
    return HOOK_STORE_OK;
  }
  if(got == want) {
    *next_ms = now_ms; /* maybe more: look again next turn */
    return HOOK_STORE_OK;
  }
  *next_ms = next_due(q, endpoint); /* fewer than asked: when the rest is due */
  return read;
}

/* Rolls back an open transaction, leaving the recorded failure as it is. */
static void rollback_quiet(struct sq *q)
{
  if(!sqlite3_get_autocommit(q->db)) {
    sqlite3_step(q->st[TX_ROLLBACK]);
    sqlite3_reset(q->st[TX_ROLLBACK]);
  }
}

static enum hook_store_err sq_turn_commit(struct hook_store *s)
{
  struct sq *q = sq_of(s);
  enum hook_store_err e = step_done(q, q->st[TX_COMMIT]);
  if(e)
    rollback_quiet(q);
  return e;
}

static void sq_turn_rollback(struct hook_store *s)
{
  rollback_quiet(sq_of(s));
}

static enum hook_store_err sq_prune(struct hook_store *s, int64_t delivered_before_ms,
                                    int64_t idem_before_ms, int batch)
{
  struct sq *q = sq_of(s);
  char sql[1024];
  long long cut = (long long)delivered_before_ms;
  snprintf(sql, sizeof(sql),
           "BEGIN IMMEDIATE;"
           "CREATE TEMP TABLE IF NOT EXISTS prune(id INTEGER PRIMARY KEY);"
           "DELETE FROM prune;"
           "INSERT INTO prune SELECT id FROM deliveries WHERE status=1 AND updated_ms<%lld"
           " LIMIT %d;"
           "DELETE FROM attempts WHERE delivery IN (SELECT id FROM prune);"
           "DELETE FROM deliveries WHERE id IN (SELECT id FROM prune);"
           "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.ms<%lld AND NOT"
           " EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id=e.id) LIMIT %d);"
           "DELETE FROM idempotency WHERE ms<%lld;"
           "COMMIT;",
           cut, batch, cut, batch, (long long)idem_before_ms);
  if(!exec(q->db, sql))
    return HOOK_STORE_OK;
  enum hook_store_err e = fail(q);
  exec(q->db, "ROLLBACK");
  return e;
}

static const struct hook_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .errmsg = sq_errmsg,
    .errstr = sq_errstr,
    .load_endpoints = sq_load_endpoints,
    .save_endpoint = sq_save_endpoint,
    .delete_endpoint = sq_delete_endpoint,
    .deliveries = sq_deliveries,
    .retry = sq_retry,
    .replay = sq_replay,
    .enqueue = sq_enqueue,
    .idem_lookup = sq_idem_lookup,
    .recover = sq_recover,
    .turn_prepare = sq_turn_prepare,
    .turn_begin = sq_turn_begin,
    .turn_open = sq_turn_open,
    .part_begin = sq_part_begin,
    .part_end = sq_part_end,
    .write_item = sq_write_item,
    .write_outcome = sq_write_outcome,
    .write_endpoint_state = sq_write_endpoint_state,
    .load_due = sq_load_due,
    .turn_commit = sq_turn_commit,
    .turn_rollback = sq_turn_rollback,
    .prune = sq_prune,
    .reset_loaded = sq_reset_loaded,
};

/* Creates the database file 0600 when it does not exist, whatever the umask:
 * it holds webhook secrets in clear. SQLite then creates -wal and -shm with
 * this file's mode. An existing file keeps its mode. Returns 0 or -1 with
 * errno. */
static int create_private(const char *path)
{
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if(fd < 0)
    return errno == EEXIST ? 0 : -1;
  int rc = fchmod(fd, 0600); /* a umask may have taken bits off: 0600 exactly */
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

/* Opens (creating) the database with Herald's pragmas and schema. */
struct hook_store *hook_store_sqlite_open(const char *path, int64_t max_bytes, char err[512])
{
  if(create_private(path)) {
    snprintf(err, 512, "cannot create the webhook store %s: %s", path, strerror(errno));
    return NULL;
  }
  struct sq *q = calloc(1, sizeof(*q));
  if(!q) {
    snprintf(err, 512, "cannot open the webhook store %s: out of memory", path);
    return NULL;
  }
  q->base.ops = &sqlite_ops;
  int rc = sqlite3_open_v2(path, &q->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if(rc != SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(q->db, 10000);
  sqlite3_extended_result_codes(q->db, 1);
  if(exec(q->db, "PRAGMA journal_mode=WAL") || exec(q->db, "PRAGMA synchronous=FULL") ||
     exec(q->db, "PRAGMA temp_store=MEMORY") || exec(q->db, schema_sql))
    goto fail;
  if(max_bytes > 0) {
    char sql[96];
    sqlite3_int64 page = 4096;
    sqlite3_stmt *st;
    if(sqlite3_prepare_v2(q->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
      if(sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%lld",
             (long long)(max_bytes / (page > 0 ? page : 4096)));
    if(exec(q->db, sql))
      goto fail;
  }
  return &q->base;
fail:
  snprintf(err, 512, "cannot open the webhook store %s: %s", path,
           q->db ? sqlite3_errmsg(q->db) : "out of memory");
  sqlite3_close(q->db);
  free(q);
  return NULL;
}
