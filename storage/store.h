/*
 * store.h - the SQLite store: one database file with the point registry,
 * the raw samples (compressed per-point chunks, and the staged rows of the
 * writer's recent polls), their rollups (storage/rollup.h), the outbox
 * (storage/outbox.h), the alarm history (storage/alarmlog.h) and the meta
 * state; schema migrations keyed by PRAGMA user_version; raw retention.
 * WAL mode, synchronous=NORMAL (docs/STORAGE.md).
 * A store handle is used by one thread at a time (the writer thread while
 * the daemon runs; the CLI commands otherwise).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"
#include "storage/rollup.h"

struct store;

struct sample {
    uint32_t point;   /* id from store_point_id */
    int64_t ts;       /* Unix ms UTC */
    double value;
};

/* Opens (creating and migrating) the database. 0 and *ret, or -errno/-EIO
 * with a message in err. readonly: no schema changes, for CLI reads.
 * Errors: -ENOENT (readonly, no such file), -EPROTO (schema version newer
 * than this build, or older and readonly), -ENOSPC, -EBUSY, -EIO. */
int store_open(const char *path, bool readonly, struct store **ret, char *err, size_t errlen);
void store_close(struct store *s);

/* The schema version (PRAGMA user_version) this build creates and reads. */
int store_schema_version(void);

/* Gets or creates the id of ENTERPRISE/METER/POINT. 0 and *ret_id, or -EIO. */
int store_point_id(struct store *s, const char *enterprise, const char *meter, const char *point,
                   enum utility utility, enum point_kind kind, uint32_t *ret_id);

/* Inserts samples in one transaction (duplicates of (point, ts) are
 * ignored, so are NaN values, which SQLite cannot store). 0, -ENOSPC (disk
 * full), -EBUSY (write lock held by another process past the busy timeout),
 * -EIO. Nothing is half-written. */
int store_insert(struct store *s, const struct sample *samples, size_t n);

/*
 * The same in steps, for callers that add rows of their own (the outbox) to
 * a batch: store_begin (BEGIN IMMEDIATE), store_add_samples (samples and,
 * where maintained, their rollups), store_commit (on failure it rolls back).
 * Each returns 0, -ENOSPC, -EBUSY or -EIO; after an error call
 * store_rollback. store_db gives the connection for such rows.
 */
int store_begin(struct store *s);
int store_add_samples(struct store *s, const struct sample *samples, size_t n);
int store_commit(struct store *s);
void store_rollback(struct store *s);
typedef struct sqlite3 sqlite3;
sqlite3 *store_db(struct store *s);

/*
 * Raw samples live in compressed per-point chunks (table series, one chunk
 * per point and chunk period; docs/STORAGE.md "Chunks and their codec").
 * Staging (the writer's write path): while on, store_add_samples appends
 * the samples newer than every stored sample of their point to the staged
 * table, one row per (ts, meter) (keyed by time: a commit writes a few pages
 * at the b-tree's right edge), and leaves their rollups for later;
 * store_maintain moves the staged rows of closed chunk periods into series,
 * with their rollups, in one bulk transaction. Every reader (store_scan,
 * store_seek_back, store_rollup_scan, store_stats) sees both tables. Off (the
 * default): samples and rollups are written at once, and staged rows left
 * by a writer are moved first. store_open (read-write) and store_close (of
 * a staging handle) move what is staged. */
void store_set_staging(struct store *s, bool on);

/* Moves every staged sample into series (and the rollups) now, in bounded
 * transactions. 0, -EROFS, -ENOSPC, -EBUSY, -EIO. */
int store_flush_staged(struct store *s);

/* Calls cb for each raw sample of 'point' with from <= ts < to, in ts order.
 * cb returning non-zero stops the scan. 0 or -EIO. */
int store_scan(struct store *s, uint32_t point, int64_t from, int64_t to,
               int (*cb)(void *ud, int64_t ts, double value), void *ud);

/*
 * Calls cb for each rollup row (storage/rollup.h) of 'point' at level l with
 * from <= bucket < to, in bucket order; cb returning non-zero stops the
 * scan. Buckets holding staged samples (not yet in the rollup tables) are
 * computed from the raw samples. cb may call store_scan (nested reads are
 * fine). 0, -EINVAL (no such level) or -EIO (store_errmsg has the text).
 */
int store_rollup_scan(struct store *s, uint32_t point, enum rollup_level l, int64_t from,
                      int64_t to, int (*cb)(void *ud, const struct rollup_row *row), void *ud);

/* The timestamp of the k-th (1 = latest) sample of 'point' before ts and not
 * before floor_ts: where a reader must start to have k readings of context.
 * 0 and *ret_ts, -ENOENT (fewer than k: start at floor_ts), -EIO. */
int store_seek_back(struct store *s, uint32_t point, int64_t ts, int64_t floor_ts, int k,
                    int64_t *ret_ts);

/* The latest sample of 'point' (staged or in series), however old.
 * 0 and *ret_ts, *ret_v; -ENOENT (none) or -EIO. */
int store_latest(struct store *s, uint32_t point, int64_t *ret_ts, double *ret_v);

/* The summary engine's state (engine/summary.h), in table meta: the start
 * of the oldest interval not yet published. store_summary_next_from: 0 and
 * *ret (0 when never saved) or -EIO. store_summary_set_next_from: inside
 * the caller's write transaction; 0, -ENOSPC, -EBUSY or -EIO. */
int store_summary_next_from(struct store *s, int64_t *ret);
int store_summary_set_next_from(struct store *s, int64_t from);

/* The summary engine's saved state (an opaque blob it encodes itself), in
 * table meta. store_summary_state: 0 and a malloc'd copy in *ret (*ret_len
 * bytes), -ENOENT when none was saved, or -EIO. store_summary_set_state:
 * inside the caller's write transaction; 0 or -ENOSPC/-EBUSY/-EIO. */
int store_summary_state(struct store *s, void **ret, size_t *ret_len);
int store_summary_set_state(struct store *s, const void *blob, size_t len);

/* Looks up a point id without creating it: 0, -ENOENT, -EIO. */
int store_find_point(struct store *s, const char *enterprise, const char *meter, const char *point,
                     uint32_t *ret_id);

/* Counts and sizes for status/benchmarks. */
struct store_stats {
    int64_t samples;
    int64_t db_bytes;      /* page_count * page_size */
    int64_t oldest_ts;     /* 0 when empty */
};
int store_stats(struct store *s, struct store_stats *ret);
/* The database's size (page_count * page_size) without counting samples:
 * 0 and *ret_bytes, or -EIO. */
int store_size(struct store *s, int64_t *ret_bytes);

/*
 * Whether s's path still names the database file s has open (compared by
 * device and inode). 0 yes; -ENOENT the path is gone (unlinked, or renamed
 * away); -ESTALE it names another file (one was renamed over it); another
 * -errno when stat(2) fails. A file overwritten in place keeps its inode and
 * is not noticed. Cheap (a stat or three): the writer calls it before each
 * commit. store_close of a handle whose file is gone removes the -wal and
 * -shm files it left at the path (when they are still the ones it saw).
 */
int store_check_file(struct store *s);

/* The path s was opened with (owned by s), for log lines. */
const char *store_path(const struct store *s);

/* SQLite's message for the last failed call on s (owned by s, "" if none),
 * for the caller's log line. */
const char *store_errmsg(const struct store *s);

/*
 * Raw retention: samples older than 'days' days (0 = keep forever, the
 * default) are deleted by store_maintain, whole chunks at a time (a chunk
 * goes when its newest sample is older); rollups are kept. */
void store_set_retention(struct store *s, int days);

/*
 * Housekeeping between write transactions (never inside one): when due, the
 * move of the staged rows of closed chunk periods, else one retention batch
 * of whole chunks, about STORE_RETENTION_BATCH samples, in its own short
 * transaction, so ingest never waits long for it. Cheap when nothing is due
 * (a clock check). Returns the samples deleted by retention (0: none, not
 * due, or a move ran) or -ENOSPC, -EBUSY, -EIO.
 */
#define STORE_RETENTION_BATCH 5000
int store_maintain(struct store *s, int64_t now_ms);

/* Recomputes every rollup from the raw samples in one transaction (after a
 * change of gateway.timezone; raw samples already deleted by retention are
 * lost from the rebuilt rollups). 0, -EROFS (read-only handle), -ENOSPC,
 * -EBUSY, -EIO. */
int store_rebuild_rollups(struct store *s);

/* Bench hook: stops (false) or resumes rollup maintenance on this handle, to
 * measure what it costs. Samples added meanwhile are missing from the
 * rollups: never use it on a database that is billed. */
void store_set_rollups_for_bench(struct store *s, bool on);

/* Test hook: caps the database at 'pages' pages (PRAGMA max_page_count, this
 * connection only; SQLite never sets it below the current size) so a test can
 * provoke SQLITE_FULL without filling a disk. 0 and *ret_pages (the cap now
 * in force), or -EIO. Safe to call while the writer thread uses s: the
 * connection is opened in SQLite's serialized mode. */
int store_set_max_pages_for_test(struct store *s, int64_t pages, int64_t *ret_pages);

/* Test hook: the next move fails as on a full disk (-ENOSPC) inside its
 * transaction, after it has written the samples of 'meters' meters (>= 1)
 * into series, so a test can check that a half-done move rolls back. */
void store_fail_move_for_test(struct store *s, int meters);
