/*
 * billfeed.c - the read strategy of billfeed.h: raw samples at the period's
 * edges and inside buckets where something happened, the first and last
 * reading of every other rollup bucket, coarsest level first.
 */
#include "engine/billfeed.h"

#include <errno.h>

#include "storage/rollup.h"
#include "storage/store.h"

/* Raw readings fed before 'from' and after 'to' on the rollup path: the
 * accumulator settles a reading with its neighbours, so the edges need a
 * few of them (one would do without bad reads). */
#define EDGE_CONTEXT 16
/* An interval counts as covered up to this many poll intervals. */
#define GAP_INTERVALS 3

void billfeed_params(struct bill_params *p, const struct cfg_point *pt,
                     const struct cfg_meter *m, int64_t from, int64_t to)
{
    p->from = from;
    p->to = to;
    /* a billing counter is stored as the dial reading: it wraps before PT x CT */
    p->wrap = bill_wrap_modulus(pt, pt->billing ? NULL : m);
    p->max_rate = pt->max_rate;
    p->res = bill_res_of(pt, pt->billing ? NULL : m);
    p->gap_ms = (int64_t)GAP_INTERVALS * m->interval * 1000;
}

struct feeder {
    struct store *st;
    uint32_t point;
    const struct bill_params *p;
    struct bill_acc *acc;
    enum rollup_level level;    /* of the rows being scanned */
    int64_t n;                  /* raw readings fed so far */
    int64_t after_to;           /* raw readings at or after p->to fed so far */
    int err;
};

static int feed_raw(void *ud, int64_t ts, double value)
{
    struct feeder *f = ud;
    bill_acc_add(f->acc, ts, value);
    f->n++;
    return 0;
}

/* The tail: stops once EDGE_CONTEXT readings past the period were fed. */
static int feed_tail(void *ud, int64_t ts, double value)
{
    struct feeder *f = ud;
    feed_raw(ud, ts, value);
    return ts >= f->p->to && ++f->after_to >= EDGE_CONTEXT;
}

/* Whether no pair of the bucket is a spike by bill_rise_limit, and its
 * first -> last span is none either. Pairs rising faster than max_rate are
 * still within the limit when the excess over the longest interval is within
 * the resolution term at the bucket's smallest reading (no drop: the first
 * one), which the limit's term at any of its readings is at least; the span
 * gets one resolution term for all of them, so it is checked itself. */
static bool bucket_rises_ok(const struct bill_params *p, const struct rollup_row *w)
{
    if (!(p->max_rate > 0) || w->max_rise <= p->max_rate * (1 - 1e-9))
        return true;
    double excess = (w->max_rise - p->max_rate) * ((double)w->max_gap / 3600000.0);
    double lo = w->first_v >= 0 ? w->first_v : (w->last_v <= 0 ? -w->last_v : 0);
    if (!(excess <= 2 * bill_resolution(&p->res, lo) * (1 - 1e-9)))
        return false;
    double d;
    return w->last_ts <= w->first_ts ||
           bill_classify_pair(p->wrap, p->max_rate, &p->res, w->first_v, w->last_v,
                              w->last_ts - w->first_ts, &d) == BILL_PAIR_GOOD;
}

/* A bucket whose first/last readings stand for all of its raw ones: no drop
 * in or at its edges, no rise the accumulator would call a spike, no gap
 * that would be uncovered (storage/rollup.h). */
static bool bucket_clean(const struct bill_params *p, const struct rollup_row *w)
{
    if (w->anomalies != 0)
        return false;
    if (!bucket_rises_ok(p, w))
        return false;
    if (p->gap_ms > 0 && w->max_gap > p->gap_ms)
        return false;
    return true;
}

static int feed_bucket(void *ud, const struct rollup_row *w)
{
    struct feeder *f = ud;
    if (!bucket_clean(f->p, w)) {
        int64_t n0 = f->n;
        int r = store_scan(f->st, f->point, w->bucket, rollup_next(w->bucket, f->level), feed_raw,
                           f);
        if (r < 0) {
            f->err = r;
            return 1;
        }
        if (f->n > n0)
            return 0;
        /* The raw samples are gone (retention): the bucket's readings are
         * all that is left of it. */
    }
    bill_acc_add(f->acc, w->first_ts, w->first_v);
    bill_acc_add_span(f->acc, w->last_ts, w->last_v);
    return 0;
}

static int feed_level(struct feeder *f, int level, int64_t t0, int64_t t1)
{
    if (t0 >= t1)
        return 0;
    f->level = (enum rollup_level)level;
    int r = store_rollup_scan(f->st, f->point, f->level, t0, t1, feed_bucket, f);
    return r < 0 ? r : f->err;
}

int billfeed_level(const struct cfg_tariff *t)
{
    bool hours = true, quarters = true;
    if (!t || t->n_bands == 0)
        return ROLLUP_1D;
    for (size_t i = 0; i < t->n_bands; i++)
        for (size_t h = 0; h < t->bands[i].n_hours; h++) {
            int a = t->bands[i].hours[h].from_min, b = t->bands[i].hours[h].to_min;
            hours &= a % 60 == 0 && b % 60 == 0;
            quarters &= a % 15 == 0 && b % 15 == 0;
        }
    return hours ? ROLLUP_1H : quarters ? ROLLUP_15M : -1;
}

int billfeed_counter(struct store *st, uint32_t point, const struct bill_params *p,
                     bool raw_only, int max_level, struct bill_acc *acc)
{
    struct feeder f = {.st = st, .point = point, .p = p, .acc = acc};
    int64_t b[ROLLUP__COUNT], e[ROLLUP__COUNT], lo;
    int top = raw_only ? -1 : billfeed_level(p->tariff), r;

    if (top > max_level)
        top = max_level;
    if (top < 0)
        return store_scan(st, point, p->from - BILLFEED_MARGIN_MS, p->to + BILLFEED_MARGIN_MS,
                          feed_raw, &f);

    /* Bucket boundaries inside the period, finest first: [b0, b1) at 15m,
     * [b1, b2) at 1h, [b2, e2) at 1d, then back down to e0. */
    b[0] = rollup_ceil(p->from, ROLLUP_15M);
    e[0] = rollup_floor(p->to, ROLLUP_15M);
    for (int l = 1; l < ROLLUP__COUNT; l++) {
        b[l] = rollup_ceil(b[l - 1], (enum rollup_level)l);
        e[l] = rollup_floor(e[l - 1], (enum rollup_level)l);
    }
    while (top >= 0 && b[top] > e[top])
        top--;
    if (top < 0)
        return store_scan(st, point, p->from - BILLFEED_MARGIN_MS, p->to + BILLFEED_MARGIN_MS,
                          feed_raw, &f);

    r = store_seek_back(st, point, p->from, p->from - BILLFEED_MARGIN_MS, EDGE_CONTEXT, &lo);
    if (r == -ENOENT)
        lo = p->from - BILLFEED_MARGIN_MS;
    else if (r < 0)
        return r;
    r = store_scan(st, point, lo, b[0], feed_raw, &f);
    for (int l = 0; r == 0 && l < top; l++)
        r = feed_level(&f, l, b[l], b[l + 1]);
    if (r == 0)
        r = feed_level(&f, top, b[top], e[top]);
    for (int l = top - 1; r == 0 && l >= 0; l--)
        r = feed_level(&f, l, e[l + 1], e[l]);
    if (r == 0)
        r = store_scan(st, point, e[0], p->to + BILLFEED_MARGIN_MS, feed_tail, &f);
    return r;
}
