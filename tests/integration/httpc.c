/*
 * httpc.c - test HTTP client (see httpc.h).
 */
#include "tests/integration/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        *o++ = b64[(v >> 18) & 63];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int connect_send(int port, const char *method, const char *path, const char *auth)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    char *cred = auth ? base64(auth) : NULL;
    char *req = xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s%s"
                          "\r\n",
                          method, path, port, cred ? "Authorization: Basic " : "",
                          cred ? cred : "", cred ? "\r\n" : "");
    int r = write_all(fd, req, strlen(req));
    free(req);
    free(cred);
    if (r < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what arrives within the deadline into *buf (grown); returns bytes
 * read in this call, 0 at EOF, -1 on timeout or error. */
static ssize_t read_some(int fd, char **buf, size_t *len, size_t *cap, int64_t deadline)
{
    int64_t left = deadline - now_mono_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)left) <= 0)
        return -1;
    *buf = xgrow(*buf, cap, *len + 65537, 1);
    ssize_t n = read(fd, *buf + *len, 65536);
    if (n < 0)
        return -1;
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return n;
}

/* De-chunks body in place; returns its new length. */
static size_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end;
        unsigned long n = strtoul(body + in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (!crlf || n == 0)
            break;
        in = (size_t)(crlf + 2 - body);
        if (in + n > len)
            n = len - in;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
    body[out] = '\0';
    return out;
}

struct httpc_resp httpc_request(int port, const char *method, const char *path, const char *auth,
                                int timeout_ms)
{
    struct httpc_resp r = {.status = -1};
    int fd = connect_send(port, method, path, auth);
    if (fd < 0)
        return r;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = now_mono_ms() + timeout_ms;
    ssize_t n;
    while ((n = read_some(fd, &buf, &len, &cap, deadline)) > 0)
        ;
    close(fd);
    char *sep = buf ? strstr(buf, "\r\n\r\n") : NULL;
    if (n < 0 || !sep) {
        free(buf);
        return r;
    }
    *sep = '\0';
    r.headers = xstrdup(buf);
    sscanf(buf, "HTTP/1.%*d %d", &r.status);
    size_t blen = len - (size_t)(sep + 4 - buf);
    r.body = xmalloc(blen + 1);
    memcpy(r.body, sep + 4, blen);
    r.body[blen] = '\0';
    r.body_len = blen;
    if (strcasestr(r.headers, "transfer-encoding: chunked"))
        r.body_len = dechunk(r.body, blen);
    free(buf);
    return r;
}

void httpc_free(struct httpc_resp *r)
{
    free(r->headers);
    free(r->body);
    r->headers = r->body = NULL;
}

struct httpc_stream {
    int fd;
    char *buf;      /* de-chunked stream text not yet consumed */
    size_t len, cap;
    char *raw;      /* bytes as received, chunk framing included */
    size_t rlen, rcap;
    bool chunked, headers_done;
};

struct httpc_stream *httpc_stream_open(int port, const char *path, const char *auth,
                                       int timeout_ms)
{
    int fd = connect_send(port, "GET", path, auth);
    if (fd < 0)
        return NULL;
    struct httpc_stream *s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    int64_t deadline = now_mono_ms() + timeout_ms;
    while (!strstr(s->raw ? s->raw : "", "\r\n\r\n"))
        if (read_some(fd, &s->raw, &s->rlen, &s->rcap, deadline) <= 0) {
            httpc_stream_close(s);
            return NULL;
        }
    char *sep = strstr(s->raw, "\r\n\r\n");
    int status = 0;
    sscanf(s->raw, "HTTP/1.%*d %d", &status);
    s->chunked = strcasestr(s->raw, "transfer-encoding: chunked") != NULL && strcasestr(s->raw, "transfer-encoding: chunked") < sep;
    size_t rest = s->rlen - (size_t)(sep + 4 - s->raw);
    memmove(s->raw, sep + 4, rest);
    s->rlen = rest;
    s->raw[rest] = '\0';
    if (status != 200) {
        httpc_stream_close(s);
        return NULL;
    }
    return s;
}

/* Moves whole chunks from raw to buf. */
static void take_chunks(struct httpc_stream *s)
{
    for (;;) {
        size_t n = s->rlen;
        const char *data = s->raw;
        size_t used = n;
        if (s->chunked) {
            char *crlf = s->rlen ? strstr(s->raw, "\r\n") : NULL;
            if (!crlf)
                return;
            n = strtoul(s->raw, NULL, 16);
            data = crlf + 2;
            used = (size_t)(data - s->raw) + n + 2;
            if (used > s->rlen)
                return;
        }
        if (!n && !s->chunked)
            return;
        s->buf = xgrow(s->buf, &s->cap, s->len + n + 1, 1);
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        s->buf[s->len] = '\0';
        memmove(s->raw, s->raw + used, s->rlen - used);
        s->rlen -= used;
        s->raw[s->rlen] = '\0';
        if (!s->chunked)
            return;
    }
}

char *httpc_stream_next(struct httpc_stream *s, const char *event, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        take_chunks(s);
        char *end;
        while (s->buf && (end = strstr(s->buf, "\n\n"))) {
            *end = '\0';
            char *type = "message", *data = NULL;
            for (char *line = s->buf, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                    *next++ = '\0';
                if (strncmp(line, "event: ", 7) == 0)
                    type = line + 7;
                else if (strncmp(line, "data: ", 6) == 0)
                    data = line + 6;
            }
            char *hit = data && (!event || strcmp(type, event) == 0) ? xstrdup(data) : NULL;
            size_t used = (size_t)(end + 2 - s->buf);
            memmove(s->buf, s->buf + used, s->len - used + 1);
            s->len -= used;
            if (hit)
                return hit;
        }
        if (read_some(s->fd, &s->raw, &s->rlen, &s->rcap, deadline) <= 0)
            return NULL;
    }
}

void httpc_stream_close(struct httpc_stream *s)
{
    if (!s)
        return;
    close(s->fd);
    free(s->buf);
    free(s->raw);
    free(s);
}
