#include "guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* One special-purpose block of the IANA registries and the class it is
 * refused as. Tables are searched in order: the first match names it. */
struct special {
  unsigned char net[16];
  int bits;
  const char *name;
};

static const struct special special4[] = {
    {{0, 0, 0, 0}, 8, "unspecified"},
    {{10, 0, 0, 0}, 8, "private"},
    {{100, 64, 0, 0}, 10, "cgnat"},
    {{127, 0, 0, 0}, 8, "loopback"},
    {{169, 254, 0, 0}, 16, "link_local"},
    {{172, 16, 0, 0}, 12, "private"},
    {{192, 0, 0, 0}, 24, "reserved"}, /* IETF protocol assignments */
    {{192, 0, 2, 0}, 24, "documentation"},
    {{192, 168, 0, 0}, 16, "private"},
    {{198, 18, 0, 0}, 15, "reserved"}, /* benchmarking */
    {{198, 51, 100, 0}, 24, "documentation"},
    {{203, 0, 113, 0}, 24, "documentation"},
    {{224, 0, 0, 0}, 4, "multicast"},
    {{255, 255, 255, 255}, 32, "broadcast"}, /* before 240/4, which holds it */
    {{240, 0, 0, 0}, 4, "reserved"},
};

static const struct special special6[] = {
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{[10] = 0xff, [11] = 0xff}, 96, "ipv4_mapped"},
    {{0}, 96, "reserved"}, /* IPv4-compatible, deprecated */
    {{0x00, 0x64, 0xff, 0x9b}, 96, "nat64"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "nat64"},
    {{0x01, 0x00}, 64, "reserved"}, /* 100::/64, discard-only */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
    {{0x20, 0x01}, 32, "reserved"}, /* Teredo */
    {{0x20, 0x02}, 16, "reserved"}, /* 6to4 */
    {{0xfc}, 7, "unique_local"},
    {{0xfe, 0x80}, 10, "link_local"},
    {{0xfe, 0xc0}, 10, "reserved"}, /* site-local, deprecated */
    {{0xff}, 8, "multicast"},
    /* Global unicast is only allocated from 2000::/3 (hook_addr_class); the
     * rest is not ours to reach. */
};

/* True when the first `bits` bits of a and b are equal. */
static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
  int whole = bits / 8, rest = bits % 8;
  if(memcmp(a, b, (size_t)whole) != 0)
    return false;
  if(rest == 0)
    return true;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

/* Copies the address of sa into addr (4 or 16 bytes) and returns its
 * family, or 0. memcpy, not a cast: callers may hand a struct sockaddr that
 * is not aligned for sockaddr_in6. */
static int sockaddr_bytes(const struct sockaddr *sa, unsigned char addr[16])
{
  if(!sa)
    return 0;
  if(sa->sa_family == AF_INET) {
    memcpy(addr, (const char *)sa + offsetof(struct sockaddr_in, sin_addr), 4);
    return AF_INET;
  }
  if(sa->sa_family == AF_INET6) {
    memcpy(addr, (const char *)sa + offsetof(struct sockaddr_in6, sin6_addr), 16);
    return AF_INET6;
  }
  return 0;
}

/* Parses a prefix length of 0..max: decimal digits only, no sign, no
 * leading zero. Returns it or -1. */
static int parse_bits(const char *s, int max)
{
  int v = 0;
  if(!*s || (s[0] == '0' && s[1]))
    return -1;
  for(; *s; s++) {
    if(*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (*s - '0');
    if(v > max)
      return -1;
  }
  return v;
}

int hook_cidr_parse(const char *text, struct hook_cidr *out, const char **why)
{
  const char *dummy;
  if(!why)
    why = &dummy;
  if(!text || !*text) {
    *why = "address range is empty; write e.g. 10.0.0.0/8 or fd00::/8";
    return -1;
  }
  char host[INET6_ADDRSTRLEN];
  const char *slash = strchr(text, '/');
  size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
  if(hlen == 0 || hlen >= sizeof(host)) {
    *why = "not an IPv4 or IPv6 address range; write e.g. 10.0.0.0/8 or fd00::/8";
    return -1;
  }
  memcpy(host, text, hlen);
  host[hlen] = '\0';
  struct hook_cidr c;
  memset(&c, 0, sizeof(c));
  c.family = strchr(host, ':') ? AF_INET6 : AF_INET;
  if(inet_pton(c.family, host, c.addr) != 1) {
    *why = "not an IPv4 or IPv6 address range; write e.g. 10.0.0.0/8 or fd00::/8";
    return -1;
  }
  int max = c.family == AF_INET ? 32 : 128;
  c.bits = slash ? parse_bits(slash + 1, max) : max;
  if(c.bits < 0) {
    *why = c.family == AF_INET ? "prefix length must be a number from 0 to 32"
                               : "prefix length must be a number from 0 to 128";
    return -1;
  }
  /* Refused rather than cleared: "10.1.2.3/8" is more likely a typo for a
   * /32 than a wish to allow all of 10/8. */
  for(int i = c.bits; i < max; i++) {
    if(c.addr[i / 8] & (0x80 >> (i % 8))) {
      *why = "host bits set: give the network address (10.0.0.0/8, not 10.1.2.3/8)";
      return -1;
    }
  }
  *out = c;
  return 0;
}

bool hook_cidr_contains(const struct hook_cidr *c, const struct sockaddr *sa)
{
  unsigned char addr[16];
  if(!c)
    return false;
  int family = sockaddr_bytes(sa, addr);
  if(family == 0 || family != c->family)
    return false;
  return prefix_equal(addr, c->addr, c->bits);
}

/* The class of addr in table t, or NULL when it is in none of them. */
static const char *lookup(const struct special *t, size_t n, const unsigned char *addr)
{
  for(size_t i = 0; i < n; i++)
    if(prefix_equal(addr, t[i].net, t[i].bits))
      return t[i].name;
  return NULL;
}

const char *hook_addr_class(const struct sockaddr *sa)
{
  unsigned char addr[16];
  int family = sockaddr_bytes(sa, addr);
  if(family == AF_INET)
    return lookup(special4, sizeof(special4) / sizeof(special4[0]), addr);
  if(family == AF_INET6) {
    const char *name = lookup(special6, sizeof(special6) / sizeof(special6[0]), addr);
    if(name)
      return name;
    return (addr[0] & 0xe0) == 0x20 ? NULL : "reserved";
  }
  return "unsupported_family";
}

const char *hook_guard_check(const struct hook_cidr *allowed, size_t n, const struct sockaddr *sa)
{
  for(size_t i = 0; allowed && i < n; i++)
    if(hook_cidr_contains(&allowed[i], sa))
      return NULL;
  return hook_addr_class(sa);
}
