#ifndef HERALD_GUARD_H
#define HERALD_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The target guard (SSRF): webhook requests may only connect to public
 * unicast addresses, unless an operator lets a range through with
 * webhooks.allowed_cidrs. The check is made on the address actually
 * connected to (libcurl's open-socket callback), so a name that resolves
 * differently later (DNS rebinding) gains nothing. */

struct hook_cidr {
  int family;              /* AF_INET or AF_INET6 */
  unsigned char addr[16];  /* network address, host bits cleared; 4 bytes used for AF_INET */
  int bits;                /* prefix length: 0..32 or 0..128 */
};

/* Parses "10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"; a bare
 * address means a single host (/32 or /128). Host bits that are set are an
 * error ("host bits set"). Returns 0, or -1 with *why (static string). */
int hook_cidr_parse(const char *text, struct hook_cidr *out, const char **why);

/* True when the address (AF_INET or AF_INET6 sockaddr) lies in the range.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is NOT matched by an IPv4
 * range: it is refused as "ipv4_mapped" unless a v6 range allows it. */
bool hook_cidr_contains(const struct hook_cidr *c, const struct sockaddr *sa);

/* Returns NULL when the address is public unicast, else the name of the
 * class that makes it off-limits: "loopback", "private", "link_local",
 * "cgnat", "multicast", "unspecified", "reserved", "ipv4_mapped",
 * "broadcast", "documentation", "unique_local", "nat64" ... (stable
 * snake_case names, documented in docs/webhooks.md). Unknown families give
 * "unsupported_family". */
const char *hook_addr_class(const struct sockaddr *sa);

/* Returns NULL when sa may be connected to: it is public, or lies in one of
 * the n allowed ranges. Otherwise the refusing class (as hook_addr_class). */
const char *hook_guard_check(const struct hook_cidr *allowed, size_t n, const struct sockaddr *sa);

#endif
