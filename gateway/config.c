#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "guard.h"
#include "schema.h"
#include "topic.h"
#include "util/json_text.h"

/* schemas/herald/config.json, embedded at build time. */
extern const char gw_config_schema[];
extern const size_t gw_config_schema_len;

enum key_type { K_INT, K_STRING, K_ARRAY, K_BOOL };

/* Extra validation for a string key: returns NULL when fine, else why not. */
typedef const char *(*str_check_fn)(const char *value);

struct key {
  const char *name;
  enum key_type type;
  long long def, min, max; /* K_INT */
  const char *sdef;        /* K_STRING */
  str_check_fn check;      /* K_STRING, may be NULL */
  size_t off, size;
};

static const char *check_listen(const char *v)
{
  struct sockaddr_storage ss;
  socklen_t len;
  const char *why = NULL;
  return gw_parse_listen(v, &ss, &len, &why) ? why : NULL;
}

static const char *check_level(const char *v)
{
  enum util_log_level l;
  return gw_log_parse_level(v, &l) ? "must be one of debug, info, warn, error" : NULL;
}

static const char *check_unmatched(const char *v)
{
  return strcmp(v, "accept") == 0 || strcmp(v, "reject") == 0 ? NULL
                                                               : "must be \"accept\" or \"reject\"";
}

static const char *check_nonempty(const char *v)
{
  return *v ? NULL : "must not be empty";
}

#define INT_KEY(n, field, d, lo, hi) \
  {n, K_INT, d, lo, hi, NULL, NULL, offsetof(struct gw_config, field), sizeof(int)}
#define STR_KEY(n, field, d, chk)                                 \
  {n, K_STRING, 0, 0, 0, d, chk, offsetof(struct gw_config, field), \
   sizeof(((struct gw_config *)0)->field)}
/* A JSON array kept as is (its shape is checked by the config schema, its
 * contents by its user; "topics" patterns here, for the clearer message). */
#define ARRAY_KEY(n, field) \
  {n, K_ARRAY, 0, 0, 0, "[]", NULL, offsetof(struct gw_config, field), sizeof(json_t *)}
/* An array key whose default (JSON text) is not []; the field stays NULL
 * while the value equals the default, and the user of the field knows it. */
#define ARRAY_KEY_DEF(n, field, d) \
  {n, K_ARRAY, 0, 0, 0, d, NULL, offsetof(struct gw_config, field), sizeof(json_t *)}

/* A true/false key, kept as an int. */
#define BOOL_KEY(n, field, d) \
  {n, K_BOOL, d, 0, 1, NULL, NULL, offsetof(struct gw_config, field), sizeof(int)}
/* An array key that may also be null (its default): "not set", which its
 * user reads as NULL. */
#define NULLABLE_ARRAY_KEY(n, field) ARRAY_KEY_DEF(n, field, "null")

/* Checks the elements of webhooks.schedule and webhooks.allowed_cidrs.
 * Returns 0 or -1 with err. */
static int check_webhook_array(const char *name, json_t *v, char err[GW_CONFIG_ERR_MAX]);

/* Checks the pattern of every "topics" rule. Returns 0 or -1 with err. */
static int check_topic_patterns(json_t *topics, char err[GW_CONFIG_ERR_MAX]);

static const struct key keys[] = {
    STR_KEY("client.listen", client_listen, "127.0.0.1:8080", check_listen),
    INT_KEY("client.workers", client_workers, 0, 0, 256),
    INT_KEY("client.max_connections", client_max_connections, 10000, 1, 1000000),
    INT_KEY("client.max_message_bytes", client_max_message_bytes, 65536, 64, 16777216),
    INT_KEY("client.max_subscriptions", client_max_subscriptions, 100, 1, 100000),
    INT_KEY("client.send_queue_bytes", client_send_queue_bytes, 1048576, 4096, 1073741824),
    INT_KEY("client.max_connections_per_ip", client_max_connections_per_ip, 1000, 0, 1000000),
    INT_KEY("client.handshake_timeout_s", client_handshake_timeout_s, 10, 1, 300),
    INT_KEY("client.ping_interval_s", client_ping_interval_s, 30, 0, 3600),
    INT_KEY("client.idle_timeout_s", client_idle_timeout_s, 75, 0, 86400),
    INT_KEY("client.rate_per_s", client_rate_per_s, 100, 0, 10000000),
    INT_KEY("client.rate_burst", client_rate_burst, 200, 1, 10000000),
    INT_KEY("client.rate_close_after", client_rate_close_after, 100, 1, 10000000),
    ARRAY_KEY("client.allowed_origins", client_allowed_origins),
    STR_KEY("client.tls_cert", client_tls_cert, "", NULL),
    STR_KEY("client.tls_key", client_tls_key, "", NULL),
    STR_KEY("api.listen", api_listen, "127.0.0.1:8081", check_listen),
    INT_KEY("api.threads", api_threads, 2, 1, 64),
    INT_KEY("api.max_connections", api_max_connections, 1024, 1, 100000),
    INT_KEY("api.max_body_bytes", api_max_body_bytes, 65536, 64, 16777216),
    INT_KEY("api.rate_per_s", api_rate_per_s, 1000, 0, 10000000),
    INT_KEY("api.rate_burst", api_rate_burst, 2000, 1, 10000000),
    STR_KEY("api.tls_cert", api_tls_cert, "", NULL),
    STR_KEY("api.tls_key", api_tls_key, "", NULL),
    ARRAY_KEY("auth.api_keys", auth_api_keys),
    ARRAY_KEY("auth.jwt_keys", auth_jwt_keys),
    STR_KEY("auth.jwks_file", auth_jwks_file, "", NULL),
    STR_KEY("auth.issuer", auth_issuer, "", NULL),
    STR_KEY("auth.audience", auth_audience, "", NULL),
    INT_KEY("auth.leeway_s", auth_leeway_s, 30, 0, 600),
    INT_KEY("auth.timeout_ms", auth_timeout_ms, 5000, 100, 600000),
    NULLABLE_ARRAY_KEY("auth.anonymous_subscribe", auth_anonymous_subscribe),
    NULLABLE_ARRAY_KEY("auth.anonymous_publish", auth_anonymous_publish),
    BOOL_KEY("auth.insecure", auth_insecure, 0),
    INT_KEY("broker.worker_queue_events", broker_worker_queue_events, 65536, 16, 10000000),
    INT_KEY("broker.worker_queue_bytes", broker_worker_queue_bytes, 67108864, 1048576,
            1073741824),
    INT_KEY("broker.max_topics", broker_max_topics, 1000000, 1, 100000000),
    BOOL_KEY("history.enabled", history_enabled, 1),
    BOOL_KEY("history.durable", history_durable, 1),
    INT_KEY("history.max_events", history_max_events, 100000, 0, 100000000),
    INT_KEY("history.max_bytes", history_max_bytes, 67108864, 0, 2147483647),
    INT_KEY("history.max_age_s", history_max_age_s, 3600, 0, 31536000),
    INT_KEY("history.max_replay", history_max_replay, 10000, 1, 1000000),
    INT_KEY("history.max_pending", history_max_pending, 65536, 16, 10000000),
    INT_KEY("sse.heartbeat_s", sse_heartbeat_s, 15, 1, 3600),
    INT_KEY("sse.retry_ms", sse_retry_ms, 2000, 100, 600000),
    STR_KEY("data_dir", data_dir, "./var", check_nonempty),
    STR_KEY("log_level", log_level, "info", check_level),
    ARRAY_KEY("topics", topics),
    STR_KEY("schemas.unmatched_topics", schemas_unmatched, "accept", check_unmatched),
    ARRAY_KEY("schemas.remote", schemas_remote),
    ARRAY_KEY("webhooks.endpoints", webhooks_endpoints),
    ARRAY_KEY_DEF("webhooks.schedule", webhooks_schedule, "[0,5,300,1800,7200,18000,36000,36000]"),
    ARRAY_KEY("webhooks.allowed_cidrs", webhooks_allowed_cidrs),
    INT_KEY("webhooks.jitter_percent", webhooks_jitter_percent, 20, 0, 100),
    INT_KEY("webhooks.connect_timeout_ms", webhooks_connect_timeout_ms, 5000, 100, 600000),
    INT_KEY("webhooks.request_timeout_ms", webhooks_request_timeout_ms, 15000, 100, 600000),
    INT_KEY("webhooks.max_in_flight", webhooks_max_in_flight, 256, 1, 10000),
    INT_KEY("webhooks.max_in_flight_per_endpoint", webhooks_max_in_flight_per_endpoint, 4, 1,
            1000),
    INT_KEY("webhooks.disable_after_s", webhooks_disable_after_s, 432000, 1, 31536000),
    INT_KEY("webhooks.secret_rotation_s", webhooks_secret_rotation_s, 86400, 0, 31536000),
    INT_KEY("webhooks.retention_s", webhooks_retention_s, 604800, 1, 31536000),
    INT_KEY("webhooks.idempotency_ttl_s", webhooks_idempotency_ttl_s, 86400, 1, 31536000),
    INT_KEY("webhooks.store_max_mb", webhooks_store_max_mb, 0, 0, 16777216),
    INT_KEY("webhooks.commit_queue_max", webhooks_commit_queue_max, 65536, 1, 10000000),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct key *find_key(const char *name)
{
  for(size_t i = 0; i < NKEYS; i++)
    if(strcmp(keys[i].name, name) == 0)
      return &keys[i];
  return NULL;
}

/* True when some key lives in the section `name` (e.g. "client"). */
static int is_section(const char *name)
{
  size_t n = strlen(name);
  for(size_t i = 0; i < NKEYS; i++)
    if(strncmp(keys[i].name, name, n) == 0 && keys[i].name[n] == '.')
      return 1;
  return 0;
}

int gw_config_error(char err[GW_CONFIG_ERR_MAX], const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, GW_CONFIG_ERR_MAX, fmt, ap);
  va_end(ap);
  return -1;
}
#define fail gw_config_error

void gw_config_defaults(struct gw_config *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  for(size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];
    char *field = (char *)cfg + k->off;
    if(k->type == K_INT || k->type == K_BOOL)
      *(int *)field = (int)k->def;
    else if(k->type == K_STRING)
      snprintf(field, k->size, "%s", k->sdef);
  }
}

static int set_string(struct gw_config *cfg, const struct key *k, const char *v,
                      char err[GW_CONFIG_ERR_MAX])
{
  if(strlen(v) >= k->size)
    return fail(err, "%s: value is too long (at most %zu bytes)", k->name, k->size - 1);
  const char *why = k->check ? k->check(v) : NULL;
  if(why)
    return fail(err, "%s: \"%s\": %s", k->name, v, why);
  snprintf((char *)cfg + k->off, k->size, "%s", v);
  return 0;
}

static int set_int(struct gw_config *cfg, const struct key *k, long long v,
                   char err[GW_CONFIG_ERR_MAX])
{
  if(v < k->min || v > k->max)
    return fail(err, "%s: %lld is out of range (%lld to %lld)", k->name, v, k->min, k->max);
  *(int *)((char *)cfg + k->off) = (int)v;
  return 0;
}

static int set_json(struct gw_config *cfg, const struct key *k, json_t *v,
                    char err[GW_CONFIG_ERR_MAX])
{
  if(k->type == K_INT) {
    if(!json_is_integer(v))
      return fail(err, "%s: expected an integer from %lld to %lld", k->name, k->min, k->max);
    return set_int(cfg, k, json_integer_value(v), err);
  }
  if(k->type == K_BOOL) {
    if(!json_is_boolean(v))
      return fail(err, "%s: expected true or false", k->name);
    *(int *)((char *)cfg + k->off) = json_is_true(v);
    return 0;
  }
  if(k->type == K_ARRAY && json_is_null(v) && strcmp(k->sdef, "null") == 0) {
    json_t **slot = (json_t **)((char *)cfg + k->off);
    json_decref(*slot);
    *slot = NULL;
    return 0;
  }
  if(k->type == K_ARRAY) {
    if(!json_is_array(v))
      return fail(err, "%s: expected an array", k->name);
    if(strcmp(k->name, "topics") == 0 && check_topic_patterns(v, err))
      return -1;
    if(check_webhook_array(k->name, v, err))
      return -1;
    json_t **slot = (json_t **)((char *)cfg + k->off);
    json_t *def = json_loads(k->sdef, 0, NULL);
    bool is_default = def && json_equal(v, def);
    json_decref(def);
    json_decref(*slot);
    *slot = is_default ? NULL : json_incref(v);
    return 0;
  }
  if(!json_is_string(v))
    return fail(err, "%s: expected a string", k->name);
  return set_string(cfg, k, json_string_value(v), err);
}

static int check_webhook_array(const char *name, json_t *v, char err[GW_CONFIG_ERR_MAX])
{
  size_t i;
  json_t *e;
  if(strcmp(name, "webhooks.schedule") == 0) {
    if(json_array_size(v) < 1 || json_array_size(v) > 32)
      return fail(err, "%s: 1 to 32 delays in seconds", name);
    json_array_foreach(v, i, e) {
      if(!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 31536000)
        return fail(err, "%s[%zu]: a delay in seconds from 0 to 31536000", name, i);
    }
  }
  else if(strcmp(name, "webhooks.allowed_cidrs") == 0) {
    json_array_foreach(v, i, e) {
      struct hook_cidr c;
      const char *why = "expected a string";
      if(!json_is_string(e) || hook_cidr_parse(json_string_value(e), &c, &why))
        return fail(err, "%s[%zu]: %s (e.g. \"127.0.0.0/8\")", name, i, why);
    }
    if(json_array_size(v) > 64)
      return fail(err, "%s: at most 64 ranges", name);
  }
  return 0;
}

static int check_topic_patterns(json_t *topics, char err[GW_CONFIG_ERR_MAX])
{
  size_t i;
  json_t *rule;
  json_array_foreach(topics, i, rule)
  {
    const char *pattern = json_string_value(json_object_get(rule, "pattern"));
    const char *why = NULL;
    if(pattern && !sub_pattern_valid(pattern, strlen(pattern), &why))
      return fail(err, "topics[%zu].pattern: \"%.300s\": %s", i, pattern, why);
  }
  return 0;
}

static int load_object(struct gw_config *cfg, json_t *obj, const char *section,
                       char err[GW_CONFIG_ERR_MAX])
{
  const char *name;
  json_t *v;
  json_object_foreach(obj, name, v)
  {
    char full[256];
    snprintf(full, sizeof(full), "%s%s%s", section ? section : "", section ? "." : "", name);
    if(!section && is_section(name)) {
      if(!json_is_object(v))
        return fail(err, "%s: expected an object", full);
      if(load_object(cfg, v, name, err))
        return -1;
      continue;
    }
    const struct key *k = strchr(name, '.') ? NULL : find_key(full); /* nested only */
    if(!k)
      return fail(err, "%s: unknown key (see docs/config.md for the keys Herald knows)", full);
    if(set_json(cfg, k, v, err))
      return -1;
  }
  return 0;
}

/* Writes the config key an instance path names: "/topics/0/pattern" ->
 * "topics[0].pattern"; the root is "(top level)". */
static void key_of_path(const char *path, char *out, size_t outlen)
{
  size_t o = 0;
  if(!*path) {
    snprintf(out, outlen, "(top level)");
    return;
  }
  while(*path == '/') {
    path++;
    int len = (int)strcspn(path, "/");
    bool index = len > 0 && strspn(path, "0123456789") == (size_t)len;
    int n = index ? snprintf(out + o, outlen - o, "[%.*s]", len, path)
                  : snprintf(out + o, outlen - o, "%s%.*s", o ? "." : "", len, path);
    if(n < 0 || (size_t)n >= outlen - o)
      break;
    o += (size_t)n;
    path += len;
  }
  /* JSON Pointer escapes: ~1 is '/', ~0 is '~'. */
  char *w = out;
  for(const char *r = out; *r; r++) {
    if(r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
      *w++ = r[1] == '0' ? '~' : '/';
      r++;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

/* Checks root against Herald's config schema; the error names the key. */
static int check_schema(json_t *root, const char *origin, char err[GW_CONFIG_ERR_MAX])
{
  json_error_t jerr;
  char msg[256];
  json_t *doc = json_loadb(gw_config_schema, gw_config_schema_len, 0, &jerr);
  struct schema *s = doc ? schema_compile(doc, NULL, msg, sizeof(msg)) : NULL;
  json_decref(doc);
  if(!s)
    return fail(err, "%s: the built-in config schema does not load (%s)", origin,
                doc ? msg : jerr.text);
  struct schema_result res;
  int rc = 0;
  if(!schema_validate(s, root, &res)) {
    char key[SCHEMA_PATH_MAX];
    key_of_path(res.errors[0].instance_path, key, sizeof(key));
    rc = fail(err, "%s: %s (see docs/config.md)", key, res.errors[0].message);
  }
  schema_free(s);
  return rc;
}

int gw_config_load_text(struct gw_config *cfg, const char *text, size_t len, const char *origin,
                        char err[GW_CONFIG_ERR_MAX])
{
  json_error_t jerr;
  json_t *root = util_json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if(!root)
    return fail(err, "%s:%d:%d: %s", origin, jerr.line, jerr.column, jerr.text);
  int rc = -1;
  if(!json_is_object(root))
    fail(err, "%s: the configuration must be a JSON object", origin);
  else if(load_object(cfg, root, NULL, err) == 0)
    /* The table's messages are the more specific, so it goes first; the
     * schema then checks what the table cannot (the topics rules' shape). */
    rc = check_schema(root, origin, err);
  json_decref(root);
  return rc;
}

int gw_config_load_file(struct gw_config *cfg, const char *path, char err[GW_CONFIG_ERR_MAX])
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return fail(err, "%s: cannot open: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = -1;
  for(;;) {
    if(len == cap) {
      if(cap >= 1 << 20) {
        fail(err, "%s: larger than 1 MiB, not a Herald configuration", path);
        goto out;
      }
      cap = cap ? cap * 2 : 4096;
      char *nb = realloc(buf, cap);
      if(!nb) {
        fail(err, "%s: out of memory", path);
        goto out;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if(n == 0)
      break;
  }
  if(ferror(f)) {
    fail(err, "%s: read error: %s", path, strerror(errno));
    goto out;
  }
  rc = gw_config_load_text(cfg, buf, len, path, err);
out:
  free(buf);
  fclose(f);
  return rc;
}

int gw_config_set(struct gw_config *cfg, const char *key, const char *value,
                  char err[GW_CONFIG_ERR_MAX])
{
  const struct key *k = find_key(key);
  if(!k)
    return fail(err, "%s: unknown key", key);
  if(k->type == K_STRING)
    return set_string(cfg, k, value, err);
  if(k->type == K_ARRAY)
    return fail(err, "%s: can only be set in the configuration file", key);
  if(k->type == K_BOOL) {
    if(strcmp(value, "true") && strcmp(value, "false"))
      return fail(err, "%s: \"%s\" is not true or false", key, value);
    *(int *)((char *)cfg + k->off) = value[0] == 't';
    return 0;
  }
  char *end;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if(!*value || *end || errno)
    return fail(err, "%s: \"%s\" is not an integer", key, value);
  return set_int(cfg, k, v, err);
}

int gw_config_check(const struct gw_config *cfg, char err[GW_CONFIG_ERR_MAX])
{
  struct sockaddr_storage a, b;
  socklen_t alen, blen;
  const char *why;
  if(gw_parse_listen(cfg->client_listen, &a, &alen, &why) == 0 &&
     gw_parse_listen(cfg->api_listen, &b, &blen, &why) == 0 && alen == blen &&
     memcmp(&a, &b, alen) == 0 && ((struct sockaddr_in *)&a)->sin_port != 0)
    return fail(err, "api.listen: must differ from client.listen (%s)", cfg->client_listen);
  if(cfg->client_send_queue_bytes < cfg->client_max_message_bytes)
    return fail(err, "client.send_queue_bytes: must be at least client.max_message_bytes (%d)",
                cfg->client_max_message_bytes);
  int biggest = cfg->api_max_body_bytes > cfg->client_max_message_bytes
                    ? cfg->api_max_body_bytes
                    : cfg->client_max_message_bytes;
  if(cfg->broker_worker_queue_bytes < biggest + 4096)
    return fail(err,
                "broker.worker_queue_bytes: must exceed the largest event (api.max_body_bytes "
                "and client.max_message_bytes) by 4096, so at least %d",
                biggest + 4096);
  if(!cfg->client_tls_cert[0] != !cfg->client_tls_key[0])
    return fail(err, "client.tls_cert: needs client.tls_key with it (both or neither)");
  if(!cfg->api_tls_cert[0] != !cfg->api_tls_key[0])
    return fail(err, "api.tls_cert: needs api.tls_key with it (both or neither)");
  if(cfg->client_ping_interval_s && cfg->client_idle_timeout_s &&
     cfg->client_idle_timeout_s <= cfg->client_ping_interval_s)
    return fail(err, "client.idle_timeout_s: must exceed client.ping_interval_s (%d), so a "
                     "client has time to answer the ping",
                cfg->client_ping_interval_s);
  /* Unauthenticated ports stay on loopback unless the file says otherwise. */
  bool api_open = !cfg->auth_api_keys || json_array_size(cfg->auth_api_keys) == 0;
  if(api_open && !cfg->auth_insecure && !gw_listen_is_loopback(cfg->api_listen))
    return fail(err,
                "api.listen: %s is not a loopback address and auth.api_keys is empty: anyone "
                "could publish and manage webhooks. Add API keys, or set \"auth\": "
                "{\"insecure\": true} to run it open anyway",
                cfg->api_listen);
  bool jwt = (cfg->auth_jwt_keys && json_array_size(cfg->auth_jwt_keys)) || cfg->auth_jwks_file[0];
  bool client_open =
      !jwt && (!cfg->auth_anonymous_subscribe || !cfg->auth_anonymous_publish);
  if(client_open && !cfg->auth_insecure && !gw_listen_is_loopback(cfg->client_listen))
    return fail(err,
                "client.listen: %s is not a loopback address and no JWT keys are set "
                "(auth.jwt_keys, auth.jwks_file): every client could subscribe and publish "
                "to every topic. Add JWT keys, set auth.anonymous_subscribe and "
                "auth.anonymous_publish to what anyone may do, or set \"auth\": "
                "{\"insecure\": true}",
                cfg->client_listen);
  return 0;
}

void gw_config_release(struct gw_config *cfg)
{
  for(size_t i = 0; i < NKEYS; i++) {
    if(keys[i].type != K_ARRAY)
      continue;
    json_t **slot = (json_t **)((char *)cfg + keys[i].off);
    json_decref(*slot);
    *slot = NULL;
  }
}

void gw_config_resolve(struct gw_config *cfg)
{
  if(cfg->client_workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->client_workers = n < 1 ? 1 : n > 256 ? 256 : (int)n;
  }
}
