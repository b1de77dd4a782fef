/*
 * cmd_bill.c - `parkgw bill`: the billing statement. Reads every selected
 * meter's billing counter from the store, runs it through billing.c for the
 * period, and writes one row per enterprise x meter as table, CSV or JSON
 * with totals per enterprise and for the park. Nothing is written until
 * every row is computed, so a failure leaves no half statement.
 *
 * Choices the billing office should know (also in docs):
 *  - Readings are looked for up to 7 days either side of the period, so an
 *    interval straddling an edge is shared between the two periods (see
 *    billing.h); a meter silent for longer than that around an edge loses
 *    that interval.
 *  - The middle of the period is read from the rollups (bill_feed), the
 *    edges and any bucket where something happened from the raw samples.
 *  - An interval counts as covered up to 3 poll intervals of the meter.
 *  - CSV peak/flat/valley are the tariff bands of those names (0.000 when the
 *    tariff has bands but none of that name; empty without bands). Other band
 *    names and consumption in hours no band covers appear in JSON only.
 *  - Amounts are rounded to cents per row; totals add the rounded rows.
 *  - No tariff for a utility: amount and currency are empty (null in JSON).
 *  - Exit 1 for bad options, config, dates, unknown enterprise/utility;
 *    exit 2 when the store cannot be opened (missing database included) or
 *    read, or stdout cannot be written.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/billing.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/csv.h"
#include "common/timeparse.h"
#include "common/util.h"
#include "storage/rollup.h"
#include "storage/store.h"

#define EDGE_MARGIN_MS (7 * 86400000LL)
/* Raw readings fed before 'from' and after 'to' on the rollup path: the
 * accumulator settles a reading with its neighbours, so the edges need a
 * few of them (one would do without bad reads). */
#define EDGE_CONTEXT 16
#define GAP_INTERVALS 3

static const char *const csv_bands[3] = {"peak", "flat", "valley"};

struct row {
    const struct cfg_enterprise *ent;
    size_t ent_idx;
    const struct cfg_meter *m;
    const struct cfg_tariff *tariff; /* NULL: no tariff for the utility */
    int band_idx[3];                 /* tariff band of csv_bands[i], -1 = none */
    struct bill_result r;
};

struct total {
    bool used;
    bool banded;
    double consumption;
    double band[3];
    double amount;
    const char *currency;
};

static const struct cfg_tariff *find_tariff(const struct config *cfg, enum utility u)
{
    for (size_t i = 0; i < cfg->n_tariffs; i++)
        if (cfg->tariffs[i].utility == u)
            return &cfg->tariffs[i];
    return NULL;
}

static double round_to(double v, double unit)
{
    return round(v / unit) * unit;
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

/* A bucket whose first/last readings stand for all of its raw ones: no drop
 * in or at its edges, no rise the accumulator would call a spike, no gap
 * that would be uncovered (storage/rollup.h). */
static bool bucket_clean(const struct bill_params *p, const struct rollup_row *w)
{
    if (w->anomalies != 0)
        return false;
    if (p->max_rate > 0 && w->max_rise > p->max_rate * (1 - 1e-9))
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

int bill_rollup_level(const struct cfg_tariff *t)
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

int bill_feed(struct store *st, uint32_t point, const struct bill_params *p, bool raw_only,
              int max_level, struct bill_acc *acc)
{
    struct feeder f = {.st = st, .point = point, .p = p, .acc = acc};
    int64_t b[ROLLUP__COUNT], e[ROLLUP__COUNT], lo;
    int top = raw_only ? -1 : bill_rollup_level(p->tariff), r;

    if (top > max_level)
        top = max_level;
    if (top < 0)
        return store_scan(st, point, p->from - EDGE_MARGIN_MS, p->to + EDGE_MARGIN_MS, feed_raw,
                          &f);

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
        return store_scan(st, point, p->from - EDGE_MARGIN_MS, p->to + EDGE_MARGIN_MS, feed_raw,
                          &f);

    r = store_seek_back(st, point, p->from, p->from - EDGE_MARGIN_MS, EDGE_CONTEXT, &lo);
    if (r == -ENOENT)
        lo = p->from - EDGE_MARGIN_MS;
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
        r = store_scan(st, point, e[0], p->to + EDGE_MARGIN_MS, feed_tail, &f);
    return r;
}

static int compute_row(const struct config *cfg, struct store *st, const struct bill_request *req,
                       struct row *row, char *err, size_t errlen)
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
    struct bill_params p = {
        .from = req->from,
        .to = req->to,
        .wrap = bill_wrap_modulus(pt, m),
        .max_rate = pt->max_rate,
        .gap_ms = (int64_t)GAP_INTERVALS * m->interval * 1000,
        .tariff = row->tariff,
    };
    struct bill_acc *acc;
    int r = bill_acc_new(&p, &acc);
    if (r < 0) {
        snprintf(err, errlen, "%s/%s: the %s tariff's bands are not usable", row->ent->id, m->id,
                 utility_name(m->utility));
        return r;
    }
    uint32_t id;
    r = store_find_point(st, row->ent->id, m->id, pt->name, &id);
    if (r == 0) {
        r = bill_feed(st, id, &p, req->raw_only, ROLLUP_1D, acc);
    } else if (r == -ENOENT) {
        r = 0; /* never stored: a row with no readings */
    }
    if (r < 0) {
        snprintf(err, errlen, "reading %s/%s/%s from the store: %s", row->ent->id, m->id,
                 pt->name, store_errmsg(st));
        bill_acc_free(acc);
        return -EIO;
    }
    bill_acc_finish(acc, &row->r);
    bill_acc_free(acc);
    for (int i = 0; i < 3; i++) {
        row->band_idx[i] = -1;
        for (size_t b = 0; row->tariff && b < row->r.n_bands; b++)
            if (strcmp(row->tariff->bands[b].name, csv_bands[i]) == 0) {
                row->band_idx[i] = (int)b;
                break;
            }
    }
    return 0;
}

static double row_band(const struct row *row, int i)
{
    return row->band_idx[i] >= 0 ? row->r.band[row->band_idx[i]] : 0.0;
}

static double row_amount(const struct row *row)
{
    return round_to(row->r.amount, 0.01);
}

static void add_total(struct total *t, const struct row *row)
{
    t->used = true;
    t->consumption += row->r.consumption;
    if (row->r.n_bands > 0) {
        t->banded = true;
        for (int i = 0; i < 3; i++)
            t->band[i] += row_band(row, i);
    }
    if (row->tariff) {
        t->amount += row_amount(row);
        t->currency = row->tariff->currency;
    }
}

/* ---- CSV ---- */

static void write_csv(FILE *out, const struct row *rows, size_t n, const char *from_s,
                      const char *to_s)
{
    fputs("enterprise,meter,utility,unit,from,to,start_reading,end_reading,consumption,"
          "peak,flat,valley,coverage_pct,amount,currency\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const struct row *w = &rows[i];
        csv_field(out, w->ent->id);
        fputc(',', out);
        csv_field(out, w->m->id);
        fprintf(out, ",%s,%s,%s,%s,", utility_name(w->m->utility), utility_unit(w->m->utility),
                from_s, to_s);
        if (w->r.has_readings)
            fprintf(out, "%.3f,%.3f", w->r.start_reading, w->r.end_reading);
        else
            fputc(',', out);
        fprintf(out, ",%.3f,", w->r.consumption);
        if (w->r.n_bands > 0)
            fprintf(out, "%.3f,%.3f,%.3f", row_band(w, 0), row_band(w, 1), row_band(w, 2));
        else
            fputs(",,", out);
        fprintf(out, ",%.1f,", w->r.coverage_pct);
        if (w->tariff) {
            fprintf(out, "%.2f,", row_amount(w));
            csv_field(out, w->tariff->currency);
        } else {
            fputc(',', out);
        }
        fputc('\n', out);
    }
}

/* ---- JSON ---- */

/* v rounded to unit; null for inf and NaN, which JSON cannot carry. */
static json_t *num(double v, double unit)
{
    double x = round_to(v, unit);
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *totals_json(const struct total *t, enum utility u)
{
    json_t *o = json_object();
    json_object_set_new(o, "utility", json_string(utility_name(u)));
    json_object_set_new(o, "unit", json_string(utility_unit(u)));
    json_object_set_new(o, "consumption", num(t->consumption, 0.001));
    for (int i = 0; i < 3; i++)
        json_object_set_new(o, csv_bands[i], t->banded ? num(t->band[i], 0.001) : json_null());
    json_object_set_new(o, "amount", t->currency ? num(t->amount, 0.01) : json_null());
    json_object_set_new(o, "currency", t->currency ? json_string(t->currency) : json_null());
    return o;
}

/* Sums amounts per currency over a row of per-utility totals. */
static json_t *amounts_json(const struct total *t)
{
    json_t *o = json_object();
    for (int u = 0; u < UTIL__COUNT; u++) {
        if (!t[u].used || !t[u].currency)
            continue;
        json_t *cur = json_object_get(o, t[u].currency);
        double sum = (cur ? json_real_value(cur) : 0) + t[u].amount;
        json_object_set_new(o, t[u].currency, num(sum, 0.01));
    }
    return o;
}

static json_t *row_json(const struct row *w, const char *from_s, const char *to_s)
{
    char buf[64];
    json_t *o = json_object();
    json_object_set_new(o, "enterprise", json_string(w->ent->id));
    json_object_set_new(o, "meter", json_string(w->m->id));
    json_object_set_new(o, "utility", json_string(utility_name(w->m->utility)));
    json_object_set_new(o, "unit", json_string(utility_unit(w->m->utility)));
    json_object_set_new(o, "from", json_string(from_s));
    json_object_set_new(o, "to", json_string(to_s));
    json_object_set_new(o, "start_reading",
                        w->r.has_readings ? num(w->r.start_reading, 0.001) : json_null());
    json_object_set_new(o, "end_reading",
                        w->r.has_readings ? num(w->r.end_reading, 0.001) : json_null());
    json_object_set_new(o, "consumption", num(w->r.consumption, 0.001));
    for (int i = 0; i < 3; i++)
        json_object_set_new(o, csv_bands[i],
                            w->r.n_bands > 0 ? num(row_band(w, i), 0.001) : json_null());
    json_object_set_new(o, "coverage_pct", num(w->r.coverage_pct, 0.1));
    json_object_set_new(o, "amount", w->tariff ? num(row_amount(w), 0.01) : json_null());
    json_object_set_new(o, "currency", w->tariff ? json_string(w->tariff->currency) : json_null());
    if (w->r.n_bands > 0) {
        json_t *bands = json_object();
        for (size_t b = 0; b < w->r.n_bands; b++)
            json_object_set_new(bands, w->tariff->bands[b].name, num(w->r.band[b], 0.001));
        if (w->r.unbanded != 0)
            json_object_set_new(bands, "unbanded", num(w->r.unbanded, 0.001));
        json_object_set_new(o, "bands", bands);
    }
    json_t *resets = json_array();
    for (size_t k = 0; k < w->r.n_resets && k < BILL_MAX_RESETS; k++) {
        json_t *e = json_object();
        json_object_set_new(e, "ts", json_integer(w->r.resets[k].ts));
        json_object_set_new(e, "time",
                            json_string(timeparse_format(w->r.resets[k].ts, false, buf,
                                                         sizeof(buf))));
        json_object_set_new(e, "before", num(w->r.resets[k].before, 0.001));
        json_object_set_new(e, "after", num(w->r.resets[k].after, 0.001));
        json_array_append_new(resets, e);
    }
    json_object_set_new(o, "resets", resets);
    json_object_set_new(o, "reset_count", json_integer((json_int_t)w->r.n_resets));
    json_object_set_new(o, "wraps", json_integer((json_int_t)w->r.n_wraps));
    json_object_set_new(o, "spikes", json_integer((json_int_t)w->r.n_spikes));
    json_object_set_new(o, "bad_reads", json_integer((json_int_t)w->r.n_outliers));
    return o;
}

static int write_json(FILE *out, const struct config *cfg, const struct row *rows, size_t n,
                      struct total (*ent_tot)[UTIL__COUNT], const struct total *park,
                      const char *from_s, const char *to_s)
{
    json_t *root = json_object();
    json_object_set_new(root, "from", json_string(from_s));
    json_object_set_new(root, "to", json_string(to_s));
    json_object_set_new(root, "timezone", json_string(cfg->timezone ? cfg->timezone : "UTC"));
    json_t *jrows = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(jrows, row_json(&rows[i], from_s, to_s));
    json_object_set_new(root, "rows", jrows);

    json_t *ents = json_array();
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        bool any = false;
        for (int u = 0; u < UTIL__COUNT; u++)
            any |= ent_tot[e][u].used;
        if (!any)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "enterprise", json_string(cfg->enterprises[e].id));
        if (cfg->enterprises[e].name)
            json_object_set_new(o, "name", json_string(cfg->enterprises[e].name));
        json_t *utils = json_array();
        for (int u = 0; u < UTIL__COUNT; u++)
            if (ent_tot[e][u].used)
                json_array_append_new(utils, totals_json(&ent_tot[e][u], (enum utility)u));
        json_object_set_new(o, "utilities", utils);
        json_object_set_new(o, "amount", amounts_json(ent_tot[e]));
        json_array_append_new(ents, o);
    }
    json_object_set_new(root, "enterprises", ents);
    json_t *jpark = json_object();
    json_t *putils = json_array();
    for (int u = 0; u < UTIL__COUNT; u++)
        if (park[u].used)
            json_array_append_new(putils, totals_json(&park[u], (enum utility)u));
    json_object_set_new(jpark, "utilities", putils);
    json_object_set_new(jpark, "amount", amounts_json(park));
    json_object_set_new(root, "park", jpark);

    int r = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    fputc('\n', out);
    json_decref(root);
    return r < 0 ? -EIO : 0;
}

/* ---- table ---- */

#define TCOLS 12
static const char *const table_head[TCOLS] = {
    "ENTERPRISE", "METER", "UTILITY", "START", "END",      "CONSUMPTION",
    "UNIT",       "PEAK",  "FLAT",    "VALLEY", "COVERAGE", "AMOUNT"};

struct table {
    char *(*cells)[TCOLS];
    size_t n, cap;
};

static char **table_add(struct table *t)
{
    t->cells = xgrow(t->cells, &t->cap, t->n + 1, sizeof(*t->cells));
    for (int c = 0; c < TCOLS; c++)
        t->cells[t->n][c] = NULL;
    return t->cells[t->n++];
}

static char *fmt3(double v)
{
    return xasprintf("%.3f", v);
}

static void table_total_row(struct table *t, const char *ent, const char *label, enum utility u,
                            const struct total *tot)
{
    char **c = table_add(t);
    c[0] = xstrdup(ent);
    c[1] = xstrdup(label);
    c[2] = xstrdup(utility_name(u));
    c[5] = fmt3(tot->consumption);
    c[6] = xstrdup(utility_unit(u));
    if (tot->banded)
        for (int i = 0; i < 3; i++)
            c[7 + i] = fmt3(tot->band[i]);
    if (tot->currency)
        c[11] = xasprintf("%.2f %s", tot->amount, tot->currency);
}

/* One "amount" line per currency for a set of per-utility totals. */
static void table_amount_rows(struct table *t, const char *ent, const struct total *tot)
{
    for (int u = 0; u < UTIL__COUNT; u++) {
        if (!tot[u].used || !tot[u].currency)
            continue;
        bool seen = false;
        for (int v = 0; v < u; v++)
            seen |= tot[v].used && tot[v].currency && !strcmp(tot[v].currency, tot[u].currency);
        if (seen)
            continue;
        double sum = 0;
        for (int v = u; v < UTIL__COUNT; v++)
            if (tot[v].used && tot[v].currency && !strcmp(tot[v].currency, tot[u].currency))
                sum += tot[v].amount;
        char **c = table_add(t);
        c[0] = xstrdup(ent);
        c[1] = xstrdup("amount");
        c[11] = xasprintf("%.2f %s", sum, tot[u].currency);
    }
}

static void write_table(FILE *out, const struct config *cfg, const struct row *rows, size_t n,
                        struct total (*ent_tot)[UTIL__COUNT], const struct total *park,
                        const char *from_s, const char *to_s)
{
    struct table t = {0};
    size_t i = 0;
    while (i < n) {
        size_t e = rows[i].ent_idx;
        for (; i < n && rows[i].ent_idx == e; i++) {
            const struct row *w = &rows[i];
            char **c = table_add(&t);
            c[0] = xstrdup(w->ent->id);
            c[1] = xstrdup(w->m->id);
            c[2] = xstrdup(utility_name(w->m->utility));
            if (w->r.has_readings) {
                c[3] = fmt3(w->r.start_reading);
                c[4] = fmt3(w->r.end_reading);
            }
            c[5] = fmt3(w->r.consumption);
            c[6] = xstrdup(utility_unit(w->m->utility));
            if (w->r.n_bands > 0)
                for (int k = 0; k < 3; k++)
                    c[7 + k] = fmt3(row_band(w, k));
            c[10] = xasprintf("%.1f%%", w->r.coverage_pct);
            if (w->tariff)
                c[11] = xasprintf("%.2f %s", row_amount(w), w->tariff->currency);
        }
        for (int u = 0; u < UTIL__COUNT; u++)
            if (ent_tot[e][u].used)
                table_total_row(&t, cfg->enterprises[e].id, "total", (enum utility)u,
                                &ent_tot[e][u]);
        table_amount_rows(&t, cfg->enterprises[e].id, ent_tot[e]);
    }
    for (int u = 0; u < UTIL__COUNT; u++)
        if (park[u].used)
            table_total_row(&t, "PARK", "total", (enum utility)u, &park[u]);
    table_amount_rows(&t, "PARK", park);

    size_t width[TCOLS];
    for (int c = 0; c < TCOLS; c++) {
        width[c] = strlen(table_head[c]);
        for (size_t r = 0; r < t.n; r++)
            if (t.cells[r][c] && strlen(t.cells[r][c]) > width[c])
                width[c] = strlen(t.cells[r][c]);
    }
    fprintf(out, "Billing statement %s to %s (%s)\n\n", from_s, to_s,
            cfg->timezone ? cfg->timezone : "UTC");
    for (size_t r = 0; r <= t.n; r++) {
        for (int c = 0; c < TCOLS; c++) {
            const char *s = r == 0 ? table_head[c] : t.cells[r - 1][c];
            bool left = c <= 2 || c == 6;
            if (c)
                fputs("  ", out);
            fprintf(out, left ? "%-*s" : "%*s", (int)width[c], s ? s : "");
        }
        fputc('\n', out);
    }
    for (size_t k = 0; k < n; k++) {
        const struct row *w = &rows[k];
        char buf[64];
        for (size_t z = 0; z < w->r.n_resets && z < BILL_MAX_RESETS; z++)
            fprintf(out, "note: %s/%s meter reset or replaced at %s (%.3f -> %.3f)\n",
                    w->ent->id, w->m->id,
                    timeparse_format(w->r.resets[z].ts, false, buf, sizeof(buf)),
                    w->r.resets[z].before, w->r.resets[z].after);
        if (w->r.n_resets > BILL_MAX_RESETS)
            fprintf(out, "note: %s/%s %zu resets in all\n", w->ent->id, w->m->id,
                    w->r.n_resets);
        if (w->r.n_spikes)
            fprintf(out, "note: %s/%s %zu implausible jumps excluded\n", w->ent->id, w->m->id,
                    w->r.n_spikes);
    }
    for (size_t r = 0; r < t.n; r++)
        for (int c = 0; c < TCOLS; c++)
            free(t.cells[r][c]);
    free(t.cells);
}

static bool has_enterprise(const struct config *cfg, const char *id)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        if (strcmp(cfg->enterprises[e].id, id) == 0)
            return true;
    return false;
}

int bill_write(FILE *out, const struct config *cfg, struct store *st,
               const struct bill_request *req, char *err, size_t errlen)
{
    int r = 0;
    if (req->from >= req->to) {
        snprintf(err, errlen, "--from must be before --to");
        return -EINVAL;
    }
    if (req->enterprise) {
        if (!has_enterprise(cfg, req->enterprise)) {
            snprintf(err, errlen, "unknown enterprise '%s'", req->enterprise);
            return -EINVAL;
        }
    }

    struct row *rows = xcalloc(config_count_meters(cfg) + 1, sizeof(*rows));
    struct total(*ent_tot)[UTIL__COUNT] = xcalloc(cfg->n_enterprises + 1, sizeof(*ent_tot));
    struct total park[UTIL__COUNT] = {0};
    size_t n = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (req->enterprise && strcmp(ent->id, req->enterprise) != 0)
            continue;
        for (size_t k = 0; k < ent->n_meters; k++) {
            const struct cfg_meter *m = &ent->meters[k];
            if (req->has_utility && m->utility != req->utility)
                continue;
            struct row *w = &rows[n];
            w->ent = ent;
            w->ent_idx = e;
            w->m = m;
            w->tariff = find_tariff(cfg, m->utility);
            r = compute_row(cfg, st, req, w, err, errlen);
            if (r < 0)
                goto out_free;
            add_total(&ent_tot[e][m->utility], w);
            add_total(&park[m->utility], w);
            n++;
        }
    }

    char from_s[64], to_s[64];
    timeparse_format(req->from, false, from_s, sizeof(from_s));
    timeparse_format(req->to, false, to_s, sizeof(to_s));
    switch (req->format) {
    case BILL_FMT_CSV:
        write_csv(out, rows, n, from_s, to_s);
        break;
    case BILL_FMT_JSON:
        r = write_json(out, cfg, rows, n, ent_tot, park, from_s, to_s);
        break;
    case BILL_FMT_TABLE:
        write_table(out, cfg, rows, n, ent_tot, park, from_s, to_s);
        break;
    }
    if (r == 0 && ferror(out)) {
        snprintf(err, errlen, "writing the statement: %s", strerror(errno));
        r = -EIO;
    }
out_free:
    free(ent_tot);
    free(rows);
    return r;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: parkgw bill [-c FILE] --from DATE --to DATE [--enterprise ID]\n"
               "                   [--utility electricity|water|gas|wastewater]\n"
               "                   [--format table|csv|json]\n"
               "DATE is " TIMEPARSE_FORMS ";\n"
               "--from is inclusive, --to exclusive.\n");
}

int cmd_bill(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"enterprise", required_argument, NULL, 'e'},
        {"utility", required_argument, NULL, 'u'}, {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *from_arg = NULL, *to_arg = NULL, *util_arg = NULL, *fmt_arg = "table";
    struct bill_request req = {0};
    struct config *cfg = NULL;
    struct store *st = NULL;
    char err[512];
    int c, ret = 1;

    optind = 0; /* restart getopt: main may have used it */
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'f':
            from_arg = optarg;
            break;
        case 't':
            to_arg = optarg;
            break;
        case 'e':
            req.enterprise = optarg;
            break;
        case 'u':
            util_arg = optarg;
            break;
        case 'F':
            fmt_arg = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parkgw bill: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    if (!from_arg || !to_arg) {
        fprintf(stderr, "parkgw bill: --from and --to are required\n");
        usage(stderr);
        return 1;
    }
    if (!strcmp(fmt_arg, "table")) {
        req.format = BILL_FMT_TABLE;
    } else if (!strcmp(fmt_arg, "csv")) {
        req.format = BILL_FMT_CSV;
    } else if (!strcmp(fmt_arg, "json")) {
        req.format = BILL_FMT_JSON;
    } else {
        fprintf(stderr, "parkgw bill: unknown format '%s' (table, csv, json)\n", fmt_arg);
        return 1;
    }
    if (util_arg) {
        if (utility_parse(util_arg, &req.utility) < 0) {
            fprintf(stderr,
                    "parkgw bill: unknown utility '%s' (electricity, water, gas, wastewater)\n",
                    util_arg);
            return 1;
        }
        req.has_utility = true;
    }

    /* FILE:LINE errors on stderr; TZ set to the gateway's time zone. */
    cfg = cli_load_config(cfg_path ? cfg_path : PARKGW_DEFAULT_CONFIG);
    if (!cfg)
        return 1;
    if (cli_parse_time("bill", "--from", from_arg, cfg, &req.from) < 0 ||
        cli_parse_time("bill", "--to", to_arg, cfg, &req.to) < 0)
        goto out_free_cfg;
    if (req.from >= req.to) {
        fprintf(stderr, "parkgw bill: --from %s is not before --to %s\n", from_arg, to_arg);
        goto out_free_cfg;
    }
    if (req.enterprise && !has_enterprise(cfg, req.enterprise)) {
        fprintf(stderr, "parkgw bill: unknown enterprise '%s'\n", req.enterprise);
        goto out_free_cfg;
    }

    int r = store_open(cfg->storage_path, true, &st, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "parkgw bill: %s\n", err);
        ret = 2;
        goto out_free_cfg;
    }
    r = bill_write(stdout, cfg, st, &req, err, sizeof(err));
    ret = cli_exit_code("bill", r, err);
    store_close(st);
out_free_cfg:
    config_free(cfg);
    return ret;
}
