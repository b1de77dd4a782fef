/*
 * it_dbguard.c - the database under `parkgw run` is guarded (issue 14):
 * 1. one daemon per database: a second `parkgw run` on the same database
 *    exits non-zero at once, naming the first one's pid, while the first
 *    keeps polling and committing;
 * 2. the database file unlinked under the daemon: noticed, logged at error,
 *    the daemon exits with a failure (2) and writes nothing more (no file
 *    appears at the path, its WAL is gone); a restart creates a fresh one;
 * 3. the database file replaced (renamed over) under the daemon: the same,
 *    and the replacement is left as it was (intact, same row count).
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

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
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

/* Starts the daemon and waits for its first commits. */
static void start_gw(struct proc *gw, char *const argv[], const char *log)
{
    size_t before = h_log_count(gw, "storage: committed");
    h_spawn(gw, argv, log, false);
    CHECK(h_wait_log(gw, "storage: committed", before + 2, 20000));
}

int main(void)
{
    char *dir = h_park_dir("it_dbguard");
    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
    int mport = h_start_mosquitto(&mosq, dir);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir), *gw_cfg = xasprintf("%s/gw.cfg", dir);
    char *text = make_config(dir, mport, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    text = make_config(dir, mport, sport);
    h_write_file(gw_cfg, text);
    free(text);

    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *gw_log = xasprintf("%s/parkgw.log", dir), *db = xasprintf("%s/parkgw.db", dir);
    char *wal = xasprintf("%s-wal", db), *other = xasprintf("%s/other.db", dir);
    char *run_argv[] = {(char *)parkgw, "run", "-c", gw_cfg, "-v", NULL};

    /* 1. A second daemon on the same database. */
    start_gw(&gw, run_argv, gw_log);
    char *out = NULL, *err = NULL;
    int64_t t0 = now_mono_ms();
    int rc = h_run(run_argv, &out, &err, 15000);
    printf("second daemon: exit %d after %lld ms: %s", rc, (long long)(now_mono_ms() - t0), err);
    CHECK_INT(rc, 2);
    char want[64];
    snprintf(want, sizeof(want), "pid %ld", (long)gw.pid);
    CHECK_CONTAINS(err, want);
    CHECK_CONTAINS(err, "in use by another parkgw daemon");
    /* It never polled: only the first daemon's commits are in its log. */
    CHECK(!strstr(err, "running:"));
    free(out);
    free(err);
    size_t commits = h_log_count(&gw, "storage: committed");
    CHECK(h_wait_log(&gw, "storage: committed", commits + 2, 10000));

    /* 2. The database unlinked under the daemon. */
    CHECK_INT(unlink(db), 0);
    t0 = now_mono_ms();
    int st = h_stop(&gw, 0, 15000);   /* signal 0: only wait for the exit */
    printf("after unlink: exit status %d after %lld ms\n", st, (long long)(now_mono_ms() - t0));
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK_INT(h_log_count(&gw, "was deleted (or renamed away) while the daemon was running"), 1);
    CHECK(h_log_count(&gw, "stopping with a failure") == 1);
    CHECK(!exists(db));    /* nothing re-created it */
    CHECK(!exists(wal));   /* its WAL would otherwise meet the next file */

    /* systemd's restart: a fresh database at the same path. */
    start_gw(&gw, run_argv, gw_log);
    CHECK(exists(db));

    /* 3. The database replaced (a copy renamed over it). */
    CHECK(backup(db, other));
    int64_t rows = db_int(other, "SELECT count(*) FROM staged") +
                   db_int(other, "SELECT count(*) FROM series");
    CHECK(rows > 0);
    CHECK_INT(rename(other, db), 0);
    t0 = now_mono_ms();
    st = h_stop(&gw, 0, 15000);
    printf("after replace: exit status %d after %lld ms\n", st, (long long)(now_mono_ms() - t0));
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK_INT(h_log_count(&gw, "was replaced by another file while the daemon was running"), 1);
    /* The replacement is untouched: the daemon's WAL is not left to meet it
     * (checked before this test opens it, which makes a -wal of its own). */
    CHECK(!exists(wal));
    CHECK(integrity_ok(db));
    CHECK_INT(db_int(db, "SELECT count(*) FROM staged") + db_int(db, "SELECT count(*) FROM series"),
              rows);

    if (check_failed)
        h_dump_log(&gw, "parkgw");
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    free(gw_log);
    free(db);
    free(wal);
    free(other);
    free(gw_cfg);
    free(sim_cfg);
    free(dir);
    return check_done();
}
