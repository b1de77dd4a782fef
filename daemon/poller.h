/*
 * poller.h - the poll scheduler: one thread per bus, one libmodbus context
 * each, meters read at wall-clock multiples of their interval. Each poll's
 * samples go to the writer queue and its live values to MQTT; the thread
 * never waits on SQLite or the broker. A meter that keeps failing is marked
 * comm_lost and retried with capped exponential backoff so it costs its bus
 * at most one timeout per backoff period.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "config/config.h"
#include "engine/alarms.h"

struct writer;
struct mqtt;
struct store;
struct poller;

/* Failures after which a meter is comm_lost; backoff bounds (ms). */
#define POLL_FAILS_TO_LOST 3
#define POLL_BACKOFF_MIN_MS 1000
#define POLL_BACKOFF_MAX_MS 60000

/* Room for a meter's active alarm names in its stats (truncated beyond). */
#define POLLER_ALARMS_LEN 128

struct poller_meter_stats {
    const struct cfg_meter *meter;
    bool comm_lost;
    uint64_t polls, polls_ok;
    uint64_t timeouts, exceptions, bad_replies, conn_errors, bad_values;
    int64_t last_ok_ts;            /* Unix ms of the last good poll, 0 = never */
    int consecutive_failures;
    int last_error;                /* bus_read error of the last failure */
    uint64_t busy_us;              /* time spent polling it (bus exchanges, decoding) */
    /* The alarm engine's view (what the state topic shows), as of the last
     * change; state_since 0 until the first poll decided it. */
    enum meter_state state;
    int64_t state_since;
    char alarms[POLLER_ALARMS_LEN]; /* active alarm names, comma-separated */
};

/* What the pollers need from the rest of the daemon. */
struct poller_env {
    const struct config *cfg;
    struct writer *writer;         /* may be NULL (no storage) */
    struct mqtt *mqtt;             /* may be NULL (no broker) */
    const char *topic_base;        /* "<prefix>/<gw>" */
    uint32_t **point_ids;          /* [meter global index][point index] */
};

/*
 * Starts one thread for bus 'bus_index' of env->cfg, polling every meter on
 * it. 0 and *ret, or -errno. env and the config must outlive the poller.
 */
int poller_start(const struct poller_env *env, int bus_index, struct poller **ret);

/* Asks the thread to stop, joins it and frees the poller. NULL is a no-op. */
void poller_stop(struct poller *p);

/* Monotonic ms of the thread's last loop iteration (watchdog progress). */
int64_t poller_last_progress(struct poller *p);

/* Copies meter stats; returns how many were written (<= max). */
size_t poller_get_stats(struct poller *p, struct poller_meter_stats *out, size_t max);

/* The decoded values of the last good poll of the poller's meter i (the
 * order of poller_get_stats; points in profile order): copies up to max of
 * them into values/valid and returns how many, with the poll's Unix ms in
 * *ret_ts (0 and no values before the first good poll) and the point names
 * in *ret_names and their significant digits (payload_point_digits) in
 * *ret_digits (both owned by the poller, valid until poller_stop). */
size_t poller_get_values(struct poller *p, size_t i, double *values, bool *valid, size_t max,
                         int64_t *ret_ts, const char *const **ret_names, const int **ret_digits);

/* Global index of a meter in config order (enterprise by enterprise). */
size_t poller_meter_index(const struct config *cfg, const struct cfg_meter *m);
