/*
 * meterlog.c - the meter history behind meterlog.h: typed readers and the
 * one writer of table meter_history.
 */
#include "storage/meterlog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "storage/store_private.h"

static const char *const kind_names[] = {
    [METERLOG_INITIAL] = "initial",
    [METERLOG_RATIO] = "ratio",
    [METERLOG_REPLACE] = "replace",
};

const char *meterlog_kind_name(enum meterlog_kind k)
{
    return (size_t)k < ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

static int kind_parse(const char *s, enum meterlog_kind *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
        if (s && strcmp(s, kind_names[i]) == 0) {
            *ret = (enum meterlog_kind)i;
            return 0;
        }
    return -EINVAL;
}

int meterlog_read(sqlite3 *db, const char *enterprise, const char *meter,
                  struct meterlog_list *ret)
{
    sqlite3_stmt *st;
    struct meterlog_list l = {0};
    size_t cap = 0;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, ts, kind, pt_ratio, ct_ratio, coalesce(final, 0),"
                                " coalesce(initial, 0), recorded, source FROM meter_history"
                                " WHERE enterprise = ?1 AND meter = ?2 ORDER BY ts, id",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct meterlog_rec r = {
            .id = sqlite3_column_int64(st, 0),
            .ts = sqlite3_column_int64(st, 1),
            .pt = sqlite3_column_double(st, 3),
            .ct = sqlite3_column_double(st, 4),
            .final_dial = sqlite3_column_double(st, 5),
            .initial_dial = sqlite3_column_double(st, 6),
            .recorded = sqlite3_column_int64(st, 7),
        };
        const char *src = (const char *)sqlite3_column_text(st, 8);
        snprintf(r.source, sizeof(r.source), "%s", src ? src : "");
        if (kind_parse((const char *)sqlite3_column_text(st, 2), &r.kind) < 0)
            continue; /* a kind from a newer parkgw: not ours to interpret */
        l.v = xgrow(l.v, &cap, l.n + 1, sizeof(*l.v));
        l.v[l.n++] = r;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(l.v);
        return -EIO;
    }
    *ret = l;
    return 0;
}

void meterlog_list_free(struct meterlog_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int meterlog_add(sqlite3 *db, const char *enterprise, const char *meter,
                 const struct meterlog_rec *rec, int64_t *ret_id)
{
    sqlite3_stmt *st;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO meter_history(enterprise, meter, ts, kind, pt_ratio,"
                                " ct_ratio, final, initial, source, recorded)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_errno(rc);
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rec->ts);
    sqlite3_bind_text(st, 4, meterlog_kind_name(rec->kind), -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, rec->pt);
    sqlite3_bind_double(st, 6, rec->ct);
    if (rec->kind == METERLOG_REPLACE) {
        sqlite3_bind_double(st, 7, rec->final_dial);
        sqlite3_bind_double(st, 8, rec->initial_dial);
    }
    sqlite3_bind_text(st, 9, rec->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_errno(rc);
    if (ret_id)
        *ret_id = sqlite3_last_insert_rowid(db);
    return 0;
}

const struct meterlog_rec *meterlog_at(const struct meterlog_list *l, int64_t ts)
{
    const struct meterlog_rec *best = NULL;
    for (size_t i = 0; i < l->n && l->v[i].ts <= ts; i++)
        best = &l->v[i];
    return best;
}

const struct meterlog_rec *meterlog_last(const struct meterlog_list *l)
{
    return l->n ? &l->v[l->n - 1] : NULL;
}

int meterlog_dial_since(sqlite3 *db, int64_t *ret)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'dial_since'", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return -EIO;
    rc = sqlite3_step(st);
    int64_t v = INT64_MIN;
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -EIO;
    *ret = v;
    return 0;
}
