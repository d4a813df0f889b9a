/*
 * config_fuzz.c - libFuzzer harness for the configuration loader (gateway/config.h).
 *
 * An input is a configuration text, loaded over the defaults as heraldd loads
 * its -c file; the cross-key checks run whatever the load said (a refused
 * text may leave some keys set), then everything is released. Nothing may
 * crash or leak (ASan, UBSan, LeakSanitizer), and the harness aborts when a
 * promise of config.h breaks: the load returns 0 or -1, a refusal carries a
 * message, every message and every string field stays terminated, and an
 * accepted schemas.unmatched_topics or auth.insecure is one of its two
 * values. A text the table accepts goes through the embedded config schema,
 * compiled again at every load: those execs take milliseconds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints what broke and aborts, so libFuzzer saves the input. */
static void broken(const char *what, const char *err)
{
  fprintf(stderr, "config_fuzz: invariant broken: %s\n", what);
  if(err && memchr(err, '\0', GW_CONFIG_ERR_MAX))
    fprintf(stderr, "  message: %s\n", err);
  abort();
}

/* Checks a message written by a call that returned rc. */
static void check_message(int rc, const char *err, const char *call)
{
  static char what[128];
  if(rc != 0 && rc != -1) {
    snprintf(what, sizeof(what), "%s returned %d, not 0 or -1", call, rc);
    broken(what, NULL);
  }
  if(rc == 0)
    return;
  if(!memchr(err, '\0', GW_CONFIG_ERR_MAX)) {
    snprintf(what, sizeof(what), "%s: the message is not terminated", call);
    broken(what, NULL);
  }
  if(!err[0]) {
    snprintf(what, sizeof(what), "%s failed without a message", call);
    broken(what, err);
  }
}

/* Every string field of struct gw_config ends within its array. */
static void check_strings(const struct gw_config *cfg)
{
#define TERMINATED(f) memchr(cfg->f, '\0', sizeof(cfg->f))
  if(!TERMINATED(client_listen) || !TERMINATED(client_tls_cert) || !TERMINATED(client_tls_key) ||
     !TERMINATED(api_listen) || !TERMINATED(api_tls_cert) || !TERMINATED(api_tls_key) ||
     !TERMINATED(auth_jwks_file) || !TERMINATED(auth_issuer) || !TERMINATED(auth_audience) ||
     !TERMINATED(data_dir) || !TERMINATED(log_level) || !TERMINATED(schemas_unmatched))
    broken("a string field is not terminated", NULL);
#undef TERMINATED
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct gw_config cfg;
  static char err[GW_CONFIG_ERR_MAX], check_err[GW_CONFIG_ERR_MAX];

  gw_config_defaults(&cfg);
  memset(err, 'x', sizeof(err));
  int rc = gw_config_load_text(&cfg, (const char *)data, size, "fuzz", err);
  check_message(rc, err, "gw_config_load_text");
  check_strings(&cfg);
  if(rc == 0 && strcmp(cfg.schemas_unmatched, "accept") != 0 &&
     strcmp(cfg.schemas_unmatched, "reject") != 0)
    broken("schemas.unmatched_topics is neither accept nor reject", NULL);
  if(rc == 0 && cfg.auth_insecure != 0 && cfg.auth_insecure != 1)
    broken("auth.insecure is neither true (1) nor false (0)", NULL);
  memset(check_err, 'x', sizeof(check_err));
  int check = gw_config_check(&cfg, check_err);
  check_message(check, check_err, "gw_config_check");
  gw_config_release(&cfg);
  gw_config_release(&cfg); /* released fields are NULL: a second release is harmless */
  return 0;
}
