/*
 * httpc.h - a minimal HTTP/1.1 client for the integration tests of the
 * daemon's listener: one request on a fresh loopback connection
 * ("Connection: close"), the status code, headers and body as received,
 * and a reader for a server-sent event stream. Test code only; the daemon
 * uses libmicrohttpd.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct httpc_resp {
    int status;      /* -1 when no answer */
    char *headers;   /* raw header block, NUL-terminated */
    char *body;      /* NUL-terminated; chunked bodies are de-chunked */
    size_t body_len;
};

/* method, path on 127.0.0.1:port; auth "user:password" or NULL. Waits up
 * to timeout_ms for the whole answer. Caller frees with httpc_free. */
struct httpc_resp httpc_request(int port, const char *method, const char *path, const char *auth,
                                int timeout_ms);
void httpc_free(struct httpc_resp *r);

/* An open server-sent event stream. */
struct httpc_stream;
struct httpc_stream *httpc_stream_open(int port, const char *path, const char *auth,
                                       int timeout_ms);
/* The next event whose type is 'event' (NULL: any) within timeout_ms: its
 * data, malloc'd, or NULL (timeout, closed). */
char *httpc_stream_next(struct httpc_stream *s, const char *event, int timeout_ms);
void httpc_stream_close(struct httpc_stream *s);
