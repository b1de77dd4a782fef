/*
 * billing.c - the counter arithmetic behind `parkgw bill` and the counter
 * buckets of `parkgw query`: pair classification (wrap, reset, spike, bad
 * read), coverage, edge interpolation and the time-of-use split over local
 * wall-clock minutes. The rules are written out in billing.h.
 */
#include "engine/billing.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/util.h"

#define MIN_PER_DAY 1440
#define MS_PER_MIN 60000LL
#define MS_PER_DAY 86400000LL
#define MS_PER_HOUR 3600000.0

/* The pair kinds are billing.h's; short local names keep the code readable. */
enum pair_kind {
    PAIR_GOOD = BILL_PAIR_GOOD,
    PAIR_WRAP = BILL_PAIR_WRAP,
    PAIR_SPIKE = BILL_PAIR_SPIKE,
    PAIR_RESET = BILL_PAIR_RESET
};

struct bill_acc {
    struct bill_params p;
    bool banded;
    /* band index per local minute of each season, -1 = none; the season of
     * each month (-1: none) */
    signed char band_of_min[BILL_MAX_SEASONS][MIN_PER_DAY];
    signed char season_of_month[13];
    /* Cached TOU segment: every instant of [seg_lo, seg_hi) is in seg_band. */
    int64_t seg_lo, seg_hi;
    int seg_band;

    bool has_base;          /* the last accepted reading */
    int64_t base_ts;
    double base_v;
    bool has_pend;          /* a reading that broke the rules, waiting for the next one */
    int64_t pend_ts;
    double pend_v;
    enum pair_kind pend_kind;
    double pend_delta;      /* its delta from the base, when pend_kind is good or wrap */
    bool pend_span;         /* fed by bill_acc_add_span: its interval is covered */

    bool hi_fed;            /* the final reading of a replaced meter was fed */
    bool has_s_edge, has_e_edge; /* an accepted interval spans from / to */
    double s_edge, e_edge;  /* the readings interpolated there */

    int64_t covered_ms;
    struct bill_result r;
};

static long gmtoff_at(time_t s)
{
    struct tm tm;
    localtime_r(&s, &tm);
    return tm.tm_gmtoff;
}

static void mark_minutes(signed char *tab, int from, int to, int band)
{
    for (int m = from; m < to; m++)
        if (tab[m] < 0)
            tab[m] = (signed char)band;
}

static int build_band_table(struct bill_acc *a)
{
    const struct cfg_tariff *t = a->p.tariff;
    memset(a->band_of_min, -1, sizeof(a->band_of_min));
    /* bands given directly: one season of every month */
    memset(a->season_of_month, 0, sizeof(a->season_of_month));
    if (!t || t->n_bands == 0)
        return 0;
    if (t->n_bands > BILL_MAX_BANDS || t->n_seasons > BILL_MAX_SEASONS)
        return -EINVAL;
    if (t->n_seasons > 0) {
        memset(a->season_of_month, -1, sizeof(a->season_of_month));
        for (size_t k = 0; k < t->n_seasons; k++)
            for (int mo = 1; mo <= 12; mo++)
                if ((t->seasons[k].months & (1u << mo)) && a->season_of_month[mo] < 0)
                    a->season_of_month[mo] = (signed char)k;
    }
    for (size_t i = 0; i < t->n_bands; i++) {
        const struct cfg_band *b = &t->bands[i];
        if (b->season < 0 || b->season >= BILL_MAX_SEASONS)
            return -EINVAL;
        signed char *tab = a->band_of_min[b->season];
        for (size_t h = 0; h < b->n_hours; h++) {
            int from = b->hours[h].from_min, to = b->hours[h].to_min;
            if (from < 0 || from >= MIN_PER_DAY || to < 0 || to > MIN_PER_DAY)
                return -EINVAL;
            if (to > from) {
                mark_minutes(tab, from, to, (int)i);
            } else if (to < from) {
                /* crosses midnight: "23:00-07:00" */
                mark_minutes(tab, from, MIN_PER_DAY, (int)i);
                mark_minutes(tab, 0, to, (int)i);
            } else {
                mark_minutes(tab, 0, MIN_PER_DAY, (int)i);
            }
        }
    }
    a->banded = true;
    return 0;
}

/*
 * The local-time stretch starting at t during which the band does not change:
 * up to the next minute of the day whose band differs, and never across a
 * change of UTC offset (DST), since wall-clock minutes map to UTC through the
 * offset in force.
 */
static void tou_segment(struct bill_acc *a, int64_t t, int64_t *ret_end, int *ret_band)
{
    if (t >= a->seg_lo && t < a->seg_hi) {
        *ret_end = a->seg_hi;
        *ret_band = a->seg_band;
        return;
    }
    time_t s = (time_t)floor_div(t, 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    long off = tm.tm_gmtoff;
    int64_t off_ms = (int64_t)off * 1000;
    int64_t local = t + off_ms;
    int64_t day0 = floor_div(local, MS_PER_DAY) * MS_PER_DAY;
    int m = (int)((local - day0) / MS_PER_MIN);
    /* the season of the local day's month; the stretch ends at midnight at
     * the latest, where the month and so the season may change */
    int season = a->season_of_month[tm.tm_mon + 1];
    static const signed char none[MIN_PER_DAY] = {0};
    const signed char *tab = season >= 0 ? a->band_of_min[season] : none;
    int band = season >= 0 ? tab[m] : -1;
    int m2 = m + 1;
    while (m2 < MIN_PER_DAY && (season >= 0 ? tab[m2] : -1) == band)
        m2++;
    int64_t end = day0 + (int64_t)m2 * MS_PER_MIN - off_ms;

    time_t last = (time_t)floor_div(end - 1, 1000);
    if (gmtoff_at(last) != off) {
        /* An offset change inside: cut at the first second of the new offset. */
        time_t lo = s, hi = last;
        while (hi - lo > 1) {
            time_t mid = lo + (hi - lo) / 2;
            if (gmtoff_at(mid) == off)
                lo = mid;
            else
                hi = mid;
        }
        end = (int64_t)hi * 1000;
    }
    a->seg_lo = t;
    a->seg_hi = end;
    a->seg_band = band;
    *ret_end = end;
    *ret_band = band;
}

static bool in_period(const struct bill_acc *a, int64_t ts)
{
    return ts >= a->p.from && ts < a->p.to;
}

/* Spreads delta uniformly over [t0, t1) and books the share inside the
 * period; every share of an interval longer than gap_ms is an estimate. */
static void spread(struct bill_acc *a, int64_t t0, int64_t t1, double delta, bool short_gap)
{
    int64_t c0 = t0 > a->p.from ? t0 : a->p.from;
    int64_t c1 = t1 < a->p.to ? t1 : a->p.to;
    if (c0 >= c1)
        return;
    double len = (double)(t1 - t0);
    double share = delta * ((double)(c1 - c0) / len);
    a->r.consumption += share;
    if (!short_gap)
        a->r.estimated += share;
    a->covered_ms += c1 - c0;
    if (!a->banded || delta == 0)
        return;
    int64_t t = c0;
    while (t < c1) {
        int64_t end;
        int band;
        tou_segment(a, t, &end, &band);
        if (end > c1)
            end = c1;
        double part = delta * ((double)(end - t) / len);
        if (band >= 0)
            a->r.band[band] += part;
        else
            a->r.unbanded += part;
        t = end;
    }
}

double bill_resolution(const struct bill_res *res, double v)
{
    if (!res || !(res->scale > 0) || !isfinite(v))
        return 0;
    double x = fabs(v) / res->scale, step;
    switch (res->type) {
    case PT_FLOAT32: {
        float f = (float)x;
        step = (double)nextafterf(f, INFINITY) - (double)f;
        break;
    }
    case PT_FLOAT64:
        step = nextafter(x, INFINITY) - x;
        break;
    default:
        return res->scale;
    }
    return isfinite(step) ? step * res->scale : 0;
}

double bill_rise_limit(double max_rate, const struct bill_res *res, double prev, double cur,
                       int64_t dt_ms)
{
    if (!(max_rate > 0))
        return INFINITY;
    /* relative slack so a delta exactly at the limit is not a spike by rounding */
    double limit = max_rate * ((double)dt_ms / MS_PER_HOUR) * (1 + 1e-9);
    double v = fmax(fabs(prev), fabs(cur));
    return limit + 2 * bill_resolution(res, v);
}

enum bill_pair bill_classify_pair(double wrap, double max_rate, const struct bill_res *res,
                                  double prev, double cur, int64_t dt_ms, double *ret_delta)
{
    double raw = cur - prev;
    double limit = bill_rise_limit(max_rate, res, prev, cur, dt_ms);

    if (raw >= 0) {
        if (raw > limit)
            return BILL_PAIR_SPIKE;
        *ret_delta = raw;
        return BILL_PAIR_GOOD;
    }
    if (wrap > 0) {
        double w = raw + wrap;
        bool plausible = max_rate > 0 ? (w >= 0 && w <= limit) : (w >= 0 && w <= 0.2 * wrap);
        if (plausible) {
            *ret_delta = w;
            return BILL_PAIR_WRAP;
        }
    }
    return BILL_PAIR_RESET;
}

static enum pair_kind classify(const struct bill_acc *a, double prev, double cur, int64_t dt_ms,
                               double *ret_delta)
{
    return (enum pair_kind)bill_classify_pair(a->p.wrap, a->p.max_rate, &a->p.res, prev, cur,
                                              dt_ms, ret_delta);
}

static void take_reading(struct bill_acc *a, int64_t ts, double v)
{
    a->has_base = true;
    a->base_ts = ts;
    a->base_v = v;
    if (!in_period(a, ts))
        return;
    if (!a->r.has_readings) {
        a->r.has_readings = true;
        a->r.start_ts = ts;
        a->r.start_reading = v;
    }
    a->r.end_ts = ts;
    a->r.end_reading = v;
}

/* The counter's reading at t inside the interval [t0, t1) that rose by
 * delta from v0, on the register's dial (a wrap taken off). */
static double reading_at(const struct bill_acc *a, int64_t t0, int64_t t1, double v0,
                         double delta, int64_t t)
{
    double v = v0 + delta * ((double)(t - t0) / (double)(t1 - t0));
    if (a->p.wrap > 0 && v >= a->p.wrap)
        v -= a->p.wrap;
    return v;
}

static void accept(struct bill_acc *a, int64_t ts, double v, double delta, enum pair_kind kind,
                   bool span)
{
    bool short_gap = span || a->p.gap_ms <= 0 || ts - a->base_ts <= a->p.gap_ms;
    if (a->p.on_delta)
        a->p.on_delta(a->p.ud, a->base_ts, ts, delta);
    spread(a, a->base_ts, ts, delta, short_gap);
    if (a->base_ts <= a->p.from && ts > a->p.from) {
        a->has_s_edge = true;
        a->s_edge = a->base_ts == a->p.from ? a->base_v
                                             : reading_at(a, a->base_ts, ts, a->base_v, delta,
                                                          a->p.from);
    }
    if (a->base_ts < a->p.to && ts >= a->p.to) {
        a->has_e_edge = true;
        a->e_edge = ts == a->p.to ? v : reading_at(a, a->base_ts, ts, a->base_v, delta, a->p.to);
    }
    if (kind == PAIR_WRAP && in_period(a, ts))
        a->r.n_wraps++;
    take_reading(a, ts, v);
}

/* The pending reading is real: the counter jumped (spike) or restarted. */
static void confirm_pending(struct bill_acc *a)
{
    if (in_period(a, a->pend_ts)) {
        if (a->pend_kind == PAIR_SPIKE) {
            a->r.n_spikes++;
        } else {
            if (a->r.n_resets < BILL_MAX_RESETS) {
                struct bill_reset *rs = &a->r.resets[a->r.n_resets];
                rs->ts = a->pend_ts;
                rs->before = a->base_v;
                rs->after = a->pend_v;
            }
            a->r.n_resets++;
        }
    }
    a->has_pend = false;
    take_reading(a, a->pend_ts, a->pend_v);
}

int bill_acc_new(const struct bill_params *p, struct bill_acc **ret)
{
    if (!p || p->from >= p->to)
        return -EINVAL;
    struct bill_acc *a = xcalloc(1, sizeof(*a));
    a->p = *p;
    a->seg_lo = a->seg_hi = 0;
    int r = build_band_table(a);
    if (r < 0) {
        free(a);
        return r;
    }
    a->r.n_bands = a->banded ? p->tariff->n_bands : 0;
    if (p->has_lo)
        take_reading(a, p->lo_ts, p->lo_v);
    *ret = a;
    return 0;
}

void bill_acc_free(struct bill_acc *a)
{
    free(a);
}

static bool kind_ok(enum pair_kind k)
{
    return k == PAIR_GOOD || k == PAIR_WRAP;
}

static void set_pending(struct bill_acc *a, int64_t ts, double v, enum pair_kind kind,
                        double delta, bool span)
{
    a->has_pend = true;
    a->pend_span = span;
    a->pend_ts = ts;
    a->pend_v = v;
    a->pend_kind = kind;
    a->pend_delta = delta;
}

/* Settles the pending reading: its pair with the base is accepted, or its
 * spike/reset confirmed. */
static void settle_pending(struct bill_acc *a)
{
    if (kind_ok(a->pend_kind)) {
        a->has_pend = false;
        accept(a, a->pend_ts, a->pend_v, a->pend_delta, a->pend_kind, a->pend_span);
    } else {
        confirm_pending(a);
    }
}

/*
 * Every reading waits for the next one before its pair with the base is
 * settled: a reading is a bad read when the base and the next reading agree
 * with each other but not with it (the base -> next pair is plausible while
 * base -> it or it -> next is not). Then it is dropped and the next one
 * takes its place.
 */
static void add_reading(struct bill_acc *a, int64_t ts, double value, bool span)
{
    double d_bn = 0, d_pn = 0;

    if (!isfinite(value))
        return;
    if (!a->has_base) {
        take_reading(a, ts, value);
        return;
    }
    if (ts <= (a->has_pend ? a->pend_ts : a->base_ts))
        return;
    enum pair_kind k_bn = classify(a, a->base_v, value, ts - a->base_ts, &d_bn);
    if (!a->has_pend) {
        set_pending(a, ts, value, k_bn, d_bn, span);
        return;
    }
    enum pair_kind k_pn = classify(a, a->pend_v, value, ts - a->pend_ts, &d_pn);
    bool pend_odd = !kind_ok(a->pend_kind) || !kind_ok(k_pn);
    if (pend_odd && kind_ok(k_bn)) {
        if (in_period(a, a->pend_ts))
            a->r.n_outliers++;
        /* its interval now starts at the base, not where the span began */
        set_pending(a, ts, value, k_bn, d_bn, false);
        return;
    }
    settle_pending(a);
    set_pending(a, ts, value, k_pn, d_pn, span);
}

/* Whether a stored reading belongs to this accumulator's meter (not to the
 * one before or after a recorded replacement), and its dial value. */
static bool admit(struct bill_acc *a, int64_t ts, double *value)
{
    if (a->p.has_lo && ts <= a->p.lo_ts)
        return false;
    if (a->p.has_hi && ts >= a->p.hi_ts) {
        if (!a->hi_fed) {
            a->hi_fed = true;
            add_reading(a, a->p.hi_ts, a->p.hi_v, false);
        }
        return false;
    }
    if (a->p.legacy_div > 0 && ts < a->p.dial_since)
        *value /= a->p.legacy_div;
    return true;
}

void bill_acc_add(struct bill_acc *a, int64_t ts, double value)
{
    if (admit(a, ts, &value))
        add_reading(a, ts, value, false);
}

void bill_acc_add_span(struct bill_acc *a, int64_t ts, double value)
{
    if (admit(a, ts, &value))
        add_reading(a, ts, value, true);
}

void bill_acc_finish(struct bill_acc *a, struct bill_result *ret)
{
    if (a->p.has_hi && !a->hi_fed) {
        a->hi_fed = true;
        add_reading(a, a->p.hi_ts, a->p.hi_v, false);
    }
    if (a->has_pend)
        settle_pending(a);
    if (a->has_s_edge) {
        a->r.start_ts = a->p.from;
        a->r.start_reading = a->s_edge;
    }
    if (a->has_e_edge) {
        a->r.end_ts = a->p.to;
        a->r.end_reading = a->e_edge;
    }
    if (a->has_s_edge || a->has_e_edge) {
        if (!a->r.has_readings) {
            /* one interval spans the whole period */
            a->r.start_reading = a->has_s_edge ? a->s_edge : a->e_edge;
            a->r.end_reading = a->has_e_edge ? a->e_edge : a->s_edge;
        }
        a->r.has_readings = true;
    }
    a->r.coverage_pct = (double)a->covered_ms * 100.0 / (double)(a->p.to - a->p.from);
    const struct cfg_tariff *t = a->p.tariff;
    a->r.amount = 0;
    if (t && a->banded) {
        for (size_t i = 0; i < t->n_bands; i++)
            a->r.amount += a->r.band[i] * t->bands[i].price;
        a->r.amount += a->r.unbanded * t->price;
    } else if (t) {
        a->r.amount = a->r.consumption * t->price;
    }
    *ret = a->r;
}

int bill_compute(const struct bill_params *p, const struct bill_sample *s, size_t n,
                 struct bill_result *ret)
{
    struct bill_acc *a;
    int r = bill_acc_new(p, &a);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        bill_acc_add(a, s[i].ts, s[i].value);
    bill_acc_finish(a, ret);
    bill_acc_free(a);
    return 0;
}

double bill_wrap_modulus(const struct cfg_point *pt, const struct cfg_meter *m)
{
    double mod;
    if (pt->data_len > 0) {
        /* DL/T 645: the digits of an unsigned format (a signed one counts
         * both ways and does not wrap); CJ/T 188: XXXXXX.XX in m3. */
        if (pt->is_signed)
            return 0;
        mod = pt->fmt.bytes ? bcd_fmt_modulus(&pt->fmt) : 1e6;
        goto scaled;
    }
    switch (pt->type) {
    case PT_INT16:
    case PT_UINT16:
        mod = 65536.0;
        break;
    case PT_INT32:
    case PT_UINT32:
        mod = 4294967296.0;
        break;
    case PT_INT64:
    case PT_UINT64:
        mod = ldexp(1.0, 64);
        break;
    default:
        return 0;
    }
scaled:
    mod *= fabs(pt->scale);
    if (m)
        mod *= point_ratio_factor(pt, m->pt_ratio, m->ct_ratio);
    return mod;
}

struct bill_res bill_res_of(const struct cfg_point *pt, const struct cfg_meter *m)
{
    struct bill_res res = {.type = pt->type, .scale = fabs(pt->scale)};
    if (pt->data_len > 0) {
        /* one last BCD digit; CJ/T 188's XXXXXX.XX without a format */
        res.type = PT_UINT64;
        res.scale *= pow(10.0, -(pt->fmt.bytes ? pt->fmt.decimals : 2));
    } else if (pt->has_frac) {
        res.type = pt->frac_type;
        res.scale = fabs(pt->frac_scale);
    }
    if (m)
        res.scale *= point_ratio_factor(pt, m->pt_ratio, m->ct_ratio);
    return res;
}
