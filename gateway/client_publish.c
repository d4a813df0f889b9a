/* Publishes from clients: the one place the client port hands a publish to
 * the publish pipeline (pub_publish), and the way its answer comes back to
 * the worker when it waited for a commit on the holder's thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "protocol.h"

#define WS_PUBS_MAX 64 /* publishes of one connection waiting for their commit */

/* A client publish the pipeline may hold until its commit. */
struct gw_pending {
  struct pub_request p;
  struct gw_worker *w;
  struct gw_conn *c;            /* NULL once the connection is gone (worker thread only) */
  const struct gw_v1_out *out;  /* how c is answered */
  struct gw_pending *cprev, *cnext; /* the connection's pending publishes */
  struct gw_pending *done_next;     /* the worker's done list */
  char req_id[GW_MSG_ID_MAX + 1];
  char topic[SUB_TOPIC_MAX + 1];
};

/* Answers the publish (if its connection is still there) and frees it.
 * Worker thread. */
static void pending_finish(struct gw_pending *wp)
{
  struct gw_conn *c = wp->c;
  if(c) {
    if(wp->cprev)
      wp->cprev->cnext = wp->cnext;
    else
      c->pubs = wp->cnext;
    if(wp->cnext)
      wp->cnext->cprev = wp->cprev;
    c->npubs--;
    struct gw_v1_published r = {wp->req_id, wp->topic, &wp->p};
    gw_v1_published(wp->out, &c->s, &r);
  }
  pub_request_clear(&wp->p);
  free((void *)wp->p.data);
  free(wp);
}

/* The pipeline finished a held publish (the holder's thread): hand it to
 * its worker. */
static void pending_done(struct pub_request *p)
{
  struct gw_pending *wp = p->arg;
  struct gw_worker *w = wp->w;
  pthread_mutex_lock(&w->lock);
  if(w->answers_tail)
    w->answers_tail->done_next = wp;
  else
    w->answers = wp;
  w->answers_tail = wp;
  pthread_mutex_unlock(&w->lock);
  lws_cancel_service(w->ctx);
  atomic_fetch_sub(&w->outstanding, 1); /* last: w may be freed once it is 0 */
}

/* A pending publish of req for c, on c's list; NULL when out of memory. */
static struct gw_pending *pending_new(const struct gw_v1_out *out, struct gw_conn *c,
                                      const struct gw_v1_publish *req)
{
  struct gw_pending *wp = calloc(1, sizeof(*wp));
  char *data = wp ? malloc(req->data_len + 1) : NULL;
  if(!data) {
    free(wp);
    return NULL;
  }
  memcpy(data, req->data, req->data_len);
  data[req->data_len] = '\0';
  memcpy(wp->topic, req->topic, req->topic_len + 1);
  snprintf(wp->req_id, sizeof(wp->req_id), "%s", req->id);
  wp->p.topic = wp->topic;
  wp->p.topic_len = req->topic_len;
  wp->p.data = data;
  wp->p.data_len = req->data_len;
  wp->p.data_value = req->data_value; /* read during pub_publish only */
  wp->p.done = pending_done;
  wp->p.arg = wp;
  wp->w = c->w;
  wp->c = c;
  wp->out = out;
  wp->cnext = c->pubs;
  if(c->pubs)
    c->pubs->cprev = wp;
  c->pubs = wp;
  c->npubs++;
  return wp;
}

enum gw_v1_pub_state gw_client_publish(const struct gw_v1_out *out, struct gw_conn *c,
                                       const struct gw_v1_publish *req)
{
  if(c->npubs >= WS_PUBS_MAX)
    return GW_V1_PUB_BUSY;
  struct gw_pending *wp = pending_new(out, c, req);
  if(!wp)
    return GW_V1_PUB_NOMEM;
  /* When webhooks match the topic the ack waits for the commit: the worker
   * goes on serving meanwhile, and answers from gw_worker_wake. */
  atomic_fetch_add(&c->w->outstanding, 1);
  enum pub_state st = pub_publish(c->w->cp->pp, &wp->p);
  if(st == PUB_DONE) {
    atomic_fetch_sub(&c->w->outstanding, 1);
    pending_finish(wp);
  }
  return GW_V1_PUB_TAKEN;
}

void gw_client_publish_answer(struct gw_pending *done)
{
  while(done) {
    struct gw_pending *next = done->done_next;
    pending_finish(done);
    done = next;
  }
}

void gw_client_publish_orphan(struct gw_conn *c)
{
  for(struct gw_pending *wp = c->pubs; wp; wp = wp->cnext)
    wp->c = NULL; /* their answers have nowhere to go */
  c->pubs = NULL;
  c->npubs = 0;
}

void gw_client_publish_drop(struct gw_worker *w)
{
  while(w->answers) {
    struct gw_pending *next = w->answers->done_next;
    w->answers->c = NULL;
    pending_finish(w->answers);
    w->answers = next;
  }
}
