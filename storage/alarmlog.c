/*
 * alarmlog.c - the alarm history behind alarmlog.h: the schema step with the
 * triggers that derive the rows from the event messages added to the outbox
 * (written with the key and type names of alarmlog.h, so the events and the
 * triggers cannot drift apart), and the readers of the open alarms.
 */
#include "storage/alarmlog.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>

/* A key of the event's payload, in the triggers. */
#define ALARMLOG_J(key) "json_extract(NEW.payload, '$." key "')"
#define ALARMLOG_JTEXT(key) "coalesce(CAST(" ALARMLOG_J(key) " AS TEXT), '')"

/*
 * alarm_raised/comm_lost/bus_down open a row (unless one is open already),
 * alarm_cleared/comm_restored/bus_restored close it. bus is set on bus rows
 * only (enterprise and meter are then ''). The text is that of the released
 * migration step, byte for byte.
 */
const char alarmlog_schema_v3[] =
    "CREATE TABLE alarms("
    "  id INTEGER PRIMARY KEY,"
    "  enterprise TEXT NOT NULL,"
    "  meter TEXT NOT NULL,"
    "  bus TEXT NOT NULL,"
    "  alarm TEXT NOT NULL,"
    "  since INTEGER,"
    "  raised_ts INTEGER NOT NULL,"
    "  cleared_ts INTEGER,"
    "  value REAL,"
    "  threshold REAL) STRICT;"
    "CREATE INDEX alarms_open ON alarms(enterprise, meter, alarm) WHERE cleared_ts IS NULL;"
    "CREATE TRIGGER outbox_alarm_open AFTER INSERT ON outbox"
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"
    "  THEN " ALARMLOG_J(ALARMLOG_KEY_TYPE) " END) IN ('" ALARMLOG_EV_ALARM_RAISED "', '"
    ALARMLOG_EV_COMM_LOST "', '" ALARMLOG_EV_BUS_DOWN "')"
    " BEGIN"
    "  INSERT INTO alarms(enterprise, meter, bus, alarm, since, raised_ts, value, threshold)"
    "  SELECT e, m, b, a, s, t, v, th FROM (SELECT"
    "   " ALARMLOG_JTEXT(ALARMLOG_KEY_ENTERPRISE) " AS e,"
    "   " ALARMLOG_JTEXT(ALARMLOG_KEY_METER) " AS m,"
    "   CASE " ALARMLOG_J(ALARMLOG_KEY_TYPE) " WHEN '" ALARMLOG_EV_BUS_DOWN "'"
    "    THEN " ALARMLOG_JTEXT(ALARMLOG_KEY_BUS) " ELSE '' END AS b,"
    "   CAST(CASE " ALARMLOG_J(ALARMLOG_KEY_TYPE) " WHEN '" ALARMLOG_EV_ALARM_RAISED "'"
    "    THEN " ALARMLOG_J(ALARMLOG_KEY_ALARM) " ELSE " ALARMLOG_J(ALARMLOG_KEY_TYPE) " END"
    "    AS TEXT) AS a,"
    "   CAST(" ALARMLOG_J(ALARMLOG_KEY_SINCE) " AS INTEGER) AS s,"
    "   coalesce(CAST(" ALARMLOG_J(ALARMLOG_KEY_TS) " AS INTEGER), NEW.created) AS t,"
    "   CAST(" ALARMLOG_J(ALARMLOG_KEY_VALUE) " AS REAL) AS v,"
    "   CAST(" ALARMLOG_J(ALARMLOG_KEY_THRESHOLD) " AS REAL) AS th) AS x"
    "  WHERE x.a IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alarms WHERE cleared_ts IS NULL"
    "   AND enterprise = x.e AND meter = x.m AND bus = x.b AND alarm = x.a);"
    " END;"
    "CREATE TRIGGER outbox_alarm_close AFTER INSERT ON outbox"
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"
    "  THEN " ALARMLOG_J(ALARMLOG_KEY_TYPE) " END)"
    "  IN ('" ALARMLOG_EV_ALARM_CLEARED "', '" ALARMLOG_EV_COMM_RESTORED "', '"
    ALARMLOG_EV_BUS_RESTORED "')"
    " BEGIN"
    "  UPDATE alarms SET cleared_ts ="
    "   coalesce(CAST(" ALARMLOG_J(ALARMLOG_KEY_TS) " AS INTEGER), NEW.created)"
    "  WHERE cleared_ts IS NULL"
    "   AND enterprise = " ALARMLOG_JTEXT(ALARMLOG_KEY_ENTERPRISE) ""
    "   AND meter = " ALARMLOG_JTEXT(ALARMLOG_KEY_METER) ""
    "   AND bus = CASE " ALARMLOG_J(ALARMLOG_KEY_TYPE) " WHEN '" ALARMLOG_EV_BUS_RESTORED "'"
    "    THEN " ALARMLOG_JTEXT(ALARMLOG_KEY_BUS) " ELSE '' END"
    "   AND alarm = CASE " ALARMLOG_J(ALARMLOG_KEY_TYPE) ""
    "    WHEN '" ALARMLOG_EV_ALARM_CLEARED "' THEN CAST(" ALARMLOG_J(ALARMLOG_KEY_ALARM) " AS TEXT)"
    "    WHEN '" ALARMLOG_EV_COMM_RESTORED "' THEN '" ALARMLOG_EV_COMM_LOST "' ELSE '"
    ALARMLOG_EV_BUS_DOWN "' END;"
    " END;";

struct alarmlog {
    sqlite3_stmt *st_all;
    sqlite3_stmt *st_meter;
    sqlite3_stmt *st_recent;
};

int alarmlog_attach(sqlite3 *db, struct alarmlog **ret)
{
    struct alarmlog *a = xcalloc(1, sizeof(*a));
    int rc = sqlite3_prepare_v2(db,
                                "SELECT enterprise, meter, bus, alarm, coalesce(since, raised_ts)"
                                " FROM alarms WHERE cleared_ts IS NULL ORDER BY id",
                                -1, &a->st_all, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT enterprise, meter, bus, alarm, coalesce(since, raised_ts)"
                                " FROM alarms WHERE cleared_ts IS NULL AND ((enterprise = ?1 AND"
                                " meter = ?2) OR (alarm = '" ALARMLOG_EV_BUS_DOWN "' AND bus = ?3))"
                                " ORDER BY id",
                                -1, &a->st_meter, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT id, enterprise, meter, bus, alarm,"
                                " coalesce(since, raised_ts), raised_ts, coalesce(cleared_ts, 0)"
                                " FROM alarms ORDER BY id DESC LIMIT ?1",
                                -1, &a->st_recent, NULL);
    if (rc != SQLITE_OK) {
        alarmlog_free(a);
        return -EIO;
    }
    *ret = a;
    return 0;
}

void alarmlog_free(struct alarmlog *a)
{
    if (!a)
        return;
    sqlite3_finalize(a->st_all);
    sqlite3_finalize(a->st_meter);
    sqlite3_finalize(a->st_recent);
    free(a);
}

static const char *alarmlog_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

/* Steps st (bound) and calls cb on each row, then resets it. */
static int alarmlog_each(sqlite3_stmt *st, int (*cb)(void *ud, const struct alarmlog_open *o),
                         void *ud)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct alarmlog_open o = {
            .enterprise = alarmlog_text(st, 0),
            .meter = alarmlog_text(st, 1),
            .bus = alarmlog_text(st, 2),
            .alarm = alarmlog_text(st, 3),
            .since = sqlite3_column_int64(st, 4),
        };
        if (cb(ud, &o) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int alarmlog_each_open(struct alarmlog *a, int (*cb)(void *ud, const struct alarmlog_open *o),
                       void *ud)
{
    return alarmlog_each(a->st_all, cb, ud);
}

int alarmlog_each_open_of_meter(struct alarmlog *a, const char *enterprise, const char *meter,
                                const char *bus,
                                int (*cb)(void *ud, const struct alarmlog_open *o), void *ud)
{
    sqlite3_bind_text(a->st_meter, 1, enterprise, -1, SQLITE_STATIC);
    sqlite3_bind_text(a->st_meter, 2, meter, -1, SQLITE_STATIC);
    sqlite3_bind_text(a->st_meter, 3, bus, -1, SQLITE_STATIC);
    return alarmlog_each(a->st_meter, cb, ud);
}

int alarmlog_each_recent(struct alarmlog *a, int n,
                         int (*cb)(void *ud, const struct alarmlog_row *r), void *ud)
{
    sqlite3_stmt *st = a->st_recent;
    int rc;
    sqlite3_bind_int(st, 1, n);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct alarmlog_row r = {
            .id = sqlite3_column_int64(st, 0),
            .enterprise = alarmlog_text(st, 1),
            .meter = alarmlog_text(st, 2),
            .bus = alarmlog_text(st, 3),
            .alarm = alarmlog_text(st, 4),
            .since = sqlite3_column_int64(st, 5),
            .raised_ts = sqlite3_column_int64(st, 6),
            .cleared_ts = sqlite3_column_int64(st, 7),
        };
        if (cb(ud, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}
