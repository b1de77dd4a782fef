/*
 * summary.c - the summary engine behind summary.h. Each meter's billing
 * counter deltas are spread over open intervals ("pending", oldest first,
 * the first starting at open_from); power gauge samples feed per-meter means
 * and the held coincident totals behind kw_max. The writer feeds it what it
 * commits and asks for the closed intervals inside the same transaction;
 * checkpoint/rollback keep it in step with a transaction that failed.
 */
#include "engine/summary.h"
#include "engine/billing.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/util.h"
#include "protocols/payload.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_HOUR 3600000.0
/* Summaries carry consumption, not raw readings: 12 significant digits
 * keep a kWh total exact to the Wh and hide binary fractions. */
#define SUMMARY_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

enum { ROLE_BILLING = 1, ROLE_POWER = 2 };

struct spoint {
    uint32_t id;
    uint32_t meter;
    int role;
};

/* Per-meter facts from the config. */
struct smeter {
    size_t ent;
    enum utility util;
    int64_t interval_ms;
    double wrap;      /* of the dial reading */
    double mult;      /* pt x ct of the config: dial units to billing units */
    double max_rate;
    struct bill_res res; /* of the dial reading */
    bool has_billing;
    bool has_power_pt;
    uint32_t billing_id;
    const char *ent_id, *meter_id, *point; /* for counter_reset events (copies) */
};

/* Per-meter state that a failed transaction rolls back. */
struct mstate {
    bool has_prev;
    int64_t prev_ts;
    double prev_v;
    bool has_power;
    double power;     /* latest power_kw reading, held */
    int64_t last_ts;  /* latest billing reading, 0 = none */
};

/* One open interval: [from, from + iv). v holds, per meter, consumption,
 * power sum and power count; then per enterprise and the park the largest
 * held power total after a power reading inside the interval (NaN: none
 * yet), and the held total when the interval opened (NaN: nothing held),
 * which stands for the interval's level when no reading lands in it. */
struct pend {
    int64_t from;
    double *v;
};

struct sstate {
    struct mstate *ms;
    double *held;      /* [n_ents + 1]: sum of held power readings */
    size_t *held_n;    /* [n_ents + 1]: meters with a held reading */
    int64_t open_from;
    bool late_to_oldest;
    bool save_wanted;  /* the saved state is older than a load: save it with the next commit */
    bool clock_set;
    int64_t clock_offset; /* wall clock minus monotonic clock at the last summary_set_clock */
    struct pend *pend;
    size_t n_pend, cap_pend;
};

struct summary {
    int64_t iv_ms;
    int64_t grace_ms;
    size_t n_ents, n_meters, n_v;
    struct smeter *m;
    struct spoint *pts;
    size_t n_pts;
    char **ent_topic;
    char *park_topic;
    char *events_topic;
    struct sstate st, saved;
    bool saved_valid;
    /* counter_reset events found by summary_add, taken by summary_take_events */
    struct summary_msg *ev;
    size_t n_ev, cap_ev;
    bool replaying;    /* summary_load feeds stored readings: no events again */
};

static int spoint_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct spoint *)a)->id, y = ((const struct spoint *)b)->id;
    return x < y ? -1 : x > y;
}

static int find_power_point(const struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++)
        if (p->points[i].kind == KIND_GAUGE && strcmp(p->points[i].name, "power_kw") == 0)
            return (int)i;
    return -1;
}

int summary_new(const struct config *cfg, uint32_t *const *point_ids, const char *topic_base,
                struct summary **ret)
{
    if (!cfg || cfg->summary_interval < 1)
        return -EINVAL;
    struct summary *s = xcalloc(1, sizeof(*s));
    s->iv_ms = (int64_t)cfg->summary_interval * 1000;
    s->grace_ms = SUMMARY_GRACE_MS;
    s->n_ents = cfg->n_enterprises;
    s->n_meters = config_count_meters(cfg);
    s->n_v = 3 * s->n_meters + 2 * (s->n_ents + 1);
    s->m = xcalloc(s->n_meters ? s->n_meters : 1, sizeof(*s->m));
    s->pts = xcalloc(2 * s->n_meters + 1, sizeof(*s->pts));
    s->ent_topic = xcalloc(s->n_ents ? s->n_ents : 1, sizeof(char *));
    s->park_topic = topic_summary(topic_base, NULL);
    s->events_topic = topic_events(topic_base);

    size_t j = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        s->ent_topic[e] = topic_summary(topic_base, ent->id);
        for (size_t i = 0; i < ent->n_meters; i++, j++) {
            const struct cfg_meter *cm = &ent->meters[i];
            const struct cfg_profile *prof = &cfg->profiles[cm->profile];
            struct smeter *sm = &s->m[j];
            sm->ent = e;
            sm->util = cm->utility;
            sm->interval_ms = (int64_t)cm->interval * 1000;
            int bp = profile_billing_point(prof);
            int pp = cm->utility == UTIL_ELECTRICITY ? find_power_point(prof) : -1;
            if (bp >= 0 && point_ids && point_ids[j]) {
                sm->has_billing = true;
                sm->billing_id = point_ids[j][bp];
                /* stored and fed as the dial reading (daemon/poller.c) */
                sm->wrap = bill_wrap_modulus(&prof->points[bp], NULL);
                sm->mult = point_ratio_factor(&prof->points[bp], cm->pt_ratio, cm->ct_ratio);
                sm->max_rate = prof->points[bp].max_rate;
                sm->res = bill_res_of(&prof->points[bp], NULL);
                sm->ent_id = xstrdup(ent->id);
                sm->meter_id = xstrdup(cm->id);
                sm->point = xstrdup(prof->points[bp].name);
                s->pts[s->n_pts++] = (struct spoint){point_ids[j][bp], (uint32_t)j, ROLE_BILLING};
            }
            if (pp >= 0 && point_ids && point_ids[j]) {
                sm->has_power_pt = true;
                s->pts[s->n_pts++] = (struct spoint){point_ids[j][pp], (uint32_t)j, ROLE_POWER};
            }
        }
    }
    qsort(s->pts, s->n_pts, sizeof(*s->pts), spoint_cmp);

    s->st.ms = xcalloc(s->n_meters ? s->n_meters : 1, sizeof(*s->st.ms));
    s->st.held = xcalloc(s->n_ents + 1, sizeof(double));
    s->st.held_n = xcalloc(s->n_ents + 1, sizeof(size_t));
    *ret = s;
    return 0;
}

static void sstate_clear(struct sstate *st)
{
    for (size_t i = 0; i < st->n_pend; i++)
        free(st->pend[i].v);
    free(st->pend);
    free(st->ms);
    free(st->held);
    free(st->held_n);
    memset(st, 0, sizeof(*st));
}

void summary_free(struct summary *s)
{
    if (!s)
        return;
    sstate_clear(&s->st);
    sstate_clear(&s->saved);
    for (size_t e = 0; e < s->n_ents; e++)
        free(s->ent_topic[e]);
    free(s->ent_topic);
    free(s->park_topic);
    free(s->events_topic);
    summary_msgs_free(s->ev, s->n_ev);
    for (size_t j = 0; j < s->n_meters; j++) {
        free((char *)s->m[j].ent_id);
        free((char *)s->m[j].meter_id);
        free((char *)s->m[j].point);
    }
    free(s->pts);
    free(s->m);
    free(s);
}

/* Deep copy of src into dst (dst's old contents freed). */
static void sstate_copy(const struct summary *s, struct sstate *dst, const struct sstate *src)
{
    size_t nm = s->n_meters ? s->n_meters : 1;
    sstate_clear(dst);
    dst->ms = xmalloc(nm * sizeof(*dst->ms));
    memcpy(dst->ms, src->ms, nm * sizeof(*dst->ms));
    dst->held = xmalloc((s->n_ents + 1) * sizeof(double));
    memcpy(dst->held, src->held, (s->n_ents + 1) * sizeof(double));
    dst->held_n = xmalloc((s->n_ents + 1) * sizeof(size_t));
    memcpy(dst->held_n, src->held_n, (s->n_ents + 1) * sizeof(size_t));
    dst->open_from = src->open_from;
    dst->late_to_oldest = src->late_to_oldest;
    dst->save_wanted = src->save_wanted;
    dst->clock_set = src->clock_set;
    dst->clock_offset = src->clock_offset;
    dst->n_pend = dst->cap_pend = src->n_pend;
    dst->pend = src->n_pend ? xmalloc(src->n_pend * sizeof(*dst->pend)) : NULL;
    for (size_t i = 0; i < src->n_pend; i++) {
        dst->pend[i].from = src->pend[i].from;
        dst->pend[i].v = xmalloc(s->n_v * sizeof(double));
        memcpy(dst->pend[i].v, src->pend[i].v, s->n_v * sizeof(double));
    }
}

void summary_checkpoint(struct summary *s)
{
    sstate_copy(s, &s->saved, &s->st);
    s->saved_valid = true;
}

void summary_rollback(struct summary *s)
{
    /* Events of the failed batch come again when it is fed again. */
    summary_msgs_free(s->ev, s->n_ev);
    s->ev = NULL;
    s->n_ev = s->cap_ev = 0;
    if (!s->saved_valid)
        return;
    sstate_copy(s, &s->st, &s->saved);
}

void summary_set_grace_for_test(struct summary *s, int64_t ms)
{
    s->grace_ms = ms;
}

int64_t summary_next_from(const struct summary *s)
{
    return s->st.open_from;
}

static double *pv_cons(const struct summary *s, struct pend *p)
{
    UNUSED(s);
    return p->v;
}
static double *pv_psum(const struct summary *s, struct pend *p)
{
    return p->v + s->n_meters;
}
static double *pv_pcnt(const struct summary *s, struct pend *p)
{
    return p->v + 2 * s->n_meters;
}
static double *pv_kwmax(const struct summary *s, struct pend *p)
{
    return p->v + 3 * s->n_meters;
}
static double *pv_carry(const struct summary *s, struct pend *p)
{
    return p->v + 3 * s->n_meters + s->n_ents + 1;
}

/* The k-th open interval, created (and those before it) as needed. A new
 * interval remembers the held power totals: the level carried into it. */
static struct pend *pend_get(struct summary *s, size_t k)
{
    struct sstate *st = &s->st;
    if (k >= SUMMARY_MAX_CATCHUP)
        k = SUMMARY_MAX_CATCHUP - 1;
    while (st->n_pend <= k) {
        st->pend = xgrow(st->pend, &st->cap_pend, st->n_pend + 1, sizeof(*st->pend));
        struct pend *p = &st->pend[st->n_pend];
        p->from = st->open_from + (int64_t)st->n_pend * s->iv_ms;
        p->v = xcalloc(s->n_v, sizeof(double));
        double *kw = pv_kwmax(s, p), *carry = pv_carry(s, p);
        for (size_t e = 0; e <= s->n_ents; e++) {
            kw[e] = NAN;
            carry[e] = st->held_n[e] ? st->held[e] : NAN;
        }
        st->n_pend++;
    }
    return &st->pend[k];
}

/* The open interval holding ts; NULL for a time before open_from when late
 * shares are not taken (after a fresh start). */
static struct pend *pend_at(struct summary *s, int64_t ts)
{
    if (ts < s->st.open_from)
        return s->st.late_to_oldest ? pend_get(s, 0) : NULL;
    return pend_get(s, (size_t)((ts - s->st.open_from) / s->iv_ms));
}

/* billing.h's pair rules: the consumption between two readings, 0 for a
 * reset or an excluded spike. */
static double counter_delta(const struct smeter *sm, double prev, double cur, int64_t dt_ms,
                            bool *ret_reset)
{
    double d = 0;
    enum bill_pair k = bill_classify_pair(sm->wrap, sm->max_rate, &sm->res, prev, cur, dt_ms, &d);
    *ret_reset = k == BILL_PAIR_RESET;
    return k == BILL_PAIR_GOOD || k == BILL_PAIR_WRAP ? d : 0;
}

/* A billing counter dropped without wrapping: the meter was replaced or
 * reset. Billing starts a new segment; operators get a counter_reset event. */
static void note_reset(struct summary *s, const struct smeter *sm, int64_t ts, double before,
                       double after)
{
    if (s->replaying)
        return;   /* the run that stored these readings raised it */
    struct payload_field f[] = {
        {.key = "enterprise", .type = PF_STR, .s = sm->ent_id},
        {.key = "meter", .type = PF_STR, .s = sm->meter_id},
        {.key = "utility", .type = PF_STR, .s = utility_name(sm->util)},
        {.key = "point", .type = PF_STR, .s = sm->point},
        {.key = "before", .type = PF_REAL, .d = before},
        {.key = "after", .type = PF_REAL, .d = after},
    };
    s->ev = xgrow(s->ev, &s->cap_ev, s->n_ev + 1, sizeof(*s->ev));
    s->ev[s->n_ev].topic = xstrdup(s->events_topic);
    s->ev[s->n_ev].payload = payload_event(-1, ts, "counter_reset", f, ARRAY_SIZE(f));
    s->n_ev++;
    log_notice("meter %s/%s: %s dropped from %.3f to %.3f (meter replaced or reset); billing "
               "starts a new segment",
               sm->ent_id, sm->meter_id, sm->point, before, after);
}

/* Spreads d uniformly over [t0, t1) into the open intervals of meter j. */
static void spread(struct summary *s, size_t j, int64_t t0, int64_t t1, double d)
{
    double rate = d / (double)(t1 - t0);
    int64_t a = t0;

    if (a < s->st.open_from) {
        int64_t b = t1 < s->st.open_from ? t1 : s->st.open_from;
        if (s->st.late_to_oldest)
            pv_cons(s, pend_get(s, 0))[j] += (double)(b - a) * rate;
        a = b;
    }
    while (a < t1) {
        size_t k = (size_t)((a - s->st.open_from) / s->iv_ms);
        if (k >= SUMMARY_MAX_CATCHUP - 1) {
            /* A clock jump far ahead: the rest goes to the last interval
             * kept rather than growing without bound. */
            pv_cons(s, pend_get(s, k))[j] += (double)(t1 - a) * rate;
            break;
        }
        int64_t end = s->st.open_from + (int64_t)(k + 1) * s->iv_ms;
        int64_t b = t1 < end ? t1 : end;
        pv_cons(s, pend_get(s, k))[j] += (double)(b - a) * rate;
        a = b;
    }
}

static void add_billing(struct summary *s, size_t j, int64_t ts, double v)
{
    struct mstate *ms = &s->st.ms[j];
    if (ts > ms->last_ts)
        ms->last_ts = ts;
    if (!ms->has_prev) {
        ms->has_prev = true;
        ms->prev_ts = ts;
        ms->prev_v = v;
        return;
    }
    if (ts <= ms->prev_ts)
        return;   /* a duplicate or an older reading: already counted */
    bool reset;
    double d = counter_delta(&s->m[j], ms->prev_v, v, ts - ms->prev_ts, &reset);
    if (reset)
        note_reset(s, &s->m[j], ts, ms->prev_v, v);
    int64_t t0 = ms->prev_ts;
    ms->prev_ts = ts;
    ms->prev_v = v;
    if (d > 0)
        spread(s, j, t0, ts, d * s->m[j].mult);
}

static void add_power(struct summary *s, size_t j, int64_t ts, double v)
{
    struct sstate *st = &s->st;
    struct mstate *ms = &st->ms[j];
    size_t idx[2] = {s->m[j].ent, s->n_ents};

    for (int i = 0; i < 2; i++) {
        st->held[idx[i]] += v - (ms->has_power ? ms->power : 0);
        if (!ms->has_power)
            st->held_n[idx[i]]++;
    }
    ms->has_power = true;
    ms->power = v;

    struct pend *p = pend_at(s, ts);
    if (!p)
        return;
    pv_psum(s, p)[j] += v;
    pv_pcnt(s, p)[j] += 1;
    double *kw = pv_kwmax(s, p);
    for (int i = 0; i < 2; i++)
        if (isnan(kw[idx[i]]) || st->held[idx[i]] > kw[idx[i]])
            kw[idx[i]] = st->held[idx[i]];
}

void summary_add(struct summary *s, const struct sample *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct spoint key = {.id = samples[i].point};
        const struct spoint *pt = bsearch(&key, s->pts, s->n_pts, sizeof(*s->pts), spoint_cmp);
        if (!pt || !isfinite(samples[i].value))
            continue;
        if (pt->role == ROLE_BILLING)
            add_billing(s, pt->meter, samples[i].ts, samples[i].value);
        else
            add_power(s, pt->meter, samples[i].ts, samples[i].value);
    }
}

void summary_set_clock(struct summary *s, int64_t real_ms, int64_t mono_ms)
{
    struct sstate *st = &s->st;
    int64_t offset = real_ms - mono_ms;
    if (!st->clock_set) {
        st->clock_set = true;
        st->clock_offset = offset;
        return;
    }
    int64_t d = offset - st->clock_offset;
    /* NTP slews at most 0.5 ms/s; anything near a second is a step. */
    if (d > -SUMMARY_CLOCK_STEP_MS && d < SUMMARY_CLOCK_STEP_MS) {
        st->clock_offset = offset;
        return;
    }
    st->clock_offset = offset;
    /* Move the open intervals with the clock, by whole intervals so they
     * stay aligned, and every counter's last reading by the step itself:
     * the time since that reading is what the monotonic clock says. */
    int64_t shift = (d >= 0 ? d + s->iv_ms / 2 : d - s->iv_ms / 2) / s->iv_ms * s->iv_ms;
    st->open_from += shift;
    for (size_t k = 0; k < st->n_pend; k++)
        st->pend[k].from += shift;
    for (size_t j = 0; j < s->n_meters; j++) {
        if (st->ms[j].has_prev)
            st->ms[j].prev_ts += d;
        if (st->ms[j].last_ts > 0)
            st->ms[j].last_ts += d;
    }
    log_warn("summary: the wall clock stepped %s%.3f s; the summary intervals move with it "
             "(%+lld intervals): none is published for the time skipped or twice for the time "
             "repeated, and no consumption moves",
             d >= 0 ? "+" : "", (double)d / 1000.0, (long long)(shift / s->iv_ms));
}

bool summary_due(const struct summary *s, int64_t now)
{
    int64_t to = s->st.open_from + s->iv_ms;
    if (s->st.open_from == 0 || now < to + s->grace_ms)
        return false;
    for (size_t j = 0; j < s->n_meters; j++) {
        if (!s->m[j].has_billing || s->st.ms[j].last_ts >= to)
            continue;
        if (now < to + s->m[j].interval_ms + s->grace_ms)
            return false;
    }
    return true;
}

/* Builds one payload for meters selected by ent (SIZE_MAX: the park). */
static char *build_payload(struct summary *s, struct pend *p, size_t ent)
{
    double hours = (double)s->iv_ms / MS_PER_HOUR;
    double cons[UTIL__COUNT] = {0};
    bool present[UTIL__COUNT] = {false};
    double kw_avg = 0, nogauge_avg = 0;
    size_t ok = 0, down = 0;
    int64_t to = p->from + s->iv_ms;
    double *c = pv_cons(s, p), *psum = pv_psum(s, p), *pcnt = pv_pcnt(s, p);

    for (size_t j = 0; j < s->n_meters; j++) {
        const struct smeter *sm = &s->m[j];
        if (ent != SIZE_MAX && sm->ent != ent)
            continue;
        present[sm->util] = true;
        cons[sm->util] += c[j];
        if (sm->util == UTIL_ELECTRICITY) {
            if (pcnt[j] > 0) {
                kw_avg += psum[j] / pcnt[j];
            } else {
                kw_avg += c[j] / hours;
                if (!sm->has_power_pt)
                    nogauge_avg += c[j] / hours;
            }
        }
        int64_t window = 2 * (sm->interval_ms > s->iv_ms ? sm->interval_ms : s->iv_ms);
        int64_t last = s->st.ms[j].last_ts;
        if (last > 0 && last >= to - window)
            ok++;
        else
            down++;
    }
    size_t slot = ent == SIZE_MAX ? s->n_ents : ent;
    double held_max = pv_kwmax(s, p)[slot];
    if (isnan(held_max))
        held_max = pv_carry(s, p)[slot];
    double kw_max = isnan(held_max) ? kw_avg : held_max + nogauge_avg;
    if (kw_max < kw_avg)
        kw_max = kw_avg;

    json_t *o = json_object();
    json_object_set_new(o, "from", json_integer(p->from));
    json_object_set_new(o, "to", json_integer(to));
    if (present[UTIL_ELECTRICITY]) {
        json_t *u = json_object();
        json_object_set_new(u, "kwh", json_real(cons[UTIL_ELECTRICITY]));
        json_object_set_new(u, "kw_avg", json_real(kw_avg));
        json_object_set_new(u, "kw_max", json_real(kw_max));
        json_object_set_new(o, "electricity", u);
    }
    static const struct {
        enum utility u;
        const char *key;
    } others[] = {{UTIL_WATER, "m3"}, {UTIL_GAS, "nm3"}, {UTIL_WASTEWATER, "m3"}};
    for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
        if (!present[others[i].u])
            continue;
        json_t *u = json_object();
        json_object_set_new(u, others[i].key, json_real(cons[others[i].u]));
        json_object_set_new(o, utility_name(others[i].u), u);
    }
    if (ent == SIZE_MAX) {
        json_object_set_new(o, "enterprises", json_integer((json_int_t)s->n_ents));
        json_object_set_new(o, "meters_ok", json_integer((json_int_t)ok));
        json_object_set_new(o, "meters_down", json_integer((json_int_t)down));
    }
    char *text = json_dumps(o, SUMMARY_DUMP_FLAGS);
    json_decref(o);
    if (!text) {
        log_err("summary: cannot serialise a payload (out of memory)");
        abort();
    }
    char *copy = xstrdup(text);
    free(text);
    return copy;
}

size_t summary_flush(struct summary *s, int64_t now, struct summary_msg **ret)
{
    struct summary_msg *msgs = NULL;
    size_t n = 0, cap = 0;

    while (summary_due(s, now)) {
        struct sstate *st = &s->st;
        struct pend *p = pend_get(s, 0);
        msgs = xgrow(msgs, &cap, n + s->n_ents + 1, sizeof(*msgs));
        for (size_t e = 0; e < s->n_ents; e++) {
            msgs[n].topic = xstrdup(s->ent_topic[e]);
            msgs[n].payload = build_payload(s, p, e);
            n++;
        }
        msgs[n].topic = xstrdup(s->park_topic);
        msgs[n].payload = build_payload(s, p, SIZE_MAX);
        n++;
        free(p->v);
        memmove(st->pend, st->pend + 1, (st->n_pend - 1) * sizeof(*st->pend));
        st->n_pend--;
        st->open_from += s->iv_ms;
        st->late_to_oldest = true;
    }
    *ret = msgs;
    return n;
}

void summary_msgs_free(struct summary_msg *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++) {
        free(msgs[i].topic);
        free(msgs[i].payload);
    }
    free(msgs);
}

/*
 * The saved state: what the open intervals hold and where each counter's
 * accounting stands, so a restart (clean or kill -9), a reload or a short
 * run loses no consumption. Saved with every batch of published intervals,
 * at each load and at a clean stop; what was committed after it is
 * replayed from the stored readings at the next load. Native byte order:
 * the database stays on its box. Per meter (by billing point id, so a
 * reload that adds or removes meters keeps the others):
 *   u32 point, u32 has_prev, i64 prev_ts, f64 prev_v, i64 last_ts,
 *   f64 consumption[n_pend].
 */
#define STATE_MAGIC 0x31534750u /* "PGS1" */

struct state_hdr {
    uint32_t magic;
    uint32_t n_pend;
    int64_t iv_ms;
    int64_t open_from;
    uint32_t late_to_oldest;
    uint32_t n_meters;
};

struct state_meter {
    uint32_t point;
    uint32_t has_prev;
    int64_t prev_ts;
    double prev_v;
    int64_t last_ts;
};

static size_t state_meter_size(size_t n_pend)
{
    return sizeof(struct state_meter) + n_pend * sizeof(double);
}

int summary_save_state(struct summary *s, struct store *st)
{
    int r = store_summary_set_next_from(st, s->st.open_from);
    if (r < 0)
        return r;
    size_t nb = 0;
    for (size_t j = 0; j < s->n_meters; j++)
        nb += s->m[j].has_billing;
    size_t per = state_meter_size(s->st.n_pend);
    size_t len = sizeof(struct state_hdr) + nb * per;
    unsigned char *buf = xcalloc(1, len);
    struct state_hdr h = {.magic = STATE_MAGIC,
                          .n_pend = (uint32_t)s->st.n_pend,
                          .iv_ms = s->iv_ms,
                          .open_from = s->st.open_from,
                          .late_to_oldest = s->st.late_to_oldest,
                          .n_meters = (uint32_t)nb};
    memcpy(buf, &h, sizeof(h));
    unsigned char *p = buf + sizeof(h);
    for (size_t j = 0; j < s->n_meters; j++) {
        if (!s->m[j].has_billing)
            continue;
        const struct mstate *ms = &s->st.ms[j];
        struct state_meter e = {.point = s->m[j].billing_id,
                                .has_prev = ms->has_prev,
                                .prev_ts = ms->prev_ts,
                                .prev_v = ms->prev_v,
                                .last_ts = ms->last_ts};
        memcpy(p, &e, sizeof(e));
        for (size_t k = 0; k < s->st.n_pend; k++) {
            double c = pv_cons(s, &s->st.pend[k])[j];
            memcpy(p + sizeof(e) + k * sizeof(double), &c, sizeof(double));
        }
        p += per;
    }
    r = store_summary_set_state(st, buf, len);
    free(buf);
    if (r == 0)
        s->st.save_wanted = false;
    return r;
}

bool summary_save_wanted(const struct summary *s)
{
    return s->st.save_wanted;
}

/* Restores a saved state into the fresh s->st; false when blob is not one
 * (or was saved for another summary_interval). */
static bool state_restore(struct summary *s, const unsigned char *blob, size_t len,
                          bool *restored)
{
    struct state_hdr h;
    if (len < sizeof(h))
        return false;
    memcpy(&h, blob, sizeof(h));
    size_t per = state_meter_size(h.n_pend);
    if (h.magic != STATE_MAGIC || h.iv_ms != s->iv_ms || h.open_from % s->iv_ms != 0 ||
        h.n_pend > SUMMARY_MAX_CATCHUP || len != sizeof(h) + (size_t)h.n_meters * per)
        return false;
    s->st.open_from = h.open_from;
    s->st.late_to_oldest = h.late_to_oldest != 0;
    if (h.n_pend)
        pend_get(s, h.n_pend - 1);
    const unsigned char *p = blob + sizeof(h);
    for (uint32_t i = 0; i < h.n_meters; i++, p += per) {
        struct state_meter e;
        memcpy(&e, p, sizeof(e));
        for (size_t j = 0; j < s->n_meters; j++) {
            if (!s->m[j].has_billing || s->m[j].billing_id != e.point)
                continue;
            struct mstate *ms = &s->st.ms[j];
            ms->has_prev = e.has_prev != 0;
            ms->prev_ts = e.prev_ts;
            ms->prev_v = e.prev_v;
            ms->last_ts = e.last_ts;
            for (size_t k = 0; k < h.n_pend; k++) {
                double c;
                memcpy(&c, p + sizeof(e) + k * sizeof(double), sizeof(double));
                pv_cons(s, &s->st.pend[k])[j] = c;
            }
            restored[j] = true;
        }
    }
    return true;
}

/* Moves the open intervals forward so that none is more than
 * SUMMARY_MAX_CATCHUP - 1 intervals before now's: after a very long stop
 * the consumption of the intervals dropped goes to the oldest one kept
 * (nothing is lost), instead of publishing days of intervals. */
static void catch_up_bound(struct summary *s, int64_t now)
{
    int64_t cur = floor_div(now, s->iv_ms) * s->iv_ms;
    int64_t lo = cur - (SUMMARY_MAX_CATCHUP - 1) * s->iv_ms;
    if (s->st.open_from >= lo)
        return;
    log_notice("summary: the oldest unpublished interval is more than %d intervals old; "
               "publishing from %d intervals ago, with the consumption of the older ones in "
               "the first",
               SUMMARY_MAX_CATCHUP, SUMMARY_MAX_CATCHUP - 1);
    struct sstate *st = &s->st;
    double *sum = xcalloc(s->n_meters ? s->n_meters : 1, sizeof(double));
    for (size_t i = 0; i < st->n_pend; i++) {
        for (size_t j = 0; j < s->n_meters; j++)
            sum[j] += pv_cons(s, &st->pend[i])[j];
        free(st->pend[i].v);
    }
    st->n_pend = 0;
    st->open_from = lo;
    st->late_to_oldest = true;
    struct pend *p = pend_get(s, 0);
    for (size_t j = 0; j < s->n_meters; j++)
        pv_cons(s, p)[j] = sum[j];
    free(sum);
}

struct replay {
    struct summary *s;
    size_t meter;
};

static int replay_cb(void *ud, int64_t ts, double v)
{
    struct replay *rp = ud;
    if (isfinite(v))
        add_billing(rp->s, rp->meter, ts, v);
    return 0;
}

int summary_load(struct summary *s, struct store *st, int64_t now)
{
    int64_t next = 0;
    int r = store_summary_next_from(st, &next);
    if (r < 0)
        return r;
    void *blob = NULL;
    size_t blen = 0;
    r = store_summary_state(st, &blob, &blen);
    if (r < 0 && r != -ENOENT)
        return r;

    for (size_t i = 0; i < s->st.n_pend; i++)
        free(s->st.pend[i].v);
    s->st.n_pend = 0;
    memset(s->st.ms, 0, (s->n_meters ? s->n_meters : 1) * sizeof(*s->st.ms));
    memset(s->st.held, 0, (s->n_ents + 1) * sizeof(double));
    memset(s->st.held_n, 0, (s->n_ents + 1) * sizeof(size_t));
    bool *restored = xcalloc(s->n_meters ? s->n_meters : 1, sizeof(bool));
    bool have_state = blob && state_restore(s, blob, blen, restored);
    free(blob);
    if (!have_state) {
        /* Nothing saved (a new database, or one from before the saved
         * state): the current interval, partly covered, is the first. */
        bool resume = next > 0 && next % s->iv_ms == 0;
        s->st.open_from = resume ? next : floor_div(now, s->iv_ms) * s->iv_ms;
        s->st.late_to_oldest = true;
    }
    catch_up_bound(s, now);

    /* Every reading committed after the state was saved (or, for a meter it
     * does not know, from the last one at or before the oldest open
     * interval on) is fed again, as the last run fed it. */
    r = 0;
    s->replaying = true;
    for (size_t j = 0; j < s->n_meters && r == 0; j++) {
        if (!s->m[j].has_billing)
            continue;
        struct mstate *ms = &s->st.ms[j];
        int64_t from = 0;
        if (restored[j] && ms->has_prev) {
            from = ms->prev_ts + 1;
        } else {
            ms->has_prev = false;
            int64_t anchor;
            int sr = store_seek_back(st, s->m[j].billing_id, s->st.open_from + 1, INT64_MIN, 1,
                                     &anchor);
            if (sr == 0)
                from = anchor;
            else if (sr == -ENOENT)
                from = s->st.open_from;
            else
                r = sr;
        }
        struct replay rp = {.s = s, .meter = j};
        if (r == 0)
            r = store_scan(st, s->m[j].billing_id, from, INT64_MAX, replay_cb, &rp);
    }
    s->replaying = false;
    free(restored);
    s->st.save_wanted = true;
    return r;
}

size_t summary_take_events(struct summary *s, struct summary_msg **ret)
{
    size_t n = s->n_ev;
    *ret = s->ev;
    s->ev = NULL;
    s->n_ev = s->cap_ev = 0;
    return n;
}
