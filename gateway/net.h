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

/* True when the "HOST:PORT" string names a loopback address (127.0.0.0/8
 * or ::1). */
int gw_listen_is_loopback(const char *s);

/* Writes "ADDR:PORT" of the socket's local address into buf. */
void gw_sock_name(int fd, char *buf, size_t size);

struct gw_config;

/* True when an HTTP Host header names this machine's loopback: localhost,
 * 127.x.x.x or [::1], with or without a port. NULL (no Host) is true. */
int gw_host_is_loopback(const char *host);

/* True when a port of this configuration serves without authentication on
 * a loopback address (so it guards against DNS rebinding by checking Host):
 * port is "client" or "api". */
int gw_open_on_loopback(const struct gw_config *cfg, const char *port);

/* Checks that each port's TLS certificate and key files (when set) load and
 * belong together. Returns 0, or -1 with a message naming the key in err
 * (GW_CONFIG_ERR_MAX bytes). */
int gw_tls_check(const struct gw_config *cfg, char *err);

#endif
