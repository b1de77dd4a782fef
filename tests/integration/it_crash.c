/*
 * it_crash.c - durability under kill -9: `parkgw run -v` polls parkgw-sim
 * (6 meters, 1 s intervals) and is SIGKILLed at random moments 20 times
 * (startup and migration included), restarted each time. Then the database
 * must open, pass PRAGMA integrity_check, hold every batch whose commit
 * returned (the writer's debug line "storage: committed N samples up to ts
 * T"), and its rollups must count exactly the raw samples (same transaction).
 * The kill moments are random on purpose (they are the test's input, not a
 * wait for something); the seed is printed.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/store.h"
#include "tests/integration/harness.h"

#define KILLS 20
#define SEED 777

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    char *ents = xstrdup("");
    for (int i = 0; i < 3; i++) {
        char *e = xasprintf(
            "%s%s\n  { id = \"ent%d\"; meters = (\n"
            "    { id = \"e1\"; utility = \"electricity\"; bus = \"line\"; unit_id = %d;\n"
            "      profile = \"generic-electricity\"; interval = 1; },\n"
            "    { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = %d;\n"
            "      profile = \"generic-water\"; interval = 1; } ); }",
            ents, i ? "," : "", i, 1 + 2 * i, 2 + 2 * i);
        free(ents);
        ents = e;
    }
    char *text = xasprintf(
        "gateway = { id = \"itcrash\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = (%s\n);\n",
        dir, mqtt_port, sim_port, ents);
    free(ents);
    return text;
}

/* store_scan callback: counts samples. */
static int count_cb(void *ud, int64_t ts, double value)
{
    (void)ts;
    (void)value;
    ++*(int64_t *)ud;
    return 0;
}


static struct h_park pk;
static char *db_path;

/* 20 kills, each 0.2-2.7 s after the start: some during startup (store
 * open, WAL recovery), most during ingest (at least half of the runs
 * committed something before their kill); about 30 s in all. */
static void run_kill_cycles(void)
{
    unsigned seed = (unsigned)getpid();
    printf("kill delays from seed %u\n", seed);
    srand(seed);
    int64_t t0 = now_mono_ms();
    size_t cycles_with_commit = 0;
    for (int k = 0; k < KILLS; k++) {
        size_t before = k ? h_log_count(&pk.gw, "storage: committed") : 0;
        h_park_run(&pk, true);
        sleep_ms(200 + rand() % 2500); /* the random kill moment */
        CHECK(h_alive(&pk.gw));
        h_stop(&pk.gw, SIGKILL, 5000);
        cycles_with_commit += h_log_count(&pk.gw, "storage: committed") > before;
    }
    printf("%d kills in %.1f s, %zu of them after at least one commit\n", KILLS,
           (double)(now_mono_ms() - t0) / 1000.0, cycles_with_commit);
    CHECK(cycles_with_commit >= KILLS / 2);
}

/* The database opens read-write (recovering the WAL) and passes PRAGMA
 * integrity_check. */
static void scenario_database_intact(void)
{
    struct store *st = NULL;
    char err[512];
    CHECK_INT(store_open(db_path, false, &st, err, sizeof(err)), 0);
    store_close(st);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    char ic[256] = "?";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            snprintf(ic, sizeof(ic), "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    CHECK_STR(ic, "ok");
}

/* Every commit that returned (its debug line is whole in the log) is
 * there: a sample at its latest ts; all of them together are at most what
 * the store holds. Samples are compressed chunks (docs/STORAGE.md): read
 * through a read-only store handle. Returns the samples stored. */
static int64_t scenario_commits_durable(void)
{
    struct store *st = NULL;
    char err[512];
    CHECK_INT(store_open(db_path, true, &st, err, sizeof(err)), 0);
    char *log = h_read_file(pk.gw_log);
    int64_t logged = 0, commits = 0, missing = 0;
    int64_t max_point = h_db_int(db_path, "SELECT coalesce(max(id), 0) FROM points");
    for (char *p = log; p && (p = strstr(p, "storage: committed ")) != NULL; p++) {
        long long n, ts;
        if (sscanf(p, "storage: committed %lld samples up to ts %lld", &n, &ts) != 2)
            continue;
        /* a line cut by the kill has no newline after its number */
        const char *end = strchr(p, '\n');
        if (!end)
            continue;
        commits++;
        logged += n;
        int64_t found = 0;
        for (int64_t pt = 1; st && pt <= max_point && found == 0; pt++)
            CHECK_INT(store_scan(st, (uint32_t)pt, ts, ts + 1, count_cb, &found), 0);
        if (found == 0) {
            if (missing < 5)
                fprintf(stderr, "committed batch up to ts %lld is missing\n", ts);
            missing++;
        }
    }
    free(log);
    struct store_stats stats = {0};
    CHECK_INT(st ? store_stats(st, &stats) : -1, 0);
    store_close(st);
    int64_t stored = stats.samples;
    printf("%lld commits logged (%lld samples), %lld samples stored\n", (long long)commits,
           (long long)logged, (long long)stored);
    CHECK(commits >= KILLS);
    CHECK_INT(missing, 0);
    CHECK(stored >= logged);
    return stored;
}

/* Rollups and samples commit together: each level counts every sample. */
static void scenario_rollups_count_samples(int64_t stored)
{
    CHECK_INT(h_db_int(db_path, "SELECT sum(n) FROM rollup_15m"), stored);
    CHECK_INT(h_db_int(db_path, "SELECT sum(n) FROM rollup_1d"), stored);
    CHECK_INT(h_db_int(db_path, "SELECT count(*) FROM (SELECT point, sum(n) AS c FROM series "
                                "GROUP BY point) s JOIN (SELECT point, sum(n) AS c FROM rollup_1h "
                                "GROUP BY point) r USING (point) WHERE s.c != r.c"),
              0);
}

int main(void)
{
    h_park_start(&pk, "it_crash", make_config, SEED);
    db_path = xasprintf("%s/parkgw.db", pk.dir);
    run_kill_cycles();
    scenario_database_intact();
    int64_t stored = scenario_commits_durable();
    scenario_rollups_count_samples(stored);
    h_park_free(&pk, check_failed);
    free(db_path);
    return check_done();
}
