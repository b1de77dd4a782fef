/*
 * payload.h - MQTT topics and JSON payloads of DESIGN.md, built with jansson.
 * Every function returns a malloc'd string the caller frees.
 * Payloads are compact UTF-8 JSON with no trailing newline; "ts" values are
 * integer Unix milliseconds; NaN/Inf never appear (such values are left out).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "<prefix>/<gw>" */
char *topic_base(const char *prefix, const char *gateway_id);
/* "<base>/<ent>/<utility>/<meter>/<leaf>", leaf "live" or "state" */
char *topic_meter(const char *base, const char *ent, const char *utility, const char *meter,
                  const char *leaf);
/* "<base>/status", "<base>/events" */
char *topic_status(const char *base);
char *topic_events(const char *base);
/* "<base>/<ent>/summary", or "<base>/summary" (park totals) when ent is NULL. */
char *topic_summary(const char *base, const char *ent);

/* {"ts":..,"enterprise":..,"meter":..,"utility":..,"values":{name:value,..}}
 * Points with valid[i] false (or a non-finite value) are left out; valid may be
 * NULL (all valid). Compact JSON, no trailing newline. */
char *payload_live(int64_t ts, const char *ent, const char *meter, const char *utility,
                   const char *const *names, const double *values, const bool *valid, size_t n);

/* {"state":"online","version":..,"started":ts,"meters":N} */
char *payload_status_online(const char *version, int64_t started, size_t meters);
/* {"state":"offline"} */
char *payload_status_offline(void);

/* {"ts":..,"state":"ok"|"comm_lost"|"supply_lost","since":ts,"alarms":[..]}
 * 'state' is copied as given; alarms may be NULL when n_alarms is 0 (an empty
 * array is still written). */
char *payload_state(int64_t ts, const char *state, int64_t since, const char *const *alarms,
                    size_t n_alarms);

/* One extra field of an event payload. */
enum payload_field_type { PF_STR, PF_INT, PF_REAL, PF_BOOL };
struct payload_field {
    const char *key;
    enum payload_field_type type;
    union {
        const char *s;
        int64_t i;
        double d;
        bool b;
    };
};

/* {"seq":..,"ts":..,"type":..,<extra fields>}. Extra fields named seq, ts or
 * type are ignored (they cannot override the envelope); a PF_REAL that is not
 * finite and a PF_STR that is NULL are left out. A negative seq leaves "seq"
 * out (durable events: the outbox assigns it when the message is sent). */
char *payload_event(int64_t seq, int64_t ts, const char *type, const struct payload_field *extra,
                    size_t n_extra);
