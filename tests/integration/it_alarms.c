/*
 * it_alarms.c - outage detection end to end: mosquitto, parkgw-sim and
 * `parkgw run` with 1 s polls. The simulator's control channel switches a
 * meter's supply off (supply_lost on its state topic within `for` + one
 * interval while its live values keep coming; cleared when back), silences
 * it (comm_lost, never supply_lost; comm_restored), and silences a whole bus
 * (exactly one bus_down, no per-meter comm_lost). Events on P/events, rows
 * in the alarms table, `parkgw status` and the retained state topics. Each
 * step waits on a message, a log line or a status output with a deadline.
 */
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 7
/* generic-electricity: supply_lost below 30 V for 5 s. */
#define SUPPLY_FOR_MS 5000
#define INTERVAL_MS 1000
#define BASE "park/algw"
#define EVENTS BASE "/events"
#define E1_STATE BASE "/alpha/electricity/e1/state"

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"algw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-algw\";\n"
        "         topic_prefix = \"park\"; summary_interval = 60; };\n"
        "buses = (\n"
        "  { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 300; },\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 300; }\n"
        ");\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"alpha\"; name = \"Alpha\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"g1\"; utility = \"gas\"; bus = \"line-a\"; unit_id = 21;\n"
        "      profile = \"generic-gas\"; interval = 2; } ); },\n"
        "  { id = \"beta\"; name = \"Beta\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; } ); }\n"
        ");\n",
        dir, mqtt_port, sim_port, sim_port);
}

/* Does message payload p (an event) match type and, where non-NULL, the
 * enterprise/meter/bus/alarm fields? */
static bool event_matches(const char *p, const char *type, const char *ent, const char *meter,
                          const char *bus, const char *alarm)
{
    json_t *root = json_loads(p, 0, NULL);
    if (!root)
        return false;
    struct {
        const char *key, *want;
    } want[] = {{"type", type}, {"enterprise", ent}, {"meter", meter}, {"bus", bus},
                {"alarm", alarm}};
    bool ok = true;
    for (size_t i = 0; i < ARRAY_SIZE(want) && ok; i++) {
        if (!want[i].want)
            continue;
        const char *got = json_string_value(json_object_get(root, want[i].key));
        ok = got && strcmp(got, want[i].want) == 0;
    }
    json_decref(root);
    return ok;
}

/* Index of the first matching event at index >= from, waiting up to
 * timeout_ms; -1 if none. */
static long wait_event(struct h_sub *s, size_t from, int timeout_ms, const char *type,
                       const char *ent, const char *meter, const char *bus, const char *alarm)
{
    int64_t end = now_mono_ms() + timeout_ms;
    size_t i = from;
    for (;;) {
        for (size_t n = h_sub_count(s); i < n; i++) {
            struct h_msg m;
            if (!h_sub_get(s, i, &m))
                continue;
            bool hit = strcmp(m.topic, EVENTS) == 0 &&
                       event_matches(m.payload, type, ent, meter, bus, alarm);
            h_msg_free(&m);
            if (hit)
                return (long)i;
        }
        if (now_mono_ms() >= end)
            return -1;
        sleep_ms(50);
    }
}

/* Matching events in [from, to). */
static size_t count_events(struct h_sub *s, size_t from, size_t to, const char *type,
                           const char *ent, const char *meter, const char *bus)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        struct h_msg m;
        if (!h_sub_get(s, i, &m))
            continue;
        n += strcmp(m.topic, EVENTS) == 0 && event_matches(m.payload, type, ent, meter, bus, NULL);
        h_msg_free(&m);
    }
    return n;
}

/* Messages on topic (payload containing needle, if given) in [from, to). */
static size_t count_topic(struct h_sub *s, size_t from, size_t to, const char *topic,
                          const char *needle)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        struct h_msg m;
        if (!h_sub_get(s, i, &m))
            continue;
        n += strcmp(m.topic, topic) == 0 && (!needle || strstr(m.payload, needle));
        h_msg_free(&m);
    }
    return n;
}

static int64_t msg_rx(struct h_sub *s, long i)
{
    struct h_msg m;
    if (i < 0 || !h_sub_get(s, (size_t)i, &m))
        return 0;
    int64_t rx = m.rx_ms;
    h_msg_free(&m);
    return rx;
}

static struct h_park pk;
static struct h_sub *sub;
static const char *const states[] = {E1_STATE, BASE "/beta/electricity/e1/state",
                                     BASE "/alpha/water/w1/state", BASE "/alpha/gas/g1/state"};

/* `parkgw status` output, asked again until it contains 'needle'. */
struct status_want {
    const char *needle;
    char *out;
};

static bool status_has(void *ud)
{
    struct status_want *w = ud;
    char *argv[] = {(char *)pk.parkgw, "status", "-c", pk.gw_cfg, NULL};
    char *err = NULL;
    free(w->out);
    w->out = NULL;
    int st = h_run(argv, &w->out, &err, 10000);
    free(err);
    return st == 0 && w->out && strstr(w->out, w->needle);
}

/* `parkgw status` until its output contains needle (the writer commits
 * about once a second); *ret_out is the last output (caller frees). */
static bool status_shows(const char *needle, char **ret_out)
{
    struct status_want w = {.needle = needle};
    bool ok = h_wait_until(status_has, &w, 5000);
    *ret_out = w.out;
    return ok;
}

/* `parkgw status --format json`, parsed; NULL when it failed. */
static json_t *status_json(const char *parkgw, const char *cfg)
{
    char *argv[] = {(char *)parkgw, "status", "-c", (char *)cfg, "--format", "json", NULL};
    char *out = NULL, *err = NULL;
    int st = h_run(argv, &out, &err, 10000);
    json_error_t je;
    json_t *doc = st == 0 && out ? json_loads(out, 0, &je) : NULL;
    if (!doc)
        fprintf(stderr, "status --format json: exit %d, %s\n%s%s\n", st,
                out ? je.text : "no output", out ? out : "", err ? err : "");
    free(out);
    free(err);
    return doc;
}

/* `parkgw status --format json`, asked again until ENT/ID's state is
 * 'state' (or, with state NULL, until the meter carries its values). */
struct json_want {
    const char *ent, *id, *state;
    json_t *doc;
};

static bool status_json_is(void *ud)
{
    struct json_want *w = ud;
    json_decref(w->doc);
    w->doc = status_json(pk.parkgw, pk.gw_cfg);
    json_t *m = h_status_meter(w->doc, w->ent, w->id);
    if (!w->state)
        return json_is_object(json_object_get(m, "values"));
    const char *s = json_string_value(json_object_get(m, "state"));
    return s && strcmp(s, w->state) == 0;
}

/* The document (caller json_decref) once the condition holds, else NULL. */
static json_t *status_json_wait(const char *ent, const char *id, const char *state)
{
    struct json_want w = {.ent = ent, .id = id, .state = state};
    if (h_wait_until(status_json_is, &w, 10000))
        return w.doc;
    json_decref(w.doc);
    return NULL;
}

/* Every meter starts ok on its state topic. The JSON status: every meter
 * of the config, ok, with a recent last reading; the daemon's counters
 * (their file is rewritten every 5 s) with the last values; database and
 * outbox parts. */
static bool scenario_all_ok(void)
{
    for (size_t k = 0; k < ARRAY_SIZE(states); k++)
        if (h_sub_wait(sub, 0, states[k], "\"state\":\"ok\"", 10000) < 0) {
            fprintf(stderr, "no ok state on %s\n", states[k]);
            CHECK(!"initial ok state");
        }
    if (check_failed)
        return false;
    json_t *doc = status_json_wait("beta", "e1", NULL);
    CHECK(doc != NULL);
    static const char *const meters[][3] = {{"alpha", "e1", "electricity"},
                                            {"alpha", "w1", "water"},
                                            {"alpha", "g1", "gas"},
                                            {"beta", "e1", "electricity"}};
    size_t total = 0, e;
    json_t *eo;
    json_array_foreach(json_object_get(doc, "enterprises"), e, eo)
        total += json_array_size(json_object_get(eo, "meters"));
    CHECK_INT(total, 4);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "meters"), "total")), 4);
    CHECK_STR(json_string_value(json_object_get(doc, "gateway")), "algw");
    for (size_t k = 0; k < ARRAY_SIZE(meters); k++) {
        json_t *m = h_status_meter(doc, meters[k][0], meters[k][1]);
        CHECK(m != NULL);
        if (!m)
            continue;
        CHECK_STR(json_string_value(json_object_get(m, "state")), "ok");
        CHECK_STR(json_string_value(json_object_get(m, "utility")), meters[k][2]);
        CHECK_INT(json_array_size(json_object_get(m, "alarms")), 0);
        int64_t age = json_integer_value(json_object_get(m, "age_s"));
        CHECK(json_is_integer(json_object_get(m, "age_s")) && age >= 0 && age <= 10);
        json_t *b = json_object_get(m, "billing");
        CHECK(json_is_number(json_object_get(b, "value")));
        CHECK(json_integer_value(json_object_get(json_object_get(m, "polls"), "polls_ok")) > 0);
    }
    json_t *v =
        json_object_get(json_object_get(h_status_meter(doc, "beta", "e1"), "values"), "points");
    CHECK(json_is_number(json_object_get(v, "voltage_a_v")));
    CHECK(json_is_number(json_object_get(v, "energy_import_kwh")));
    CHECK(json_integer_value(json_object_get(json_object_get(doc, "database"), "bytes")) > 0);
    CHECK(json_is_integer(json_object_get(json_object_get(doc, "database"), "samples")));
    CHECK(json_is_integer(json_object_get(json_object_get(doc, "outbox"), "messages")));
    json_t *d = json_object_get(doc, "daemon");
    CHECK(json_is_object(d));
    CHECK(json_is_true(json_object_get(json_object_get(d, "mqtt"), "connected")));
    json_decref(doc);
    return !check_failed;
}

/* Supply off: supply_lost on the state topic within `for` + one interval
 * (+ 1.5 s for the poll itself and delivery), not before `for`; the
 * alarm_raised event; `parkgw status` (table and JSON, from the alarms
 * table) shows it with its start; the meter kept answering (live values
 * every second), no comm_lost. */
static void scenario_supply_lost(void)
{
    size_t mark = h_sub_count(sub);
    int64_t t0 = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "supply alpha/e1 off"));
    long si = h_sub_wait(sub, mark, E1_STATE, "\"state\":\"supply_lost\"", 15000);
    CHECK(si >= 0);
    int64_t took = msg_rx(sub, si) - t0;
    printf("supply_lost on the state topic %lld ms after the supply went off (limit %d)\n",
           (long long)took, SUPPLY_FOR_MS + INTERVAL_MS + 1500);
    CHECK(si >= 0 && took <= SUPPLY_FOR_MS + INTERVAL_MS + 1500);
    /* not before `for` (less the 250 ms poll-jitter tolerance) */
    CHECK(si >= 0 && took >= SUPPLY_FOR_MS - 250);
    long ri = wait_event(sub, mark, 5000, "alarm_raised", "alpha", "e1", NULL, "supply_lost");
    CHECK(ri >= 0);
    struct h_msg msg;
    if (si >= 0 && h_sub_get(sub, (size_t)si, &msg)) {
        CHECK_CONTAINS(msg.payload, "\"alarms\":[\"supply_lost\"]");
        h_msg_free(&msg);
    }
    char *out = NULL;
    CHECK(status_shows("supply_lost since", &out));
    if (out) {
        char *line = strstr(out, "alpha/e1");
        CHECK(line != NULL);
        if (line) {
            char *eol = strchr(line, '\n');
            if (eol)
                *eol = '\0';
            CHECK_CONTAINS(line, "supply_lost");
        }
    }
    free(out);
    json_t *doc = status_json_wait("alpha", "e1", "supply_lost");
    CHECK(doc != NULL);
    if (doc) {
        json_t *m = h_status_meter(doc, "alpha", "e1");
        json_t *a = json_array_get(json_object_get(m, "alarms"), 0);
        CHECK_STR(json_string_value(json_object_get(a, "alarm")), "supply_lost");
        int64_t since = json_integer_value(json_object_get(a, "since"));
        CHECK(since >= t0 - 1000 && since <= now_real_ms());
        CHECK(json_integer_value(json_object_get(m, "since")) >= t0 - 1000);
        CHECK_STR(json_string_value(json_object_get(h_status_meter(doc, "beta", "e1"), "state")),
                  "ok");
        CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "meters"), "down")), 1);
    }
    json_decref(doc);
    size_t now_n = h_sub_count(sub);
    size_t lives = count_topic(sub, mark, now_n, BASE "/alpha/electricity/e1/live", NULL);
    printf("alpha/e1: %zu live messages during the supply outage\n", lives);
    CHECK(lives >= 4);
    CHECK_INT(count_topic(sub, mark, now_n, E1_STATE, "comm_lost"), 0);
    CHECK_INT(count_events(sub, mark, now_n, "comm_lost", "alpha", "e1", NULL), 0);
}

/* Supply back: alarm_cleared, state ok. */
static void scenario_supply_back(void)
{
    size_t mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "supply alpha/e1 on"));
    CHECK(h_sub_wait(sub, mark, E1_STATE, "\"state\":\"ok\"", 5000) >= 0);
    CHECK(wait_event(sub, mark, 5000, "alarm_cleared", "alpha", "e1", NULL, "supply_lost") >= 0);
}

/* The meter stops answering: comm_lost (its bus is alive: beta/e1
 * answers), never supply_lost, no bus_down; then comm_restored. 3 failed
 * polls at 1 s plus one backoff second, 300 ms timeouts: about 4-5 s. */
static void scenario_comm_lost_and_restored(void)
{
    size_t mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "fault alpha/e1 noreply"));
    CHECK(h_sub_wait(sub, mark, E1_STATE, "\"state\":\"comm_lost\"", 10000) >= 0);
    CHECK(wait_event(sub, mark, 10000, "comm_lost", "alpha", "e1", "rmu-1", NULL) >= 0);
    size_t now_n = h_sub_count(sub);
    CHECK_INT(count_topic(sub, mark, now_n, E1_STATE, "supply_lost"), 0);
    CHECK_INT(count_events(sub, mark, now_n, "alarm_raised", "alpha", "e1", NULL), 0);
    CHECK_INT(count_events(sub, mark, now_n, "bus_down", NULL, NULL, "rmu-1"), 0);
    mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "fault alpha/e1 none"));
    /* Backoff after 1 + 1 + 2 s of loss is at most 4-8 s. */
    CHECK(h_sub_wait(sub, mark, E1_STATE, "\"state\":\"ok\"", 15000) >= 0);
    CHECK(wait_event(sub, mark, 5000, "comm_restored", "alpha", "e1", NULL, NULL) >= 0);
}

/* The whole of line-a goes silent: one bus_down, no comm_lost per meter
 * (their state topics say comm_lost); further failed polls of both meters
 * (the -v debug lines) add no event (the poller logs every event it
 * raises, at once); `parkgw status` shows the bus down; then one
 * bus_restored and no comm_restored. */
static void scenario_bus_down_one_event(void)
{
    size_t mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "fault alpha/w1 noreply"));
    CHECK(h_sim_do(&pk.sim, "fault alpha/g1 noreply"));
    long bi = wait_event(sub, mark, 15000, "bus_down", NULL, NULL, "line-a", NULL);
    CHECK(bi >= 0);
    CHECK(h_sub_wait(sub, mark, BASE "/alpha/water/w1/state", "comm_lost", 5000) >= 0);
    CHECK(h_sub_wait(sub, mark, BASE "/alpha/gas/g1/state", "comm_lost", 5000) >= 0);
    size_t w1_fails = h_log_count(&pk.gw, "meter alpha/w1: read failed again");
    size_t g1_fails = h_log_count(&pk.gw, "meter alpha/g1: read failed again");
    CHECK(h_wait_log(&pk.gw, "meter alpha/w1: read failed again", w1_fails + 1, 10000));
    CHECK(h_wait_log(&pk.gw, "meter alpha/g1: read failed again", g1_fails + 1, 10000));
    /* the journal tells events as sentences: type first, then who */
    CHECK_INT(h_log_count(&pk.gw, "bus_down: bus line-a,"), 1);
    CHECK_INT(h_log_count(&pk.gw, "comm_lost: Alpha (alpha/w1, water)"), 0);
    CHECK_INT(h_log_count(&pk.gw, "comm_lost: Alpha (alpha/g1, gas)"), 0);
    size_t now_n = h_sub_count(sub);
    CHECK_INT(count_events(sub, mark, now_n, "bus_down", NULL, NULL, NULL), 1);
    CHECK_INT(count_events(sub, mark, now_n, "comm_lost", NULL, NULL, NULL), 0);
    char *out = NULL;
    CHECK(status_shows("bus_down since", &out));
    free(out);
    mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "fault alpha/w1 none"));
    CHECK(h_sim_do(&pk.sim, "fault alpha/g1 none"));
    CHECK(wait_event(sub, mark, 15000, "bus_restored", NULL, NULL, "line-a", NULL) >= 0);
    CHECK(h_sub_wait(sub, mark, BASE "/alpha/water/w1/state", "\"state\":\"ok\"", 15000) >= 0);
    CHECK(h_sub_wait(sub, mark, BASE "/alpha/gas/g1/state", "\"state\":\"ok\"", 15000) >= 0);
    now_n = h_sub_count(sub);
    CHECK_INT(count_events(sub, mark, now_n, "bus_restored", NULL, NULL, NULL), 1);
    CHECK_INT(count_events(sub, mark, now_n, "comm_restored", NULL, NULL, NULL), 0);
}

/* Six events in all (raised, cleared, comm_lost, comm_restored, bus_down,
 * bus_restored); they carry a strictly increasing seq once the outbox
 * publishes them (checked where present). */
static void scenario_event_seqs_increase(void)
{
    size_t total = h_sub_count(sub), events = 0, with_seq = 0;
    long long last = -1;
    struct h_msg msg;
    for (size_t i = 0; i < total; i++) {
        if (!h_sub_get(sub, i, &msg))
            continue;
        if (strcmp(msg.topic, EVENTS) == 0) {
            events++;
            json_t *root = json_loads(msg.payload, 0, NULL);
            json_t *seq = root ? json_object_get(root, "seq") : NULL;
            if (json_is_integer(seq)) {
                long long v = json_integer_value(seq);
                if (v <= last)
                    fprintf(stderr, "seq %lld after %lld\n", v, last);
                CHECK(v > last);
                last = v;
                with_seq++;
            }
            json_decref(root);
        }
        h_msg_free(&msg);
    }
    printf("%zu events on %s, %zu with seq\n", events, EVENTS, with_seq);
    CHECK_INT(events, 6);
}

/* A late subscriber gets every meter's retained state (ok, with since). */
static void scenario_late_subscriber_gets_states(void)
{
    struct h_sub *late = h_sub_new(pk.mport, "it-alarms-late", BASE "/+/+/+/state");
    struct h_msg msg;
    for (size_t k = 0; k < ARRAY_SIZE(states); k++) {
        long li = h_sub_wait(late, 0, states[k], "\"state\":\"ok\"", 5000);
        CHECK(li >= 0);
        if (li >= 0 && h_sub_get(late, (size_t)li, &msg)) {
            CHECK(msg.retained);
            CHECK_CONTAINS(msg.payload, "\"since\":");
            h_msg_free(&msg);
        }
    }
    h_sub_free(late);
}

/* Clean stop, then the alarm history in SQLite: every alarm opened above
 * is closed, with raise <= clear; no row for the meters a bus_down
 * covered. */
static void scenario_alarm_history_in_sqlite(void)
{
    CHECK(h_park_stop_gw(&pk));
    char *db_path = xasprintf("%s/parkgw.db", pk.dir);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    static const char *const want[][4] = {
        {"alpha", "e1", "", "supply_lost"},
        {"alpha", "e1", "", "comm_lost"},
        {"", "", "line-a", "bus_down"},
    };
    sqlite3_stmt *q = NULL;
    CHECK_INT(sqlite3_prepare_v2(db,
                                 "SELECT count(*), min(raised_ts <= cleared_ts),"
                                 " sum(cleared_ts IS NULL) FROM alarms WHERE enterprise = ?1"
                                 " AND meter = ?2 AND bus = ?3 AND alarm = ?4",
                                 -1, &q, NULL),
              SQLITE_OK);
    for (size_t k = 0; q && k < ARRAY_SIZE(want); k++) {
        sqlite3_reset(q);
        for (int c = 0; c < 4; c++)
            sqlite3_bind_text(q, c + 1, want[k][c], -1, SQLITE_STATIC);
        CHECK_INT(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int(q, 0) != 1)
            fprintf(stderr, "alarms rows for %s/%s%s %s: %d\n", want[k][0], want[k][1],
                    want[k][2], want[k][3], sqlite3_column_int(q, 0));
        CHECK_INT(sqlite3_column_int(q, 0), 1);
        CHECK_INT(sqlite3_column_int(q, 1), 1);
        CHECK_INT(sqlite3_column_int(q, 2), 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    CHECK_INT(h_db_int(db_path, "SELECT count(*) FROM alarms WHERE meter IN ('w1', 'g1')"), 0);
    free(db_path);
}

int main(void)
{
    h_park_start(&pk, "it_alarms", make_config, SEED);
    sub = h_sub_new(pk.mport, "it-alarms-sub", BASE "/#");
    h_park_run(&pk, true);
    if (scenario_all_ok()) {
        scenario_supply_lost();
        scenario_supply_back();
        scenario_comm_lost_and_restored();
        scenario_bus_down_one_event();
        scenario_event_seqs_increase();
        scenario_late_subscriber_gets_states();
        scenario_alarm_history_in_sqlite();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    return check_done();
}
