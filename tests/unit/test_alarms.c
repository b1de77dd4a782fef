/*
 * test_alarms.c - the outage-detection engine (engine/alarms.c) on
 * hand-made poll sequences: delay, hysteresis, clear, comm_lost/restored,
 * supply_lost vs comm_lost, bus_down aggregation, phase_loss and seeding
 * after a restart. Every expected event is worked out in the comments.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/alarms.h"
#include "common/util.h"
#include "tests/unit/check.h"

/* Profile "elec": energy(0) billing, voltage_a_v(1), voltage_b_v(2),
 * voltage_c_v(3); supply_lost below 30 for 5 s, hysteresis 5 (clears at
 * >= 35), as generic-electricity. Profile "wat": total_m3(0), flow_m3h(1);
 * high_flow above 50 for 0 s, hysteresis 10 (clears at <= 40). Profile
 * "elecpt": "elec" with secondary voltages (ratio = "pt"), on e3 behind a
 * 10 kV / 100 V PT (pt_ratio 100). */
static const char *cfg_text =
    "gateway = { id = \"t\"; };\n"
    "storage = { path = \"unused.db\"; };\n"
    "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
    "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
    "profiles = (\n"
    "  { name = \"elec\"; utility = \"electricity\"; points = (\n"
    "      { name = \"energy_import_kwh\"; fc = 3; address = 0; type = \"float32\";\n"
    "        kind = \"counter\"; billing = true; },\n"
    "      { name = \"voltage_a_v\"; fc = 3; address = 10; type = \"float32\"; kind = \"gauge\"; },\n"
    "      { name = \"voltage_b_v\"; fc = 3; address = 12; type = \"float32\"; kind = \"gauge\"; },\n"
    "      { name = \"voltage_c_v\"; fc = 3; address = 14; type = \"float32\"; kind = \"gauge\"; } );\n"
    "    alarms = ( { name = \"supply_lost\"; point = \"voltage_a_v\"; below = 30.0; for = 5;\n"
    "                 hysteresis = 5.0; } ); },\n"
    "  { name = \"wat\"; utility = \"water\"; points = (\n"
    "      { name = \"total_m3\"; fc = 4; address = 0; type = \"uint32\"; kind = \"counter\";\n"
    "        billing = true; },\n"
    "      { name = \"flow_m3h\"; fc = 4; address = 4; type = \"float32\"; kind = \"gauge\"; } );\n"
    "    alarms = ( { name = \"high_flow\"; point = \"flow_m3h\"; above = 50.0; for = 0;\n"
    "                 hysteresis = 10.0; } ); },\n"
    "  { name = \"elecpt\"; utility = \"electricity\"; points = (\n"
    "      { name = \"energy_import_kwh\"; fc = 3; address = 0; type = \"float32\";\n"
    "        kind = \"counter\"; billing = true; ratio = \"pt_ct\"; },\n"
    "      { name = \"voltage_a_v\"; fc = 3; address = 10; type = \"float32\"; ratio = \"pt\"; },\n"
    "      { name = \"voltage_b_v\"; fc = 3; address = 12; type = \"float32\"; ratio = \"pt\"; },\n"
    "      { name = \"voltage_c_v\"; fc = 3; address = 14; type = \"float32\"; ratio = \"pt\"; } );\n"
    "    alarms = ( { name = \"supply_lost\"; point = \"voltage_a_v\"; below = 30.0; for = 5;\n"
    "                 hysteresis = 5.0; } ); },\n"
    "  { name = \"flow\"; utilities = [ \"water\", \"wastewater\" ]; points = (\n"
    "      { name = \"total_m3\"; fc = 4; address = 0; type = \"uint32\"; kind = \"counter\";\n"
    "        billing = true; },\n"
    "      { name = \"flow_m3h\"; fc = 4; address = 4; type = \"float32\"; } );\n"
    "    alarms = ( { name = \"no_flow\"; point = \"flow_m3h\"; below = 0.05; for = 10;\n"
    "                 hours = [ \"08:00-18:00\" ]; } ); }\n"
    ");\n"
    "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
    "  { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1; profile = \"elec\"; interval = 1; },\n"
    "  { id = \"e2\"; utility = \"electricity\"; bus = \"b\"; unit_id = 2; profile = \"elec\"; interval = 1; },\n"
    "  { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 3; profile = \"wat\"; interval = 1; },\n"
    "  { id = \"e3\"; utility = \"electricity\"; bus = \"b\"; unit_id = 4; profile = \"elecpt\"; interval = 1;\n"
    "    pt_ratio = 100.0; ct_ratio = 40.0; },\n"
    "  { id = \"f1\"; utility = \"wastewater\"; bus = \"b\"; unit_id = 5; profile = \"flow\"; interval = 1; },\n"
    "  { id = \"f2\"; utility = \"water\"; bus = \"b\"; unit_id = 6; profile = \"flow\"; interval = 1;\n"
    "    alarms = ( { name = \"no_flow\"; hours = [ \"22:00-06:00\" ]; for = 3; } ) },\n"
    "  { id = \"f3\"; utility = \"water\"; bus = \"b\"; unit_id = 7; profile = \"flow\"; interval = 1;\n"
    "    alarms = ( { name = \"no_flow\"; enabled = false; } ) },\n"
    "  { id = \"c1\"; utility = \"water\"; bus = \"b\"; unit_id = 8; profile = \"wat\"; interval = 30;\n"
    "    comm_timeout = 10; },\n"
    "  { id = \"c2\"; utility = \"water\"; bus = \"b\"; unit_id = 9; profile = \"wat\"; interval = 30;\n"
    "    comm_timeout = 120; },\n"
    "  { id = \"c3\"; utility = \"water\"; bus = \"b\"; unit_id = 10; profile = \"wat\"; interval = 30; }\n"
    "  ); } );\n";

#define MAX_EV 64
struct rec {
    struct alarm_event ev[MAX_EV];
    char alarm[MAX_EV][32];
    size_t n;
};

static void sink(void *ud, const struct alarm_event *ev)
{
    struct rec *r = ud;
    if (r->n >= MAX_EV)
        return;
    r->ev[r->n] = *ev;
    snprintf(r->alarm[r->n], sizeof(r->alarm[0]), "%s", ev->alarm ? ev->alarm : "");
    r->ev[r->n].alarm = r->alarm[r->n];
    r->n++;
}

static size_t count_type(const struct rec *r, enum alarm_event_type t)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->ev[i].type == t;
    return n;
}

static struct config *cfg;
static const struct cfg_meter *E1, *E2, *W1, *E3, *F1, *F2, *F3, *C1, *C2, *C3;

static struct alarms *engine(const struct cfg_meter *const *ms, size_t n, struct rec *r)
{
    struct alarms *a;
    memset(r, 0, sizeof(*r));
    CHECK_INT(alarms_new(cfg, ms, n, 3, sink, r, 0, &a), 0);
    return a;
}

/* energy, va, vb, vc */
static void elec_ok(struct alarms *a, size_t i, int64_t ts, double va, double vb, double vc)
{
    double v[4] = {1000.0, va, vb, vc};
    alarms_poll_ok(a, i, ts, v, NULL);
}

static void water_ok(struct alarms *a, size_t i, int64_t ts, double flow)
{
    double v[2] = {10.0, flow};
    alarms_poll_ok(a, i, ts, v, NULL);
}

static void test_delay_raises_once(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1};
    struct alarms *a = engine(ms, 1, &r);
    struct alarms_view v;
    CHECK_INT(alarms_rule_count(a, 0), 2); /* supply_lost + derived phase_loss */
    CHECK(alarms_any_changed(a));
    CHECK(alarms_take_changed(a, 0));      /* the initial state is published */
    CHECK(!alarms_take_changed(a, 0));
    CHECK(!alarms_any_changed(a));

    /* t=0 s 57 V: ok. t=1..10 s 20 V on all phases: the condition starts
     * at 1000; 6000 - 1000 = 5000 >= 5 s raises at t=6000, exactly once. */
    elec_ok(a, 0, 0, 57, 57, 57);
    CHECK(!alarms_take_changed(a, 0)); /* still ok since 0 */
    for (int64_t t = 1000; t <= 5000; t += 1000)
        elec_ok(a, 0, t, 20, 20, 20);
    CHECK_INT(r.n, 0);
    CHECK(!alarms_take_changed(a, 0));
    elec_ok(a, 0, 6000, 20, 20, 20);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_ALARM_RAISED);
    CHECK_STR(r.ev[0].alarm, "supply_lost");
    CHECK_INT(r.ev[0].ts, 6000);
    CHECK_INT(r.ev[0].since, 1000);
    CHECK_INT(r.ev[0].meter, 0);
    CHECK_NEAR(r.ev[0].value, 20.0, 1e-9);
    CHECK_NEAR(r.ev[0].threshold, 30.0, 1e-9);
    CHECK(alarms_any_changed(a));
    CHECK(alarms_take_changed(a, 0));
    CHECK(!alarms_any_changed(a));
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_SUPPLY_LOST);
    CHECK_STR(meter_state_name(v.state), "supply_lost");
    CHECK_INT(v.since, 1000);
    CHECK_INT(v.n_alarms, 1);
    if (v.n_alarms == 1)
        CHECK_STR(v.alarms[0], "supply_lost");
    for (int64_t t = 7000; t <= 10000; t += 1000)
        elec_ok(a, 0, t, 20, 20, 20);
    CHECK_INT(r.n, 1);
    CHECK_INT(count_type(&r, AEV_COMM_LOST), 0); /* the meter answered all along */

    /* 57 V >= 35: cleared at 11000. */
    elec_ok(a, 0, 11000, 57, 57, 57); /* 57 >= 35: cleared */
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    CHECK_INT(r.ev[1].ts, 11000);
    CHECK_NEAR(r.ev[1].value, 57.0, 1e-9);

    /* Poll-start jitter: the first sample below came 3 ms late (21003),
     * the sixth on time (26000): 4997 ms, within the 250 ms tolerance (a
     * quarter of the 1 s interval, capped at 250 ms) of 5 s: raised at
     * 26000, not a poll later. 4700 ms (a sample at 25703) is not enough. */
    elec_ok(a, 0, 20000, 57, 57, 57);
    CHECK_INT(r.n, 2);
    elec_ok(a, 0, 21003, 20, 20, 20);
    elec_ok(a, 0, 25703, 20, 20, 20);
    CHECK_INT(r.n, 2);
    elec_ok(a, 0, 26000, 20, 20, 20);
    CHECK_INT(r.n, 3);
    CHECK_INT(r.ev[2].type, AEV_ALARM_RAISED);
    CHECK_INT(r.ev[2].ts, 26000);
    CHECK_INT(r.ev[2].since, 21003);
    elec_ok(a, 0, 27000, 57, 57, 57); /* cleared */
    CHECK_INT(r.n, 4);

    /* A dip shorter than `for` never raises: 10 V at 30..33 s, 57 V at 34 s. */
    for (int64_t t = 30000; t <= 33000; t += 1000)
        elec_ok(a, 0, t, 10, 10, 10); /* 33000 - 30000 = 3 s < 5 s */
    elec_ok(a, 0, 34000, 57, 57, 57);
    CHECK_INT(r.n, 4);
    alarms_free(a);
}

static void test_hysteresis(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1};
    struct alarms *a = engine(ms, 1, &r);

    /* 0 V from t=0 to t=5 s raises at 5000 (5000 - 0 >= 5000). */
    for (int64_t t = 0; t <= 5000; t += 1000)
        elec_ok(a, 0, t, 0, 0, 0);
    CHECK_INT(r.n, 1);
    /* Hovering around the 30 V threshold, below the 35 V clear level:
     * 29 31 29 31 33 34.9 - none is >= 35, so it stays raised. */
    const double hover[] = {29, 31, 29, 31, 33, 34.9};
    for (size_t k = 0; k < ARRAY_SIZE(hover); k++)
        elec_ok(a, 0, 6000 + 1000 * (int64_t)k, hover[k], hover[k], hover[k]);
    CHECK_INT(r.n, 1);
    /* 35 V reaches below + hysteresis: one clear at t=12000. */
    elec_ok(a, 0, 12000, 35, 35, 35);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    CHECK_INT(r.ev[1].ts, 12000);
    CHECK_INT(r.ev[1].since, 0);
    /* Back to hovering 31/29: 29 < 30 starts a new delay each time but 31
     * breaks it (31 is not < 30) before 5 s: no new raise. */
    for (int k = 0; k < 10; k++)
        elec_ok(a, 0, 13000 + 1000 * k, k % 2 ? 31 : 29, k % 2 ? 31 : 29, k % 2 ? 31 : 29);
    CHECK_INT(r.n, 2);
    alarms_free(a);

    /* `above` with for = 0 and hysteresis 10: flow 51 raises at once (51 >
     * 50); 49, 51, 49, 45 stay raised (clear needs <= 40); 39 clears. Without
     * hysteresis that would have been 3 raises and 2 clears. */
    const struct cfg_meter *ws[] = {W1};
    a = engine(ws, 1, &r);
    const double flow[] = {51, 49, 51, 49, 45, 39};
    for (size_t k = 0; k < ARRAY_SIZE(flow); k++)
        water_ok(a, 0, 1000 * (int64_t)k, flow[k]);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].type, AEV_ALARM_RAISED);
    CHECK_STR(r.ev[0].alarm, "high_flow");
    CHECK_INT(r.ev[0].ts, 0);
    CHECK_NEAR(r.ev[0].threshold, 50.0, 1e-9);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    CHECK_INT(r.ev[1].ts, 5000);
    CHECK_NEAR(r.ev[1].value, 39.0, 1e-9);
    CHECK_NEAR(r.ev[1].threshold, 50.0, 1e-9);
    struct alarms_view v;
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_OK); /* high_flow is not a supply alarm */
    CHECK_INT(v.n_alarms, 0);
    alarms_free(a);
}

static void test_comm_lost_single(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1};
    struct alarms *a = engine(ms, 1, &r);
    struct alarms_view v;
    alarms_take_changed(a, 0);
    elec_ok(a, 0, 0, 57, 57, 57);
    /* Failures at 1, 2 s: nothing yet. The third (3 s) makes it comm_lost,
     * since the first failure (1000); a one-meter bus reports at once. */
    alarms_poll_failed(a, 0, 1000);
    alarms_poll_failed(a, 0, 2000);
    CHECK_INT(r.n, 0);
    CHECK(!alarms_take_changed(a, 0));
    alarms_poll_failed(a, 0, 3000);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_COMM_LOST);
    CHECK_INT(r.ev[0].ts, 3000);
    CHECK_INT(r.ev[0].since, 1000);
    CHECK_INT(r.ev[0].failures, 3);
    CHECK(alarms_take_changed(a, 0));
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_COMM_LOST);
    CHECK_INT(v.since, 1000);
    alarms_poll_failed(a, 0, 5000);
    CHECK_INT(r.n, 1);
    /* Answers at 9 s: comm_restored (since 1000), ok since 9000. */
    elec_ok(a, 0, 9000, 57, 57, 57);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_COMM_RESTORED);
    CHECK_INT(r.ev[1].since, 1000);
    CHECK(alarms_take_changed(a, 0));
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_OK);
    CHECK_INT(v.since, 9000);
    /* Two failures then success: never lost, no event. */
    alarms_poll_failed(a, 0, 10000);
    alarms_poll_failed(a, 0, 11000);
    elec_ok(a, 0, 12000, 57, 57, 57);
    CHECK_INT(r.n, 2);
    alarms_free(a);
}

static void test_supply_vs_comm(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1};
    struct alarms *a = engine(ms, 1, &r);
    struct alarms_view v;
    /* Supply off: the meter answers with 0 V for 10 s -> supply_lost, no
     * comm event. */
    for (int64_t t = 0; t <= 10000; t += 1000)
        elec_ok(a, 0, t, 0, 0, 0);
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_SUPPLY_LOST);
    CHECK_INT(count_type(&r, AEV_ALARM_RAISED), 1);
    CHECK_INT(count_type(&r, AEV_COMM_LOST), 0);
    alarms_free(a);

    /* Silence with healthy voltages before: comm_lost, no alarm raised
     * however long it lasts. */
    a = engine(ms, 1, &r);
    elec_ok(a, 0, 0, 57, 57, 57);
    for (int64_t t = 1000; t <= 30000; t += 1000)
        alarms_poll_failed(a, 0, t);
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_COMM_LOST);
    CHECK_STR(meter_state_name(v.state), "comm_lost");
    CHECK_INT(v.n_alarms, 0);
    CHECK_INT(count_type(&r, AEV_COMM_LOST), 1);
    CHECK_INT(count_type(&r, AEV_ALARM_RAISED), 0);
    /* A delay in progress when the meter goes silent starts over: 0 V at
     * 40 s, silent 41..43 s (lost at 43), answers 0 V at 44 s: the delay
     * starts at 44000, so nothing is raised before 49000. */
    alarms_free(a);
    a = engine(ms, 1, &r);
    elec_ok(a, 0, 40000, 0, 0, 0);
    alarms_poll_failed(a, 0, 41000);
    alarms_poll_failed(a, 0, 42000);
    alarms_poll_failed(a, 0, 43000);
    elec_ok(a, 0, 44000, 0, 0, 0);
    elec_ok(a, 0, 48000, 0, 0, 0);
    CHECK_INT(count_type(&r, AEV_ALARM_RAISED), 0);
    elec_ok(a, 0, 49000, 0, 0, 0);
    CHECK_INT(count_type(&r, AEV_ALARM_RAISED), 1);
    alarms_free(a);
}

static void test_bus_down(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1, E2, W1};
    struct alarms *a = engine(ms, 3, &r);
    for (size_t i = 0; i < 3; i++)
        alarms_take_changed(a, i);
    elec_ok(a, 0, 0, 57, 57, 57);
    elec_ok(a, 1, 100, 57, 57, 57);
    water_ok(a, 2, 200, 10);
    /* The whole bus goes silent: rounds at 1, 2, 3 s (+0/100/200 ms). e1 is
     * lost at 3000, e2 at 3100 (both held back), w1 at 3200: all lost -> one
     * bus_down, since e1's first failure (1000), 3 meters. */
    for (int64_t t = 1000; t <= 3000; t += 1000)
        for (size_t i = 0; i < 3; i++)
            alarms_poll_failed(a, i, t + 100 * (int64_t)i);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_BUS_DOWN);
    CHECK_INT(r.ev[0].meter, -1);
    CHECK_INT(r.ev[0].ts, 3200);
    CHECK_INT(r.ev[0].since, 1000);
    CHECK_INT(r.ev[0].n_meters, 3);
    /* The state topic still tells each meter's truth. */
    for (size_t i = 0; i < 3; i++) {
        struct alarms_view v;
        CHECK(alarms_take_changed(a, i));
        alarms_get_view(a, i, &v);
        CHECK_INT(v.state, METER_COMM_LOST);
    }
    /* More silent rounds: nothing new. */
    for (int64_t t = 4000; t <= 8000; t += 1000)
        for (size_t i = 0; i < 3; i++)
            alarms_poll_failed(a, i, t + 100 * (int64_t)i);
    CHECK_INT(r.n, 1);
    /* The bus returns: e1 answers at 10 s -> bus_restored (since 1000); e2
     * answers: nothing (covered). w1 is still silent at 10.2 s: another meter
     * answered, so it is down on its own -> comm_lost w1 (since its first
     * failure, 1000 + 200 = 1200); it
     * answers at 11 s -> comm_restored. */
    elec_ok(a, 0, 10000, 57, 57, 57);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_BUS_RESTORED);
    CHECK_INT(r.ev[1].since, 1000);
    elec_ok(a, 1, 10100, 57, 57, 57);
    CHECK_INT(r.n, 2);
    alarms_poll_failed(a, 2, 10200);
    CHECK_INT(r.n, 3);
    CHECK_INT(r.ev[2].type, AEV_COMM_LOST);
    CHECK_INT(r.ev[2].meter, 2);
    CHECK_INT(r.ev[2].since, 1200);
    water_ok(a, 2, 11000, 10);
    CHECK_INT(r.n, 4);
    CHECK_INT(r.ev[3].type, AEV_COMM_RESTORED);
    CHECK_INT(r.ev[3].meter, 2);
    CHECK_INT(count_type(&r, AEV_BUS_DOWN), 1);
    alarms_free(a);

    /* One meter dies on a live bus: e1 fails at 1, 2, 3 s (lost, held back)
     * while e2 and w1 answer; at e1's next failure (4 s) it is reported:
     * exactly one comm_lost, no bus_down. Then e2 and w1 die too (5..7 s):
     * all lost -> one bus_down, since e2's first failure (5000), and no
     * comm_lost for e2 or w1. */
    a = engine(ms, 3, &r);
    for (int64_t t = 1000; t <= 3000; t += 1000) {
        alarms_poll_failed(a, 0, t);
        elec_ok(a, 1, t + 100, 57, 57, 57);
        water_ok(a, 2, t + 200, 10);
    }
    CHECK_INT(r.n, 0);
    alarms_poll_failed(a, 0, 4000);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_COMM_LOST);
    CHECK_INT(r.ev[0].meter, 0);
    CHECK_INT(r.ev[0].since, 1000);
    CHECK_INT(r.ev[0].failures, 4);
    for (int64_t t = 5000; t <= 7000; t += 1000)
        for (size_t i = 0; i < 3; i++)
            alarms_poll_failed(a, i, t + 100 * (int64_t)i);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_BUS_DOWN);
    CHECK_INT(r.ev[1].since, 5100);
    CHECK_INT(count_type(&r, AEV_COMM_LOST), 1);
    alarms_free(a);
}

static void test_phase_loss(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1};
    struct alarms *a = engine(ms, 1, &r);
    struct alarms_view v;
    /* Phase A dead, B and C at 57 V from t=0: phase_loss raised at 5000
     * (for 5 s), value min phase 0, threshold 30. supply_lost watches phase
     * A in the profile but is evaluated on the highest phase (57 V): not
     * raised. State ok with alarms [phase_loss]. */
    for (int64_t t = 0; t <= 5000; t += 1000)
        elec_ok(a, 0, t, 0, 57, 57);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_ALARM_RAISED);
    CHECK_STR(r.ev[0].alarm, "phase_loss");
    CHECK_INT(r.ev[0].ts, 5000);
    CHECK_NEAR(r.ev[0].value, 0.0, 1e-9);
    CHECK_NEAR(r.ev[0].threshold, 30.0, 1e-9);
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_OK);
    CHECK_INT(v.n_alarms, 1);
    if (v.n_alarms == 1)
        CHECK_STR(v.alarms[0], "phase_loss");
    /* All three dead at 6 s: that is a supply outage, phase_loss clears at
     * 6000; supply_lost raises at 11000 (6000 + 5 s). */
    for (int64_t t = 6000; t <= 11000; t += 1000)
        elec_ok(a, 0, t, 0, 0, 0);
    CHECK_INT(r.n, 3);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    CHECK_STR(r.ev[1].alarm, "phase_loss");
    CHECK_INT(r.ev[1].ts, 6000);
    CHECK_INT(r.ev[2].type, AEV_ALARM_RAISED);
    CHECK_STR(r.ev[2].alarm, "supply_lost");
    CHECK_INT(r.ev[2].ts, 11000);
    /* Restored: 57 V everywhere clears supply_lost. */
    elec_ok(a, 0, 12000, 57, 57, 57);
    CHECK_INT(r.n, 4);
    CHECK_INT(r.ev[3].type, AEV_ALARM_CLEARED);
    CHECK_STR(r.ev[3].alarm, "supply_lost");
    /* One phase in the band (32 V: not < 30, not >= 35) and the others
     * healthy: no phase_loss however long. */
    for (int64_t t = 13000; t <= 30000; t += 1000)
        elec_ok(a, 0, t, 32, 57, 57);
    CHECK_INT(r.n, 4);
    /* An unreadable phase (valid false) freezes phase_loss but supply_lost
     * still sees the other phases: A invalid, B C at 0 V for 6 s raises
     * supply_lost only (max of B, C = 0 < 30). */
    for (int64_t t = 31000; t <= 36000; t += 1000) {
        double vals[4] = {1000.0, NAN, 0, 0};
        bool valid[4] = {true, false, true, true};
        alarms_poll_ok(a, 0, t, vals, valid);
    }
    CHECK_INT(r.n, 5);
    CHECK_STR(r.ev[4].alarm, "supply_lost");
    CHECK_INT(r.ev[4].ts, 36000);
    alarms_free(a);
}

/* Thresholds on a point with a ratio are secondary values, scaled like the
 * point: on e3 (PT 100) supply_lost is below 3000 V primary and clears at
 * >= 3500 V; phase_loss (derived) uses the same 3000 V. */
static void test_ratio_thresholds(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E3};
    struct alarms *a = engine(ms, 1, &r);
    /* 5774 V (57.74 V secondary): ok; 2900 V from 1 s: raised at 6 s,
     * value 2900, threshold 3000. 57 V primary would be an outage too. */
    elec_ok(a, 0, 0, 5774, 5774, 5774);
    for (int64_t t = 1000; t <= 6000; t += 1000)
        elec_ok(a, 0, t, 2900, 2900, 2900);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.ev[0].alarm, "supply_lost");
    CHECK_INT(r.ev[0].ts, 6000);
    CHECK_NEAR(r.ev[0].value, 2900, 1e-9);
    CHECK_NEAR(r.ev[0].threshold, 3000, 1e-9);
    /* 3400 V is inside the hysteresis band (3000..3500): still raised;
     * 3600 V clears. */
    elec_ok(a, 0, 7000, 3400, 3400, 3400);
    CHECK_INT(r.n, 1);
    elec_ok(a, 0, 8000, 3600, 3600, 3600);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    /* One phase at 2000 V for 5 s: phase_loss at the primary threshold. */
    for (int64_t t = 9000; t <= 14000; t += 1000)
        elec_ok(a, 0, t, 2000, 5774, 5774);
    CHECK_INT(r.n, 3);
    CHECK_STR(r.ev[2].alarm, "phase_loss");
    CHECK_NEAR(r.ev[2].threshold, 3000, 1e-9);
    alarms_free(a);

    /* Points without a ratio keep the thresholds as written (e1: 30 V). */
    const struct cfg_meter *ms1[] = {E1};
    a = engine(ms1, 1, &r);
    for (int64_t t = 0; t <= 5000; t += 1000)
        elec_ok(a, 0, t, 20, 20, 20);
    CHECK_INT(r.n, 1);
    CHECK_NEAR(r.ev[0].threshold, 30, 1e-9);
    alarms_free(a);
}

/* Monday 2026-03-02 00:00 UTC (the test runs with TZ=UTC), in ms. */
#define DAY0 INT64_C(1772409600000)
#define HOUR_MS INT64_C(3600000)

/* no_flow with a schedule: flow below 0.05 for 10 s raises only inside
 * 08:00-18:00; outside, the window starts over and nothing raises; a raised
 * alarm stays past the schedule's end until flow returns. A meter's own
 * hours and window replace the profile's; a meter may turn it off. */
static void test_no_flow_schedule(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {F1};
    struct alarms *a = engine(ms, 1, &r);
    struct alarms_view v;
    /* 07:59:50 .. 08:00:09 no flow: the condition counts from 08:00:00
     * (before that it is outside the schedule), so nothing yet at 08:00:09. */
    int64_t t0 = DAY0 + 8 * HOUR_MS - 10000;
    for (int64_t t = t0; t < t0 + 20000; t += 1000)
        water_ok(a, 0, t, 0.0);
    CHECK_INT(r.n, 0);
    /* 08:00:10: 10 s since 08:00:00: raised; the state stays ok (a flow
     * meter cannot tell a dead main from a stopped plant), alarm listed. */
    water_ok(a, 0, t0 + 20000, 0.0);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_ALARM_RAISED);
    CHECK_STR(r.ev[0].alarm, "no_flow");
    CHECK_INT(r.ev[0].since, DAY0 + 8 * HOUR_MS);
    CHECK_NEAR(r.ev[0].threshold, 0.05, 1e-12);
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_OK);
    CHECK_INT(v.n_alarms, 1);
    /* Still no flow at 18:30 (outside the schedule): stays raised. */
    water_ok(a, 0, DAY0 + 18 * HOUR_MS + 1800000, 0.0);
    CHECK_INT(r.n, 1);
    /* Flow back at 19:00: cleared, even outside the schedule. */
    water_ok(a, 0, DAY0 + 19 * HOUR_MS, 12.0);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[1].type, AEV_ALARM_CLEARED);
    /* The plant idle all night (19:00 .. 07:59): nothing. */
    for (int64_t t = DAY0 + 19 * HOUR_MS + 1000; t < DAY0 + 32 * HOUR_MS; t += 60000)
        water_ok(a, 0, t, 0.0);
    CHECK_INT(r.n, 2);
    alarms_free(a);

    /* f2: its own night shift 22:00-06:00 and a 3 s window: no flow at
     * 12:00 for a minute does nothing; at 23:00 it raises after 3 s. */
    const struct cfg_meter *ms2[] = {F2, F3};
    a = engine(ms2, 2, &r);
    for (int64_t t = DAY0 + 12 * HOUR_MS; t < DAY0 + 12 * HOUR_MS + 60000; t += 1000) {
        water_ok(a, 0, t, 0.0);
        water_ok(a, 1, t, 0.0);
    }
    CHECK_INT(r.n, 0);
    for (int64_t t = DAY0 + 23 * HOUR_MS; t <= DAY0 + 23 * HOUR_MS + 3000; t += 1000) {
        water_ok(a, 0, t, 0.0);
        water_ok(a, 1, t, 0.0);
    }
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].meter, 0);
    CHECK_INT(r.ev[0].ts, DAY0 + 23 * HOUR_MS + 3000);
    /* f3 turned no_flow off: it has no rule at all. */
    CHECK_INT(alarms_rule_count(a, 1), 0);
    alarms_free(a);
}

/* comm_timeout on 30 s meters, last good reading at 0: c1 (10 s) is lost
 * at its second failed poll, the early retry at 35 s; c2 (120 s) at the
 * first failure at or after 120 s, however many came before; c3 (not set)
 * at the third failure in a row, as always. One meter per engine, so the
 * loss is reported at once. */
static void test_comm_timeout(void)
{
    struct rec r;
    const struct cfg_meter *m1[] = {C1}, *m2[] = {C2}, *m3[] = {C3};
    struct alarms *a = engine(m1, 1, &r);
    water_ok(a, 0, 0, 5.0);
    alarms_poll_failed(a, 0, 30000); /* one failure: a glitch is not a loss */
    CHECK_INT(r.n, 0);
    alarms_poll_failed(a, 0, 35000);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_COMM_LOST);
    CHECK_INT(r.ev[0].since, 30000);
    alarms_free(a);

    a = engine(m2, 1, &r);
    water_ok(a, 0, 0, 5.0);
    for (int64_t t = 30000; t <= 90000; t += 30000)
        alarms_poll_failed(a, 0, t);
    CHECK_INT(r.n, 0);
    alarms_poll_failed(a, 0, 120000);
    CHECK_INT(r.n, 1);
    alarms_free(a);

    a = engine(m3, 1, &r);
    water_ok(a, 0, 0, 5.0);
    alarms_poll_failed(a, 0, 30000);
    alarms_poll_failed(a, 0, 60000);
    CHECK_INT(r.n, 0);
    alarms_poll_failed(a, 0, 90000);
    CHECK_INT(r.n, 1);
    alarms_free(a);

    /* The rule itself. */
    CHECK(!alarms_comm_lost_due(C1, 1, 60000, 3));
    CHECK(alarms_comm_lost_due(C1, 2, 10000, 3));
    CHECK(!alarms_comm_lost_due(C1, 5, 9999, 3));
    CHECK(!alarms_comm_lost_due(C3, 2, 600000, 3));
    CHECK(alarms_comm_lost_due(C3, 3, 0, 3));
}

static void test_seed(void)
{
    struct rec r;
    const struct cfg_meter *ms[] = {E1, E2};
    struct alarms *a = engine(ms, 2, &r);
    struct alarms_view v;
    /* Left open by the last run: e1 supply_lost since 100, e2 comm_lost
     * since 200. e1 reads 57 V: alarm_cleared (since 100); e2 answers:
     * comm_restored (since 200). No raise is repeated. */
    alarms_seed_alarm(a, 0, "supply_lost", 100);
    alarms_seed_alarm(a, 0, "no_such_alarm", 100);
    alarms_seed_comm_lost(a, 1, 200);
    alarms_get_view(a, 0, &v);
    CHECK_INT(v.state, METER_SUPPLY_LOST);
    CHECK_INT(v.since, 100);
    alarms_get_view(a, 1, &v);
    CHECK_INT(v.state, METER_COMM_LOST);
    elec_ok(a, 0, 1000, 57, 57, 57);
    elec_ok(a, 1, 1100, 57, 57, 57);
    CHECK_INT(r.n, 2);
    CHECK_INT(r.ev[0].type, AEV_ALARM_CLEARED);
    CHECK_INT(r.ev[0].since, 100);
    CHECK_INT(r.ev[1].type, AEV_COMM_RESTORED);
    CHECK_INT(r.ev[1].since, 200);
    alarms_free(a);

    /* Still in the outage after a restart: seeded supply_lost and 0 V:
     * nothing new. Seeded bus_down: the first answer gives bus_restored. */
    a = engine(ms, 2, &r);
    alarms_seed_alarm(a, 0, "supply_lost", 100);
    for (int64_t t = 1000; t <= 10000; t += 1000)
        elec_ok(a, 0, t, 0, 0, 0);
    CHECK_INT(r.n, 0);
    alarms_free(a);
    a = engine(ms, 2, &r);
    alarms_seed_bus_down(a, 500);
    alarms_get_view(a, 1, &v);
    CHECK_INT(v.state, METER_COMM_LOST);
    alarms_poll_failed(a, 1, 900); /* still down: nothing */
    CHECK_INT(r.n, 0);
    elec_ok(a, 0, 1000, 57, 57, 57);
    CHECK_INT(r.n, 1);
    CHECK_INT(r.ev[0].type, AEV_BUS_RESTORED);
    CHECK_INT(r.ev[0].since, 500);
    alarms_free(a);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const char *tmp = getenv("PARKGW_TEST_TMP");
    char dir[512], path[600];
    if (tmp)
        mkdir(tmp, 0755);
    snprintf(dir, sizeof(dir), "%s/alarmsXXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(path, sizeof(path), "%s/t.cfg", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(cfg_text, f) < 0 || fclose(f) != 0) {
        perror(path);
        return 2;
    }
    char err[512];
    if (config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    E1 = config_find_meter(cfg, "acme/e1");
    E2 = config_find_meter(cfg, "acme/e2");
    W1 = config_find_meter(cfg, "acme/w1");
    E3 = config_find_meter(cfg, "acme/e3");
    F1 = config_find_meter(cfg, "acme/f1");
    F2 = config_find_meter(cfg, "acme/f2");
    F3 = config_find_meter(cfg, "acme/f3");
    C1 = config_find_meter(cfg, "acme/c1");
    C2 = config_find_meter(cfg, "acme/c2");
    C3 = config_find_meter(cfg, "acme/c3");
    CHECK(E1 && E2 && W1);
    if (!E1 || !E2 || !W1)
        return check_done();
    CHECK_STR(alarm_event_name(AEV_BUS_DOWN), "bus_down");
    CHECK_STR(alarm_event_name(AEV_COMM_RESTORED), "comm_restored");

    test_delay_raises_once();
    test_hysteresis();
    test_comm_lost_single();
    test_supply_vs_comm();
    test_bus_down();
    test_phase_loss();
    test_ratio_thresholds();
    test_no_flow_schedule();
    test_comm_timeout();
    test_seed();

    config_free(cfg);
    unlink(path);
    rmdir(dir);
    return check_done();
}
