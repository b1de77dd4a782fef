/*
 * tariff.h - the arithmetic of China's two-part industrial tariff (两部制电价)
 * and of ladder prices, apart from any statement: time-of-use bands by season
 * (尖 峰 平 谷 深谷), the basic charge (基本电费) by contracted capacity or by
 * the month's maximum 15-minute demand, pro-rated by days, the power-factor
 * adjustment (力调电费), block (ladder) prices and how the charges add up.
 * Pure computation: no SQL, no output, no config parsing (engine/statement.c
 * feeds it). Local time is the process's TZ, as in engine/billing.h.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The five band names, in the order statements list them. */
enum tariff_band {
    TARIFF_CRITICAL,    /* 尖峰 */
    TARIFF_PEAK,        /* 高峰 */
    TARIFF_FLAT,        /* 平段 */
    TARIFF_VALLEY,      /* 低谷 */
    TARIFF_DEEP_VALLEY, /* 深谷 */
    TARIFF_BANDS
};

/* "critical" "peak" "flat" "valley" "deep_valley". */
const char *tariff_band_name(enum tariff_band b);
/* "尖峰" "高峰" "平段" "低谷" "深谷" (UTF-8). */
const char *tariff_band_name_zh(enum tariff_band b);
/* 0 and *ret for one of the five names, else -EINVAL. */
int tariff_band_parse(const char *s, enum tariff_band *ret);

#define TARIFF_MIN_PER_DAY 1440

/*
 * A season: the months it applies to and the band of every minute of the
 * local day. Build one with tariff_season_init and tariff_season_mark, then
 * tariff_season_gap tells whether every minute has its band.
 */
struct tariff_season {
    unsigned months;                          /* bit m set for month m, 1..12 */
    signed char band[TARIFF_MIN_PER_DAY];     /* enum tariff_band, -1 = none yet */
};

void tariff_season_init(struct tariff_season *s, unsigned months);
/* Gives minutes [from_min, to_min) band b (to_min < from_min crosses
 * midnight; to_min == from_min is the whole day). 0, or -EEXIST with
 * *ret_min the first minute that already had a band (nothing changed
 * then), or -EINVAL for minutes out of 0..1440. */
int tariff_season_mark(struct tariff_season *s, enum tariff_band b, int from_min, int to_min,
                       int *ret_min);
/* True and the first stretch of minutes without a band [*ret_from, *ret_to),
 * or false when every minute has one. */
bool tariff_season_gap(const struct tariff_season *s, int *ret_from, int *ret_to);
/* Index of the first of n seasons listing month (1..12), or -1. */
int tariff_season_of_month(const struct tariff_season *s, size_t n, int month);

/* Where an instant falls: its season and band, and the end of the stretch
 * from it during which neither changes. */
struct tariff_at {
    int season;             /* index, -1 when no season lists the month */
    int band;               /* enum tariff_band, -1 for a minute without band */
    int64_t until;          /* Unix ms: the next band boundary, local midnight or
                             * change of UTC offset, whichever comes first */
};
/* Resolves Unix ms ts against n seasons (local time). */
void tariff_resolve(const struct tariff_season *s, size_t n, int64_t ts, struct tariff_at *ret);

/* Spreads delta uniformly over [t0, t1) and adds the share of each instant
 * inside [from, to) to ret_band[] by its band, or to *ret_unbanded (a minute
 * without band, a month without season), as engine/billing.c spreads a
 * counter's deltas. */
void tariff_spread(const struct tariff_season *s, size_t n, int64_t from, int64_t to,
                   int64_t t0, int64_t t1, double delta, double ret_band[TARIFF_BANDS],
                   double *ret_unbanded);

/* ---- calendar months and pro-rating ---- */

/* One local calendar month's share of a period. */
struct tariff_month {
    int year, month;        /* 1..12 */
    int64_t start, end;     /* the whole month [start, end), Unix ms */
    int64_t from, to;       /* its part inside the period */
    double days;            /* local days of the part (fractional for partial days) */
    int days_in_month;
    double fraction;        /* days / days_in_month: 1 for a whole month */
};
/* Splits [from, to) by local calendar month into ret[0..*ret_n), at most
 * max. 0, or -EINVAL (from >= to), -E2BIG (more than max months). */
int tariff_months(int64_t from, int64_t to, struct tariff_month *ret, size_t max,
                  size_t *ret_n);

/* ---- series of consumption over aligned buckets (demand, daily chart) ---- */

enum tariff_grain { TARIFF_QUARTER_HOUR, TARIFF_DAY };

/* Consumption of [from, to) by local quarter hours or local days. Deltas
 * are spread uniformly over their interval, as engine/billing.c spreads
 * them, and clipped to the period. */
struct tariff_series {
    enum tariff_grain grain;
    int64_t from, to;
    size_t n;               /* buckets */
    int64_t *edge;          /* n + 1 bucket bounds; edge[0] <= from, edge[n] >= to */
    double *v;              /* consumption per bucket (inside the period only) */
    size_t cur;             /* bucket of the last delta: deltas come in order */
};
/* 0 or -EINVAL (from >= to). Free with tariff_series_free. */
int tariff_series_init(struct tariff_series *s, enum tariff_grain g, int64_t from, int64_t to);
void tariff_series_free(struct tariff_series *s);
/* Adds delta spread over [t0, t1) (the shape of bill_params.on_delta). */
void tariff_series_add(struct tariff_series *s, int64_t t0, int64_t t1, double delta);

/* The maximum demand over the quarter hours that start in [from, to): kW =
 * the window's kWh x 4. *ret_kw 0 and *ret_ts -1 when nothing was consumed;
 * *ret_ts is the window's start. Ties go to the earliest window. */
void tariff_max_demand(const struct tariff_series *q, int64_t from, int64_t to, double *ret_kw,
                       int64_t *ret_ts);

/* ---- power factor ---- */

/* The month's power factor kWh / sqrt(kWh^2 + kvarh^2) rounded to two
 * decimals; NaN when kWh <= 0 (no adjustment then). kvarh < 0 counts as 0. */
double tariff_pf(double kwh, double kvarh);

struct tariff_pf_step {
    double pf;              /* the entry applies from this PF up */
    double pct;             /* percent of energy + basic charge; < 0 a rebate */
};
/* The percent of the first of n steps whose pf <= the month's pf (steps
 * listed from the highest PF down, as the national tables are); the last
 * step's percent below them all; 0 for NaN or n == 0. */
double tariff_pf_percent(const struct tariff_pf_step *steps, size_t n, double pf);

/* ---- block (ladder) prices ---- */

struct tariff_block {
    double threshold;       /* the price applies to the month's consumption above it */
    double price;
};
/* The charge for q units consumed after 'before' units of the same month,
 * on n blocks in ascending threshold order (the first block's price also
 * below its threshold). Consecutive periods of a month add up to the
 * month's charge. */
double tariff_block_charge(const struct tariff_block *b, size_t n, double before, double q);

/* ---- the charges of one meter ---- */

struct tariff_charges {
    double energy_charge;   /* 电度电费: bands, blocks or a flat price */
    double basic_charge;    /* 基本电费 */
    double pf_pct;          /* the adjustment's percent */
    double pf_adjustment;   /* 力调电费: pf_pct of energy_charge + basic_charge */
    double surcharge;       /* 代征基金及附加: never adjusted */
    double fixed_charge;
    double amount;          /* the sum of the five charges above */
};
/* Rounds each charge to cents and adds them up: the PF adjustment is
 * pf_pct percent of the rounded energy and basic charges only (surcharges
 * and fixed charges are outside its base), itself rounded to cents. */
void tariff_charges_sum(double energy, double basic, double pf_pct, double surcharge,
                        double fixed, struct tariff_charges *ret);
