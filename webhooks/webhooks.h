#ifndef HERALD_WEBHOOKS_H
#define HERALD_WEBHOOKS_H

/* Outbound webhook delivery is not built yet (see the webhooks issue).
 * Returns the number of configured endpoints: always 0 for now. */
int hook_endpoint_count(void);

#endif
