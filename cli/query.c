/*
 * query.c - the computation of `parkgw query` (query.h): one meter's time
 * series (all its points, or one) for a period, raw or in local-time
 * buckets; cli/query_out.c writes the rows (CSV or JSON) as they come.
 *
 * Buckets are aligned to local wall-clock time (1d at local midnight, 23 or
 * 25 h on DST days); every bucket that overlaps [from, to) is listed, empty
 * ones with count 0; only readings inside [from, to) count, so the first
 * and last buckets may be partial. A counter's bucket carries the share of
 * each accepted delta falling in it (engine/billing.c's rules: wraps added
 * back, resets and spikes excluded, deltas spread uniformly over their
 * interval), so a day's bucket agrees with `parkgw bill` for that day.
 * 15m, 1h and 1d steps read the rollups (storage/rollup.h): whole buckets
 * come from their rollup rows, partial edge buckets from raw samples, and
 * counter consumption from billfeed_counter, which gives the raw result.
 * Output is streamed; a store failure midway exits 2 with partial output.
 */
#include "cli/query.h"
#include "cli/query_out.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeparse.h"
#include "common/timeutil.h"
#include "common/util.h"
#include "engine/billfeed.h"
#include "engine/billing.h"
#include "storage/rollup.h"
#include "storage/store.h"

#define MAX_BUCKETS 1000000

struct qctx {
    struct query_out o;
    const char *ent, *meter, *point;
    bool counter;
    bool raw_only;   /* steps computed from raw samples (query_write_raw) */
    int64_t from, to;
    /* steps */
    int64_t *edge;   /* n_buckets + 1 boundaries */
    struct query_bucket *b;
    size_t n_buckets;
};

/* The start of the local-time bucket of step_s seconds containing t. */
static int64_t bucket_floor(int64_t t, int step_s)
{
    if (step_s == 86400)
        return timeparse_midnight(t);
    time_t s = (time_t)floor_div(t, 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    int64_t off = (int64_t)tm.tm_gmtoff * 1000, step = (int64_t)step_s * 1000;
    int64_t b = floor_div(t + off, step) * step - off;
    return b <= t ? b : b - step;
}

static int64_t bucket_next(int64_t b, int step_s)
{
    if (step_s == 86400)
        return timeparse_next_midnight(b);
    int64_t n = bucket_floor(b + (int64_t)step_s * 1000, step_s);
    return n > b ? n : b + (int64_t)step_s * 1000;
}

static int raw_row(void *ud, int64_t ts, double value)
{
    struct qctx *q = ud;
    if (isfinite(value))
        query_out_raw(&q->o, q->ent, q->meter, q->point, ts, value);
    return 0;
}

/* Index of the bucket containing t (edge[i] <= t < edge[i+1]), or -1. */
static long find_bucket(const struct qctx *q, int64_t t)
{
    if (t < q->edge[0] || t >= q->edge[q->n_buckets])
        return -1;
    size_t lo = 0, hi = q->n_buckets; /* edge[lo] <= t < edge[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (q->edge[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return (long)lo;
}

static void spread_delta(void *ud, int64_t t0, int64_t t1, double delta)
{
    struct qctx *q = ud;
    int64_t c0 = t0 > q->from ? t0 : q->from;
    int64_t c1 = t1 < q->to ? t1 : q->to;
    if (c0 >= c1)
        return;
    long i = find_bucket(q, c0);
    if (i < 0)
        return;
    for (size_t k = (size_t)i; k < q->n_buckets && q->edge[k] < c1; k++) {
        int64_t a = q->edge[k] > c0 ? q->edge[k] : c0;
        int64_t e = q->edge[k + 1] < c1 ? q->edge[k + 1] : c1;
        if (e > a)
            q->b[k].consumption += delta * ((double)(e - a) / (double)(t1 - t0));
    }
}

struct step_feed {
    struct qctx *q;
    struct bill_acc *acc; /* counters only */
};

static int step_sample(void *ud, int64_t ts, double value)
{
    struct step_feed *f = ud;
    struct qctx *q = f->q;
    if (f->acc)
        bill_acc_add(f->acc, ts, value);
    if (ts < q->from || ts >= q->to || !isfinite(value))
        return 0;
    long i = find_bucket(q, ts);
    if (i < 0)
        return 0;
    struct query_bucket *b = &q->b[i];
    if (b->count == 0 || value < b->min)
        b->min = value;
    if (b->count == 0 || value > b->max)
        b->max = value;
    b->sum += value;
    b->last = value;
    b->count++;
    return 0;
}

/* A whole bucket's statistics from its rollup row. */
static int rollup_stats(void *ud, const struct rollup_row *w)
{
    struct qctx *q = ud;
    long i = find_bucket(q, w->bucket);
    if (i < 0 || q->edge[i] != w->bucket)
        return 0; /* aligned to another time zone: not one of ours */
    struct query_bucket *b = &q->b[i];
    b->count = w->n;
    b->min = w->min;
    b->max = w->max;
    b->sum = w->sum;
    b->last = w->last_v;
    return 0;
}

/* Bucket statistics and counter consumption through the rollups of 'level'. */
static int query_rollups(struct qctx *q, struct store *st, uint32_t id, int level,
                         const struct bill_params *bp)
{
    struct step_feed f = {.q = q};
    int64_t fa = rollup_ceil(q->from, (enum rollup_level)level);
    int64_t fb = rollup_floor(q->to, (enum rollup_level)level);
    int r;

    if (fa >= fb)
        fa = fb = q->to;
    r = store_scan(st, id, q->from, fa, step_sample, &f);
    if (r == 0)
        r = store_rollup_scan(st, id, (enum rollup_level)level, fa, fb, rollup_stats, q);
    if (r == 0 && fb < q->to)
        r = store_scan(st, id, fb, q->to, step_sample, &f);
    if (r == 0 && bp) {
        struct bill_acc *acc;
        if (bill_acc_new(bp, &acc) < 0)
            return -EINVAL;
        r = billfeed_counter(st, id, bp, false, level, acc);
        struct bill_result res;
        bill_acc_finish(acc, &res);
        bill_acc_free(acc);
    }
    return r;
}

static void write_buckets(struct qctx *q)
{
    for (size_t k = 0; k < q->n_buckets; k++)
        query_out_bucket(&q->o, q->ent, q->meter, q->point, q->edge[k], &q->b[k], q->counter);
}

static int query_point(struct qctx *q, struct store *st, const struct cfg_meter *m,
                       const struct cfg_point *pt, int step_s, char *err, size_t errlen)
{
    uint32_t id;
    bool stored = true;
    int r = store_find_point(st, q->ent, q->meter, pt->name, &id);
    if (r == -ENOENT) {
        stored = false;
        r = 0;
    } else if (r < 0) {
        goto out_io;
    }
    q->point = pt->name;
    q->counter = pt->kind == KIND_COUNTER;

    if (step_s == 0) {
        if (stored && (r = store_scan(st, id, q->from, q->to, raw_row, q)) < 0)
            goto out_io;
        return 0;
    }

    memset(q->b, 0, q->n_buckets * sizeof(*q->b));
    struct step_feed f = {.q = q};
    struct bill_params p = {.on_delta = spread_delta, .ud = q};
    billfeed_params(&p, pt, m, q->from, q->to);
    int level = rollup_level_of_step(step_s);
    if (level >= 0 && !q->raw_only) {
        if (stored && (r = query_rollups(q, st, id, level, q->counter ? &p : NULL)) < 0) {
            if (r == -EINVAL) {
                snprintf(err, errlen, "internal error: bad period");
                return r;
            }
            goto out_io;
        }
        write_buckets(q);
        return 0;
    }
    if (q->counter) {
        if (bill_acc_new(&p, &f.acc) < 0) {
            snprintf(err, errlen, "internal error: bad period");
            return -EINVAL;
        }
    }
    if (stored) {
        int64_t margin = f.acc ? BILLFEED_MARGIN_MS : 0;
        r = store_scan(st, id, q->from - margin, q->to + margin, step_sample, &f);
    }
    if (f.acc) {
        struct bill_result res;
        bill_acc_finish(f.acc, &res);
        bill_acc_free(f.acc);
    }
    if (r < 0)
        goto out_io;
    write_buckets(q);
    return 0;

out_io:
    snprintf(err, errlen, "reading %s/%s/%s from the store: %s", q->ent, q->meter, pt->name,
             store_errmsg(st));
    return -EIO;
}

static int query_write_mode(FILE *out, const struct config *cfg, struct store *st,
                            const char *target, int64_t from, int64_t to, int step_s, bool json,
                            bool raw_only, char *err, size_t errlen)
{
    int r = 0;
    if (from >= to) {
        snprintf(err, errlen, "--from must be before --to");
        return -EINVAL;
    }
    if (step_s != 0 && step_s != 60 && step_s != 900 && step_s != 3600 && step_s != 86400) {
        snprintf(err, errlen, "unsupported step %d s", step_s);
        return -EINVAL;
    }
    /* ENTERPRISE/METER[/POINT] */
    char *em = xstrdup(target);
    const char *point_name = NULL;
    char *slash = strchr(em, '/');
    if (slash && (slash = strchr(slash + 1, '/'))) {
        *slash = '\0';
        point_name = slash + 1;
    }
    const struct cfg_meter *m = config_find_meter(cfg, em);
    if (!m) {
        snprintf(err, errlen, "unknown meter '%s' (ENTERPRISE/METER[/POINT])", em);
        r = -EINVAL;
        goto out_free_em;
    }
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    if (point_name && profile_find_point(prof, point_name) < 0) {
        snprintf(err, errlen, "meter %s has no point '%s' (profile %s)", em, point_name,
                 prof->name);
        r = -EINVAL;
        goto out_free_em;
    }

    struct qctx q = {
        .ent = m->enterprise->id, .meter = m->id, .from = from, .to = to, .raw_only = raw_only,
    };
    if (step_s) {
        size_t cap = 0;
        int64_t e = bucket_floor(from, step_s);
        for (;;) {
            q.edge = xgrow(q.edge, &cap, q.n_buckets + 1, sizeof(*q.edge));
            q.edge[q.n_buckets] = e;
            if (e >= to)
                break;
            if (++q.n_buckets > MAX_BUCKETS) {
                snprintf(err, errlen, "more than %d buckets: use a larger --step or a shorter "
                                      "period", MAX_BUCKETS);
                r = -EINVAL;
                goto out_free_q;
            }
            e = bucket_next(e, step_s);
        }
        q.b = xcalloc(q.n_buckets, sizeof(*q.b));
    }

    query_out_begin(&q.o, out, json, step_s != 0);
    for (size_t i = 0; i < prof->n_points; i++) {
        const struct cfg_point *pt = &prof->points[i];
        if (point_name && strcmp(pt->name, point_name) != 0)
            continue;
        r = query_point(&q, st, m, pt, step_s, err, errlen);
        if (r < 0)
            goto out_free_q;
    }
    query_out_end(&q.o);
    if (ferror(out)) {
        snprintf(err, errlen, "writing the output: %s", strerror(errno));
        r = -EIO;
    }
out_free_q:
    free(q.edge);
    free(q.b);
out_free_em:
    free(em);
    return r;
}

int query_write(FILE *out, const struct config *cfg, struct store *st, const char *target,
                int64_t from, int64_t to, int step_s, bool json, char *err, size_t errlen)
{
    return query_write_mode(out, cfg, st, target, from, to, step_s, json, false, err, errlen);
}

int query_write_raw(FILE *out, const struct config *cfg, struct store *st, const char *target,
                    int64_t from, int64_t to, int step_s, bool json, char *err, size_t errlen)
{
    return query_write_mode(out, cfg, st, target, from, to, step_s, json, true, err, errlen);
}
