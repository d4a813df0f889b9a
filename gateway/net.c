#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int gw_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                    const char **why)
{
  char host[64];
  const char *colon;
  memset(ss, 0, sizeof(*ss));
  if(s[0] == '[') {
    const char *end = strchr(s, ']');
    if(!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host)) {
      *why = "expected [IPV6]:PORT";
      return -1;
    }
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = '\0';
    colon = end + 1;
  }
  else {
    colon = strrchr(s, ':');
    if(!colon || (size_t)(colon - s) >= sizeof(host) || colon == s) {
      *why = "expected HOST:PORT";
      return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
  }
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if(colon[1] < '0' || colon[1] > '9' || *end || errno || port < 0 || port > 65535) {
    *why = "port must be a number from 0 to 65535";
    return -1;
  }
  if(strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if(s[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *sslen = sizeof(*in4);
    return 0;
  }
  if(s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *sslen = sizeof(*in6);
    return 0;
  }
  *why = "host must be a numeric IPv4 address, [IPv6] or localhost";
  return -1;
}

int gw_listen(const char *s, int backlog, const char **why)
{
  struct sockaddr_storage ss;
  socklen_t len;
  if(gw_parse_listen(s, &ss, &len, why))
    return -1;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if(fd < 0) {
    *why = strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if(ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if(bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
    *why = strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

void gw_sock_name(int fd, char *buf, size_t size)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if(getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
    if(ss.ss_family == AF_INET) {
      struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
      port = ntohs(in4->sin_port);
      snprintf(buf, size, "%s:%u", host, port);
      return;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    port = ntohs(in6->sin6_port);
  }
  snprintf(buf, size, "[%s]:%u", host, port);
}
