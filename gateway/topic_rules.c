#include "topic_rules.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topic.h"

#define MAX_RULES 1024
#define MAX_REMOTES 32

struct rule {
  char *pattern;
  struct schema *schema; /* NULL: the rule accepts any data */
  bool has_schema;       /* false: a history-only rule, not one for the data */
  int history;           /* -1: no "history" key; 0: false; 1: kept */
  uint64_t max_age_ms;   /* "history": {"max_age_s"} (0: the log's) */
};

struct gw_rules {
  struct rule *rules;
  size_t n;
  bool reject_unmatched;
  bool history; /* some rule has a "history" key */
};


#define fail gw_config_error

/* Reads a rule's "history" key. Returns 0 or -1 with err. */
static int history_rule(struct rule *r, size_t i, json_t *h, char err[GW_CONFIG_ERR_MAX])
{
  r->history = -1;
  if(!h)
    return 0;
  if(json_is_boolean(h)) {
    r->history = json_is_true(h);
    return 0;
  }
  json_t *age = json_object_get(h, "max_age_s");
  if(!json_is_object(h) || !json_is_integer(age) || json_integer_value(age) < 1 ||
     json_integer_value(age) > 31536000 || json_object_size(h) != 1)
    return fail(err, "topics[%zu].history: expected false, true or {\"max_age_s\": 1..31536000}",
                i);
  r->history = 1;
  r->max_age_ms = (uint64_t)json_integer_value(age) * 1000;
  return 0;
}

/* Reads schemas.remote into maps. Returns the count, or -1 with err. */
static int remote_mappings(const struct gw_config *cfg, struct schema_mapping *maps,
                           char err[GW_CONFIG_ERR_MAX])
{
  size_t i;
  json_t *m;
  int n = 0;
  json_array_foreach(cfg->schemas_remote, i, m)
  {
    const char *prefix = json_string_value(json_object_get(m, "prefix"));
    const char *dir = json_string_value(json_object_get(m, "dir"));
    if(!prefix || !dir || !*prefix || !*dir)
      return fail(err, "schemas.remote[%zu]: needs \"prefix\" and \"dir\" strings", i);
    if(n == MAX_REMOTES)
      return fail(err, "schemas.remote: at most %d entries", MAX_REMOTES);
    maps[n].prefix = prefix;
    maps[n].dir = dir;
    n++;
  }
  return n;
}

/* Compiles one rule's schema: a file path, or an inline schema whose relative
 * $refs resolve in the working directory. */
static int compile_rule(struct rule *r, size_t i, json_t *spec, struct schema_mapping *maps,
                        size_t nmaps, char err[GW_CONFIG_ERR_MAX])
{
  char msg[GW_CONFIG_ERR_MAX - 64];
  struct schema_options opts = {.mappings = maps, .mapping_count = nmaps};
  if(json_is_string(spec)) {
    r->schema = schema_compile_file(json_string_value(spec), &opts, msg, sizeof(msg));
    if(!r->schema)
      return fail(err, "topics[%zu].schema: %s", i, msg);
    return 0;
  }
  if(!json_is_object(spec) && !json_is_boolean(spec))
    return fail(err, "topics[%zu].schema: expected a file name or an inline schema", i);
  opts.base_dir = "."; /* relative $refs: the working directory, like file names */
  r->schema = schema_compile(spec, &opts, msg, sizeof(msg));
  if(!r->schema)
    return fail(err, "topics[%zu].schema (inline): %s", i, msg);
  return 0;
}

int gw_rules_build(const struct gw_config *cfg, struct gw_rules **out, char err[GW_CONFIG_ERR_MAX])
{
  struct schema_mapping maps[MAX_REMOTES + 1];
  *out = NULL;
  struct gw_rules *r = calloc(1, sizeof(*r));
  if(!r)
    return fail(err, "out of memory");
  r->reject_unmatched = strcmp(cfg->schemas_unmatched, "reject") == 0;
  int nmaps = remote_mappings(cfg, maps, err);
  if(nmaps < 0)
    goto fail;
  size_t n = json_array_size(cfg->topics);
  if(n > MAX_RULES) {
    fail(err, "topics: at most %d rules", MAX_RULES);
    goto fail;
  }
  if(n && !(r->rules = calloc(n, sizeof(*r->rules)))) {
    fail(err, "out of memory");
    goto fail;
  }
  for(size_t i = 0; i < n; i++, r->n++) {
    json_t *rule = json_array_get(cfg->topics, i);
    const char *pattern = json_string_value(json_object_get(rule, "pattern"));
    const char *why = NULL;
    if(!pattern) {
      fail(err, "topics[%zu].pattern: expected a topic pattern string", i);
      goto fail;
    }
    if(!sub_pattern_valid(pattern, strlen(pattern), &why)) {
      fail(err, "topics[%zu].pattern: \"%s\": %s", i, pattern, why);
      goto fail;
    }
    if(!(r->rules[i].pattern = strdup(pattern))) {
      fail(err, "out of memory");
      goto fail;
    }
    if(history_rule(&r->rules[i], i, json_object_get(rule, "history"), err)) {
      r->n++;
      goto fail;
    }
    if(r->rules[i].history >= 0)
      r->history = true;
    json_t *spec = json_object_get(rule, "schema");
    if(!spec && r->rules[i].history >= 0)
      continue; /* a history-only rule */
    if(!spec) {
      fail(err, "topics[%zu].schema: missing (a file name or an inline schema)", i);
      r->n++;
      goto fail;
    }
    r->rules[i].has_schema = true;
    if(compile_rule(&r->rules[i], i, spec, maps, (size_t)nmaps, err)) {
      r->n++;
      goto fail;
    }
  }
  *out = r;
  return 0;
fail:
  gw_rules_free(r);
  return -1;
}

bool gw_rules_active(const struct gw_rules *r)
{
  return r && (r->n || r->reject_unmatched);
}

void gw_rules_history(const struct gw_rules *r, const char *topic, bool *excluded,
                      uint64_t *max_age_ms)
{
  *excluded = false;
  *max_age_ms = 0;
  if(!r || !r->history)
    return;
  for(size_t i = 0; i < r->n; i++)
    if(r->rules[i].history >= 0 && sub_pattern_matches(r->rules[i].pattern, topic)) {
      *excluded = r->rules[i].history == 0;
      *max_age_ms = r->rules[i].max_age_ms;
      return;
    }
}

enum pub_verdict gw_rules_check(const struct gw_rules *r, const char *topic, const json_t *data,
                                struct schema_result *res, const char **rule_pattern)
{
  if(rule_pattern)
    *rule_pattern = NULL;
  if(res) {
    res->count = 0;
    res->truncated = false;
  }
  if(!r)
    return PUB_VERDICT_OK;
  bool matched = false; /* a rule without a schema (history only) matches too */
  for(size_t i = 0; i < r->n; i++) {
    if(!sub_pattern_matches(r->rules[i].pattern, topic))
      continue;
    matched = true;
    if(!r->rules[i].has_schema)
      continue;
    if(rule_pattern)
      *rule_pattern = r->rules[i].pattern;
    /* Valid data, the common case, takes the quiet path (no error paths
     * built); only failures are validated again to collect the errors. */
    const struct schema *s = r->rules[i].schema;
    if(s && !schema_validate(s, data, NULL)) {
      if(res)
        schema_validate(s, data, res);
      return PUB_VERDICT_INVALID;
    }
    return PUB_VERDICT_OK;
  }
  return r->reject_unmatched && !matched ? PUB_VERDICT_UNKNOWN_TOPIC : PUB_VERDICT_OK;
}

static enum pub_verdict table_check(const void *rules, const char *topic, const json_t *data,
                                    struct schema_result *res, const char **rule)
{
  return gw_rules_check(rules, topic, data, res, rule);
}

static bool table_active(const void *rules)
{
  return gw_rules_active(rules);
}

static void table_history(const void *rules, const char *topic, bool *excluded,
                          uint64_t *max_age_ms)
{
  gw_rules_history(rules, topic, excluded, max_age_ms);
}

struct pub_rules gw_rules_table(const struct gw_rules *r)
{
  return (struct pub_rules){.check = table_check,
                            .active = table_active,
                            .history = r && r->history ? table_history : NULL,
                            .rules = r};
}

void gw_rules_free(struct gw_rules *r)
{
  if(!r)
    return;
  for(size_t i = 0; i < r->n; i++) {
    free(r->rules[i].pattern);
    schema_free(r->rules[i].schema);
  }
  free(r->rules);
  free(r);
}
