/*
 * store.c - the SQLite store behind store.h: opening with the durability
 * pragmas, the schema migrations keyed by PRAGMA user_version, the point
 * registry and batched sample inserts/scans through statements prepared once
 * per handle. The writer thread (writer.c) drives inserts; CLI commands read.
 */
#include "storage/store.h"
#include "gateway/util.h"
#include "gateway/log.h"
#include "storage/rollup.h"

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
    /* 1 -> 2: rollups (storage/rollup.h), one table per level, keyed by the
     * UTC ms of the local bucket start. store_migrate fills them from the
     * existing samples in the same transaction. */
    "CREATE TABLE rollup_15m("
    "  point INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  first_ts INTEGER NOT NULL, first_v REAL NOT NULL,"
    "  last_ts INTEGER NOT NULL, last_v REAL NOT NULL,"
    "  vmin REAL NOT NULL, vmax REAL NOT NULL, vsum REAL NOT NULL,"
    "  anomalies INTEGER NOT NULL, max_rise REAL NOT NULL, max_gap INTEGER NOT NULL,"
    "  PRIMARY KEY(point, bucket)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE rollup_1h("
    "  point INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  first_ts INTEGER NOT NULL, first_v REAL NOT NULL,"
    "  last_ts INTEGER NOT NULL, last_v REAL NOT NULL,"
    "  vmin REAL NOT NULL, vmax REAL NOT NULL, vsum REAL NOT NULL,"
    "  anomalies INTEGER NOT NULL, max_rise REAL NOT NULL, max_gap INTEGER NOT NULL,"
    "  PRIMARY KEY(point, bucket)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE rollup_1d("
    "  point INTEGER NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  first_ts INTEGER NOT NULL, first_v REAL NOT NULL,"
    "  last_ts INTEGER NOT NULL, last_v REAL NOT NULL,"
    "  vmin REAL NOT NULL, vmax REAL NOT NULL, vsum REAL NOT NULL,"
    "  anomalies INTEGER NOT NULL, max_rise REAL NOT NULL, max_gap INTEGER NOT NULL,"
    "  PRIMARY KEY(point, bucket)) STRICT, WITHOUT ROWID;",
    /* 2 -> 3: alarm history (gateway/alarms.h, docs/ALARMS.md). Rows are
     * derived by triggers from the event messages the writer adds to the
     * outbox, so an alarm's row commits in the same transaction as its
     * event: alarm_raised/comm_lost/bus_down open a row (unless one is
     * open already), alarm_cleared/comm_restored/bus_restored close it.
     * bus is set on bus rows only (enterprise and meter are then ''). */
    "CREATE TABLE alarms("
    "  id INTEGER PRIMARY KEY,"
    "  enterprise TEXT NOT NULL,"
    "  meter TEXT NOT NULL,"
    "  bus TEXT NOT NULL,"
    "  alarm TEXT NOT NULL,"
    "  since INTEGER,"
    "  raised_ts INTEGER NOT NULL,"
    "  cleared_ts INTEGER,"
    "  value REAL,"
    "  threshold REAL) STRICT;"
    "CREATE INDEX alarms_open ON alarms(enterprise, meter, alarm) WHERE cleared_ts IS NULL;"
    "CREATE TRIGGER outbox_alarm_open AFTER INSERT ON outbox"
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"
    "  THEN json_extract(NEW.payload, '$.type') END) IN ('alarm_raised', 'comm_lost', 'bus_down')"
    " BEGIN"
    "  INSERT INTO alarms(enterprise, meter, bus, alarm, since, raised_ts, value, threshold)"
    "  SELECT e, m, b, a, s, t, v, th FROM (SELECT"
    "   coalesce(CAST(json_extract(NEW.payload, '$.enterprise') AS TEXT), '') AS e,"
    "   coalesce(CAST(json_extract(NEW.payload, '$.meter') AS TEXT), '') AS m,"
    "   CASE json_extract(NEW.payload, '$.type') WHEN 'bus_down'"
    "    THEN coalesce(CAST(json_extract(NEW.payload, '$.bus') AS TEXT), '') ELSE '' END AS b,"
    "   CAST(CASE json_extract(NEW.payload, '$.type') WHEN 'alarm_raised'"
    "    THEN json_extract(NEW.payload, '$.alarm') ELSE json_extract(NEW.payload, '$.type') END"
    "    AS TEXT) AS a,"
    "   CAST(json_extract(NEW.payload, '$.since') AS INTEGER) AS s,"
    "   coalesce(CAST(json_extract(NEW.payload, '$.ts') AS INTEGER), NEW.created) AS t,"
    "   CAST(json_extract(NEW.payload, '$.value') AS REAL) AS v,"
    "   CAST(json_extract(NEW.payload, '$.threshold') AS REAL) AS th) AS x"
    "  WHERE x.a IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alarms WHERE cleared_ts IS NULL"
    "   AND enterprise = x.e AND meter = x.m AND bus = x.b AND alarm = x.a);"
    " END;"
    "CREATE TRIGGER outbox_alarm_close AFTER INSERT ON outbox"
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"
    "  THEN json_extract(NEW.payload, '$.type') END)"
    "  IN ('alarm_cleared', 'comm_restored', 'bus_restored')"
    " BEGIN"
    "  UPDATE alarms SET cleared_ts ="
    "   coalesce(CAST(json_extract(NEW.payload, '$.ts') AS INTEGER), NEW.created)"
    "  WHERE cleared_ts IS NULL"
    "   AND enterprise = coalesce(CAST(json_extract(NEW.payload, '$.enterprise') AS TEXT), '')"
    "   AND meter = coalesce(CAST(json_extract(NEW.payload, '$.meter') AS TEXT), '')"
    "   AND bus = CASE json_extract(NEW.payload, '$.type') WHEN 'bus_restored'"
    "    THEN coalesce(CAST(json_extract(NEW.payload, '$.bus') AS TEXT), '') ELSE '' END"
    "   AND alarm = CASE json_extract(NEW.payload, '$.type')"
    "    WHEN 'alarm_cleared' THEN CAST(json_extract(NEW.payload, '$.alarm') AS TEXT)"
    "    WHEN 'comm_restored' THEN 'comm_lost' ELSE 'bus_down' END;"
    " END;",
    /* 3 -> 4: the staging table of the writer's recent samples (docs/STORAGE.md,
     * "Write path"). Keyed (ts, point), so each commit appends at the
     * b-tree's right edge instead of rewriting the tail page of every
     * point's range in samples; store_maintain moves its older part into
     * samples (and the rollups) in one bulk transaction per quarter hour.
     * Invariant: a staged sample of a point is newer than every sample of
     * that point in samples. */
    "CREATE TABLE samples_recent("
    "  ts INTEGER NOT NULL,"
    "  point INTEGER NOT NULL,"
    "  value REAL NOT NULL,"
    "  PRIMARY KEY(ts, point)) STRICT, WITHOUT ROWID;",
};
/* The version whose step creates the rollup tables (built from the samples
 * by store_migrate). */
#define STORE_VERSION_ROLLUPS 2
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
    sqlite3_stmt *st_retain;
    sqlite3_stmt *st_seek;
    sqlite3_stmt *st_stage;        /* insert into samples_recent */
    sqlite3_stmt *st_main_max;     /* a point's newest ts in samples */
    sqlite3_stmt *st_recent_any;   /* is samples_recent empty? */
    sqlite3_stmt *st_data_version;
    struct rollup *rollup;       /* NULL on a read-only handle */
    bool rollups_off;            /* store_set_rollups_for_bench */
    int retention_days;          /* 0: keep raw samples forever */
    int64_t retention_due_ms;    /* next store_maintain run */
    int64_t retention_cursor;    /* last point id the retention pass finished */
    /* Staging (store_set_staging): per point id, its newest ts in samples
     * (STORE_TS_UNKNOWN: not looked up, STORE_TS_NONE: no sample), valid
     * while no other connection commits (PRAGMA data_version). */
    bool staging;
    int64_t *main_max;
    size_t main_max_cap;
    int64_t data_version;
    int64_t staged_min, staged_max;   /* bounds of what this handle staged and did not move */
    int64_t move_due_ms;              /* after a failed move: not before this */
    /* Readers: a copy of samples_recent sorted by (point, ts), reloaded
     * when the database changed (data_version; this handle's own writes
     * drop it), never while a scan walks it (rc_depth). */
    struct staged_row *rc;
    size_t rc_n, rc_cap;
    bool rc_valid;
    int64_t rc_version;
    int rc_depth;
    char errmsg[256];
};
/* Idle time between retention passes that found nothing more to delete. */
#define STORE_RETENTION_IDLE_MS 60000
/* Staged samples are moved into samples once the newest one is in a later
 * quarter hour than the oldest; at most this many per transaction. */
#define STORE_MOVE_BATCH 1000000
/* After a failed move (disk full): wait before the next attempt. */
#define STORE_MOVE_RETRY_MS 10000
#define STORE_TS_UNKNOWN INT64_MIN
#define STORE_TS_NONE (INT64_MIN + 1)

struct staged_row {
    uint32_t point;
    int64_t ts;
    double value;
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
    if (version < STORE_VERSION_ROLLUPS && STORE_SCHEMA_VERSION >= STORE_VERSION_ROLLUPS) {
        /* Samples stored before the rollups existed get theirs now, in the
         * same transaction: a migrated database is never half summarised. */
        struct rollup *r;
        rc = rollup_new(s->db, &r);
        if (rc == SQLITE_OK) {
            rc = rollup_rebuild(r);
            rollup_free(r);
        }
        if (rc != SQLITE_OK)
            goto out_rollback;
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
        /* samples only: the staged rows come from the handle's copy
         * (store_recent_load), since samples_recent is keyed by ts and a
         * point's rows are spread over all of it. */
        {offsetof(struct store, st_scan),
         "SELECT ts, value FROM samples WHERE point = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts"},
        {offsetof(struct store, st_seek),
         "SELECT ts FROM samples WHERE point = ?1 AND ts < ?2 AND ts >= ?3 "
         "ORDER BY ts DESC LIMIT 1 OFFSET ?4"},
        {offsetof(struct store, st_stage),
         "INSERT OR IGNORE INTO samples_recent(ts, point, value) VALUES (?2, ?1, ?3)"},
        {offsetof(struct store, st_main_max), "SELECT max(ts) FROM samples WHERE point = ?1"},
        {offsetof(struct store, st_recent_any), "SELECT ts FROM samples_recent ORDER BY ts LIMIT 1"},
        {offsetof(struct store, st_data_version), "PRAGMA data_version"},
        /* One point's oldest rows before the cutoff: a range of the
         * (point, ts) key, never a scan of the table. */
        {offsetof(struct store, st_retain),
         "DELETE FROM samples WHERE point = ?1 AND ts IN "
         "(SELECT ts FROM samples WHERE point = ?1 AND ts < ?2 ORDER BY ts LIMIT ?3)"},
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
    if (!s->readonly) {
        int rc = rollup_new(s->db, &s->rollup);
        if (rc != SQLITE_OK) {
            store_seterr(err, errlen, "%s: preparing the rollup statements failed: %s", s->path,
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
    s->staged_min = INT64_MAX;
    s->staged_max = INT64_MIN;
    if (!readonly) {
        /* Samples a previous run staged (it was killed, or stopped with a
         * full disk) join samples and the rollups now, so every table is
         * complete for plain SQL readers. Failing (disk full) is not fatal:
         * store_scan and rollup_scan read the staging table too. */
        int mr = store_flush_staged(s);
        if (mr < 0)
            log_warn("storage: %s: cannot move the staged samples yet: %s", path,
                     s->errmsg);
    }
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
    if (s->staging && s->st_recent_any)
        store_flush_staged(s);   /* a clean stop leaves nothing staged */
    sqlite3_finalize(s->st_begin);
    sqlite3_finalize(s->st_commit);
    sqlite3_finalize(s->st_rollback);
    sqlite3_finalize(s->st_insert);
    sqlite3_finalize(s->st_point_find);
    sqlite3_finalize(s->st_point_add);
    sqlite3_finalize(s->st_point_update);
    sqlite3_finalize(s->st_scan);
    sqlite3_finalize(s->st_retain);
    sqlite3_finalize(s->st_seek);
    sqlite3_finalize(s->st_stage);
    sqlite3_finalize(s->st_main_max);
    sqlite3_finalize(s->st_recent_any);
    sqlite3_finalize(s->st_data_version);
    rollup_free(s->rollup);
    free(s->main_max);
    free(s->rc);
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


/* ---- staging (samples_recent) ---- */

/* Forgets the cached newest ts of every point (another connection wrote,
 * or a move rolled back). */
static void store_main_max_forget(struct store *s)
{
    for (size_t i = 0; i < s->main_max_cap; i++)
        s->main_max[i] = STORE_TS_UNKNOWN;
}

/* The newest ts of 'point' in samples (STORE_TS_NONE if it has none),
 * through the cache. 0 or -errno. */
static int store_main_max(struct store *s, uint32_t point, int64_t *ret)
{
    if ((size_t)point >= s->main_max_cap) {
        size_t old = s->main_max_cap;
        s->main_max = xgrow(s->main_max, &s->main_max_cap, (size_t)point + 1, sizeof(int64_t));
        for (size_t i = old; i < s->main_max_cap; i++)
            s->main_max[i] = STORE_TS_UNKNOWN;
    }
    if (s->main_max[point] == STORE_TS_UNKNOWN) {
        sqlite3_bind_int64(s->st_main_max, 1, point);
        int rc = sqlite3_step(s->st_main_max);
        if (rc != SQLITE_ROW) {
            int r = store_fail(s, rc);
            sqlite3_reset(s->st_main_max);
            return r;
        }
        s->main_max[point] = sqlite3_column_type(s->st_main_max, 0) == SQLITE_NULL
                                 ? STORE_TS_NONE
                                 : sqlite3_column_int64(s->st_main_max, 0);
        sqlite3_reset(s->st_main_max);
    }
    *ret = s->main_max[point];
    return 0;
}

/* The oldest staged ts, or INT64_MAX when samples_recent is empty. */
static int store_staged_oldest(struct store *s, int64_t *ret)
{
    int rc = sqlite3_step(s->st_recent_any);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(s->st_recent_any, 0);
    else if (rc == SQLITE_DONE)
        *ret = INT64_MAX;
    else
        r = store_fail(s, rc);
    sqlite3_reset(s->st_recent_any);
    return r;
}

/*
 * Inside the caller's write transaction: moves the staged samples with
 * ts < cut (at most STORE_MOVE_BATCH of them, the oldest) into samples,
 * feeding the rollups in (point, ts) order as a bulk insert does, and
 * deletes them from samples_recent. *ret_moved (may be NULL): rows moved.
 * 0 or -errno; after an error the caller rolls back.
 */
static int store_move_staged(struct store *s, int64_t cut, int64_t *ret_moved)
{
    struct rollup *ru = s->rollups_off ? NULL : s->rollup;
    sqlite3_stmt *sel = NULL, *del = NULL;
    int64_t oldest, moved = 0;
    int rc, r;

    if (ret_moved)
        *ret_moved = 0;
    r = store_staged_oldest(s, &oldest);
    if (r < 0)
        return r;
    s->staged_min = oldest;
    if (oldest >= cut)
        return 0;
    if (s->readonly)
        return 0;   /* readers merge both tables anyway */
    /* Bound the transaction: cut at the ts of the BATCH-th oldest row. */
    rc = sqlite3_prepare_v2(s->db, "SELECT ts FROM samples_recent ORDER BY ts LIMIT 1 OFFSET ?1",
                            -1, &sel, NULL);
    if (rc != SQLITE_OK)
        goto out_fail;
    sqlite3_bind_int64(sel, 1, STORE_MOVE_BATCH);
    rc = sqlite3_step(sel);
    if (rc == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(sel, 0);
        if (c < cut)
            cut = c > oldest ? c : oldest + 1;
    } else if (rc != SQLITE_DONE) {
        goto out_fail;
    }
    sqlite3_finalize(sel);
    sel = NULL;

    rc = sqlite3_prepare_v2(s->db,
                            "SELECT point, ts, value FROM samples_recent WHERE ts < ?1 "
                            "ORDER BY point, ts",
                            -1, &sel, NULL);
    if (rc != SQLITE_OK)
        goto out_fail;
    sqlite3_bind_int64(sel, 1, cut);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        sqlite3_int64 point = sqlite3_column_int64(sel, 0), ts = sqlite3_column_int64(sel, 1);
        double v = sqlite3_column_double(sel, 2);
        sqlite3_bind_int64(s->st_insert, 1, point);
        sqlite3_bind_int64(s->st_insert, 2, ts);
        sqlite3_bind_double(s->st_insert, 3, v);
        rc = store_step_done(s->st_insert);
        if (rc != SQLITE_OK)
            goto out_fail;
        moved++;
        if (ru && sqlite3_changes(s->db) > 0) {
            rc = rollup_add(ru, (uint32_t)point, ts, v);
            if (rc != SQLITE_OK)
                goto out_fail;
        }
        if (point >= 0 && (size_t)point < s->main_max_cap &&
            s->main_max[point] != STORE_TS_UNKNOWN && ts > s->main_max[point])
            s->main_max[point] = ts;
    }
    if (rc != SQLITE_DONE)
        goto out_fail;
    sqlite3_finalize(sel);
    sel = NULL;
    if (ru) {
        rc = rollup_flush(ru);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    rc = sqlite3_prepare_v2(s->db, "DELETE FROM samples_recent WHERE ts < ?1", -1, &del, NULL);
    if (rc != SQLITE_OK)
        goto out_fail;
    sqlite3_bind_int64(del, 1, cut);
    rc = store_step_done(del);
    sqlite3_finalize(del);
    if (rc != SQLITE_OK)
        goto out_fail;
    if (s->staged_min < cut)
        s->staged_min = cut;
    if (ret_moved)
        *ret_moved = moved;
    return 0;

out_fail:
    r = store_fail(s, rc);
    sqlite3_finalize(sel);
    rollup_reset(ru);
    /* the cached maxima may include rows the rollback takes away */
    store_main_max_forget(s);
    return r;
}

/* Moves staged samples older than cut in their own transaction. */
static int store_move_txn(struct store *s, int64_t cut, int64_t *ret_moved)
{
    int r = store_begin(s);
    if (r < 0)
        return r;
    r = store_move_staged(s, cut, ret_moved);
    if (r < 0) {
        store_rollback(s);
        return r;
    }
    return store_commit(s);
}

int store_flush_staged(struct store *s)
{
    int64_t oldest, moved;
    int r;
    if (s->readonly)
        return -EROFS;
    do {
        r = store_staged_oldest(s, &oldest);
        if (r < 0 || oldest == INT64_MAX)
            break;
        r = store_move_txn(s, INT64_MAX, &moved);
    } while (r == 0 && moved > 0);
    if (r == 0) {
        s->staged_min = INT64_MAX;
        s->staged_max = INT64_MIN;
    }
    return r;
}

void store_set_staging(struct store *s, bool on)
{
    s->staging = on && !s->readonly;
    store_main_max_forget(s);
    s->data_version = -1;
    s->staged_min = INT64_MIN;   /* unknown: the first due check looks */
    s->staged_max = INT64_MIN;
}

int store_rollup_horizon(struct store *s, uint32_t point, int64_t *ret)
{
    int64_t oldest;
    int r = store_staged_oldest(s, &oldest);
    if (r < 0)
        return r;
    if (oldest == INT64_MAX) {
        *ret = INT64_MAX;
        return 0;
    }
    sqlite3_bind_int64(s->st_main_max, 1, point);
    int rc = sqlite3_step(s->st_main_max);
    if (rc != SQLITE_ROW) {
        r = store_fail(s, rc);
        sqlite3_reset(s->st_main_max);
        return r;
    }
    *ret = sqlite3_column_type(s->st_main_max, 0) == SQLITE_NULL
               ? INT64_MIN
               : sqlite3_column_int64(s->st_main_max, 0);
    sqlite3_reset(s->st_main_max);
    return 0;
}

/* The start of the quarter hour (UTC-aligned is enough: it only paces the
 * moves) containing ts. */
static int64_t store_quarter(int64_t ts)
{
    int64_t q = 900000;
    int64_t b = ts / q * q;
    return b > ts ? b - q : b;
}

int store_begin(struct store *s)
{
    /* IMMEDIATE takes the write lock now, so a busy database fails here
     * (after busy_timeout) instead of halfway through the batch. */
    int rc = store_step_done(s->st_begin);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    s->rc_valid = false;
    if (s->staging) {
        /* Under the write lock: has another connection committed (an
         * import moves the staged rows and adds its own) since we last
         * looked? Then the cached maxima are stale. */
        rc = sqlite3_step(s->st_data_version);
        int64_t dv = rc == SQLITE_ROW ? sqlite3_column_int64(s->st_data_version, 0) : -2;
        sqlite3_reset(s->st_data_version);
        if (dv != s->data_version) {
            store_main_max_forget(s);
            s->staged_min = INT64_MIN;
            s->data_version = dv;
        }
    }
    return 0;
}

int store_add_samples(struct store *s, const struct sample *samples, size_t n)
{
    struct rollup *ru = s->rollups_off ? NULL : s->rollup;
    int rc, r;

    if (n == 0)
        return 0;
    if (!s->staging) {
        /* An immediate insert (an import) must not land after staged
         * samples of its point: move them all first (usually none). */
        r = store_move_staged(s, INT64_MAX, NULL);
        if (r < 0)
            return r;
    }
    for (size_t i = 0; i < n; i++) {
        /* NaN would bind as NULL and be dropped by OR IGNORE anyway; skip
         * it without a round trip. */
        if (isnan(samples[i].value))
            continue;
        if (s->staging) {
            int64_t newest;
            r = store_main_max(s, samples[i].point, &newest);
            if (r < 0)
                goto out_fail_r;
            if (samples[i].ts > newest) {
                /* The daemon's case: newer than the point's stored series,
                 * appended to samples_recent; its rollups come when it
                 * moves (store_maintain). */
                sqlite3_bind_int64(s->st_stage, 1, samples[i].point);
                sqlite3_bind_int64(s->st_stage, 2, samples[i].ts);
                sqlite3_bind_double(s->st_stage, 3, samples[i].value);
                rc = store_step_done(s->st_stage);
                if (rc != SQLITE_OK)
                    goto out_fail;
                if (samples[i].ts < s->staged_min)
                    s->staged_min = samples[i].ts;
                if (samples[i].ts > s->staged_max)
                    s->staged_max = samples[i].ts;
                continue;
            }
            /* Older than the point's newest stored sample (a clock step
             * back): inserted into samples with its rollups at once. */
        }
        sqlite3_bind_int64(s->st_insert, 1, samples[i].point);
        sqlite3_bind_int64(s->st_insert, 2, samples[i].ts);
        sqlite3_bind_double(s->st_insert, 3, samples[i].value);
        rc = sqlite3_step(s->st_insert);
        sqlite3_reset(s->st_insert);
        if (rc != SQLITE_DONE)
            goto out_fail;
        /* A duplicate (point, ts) was ignored: its rollups already count it. */
        if (ru && sqlite3_changes(s->db) > 0) {
            rc = rollup_add(ru, samples[i].point, samples[i].ts, samples[i].value);
            if (rc != SQLITE_OK)
                goto out_fail;
        }
    }
    if (ru) {
        rc = rollup_flush(ru);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    return 0;

out_fail:
    rollup_reset(ru);
    return store_fail(s, rc);
out_fail_r:
    rollup_reset(ru);
    return r;
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
    rollup_reset(s->rollup);
    s->rc_valid = false;
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

static int staged_cmp(const void *a, const void *b)
{
    const struct staged_row *x = a, *y = b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Makes the copy of samples_recent current (one read of the table when
 * anything changed since the last load, else one PRAGMA). 0 or -errno. */
static int store_recent_load(struct store *s)
{
    sqlite3_stmt *st;
    int rc;

    if (s->rc_valid && s->rc_depth > 0)
        return 0;   /* a scan is walking it: keep it */
    rc = sqlite3_step(s->st_data_version);
    int64_t dv = rc == SQLITE_ROW ? sqlite3_column_int64(s->st_data_version, 0) : -2;
    sqlite3_reset(s->st_data_version);
    if (rc != SQLITE_ROW)
        return store_fail(s, rc);
    if (s->rc_valid && dv == s->rc_version)
        return 0;
    rc = sqlite3_prepare_v2(s->db, "SELECT point, ts, value FROM samples_recent", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    s->rc_n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        s->rc = xgrow(s->rc, &s->rc_cap, s->rc_n + 1, sizeof(*s->rc));
        s->rc[s->rc_n++] = (struct staged_row){(uint32_t)sqlite3_column_int64(st, 0),
                                               sqlite3_column_int64(st, 1),
                                               sqlite3_column_double(st, 2)};
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        s->rc_valid = false;
        return store_fail(s, rc);
    }
    if (s->rc_n > 1)
        qsort(s->rc, s->rc_n, sizeof(*s->rc), staged_cmp);
    s->rc_valid = true;
    s->rc_version = dv;
    return 0;
}

/* Index of the first copied row >= (point, ts). */
static size_t store_recent_find(const struct store *s, uint32_t point, int64_t ts)
{
    size_t lo = 0, hi = s->rc_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct staged_row *m = &s->rc[mid];
        if (m->point < point || (m->point == point && m->ts < ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Where a point's rows in samples end for a reader: its oldest staged
 * sample (rows moved after the copy was taken are read from the copy, not
 * twice). *ret_first..*ret_end: the copied rows of the point in [from, to).
 */
static int64_t store_recent_range(const struct store *s, uint32_t point, int64_t from, int64_t to,
                                  size_t *ret_first, size_t *ret_end)
{
    size_t p0 = store_recent_find(s, point, INT64_MIN);
    int64_t bound = p0 < s->rc_n && s->rc[p0].point == point ? s->rc[p0].ts : INT64_MAX;
    *ret_first = store_recent_find(s, point, from);
    *ret_end = store_recent_find(s, point, to);
    if (*ret_end < *ret_first)
        *ret_end = *ret_first;
    return bound;
}

int store_scan(struct store *s, uint32_t point, int64_t from, int64_t to,
               int (*cb)(void *ud, int64_t ts, double value), void *ud)
{
    sqlite3_stmt *st = s->st_scan;
    bool own = false, stop = false;
    size_t first, end;
    int rc, r;

    r = store_recent_load(s);
    if (r < 0)
        return r;
    s->rc_depth++;
    int64_t bound = store_recent_range(s, point, from, to, &first, &end);
    /* A callback that scans again (nested) must not reuse the cached
     * statement that is still stepping. */
    if (sqlite3_stmt_busy(st)) {
        rc = sqlite3_prepare_v2(s->db, sqlite3_sql(s->st_scan), -1, &st, NULL);
        if (rc != SQLITE_OK) {
            s->rc_depth--;
            return store_fail(s, rc);
        }
        own = true;
    }
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to < bound ? to : bound);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(ud, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1)) != 0) {
            rc = SQLITE_DONE;
            stop = true;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        r = store_fail(s, rc);
    if (own)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
    for (size_t i = first; r == 0 && !stop && i < end; i++)
        stop = cb(ud, s->rc[i].ts, s->rc[i].value) != 0;
    s->rc_depth--;
    return r;
}

int store_seek_back(struct store *s, uint32_t point, int64_t ts, int64_t floor_ts, int k,
                    int64_t *ret_ts)
{
    sqlite3_stmt *st = s->st_seek;
    bool own = false;
    size_t first, end;
    int rc, r;

    if (k < 1)
        k = 1;
    r = store_recent_load(s);
    if (r < 0)
        return r;
    int64_t bound = store_recent_range(s, point, floor_ts, ts, &first, &end);
    if (end - first >= (size_t)k) {
        *ret_ts = s->rc[end - (size_t)k].ts;
        return 0;
    }
    k -= (int)(end - first);
    if (sqlite3_stmt_busy(st)) {
        rc = sqlite3_prepare_v2(s->db, sqlite3_sql(s->st_seek), -1, &st, NULL);
        if (rc != SQLITE_OK)
            return store_fail(s, rc);
        own = true;
    }
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, ts < bound ? ts : bound);
    sqlite3_bind_int64(st, 3, floor_ts);
    sqlite3_bind_int(st, 4, k - 1);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_ts = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        r = -ENOENT;
    else
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

    r = store_query_int(s, "SELECT (SELECT count(*) FROM samples) + "
                           "(SELECT count(*) FROM samples_recent)", &samples);
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
                        "  AS first FROM points p"
                        "  UNION ALL SELECT min(ts) FROM samples_recent)",
                        &oldest);
    if (r < 0)
        return r;
    ret->samples = samples;
    ret->db_bytes = pages * page_size;
    ret->oldest_ts = oldest;
    return 0;
}

void store_set_retention(struct store *s, int days)
{
    s->retention_days = days > 0 ? days : 0;
    s->retention_due_ms = 0;
}

/* One retention batch: walks the points from the cursor, deleting each one's
 * samples older than the cutoff until 'limit' rows are gone. Called inside a
 * transaction. 0 and *ret_deleted, *ret_done (a whole pass found no more). */
static int store_retain_batch(struct store *s, int64_t cutoff, int64_t limit,
                              int64_t *ret_deleted, bool *ret_done)
{
    int64_t max_id = 0, deleted = 0, id;
    int r = store_query_int(s, "SELECT coalesce(max(id), 0) FROM points", &max_id);
    if (r < 0)
        return r;
    for (id = s->retention_cursor + 1; id <= max_id && deleted < limit; id++) {
        sqlite3_bind_int64(s->st_retain, 1, id);
        sqlite3_bind_int64(s->st_retain, 2, cutoff);
        sqlite3_bind_int64(s->st_retain, 3, limit - deleted);
        int rc = store_step_done(s->st_retain);
        if (rc != SQLITE_OK)
            return store_fail(s, rc);
        int64_t n = sqlite3_changes(s->db);
        deleted += n;
        if (deleted >= limit) {
            /* this point may hold more: resume on it */
            id--;
            break;
        }
    }
    s->retention_cursor = id > max_id ? 0 : id;
    *ret_done = id > max_id;
    *ret_deleted = deleted;
    return 0;
}

int store_maintain(struct store *s, int64_t now_ms)
{
    int64_t deleted = 0;
    bool done = false;
    int r;

    if (s->staging && s->staged_max != INT64_MIN &&
        store_quarter(s->staged_max) > s->staged_min && now_ms >= s->move_due_ms) {
        /* The staged samples of closed quarter hours go to samples (and
         * the rollups) in one bulk transaction. */
        int64_t moved = 0;
        r = store_move_txn(s, store_quarter(s->staged_max), &moved);
        if (r < 0) {
            s->move_due_ms = now_ms + STORE_MOVE_RETRY_MS;
            return r;
        }
        s->move_due_ms = 0;
        return 0;
    }
    if (s->readonly || s->retention_days <= 0 || now_ms < s->retention_due_ms)
        return 0;
    r = store_begin(s);
    if (r < 0)
        return r;
    r = store_retain_batch(s, now_ms - (int64_t)s->retention_days * 86400000LL,
                           STORE_RETENTION_BATCH, &deleted, &done);
    if (r < 0)
        store_rollback(s);
    else
        r = store_commit(s);
    if (r < 0) {
        /* a full disk or a busy database: try again later, not after
         * every write */
        s->retention_due_ms = now_ms + STORE_RETENTION_IDLE_MS;
        return r;
    }
    /* A full batch: more is waiting, run again after the next write. A pass
     * that found less: nothing old is left until time moves on. */
    if (done && deleted < STORE_RETENTION_BATCH)
        s->retention_due_ms = now_ms + STORE_RETENTION_IDLE_MS;
    return (int)deleted;
}

int store_rebuild_rollups(struct store *s)
{
    if (!s->rollup)
        return -EROFS;
    int r = store_begin(s);
    if (r < 0)
        return r;
    r = store_move_staged(s, INT64_MAX, NULL);
    while (r == 0) {
        int64_t oldest;
        r = store_staged_oldest(s, &oldest);
        if (r < 0 || oldest == INT64_MAX)
            break;
        r = store_move_staged(s, INT64_MAX, NULL);
    }
    if (r < 0) {
        store_rollback(s);
        return r;
    }
    int rc = rollup_rebuild(s->rollup);
    if (rc != SQLITE_OK) {
        r = store_fail(s, rc);
        store_rollback(s);
        return r;
    }
    return store_commit(s);
}

void store_set_rollups_for_bench(struct store *s, bool on)
{
    s->rollups_off = !on;
}

int store_sqlite_error(struct store *s, int rc)
{
    return store_fail(s, rc);
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

int store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}
