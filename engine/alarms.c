/*
 * alarms.c - the outage-detection engine of alarms.h. Each meter carries its
 * rules (the profile's alarms plus a derived phase_loss) and its
 * communication state; the engine holds back a meter's comm_lost until it
 * knows whether the meter alone or its whole bus went silent, so a dead bus
 * gives one bus_down instead of a comm_lost per meter. docs/ALARMS.md tells
 * the rules in prose.
 */
#include "engine/alarms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/util.h"
#include "storage/alarmlog.h"

/* Poll start times jitter (a bus busy with another meter's timeout, the
 * scheduler): `for` is met when the samples are this much short of it, a
 * quarter of the meter's interval at most, so 5 s at 1 s polls raises at the
 * sixth sample below the threshold even if the first one started late. */
#define FOR_JITTER_MAX_MS 250

/* Name of the alarm that means "this meter's supply failed". */
#define SUPPLY_ALARM "supply_lost"
#define PHASE_ALARM "phase_loss"

enum zone { ZONE_UNKNOWN, ZONE_ALARM, ZONE_BAND, ZONE_CLEAR };
enum rule_kind { RULE_THRESHOLD, RULE_PHASE_LOSS };

struct rule {
    enum rule_kind kind;
    const char *name;
    int point;             /* threshold rule on one point, or -1 */
    int phases[3];         /* voltage_a/b/c_v, when the rule looks at all three */
    bool on_phases;
    bool has_below, has_above;
    double below, above, hyst;
    int64_t for_ms;
    const struct cfg_alarm *sched; /* the schedule (hours) to respect, or NULL */
    struct cfg_alarm eff;          /* the rule as it applies to the meter */
    bool raised;
    bool pending;          /* in the alarm zone since cond_since */
    int64_t cond_since;
    double threshold;      /* the one crossed, for the events */
    bool shown;            /* active in the last view handed out */
};

/* How a lost meter's comm_lost was (or will be) told. */
enum report { REP_NONE, REP_PENDING, REP_REPORTED, REP_COVERED };

struct meter {
    const struct cfg_meter *cfg;
    int64_t jitter_ms;     /* tolerance on `for`, see FOR_JITTER_MAX_MS */
    struct rule *rules;
    size_t n_rules;
    int supply_rule;       /* index of supply_lost in rules, or -1 */
    int fails;
    int64_t first_fail_ts;
    int64_t last_ok_ts;    /* last good reading, when had_ok */
    bool had_ok;
    bool lost;
    enum report report;
    uint64_t mark;         /* bus ok_count when the report was held back */
    enum meter_state state;
    int64_t state_since;
    bool changed;
    const char **active;
    size_t n_active;
};

struct alarms {
    struct meter *m;
    size_t n;
    int fails_to_lost;
    alarm_sink_fn sink;
    void *ud;
    size_t n_changed;      /* meters whose 'changed' is set */
    uint64_t ok_count;     /* successful polls on the bus so far */
    bool bus_down;
    int64_t bus_since;
};

const char *meter_state_name(enum meter_state s)
{
    switch (s) {
    case METER_COMM_LOST:
        return "comm_lost";
    case METER_SUPPLY_LOST:
        return "supply_lost";
    case METER_OK:
    default:
        return "ok";
    }
}

const char *alarm_event_name(enum alarm_event_type t)
{
    /* the alarm history's triggers act on these names (storage/alarmlog.h) */
    static const char *const names[] = {ALARMLOG_EV_ALARM_RAISED, ALARMLOG_EV_ALARM_CLEARED,
                                        ALARMLOG_EV_COMM_LOST,    ALARMLOG_EV_COMM_RESTORED,
                                        ALARMLOG_EV_BUS_DOWN,     ALARMLOG_EV_BUS_RESTORED};
    return (size_t)t < ARRAY_SIZE(names) ? names[t] : "unknown";
}

/* The three phase voltages of an electricity profile, or false. */
static bool find_phases(const struct cfg_profile *prof, int ret[3])
{
    static const char *const names[] = {"voltage_a_v", "voltage_b_v", "voltage_c_v"};
    if (prof->utility != UTIL_ELECTRICITY)
        return false;
    for (int k = 0; k < 3; k++)
        if ((ret[k] = profile_find_point(prof, names[k])) < 0)
            return false;
    return true;
}

static void meter_init(struct meter *m, const struct config *cfg, const struct cfg_meter *cm,
                       int64_t now)
{
    const struct cfg_profile *prof = &cfg->profiles[cm->profile];
    int phases[3];
    bool three = find_phases(prof, phases);
    const struct rule *supply = NULL;
    bool has_phase_alarm = false;

    m->cfg = cm;
    m->jitter_ms = (int64_t)cm->interval * 1000 / 4;
    if (m->jitter_ms > FOR_JITTER_MAX_MS)
        m->jitter_ms = FOR_JITTER_MAX_MS;
    m->rules = xcalloc(prof->n_alarms + 1, sizeof(*m->rules));
    m->active = xcalloc(prof->n_alarms + 1, sizeof(*m->active));
    m->supply_rule = -1;
    for (size_t k = 0; k < prof->n_alarms; k++) {
        struct rule *r = &m->rules[m->n_rules];
        if (!config_meter_alarm(cfg, cm, k, &r->eff))
            continue; /* the meter turned it off */
        const struct cfg_alarm *ca = &r->eff;
        if (ca->n_hours)
            r->sched = ca;
        /* A threshold on a point with a ratio is a secondary value (the
         * meter's terminals, as its manual states them): scaled like the
         * point, so one profile serves any PT or CT. */
        double f = point_ratio_factor(&prof->points[ca->point], cm->pt_ratio, cm->ct_ratio);
        r->kind = RULE_THRESHOLD;
        r->name = ca->name;
        r->point = ca->point;
        r->has_below = ca->has_below;
        r->has_above = ca->has_above;
        r->below = ca->below * f;
        r->above = ca->above * f;
        r->hyst = ca->hysteresis * f;
        r->for_ms = (int64_t)llround(ca->for_s * 1000.0);
        if (strcmp(ca->name, PHASE_ALARM) == 0)
            has_phase_alarm = true;
        if (strcmp(ca->name, SUPPLY_ALARM) == 0) {
            m->supply_rule = (int)m->n_rules;
            /* A profile's supply_lost watches one phase; on a three-phase
             * meter it is evaluated on the highest phase voltage, so that it
             * means "all phases dead" and one dead phase is phase_loss. */
            if (three && ca->has_below && !ca->has_above &&
                (ca->point == phases[0] || ca->point == phases[1] || ca->point == phases[2])) {
                r->on_phases = true;
                memcpy(r->phases, phases, sizeof(phases));
                supply = r;
            }
        }
        m->n_rules++;
    }
    /* Derived phase_loss: some but not all phases below the supply_lost
     * threshold, with its hysteresis and delay. */
    if (supply && !has_phase_alarm) {
        struct rule *r = &m->rules[m->n_rules++];
        r->kind = RULE_PHASE_LOSS;
        r->name = PHASE_ALARM;
        r->point = -1;
        r->on_phases = true;
        memcpy(r->phases, phases, sizeof(phases));
        r->has_below = true;
        r->below = supply->below;
        r->hyst = supply->hyst;
        r->for_ms = supply->for_ms;
        r->sched = supply->sched;
    }
    m->state = METER_OK;
    m->state_since = now;
    m->changed = true;
}

int alarms_new(const struct config *cfg, const struct cfg_meter *const *meters, size_t n,
               int fails_to_lost, alarm_sink_fn sink, void *ud, int64_t now,
               struct alarms **ret)
{
    struct alarms *a = xcalloc(1, sizeof(*a));
    a->m = xcalloc(n ? n : 1, sizeof(*a->m));
    a->n = n;
    a->fails_to_lost = fails_to_lost > 0 ? fails_to_lost : 1;
    a->sink = sink;
    a->ud = ud;
    for (size_t i = 0; i < n; i++)
        meter_init(&a->m[i], cfg, meters[i], now);
    a->n_changed = n;   /* meter_init marks each one */
    *ret = a;
    return 0;
}

void alarms_free(struct alarms *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->m[i].rules);
        free(a->m[i].active);
    }
    free(a->m);
    free(a);
}

size_t alarms_rule_count(const struct alarms *a, size_t i)
{
    return i < a->n ? a->m[i].n_rules : 0;
}

static void emit(struct alarms *a, enum alarm_event_type type, int meter, int64_t ts,
                 int64_t since)
{
    struct alarm_event ev = {.type = type, .ts = ts, .meter = meter, .value = NAN,
                             .threshold = NAN, .since = since};
    if (meter >= 0)
        ev.failures = a->m[meter].fails;
    else
        ev.n_meters = a->n;
    if (a->sink)
        a->sink(a->ud, &ev);
}

static void emit_alarm(struct alarms *a, enum alarm_event_type type, size_t i,
                       const struct rule *r, int64_t ts, double value)
{
    struct alarm_event ev = {.type = type, .ts = ts, .meter = (int)i, .alarm = r->name,
                             .value = value, .threshold = r->threshold,
                             .since = r->cond_since};
    if (a->sink)
        a->sink(a->ud, &ev);
}

static void set_changed(struct alarms *a, struct meter *m)
{
    if (!m->changed)
        a->n_changed++;
    m->changed = true;
}

/* Recomputes meter i's view; sets 'changed' when the state topic would differ. */
static void refresh(struct alarms *a, size_t i, int64_t ts)
{
    struct meter *m = &a->m[i];
    enum meter_state s = METER_OK;
    int64_t since;
    if (m->lost) {
        s = METER_COMM_LOST;
        since = m->first_fail_ts;
    } else if (m->supply_rule >= 0 && m->rules[m->supply_rule].raised) {
        s = METER_SUPPLY_LOST;
        since = m->rules[m->supply_rule].cond_since;
    } else {
        since = m->state == METER_OK ? m->state_since : ts;
    }
    if (s != m->state || since != m->state_since)
        set_changed(a, m);
    m->state = s;
    m->state_since = since;
    m->n_active = 0;
    for (size_t k = 0; k < m->n_rules; k++) {
        struct rule *r = &m->rules[k];
        if (r->raised != r->shown)
            set_changed(a, m);
        r->shown = r->raised;
        if (r->raised)
            m->active[m->n_active++] = r->name;
    }
}

static double value_of(const double *values, const bool *valid, int p, bool *ok)
{
    if (p < 0 || (valid && !valid[p]) || !isfinite(values[p])) {
        *ok = false;
        return NAN;
    }
    *ok = true;
    return values[p];
}

/* Where the rule's input stands now; *ret_value is what events report. */
static enum zone rule_zone(struct rule *r, const double *values, const bool *valid,
                           double *ret_value)
{
    bool ok;
    if (r->kind == RULE_PHASE_LOSS) {
        int dead = 0, live = 0;
        double lo = INFINITY;
        for (int k = 0; k < 3; k++) {
            double v = value_of(values, valid, r->phases[k], &ok);
            if (!ok)
                return ZONE_UNKNOWN;
            lo = fmin(lo, v);
            dead += v < r->below;
            live += v >= r->below + r->hyst;
        }
        *ret_value = lo;
        r->threshold = r->below;
        if (dead >= 1 && dead <= 2)
            return ZONE_ALARM;
        /* All three dead is a supply outage, not a phase loss. */
        return dead == 3 || live == 3 ? ZONE_CLEAR : ZONE_BAND;
    }

    double v;
    if (r->on_phases) {
        /* The highest phase that answered: all must be low for an outage. */
        v = -INFINITY;
        int seen = 0;
        for (int k = 0; k < 3; k++) {
            double pv = value_of(values, valid, r->phases[k], &ok);
            if (ok) {
                v = fmax(v, pv);
                seen++;
            }
        }
        if (!seen)
            return ZONE_UNKNOWN;
    } else {
        v = value_of(values, valid, r->point, &ok);
        if (!ok)
            return ZONE_UNKNOWN;
    }
    *ret_value = v;
    if (r->has_below && v < r->below) {
        r->threshold = r->below;
        return ZONE_ALARM;
    }
    if (r->has_above && v > r->above) {
        r->threshold = r->above;
        return ZONE_ALARM;
    }
    if ((!r->has_below || v >= r->below + r->hyst) && (!r->has_above || v <= r->above - r->hyst))
        return ZONE_CLEAR;
    return ZONE_BAND;
}

/* Minute of the day of ts (Unix ms) in the process's time zone (the
 * gateway's: the CLI sets TZ from the config). */
static int local_minute(int64_t ts)
{
    time_t t = (time_t)floor_div(ts, 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return tm.tm_hour * 60 + tm.tm_min;
}

static void rule_step(struct alarms *a, size_t i, struct rule *r, int64_t ts,
                      const double *values, const bool *valid)
{
    double v = NAN;
    double prev_threshold = r->threshold;
    enum zone z = rule_zone(r, values, valid, &v);
    if (z == ZONE_UNKNOWN)
        return;
    if (z == ZONE_ALARM && r->sched && !alarm_in_schedule(r->sched, local_minute(ts))) {
        /* Outside the schedule (a plant idle at night) the condition does
         * not count: nothing raises and the window starts over; a raised
         * alarm stays until the value clears. */
        if (!r->raised)
            r->pending = false;
        else
            r->threshold = prev_threshold;
        return;
    }
    if (r->raised) {
        /* Report the threshold that raised it, not the other side's. */
        r->threshold = prev_threshold;
        if (z == ZONE_CLEAR) {
            r->raised = false;
            emit_alarm(a, AEV_ALARM_CLEARED, i, r, ts, v);
            r->pending = false;
        }
        return;
    }
    if (z != ZONE_ALARM) {
        /* Out of the alarm zone, even into the band: the delay restarts. */
        r->pending = false;
        return;
    }
    if (!r->pending) {
        r->pending = true;
        r->cond_since = ts;
    }
    if (ts - r->cond_since >= r->for_ms - a->m[i].jitter_ms) {
        r->raised = true;
        emit_alarm(a, AEV_ALARM_RAISED, i, r, ts, v);
    }
}

static bool all_lost(const struct alarms *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (!a->m[i].lost)
            return false;
    return true;
}

void alarms_poll_ok(struct alarms *a, size_t i, int64_t ts, const double *values,
                    const bool *valid)
{
    if (i >= a->n)
        return;
    struct meter *m = &a->m[i];
    a->ok_count++;
    if (a->bus_down) {
        a->bus_down = false;
        emit(a, AEV_BUS_RESTORED, -1, ts, a->bus_since);
    }
    if (m->lost) {
        switch (m->report) {
        case REP_PENDING:
            /* Lost long enough to count, back before we knew whether the
             * bus was to blame: tell both, in order. */
            emit(a, AEV_COMM_LOST, (int)i, ts, m->first_fail_ts);
            /* fall through */
        case REP_REPORTED:
            emit(a, AEV_COMM_RESTORED, (int)i, ts, m->first_fail_ts);
            break;
        case REP_COVERED: /* bus_restored said it */
        case REP_NONE:
            break;
        }
        m->lost = false;
        m->report = REP_NONE;
    }
    m->fails = 0;
    m->last_ok_ts = ts;
    m->had_ok = true;
    for (size_t k = 0; k < m->n_rules; k++)
        rule_step(a, i, &m->rules[k], ts, values, valid);
    refresh(a, i, ts);
}

bool alarms_comm_lost_due(const struct cfg_meter *m, int fails, int64_t since_ok_ms,
                          int fails_to_lost)
{
    if (m->comm_timeout > 0)
        return fails >= 2 && since_ok_ms >= (int64_t)m->comm_timeout * 1000;
    return fails >= fails_to_lost;
}

void alarms_poll_failed(struct alarms *a, size_t i, int64_t ts)
{
    if (i >= a->n)
        return;
    struct meter *m = &a->m[i];
    if (m->fails++ == 0)
        m->first_fail_ts = ts;
    int64_t since_ok = ts - (m->had_ok ? m->last_ok_ts : m->first_fail_ts);
    if (!m->lost && alarms_comm_lost_due(m->cfg, m->fails, since_ok, a->fails_to_lost)) {
        m->lost = true;
        /* Values are unknown now: a delay in progress starts over. */
        for (size_t k = 0; k < m->n_rules; k++)
            m->rules[k].pending = m->rules[k].raised;
        if (a->n < 2) {
            m->report = REP_REPORTED;
            emit(a, AEV_COMM_LOST, (int)i, ts, m->first_fail_ts);
        } else {
            /* Wait for the bus to show it is alive (another meter answers)
             * or dead (every meter lost). */
            m->report = REP_PENDING;
            m->mark = a->ok_count;
        }
        if (!a->bus_down && a->n >= 2 && all_lost(a)) {
            a->bus_down = true;
            /* The outage began with the first failure of the meters it
             * covers, not with a meter that was already down on its own. */
            a->bus_since = m->first_fail_ts;
            for (size_t k = 0; k < a->n; k++) {
                if (a->m[k].report == REP_PENDING) {
                    if (a->m[k].first_fail_ts < a->bus_since)
                        a->bus_since = a->m[k].first_fail_ts;
                    a->m[k].report = REP_COVERED;
                    a->m[k].mark = a->ok_count;
                }
            }
            emit(a, AEV_BUS_DOWN, -1, ts, a->bus_since);
        }
    } else if (m->lost && !a->bus_down &&
               (m->report == REP_PENDING || m->report == REP_COVERED) &&
               a->ok_count > m->mark) {
        /* Another meter answered since: this one is down on its own. */
        m->report = REP_REPORTED;
        emit(a, AEV_COMM_LOST, (int)i, ts, m->first_fail_ts);
    }
    refresh(a, i, ts);
}

void alarms_seed_alarm(struct alarms *a, size_t i, const char *alarm, int64_t since)
{
    if (i >= a->n || !alarm)
        return;
    struct meter *m = &a->m[i];
    for (size_t k = 0; k < m->n_rules; k++) {
        struct rule *r = &m->rules[k];
        if (strcmp(r->name, alarm) != 0)
            continue;
        r->raised = true;
        r->pending = true;
        r->cond_since = since;
        r->threshold = r->has_below ? r->below : r->above;
    }
    refresh(a, i, since);
}

void alarms_seed_comm_lost(struct alarms *a, size_t i, int64_t since)
{
    if (i >= a->n)
        return;
    struct meter *m = &a->m[i];
    m->lost = true;
    m->fails = a->fails_to_lost;
    m->first_fail_ts = since;
    m->report = REP_REPORTED;
    refresh(a, i, since);
}

void alarms_seed_bus_down(struct alarms *a, int64_t since)
{
    if (a->n < 2)
        return;
    a->bus_down = true;
    a->bus_since = since;
    for (size_t i = 0; i < a->n; i++) {
        struct meter *m = &a->m[i];
        if (m->lost)
            continue;
        m->lost = true;
        m->fails = a->fails_to_lost;
        m->first_fail_ts = since;
        m->report = REP_COVERED;
        m->mark = a->ok_count;
        refresh(a, i, since);
    }
}

void alarms_get_view(struct alarms *a, size_t i, struct alarms_view *ret)
{
    struct meter *m = &a->m[i];
    ret->state = m->state;
    ret->since = m->state_since;
    ret->alarms = m->active;
    ret->n_alarms = m->n_active;
}

bool alarms_take_changed(struct alarms *a, size_t i)
{
    if (i >= a->n)
        return false;
    bool c = a->m[i].changed;
    if (c)
        a->n_changed--;
    a->m[i].changed = false;
    return c;
}

bool alarms_any_changed(const struct alarms *a)
{
    return a->n_changed > 0;
}
