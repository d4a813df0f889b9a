/* The durable queue's SQLite file: opening, the schema, and its pragmas.
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
#include <stdio.h>
#include <string.h>

#include "hooks_internal.h"

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

int store_exec(sqlite3 *db, const char *sql)
{
  return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Opens (creating) the database with Herald's pragmas and schema.
 * Returns 0, or -1 with err naming the file and SQLite's reason. */
int store_open(const char *path, int64_t max_bytes, sqlite3 **out, char err[512])
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if(rc != SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  if(store_exec(db, "PRAGMA journal_mode=WAL") || store_exec(db, "PRAGMA synchronous=FULL") ||
     store_exec(db, "PRAGMA temp_store=MEMORY") || store_exec(db, schema_sql))
    goto fail;
  if(max_bytes > 0) {
    char sql[96];
    sqlite3_int64 page = 4096;
    sqlite3_stmt *st;
    if(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK) {
      if(sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%lld",
             (long long)(max_bytes / (page > 0 ? page : 4096)));
    if(store_exec(db, sql))
      goto fail;
  }
  *out = db;
  return 0;
fail:
  snprintf(err, 512, "cannot open the webhook store %s: %s", path,
           db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_close(db);
  return -1;
}

void store_close(sqlite3 *db)
{
  sqlite3_close(db);
}
