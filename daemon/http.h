/*
 * http.h - the daemon's read-only HTTP listener (libmicrohttpd;
 * docs/OPERATOR.md): the dashboard's page and assets (daemon/web/, compiled
 * in), GET /api/status, GET /api/stream (server-sent events), GET /metrics.
 * It never touches pollers, writer or config itself: the daemon's main
 * thread builds the documents (status_build, metrics_render) while someone
 * is asking and hands them over with http_publish; handlers only serve the
 * latest ones. Off unless gateway.http is configured.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <stdio.h>

struct http;

/* GET /api/bill's query arguments as given (NULL when absent). */
struct http_bill_query {
    const char *from, *to, *enterprise, *utility, *format;
};

/* Writes the billing statement of q to out (the daemon computes it with
 * the configuration in force). 0; -EINVAL for a bad request, other -errno;
 * the reason in err. Called on the request's thread. */
typedef int (*http_bill_fn)(void *ud, const struct http_bill_query *q, FILE *out, char *err,
                            size_t errlen);

struct http_opts {
    const char *listen;        /* "HOST:PORT" (common/netaddr.h) */
    const char *password;      /* basic auth password; NULL: no auth */
    const char *storage_path;  /* for /api/status's sample count (read-only) */
    http_bill_fn bill;         /* GET /api/bill; NULL: 404 */
    void *bill_ud;
};

/* Starts listening (one thread per connection, at most HTTP_MAX_CONNECTIONS).
 * 0 and *ret, or -errno with the reason in err (bad address, port in use). */
int http_start(const struct http_opts *o, struct http **ret, char *err, size_t errlen);

/* Ends every stream, closes the listener, joins its threads. NULL is a no-op. */
void http_stop(struct http *h);

/* Whether the main thread should build and publish fresh documents now:
 * a stream is open, or a request came within the last few seconds, and the
 * last documents are at least HTTP_REFRESH_MS old. */
bool http_wanted(struct http *h);

/* Hands over the latest status document (without sample counts; the
 * listener keeps the reference) and the metrics text (malloc'd, taken
 * over); wakes the streams and the requests waiting for fresh data. */
void http_publish(struct http *h, json_t *status, char *metrics);
