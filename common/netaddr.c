/*
 * netaddr.c - listening addresses of the configuration (see netaddr.h).
 */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

int netaddr_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *err,
                  size_t errlen)
{
    char host[64];
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host)) {
            snprintf(err, errlen, "listen \"%s\": expected [IPV6]:PORT", s);
            return -EINVAL;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host) || colon == s) {
            snprintf(err, errlen, "listen \"%s\": expected HOST:PORT (e.g. 127.0.0.1:8080)", s);
            return -EINVAL;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    int64_t port;
    if (parse_int64(colon + 1, &port) < 0 || port < 1 || port > 65535) {
        snprintf(err, errlen, "listen \"%s\": port must be 1..65535", s);
        return -EINVAL;
    }
    struct sockaddr_storage a;
    memset(&a, 0, sizeof(a));
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a;
    if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ret_len = sizeof(*v4);
    } else if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ret_len = sizeof(*v6);
    } else {
        snprintf(err, errlen,
                 "listen \"%s\": host must be a numeric IPv4 address, [IPv6] or localhost", s);
        return -EINVAL;
    }
    *ret = a;
    return 0;
}

bool netaddr_is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(x))
            return true;
        return IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127;
    }
    return false;
}
