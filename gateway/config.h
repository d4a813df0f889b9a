#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stddef.h>

#include <jansson.h>

/* Herald's configuration. Every key is one row of the table in config.c
 * (name, type, default, range, field) and is documented in docs/config.md.
 * Loading validates everything and names the offending key. */

struct gw_config {
  char client_listen[128];
  int client_workers; /* 0 = one per core; resolved by gw_config_resolve */
  int client_max_connections;
  int client_max_message_bytes;
  int client_max_subscriptions;
  int client_send_queue_bytes;
  int client_max_connections_per_ip; /* 0: no per-address limit */
  int client_handshake_timeout_s;
  int client_ping_interval_s; /* 0: no pings */
  int client_idle_timeout_s;  /* 0: never closed for silence */
  int client_rate_per_s;      /* messages a connection may send, 0: no limit */
  int client_rate_burst;
  int client_rate_close_after; /* refused messages in a row before the close */
  json_t *client_allowed_origins; /* NULL: same origin only */
  char client_tls_cert[1024];
  char client_tls_key[1024];
  char api_listen[128];
  int api_threads;
  int api_max_connections;
  int api_max_body_bytes;
  int api_rate_per_s; /* publishes per API key, 0: no limit */
  int api_rate_burst;
  char api_tls_cert[1024];
  char api_tls_key[1024];
  json_t *auth_api_keys;            /* [{"name","sha256","publish","admin"}], NULL: none */
  json_t *auth_jwt_keys;            /* JWKs, each with its alg, NULL: none */
  char auth_jwks_file[1024];
  char auth_issuer[256];
  char auth_audience[256];
  int auth_leeway_s;
  int auth_timeout_ms;
  json_t *auth_anonymous_subscribe; /* NULL (null): everything while no JWT key is set */
  json_t *auth_anonymous_publish;
  int auth_insecure; /* listen beyond loopback without authentication */
  int broker_worker_queue_events;
  int broker_worker_queue_bytes;
  int broker_max_topics;
  int history_enabled;     /* offsets, cursors, resume */
  int history_durable;     /* the log in <data_dir>/history.db */
  int history_max_events;  /* 0: no bound */
  int history_max_bytes;   /* 0: no bound */
  int history_max_age_s;   /* 0: no bound */
  int history_max_replay;  /* events one resume replays at most */
  int history_max_pending; /* accepted events not yet delivered before publishes fail */
  int sse_heartbeat_s;
  int sse_retry_ms;
  char data_dir[1024];
  char log_level[16];
  json_t *topics;                /* "topics": [{"pattern","schema"}], NULL when absent */
  char schemas_unmatched[8];     /* "accept" or "reject": topics no rule matches */
  json_t *schemas_remote;        /* "schemas.remote": [{"prefix","dir"}], NULL when absent */
  json_t *webhooks_endpoints;    /* "webhooks.endpoints": declared endpoints, NULL when absent */
  json_t *webhooks_schedule;     /* retry delays in seconds, NULL: the default schedule */
  json_t *webhooks_allowed_cidrs; /* target ranges let through the guard, NULL when absent */
  int webhooks_jitter_percent;
  int webhooks_connect_timeout_ms;
  int webhooks_request_timeout_ms;
  int webhooks_max_in_flight;
  int webhooks_max_in_flight_per_endpoint;
  int webhooks_disable_after_s;
  int webhooks_secret_rotation_s;
  int webhooks_retention_s;
  int webhooks_idempotency_ttl_s;
  int webhooks_store_max_mb;
  int webhooks_commit_queue_max;
};

#define GW_CONFIG_ERR_MAX 512

/* Writes a configuration error message to err; returns -1. */
int gw_config_error(char err[GW_CONFIG_ERR_MAX], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills cfg with the defaults of the table (release it with gw_config_release). */
void gw_config_defaults(struct gw_config *cfg);

/* Loads JSON text over the defaults. Returns 0, or -1 with a message naming
 * the key (or the JSON syntax error's line) in err. */
int gw_config_load_text(struct gw_config *cfg, const char *text, size_t len, const char *origin,
                        char err[GW_CONFIG_ERR_MAX]);

/* Reads and loads a file. Returns 0, or -1 with the reason in err. */
int gw_config_load_file(struct gw_config *cfg, const char *path, char err[GW_CONFIG_ERR_MAX]);

/* Sets one key from a string (for command-line overrides), with the same
 * validation as the file. Returns 0, or -1 with the reason in err. */
int gw_config_set(struct gw_config *cfg, const char *key, const char *value,
                  char err[GW_CONFIG_ERR_MAX]);

/* Checks the values that depend on each other. Returns 0 or -1 with err. */
int gw_config_check(const struct gw_config *cfg, char err[GW_CONFIG_ERR_MAX]);

/* Frees what the loaded configuration holds (the JSON arrays). */
void gw_config_release(struct gw_config *cfg);

/* Replaces automatic values (workers = 0) with what this machine has. */
void gw_config_resolve(struct gw_config *cfg);

/* The embedded default configuration (conf/herald.json at build time). */
extern const char gw_default_config[];
extern const size_t gw_default_config_len;

#endif
