/*
 * profiles.c - the register maps: each profile's points (function code,
 * address, type, word order, scale, kind, an integer + fraction totaliser),
 * its alarms, and the checks that need the whole profile (overlapping
 * registers, exactly one billing counter). Meters (park.c) refer to a
 * profile by name; the planner and decoder (protocols/) read the result.
 *
 * Profiles from several files: libconfig refuses a setting defined twice, and
 * @include inlines text, so two profile files cannot both define `profiles`.
 * The top level therefore accepts one list named `profiles` and any number of
 * lists whose name starts with `profiles_` (each shipped profile file defines
 * its own, e.g. `profiles_generic_water = ( { ... } );`). All are merged;
 * profile names must be unique across them.
 */
#include "config/config_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int profile_billing_point(const struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++)
        if (p->points[i].billing)
            return (int)i;
    return -1;
}

double point_ratio_factor(const struct cfg_point *p, double pt_ratio, double ct_ratio)
{
    switch (p->ratio) {
    case RATIO_PT:
        return pt_ratio;
    case RATIO_CT:
        return ct_ratio;
    case RATIO_PT_CT:
        return pt_ratio * ct_ratio;
    case RATIO_NONE:
    default:
        return 1.0;
    }
}

const char *point_ratio_name(enum point_ratio r)
{
    static const char *const names[] = {"", "pt", "ct", "pt_ct"};
    return (size_t)r < ARRAY_SIZE(names) ? names[r] : "";
}

bool alarm_in_schedule(const struct cfg_alarm *a, int minute)
{
    if (a->n_hours == 0)
        return true;
    for (size_t i = 0; i < a->n_hours; i++) {
        int f = a->hours[i].from_min, t = a->hours[i].to_min;
        if (f < t ? minute >= f && minute < t : minute >= f || minute < t)
            return true;
    }
    return false;
}

bool config_meter_alarm(const struct config *cfg, const struct cfg_meter *m, size_t k,
                        struct cfg_alarm *ret)
{
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    *ret = p->alarms[k];
    for (size_t i = 0; i < m->n_alarm_overrides; i++) {
        const struct cfg_alarm_override *o = &m->alarm_overrides[i];
        if ((size_t)o->alarm != k)
            continue;
        if (o->disabled)
            return false;
        if (o->has_for)
            ret->for_s = o->for_s;
        if (o->has_below)
            ret->below = o->below;
        if (o->has_above)
            ret->above = o->above;
        if (o->has_hysteresis)
            ret->hysteresis = o->hysteresis;
        if (o->has_hours) {
            ret->hours = o->hours;
            ret->n_hours = o->n_hours;
        }
    }
    return true;
}

int cfg_get_schedule(struct ld *ld, const config_setting_t *g, const char *what,
                     struct cfg_minutes **ret, size_t *ret_n)
{
    config_setting_t *hs = config_setting_get_member(g, "hours");
    if (!hs)
        return 1;
    int n = config_setting_type(hs) == CONFIG_TYPE_ARRAY ? config_setting_length(hs) : -1;
    if (n < 1)
        return cfg_fail(ld, hs, "%s: hours must be a non-empty array [ \"HH:MM-HH:MM\", ... ]",
                        what);
    struct cfg_minutes *h = xcalloc((size_t)n, sizeof(*h));
    for (int i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(hs, (unsigned)i);
        if (!v || !cfg_parse_hours(v, &h[i].from_min, &h[i].to_min) ||
            h[i].from_min == h[i].to_min) {
            free(h);
            return cfg_fail(ld, hs,
                            "%s: hours entry %d must be \"HH:MM-HH:MM\" (local time; an end "
                            "before the start crosses midnight)",
                            what, i);
        }
    }
    free(*ret);
    *ret = h;
    *ret_n = (size_t)n;
    return 0;
}

bool profile_suits(const struct cfg_profile *p, enum utility u)
{
    return (unsigned)u < UTIL__COUNT && (p->utilities & (1u << u)) != 0;
}

int profile_find_point(const struct cfg_profile *p, const char *name)
{
    for (size_t i = 0; i < p->n_points; i++)
        if (strcmp(p->points[i].name, name) == 0)
            return (int)i;
    return -1;
}

int config_find_profile(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_profiles; i++)
        if (cfg->profiles[i].name && strcmp(cfg->profiles[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Registers [first, end) a point reads: its own and, for an integer +
 * fraction totaliser, the fraction's, as one span (one request). */
static void point_span(const struct cfg_point *pt, int *ret_first, int *ret_end)
{
    int first = pt->address, end = pt->address + point_type_regs(pt->type);
    if (pt->has_frac) {
        int ff = pt->frac_address, fe = ff + point_type_regs(pt->frac_type);
        if (ff < first)
            first = ff;
        if (fe > end)
            end = fe;
    }
    *ret_first = first;
    *ret_end = end;
}

/* frac_address / frac_type of an integer + fraction totaliser; scale and
 * order are read by the caller. 0, or -EINVAL with the message set. */
static int parse_frac(struct ld *ld, const config_setting_t *g, struct cfg_point *pt)
{
    config_setting_t *s_addr = NULL, *s = NULL;
    const char *v;
    int r;

    pt->frac_type = PT_FLOAT32;
    if ((r = cfg_get_int(ld, g, "frac_address", false, 0, 65535, &pt->frac_address, &s_addr)) < 0)
        return r;
    pt->has_frac = r == 0;
    if ((r = cfg_get_str(ld, g, "frac_type", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        if (!pt->has_frac)
            return cfg_fail(ld, s, "point '%s': frac_type needs frac_address", pt->name);
        enum point_type t = PT_FLOAT32;
        if (point_type_parse(v, &t) < 0 || t == PT_BOOL)
            return cfg_fail(ld, s,
                            "point '%s': frac_type '%s' must be a register type (int16, "
                            "uint16, int32, uint32, int64, uint64, float32 or float64)",
                            pt->name, v);
        pt->frac_type = t;
    }
    if (!pt->has_frac)
        return 0;
    if (pt->fc != 3 && pt->fc != 4)
        return cfg_fail(ld, s_addr, "point '%s': frac_address needs fc 3 or 4", pt->name);
    int fe = pt->frac_address + point_type_regs(pt->frac_type);
    int me = pt->address + point_type_regs(pt->type);
    if (fe > 65536)
        return cfg_fail(ld, s_addr, "point '%s': fraction (%s at %d) runs past register 65535",
                        pt->name, point_type_name(pt->frac_type), pt->frac_address);
    if (pt->frac_address < me && pt->address < fe)
        return cfg_fail(ld, s_addr,
                        "point '%s': fraction registers %d..%d overlap the point's "
                        "own registers %d..%d",
                        pt->name, pt->frac_address, fe - 1, pt->address, me - 1);
    int first, end;
    point_span(pt, &first, &end);
    if (end - first > 125)
        return cfg_fail(ld, s_addr,
                        "point '%s': integer and fraction span registers %d..%d; "
                        "they must fit one request (125 registers) to be consistent",
                        pt->name, first, end - 1);
    return 0;
}

/* `ratio = "pt" | "ct" | "pt_ct"`, or the old `ct_pt = true` (= pt_ct). */
static int parse_ratio(struct ld *ld, const config_setting_t *g, const struct cfg_profile *p,
                       struct cfg_point *pt)
{
    config_setting_t *s_old = NULL, *s = NULL;
    bool old = false;
    const char *v;
    int r;

    if ((r = cfg_get_bool(ld, g, "ct_pt", &old, &s_old)) < 0)
        return r;
    if (old)
        pt->ratio = RATIO_PT_CT;
    if ((r = cfg_get_str(ld, g, "ratio", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        if (s_old)
            return cfg_fail(ld, s,
                            "point '%s': ratio and ct_pt both set; ct_pt = true is the old "
                            "spelling of ratio = \"pt_ct\", keep one",
                            pt->name);
        if (strcmp(v, "pt") == 0)
            pt->ratio = RATIO_PT;
        else if (strcmp(v, "ct") == 0)
            pt->ratio = RATIO_CT;
        else if (strcmp(v, "pt_ct") == 0)
            pt->ratio = RATIO_PT_CT;
        else
            return cfg_fail(ld, s,
                            "point '%s': ratio '%s' must be \"pt\" (a voltage on a PT), "
                            "\"ct\" (a current on a CT) or \"pt_ct\" (an energy or power)",
                            pt->name, v);
    } else {
        s = s_old;
    }
    if (pt->ratio == RATIO_NONE)
        return 0;
    if (p->utility != UTIL_ELECTRICITY)
        return cfg_fail(ld, s, "point '%s': %s applies only to electricity profiles", pt->name,
                        r == 0 ? "ratio" : "ct_pt");
    if (pt->type == PT_BOOL)
        return cfg_fail(ld, s, "point '%s': a bool point has no ratio", pt->name);
    if (pt->billing && pt->ratio != RATIO_PT_CT)
        return cfg_fail(ld, s,
                        "point '%s': the billing counter is an energy: its ratio is "
                        "\"pt_ct\", not \"%s\"",
                        pt->name, point_ratio_name(pt->ratio));
    return 0;
}

/* The Modbus register keys of point pt: fc, type, address, an integer +
 * fraction totaliser, word order. */
static int parse_register(struct ld *ld, const config_setting_t *g, struct cfg_point *pt)
{
    config_setting_t *s, *s_type, *s_addr;
    const char *v;
    int r;

    if ((r = cfg_get_int(ld, g, "fc", true, 1, 4, &pt->fc, NULL)) ||
        (r = cfg_get_str(ld, g, "type", true, &v, &s_type)))
        return r;
    if (point_type_parse(v, &pt->type) < 0)
        return cfg_fail(ld, s_type,
                        "point '%s': unknown type '%s' (expected int16, uint16, int32, "
                        "uint32, int64, uint64, float32, float64 or bool)",
                        pt->name, v);
    bool bitfc = pt->fc == 1 || pt->fc == 2;
    if (pt->type == PT_BOOL && !bitfc)
        return cfg_fail(ld, s_type,
                        "point '%s': type bool needs fc 1 (coils) or 2 (discrete inputs)",
                        pt->name);
    if (pt->type != PT_BOOL && bitfc)
        return cfg_fail(ld, s_type, "point '%s': fc %d reads bits, so type must be bool", pt->name,
                        pt->fc);

    if ((r = cfg_get_int(ld, g, "address", true, 0, 65535, &pt->address, &s_addr)))
        return r;
    int regs = point_type_regs(pt->type);
    if (pt->address + regs > 65536)
        return cfg_fail(ld, s_addr, "point '%s': %s at address %d runs past register 65535",
                        pt->name, point_type_name(pt->type), pt->address);

    if ((r = parse_frac(ld, g, pt)) < 0)
        return r;
    if (pt->has_frac && point_type_regs(pt->frac_type) > regs)
        regs = point_type_regs(pt->frac_type); /* the order may be for the fraction */

    pt->order = WO_ABCD;
    if ((r = cfg_get_str(ld, g, "order", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        enum word_order o = WO_ABCD;
        if (word_order_parse(v, &o) < 0)
            return cfg_fail(ld, s,
                            "point '%s': unknown order '%s' (expected ABCD, CDAB, BADC or "
                            "DCBA)",
                            pt->name, v);
        if (regs == 1)
            return cfg_fail(ld, s, "point '%s': order applies only to 32- and 64-bit types",
                            pt->name);
        pt->order = o;
    }

    pt->frac_scale = pt->scale;
    if ((r = cfg_get_double(ld, g, "frac_scale", false, &pt->frac_scale, &s)) < 0)
        return r;
    if (r == 0) {
        if (!pt->has_frac)
            return cfg_fail(ld, s, "point '%s': frac_scale needs frac_address", pt->name);
        if (pt->frac_scale == 0.0 || !isfinite(pt->frac_scale))
            return cfg_fail(ld, s, "point '%s': frac_scale must be a non-zero number", pt->name);
    }
    return 0;
}

static int parse_point(struct ld *ld, const config_setting_t *g, struct cfg_profile *p, size_t idx)
{
    static const char *const keys[] = {"name",     "fc",           "address",   "type",
                                       "order",    "scale",        "offset",    "kind",
                                       "billing",  "ct_pt",        "ratio",     "max_rate",
                                       "frac_address", "frac_type", "frac_scale", "di",
                                       "format",   "signed",       "block",     "field",
                                       NULL};
    static const char *const cn_keys[] = {"di", "format", "signed", "block", "field", NULL};
    struct cfg_point *pt = &p->points[idx];
    config_setting_t *s;
    const char *v;
    int r;

    pt->line = cfg_setting_line(g);
    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_dup_str(ld, g, "name", true, &pt->name, &s)))
        return r;
    if (!cfg_id_ok(pt->name, "_"))
        return cfg_fail(ld, s, "point name '%s' must match [a-z0-9_]+", pt->name);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(p->points[i].name, pt->name) == 0)
            return cfg_fail(ld, s, "duplicate point '%s' (first defined at line %d)", pt->name,
                            p->points[i].line);

    pt->scale = 1.0;
    if ((r = cfg_get_double(ld, g, "scale", false, &pt->scale, &s)) < 0)
        return r;
    if (r == 0 && pt->scale == 0.0)
        return cfg_fail(ld, s, "point '%s': scale must not be 0", pt->name);
    if (p->protocol == PROTO_MODBUS) {
        for (const char *const *k = cn_keys; *k; k++) {
            config_setting_t *f = config_setting_get_member(g, *k);
            if (f)
                return cfg_fail(ld, f,
                                "point '%s': '%s' needs the profile's protocol = "
                                "\"dlt645-2007\" or \"cjt188\"",
                                pt->name, *k);
        }
        r = parse_register(ld, g, pt);
    } else {
        r = cfg_parse_cn_point(ld, g, p, pt);
    }
    if (r < 0)
        return r;
    if ((r = cfg_get_double(ld, g, "offset", false, &pt->offset, NULL)) < 0)
        return r;

    pt->kind = KIND_GAUGE;
    if ((r = cfg_get_str(ld, g, "kind", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        if (strcmp(v, "counter") == 0)
            pt->kind = KIND_COUNTER;
        else if (strcmp(v, "gauge") != 0)
            return cfg_fail(ld, s, "point '%s': kind '%s' must be \"counter\" or \"gauge\"",
                            pt->name, v);
    }
    if ((r = cfg_get_bool(ld, g, "billing", &pt->billing, &s)) < 0)
        return r;
    if (pt->billing && pt->kind != KIND_COUNTER)
        return cfg_fail(ld, s, "point '%s': the billing point must be kind = \"counter\"",
                        pt->name);
    if ((r = parse_ratio(ld, g, p, pt)) < 0)
        return r;
    if ((r = cfg_get_double(ld, g, "max_rate", false, &pt->max_rate, &s)) < 0)
        return r;
    if (r == 0) {
        if (pt->kind != KIND_COUNTER)
            return cfg_fail(ld, s, "point '%s': max_rate applies only to counters", pt->name);
        if (!(pt->max_rate > 0))
            return cfg_fail(ld, s, "point '%s': max_rate must be > 0", pt->name);
    }
    return 0;
}

static int parse_alarm(struct ld *ld, const config_setting_t *g, struct cfg_profile *p, size_t idx)
{
    static const char *const keys[] = {"name",       "point", "below", "above", "for",
                                       "hysteresis", "hours", NULL};
    struct cfg_alarm *a = &p->alarms[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    a->line = cfg_setting_line(g);
    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_dup_str(ld, g, "name", true, &a->name, &s)))
        return r;
    if (!cfg_id_ok(a->name, "_"))
        return cfg_fail(ld, s, "alarm name '%s' must match [a-z0-9_]+", a->name);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(p->alarms[i].name, a->name) == 0)
            return cfg_fail(ld, s, "duplicate alarm '%s' (first defined at line %d)", a->name,
                            p->alarms[i].line);
    if ((r = cfg_get_str(ld, g, "point", true, &v, &s)))
        return r;
    a->point = profile_find_point(p, v);
    if (a->point < 0)
        return cfg_fail(ld, s, "alarm '%s': unknown point '%s'", a->name, v);
    if ((r = cfg_get_double(ld, g, "below", false, &a->below, NULL)) < 0)
        return r;
    a->has_below = r == 0;
    if ((r = cfg_get_double(ld, g, "above", false, &a->above, NULL)) < 0)
        return r;
    a->has_above = r == 0;
    if (!a->has_below && !a->has_above)
        return cfg_fail(ld, g, "alarm '%s' needs 'below' or 'above' (or both)", a->name);
    if (a->has_below && a->has_above && !(a->below < a->above))
        return cfg_fail(ld, g,
                        "alarm '%s': below (%g) must be less than above (%g), else it never "
                        "clears",
                        a->name, a->below, a->above);
    if ((r = cfg_get_double(ld, g, "for", false, &a->for_s, &s)) < 0)
        return r;
    if (!(a->for_s >= 0) || a->for_s > 86400)
        return cfg_fail(ld, s, "alarm '%s': for must be 0..86400 seconds", a->name);
    if ((r = cfg_get_double(ld, g, "hysteresis", false, &a->hysteresis, &s)) < 0)
        return r;
    if (!(a->hysteresis >= 0))
        return cfg_fail(ld, s, "alarm '%s': hysteresis must be >= 0", a->name);
    char what[96];
    snprintf(what, sizeof(what), "alarm '%s'", a->name);
    if ((r = cfg_get_schedule(ld, g, what, &a->hours, &a->n_hours)) < 0)
        return r;
    return 0;
}

int cfg_parse_alarm_overrides(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                              struct cfg_meter *m)
{
    static const char *const keys[] = {"name",       "for",   "below",   "above",
                                       "hysteresis", "hours", "enabled", NULL};
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    config_setting_t *l = NULL, *s = NULL;
    const char *v;
    int r;

    if ((r = cfg_get_list(ld, g, "alarms", false, &l)))
        return r < 0 ? r : 0;
    size_t n = (size_t)config_setting_length(l);
    m->alarm_overrides = xcalloc(n ? n : 1, sizeof(*m->alarm_overrides));
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
        struct cfg_alarm_override *o = &m->alarm_overrides[i];
        m->n_alarm_overrides = i + 1;
        o->line = cfg_setting_line(e);
        if ((r = cfg_check_keys(ld, e, keys)) || (r = cfg_get_str(ld, e, "name", true, &v, &s)))
            return r;
        o->alarm = -1;
        for (size_t k = 0; k < p->n_alarms; k++)
            if (strcmp(p->alarms[k].name, v) == 0)
                o->alarm = (int)k;
        if (o->alarm < 0) {
            char names[256] = "";
            size_t len = 0;
            for (size_t k = 0; k < p->n_alarms && len < sizeof(names); k++)
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
                                        k ? ", " : "", p->alarms[k].name);
            return cfg_fail(ld, s, "alarms: profile '%s' has no alarm '%s' (it has: %s)",
                            p->name, v, p->n_alarms ? names : "none");
        }
        for (size_t k = 0; k < i; k++)
            if (m->alarm_overrides[k].alarm == o->alarm)
                return cfg_fail(ld, s, "alarms: '%s' changed twice (first at line %d)", v,
                                m->alarm_overrides[k].line);
        bool enabled = true;
        if ((r = cfg_get_bool(ld, e, "enabled", &enabled, NULL)) < 0)
            return r;
        o->disabled = !enabled;
        if ((r = cfg_get_double(ld, e, "for", false, &o->for_s, &s)) < 0)
            return r;
        o->has_for = r == 0;
        if (o->has_for && (!(o->for_s >= 0) || o->for_s > 86400))
            return cfg_fail(ld, s, "alarm '%s': for must be 0..86400 seconds", v);
        if ((r = cfg_get_double(ld, e, "below", false, &o->below, NULL)) < 0)
            return r;
        o->has_below = r == 0;
        if ((r = cfg_get_double(ld, e, "above", false, &o->above, NULL)) < 0)
            return r;
        o->has_above = r == 0;
        if ((r = cfg_get_double(ld, e, "hysteresis", false, &o->hysteresis, &s)) < 0)
            return r;
        o->has_hysteresis = r == 0;
        if (o->has_hysteresis && !(o->hysteresis >= 0))
            return cfg_fail(ld, s, "alarm '%s': hysteresis must be >= 0", v);
        char what[96];
        snprintf(what, sizeof(what), "alarm '%s'", v);
        if ((r = cfg_get_schedule(ld, e, what, &o->hours, &o->n_hours)) < 0)
            return r;
        o->has_hours = r == 0;
        struct cfg_alarm eff;
        config_meter_alarm(cfg, m, (size_t)o->alarm, &eff);
        if ((o->has_below && !eff.has_below) || (o->has_above && !eff.has_above))
            return cfg_fail(ld, e, "alarm '%s': the profile's rule has no '%s' to change", v,
                            o->has_below && !eff.has_below ? "below" : "above");
        if (eff.has_below && eff.has_above && !(eff.below < eff.above))
            return cfg_fail(ld, e, "alarm '%s': below (%g) must be less than above (%g)", v,
                            eff.below, eff.above);
    }
    return 0;
}

/* Two points of the same function code whose registers (or bits) overlap. */
static int check_overlaps(struct ld *ld, const config_setting_t *pts, const struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *a = &p->points[i];
        /* A fraction part counts as registers of its point: the simulator
         * and the decoder assume no other point lives there. */
        struct { int first, end; } ar[2] = {{a->address, a->address + point_type_regs(a->type)},
                                            {-1, -1}};
        if (a->has_frac)
            ar[1].end = (ar[1].first = a->frac_address) + point_type_regs(a->frac_type);
        for (size_t j = 0; j < i; j++) {
            const struct cfg_point *b = &p->points[j];
            struct { int first, end; } br[2] = {
                {b->address, b->address + point_type_regs(b->type)}, {-1, -1}};
            if (b->has_frac)
                br[1].end = (br[1].first = b->frac_address) + point_type_regs(b->frac_type);
            if (a->fc != b->fc)
                continue;
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    if (ar[x].first >= 0 && br[y].first >= 0 && ar[x].first < br[y].end &&
                        br[y].first < ar[x].end)
                        return cfg_fail(ld, config_setting_get_elem(pts, (unsigned)i),
                                        "point '%s' (fc %d, registers %d..%d) overlaps point '%s' "
                                        "(registers %d..%d, line %d)",
                                        a->name, a->fc, ar[x].first, ar[x].end - 1, b->name,
                                        br[y].first, br[y].end - 1, b->line);
        }
    }
    return 0;
}

/* `utility = "water";` or `utilities = [ "water", "wastewater" ];`: the
 * utilities the meter model suits (a flow meter meters water as well as
 * wastewater); the meter entry's utility decides how it is billed. */
static int parse_utilities(struct ld *ld, const config_setting_t *g, struct cfg_profile *p)
{
    config_setting_t *one = config_setting_get_member(g, "utility");
    config_setting_t *list = config_setting_get_member(g, "utilities");
    int r;

    if (one && list)
        return cfg_fail(ld, list, "set either utility or utilities, not both");
    if (!one && !list)
        return cfg_fail(ld, g,
                        "missing required setting 'utility' (or 'utilities', the list of those "
                        "the meter model suits)");
    if (!list) {
        if ((r = cfg_get_utility(ld, g, &p->utility)))
            return r;
        p->utilities = 1u << p->utility;
        return 0;
    }
    int n = config_setting_type(list) == CONFIG_TYPE_ARRAY ? config_setting_length(list) : -1;
    if (n < 1)
        return cfg_fail(ld, list,
                        "utilities must be a non-empty array of names, e.g. "
                        "[ \"water\", \"wastewater\" ]");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        const char *v = config_setting_get_string(e);
        enum utility u;
        if (!v || utility_parse(v, &u) < 0)
            return cfg_fail(ld, list,
                            "utilities[%d]: '%s' is not a utility (expected electricity, water, "
                            "gas or wastewater)",
                            i, v ? v : "(not a string)");
        if (p->utilities & (1u << u))
            return cfg_fail(ld, list, "utilities: '%s' listed twice", v);
        if (i == 0)
            p->utility = u;
        p->utilities |= 1u << u;
    }
    /* Points of an electricity meter (ratios, phases) mean nothing on a
     * flow meter and the other way round. */
    if ((p->utilities & (1u << UTIL_ELECTRICITY)) && p->utilities != (1u << UTIL_ELECTRICITY))
        return cfg_fail(ld, list,
                        "an electricity meter model meters only electricity; utilities may "
                        "list water, gas and wastewater together");
    return 0;
}

static int parse_profile(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"name",        "utility",  "utilities", "points",
                                       "alarms",      "description", "protocol", "meter_type",
                                       "settlement", "daily_frozen",
                                       NULL};
    struct cfg_profile *p = &cfg->profiles[idx];
    config_setting_t *s, *pts, *als = NULL;
    const char *v;
    int r;

    p->line = cfg_setting_line(g);
    p->file = xstrdup(cfg_setting_file(ld, g));
    if ((r = cfg_check_keys(ld, g, keys)) || (r = cfg_dup_str(ld, g, "name", true, &p->name, &s)))
        return r;
    if (!cfg_id_ok(p->name, "-_."))
        return cfg_fail(ld, s, "profile name '%s' must match [a-z0-9_.-]+", p->name);
    cfg_set_ctx(ld, "profile '%s'", p->name);
    int prev = config_find_profile(cfg, p->name);
    if (prev >= 0 && (size_t)prev < idx)
        return cfg_fail(ld, s, "duplicate profile name (first defined at %s:%d)",
                        cfg->profiles[prev].file, cfg->profiles[prev].line);
    if ((r = cfg_get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = parse_utilities(ld, g, p)) ||
        (r = cfg_get_protocol(ld, g, &p->protocol)) < 0 || (r = cfg_get_meter_type(ld, g, p)) < 0)
        return r;
    if ((r = cfg_get_list(ld, g, "points", true, &pts)))
        return r;
    p->n_points = (size_t)config_setting_length(pts);
    if (p->n_points == 0)
        return cfg_fail(ld, pts, "a profile needs at least one point");
    p->points = xcalloc(p->n_points, sizeof *p->points);
    for (size_t i = 0; i < p->n_points; i++)
        if ((r = parse_point(ld, config_setting_get_elem(pts, (unsigned)i), p, i)))
            return r;
    if ((r = p->protocol == PROTO_MODBUS ? check_overlaps(ld, pts, p)
                                         : cfg_check_cn_profile(ld, pts, p)))
        return r;

    int n_billing = 0;
    for (size_t i = 0; i < p->n_points; i++) {
        if (!p->points[i].billing)
            continue;
        if (++n_billing > 1)
            return cfg_fail(ld, config_setting_get_elem(pts, (unsigned)i),
                            "point '%s': only one point per profile may have billing = true "
                            "(already '%s')",
                            p->points[i].name, p->points[profile_billing_point(p)].name);
    }
    if (n_billing == 0)
        return cfg_fail(ld, g,
                        "no billing counter: exactly one point needs billing = true and "
                        "kind = \"counter\"");
    if ((r = cfg_get_settlement(ld, g, p)) < 0)
        return r;
    if ((r = cfg_get_daily_frozen(ld, g, p)) < 0)
        return r;

    if ((r = cfg_get_list(ld, g, "alarms", false, &als)) < 0)
        return r;
    if (r == 0) {
        p->n_alarms = (size_t)config_setting_length(als);
        p->alarms = xcalloc(p->n_alarms ? p->n_alarms : 1, sizeof *p->alarms);
        for (size_t i = 0; i < p->n_alarms; i++)
            if ((r = parse_alarm(ld, config_setting_get_elem(als, (unsigned)i), p, i)))
                return r;
    }
    return 0;
}

static bool is_profiles_key(const char *name)
{
    return strcmp(name, "profiles") == 0 || strncmp(name, "profiles_", 9) == 0;
}

int cfg_parse_profiles(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    int n_top = config_setting_length(root);
    size_t total = 0;
    int r;

    cfg_set_ctx(ld, "%s", "");
    for (int i = 0; i < n_top; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (!is_profiles_key(config_setting_name(s)))
            continue;
        if ((r = cfg_check_group_list(ld, s, config_setting_name(s))))
            return r;
        total += (size_t)config_setting_length(s);
    }
    cfg->profiles = xcalloc(total ? total : 1, sizeof *cfg->profiles);
    cfg->n_profiles = total;
    size_t k = 0;
    for (int i = 0; i < n_top; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (!is_profiles_key(config_setting_name(s)))
            continue;
        for (int j = 0; j < config_setting_length(s); j++) {
            cfg_set_ctx(ld, "%s[%d]", config_setting_name(s), j);
            if ((r = parse_profile(ld, config_setting_get_elem(s, (unsigned)j), cfg, k++)))
                return r;
        }
    }
    return 0;
}
