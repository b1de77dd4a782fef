/*
 * alarms.h - outage detection for the meters of one bus: the profiles' alarm
 * rules (below/above a threshold held for `for` seconds, cleared past the
 * hysteresis), the derived phase_loss rule, the meter state machine (ok,
 * comm_lost, supply_lost) and the bus_down aggregation. A pure engine: the
 * poller feeds it poll results with their timestamps and turns the events it
 * emits into payloads; it does no I/O and takes no locks (one bus thread).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

enum meter_state { METER_OK, METER_COMM_LOST, METER_SUPPLY_LOST };

/* "ok", "comm_lost", "supply_lost": the state topic's words. */
const char *meter_state_name(enum meter_state s);

enum alarm_event_type {
    AEV_ALARM_RAISED,
    AEV_ALARM_CLEARED,
    AEV_COMM_LOST,
    AEV_COMM_RESTORED,
    AEV_BUS_DOWN,
    AEV_BUS_RESTORED,
};

/* "alarm_raised", "alarm_cleared", "comm_lost", "comm_restored", "bus_down",
 * "bus_restored": the events' "type". */
const char *alarm_event_name(enum alarm_event_type t);

struct alarm_event {
    enum alarm_event_type type;
    int64_t ts;            /* when the engine decided (the poll's time), Unix ms */
    int meter;             /* index of the meter in alarms_new's list; -1 for bus events */
    const char *alarm;     /* raised/cleared: the alarm's name (owned by the engine) */
    double value;          /* raised/cleared: the watched value then; NAN otherwise */
    double threshold;      /* raised/cleared: the threshold crossed (below or above) */
    int64_t since;         /* when the condition began: first sample past the threshold,
                            * first failed poll, first failed poll of the first meter of
                            * the bus; for *_restored/cleared: when the outage began */
    int failures;          /* comm_lost: consecutive failed polls */
    size_t n_meters;       /* bus_down/bus_restored: meters on the bus */
};

typedef void (*alarm_sink_fn)(void *ud, const struct alarm_event *ev);

struct alarms;

/*
 * Creates the engine for the n meters of one bus (meters[i] must outlive it;
 * their profiles come from cfg). fails_to_lost: consecutive failed polls
 * that make a meter comm_lost. sink receives every event, synchronously,
 * from inside the alarms_* call that caused it. now: Unix ms, the "since" of
 * the initial ok state. 0 and *ret (never fails otherwise: allocation aborts).
 */
int alarms_new(const struct config *cfg, const struct cfg_meter *const *meters, size_t n,
               int fails_to_lost, alarm_sink_fn sink, void *ud, int64_t now,
               struct alarms **ret);
void alarms_free(struct alarms *a);

/*
 * Meter i answered at ts with values[p]/valid[p] for each point p of its
 * profile (valid may be NULL: all valid; an invalid or non-finite value
 * leaves its rules as they were). Emits comm_restored/bus_restored, then the
 * alarm transitions.
 */
void alarms_poll_ok(struct alarms *a, size_t i, int64_t ts, const double *values,
                    const bool *valid);

/*
 * Whether a meter failing its polls is comm_lost: with comm_timeout set,
 * after at least two failed polls in a row and comm_timeout seconds since
 * its last good reading (since_ok_ms); without it, at fails_to_lost failed
 * polls in a row. The poller (backoff, logs) and the engine (state, events)
 * both decide with it.
 */
bool alarms_comm_lost_due(const struct cfg_meter *m, int fails, int64_t since_ok_ms,
                          int fails_to_lost);

/* Meter i failed a poll at ts. Emits comm_lost or bus_down when due. */
void alarms_poll_failed(struct alarms *a, size_t i, int64_t ts);

/*
 * Seeds the engine with what was still open when the daemon last stopped
 * (from the alarms table), before the first poll, so a restart neither
 * repeats a raise nor forgets a clear. Unknown alarm names are ignored.
 */
void alarms_seed_alarm(struct alarms *a, size_t i, const char *alarm, int64_t since);
void alarms_seed_comm_lost(struct alarms *a, size_t i, int64_t since);
void alarms_seed_bus_down(struct alarms *a, int64_t since);

/* What the state topic shows for meter i. alarms points into the engine and
 * stays valid until the next alarms_* call on a. */
struct alarms_view {
    enum meter_state state;
    int64_t since;
    const char *const *alarms; /* names of the active alarms, in profile order */
    size_t n_alarms;
};
void alarms_get_view(struct alarms *a, size_t i, struct alarms_view *ret);

/* True once after meter i's view changed (and initially): the caller
 * publishes the state topic then. */
bool alarms_take_changed(struct alarms *a, size_t i);
/* Whether alarms_take_changed would be true for any meter (constant time:
 * the poller asks after every poll). */
bool alarms_any_changed(const struct alarms *a);

/* Number of rules of meter i (the profile's plus derived ones), for tests. */
size_t alarms_rule_count(const struct alarms *a, size_t i);
