#ifndef HERALD_PUBLISHING_H
#define HERALD_PUBLISHING_H

#include "config.h"
#include "engine.h"
#include "hooks.h"
#include "pipeline.h"
#include "topic_rules.h"

/* The publish pipeline as the gateway assembles it: the config's topic
 * rules, the engine, and the webhooks layer as the durable side (which
 * topics to hold, where Idempotency-Keys are found again). Herald's own
 * announcements (hook_config.announce) are published through it too. */

struct gw_publishing;

/* Makes the pipeline over rules (may be NULL) and engine; the webhooks
 * layer is attached after it starts (it announces through this). Returns
 * NULL when out of memory. rules and engine must outlive it. */
struct gw_publishing *gw_publishing_new(const struct gw_config *cfg, const struct gw_rules *rules,
                                        struct sub_engine *engine);

/* The webhooks layer, once started; before any port publishes. */
void gw_publishing_attach(struct gw_publishing *p, struct hook_service *hooks);

struct pub_pipeline *gw_publishing_pipeline(struct gw_publishing *p);

/* hook_config.announce: publishes Herald's own event (arg: the
 * gw_publishing), without waiting for its outcome; a failure is logged. */
void gw_publishing_announce(void *arg, const char *topic, const char *data, size_t len);

/* Frees the pipeline: after the ports and the webhooks layer stopped. */
void gw_publishing_free(struct gw_publishing *p);

#endif
