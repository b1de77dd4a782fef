/*
 * test_frozen.c - the marks of a meter's own frozen readings
 * (storage/frozenlog.h): written by the trigger from the frozen_reading
 * event as the poller queues it (docs/DLT645.md), and the statement's
 * start_frozen / end_frozen and table note for the segment readings that are
 * frozen ones. Asia/Shanghai; water meter acme/w1 (no ratio, 3.90 CNY/m3).
 *
 * Hourly readings 500 + 0.5 k m3 at Nov 29 00:00 + k h up to Nov 30 12:00
 * (k = 36, 518.0), the gateway down until Dec 1 06:00; the meter's
 * settlement-day reading 520.0 stored at Dec 1 00:00 with its event; from
 * Dec 1 06:00 hourly 521.5 + 0.25 j (j = 0..18, Dec 2 00:00 = 526.0).
 *  - [Dec 1, Dec 2): start 520.0 (frozen), end 526.0 (a poll): 6 m3.
 *  - [Nov 30, Dec 1): start 512.0 (k = 24, a poll), end 520.0 (frozen): 8 m3.
 *  - [Nov 30 12:00, Dec 1 03:00): start 518.0 (a poll), end interpolated
 *    between 520.0 at 00:00 and 521.5 at 06:00: 520.75 (not frozen).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/timeparse.h"
#include "common/util.h"
#include "engine/statement.h"
#include "engine/statement_out.h"
#include "storage/frozenlog.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "tests/unit/check.h"

#define H 3600000LL

static char tmpdir[512];

static int64_t lt(const char *s)
{
    int64_t ms = 0;
    if (timeparse(s, &ms) < 0)
        abort();
    return ms;
}

static struct config *load_cfg(const char *db)
{
    char *path = xasprintf("%s/frozen.cfg", tmpdir);
    char *text = xasprintf(
        "gateway = { id = \"t1\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 2;\n"
        "    profile = \"generic-water\"; interval = 3600; } ); } );\n"
        "tariffs = ( { utility = \"water\"; currency = \"CNY\"; price = 3.90; } );\n",
        db);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    struct config *cfg = NULL;
    char err[512];
    if (config_load(path, &cfg, err, sizeof(err)) < 0)
        fprintf(stderr, "config_load: %s\n", err);
    free(text);
    free(path);
    return cfg;
}

/* Queues an event as the writer does: in a transaction, through the outbox. */
static void put_event(struct store *st, const char *payload)
{
    struct outbox *ob = NULL;
    CHECK_INT(outbox_attach(store_db(st), &ob), 0);
    if (!ob)
        return;
    CHECK_INT(store_begin(st), 0);
    int64_t seq;
    CHECK_INT(outbox_add(ob, "park/t1/events", payload, 1, false, lt("2026-12-01T06:00"), &seq),
              0);
    CHECK_INT(store_commit(st), 0);
    outbox_free(ob);
}

static void fill(struct store *st)
{
    uint32_t id;
    CHECK_INT(store_point_id(st, "acme", "w1", "total_m3", UTIL_WATER, KIND_COUNTER, &id), 0);
    struct sample s[64];
    size_t n = 0;
    for (int k = 0; k <= 36; k++)
        s[n++] = (struct sample){id, lt("2026-11-29") + k * H, 500.0 + 0.5 * k};
    s[n++] = (struct sample){id, lt("2026-12-01"), 520.0};
    for (int j = 0; j <= 18; j++)
        s[n++] = (struct sample){id, lt("2026-12-01T06:00") + j * H, 521.5 + 0.25 * j};
    CHECK_INT(store_insert(st, s, n), 0);
    char *ev = xasprintf("{\"ts\":%lld,\"type\":\"frozen_reading\",\"enterprise\":\"acme\","
                         "\"meter\":\"w1\",\"utility\":\"water\",\"point\":\"total_m3\","
                         "\"value\":520.0,\"source\":\"settlement_day\"}",
                         (long long)lt("2026-12-01"));
    put_event(st, ev);
    free(ev);
    /* Events the trigger leaves alone: another type, no point, not JSON. */
    put_event(st, "{\"ts\":1,\"type\":\"comm_lost\",\"enterprise\":\"acme\",\"meter\":\"w1\"}");
    put_event(st, "{\"ts\":2,\"type\":\"frozen_reading\",\"enterprise\":\"acme\","
                  "\"meter\":\"w1\",\"value\":1}");
    put_event(st, "not json");
}

static struct statement *bill(const struct config *cfg, struct store *st, const char *from,
                              const char *to)
{
    struct statement_request req = {.from = lt(from), .to = lt(to)};
    struct statement *s = NULL;
    char err[512] = "";
    int r = statement_build(cfg, st, &req, &s, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "statement_build: %s\n", err);
    CHECK_INT(r, 0);
    CHECK(s && s->n_rows == 1 && s->rows[0].n_seg == 1);
    return s && s->n_rows == 1 && s->rows[0].n_seg == 1 ? s : NULL;
}

static void test_marks(void)
{
    bool is = false;
    char db[600], src[32] = "";
    snprintf(db, sizeof(db), "%s/frozen.db", tmpdir);
    unlink(db);
    struct store *st = NULL;
    char err[512];
    CHECK_INT(store_open(db, false, &st, err, sizeof(err)), 0);
    struct config *cfg = load_cfg(db);
    if (!st || !cfg)
        return;
    fill(st);

    sqlite3 *h = store_db(st);
    CHECK_INT(frozenlog_at(h, "acme", "w1", "total_m3", lt("2026-12-01"), &is, src, sizeof(src)),
              0);
    CHECK(is);
    CHECK_STR(src, "settlement_day");
    CHECK_INT(frozenlog_at(h, "acme", "w1", "total_m3", lt("2026-12-01") + 1, &is, NULL, 0), 0);
    CHECK(!is);
    CHECK_INT(frozenlog_at(h, "acme", "w1", "total_m3", 2, &is, NULL, 0), 0);
    CHECK(!is); /* the event without a point wrote nothing */

    struct statement *s = bill(cfg, st, "2026-12-01", "2026-12-02");
    if (s) {
        const struct statement_segment *g = &s->rows[0].seg[0];
        CHECK_NEAR(g->start_dial, 520.0, 1e-9);
        CHECK_NEAR(g->end_dial, 526.0, 1e-9);
        CHECK_NEAR(g->consumption, 6.0, 1e-9);
        CHECK(g->start_frozen);
        CHECK(!g->end_frozen);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        CHECK_INT(statement_out_write(f, cfg, s, STATEMENT_JSON), 0);
        fclose(f);
        CHECK(out && strstr(out, "\"start_frozen\": true") && strstr(out, "\"end_frozen\": false"));
        free(out);
        f = open_memstream(&out, &len);
        CHECK_INT(statement_out_write(f, cfg, s, STATEMENT_TABLE), 0);
        fclose(f);
        CHECK(out && strstr(out, "note: acme/w1 start reading 520.000 of 2026-12-01"));
        CHECK(out && strstr(out, "is the meter's own frozen reading"));
        CHECK(out && !strstr(out, "end reading"));
        free(out);
        f = open_memstream(&out, &len);
        CHECK_INT(statement_out_write(f, cfg, s, STATEMENT_CSV), 0);
        fclose(f);
        CHECK(out && !strstr(out, "frozen")); /* the contract's columns */
        free(out);
    }
    statement_free(s);

    s = bill(cfg, st, "2026-11-30", "2026-12-01");
    if (s) {
        const struct statement_segment *g = &s->rows[0].seg[0];
        CHECK_NEAR(g->start_dial, 512.0, 1e-9);
        CHECK_NEAR(g->end_dial, 520.0, 1e-9);
        CHECK(!g->start_frozen);
        CHECK(g->end_frozen);
    }
    statement_free(s);

    s = bill(cfg, st, "2026-11-30T12:00", "2026-12-01T03:00");
    if (s) {
        const struct statement_segment *g = &s->rows[0].seg[0];
        CHECK_NEAR(g->start_dial, 518.0, 1e-9);
        CHECK_NEAR(g->end_dial, 520.75, 1e-9);
        CHECK(!g->start_frozen);
        CHECK(!g->end_frozen);
    }
    statement_free(s);
    store_close(st);
    config_free(cfg);
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    const char *tmp = getenv("PARKGW_TEST_TMP"), *src = getenv("PARKGW_SOURCE_DIR");
    if (!src) {
        fprintf(stderr, "PARKGW_SOURCE_DIR not set: run through ctest\n");
        return 1;
    }
    if (tmp)
        mkdir(tmp, 0755);
    snprintf(tmpdir, sizeof(tmpdir), "%s/frozenXXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    char *pdir = xasprintf("%s/config/profiles", src);
    setenv("PARKGW_PROFILE_DIR", pdir, 1);
    free(pdir);
    test_marks();
    return check_done();
}
