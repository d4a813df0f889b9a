/* The per-connection send queue (gateway/send_queue.c): a ring of frame
 * references with their byte count. What a connection relies on: frames go
 * out whole and in order, a frame begun is never cut short, the byte count
 * (checked against client.send_queue_bytes) matches what is queued, and
 * every reference taken is given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ws_frame.h"
#include "send_queue.h"

/* A frame whose payload is `text`. */
static struct sub_frame *frame(const char *text)
{
  struct sub_frame *f = gw_ws_text_frame(text, strlen(text));
  assert_non_null(f);
  return f;
}

static void test_push_peek_drop(void **state)
{
  (void)state;
  struct gw_send_queue q = {0};
  struct sub_frame *a = frame("{\"a\":1}"), *b = frame("{\"b\":22}");
  assert_null(gw_sendq_peek(&q));
  assert_int_equal(gw_sendq_push(&q, a), 0);
  assert_int_equal(gw_sendq_push(&q, b), 0);
  assert_int_equal(q.n, 2);
  assert_int_equal(q.bytes, a->len + b->len);
  assert_int_equal(a->refs, 2); /* the queue took its own */
  assert_ptr_equal(gw_sendq_peek(&q), a);
  gw_sendq_drop_head(&q);
  assert_int_equal(a->refs, 1);
  assert_ptr_equal(gw_sendq_peek(&q), b);
  assert_int_equal(q.bytes, b->len);
  gw_sendq_drop_head(&q);
  assert_null(gw_sendq_peek(&q));
  assert_int_equal(q.bytes, 0);
  gw_sendq_clear(&q);
  sub_frame_unref(a);
  sub_frame_unref(b);
}

/* take coalesces whole frames in order, and slices one that does not fit:
 * the rest of it comes first next time, and bytes counts it until done. */
static void test_take_partial_head(void **state)
{
  (void)state;
  struct gw_send_queue q = {0};
  struct sub_frame *a = frame("0123456789"), *b = frame("abcdefghij");
  gw_sendq_push(&q, a);
  gw_sendq_push(&q, b);
  size_t la = a->len, lb = b->len;
  unsigned char buf[256];
  size_t n = gw_sendq_take(&q, buf, la + 3);
  assert_int_equal(n, la + 3);
  assert_memory_equal(buf, a->wire, la);
  assert_memory_equal(buf + la, b->wire, 3);
  assert_int_equal(q.n, 1);
  assert_int_equal(q.off, 3);
  assert_int_equal(q.bytes, lb); /* the partly written head counts whole */
  assert_int_equal(a->refs, 1);
  n = gw_sendq_take(&q, buf, sizeof(buf));
  assert_int_equal(n, lb - 3);
  assert_memory_equal(buf, b->wire + 3, lb - 3);
  assert_int_equal(q.n, 0);
  assert_int_equal(q.off, 0);
  assert_int_equal(q.bytes, 0);
  assert_int_equal(gw_sendq_take(&q, buf, sizeof(buf)), 0);
  gw_sendq_clear(&q);
  sub_frame_unref(a);
  sub_frame_unref(b);
}

/* Closing drops what was not begun; a head begun stays to be finished. */
static void test_drop_unstarted(void **state)
{
  (void)state;
  struct gw_send_queue q = {0};
  struct sub_frame *f[3] = {frame("{\"x\":1}"), frame("{\"y\":2}"), frame("{\"z\":3}")};
  for(int i = 0; i < 3; i++)
    gw_sendq_push(&q, f[i]);
  gw_sendq_drop_unstarted(&q); /* nothing begun: everything goes */
  assert_int_equal(q.n, 0);
  assert_int_equal(q.bytes, 0);
  for(int i = 0; i < 3; i++)
    assert_int_equal(f[i]->refs, 1);

  for(int i = 0; i < 3; i++)
    gw_sendq_push(&q, f[i]);
  unsigned char buf[8];
  assert_int_equal(gw_sendq_take(&q, buf, 2), 2); /* the head is begun */
  gw_sendq_drop_unstarted(&q);
  assert_int_equal(q.n, 1);
  assert_ptr_equal(gw_sendq_peek(&q), f[0]);
  assert_int_equal(q.off, 2);
  assert_int_equal(q.bytes, f[0]->len);
  assert_int_equal(f[1]->refs, 1);
  assert_int_equal(f[2]->refs, 1);
  gw_sendq_clear(&q);
  assert_int_equal(f[0]->refs, 1);
  for(int i = 0; i < 3; i++)
    sub_frame_unref(f[i]);
}

/* The ring grows past its first 8 slots while wrapped, keeping the order. */
static void test_growth_keeps_order(void **state)
{
  (void)state;
  struct gw_send_queue q = {0};
  struct sub_frame *f[40];
  char text[16];
  size_t bytes = 0;
  for(int i = 0; i < 40; i++) {
    snprintf(text, sizeof(text), "%d", i);
    f[i] = frame(text);
  }
  for(int i = 0; i < 6; i++) { /* move the head along, then wrap */
    gw_sendq_push(&q, f[i]);
    bytes += f[i]->len;
  }
  for(int i = 0; i < 5; i++) {
    gw_sendq_drop_head(&q);
    bytes -= f[i]->len;
  }
  for(int i = 6; i < 40; i++) {
    assert_int_equal(gw_sendq_push(&q, f[i]), 0);
    bytes += f[i]->len;
  }
  assert_true(q.cap >= 35);
  assert_int_equal(q.n, 35);
  assert_int_equal(q.bytes, bytes);
  for(int i = 5; i < 40; i++) {
    assert_ptr_equal(gw_sendq_peek(&q), f[i]);
    gw_sendq_drop_head(&q);
  }
  assert_int_equal(q.bytes, 0);
  gw_sendq_clear(&q);
  for(int i = 0; i < 40; i++) {
    assert_int_equal(f[i]->refs, 1);
    sub_frame_unref(f[i]);
  }
}

/* clear gives back every reference and leaves a reusable queue. */
static void test_clear(void **state)
{
  (void)state;
  struct gw_send_queue q = {0};
  struct sub_frame *a = frame("{}");
  for(int i = 0; i < 20; i++)
    gw_sendq_push(&q, a);
  assert_int_equal(a->refs, 21);
  gw_sendq_clear(&q);
  assert_int_equal(a->refs, 1);
  assert_int_equal(q.n, 0);
  assert_int_equal(q.bytes, 0);
  assert_null(q.f);
  assert_int_equal(gw_sendq_push(&q, a), 0);
  gw_sendq_clear(&q);
  sub_frame_unref(a);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_push_peek_drop),   cmocka_unit_test(test_take_partial_head),
      cmocka_unit_test(test_drop_unstarted),   cmocka_unit_test(test_growth_keeps_order),
      cmocka_unit_test(test_clear),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
