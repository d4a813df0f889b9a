#ifndef HERALD_TOPIC_RULES_H
#define HERALD_TOPIC_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "pipeline.h"
#include "schema.h"

/* Topic rules: the config's "topics" list binds JSON Schemas to topic
 * patterns; the first rule whose pattern matches a topic decides what its
 * events' data must look like. Compiled once at start-up, then read by every
 * publishing thread at once (validation never writes). The publish
 * pipeline asks them through gw_rules_table(). */

struct gw_rules;

/* Compiles cfg's topic rules. Relative schema paths are relative to the
 * working directory. Returns 0 with *out set (NULL-safe to free), or -1 with a
 * message naming the rule, the file and the reason in err. */
int gw_rules_build(const struct gw_config *cfg, struct gw_rules **out, char err[GW_CONFIG_ERR_MAX]);

/* Decides whether data may be published on topic. res (may be NULL) gets the
 * schema errors for PUB_VERDICT_INVALID. rule_pattern (may be NULL) gets the
 * matching rule's pattern, or NULL. */
enum pub_verdict gw_rules_check(const struct gw_rules *r, const char *topic, const json_t *data,
                                struct schema_result *res, const char **rule_pattern);

/* True when some rule or the reject setting means publishes must be checked
 * (callers may skip parsing data when false). */
bool gw_rules_active(const struct gw_rules *r);

/* What history keeps of topic's events: *excluded when the first matching
 * rule with a "history" key says false, else *max_age_ms its max_age_s (0:
 * the log's own). */
void gw_rules_history(const struct gw_rules *r, const char *topic, bool *excluded,
                      uint64_t *max_age_ms);

/* The rules as the publish pipeline takes them (r may be NULL: no rules). */
struct pub_rules gw_rules_table(const struct gw_rules *r);

void gw_rules_free(struct gw_rules *r);

#endif
