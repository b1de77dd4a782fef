/*
 * store.c - the SQLite store behind store.h: opening with the durability
 * pragmas, the schema migrations keyed by PRAGMA user_version, the point
 * registry and batched sample inserts/scans through statements prepared once
 * per handle. The writer thread (writer.c) drives inserts; CLI commands read.
 */
#include "storage/store.h"
#include "common/timeutil.h"
#include "common/util.h"
#include "common/log.h"
#include "storage/chunk.h"
#include "storage/rollup.h"

#include <errno.h>
#include <malloc.h>
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
    /* 2 -> 3: alarm history (engine/alarms.h, docs/ALARMS.md). Rows are
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
    /* 4 -> 5: chunked series (docs/STORAGE.md, "Schema 5: chunked
     * series"). series holds one compressed chunk (storage/chunk.h) per
     * point and chunk period; a rowid table, since its rows carry blobs of
     * several KB (WITHOUT ROWID suits small rows only). staged holds one
     * row per meter poll (mk: the meter key, the smallest point id of the
     * meter), keyed by time so a commit appends at the b-tree's right edge.
     * store_migrate converts samples into series and samples_recent into
     * staged in the same transaction, then drops both. */
    "CREATE TABLE series("
    "  point INTEGER NOT NULL,"
    "  t0 INTEGER NOT NULL,"
    "  t1 INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY(point, t0)) STRICT;"
    "CREATE TABLE staged("
    "  ts INTEGER NOT NULL,"
    "  mk INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY(ts, mk)) STRICT, WITHOUT ROWID;",
};
/* The version whose step creates the rollup tables (built from the samples
 * by store_migrate). */
#define STORE_VERSION_ROLLUPS 2
/* The version whose step creates series/staged (the old tables are
 * converted by store_convert_v4). */
#define STORE_VERSION_SERIES 5
#define STORE_SCHEMA_VERSION ((int)ARRAY_SIZE(store_migrations))

/* The statements every handle prepares once (store_stmt_sql) and finalizes
 * in store_close, by index into struct store's st[]. */
enum store_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_POINT_FIND,
    STMT_POINT_ADD,
    STMT_POINT_UPDATE,
    STMT_MK,            /* a point's meter key */
    STMT_WINDOW,        /* chunks of a point overlapping [?2, ?3) */
    STMT_CHUNK_ADD,
    STMT_CHUNK_SET,     /* rewrite by rowid */
    STMT_CHUNK_DEL,     /* delete by rowid */
    STMT_CHUNK_BEFORE,  /* a point's last chunk with t0 < ?2 */
    STMT_CHUNK_AT,      /* a point's last chunk with t0 <= ?2 */
    STMT_CHUNK_AFTER,   /* a point's first chunk with t0 > ?2 */
    STMT_SCAN,          /* chunks overlapping [from, to) */
    STMT_SCAN_STAGED,   /* one meter's staged rows in [from, to) */
    STMT_SEEK,          /* chunks before ts, newest first */
    STMT_SEEK_STAGED,   /* one meter's staged rows before ts, newest first */
    STMT_STAGE,         /* insert a staged row (if new) */
    STMT_STAGE_GET,
    STMT_STAGE_SET,
    STMT_MAIN_MAX,      /* a point's newest ts in series */
    STMT_RECENT_ANY,    /* oldest staged ts */
    STMT_DATA_VERSION,
    STMT_RETAIN,        /* a point's whole chunks that ended before ?2 */
    STMT__COUNT
};

/* One point's samples of the meter being moved (store_move_staged). */
struct store_mpoint {
    uint32_t point;
    int64_t *ts;
    double *v;
    size_t n, cap_ts, cap_v;
};

/* A sample being sorted into staged rows or series groups. */
struct store_tmp {
    int64_t ts;
    uint32_t point, mk;
    uint32_t idx;      /* input order: the first of equal keys wins */
    double v;
};

struct store {
    sqlite3 *db;
    char *path;
    bool readonly;
    sqlite3_stmt *st[STMT__COUNT];   /* store_stmt_sql */
    struct rollup *rollup;       /* NULL on a read-only handle */
    bool rollups_off;            /* store_set_rollups_for_bench */
    int64_t period_ms;           /* chunk period (PARKGW_STORE_PERIOD_MS) */
    int retention_days;          /* 0: keep raw samples forever */
    int64_t retention_due_ms;    /* next store_maintain run */
    int64_t retention_cursor;    /* last point id the retention pass finished */
    /* Staging (store_set_staging): per point id, its newest ts in series
     * (STORE_TS_UNKNOWN: not looked up, STORE_TS_NONE: no sample), valid
     * while no other connection commits (PRAGMA data_version). */
    bool staging;
    int64_t *main_max;
    size_t main_max_cap;
    int64_t data_version;
    int64_t staged_min, staged_max;   /* bounds of what this handle staged and did not move */
    int64_t move_due_ms;              /* after a failed move: not before this */
    /* Per point id, its meter key (0: not looked up). Ids are never reused. */
    uint32_t *mk;
    size_t mk_cap;
    /* The (point, window) being merged by store_put_group: its samples so
     * far, seen by the rollup look-ups (store_io_prev/next). */
    bool pend_on;
    uint32_t pend_point;
    int64_t pend_lo, pend_hi;
    int64_t *pts;
    double *pv;
    size_t pn, pcap_ts, pcap_v;
    int64_t *prow;                    /* rowids of the chunks being merged */
    size_t prow_n, prow_cap;
    /* Scratch: encoding, sorting, the move's meter, seek_back's chunk. */
    struct chunk_buf enc;
    struct store_tmp *tmp;
    size_t tmp_cap;
    int64_t *gts;
    double *gv;
    size_t gcap_ts, gcap_v;
    struct store_mpoint *mp;
    size_t mp_n, mp_used, mp_cap;
    char errmsg[256];
};
/* Idle time between retention passes that found nothing more to delete. */
#define STORE_RETENTION_IDLE_MS 60000
/* Staged rows of closed chunk periods are moved into series once the newest
 * one is in a later period than the oldest; at most this many staged rows
 * (meter polls) per transaction. */
#define STORE_MOVE_ROWS 200000
/* After a failed move (disk full): wait before the next attempt. */
#define STORE_MOVE_RETRY_MS 10000
#define STORE_TS_UNKNOWN INT64_MIN
#define STORE_TS_NONE (INT64_MIN + 1)
/* Chunk period: default and bounds of PARKGW_STORE_PERIOD_MS. */
#define STORE_PERIOD_DEFAULT_MS 900000
#define STORE_PERIOD_MIN_MS 1000
#define STORE_PERIOD_MAX_MS 86400000

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

static int store_convert_v4(struct store *s);
static struct rollup_io store_rollup_io(struct store *s);

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
    if (version < STORE_VERSION_SERIES) {
        rc = store_convert_v4(s);
        if (rc != SQLITE_OK)
            goto out_rollback;
    }
    if (version < STORE_VERSION_ROLLUPS && STORE_SCHEMA_VERSION >= STORE_VERSION_ROLLUPS) {
        /* Samples stored before the rollups existed get theirs now, in the
         * same transaction: a migrated database is never half summarised. */
        struct rollup *r;
        struct rollup_io io = store_rollup_io(s);
        rc = rollup_new(s->db, &io, &r);
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

/* The SQL of each enum store_stmt; store_prepare refuses a gap. */
static const char *const store_stmt_sql[STMT__COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_POINT_FIND] =
        "SELECT id, utility, kind FROM points WHERE enterprise = ?1 AND meter = ?2 AND point = ?3",
    [STMT_POINT_ADD] =
        "INSERT INTO points(enterprise, meter, point, utility, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_POINT_UPDATE] = "UPDATE points SET utility = ?2, kind = ?3 WHERE id = ?1",
    [STMT_MK] = "SELECT min(b.id) FROM points a JOIN points b"
                " ON b.enterprise = a.enterprise AND b.meter = a.meter WHERE a.id = ?1",
    /* Chunks never overlap: the first one reaching into [?2, ?3) is the last
     * one starting at or before ?2 (if it ends before ?2 the caller skips
     * it) or a later one. */
    [STMT_WINDOW] = "SELECT rowid, t0, t1, data FROM series WHERE point = ?1 AND t0 >= "
                    "coalesce((SELECT max(t0) FROM series WHERE point = ?1 AND t0 <= ?2), ?2) "
                    "AND t0 < ?3 ORDER BY t0",
    [STMT_CHUNK_ADD] = "INSERT INTO series(point, t0, t1, n, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_CHUNK_SET] = "UPDATE series SET t0 = ?2, t1 = ?3, n = ?4, data = ?5 WHERE rowid = ?1",
    [STMT_CHUNK_DEL] = "DELETE FROM series WHERE rowid = ?1",
    [STMT_CHUNK_BEFORE] =
        "SELECT t0, data FROM series WHERE point = ?1 AND t0 < ?2 ORDER BY t0 DESC LIMIT 1",
    [STMT_CHUNK_AT] =
        "SELECT t0, t1, data FROM series WHERE point = ?1 AND t0 <= ?2 ORDER BY t0 DESC LIMIT 1",
    [STMT_CHUNK_AFTER] =
        "SELECT t0, data FROM series WHERE point = ?1 AND t0 > ?2 ORDER BY t0 LIMIT 1",
    [STMT_SCAN] = "SELECT t0, t1, data FROM series WHERE point = ?1 AND t0 >= "
                  "coalesce((SELECT max(t0) FROM series WHERE point = ?1 AND t0 <= ?2), ?2) "
                  "AND t0 < ?3 ORDER BY t0",
    /* staged is keyed by time: a range of ts, filtered by the meter key;
     * only the meter's rows are decoded. */
    [STMT_SCAN_STAGED] =
        "SELECT ts, data FROM staged WHERE ts >= ?2 AND ts < ?3 AND mk = ?1 ORDER BY ts",
    [STMT_SEEK] = "SELECT t0, t1, data FROM series WHERE point = ?1 AND t0 < ?2 ORDER BY t0 DESC",
    [STMT_SEEK_STAGED] =
        "SELECT ts, data FROM staged WHERE ts < ?2 AND ts >= ?3 AND mk = ?1 ORDER BY ts DESC",
    [STMT_STAGE] =
        "INSERT INTO staged(ts, mk, n, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    [STMT_STAGE_GET] = "SELECT data FROM staged WHERE ts = ?1 AND mk = ?2",
    [STMT_STAGE_SET] = "UPDATE staged SET n = ?3, data = ?4 WHERE ts = ?1 AND mk = ?2",
    [STMT_MAIN_MAX] = "SELECT t1 FROM series WHERE point = ?1 ORDER BY t0 DESC LIMIT 1",
    [STMT_RECENT_ANY] = "SELECT ts FROM staged ORDER BY ts LIMIT 1",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_RETAIN] = "SELECT rowid, n FROM series WHERE point = ?1 AND t1 < ?2 ORDER BY t0",
};

static int store_prepare(struct store *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < STMT__COUNT; i++) {
        if (!store_stmt_sql[i]) {
            store_seterr(err, errlen, "%s: statement %zu has no SQL", s->path, i);
            return -EINVAL;
        }
        int rc = sqlite3_prepare_v3(s->db, store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            store_seterr(err, errlen, "%s: preparing \"%s\" failed: %s", s->path,
                         store_stmt_sql[i], sqlite3_errmsg(s->db));
            return store_errno(rc);
        }
    }
    if (!s->readonly) {
        struct rollup_io io = store_rollup_io(s);
        int rc = rollup_new(s->db, &io, &s->rollup);
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
    s->period_ms = STORE_PERIOD_DEFAULT_MS;
    const char *pe = getenv("PARKGW_STORE_PERIOD_MS");
    int64_t pv;
    if (pe && *pe && parse_int64(pe, &pv) == 0)
        s->period_ms = pv < STORE_PERIOD_MIN_MS   ? STORE_PERIOD_MIN_MS
                       : pv > STORE_PERIOD_MAX_MS ? STORE_PERIOD_MAX_MS
                                                  : pv;
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
                      /* Commits append to the right edge of staged and
                       * the move writes each chunk once: the working set
                       * is a few pages per transaction plus the move's
                       * sorter (which spills to a temporary file beyond
                       * this). 2 MiB; docs/STORAGE.md has the measurements. */
                      "PRAGMA cache_size = -2048;",
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
         * store_scan and store_rollup_scan read the staging table too. */
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
    if (s->staging && s->st[STMT_RECENT_ANY])
        store_flush_staged(s);   /* a clean stop leaves nothing staged */
    for (size_t i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    rollup_free(s->rollup);
    free(s->main_max);
    free(s->mk);
    free(s->pts);
    free(s->pv);
    free(s->prow);
    chunk_buf_free(&s->enc);
    free(s->tmp);
    free(s->gts);
    free(s->gv);
    for (size_t i = 0; i < s->mp_used; i++) {
        free(s->mp[i].ts);
        free(s->mp[i].v);
    }
    free(s->mp);
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

    if ((unsigned)utility >= UTIL__COUNT ||
        (unsigned)kind >= ARRAY_SIZE(store_kind_names))
        return -EINVAL;
    uname = utility_name(utility);
    kname = store_kind_names[kind];

    store_bind_names(s->st[STMT_POINT_FIND], enterprise, meter, point);
    rc = sqlite3_step(s->st[STMT_POINT_FIND]);
    if (rc == SQLITE_ROW) {
        bool same = strcmp(store_column_str(s->st[STMT_POINT_FIND], 1), uname) == 0 &&
                    strcmp(store_column_str(s->st[STMT_POINT_FIND], 2), kname) == 0;
        id = sqlite3_column_int64(s->st[STMT_POINT_FIND], 0);
        sqlite3_reset(s->st[STMT_POINT_FIND]);
        /* The config is the truth for a point's utility and kind: a
         * corrected profile updates the registry, the id stays. */
        if (!same && !s->readonly) {
            sqlite3_bind_int64(s->st[STMT_POINT_UPDATE], 1, id);
            sqlite3_bind_text(s->st[STMT_POINT_UPDATE], 2, uname, -1, SQLITE_STATIC);
            sqlite3_bind_text(s->st[STMT_POINT_UPDATE], 3, kname, -1, SQLITE_STATIC);
            rc = store_step_done(s->st[STMT_POINT_UPDATE]);
            if (rc != SQLITE_OK)
                return store_fail(s, rc);
        }
        goto out_found;
    }
    r = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(s->st[STMT_POINT_FIND]);
    if (r < 0)
        return r;

    store_bind_names(s->st[STMT_POINT_ADD], enterprise, meter, point);
    sqlite3_bind_text(s->st[STMT_POINT_ADD], 4, uname, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->st[STMT_POINT_ADD], 5, kname, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->st[STMT_POINT_ADD]);
    if (rc != SQLITE_DONE) {
        r = store_fail(s, rc);
        sqlite3_reset(s->st[STMT_POINT_ADD]);
        return r;
    }
    sqlite3_reset(s->st[STMT_POINT_ADD]);
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

    store_bind_names(s->st[STMT_POINT_FIND], enterprise, meter, point);
    rc = sqlite3_step(s->st[STMT_POINT_FIND]);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(s->st[STMT_POINT_FIND], 0);
        sqlite3_reset(s->st[STMT_POINT_FIND]);
        if (id <= 0 || id > UINT32_MAX)
            return -EIO;
        *ret_id = (uint32_t)id;
        return 0;
    }
    r = rc == SQLITE_DONE ? -ENOENT : store_fail(s, rc);
    sqlite3_reset(s->st[STMT_POINT_FIND]);
    return r;
}


/* ---- chunk periods, meter keys, the series' newest ts ---- */

/* The start of the chunk period containing ts. */
static int64_t store_period(const struct store *s, int64_t ts)
{
    return floor_div(ts, s->period_ms) * s->period_ms;
}

/* A point's meter key: the smallest point id of its (enterprise, meter), or
 * the point itself if it is not registered. SQLite result code. */
static int store_meter_key(struct store *s, uint32_t point, uint32_t *ret)
{
    if ((size_t)point >= s->mk_cap) {
        size_t old = s->mk_cap;
        s->mk = xgrow(s->mk, &s->mk_cap, (size_t)point + 1, sizeof(*s->mk));
        memset(s->mk + old, 0, (s->mk_cap - old) * sizeof(*s->mk));
    }
    if (s->mk[point] == 0) {
        uint32_t mk = point;
        sqlite3_bind_int64(s->st[STMT_MK], 1, point);
        int rc = sqlite3_step(s->st[STMT_MK]);
        if (rc == SQLITE_ROW && sqlite3_column_type(s->st[STMT_MK], 0) != SQLITE_NULL) {
            int64_t m = sqlite3_column_int64(s->st[STMT_MK], 0);
            if (m > 0 && m < point)
                mk = (uint32_t)m;
        }
        sqlite3_reset(s->st[STMT_MK]);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rc;
        s->mk[point] = mk;
    }
    *ret = s->mk[point];
    return SQLITE_OK;
}

/* Forgets the cached newest ts of every point (another connection wrote,
 * or a move rolled back). */
static void store_main_max_forget(struct store *s)
{
    for (size_t i = 0; i < s->main_max_cap; i++)
        s->main_max[i] = STORE_TS_UNKNOWN;
}

/* The newest ts of 'point' in series (STORE_TS_NONE if it has none),
 * uncached. SQLite result code. */
static int store_series_newest(struct store *s, uint32_t point, int64_t *ret)
{
    sqlite3_bind_int64(s->st[STMT_MAIN_MAX], 1, point);
    int rc = sqlite3_step(s->st[STMT_MAIN_MAX]);
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int64(s->st[STMT_MAIN_MAX], 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *ret = STORE_TS_NONE;
        rc = SQLITE_OK;
    }
    sqlite3_reset(s->st[STMT_MAIN_MAX]);
    return rc;
}

/* The same through the cache. 0 or -errno. */
static int store_main_max(struct store *s, uint32_t point, int64_t *ret)
{
    if ((size_t)point >= s->main_max_cap) {
        size_t old = s->main_max_cap;
        s->main_max = xgrow(s->main_max, &s->main_max_cap, (size_t)point + 1, sizeof(int64_t));
        for (size_t i = old; i < s->main_max_cap; i++)
            s->main_max[i] = STORE_TS_UNKNOWN;
    }
    if (s->main_max[point] == STORE_TS_UNKNOWN) {
        int rc = store_series_newest(s, point, &s->main_max[point]);
        if (rc != SQLITE_OK) {
            s->main_max[point] = STORE_TS_UNKNOWN;
            return store_fail(s, rc);
        }
    }
    *ret = s->main_max[point];
    return 0;
}

/* The oldest staged ts, or INT64_MAX when staged is empty. */
static int store_staged_oldest(struct store *s, int64_t *ret)
{
    int rc = sqlite3_step(s->st[STMT_RECENT_ANY]);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(s->st[STMT_RECENT_ANY], 0);
    else if (rc == SQLITE_DONE)
        *ret = INT64_MAX;
    else
        r = store_fail(s, rc);
    sqlite3_reset(s->st[STMT_RECENT_ANY]);
    return r;
}

/* ---- series chunks ---- */

static void store_pend_push(struct store *s, size_t pos, int64_t ts, double v)
{
    s->pts = xgrow(s->pts, &s->pcap_ts, s->pn + 1, sizeof(*s->pts));
    s->pv = xgrow(s->pv, &s->pcap_v, s->pn + 1, sizeof(*s->pv));
    if (pos < s->pn) {
        memmove(s->pts + pos + 1, s->pts + pos, (s->pn - pos) * sizeof(*s->pts));
        memmove(s->pv + pos + 1, s->pv + pos, (s->pn - pos) * sizeof(*s->pv));
    }
    s->pts[pos] = ts;
    s->pv[pos] = v;
    s->pn++;
}

/* Index of the first pending sample with ts >= 'ts'. */
static size_t store_pend_find(const struct store *s, int64_t ts)
{
    size_t lo = 0, hi = s->pn;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->pts[mid] < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The latest sample of 'point' in series before x. SQLite result code. */
static int store_chunk_prev(struct store *s, uint32_t point, int64_t x, bool *ret_found,
                            int64_t *ret_ts, double *ret_v)
{
    sqlite3_stmt *st = s->st[STMT_CHUNK_BEFORE];
    struct chunk_iter it;
    int64_t ts;
    double v;
    int k, rc;

    *ret_found = false;
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, x);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        chunk_iter_init(&it, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                        sqlite3_column_int64(st, 0));
        while ((k = chunk_next(&it, &ts, &v)) > 0 && ts < x) {
            *ret_found = true;
            *ret_ts = ts;
            *ret_v = v;
        }
        rc = k < 0 ? SQLITE_CORRUPT : SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

/* The earliest sample of 'point' in series after x. SQLite result code. */
static int store_chunk_next(struct store *s, uint32_t point, int64_t x, bool *ret_found,
                            int64_t *ret_ts, double *ret_v)
{
    sqlite3_stmt *st = s->st[STMT_CHUNK_AT];
    struct chunk_iter it;
    int64_t ts;
    double v;
    int k = 0, rc;

    *ret_found = false;
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, x);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > x) {
        chunk_iter_init(&it, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                        sqlite3_column_int64(st, 0));
        while ((k = chunk_next(&it, &ts, &v)) > 0) {
            if (ts > x) {
                *ret_found = true;
                *ret_ts = ts;
                *ret_v = v;
                break;
            }
        }
        sqlite3_reset(st);
        return k < 0 ? SQLITE_CORRUPT : SQLITE_OK;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    st = s->st[STMT_CHUNK_AFTER];
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, x);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        chunk_iter_init(&it, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                        sqlite3_column_int64(st, 0));
        k = chunk_next(&it, ret_ts, ret_v);
        *ret_found = k > 0;
        rc = k < 0 ? SQLITE_CORRUPT : SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

/* rollup_io: the neighbours of (point, ts) as the open transaction sees
 * them, including the samples store_put_group has merged so far. */
static int store_io_prev(void *ud, uint32_t point, int64_t ts, bool *ret_found, int64_t *ret_ts,
                         double *ret_v)
{
    struct store *s = ud;
    if (s->pend_on && point == s->pend_point) {
        size_t i = store_pend_find(s, ts);
        if (i > 0) {
            *ret_found = true;
            *ret_ts = s->pts[i - 1];
            *ret_v = s->pv[i - 1];
            return SQLITE_OK;
        }
        if (ts > s->pend_lo)
            ts = s->pend_lo;
    }
    return store_chunk_prev(s, point, ts, ret_found, ret_ts, ret_v);
}

static int store_io_next(void *ud, uint32_t point, int64_t ts, bool *ret_found, int64_t *ret_ts,
                         double *ret_v)
{
    struct store *s = ud;
    if (s->pend_on && point == s->pend_point) {
        size_t i = store_pend_find(s, ts);
        if (i < s->pn && s->pts[i] == ts)
            i++;
        if (i < s->pn) {
            *ret_found = true;
            *ret_ts = s->pts[i];
            *ret_v = s->pv[i];
            return SQLITE_OK;
        }
        if (ts < s->pend_hi - 1)
            ts = s->pend_hi - 1;
    }
    return store_chunk_next(s, point, ts, ret_found, ret_ts, ret_v);
}

/* rollup_io: every raw sample in (point, ts) order (rollup_rebuild). */
static int store_io_scan_all(void *ud,
                             int (*add)(struct rollup *r, uint32_t point, int64_t ts, double v),
                             struct rollup *r)
{
    struct store *s = ud;
    sqlite3_stmt *st;
    struct chunk_iter it;
    int64_t ts;
    double v;
    int k, rc;

    rc = sqlite3_prepare_v2(s->db, "SELECT point, t0, data FROM series ORDER BY point, t0", -1,
                            &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint32_t point = (uint32_t)sqlite3_column_int64(st, 0);
        chunk_iter_init(&it, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                        sqlite3_column_int64(st, 1));
        while ((k = chunk_next(&it, &ts, &v)) > 0) {
            rc = add(r, point, ts, v);
            if (rc != SQLITE_OK)
                break;
        }
        if (k < 0)
            rc = SQLITE_CORRUPT;
        if (rc != SQLITE_ROW && rc != SQLITE_OK)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static struct rollup_io store_rollup_io(struct store *s)
{
    return (struct rollup_io){store_io_prev, store_io_next, store_io_scan_all, s};
}

/* Encodes pts/pv (ts order) into s->enc. */
static void store_encode_pending(struct store *s)
{
    int64_t prev = s->pts[0];
    s->enc.len = 0;
    for (size_t i = 0; i < s->pn; i++)
        chunk_put(&s->enc, &prev, s->pts[i], s->pv[i]);
}

/*
 * Inside the caller's write transaction: merges n samples of 'point' (ts
 * ascending, distinct, all in one chunk period) into the point's chunk of
 * that period, feeding rollup_add with each sample actually added (a
 * (point, ts) already stored wins) before the chunk is written, so the
 * rollup look-ups see exactly the samples before it. *ret_added may be
 * NULL. SQLite result code.
 */
static int store_put_group(struct store *s, uint32_t point, const int64_t *ts, const double *v,
                           size_t n, int64_t *ret_added)
{
    struct rollup *ru = s->rollups_off ? NULL : s->rollup;
    sqlite3_stmt *st = s->st[STMT_WINDOW];
    int64_t p0 = store_period(s, ts[0]), p1 = p0 + s->period_ms;
    int64_t lo = p0, hi = p1, added = 0;
    struct chunk_iter it;
    int64_t t;
    double x;
    int k = 0, rc;

    s->pn = 0;
    s->prow_n = 0;
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, p0);
    sqlite3_bind_int64(st, 3, p1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t0 = sqlite3_column_int64(st, 1), t1 = sqlite3_column_int64(st, 2);
        if (t1 < p0)
            continue;
        s->prow = xgrow(s->prow, &s->prow_cap, s->prow_n + 1, sizeof(*s->prow));
        s->prow[s->prow_n++] = sqlite3_column_int64(st, 0);
        if (t0 < lo)
            lo = t0;
        if (t1 >= hi)
            hi = t1 + 1;
        chunk_iter_init(&it, sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3), t0);
        while ((k = chunk_next(&it, &t, &x)) > 0)
            store_pend_push(s, s->pn, t, x);
        if (k < 0)
            break;
    }
    sqlite3_reset(st);
    if (k < 0)
        return SQLITE_CORRUPT;
    if (rc != SQLITE_DONE)
        return rc;

    s->pend_on = true;
    s->pend_point = point;
    s->pend_lo = lo;
    s->pend_hi = hi;
    for (size_t i = 0; i < n; i++) {
        size_t pos = s->pn;
        if (s->pn > 0 && ts[i] <= s->pts[s->pn - 1]) {
            pos = store_pend_find(s, ts[i]);
            if (pos < s->pn && s->pts[pos] == ts[i])
                continue;   /* stored already: the stored value wins */
        }
        if (ru) {
            rc = rollup_add(ru, point, ts[i], v[i]);
            if (rc != SQLITE_OK) {
                s->pend_on = false;
                return rc;
            }
        }
        store_pend_push(s, pos, ts[i], v[i]);
        added++;
    }
    s->pend_on = false;
    if (ret_added)
        *ret_added = added;
    if (added == 0)
        return SQLITE_OK;

    store_encode_pending(s);
    for (size_t i = 1; i < s->prow_n; i++) {
        sqlite3_bind_int64(s->st[STMT_CHUNK_DEL], 1, s->prow[i]);
        rc = store_step_done(s->st[STMT_CHUNK_DEL]);
        if (rc != SQLITE_OK)
            return rc;
    }
    st = s->prow_n > 0 ? s->st[STMT_CHUNK_SET] : s->st[STMT_CHUNK_ADD];
    sqlite3_bind_int64(st, 1, s->prow_n > 0 ? s->prow[0] : (int64_t)point);
    sqlite3_bind_int64(st, 2, s->pts[0]);
    sqlite3_bind_int64(st, 3, s->pts[s->pn - 1]);
    sqlite3_bind_int64(st, 4, (int64_t)s->pn);
    sqlite3_bind_blob(st, 5, s->enc.p, (int)s->enc.len, SQLITE_STATIC);
    rc = store_step_done(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_OK)
        return rc;
    if ((size_t)point < s->main_max_cap && s->main_max[point] != STORE_TS_UNKNOWN &&
        (s->main_max[point] == STORE_TS_NONE || s->pts[s->pn - 1] > s->main_max[point]))
        s->main_max[point] = s->pts[s->pn - 1];
    return SQLITE_OK;
}

static int store_tmp_point_cmp(const void *a, const void *b)
{
    const struct store_tmp *x = a, *y = b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Writes the n samples of s->tmp (any order) into series with their
 * rollups: per (point, chunk period) one merge. SQLite result code. */
static int store_put_tmp(struct store *s, size_t n)
{
    size_t i = 0;
    qsort(s->tmp, n, sizeof(*s->tmp), store_tmp_point_cmp);
    while (i < n) {
        uint32_t point = s->tmp[i].point;
        int64_t end = store_period(s, s->tmp[i].ts) + s->period_ms;
        size_t g = 0;
        for (; i < n && s->tmp[i].point == point && s->tmp[i].ts < end; i++) {
            if (g > 0 && s->gts[g - 1] == s->tmp[i].ts)
                continue;   /* a duplicate in the batch: the first wins */
            s->gts = xgrow(s->gts, &s->gcap_ts, g + 1, sizeof(*s->gts));
            s->gv = xgrow(s->gv, &s->gcap_v, g + 1, sizeof(*s->gv));
            s->gts[g] = s->tmp[i].ts;
            s->gv[g] = s->tmp[i].v;
            g++;
        }
        int rc = store_put_group(s, point, s->gts, s->gv, g, NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* ---- staging ---- */

static int store_tmp_row_cmp(const void *a, const void *b)
{
    const struct store_tmp *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->mk != y->mk)
        return x->mk < y->mk ? -1 : 1;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* One staged row (ts, mk) from tmp[a..b) (sorted, points distinct): a new
 * row, or merged into the existing one whose values win. SQLite result
 * code. */
static int store_stage_row(struct store *s, size_t a, size_t b)
{
    int64_t ts = s->tmp[a].ts, prev = s->tmp[a].mk;
    uint32_t mk = s->tmp[a].mk;
    int rc;

    s->enc.len = 0;
    for (size_t i = a; i < b; i++)
        chunk_put(&s->enc, &prev, s->tmp[i].point, s->tmp[i].v);
    sqlite3_bind_int64(s->st[STMT_STAGE], 1, ts);
    sqlite3_bind_int64(s->st[STMT_STAGE], 2, mk);
    sqlite3_bind_int64(s->st[STMT_STAGE], 3, (int64_t)(b - a));
    sqlite3_bind_blob(s->st[STMT_STAGE], 4, s->enc.p, (int)s->enc.len, SQLITE_STATIC);
    rc = store_step_done(s->st[STMT_STAGE]);
    if (rc != SQLITE_OK || sqlite3_changes(s->db) > 0)
        return rc;

    /* (ts, mk) is staged already (a batch resubmitted or split): merge,
     * point order, the stored value wins on equal points. */
    struct chunk_iter it;
    int64_t p, mprev = mk;
    double v;
    int k;
    size_t i = a, cnt = 0;
    struct chunk_buf out = {0};
    sqlite3_bind_int64(s->st[STMT_STAGE_GET], 1, ts);
    sqlite3_bind_int64(s->st[STMT_STAGE_GET], 2, mk);
    rc = sqlite3_step(s->st[STMT_STAGE_GET]);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s->st[STMT_STAGE_GET]);
        return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
    }
    chunk_iter_init(&it, sqlite3_column_blob(s->st[STMT_STAGE_GET], 0),
                    (size_t)sqlite3_column_bytes(s->st[STMT_STAGE_GET], 0), mk);
    while ((k = chunk_next(&it, &p, &v)) > 0) {
        for (; i < b && s->tmp[i].point < p; i++, cnt++)
            chunk_put(&out, &mprev, s->tmp[i].point, s->tmp[i].v);
        if (i < b && s->tmp[i].point == p)
            i++;
        chunk_put(&out, &mprev, p, v);
        cnt++;
    }
    sqlite3_reset(s->st[STMT_STAGE_GET]);
    if (k < 0) {
        chunk_buf_free(&out);
        return SQLITE_CORRUPT;
    }
    for (; i < b; i++, cnt++)
        chunk_put(&out, &mprev, s->tmp[i].point, s->tmp[i].v);
    sqlite3_bind_int64(s->st[STMT_STAGE_SET], 1, ts);
    sqlite3_bind_int64(s->st[STMT_STAGE_SET], 2, mk);
    sqlite3_bind_int64(s->st[STMT_STAGE_SET], 3, (int64_t)cnt);
    sqlite3_bind_blob(s->st[STMT_STAGE_SET], 4, out.p, (int)out.len, SQLITE_STATIC);
    rc = store_step_done(s->st[STMT_STAGE_SET]);
    sqlite3_clear_bindings(s->st[STMT_STAGE_SET]);
    chunk_buf_free(&out);
    return rc;
}

/* Stages tmp[0..n): grouped by (ts, mk). SQLite result code. */
static int store_stage_tmp(struct store *s, size_t n)
{
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = store_tmp_row_cmp(&s->tmp[i - 1], &s->tmp[i]) < 0 &&
                 (s->tmp[i - 1].point != s->tmp[i].point || s->tmp[i - 1].ts != s->tmp[i].ts);
    if (!sorted) {
        qsort(s->tmp, n, sizeof(*s->tmp), store_tmp_row_cmp);
        /* drop later duplicates of (point, ts): the first one wins */
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (w == 0 || s->tmp[w - 1].ts != s->tmp[i].ts || s->tmp[w - 1].point != s->tmp[i].point)
                s->tmp[w++] = s->tmp[i];
        n = w;
    }
    size_t a = 0;
    while (a < n) {
        size_t b = a + 1;
        while (b < n && s->tmp[b].ts == s->tmp[a].ts && s->tmp[b].mk == s->tmp[a].mk)
            b++;
        int rc = store_stage_row(s, a, b);
        if (rc != SQLITE_OK)
            return rc;
        if (s->tmp[a].ts < s->staged_min)
            s->staged_min = s->tmp[a].ts;
        if (s->tmp[a].ts > s->staged_max)
            s->staged_max = s->tmp[a].ts;
        a = b;
    }
    return SQLITE_OK;
}

/* The meter buffer of 'point' in the move (hint: the index that matched the
 * previous point of the row + 1). */
static struct store_mpoint *store_mpoint(struct store *s, uint32_t point, size_t *hint)
{
    size_t i = *hint;
    if (!(i < s->mp_n && s->mp[i].point == point)) {
        for (i = 0; i < s->mp_n && s->mp[i].point != point; i++)
            ;
        if (i == s->mp_n) {
            s->mp = xgrow(s->mp, &s->mp_cap, s->mp_n + 1, sizeof(*s->mp));
            if (s->mp_n >= s->mp_used) {
                s->mp[s->mp_n] = (struct store_mpoint){0};
                s->mp_used = s->mp_n + 1;
            }
            s->mp[s->mp_n].point = point;
            s->mp[s->mp_n].n = 0;
            s->mp_n++;
        }
    }
    *hint = i + 1;
    return &s->mp[i];
}

static int store_mpoint_cmp(const void *a, const void *b)
{
    const struct store_mpoint *x = a, *y = b;
    return x->point < y->point ? -1 : x->point > y->point;
}

/* Writes the buffered meter's samples into series: per point and chunk
 * period one store_put_group. SQLite result code. */
static int store_move_meter(struct store *s)
{
    int rc = SQLITE_OK;
    qsort(s->mp, s->mp_n, sizeof(*s->mp), store_mpoint_cmp);
    for (size_t j = 0; j < s->mp_n && rc == SQLITE_OK; j++) {
        struct store_mpoint *m = &s->mp[j];
        size_t a = 0;
        while (a < m->n && rc == SQLITE_OK) {
            int64_t end = store_period(s, m->ts[a]) + s->period_ms;
            size_t b = a + 1;
            while (b < m->n && m->ts[b] < end)
                b++;
            rc = store_put_group(s, m->point, m->ts + a, m->v + a, b - a, NULL);
            a = b;
        }
        m->n = 0;
    }
    s->mp_n = 0;
    return rc;
}

/*
 * Inside the caller's write transaction: moves the staged rows with ts <
 * cut (at most STORE_MOVE_ROWS of them, the oldest) into series, read in
 * (mk, ts) order (SQLite's sorter, bounded memory), one meter at a time,
 * feeding the rollups, and deletes them from staged. *ret_moved (may be
 * NULL): samples moved. 0 or -errno; after an error the caller rolls back.
 */
static int store_move_staged(struct store *s, int64_t cut, int64_t *ret_moved)
{
    struct rollup *ru = s->rollups_off ? NULL : s->rollup;
    sqlite3_stmt *sel = NULL, *del = NULL;
    int64_t oldest, moved = 0, cur_mk = -1;
    int rc, r, k = 0;

    if (ret_moved)
        *ret_moved = 0;
    r = store_staged_oldest(s, &oldest);
    if (r < 0)
        return r;
    s->staged_min = oldest;
    if (oldest >= cut)
        return 0;
    if (s->readonly)
        return 0;   /* readers read both tables anyway */
    /* Bound the transaction: cut at the ts of the ROWS-th oldest row. */
    rc = sqlite3_prepare_v2(s->db, "SELECT ts FROM staged ORDER BY ts LIMIT 1 OFFSET ?1", -1,
                            &sel, NULL);
    if (rc != SQLITE_OK)
        goto out_fail;
    sqlite3_bind_int64(sel, 1, STORE_MOVE_ROWS);
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

    rc = sqlite3_prepare_v2(s->db, "SELECT mk, ts, data FROM staged WHERE ts < ?1 ORDER BY mk, ts",
                            -1, &sel, NULL);
    if (rc != SQLITE_OK)
        goto out_fail;
    sqlite3_bind_int64(sel, 1, cut);
    s->mp_n = 0;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t mk = sqlite3_column_int64(sel, 0), ts = sqlite3_column_int64(sel, 1), p;
        double v;
        size_t hint = 0;
        struct chunk_iter it;
        if (mk != cur_mk && s->mp_n > 0) {
            rc = store_move_meter(s);
            if (rc != SQLITE_OK)
                goto out_fail;
        }
        cur_mk = mk;
        chunk_iter_init(&it, sqlite3_column_blob(sel, 2), (size_t)sqlite3_column_bytes(sel, 2), mk);
        while ((k = chunk_next(&it, &p, &v)) > 0) {
            struct store_mpoint *m = store_mpoint(s, (uint32_t)p, &hint);
            m->ts = xgrow(m->ts, &m->cap_ts, m->n + 1, sizeof(*m->ts));
            m->v = xgrow(m->v, &m->cap_v, m->n + 1, sizeof(*m->v));
            m->ts[m->n] = ts;
            m->v[m->n] = v;
            m->n++;
            moved++;
        }
        if (k < 0) {
            rc = SQLITE_CORRUPT;
            goto out_fail;
        }
    }
    if (rc != SQLITE_DONE)
        goto out_fail;
    sqlite3_finalize(sel);
    sel = NULL;
    if (s->mp_n > 0) {
        rc = store_move_meter(s);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    if (ru) {
        rc = rollup_flush(ru);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    rc = sqlite3_prepare_v2(s->db, "DELETE FROM staged WHERE ts < ?1", -1, &del, NULL);
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
    for (size_t j = 0; j < s->mp_n; j++)
        s->mp[j].n = 0;
    s->mp_n = 0;
    rollup_reset(ru);
    /* the cached maxima may include rows the rollback takes away */
    store_main_max_forget(s);
    return r;
}

/* Moves staged rows older than cut in their own transaction. */
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

/* Inside a write transaction: moves everything staged. */
static int store_move_all(struct store *s)
{
    int64_t oldest;
    int r;
    for (;;) {
        r = store_staged_oldest(s, &oldest);
        if (r < 0 || oldest == INT64_MAX)
            return r;
        r = store_move_staged(s, INT64_MAX, NULL);
        if (r < 0)
            return r;
    }
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
    } while (r == 0);
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


int store_begin(struct store *s)
{
    /* IMMEDIATE takes the write lock now, so a busy database fails here
     * (after busy_timeout) instead of halfway through the batch. */
    int rc = store_step_done(s->st[STMT_BEGIN]);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    if (s->staging) {
        /* Under the write lock: has another connection committed (an
         * import moves the staged rows and adds its own) since we last
         * looked? Then the cached maxima are stale. */
        rc = sqlite3_step(s->st[STMT_DATA_VERSION]);
        int64_t dv = rc == SQLITE_ROW ? sqlite3_column_int64(s->st[STMT_DATA_VERSION], 0) : -2;
        sqlite3_reset(s->st[STMT_DATA_VERSION]);
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
    size_t ns = 0, nd = 0;
    int rc = SQLITE_OK, r;

    if (n == 0)
        return 0;
    if (!s->staging) {
        /* An immediate insert (an import) must not land after staged
         * samples of its point: move them all first (usually none). */
        r = store_move_all(s);
        if (r < 0)
            return r;
    }
    /* tmp[0..ns): to stage; tmp[n..n+nd): straight into series. */
    s->tmp = xgrow(s->tmp, &s->tmp_cap, 2 * n, sizeof(*s->tmp));
    for (size_t i = 0; i < n; i++) {
        const struct sample *x = &samples[i];
        if (isnan(x->value))
            continue;   /* never stored */
        struct store_tmp t = {.ts = x->ts, .point = x->point, .idx = (uint32_t)i, .v = x->value};
        if (s->staging) {
            int64_t newest;
            r = store_main_max(s, x->point, &newest);
            if (r < 0)
                goto out_fail_r;
            if (x->ts > newest) {
                /* The daemon's case: newer than the point's series,
                 * staged; its rollups come when it moves. */
                rc = store_meter_key(s, x->point, &t.mk);
                if (rc != SQLITE_OK)
                    goto out_fail;
                s->tmp[ns++] = t;
                continue;
            }
            /* Not newer (a clock step back): into series with its
             * rollups at once. */
        }
        s->tmp[n + nd++] = t;
    }
    if (ns > 0) {
        rc = store_stage_tmp(s, ns);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    if (nd > 0) {
        memmove(s->tmp, s->tmp + n, nd * sizeof(*s->tmp));
        rc = store_put_tmp(s, nd);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    if (ru) {
        rc = rollup_flush(ru);
        if (rc != SQLITE_OK)
            goto out_fail;
    }
    return 0;

out_fail:
    r = store_fail(s, rc);
out_fail_r:
    rollup_reset(ru);
    store_main_max_forget(s);
    return r;
}

int store_commit(struct store *s)
{
    int rc = store_step_done(s->st[STMT_COMMIT]);
    if (rc == SQLITE_OK)
        return 0;
    int r = store_fail(s, rc);
    store_rollback(s);
    return r;
}

void store_rollback(struct store *s)
{
    rollup_reset(s->rollup);
    s->pend_on = false;
    store_main_max_forget(s);
    /* SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR do
     * for some statements); ROLLBACK would then fail harmlessly. */
    if (!sqlite3_get_autocommit(s->db))
        store_step_done(s->st[STMT_ROLLBACK]);
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

/* ---- readers ---- */

/* Readers run their statements in one read transaction (unless one is
 * open), so a move committed by the writer in between cannot make a sample
 * appear twice or not at all. */
static bool store_read_begin(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        return false;
    return sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

static void store_read_end(struct store *s, bool began)
{
    if (began && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

/* A prepared statement that is not stepping: 'st' itself, or a copy when a
 * callback of a scan calls in again (*own set: finalize it). */
static int store_stmt(struct store *s, sqlite3_stmt **st, bool *own)
{
    *own = false;
    if (!sqlite3_stmt_busy(*st))
        return SQLITE_OK;
    int rc = sqlite3_prepare_v2(s->db, sqlite3_sql(*st), -1, st, NULL);
    *own = rc == SQLITE_OK;
    return rc;
}

static void store_stmt_done(sqlite3_stmt *st, bool own)
{
    if (own)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
}

/* Finds 'point' in a staged row: 1 and *ret_v, 0 (absent), -EINVAL. */
static int store_row_find(const void *data, size_t len, uint32_t mk, uint32_t point, double *ret_v)
{
    struct chunk_iter it;
    int64_t p;
    int k;
    chunk_iter_init(&it, data, len, mk);
    while ((k = chunk_next(&it, &p, ret_v)) > 0) {
        if (p == (int64_t)point)
            return 1;
        if (p > (int64_t)point)
            return 0;
    }
    return k;
}

int store_scan(struct store *s, uint32_t point, int64_t from, int64_t to,
               int (*cb)(void *ud, int64_t ts, double value), void *ud)
{
    sqlite3_stmt *st = s->st[STMT_SCAN];
    struct chunk_iter it;
    bool own, stop = false;
    uint32_t mk;
    int64_t ts;
    double v;
    int rc, k = 0;

    if (from >= to)
        return 0;
    rc = store_meter_key(s, point, &mk);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    bool began = store_read_begin(s);
    rc = store_stmt(s, &st, &own);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) < from)
            continue;
        chunk_iter_init(&it, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                        sqlite3_column_int64(st, 0));
        while ((k = chunk_next(&it, &ts, &v)) > 0 && ts < to) {
            if (ts >= from && cb(ud, ts, v) != 0) {
                stop = true;
                break;
            }
        }
        if (k < 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
    }
    store_stmt_done(st, own);
    if (stop)
        rc = SQLITE_DONE;
    if (rc != SQLITE_DONE || stop)
        goto out;
    /* The point's staged samples, all newer than its series. */
    st = s->st[STMT_SCAN_STAGED];
    rc = store_stmt(s, &st, &own);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mk);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        k = store_row_find(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), mk,
                           point, &v);
        if (k < 0) {
            rc = SQLITE_CORRUPT;
            break;
        }
        if (k > 0 && cb(ud, sqlite3_column_int64(st, 0), v) != 0)
            stop = true;
    }
    store_stmt_done(st, own);
    if (stop)
        rc = SQLITE_DONE;
out:;
    int r = rc == SQLITE_DONE || rc == SQLITE_OK ? 0 : store_fail(s, rc);
    store_read_end(s, began);
    return r;
}

int store_seek_back(struct store *s, uint32_t point, int64_t ts, int64_t floor_ts, int k,
                    int64_t *ret_ts)
{
    sqlite3_stmt *st = s->st[STMT_SEEK_STAGED];
    struct chunk_iter it;
    bool own;
    uint32_t mk;
    int64_t t;
    double v;
    int rc, d = 0, r = -ENOENT;

    if (k < 1)
        k = 1;
    rc = store_meter_key(s, point, &mk);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    bool began = store_read_begin(s);
    rc = store_stmt(s, &st, &own);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mk);
    sqlite3_bind_int64(st, 2, ts);
    sqlite3_bind_int64(st, 3, floor_ts);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        d = store_row_find(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), mk,
                           point, &v);
        if (d < 0)
            break;
        if (d > 0 && --k == 0) {
            *ret_ts = sqlite3_column_int64(st, 0);
            r = 0;
            break;
        }
    }
    store_stmt_done(st, own);
    if (d < 0)
        rc = SQLITE_CORRUPT;
    if (r == 0 || (rc != SQLITE_DONE && rc != SQLITE_ROW))
        goto out;
    st = s->st[STMT_SEEK];
    rc = store_stmt(s, &st, &own);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, ts);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) < floor_ts)
            break;
        /* decode the chunk, then count from its end */
        size_t n = 0;
        chunk_iter_init(&it, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                        sqlite3_column_int64(st, 0));
        while ((d = chunk_next(&it, &t, &v)) > 0 && t < ts) {
            s->gts = xgrow(s->gts, &s->gcap_ts, n + 1, sizeof(*s->gts));
            s->gts[n++] = t;
        }
        if (d < 0)
            break;
        while (n > 0 && s->gts[n - 1] >= floor_ts) {
            n--;
            if (--k == 0) {
                *ret_ts = s->gts[n];
                r = 0;
                break;
            }
        }
        if (r == 0 || n > 0)
            break;   /* found, or reached floor_ts */
    }
    store_stmt_done(st, own);
    if (d < 0)
        rc = SQLITE_CORRUPT;
out:
    if (r != 0 && rc != SQLITE_DONE && rc != SQLITE_ROW && rc != SQLITE_OK)
        r = store_fail(s, rc);
    store_read_end(s, began);
    return r;
}

/* The rollup rows of 'point' are complete for the buckets that end at or
 * before *ret (INT64_MAX: all of them; INT64_MIN: none, the point has only
 * staged samples). Later buckets must be computed from the raw samples.
 * 0 or -EIO. */
static int store_rollup_horizon(struct store *s, uint32_t point, int64_t *ret)
{
    int64_t oldest, newest;
    int r = store_staged_oldest(s, &oldest);
    if (r < 0)
        return r;
    if (oldest == INT64_MAX) {
        *ret = INT64_MAX;
        return 0;
    }
    int rc = store_series_newest(s, point, &newest);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    *ret = newest == STORE_TS_NONE ? INT64_MIN : newest;
    return 0;
}

int store_rollup_scan(struct store *s, uint32_t point, enum rollup_level l, int64_t from,
                      int64_t to, int (*cb)(void *ud, const struct rollup_row *row), void *ud)
{
    int64_t horizon, synth_from = INT64_MAX, to_all = to;
    bool stopped;

    if ((unsigned)l >= ROLLUP__COUNT)
        return -EINVAL;
    /* Past the horizon the stored rows lack the staged samples (not yet
     * moved into the series): those buckets come from the raw samples. */
    int r = store_rollup_horizon(s, point, &horizon);
    if (r < 0)
        return r;
    if (horizon != INT64_MAX) {
        synth_from = horizon == INT64_MIN ? INT64_MIN : rollup_floor(horizon, l);
        if (synth_from < from)
            synth_from = rollup_ceil(from, l);
        if (synth_from < to)
            to = synth_from;
        else
            synth_from = INT64_MAX;
    }
    int rc = rollup_read(s->db, point, l, from, to, cb, ud, &stopped);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    if (stopped || synth_from == INT64_MAX)
        return 0;
    /* the raw samples from the last one before synth_from on */
    struct rollup_synth y;
    int64_t lo = synth_from;
    rollup_synth_init(&y, l, synth_from, to_all);
    r = store_seek_back(s, point, synth_from, INT64_MIN, 1, &lo);
    if (r < 0 && r != -ENOENT) {
        rollup_synth_free(&y);
        return r;
    }
    r = store_scan(s, point, lo, INT64_MAX, rollup_synth_sample, &y);
    if (r < 0) {
        rollup_synth_free(&y);
        return r;
    }
    rollup_synth_finish(&y, cb, ud);
    return 0;
}

int store_latest_db(sqlite3 *db, uint32_t point, int64_t *ret_ts, double *ret_v)
{
    sqlite3_stmt *st;
    struct chunk_iter it;
    int64_t mk = point, t;
    double v;
    int rc, k = 0;
    bool found = false;

    /* the point's staged rows, newest first; then its last chunk */
    rc = sqlite3_prepare_v2(db,
                            "SELECT ts, data, (SELECT coalesce(min(b.id), ?1) FROM points a"
                            " JOIN points b ON b.enterprise = a.enterprise AND b.meter = a.meter"
                            " WHERE a.id = ?1) AS k FROM staged WHERE mk = k ORDER BY ts DESC",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, point);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mk = sqlite3_column_int64(st, 2);
        k = store_row_find(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                           (uint32_t)mk, point, &v);
        if (k != 0) {
            if (k > 0) {
                *ret_ts = sqlite3_column_int64(st, 0);
                *ret_v = v;
            }
            break;
        }
    }
    sqlite3_finalize(st);
    if (k < 0)
        return SQLITE_CORRUPT;
    if (k > 0)
        return SQLITE_ROW;
    if (rc != SQLITE_DONE)
        return rc;
    rc = sqlite3_prepare_v2(db, "SELECT t0, data FROM series WHERE point = ?1 ORDER BY t0 DESC LIMIT 1",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(st, 1, point);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        chunk_iter_init(&it, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                        sqlite3_column_int64(st, 0));
        while ((k = chunk_next(&it, &t, &v)) > 0) {
            found = true;
            *ret_ts = t;
            *ret_v = v;
        }
        rc = k < 0 ? SQLITE_CORRUPT : found ? SQLITE_ROW : SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc;
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

    r = store_query_int(s, "SELECT (SELECT coalesce(sum(n), 0) FROM series) + "
                           "(SELECT coalesce(sum(n), 0) FROM staged)", &samples);
    if (r < 0)
        return r;
    r = store_query_int(s, "PRAGMA page_count", &pages);
    if (r < 0)
        return r;
    r = store_query_int(s, "PRAGMA page_size", &page_size);
    if (r < 0)
        return r;
    /* min(t0) over the whole table would be a full scan (t0 is the second
     * key column); the first chunk of each registered point is one b-tree
     * seek per point. */
    r = store_query_int(s,
                        "SELECT coalesce(min(first), 0) FROM ("
                        "  SELECT (SELECT t0 FROM series WHERE point = p.id ORDER BY t0 LIMIT 1)"
                        "  AS first FROM points p"
                        "  UNION ALL SELECT min(ts) FROM staged)",
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

/* One retention batch: walks the points from the cursor, deleting each
 * one's whole chunks that ended before the cutoff until at least 'limit'
 * samples are gone. Called inside a transaction. 0 and *ret_deleted
 * (samples), *ret_done (a whole pass found no more). */
static int store_retain_batch(struct store *s, int64_t cutoff, int64_t limit,
                              int64_t *ret_deleted, bool *ret_done)
{
    int64_t max_id = 0, deleted = 0, id;
    int r = store_query_int(s, "SELECT coalesce(max(id), 0) FROM points", &max_id);
    if (r < 0)
        return r;
    for (id = s->retention_cursor + 1; id <= max_id && deleted < limit; id++) {
        int64_t want = 0;
        size_t nr = 0;
        int rc = SQLITE_DONE;
        sqlite3_bind_int64(s->st[STMT_RETAIN], 1, id);
        sqlite3_bind_int64(s->st[STMT_RETAIN], 2, cutoff);
        while (deleted + want < limit && (rc = sqlite3_step(s->st[STMT_RETAIN])) == SQLITE_ROW) {
            s->prow = xgrow(s->prow, &s->prow_cap, nr + 1, sizeof(*s->prow));
            s->prow[nr++] = sqlite3_column_int64(s->st[STMT_RETAIN], 0);
            want += sqlite3_column_int64(s->st[STMT_RETAIN], 1);
        }
        bool more = deleted + want >= limit && sqlite3_step(s->st[STMT_RETAIN]) == SQLITE_ROW;
        sqlite3_reset(s->st[STMT_RETAIN]);
        if (deleted + want < limit && rc != SQLITE_DONE)
            return store_fail(s, rc);
        for (size_t i = 0; i < nr; i++) {
            sqlite3_bind_int64(s->st[STMT_CHUNK_DEL], 1, s->prow[i]);
            rc = store_step_done(s->st[STMT_CHUNK_DEL]);
            if (rc != SQLITE_OK)
                return store_fail(s, rc);
        }
        deleted += want;
        if (more) {
            /* this point holds more: resume on it */
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
        store_period(s, s->staged_max) > s->staged_min && now_ms >= s->move_due_ms) {
        /* The staged rows of closed chunk periods go to series (and the
         * rollups) in one bulk transaction. */
        int64_t moved = 0, t0 = now_mono_ms();
        r = store_move_txn(s, store_period(s, s->staged_max), &moved);
        if (r < 0) {
            s->move_due_ms = now_ms + STORE_MOVE_RETRY_MS;
            return r;
        }
        s->move_due_ms = 0;
        if (moved > 0) {
            /* The pollers' batches queued while the move held the write
             * lock were freed by this thread into their threads' malloc
             * arenas; hand the free pages back, or every move leaves the
             * daemon a few MB bigger (measured: +2.5 MB per move at 1,000
             * meters x 30 points). */
            malloc_trim(0);
            log_debug("storage: moved %lld staged samples into series in %lld ms "
                      "(SQLite heap %lld bytes, peak %lld)",
                      (long long)moved, (long long)(now_mono_ms() - t0),
                      (long long)sqlite3_memory_used(), (long long)sqlite3_memory_highwater(0));
        }
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
    r = store_move_all(s);
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

/* ---- migration 4 -> 5 ---- */

/* Writes one converted chunk (pts/pv) of 'point'. SQLite result code. */
static int store_convert_chunk(struct store *s, sqlite3_stmt *add, int64_t point)
{
    store_encode_pending(s);
    sqlite3_bind_int64(add, 1, point);
    sqlite3_bind_int64(add, 2, s->pts[0]);
    sqlite3_bind_int64(add, 3, s->pts[s->pn - 1]);
    sqlite3_bind_int64(add, 4, (int64_t)s->pn);
    sqlite3_bind_blob(add, 5, s->enc.p, (int)s->enc.len, SQLITE_STATIC);
    int rc = store_step_done(add);
    s->pn = 0;
    return rc;
}

/*
 * Inside store_migrate's transaction (schema 4 -> 5): samples become series
 * chunks (read in (point, ts) order, the table's key: one chunk per point
 * and period), samples_recent becomes staged rows (one per (ts, meter key);
 * store_open moves them with their rollups right after), then both old
 * tables are dropped. The rollups are unchanged: they describe the same
 * samples. SQLite result code.
 */
static int store_convert_v4(struct store *s)
{
    sqlite3_stmt *sel = NULL, *add = NULL;
    int64_t cur = -1, end = 0;
    int rc;

    rc = sqlite3_prepare_v2(s->db, "SELECT point, ts, value FROM samples ORDER BY point, ts", -1,
                            &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO series(point, t0, t1, n, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                                -1, &add, NULL);
    if (rc != SQLITE_OK)
        goto out;
    s->pn = 0;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        int64_t point = sqlite3_column_int64(sel, 0), ts = sqlite3_column_int64(sel, 1);
        double v = sqlite3_column_double(sel, 2);
        if (s->pn > 0 && (point != cur || ts >= end)) {
            rc = store_convert_chunk(s, add, cur);
            if (rc != SQLITE_OK)
                goto out;
        }
        if (s->pn == 0) {
            cur = point;
            end = store_period(s, ts) + s->period_ms;
        }
        if (!isnan(v))
            store_pend_push(s, s->pn, ts, v);
    }
    if (rc != SQLITE_DONE)
        goto out;
    if (s->pn > 0 && (rc = store_convert_chunk(s, add, cur)) != SQLITE_OK)
        goto out;
    sqlite3_finalize(sel);
    sqlite3_finalize(add);
    sel = add = NULL;

    /* samples_recent -> staged, grouped by (ts, meter key) */
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT r.ts, coalesce((SELECT min(b.id) FROM points a JOIN points b"
                            " ON b.enterprise = a.enterprise AND b.meter = a.meter"
                            " WHERE a.id = r.point), r.point) AS k, r.point, r.value"
                            " FROM samples_recent r ORDER BY 1, 2, 3",
                            -1, &sel, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "INSERT INTO staged(ts, mk, n, data) VALUES (?1, ?2, ?3, ?4)",
                                -1, &add, NULL);
    if (rc != SQLITE_OK)
        goto out;
    int64_t ts0 = 0, mk0 = -1, prev = 0, n = 0;
    s->enc.len = 0;
    for (;;) {
        rc = sqlite3_step(sel);
        bool row = rc == SQLITE_ROW;
        int64_t ts = row ? sqlite3_column_int64(sel, 0) : 0, mk = row ? sqlite3_column_int64(sel, 1) : -1;
        if (n > 0 && (!row || ts != ts0 || mk != mk0)) {
            sqlite3_bind_int64(add, 1, ts0);
            sqlite3_bind_int64(add, 2, mk0);
            sqlite3_bind_int64(add, 3, n);
            sqlite3_bind_blob(add, 4, s->enc.p, (int)s->enc.len, SQLITE_STATIC);
            int rc2 = store_step_done(add);
            if (rc2 != SQLITE_OK) {
                rc = rc2;
                goto out;
            }
            n = 0;
            s->enc.len = 0;
        }
        if (!row)
            break;
        if (n == 0) {
            ts0 = ts;
            mk0 = mk;
            prev = mk;
        }
        double v = sqlite3_column_double(sel, 3);
        if (!isnan(v)) {
            chunk_put(&s->enc, &prev, sqlite3_column_int64(sel, 2), v);
            n++;
        }
    }
    if (rc != SQLITE_DONE)
        goto out;
    rc = sqlite3_exec(s->db, "DROP TABLE samples; DROP TABLE samples_recent;", NULL, NULL, NULL);
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(add);
    s->pn = 0;
    return rc;
}
