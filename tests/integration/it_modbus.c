/*
 * it_modbus.c - Modbus fault handling against real processes: parkgw-sim
 * serving an RTU line on a pty (three water meters) and a TCP gateway (three
 * water meters and a TUF-2000M with an integer + fraction totaliser),
 * mosquitto, and `parkgw run`. Both buses go through the same faults at the
 * same time: a dead meter (the others keep their 1 s rate within 10 %), a
 * late reply beyond the timeout (never stored or published as anyone's
 * value), recovery within the backoff bound once faults clear, a TCP drop
 * and an unplugged RTU adapter (both reconnect); then a slow meter whose
 * reply must not hold back the live messages of the meters polled before it
 * (the poller's live batch). Every live message and every stored sample is
 * compared with the simulator's model. Each phase lasts until what it
 * measures has happened (a number of polls of the other meters, the fault
 * seen in the log), with a deadline, not a fixed time.
 */
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
#include "tests/integration/livetrack.h"

#define SEED 4242
#define RTU_TIMEOUT_MS 200
#define TCP_TIMEOUT_MS 250
#define RTU_DELAY_MS 350 /* beyond the timeout, inside the line's settle window */
#define TCP_DELAY_MS 400

static char *make_config(const char *dir, int mqtt_port, int sim_port, int baud)
{
    return xasprintf(
        "gateway = { id = \"itmb\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itmb\"; };\n"
        "buses = (\n"
        "  { name = \"line-a\"; type = \"rtu\"; device = \"%s/ttyUSB-a\"; baud = %d;\n"
        "    parity = \"E\"; timeout_ms = %d; rs485 = true; },\n"
        "  { name = \"rmu-b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = %d; }\n"
        ");\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/tuf-2000m.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"xinhua-tiles\"; name = \"RTU line\"; meters = (\n"
        "    { id = \"m1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 1;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"m2\"; utility = \"water\"; bus = \"line-a\"; unit_id = 2;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"m3\"; utility = \"water\"; bus = \"line-a\"; unit_id = 3;"
        " profile = \"generic-water\"; interval = 1; } ); },\n"
        "  { id = \"dongfang-cable\"; name = \"TCP gateway\"; meters = (\n"
        "    { id = \"m1\"; utility = \"water\"; bus = \"rmu-b\"; unit_id = 11;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"m2\"; utility = \"water\"; bus = \"rmu-b\"; unit_id = 12;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"m3\"; utility = \"water\"; bus = \"rmu-b\"; unit_id = 13;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"ww\"; utility = \"wastewater\"; bus = \"rmu-b\"; unit_id = 14;"
        " profile = \"tuf-2000m\"; interval = 1; } ); }\n"
        ");\n",
        dir, mqtt_port, dir, baud, RTU_TIMEOUT_MS, sim_port, TCP_TIMEOUT_MS);
}

static const char *RTU_ENT = "xinhua-tiles", *TCP_ENT = "dongfang-cable";

static struct h_park pk;
static struct config *cfg;
static struct h_sub *sub;
static struct livetrack lt;

static void check_rate(const char *ent, const char *met, int64_t from, int64_t to,
                       const char *phase)
{
    CHECK(lt_check_rate(&lt, ent, met, from, to, phase));
}

static int64_t wait_live_after(const char *ent, const char *met, int64_t t_ms, int timeout_ms)
{
    return lt_wait_live_after(&lt, ent, met, t_ms, timeout_ms);
}

static bool wait_polls(const char *ent, const char *met, int64_t t_ms, size_t n, int timeout_ms)
{
    return lt_wait_polls(&lt, ent, met, t_ms, n, timeout_ms);
}

/* Recovery: the first live value polled after the fault cleared at t_clear
 * comes within 'bound_ms'. */
static void check_recovery(const char *ent, const char *met, int64_t t_clear, int64_t bound_ms,
                           const char *what)
{
    int64_t ts = wait_live_after(ent, met, t_clear, (int)bound_ms + 2000);
    printf("%-28s %s/%s: live again %lld ms after the fault cleared (bound %lld ms)\n", what, ent,
           met, ts < 0 ? -1LL : (long long)(ts - t_clear), (long long)bound_ms);
    CHECK(ts >= 0);
    if (ts >= 0)
        CHECK(ts - t_clear <= bound_ms);
}

/* Both buses: 'met' on each polled n times at or after t_ms. */
static bool wait_polls_both(const char *met, int64_t t_ms, size_t n, int timeout_ms)
{
    bool a = wait_polls(RTU_ENT, met, t_ms, n, timeout_ms);
    return wait_polls(TCP_ENT, met, t_ms, n, timeout_ms) && a;
}

struct scan_ctx {
    const struct cfg_meter *m;
    size_t pi;
    size_t n, bad;
};

static int check_sample(void *ud, int64_t ts, double value)
{
    struct scan_ctx *c = ud;
    double want;
    c->n++;
    if (!lt_value_matches(&lt, c->m, c->pi, ts, value, &want)) {
        if (c->bad++ < 5)
            fprintf(stderr, "stored %s/%s %s at %lld: %.17g, simulator served %.17g\n",
                    c->m->enterprise->id, c->m->id, cfg->profiles[c->m->profile].points[c->pi].name,
                    (long long)ts, value, want);
    }
    return 0;
}

static char *make_config_9600(const char *dir, int mqtt_port, int sim_port)
{
    return make_config(dir, mqtt_port, sim_port, 9600);
}

static int64_t t_start;

/* The sim serves the RTU line on a pty (its path appears) and the TCP
 * gateway; the gateway's config is loaded and every meter has a track. */
static void setup(void)
{
    h_park_start(&pk, "it_modbus", make_config_9600, SEED);
    char *dev = xasprintf("%s/ttyUSB-a", pk.dir);
    CHECK(h_wait_path(dev, 10000));
    free(dev);
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        exit(2);
    }
}

/* `parkgw check`: the RTU line's load from the wire-time formula. A
 * generic-water meter is one request of registers 0..8 (the gaps 2-3 and
 * 6-7 are bridged): 20 + 2 x 9 = 38 characters of 11 bits (8E1), 38 x 11 /
 * 9600 = 43.5 ms + 10 ms turnaround = 53.5 ms per meter and second; three
 * meters: 16.1 %. At 1200 baud: 348.3 + 10 = 358.3 ms, three meters
 * 107.5 %: over capacity, an error-level message. */
static void scenario_check_line_load(void)
{
    char *out = NULL, *errout = NULL;
    char *check_argv[] = {(char *)pk.parkgw, "check", "-c", pk.gw_cfg, NULL};
    CHECK_INT(h_run(check_argv, &out, &errout, 10000), 0);
    CHECK_CONTAINS(out, "16.1% of 9600 baud");
    CHECK(errout && !strstr(errout, "error"));
    free(out);
    free(errout);
    char *slow_cfg = xasprintf("%s/slow.cfg", pk.dir);
    char *text = make_config(pk.dir, pk.mport, pk.sport, 1200);
    h_write_file(slow_cfg, text);
    free(text);
    check_argv[3] = slow_cfg;
    h_run(check_argv, &out, &errout, 10000);
    CHECK_CONTAINS(out, "107.5% of 1200 baud  OVER CAPACITY");
    CHECK_CONTAINS(errout, "error: bus line-a needs 10");
    CHECK_CONTAINS(errout, "cannot keep its schedule");
    free(out);
    free(errout);
    free(slow_cfg);
}

/* `parkgw run`: online, and every meter publishes: both buses work, RS-485
 * refused by the pty is only a warning. */
static bool scenario_start(void)
{
    sub = h_sub_new(pk.mport, "it-modbus-sub", "park/itmb/#");
    lt_init(&lt, sub, cfg, SEED);
    h_park_run(&pk, false);
    if (h_sub_wait(sub, 0, "park/itmb/status", "\"online\"", 10000) < 0) {
        CHECK(!"parkgw goes online");
        return false;
    }
    t_start = now_real_ms();
    for (size_t i = 0; i < lt.n_tracks; i++)
        CHECK(wait_live_after(lt.tracks[i].m->enterprise->id, lt.tracks[i].m->id, 0, 5000) >= 0);
    CHECK(h_log_count(&pk.gw, "refuses RS-485 mode") == 1);
    return !check_failed;
}

static int64_t t_dead, t_late;

/* A dead meter: m1 stops answering on both buses for 6 polls of the others;
 * m2 and m3 keep their 1 s rate within 10 % meanwhile, and m1 is read again
 * within its backoff bound once it answers (checked in scenario_late_meter,
 * which clears the fault). */
static void scenario_dead_meter(void)
{
    t_dead = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault %s/m1 noreply", RTU_ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/m1 noreply", TCP_ENT));
    CHECK(h_wait_log(&pk.gw, "xinhua-tiles/m1 (bus line-a, unit 1): read failed", 1, 5000));
    CHECK(h_wait_log(&pk.gw, "dongfang-cable/m1 (bus rmu-b, unit 11): read failed", 1, 5000));
    CHECK(wait_polls_both("m3", t_dead, 6, 12000));
}

/* m1 back; m2 answers late (beyond the timeout: never stored or published
 * as anyone's value) and the TUF meter with exception 2 for 5 polls of m3.
 * m3 keeps its rate; the dead m1 and then the late m2 and the TUF meter
 * are read again within their backoff bounds once cleared; the exception
 * is logged by name. */
static void scenario_late_meter(void)
{
    t_late = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault %s/m1 none", RTU_ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/m1 none", TCP_ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/m2 delay %d", RTU_ENT, RTU_DELAY_MS));
    CHECK(h_sim_do(&pk.sim, "fault %s/m2 delay %d", TCP_ENT, TCP_DELAY_MS));
    CHECK(h_sim_do(&pk.sim, "fault %s/ww exception 2", TCP_ENT));
    lt_scan(&lt);
    for (const char *const *ent = (const char *const[]){RTU_ENT, TCP_ENT, NULL}; *ent; ent++) {
        check_rate(*ent, "m2", t_dead, t_late, "dead m1:");
        check_rate(*ent, "m3", t_dead, t_late, "dead m1:");
    }
    /* Backoff bound: m1 failed since t_dead and waits double from 1 s, so
     * the wait running when the fault clears is at most (t_late - t_dead) +
     * 1 s; one more interval for the poll itself. */
    check_recovery(RTU_ENT, "m1", t_late, (t_late - t_dead) + 2000, "dead m1 cleared:");
    check_recovery(TCP_ENT, "m1", t_late, (t_late - t_dead) + 2000, "dead m1 cleared:");
    /* The late replies and the exception were seen: m1 twice and m2 twice
     * timed out; the exception was logged by name (a failing meter logs its
     * state changes, not every poll). */
    CHECK(h_wait_log(&pk.gw, "read failed: timeout (no reply)", 4, 5000));
    CHECK(h_wait_log(&pk.gw, "exception 2 (illegal data address)", 1, 5000));
    CHECK(wait_polls_both("m3", t_late, 5, 12000));

    int64_t t_clear = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault %s/m2 none", RTU_ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/m2 none", TCP_ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/ww none", TCP_ENT));
    lt_scan(&lt);
    check_rate(RTU_ENT, "m3", t_late, t_clear, "late m2:");
    check_rate(TCP_ENT, "m3", t_late, t_clear, "late m2:");
    check_recovery(RTU_ENT, "m2", t_clear, (t_clear - t_late) + 2000, "late m2 cleared:");
    check_recovery(TCP_ENT, "m2", t_clear, (t_clear - t_late) + 2000, "late m2 cleared:");
    check_recovery(TCP_ENT, "ww", t_clear, (t_clear - t_late) + 2000, "exception cleared:");
}

/* The TCP gateway drops the connection whenever m3 is asked (for two poll
 * rounds of that bus) while the RTU adapter is unplugged (until the bus
 * has failed to reopen it); then both are back: every meter reconnects
 * within its bound, the other TCP meters lose one read per drop at most,
 * and the schedule held. */
static void scenario_tcp_drop_and_unplug(void)
{
    int64_t t_fault = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault %s/m3 drop", TCP_ENT));
    CHECK(h_sim_do(&pk.sim, "unplug line-a"));
    CHECK(h_wait_log(&pk.gw, "dongfang-cable/m3 (bus rmu-b, unit 13): read failed", 1, 5000));
    CHECK(h_wait_log(&pk.gw, "cannot connect", 1, 5000));
    CHECK(wait_polls(TCP_ENT, "m1", t_fault + 1, 2, 5000));
    int64_t t_back = now_real_ms();
    CHECK(h_sim_do(&pk.sim, "fault %s/m3 none", TCP_ENT));
    CHECK(h_sim_do(&pk.sim, "plug line-a"));
    /* TCP: each drop costs one read; m3 fails twice (not yet comm_lost), so
     * its next aligned poll reconnects: within 2 intervals. */
    check_recovery(TCP_ENT, "m3", t_back, 2000, "tcp drop cleared:");
    /* RTU: the bus retries the device after 0.5, 1, 2 s (3.5 s after the
     * unplug, 1.5 s after the plug at most), the meters after their own
     * backoff (at most the outage + 1 s): bound 1.5 + 3 + 1 s. */
    check_recovery(RTU_ENT, "m1", t_back, 5500, "rtu replugged:");
    check_recovery(RTU_ENT, "m2", t_back, 5500, "rtu replugged:");
    check_recovery(RTU_ENT, "m3", t_back, 5500, "rtu replugged:");
    /* The others on the TCP gateway lose one read per drop at most and
     * reconnect at once: their rate over the drop and one more poll. */
    int64_t t_end = wait_live_after(TCP_ENT, "m1", now_real_ms() + 500, 3000);
    CHECK(t_end > 0);
    check_rate(TCP_ENT, "m1", t_fault - 3000, t_end + 1, "tcp drop of m3:");
    CHECK(h_log_count(&pk.gw, "cannot connect") >= 1);
    CHECK(h_wait_log(&pk.gw, "connected again", 1, 3000));
    /* One dead or late meter at a time is no overload: the schedule held. */
    CHECK_INT(h_log_count(&pk.gw, "falls behind"), 0);
}

/* m3 on the TCP gateway answers every poll 180 ms late (inside the
 * timeout). The live messages of m1 and m2, polled just before it in the
 * same second, must not wait for its reply in the poller's live batch
 * (daemon/poller.c, LIVE_BATCH_MS): after the first slow poll the poller
 * knows m3 is slow and sends the batch before asking it. Six polls each
 * are looked at, after the first 1.5 s. */
static void scenario_slow_meter_holds_back_none(void)
{
    CHECK(h_sim_do(&pk.sim, "fault %s/m3 delay 180", TCP_ENT));
    int64_t t5 = now_real_ms();
    CHECK(wait_polls(TCP_ENT, "m1", t5 + 1500, 6, 12000));
    CHECK(wait_polls(TCP_ENT, "m2", t5 + 1500, 6, 3000));
    CHECK(h_sim_do(&pk.sim, "fault %s/m3 none", TCP_ENT));
    lt_scan(&lt);
    for (const char *const *met = (const char *const[]){"m1", "m2", NULL}; *met; met++) {
        struct lt_track *t = lt_track_of(&lt, TCP_ENT, *met);
        size_t n = 0, held = 0;
        int64_t worst = 0;
        for (size_t i = 0; t && i < t->n; i++) {
            if (t->ts[i] < t5 + 1500)
                continue;
            n++;
            held += t->lat[i] > 120;
            if (t->lat[i] > worst)
                worst = t->lat[i];
        }
        printf("%-28s %s/%s: %zu live messages, %zu later than 120 ms after their poll "
               "(worst %lld ms)\n", "slow m3 behind it:", TCP_ENT, *met, n, held,
               (long long)worst);
        CHECK(n >= 5);
        CHECK(held <= 1);
    }
}

/* Stop; every published value was the meter's own, and so was every
 * stored sample (late replies included, had any been taken). */
static void scenario_every_value_is_the_meters(void)
{
    CHECK(h_park_stop_gw(&pk));
    lt_scan(&lt);
    printf("compared %zu live messages with the simulator's model: %d mismatches\n", lt.checked,
           lt.mismatches);
    /* ~20 s of 7 meters at 1 s, less the failed polls: well over 60. */
    CHECK(lt.checked >= 60);
    CHECK_INT(lt.mismatches, 0);

    struct store *st = NULL;
    char err[512];
    CHECK_INT(store_open(cfg->storage_path, true, &st, err, sizeof(err)), 0);
    size_t stored = 0, stored_bad = 0;
    for (size_t i = 0; st && i < lt.n_tracks; i++) {
        const struct lt_track *tr = &lt.tracks[i];
        const struct cfg_profile *prof = &cfg->profiles[tr->m->profile];
        for (size_t pi = 0; pi < prof->n_points; pi++) {
            uint32_t id;
            if (store_find_point(st, tr->m->enterprise->id, tr->m->id,
                                 prof->points[pi].name, &id) != 0) {
                CHECK(!"point registered in the store");
                continue;
            }
            struct scan_ctx c = {.m = tr->m, .pi = pi};
            CHECK_INT(store_scan(st, id, t_start - 60000, now_real_ms() + 1000, check_sample, &c),
                      0);
            stored += c.n;
            stored_bad += c.bad;
        }
    }
    store_close(st);
    printf("compared %zu stored samples with the simulator's model: %zu mismatches\n", stored,
           stored_bad);
    CHECK(stored >= lt.checked * 3);
    CHECK_INT(stored_bad, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("TZ", "Asia/Shanghai", 1);
    setup();
    scenario_check_line_load();
    if (scenario_start()) {
        scenario_dead_meter();
        scenario_late_meter();
        scenario_tcp_drop_and_unplug();
        scenario_slow_meter_holds_back_none();
        scenario_every_value_is_the_meters();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    config_free(cfg);
    return check_done();
}
