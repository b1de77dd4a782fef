/*
 * statement.c - computes a billing statement (statement.h): for each
 * selected meter its billing counter through billfeed.c and billing.c, then
 * the totals. Nothing is printed here.
 */
#include "engine/statement.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utility.h"
#include "common/util.h"
#include "engine/billfeed.h"
#include "storage/closelog.h"
#include "storage/frozenlog.h"
#include "storage/meterlog.h"
#include "storage/rollup.h"
#include "storage/store.h"

const char *const statement_column_band[STATEMENT_COLUMN_BANDS] = {"peak", "flat", "valley",
                                                                 "critical", "deep_valley"};

double statement_round(double v, double unit)
{
    return round(v / unit) * unit;
}

/* on_delta of a segment: its dial deltas x the segment's multiplier into
 * the row's daily series. */
struct daily_ctx {
    struct tariff_series *daily, *quarter;
    double mult;
    int64_t from, to;       /* the segment: its accumulator also sees deltas beyond it */
};

static void on_daily_delta(void *ud, int64_t t0, int64_t t1, double delta)
{
    struct daily_ctx *c = ud;
    /* the part of the delta inside the segment, spread evenly as before */
    int64_t a = t0 > c->from ? t0 : c->from, b = t1 < c->to ? t1 : c->to;
    if (a >= b || t1 <= t0)
        return;
    double part = delta * c->mult * ((double)(b - a) / (double)(t1 - t0));
    if (c->daily->n > 0)
        tariff_series_add(c->daily, a, b, part);
    if (c->quarter->n > 0)
        tariff_series_add(c->quarter, a, b, part);
}

/* The multiplier a history record puts on the billing counter. */
static double rec_mult(const struct cfg_point *pt, const struct meterlog_rec *rec)
{
    return point_ratio_factor(pt, rec->pt, rec->ct);
}

/* The replacement records nearest around [a, b): the last at or before a,
 * the first at or after b. */
static void replacements(const struct meterlog_list *h, int64_t a, int64_t b,
                         const struct meterlog_rec **ret_lo, const struct meterlog_rec **ret_hi)
{
    *ret_lo = *ret_hi = NULL;
    for (size_t i = 0; i < h->n; i++) {
        if (h->v[i].kind != METERLOG_REPLACE)
            continue;
        if (h->v[i].ts <= a)
            *ret_lo = &h->v[i];
        else if (h->v[i].ts >= b && !*ret_hi)
            *ret_hi = &h->v[i];
    }
}

/* Books band consumption c of a segment priced by t: into the band
 * columns by name and into the row's band lines by (name, price). */
static void add_band(struct statement_row *row, const char *name, double price, double c)
{
    for (int k = 0; k < STATEMENT_COLUMN_BANDS; k++)
        if (!strcmp(name, statement_column_band[k]))
            row->col_band[k] += c;
    size_t n = row->r.n_bands, i;
    for (i = 0; i < n; i++)
        if (!strcmp(row->bands[i].name, name) && row->bands[i].price == price)
            break;
    if (i == n) {
        if (n == STATEMENT_MAX_BAND_LINES)
            i = n - 1; /* more lines than kept: the last one takes the rest */
        else
            row->r.n_bands = n + 1;
        row->bands[i] = (struct statement_band){.name = name, .price = price};
    }
    row->bands[i].consumption += c;
}

/* Adds segment result sr (dial units) x mult into the row's result. */
static void add_segment(struct statement_row *row, const struct cfg_tariff *t,
                        const struct bill_result *sr, double mult, int64_t len_ms,
                        double *covered_ms)
{
    struct bill_result *r = &row->r;
    r->consumption += sr->consumption * mult;
    r->estimated += sr->estimated * mult;
    for (size_t b = 0; b < sr->n_bands; b++)
        add_band(row, t->bands[b].name, t->bands[b].price, sr->band[b] * mult);
    if (sr->n_bands > 0 && sr->unbanded != 0)
        add_band(row, "unbanded", t->price, sr->unbanded * mult);
    r->unbanded += sr->unbanded * mult;
    r->amount += sr->amount * mult;
    *covered_ms += sr->coverage_pct / 100.0 * (double)len_ms;
    r->n_wraps += sr->n_wraps;
    r->n_spikes += sr->n_spikes;
    r->n_outliers += sr->n_outliers;
    for (size_t k = 0; k < sr->n_resets && k < BILL_MAX_RESETS; k++)
        if (r->n_resets + k < BILL_MAX_RESETS)
            r->resets[r->n_resets + k] = sr->resets[k];
    r->n_resets += sr->n_resets;
    if (sr->has_readings) {
        if (!r->has_readings) {
            r->has_readings = true;
            r->start_ts = sr->start_ts;
            r->start_reading = sr->start_reading * mult;
        }
        r->end_ts = sr->end_ts;
        r->end_reading = sr->end_reading * mult;
    }
}

/* Runs one segment [a, b) of the row's meter through its own accumulator. */
static int compute_segment(struct store *st, const struct statement_request *req,
                           struct statement_row *row, const struct cfg_point *pt, int has_id,
                           uint32_t id, const struct meterlog_list *h,
                           const struct meterlog_rec *in_force, int64_t dial_since,
                           struct statement_segment *sg, struct bill_result *sr)
{
    const struct meterlog_rec *lo, *hi;
    struct bill_params p = {.tariff = sg->tariff};
    billfeed_params(&p, pt, row->m, sg->from, sg->to);
    p.dial_since = dial_since;
    p.legacy_div = rec_mult(pt, in_force);
    replacements(h, sg->from, sg->to, &lo, &hi);
    /* The rollup path stays usable: its buckets lie inside [from, to), so
     * never across a replacement (lo_ts <= from, hi_ts >= to); the raw
     * readings around the edges beyond one are dropped by the accumulator. */
    bool raw = req->raw_only;
    if (lo) {
        p.has_lo = true;
        p.lo_ts = lo->ts;
        p.lo_v = lo->initial_dial;
    }
    if (hi) {
        p.has_hi = true;
        p.hi_ts = hi->ts;
        p.hi_v = hi->final_dial;
    }
    struct daily_ctx daily = {&row->daily, &row->quarter, p.legacy_div, sg->from, sg->to};
    if (row->daily.n > 0 || row->quarter.n > 0) {
        p.on_delta = on_daily_delta;
        p.ud = &daily;
    }
    struct bill_acc *acc;
    int r = bill_acc_new(&p, &acc);
    if (r < 0)
        return r;
    /* the demand's quarter hours need buckets no longer than 15 minutes */
    if (has_id)
        r = billfeed_counter(st, id, &p, raw, row->quarter.n > 0 ? ROLLUP_15M : ROLLUP_1D, acc);
    bill_acc_finish(acc, sr);
    bill_acc_free(acc);
    if (r < 0)
        return -EIO;
    sg->multiplier = p.legacy_div;
    sg->has_readings = sr->has_readings;
    sg->start_dial = sr->start_reading;
    sg->end_dial = sr->end_reading;
    sg->consumption = sr->consumption * sg->multiplier;
    if (sr->has_readings && has_id) {
        sqlite3 *db = store_db(st);
        const char *e = row->ent->id, *mid = row->m->id;
        if (frozenlog_at(db, e, mid, pt->name, sr->start_ts, &sg->start_frozen, NULL, 0) < 0 ||
            frozenlog_at(db, e, mid, pt->name, sr->end_ts, &sg->end_frozen, NULL, 0) < 0)
            return -EIO;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* What starts a segment at ts > from: a history record there (a
 * replacement before a ratio change), else a tariff version. */
static int cause_at(const struct meterlog_list *h, int64_t ts)
{
    int cause = STATEMENT_CAUSE_TARIFF;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].ts == ts && cause != METERLOG_REPLACE)
            cause = (int)h->v[i].kind;
    return cause;
}

static int compute_row(const struct config *cfg, struct store *st,
                       const struct statement_request *req, int64_t dial_since,
                       struct statement_row *row, char *err, size_t errlen)
{
    const struct cfg_meter *m = row->m;
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    int bp = profile_billing_point(prof);
    if (bp < 0) {
        snprintf(err, errlen, "%s/%s: profile %s has no billing counter", row->ent->id, m->id,
                 prof->name);
        return -EINVAL;
    }
    const struct cfg_point *pt = &prof->points[bp];
    if (req->daily)
        tariff_series_init(&row->daily, TARIFF_DAY, req->from, req->to);
    const struct cfg_tariff *t_end = config_tariff_at(cfg, m->utility, req->to - 1);
    if (m->max_demand && t_end && t_end->demand_price > 0)
        tariff_series_init(&row->quarter, TARIFF_QUARTER_HOUR, req->from, req->to);

    /* The meter's history; without any record, the config's ratios have
     * been in force since ever. */
    struct meterlog_list h = {0};
    if (meterlog_read(store_db(st), row->ent->id, m->id, &h) < 0) {
        snprintf(err, errlen, "reading the history of %s/%s: %s", row->ent->id, m->id,
                 store_errmsg(st));
        return -EIO;
    }
    struct meterlog_rec cfg_rec = {.ts = INT64_MIN, .kind = METERLOG_INITIAL,
                                   .pt = m->pt_ratio, .ct = m->ct_ratio};

    uint32_t id = 0;
    int r = store_find_point(st, row->ent->id, m->id, pt->name, &id);
    bool has_id = r == 0;
    if (r < 0 && r != -ENOENT) {
        meterlog_list_free(&h);
        snprintf(err, errlen, "reading %s/%s/%s from the store: %s", row->ent->id, m->id,
                 pt->name, store_errmsg(st));
        return -EIO;
    }

    /* Segments: the period cut at every history record and every tariff
     * version's start inside it. */
    int64_t *cut = xcalloc(h.n + cfg->n_tariffs + 2, sizeof(*cut));
    size_t n_cut = 0;
    cut[n_cut++] = req->from;
    for (size_t i = 0; i < h.n; i++)
        if (h.v[i].ts > req->from && h.v[i].ts < req->to)
            cut[n_cut++] = h.v[i].ts;
    for (size_t i = 0; i < cfg->n_tariffs; i++) {
        int64_t f = config_tariff_from(&cfg->tariffs[i]);
        if (cfg->tariffs[i].utility == m->utility && f > req->from && f < req->to)
            cut[n_cut++] = f;
    }
    qsort(cut, n_cut, sizeof(*cut), cmp_i64);
    row->seg = xcalloc(n_cut, sizeof(*row->seg));
    row->n_seg = 0;
    double covered_ms = 0;
    for (size_t k = 0; k < n_cut; k++) {
        if (k > 0 && cut[k] == cut[k - 1])
            continue;
        int64_t a = cut[k], b = req->to;
        for (size_t j = k + 1; j < n_cut; j++)
            if (cut[j] > a) {
                b = cut[j];
                break;
            }
        const struct meterlog_rec *rec = meterlog_at(&h, a);
        struct statement_segment *sg = &row->seg[row->n_seg++];
        sg->from = a;
        sg->to = b;
        sg->cause = k == 0 ? STATEMENT_CAUSE_PERIOD : cause_at(&h, a);
        sg->tariff = config_tariff_at(cfg, m->utility, a);
        struct bill_result sr;
        r = compute_segment(st, req, row, pt, has_id, id, &h, rec ? rec : &cfg_rec, dial_since,
                            sg, &sr);
        if (r == -EINVAL) {
            snprintf(err, errlen, "%s/%s: the %s tariff's bands are not usable", row->ent->id,
                     m->id, utility_name(m->utility));
            goto out;
        }
        if (r < 0) {
            snprintf(err, errlen, "reading %s/%s/%s from the store: %s", row->ent->id, m->id,
                     pt->name, store_errmsg(st));
            goto out;
        }
        add_segment(row, sg->tariff, &sr, sg->multiplier, b - a, &covered_ms);
        row->multiplier = sg->multiplier;
        row->tariff = sg->tariff;
    }
    row->r.coverage_pct = covered_ms * 100.0 / (double)(req->to - req->from);
    row->estimated_pct =
        row->r.consumption > 0 ? row->r.estimated * 100.0 / row->r.consumption : 0.0;
    r = 0;
out:
    free(cut);
    meterlog_list_free(&h);
    return r;
}

/* Consumption of the row's meter over [a, b) by the same rules (segments,
 * multipliers): for ladder prices, the month's consumption before the
 * period. 0 and *ret, or compute_row's error. */
static int consumption_of(const struct config *cfg, struct store *st,
                          const struct statement_request *req, int64_t dial_since,
                          const struct statement_row *row, int64_t a, int64_t b, double *ret,
                          char *err, size_t errlen)
{
    struct statement_request q = *req;
    q.from = a;
    q.to = b;
    q.daily = false;
    struct statement_row tmp = {.ent = row->ent, .ent_idx = row->ent_idx, .m = row->m};
    int r = compute_row(cfg, st, &q, dial_since, &tmp, err, errlen);
    *ret = tmp.r.consumption;
    free(tmp.seg);
    tariff_series_free(&tmp.daily);
    tariff_series_free(&tmp.quarter);
    return r;
}

/* The reactive counter's increase over the period (stored as it is read,
 * x PT x CT: only the billing counter is kept as dial readings). NaN when
 * the meter has none or it has no readings: no power factor, no adjustment
 * (never a rebate for a counter nobody read). */
static int reactive_of(const struct config *cfg, struct store *st,
                       const struct statement_request *req, const struct statement_row *row,
                       double *ret)
{
    const struct cfg_meter *m = row->m;
    *ret = NAN;
    if (m->reactive < 0)
        return 0;
    const struct cfg_point *pt = &cfg->profiles[m->profile].points[m->reactive];
    struct bill_params p = {0};
    billfeed_params(&p, pt, m, req->from, req->to);
    uint32_t id;
    int r = store_find_point(st, row->ent->id, m->id, pt->name, &id);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return -EIO;
    struct bill_acc *acc;
    if ((r = bill_acc_new(&p, &acc)) < 0)
        return r;
    r = billfeed_counter(st, id, &p, req->raw_only, ROLLUP_1D, acc);
    struct bill_result res;
    bill_acc_finish(acc, &res);
    bill_acc_free(acc);
    if (r < 0)
        return -EIO;
    if (res.has_readings)
        *ret = res.consumption;
    return 0;
}

#define MAX_MONTHS 240

/* The config's tables are handed to engine/tariff.c as they are: the same
 * two doubles in the same order. */
_Static_assert(sizeof(struct cfg_block) == sizeof(struct tariff_block) &&
                   offsetof(struct cfg_block, price) == offsetof(struct tariff_block, price),
               "cfg_block and tariff_block differ");
_Static_assert(sizeof(struct cfg_pf_step) == sizeof(struct tariff_pf_step) &&
                   offsetof(struct cfg_pf_step, pct) == offsetof(struct tariff_pf_step, pct),
               "cfg_pf_step and tariff_pf_step differ");

/*
 * The row's charges under the two-part tariff (engine/tariff.h): energy
 * from the bands or flat price (the segments' amounts) or from the ladder
 * blocks per calendar month, the basic charge per month (capacity or the
 * month's maximum demand, pro-rated by days), the power-factor percent on
 * the period's kWh and kvarh, surcharges per unit and fixed charges per
 * month. Each month is priced by the tariff version in force at its start
 * within the period; the PF table is the version's at the period's end.
 */
static int compute_charges(const struct config *cfg, struct store *st,
                           const struct statement_request *req, int64_t dial_since,
                           struct statement_row *row, char *err, size_t errlen)
{
    const struct cfg_meter *m = row->m;
    const struct cfg_tariff *t_end = row->tariff;
    row->demand_ts = -1;
    row->kvarh = row->pf = NAN;
    if (!t_end)
        return 0;
    struct tariff_month *mo = xcalloc(MAX_MONTHS, sizeof(*mo));
    size_t n_mo = 0;
    int r = tariff_months(req->from, req->to, mo, MAX_MONTHS, &n_mo);
    if (r < 0) {
        snprintf(err, errlen, "a statement spans at most %d months", MAX_MONTHS);
        goto out;
    }
    double energy = row->r.amount, basic = 0, fixed = 0, surcharge = 0;
    for (size_t k = 0; k < row->n_seg; k++)
        if (row->seg[k].tariff)
            surcharge += row->seg[k].consumption * row->seg[k].tariff->surcharge;
    bool blocks = false;
    for (size_t i = 0; i < n_mo; i++) {
        const struct cfg_tariff *t = config_tariff_at(cfg, m->utility, mo[i].from);
        if (!t)
            continue;
        fixed += t->fixed_monthly * mo[i].fraction;
        if (m->capacity_kva > 0 && t->capacity_price > 0) {
            basic += m->capacity_kva * t->capacity_price * mo[i].fraction;
            row->basic_kva = m->capacity_kva;
        }
        if (row->quarter.n > 0 && t->demand_price > 0) {
            double kw;
            int64_t at;
            tariff_max_demand(&row->quarter, mo[i].from, mo[i].to, &kw, &at);
            basic += kw * t->demand_price * mo[i].fraction;
            if (at >= 0 && kw > row->demand_kw) {
                row->demand_kw = kw;
                row->demand_ts = at;
            }
        }
        if (t->n_blocks > 0) {
            if (!blocks)
                energy = 0;
            blocks = true;
            double before = 0, q = row->r.consumption;
            if (mo[i].from > mo[i].start &&
                (r = consumption_of(cfg, st, req, dial_since, row, mo[i].start, mo[i].from,
                                    &before, err, errlen)) < 0)
                goto out;
            if (n_mo > 1 && (r = consumption_of(cfg, st, req, dial_since, row, mo[i].from,
                                                mo[i].to, &q, err, errlen)) < 0)
                goto out;
            energy += tariff_block_charge((const struct tariff_block *)t->blocks, t->n_blocks,
                                          before, q);
        }
    }
    double pct = 0;
    if (t_end->pf_standard > 0) {
        if ((r = reactive_of(cfg, st, req, row, &row->kvarh)) < 0) {
            snprintf(err, errlen, "reading %s/%s's reactive counter: %s", row->ent->id, m->id,
                     store_errmsg(st));
            goto out;
        }
        if (!isnan(row->kvarh)) {
            row->pf = tariff_pf(row->r.consumption, row->kvarh);
            pct = tariff_pf_percent((const struct tariff_pf_step *)t_end->pf_adjust,
                                    t_end->n_pf_adjust, row->pf);
        }
    }
    tariff_charges_sum(energy, basic, pct, surcharge, fixed, &row->ch);
    r = 0;
out:
    free(mo);
    return r;
}

/* The adjustment of closed period c for row w of its statement computed
 * now: now minus what closed statements billed. Appended to s when it is
 * not nil (a thousandth of a unit, a cent). 0 or -EIO. */
static int add_adjustment(struct statement *s, struct store *st, const struct statement *c,
                          const struct statement_row *w)
{
    double cons = 0, amount = 0;
    if (closelog_booked(store_db(st), w->ent->id, w->m->id, c->from, c->to, &cons, &amount) < 0)
        return -EIO;
    double dc = w->r.consumption - cons;
    double da = (w->tariff ? statement_row_amount(w) : 0) - amount;
    if (fabs(dc) < 0.0005 && fabs(da) < 0.005)
        return 0;
    struct statement_row *a = &s->rows[s->n_rows++];
    memset(a, 0, sizeof(*a));
    a->ent = w->ent;
    a->ent_idx = w->ent_idx;
    a->m = w->m;
    a->tariff = w->tariff;
    a->multiplier = w->multiplier;
    a->adjustment = true;
    a->adj_from = c->from;
    a->adj_to = c->to;
    a->r.consumption = dc;
    a->r.amount = da;
    /* the closed rows keep the amount only: the difference is shown as
     * energy charge */
    a->ch.amount = da;
    a->ch.energy_charge = da;
    a->demand_ts = -1;
    a->kvarh = a->pf = NAN;
    return 0;
}

double statement_row_band(const struct statement_row *row, int i)
{
    return row->col_band[i];
}

double statement_row_amount(const struct statement_row *row)
{
    return row->ch.amount;
}

static void add_total(struct statement_total *t, const struct statement_row *row)
{
    t->used = true;
    t->consumption += row->r.consumption;
    if (row->r.n_bands > 0) {
        t->banded = true;
        for (int i = 0; i < STATEMENT_COLUMN_BANDS; i++)
            t->band[i] += statement_row_band(row, i);
    }
    if (row->tariff) {
        t->amount += statement_row_amount(row);
        t->currency = row->tariff->currency;
    }
}

bool statement_has_enterprise(const struct config *cfg, const char *id)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        if (strcmp(cfg->enterprises[e].id, id) == 0)
            return true;
    return false;
}

int statement_build(const struct config *cfg, struct store *st,
                    const struct statement_request *req, struct statement **ret, char *err,
                    size_t errlen)
{
    if (req->from >= req->to) {
        snprintf(err, errlen, "--from must be before --to");
        return -EINVAL;
    }
    if (req->enterprise && !statement_has_enterprise(cfg, req->enterprise)) {
        snprintf(err, errlen, "unknown enterprise '%s'", req->enterprise);
        return -EINVAL;
    }

    int64_t dial_since;
    if (meterlog_dial_since(store_db(st), &dial_since) < 0) {
        snprintf(err, errlen, "reading the store's meta: %s", store_errmsg(st));
        return -EIO;
    }
    /* A closed period ending where this one starts: its statement now,
     * to adjust what changed since it was closed. */
    struct statement *closed = NULL;
    int64_t cfrom;
    int cr = req->no_adjustments ? -ENOENT : closelog_ending_at(store_db(st), req->from, &cfrom);
    if (cr == -EIO) {
        snprintf(err, errlen, "reading the closed periods: %s", store_errmsg(st));
        return -EIO;
    }
    if (cr == 0) {
        struct statement_request cq = *req;
        cq.from = cfrom;
        cq.to = req->from;
        cq.no_adjustments = true;
        cq.daily = false;
        int r = statement_build(cfg, st, &cq, &closed, err, errlen);
        if (r < 0)
            return r;
    }
    struct statement *s = xcalloc(1, sizeof(*s));
    s->from = req->from;
    s->to = req->to;
    s->rows = xcalloc(2 * config_count_meters(cfg) + 1, sizeof(*s->rows));
    s->ent_total = xcalloc(cfg->n_enterprises + 1, sizeof(*s->ent_total));
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (req->enterprise && strcmp(ent->id, req->enterprise) != 0)
            continue;
        for (size_t k = 0; k < ent->n_meters; k++) {
            const struct cfg_meter *m = &ent->meters[k];
            if (req->has_utility && m->utility != req->utility)
                continue;
            struct statement_row *w = &s->rows[s->n_rows];
            w->ent = ent;
            w->ent_idx = e;
            w->m = m;
            int r = compute_row(cfg, st, req, dial_since, w, err, errlen);
            if (r == 0)
                r = compute_charges(cfg, st, req, dial_since, w, err, errlen);
            if (r < 0) {
                s->n_rows++; /* its segments are freed with the rest */
                statement_free(closed);
                statement_free(s);
                return r;
            }
            add_total(&s->ent_total[e][m->utility], w);
            add_total(&s->park[m->utility], w);
            s->n_rows++;
        }
        for (size_t k = 0; closed && k < closed->n_rows; k++) {
            if (closed->rows[k].ent_idx != e)
                continue;
            size_t before = s->n_rows;
            if (add_adjustment(s, st, closed, &closed->rows[k]) < 0) {
                snprintf(err, errlen, "reading the closed periods: %s", store_errmsg(st));
                statement_free(closed);
                statement_free(s);
                return -EIO;
            }
            if (s->n_rows > before) {
                const struct statement_row *a = &s->rows[before];
                add_total(&s->ent_total[e][a->m->utility], a);
                add_total(&s->park[a->m->utility], a);
            }
        }
    }
    statement_free(closed);
    *ret = s;
    return 0;
}

void statement_free(struct statement *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rows; i++) {
        tariff_series_free(&s->rows[i].daily);
        tariff_series_free(&s->rows[i].quarter);
    }
    free(s->ent_total);
    for (size_t i = 0; i < s->n_rows; i++)
        free(s->rows[i].seg);
    free(s->rows);
    free(s);
}
