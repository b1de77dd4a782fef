/*
 * it_e2e.c - the end-to-end path against real processes: mosquitto,
 * parkgw-sim serving three enterprises on two TCP buses, and `parkgw run`.
 * Checks: status online; every meter's first live message within two
 * intervals; live values equal what the simulator served (its model is
 * linked here); the same values in SQLite; SIGTERM publishes offline and
 * exits 0; SIGKILL makes the broker publish the offline LWT. Every wait is
 * on a message, a status line or a process, with a deadline.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "protocols/payload.h"
#include "storage/store.h"
#include "tests/integration/harness.h"
#include "tools/sim/sim_model.h"

#define SEED 20161

static const char *ents[][2] = {
    {"chengtong-plastics", "湖南城通塑业有限公司"},
    {"shirong-packaging", "湖南世容纸塑包装有限公司"},
    {"hongfei-casting", "长沙虹飞机床铸造有限公司"},
};

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    char *ent_text = xstrdup("");
    for (int i = 0; i < 3; i++) {
        char *e = xasprintf(
            "%s%s\n  { id = \"%s\"; name = \"%s\";\n    meters = (\n"
            "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = %d;\n"
            "        profile = \"generic-electricity\"; interval = 2; pt_ratio = 100.0; "
            "ct_ratio = %d.0; },\n"
            "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = %d;\n"
            "        profile = \"generic-water\"; interval = 2; },\n"
            "      { id = \"g1\"; utility = \"gas\"; bus = \"line-a\"; unit_id = %d;\n"
            "        profile = \"generic-gas\"; interval = 3; }\n    ); }",
            ent_text, i ? "," : "", ents[i][0], ents[i][1], 1 + i, 20 + 10 * i, 11 + i, 21 + i);
        free(ent_text);
        ent_text = e;
    }
    char *text = xasprintf(
        "gateway = { id = \"itgw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itgw\";\n"
        "         topic_prefix = \"park\"; summary_interval = 60; };\n"
        "buses = (\n"
        "  { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 500; },\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 500; }\n"
        ");\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (%s\n);\n",
        dir, mqtt_port, sim_port, sim_port, ent_text);
    free(ent_text);
    return text;
}

/* Whether a live value matches the full double it was printed from: 15
 * digits for most points, 7 for float32 registers (payload_point_digits),
 * so up to 5e-7 of the value for those. */
static bool live_matches(const struct cfg_point *pt, double live, double full)
{
    return fabs(live - full) <= payload_live_tolerance(pt, full);
}

/* Compares one live payload with the simulator's model; returns mismatches. */
static int check_live(const struct config *cfg, const struct cfg_meter *m, const char *payload,
                      int64_t *ret_ts, json_t **ret_values)
{
    json_error_t jerr;
    json_t *root = json_loads(payload, 0, &jerr);
    int bad = 0;
    CHECK(root != NULL);
    if (!root)
        return 1;
    json_t *ts = json_object_get(root, "ts");
    json_t *values = json_object_get(root, "values");
    CHECK(json_is_integer(ts));
    CHECK(json_is_object(values));
    CHECK_STR(json_string_value(json_object_get(root, "enterprise")), m->enterprise->id);
    CHECK_STR(json_string_value(json_object_get(root, "meter")), m->id);
    CHECK_STR(json_string_value(json_object_get(root, "utility")), utility_name(m->utility));
    if (!json_is_integer(ts) || !json_is_object(values)) {
        json_decref(root);
        return 1;
    }
    int64_t t_ms = json_integer_value(ts);
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    CHECK_INT(json_object_size(values), prof->n_points);
    for (size_t pi = 0; pi < prof->n_points; pi++) {
        json_t *v = json_object_get(values, prof->points[pi].name);
        if (!json_is_number(v)) {
            fprintf(stderr, "%s/%s: point %s missing from live payload\n", m->enterprise->id,
                    m->id, prof->points[pi].name);
            bad++;
            continue;
        }
        double got = json_number_value(v);
        /* The poll is stamped when it starts; the simulator may have crossed
         * into the next second before serving it. */
        bool match = false;
        double want = 0;
        for (int64_t dt = 0; dt <= 1 && !match; dt++) {
            want = sim_expected_decoded(SEED, cfg, m, pi, t_ms / 1000 + dt, NULL);
            match = live_matches(&prof->points[pi], got, want);
        }
        if (!match) {
            fprintf(stderr, "%s/%s %s at %lld: live %.17g, simulator served %.17g\n",
                    m->enterprise->id, m->id, prof->points[pi].name, (long long)t_ms, got, want);
            bad++;
        }
    }
    *ret_ts = t_ms;
    *ret_values = json_incref(values);
    json_decref(root);
    return bad;
}

struct seen {
    const struct cfg_meter *m;
    int64_t ts;
    json_t *values;
};

static int find_value(void *ud, int64_t ts, double value)
{
    (void)ts;
    double *out = ud;
    *out = value;
    return 1;
}

static struct h_park pk;
static struct config *cfg;
static struct h_sub *sub;
static struct h_msg online;
static struct seen seen[64];
static size_t n_seen;

/* The live topic of meter m (malloc'd). */
static char *live_topic(const struct cfg_meter *m)
{
    return xasprintf("park/itgw/%s/%s/%s/live", m->enterprise->id, utility_name(m->utility),
                     m->id);
}

/* `parkgw check` accepts the config and counts what it polls. */
static void scenario_check_counts(void)
{
    char *out = NULL, *errout = NULL;
    char *check_argv[] = {(char *)pk.parkgw, "check", "-c", pk.gw_cfg, NULL};
    CHECK_INT(h_run(check_argv, &out, &errout, 10000), 0);
    CHECK_CONTAINS(out, "3 enterprises, 9 meters");
    free(out);
    free(errout);
}

/* `parkgw run`: status online (with the meter count and version), then
 * every meter's first live message within two intervals of going online. */
static bool scenario_online_and_first_lives(void)
{
    sub = h_sub_new(pk.mport, "it-e2e-sub", "park/itgw/#");
    h_park_run(&pk, true);
    long idx = h_sub_wait(sub, 0, "park/itgw/status", "\"online\"", 10000);
    CHECK(idx >= 0);
    if (idx < 0)
        return false;
    h_sub_get(sub, (size_t)idx, &online);
    CHECK_CONTAINS(online.payload, "\"meters\":9");
    CHECK_CONTAINS(online.payload, "\"version\"");
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            char *topic = live_topic(m);
            long li = h_sub_wait(sub, 0, topic, NULL, m->interval * 2000 + 1000);
            if (li < 0) {
                fprintf(stderr, "no live message on %s within two intervals\n", topic);
                CHECK(li >= 0);
                free(topic);
                continue;
            }
            struct h_msg msg;
            h_sub_get(sub, (size_t)li, &msg);
            CHECK(msg.rx_ms - online.rx_ms <= m->interval * 2000 + 1000);
            free(topic);
            h_msg_free(&msg);
        }
    return !check_failed;
}

/* Once every meter published twice, every live message so far equals
 * what the simulator served (its model is linked here). */
static void scenario_lives_match_model(void)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            char *topic = live_topic(m);
            CHECK(h_sub_wait_count(sub, 0, topic, NULL, 2, m->interval * 2000 + 2000));
            free(topic);
        }
    size_t total = h_sub_count(sub);
    size_t lives = 0;
    int mismatches = 0;
    for (size_t k = 0; k < total; k++) {
        struct h_msg msg;
        h_sub_get(sub, k, &msg);
        char ent[64], util[32], met[32];
        int end = 0;
        if (sscanf(msg.topic, "park/itgw/%63[^/]/%31[^/]/%31[^/]/live%n", ent, util, met, &end) == 3 &&
            end > 0 && msg.topic[end] == '\0') {
            char em[128];
            snprintf(em, sizeof(em), "%s/%s", ent, met);
            const struct cfg_meter *m = config_find_meter(cfg, em);
            CHECK(m != NULL);
            if (m) {
                CHECK_STR(util, utility_name(m->utility));
                int64_t ts;
                json_t *values = NULL;
                mismatches += check_live(cfg, m, msg.payload, &ts, &values);
                if (values && n_seen < ARRAY_SIZE(seen))
                    seen[n_seen++] = (struct seen){m, ts, values};
                else
                    json_decref(values);
                lives++;
            }
        }
        h_msg_free(&msg);
    }
    CHECK(lives >= 9 * 2);
    CHECK_INT(mismatches, 0);
    printf("compared %zu live messages with the simulator's model\n", lives);
}

/* `parkgw status` beside the running daemon shows its counters (rewritten
 * every 5 s: chengtong-plastics/e1 with polls ok and none failed), the
 * outbox backlog, the daemon and the broker connection. */
static bool status_counted(void *ud)
{
    char **ret_out = ud;
    char *status_argv[] = {(char *)pk.parkgw, "status", "-c", pk.gw_cfg, NULL};
    char *sout = NULL;
    CHECK_INT(h_run(status_argv, &sout, NULL, 10000), 0);
    const char *line = sout ? strstr(sout, "\nchengtong-plastics/e1 ") : NULL;
    long long ok = 0, fail = -1;
    /* "... <counter> kWh  OK/FAIL ..." : find the polls column by its slash. */
    if (line) {
        const char *kwh = strstr(line, " kWh ");
        if (kwh)
            sscanf(kwh + 5, " %lld/%lld", &ok, &fail);
    }
    bool counted = ok >= 1 && fail == 0 && strstr(sout, "outbox: ") &&
                   strstr(sout, "daemon: pid") && strstr(sout, "broker: connected");
    free(*ret_out);
    *ret_out = sout;
    return counted;
}

static void scenario_status_beside_daemon(void)
{
    char *sout = NULL;
    CHECK(h_wait_until(status_counted, &sout, 12000));
    printf("parkgw status:\n%s", sout ? sout : "");
    free(sout);
}

/* SIGTERM: clean stop, offline status published, exit 0. */
static void scenario_sigterm_offline(void)
{
    size_t before_stop = h_sub_count(sub);
    CHECK(h_park_stop_gw(&pk));
    CHECK(h_sub_wait(sub, before_stop, "park/itgw/status", "\"offline\"", 5000) >= 0);
}

/* The values published live are the values stored. */
static void scenario_stored_equals_live(void)
{
    struct store *st;
    char err[512];
    CHECK_INT(store_open(cfg->storage_path ? cfg->storage_path : "", true, &st, err, sizeof(err)),
              0);
    size_t stored_ok = 0;
    for (size_t k = 0; st && k < n_seen; k++) {
        const struct cfg_profile *prof = &cfg->profiles[seen[k].m->profile];
        for (size_t pi = 0; pi < prof->n_points; pi++) {
            uint32_t id;
            double v = NAN;
            json_t *jv = json_object_get(seen[k].values, prof->points[pi].name);
            if (store_find_point(st, seen[k].m->enterprise->id, seen[k].m->id,
                                 prof->points[pi].name, &id) != 0) {
                CHECK(!"point registered in the store");
                continue;
            }
            store_scan(st, id, seen[k].ts, seen[k].ts + 1, find_value, &v);
            double want = json_number_value(jv);
            /* the billing counter is stored as the dial reading (before PT x CT) */
            if (prof->points[pi].billing)
                v *= point_ratio_factor(&prof->points[pi], seen[k].m->pt_ratio,
                                        seen[k].m->ct_ratio);
            if (live_matches(&prof->points[pi], want, v))
                stored_ok++;
            else
                fprintf(stderr, "stored %s/%s %s at %lld: %.17g, live said %.17g\n",
                        seen[k].m->enterprise->id, seen[k].m->id, prof->points[pi].name,
                        (long long)seen[k].ts, v, want);
        }
    }
    size_t expected_points = 0;
    for (size_t k = 0; k < n_seen; k++)
        expected_points += cfg->profiles[seen[k].m->profile].n_points;
    CHECK_INT(stored_ok, expected_points);
    printf("found %zu of %zu live values in SQLite\n", stored_ok, expected_points);
    store_close(st);
}

/* SIGKILL: the broker publishes the retained offline LWT. */
static void scenario_sigkill_lwt(void)
{
    h_park_run(&pk, true);
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait(sub, mark, "park/itgw/status", "\"online\"", 10000) >= 0);
    mark = h_sub_count(sub);
    h_stop(&pk.gw, SIGKILL, 5000);
    CHECK(h_sub_wait(sub, mark, "park/itgw/status", "\"offline\"", 5000) >= 0);
}

int main(void)
{
    h_park_start(&pk, "it_e2e", make_config, SEED);
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    setenv("TZ", "Asia/Shanghai", 1);
    scenario_check_counts();
    if (scenario_online_and_first_lives()) {
        scenario_lives_match_model();
        scenario_status_beside_daemon();
        scenario_sigterm_offline();
        scenario_stored_equals_live();
        scenario_sigkill_lwt();
    }
    for (size_t k = 0; k < n_seen; k++)
        json_decref(seen[k].values);
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    config_free(cfg);
    free(online.topic);
    free(online.payload);
    return check_done();
}
