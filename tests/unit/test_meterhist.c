/*
 * test_meterhist.c - statements that reconcile over a meter's history
 * (storage/meterlog.h, engine/meterhist.h, engine/statement.c): a ratio
 * change mid-month recorded by `meter ratio` and by a reload, a replacement
 * recorded after the fact, an unrecorded one, a month of hourly imported
 * readings. Every figure is worked out by hand in the comments. November
 * 2026 in Asia/Shanghai: [Nov 1, Dec 1) = 720 hours. The billing counter is
 * stored as dial readings (before PT x CT).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include "common/timeparse.h"
#include "common/util.h"
#include "cli/cli.h"
#include "engine/meterhist.h"
#include "engine/statement.h"
#include "engine/statement_out.h"
#include "storage/meterlog.h"
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

/* acme/e1: generic-electricity, PT 100 x CT ct; acme/w1: water polled every
 * 60 s (so hourly readings are gaps longer than 3 intervals). Flat prices:
 * electricity 1.00, water 3.90. */
static struct config *load_cfg_t(const char *name, double ct, const char *db,
                                 const char *more_tariffs)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    char *text = xasprintf(
        "gateway = { id = \"t1\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1;\n"
        "    profile = \"generic-electricity\"; interval = 3600; pt_ratio = 100.0;"
        " ct_ratio = %.1f; },\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 2;\n"
        "    profile = \"generic-water\"; interval = 60; } ); } );\n"
        "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; price = 1.0; },\n"
        "            { utility = \"water\"; currency = \"CNY\"; price = 3.90; }%s );\n",
        db, ct, more_tariffs);
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

static struct config *load_cfg(const char *name, double ct, const char *db)
{
    return load_cfg_t(name, ct, db, "");
}

static struct store *new_store(const char *name, char *ret_path, size_t len)
{
    snprintf(ret_path, len, "%s/%s", tmpdir, name);
    unlink(ret_path);
    struct store *st = NULL;
    char err[512];
    if (store_open(ret_path, false, &st, err, sizeof(err)) < 0)
        fprintf(stderr, "store_open: %s\n", err);
    return st;
}

/* Hourly dial readings of acme/e1 at Nov 1 00:00 + k h for k = -1..721:
 * value(k); k = drop_k on a new meter reading value2(k). */
static void put_e1(struct store *st, double (*value)(int k))
{
    uint32_t id;
    CHECK_INT(store_point_id(st, "acme", "e1", "energy_import_kwh", UTIL_ELECTRICITY,
                             KIND_COUNTER, &id), 0);
    struct sample s[723];
    int64_t t0 = lt("2026-11-01");
    for (int k = -1; k <= 721; k++)
        s[k + 1] = (struct sample){id, t0 + k * H, value(k)};
    CHECK_INT(store_insert(st, s, 723), 0);
}

/* Hourly readings of acme/w1: 500 + 0.5 k m3 at Nov 1 00:00 + k h, k =
 * -1..721. */
static void put_w1(struct store *st)
{
    uint32_t id;
    CHECK_INT(store_point_id(st, "acme", "w1", "total_m3", UTIL_WATER, KIND_COUNTER, &id), 0);
    struct sample smp[723];
    int64_t t0 = lt("2026-11-01");
    for (int k = -1; k <= 721; k++)
        smp[k + 1] = (struct sample){id, t0 + k * H, 500.0 + 0.5 * k};
    CHECK_INT(store_insert(st, smp, 723), 0);
}

static double steady(int k)
{
    return 1000.0 + 0.01 * k;
}

/* The old meter up to k = 228 (Nov 10 12:00, 1002.28), swapped at 12:30
 * (final 1002.285), the new one from 5.000 at 12:30: 5 + 0.01 (k - 228.5). */
static double swapped(int k)
{
    return k <= 228 ? 1000.0 + 0.01 * k : 5.0 + 0.01 * (k - 228.5);
}

static struct statement *bill(const struct config *cfg, struct store *st)
{
    struct statement_request req = {.from = lt("2026-11-01"), .to = lt("2026-12-01"),
                                    .raw_only = false};
    struct statement *s = NULL;
    char err[512] = "";
    int r = statement_build(cfg, st, &req, &s, err, sizeof(err));
    if (r < 0)
        fprintf(stderr, "statement_build: %s\n", err);
    CHECK_INT(r, 0);
    return s;
}

static const struct statement_row *row(const struct statement *s, const char *meter)
{
    for (size_t i = 0; s && i < s->n_rows; i++)
        if (!strcmp(s->rows[i].m->id, meter))
            return &s->rows[i];
    CHECK(!"row");
    return NULL;
}

/*
 * CT 40 -> 60 on Nov 16 00:00 (k = 360), recorded by `meter ratio`: dial
 * 1000 + 0.01 k. Segment 1 [Nov 1, Nov 16): 1000.00 -> 1003.60 = 3.6 x 4000
 * = 14400 kWh; segment 2 [Nov 16, Dec 1): 1003.60 -> 1007.20 = 3.6 x 6000 =
 * 21600 kWh; 36000 kWh, 36000.00 CNY at 1.00. start_reading 1000 x 4000 =
 * 4,000,000, end_reading 1007.2 x 6000 = 6,043,200. Applied backwards (the
 * old fake bill) it would be 7.2 x 6000 = 43200.
 */
static void check_ratio_month(const struct statement *s)
{
    const struct statement_row *w = row(s, "e1");
    if (!w)
        return;
    CHECK_INT(w->n_seg, 2);
    CHECK_NEAR(w->r.consumption, 36000, 1e-6);
    CHECK_NEAR(w->seg[0].consumption, 14400, 1e-6);
    CHECK_NEAR(w->seg[0].multiplier, 4000, 0);
    CHECK_NEAR(w->seg[0].start_dial, 1000.0, 1e-9);
    CHECK_NEAR(w->seg[0].end_dial, 1003.6, 1e-9);
    CHECK_NEAR(w->seg[1].consumption, 21600, 1e-6);
    CHECK_NEAR(w->seg[1].multiplier, 6000, 0);
    CHECK_NEAR(w->seg[1].start_dial, 1003.6, 1e-9);
    CHECK_NEAR(w->seg[1].end_dial, 1007.2, 1e-9);
    CHECK_INT(w->seg[1].cause, METERLOG_RATIO);
    CHECK_NEAR(w->multiplier, 6000, 0);
    CHECK_NEAR(w->r.start_reading, 4000000, 1e-6);
    CHECK_NEAR(w->r.end_reading, 6043200, 1e-6);
    CHECK_NEAR(w->r.coverage_pct, 100, 1e-9);
    CHECK_NEAR(statement_row_amount(w), 36000.00, 0);
}

static void test_ratio_by_command(void)
{
    char db[600];
    struct store *st = new_store("ratio_cmd.db", db, sizeof(db));
    struct config *cfg = load_cfg("ratio_cmd.cfg", 40, db);
    if (!st || !cfg)
        return;
    put_e1(st, steady);
    store_close(st);
    char *path = xasprintf("%s/ratio_cmd.cfg", tmpdir);
    /* refused: no such meter, a water meter has no ratio, a bad number, no --at */
    char *bad1[] = {"meter", "-c", path, "acme/e9", "history", NULL};
    char *bad2[] = {"meter", "-c", path, "acme/w1", "ratio", "--at", "2026-11-16", "--ct", "60",
                    NULL};
    char *bad3[] = {"meter", "-c", path, "acme/e1", "ratio", "--at", "2026-11-16", "--ct", "0",
                    NULL};
    char *bad4[] = {"meter", "-c", path, "acme/e1", "ratio", "--ct", "60", NULL};
    char *ok[] = {"meter", "-c", path, "acme/e1", "ratio", "--at", "2026-11-16", "--ct", "60",
                  NULL};
    char *hist[] = {"meter", "-c", path, "acme/e1", "history", NULL};
    CHECK_INT(cmd_meter(5, bad1, NULL), 1);
    CHECK_INT(cmd_meter(9, bad2, NULL), 1);
    CHECK_INT(cmd_meter(9, bad3, NULL), 1);
    CHECK_INT(cmd_meter(7, bad4, NULL), 1);
    CHECK_INT(cmd_meter(9, ok, NULL), 0);
    CHECK_INT(cmd_meter(5, hist, NULL), 0);
    free(path);
    char err[512];
    st = NULL;
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    if (!st)
        return;
    /* the command wrote the initial record (CT 40 since ever), then its own */
    struct meterlog_list h = {0};
    CHECK_INT(meterlog_read(store_db(st), "acme", "e1", &h), 0);
    CHECK_INT(h.n, 2);
    if (h.n == 2) {
        CHECK_INT(h.v[0].kind, METERLOG_INITIAL);
        CHECK_NEAR(h.v[0].ct, 40, 0);
        CHECK_INT(h.v[1].ts, lt("2026-11-16"));
        CHECK_NEAR(h.v[1].ct, 60, 0);
        CHECK_NEAR(h.v[1].pt, 100, 0);
    }
    meterlog_list_free(&h);
    struct statement *s = bill(cfg, st);
    check_ratio_month(s);
    statement_free(s);
    store_close(st);
    config_free(cfg);
}

static void test_ratio_by_reload(void)
{
    char db[600];
    struct store *st = new_store("ratio_reload.db", db, sizeof(db));
    struct config *c40 = load_cfg("reload40.cfg", 40, db), *c60 = load_cfg("reload60.cfg", 60, db);
    if (!st || !c40 || !c60)
        return;
    put_e1(st, steady);
    struct meterhist_change *ch = NULL;
    size_t n = 9;
    /* first start: the initial record (CT 40 since ever), no change */
    CHECK_INT(meterhist_sync(store_db(st), c40, lt("2026-10-01"), "start", false, &ch, &n), 0);
    CHECK_INT(n, 0);
    free(ch);
    /* check's dry run with CT 60: one change 4000 -> 6000, nothing written */
    CHECK_INT(meterhist_sync(store_db(st), c60, lt("2026-11-16"), "reload", true, &ch, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_NEAR(ch[0].old_mult, 4000, 0);
        CHECK_NEAR(ch[0].mult, 6000, 0);
    }
    free(ch);
    /* the config edited but not yet loaded: the history's CT 40 stays in
     * force for the whole month, 7.2 x 4000 = 28800 (not 7.2 x 6000) */
    struct statement *s = bill(c60, st);
    const struct statement_row *w = row(s, "e1");
    if (w)
        CHECK_NEAR(w->r.consumption, 28800, 1e-6);
    statement_free(s);
    /* the reload at Nov 16 00:00 records it */
    CHECK_INT(meterhist_sync(store_db(st), c60, lt("2026-11-16"), "reload", false, &ch, &n), 0);
    CHECK_INT(n, 1);
    free(ch);
    s = bill(c60, st);
    check_ratio_month(s);
    statement_free(s);
    /* a second reload of the same config records nothing */
    CHECK_INT(meterhist_sync(store_db(st), c60, lt("2026-11-20"), "reload", false, &ch, &n), 0);
    CHECK_INT(n, 0);
    free(ch);
    store_close(st);
    config_free(c40);
    config_free(c60);
}

/*
 * Replaced on Nov 10 at 12:30, recorded afterwards with the old meter's
 * final 1002.285 and the new one's initial 5.000. Old segment [Nov 1,
 * 12:30): 1000.000 -> 1002.285 = 2.285; new [12:30, Dec 1): 5.000 -> at Dec 1
 * 00:00 (k = 720) 5 + 0.01 x 491.5 = 9.915, 4.915; 7.2 x 4000 = 28800 kWh,
 * coverage 100 %. Unrecorded, the drop 1002.28 -> 5.005 between 12:00 and
 * 13:00 is a reset: that hour counts 0 and is not covered: 2.28 + (9.915 -
 * 5.005) = 7.19 x 4000 = 28760 kWh, coverage 719/720 = 99.861 %.
 */
static void test_replacement(void)
{
    char db[600];
    struct store *st = new_store("replace.db", db, sizeof(db));
    struct config *cfg = load_cfg("replace.cfg", 40, db);
    if (!st || !cfg)
        return;
    put_e1(st, swapped);

    struct statement *s = bill(cfg, st);
    const struct statement_row *w = row(s, "e1");
    if (w) {
        CHECK_NEAR(w->r.consumption, 28760, 1e-6);
        CHECK_INT(w->r.n_resets, 1);
        CHECK_NEAR(w->r.coverage_pct, 719.0 / 720.0 * 100.0, 1e-9);
        CHECK_INT(w->n_seg, 1);
    }
    statement_free(s);

    CHECK_INT(meterhist_ensure_initial(store_db(st), &cfg->enterprises[0],
                                       &cfg->enterprises[0].meters[0]), 0);
    struct meterlog_rec rec = {.ts = lt("2026-11-10T12:30"), .kind = METERLOG_REPLACE,
                               .pt = 100, .ct = 40, .final_dial = 1002.285,
                               .initial_dial = 5.0, .source = "meter"};
    CHECK_INT(meterlog_add(store_db(st), "acme", "e1", &rec, NULL), 0);
    s = bill(cfg, st);
    w = row(s, "e1");
    if (w) {
        CHECK_INT(w->n_seg, 2);
        CHECK_NEAR(w->r.consumption, 28800, 1e-6);
        CHECK_INT(w->r.n_resets, 0);
        CHECK_NEAR(w->r.coverage_pct, 100, 1e-9);
        if (w->n_seg == 2) {
            CHECK_NEAR(w->seg[0].start_dial, 1000.0, 1e-9);
            CHECK_NEAR(w->seg[0].end_dial, 1002.285, 1e-9);
            CHECK_NEAR(w->seg[0].consumption, 2.285 * 4000, 1e-6);
            CHECK_NEAR(w->seg[1].start_dial, 5.0, 1e-9);
            CHECK_NEAR(w->seg[1].end_dial, 9.915, 1e-9);
            CHECK_NEAR(w->seg[1].consumption, 4.915 * 4000, 1e-6);
            CHECK_INT(w->seg[1].cause, METERLOG_REPLACE);
        }
        /* the row's readings: the first meter's start, the last one's end */
        CHECK_NEAR(w->r.start_reading, 1000.0 * 4000, 1e-6);
        CHECK_NEAR(w->r.end_reading, 9.915 * 4000, 1e-6);
    }
    statement_free(s);
    store_close(st);
    config_free(cfg);
}

/*
 * w1 read once an hour (imported), polled every 60 s: 500 + 0.5 k m3 at
 * Nov 1 00:00 + k h, k = -1..721. Every hour lies between two good
 * readings: coverage 100 %; each hour is a gap longer than 3 x 60 s, so the
 * whole time-of-use spread is estimated: estimated_pct 100. Consumption
 * 720 x 0.5 = 360 m3 = end 860 - start 500; 360 x 3.90 = 1404.00 CNY.
 */
static void test_hourly_import(void)
{
    char db[600];
    struct store *st = new_store("hourly.db", db, sizeof(db));
    struct config *cfg = load_cfg("hourly.cfg", 40, db);
    if (!st || !cfg)
        return;
    put_w1(st);
    struct statement *s = bill(cfg, st);
    const struct statement_row *w = row(s, "w1");
    if (w) {
        CHECK_NEAR(w->r.consumption, 360, 1e-9);
        CHECK_NEAR(w->r.start_reading, 500, 1e-9);
        CHECK_NEAR(w->r.end_reading, 860, 1e-9);
        CHECK_NEAR(w->r.end_reading - w->r.start_reading, w->r.consumption, 1e-9);
        CHECK_NEAR(w->r.coverage_pct, 100, 1e-9);
        CHECK_NEAR(w->estimated_pct, 100, 1e-9);
        CHECK_NEAR(w->multiplier, 1, 0);
        CHECK_NEAR(statement_row_amount(w), 1404.00, 1e-9);
    }
    statement_free(s);
    store_close(st);
    config_free(cfg);
}

/*
 * The water price goes from 3.90 to 4.90 on Nov 16 (a second version with
 * valid_from): w1 hourly 500 + 0.5 k. [Nov 1, Nov 16) 360 h x 0.5 = 180 m3 x
 * 3.90 = 702.00; [Nov 16, Dec 1) 180 m3 x 4.90 = 882.00; 1584.00 CNY for 360
 * m3. Oct 31 23:00-24:00, before the new version: 0.5 m3 x 3.90 = 1.95.
 */
static void test_price_change(void)
{
    char db[600];
    struct store *st = new_store("price.db", db, sizeof(db));
    struct config *cfg = load_cfg_t("price.cfg", 40, db,
                                    ",\n { utility = \"water\"; currency = \"CNY\";"
                                    " valid_from = \"2026-11-16\"; price = 4.90; }");
    if (!st || !cfg)
        return;
    put_w1(st);
    struct statement *s = bill(cfg, st);
    const struct statement_row *w = row(s, "w1");
    if (w) {
        CHECK_NEAR(w->r.consumption, 360, 1e-9);
        CHECK_INT(w->n_seg, 2);
        if (w->n_seg == 2) {
            CHECK_INT(w->seg[0].to, lt("2026-11-16"));
            CHECK_NEAR(w->seg[0].consumption, 180, 1e-9);
            CHECK_NEAR(w->seg[1].consumption, 180, 1e-9);
            CHECK_INT(w->seg[1].cause, STATEMENT_CAUSE_TARIFF);
            CHECK_NEAR(w->seg[1].tariff->price, 4.90, 0);
        }
        CHECK_NEAR(statement_row_amount(w), 1584.00, 1e-9);
    }
    statement_free(s);
    struct statement_request req = {.from = lt("2026-10-31T23:00"), .to = lt("2026-11-01")};
    char err[256];
    CHECK_INT(statement_build(cfg, st, &req, &s, err, sizeof(err)), 0);
    w = row(s, "w1");
    if (w)
        CHECK_NEAR(statement_row_amount(w), 1.95, 1e-9);
    statement_free(s);
    store_close(st);
    config_free(cfg);
}

static char *print_bill(const struct config *cfg, struct store *st, int64_t from, int64_t to,
                        enum statement_format f, bool close_it, int *ret)
{
    struct statement_request req = {.from = from, .to = to};
    char *buf = NULL, err[512] = "";
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    *ret = close_it ? statement_out_close(m, cfg, st, &req, f, err, sizeof(err))
                    : statement_out_print(m, cfg, st, &req, f, err, sizeof(err));
    fclose(m);
    if (*ret < 0)
        fprintf(stderr, "(expected?) %s\n", err);
    return buf;
}

/*
 * Close November, then change it: w1's readings from Nov 30 00:00 on (k =
 * 697..721) arrive late, and a CT change 40 -> 60 on Nov 16 is recorded
 * for e1. Closed: e1 7.2 x 4000 = 28800 kWh; w1 ends at its last reading,
 * k = 696: 696 x 0.5 = 348 m3, 1357.20 CNY. November billed again prints
 * the closed text byte for byte. December's statement carries the
 * adjustments: e1 36000 - 28800 = +7200 kWh (+7200.00 CNY at 1.00), w1 360 -
 * 348 = +12 m3 (+46.80 CNY at 3.90), dated November. Once December is
 * closed, January adjusts nothing.
 */
static void test_close(void)
{
    char db[600];
    struct store *st = new_store("close.db", db, sizeof(db));
    struct config *cfg = load_cfg("close.cfg", 40, db);
    if (!st || !cfg)
        return;
    put_e1(st, steady);
    CHECK_INT(meterhist_ensure_initial(store_db(st), &cfg->enterprises[0],
                                       &cfg->enterprises[0].meters[0]), 0);
    uint32_t id;
    CHECK_INT(store_point_id(st, "acme", "w1", "total_m3", UTIL_WATER, KIND_COUNTER, &id), 0);
    struct sample smp[723];
    int64_t t0 = lt("2026-11-01");
    for (int k = -1; k <= 721; k++)
        smp[k + 1] = (struct sample){id, t0 + k * H, 500.0 + 0.5 * k};
    CHECK_INT(store_insert(st, smp, 698), 0); /* k = -1..696 */

    int64_t nov = lt("2026-11-01"), dec = lt("2026-12-01"), jan = lt("2027-01-01");
    int r;
    char *closed = print_bill(cfg, st, nov, dec, STATEMENT_CSV, true, &r);
    CHECK_INT(r, 0);
    CHECK_CONTAINS(closed, "acme,e1,electricity,kWh,2026-11-01T00:00:00+08:00,"
                           "2026-12-01T00:00:00+08:00,4000000.000,4028800.000,28800.000,");
    CHECK_CONTAINS(closed, ",348.000,,,,");
    CHECK_CONTAINS(closed, ",1357.20,CNY,");
    char *closed_json = print_bill(cfg, st, nov, dec, STATEMENT_JSON, false, &r);
    /* closing twice, or an overlapping period, is refused */
    free(print_bill(cfg, st, nov, dec, STATEMENT_CSV, true, &r));
    CHECK_INT(r, -EINVAL);
    free(print_bill(cfg, st, lt("2026-11-15"), lt("2026-12-15"), STATEMENT_CSV, true, &r));
    CHECK_INT(r, -EINVAL);

    /* the late readings and the ratio record */
    CHECK_INT(store_insert(st, smp + 698, 25), 0);
    struct meterlog_rec rec = {.ts = lt("2026-11-16"), .kind = METERLOG_RATIO, .pt = 100,
                               .ct = 60, .source = "meter"};
    CHECK_INT(meterlog_add(store_db(st), "acme", "e1", &rec, NULL), 0);

    char *again = print_bill(cfg, st, nov, dec, STATEMENT_CSV, false, &r);
    CHECK_INT(r, 0);
    CHECK_STR(again, closed);
    free(again);
    again = print_bill(cfg, st, nov, dec, STATEMENT_JSON, false, &r);
    CHECK_STR(again, closed_json);
    free(again);

    char *decb = print_bill(cfg, st, dec, jan, STATEMENT_CSV, false, &r);
    CHECK_INT(r, 0);
    CHECK_CONTAINS(decb, "acme,e1,electricity,kWh,2026-11-01T00:00:00+08:00,"
                         "2026-12-01T00:00:00+08:00,,,7200.000,,,,,7200.00,CNY,");
    CHECK_CONTAINS(decb, "acme,w1,water,m3,2026-11-01T00:00:00+08:00,"
                         "2026-12-01T00:00:00+08:00,,,12.000,,,,,46.80,CNY,");
    free(decb);
    char *dect = print_bill(cfg, st, dec, jan, STATEMENT_TABLE, false, &r);
    CHECK_CONTAINS(dect, "e1 adjustment");
    CHECK_CONTAINS(dect, "note: acme/e1 adjustment of the closed period 2026-11-01T00:00:00+08:00 "
                         "to 2026-12-01T00:00:00+08:00: +7200.000 kWh");
    free(dect);

    free(print_bill(cfg, st, dec, jan, STATEMENT_CSV, true, &r));
    CHECK_INT(r, 0);
    char *janb = print_bill(cfg, st, jan, lt("2027-02-01"), STATEMENT_CSV, false, &r);
    CHECK(janb && !strstr(janb, "2026-11-01T00:00:00+08:00"));
    free(janb);
    free(closed);
    free(closed_json);
    store_close(st);
    config_free(cfg);
}

/* A database migrated from schema 5 in the middle of November: its
 * samples before the migration were stored multiplied (PT 100 x CT 40), the
 * later ones as dial readings. */
static double legacy(int k)
{
    return k < 360 ? (1000.0 + 0.01 * k) * 4000.0 : 1000.0 + 0.01 * k;
}

/*
 * The migration keeps the figures: samples before meta.dial_since (Nov 16)
 * are divided by the multiplier in force (the initial record, CT 40): the
 * month bills 7.2 x 4000 = 28800 kWh, as if every sample were a dial
 * reading, with no reset at the migration. Without the record (bill before
 * the daemon's first start) the config's ratios give the same.
 */
static void test_migrated(void)
{
    char db[600];
    struct store *st = new_store("legacy.db", db, sizeof(db));
    struct config *cfg = load_cfg("legacy.cfg", 40, db);
    if (!st || !cfg)
        return;
    put_e1(st, legacy);
    char *sql = xasprintf("INSERT INTO meta(key, value) VALUES ('dial_since', %lld)",
                          (long long)lt("2026-11-16"));
    CHECK_INT(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
    free(sql);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            CHECK_INT(meterhist_ensure_initial(store_db(st), &cfg->enterprises[0],
                                               &cfg->enterprises[0].meters[0]), 0);
        struct statement *s = bill(cfg, st);
        const struct statement_row *w = row(s, "e1");
        if (w) {
            CHECK_NEAR(w->r.consumption, 28800, 1e-6);
            CHECK_INT(w->r.n_resets, 0);
            CHECK_NEAR(w->r.start_reading, 4000000, 1e-6);
            CHECK_NEAR(w->r.coverage_pct, 100, 1e-9);
        }
        statement_free(s);
    }
    store_close(st);
    config_free(cfg);
}

/*
 * Maximum demand across a CT change (40 -> 60 on Nov 16, by `meter ratio`),
 * dial 1000 + 0.01 k an hour: 0.01 x 4000 = 40 kWh an hour before, 60
 * after; a quarter hour holds 10 kWh = 40 kW, then 15 kWh = 60 kW. The
 * maximum is 60 kW, in a window after Nov 16 00:00; basic 60 x 30 = 1,800.00. Days:
 * Nov 15 24 x 40 = 960 kWh, Nov 16 24 x 60 = 1,440. The same from raw
 * samples only: each segment's accumulator also reads 7 days beyond it,
 * which must not reach the series (else Nov 16-23 would read 100 kW).
 */
static void test_demand_across_ratio(void)
{
    char db[600];
    struct store *st = new_store("demand.db", db, sizeof(db));
    char *path = xasprintf("%s/demand.cfg", tmpdir);
    char *text = xasprintf(
        "gateway = { id = \"t1\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 502; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "enterprises = ( { id = \"acme\"; name = \"Acme\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1;\n"
        "    profile = \"generic-electricity\"; interval = 3600; pt_ratio = 100.0;"
        " ct_ratio = 40.0; max_demand = true; } ); } );\n"
        "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; price = 1.0;"
        " demand_price = 30.0; } );\n",
        db);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    struct config *cfg = NULL;
    char err[512];
    CHECK_INT(config_load(path, &cfg, err, sizeof(err)), 0);
    if (!st || !cfg) {
        free(path);
        return;
    }
    put_e1(st, steady);
    store_close(st);
    char *ok[] = {"meter", "-c", path, "acme/e1", "ratio", "--at", "2026-11-16", "--ct", "60",
                  NULL};
    CHECK_INT(cmd_meter(9, ok, NULL), 0);
    free(path);
    st = NULL;
    CHECK_INT(store_open(db, true, &st, err, sizeof(err)), 0);
    for (int raw = 0; st && raw <= 1; raw++) {
        struct statement_request req = {.from = lt("2026-11-01"), .to = lt("2026-12-01"),
                                        .raw_only = raw, .daily = true};
        struct statement *s = NULL;
        CHECK_INT(statement_build(cfg, st, &req, &s, err, sizeof(err)), 0);
        const struct statement_row *w = row(s, "e1");
        if (w) {
            CHECK_INT(w->n_seg, 2);
            CHECK_NEAR(w->demand_kw, 60.0, 1e-6);
            /* every quarter hour after the change holds 60 kW up to rounding of
             * the dial deltas, so the one reported may be any of them */
            CHECK(w->demand_ts >= lt("2026-11-16") && w->demand_ts < lt("2026-12-01"));
            CHECK_NEAR(w->ch.basic_charge, 1800.00, 0);
            CHECK_INT(w->daily.n, 30);
            if (w->daily.n == 30) {
                CHECK_NEAR(w->daily.v[14], 960.0, 1e-6);
                CHECK_NEAR(w->daily.v[15], 1440.0, 1e-6);
                CHECK_NEAR(w->daily.v[22], 1440.0, 1e-6);
            }
            /* 36,000 kWh at 1.00 + 1,800.00 */
            CHECK_NEAR(statement_row_amount(w), 37800.00, 0);
        }
        statement_free(s);
    }
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
    snprintf(tmpdir, sizeof(tmpdir), "%s/meterhistXXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    char *pdir = xasprintf("%s/config/profiles", src);
    setenv("PARKGW_PROFILE_DIR", pdir, 1);
    free(pdir);
    test_ratio_by_command();
    test_ratio_by_reload();
    test_replacement();
    test_hourly_import();
    test_price_change();
    test_close();
    test_migrated();
    test_demand_across_ratio();
    return check_done();
}
