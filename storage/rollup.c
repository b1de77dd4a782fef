/*
 * rollup.c - the 15m/1h/1d rollup tables behind rollup.h: local-time bucket
 * arithmetic, incremental maintenance (per-point runs aggregated in memory,
 * one upsert per bucket and level, pair flags for the billing shortcut),
 * the rebuild used by the schema migration, the reader of the stored rows and
 * the synthesis of rows from raw samples. It sits below the store: the store
 * calls it inside its write transactions and for store_rollup_scan, and gives
 * it raw samples through struct rollup_io; it never calls the store.
 */
#include "storage/rollup.h"
#include "common/timeparse.h"
#include "common/timeutil.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_15M 900000LL
#define MS_1H 3600000LL
#define MS_DAY 86400000LL
#define MS_PER_HOUR 3600000.0

static const char *const rollup_tables[ROLLUP__COUNT] = {"rollup_15m", "rollup_1h", "rollup_1d"};
static const char *const rollup_names[ROLLUP__COUNT] = {"15m", "1h", "1d"};

struct rollup_acc {
    bool used;
    struct rollup_row row;
};

struct rollup {
    sqlite3 *db;
    struct rollup_io io;     /* raw sample look-ups (store.c) */
    sqlite3_stmt *st_upsert[ROLLUP__COUNT];
    sqlite3_stmt *st_flag[ROLLUP__COUNT];
    /* The current run: samples of one point in increasing ts, none of them
     * followed by an older stored sample. */
    bool run;
    uint32_t point;
    int64_t last_ts;
    double last_v;
    struct rollup_acc acc[ROLLUP__COUNT];
    bool rebuilding;         /* samples come in (point, ts) order from the table itself */
    /* Local day cache: [day0, day1) and, when the UTC offset is the same all
     * day, that offset (the 15m/1h buckets then need no localtime call). */
    int64_t day0, day1, day_off_ms;
    bool day_fixed;
};

static int64_t step_ms(enum rollup_level l)
{
    return l == ROLLUP_15M ? MS_15M : l == ROLLUP_1H ? MS_1H : MS_DAY;
}

int64_t rollup_floor(int64_t ts, enum rollup_level l)
{
    if (l == ROLLUP_1D)
        return timeparse_midnight(ts);
    int64_t off = timeparse_offset_ms(ts), step = step_ms(l);
    return floor_div(ts + off, step) * step - off;
}

int64_t rollup_next(int64_t bucket, enum rollup_level l)
{
    if (l == ROLLUP_1D)
        return timeparse_next_midnight(bucket);
    int64_t n = rollup_floor(bucket + step_ms(l), l);
    return n > bucket ? n : bucket + step_ms(l);
}

int64_t rollup_ceil(int64_t ts, enum rollup_level l)
{
    int64_t b = rollup_floor(ts, l);
    return b == ts ? ts : rollup_next(b, l);
}

int rollup_level_of_step(int step_s)
{
    switch (step_s) {
    case 900:
        return ROLLUP_15M;
    case 3600:
        return ROLLUP_1H;
    case 86400:
        return ROLLUP_1D;
    default:
        return -1;
    }
}

const char *rollup_level_name(enum rollup_level l)
{
    return (unsigned)l < ROLLUP__COUNT ? rollup_names[l] : "?";
}

/* The three buckets of ts, through the day cache. */
static void rollup_buckets(struct rollup *r, int64_t ts, int64_t ret[ROLLUP__COUNT])
{
    if (!(ts >= r->day0 && ts < r->day1)) {
        r->day0 = timeparse_midnight(ts);
        r->day1 = timeparse_next_midnight(r->day0);
        r->day_off_ms = timeparse_offset_ms(r->day0);
        r->day_fixed = timeparse_offset_ms(r->day1 - 1) == r->day_off_ms;
    }
    ret[ROLLUP_1D] = r->day0;
    if (r->day_fixed) {
        ret[ROLLUP_15M] = floor_div(ts + r->day_off_ms, MS_15M) * MS_15M - r->day_off_ms;
        ret[ROLLUP_1H] = floor_div(ts + r->day_off_ms, MS_1H) * MS_1H - r->day_off_ms;
    } else {
        ret[ROLLUP_15M] = rollup_floor(ts, ROLLUP_15M);
        ret[ROLLUP_1H] = rollup_floor(ts, ROLLUP_1H);
    }
}

int rollup_new(sqlite3 *db, const struct rollup_io *io, struct rollup **ret)
{
    struct rollup *r = xcalloc(1, sizeof(*r));
    char *sql;
    int rc;

    r->db = db;
    r->io = *io;
    for (int l = 0; l < ROLLUP__COUNT; l++) {
        /* In an upsert's SET every expression sees the old row, so the
         * order of the assignments does not matter. */
        sql = xasprintf(
            "INSERT INTO %s(point, bucket, n, first_ts, first_v, last_ts, last_v, vmin, vmax, "
            "vsum, anomalies, max_rise, max_gap) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
            "ON CONFLICT(point, bucket) DO UPDATE SET n = n + excluded.n, "
            "first_v = CASE WHEN excluded.first_ts < first_ts THEN excluded.first_v "
            "ELSE first_v END, "
            "first_ts = min(first_ts, excluded.first_ts), "
            "last_v = CASE WHEN excluded.last_ts > last_ts THEN excluded.last_v "
            "ELSE last_v END, "
            "last_ts = max(last_ts, excluded.last_ts), "
            "vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax), "
            "vsum = vsum + excluded.vsum, anomalies = anomalies + excluded.anomalies, "
            "max_rise = max(max_rise, excluded.max_rise), "
            "max_gap = max(max_gap, excluded.max_gap)",
            rollup_tables[l]);
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->st_upsert[l], NULL);
        free(sql);
        if (rc != SQLITE_OK)
            goto out_free;
        sql = xasprintf("UPDATE %s SET anomalies = anomalies + ?3, max_rise = max(max_rise, ?4) "
                        "WHERE point = ?1 AND bucket = ?2",
                        rollup_tables[l]);
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->st_flag[l], NULL);
        free(sql);
        if (rc != SQLITE_OK)
            goto out_free;
    }
    *ret = r;
    return SQLITE_OK;

out_free:
    rollup_free(r);
    return rc;
}

void rollup_free(struct rollup *r)
{
    if (!r)
        return;
    for (int l = 0; l < ROLLUP__COUNT; l++) {
        sqlite3_finalize(r->st_upsert[l]);
        sqlite3_finalize(r->st_flag[l]);
    }
    free(r);
}

void rollup_reset(struct rollup *r)
{
    if (!r)
        return;
    r->run = false;
    for (int l = 0; l < ROLLUP__COUNT; l++)
        r->acc[l].used = false;
}

static int write_row(struct rollup *r, int l, uint32_t point, const struct rollup_row *w)
{
    sqlite3_stmt *st = r->st_upsert[l];
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, w->bucket);
    sqlite3_bind_int64(st, 3, w->n);
    sqlite3_bind_int64(st, 4, w->first_ts);
    sqlite3_bind_double(st, 5, w->first_v);
    sqlite3_bind_int64(st, 6, w->last_ts);
    sqlite3_bind_double(st, 7, w->last_v);
    sqlite3_bind_double(st, 8, w->min);
    sqlite3_bind_double(st, 9, w->max);
    sqlite3_bind_double(st, 10, w->sum);
    sqlite3_bind_int64(st, 11, w->anomalies);
    sqlite3_bind_double(st, 12, w->max_rise);
    sqlite3_bind_int64(st, 13, w->max_gap);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Adds flags to a stored bucket (a pair leaving it, an out-of-order insert). */
static int flag_row(struct rollup *r, int l, uint32_t point, int64_t bucket, int64_t anomalies,
                    double rise)
{
    sqlite3_stmt *st = r->st_flag[l];
    sqlite3_bind_int64(st, 1, point);
    sqlite3_bind_int64(st, 2, bucket);
    sqlite3_bind_int64(st, 3, anomalies);
    sqlite3_bind_double(st, 4, rise);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int rollup_flush(struct rollup *r)
{
    int rc = SQLITE_OK;
    for (int l = 0; l < ROLLUP__COUNT && rc == SQLITE_OK; l++) {
        if (r->acc[l].used)
            rc = write_row(r, l, r->point, &r->acc[l].row);
        r->acc[l].used = false;
    }
    /* Between calls another connection may insert (an import): the next
     * call looks its neighbours up again. */
    r->run = false;
    return rc;
}

static void row_init(struct rollup_row *w, int64_t bucket, int64_t ts, double v)
{
    *w = (struct rollup_row){
        .bucket = bucket, .first_ts = ts, .first_v = v, .last_ts = ts, .last_v = v,
        .min = v, .max = v,
    };
}

static void row_sample(struct rollup_row *w, int64_t ts, double v)
{
    w->n++;
    w->sum += v;
    if (v < w->min)
        w->min = v;
    if (v > w->max)
        w->max = v;
    if (ts < w->first_ts) {
        w->first_ts = ts;
        w->first_v = v;
    }
    if (ts >= w->last_ts) {
        w->last_ts = ts;
        w->last_v = v;
    }
}

static double pair_rise(int64_t dt, double dv)
{
    return dv > 0 && dt > 0 ? dv * MS_PER_HOUR / (double)dt : 0.0;
}

/* The pair (prev -> cur) as seen from a bucket: entering it (gap counts) or
 * leaving it. */
static void row_pair(struct rollup_row *w, int64_t dt, double dv, bool entering)
{
    if (dv < 0)
        w->anomalies++;
    double rise = pair_rise(dt, dv);
    if (rise > w->max_rise)
        w->max_rise = rise;
    if (entering && dt > w->max_gap)
        w->max_gap = dt;
}

/*
 * A sample older than a stored one of its point: the pairs around it changed
 * after their buckets were summarised. Its buckets and those of both
 * neighbours are marked anomalous, so billing reads them raw.
 */
static int add_out_of_order(struct rollup *r, uint32_t point, int64_t ts, double v, bool has_prev,
                            int64_t prev_ts, int64_t next_ts)
{
    for (int l = 0; l < ROLLUP__COUNT; l++) {
        struct rollup_row w;
        int64_t b = rollup_floor(ts, (enum rollup_level)l);
        row_init(&w, b, ts, v);
        row_sample(&w, ts, v);
        w.anomalies = 1;
        if (has_prev)
            w.max_gap = ts - prev_ts;
        int rc = write_row(r, l, point, &w);
        if (rc == SQLITE_OK && has_prev) {
            int64_t pb = rollup_floor(prev_ts, (enum rollup_level)l);
            if (pb != b)
                rc = flag_row(r, l, point, pb, 1, 0);
        }
        if (rc == SQLITE_OK) {
            int64_t nb = rollup_floor(next_ts, (enum rollup_level)l);
            if (nb != b)
                rc = flag_row(r, l, point, nb, 1, 0);
        }
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

int rollup_add(struct rollup *r, uint32_t point, int64_t ts, double v)
{
    bool has_prev = false, has_next = false;
    int64_t prev_ts = 0, next_ts = 0;
    double prev_v = 0, next_v;
    int rc;

    if (r->run && point == r->point && ts > r->last_ts) {
        has_prev = true;
        prev_ts = r->last_ts;
        prev_v = r->last_v;
    } else {
        rc = rollup_flush(r);
        if (rc != SQLITE_OK)
            return rc;
        if (!r->rebuilding) {
            rc = r->io.prev(r->io.ud, point, ts, &has_prev, &prev_ts, &prev_v);
            if (rc == SQLITE_OK)
                rc = r->io.next(r->io.ud, point, ts, &has_next, &next_ts, &next_v);
            if (rc != SQLITE_OK)
                return rc;
            if (has_next)
                return add_out_of_order(r, point, ts, v, has_prev, prev_ts, next_ts);
        }
    }
    r->run = true;
    r->point = point;
    r->last_ts = ts;
    r->last_v = v;

    int64_t b[ROLLUP__COUNT], pb[ROLLUP__COUNT];
    if (has_prev)
        rollup_buckets(r, prev_ts, pb);
    rollup_buckets(r, ts, b);
    for (int l = 0; l < ROLLUP__COUNT; l++) {
        struct rollup_acc *a = &r->acc[l];
        int64_t dt = ts - prev_ts;
        double dv = v - prev_v;
        if (has_prev && pb[l] != b[l]) {
            /* The pair leaves the previous reading's bucket: that bucket
             * carries its drop/rise too (a bad read at a bucket's edge must
             * keep the bucket out of the shortcut). */
            if (a->used && a->row.bucket == pb[l]) {
                row_pair(&a->row, dt, dv, false);
            } else if (dv != 0) {
                rc = flag_row(r, l, point, pb[l], dv < 0 ? 1 : 0, pair_rise(dt, dv));
                if (rc != SQLITE_OK)
                    return rc;
            }
        }
        if (a->used && a->row.bucket != b[l]) {
            rc = write_row(r, l, point, &a->row);
            if (rc != SQLITE_OK)
                return rc;
            a->used = false;
        }
        if (!a->used) {
            row_init(&a->row, b[l], ts, v);
            a->used = true;
        }
        row_sample(&a->row, ts, v);
        if (has_prev)
            row_pair(&a->row, dt, dv, true);
    }
    return SQLITE_OK;
}

int rollup_rebuild(struct rollup *r)
{
    int rc;

    for (int l = 0; l < ROLLUP__COUNT; l++) {
        char *sql = xasprintf("DELETE FROM %s", rollup_tables[l]);
        rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
        free(sql);
        if (rc != SQLITE_OK)
            return rc;
    }
    rollup_reset(r);
    r->rebuilding = true;
    rc = r->io.scan_all(r->io.ud, rollup_add, r);
    if (rc == SQLITE_OK)
        rc = rollup_flush(r);
    r->rebuilding = false;
    if (rc != SQLITE_OK)
        rollup_reset(r);
    return rc;
}

void rollup_synth_init(struct rollup_synth *y, enum rollup_level l, int64_t start, int64_t to)
{
    *y = (struct rollup_synth){.l = l, .start = start, .to = to};
}

static void synth_emit(struct rollup_synth *y)
{
    y->rows = xgrow(y->rows, &y->cap, y->n + 1, sizeof(*y->rows));
    y->rows[y->n++] = y->cur;
    y->cur_used = false;
}

int rollup_synth_sample(void *ud, int64_t ts, double v)
{
    struct rollup_synth *y = ud;
    if (ts < y->start) {
        /* the reading before the first bucket: only its pair entering */
        y->has_prev = true;
        y->prev_ts = ts;
        y->prev_v = v;
        return 0;
    }
    if (y->cur_used && ts >= y->cur_end) {
        /* the pair leaving cur's bucket */
        row_pair(&y->cur, ts - y->prev_ts, v - y->prev_v, false);
        synth_emit(y);
    }
    if (!y->cur_used) {
        int64_t b = rollup_floor(ts, y->l);
        if (b >= y->to)
            return 1;
        row_init(&y->cur, b, ts, v);
        y->cur_end = rollup_next(b, y->l);
        y->cur_used = true;
    }
    row_sample(&y->cur, ts, v);
    if (y->has_prev)
        row_pair(&y->cur, ts - y->prev_ts, v - y->prev_v, true);
    y->has_prev = true;
    y->prev_ts = ts;
    y->prev_v = v;
    return 0;
}

void rollup_synth_finish(struct rollup_synth *y, int (*cb)(void *ud, const struct rollup_row *row),
                         void *ud)
{
    if (y->cur_used)
        synth_emit(y);
    for (size_t i = 0; i < y->n; i++)
        if (cb(ud, &y->rows[i]) != 0)
            break;
    rollup_synth_free(y);
}

void rollup_synth_free(struct rollup_synth *y)
{
    free(y->rows);
    y->rows = NULL;
    y->n = y->cap = 0;
}

int rollup_read(sqlite3 *db, uint32_t point, enum rollup_level l, int64_t from, int64_t to,
                int (*cb)(void *ud, const struct rollup_row *row), void *ud, bool *ret_stopped)
{
    sqlite3_stmt *q;
    int rc;

    *ret_stopped = false;
    if ((unsigned)l >= ROLLUP__COUNT)
        return SQLITE_MISUSE;
    char *sql = xasprintf("SELECT bucket, n, first_ts, first_v, last_ts, last_v, vmin, vmax, vsum, "
                          "anomalies, max_rise, max_gap FROM %s "
                          "WHERE point = ?1 AND bucket >= ?2 AND bucket < ?3 ORDER BY bucket",
                          rollup_tables[l]);
    rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_int64(q, 1, point);
    sqlite3_bind_int64(q, 2, from);
    sqlite3_bind_int64(q, 3, to);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct rollup_row w = {
            .bucket = sqlite3_column_int64(q, 0),
            .n = sqlite3_column_int64(q, 1),
            .first_ts = sqlite3_column_int64(q, 2),
            .first_v = sqlite3_column_double(q, 3),
            .last_ts = sqlite3_column_int64(q, 4),
            .last_v = sqlite3_column_double(q, 5),
            .min = sqlite3_column_double(q, 6),
            .max = sqlite3_column_double(q, 7),
            .sum = sqlite3_column_double(q, 8),
            .anomalies = sqlite3_column_int64(q, 9),
            .max_rise = sqlite3_column_double(q, 10),
            .max_gap = sqlite3_column_int64(q, 11),
        };
        if (cb(ud, &w) != 0) {
            rc = SQLITE_DONE;
            *ret_stopped = true;
            break;
        }
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
