#ifndef HERALD_SESSION_H
#define HERALD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "index.h"
#include "protocol.h"
#include "rate.h"
#include "util/throttle.h"

/* What a client session is, whatever carries it: who it is (a verified
 * token's identity and grants, or anonymous), what it subscribed to (in its
 * worker's index, counted in the fan-out's interest), its message rate and
 * its deadlines. No I/O, no wire format: the protocol answers. Used from its
 * worker's thread only. */

struct sub_fanout;
struct sub_engine;
struct sub_batch;
struct sub_log_result;
struct gw_resume;

/* What the sessions of one worker share. */
struct gw_session_env {
  const struct gw_config *cfg;
  struct gw_auth *auth;
  struct sub_fanout *fanout;    /* told of each pattern's interest; may be NULL */
  struct sub_index *index;      /* the worker's */
  int worker;                   /* the worker's number: fan-out sink, log lines */
  struct sub_engine *engine;    /* for resumes (snapshot, history); may be NULL */
  /* Delivers a batch taken from the worker's queue, with the index as it
   * is, and empties it (a resume's handoff). */
  void (*drain)(void *arg, struct sub_batch *batch);
  void *drain_arg;
  struct util_throttle auth_log; /* refused tokens are logged once a second */
};

struct gw_session {
  struct sub_subscriber sub; /* in env->index */
  struct gw_session_env *env;
  char **patterns;
  uint64_t *covered; /* per pattern: every matching event above this offset was sent */
  int npatterns;
  bool authed; /* id holds a verified token */
  struct gw_identity id;
  int64_t auth_deadline_us; /* 0: no auth message required */
  int64_t last_rx_us;       /* anything received, pongs included */
  bool ping_sent;           /* a ping is out, no answer yet */
  struct gw_bucket bucket;
  int refused; /* messages rate-limited since the last quiet second */
  int64_t last_refused_us;
};

/* Starts a session at now_us. id (may be NULL) is a token verified at the
 * handshake: the session owns its contents now. Without one, and when
 * anonymous may do nothing, an auth message is due within auth.timeout_ms. */
void gw_session_init(struct gw_session *s, struct gw_session_env *env, struct gw_identity *id,
                     int64_t now_us);

/* Drops every subscription and the identity; the session can be freed. */
void gw_session_clear(struct gw_session *s);

/* What the session may do now: its token's grants, or anonymous's. */
const struct gw_grants *gw_session_grants(const struct gw_session *s);

/* The token's subject for log lines: "-" when anonymous or none. */
const char *gw_session_who(const struct gw_session *s);

enum gw_sub_result {
  GW_SUB_ADDED,   /* added, and counted in the fan-out's interest */
  GW_SUB_EXISTS,  /* already subscribed: nothing changed */
  GW_SUB_FULL,    /* client.max_subscriptions reached */
  GW_SUB_NOMEM,   /* out of memory: nothing changed */
};

/* Subscribes to the valid pattern (len bytes, NUL-terminated). The fan-out
 * counts it before this returns, so an event published after the caller's
 * ack reaches the session. Grants are the caller's to check. */
enum gw_sub_result gw_session_subscribe(struct gw_session *s, const char *pattern, size_t len);

/* Where a resume starts. */
struct gw_since_req {
  enum gw_since kind;     /* GW_SINCE_CURSOR or GW_SINCE_TIME */
  const char *epoch;      /* a cursor's */
  uint64_t offset;        /* a cursor's */
  uint64_t ms;            /* a time's */
  bool gap_fail;          /* refuse when events were lost */
  /* 0: no bound; else the replay keeps the newest events whose frames fit
   * in this many bytes, with a "limit" gap before them (a WebSocket
   * connection's send queue: a replay bigger than it would cut the
   * connection on every retry) */
  size_t max_bytes;
};

enum gw_resume_result {
  GW_RESUME_OK,          /* subscribed: *res says what, *replay has the events to send */
  GW_RESUME_EXISTS,      /* already subscribed: nothing changed, nothing to replay */
  GW_RESUME_FULL,        /* client.max_subscriptions reached */
  GW_RESUME_NOMEM,
  GW_RESUME_NO_HISTORY,  /* history is off */
  GW_RESUME_BAD_CURSOR,  /* the cursor is ahead of the log */
  GW_RESUME_GAP,         /* gap_fail and events were lost: *res has the gap; not subscribed */
};

/* Subscribes to the valid pattern from a position in the history log: the
 * interest is counted, the engine's high-water mark taken with what the
 * worker's queue held so far (delivered at once to the existing
 * subscriptions), the subscription entered in the index, then every
 * retained matching event after the position up to the mark read into
 * *replay (those another subscription of the session sent already left
 * out, history.max_replay at most). The caller sends the ack and then
 * *replay (sub_log_result_clear after) before anything else of the
 * session's: live events above the mark follow through the index. */
enum gw_resume_result gw_session_resume(struct gw_session *s, const char *pattern, size_t len,
                                        const struct gw_since_req *q, struct gw_resume *res,
                                        struct sub_log_result *replay);

/* Unsubscribes from pattern. Returns false when it was not subscribed. */
bool gw_session_unsubscribe(struct gw_session *s, const char *pattern);

/* Takes id (a verified token: the session owns its contents now) in place
 * of the current one; the auth deadline is met. */
void gw_session_authenticate(struct gw_session *s, struct gw_identity *id);

/* Drops the subscriptions the grants no longer cover (after a narrower
 * token), calling dropped(arg, pattern) before each goes. Returns how many. */
int gw_session_revoke(struct gw_session *s, void (*dropped)(void *arg, const char *pattern),
                      void *arg);

enum gw_rate_result {
  GW_RATE_OK,      /* handle the message */
  GW_RATE_REFUSED, /* refuse it: *wait_ms until a token is there */
  GW_RATE_CLOSE,   /* refused client.rate_close_after times in a row: close */
};

/* Charges one message to the session's bucket at now_us. A flood that lets
 * one message through now and then goes on counting refusals; a quiet
 * second resets the count. */
enum gw_rate_result gw_session_rate(struct gw_session *s, int64_t now_us, int64_t *wait_ms);

/* Something came from the client (pongs included) at now_us. */
void gw_session_received(struct gw_session *s, int64_t now_us);

/* True when an auth message was due by now_us and none came. */
bool gw_session_auth_overdue(const struct gw_session *s, int64_t now_us);

/* True when the session's token has expired (past auth.leeway_s) at `wall`
 * (seconds since the epoch). Anonymous sessions never expire. */
bool gw_session_expired(const struct gw_session *s, long long wall);

/* True when nothing came for client.idle_timeout_s (0: never). */
bool gw_session_idle(const struct gw_session *s, int64_t now_us);

/* True once per quiet client.ping_interval_s (0: never): send a ping now.
 * Marks the ping as sent until something is received. */
bool gw_session_ping_due(struct gw_session *s, int64_t now_us);

#endif
