/*
 * it_import_busy.c - a big `parkgw import` beside the running daemon (issue
 * 14): 300,000 readings of one point, imported while the daemon polls and
 * commits every second into the same database. The import writes in
 * bounded transactions, so the daemon's writer never waits long for the
 * write lock: its longest wait (the debug line "waited N ms for the write
 * lock") stays under 1.5 s and it never gives up busy; every reading is
 * imported. In one transaction (before) the writer waited the whole import.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 1618
#define ROWS 300000

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itimp\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; raw_retention_days = 0; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itimp\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"ent0\"; meters = (\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "      profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"w2\"; utility = \"water\"; bus = \"line\"; unit_id = 3;\n"
        "      profile = \"generic-water\"; interval = 1; } ); } );\n",
        dir, mqtt_port, sim_port);
}

/* The longest "waited N ms for the write lock" in the log, 0 when none. */
static long long longest_wait(const char *log)
{
    long long max = 0;
    for (const char *p = log; p && (p = strstr(p, "storage: waited ")) != NULL; p++) {
        long long ms;
        if (sscanf(p, "storage: waited %lld ms", &ms) == 1 && ms > max)
            max = ms;
    }
    return max;
}

int main(void)
{
    struct h_park pk;
    h_park_start(&pk, "it_import_busy", make_config, SEED);
    h_park_run(&pk, true);
    CHECK(h_wait_log(&pk.gw, "storage: committed", 3, 20000));

    /* A year ago, one reading a second: a meter's stored load profile. */
    char *csv = xasprintf("%s/big.csv", pk.dir);
    FILE *f = fopen(csv, "w");
    CHECK(f != NULL);
    int64_t t0 = (now_real_ms() / 1000 - 365 * 86400) * 1000;
    for (int i = 0; f && i < ROWS; i++)
        fprintf(f, "ent0,w2,total_m3,%lld,%d.%03d\n", (long long)(t0 + i * 1000LL), 1000 + i / 1000,
                i % 1000);
    if (f)
        fclose(f);

    char *argv[] = {(char *)pk.parkgw, "import", "-c", pk.gw_cfg, "--csv", csv, NULL};
    char *out = NULL, *err = NULL;
    int64_t start = now_mono_ms();
    int rc = h_run(argv, &out, &err, 240000);
    int64_t took = now_mono_ms() - start;
    printf("import of %d readings beside the daemon: exit %d in %.1f s: %s%s", ROWS, rc,
           (double)took / 1000.0, out ? out : "", err ? err : "");
    CHECK_INT(rc, 0);
    CHECK_CONTAINS(out, "imported 300000 readings");
    free(out);
    free(err);

    /* The daemon kept committing during and after the import, never
     * waiting long, never failing busy. */
    size_t commits = h_log_count(&pk.gw, "storage: committed");
    CHECK(h_wait_log(&pk.gw, "storage: committed", commits + 2, 10000));
    char *log = h_read_file(pk.gw_log);
    long long wait = longest_wait(log);
    printf("the writer's longest wait for the write lock: %lld ms (logged from 500 ms)\n", wait);
    CHECK(wait < 1500);
    CHECK_INT(h_log_count(&pk.gw, "busy (locked by another process)"), 0);
    free(log);
    CHECK(h_park_stop_gw(&pk));

    free(csv);
    h_park_free(&pk, check_failed);
    return check_done();
}
