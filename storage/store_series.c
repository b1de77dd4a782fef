/*
 * store_series.c - the chunked series (table series, storage/chunk.h): a
 * point's samples of one chunk period in one compressed row. Merges samples
 * into their chunk while feeding the rollups (storage/rollup.h) with each
 * sample actually added, gives the rollup maintenance its raw-sample
 * look-ups (struct rollup_io), and rebuilds the rollups.
 */
#include "storage/store_private.h"
#include "common/timeutil.h"
#include "common/util.h"
#include "storage/chunk.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* The start of the chunk period containing ts. */
int64_t store_period(const struct store *s, int64_t ts)
{
    return floor_div(ts, s->period_ms) * s->period_ms;
}

/* Forgets the cached newest ts of every point (another connection wrote,
 * or a move rolled back). */
void store_main_max_forget(struct store *s)
{
    for (size_t i = 0; i < s->main_max_cap; i++)
        s->main_max[i] = STORE_TS_UNKNOWN;
}

/* The newest ts of 'point' in series (STORE_TS_NONE if it has none),
 * uncached. SQLite result code. */
int store_series_newest(struct store *s, uint32_t point, int64_t *ret)
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
int store_main_max(struct store *s, uint32_t point, int64_t *ret)
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

void store_pend_push(struct store *s, size_t pos, int64_t ts, double v)
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
int store_chunk_prev(struct store *s, uint32_t point, int64_t x, bool *ret_found, int64_t *ret_ts,
                     double *ret_v)
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

struct rollup_io store_rollup_io(struct store *s)
{
    return (struct rollup_io){store_io_prev, store_io_next, store_io_scan_all, s};
}

/* Encodes pts/pv (ts order) into s->enc. */
void store_encode_pending(struct store *s)
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
int store_put_group(struct store *s, uint32_t point, const int64_t *ts, const double *v,
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
int store_put_tmp(struct store *s, size_t n)
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
