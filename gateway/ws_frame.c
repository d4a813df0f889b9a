#include "ws_frame.h"

#include <stdint.h>
#include <string.h>

struct sub_frame *gw_ws_frame_alloc(size_t len)
{
  return sub_frame_alloc(GW_WS_HEADER_MAX, len);
}

void gw_ws_seal_text(struct sub_frame *f)
{
  unsigned char h[GW_WS_HEADER_MAX];
  size_t n, len = f->payload_len;
  h[0] = 0x81; /* FIN, opcode 1 (text) */
  if(len < 126) {
    h[1] = (unsigned char)len;
    n = 2;
  }
  else if(len <= 0xffff) {
    h[1] = 126;
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
    n = 4;
  }
  else {
    h[1] = 127;
    for(int i = 0; i < 8; i++)
      h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    n = 10;
  }
  sub_frame_prepend(f, h, n);
}

struct sub_frame *gw_ws_text_frame(const char *payload, size_t len)
{
  struct sub_frame *f = gw_ws_frame_alloc(len);
  if(!f)
    return NULL;
  memcpy(sub_frame_body(f), payload, len);
  gw_ws_seal_text(f);
  return f;
}
