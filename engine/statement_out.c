/*
 * statement_out.c - prints a billing statement (engine/statement.h) as a
 * table for people, CSV (the contract's header, one row per enterprise x
 * meter x utility) or JSON (the same fields plus bands, resets, counts and
 * the totals). Times in the gateway's zone (TZ), numbers rounded as the
 * statement rounds; JSON never carries inf or nan (null instead).
 */
#include "engine/statement_out.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/csv.h"
#include "common/timeparse.h"
#include "common/utility.h"
#include "common/util.h"
#include "storage/closelog.h"
#include "storage/meterlog.h"
#include "storage/store.h"

/* ---- CSV ---- */

static void write_csv(FILE *out, const struct statement *s, const char *from_s, const char *to_s)
{
    const struct statement_row *rows = s->rows;
    size_t n = s->n_rows;
    fputs("enterprise,meter,utility,unit,from,to,start_reading,end_reading,consumption,"
          "peak,flat,valley,coverage_pct,amount,currency,"
          "enterprise_name,multiplier,critical,deep_valley,energy_charge,demand_kw,basic_charge,"
          "pf,pf_adjustment,surcharge,fixed_charge\n",
          out);
    for (size_t i = 0; i < n; i++) {
        const struct statement_row *w = &rows[i];
        char af[64], at[64];
        /* an adjustment row names the closed period it adjusts */
        if (w->adjustment) {
            timeparse_format(w->adj_from, false, af, sizeof(af));
            timeparse_format(w->adj_to, false, at, sizeof(at));
        }
        csv_field(out, w->ent->id);
        fputc(',', out);
        csv_field(out, w->m->id);
        fprintf(out, ",%s,%s,%s,%s,", utility_name(w->m->utility), utility_unit(w->m->utility),
                w->adjustment ? af : from_s, w->adjustment ? at : to_s);
        if (w->r.has_readings)
            fprintf(out, "%.3f,%.3f", w->r.start_reading, w->r.end_reading);
        else
            fputc(',', out);
        fprintf(out, ",%.3f,", w->r.consumption);
        if (w->r.n_bands > 0)
            fprintf(out, "%.3f,%.3f,%.3f", statement_row_band(w, 0), statement_row_band(w, 1),
                    statement_row_band(w, 2));
        else
            fputs(",,", out);
        if (w->adjustment)
            fputs(",,", out);
        else
            fprintf(out, ",%.1f,", w->r.coverage_pct);
        if (w->tariff) {
            fprintf(out, "%.2f,", statement_row_amount(w));
            csv_field(out, w->tariff->currency);
        } else {
            fputc(',', out);
        }
        /* The second version's columns (docs/CLI.md): amount = energy_charge +
         * basic_charge + pf_adjustment + surcharge + fixed_charge. */
        fputc(',', out);
        csv_field(out, w->ent->name ? w->ent->name : "");
        fprintf(out, ",%.10g,", w->multiplier);
        if (w->r.n_bands > 0)
            fprintf(out, "%.3f,%.3f", statement_row_band(w, 3), statement_row_band(w, 4));
        else
            fputc(',', out);
        if (w->tariff) {
            fprintf(out, ",%.2f,", w->ch.energy_charge);
            if (w->demand_ts >= 0)
                fprintf(out, "%.3f", w->demand_kw);
            fprintf(out, ",%.2f,", w->ch.basic_charge);
            if (!isnan(w->pf))
                fprintf(out, "%.2f", w->pf);
            fprintf(out, ",%.2f,%.2f,%.2f", w->ch.pf_adjustment, w->ch.surcharge,
                    w->ch.fixed_charge);
        } else {
            fputs(",,,,,,,", out);
        }
        fputc('\n', out);
    }
}

/* What starts a segment, as JSON and the table name it. */
static const char *cause_name(int cause)
{
    if (cause == STATEMENT_CAUSE_PERIOD)
        return "period";
    if (cause == STATEMENT_CAUSE_TARIFF)
        return "tariff";
    return meterlog_kind_name((enum meterlog_kind)cause);
}

/* ---- JSON ---- */

/* v rounded to unit; null for inf and NaN, which JSON cannot carry. */
static json_t *num(double v, double unit)
{
    double x = statement_round(v, unit);
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *totals_json(const struct statement_total *t, enum utility u)
{
    json_t *o = json_object();
    json_object_set_new(o, "utility", json_string(utility_name(u)));
    json_object_set_new(o, "unit", json_string(utility_unit(u)));
    json_object_set_new(o, "consumption", num(t->consumption, 0.001));
    for (int i = 0; i < STATEMENT_COLUMN_BANDS; i++)
        json_object_set_new(o, statement_column_band[i],
                            t->banded ? num(t->band[i], 0.001) : json_null());
    json_object_set_new(o, "amount", t->currency ? num(t->amount, 0.01) : json_null());
    json_object_set_new(o, "currency", t->currency ? json_string(t->currency) : json_null());
    return o;
}

/* Sums amounts per currency over a row of per-utility totals. */
static json_t *amounts_json(const struct statement_total *t)
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

static json_t *row_json(const struct statement_row *w, const char *from_s, const char *to_s)
{
    char buf[64];
    json_t *o = json_object();
    json_object_set_new(o, "enterprise", json_string(w->ent->id));
    json_object_set_new(o, "meter", json_string(w->m->id));
    json_object_set_new(o, "kind", json_string(w->adjustment ? "adjustment" : "meter"));
    json_object_set_new(o, "utility", json_string(utility_name(w->m->utility)));
    json_object_set_new(o, "unit", json_string(utility_unit(w->m->utility)));
    char af[64], at[64];
    if (w->adjustment) {
        timeparse_format(w->adj_from, false, af, sizeof(af));
        timeparse_format(w->adj_to, false, at, sizeof(at));
    }
    json_object_set_new(o, "from", json_string(w->adjustment ? af : from_s));
    json_object_set_new(o, "to", json_string(w->adjustment ? at : to_s));
    json_object_set_new(o, "start_reading",
                        w->r.has_readings ? num(w->r.start_reading, 0.001) : json_null());
    json_object_set_new(o, "end_reading",
                        w->r.has_readings ? num(w->r.end_reading, 0.001) : json_null());
    json_object_set_new(o, "consumption", num(w->r.consumption, 0.001));
    for (int i = 0; i < STATEMENT_COLUMN_BANDS; i++)
        json_object_set_new(o, statement_column_band[i],
                            w->r.n_bands > 0 ? num(statement_row_band(w, i), 0.001) : json_null());
    json_object_set_new(o, "coverage_pct",
                        w->adjustment ? json_null() : num(w->r.coverage_pct, 0.1));
    json_object_set_new(o, "amount", w->tariff ? num(statement_row_amount(w), 0.01) : json_null());
    json_object_set_new(o, "currency", w->tariff ? json_string(w->tariff->currency) : json_null());
    json_object_set_new(o, "enterprise_name",
                        w->ent->name ? json_string(w->ent->name) : json_null());
    json_object_set_new(o, "multiplier", num(w->multiplier, 1e-9));
    json_object_set_new(o, "energy_charge",
                        w->tariff ? num(w->ch.energy_charge, 0.01) : json_null());
    json_object_set_new(o, "demand_kw",
                        w->tariff && w->demand_ts >= 0 ? num(w->demand_kw, 0.001) : json_null());
    json_object_set_new(o, "demand_time",
                        w->tariff && w->demand_ts >= 0
                            ? json_string(timeparse_format(w->demand_ts, false, buf, sizeof(buf)))
                            : json_null());
    json_object_set_new(o, "capacity_kva",
                        w->basic_kva > 0 ? num(w->basic_kva, 0.001) : json_null());
    json_object_set_new(o, "basic_charge", w->tariff ? num(w->ch.basic_charge, 0.01) : json_null());
    json_object_set_new(o, "kvarh",
                        w->tariff && !isnan(w->kvarh) ? num(w->kvarh, 0.001) : json_null());
    json_object_set_new(o, "pf", w->tariff && !isnan(w->pf) ? num(w->pf, 0.01) : json_null());
    json_object_set_new(o, "pf_adjustment_pct",
                        w->tariff ? num(w->ch.pf_pct, 0.01) : json_null());
    json_object_set_new(o, "pf_adjustment",
                        w->tariff ? num(w->ch.pf_adjustment, 0.01) : json_null());
    json_object_set_new(o, "surcharge", w->tariff ? num(w->ch.surcharge, 0.01) : json_null());
    json_object_set_new(o, "fixed_charge", w->tariff ? num(w->ch.fixed_charge, 0.01) : json_null());
    json_object_set_new(o, "estimated_pct", num(w->estimated_pct, 0.1));
    json_t *segs = json_array();
    for (size_t k = 0; k < w->n_seg; k++) {
        const struct statement_segment *g = &w->seg[k];
        json_t *e = json_object();
        json_object_set_new(e, "from", json_string(timeparse_format(g->from, false, buf,
                                                                    sizeof(buf))));
        json_object_set_new(e, "to", json_string(timeparse_format(g->to, false, buf,
                                                                  sizeof(buf))));
        json_object_set_new(e, "start_dial",
                            g->has_readings ? num(g->start_dial, 0.001) : json_null());
        json_object_set_new(e, "end_dial", g->has_readings ? num(g->end_dial, 0.001) : json_null());
        json_object_set_new(e, "start_frozen", json_boolean(g->start_frozen));
        json_object_set_new(e, "end_frozen", json_boolean(g->end_frozen));
        json_object_set_new(e, "multiplier", num(g->multiplier, 1e-9));
        json_object_set_new(e, "consumption", num(g->consumption, 0.001));
        json_object_set_new(e, "cause", json_string(cause_name(g->cause)));
        json_array_append_new(segs, e);
    }
    json_object_set_new(o, "segments", segs);
    if (w->r.n_bands > 0) {
        json_t *bands = json_array();
        for (size_t b = 0; b < w->r.n_bands; b++) {
            const struct statement_band *l = &w->bands[b];
            json_t *e = json_object();
            json_object_set_new(e, "name", json_string(l->name));
            json_object_set_new(e, "consumption", num(l->consumption, 0.001));
            json_object_set_new(e, "price", num(l->price, 1e-6));
            json_object_set_new(e, "charge", num(l->consumption * l->price, 0.01));
            json_array_append_new(bands, e);
        }
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

static int write_json(FILE *out, const struct config *cfg, const struct statement *s,
                      const char *from_s, const char *to_s)
{
    const struct statement_row *rows = s->rows;
    size_t n = s->n_rows;
    const struct statement_total(*ent_tot)[UTIL__COUNT] = s->ent_total;
    const struct statement_total *park = s->park;
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

#define TCOLS 13
#define TBANDS 3 /* peak, flat, valley */
static const char *const table_head[TCOLS] = {
    "ENTERPRISE", "METER", "UTILITY", "START", "END",      "CONSUMPTION", "UNIT",
    "PEAK",       "FLAT",  "VALLEY",  "COVERAGE", "AMOUNT", "ESTIMATED"};

struct table {
    char *(*cells)[TCOLS];
    char **heading;        /* per row: a line printed above it (an enterprise's name), or NULL */
    size_t n, cap, hcap;
};

static char **table_add(struct table *t)
{
    t->cells = xgrow(t->cells, &t->cap, t->n + 1, sizeof(*t->cells));
    t->heading = xgrow(t->heading, &t->hcap, t->n + 1, sizeof(*t->heading));
    for (int c = 0; c < TCOLS; c++)
        t->cells[t->n][c] = NULL;
    t->heading[t->n] = NULL;
    return t->cells[t->n++];
}

static char *fmt3(double v)
{
    return xasprintf("%.3f", v);
}

static void table_total_row(struct table *t, const char *ent, const char *label, enum utility u,
                            const struct statement_total *tot)
{
    char **c = table_add(t);
    c[0] = xstrdup(ent);
    c[1] = xstrdup(label);
    c[2] = xstrdup(utility_name(u));
    c[5] = fmt3(tot->consumption);
    c[6] = xstrdup(utility_unit(u));
    if (tot->banded)
        for (int i = 0; i < TBANDS; i++)
            c[7 + i] = fmt3(tot->band[i]);
    if (tot->currency)
        c[11] = xasprintf("%.2f %s", tot->amount, tot->currency);
}

/* One "amount" line per currency for a set of per-utility totals. */
static void table_amount_rows(struct table *t, const char *ent, const struct statement_total *tot)
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

static void write_table(FILE *out, const struct config *cfg, const struct statement *s,
                        const char *from_s, const char *to_s)
{
    const struct statement_row *rows = s->rows;
    size_t n = s->n_rows;
    const struct statement_total(*ent_tot)[UTIL__COUNT] = s->ent_total;
    const struct statement_total *park = s->park;
    struct table t = {0};
    size_t i = 0;
    while (i < n) {
        size_t e = rows[i].ent_idx;
        /* People read enterprises by their registered (Chinese) names: one
         * heading line per enterprise, the grid keeps the ids. */
        const struct cfg_enterprise *ce = &cfg->enterprises[e];
        size_t first = t.n;
        for (; i < n && rows[i].ent_idx == e; i++) {
            const struct statement_row *w = &rows[i];
            char **c = table_add(&t);
            c[0] = xstrdup(w->ent->id);
            c[1] = w->adjustment ? xasprintf("%s adjustment", w->m->id) : xstrdup(w->m->id);
            c[2] = xstrdup(utility_name(w->m->utility));
            if (w->r.has_readings) {
                c[3] = fmt3(w->r.start_reading);
                c[4] = fmt3(w->r.end_reading);
            }
            c[5] = fmt3(w->r.consumption);
            c[6] = xstrdup(utility_unit(w->m->utility));
            if (w->r.n_bands > 0)
                for (int k = 0; k < TBANDS; k++)
                    c[7 + k] = fmt3(statement_row_band(w, k));
            if (!w->adjustment)
                c[10] = xasprintf("%.1f%%", w->r.coverage_pct);
            if (w->tariff)
                c[11] = xasprintf("%.2f %s", statement_row_amount(w), w->tariff->currency);
            if (!w->adjustment)
                c[12] = xasprintf("%.1f%%", w->estimated_pct);
        }
        for (int u = 0; u < UTIL__COUNT; u++)
            if (ent_tot[e][u].used)
                table_total_row(&t, cfg->enterprises[e].id, "total", (enum utility)u,
                                &ent_tot[e][u]);
        table_amount_rows(&t, cfg->enterprises[e].id, ent_tot[e]);
        if (first < t.n)
            t.heading[first] = ce->name && *ce->name ? xasprintf("%s (%s)", ce->name, ce->id)
                                                     : xstrdup(ce->id);
    }
    size_t park_first = t.n;
    for (int u = 0; u < UTIL__COUNT; u++)
        if (park[u].used)
            table_total_row(&t, "PARK", "total", (enum utility)u, &park[u]);
    table_amount_rows(&t, "PARK", park);
    if (park_first < t.n)
        t.heading[park_first] = xstrdup("Park");

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
        if (r > 0 && t.heading[r - 1])
            fprintf(out, "%s\n", t.heading[r - 1]);
        for (int c = 0; c < TCOLS; c++) {
            const char *cell = r == 0 ? table_head[c] : t.cells[r - 1][c];
            bool left = c <= 2 || c == 6;
            if (c)
                fputs("  ", out);
            fprintf(out, left ? "%-*s" : "%*s", (int)width[c], cell ? cell : "");
        }
        fputc('\n', out);
    }
    for (size_t k = 0; k < n; k++) {
        const struct statement_row *w = &rows[k];
        char buf[64], buf2[64];
        if (w->adjustment)
            fprintf(out, "note: %s/%s adjustment of the closed period %s to %s: %+.3f %s\n",
                    w->ent->id, w->m->id, timeparse_format(w->adj_from, false, buf, sizeof(buf)),
                    timeparse_format(w->adj_to, false, buf2, sizeof(buf2)), w->r.consumption,
                    utility_unit(w->m->utility));
        /* dial readings x multiplier, one line per segment, when there is
         * more than one segment or a multiplier to show */
        for (size_t z = 0; (w->n_seg > 1 || w->multiplier != 1) && z < w->n_seg; z++) {
            const struct statement_segment *g = &w->seg[z];
            fprintf(out, "segment: %s/%s %s to %s", w->ent->id, w->m->id,
                    timeparse_format(g->from, false, buf, sizeof(buf)),
                    timeparse_format(g->to, false, buf2, sizeof(buf2)));
            if (g->has_readings)
                fprintf(out, " dial %.3f -> %.3f", g->start_dial, g->end_dial);
            fprintf(out, " x %.10g = %.3f %s%s%s\n", g->multiplier, g->consumption,
                    utility_unit(w->m->utility),
                    g->cause != STATEMENT_CAUSE_PERIOD ? " after " : "",
                    g->cause != STATEMENT_CAUSE_PERIOD ? cause_name(g->cause) : "");
        }
        for (size_t z = 0; z < w->n_seg; z++) {
            const struct statement_segment *g = &w->seg[z];
            if (g->has_readings && g->start_frozen)
                fprintf(out, "note: %s/%s start reading %.3f of %s..%s is the meter's own frozen "
                        "reading\n", w->ent->id, w->m->id, g->start_dial,
                        timeparse_format(g->from, false, buf, sizeof(buf)),
                        timeparse_format(g->to, false, buf2, sizeof(buf2)));
            if (g->has_readings && g->end_frozen)
                fprintf(out, "note: %s/%s end reading %.3f of %s..%s is the meter's own frozen "
                        "reading\n", w->ent->id, w->m->id, g->end_dial,
                        timeparse_format(g->from, false, buf, sizeof(buf)),
                        timeparse_format(g->to, false, buf2, sizeof(buf2)));
        }
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
        const struct tariff_charges *ch = &w->ch;
        if (w->tariff && (ch->basic_charge != 0 || ch->pf_adjustment != 0 || ch->surcharge != 0 ||
                          ch->fixed_charge != 0)) {
            fprintf(out, "charges: %s/%s energy %.2f", w->ent->id, w->m->id, ch->energy_charge);
            if (w->demand_ts >= 0)
                fprintf(out, ", basic %.2f (max demand %.1f kW at %s)", ch->basic_charge,
                        w->demand_kw, timeparse_format(w->demand_ts, false, buf, sizeof(buf)));
            else if (ch->basic_charge != 0)
                fprintf(out, ", basic %.2f (capacity %.0f kVA)", ch->basic_charge, w->basic_kva);
            if (!isnan(w->pf))
                fprintf(out, ", PF %.2f %+.2f%% %.2f", w->pf, ch->pf_pct, ch->pf_adjustment);
            fprintf(out, ", surcharge %.2f, fixed %.2f = %.2f %s\n", ch->surcharge,
                    ch->fixed_charge, ch->amount, w->tariff->currency);
        }
    }
    for (size_t r = 0; r < t.n; r++) {
        for (int c = 0; c < TCOLS; c++)
            free(t.cells[r][c]);
        free(t.heading[r]);
    }
    free(t.cells);
    free(t.heading);
}

int statement_out_write(FILE *out, const struct config *cfg, const struct statement *s,
                        enum statement_format format)
{
    char from_s[64], to_s[64];
    int r = 0;
    timeparse_format(s->from, false, from_s, sizeof(from_s));
    timeparse_format(s->to, false, to_s, sizeof(to_s));
    switch (format) {
    case STATEMENT_CSV:
        write_csv(out, s, from_s, to_s);
        break;
    case STATEMENT_JSON:
        r = write_json(out, cfg, s, from_s, to_s);
        break;
    case STATEMENT_TABLE:
        write_table(out, cfg, s, from_s, to_s);
        break;
    }
    return r == 0 && ferror(out) ? -EIO : r;
}

int statement_out_print(FILE *out, const struct config *cfg, struct store *st,
                        const struct statement_request *req, enum statement_format format,
                        char *err, size_t errlen)
{
    struct statement *s;
    char *text = NULL;
    int r = (int)format < CLOSELOG_FORMATS
                ? closelog_find(store_db(st), req->from, req->to, (int)format, &text)
                : -ENOENT;
    if (r == 0) {
        /* a closed period: what was closed, byte for byte */
        if (req->enterprise || req->has_utility) {
            free(text);
            snprintf(err, errlen,
                     "the period is closed: its statement is stored for the whole park; bill "
                     "it without --enterprise and --utility");
            return -EINVAL;
        }
        r = fputs(text, out) < 0 ? -EIO : 0;
        free(text);
        if (r < 0)
            snprintf(err, errlen, "writing the statement: %s", strerror(errno));
        return r;
    }
    if (r != -ENOENT) {
        snprintf(err, errlen, "reading the closed periods: %s", store_errmsg(st));
        return -EIO;
    }
    r = statement_build(cfg, st, req, &s, err, errlen);
    if (r < 0)
        return r;
    r = statement_out_write(out, cfg, s, format);
    if (r < 0)
        snprintf(err, errlen, "writing the statement: %s", strerror(errno));
    statement_free(s);
    return r;
}

/* The statement in format f as text (malloc'd). 0 or -EIO. */
static int render(const struct config *cfg, const struct statement *s,
                  enum statement_format f, char **ret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return -EIO;
    int r = statement_out_write(m, cfg, s, f);
    if (fclose(m) != 0 && r == 0)
        r = -EIO;
    if (r < 0) {
        free(buf);
        return r;
    }
    *ret = buf;
    return 0;
}

int statement_out_close(FILE *out, const struct config *cfg, struct store *st,
                        const struct statement_request *req, enum statement_format format,
                        char *err, size_t errlen)
{
    if (req->enterprise || req->has_utility) {
        snprintf(err, errlen, "--close closes the whole park's statement: no --enterprise or "
                              "--utility");
        return -EINVAL;
    }
    sqlite3 *db = store_db(st);
    int64_t of, ot;
    int r = closelog_find(db, req->from, req->to, 0, NULL);
    if (r == 0) {
        snprintf(err, errlen, "the period is closed already");
        return -EINVAL;
    }
    if (r == -ENOENT)
        r = closelog_overlap(db, req->from, req->to, &of, &ot);
    if (r == 0) {
        char a[64], b[64];
        snprintf(err, errlen, "the period overlaps the closed period %s to %s",
                 timeparse_format(of, false, a, sizeof(a)),
                 timeparse_format(ot, false, b, sizeof(b)));
        return -EINVAL;
    }
    if (r != -ENOENT) {
        snprintf(err, errlen, "reading the closed periods: %s", store_errmsg(st));
        return -EIO;
    }
    struct statement *s;
    r = statement_build(cfg, st, req, &s, err, errlen);
    if (r < 0)
        return r;
    char *text[CLOSELOG_FORMATS] = {NULL};
    struct closelog_row *rows = xcalloc(s->n_rows + 1, sizeof(*rows));
    for (int f = 0; f < CLOSELOG_FORMATS && r == 0; f++)
        r = render(cfg, s, (enum statement_format)f, &text[f]);
    for (size_t i = 0; i < s->n_rows; i++) {
        const struct statement_row *w = &s->rows[i];
        rows[i] = (struct closelog_row){
            .enterprise = w->ent->id, .meter = w->m->id,
            .ref_from = w->adjustment ? w->adj_from : s->from,
            .ref_to = w->adjustment ? w->adj_to : s->to,
            .consumption = w->r.consumption,
            .amount = w->tariff ? statement_row_amount(w) : 0};
    }
    if (r == 0) {
        r = closelog_add(db, s->from, s->to, (const char *const *)text, rows, s->n_rows);
        if (r < 0)
            snprintf(err, errlen, "storing the closed statement: %s", strerror(-r));
        else if (fputs(text[format], out) < 0) {
            r = -EIO;
            snprintf(err, errlen, "writing the statement: %s", strerror(errno));
        }
    } else {
        snprintf(err, errlen, "rendering the statement failed");
    }
    for (int f = 0; f < CLOSELOG_FORMATS; f++)
        free(text[f]);
    free(rows);
    statement_free(s);
    return r;
}
