/*
 * store_retention.c - housekeeping between write transactions
 * (store_maintain): the scheduled move of the staged rows, and raw
 * retention, deleting whole chunks in short batches.
 */
#include "storage/store_private.h"
#include "common/log.h"
#include "common/util.h"

#include <malloc.h>
#include <sqlite3.h>

void store_set_retention(struct store *s, int days)
{
    s->retention_days = days > 0 ? days : 0;
    s->retention_due_ms = 0;
}

/* One retention batch: walks the points from the cursor, deleting each
 * one's whole chunks that ended before the cutoff until at least 'limit'
 * samples are gone. Called inside a transaction. 0 and *ret_deleted
 * (samples), *ret_done (a whole pass found no more). */
static int store_retain_batch(struct store *s, int64_t cutoff, int64_t limit,
                              int64_t *ret_deleted, bool *ret_done)
{
    int64_t max_id = 0, deleted = 0, id;
    int r = store_query_int(s, "SELECT coalesce(max(id), 0) FROM points", &max_id);
    if (r < 0)
        return r;
    for (id = s->retention_cursor + 1; id <= max_id && deleted < limit; id++) {
        int64_t want = 0;
        size_t nr = 0;
        int rc = SQLITE_DONE;
        sqlite3_bind_int64(s->st[STMT_RETAIN], 1, id);
        sqlite3_bind_int64(s->st[STMT_RETAIN], 2, cutoff);
        while (deleted + want < limit && (rc = sqlite3_step(s->st[STMT_RETAIN])) == SQLITE_ROW) {
            s->prow = xgrow(s->prow, &s->prow_cap, nr + 1, sizeof(*s->prow));
            s->prow[nr++] = sqlite3_column_int64(s->st[STMT_RETAIN], 0);
            want += sqlite3_column_int64(s->st[STMT_RETAIN], 1);
        }
        bool more = deleted + want >= limit && sqlite3_step(s->st[STMT_RETAIN]) == SQLITE_ROW;
        sqlite3_reset(s->st[STMT_RETAIN]);
        if (deleted + want < limit && rc != SQLITE_DONE)
            return store_fail(s, rc);
        for (size_t i = 0; i < nr; i++) {
            sqlite3_bind_int64(s->st[STMT_CHUNK_DEL], 1, s->prow[i]);
            rc = store_step_done(s->st[STMT_CHUNK_DEL]);
            if (rc != SQLITE_OK)
                return store_fail(s, rc);
        }
        deleted += want;
        if (more) {
            /* this point holds more: resume on it */
            id--;
            break;
        }
    }
    s->retention_cursor = id > max_id ? 0 : id;
    *ret_done = id > max_id;
    *ret_deleted = deleted;
    return 0;
}

int store_maintain(struct store *s, int64_t now_ms)
{
    int64_t deleted = 0;
    bool done = false;
    int r;

    if (s->staging && s->staged_max != INT64_MIN &&
        store_period(s, s->staged_max) > s->staged_min && now_ms >= s->move_due_ms) {
        /* The staged rows of closed chunk periods go to series (and the
         * rollups) in one bulk transaction. */
        int64_t moved = 0, t0 = now_mono_ms();
        r = store_move_txn(s, store_period(s, s->staged_max), &moved);
        if (r < 0) {
            s->move_due_ms = now_ms + STORE_MOVE_RETRY_MS;
            return r;
        }
        s->move_due_ms = 0;
        if (moved > 0) {
            /* The pollers' batches queued while the move held the write
             * lock were freed by this thread into their threads' malloc
             * arenas; hand the free pages back, or every move leaves the
             * daemon a few MB bigger (measured: +2.5 MB per move at 1,000
             * meters x 30 points). */
            malloc_trim(0);
            log_debug("storage: moved %lld staged samples into series in %lld ms "
                      "(SQLite heap %lld bytes, peak %lld)",
                      (long long)moved, (long long)(now_mono_ms() - t0),
                      (long long)sqlite3_memory_used(), (long long)sqlite3_memory_highwater(0));
        }
        return 0;
    }
    if (s->readonly || s->retention_days <= 0 || now_ms < s->retention_due_ms)
        return 0;
    r = store_begin(s);
    if (r < 0)
        return r;
    r = store_retain_batch(s, now_ms - (int64_t)s->retention_days * 86400000LL,
                           STORE_RETENTION_BATCH, &deleted, &done);
    if (r < 0)
        store_rollback(s);
    else
        r = store_commit(s);
    if (r < 0) {
        /* a full disk or a busy database: try again later, not after
         * every write */
        s->retention_due_ms = now_ms + STORE_RETENTION_IDLE_MS;
        return r;
    }
    /* A full batch: more is waiting, run again after the next write. A pass
     * that found less: nothing old is left until time moves on. */
    if (done && deleted < STORE_RETENTION_BATCH)
        s->retention_due_ms = now_ms + STORE_RETENTION_IDLE_MS;
    return (int)deleted;
}
