/*
 * statement.c - computes a billing statement (statement.h): for each
 * selected meter its billing counter through billfeed.c and billing.c, then
 * the totals. Nothing is printed here.
 */
#include "engine/statement.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utility.h"
#include "common/util.h"
#include "engine/billfeed.h"
#include "storage/rollup.h"
#include "storage/store.h"

const char *const statement_column_band[STATEMENT_COLUMN_BANDS] = {"peak", "flat", "valley"};

static const struct cfg_tariff *find_tariff(const struct config *cfg, enum utility u)
{
    for (size_t i = 0; i < cfg->n_tariffs; i++)
        if (cfg->tariffs[i].utility == u)
            return &cfg->tariffs[i];
    return NULL;
}

double statement_round(double v, double unit)
{
    return round(v / unit) * unit;
}

static int compute_row(const struct config *cfg, struct store *st,
                       const struct statement_request *req, struct statement_row *row, char *err,
                       size_t errlen)
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
    struct bill_params p = {.tariff = row->tariff};
    billfeed_params(&p, pt, m, req->from, req->to);
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
        r = billfeed_counter(st, id, &p, req->raw_only, ROLLUP_1D, acc);
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
    for (int i = 0; i < STATEMENT_COLUMN_BANDS; i++) {
        row->band_idx[i] = -1;
        for (size_t b = 0; row->tariff && b < row->r.n_bands; b++)
            if (strcmp(row->tariff->bands[b].name, statement_column_band[i]) == 0) {
                row->band_idx[i] = (int)b;
                break;
            }
    }
    return 0;
}

double statement_row_band(const struct statement_row *row, int i)
{
    return row->band_idx[i] >= 0 ? row->r.band[row->band_idx[i]] : 0.0;
}

double statement_row_amount(const struct statement_row *row)
{
    return statement_round(row->r.amount, 0.01);
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

    struct statement *s = xcalloc(1, sizeof(*s));
    s->from = req->from;
    s->to = req->to;
    s->rows = xcalloc(config_count_meters(cfg) + 1, sizeof(*s->rows));
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
            w->tariff = find_tariff(cfg, m->utility);
            int r = compute_row(cfg, st, req, w, err, errlen);
            if (r < 0) {
                statement_free(s);
                return r;
            }
            add_total(&s->ent_total[e][m->utility], w);
            add_total(&s->park[m->utility], w);
            s->n_rows++;
        }
    }
    *ret = s;
    return 0;
}

void statement_free(struct statement *s)
{
    if (!s)
        return;
    free(s->ent_total);
    free(s->rows);
    free(s);
}
