/*
 * billing.h - turns a billing counter's raw samples into a period's
 * consumption: wrap-around, meter resets, spikes, coverage, edge
 * interpolation and the time-of-use split by the tariff's bands. Pure
 * computation on samples fed in time order, no storage and no output
 * (engine/billfeed.c reads the store and feeds it). Local time is the
 * process's TZ (the callers setenv("TZ", cfg->timezone) + tzset first).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/*
 * The rules, in the order they apply to each pair of consecutive readings
 * (prev, cur) of a cumulative counter:
 *  - cur >= prev: the delta is consumption, unless max_rate is set and the
 *    delta exceeds max_rate x elapsed hours + twice the register's
 *    resolution at the readings (a spike; bill_rise_limit). The resolution
 *    term keeps one step of the register from being a spike: a float32
 *    reading of 16,000,000 moves by 1 at least, more than 1.25 kWh/h x 1 s.
 *  - cur < prev and the register wraps (integer types): prev + delta wraps
 *    when delta = cur - prev + wrap is plausible: within that limit,
 *    or, without max_rate, at most 20% of the modulus (prev in the top and cur
 *    in the bottom of the range). The delta is added back.
 *  - any other drop is a reset (meter replaced or cleared): a new segment
 *    starts at cur; the interval counts 0 and is reported in resets[].
 *  - every reading is settled only when the next one arrives: a reading
 *    that breaks the rules with its neighbours (prev -> it or it -> next is
 *    a spike or a reset) while prev -> next is plausible was a bad read; it is
 *    dropped (n_outliers) and prev..next is a normal interval. Otherwise a
 *    spike's delta is excluded and the counter continues from the new level.
 *  - the interval of an excluded spike or of a reset is not covered; every
 *    other interval between two good readings is, however long (imported
 *    hourly readings cover their hours). An interval longer than gap_ms
 *    still counts its delta (the counter is cumulative), but how it is
 *    spread over the time-of-use bands is an estimate: its consumption is
 *    reported as 'estimated'.
 *  - each delta is spread uniformly over its interval. Intervals straddling
 *    'from' or 'to' count only the share of their delta that falls inside
 *    the period, so consecutive periods add up exactly to the whole.
 *  - the same uniform spread splits the delta across the tariff's bands by
 *    local wall-clock time (minute of day; DST transitions handled). A minute
 *    covered by several bands belongs to the first band listing it; minutes no
 *    band covers go to 'unbanded', priced at the tariff's flat price.
 * Events (resets, wraps, spikes, outliers) belong to the period containing
 * the later reading's timestamp.
 */

#define BILL_MAX_BANDS 60  /* every season's bands */
#define BILL_MAX_SEASONS 12
#define BILL_MAX_RESETS 16

/*
 * The resolution of a stored reading, in the point's stored unit: for
 * PT_FLOAT32 / PT_FLOAT64 the spacing of floats at |v| / scale, x scale;
 * for any other type scale itself (one count of an integer register, one
 * last digit of a BCD one). scale 0 = exact readings (no resolution term).
 */
struct bill_res {
    enum point_type type;
    double scale;
};

/* The resolution of the point's stored readings (bill_res above): the
 * register's (or a totaliser's fraction register's) type and |scale|, x the
 * ratio factor of the point on m when m is given (as bill_wrap_modulus);
 * DL/T 645 and CJ/T 188 points: one last BCD digit x |scale|. */
struct bill_res bill_res_of(const struct cfg_point *pt, const struct cfg_meter *m);

/* The step between the reading v and the next one the register can give
 * (>= 0; 0 for scale 0 or a non-finite spacing). */
double bill_resolution(const struct bill_res *res, double v);

/* The largest rise from prev to cur over dt_ms that is not a spike:
 * max_rate x hours (x (1 + 1e-9) for rounding) + 2 x the resolution at the
 * larger of |prev|, |cur| (both readings are rounded to the register).
 * INFINITY for max_rate <= 0; res NULL = exact readings. */
double bill_rise_limit(double max_rate, const struct bill_res *res, double prev, double cur,
                       int64_t dt_ms);

struct bill_params {
    int64_t from, to;       /* the period [from, to), Unix ms */
    double wrap;            /* register modulus in the point's unit; 0 = never wraps */
    double max_rate;        /* largest plausible increase per hour; 0 = not set */
    struct bill_res res;    /* of the stored readings; zeroed = exact */
    int64_t gap_ms;         /* longest interval still counted as covered; 0 = any */
    const struct cfg_tariff *tariff; /* NULL: no band split and no amount */
    /* Optional: called for every accepted (non-excluded) delta with its whole,
     * unclipped interval [t0, t1), before it is clipped to the period. */
    void (*on_delta)(void *ud, int64_t t0, int64_t t1, double delta);
    void *ud;
    /* Samples older than dial_since were stored multiplied (schema < 6,
     * storage/meterlog.h): they are divided by legacy_div (the multiplier
     * then in force) as they are fed. legacy_div 0 = no such samples. */
    int64_t dial_since;
    double legacy_div;
    /* A replaced meter: readings at or before lo_ts belong to the old meter
     * and are ignored, the new meter's initial dial reading lo_v is the
     * reading at lo_ts; readings at or after hi_ts belong to the next meter,
     * the final reading hi_v is the reading at hi_ts. */
    bool has_lo, has_hi;
    int64_t lo_ts, hi_ts;
    double lo_v, hi_v;
};

struct bill_reset {
    int64_t ts;             /* the first reading of the new segment */
    double before, after;   /* last reading of the old segment, first of the new */
};

struct bill_result {
    bool has_readings;      /* a good reading lies in [from, to], or an interval spans an edge */
    int64_t start_ts, end_ts;
    /* The readings at from and at to: interpolated along the interval that
     * spans the edge (wrap taken off), so that without wrap or reset
     * end_reading - start_reading = consumption; where no counted interval
     * spans an edge, the first good reading at or after from / the last
     * before to (start_ts, end_ts say which instant). */
    double start_reading;
    double end_reading;
    double consumption;
    double estimated;       /* the part of consumption spread over intervals longer than gap_ms */
    size_t n_bands;         /* the tariff's bands, same order */
    double band[BILL_MAX_BANDS];
    double unbanded;        /* consumption at hours no band covers (0 without bands) */
    double coverage_pct;
    double amount;          /* 0 without tariff */
    size_t n_wraps, n_spikes, n_outliers;
    size_t n_resets;        /* all of them; the first BILL_MAX_RESETS are in resets[] */
    struct bill_reset resets[BILL_MAX_RESETS];
};

struct bill_acc;

/* A new accumulator for one counter over one period. 0 and *ret, or -EINVAL
 * (from >= to, more than BILL_MAX_BANDS bands, bad band hours). p->tariff must
 * outlive the accumulator. */
/*
 * How a counter moved from prev to cur in dt_ms: GOOD (the rise is the
 * consumption), WRAP (a drop that the register's wrap modulus explains: within
 * bill_rise_limit, or without max_rate at most 20 % of the modulus), SPIKE
 * (a rise above bill_rise_limit: excluded) or RESET (any other drop: a
 * replaced or reset meter; a new segment, never negative consumption).
 * *ret_delta gets the consumption for GOOD and WRAP only. wrap 0 = none;
 * max_rate 0 = no limit; res NULL = exact readings.
 */
enum bill_pair { BILL_PAIR_GOOD, BILL_PAIR_WRAP, BILL_PAIR_SPIKE, BILL_PAIR_RESET };
enum bill_pair bill_classify_pair(double wrap, double max_rate, const struct bill_res *res,
                                  double prev, double cur, int64_t dt_ms, double *ret_delta);

int bill_acc_new(const struct bill_params *p, struct bill_acc **ret);
void bill_acc_free(struct bill_acc *a);
/* Feeds one reading; readings must come in time order and may start before
 * 'from' and end after 'to' (the edges need one reading beyond each side).
 * Non-finite values and timestamps not after the previous one are ignored. */
void bill_acc_add(struct bill_acc *a, int64_t ts, double value);
/* The same for a reading that follows the previous one fed through readings
 * all known to be covered and ordinary (a clean rollup bucket's last reading
 * after its first): the interval counts as covered whatever its length. */
void bill_acc_add_span(struct bill_acc *a, int64_t ts, double value);
/* Completes the computation into *ret. Call once, after the last reading. */
void bill_acc_finish(struct bill_acc *a, struct bill_result *ret);

/* One-shot form of the above over an array. 0 or -EINVAL. */
struct bill_sample {
    int64_t ts;
    double value;
};
int bill_compute(const struct bill_params *p, const struct bill_sample *s, size_t n,
                 struct bill_result *ret);

/* The wrap modulus of a point on a meter, in the point's scaled unit:
 * 2^bits x |scale| (x the point's ratio factor); 0 for float and bool
 * types, which do not wrap. DL/T 645 and CJ/T 188 points wrap at 10^(the
 * digits before the point) (1e6 for XXXXXX.XX; CJ/T 188 volumes taken as
 * m3), signed DL/T 645 points never. */
double bill_wrap_modulus(const struct cfg_point *pt, const struct cfg_meter *m);
