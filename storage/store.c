/*
 * store.c - the SQLite store behind store.h: opening with the durability
 * pragmas, the schema migrations keyed by PRAGMA user_version, the point
 * registry and batched sample inserts/scans through statements prepared once
 * per handle. The writer thread (writer.c) drives inserts; CLI commands read.
 */
#include "storage/store.h"
#include "gateway/util.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How long a statement waits for another connection's write lock (a CLI
 * import, a reader's checkpoint) before giving up with SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/*
 * Migration steps: entry i brings user_version from i to i + 1. Append new
 * steps; never edit a released one, databases in the field already ran it.
 */
static const char *const store_migrations[] = {
    /* 0 -> 1: points, raw samples, the durable outbox, key/value metadata.
     * samples is WITHOUT ROWID keyed (point, ts): a point's series is
     * contiguous on disk, scans are range reads, and there is no separate
     * rowid b-tree (about 23 bytes per sample, measured by bench_ingest). */
    "CREATE TABLE points("
    "  id INTEGER PRIMARY KEY,"
    "  enterprise TEXT NOT NULL,"
    "  meter TEXT NOT NULL,"
    "  point TEXT NOT NULL,"
    "  utility TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  UNIQUE(enterprise, meter, point)) STRICT;"
    "CREATE TABLE samples("
    "  point INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL,"
    "  value REAL NOT NULL,"
    "  PRIMARY KEY(point, ts)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE outbox("
    "  seq INTEGER PRIMARY KEY,"
    "  topic TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  qos INTEGER NOT NULL,"
    "  retain INTEGER NOT NULL,"
    "  created INTEGER NOT NULL) STRICT;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value ANY) STRICT;",
};
#define STORE_SCHEMA_VERSION ((int)ARRAY_SIZE(store_migrations))

struct store {
    sqlite3 *db;
    char *path;
    bool readonly;
    sqlite3_stmt *st_begin;
    sqlite3_stmt *st_commit;
    sqlite3_stmt *st_rollback;
    sqlite3_stmt *st_insert;
    sqlite3_stmt *st_point_find;
    sqlite3_stmt *st_point_add;
    sqlite3_stmt *st_point_update;
    sqlite3_stmt *st_scan;
    char errmsg[256];
};

static const char *const store_utility_names[] = {"electricity", "water", "gas", "wastewater"};
static const char *const store_kind_names[] = {"gauge", "counter"};

/* SQLite result code (extended or primary) to the module's -errno. */
static int store_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    default:
        return -EIO;
    }
}

/* Remembers SQLite's message for rc now: a ROLLBACK afterwards would
 * replace it. Returns the -errno for rc. */
static int store_fail(struct store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_errno(rc);
}

static void store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Steps a statement that returns no rows (BEGIN/COMMIT/ROLLBACK) and resets it. */
static int store_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int store_user_version(sqlite3 *db, int *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_ERROR;   /* the pragma always returns a row */
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs the missing migration steps in one IMMEDIATE transaction: two
 * daemons (or a daemon and an import) starting together serialize on the
 * write lock and the second one sees the first's user_version. */
static int store_migrate(struct store *s, char *err, size_t errlen)
{
    int rc, version = 0;
    char *msg = NULL;
    char sql[64];

    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_err;
    rc = store_user_version(s->db, &version);
    if (rc != SQLITE_OK)
        goto out_rollback;
    if (version > STORE_SCHEMA_VERSION) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        store_seterr(err, errlen,
                     "%s: database schema version %d is newer than this parkgw supports (%d)",
                     s->path, version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(s->db, store_migrations[v], NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            store_seterr(err, errlen, "%s: migrating the schema to version %d failed: %s",
                         s->path, v + 1, msg ? msg : sqlite3_errstr(rc));
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return store_errno(rc);
        }
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_rollback;
    rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_rollback;
    return 0;

out_rollback:
    store_seterr(err, errlen, "%s: creating the schema failed: %s", s->path, sqlite3_errmsg(s->db));
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return store_errno(rc);
out_err:
    store_seterr(err, errlen, "%s: creating the schema failed: %s", s->path, sqlite3_errmsg(s->db));
    return store_errno(rc);
}

static int store_prepare(struct store *s, char *err, size_t errlen)
{
    static const struct {
        size_t off;
        const char *sql;
    } stmts[] = {
        {offsetof(struct store, st_begin), "BEGIN IMMEDIATE"},
        {offsetof(struct store, st_commit), "COMMIT"},
        {offsetof(struct store, st_rollback), "ROLLBACK"},
        {offsetof(struct store, st_insert),
         "INSERT OR IGNORE INTO samples(point, ts, value) VALUES (?1, ?2, ?3)"},
        {offsetof(struct store, st_point_find),
         "SELECT id, utility, kind FROM points WHERE enterprise = ?1 AND meter = ?2 AND point = ?3"},
        {offsetof(struct store, st_point_add),
         "INSERT INTO points(enterprise, meter, point, utility, kind) VALUES (?1, ?2, ?3, ?4, ?5)"},
        {offsetof(struct store, st_point_update),
         "UPDATE points SET utility = ?2, kind = ?3 WHERE id = ?1"},
        {offsetof(struct store, st_scan),
         "SELECT ts, value FROM samples WHERE point = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(stmts); i++) {
        sqlite3_stmt **slot = (sqlite3_stmt **)(void *)((char *)s + stmts[i].off);
        int rc = sqlite3_prepare_v3(s->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            store_seterr(err, errlen, "%s: preparing \"%s\" failed: %s", s->path, stmts[i].sql,
                         sqlite3_errmsg(s->db));
            return store_errno(rc);
        }
    }
    return 0;
}

int store_open(const char *path, bool readonly, struct store **ret, char *err, size_t errlen)
{
    struct store *s;
    struct stat stbuf;
    int rc, r, version = 0;
    int flags = SQLITE_OPEN_FULLMUTEX;

    if (readonly && stat(path, &stbuf) < 0) {
        r = -errno;
        if (r == -ENOENT)
            store_seterr(err, errlen,
                         "%s: database does not exist (the daemon creates it when it first runs)",
                         path);
        else
            store_seterr(err, errlen, "%s: cannot access database: %s", path, strerror(-r));
        return r;
    }

    s = xcalloc(1, sizeof(*s));
    s->path = xstrdup(path);
    s->readonly = readonly;
    flags |= readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    /* SQLite's unix VFS opens the database, journal, WAL and -shm with
     * O_CLOEXEC itself (robust_open); test_store checks it. */
    rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        store_seterr(err, errlen, "%s: cannot open database: %s", path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        r = store_errno(rc);
        goto out_close;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

    /*
     * Durability: WAL with synchronous=NORMAL fsyncs the WAL only at
     * checkpoints, not at every commit. A committed transaction is in the
     * WAL file (in the OS page cache) when COMMIT returns, so an application
     * crash (kill -9, abort) loses nothing. A power loss or kernel crash can
     * lose the last transactions written since the last checkpoint's sync,
     * but never corrupts the database: the WAL's checksummed frames are
     * replayed only up to the last complete commit. For a meter gateway
     * polling every few seconds that trade (one fsync per ~1000 pages instead
     * of per commit) is what keeps flash wear and commit latency low.
     * foreign_keys stays off: samples reference points only by id, and the
     * per-row FK check would cost on every insert.
     */
    if (!readonly) {
        /* 4096 is the default, set explicitly so the layout measured by
         * bench_ingest does not depend on a build option; effective only on
         * a new database. */
        rc = sqlite3_exec(s->db,
                          "PRAGMA page_size = 4096;"
                          "PRAGMA journal_mode = WAL;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto out_sqlerr;
    }
    rc = sqlite3_exec(s->db,
                      "PRAGMA synchronous = NORMAL;"
                      "PRAGMA foreign_keys = OFF;"
                      /* The tails of ~1500 series are touched every few
                       * seconds; keep them cached (16 MiB). */
                      "PRAGMA cache_size = -16384;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlerr;

    rc = store_user_version(s->db, &version);
    if (rc != SQLITE_OK)
        goto out_sqlerr;
    if (version > STORE_SCHEMA_VERSION) {
        store_seterr(err, errlen,
                     "%s: database schema version %d is newer than this parkgw supports (%d)",
                     path, version, STORE_SCHEMA_VERSION);
        r = -EPROTO;
        goto out_close;
    }
    if (version < STORE_SCHEMA_VERSION) {
        if (readonly) {
            store_seterr(err, errlen,
                         "%s: database schema version %d is older than this parkgw's (%d); "
                         "run the daemon (parkgw run) once to migrate it",
                         path, version, STORE_SCHEMA_VERSION);
            r = -EPROTO;
            goto out_close;
        }
        r = store_migrate(s, err, errlen);
        if (r < 0)
            goto out_close;
    }

    r = store_prepare(s, err, errlen);
    if (r < 0)
        goto out_close;
    *ret = s;
    return 0;

out_sqlerr:
    store_seterr(err, errlen, "%s: cannot open database: %s", path, sqlite3_errmsg(s->db));
    r = store_errno(rc);
out_close:
    store_close(s);
    return r;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->st_begin);
    sqlite3_finalize(s->st_commit);
    sqlite3_finalize(s->st_rollback);
    sqlite3_finalize(s->st_insert);
    sqlite3_finalize(s->st_point_find);
    sqlite3_finalize(s->st_point_add);
    sqlite3_finalize(s->st_point_update);
    sqlite3_finalize(s->st_scan);
    /* Closing the last connection checkpoints the WAL and removes it. */
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

static void store_bind_names(sqlite3_stmt *st, const char *enterprise, const char *meter,
                             const char *point)
{
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, point, -1, SQLITE_STATIC);
}

static const char *store_column_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

int store_point_id(struct store *s, const char *enterprise, const char *meter, const char *point,
                   enum utility utility, enum point_kind kind, uint32_t *ret_id)
{
    const char *uname, *kname;
    sqlite3_int64 id;
    int rc, r;

    if ((unsigned)utility >= ARRAY_SIZE(store_utility_names) ||
        (unsigned)kind >= ARRAY_SIZE(store_kind_names))
        return -EINVAL;
    uname = store_utility_names[utility];
    kname = store_kind_names[kind];

    store_bind_names(s->st_point_find, enterprise, meter, point);
    rc = sqlite3_step(s->st_point_find);
    if (rc == SQLITE_ROW) {
        bool same = strcmp(store_column_str(s->st_point_find, 1), uname) == 0 &&
                    strcmp(store_column_str(s->st_point_find, 2), kname) == 0;
        id = sqlite3_column_int64(s->st_point_find, 0);
        sqlite3_reset(s->st_point_find);
        /* The config is the truth for a point's utility and kind: a
         * corrected profile updates the registry, the id stays. */
        if (!same && !s->readonly) {
            sqlite3_bind_int64(s->st_point_update, 1, id);
            sqlite3_bind_text(s->st_point_update, 2, uname, -1, SQLITE_STATIC);
            sqlite3_bind_text(s->st_point_update, 3, kname, -1, SQLITE_STATIC);
            rc = store_step_done(s->st_point_update);
            if (rc != SQLITE_OK)
                return store_fail(s, rc);
        }
        goto out_found;
    }
    r = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(s->st_point_find);
    if (r < 0)
        return r;

    store_bind_names(s->st_point_add, enterprise, meter, point);
    sqlite3_bind_text(s->st_point_add, 4, uname, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->st_point_add, 5, kname, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->st_point_add);
    if (rc != SQLITE_DONE) {
        r = store_fail(s, rc);
        sqlite3_reset(s->st_point_add);
        return r;
    }
    sqlite3_reset(s->st_point_add);
    id = sqlite3_last_insert_rowid(s->db);

out_found:
    if (id <= 0 || id > UINT32_MAX)
        return -EIO;
    *ret_id = (uint32_t)id;
    return 0;
}

int store_find_point(struct store *s, const char *enterprise, const char *meter, const char *point,
                     uint32_t *ret_id)
{
    sqlite3_int64 id;
    int rc, r;

    store_bind_names(s->st_point_find, enterprise, meter, point);
    rc = sqlite3_step(s->st_point_find);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(s->st_point_find, 0);
        sqlite3_reset(s->st_point_find);
        if (id <= 0 || id > UINT32_MAX)
            return -EIO;
        *ret_id = (uint32_t)id;
        return 0;
    }
    r = rc == SQLITE_DONE ? -ENOENT : store_fail(s, rc);
    sqlite3_reset(s->st_point_find);
    return r;
}

int store_begin(struct store *s)
{
    /* IMMEDIATE takes the write lock now, so a busy database fails here
     * (after busy_timeout) instead of halfway through the batch. */
    int rc = store_step_done(s->st_begin);
    return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

int store_add_samples(struct store *s, const struct sample *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* NaN would bind as NULL and be dropped by OR IGNORE anyway; skip
         * it without a round trip. */
        if (isnan(samples[i].value))
            continue;
        sqlite3_bind_int64(s->st_insert, 1, samples[i].point);
        sqlite3_bind_int64(s->st_insert, 2, samples[i].ts);
        sqlite3_bind_double(s->st_insert, 3, samples[i].value);
        int rc = sqlite3_step(s->st_insert);
        sqlite3_reset(s->st_insert);
        if (rc != SQLITE_DONE)
            return store_fail(s, rc);
    }
    return 0;
}

int store_commit(struct store *s)
{
    int rc = store_step_done(s->st_commit);
    if (rc == SQLITE_OK)
        return 0;
    int r = store_fail(s, rc);
    store_rollback(s);
    return r;
}

void store_rollback(struct store *s)
{
    /* SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR do
     * for some statements); ROLLBACK would then fail harmlessly. */
    if (!sqlite3_get_autocommit(s->db))
        store_step_done(s->st_rollback);
}

sqlite3 *store_db(struct store *s)
{
    return s->db;
}

int store_insert(struct store *s, const struct sample *samples, size_t n)
{
    if (n == 0)
        return 0;
    int r = store_begin(s);
    if (r < 0)
        return r;
    r = store_add_samples(s, samples, n);
    if (r < 0) {
        store_rollback(s);
        return r;
    }
    return store_commit(s);
}

int store_scan(struct store *s, uint32_t point, int64_t from, int64_t to,
               int (*cb)(void *ud, int64_t ts, double value), void *ud)
{
    sqlite3_stmt *st = s->st_scan;
    bool own = false;
    int rc, r = 0;

    /* A callback that scans again (nested) must not reuse the cached
     * statement that is still stepping. */
    if (sqlite3_stmt_busy(st)) {
        rc = sqlite3_prepare_v2(s->db, sqlite3_sql(s->st_scan), -1, &st, NULL);
        if (rc != SQLITE_OK)
            return store_fail(s, rc);
        own = true;
    }
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(ud, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        r = store_fail(s, rc);
    if (own)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
    return r;
}

/* Runs a one-row, one-integer-column query. */
static int store_query_int(struct store *s, const char *sql, int64_t *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *ret = 0;
        rc = SQLITE_OK;
    }
    int r = rc == SQLITE_OK ? 0 : store_fail(s, rc);
    sqlite3_finalize(st);
    return r;
}

int store_stats(struct store *s, struct store_stats *ret)
{
    int64_t samples = 0, pages = 0, page_size = 0, oldest = 0;
    int r;

    r = store_query_int(s, "SELECT count(*) FROM samples", &samples);
    if (r < 0)
        return r;
    r = store_query_int(s, "PRAGMA page_count", &pages);
    if (r < 0)
        return r;
    r = store_query_int(s, "PRAGMA page_size", &page_size);
    if (r < 0)
        return r;
    /* min(ts) over the whole table would be a full scan (ts is the second
     * key column); the first sample of each registered point is one b-tree
     * seek per point. */
    r = store_query_int(s,
                        "SELECT coalesce(min(first), 0) FROM ("
                        "  SELECT (SELECT ts FROM samples WHERE point = p.id ORDER BY ts LIMIT 1)"
                        "  AS first FROM points p)",
                        &oldest);
    if (r < 0)
        return r;
    ret->samples = samples;
    ret->db_bytes = pages * page_size;
    ret->oldest_ts = oldest;
    return 0;
}

const char *store_path(const struct store *s)
{
    return s->path;
}

const char *store_errmsg(const struct store *s)
{
    return s->errmsg;
}

int store_set_max_pages_for_test(struct store *s, int64_t pages, int64_t *ret_pages)
{
    char sql[64];
    int64_t now = 0;
    int r;

    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
    r = store_query_int(s, sql, &now);
    if (r < 0)
        return r;
    *ret_pages = now;
    return 0;
}
