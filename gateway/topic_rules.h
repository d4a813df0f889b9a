#ifndef HERALD_TOPIC_RULES_H
#define HERALD_TOPIC_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "config.h"
#include "schema.h"

/* Topic rules: the config's "topics" list binds JSON Schemas to topic
 * patterns; the first rule whose pattern matches a topic decides what its
 * events' data must look like. Compiled once at start-up, then read by every
 * publishing thread at once (validation never writes). */

struct gw_rules;

enum gw_verdict {
  GW_VERDICT_OK,            /* publish it */
  GW_VERDICT_UNKNOWN_TOPIC, /* no rule matches and schemas.unmatched_topics is "reject" */
  GW_VERDICT_INVALID,       /* data fails the rule's schema; errors in the result */
};

/* Compiles cfg's topic rules. Relative schema paths are relative to the
 * working directory. Returns 0 with *out set (NULL-safe to free), or -1 with a
 * message naming the rule, the file and the reason in err. */
int gw_rules_build(const struct gw_config *cfg, struct gw_rules **out, char err[GW_CONFIG_ERR_MAX]);

/* Decides whether data may be published on topic. res (may be NULL) gets the
 * schema errors for GW_VERDICT_INVALID. rule_pattern (may be NULL) gets the
 * matching rule's pattern, or NULL. */
enum gw_verdict gw_rules_check(const struct gw_rules *r, const char *topic, const json_t *data,
                               struct schema_result *res, const char **rule_pattern);

/* True when some rule or the reject setting means publishes must be checked
 * (callers may skip parsing data when false). */
bool gw_rules_active(const struct gw_rules *r);

/* The errors as [{"instance_path","keyword_path","message"}] (new reference,
 * NULL when out of memory). */
json_t *gw_rules_errors_json(const struct schema_result *res);

void gw_rules_free(struct gw_rules *r);

#endif
