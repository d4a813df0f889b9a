#include "id.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/hex.h"

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint32_t counter; /* 12 bits used: the rand_a field */

uint64_t sub_now_ms(void)
{
  return (uint64_t)util_clock_wall_ms();
}

/* Eight random bytes from a per-thread pool refilled 512 bytes at a time:
 * one RAND_bytes call (which asks the kernel for the pid each time, to
 * notice a fork) per 64 ids. heraldd does not fork. */
static int random8(unsigned char out[8])
{
  static _Thread_local unsigned char pool[512];
  static _Thread_local size_t left;
  if(!left) {
    if(RAND_bytes(pool, sizeof(pool)) != 1)
      return -1;
    left = sizeof(pool);
  }
  left -= 8;
  memcpy(out, pool + left, 8);
  OPENSSL_cleanse(pool + left, 8); /* an id's random part is used once */
  return 0;
}

int sub_id_new(char out[SUB_ID_LEN + 1], uint64_t *ms)
{
  unsigned char b[16];
  if(random8(b + 8))
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
  /* 8-4-4-4-12 hex digits: each group's NUL is overwritten by the dash */
  util_hex_encode(out, 9, b, 4);
  out[8] = '-';
  util_hex_encode(out + 9, 5, b + 4, 2);
  out[13] = '-';
  util_hex_encode(out + 14, 5, b + 6, 2);
  out[18] = '-';
  util_hex_encode(out + 19, 5, b + 8, 2);
  out[23] = '-';
  util_hex_encode(out + 24, 13, b + 10, 6);
  if(ms)
    *ms = t;
  return 0;
}

void sub_time_format(uint64_t ms, char out[SUB_TIME_LEN + 1])
{
  /* the text up to the seconds is made once a second per thread: gmtime_r
   * takes glibc's time zone lock, which publishing threads contend for */
  static _Thread_local time_t last_secs = -1;
  static _Thread_local char last[SUB_TIME_LEN + 1];
  time_t secs = (time_t)(ms / 1000u);
  if(secs != last_secs) {
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64]; /* wide enough for any int the compiler can imagine */
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.000Z", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(last, buf, SUB_TIME_LEN);
    last[SUB_TIME_LEN] = '\0';
    last_secs = secs;
  }
  memcpy(out, last, SUB_TIME_LEN + 1);
  unsigned frac = (unsigned)(ms % 1000u);
  out[SUB_TIME_LEN - 4] = (char)('0' + frac / 100);
  out[SUB_TIME_LEN - 3] = (char)('0' + frac / 10 % 10);
  out[SUB_TIME_LEN - 2] = (char)('0' + frac % 10);
}
