/*
 * netaddr.h - a listening address as the configuration writes it
 * ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:8080", "localhost:8080"):
 * parsed into a socket address, and whether it is loopback. Shared by the
 * config loader (which refuses a non-loopback HTTP listener without a
 * password) and the daemon's HTTP listener (daemon/http.c), so both read
 * the string the same way.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Parses "HOST:PORT": HOST a numeric IPv4 address, a bracketed numeric
 * IPv6 address, or "localhost" (127.0.0.1); PORT 1..65535. No name lookup.
 * 0 and *ret, *ret_len, or -EINVAL with the reason in err.
 */
int netaddr_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, char *err,
                  size_t errlen);

/* Whether the address is loopback (127.0.0.0/8, ::1, ::ffff:127.x.x.x). */
bool netaddr_is_loopback(const struct sockaddr_storage *a);
