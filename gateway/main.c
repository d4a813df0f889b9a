/* heraldd: the Herald gateway daemon. Wires the engine, the publish
 * pipeline, the webhooks layer, the client port and the API port together,
 * then waits for SIGINT/SIGTERM to shut down. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "broker.h"
#include "eventlog.h"
#include "history/store.h"
#include "topic_rules.h"
#include "client_port.h"
#include "config.h"
#include "hooks.h"
#include "log.h"
#include "net.h"
#include "publishing.h"

#define API_DRAIN_MS 2000    /* in-flight REST requests */
#define CLIENT_DRAIN_MS 2500 /* close handshakes; both stay under 5 s in all */

static void usage(FILE *out)
{
  fprintf(out, "Usage: heraldd [OPTIONS]\n"
               "Herald: a real-time gateway that fans REST-published events out to WebSocket\n"
               "subscribers.\n\n"
               "  -c, --config FILE          load FILE instead of the embedded default config\n"
               "      --client-listen H:P    WebSocket client port address (client.listen)\n"
               "      --api-listen H:P       REST API port address (api.listen)\n"
               "      --data-dir DIR         where durable state lives (data_dir)\n"
               "      --log-level LEVEL      debug, info, warn or error (log_level)\n"
               "      --check-config         validate the configuration and exit (0 ok, 1 not)\n"
               "      --hash-key             read an API key on stdin, print the sha256 to put\n"
               "                             in auth.api_keys, and exit\n"
               "  -V, --version              print the version and exit\n"
               "  -h, --help                 print this help and exit\n\n"
               "Keys and defaults: docs/config.md. Protocol: docs/protocol.md.\n");
}

/* Creates dir and its parents like mkdir -p; dir itself, when created here,
 * is 0700 whatever the umask (it will hold webhook secrets). An existing dir
 * keeps its mode (warn_open_modes tells). Returns 0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
  char path[1024];
  snprintf(path, sizeof(path), "%s", dir);
  for(char *p = path + 1; *p; p++) {
    if(*p != '/')
      continue;
    *p = '\0';
    if(mkdir(path, 0750) && errno != EEXIST)
      return -1;
    *p = '/';
  }
  if(mkdir(path, 0700) == 0) {
    if(chmod(path, 0700))
      return -1;
  } else if(errno != EEXIST)
    return -1;
  struct stat st;
  if(stat(path, &st) || !S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return access(path, W_OK);
}

/* Warns, one line for each, when data_dir or the database files in it are
 * open to group or others: herald.db holds webhook secrets in clear. The
 * modes are the operator's: nothing is changed. */
static void warn_open_modes(const char *data_dir)
{
  static const char *const names[] = {NULL, "herald.db", "herald.db-wal", "herald.db-shm"};
  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char path[1200];
    struct stat st;
    snprintf(path, sizeof(path), "%s%s%s", data_dir, names[i] ? "/" : "", names[i] ? names[i] : "");
    if(stat(path, &st) || !(st.st_mode & 077))
      continue;
    gw_warn("data_dir_permissions",
            "path=\"%s\" mode=%04o detail=\"open to group or others, and herald.db holds "
            "webhook secrets in clear (chmod %s)\"",
            path, (unsigned)(st.st_mode & 07777), names[i] ? "600" : "700");
  }
}

static void hooks_log(enum util_log_level level, const char *event, const char *fields)
{
  gw_log(level, event, fields ? "%s" : NULL, fields);
}

/* Fills the webhooks service's settings from the configuration. */
static void hooks_config(const struct gw_config *cfg, struct hook_config *hc)
{
  static const int default_schedule[] = {0, 5, 300, 1800, 7200, 18000, 36000, 36000};
  memset(hc, 0, sizeof(*hc));
  snprintf(hc->db_path, sizeof(hc->db_path), "%s/herald.db", cfg->data_dir);
  if(cfg->webhooks_schedule) {
    size_t i;
    json_t *v;
    json_array_foreach(cfg->webhooks_schedule, i, v)
    {
      hc->schedule_s[i] = (int)json_integer_value(v); /* 1..32 entries, checked at load */
    }
    hc->schedule_n = json_array_size(cfg->webhooks_schedule);
  } else {
    memcpy(hc->schedule_s, default_schedule, sizeof(default_schedule));
    hc->schedule_n = sizeof(default_schedule) / sizeof(default_schedule[0]);
  }
  hc->jitter = cfg->webhooks_jitter_percent / 100.0;
  hc->connect_timeout_ms = cfg->webhooks_connect_timeout_ms;
  hc->request_timeout_ms = cfg->webhooks_request_timeout_ms;
  hc->max_inflight = cfg->webhooks_max_in_flight;
  hc->max_inflight_per_endpoint = cfg->webhooks_max_in_flight_per_endpoint;
  hc->disable_after_ms = (int64_t)cfg->webhooks_disable_after_s * 1000;
  hc->rotation_ms = (int64_t)cfg->webhooks_secret_rotation_s * 1000;
  hc->retention_ms = (int64_t)cfg->webhooks_retention_s * 1000;
  hc->idempotency_ttl_ms = (int64_t)cfg->webhooks_idempotency_ttl_s * 1000;
  hc->store_max_bytes = (int64_t)cfg->webhooks_store_max_mb << 20;
  hc->commit_queue_max = cfg->webhooks_commit_queue_max;
  if(cfg->webhooks_allowed_cidrs) {
    size_t i;
    json_t *v;
    json_array_foreach(cfg->webhooks_allowed_cidrs, i, v)
    {
      if(hook_cidr_parse(json_string_value(v), &hc->allowed[hc->nallowed], NULL) == 0)
        hc->nallowed++; /* at most 64, checked at load */
    }
  }
  hc->endpoints = cfg->webhooks_endpoints;
  hc->log = hooks_log;
  hc->log_level = gw_log_get_level();
  hc->announce = gw_publishing_announce;
}

/* --hash-key: one key on stdin (a final newline is not part of it). */
static int hash_key(void)
{
  char key[4099]; /* 4096 bytes, a line ending, and one more to see a longer key */
  size_t len = fread(key, 1, sizeof(key), stdin);
  if(len && key[len - 1] == '\n')
    len--;
  if(len && key[len - 1] == '\r')
    len--;
  if(len > 4096) {
    fprintf(stderr, "heraldd: --hash-key: the key is longer than 4096 bytes\n");
    return 1;
  }
  if(len < 16 || memchr(key, '\n', len) || memchr(key, '\r', len) || memchr(key, '\0', len)) {
    fprintf(stderr, "heraldd: --hash-key: give one key of at least 16 characters on stdin, e.g.\n"
                    "  openssl rand -base64 32 | tee api.key | heraldd --hash-key\n");
    return 1;
  }
  char hex[65];
  if(gw_auth_hash_key(key, len, hex))
    return 1;
  printf("%s\n", hex);
  return 0;
}

/* Lifts the soft open-file limit to the hard one: every client is a socket. */
static void raise_fd_limit(void)
{
  struct rlimit rl;
  if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Topics whose seq a start could not keep: more stored topics than
 * broker.max_topics (a lower limit than the run that stored them). */
static size_t restore_skipped;

/* Restores one stored event into the log (its topic's seq with it). */
static int restore_event(void *arg, struct sub_event *ev)
{
  int rc = sub_broker_restore(arg, ev);
  sub_event_unref(ev);
  if(rc == 1)
    restore_skipped++;
  return rc < 0 ? -1 : 0;
}

static int restore_seq(void *arg, const char *topic, size_t len, uint64_t seq)
{
  int rc = sub_broker_seed(arg, topic, len, seq);
  if(rc == 1)
    restore_skipped++;
  return rc < 0 ? -1 : 0;
}

/* The history log (docs/history.md): memory only, or kept in
 * <data_dir>/history.db, whose epoch, events and topic seqs come back at
 * start. Returns the log (NULL: history off, or *failed, logged); *store
 * gets the store to close after the log is freed. */
static struct sub_log *history_start(const struct gw_config *cfg, struct sub_broker *b,
                                     struct hist_store **store, bool *failed)
{
  *failed = false;
  *store = NULL;
  if(!cfg->history_enabled)
    return NULL;
  struct sub_log_cfg lc = {
      .max_events = (size_t)cfg->history_max_events,
      .max_bytes = (size_t)cfg->history_max_bytes,
      .max_age_ms = (uint64_t)cfg->history_max_age_s * 1000,
      .max_pending = (size_t)cfg->history_max_pending,
      .deliver = sub_broker_log_deliver,
      .deliver_arg = b,
  };
  char epoch[SUB_EPOCH_LEN + 1];
  uint64_t next = 1;
  bool found = false;
  if(cfg->history_durable) {
    char err[512];
    if(!(*store = hist_store_open(cfg->data_dir, err, sizeof(err)))) {
      gw_error("history_store_failed", "dir=%s error=\"%s\"", cfg->data_dir, err);
      goto fail;
    }
    if(hist_store_meta(*store, epoch, &next, &found)) {
      gw_error("history_store_failed", "dir=%s error=\"%s\"", cfg->data_dir,
               hist_store_errmsg(*store));
      goto fail;
    }
    lc.store = hist_store_seam(*store);
  }
  struct sub_log *log = sub_log_new(&lc, found ? epoch : NULL, found ? next : 1);
  if(!log) {
    gw_error("history_failed", "error=out_of_memory");
    goto fail;
  }
  if(*store && !found && hist_store_reset(*store, sub_log_epoch(log), 1)) {
    gw_error("history_store_failed", "dir=%s error=\"%s\"", cfg->data_dir,
             hist_store_errmsg(*store));
    sub_log_free(log);
    goto fail;
  }
  sub_broker_set_log(b, log);
  if(found) {
    uint64_t now = (uint64_t)time(NULL) * 1000;
    uint64_t age = lc.max_age_ms;
    if(hist_store_load(*store, lc.max_events, lc.max_bytes, age && now > age ? now - age : 0,
                       restore_event, restore_seq, b)) {
      gw_error("history_store_failed", "dir=%s error=\"%s\" (loading)", cfg->data_dir,
               hist_store_errmsg(*store));
      sub_log_free(log);
      goto fail;
    }
    if(restore_skipped)
      gw_warn("history_topics_skipped",
              "count=%zu reason=\"more stored topics than broker.max_topics: their seq starts "
              "again from 1 if they are published to\"",
              restore_skipped);
  }
  if(sub_log_start(log)) {
    gw_error("history_failed", "error=\"cannot start the writer thread\"");
    sub_log_free(log);
    goto fail;
  }
  struct sub_log_stats st;
  sub_log_stats(log, &st);
  gw_info("history", "epoch=%s durable=%s next_offset=%llu events=%zu restored=%s",
          sub_log_epoch(log), *store ? "true" : "false", (unsigned long long)st.next, st.events,
          found ? "true" : "false");
  return log;
fail:
  hist_store_close(*store);
  *store = NULL;
  *failed = true;
  return NULL;
}

int main(int argc, char **argv)
{
  enum { OPT_CLIENT = 256, OPT_API, OPT_DATA, OPT_LEVEL, OPT_CHECK, OPT_HASH };
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"client-listen", required_argument, NULL, OPT_CLIENT},
      {"api-listen", required_argument, NULL, OPT_API},
      {"data-dir", required_argument, NULL, OPT_DATA},
      {"log-level", required_argument, NULL, OPT_LEVEL},
      {"check-config", no_argument, NULL, OPT_CHECK},
      {"hash-key", no_argument, NULL, OPT_HASH},
      {"version", no_argument, NULL, 'V'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *config_path = NULL;
  const char *overrides[4][2] = {
      {"client.listen", NULL}, {"api.listen", NULL}, {"data_dir", NULL}, {"log_level", NULL}};
  int check_only = 0, c;
  while((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch(c) {
    case 'c': config_path = optarg; break;
    case OPT_CLIENT: overrides[0][1] = optarg; break;
    case OPT_API: overrides[1][1] = optarg; break;
    case OPT_DATA: overrides[2][1] = optarg; break;
    case OPT_LEVEL: overrides[3][1] = optarg; break;
    case OPT_CHECK: check_only = 1; break;
    case OPT_HASH: return hash_key();
    case 'V': printf("heraldd %s\n", HERALD_VERSION); return 0;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if(optind < argc) {
    fprintf(stderr, "heraldd: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }

  static struct gw_config cfg; /* lives as long as the process */
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&cfg);
  int rc = config_path ? gw_config_load_file(&cfg, config_path, err)
                       : gw_config_load_text(&cfg, gw_default_config, gw_default_config_len,
                                             "(embedded conf/herald.json)", err);
  for(int i = 0; rc == 0 && i < 4; i++)
    if(overrides[i][1])
      rc = gw_config_set(&cfg, overrides[i][0], overrides[i][1], err);
  if(rc == 0)
    rc = gw_config_check(&cfg, err);
  static struct gw_rules *rules; /* schemas are compiled once, here; lives as long as cfg */
  if(rc == 0)
    rc = gw_rules_build(&cfg, &rules, err);
  static struct gw_auth *auth; /* keys and grants, as long as cfg */
  if(rc == 0 && !(auth = gw_auth_new(&cfg, err)))
    rc = -1;
  if(rc == 0)
    rc = gw_tls_check(&cfg, err);
  if(rc) {
    fprintf(stderr, "heraldd: configuration error: %s\n", err);
    gw_rules_free(rules);
    gw_auth_free(auth);
    gw_config_release(&cfg);
    return 1;
  }
  if(check_only) {
    printf("configuration ok (%s)\n", config_path ? config_path : "embedded default");
    gw_auth_free(auth);
    gw_rules_free(rules);
    gw_config_release(&cfg);
    return 0;
  }

  enum util_log_level level;
  gw_log_parse_level(cfg.log_level, &level);
  gw_log_set_level(level);
  gw_log_hook_lws();
  gw_config_resolve(&cfg);
  raise_fd_limit();
  if(mkdir_p(cfg.data_dir)) {
    gw_error("data_dir_unusable", "path=%s error=\"%s\"", cfg.data_dir, strerror(errno));
    return 1;
  }

  /* Signals are taken by sigwait below; every thread inherits this mask. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);

  const char *why = NULL;
  int client_fd = gw_listen(cfg.client_listen, 1024, &why);
  if(client_fd < 0) {
    gw_error("listen_failed", "port=client addr=%s error=\"%s\"", cfg.client_listen, why);
    return 1;
  }
  int api_fd = gw_listen(cfg.api_listen, 1024, &why);
  if(api_fd < 0) {
    gw_error("listen_failed", "port=api addr=%s error=\"%s\"", cfg.api_listen, why);
    close(client_fd);
    return 1;
  }
  char client_addr[80], api_addr[80];
  gw_sock_name(client_fd, client_addr, sizeof(client_addr));
  gw_sock_name(api_fd, api_addr, sizeof(api_addr));

  struct sub_broker_cfg bcfg = {
      .nsinks = cfg.client_workers,
      .sink_max_events = (size_t)cfg.broker_worker_queue_events,
      .sink_max_bytes = (size_t)cfg.broker_worker_queue_bytes,
      .max_topics = (size_t)cfg.broker_max_topics,
      .skip_idle_sinks = true, /* the client port counts its subscriptions */
  };
  struct sub_broker *broker = sub_broker_new(&bcfg);
  if(!broker) {
    gw_error("broker_failed", NULL);
    close(client_fd);
    close(api_fd);
    return 1;
  }
  bool history_failed;
  struct hist_store *hstore;
  struct sub_log *history = history_start(&cfg, broker, &hstore, &history_failed);
  if(history_failed) {
    close(client_fd);
    close(api_fd);
    sub_log_free(history);
    sub_broker_free(broker);
    return 1;
  }
  struct sub_engine *engine = sub_broker_engine(broker);
  struct gw_publishing *publishing = gw_publishing_new(&cfg, rules, engine);
  if(!publishing) {
    gw_error("publish_pipeline_failed", "error=out_of_memory");
    close(client_fd);
    close(api_fd);
    sub_log_free(history);
    sub_broker_free(broker);
    return 1;
  }
  struct pub_pipeline *pp = gw_publishing_pipeline(publishing);
  struct hook_config hc;
  hooks_config(&cfg, &hc);
  hc.announce_arg = publishing;
  char herr[512];
  struct hook_service *hooks = hook_start(&hc, engine, herr);
  if(!hooks) {
    gw_error("webhooks_failed", "error=\"%s\"", herr);
    close(client_fd);
    close(api_fd);
    gw_publishing_free(publishing);
    sub_log_free(history);
    sub_broker_free(broker);
    return 1;
  }
  gw_publishing_attach(publishing, hooks);
  warn_open_modes(cfg.data_dir); /* the database files exist now */
  struct gw_client_port *cp =
      gw_client_start(&cfg, engine, pp, auth, client_fd);
  if(!cp) {
    close(api_fd);
    hook_stop(hooks);
    gw_publishing_free(publishing);
    sub_log_free(history);
    sub_broker_free(broker);
    return 1;
  }
  struct gw_api *api = gw_api_start(&cfg, pp, hooks, auth, api_fd);
  if(!api) {
    gw_client_stop(cp, 0);
    hook_stop(hooks);
    gw_publishing_free(publishing);
    sub_log_free(history);
    sub_broker_free(broker);
    return 1;
  }
  gw_info("started", "version=%s workers=%d data_dir=%s config=%s", HERALD_VERSION,
          cfg.client_workers, cfg.data_dir, config_path ? config_path : "embedded");
  gw_info("listening", "port=client addr=%s path=/ws tls=%s", client_addr,
          cfg.client_tls_cert[0] ? "on" : "off");
  gw_info("listening", "port=api addr=%s tls=%s", api_addr, cfg.api_tls_cert[0] ? "on" : "off");
  if(cfg.auth_insecure)
    gw_warn("insecure", "detail=\"auth.insecure: ports without authentication may listen "
                        "beyond loopback\"");

  int sig = 0;
  while(sigwait(&stop, &sig) != 0)
    ;
  gw_info("stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
  gw_api_quiesce(api);
  gw_client_quiesce(cp);
  gw_api_stop(api, API_DRAIN_MS);      /* finish REST requests in flight */
  gw_client_stop(cp, CLIENT_DRAIN_MS); /* then close clients with 1001 */
  hook_stop(hooks);                    /* no publish can come now */
  gw_publishing_free(publishing);
  sub_log_free(history); /* commits what it was given */
  hist_store_close(hstore);
  sub_broker_free(broker);
  gw_rules_free(rules);
  gw_auth_free(auth);
  gw_config_release(&cfg);
  gw_info("stopped", NULL);
  return 0;
}
