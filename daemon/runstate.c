/*
 * runstate.c - the daemon's counters as a JSON file for `parkgw status`
 * (see runstate.h).
 */
#include "daemon/runstate.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/poller.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/mqtt.h"
#include "daemon/writer.h"

/* Meters per bus copied per snapshot; a bus has at most 247 unit ids. */
#define RUNSTATE_MAX_METERS 256
/* Points of a meter's values copied per snapshot (profiles have a few dozen). */
#define RUNSTATE_MAX_POINTS 512

char *runstate_path(const char *storage_path)
{
    return xasprintf("%s.state.json", storage_path);
}

/* v to 'digits' significant digits, as the live payload prints it (a float32
 * register's 7, which its binary value only pretends to exceed), but never
 * dropping integer digits (a 16,098,054 kWh counter stays whole). */
static double round_digits(double v, int digits)
{
    if (digits >= 15 || v == 0)
        return v;
    if (fabs(v) >= pow(10, digits))
        return round(v);
    char buf[40];
    snprintf(buf, sizeof(buf), "%.*g", digits, v);
    return strtod(buf, NULL);
}

/* The meter's last good values as {"point": value}; points that did not
 * decode (or to NaN/Inf) are left out. */
static json_t *values_json(struct poller *p, size_t i, size_t n_points, double *v, bool *ok,
                           int64_t *ret_ts)
{
    const char *const *names;
    const int *digits;
    size_t n = poller_get_values(p, i, v, ok, n_points, ret_ts, &names, &digits);
    if (!*ret_ts)
        return NULL;
    json_t *o = json_object();
    for (size_t k = 0; k < n; k++)
        if (ok[k] && isfinite(v[k]))
            json_object_set_new(o, names[k], json_real(round_digits(v[k], digits[k])));
    return o;
}

static json_t *meter_json(const struct poller_meter_stats *st)
{
    json_t *o = json_object();
    if (st->state_since) {
        json_t *names = json_array();
        char buf[POLLER_ALARMS_LEN], *save = NULL;
        memcpy(buf, st->alarms, sizeof(buf));
        buf[sizeof(buf) - 1] = '\0';
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(names, json_string(t));
        json_object_set_new(o, "state", json_string(meter_state_name(st->state)));
        json_object_set_new(o, "since", json_integer(st->state_since));
        json_object_set_new(o, "alarms", names);
    }
    json_object_set_new(o, "comm_lost", json_boolean(st->comm_lost));
    json_object_set_new(o, "polls", json_integer((json_int_t)st->polls));
    json_object_set_new(o, "polls_ok", json_integer((json_int_t)st->polls_ok));
    json_object_set_new(o, "timeouts", json_integer((json_int_t)st->timeouts));
    json_object_set_new(o, "exceptions", json_integer((json_int_t)st->exceptions));
    json_object_set_new(o, "bad_replies", json_integer((json_int_t)st->bad_replies));
    json_object_set_new(o, "conn_errors", json_integer((json_int_t)st->conn_errors));
    json_object_set_new(o, "bad_values", json_integer((json_int_t)st->bad_values));
    json_object_set_new(o, "last_ok_ts", json_integer(st->last_ok_ts));
    json_object_set_new(o, "busy_us", json_integer((json_int_t)st->busy_us));
    json_object_set_new(o, "consecutive_failures", json_integer(st->consecutive_failures));
    if (st->last_error)
        json_object_set_new(o, "last_error", json_string(bus_strerror(st->last_error)));
    return o;
}

json_t *runstate_build(int64_t started_ms, struct poller *const *pollers, size_t n_pollers,
                       struct writer *w, struct mqtt *m)
{
    json_t *root = json_object(), *meters = json_object();
    struct poller_meter_stats *st = xcalloc(RUNSTATE_MAX_METERS, sizeof(*st));
    double *v = xcalloc(RUNSTATE_MAX_POINTS, sizeof(*v));
    bool *ok = xcalloc(RUNSTATE_MAX_POINTS, sizeof(*ok));

    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "started", json_integer(started_ms));
    json_object_set_new(root, "updated", json_integer(now_real_ms()));
    for (size_t b = 0; b < n_pollers; b++) {
        if (!pollers[b])
            continue;
        size_t n = poller_get_stats(pollers[b], st, RUNSTATE_MAX_METERS);
        for (size_t i = 0; i < n; i++) {
            const struct cfg_meter *cm = st[i].meter;
            char key[160];
            snprintf(key, sizeof(key), "%s/%s", cm->enterprise->id, cm->id);
            json_t *mj = meter_json(&st[i]);
            int64_t vts;
            json_t *vals = values_json(pollers[b], i, RUNSTATE_MAX_POINTS, v, ok, &vts);
            if (vals) {
                json_object_set_new(mj, "values_ts", json_integer(vts));
                json_object_set_new(mj, "values", vals);
            }
            json_object_set_new(meters, key, mj);
        }
    }
    json_object_set_new(root, "meters", meters);
    if (w) {
        struct writer_stats ws;
        writer_get_stats(w, &ws);
        json_object_set_new(root, "writer",
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "samples_committed",
                                      (json_int_t)ws.samples_committed, "batches_dropped",
                                      (json_int_t)ws.batches_dropped, "commit_errors",
                                      (json_int_t)ws.commit_errors, "queue_len",
                                      (json_int_t)ws.queue_len, "outbox_dropped",
                                      (json_int_t)ws.outbox_dropped, "lock_wait_max_ms",
                                      (json_int_t)ws.lock_wait_max_ms));
    }
    if (m) {
        struct mqtt_stats ms;
        mqtt_get_stats(m, &ms);
        json_object_set_new(root, "mqtt",
                            json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:i}", "connected", ms.connected,
                                      "published", (json_int_t)ms.published, "dropped",
                                      (json_int_t)ms.dropped, "connects", (json_int_t)ms.connects,
                                      "connection_lost", (json_int_t)ms.connection_lost,
                                      "refused", (json_int_t)ms.ack_refused, "protocol",
                                      ms.proto));
    }
    free(st);
    free(v);
    free(ok);
    return root;
}

int runstate_write(const char *path, json_t *root)
{
    int r = 0;
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    r = text ? write_all(fd, text, strlen(text)) : -ENOMEM;
    free(text);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
out:
    free(tmp);
    return r;
}

json_t *runstate_read(const char *path)
{
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (root && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}
