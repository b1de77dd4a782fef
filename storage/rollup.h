/*
 * rollup.h - 15-minute, hourly and daily summaries of every point's raw
 * samples (tables rollup_15m, rollup_1h, rollup_1d), kept by the store in
 * the transaction that writes the samples into their chunks (for staged
 * samples: the move, storage/store.h). Buckets are aligned to the process's
 * local time (TZ, set from cfg->timezone before the store is opened); a
 * bucket is keyed by the UTC ms of its local start.
 * This module sits below the store and never calls it: readers (bill,
 * query) scan rows through store_rollup_scan (storage/store.h), which adds
 * the buckets of samples still staged from the raw samples.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

enum rollup_level { ROLLUP_15M, ROLLUP_1H, ROLLUP_1D, ROLLUP__COUNT };

/*
 * One bucket of one point. Counters use first/last (the bucket's earliest
 * and latest raw readings: a subset of the raw series) and the pair flags;
 * gauges use n/min/max/sum. Pair flags cover every pair of consecutive raw
 * readings that has a reading in the bucket, including the pair entering
 * from the previous reading and the pair leaving to the next one:
 *   anomalies: drops (value < previous: a wrap, reset or bad read) plus
 *              readings inserted out of order (an import into the past);
 *   max_rise:  the steepest increase, in units per hour (0 if none);
 *   max_gap:   the longest interval ending in the bucket, ms.
 * A bucket with no anomaly, max_rise within the meter's max_rate and max_gap
 * within the gap threshold can be replaced by its first and last readings
 * in the billing arithmetic without changing the result.
 */
struct rollup_row {
    int64_t bucket;          /* UTC ms of the local bucket start */
    int64_t n;
    int64_t first_ts, last_ts;
    double first_v, last_v;
    double min, max, sum;
    int64_t anomalies;
    double max_rise;
    int64_t max_gap;
};

/* The bucket containing ts (local-time aligned; 1d starts at local midnight,
 * so a DST day is 23 or 25 h). */
int64_t rollup_floor(int64_t ts, enum rollup_level l);
/* The start of the bucket after the one starting at 'bucket'. */
int64_t rollup_next(int64_t bucket, enum rollup_level l);
/* ts itself when it is a bucket start, else the next bucket start. */
int64_t rollup_ceil(int64_t ts, enum rollup_level l);
/* The level of a query step in seconds (900, 3600, 86400), or -1. */
int rollup_level_of_step(int step_s);
/* "15m", "1h", "1d". */
const char *rollup_level_name(enum rollup_level l);

/* ---- reading, for store_rollup_scan ---- */

/*
 * Calls cb for each stored row of 'point' at level l with from <= bucket <
 * to, in bucket order, on db; cb returning non-zero stops the scan
 * (*ret_stopped). An SQLite result code.
 */
int rollup_read(sqlite3 *db, uint32_t point, enum rollup_level l, int64_t from, int64_t to,
                int (*cb)(void *ud, const struct rollup_row *row), void *ud, bool *ret_stopped);

/*
 * Rows computed from raw samples, as rollup_add would have stored them
 * (every pair in ts order), for the buckets past the stored rows: init with
 * the buckets start <= bucket < to, feed the samples from the last one
 * before start on in ts order through rollup_synth_sample (the shape of a
 * store_scan callback; it returns 1 once past 'to'), then
 * rollup_synth_finish calls cb on each row and frees them
 * (rollup_synth_free frees without calling). Fields are private.
 */
struct rollup_synth {
    enum rollup_level l;
    int64_t start, to;
    bool has_prev, cur_used;
    int64_t prev_ts;
    double prev_v;
    int64_t cur_end;
    struct rollup_row cur;
    struct rollup_row *rows;
    size_t n, cap;
};
void rollup_synth_init(struct rollup_synth *y, enum rollup_level l, int64_t start, int64_t to);
int rollup_synth_sample(void *ud, int64_t ts, double v);
void rollup_synth_finish(struct rollup_synth *y, int (*cb)(void *ud, const struct rollup_row *row),
                         void *ud);
void rollup_synth_free(struct rollup_synth *y);

/* ---- maintenance, used by the store only ---- */

struct rollup;

/*
 * Raw sample access the maintenance needs, provided by the store (the raw
 * samples are compressed chunks, storage/chunk.h): prev/next give the
 * latest sample of 'point' before ts / the earliest after ts as the open
 * transaction sees them (found false if none); scan_all calls add for every
 * raw sample in (point, ts) order (the rebuild). Each returns an SQLite
 * result code.
 */
struct rollup_io {
    int (*prev)(void *ud, uint32_t point, int64_t ts, bool *ret_found, int64_t *ret_ts,
                double *ret_v);
    int (*next)(void *ud, uint32_t point, int64_t ts, bool *ret_found, int64_t *ret_ts,
                double *ret_v);
    int (*scan_all)(void *ud, int (*add)(struct rollup *r, uint32_t point, int64_t ts, double v),
                    struct rollup *r);
    void *ud;
};

/* Prepares the statements on db (schema version >= 2). 0 and *ret, or an
 * SQLite result code. */
int rollup_new(sqlite3 *db, const struct rollup_io *io, struct rollup **ret);
void rollup_free(struct rollup *r);

/*
 * Accounts one raw sample that was just inserted (not a duplicate) in the
 * open transaction. Consecutive calls for the same point in increasing ts
 * are aggregated in memory; rollup_flush writes them. Any order is correct;
 * per-point runs in ts order are the fast path. Returns an SQLite result
 * code (SQLITE_OK on success); after a failure the caller rolls back and
 * calls rollup_reset.
 */
int rollup_add(struct rollup *r, uint32_t point, int64_t ts, double value);
/* Writes what rollup_add aggregated. SQLite result code. */
int rollup_flush(struct rollup *r);
/* Drops the in-memory aggregation (after a rollback). */
void rollup_reset(struct rollup *r);

/* Rebuilds every rollup table from the raw samples, inside the caller's
 * transaction (the migration to version 2, store_rebuild_rollups). SQLite
 * result code. */
int rollup_rebuild(struct rollup *r);
