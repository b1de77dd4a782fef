/*
 * metrics.c - Prometheus text exposition of the status document and the
 * daemon's counters (see metrics.h). Everything comes from the two JSON
 * documents the main thread already built, so a scrape costs no lock on a
 * poller and no database read of its own.
 */
#include "daemon/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/config.h"
#include "daemon/status.h"
#include "protocols/plan.h"

struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = o->cap - o->len;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        o->buf = xgrow(o->buf, &o->cap, o->len + (size_t)n + 1, 1);
    }
}

/* A label value with \, " and newline escaped, into buf. */
static const char *esc(const char *s, char *buf, size_t len)
{
    size_t j = 0;
    for (; s && *s && j + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[j++] = '\\';
            buf[j++] = *s;
        } else if (*s == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = *s;
        }
    }
    buf[j] = '\0';
    return buf;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static long long jint(json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* Labels {enterprise,meter,utility,bus} of a meter object in ent. */
static void meter_labels(json_t *ent, json_t *m, char *buf, size_t len)
{
    char e[160], id[160], b[160];
    snprintf(buf, len, "enterprise=\"%s\",meter=\"%s\",utility=\"%s\",bus=\"%s\"",
             esc(json_string_value(json_object_get(ent, "id")), e, sizeof(e)),
             esc(json_string_value(json_object_get(m, "id")), id, sizeof(id)),
             json_string_value(json_object_get(m, "utility")),
             esc(json_string_value(json_object_get(m, "bus")), b, sizeof(b)));
}

/* Calls fn for every meter of the document. */
#define FOR_METERS(doc, ent, m)                                                            \
    for (size_t e_ = 0; e_ < json_array_size(json_object_get(doc, "enterprises")); e_++)   \
        for (json_t *ent = json_array_get(json_object_get(doc, "enterprises"), e_), *ms_ = \
                 json_object_get(ent, "meters");                                           \
             ms_; ms_ = NULL)                                                              \
            for (size_t i_ = 0; i_ < json_array_size(ms_); i_++)                           \
                for (json_t *m = json_array_get(ms_, i_); m; m = NULL)

static void meter_metrics(struct out *o, json_t *doc)
{
    char l[700];
    static const char *const states[] = {"ok", "stale", "never", "comm_lost", "supply_lost"};

    head(o, "parkgw_meter_up", "gauge",
         "1 while the meter answers (state ok or supply_lost), 0 when comm_lost, stale or never read");
    FOR_METERS(doc, ent, m) {
        meter_labels(ent, m, l, sizeof(l));
        const char *s = json_string_value(json_object_get(m, "state"));
        put(o, "parkgw_meter_up{%s} %d\n", l,
            s && (strcmp(s, "ok") == 0 || strcmp(s, "supply_lost") == 0));
    }
    head(o, "parkgw_meter_state", "gauge",
         "the meter's state: 1 for the current one of ok, stale, never, comm_lost, supply_lost");
    FOR_METERS(doc, ent, m) {
        meter_labels(ent, m, l, sizeof(l));
        const char *s = json_string_value(json_object_get(m, "state"));
        for (size_t k = 0; k < ARRAY_SIZE(states); k++)
            put(o, "parkgw_meter_state{%s,state=\"%s\"} %d\n", l, states[k],
                s && strcmp(s, states[k]) == 0);
    }
    head(o, "parkgw_meter_alarms", "gauge", "open alarms of the meter (its bus's bus_down included)");
    FOR_METERS(doc, ent, m) {
        meter_labels(ent, m, l, sizeof(l));
        put(o, "parkgw_meter_alarms{%s} %zu\n", l, json_array_size(json_object_get(m, "alarms")));
    }
    head(o, "parkgw_meter_last_read_timestamp_seconds", "gauge",
         "Unix time of the meter's last good reading");
    FOR_METERS(doc, ent, m) {
        if (!json_is_integer(json_object_get(m, "last_read_ts")))
            continue;
        meter_labels(ent, m, l, sizeof(l));
        put(o, "parkgw_meter_last_read_timestamp_seconds{%s} %.3f\n", l,
            (double)jint(m, "last_read_ts") / 1000.0);
    }
    head(o, "parkgw_meter_billing_counter", "gauge",
         "the billing counter's last value in the utility's billing unit (kWh, m3, Nm3)");
    FOR_METERS(doc, ent, m) {
        json_t *b = json_object_get(m, "billing");
        if (!json_is_number(json_object_get(b, "value")))
            continue;
        meter_labels(ent, m, l, sizeof(l));
        put(o, "parkgw_meter_billing_counter{%s,unit=\"%s\"} %.17g\n", l,
            json_string_value(json_object_get(m, "unit")),
            json_number_value(json_object_get(b, "value")));
    }
}

/* One counter family from the meters' poll counters: 'key' of each
 * meter's "polls" object, with the extra label 'extra' (may be ""). */
static void poll_family(struct out *o, json_t *doc, const char *name, const char *extra,
                        const char *key)
{
    char l[700];
    FOR_METERS(doc, ent, m) {
        json_t *p = json_object_get(m, "polls");
        if (!json_is_object(p))
            continue;
        meter_labels(ent, m, l, sizeof(l));
        put(o, "%s{%s%s} %lld\n", name, l, extra, jint(p, key));
    }
}

static void poll_metrics(struct out *o, json_t *doc)
{
    static const char *const reasons[][2] = {{",reason=\"timeout\"", "timeouts"},
                                             {",reason=\"exception\"", "exceptions"},
                                             {",reason=\"bad_reply\"", "bad_replies"},
                                             {",reason=\"connection\"", "conn_errors"}};
    head(o, "parkgw_polls_total", "counter", "polls of the meter since the daemon started");
    poll_family(o, doc, "parkgw_polls_total", "", "polls");
    head(o, "parkgw_poll_failures_total", "counter", "failed polls of the meter by reason");
    for (size_t k = 0; k < ARRAY_SIZE(reasons); k++)
        poll_family(o, doc, "parkgw_poll_failures_total", reasons[k][0], reasons[k][1]);
    head(o, "parkgw_bad_values_total", "counter", "points that decoded to NaN or Inf (not stored)");
    poll_family(o, doc, "parkgw_bad_values_total", "", "bad_values");
}

/* Per bus: seconds spent polling (measured) and the planned share of the
 * line (what `parkgw check` prints for RTU buses). */
static void bus_metrics(struct out *o, const struct config *cfg, json_t *rs)
{
    char b[160];
    double *busy = xcalloc(cfg->n_buses + 1, sizeof(double));
    json_t *meters = json_object_get(rs, "meters");
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            char key[200];
            snprintf(key, sizeof(key), "%s/%s", cfg->enterprises[e].id, m->id);
            busy[m->bus] += (double)json_integer_value(
                                json_object_get(json_object_get(meters, key), "busy_us")) /
                            1e6;
        }
    head(o, "parkgw_bus_busy_seconds_total", "counter",
         "time the bus's thread spent polling its meters (rate() of it is the measured load)");
    for (size_t k = 0; k < cfg->n_buses; k++)
        put(o, "parkgw_bus_busy_seconds_total{bus=\"%s\",type=\"%s\"} %.6f\n",
            esc(cfg->buses[k].name, b, sizeof(b)), cfg->buses[k].type == BUS_RTU ? "rtu" : "tcp",
            busy[k]);
    head(o, "parkgw_bus_load_ratio", "gauge",
         "planned share of an RTU line's capacity the configured polls need (1 = full)");
    for (size_t k = 0; k < cfg->n_buses; k++)
        if (cfg->buses[k].type == BUS_RTU)
            put(o, "parkgw_bus_load_ratio{bus=\"%s\"} %.4f\n", esc(cfg->buses[k].name, b, sizeof(b)),
                plan_bus_load(cfg, (int)k));
    free(busy);
}

/* The daemon-wide numbers: each one value of a part of the documents. */
static void daemon_metrics(struct out *o, json_t *doc, json_t *rs)
{
    static const struct {
        const char *name, *type, *part, *key, *help;
    } scalars[] = {
        {"parkgw_writer_queue_samples", "gauge", "writer", "queue_len",
         "samples waiting for the database writer"},
        {"parkgw_writer_samples_committed_total", "counter", "writer", "samples_committed",
         "samples committed to the database"},
        {"parkgw_writer_batches_dropped_total", "counter", "writer", "batches_dropped",
         "sample batches dropped because the writer's queue was full"},
        {"parkgw_writer_commit_errors_total", "counter", "writer", "commit_errors",
         "failed database commits (disk full...)"},
        {"parkgw_outbox_messages", "gauge", "outbox", "messages",
         "durable messages waiting for the broker"},
        {"parkgw_outbox_dropped_total", "counter", "outbox", "dropped",
         "durable messages dropped by outbox_max_messages over the database's life"},
        {"parkgw_database_bytes", "gauge", "database", "bytes", "size of the SQLite database"},
        {"parkgw_mqtt_connected", "gauge", "mqtt", "connected", "1 while connected to the broker"},
        {"parkgw_mqtt_published_total", "counter", "mqtt", "published",
         "messages handed to the broker"},
        {"parkgw_mqtt_dropped_total", "counter", "mqtt", "dropped",
         "live messages dropped while disconnected"},
        {"parkgw_mqtt_connects_total", "counter", "mqtt", "connects", "successful broker connects"},
        {"parkgw_mqtt_connection_lost_total", "counter", "mqtt", "connection_lost",
         "broker connections lost"},
    };
    head(o, "parkgw_start_time_seconds", "gauge", "Unix time the daemon started");
    put(o, "parkgw_start_time_seconds %.3f\n", (double)jint(rs, "started") / 1000.0);
    for (size_t k = 0; k < ARRAY_SIZE(scalars); k++) {
        const char *part = scalars[k].part;
        json_t *from = strcmp(part, "writer") == 0 || strcmp(part, "mqtt") == 0
                           ? json_object_get(rs, part)
                           : json_object_get(doc, part);
        json_t *v = json_object_get(from, scalars[k].key);
        head(o, scalars[k].name, scalars[k].type, scalars[k].help);
        put(o, "%s %lld\n", scalars[k].name,
            json_is_boolean(v) ? (long long)json_is_true(v) : (long long)json_integer_value(v));
    }
}

char *metrics_render(const struct config *cfg, json_t *status, json_t *rs)
{
    struct out o = {0};
    char v[160], g[160];
    o.buf = xgrow(NULL, &o.cap, 65536, 1);
    o.buf[0] = '\0';
    head(&o, "parkgw_build_info", "gauge", "the daemon's version and gateway id");
    put(&o, "parkgw_build_info{version=\"%s\",gateway=\"%s\"} 1\n",
        esc(json_string_value(json_object_get(status, "version")), v, sizeof(v)),
        esc(cfg->gateway_id, g, sizeof(g)));
    head(&o, "parkgw_meters", "gauge", "configured meters");
    put(&o, "parkgw_meters %lld\n", jint(json_object_get(status, "meters"), "total"));
    meter_metrics(&o, status);
    poll_metrics(&o, status);
    bus_metrics(&o, cfg, rs);
    daemon_metrics(&o, status, rs);
    return o.buf;
}
