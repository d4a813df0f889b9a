#ifndef HERALD_UTIL_CAPS_H
#define HERALD_UTIL_CAPS_H

/* Limits more than one module checks against, kept in one place. (Named
 * caps.h, not limits.h, so it can never stand in for <limits.h>.) */

#define UTIL_TOKEN_MAX 8192 /* bytes of a token (a compact JWT) */

#endif
