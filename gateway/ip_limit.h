#ifndef HERALD_IP_LIMIT_H
#define HERALD_IP_LIMIT_H

#include <sys/socket.h>

/* Open sockets per client address (client.max_connections_per_ip). IPv4
 * addresses count one by one, IPv6 ones by their /64 (one client holds a
 * whole /64). Thread-safe: the acceptor acquires, the workers release. */

struct gw_ip_limit;
struct gw_ip_node; /* one address's count */

/* Returns a limit of max sockets per address, or NULL when out of memory. */
struct gw_ip_limit *gw_ip_limit_new(int max);

/* Frees the limit and every count left. */
void gw_ip_limit_free(struct gw_ip_limit *l);

/* Counts one more socket from peer. Returns its address's node (give it
 * back with gw_ip_release), or NULL when the address is at its limit or
 * out of memory: refuse the socket then. */
struct gw_ip_node *gw_ip_acquire(struct gw_ip_limit *l, const struct sockaddr_storage *peer);

/* Counts one socket less for the node's address (NULL: nothing). */
void gw_ip_release(struct gw_ip_limit *l, struct gw_ip_node *n);

#endif
