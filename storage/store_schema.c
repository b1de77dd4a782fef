/*
 * store_schema.c - the schema and its migrations, keyed by PRAGMA
 * user_version: one step per version, run in one IMMEDIATE transaction at a
 * read-write open, with the data conversions of versions 2 (rollups from the
 * samples) and 5 (samples into chunks, samples_recent into staged rows).
 */
#include "storage/store_private.h"
#include "common/util.h"
#include "storage/alarmlog.h"
#include "storage/chunk.h"
#include "storage/closelog.h"
#include "storage/frozenlog.h"
#include "storage/meterlog.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>

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
    /* 2 -> 3: alarm history (storage/alarmlog.h, docs/ALARMS.md): the
     * alarms table, filled by triggers on the outbox from the event
     * messages, so an alarm's row commits in the same transaction as its
     * event. */
    alarmlog_schema_v3,
    /* 3 -> 4: the staging table of the writer's recent samples
     * (docs/decisions/2026-11-29-staging-table.md). Keyed (ts, point), so
     * each commit appends at the
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
    /* 4 -> 5: chunked series (docs/STORAGE.md, "Chunks and their
     * codec"). series holds one compressed chunk (storage/chunk.h) per
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
    /* 5 -> 6: the meter history (storage/meterlog.h): ratio changes and
     * replacements, and from now on the billing counters' samples are dial
     * readings (before PT x CT). Older samples stay as stored, multiplied:
     * meta.dial_since tells readers where the dial readings begin. The
     * summary engine's saved state held a multiplied reading: it goes, and
     * the engine starts again from the stored readings. */
    METERLOG_SCHEMA_V6
    "DELETE FROM meta WHERE key = 'summary_state';",
    /* 6 -> 7: closed billing periods (storage/closelog.h): the statement
     * of a period as printed, and the figures billed per meter, so that a
     * later bill prints it unchanged and the next period adjusts. */
    CLOSELOG_SCHEMA_V7,
    /* 7 -> 8: the marks of the meters' own frozen readings stored after an
     * outage (storage/frozenlog.h), from the frozen_reading events. */
    FROZENLOG_SCHEMA,
};

/* The version whose step creates the rollup tables (built from the samples
 * by store_migrate). */
#define STORE_VERSION_ROLLUPS 2

/* The version whose step creates series/staged (the old tables are
 * converted by store_convert_v4). */
#define STORE_VERSION_SERIES 5

#define STORE_SCHEMA_VERSION ((int)ARRAY_SIZE(store_migrations))

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

int store_schema_open(struct store *s, char *err, size_t errlen)
{
    int version = 0;
    int rc = store_user_version(s->db, &version);
    if (rc != SQLITE_OK) {
        store_seterr(err, errlen, "%s: cannot open database: %s", s->path, sqlite3_errmsg(s->db));
        return store_errno(rc);
    }
    if (version > STORE_SCHEMA_VERSION) {
        store_seterr(err, errlen,
                     "%s: database schema version %d is newer than this parkgw supports (%d)",
                     s->path, version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    if (version == STORE_SCHEMA_VERSION)
        return 0;
    if (s->readonly) {
        store_seterr(err, errlen,
                     "%s: database schema version %d is older than this parkgw's (%d); "
                     "run the daemon (parkgw run) once to migrate it",
                     s->path, version, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    return store_migrate(s, err, errlen);
}

int store_schema_version(void)
{
    return STORE_SCHEMA_VERSION;
}
