/*
 * it_diskfull.c - a full disk under the running daemon: the database lives
 * on a 2 MiB tmpfs mounted in the test's temp dir; once parkgw ingests, a
 * filler file takes the rest of the space. parkgw must log the disk-full
 * error, stay up, keep publishing live values, and when the filler is
 * deleted write again, including the samples it held meanwhile (no hole in
 * a meter's series). Needs root for mount(2); otherwise prints SKIP and
 * exits 0. The tmpfs is always unmounted (atexit). Each phase waits on log
 * lines and live messages with a deadline.
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
    int64_t first, prev, max_gap;
    size_t n;
};

static int gap_cb(void *ud, int64_t ts, double v)
{
    (void)v;
    struct gapscan *g = ud;
    if (g->n && ts - g->prev > g->max_gap)
        g->max_gap = ts - g->prev;
    if (!g->n)
        g->first = ts;
    g->prev = ts;
    g->n++;
    return 0;
}

#define E1_LIVE "park/itfull/full/electricity/e1/live"
#define W1_LIVE "park/itfull/full/water/w1/live"

static struct h_park pk;
static struct h_sub *sub;
static char *filler;
static size_t commits_at_full;
static int64_t t_full, t_resumed;

/* The database's directory: the tmpfs (mnt_path) for both configs. */
static char *make_park_config(const char *dir, int mqtt_port, int sim_port)
{
    UNUSED(dir);
    return make_config(mnt_path, mqtt_port, sim_port);
}

/* parkgw ingests (three commits), then a filler takes the rest of the
 * space: the next commits that need a page fail and it logs "disk full". */
static bool scenario_disk_fills(void)
{
    sub = h_sub_new(pk.mport, "it-full-sub", "park/itfull/#");
    h_park_run(&pk, true);
    CHECK(h_wait_log(&pk.gw, "storage: committed", 3, 15000));
    filler = xasprintf("%s/filler", mnt_path);
    long long filled = fill(filler);
    printf("filler: %lld bytes\n", filled);
    CHECK(filled > 0);
    bool full = h_wait_log(&pk.gw, "storage: disk full", 1, 30000);
    CHECK(full);
    t_full = now_real_ms();
    commits_at_full = h_log_count(&pk.gw, "storage: committed");
    return full;
}

/* While nothing can be written: still up, still publishing live values of
 * both meters (three each), and nothing (or at most a commit that found
 * room) landed meanwhile. */
static void scenario_full_disk_keeps_publishing(void)
{
    size_t mark = h_sub_count(sub);
    CHECK(h_sub_wait_count(sub, mark, E1_LIVE, NULL, 3, 6000));
    CHECK(h_sub_wait_count(sub, mark, W1_LIVE, NULL, 3, 3000));
    CHECK(h_alive(&pk.gw));
    CHECK(h_log_count(&pk.gw, "storage: committed") <= commits_at_full + 1);
}

/* Space comes back: writing resumes after at least two failed attempts
 * (one retry happened while full), the held samples land; clean stop. */
static void scenario_space_back_resumes(void)
{
    CHECK_INT(unlink(filler), 0);
    CHECK(h_wait_log(&pk.gw, "resumed after", 1, 40000));
    t_resumed = now_real_ms();
    char *log = h_read_file(pk.gw_log);
    const char *line = log ? strstr(log, "resumed after ") : NULL;
    unsigned attempts = 0;
    CHECK(line && sscanf(line, "resumed after %u failed attempt", &attempts) == 1);
    printf("writing resumed after %u failed attempts\n", attempts);
    CHECK(attempts >= 2);
    free(log);
    CHECK(h_wait_log(&pk.gw, "storage: committed", commits_at_full + 3, 15000));
    CHECK(h_park_stop_gw(&pk));
}

/* No hole: e1's energy every second from before the disk filled to after
 * writing resumed (the largest step between samples stays within a couple
 * of intervals, one sample per second on average). */
static void scenario_no_hole_in_series(void)
{
    struct store *st = NULL;
    char err[512], *db = xasprintf("%s/parkgw.db", mnt_path);
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    free(db);
    if (!st)
        return;
    uint32_t id;
    struct gapscan g = {0};
    CHECK_INT(store_find_point(st, "full", "e1", "energy_import_kwh", &id), 0);
    store_scan(st, id, 0, INT64_MAX, gap_cb, &g);
    printf("e1: %zu samples over %lld ms, largest step %lld ms\n", g.n,
           (long long)(g.prev - g.first), (long long)g.max_gap);
    CHECK(g.n >= 5);
    CHECK(g.first < t_full - 1000 && g.prev >= t_resumed - 1000);
    CHECK((int64_t)g.n >= (g.prev - g.first) / 1000);
    CHECK(g.max_gap <= 2500);
    store_close(st);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP it_diskfull: needs root to mount a tmpfs\n");
        return 0;
    }
    /* The tmpfs is mounted in a directory of its own: the park's directory
     * is made by h_park_start. */
    char *dir = h_tmpdir("it_diskfull-mnt");
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0755") < 0) {
        printf("SKIP it_diskfull: cannot mount a tmpfs on %s: %s\n", dir, strerror(errno));
        return 0;
    }
    mnt_path = dir;
    atexit(unmount_tmpfs);

    h_park_start(&pk, "it_diskfull", make_park_config, SEED);
    if (scenario_disk_fills()) {
        scenario_full_disk_keeps_publishing();
        scenario_space_back_resumes();
        scenario_no_hole_in_series();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    free(filler);
    return check_done();
}
