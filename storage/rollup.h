/*
 * rollup.h - 15-minute, hourly and daily summaries of every point's raw
 * samples, kept by store.c in the same transaction as the samples (schema
 * version 2). Buckets are aligned to the process's local time (TZ, set from
 * cfg->timezone before the store is opened); a bucket is keyed by the UTC ms
 * of its local start. Readers (bill, query) scan rows through rollup_scan.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
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

/*
 * Calls cb for each bucket row of 'point' at level l with from <= bucket <
 * to, in bucket order; cb returning non-zero stops the scan. cb may call
 * store_scan (nested reads are fine). 0 or -EIO (store_errmsg has the text).
 */
int rollup_scan(struct store *st, uint32_t point, enum rollup_level l, int64_t from, int64_t to,
                int (*cb)(void *ud, const struct rollup_row *row), void *ud);

/* ---- maintenance, used by store.c only ---- */

struct rollup;

/*
 * Raw sample access the maintenance needs, provided by store.c (the raw
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
 * transaction (the migration to version 2). SQLite result code. */
int rollup_rebuild(struct rollup *r);
