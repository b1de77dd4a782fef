/*
 * store.c - the SQLite store behind store.h: opening with the durability
 * pragmas, the statements every handle prepares once (store_stmt_sql),
 * closing, write transactions, error conversion, accessors and the test and
 * bench hooks. The other concepts live beside it, sharing struct store
 * through store_private.h: store_schema.c (migrations), store_points.c
 * (point registry), store_series.c (chunks and their rollups),
 * store_stage.c (staging and the move), store_read.c (readers),
 * store_retention.c (housekeeping), store_meta.c (other modules' state).
 */
#include "storage/store_private.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a statement waits for another connection's write lock (a CLI
 * import, a reader's checkpoint) before giving up with SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* SQLite result code (extended or primary) to the module's -errno. */
int store_errno(int rc)
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
int store_fail(struct store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_errno(rc);
}

void store_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Steps a statement that returns no rows (BEGIN/COMMIT/ROLLBACK) and resets it. */
int store_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
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

/* "file:PATH?immutable=1" with the URI's special characters escaped. */
static char *store_immutable_uri(const char *path)
{
    size_t n = strlen(path);
    char *u = xmalloc(3 * n + 32), *o = u;
    o += sprintf(o, "file:");
    for (const char *c = path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#')
            o += sprintf(o, "%%%02X", (unsigned char)*c);
        else
            *o++ = *c;
    }
    strcpy(o, "?immutable=1");
    return u;
}

/*
 * A read-only handle's first read. A WAL database needs its -shm file
 * beside it, which a reader creates when it is missing: on a read-only
 * mount, or for a user who may read the file but not write its directory,
 * that fails. With no -wal file there (no daemon is writing it) the file is
 * then read as immutable; otherwise the reason is said.
 */
static int store_ro_first_read(struct store *s, int flags, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    int base = rc & 0xff;
    if (base == SQLITE_NOTADB || base == SQLITE_CORRUPT) {
        store_seterr(err, errlen,
                     "%s: not a parkgw database, or damaged beyond opening: %s; restore it "
                     "from a backup (docs/OPERATIONS.md \"Backup of the database\")",
                     s->path, sqlite3_errmsg(s->db));
        return -EIO;
    }
    if (base != SQLITE_CANTOPEN && base != SQLITE_READONLY && base != SQLITE_PERM) {
        store_seterr(err, errlen, "%s: cannot read database: %s", s->path,
                     sqlite3_errmsg(s->db));
        return store_errno(rc);
    }
    char *wal = xasprintf("%s-wal", s->path);
    struct stat sb;
    bool busy = stat(wal, &sb) == 0 && sb.st_size > 0;
    free(wal);
    if (busy) {
        store_seterr(err, errlen,
                     "%s: cannot read database: SQLite must open or create %s-shm beside it "
                     "(the daemon is writing it in WAL mode) and this user cannot (a read-only "
                     "mount, or no write access to the directory): run as the service's user "
                     "or a member of its group with write access, or read a copy made with "
                     "sqlite3 .backup (%s)",
                     s->path, s->path, sqlite3_errmsg(s->db));
        return -EACCES;
    }
    /* Nobody is writing it: read the file as it is, without -shm. */
    sqlite3_close_v2(s->db);
    s->db = NULL;
    char *uri = store_immutable_uri(s->path);
    rc = sqlite3_open_v2(uri, &s->db, flags | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_seterr(err, errlen, "%s: cannot read database (read-only): %s", s->path,
                     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return store_errno(rc);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    return 0;
}

/*
 * A read-only handle's look at every table's first pages (a cheap probe:
 * the root and leftmost pages), so a damaged database is refused with a
 * clear word instead of reading as empty. On damage PRAGMA quick_check
 * names it (it reads every page: only then).
 */
static int store_ro_probe(struct store *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char msg[256] = "";
    int rc = sqlite3_prepare_v2(s->db, "SELECT name FROM sqlite_schema WHERE type = 'table'", -1,
                                &st, NULL);
    while (rc == SQLITE_OK) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = step;
            break;
        }
        char *q = sqlite3_mprintf("SELECT 1 FROM \"%w\" LIMIT 1",
                                  (const char *)sqlite3_column_text(st, 0));
        rc = sqlite3_exec(s->db, q, NULL, NULL, NULL);
        sqlite3_free(q);
    }
    if (rc != SQLITE_OK)
        snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        return 0;
    char word[256] = "no answer";
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(word, sizeof(word), "%s", (const char *)sqlite3_column_text(st, 0));
        else
            snprintf(word, sizeof(word), "%s", sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
    }
    /* quick_check's report spans lines: one line for the log. */
    for (char *c = word; *c; c++)
        if (*c == '\n')
            *c = ' ';
    store_seterr(err, errlen,
                 "%s: the database is damaged: %s (PRAGMA quick_check: %s); restore it from a "
                 "backup (docs/OPERATIONS.md \"Backup of the database\")",
                 s->path, msg, word);
    return -EIO;
}

int store_open(const char *path, bool readonly, struct store **ret, char *err, size_t errlen)
{
    struct store *s;
    struct stat stbuf;
    int rc, r;
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
    /* sqlite3_open_v2 has opened the file: remember which one, so that a
     * file unlinked or renamed over under us is noticed (store_check_file). */
    if (stat(path, &stbuf) < 0) {
        r = -errno;
        store_seterr(err, errlen, "%s: cannot access database: %s", path, strerror(-r));
        goto out_close;
    }
    s->file_dev = stbuf.st_dev;
    s->file_ino = stbuf.st_ino;
    if (readonly) {
        r = store_ro_first_read(s, flags, err, errlen);
        if (r < 0)
            goto out_close;
    }

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
                       * this). 2 MiB (docs/decisions/
                       * 2026-11-29-move-design.md). */
                      "PRAGMA cache_size = -2048;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlerr;

    r = store_schema_open(s, err, errlen);
    if (r < 0)
        goto out_close;
    if (readonly) {
        r = store_ro_probe(s, err, errlen);
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
         * full disk) move into their chunks and the rollups now, so the
         * rollup tables are complete for their readers. Failing (disk full)
         * is not fatal: every reader reads the staged rows too. */
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

/* Records which file "<path><suffix>" is while the database is in place. */
static void store_note_side(const struct store *s, const char *suffix, dev_t *dev, ino_t *ino)
{
    struct stat sb;
    char *p = xasprintf("%s%s", s->path, suffix);
    if (stat(p, &sb) == 0) {
        *dev = sb.st_dev;
        *ino = sb.st_ino;
    }
    free(p);
}

int store_check_file(struct store *s)
{
    struct stat sb;
    if (stat(s->path, &sb) < 0)
        return -errno;
    if (sb.st_dev != s->file_dev || sb.st_ino != s->file_ino)
        return -ESTALE;
    if (!s->wal_ino)
        store_note_side(s, "-wal", &s->wal_dev, &s->wal_ino);
    if (!s->shm_ino)
        store_note_side(s, "-shm", &s->shm_dev, &s->shm_ino);
    return 0;
}

/* Unlinks "<path><suffix>" if it is still the file recorded as ours. */
static void store_unlink_side(const struct store *s, const char *suffix, dev_t dev, ino_t ino)
{
    struct stat sb;
    char *p = xasprintf("%s%s", s->path, suffix);
    if (ino && stat(p, &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino && unlink(p) == 0)
        log_notice("storage: removed %s, which belonged to the database file that is gone", p);
    free(p);
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
    /* Closing the last connection checkpoints the WAL and removes it,
     * unless the database file was unlinked or replaced: SQLite then leaves
     * both side files, and a stale WAL beside a new file of that name would
     * be replayed into it. Ours are removed here (by inode, never another's). */
    int fc = s->file_ino ? store_check_file(s) : 0;
    bool gone = fc == -ENOENT || fc == -ESTALE;
    sqlite3_close_v2(s->db);
    if (gone && !s->readonly) {
        store_unlink_side(s, "-wal", s->wal_dev, s->wal_ino);
        store_unlink_side(s, "-shm", s->shm_dev, s->shm_ino);
    }
    free(s->path);
    free(s);
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

/* Runs a one-row, one-integer-column query. */
int store_query_int(struct store *s, const char *sql, int64_t *ret)
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

void store_fail_move_for_test(struct store *s, int meters)
{
    s->move_fail_after = meters > 0 ? meters : 0;
}
