/*
 * rest_fuzz.c - libFuzzer harness for the REST port: the real API
 * (libmicrohttpd, gateway/api.c, auth.c, topic rules, the webhooks API and
 * its SQLite store) runs in this process on 127.0.0.1; each input is the
 * bytes one client sends on one connection (requests, pipelined or not,
 * bodies, chunked encoding...). The write side is then shut and the harness
 * waits for the server to close (or to go quiet for 20 ms), then resets.
 *
 * Two API keys exist, so the seed corpus can hold requests that pass
 * authentication: "fuzz-publisher-key-0001" (publish orders.> and public.*,
 * read orders.>) and "fuzz-admin-key-000000001" (admin). A topic rule with a
 * schema covers orders.*. A memory history log backs GET /v1/events, the
 * latest-event route and webhook replays from a cursor. Webhook URLs may name numeric addresses only (no DNS here), and
 * the guard refuses loopback, so no delivery ever reaches this machine.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "eventlog.h"
#include "fuzz_server.h"
#include "topic_rules.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  gw_log_set_level(GW_LOG_ERROR);
  char pub[65], adm[65], text[2048], err[GW_CONFIG_ERR_MAX];
  gw_auth_hash_key("fuzz-publisher-key-0001", 23, pub);
  gw_auth_hash_key("fuzz-admin-key-000000001", 24, adm);
  snprintf(text, sizeof(text),
           "{\"client\": {\"workers\": 1},"
           " \"api\": {\"threads\": 1, \"max_body_bytes\": 4096, \"rate_per_s\": 100000,"
           "  \"rate_burst\": 100000},"
           " \"auth\": {\"api_keys\": ["
           "  {\"name\": \"publisher\", \"sha256\": \"%s\", \"publish\": [\"orders.>\", "
           "\"public.*\"], \"subscribe\": [\"orders.>\"]},"
           "  {\"name\": \"admin\", \"sha256\": \"%s\", \"admin\": true}]},"
           " \"topics\": [{\"pattern\": \"orders.*\", \"schema\": {\"type\": \"object\","
           "  \"required\": [\"id\"], \"properties\": {\"id\": {\"type\": \"string\", "
           "\"maxLength\": 16}}}}],"
           " \"webhooks\": {\"allowed_cidrs\": []}}",
           pub, adm);
  static struct gw_config cfg;
  struct gw_auth *auth = fuzz_config(&cfg, text);
  struct gw_rules *rules = NULL;
  if(gw_rules_build(&cfg, &rules, err))
    fuzz_die(err);
  struct sub_broker *broker;
  struct hook_service *hooks;
  struct pub_pipeline *pp;
  fuzz_backend(&cfg, rules, &broker, &hooks, &pp);
  /* before any publish, as heraldd sets it; small, so inputs evict */
  struct sub_log_cfg lc = {.max_events = 64, .max_pending = 1024,
                           .deliver = sub_broker_log_deliver, .deliver_arg = broker};
  struct sub_log *log = sub_log_new(&lc, NULL, 1);
  if(!log)
    fuzz_die("history log");
  sub_broker_set_log(broker, log);
  int fd = fuzz_listen(&port);
  if(!gw_api_start(&cfg, pp, hooks, auth, fd))
    fuzz_die("api port");
  return 0; /* the port runs until the process exits */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int fd = fuzz_connect(port);
  if(fd < 0)
    return 0;
  char reply[8192];
  int closed = 0;
  fuzz_send(fd, data, size);
  shutdown(fd, SHUT_WR);
  /* libmicrohttpd 0.9.75 does not close on a half-closed connection whose
   * request is incomplete (it waits for its 30 s timeout): after 20 ms
   * without a byte the harness resets the connection instead. */
  size_t got = fuzz_read_until_close(fd, reply, sizeof(reply) - 1, 2000, 20, &closed);
  reply[got] = '\0';
  /* Whatever was asked, an answer is HTTP or nothing. */
  if(got >= 5 && strncmp(reply, "HTTP/", 5) != 0)
    fuzz_die("the API answered something that is not HTTP");
  fuzz_abort_close(fd);
  return 0;
}
