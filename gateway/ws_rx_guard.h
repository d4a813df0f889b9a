#ifndef HERALD_WS_RX_GUARD_H
#define HERALD_WS_RX_GUARD_H

#include <stdbool.h>

/* RFC 6455 §5.1: a server MUST close the connection on a client frame
 * that is not masked. libwebsockets 4.1.6 reads the mask bit and checks
 * nothing (nor tells any callback), so Herald looks at the bytes before
 * libwebsockets parses them: it defines recv(), which libwebsockets calls
 * for every read of a plain-TCP socket (lib/core-net/output.c), and on the
 * client workers' threads follows the frame headers of the sockets it was
 * told about. The header of an unmasked frame gets a reserved opcode
 * before libwebsockets reads it, which libwebsockets answers as it does any
 * reserved opcode: close 1002, and the frame is never processed. So is a
 * control frame longer than 125 bytes (§5.5), on which libwebsockets would
 * drop the socket without a close frame.
 * Everything else passes unchanged; other threads and sockets pass
 * through untouched. docs/protocol.md ("Masking") says what is and is not
 * covered (TLS sockets are read by OpenSSL, not through recv: not
 * checked). */

/* Makes the calling thread a client worker's: the sockets it tracks are
 * its own (one table per thread). Returns 0, or -1 when out of memory
 * (the thread then checks nothing). */
int gw_rx_guard_thread_init(void);
void gw_rx_guard_thread_free(void);

/* A socket the calling thread adopts: HTTP until it upgrades. Before
 * libwebsockets reads from it. */
void gw_rx_guard_track(int fd);

/* The socket's handshake completed (LWS_CALLBACK_ESTABLISHED): frames
 * follow the request's headers. */
void gw_rx_guard_upgraded(int fd);

/* Unmasked frames refused by this thread so far (for tests and logs). */
unsigned long gw_rx_guard_refused(void);

#endif
