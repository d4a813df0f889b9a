#include "log.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "id.h"
#include "util/throttle.h"

static atomic_int min_level = GW_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void gw_log_set_level(enum util_log_level level)
{
  atomic_store(&min_level, (int)level);
}

enum util_log_level gw_log_get_level(void)
{
  return (enum util_log_level)atomic_load(&min_level);
}

int gw_log_parse_level(const char *s, enum util_log_level *out)
{
  for(int i = 0; i < 4; i++) {
    if(strcmp(s, names[i]) == 0) {
      *out = (enum util_log_level)i;
      return 0;
    }
  }
  return -1;
}

static void vlog(enum util_log_level level, const char *event, const char *fmt, va_list ap)
{
  if((int)level < atomic_load(&min_level))
    return;
  char line[1024];
  char ts[SUB_TIME_LEN + 1];
  sub_time_format(sub_now_ms(), ts);
  int n = snprintf(line, sizeof(line), "ts=%s level=%s event=%s", ts, names[level], event);
  if(fmt && n > 0 && (size_t)n < sizeof(line) - 1) {
    line[n++] = ' ';
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if(m > 0)
      n += m;
  }
  if(n < 0)
    return;
  if((size_t)n >= sizeof(line) - 1)
    n = (int)sizeof(line) - 2; /* cut, but keep the line a line */
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

void gw_log(enum util_log_level level, const char *event, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vlog(level, event, fmt, ap);
  va_end(ap);
}

/* libwebsockets' lines are about what a peer sent (a request too big, a
 * TLS handshake gone wrong) far more often than about Herald: a client can
 * make them at will, so they are throttled (one a second per thread, with
 * the count left out) and logged a level lower than libwebsockets gives
 * them, never as errors. Herald logs its own failures itself. */
static _Thread_local struct util_throttle lws_throttle;

static void lws_emit(int level, const char *msg)
{
  enum util_log_level lvl = level == LLL_ERR ? GW_LOG_WARN : GW_LOG_INFO;
  if((int)lvl < atomic_load(&min_level))
    return;
  unsigned long suppressed;
  if(!util_throttle_ok(&lws_throttle, time(NULL), &suppressed))
    return;
  char clean[512];
  size_t n = 0;
  for(const char *p = msg; *p && n < sizeof(clean) - 1; p++)
    clean[n++] = (*p == '\n' || *p == '"') ? ' ' : *p;
  while(n && clean[n - 1] == ' ')
    n--;
  clean[n] = '\0';
  gw_log(lvl, "lws", "msg=\"%s\" suppressed=%lu", clean, suppressed);
}

void gw_log_hook_lws(void)
{
  lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
}
