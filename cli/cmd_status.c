/*
 * cmd_status.c - `parkgw status [--format table|json]`: the status document
 * (daemon/status.h: every meter's state, open alarms, last reading and its
 * age; database, outbox, the daemon's counters) as a table for people or
 * as JSON for scripts. Reads the database read-only, so it runs beside the
 * daemon; the running daemon's counters come from the runstate file it
 * rewrites every few seconds (daemon/runstate.h).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "cli/cli.h"
#include "common/util.h"
#include "daemon/runstate.h"
#include "daemon/status.h"
#include "storage/store.h"

static void fmt_time(int64_t ms, char *buf, size_t len)
{
    if (!ms) {
        snprintf(buf, len, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static long long jint(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* One meter's table line from its object in the status document. */
static void print_meter(const char *ent, json_t *m)
{
    char name[160], when[32], age[32] = "-", counter[64] = "-", alarms[512] = "";
    size_t used = 0;
    snprintf(name, sizeof(name), "%s/%s", ent, json_string_value(json_object_get(m, "id")));
    fmt_time(jint(m, "last_read_ts"), when, sizeof(when));
    if (json_is_integer(json_object_get(m, "age_s")))
        snprintf(age, sizeof(age), "%llds", jint(m, "age_s"));
    json_t *b = json_object_get(m, "billing");
    if (json_is_object(b))
        snprintf(counter, sizeof(counter), "%.3f %s",
                 json_number_value(json_object_get(b, "value")),
                 json_string_value(json_object_get(m, "unit")));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(m, "alarms"), i, a) {
        char since[32];
        fmt_time(jint(a, "since"), since, sizeof(since));
        int w = snprintf(alarms + used, sizeof(alarms) - used, "%s%s since %s", used ? ", " : "",
                         json_string_value(json_object_get(a, "alarm")), since);
        if (w < 0 || (size_t)w >= sizeof(alarms) - used)
            break;
        used += (size_t)w;
    }
    char polls[40] = "-", failures[160] = "";
    json_t *p = json_object_get(m, "polls");
    if (json_is_object(p)) {
        long long ok = jint(p, "polls_ok"), all = jint(p, "polls");
        snprintf(polls, sizeof(polls), "%lld/%lld", ok, all - ok);
        const char *le = json_string_value(json_object_get(p, "last_error"));
        if (all > ok)
            snprintf(failures, sizeof(failures),
                     "  [timeouts %lld, exceptions %lld, bad replies %lld, "
                     "connection %lld, bad values %lld; last: %s]",
                     jint(p, "timeouts"), jint(p, "exceptions"), jint(p, "bad_replies"),
                     jint(p, "conn_errors"), jint(p, "bad_values"), le ? le : "-");
    }
    printf("%-28s %-11s %-12s %-20s %8s  %-24s %-17s %s%s\n", name,
           json_string_value(json_object_get(m, "state")),
           json_string_value(json_object_get(m, "utility")), when, age, counter, polls,
           alarms[0] ? alarms : "-", failures);
}

static void print_table(json_t *doc, const char *state_path)
{
    printf("%-28s %-11s %-12s %-20s %8s  %-24s %-17s %s\n", "meter", "state", "utility",
           "last reading", "age", "billing counter", "polls ok/fail", "alarms");
    size_t e, i;
    json_t *ent, *m;
    json_array_foreach(json_object_get(doc, "enterprises"), e, ent) {
        /* People know the enterprises by their registered names. */
        const char *id = json_string_value(json_object_get(ent, "id"));
        const char *nm = json_string_value(json_object_get(ent, "name"));
        if (nm && *nm && strcmp(nm, id) != 0)
            printf("%s (%s)\n", nm, id);
        else
            printf("%s\n", id);
        json_array_foreach(json_object_get(ent, "meters"), i, m)
            print_meter(id, m);
    }
    json_t *db = json_object_get(doc, "database");
    if (json_is_integer(json_object_get(db, "samples"))) {
        char oldest[32];
        fmt_time(jint(db, "oldest_ts"), oldest, sizeof(oldest));
        printf("\ndatabase %s: %.1f MiB, %lld samples, oldest %s\n",
               json_string_value(json_object_get(db, "path")),
               (double)jint(db, "bytes") / 1048576.0, jint(db, "samples"), oldest);
    }
    json_t *ob = json_object_get(doc, "outbox");
    if (json_is_object(ob))
        printf("outbox: %lld durable message(s) waiting for the broker (seq %lld..%lld), "
               "%lld dropped by the bound\n",
               jint(ob, "messages"), jint(ob, "oldest_seq"), jint(ob, "last_seq"),
               jint(ob, "dropped"));
    json_t *d = json_object_get(doc, "daemon");
    if (!json_is_object(d)) {
        printf("daemon: not running (no counters at %s)\n", state_path);
        return;
    }
    char since[32];
    fmt_time(jint(d, "started"), since, sizeof(since));
    long long age = jint(d, "age_s");
    printf("daemon: pid %lld, started %s, counters updated %llds ago%s\n", jint(d, "pid"), since,
           age, age > 30 ? " (not running?)" : "");
    json_t *wj = json_object_get(d, "writer"), *mj = json_object_get(d, "mqtt");
    if (json_is_object(wj))
        printf("writer: %lld samples committed, %lld queued, %lld batches dropped, "
               "%lld commit errors\n",
               jint(wj, "samples_committed"), jint(wj, "queue_len"), jint(wj, "batches_dropped"),
               jint(wj, "commit_errors"));
    if (json_is_object(mj)) {
        long long proto = jint(mj, "protocol");
        printf("broker: %s%s, %lld published, %lld dropped, %lld connects, %lld lost, "
               "%lld refused by the broker%s\n",
               json_is_true(json_object_get(mj, "connected")) ? "connected" : "disconnected",
               proto == 5 ? " (MQTT 5)" : proto == 4 ? " (MQTT 3.1.1)" : "",
               jint(mj, "published"), jint(mj, "dropped"), jint(mj, "connects"),
               jint(mj, "connection_lost"), jint(mj, "refused"),
               proto == 4 ? " (3.1.1 cannot report refusals)" : "");
    }
}

int cmd_status(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw status [-c FILE] [--format table|json]\n");
            return 0;
        }
        if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0)) {
            json = strcmp(optarg, "json") == 0;
            continue;
        }
        if (c == 'f')
            fprintf(stderr, "parkgw status: --format must be table or json, not '%s'\n", optarg);
        return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "parkgw status: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    struct store *st;
    char err[512];
    if (store_open(cfg->storage_path, true, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "parkgw status: %s\n", err);
        config_free(cfg);
        return 2;
    }
    char *state_path = runstate_path(cfg->storage_path);
    json_t *rs = runstate_read(state_path);
    json_t *doc = status_build(cfg, st, rs, now_real_ms(), STATUS_SAMPLES);
    int rc = 0;
    if (json) {
        if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) < 0)
            rc = 2;
        putchar('\n');
    } else {
        print_table(doc, state_path);
    }
    json_decref(doc);
    json_decref(rs);
    free(state_path);
    store_close(st);
    config_free(cfg);
    return rc ? rc : cli_exit_code("status", 0, "");
}
