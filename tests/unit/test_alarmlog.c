/*
 * test_alarmlog.c - the alarm history on a real store: event messages added
 * to the outbox open and close rows through the triggers (keys and type
 * names of storage/alarmlog.h), once per open condition, only on the events
 * topic and with valid JSON, with their transaction; the readers list the
 * open alarms, all of them or one meter's with its bus's outage.
 */
#include "storage/alarmlog.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS "park/gw1/events"

struct got {
    size_t n;
    char what[8][96];     /* "enterprise/meter/bus/alarm@since" */
    size_t stop_after;    /* 0: never */
};

static int collect(void *ud, const struct alarmlog_open *o)
{
    struct got *g = ud;
    if (g->n < 8)
        snprintf(g->what[g->n], sizeof(g->what[0]), "%s/%s/%s/%s@%lld", o->enterprise, o->meter,
                 o->bus, o->alarm, (long long)o->since);
    g->n++;
    return g->stop_after && g->n >= g->stop_after;
}

/* Adds one message in a transaction of its own (rolled back if !commit). */
static void add(struct store *s, struct outbox *ob, const char *topic, const char *payload,
                bool commit)
{
    int64_t seq;
    CHECK_INT(store_begin(s), 0);
    CHECK_INT(outbox_add(ob, topic, payload, 1, false, 5000, &seq), 0);
    if (commit)
        CHECK_INT(store_commit(s), 0);
    else
        store_rollback(s);
}

/* A meter event as the poller builds it (payload_event's "ts" and "type",
 * then the keys the history reads). */
static void meter_event(struct store *s, struct outbox *ob, const char *type, const char *meter,
                        const char *alarm, int64_t ts, int64_t since)
{
    char p[512];
    int w = snprintf(p, sizeof(p),
                     "{\"" ALARMLOG_KEY_TS "\":%lld,\"" ALARMLOG_KEY_TYPE "\":\"%s\",\""
                     ALARMLOG_KEY_ENTERPRISE "\":\"e1\",\"" ALARMLOG_KEY_METER "\":\"%s\",\""
                     ALARMLOG_KEY_BUS "\":\"rs485-a\"",
                     (long long)ts, type, meter);
    if (alarm)
        w += snprintf(p + w, sizeof(p) - (size_t)w,
                      ",\"" ALARMLOG_KEY_ALARM "\":\"%s\",\"" ALARMLOG_KEY_VALUE "\":12.5,\""
                      ALARMLOG_KEY_THRESHOLD "\":50.0",
                      alarm);
    if (since)
        w += snprintf(p + w, sizeof(p) - (size_t)w, ",\"" ALARMLOG_KEY_SINCE "\":%lld",
                      (long long)since);
    snprintf(p + w, sizeof(p) - (size_t)w, "}");
    add(s, ob, EVENTS, p, true);
}

static void bus_event(struct store *s, struct outbox *ob, const char *type, int64_t ts)
{
    char p[256];
    snprintf(p, sizeof(p),
             "{\"" ALARMLOG_KEY_TS "\":%lld,\"" ALARMLOG_KEY_TYPE "\":\"%s\",\"" ALARMLOG_KEY_BUS
             "\":\"rs485-a\",\"" ALARMLOG_KEY_SINCE "\":%lld,\"meters\":2}",
             (long long)ts, type, (long long)ts - 100);
    add(s, ob, EVENTS, p, true);
}

int main(void)
{
    const char *tmp = getenv("PARKGW_TEST_TMP");
    const char *dir = tmp && *tmp ? tmp : "/tmp";
    mkdir(dir, 0755);
    char *path = xasprintf("%s/test_alarmlog.%d.db", dir, (int)getpid());
    char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);

    struct store *s = NULL;
    struct outbox *ob = NULL;
    struct alarmlog *al = NULL;
    char err[512] = "";
    CHECK_INT(store_open(path, false, &s, err, sizeof(err)), 0);
    if (!s)
        return check_done();
    CHECK_INT(outbox_attach(store_db(s), &ob), 0);
    CHECK_INT(alarmlog_attach(store_db(s), &al), 0);
    if (!ob || !al)
        return check_done();

    struct got g = {0};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 0);

    /* raised: a supply loss on m1 (twice: one row), comm lost on m2 (no
     * since: the raise time), the bus down; ignored: another topic, a
     * payload that is not JSON, a rolled-back event */
    meter_event(s, ob, ALARMLOG_EV_ALARM_RAISED, "m1", "supply_lost", 1000, 900);
    meter_event(s, ob, ALARMLOG_EV_ALARM_RAISED, "m1", "supply_lost", 1100, 1050);
    meter_event(s, ob, ALARMLOG_EV_COMM_LOST, "m2", NULL, 2000, 0);
    bus_event(s, ob, ALARMLOG_EV_BUS_DOWN, 3000);
    add(s, ob, "park/gw1/summary",
        "{\"ts\":1,\"type\":\"alarm_raised\",\"enterprise\":\"e1\",\"meter\":\"m3\","
        "\"alarm\":\"x\"}", true);
    add(s, ob, EVENTS, "not json {", true);
    add(s, ob, EVENTS,
        "{\"ts\":1,\"type\":\"alarm_raised\",\"enterprise\":\"e1\",\"meter\":\"m4\","
        "\"alarm\":\"x\"}", false);

    g = (struct got){0};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 3);
    CHECK_STR(g.what[0], "e1/m1//supply_lost@900");
    CHECK_STR(g.what[1], "e1/m2//comm_lost@2000");
    CHECK_STR(g.what[2], "//rs485-a/bus_down@2900");

    /* one meter: its own and its bus's outage, not another bus's */
    g = (struct got){0};
    CHECK_INT(alarmlog_each_open_of_meter(al, "e1", "m1", "rs485-a", collect, &g), 0);
    CHECK_INT(g.n, 2);
    CHECK_STR(g.what[0], "e1/m1//supply_lost@900");
    CHECK_STR(g.what[1], "//rs485-a/bus_down@2900");
    g = (struct got){0};
    CHECK_INT(alarmlog_each_open_of_meter(al, "e1", "m2", "rmu-1", collect, &g), 0);
    CHECK_INT(g.n, 1);
    CHECK_STR(g.what[0], "e1/m2//comm_lost@2000");

    /* the callback stops the scan */
    g = (struct got){.stop_after = 1};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 1);

    /* cleared: each by its own closing event */
    meter_event(s, ob, ALARMLOG_EV_ALARM_CLEARED, "m1", "supply_lost", 4000, 900);
    g = (struct got){0};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 2);
    meter_event(s, ob, ALARMLOG_EV_COMM_RESTORED, "m2", NULL, 5000, 2000);
    bus_event(s, ob, ALARMLOG_EV_BUS_RESTORED, 6000);
    g = (struct got){0};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 0);

    /* raised again after the clear: a new row */
    meter_event(s, ob, ALARMLOG_EV_ALARM_RAISED, "m1", "supply_lost", 7000, 6900);
    g = (struct got){0};
    CHECK_INT(alarmlog_each_open(al, collect, &g), 0);
    CHECK_INT(g.n, 1);
    CHECK_STR(g.what[0], "e1/m1//supply_lost@6900");

    alarmlog_free(al);
    alarmlog_free(NULL);
    outbox_free(ob);
    store_close(s);
    unlink(path);
    unlink(wal);
    unlink(shm);
    free(path);
    free(wal);
    free(shm);
    return check_done();
}
