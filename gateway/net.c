#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include "config.h"

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

int gw_listen_is_loopback(const char *s)
{
  struct sockaddr_storage ss;
  socklen_t len;
  const char *why;
  if(gw_parse_listen(s, &ss, &len, &why))
    return 0;
  if(ss.ss_family == AF_INET)
    return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

int gw_host_is_loopback(const char *host)
{
  char name[256];
  if(!host)
    return 1;
  if(host[0] == '[') {
    const char *end = strchr(host, ']');
    struct in6_addr a6;
    if(!end || (size_t)(end - host - 1) >= sizeof(name))
      return 0;
    memcpy(name, host + 1, (size_t)(end - host - 1));
    name[end - host - 1] = '\0';
    return inet_pton(AF_INET6, name, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
  }
  size_t n = strcspn(host, ":");
  if(n >= sizeof(name))
    return 0;
  memcpy(name, host, n);
  name[n] = '\0';
  struct in_addr a4;
  if(strcasecmp(name, "localhost") == 0)
    return 1;
  return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int gw_open_on_loopback(const struct gw_config *cfg, const char *port)
{
  if(cfg->auth_insecure)
    return 0;
  if(strcmp(port, "api") == 0)
    return (!cfg->auth_api_keys || json_array_size(cfg->auth_api_keys) == 0) &&
           gw_listen_is_loopback(cfg->api_listen);
  int jwt = (cfg->auth_jwt_keys && json_array_size(cfg->auth_jwt_keys)) || cfg->auth_jwks_file[0];
  return !jwt && (!cfg->auth_anonymous_subscribe || !cfg->auth_anonymous_publish) &&
         gw_listen_is_loopback(cfg->client_listen);
}

/* One port's pair: loads both files into a throwaway context. */
static int tls_pair(const char *port, const char *cert, const char *key, char *err)
{
  if(!cert[0])
    return 0;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  int rc = -1;
  char why[200] = "out of memory";
  if(!ctx)
    goto out;
  ERR_clear_error();
  if(SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    ERR_error_string_n(ERR_get_error(), why, sizeof(why));
    gw_config_error(err, "%s.tls_cert: %s: not a readable PEM certificate (%s)", port, cert, why);
    goto out;
  }
  if(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    ERR_error_string_n(ERR_get_error(), why, sizeof(why));
    gw_config_error(err, "%s.tls_key: %s: not a readable PEM private key (%s)", port, key, why);
    goto out;
  }
  if(SSL_CTX_check_private_key(ctx) != 1) {
    gw_config_error(err, "%s.tls_key: %s is not the key of %s", port, key, cert);
    goto out;
  }
  rc = 0;
out:
  if(rc && !err[0])
    gw_config_error(err, "%s.tls_cert: %s", port, why);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

int gw_tls_check(const struct gw_config *cfg, char *err)
{
  err[0] = '\0';
  if(tls_pair("client", cfg->client_tls_cert, cfg->client_tls_key, err))
    return -1;
  return tls_pair("api", cfg->api_tls_cert, cfg->api_tls_key, err);
}
