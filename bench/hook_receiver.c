/*
 * hook_receiver.c - a loopback HTTP/1.1 keep-alive receiver for the webhook
 * benchmark (bench/webhooks.js).
 *
 *   hook_receiver [-p PORT] [-f FAIL_EVERY] [-r SEED] [-s SECRET] [-v VERIFY_EVERY]
 *                 [-c MAX_CONNECTIONS] [-t LIFETIME_S]
 *
 * One thread, one epoll loop, no library. It listens on 127.0.0.1 only and
 * prints "listening port=N" on stdout once it does (-p 0, the default, takes
 * any free port). Every POST except to the control paths below is a
 * delivery, whatever its path (100 endpoints can share one receiver as
 * /e/0 .. /e/99); it is answered 200, or 500 for every FAIL_EVERY-th
 * delivery (a counter: exactly 1 in FAIL_EVERY), or with -r SEED for each
 * delivery with probability 1/FAIL_EVERY from a PRNG seeded with SEED.
 *
 *   GET /stats    {"requests":..,"ok":..,"failed":..,...}: the counts so far
 *   POST /reset   zeroes the counts (and the fail counter and the PRNG)
 *   POST /pause   deliveries are held unanswered (not read further, not
 *                 counted) until POST /resume: the sender's backlog builds
 *                 up, to be timed draining after the resume
 *   POST /resume  answers the held deliveries and goes on as before
 *
 * Each 2xx is remembered by a 64-bit hash of (path, webhook-id), so that a
 * delivery answered 2xx twice shows up as "duplicate_ok". With -s whsec_...
 * one delivery in VERIFY_EVERY (default 1000) has its Standard Webhooks
 * signature checked with OpenSSL's HMAC; the rest are not, so the check
 * stays out of the hot path. On SIGINT or SIGTERM, or after LIFETIME_S
 * (default 900: a forgotten receiver goes away by itself), it prints the
 * counts on stdout and exits 0.
 *
 * Bounds: at most MAX_CONNECTIONS sockets (default 4096, and under the
 * descriptor limit; more are closed at once), a
 * request (headers and body) of at most IN_CAP bytes (larger: 413 and the
 * connection is closed), chunked bodies are refused (501), and answers
 * queue at most OUT_CAP bytes per connection before it stops reading.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define IN_CAP (64 * 1024 + 8 * 1024) /* heraldd's largest body (64 KiB) and its headers */
#define OUT_CAP 8192
#define ANSWER_MAX 768        /* the longest answer (the /stats JSON) fits */
#define SEEN_SLOTS (1u << 21) /* 16 MiB of hashes; tracks up to SEEN_MAX 2xx deliveries */
#define SEEN_MAX (SEEN_SLOTS / 4 * 3)
#define EVENTS_MAX 256
#define SECRET_MAX 64

struct conn {
  struct conn *prev, *next; /* all open connections, closed at exit */
  int fd;
  bool close_after; /* answered with Connection: close, or a protocol error */
  bool parked;      /* a delivery waits in `in` for POST /resume */
  size_t in_len, scanned;
  size_t out_len, out_off;
  char out[OUT_CAP];
  char in[IN_CAP];
};

struct counts {
  unsigned long long requests, ok, failed, unique_ok, duplicate_ok, untracked, sig_checked, sig_bad,
      bad, accepted, refused, bytes;
};

static struct {
  int fail_every;
  bool random;
  uint64_t seed, rng;
  unsigned char key[SECRET_MAX];
  size_t key_len; /* 0: no signature checks */
  unsigned verify_every;
  int max_conns, nconns;
  struct conn *conns;
  bool paused, resuming;
  unsigned long long fail_counter, verify_counter;
  struct counts c;
  uint64_t *seen; /* open addressing, 0 = empty */
  size_t nseen;
  unsigned char *mac_msg; /* id.timestamp.body for a signature check */
} R;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
  (void)sig;
  stopping = 1;
}

/* ---- helpers ---- */

static uint64_t xorshift(void)
{
  uint64_t x = R.rng ? R.rng : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  R.rng = x;
  return x * 0x2545f4914f6cdd1dull;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Remembers h; returns false when it was there already. */
static bool seen_add(uint64_t h)
{
  if(!h)
    h = 1;
  size_t i = (size_t)(h ^ (h >> 29)) & (SEEN_SLOTS - 1);
  while(R.seen[i]) {
    if(R.seen[i] == h)
      return false;
    i = (i + 1) & (SEEN_SLOTS - 1);
  }
  R.seen[i] = h;
  R.nseen++;
  return true;
}

static bool name_is(const char *p, size_t n, const char *name)
{
  return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Parses "whsec_<base64>" into R.key. Returns 0 or -1. */
static int parse_secret(const char *text)
{
  if(strncmp(text, "whsec_", 6) != 0)
    return -1;
  const char *b = text + 6;
  size_t len = strlen(b);
  unsigned char buf[3 * 100 / 4 + 3];
  if(len == 0 || len % 4 || len > 100)
    return -1;
  int n = EVP_DecodeBlock(buf, (const unsigned char *)b, (int)len);
  if(n < 0)
    return -1;
  n -= (b[len - 1] == '=') + (b[len - 2] == '=');
  if(n < 1 || n > SECRET_MAX)
    return -1;
  memcpy(R.key, buf, (size_t)n);
  R.key_len = (size_t)n;
  return 0;
}

/* True when one "v1,<base64>" entry of sig is HMAC-SHA256(key, id.ts.body). */
static bool signature_ok(const char *id, size_t id_len, const char *ts, size_t ts_len,
                         const char *sig, size_t sig_len, const char *body, size_t body_len)
{
  if(!id || !ts || !sig || id_len + ts_len + body_len + 2 > IN_CAP)
    return false;
  unsigned char *m = R.mac_msg;
  size_t n = 0;
  memcpy(m + n, id, id_len), n += id_len;
  m[n++] = '.';
  memcpy(m + n, ts, ts_len), n += ts_len;
  m[n++] = '.';
  memcpy(m + n, body, body_len), n += body_len;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if(!HMAC(EVP_sha256(), R.key, (int)R.key_len, m, n, mac, &mac_len))
    return false;
  char want[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int want_len = EVP_EncodeBlock((unsigned char *)want, mac, (int)mac_len);
  /* space-separated entries: "v1,<b64> v1,<b64>" during a rotation */
  const char *p = sig, *end = sig + sig_len;
  while(p < end) {
    const char *e = memchr(p, ' ', (size_t)(end - p));
    if(!e)
      e = end;
    if(e - p == 3 + want_len && memcmp(p, "v1,", 3) == 0 && memcmp(p + 3, want, want_len) == 0)
      return true;
    p = e + 1;
  }
  return false;
}

/* ---- connections ---- */

static void conn_close(int ep, struct conn *c)
{
  if(c->prev)
    c->prev->next = c->next;
  else
    R.conns = c->next;
  if(c->next)
    c->next->prev = c->prev;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
  R.nconns--;
}

static void answer(struct conn *c, int status, const char *body)
{
  const char *reason = status == 200   ? "OK"
                       : status == 500 ? "Internal Server Error"
                       : status == 404 ? "Not Found"
                       : status == 413 ? "Content Too Large"
                       : status == 501 ? "Not Implemented"
                                       : "Bad Request";
  int n =
      snprintf(c->out + c->out_len, OUT_CAP - c->out_len,
               "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
               "%zu\r\n%s\r\n%s",
               status, reason, strlen(body), c->close_after ? "Connection: close\r\n" : "", body);
  if(n > 0 && (size_t)n < OUT_CAP - c->out_len)
    c->out_len += (size_t)n;
}

static void stats_json(char *buf, size_t n)
{
  int parked = 0;
  for(struct conn *c = R.conns; c; c = c->next)
    parked += c->parked;
  snprintf(buf, n,
           "{\"requests\":%llu,\"ok\":%llu,\"failed\":%llu,\"unique_ok\":%llu,"
           "\"duplicate_ok\":%llu,\"untracked\":%llu,\"sig_checked\":%llu,\"sig_bad\":%llu,"
           "\"bad\":%llu,\"connections\":%d,\"parked\":%d,\"paused\":%s,\"accepted\":%llu,"
           "\"refused\":%llu,\"bytes\":%llu}",
           R.c.requests, R.c.ok, R.c.failed, R.c.unique_ok, R.c.duplicate_ok, R.c.untracked,
           R.c.sig_checked, R.c.sig_bad, R.c.bad, R.nconns, parked, R.paused ? "true" : "false",
           R.c.accepted, R.c.refused, R.c.bytes);
}

static void reset(void)
{
  memset(&R.c, 0, sizeof(R.c));
  memset(R.seen, 0, SEEN_SLOTS * sizeof(*R.seen));
  R.nseen = 0;
  R.fail_counter = R.verify_counter = 0;
  R.rng = R.seed;
}

/* One delivery: its answer and counts. */
static void deliver(struct conn *c, const char *path, size_t path_len, const char *id,
                    size_t id_len, const char *ts, size_t ts_len, const char *sig, size_t sig_len,
                    const char *body, size_t body_len)
{
  R.c.requests++;
  R.c.bytes += body_len;
  if(R.key_len && ++R.verify_counter >= R.verify_every) {
    R.verify_counter = 0;
    R.c.sig_checked++;
    if(!signature_ok(id, id_len, ts, ts_len, sig, sig_len, body, body_len))
      R.c.sig_bad++;
  }
  bool fail = false;
  if(R.fail_every > 0) {
    if(R.random)
      fail = xorshift() % (uint64_t)R.fail_every == 0;
    else if(++R.fail_counter >= (unsigned long long)R.fail_every) {
      R.fail_counter = 0;
      fail = true;
    }
  }
  if(fail) {
    R.c.failed++;
    answer(c, 500, "{\"error\":\"failing on purpose\"}");
    return;
  }
  R.c.ok++;
  if(R.nseen < SEEN_MAX) {
    uint64_t h = fnv1a(0xcbf29ce484222325ull, path, path_len);
    h = fnv1a(h ^ 0xff, id ? id : "", id ? id_len : 0);
    if(seen_add(h))
      R.c.unique_ok++;
    else
      R.c.duplicate_ok++;
  } else
    R.c.untracked++;
  answer(c, 200, "{\"ok\":true}");
}

/* Handles every complete request in c->in while answers fit. Returns 0, or
 * -1 when the connection is to be closed after what is queued. */
static int handle_input(struct conn *c)
{
  while(c->out_len + ANSWER_MAX < OUT_CAP) {
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    char *eoh = c->in_len >= 4 ? memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4) : NULL;
    if(!eoh) {
      c->scanned = c->in_len;
      if(c->in_len == IN_CAP) {
        c->close_after = true;
        R.c.bad++;
        answer(c, 413, "{\"error\":\"headers too large\"}");
        return -1;
      }
      return 0;
    }
    size_t head_len = (size_t)(eoh - c->in) + 4;
    /* request line */
    char *line_end = memchr(c->in, '\r', head_len);
    char *sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if(!sp1 || !sp2) {
      c->close_after = true;
      R.c.bad++;
      answer(c, 400, "{\"error\":\"bad request line\"}");
      return -1;
    }
    const char *method = c->in, *path = sp1 + 1;
    size_t method_len = (size_t)(sp1 - c->in), path_len = (size_t)(sp2 - path);
    bool http10 = line_end - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
    /* headers */
    size_t body_len = 0;
    bool chunked = false, close_req = http10;
    const char *id = NULL, *ts = NULL, *sig = NULL;
    size_t id_len = 0, ts_len = 0, sig_len = 0;
    char *p = line_end + 2;
    while(p < eoh + 2) {
      char *e = memchr(p, '\r', (size_t)(eoh + 2 - p));
      char *colon = memchr(p, ':', (size_t)(e - p));
      if(colon) {
        size_t nlen = (size_t)(colon - p);
        char *v = colon + 1;
        while(v < e && (*v == ' ' || *v == '\t'))
          v++;
        size_t vlen = (size_t)(e - v);
        while(vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
          vlen--;
        if(name_is(p, nlen, "content-length")) {
          char *end;
          unsigned long long n = strtoull(v, &end, 10);
          if(end == v || n > IN_CAP)
            body_len = IN_CAP + 1; /* refused below */
          else
            body_len = (size_t)n;
        } else if(name_is(p, nlen, "transfer-encoding"))
          chunked = !(vlen == 8 && strncasecmp(v, "identity", 8) == 0);
        else if(name_is(p, nlen, "connection"))
          close_req = vlen == 5 && strncasecmp(v, "close", 5) == 0;
        else if(name_is(p, nlen, "webhook-id"))
          id = v, id_len = vlen;
        else if(name_is(p, nlen, "webhook-timestamp"))
          ts = v, ts_len = vlen;
        else if(name_is(p, nlen, "webhook-signature"))
          sig = v, sig_len = vlen;
      }
      p = e + 2;
    }
    if(chunked) {
      c->close_after = true;
      R.c.bad++;
      answer(c, 501, "{\"error\":\"chunked bodies are not read here\"}");
      return -1;
    }
    if(head_len + body_len > IN_CAP) {
      c->close_after = true;
      R.c.bad++;
      answer(c, 413, "{\"error\":\"body too large\"}");
      return -1;
    }
    if(c->in_len < head_len + body_len)
      return 0; /* the body is still coming */
    c->close_after = close_req;
    const char *body = c->in + head_len;
    if(name_is(method, method_len, "GET") && name_is(path, path_len, "/stats")) {
      char json[ANSWER_MAX - 160];
      stats_json(json, sizeof(json));
      answer(c, 200, json);
    } else if(name_is(method, method_len, "POST") && name_is(path, path_len, "/reset")) {
      reset();
      answer(c, 200, "{\"reset\":true}");
    } else if(name_is(method, method_len, "POST") && name_is(path, path_len, "/pause")) {
      R.paused = true;
      answer(c, 200, "{\"paused\":true}");
    } else if(name_is(method, method_len, "POST") && name_is(path, path_len, "/resume")) {
      R.paused = false;
      R.resuming = true; /* main() answers the parked ones after this turn */
      answer(c, 200, "{\"paused\":false}");
    } else if(name_is(method, method_len, "POST") && R.paused) {
      c->parked = true;
      c->close_after = false;
      return 0; /* left in c->in until the resume */
    } else if(name_is(method, method_len, "POST"))
      deliver(c, path, path_len, id, id_len, ts, ts_len, sig, sig_len, body, body_len);
    else {
      R.c.bad++;
      answer(c, 404, "{\"error\":\"POST a delivery, GET /stats or POST /reset\"}");
    }
    size_t used = head_len + body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->scanned = 0;
    if(c->close_after)
      return -1;
  }
  return 0;
}

/* Writes what is queued; when the socket is full, waits for EPOLLOUT and
 * reads nothing meanwhile. Returns 0, or -1 on a socket error. */
static int flush_out(int ep, struct conn *c)
{
  while(c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0 && errno == EAGAIN) {
      struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      return 0;
    }
    if(n <= 0)
      return -1;
    c->out_off += (size_t)n;
  }
  c->out_len = c->out_off = 0;
  return 0;
}

/* Reads and answers until the socket has nothing more, the answers back up
 * or the connection is to be closed. Returns 0, or -1 to close it now. */
static int on_readable(int ep, struct conn *c)
{
  for(;;) {
    bool drained = false;
    if(c->in_len < IN_CAP) {
      ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
      if(n == 0)
        return -1;
      if(n < 0 && errno == EINTR)
        continue;
      if(n < 0 && errno != EAGAIN)
        return -1;
      if(n < 0)
        drained = true;
      else
        c->in_len += (size_t)n;
    }
    size_t before = c->in_len;
    int rc = handle_input(c);
    if(flush_out(ep, c))
      return -1;
    if(rc)
      return c->out_len ? 0 : -1; /* closing once the answer is out */
    if(c->out_len)
      return 0; /* backed up: on_writable goes on */
    if(c->parked) {
      /* nothing more is read until the resume (errors still come) */
      struct epoll_event ev = {.events = 0, .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      return 0;
    }
    if(drained && c->in_len == before)
      return 0;
  }
}

static int on_writable(int ep, struct conn *c)
{
  if(flush_out(ep, c))
    return -1;
  if(c->out_len)
    return 0; /* still backed up */
  if(c->close_after)
    return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  return on_readable(ep, c); /* requests may wait in c->in, or in the socket */
}

/* Answers the deliveries held by a pause. */
static void resume_parked(int ep)
{
  R.resuming = false;
  for(struct conn *c = R.conns, *next; c; c = next) {
    next = c->next;
    if(!c->parked)
      continue;
    c->parked = false;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    if(on_readable(ep, c))
      conn_close(ep, c);
  }
}

static void on_accept(int ep, int lfd)
{
  for(;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if(fd < 0)
      return;
    R.c.accepted++;
    struct conn *c = R.nconns < R.max_conns ? malloc(sizeof(*c)) : NULL;
    if(!c) {
      R.c.refused++;
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->close_after = c->parked = false;
    c->in_len = c->scanned = c->out_len = c->out_off = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
      close(fd);
      free(c);
      continue;
    }
    c->prev = NULL;
    c->next = R.conns;
    if(R.conns)
      R.conns->prev = c;
    R.conns = c;
    R.nconns++;
  }
}

/* ---- main ---- */

static int int_arg(const char *s, const char *what, long lo, long hi, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if(errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "hook_receiver: %s: expected a whole number from %ld to %ld, got \"%s\"\n",
            what, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: hook_receiver [-p PORT] [-f FAIL_EVERY] [-r SEED] [-s whsec_SECRET]\n"
          "                     [-v VERIFY_EVERY] [-c MAX_CONNECTIONS] [-t LIFETIME_S]\n"
          "  answers webhook deliveries on 127.0.0.1 with 200, or 500 for 1 in FAIL_EVERY;\n"
          "  GET /stats: the counts as JSON; POST /reset: zero them.\n");
}

int main(int argc, char **argv)
{
  long port = 0, fail = 0, verify = 1000, conns = 4096, lifetime = 900, seed = -1;
  const char *secret = NULL;
  int opt, rc = 2, lfd = -1, ep = -1;
  while((opt = getopt(argc, argv, "p:f:r:s:v:c:t:h")) != -1) {
    switch(opt) {
    case 'p':
      if(int_arg(optarg, "-p PORT", 0, 65535, &port))
        return 2;
      break;
    case 'f':
      if(int_arg(optarg, "-f FAIL_EVERY", 0, 1000000, &fail))
        return 2;
      break;
    case 'r':
      if(int_arg(optarg, "-r SEED", 0, 2147483647, &seed))
        return 2;
      break;
    case 's': secret = optarg; break;
    case 'v':
      if(int_arg(optarg, "-v VERIFY_EVERY", 1, 100000000, &verify))
        return 2;
      break;
    case 'c':
      if(int_arg(optarg, "-c MAX_CONNECTIONS", 1, 100000, &conns))
        return 2;
      break;
    case 't':
      if(int_arg(optarg, "-t LIFETIME_S", 1, 86400, &lifetime))
        return 2;
      break;
    default: usage(); return 2;
    }
  }
  if(optind != argc) {
    usage();
    return 2;
  }
  if(secret && parse_secret(secret)) {
    fprintf(stderr, "hook_receiver: -s: expected whsec_ followed by padded base64\n");
    return 2;
  }
  R.fail_every = (int)fail;
  R.random = seed >= 0;
  R.seed = R.rng = seed >= 0 ? (uint64_t)seed * 0x9e3779b97f4a7c15ull + 1 : 0;
  R.verify_every = (unsigned)verify;
  /* Each connection is a descriptor: stay under the limit (raised to the
   * hard one), so accept never fails for want of one. */
  struct rlimit rl;
  if(getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if(rl.rlim_cur != RLIM_INFINITY && (rlim_t)conns + 16 > rl.rlim_cur)
      conns = rl.rlim_cur > 32 ? (long)rl.rlim_cur - 16 : 16;
  }
  R.max_conns = (int)conns;
  R.seen = calloc(SEEN_SLOTS, sizeof(*R.seen));
  R.mac_msg = malloc(IN_CAP);
  if(!R.seen || !R.mac_msg) {
    fprintf(stderr, "hook_receiver: out of memory\n");
    goto out;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  if(lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
     bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1024) ||
     getsockname(lfd, (struct sockaddr *)&a, &alen)) {
    fprintf(stderr, "hook_receiver: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
    goto out;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  if(ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev)) {
    fprintf(stderr, "hook_receiver: epoll: %s\n", strerror(errno));
    goto out;
  }
  printf("listening port=%u fail_every=%ld%s verify_every=%ld\n", ntohs(a.sin_port), fail,
         R.random ? " random=1" : "", R.key_len ? verify : 0);
  fflush(stdout);

  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct epoll_event evs[EVENTS_MAX];
  while(!stopping) {
    int n = epoll_wait(ep, evs, EVENTS_MAX, 200);
    for(int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if(!c) {
        on_accept(ep, lfd);
        continue;
      }
      int r = 0;
      if(evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN))
        r = -1;
      else if(evs[i].events & EPOLLOUT)
        r = on_writable(ep, c);
      else if(evs[i].events & EPOLLIN)
        r = on_readable(ep, c);
      if(r)
        conn_close(ep, c);
    }
    if(R.resuming && !R.paused)
      resume_parked(ep);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if(t.tv_sec - t0.tv_sec >= lifetime)
      break;
  }
  char json[ANSWER_MAX];
  stats_json(json, sizeof(json));
  printf("%s\n", json);
  rc = 0;
out:
  while(R.conns)
    conn_close(ep, R.conns);
  if(ep >= 0)
    close(ep);
  if(lfd >= 0)
    close(lfd);
  free(R.seen);
  free(R.mac_msg);
  return rc;
}
