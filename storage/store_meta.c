/*
 * store_meta.c - table meta: small key/value state other modules keep in
 * the database so it survives a restart and commits with the data it
 * describes (the summary engine's next interval).
 */
#include "storage/store_private.h"

#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#define STORE_META_SUMMARY_NEXT_FROM "summary_next_from"

int store_summary_next_from(struct store *s, int64_t *ret)
{
    return store_query_int(
        s, "SELECT value FROM meta WHERE key = '" STORE_META_SUMMARY_NEXT_FROM "'", ret);
}

int store_summary_set_next_from(struct store *s, int64_t from)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO meta(key, value) VALUES ('" STORE_META_SUMMARY_NEXT_FROM
                                "', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    sqlite3_bind_int64(st, 1, from);
    rc = store_step_done(st);
    int r = rc == SQLITE_OK ? 0 : store_fail(s, rc);
    sqlite3_finalize(st);
    return r;
}

#define STORE_META_SUMMARY_STATE "summary_state"

int store_summary_state(struct store *s, void **ret, size_t *ret_len)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT value FROM meta WHERE key = '" STORE_META_SUMMARY_STATE "'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_BLOB) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        void *buf = xmalloc(n ? n : 1);
        memcpy(buf, sqlite3_column_blob(st, 0), n);
        *ret = buf;
        *ret_len = n;
    } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        r = -ENOENT;
    } else {
        r = store_fail(s, rc);
    }
    sqlite3_finalize(st);
    return r;
}

int store_summary_set_state(struct store *s, const void *blob, size_t len)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO meta(key, value) VALUES ('" STORE_META_SUMMARY_STATE
                                "', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    sqlite3_bind_blob64(st, 1, blob, (sqlite3_uint64)len, SQLITE_STATIC);
    rc = store_step_done(st);
    int r = rc == SQLITE_OK ? 0 : store_fail(s, rc);
    sqlite3_finalize(st);
    return r;
}
