/*
 * poller.c - one thread per bus polling its meters at wall-clock-aligned
 * intervals (see poller.h). Scheduling runs on CLOCK_MONOTONIC; samples are
 * stamped with CLOCK_REALTIME at the start of each poll. Decoded samples go
 * to the writer's queue and the live payload to MQTT, neither of which blocks.
 */
#include "daemon/poller.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/alarms.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/decode.h"
#include "protocols/mqtt.h"
#include "protocols/payload.h"
#include "protocols/plan.h"
#include "storage/alarmlog.h"
#include "storage/store.h"
#include "daemon/settle.h"
#include "protocols/dlt645.h"
#include "storage/frozenlog.h"
#include "daemon/writer.h"

struct pmeter {
    const struct cfg_meter *cfg;
    const struct cfg_profile *prof;
    struct plan *plan;
    size_t *req_base;        /* offset of each request's data in regs */
    uint16_t *regs;          /* all requests' registers/bits of one poll */
    double pt_ratio, ct_ratio;
    const uint32_t *point_ids;
    const char **names;
    double *values;
    bool *valid;
    double *shown;           /* values/valid of the last good poll, under the lock */
    bool *shown_valid;
    int64_t shown_ts;
    int *digits;             /* significant digits of each point's value (payload.h) */
    struct sample *samples;
    char *live_topic;
    struct live_payload *live; /* the live payload's text, prepared once */
    const char *live_text;   /* built, waiting in the poller's live batch */
    size_t live_len;
    int64_t poll_ms;         /* how long its last poll took */
    char *state_topic;
    int64_t next_due;        /* monotonic ms */
    int64_t slot_real;       /* wall-clock slot next_due aims at; 0 = realign */
    int64_t backoff_ms;
    int64_t first_fail_ts;   /* Unix ms of the first failed poll in a row */
    int late_streak;         /* polls in a row started > half an interval late */
    /* DL/T 645 settlement-day reading (profile settlement): read after the
     * next good poll when due; stored when its instant lies after the last
     * reading we had (settle_after, Unix ms; -1 none) and before that poll. */
    bool settle_due;
    int64_t settle_after;
    struct poller_meter_stats st;
};

struct poller {
    const struct poller_env *env;
    const struct cfg_bus *bus_cfg;
    struct bus *bus;
    struct pmeter *meters;
    size_t n_meters;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;    /* guards stop, meters[].st, progress */
    pthread_cond_t wake;
    bool stop;
    int64_t progress;
    int64_t clock_offset_ms; /* test hook PARKGW_TEST_CLOCK_OFFSET_MS, else 0 */
    long stall_after;        /* test hook PARKGW_TEST_STALL_BUS: polls before hanging */
    long polls_done;
    bool clock_bad;          /* last poll's time stamp was below the floor */
    uint64_t clock_held;     /* polls not stored because of the clock floor */
    int64_t behind_warned_ms; /* monotonic time of the last "falls behind" warning */
    struct alarms *alarms;   /* outage detection for this bus's meters (engine/alarms.h) */
    char *events_topic;
    uint64_t mqtt_connects;  /* broker connects seen; a new one re-publishes every state */
    /* Live messages of the polls in a burst, handed to MQTT together. */
    struct pmeter **live_batch; /* [n_meters] */
    size_t n_live;
    int64_t live_since;      /* monotonic ms of the oldest waiting message */
};

size_t poller_meter_index(const struct config *cfg, const struct cfg_meter *m)
{
    size_t idx = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (m >= ent->meters && m < ent->meters + ent->n_meters)
            return idx + (size_t)(m - ent->meters);
        idx += ent->n_meters;
    }
    return idx;
}

/* Schedules the meter's next poll at the wall-clock slot after the one just
 * polled (a 60 s meter is read at :00 of each minute), as a monotonic
 * deadline. A poll that starts a little early or late keeps its slot. When
 * the next slot is a whole interval behind the wall clock or more than 1.5
 * intervals ahead (a clock step, a stalled bus) the schedule re-aligns to
 * the next multiple after now: a step can neither cause a burst of catch-up
 * polls nor a sleep longer than 1.5 intervals. */
static void schedule_next(struct pmeter *pm)
{
    int64_t iv = (int64_t)pm->cfg->interval * 1000;
    int64_t real = now_real_ms(), mono = now_mono_ms();
    int64_t slot = pm->slot_real ? pm->slot_real + iv : 0;
    if (slot == 0 || slot <= real - iv || slot > real + iv + iv / 2)
        slot = (floor_div(real, iv) + 1) * iv;
    pm->slot_real = slot;
    pm->next_due = mono + (slot - real); /* <= mono: due now, once */
}

/* Clock sanity: a time stamp before POLL_CLOCK_FLOOR_MS (2020-01-01T00:00:00Z
 * = 18262 days * 86400 s) means the wall clock is unset (a box without RTC
 * battery before NTP). Such readings are counted and not stored/published:
 * they would land decades away from their real time in rollups and bills. */
#define POLL_CLOCK_FLOOR_MS INT64_C(1577836800000)

/* Logs the clock floor state once per change; true when ts may be stored. */
static bool clock_plausible(struct poller *p, int64_t ts)
{
    bool bad = ts < POLL_CLOCK_FLOOR_MS;
    if (bad) {
        pthread_mutex_lock(&p->lock);
        p->clock_held++;
        pthread_mutex_unlock(&p->lock);
    }
    if (bad && !p->clock_bad)
        log_err("bus %s: wall clock reads %lld ms, before the floor 2020-01-01: readings are "
                "held back (not stored or published) until the clock is set",
                p->bus_cfg->name, (long long)ts);
    else if (!bad && p->clock_bad)
        log_notice("bus %s: wall clock plausible again; %llu readings were held back so far",
                   p->bus_cfg->name, (unsigned long long)p->clock_held);
    p->clock_bad = bad;
    return !bad;
}

static void pmeter_free(struct pmeter *pm)
{
    plan_free(pm->plan);
    free(pm->req_base);
    free(pm->regs);
    free(pm->names);
    free(pm->values);
    free(pm->valid);
    free(pm->shown);
    free(pm->shown_valid);
    free(pm->digits);
    free(pm->samples);
    free(pm->live_topic);
    live_payload_free(pm->live);
    free(pm->state_topic);
}

static int pmeter_init(struct poller *p, struct pmeter *pm, const struct cfg_meter *m)
{
    const struct config *cfg = p->env->cfg;
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    struct plan_opts opts = plan_opts_for_meter(m);
    int r = plan_build(prof, &opts, &pm->plan);
    if (r < 0)
        return r;
    pm->cfg = m;
    pm->prof = prof;
    pm->pt_ratio = m->pt_ratio;
    pm->ct_ratio = m->ct_ratio;
    pm->req_base = xcalloc(pm->plan->n_reqs, sizeof(size_t));
    size_t total = 0;
    for (size_t i = 0; i < pm->plan->n_reqs; i++) {
        pm->req_base[i] = total;
        total += pm->plan->reqs[i].count;
    }
    pm->regs = xcalloc(total + 4, sizeof(uint16_t));
    pm->names = xcalloc(prof->n_points, sizeof(char *));
    for (size_t i = 0; i < prof->n_points; i++)
        pm->names[i] = prof->points[i].name;
    pm->values = xcalloc(prof->n_points, sizeof(double));
    pm->valid = xcalloc(prof->n_points, sizeof(bool));
    pm->shown = xcalloc(prof->n_points + 1, sizeof(double));
    pm->shown_valid = xcalloc(prof->n_points + 1, sizeof(bool));
    pm->samples = xcalloc(prof->n_points, sizeof(struct sample));
    pm->point_ids = p->env->point_ids ? p->env->point_ids[poller_meter_index(cfg, m)] : NULL;
    pm->live_topic = topic_meter(p->env->topic_base, m->enterprise->id, utility_name(m->utility),
                                 m->id, "live");
    pm->state_topic = topic_meter(p->env->topic_base, m->enterprise->id,
                                  utility_name(m->utility), m->id, "state");
    pm->digits = xcalloc(prof->n_points + 1, sizeof(int));
    for (size_t i = 0; i < prof->n_points; i++)
        pm->digits[i] = payload_point_digits(&prof->points[i]);
    pm->live = live_payload_new(m->enterprise->id, m->id, utility_name(m->utility), pm->names,
                                pm->digits, prof->n_points);
    pm->st.meter = m;
    pm->backoff_ms = POLL_BACKOFF_MIN_MS;
    pm->next_due = now_mono_ms(); /* first read at once, then aligned */
    return 0;
}

static void count_failure(struct poller_meter_stats *st, int err)
{
    if (err == -ETIMEDOUT)
        st->timeouts++;
    else if (err == -EBADMSG)
        st->bad_replies++;
    else if (err <= -BUS_EXC_BASE)
        st->exceptions++;
    else
        st->conn_errors++;
}

static void poll_failed(struct poller *p, struct pmeter *pm, int err, int64_t ts)
{
    const struct cfg_meter *m = pm->cfg;
    pthread_mutex_lock(&p->lock);
    count_failure(&pm->st, err);
    pm->st.consecutive_failures++;
    pm->st.last_error = err;
    int fails = pm->st.consecutive_failures;
    if (fails == 1)
        pm->first_fail_ts = ts;
    int64_t since_ok = ts - (pm->st.last_ok_ts ? pm->st.last_ok_ts : pm->first_fail_ts);
    bool became_lost = !pm->st.comm_lost &&
                       alarms_comm_lost_due(m, fails, since_ok, POLL_FAILS_TO_LOST);
    if (became_lost)
        pm->st.comm_lost = true;
    bool lost = pm->st.comm_lost;
    pthread_mutex_unlock(&p->lock);

    /* A dead meter logs once per state change, not every poll. */
    if (fails == 1 && m->address)
        log_warn("meter %s/%s (bus %s, address %s): read failed: %s", m->enterprise->id, m->id,
                 p->bus_cfg->name, m->address, bus_strerror(err));
    else if (fails == 1)
        log_warn("meter %s/%s (bus %s, unit %d): read failed: %s", m->enterprise->id, m->id,
                 p->bus_cfg->name, m->unit_id, bus_strerror(err));
    else
        log_debug("meter %s/%s: read failed again (%d): %s", m->enterprise->id, m->id, fails,
                  bus_strerror(err));
    if (became_lost)
        log_warn("meter %s/%s: communication lost after %d failed polls, %lld s without a good "
                 "reading (last: %s); retrying with backoff",
                 m->enterprise->id, m->id, fails, (long long)(since_ok / 1000),
                 bus_strerror(err));
    if (lost) {
        pm->slot_real = 0;
        pm->next_due = now_mono_ms() + pm->backoff_ms;
        pm->backoff_ms = pm->backoff_ms * 2 > POLL_BACKOFF_MAX_MS ? POLL_BACKOFF_MAX_MS
                                                                  : pm->backoff_ms * 2;
    } else {
        schedule_next(pm);
        /* With comm_timeout, a failing meter is asked again sooner than its
         * interval, so comm_lost is decided about comm_timeout after the
         * last good reading, not up to two intervals later. */
        if (m->comm_timeout > 0) {
            int64_t half = (int64_t)m->comm_timeout * 500;
            int64_t early = now_mono_ms() + (half < 1000 ? 1000 : half);
            if (early < pm->next_due)
                pm->next_due = early;
        }
    }
}

/* Copies the alarm engine's view of a meter into its stats, for the
 * daemon's status and HTTP views (other threads read it under the lock). */
static void note_view(struct poller *p, struct pmeter *pm, const struct alarms_view *v)
{
    char names[POLLER_ALARMS_LEN];
    size_t used = 0;
    names[0] = '\0';
    for (size_t k = 0; k < v->n_alarms; k++) {
        int w = snprintf(names + used, sizeof(names) - used, "%s%s", used ? "," : "",
                         v->alarms[k]);
        if (w < 0 || (size_t)w >= sizeof(names) - used) {
            names[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    pthread_mutex_lock(&p->lock);
    pm->st.state = v->state;
    pm->st.state_since = v->since;
    memcpy(pm->st.alarms, names, sizeof(names));
    pthread_mutex_unlock(&p->lock);
}

/* Publishes the retained state topic of every meter whose view changed
 * (all of them when 'all': after a broker reconnect). A publish that fails
 * while the broker is away is repeated by the reconnect. */
static void publish_states(struct poller *p, bool all)
{
    if (!all && !alarms_any_changed(p->alarms))
        return;   /* the common case after a poll: nothing to walk */
    for (size_t i = 0; i < p->n_meters; i++) {
        bool changed = alarms_take_changed(p->alarms, i);
        struct alarms_view v;
        if (changed) {
            alarms_get_view(p->alarms, i, &v);
            note_view(p, &p->meters[i], &v);
        }
        if (!p->env->mqtt || !(changed || all))
            continue;
        alarms_get_view(p->alarms, i, &v);
        char *payload = payload_state(now_real_ms(), meter_state_name(v.state), v.since,
                                      (const char *const *)v.alarms, v.n_alarms);
        mqtt_publish(p->env->mqtt, p->meters[i].state_topic, payload, strlen(payload), 1, true);
        free(payload);
    }
}

/* The broker came back (or connected for the first time): its retained
 * state topics may be older than ours, so send every meter's again. */
static void check_reconnect(struct poller *p)
{
    if (!p->env->mqtt)
        return;
    struct mqtt_stats ms;
    mqtt_get_stats(p->env->mqtt, &ms);
    if (ms.connects == p->mqtt_connects || !ms.connected)
        return;
    p->mqtt_connects = ms.connects;
    publish_states(p, true);
}

/* payload_event without its "seq": the outbox gives the message its seq
 * when it is published (writer_submit_msg). Caller frees. */
static char *event_json(const struct alarm_event *ev, const struct payload_field *f, size_t n)
{
    return payload_event(-1, ev->ts, alarm_event_name(ev->type), f, n);
}

/* The engine's sink: one event on P/events through the durable outbox (its
 * row in the alarm history follows from it by the keys of
 * storage/alarmlog.h). */
/* "HH:MM:SS" local time of ts (Unix ms), into buf (16 bytes). */
static const char *hms(int64_t ts, char *buf, size_t len)
{
    time_t t = (time_t)floor_div(ts, 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(buf, len, "%H:%M:%S", &tm) == 0)
        snprintf(buf, len, "?");
    return buf;
}

/* An event as the journal tells it to a person: the type first (for grep),
 * then a sentence with the enterprise's registered name. The JSON goes to
 * P/events. */
static void log_event(const struct poller *p, const struct pmeter *pm,
                      const struct alarm_event *ev)
{
    char since[16], who[256] = "";
    bool bad = ev->type == AEV_ALARM_RAISED || ev->type == AEV_COMM_LOST ||
               ev->type == AEV_BUS_DOWN;
    enum log_level lvl = bad ? LOG_LVL_WARN : LOG_LVL_NOTICE;
    const char *what = "value";
    hms(ev->since, since, sizeof(since));
    if (pm) {
        const struct cfg_meter *m = pm->cfg;
        const char *name = m->enterprise->name && *m->enterprise->name ? m->enterprise->name
                                                                       : m->enterprise->id;
        snprintf(who, sizeof(who), "%s (%s/%s, %s)", name, m->enterprise->id, m->id,
                 utility_name(m->utility));
        /* The watched point, by the alarm's name (a derived phase_loss
         * watches the lowest phase voltage). */
        for (size_t k = 0; ev->alarm && k < pm->prof->n_alarms; k++)
            if (strcmp(pm->prof->alarms[k].name, ev->alarm) == 0)
                what = pm->prof->points[pm->prof->alarms[k].point].name;
        if (ev->alarm && strcmp(what, "value") == 0 && strcmp(ev->alarm, "phase_loss") == 0)
            what = "lowest phase voltage";
    }
    switch (ev->type) {
    case AEV_ALARM_RAISED:
        log_msg(lvl, "%s raised: %s: %s %g %s %g since %s (bus %s)", ev->alarm, who, what,
                ev->value, ev->value < ev->threshold ? "below" : "above", ev->threshold, since,
                p->bus_cfg->name);
        break;
    case AEV_ALARM_CLEARED:
        log_msg(lvl, "%s cleared: %s: %s %g, back past %g; it began at %s (bus %s)", ev->alarm,
                who, what, ev->value, ev->threshold, since, p->bus_cfg->name);
        break;
    case AEV_COMM_LOST:
        log_msg(lvl, "comm_lost: %s does not answer since %s: %d failed polls, last: %s (bus %s)", who,
            since, ev->failures, pm ? bus_strerror(pm->st.last_error) : "?", p->bus_cfg->name);
        break;
    case AEV_COMM_RESTORED:
        log_msg(lvl, "comm_restored: %s answers again, silent since %s (bus %s)", who, since,
            p->bus_cfg->name);
        break;
    case AEV_BUS_DOWN:
        log_msg(lvl, "bus_down: bus %s, none of its %zu meters answers since %s", p->bus_cfg->name,
            ev->n_meters, since);
        break;
    case AEV_BUS_RESTORED:
        log_msg(lvl, "bus_restored: bus %s answers again, down since %s", p->bus_cfg->name, since);
        break;
    }
}

static void on_alarm_event(void *ud, const struct alarm_event *ev)
{
    struct poller *p = ud;
    const struct pmeter *pm = ev->meter >= 0 ? &p->meters[ev->meter] : NULL;
    struct payload_field f[12];
    size_t n = 0;
    if (pm) {
        f[n++] = (struct payload_field){.key = ALARMLOG_KEY_ENTERPRISE, .type = PF_STR,
                                        .s = pm->cfg->enterprise->id};
        f[n++] = (struct payload_field){.key = ALARMLOG_KEY_METER, .type = PF_STR,
                                        .s = pm->cfg->id};
        f[n++] = (struct payload_field){.key = "utility", .type = PF_STR,
                                        .s = utility_name(pm->cfg->utility)};
    }
    f[n++] = (struct payload_field){.key = ALARMLOG_KEY_BUS, .type = PF_STR, .s = p->bus_cfg->name};
    if (ev->type == AEV_ALARM_RAISED || ev->type == AEV_ALARM_CLEARED) {
        f[n++] = (struct payload_field){.key = ALARMLOG_KEY_ALARM, .type = PF_STR, .s = ev->alarm};
        f[n++] = (struct payload_field){.key = ALARMLOG_KEY_VALUE, .type = PF_REAL, .d = ev->value};
        f[n++] = (struct payload_field){.key = ALARMLOG_KEY_THRESHOLD, .type = PF_REAL,
                                        .d = ev->threshold};
    }
    f[n++] = (struct payload_field){.key = ALARMLOG_KEY_SINCE, .type = PF_INT, .i = ev->since};
    if (ev->type == AEV_COMM_LOST && pm) {
        f[n++] = (struct payload_field){.key = "failures", .type = PF_INT, .i = ev->failures};
        f[n++] = (struct payload_field){.key = "error", .type = PF_STR,
                                        .s = bus_strerror(pm->st.last_error)};
    }
    if (!pm)
        f[n++] = (struct payload_field){.key = "meters", .type = PF_INT,
                                        .i = (int64_t)ev->n_meters};
    char *payload = event_json(ev, f, n);
    log_event(p, pm, ev);
    int r = 0;
    if (p->env->writer)
        r = writer_submit_msg(p->env->writer, p->events_topic, payload, 1, false);
    else if (p->env->mqtt)
        r = mqtt_publish(p->env->mqtt, p->events_topic, payload, strlen(payload), 1, false);
    if (r < 0)
        log_err("event %s could not be queued: %s", alarm_event_name(ev->type), strerror(-r));
    free(payload);
}

/* seed_alarms: one open alarm from the history. */
struct seed {
    struct poller *p;
    bool bus_down;
    int64_t bus_since;
};

static int seed_one(void *ud, const struct alarmlog_open *o)
{
    struct seed *sd = ud;
    struct poller *p = sd->p;
    if (strcmp(o->alarm, ALARMLOG_EV_BUS_DOWN) == 0) {
        if (strcmp(o->bus, p->bus_cfg->name) == 0) {
            sd->bus_down = true;
            sd->bus_since = o->since;
        }
        return 0;
    }
    for (size_t i = 0; i < p->n_meters; i++) {
        const struct cfg_meter *m = p->meters[i].cfg;
        if (strcmp(m->enterprise->id, o->enterprise) != 0 || strcmp(m->id, o->meter) != 0)
            continue;
        if (strcmp(o->alarm, ALARMLOG_EV_COMM_LOST) == 0)
            alarms_seed_comm_lost(p->alarms, i, o->since);
        else
            alarms_seed_alarm(p->alarms, i, o->alarm, o->since);
    }
    return 0;
}

/* Puts back what the alarm history still has open for this bus's meters, so
 * a restart or reload neither raises an alarm twice nor misses its clear.
 * One short read on a connection of its own, before the thread starts. */
static void seed_alarms(struct poller *p)
{
    struct store *st;
    struct alarmlog *al = NULL;
    struct seed sd = {.p = p};
    char err[256];
    int r;

    if (!p->env->writer || store_open(p->env->cfg->storage_path, true, &st, err, sizeof(err)) < 0)
        return;
    r = alarmlog_attach(store_db(st), &al);
    if (r == 0)
        r = alarmlog_each_open(al, seed_one, &sd);
    if (r < 0)
        log_warn("bus %s: cannot read open alarms: %s", p->bus_cfg->name, strerror(-r));
    alarmlog_free(al);
    store_close(st);
    if (sd.bus_down)
        alarms_seed_bus_down(p->alarms, sd.bus_since);
}

/* Where a bus has DL/T 645 meters that keep settlement-day readings: the
 * last stored reading of each one's billing counter, so that the first
 * good poll stores the meter's reading at a settlement instant the gateway
 * missed while it was down. One short read before the thread starts. */
static void seed_settlement(struct poller *p)
{
    struct store *st = NULL;
    char err[256];
    for (size_t i = 0; i < p->n_meters; i++) {
        struct pmeter *pm = &p->meters[i];
        int b = profile_billing_point(pm->prof);
        if (!settle_wanted(pm->prof) || b < 0 || !pm->point_ids || !p->env->writer)
            continue;
        if (!st && store_open(p->env->cfg->storage_path, true, &st, err, sizeof(err)) < 0)
            return;
        int64_t ts;
        double v;
        pm->settle_after = store_latest(st, pm->point_ids[b], &ts, &v) == 0 ? ts : -1;
        pm->settle_due = true;
    }
    store_close(st);
}

/* Stores frozen reading v of pm's billing counter at 'at' with a
 * frozen_reading event (source "settlement_day" or "daily"); the event's
 * trigger marks the sample as frozen (storage/frozenlog.h). */
static void store_frozen(struct poller *p, struct pmeter *pm, int64_t at, double v,
                         const char *source)
{
    const struct cfg_meter *m = pm->cfg;
    int b = profile_billing_point(pm->prof);
    const char *name = pm->prof->points[b].name;
    struct sample smp = {.point = pm->point_ids[b], .ts = at, .value = v};
    if (writer_submit(p->env->writer, &smp, 1) < 0)
        return;
    struct payload_field f[] = {
        {.key = ALARMLOG_KEY_ENTERPRISE, .type = PF_STR, .s = m->enterprise->id},
        {.key = ALARMLOG_KEY_METER, .type = PF_STR, .s = m->id},
        {.key = "utility", .type = PF_STR, .s = utility_name(m->utility)},
        {.key = FROZENLOG_KEY_POINT, .type = PF_STR, .s = name},
        {.key = ALARMLOG_KEY_VALUE, .type = PF_REAL, .d = v},
        {.key = FROZENLOG_KEY_SOURCE, .type = PF_STR, .s = source},
    };
    char *payload = payload_event(-1, at, FROZENLOG_EV, f, ARRAY_SIZE(f));
    log_notice("meter %s/%s: stored the %s reading %s = %.12g at %lld (missed while not "
               "polling): event %s",
               m->enterprise->id, m->id, strcmp(source, "daily") ? "settlement-day" : "daily frozen",
               name, v, (long long)at, payload);
    if (writer_submit_msg(p->env->writer, p->events_topic, payload, 1, false) < 0)
        log_err("event frozen_reading could not be queued");
    free(payload);
}

/* Reads the meter's latest settlement-day reading and its last daily
 * freezes (profile settlement, daily_frozen) and stores those whose
 * instants fall in the time no reading was taken, oldest first
 * (docs/DLT645.md). */
static void settle_backfill(struct poller *p, struct pmeter *pm, int64_t now)
{
    const struct cfg_meter *m = pm->cfg;
    int64_t at, ts[DLT645_DAILY_FROZEN_MAX + 1];
    double v, val[DLT645_DAILY_FROZEN_MAX + 1];
    const char *src[DLT645_DAILY_FROZEN_MAX + 1];
    size_t n = 0;
    pm->settle_due = false;
    int64_t settled = -1;
    if (pm->prof->settlement) {
        int r = settle_read(p->bus, m, pm->prof, now, &at, &v);
        if (r < 0)
            log_info("meter %s/%s: no settlement-day reading: %s", m->enterprise->id, m->id,
                     bus_strerror(r));
        else if (at > pm->settle_after && at < now) {
            settled = at;
            ts[n] = at, val[n] = v, src[n++] = "settlement_day";
        }
    }
    /* Newest first; stop at the first freeze the gateway had covered. */
    for (int nn = 1; nn <= pm->prof->daily_frozen; nn++) {
        int r = settle_read_daily(p->bus, m, pm->prof, nn, &at, &v);
        if (r < 0) {
            log_info("meter %s/%s: no daily frozen reading %d: %s", m->enterprise->id, m->id, nn,
                     bus_strerror(r));
            break;
        }
        if (at <= pm->settle_after)
            break;
        if (at < now && at != settled)
            ts[n] = at, val[n] = v, src[n++] = "daily";
    }
    /* Oldest first, as the writer takes a meter's readings. */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && ts[k - 1] > ts[k]; k--) {
            int64_t t = ts[k];
            double w = val[k];
            const char *s = src[k];
            ts[k] = ts[k - 1], val[k] = val[k - 1], src[k] = src[k - 1];
            ts[k - 1] = t, val[k - 1] = w, src[k - 1] = s;
        }
    for (size_t i = 0; i < n; i++)
        store_frozen(p, pm, ts[i], val[i], src[i]);
}

static void poll_meter(struct poller *p, struct pmeter *pm)
{
    const struct cfg_meter *m = pm->cfg;
    const struct plan *plan = pm->plan;
    int64_t ts = now_real_ms() + p->clock_offset_ms;

    for (size_t i = 0; i < plan->n_reqs; i++) {
        int r = bus_read_meter(p->bus, m, &plan->reqs[i], pm->regs + pm->req_base[i]);
        if (r < 0) {
            pthread_mutex_lock(&p->lock);
            pm->st.polls++;
            pthread_mutex_unlock(&p->lock);
            poll_failed(p, pm, r, ts);
            /* Events stamped before the clock floor would be decades off. */
            if (ts >= POLL_CLOCK_FLOOR_MS)
                alarms_poll_failed(p->alarms, (size_t)(pm - p->meters), ts);
            publish_states(p, false);
            return;
        }
    }

    size_t n = 0, bad = 0;
    for (size_t i = 0; i < pm->prof->n_points; i++) {
        const struct plan_loc *loc = &plan->locs[i];
        const uint16_t *regs = pm->regs + pm->req_base[loc->req] + loc->offset;
        pm->valid[i] = decode_point(&pm->prof->points[i], pm->pt_ratio, pm->ct_ratio, regs,
                                     &pm->values[i]) == 0;
        if (!pm->valid[i]) {
            bad++;
            continue;
        }
        if (pm->point_ids) {
            pm->samples[n].point = pm->point_ids[i];
            pm->samples[n].ts = ts;
            pm->samples[n].value = pm->values[i];
            /* The billing counter is stored as the dial reading (before PT x
             * CT): a bill applies the multiplier of the meter's history in
             * force (storage/meterlog.h), so a ratio change never rewrites
             * what was stored. Decoded again rather than divided, so the
             * stored value is exactly the register's. */
            const struct cfg_point *cp = &pm->prof->points[i];
            if (cp->billing && cp->ratio != RATIO_NONE &&
                decode_point(cp, 1.0, 1.0, regs, &pm->samples[n].value) < 0)
                continue;
            n++;
        }
    }
    if (bad)
        log_debug("meter %s/%s: %zu point(s) decoded to NaN/Inf, not stored", m->enterprise->id,
                  m->id, bad);
    bool clock_ok = clock_plausible(p, ts);
    if (!clock_ok)
        n = 0;
    if (n && p->env->writer)
        writer_submit(p->env->writer, pm->samples, n);
    if (p->env->mqtt && clock_ok) {
        if (!pm->live_text) {
            if (!p->n_live)
                p->live_since = now_mono_ms();
            p->live_batch[p->n_live++] = pm;
        }
        pm->live_text = live_payload_build(pm->live, ts, pm->values, pm->valid, &pm->live_len);
    }

    pthread_mutex_lock(&p->lock);
    bool was_lost = pm->st.comm_lost;
    int fails = pm->st.consecutive_failures;
    if (was_lost && settle_wanted(pm->prof) && pm->point_ids && p->env->writer) {
        /* Back after an outage: the meter may have settled meanwhile. */
        pm->settle_due = true;
        pm->settle_after = pm->st.last_ok_ts;
    }
    pm->st.polls++;
    pm->st.polls_ok++;
    pm->st.bad_values += bad;
    pm->st.last_ok_ts = ts;
    if (clock_ok) {
        memcpy(pm->shown, pm->values, pm->prof->n_points * sizeof(double));
        memcpy(pm->shown_valid, pm->valid, pm->prof->n_points * sizeof(bool));
        pm->shown_ts = ts;
    }
    pm->st.consecutive_failures = 0;
    pm->st.comm_lost = false;
    pthread_mutex_unlock(&p->lock);
    if (was_lost)
        log_notice("meter %s/%s: communication restored after %d failed polls", m->enterprise->id,
                   m->id, fails);
    else if (fails > 0)
        log_info("meter %s/%s: read ok again", m->enterprise->id, m->id);
    pm->backoff_ms = POLL_BACKOFF_MIN_MS;
    schedule_next(pm);
    if (clock_ok)
        alarms_poll_ok(p->alarms, (size_t)(pm - p->meters), ts, pm->values, pm->valid);
    publish_states(p, false);
    if (pm->settle_due && clock_ok)
        settle_backfill(p, pm, ts);
}

/* Polls in a row more than half an interval late before the bus says it
 * falls behind, and the least time between two such warnings. */
#define POLL_LATE_STREAK 3
#define POLL_BEHIND_WARN_EVERY_MS (10 * 60 * 1000)

/* A bus that cannot fit its schedule (too many meters, too short intervals,
 * too slow a line, timeouts piling up) starts its polls later and later.
 * One late poll is noise (a timeout on the bus); several in a row for the
 * same meter mean the bus is overloaded: say so, at most every 10 minutes. */
static void note_lateness(struct poller *p, struct pmeter *pm, int64_t now)
{
    int64_t late = now - pm->next_due;
    int64_t half = (int64_t)pm->cfg->interval * 500;
    if (late <= half || pm->st.comm_lost) {
        pm->late_streak = 0;
        return;
    }
    if (++pm->late_streak < POLL_LATE_STREAK)
        return;
    if (p->behind_warned_ms && now - p->behind_warned_ms < POLL_BEHIND_WARN_EVERY_MS)
        return;
    p->behind_warned_ms = now;
    log_warn("bus %s falls behind its schedule: meter %s/%s started %lld ms late, %d polls in "
             "a row more than half its %d s interval; the bus cannot fit its meters "
             "(`parkgw check` shows the load): lengthen intervals, split the line or fix "
             "the meters that time out",
             p->bus_cfg->name, pm->cfg->enterprise->id, pm->cfg->id, (long long)late,
             pm->late_streak, pm->cfg->interval);
}

/* A poll's live message waits at most about this long for the polls after
 * it, so that a burst of polls reaches the MQTT client's send thread as one
 * batch and wakes it once (docs/MQTT.md). */
#define LIVE_BATCH_MS 10

/* Hands the waiting live messages to MQTT, oldest first. */
static void flush_live(struct poller *p)
{
    for (size_t i = 0; i < p->n_live; i++) {
        struct pmeter *pm = p->live_batch[i];
        mqtt_publish(p->env->mqtt, pm->live_topic, pm->live_text, pm->live_len, 0, true);
        pm->live_text = NULL;
    }
    p->n_live = 0;
}

/* Whether the waiting live messages should leave before pm is polled: when
 * its poll is expected to take them past LIVE_BATCH_MS (it was slow last
 * time, or failed and may take the whole timeout again). A meter that turns
 * slow without warning holds one batch for one poll. */
static bool live_flush_before(const struct poller *p, const struct pmeter *pm, int64_t now)
{
    if (!p->n_live)
        return false;
    int64_t expect = pm->st.consecutive_failures ? p->bus_cfg->timeout_ms : pm->poll_ms;
    return now - p->live_since + expect > LIVE_BATCH_MS;
}

static void *poller_thread(void *arg)
{
    struct poller *p = arg;
    for (;;) {
        check_reconnect(p);
        int64_t now = now_mono_ms();
        struct pmeter *due = NULL;
        for (size_t i = 0; i < p->n_meters; i++)
            if (!due || p->meters[i].next_due < due->next_due)
                due = &p->meters[i];

        /* Nothing more due on the bus: the burst's live messages leave. */
        if (p->n_live && (!due || due->next_due > now))
            flush_live(p);

        pthread_mutex_lock(&p->lock);
        p->progress = now;
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            flush_live(p);
            break;
        }
        if (!due || due->next_due > now) {
            /* Wake at least once a second so the watchdog sees progress. */
            int64_t wait = due ? due->next_due - now : 1000;
            if (wait > 1000)
                wait = 1000;
            struct timespec ts = mono_deadline(wait);
            pthread_cond_timedwait(&p->wake, &p->lock, &ts);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        note_lateness(p, due, now);
        if (live_flush_before(p, due, now))
            flush_live(p);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t start = now_mono_ms();
        poll_meter(p, due);
        int64_t after = now_mono_ms();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        due->poll_ms = after - start;
        int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        pthread_mutex_lock(&p->lock);
        due->st.busy_us += (uint64_t)(us > 0 ? us : 0);
        pthread_mutex_unlock(&p->lock);
        if (p->n_live && after - p->live_since >= LIVE_BATCH_MS)
            flush_live(p);
        if (p->stall_after > 0 && ++p->polls_done >= p->stall_after) {
            /* Test hook: hang without progress (a stuck bus) until stopped. */
            log_warn("test hook: bus %s stalls now", p->bus_cfg->name);
            for (;;) {
                pthread_mutex_lock(&p->lock);
                bool stop = p->stop;
                pthread_mutex_unlock(&p->lock);
                if (stop)
                    break;
                sleep_ms(50);
            }
        }
    }
    bus_close(p->bus);
    return NULL;
}

int poller_start(const struct poller_env *env, int bus_index, struct poller **ret)
{
    const struct config *cfg = env->cfg;
    struct poller *p = xcalloc(1, sizeof(*p));
    int r;
    pthread_condattr_t ca;

    p->env = env;
    p->bus_cfg = &cfg->buses[bus_index];
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    p->progress = now_mono_ms();
    const char *hook = getenv("PARKGW_TEST_CLOCK_OFFSET_MS");
    if (hook && parse_int64(hook, &p->clock_offset_ms) < 0)
        p->clock_offset_ms = 0;
    hook = getenv("PARKGW_TEST_STALL_BUS");
    if (hook && strcmp(hook, p->bus_cfg->name) == 0) {
        int64_t n = 3;
        const char *after = getenv("PARKGW_TEST_STALL_AFTER");
        if (after && parse_int64(after, &n) < 0)
            n = 3;
        p->stall_after = n > 0 ? (long)n : 1;
    }

    r = bus_new(p->bus_cfg, &p->bus);
    if (r < 0)
        goto out_free;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            if (m->bus != bus_index)
                continue;
            p->meters = xrealloc(p->meters, (p->n_meters + 1) * sizeof(*p->meters));
            memset(&p->meters[p->n_meters], 0, sizeof(*p->meters));
            r = pmeter_init(p, &p->meters[p->n_meters], m);
            p->n_meters++;
            if (r < 0)
                goto out_free;
        }
    p->live_batch = xcalloc(p->n_meters ? p->n_meters : 1, sizeof(*p->live_batch));
    const struct cfg_meter **ms = xcalloc(p->n_meters ? p->n_meters : 1, sizeof(*ms));
    for (size_t i = 0; i < p->n_meters; i++)
        ms[i] = p->meters[i].cfg;
    alarms_new(cfg, ms, p->n_meters, POLL_FAILS_TO_LOST, on_alarm_event, p, now_real_ms(),
               &p->alarms);
    free(ms);
    p->events_topic = topic_events(env->topic_base);
    seed_alarms(p);
    seed_settlement(p);
    r = -pthread_create(&p->thread, NULL, poller_thread, p);
    if (r < 0)
        goto out_free;
    p->thread_started = true;
    *ret = p;
    return 0;

out_free:
    poller_stop(p);
    return r;
}

void poller_stop(struct poller *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->clock_held)
        log_warn("bus %s: %llu readings were held back: wall clock before 2020-01-01",
                 p->bus_cfg->name, (unsigned long long)p->clock_held);
    for (size_t i = 0; i < p->n_meters; i++)
        pmeter_free(&p->meters[i]);
    free(p->meters);
    free(p->live_batch);
    alarms_free(p->alarms);
    free(p->events_topic);
    bus_free(p->bus);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

size_t poller_get_values(struct poller *p, size_t i, double *values, bool *valid, size_t max,
                         int64_t *ret_ts, const char *const **ret_names, const int **ret_digits)
{
    size_t n = 0;
    *ret_ts = 0;
    *ret_names = NULL;
    *ret_digits = NULL;
    pthread_mutex_lock(&p->lock);
    if (i < p->n_meters) {
        const struct pmeter *pm = &p->meters[i];
        n = pm->shown_ts ? pm->prof->n_points : 0;
        if (n > max)
            n = max;
        memcpy(values, pm->shown, n * sizeof(double));
        memcpy(valid, pm->shown_valid, n * sizeof(bool));
        *ret_ts = pm->shown_ts;
        *ret_names = pm->names;
        *ret_digits = pm->digits;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

int64_t poller_last_progress(struct poller *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t v = p->progress;
    pthread_mutex_unlock(&p->lock);
    return v;
}

size_t poller_get_stats(struct poller *p, struct poller_meter_stats *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n_meters && n < max; i++)
        out[n++] = p->meters[i].st;
    pthread_mutex_unlock(&p->lock);
    return n;
}
