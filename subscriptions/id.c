#include "id.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint32_t counter; /* 12 bits used: the rand_a field */

uint64_t sub_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int sub_id_new(char out[SUB_ID_LEN + 1], uint64_t *ms)
{
  unsigned char b[16];
  if(RAND_bytes(b + 8, 8) != 1)
    return -1;
  uint64_t now = sub_now_ms();
  pthread_mutex_lock(&id_lock);
  if(now > last_ms) {
    last_ms = now;
    counter = b[8] & 0x3f; /* random start, room left to count up */
  }
  else if(++counter > 0xfff) {
    last_ms++; /* more than ~4000 ids in one ms: borrow the next ms */
    counter = 0;
  }
  uint64_t t = last_ms;
  uint32_t c = counter;
  pthread_mutex_unlock(&id_lock);

  for(int i = 0; i < 6; i++)
    b[i] = (unsigned char)(t >> (40 - 8 * i));
  b[6] = (unsigned char)(0x70 | ((c >> 8) & 0x0f));
  b[7] = (unsigned char)(c & 0xff);
  b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
  snprintf(out, SUB_ID_LEN + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  if(ms)
    *ms = t;
  return 0;
}

void sub_time_format(uint64_t ms, char out[SUB_TIME_LEN + 1])
{
  time_t secs = (time_t)(ms / 1000u);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64]; /* wide enough for any int the compiler can imagine */
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000u));
  memcpy(out, buf, SUB_TIME_LEN);
  out[SUB_TIME_LEN] = '\0';
}
