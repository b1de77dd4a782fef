/*
 * it_settlement.c - a gateway stopped across a DL/T 645 meter's settlement
 * instant bills the month from the meter's own frozen reading (issue 16).
 * parkgw-sim and `parkgw run` run under libfaketime with one wall-clock
 * offset read from a file (re-read on every call), so both see the same
 * time: 45 s before the next month's first instant (the sim's meters
 * settle on day 1 at 00:00, Asia/Shanghai). The gateway polls, is stopped
 * before the instant, the offset moves 120 s on (the instant passes while
 * it is down), and it starts again: its first good poll stores the
 * meter's settlement-day reading at the instant. Then `parkgw bill`:
 *  - the month that ended at the instant ends on the frozen reading
 *    (end_frozen) and its consumption is the model's counter at the
 *    instant minus that at the month's start (itself a frozen reading: the
 *    store was empty at the first start);
 *  - the month that starts at the instant starts from it (start_frozen),
 *    equal to the simulator's counter then.
 * Then the gateway is down for two more days: its next start stores the
 * meter's two daily freezes it missed (daily_frozen = 3: the third is
 * older than its last reading), and the day between them bills from one
 * to the other, both the simulator's counters at those midnights.
 * Last, `parkgw probe` (on the same faked clock) prints the meter's tariff
 * registers since its settlement instant (the sim's model at the instant)
 * next to parkgw's time-of-use split of that period; tariff 4 the meter
 * lacks prints "-".
 * Waits are on log lines with deadlines.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "protocols/dlt645.h"
#include "tests/integration/harness.h"
#include "tools/sim/sim_cn.h"
#include "tools/sim/sim_model.h"

#define SEED 1188
#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
#define ENT "xiangjiang-steel"
#define STORED "stored the settlement-day reading energy_import_kwh"
#define STORED_DAILY "stored the daily frozen reading energy_import_kwh"

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itset\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itset\"; };\n"
        "buses = ( { name = \"line-645\"; type = \"rtu\"; protocol = \"dlt645-2007\";\n"
        "    device = \"%s/ttyUSB-645\"; baud = 9600; parity = \"E\"; timeout_ms = 300; },\n"
        /* the harness waits for the simulator's TCP port */
        "  { name = \"rmu\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "profiles_it = ( { name = \"it-dlt645\"; utility = \"electricity\";\n"
        "  protocol = \"dlt645-2007\"; settlement = true; daily_frozen = 3; points = (\n"
        "    { name = \"energy_import_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\";\n"
        "      kind = \"counter\"; billing = true; },\n"
        "    { name = \"energy_import_t1_kwh\"; di = \"00010100\"; format = \"XXXXXX.XX\";"
        " kind = \"counter\"; },\n"
        "    { name = \"energy_import_t2_kwh\"; di = \"00010200\"; format = \"XXXXXX.XX\";"
        " kind = \"counter\"; },\n"
        "    { name = \"energy_import_t3_kwh\"; di = \"00010300\"; format = \"XXXXXX.XX\";"
        " kind = \"counter\"; } ); } );\n"
        "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; bands = (\n"
        "  { name = \"critical\"; price = 1.35; hours = [ \"20:00-22:00\" ]; },\n"
        "  { name = \"peak\"; price = 1.05; hours = [ \"08:00-11:00\", \"18:00-20:00\","
        " \"22:00-23:00\" ]; },\n"
        "  { name = \"flat\"; price = 0.68; hours = [ \"07:00-08:00\", \"11:00-18:00\" ]; },\n"
        "  { name = \"valley\"; price = 0.32; hours = [ \"23:00-07:00\" ]; } ); } );\n"
        "enterprises = ( { id = \"" ENT "\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"line-645\";"
        " address = \"000000000101\"; profile = \"it-dlt645\"; interval = 1; } ); },\n"
        "  { id = \"works\"; meters = ( { id = \"w1\"; utility = \"water\"; bus = \"rmu\";"
        " unit_id = 1; profile = \"generic-water\"; interval = 1; } ); } );\n",
        dir, mqtt_port, dir, sim_port);
}

static struct h_park pk;
static struct config *cfg;
static char *offset_file;
static long long offset_s;

/* The first instant of the month after t (Unix s, local time). */
static time_t next_month(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    struct tm n = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon + 1, .tm_mday = 1, .tm_isdst = -1};
    return mktime(&n);
}

static void set_offset(long long s)
{
    offset_s = s;
    char buf[32];
    snprintf(buf, sizeof(buf), "%+lld\n", s);
    h_write_file(offset_file, buf);
}

/* Runs fn with the faked clock in the environment of what it spawns. */
static void under_faketime(void (*fn)(void))
{
    setenv("LD_PRELOAD", LIBFAKETIME, 1);
    setenv("FAKETIME_TIMESTAMP_FILE", offset_file, 1);
    setenv("FAKETIME_NO_CACHE", "1", 1);
    setenv("DONT_FAKE_MONOTONIC", "1", 1);
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_old = asan ? xstrdup(asan) : NULL;
    char *asan_opts = xasprintf("%s%sverify_asan_link_order=0", asan ? asan : "",
                                asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_opts, 1);
    fn();
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME_TIMESTAMP_FILE");
    unsetenv("FAKETIME_NO_CACHE");
    unsetenv("DONT_FAKE_MONOTONIC");
    if (asan_old)
        setenv("ASAN_OPTIONS", asan_old, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_old);
    free(asan_opts);
}

static void start_park(void)
{
    h_park_start(&pk, "it_settlement", make_config, SEED);
}

static void run_gw(void)
{
    h_park_run(&pk, true);
}

/* The simulator's point pi of e1 at Unix second t (kWh). */
static double model_point_at(int pi, time_t t)
{
    const struct cfg_meter *m = config_find_meter(cfg, ENT "/e1");
    return m && pi >= 0 ? sim_expected_decoded(SEED, cfg, m, (size_t)pi, (int64_t)t, NULL) : -1;
}

/* The simulator's billing counter of e1 at Unix second t (kWh). */
static double model_at(time_t t)
{
    const struct cfg_meter *m = config_find_meter(cfg, ENT "/e1");
    return model_point_at(m ? profile_billing_point(&cfg->profiles[m->profile]) : -1, t);
}

static char *probe_out;

static void run_probe(void)
{
    char *errout = NULL;
    char *argv[] = {(char *)pk.parkgw, "probe", "-c", pk.gw_cfg, ENT "/e1", NULL};
    CHECK_INT(h_run(argv, &probe_out, &errout, 20000), 0);
    free(errout);
}

/* `parkgw bill --month YYYY-MM --format json` (or, with day_to, --from
 * the day of 'first' --to that of day_to): e1's row (NULL on failure;
 * free the returned document with json_decref). */
static json_t *bill_period(time_t first, time_t day_to, json_t **ret_row)
{
    struct tm tm;
    char month[16], to[16];
    localtime_r(&first, &tm);
    strftime(month, sizeof(month), day_to ? "%Y-%m-%d" : "%Y-%m", &tm);
    localtime_r(&day_to, &tm);
    strftime(to, sizeof(to), "%Y-%m-%d", &tm);
    char *out = NULL, *errout = NULL;
    char *argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, day_to ? "--from" : "--month",
                    month, "--format", "json", day_to ? "--to" : NULL, to, NULL};
    CHECK_INT(h_run(argv, &out, &errout, 20000), 0);
    json_t *doc = out ? json_loads(out, 0, NULL) : NULL;
    json_t *rows = json_object_get(doc, "rows");
    *ret_row = json_array_get(rows, 0);
    CHECK(*ret_row != NULL);
    if (!*ret_row)
        fprintf(stderr, "bill %s: %s%s\n", month, out ? out : "", errout ? errout : "");
    free(out);
    free(errout);
    return doc;
}

static double jnum(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static bool jseg_bool(json_t *row, size_t k, const char *key)
{
    return json_is_true(json_object_get(json_array_get(json_object_get(row, "segments"), k), key));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (access(LIBFAKETIME, R_OK) != 0) {
        printf("SKIP: %s missing (scripts/deps.sh --test installs faketime)\n", LIBFAKETIME);
        return 77;
    }
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    time_t edge = next_month(time(NULL));
    char *dir = h_park_dir("it_settlement");
    offset_file = xasprintf("%s.offset", dir);
    set_offset((long long)(edge - 45 - time(NULL)));
    under_faketime(start_park);
    char *dev = xasprintf("%s/ttyUSB-645", pk.dir);
    CHECK(h_wait_path(dev, 10000));
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }

    /* Before the edge: the first good poll (the store was empty: the
     * month's start reading is frozen too), then the stop. */
    under_faketime(run_gw);
    CHECK(h_wait_log(&pk.gw, STORED, 1, 20000));
    CHECK(h_park_stop_gw(&pk));
    time_t stopped = time(NULL) + (time_t)offset_s;
    printf("gateway stopped %lld s before the month's edge\n", (long long)(edge - stopped));
    CHECK(stopped < edge);

    /* The edge passes while it is down; started again 75 s after it. */
    set_offset(offset_s + 120);
    under_faketime(run_gw);
    CHECK(h_wait_log(&pk.gw, STORED, 2, 20000));
    CHECK(h_park_stop_gw(&pk));

    time_t month_start = (time_t)(dlt645_settlement_instant(SIM_SETTLE_DAY, SIM_SETTLE_HOUR,
                                                             (int64_t)(edge - 1) * 1000, 1) /
                                  1000);
    double at_start = model_at(month_start), at_edge = model_at(edge);
    json_t *row = NULL;
    json_t *doc = bill_period(month_start, 0, &row);
    if (row) {
        printf("month before the edge: %.3f -> %.3f = %.3f kWh (model %.3f -> %.3f)\n",
               jnum(row, "start_reading"), jnum(row, "end_reading"), jnum(row, "consumption"),
               at_start, at_edge);
        CHECK_NEAR(jnum(row, "start_reading"), at_start, 0.0051);
        CHECK_NEAR(jnum(row, "end_reading"), at_edge, 0.0051);
        CHECK_NEAR(jnum(row, "consumption"), at_edge - at_start, 0.011);
        CHECK(jseg_bool(row, 0, "start_frozen"));
        CHECK(jseg_bool(row, 0, "end_frozen"));
    }
    json_decref(doc);
    doc = bill_period(edge, 0, &row);
    if (row) {
        printf("month from the edge: start reading %.3f kWh, the meter's own %.3f\n",
               jnum(row, "start_reading"), at_edge);
        CHECK_NEAR(jnum(row, "start_reading"), at_edge, 0.0051);
        CHECK(jseg_bool(row, 0, "start_frozen"));
        CHECK(!jseg_bool(row, 0, "end_frozen"));
    }
    json_decref(doc);

    /* Down two more days: the two daily freezes missed are stored (three
     * were stored at the first start, from the empty store). */
    CHECK_INT(h_log_count(&pk.gw, STORED_DAILY), 3);
    set_offset(offset_s + 2 * 86400);
    under_faketime(run_gw);
    CHECK(h_wait_log(&pk.gw, STORED_DAILY, 5, 20000));
    CHECK(h_park_stop_gw(&pk));
    CHECK_INT(h_log_count(&pk.gw, STORED), 2);
    time_t d1 = edge + 86400, d2 = edge + 2 * 86400; /* no DST in Asia/Shanghai */
    doc = bill_period(d1, d2, &row);
    if (row) {
        printf("the day between two daily freezes: %.3f -> %.3f = %.3f kWh (model %.3f -> "
               "%.3f)\n",
               jnum(row, "start_reading"), jnum(row, "end_reading"), jnum(row, "consumption"),
               model_at(d1), model_at(d2));
        CHECK_NEAR(jnum(row, "start_reading"), model_at(d1), 0.0051);
        CHECK_NEAR(jnum(row, "end_reading"), model_at(d2), 0.0051);
        CHECK_NEAR(jnum(row, "consumption"), model_at(d2) - model_at(d1), 0.011);
        CHECK(jseg_bool(row, 0, "start_frozen"));
        CHECK(jseg_bool(row, 0, "end_frozen"));
    }
    json_decref(doc);

    /* probe: tariff 1's register at the settlement instant (the edge) is
     * the sim's, tariff 4 is missing; parkgw's split has the bands. */
    under_faketime(run_probe);
    char want[64];
    snprintf(want, sizeof(want), "%.2f", model_point_at(1, edge));
    printf("%s", probe_out ? probe_out : "(no probe output)\n");
    CHECK_CONTAINS(probe_out, "tariff registers since the settlement instant");
    char *t1 = probe_out ? strstr(probe_out, "1 尖 critical") : NULL;
    char *nl = t1 ? strchr(t1, '\n') : NULL;
    if (nl)
        *nl = 0;
    CHECK(t1 && strstr(t1, "00010100") && strstr(t1, want));
    if (nl)
        *nl = '\n';
    CHECK_CONTAINS(probe_out, "4 谷 valley");
    CHECK_CONTAINS(probe_out, "parkgw: coverage");
    free(probe_out);

    config_free(cfg);
    free(dev);
    h_park_free(&pk, check_failed);
    free(offset_file);
    free(dir);
    return check_done();
}
