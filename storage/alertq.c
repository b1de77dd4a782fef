/*
 * alertq.c - the durable alert queue (see alertq.h).
 */
#include "storage/alertq.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Busy timeout of the queue's own connection: the writer's transactions
 * are short, a cursor update can wait for one. */
#define ALERTQ_BUSY_MS 5000

struct alertq {
    sqlite3 *db;
    sqlite3_stmt *st_fetch, *st_cursor, *st_max, *st_set, *st_backlog, *st_hold, *st_held,
        *st_release;
};

static const char alertq_schema[] =
    "CREATE TABLE IF NOT EXISTS alert_events("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  payload TEXT NOT NULL,"
    "  created INTEGER NOT NULL) STRICT;"
    "CREATE TABLE IF NOT EXISTS alert_cursors("
    "  target TEXT PRIMARY KEY,"
    "  last_id INTEGER NOT NULL) STRICT;"
    "CREATE TABLE IF NOT EXISTS alert_held("
    "  target TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  event_id INTEGER NOT NULL,"
    "  suppressed INTEGER NOT NULL,"
    "  PRIMARY KEY(target, key)) STRICT;"
    "CREATE TRIGGER IF NOT EXISTS alert_events_from_outbox AFTER INSERT ON outbox"
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"
    "  THEN json_extract(NEW.payload, '$.type') END) IN ('alarm_raised', 'alarm_cleared',"
    "  'comm_lost', 'comm_restored', 'bus_down', 'bus_restored')"
    " BEGIN"
    "  INSERT INTO alert_events(payload, created) VALUES (NEW.payload, NEW.created);"
    " END;";

static const char alertq_drop[] = "DROP TRIGGER IF EXISTS alert_events_from_outbox;"
                                  "DROP TABLE IF EXISTS alert_events;"
                                  "DROP TABLE IF EXISTS alert_cursors;"
                                  "DROP TABLE IF EXISTS alert_held;";

int alertq_install(sqlite3 *db, bool on)
{
    return sqlite3_exec(db, on ? alertq_schema : alertq_drop, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -EIO;
}

static int alertq_errno(int rc)
{
    return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? -EBUSY : -EIO;
}

int alertq_open(const char *path, struct alertq **ret, char *err, size_t errlen)
{
    struct alertq *q = xcalloc(1, sizeof(*q));
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&q->st_fetch, "SELECT id, payload, created FROM alert_events WHERE id > ?1"
                       " ORDER BY id LIMIT ?2"},
        {&q->st_cursor, "SELECT last_id FROM alert_cursors WHERE target = ?1"},
        {&q->st_max, "SELECT coalesce((SELECT seq FROM sqlite_sequence"
                     " WHERE name = 'alert_events'), 0)"},
        {&q->st_set, "INSERT INTO alert_cursors(target, last_id) VALUES (?1, ?2)"
                     " ON CONFLICT(target) DO UPDATE SET last_id = excluded.last_id"},
        {&q->st_backlog, "SELECT count(*) FROM alert_events WHERE id >"
                         " coalesce((SELECT last_id FROM alert_cursors WHERE target = ?1), 0)"},
        {&q->st_hold, "INSERT INTO alert_held(target, key, event_id, suppressed)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(target, key) DO UPDATE SET"
                      " event_id = excluded.event_id, suppressed = excluded.suppressed"},
        {&q->st_held, "SELECT h.key, h.suppressed, e.id, e.payload, e.created"
                      " FROM alert_held h JOIN alert_events e ON e.id = h.event_id"
                      " WHERE h.target = ?1 ORDER BY e.id"},
        {&q->st_release, "DELETE FROM alert_held WHERE target = ?1 AND key = ?2"},
    };
    int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(q->db, ALERTQ_BUSY_MS);
    for (size_t i = 0; i < ARRAY_SIZE(stmts) && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v2(q->db, stmts[i].sql, -1, stmts[i].st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "alert queue in %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        alertq_free(q);
        return -EIO;
    }
    *ret = q;
    return 0;
}

void alertq_free(struct alertq *q)
{
    if (!q)
        return;
    sqlite3_finalize(q->st_fetch);
    sqlite3_finalize(q->st_cursor);
    sqlite3_finalize(q->st_max);
    sqlite3_finalize(q->st_set);
    sqlite3_finalize(q->st_backlog);
    sqlite3_finalize(q->st_hold);
    sqlite3_finalize(q->st_held);
    sqlite3_finalize(q->st_release);
    sqlite3_close(q->db);
    free(q);
}

int alertq_fetch(struct alertq *q, int64_t after, size_t max, struct alertq_event **ret,
                 size_t *ret_n)
{
    struct alertq_event *v = xcalloc(max ? max : 1, sizeof(*v));
    size_t n = 0;
    int rc;
    sqlite3_bind_int64(q->st_fetch, 1, after);
    sqlite3_bind_int64(q->st_fetch, 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(q->st_fetch)) == SQLITE_ROW && n < max) {
        const unsigned char *p = sqlite3_column_text(q->st_fetch, 1);
        v[n].id = sqlite3_column_int64(q->st_fetch, 0);
        v[n].payload = xstrdup(p ? (const char *)p : "{}");
        v[n].created = sqlite3_column_int64(q->st_fetch, 2);
        n++;
    }
    sqlite3_reset(q->st_fetch);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        alertq_events_free(v, n);
        return alertq_errno(rc);
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

void alertq_events_free(struct alertq_event *ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++)
        free(ev[i].payload);
    free(ev);
}

/* The single integer of a prepared one-row query (bound by the caller). */
static int alertq_int(sqlite3_stmt *st, int64_t *ret, bool *ret_found)
{
    int rc = sqlite3_step(st);
    *ret_found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : alertq_errno(rc);
}

int alertq_set_cursor(struct alertq *q, const char *target, int64_t id)
{
    sqlite3_bind_text(q->st_set, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->st_set, 2, id);
    int rc = sqlite3_step(q->st_set);
    sqlite3_reset(q->st_set);
    return rc == SQLITE_DONE ? 0 : alertq_errno(rc);
}

int alertq_cursor(struct alertq *q, const char *target, int64_t *ret)
{
    int64_t v = 0;
    bool found;
    sqlite3_bind_text(q->st_cursor, 1, target, -1, SQLITE_STATIC);
    int r = alertq_int(q->st_cursor, &v, &found);
    if (r < 0 || found) {
        if (r == 0)
            *ret = v;
        return r;
    }
    if ((r = alertq_int(q->st_max, &v, &found)) < 0 || (r = alertq_set_cursor(q, target, v)) < 0)
        return r;
    *ret = v;
    return 0;
}

int alertq_backlog(struct alertq *q, const char *target, int64_t *ret)
{
    bool found;
    sqlite3_bind_text(q->st_backlog, 1, target, -1, SQLITE_STATIC);
    return alertq_int(q->st_backlog, ret, &found);
}

int alertq_prune(struct alertq *q, const char *const *targets, size_t n)
{
    /* The targets as a JSON array, so one statement takes any number. */
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += strlen(targets[i]) * 2 + 4;
    char *list = xmalloc(len), *o = list;
    *o++ = '[';
    for (size_t i = 0; i < n; i++) {
        *o++ = i ? ',' : ' ';
        *o++ = '"';
        for (const char *c = targets[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o++ = ']';
    *o = '\0';
    static const char *const sql[] = {
        "DELETE FROM alert_cursors WHERE target NOT IN (SELECT value FROM json_each(?1))",
        "DELETE FROM alert_held WHERE target NOT IN (SELECT value FROM json_each(?1))",
        "DELETE FROM alert_events WHERE id <= (SELECT coalesce(min(last_id), 0) FROM"
        " alert_cursors) AND id NOT IN (SELECT event_id FROM alert_held)",
    };
    int rc = SQLITE_OK;
    for (size_t k = 0; k < ARRAY_SIZE(sql) && rc == SQLITE_OK; k++) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(q->db, sql[k], -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) > 0)
            sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(q->db);
        sqlite3_finalize(st);
    }
    free(list);
    return rc == SQLITE_OK ? 0 : alertq_errno(rc);
}

int alertq_hold(struct alertq *q, const char *target, const char *key, int64_t event_id,
                int suppressed)
{
    sqlite3_bind_text(q->st_hold, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->st_hold, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->st_hold, 3, event_id);
    sqlite3_bind_int(q->st_hold, 4, suppressed);
    int rc = sqlite3_step(q->st_hold);
    sqlite3_reset(q->st_hold);
    return rc == SQLITE_DONE ? 0 : alertq_errno(rc);
}

int alertq_held_list(struct alertq *q, const char *target, struct alertq_held **ret,
                     size_t *ret_n)
{
    struct alertq_held *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    sqlite3_bind_text(q->st_held, 1, target, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(q->st_held)) == SQLITE_ROW) {
        v = xgrow(v, &cap, n + 1, sizeof(*v));
        const unsigned char *k = sqlite3_column_text(q->st_held, 0);
        const unsigned char *p = sqlite3_column_text(q->st_held, 3);
        v[n].key = xstrdup(k ? (const char *)k : "");
        v[n].suppressed = sqlite3_column_int(q->st_held, 1);
        v[n].ev.id = sqlite3_column_int64(q->st_held, 2);
        v[n].ev.payload = xstrdup(p ? (const char *)p : "{}");
        v[n].ev.created = sqlite3_column_int64(q->st_held, 4);
        n++;
    }
    sqlite3_reset(q->st_held);
    if (rc != SQLITE_DONE) {
        alertq_held_free(v, n);
        return alertq_errno(rc);
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

void alertq_held_free(struct alertq_held *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].key);
        free(h[i].ev.payload);
    }
    free(h);
}

int alertq_release(struct alertq *q, const char *target, const char *key)
{
    sqlite3_bind_text(q->st_release, 1, target, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->st_release, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q->st_release);
    sqlite3_reset(q->st_release);
    return rc == SQLITE_DONE ? 0 : alertq_errno(rc);
}
