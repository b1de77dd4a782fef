/*
 * test_outbox.c - the durable outbox on a real store: seq strictly
 * increasing inside a transaction, across a reopen and after the table
 * emptied; rows roll back with their transaction; fetch in seq order from a
 * second connection; delete; the trim bound drops the oldest and counts
 * them; the "seq" member put first into a payload; the writer's durable
 * messages land in the outbox in queue order, bounded, with the commit
 * notification.
 */
#include "storage/outbox.h"
#include "storage/store.h"
#include "daemon/writer.h"
#include "common/util.h"
#include "tests/unit/check.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char *path;

static void remove_db(void)
{
    char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    free(wal);
    free(shm);
}

static struct store *open_store(void)
{
    struct store *s = NULL;
    char err[512] = "";
    if (store_open(path, false, &s, err, sizeof(err)) < 0)
        fprintf(stderr, "store_open: %s\n", err);
    CHECK(s != NULL);
    return s;
}

/* Adds n messages in one transaction; returns the seqs in seqs[]. */
static int add_n(struct store *s, struct outbox *ob, int n, int64_t *seqs)
{
    int r = store_begin(s);
    for (int i = 0; i < n && r == 0; i++) {
        char payload[64];
        snprintf(payload, sizeof(payload), "{\"i\":%d}", i);
        r = outbox_add(ob, "park/gw/summary", payload, 1, false, 1000 + i, &seqs[i]);
    }
    if (r == 0)
        return store_commit(s);
    store_rollback(s);
    return r;
}

static void on_notify(void *ctx)
{
    (*(int *)ctx)++;
}

int main(void)
{
    const char *tmp = getenv("PARKGW_TEST_TMP");
    const char *dir = tmp && *tmp ? tmp : "/tmp";
    mkdir(dir, 0755);
    path = xasprintf("%s/test_outbox.%d.db", dir, (int)getpid());
    remove_db();

    struct store *s = open_store();
    struct outbox *ob = NULL, *pub = NULL;
    int64_t seqs[16];
    char err[512] = "";

    CHECK_INT(outbox_attach(store_db(s), &ob), 0);

    /* A fresh database starts at 1 and counts up by one. */
    CHECK_INT(add_n(s, ob, 3, seqs), 0);
    CHECK_INT(seqs[0], 1);
    CHECK_INT(seqs[1], 2);
    CHECK_INT(seqs[2], 3);

    /* A rolled back transaction leaves no row, and its seqs are handed out
     * again: nobody ever saw them. */
    CHECK_INT(store_begin(s), 0);
    int64_t lost = 0;
    CHECK_INT(outbox_add(ob, "t", "{}", 1, false, 1, &lost), 0);
    CHECK_INT(lost, 4);
    store_rollback(s);

    /* Fetch from a second connection, as the publisher does: seq order,
     * limit, the cursor. */
    CHECK_INT(outbox_open(path, &pub, err, sizeof(err)), 0);
    struct outbox_msg *msgs = NULL;
    size_t n = 0;
    CHECK_INT(outbox_fetch(pub, 0, 10, &msgs, &n), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_INT(msgs[0].seq, 1);
        CHECK_INT(msgs[2].seq, 3);
        CHECK_STR(msgs[1].topic, "park/gw/summary");
        CHECK_STR(msgs[1].payload, "{\"i\":1}");
        CHECK_INT(msgs[1].qos, 1);
        CHECK(!msgs[1].retain);
        CHECK_INT(msgs[1].created, 1001);
    }
    outbox_msgs_free(msgs, n);
    CHECK_INT(outbox_fetch(pub, 1, 1, &msgs, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_INT(msgs[0].seq, 2);
    outbox_msgs_free(msgs, n);

    /* Delete every row (one twice, one that never existed): the table is
     * empty, yet the next seq is 4, not 1. */
    int64_t del[] = {1, 2, 3, 2, 99};
    CHECK_INT(outbox_delete(pub, del, ARRAY_SIZE(del)), 0);
    struct outbox_stats st;
    CHECK_INT(outbox_stats(pub, &st), 0);
    CHECK_INT(st.rows, 0);
    CHECK_INT(st.oldest_seq, 0);
    CHECK_INT(st.last_seq, 3);
    CHECK_INT(add_n(s, ob, 1, seqs), 0);
    CHECK_INT(seqs[0], 4);

    /* Across a reopen (after emptying again): 5. */
    int64_t four = 4;
    CHECK_INT(outbox_delete(pub, &four, 1), 0);
    outbox_free(pub);
    outbox_free(ob);
    store_close(s);
    s = open_store();
    CHECK_INT(outbox_attach(store_db(s), &ob), 0);
    CHECK_INT(add_n(s, ob, 1, seqs), 0);
    CHECK_INT(seqs[0], 5);

    /* Trim: 10 more rows (6..15) make 11; a bound of 4 keeps 12..15 and
     * drops 5..11 = 7 rows, counted in meta across calls. */
    CHECK_INT(add_n(s, ob, 10, seqs), 0);
    CHECK_INT(seqs[9], 15);
    int64_t dropped = -1;
    CHECK_INT(store_begin(s), 0);
    CHECK_INT(outbox_trim(ob, 4, &dropped), 0);
    CHECK_INT(store_commit(s), 0);
    CHECK_INT(dropped, 7);
    CHECK_INT(outbox_stats(ob, &st), 0);
    CHECK_INT(st.rows, 4);
    CHECK_INT(st.oldest_seq, 12);
    CHECK_INT(st.dropped, 7);
    /* Under the bound nothing goes; no bound (0) never drops. */
    CHECK_INT(store_begin(s), 0);
    CHECK_INT(outbox_trim(ob, 4, &dropped), 0);
    CHECK_INT(dropped, 0);
    CHECK_INT(outbox_trim(ob, 0, &dropped), 0);
    CHECK_INT(dropped, 0);
    CHECK_INT(outbox_trim(ob, 3, &dropped), 0);
    CHECK_INT(dropped, 1);
    CHECK_INT(store_commit(s), 0);
    CHECK_INT(outbox_stats(ob, &st), 0);
    CHECK_INT(st.rows, 3);
    CHECK_INT(st.oldest_seq, 13);
    CHECK_INT(st.dropped, 8);
    /* Trimming the oldest never lowers the next seq. */
    CHECK_INT(add_n(s, ob, 1, seqs), 0);
    CHECK_INT(seqs[0], 16);

    /* outbox_open on a missing database fails with ENOENT. */
    char *missing = xasprintf("%s.missing", path);
    CHECK_INT(outbox_open(missing, &pub, err, sizeof(err)), -ENOENT);
    free(missing);

    /* The wire payload: "seq" first; {} and whitespace. */
    char *p = outbox_payload_with_seq("{\"from\":1,\"to\":2}", 42);
    CHECK_STR(p, "{\"seq\":42,\"from\":1,\"to\":2}");
    free(p);
    p = outbox_payload_with_seq("{}", 7);
    CHECK_STR(p, "{\"seq\":7}");
    free(p);
    p = outbox_payload_with_seq(" { } ", 8);
    CHECK_STR(p, "{\"seq\":8} ");
    free(p);
    p = outbox_payload_with_seq("[1]", 9);
    CHECK_STR(p, "[1]");
    free(p);

    /* Through the writer: three messages after a sample batch, bound 2:
     * rows 17..19 written, 17 dropped (13, 14, 15, 16 were there: with 4 +
     * 3 = 7 rows, the bound keeps 18 and 19, dropping 5). */
    outbox_free(ob);
    ob = NULL;
    struct writer *w = NULL;
    int notified = 0;
    CHECK_INT(writer_start(s, 1000, &w), 0);
    writer_set_outbox_max(w, 2);
    writer_set_outbox_notify(w, on_notify, &notified);
    uint32_t pid = 0;
    CHECK_INT(store_point_id(s, "e", "m", "p", UTIL_WATER, KIND_COUNTER, &pid), 0);
    struct sample smp = {.point = pid, .ts = 1000, .value = 1.0};
    writer_pause_for_test(w, true);
    CHECK_INT(writer_submit(w, &smp, 1), 0);
    CHECK_INT(writer_submit_msg(w, "park/gw/events", "{\"type\":\"a\"}", 1, false), 0);
    CHECK_INT(writer_submit_msg(w, "park/gw/events", "{\"type\":\"b\"}", 1, false), 0);
    CHECK_INT(writer_submit_msg(w, "park/gw/x/state", "{\"type\":\"c\"}", 0, true), 0);
    CHECK_INT(writer_submit_msg(w, "t", "{}", 3, false), -EINVAL);
    struct writer_stats ws;
    writer_get_stats(w, &ws);
    CHECK_INT(ws.queue_len, 4);
    writer_stop(w);
    CHECK(notified >= 1);
    CHECK_INT(outbox_attach(store_db(s), &ob), 0);
    CHECK_INT(outbox_fetch(ob, 0, 10, &msgs, &n), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(msgs[0].seq, 18);
        CHECK_STR(msgs[0].payload, "{\"type\":\"b\"}");
        CHECK_INT(msgs[1].seq, 19);
        CHECK_STR(msgs[1].topic, "park/gw/x/state");
        CHECK_INT(msgs[1].qos, 0);
        CHECK(msgs[1].retain);
    }
    outbox_msgs_free(msgs, n);
    CHECK_INT(outbox_stats(ob, &st), 0);
    CHECK_INT(st.dropped, 8 + 5);

    outbox_free(ob);
    store_close(s);
    remove_db();
    free(path);
    return check_done();
}
