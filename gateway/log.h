#ifndef HERALD_LOG_H
#define HERALD_LOG_H

/* One line per notable event on stderr:
 *   ts=2026-11-28T00:25:57.123Z level=info event=listening port=client addr=127.0.0.1:8080
 * Lines are written whole (one write), so threads never interleave them.
 * Never log a secret. */

#include "util/log_level.h"

/* The levels are util's (one enum for every module); these names stay. */
#define GW_LOG_DEBUG UTIL_LOG_DEBUG
#define GW_LOG_INFO UTIL_LOG_INFO
#define GW_LOG_WARN UTIL_LOG_WARN
#define GW_LOG_ERROR UTIL_LOG_ERROR

void gw_log_set_level(enum util_log_level level);
enum util_log_level gw_log_get_level(void);
/* Parses "debug", "info", "warn" or "error". Returns 0, or -1 if unknown. */
int gw_log_parse_level(const char *s, enum util_log_level *out);

/* `event` is a short snake_case name; `fmt` adds further key=value fields
 * (may be NULL). Values with spaces should be quoted by the caller (%s with
 * gw_log_quote is not needed for the ones Herald logs). */
void gw_log(enum util_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gw_debug(ev, ...) gw_log(GW_LOG_DEBUG, ev, __VA_ARGS__)
#define gw_info(ev, ...) gw_log(GW_LOG_INFO, ev, __VA_ARGS__)
#define gw_warn(ev, ...) gw_log(GW_LOG_WARN, ev, __VA_ARGS__)
#define gw_error(ev, ...) gw_log(GW_LOG_ERROR, ev, __VA_ARGS__)

/* Routes libwebsockets' own warnings and errors into this log: as warn and
 * info (they are mostly about what a peer sent), at most one line a second
 * per thread, each with the number of lines left out before it
 * (suppressed=N). */
void gw_log_hook_lws(void);

#endif
