/*
 * tariff.c - the two-part tariff's arithmetic (tariff.h): seasons and bands
 * of an instant, calendar months for pro-rating, quarter-hour and daily
 * series for the maximum demand and the statement's chart, the power-factor
 * adjustment, ladder prices and the sum of a meter's charges. Bucket bounds
 * come from storage/rollup.h so that demand windows are the 15-minute
 * rollup buckets the statement reads.
 */
#include "engine/tariff.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/util.h"
#include "storage/rollup.h"

#define MS_PER_MIN 60000LL
#define MS_PER_DAY 86400000LL

static const char *const band_names[TARIFF_BANDS] = {"critical", "peak", "flat", "valley",
                                                     "deep_valley"};
static const char *const band_names_zh[TARIFF_BANDS] = {"尖峰", "高峰", "平段", "低谷", "深谷"};

const char *tariff_band_name(enum tariff_band b)
{
    return (unsigned)b < TARIFF_BANDS ? band_names[b] : "?";
}

const char *tariff_band_name_zh(enum tariff_band b)
{
    return (unsigned)b < TARIFF_BANDS ? band_names_zh[b] : "?";
}

int tariff_band_parse(const char *s, enum tariff_band *ret)
{
    for (int i = 0; i < TARIFF_BANDS; i++)
        if (strcmp(s, band_names[i]) == 0) {
            *ret = (enum tariff_band)i;
            return 0;
        }
    return -EINVAL;
}

/* ---- seasons ---- */

void tariff_season_init(struct tariff_season *s, unsigned months)
{
    s->months = months;
    memset(s->band, -1, sizeof(s->band));
}

int tariff_season_mark(struct tariff_season *s, enum tariff_band b, int from_min, int to_min,
                       int *ret_min)
{
    if ((unsigned)b >= TARIFF_BANDS || from_min < 0 || from_min >= TARIFF_MIN_PER_DAY ||
        to_min < 0 || to_min > TARIFF_MIN_PER_DAY)
        return -EINVAL;
    int end = to_min > from_min ? to_min : to_min + TARIFF_MIN_PER_DAY;
    /* check first, so that a refused span leaves the season as it was */
    for (int m = from_min; m < end; m++)
        if (s->band[m % TARIFF_MIN_PER_DAY] >= 0) {
            if (ret_min)
                *ret_min = m % TARIFF_MIN_PER_DAY;
            return -EEXIST;
        }
    for (int m = from_min; m < end; m++)
        s->band[m % TARIFF_MIN_PER_DAY] = (signed char)b;
    return 0;
}

bool tariff_season_gap(const struct tariff_season *s, int *ret_from, int *ret_to)
{
    for (int m = 0; m < TARIFF_MIN_PER_DAY; m++) {
        if (s->band[m] >= 0)
            continue;
        int e = m;
        while (e < TARIFF_MIN_PER_DAY && s->band[e] < 0)
            e++;
        *ret_from = m;
        *ret_to = e;
        return true;
    }
    return false;
}

int tariff_season_of_month(const struct tariff_season *s, size_t n, int month)
{
    if (month < 1 || month > 12)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (s[i].months & (1u << month))
            return (int)i;
    return -1;
}

static long gmtoff_at(int64_t ms)
{
    time_t t = (time_t)floor_div(ms, 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

void tariff_resolve(const struct tariff_season *s, size_t n, int64_t ts, struct tariff_at *ret)
{
    time_t t = (time_t)floor_div(ts, 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int64_t off = (int64_t)tm.tm_gmtoff * 1000;
    int64_t local = ts + off;
    int64_t day0 = floor_div(local, MS_PER_DAY) * MS_PER_DAY;
    int m = (int)((local - day0) / MS_PER_MIN);
    int season = tariff_season_of_month(s, n, tm.tm_mon + 1);
    int band = season >= 0 ? s[season].band[m] : -1;
    int m2 = m + 1;
    while (season >= 0 && m2 < TARIFF_MIN_PER_DAY && s[season].band[m2] == band)
        m2++;
    if (season < 0)
        m2 = TARIFF_MIN_PER_DAY;
    int64_t until = day0 + (int64_t)m2 * MS_PER_MIN - off;
    if (gmtoff_at(until - 1) != tm.tm_gmtoff) {
        /* a change of UTC offset inside: stop at its first second */
        int64_t lo = floor_div(ts, 1000), hi = floor_div(until - 1, 1000);
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (gmtoff_at(mid * 1000) == tm.tm_gmtoff)
                lo = mid;
            else
                hi = mid;
        }
        until = hi * 1000;
    }
    ret->season = season;
    ret->band = band;
    ret->until = until;
}

void tariff_spread(const struct tariff_season *s, size_t n, int64_t from, int64_t to,
                   int64_t t0, int64_t t1, double delta, double ret_band[TARIFF_BANDS],
                   double *ret_unbanded)
{
    int64_t c0 = t0 > from ? t0 : from;
    int64_t c1 = t1 < to ? t1 : to;
    if (c0 >= c1 || t1 <= t0 || delta == 0)
        return;
    double len = (double)(t1 - t0);
    for (int64_t t = c0; t < c1;) {
        struct tariff_at at;
        tariff_resolve(s, n, t, &at);
        int64_t end = at.until < c1 ? at.until : c1;
        double part = delta * ((double)(end - t) / len);
        if (at.band >= 0)
            ret_band[at.band] += part;
        else
            *ret_unbanded += part;
        t = end;
    }
}

/* ---- calendar months ---- */

/* Local midnight starting the month of ts, and the next month's. */
static void month_bounds(int64_t ts, int *ret_year, int *ret_month, int64_t *ret_start,
                         int64_t *ret_end, int *ret_days)
{
    time_t t = (time_t)floor_div(ts, 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    struct tm a = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = 1, .tm_isdst = -1};
    struct tm b = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon + 1, .tm_mday = 1, .tm_isdst = -1};
    struct tm c = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon + 1, .tm_mday = 0, .tm_isdst = -1};
    *ret_year = tm.tm_year + 1900;
    *ret_month = tm.tm_mon + 1;
    *ret_start = (int64_t)mktime(&a) * 1000;
    *ret_end = (int64_t)mktime(&b) * 1000;
    mktime(&c); /* day 0 of next month: the last day of this one */
    *ret_days = c.tm_mday;
}

/* Local days from the start of ts's day: whole days since the month's
 * first day plus the fraction of the day elapsed. */
static double local_day_pos(int64_t ts, int64_t month_start)
{
    int64_t d0 = rollup_floor(ts, ROLLUP_1D);
    int64_t d1 = rollup_next(d0, ROLLUP_1D);
    /* whole days: count local midnights from the month's start to d0 */
    double whole = (double)floor_div(d0 - month_start + MS_PER_DAY / 2, MS_PER_DAY);
    return whole + (double)(ts - d0) / (double)(d1 - d0);
}

int tariff_months(int64_t from, int64_t to, struct tariff_month *ret, size_t max,
                  size_t *ret_n)
{
    if (from >= to)
        return -EINVAL;
    size_t n = 0;
    int64_t t = from;
    while (t < to) {
        if (n == max)
            return -E2BIG;
        struct tariff_month *m = &ret[n++];
        month_bounds(t, &m->year, &m->month, &m->start, &m->end, &m->days_in_month);
        m->from = t;
        m->to = to < m->end ? to : m->end;
        double a = local_day_pos(m->from, m->start);
        double b = m->to == m->end ? (double)m->days_in_month : local_day_pos(m->to, m->start);
        m->days = b - a;
        m->fraction = m->days / m->days_in_month;
        t = m->to;
    }
    *ret_n = n;
    return 0;
}

/* ---- series ---- */

int tariff_series_init(struct tariff_series *s, enum tariff_grain g, int64_t from, int64_t to)
{
    if (from >= to)
        return -EINVAL;
    enum rollup_level l = g == TARIFF_DAY ? ROLLUP_1D : ROLLUP_15M;
    memset(s, 0, sizeof(*s));
    s->grain = g;
    s->from = from;
    s->to = to;
    size_t cap = 0;
    int64_t e = rollup_floor(from, l);
    for (;;) {
        s->edge = xgrow(s->edge, &cap, s->n + 1, sizeof(*s->edge));
        s->edge[s->n] = e;
        if (e >= to)
            break;
        s->n++;
        e = rollup_next(e, l);
    }
    s->v = xcalloc(s->n ? s->n : 1, sizeof(*s->v));
    return 0;
}

void tariff_series_free(struct tariff_series *s)
{
    free(s->edge);
    free(s->v);
    s->edge = NULL;
    s->v = NULL;
    s->n = 0;
}

/* The bucket containing t (edge[0] <= t < edge[n]), from the cursor on. */
static size_t bucket_of(struct tariff_series *s, int64_t t)
{
    size_t i = s->cur < s->n ? s->cur : 0;
    if (s->edge[i] > t)
        i = 0;
    if (s->edge[i + 1] <= t) {
        /* binary search the rest: a delta may jump far (a gap) */
        size_t lo = i, hi = s->n;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->edge[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        i = lo;
    }
    s->cur = i;
    return i;
}

void tariff_series_add(struct tariff_series *s, int64_t t0, int64_t t1, double delta)
{
    int64_t c0 = t0 > s->from ? t0 : s->from;
    int64_t c1 = t1 < s->to ? t1 : s->to;
    if (c0 >= c1 || t1 <= t0 || delta == 0 || s->n == 0)
        return;
    double len = (double)(t1 - t0);
    for (size_t i = bucket_of(s, c0); i < s->n && s->edge[i] < c1; i++) {
        int64_t a = s->edge[i] > c0 ? s->edge[i] : c0;
        int64_t b = s->edge[i + 1] < c1 ? s->edge[i + 1] : c1;
        if (b > a)
            s->v[i] += delta * ((double)(b - a) / len);
        s->cur = i;
    }
}

void tariff_max_demand(const struct tariff_series *q, int64_t from, int64_t to, double *ret_kw,
                       int64_t *ret_ts)
{
    double best = 0;
    int64_t at = -1;
    for (size_t i = 0; i < q->n; i++) {
        if (q->edge[i] < from || q->edge[i] >= to)
            continue;
        if (q->v[i] > best) {
            best = q->v[i];
            at = q->edge[i];
        }
    }
    /* kWh in a quarter hour x 4 = average kW over it */
    *ret_kw = best * 4.0;
    *ret_ts = at;
}

/* ---- power factor ---- */

double tariff_pf(double kwh, double kvarh)
{
    if (!(kwh > 0))
        return NAN;
    if (!(kvarh > 0))
        kvarh = 0;
    double pf = kwh / sqrt(kwh * kwh + kvarh * kvarh);
    return round(pf * 100.0) / 100.0;
}

double tariff_pf_percent(const struct tariff_pf_step *steps, size_t n, double pf)
{
    if (n == 0 || isnan(pf))
        return 0;
    for (size_t i = 0; i < n; i++)
        /* both sides are two-decimal figures: compare them in hundredths */
        if (lround(steps[i].pf * 100.0) <= lround(pf * 100.0))
            return steps[i].pct;
    return steps[n - 1].pct;
}

/* ---- blocks ---- */

double tariff_block_charge(const struct tariff_block *b, size_t n, double before, double q)
{
    if (n == 0 || !(q > 0))
        return 0;
    double lo = before, hi = before + q, sum = 0;
    for (size_t i = 0; i < n; i++) {
        /* block i prices (threshold_i, threshold_i+1]; the first also below */
        double a = i == 0 ? -INFINITY : b[i].threshold;
        double z = i + 1 < n ? b[i + 1].threshold : INFINITY;
        double x0 = lo > a ? lo : a, x1 = hi < z ? hi : z;
        if (x1 > x0)
            sum += (x1 - x0) * b[i].price;
    }
    return sum;
}

/* ---- charges ---- */

static double cents(double v)
{
    return round(v * 100.0) / 100.0;
}

void tariff_charges_sum(double energy, double basic, double pf_pct, double surcharge,
                        double fixed, struct tariff_charges *ret)
{
    struct tariff_charges c = {
        .energy_charge = cents(energy),
        .basic_charge = cents(basic),
        .pf_pct = pf_pct,
        .surcharge = cents(surcharge),
        .fixed_charge = cents(fixed),
    };
    c.pf_adjustment = cents((c.energy_charge + c.basic_charge) * pf_pct / 100.0);
    c.amount = cents(c.energy_charge + c.basic_charge + c.pf_adjustment + c.surcharge +
                     c.fixed_charge);
    *ret = c;
}
