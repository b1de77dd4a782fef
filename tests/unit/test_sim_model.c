/*
 * test_sim_model.c - the simulator's value model: determinism, monotonic
 * counters that integrate their rates, the daily curve, supply-off and
 * counter-offset overrides, and registers that decode back to the values.
 * The config is built in code so the test does not depend on a config file.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "protocols/decode.h"
#include "tests/unit/check.h"
#include "tools/sim/sim_model.h"

/* Monday 2026-03-02 in Asia/Shanghai (UTC+8): `TZ=Asia/Shanghai date -d ... +%s` */
#define T_MON_0000 INT64_C(1772380800)
#define T_MON_0300 INT64_C(1772391600)
#define T_MON_1000 INT64_C(1772416800)
#define DAY_S 86400

#define P(n, f, a, ty, sc, k, bill, rat) \
    {.name = (n), .fc = (f), .address = (a), .type = (ty), .order = WO_ABCD, .scale = (sc), \
     .kind = (k), .billing = (bill), .ratio = (rat)}

static struct cfg_point elec_points[] = {
    P("energy_import_kwh", 3, 0, PT_UINT32, 0.01, KIND_COUNTER, true, RATIO_PT_CT),
    P("power_kw", 3, 2, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_PT_CT),
    P("voltage_a_v", 3, 4, PT_UINT16, 0.01, KIND_GAUGE, false, RATIO_PT),
    P("current_a_a", 3, 5, PT_UINT16, 0.001, KIND_GAUGE, false, RATIO_CT),
    P("pf", 3, 6, PT_INT16, 0.001, KIND_GAUGE, false, RATIO_NONE),
    P("frequency_hz", 3, 7, PT_UINT16, 0.01, KIND_GAUGE, false, RATIO_NONE),
    P("reactive_import_kvarh", 4, 0, PT_FLOAT32, 1, KIND_COUNTER, false, RATIO_PT_CT),
    P("energy_export_kwh", 4, 2, PT_UINT32, 0.01, KIND_COUNTER, false, RATIO_PT_CT),
    P("voltage_ab_v", 4, 4, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_PT),
    P("breaker_closed", 1, 0, PT_BOOL, 1, KIND_GAUGE, false, RATIO_NONE),
    P("mystery_counter", 4, 6, PT_UINT32, 1, KIND_COUNTER, false, RATIO_NONE),
    P("thd_pct", 4, 8, PT_UINT16, 0.1, KIND_GAUGE, false, RATIO_NONE),
    P("energy_total_kwh", 4, 10, PT_FLOAT64, 1, KIND_COUNTER, false, RATIO_PT_CT),
    P("power_b_kw", 4, 14, PT_INT32, 0.001, KIND_GAUGE, false, RATIO_PT_CT),
};
enum { E_KWH, E_KW, E_VA, E_IA, E_PF, E_HZ, E_KVARH, E_EXP, E_VAB, E_BRK, E_MYST, E_THD, E_TOT,
       E_KWB };

static struct cfg_point water_points[] = {
    P("total_m3", 3, 0, PT_UINT32, 0.001, KIND_COUNTER, true, RATIO_NONE),
    P("flow_m3h", 3, 2, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_NONE),
    P("pressure_kpa", 3, 4, PT_UINT16, 0.1, KIND_GAUGE, false, RATIO_NONE),
    P("temperature_c", 3, 5, PT_INT16, 0.1, KIND_GAUGE, false, RATIO_NONE),
    P("short_m3", 3, 6, PT_UINT16, 1, KIND_COUNTER, false, RATIO_NONE),
};
enum { W_TOT, W_FLOW, W_KPA, W_C, W_SHORT };

static struct cfg_point gas_points[] = {
    P("volume_nm3", 3, 0, PT_UINT32, 0.01, KIND_COUNTER, true, RATIO_NONE),
    P("flow_nm3h", 3, 2, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_NONE),
    P("pressure_kpa", 3, 4, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_NONE),
    P("temperature_c", 3, 6, PT_INT16, 0.1, KIND_GAUGE, false, RATIO_NONE),
    P("volume_m3", 3, 7, PT_UINT32, 0.01, KIND_COUNTER, false, RATIO_NONE),
    P("valve_closed", 2, 3, PT_BOOL, 1, KIND_GAUGE, false, RATIO_NONE),
};
enum { G_NM3, G_FLOW, G_KPA, G_C, G_M3, G_VALVE };

static struct cfg_point ww_points[] = {
    P("discharge_m3", 4, 0, PT_UINT32, 0.001, KIND_COUNTER, true, RATIO_NONE),
    P("flow_m3h", 4, 2, PT_FLOAT32, 1, KIND_GAUGE, false, RATIO_NONE),
};
enum { X_TOT, X_FLOW };

static struct cfg_profile profiles[] = {
    {.name = "t-elec", .utility = UTIL_ELECTRICITY, .points = elec_points,
     .n_points = ARRAY_SIZE(elec_points)},
    {.name = "t-water", .utility = UTIL_WATER, .points = water_points,
     .n_points = ARRAY_SIZE(water_points)},
    {.name = "t-gas", .utility = UTIL_GAS, .points = gas_points, .n_points = ARRAY_SIZE(gas_points)},
    {.name = "t-ww", .utility = UTIL_WASTEWATER, .points = ww_points,
     .n_points = ARRAY_SIZE(ww_points)},
};

/* The park of the test: Chengtong Plastics with all four utilities, metered
 * at 10 kV through PT 100 (10 kV / 100 V) and CT 40 (200/5 A); Hongfei
 * Casting with electricity only, CT 20. 'reversed' lists everything in the
 * opposite order: values must not depend on it. */
static struct config *make_config(bool reversed)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->profiles = profiles;
    cfg->n_profiles = ARRAY_SIZE(profiles);
    cfg->n_enterprises = 2;
    cfg->enterprises = xcalloc(2, sizeof(*cfg->enterprises));
    struct cfg_enterprise *ct = &cfg->enterprises[reversed ? 1 : 0];
    struct cfg_enterprise *hf = &cfg->enterprises[reversed ? 0 : 1];
    ct->id = "chengtong-plastics";
    ct->n_meters = 4;
    ct->meters = xcalloc(4, sizeof(*ct->meters));
    static const struct {
        const char *id;
        enum utility u;
        int profile;
        double pt, ct;
    } ctm[4] = {{"e1", UTIL_ELECTRICITY, 0, 100, 40},
                {"w1", UTIL_WATER, 1, 1, 1},
                {"g1", UTIL_GAS, 2, 1, 1},
                {"ww1", UTIL_WASTEWATER, 3, 1, 1}};
    for (size_t i = 0; i < 4; i++) {
        struct cfg_meter *m = &ct->meters[reversed ? 3 - i : i];
        m->id = (char *)ctm[i].id;
        m->utility = ctm[i].u;
        m->profile = ctm[i].profile;
        m->pt_ratio = ctm[i].pt;
        m->ct_ratio = ctm[i].ct;
        m->unit_id = (int)i + 1;
        m->interval = 10;
        m->enterprise = ct;
    }
    hf->id = "hongfei-casting";
    hf->n_meters = 1;
    hf->meters = xcalloc(1, sizeof(*hf->meters));
    hf->meters[0] = (struct cfg_meter){.id = "e1", .utility = UTIL_ELECTRICITY, .profile = 0,
                                       .pt_ratio = 100, .ct_ratio = 20, .unit_id = 1,
                                       .interval = 10, .enterprise = hf};
    return cfg;
}

static void free_config(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_enterprises; i++)
        free(cfg->enterprises[i].meters);
    free(cfg->enterprises);
    free(cfg);
}

static const struct cfg_meter *meter(const struct config *cfg, const char *ent, const char *id)
{
    for (size_t i = 0; i < cfg->n_enterprises; i++)
        for (size_t j = 0; j < cfg->enterprises[i].n_meters; j++)
            if (!strcmp(cfg->enterprises[i].id, ent) && !strcmp(cfg->enterprises[i].meters[j].id, id))
                return &cfg->enterprises[i].meters[j];
    abort();
}

static void test_determinism(void)
{
    struct config *a = make_config(false), *b = make_config(true);
    const struct cfg_meter *ma = meter(a, "chengtong-plastics", "e1");
    const struct cfg_meter *mb = meter(b, "chengtong-plastics", "e1");
    int same = 0, diff_seed = 0, n = 0, n_diff = 0;
    for (int64_t t = T_MON_0000; t < T_MON_0000 + DAY_S; t += 3607) {
        for (size_t pi = 0; pi < ARRAY_SIZE(elec_points); pi++) {
            double v1 = sim_value(42, a, ma, pi, t, NULL);
            double v2 = sim_value(42, a, ma, pi, t, NULL);
            double v3 = sim_value(42, b, mb, pi, t, NULL);
            double v4 = sim_value(43, a, ma, pi, t, NULL);
            same += v1 == v2 && v1 == v3;
            /* breaker_closed is 1 whatever the seed, and most plants never
             * exported; every other point moves with the seed */
            if (pi != E_BRK && pi != E_EXP) {
                diff_seed += v1 != v4;
                n_diff++;
            }
            n++;
        }
    }
    CHECK_INT(same, n);
    CHECK_INT(diff_seed, n_diff);
    /* the two enterprises' e1 meters are different plants */
    const struct cfg_meter *h = meter(a, "hongfei-casting", "e1");
    CHECK(sim_value(42, a, ma, E_KW, T_MON_1000, NULL) != sim_value(42, a, h, E_KW, T_MON_1000, NULL));
    free_config(a);
    free_config(b);
}

static void test_counters_monotonic(void)
{
    struct config *cfg = make_config(false);
    int bad = 0, checked = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        for (size_t j = 0; j < cfg->enterprises[e].n_meters; j++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[j];
            const struct cfg_profile *p = &cfg->profiles[m->profile];
            for (size_t pi = 0; pi < p->n_points; pi++) {
                /* short_m3 is a uint16 register that wraps at 65536 m3 */
                if (p->points[pi].kind != KIND_COUNTER || !strcmp(p->points[pi].name, "short_m3"))
                    continue;
                double prev = sim_value(7, cfg, m, pi, T_MON_0000, NULL);
                for (int64_t t = T_MON_0000 + 37; t <= T_MON_0000 + DAY_S; t += 37) {
                    double v = sim_value(7, cfg, m, pi, t, NULL);
                    if (v < prev) {
                        bad++;
                        fprintf(stderr, "%s/%s %s dropped at %lld: %.6f -> %.6f\n",
                                m->enterprise->id, m->id, p->points[pi].name, (long long)t, prev, v);
                    }
                    prev = v;
                    checked++;
                }
            }
        }
    }
    CHECK_INT(bad, 0);
    CHECK(checked > 10 * 2335);
    /* the import counter really grows: a plant of >= 200 kW peak at >= 0.2
     * load for 24 h consumes well over 200 x 0.2 x 24 / 2 = 480 kWh */
    const struct cfg_meter *e1 = meter(cfg, "chengtong-plastics", "e1");
    CHECK(sim_value(7, cfg, e1, E_KWH, T_MON_0000 + DAY_S, NULL) -
              sim_value(7, cfg, e1, E_KWH, T_MON_0000, NULL) > 480);
    free_config(cfg);
}

static void test_daily_curve(void)
{
    struct config *cfg = make_config(false);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        for (size_t e = 0; e < cfg->n_enterprises; e++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[0];
            if (m->utility != UTIL_ELECTRICITY)
                m = meter(cfg, cfg->enterprises[e].id, "e1");
            double p10 = sim_value(seed, cfg, m, E_KW, T_MON_1000, NULL);
            double p03 = sim_value(seed, cfg, m, E_KW, T_MON_0300, NULL);
            CHECK(p10 > p03);
            /* primary kW of a 10 kV plant: 200..2000 kW peak */
            CHECK(p10 > 150 && p10 < 2100);
            CHECK(p03 > 0);
            CHECK_NEAR(sim_main_rate(seed, cfg, m, T_MON_1000), p10, 1e-9 * p10);
        }
    }
    free_config(cfg);
}

/* Trapezoid rule at 1 s over [t0, t0 + secs] of a rate in unit/h -> unit. */
static double integrate(const struct config *cfg, const struct cfg_meter *m, size_t pi,
                        int64_t t0, int secs)
{
    double sum = 0, prev = sim_value(9, cfg, m, pi, t0, NULL);
    for (int s = 1; s <= secs; s++) {
        double v = sim_value(9, cfg, m, pi, t0 + s, NULL);
        sum += 0.5 * (prev + v) / 3600.0;
        prev = v;
    }
    return sum;
}

static void test_counter_integrates_rate(void)
{
    struct config *cfg = make_config(false);
    const struct {
        const char *ent, *meter;
        size_t counter, rate;
    } cases[] = {{"chengtong-plastics", "e1", E_KWH, E_KW},
                 {"hongfei-casting", "e1", E_KWH, E_KW},
                 {"chengtong-plastics", "w1", W_TOT, W_FLOW},
                 {"chengtong-plastics", "g1", G_NM3, G_FLOW},
                 {"chengtong-plastics", "ww1", X_TOT, X_FLOW}};
    /* hours that cross a knot of the curve, midnight (a weekly-factor step
     * on Saturday 00:00) and a quiet night hour */
    const int64_t starts[] = {T_MON_1000 - 1800, T_MON_0000 + 5 * DAY_S - 900, T_MON_0300};
    for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
        const struct cfg_meter *m = meter(cfg, cases[c].ent, cases[c].meter);
        for (size_t s = 0; s < ARRAY_SIZE(starts); s++) {
            double delta = sim_value(9, cfg, m, cases[c].counter, starts[s] + 3600, NULL) -
                           sim_value(9, cfg, m, cases[c].counter, starts[s], NULL);
            double numeric = integrate(cfg, m, cases[c].rate, starts[s], 3600);
            CHECK(delta > 0);
            CHECK_NEAR(delta, numeric, 0.001 * numeric);
        }
    }
    /* kvarh grows by kWh x tan(phi), with pf = cos(phi) in 0.85..0.98 */
    const struct cfg_meter *e1 = meter(cfg, "chengtong-plastics", "e1");
    double kwh = sim_value(9, cfg, e1, E_KWH, T_MON_1000 + 3600, NULL) -
                 sim_value(9, cfg, e1, E_KWH, T_MON_1000, NULL);
    double kvarh = sim_value(9, cfg, e1, E_KVARH, T_MON_1000 + 3600, NULL) -
                   sim_value(9, cfg, e1, E_KVARH, T_MON_1000, NULL);
    double pf = sim_value(9, cfg, e1, E_PF, T_MON_1000, NULL);
    CHECK(pf >= 0.85 && pf <= 0.98);
    /* tan(acos(pf)): pf carries +-0.002 of noise -> a few % on tan */
    CHECK_NEAR(kvarh / kwh, tan(acos(pf)), 0.05 * tan(acos(pf)));
    free_config(cfg);
}

static void test_electrical_values(void)
{
    struct config *cfg = make_config(false);
    const struct cfg_meter *e1 = meter(cfg, "chengtong-plastics", "e1");
    for (int64_t t = T_MON_0000; t < T_MON_0000 + 2 * DAY_S; t += 1013) {
        /* PT 10 kV/100 V: terminal phase voltage 100/sqrt(3) = 57.735 V, +-3 %,
         * published as the primary 5773.5 V (ratio pt) */
        double va = sim_value(5, cfg, e1, E_VA, t, NULL);
        CHECK_NEAR(va, 5773.5, 0.03 * 5773.5);
        /* line voltage = sqrt(3) x phase: 10 kV primary */
        CHECK_NEAR(sim_value(5, cfg, e1, E_VAB, t, NULL), 10000.0, 300.0);
        double hz = sim_value(5, cfg, e1, E_HZ, t, NULL);
        CHECK(hz >= 49.95 && hz <= 50.05);
        double pf = sim_value(5, cfg, e1, E_PF, t, NULL);
        CHECK(pf >= 0.85 && pf <= 0.98);
        /* P = 3 x U_phase x I x pf, all primary values (the current is the
         * CT's secondary x 40); phase imbalance <= 4 % and 0.2 % noise */
        double p = sim_value(5, cfg, e1, E_KW, t, NULL);
        double ia = sim_value(5, cfg, e1, E_IA, t, NULL);
        CHECK_NEAR(3 * va * ia * pf / 1000, p, 0.06 * p);
        /* power_b_kw is one phase: about a third of the total */
        CHECK_NEAR(sim_value(5, cfg, e1, E_KWB, t, NULL), p / 3, 0.05 * p / 3);
        /* unknown gauge: 100 +- 5 */
        CHECK_NEAR(sim_value(5, cfg, e1, E_THD, t, NULL), 100, 5);
        CHECK_INT(sim_value(5, cfg, e1, E_BRK, t, NULL), 1);
    }
    const struct cfg_meter *w1 = meter(cfg, "chengtong-plastics", "w1");
    const struct cfg_meter *g1 = meter(cfg, "chengtong-plastics", "g1");
    const struct cfg_meter *ww = meter(cfg, "chengtong-plastics", "ww1");
    for (int64_t t = T_MON_0000; t < T_MON_0000 + DAY_S; t += 1013) {
        CHECK_NEAR(sim_value(5, cfg, w1, W_KPA, t, NULL), 295, 15);
        CHECK_NEAR(sim_value(5, cfg, w1, W_C, t, NULL), 20, 5.2);
        /* medium-pressure gas supply: 205 - 10 x load +- 2 kPa */
        CHECK_NEAR(sim_value(5, cfg, g1, G_KPA, t, NULL), 200, 8);
        CHECK_NEAR(sim_value(5, cfg, g1, G_C, t, NULL), 20, 5.2);
        /* wastewater: 70..90 % of the water drawn half an hour earlier */
        double ratio = sim_value(5, cfg, ww, X_FLOW, t, NULL) /
                       sim_value(5, cfg, w1, W_FLOW, t - 1800, NULL);
        CHECK(ratio >= 0.7 && ratio <= 0.9);
        /* line volume = Nm3 x 101.325/301.325 x 288.15/273.15
         *             = Nm3 x 0.336264 x 1.054915 = Nm3 x 0.354730 */
        CHECK_NEAR(sim_value(5, cfg, g1, G_M3, t, NULL) / sim_value(5, cfg, g1, G_NM3, t, NULL),
                   0.354730, 0.000002);
        /* an open valve reads 0 (the gas flows), a closed breaker 1 */
        CHECK_INT(sim_value(5, cfg, g1, G_VALVE, t, NULL), 0);
        double sh = sim_value(5, cfg, w1, W_SHORT, t, NULL);
        CHECK(sh >= 0 && sh < 65536);
    }
    free_config(cfg);
}

static void test_supply_off(void)
{
    struct config *cfg = make_config(false);
    const struct cfg_meter *e1 = meter(cfg, "chengtong-plastics", "e1");
    const struct cfg_meter *w1 = meter(cfg, "chengtong-plastics", "w1");
    struct sim_meter_state st = {0}, wst = {0};
    int64_t t_off = T_MON_1000, t_on = T_MON_1000 + 1800;
    double kwh_off = sim_value(3, cfg, e1, E_KWH, t_off, NULL);
    double kvarh_off = sim_value(3, cfg, e1, E_KVARH, t_off, NULL);
    double m3_off = sim_value(3, cfg, w1, W_TOT, t_off, NULL);
    sim_set_supply(3, cfg, e1, &st, true, t_off);
    sim_set_supply(3, cfg, w1, &wst, true, t_off);
    CHECK(st.supply_off);
    CHECK_INT(st.off_since, t_off);
    for (int64_t t = t_off; t < t_on; t += 61) {
        CHECK_INT(sim_value(3, cfg, e1, E_VA, t, &st), 0);
        CHECK_INT(sim_value(3, cfg, e1, E_VAB, t, &st), 0);
        CHECK_INT(sim_value(3, cfg, e1, E_IA, t, &st), 0);
        CHECK_INT(sim_value(3, cfg, e1, E_KW, t, &st), 0);
        CHECK_INT(sim_value(3, cfg, e1, E_BRK, t, &st), 0);
        CHECK_INT(sim_value(3, cfg, w1, W_FLOW, t, &wst), 0);
        CHECK_INT(sim_value(3, cfg, w1, W_KPA, t, &wst), 0);
        CHECK_NEAR(sim_value(3, cfg, e1, E_KWH, t, &st), kwh_off, 1e-6);
        CHECK_NEAR(sim_value(3, cfg, e1, E_KVARH, t, &st), kvarh_off, 1e-6);
        CHECK_NEAR(sim_value(3, cfg, w1, W_TOT, t, &wst), m3_off, 1e-9);
        /* and what the registers say, through the decoder */
        CHECK_INT(sim_expected_decoded(3, cfg, e1, E_VA, t, &st), 0);
        CHECK_NEAR(sim_expected_decoded(3, cfg, e1, E_KWH, t, &st), kwh_off, 0.01 * 4000);
    }
    /* a gas outage set directly (no off_since: counters are not frozen):
     * the valve reports closed, the flow is 0 */
    const struct cfg_meter *g1 = meter(cfg, "chengtong-plastics", "g1");
    struct sim_meter_state gst = {.supply_off = true};
    CHECK_INT(sim_value(3, cfg, g1, G_VALVE, t_off, &gst), 1);
    CHECK_INT(sim_value(3, cfg, g1, G_FLOW, t_off, &gst), 0);
    CHECK_INT(sim_expected_decoded(3, cfg, g1, G_VALVE, t_off, &gst), 1);

    /* supply back: the counter continues from where it froze, then grows */
    sim_set_supply(3, cfg, e1, &st, false, t_on);
    CHECK(!st.supply_off);
    CHECK(st.lost > 0);
    CHECK_NEAR(sim_value(3, cfg, e1, E_KWH, t_on, &st), kwh_off, 1e-6);
    CHECK(sim_value(3, cfg, e1, E_KWH, t_on + 600, &st) > kwh_off);
    CHECK(sim_value(3, cfg, e1, E_VA, t_on, &st) > 50);
    /* the growth after restoring = the normal curve's growth over that time */
    CHECK_NEAR(sim_value(3, cfg, e1, E_KWH, t_on + 600, &st) - kwh_off,
               sim_value(3, cfg, e1, E_KWH, t_on + 600, NULL) -
                   sim_value(3, cfg, e1, E_KWH, t_on, NULL),
               1e-6);
    /* a second outage after the first keeps counting from the right value */
    double kwh2 = sim_value(3, cfg, e1, E_KWH, t_on + 900, &st);
    sim_set_supply(3, cfg, e1, &st, true, t_on + 900);
    CHECK_NEAR(sim_value(3, cfg, e1, E_KWH, t_on + 4000, &st), kwh2, 1e-6);
    free_config(cfg);
}

static void test_counter_offset(void)
{
    struct config *cfg = make_config(false);
    const struct cfg_meter *e1 = meter(cfg, "chengtong-plastics", "e1");
    struct sim_meter_state st = {.counter_offset = 1234.5};
    double plain = sim_value(4, cfg, e1, E_KWH, T_MON_1000, NULL);
    CHECK_NEAR(sim_value(4, cfg, e1, E_KWH, T_MON_1000, &st), plain + 1234.5, 1e-6);
    /* only the billing counter moves */
    CHECK_NEAR(sim_value(4, cfg, e1, E_TOT, T_MON_1000, &st),
               sim_value(4, cfg, e1, E_TOT, T_MON_1000, NULL), 0);
    /* the register wraps like the meter's: uint32 x 0.01 kWh x PT 100 x CT 40
     * holds 2^32 x 0.01 x 4000 = 171,798,691,840 kWh; adding exactly that
     * gives back the same reading */
    st.counter_offset = 4294967296.0 * 0.01 * 4000;
    CHECK_NEAR(sim_value(4, cfg, e1, E_KWH, T_MON_1000, &st), plain, 1e-3);
    /* a replaced meter that starts near zero: offset = -reading + 5 */
    st.counter_offset = -plain + 5;
    CHECK_NEAR(sim_value(4, cfg, e1, E_KWH, T_MON_1000, &st), 5, 1e-6);
    CHECK(sim_value(4, cfg, e1, E_KWH, T_MON_1000 + 3600, &st) > 5);
    free_config(cfg);
}

static void test_registers_decode(void)
{
    struct config *cfg = make_config(false);
    int n_fail = 0, n = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        for (size_t j = 0; j < cfg->enterprises[e].n_meters; j++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[j];
            const struct cfg_profile *p = &cfg->profiles[m->profile];
            size_t nregs = sim_profile_nregs(p), nbits = sim_profile_nbits(p);
            uint16_t *r3 = xcalloc(nregs, 2), *r4 = xcalloc(nregs, 2);
            uint8_t *b1 = xcalloc(nbits + 1, 1), *b2 = xcalloc(nbits + 1, 1);
            for (int64_t t = T_MON_0000; t < T_MON_0000 + DAY_S; t += 3331) {
                sim_fill_registers(11, cfg, m, t, NULL, r4, r3, b1, b2, nregs, nbits);
                for (size_t pi = 0; pi < p->n_points; pi++) {
                    const struct cfg_point *pt = &p->points[pi];
                    uint16_t bit[1];
                    const uint16_t *regs;
                    if (pt->fc == 1 || pt->fc == 2) {
                        bit[0] = (pt->fc == 1 ? b1 : b2)[pt->address];
                        regs = bit;
                    } else {
                        regs = (pt->fc == 3 ? r3 : r4) + pt->address;
                    }
                    double got;
                    CHECK_INT(decode_point(pt, m->pt_ratio, m->ct_ratio, regs, &got), 0);
                    double want = sim_expected_decoded(11, cfg, m, pi, t, NULL);
                    double exact = sim_value(11, cfg, m, pi, t, NULL);
                    /* float32 keeps 24 bits; integers round to half a step of
                     * scale (x the point's ratio) */
                    double step = pt->scale * point_ratio_factor(pt, m->pt_ratio, m->ct_ratio);
                    double tol = pt->type == PT_FLOAT32 ? fabs(exact) * 0x1p-23
                                 : pt->type == PT_FLOAT64 ? fabs(exact) * 1e-15
                                                          : step * 0.5 + 1e-9 * step;
                    n++;
                    if (got != want || fabs(got - exact) > tol) {
                        n_fail++;
                        fprintf(stderr, "%s/%s %s: decoded %.9g, expected %.9g, exact %.9g\n",
                                m->enterprise->id, m->id, pt->name, got, want, exact);
                    }
                }
            }
            free(r3);
            free(r4);
            free(b1);
            free(b2);
        }
    }
    CHECK_INT(n_fail, 0);
    CHECK(n > 100);
    /* profile sizes: electricity ends at power_b_kw (int32 at 14) -> 16
     * registers, breaker_closed is coil 0 -> 1 bit */
    CHECK_INT(sim_profile_nregs(&profiles[0]), 16);
    CHECK_INT(sim_profile_nbits(&profiles[0]), 1);
    CHECK_INT(sim_profile_nbits(&profiles[1]), 0);
    free_config(cfg);
}

int main(void)
{
    test_determinism();
    test_counters_monotonic();
    test_daily_curve();
    test_counter_integrates_rate();
    test_electrical_values();
    test_supply_off();
    test_counter_offset();
    test_registers_decode();
    return check_done();
}
