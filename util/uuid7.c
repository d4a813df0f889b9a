#include "uuid7.h"

#include <string.h>

#include "hex.h"

int util_uuid7_ms(const char *id, int64_t *ms)
{
  if(strnlen(id, UTIL_UUID7_LEN + 1) != UTIL_UUID7_LEN || id[14] != '7' || id[8] != '-')
    return -1;
  static const int at[12] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12};
  int64_t t = 0;
  for(int i = 0; i < 12; i++) {
    int v = util_hexval(id[at[i]]);
    if(v < 0)
      return -1;
    t = t << 4 | v;
  }
  *ms = t;
  return 0;
}
