/*
 * bench_ingest.c - ingest throughput and storage density of the writer +
 * store: a park-like workload (M meters x P points, one batch per meter per
 * interval, staggered within the interval, simulated time) pushed through
 * writer_submit into a fresh database. Prints figures, asserts nothing.
 *
 *   bench_ingest [-m meters] [-p points] [-d sim_seconds] [-i interval_s]
 *                [-q max_queued] [-o db_path] [-k] [-s] [-c commit_window_ms]
 *
 * -s (live pacing): wait for each meter batch to be committed before the
 * next, so every transaction holds one meter batch, as in the running
 * daemon where batches arrive slower than the writer commits. With -c N as
 * well, the writer gathers batches for N ms of *simulated* time: the
 * producer waits for a commit every N/1000 simulated seconds. Without -s the
 * producer runs ahead and the writer commits groups of up to 10000 samples.
 * "bytes written" is the process's write(2) volume (/proc/self/io wchar):
 * WAL frames plus checkpoint copies, i.e. what reaches the disk eventually,
 * including the final move of the staged samples at writer_stop. "reader":
 * a read-only connection scanning the last minute of every point while the
 * last chunk period is still staged (table staged, docs/STORAGE.md).
 */
#include "daemon/writer.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct opts {
    int64_t meters, points, duration_s, interval_s, max_queued, window_ms;
    const char *path;
    bool keep;
    bool live;
};

static void usage(void)
{
    fprintf(stderr, "usage: bench_ingest [-m meters (100)] [-p points (15)] [-d sim_seconds (7200)]\n"
                    "                    [-i interval_s (1)] [-q max_queued (100000)] [-o db_path] [-k]\n"
                    "                    [-s (live pacing: one meter batch per transaction)]\n"
                    "                    [-c commit_window_ms (with -s: one commit per window)]\n");
}

static int parse_pos(const char *s, int64_t *ret)
{
    int64_t v;
    if (parse_int64(s, &v) < 0 || v <= 0)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* Deterministic noise in [-1, 1). */
static double noise(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / (double)(1ULL << 52) - 1.0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Bytes this process has passed to write(2) so far, -1 if unknown. */
static int64_t written_bytes(void)
{
    char line[128];
    int64_t v = -1;
    FILE *f = fopen("/proc/self/io", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "wchar: ", 7) == 0) {
            if (parse_int64(strtok(line + 7, "\n"), &v) < 0)
                v = -1;
            break;
        }
    }
    fclose(f);
    return v;
}

static int count_row(void *ud, int64_t ts, double value)
{
    (void)ts;
    (void)value;
    (*(int64_t *)ud)++;
    return 0;
}

/* Lets the writer commit what is queued and waits until it has; pauses
 * it again afterwards if 'repause'. */
static void flush(struct writer *w, bool repause)
{
    struct writer_stats ws;
    if (repause)
        writer_pause_for_test(w, false);
    do {
        writer_get_stats(w, &ws);
    } while (ws.queue_len > 0);
    if (repause)
        writer_pause_for_test(w, true);
}

static void remove_db(const char *path)
{
    char *f;
    unlink(path);
    f = xasprintf("%s-wal", path);
    unlink(f);
    free(f);
    f = xasprintf("%s-shm", path);
    unlink(f);
    free(f);
}

int main(int argc, char **argv)
{
    struct opts o = {100, 15, 7200, 1, 100000, 0, NULL, false, false};
    char err[512], *tmp_path = NULL;
    struct store *st = NULL;
    struct writer *w = NULL;
    struct writer_stats ws;
    struct store_stats ss;
    struct rusage ru;
    struct stat sb;
    int c, r;

    while ((c = getopt(argc, argv, "m:p:d:i:q:o:ksc:h")) != -1) {
        int64_t *dst = NULL;
        switch (c) {
        case 'm': dst = &o.meters; break;
        case 'p': dst = &o.points; break;
        case 'd': dst = &o.duration_s; break;
        case 'i': dst = &o.interval_s; break;
        case 'q': dst = &o.max_queued; break;
        case 'c': dst = &o.window_ms; break;
        case 'o': o.path = optarg; break;
        case 'k': o.keep = true; break;
        case 's': o.live = true; break;
        default: usage(); return 1;
        }
        if (dst && parse_pos(optarg, dst) < 0) {
            fprintf(stderr, "bench_ingest: -%c wants a positive integer, not \"%s\"\n", c, optarg);
            return 1;
        }
    }
    if (!o.path) {
        const char *dir = getenv("TMPDIR");
        tmp_path = xasprintf("%s/bench_ingest.%ld.db", dir && *dir ? dir : "/tmp", (long)getpid());
        o.path = tmp_path;
    }
    remove_db(o.path);
    log_set_level(LOG_LVL_NOTICE);

    r = store_open(o.path, false, &st, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        return 2;
    }
    /* Register the points as the daemon does at start-up, ids 1..M*P. */
    uint32_t *ids = xcalloc((size_t)(o.meters * o.points), sizeof(*ids));
    for (int64_t m = 0; m < o.meters; m++) {
        for (int64_t p = 0; p < o.points; p++) {
            char ent[32], met[32], pt[32];
            snprintf(ent, sizeof(ent), "e%02lld", (long long)(m / 4 + 1));
            snprintf(met, sizeof(met), "meter-%lld", (long long)m);
            snprintf(pt, sizeof(pt), "p%lld", (long long)p);
            r = store_point_id(st, ent, met, pt, UTIL_ELECTRICITY, p == 0 ? KIND_COUNTER : KIND_GAUGE,
                               &ids[m * o.points + p]);
            if (r < 0) {
                fprintf(stderr, "bench_ingest: store_point_id: %s\n", strerror(-r));
                return 2;
            }
        }
    }

    /*
     * Values shaped like decoded meter registers: point 0 an energy counter
     * (kWh, 0.01 resolution, growing); every 5th point a 0/1 status; the
     * rest gauges around a per-point level with noise, 2 decimals (voltage,
     * current, power, power factor...). Integer-valued doubles are what
     * SQLite stores compactly in a REAL column; 2-decimal ones take 8 bytes.
     */
    size_t np = (size_t)o.points;
    struct sample *batch = xcalloc(np, sizeof(*batch));
    double *level = xcalloc((size_t)(o.meters * o.points), sizeof(*level));
    uint64_t rng = 42;
    for (int64_t i = 0; i < o.meters * o.points; i++)
        level[i] = (i % o.points == 0) ? 100000.0 + 1000.0 * (double)(i / o.points)
                                         : 10.0 + 500.0 * fabs(noise(&rng));

    const int64_t t0 = 1767225600000;   /* 2026-01-01T00:00:00Z */
    int64_t total = 0, eagain = 0, window = 0;
    double cpu0 = cpu_seconds();
    int64_t wr0 = written_bytes();
    int64_t wall0 = now_mono_ms();

    r = writer_start(st, (size_t)o.max_queued, &w);
    if (r < 0) {
        fprintf(stderr, "bench_ingest: writer_start: %s\n", strerror(-r));
        return 2;
    }
    if (o.live && o.window_ms)
        writer_pause_for_test(w, true);
    for (int64_t s = 0; s < o.duration_s; s += o.interval_s) {
        for (int64_t m = 0; m < o.meters; m++) {
            /* Meters are polled staggered across the interval. */
            int64_t ts = t0 + s * 1000 + m * o.interval_s * 1000 / o.meters;
            for (size_t p = 0; p < np; p++) {
                size_t k = (size_t)m * np + p;
                double v;
                if (p == 0) {
                    level[k] += 0.05 + 0.05 * fabs(noise(&rng));
                    v = round(level[k] * 100.0) / 100.0;
                } else if (p % 5 == 4) {
                    v = noise(&rng) > 0.9 ? 0.0 : 1.0;
                } else {
                    v = round((level[k] * (1.0 + 0.02 * noise(&rng))) * 100.0) / 100.0;
                }
                batch[p] = (struct sample){ids[k], ts, v};
            }
            /* Live pacing with a window: the writer (kept paused) commits
             * when the simulated window closes; its own timer is not
             * used since simulated time runs faster than real time. */
            if (o.live && o.window_ms && (ts - t0) / o.window_ms != window) {
                window = (ts - t0) / o.window_ms;
                flush(w, true);
            }
            /* Simulated time runs faster than the writer: back off rather
             * than drop, so every generated sample is measured. */
            while (writer_submit(w, batch, np) == -EAGAIN) {
                eagain++;
                sleep_ms(1);
            }
            total += (int64_t)np;
            if (o.live && !o.window_ms)
                flush(w, false);
        }
    }
    /* Let the queue drain so the stats cover every commit. */
    writer_pause_for_test(w, false);
    do {
        sleep_ms(5);
        writer_get_stats(w, &ws);
    } while (ws.queue_len > 0);
    /* The reader's time, CPU and (nil) writes are left out of the figures. */
    int64_t wall_ms = now_mono_ms() - wall0;
    double cpu = cpu_seconds() - cpu0;
    /* A reader beside the writer while the last quarter hour is still
     * staged (parkgw query/status/bill): its own connection, the last
     * minute of every point. */
    struct store *ro = NULL;
    int64_t rd_rows = 0, rd_first_ms = -1, rd_all_ms = -1, staged = -1;
    if (store_open(o.path, true, &ro, err, sizeof(err)) == 0) {
        int64_t tend = t0 + o.duration_s * 1000;
        int64_t r0 = now_mono_ms();
        store_scan(ro, ids[0], tend - 60000, tend, count_row, &rd_rows);
        rd_first_ms = now_mono_ms() - r0;
        r0 = now_mono_ms();
        /* At most 300 points: each scan range-scans every meter's staged
         * rows of that minute (docs/STORAGE.md, schema 5). */
        for (int64_t i = 0; i < o.meters * o.points && i < 300; i++)
            store_scan(ro, ids[i], tend - 60000, tend, count_row, &rd_rows);
        rd_all_ms = now_mono_ms() - r0;
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(store_db(ro), "SELECT coalesce(sum(n), 0) FROM staged", -1, &q,
                               NULL) == SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW)
                staged = sqlite3_column_int64(q, 0);
            sqlite3_finalize(q);
        }
        store_close(ro);
    }
    int64_t stop0 = now_mono_ms();
    double stop_cpu0 = cpu_seconds();
    writer_stop(w);   /* commits the rest and moves what is staged */
    wall_ms += now_mono_ms() - stop0;
    cpu += cpu_seconds() - stop_cpu0;
    /* Includes the final checkpoint at close: all WAL content reached the
     * database file. */
    store_close(st);
    st = NULL;
    int64_t written = written_bytes() - wr0;

    /* Closed above (checkpointing the WAL into the main file); reopen to measure. */
    r = store_open(o.path, false, &st, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "bench_ingest: reopen: %s\n", err);
        return 2;
    }
    int64_t count0 = now_mono_ms();
    r = store_stats(st, &ss);
    int64_t count_ms = now_mono_ms() - count0;
    if (r < 0) {
        fprintf(stderr, "bench_ingest: store_stats: %s\n", strerror(-r));
        return 2;
    }
    getrusage(RUSAGE_SELF, &ru);

    printf("workload          %lld meters x %lld points, every %lld s, %lld simulated s, ",
           (long long)o.meters, (long long)o.points, (long long)o.interval_s,
           (long long)o.duration_s);
    if (!o.live)
        printf("flat out (groups of <= 10000 samples)\n");
    else if (!o.window_ms)
        printf("live pacing (1 meter batch per commit)\n");
    else
        printf("live pacing, one commit per %lld ms window\n", (long long)o.window_ms);
    printf("samples           %lld generated, %lld stored, %llu queue-full retries\n",
           (long long)total, (long long)ss.samples, (unsigned long long)eagain);
    printf("wall              %.2f s (submit + drain)\n", (double)wall_ms / 1000.0);
    printf("throughput        %.0f samples/s (real park rate: %.0f samples/s, headroom x%.0f)\n",
           (double)total * 1000.0 / (double)(wall_ms ? wall_ms : 1),
           (double)(o.meters * o.points) / (double)o.interval_s,
           (double)total * 1000.0 / (double)(wall_ms ? wall_ms : 1) /
               ((double)(o.meters * o.points) / (double)o.interval_s));
    printf("cpu               %.2f s total, %.2f cpu-s per million samples (incl. generation)\n",
           cpu, cpu * 1e6 / (double)(total ? total : 1));
    printf("database          %lld bytes (page_count x page_size), file %lld bytes\n",
           (long long)ss.db_bytes, stat(o.path, &sb) == 0 ? (long long)sb.st_size : -1LL);
    printf("bytes/sample      %.2f\n", (double)ss.db_bytes / (double)(ss.samples ? ss.samples : 1));
    printf("bytes written     %.1f MB, %.0f bytes per sample (WAL + checkpoints)\n",
           (double)written / 1e6, (double)written / (double)(total ? total : 1));
    printf("stats scan        %lld ms (count(*) over all samples)\n", (long long)count_ms);
    printf("reader            %lld samples staged at the end; last minute of 1 point %lld ms, "
           "of %lld points %lld ms (%lld rows)\n",
           (long long)staged, (long long)rd_first_ms,
           (long long)(o.meters * o.points < 300 ? o.meters * o.points : 300),
           (long long)rd_all_ms, (long long)rd_rows);
    printf("peak RSS          %ld KiB\n", ru.ru_maxrss);
    printf("writer            %llu batches committed, %llu dropped (retried), commit errors %llu\n",
           (unsigned long long)ws.batches_committed, (unsigned long long)ws.batches_dropped,
           (unsigned long long)ws.commit_errors);

    store_close(st);
    if (!o.keep)
        remove_db(o.path);
    else
        printf("kept              %s\n", o.path);
    free(ids);
    free(batch);
    free(level);
    free(tmp_path);
    return 0;
}
