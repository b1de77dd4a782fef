/*
 * payload.h - MQTT topics and JSON payloads of DESIGN.md, built with jansson,
 * except the live payload, which the poller builds from text prepared once
 * per meter (struct live_payload). Every payload_*() and topic_*() function
 * returns a malloc'd string the caller frees. Payloads are compact UTF-8 JSON
 * with no trailing newline; "ts" values are integer Unix milliseconds;
 * NaN/Inf never appear (such values are left out).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct live_payload;

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
 * Points with valid[i] false (or a non-finite value, or a NULL name) are left
 * out; valid may be NULL (all valid). Values have 15 significant digits. */
char *payload_live(int64_t ts, const char *ent, const char *meter, const char *utility,
                   const char *const *names, const double *values, const bool *valid, size_t n);

/* Significant digits of a point's live value: 7 for a float32 register
 * (scaled, or times PT x CT, but with no offset and no fraction register,
 * which would mix in more precise parts), 15 for everything else. */
int payload_point_digits(const struct cfg_point *pt);
/* How far a reader's parse of point pt's live value may be from the double v
 * it was written from: half a unit of the last digit (at most
 * 0.5 * 10^(1 - digits) of |v|) plus the parse's own rounding. */
double payload_live_tolerance(const struct cfg_point *pt, double v);

/*
 * One meter's live payload, the same text as payload_live(): the constant
 * parts (strings escaped, invalid UTF-8 repaired, each point's key) are
 * prepared once, so a poll only writes the time stamp and the numbers into a
 * buffer that is reused. names[i] NULL leaves point i out; digits may be NULL
 * (15 for every point). Strings are copied. Never NULL (aborts on OOM).
 */
struct live_payload *live_payload_new(const char *ent, const char *meter, const char *utility,
                                      const char *const *names, const int *digits, size_t n);
/* NULL is a no-op. */
void live_payload_free(struct live_payload *lp);
/* The payload for values[0..n) of the n given at creation (valid as for
 * payload_live()), NUL-terminated, its length in *ret_len. The text lives in
 * lp and is overwritten by the next call; no allocation. */
const char *live_payload_build(struct live_payload *lp, int64_t ts, const double *values,
                               const bool *valid, size_t *ret_len);

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
