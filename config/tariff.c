/*
 * tariff.c - the `tariffs` list of the configuration (docs/CONFIG.md): per
 * utility one or more versions, each in force from its `valid_from` on (the
 * latest in force prices an instant), with a flat price or time-of-use
 * bands that cover every minute of the day once. The arithmetic lives in
 * engine/ (engine/billing.c, engine/tariff.c); seasons, demand, power factor
 * and blocks will be parsed here too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeparse.h"
#include "common/util.h"
#include "config/config_private.h"

static const char *const band_names[] = {"critical", "peak", "flat", "valley", "deep_valley",
                                         NULL};

static int parse_band(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t, size_t idx,
                      int season, size_t first, int owner[1440])
{
    static const char *const keys[] = {"name", "price", "hours", NULL};
    struct cfg_band *b = &t->bands[idx];
    config_setting_t *s = NULL, *hs = NULL;
    int r;

    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_dup_str(ld, g, "name", true, &b->name, &s)))
        return r;
    b->season = season;
    if (!cfg_in_list(b->name, band_names))
        return cfg_fail(ld, s,
                        "band name '%s' must be one of critical, peak, flat, valley, "
                        "deep_valley (尖 峰 平 谷 深谷)",
                        b->name);
    for (size_t i = first; i < idx; i++)
        if (strcmp(t->bands[i].name, b->name) == 0)
            return cfg_fail(ld, s, "duplicate band '%s'", b->name);
    if ((r = cfg_get_double(ld, g, "price", true, &b->price, &s)))
        return r;
    if (!(b->price >= 0))
        return cfg_fail(ld, s, "band '%s': price must be >= 0", b->name);
    if ((r = cfg_lookup(ld, g, "hours", true, &hs)))
        return r;
    int ht = config_setting_type(hs);
    if ((ht != CONFIG_TYPE_ARRAY && ht != CONFIG_TYPE_LIST) || config_setting_length(hs) == 0)
        return cfg_fail(
            ld, hs, "band '%s': hours must be a non-empty array [ \"HH:MM-HH:MM\", ... ]", b->name);
    b->n_hours = (size_t)config_setting_length(hs);
    b->hours = xcalloc(b->n_hours, sizeof *b->hours);
    for (size_t i = 0; i < b->n_hours; i++) {
        config_setting_t *e = config_setting_get_elem(hs, (unsigned)i);
        const char *v = config_setting_type(e) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(e)
                            : NULL;
        int from, to;
        if (!v || !cfg_parse_hours(v, &from, &to) || from == to)
            return cfg_fail(ld, e,
                            "band '%s': hours entry %zu must be \"HH:MM-HH:MM\" (end after "
                            "start, or before it to cross midnight; 24:00 allowed as end)",
                            b->name, i + 1);
        b->hours[i].from_min = from;
        b->hours[i].to_min = to;
        int end = to > from ? to : to + 1440;
        for (int m = from; m < end; m++) {
            int *o = &owner[m % 1440];
            if (*o >= 0)
                return cfg_fail(ld, e, "band '%s': %s overlaps band '%s' at %02d:%02d", b->name, v,
                                t->bands[*o].name, (m % 1440) / 60, m % 60);
            *o = (int)idx;
        }
    }
    return 0;
}

/* The bands list bs of one season into t->bands[first..]; every minute of
 * the day once (a gap is reported at where's line). */
static int parse_season_bands(struct ld *ld, const config_setting_t *where,
                              const config_setting_t *bs, struct cfg_tariff *t, int season,
                              size_t first, const char *what)
{
    int r, owner[1440];
    size_t n = (size_t)config_setting_length(bs);
    for (int m = 0; m < 1440; m++)
        owner[m] = -1;
    for (size_t i = 0; i < n; i++)
        if ((r = parse_band(ld, config_setting_get_elem(bs, (unsigned)i), t, first + i, season,
                            first, owner)))
            return r;
    for (int m = 0; m < 1440; m++) {
        if (owner[m] < 0) {
            int end = m;
            while (end < 1440 && owner[end] < 0)
                end++;
            return cfg_fail(ld, where,
                            "%sbands leave %02d:%02d-%02d:%02d uncovered; every minute of the "
                            "day needs exactly one band",
                            what, m / 60, m % 60, end / 60, end % 60);
        }
    }
    return 0;
}

/* seasons = ( { months = [ ... ]; bands = ( ... ); }, ... ): every month in
 * exactly one season, each season's bands covering the day once. */
static int parse_seasons(struct ld *ld, const config_setting_t *ss,
                         struct cfg_tariff *t)
{
    static const char *const keys[] = {"months", "bands", NULL};
    int r, month_line[13] = {0};
    if ((r = cfg_check_group_list(ld, ss, "seasons")))
        return r;
    t->n_seasons = (size_t)config_setting_length(ss);
    if (t->n_seasons == 0)
        return cfg_fail(ld, ss, "seasons must not be empty");
    t->seasons = xcalloc(t->n_seasons, sizeof(*t->seasons));
    size_t total = 0;
    for (size_t k = 0; k < t->n_seasons; k++) {
        config_setting_t *sg = config_setting_get_elem(ss, (unsigned)k), *bs;
        if ((r = cfg_check_keys(ld, sg, keys)) || (r = cfg_lookup(ld, sg, "bands", true, &bs)) ||
            (r = cfg_check_group_list(ld, bs, "bands")))
            return r;
        if (config_setting_length(bs) == 0)
            return cfg_fail(ld, bs, "bands must not be empty");
        total += (size_t)config_setting_length(bs);
    }
    t->n_bands = total;
    t->bands = xcalloc(total, sizeof(*t->bands));
    size_t first = 0;
    for (size_t k = 0; k < t->n_seasons; k++) {
        config_setting_t *sg = config_setting_get_elem(ss, (unsigned)k), *ms, *bs;
        struct cfg_season *se = &t->seasons[k];
        se->line = cfg_setting_line(sg);
        if ((r = cfg_lookup(ld, sg, "months", true, &ms)))
            return r;
        int mt = config_setting_type(ms);
        if ((mt != CONFIG_TYPE_ARRAY && mt != CONFIG_TYPE_LIST) || config_setting_length(ms) == 0)
            return cfg_fail(ld, ms, "months must be a non-empty array [ 1..12, ... ]");
        for (int i = 0; i < config_setting_length(ms); i++) {
            config_setting_t *e = config_setting_get_elem(ms, (unsigned)i);
            int mo = config_setting_type(e) == CONFIG_TYPE_INT ? config_setting_get_int(e) : 0;
            if (mo < 1 || mo > 12)
                return cfg_fail(ld, e, "months entry %d must be a month number 1..12", i + 1);
            if (month_line[mo])
                return cfg_fail(ld, e, "month %d is already in the season at line %d", mo,
                                month_line[mo]);
            month_line[mo] = se->line;
            se->months |= 1u << mo;
        }
        bs = config_setting_get_member(sg, "bands");
        char what[48];
        snprintf(what, sizeof(what), "season %zu: ", k + 1);
        if ((r = parse_season_bands(ld, sg, bs, t, (int)k, first, what)))
            return r;
        first += (size_t)config_setting_length(bs);
    }
    for (int mo = 1; mo <= 12; mo++)
        if (!month_line[mo])
            return cfg_fail(ld, ss, "seasons leave month %d without a season; every month needs "
                                    "exactly one",
                            mo);
    return 0;
}

static int parse_tariff(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"utility",        "currency",      "valid_from",
                                       "price",          "bands",         "seasons",
                                       "blocks",         "surcharge",     "fixed_monthly",
                                       "demand_price",   "capacity_price", "pf_standard",
                                       "pf_adjust",      NULL};
    struct cfg_tariff *t = &cfg->tariffs[idx];
    config_setting_t *s, *bs, *ss, *ks, *ps = NULL;
    int r;

    t->line = cfg_setting_line(g);
    cfg_set_ctx(ld, "tariffs[%zu]", idx);
    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_get_utility(ld, g, &t->utility)))
        return r;
    cfg_set_ctx(ld, "tariff '%s'", utility_name(t->utility));
    if ((r = cfg_dup_str(ld, g, "valid_from", false, &t->valid_from, &s)) < 0)
        return r;
    if (r == 0) {
        int64_t ms;
        /* validated now; the instant is resolved in the gateway's zone when
         * a statement is computed (tariff_valid_from) */
        if (timeparse(t->valid_from, &ms) < 0)
            return cfg_fail(ld, s, "valid_from '%s' must be a date (YYYY-MM-DD) or a time",
                            t->valid_from);
    }
    if ((r = cfg_dup_str(ld, g, "currency", true, &t->currency, &s)))
        return r;
    if (!t->currency[0])
        return cfg_fail(ld, s, "currency must not be empty");
    for (size_t i = 0; i < idx; i++) {
        const struct cfg_tariff *o = &cfg->tariffs[i];
        if (o->utility != t->utility)
            continue;
        if ((!o->valid_from && !t->valid_from) ||
            (o->valid_from && t->valid_from && !strcmp(o->valid_from, t->valid_from)))
            return cfg_fail(ld, config_setting_get_member(g, "utility"),
                            "a tariff for %s is already defined at line %d (in force from %s); "
                            "versions of a utility's tariff need distinct valid_from dates",
                            utility_name(t->utility), o->line,
                            o->valid_from ? o->valid_from : "ever");
        if (strcmp(o->currency, t->currency) != 0)
            return cfg_fail(ld, s,
                            "currency %s differs from the %s tariff's version at line %d (%s)",
                            t->currency, utility_name(t->utility), o->line, o->currency);
    }

    if ((r = cfg_parse_tariff_charges(ld, g, t)))
        return r;

    if ((r = cfg_get_double(ld, g, "price", false, &t->price, &ps)) < 0)
        return r;
    bool has_price = r == 0;
    if ((r = cfg_lookup(ld, g, "bands", false, &bs)) < 0 ||
        (r = cfg_lookup(ld, g, "seasons", false, &ss)) < 0)
        return r;
    bool has_bands = config_setting_get_member(g, "bands") != NULL;
    bool has_seasons = config_setting_get_member(g, "seasons") != NULL;
    ks = config_setting_get_member(g, "blocks");
    int given = has_price + has_bands + has_seasons + (t->n_blocks > 0);
    if (given > 1)
        return cfg_fail(ld, g, "give one of price, bands, seasons or blocks");
    if (given == 0)
        return cfg_fail(ld, g, "needs a price, bands, seasons or blocks");
    if (has_price) {
        if (!(t->price >= 0))
            return cfg_fail(ld, ps, "price must be >= 0");
        return 0;
    }
    if (ks)
        return 0;
    if (has_seasons)
        return parse_seasons(ld, ss, t);
    if ((r = cfg_check_group_list(ld, bs, "bands")))
        return r;
    t->n_bands = (size_t)config_setting_length(bs);
    if (t->n_bands == 0)
        return cfg_fail(ld, bs, "bands must not be empty");
    t->bands = xcalloc(t->n_bands, sizeof *t->bands);
    return parse_season_bands(ld, g, bs, t, 0, 0, "");
}

int cfg_parse_tariffs(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    cfg_set_ctx(ld, "%s", "");
    if ((r = cfg_get_list(ld, root, "tariffs", false, &l)))
        return r < 0 ? r : 0;
    cfg->n_tariffs = (size_t)config_setting_length(l);
    cfg->tariffs = xcalloc(cfg->n_tariffs ? cfg->n_tariffs : 1, sizeof *cfg->tariffs);
    for (size_t i = 0; i < cfg->n_tariffs; i++)
        if ((r = parse_tariff(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

int64_t config_tariff_from(const struct cfg_tariff *t)
{
    int64_t ms;
    if (!t->valid_from || timeparse(t->valid_from, &ms) < 0)
        return INT64_MIN;
    return ms;
}

const struct cfg_tariff *config_tariff_at(const struct config *cfg, enum utility u, int64_t ts)
{
    const struct cfg_tariff *best = NULL, *first = NULL;
    int64_t best_from = INT64_MIN, first_from = INT64_MAX;
    for (size_t i = 0; i < cfg->n_tariffs; i++) {
        const struct cfg_tariff *t = &cfg->tariffs[i];
        if (t->utility != u)
            continue;
        int64_t f = config_tariff_from(t);
        if (f <= ts && (!best || f > best_from)) {
            best = t;
            best_from = f;
        }
        if (!first || f < first_from) {
            first = t;
            first_from = f;
        }
    }
    return best ? best : first;
}
