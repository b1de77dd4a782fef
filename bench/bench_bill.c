/*
 * bench_bill.c - `parkgw bill` over a year of 1-minute data for the whole
 * demo park (config/demo.cfg: 99 meters' billing counters), generated into a
 * temp database through the store API in day-sized transactions; then the
 * statement for one month through the rollups and from raw samples only.
 * Also: ingest rate with rollups on and off, and through the daemon's staged
 * write path (bulk and daemon-shaped transactions), and bytes per stored
 * sample. Then the same month again with a meter history on every
 * electricity meter: a CT change on the 10th and a replacement recorded on
 * the 20th (storage/meterlog.h), so each of their rows has three segments.
 * Prints figures, asserts nothing.
 *
 *   bench_bill [-c config (config/demo.cfg)] [-d days (365)] [-o db] [-k]
 *              [-r repeat (3)]
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/statement_html.h"
#include "engine/statement_out.h"
#include "common/timeparse.h"
#include "common/util.h"
#include "storage/meterlog.h"
#include "storage/store.h"

#define MIN_MS 60000LL
/* 2025-01-01T00:00:00+08:00 */
#define Y0 1735660800000LL

struct meter_pt {
    uint32_t id;
    double value;   /* the counter */
    double rate;    /* peak consumption per minute */
};

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double mono_s(void)
{
    return (double)now_mono_ms() / 1000.0;
}

/* A day-shift load curve with a little deterministic ripple. */
static double load_at(int64_t minute_of_year, uint32_t id)
{
    int hod = (int)((minute_of_year / 60 + 8) % 24); /* the park's local hour */
    double base = hod >= 8 && hod < 18 ? 1.0 : 0.3;
    double ripple = 0.05 * sin((double)(minute_of_year + id * 97) / 37.0);
    return base + ripple;
}

static int register_points(struct store *st, const struct config *cfg, struct meter_pt **ret,
                           size_t *ret_n)
{
    size_t n = 0, cap = 0;
    struct meter_pt *m = NULL;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *cm = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *prof = &cfg->profiles[cm->profile];
            int bp = profile_billing_point(prof);
            if (bp < 0)
                continue;
            m = xgrow(m, &cap, n + 1, sizeof(*m));
            int r = store_point_id(st, cfg->enterprises[e].id, cm->id, prof->points[bp].name,
                                   cm->utility, KIND_COUNTER, &m[n].id);
            if (r < 0) {
                free(m);
                return r;
            }
            m[n].value = 1000.0 + 37.0 * (double)n;
            m[n].rate = 0.5 + (double)(n % 17) * 0.8;
            /* stay within the profile's max_rate (per hour), else every
             * minute would be an excluded spike */
            double lim = prof->points[bp].max_rate / 60.0 * 0.5;
            if (lim > 0 && m[n].rate > lim)
                m[n].rate = lim;
            n++;
            /* the reactive counter of the power factor: 0.3-0.6 kvarh a kWh (PF 0.86-0.96) */
            if (cm->reactive >= 0) {
                m = xgrow(m, &cap, n + 1, sizeof(*m));
                r = store_point_id(st, cfg->enterprises[e].id, cm->id,
                                   prof->points[cm->reactive].name, cm->utility, KIND_COUNTER,
                                   &m[n].id);
                if (r < 0) {
                    free(m);
                    return r;
                }
                /* stored as read (x PT x CT), unlike the billing counter's dial */
                m[n].value = 500.0;
                m[n].rate = m[n - 1].rate * (0.3 + 0.1 * (double)(n % 4)) *
                            point_ratio_factor(&prof->points[bp], cm->pt_ratio, cm->ct_ratio);
                n++;
            }
        }
    *ret = m;
    *ret_n = n;
    return 0;
}

/* Bulk shape: one transaction per day, point-major (the import shape). */
static int load_days(struct store *st, struct meter_pt *m, size_t nm, int64_t day0, int days,
                     double *ret_secs, double *ret_cpu, int64_t *ret_samples)
{
    size_t per_day = nm * 1440;
    struct sample *buf = xcalloc(per_day, sizeof(*buf));
    double t0 = mono_s(), c0 = cpu_s();
    int64_t total = 0;
    for (int d = 0; d < days; d++) {
        size_t k = 0;
        for (size_t p = 0; p < nm; p++)
            for (int i = 0; i < 1440; i++) {
                int64_t minute = (day0 + d) * 1440 + i;
                m[p].value += m[p].rate * load_at(minute, m[p].id);
                buf[k++] = (struct sample){m[p].id, Y0 + minute * MIN_MS, m[p].value};
            }
        int r = store_insert(st, buf, k);
        if (r < 0) {
            fprintf(stderr, "insert: %s\n", strerror(-r));
            free(buf);
            return r;
        }
        total += (int64_t)k;
        if (days >= 30 && (d + 1) % 30 == 0)
            fprintf(stderr, "  ... %d days\n", d + 1);
    }
    *ret_secs = mono_s() - t0;
    *ret_cpu = cpu_s() - c0;
    *ret_samples = total;
    free(buf);
    return 0;
}

/* Daemon shape: one transaction per minute holding every meter's reading.
 * staged: through the writer's path (store_set_staging, store_maintain
 * after each commit, the rest moved at the end) instead of store_insert. */
static int load_live(struct store *st, struct meter_pt *m, size_t nm, int64_t minute0,
                     int minutes, bool staged, double *ret_secs, double *ret_cpu)
{
    struct sample *buf = xcalloc(nm, sizeof(*buf));
    double t0 = mono_s(), c0 = cpu_s();
    store_set_staging(st, staged);
    for (int i = 0; i < minutes; i++) {
        int64_t minute = minute0 + i;
        for (size_t p = 0; p < nm; p++) {
            m[p].value += m[p].rate * load_at(minute, m[p].id);
            buf[p] = (struct sample){m[p].id, Y0 + minute * MIN_MS, m[p].value};
        }
        int r;
        if (staged) {
            r = store_begin(st);
            if (r == 0 && (r = store_add_samples(st, buf, nm)) < 0)
                store_rollback(st);
            else if (r == 0)
                r = store_commit(st);
            if (r == 0)
                r = store_maintain(st, Y0 + minute * MIN_MS);
        } else {
            r = store_insert(st, buf, nm);
        }
        if (r < 0) {
            free(buf);
            return r;
        }
    }
    if (staged) {
        int r = store_flush_staged(st);
        store_set_staging(st, false);
        if (r < 0) {
            free(buf);
            return r;
        }
    }
    *ret_secs = mono_s() - t0;
    *ret_cpu = cpu_s() - c0;
    free(buf);
    return 0;
}

static void unlink_db(const char *path)
{
    char f[4096];
    unlink(path);
    snprintf(f, sizeof(f), "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", path);
    unlink(f);
}

/* Ingest with rollups on or off into a fresh database: bulk days, then
 * daemon-shaped minutes. Prints one line. */
static void ingest_case(const char *path, const struct config *cfg, bool rollups, bool staged,
                        int days, int live_minutes)
{
    struct store *st;
    struct meter_pt *m;
    size_t nm;
    char err[512];
    unlink_db(path);
    if (store_open(path, false, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    store_set_rollups_for_bench(st, rollups);
    if (register_points(st, cfg, &m, &nm) < 0) {
        store_close(st);
        return;
    }
    double secs, cpu, lsecs = 0, lcpu = 0;
    int64_t n;
    if (load_days(st, m, nm, 0, days, &secs, &cpu, &n) == 0 &&
        load_live(st, m, nm, (int64_t)days * 1440, live_minutes, staged, &lsecs, &lcpu) == 0) {
        struct store_stats ss;
        store_stats(st, &ss);
        printf("rollups %-3s%s: bulk %8.0f samples/s (%.2f us CPU/sample); daemon-shaped "
               "(%zu samples/commit) %8.0f samples/s (%.2f us CPU/sample); %.1f bytes/sample\n",
               rollups ? "on" : "off", staged ? " (staged)" : "", (double)n / secs, cpu * 1e6 / (double)n, nm,
               (double)nm * live_minutes / lsecs, lcpu * 1e6 / ((double)nm * live_minutes),
               (double)ss.db_bytes / (double)ss.samples);
    }
    free(m);
    store_close(st);
    unlink_db(path);
}

static int last_cb(void *ud, int64_t ts, double v)
{
    (void)ts;
    *(double *)ud = v;
    return 0;
}

/* For every electricity meter: CT x 1.5 from the 10th of the month at
 * [from, to) on, a replacement on the 20th whose final and initial readings
 * are the stored reading there (the generated counter goes on). 0 or -1. */
static int add_history(const char *path, const struct config *cfg, int64_t from, size_t *ret_n)
{
    struct store *st;
    char err[512];
    size_t n = 0;
    if (store_open(path, false, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int64_t t_ratio = from + 9 * 86400000LL + 12 * 3600000LL;
    int64_t t_repl = from + 19 * 86400000LL + 15 * 3600000LL + 30000;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *prof = &cfg->profiles[m->profile];
            int bp = profile_billing_point(prof);
            uint32_t id;
            if (m->utility != UTIL_ELECTRICITY || bp < 0 ||
                store_find_point(st, cfg->enterprises[e].id, m->id, prof->points[bp].name,
                                 &id) < 0)
                continue;
            double v = NAN;
            store_scan(st, id, t_repl - MIN_MS, t_repl, last_cb, &v);
            struct meterlog_rec r0 = {.ts = 0, .kind = METERLOG_INITIAL, .pt = m->pt_ratio,
                                      .ct = m->ct_ratio, .source = "config"};
            struct meterlog_rec r1 = {.ts = t_ratio, .kind = METERLOG_RATIO,
                                      .pt = m->pt_ratio, .ct = m->ct_ratio * 1.5,
                                      .source = "meter"};
            struct meterlog_rec r2 = {.ts = t_repl, .kind = METERLOG_REPLACE, .pt = m->pt_ratio,
                                      .ct = m->ct_ratio * 1.5, .final_dial = v,
                                      .initial_dial = v, .source = "meter"};
            sqlite3 *db = store_db(st);
            if (meterlog_add(db, cfg->enterprises[e].id, m->id, &r0, NULL) < 0 ||
                meterlog_add(db, cfg->enterprises[e].id, m->id, &r1, NULL) < 0 ||
                meterlog_add(db, cfg->enterprises[e].id, m->id, &r2, NULL) < 0) {
                store_close(st);
                return -1;
            }
            n++;
        }
    store_close(st);
    *ret_n = n;
    return 0;
}

static double time_bill(const struct config *cfg, struct store *st, struct statement_request *req,
                        int repeat, char **ret_text)
{
    double best = INFINITY;
    for (int k = 0; k < repeat; k++) {
        char *text = NULL, err[512];
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        double t0 = mono_s();
        int r = statement_out_print(f, cfg, st, req, STATEMENT_CSV, err, sizeof(err));
        double dt = mono_s() - t0;
        fclose(f);
        if (r < 0) {
            fprintf(stderr, "bill: %s\n", err);
            free(text);
            return NAN;
        }
        if (dt < best)
            best = dt;
        if (k == repeat - 1 && ret_text)
            *ret_text = text;
        else
            free(text);
    }
    return best;
}

/* Every format of the month's statement, as `bill` writes them: the table,
 * CSV, JSON, and the HTML pages of every enterprise plus the index, from
 * one computation with the daily series (what --format html needs). Returns
 * the best wall time; *ret_bytes the output's size. */
static double time_all_formats(const struct config *cfg, struct store *st,
                               struct statement_request *req, int repeat, size_t *ret_bytes)
{
    double best = INFINITY;
    for (int k = 0; k < repeat; k++) {
        char *text = NULL, err[512];
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        struct statement_request q = *req;
        q.daily = true;
        struct statement *s;
        double t0 = mono_s();
        int r = statement_build(cfg, st, &q, &s, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "bill: %s\n", err);
            fclose(f);
            free(text);
            return NAN;
        }
        statement_out_write(f, cfg, s, STATEMENT_TABLE);
        statement_out_write(f, cfg, s, STATEMENT_CSV);
        statement_out_write(f, cfg, s, STATEMENT_JSON);
        for (size_t e = 0; e < cfg->n_enterprises; e++)
            if (statement_html_has(s, e))
                statement_html_page(f, cfg, s, e);
        statement_html_index(f, cfg, s, NULL);
        statement_free(s);
        fflush(f);
        double dt = mono_s() - t0;
        fclose(f);
        *ret_bytes = len;
        free(text);
        if (dt < best)
            best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    const char *cfg_path = "config/demo.cfg", *db = NULL;
    int days = 365, repeat = 3, c;
    bool keep = false;
    char err[1024];

    while ((c = getopt(argc, argv, "c:d:o:kr:h")) != -1) {
        int64_t v;
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'd':
            if (parse_int64(optarg, &v) < 0 || v < 40 || v > 3660)
                return 1;
            days = (int)v;
            break;
        case 'o':
            db = optarg;
            break;
        case 'k':
            keep = true;
            break;
        case 'r':
            if (parse_int64(optarg, &v) < 0 || v < 1 || v > 100)
                return 1;
            repeat = (int)v;
            break;
        default:
            fprintf(stderr, "usage: bench_bill [-c config] [-d days (>= 40)] [-o db] [-k] "
                            "[-r repeat]\n");
            return c == 'h' ? 0 : 1;
        }
    }
    struct config *cfg;
    if (config_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n(run from the source tree or pass -c)\n", err);
        return 1;
    }
    setenv("TZ", cfg->timezone ? cfg->timezone : "UTC", 1);
    tzset();
    /* The data is 1-minute: poll interval 60 s, so a minute between readings
     * is covered (demo.cfg polls every 5-10 s, which would make every
     * minute a gap and every bucket a raw read). */
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++)
            cfg->enterprises[e].meters[i].interval = 60;
    char *path = db ? xstrdup(db) : xasprintf("/tmp/bench_bill.%d.db", (int)getpid());
    char *scratch = xasprintf("%s.ingest", path);

    /* Ingest rates on a fresh database each: 30 days bulk + 1 day live. */
    printf("ingest, %s (%s), 30 days bulk + 1 day daemon-shaped:\n", cfg_path,
           cfg->timezone ? cfg->timezone : "UTC");
    ingest_case(scratch, cfg, false, false, 30, 1440);
    ingest_case(scratch, cfg, true, false, 30, 1440);
    ingest_case(scratch, cfg, true, true, 30, 1440);

    /* The year. */
    struct store *st;
    struct meter_pt *m;
    size_t nm;
    unlink_db(path);
    if (store_open(path, false, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (register_points(st, cfg, &m, &nm) < 0)
        return 1;
    printf("generating %d days of 1-minute readings for %zu counters (billing, reactive) into %s\n", days, nm,
           path);
    double secs, cpu;
    int64_t n;
    if (load_days(st, m, nm, 0, days, &secs, &cpu, &n) < 0)
        return 1;
    struct store_stats ss;
    store_stats(st, &ss);
    printf("  %lld samples in %.1f s (%.0f samples/s, %.2f us CPU/sample), database %.1f MiB, "
           "%.1f bytes/sample with rollups\n",
           (long long)n, secs, (double)n / secs, cpu * 1e6 / (double)n,
           (double)ss.db_bytes / 1048576.0, (double)ss.db_bytes / (double)ss.samples);
    store_close(st);
    free(m);

    /* Bill a month from the middle of the year: local 1st to 1st. */
    if (store_open(path, true, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct statement_request req = {0};
    int month = days >= 220 ? 7 : 1; /* July: the summer critical peak */
    char from_s[16], to_s[16];
    snprintf(from_s, sizeof(from_s), "2025-%02d-01", month);
    snprintf(to_s, sizeof(to_s), "2025-%02d-01", month + 1);
    timeparse(from_s, &req.from);
    timeparse(to_s, &req.to);
    char *t_roll = NULL, *t_raw = NULL;
    double d_roll = time_bill(cfg, st, &req, repeat, &t_roll);
    req.raw_only = true;
    double d_raw = time_bill(cfg, st, &req, repeat, &t_raw);
    req.raw_only = false;
    size_t all_bytes = 0;
    double d_all = time_all_formats(cfg, st, &req, repeat, &all_bytes);
    printf("bill %s..%s, whole park (%zu counters), best of %d:\n"
           "  rollups: %8.1f ms\n  raw only: %7.1f ms\n  statements identical: %s\n",
           from_s, to_s, nm, repeat, d_roll * 1000, d_raw * 1000,
           t_roll && t_raw && strcmp(t_roll, t_raw) == 0 ? "yes" : "no (see -k and diff)");
    printf("  all formats (table, CSV, JSON, HTML of every enterprise + index, one "
           "computation with daily series): %.1f ms, %.0f KiB\n",
           d_all * 1000, (double)all_bytes / 1024.0);
    if (keep && t_roll && t_raw) {
        char *f1 = xasprintf("%s.rollup.csv", path), *f2 = xasprintf("%s.raw.csv", path);
        FILE *f = fopen(f1, "w");
        if (f) {
            fputs(t_roll, f);
            fclose(f);
        }
        f = fopen(f2, "w");
        if (f) {
            fputs(t_raw, f);
            fclose(f);
        }
        free(f1);
        free(f2);
    }
    free(t_roll);
    free(t_raw);
    store_close(st);

    size_t nh = 0;
    if (add_history(path, cfg, req.from, &nh) < 0)
        return 1;
    if (store_open(path, true, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    req.raw_only = false;
    t_roll = t_raw = NULL;
    d_roll = time_bill(cfg, st, &req, repeat, &t_roll);
    req.raw_only = true;
    d_raw = time_bill(cfg, st, &req, repeat, &t_raw);
    printf("the same with a CT change and a recorded replacement on each of %zu electricity "
           "meters:\n  rollups: %8.1f ms\n  raw only: %7.1f ms\n  statements identical: %s\n",
           nh, d_roll * 1000, d_raw * 1000,
           t_roll && t_raw && strcmp(t_roll, t_raw) == 0 ? "yes" : "no (see -k and diff)");
    if (keep && t_roll && t_raw) {
        char *f1 = xasprintf("%s.history.rollup.csv", path);
        char *f2 = xasprintf("%s.history.raw.csv", path);
        FILE *f = fopen(f1, "w");
        if (f) {
            fputs(t_roll, f);
            fclose(f);
        }
        f = fopen(f2, "w");
        if (f) {
            fputs(t_raw, f);
            fclose(f);
        }
        free(f1);
        free(f2);
    }
    free(t_roll);
    free(t_raw);
    store_close(st);
    if (!keep)
        unlink_db(path);
    else
        printf("kept %s\n", path);
    free(scratch);
    free(path);
    config_free(cfg);
    return 0;
}
