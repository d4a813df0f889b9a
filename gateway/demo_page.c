#include "demo_page.h"

#include <string.h>

/* The demo page, gateway/demo.html, embedded at build time. */
extern const char gw_demo_page[];
extern const size_t gw_demo_page_len;

/* Headers now, the body (GET only) at the next writeable callback. */
static int page_headers(struct lws *wsi, bool *pending)
{
  unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf);
  if(lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/html; charset=utf-8", gw_demo_page_len,
                                 &p, end) ||
     lws_finalize_write_http_header(wsi, start, &p, end))
    return 1;
  if(!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) /* HEAD: headers only */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  *pending = true;
  lws_callback_on_writable(wsi);
  return 0;
}

int gw_demo_page_request(struct lws *wsi, const char *uri, bool *pending)
{
  if(!lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) &&
     !lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)) {
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
    return -1;
  }
  if(strcmp(uri, "/") != 0)
    return lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL) ||
           lws_http_transaction_completed(wsi);
  return page_headers(wsi, pending);
}

int gw_demo_page_body(struct lws *wsi, bool *pending, unsigned char *scratch, size_t cap)
{
  if(!*pending) /* a writeable callback we did not ask for */
    return 0;
  *pending = false;
  if(gw_demo_page_len > cap)
    return -1;
  memcpy(scratch + LWS_PRE, gw_demo_page, gw_demo_page_len);
  if(lws_write(wsi, scratch + LWS_PRE, gw_demo_page_len, LWS_WRITE_HTTP_FINAL) !=
     (int)gw_demo_page_len)
    return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}
