/*
 * frozenlog.c - the reader of the frozen-reading marks (frozenlog.h); the
 * rows come from the trigger in FROZENLOG_SCHEMA.
 */
#include "storage/frozenlog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

int frozenlog_at(sqlite3 *db, const char *enterprise, const char *meter, const char *point,
                 int64_t ts, bool *ret, char *ret_source, size_t srclen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT source FROM frozen_readings WHERE enterprise = ?1"
                                " AND meter = ?2 AND point = ?3 AND ts = ?4",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, point, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ts);
    rc = sqlite3_step(st);
    *ret = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW && ret_source && srclen > 0) {
        const unsigned char *s = sqlite3_column_text(st, 0);
        snprintf(ret_source, srclen, "%s", s ? (const char *)s : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}
