/* The herald.v1 WebSocket protocol (DESIGN.md, docs/protocol.md): what a
 * client may send, the error code it gets for each kind of bad message, and
 * the replies it receives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "util/utf8.h"

/* ---- UTF-8 ---- */

struct utf8_case {
  const char *name;
  const char *bytes;
  size_t len; /* 0: strlen(bytes) */
  bool valid;
};

static const struct utf8_case utf8_cases[] = {
    {"empty", "", 0, true},
    {"ascii", "hello, world {}[]\"\\", 0, true},
    {"NUL byte", "a\0b", 3, true},
    {"DEL", "\x7f", 0, true},
    /* 2 bytes */
    {"U+0080", "\xc2\x80", 0, true},
    {"e-acute", "caf\xc3\xa9", 0, true},
    {"U+07FF", "\xdf\xbf", 0, true},
    /* 3 bytes */
    {"U+0800", "\xe0\xa0\x80", 0, true},
    {"euro", "\xe2\x82\xac", 0, true},
    {"U+D7FF", "\xed\x9f\xbf", 0, true},
    {"U+E000", "\xee\x80\x80", 0, true},
    {"U+FFFD", "\xef\xbf\xbd", 0, true},
    {"U+FFFF", "\xef\xbf\xbf", 0, true},
    /* 4 bytes */
    {"U+10000", "\xf0\x90\x80\x80", 0, true},
    {"emoji", "\xf0\x9f\x98\x80", 0, true},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", 0, true},
    {"mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 0, true},
    /* overlong */
    {"overlong NUL C0 80", "\xc0\x80", 0, false},
    {"overlong C1 BF", "\xc1\xbf", 0, false},
    {"overlong E0 80 80", "\xe0\x80\x80", 0, false},
    {"overlong E0 9F BF", "\xe0\x9f\xbf", 0, false},
    {"overlong F0 80 80 80", "\xf0\x80\x80\x80", 0, false},
    {"overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", 0, false},
    /* surrogates */
    {"surrogate ED A0 80", "\xed\xa0\x80", 0, false},
    {"surrogate ED BF BF", "\xed\xbf\xbf", 0, false},
    {"surrogate pair", "\xed\xa0\xbd\xed\xb8\x80", 0, false},
    /* beyond U+10FFFF */
    {"F4 90 80 80", "\xf4\x90\x80\x80", 0, false},
    {"F5", "\xf5\x80\x80\x80", 0, false},
    {"F7 BF BF BF", "\xf7\xbf\xbf\xbf", 0, false},
    {"F8 5 bytes", "\xf8\x88\x80\x80\x80", 0, false},
    {"FC 6 bytes", "\xfc\x84\x80\x80\x80\x80", 0, false},
    {"FE", "\xfe", 0, false},
    {"FF", "\xff", 0, false},
    /* truncated */
    {"C3 at end", "\xc3", 0, false},
    {"a C3 at end", "a\xc3", 0, false},
    {"E2 82 at end", "\xe2\x82", 0, false},
    {"F0 9F 98 at end", "\xf0\x9f\x98", 0, false},
    {"F0 at end", "\xf0", 0, false},
    {"cut by len", "\xc3\xa9", 1, false},
    {"cut by len 4", "\xf0\x9f\x98\x80", 3, false},
    {"E2 82 then ascii", "\xe2\x82" "a", 0, false},
    {"C3 then ascii", "\xc3" "a", 0, false},
    {"F0 9F then ascii", "\xf0\x9f" "ab", 0, false},
    /* lone or stray continuation bytes */
    {"lone 80", "\x80", 0, false},
    {"lone BF", "\xbf", 0, false},
    {"a 80 b", "a\x80" "b", 0, false},
    {"two continuations after 2-byte", "\xc3\xa9\xa9", 0, false},
    {"E2 28 A1", "\xe2\x28\xa1", 0, false},
    {"E2 82 28", "\xe2\x82\x28", 0, false},
    {"F0 28 8C BC", "\xf0\x28\x8c\xbc", 0, false},
    {"C3 C3", "\xc3\xc3", 0, false},
};

static void test_utf8_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
    const struct utf8_case *c = &utf8_cases[i];
    size_t len = c->len ? c->len : strlen(c->bytes);
    bool v = util_utf8_valid((const unsigned char *)c->bytes, len);
    if(v != c->valid)
      fail_msg("util_utf8_valid(%s) = %d, want %d", c->name, v, c->valid);
  }
}

/* Fed in two pieces, cut at every place (sequences split between the
 * pieces included), each case gets the verdict it gets whole; an invalid
 * one is caught in the piece that holds its first bad byte. */
static void test_utf8_feed_split(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
    const struct utf8_case *c = &utf8_cases[i];
    const unsigned char *b = (const unsigned char *)c->bytes;
    size_t len = c->len ? c->len : strlen(c->bytes);
    for(size_t cut = 0; cut <= len; cut++) {
      struct util_utf8 u = {0};
      int r1 = util_utf8_feed(&u, b, cut);
      if(r1 == 0 && u.need == 0 && !util_utf8_valid(b, cut))
        fail_msg("%s cut at %zu: first piece invalid but not refused", c->name, cut);
      int r2 = r1 ? -1 : util_utf8_feed(&u, b + cut, len - cut);
      bool v = r1 == 0 && r2 == 0 && u.need == 0;
      if(v != c->valid)
        fail_msg("%s cut at %zu: valid %d, want %d", c->name, cut, v, c->valid);
    }
  }
}

/* Fails at the first bad byte, not at the end: "\xff" then valid text is
 * refused in the first piece; a 3-byte sequence open across three pieces
 * stays open until its last byte. */
static void test_utf8_feed_fails_fast(void **state)
{
  (void)state;
  struct util_utf8 u = {0};
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"ab\xff", 3), -1);
  memset(&u, 0, sizeof(u));
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\xe2", 1), 0);
  assert_int_equal(u.need, 2);
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\x82", 1), 0);
  assert_int_equal(u.need, 1);
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\xac", 1), 0); /* U+20AC */
  assert_int_equal(u.need, 0);
  memset(&u, 0, sizeof(u));
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\xed", 1), 0);
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\xa0", 1), -1); /* a surrogate */
  memset(&u, 0, sizeof(u));
  assert_int_equal(util_utf8_feed(&u, (const unsigned char *)"\xf4\x90", 2), -1); /* > U+10FFFF */
}

/* Every code point encodes to valid UTF-8, every surrogate does not. */
static size_t encode(unsigned cp, unsigned char *out)
{
  if(cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if(cp < 0x800) {
    out[0] = (unsigned char)(0xc0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if(cp < 0x10000) {
    out[0] = (unsigned char)(0xe0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = (unsigned char)(0xf0 | cp >> 18);
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
  out[3] = (unsigned char)(0x80 | (cp & 0x3f));
  return 4;
}

static void test_utf8_all_code_points(void **state)
{
  (void)state;
  unsigned char buf[8];
  for(unsigned cp = 0; cp <= 0x10ffff; cp++) {
    size_t n = encode(cp, buf);
    bool want = cp < 0xd800 || cp > 0xdfff;
    if(util_utf8_valid(buf, n) != want)
      fail_msg("U+%04X: util_utf8_valid = %d", cp, !want);
    if(n > 1 && util_utf8_valid(buf, n - 1))
      fail_msg("U+%04X cut short is valid", cp);
  }
  /* 0x110000 and up, written the 4-byte way */
  for(unsigned cp = 0x110000; cp < 0x200000; cp += 0x1111)
    assert_false(util_utf8_valid(buf, encode(cp, buf)));
}

/* ---- parsing ---- */

static int parse(const char *text, struct gw_msg *msg, struct gw_proto_err *err)
{
  return gw_proto_parse(text, strlen(text), msg, err);
}

/* The error reply for a failed parse can always be built and sent. */
static void check_error_reply(const struct gw_proto_err *err)
{
  struct sub_frame *f = gw_reply_error(err->has_id ? err->id : NULL, err->code, err->message);
  if(!f)
    fail_msg("no error reply for code %s, message \"%s\"", err->code, err->message);
  json_t *j = json_loadb(sub_frame_payload(f), f->payload_len, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "op")), "error");
  assert_string_equal(json_string_value(json_object_get(j, "code")), err->code);
  assert_string_equal(json_string_value(json_object_get(j, "message")), err->message);
  if(err->has_id)
    assert_string_equal(json_string_value(json_object_get(j, "id")), err->id);
  else
    assert_null(json_object_get(j, "id"));
  json_decref(j);
  sub_frame_unref(f);
}

static void test_parse_ops(void **state)
{
  (void)state;
  struct gw_msg m;
  struct gw_proto_err e;

  assert_int_equal(parse("{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"orders.*\"}", &m, &e), 0);
  assert_int_equal(m.op, GW_OP_SUBSCRIBE);
  assert_string_equal(m.id, "1");
  assert_string_equal(m.topic, "orders.*");
  assert_int_equal(m.topic_len, 8);
  assert_null(m.data);
  gw_msg_clear(&m);

  assert_int_equal(parse("{\"op\":\"subscribe\",\"id\":\"s\",\"topic\":\"orders.>\"}", &m, &e), 0);
  assert_string_equal(m.topic, "orders.>");
  gw_msg_clear(&m);

  assert_int_equal(parse("{\"topic\":\"orders.*\",\"id\":\"2\",\"op\":\"unsubscribe\"}", &m, &e),
                   0);
  assert_int_equal(m.op, GW_OP_UNSUBSCRIBE);
  assert_string_equal(m.id, "2");
  assert_string_equal(m.topic, "orders.*");
  assert_null(m.data);
  gw_msg_clear(&m);

  assert_int_equal(
      parse("{\"op\":\"publish\",\"id\":\"3\",\"topic\":\"chat.lobby\",\"data\":{\"text\":\"hi\"}}",
            &m, &e),
      0);
  assert_int_equal(m.op, GW_OP_PUBLISH);
  assert_string_equal(m.id, "3");
  assert_string_equal(m.topic, "chat.lobby");
  assert_int_equal(m.topic_len, 10);
  assert_non_null(m.data);
  assert_string_equal(m.data, "{\"text\":\"hi\"}");
  assert_int_equal(m.data_len, strlen(m.data));
  gw_msg_clear(&m);
  assert_null(m.data);
  gw_msg_clear(&m); /* twice is fine */

  assert_int_equal(parse("{\"op\":\"ping\",\"id\":\"4\"}", &m, &e), 0);
  assert_int_equal(m.op, GW_OP_PING);
  assert_string_equal(m.id, "4");
  assert_int_equal(m.topic_len, 0);
  assert_null(m.data);
  gw_msg_clear(&m);

  /* surrounding white space, extra fields and a unicode id are fine */
  assert_int_equal(
      parse(" \n{ \"op\" : \"ping\" , \"id\" : \"caf\xc3\xa9-\\u00e9\", \"extra\": [1] }\n", &m,
            &e),
      0);
  assert_string_equal(m.id, "caf\xc3\xa9-\xc3\xa9");
  gw_msg_clear(&m);
}

/* A publish's data is the publisher's own text of it, minified, whatever
 * JSON value it is: numbers and escapes as sent. */
static void test_parse_data(void **state)
{
  (void)state;
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"{ \"a\" : 1 ,\n \"b\" : [ 1 , 2 , { } ] }", "{\"a\":1,\"b\":[1,2,{}]}"},
      {"{\"z\":1,\"a\":2}", "{\"z\":1,\"a\":2}"}, /* order kept */
      {"null", "null"},
      {"true", "true"},
      {" 42 ", "42"},
      {"-1.5", "-1.5"},
      {"\"text\"", "\"text\""},
      {"\"caf\\u00e9 \\\"q\\\"\"", "\"caf\\u00e9 \\\"q\\\"\""}, /* escapes kept */
      {"[0.1, 1.5e300, 1E-7, -0, 18446744073709551615]", "[0.1,1.5e300,1E-7,-0,18446744073709551615]"},
      {"{\"x\" : 1.0}", "{\"x\":1.0}"},
      {"[ ]", "[]"},
      {"{}", "{}"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char text[256];
    snprintf(text, sizeof(text), "{\"op\":\"publish\",\"id\":\"p\",\"topic\":\"t\",\"data\":%s}",
             cases[i].in);
    struct gw_msg m;
    struct gw_proto_err e;
    if(parse(text, &m, &e))
      fail_msg("%s: %s %s", text, e.code, e.message);
    assert_non_null(m.data);
    assert_string_equal(m.data, cases[i].out);
    assert_int_equal(m.data_len, strlen(cases[i].out));
    gw_msg_clear(&m);
  }
}

struct err_case {
  const char *text;
  size_t len; /* 0: strlen */
  const char *code;
  const char *id; /* NULL: no id to echo */
  const char *in_message; /* a piece of the message, or NULL */
};

static const struct err_case err_cases[] = {
    /* not UTF-8: nothing can be read */
    {"{\"op\":\"ping\",\"id\":\"\xff\"}", 0, "invalid_utf8", NULL, "UTF-8"},
    {"{\"op\":\"ping\",\"id\":\"1\",\"x\":\"\xc0\x80\"}", 0, "invalid_utf8", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\",\"x\":\"\xed\xa0\x80\"}", 0, "invalid_utf8", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\"}\xc3", 0, "invalid_utf8", NULL, NULL},
    /* not JSON */
    {"", 0, "invalid_json", NULL, "JSON"},
    {"{", 0, "invalid_json", NULL, "JSON"},
    {"ping", 0, "invalid_json", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\"", 0, "invalid_json", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\"}{}", 0, "invalid_json", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\",}", 0, "invalid_json", NULL, NULL},
    {"{'op':'ping'}", 0, "invalid_json", NULL, NULL},
    {"42", 0, "invalid_json", NULL, NULL},
    {"\"ping\"", 0, "invalid_json", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"a\\u0000b\"}", 0, "invalid_json", NULL, NULL},
    {"{\"op\":\"ping\",\"id\":\"1\"}\0", 23, "invalid_json", NULL, NULL}, /* a NUL after it */
    /* not a message */
    {"[]", 0, "invalid_message", NULL, "object"},
    {"[{\"op\":\"ping\",\"id\":\"1\"}]", 0, "invalid_message", NULL, "object"},
    {"{}", 0, "invalid_message", NULL, "op"},
    {"{\"id\":\"9\"}", 0, "invalid_message", "9", "op"},
    {"{\"op\":1,\"id\":\"9\"}", 0, "invalid_message", "9", "op"},
    {"{\"op\":null,\"id\":\"9\"}", 0, "invalid_message", "9", "op"},
    {"{\"op\":\"ping\"}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"subscribe\",\"topic\":\"a\"}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"ping\",\"id\":1}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"ping\",\"id\":null}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"ping\",\"id\":{\"x\":\"1\"}}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"subscribe\",\"id\":\"5\"}", 0, "invalid_message", "5", "topic"},
    {"{\"op\":\"unsubscribe\",\"id\":\"5\"}", 0, "invalid_message", "5", "topic"},
    {"{\"op\":\"publish\",\"id\":\"5\",\"data\":{}}", 0, "invalid_message", "5", "topic"},
    {"{\"op\":\"subscribe\",\"id\":\"5\",\"topic\":7}", 0, "invalid_message", "5", "topic"},
    {"{\"op\":\"subscribe\",\"id\":\"5\",\"topic\":[\"a\"]}", 0, "invalid_message", "5", "topic"},
    {"{\"op\":\"publish\",\"id\":\"6\",\"topic\":\"a.b\"}", 0, "invalid_message", "6", "data"},
    /* auth: a token of 1 to 8192 bytes */
    {"{\"op\":\"auth\",\"id\":\"a\"}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":\"\"}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":7}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":null}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":true}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":[\"x.y.z\"]}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"token\":{\"t\":\"x.y.z\"}}", 0, "invalid_message", "a",
     "token"},
    {"{\"op\":\"auth\",\"id\":\"a\",\"Token\":\"x.y.z\"}", 0, "invalid_message", "a", "token"},
    {"{\"op\":\"auth\",\"token\":\"x.y.z\"}", 0, "invalid_message", NULL, "id"},
    {"{\"op\":\"auth\",\"id\":5,\"token\":\"x.y.z\"}", 0, "invalid_message", NULL, "id"},
    /* unknown op, the id echoed when there is one */
    {"{\"op\":\"dance\",\"id\":\"7\"}", 0, "unknown_op", "7", "dance"},
    {"{\"op\":\"dance\"}", 0, "unknown_op", NULL, "dance"},
    {"{\"op\":\"PING\",\"id\":\"7\"}", 0, "unknown_op", "7", "PING"},
    {"{\"op\":\"\",\"id\":\"7\"}", 0, "unknown_op", "7", "subscribe"},
    {"{\"op\":\"ping \",\"id\":\"7\"}", 0, "unknown_op", "7", NULL},
    {"{\"op\":\"subscribeeeeeeeeeeeeeeeeeeeeeeeee\",\"id\":\"7\"}", 0, "unknown_op", "7", NULL},
    {"{\"op\":\"event\",\"id\":\"7\"}", 0, "unknown_op", "7", "event"},
    {"{\"op\":\"ack\",\"id\":\"7\"}", 0, "unknown_op", "7", NULL},
    /* bad topics */
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"a.>.b\"}", 0, "invalid_topic", "8", "last"},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\">.a\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"a*\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"\"}", 0, "invalid_topic", "8", "empty"},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"a..b\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"a b\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"subscribe\",\"id\":\"8\",\"topic\":\"caf\xc3\xa9\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"unsubscribe\",\"id\":\"8\",\"topic\":\"a.b>\"}", 0, "invalid_topic", "8", NULL},
    {"{\"op\":\"publish\",\"id\":\"8\",\"topic\":\"a.*\",\"data\":1}", 0, "invalid_topic", "8",
     "wildcard"},
    {"{\"op\":\"publish\",\"id\":\"8\",\"topic\":\">\",\"data\":1}", 0, "invalid_topic", "8",
     "wildcard"},
    {"{\"op\":\"publish\",\"id\":\"8\",\"topic\":\"a.>\"}", 0, "invalid_topic", "8", NULL},
};

static void check_err_case(const struct err_case *c, size_t len)
{
  struct gw_msg m;
  struct gw_proto_err e;
  memset(&m, 0x5a, sizeof(m));
  memset(&e, 0x5a, sizeof(e));
  if(gw_proto_parse(c->text, len, &m, &e) != -1)
    fail_msg("parsed, but should have failed: %.*s", (int)len, c->text);
  assert_null(m.data); /* nothing to free */
  assert_null(m.token);
  if(!e.code || strcmp(e.code, c->code) != 0)
    fail_msg("%.*s: code %s, want %s", (int)len, c->text, e.code ? e.code : "(null)", c->code);
  if(!e.message[0] || strlen(e.message) >= sizeof(e.message))
    fail_msg("%.*s: empty or unterminated message", (int)len, c->text);
  if(c->in_message && !strstr(e.message, c->in_message))
    fail_msg("%.*s: message \"%s\" does not mention \"%s\"", (int)len, c->text, e.message,
             c->in_message);
  if(c->id) {
    if(!e.has_id || strcmp(e.id, c->id) != 0)
      fail_msg("%.*s: id not echoed", (int)len, c->text);
  }
  else if(e.has_id)
    fail_msg("%.*s: has_id set, want none", (int)len, c->text);
  check_error_reply(&e);
}

static void test_parse_errors(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
    const struct err_case *c = &err_cases[i];
    check_err_case(c, c->len ? c->len : strlen(c->text));
  }
}

/* Ids: up to 128 bytes, echoed as sent; longer ones are refused unechoed. */
static void test_ids(void **state)
{
  (void)state;
  char id[GW_MSG_ID_MAX + 2];
  char text[512];
  struct gw_msg m;
  struct gw_proto_err e;

  memset(id, 'i', sizeof(id));
  id[GW_MSG_ID_MAX] = '\0';
  snprintf(text, sizeof(text), "{\"op\":\"ping\",\"id\":\"%s\"}", id);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_string_equal(m.id, id);
  gw_msg_clear(&m);

  /* 128 bytes: echoed in errors too */
  snprintf(text, sizeof(text), "{\"op\":\"nope\",\"id\":\"%s\"}", id);
  assert_int_equal(parse(text, &m, &e), -1);
  assert_string_equal(e.code, "unknown_op");
  assert_true(e.has_id);
  assert_string_equal(e.id, id);
  check_error_reply(&e);

  /* 129 bytes */
  id[GW_MSG_ID_MAX] = 'i';
  id[GW_MSG_ID_MAX + 1] = '\0';
  snprintf(text, sizeof(text), "{\"op\":\"ping\",\"id\":\"%s\"}", id);
  assert_int_equal(parse(text, &m, &e), -1);
  assert_string_equal(e.code, "invalid_message");
  assert_non_null(strstr(e.message, "id"));
  assert_non_null(strstr(e.message, "128"));
  assert_false(e.has_id);
  check_error_reply(&e);

  snprintf(text, sizeof(text), "{\"op\":\"nope\",\"id\":\"%s\"}", id);
  assert_int_equal(parse(text, &m, &e), -1);
  assert_string_equal(e.code, "unknown_op");
  assert_false(e.has_id);

  /* 128 bytes of multi-byte characters count as bytes: 43 x 3 = 129 */
  char mb[3 * 43 + 1];
  for(int i = 0; i < 43; i++)
    memcpy(mb + 3 * i, "\xe2\x82\xac", 3);
  mb[3 * 43] = '\0';
  snprintf(text, sizeof(text), "{\"op\":\"ping\",\"id\":\"%s\"}", mb);
  assert_int_equal(parse(text, &m, &e), -1);
  assert_string_equal(e.code, "invalid_message");
  mb[3 * 42] = '\0'; /* 126 bytes */
  snprintf(text, sizeof(text), "{\"op\":\"ping\",\"id\":\"%s\"}", mb);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_string_equal(m.id, mb);
  gw_msg_clear(&m);

  /* the empty id is an id */
  assert_int_equal(parse("{\"op\":\"ping\",\"id\":\"\"}", &m, &e), 0);
  assert_string_equal(m.id, "");
  gw_msg_clear(&m);
  assert_int_equal(parse("{\"op\":\"dance\",\"id\":\"\"}", &m, &e), -1);
  assert_true(e.has_id);
  assert_string_equal(e.id, "");

  /* escapes in the id come back decoded, and the reply re-encodes them */
  assert_int_equal(parse("{\"op\":\"dance\",\"id\":\"a\\\"b\\\\c\\n\"}", &m, &e), -1);
  assert_true(e.has_id);
  assert_string_equal(e.id, "a\"b\\c\n");
  check_error_reply(&e);

  /* a later error in a message still echoes its id */
  assert_int_equal(parse("{\"op\":\"publish\",\"id\":\"x-1\",\"topic\":\"a.*\"}", &m, &e), -1);
  assert_string_equal(e.code, "invalid_topic");
  assert_true(e.has_id);
  assert_string_equal(e.id, "x-1");
}

static void test_topic_lengths(void **state)
{
  (void)state;
  char topic[SUB_TOPIC_MAX + 2];
  char text[600];
  struct gw_msg m;
  struct gw_proto_err e;

  memset(topic, 't', sizeof(topic));
  topic[SUB_TOPIC_MAX] = '\0';
  snprintf(text, sizeof(text), "{\"op\":\"publish\",\"id\":\"1\",\"topic\":\"%s\",\"data\":1}",
           topic);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_int_equal(m.topic_len, SUB_TOPIC_MAX);
  assert_string_equal(m.topic, topic);
  gw_msg_clear(&m);

  topic[SUB_TOPIC_MAX] = 't';
  topic[SUB_TOPIC_MAX + 1] = '\0';
  const char *ops[] = {"publish", "subscribe", "unsubscribe"};
  for(size_t i = 0; i < 3; i++) {
    snprintf(text, sizeof(text), "{\"op\":\"%s\",\"id\":\"1\",\"topic\":\"%s\",\"data\":1}",
             ops[i], topic);
    assert_int_equal(parse(text, &m, &e), -1);
    assert_string_equal(e.code, "invalid_topic");
    assert_non_null(strstr(e.message, "255"));
    assert_true(e.has_id);
    check_error_reply(&e);
  }

  /* a 255-byte pattern */
  memset(topic, 'p', sizeof(topic));
  memcpy(topic + SUB_TOPIC_MAX - 2, ".>", 3);
  snprintf(text, sizeof(text), "{\"op\":\"subscribe\",\"id\":\"1\",\"topic\":\"%s\"}", topic);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_int_equal(m.topic_len, SUB_TOPIC_MAX);
  gw_msg_clear(&m);
}

/* The auth op: its token is kept as sent (decoded from JSON), up to 8192
 * bytes, in a buffer gw_msg_clear frees. */
static void test_parse_auth(void **state)
{
  (void)state;
  struct gw_msg m;
  struct gw_proto_err e;

  assert_int_equal(parse("{\"op\":\"auth\",\"id\":\"1\",\"token\":\"x.y.z\"}", &m, &e), 0);
  assert_int_equal(m.op, GW_OP_AUTH);
  assert_string_equal(m.id, "1");
  assert_non_null(m.token);
  assert_string_equal(m.token, "x.y.z");
  assert_int_equal(m.token_len, 5);
  assert_int_equal(m.topic_len, 0);
  assert_null(m.data);
  gw_msg_clear(&m);
  assert_null(m.token);
  gw_msg_clear(&m); /* twice is fine */

  /* escapes are decoded; other fields, a topic included, are ignored */
  assert_int_equal(parse("{\"token\":\"a\\/b.c\\u002dd.e\",\"topic\":\"x.*\",\"id\":\"2\","
                         "\"op\":\"auth\",\"data\":1}",
                         &m, &e),
                   0);
  assert_int_equal(m.op, GW_OP_AUTH);
  assert_string_equal(m.token, "a/b.c-d.e");
  assert_int_equal(m.token_len, 9);
  assert_int_equal(m.topic_len, 0);
  assert_null(m.data);
  gw_msg_clear(&m);

  /* a NUL inside never reaches verification: the JSON is refused */
  assert_int_equal(parse("{\"op\":\"auth\",\"id\":\"3\",\"token\":\"a\\u0000b\"}", &m, &e), -1);
  assert_string_equal(e.code, "invalid_json");
  assert_null(m.token);

  /* a token field on another op is not read */
  assert_int_equal(parse("{\"op\":\"ping\",\"id\":\"4\",\"token\":\"x.y.z\"}", &m, &e), 0);
  assert_null(m.token);
  assert_int_equal(m.token_len, 0);
  gw_msg_clear(&m);

  /* 8192 bytes pass, 8193 do not, counted in bytes not characters */
  size_t cap = UTIL_TOKEN_MAX + 128;
  char *tok = malloc(UTIL_TOKEN_MAX + 2), *text = malloc(cap);
  assert_non_null(tok);
  assert_non_null(text);
  memset(tok, 'T', UTIL_TOKEN_MAX);
  tok[UTIL_TOKEN_MAX] = '\0';
  snprintf(text, cap, "{\"op\":\"auth\",\"id\":\"5\",\"token\":\"%s\"}", tok);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_int_equal(m.token_len, UTIL_TOKEN_MAX);
  assert_memory_equal(m.token, tok, UTIL_TOKEN_MAX + 1);
  gw_msg_clear(&m);

  tok[UTIL_TOKEN_MAX] = 'T';
  tok[UTIL_TOKEN_MAX + 1] = '\0';
  snprintf(text, cap, "{\"op\":\"auth\",\"id\":\"6\",\"token\":\"%s\"}", tok);
  memset(&m, 0x5a, sizeof(m));
  assert_int_equal(parse(text, &m, &e), -1);
  assert_null(m.token);
  /* a string too long to be a token is an invalid token (not an
   * invalid_message: the message is well formed) */
  assert_string_equal(e.code, "invalid_token");
  assert_non_null(strstr(e.message, "8192"));
  assert_null(strstr(e.message, "TTTT")); /* the token is never echoed */
  assert_true(e.has_id);
  assert_string_equal(e.id, "6");
  check_error_reply(&e);

  /* 2730 three-byte characters (8190 bytes) pass, one more (8193) does not */
  for(size_t i = 0; i < 2731; i++)
    memcpy(tok + 3 * i, "\xe2\x82\xac", 3);
  tok[3 * 2730] = '\0';
  snprintf(text, cap, "{\"op\":\"auth\",\"id\":\"7\",\"token\":\"%s\"}", tok);
  assert_int_equal(parse(text, &m, &e), 0);
  assert_int_equal(m.token_len, 3 * 2730);
  gw_msg_clear(&m);
  tok[3 * 2730] = '\xe2';
  tok[3 * 2731] = '\0';
  snprintf(text, cap, "{\"op\":\"auth\",\"id\":\"7\",\"token\":\"%s\"}", tok);
  assert_int_equal(parse(text, &m, &e), -1);
  assert_string_equal(e.code, "invalid_token");
  assert_null(m.token);

  /* escapes count as what they decode to: 8192 "\u0041" is 8192 bytes */
  size_t bigcap = 6 * UTIL_TOKEN_MAX + 128;
  char *big = malloc(bigcap);
  assert_non_null(big);
  size_t o = (size_t)snprintf(big, bigcap, "{\"op\":\"auth\",\"id\":\"8\",\"token\":\"");
  for(size_t i = 0; i < UTIL_TOKEN_MAX; i++) {
    memcpy(big + o, "\\u0041", 6);
    o += 6;
  }
  snprintf(big + o, bigcap - o, "\"}");
  assert_int_equal(parse(big, &m, &e), 0);
  assert_int_equal(m.token_len, UTIL_TOKEN_MAX);
  assert_int_equal(m.token[0], 'A');
  gw_msg_clear(&m);
  free(big);
  free(text);
  free(tok);
}

/* Only the given length is parsed, the buffer need not be terminated. */
static void test_parse_length(void **state)
{
  (void)state;
  const char *text = "{\"op\":\"ping\",\"id\":\"1\"}GARBAGE";
  struct gw_msg m;
  struct gw_proto_err e;
  assert_int_equal(gw_proto_parse(text, 22, &m, &e), 0);
  assert_int_equal(m.op, GW_OP_PING);
  gw_msg_clear(&m);
  assert_int_equal(gw_proto_parse(text, 21, &m, &e), -1);
  assert_string_equal(e.code, "invalid_json");
}

/* ---- replies ---- */

static json_t *reply_json(struct sub_frame *f)
{
  assert_non_null(f);
  /* one unmasked FIN text frame */
  assert_int_equal(f->wire[0], 0x81);
  assert_true(f->payload_len < 126);
  assert_int_equal(f->wire[1], f->payload_len);
  assert_int_equal(f->len, f->payload_len + 2);
  json_error_t jerr;
  json_t *j = json_loadb(sub_frame_payload(f), f->payload_len, JSON_REJECT_DUPLICATES, &jerr);
  if(!j)
    fail_msg("reply is not JSON: %s", jerr.text);
  sub_frame_unref(f);
  return j;
}

static void assert_reply(struct sub_frame *f, const char *want_text)
{
  json_t *got = reply_json(f);
  json_t *want = json_loads(want_text, 0, NULL);
  assert_non_null(want);
  if(!json_equal(got, want)) {
    char *s = json_dumps(got, JSON_COMPACT);
    print_error("reply %s, want %s\n", s, want_text);
    free(s);
    fail();
  }
  json_decref(got);
  json_decref(want);
}

static void test_replies(void **state)
{
  (void)state;
  assert_reply(gw_reply_ack("1"), "{\"op\":\"ack\",\"id\":\"1\"}");
  assert_reply(gw_reply_ack(""), "{\"op\":\"ack\",\"id\":\"\"}");
  assert_reply(gw_reply_ack("q\"\\\n\xc3\xa9"), "{\"op\":\"ack\",\"id\":\"q\\\"\\\\\\n\\u00e9\"}");
  struct sub_published p1 = {.id = "0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b", .seq = 7};
  assert_reply(gw_reply_ack_publish("3", &p1),
               "{\"op\":\"ack\",\"id\":\"3\",\"event\":"
               "{\"id\":\"0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b\",\"seq\":7}}");
  struct sub_published p2 = {.id = "e", .seq = 9007199254740993ull};
  assert_reply(gw_reply_ack_publish("x", &p2),
               "{\"op\":\"ack\",\"id\":\"x\",\"event\":{\"id\":\"e\",\"seq\":9007199254740993}}");
  struct sub_published p3 = {.id = "e", .seq = 2, .offset = 41, .epoch = "k3j9x0aa"};
  assert_reply(gw_reply_ack_publish("y", &p3),
               "{\"op\":\"ack\",\"id\":\"y\",\"event\":{\"id\":\"e\",\"seq\":2,"
               "\"offset\":41,\"cursor\":\"k3j9x0aa:41\"}}");
  assert_reply(gw_reply_pong("4"), "{\"op\":\"pong\",\"id\":\"4\"}");
  assert_reply(gw_reply_error("5", "invalid_topic", "'>' must be the last segment"),
               "{\"op\":\"error\",\"id\":\"5\",\"code\":\"invalid_topic\","
               "\"message\":\"'>' must be the last segment\"}");
  assert_reply(gw_reply_error(NULL, "invalid_json", "message is not valid JSON"),
               "{\"op\":\"error\",\"code\":\"invalid_json\","
               "\"message\":\"message is not valid JSON\"}");

  /* no id means no "id" key at all, not an empty or null one */
  json_t *j = reply_json(gw_reply_error(NULL, "c", "m"));
  assert_int_equal(json_object_size(j), 3);
  assert_null(json_object_get(j, "id"));
  json_decref(j);
}

/* What the server answers is what it would accept back as JSON, and the
 * ack frame is compact (no spaces: every byte is sent to every client). */
static void test_reply_compact(void **state)
{
  (void)state;
  struct sub_frame *f = gw_reply_ack("1");
  assert_non_null(f);
  assert_int_equal(f->payload_len, strlen("{\"op\":\"ack\",\"id\":\"1\"}"));
  assert_null(memchr(sub_frame_payload(f), ' ', f->payload_len));
  sub_frame_unref(f);
}

/* A round trip: the parse error of a message becomes the reply the client
 * reads, with the same code and id. */
static void test_error_round_trip(void **state)
{
  (void)state;
  struct gw_msg m;
  struct gw_proto_err e;
  assert_int_equal(parse("{\"op\":\"subscribe\",\"id\":\"42\",\"topic\":\"a.>.b\"}", &m, &e), -1);
  json_t *j = reply_json(gw_reply_error(e.has_id ? e.id : NULL, e.code, e.message));
  assert_string_equal(json_string_value(json_object_get(j, "op")), "error");
  assert_string_equal(json_string_value(json_object_get(j, "id")), "42");
  assert_string_equal(json_string_value(json_object_get(j, "code")), "invalid_topic");
  assert_non_null(strstr(json_string_value(json_object_get(j, "message")), ">"));
  json_decref(j);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_table),     cmocka_unit_test(test_utf8_all_code_points),
      cmocka_unit_test(test_utf8_feed_split), cmocka_unit_test(test_utf8_feed_fails_fast),
      cmocka_unit_test(test_parse_ops),      cmocka_unit_test(test_parse_data),
      cmocka_unit_test(test_parse_errors),   cmocka_unit_test(test_ids),
      cmocka_unit_test(test_topic_lengths),  cmocka_unit_test(test_parse_length),
      cmocka_unit_test(test_replies),        cmocka_unit_test(test_reply_compact),
      cmocka_unit_test(test_error_round_trip),
      cmocka_unit_test(test_parse_auth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
