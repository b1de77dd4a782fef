/*
 * sim_model.c - the simulated park's physics (see sim_model.h and docs/SIM.md).
 * Every value is a closed-form function of (seed, enterprise, meter, point
 * name, second): load curves are piecewise-linear per hour of the local day
 * plus two slow sinusoidal ripples, so counters are their exact integrals and
 * need no accumulated state. The encoder of protocols/decode.h turns values
 * into registers.
 */
#include "tools/sim/sim_model.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common/timeutil.h"
#include "protocols/cjt188.h"
#include "protocols/decode.h"

#define HOUR 3600
#define DAY 86400
#define WEEK (7 * DAY)
/* The park is in Hunan: China Standard Time, UTC+8 all year, no DST. */
#define LOCAL_UTC_OFFSET (8 * HOUR)
/* Monday 1970-01-05 00:00 local time: weeks and days are counted from it. */
#define WEEK_EPOCH (4 * DAY - LOCAL_UTC_OFFSET)
/* 2025-01-01 00:00 local: a counter shows its base reading at this second. */
#define COUNTER_EPOCH INT64_C(1735660800)

/* Relative amplitudes and periods (s) of the two ripples on every rate. */
#define RIPPLE1_AMP 0.02
#define RIPPLE1_PERIOD 613
#define RIPPLE2_AMP 0.01
#define RIPPLE2_PERIOD 97

/* Gas meters also count volume at line conditions: the medium-pressure
 * supply at about 200 kPa gauge and 15 C, i.e.
 * Nm3 x (101.325 / 301.325) x (288.15 / 273.15). */
#define GAS_LINE_FACTOR (101.325 / 301.325 * 288.15 / 273.15)

/* Shift patterns: share of the peak rate at each whole hour of the local
 * day, linear in between. The lowest value times the lowest weekly factor
 * (0.6) stays above the ripples' 0.03, so rates never go negative. */
enum { SHIFT_TWO, SHIFT_CONTINUOUS, SHIFT_DAY, SHIFT__COUNT };
static const double shift_shapes[SHIFT__COUNT][24] = {
    /* two day shifts, peaks 8-11 and 14-18, lunch dip, low night */
    [SHIFT_TWO] = {0.25, 0.22, 0.20, 0.20, 0.20, 0.22, 0.30, 0.55, 0.90, 1.00, 1.00, 0.85,
                   0.60, 0.75, 0.95, 1.00, 1.00, 0.95, 0.70, 0.50, 0.40, 0.35, 0.30, 0.27},
    /* three shifts (extrusion lines run round the clock), a daytime bump */
    [SHIFT_CONTINUOUS] = {0.80, 0.79, 0.78, 0.78, 0.78, 0.79, 0.82, 0.88, 0.96, 1.00, 1.00,
                          0.95, 0.90, 0.94, 0.98, 1.00, 1.00, 0.97, 0.92, 0.88, 0.85, 0.83,
                          0.82, 0.81},
    /* one day shift 8-17 (workshops, casting): almost nothing at night */
    [SHIFT_DAY] = {0.12, 0.12, 0.12, 0.12, 0.12, 0.12, 0.15, 0.40, 0.90, 1.00, 1.00, 0.95,
                   0.70, 0.90, 1.00, 1.00, 0.95, 0.60, 0.30, 0.18, 0.15, 0.13, 0.12, 0.12},
};

/* A rate curve and its closed-form integral. */
struct flow {
    double peak;         /* unit per hour at shape 1 */
    double gain;         /* wastewater: share of the water that is discharged */
    int64_t lag;         /* seconds the curve is delayed (wastewater behind water) */
    const double *shape; /* 24 knots */
    double week[7];      /* Monday..Sunday factors */
    double cum[25];      /* cum[h]: integral of shape over hours [0, h) */
    double phase1, phase2;
};

struct model {
    uint64_t key;        /* seed + enterprise + meter */
    enum utility util;
    struct flow flow;
    double base_reading; /* billing counter at COUNTER_EPOCH, main unit */
    double tanphi;
    double pt, ct;
    bool hv;             /* metered through PTs on the 10 kV side */
};

enum qty {
    Q_UNKNOWN, Q_P, Q_Q, Q_S, Q_E_IMP, Q_E_EXP, Q_EQ_IMP, Q_EQ_EXP, Q_ES, Q_V_PH, Q_V_LL, Q_I,
    Q_I_N, Q_PF, Q_HZ, Q_FLOW, Q_VOL, Q_VOL_LINE, Q_KPA, Q_TEMP, Q_BOOL
};

/* ---- hashing: values depend on names, never on config order ---- */

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t hkey(uint64_t h, const char *s)
{
    return mix64(h ^ fnv1a(s));
}

static uint64_t hsalt(uint64_t h, uint64_t salt)
{
    return mix64(h ^ mix64(salt));
}

static double u01(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

static double urange(uint64_t h, double lo, double hi)
{
    return lo + (hi - lo) * u01(h);
}

/* Deterministic noise in [-1, 1] for one key and second. */
static double noise(uint64_t key, int64_t t)
{
    return 2.0 * u01(mix64(key ^ mix64((uint64_t)t * UINT64_C(0x2545f4914f6cdd1d)))) - 1.0;
}

/* Hour of the local day as a real number, 0 <= h < 24. */
static double local_hour(int64_t t)
{
    return (double)floor_mod(t + LOCAL_UTC_OFFSET, DAY) / HOUR;
}

/* ---- rate curves ---- */

static void flow_init(struct flow *f, uint64_t seed, const char *ent, const char *meter,
                      double peak)
{
    uint64_t ek = hkey(mix64(seed), ent);
    uint64_t mk = hkey(ek, meter);
    int pattern = (int)(hsalt(ek, 1) % SHIFT__COUNT);
    f->peak = peak;
    f->gain = 1.0;
    f->lag = 0;
    f->shape = shift_shapes[pattern];
    for (int d = 0; d < 5; d++)
        f->week[d] = 1.0;
    if (pattern == SHIFT_CONTINUOUS) {
        f->week[5] = f->week[6] = 0.95;
    } else {
        f->week[5] = urange(hsalt(ek, 2), 0.75, 1.0);
        f->week[6] = urange(hsalt(ek, 3), 0.6, 0.9);
    }
    f->cum[0] = 0;
    for (int h = 0; h < 24; h++)
        f->cum[h + 1] = f->cum[h] + 0.5 * (f->shape[h] + f->shape[(h + 1) % 24]);
    f->phase1 = urange(hsalt(mk, 4), 0, 2 * M_PI);
    f->phase2 = urange(hsalt(mk, 5), 0, 2 * M_PI);
}

static double ripple_angle(int64_t t, int64_t period, double phase)
{
    return 2 * M_PI * (double)floor_mod(t - WEEK_EPOCH, period) / (double)period + phase;
}

/* Shape x weekly factor at second t (no ripple, no gain): the load share. */
static double flow_load(const struct flow *f, int64_t t)
{
    t -= f->lag;
    int64_t r = floor_mod(t - WEEK_EPOCH, WEEK);
    int d = (int)(r / DAY);
    int64_t u = r % DAY;
    int h = (int)(u / HOUR);
    double x = (double)(u % HOUR) / HOUR;
    double v0 = f->shape[h], v1 = f->shape[(h + 1) % 24];
    return f->week[d] * (v0 + x * (v1 - v0));
}

static double flow_rate(const struct flow *f, int64_t t)
{
    double rip = RIPPLE1_AMP * sin(ripple_angle(t - f->lag, RIPPLE1_PERIOD, f->phase1)) +
                 RIPPLE2_AMP * sin(ripple_angle(t - f->lag, RIPPLE2_PERIOD, f->phase2));
    return f->gain * f->peak * (flow_load(f, t) + rip);
}

/* Exact integral of flow_rate from WEEK_EPOCH (plus a constant) to t, in
 * unit x hours. Only differences of it are meaningful. */
static double flow_integral(const struct flow *f, int64_t t)
{
    t -= f->lag;
    int64_t s = t - WEEK_EPOCH;
    int64_t w = floor_div(s, WEEK);
    int64_t r = s - w * WEEK;
    int d = (int)(r / DAY);
    int64_t u = r % DAY;
    int h = (int)(u / HOUR);
    double x = (double)(u % HOUR) / HOUR;
    double week_sum = 0, before = 0;
    for (int i = 0; i < 7; i++) {
        week_sum += f->week[i];
        if (i < d)
            before += f->week[i];
    }
    double v0 = f->shape[h], v1 = f->shape[(h + 1) % 24];
    double today = f->cum[h] + x * v0 + 0.5 * x * x * (v1 - v0);
    double shape_part = (double)w * week_sum * f->cum[24] + before * f->cum[24] +
                        f->week[d] * today;
    /* integral of a*sin(2 pi s/P + phi) ds = -a P/(2 pi) cos(...), seconds -> hours */
    double rip = -RIPPLE1_AMP * RIPPLE1_PERIOD / (2 * M_PI * HOUR) *
                     cos(ripple_angle(t, RIPPLE1_PERIOD, f->phase1)) -
                 RIPPLE2_AMP * RIPPLE2_PERIOD / (2 * M_PI * HOUR) *
                     cos(ripple_angle(t, RIPPLE2_PERIOD, f->phase2));
    return f->gain * f->peak * (shape_part + rip);
}

/* ---- per-meter model ---- */

static double water_peak(uint64_t seed, const char *ent, const char *meter)
{
    return urange(hsalt(hkey(hkey(mix64(seed), ent), meter), 10), 5, 60);
}

static void model_init(struct model *mm, uint64_t seed, const struct config *cfg,
                       const struct cfg_meter *m)
{
    (void)cfg;
    const char *ent = m->enterprise ? m->enterprise->id : "";
    memset(mm, 0, sizeof(*mm));
    mm->key = hkey(hkey(mix64(seed), ent), m->id);
    mm->util = m->utility;
    mm->pt = m->pt_ratio > 0 ? m->pt_ratio : 1;
    mm->ct = m->ct_ratio > 0 ? m->ct_ratio : 1;
    mm->hv = mm->pt > 1;
    mm->tanphi = tan(acos(urange(hsalt(mm->key, 11), 0.87, 0.97)));
    switch (m->utility) {
    case UTIL_ELECTRICITY:
        /* a plant on the 10 kV ring; a low-voltage meter is a smaller feeder */
        flow_init(&mm->flow, seed, ent, m->id,
                  mm->hv ? urange(hsalt(mm->key, 12), 200, 2000)
                         : urange(hsalt(mm->key, 12), 50, 400));
        mm->base_reading = urange(hsalt(mm->key, 13), 1e5, 5e6);
        break;
    case UTIL_WATER:
        flow_init(&mm->flow, seed, ent, m->id, water_peak(seed, ent, m->id));
        mm->base_reading = urange(hsalt(mm->key, 13), 1e3, 2e5);
        break;
    case UTIL_GAS:
        flow_init(&mm->flow, seed, ent, m->id, urange(hsalt(mm->key, 12), 20, 400));
        mm->base_reading = urange(hsalt(mm->key, 13), 1e3, 5e5);
        break;
    case UTIL_WASTEWATER:
    default: {
        /* discharge follows the enterprise's (first) water meter an hour's
         * half later, after the pre-treatment tanks */
        const char *wm = "water";
        if (m->enterprise)
            for (size_t i = 0; i < m->enterprise->n_meters; i++)
                if (m->enterprise->meters[i].utility == UTIL_WATER) {
                    wm = m->enterprise->meters[i].id;
                    break;
                }
        flow_init(&mm->flow, seed, ent, wm, water_peak(seed, ent, wm));
        mm->flow.gain = urange(hsalt(mm->key, 14), 0.7, 0.9);
        mm->flow.lag = 1800;
        mm->base_reading = urange(hsalt(mm->key, 13), 1e3, 1.5e5);
        break;
    }
    }
}

/* The meter's main consumption since COUNTER_EPOCH with supply overrides. */
static double model_consumed(const struct model *mm, int64_t t, const struct sim_meter_state *st)
{
    int64_t te = t;
    double lost = 0;
    if (st) {
        lost = st->lost;
        if (st->supply_off && st->off_since > 0 && st->off_since < t)
            te = st->off_since;
    }
    return flow_integral(&mm->flow, te) - flow_integral(&mm->flow, COUNTER_EPOCH) - lost;
}

/* ---- point classification by name and kind ---- */

static bool tok_is(const char *tok, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(tok, word, n) == 0;
}

struct pclass {
    enum qty q;
    int phase;   /* 0 total, 1..3 phase or line */
};

static struct pclass classify(const struct cfg_point *p, enum utility u)
{
    struct pclass c = {Q_UNKNOWN, 0};
    const char *name = p->name ? p->name : "";
    const char *unit = strrchr(name, '_');
    unit = unit ? unit + 1 : name;
    size_t ulen = strlen(unit);
    bool exp = false, line = false, neutral = false, pf = false;
    /* scan the tokens before the unit */
    for (const char *s = name; *s && s < unit;) {
        const char *e = strchr(s, '_');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (tok_is(s, n, "a") || tok_is(s, n, "l1"))
            c.phase = 1;
        else if (tok_is(s, n, "b") || tok_is(s, n, "l2"))
            c.phase = 2;
        else if (tok_is(s, n, "c") || tok_is(s, n, "l3"))
            c.phase = 3;
        else if (tok_is(s, n, "ab") || tok_is(s, n, "l12"))
            c.phase = 1, line = true;
        else if (tok_is(s, n, "bc") || tok_is(s, n, "l23"))
            c.phase = 2, line = true;
        else if (tok_is(s, n, "ca") || tok_is(s, n, "l31"))
            c.phase = 3, line = true;
        else if (tok_is(s, n, "ll"))
            line = true;
        else if (tok_is(s, n, "n"))
            neutral = true;
        else if (tok_is(s, n, "export") || tok_is(s, n, "exp") || tok_is(s, n, "reverse"))
            exp = true;
        else if (tok_is(s, n, "pf") || tok_is(s, n, "cosphi"))
            pf = true;
        s += n + (e ? 1 : 0);
    }
    if (tok_is(unit, ulen, "pf") || tok_is(unit, ulen, "cosphi") || strstr(name, "power_factor"))
        pf = true;
    bool elec = u == UTIL_ELECTRICITY;

    if (p->type == PT_BOOL || p->fc == 1 || p->fc == 2) {
        c.q = Q_BOOL;
    } else if (p->kind == KIND_COUNTER) {
        if (elec && tok_is(unit, ulen, "kwh"))
            c.q = exp ? Q_E_EXP : Q_E_IMP;
        else if (elec && tok_is(unit, ulen, "kvarh"))
            c.q = exp ? Q_EQ_EXP : Q_EQ_IMP;
        else if (elec && tok_is(unit, ulen, "kvah"))
            c.q = Q_ES;
        else if (!elec && tok_is(unit, ulen, "nm3"))
            c.q = Q_VOL;
        else if (!elec && tok_is(unit, ulen, "m3"))
            c.q = u == UTIL_GAS ? Q_VOL_LINE : Q_VOL;
    } else if (elec && pf) {
        c.q = Q_PF;
    } else if (elec && tok_is(unit, ulen, "kw")) {
        c.q = Q_P;
    } else if (elec && tok_is(unit, ulen, "kvar")) {
        c.q = Q_Q;
    } else if (elec && tok_is(unit, ulen, "kva")) {
        c.q = Q_S;
    } else if (elec && tok_is(unit, ulen, "v")) {
        c.q = line ? Q_V_LL : Q_V_PH;
    } else if (elec && tok_is(unit, ulen, "a")) {
        c.q = neutral ? Q_I_N : Q_I;
    } else if (elec && tok_is(unit, ulen, "hz")) {
        c.q = Q_HZ;
    } else if (!elec && (tok_is(unit, ulen, "m3h") || tok_is(unit, ulen, "nm3h"))) {
        c.q = Q_FLOW;
    } else if ((u == UTIL_WATER || u == UTIL_GAS) && tok_is(unit, ulen, "kpa")) {
        c.q = Q_KPA;
    } else if (tok_is(unit, ulen, "c")) {
        c.q = Q_TEMP;
    }
    return c;
}

/* 1 + a small fixed imbalance of one phase of one meter. */
static double phase_factor(const struct model *mm, int phase, double spread)
{
    return phase ? 1.0 + urange(hsalt(mm->key, 100 + (uint64_t)phase), -spread, spread) : 1.0;
}

/* Terminal phase voltage (V at the meter's inputs). */
static double terminal_vph(const struct model *mm, int phase, int64_t t, uint64_t pkey)
{
    double nominal = mm->hv ? 100.0 / sqrt(3.0) : 230.0;
    /* the ring sags a little when the enterprise draws its peak */
    double sag = 1.0 - 0.02 * (flow_load(&mm->flow, t) - 0.5);
    return nominal * sag * phase_factor(mm, phase, 0.004) * (1.0 + 0.002 * noise(pkey, t));
}

/* The value as the gateway decodes it, before counter wrap-around. */
static double point_value(const struct model *mm, const struct cfg_point *p, bool billing,
                          int64_t t, const struct sim_meter_state *st)
{
    uint64_t pkey = hkey(mm->key, p->name);
    struct pclass c = classify(p, mm->util);
    bool off = st && st->supply_off;
    double pt = mm->pt, ct = mm->ct;
    double pf_m = 1.0 / sqrt(1.0 + mm->tanphi * mm->tanphi);
    double consumed = model_consumed(mm, t, st);
    double rate = off ? 0.0 : flow_rate(&mm->flow, t);
    /* terminal: what the meter's inputs see; power-like quantities are the
     * primary value / (PT x CT), voltages / PT, currents / CT */
    double term = 0;

    switch (c.q) {
    case Q_P:
        term = rate / 3.0 * (c.phase ? phase_factor(mm, c.phase, 0.04) : 3.0) / (pt * ct);
        break;
    case Q_Q:
        term = rate * mm->tanphi / 3.0 * (c.phase ? phase_factor(mm, c.phase, 0.04) : 3.0) /
               (pt * ct);
        break;
    case Q_S:
        term = rate / pf_m / 3.0 * (c.phase ? phase_factor(mm, c.phase, 0.04) : 3.0) / (pt * ct);
        break;
    case Q_E_IMP:
        term = (mm->base_reading + consumed) / (pt * ct);
        break;
    case Q_E_EXP:
        /* one enterprise in five has a little rooftop PV that once exported */
        term = (hsalt(mm->key, 20) % 5 == 0 ? urange(hsalt(mm->key, 21), 10, 2000) : 0.0) /
               (pt * ct);
        break;
    case Q_EQ_IMP:
        term = (mm->base_reading * urange(hsalt(mm->key, 22), 0.9, 1.1) + consumed) *
               mm->tanphi / (pt * ct);
        break;
    case Q_EQ_EXP:
        term = urange(hsalt(mm->key, 23), 0, 500) / (pt * ct);
        break;
    case Q_ES:
        term = (mm->base_reading + consumed) / pf_m / (pt * ct);
        break;
    case Q_V_PH:
        term = off ? 0.0 : terminal_vph(mm, c.phase, t, pkey);
        break;
    case Q_V_LL:
        term = off ? 0.0 : sqrt(3.0) * terminal_vph(mm, c.phase, t, pkey);
        break;
    case Q_I:
    case Q_I_N: {
        /* I = P_phase / (U_phase x pf), at primary side, then through the CT */
        int ph = c.phase ? c.phase : 1;
        double vprim = terminal_vph(mm, ph, t, pkey) * pt;
        double iprim = rate * 1000.0 / 3.0 * phase_factor(mm, ph, 0.04) / (vprim * pf_m);
        if (c.q == Q_I_N)
            iprim *= 0.05 * (1.0 + 0.2 * noise(pkey, t));
        term = off ? 0.0 : iprim / ct;
        break;
    }
    case Q_PF:
        term = off ? 0.0
                   : fmin(0.98, fmax(0.85, pf_m + (c.phase ? urange(hsalt(mm->key, 30 +
                                                                          (uint64_t)c.phase),
                                                                    -0.01, 0.01)
                                                           : 0.0) +
                                               0.002 * noise(pkey, t)));
        break;
    case Q_HZ:
        term = off ? 0.0
                   : 50.0 + 0.03 * sin(ripple_angle(t, 300, urange(hsalt(mm->key, 31), 0, 6.28))) +
                         0.015 * noise(pkey, t);
        break;
    case Q_FLOW:
        term = rate;
        break;
    case Q_VOL:
        term = mm->base_reading + consumed;
        break;
    case Q_VOL_LINE:
        term = (mm->base_reading + consumed) * GAS_LINE_FACTOR;
        break;
    case Q_KPA:
        if (off)
            term = 0.0;
        else if (mm->util == UTIL_WATER)
            term = 305.0 - 20.0 * flow_load(&mm->flow, t) + 3.0 * noise(pkey, t);
        else
            term = 205.0 - 10.0 * flow_load(&mm->flow, t) + 2.0 * noise(pkey, t);
        break;
    case Q_TEMP:
        /* warmest at 15:00 local */
        term = 20.0 + 5.0 * sin(2 * M_PI * (local_hour(t) - 9.0) / 24.0) + 0.1 * noise(pkey, t);
        break;
    case Q_BOOL: {
        /* 1 = normal state, unless the name says it flags trouble: then it
         * rises with the outage (a gas valve shuts, a breaker opens) */
        const char *n = p->name ? p->name : "";
        bool trouble = strstr(n, "alarm") || strstr(n, "fault") || strstr(n, "trip") ||
                       strstr(n, "lost") || strstr(n, "fail") || strstr(n, "off") ||
                       (strstr(n, "valve") && strstr(n, "clos")) ||
                       (!strstr(n, "valve") && strstr(n, "open"));
        term = (trouble == off) ? 1.0 : 0.0;
        break;
    }
    case Q_UNKNOWN:
    default:
        if (p->kind == KIND_COUNTER)
            term = urange(hsalt(pkey, 40), 1e3, 1e5) + consumed * urange(hsalt(pkey, 41), 0.05, 1);
        else
            term = 100.0 + 5.0 * noise(pkey, t);
        break;
    }
    if (p->kind == KIND_COUNTER) {
        if (billing && st)
            term += st->counter_offset / point_ratio_factor(p, pt, ct);
        if (term < 0)
            term = 0; /* before the meter's history began */
    }
    if (c.q == Q_BOOL)
        return term;
    return term * point_ratio_factor(p, pt, ct);
}

/* Raw modulus of an integer counter register, 0 for float and 64-bit types. */
static double raw_modulus(enum point_type t)
{
    switch (t) {
    case PT_UINT16: return 65536.0;
    case PT_INT16: return 32768.0;
    case PT_UINT32: return 4294967296.0;
    case PT_INT32: return 2147483648.0;
    default: return 0;
    }
}

struct pval {
    double value;   /* as decoded, exact */
    double raw;     /* register value before type conversion */
};

/* The point's value and raw register value at t, counters wrapped around
 * their register's range as a real meter's would. */
static struct pval point_eval(const struct model *mm, const struct cfg_profile *prof, size_t pi,
                              int64_t t, const struct sim_meter_state *st)
{
    const struct cfg_point *p = &prof->points[pi];
    double f = point_ratio_factor(p, mm->pt, mm->ct);
    struct pval r;
    r.value = point_value(mm, p, (int)pi == profile_billing_point(prof), t, st);
    if (p->type == PT_BOOL || p->fc == 1 || p->fc == 2) {
        r.raw = r.value != 0 ? 1.0 : 0.0;
        return r;
    }
    r.raw = encode_unscale(p, mm->pt, mm->ct, r.value);
    /* A DL/T 645 / CJ/T 188 counter wraps at its BCD digits, as the billing
     * engine expects (bill_wrap_modulus). */
    double mod = p->data_len <= 0 ? raw_modulus(p->type)
                 : p->is_signed   ? 0
                 : p->fmt.bytes   ? bcd_fmt_modulus(&p->fmt)
                                  : 1e6;
    if (p->kind == KIND_COUNTER && mod > 0 && !(r.raw < mod - 0.5)) {
        double k = floor((r.raw + 0.5) / mod);
        r.raw -= k * mod;
        r.value -= k * mod * p->scale * f;
    }
    return r;
}

static const struct cfg_profile *meter_profile(const struct config *cfg,
                                               const struct cfg_meter *m)
{
    return &cfg->profiles[m->profile];
}

double sim_value(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, size_t pi,
                 int64_t t, const struct sim_meter_state *st)
{
    struct model mm;
    model_init(&mm, seed, cfg, m);
    return point_eval(&mm, meter_profile(cfg, m), pi, t, st).value;
}

void sim_fill_registers(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                        int64_t t, const struct sim_meter_state *st, uint16_t *regs4, uint16_t *regs3,
                        uint8_t *bits1, uint8_t *bits2, size_t nregs, size_t nbits)
{
    struct model mm;
    const struct cfg_profile *prof = meter_profile(cfg, m);
    model_init(&mm, seed, cfg, m);
    for (size_t pi = 0; pi < prof->n_points; pi++) {
        const struct cfg_point *p = &prof->points[pi];
        if (p->address < 0)
            continue;
        size_t addr = (size_t)p->address;
        struct pval v = point_eval(&mm, prof, pi, t, st);
        if (p->fc == 1 || p->fc == 2) {
            uint8_t *bits = p->fc == 1 ? bits1 : bits2;
            if (bits && addr < nbits)
                bits[addr] = v.raw != 0;
            continue;
        }
        uint16_t *regs = p->fc == 4 ? regs4 : regs3;
        size_t width = (size_t)point_type_regs(p->type);
        if (!regs || addr + width > nregs)
            continue;
        double frac_raw;
        double whole = encode_frac_split(p, v.raw, &frac_raw);
        encode_raw(p->type, p->order, whole, regs + addr);
        if (p->has_frac && (size_t)p->frac_address + (size_t)point_type_regs(p->frac_type) <= nregs)
            encode_raw(p->frac_type, p->order, frac_raw, regs + p->frac_address);
    }
}

/* The data bytes of a DL/T 645 / CJ/T 188 point for raw value 'raw'; a
 * value beyond the format (a gauge out of range) is written as its limit. */
static void item_encode(const struct cfg_point *p, double raw, uint8_t *out)
{
    if (!p->fmt.bytes) {
        if (cjt188_encode_volume(raw, out) < 0)
            cjt188_encode_volume(raw < 0 ? 0 : 999999.99, out);
        return;
    }
    if (bcd_encode_num(raw, &p->fmt, p->is_signed, out) < 0) {
        double lim = (p->is_signed ? 0.8 : 1.0) * bcd_fmt_modulus(&p->fmt) -
                     pow(10.0, -p->fmt.decimals);
        bcd_encode_num(raw < 0 && p->is_signed ? -lim : raw < 0 ? 0 : lim, &p->fmt,
                       p->is_signed, out);
    }
}

int sim_item_bytes(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, size_t pi,
                   int64_t t, const struct sim_meter_state *st, uint8_t *out)
{
    struct model mm;
    const struct cfg_profile *prof = meter_profile(cfg, m);
    const struct cfg_point *p = &prof->points[pi];
    if (p->data_len <= 0)
        return -EINVAL;
    model_init(&mm, seed, cfg, m);
    item_encode(p, point_eval(&mm, prof, pi, t, st).raw, out);
    return p->data_len;
}

double sim_expected_decoded(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                            size_t pi, int64_t t, const struct sim_meter_state *st)
{
    struct model mm;
    const struct cfg_profile *prof = meter_profile(cfg, m);
    const struct cfg_point *p = &prof->points[pi];
    /* Room for an integer + fraction point: both parts within 125 registers
     * (config.c), so the point sits at 128 and its fraction within +-125. */
    uint16_t buf[256] = {0};
    uint16_t *regs = buf + 128;
    double v;
    model_init(&mm, seed, cfg, m);
    struct pval pv = point_eval(&mm, prof, pi, t, st);
    if (p->data_len > 0) {
        uint8_t b[BCD_MAX_BYTES + 1];
        item_encode(p, pv.raw, b);
        for (int i = 0; i < p->data_len; i++)
            regs[i] = b[i];
    } else if (p->type == PT_BOOL || p->fc == 1 || p->fc == 2) {
        regs[0] = pv.raw != 0;
    } else {
        double frac_raw;
        double whole = encode_frac_split(p, pv.raw, &frac_raw);
        encode_raw(p->type, p->order, whole, regs);
        if (p->has_frac)
            encode_raw(p->frac_type, p->order, frac_raw, regs + (p->frac_address - p->address));
    }
    if (decode_point(p, mm.pt, mm.ct, regs, &v) < 0)
        return NAN;
    return v;
}

void sim_set_supply(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                    struct sim_meter_state *st, bool off, int64_t t)
{
    if (off == st->supply_off)
        return;
    if (off) {
        st->supply_off = true;
        st->off_since = t;
        return;
    }
    if (st->off_since > 0 && st->off_since < t) {
        struct model mm;
        model_init(&mm, seed, cfg, m);
        st->lost += flow_integral(&mm.flow, t) - flow_integral(&mm.flow, st->off_since);
    }
    st->supply_off = false;
    st->off_since = 0;
}

double sim_main_rate(uint64_t seed, const struct config *cfg, const struct cfg_meter *m, int64_t t)
{
    struct model mm;
    model_init(&mm, seed, cfg, m);
    return flow_rate(&mm.flow, t);
}

double sim_main_integral(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                         int64_t t)
{
    struct model mm;
    model_init(&mm, seed, cfg, m);
    return flow_integral(&mm.flow, t) - flow_integral(&mm.flow, COUNTER_EPOCH);
}

size_t sim_profile_nregs(const struct cfg_profile *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *pt = &p->points[i];
        if ((pt->fc == 3 || pt->fc == 4) && pt->address >= 0) {
            size_t end = (size_t)pt->address + (size_t)point_type_regs(pt->type);
            if (end > n)
                n = end;
            if (pt->has_frac) {
                end = (size_t)pt->frac_address + (size_t)point_type_regs(pt->frac_type);
                if (end > n)
                    n = end;
            }
        }
    }
    return n;
}

size_t sim_profile_nbits(const struct cfg_profile *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *pt = &p->points[i];
        if ((pt->fc == 1 || pt->fc == 2) && pt->address >= 0 && (size_t)pt->address + 1 > n)
            n = (size_t)pt->address + 1;
    }
    return n;
}
