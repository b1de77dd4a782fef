/*
 * it_clock.c - summaries under wall-clock steps (issue 14). `parkgw run`
 * runs under libfaketime (Debian's faketime package) with its wall clock
 * offset read from a file and its monotonic clock left alone; the test
 * steps the wall clock 120 s forward, then back. With 5 s summaries the
 * gateway must log each step once, publish no storm of intervals (at most
 * one per 5 s of real time, not 24 at once), keep publishing after the step
 * back (not 2 minutes of silence) without lumping the consumption into one
 * interval, and report every meter ok. The 12 s after each step are a
 * measuring window (a rate is checked), not a wait for something.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 2718
#define PARK "park/itclk/summary"
#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itclk\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; raw_retention_days = 0; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itclk\";\n"
        "         summary_interval = 5; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"ent0\"; meters = (\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "      profile = \"generic-water\"; interval = 1; } ); } );\n",
        dir, mqtt_port, sim_port);
}

struct park_msg {
    int64_t rx_ms, from;
    double m3;
    long long ok;
};

/* The park summaries received from index *pos on, appended to v. */
static size_t collect(struct h_sub *sub, size_t *pos, struct park_msg *v, size_t n, size_t cap)
{
    while (*pos < h_sub_count(sub) && n < cap) {
        struct h_msg m;
        if (!h_sub_get(sub, (*pos)++, &m))
            continue;
        json_t *j = strcmp(m.topic, PARK) == 0 ? json_loads(m.payload, 0, NULL) : NULL;
        if (j) {
            v[n].rx_ms = m.rx_ms;
            v[n].from = json_integer_value(json_object_get(j, "from"));
            v[n].m3 = json_real_value(json_object_get(json_object_get(j, "water"), "m3"));
            v[n].ok = json_integer_value(json_object_get(j, "meters_ok"));
            n++;
            json_decref(j);
        }
        h_msg_free(&m);
    }
    return n;
}

static struct h_park pk;
static struct h_sub *sub;
static char *offset;
static struct park_msg v[200];
static size_t n, pos;

/* Only the gateway runs under libfaketime: its wall clock is offset by the
 * seconds in 'offset' (re-read every second); CLOCK_MONOTONIC is left
 * alone, as a real clock step leaves it. */
static void run_gw_under_faketime(void)
{
    offset = xasprintf("%s/offset", pk.dir);
    h_write_file(offset, "+0\n");
    setenv("LD_PRELOAD", LIBFAKETIME, 1);
    setenv("FAKETIME_TIMESTAMP_FILE", offset, 1);
    setenv("FAKETIME_CACHE_DURATION", "1", 1);
    setenv("DONT_FAKE_MONOTONIC", "1", 1);
    /* An ASan build wants its runtime first among the loaded libraries. */
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_opts = xasprintf("%s%sverify_asan_link_order=0", asan ? asan : "",
                                asan && *asan ? ":" : "");
    char *asan_old = asan ? xstrdup(asan) : NULL;
    setenv("ASAN_OPTIONS", asan_opts, 1);
    h_park_run(&pk, true);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME_TIMESTAMP_FILE");
    unsetenv("FAKETIME_CACHE_DURATION");
    unsetenv("DONT_FAKE_MONOTONIC");
    if (asan_old)
        setenv("ASAN_OPTIONS", asan_old, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(asan_old);
    free(asan_opts);
}

/* Collects park summaries for window_ms of real time; how many came. */
static size_t collect_for(int64_t window_ms)
{
    size_t before = n;
    for (int64_t t0 = now_mono_ms(); now_mono_ms() - t0 < window_ms; sleep_ms(100))
        n = collect(sub, &pos, v, n, 200);
    return n - before;
}

/* Settled: two park summaries (deadline 20 s). */
static bool scenario_settled(void)
{
    for (int64_t end = now_mono_ms() + 20000; n < 2 && now_mono_ms() < end; sleep_ms(100))
        n = collect(sub, &pos, v, n, 200);
    CHECK(n >= 2);
    return n >= 2;
}

/* 120 s forward: logged once; the 24 intervals of 5 s skipped are not
 * published at once: one per 5 s of real time, 1-4 in 12 s. */
static void scenario_step_forward_no_storm(void)
{
    h_write_file(offset, "+120\n");
    CHECK(h_wait_log(&pk.gw, "summary: the wall clock stepped +1", 1, 10000));
    size_t after_fwd = collect_for(12000);
    printf("after +120 s: %zu park summaries in 12 s\n", after_fwd);
    CHECK(after_fwd >= 1 && after_fwd <= 4);
}

/* And back: logged once; publishing goes on (no 2 minutes of silence),
 * 1-4 in 12 s; two steps logged in all. */
static void scenario_step_back_no_silence(void)
{
    h_write_file(offset, "+0\n");
    CHECK(h_wait_log(&pk.gw, "summary: the wall clock stepped -1", 1, 10000));
    size_t after_back = collect_for(12000);
    printf("after -120 s: %zu park summaries in 12 s\n", after_back);
    CHECK(after_back >= 1 && after_back <= 4);
    CHECK_INT(h_log_count(&pk.gw, "summary: the wall clock stepped"), 2);
}

/* No lump: no interval holds more than 3 intervals' worth of the mean
 * (the first may be partly covered); every meter ok throughout; published
 * intervals never repeat an interval's from. */
static void scenario_no_lump(void)
{
    double total = 0, max = 0;
    long long min_ok = 99;
    for (size_t i = 1; i < n; i++) {
        total += v[i].m3;
        if (v[i].m3 > max)
            max = v[i].m3;
        if (v[i].ok < min_ok)
            min_ok = v[i].ok;
    }
    double mean = n > 1 ? total / (double)(n - 1) : 0;
    printf("%zu park summaries, water mean %.4f m3, max %.4f m3, min meters_ok %lld\n", n, mean,
           max, min_ok);
    CHECK(mean > 0);
    CHECK(max <= 3 * mean);
    CHECK_INT(min_ok, 1);
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            CHECK(v[i].from != v[k].from);
}

int main(void)
{
    if (access(LIBFAKETIME, R_OK) != 0) {
        printf("SKIP: %s missing (scripts/deps.sh --test installs faketime)\n", LIBFAKETIME);
        return 77;
    }
    h_park_start(&pk, "it_clock", make_config, SEED);
    sub = h_sub_new(pk.mport, "itclk-sub", "park/itclk/#");
    run_gw_under_faketime();
    if (scenario_settled()) {
        scenario_step_forward_no_storm();
        scenario_step_back_no_silence();
        scenario_no_lump();
    }
    CHECK(h_park_stop_gw(&pk));
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    free(offset);
    return check_done();
}
