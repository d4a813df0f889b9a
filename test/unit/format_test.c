/* The draft-07 `format` assertions (schemas/format.h): every case of the
 * official JSON Schema Test Suite for the formats Herald asserts, plus the
 * edge cases the suite does not cover (leap years and seconds, uuid, NUL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format.h"

/* Debian/Ubuntu package json-schema-test-suite; JSON_SCHEMA_TEST_SUITE
 * points elsewhere (e.g. a git checkout of the suite). */
#define SUITE_DEFAULT_DIR "/usr/share/json-schema-test-suite"

static const char *suite_dir(void)
{
  const char *dir = getenv("JSON_SCHEMA_TEST_SUITE");
  return dir && *dir ? dir : SUITE_DEFAULT_DIR;
}

/* Runs every test of tests/draft7/optional/format/<name>.json through
 * schema_format_check and fails on any disagreement with the suite. */
static void run_suite_file(const char *name)
{
  const char *dir = suite_dir();
  struct stat st;
  if(stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    fail_msg("JSON Schema Test Suite not found at %s: install the json-schema-test-suite "
             "package (apt-get install json-schema-test-suite) or set JSON_SCHEMA_TEST_SUITE "
             "to a checkout of github.com/json-schema-org/JSON-Schema-Test-Suite",
             dir);

  char path[4096];
  snprintf(path, sizeof(path), "%s/tests/draft7/optional/format/%s.json", dir, name);
  json_error_t jerr;
  json_t *groups = json_load_file(path, 0, &jerr);
  if(!groups)
    fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
  if(!json_is_array(groups))
    fail_msg("%s: not an array of test groups", path);

  int passed = 0, failed = 0, skipped = 0;
  size_t gi;
  json_t *group;
  json_array_foreach(groups, gi, group)
  {
    const char *fname =
        json_string_value(json_object_get(json_object_get(group, "schema"), "format"));
    if(!fname)
      fail_msg("%s: group %zu has no schema.format", path, gi);
    enum schema_format f = schema_format_lookup(fname);
    if(f == SCHEMA_FORMAT_NONE)
      fail_msg("%s: format \"%s\" is not asserted", path, fname);
    size_t ti;
    json_t *t;
    json_array_foreach(json_object_get(group, "tests"), ti, t)
    {
      json_t *data = json_object_get(t, "data");
      bool want = json_is_true(json_object_get(t, "valid"));
      const char *desc = json_string_value(json_object_get(t, "description"));
      if(!json_is_string(data)) {
        /* formats only constrain strings; the validator never asks here */
        if(!want)
          fail_msg("%s: non-string data expected invalid (%s)", path, desc);
        skipped++;
        continue;
      }
      const char *s = json_string_value(data);
      size_t len = json_string_length(data);
      bool got = schema_format_check(f, s, len);
      if(got == want) {
        passed++;
      } else {
        failed++;
        printf("  FAIL %s: \"%s\" %s: got %s, want %s\n", fname, s, desc ? desc : "",
               got ? "valid" : "invalid", want ? "valid" : "invalid");
      }
    }
  }
  json_decref(groups);
  printf("%s.json: %d passed, %d failed", name, passed, failed);
  if(skipped)
    printf(" (%d non-string cases skipped)", skipped);
  printf("\n");
  if(failed)
    fail_msg("%s.json: %d case(s) disagree with the suite", name, failed);
  if(passed == 0)
    fail_msg("%s.json: no string cases found", name);
}

#define SUITE_TEST(fn, file)                                                                       \
  static void fn(void **state)                                                                     \
  {                                                                                                \
    (void)state;                                                                                   \
    run_suite_file(file);                                                                          \
  }

SUITE_TEST(test_suite_date_time, "date-time")
SUITE_TEST(test_suite_date, "date")
SUITE_TEST(test_suite_time, "time")
SUITE_TEST(test_suite_email, "email")
SUITE_TEST(test_suite_hostname, "hostname")
SUITE_TEST(test_suite_ipv4, "ipv4")
SUITE_TEST(test_suite_ipv6, "ipv6")
SUITE_TEST(test_suite_uri, "uri")
SUITE_TEST(test_suite_uri_reference, "uri-reference")
SUITE_TEST(test_suite_regex, "regex")
SUITE_TEST(test_suite_json_pointer, "json-pointer")

struct fcase {
  enum schema_format f;
  const char *s;
  bool valid;
};

#define DT SCHEMA_FORMAT_DATE_TIME
#define DATE SCHEMA_FORMAT_DATE
#define TIME SCHEMA_FORMAT_TIME
#define EMAIL SCHEMA_FORMAT_EMAIL
#define HOST SCHEMA_FORMAT_HOSTNAME
#define IPV4 SCHEMA_FORMAT_IPV4
#define IPV6 SCHEMA_FORMAT_IPV6
#define URI SCHEMA_FORMAT_URI
#define UREF SCHEMA_FORMAT_URI_REFERENCE
#define UUID SCHEMA_FORMAT_UUID
#define REGEX SCHEMA_FORMAT_REGEX
#define JPTR SCHEMA_FORMAT_JSON_POINTER

static const struct fcase cases[] = {
    /* uuid: 8-4-4-4-12 hex digits, either case */
    {UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d16380", true},
    {UUID, "2EB8AA08-AA98-11EA-B4AA-73B441D16380", true},
    {UUID, "2eb8aa08-AA98-11ea-B4Aa-73B441D16380", true},
    {UUID, "00000000-0000-0000-0000-000000000000", true},
    {UUID, "2eb8aa08aa98-11ea-b4aa-73b441d16380-", false}, /* hyphens moved */
    {UUID, "2eb8-aa08-aa98-11ea-b4aa73b441d16380", false},
    {UUID, "2eb8aa08aa9811eab4aa73b441d16380", false},     /* no hyphens */
    {UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d1638g", false}, /* non-hex */
    {UUID, "2eb8aa08-aa98-11ea-b4aa_73b441d16380", false},
    {UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d1638", false},   /* short */
    {UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d163800", false}, /* long */
    {UUID, "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}", false},
    {UUID, "", false},
    /* leap years: divisible by 4, except centuries not divisible by 400 */
    {DATE, "2020-02-29", true},
    {DATE, "2021-02-29", false},
    {DATE, "1900-02-29", false},
    {DATE, "2000-02-29", true},
    {DATE, "2021-02-28", true},
    {DATE, "2020-02-30", false},
    {DT, "2020-02-29T00:00:00Z", true},
    {DT, "2021-02-29T00:00:00Z", false},
    {DT, "1900-02-29T12:00:00+01:00", false},
    {DT, "2000-02-29T12:00:00+01:00", true},
    /* dates */
    {DATE, "1963-06-19", true},
    {DATE, "0000-01-01", true},
    {DATE, "2020-01-31", true},
    {DATE, "2020-04-31", false},
    {DATE, "2020-06-31", false},
    {DATE, "2020-12-32", false},
    {DATE, "2020-13-01", false},
    {DATE, "2020-00-01", false},
    {DATE, "2020-01-00", false},
    {DATE, "2020-1-01", false},
    {DATE, "20200101", false},
    {DATE, "2020-01-01T00:00:00Z", false},
    {DATE, "2020-01-01 ", false},
    {DATE, "1963-06-1\xe0\xa7\xaa", false}, /* Bengali digit */
    {DATE, "", false},
    /* times: offset required; leap second only at 23:59 UTC */
    {TIME, "08:30:06.283185Z", true},
    {TIME, "08:30:06Z", true},
    {TIME, "08:30:06z", true},
    {TIME, "23:20:50.52Z", true},
    {TIME, "08:30:06+00:20", true},
    {TIME, "08:30:06-08:00", true},
    {TIME, "00:00:00+23:59", true},
    {TIME, "23:59:60Z", true},
    {TIME, "23:59:60+00:00", true},
    {TIME, "01:29:60+01:30", true},
    {TIME, "23:29:60+23:30", true},
    {TIME, "15:59:60-08:00", true},
    {TIME, "00:29:60-23:30", true},
    {TIME, "22:59:60Z", false},
    {TIME, "23:58:60Z", false},
    {TIME, "23:59:60+01:00", false},
    {TIME, "23:59:60-00:30", false},
    {TIME, "00:00:61Z", false},
    {TIME, "24:00:00Z", false},
    {TIME, "00:60:00Z", false},
    {TIME, "01:02:03+24:00", false},
    {TIME, "01:02:03+00:60", false},
    {TIME, "01:02:03Z+00:30", false},
    {TIME, "12:00:00", false},
    {TIME, "12:00:00.52", false},
    {TIME, "12:00:00.Z", false},
    {TIME, "8:3:6Z", false},
    {TIME, "008:030:006Z", false},
    {TIME, "08:30:06-8:000", false},
    {TIME, "08:30:06+0800", false},
    {TIME, "08:30:06#00:20", false},
    {TIME, "01:01:01,1111Z", false},
    {TIME, "ab:cd:efZ", false},
    {TIME, "2020-11-28T23:55:45Z", false},
    /* date-times */
    {DT, "1963-06-19T08:30:06.283185Z", true},
    {DT, "1963-06-19t08:30:06.283185z", true},
    {DT, "1998-12-31T23:59:60Z", true},
    {DT, "1998-12-31T15:59:60.123-08:00", true},
    {DT, "1998-12-31T23:58:60Z", false},
    {DT, "1998-12-31T22:59:60Z", false},
    {DT, "1990-12-31T15:59:60-24:00", false},
    {DT, "1963-06-19 08:30:06Z", false},
    {DT, "1963-06-19T08:30:06", false},
    {DT, "1963-06-19T", false},
    {DT, "1963-06-19", false},
    {DT, "2013-350T01:01:01", false},
    {DT, "1963-06-19T08:30:06.28123+01:00Z", false},
    {DT, "+11963-06-19T08:30:06.283185Z", false},
    {DT, "1963-6-19T08:30:06.283185Z", false},
    {DT, "1963-06-1T08:30:06.283185Z", false},
    {DT, "1963-06-11T0\xe0\xa7\xaa:00:00Z", false},
    {DT, " 1985-04-12T23:20:50Z", false},
    {DT, "1985-04-12T23:20:50Z ", false},
    {DT, "1985-04-12T23:20:50Z extra", false},
    {DT, "08:30:06Z", false},
    {DT, "1990-12-31T10:00:00+10:60", false},
    {DT, "1990-12-31T15:59:59-24:00", false},
    /* email */
    {EMAIL, "joe.bloggs@example.com", true},
    {EMAIL, "te~st@example.com", true},
    {EMAIL, "~test@example.com", true},
    {EMAIL, "test~@example.com", true},
    {EMAIL, "te.s.t@example.com", true},
    {EMAIL, "1234567890@example.com", true},
    {EMAIL, "!#$%'*+-/=?^_`{|}~@example.com", true},
    {EMAIL, "\"joe bloggs\"@example.com", true},
    {EMAIL, "\"joe..bloggs\"@example.com", true},
    {EMAIL, "\"joe@bloggs\"@example.com", true},
    {EMAIL, "\"joe\\\"bloggs\"@example.com", true},
    {EMAIL, "\"(unusual)\"@example.com", true},
    {EMAIL, "joe.bloggs@123.24-7-examples.com", true},
    {EMAIL, "email@123.123.123.123", true},
    {EMAIL, "email@[123.123.123.123]", true},
    {EMAIL, "joe.bloggs@[IPv6:::1]", true},
    {EMAIL, "joe.bloggs@[ipv6:2001:db8::1]", true},
    {EMAIL, "joe@localhost", true},
    {EMAIL, "2962", false},
    {EMAIL, ".test@example.com", false},
    {EMAIL, "test.@example.com", false},
    {EMAIL, "te..st@example.com", false},
    {EMAIL, "joe@bloggs@example.com", false},
    {EMAIL, "@example.com", false},
    {EMAIL, "joe@", false},
    {EMAIL, "joe bloggs@example.com", false},
    {EMAIL, "\"joe\"bloggs@example.com", false},
    {EMAIL, "\"joe@example.com", false},
    {EMAIL, "joe.bloggs@invalid=domain.com", false},
    {EMAIL, "joe.bloggs@[127.0.0.300]", false},
    {EMAIL, "joe.bloggs@[IPv6:12345::]", false},
    {EMAIL, "joe.bloggs@[::1]", false},
    {EMAIL, "joe.bloggs@-example.com", false},
    {EMAIL, "j\xc3\xb6@example.com", false}, /* idn-email, not email */
    {EMAIL, "joe@example.com.", false},
    {EMAIL,
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com", /* 65 */
     false},
    {EMAIL, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com", /* 64 */
     true},
    /* hostname */
    {HOST, "www.example.com", true},
    {HOST, "xn--4gbwdl.xn--wgbh1c", true},
    {HOST, "123.24-7-examples.com", true},
    {HOST, "hostname", true},
    {HOST, "1host", true},
    {HOST, "h0stn4me", true},
    {HOST, "a", true},
    {HOST, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk.com", true},
    {HOST, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl.com", false},
    {HOST, "-hostname", false},
    {HOST, "hostname-", false},
    {HOST, "_hostname", false},
    {HOST, "host_name", false},
    {HOST, "host name", false},
    {HOST, "", false},
    {HOST, ".", false},
    {HOST, ".example.com", false},
    {HOST, "example..com", false},
    {HOST, "example.com.", false},
    {HOST, "ex\xc3\xa4mple.com", false},
    /* ipv4 */
    {IPV4, "192.168.0.1", true},
    {IPV4, "0.0.0.0", true},
    {IPV4, "255.255.255.255", true},
    {IPV4, "087.10.0.1", false},
    {IPV4, "00.0.0.0", false},
    {IPV4, "256.0.0.1", false},
    {IPV4, "1.2.3.1000", false},
    {IPV4, "1.2.3", false},
    {IPV4, "1.2.3.4.", false},
    {IPV4, ".1.2.3.4", false},
    {IPV4, "1..2.3", false},
    {IPV4, "1.2.3.4 ", false},
    {IPV4, " 1.2.3.4", false},
    {IPV4, "1.2.3.4\n", false},
    {IPV4, "0x7f000001", false},
    {IPV4, "1.2.3.\xe0\xa7\xaa", false},
    {IPV4, "", false},
    {IPV4, "2130706433", false},
    {IPV4, "192.168.1.0/24", false},
    {IPV4, "1.2.3.-1", false},
    {IPV4, "1.2.3. 4", false},
    {IPV4, "+1.2.3.4", false},
    /* ipv6 */
    {IPV6, "::1", true},
    {IPV6, "::", true},
    {IPV6, "2001:0db8:85a3:0000:0000:8a2e:0370:7334", true},
    {IPV6, "FE80::202:B3FF:FE1E:8329", true},
    {IPV6, "::ffff:192.168.0.1", true},
    {IPV6, "1::d6:192.168.0.1", true},
    {IPV6, "1:2:3:4:5:6:255.255.255.255", true},
    {IPV6, "0000:0000:0000:0000:0000:ffff:255.255.255.255", true}, /* 45 bytes */
    {IPV6, "0000:0000:0000:0000:0000:ffff:255.255.255.2555", false},
    {IPV6, "12345::", false},
    {IPV6, "1:1:1:1:1:1:1:1:1", false},
    {IPV6, "::laptop", false},
    {IPV6, "1:2:3:4:5:::8", false},
    {IPV6, ":2:3:4:5:6:7:8", false},
    {IPV6, "1::2::3", false},
    {IPV6, "1:2:3:4:1.2.3.4", false},
    {IPV6, "1:2::192.168.256.1", false},
    {IPV6, "fe80::a%eth1", false},
    {IPV6, " ::1", false},
    {IPV6, "::1 ", false},
    {IPV6, "[::1]", false},
    {IPV6, "1.2.3.4", false},
    {IPV6, "", false},
    {IPV6, "d6::", true},
    {IPV6, "::42:ff:1", true},
    {IPV6, "1:2::192.168.0.1", true},
    {IPV6, "1:2:3:4:5:6:7:8", true},
    {IPV6, "1:2:3:4:5:6:7:", false},
    {IPV6, ":2:3:4::8", false},
    {IPV6, "1::d6::42", false},
    {IPV6, "1::2:192.168.ff.1", false},
    {IPV6, "::ffff:192.168.00.1", false},
    {IPV6, "1:2:3:4:5:6:7", false},
    {IPV6, "1", false},
    {IPV6, "1:2:3:4:1.2.3", false},
    {IPV6, "fe80::/64", false},
    {IPV6, "1:2:3:4:5:6:7:\xd9\xa0", false},
    /* uri: absolute, RFC 3986 characters only */
    {URI, "http://foo.bar/?baz=qux#quux", true},
    {URI, "urn:oasis:names:specification:docbook:dtd:xml:4.1.2", true},
    {URI, "ldap://[2001:db8::7]/c=GB?objectClass?one", true},
    {URI, "http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com", true},
    {URI, "http://087.10.0.1/", true},
    {URI, "http://999.999.999.999/", true},
    {URI, "file:///etc/hosts", true},
    {URI, "a:", true},
    {URI, "HTTP://EXAMPLE.COM/", true},
    {URI, "bar,baz:foo", false},
    {URI, "https://[@example.org/test.txt", false},
    {URI, "https://example.org/foobar\xc2\xae.txt", false},
    {URI, "https://example.org/foobar\\.txt", false},
    {URI, "https://example.org/foobar\".txt", false},
    {URI, "https://example.org/foobar<>.txt", false},
    {URI, "https://example.org/foobar{}.txt", false},
    {URI, "https://example.org/foobar^.txt", false},
    {URI, "https://example.org/foobar`.txt", false},
    {URI, "https://example.org/foo bar.txt", false},
    {URI, "https://example.org/foobar|.txt", false},
    {URI, "http://example.com/%6G", false},
    {URI, "http://example.com/%A", false},
    {URI, "http://example.com/%", false},
    {URI, "1http://example.com", false},
    {URI, "ht_tp://example.com", false},
    {URI, "http://example.com:abc/path", false},
    {URI, "http://[::1/", false},
    {URI, "http://example.com/\t", false},
    {URI, "http://example.com/#a#b", false},
    {URI, "//foo.bar/?baz=qux#quux", false},
    {URI, "abc", false},
    {URI, "", false},
    /* uri-reference: relative allowed */
    {UREF, "http://foo.bar/?baz=qux#quux", true},
    {UREF, "//foo.bar/?baz=qux#quux", true},
    {UREF, "/abc", true},
    {UREF, "abc", true},
    {UREF, "#fragment", true},
    {UREF, "?q=1", true},
    {UREF, "../a/./b", true},
    {UREF, "", true},
    {UREF, "#frag\\ment", false},
    {UREF, "\\\\WINDOWS\\fileshare", false},
    {UREF, "a b", false},
    {UREF, "%zz", false},
    {UREF, ":a", false},
    {UREF, "/foobar\xc2\xae.txt", false},
    {UREF, "//", true},
    {UREF, "http://087.10.0.1/", true},
    {UREF, "/%zz", false},
    {UREF, "/%4", false},
    {UREF, "/%41", true},
    /* regex */
    {REGEX, "([abc])+\\s+$", true},
    {REGEX, "^[a-z]{2}\\d*$", true},
    {REGEX, "", true},
    {REGEX, "^(abc]", false},
    {REGEX, "^\\S(|(.|\\n)*\\S)\\Z", false},
    {REGEX, "[z-a]", false},
    {REGEX, "\\a", false},
    {REGEX, "(?P<name>x)", false},
    {REGEX, "(?#comment)a", false},
    {REGEX, "(?i)abc", false},
    {REGEX, "(?<name>x)", true},
    {REGEX, "(?<n>a)\\k<n>", true},
    {REGEX, "[]", true},
    {REGEX, "[^]", true},
    {REGEX, "\\cA", true},
    /* json-pointer */
    {JPTR, "", true},
    {JPTR, "/", true},
    {JPTR, "/foo/bar~0/baz~1/%a", true},
    {JPTR, "/\xc3\xa9", true},
    {JPTR, "/~01", true},
    {JPTR, "/foo/bar~", false},
    {JPTR, "/~2", false},
    {JPTR, "#/foo", false},
    {JPTR, "foo", false},
};

static void test_cases(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct fcase *c = &cases[i];
    bool got = schema_format_check(c->f, c->s, strlen(c->s));
    if(got != c->valid)
      fail_msg("%s \"%s\": got %s, want %s", schema_format_name(c->f), c->s,
               got ? "valid" : "invalid", c->valid ? "valid" : "invalid");
  }
}

/* A valid value of each format, used to build invalid ones. */
static const struct fcase valid_examples[] = {
    {DT, "2020-02-29T12:00:00Z", true},
    {DATE, "2020-02-29", true},
    {TIME, "12:00:00Z", true},
    {EMAIL, "joe@example.com", true},
    {HOST, "example.com", true},
    {IPV4, "10.0.0.1", true},
    {IPV6, "::1", true},
    {URI, "http://example.com/", true},
    {UREF, "a/b", true},
    {UUID, "2eb8aa08-aa98-11ea-b4aa-73b441d16380", true},
    {REGEX, "^a", true},
    {JPTR, "/a", true},
};

/* len is authoritative: an embedded NUL is part of the value and makes it
 * invalid; bytes past len are not looked at. */
static void test_embedded_nul_and_length(void **state)
{
  (void)state;
  for(size_t i = 0; i < sizeof(valid_examples) / sizeof(valid_examples[0]); i++) {
    const struct fcase *c = &valid_examples[i];
    size_t n = strlen(c->s);
    char buf[128];
    const char *name = schema_format_name(c->f);
    assert_true(n + 8 < sizeof(buf));
    assert_true(schema_format_check(c->f, c->s, n));

    memcpy(buf, c->s, n);
    buf[n] = '\0'; /* a trailing NUL inside len */
    if(schema_format_check(c->f, buf, n + 1))
      fail_msg("%s: \"%s\\0\" accepted", name, c->s);

    memcpy(buf, c->s, n);
    buf[n - 1] = '\0'; /* the last character replaced by NUL */
    if(schema_format_check(c->f, buf, n))
      fail_msg("%s: NUL in place of the last byte of \"%s\" accepted", name, c->s);

    buf[0] = '\0'; /* a leading NUL */
    memcpy(buf + 1, c->s, n);
    if(schema_format_check(c->f, buf, n + 1))
      fail_msg("%s: \"\\0%s\" accepted", name, c->s);

    memcpy(buf, c->s, n); /* junk after len is ignored */
    memcpy(buf + n, "!! \x01", 5);
    if(!schema_format_check(c->f, buf, n))
      fail_msg("%s: bytes past len looked at for \"%s\"", name, c->s);
  }
  /* the annotation-only case accepts anything */
  assert_true(schema_format_check(SCHEMA_FORMAT_NONE, "a\0b", 3));
  /* an empty value may come as NULL */
  assert_true(schema_format_check(JPTR, NULL, 0));
  assert_false(schema_format_check(HOST, NULL, 0));
  assert_false(schema_format_check(JPTR, NULL, 3));
}

static void test_lookup(void **state)
{
  (void)state;
  static const struct {
    const char *name;
    enum schema_format f;
  } table[] = {
      {"date-time", DT},       {"date", DATE}, {"time", TIME},   {"email", EMAIL},
      {"hostname", HOST},      {"ipv4", IPV4}, {"ipv6", IPV6},   {"uri", URI},
      {"uri-reference", UREF}, {"uuid", UUID}, {"regex", REGEX}, {"json-pointer", JPTR},
  };
  for(size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    assert_int_equal(schema_format_lookup(table[i].name), table[i].f);
    assert_string_equal(schema_format_name(table[i].f), table[i].name);
  }
  /* formats draft-07 defines that Herald does not assert, and nonsense */
  const char *unasserted[] = {"idn-email",    "idn-hostname",
                              "iri",          "iri-reference",
                              "uri-template", "relative-json-pointer",
                              "duration",     "Date-Time",
                              "date-time ",   "",
                              "color"};
  for(size_t i = 0; i < sizeof(unasserted) / sizeof(unasserted[0]); i++)
    if(schema_format_lookup(unasserted[i]) != SCHEMA_FORMAT_NONE)
      fail_msg("\"%s\" should be annotation only", unasserted[i]);
  assert_int_equal(schema_format_lookup(NULL), SCHEMA_FORMAT_NONE);
  assert_string_equal(schema_format_name(SCHEMA_FORMAT_NONE), "none");
  assert_string_equal(schema_format_name((enum schema_format)999), "none");
  assert_true(schema_format_check(SCHEMA_FORMAT_NONE, "not a date", 10));
  assert_true(schema_format_check((enum schema_format)999, "x", 1));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_suite_date_time),
      cmocka_unit_test(test_suite_date),
      cmocka_unit_test(test_suite_time),
      cmocka_unit_test(test_suite_email),
      cmocka_unit_test(test_suite_hostname),
      cmocka_unit_test(test_suite_ipv4),
      cmocka_unit_test(test_suite_ipv6),
      cmocka_unit_test(test_suite_uri),
      cmocka_unit_test(test_suite_uri_reference),
      cmocka_unit_test(test_suite_regex),
      cmocka_unit_test(test_suite_json_pointer),
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_embedded_nul_and_length),
      cmocka_unit_test(test_lookup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
