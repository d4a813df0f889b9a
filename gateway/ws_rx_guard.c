#include "ws_rx_guard.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What is known of one socket's byte stream. */
enum rx_state {
  RX_OFF = 0,  /* not followed: passed through */
  RX_HTTP,     /* reading a request's headers */
  RX_HTTP_END, /* the headers are read; nothing after them yet */
  RX_FRAMES,   /* upgraded: following frame headers */
};

struct rx_entry {
  uint8_t state;
  uint8_t eol;      /* RX_HTTP: 1 after a line end, 2 after a line end and CR */
  uint8_t hdr_len;  /* bytes of the current frame header seen */
  uint8_t hdr_need; /* the header's whole length, once its 2nd byte is seen */
  uint8_t len7;     /* the 7-bit length of the header's 2nd byte */
  uint8_t held;     /* a header's first byte is held back, in held_byte */
  uint8_t held_byte;
  uint64_t ext;          /* the extended payload length being read */
  uint64_t payload_left; /* payload bytes of the current frame still to come */
};

/* One table per client worker thread, indexed by descriptor: a worker
 * reads only the sockets it adopted, and resets an entry when it adopts
 * the descriptor, so a number reused after a close starts afresh. */
static __thread struct rx_entry *table;
static __thread size_t table_len;
static __thread unsigned long refused;

/* The socket read itself (what glibc's recv does on Linux). */
static ssize_t real_recv(int fd, void *buf, size_t len, int flags)
{
  return (ssize_t)syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

int gw_rx_guard_thread_init(void)
{
  struct rlimit rl;
  size_t n = 1024;
  if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > n)
    n = rl.rlim_cur > (1u << 20) ? (1u << 20) : (size_t)rl.rlim_cur;
  table = calloc(n, sizeof(*table));
  if(!table)
    return -1;
  table_len = n;
  return 0;
}

void gw_rx_guard_thread_free(void)
{
  free(table);
  table = NULL;
  table_len = 0;
}

static struct rx_entry *entry(int fd)
{
  if(fd < 0 || (size_t)fd >= table_len || table[fd].state == RX_OFF)
    return NULL;
  return &table[fd];
}

void gw_rx_guard_track(int fd)
{
  if(fd >= 0 && (size_t)fd < table_len)
    table[fd] = (struct rx_entry){.state = RX_HTTP};
}

void gw_rx_guard_upgraded(int fd)
{
  struct rx_entry *e = entry(fd);
  if(!e)
    return;
  if(e->state == RX_HTTP_END)
    *e = (struct rx_entry){.state = RX_FRAMES};
  else /* read past the headers already (not by libwebsockets 4.1.6): where
        * the frames start is not known, so they cannot be followed */
    e->state = RX_OFF;
}

unsigned long gw_rx_guard_refused(void)
{
  return refused;
}

/* Reads no further than the end of the request's headers (an empty line,
 * CRLF or bare LF), so that what follows them is read by the next call,
 * once the upgrade is known. */
static ssize_t read_http(struct rx_entry *e, int fd, unsigned char *buf, size_t len)
{
  ssize_t n = real_recv(fd, buf, len, MSG_PEEK);
  if(n <= 0)
    return n; /* the end, or nothing yet: a read would say the same */
  size_t take = (size_t)n;
  for(size_t i = 0; i < take; i++) {
    if(buf[i] == '\n') {
      if(e->eol) {
        take = i + 1;
        e->state = RX_HTTP_END;
        e->eol = 0;
        break;
      }
      e->eol = 1;
    }
    else if(buf[i] == '\r' && e->eol == 1)
      e->eol = 2;
    else if(buf[i] != '\r' || e->eol)
      e->eol = 0;
  }
  return real_recv(fd, buf, take, 0); /* the bytes just seen: this thread alone reads them */
}

/* A frame to refuse: its header gets reserved opcode 3 (FIN kept, RSV
 * cleared), which libwebsockets fails with close 1002 before reading the
 * rest; the socket is not followed any more. */
static void refuse(struct rx_entry *e, unsigned char *first)
{
  *first = (unsigned char)((*first & 0x80) | 0x03);
  e->state = RX_OFF;
  refused++;
}

/* Whether a frame whose header starts with these two bytes is refused:
 * unmasked (§5.1), or a control frame whose length is not in the 7-bit
 * form (§5.5: at most 125 bytes), which libwebsockets 4.1.6 answers by
 * dropping the socket with no close frame. */
static bool refused_header(unsigned char first, unsigned char second)
{
  return !(second & 0x80) || ((first & 0x08) && (second & 0x7f) > 125);
}

/* The bytes of the extended payload length that follow a 7-bit length. */
static unsigned ext_len_bytes(uint8_t len7)
{
  return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

/* A header's second byte: the mask bit and the length form. Returns false
 * when the frame is refused (refused_header). first NULL: the first byte
 * is gone, and was checked with this one (peeked). */
static bool second_byte(struct rx_entry *e, unsigned char c, unsigned char *first)
{
  if(first && refused_header(*first, c)) {
    refuse(e, first);
    return false;
  }
  e->len7 = c & 0x7f;
  e->hdr_need = (uint8_t)(2 + ext_len_bytes(e->len7) + 4);
  e->ext = 0;
  e->hdr_len = 2;
  return true;
}

/* Follows the frame headers in buf[0..n). Returns how many bytes to give
 * libwebsockets: n, or n - 1 when the last byte is a header's first byte
 * whose frame's mask bit is not known yet (held back in e). */
static size_t follow(struct rx_entry *e, int fd, unsigned char *buf, size_t n)
{
  size_t i = 0;
  while(i < n && e->state == RX_FRAMES) {
    if(e->payload_left) {
      uint64_t skip = n - i < e->payload_left ? n - i : e->payload_left;
      i += (size_t)skip;
      e->payload_left -= skip;
      continue;
    }
    unsigned char c = buf[i];
    if(e->hdr_len == 0) {
      if(i + 1 < n) {
        if(second_byte(e, buf[i + 1], &buf[i]))
          i += 2;
        continue;
      }
      /* the last byte: peek at the next one, else hold this one back */
      unsigned char next;
      if(real_recv(fd, &next, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
        if(refused_header(c, next)) {
          refuse(e, &buf[i]);
          break;
        }
        e->hdr_len = 1; /* masked: its 2nd byte is read next time */
        i++;
        continue;
      }
      e->held = 1;
      e->held_byte = c;
      return n - 1;
    }
    if(e->hdr_len == 1) { /* checked already, by a peek */
      second_byte(e, c, NULL);
      i++;
    }
    else {
      if(e->hdr_len < 2 + ext_len_bytes(e->len7))
        e->ext = e->ext << 8 | c;
      e->hdr_len++;
      i++;
    }
    if(e->hdr_len >= 2 && e->hdr_len == e->hdr_need) {
      e->payload_left = e->len7 < 126 ? e->len7 : e->ext;
      e->hdr_len = 0;
    }
  }
  return n;
}

static ssize_t read_frames(struct rx_entry *e, int fd, unsigned char *buf, size_t len)
{
  if(!e->held) {
    ssize_t n = real_recv(fd, buf, len, 0);
    if(n <= 0)
      return n;
    size_t give = follow(e, fd, buf, (size_t)n);
    if(give == 0) { /* the one byte read is held: nothing to give yet */
      errno = EAGAIN;
      return -1;
    }
    return (ssize_t)give;
  }
  /* the held first byte goes first, with what follows it */
  buf[0] = e->held_byte;
  ssize_t n;
  if(len > 1)
    n = real_recv(fd, buf + 1, len - 1, 0);
  else { /* room for the held byte only: peek at its frame's mask bit */
    unsigned char next;
    n = real_recv(fd, &next, 1, MSG_PEEK);
    if(n == 1) {
      e->held = 0;
      if(refused_header(buf[0], next))
        refuse(e, &buf[0]);
      else
        e->hdr_len = 1;
      return 1;
    }
  }
  if(n < 0)
    return n; /* nothing yet (EAGAIN): still held */
  e->held = 0;
  if(n == 0)
    return 0; /* the peer is gone, in the middle of a header */
  return (ssize_t)follow(e, fd, buf, (size_t)n + 1);
}

/* libwebsockets reads every plain-TCP socket through recv(buf, len, 0).
 * This definition takes the place of glibc's for the whole process; on
 * threads and sockets not followed it is glibc's (the same system call). */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
  struct rx_entry *e = flags == 0 ? entry(fd) : NULL;
  if(!e)
    return real_recv(fd, buf, len, flags);
  switch(e->state) {
  case RX_HTTP_END: /* not upgraded: another request follows */
    e->state = RX_HTTP;
    return read_http(e, fd, buf, len);
  case RX_HTTP: return read_http(e, fd, buf, len);
  default: return read_frames(e, fd, buf, len);
  }
}
