/*
 * it_reload.c - SIGHUP against real processes (mosquitto, parkgw-sim,
 * parkgw run). An invalid config is refused: the process lives, the log
 * names FILE:LINE, live values continue. A valid config that removes one
 * meter and adds another on bus line-a is applied (the new meter's live
 * messages appear, the removed one's stop) while bus rmu-1, unchanged,
 * keeps its thread: its meter has exactly one sample per 1 s slot around
 * the reload in SQLite, and the unchanged meter on the restarted bus misses
 * no slot. The test waits for live values polled at given times (their
 * "ts"), not for fixed times.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "storage/store.h"
#include "tests/integration/harness.h"

#define SEED 4242

/* Config A: rmu-1 = chengtong/e1; line-a = chengtong/w1 + shirong/w1.
 * Config B: rmu-1 unchanged; line-a = shirong/w1 + shirong/g1 (w1 of
 * chengtong removed, g1 of shirong added). The sim serves the union. */
enum variant { CFG_A, CFG_B, CFG_SIM };

static char *make_config(const char *dir, int mqtt_port, int sim_port, enum variant v)
{
    const char *cw1 = "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
                      "        profile = \"generic-water\"; interval = 1; },\n";
    const char *sg1 = ",\n      { id = \"g1\"; utility = \"gas\"; bus = \"line-a\"; unit_id = 22;\n"
                      "        profile = \"generic-gas\"; interval = 1; }";
    return xasprintf(
        "gateway = { id = \"itrl\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itrl\"; };\n"
        "buses = (\n"
        "  { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 500; },\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 500; }\n"
        ");\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\";\n"
        "    meters = (\n"
        "%s"
        "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "        profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 40.0; }\n"
        "    ); },\n"
        "  { id = \"shirong-packaging\"; name = \"湖南世容纸塑包装有限公司\";\n"
        "    meters = (\n"
        "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 12;\n"
        "        profile = \"generic-water\"; interval = 1; }%s\n"
        "    ); }\n"
        ");\n",
        dir, mqtt_port, sim_port, sim_port, v == CFG_B ? "" : cw1, v == CFG_A ? "" : sg1);
}

struct series {
    int64_t ts[256];
    size_t n;
};

static int collect(void *ud, int64_t ts, double value)
{
    UNUSED(value);
    struct series *s = ud;
    if (s->n < ARRAY_SIZE(s->ts))
        s->ts[s->n++] = ts;
    return 0;
}

/* Samples of ENT/METER/POINT with from <= ts < to. */
static void load_series(struct store *st, const char *ent, const char *meter, const char *point,
                        int64_t from, int64_t to, struct series *s)
{
    uint32_t id;
    s->n = 0;
    CHECK_INT(store_find_point(st, ent, meter, point, &id), 0);
    CHECK_INT(store_scan(st, id, from, to, collect, s), 0);
}

/* Largest gap between consecutive samples, including the window's edges. */
static int64_t max_gap(const struct series *s, int64_t from, int64_t to)
{
    int64_t prev = from, gap = 0;
    for (size_t i = 0; i <= s->n; i++) {
        int64_t t = i < s->n ? s->ts[i] : to;
        if (t - prev > gap)
            gap = t - prev;
        prev = t;
    }
    return gap;
}

#define T_E1 "park/itrl/chengtong-plastics/electricity/e1/live"
#define T_CW1 "park/itrl/chengtong-plastics/water/w1/live"
#define T_SW1 "park/itrl/shirong-packaging/water/w1/live"
#define T_SG1 "park/itrl/shirong-packaging/gas/g1/live"

static struct h_park pk;
static struct h_sub *sub;
static char *text_a, *text_b;
static int64_t reload_ms;

/* The sim serves the union of both configs; the gateway starts on A. */
static char *make_config_park(const char *dir, int mqtt_port, int sim_port)
{
    return make_config(dir, mqtt_port, sim_port, sim_port == 502 ? CFG_SIM : CFG_A);
}

/* The poll time stamp ("ts") of live message i, or -1. */
static int64_t live_ts(size_t i)
{
    struct h_msg m;
    if (!h_sub_get(sub, i, &m))
        return -1;
    json_t *root = json_loads(m.payload, 0, NULL);
    json_t *ts = json_object_get(root, "ts");
    int64_t v = json_is_integer(ts) ? json_integer_value(ts) : -1;
    json_decref(root);
    h_msg_free(&m);
    return v;
}

/* Waits for a live message on topic polled at or after t_ms; its ts or -1. */
static int64_t wait_polled_after(const char *topic, int64_t t_ms, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    for (size_t from = 0;;) {
        long i = h_sub_wait(sub, from, topic, NULL, h_left_ms(end));
        if (i < 0)
            return -1;
        int64_t ts = live_ts((size_t)i);
        if (ts >= t_ms)
            return ts;
        from = (size_t)i + 1;
    }
}

/* Live messages on topic polled in [from, to). */
static size_t count_polled(const char *topic, int64_t from, int64_t to)
{
    size_t n = 0, total = h_sub_count(sub);
    for (size_t i = 0; i < total; i++) {
        struct h_msg m;
        if (!h_sub_get(sub, i, &m))
            continue;
        bool hit = strcmp(m.topic, topic) == 0;
        h_msg_free(&m);
        if (hit) {
            int64_t ts = live_ts(i);
            n += ts >= from && ts < to;
        }
    }
    return n;
}

/* Config A runs: online, live values of both buses; then it polls until
 * e1 was read 4 s after its first read, so that the window checked in
 * SQLite (reload - 4 s) starts after the read at start-up, which comes at
 * once and is followed by the first aligned slot less than 1 s later. */
static bool scenario_running(void)
{
    text_a = make_config(pk.dir, pk.mport, pk.sport, CFG_A);
    text_b = make_config(pk.dir, pk.mport, pk.sport, CFG_B);
    sub = h_sub_new(pk.mport, "it-reload-sub", "park/itrl/#");
    h_park_run(&pk, false);
    CHECK(h_sub_wait(sub, 0, "park/itrl/status", "\"online\"", 10000) >= 0);
    int64_t first = wait_polled_after(T_E1, 0, 5000);
    CHECK(first > 0);
    CHECK(h_sub_wait(sub, 0, T_CW1, NULL, 5000) >= 0);
    CHECK(wait_polled_after(T_E1, first + 4000, 8000) > 0);
    return !check_failed;
}

/* An invalid config: refused with FILE:LINE, the process lives, the old
 * config keeps polling. The bad line is appended after config A's lines,
 * so its number is A's line count + 1. */
static void scenario_invalid_config_refused(void)
{
    int a_lines = 0;
    for (const char *c = text_a; *c; c++)
        a_lines += *c == '\n';
    char *bad = xasprintf("%sbogus_key = 5;\n", text_a);
    h_write_file(pk.gw_cfg, bad);
    free(bad);
    char *where = xasprintf("%s:%d: unknown setting 'bogus_key'", pk.gw_cfg, a_lines + 1);
    kill(pk.gw.pid, SIGHUP);
    CHECK(h_wait_log(&pk.gw, "reload refused, keeping the running configuration", 1, 5000));
    CHECK(h_log_count(&pk.gw, where) == 1);
    if (h_log_count(&pk.gw, where) != 1)
        fprintf(stderr, "expected the log to name \"%s\"\n", where);
    CHECK(h_alive(&pk.gw));
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait(sub, mark, T_E1, NULL, 3000) >= 0);
    CHECK(h_sub_wait(sub, mark, T_CW1, NULL, 3000) >= 0);
    free(where);
}

/* Config B applied: rmu-1 keeps its thread, line-a restarts; the added
 * meter is read at once, the removed one publishes nothing polled after
 * the reload (500 ms for a poll already under way), the others keep their
 * 1 s slots: 3 or 4 live values in [reload + 0.5 s, reload + 4 s). Runs
 * until both were read 3 s after the reload: that 1 s slot is the last one
 * before the SQLite window's end (reload + 4 s). */
static void scenario_valid_reload(void)
{
    h_write_file(pk.gw_cfg, text_b);
    /* Sent mid-slot (at x.500 s): the window edges (reload +- 4 s, +0.5 s)
     * then lie half a second from the 1 s slots, so a poll stamped a little
     * late on a loaded machine stays on its side of an edge. */
    while (now_real_ms() % 1000 < 500 || now_real_ms() % 1000 > 600)
        sleep_ms(5);
    reload_ms = now_real_ms();
    kill(pk.gw.pid, SIGHUP);
    CHECK(h_wait_log(&pk.gw, "configuration reloaded", 1, 5000));
    CHECK(h_log_count(&pk.gw, "bus rmu-1 unchanged, keeps polling") == 1);
    CHECK(h_log_count(&pk.gw, "bus line-a unchanged") == 0);
    CHECK(h_log_count(&pk.gw, "(1 buses kept running)") == 1);
    CHECK(h_alive(&pk.gw));
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait(sub, mark, T_SG1, NULL, 3000) >= 0);
    CHECK(wait_polled_after(T_E1, reload_ms + 3000, 8000) > 0);
    CHECK(wait_polled_after(T_SW1, reload_ms + 3000, 3000) > 0);
    size_t cw1_after = count_polled(T_CW1, reload_ms + 500, INT64_MAX);
    size_t e1_after = count_polled(T_E1, reload_ms + 500, reload_ms + 4000);
    size_t sw1_after = count_polled(T_SW1, reload_ms + 500, reload_ms + 4000);
    printf("after the reload: e1 %zu, shirong/w1 %zu, chengtong/w1 %zu live values\n", e1_after,
           sw1_after, cw1_after);
    CHECK_INT(cw1_after, 0);
    CHECK(e1_after >= 3 && e1_after <= 4);
    CHECK(sw1_after >= 3 && sw1_after <= 4);
    CHECK(h_park_stop_gw(&pk));
}

/* SQLite around the reload, [reload - 4 s, reload + 4 s). */
static void scenario_stored_around_reload(void)
{
    struct store *st;
    char err[512];
    char *db = xasprintf("%s/parkgw.db", pk.dir);
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    free(db);
    if (!st)
        return;
    int64_t from = reload_ms - 4000, to = reload_ms + 4000;
    struct series s;
    /* Kept thread: one sample per slot. 8 s of 1 s slots = 8 samples; no
     * slot read twice (a second read would follow within a few ms; a poll
     * started late on a loaded machine still leaves > 0.5 s); and no gap
     * above one interval plus scheduling slack (1.6 s). */
    load_series(st, "chengtong-plastics", "e1", "energy_import_kwh", from, to, &s);
    CHECK_INT(s.n, 8);
    bool dup = false;
    for (size_t i = 1; i < s.n; i++)
        dup |= s.ts[i] - s.ts[i - 1] < 500;
    CHECK(!dup);
    if (dup)
        for (size_t i = 0; i < s.n; i++)
            fprintf(stderr, "e1 sample %zu at %lld (reload at %lld)\n", i, (long long)s.ts[i],
                    (long long)reload_ms);
    CHECK(max_gap(&s, from, to) <= 1600);
    printf("unchanged bus: %zu samples in 8 s around the reload, max gap %lld ms\n", s.n,
           (long long)max_gap(&s, from, to));
    /* Unchanged meter on the restarted bus: read at once by the new thread,
     * so no slot is missed (an extra read is allowed). */
    load_series(st, "shirong-packaging", "w1", "total_m3", from, to, &s);
    CHECK(s.n >= 8);
    CHECK(max_gap(&s, from, to) <= 1600);
    printf("restarted bus, unchanged meter: %zu samples, max gap %lld ms\n", s.n,
           (long long)max_gap(&s, from, to));
    /* The removed meter stops at the reload, the added one starts. */
    load_series(st, "chengtong-plastics", "w1", "total_m3", reload_ms + 500, to, &s);
    CHECK_INT(s.n, 0);
    load_series(st, "shirong-packaging", "g1", "volume_nm3", reload_ms, to, &s);
    CHECK(s.n >= 3);
    store_close(st);
}

int main(void)
{
    h_park_start(&pk, "it_reload", make_config_park, SEED);
    if (scenario_running()) {
        scenario_invalid_config_refused();
        scenario_valid_reload();
        scenario_stored_around_reload();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    free(text_a);
    free(text_b);
    return check_done();
}
