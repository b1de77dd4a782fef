/*
 * cmd_status.c - `parkgw status`: what the store knows of every meter: its
 * state and open alarms (the alarms table, docs/ALARMS.md), its last reading
 * and how old it is, plus the database's size and sample count. Reads the
 * database read-only, so it runs beside the daemon. The running daemon's
 * counters (polls and failures per meter, writer, broker) come from the
 * runstate file it rewrites every few seconds (daemon/runstate.h).
 */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "cli/cli.h"
#include "common/util.h"
#include "daemon/runstate.h"
#include "storage/outbox.h"
#include "storage/store.h"

struct last {
    int64_t ts;
    double value;
};

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

/* Open alarms of a meter (its own rows and its bus's bus_down), as
 * "name since TIME, ..." into buf; the state they imply into *ret_state
 * (NULL when none does). q may be NULL (a store without the alarms table). */
static void open_alarms(sqlite3_stmt *q, const struct cfg_meter *m, const struct config *cfg,
                        char *buf, size_t len, const char **ret_state)
{
    size_t used = 0;
    buf[0] = '\0';
    *ret_state = NULL;
    if (!q)
        return;
    sqlite3_reset(q);
    sqlite3_bind_text(q, 1, m->enterprise->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, m->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, cfg->buses[m->bus].name, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *alarm = (const char *)sqlite3_column_text(q, 0);
        char when[32];
        if (!alarm)
            continue;
        if (strcmp(alarm, "comm_lost") == 0 || strcmp(alarm, "bus_down") == 0)
            *ret_state = "comm_lost";
        else if (strcmp(alarm, "supply_lost") == 0 && !*ret_state)
            *ret_state = "supply_lost";
        fmt_time(sqlite3_column_int64(q, 1), when, sizeof(when));
        int w = snprintf(buf + used, len - used, "%s%s since %s", used ? ", " : "", alarm, when);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

int cmd_status(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw status [-c FILE]\n");
            return 0;
        }
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
    int64_t now = now_real_ms();
    sqlite3_stmt *aq = NULL;
    if (sqlite3_prepare_v2(store_db(st),
                           "SELECT alarm, coalesce(since, raised_ts) FROM alarms"
                           " WHERE cleared_ts IS NULL AND ((enterprise = ?1 AND meter = ?2)"
                           " OR (alarm = 'bus_down' AND bus = ?3)) ORDER BY id",
                           -1, &aq, NULL) != SQLITE_OK)
        aq = NULL;
    char *state_path = runstate_path(cfg->storage_path);
    json_t *rs = runstate_read(state_path);
    json_t *rs_meters = json_object_get(rs, "meters");
    int64_t rs_age = rs ? (now - json_integer_value(json_object_get(rs, "updated"))) / 1000 : -1;
    printf("%-28s %-11s %-12s %-20s %8s  %-24s %-17s %s\n", "meter", "state", "utility",
           "last reading", "age", "billing counter", "polls ok/fail", "alarms");
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *prof = &cfg->profiles[m->profile];
            int bp = profile_billing_point(prof);
            struct last l = {0};
            uint32_t id;
            /* The newest reading, however old: a meter down for days still
             * shows when it last answered. */
            if (bp >= 0 &&
                store_find_point(st, cfg->enterprises[e].id, m->id, prof->points[bp].name, &id) == 0 &&
                store_latest_db(store_db(st), id, &l.ts, &l.value) != SQLITE_ROW)
                l = (struct last){0};
            char when[32], name[64], age[32] = "-";
            fmt_time(l.ts, when, sizeof(when));
            snprintf(name, sizeof(name), "%s/%s", cfg->enterprises[e].id, m->id);
            const char *state = "never";
            if (l.ts) {
                int64_t a = (now - l.ts) / 1000;
                snprintf(age, sizeof(age), "%llds", (long long)a);
                state = a <= 3LL * m->interval + 5 ? "ok" : "stale";
            }
            char alarms[512], counter[64] = "-";
            const char *astate;
            open_alarms(aq, m, cfg, alarms, sizeof(alarms), &astate);
            if (astate)
                state = astate;
            if (l.ts)
                snprintf(counter, sizeof(counter), "%.3f %s", l.value, utility_unit(m->utility));
            char polls[40] = "-", failures[160] = "";
            json_t *ms = json_object_get(rs_meters, name);
            if (ms) {
                long long ok = (long long)json_integer_value(json_object_get(ms, "polls_ok"));
                long long all = (long long)json_integer_value(json_object_get(ms, "polls"));
                snprintf(polls, sizeof(polls), "%lld/%lld", ok, all - ok);
                if (all > ok)
                    snprintf(failures, sizeof(failures),
                             "  [timeouts %lld, exceptions %lld, bad replies %lld, "
                             "connection %lld, bad values %lld; last: %s]",
                             (long long)json_integer_value(json_object_get(ms, "timeouts")),
                             (long long)json_integer_value(json_object_get(ms, "exceptions")),
                             (long long)json_integer_value(json_object_get(ms, "bad_replies")),
                             (long long)json_integer_value(json_object_get(ms, "conn_errors")),
                             (long long)json_integer_value(json_object_get(ms, "bad_values")),
                             json_string_value(json_object_get(ms, "last_error"))
                                 ? json_string_value(json_object_get(ms, "last_error"))
                                 : "-");
            }
            printf("%-28s %-11s %-12s %-20s %8s  %-24s %-17s %s%s\n", name, state,
                   utility_name(m->utility), when, age, counter, polls, alarms[0] ? alarms : "-",
                   failures);
        }
    struct store_stats ss;
    if (store_stats(st, &ss) == 0) {
        char oldest[32];
        fmt_time(ss.oldest_ts, oldest, sizeof(oldest));
        printf("\ndatabase %s: %.1f MiB, %lld samples, oldest %s\n", cfg->storage_path,
               (double)ss.db_bytes / 1048576.0, (long long)ss.samples, oldest);
    }
    struct outbox *ob;
    struct outbox_stats os;
    if (outbox_attach(store_db(st), &ob) == 0) {
        if (outbox_stats(ob, &os) == 0)
            printf("outbox: %lld durable message(s) waiting for the broker (seq %lld..%lld), "
                   "%lld dropped by the bound\n",
                   (long long)os.rows, (long long)os.oldest_seq, (long long)os.last_seq,
                   (long long)os.dropped);
        outbox_free(ob);
    }
    if (!rs) {
        printf("daemon: not running (no counters at %s)\n", state_path);
    } else {
        char since[32];
        fmt_time(json_integer_value(json_object_get(rs, "started")), since, sizeof(since));
        json_t *wj = json_object_get(rs, "writer"), *mj = json_object_get(rs, "mqtt");
        printf("daemon: pid %lld, started %s, counters updated %llds ago%s\n",
               (long long)json_integer_value(json_object_get(rs, "pid")), since,
               (long long)rs_age, rs_age > 30 ? " (not running?)" : "");
        if (wj)
            printf("writer: %lld samples committed, %lld queued, %lld batches dropped, "
                   "%lld commit errors\n",
                   (long long)json_integer_value(json_object_get(wj, "samples_committed")),
                   (long long)json_integer_value(json_object_get(wj, "queue_len")),
                   (long long)json_integer_value(json_object_get(wj, "batches_dropped")),
                   (long long)json_integer_value(json_object_get(wj, "commit_errors")));
        if (mj)
            printf("broker: %s, %lld published, %lld dropped, %lld connects, %lld lost\n",
                   json_is_true(json_object_get(mj, "connected")) ? "connected" : "disconnected",
                   (long long)json_integer_value(json_object_get(mj, "published")),
                   (long long)json_integer_value(json_object_get(mj, "dropped")),
                   (long long)json_integer_value(json_object_get(mj, "connects")),
                   (long long)json_integer_value(json_object_get(mj, "connection_lost")));
    }
    json_decref(rs);
    free(state_path);
    sqlite3_finalize(aq);
    store_close(st);
    config_free(cfg);
    return 0;
}
