/*
 * it_dbguard.c - the database under `parkgw run` is guarded (issue 14):
 * 1. one daemon per database: a second `parkgw run` on the same database
 *    exits non-zero at once, naming the first one's pid, while the first
 *    keeps polling and committing;
 * 2. the database file unlinked under the daemon: noticed, logged at error,
 *    the daemon exits with a failure (2) and writes nothing more (no file
 *    appears at the path, its WAL is gone); a restart creates a fresh one;
 * 3. the database file replaced (renamed over) under the daemon: the same,
 *    and the replacement is left as it was (intact, same row count);
 * 4. a clean stop whose last samples cannot be written (another process
 *    holds the write lock past the busy timeout) exits 2, not 0;
 * 5. `parkgw status` on a database whose first pages are garbage exits 2
 *    with PRAGMA quick_check's word instead of showing every meter "never".
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 4242

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itguard\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itguard\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"ent0\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"line\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "      profile = \"generic-water\"; interval = 1; } ); } );\n",
        dir, mqtt_port, sim_port);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static bool integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    bool ok = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        ok = sqlite3_step(st) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
}

/* A consistent copy of the live database at 'to' (SQLite's online backup). */
static bool backup(const char *from, const char *to)
{
    sqlite3 *src = NULL, *dst = NULL;
    bool ok = false;
    if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_open(to, &dst) == SQLITE_OK) {
        sqlite3_busy_timeout(src, 5000);
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (b) {
            ok = sqlite3_backup_step(b, -1) == SQLITE_DONE;
            sqlite3_backup_finish(b);
        }
        /* The copy is in WAL mode like the original: a stale -wal left at
         * the path would be replayed into it when it is next opened. */
    }
    sqlite3_close(src);
    sqlite3_close(dst);
    return ok;
}

static struct h_park pk;
static char *db, *wal;

/* Starts the daemon and waits for its first commits. */
static void start_gw(void)
{
    size_t before = h_log_count(&pk.gw, "storage: committed");
    h_park_run(&pk, true);
    CHECK(h_wait_log(&pk.gw, "storage: committed", before + 2, 20000));
}

/* A second `parkgw run` on the same database exits 2 at once, naming the
 * first one's pid, without polling; the first keeps committing. */
static void scenario_second_daemon_refused(void)
{
    start_gw();
    char *run_argv[] = {(char *)pk.parkgw, "run", "-c", pk.gw_cfg, "-v", NULL};
    char *out = NULL, *err = NULL;
    int64_t t0 = now_mono_ms();
    int rc = h_run(run_argv, &out, &err, 15000);
    printf("second daemon: exit %d after %lld ms: %s", rc, (long long)(now_mono_ms() - t0), err);
    CHECK_INT(rc, 2);
    char want[64];
    snprintf(want, sizeof(want), "pid %ld", (long)pk.gw.pid);
    CHECK_CONTAINS(err, want);
    CHECK_CONTAINS(err, "in use by another parkgw daemon");
    /* It never polled: only the first daemon's commits are in its log. */
    CHECK(!strstr(err, "running:"));
    free(out);
    free(err);
    size_t commits = h_log_count(&pk.gw, "storage: committed");
    CHECK(h_wait_log(&pk.gw, "storage: committed", commits + 2, 10000));
}

/* The database unlinked under the daemon: noticed, logged, exit 2, nothing
 * re-created at the path and its WAL removed; systemd's restart makes a
 * fresh database at the same path. */
static void scenario_database_unlinked(void)
{
    CHECK_INT(unlink(db), 0);
    int64_t t0 = now_mono_ms();
    int st = h_stop(&pk.gw, 0, 15000); /* signal 0: only wait for the exit */
    printf("after unlink: exit status %d after %lld ms\n", st, (long long)(now_mono_ms() - t0));
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK_INT(h_log_count(&pk.gw, "was deleted (or renamed away) while the daemon was running"),
              1);
    CHECK(h_log_count(&pk.gw, "stopping with a failure") == 1);
    CHECK(!exists(db));  /* nothing re-created it */
    CHECK(!exists(wal)); /* its WAL would otherwise meet the next file */
    start_gw();
    CHECK(exists(db));
}

/* The database replaced (a consistent copy renamed over it): noticed,
 * exit 2, and the replacement is left as it was: no WAL of the daemon's
 * next to it, intact, the same rows. */
static void scenario_database_replaced(void)
{
    char *other = xasprintf("%s/other.db", pk.dir);
    CHECK(backup(db, other));
    int64_t rows = h_db_int(other, "SELECT count(*) FROM staged") +
                   h_db_int(other, "SELECT count(*) FROM series");
    CHECK(rows > 0);
    CHECK_INT(rename(other, db), 0);
    int64_t t0 = now_mono_ms();
    int st = h_stop(&pk.gw, 0, 15000);
    printf("after replace: exit status %d after %lld ms\n", st, (long long)(now_mono_ms() - t0));
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK_INT(h_log_count(&pk.gw, "was replaced by another file while the daemon was running"), 1);
    /* Checked before this test opens it, which makes a -wal of its own. */
    CHECK(!exists(wal));
    CHECK(integrity_ok(db));
    CHECK_INT(h_db_int(db, "SELECT count(*) FROM staged") +
                  h_db_int(db, "SELECT count(*) FROM series"),
              rows);
    free(other);
}

/* A stop whose last samples cannot be written exits with a failure. */
static void scenario_stop_unwritten(void)
{
    start_gw();
    sqlite3 *locker = NULL;
    CHECK_INT(sqlite3_open(db, &locker), SQLITE_OK);
    sqlite3_busy_timeout(locker, 5000);
    CHECK_INT(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    /* The writer holds samples it cannot commit (after its 5 s busy wait). */
    CHECK(h_wait_log(&pk.gw, "busy (locked by another process)", 1, 15000));
    int64_t t0 = now_mono_ms();
    int st = h_stop(&pk.gw, SIGTERM, 30000);
    printf("stop with the write lock held elsewhere: exit status %d after %lld ms\n", st,
           (long long)(now_mono_ms() - t0));
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK(h_log_count(&pk.gw, "samples not written to") >= 1);
    CHECK_INT(h_log_count(&pk.gw, "stopping with a failure: samples were not written"), 1);
    sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(locker);
}

/* Garbage in the first pages: status says so, with quick_check's word. */
static void scenario_status_damaged(void)
{
    char *status_argv[] = {(char *)pk.parkgw, "status", "-c", pk.gw_cfg, NULL};
    char *out = NULL, *err = NULL;
    CHECK_INT(h_run(status_argv, &out, &err, 15000), 0);
    free(out);
    free(err);
    FILE *f = fopen(db, "r+");
    CHECK(f != NULL);
    if (f) {
        char junk[3 * 4096];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(i * 7919 % 251);
        fseek(f, 4096, SEEK_SET);
        CHECK_INT(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
        fclose(f);
    }
    out = err = NULL;
    int rc = h_run(status_argv, &out, &err, 15000);
    printf("status on a damaged database: exit %d: %s", rc, err ? err : "");
    CHECK_INT(rc, 2);
    CHECK_CONTAINS(err, "the database is damaged");
    CHECK_CONTAINS(err, "PRAGMA quick_check: ");
    free(out);
    free(err);
}

int main(void)
{
    h_park_start(&pk, "it_dbguard", make_config, SEED);
    db = xasprintf("%s/parkgw.db", pk.dir);
    wal = xasprintf("%s-wal", db);
    scenario_second_daemon_refused();
    scenario_database_unlinked();
    scenario_database_replaced();
    scenario_stop_unwritten();
    scenario_status_damaged();
    h_park_free(&pk, check_failed);
    free(db);
    free(wal);
    return check_done();
}
