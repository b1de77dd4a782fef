/*
 * test_writer.c - the writer thread over a real store: concurrent
 * submitters lose nothing, the queue bound drops and counts, the progress
 * marker moves while idle, a full disk (max_page_count cap) keeps the
 * samples in memory until the store accepts them again, the commit window
 * gathers batches, and samples are staged while it runs and moved at stop.
 */
#include "daemon/writer.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

static void make_dirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

static struct store *open_fresh(const char *name)
{
    char path[PATH_MAX + 64], f[PATH_MAX + 80], err[512] = "";
    struct store *s = NULL;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
    snprintf(f, sizeof(f), "%s-wal", path);
    unlink(f);
    snprintf(f, sizeof(f), "%s-shm", path);
    unlink(f);
    if (store_open(path, false, &s, err, sizeof(err)) < 0)
        fprintf(stderr, "store_open: %s\n", err);
    CHECK(s != NULL);
    return s;
}

static int64_t count_samples(struct store *s)
{
    struct store_stats st;
    return store_stats(s, &st) == 0 ? st.samples : -1;
}

/* One integer from SQL on the store's connection (only while the writer
 * thread does not write: the connection is serialized anyway). */
static int64_t sql_count(struct store *s, const char *sql)
{
    sqlite3_stmt *q;
    int64_t v = -1;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return v;
}

/* Polls the writer's stats until samples_committed reaches want or
 * timeout_ms passes; returns the last stats. */
static struct writer_stats wait_committed(struct writer *w, uint64_t want, int64_t timeout_ms)
{
    struct writer_stats st;
    int64_t end = now_mono_ms() + timeout_ms;
    for (;;) {
        writer_get_stats(w, &st);
        if (st.samples_committed >= want || now_mono_ms() > end)
            return st;
        sleep_ms(10);
    }
}

#define BATCHES_PER_THREAD 500
#define POINTS_PER_BATCH 15

struct submitter {
    struct writer *w;
    uint32_t first_point;
    int failures;
};

static void *submit_thread(void *arg)
{
    struct submitter *sub = arg;
    struct sample b[POINTS_PER_BATCH];
    for (int i = 0; i < BATCHES_PER_THREAD; i++) {
        for (int p = 0; p < POINTS_PER_BATCH; p++) {
            b[p].point = sub->first_point + (uint32_t)p;
            b[p].ts = 1700000000000 + (int64_t)i * 1000;
            b[p].value = i * 0.5 + p;
        }
        if (writer_submit(sub->w, b, POINTS_PER_BATCH) != 0)
            sub->failures++;
    }
    return NULL;
}

static void test_two_submitters(void)
{
    struct store *s = open_fresh("two.db");
    struct writer *w = NULL;
    struct writer_stats st;
    pthread_t t[2];
    struct submitter sub[2];

    if (!s)
        return;
    CHECK_INT(writer_start(s, 1000000, &w), 0);
    for (int k = 0; k < 2; k++) {
        /* Thread 0 writes points 1..15, thread 1 points 101..115: no
         * (point, ts) collides, so every sample must land. */
        sub[k] = (struct submitter){w, (uint32_t)(1 + 100 * k), 0};
        pthread_create(&t[k], NULL, submit_thread, &sub[k]);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    CHECK_INT(sub[0].failures, 0);
    CHECK_INT(sub[1].failures, 0);

    /* 2 threads x 500 batches x 15 samples = 15000 samples, 1000 batches. */
    st = wait_committed(w, 15000, 20000);
    CHECK_INT(st.samples_committed, 15000);
    CHECK_INT(st.batches_committed, 1000);
    CHECK_INT(st.batches_dropped, 0);
    CHECK_INT(st.commit_errors, 0);
    CHECK_INT(st.queue_len, 0);
    /* The writer stages (storage/store.h). ts runs from 1700000000000
     * (22:13:20Z) to + 499 s (22:21:39Z); quarter hours start at multiples
     * of 900000 ms, so 22:15:00Z = 1700000100000 is the only boundary: the
     * samples of i >= 100 (400 x 30 = 12000) stay staged while the writer
     * runs, those before may have been moved (3000), one transaction each
     * way, so both tables together always hold 15000. */
    CHECK(sql_count(s, "SELECT sum(n) FROM staged") >= 12000);
    CHECK_INT(sql_count(s, "SELECT (SELECT coalesce(sum(n), 0) FROM staged) + "
                           "(SELECT coalesce(sum(n), 0) FROM series)"),
              15000);
    CHECK_INT(count_samples(s), 15000);
    writer_stop(w);
    /* Stopping moved the rest, with their rollups: every level counts all
     * 15000. */
    CHECK_INT(sql_count(s, "SELECT count(*) FROM staged"), 0);
    CHECK_INT(sql_count(s, "SELECT sum(n) FROM series"), 15000);
    CHECK_INT(sql_count(s, "SELECT sum(n) FROM rollup_15m"), 15000);
    CHECK_INT(sql_count(s, "SELECT sum(n) FROM rollup_1d"), 15000);
    CHECK_INT(count_samples(s), 15000);
    store_close(s);
}

static void test_stop_drains(void)
{
    struct store *s = open_fresh("drain.db");
    struct writer *w = NULL;
    struct sample b[10];

    if (!s)
        return;
    CHECK_INT(writer_start(s, 1000, &w), 0);
    writer_pause_for_test(w, true);
    for (int i = 0; i < 30; i++) {
        for (int p = 0; p < 10; p++)
            b[p] = (struct sample){(uint32_t)(p + 1), (int64_t)i * 1000, (double)i};
        CHECK_INT(writer_submit(w, b, 10), 0);
    }
    /* Paused, nothing committed yet; stop must unpause, commit all 300. */
    CHECK_INT(count_samples(s), 0);
    writer_stop(w);
    CHECK_INT(count_samples(s), 300);
    store_close(s);
}

static void test_queue_bound(void)
{
    struct store *s = open_fresh("bound.db");
    struct writer *w = NULL;
    struct writer_stats st;
    struct sample b[15];
    int64_t marker;

    if (!s)
        return;
    for (int p = 0; p < 15; p++)
        b[p] = (struct sample){(uint32_t)(p + 1), 0, 1.0};
    CHECK_INT(writer_start(s, 100, &w), 0);
    writer_pause_for_test(w, true);

    /* Bound 100: six batches of 15 = 90 fit; a seventh (105) does not; a
     * batch of 10 fills it to exactly 100; then even 1 more is refused; a
     * batch larger than the bound never fits. */
    for (int i = 0; i < 6; i++) {
        for (int p = 0; p < 15; p++)
            b[p].ts = i;
        CHECK_INT(writer_submit(w, b, 15), 0);
    }
    b[0].ts = 6;
    CHECK_INT(writer_submit(w, b, 15), -EAGAIN);
    for (int p = 0; p < 10; p++)
        b[p].ts = 7;
    CHECK_INT(writer_submit(w, b, 10), 0);
    CHECK_INT(writer_submit(w, b, 1), -EAGAIN);
    struct sample *big = xcalloc(101, sizeof(*big));
    CHECK_INT(writer_submit(w, big, 101), -EAGAIN);
    free(big);
    CHECK_INT(writer_submit(w, b, 0), 0);
    /* A reload with more meters raises the bound: 10 more fit, then not
     * one; lowering it keeps what is queued and refuses more. */
    writer_set_max_queued(w, 110);
    for (int p = 0; p < 10; p++)
        b[p].ts = 9;
    CHECK_INT(writer_submit(w, b, 10), 0);
    CHECK_INT(writer_submit(w, b, 1), -EAGAIN);
    writer_set_max_queued(w, 50);
    CHECK_INT(writer_submit(w, b, 1), -EAGAIN);
    writer_set_max_queued(w, 110);

    writer_get_stats(w, &st);
    CHECK_INT(st.batches_dropped, 5);
    CHECK_INT(st.queue_len, 110);
    CHECK_INT(st.samples_committed, 0);

    /* The progress marker moves while paused (the thread ticks at <= 1 s):
     * twice, each time within 1.3 s of the last. */
    for (int tick = 0; tick < 2; tick++) {
        marker = st.last_commit_mono_ms;
        for (int64_t end = now_mono_ms() + 1300; now_mono_ms() < end; sleep_ms(10)) {
            writer_get_stats(w, &st);
            if (st.last_commit_mono_ms > marker)
                break;
        }
        writer_get_stats(w, &st);
        CHECK(st.last_commit_mono_ms > marker);
    }

    writer_pause_for_test(w, false);
    st = wait_committed(w, 110, 10000);
    CHECK_INT(st.samples_committed, 110);
    CHECK_INT(st.queue_len, 0);
    /* Room again after the commit. */
    b[0].ts = 8;
    CHECK_INT(writer_submit(w, b, 1), 0);
    writer_stop(w);
    CHECK_INT(count_samples(s), 111);
    store_close(s);
}

static void test_disk_full_recovery(void)
{
    struct store *s = open_fresh("full.db");
    struct writer *w = NULL;
    struct writer_stats st;
    struct sample b[15];
    int64_t pages = 0;
    const int nbatches = 334;   /* 334 x 15 = 5010 samples, ~120 kB: many new pages */

    if (!s)
        return;
    /* Cap the file at its current size (SQLite raises a smaller cap to the
     * current page count), so the first transaction that needs a new page
     * fails with SQLITE_FULL. */
    CHECK_INT(store_set_max_pages_for_test(s, 1, &pages), 0);
    CHECK(pages >= 1);

    CHECK_INT(writer_start(s, 100000, &w), 0);
    /* Queue everything before the thread looks, so it is one group. */
    writer_pause_for_test(w, true);
    for (int i = 0; i < nbatches; i++) {
        for (int p = 0; p < 15; p++)
            b[p] = (struct sample){(uint32_t)(p + 1), 1700000000000 + (int64_t)i * 5000, i + p * 0.25};
        CHECK_INT(writer_submit(w, b, 15), 0);
    }
    writer_pause_for_test(w, false);

    int64_t end = now_mono_ms() + 10000;
    do {
        sleep_ms(10);
        writer_get_stats(w, &st);
    } while (st.commit_errors == 0 && now_mono_ms() < end);
    CHECK(st.commit_errors >= 1);
    CHECK_INT(st.samples_committed, 0);
    CHECK_INT(st.queue_len, 5010);   /* kept in memory */

    /* While failing, the bound still applies and new batches queue behind. */
    for (int p = 0; p < 15; p++)
        b[p] = (struct sample){(uint32_t)(p + 1), 1800000000000, 1.0};
    CHECK_INT(writer_submit(w, b, 15), 0);

    /* The disk "frees up": retried after the 1 s backoff, all 5025 land. */
    CHECK_INT(store_set_max_pages_for_test(s, 1000000, &pages), 0);
    CHECK_INT(pages, 1000000);
    st = wait_committed(w, 5025, 15000);
    CHECK_INT(st.samples_committed, 5025);
    CHECK_INT(st.queue_len, 0);
    CHECK(st.commit_errors >= 1);
    writer_stop(w);
    CHECK_INT(count_samples(s), 5025);
    store_close(s);
}

static void test_commit_window(void)
{
    struct store *s = open_fresh("window.db");
    struct writer *w = NULL;
    struct writer_stats st;
    struct sample one = {1, 1000, 1.0};

    if (!s)
        return;
    CHECK_INT(writer_start(s, 1000, &w), 0);
    writer_set_commit_interval(w, 2000);
    /* The first batch commits at once (no commit yet in the window). */
    CHECK_INT(writer_submit(w, &one, 1), 0);
    st = wait_committed(w, 1, 5000);
    CHECK_INT(st.samples_committed, 1);
    /* The next ones wait for the 2 s window: nothing after 0.5 s. */
    one.ts = 2000;
    CHECK_INT(writer_submit(w, &one, 1), 0);
    one.ts = 3000;
    CHECK_INT(writer_submit(w, &one, 1), 0);
    sleep_ms(500);
    writer_get_stats(w, &st);
    CHECK_INT(st.samples_committed, 1);
    CHECK_INT(st.queue_len, 2);
    /* ...and both in one transaction once it closes. */
    st = wait_committed(w, 3, 5000);
    CHECK_INT(st.samples_committed, 3);
    CHECK_INT(st.batches_committed, 3);
    /* Stopping inside a window commits at once. */
    one.ts = 4000;
    CHECK_INT(writer_submit(w, &one, 1), 0);
    int64_t t0 = now_mono_ms();
    writer_stop(w);
    CHECK(now_mono_ms() - t0 < 1000);
    CHECK_INT(count_samples(s), 4);
    store_close(s);
}

/* Nice value of each thread of this process (field 19 of
 * /proc/self/task/TID/stat, after the parenthesised name); returns how
 * many threads have 'nice'. */
static int threads_with_nice(int nice)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/stat", (int)getpid());
    FILE *f = popen(cmd, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof(line), f)) {
        const char *p = strrchr(line, ')');
        int field = 2, v = 0;
        for (; p && *p && field < 19; p++)
            if (*p == ' ')
                field++;
        if (p && sscanf(p, "%d", &v) == 1 && v == nice)
            n++;
    }
    if (f)
        pclose(f);
    return n;
}

/* The writer thread runs at nice 5 so that pollers win the CPU during a
 * long move; the process's other threads keep theirs. */
static void test_writer_priority(void)
{
    struct store *s = open_fresh("nice.db");
    struct writer *w = NULL;
    if (!s)
        return;
    int before = threads_with_nice(5);
    CHECK_INT(writer_start(s, 1000, &w), 0);
    int n = 0;
    for (int i = 0; i < 100 && n <= before; i++) {
        sleep_ms(10);
        n = threads_with_nice(5);
    }
    CHECK_INT(n, before + 1);
    CHECK(threads_with_nice(0) >= 1);   /* this thread */
    writer_stop(w);
    store_close(s);
}

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_writer", t && *t ? t : "/tmp/parkgw-test");
    make_dirs(tmpdir);

    test_two_submitters();
    test_stop_drains();
    test_queue_bound();
    test_disk_full_recovery();
    test_commit_window();
    test_writer_priority();
    return check_done();
}
