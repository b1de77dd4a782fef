/*
 * alarmlog.h - the alarm history (table alarms, docs/ALARMS.md): one row per
 * alarm, comm loss or bus outage, from its raise to its clear. Rows are not
 * written by C code: SQL triggers on the outbox derive them from the event
 * messages on P/events, so an alarm's row commits in the same transaction as
 * its event. The events must therefore carry the keys and type names below
 * (the poller builds them with these names; "ts" and "type" are in every
 * event, docs/MQTT.md). The schema step is in the store's migrations
 * (store_schema.c, version 3); the readers take the store's connection.
 */
#pragma once
#include <stdint.h>

typedef struct sqlite3 sqlite3;
struct alarmlog;

/* Keys of an event payload the triggers read. */
#define ALARMLOG_KEY_TYPE "type"             /* one of the ALARMLOG_EV_* below */
#define ALARMLOG_KEY_TS "ts"                 /* Unix ms: raised_ts or cleared_ts */
#define ALARMLOG_KEY_ENTERPRISE "enterprise" /* meter events */
#define ALARMLOG_KEY_METER "meter"           /* meter events */
#define ALARMLOG_KEY_BUS "bus"               /* bus events (bus_down, bus_restored) */
#define ALARMLOG_KEY_ALARM "alarm"           /* alarm_raised/alarm_cleared: the alarm's name */
#define ALARMLOG_KEY_SINCE "since"           /* when the condition began (Unix ms) */
#define ALARMLOG_KEY_VALUE "value"           /* alarm_raised: the reading */
#define ALARMLOG_KEY_THRESHOLD "threshold"   /* alarm_raised: the limit crossed */

/* Event types: the first three open a row, the last three close it. */
#define ALARMLOG_EV_ALARM_RAISED "alarm_raised"
#define ALARMLOG_EV_COMM_LOST "comm_lost"
#define ALARMLOG_EV_BUS_DOWN "bus_down"
#define ALARMLOG_EV_ALARM_CLEARED "alarm_cleared"
#define ALARMLOG_EV_COMM_RESTORED "comm_restored"
#define ALARMLOG_EV_BUS_RESTORED "bus_restored"

/* The migration step that creates the table, its index and the triggers
 * (schema version 2 -> 3). Never edit it: databases in the field ran it. */
extern const char alarmlog_schema_v3[];

/* An open alarm (cleared_ts NULL). Strings are valid during the callback
 * only. alarm is the alarm's name, "comm_lost" or "bus_down"; enterprise
 * and meter are "" on bus rows, bus is "" on meter rows. */
struct alarmlog_open {
    const char *enterprise, *meter, *bus, *alarm;
    int64_t since;      /* the condition's start, else when it was raised (Unix ms) */
};

/* Prepares the readers on the store's connection (store_db()), which stays
 * the caller's. 0 and *ret, or -EIO (no alarms table). */
int alarmlog_attach(sqlite3 *db, struct alarmlog **ret);
/* NULL is a no-op. */
void alarmlog_free(struct alarmlog *a);

/* Calls cb for each open alarm, oldest first; cb returning non-zero stops.
 * 0 or -EIO. */
int alarmlog_each_open(struct alarmlog *a, int (*cb)(void *ud, const struct alarmlog_open *o),
                       void *ud);

/* The same for one meter: its own open alarms and its bus's bus_down. */
int alarmlog_each_open_of_meter(struct alarmlog *a, const char *enterprise, const char *meter,
                                const char *bus,
                                int (*cb)(void *ud, const struct alarmlog_open *o), void *ud);

/* A row of the history, open or closed. Strings as in alarmlog_open. */
struct alarmlog_row {
    int64_t id;
    const char *enterprise, *meter, *bus, *alarm;
    int64_t since;       /* the condition's start, else when it was raised */
    int64_t raised_ts;
    int64_t cleared_ts;  /* 0 while open */
};

/* Calls cb for the 'n' newest rows, newest first (the dashboard's event
 * list); cb returning non-zero stops. 0 or -EIO. */
int alarmlog_each_recent(struct alarmlog *a, int n,
                         int (*cb)(void *ud, const struct alarmlog_row *r), void *ud);
