#ifndef HERALD_API_H
#define HERALD_API_H

#include "config.h"
#include "hooks.h"
#include "pipeline.h"

/* The REST API port (libmicrohttpd, its own epoll thread pool):
 *   POST /v1/topics/{topic}/events   publish; the JSON body is the event's data
 *   GET  /v1/events?topic=P&since=C&limit=N   a page of the history log
 *   GET  /v1/topics/{topic}/events/latest     the topic's last retained event
 *   GET  /healthz                    the process is alive
 *   GET  /readyz                     the process accepts work (503 while stopping)
 *   /v1/webhooks[...]                the webhook endpoints API (docs/webhooks.md)
 * Errors are {"error":{"code","message"}} with the fitting status; a schema
 * violation (422) adds "errors" and "truncated". */

struct gw_api;
struct gw_auth;

/* Starts serving on listen_fd (taken over): publishes go through pp, the
 * webhooks API to hooks, auth says who may call what; all must outlive the
 * API. Returns NULL on failure (logged). */
struct gw_api *gw_api_start(const struct gw_config *cfg, struct pub_pipeline *pp,
                            struct hook_service *hooks, struct gw_auth *auth, int listen_fd);

/* Stops accepting connections; /readyz answers 503 from now on. */
void gw_api_quiesce(struct gw_api *api);

/* Waits up to timeout_ms for requests in flight to finish, then stops the
 * threads and frees everything. */
void gw_api_stop(struct gw_api *api, int timeout_ms);

#endif
