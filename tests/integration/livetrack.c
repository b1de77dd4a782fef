/*
 * livetrack.c - live messages per meter, checked against the simulator's
 * model, for the integration tests' rate and recovery measurements.
 */
#include "tests/integration/livetrack.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "protocols/payload.h"
#include "tools/sim/sim_model.h"

void lt_init(struct livetrack *lt, struct h_sub *sub, const struct config *cfg, uint64_t seed)
{
    memset(lt, 0, sizeof(*lt));
    lt->sub = sub;
    lt->cfg = cfg;
    lt->seed = seed;
    snprintf(lt->prefix, sizeof(lt->prefix), "park/%s/", cfg->gateway_id);
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters && lt->n_tracks < LT_MAX_TRACKS; i++)
            lt->tracks[lt->n_tracks++].m = &cfg->enterprises[e].meters[i];
}

struct lt_track *lt_track_of(struct livetrack *lt, const char *ent, const char *met)
{
    for (size_t i = 0; i < lt->n_tracks; i++)
        if (!strcmp(lt->tracks[i].m->enterprise->id, ent) && !strcmp(lt->tracks[i].m->id, met))
            return &lt->tracks[i];
    return NULL;
}

bool lt_value_matches(const struct livetrack *lt, const struct cfg_meter *m, size_t pi,
                      int64_t ts_ms, double got, double *ret_want)
{
    for (int64_t dt = 0; dt <= 1; dt++) {
        double want = sim_expected_decoded(lt->seed, lt->cfg, m, pi, ts_ms / 1000 + dt, NULL);
        *ret_want = want;
        /* float32 points are live with 7 digits (payload_point_digits). */
        if (fabs(got - want) <=
            payload_live_tolerance(&lt->cfg->profiles[m->profile].points[pi], want))
            return true;
    }
    return false;
}

/* One live message: its ts recorded, each value compared. */
static void check_live(struct livetrack *lt, const char *ent, const char *met, const char *payload,
                       int64_t rx_ms)
{
    struct lt_track *t = lt_track_of(lt, ent, met);
    json_t *root = json_loads(payload, 0, NULL);
    json_t *values = root ? json_object_get(root, "values") : NULL;
    json_t *jts = root ? json_object_get(root, "ts") : NULL;
    if (!t || !json_is_object(values) || !json_is_integer(jts)) {
        fprintf(stderr, "%s/%s: unexpected live message %s\n", ent, met, payload);
        lt->mismatches++;
        json_decref(root);
        return;
    }
    int64_t ts = json_integer_value(jts);
    if (t->n < LT_MAX_TS) {
        t->lat[t->n] = rx_ms - ts;
        t->ts[t->n++] = ts;
    }
    const struct cfg_profile *prof = &lt->cfg->profiles[t->m->profile];
    for (size_t pi = 0; pi < prof->n_points; pi++) {
        json_t *v = json_object_get(values, prof->points[pi].name);
        double want = 0;
        if (!json_is_number(v) ||
            !lt_value_matches(lt, t->m, pi, ts, json_number_value(v), &want)) {
            fprintf(stderr, "%s/%s %s at %lld: live %s, simulator served %.17g\n", ent, met,
                    prof->points[pi].name, (long long)ts, json_is_number(v) ? "differs" : "missing",
                    want);
            lt->mismatches++;
        }
    }
    lt->checked++;
    json_decref(root);
}

void lt_scan(struct livetrack *lt)
{
    size_t total = h_sub_count(lt->sub), plen = strlen(lt->prefix);
    for (; lt->scanned < total; lt->scanned++) {
        struct h_msg msg;
        if (!h_sub_get(lt->sub, lt->scanned, &msg))
            break;
        char ent[64], util[32], met[32], kind[16];
        /* sscanf cannot tell "/live" from "/state" by a trailing literal */
        if (!strncmp(msg.topic, lt->prefix, plen) &&
            sscanf(msg.topic + plen, "%63[^/]/%31[^/]/%31[^/]/%15s", ent, util, met, kind) == 4 &&
            !strcmp(kind, "live"))
            check_live(lt, ent, met, msg.payload, msg.rx_ms);
        h_msg_free(&msg);
    }
}

int64_t lt_wait_live_after(struct livetrack *lt, const char *ent, const char *met, int64_t t_ms,
                           int timeout_ms)
{
    struct lt_track *t = lt_track_of(lt, ent, met);
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        lt_scan(lt);
        for (size_t i = 0; t && i < t->n; i++)
            if (t->ts[i] >= t_ms)
                return t->ts[i];
        if (now_mono_ms() >= deadline)
            return -1;
        sleep_ms(50);
    }
}

bool lt_wait_polls(struct livetrack *lt, const char *ent, const char *met, int64_t t_ms, size_t n,
                   int timeout_ms)
{
    struct lt_track *t = lt_track_of(lt, ent, met);
    int64_t deadline = now_mono_ms() + timeout_ms;
    for (;;) {
        lt_scan(lt);
        size_t got = 0;
        for (size_t i = 0; t && i < t->n; i++)
            got += t->ts[i] >= t_ms;
        if (got >= n)
            return true;
        if (now_mono_ms() >= deadline) {
            fprintf(stderr, "%s/%s: %zu of %zu live values polled after %lld\n", ent, met, got, n,
                    (long long)t_ms);
            return false;
        }
        sleep_ms(50);
    }
}

bool lt_check_rate(struct livetrack *lt, const char *ent, const char *met, int64_t from, int64_t to,
                   const char *phase)
{
    struct lt_track *t = lt_track_of(lt, ent, met);
    int64_t first = -1, last = -1, max_gap = 0, prev = -1;
    size_t n = 0;
    for (size_t i = 0; t && i < t->n; i++) {
        int64_t ts = t->ts[i];
        if (ts < from || ts >= to)
            continue;
        if (first < 0)
            first = ts;
        if (prev >= 0 && ts - prev > max_gap)
            max_gap = ts - prev;
        prev = last = ts;
        n++;
    }
    double window_s = (double)(to - from) / 1000.0;
    double mean = n > 1 ? (double)(last - first) / (double)(n - 1) : 0;
    int64_t first_slot = (first + 100) / 1000, last_slot = (last + 100) / 1000;
    double slot_mean = n > 1 ? (double)(last_slot - first_slot) * 1000.0 / (double)(n - 1) : 0;
    printf("%-28s %s/%s: %zu polls in %.1f s, mean spacing %.0f ms (slots %.0f ms), largest "
           "gap %lld ms\n",
           phase, ent, met, n, window_s, mean, slot_mean, (long long)max_gap);
    return (double)n >= floor(window_s * 0.9) - 1 && (double)n <= window_s * 1.1 + 1 &&
           slot_mean >= 900 && slot_mean <= 1100 && max_gap < 1900;
}
