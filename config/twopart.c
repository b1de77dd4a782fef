/*
 * twopart.c - the keys of China's two-part tariff and of ladder prices in
 * the configuration (docs/CONFIG.md "Tariffs"): on a tariff `surcharge`,
 * `fixed_monthly`, `demand_price`, `capacity_price`, `pf_standard`,
 * `pf_adjust`, `blocks`; on a meter `capacity_kva`, `max_demand`,
 * `reactive`. The arithmetic is engine/tariff.c's; here only the values and
 * their FILE:LINE errors.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/config_private.h"

/* An optional price-like number >= 0 into *ret (left 0 when absent). */
static int get_nonneg(struct ld *ld, const config_setting_t *g, const char *key, double *ret)
{
    config_setting_t *s;
    int r = cfg_get_double(ld, g, key, false, ret, &s);
    if (r == 0 && !(*ret >= 0))
        return cfg_fail(ld, s, "%s must be >= 0", key);
    return r < 0 ? r : 0;
}

/* A list of (number, number) pairs: `key = ( (a, b), ... );`. */
static int get_pairs(struct ld *ld, const config_setting_t *g, const char *key,
                     config_setting_t **ret_list, double (**ret)[2], size_t *ret_n)
{
    config_setting_t *l;
    int r = cfg_lookup(ld, g, key, false, &l);
    if (r != 0)
        return r;
    int lt = config_setting_type(l);
    if ((lt != CONFIG_TYPE_LIST && lt != CONFIG_TYPE_ARRAY) || config_setting_length(l) == 0)
        return cfg_fail(ld, l, "%s must be a non-empty list of pairs ( (a, b), ... )", key);
    size_t n = (size_t)config_setting_length(l);
    double(*v)[2] = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        bool ok = config_setting_type(e) == CONFIG_TYPE_LIST && config_setting_length(e) == 2;
        for (unsigned k = 0; ok && k < 2; k++) {
            config_setting_t *x = config_setting_get_elem(e, k);
            int xt = config_setting_type(x);
            if (xt == CONFIG_TYPE_FLOAT)
                v[i][k] = config_setting_get_float(x);
            else if (xt == CONFIG_TYPE_INT || xt == CONFIG_TYPE_INT64)
                v[i][k] = (double)config_setting_get_int64(x);
            else
                ok = false;
            ok = ok && isfinite(v[i][k]) && fabs(v[i][k]) <= CFG_DOUBLE_MAX;
        }
        if (!ok) {
            free(v);
            return cfg_fail(ld, e, "%s entry %zu must be a pair of numbers (a, b)", key, i + 1);
        }
    }
    *ret_list = l;
    *ret = v;
    *ret_n = n;
    return 0;
}

static int parse_pf(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t)
{
    config_setting_t *s = NULL, *l;
    double(*v)[2];
    size_t n;
    int r = cfg_get_double(ld, g, "pf_standard", false, &t->pf_standard, &s);
    if (r < 0)
        return r;
    bool has_std = r == 0;
    if (has_std && !(t->pf_standard > 0 && t->pf_standard <= 1))
        return cfg_fail(ld, s, "pf_standard must be in (0, 1]");
    if ((r = get_pairs(ld, g, "pf_adjust", &l, &v, &n)) < 0)
        return r;
    if (r == 1) {
        if (has_std)
            return cfg_fail(ld, s,
                            "pf_standard needs its table pf_adjust = ( (PF, percent), ... ) "
                            "(@include \"tariffs/pf-0.90.cfg\" has the national one)");
        return 0;
    }
    if (!has_std) {
        free(v);
        return cfg_fail(ld, l, "pf_adjust needs pf_standard");
    }
    t->pf_adjust = xcalloc(n, sizeof(*t->pf_adjust));
    t->n_pf_adjust = n;
    for (size_t i = 0; i < n; i++) {
        t->pf_adjust[i].pf = v[i][0];
        t->pf_adjust[i].pct = v[i][1];
    }
    free(v);
    for (size_t i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        double pf = t->pf_adjust[i].pf;
        if (!(pf >= 0 && pf <= 1))
            return cfg_fail(ld, e, "pf_adjust entry %zu: PF %g must be in [0, 1]", i + 1, pf);
        if (i > 0 && !(pf < t->pf_adjust[i - 1].pf))
            return cfg_fail(ld, e,
                            "pf_adjust entry %zu: PF %g must be below the entry before (%g): "
                            "the table lists the highest PF first",
                            i + 1, pf, t->pf_adjust[i - 1].pf);
        if (!(t->pf_adjust[i].pct > -100))
            return cfg_fail(ld, e, "pf_adjust entry %zu: percent must be above -100", i + 1);
    }
    return 0;
}

static int parse_blocks(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t)
{
    config_setting_t *l;
    double(*v)[2];
    size_t n;
    int r = get_pairs(ld, g, "blocks", &l, &v, &n);
    if (r != 0)
        return r < 0 ? r : 0;
    t->blocks = xcalloc(n, sizeof(*t->blocks));
    t->n_blocks = n;
    for (size_t i = 0; i < n; i++) {
        t->blocks[i].threshold = v[i][0];
        t->blocks[i].price = v[i][1];
    }
    free(v);
    for (size_t i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        if (!(t->blocks[i].threshold >= 0 && t->blocks[i].price >= 0))
            return cfg_fail(ld, e, "blocks entry %zu: threshold and price must be >= 0", i + 1);
        if (i > 0 && !(t->blocks[i].threshold > t->blocks[i - 1].threshold))
            return cfg_fail(ld, e,
                            "blocks entry %zu: threshold %g must be above the one before (%g)",
                            i + 1, t->blocks[i].threshold, t->blocks[i - 1].threshold);
    }
    return 0;
}

int cfg_parse_tariff_charges(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t)
{
    int r;
    if ((r = get_nonneg(ld, g, "surcharge", &t->surcharge)) ||
        (r = get_nonneg(ld, g, "fixed_monthly", &t->fixed_monthly)) ||
        (r = get_nonneg(ld, g, "demand_price", &t->demand_price)) ||
        (r = get_nonneg(ld, g, "capacity_price", &t->capacity_price)) ||
        (r = parse_pf(ld, g, t)) || (r = parse_blocks(ld, g, t)))
        return r;
    return 0;
}

void cfg_free_tariff_charges(struct cfg_tariff *t)
{
    free(t->pf_adjust);
    free(t->blocks);
    free(t->seasons);
}

int cfg_parse_meter_charges(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                            struct cfg_meter *m)
{
    config_setting_t *s = NULL;
    const char *name;
    int r;
    const struct cfg_profile *prof = &cfg->profiles[m->profile];

    m->reactive = -1;
    if ((r = cfg_get_double(ld, g, "capacity_kva", false, &m->capacity_kva, &s)) < 0)
        return r;
    if (r == 0 && !(m->capacity_kva > 0))
        return cfg_fail(ld, s, "capacity_kva must be > 0");
    if ((r = cfg_get_bool(ld, g, "max_demand", &m->max_demand, &s)) < 0)
        return r;
    if (m->max_demand && m->capacity_kva > 0)
        return cfg_fail(ld, s,
                        "give capacity_kva or max_demand = true, not both: the basic charge "
                        "is billed on one of them");
    if ((m->max_demand || m->capacity_kva > 0) && m->utility != UTIL_ELECTRICITY)
        return cfg_fail(ld, s, "capacity_kva and max_demand are for electricity meters");
    if ((r = cfg_get_str(ld, g, "reactive", false, &name, &s)) < 0)
        return r;
    if (r == 0) {
        m->reactive = profile_find_point(prof, name);
        if (m->reactive < 0)
            return cfg_fail(ld, s, "reactive: profile '%s' has no point '%s'", prof->name, name);
        if (prof->points[m->reactive].kind != KIND_COUNTER)
            return cfg_fail(ld, s, "reactive: point '%s' is not a counter", name);
    } else if (m->utility == UTIL_ELECTRICITY) {
        int p = profile_find_point(prof, "reactive_energy_kvarh");
        if (p >= 0 && prof->points[p].kind == KIND_COUNTER)
            m->reactive = p;
    }
    return 0;
}
