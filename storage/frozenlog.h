/*
 * frozenlog.h - which stored readings are a meter's own frozen readings
 * (table frozen_readings, docs/STORAGE.md "Frozen readings"): a DL/T 645
 * meter's settlement-day or daily frozen reading that the poller stored at
 * its instant after an outage (docs/DLT645.md). The row is written by a
 * trigger on the outbox from the frozen_reading event, so the mark commits
 * in the same transaction as the event. Statements mark the readings they
 * start or end at that are frozen ones. Takes the store's connection.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sqlite3 sqlite3;

/* The frozen_reading event (P/events) and its keys besides
 * enterprise/meter/ts/value (storage/alarmlog.h). */
#define FROZENLOG_EV "frozen_reading"
#define FROZENLOG_KEY_POINT "point"   /* the billing point's name */
#define FROZENLOG_KEY_SOURCE "source" /* "settlement_day" or "daily" */

/* The migration step that creates the table and its trigger. Never edit it
 * once released: databases in the field ran it. */
#define FROZENLOG_SCHEMA                                                                         \
    "CREATE TABLE frozen_readings("                                                             \
    "  enterprise TEXT NOT NULL,"                                                               \
    "  meter TEXT NOT NULL,"                                                                    \
    "  point TEXT NOT NULL,"                                                                    \
    "  ts INTEGER NOT NULL,"                                                                    \
    "  value REAL NOT NULL,"                                                                    \
    "  source TEXT NOT NULL,"                                                                   \
    "  PRIMARY KEY(enterprise, meter, point, ts)) STRICT, WITHOUT ROWID;"                       \
    "CREATE TRIGGER outbox_frozen_reading AFTER INSERT ON outbox"                               \
    " WHEN NEW.topic GLOB '*/events' AND (CASE WHEN json_valid(NEW.payload)"                    \
    "  THEN json_extract(NEW.payload, '$.type') END) = '" FROZENLOG_EV "'"                      \
    " BEGIN"                                                                                    \
    "  INSERT OR REPLACE INTO frozen_readings(enterprise, meter, point, ts, value, source)"     \
    "  SELECT e, m, p, t, v, coalesce(s, '') FROM (SELECT"                                      \
    "   CAST(json_extract(NEW.payload, '$.enterprise') AS TEXT) AS e,"                          \
    "   CAST(json_extract(NEW.payload, '$.meter') AS TEXT) AS m,"                               \
    "   CAST(json_extract(NEW.payload, '$." FROZENLOG_KEY_POINT "') AS TEXT) AS p,"             \
    "   CAST(json_extract(NEW.payload, '$.ts') AS INTEGER) AS t,"                               \
    "   CAST(json_extract(NEW.payload, '$.value') AS REAL) AS v,"                               \
    "   CAST(json_extract(NEW.payload, '$." FROZENLOG_KEY_SOURCE "') AS TEXT) AS s) AS x"       \
    "  WHERE e IS NOT NULL AND m IS NOT NULL AND p IS NOT NULL AND t IS NOT NULL"               \
    "   AND v IS NOT NULL;"                                                                     \
    " END;"

/*
 * Whether ENT/METER's point has a frozen reading stored at ts (Unix ms):
 * 0 and *ret (and, when true and ret_source is not NULL, its source copied
 * into ret_source[srclen]), or -EIO.
 */
int frozenlog_at(sqlite3 *db, const char *enterprise, const char *meter, const char *point,
                 int64_t ts, bool *ret, char *ret_source, size_t srclen);
