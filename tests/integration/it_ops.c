/*
 * it_ops.c - operations behaviour of `parkgw run` against real processes:
 * 1. watchdog: under a fake NOTIFY_SOCKET with WATCHDOG_USEC=2 s, READY=1
 *    arrives and WATCHDOG=1 pings flow until the test hook stalls bus
 *    line-a; then they stop (a stuck thread must lead to a restart);
 * 2. clock floor: with the daemon's time stamps shifted to 2.5 s before
 *    2020-01-01, the first polls are held back (not stored), logged once,
 *    and polls stamped after the floor are stored;
 * 3. a dead meter logs its failure and its comm loss once each, not every
 *    poll (five failed polls are waited for);
 * 4. `parkgw status` without -c on a box without /etc/parkgw says how to
 *    give a configuration (exit 1).
 * Runs wait on log lines, notifications and live messages with deadlines.
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

#define SEED 777
/* 2020-01-01T00:00:00Z: 18262 days * 86400 s, in ms (poller.c's floor). */
#define FLOOR_MS INT64_C(1577836800000)

/* rmu-1: chengtong/e1 (served) and chengtong/e9 (unit 99, not in the sim's
 * config when 'with_dead'); line-a: chengtong/w1. All 1 s intervals. */
static char *make_config(const char *dir, const char *db, int mqtt_port, int sim_port,
                         bool with_dead)
{
    return xasprintf(
        "gateway = { id = \"itops\"; };\n"
        /* Retention off: the clock test stores 2020 stamps on a later clock. */
        "storage = { path = \"%s/%s\"; raw_retention_days = 0; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itops\"; };\n"
        "buses = (\n"
        "  { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 300; },\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 300; }\n"
        ");\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\";\n"
        "    meters = (\n"
        "      { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "        profile = \"generic-electricity\"; interval = 1; },\n"
        "%s"
        "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
        "        profile = \"generic-water\"; interval = 1; }\n"
        "    ); }\n"
        ");\n",
        dir, db, mqtt_port, sim_port, sim_port,
        with_dead ? "      { id = \"e9\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 99;\n"
                    "        profile = \"generic-electricity\"; interval = 1; },\n"
                  : "");
}

struct notif {
    int64_t mono;
    char text[256];
};

/* Watchdog pings are tied to progress: READY=1, then WATCHDOG=1 pings
 * while every bus thread moves; none later than the stall of bus line-a
 * (test hook) + WATCHDOG_USEC; a clean stop (STOPPING=1) still works. */
static void scenario_watchdog(const char *dir, const char *cfg_path)
{
    char *sock_path = xasprintf("%s/notify.sock", dir);
    int fd = h_notify_socket(sock_path);
    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *log = xasprintf("%s/watchdog.log", dir);
    /* sd_watchdog_enabled() honours WATCHDOG_USEC only in the process named
     * by WATCHDOG_PID: the shell puts its own pid there, then execs. */
    char *argv[] = {"/bin/sh", "-c", "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"",
                    (char *)parkgw, "run", "-c", (char *)cfg_path, NULL};
    setenv("NOTIFY_SOCKET", sock_path, 1);
    setenv("WATCHDOG_USEC", "2000000", 1);
    setenv("PARKGW_TEST_STALL_BUS", "line-a", 1);
    setenv("PARKGW_TEST_STALL_AFTER", "6", 1);
    struct proc gw = {.stdin_fd = -1};
    h_spawn(&gw, argv, log, false);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("PARKGW_TEST_STALL_BUS");
    unsetenv("PARKGW_TEST_STALL_AFTER");

    static struct notif got[512];
    size_t n = 0;
    int64_t start = now_mono_ms(), stall_seen = 0;
    /* Record notifications until 6 s after the stall (or 20 s). */
    while (now_mono_ms() - start < 20000 && n < ARRAY_SIZE(got)) {
        if (!stall_seen && h_log_count(&gw, "test hook: bus line-a stalls now") > 0)
            stall_seen = now_mono_ms();
        if (stall_seen && now_mono_ms() - stall_seen > 6000)
            break;
        if (h_notify_recv(fd, got[n].text, sizeof(got[n].text), 100) >= 0)
            got[n++].mono = now_mono_ms();
    }
    CHECK(stall_seen > 0);
    int64_t ready = 0, last_ping = 0;
    size_t pings_before = 0, pings_late = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ready && strstr(got[i].text, "READY=1"))
            ready = got[i].mono;
        if (strstr(got[i].text, "WATCHDOG=1")) {
            last_ping = got[i].mono;
            pings_before += stall_seen && got[i].mono <= stall_seen;
            /* Hand computation: the stalled thread's progress stops at the
             * stall (<= stall_seen); the daemon pings only while every
             * thread moved within WATCHDOG_USEC = 2 s, checking every
             * 200 ms, so no ping may come later than stall + 2.2 s. Allow
             * 3 s for a loaded machine. */
            pings_late += stall_seen && got[i].mono > stall_seen + 3000;
        }
    }
    CHECK(ready > 0);
    /* Ping interval WATCHDOG_USEC / 2 = 1 s; the stall comes after 6 polls
     * of line-a (first at once, then 5 slots of 1 s, so >= 4 s): >= 2 pings
     * before it (3 expected). */
    CHECK(pings_before >= 2);
    CHECK_INT(pings_late, 0);
    printf("watchdog: READY after %lld ms, %zu pings before the stall, last ping %lld ms "
           "after it, none in the following %lld ms\n",
           (long long)(ready - start), pings_before, (long long)(last_ping - stall_seen),
           (long long)(now_mono_ms() - last_ping));

    /* The stuck thread still lets the daemon stop cleanly. */
    int status = h_stop(&gw, SIGTERM, 10000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    bool stopping = false;
    char buf[256];
    while (h_notify_recv(fd, buf, sizeof(buf), 200) >= 0)
        stopping |= strstr(buf, "STOPPING=1") != NULL;
    CHECK(stopping);
    if (check_failed)
        h_dump_log(&gw, "parkgw (watchdog)");
    h_proc_release(&gw);
    close(fd);
    unlink(sock_path);
    free(sock_path);
    free(log);
}

struct ts_list {
    int64_t ts[64];
    size_t n;
};

static int collect(void *ud, int64_t ts, double value)
{
    UNUSED(value);
    struct ts_list *l = ud;
    if (l->n < ARRAY_SIZE(l->ts))
        l->ts[l->n++] = ts;
    return 0;
}

/* The clock-floor run (parts 2 and 3 share it): its log and database. */
static struct proc clock_gw = {.stdin_fd = -1};
static char *clock_log;

/* Runs parkgw -v with its time stamps shifted to 2.5 s before the floor
 * and a dead meter (e9) on rmu-1, until the clock is plausible again on
 * both buses and w1 published four live values after that, and e9 failed
 * five polls; then stops it (exit 0). */
static void run_clock_park(const char *dir, const char *cfg_path, int mport)
{
    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    clock_log = xasprintf("%s/clock.log", dir);
    char *argv[] = {(char *)parkgw, "run", "-c", (char *)cfg_path, "-v", NULL};
    /* Stamps = wall clock + offset: the first poll is stamped 2.5 s before
     * the floor, so with 1 s slots the polls stamped -2.5, -1.x, -0.x s are
     * held back and the following ones (+0.x s, ...) stored. */
    int64_t offset = FLOOR_MS - 2500 - now_real_ms();
    char off[32];
    snprintf(off, sizeof(off), "%lld", (long long)offset);
    struct h_sub *sub = h_sub_new(mport, "it-ops-sub", "park/itops/#");
    setenv("PARKGW_TEST_CLOCK_OFFSET_MS", off, 1);
    h_spawn(&clock_gw, argv, clock_log, false);
    unsetenv("PARKGW_TEST_CLOCK_OFFSET_MS");

    CHECK(h_wait_log(&clock_gw, "wall clock plausible again", 2, 15000));
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait_count(sub, mark, "park/itops/chengtong-plastics/water/w1/live", NULL, 4,
                           8000));
    CHECK(h_wait_log(&clock_gw, "meter chengtong-plastics/e9: read failed again (5)", 1, 20000));
    int status = h_stop(&clock_gw, SIGTERM, 10000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    h_sub_free(sub);
}

/* Clock floor: held-back polls are logged once per bus per state change,
 * not per poll, with their count (3 or 4); only stamps at or after the
 * floor are stored, the first within a second of it. */
static void scenario_clock_floor(const char *db)
{
    CHECK_INT(h_log_count(&clock_gw, "before the floor 2020-01-01: readings are held back"), 2);
    CHECK_INT(h_log_count(&clock_gw, "wall clock plausible again"), 2);
    /* How many polls of w1 were held: the first one at once (stamped
     * -2.5 s + start-up), then the 1 s slots j = 1, 2, ... stamped
     * j*1000 - f - 2500 ms from the floor, f = the start's millisecond
     * phase: below the floor for j <= 2 (f < 500) or j <= 3 (f >= 500).
     * So 3 or 4, counted in the recovery line. */
    char *text = h_read_file(clock_log);
    const char *line = text ? strstr(text, "bus line-a: wall clock plausible again; ") : NULL;
    unsigned held = 0;
    CHECK(line && sscanf(line, "bus line-a: wall clock plausible again; %u", &held) == 1);
    CHECK(held >= 3 && held <= 4);
    free(text);

    struct store *st;
    char err[512];
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    if (st) {
        uint32_t id;
        struct ts_list l = {0};
        CHECK_INT(store_find_point(st, "chengtong-plastics", "w1", "total_m3", &id), 0);
        CHECK_INT(store_scan(st, id, 0, INT64_MAX, collect, &l), 0);
        size_t below = 0;
        for (size_t i = 0; i < l.n; i++)
            below += l.ts[i] < FLOOR_MS;
        CHECK_INT(below, 0);
        CHECK(l.n >= 4);
        CHECK(l.n > 0 && l.ts[0] < FLOOR_MS + 1000);
        printf("clock floor: %zu samples stored, first %lld ms after the floor\n", l.n,
               l.n ? (long long)(l.ts[0] - FLOOR_MS) : -1LL);
        store_close(st);
    }
}

/* The dead meter (unit 99): one warning for the first failure, one for the
 * comm loss, in five failed polls with backoff. */
static void scenario_dead_meter_logged_once(void)
{
    CHECK_INT(h_log_count(&clock_gw,
                          "meter chengtong-plastics/e9 (bus rmu-1, unit 99): read failed"),
              1);
    CHECK_INT(h_log_count(&clock_gw, "meter chengtong-plastics/e9: communication lost"), 1);
}

/* No -c, no PARKGW_CONFIG, no /etc/parkgw/parkgw.cfg: exit 1 with the way
 * out, not only "No such file". Skipped on a box that has the file. */
static void scenario_default_config_missing(void)
{
    if (access("/etc/parkgw/parkgw.cfg", F_OK) == 0) {
        printf("skipped: /etc/parkgw/parkgw.cfg exists here\n");
        return;
    }
    const char *bin = h_env("PARKGW_BIN", "parkgw");
    char *saved = getenv("PARKGW_CONFIG") ? xstrdup(getenv("PARKGW_CONFIG")) : NULL;
    unsetenv("PARKGW_CONFIG");
    char *argv[] = {(char *)bin, "status", NULL};
    char *out = NULL, *err = NULL;
    CHECK_INT(h_run(argv, &out, &err, 10000), 1);
    CHECK_CONTAINS(err ? err : "", "/etc/parkgw/parkgw.cfg");
    CHECK_CONTAINS(err ? err : "", "give one with -c FILE (or PARKGW_CONFIG=FILE)");
    CHECK_CONTAINS(err ? err : "", "parkgw.cfg.example");
    free(out);
    free(err);
    if (saved)
        setenv("PARKGW_CONFIG", saved, 1);
    free(saved);
}

int main(void)
{
    scenario_default_config_missing();
    char *dir = h_tmpdir("it_ops");
    const char *src = h_env("PARKGW_SOURCE_DIR", ".");
    char *profiles = xasprintf("%s/config/profiles", src);
    setenv("PARKGW_PROFILE_DIR", profiles, 1);

    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1};
    int mport = h_start_mosquitto(&mosq, dir);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir);
    char *text = make_config(dir, "sim.db", mport, 502, false);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);

    char *cfg1 = xasprintf("%s/watchdog.cfg", dir);
    text = make_config(dir, "watchdog.db", mport, sport, false);
    h_write_file(cfg1, text);
    free(text);
    scenario_watchdog(dir, cfg1);

    char *cfg2 = xasprintf("%s/clock.cfg", dir);
    char *db2 = xasprintf("%s/clock.db", dir);
    text = make_config(dir, "clock.db", mport, sport, true);
    h_write_file(cfg2, text);
    free(text);
    run_clock_park(dir, cfg2, mport);
    scenario_clock_floor(db2);
    scenario_dead_meter_logged_once();
    if (check_failed)
        h_dump_log(&clock_gw, "parkgw (clock)");
    h_proc_release(&clock_gw);
    free(clock_log);

    if (check_failed)
        h_dump_log(&sim, "parkgw-sim");
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    free(cfg1);
    free(cfg2);
    free(db2);
    free(sim_cfg);
    free(profiles);
    free(dir);
    return check_done();
}
