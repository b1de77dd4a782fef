/*
 * closelog.c - closed billing periods behind closelog.h.
 */
#include "storage/closelog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>

#include "common/util.h"
#include "storage/store_private.h"

static const char *const text_col[CLOSELOG_FORMATS] = {"out_table", "out_csv", "out_json"};

int closelog_find(sqlite3 *db, int64_t from, int64_t to, int f, char **ret_text)
{
    sqlite3_stmt *st;
    char *sql = xasprintf("SELECT %s FROM closed_statement WHERE from_ts = ?1 AND to_ts = ?2",
                          text_col[f >= 0 && f < CLOSELOG_FORMATS ? f : 0]);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
    if (r == 0 && ret_text)
        *ret_text = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return r;
}

int closelog_overlap(sqlite3 *db, int64_t from, int64_t to, int64_t *ret_from, int64_t *ret_to)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT from_ts, to_ts FROM closed_statement WHERE from_ts < ?2"
                                " AND to_ts > ?1 AND NOT (from_ts = ?1 AND to_ts = ?2) LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
    if (r == 0) {
        *ret_from = sqlite3_column_int64(st, 0);
        *ret_to = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return r;
}

int closelog_ending_at(sqlite3 *db, int64_t ts, int64_t *ret_from)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT from_ts FROM closed_statement WHERE to_ts = ?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(st, 1, ts);
    rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
    if (r == 0)
        *ret_from = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r;
}

int closelog_booked(sqlite3 *db, const char *enterprise, const char *meter, int64_t ref_from,
                    int64_t ref_to, double *ret_consumption, double *ret_amount)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT total(consumption), total(amount) FROM closed_row"
                                " WHERE enterprise = ?1 AND meter = ?2 AND ref_from = ?3"
                                " AND ref_to = ?4",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ref_from);
    sqlite3_bind_int64(st, 4, ref_to);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *ret_consumption = sqlite3_column_double(st, 0);
        *ret_amount = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

int closelog_add(sqlite3 *db, int64_t from, int64_t to, const char *const text[CLOSELOG_FORMATS],
                 const struct closelog_row *rows, size_t n)
{
    sqlite3_stmt *st = NULL, *rst = NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_errno(rc);
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO closed_statement(from_ts, to_ts, closed_at, out_table,"
                            " out_csv, out_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, to);
        sqlite3_bind_int64(st, 3, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        for (int f = 0; f < CLOSELOG_FORMATS; f++)
            sqlite3_bind_text(st, 4 + f, text[f], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    int64_t id = sqlite3_last_insert_rowid(db);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "INSERT INTO closed_row(close_id, enterprise, meter, ref_from,"
                                " ref_to, consumption, amount) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                -1, &rst, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        sqlite3_bind_int64(rst, 1, id);
        sqlite3_bind_text(rst, 2, rows[i].enterprise, -1, SQLITE_STATIC);
        sqlite3_bind_text(rst, 3, rows[i].meter, -1, SQLITE_STATIC);
        sqlite3_bind_int64(rst, 4, rows[i].ref_from);
        sqlite3_bind_int64(rst, 5, rows[i].ref_to);
        sqlite3_bind_double(rst, 6, rows[i].consumption);
        sqlite3_bind_double(rst, 7, rows[i].amount);
        rc = sqlite3_step(rst);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_reset(rst);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(rst);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return (rc & 0xff) == SQLITE_CONSTRAINT ? -EEXIST : store_errno(rc);
    }
    return 0;
}
