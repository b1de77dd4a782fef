/*
 * bench_count.c - counts the samples of a parkgw store through the store's
 * own readers (store_scan over every point), whatever the on-disk layout:
 * the park benchmark (bench/park.sh) uses it for "points/s sustained" and
 * "bytes per sample" after a run. Prints one line:
 *   <samples with from <= ts < to> <all samples> <database bytes>
 *   bench_count DB FROM_MS TO_MS
 */
#include "storage/store.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static int count_cb(void *ud, int64_t ts, double value)
{
    (void)ts;
    (void)value;
    (*(int64_t *)ud)++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_count DB FROM_MS TO_MS\n");
        return 2;
    }
    int64_t from = strtoll(argv[2], NULL, 10), to = strtoll(argv[3], NULL, 10);
    char err[256];
    struct store *st;
    if (store_open(argv[1], true, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_count: %s\n", err);
        return 1;
    }
    sqlite3_stmt *ids;
    if (sqlite3_prepare_v2(store_db(st), "SELECT id FROM points ORDER BY id", -1, &ids, NULL) !=
        SQLITE_OK) {
        fprintf(stderr, "bench_count: %s\n", sqlite3_errmsg(store_db(st)));
        store_close(st);
        return 1;
    }
    int64_t in_window = 0, all = 0;
    int rc = 0;
    while (sqlite3_step(ids) == SQLITE_ROW) {
        uint32_t id = (uint32_t)sqlite3_column_int64(ids, 0);
        if (store_scan(st, id, from, to, count_cb, &in_window) < 0 ||
            store_scan(st, id, INT64_MIN, INT64_MAX, count_cb, &all) < 0) {
            fprintf(stderr, "bench_count: point %u: %s\n", id, store_errmsg(st));
            rc = 1;
            break;
        }
    }
    sqlite3_finalize(ids);
    struct store_stats stats;
    if (rc == 0 && store_stats(st, &stats) < 0) {
        fprintf(stderr, "bench_count: %s\n", store_errmsg(st));
        rc = 1;
    }
    store_close(st);
    if (rc == 0)
        printf("%" PRId64 " %" PRId64 " %" PRId64 "\n", in_window, all, stats.db_bytes);
    return rc;
}
