/*
 * test_rollup.c - the rollups behind bill and query: local-time bucket
 * arithmetic, the rows maintained by store_add_samples (hand-computed), the
 * flags that send billing back to raw samples, the migration from schema 1,
 * all-or-nothing batches, raw retention, and the proof that billing and
 * query through the rollups equal the raw computation on 40 days of 1-minute
 * data full of wraps, resets, spikes, bad reads, gaps and a late import.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/billing.h"
#include "cli/cli.h"
#include "cli/query.h"
#include "engine/billfeed.h"
#include "common/util.h"
#include "storage/rollup.h"
#include "storage/store.h"
#include "tests/unit/check.h"

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
/* 2026-03-01T00:00:00+08:00 */
#define T0 1772294400000LL

static char tmpdir[PATH_MAX];

static void make_dirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

static void db_path(char *buf, size_t len, const char *name)
{
    char f[PATH_MAX + 16];
    if (snprintf(buf, len, "%s/%s", tmpdir, name) >= (int)len)
        abort();
    unlink(buf);
    snprintf(f, sizeof(f), "%s-wal", buf);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", buf);
    unlink(f);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* Runs sql on path (it ATTACHes the other database and fills a temp table
 * d(c) with counts of differing rows) and returns sum(c): 0 when the two
 * agree, -1 when the SQL failed. */
static int64_t db_diff(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t diff = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT sum(c) FROM d", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        diff = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return diff;
}

static int sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

struct rows {
    size_t n;
    struct rollup_row r[64];
};

static int collect_row(void *ud, const struct rollup_row *w)
{
    struct rows *c = ud;
    if (c->n < 64)
        c->r[c->n] = *w;
    c->n++;
    return 0;
}

static struct rows get_rows(struct store *s, uint32_t p, enum rollup_level l, int64_t from,
                            int64_t to)
{
    struct rows c = {0};
    CHECK_INT(store_rollup_scan(s, p, l, from, to, collect_row, &c), 0);
    return c;
}

/* ---- bucket arithmetic ---- */

static void test_buckets(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    /* 2026-03-10T12:07:30+08:00 = 1773115650000; its quarter hour starts at
     * 12:00 (1773115200000), its hour too, its day at 00:00+08:00 =
     * 1773072000000 (16:00 UTC the day before: local, not UTC midnight). */
    CHECK_INT(rollup_floor(1773115650000LL, ROLLUP_15M), 1773115200000LL);
    CHECK_INT(rollup_floor(1773115650000LL, ROLLUP_1H), 1773115200000LL);
    CHECK_INT(rollup_floor(1773115650000LL, ROLLUP_1D), 1773072000000LL);
    CHECK_INT(rollup_next(1773072000000LL, ROLLUP_1D), 1773072000000LL + DAY_MS);
    CHECK_INT(rollup_next(1773115200000LL, ROLLUP_15M), 1773115200000LL + 900000);
    CHECK_INT(rollup_ceil(1773115200000LL, ROLLUP_1H), 1773115200000LL);
    CHECK_INT(rollup_ceil(1773115200001LL, ROLLUP_1H), 1773115200000LL + 3600000);
    CHECK_INT(rollup_level_of_step(900), ROLLUP_15M);
    CHECK_INT(rollup_level_of_step(60), -1);

    /* Europe/Berlin: 2026-03-29 has 23 hours (CET -> CEST at 02:00).
     * 2026-03-29T00:00+01:00 = 2026-03-28T23:00Z = 1774738800000; the next
     * midnight 2026-03-30T00:00+02:00 = 2026-03-29T22:00Z, 23 h later. A
     * 15-minute bucket after the switch is aligned to the new offset:
     * 03:20+02:00 (01:20Z = 1774747200000) is in 03:15+02:00 = 1774746900000. */
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    CHECK_INT(rollup_floor(1774738800000LL + 5 * 3600000LL, ROLLUP_1D), 1774738800000LL);
    CHECK_INT(rollup_next(1774738800000LL, ROLLUP_1D), 1774738800000LL + 23 * 3600000LL);
    CHECK_INT(rollup_floor(1774747200000LL, ROLLUP_15M), 1774746900000LL);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}

/* ---- rows kept by store_add_samples ---- */

static void test_rows(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t c = 0, g = 0;

    db_path(path, sizeof(path), "rows.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK(sql_int(path, "PRAGMA user_version") >= 2); /* rollups came with 2 */
    CHECK_INT(store_point_id(s, "e", "m", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &c), 0);
    CHECK_INT(store_point_id(s, "e", "m", "kw", UTIL_ELECTRICITY, KIND_GAUGE, &g), 0);

    /* Counter, one batch in ts order: 12:00 100, 12:05 101, 12:10 99 (a
     * drop), 12:14 102, 12:20 104 (next quarter). Gauge at 12:00 5, 12:05 7,
     * 12:10 3. */
    int64_t t = T0 + 12 * 3600000LL;
    struct sample b1[] = {
        {c, t, 100},           {c, t + 5 * MIN_MS, 101},  {c, t + 10 * MIN_MS, 99},
        {c, t + 14 * MIN_MS, 102}, {c, t + 20 * MIN_MS, 104}, {g, t, 5},
        {g, t + 5 * MIN_MS, 7}, {g, t + 10 * MIN_MS, 3},
    };
    CHECK_INT(store_insert(s, b1, ARRAY_SIZE(b1)), 0);
    /* Daemon style: one sample per transaction, looked up in the table:
     * 12:25 105.5, then a duplicate of 12:25 (ignored, counted once). */
    struct sample b2 = {c, t + 25 * MIN_MS, 105.5};
    CHECK_INT(store_insert(s, &b2, 1), 0);
    CHECK_INT(store_insert(s, &b2, 1), 0);

    /* Quarter 12:00: n 4, first 12:00 100, last 12:14 102, min 99, max 102,
     * sum 402, one drop (101 -> 99); rises: 1 per 5 min = 12/h, 3 per 4 min =
     * 45/h, and the pair leaving to 12:20 (+2 in 6 min = 20/h): max 45; max
     * gap 5 min. Quarter 12:15: 12:20 104 and 12:25 105.5, n 2; entering pair
     * 12:14 -> 12:20 is 6 min (gap) and 20/h; 1.5 in 5 min = 18/h. */
    struct rows q = get_rows(s, c, ROLLUP_15M, t, t + 3600000);
    CHECK_INT(q.n, 2);
    CHECK_INT(q.r[0].bucket, t);
    CHECK_INT(q.r[0].n, 4);
    CHECK_INT(q.r[0].first_ts, t);
    CHECK(q.r[0].first_v == 100);
    CHECK_INT(q.r[0].last_ts, t + 14 * MIN_MS);
    CHECK(q.r[0].last_v == 102);
    CHECK(q.r[0].min == 99 && q.r[0].max == 102 && q.r[0].sum == 402);
    CHECK_INT(q.r[0].anomalies, 1);
    CHECK_NEAR(q.r[0].max_rise, 45.0, 1e-9);
    CHECK_INT(q.r[0].max_gap, 5 * MIN_MS);
    CHECK_INT(q.r[1].bucket, t + 15 * MIN_MS);
    CHECK_INT(q.r[1].n, 2);
    CHECK(q.r[1].first_v == 104 && q.r[1].last_v == 105.5);
    CHECK_INT(q.r[1].anomalies, 0);
    CHECK_NEAR(q.r[1].max_rise, 20.0, 1e-9);
    CHECK_INT(q.r[1].max_gap, 6 * MIN_MS);

    /* The hour and the day hold all six readings: sum 100+101+99+102+104+
     * 105.5 = 611.5. */
    struct rows h = get_rows(s, c, ROLLUP_1H, t, t + 3600000);
    CHECK_INT(h.n, 1);
    CHECK_INT(h.r[0].n, 6);
    CHECK(h.r[0].sum == 611.5 && h.r[0].last_v == 105.5 && h.r[0].first_v == 100);
    CHECK_INT(h.r[0].anomalies, 1);
    struct rows d = get_rows(s, c, ROLLUP_1D, T0, T0 + DAY_MS);
    CHECK_INT(d.n, 1);
    CHECK_INT(d.r[0].bucket, T0);
    CHECK_INT(d.r[0].n, 6);

    /* Gauge: n 3, min 3, max 7, sum 15 (avg 5). */
    struct rows gq = get_rows(s, g, ROLLUP_15M, t, t + 3600000);
    CHECK_INT(gq.n, 1);
    CHECK(gq.r[0].n == 3 && gq.r[0].min == 3 && gq.r[0].max == 7 && gq.r[0].sum == 15);

    /* A bad read high as the last reading of a quarter: 12:29 900 then
     * 12:31 106. The drop 900 -> 106 is in the 12:30 quarter and is also
     * flagged on the 12:15 quarter it leaves. */
    struct sample b3[] = {{c, t + 29 * MIN_MS, 900}, {c, t + 31 * MIN_MS, 106}};
    CHECK_INT(store_insert(s, b3, 2), 0);
    q = get_rows(s, c, ROLLUP_15M, t + 15 * MIN_MS, t + 45 * MIN_MS);
    CHECK_INT(q.n, 2);
    CHECK_INT(q.r[0].anomalies, 1);
    CHECK_INT(q.r[1].anomalies, 1);

    /* An import into the past (12:07, between 12:05 and 12:10) marks its
     * quarter anomalous once more; the hour gets it too. */
    struct sample late = {c, t + 7 * MIN_MS, 100.5};
    CHECK_INT(store_insert(s, &late, 1), 0);
    q = get_rows(s, c, ROLLUP_15M, t, t + 15 * MIN_MS);
    CHECK_INT(q.r[0].n, 5);
    CHECK_INT(q.r[0].anomalies, 2);
    h = get_rows(s, c, ROLLUP_1H, t, t + 3600000);
    CHECK_INT(h.r[0].n, 9);
    store_close(s);
}

/* ---- all or nothing, migration ---- */

static void test_atomic_and_migration(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t c = 0;

    /* A batch that hits SQLITE_FULL leaves neither samples nor rollups. */
    db_path(path, sizeof(path), "full.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "e", "m", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &c), 0);
    int64_t cap = 0;
    CHECK_INT(store_set_max_pages_for_test(s, 1, &cap), 0);
    size_t n = 20000;
    struct sample *big = xcalloc(n, sizeof(*big));
    for (size_t i = 0; i < n; i++)
        big[i] = (struct sample){c, T0 + (int64_t)i * MIN_MS, (double)i};
    CHECK_INT(store_insert(s, big, n), -ENOSPC);
    free(big);
    store_close(s);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM series"), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM rollup_15m"), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM rollup_1d"), 0);

    /* A schema-1 database with samples gets its rollups when migrated:
     * readings 10, 11, 13 at 00:00, 00:20, 00:40 -> quarters 00:00, 00:15,
     * 00:30 with one reading each; one hour with n 3, sum 34. */
    db_path(path, sizeof(path), "v1.db");
    CHECK_INT(sql_exec(path,
                       "CREATE TABLE points(id INTEGER PRIMARY KEY, enterprise TEXT NOT NULL,"
                       " meter TEXT NOT NULL, point TEXT NOT NULL, utility TEXT NOT NULL,"
                       " kind TEXT NOT NULL, UNIQUE(enterprise, meter, point)) STRICT;"
                       "CREATE TABLE samples(point INTEGER NOT NULL, ts INTEGER NOT NULL,"
                       " value REAL NOT NULL, PRIMARY KEY(point, ts)) STRICT, WITHOUT ROWID;"
                       "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, topic TEXT NOT NULL,"
                       " payload TEXT NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,"
                       " created INTEGER NOT NULL) STRICT;"
                       "CREATE TABLE meta(key TEXT PRIMARY KEY, value ANY) STRICT;"
                       "INSERT INTO points VALUES (1, 'e', 'm', 'kwh', 'electricity', 'counter');"
                       "INSERT INTO samples VALUES (1, 1772294400000, 10), "
                       "(1, 1772295600000, 11), (1, 1772296800000, 13);"
                       "PRAGMA user_version = 1;"),
              SQLITE_OK);
    s = NULL;
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -EPROTO);
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK(sql_int(path, "PRAGMA user_version") >= 2); /* rollups came with 2 */
    struct rows q = get_rows(s, 1, ROLLUP_15M, T0, T0 + DAY_MS);
    CHECK_INT(q.n, 3);
    CHECK_INT(q.r[1].bucket, T0 + 15 * MIN_MS);
    CHECK_INT(q.r[1].max_gap, 20 * MIN_MS);
    struct rows h = get_rows(s, 1, ROLLUP_1H, T0, T0 + DAY_MS);
    CHECK_INT(h.n, 1);
    CHECK(h.r[0].n == 3 && h.r[0].sum == 34 && h.r[0].last_v == 13);
    store_close(s);
}

/* ---- the 40-day series ---- */

#define DAYS 40
#define NMIN (DAYS * 1440)
/* Minute index of day d, hh:mm. */
#define AT(d, h, m) ((d) * 1440 + (h) * 60 + (m))

struct series {
    double v[NMIN];
    bool present[NMIN];
};

/*
 * Point A: a float counter rising 1..4 per minute (max_rate 600/h), with a
 * persisting jump of +5000 at day 5 10:15 (a spike), a bad read high at day 7
 * 13:59 (last of its quarter), a bad read low at day 9 06:44, a 20-minute gap
 * at day 12 14:03, a meter replacement at day 15 09:37 (restarts at 12), a
 * bad read low mid-quarter at day 20 17:07, and two hours at day 30 11:00
 * left out of the live feed and imported afterwards.
 * Point B: a uint16 register (wraps at 65536) rising 2..6 per minute from
 * 60000: about 3.5 wraps; a reset to 5 at day 22 00:00 (a day boundary).
 */
static void make_series(struct series *a, struct series *b)
{
    double va = 1000, vb = 60000;
    for (int i = 0; i < NMIN; i++) {
        if (i == AT(15, 9, 37))
            va = 12;
        else
            va += 1 + (i % 7) * 0.5;
        if (i == AT(5, 10, 15))
            va += 5000;
        a->v[i] = va;
        a->present[i] = !(i >= AT(12, 14, 3) && i < AT(12, 14, 23));
        if (i == AT(22, 0, 0))
            vb = fmod(vb, 65536.0) * 0.5; /* down by less than 80% of 65536: no wrap */
        else
            vb += 2 + (i % 5);
        b->v[i] = fmod(vb, 65536.0);
        b->present[i] = true;
    }
    a->v[AT(7, 13, 59)] += 100000;
    a->v[AT(9, 6, 44)] *= 0.5;
    a->v[AT(20, 17, 7)] -= 300;
}

static bool late_minute(int i)
{
    return i >= AT(30, 11, 0) && i < AT(30, 13, 0);
}

static void load(struct store *s, uint32_t pa, uint32_t pb, const struct series *a,
                 const struct series *b)
{
    /* Days 0-9 point by point, one day per transaction (the import/bench
     * shape); the rest one minute per transaction for both points (the
     * daemon's shape); then the two late hours. */
    size_t cap = 2 * 1440, n;
    struct sample *buf = xcalloc(cap, sizeof(*buf));
    for (int d = 0; d < DAYS; d++) {
        if (d < 10) {
            n = 0;
            for (int k = 0; k < 2; k++)
                for (int i = d * 1440; i < (d + 1) * 1440; i++) {
                    const struct series *sr = k ? b : a;
                    if (sr->present[i])
                        buf[n++] = (struct sample){k ? pb : pa, T0 + i * MIN_MS, sr->v[i]};
                }
            CHECK_INT(store_insert(s, buf, n), 0);
            continue;
        }
        for (int i = d * 1440; i < (d + 1) * 1440; i++) {
            n = 0;
            if (a->present[i] && !late_minute(i))
                buf[n++] = (struct sample){pa, T0 + i * MIN_MS, a->v[i]};
            buf[n++] = (struct sample){pb, T0 + i * MIN_MS, b->v[i]};
            if (store_insert(s, buf, n) != 0) {
                CHECK(!"insert");
                break;
            }
        }
    }
    n = 0;
    for (int i = AT(30, 11, 0); i < AT(30, 13, 0); i++)
        buf[n++] = (struct sample){pa, T0 + i * MIN_MS, a->v[i]};
    CHECK_INT(store_insert(s, buf, n), 0);
    free(buf);
}

static void add_hours(struct cfg_band *b, int from_min, int to_min)
{
    b->hours = realloc(b->hours, (b->n_hours + 1) * sizeof(*b->hours));
    if (!b->hours)
        abort();
    b->hours[b->n_hours].from_min = from_min;
    b->hours[b->n_hours].to_min = to_min;
    b->n_hours++;
}

static bool same(double x, double y)
{
    return fabs(x - y) <= 1e-9 * fmax(1.0, fmax(fabs(x), fabs(y)));
}

static int compare_bill(struct store *s, uint32_t point, const struct bill_params *p,
                        const char *what, struct bill_result *ret_rollup)
{
    struct bill_acc *ar, *au;
    struct bill_result rr, ru;
    if (bill_acc_new(p, &ar) < 0 || bill_acc_new(p, &au) < 0)
        abort();
    CHECK_INT(billfeed_counter(s, point, p, true, ROLLUP_1D, ar), 0);
    CHECK_INT(billfeed_counter(s, point, p, false, ROLLUP_1D, au), 0);
    bill_acc_finish(ar, &rr);
    bill_acc_finish(au, &ru);
    bill_acc_free(ar);
    bill_acc_free(au);
    int bad = 0;
    bad += !same(rr.consumption, ru.consumption);
    bad += !same(rr.coverage_pct, ru.coverage_pct);
    bad += !same(rr.unbanded, ru.unbanded);
    bad += !same(rr.amount, ru.amount);
    for (size_t i = 0; i < rr.n_bands; i++)
        bad += !same(rr.band[i], ru.band[i]);
    bad += rr.n_bands != ru.n_bands || rr.n_wraps != ru.n_wraps || rr.n_spikes != ru.n_spikes ||
           rr.n_outliers != ru.n_outliers || rr.n_resets != ru.n_resets;
    bad += rr.has_readings != ru.has_readings || rr.start_ts != ru.start_ts ||
           rr.end_ts != ru.end_ts || rr.start_reading != ru.start_reading ||
           rr.end_reading != ru.end_reading;
    if (bad)
        fprintf(stderr,
                "%s: raw %.9f cov %.6f w%zu s%zu o%zu r%zu | rollup %.9f cov %.6f w%zu s%zu o%zu "
                "r%zu\n",
                what, rr.consumption, rr.coverage_pct, rr.n_wraps, rr.n_spikes, rr.n_outliers,
                rr.n_resets, ru.consumption, ru.coverage_pct, ru.n_wraps, ru.n_spikes,
                ru.n_outliers, ru.n_resets);
    CHECK_INT(bad, 0);
    if (ret_rollup)
        *ret_rollup = ru;
    return bad;
}

/* Splits CSV text into lines and compares them field by field, numbers
 * within 1e-9 relative. Returns the number of differing fields. */
static int compare_csv(const char *x, const char *y)
{
    int bad = 0;
    char *cx = xstrdup(x), *cy = xstrdup(y), *sx, *sy;
    char *lx = strtok_r(cx, "\n", &sx), *ly = strtok_r(cy, "\n", &sy);
    while (lx && ly) {
        char *fx = lx, *fy = ly;
        for (;;) {
            char *ex = strchr(fx, ','), *ey = strchr(fy, ',');
            if (ex)
                *ex = 0;
            if (ey)
                *ey = 0;
            char *px, *py;
            double dx = strtod(fx, &px), dy = strtod(fy, &py);
            bool numeric = *fx && *fy && !*px && !*py;
            if (numeric ? !same(dx, dy) : strcmp(fx, fy) != 0) {
                if (bad < 5)
                    fprintf(stderr, "query differs: '%s' vs '%s'\n", fx, fy);
                bad++;
            }
            if (!ex || !ey) {
                bad += (ex != NULL) != (ey != NULL);
                break;
            }
            fx = ex + 1;
            fy = ey + 1;
        }
        lx = strtok_r(NULL, "\n", &sx);
        ly = strtok_r(NULL, "\n", &sy);
    }
    bad += (lx != NULL) != (ly != NULL);
    free(cx);
    free(cy);
    return bad;
}

static char *run_query(const struct config *cfg, struct store *s, const char *target,
                       int64_t from, int64_t to, int step, bool raw)
{
    char *text = NULL, err[256] = "";
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int r = raw ? query_write_raw(f, cfg, s, target, from, to, step, false, err, sizeof(err))
                : query_write(f, cfg, s, target, from, to, step, false, err, sizeof(err));
    fclose(f);
    if (r != 0)
        fprintf(stderr, "query: %s\n", err);
    CHECK_INT(r, 0);
    return text;
}

static void test_equality(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t pa = 0, pb = 0;
    static struct series a, b;

    db_path(path, sizeof(path), "equal.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "ent", "e1", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &pa), 0);
    CHECK_INT(store_point_id(s, "ent", "e2", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &pb), 0);
    make_series(&a, &b);
    load(s, pa, pb, &a, &b);

    /* DESIGN-like tariff: peak 08-11 and 18-23, flat 07-08 and 11-18,
     * valley 23-07 (crosses midnight): whole hours, so the 1h level. */
    struct cfg_band bands[3] = {{.name = "peak", .price = 1.2},
                                {.name = "flat", .price = 0.8},
                                {.name = "valley", .price = 0.4}};
    add_hours(&bands[0], 8 * 60, 11 * 60);
    add_hours(&bands[0], 18 * 60, 23 * 60);
    add_hours(&bands[1], 7 * 60, 8 * 60);
    add_hours(&bands[1], 11 * 60, 18 * 60);
    add_hours(&bands[2], 23 * 60, 7 * 60);
    struct cfg_tariff tou = {.currency = "CNY", .price = 0.9, .bands = bands, .n_bands = 3};
    /* The same with the valley from 23:30: quarter hours, the 15m level. */
    struct cfg_band qb[2] = {{.name = "day", .price = 1}, {.name = "night", .price = 0.5}};
    add_hours(&qb[0], 7 * 60 + 30, 23 * 60 + 30);
    add_hours(&qb[1], 23 * 60 + 30, 7 * 60 + 30);
    struct cfg_tariff quarter = {.currency = "CNY", .bands = qb, .n_bands = 2};
    struct cfg_tariff flat = {.currency = "CNY", .price = 0.9};
    CHECK_INT(billfeed_level(&tou), ROLLUP_1H);
    CHECK_INT(billfeed_level(&quarter), ROLLUP_15M);
    CHECK_INT(billfeed_level(&flat), ROLLUP_1D);
    CHECK_INT(billfeed_level(NULL), ROLLUP_1D);

    const struct cfg_tariff *tariffs[] = {&tou, &quarter, &flat};
    /* Periods: odd edges across most anomalies; the calendar month; one
     * within a quarter hour; one across midnight; one ending right after the
     * replacement. */
    struct {
        int64_t from, to;
    } periods[] = {
        {T0 + AT(2, 7, 23) * MIN_MS + 45000, T0 + AT(38, 16, 41) * MIN_MS},
        {T0, T0 + 31 * DAY_MS},
        {T0 + AT(5, 10, 1) * MIN_MS, T0 + AT(5, 10, 9) * MIN_MS},
        {T0 + AT(4, 23, 50) * MIN_MS, T0 + AT(5, 0, 20) * MIN_MS},
        {T0 + AT(14, 0, 0) * MIN_MS, T0 + AT(15, 9, 38) * MIN_MS},
        {T0 + AT(29, 5, 0) * MIN_MS, T0 + AT(31, 5, 0) * MIN_MS},
    };
    int bad = 0;
    struct bill_result ra = {0}, rb = {0};
    for (size_t ti = 0; ti < ARRAY_SIZE(tariffs); ti++)
        for (size_t pi = 0; pi < ARRAY_SIZE(periods); pi++) {
            char what[64];
            struct bill_params p = {
                .from = periods[pi].from, .to = periods[pi].to, .max_rate = 600,
                .gap_ms = 3 * MIN_MS, .tariff = tariffs[ti],
            };
            snprintf(what, sizeof(what), "A tariff %zu period %zu", ti, pi);
            bad += compare_bill(s, pa, &p, what, ti == 0 && pi == 0 ? &ra : NULL);
            p.max_rate = 0;
            p.wrap = 65536;
            snprintf(what, sizeof(what), "B tariff %zu period %zu", ti, pi);
            bad += compare_bill(s, pb, &p, what, ti == 0 && pi == 0 ? &rb : NULL);
        }
    CHECK_INT(bad, 0);
    /* The period held what it was built to: A the spike, both bad reads
     * around day 7 and 9 and day 20, the replacement; B its wraps and reset. */
    CHECK_INT(ra.n_spikes, 1);
    CHECK_INT(ra.n_outliers, 3);
    CHECK_INT(ra.n_resets, 1);
    CHECK(ra.coverage_pct < 100.0 && ra.coverage_pct > 99.0);
    CHECK(rb.n_wraps >= 2);
    CHECK_INT(rb.n_resets, 1);

    /* Query: 15m, 1h and 1d buckets through the rollups equal the raw ones. */
    const char *cfg_text =
        "gateway = { id = \"t\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"unused.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1\"; };\n"
        "buses = ({ name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 1502; });\n"
        "profiles = ({ name = \"p\"; utility = \"electricity\"; points = (\n"
        "  { name = \"kwh\"; fc = 3; address = 0; type = \"float32\"; kind = \"counter\";\n"
        "    billing = true; max_rate = 600.0; }); });\n"
        "enterprises = ({ id = \"ent\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1; profile = \"p\";\n"
        "    interval = 60; }); });\n";
    char cfg_path[PATH_MAX + 16];
    snprintf(cfg_path, sizeof(cfg_path), "%s/q.cfg", tmpdir);
    FILE *cf = fopen(cfg_path, "w");
    if (cf) {
        fputs(cfg_text, cf);
        fclose(cf);
    }
    struct config *cfg = NULL;
    if (config_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        CHECK(!"query config loads");
    } else {
        int steps[] = {900, 3600, 86400};
        for (size_t k = 0; k < ARRAY_SIZE(steps); k++) {
            char *x = run_query(cfg, s, "ent/e1", periods[0].from, periods[0].to, steps[k], true);
            char *y = run_query(cfg, s, "ent/e1", periods[0].from, periods[0].to, steps[k], false);
            CHECK(x && y && strlen(x) > 100);
            if (x && y)
                CHECK_INT(compare_csv(x, y), 0);
            free(x);
            free(y);
        }
        config_free(cfg);
    }

    /* The rollup path really skips the raw samples of clean buckets: remove
     * two clean hours of raw samples (day 18, 10:00-12:00) behind the store's
     * back; the rollup bill does not change, the raw one loses coverage. */
    store_close(s);
    /* (whole 15-minute chunks: the hours are chunk-aligned) */
    char *del = xasprintf("DELETE FROM series WHERE point = %u AND t0 >= %lld AND t1 < %lld", pa,
                          (long long)(T0 + AT(18, 10, 0) * MIN_MS),
                          (long long)(T0 + AT(18, 12, 0) * MIN_MS));
    CHECK_INT(sql_exec(path, del), SQLITE_OK);
    free(del);
    s = NULL;
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), 0);
    if (s) {
        struct bill_params p = {.from = periods[1].from, .to = periods[1].to, .max_rate = 600,
                                .gap_ms = 3 * MIN_MS, .tariff = &flat};
        struct bill_acc *acc;
        struct bill_result r1, r2;
        bill_acc_new(&p, &acc);
        CHECK_INT(billfeed_counter(s, pa, &p, false, ROLLUP_1D, acc), 0);
        bill_acc_finish(acc, &r1);
        bill_acc_free(acc);
        bill_acc_new(&p, &acc);
        CHECK_INT(billfeed_counter(s, pa, &p, true, ROLLUP_1D, acc), 0);
        bill_acc_finish(acc, &r2);
        bill_acc_free(acc);
        /* The raw path sees the gap the deleted chunks left: still covered
         * (two good readings either side), but its consumption is spread
         * over a long gap, an estimate; the rollups saw every minute. */
        CHECK(r2.estimated > r1.estimated + 0.1);
        store_close(s);
    }
    for (int i = 0; i < 3; i++)
        free(bands[i].hours);
    for (int i = 0; i < 2; i++)
        free(qb[i].hours);
}


/* ---- the staged write path (store_set_staging) ---- */

/* Rows of both handles equal, field by field, for every level over
 * [from, to); returns the number of differences. */
static int compare_rows(struct store *x, struct store *y, uint32_t p, int64_t from, int64_t to)
{
    int bad = 0;
    for (int l = 0; l < ROLLUP__COUNT; l++) {
        struct rows *a = xcalloc(1, sizeof(*a)), *b = xcalloc(1, sizeof(*b));
        /* 64 rows at most per call: walk in windows of 8 hours (32 quarters) */
        for (int64_t t = from; t < to; t += 8 * 3600000LL) {
            int64_t t1 = t + 8 * 3600000LL < to ? t + 8 * 3600000LL : to;
            if (l == ROLLUP_1D && t != from)
                break;
            if (l == ROLLUP_1D)
                t1 = to;
            a->n = b->n = 0;
            CHECK_INT(store_rollup_scan(x, p, (enum rollup_level)l, t, t1, collect_row, a), 0);
            CHECK_INT(store_rollup_scan(y, p, (enum rollup_level)l, t, t1, collect_row, b), 0);
            if (a->n != b->n) {
                fprintf(stderr, "level %d [%lld, %lld): %zu rows vs %zu\n", l, (long long)t,
                        (long long)t1, a->n, b->n);
                bad++;
                continue;
            }
            for (size_t i = 0; i < a->n && i < 64; i++) {
                const struct rollup_row *u = &a->r[i], *v = &b->r[i];
                bool eq = u->bucket == v->bucket && u->n == v->n && u->first_ts == v->first_ts &&
                          u->last_ts == v->last_ts && u->first_v == v->first_v &&
                          u->last_v == v->last_v && u->min == v->min && u->max == v->max &&
                          same(u->sum, v->sum) && u->anomalies == v->anomalies &&
                          same(u->max_rise, v->max_rise) && u->max_gap == v->max_gap;
                if (!eq && bad < 5)
                    fprintf(stderr,
                            "level %d bucket %lld: n %lld/%lld first %g/%g last %g/%g anom "
                            "%lld/%lld rise %g/%g gap %lld/%lld\n",
                            l, (long long)u->bucket, (long long)u->n, (long long)v->n, u->first_v,
                            v->first_v, u->last_v, v->last_v, (long long)u->anomalies,
                            (long long)v->anomalies, u->max_rise, v->max_rise,
                            (long long)u->max_gap, (long long)v->max_gap);
                bad += !eq;
            }
        }
        free(a);
        free(b);
    }
    return bad;
}

static int64_t count_cb_n;
static int count_cb(void *ud, int64_t ts, double v)
{
    (void)ud;
    (void)ts;
    (void)v;
    count_cb_n++;
    return 0;
}

static int64_t scan_count(struct store *s, uint32_t p, int64_t from, int64_t to)
{
    count_cb_n = 0;
    CHECK_INT(store_scan(s, p, from, to, count_cb, NULL), 0);
    return count_cb_n;
}

/* Minutes of the live feed in this test: two windows of the 40-day series
 * (day 12 with A's 20-minute gap; days 20-22 with A's bad read at day 20
 * 17:07 and B's reset at day 22 00:00), one transaction per minute. */
static bool staged_minute(int i)
{
    return (i >= AT(12, 0, 0) && i < AT(12, 18, 0)) || (i >= AT(20, 0, 0) && i < AT(22, 6, 0));
}

static void test_staging(void)
{
    char pi[PATH_MAX], ps[PATH_MAX], err[512] = "";
    struct store *si = NULL, *ss = NULL;
    uint32_t a1 = 0, b1 = 0, a2 = 0, b2 = 0;
    static struct series a, b;

    make_series(&a, &b);
    db_path(pi, sizeof(pi), "stage_imm.db");
    db_path(ps, sizeof(ps), "stage.db");
    CHECK_INT(store_open(pi, false, &si, err, sizeof(err)), 0);
    CHECK_INT(store_open(ps, false, &ss, err, sizeof(err)), 0);
    if (!si || !ss)
        return;
    CHECK_INT(store_point_id(si, "ent", "e1", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &a1), 0);
    CHECK_INT(store_point_id(si, "ent", "e2", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &b1), 0);
    CHECK_INT(store_point_id(ss, "ent", "e1", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &a2), 0);
    CHECK_INT(store_point_id(ss, "ent", "e2", "kwh", UTIL_ELECTRICITY, KIND_COUNTER, &b2), 0);
    store_set_staging(ss, true);
    /* A reader on its own connection (parkgw bill/query beside the daemon)
     * follows the writer's commits: its copy of the staged rows reloads. */
    struct store *ro = NULL;
    CHECK_INT(store_open(ps, true, &ro, err, sizeof(err)), 0);

    /* Minutes 12:05-12:09 of day 12 (A only) are left out and imported
     * later, into the past, through another connection. */
    int late0 = AT(12, 5, 0), late1 = AT(12, 10, 0);
    int checks = 0, bad = 0, last = 0;
    const int64_t end = T0 + 23 * DAY_MS;
    for (int i = 0; i < NMIN; i++) {
        if (!staged_minute(i))
            continue;
        struct sample x[2], y[2];
        size_t n = 0;
        int64_t ts = T0 + i * MIN_MS;
        bool late = i >= late0 && i < late1;
        if (a.present[i] && !late) {
            x[n] = (struct sample){a1, ts, a.v[i]};
            y[n++] = (struct sample){a2, ts, a.v[i]};
        }
        x[n] = (struct sample){b1, ts, b.v[i]};
        y[n++] = (struct sample){b2, ts, b.v[i]};
        CHECK_INT(store_insert(si, x, n), 0);
        CHECK_INT(store_begin(ss), 0);
        CHECK_INT(store_add_samples(ss, y, n), 0);
        CHECK_INT(store_commit(ss), 0);
        CHECK(store_maintain(ss, ts) >= 0);
        last = i;
        /* Compare at odd minutes and around the events: stored rows plus
         * the buckets computed from raw samples past the horizon equal the
         * rows the immediate path keeps. */
        if (i % 397 == 0 || i == AT(20, 17, 7) || i == AT(20, 17, 8) || i == AT(22, 0, 0) ||
            i == AT(12, 14, 2) || i == AT(12, 14, 30) || i == AT(20, 23, 59)) {
            bad += compare_rows(si, ss, a1, T0 + 11 * DAY_MS, end);
            bad += compare_rows(si, ss, b1, T0 + 11 * DAY_MS, end);
            CHECK_INT(scan_count(ss, a2, T0, end), scan_count(si, a1, T0, end));
            if (ro) {
                int64_t lo = 0, li = 0;
                CHECK_INT(scan_count(ro, b2, T0, end), scan_count(si, b1, T0, end));
                bad += compare_rows(si, ro, b1, T0 + 11 * DAY_MS, end);
                /* the 20th reading back from the end, across both tables */
                CHECK_INT(store_seek_back(ro, b2, end, T0, 20, &lo), 0);
                CHECK_INT(store_seek_back(si, b1, end, T0, 20, &li), 0);
                CHECK_INT(lo, li);
                CHECK_INT(lo, ts - 19 * MIN_MS);
            }
            checks++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK(checks >= 10);
    store_close(ro);
    /* The moves kept only the current quarter hour staged: the last minute
     * is day 22 05:59, so 05:45..05:59, 15 minutes of both points = 30. */
    CHECK_INT(last, AT(22, 5, 59));
    CHECK_INT(sql_int(ps, "SELECT coalesce(sum(n), 0) FROM staged"), 30);
    CHECK_INT(sql_int(ps, "SELECT min(ts) FROM staged"), T0 + AT(22, 5, 45) * MIN_MS);

    /* Bills through the rollups (stored + computed past the horizon) equal
     * the raw ones, for periods that end in, and beyond, the staged part. */
    struct cfg_tariff flat = {.currency = "CNY", .price = 0.9};
    struct cfg_band bands[2] = {{.name = "day", .price = 1}, {.name = "night", .price = 0.5}};
    add_hours(&bands[0], 7 * 60 + 30, 23 * 60 + 30);
    add_hours(&bands[1], 23 * 60 + 30, 7 * 60 + 30);
    struct cfg_tariff quarter = {.currency = "CNY", .bands = bands, .n_bands = 2};
    const struct cfg_tariff *tariffs[] = {&flat, &quarter};
    int64_t tos[] = {T0 + AT(22, 5, 50) * MIN_MS, T0 + AT(22, 6, 0) * MIN_MS, T0 + 31 * DAY_MS};
    for (size_t ti = 0; ti < ARRAY_SIZE(tariffs); ti++)
        for (size_t k = 0; k < ARRAY_SIZE(tos); k++) {
            struct bill_params p = {.from = T0 + AT(12, 3, 17) * MIN_MS, .to = tos[k],
                                    .max_rate = 600, .gap_ms = 3 * MIN_MS, .tariff = tariffs[ti]};
            bad += compare_bill(ss, a2, &p, "staged A", NULL);
            p.max_rate = 0;
            p.wrap = 65536;
            bad += compare_bill(ss, b2, &p, "staged B", NULL);
        }
    CHECK_INT(bad, 0);

    /* The late minutes through a second, immediate connection (an import
     * while the daemon runs): its open moves the staged rows, its insert
     * into the past keeps the rollups at once; the staging handle notices
     * (data_version) and goes on. */
    struct store *imp = NULL;
    CHECK_INT(store_open(ps, false, &imp, err, sizeof(err)), 0);
    CHECK_INT(sql_int(ps, "SELECT coalesce(sum(n), 0) FROM staged"), 0);
    struct sample lx[16], ly[16];
    size_t ln = 0;
    for (int i = late0; i < late1 && ln < ARRAY_SIZE(lx); i++, ln++) {
        lx[ln] = (struct sample){a1, T0 + i * MIN_MS, a.v[i]};
        ly[ln] = (struct sample){a2, T0 + i * MIN_MS, a.v[i]};
    }
    CHECK_INT(store_insert(si, lx, ln), 0);
    if (imp)
        CHECK_INT(store_insert(imp, ly, ln), 0);
    store_close(imp);
    /* One more live minute each (day 22 06:00), staged again. */
    int i6 = AT(22, 6, 0);
    struct sample x6[2] = {{a1, T0 + i6 * MIN_MS, a.v[i6]}, {b1, T0 + i6 * MIN_MS, b.v[i6]}};
    struct sample y6[2] = {{a2, T0 + i6 * MIN_MS, a.v[i6]}, {b2, T0 + i6 * MIN_MS, b.v[i6]}};
    CHECK_INT(store_insert(si, x6, 2), 0);
    CHECK_INT(store_begin(ss), 0);
    CHECK_INT(store_add_samples(ss, y6, 2), 0);
    CHECK_INT(store_commit(ss), 0);
    CHECK_INT(sql_int(ps, "SELECT coalesce(sum(n), 0) FROM staged"), 2);
    /* A duplicate of a staged sample is ignored, as in samples. */
    CHECK_INT(store_insert(ss, y6, 1), 0);
    CHECK_INT(scan_count(ss, a2, T0, end), scan_count(si, a1, T0, end));
    bad += compare_rows(si, ss, a1, T0 + 11 * DAY_MS, end);
    bad += compare_rows(si, ss, b1, T0 + 11 * DAY_MS, end);
    CHECK_INT(bad, 0);
    struct store_stats st1, st2;
    CHECK_INT(store_stats(si, &st1), 0);
    CHECK_INT(store_stats(ss, &st2), 0);
    CHECK_INT(st2.samples, st1.samples);
    CHECK_INT(st2.oldest_ts, st1.oldest_ts);

    /* Closing moves the rest: afterwards the tables are identical row for
     * row (samples and the three rollup levels). */
    store_close(ss);
    store_close(si);
    char *q = xasprintf("ATTACH '%s' AS i;"
                        "CREATE TEMP TABLE d AS"
                        " SELECT count(*) AS c FROM (SELECT * FROM series EXCEPT SELECT * FROM i.series)"
                        " UNION ALL SELECT count(*) FROM (SELECT * FROM rollup_15m EXCEPT SELECT * FROM i.rollup_15m)"
                        " UNION ALL SELECT count(*) FROM (SELECT * FROM rollup_1h EXCEPT SELECT * FROM i.rollup_1h)"
                        " UNION ALL SELECT count(*) FROM (SELECT * FROM rollup_1d EXCEPT SELECT * FROM i.rollup_1d)"
                        " UNION ALL SELECT count(*) FROM (SELECT * FROM i.rollup_15m EXCEPT SELECT * FROM rollup_15m)"
                        " UNION ALL SELECT count(*) FROM (SELECT * FROM i.rollup_1d EXCEPT SELECT * FROM rollup_1d);",
                        pi);
    CHECK_INT(db_diff(ps, q), 0);
    free(q);
    CHECK_INT(sql_int(ps, "SELECT coalesce(sum(n), 0) FROM staged"), 0);
    CHECK_INT(sql_int(ps, "SELECT sum(n) FROM series"), sql_int(pi, "SELECT sum(n) FROM series"));
    for (int i = 0; i < 2; i++)
        free(bands[i].hours);
}

static void test_migration_v4(void);

/* A staging handle that dies without closing (kill -9): the next open
 * moves its staged samples, rollups included. And a version 3 database
 * (before the staging table) migrates. */
static void test_staging_crash_and_v3(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t p = 0;

    db_path(path, sizeof(path), "stage_crash.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "e", "m", "kwh", UTIL_WATER, KIND_COUNTER, &p), 0);
    store_close(s);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct store *c = NULL;
        if (store_open(path, false, &c, err, sizeof(err)) < 0)
            _exit(1);
        store_set_staging(c, true);
        /* 100 readings at 1 s from T0, value = 10 + i: one quarter hour,
         * all staged (no move is due). */
        for (int i = 0; i < 100; i++) {
            struct sample x = {p, T0 + i * 1000LL, 10.0 + i};
            if (store_begin(c) < 0 || store_add_samples(c, &x, 1) < 0 || store_commit(c) < 0)
                _exit(2);
            store_maintain(c, T0 + i * 1000LL);
        }
        _exit(0);   /* no store_close: the staged rows stay */
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK_INT(status, 0);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM staged"), 100);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM series"), 0);
    s = NULL;
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    store_close(s);
    /* 100 samples, one quarter: n 100, first 10, last 109, sum
     * 100 x 10 + (0 + ... + 99) = 1000 + 4950 = 5950. */
    CHECK_INT(sql_int(path, "SELECT count(*) FROM staged"), 0);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM series"), 100);
    CHECK_INT(sql_int(path, "SELECT n * 1000000 + vsum FROM rollup_15m"), 100 * 1000000 + 5950);
    CHECK_INT(sql_int(path, "SELECT last_v FROM rollup_1d"), 109);

    test_migration_v4();
}

/* store_scan callback: appends (ts, value) to a struct sample list. */
struct slist {
    struct sample *v;
    size_t n, cap;
};

static int slist_cb(void *ud, int64_t ts, double value)
{
    struct slist *l = ud;
    l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n++] = (struct sample){0, ts, value};
    return 0;
}

/* A schema 4 database (samples + samples_recent, created by SQL with the
 * version 4 tables) migrates to chunked series: every sample survives with
 * its exact value, and the rollups equal those of the same samples inserted
 * by this version. */
static void test_migration_v4(void)
{
    char path[PATH_MAX], ref[PATH_MAX], err[512] = "";
    struct store *s = NULL, *r = NULL;
    uint32_t p[3] = {0, 0, 0};

    db_path(path, sizeof(path), "v4.db");
    db_path(ref, sizeof(ref), "v4ref.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    CHECK_INT(store_open(ref, false, &r, err, sizeof(err)), 0);
    if (!s || !r)
        return;
    /* two points of meter m1 and one of m2; 3 hours at 10 s, the last 20
     * minutes "staged"; values exact in float32 or not, negative, huge */
    const char *names[3][2] = {{"m1", "kwh"}, {"m2", "kwh"}, {"m1", "kvarh"}};
    for (int k = 0; k < 3; k++)
        CHECK_INT(store_point_id(s, "e", names[k][0], names[k][1], UTIL_ELECTRICITY, KIND_COUNTER,
                                 &p[k]), 0);
    for (int k = 0; k < 3; k++)
        CHECK_INT(store_point_id(r, "e", names[k][0], names[k][1], UTIL_ELECTRICITY, KIND_COUNTER,
                                 &p[k]), 0);
    size_t n = 3 * 360;
    int64_t split = T0 + (int64_t)(n - 120) * 10000;
    struct sample *all = xcalloc(3 * n, sizeof(*all));
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n; i++) {
            double v = k == 0 ? (double)i * 0.1 : k == 1 ? (double)i * 0.5 - 100 : 1e300 * (double)i;
            all[k * n + i] = (struct sample){p[k], T0 + (int64_t)i * 10000, v};
        }
    CHECK_INT(store_insert(r, all, 3 * n), 0);
    store_close(r);
    /* The old layout, filled by SQL: samples before 'split' with their
     * rollups (as version 4 kept them), the rest in samples_recent. */
    size_t nmain = 0;
    for (size_t i = 0; i < 3 * n; i++)
        if (all[i].ts < split)
            all[nmain++] = all[i];
    CHECK_INT(store_insert(s, all, nmain), 0);
    store_close(s);
    s = NULL;
    CHECK_INT(sql_exec(path,
                       "CREATE TABLE samples(point INTEGER NOT NULL, ts INTEGER NOT NULL,"
                       " value REAL NOT NULL, PRIMARY KEY(point, ts)) STRICT, WITHOUT ROWID;"
                       "CREATE TABLE samples_recent(ts INTEGER NOT NULL, point INTEGER NOT NULL,"
                       " value REAL NOT NULL, PRIMARY KEY(ts, point)) STRICT, WITHOUT ROWID;"
                       "DROP TABLE series; DROP TABLE staged; DROP TABLE meter_history;"
                       "DROP TABLE closed_statement; DROP TABLE closed_row;"
                       "DROP TRIGGER outbox_frozen_reading; DROP TABLE frozen_readings;"
                       "DELETE FROM meta WHERE key = 'dial_since'; PRAGMA user_version = 4;"),
              SQLITE_OK);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n; i++) {
            double v = k == 0 ? (double)i * 0.1 : k == 1 ? (double)i * 0.5 - 100 : 1e300 * (double)i;
            int64_t ts = T0 + (int64_t)i * 10000;
            CHECK_INT(sqlite3_prepare_v2(db, ts < split
                                                 ? "INSERT INTO samples VALUES (?1, ?2, ?3)"
                                                 : "INSERT INTO samples_recent(point, ts, value) "
                                                   "VALUES (?1, ?2, ?3)",
                                         -1, &ins, NULL),
                      SQLITE_OK);
            sqlite3_bind_int64(ins, 1, p[k]);
            sqlite3_bind_int64(ins, 2, ts);
            sqlite3_bind_double(ins, 3, v);
            CHECK_INT(sqlite3_step(ins), SQLITE_DONE);
            sqlite3_finalize(ins);
        }
    CHECK_INT(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM samples_recent"), 3 * 120);

    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -EPROTO);
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    CHECK_INT(sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                            "('samples', 'samples_recent')"), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM staged"), 0);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM series"), 3 * (int64_t)n);
    for (int k = 0; k < 3; k++) {
        struct slist l = {0};
        CHECK_INT(store_scan(s, p[k], INT64_MIN, INT64_MAX, slist_cb, &l), 0);
        CHECK_INT(l.n, n);
        size_t bad = 0;
        for (size_t i = 0; i < l.n && i < n; i++) {
            double v = k == 0 ? (double)i * 0.1 : k == 1 ? (double)i * 0.5 - 100 : 1e300 * (double)i;
            if (l.v[i].ts != T0 + (int64_t)i * 10000 || memcmp(&l.v[i].value, &v, sizeof(v)) != 0)
                bad++;
        }
        CHECK_INT(bad, 0);
        free(l.v);
    }
    store_close(s);
    free(all);
    /* vsum is compared with a relative tolerance: a bucket summed in two
     * parts (before and after the move) rounds differently in the last
     * bits; every other column is exact. */
#define RCOLS "point, bucket, n, first_ts, first_v, last_ts, last_v, vmin, vmax, anomalies, max_rise, max_gap"
#define RDIFF(t)                                                                               \
    " UNION ALL SELECT count(*) FROM (SELECT " RCOLS " FROM " t " EXCEPT SELECT " RCOLS      \
    " FROM i." t ")"                                                                           \
    " UNION ALL SELECT count(*) FROM (SELECT " RCOLS " FROM i." t " EXCEPT SELECT " RCOLS     \
    " FROM " t ")"                                                                             \
    " UNION ALL SELECT count(*) FROM " t " a JOIN i." t " b USING (point, bucket)"            \
    " WHERE abs(a.vsum - b.vsum) > 1e-12 * abs(b.vsum)"
    char *q = xasprintf("ATTACH '%s' AS i; CREATE TEMP TABLE d AS"
                        " SELECT count(*) AS c FROM (SELECT * FROM series EXCEPT SELECT * FROM i.series)"
                        RDIFF("rollup_15m") RDIFF("rollup_1h") RDIFF("rollup_1d") ";",
                        ref);
#undef RDIFF
#undef RCOLS
    CHECK_INT(db_diff(path, q), 0);
    free(q);
}

/* ---- retention ---- */

static void test_retention(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t p[2] = {0, 0};

    db_path(path, sizeof(path), "retain.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "e", "m", "a", UTIL_WATER, KIND_COUNTER, &p[0]), 0);
    CHECK_INT(store_point_id(s, "e", "m", "b", UTIL_WATER, KIND_COUNTER, &p[1]), 0);
    /* 10 days of 1-minute samples, value = minute index, for two points:
     * 2 x 14400 = 28800 samples. */
    size_t n = 10 * 1440;
    struct sample *buf = xcalloc(n, sizeof(*buf));
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < n; i++)
            buf[i] = (struct sample){p[k], T0 + (int64_t)i * MIN_MS, (double)i};
        CHECK_INT(store_insert(s, buf, n), 0);
    }
    free(buf);
    int64_t rollups = sql_int(path, "SELECT count(*) FROM rollup_15m");
    CHECK_INT(rollups, 2 * 10 * 96);
    /* A rebuild from the raw samples gives the same rows: 2 x 10 x 24
     * hours, every sample counted once (28800), first readings 0, 60, ...
     * per hour: sum over both points 2 x 60 x (0 + 1 + ... + 239) =
     * 2 x 60 x 28680 = 3441600. */
    CHECK_INT(store_rebuild_rollups(s), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM rollup_1h"), 480);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM rollup_1h"), 28800);
    CHECK_INT(sql_int(path, "SELECT sum(first_v) FROM rollup_1h"), 3441600);
    CHECK_INT(sql_int(path, "SELECT sum(anomalies) FROM rollup_1h"), 0);

    /* Keep 5 days, "now" = T0 + 10 days: the cutoff is T0 + 5 days, so
     * 2 x 5 x 1440 = 14400 samples go, in batches of at most 5000: 5000,
     * 5000, 4400, then nothing until the idle interval has passed. */
    int64_t now = T0 + 10 * DAY_MS;
    CHECK_INT(store_maintain(s, now), 0); /* retention off by default */
    store_set_retention(s, 5);
    /* Whole 15-sample chunks (15-minute periods of 1-minute samples): a
     * batch stops at the first chunk that reaches 5000 (334 chunks). */
    CHECK_INT(store_maintain(s, now), 5010);
    CHECK_INT(store_maintain(s, now), 5010);
    CHECK_INT(store_maintain(s, now), 4380);
    CHECK_INT(store_maintain(s, now + 1000), 0);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM series"), 14400);
    CHECK_INT(sql_int(path, "SELECT min(t0) FROM series"), T0 + 5 * DAY_MS);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM rollup_15m"), rollups);
    /* 61 s later it runs again (after the idle interval) but the next
     * chunks (T0 + 5 days .. + 14 min) are not wholly older yet: 0. 15 min
     * later they are: 2 x 15. */
    CHECK_INT(store_maintain(s, now + 61000), 0);
    CHECK_INT(store_maintain(s, now + 15 * MIN_MS + 122000), 30);

    /* Billing the deleted days still works from the rollups: days 1-3 (3
     * day buckets, readings 1440..5759 at 1 per minute) give 5759 - 1440 =
     * 4319; the tail pair runs from 5759 (T0 + 4 d - 1 min) to the oldest
     * raw sample left, 7215 at T0 + 5 d + 15 min: 1456 in 1456 minutes, of
     * which the period holds one: + 1 = 4320, as from the raw samples. */
    struct bill_params bp = {.from = T0 + DAY_MS, .to = T0 + 4 * DAY_MS, .gap_ms = 3 * MIN_MS};
    struct bill_acc *acc;
    struct bill_result r;
    bill_acc_new(&bp, &acc);
    CHECK_INT(billfeed_counter(s, p[0], &bp, false, ROLLUP_1D, acc), 0);
    bill_acc_finish(acc, &r);
    bill_acc_free(acc);
    CHECK_NEAR(r.consumption, 4320.0, 1e-9);
    store_close(s);
}

/* ---- import: rollups in the same all-or-nothing transaction ---- */

static void test_import(void)
{
    char path[PATH_MAX], cfg_path[PATH_MAX + 16], csv[PATH_MAX + 16];
    db_path(path, sizeof(path), "import.db");
    snprintf(cfg_path, sizeof(cfg_path), "%s/import.cfg", tmpdir);
    snprintf(csv, sizeof(csv), "%s/import.csv", tmpdir);
    FILE *f = fopen(cfg_path, "w");
    if (!f)
        return;
    fprintf(f,
            "gateway = { id = \"t\"; timezone = \"Asia/Shanghai\"; };\n"
            "storage = { path = \"%s\"; };\n"
            "mqtt = { uri = \"tcp://127.0.0.1:1\"; };\n"
            "buses = ({ name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 1502; });\n"
            "profiles = ({ name = \"p\"; utility = \"water\"; points = (\n"
            "  { name = \"m3\"; fc = 3; address = 0; type = \"float32\"; kind = \"counter\";\n"
            "    billing = true; }); });\n"
            "enterprises = ({ id = \"ent\"; meters = (\n"
            "  { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 1; profile = \"p\";\n"
            "    interval = 900; }); });\n",
            path);
    fclose(f);
    /* Three readings out of order in the file: 00:30 12, 00:00 10, 00:15
     * 11 (+08:00): three quarters, one hour with n 3, first 10, last 12. */
    write_text(csv, "enterprise,meter,point,ts,value\n"
                    "ent,w1,m3,2026-03-01T00:30:00+08:00,12\n"
                    "ent,w1,m3,2026-03-01T00:00:00+08:00,10\n"
                    "ent,w1,m3,2026-03-01T00:15:00+08:00,11\n");
    char *argv1[] = {"import", "--csv", csv, NULL};
    CHECK_INT(cmd_import(3, argv1, cfg_path), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM rollup_15m"), 3);
    CHECK_INT(sql_int(path, "SELECT n * 100 + first_v * 10 + last_v FROM rollup_1h"),
              300 + 100 + 12);
    CHECK_INT(sql_int(path, "SELECT sum(anomalies) FROM rollup_1h"), 0);
    /* A file with one bad row imports nothing: samples and rollups stay. */
    write_text(csv, "ent,w1,m3,2026-03-01T00:45:00+08:00,13\n"
                    "ent,w1,m3,2026-03-01T01:00:00+08:00,not-a-number\n");
    CHECK_INT(cmd_import(3, argv1, cfg_path), 1);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM series"), 3);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM rollup_15m"), 3);
}

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_rollup", t && *t ? t : "/tmp/parkgw-test");
    make_dirs(tmpdir);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();

    test_buckets();
    test_rows();
    test_atomic_and_migration();
    test_equality();
    test_retention();
    test_import();
    test_staging();
    test_staging_crash_and_v3();
    return check_done();
}
