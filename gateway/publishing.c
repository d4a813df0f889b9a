#include "publishing.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

struct gw_publishing {
  struct pub_pipeline *pp;
  struct hook_service *hooks; /* NULL until attached */
};

static bool durable_wants(void *arg, const char *topic)
{
  struct gw_publishing *p = arg;
  return p->hooks && hook_wants(p->hooks, topic);
}

static int idem_lookup(void *arg, const char *key, int64_t min_ms,
                       unsigned char hash[PUB_IDEM_HASH_LEN], struct sub_published *first)
{
  struct gw_publishing *p = arg;
  return p->hooks ? hook_idem_lookup(p->hooks, key, min_ms, hash, first) : -1;
}

struct gw_publishing *gw_publishing_new(const struct gw_config *cfg, const struct gw_rules *rules,
                                        struct sub_engine *engine)
{
  struct gw_publishing *p = calloc(1, sizeof(*p));
  if(!p)
    return NULL;
  struct pub_config pc = {
      .engine = engine,
      .rules = gw_rules_table(rules),
      .durable = {durable_wants, p},
      .idem = {idem_lookup, p},
      .idempotency_ttl_ms = (int64_t)cfg->webhooks_idempotency_ttl_s * 1000,
  };
  p->pp = pub_pipeline_new(&pc);
  if(!p->pp) {
    free(p);
    return NULL;
  }
  return p;
}

void gw_publishing_attach(struct gw_publishing *p, struct hook_service *hooks)
{
  p->hooks = hooks;
}

struct pub_pipeline *gw_publishing_pipeline(struct gw_publishing *p)
{
  return p->pp;
}

/* One of Herald's own publishes, kept until its outcome. */
struct announcement {
  struct pub_request r;
  char topic[SUB_TOPIC_MAX + 1];
  char data[];
};

static void announced(struct pub_request *r)
{
  struct announcement *a = (struct announcement *)r;
  if(r->status != PUB_ACCEPTED)
    gw_warn("internal_publish_failed", "topic=%s error=%s", a->topic, pub_status_code(r->status));
  pub_request_clear(r);
  free(a);
}

void gw_publishing_announce(void *arg, const char *topic, const char *data, size_t len)
{
  struct gw_publishing *p = arg;
  size_t tlen = strlen(topic);
  struct announcement *a = tlen <= SUB_TOPIC_MAX ? calloc(1, sizeof(*a) + len + 1) : NULL;
  if(!a) {
    gw_warn("internal_publish_failed", "topic=%s error=internal_error", topic);
    return;
  }
  memcpy(a->topic, topic, tlen + 1);
  memcpy(a->data, data, len);
  a->r.topic = a->topic;
  a->r.topic_len = tlen;
  a->r.data = a->data;
  a->r.data_len = len;
  a->r.done = announced; /* no data_value: Herald's own events pass no topic rule */
  if(pub_publish(p->pp, &a->r) == PUB_DONE)
    announced(&a->r);
}

void gw_publishing_free(struct gw_publishing *p)
{
  if(!p)
    return;
  pub_pipeline_free(p->pp);
  free(p);
}
