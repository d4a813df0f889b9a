#include "ip_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

#define IP_BUCKETS 4096

struct gw_ip_node {
  unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 */
  int count;
  struct gw_ip_node *next;
};

struct gw_ip_limit {
  int max;
  pthread_mutex_t lock;
  struct gw_ip_node *ips[IP_BUCKETS];
};

struct gw_ip_limit *gw_ip_limit_new(int max)
{
  struct gw_ip_limit *l = calloc(1, sizeof(*l));
  if(!l)
    return NULL;
  l->max = max;
  pthread_mutex_init(&l->lock, NULL);
  return l;
}

void gw_ip_limit_free(struct gw_ip_limit *l)
{
  if(!l)
    return;
  for(size_t h = 0; h < IP_BUCKETS; h++)
    while(l->ips[h]) { /* none left once every socket is destroyed */
      struct gw_ip_node *n = l->ips[h];
      l->ips[h] = n->next;
      free(n);
    }
  pthread_mutex_destroy(&l->lock);
  free(l);
}

/* The address peer counts under: IPv4 mapped, IPv6 cut to its /64. */
static void ip_key(const struct sockaddr_storage *peer, unsigned char addr[16])
{
  static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  memcpy(addr, v4mapped, sizeof(v4mapped));
  memset(addr + 12, 0, 4);
  if(peer->ss_family == AF_INET6) {
    memcpy(addr, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
    /* one client holds a whole /64: count it as one address */
    if(!IN6_IS_ADDR_V4MAPPED((struct in6_addr *)addr))
      memset(addr + 8, 0, 8);
  }
  else
    memcpy(addr + 12, &((const struct sockaddr_in *)peer)->sin_addr, 4);
}

static size_t ip_hash(const unsigned char addr[16])
{
  return (size_t)(sub_topic_hash((const char *)addr, 16) % IP_BUCKETS);
}

struct gw_ip_node *gw_ip_acquire(struct gw_ip_limit *l, const struct sockaddr_storage *peer)
{
  unsigned char addr[16];
  ip_key(peer, addr);
  size_t h = ip_hash(addr);
  struct gw_ip_node *n;
  pthread_mutex_lock(&l->lock);
  for(n = l->ips[h]; n && memcmp(n->addr, addr, 16) != 0; n = n->next)
    ;
  if(!n && (n = calloc(1, sizeof(*n)))) {
    memcpy(n->addr, addr, 16);
    n->next = l->ips[h];
    l->ips[h] = n;
  }
  if(n && n->count >= l->max)
    n = NULL;
  else if(n)
    n->count++;
  pthread_mutex_unlock(&l->lock);
  return n;
}

void gw_ip_release(struct gw_ip_limit *l, struct gw_ip_node *n)
{
  if(!n)
    return;
  size_t h = ip_hash(n->addr);
  pthread_mutex_lock(&l->lock);
  if(--n->count == 0) {
    struct gw_ip_node **pp = &l->ips[h];
    while(*pp != n)
      pp = &(*pp)->next;
    *pp = n->next;
    free(n);
  }
  pthread_mutex_unlock(&l->lock);
}
