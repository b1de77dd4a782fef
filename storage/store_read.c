/*
 * store_read.c - the readers: raw scans and seeks over series and staged in
 * one read transaction, rollup scans with the staged buckets synthesized
 * (storage/rollup.h), a point's latest sample, and the stats for status.
 */
#include "storage/store_private.h"
#include "common/util.h"
#include "storage/chunk.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>

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
    int64_t horizon = INT64_MAX, synth_from = INT64_MAX, to_all = to;
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

int store_latest(struct store *s, uint32_t point, int64_t *ret_ts, double *ret_v)
{
    sqlite3_stmt *st = s->st[STMT_SEEK_STAGED];
    bool own, found = false;
    uint32_t mk;
    int64_t ts = 0;
    double v = 0;
    int rc, k = 0;

    rc = store_meter_key(s, point, &mk);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    bool began = store_read_begin(s);
    /* the meter's staged rows, newest first, then the point's last chunk */
    rc = store_stmt(s, &st, &own);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, mk);
    sqlite3_bind_int64(st, 2, INT64_MAX);
    sqlite3_bind_int64(st, 3, INT64_MIN);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        k = store_row_find(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), mk,
                           point, &v);
        if (k != 0) {
            ts = sqlite3_column_int64(st, 0);
            break;
        }
    }
    store_stmt_done(st, own);
    if (k < 0) {
        rc = SQLITE_CORRUPT;
    } else if (k > 0) {
        found = true;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = store_chunk_prev(s, point, INT64_MAX, &found, &ts, &v);
    }
out:;
    int r = rc != SQLITE_OK && rc != SQLITE_DONE ? store_fail(s, rc) : found ? 0 : -ENOENT;
    store_read_end(s, began);
    if (r == 0) {
        *ret_ts = ts;
        *ret_v = v;
    }
    return r;
}

int store_size(struct store *s, int64_t *ret_bytes)
{
    int64_t pages = 0, page_size = 0;
    int r = store_query_int(s, "PRAGMA page_count", &pages);
    if (r == 0)
        r = store_query_int(s, "PRAGMA page_size", &page_size);
    if (r == 0)
        *ret_bytes = pages * page_size;
    return r;
}

int store_stats(struct store *s, struct store_stats *ret)
{
    int64_t samples = 0, bytes = 0, oldest = 0;
    int r;

    r = store_query_int(s, "SELECT (SELECT coalesce(sum(n), 0) FROM series) + "
                           "(SELECT coalesce(sum(n), 0) FROM staged)", &samples);
    if (r < 0)
        return r;
    r = store_size(s, &bytes);
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
    ret->db_bytes = bytes;
    ret->oldest_ts = oldest;
    return 0;
}
