#ifndef HERALD_NET_H
#define HERALD_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses "HOST:PORT" where HOST is a numeric IPv4 address, a bracketed IPv6
 * address ("[::1]:8080") or "localhost" (127.0.0.1); PORT is 0..65535, 0
 * meaning any free port. Returns 0, or -1 with *why set. */
int gw_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                    const char **why);

/* Opens a non-blocking listening TCP socket bound to exactly `s` (an IPv6
 * address gets IPV6_V6ONLY). Returns the fd, or -1 with *why set. */
int gw_listen(const char *s, int backlog, const char **why);

/* Writes "ADDR:PORT" of the socket's local address into buf. */
void gw_sock_name(int fd, char *buf, size_t size);

#endif
