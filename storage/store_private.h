/*
 * store_private.h - what the store's files share (storage/store.c and its
 * siblings store_*.c): struct store, the statement table's indices, the
 * limits of the move and of retention, and the functions one file calls in
 * another. Not for use outside storage/store*.c.
 */
#pragma once
#include "storage/rollup.h"
#include "storage/store.h"
#include "storage/chunk.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* A store handle (store.h); one thread at a time. */
struct store {
    sqlite3 *db;
    char *path;
    bool readonly;
    dev_t file_dev;              /* the database file SQLite opened (store_check_file) */
    ino_t file_ino;
    dev_t wal_dev, shm_dev;      /* its -wal and -shm files, once seen (0: not yet) */
    ino_t wal_ino, shm_ino;
    sqlite3_stmt *st[STMT__COUNT];   /* store_stmt_sql */
    struct rollup *rollup;       /* NULL on a read-only handle */
    bool rollups_off;            /* store_set_rollups_for_bench */
    int move_fail_after;         /* store_fail_move_for_test: meters left (0: off) */
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

/* main_max values: not looked up yet; the point has no sample in series. */
#define STORE_TS_UNKNOWN INT64_MIN
#define STORE_TS_NONE (INT64_MIN + 1)

/* Chunk period: default and bounds of PARKGW_STORE_PERIOD_MS. */
#define STORE_PERIOD_DEFAULT_MS 900000
#define STORE_PERIOD_MIN_MS 1000
#define STORE_PERIOD_MAX_MS 86400000

/* ---- store.c ---- */

/* SQLite result code (extended or primary) to -ENOSPC, -EBUSY or -EIO. */
int store_errno(int rc);
/* Records SQLite's message for rc in s->errmsg (a later ROLLBACK would
 * replace it) and returns store_errno(rc). */
int store_fail(struct store *s, int rc);
/* snprintf into err (may be NULL) for store_open's callers. */
void store_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Steps a statement that returns no rows and resets it: SQLITE_OK or the
 * step's result code. */
int store_step_done(sqlite3_stmt *st);
/* Runs a one-row, one-integer-column query (0 when it returns no row).
 * 0 or -errno. */
int store_query_int(struct store *s, const char *sql, int64_t *ret);

/* ---- store_schema.c ---- */

/* At open, before the statements are prepared: checks the database's
 * schema version and (read-write) migrates it. 0, or -EPROTO (newer, or
 * older and readonly), -ENOSPC, -EBUSY, -EIO with the message in err. */
int store_schema_open(struct store *s, char *err, size_t errlen);

/* ---- store_points.c ---- */

/* A point's meter key: the smallest point id of its (enterprise, meter), or
 * the point itself if it is not registered (cached). SQLite result code. */
int store_meter_key(struct store *s, uint32_t point, uint32_t *ret);

/* ---- store_series.c ---- */

/* The start of the chunk period containing ts. */
int64_t store_period(const struct store *s, int64_t ts);
/* Forgets the cached newest ts of every point (another connection wrote,
 * or a transaction rolled back). */
void store_main_max_forget(struct store *s);
/* The newest ts of 'point' in series (STORE_TS_NONE: none), uncached;
 * SQLite result code. store_main_max: the same through the cache, 0 or
 * -errno. */
int store_series_newest(struct store *s, uint32_t point, int64_t *ret);
int store_main_max(struct store *s, uint32_t point, int64_t *ret);
/* The latest sample of 'point' in series before x (*ret_found false: none).
 * SQLite result code. */
int store_chunk_prev(struct store *s, uint32_t point, int64_t x, bool *ret_found, int64_t *ret_ts,
                     double *ret_v);
/* The pending samples (s->pts/pv, ts order): insert one at pos; encode
 * them all into s->enc. */
void store_pend_push(struct store *s, size_t pos, int64_t ts, double v);
void store_encode_pending(struct store *s);
/* The raw-sample look-ups the rollup maintenance runs on (rollup_new). */
struct rollup_io store_rollup_io(struct store *s);
/* Inside a write transaction: merges n samples of one point and one chunk
 * period (ts ascending, distinct) into its chunk, feeding the rollups;
 * store_put_tmp does it for s->tmp[0..n) in any order. SQLite result code. */
int store_put_group(struct store *s, uint32_t point, const int64_t *ts, const double *v, size_t n,
                    int64_t *ret_added);
int store_put_tmp(struct store *s, size_t n);

/* ---- store_stage.c ---- */

/* The oldest staged ts, INT64_MAX when staged is empty. 0 or -errno. */
int store_staged_oldest(struct store *s, int64_t *ret);
/* Moves the staged rows older than cut (a bounded number) in a transaction
 * of their own; store_move_all: everything staged, inside the caller's
 * transaction. 0 or -errno. */
int store_move_txn(struct store *s, int64_t cut, int64_t *ret_moved);
int store_move_all(struct store *s);
