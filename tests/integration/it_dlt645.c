/*
 * it_dlt645.c - DL/T 645-2007 and CJ/T 188 meters against real processes:
 * parkgw-sim serving a DL/T 645 line (three electricity meters) and a
 * CJ/T 188 line (a water meter) on ptys beside a Modbus RTU line and a
 * Modbus TCP gateway, mosquitto, and `parkgw run`. `check` computes the
 * DL/T 645 line's load; every meter publishes; a dead DL/T 645 meter leaves
 * the others on its line at their 1 s rate (and the Modbus line too); a
 * reply from a wrong address is refused (logged as malformed, never
 * published as the meter's value) and the meter is read again once the
 * fault clears; an abnormal reply is logged with the standard's meaning;
 * `parkgw scan` reads the address of the single meter of a fourth line; a
 * reload with the same configuration keeps the lines polling.
 * Every live value is compared with the simulator's model. Phases wait on
 * polls and log lines with deadlines, never fixed sleeps.
 */
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config/config.h"
#include "tests/integration/harness.h"
#include "tests/integration/livetrack.h"
#include "protocols/dlt645.h"
#include "tools/sim/sim_cn.h"

#define SEED 645
#define TIMEOUT_MS 200

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"it645\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-it645\"; };\n"
        "buses = (\n"
        "  { name = \"line-645\"; type = \"rtu\"; protocol = \"dlt645-2007\";\n"
        "    device = \"%s/ttyUSB-645\"; baud = 9600; parity = \"E\"; timeout_ms = %d; },\n"
        "  { name = \"line-188\"; type = \"rtu\"; protocol = \"cjt188\";\n"
        "    device = \"%s/ttyUSB-188\"; baud = 2400; parity = \"E\"; timeout_ms = %d; },\n"
        "  { name = \"line-one\"; type = \"rtu\"; protocol = \"dlt645-2007\";\n"
        "    device = \"%s/ttyUSB-one\"; baud = 2400; timeout_ms = %d; },\n"
        "  { name = \"line-mb\"; type = \"rtu\"; device = \"%s/ttyUSB-mb\"; baud = 9600;\n"
        "    timeout_ms = %d; },\n"
        "  { name = \"rmu\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = %d; }\n"
        ");\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/cjt188-water.cfg\"\n"
        /* Two requests a poll: the energy block (total, tariff 1) and the
         * phase A voltage. */
        "profiles_it = ( { name = \"it-dlt645\"; utility = \"electricity\";\n"
        "  protocol = \"dlt645-2007\"; settlement = true; points = (\n"
        "    { name = \"energy_import_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\";\n"
        "      block = \"0001FF00\"; kind = \"counter\"; billing = true; },\n"
        "    { name = \"energy_import_t1_kwh\"; di = \"00010100\"; format = \"XXXXXX.XX\";\n"
        "      block = \"0001FF00\"; kind = \"counter\"; },\n"
        "    { name = \"voltage_a_v\"; di = \"02010100\"; format = \"XXX.X\"; } ); } );\n"
        "enterprises = (\n"
        "  { id = \"xiangjiang-steel\"; name = \"DL/T 645 line\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"line-645\"; address = "
        "\"000000000101\";"
        " profile = \"it-dlt645\"; interval = 1; },\n"
        "    { id = \"e2\"; utility = \"electricity\"; bus = \"line-645\"; address = "
        "\"000000000102\";"
        " profile = \"it-dlt645\"; interval = 1; },\n"
        "    { id = \"e3\"; utility = \"electricity\"; bus = \"line-645\"; address = "
        "\"000000000103\";"
        " profile = \"it-dlt645\"; interval = 1; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line-188\"; address = \"00000000000201\";"
        " profile = \"cjt188-water\"; interval = 1; },\n"
        "    { id = \"e9\"; utility = \"electricity\"; bus = \"line-one\"; address = \"000000000109\";"
        " profile = \"it-dlt645\"; interval = 1; } ); },\n"
        "  { id = \"modbus-works\"; name = \"Modbus lines\"; meters = (\n"
        "    { id = \"m1\"; utility = \"water\"; bus = \"line-mb\"; unit_id = 1;"
        " profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"t1\"; utility = \"water\"; bus = \"rmu\"; unit_id = 11;"
        " profile = \"generic-water\"; interval = 1; } ); }\n"
        ");\n",
        dir, mqtt_port, dir, TIMEOUT_MS, dir, TIMEOUT_MS, dir, TIMEOUT_MS, dir, TIMEOUT_MS,
        sim_port, TIMEOUT_MS);
}

static const char *ENT = "xiangjiang-steel";
static struct h_park pk;
static struct config *cfg;
static struct h_sub *sub;
static struct livetrack lt;

static void setup(void)
{
    h_park_start(&pk, "it_dlt645", make_config, SEED);
    const char *ttys[] = {"ttyUSB-645", "ttyUSB-188", "ttyUSB-one", "ttyUSB-mb"};
    for (size_t i = 0; i < 4; i++) {
        char *dev = xasprintf("%s/%s", pk.dir, ttys[i]);
        CHECK(h_wait_path(dev, 10000));
        free(dev);
    }
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        exit(2);
    }
}

/* `parkgw check`: per DL/T 645 meter, the block (40 + 8 data bytes) and
 * the voltage (40 + 2): 90 characters of 11 bits at 9600 baud = 103.1 ms,
 * + 2 x 10 ms turnaround = 123.1 ms a second; three meters: 36.9 %. The
 * CJ/T 188 meter: 40 + 10 = 50 characters at 2400 baud = 229.2 ms + 10 ms:
 * 23.9 %. */
static void scenario_check(void)
{
    char *out = NULL, *errout = NULL;
    char *argv[] = {(char *)pk.parkgw, "check", "-c", pk.gw_cfg, NULL};
    CHECK_INT(h_run(argv, &out, &errout, 10000), 0);
    CHECK_CONTAINS(out, "line-645         645        3         9         6       6.0  36.9% of "
                        "9600 baud");
    CHECK_CONTAINS(out, "line-188         188        1         2         1       1.0  23.9% of "
                        "2400 baud");
    free(out);
    free(errout);
}

/* `parkgw scan`: the broadcast read-address finds the single meter of
 * line-one; on line-645 three meters match the wildcard (on a real line
 * their replies collide; the sim's stay silent): no address, exit 2; a
 * CJ/T 188 bus is refused (exit 1). Before `run`: one program per line. */
static void scenario_scan(void)
{
    char *out = NULL, *errout = NULL;
    char *argv[] = {(char *)pk.parkgw, "scan", "-c", pk.gw_cfg, "line-one", NULL};
    CHECK_INT(h_run(argv, &out, &errout, 10000), 0);
    CHECK_CONTAINS(out, "bus line-one: address 000000000109 (meter xiangjiang-steel/e9)");
    free(out);
    free(errout);
    argv[4] = "line-645";
    CHECK_INT(h_run(argv, &out, &errout, 10000), 2);
    CHECK_CONTAINS(errout, "no meter answered the broadcast");
    free(out);
    free(errout);
    argv[4] = "line-188";
    CHECK_INT(h_run(argv, &out, &errout, 10000), 1);
    CHECK_CONTAINS(errout, "bus 'line-188' speaks cjt188");
    free(out);
    free(errout);
}

static bool scenario_start(void)
{
    sub = h_sub_new(pk.mport, "it-645-sub", "park/it645/#");
    lt_init(&lt, sub, cfg, SEED);
    h_park_run(&pk, false);
    if (h_sub_wait(sub, 0, "park/it645/status", "\"online\"", 10000) < 0) {
        CHECK(!"parkgw goes online");
        return false;
    }
    for (size_t i = 0; i < lt.n_tracks; i++)
        CHECK(lt_wait_polls(&lt, lt.tracks[i].m->enterprise->id, lt.tracks[i].m->id, 0, 1, 5000));
    return !check_failed;
}

/* e1 stops answering: e2 and e3 on its line, and the Modbus line, keep
 * their 1 s rate while it backs off; it is read again once it answers. */
static void scenario_dead_meter(void)
{
    CHECK(h_sim_do(&pk.sim, "fault %s/e1 noreply", ENT));
    CHECK(h_wait_log(&pk.gw,
                     "xiangjiang-steel/e1 (bus line-645, address 000000000101): read "
                     "failed: timeout",
                     1, 5000));
    int64_t t0 = now_real_ms();
    CHECK(lt_wait_polls(&lt, ENT, "e3", t0, 8, 15000));
    int64_t t1 = now_real_ms();
    CHECK(lt_check_rate(&lt, ENT, "e2", t0, t1 - 1000, "dead e1:"));
    CHECK(lt_check_rate(&lt, ENT, "e3", t0, t1 - 1000, "dead e1:"));
    CHECK(lt_check_rate(&lt, "modbus-works", "m1", t0, t1 - 1000, "dead e1:"));
    CHECK(h_sim_do(&pk.sim, "fault %s/e1 none", ENT));
    /* Back within the backoff bound (at most 8 s after 8 s of failures). */
    CHECK(lt_wait_polls(&lt, ENT, "e1", now_real_ms(), 1, 12000));
}

/* e2 answers from another address: refused (a malformed reply), never its
 * value; e3's abnormal reply is named. Both are read again once cleared. */
static void scenario_wrong_address_and_abnormal(void)
{
    CHECK(h_sim_do(&pk.sim, "fault %s/e2 wrongaddr", ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/e3 exception 2", ENT));
    CHECK(h_wait_log(&pk.gw,
                     "xiangjiang-steel/e2 (bus line-645, address 000000000102): read "
                     "failed: malformed reply",
                     1, 5000));
    CHECK(h_wait_log(&pk.gw,
                     "xiangjiang-steel/e3 (bus line-645, address 000000000103): read "
                     "failed: abnormal reply, error 0x02 (no data requested)",
                     1, 5000));
    /* Meanwhile e1 and the water meter go on. */
    int64_t t0 = now_real_ms();
    CHECK(lt_wait_polls(&lt, ENT, "e1", t0, 3, 8000));
    CHECK(lt_wait_polls(&lt, ENT, "w1", t0, 3, 8000));
    /* Nothing from e2 while its replies came from elsewhere. */
    struct lt_track *t2 = lt_track_of(&lt, ENT, "e2");
    size_t during = 0;
    for (size_t i = 0; t2 && i < t2->n; i++)
        during += t2->ts[i] >= t0;
    CHECK_INT(during, 0);
    CHECK(h_sim_do(&pk.sim, "fault %s/e2 none", ENT));
    CHECK(h_sim_do(&pk.sim, "fault %s/e3 none", ENT));
    int64_t t1 = now_real_ms();
    CHECK(lt_wait_polls(&lt, ENT, "e2", t1, 1, 12000));
    CHECK(lt_wait_polls(&lt, ENT, "e3", t1, 1, 12000));
}

/* SIGHUP with the same configuration: the DL/T 645 and CJ/T 188 lines keep
 * polling (their meters compare equal, addresses by content). */
static void scenario_reload_keeps_lines(void)
{
    kill(pk.gw.pid, SIGHUP);
    CHECK(h_wait_log(&pk.gw, "reload: bus line-645 unchanged, keeps polling", 1, 10000));
    CHECK(h_wait_log(&pk.gw, "reload: bus line-188 unchanged, keeps polling", 1, 10000));
    CHECK(lt_wait_polls(&lt, ENT, "e1", now_real_ms(), 2, 5000));
}

/* The store was empty: the gateway "was down" at the meters' last
 * settlement instant (the sim's meters settle on day 1 at 00:00), so each
 * DL/T 645 meter's first good poll stored its settlement-day reading there,
 * with a frozen_reading event; the month's bill starts from it exactly. */
static void scenario_settlement_reading(void)
{
    CHECK(h_wait_log(&pk.gw, "stored the settlement-day reading energy_import_kwh", 4, 10000));
    CHECK(h_sub_wait(sub, 0, "park/it645/events", "\"frozen_reading\"", 10000) >= 0);
}

/* After the stop: `parkgw bill` from the settlement instant has the
 * meter's own reading then as its start reading. */
static void scenario_bill_from_frozen(void)
{
    int64_t at = dlt645_settlement_instant(SIM_SETTLE_DAY, SIM_SETTLE_HOUR, now_real_ms(), 1);
    time_t t = (time_t)(at / 1000), tomorrow = time(NULL) + 86400;
    struct tm tm;
    char from[16], to[16];
    localtime_r(&t, &tm);
    strftime(from, sizeof(from), "%Y-%m-%d", &tm);
    localtime_r(&tomorrow, &tm);
    strftime(to, sizeof(to), "%Y-%m-%d", &tm);
    char *out = NULL, *errout = NULL;
    char *argv[] = {(char *)pk.parkgw, "bill",   "-c",     pk.gw_cfg, "--from", from, "--to", to,
                    "--enterprise",    (char *)ENT, "--format", "csv", NULL};
    CHECK_INT(h_run(argv, &out, &errout, 20000), 0);
    const struct cfg_meter *e1 = config_find_meter(cfg, "xiangjiang-steel/e1");
    int bp = e1 ? profile_billing_point(&cfg->profiles[e1->profile]) : -1;
    double want = e1 ? sim_expected_decoded(SEED, cfg, e1, (size_t)bp, at / 1000, NULL) : 0;
    char *line = out ? strstr(out, "\nxiangjiang-steel,e1,") : NULL;
    double start = -1;
    if (line) {
        /* enterprise,meter,utility,unit,from,to,start_reading,... */
        const char *c = line + 1;
        for (int k = 0; k < 6 && c; k++) {
            c = strchr(c, ',');
            c = c ? c + 1 : NULL;
        }
        start = c ? strtod(c, NULL) : -1;
    }
    printf("bill from the settlement instant %s: start reading %.2f kWh, the meter's own %.2f\n",
           from, start, want);
    CHECK(line != NULL);
    CHECK_NEAR(start, want, 0.005);
    free(out);
    free(errout);
    /* The JSON statement and the table say the start reading is the
     * meter's frozen one (the CSV's columns stay the contract's). */
    out = errout = NULL;
    argv[11] = "json";
    CHECK_INT(h_run(argv, &out, &errout, 20000), 0);
    CHECK(out && strstr(out, "\"start_frozen\": true"));
    free(out);
    free(errout);
    out = errout = NULL;
    argv[11] = "table";
    CHECK_INT(h_run(argv, &out, &errout, 20000), 0);
    CHECK(out && strstr(out, "note: xiangjiang-steel/e1 start reading"));
    CHECK(out && strstr(out, "is the meter's own frozen reading"));
    free(out);
    free(errout);
}

static void scenario_every_value_is_the_meters(void)
{
    CHECK(h_park_stop_gw(&pk));
    lt_scan(&lt);
    printf("compared %zu live messages with the simulator's model: %d mismatches\n", lt.checked,
           lt.mismatches);
    CHECK(lt.checked >= 60);
    CHECK_INT(lt.mismatches, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("TZ", "Asia/Shanghai", 1);
    setup();
    scenario_check();
    scenario_scan();
    if (scenario_start()) {
        scenario_dead_meter();
        scenario_wrong_address_and_abnormal();
        scenario_settlement_reading();
        scenario_reload_keeps_lines();
        scenario_every_value_is_the_meters();
        scenario_bill_from_frozen();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    config_free(cfg);
    return check_done();
}
