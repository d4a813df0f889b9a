#include "bearer.h"

#include <string.h>
#include <strings.h>

int util_bearer_parse(const char *value, const char **token, size_t *len)
{
  if(!value)
    return UTIL_BEARER_MISSING;
  if(strncasecmp(value, "Bearer ", 7) != 0)
    return UTIL_BEARER_NOT_BEARER;
  const char *t = value + 7;
  while(*t == ' ')
    t++;
  if(!*t)
    return UTIL_BEARER_EMPTY;
  *token = t;
  *len = strlen(t);
  return UTIL_BEARER_OK;
}
