/*
 * it_supply.c - supply outages of water and wastewater end to end:
 * mosquitto, parkgw-sim and `parkgw run` with 1 s polls. A water main loses
 * its supply (the simulator's `supply ENT/METER off`): its pressure drops,
 * the generic water profile's pressure rule makes the meter's state
 * supply_lost, an alarm_raised event follows, and both clear when the supply
 * returns. Two flow-only TUF-2000M discharge meters lose their flow at the
 * same moment: the one whose no_flow schedule covers the current local time
 * raises no_flow after its window, the one whose plant is idle now (hours
 * elsewhere in the day) raises nothing however many polls pass. A 10 s
 * meter with comm_timeout = 2 that stops answering is comm_lost within one
 * interval and a 1 s retry (three failed polls would take 20 s more). Each
 * step waits on a message with a deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 11
#define BASE "park/sugw"
#define EVENTS BASE "/events"
#define W1_STATE BASE "/main/water/w1/state"
#define WW1_STATE BASE "/plant/wastewater/ww1/state"
#define WW2_STATE BASE "/plant/wastewater/ww2/state"
#define WW2_LIVE BASE "/plant/wastewater/ww2/live"
/* The meters' own windows (meter-level alarm changes): supply_lost 2 s,
 * no_flow 3 s; polls every second. */
#define SUPPLY_FOR_MS 2000
#define NO_FLOW_FOR_MS 3000
#define INTERVAL_MS 1000
#define SLOW_INTERVAL_MS 10000
#define SLOW_COMM_TIMEOUT_MS 2000

/* "HH:MM-HH:MM" of local minutes [from, to) (mod 1440) into buf. */
static void span(char *buf, size_t len, int from, int to)
{
    from = ((from % 1440) + 1440) % 1440;
    to = ((to % 1440) + 1440) % 1440;
    snprintf(buf, len, "%02d:%02d-%02d:%02d", from / 60, from % 60, to / 60, to % 60);
}

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    /* The gateway's zone is the test's (main sets TZ): the local minute
     * now decides which schedule covers the run. */
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    int m = tm.tm_hour * 60 + tm.tm_min;
    char in[16], out[16];
    span(in, sizeof in, m - 60, m + 120);   /* working now, for 2 h more */
    span(out, sizeof out, m + 180, m + 240); /* idle now: works later */
    return xasprintf(
        "gateway = { id = \"sugw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-sugw\";\n"
        "         topic_prefix = \"park\"; summary_interval = 60; };\n"
        "buses = (\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 300; }\n"
        ");\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/tuf-2000m.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"main\"; name = \"湘张大道供水主管\"; meters = (\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1;\n"
        "      alarms = ( { name = \"supply_lost\"; for = %d; } ); },\n"
        "    { id = \"w2\"; utility = \"water\"; bus = \"line-a\"; unit_id = 14;\n"
        "      profile = \"generic-water\"; interval = %d; comm_timeout = %d; } ); },\n"
        "  { id = \"plant\"; name = \"湖南润宇塑业有限公司\"; meters = (\n"
        "    { id = \"ww1\"; utility = \"wastewater\"; bus = \"line-a\"; unit_id = 12;\n"
        "      profile = \"tuf-2000m\"; interval = 1;\n"
        "      alarms = ( { name = \"no_flow\"; for = %d; hours = [ \"%s\" ]; } ); },\n"
        "    { id = \"ww2\"; utility = \"wastewater\"; bus = \"line-a\"; unit_id = 13;\n"
        "      profile = \"tuf-2000m\"; interval = 1;\n"
        "      alarms = ( { name = \"no_flow\"; for = %d; hours = [ \"%s\" ]; } ); } ); }\n"
        ");\n",
        dir, mqtt_port, sim_port, SUPPLY_FOR_MS / 1000, SLOW_INTERVAL_MS / 1000,
        SLOW_COMM_TIMEOUT_MS / 1000, NO_FLOW_FOR_MS / 1000, in,
        NO_FLOW_FOR_MS / 1000, out);
}

static struct h_park pk;
static struct h_sub *sub;

/* Reception time of message i (0 when gone). */
static int64_t rx_of(size_t i)
{
    struct h_msg m;
    if (!h_sub_get(sub, i, &m))
        return 0;
    int64_t t = m.rx_ms;
    h_msg_free(&m);
    return t;
}

/* The payload of message i contains needle. */
static bool has(long i, const char *needle)
{
    struct h_msg m;
    if (i < 0 || !h_sub_get(sub, (size_t)i, &m))
        return false;
    bool r = strstr(m.payload, needle) != NULL;
    h_msg_free(&m);
    return r;
}

/* Every meter published its first state (ok). */
static bool scenario_all_ok(void)
{
    const char *states[] = {W1_STATE, WW1_STATE, WW2_STATE};
    for (size_t i = 0; i < ARRAY_SIZE(states); i++)
        CHECK(h_sub_wait(sub, 0, states[i], "\"state\":\"ok\"", 20000) >= 0);
    return !check_failed;
}

/* The water main's supply off: pressure 0, supply_lost on the state topic
 * within its 2 s window + one interval (+ 1.5 s for the poll and delivery),
 * not before the window; alarm_raised supply_lost for main/w1 on P/events;
 * back on: state ok, alarm_cleared. */
static void scenario_water_main_by_pressure(void)
{
    size_t mark = h_sub_count(sub);
    int64_t t0 = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "supply main/w1 off"));
    long si = h_sub_wait(sub, mark, W1_STATE, "\"state\":\"supply_lost\"", 15000);
    CHECK(si >= 0);
    if (si >= 0) {
        int64_t took = rx_of((size_t)si) - t0;
        printf("main/w1: supply_lost on the state topic %lld ms after the supply went off "
               "(window %d ms, limit %d)\n",
               (long long)took, SUPPLY_FOR_MS, SUPPLY_FOR_MS + INTERVAL_MS + 1500);
        CHECK(took <= SUPPLY_FOR_MS + INTERVAL_MS + 1500);
        CHECK(took >= SUPPLY_FOR_MS - 250);
        CHECK(has(si, "\"supply_lost\""));
    }
    long ei = h_sub_wait(sub, mark, EVENTS, "\"alarm\":\"supply_lost\"", 5000);
    CHECK(ei >= 0);
    CHECK(has(ei, "\"type\":\"alarm_raised\""));
    CHECK(has(ei, "\"enterprise\":\"main\""));
    CHECK(has(ei, "\"meter\":\"w1\""));
    CHECK(has(ei, "\"utility\":\"water\""));
    /* The journal tells it as a sentence with the enterprise's name. */
    CHECK(h_wait_log(&pk.gw,
                     "supply_lost raised: 湘张大道供水主管 (main/w1, water): pressure_kpa 0 below 30 "
                     "since ",
                     1, 5000));
    CHECK_INT(h_log_count(&pk.gw, "event {"), 0);

    mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "supply main/w1 on"));
    CHECK(h_sub_wait(sub, mark, W1_STATE, "\"state\":\"ok\"", 10000) >= 0);
    long ci = h_sub_wait(sub, mark, EVENTS, "\"type\":\"alarm_cleared\"", 10000);
    CHECK(ci >= 0);
    CHECK(has(ci, "\"alarm\":\"supply_lost\""));
    CHECK(h_wait_log(&pk.gw, "supply_lost cleared: 湘张大道供水主管 (main/w1, water): pressure_kpa ",
                     1, 5000));
}

/* Both discharge meters lose their flow. ww1 (working hours now) raises
 * no_flow within its window + one interval (+ 1.5 s); its state stays ok
 * with the alarm listed (a flow meter cannot tell a dead main from a
 * stopped plant). ww2 (idle now) published 2 x its window of live values
 * with no flow after that, and raised nothing. Flow back: ww1 cleared. */
static void scenario_no_flow_schedule(void)
{
    size_t mark = h_sub_count(sub);
    int64_t t0 = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "supply plant/ww1 off"));
    CHECK(h_sim_do(&pk.sim, "supply plant/ww2 off"));
    long si = h_sub_wait(sub, mark, WW1_STATE, "\"no_flow\"", 15000);
    CHECK(si >= 0);
    if (si >= 0) {
        int64_t took = rx_of((size_t)si) - t0;
        printf("plant/ww1: no_flow %lld ms after the flow stopped (window %d ms, limit %d)\n",
               (long long)took, NO_FLOW_FOR_MS, NO_FLOW_FOR_MS + INTERVAL_MS + 1500);
        CHECK(took <= NO_FLOW_FOR_MS + INTERVAL_MS + 1500);
        CHECK(took >= NO_FLOW_FOR_MS - 250);
        CHECK(has(si, "\"state\":\"ok\""));
    }
    long ei = h_sub_wait(sub, mark, EVENTS, "\"alarm\":\"no_flow\"", 5000);
    CHECK(ei >= 0);
    CHECK(has(ei, "\"meter\":\"ww1\""));
    CHECK(has(ei, "\"type\":\"alarm_raised\""));

    /* ww2: twice its window of polls after ww1 raised, no flow in them. */
    size_t after = h_sub_count(sub);
    CHECK(h_sub_wait_count(sub, after, WW2_LIVE, "\"flow_m3h\":0.0", 2 * NO_FLOW_FOR_MS / 1000,
                           15000));
    printf("plant/ww2: %zu live messages without flow outside its hours, no alarm\n",
           h_sub_count_topic(sub, mark, WW2_LIVE, "\"flow_m3h\":0.0"));
    CHECK_INT(h_sub_count_topic(sub, mark, WW2_STATE, "no_flow"), 0);
    size_t n_noflow = h_sub_count_topic(sub, mark, EVENTS, "\"alarm\":\"no_flow\"");
    CHECK_INT(n_noflow, 1); /* ww1's only */

    mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "supply plant/ww1 on"));
    CHECK(h_sim_do(&pk.sim, "supply plant/ww2 on"));
    long ci = h_sub_wait(sub, mark, EVENTS, "\"type\":\"alarm_cleared\"", 10000);
    CHECK(ci >= 0);
    CHECK(has(ci, "\"meter\":\"ww1\""));
    CHECK(has(ci, "\"alarm\":\"no_flow\""));
    CHECK(h_sub_wait(sub, mark, WW1_STATE, "\"alarms\":[]", 10000) >= 0);
}

/* main/w2 (10 s polls, comm_timeout 2 s) stops answering: comm_lost on
 * P/events within an interval (the next poll fails), the 1 s early retry
 * and two 300 ms timeouts (+ 1.5 s); back: comm_restored. */
static void scenario_comm_timeout(void)
{
    CHECK(h_sub_wait(sub, 0, BASE "/main/water/w2/live", NULL, 25000) >= 0);
    size_t mark = h_sub_count(sub);
    int64_t t0 = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault main/w2 noreply"));
    long ei = h_sub_wait(sub, mark, EVENTS, "\"type\":\"comm_lost\"", 30000);
    CHECK(ei >= 0);
    if (ei >= 0) {
        int64_t took = rx_of((size_t)ei) - t0;
        int limit = SLOW_INTERVAL_MS + SLOW_COMM_TIMEOUT_MS / 2 + 600 + 1500;
        printf("main/w2: comm_lost %lld ms after it stopped answering (interval %d ms, "
               "comm_timeout %d ms, limit %d)\n",
               (long long)took, SLOW_INTERVAL_MS, SLOW_COMM_TIMEOUT_MS, limit);
        CHECK(took <= limit);
        CHECK(has(ei, "\"meter\":\"w2\""));
    }
    CHECK(h_wait_log(&pk.gw, "comm_lost: 湘张大道供水主管 (main/w2, water) does not answer since ",
                     1, 5000));
    mark = h_sub_count(sub);
    CHECK(h_sim_do(&pk.sim, "fault main/w2 none"));
    long ri = h_sub_wait(sub, mark, EVENTS, "\"type\":\"comm_restored\"", 70000);
    CHECK(ri >= 0);
    CHECK(has(ri, "\"meter\":\"w2\""));
}

/* `parkgw status` heads each enterprise's meters with its registered name. */
static void scenario_status_names(void)
{
    char *argv[] = {(char *)pk.parkgw, "status", "-c", pk.gw_cfg, NULL};
    char *out = NULL, *err = NULL;
    CHECK_INT(h_run(argv, &out, &err, 20000), 0);
    CHECK_CONTAINS(out ? out : "", "\n湘张大道供水主管 (main)\nmain/w1 ");
    CHECK_CONTAINS(out ? out : "", "\n湖南润宇塑业有限公司 (plant)\nplant/ww1 ");
    free(out);
    free(err);
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    h_park_start(&pk, "it_supply", make_config, SEED);
    sub = h_sub_new(pk.mport, "it-supply-sub", BASE "/#");
    h_park_run(&pk, false);
    if (scenario_all_ok()) {
        scenario_water_main_by_pressure();
        scenario_no_flow_schedule();
        scenario_comm_timeout();
        scenario_status_names();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    return check_done();
}
