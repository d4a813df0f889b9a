/* The lingering close (gateway/linger.c): a socket handed over is read and
 * dropped, and closed only when its peer closes, past its byte bound, past
 * its time bound, or when the linger stops; one past the socket cap is
 * closed at once. Each test holds the other end of a socket pair and sees
 * the close as an end of file there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "linger.h"

/* A connected pair: fds[0] for the linger, fds[1] the test's end, whose
 * blocking writes give up after 10 s (a bound for a broken build). */
static void pair(int fds[2])
{
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  struct timeval tv = {10, 0};
  assert_int_equal(setsockopt(fds[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* True when the test's end sees the other end closed (an end of file, or a
 * reset) within 10 s: a bound for a broken build, not a timing check. Data
 * still arriving is read and skipped. */
static bool closed_by_peer(int fd)
{
  char buf[4096];
  for(int turns = 0; turns < 1000; turns++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if(poll(&p, 1, 10) < 0)
      return false;
    if(!(p.revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if(n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      return true;
  }
  return false;
}

/* True when the other end is open now: nothing to read, no hang-up. */
static bool still_open(int fd)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 0;
}

/* Writes n bytes, blocking: more than the pair's buffers hold goes through
 * only while the other end reads. Returns what was written. */
static size_t send_bytes(int fd, size_t n)
{
  char buf[4096];
  memset(buf, 'x', sizeof(buf));
  size_t sent = 0;
  while(sent < n) {
    size_t k = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
    ssize_t w = send(fd, buf, k, MSG_NOSIGNAL);
    if(w <= 0)
      break;
    sent += (size_t)w;
  }
  return sent;
}

static void test_drains_until_the_peer_closes(void **state)
{
  (void)state;
  struct gw_linger *l = gw_linger_new(4, 8 << 20, 60000);
  assert_non_null(l);
  int fds[2];
  pair(fds);
  assert_true(gw_linger_add(l, fds[0]));
  /* far more than the pair's buffers: it goes through only if read, and
   * only if the socket stays open while under the bound */
  assert_int_equal(send_bytes(fds[1], 4 << 20), 4 << 20);
  assert_true(still_open(fds[1]));
  shutdown(fds[1], SHUT_WR); /* the client is done: the linger closes */
  assert_true(closed_by_peer(fds[1]));
  close(fds[1]);
  gw_linger_free(l);
}

static void test_closes_past_the_byte_bound(void **state)
{
  (void)state;
  struct gw_linger *l = gw_linger_new(4, 4096, 60000);
  assert_non_null(l);
  int fds[2];
  pair(fds);
  assert_true(gw_linger_add(l, fds[0]));
  send_bytes(fds[1], 8192); /* past the bound: closed, the rest refused */
  assert_true(closed_by_peer(fds[1]));
  close(fds[1]);
  gw_linger_free(l);
}

static void test_closes_past_the_time_bound(void **state)
{
  (void)state;
  struct gw_linger *l = gw_linger_new(4, 1 << 20, 1);
  assert_non_null(l);
  int fds[2];
  pair(fds);
  assert_true(gw_linger_add(l, fds[0]));
  assert_true(closed_by_peer(fds[1])); /* the peer sent nothing, closed nothing */
  close(fds[1]);
  gw_linger_free(l);
}

static void test_past_the_socket_cap_closes_at_once(void **state)
{
  (void)state;
  struct gw_linger *l = gw_linger_new(1, 1 << 20, 60000);
  assert_non_null(l);
  int a[2], b[2];
  pair(a);
  pair(b);
  assert_true(gw_linger_add(l, a[0]));
  assert_false(gw_linger_add(l, b[0])); /* closed, not kept */
  assert_true(closed_by_peer(b[1]));
  assert_true(still_open(a[1]));
  gw_linger_free(l); /* closes what still lingers */
  assert_true(closed_by_peer(a[1]));
  close(a[1]);
  close(b[1]);
}

int main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_drains_until_the_peer_closes),
      cmocka_unit_test(test_closes_past_the_byte_bound),
      cmocka_unit_test(test_closes_past_the_time_bound),
      cmocka_unit_test(test_past_the_socket_cap_closes_at_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
