/*
 * http.c - the read-only HTTP listener (see http.h). libmicrohttpd parses
 * HTTP; this file routes GET/HEAD requests, checks basic auth, serves the
 * compiled-in assets, the documents the main thread published, and one
 * server-sent event stream per dashboard. One thread per connection: a
 * stream's thread sleeps on a condition variable until the next document.
 */
#include "daemon/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/netaddr.h"
#include "common/util.h"
#include "daemon/webassets.h"
#include "storage/store.h"

/* Connections at once (each a thread): a few dashboards, a scraper, curl. */
#define HTTP_MAX_CONNECTIONS 64
#define HTTP_MAX_PER_IP 16
/* Documents are rebuilt at most this often while someone asks. */
#define HTTP_REFRESH_MS 1000
/* A request keeps the main thread building for this long after it. */
#define HTTP_WANTED_MS 10000
/* A request waits at most this long for documents fresher than
 * HTTP_REFRESH_MS (the main thread wakes every 200 ms). */
#define HTTP_FRESH_WAIT_MS 1500
/* A stream sends a comment line after this much silence, so proxies and
 * the browser see it alive and a vanished client is noticed. */
#define HTTP_KEEPALIVE_MS 15000
/* The browser's reconnect delay after the stream broke (daemon restart). */
#define HTTP_RETRY_MS 2000

struct http {
    struct MHD_Daemon *mhd;
    http_bill_fn bill;
    void *bill_ud;
    char *password;
    char *storage_path;
    pthread_mutex_t lock;      /* guards everything below */
    pthread_cond_t changed;    /* a new version, or stopping */
    json_t *doc;               /* latest status document */
    char *doc_text;            /* its JSON text */
    char *delta_text;          /* changes from version - 1 to version, or NULL */
    char *metrics;
    uint64_t version;          /* 0: nothing published yet */
    int64_t built_mono;
    int64_t wanted_mono;
    int streams;
    bool stopping;
};

bool http_wanted(struct http *h)
{
    if (!h)
        return false;
    int64_t now = now_mono_ms();
    pthread_mutex_lock(&h->lock);
    bool w = (h->streams > 0 || now - h->wanted_mono < HTTP_WANTED_MS) &&
             (h->version == 0 || now - h->built_mono >= HTTP_REFRESH_MS);
    pthread_mutex_unlock(&h->lock);
    return w;
}

/* What changed from 'old' to 'doc' for a stream that has 'old': the small
 * parts whole, and only the meters whose object changed. NULL when the
 * two documents do not have the same enterprises and meters. */
static char *make_delta(json_t *old, json_t *doc)
{
    json_t *oe = json_object_get(old, "enterprises"), *ne = json_object_get(doc, "enterprises");
    if (!old || json_array_size(oe) != json_array_size(ne))
        return NULL;
    json_t *changed = json_array();
    size_t e, i;
    json_t *ent;
    json_array_foreach(ne, e, ent) {
        json_t *om = json_object_get(json_array_get(oe, e), "meters");
        json_t *nm = json_object_get(ent, "meters"), *m;
        if (!json_equal(json_object_get(json_array_get(oe, e), "id"), json_object_get(ent, "id")) ||
            json_array_size(om) != json_array_size(nm)) {
            json_decref(changed);
            return NULL;
        }
        json_array_foreach(nm, i, m) {
            /* Only the members that changed (age_s, which changes every
             * second, the page computes itself); the page merges them. */
            json_t *o = json_array_get(om, i), *diff = json_object(), *v;
            const char *k;
            json_object_foreach(m, k, v)
                if (strcmp(k, "age_s") != 0 && !json_equal(json_object_get(o, k), v))
                    json_object_set(diff, k, v);
            if (json_object_size(diff))
                json_array_append_new(changed, json_pack("{s:O,s:I,s:o}", "enterprise",
                                                         json_object_get(ent, "id"), "index",
                                                         (json_int_t)i, "meter", diff));
            else
                json_decref(diff);
        }
    }
    json_t *d = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:o}", "ts", json_object_get(doc, "ts"),
                          "meters", json_object_get(doc, "meters"), "daemon",
                          json_object_get(doc, "daemon"), "outbox",
                          json_object_get(doc, "outbox"), "database",
                          json_object_get(doc, "database"), "changed", changed);
    if (d && !json_equal(json_object_get(old, "events"), json_object_get(doc, "events")))
        json_object_set(d, "events", json_object_get(doc, "events"));
    char *t = d ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(d);
    return t;
}

void http_publish(struct http *h, json_t *status, char *metrics)
{
    /* Text and delta are made here, on the main thread, once for every
     * stream; the lock is held only for the swap. */
    char *text = json_dumps(status, JSON_COMPACT | JSON_REAL_PRECISION(15));
    pthread_mutex_lock(&h->lock);
    json_t *old = h->doc ? json_incref(h->doc) : NULL;
    pthread_mutex_unlock(&h->lock);
    char *delta = make_delta(old, status);
    json_decref(old);

    pthread_mutex_lock(&h->lock);
    json_decref(h->doc);
    free(h->doc_text);
    free(h->delta_text);
    free(h->metrics);
    h->doc = status;
    h->doc_text = text;
    h->delta_text = delta;
    h->metrics = metrics;
    h->version++;
    h->built_mono = now_mono_ms();
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

/* Notes the request and waits (lock held) until the documents are fresh. */
static void wait_fresh(struct http *h)
{
    h->wanted_mono = now_mono_ms();
    struct timespec until = mono_deadline(HTTP_FRESH_WAIT_MS);
    while (!h->stopping && (h->version == 0 || now_mono_ms() - h->built_mono > HTTP_REFRESH_MS)) {
        if (pthread_cond_timedwait(&h->changed, &h->lock, &until) == ETIMEDOUT)
            break;
    }
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return respond(c, status, "text/plain; charset=utf-8", msg, strlen(msg),
                   MHD_RESPMEM_PERSISTENT);
}

/* Constant-time comparison (the password's length is not secret). */
static bool same_secret(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static bool authorized(struct http *h, struct MHD_Connection *c)
{
    if (!h->password)
        return true;
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    bool ok = user && pass && same_secret(pass, h->password);
    MHD_free(user);
    MHD_free(pass);
    return ok;
}

static enum MHD_Result serve_status(struct http *h, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->lock);
    wait_fresh(h);
    json_t *doc = h->doc ? json_deep_copy(h->doc) : NULL;
    pthread_mutex_unlock(&h->lock);
    if (!doc)
        return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "status not available yet\n");
    /* The sample count as `parkgw status` has it, on a read-only
     * connection of this request's own. */
    struct store *st;
    char err[256];
    struct store_stats ss;
    if (store_open(h->storage_path, true, &st, err, sizeof(err)) == 0) {
        json_t *db = json_object_get(doc, "database");
        if (json_is_object(db) && store_stats(st, &ss) == 0) {
            json_object_set_new(db, "bytes", json_integer(ss.db_bytes));
            json_object_set_new(db, "samples", json_integer(ss.samples));
            json_object_set_new(db, "oldest_ts",
                                ss.oldest_ts ? json_integer(ss.oldest_ts) : json_null());
        }
        store_close(st);
    }
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(doc);
    if (!text)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot format the status\n");
    size_t len = strlen(text);
    text[len] = '\n';   /* json_dumps' NUL becomes the final newline */
    return respond(c, MHD_HTTP_OK, "application/json", text, len + 1, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_metrics(struct http *h, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->lock);
    wait_fresh(h);
    char *text = h->metrics ? xstrdup(h->metrics) : NULL;
    pthread_mutex_unlock(&h->lock);
    if (!text)
        return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics not available yet\n");
    return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                   strlen(text), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_bill(struct http *h, struct MHD_Connection *c)
{
    if (!h->bill)
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
    struct http_bill_query q = {
        .from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from"),
        .to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to"),
        .enterprise = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "enterprise"),
        .utility = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "utility"),
        .format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format"),
    };
    if (!q.format)
        q.format = "json";
    char *body = NULL, err[512] = "";
    size_t len = 0;
    FILE *out = open_memstream(&body, &len);
    if (!out)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    int r = h->bill(h->bill_ud, &q, out, err, sizeof(err));
    if (fclose(out) != 0 && r == 0) {
        r = -EIO;
        snprintf(err, sizeof(err), "cannot buffer the statement");
    }
    if (r < 0) {
        free(body);
        char *msg = xasprintf("%s\n", err);
        return respond(c, r == -EINVAL ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                       "text/plain; charset=utf-8", msg, strlen(msg), MHD_RESPMEM_MUST_FREE);
    }
    const char *type = strcmp(q.format, "csv") == 0    ? "text/csv; charset=utf-8"
                       : strcmp(q.format, "json") == 0 ? "application/json"
                       : strcmp(q.format, "html") == 0 ? "text/html; charset=utf-8"
                                                       : "text/plain; charset=utf-8";
    return respond(c, MHD_HTTP_OK, type, body, len, MHD_RESPMEM_MUST_FREE);
}

/* One dashboard's event stream. */
struct stream {
    struct http *h;
    uint64_t version;   /* the document version the client has */
    char *buf;          /* text not yet handed to microhttpd */
    size_t len, off;
};

static void stream_set(struct stream *s, char *text)
{
    free(s->buf);
    s->buf = text;
    s->len = strlen(text);
    s->off = 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream *s = cls;
    struct http *h = s->h;
    UNUSED(pos);
    if (s->off >= s->len) {
        pthread_mutex_lock(&h->lock);
        struct timespec until = mono_deadline(HTTP_KEEPALIVE_MS);
        bool timeout = false;
        while (!h->stopping && h->version == s->version && !timeout)
            timeout = pthread_cond_timedwait(&h->changed, &h->lock, &until) == ETIMEDOUT;
        char *text = NULL;
        if (h->stopping) {
            pthread_mutex_unlock(&h->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (h->version == s->version)
            text = xstrdup(": keepalive\n\n");
        else if (h->delta_text && s->version + 1 == h->version)
            text = xasprintf("event: delta\ndata: %s\n\n", h->delta_text);
        else
            text = xasprintf("event: status\ndata: %s\n\n", h->doc_text);
        s->version = h->version;
        h->wanted_mono = now_mono_ms();
        pthread_mutex_unlock(&h->lock);
        stream_set(s, text);
    }
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    memcpy(out, s->buf + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    pthread_mutex_lock(&s->h->lock);
    s->h->streams--;
    pthread_mutex_unlock(&s->h->lock);
    free(s->buf);
    free(s);
}

static enum MHD_Result serve_stream(struct http *h, struct MHD_Connection *c)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    s->h = h;
    stream_set(s, xasprintf("retry: %d\n\n", HTTP_RETRY_MS));
    pthread_mutex_lock(&h->lock);
    h->streams++;
    h->wanted_mono = now_mono_ms();
    pthread_mutex_unlock(&h->lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *url)
{
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < web_n_assets; i++)
        if (strcmp(web_assets[i].path, url) == 0)
            return respond(c, MHD_HTTP_OK, web_assets[i].content_type, web_assets[i].data,
                           web_assets[i].len, MHD_RESPMEM_PERSISTENT);
    return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct http *h = cls;
    UNUSED(version);
    UNUSED(upload_data);
    UNUSED(upload_size);
    UNUSED(con_cls);
    /* Read-only by design: nothing here changes the gateway. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "read-only: only GET and HEAD\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!authorized(h, c)) {
        static const char msg[] = "authentication required\n";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        enum MHD_Result ret = MHD_queue_basic_auth_fail_response(c, "parkgw", r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/api/status") == 0)
        return serve_status(h, c);
    if (strcmp(url, "/api/stream") == 0)
        return serve_stream(h, c);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (strcmp(url, "/api/bill") == 0)
        return serve_bill(h, c);
    return serve_asset(c, url);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    UNUSED(cls);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    log_warn("http: %s", buf);
}

int http_start(const struct http_opts *o, struct http **ret, char *err, size_t errlen)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int r = netaddr_parse(o->listen, &addr, &alen, err, errlen);
    if (r < 0)
        return r;
    struct http *h = xcalloc(1, sizeof(*h));
    h->password = o->password ? xstrdup(o->password) : NULL;
    h->storage_path = xstrdup(o->storage_path);
    h->bill = o->bill;
    h->bill_ud = o->bill_ud;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->changed, &ca);
    pthread_condattr_destroy(&ca);

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* microhttpd's ports are unsigned short; the address carries the real one. */
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                              (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)HTTP_MAX_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
                              (unsigned)(3 * HTTP_KEEPALIVE_MS / 1000), MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log, NULL, MHD_OPTION_END);
    if (!h->mhd) {
        r = errno ? -errno : -EADDRINUSE;
        snprintf(err, errlen, "cannot listen on %s: %s", o->listen, strerror(-r));
        http_stop(h);
        return r;
    }
    *ret = h;
    return 0;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    json_decref(h->doc);
    free(h->doc_text);
    free(h->delta_text);
    free(h->metrics);
    free(h->password);
    free(h->storage_path);
    pthread_cond_destroy(&h->changed);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
