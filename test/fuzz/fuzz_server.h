/*
 * fuzz_server.h - a real heraldd, in process, for the harnesses that fuzz
 * what arrives over a socket (ws_fuzz.c, rest_fuzz.c): the broker, the
 * webhooks service on a scratch SQLite store, the auth keys, and helpers to
 * talk to a port on 127.0.0.1 with deadlines. Each harness includes it once.
 *
 * Host names never reach DNS: getaddrinfo is replaced below by one that only
 * takes numeric addresses, so a fuzzed webhook URL cannot make the harness
 * wait on the network.
 */
#ifndef HERALD_FUZZ_SERVER_H
#define HERALD_FUZZ_SERVER_H

#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "broker.h"
#include "config.h"
#include "hooks.h"
#include "publishing.h"
#include "log.h"
#include "net.h"

/* Numeric hosts only: the real getaddrinfo with AI_NUMERICHOST forced. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
  static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
  if(!real)
    *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
  if(!real)
    return EAI_FAIL;
  struct addrinfo h;
  memset(&h, 0, sizeof(h));
  if(hints)
    h = *hints;
  h.ai_flags |= AI_NUMERICHOST;
  return real(node, service, &h, res);
}

static void fuzz_die(const char *what)
{
  fprintf(stderr, "fuzz: %s\n", what);
  abort();
}

static void fuzz_hooks_log(enum util_log_level level, const char *event, const char *fields)
{
  (void)level;
  (void)event;
  (void)fields;
}

/* Loads the harness's config text over the defaults and builds its keys. */
static struct gw_auth *fuzz_config(struct gw_config *cfg, const char *text)
{
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(cfg);
  if(gw_config_load_text(cfg, text, strlen(text), "fuzz", err))
    fuzz_die(err);
  gw_config_resolve(cfg);
  struct gw_auth *auth = gw_auth_new(cfg, err);
  if(!auth)
    fuzz_die(err);
  return auth;
}

/* Starts the broker and the webhooks service on a scratch store. */
/* The broker, the publish pipeline over rules (may be NULL) and the
 * webhooks layer on a temporary data dir, as heraldd's main wires them. */
static void fuzz_backend(struct gw_config *cfg, const struct gw_rules *rules,
                         struct sub_broker **broker, struct hook_service **hooks,
                         struct pub_pipeline **pp)
{
  static char dir[] = "/tmp/herald-fuzz-XXXXXX";
  if(!mkdtemp(dir))
    fuzz_die("mkdtemp");
  snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", dir);
  struct sub_broker_cfg bcfg = {
      .nsinks = cfg->client_workers,
      .sink_max_events = (size_t)cfg->broker_worker_queue_events,
      .sink_max_bytes = (size_t)cfg->broker_worker_queue_bytes,
      .max_topics = (size_t)cfg->broker_max_topics,
  };
  *broker = sub_broker_new(&bcfg);
  if(!*broker)
    fuzz_die("broker");
  struct gw_publishing *publishing = gw_publishing_new(cfg, rules, sub_broker_engine(*broker));
  if(!publishing)
    fuzz_die("publish pipeline");
  *pp = gw_publishing_pipeline(publishing);
  struct hook_config hc;
  memset(&hc, 0, sizeof(hc));
  snprintf(hc.db_path, sizeof(hc.db_path), "%s/herald.db", dir);
  hc.schedule_s[0] = 3600;
  hc.schedule_n = 1;
  hc.connect_timeout_ms = 100;
  hc.request_timeout_ms = 100;
  hc.max_inflight = 4;
  hc.max_inflight_per_endpoint = 1;
  hc.disable_after_ms = 1000;
  hc.retention_ms = 60000;
  hc.idempotency_ttl_ms = 60000;
  hc.store_max_bytes = 64 << 20;
  hc.commit_queue_max = 1024;
  hc.log = fuzz_hooks_log;
  hc.log_level = GW_LOG_ERROR;
  hc.announce = gw_publishing_announce;
  hc.announce_arg = publishing;
  char err[512];
  *hooks = hook_start(&hc, sub_broker_engine(*broker), err);
  if(!*hooks) {
    fprintf(stderr, "fuzz: webhooks: %s\n", err);
    abort();
  }
  gw_publishing_attach(publishing, *hooks);
}

/* A listening socket on 127.0.0.1 with a free port; writes the port. */
static int fuzz_listen(int *port)
{
  const char *why = NULL;
  int fd = gw_listen("127.0.0.1:0", 128, &why);
  if(fd < 0)
    fuzz_die(why ? why : "listen");
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  *port = ntohs(a.sin_port);
  return fd;
}

/* A connection to the port, or -1 when the machine has no local port to
 * spare for a while (other programs' TIME_WAIT sockets): the input is then
 * skipped. The server runs in this process, so it cannot have died unseen. */
static int fuzz_connect(int port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for(int tries = 0; tries < 200; tries++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if(fd < 0)
      fuzz_die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
      return fd;
    int e = errno;
    close(fd);
    if(e != EADDRNOTAVAIL && e != EAGAIN && e != ECONNREFUSED && e != EINTR) {
      fprintf(stderr, "fuzz: connect: %s\n", strerror(e));
      abort();
    }
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  static int warned;
  if(!warned++)
    fprintf(stderr, "fuzz: no local port to connect from for 2 s: inputs skipped\n");
  return -1;
}

static int64_t fuzz_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes everything, unless the peer has closed. Returns 0 or -1. */
static int fuzz_send(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while(len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if(n < 0 && errno == EINTR)
      continue;
    if(n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads into buf (up to cap, the rest is dropped) until the peer closes,
 * deadline_ms passes, or (idle_ms > 0) nothing comes for idle_ms. Returns
 * the bytes kept; *closed says whether the peer closed. */
static size_t fuzz_read_until_close(int fd, char *buf, size_t cap, int deadline_ms, int idle_ms,
                                    int *closed)
{
  size_t got = 0;
  char sink[4096];
  int64_t end = fuzz_ms() + deadline_ms;
  *closed = 0;
  for(;;) {
    int64_t left = end - fuzz_ms();
    if(left <= 0)
      return got;
    if(idle_ms > 0 && left > idle_ms)
      left = idle_ms;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if(r == 0 && idle_ms > 0)
      return got;
    if(r <= 0)
      continue;
    char *dst = got < cap ? buf + got : sink;
    size_t room = got < cap ? cap - got : sizeof(sink);
    ssize_t n = recv(fd, dst, room, 0);
    if(n < 0 && errno == EINTR)
      continue;
    if(n <= 0) {
      *closed = 1;
      return got;
    }
    if(dst != sink)
      got += (size_t)n;
  }
}

/* Closes with a reset (SO_LINGER 0): a server still waiting on a request
 * cut short learns at once that the client is gone, instead of at its
 * connection timeout. */
static inline void fuzz_abort_close(int fd)
{
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

#endif
