/*
 * store_stage.c - the write path: store_add_samples stages the daemon's
 * samples (table staged, one row per meter poll, keyed by time) or merges
 * them straight into series; the move takes the staged rows of closed chunk
 * periods into series and the rollups in one bulk transaction.
 */
#include "storage/store_private.h"
#include "common/util.h"
#include "storage/chunk.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* The oldest staged ts, or INT64_MAX when staged is empty. */
int store_staged_oldest(struct store *s, int64_t *ret)
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
    if (rc == SQLITE_OK && s->move_fail_after > 0 && --s->move_fail_after == 0)
        rc = SQLITE_FULL;   /* store_fail_move_for_test */
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
int store_move_txn(struct store *s, int64_t cut, int64_t *ret_moved)
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
int store_move_all(struct store *s)
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
