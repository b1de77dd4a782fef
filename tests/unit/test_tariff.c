/*
 * test_tariff.c - the two-part tariff's arithmetic (engine/tariff.c), every
 * figure worked out by hand in the comments: a July month with critical-peak
 * hours and a known maximum 15-minute demand, the power-factor adjustment
 * against the shipped national tables (an increase, a rebate capped at the
 * table's end, surcharges outside its base), the capacity basis pro-rated
 * for a half month, water blocks crossing their threshold mid-month,
 * seasons' gaps and overlaps. Times in Asia/Shanghai (UTC+8, no DST).
 */
#include <errno.h>
#include <libconfig.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "common/timeparse.h"
#include "engine/tariff.h"
#include "tests/unit/check.h"

#define MIN 60000LL
#define H 3600000LL

static int64_t lt(const char *s)
{
    int64_t ms = 0;
    if (timeparse(s, &ms) < 0) {
        fprintf(stderr, "bad test time %s\n", s);
        abort();
    }
    return ms;
}

static void mark(struct tariff_season *s, enum tariff_band b, int fh, int th)
{
    int r = tariff_season_mark(s, b, fh * 60, th * 60, NULL);
    if (r < 0) {
        fprintf(stderr, "mark %d %d-%d: %d\n", b, fh, th, r);
        abort();
    }
}

/*
 * DESIGN.md's example: July and August with critical peak 20-22 h, the other
 * months without it (and a deep valley 0-6 h, to use all five names).
 *   summer: critical 20-22 (2 h), peak 8-11 18-20 22-23 (6 h),
 *           flat 7-8 11-18 (8 h), valley 23-7 (8 h)
 *   other:  peak 8-11 18-23 (8 h), flat 7-8 11-18 (8 h), valley 23-24 6-7 (2 h),
 *           deep_valley 0-6 (6 h)
 */
static void make_seasons(struct tariff_season s[2])
{
    tariff_season_init(&s[0], 1u << 7 | 1u << 8);
    mark(&s[0], TARIFF_CRITICAL, 20, 22);
    mark(&s[0], TARIFF_PEAK, 8, 11);
    mark(&s[0], TARIFF_PEAK, 18, 20);
    mark(&s[0], TARIFF_PEAK, 22, 23);
    mark(&s[0], TARIFF_FLAT, 7, 8);
    mark(&s[0], TARIFF_FLAT, 11, 18);
    mark(&s[0], TARIFF_VALLEY, 23, 7);
    unsigned other = 0;
    for (int m = 1; m <= 12; m++)
        if (m != 7 && m != 8)
            other |= 1u << m;
    tariff_season_init(&s[1], other);
    mark(&s[1], TARIFF_PEAK, 8, 11);
    mark(&s[1], TARIFF_PEAK, 18, 23);
    mark(&s[1], TARIFF_FLAT, 7, 8);
    mark(&s[1], TARIFF_FLAT, 11, 18);
    mark(&s[1], TARIFF_VALLEY, 23, 24);
    mark(&s[1], TARIFF_VALLEY, 6, 7);
    mark(&s[1], TARIFF_DEEP_VALLEY, 0, 6);
}

static void test_names(void)
{
    enum tariff_band b;
    CHECK_INT(tariff_band_parse("deep_valley", &b), 0);
    CHECK_INT(b, TARIFF_DEEP_VALLEY);
    CHECK_INT(tariff_band_parse("critical", &b), 0);
    CHECK_INT(b, TARIFF_CRITICAL);
    CHECK_INT(tariff_band_parse("sharp", &b), -EINVAL);
    CHECK_STR(tariff_band_name(TARIFF_VALLEY), "valley");
    CHECK_STR(tariff_band_name_zh(TARIFF_CRITICAL), "尖峰");
    CHECK_STR(tariff_band_name_zh(TARIFF_DEEP_VALLEY), "深谷");
}

static void test_season_cover(void)
{
    struct tariff_season s;
    int a = -1, z = -1, at = -1;
    tariff_season_init(&s, 1u << 1);
    mark(&s, TARIFF_PEAK, 8, 11);
    mark(&s, TARIFF_VALLEY, 23, 7);
    /* 07:00-08:00 and 11:00-23:00 have no band: the first gap is 07-08 */
    CHECK(tariff_season_gap(&s, &a, &z));
    CHECK_INT(a, 7 * 60);
    CHECK_INT(z, 8 * 60);
    /* 10:30-12:00 overlaps the peak at 10:30; nothing of it is marked */
    CHECK_INT(tariff_season_mark(&s, TARIFF_FLAT, 10 * 60 + 30, 12 * 60, &at), -EEXIST);
    CHECK_INT(at, 10 * 60 + 30);
    CHECK_INT(s.band[11 * 60], -1);
    mark(&s, TARIFF_FLAT, 7, 8);
    mark(&s, TARIFF_FLAT, 11, 23);
    CHECK(!tariff_season_gap(&s, &a, &z));
    /* crossing midnight marks both ends of the day */
    CHECK_INT(s.band[0], TARIFF_VALLEY);
    CHECK_INT(s.band[23 * 60 + 59], TARIFF_VALLEY);
    CHECK_INT(tariff_season_mark(&s, TARIFF_FLAT, 0, 1441, NULL), -EINVAL);

    struct tariff_season two[2];
    make_seasons(two);
    CHECK(!tariff_season_gap(&two[0], &a, &z));
    CHECK(!tariff_season_gap(&two[1], &a, &z));
    CHECK_INT(tariff_season_of_month(two, 2, 7), 0);
    CHECK_INT(tariff_season_of_month(two, 2, 8), 0);
    CHECK_INT(tariff_season_of_month(two, 2, 12), 1);
    CHECK_INT(tariff_season_of_month(two, 1, 12), -1);
}

static void test_resolve(void)
{
    struct tariff_season s[2];
    struct tariff_at at;
    make_seasons(s);
    /* a July evening: critical until 22:00 */
    tariff_resolve(s, 2, lt("2026-07-20T20:30:00+08:00"), &at);
    CHECK_INT(at.season, 0);
    CHECK_INT(at.band, TARIFF_CRITICAL);
    CHECK_INT(at.until, lt("2026-07-20T22:00:00+08:00"));
    /* the same minute in January: peak 18-23 */
    tariff_resolve(s, 2, lt("2026-01-20T20:30:00+08:00"), &at);
    CHECK_INT(at.season, 1);
    CHECK_INT(at.band, TARIFF_PEAK);
    CHECK_INT(at.until, lt("2026-01-20T23:00:00+08:00"));
    /* August 31 23:30 is summer valley, which stops at midnight: September
     * starts the other season (deep valley from 00:00) */
    tariff_resolve(s, 2, lt("2026-08-31T23:30:00+08:00"), &at);
    CHECK_INT(at.band, TARIFF_VALLEY);
    CHECK_INT(at.until, lt("2026-09-01T00:00:00+08:00"));
    tariff_resolve(s, 2, lt("2026-09-01T00:00:00+08:00"), &at);
    CHECK_INT(at.season, 1);
    CHECK_INT(at.band, TARIFF_DEEP_VALLEY);
    CHECK_INT(at.until, lt("2026-09-01T06:00:00+08:00"));
    /* one season listing only July: December has none, the whole day unbanded */
    tariff_resolve(s, 1, lt("2026-12-05T10:00:00+08:00"), &at);
    CHECK_INT(at.season, -1);
    CHECK_INT(at.band, -1);
    CHECK_INT(at.until, lt("2026-12-06T00:00:00+08:00"));

    /* a delta of 3 kWh over 19:00-22:00 on July 1: 1 kWh peak, 2 critical */
    double band[TARIFF_BANDS] = {0}, unb = 0;
    tariff_spread(s, 2, lt("2026-07-01T00:00:00+08:00"), lt("2026-08-01T00:00:00+08:00"),
                  lt("2026-07-01T19:00:00+08:00"), lt("2026-07-01T22:00:00+08:00"), 3.0, band,
                  &unb);
    CHECK_NEAR(band[TARIFF_PEAK], 1.0, 1e-12);
    CHECK_NEAR(band[TARIFF_CRITICAL], 2.0, 1e-12);
    CHECK_NEAR(unb, 0.0, 0);
}

/* ---- the shipped power-factor tables ---- */

struct pf_table {
    double standard;
    struct tariff_pf_step step[128];
    size_t n;
};

static int load_pf(const char *name, struct pf_table *t)
{
    const char *src = getenv("PARKGW_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/config/tariffs/%s", src ? src : ".", name);
    config_t c;
    config_init(&c);
    int ok = config_read_file(&c, path) == CONFIG_TRUE;
    if (!ok) {
        fprintf(stderr, "%s:%d: %s\n", path, config_error_line(&c), config_error_text(&c));
        config_destroy(&c);
        return -1;
    }
    config_lookup_float(&c, "pf_standard", &t->standard);
    config_setting_t *l = config_lookup(&c, "pf_adjust");
    t->n = 0;
    for (int i = 0; l && i < config_setting_length(l) && t->n < 128; i++) {
        config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        t->step[t->n].pf = config_setting_get_float_elem(e, 0);
        t->step[t->n].pct = config_setting_get_float_elem(e, 1);
        t->n++;
    }
    config_destroy(&c);
    return 0;
}

static double pct(const struct pf_table *t, double pf)
{
    return tariff_pf_percent(t->step, t->n, pf);
}

static void test_pf_tables(void)
{
    struct pf_table t90, t85, t80;
    CHECK_INT(load_pf("pf-0.90.cfg", &t90), 0);
    CHECK_INT(load_pf("pf-0.85.cfg", &t85), 0);
    CHECK_INT(load_pf("pf-0.80.cfg", &t80), 0);
    CHECK_NEAR(t90.standard, 0.90, 1e-12);
    CHECK_NEAR(t85.standard, 0.85, 1e-12);
    CHECK_NEAR(t80.standard, 0.80, 1e-12);
    /* every table goes down to PF 0.00, one entry per hundredth, highest first */
    CHECK_INT(t90.n, 96);   /* 0.95 .. 0.00 */
    CHECK_INT(t85.n, 95);   /* 0.94 .. 0.00 */
    CHECK_INT(t80.n, 93);   /* 0.92 .. 0.00 */

    /* standard 0.90: rebates 0.15 % per hundredth up to 0.75 % from 0.95 on */
    CHECK_NEAR(pct(&t90, 1.00), -0.75, 1e-12);
    CHECK_NEAR(pct(&t90, 0.95), -0.75, 1e-12);
    CHECK_NEAR(pct(&t90, 0.93), -0.45, 1e-12);
    CHECK_NEAR(pct(&t90, 0.90), 0.0, 1e-12);
    CHECK_NEAR(pct(&t90, 0.85), 2.5, 1e-12);   /* 5 x 0.5 */
    CHECK_NEAR(pct(&t90, 0.70), 10.0, 1e-12);  /* 20 x 0.5 */
    CHECK_NEAR(pct(&t90, 0.65), 15.0, 1e-12);  /* + 5 x 1 */
    CHECK_NEAR(pct(&t90, 0.64), 17.0, 1e-12);  /* + 2 per hundredth below */
    CHECK_NEAR(pct(&t90, 0.60), 25.0, 1e-12);
    /* standard 0.85: rebate 0.1 %/hundredth to 0.90 (0.5), then 0.15: 1.10 from 0.94 */
    CHECK_NEAR(pct(&t85, 0.99), -1.10, 1e-12);
    CHECK_NEAR(pct(&t85, 0.91), -0.65, 1e-12);
    CHECK_NEAR(pct(&t85, 0.88), -0.30, 1e-12);
    CHECK_NEAR(pct(&t85, 0.85), 0.0, 1e-12);
    CHECK_NEAR(pct(&t85, 0.80), 2.5, 1e-12);
    CHECK_NEAR(pct(&t85, 0.60), 15.0, 1e-12);
    CHECK_NEAR(pct(&t85, 0.59), 17.0, 1e-12);
    /* standard 0.80: rebate to 1.00 at 0.90, 1.15 at 0.91, 1.30 from 0.92 */
    CHECK_NEAR(pct(&t80, 0.97), -1.30, 1e-12);
    CHECK_NEAR(pct(&t80, 0.91), -1.15, 1e-12);
    CHECK_NEAR(pct(&t80, 0.90), -1.00, 1e-12);
    CHECK_NEAR(pct(&t80, 0.80), 0.0, 1e-12);
    CHECK_NEAR(pct(&t80, 0.55), 15.0, 1e-12);
    CHECK_NEAR(pct(&t80, 0.54), 17.0, 1e-12);
    for (size_t i = 1; i < t90.n; i++)
        CHECK(t90.step[i].pf < t90.step[i - 1].pf && t90.step[i].pct > t90.step[i - 1].pct);

    /*
     * The month's PF: 1000 kWh with 620 kvarh is 1000 / sqrt(1000^2 + 620^2)
     * = 1000 / 1176.605 = 0.84991 -> 0.85. Against standard 0.90 that is
     * +2.5 %. Energy 10,000.00 + basic 5,000.00 = 15,000.00 x 2.5 % =
     * +375.00; the surcharge 295.00 (10,000 kWh x 0.0295) is outside the
     * base (with it, 382.38). Amount 10,000 + 5,000 + 375 + 295 = 15,670.00.
     */
    double pf = tariff_pf(1000, 620);
    CHECK_NEAR(pf, 0.85, 1e-12);
    struct tariff_charges c;
    tariff_charges_sum(10000.0, 5000.0, pct(&t90, pf), 10000 * 0.0295, 0, &c);
    CHECK_NEAR(c.pf_pct, 2.5, 1e-12);
    CHECK_NEAR(c.pf_adjustment, 375.00, 1e-9);
    CHECK_NEAR(c.surcharge, 295.00, 1e-9);
    CHECK_NEAR(c.amount, 15670.00, 1e-9);
    /* against standard 0.85 the same month is neutral */
    tariff_charges_sum(10000.0, 5000.0, pct(&t85, pf), 295.0, 0, &c);
    CHECK_NEAR(c.pf_adjustment, 0.0, 1e-9);
    CHECK_NEAR(c.amount, 15295.00, 1e-9);

    /*
     * 1000 kWh with 290 kvarh: 1000 / 1041.201 = 0.96043 -> 0.96, above
     * the 0.90 table's last rebate entry (0.95): capped at -0.75 %:
     * 15,000 x -0.75 % = -112.50; amount 15,000 - 112.50 + 295 + 12.34
     * (fixed, also outside the base) = 15,194.84.
     */
    pf = tariff_pf(1000, 290);
    CHECK_NEAR(pf, 0.96, 1e-12);
    tariff_charges_sum(10000.0, 5000.0, pct(&t90, pf), 295.0, 12.34, &c);
    CHECK_NEAR(c.pf_adjustment, -112.50, 1e-9);
    CHECK_NEAR(c.amount, 15194.84, 1e-9);
    /* no active energy: no PF and no adjustment; reactive export counts 0 */
    CHECK(isnan(tariff_pf(0, 10)));
    CHECK_NEAR(pct(&t90, tariff_pf(0, 10)), 0.0, 0);
    CHECK_NEAR(tariff_pf(500, -3), 1.0, 0);
    /* two decimals, rounded: 0.8951 -> 0.90 (no increase), 0.8949 -> 0.89 */
    CHECK_NEAR(tariff_pf(895.1, sqrt(1e6 - 895.1 * 895.1)), 0.90, 1e-12);
    CHECK_NEAR(tariff_pf(894.9, sqrt(1e6 - 894.9 * 894.9)), 0.89, 1e-12);
}

/*
 * July 2026 on the summer season, prices critical 1.35, peak 1.05, flat
 * 0.68, valley 0.32 CNY/kWh, surcharge 0.0295, demand 38 CNY/kW, PF 1.00
 * on the 0.90 table.
 * A constant 100 kW all month, read every minute (100/60 kWh a minute),
 * and 500 kW in one quarter hour, 2026-07-20 20:30-20:45 (critical):
 *   critical  31 x 2 h x 100 = 6,200 + 400 kW x 0.25 h = 100 -> 6,300 kWh
 *   peak      31 x 6 h x 100 = 18,600;  flat 31 x 8 x 100 = 24,800
 *   valley    24,800;  total 74,500 kWh
 *   energy    6,300 x 1.35 = 8,505 + 18,600 x 1.05 = 19,530
 *             + 24,800 x 0.68 = 16,864 + 24,800 x 0.32 = 7,936 = 52,835.00
 *   demand    the 20:30 window: 500/60 x 15 = 125 kWh x 4 = 500 kW (every
 *             other window 25 kWh = 100 kW); basic 500 x 38 = 19,000.00
 *   PF 1.00   -0.75 % of 71,835.00 = -538.7625 -> -538.76
 *   surcharge 74,500 x 0.0295 = 2,197.75
 *   amount    52,835 + 19,000 - 538.76 + 2,197.75 = 73,493.99
 */
static void test_july_month(void)
{
    struct tariff_season s[2];
    make_seasons(s);
    const double price[TARIFF_BANDS] = {1.35, 1.05, 0.68, 0.32, 0.30};
    int64_t from = lt("2026-07-01T00:00:00+08:00"), to = lt("2026-08-01T00:00:00+08:00");
    int64_t hi0 = lt("2026-07-20T20:30:00+08:00"), hi1 = hi0 + 15 * MIN;
    struct tariff_series q, d;
    CHECK_INT(tariff_series_init(&q, TARIFF_QUARTER_HOUR, from, to), 0);
    CHECK_INT(tariff_series_init(&d, TARIFF_DAY, from, to), 0);
    CHECK_INT(q.n, 31 * 96);
    CHECK_INT(d.n, 31);
    double band[TARIFF_BANDS] = {0}, unb = 0, total = 0;
    for (int64_t t = from; t < to; t += MIN) {
        double kw = t >= hi0 && t < hi1 ? 500.0 : 100.0;
        double delta = kw / 60.0;
        tariff_spread(s, 2, from, to, t, t + MIN, delta, band, &unb);
        tariff_series_add(&q, t, t + MIN, delta);
        tariff_series_add(&d, t, t + MIN, delta);
        total += delta;
    }
    CHECK_NEAR(total, 74500.0, 1e-6);
    CHECK_NEAR(band[TARIFF_CRITICAL], 6300.0, 1e-6);
    CHECK_NEAR(band[TARIFF_PEAK], 18600.0, 1e-6);
    CHECK_NEAR(band[TARIFF_FLAT], 24800.0, 1e-6);
    CHECK_NEAR(band[TARIFF_VALLEY], 24800.0, 1e-6);
    CHECK_NEAR(band[TARIFF_DEEP_VALLEY], 0.0, 0);
    CHECK_NEAR(unb, 0.0, 0);
    double energy = 0;
    for (int b = 0; b < TARIFF_BANDS; b++)
        energy += band[b] * price[b];
    CHECK_NEAR(energy, 52835.0, 1e-6);

    double kw;
    int64_t at;
    tariff_max_demand(&q, from, to, &kw, &at);
    CHECK_NEAR(kw, 500.0, 1e-9);
    CHECK_INT(at, hi0);
    /* the daily chart: 2,400 kWh a day, July 20 100 more */
    CHECK_NEAR(d.v[0], 2400.0, 1e-9);
    CHECK_NEAR(d.v[19], 2500.0, 1e-9);
    CHECK_INT(d.edge[19], lt("2026-07-20T00:00:00+08:00"));

    struct tariff_pf_step t90[] = {{0.95, -0.75}, {0.94, -0.60}, {0.90, 0.0}, {0.89, 0.5}};
    double pf = tariff_pf(total, 0);
    struct tariff_charges c;
    tariff_charges_sum(energy, kw * 38.0, tariff_pf_percent(t90, 4, pf), total * 0.0295, 0, &c);
    CHECK_NEAR(c.energy_charge, 52835.00, 1e-9);
    CHECK_NEAR(c.basic_charge, 19000.00, 1e-9);
    CHECK_NEAR(c.pf_adjustment, -538.76, 1e-9);
    CHECK_NEAR(c.surcharge, 2197.75, 1e-9);
    CHECK_NEAR(c.amount, 73493.99, 1e-9);

    /* the demand of the first half only (before the 500 kW window): 100 kW */
    tariff_max_demand(&q, from, lt("2026-07-16T00:00:00+08:00"), &kw, &at);
    CHECK_NEAR(kw, 100.0, 1e-9);
    CHECK_INT(at, from);
    tariff_series_free(&q);
    tariff_series_free(&d);
}

/*
 * The capacity basis: 800 kVA x 25 CNY/kVA = 20,000 CNY a month.
 * June 1-16 is 15 of June's 30 days: 10,000.00. June 16 - July 16 is
 * 15/30 of June and 15/31 of July: 10,000 + 9,677.419 = 19,677.42.
 * A period starting at noon counts half of that day.
 */
static void test_capacity_prorated(void)
{
    struct tariff_month m[4];
    size_t n = 0;
    CHECK_INT(tariff_months(lt("2026-06-01T00:00:00+08:00"), lt("2026-06-16T00:00:00+08:00"), m,
                            4, &n),
              0);
    CHECK_INT(n, 1);
    CHECK_INT(m[0].days_in_month, 30);
    CHECK_NEAR(m[0].days, 15.0, 1e-12);
    CHECK_NEAR(800 * 25.0 * m[0].fraction, 10000.0, 1e-9);

    CHECK_INT(tariff_months(lt("2026-06-16T00:00:00+08:00"), lt("2026-07-16T00:00:00+08:00"), m,
                            4, &n),
              0);
    CHECK_INT(n, 2);
    CHECK_INT(m[0].month, 6);
    CHECK_INT(m[1].month, 7);
    CHECK_INT(m[1].start, lt("2026-07-01T00:00:00+08:00"));
    CHECK_INT(m[1].end, lt("2026-08-01T00:00:00+08:00"));
    double basic = 0;
    for (size_t i = 0; i < n; i++)
        basic += 800 * 25.0 * m[i].fraction;
    struct tariff_charges c;
    tariff_charges_sum(0, basic, 0, 0, 0, &c);
    CHECK_NEAR(c.basic_charge, 19677.42, 1e-9);

    /* a whole month is 1, whatever its length */
    CHECK_INT(tariff_months(lt("2026-02-01T00:00:00+08:00"), lt("2026-03-01T00:00:00+08:00"), m,
                            4, &n),
              0);
    CHECK_NEAR(m[0].fraction, 1.0, 1e-12);
    CHECK_INT(m[0].days_in_month, 28);
    CHECK_INT(tariff_months(lt("2026-06-10T12:00:00+08:00"), lt("2026-06-11T00:00:00+08:00"), m,
                            4, &n),
              0);
    CHECK_NEAR(m[0].days, 0.5, 1e-12);
    /* a year and a day is 13 months: more than 12 slots refused */
    CHECK_INT(tariff_months(lt("2026-01-01T00:00:00+08:00"), lt("2027-01-02T00:00:00+08:00"), m,
                            4, &n),
              -E2BIG);
}

/*
 * Water blocks (0, 3.90), (1000, 4.90) per meter and month; 40 m3 a day in
 * July reaches 1,000 m3 on July 25 (25 x 40):
 *   the month: 1,000 x 3.90 + 240 x 4.90 = 3,900 + 1,176 = 5,076.00
 *   July 1-16 (600 m3, below):   600 x 3.90 = 2,340.00
 *   July 16-Aug 1 (640 m3 after 600): 400 x 3.90 + 240 x 4.90 = 2,736.00
 *   the halves add up to the month: 2,340 + 2,736 = 5,076.
 */
static void test_water_blocks(void)
{
    const struct tariff_block b[] = {{0.0, 3.90}, {1000.0, 4.90}};
    CHECK_NEAR(tariff_block_charge(b, 2, 0, 1240), 5076.0, 1e-9);
    CHECK_NEAR(tariff_block_charge(b, 2, 0, 600), 2340.0, 1e-9);
    CHECK_NEAR(tariff_block_charge(b, 2, 600, 640), 2736.0, 1e-9);
    /* day by day: the 25th day is the last one below, the 26th all above */
    double sum = 0, before = 0;
    for (int day = 1; day <= 31; day++) {
        double c = tariff_block_charge(b, 2, before, 40.0);
        if (day == 25)
            CHECK_NEAR(c, 40 * 3.90, 1e-9);
        if (day == 26)
            CHECK_NEAR(c, 40 * 4.90, 1e-9);
        sum += c;
        before += 40.0;
    }
    CHECK_NEAR(sum, 5076.0, 1e-9);
    /* a first threshold above 0 prices what lies below it at its price too */
    const struct tariff_block b2[] = {{10.0, 2.0}, {20.0, 3.0}};
    CHECK_NEAR(tariff_block_charge(b2, 2, 0, 25), 20 * 2.0 + 5 * 3.0, 1e-9);
    CHECK_NEAR(tariff_block_charge(b2, 0, 0, 25), 0.0, 0);
    CHECK_NEAR(tariff_block_charge(b2, 2, 5, 0), 0.0, 0);
}

/* A delta that jumps a gap, and deltas straddling the period's edges. */
static void test_series_edges(void)
{
    int64_t from = lt("2026-07-01T00:00:00+08:00"), to = lt("2026-07-03T00:00:00+08:00");
    struct tariff_series d;
    CHECK_INT(tariff_series_init(&d, TARIFF_DAY, from, to), 0);
    CHECK_INT(d.n, 2);
    /* 48 over June 30 12:00 - July 1 12:00 (24 h): 24 inside, on July 1 */
    tariff_series_add(&d, from - 12 * H, from + 12 * H, 48.0);
    /* 30 over July 1 18:00 - July 3 06:00 (36 h): 6 h on the 1st = 5, 24 h on
     * the 2nd = 20, the rest after the period */
    tariff_series_add(&d, from + 18 * H, from + 54 * H, 30.0);
    CHECK_NEAR(d.v[0], 24.0 + 5.0, 1e-9);
    CHECK_NEAR(d.v[1], 20.0, 1e-9);
    tariff_series_free(&d);
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    test_names();
    test_season_cover();
    test_resolve();
    test_pf_tables();
    test_july_month();
    test_capacity_prorated();
    test_water_blocks();
    test_series_edges();
    return check_done();
}
