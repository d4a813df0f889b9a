/* gateway/ws_rx_guard.c: the recv() that follows frame headers, over real
 * sockets (a socketpair): headers read no further than their end, masked
 * frames untouched whatever their length form or payload, unmasked ones
 * given a reserved opcode (whole, split after their first byte, or after a
 * masked one), and untracked sockets and threads passed through. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_rx_guard.h"

static int sv[2]; /* sv[0] the server's side (tracked), sv[1] the client's */

static const char REQUEST[] = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";

static int setup(void **state)
{
  (void)state;
  if(socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
    return -1;
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  if(gw_rx_guard_thread_init())
    return -1;
  gw_rx_guard_track(sv[0]);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  gw_rx_guard_thread_free();
  close(sv[0]);
  close(sv[1]);
  return 0;
}

static void send_all(const void *p, size_t n)
{
  assert_int_equal(write(sv[1], p, n), (ssize_t)n);
}

/* Sends the handshake and reads it as libwebsockets would, then upgrades. */
static void handshake(void)
{
  unsigned char buf[4096];
  send_all(REQUEST, sizeof(REQUEST) - 1);
  send_all("\x81", 1); /* a frame's first byte already behind it */
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), (ssize_t)(sizeof(REQUEST) - 1));
  assert_memory_equal(buf, REQUEST, sizeof(REQUEST) - 1);
  gw_rx_guard_upgraded(sv[0]);
}

static void masked_frames_pass_unchanged(void **state)
{
  (void)state;
  handshake();
  /* the rest of a masked text frame of 2 bytes, a masked 16-bit-length
   * frame whose payload looks like unmasked headers, a masked ping */
  unsigned char f[2 + 4 + 2 + 4 + 4 + 300 + 6];
  size_t n = 0;
  f[n++] = 0x82; /* 2 bytes, masked */
  memcpy(f + n, "\x01\x02\x03\x04", 4);
  n += 4;
  f[n++] = 'a';
  f[n++] = 'b';
  f[n++] = 0x82; /* a binary frame */
  f[n++] = 0xfe; /* masked, 16-bit length */
  f[n++] = 0x01;
  f[n++] = 0x2c; /* 300 */
  memcpy(f + n, "\x05\x06\x07\x08", 4);
  n += 4;
  memset(f + n, 0x01, 300); /* 0x01 0x01 ...: unmasked-looking headers */
  n += 300;
  f[n++] = 0x89;
  f[n++] = 0x80;
  memcpy(f + n, "\x09\x0a\x0b\x0c", 4);
  n += 4;
  send_all(f, n);
  unsigned char buf[4096];
  size_t got = 0;
  while(got < n + 1) {
    ssize_t r = recv(sv[0], buf + got, sizeof buf - got, 0);
    assert_true(r > 0);
    got += (size_t)r;
  }
  assert_int_equal(buf[0], 0x81);
  assert_memory_equal(buf + 1, f, n); /* nothing rewritten */
  assert_int_equal(gw_rx_guard_refused(), 0); /* the first test: none before */
}

static void unmasked_frame_gets_a_reserved_opcode(void **state)
{
  (void)state;
  unsigned long before = gw_rx_guard_refused();
  handshake();
  send_all("\x02{}", 3); /* the rest of an unmasked text frame */
  unsigned char buf[64];
  ssize_t r = recv(sv[0], buf, sizeof buf, 0);
  assert_int_equal(r, 4);
  assert_int_equal(buf[0], 0x83); /* FIN kept, opcode 3 */
  assert_memory_equal(buf + 1, "\x02{}", 3);
  assert_int_equal(gw_rx_guard_refused(), before + 1);
  /* no longer followed: bytes pass as they are */
  send_all("\x81\x00", 2);
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), 2);
  assert_int_equal(buf[0], 0x81);
}

static void first_byte_alone_is_held(void **state)
{
  (void)state;
  unsigned long before = gw_rx_guard_refused();
  handshake(); /* leaves a frame's first byte (0x81) alone in the socket */
  unsigned char buf[64];
  errno = 0;
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), -1);
  assert_int_equal(errno, EAGAIN); /* held: its mask bit is not known yet */
  send_all("\x00", 1);               /* unmasked, empty */
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), 2);
  assert_int_equal(buf[0], 0x83);
  assert_int_equal(buf[1], 0x00);
  assert_int_equal(gw_rx_guard_refused(), before + 1);
}

static void split_unmasked_header_is_caught(void **state)
{
  (void)state;
  unsigned long before = gw_rx_guard_refused();
  unsigned char buf[64];
  send_all(REQUEST, sizeof(REQUEST) - 1);
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), (ssize_t)(sizeof(REQUEST) - 1));
  gw_rx_guard_upgraded(sv[0]);
  /* a masked empty frame, then a frame's first byte with nothing after it */
  send_all("\x81\x80\x01\x02\x03\x04\x89", 7);
  ssize_t r = recv(sv[0], buf, sizeof buf, 0);
  assert_int_equal(r, 6); /* the 0x89 is held back until its 2nd byte comes */
  errno = 0;
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), -1);
  assert_int_equal(errno, EAGAIN); /* still nothing to decide it */
  send_all("\x00", 1); /* unmasked */
  r = recv(sv[0], buf, sizeof buf, 0);
  assert_int_equal(r, 2);
  assert_int_equal(buf[0], 0x83);
  assert_int_equal(buf[1], 0x00);
  assert_int_equal(gw_rx_guard_refused(), before + 1);
}

static void long_control_frame_is_refused(void **state)
{
  (void)state;
  unsigned long before = gw_rx_guard_refused();
  handshake(); /* 0x81 waits: make it a masked empty text first */
  send_all("\x80\x01\x02\x03\x04", 5);
  send_all("\x89\xfe\x00\x7e", 4); /* a masked ping of 126 bytes: too long */
  unsigned char buf[64];
  ssize_t r = recv(sv[0], buf, sizeof buf, 0);
  assert_int_equal(r, 10);
  assert_int_equal(buf[0], 0x81); /* the text frame untouched */
  assert_int_equal(buf[6], 0x83); /* the ping refused */
  assert_int_equal(gw_rx_guard_refused(), before + 1);
}

static void not_upgraded_stays_http(void **state)
{
  (void)state;
  unsigned long before = gw_rx_guard_refused();
  unsigned char buf[256];
  static const char page[] = "GET / HTTP/1.1\nHost: x\n\n"; /* bare LF lines */
  send_all(page, sizeof(page) - 1);
  send_all(page, sizeof(page) - 1);
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), (ssize_t)(sizeof(page) - 1));
  /* no upgrade: the next request is read as a request, unchanged */
  assert_int_equal(recv(sv[0], buf, sizeof buf, 0), (ssize_t)(sizeof(page) - 1));
  assert_memory_equal(buf, page, sizeof(page) - 1);
  assert_int_equal(gw_rx_guard_refused(), before);
}

static void untracked_passes_through(void **state)
{
  (void)state;
  int other[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, other), 0);
  assert_int_equal(write(other[1], "\x81\x00\x81\x00", 4), 4);
  unsigned char buf[16];
  assert_int_equal(recv(other[0], buf, sizeof buf, 0), 4);
  assert_memory_equal(buf, "\x81\x00\x81\x00", 4);
  /* flags other than 0 are never followed */
  handshake();
  send_all("\x00", 1);
  assert_int_equal(recv(sv[0], buf, sizeof buf, MSG_PEEK), 2);
  assert_int_equal(buf[0], 0x81);
  close(other[0]);
  close(other[1]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(masked_frames_pass_unchanged, setup, teardown),
      cmocka_unit_test_setup_teardown(unmasked_frame_gets_a_reserved_opcode, setup, teardown),
      cmocka_unit_test_setup_teardown(first_byte_alone_is_held, setup, teardown),
      cmocka_unit_test_setup_teardown(split_unmasked_header_is_caught, setup, teardown),
      cmocka_unit_test_setup_teardown(long_control_frame_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(not_upgraded_stays_http, setup, teardown),
      cmocka_unit_test_setup_teardown(untracked_passes_through, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
