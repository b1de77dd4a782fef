/*
 * it_diskfull.c - a full disk under the running daemon: the database lives
 * on a 2 MiB tmpfs mounted in the test's temp dir; once parkgw ingests, a
 * filler file takes the rest of the space. parkgw must log the disk-full
 * error, stay up, keep publishing live values, and when the filler is
 * deleted write again, including the samples it held meanwhile (no hole in
 * a meter's series). Needs root for mount(2); otherwise prints SKIP and
 * exits 0. The tmpfs is always unmounted (atexit).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/store.h"
#include "tests/integration/harness.h"

#define SEED 99

static char *mnt_path;

static void unmount_tmpfs(void)
{
    if (mnt_path && umount2(mnt_path, MNT_DETACH) == 0)
        fprintf(stderr, "unmounted %s\n", mnt_path);
    free(mnt_path);
    mnt_path = NULL;
}

static char *make_config(const char *db_dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itfull\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"full\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"line\"; unit_id = 1;\n"
        "    profile = \"generic-electricity\"; interval = 1; },\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "    profile = \"generic-water\"; interval = 1; } ); } );\n",
        db_dir, mqtt_port, sim_port);
}

/* Writes the filler until the filesystem refuses; returns bytes written. */
static long long fill(const char *path)
{
    static char block[16384];
    long long total = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    memset(block, 0xa5, sizeof(block));
    for (;;) {
        ssize_t w = write(fd, block, sizeof(block));
        if (w <= 0)
            break;
        total += w;
    }
    /* tmpfs rounds to pages: also take the last partial page */
    for (;;) {
        ssize_t w = write(fd, block, 512);
        if (w <= 0)
            break;
        total += w;
    }
    close(fd);
    return total;
}

struct gapscan {
    int64_t prev, max_gap;
    size_t n;
};

static int gap_cb(void *ud, int64_t ts, double v)
{
    (void)v;
    struct gapscan *g = ud;
    if (g->n && ts - g->prev > g->max_gap)
        g->max_gap = ts - g->prev;
    g->prev = ts;
    g->n++;
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP it_diskfull: needs root to mount a tmpfs\n");
        return 0;
    }
    char *dir = h_park_dir("it_diskfull");

    char *mnt = xasprintf("%s/mnt", dir);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0755") < 0) {
        printf("SKIP it_diskfull: cannot mount a tmpfs on %s: %s\n", mnt, strerror(errno));
        return 0;
    }
    mnt_path = xstrdup(mnt);
    atexit(unmount_tmpfs);

    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
    int mport = h_start_mosquitto(&mosq, dir);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir), *gw_cfg = xasprintf("%s/gw.cfg", dir);
    char *text = make_config(mnt, mport, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    text = make_config(mnt, mport, sport);
    h_write_file(gw_cfg, text);
    free(text);

    struct h_sub *sub = h_sub_new(mport, "it-full-sub", "park/itfull/#");
    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *gw_log = xasprintf("%s/parkgw.log", dir);
    char *run_argv[] = {(char *)parkgw, "run", "-c", gw_cfg, "-v", NULL};
    h_spawn(&gw, run_argv, gw_log, false);
    CHECK(h_wait_log(&gw, "storage: committed", 3, 15000));

    /* Fill the filesystem: the next commits that need a page fail. */
    char *filler = xasprintf("%s/filler", mnt);
    long long filled = fill(filler);
    printf("filler: %lld bytes\n", filled);
    CHECK(filled > 0);
    bool full = h_wait_log(&gw, "storage: disk full", 1, 30000);
    CHECK(full);
    size_t commits_at_full = h_log_count(&gw, "storage: committed");

    /* Still up, still publishing live values while nothing can be written. */
    sleep_ms(3000);
    CHECK(h_alive(&gw));
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait(sub, mark, "park/itfull/full/electricity/e1/live", NULL, 5000) >= 0);
    CHECK(h_sub_wait(sub, mark, "park/itfull/full/water/w1/live", NULL, 5000) >= 0);
    /* nothing (or at most a commit that found room) landed meanwhile */
    CHECK(h_log_count(&gw, "storage: committed") <= commits_at_full + 1);

    /* Space comes back: writing resumes, the held samples land. */
    CHECK_INT(unlink(filler), 0);
    CHECK(h_wait_log(&gw, "resumed after", 1, 40000));
    CHECK(h_wait_log(&gw, "storage: committed", commits_at_full + 3, 15000));
    int status = h_stop(&gw, SIGTERM, 15000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* No hole: e1's energy every second, the full episode included (the
     * largest step between samples stays within a couple of intervals). */
    struct store *st = NULL;
    char err[512], *db = xasprintf("%s/parkgw.db", mnt);
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    if (st) {
        uint32_t id;
        struct gapscan g = {0};
        CHECK_INT(store_find_point(st, "full", "e1", "energy_import_kwh", &id), 0);
        store_scan(st, id, 0, INT64_MAX, gap_cb, &g);
        printf("e1: %zu samples, largest step %lld ms\n", g.n, (long long)g.max_gap);
        CHECK(g.n >= 10);
        CHECK(g.max_gap <= 2500);
        store_close(st);
    }

    if (check_failed)
        h_dump_log(&gw, "parkgw");
    h_sub_free(sub);
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    free(db);
    free(filler);
    free(gw_log);
    free(gw_cfg);
    free(sim_cfg);
    free(mnt);
    free(dir);
    return check_done();
}
