/*
 * store_points.c - the point registry (table points): ids of
 * ENTERPRISE/METER/POINT, created on first use and updated from the config,
 * and each point's meter key (the smallest point id of its meter), which
 * keys the staged rows.
 */
#include "storage/store_private.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>


static const char *const store_kind_names[] = {"gauge", "counter"};

static void store_bind_names(sqlite3_stmt *st, const char *enterprise, const char *meter,
                             const char *point)
{
    sqlite3_bind_text(st, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, point, -1, SQLITE_STATIC);
}

static const char *store_column_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

int store_point_id(struct store *s, const char *enterprise, const char *meter, const char *point,
                   enum utility utility, enum point_kind kind, uint32_t *ret_id)
{
    const char *uname, *kname;
    sqlite3_int64 id;
    int rc, r;

    if ((unsigned)utility >= UTIL__COUNT ||
        (unsigned)kind >= ARRAY_SIZE(store_kind_names))
        return -EINVAL;
    uname = utility_name(utility);
    kname = store_kind_names[kind];

    store_bind_names(s->st[STMT_POINT_FIND], enterprise, meter, point);
    rc = sqlite3_step(s->st[STMT_POINT_FIND]);
    if (rc == SQLITE_ROW) {
        bool same = strcmp(store_column_str(s->st[STMT_POINT_FIND], 1), uname) == 0 &&
                    strcmp(store_column_str(s->st[STMT_POINT_FIND], 2), kname) == 0;
        id = sqlite3_column_int64(s->st[STMT_POINT_FIND], 0);
        sqlite3_reset(s->st[STMT_POINT_FIND]);
        /* The config is the truth for a point's utility and kind: a
         * corrected profile updates the registry, the id stays. */
        if (!same && !s->readonly) {
            sqlite3_bind_int64(s->st[STMT_POINT_UPDATE], 1, id);
            sqlite3_bind_text(s->st[STMT_POINT_UPDATE], 2, uname, -1, SQLITE_STATIC);
            sqlite3_bind_text(s->st[STMT_POINT_UPDATE], 3, kname, -1, SQLITE_STATIC);
            rc = store_step_done(s->st[STMT_POINT_UPDATE]);
            if (rc != SQLITE_OK)
                return store_fail(s, rc);
        }
        goto out_found;
    }
    r = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(s->st[STMT_POINT_FIND]);
    if (r < 0)
        return r;

    store_bind_names(s->st[STMT_POINT_ADD], enterprise, meter, point);
    sqlite3_bind_text(s->st[STMT_POINT_ADD], 4, uname, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->st[STMT_POINT_ADD], 5, kname, -1, SQLITE_STATIC);
    rc = sqlite3_step(s->st[STMT_POINT_ADD]);
    if (rc != SQLITE_DONE) {
        r = store_fail(s, rc);
        sqlite3_reset(s->st[STMT_POINT_ADD]);
        return r;
    }
    sqlite3_reset(s->st[STMT_POINT_ADD]);
    id = sqlite3_last_insert_rowid(s->db);

out_found:
    if (id <= 0 || id > UINT32_MAX)
        return -EIO;
    *ret_id = (uint32_t)id;
    return 0;
}

int store_find_point(struct store *s, const char *enterprise, const char *meter, const char *point,
                     uint32_t *ret_id)
{
    sqlite3_int64 id;
    int rc, r;

    store_bind_names(s->st[STMT_POINT_FIND], enterprise, meter, point);
    rc = sqlite3_step(s->st[STMT_POINT_FIND]);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(s->st[STMT_POINT_FIND], 0);
        sqlite3_reset(s->st[STMT_POINT_FIND]);
        if (id <= 0 || id > UINT32_MAX)
            return -EIO;
        *ret_id = (uint32_t)id;
        return 0;
    }
    r = rc == SQLITE_DONE ? -ENOENT : store_fail(s, rc);
    sqlite3_reset(s->st[STMT_POINT_FIND]);
    return r;
}

/* A point's meter key: the smallest point id of its (enterprise, meter), or
 * the point itself if it is not registered. SQLite result code. */
int store_meter_key(struct store *s, uint32_t point, uint32_t *ret)
{
    if ((size_t)point >= s->mk_cap) {
        size_t old = s->mk_cap;
        s->mk = xgrow(s->mk, &s->mk_cap, (size_t)point + 1, sizeof(*s->mk));
        memset(s->mk + old, 0, (s->mk_cap - old) * sizeof(*s->mk));
    }
    if (s->mk[point] == 0) {
        uint32_t mk = point;
        sqlite3_bind_int64(s->st[STMT_MK], 1, point);
        int rc = sqlite3_step(s->st[STMT_MK]);
        if (rc == SQLITE_ROW && sqlite3_column_type(s->st[STMT_MK], 0) != SQLITE_NULL) {
            int64_t m = sqlite3_column_int64(s->st[STMT_MK], 0);
            if (m > 0 && m < point)
                mk = (uint32_t)m;
        }
        sqlite3_reset(s->st[STMT_MK]);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return rc;
        s->mk[point] = mk;
    }
    *ret = s->mk[point];
    return SQLITE_OK;
}
