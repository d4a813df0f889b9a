#ifndef HERALD_UTIL_LOG_LEVEL_H
#define HERALD_UTIL_LOG_LEVEL_H

/* The one set of log levels. The values are fixed (0 to 3, in this order):
 * the webhooks service passes a level to the gateway's log as an int. */
enum util_log_level {
  UTIL_LOG_DEBUG = 0,
  UTIL_LOG_INFO = 1,
  UTIL_LOG_WARN = 2,
  UTIL_LOG_ERROR = 3,
};

#endif
