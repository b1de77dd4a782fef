/*
 * outbox.c - the durable outbox behind outbox.h. Rows live in the `outbox`
 * table created by the store's first migration; the highest seq ever given out
 * is kept in meta.outbox_seq so a table that drained empty (or a database
 * copied between machines) never hands out a seq twice. The writer adds and
 * trims through the store's connection, the publisher fetches and deletes
 * through its own (WAL lets it read while the writer commits).
 */
#include "storage/outbox.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define OUTBOX_BUSY_TIMEOUT_MS 5000

/* The statements of a handle, prepared once (outbox_stmt_sql) and finalized
 * in outbox_free, by index into struct outbox's st[]. */
enum outbox_stmt {
    OB_LAST_SEQ,
    OB_INSERT,
    OB_SET_META,
    OB_BOUNDS,
    OB_TRIM,
    OB_FETCH,
    OB_DELETE,
    OB_GET_META,
    OB__COUNT
};

static const char *const outbox_stmt_sql[OB__COUNT] = {
    /* The meta counter, or the table's own maximum for a database whose
     * rows predate the counter. */
    [OB_LAST_SEQ] = "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'outbox_seq'), 0),"
                    "           coalesce((SELECT max(seq) FROM outbox), 0))",
    [OB_INSERT] = "INSERT INTO outbox(seq, topic, payload, qos, retain, created)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [OB_SET_META] = "INSERT INTO meta(key, value) VALUES (?1, ?2)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [OB_BOUNDS] = "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) FROM outbox",
    [OB_TRIM] = "DELETE FROM outbox WHERE seq < ?1",
    [OB_FETCH] = "SELECT seq, topic, payload, qos, retain, created FROM outbox"
                 " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [OB_DELETE] = "DELETE FROM outbox WHERE seq = ?1",
    [OB_GET_META] = "SELECT coalesce((SELECT value FROM meta WHERE key = ?1), 0)",
};

struct outbox {
    sqlite3 *db;
    bool own_db;
    sqlite3_stmt *st[OB__COUNT];   /* outbox_stmt_sql */
};

static int outbox_errno(int rc)
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

static int outbox_prepare(struct outbox *ob)
{
    for (size_t i = 0; i < OB__COUNT; i++) {
        if (!outbox_stmt_sql[i])
            return -EINVAL;
        int rc = sqlite3_prepare_v3(ob->db, outbox_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &ob->st[i], NULL);
        if (rc != SQLITE_OK)
            return outbox_errno(rc);
    }
    return 0;
}

int outbox_attach(sqlite3 *db, struct outbox **ret)
{
    struct outbox *ob = xcalloc(1, sizeof(*ob));
    ob->db = db;
    int r = outbox_prepare(ob);
    if (r < 0) {
        outbox_free(ob);
        return r;
    }
    *ret = ob;
    return 0;
}

int outbox_open(const char *path, struct outbox **ret, char *err, size_t errlen)
{
    struct outbox *ob;
    struct stat st;
    int rc, r;

    if (stat(path, &st) < 0) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-r));
        return r;
    }
    ob = xcalloc(1, sizeof(*ob));
    ob->own_db = true;
    rc = sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlerr;
    sqlite3_extended_result_codes(ob->db, 1);
    sqlite3_busy_timeout(ob->db, OUTBOX_BUSY_TIMEOUT_MS);
    /* Same durability trade as store.c: WAL, fsync at checkpoints. */
    rc = sqlite3_exec(ob->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out_sqlerr;
    r = outbox_prepare(ob);
    if (r < 0) {
        snprintf(err, errlen, "%s: no outbox table (%s); run the daemon once to create it", path,
                 sqlite3_errmsg(ob->db));
        goto out_free;
    }
    *ret = ob;
    return 0;

out_sqlerr:
    snprintf(err, errlen, "%s: cannot open the outbox: %s", path,
             ob->db ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc));
    r = outbox_errno(rc);
out_free:
    outbox_free(ob);
    return r;
}

void outbox_free(struct outbox *ob)
{
    if (!ob)
        return;
    for (size_t i = 0; i < OB__COUNT; i++)
        sqlite3_finalize(ob->st[i]);
    if (ob->own_db)
        sqlite3_close_v2(ob->db);
    free(ob);
}

/* Steps a one-row statement returning integers into out[0..n) and resets it. */
static int outbox_row_ints(sqlite3_stmt *st, int64_t *out, int n)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        for (int i = 0; i < n; i++)
            out[i] = sqlite3_column_int64(st, i);
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return rc == SQLITE_OK ? 0 : outbox_errno(rc);
}

static int outbox_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : outbox_errno(rc);
}

static int outbox_set_meta(struct outbox *ob, const char *key, int64_t value)
{
    sqlite3_bind_text(ob->st[OB_SET_META], 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ob->st[OB_SET_META], 2, value);
    return outbox_step_done(ob->st[OB_SET_META]);
}

static int outbox_get_meta(struct outbox *ob, const char *key, int64_t *ret)
{
    sqlite3_bind_text(ob->st[OB_GET_META], 1, key, -1, SQLITE_STATIC);
    return outbox_row_ints(ob->st[OB_GET_META], ret, 1);
}

int outbox_add(struct outbox *ob, const char *topic, const char *payload, int qos, bool retain,
               int64_t created, int64_t *ret_seq)
{
    int64_t last = 0;
    int r = outbox_row_ints(ob->st[OB_LAST_SEQ], &last, 1);
    if (r < 0)
        return r;
    sqlite3_bind_int64(ob->st[OB_INSERT], 1, last + 1);
    sqlite3_bind_text(ob->st[OB_INSERT], 2, topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(ob->st[OB_INSERT], 3, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int(ob->st[OB_INSERT], 4, qos);
    sqlite3_bind_int(ob->st[OB_INSERT], 5, retain ? 1 : 0);
    sqlite3_bind_int64(ob->st[OB_INSERT], 6, created);
    r = outbox_step_done(ob->st[OB_INSERT]);
    if (r < 0)
        return r;
    r = outbox_set_meta(ob, "outbox_seq", last + 1);
    if (r < 0)
        return r;
    *ret_seq = last + 1;
    return 0;
}

int outbox_trim(struct outbox *ob, int64_t max, int64_t *ret_dropped)
{
    int64_t b[2] = {0, 0}, dropped = 0, total = 0;
    int r;

    if (max <= 0) {
        *ret_dropped = 0;
        return 0;
    }
    r = outbox_row_ints(ob->st[OB_BOUNDS], b, 2);
    if (r < 0)
        return r;
    /*
     * min/max are two b-tree seeks where count(*) would scan a table that
     * may hold a million rows. Keeping seq >= max_seq - max + 1 leaves at
     * most max rows; the publisher deletes from the front in order, so the
     * seq range is gap-free in practice and no more than the excess goes.
     */
    if (b[1] != 0 && b[1] - b[0] + 1 > max) {
        sqlite3_bind_int64(ob->st[OB_TRIM], 1, b[1] - max + 1);
        r = outbox_step_done(ob->st[OB_TRIM]);
        if (r < 0)
            return r;
        dropped = sqlite3_changes(ob->db);
    }
    if (dropped > 0) {
        r = outbox_get_meta(ob, "outbox_dropped", &total);
        if (r == 0)
            r = outbox_set_meta(ob, "outbox_dropped", total + dropped);
        if (r < 0)
            return r;
    }
    *ret_dropped = dropped;
    return 0;
}

static char *outbox_column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return xstrdup(t ? (const char *)t : "");
}

void outbox_msgs_free(struct outbox_msg *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++) {
        free(msgs[i].topic);
        free(msgs[i].payload);
    }
    free(msgs);
}

int outbox_fetch(struct outbox *ob, int64_t after, size_t max, struct outbox_msg **ret,
                 size_t *ret_n)
{
    struct outbox_msg *msgs = NULL;
    size_t n = 0, cap = 0;
    int rc;

    sqlite3_bind_int64(ob->st[OB_FETCH], 1, after);
    sqlite3_bind_int64(ob->st[OB_FETCH], 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(ob->st[OB_FETCH])) == SQLITE_ROW) {
        msgs = xgrow(msgs, &cap, n + 1, sizeof(*msgs));
        struct outbox_msg *m = &msgs[n++];
        m->seq = sqlite3_column_int64(ob->st[OB_FETCH], 0);
        m->topic = outbox_column_dup(ob->st[OB_FETCH], 1);
        m->payload = outbox_column_dup(ob->st[OB_FETCH], 2);
        m->qos = sqlite3_column_int(ob->st[OB_FETCH], 3);
        m->retain = sqlite3_column_int(ob->st[OB_FETCH], 4) != 0;
        m->created = sqlite3_column_int64(ob->st[OB_FETCH], 5);
    }
    sqlite3_reset(ob->st[OB_FETCH]);
    if (rc != SQLITE_DONE) {
        outbox_msgs_free(msgs, n);
        return outbox_errno(rc);
    }
    *ret = msgs;
    *ret_n = n;
    return 0;
}

int outbox_delete(struct outbox *ob, const int64_t *seqs, size_t n)
{
    int rc, r = 0;

    if (n == 0)
        return 0;
    rc = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return outbox_errno(rc);
    for (size_t i = 0; i < n && r == 0; i++) {
        sqlite3_bind_int64(ob->st[OB_DELETE], 1, seqs[i]);
        r = outbox_step_done(ob->st[OB_DELETE]);
    }
    if (r == 0) {
        rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        r = outbox_errno(rc);
    }
    if (!sqlite3_get_autocommit(ob->db))
        sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int outbox_stats(struct outbox *ob, struct outbox_stats *ret)
{
    sqlite3_stmt *st;
    int64_t v[2] = {0, 0}, last = 0, dropped = 0, rows = 0;
    int rc = sqlite3_prepare_v2(ob->db, "SELECT count(*) FROM outbox", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return outbox_errno(rc);
    int r = outbox_row_ints(st, &rows, 1);
    sqlite3_finalize(st);
    if (r == 0)
        r = outbox_row_ints(ob->st[OB_BOUNDS], v, 2);
    if (r == 0)
        r = outbox_row_ints(ob->st[OB_LAST_SEQ], &last, 1);
    if (r == 0)
        r = outbox_get_meta(ob, "outbox_dropped", &dropped);
    if (r < 0)
        return r;
    ret->rows = rows;
    ret->oldest_seq = v[0];
    ret->last_seq = last;
    ret->dropped = dropped;
    return 0;
}

char *outbox_payload_with_seq(const char *payload, int64_t seq)
{
    const char *p = payload;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != '{')
        return xstrdup(payload);
    p++;
    const char *q = p;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
        q++;
    /* "{}" has no member to put a comma before. */
    return xasprintf("{\"seq\":%lld%s%s", (long long)seq, *q == '}' ? "" : ",",
                     *q == '}' ? q : p);
}
