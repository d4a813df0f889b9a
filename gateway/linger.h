#ifndef HERALD_LINGER_H
#define HERALD_LINGER_H

#include <stdbool.h>
#include <stddef.h>

/* Lingering close for the API port, as nginx's lingering_close: a socket
 * that was answered before its request body was read (a 413 on
 * Content-Length, a 401 with a body on its way) is not closed at once,
 * since closing a socket whose input is unread sends a TCP reset, and a
 * reset that reaches the client before it read the answer destroys the
 * answer (ECONNRESET, EPIPE). Its input is read and dropped by one thread
 * until the client closes, or `max_bytes` came, or `max_ms` passed, and
 * only then is it closed. */

struct gw_linger;

/* Starts the thread; at most `max_socks` sockets linger at once. Returns
 * NULL when out of memory or threads. */
struct gw_linger *gw_linger_new(size_t max_socks, size_t max_bytes, int max_ms);

/* Takes fd over (its answer is written, its write side shut or about to
 * be): drains it, then closes it. When max_socks linger already, closes it
 * at once and returns false. Any thread. */
bool gw_linger_add(struct gw_linger *l, int fd);

/* Stops the thread and closes every socket still lingering. */
void gw_linger_free(struct gw_linger *l);

#endif
