/* The target guard: a webhook URL must not reach the gateway's own host,
 * its private network or the cloud metadata service unless an operator
 * allows the range. Literal addresses only; nothing is connected to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "guard.h"

/* Fills ss with the literal address text (IPv6 when it holds a ':'). */
static const struct sockaddr *sa_of(const char *text, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof(*ss));
  if(strchr(text, ':')) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(443);
    if(inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
      fail_msg("bad test address \"%s\"", text);
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(443);
    if(inet_pton(AF_INET, text, &in->sin_addr) != 1)
      fail_msg("bad test address \"%s\"", text);
  }
  return (const struct sockaddr *)ss;
}

static struct hook_cidr cidr_ok(const char *text)
{
  struct hook_cidr c;
  const char *why = NULL;
  if(hook_cidr_parse(text, &c, &why) != 0)
    fail_msg("hook_cidr_parse(\"%s\") failed: %s", text, why);
  return c;
}

struct class_case {
  const char *addr;
  const char *class; /* NULL: public */
};

#define PUBLIC NULL

/* Each refused block with the addresses just outside and at both of its ends. */
static const struct class_case class_cases[] = {
    /* IPv4 */
    {"0.0.0.0", "unspecified"},
    {"0.255.255.255", "unspecified"},
    {"1.0.0.0", PUBLIC},
    {"9.255.255.255", PUBLIC},
    {"10.0.0.0", "private"},
    {"10.255.255.255", "private"},
    {"11.0.0.0", PUBLIC},
    {"100.63.255.255", PUBLIC},
    {"100.64.0.0", "cgnat"},
    {"100.127.255.255", "cgnat"},
    {"100.128.0.0", PUBLIC},
    {"126.255.255.255", PUBLIC},
    {"127.0.0.0", "loopback"},
    {"127.0.0.1", "loopback"},
    {"127.255.255.255", "loopback"},
    {"128.0.0.0", PUBLIC},
    {"169.253.255.255", PUBLIC},
    {"169.254.0.0", "link_local"},
    {"169.254.169.254", "link_local"}, /* cloud metadata service */
    {"169.254.255.255", "link_local"},
    {"169.255.0.0", PUBLIC},
    {"172.15.255.255", PUBLIC},
    {"172.16.0.0", "private"},
    {"172.31.255.255", "private"},
    {"172.32.0.0", PUBLIC},
    {"191.255.255.255", PUBLIC},
    {"192.0.0.0", "reserved"},
    {"192.0.0.255", "reserved"},
    {"192.0.1.0", PUBLIC},
    {"192.0.1.255", PUBLIC},
    {"192.0.2.0", "documentation"},
    {"192.0.2.255", "documentation"},
    {"192.0.3.0", PUBLIC},
    {"192.167.255.255", PUBLIC},
    {"192.168.0.0", "private"},
    {"192.168.255.255", "private"},
    {"192.169.0.0", PUBLIC},
    {"198.17.255.255", PUBLIC},
    {"198.18.0.0", "reserved"},
    {"198.19.255.255", "reserved"},
    {"198.20.0.0", PUBLIC},
    {"198.51.99.255", PUBLIC},
    {"198.51.100.0", "documentation"},
    {"198.51.100.255", "documentation"},
    {"198.51.101.0", PUBLIC},
    {"203.0.112.255", PUBLIC},
    {"203.0.113.0", "documentation"},
    {"203.0.113.255", "documentation"},
    {"203.0.114.0", PUBLIC},
    {"223.255.255.255", PUBLIC},
    {"224.0.0.0", "multicast"},
    {"239.255.255.255", "multicast"},
    {"240.0.0.0", "reserved"},
    {"255.255.255.254", "reserved"},
    {"255.255.255.255", "broadcast"},
    {"8.8.8.8", PUBLIC},
    {"1.1.1.1", PUBLIC},
    {"93.184.215.14", PUBLIC},
    /* IPv6 */
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"::2", "reserved"},       /* IPv4-compatible */
    {"::8.8.8.8", "reserved"}, /* IPv4-compatible */
    {"::ffff:ffff", "reserved"},
    {"::1:0:0", "reserved"},
    {"::fffe:ffff:ffff", "reserved"},
    {"::ffff:0.0.0.0", "ipv4_mapped"},
    {"::ffff:8.8.8.8", "ipv4_mapped"}, /* whatever the embedded address */
    {"::ffff:127.0.0.1", "ipv4_mapped"},
    {"::ffff:255.255.255.255", "ipv4_mapped"},
    {"::1:0:0:0", "reserved"},
    {"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"64:ff9b::", "nat64"},
    {"64:ff9b::8.8.8.8", "nat64"},
    {"64:ff9b::ffff:ffff", "nat64"},
    {"64:ff9b::1:0:0", "reserved"},
    {"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"64:ff9b:1::", "nat64"},
    {"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "nat64"},
    {"64:ff9b:2::", "reserved"},
    {"100::", "reserved"},
    {"100::ffff:ffff:ffff:ffff", "reserved"},
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"2000::", PUBLIC},
    {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC},
    {"2001::", "reserved"}, /* Teredo */
    {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"2001:1::", PUBLIC},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC},
    {"2001:db8::", "documentation"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
    {"2001:db9::", PUBLIC},
    {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC},
    {"2002::", "reserved"}, /* 6to4 */
    {"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"2003::", PUBLIC},
    {"2606:4700:4700::1111", PUBLIC},
    {"2001:4860:4860::8888", PUBLIC},
    {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PUBLIC},
    {"4000::", "reserved"},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"fc00::", "unique_local"},
    {"fd00::1", "unique_local"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique_local"},
    {"fe00::", "reserved"},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"fe80::", "link_local"},
    {"fe80::1", "link_local"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link_local"},
    {"fec0::", "reserved"}, /* site-local */
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"ff00::", "multicast"},
    {"ff02::1", "multicast"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
};

static void test_class_table(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]); i++) {
    const struct class_case *c = &class_cases[i];
    struct sockaddr_storage ss;
    const struct sockaddr *sa = sa_of(c->addr, &ss);
    const char *got = hook_addr_class(sa);
    if(c->class ? !got || strcmp(got, c->class) != 0 : got != NULL)
      fail_msg("hook_addr_class(%s) = %s, want %s", c->addr, got ? got : "public",
               c->class ? c->class : "public");
    /* with nothing allowed the guard says the same */
    got = hook_guard_check(NULL, 0, sa);
    if(c->class ? !got || strcmp(got, c->class) != 0 : got != NULL)
      fail_msg("hook_guard_check(%s) = %s, want %s", c->addr, got ? got : "public",
               c->class ? c->class : "public");
  }
}

static void test_unsupported_family(void **state)
{
  (void)state;
  struct sockaddr_un un;
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, "/tmp/x");
  assert_string_equal(hook_addr_class((const struct sockaddr *)&un), "unsupported_family");
  assert_string_equal(hook_addr_class(NULL), "unsupported_family");
  struct hook_cidr all = cidr_ok("0.0.0.0/0");
  assert_string_equal(hook_guard_check(&all, 1, (const struct sockaddr *)&un),
                      "unsupported_family");
  assert_string_equal(hook_guard_check(&all, 1, NULL), "unsupported_family");
}

/* The product's example: webhooks.allowed_cidrs = ["127.0.0.1/32"] lets a
 * local receiver in, and nothing else on the host. */
static void test_allow_localhost(void **state)
{
  (void)state;
  struct hook_cidr allowed[] = {cidr_ok("127.0.0.1/32")};
  struct sockaddr_storage ss;
  assert_null(hook_guard_check(allowed, 1, sa_of("127.0.0.1", &ss)));
  assert_string_equal(hook_guard_check(allowed, 1, sa_of("127.0.0.2", &ss)), "loopback");
  assert_string_equal(hook_guard_check(allowed, 1, sa_of("::1", &ss)), "loopback");
  assert_string_equal(hook_guard_check(allowed, 1, sa_of("::ffff:127.0.0.1", &ss)), "ipv4_mapped");
  assert_string_equal(hook_guard_check(allowed, 1, sa_of("::127.0.0.1", &ss)), "reserved");
  assert_string_equal(hook_guard_check(allowed, 1, sa_of("10.0.0.1", &ss)), "private");
  assert_null(hook_guard_check(allowed, 1, sa_of("8.8.8.8", &ss)));
  assert_null(hook_guard_check(allowed, 1, sa_of("2606:4700:4700::1111", &ss)));
  /* n is what counts, not what allowed points at */
  assert_string_equal(hook_guard_check(allowed, 0, sa_of("127.0.0.1", &ss)), "loopback");
}

/* A mapped address passes only when a v6 range names it. */
static void test_allow_mapped(void **state)
{
  (void)state;
  struct hook_cidr allowed[] = {cidr_ok("::ffff:127.0.0.1/128"), cidr_ok("::1")};
  struct sockaddr_storage ss;
  assert_null(hook_guard_check(allowed, 2, sa_of("::ffff:127.0.0.1", &ss)));
  assert_null(hook_guard_check(allowed, 2, sa_of("::1", &ss)));
  assert_string_equal(hook_guard_check(allowed, 2, sa_of("127.0.0.1", &ss)), "loopback");
  assert_string_equal(hook_guard_check(allowed, 2, sa_of("::ffff:127.0.0.2", &ss)), "ipv4_mapped");
}

static void test_allow_ranges(void **state)
{
  (void)state;
  struct hook_cidr allowed[] = {cidr_ok("10.0.0.0/8"), cidr_ok("fd00::/8"),
                                cidr_ok("192.168.1.0/24")};
  size_t n = sizeof(allowed) / sizeof(allowed[0]);
  struct sockaddr_storage ss;
  assert_null(hook_guard_check(allowed, n, sa_of("10.0.0.0", &ss)));
  assert_null(hook_guard_check(allowed, n, sa_of("10.255.255.255", &ss)));
  assert_null(hook_guard_check(allowed, n, sa_of("11.0.0.0", &ss)));
  assert_null(hook_guard_check(allowed, n, sa_of("192.168.1.77", &ss)));
  assert_string_equal(hook_guard_check(allowed, n, sa_of("192.168.2.1", &ss)), "private");
  assert_string_equal(hook_guard_check(allowed, n, sa_of("192.168.0.255", &ss)), "private");
  assert_string_equal(hook_guard_check(allowed, n, sa_of("172.16.0.1", &ss)), "private");
  assert_null(hook_guard_check(allowed, n, sa_of("fd12:3456::1", &ss)));
  assert_string_equal(hook_guard_check(allowed, n, sa_of("fc00::1", &ss)), "unique_local");
  assert_string_equal(hook_guard_check(allowed, n, sa_of("::ffff:10.0.0.1", &ss)), "ipv4_mapped");
}

static void test_contains(void **state)
{
  (void)state;
  struct sockaddr_storage ss;
  struct hook_cidr c = cidr_ok("192.0.2.0/31");
  assert_false(hook_cidr_contains(&c, sa_of("192.0.1.255", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("192.0.2.0", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("192.0.2.1", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("192.0.2.2", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("::ffff:192.0.2.0", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("::192.0.2.0", &ss)));
  c = cidr_ok("0.0.0.0/0");
  assert_true(hook_cidr_contains(&c, sa_of("0.0.0.0", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("255.255.255.255", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("::", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("::ffff:1.2.3.4", &ss)));
  c = cidr_ok("::/0");
  assert_true(hook_cidr_contains(&c, sa_of("::ffff:1.2.3.4", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("1.2.3.4", &ss)));
  c = cidr_ok("2001:db8:8000::/33");
  assert_false(hook_cidr_contains(&c, sa_of("2001:db8:7fff:ffff:ffff:ffff:ffff:ffff", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("2001:db8:8000::", &ss)));
  assert_true(hook_cidr_contains(&c, sa_of("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", &ss)));
  assert_false(hook_cidr_contains(&c, sa_of("2001:db9::", &ss)));
  assert_false(hook_cidr_contains(NULL, sa_of("2001:db9::", &ss)));
  assert_false(hook_cidr_contains(&c, NULL));
}

struct parse_ok_case {
  const char *text;
  int family, bits;
  const char *net; /* the network address, as inet_pton reads it */
};

static const struct parse_ok_case parse_ok_cases[] = {
    {"10.0.0.0/8", AF_INET, 8, "10.0.0.0"},
    {"127.0.0.1/32", AF_INET, 32, "127.0.0.1"},
    {"127.0.0.1", AF_INET, 32, "127.0.0.1"},
    {"172.16.0.0/12", AF_INET, 12, "172.16.0.0"},
    {"192.0.2.128/25", AF_INET, 25, "192.0.2.128"},
    {"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
    {"255.255.255.255/32", AF_INET, 32, "255.255.255.255"},
    {"::1/128", AF_INET6, 128, "::1"},
    {"::1", AF_INET6, 128, "::1"},
    {"::/0", AF_INET6, 0, "::"},
    {"fd00::/8", AF_INET6, 8, "fd00::"},
    {"fe80::/10", AF_INET6, 10, "fe80::"},
    {"2001:db8::/32", AF_INET6, 32, "2001:db8::"},
    {"2001:DB8:0:0:0:0:0:0/48", AF_INET6, 48, "2001:db8::"},
    {"::ffff:127.0.0.1/128", AF_INET6, 128, "::ffff:127.0.0.1"},
    {"::ffff:0:0/96", AF_INET6, 96, "::ffff:0.0.0.0"},
};

static void test_parse_ok(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(parse_ok_cases) / sizeof(parse_ok_cases[0]); i++) {
    const struct parse_ok_case *c = &parse_ok_cases[i];
    struct hook_cidr got = cidr_ok(c->text);
    unsigned char want[16] = {0};
    assert_int_equal(inet_pton(c->family, c->net, want), 1);
    if(got.family != c->family || got.bits != c->bits ||
       memcmp(got.addr, want, c->family == AF_INET ? 4 : 16) != 0)
      fail_msg("hook_cidr_parse(\"%s\") = family %d /%d, want %d /%d %s", c->text, got.family,
               got.bits, c->family, c->bits, c->net);
  }
}

struct parse_bad_case {
  const char *text;
  const char *why_has;
};

static const struct parse_bad_case parse_bad_cases[] = {
    {"", "empty"},
    {"/8", "address"},
    {"garbage", "address"},
    {"localhost", "address"},
    {"10.0.0.0/", "0 to 32"},
    {"10.0.0.0/33", "0 to 32"},
    {"10.0.0.0/-1", "0 to 32"},
    {"10.0.0.0/+8", "0 to 32"},
    {"10.0.0.0/08", "0 to 32"},
    {"10.0.0.0/8 ", "0 to 32"},
    {"10.0.0.0/ 8", "0 to 32"},
    {"10.0.0.0/8/8", "0 to 32"},
    {"10.0.0.0/0x8", "0 to 32"},
    {"10.0.0.0/99999999999999999999", "0 to 32"},
    {"::/129", "0 to 128"},
    {"fd00::/-8", "0 to 128"},
    {"fd00::/1000", "0 to 128"},
    {" 10.0.0.0/8", "address"},
    {"10.0.0/8", "address"},
    {"10/8", "address"},
    {"1.2.3.256/32", "address"},
    {"010.0.0.0/8", "address"},
    {"0x0a.0.0.0/8", "address"},
    {"1.2.3.4.5/32", "address"},
    {"fe80::1%eth0/128", "address"},
    {"[::1]/128", "address"},
    {":::/0", "address"},
    {"1::2::3/128", "address"},
    {"2001:db8:0:0:0:0:0:0:0/32", "address"},
    {"2001:db8:0000:0000:0000:0000:0000:0000:0000/32", "address"},
    {"10.1.2.3/8", "host bits"},
    {"10.0.0.1/31", "host bits"},
    {"127.0.0.1/8", "host bits"},
    {"0.0.0.1/0", "host bits"},
    {"::1/127", "host bits"},
    {"fd00::1/8", "host bits"},
    {"::ffff:1.2.3.4/96", "host bits"},
    {"2001:db8::/16", "host bits"},
};

static void test_parse_bad(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(parse_bad_cases) / sizeof(parse_bad_cases[0]); i++) {
    const struct parse_bad_case *c = &parse_bad_cases[i];
    struct hook_cidr got;
    memset(&got, 0x5a, sizeof(got));
    const char *why = NULL;
    if(hook_cidr_parse(c->text, &got, &why) != -1)
      fail_msg("hook_cidr_parse(\"%s\") accepted a bad range", c->text);
    if(!why || !strstr(why, c->why_has))
      fail_msg("hook_cidr_parse(\"%s\"): reason \"%s\" lacks \"%s\"", c->text, why ? why : "(null)",
               c->why_has);
    assert_int_equal(hook_cidr_parse(c->text, &got, NULL), -1);
    /* *out is left alone on error */
    assert_int_equal(got.bits, 0x5a5a5a5a);
  }
  const char *why = NULL;
  struct hook_cidr c;
  assert_int_equal(hook_cidr_parse(NULL, &c, &why), -1);
  assert_non_null(why);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_class_table),     cmocka_unit_test(test_unsupported_family),
      cmocka_unit_test(test_allow_localhost), cmocka_unit_test(test_allow_mapped),
      cmocka_unit_test(test_allow_ranges),    cmocka_unit_test(test_contains),
      cmocka_unit_test(test_parse_ok),        cmocka_unit_test(test_parse_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
