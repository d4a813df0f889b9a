/*
 * loadgen.c - the WebSocket fan-out load generator of the side-by-side benchmark
 * (issue 6): the same client, in the same run, against heraldd, nchan and a Node
 * `ws` broadcast server.
 *
 *   loadgen --url ws://127.0.0.1:8080/ws --pub 'http://127.0.0.1:8081/v1/topics/{topic}/events'
 *           [-n CONNECTIONS] [--topics N] [--rate R] [--duration-s S] [--ramp] [--idle-s S] ...
 *
 * (`loadgen --help` lists every option.) Two threads, no client library:
 *
 * - the main thread owns the WebSocket connections in one epoll loop: it opens
 *   them at most --inflight at a time, sends one pre-built upgrade request each
 *   (fixed Sec-WebSocket-Key; only the "HTTP/1.1 101" status line is checked),
 *   subscribes them in the form --proto names, then reads frames, finds the
 *   "t": send timestamp in each message and records publish-to-receive latency
 *   in a log-bucket histogram (2^-7 relative precision, 1 ns to 60 s). It also
 *   steers the ramp.
 * - the publisher thread POSTs over a few HTTP/1.1 keep-alive connections at a
 *   fixed rate, paced by a 1 ms timerfd against the clock (no drift), each body
 *   {"t":<CLOCK_MONOTONIC ns>,"n":<seq>,"p":"xxx"} padded to --payload bytes.
 *
 * Expected deliveries are the 2xx publishes times the subscribers of their
 * topic; what has not arrived after the drain wait is lost. A message whose "t"
 * is older than this run (an nchan channel replaying its buffer) is counted as
 * stale, not delivered. Loopback targets only. Every loop stops by itself:
 * --max-s (default 60, at most 600) bounds the whole run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX 60000
#define READ_CHUNK (256 * 1024) /* bytes read from one socket at a time */
#define FRAME_MAX (1024 * 1024) /* largest frame accepted from a server */
#define HEAD_CAP 8192           /* largest 101 answer */
#define WS_OUT_CAP 4096         /* bytes waiting to be written to one WebSocket */
#define EVENTS_MAX 1024
#define STEPS_MAX 64
#define PUB_CONNS_MAX 256
#define PIPELINE_MAX 64
#define PAYLOAD_MAX 65536
#define PUB_OUT_CAP (PAYLOAD_MAX + 4096)
#define PUB_IN_CAP 16384
#define HEADERS_MAX 8
#define TOPIC_MAX 64
#define PIDS_MAX 8
#define NS 1000000000ull
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

/* ---- clock and histogram ---- */

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Buckets as in HdrHistogram: exact below 128 ns, then 128 per power of two,
 * so a bucket is at most 1/128 of its value wide; 60 s and more fall in the last. */
#define H_SUB_BITS 7
#define H_SUB (1u << H_SUB_BITS)
#define H_TOP_EXP 35 /* 2^36 ns > 60 s */
#define H_BUCKETS (H_SUB + (H_TOP_EXP + 1 - H_SUB_BITS) * H_SUB)
#define H_MAX_NS (60 * NS)

struct hist {
  uint64_t n, max;
  uint64_t b[H_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
  if(v < H_SUB)
    return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  return H_SUB + (e - H_SUB_BITS) * H_SUB + (unsigned)((v >> (e - H_SUB_BITS)) - H_SUB);
}

/* The middle of bucket i, in ns. */
static uint64_t hist_value(unsigned i)
{
  if(i < H_SUB)
    return i;
  unsigned k = i - H_SUB, e = k / H_SUB + H_SUB_BITS;
  uint64_t lo = (uint64_t)(H_SUB + k % H_SUB) << (e - H_SUB_BITS);
  return lo + ((1ull << (e - H_SUB_BITS)) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
  if(v > h->max)
    h->max = v;
  if(v > H_MAX_NS)
    v = H_MAX_NS;
  h->b[hist_index(v)]++;
  h->n++;
}

/* The value at quantile q (0..1) in ns, never above the maximum; 0 when empty. */
static uint64_t hist_quantile(const struct hist *h, double q)
{
  if(!h->n)
    return 0;
  uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
  if(want < 1)
    want = 1;
  for(unsigned i = 0; i < H_BUCKETS; i++) {
    seen += h->b[i];
    if(seen >= want) {
      uint64_t v = hist_value(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

static double us(uint64_t ns)
{
  return (double)ns / 1000.0;
}

/* CPU seconds this process has used so far. */
static double own_cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- configuration ---- */

enum proto { PROTO_HERALD, PROTO_NCHAN, PROTO_WS };
static const char *const proto_names[] = {"herald", "nchan", "ws"};

struct target {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  char hostport[80]; /* as given, for Host: and messages */
  char pre[512];     /* the path before {topic} (the whole path when there is none) */
  char post[512];    /* the path after {topic} */
  bool has_topic;
};

static struct {
  /* options */
  struct target ws, pub;
  const char *ws_url, *pub_url, *subprotocol;
  enum proto proto;
  bool ws_sub, ramp, warmup;
  int warmup_set; /* -1 default, 0 off, 1 on */
  long conns, topics, payload, drain_ms, inflight, pub_conns, pipeline, warmup_ms;
  long idle_s, max_s;
  unsigned long long count;
  double rate, duration_s, ramp_factor, step_s, ramp_p99_ms, ramp_ratio;
  const char *headers[HEADERS_MAX];
  int nheaders;
  long pids[PIDS_MAX]; /* --server-pid: whose CPU time is read from /proc */
  int npids;
  /* run */
  uint64_t start_ns, deadline_ns;
  char *rbuf; /* leftover of a connection + one read */
} G = {
    .proto = PROTO_HERALD,
    .warmup_set = -1,
    .conns = 1000,
    .topics = 1,
    .payload = 100,
    .drain_ms = 2000,
    .inflight = 2000,
    .pub_conns = 8,
    .pipeline = 1,
    .warmup_ms = 5000,
    .max_s = -1,
    .rate = 1000,
    .duration_s = -1,
    .ramp_factor = 1.5,
    .step_s = 2,
    .ramp_p99_ms = 500,
    .ramp_ratio = 0.95,
};

static volatile sig_atomic_t interrupted;

/* CPU seconds (user + system, every thread) of the --server-pid processes so
 * far, from /proc/PID/stat (10 ms ticks); -1 when one cannot be read. */
static double server_cpu_s(void)
{
  double total = 0;
  long tck = sysconf(_SC_CLK_TCK);
  for(int k = 0; k < G.npids; k++) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", G.pids[k]);
    FILE *f = fopen(path, "r");
    if(!f)
      return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* fields after the ")" closing the command name: state is the 3rd, utime the 14th */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if(!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
      return -1;
    total += (double)(ut + st) / (double)(tck > 0 ? tck : 100);
  }
  return total;
}

static void on_signal(int sig)
{
  (void)sig;
  interrupted = 1;
}

static void topic_name(long i, char *out, size_t cap)
{
  snprintf(out, cap, "t%ld", i % G.topics);
}

/* Subscribers of topic j: connection i has topic i % topics. */
static uint64_t topic_subscribers(long j)
{
  return (uint64_t)(G.conns / G.topics + (j < G.conns % G.topics));
}

/* Parses scheme://HOST:PORT/PATH with a numeric loopback HOST (127.0.0.0/8, [::1],
 * or localhost for 127.0.0.1). Returns 0, or -1 with a message on stderr. */
static int parse_url(const char *url, const char *scheme, struct target *t)
{
  size_t sl = strlen(scheme);
  if(strncmp(url, scheme, sl) != 0) {
    fprintf(stderr, "loadgen: %s: expected a %sHOST:PORT/PATH URL\n", url, scheme);
    return -1;
  }
  const char *h = url + sl, *hend, *p;
  char host[64];
  if(*h == '[') {
    hend = strchr(h, ']');
    if(!hend || (size_t)(hend - h - 1) >= sizeof(host))
      goto bad;
    memcpy(host, h + 1, (size_t)(hend - h - 1));
    host[hend - h - 1] = 0;
    p = hend + 1;
  } else {
    hend = h + strcspn(h, ":/");
    if((size_t)(hend - h) >= sizeof(host) || hend == h)
      goto bad;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = 0;
    p = hend;
  }
  long port = 80;
  if(*p == ':') {
    char *end;
    port = strtol(p + 1, &end, 10);
    if(end == p + 1 || port < 1 || port > 65535)
      goto bad;
    p = end;
  }
  if(*p && *p != '/')
    goto bad;
  const char *path = *p ? p : "/";
  if((size_t)(p - h) >= sizeof(t->hostport))
    goto bad;
  memcpy(t->hostport, h, (size_t)(p - h));
  t->hostport[p - h] = 0;

  memset(&t->addr, 0, sizeof(t->addr));
  struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
  if(strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  if(inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    if((ntohl(a4->sin_addr.s_addr) >> 24) != 127)
      goto not_loopback;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    t->addr_len = sizeof(*a4);
  } else if(inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    if(!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
      goto not_loopback;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    t->addr_len = sizeof(*a6);
  } else
    goto not_loopback;

  const char *mark = strstr(path, "{topic}");
  size_t pre_len = mark ? (size_t)(mark - path) : strlen(path);
  const char *post = mark ? mark + 7 : "";
  if(pre_len >= sizeof(t->pre) || strlen(post) >= sizeof(t->post) || strchr(post, '{'))
    goto bad;
  memcpy(t->pre, path, pre_len);
  t->pre[pre_len] = 0;
  strcpy(t->post, post);
  t->has_topic = mark != NULL;
  return 0;
bad:
  fprintf(stderr,
          "loadgen: %s: expected %sHOST:PORT/PATH (HOST 127.0.0.1 or [::1]; PATH up to 500 "
          "bytes, with at most one {topic})\n",
          url, scheme);
  return -1;
not_loopback:
  fprintf(stderr, "loadgen: %s: only loopback targets (127.0.0.0/8 or [::1], numeric)\n", url);
  return -1;
}

static const char *addr_text(const struct target *t)
{
  return t->hostport;
}

/* ---- shared between the threads ---- */

static struct {
  /* set by the main thread */
  atomic_uint want_gen; /* ramp step the publisher should be in */
  atomic_uint_fast64_t want_rate_milli;
  atomic_bool stop;
  /* set by the publisher */
  atomic_uint_fast64_t gen_start[STEPS_MAX]; /* when the publisher entered step k (0: not yet) */
  atomic_uint_fast64_t sent, accepted, errors, skipped, expected;
  atomic_uint_fast64_t gen_sent[STEPS_MAX], gen_accepted[STEPS_MAX], gen_expected[STEPS_MAX];
  atomic_uint_fast64_t first_send_ns, last_answer_ns;
  atomic_bool done;
  /* read by the main thread once the publisher has ended */
  char failure[256];
  unsigned status_count[600];
  char first_error[200];
  struct hist rtt; /* request sent to answer read */
  uint64_t reconnects, conns_closed;
} S;

/* ---- HTTP publishing (the publisher thread, and the warm-up in the main one) ---- */

struct pconn {
  int fd;
  int inflight;
  unsigned head; /* the oldest request in flight in req[] */
  struct {
    uint32_t topic, gen;
    uint64_t sent_ns;
  } req[PIPELINE_MAX];
  bool probe;      /* a warm-up connection: answers are not counted */
  int last_status; /* probe: the status of the last answer */
  size_t out_len, out_off, in_len;
  /* the answer being read */
  bool in_body, chunked, close_after;
  int status, chunk_state; /* 0 size line, 1 data and its CRLF, 2 trailers */
  uint64_t remaining;
  char out[PUB_OUT_CAP];
  char in[PUB_IN_CAP];
};

static struct {
  int ep, tfd;
  struct pconn *pc;
  unsigned next_pc;
  uint64_t issued;
  int64_t epoch_issued; /* the schedule: epoch_issued + rate * (now - epoch_ns) are due */
  uint64_t epoch_ns, issue_until_ns;
  unsigned gen;
  double rate;
  bool issuing, started;
  uint64_t stop_issuing_ns;
} P;

/* Records the publisher's first failure (printed by the main thread) and stops it. */
static void pub_fail(const char *fmt, ...)
{
  if(!S.failure[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S.failure, sizeof(S.failure), fmt, ap);
    va_end(ap);
  }
  P.issuing = false;
}

/* A blocking connect (loopback answers at once; a full backlog waits up to 3 s).
 * Returns the descriptor, or -1 with errno set. */
static int tcp_connect(const struct target *t)
{
  int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if(fd < 0)
    return -1;
  struct timeval tv = {.tv_sec = 3};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if(connect(fd, (const struct sockaddr *)&t->addr, t->addr_len)) {
    int e = errno;
    close(fd);
    errno = e == EINPROGRESS ? ETIMEDOUT : e;
    return -1;
  }
  return fd;
}

static void pc_reset(struct pconn *c, int fd)
{
  c->fd = fd;
  c->inflight = 0;
  c->head = 0;
  c->out_len = c->out_off = c->in_len = 0;
  c->in_body = false;
}

/* Appends one POST of publish n (t = send time, 0 for a warm-up probe) on topic
 * to c->out. Returns 0, or -1 when it does not fit. */
static int pub_build(struct pconn *c, long topic, uint64_t t, long long n)
{
  char body[PAYLOAD_MAX + 64], tname[TOPIC_MAX];
  int bl =
      snprintf(body, sizeof(body), "{\"t\":%llu,\"n\":%lld,\"p\":\"", (unsigned long long)t, n);
  long pad = G.payload - bl - 2;
  if(pad > 0) {
    memset(body + bl, 'x', (size_t)pad);
    bl += (int)pad;
  }
  body[bl++] = '"';
  body[bl++] = '}';
  topic_name(topic, tname, sizeof(tname));
  char *o = c->out + c->out_len;
  size_t room = PUB_OUT_CAP - c->out_len;
  int hl = snprintf(o, room,
                    "POST %s%s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n",
                    G.pub.pre, G.pub.has_topic ? tname : "", G.pub.post, G.pub.hostport, bl);
  if(hl < 0 || (size_t)hl >= room)
    return -1;
  for(int i = 0; i < G.nheaders; i++) {
    int k = snprintf(o + hl, room - (size_t)hl, "%s\r\n", G.headers[i]);
    if(k < 0 || (size_t)k >= room - (size_t)hl)
      return -1;
    hl += k;
  }
  if((size_t)hl + 2 + (size_t)bl > room)
    return -1;
  memcpy(o + hl, "\r\n", 2);
  memcpy(o + hl + 2, body, (size_t)bl);
  c->out_len += (size_t)hl + 2 + (size_t)bl;
  return 0;
}

/* Writes what c->out holds. Returns 0 (the rest, if any, waits for EPOLLOUT) or -1. */
static int pc_flush(struct pconn *c)
{
  while(c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if(!c->probe) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(P.ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
      return 0;
    }
    if(n <= 0)
      return -1;
    c->out_off += (size_t)n;
  }
  if(c->out_len && !c->probe) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(P.ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  c->out_len = c->out_off = 0;
  return 0;
}

/* One whole answer has been read: count it. */
static void pc_answered(struct pconn *c)
{
  c->in_body = false;
  c->inflight--;
  unsigned h = c->head;
  c->head = (c->head + 1) % PIPELINE_MAX;
  if(c->probe) {
    c->last_status = c->status;
    return;
  }
  uint64_t now = now_ns();
  atomic_store_explicit(&S.last_answer_ns, now, memory_order_relaxed);
  hist_add(&S.rtt, now - c->req[h].sent_ns);
  unsigned g = c->req[h].gen;
  if(c->status >= 200 && c->status < 300) {
    uint64_t subs = topic_subscribers(c->req[h].topic);
    atomic_fetch_add_explicit(&S.accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.expected, subs, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.gen_accepted[g], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.gen_expected[g], subs, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&S.errors, 1, memory_order_relaxed);
    S.status_count[c->status > 0 && c->status < 600 ? c->status : 0]++;
  }
}

static void pc_consume(struct pconn *c, size_t n)
{
  memmove(c->in, c->in + n, c->in_len - n);
  c->in_len -= n;
}

static bool header_is(const char *p, size_t n, const char *name)
{
  return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* Reads the answers in c->in. Returns 0, or -1 (with a reason in why) when the
 * connection must be closed. */
static int pc_parse(struct pconn *c, const char **why)
{
  for(;;) {
    if(!c->in_body) {
      if(!c->in_len)
        return 0;
      char *eoh = memmem(c->in, c->in_len, "\r\n\r\n", 4);
      if(!eoh) {
        *why = "answer headers larger than 16 KiB";
        return c->in_len == PUB_IN_CAP ? -1 : 0;
      }
      if(!c->inflight) {
        *why = "an answer to no request";
        return -1;
      }
      size_t head_len = (size_t)(eoh - c->in) + 4;
      if(head_len < 12 || memcmp(c->in, "HTTP/1.", 7) != 0) {
        *why = "not an HTTP/1.x answer";
        return -1;
      }
      c->status = atoi(c->in + 9);
      bool has_length = false;
      c->chunked = c->close_after = false;
      c->remaining = 0;
      char *p = memchr(c->in, '\n', head_len) + 1;
      while(p < eoh) {
        char *e = memchr(p, '\r', (size_t)(eoh + 2 - p));
        char *colon = memchr(p, ':', (size_t)(e - p));
        if(colon) {
          char *v = colon + 1;
          while(v < e && (*v == ' ' || *v == '\t'))
            v++;
          size_t nl = (size_t)(colon - p), vl = (size_t)(e - v);
          if(header_is(p, nl, "content-length")) {
            c->remaining = strtoull(v, NULL, 10);
            has_length = true;
          } else if(header_is(p, nl, "transfer-encoding"))
            c->chunked = vl >= 7 && strncasecmp(e - 7, "chunked", 7) == 0;
          else if(header_is(p, nl, "connection"))
            c->close_after = vl == 5 && strncasecmp(v, "close", 5) == 0;
        }
        p = e + 2;
      }
      if(!has_length && !c->chunked && c->status != 204 && c->status != 304) {
        *why = "an answer with neither Content-Length nor chunked encoding";
        return -1;
      }
      pc_consume(c, head_len);
      if(!c->probe && (c->status < 200 || c->status >= 300) && !S.first_error[0]) {
        size_t k = c->in_len < sizeof(S.first_error) - 1 ? c->in_len : sizeof(S.first_error) - 1;
        if(!c->chunked && k > c->remaining)
          k = (size_t)c->remaining;
        snprintf(S.first_error, sizeof(S.first_error), "%d %.*s", c->status, (int)k, c->in);
      }
      c->in_body = true;
      c->chunk_state = 0;
    }
    if(!c->chunked || c->chunk_state == 1) {
      size_t take = c->remaining < c->in_len ? (size_t)c->remaining : c->in_len;
      pc_consume(c, take);
      c->remaining -= take;
      if(c->remaining)
        return 0;
      if(c->chunked) {
        c->chunk_state = 0;
        continue;
      }
      pc_answered(c);
      if(c->close_after) {
        *why = "the server asked to close the connection";
        return -1;
      }
      continue;
    }
    /* chunked: a size line, or a trailer line (an empty one ends the answer) */
    char *eol = memmem(c->in, c->in_len, "\r\n", 2);
    if(!eol) {
      *why = "a chunk line larger than 16 KiB";
      return c->in_len == PUB_IN_CAP ? -1 : 0;
    }
    size_t line = (size_t)(eol - c->in);
    if(c->chunk_state == 0) {
      unsigned long long size = strtoull(c->in, NULL, 16);
      pc_consume(c, line + 2);
      if(size) {
        c->remaining = size + 2; /* its CRLF too */
        c->chunk_state = 1;
      } else
        c->chunk_state = 2;
      continue;
    }
    pc_consume(c, line + 2);
    if(line == 0) {
      pc_answered(c);
      if(c->close_after) {
        *why = "the server asked to close the connection";
        return -1;
      }
    }
  }
}

/* The connection broke: what was in flight failed; it is opened again while publishing. */
static void pc_drop(struct pconn *c, const char *why)
{
  if(c->fd >= 0) {
    epoll_ctl(P.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  if(c->inflight) {
    atomic_fetch_add_explicit(&S.errors, (uint64_t)c->inflight, memory_order_relaxed);
    S.status_count[0] += (unsigned)c->inflight;
    if(!S.first_error[0])
      snprintf(S.first_error, sizeof(S.first_error), "connection lost: %s", why);
  }
  S.conns_closed++;
  if(!P.issuing)
    return;
  if(++S.reconnects > 1000) {
    pub_fail("publish connections to %s broke more than 1000 times (last: %s)", addr_text(&G.pub),
             why);
    return;
  }
  int fd = tcp_connect(&G.pub);
  if(fd < 0) {
    pub_fail("connect %s: %s", addr_text(&G.pub), strerror(errno));
    return;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  pc_reset(c, fd);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(P.ep, EPOLL_CTL_ADD, fd, &ev);
}

static void pc_readable(struct pconn *c)
{
  const char *why = "closed by the server";
  for(int round = 0; round < 16; round++) {
    ssize_t n = recv(c->fd, c->in + c->in_len, PUB_IN_CAP - c->in_len, MSG_DONTWAIT);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if(n <= 0) {
      pc_drop(c, n ? strerror(errno) : why);
      return;
    }
    c->in_len += (size_t)n;
    if(pc_parse(c, &why)) {
      pc_drop(c, why);
      return;
    }
  }
}

/* A connection that can take one more request now, round robin; NULL if none. */
static struct pconn *pub_pick(void)
{
  for(long k = 0; k < G.pub_conns; k++) {
    struct pconn *c = &P.pc[P.next_pc];
    P.next_pc = (P.next_pc + 1) % (unsigned)G.pub_conns;
    if(c->fd >= 0 && c->inflight < G.pipeline && c->out_off == c->out_len)
      return c;
  }
  return NULL;
}

/* Sends the publishes that are due by the schedule. A backlog of more than
 * 50 ms (plus one request per connection slot) is skipped, not sent late in a
 * burst: the offered rate then falls short, and the skips are reported. */
static void pub_pump(void)
{
  if(!P.issuing)
    return;
  uint64_t now = now_ns();
  if(now > P.issue_until_ns)
    now = P.issue_until_ns; /* what was due by the end, not after it */
  int64_t due = P.epoch_issued + (int64_t)(P.rate * (double)(now - P.epoch_ns) / 1e9);
  if(G.count && due > (int64_t)G.count)
    due = (int64_t)G.count;
  while((int64_t)P.issued < due) {
    struct pconn *c = pub_pick();
    if(!c)
      break;
    long topic = (long)(P.issued % (uint64_t)G.topics);
    uint64_t t = now_ns();
    if(pub_build(c, topic, t, (long long)P.issued)) {
      pub_fail("a publish request does not fit in %d bytes", PUB_OUT_CAP);
      return;
    }
    unsigned slot = (c->head + (unsigned)c->inflight) % PIPELINE_MAX;
    c->req[slot].topic = (uint32_t)topic;
    c->req[slot].gen = P.gen;
    c->req[slot].sent_ns = t;
    c->inflight++;
    P.issued++;
    if(P.issued == 1)
      atomic_store(&S.first_send_ns, t);
    atomic_fetch_add_explicit(&S.sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.gen_sent[P.gen], 1, memory_order_relaxed);
    if(pc_flush(c))
      pc_drop(c, strerror(errno));
  }
  int64_t behind = due - (int64_t)P.issued;
  int64_t allowed = (int64_t)(P.rate / 20) + G.pub_conns * G.pipeline;
  if(behind > allowed) {
    atomic_fetch_add_explicit(&S.skipped, (uint64_t)(behind - allowed), memory_order_relaxed);
    P.epoch_issued -= behind - allowed;
  }
}

/* Every millisecond: takes up a new ramp step, ends the publishing when its
 * time, count or the stop flag says so, and sends what is due. */
static void pub_tick(void)
{
  uint64_t now = now_ns();
  unsigned g = atomic_load(&S.want_gen);
  if(!P.started || g != P.gen) {
    P.started = true;
    P.gen = g < STEPS_MAX ? g : STEPS_MAX - 1;
    P.rate = (double)atomic_load(&S.want_rate_milli) / 1000.0;
    P.epoch_ns = now;
    P.epoch_issued = (int64_t)P.issued;
    atomic_store(&S.gen_start[P.gen], now);
    if(P.gen == 0 && G.duration_s > 0) {
      uint64_t until = now + (uint64_t)(G.duration_s * 1e9);
      if(until < P.issue_until_ns)
        P.issue_until_ns = until;
    }
  }
  if(atomic_load(&S.stop))
    P.issuing = false;
  pub_pump();
  if(P.issuing && (now >= P.issue_until_ns || (G.count && P.issued >= G.count)))
    P.issuing = false;
  if(!P.issuing && !P.stop_issuing_ns)
    P.stop_issuing_ns = now;
}

/* The publisher thread: a timerfd and the keep-alive connections in one epoll
 * loop. Ends when publishing is over and every answer is in (or 2 s later). */
static void *pub_main(void *arg)
{
  (void)arg;
  struct epoll_event evs[64];
  struct itimerspec its = {.it_interval = {0, 1000000}, .it_value = {0, 1000000}};
  timerfd_settime(P.tfd, 0, &its, NULL);
  for(;;) {
    int n = epoll_wait(P.ep, evs, 64, 50);
    for(int i = 0; i < n; i++) {
      struct pconn *c = evs[i].data.ptr;
      if(!c) {
        uint64_t ticks;
        ssize_t r = read(P.tfd, &ticks, sizeof(ticks)); /* EAGAIN: a tick already read */
        (void)r;
        pub_tick();
        continue;
      }
      if(c->fd < 0)
        continue;
      if(evs[i].events & EPOLLOUT && pc_flush(c)) {
        pc_drop(c, strerror(errno));
        continue;
      }
      if(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        pc_readable(c);
    }
    pub_pump(); /* answers free connections for what is due */
    if(!P.issuing) {
      if(!P.stop_issuing_ns)
        P.stop_issuing_ns = now_ns();
      int inflight = 0;
      for(long k = 0; k < G.pub_conns; k++)
        inflight += P.pc[k].fd >= 0 ? P.pc[k].inflight : 0;
      if(!inflight || now_ns() > P.stop_issuing_ns + 2 * NS)
        break;
    }
  }
  for(long k = 0; k < G.pub_conns; k++) {
    struct pconn *c = &P.pc[k];
    if(c->fd >= 0 && c->inflight) {
      atomic_fetch_add_explicit(&S.errors, (uint64_t)c->inflight, memory_order_relaxed);
      S.status_count[0] += (unsigned)c->inflight;
    }
    if(c->fd >= 0)
      close(c->fd);
    c->fd = -1;
  }
  atomic_store(&S.done, true);
  return NULL;
}

/* Opens the publisher's connections (so that a wrong address fails before the
 * WebSocket connections are made). Returns 0, or -1 with a message on stderr. */
static int pub_open(void)
{
  P.pc = calloc((size_t)G.pub_conns, sizeof(*P.pc));
  P.ep = epoll_create1(EPOLL_CLOEXEC);
  P.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if(!P.pc || P.ep < 0 || P.tfd < 0) {
    fprintf(stderr, "loadgen: publisher setup: %s\n", strerror(errno ? errno : ENOMEM));
    return -1;
  }
  struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(P.ep, EPOLL_CTL_ADD, P.tfd, &tev);
  for(long k = 0; k < G.pub_conns; k++) {
    int fd = tcp_connect(&G.pub);
    if(fd < 0) {
      fprintf(stderr, "loadgen: connect %s: %s\n", addr_text(&G.pub), strerror(errno));
      return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    pc_reset(&P.pc[k], fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &P.pc[k]};
    epoll_ctl(P.ep, EPOLL_CTL_ADD, fd, &ev);
  }
  P.issuing = true;
  P.issue_until_ns = G.deadline_ns;
  return 0;
}

/* Warm-up: one blocking POST of a probe ("t":0) to topic. Returns the status,
 * or -1 with a message in err. */
static int probe_post(struct pconn *c, long topic, char *err, size_t errcap)
{
  for(int attempt = 0; attempt < 2; attempt++) {
    if(c->fd < 0) {
      int fd = tcp_connect(&G.pub);
      if(fd < 0) {
        snprintf(err, errcap, "connect %s: %s", addr_text(&G.pub), strerror(errno));
        return -1;
      }
      pc_reset(c, fd);
    }
    c->out_len = c->out_off = 0;
    if(pub_build(c, topic, 0, -1)) {
      snprintf(err, errcap, "the probe request does not fit");
      return -1;
    }
    c->inflight = 1;
    const char *why = "closed by the server";
    bool broken = pc_flush(c) != 0;
    while(!broken && c->inflight) {
      ssize_t n = recv(c->fd, c->in + c->in_len, PUB_IN_CAP - c->in_len, 0);
      if(n < 0 && errno == EINTR)
        continue;
      if(n <= 0) {
        why = n ? strerror(errno) : why;
        broken = true;
        break;
      }
      c->in_len += (size_t)n;
      if(pc_parse(c, &why))
        broken = !(c->inflight == 0 && c->close_after);
    }
    if(!broken && !c->close_after)
      return c->last_status;
    int status = c->inflight ? -1 : c->last_status;
    close(c->fd);
    c->fd = -1;
    if(status > 0)
      return status;
    snprintf(err, errcap, "publish to %s: %s", addr_text(&G.pub), why);
  }
  return -1;
}

/* ---- WebSocket connections (the main thread) ---- */

enum { C_FREE, C_CONNECTING, C_UPGRADING, C_SUBSCRIBING, C_READY, C_CLOSED };

struct wsc {
  int fd;
  uint8_t state;
  bool in_msg;    /* a fragmented message is being read */
  bool msg_has_t; /* its "t" was found, in msg_t */
  bool warm;      /* it received a warm-up probe */
  uint64_t msg_t;
  uint32_t len, cap; /* input left over from the last read: a partial frame or header */
  char *buf;
  uint16_t out_len, out_off; /* bytes waiting to be written (upgrade, subscribe, pong) */
  char *out;
};

static struct {
  int ep;
  struct wsc *c;
  long opened, ready, handshaking;
  bool failed;
  /* counts */
  uint64_t delivered, stale, other, probes, closed, pings, bad_frames, reads;
  uint64_t first_rx_ns, last_rx_ns;
  struct hist total, second; /* whole run; the current progress second */
  struct hist *gen_hist;     /* per ramp step, by the step the message was sent in */
  uint64_t gen_delivered[STEPS_MAX];
  unsigned cur_gen;
  char first_other[160], first_close[160];
} W;

/* Reports a connection that failed while being set up; the run stops. */
static void setup_fail(long i, const char *fmt, ...)
{
  if(W.failed)
    return;
  W.failed = true;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "loadgen: connection %ld of %ld (%ld ready): %s\n", i + 1, G.conns, W.ready, msg);
}

static void ws_watch(long i, struct wsc *c, int op)
{
  struct epoll_event ev = {.data.u64 = (uint64_t)i};
  ev.events = c->state == C_CONNECTING ? EPOLLOUT : EPOLLIN;
  if(c->out_off < c->out_len)
    ev.events |= EPOLLOUT;
  epoll_ctl(W.ep, op, c->fd, &ev);
}

/* Builds a masked client frame. Returns its length (payload at most 65535 bytes). */
static size_t ws_frame(char *out, int opcode, const char *p, size_t n)
{
  static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t h = 2;
  out[0] = (char)(0x80 | opcode);
  if(n < 126)
    out[1] = (char)(0x80 | n);
  else {
    out[1] = (char)(0x80 | 126);
    out[2] = (char)(n >> 8);
    out[3] = (char)(n & 0xff);
    h = 4;
  }
  memcpy(out + h, mask, 4);
  h += 4;
  for(size_t k = 0; k < n; k++)
    out[h + k] = (char)(p[k] ^ mask[k & 3]);
  return h + n;
}

/* Writes data, or keeps it for EPOLLOUT (up to WS_OUT_CAP). Returns 0 or -1. */
static int ws_send(long i, struct wsc *c, const char *data, size_t n)
{
  bool was_waiting = c->out_off < c->out_len;
  if(!was_waiting) {
    c->out_len = c->out_off = 0;
    ssize_t k = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if(k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    if(k < 0)
      k = 0;
    data += k;
    n -= (size_t)k;
    if(!n)
      return 0;
  }
  if(!c->out && !(c->out = malloc(WS_OUT_CAP)))
    return -1;
  if(c->out_off) {
    memmove(c->out, c->out + c->out_off, (size_t)(c->out_len - c->out_off));
    c->out_len = (uint16_t)(c->out_len - c->out_off);
    c->out_off = 0;
  }
  if(c->out_len + n > WS_OUT_CAP)
    return -1;
  memcpy(c->out + c->out_len, data, n);
  c->out_len = (uint16_t)(c->out_len + n);
  if(!was_waiting)
    ws_watch(i, c, EPOLL_CTL_MOD);
  return 0;
}

static void ws_close(struct wsc *c)
{
  if(c->fd >= 0) {
    epoll_ctl(W.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  if(c->state >= C_CONNECTING && c->state < C_READY)
    W.handshaking--;
  if(c->state == C_READY)
    W.closed++;
  c->state = C_CLOSED;
  free(c->buf);
  free(c->out);
  c->buf = c->out = NULL;
  c->len = c->cap = 0;
}

static void ws_ready(struct wsc *c)
{
  c->state = C_READY;
  W.handshaking--;
  W.ready++;
}

/* The upgrade request of connection i (its topic in the path when the URL has {topic}). */
static int ws_upgrade(long i, struct wsc *c)
{
  char req[1536], tname[TOPIC_MAX];
  topic_name(i, tname, sizeof(tname));
  int n = snprintf(req, sizeof(req),
                   "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                   G.ws.pre, G.ws.has_topic ? tname : "", G.ws.post, G.ws.hostport,
                   G.subprotocol ? "Sec-WebSocket-Protocol: " : "",
                   G.subprotocol ? G.subprotocol : "", G.subprotocol ? "\r\n" : "");
  c->state = C_UPGRADING;
  ws_watch(i, c, EPOLL_CTL_MOD);
  return ws_send(i, c, req, (size_t)n);
}

/* After the 101: subscribe in the form of --proto. */
static int ws_subscribe(long i, struct wsc *c)
{
  char msg[128], frame[160], tname[TOPIC_MAX];
  topic_name(i, tname, sizeof(tname));
  int n;
  if(G.proto == PROTO_HERALD)
    n = snprintf(msg, sizeof(msg), "{\"op\":\"subscribe\",\"id\":\"s\",\"topic\":\"%s\"}", tname);
  else if(G.proto == PROTO_WS && G.ws_sub)
    n = snprintf(msg, sizeof(msg), "{\"sub\":\"%s\"}", tname);
  else {
    ws_ready(c); /* nchan, or ws without a message: subscribed by the URL */
    return 0;
  }
  if(G.proto == PROTO_HERALD)
    c->state = C_SUBSCRIBING;
  else
    ws_ready(c);
  return ws_send(i, c, frame, ws_frame(frame, 1, msg, (size_t)n));
}

/* Starts connection i (non-blocking connect). */
static void ws_open(long i)
{
  struct wsc *c = &W.c[i];
  int fd = socket(G.ws.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if(fd < 0) {
    setup_fail(i, "socket: %s", strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->fd = fd;
  c->state = C_CONNECTING;
  W.handshaking++;
  W.opened++;
  int r = connect(fd, (const struct sockaddr *)&G.ws.addr, G.ws.addr_len);
  if(r && errno != EINPROGRESS) {
    setup_fail(i, "connect %s: %s", addr_text(&G.ws), strerror(errno));
    close(fd);
    c->fd = -1;
    c->state = C_CLOSED;
    W.handshaking--;
    return;
  }
  ws_watch(i, c, EPOLL_CTL_ADD);
  if(!r && ws_upgrade(i, c))
    setup_fail(i, "send: %s", strerror(errno));
}

/* Scans a payload for "t":<digits>, once per message. It looks at each ':'
 * (a handful per message) rather than calling memmem, whose set-up cost per
 * short message showed as the biggest user-space cost at a million a second. */
static void ws_find_t(struct wsc *c, const char *p, size_t n)
{
  if(c->msg_has_t || n < 5)
    return;
  const char *end = p + n, *k = p + 3;
  while(k < end && (k = memchr(k, ':', (size_t)(end - k))) &&
        !(k[-3] == '"' && k[-2] == 't' && k[-1] == '"'))
    k++;
  if(!k || k >= end)
    return;
  const char *d = k + 1;
  while(d < end && *d == ' ')
    d++;
  if(d == end || *d < '0' || *d > '9')
    return;
  uint64_t v = 0;
  while(d < end && *d >= '0' && *d <= '9')
    v = v * 10 + (uint64_t)(*d++ - '0');
  c->msg_t = v;
  c->msg_has_t = true;
}

/* The ramp step a message sent at t belongs to. */
static unsigned gen_of(uint64_t t)
{
  for(unsigned k = W.cur_gen + 1; k-- > 0;) {
    uint64_t s = atomic_load_explicit(&S.gen_start[k], memory_order_relaxed);
    if(s && t >= s)
      return k;
  }
  return 0;
}

/* A whole message has arrived (p, n: its last fragment). */
static void ws_message(long i, struct wsc *c, const char *p, size_t n, uint64_t now)
{
  if(c->state == C_SUBSCRIBING) {
    if(memmem(p, n, "\"op\":\"ack\"", 10))
      ws_ready(c);
    else if(memmem(p, n, "\"op\":\"error\"", 12))
      setup_fail(i, "the subscribe was refused: %.*s", (int)(n < 300 ? n : 300), p);
    return;
  }
  if(!c->msg_has_t) {
    W.other++;
    if(!W.first_other[0])
      snprintf(W.first_other, sizeof(W.first_other), "%.*s", (int)(n < 150 ? n : 150), p);
    return;
  }
  uint64_t t = c->msg_t;
  if(t == 0) {
    c->warm = true;
    W.probes++;
    return;
  }
  if(t < G.start_ns) {
    W.stale++;
    return;
  }
  uint64_t lat = now > t ? now - t : 0;
  W.delivered++;
  if(!W.first_rx_ns)
    W.first_rx_ns = now;
  W.last_rx_ns = now;
  hist_add(&W.total, lat);
  hist_add(&W.second, lat);
  if(W.gen_hist) {
    unsigned g = gen_of(t);
    W.gen_delivered[g]++;
    hist_add(&W.gen_hist[g], lat);
  }
}

/* Handles the whole frames in p[0..n). Returns the bytes used, or -1 when the
 * connection is to be closed. Frames from the server are unmasked (a masked
 * one is unmasked in place); a fragmented message counts once, at its end. */
static long ws_frames(long i, struct wsc *c, char *p, size_t n, uint64_t now)
{
  size_t pos = 0;
  while(n - pos >= 2) {
    unsigned char b0 = (unsigned char)p[pos], b1 = (unsigned char)p[pos + 1];
    bool fin = b0 & 0x80, masked = b1 & 0x80;
    int op = b0 & 0x0f;
    uint64_t len = b1 & 0x7f;
    size_t h = 2;
    if(len == 126) {
      if(n - pos < 4)
        break;
      len = (uint64_t)(unsigned char)p[pos + 2] << 8 | (unsigned char)p[pos + 3];
      h = 4;
    } else if(len == 127) {
      if(n - pos < 10)
        break;
      len = 0;
      for(int k = 0; k < 8; k++)
        len = len << 8 | (unsigned char)p[pos + 2 + k];
      h = 10;
    }
    if(len > FRAME_MAX) {
      W.bad_frames++;
      if(!W.first_close[0])
        snprintf(W.first_close, sizeof(W.first_close), "a frame of %llu bytes (over %d)",
                 (unsigned long long)len, FRAME_MAX);
      return -1;
    }
    size_t mh = masked ? 4 : 0;
    if(n - pos < h + mh + len)
      break;
    char *pl = p + pos + h + mh;
    if(masked)
      for(size_t k = 0; k < len; k++)
        pl[k] ^= p[pos + h + (k & 3)];
    pos += h + mh + (size_t)len;
    switch(op) {
    case 0x1:
    case 0x2:
      c->msg_has_t = false;
      c->in_msg = !fin;
      ws_find_t(c, pl, (size_t)len);
      if(fin)
        ws_message(i, c, pl, (size_t)len, now);
      break;
    case 0x0:
      if(!c->in_msg) {
        W.bad_frames++;
        break;
      }
      ws_find_t(c, pl, (size_t)len);
      if(fin) {
        c->in_msg = false;
        ws_message(i, c, pl, (size_t)len, now);
      }
      break;
    case 0x8: {
      int code = len >= 2 ? ((unsigned char)pl[0] << 8 | (unsigned char)pl[1]) : 1005;
      if(c->state < C_READY)
        setup_fail(i, "closed by the server during the handshake: %d %.*s", code,
                   (int)(len > 2 ? len - 2 : 0), pl + 2);
      else if(!W.first_close[0])
        snprintf(W.first_close, sizeof(W.first_close), "close frame %d %.*s", code,
                 (int)(len > 2 && len < 120 ? len - 2 : 0), pl + 2);
      return -1;
    }
    case 0x9: {
      char frame[140];
      W.pings++;
      if(len <= 125 && ws_send(i, c, frame, ws_frame(frame, 0xA, pl, (size_t)len)))
        return -1;
      break;
    }
    case 0xA: break;
    default: W.bad_frames++; break;
    }
    if(W.failed)
      return -1;
  }
  return (long)pos;
}

/* Keeps n bytes of input for the next read. Returns 0 or -1 (out of memory). */
static int ws_keep(struct wsc *c, const char *p, size_t n)
{
  if(n > c->cap || (c->cap > 4096 && n < 1024)) {
    size_t cap = n < 512 ? 512 : n;
    char *b = malloc(cap);
    if(!b)
      return -1;
    free(c->buf);
    c->buf = b;
    c->cap = (uint32_t)cap;
  }
  if(n)
    memcpy(c->buf, p, n);
  c->len = (uint32_t)n;
  return 0;
}

/* The server said something: the 101, frames, or the end. */
static void ws_readable(long i, struct wsc *c)
{
  char *rb = G.rbuf;
  size_t have = c->len;
  if(have)
    memcpy(rb, c->buf, have);
  ssize_t n = recv(c->fd, rb + have, READ_CHUNK, MSG_DONTWAIT);
  if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if(n <= 0) {
    const char *why = n ? strerror(errno) : "the server closed the connection";
    if(c->state < C_READY)
      setup_fail(i,
                 "%s during the handshake (a connection limit? heraldd: "
                 "client.max_connections, client.max_connections_per_ip)",
                 why);
    else if(!W.first_close[0])
      snprintf(W.first_close, sizeof(W.first_close), "%s", why);
    ws_close(c);
    return;
  }
  uint64_t now = now_ns();
  size_t total = have + (size_t)n, used = 0;
  W.reads++;
  if(c->state == C_UPGRADING) {
    char *eoh = memmem(rb, total, "\r\n\r\n", 4);
    if(!eoh) {
      if(total > HEAD_CAP) {
        setup_fail(i, "the answer to the upgrade passes %d bytes without ending", HEAD_CAP);
        ws_close(c);
      } else if(ws_keep(c, rb, total)) {
        setup_fail(i, "out of memory");
        ws_close(c);
      }
      return;
    }
    if(total < 12 || memcmp(rb, "HTTP/1.1 101", 12) != 0) {
      size_t ll = strcspn(rb, "\r");
      setup_fail(i, "the server answered \"%.*s\" instead of 101 (is %s%s%s the WebSocket path?)",
                 (int)(ll < 100 ? ll : 100), rb, G.ws.pre, G.ws.has_topic ? "{topic}" : "",
                 G.ws.post);
      ws_close(c);
      return;
    }
    used = (size_t)(eoh - rb) + 4;
    if(ws_subscribe(i, c)) {
      setup_fail(i, "send: %s", strerror(errno));
      ws_close(c);
      return;
    }
  }
  long k = ws_frames(i, c, rb + used, total - used, now);
  if(k < 0) {
    ws_close(c);
    return;
  }
  used += (size_t)k;
  if(ws_keep(c, rb + used, total - used)) {
    setup_fail(i, "out of memory");
    ws_close(c);
  }
}

static void ws_event(long i, uint32_t events)
{
  struct wsc *c = &W.c[i];
  if(c->fd < 0)
    return;
  if(c->state == C_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if(err) {
      setup_fail(i, "connect %s: %s", addr_text(&G.ws), strerror(err));
      ws_close(c);
    } else if(ws_upgrade(i, c)) {
      setup_fail(i, "send: %s", strerror(errno));
      ws_close(c);
    }
    return;
  }
  if(events & EPOLLOUT && c->out_off < c->out_len) {
    ssize_t k = send(c->fd, c->out + c->out_off, (size_t)(c->out_len - c->out_off),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if(k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      if(c->state < C_READY)
        setup_fail(i, "send: %s", strerror(errno));
      ws_close(c);
      return;
    }
    if(k > 0)
      c->out_off = (uint16_t)(c->out_off + k);
    if(c->out_off == c->out_len)
      ws_watch(i, c, EPOLL_CTL_MOD);
  }
  if(events & (EPOLLIN | EPOLLHUP | EPOLLERR))
    ws_readable(i, c);
}

/* Waits up to ms for events on the WebSocket connections and handles them. */
static void ws_poll(int ms)
{
  static struct epoll_event evs[EVENTS_MAX];
  int n = epoll_wait(W.ep, evs, EVENTS_MAX, ms);
  for(int k = 0; k < n; k++)
    ws_event((long)evs[k].data.u64, evs[k].events);
}

/* ---- phases ---- */

/* Opens and subscribes every connection, at most --inflight handshaking at a
 * time. Returns 0, or -1 (the reason is on stderr). */
static int setup_phase(void)
{
  long next = 0, last_ready = 0;
  uint64_t t0 = now_ns(), progress = t0, next_line = t0 + 2 * NS;
  while(W.ready < G.conns) {
    while(!W.failed && next < G.conns && W.handshaking < G.inflight)
      ws_open(next++);
    if(W.failed)
      return -1;
    ws_poll(50);
    if(W.failed)
      return -1;
    uint64_t now = now_ns();
    if(W.ready != last_ready) {
      last_ready = W.ready;
      progress = now;
    }
    if(interrupted) {
      fprintf(stderr, "loadgen: interrupted while connecting (%ld of %ld ready)\n", W.ready,
              G.conns);
      return -1;
    }
    if(now - progress > 10 * NS || now >= G.deadline_ns) {
      fprintf(stderr,
              "loadgen: %ld of %ld connections ready; %ld still handshaking %s (is the server "
              "answering? --proto %s)\n",
              W.ready, G.conns, W.handshaking,
              now >= G.deadline_ns ? "at --max-s" : "after 10 s without progress",
              proto_names[G.proto]);
      return -1;
    }
    if(now >= next_line) {
      printf("connecting: %ld of %ld ready, %ld handshaking\n", W.ready, G.conns, W.handshaking);
      fflush(stdout);
      next_line = now + 2 * NS;
    }
  }
  printf("connected: %ld connections subscribed to %ld topic%s in %.2f s (%s, %s)\n", W.ready,
         G.topics, G.topics > 1 ? "s" : "", (double)(now_ns() - t0) / 1e9, proto_names[G.proto],
         G.ws_url);
  fflush(stdout);
  return 0;
}

/* Publishes a probe ("t":0) to every topic that has a connection which has not
 * received one yet, until all have or --warmup-ms passes: afterwards every
 * connection is known to be subscribed, whatever the server's way of
 * acknowledging (nchan and ws send none). Returns 0, or -1 on a publish failure. */
static int warmup_phase(void)
{
  struct pconn *pc = calloc(1, sizeof(*pc));
  char *need = calloc((size_t)G.topics, 1);
  int rc = -1;
  if(!pc || !need) {
    fprintf(stderr, "loadgen: out of memory\n");
    goto out;
  }
  pc->fd = -1;
  pc->probe = true;
  uint64_t t0 = now_ns(), until = t0 + (uint64_t)G.warmup_ms * 1000000ull;
  long rounds = 0, posts = 0, cold = 0;
  for(;;) {
    memset(need, 0, (size_t)G.topics);
    cold = 0;
    for(long i = 0; i < G.conns; i++)
      if(W.c[i].state == C_READY && !W.c[i].warm) {
        need[i % G.topics] = 1;
        cold++;
      }
    if(!cold || now_ns() >= until || interrupted || rounds >= 100)
      break;
    rounds++;
    for(long j = 0; j < G.topics; j++) {
      if(!need[j])
        continue;
      char err[300];
      int status = probe_post(pc, j, err, sizeof(err));
      posts++;
      if(status < 0) {
        fprintf(stderr, "loadgen: warm-up: %s\n", err);
        goto out;
      }
      if(status < 200 || status > 299) {
        fprintf(stderr, "loadgen: warm-up: publishing to %s%s%s got HTTP %d\n", G.pub.pre,
                G.pub.has_topic ? "{topic}" : "", G.pub.post, status);
        goto out;
      }
      if(posts % 256 == 0)
        ws_poll(0);
    }
    uint64_t wait_until = now_ns() + 200000000ull;
    while(now_ns() < wait_until)
      ws_poll(20);
  }
  if(cold)
    printf("warm-up: %ld connection%s got no probe event in %ld ms (%ld publishes); they count "
           "as subscribed, and their misses as losses\n",
           cold, cold > 1 ? "s" : "", G.warmup_ms, posts);
  else
    printf("warm-up: every connection received a probe event (%ld publishes, %.2f s)\n", posts,
           (double)(now_ns() - t0) / 1e9);
  fflush(stdout);
  rc = 0;
out:
  if(pc && pc->fd >= 0)
    close(pc->fd);
  free(pc);
  free(need);
  return rc;
}

/* Holds the connections --idle-s seconds (answering pings). */
static void idle_phase(void)
{
  printf("idle: holding %ld connections for %ld s\n", W.ready, G.idle_s);
  fflush(stdout);
  uint64_t until = now_ns() + (uint64_t)G.idle_s * NS;
  if(until > G.deadline_ns)
    until = G.deadline_ns;
  while(!interrupted && now_ns() < until)
    ws_poll(100);
  printf("result: mode=idle proto=%s connections=%ld subscribed=%ld held_s=%ld closed=%llu "
         "pings=%llu other=%llu\n",
         proto_names[G.proto], G.conns, W.ready, G.idle_s, (unsigned long long)W.closed,
         (unsigned long long)W.pings, (unsigned long long)W.other);
}

struct ramp_result {
  double saturated, saturated_pub, last_ok_rate, saturated_cpu_us;
  const char *why;
};

/* The measuring window (publishing and drain) of the --server-pid CPU figures. */
static struct {
  double server0, server1, own0, own1;
} CPU;

/* Judges ramp step k, over: were its publishes delivered (by the time the
 * check runs), within the p99 bound, at the offered rate, without errors? */
static bool ramp_step_ok(unsigned k, double target, uint64_t rx_count, double rx_s, double cpu_s,
                         struct ramp_result *r)
{
  double cpu_us = cpu_s >= 0 && rx_count ? cpu_s * 1e6 / (double)rx_count : -1;
  uint64_t s0 = atomic_load(&S.gen_start[k]), s1 = atomic_load(&S.gen_start[k + 1]);
  double dur = (double)(s1 - s0) / 1e9;
  uint64_t sent = atomic_load(&S.gen_sent[k]), acc = atomic_load(&S.gen_accepted[k]);
  uint64_t exp = atomic_load(&S.gen_expected[k]), got = W.gen_delivered[k];
  double ratio = exp ? (double)got / (double)exp : 0;
  double rx_rate = rx_s > 0 ? (double)rx_count / rx_s : 0;
  const struct hist *h = &W.gen_hist[k];
  double p99 = us(hist_quantile(h, 0.99));
  const char *why = NULL;
  if(acc < sent)
    why = "publish errors";
  else if((double)sent + 2 < G.ramp_ratio * target * dur) /* 2: whole publishes at low rates */
    why = "publishes fell short of the rate (answers too slow: a busy server, or too few "
          "--pub-conns x --pipeline)";
  else if(ratio < G.ramp_ratio)
    why = "deliveries fell behind";
  else if(p99 > G.ramp_p99_ms * 1000)
    why = "p99 latency over --ramp-p99-ms";
  char cpu[64] = "";
  if(cpu_us >= 0)
    snprintf(cpu, sizeof(cpu), "  server %.0f%% cpu, %.3f us/delivery", cpu_s / rx_s * 100, cpu_us);
  printf("step %2u: rate %9.0f/s  sent %9.0f/s  accepted %9.0f/s  delivered %10.0f/s (%5.1f%% "
         "of %llu)  p50 %8.1f us  p99 %9.1f us  max %9.1f us%s  %s%s\n",
         k, target, sent / dur, acc / dur, rx_rate, ratio * 100, (unsigned long long)exp,
         us(hist_quantile(h, 0.5)), p99, us(h->max), cpu, why ? "saturated: " : "ok",
         why ? why : "");
  fflush(stdout);
  if(rx_rate > r->saturated) {
    r->saturated = rx_rate;
    r->saturated_pub = acc / dur;
    r->saturated_cpu_us = cpu_us;
  }
  if(!why)
    r->last_ok_rate = target;
  r->why = why;
  return !why;
}

/* Publishes (fixed rate or ramp) while receiving, then drains. Returns 0 or -1. */
static int measure_phase(struct ramp_result *ramp)
{
  pthread_t th;
  atomic_store(&S.want_rate_milli, (uint64_t)(G.rate * 1000));
  atomic_store(&S.want_gen, 0);
  uint64_t drain_ns = (uint64_t)G.drain_ms * 1000000ull;
  /* leave time for the last answers (2 s) and the drain before --max-s */
  uint64_t reserve = drain_ns + 3 * NS;
  P.issue_until_ns = G.deadline_ns > now_ns() + reserve ? G.deadline_ns - reserve : now_ns();
  CPU.server0 = G.npids ? server_cpu_s() : -1;
  CPU.own0 = own_cpu_s();
  W.reads = 0; /* the handshakes and the warm-up are not part of the figures */
  if(pthread_create(&th, NULL, pub_main, NULL)) {
    fprintf(stderr, "loadgen: cannot start the publisher thread\n");
    return -1;
  }
  double rate = G.rate;
  uint64_t next_step = 0, next_line = 0, grace = (uint64_t)(G.step_s * 1e9 / 4);
  if(grace > 500000000ull)
    grace = 500000000ull;
  unsigned evaluated = 0;
  bool ramp_over = false;
  uint64_t rx_mark[STEPS_MAX + 1] = {0}, rx_mark_ns[STEPS_MAX + 1] = {0};
  double cpu_mark[STEPS_MAX + 1] = {0};
  uint64_t sec_delivered = 0, sec_sent = 0, sec_acc = 0;
  while(!atomic_load(&S.done)) {
    ws_poll(10);
    uint64_t now = now_ns();
    if(interrupted || now >= G.deadline_ns)
      atomic_store(&S.stop, true);
    uint64_t s0 = atomic_load(&S.gen_start[0]);
    if(!s0)
      continue;
    if(!G.ramp) {
      if(!next_line)
        next_line = s0 + NS;
      if(now >= next_line) {
        uint64_t sent = atomic_load(&S.sent), acc = atomic_load(&S.accepted);
        printf("%5.1f s: sent %7llu/s  accepted %7llu/s  delivered %9llu/s  p50 %8.1f us  "
               "p99 %9.1f us  max %9.1f us\n",
               (double)(now - s0) / 1e9, (unsigned long long)(sent - sec_sent),
               (unsigned long long)(acc - sec_acc),
               (unsigned long long)(W.delivered - sec_delivered), us(hist_quantile(&W.second, 0.5)),
               us(hist_quantile(&W.second, 0.99)), us(W.second.max));
        fflush(stdout);
        sec_sent = sent;
        sec_acc = acc;
        sec_delivered = W.delivered;
        memset(&W.second, 0, sizeof(W.second));
        next_line += NS;
      }
      continue;
    }
    if(!next_step) {
      next_step = s0 + (uint64_t)(G.step_s * 1e9);
      rx_mark[0] = W.delivered;
      rx_mark_ns[0] = s0;
      cpu_mark[0] = G.npids ? server_cpu_s() : -1;
    }
    if(!ramp_over && now >= next_step) {
      if(W.cur_gen + 1 >= STEPS_MAX || now + (uint64_t)(G.step_s * 1e9) > P.issue_until_ns) {
        ramp->why = "not saturated by the end of the ramp (--max-s or the step limit)";
        ramp_over = true;
        atomic_store(&S.stop, true);
      } else {
        W.cur_gen++;
        rx_mark[W.cur_gen] = W.delivered;
        rx_mark_ns[W.cur_gen] = now;
        cpu_mark[W.cur_gen] = G.npids ? server_cpu_s() : -1;
        rate *= G.ramp_factor;
        atomic_store(&S.want_rate_milli, (uint64_t)(rate * 1000));
        atomic_store(&S.want_gen, W.cur_gen);
        next_step = now + (uint64_t)(G.step_s * 1e9);
      }
    }
    while(evaluated < W.cur_gen) {
      uint64_t s1 = atomic_load(&S.gen_start[evaluated + 1]);
      if(!s1 || now < s1 + grace)
        break;
      double target = G.rate * pow(G.ramp_factor, evaluated);
      uint64_t rx = rx_mark[evaluated + 1] - rx_mark[evaluated];
      double rx_s = (double)(rx_mark_ns[evaluated + 1] - rx_mark_ns[evaluated]) / 1e9;
      double c0 = cpu_mark[evaluated], c1 = cpu_mark[evaluated + 1];
      bool ok = ramp_step_ok(evaluated, target, rx, rx_s, c0 >= 0 && c1 >= 0 ? c1 - c0 : -1, ramp);
      evaluated++;
      if(!ok && !ramp_over) {
        ramp_over = true;
        atomic_store(&S.stop, true);
        break;
      }
    }
  }
  pthread_join(th, NULL);
  if(S.failure[0]) {
    fprintf(stderr, "loadgen: publisher: %s\n", S.failure);
    return -1;
  }
  /* drain: wait for what is still on its way, up to --drain-ms */
  uint64_t until = now_ns() + drain_ns;
  if(until > G.deadline_ns)
    until = G.deadline_ns;
  while(!interrupted && now_ns() < until && W.delivered < atomic_load(&S.expected))
    ws_poll(10);
  CPU.server1 = G.npids ? server_cpu_s() : -1;
  CPU.own1 = own_cpu_s();
  return 0;
}

/* ---- options ---- */

static void usage(FILE *f)
{
  fprintf(
      f,
      "usage: loadgen --url ws://HOST:PORT/PATH --pub http://HOST:PORT/PATH [options]\n"
      "\n"
      "Opens N WebSocket connections, subscribes them, publishes over HTTP at a fixed rate\n"
      "(or a rising one) and measures publish-to-receive latency, deliveries and losses.\n"
      "HOST must be loopback: 127.0.0.0/8, [::1] or localhost. A {topic} in either PATH is\n"
      "replaced by the topic (t0, t1, ...). Ends with one line `result: key=value ...`.\n"
      "\n"
      "Targets and protocol:\n"
      "  --url URL          WebSocket URL (required), e.g. ws://127.0.0.1:8080/ws,\n"
      "                     ws://127.0.0.1:8090/sub/{topic} (nchan)\n"
      "  --pub URL          publish URL (required unless --idle-s), e.g.\n"
      "                     http://127.0.0.1:8081/v1/topics/{topic}/events (herald),\n"
      "                     http://127.0.0.1:8090/pub/{topic} (nchan),\n"
      "                     http://127.0.0.1:8092/publish/{topic} (ws)\n"
      "  --proto P          how a connection subscribes (default herald):\n"
      "                       herald  sends {\"op\":\"subscribe\",\"id\":\"s\",\"topic\":T} and "
      "waits\n"
      "                               for the ack (subprotocol herald.v1)\n"
      "                       nchan   nothing: the topic is in the URL path\n"
      "                       ws      nothing, or {\"sub\":T} with --ws-sub\n"
      "  --ws-sub           with --proto ws, send {\"sub\":T} after the upgrade\n"
      "  --subprotocol S    Sec-WebSocket-Protocol to ask for (default: herald.v1 for\n"
      "                     herald, none otherwise; \"\" for none)\n"
      "  -H, --header H     an extra header line for every publish, e.g.\n"
      "                     'Authorization: Bearer KEY' (up to %d)\n"
      "\n"
      "Load:\n"
      "  -n, --connections N  WebSocket connections, 1-%d (default 1000); the descriptor\n"
      "                     limit is raised to its hard limit and must hold them\n"
      "  --topics N         1 (default): every connection on topic t0; N: connection i on\n"
      "                     topic t(i %% N), publishes spread round robin over the N topics\n"
      "  --rate R           publishes per second (default 1000); with --ramp, the first step\n"
      "  --duration-s S     publish for S seconds (default 5; none with --count or --ramp)\n"
      "  --count N          publish N events at most (default: no count limit)\n"
      "  --payload B        body bytes, 32-%d (default 100): {\"t\":NS,\"n\":SEQ,\"p\":\"xx..\"}\n"
      "  --pub-conns N      HTTP keep-alive connections of the publisher, 1-%d (default 8)\n"
      "  --pipeline N       requests in flight per publish connection, 1-%d (default 1)\n"
      "  --inflight N       connections handshaking at once while connecting (default 2000)\n"
      "  --drain-ms MS      after the last answer, wait up to MS for deliveries (default 2000)\n"
      "\n"
      "Ramp (saturation):\n"
      "  --ramp             multiply the rate by --ramp-factor every --step-s until a step\n"
      "                     fails: its deliveries short of --ramp-ratio of expected by\n"
      "                     --step-s/4 (at most 0.5 s) after it, its p99 over\n"
      "                     --ramp-p99-ms, publish errors, or the publisher short of the rate;\n"
      "                     reports saturated_per_s, the most deliveries/s seen in a step\n"
      "  --ramp-factor F    default 1.5 (1.05-10)\n"
      "  --step-s S         default 2 (0.5-60)\n"
      "  --ramp-p99-ms MS   default 500 (the delivery check allows about as much)\n"
      "  --ramp-ratio R     default 0.95\n"
      "\n"
      "Other modes and limits:\n"
      "  --idle-s S         1-540: open and subscribe, print `idle: holding N connections`,\n"
      "                     hold them S seconds (answering pings) and exit; publishes\n"
      "                     nothing (the caller reads the server's RSS meanwhile)\n"
      "  --warmup, --no-warmup  before measuring, publish a probe (\"t\":0) to each topic\n"
      "                     until every connection has one (default: on for nchan and ws,\n"
      "                     which do not acknowledge subscriptions; off for herald)\n"
      "  --warmup-ms MS     give up warming up after MS (default 5000)\n"
      "  --max-s S          the whole run ends by S seconds, 1-600 (default 60, 120 with\n"
      "                     --ramp, or more to fit --duration-s or --idle-s and the drain)\n"
      "  --server-pid PID   read the CPU time of PID (repeat: the sum; e.g. nginx's worker)\n"
      "                     from /proc over the publishing and the drain, and report the\n"
      "                     server's CPU-us per delivered message (per step with --ramp)\n"
      "  -h, --help         this text\n"
      "\n"
      "Latency is from just before the POST is written to when the frame is read (both\n"
      "CLOCK_MONOTONIC). Losses: published with a 2xx times the topic's subscribers, less\n"
      "what arrived. Messages with a \"t\" older than the run (a replayed buffer: give nchan\n"
      "nchan_subscriber_first_message newest) are counted as stale, not delivered.\n",
      HEADERS_MAX, CONNS_MAX, PAYLOAD_MAX, PUB_CONNS_MAX, PIPELINE_MAX);
}

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if(errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "loadgen: %s: expected a number from %g to %g, got \"%s\"\n", opt, lo, hi, s);
    return -1;
  }
  *out = v;
  return 0;
}

static int long_arg(const char *opt, const char *s, long lo, long hi, long *out)
{
  double v;
  if(num_arg(opt, s, (double)lo, (double)hi, &v))
    return -1;
  if(v != floor(v)) {
    fprintf(stderr, "loadgen: %s: expected a whole number, got \"%s\"\n", opt, s);
    return -1;
  }
  *out = (long)v;
  return 0;
}

enum {
  O_URL = 256,
  O_PUB,
  O_PROTO,
  O_WS_SUB,
  O_SUBPROTO,
  O_TOPICS,
  O_RATE,
  O_DURATION,
  O_COUNT,
  O_PAYLOAD,
  O_PUB_CONNS,
  O_PIPELINE,
  O_INFLIGHT,
  O_DRAIN,
  O_RAMP,
  O_FACTOR,
  O_STEP,
  O_P99,
  O_RATIO,
  O_IDLE,
  O_WARMUP,
  O_NO_WARMUP,
  O_WARMUP_MS,
  O_MAX_S,
  O_PID
};

/* Returns 0, 1 after --help, or 2 on a bad option (with a message). */
static int parse_options(int argc, char **argv)
{
  static const struct option opts[] = {
      {"url", required_argument, NULL, O_URL},
      {"pub", required_argument, NULL, O_PUB},
      {"proto", required_argument, NULL, O_PROTO},
      {"ws-sub", no_argument, NULL, O_WS_SUB},
      {"subprotocol", required_argument, NULL, O_SUBPROTO},
      {"header", required_argument, NULL, 'H'},
      {"connections", required_argument, NULL, 'n'},
      {"topics", required_argument, NULL, O_TOPICS},
      {"rate", required_argument, NULL, O_RATE},
      {"duration-s", required_argument, NULL, O_DURATION},
      {"count", required_argument, NULL, O_COUNT},
      {"payload", required_argument, NULL, O_PAYLOAD},
      {"pub-conns", required_argument, NULL, O_PUB_CONNS},
      {"pipeline", required_argument, NULL, O_PIPELINE},
      {"inflight", required_argument, NULL, O_INFLIGHT},
      {"drain-ms", required_argument, NULL, O_DRAIN},
      {"ramp", no_argument, NULL, O_RAMP},
      {"ramp-factor", required_argument, NULL, O_FACTOR},
      {"step-s", required_argument, NULL, O_STEP},
      {"ramp-p99-ms", required_argument, NULL, O_P99},
      {"ramp-ratio", required_argument, NULL, O_RATIO},
      {"idle-s", required_argument, NULL, O_IDLE},
      {"warmup", no_argument, NULL, O_WARMUP},
      {"no-warmup", no_argument, NULL, O_NO_WARMUP},
      {"warmup-ms", required_argument, NULL, O_WARMUP_MS},
      {"max-s", required_argument, NULL, O_MAX_S},
      {"server-pid", required_argument, NULL, O_PID},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool subproto_set = false;
  long count = 0;
  int o;
  while((o = getopt_long(argc, argv, "hn:H:", opts, NULL)) != -1) {
    int bad = 0;
    switch(o) {
    case O_URL: G.ws_url = optarg; break;
    case O_PUB: G.pub_url = optarg; break;
    case O_PROTO:
      if(strcmp(optarg, "herald") == 0)
        G.proto = PROTO_HERALD;
      else if(strcmp(optarg, "nchan") == 0)
        G.proto = PROTO_NCHAN;
      else if(strcmp(optarg, "ws") == 0)
        G.proto = PROTO_WS;
      else {
        fprintf(stderr, "loadgen: --proto: herald, nchan or ws, not \"%s\"\n", optarg);
        bad = 1;
      }
      break;
    case O_WS_SUB: G.ws_sub = true; break;
    case O_SUBPROTO:
      G.subprotocol = *optarg ? optarg : NULL;
      subproto_set = true;
      break;
    case 'H':
      if(G.nheaders == HEADERS_MAX || !strchr(optarg, ':') || strpbrk(optarg, "\r\n")) {
        fprintf(stderr, "loadgen: --header: up to %d lines \"Name: value\"\n", HEADERS_MAX);
        bad = 1;
      } else
        G.headers[G.nheaders++] = optarg;
      break;
    case 'n': bad = long_arg("--connections", optarg, 1, CONNS_MAX, &G.conns); break;
    case O_TOPICS: bad = long_arg("--topics", optarg, 1, CONNS_MAX, &G.topics); break;
    case O_RATE: bad = num_arg("--rate", optarg, 0.1, 10000000, &G.rate); break;
    case O_DURATION: bad = num_arg("--duration-s", optarg, 0.1, 600, &G.duration_s); break;
    case O_COUNT:
      bad = long_arg("--count", optarg, 1, 1000000000, &count);
      G.count = (unsigned long long)count;
      break;
    case O_PAYLOAD: bad = long_arg("--payload", optarg, 32, PAYLOAD_MAX, &G.payload); break;
    case O_PUB_CONNS: bad = long_arg("--pub-conns", optarg, 1, PUB_CONNS_MAX, &G.pub_conns); break;
    case O_PIPELINE: bad = long_arg("--pipeline", optarg, 1, PIPELINE_MAX, &G.pipeline); break;
    case O_INFLIGHT: bad = long_arg("--inflight", optarg, 1, CONNS_MAX, &G.inflight); break;
    case O_DRAIN: bad = long_arg("--drain-ms", optarg, 0, 60000, &G.drain_ms); break;
    case O_RAMP: G.ramp = true; break;
    case O_FACTOR: bad = num_arg("--ramp-factor", optarg, 1.05, 10, &G.ramp_factor); break;
    case O_STEP: bad = num_arg("--step-s", optarg, 0.5, 60, &G.step_s); break;
    case O_P99: bad = num_arg("--ramp-p99-ms", optarg, 0.01, 60000, &G.ramp_p99_ms); break;
    case O_RATIO: bad = num_arg("--ramp-ratio", optarg, 0.1, 1, &G.ramp_ratio); break;
    case O_IDLE: bad = long_arg("--idle-s", optarg, 1, 540, &G.idle_s); break;
    case O_WARMUP: G.warmup_set = 1; break;
    case O_NO_WARMUP: G.warmup_set = 0; break;
    case O_WARMUP_MS: bad = long_arg("--warmup-ms", optarg, 100, 60000, &G.warmup_ms); break;
    case O_MAX_S: bad = long_arg("--max-s", optarg, 1, 600, &G.max_s); break;
    case O_PID:
      if(G.npids == PIDS_MAX) {
        fprintf(stderr, "loadgen: --server-pid: at most %d\n", PIDS_MAX);
        bad = 1;
      } else
        bad = long_arg("--server-pid", optarg, 1, 4194304, &G.pids[G.npids++]);
      break;
    case 'h': usage(stdout); return 1;
    default: bad = 1; break;
    }
    if(bad) {
      fprintf(stderr, "loadgen: see loadgen --help\n");
      return 2;
    }
  }
  if(optind != argc) {
    fprintf(stderr, "loadgen: unexpected argument \"%s\" (see loadgen --help)\n", argv[optind]);
    return 2;
  }
  if(!G.ws_url || (!G.pub_url && !G.idle_s)) {
    fprintf(stderr, "loadgen: --url%s is required (see loadgen --help)\n",
            G.idle_s ? "" : " and --pub are");
    return 2;
  }
  if(parse_url(G.ws_url, "ws://", &G.ws) || (G.pub_url && parse_url(G.pub_url, "http://", &G.pub)))
    return 2;
  if(G.pub_url && !G.pub.has_topic && G.topics > 1) {
    fprintf(stderr, "loadgen: --topics %ld needs {topic} in the --pub URL\n", G.topics);
    return 2;
  }
  if(G.proto == PROTO_NCHAN && !G.ws.has_topic && G.topics > 1) {
    fprintf(stderr, "loadgen: --proto nchan with --topics %ld needs {topic} in the --url path\n",
            G.topics);
    return 2;
  }
  if(G.ws_sub && G.proto != PROTO_WS) {
    fprintf(stderr, "loadgen: --ws-sub goes with --proto ws\n");
    return 2;
  }
  if(G.ramp && (G.idle_s || G.count)) {
    fprintf(stderr, "loadgen: --ramp goes with neither --idle-s nor --count\n");
    return 2;
  }
  if(!subproto_set)
    G.subprotocol = G.proto == PROTO_HERALD ? "herald.v1" : NULL;
  G.warmup = G.warmup_set < 0 ? G.proto != PROTO_HERALD : G.warmup_set;
  if(G.duration_s < 0)
    G.duration_s = G.count || G.ramp ? 0 : 5;
  if(G.max_s < 0) {
    /* enough for connecting (up to 30 s), the publishing or the hold, and the drain */
    double need = 30 + (G.idle_s ? (double)G.idle_s : G.duration_s + 5 + G.drain_ms / 1000.0);
    G.max_s = G.ramp ? 120 : need > 60 ? (long)ceil(need) : 60;
    if(G.max_s > 600)
      G.max_s = 600;
  }
  return 0;
}

/* ---- main ---- */

static void report(const struct ramp_result *ramp)
{
  uint64_t sent = atomic_load(&S.sent), acc = atomic_load(&S.accepted);
  uint64_t errs = atomic_load(&S.errors), exp = atomic_load(&S.expected);
  uint64_t skipped = atomic_load(&S.skipped);
  uint64_t first = atomic_load(&S.first_send_ns), last = atomic_load(&S.last_answer_ns);
  double elapsed = first && last > first ? (double)(last - first) / 1e9 : 0;
  double rx_s = first && W.last_rx_ns > first ? (double)(W.last_rx_ns - first) / 1e9 : 0;
  double per_s = rx_s > 0 ? (double)W.delivered / rx_s : 0;
  uint64_t lost = exp > W.delivered ? exp - W.delivered : 0;
  uint64_t extra = W.delivered > exp ? W.delivered - exp : 0;
  printf("published %llu (accepted %llu, errors %llu, skipped %llu) in %.2f s: %.0f/s; "
         "answer p50 %.1f us p99 %.1f us max %.1f us\n",
         (unsigned long long)sent, (unsigned long long)acc, (unsigned long long)errs,
         (unsigned long long)skipped, elapsed, elapsed > 0 ? (double)sent / elapsed : 0,
         us(hist_quantile(&S.rtt, 0.5)), us(hist_quantile(&S.rtt, 0.99)), us(S.rtt.max));
  if(errs) {
    printf("publish errors:");
    for(int s = 0; s < 600; s++)
      if(S.status_count[s] && s)
        printf(" HTTP %d x%u", s, S.status_count[s]);
      else if(S.status_count[s])
        printf(" no-answer x%u", S.status_count[s]);
    printf("; first: %s\n", S.first_error);
  }
  printf("delivered %llu of %llu expected (lost %llu, extra %llu, stale %llu, other %llu): "
         "%.0f/s\n",
         (unsigned long long)W.delivered, (unsigned long long)exp, (unsigned long long)lost,
         (unsigned long long)extra, (unsigned long long)W.stale, (unsigned long long)W.other,
         per_s);
  printf("latency (publish to receive): p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n",
         us(hist_quantile(&W.total, 0.5)), us(hist_quantile(&W.total, 0.99)),
         us(hist_quantile(&W.total, 0.999)), us(W.total.max));
  if(W.closed || W.bad_frames)
    printf("connections closed: %llu (first: %s); bad frames: %llu\n", (unsigned long long)W.closed,
           W.first_close[0] ? W.first_close : "-", (unsigned long long)W.bad_frames);
  if(W.other)
    printf("messages without \"t\": %llu (first: %s)\n", (unsigned long long)W.other,
           W.first_other);
  bool cpu_ok = G.npids && CPU.server0 >= 0 && CPU.server1 >= 0;
  double scpu = cpu_ok ? CPU.server1 - CPU.server0 : 0, ocpu = CPU.own1 - CPU.own0;
  double scpu_us = cpu_ok && W.delivered ? scpu * 1e6 / (double)W.delivered : 0;
  if(cpu_ok)
    printf("cpu: server %.2f s (%.3f us per delivery), loadgen %.2f s\n", scpu, scpu_us, ocpu);
  else if(G.npids)
    printf("cpu: --server-pid could not be read from /proc (has it exited?)\n");
  printf("loadgen: %.2f s cpu, %llu socket reads (%.1f messages a read)\n", ocpu,
         (unsigned long long)W.reads, W.reads ? (double)W.delivered / (double)W.reads : 0);
  if(G.ramp)
    printf("ramp: saturated at %.0f deliveries/s (%.0f publishes/s); last step passed at "
           "%.0f publishes/s; %s\n",
           ramp->saturated, ramp->saturated_pub, ramp->last_ok_rate, ramp->why ? ramp->why : "-");
  printf("result: proto=%s connections=%ld subscribed=%ld topics=%ld payload=%ld rate=%.0f "
         "published=%llu accepted=%llu errors=%llu skipped=%llu expected=%llu delivered=%llu "
         "lost=%llu extra=%llu stale=%llu closed=%llu deliveries_per_s=%.0f p50_us=%.1f "
         "p99_us=%.1f p999_us=%.1f max_us=%.1f elapsed_s=%.3f",
         proto_names[G.proto], G.conns, W.ready, G.topics, G.payload, G.rate,
         (unsigned long long)sent, (unsigned long long)acc, (unsigned long long)errs,
         (unsigned long long)skipped, (unsigned long long)exp, (unsigned long long)W.delivered,
         (unsigned long long)lost, (unsigned long long)extra, (unsigned long long)W.stale,
         (unsigned long long)W.closed, per_s, us(hist_quantile(&W.total, 0.5)),
         us(hist_quantile(&W.total, 0.99)), us(hist_quantile(&W.total, 0.999)), us(W.total.max),
         elapsed);
  printf(" client_cpu_s=%.2f", ocpu);
  if(cpu_ok)
    printf(" server_cpu_s=%.2f server_cpu_us_per_delivery=%.3f", scpu, scpu_us);
  if(G.ramp) {
    printf(" saturated_per_s=%.0f saturated_pub_per_s=%.0f last_ok_rate=%.0f", ramp->saturated,
           ramp->saturated_pub, ramp->last_ok_rate);
    if(cpu_ok && ramp->saturated_cpu_us >= 0)
      printf(" saturated_server_cpu_us_per_delivery=%.3f", ramp->saturated_cpu_us);
  }
  printf("\n");
}

int main(int argc, char **argv)
{
  int rc = parse_options(argc, argv);
  if(rc)
    return rc == 1 ? 0 : 2;
  rc = 1;

  /* Each connection is a descriptor: raise the soft limit to the hard one. */
  struct rlimit rl;
  if(getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t need = (rlim_t)G.conns + (rlim_t)G.pub_conns + 32;
    if(rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
      fprintf(stderr,
              "loadgen: %ld connections need %llu descriptors; the limit is %llu (ulimit -Hn)\n",
              G.conns, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
      return 1;
    }
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if(G.npids && server_cpu_s() < 0) {
    fprintf(stderr, "loadgen: --server-pid: cannot read /proc/PID/stat of every PID given\n");
    return 1;
  }
  G.start_ns = now_ns();
  G.deadline_ns = G.start_ns + (uint64_t)G.max_s * NS;
  G.rbuf = malloc(FRAME_MAX + HEAD_CAP + READ_CHUNK);
  W.c = calloc((size_t)G.conns, sizeof(*W.c));
  W.ep = epoll_create1(EPOLL_CLOEXEC);
  if(G.ramp)
    W.gen_hist = calloc(STEPS_MAX, sizeof(*W.gen_hist));
  if(!G.rbuf || !W.c || W.ep < 0 || (G.ramp && !W.gen_hist)) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for(long i = 0; i < G.conns; i++)
    W.c[i].fd = -1;
  P.ep = -1;

  if(!G.idle_s && pub_open())
    goto out;
  if(setup_phase())
    goto out;
  if(G.idle_s) {
    idle_phase();
    rc = 0;
    goto out;
  }
  if(G.warmup && warmup_phase())
    goto out;
  struct ramp_result ramp = {0};
  if(measure_phase(&ramp))
    goto out;
  report(&ramp);
  if(interrupted)
    fprintf(stderr, "loadgen: interrupted: the figures cover the run until then\n");
  else if(now_ns() >= G.deadline_ns)
    fprintf(stderr, "loadgen: --max-s %ld reached: the figures cover the run until then\n",
            G.max_s);
  rc = 0;
out:
  fflush(stdout);
  for(long i = 0; i < G.conns; i++)
    if(W.c[i].fd >= 0)
      close(W.c[i].fd);
  return rc;
}
