/*
 * ws_fuzz.c - libFuzzer harness for the WebSocket port: the real client port
 * (libwebsockets, gateway/client_port.c, protocol.c, auth.c) runs in this
 * process on 127.0.0.1; each input is one connection's life.
 *
 * Input: one byte choosing the handshake, then frames.
 *   handshake byte: bit 0  send a foreign Origin (refused: 403)
 *                   bit 1  Authorization: Bearer <a valid token> (signed here)
 *                   bit 2  ask for the herald.v1 subprotocol
 *                   bit 3  no handshake of ours: the rest is raw bytes
 *   a frame: [flags][len][payload: len bytes]
 *     flags: low 4 bits the opcode, 0x80 FIN, 0x40 send it unmasked,
 *            0x20 set RSV1, 0x10 raw: the payload goes on the wire as is
 *     len:   one byte; 255 means two more bytes of length follow (big end)
 * Client-to-server frames are masked unless told otherwise. After the
 * frames a close frame is sent and the write side shut; the harness waits
 * (up to 2 s) for the server to close the socket. A crash, a sanitizer
 * report or a leak in the server is what this looks for.
 */
#include <cjose/cjose.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "client_port.h"
#include "fuzz_server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int port;
static char token[2048];
static char handshake_common[] = "GET /ws HTTP/1.1\r\n"
                                 "Host: 127.0.0.1\r\n"
                                 "Upgrade: websocket\r\n"
                                 "Connection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                 "Sec-WebSocket-Version: 13\r\n";

/* An HS256 token for the key of the config below, valid until 2100. */
static void make_token(void)
{
  cjose_err err;
  uint8_t secret[32];
  memset(secret, 'k', sizeof(secret));
  cjose_jwk_t *k = cjose_jwk_create_oct_spec(secret, sizeof(secret), &err);
  cjose_header_t *h = cjose_header_new(&err);
  if(!k || !h || !cjose_header_set(h, CJOSE_HDR_ALG, "HS256", &err) ||
     !cjose_header_set(h, CJOSE_HDR_KID, "hs", &err))
    fuzz_die("token key");
  const char *claims = "{\"sub\":\"fuzz\",\"exp\":4102444800,"
                       "\"herald\":{\"subscribe\":[\"orders.>\"],\"publish\":[\"orders.*\"]}}";
  cjose_jws_t *jws = cjose_jws_sign(k, h, (const uint8_t *)claims, strlen(claims), &err);
  const char *ser = NULL;
  if(!jws || !cjose_jws_export(jws, &ser, &err))
    fuzz_die("token");
  snprintf(token, sizeof(token), "%s", ser);
  cjose_jws_release(jws);
  cjose_header_release(h);
  cjose_jwk_release(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  gw_log_set_level(GW_LOG_ERROR);
  gw_log_hook_lws();
  static struct gw_config cfg;
  static const char text[] =
      "{\"client\": {\"workers\": 1, \"max_message_bytes\": 4096, \"max_subscriptions\": 8,"
      " \"rate_per_s\": 1000, \"rate_burst\": 64, \"rate_close_after\": 32},"
      " \"auth\": {\"jwt_keys\": [{\"kty\":\"oct\",\"alg\":\"HS256\",\"kid\":\"hs\","
      "  \"k\":\"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s\"}],"
      "  \"anonymous_subscribe\": [\"public.>\"], \"anonymous_publish\": [\"public.*\"]}}";
  struct gw_auth *auth = fuzz_config(&cfg, text);
  struct sub_broker *broker;
  struct hook_service *hooks;
  struct pub_pipeline *pp;
  fuzz_backend(&cfg, NULL, &broker, &hooks, &pp);
  int fd = fuzz_listen(&port);
  if(!gw_client_start(&cfg, sub_broker_engine(broker), pp, auth, fd))
    fuzz_die("client port");
  make_token();
  return 0; /* the port runs until the process exits */
}

/* Appends one frame to out (cap bytes). Returns the new length. */
static size_t put_frame(uint8_t *out, size_t n, size_t cap, uint8_t flags, const uint8_t *p,
                        size_t len)
{
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  if(flags & 0x10) { /* raw */
    if(n + len > cap)
      return n;
    memcpy(out + n, p, len);
    return n + len;
  }
  bool masked = !(flags & 0x40);
  if(n + len + 14 > cap)
    return n;
  out[n++] = (uint8_t)((flags & 0x80) | (flags & 0x20 ? 0x40 : 0) | (flags & 0x0f));
  uint8_t m = masked ? 0x80 : 0;
  if(len < 126)
    out[n++] = (uint8_t)(m | len);
  else {
    out[n++] = (uint8_t)(m | 126);
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  }
  if(masked) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  for(size_t i = 0; i < len; i++)
    out[n + i] = masked ? p[i] ^ mask[i & 3] : p[i];
  return n + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  uint8_t hs = data[0];
  data++;
  size--;
  int fd = fuzz_connect(port);
  if(fd < 0)
    return 0;
  char reply[4096];
  int closed = 0;
  if(hs & 0x08) { /* raw bytes, HTTP parser and all */
    fuzz_send(fd, data, size);
    shutdown(fd, SHUT_WR);
    fuzz_read_until_close(fd, reply, sizeof(reply), 2000, 0, &closed);
    close(fd);
    return 0;
  }
  char req[4096];
  int n = snprintf(req, sizeof(req), "%s%s%s%s%s\r\n", handshake_common,
                   hs & 0x01 ? "Origin: http://evil.example\r\n" : "",
                   hs & 0x02 ? "Authorization: Bearer " : "", hs & 0x02 ? token : "",
                   hs & 0x02 ? "\r\n" : "");
  if(hs & 0x04)
    n = snprintf(req, sizeof(req), "%s%s%s%s%sSec-WebSocket-Protocol: herald.v1\r\n\r\n",
                 handshake_common, hs & 0x01 ? "Origin: http://evil.example\r\n" : "",
                 hs & 0x02 ? "Authorization: Bearer " : "", hs & 0x02 ? token : "",
                 hs & 0x02 ? "\r\n" : "");
  if(fuzz_send(fd, req, (size_t)n)) {
    close(fd);
    return 0;
  }
  /* the 101 (or the refusal) first, so frames are not taken for HTTP */
  size_t got = 0;
  int64_t end = fuzz_ms() + 2000;
  while(got < sizeof(reply) - 1 && fuzz_ms() < end) {
    struct pollfd p = {fd, POLLIN, 0};
    if(poll(&p, 1, 100) <= 0)
      continue;
    ssize_t r = recv(fd, reply + got, sizeof(reply) - 1 - got, 0);
    if(r <= 0)
      break;
    got += (size_t)r;
    reply[got] = '\0';
    if(strstr(reply, "\r\n\r\n"))
      break;
  }
  if(strncmp(reply, "HTTP/1.1 101", 12) != 0 || got == 0) {
    close(fd);
    return 0;
  }
  static uint8_t wire[1 << 17];
  size_t w = 0;
  size_t i = 0;
  while(i + 2 <= size) {
    uint8_t flags = data[i++];
    size_t len = data[i++];
    if(len == 255) {
      if(i + 2 > size)
        break;
      len = (size_t)data[i] << 8 | data[i + 1];
      i += 2;
    }
    if(len > size - i)
      len = size - i;
    w = put_frame(wire, w, sizeof(wire), flags, data + i, len);
    i += len;
  }
  static const uint8_t close_payload[2] = {0x03, 0xe8};
  w = put_frame(wire, w, sizeof(wire), 0x88, close_payload, 2);
  fuzz_send(fd, wire, w);
  shutdown(fd, SHUT_WR);
  fuzz_read_until_close(fd, reply, sizeof(reply), 2000, 0, &closed);
  close(fd);
  return 0;
}
