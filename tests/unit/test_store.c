/*
 * test_store.c - the SQLite store: schema creation and versioning, point
 * registry, exact round trips, duplicate handling, read-only opens and their
 * errors, stats, close-on-exec descriptors, and the chunked series against a
 * model, including a move that fails on a full disk and rolls back.
 * Databases live in $PARKGW_TEST_TMP (set by CTest).
 */
#include "storage/store.h"
#include "common/util.h"
#include "storage/chunk.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

/* mkdir -p */
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
        abort(); /* temp dir path too long */
    /* Start from nothing: remove the database and its WAL/shm. */
    unlink(buf);
    snprintf(f, sizeof(f), "%s-wal", buf);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", buf);
    unlink(f);
}

static int sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
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

struct collected {
    size_t n;
    int64_t ts[16];
    double v[16];
    size_t stop_after;   /* 0: never stop */
};

static int collect(void *ud, int64_t ts, double value)
{
    struct collected *c = ud;
    if (c->n < 16) {
        c->ts[c->n] = ts;
        c->v[c->n] = value;
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static void test_schema_points_roundtrip(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    struct store_stats stats;
    uint32_t p1 = 0, p1b = 0, p2 = 0, found = 0;
    struct collected c;

    db_path(path, sizeof(path), "roundtrip.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s) {
        fprintf(stderr, "open: %s\n", err);
        return;
    }
    CHECK_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    CHECK_INT(sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                            "('points','series','outbox','meta')"),
              4);

    /* Registry: get-or-create returns the same id, a new point a new one. */
    CHECK_INT(store_point_id(s, "e01", "rmu", "energy", UTIL_ELECTRICITY, KIND_COUNTER, &p1), 0);
    CHECK_INT(store_point_id(s, "e01", "rmu", "energy", UTIL_ELECTRICITY, KIND_COUNTER, &p1b), 0);
    CHECK_INT(p1b, p1);
    CHECK_INT(store_point_id(s, "e01", "rmu", "voltage", UTIL_ELECTRICITY, KIND_GAUGE, &p2), 0);
    CHECK(p2 != p1);
    CHECK_INT(store_find_point(s, "e01", "rmu", "voltage", &found), 0);
    CHECK_INT(found, p2);
    found = 77;
    CHECK_INT(store_find_point(s, "e01", "rmu", "nope", &found), -ENOENT);
    CHECK_INT(found, 77);   /* untouched on failure */
    CHECK_INT(store_point_id(s, "e01", "rmu", "x", (enum utility)99, KIND_GAUGE, &found), -EINVAL);

    /* Inserted out of order; values chosen to be exact in binary
     * (123456789.125 = 987654313/8) or to be the nearest double (0.1). */
    struct sample in[] = {
        {p1, 3000, 0.1},
        {p1, 1000, -12.5},
        {p2, 1500, 42.0},
        {p1, 2000, 123456789.125},
    };
    CHECK_INT(store_insert(s, in, 4), 0);
    CHECK_INT(store_insert(s, NULL, 0), 0);

    memset(&c, 0, sizeof(c));
    CHECK_INT(store_scan(s, p1, 0, 10000, collect, &c), 0);
    CHECK_INT(c.n, 3);
    CHECK_INT(c.ts[0], 1000);
    CHECK_INT(c.ts[1], 2000);
    CHECK_INT(c.ts[2], 3000);
    CHECK(c.v[0] == -12.5);
    CHECK(c.v[1] == 123456789.125);
    CHECK(c.v[2] == 0.1);

    /* Duplicate (p1, 2000) with another value is ignored; the new (p1, 4000)
     * in the same batch lands. NaN is skipped. */
    struct sample dup[] = {{p1, 2000, 999.0}, {p1, 4000, 7.0}, {p2, 9000, NAN}};
    CHECK_INT(store_insert(s, dup, 3), 0);
    memset(&c, 0, sizeof(c));
    /* [2000, 4000): to is exclusive, so only ts 2000 and 3000. */
    CHECK_INT(store_scan(s, p1, 2000, 4000, collect, &c), 0);
    CHECK_INT(c.n, 2);
    CHECK(c.v[0] == 123456789.125);
    CHECK_INT(c.ts[1], 3000);

    /* A callback returning non-zero stops the scan after one row. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    CHECK_INT(store_scan(s, p1, 0, 10000, collect, &c), 0);
    CHECK_INT(c.n, 1);

    /* 4 + 1 ((p1,4000)) = 5 samples; oldest is (p1, 1000). */
    CHECK_INT(store_stats(s, &stats), 0);
    CHECK_INT(stats.samples, 5);
    CHECK_INT(stats.oldest_ts, 1000);
    CHECK(stats.db_bytes > 0);
    CHECK_INT(stats.db_bytes % 4096, 0);
    CHECK_STR(store_path(s), path);
    store_close(s);

    /* Reopen: data kept, ids stable, schema not re-run. */
    s = NULL;
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "e01", "rmu", "energy", UTIL_ELECTRICITY, KIND_COUNTER, &p1b), 0);
    CHECK_INT(p1b, p1);
    CHECK_INT(store_point_id(s, "e01", "rmu", "voltage", UTIL_ELECTRICITY, KIND_GAUGE, &p1b), 0);
    CHECK_INT(p1b, p2);
    CHECK_INT(store_stats(s, &stats), 0);
    CHECK_INT(stats.samples, 5);
    CHECK_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());
    store_close(s);

    /* Read-only: reads work, writes fail without touching the data. */
    s = NULL;
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    memset(&c, 0, sizeof(c));
    CHECK_INT(store_scan(s, p2, 0, 100000, collect, &c), 0);
    CHECK_INT(c.n, 1);
    CHECK(c.v[0] == 42.0);
    struct sample one = {p2, 5000, 1.0};
    CHECK_INT(store_insert(s, &one, 1), -EIO);
    CHECK(strlen(store_errmsg(s)) > 0);
    CHECK_INT(store_stats(s, &stats), 0);
    CHECK_INT(stats.samples, 5);
    store_close(s);
}

static void test_readonly_missing(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;

    db_path(path, sizeof(path), "missing.db");
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -ENOENT);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, "does not exist");
    CHECK_INT(access(path, F_OK), -1);   /* not created */
}

/* A database whose first pages are garbage is refused read-only with
 * quick_check's word, not read as empty (issue 14); an intact one opens. */
static void test_readonly_damaged(void)
{
    char path[PATH_MAX], err[1024] = "";
    struct store *s = NULL;
    uint32_t id = 0;

    db_path(path, sizeof(path), "damaged.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "ent", "m1", "total_m3", UTIL_WATER, KIND_COUNTER, &id), 0);
    struct sample x[50];
    for (int i = 0; i < 50; i++)
        x[i] = (struct sample){.point = id, .ts = 1700000000000 + i * 1000, .value = i};
    CHECK_INT(store_insert(s, x, 50), 0);
    store_close(s);   /* checkpoints: everything is in the main file */
    s = NULL;
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), 0);
    store_close(s);
    s = NULL;

    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    unsigned char junk[3 * 4096];
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)check_rand64(&r);
    CHECK_INT(pwrite(fd, junk, sizeof(junk), 4096), (long long)sizeof(junk));
    close(fd);
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -EIO);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, "the database is damaged");
    CHECK_CONTAINS(err, "PRAGMA quick_check: ");
    CHECK_CONTAINS(err, "restore it from a backup");
}

static void test_versions(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;

    /* A database from a newer parkgw is refused both ways. */
    char newer_sql[64], newer_msg[96];
    snprintf(newer_sql, sizeof(newer_sql), "PRAGMA user_version = %d", store_schema_version() + 1);
    snprintf(newer_msg, sizeof(newer_msg), "database schema version %d is newer than this parkgw supports",
             store_schema_version() + 1);
    db_path(path, sizeof(path), "newer.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    store_close(s);
    s = NULL;
    CHECK_INT(sql_exec(path, newer_sql), SQLITE_OK);
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), -EPROTO);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, newer_msg);
    CHECK_CONTAINS(err, path);
    err[0] = '\0';
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -EPROTO);
    CHECK_CONTAINS(err, "is newer than this parkgw supports");

    /* An older (here: version 0, unrelated table) database: read-only tells
     * to run the daemon; read-write migrates it. */
    db_path(path, sizeof(path), "older.db");
    CHECK_INT(sql_exec(path, "CREATE TABLE legacy(a)"), SQLITE_OK);
    CHECK_INT(store_open(path, true, &s, err, sizeof(err)), -EPROTO);
    CHECK_CONTAINS(err, "run the daemon");
    CHECK_CONTAINS(err, path);
    CHECK_INT(sql_int(path, "PRAGMA user_version"), 0);
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    store_close(s);
    CHECK_INT(sql_int(path, "PRAGMA user_version"), store_schema_version());

    /* Not a database at all. */
    db_path(path, sizeof(path), "garbage.db");
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("this is not an SQLite database, just some text long enough..........\n"
              "................................................................\n",
              f);
        fclose(f);
    }
    s = NULL;
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), -EIO);
    CHECK(s == NULL);
    CHECK_CONTAINS(err, path);
}

static void test_cloexec(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL;
    uint32_t p = 0;
    int seen = 0, cloexec = 0;

    db_path(path, sizeof(path), "cloexec.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    CHECK_INT(store_point_id(s, "e", "m", "p", UTIL_WATER, KIND_GAUGE, &p), 0);
    struct sample one = {p, 1, 1.0};
    CHECK_INT(store_insert(s, &one, 1), 0);

    /* Every descriptor on the database, its -wal and -shm is close-on-exec. */
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            char link[320], target[PATH_MAX];
            int fd = (int)strtol(de->d_name, NULL, 10);
            snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
            ssize_t len = readlink(link, target, sizeof(target) - 1);
            if (len <= 0)
                continue;
            target[len] = '\0';
            if (strstr(target, "cloexec.db")) {
                seen++;
                if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
                    cloexec++;
            }
        }
        closedir(d);
    }
    /* db + wal + shm are open after a write in WAL mode (3 also shows the
     * journal mode is WAL) */
    CHECK(seen >= 3);
    CHECK_INT(cloexec, seen);
    store_close(s);
}

/* ---- schema 5: the chunk encoding and chunked series ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rnd_value(void)
{
    uint64_t u;
    double v;
    switch (rng() % 8) {
    case 0:
        return (double)(float)((double)(rng() % 2000000) / 8.0);   /* float32-exact */
    case 1:
        return (double)(rng() % 1000000) * 0.001 - 500;             /* not float32 */
    case 2:
        return -1e300 * (double)(rng() % 100);                       /* huge, negative */
    case 3:
        return 4.9406564584124654e-324 * (double)(rng() % 1000);    /* denormal */
    case 4:
        return (double)(float)1e-40;                                 /* float32 denormal */
    case 5:
        return -0.0;
    default:
        do {
            u = rng();
            memcpy(&v, &u, sizeof(v));
        } while (isnan(v));
        return v;                                                    /* any bit pattern */
    }
}

static void test_codec(void)
{
    /* byte-exact: (t0 + 1000, 1.5) after t0 is varint(1000 << 1 | 1) =
     * D1 0F, then float32 1.5 little endian 00 00 C0 3F; (t0 + 1000, 0.1)
     * is varint(0) = 00 then the double 0.1 little endian. */
    struct chunk_buf b = {0};
    int64_t prev = 5000;
    chunk_put(&b, &prev, 6000, 1.5);
    chunk_put(&b, &prev, 6000, 0.1);
    static const uint8_t want[] = {0xd1, 0x0f, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x9a, 0x99, 0x99,
                                   0x99, 0x99, 0x99, 0xb9, 0x3f};
    CHECK_INT(b.len, sizeof(want));
    CHECK(b.len == sizeof(want) && memcmp(b.p, want, sizeof(want)) == 0);
    /* truncated: an error, never a wrong sample */
    struct chunk_iter it;
    int64_t k;
    double v;
    chunk_iter_init(&it, b.p, b.len - 1, 5000);
    CHECK_INT(chunk_next(&it, &k, &v), 1);
    CHECK_INT(chunk_next(&it, &k, &v), -EINVAL);

    /* fuzz-like round trips with a fixed seed */
    size_t bad = 0, f32 = 0, total = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + rng() % 500;
        int64_t *keys = xcalloc(n, sizeof(*keys));
        double *vals = xcalloc(n, sizeof(*vals));
        int64_t t0 = (int64_t)(rng() % (1ULL << 45)) - (1LL << 44), t = t0;
        for (size_t i = 0; i < n; i++) {
            int shift = (int)(rng() % 41);
            t += (int64_t)(rng() % 4 == 0 ? 0 : rng() % (1ULL << shift));
            keys[i] = t;
            vals[i] = rnd_value();
        }
        b.len = 0;
        prev = t0;
        for (size_t i = 0; i < n; i++) {
            chunk_put(&b, &prev, keys[i], vals[i]);
            f32 += chunk_is_f32(vals[i]);
        }
        chunk_iter_init(&it, b.p, b.len, t0);
        size_t i = 0;
        int r;
        while ((r = chunk_next(&it, &k, &v)) > 0 && i < n) {
            if (k != keys[i] || memcmp(&v, &vals[i], sizeof(v)) != 0)
                bad++;
            i++;
        }
        CHECK_INT(r, 0);
        CHECK_INT(i, n);
        total += n;
        free(keys);
        free(vals);
    }
    CHECK_INT(bad, 0);
    CHECK(f32 > total / 4 && f32 < total);
    chunk_buf_free(&b);
}

/* Reference model: per point, samples sorted by ts, the first value of a
 * (point, ts) wins. */
#define MODEL_POINTS 6
struct model {
    struct sample *v[MODEL_POINTS];
    size_t n[MODEL_POINTS], cap[MODEL_POINTS];
};

static void model_add(struct model *m, int k, int64_t ts, double v)
{
    size_t lo = 0, hi = m->n[k];
    if (isnan(v))
        return;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->v[k][mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->n[k] && m->v[k][lo].ts == ts)
        return;
    m->v[k] = xgrow(m->v[k], &m->cap[k], m->n[k] + 1, sizeof(*m->v[k]));
    memmove(m->v[k] + lo + 1, m->v[k] + lo, (m->n[k] - lo) * sizeof(*m->v[k]));
    m->v[k][lo] = (struct sample){0, ts, v};
    m->n[k]++;
}

struct collect {
    struct sample *v;
    size_t n, cap;
};

static int collect_cb(void *ud, int64_t ts, double value)
{
    struct collect *c = ud;
    c->v = xgrow(c->v, &c->cap, c->n + 1, sizeof(*c->v));
    c->v[c->n++] = (struct sample){0, ts, value};
    return 0;
}

/* Compares store_scan and store_seek_back with the model; returns the
 * number of mismatches. */
static size_t model_check(struct store *s, const struct model *m, const uint32_t *ids, int64_t lo,
                          int64_t hi)
{
    size_t bad = 0;
    for (int k = 0; k < MODEL_POINTS; k++) {
        for (int q = 0; q < 6; q++) {
            int64_t from = q == 0 ? INT64_MIN : lo + (int64_t)(rng() % (uint64_t)(hi - lo));
            int64_t to = q == 0 ? INT64_MAX : from + (int64_t)(rng() % (uint64_t)(hi - lo));
            struct collect c = {0};
            if (store_scan(s, ids[k], from, to, collect_cb, &c) != 0)
                bad++;
            size_t j = 0;
            for (size_t i = 0; i < m->n[k]; i++) {
                const struct sample *x = &m->v[k][i];
                if (x->ts < from || x->ts >= to)
                    continue;
                if (j >= c.n || c.v[j].ts != x->ts || memcmp(&c.v[j].value, &x->value, 8) != 0) {
                    if (getenv("DBG") && bad < 5)
                        fprintf(stderr, "k %d [%lld,%lld) want %lld %g got %lld %g (j %zu n %zu)\n", k,
                                (long long)from, (long long)to, (long long)x->ts, x->value,
                                j < c.n ? (long long)c.v[j].ts : -1LL, j < c.n ? c.v[j].value : 0.0, j, c.n);
                    bad++;
                }
                j++;
            }
            if (j != c.n)
                bad++;
            free(c.v);
            /* seek_back: the k-th latest before 'to', not before 'from' */
            int kk = 1 + (int)(rng() % 40);
            int64_t got = 0, want = 0;
            int r = store_seek_back(s, ids[k], to, from, kk, &got);
            size_t cnt = 0;
            for (size_t i = m->n[k]; i-- > 0;) {
                if (m->v[k][i].ts >= to || m->v[k][i].ts < from)
                    continue;
                if (++cnt == (size_t)kk) {
                    want = m->v[k][i].ts;
                    break;
                }
            }
            if (cnt == (size_t)kk ? r != 0 || got != want : r != -ENOENT)
                bad++;
        }
    }
    return bad;
}

/* store_latest against the model: each point's newest sample. Returns
 * the number of mismatches. */
static size_t latest_check(struct store *s, const struct model *m, const uint32_t *ids)
{
    size_t bad = 0;
    for (int k = 0; k < MODEL_POINTS; k++) {
        int64_t ts = -1;
        double v = 0;
        int r = store_latest(s, ids[k], &ts, &v);
        if (m->n[k] == 0 ? r != -ENOENT
                         : r != 0 || ts != m->v[k][m->n[k] - 1].ts ||
                               memcmp(&v, &m->v[k][m->n[k] - 1].value, 8) != 0)
            bad++;
    }
    return bad;
}

static void test_series_model(void)
{
    char path[PATH_MAX], err[512] = "";
    struct store *s = NULL, *ro = NULL;
    uint32_t ids[MODEL_POINTS];
    struct model m = {0};
    const int64_t t0 = 1800000000000LL;

    /* 1-minute chunk periods: many moves, merges and chunk edges */
    setenv("PARKGW_STORE_PERIOD_MS", "60000", 1);
    db_path(path, sizeof(path), "series_model.db");
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    /* two meters of three points */
    static const char *const pn[3] = {"a", "b", "c"};
    for (int k = 0; k < MODEL_POINTS; k++)
        CHECK_INT(store_point_id(s, "e", k < 3 ? "m1" : "m2", pn[k % 3], UTIL_WATER, KIND_COUNTER,
                                 &ids[k]), 0);
    uint32_t empty;
    int64_t lts = 7;
    double lv = 7;
    CHECK_INT(store_point_id(s, "e", "m3", "a", UTIL_WATER, KIND_COUNTER, &empty), 0);
    CHECK_INT(store_latest(s, empty, &lts, &lv), -ENOENT);
    CHECK_INT(lts, 7);   /* untouched */
    store_set_staging(s, true);
    int64_t now = t0;
    size_t bad = 0;
    for (int step = 0; step < 3000; step++) {
        struct sample batch[64];
        size_t nb = 0;
        now += 1000 + (int64_t)(rng() % 3) * 500;
        int meter = (int)(rng() % 2);
        /* a meter poll: its points with one ts, in any order */
        for (int j = 0; j < 3; j++) {
            int k = meter * 3 + (int)((j + rng() % 3) % 3);
            batch[nb++] = (struct sample){ids[k], now, rnd_value()};
        }
        if (rng() % 10 == 0) {
            /* out of order or a duplicate of an older sample */
            int k = (int)(rng() % MODEL_POINTS);
            int64_t back = (int64_t)(rng() % 600000);
            batch[nb++] = (struct sample){ids[k], now - back, rng() % 5 == 0 ? NAN : rnd_value()};
            if (m.n[k] > 0 && rng() % 2 == 0)
                batch[nb++] = (struct sample){ids[k], m.v[k][rng() % m.n[k]].ts, 12345.0};
        }
        if (rng() % 20 == 0)
            batch[nb++] = batch[0];   /* a duplicate within the batch */
        CHECK_INT(store_begin(s), 0);
        CHECK_INT(store_add_samples(s, batch, nb), 0);
        CHECK_INT(store_commit(s), 0);
        if (rng() % 7 == 0) {
            /* resubmitted: the stored values win */
            struct sample again[64];
            memcpy(again, batch, nb * sizeof(*batch));
            for (size_t i = 0; i < nb; i++)
                again[i].value = 777.0;
            CHECK_INT(store_insert(s, again, nb), 0);
            for (size_t i = 0; i < nb; i++)
                for (int k = 0; k < MODEL_POINTS; k++)
                    if (batch[i].point == ids[k]) {
                        model_add(&m, k, batch[i].ts, batch[i].value);
                        model_add(&m, k, again[i].ts, again[i].value);
                    }
        }
        for (size_t i = 0; i < nb; i++)
            for (int k = 0; k < MODEL_POINTS; k++)
                if (batch[i].point == ids[k])
                    model_add(&m, k, batch[i].ts, batch[i].value);
        CHECK(store_maintain(s, now) >= 0);
        if (step % 500 == 499) {
            bad += model_check(s, &m, ids, t0, now + 1000);
            if (!ro)
                CHECK_INT(store_open(path, true, &ro, err, sizeof(err)), 0);
            if (ro)
                bad += model_check(ro, &m, ids, t0, now + 1000);
        }
    }
    struct store_stats st;
    CHECK_INT(store_stats(s, &st), 0);
    size_t total = 0;
    for (int k = 0; k < MODEL_POINTS; k++)
        total += m.n[k];
    CHECK_INT(st.samples, total);
    int64_t oldest = INT64_MAX;
    for (int k = 0; k < MODEL_POINTS; k++)
        if (m.n[k] > 0 && m.v[k][0].ts < oldest)
            oldest = m.v[k][0].ts;
    CHECK_INT(st.oldest_ts, oldest);
    CHECK_INT(bad, 0);

    /* Disk full during a move: the move fails and its rollback leaves the
     * series, the rollups and the staged rows as they were (every sample
     * readable exactly once); with room again the next move completes and
     * nothing is lost. */
    CHECK_INT(store_flush_staged(s), 0);
    /* With room: six hours of polls every 10 s, staged. Moving them writes
     * hundreds of one-minute chunks and the quarter-hour rollup rows before
     * the staged rows are deleted, far more than the free pages. */
    for (int i = 0; i < 2160; i += 60) {
        CHECK_INT(store_begin(s), 0);
        for (int j = i; j < i + 60; j++) {
            struct sample x[MODEL_POINTS];
            now += 10000;
            for (int k = 0; k < MODEL_POINTS; k++) {
                x[k] = (struct sample){ids[k], now, (double)j + 0.125 * k};
                model_add(&m, k, now, x[k].value);
            }
            CHECK_INT(store_add_samples(s, x, MODEL_POINTS), 0);
        }
        CHECK_INT(store_commit(s), 0);
    }
    static const char *const sums[] = {
        "SELECT count(*) FROM staged",
        "SELECT count(*) FROM series",
        "SELECT coalesce(sum(n), 0) FROM series",
        "SELECT coalesce(sum(length(data)), 0) FROM series",
        "SELECT coalesce(sum(n), 0) FROM rollup_15m",
        "SELECT count(*) FROM rollup_1h",
    };
    int before[ARRAY_SIZE(sums)];
    for (size_t i = 0; i < ARRAY_SIZE(sums); i++)
        before[i] = sql_int(path, sums[i]);
    CHECK_INT(before[0], 2 * 2160);   /* one row per meter poll */
    CHECK(sql_int(path, "PRAGMA freelist_count") < 16);
    int64_t cap = 0, pages = 0;
    CHECK_INT(store_set_max_pages_for_test(s, 1, &cap), 0);   /* the current size */
    CHECK_INT(store_flush_staged(s), -ENOSPC);
    for (size_t i = 0; i < ARRAY_SIZE(sums); i++)
        CHECK_INT(sql_int(path, sums[i]), before[i]);
    CHECK_INT(model_check(s, &m, ids, t0, now + 1000), 0);
    CHECK_INT(latest_check(s, &m, ids), 0);   /* from the staged rows */
    /* the daemon's path fails the same way and keeps the rows for later */
    CHECK_INT(store_maintain(s, now), -ENOSPC);
    for (size_t i = 0; i < ARRAY_SIZE(sums); i++)
        CHECK_INT(sql_int(path, sums[i]), before[i]);
    CHECK_INT(model_check(s, &m, ids, t0, now + 1000), 0);
    CHECK_INT(store_set_max_pages_for_test(s, 1000000, &pages), 0);
    CHECK(pages > cap);
    /* SQLite rolled the transaction back itself on SQLITE_FULL; a failure
     * after one meter's chunks are written leaves it to the store: the
     * same state again */
    store_fail_move_for_test(s, 1);
    CHECK_INT(store_flush_staged(s), -ENOSPC);
    for (size_t i = 0; i < ARRAY_SIZE(sums); i++)
        CHECK_INT(sql_int(path, sums[i]), before[i]);
    CHECK_INT(model_check(s, &m, ids, t0, now + 1000), 0);
    /* room again: the move completes, nothing lost, every sample counted
     * once in the rollups */
    CHECK_INT(store_flush_staged(s), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM staged"), 0);
    CHECK_INT(store_stats(s, &st), 0);
    total = 0;
    for (int k = 0; k < MODEL_POINTS; k++)
        total += m.n[k];
    CHECK_INT(st.samples, total);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM rollup_15m"), total);
    CHECK_INT(sql_int(path, "SELECT sum(n) FROM rollup_1d"), total);
    CHECK_INT(latest_check(s, &m, ids), 0);   /* from the chunks */
    now += 1000;
    bad += model_check(s, &m, ids, t0, now);
    if (ro)
        bad += model_check(ro, &m, ids, t0, now);
    CHECK_INT(bad, 0);
    /* every chunk lies in one period and chunks of a point never overlap */
    CHECK_INT(sql_int(path, "SELECT count(*) FROM series WHERE t0 / 60000 != t1 / 60000"), 0);
    CHECK_INT(sql_int(path, "SELECT count(*) FROM series a JOIN series b ON a.point = b.point"
                            " AND a.t0 < b.t0 AND a.t1 >= b.t0"), 0);
    store_close(ro);
    store_close(s);
    /* reopened with the default period: still the same samples */
    unsetenv("PARKGW_STORE_PERIOD_MS");
    s = NULL;
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (s)
        CHECK_INT(model_check(s, &m, ids, t0, now), 0);
    store_close(s);
    for (int k = 0; k < MODEL_POINTS; k++)
        free(m.v[k]);
}

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_store", t && *t ? t : "/tmp/parkgw-test");
    make_dirs(tmpdir);

    test_schema_points_roundtrip();
    test_readonly_missing();
    test_readonly_damaged();
    test_versions();
    test_cloexec();
    test_codec();
    test_series_model();
    return check_done();
}
