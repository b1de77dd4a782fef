/*
 * livetrack.h - the integration tests' view of a running gateway's live
 * messages: per meter, the poll time stamps (and delivery latencies) of its
 * `live` messages, every value compared with the simulator's model as it
 * arrives, and the waits and rate checks built on them. No assertions here
 * (check.h counts per test file): functions report, callers CHECK.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "tests/integration/harness.h"

#define LT_MAX_TS 256
#define LT_MAX_TRACKS 16

struct lt_track {
    const struct cfg_meter *m;
    int64_t ts[LT_MAX_TS];  /* poll time stamps, in arrival order */
    int64_t lat[LT_MAX_TS]; /* reception - poll time stamp, ms */
    size_t n;
};

struct livetrack {
    struct h_sub *sub;
    const struct config *cfg;
    uint64_t seed;
    char prefix[96]; /* "park/GATEWAY/" */
    struct lt_track tracks[LT_MAX_TRACKS];
    size_t n_tracks;
    size_t scanned; /* messages of sub already looked at */
    size_t checked; /* live messages compared with the model */
    int mismatches; /* values (or malformed messages) that differ */
};

/* Tracks every meter of cfg (at most LT_MAX_TRACKS) of the gateway whose
 * live messages sub receives; values are compared with the model of seed. */
void lt_init(struct livetrack *lt, struct h_sub *sub, const struct config *cfg, uint64_t seed);
struct lt_track *lt_track_of(struct livetrack *lt, const char *ent, const char *met);
/* The value of point pi is what the simulator served at the poll's second
 * or the next (the sim may cross a second while serving); *ret_want is the
 * model's value. */
bool lt_value_matches(const struct livetrack *lt, const struct cfg_meter *m, size_t pi,
                      int64_t ts_ms, double got, double *ret_want);
/* Records and checks every live message received since the last call;
 * mismatches are printed and counted. */
void lt_scan(struct livetrack *lt);
/* Waits (scanning) until ent/met has n live values polled at or after t_ms. */
bool lt_wait_polls(struct livetrack *lt, const char *ent, const char *met, int64_t t_ms, size_t n,
                   int timeout_ms);
/* The ts of the first live value of ent/met polled at or after t_ms, or -1
 * after timeout_ms. */
int64_t lt_wait_live_after(struct livetrack *lt, const char *ent, const char *met, int64_t t_ms,
                           int timeout_ms);
/*
 * The meter's polls with from <= ts < to at its 1 s interval: printed, and
 * true when their count is within 10 % of the window, the mean spacing of
 * their slots (a poll's wall-clock second, allowing a wake-up 100 ms early
 * and a start delayed by the queue) within 10 % of 1000 ms, and no poll was
 * skipped (no gap of 1.9 s).
 */
bool lt_check_rate(struct livetrack *lt, const char *ent, const char *met, int64_t from, int64_t to,
                   const char *phase);
