/* Configuration: the defaults, conf/herald.json, and the errors a user sees
 * when a key is wrong (each one names the key). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef HERALD_SOURCE_DIR
#error "HERALD_SOURCE_DIR must name the source tree (for conf/herald.json)"
#endif

static void assert_config_equal(const struct gw_config *a, const struct gw_config *b)
{
  assert_string_equal(a->client_listen, b->client_listen);
  assert_int_equal(a->client_workers, b->client_workers);
  assert_int_equal(a->client_max_connections, b->client_max_connections);
  assert_int_equal(a->client_max_message_bytes, b->client_max_message_bytes);
  assert_int_equal(a->client_max_subscriptions, b->client_max_subscriptions);
  assert_int_equal(a->client_send_queue_bytes, b->client_send_queue_bytes);
  assert_string_equal(a->api_listen, b->api_listen);
  assert_int_equal(a->api_threads, b->api_threads);
  assert_int_equal(a->api_max_connections, b->api_max_connections);
  assert_int_equal(a->api_max_body_bytes, b->api_max_body_bytes);
  assert_int_equal(a->broker_worker_queue_events, b->broker_worker_queue_events);
  assert_int_equal(a->broker_max_topics, b->broker_max_topics);
  assert_string_equal(a->data_dir, b->data_dir);
  assert_string_equal(a->log_level, b->log_level);
}

/* Loads `text` over the defaults; returns the result, err holds the reason. */
static int load(struct gw_config *cfg, const char *text, char err[GW_CONFIG_ERR_MAX])
{
  gw_config_defaults(cfg);
  err[0] = '\0';
  return gw_config_load_text(cfg, text, strlen(text), "test.json", err);
}

/* Asserts that loading fails with an error containing each given piece. */
static void assert_load_fails(const char *text, const char *piece1, const char *piece2)
{
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  int rc = load(&cfg, text, err);
  gw_config_release(&cfg); /* a failed load may have kept arrays */
  if(rc != -1)
    fail_msg("loaded, but should have failed: %s", text);
  if(!err[0])
    fail_msg("no error message for: %s", text);
  if(piece1 && !strstr(err, piece1))
    fail_msg("error for %s is \"%s\": does not mention \"%s\"", text, err, piece1);
  if(piece2 && !strstr(err, piece2))
    fail_msg("error for %s is \"%s\": does not mention \"%s\"", text, err, piece2);
}

/* "topics" and "schemas": kept for the topic rules, shape-checked by the
 * config schema, each error naming the key. */
static void test_topic_rules_keys(void **state)
{
  (void)state;
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  assert_int_equal(load(&cfg,
                        "{\"topics\":[{\"pattern\":\"orders.>\",\"schema\":true}],"
                        "\"schemas\":{\"unmatched_topics\":\"reject\","
                        "\"remote\":[{\"prefix\":\"https://x/\",\"dir\":\"/tmp\"}]}}",
                        err),
                   0);
  assert_int_equal(json_array_size(cfg.topics), 1);
  assert_int_equal(json_array_size(cfg.schemas_remote), 1);
  assert_string_equal(cfg.schemas_unmatched, "reject");
  gw_config_release(&cfg);
  assert_null(cfg.topics);
  assert_null(cfg.schemas_remote);

  /* An empty list is the default (NULL), so the embedded config equals it. */
  assert_int_equal(load(&cfg, "{\"topics\":[]}", err), 0);
  assert_null(cfg.topics);

  assert_load_fails("{\"topics\":{}}", "topics", "array");
  assert_load_fails("{\"topics\":[{\"pattern\":\"a\"}]}", "topics[0]", "schema");
  assert_load_fails("{\"topics\":[{\"pattern\":\"a\",\"schema\":true,\"x\":1}]}", "topics[0].x",
                    NULL);
  assert_load_fails("{\"topics\":[{\"pattern\":\"a\",\"schema\":true},{\"pattern\":5,\"schema\":true}]}",
                    "topics[1].pattern", NULL);
  assert_load_fails("{\"schemas\":{\"unmatched_topics\":\"maybe\"}}", "schemas.unmatched_topics",
                    "accept");
  assert_load_fails("{\"schemas\":{\"remote\":[{\"prefix\":\"x\"}]}}", "schemas.remote[0]", "dir");
  assert_int_equal(gw_config_set(&cfg, "topics", "[]", err), -1);
  assert_non_null(strstr(err, "configuration file"));
}

static void test_defaults(void **state)
{
  (void)state;
  struct gw_config cfg;
  memset(&cfg, 0x5a, sizeof(cfg));
  gw_config_defaults(&cfg);
  assert_string_equal(cfg.client_listen, "127.0.0.1:8080");
  assert_int_equal(cfg.client_workers, 0);
  assert_int_equal(cfg.client_max_connections, 10000);
  assert_int_equal(cfg.client_max_message_bytes, 65536);
  assert_int_equal(cfg.client_max_subscriptions, 100);
  assert_int_equal(cfg.client_send_queue_bytes, 1048576);
  assert_string_equal(cfg.api_listen, "127.0.0.1:8081");
  assert_int_equal(cfg.api_threads, 2);
  assert_int_equal(cfg.api_max_connections, 1024);
  assert_int_equal(cfg.api_max_body_bytes, 65536);
  assert_int_equal(cfg.broker_worker_queue_events, 65536);
  assert_int_equal(cfg.broker_max_topics, 1000000);
  assert_string_equal(cfg.data_dir, "./var");
  assert_string_equal(cfg.log_level, "info");

  char err[GW_CONFIG_ERR_MAX] = "";
  assert_int_equal(gw_config_check(&cfg, err), 0);
}

/* The compiled-in conf/herald.json sets every key, to the table's default. */
static void test_embedded_default(void **state)
{
  (void)state;
  assert_int_equal(strlen(gw_default_config), gw_default_config_len);
  assert_true(gw_default_config_len > 0);

  struct gw_config want, got;
  gw_config_defaults(&want);
  memset(&got, 0, sizeof(got)); /* not the defaults: every key must be set */
  char err[GW_CONFIG_ERR_MAX] = "";
  if(gw_config_load_text(&got, gw_default_config, gw_default_config_len, "embedded", err))
    fail_msg("embedded default does not load: %s", err);
  assert_config_equal(&got, &want);
  assert_memory_equal(&got, &want, sizeof(got));
}

static void test_load_conf_file(void **state)
{
  (void)state;
  const char *path = HERALD_SOURCE_DIR "/conf/herald.json";
  struct gw_config want, got;
  gw_config_defaults(&want);
  memset(&got, 0, sizeof(got));
  char err[GW_CONFIG_ERR_MAX] = "";
  if(gw_config_load_file(&got, path, err))
    fail_msg("%s does not load: %s", path, err);
  assert_config_equal(&got, &want);

  /* and it is exactly what was embedded */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = malloc(gw_default_config_len + 2);
  assert_non_null(buf);
  size_t n = fread(buf, 1, gw_default_config_len + 1, f);
  fclose(f);
  assert_int_equal(n, gw_default_config_len);
  assert_memory_equal(buf, gw_default_config, n);
  free(buf);
}

/* Partial files override only what they name. */
static void test_partial(void **state)
{
  (void)state;
  struct gw_config cfg, def;
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&def);
  assert_int_equal(load(&cfg, "{}", err), 0);
  assert_config_equal(&cfg, &def);

  assert_int_equal(load(&cfg,
                        "{\"client\":{\"workers\":3,\"listen\":\"0.0.0.0:9000\"},"
                        "\"api\":{},\"log_level\":\"debug\",\"data_dir\":\"/srv/herald\"}",
                        err),
                   0);
  assert_int_equal(cfg.client_workers, 3);
  assert_string_equal(cfg.client_listen, "0.0.0.0:9000");
  assert_string_equal(cfg.log_level, "debug");
  assert_string_equal(cfg.data_dir, "/srv/herald");
  assert_int_equal(cfg.client_max_connections, def.client_max_connections);
  assert_string_equal(cfg.api_listen, def.api_listen);
  assert_int_equal(cfg.broker_max_topics, def.broker_max_topics);

  /* the limits themselves are accepted */
  assert_int_equal(load(&cfg,
                        "{\"client\":{\"workers\":256,\"max_message_bytes\":64,"
                        "\"send_queue_bytes\":1073741824},"
                        "\"api\":{\"threads\":1,\"max_body_bytes\":16777216},"
                        "\"broker\":{\"worker_queue_events\":16,\"max_topics\":100000000}}",
                        err),
                   0);
  assert_int_equal(cfg.client_workers, 256);
  assert_int_equal(cfg.client_max_message_bytes, 64);
  assert_int_equal(cfg.client_send_queue_bytes, 1073741824);
  assert_int_equal(cfg.api_threads, 1);
  assert_int_equal(cfg.api_max_body_bytes, 16777216);
  assert_int_equal(cfg.broker_worker_queue_events, 16);
  assert_int_equal(cfg.broker_max_topics, 100000000);

  const char *levels[] = {"debug", "info", "warn", "error"};
  for(size_t i = 0; i < 4; i++) {
    char text[64];
    snprintf(text, sizeof(text), "{\"log_level\":\"%s\"}", levels[i]);
    assert_int_equal(load(&cfg, text, err), 0);
    assert_string_equal(cfg.log_level, levels[i]);
  }

  const char *listens[] = {"127.0.0.1:0", "0.0.0.0:65535", "[::1]:8080", "[::]:1",
                           "localhost:9000"};
  for(size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++) {
    char text[128];
    snprintf(text, sizeof(text), "{\"api\":{\"listen\":\"%s\"}}", listens[i]);
    if(load(&cfg, text, err))
      fail_msg("%s rejected: %s", listens[i], err);
    assert_string_equal(cfg.api_listen, listens[i]);
  }
}

static void test_unknown_keys(void **state)
{
  (void)state;
  assert_load_fails("{\"bogus\":1}", "bogus", "unknown key");
  assert_load_fails("{\"client\":{\"bogus\":1}}", "client.bogus", "unknown key");
  assert_load_fails("{\"api\":{\"listen\":\"127.0.0.1:1\",\"workers\":2}}", "api.workers",
                    "unknown key");
  assert_load_fails("{\"broker\":{\"max_topic\":5}}", "broker.max_topic", "unknown key");
  assert_load_fails("{\"client\":{\"client\":{}}}", "client.client", "unknown key");
  assert_load_fails("{\"Client\":{}}", "Client", "unknown key");
  assert_load_fails("{\"data_dir\":\"x\",\"log\":\"info\"}", "log", "unknown key");
  /* keys are nested objects only: a flat dotted name is not a way round */
  assert_load_fails("{\"client.listen\":\"127.0.0.1:1\"}", "client.listen", "unknown key");
  assert_load_fails("{\"client\":{\"workers\":1},\"client.workers\":2}", "client.workers",
                    "unknown key");
}

static void test_wrong_types(void **state)
{
  (void)state;
  assert_load_fails("{\"client\":{\"workers\":\"4\"}}", "client.workers", "integer");
  assert_load_fails("{\"client\":{\"workers\":4.0}}", "client.workers", "integer");
  assert_load_fails("{\"client\":{\"workers\":4.5}}", "client.workers", "integer");
  assert_load_fails("{\"client\":{\"workers\":true}}", "client.workers", "integer");
  assert_load_fails("{\"client\":{\"workers\":null}}", "client.workers", "integer");
  assert_load_fails("{\"api\":{\"threads\":[2]}}", "api.threads", "integer");
  assert_load_fails("{\"client\":{\"listen\":8080}}", "client.listen", "string");
  assert_load_fails("{\"log_level\":1}", "log_level", "string");
  assert_load_fails("{\"data_dir\":null}", "data_dir", "string");
  assert_load_fails("{\"data_dir\":{\"path\":\"x\"}}", "data_dir", "string");
  assert_load_fails("{\"client\":5}", "client", "object");
  assert_load_fails("{\"broker\":\"fast\"}", "broker", "object");
  assert_load_fails("{\"api\":[]}", "api", "object");
  assert_load_fails("[]", "test.json", "object");
  assert_load_fails("[{\"client\":{}}]", "test.json", "object");
  /* jansson refuses \u0000 unless asked: never a silently cut path */
  assert_load_fails("{\"data_dir\":\"a\\u0000b\"}", NULL, NULL);
}

static void test_out_of_range(void **state)
{
  (void)state;
  static const struct {
    const char *text, *key;
  } cases[] = {
      {"{\"client\":{\"workers\":-1}}", "client.workers"},
      {"{\"client\":{\"workers\":257}}", "client.workers"},
      {"{\"client\":{\"max_connections\":0}}", "client.max_connections"},
      {"{\"client\":{\"max_message_bytes\":63}}", "client.max_message_bytes"},
      {"{\"client\":{\"max_message_bytes\":16777217}}", "client.max_message_bytes"},
      {"{\"client\":{\"max_subscriptions\":0}}", "client.max_subscriptions"},
      {"{\"client\":{\"send_queue_bytes\":4095}}", "client.send_queue_bytes"},
      {"{\"api\":{\"threads\":0}}", "api.threads"},
      {"{\"api\":{\"threads\":65}}", "api.threads"},
      {"{\"api\":{\"max_connections\":100001}}", "api.max_connections"},
      {"{\"api\":{\"max_body_bytes\":1}}", "api.max_body_bytes"},
      {"{\"broker\":{\"worker_queue_events\":15}}", "broker.worker_queue_events"},
      {"{\"broker\":{\"max_topics\":0}}", "broker.max_topics"},
      /* too big for an int: must not wrap round into range */
      {"{\"client\":{\"max_connections\":4294967297}}", "client.max_connections"},
      {"{\"broker\":{\"max_topics\":9223372036854775807}}", "broker.max_topics"},
      {"{\"broker\":{\"max_topics\":-9223372036854775808}}", "broker.max_topics"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_load_fails(cases[i].text, cases[i].key, "out of range");

  /* the message gives the range */
  assert_load_fails("{\"api\":{\"threads\":65}}", "1 to 64", NULL);
}

static void test_bad_strings(void **state)
{
  (void)state;
  const char *bad_listen[] = {
      "",          "8080",          ":8080",          "127.0.0.1",        "127.0.0.1:",
      "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "example.com:80",
      "256.0.0.1:80", "1.2.3:80",    "::1:8080",       "[::1]8080",        "[::1:8080",
      "[127.0.0.1]:80", "[::1]:",    "localhost",      "127.0.0.1:99999999999999999999",
      "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:-0",
  };
  for(size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
    char text[256];
    snprintf(text, sizeof(text), "{\"client\":{\"listen\":\"%s\"}}", bad_listen[i]);
    assert_load_fails(text, "client.listen", NULL);
    snprintf(text, sizeof(text), "{\"api\":{\"listen\":\"%s\"}}", bad_listen[i]);
    assert_load_fails(text, "api.listen", NULL);
  }
  assert_load_fails("{\"client\":{\"listen\":\"127.0.0.1:70000\"}}", "client.listen", "port");

  assert_load_fails("{\"log_level\":\"verbose\"}", "log_level", "debug, info, warn, error");
  assert_load_fails("{\"log_level\":\"INFO\"}", "log_level", NULL);
  assert_load_fails("{\"log_level\":\"\"}", "log_level", NULL);
  assert_load_fails("{\"data_dir\":\"\"}", "data_dir", "empty");

  /* longer than the field: refused, not truncated */
  char text[2200];
  int n = snprintf(text, sizeof(text), "{\"data_dir\":\"");
  memset(text + n, 'd', 1024);
  snprintf(text + n + 1024, sizeof(text) - (size_t)n - 1024, "\"}");
  assert_load_fails(text, "data_dir", "too long");
  n = snprintf(text, sizeof(text), "{\"data_dir\":\"");
  memset(text + n, 'd', 1023);
  snprintf(text + n + 1023, sizeof(text) - (size_t)n - 1023, "\"}");
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  assert_int_equal(load(&cfg, text, err), 0);
  assert_int_equal(strlen(cfg.data_dir), 1023);
}

static void test_syntax_errors(void **state)
{
  (void)state;
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  /* trailing comma on line 4 */
  const char *text = "{\n  \"client\": {\n    \"workers\": 4,\n  }\n}\n";
  assert_int_equal(load(&cfg, text, err), -1);
  if(!strstr(err, "test.json:4:"))
    fail_msg("syntax error does not give file and line 4: %s", err);

  assert_load_fails("", "test.json:", NULL);
  assert_load_fails("{", "test.json:1:", NULL);
  assert_load_fails("{\"client\":{\"workers\":4}", "test.json:1:", NULL);
  assert_load_fails("{\"log_level\":'info'}", "test.json:1:", NULL);
  assert_load_fails("{} {}", "test.json:1:", NULL);
  assert_load_fails("\n\n\n{\"a\" 1}", "test.json:4:", NULL);
  /* a comment is not JSON */
  assert_load_fails("{\n// the port\n\"log_level\":\"info\"}", "test.json:2:", NULL);
}

static void test_duplicate_keys(void **state)
{
  (void)state;
  assert_load_fails("{\"log_level\":\"info\",\"log_level\":\"debug\"}", "duplicate", NULL);
  assert_load_fails("{\"client\":{\"workers\":1,\"workers\":2}}", "duplicate", NULL);
  assert_load_fails("{\"client\":{\"workers\":1},\"client\":{\"workers\":2}}", "duplicate",
                    NULL);
}

static void test_set(void **state)
{
  (void)state;
  struct gw_config cfg, def;
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&def);
  gw_config_defaults(&cfg);

  assert_int_equal(gw_config_set(&cfg, "client.listen", "0.0.0.0:9000", err), 0);
  assert_string_equal(cfg.client_listen, "0.0.0.0:9000");
  assert_int_equal(gw_config_set(&cfg, "api.listen", "[::1]:9001", err), 0);
  assert_string_equal(cfg.api_listen, "[::1]:9001");
  assert_int_equal(gw_config_set(&cfg, "data_dir", "/tmp/h", err), 0);
  assert_string_equal(cfg.data_dir, "/tmp/h");
  assert_int_equal(gw_config_set(&cfg, "client.workers", "8", err), 0);
  assert_int_equal(cfg.client_workers, 8);
  assert_int_equal(gw_config_set(&cfg, "broker.max_topics", "100000000", err), 0);
  assert_int_equal(cfg.broker_max_topics, 100000000);
  assert_int_equal(gw_config_set(&cfg, "log_level", "warn", err), 0);
  assert_string_equal(cfg.log_level, "warn");

  /* refusals name the key and leave the value alone */
  static const struct {
    const char *key, *value, *piece;
  } bad[] = {
      {"client.workers", "", "not an integer"},
      {"client.workers", "4x", "not an integer"},
      {"client.workers", "four", "not an integer"},
      {"client.workers", "4.0", "not an integer"},
      {"client.workers", "99999999999999999999", "not an integer"},
      {"client.workers", "257", "out of range"},
      {"client.workers", "-1", "out of range"},
      {"client.workers", "4294967304", "out of range"}, /* 2^32 + 8 */
      {"client.listen", "nope", "client.listen"},
      {"api.listen", "1.2.3.4:65536", "port"},
      {"log_level", "loud", "log_level"},
      {"data_dir", "", "empty"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct gw_config before = cfg;
    err[0] = '\0';
    if(gw_config_set(&cfg, bad[i].key, bad[i].value, err) != -1)
      fail_msg("%s=%s accepted", bad[i].key, bad[i].value);
    if(!strstr(err, bad[i].key) || !strstr(err, bad[i].piece))
      fail_msg("%s=%s: error \"%s\" lacks the key or \"%s\"", bad[i].key, bad[i].value, err,
               bad[i].piece);
    assert_memory_equal(&before, &cfg, sizeof(cfg));
  }

  /* only full key names, not sections or unknown keys */
  const char *unknown[] = {"client", "bogus", "client.bogus", "workers", ""};
  for(size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    err[0] = '\0';
    assert_int_equal(gw_config_set(&cfg, unknown[i], "1", err), -1);
    assert_non_null(strstr(err, "unknown key"));
  }
  assert_int_equal(cfg.client_workers, 8);

  /* a command-line override wins over the file loaded before it */
  assert_int_equal(load(&cfg, "{\"client\":{\"listen\":\"127.0.0.1:7000\"}}", err), 0);
  assert_int_equal(gw_config_set(&cfg, "client.listen", "127.0.0.1:7001", err), 0);
  assert_string_equal(cfg.client_listen, "127.0.0.1:7001");
  assert_string_equal(cfg.api_listen, def.api_listen);
}

static void test_check(void **state)
{
  (void)state;
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&cfg);
  assert_int_equal(gw_config_check(&cfg, err), 0);

  /* the two ports cannot share an address... */
  strcpy(cfg.api_listen, cfg.client_listen);
  err[0] = '\0';
  assert_int_equal(gw_config_check(&cfg, err), -1);
  assert_non_null(strstr(err, "api.listen"));
  assert_non_null(strstr(err, "127.0.0.1:8080"));

  /* ...unless both pick any free port */
  strcpy(cfg.client_listen, "127.0.0.1:0");
  strcpy(cfg.api_listen, "127.0.0.1:0");
  assert_int_equal(gw_config_check(&cfg, err), 0);
  strcpy(cfg.client_listen, "[::1]:0");
  strcpy(cfg.api_listen, "[::1]:0");
  assert_int_equal(gw_config_check(&cfg, err), 0);
  strcpy(cfg.client_listen, "127.0.0.1:10");
  strcpy(cfg.api_listen, "127.0.0.1:10");
  assert_int_equal(gw_config_check(&cfg, err), -1);
  strcpy(cfg.api_listen, "127.0.0.2:10"); /* another address, same port */
  assert_int_equal(gw_config_check(&cfg, err), 0);
  strcpy(cfg.api_listen, "localhost:10"); /* the same address spelt differently */
  assert_int_equal(gw_config_check(&cfg, err), -1);
  strcpy(cfg.client_listen, "[::1]:10");
  strcpy(cfg.api_listen, "[0:0::1]:10");
  assert_int_equal(gw_config_check(&cfg, err), -1);

  /* a worker queue must hold the largest event */
  gw_config_defaults(&cfg);
  cfg.broker_worker_queue_bytes = 1048576;
  cfg.api_max_body_bytes = 1048576;
  err[0] = '\0';
  assert_int_equal(gw_config_check(&cfg, err), -1);
  assert_non_null(strstr(err, "broker.worker_queue_bytes"));
  cfg.api_max_body_bytes = 1048576 - 4096;
  assert_int_equal(gw_config_check(&cfg, err), 0);
  cfg.client_max_message_bytes = 1048576 - 4095;
  cfg.client_send_queue_bytes = 1048576;
  assert_int_equal(gw_config_check(&cfg, err), -1);

  /* a send queue must hold at least one message */
  gw_config_defaults(&cfg);
  cfg.client_max_message_bytes = 65536;
  cfg.client_send_queue_bytes = 65535;
  err[0] = '\0';
  assert_int_equal(gw_config_check(&cfg, err), -1);
  assert_non_null(strstr(err, "client.send_queue_bytes"));
  assert_non_null(strstr(err, "65536"));
  cfg.client_send_queue_bytes = 65536;
  assert_int_equal(gw_config_check(&cfg, err), 0);

  /* the same through a file: each key valid alone, the pair is not */
  assert_int_equal(load(&cfg,
                        "{\"client\":{\"max_message_bytes\":1048576,"
                        "\"send_queue_bytes\":65536}}",
                        err),
                   0);
  assert_int_equal(gw_config_check(&cfg, err), -1);
}

static void test_resolve(void **state)
{
  (void)state;
  struct gw_config cfg;
  gw_config_defaults(&cfg);
  gw_config_resolve(&cfg);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  assert_true(cfg.client_workers >= 1 && cfg.client_workers <= 256);
  if(cores >= 1 && cores <= 256)
    assert_int_equal(cfg.client_workers, cores);
  cfg.client_workers = 5;
  gw_config_resolve(&cfg);
  assert_int_equal(cfg.client_workers, 5);
}

static void write_file(const char *path, const char *text, size_t len)
{
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
  (void)state;
  struct gw_config cfg;
  char err[GW_CONFIG_ERR_MAX];
  gw_config_defaults(&cfg);

  const char *missing = "/nonexistent/herald-test/herald.json";
  err[0] = '\0';
  assert_int_equal(gw_config_load_file(&cfg, missing, err), -1);
  assert_non_null(strstr(err, missing));
  assert_non_null(strstr(err, "cannot open"));
  assert_non_null(strstr(err, "No such file"));

  char dir[] = "/tmp/herald-config-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof(path), "%s/herald.json", dir);

  /* a real file, bigger than one read */
  char *text = malloc(20000);
  assert_non_null(text);
  int n = snprintf(text, 20000, "{\"client\":{\"workers\":7},\n\"log_level\":\"error\"");
  memset(text + n, ' ', 15000);
  strcpy(text + n + 15000, "\n}\n");
  write_file(path, text, strlen(text));
  gw_config_defaults(&cfg);
  if(gw_config_load_file(&cfg, path, err))
    fail_msg("%s", err);
  assert_int_equal(cfg.client_workers, 7);
  assert_string_equal(cfg.log_level, "error");

  /* errors carry the path as origin */
  const char *t1 = "{\n\"client\": {\"workers\": 300}\n}\n";
  write_file(path, t1, strlen(t1));
  err[0] = '\0';
  assert_int_equal(gw_config_load_file(&cfg, path, err), -1);
  assert_non_null(strstr(err, "client.workers"));
  const char *t2 = "{\n\"client\": {\"workers\": 3,}\n}\n";
  write_file(path, t2, strlen(t2));
  err[0] = '\0';
  assert_int_equal(gw_config_load_file(&cfg, path, err), -1);
  char where[160];
  snprintf(where, sizeof(where), "%s:2:", path);
  if(!strstr(err, where))
    fail_msg("error \"%s\" does not start with %s", err, where);

  /* an empty file is not a configuration */
  write_file(path, "", 0);
  assert_int_equal(gw_config_load_file(&cfg, path, err), -1);

  /* more than 1 MiB is refused without reading it all */
  size_t big = (1u << 20) + 10;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, ' ', big);
  huge[0] = '{';
  huge[big - 1] = '}';
  write_file(path, huge, big);
  err[0] = '\0';
  assert_int_equal(gw_config_load_file(&cfg, path, err), -1);
  assert_non_null(strstr(err, "1 MiB"));
  free(huge);

  /* a directory is not a file */
  err[0] = '\0';
  assert_int_equal(gw_config_load_file(&cfg, dir, err), -1);
  assert_non_null(strstr(err, dir));

  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
  free(text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_topic_rules_keys),
      cmocka_unit_test(test_embedded_default),
      cmocka_unit_test(test_load_conf_file),
      cmocka_unit_test(test_partial),
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_bad_strings),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_set),
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
