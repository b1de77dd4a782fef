/*
 * test_store.c - the SQLite store: schema creation and versioning, point
 * registry, exact round trips, duplicate handling, read-only opens and their
 * errors, stats, and close-on-exec descriptors. Databases live in
 * $PARKGW_TEST_TMP (set by CTest).
 */
#include "storage/store.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
                            "('points','samples','outbox','meta')"),
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

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_store", t && *t ? t : "/tmp/parkgw-test");
    make_dirs(tmpdir);

    test_schema_points_roundtrip();
    test_readonly_missing();
    test_versions();
    test_cloexec();
    return check_done();
}
