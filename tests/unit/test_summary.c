/*
 * test_summary.c - the summary engine's arithmetic on hand-computed
 * scenarios: counter deltas spread over aligned intervals (fresh start
 * discards what precedes the first whole interval), wrap-around added back,
 * reset and spike counting 0, kw_avg from the power gauge mean or from kWh
 * per hour, coincident kw_max, readiness waiting for slow meters, meters
 * down, late consumption counted in the oldest open interval, rollback of a
 * failed transaction, and resuming from the database after a restart.
 */
#include "engine/summary.h"
#include "common/util.h"
#include "storage/store.h"
#include "tests/unit/check.h"

#include <sqlite3.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A multiple of 60 s: 28333334 x 60000. */
#define T 1700000040000LL
#define S(sec) (T + (sec) * 1000LL)

static struct config *cfg;
static uint32_t *ids[3];
/* Point indexes in the profiles: generic-electricity energy_import_kwh 0,
 * power_kw 9; generic-water total_m3 0; plain-elec energy 0. */
#define E_KWH 0
#define E_KW 9
/* Meter a/e1's dial reading for a primary kWh figure: PT 100 x CT 10 = 1000.
 * Its data rises up to 360 kWh/h primary, 0.36 kWh/h on the dial, within
 * generic-electricity's max_rate of 1.25 kWh/h (dial). */
#define DIAL(kwh) ((kwh) / 1000.0)

static void feed(struct summary *s, size_t meter, size_t pi, int64_t ts, double v)
{
    struct sample smp = {.point = ids[meter][pi], .ts = ts, .value = v};
    summary_add(s, &smp, 1);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    CHECK(j != NULL);
    return j;
}

static double num(json_t *o, const char *util, const char *key)
{
    json_t *u = util ? json_object_get(o, util) : o;
    json_t *v = json_object_get(u, key);
    if (!json_is_number(v)) {
        fprintf(stderr, "missing %s.%s\n", util ? util : "", key);
        return NAN;
    }
    return json_number_value(v);
}

/* Flushes at now and expects exactly n_intervals intervals (3 messages each). */
static struct summary_msg *flush_expect(struct summary *s, int64_t now, size_t n_intervals)
{
    struct summary_msg *msgs = NULL;
    size_t n = summary_flush(s, now, &msgs);
    CHECK_INT(n, 3 * n_intervals);
    return msgs;
}

/*
 * A wall-clock step of +120 s (the monotonic clock runs on): the open
 * intervals move with it by two 60 s intervals, so the next flush publishes
 * one interval, not the three the skipped time would make; each counter's
 * last reading moves by the step, so the first reading after it is 10 s
 * later, not 130 s. A step back moves them back.
 */
static void test_clock_step(struct store *st)
{
    struct summary *s = NULL;
    /* No saved state: the engine starts at the current interval. */
    CHECK_INT(sqlite3_exec(store_db(st), "DELETE FROM meta WHERE key LIKE 'summary%'", NULL, NULL,
                           NULL),
              SQLITE_OK);
    CHECK_INT(summary_new(cfg, ids, "park/gw", &s), 0);
    CHECK_INT(summary_load(s, st, S(1000)), 0);
    CHECK_INT(summary_next_from(s), S(960));
    summary_set_clock(s, S(1000), 0);
    /* Meter 2 (b/e1, 30 s polls): 100 kWh at T+1000 s, +1 every 10 s. */
    for (int k = 0; k <= 5; k++) {
        summary_set_clock(s, S(1000 + 10 * k), 10000 * k);
        feed(s, 2, 0, S(1000 + 10 * k), 100 + k);
    }
    /* 10 s later by the monotonic clock, the wall clock says 130 s. */
    summary_set_clock(s, S(1060) + 120000, 60000);
    CHECK_INT(summary_next_from(s), S(960) + 120000);
    for (int k = 6; k <= 8; k++)
        feed(s, 2, 0, S(1000 + 10 * k) + 120000, 100 + k);
    /* [T+1080, T+1140) (was [T+960, T+1020)) is due once the 60 s water
     * meter's poll and the grace have passed; one interval, with the 2 kWh
     * of [T+1000, T+1020), not three. */
    struct summary_msg *msgs = flush_expect(s, S(1140) + 63000, 1);
    if (msgs) {
        json_t *b = parse(msgs[1].payload);
        CHECK_INT(json_integer_value(json_object_get(b, "from")), S(1080));
        CHECK_NEAR(num(b, "electricity", "kwh"), 2.0, 1e-9);
        json_decref(b);
    }
    summary_msgs_free(msgs, 3);
    /* The 3 kWh of T+1020..1050 and the 3 of the 30 s after the step are
     * in the next interval: nothing was spread over the 120 s skipped. */
    msgs = flush_expect(s, S(1200) + 63000, 1);
    if (msgs) {
        json_t *b = parse(msgs[1].payload);
        CHECK_INT(json_integer_value(json_object_get(b, "from")), S(1140));
        CHECK_NEAR(num(b, "electricity", "kwh"), 3.0 + 3.0, 1e-9);
        json_decref(b);
    }
    summary_msgs_free(msgs, 3);
    /* And back by 120 s: the open interval moves back two. */
    int64_t open = summary_next_from(s);
    summary_set_clock(s, S(1000) + 70000, 70000);
    CHECK_INT(summary_next_from(s), open - 120000);
    /* Sub-second drift is not a step. */
    summary_set_clock(s, S(1000) + 80400, 80000);
    CHECK_INT(summary_next_from(s), open - 120000);
    summary_free(s);
}

int main(void)
{
    const char *src = getenv("PARKGW_SOURCE_DIR");
    const char *tmp = getenv("PARKGW_TEST_TMP");
    if (!src || !*src)
        src = ".";
    if (!tmp || !*tmp)
        tmp = "/tmp";
    mkdir(tmp, 0755);
    setenv("TZ", "UTC", 1);

    char *cfg_path = xasprintf("%s/test_summary.%d.cfg", tmp, (int)getpid());
    char *db_path = xasprintf("%s/test_summary.%d.db", tmp, (int)getpid());
    char *text = xasprintf(
        "gateway = { id = \"gw\"; };\n"
        "storage = { path = \"%s\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1\"; summary_interval = 60; };\n"
        "buses = ( { name = \"b\"; type = \"tcp\"; host = \"127.0.0.1\"; port = 1502; } );\n"
        "@include \"%s/config/profiles/generic-electricity.cfg\"\n"
        "@include \"%s/config/profiles/generic-water.cfg\"\n"
        "profiles = ( { name = \"plain-elec\"; utility = \"electricity\";\n"
        "  points = ( { name = \"energy_kwh\"; fc = 3; address = 0; type = \"float32\";\n"
        "               kind = \"counter\"; billing = true; } ); } );\n"
        "enterprises = (\n"
        "  { id = \"a\"; name = \"A\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 10;\n"
        "      pt_ratio = 100.0; ct_ratio = 10.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"b\"; unit_id = 2;\n"
        "      profile = \"generic-water\"; interval = 60; } ); },\n"
        "  { id = \"b\"; name = \"B\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"b\"; unit_id = 3;\n"
        "      profile = \"plain-elec\"; interval = 30; } ); }\n"
        ");\n",
        db_path, src, src);
    FILE *f = fopen(cfg_path, "we");
    CHECK(f != NULL);
    if (!f)
        return check_done();
    fputs(text, f);
    fclose(f);
    free(text);
    char err[1024] = "";
    if (config_load(cfg_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        CHECK(0);
        return check_done();
    }
    unlink(db_path);
    struct store *st = NULL;
    CHECK_INT(store_open(db_path, false, &st, err, sizeof(err)), 0);
    if (!st)
        return check_done();
    size_t j = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++, j++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            const struct cfg_profile *p = &cfg->profiles[m->profile];
            ids[j] = xcalloc(p->n_points, sizeof(uint32_t));
            for (size_t k = 0; k < p->n_points; k++)
                CHECK_INT(store_point_id(st, cfg->enterprises[e].id, m->id, p->points[k].name,
                                         m->utility, p->points[k].kind, &ids[j][k]),
                          0);
        }
    CHECK_STR(cfg->profiles[cfg->enterprises[0].meters[0].profile].points[E_KW].name, "power_kw");

    struct summary *s = NULL;
    CHECK_INT(summary_new(cfg, ids, "park/gw", &s), 0);
    /* Fresh database, started at T: the first interval is the current one,
     * [T, T+60) (started 5 s into an interval, that one, partly covered). */
    CHECK_INT(summary_load(s, st, S(-5)), 0);
    CHECK_INT(summary_next_from(s), T - 60000);
    CHECK_INT(summary_load(s, st, S(0)), 0);
    CHECK_INT(summary_next_from(s), T);
    CHECK(!summary_due(s, S(70)));

    /*
     * Meter 0 (a/e1, power gauge; primary kWh, the dial reads 1/1000 of
     * them): 100 at T-10, 103 at T+20, 107 at T+60, 110 at T+120. The first delta (3 over 30 s) is 1.0 before T, counted
     * in the oldest open interval (every unit from the first reading on is
     * summarised), and 2.0 inside; the second (4) is inside:
     * interval 0 = 7 kWh; interval 1 = 3 kWh. Power: 300 at T, 420 at T+30
     * -> mean 360, max 420; 180 at T+60 -> interval 1 mean and max 180.
     */
    feed(s, 0, E_KWH, S(-10), DIAL(100));
    feed(s, 0, E_KWH, S(0), DIAL(101));   /* on the line T-10..T+20 */
    feed(s, 0, E_KW, S(0), 300);
    feed(s, 0, E_KWH, S(20), DIAL(103));
    feed(s, 0, E_KW, S(30), 420);
    feed(s, 0, E_KWH, S(60), DIAL(107));
    feed(s, 0, E_KW, S(60), 180);
    feed(s, 0, E_KWH, S(120), DIAL(110));
    /*
     * Meter 1 (a/w1, uint32 x 0.001: wraps at 4294967.296 m3, max_rate 500
     * m3/h = 8.333 m3 per minute): 4294967.0 at T, 2.704 at T+60 is a wrap
     * of 3.0 m3; 0.5 at T+120 is a reset (2.704 -> 0.5 wrapped would be
     * 4294965.092 m3, implausible): 0.
     */
    feed(s, 1, 0, S(0), 4294967.0);
    feed(s, 1, 0, S(60), 2.704);
    feed(s, 1, 0, S(120), 0.5);
    /*
     * Meter 2 (b/e1, no power gauge): 50, 56, 62, 62.5, 63.5 every 30 s:
     * interval 0 = 12 kWh -> kw_avg = 12 / (1/60 h) = 720 = kw_max;
     * interval 1 = 1.5 kWh -> 90 kW.
     */
    feed(s, 2, 0, S(0), 50);
    feed(s, 2, 0, S(30), 56);
    feed(s, 2, 0, S(60), 62);
    feed(s, 2, 0, S(90), 62.5);
    feed(s, 2, 0, S(120), 63.5);

    /* Ready at the end + 2.5 s grace, not before. */
    CHECK(!summary_due(s, S(62) + 499));
    CHECK(summary_due(s, S(62) + 500));
    struct summary_msg *msgs = flush_expect(s, S(62) + 500, 1);
    if (msgs) {
        CHECK_STR(msgs[0].topic, "park/gw/a/summary");
        CHECK_STR(msgs[1].topic, "park/gw/b/summary");
        CHECK_STR(msgs[2].topic, "park/gw/summary");
        json_t *a = parse(msgs[0].payload), *b = parse(msgs[1].payload),
               *p = parse(msgs[2].payload);
        CHECK_INT(json_integer_value(json_object_get(a, "from")), T);
        CHECK_INT(json_integer_value(json_object_get(a, "to")), S(60));
        CHECK(json_object_get(a, "seq") == NULL);
        CHECK_NEAR(num(a, "electricity", "kwh"), 7.0, 1e-9);
        CHECK_NEAR(num(a, "electricity", "kw_avg"), 360.0, 1e-9);
        CHECK_NEAR(num(a, "electricity", "kw_max"), 420.0, 1e-9);
        CHECK_NEAR(num(a, "water", "m3"), 3.0, 1e-6);
        CHECK(json_object_get(a, "gas") == NULL);
        CHECK(json_object_get(a, "enterprises") == NULL);
        CHECK_NEAR(num(b, "electricity", "kwh"), 12.0, 1e-9);
        CHECK_NEAR(num(b, "electricity", "kw_avg"), 720.0, 1e-9);
        CHECK_NEAR(num(b, "electricity", "kw_max"), 720.0, 1e-9);
        CHECK(json_object_get(b, "water") == NULL);
        /* Park: 19 kWh; kw_avg 360 + 720; kw_max = held max 420 (meter 0
         * alone has the gauge) + 720 from the gaugeless meter = 1140. */
        CHECK_NEAR(num(p, "electricity", "kwh"), 19.0, 1e-9);
        CHECK_NEAR(num(p, "electricity", "kw_avg"), 1080.0, 1e-9);
        CHECK_NEAR(num(p, "electricity", "kw_max"), 1140.0, 1e-9);
        CHECK_NEAR(num(p, "water", "m3"), 3.0, 1e-6);
        CHECK_INT(json_integer_value(json_object_get(p, "enterprises")), 2);
        CHECK_INT(json_integer_value(json_object_get(p, "meters_ok")), 3);
        CHECK_INT(json_integer_value(json_object_get(p, "meters_down")), 0);
        json_decref(a);
        json_decref(b);
        json_decref(p);
    }
    summary_msgs_free(msgs, 3);
    CHECK_INT(summary_next_from(s), S(60));

    /* Interval 1: a = 3 kWh at 180 kW, water 0 (reset); b = 1.5 kWh, 90 kW;
     * park 4.5 kWh, kw_avg 270, kw_max 180 + 90 = 270. */
    msgs = flush_expect(s, S(122) + 500, 1);
    if (msgs) {
        json_t *a = parse(msgs[0].payload), *b = parse(msgs[1].payload),
               *p = parse(msgs[2].payload);
        CHECK_NEAR(num(a, "electricity", "kwh"), 3.0, 1e-9);
        CHECK_NEAR(num(a, "electricity", "kw_avg"), 180.0, 1e-9);
        CHECK_NEAR(num(a, "electricity", "kw_max"), 180.0, 1e-9);
        CHECK_NEAR(num(a, "water", "m3"), 0.0, 1e-9);
        CHECK_NEAR(num(b, "electricity", "kwh"), 1.5, 1e-9);
        CHECK_NEAR(num(b, "electricity", "kw_avg"), 90.0, 1e-9);
        CHECK_NEAR(num(p, "electricity", "kwh"), 4.5, 1e-9);
        CHECK_NEAR(num(p, "electricity", "kw_avg"), 270.0, 1e-9);
        CHECK_NEAR(num(p, "electricity", "kw_max"), 270.0, 1e-9);
        json_decref(a);
        json_decref(b);
        json_decref(p);
    }
    summary_msgs_free(msgs, 3);

    /*
     * Interval 2 [T+120, T+180): meters 0 and 2 report at T+180, the water
     * meter (60 s polls) does not yet: the interval waits for it until
     * T+180 + 60 + 2.5 s. Its reading 100.5 at T+180 jumps 100 m3 in a
     * minute, above max_rate: a spike, 0.
     */
    feed(s, 0, E_KWH, S(180), DIAL(112));
    feed(s, 2, 0, S(150), 64.5);
    feed(s, 2, 0, S(180), 65.5);
    CHECK(!summary_due(s, S(182) + 500));
    CHECK(!summary_due(s, S(242) + 499));
    CHECK(summary_due(s, S(242) + 500));
    feed(s, 1, 0, S(180), 100.5);
    CHECK(summary_due(s, S(182) + 500));
    msgs = flush_expect(s, S(182) + 500, 1);
    if (msgs) {
        json_t *a = parse(msgs[0].payload), *b = parse(msgs[1].payload);
        CHECK_NEAR(num(a, "electricity", "kwh"), 2.0, 1e-9);
        /* No power reading in the interval: the held 180 kW carried in. */
        CHECK_NEAR(num(a, "electricity", "kw_max"), 180.0, 1e-9);
        /* kw_avg falls back to kWh per hour: 2 x 60. */
        CHECK_NEAR(num(a, "electricity", "kw_avg"), 120.0, 1e-9);
        CHECK_NEAR(num(a, "water", "m3"), 0.0, 1e-9);
        CHECK_NEAR(num(b, "electricity", "kwh"), 2.0, 1e-9);
        json_decref(a);
        json_decref(b);
    }
    summary_msgs_free(msgs, 3);

    /*
     * Meter 2 goes silent after T+180. Intervals 3, 4, 5 wait for it 30 s +
     * grace each. At interval 5's end (T+360) its last reading is 180 s old,
     * more than two summary intervals (120 s): down. Meanwhile the water
     * meter continues from the spike's level: 102.5 at T+240 = 2 m3.
     */
    for (int k = 3; k <= 5; k++) {
        int64_t end = 60 * (k + 1);
        for (int64_t t = end - 50; t <= end; t += 10)
            feed(s, 0, E_KWH, S(t), DIAL(112 + (double)(t - 180) / 60.0));
        feed(s, 1, 0, S(end), 100.5 + 2.0 * (double)(end - 180) / 60.0);
        CHECK(!summary_due(s, S(end + 32) + 499));
        msgs = flush_expect(s, S(end + 32) + 500, 1);
        if (msgs) {
            json_t *a = parse(msgs[0].payload), *p = parse(msgs[2].payload);
            CHECK_NEAR(num(a, "electricity", "kwh"), 1.0, 1e-9);
            CHECK_NEAR(num(a, "water", "m3"), 2.0, 1e-6);
            CHECK_INT(json_integer_value(json_object_get(p, "meters_ok")), k < 5 ? 3 : 2);
            CHECK_INT(json_integer_value(json_object_get(p, "meters_down")), k < 5 ? 0 : 1);
            json_decref(a);
            json_decref(p);
        }
        summary_msgs_free(msgs, 3);
    }

    /*
     * Meter 2 comes back at T+420 with 67.5: 2 kWh over [T+180, T+420).
     * The 1.5 kWh share of the published intervals 3-5 counts in the oldest
     * open one, interval 6, with its own 0.5: 2.0. A failed transaction is
     * rolled back and fed again: same result.
     */
    summary_checkpoint(s);
    feed(s, 0, E_KWH, S(420), DIAL(116));
    feed(s, 1, 0, S(420), 108.5);
    feed(s, 2, 0, S(420), 67.5);
    msgs = flush_expect(s, S(422) + 500, 1);
    summary_msgs_free(msgs, 3);
    CHECK_INT(summary_next_from(s), S(420));
    summary_rollback(s);
    CHECK_INT(summary_next_from(s), S(360));
    CHECK(!summary_due(s, S(422) + 500));
    feed(s, 0, E_KWH, S(420), DIAL(116));
    feed(s, 1, 0, S(420), 108.5);
    feed(s, 2, 0, S(420), 67.5);
    msgs = flush_expect(s, S(422) + 500, 1);
    if (msgs) {
        json_t *a = parse(msgs[0].payload), *b = parse(msgs[1].payload),
               *p = parse(msgs[2].payload);
        CHECK_NEAR(num(a, "electricity", "kwh"), 1.0, 1e-9);
        CHECK_NEAR(num(a, "water", "m3"), 2.0, 1e-6);
        CHECK_NEAR(num(b, "electricity", "kwh"), 2.0, 1e-9);
        CHECK_INT(json_integer_value(json_object_get(p, "meters_ok")), 3);
        json_decref(a);
        json_decref(b);
        json_decref(p);
    }
    summary_msgs_free(msgs, 3);
    /* Every kWh of meter 2 from its first reading is in some summary:
     * 12 + 1.5 + 2 + 0 + 0 + 0 + 2 = 17.5 = 67.5 - 50. */

    /* Restart: the state and meter 0's last reading are in the database. */
    CHECK_INT(store_begin(st), 0);
    CHECK_INT(summary_save_state(s, st), 0);
    struct sample last = {.point = ids[0][E_KWH], .ts = S(420), .value = DIAL(116)};
    CHECK_INT(store_add_samples(st, &last, 1), 0);
    CHECK_INT(store_commit(st), 0);
    summary_free(s);
    CHECK_INT(summary_new(cfg, ids, "park/gw", &s), 0);
    CHECK_INT(summary_load(s, st, S(425)), 0);
    CHECK_INT(summary_next_from(s), S(420));
    /* 116 -> 122 over [T+420, T+480): 6 kWh in interval 7; meters 1 and 2
     * have no stored reading, their first new one only sets the base. The
     * interval waits for them (no reading since its end): 60 s + grace for
     * the water meter. */
    feed(s, 0, E_KWH, S(480), DIAL(122));
    CHECK(!summary_due(s, S(482) + 500));
    msgs = flush_expect(s, S(542) + 500, 1);
    if (msgs) {
        json_t *a = parse(msgs[0].payload);
        CHECK_INT(json_integer_value(json_object_get(a, "from")), S(420));
        CHECK_NEAR(num(a, "electricity", "kwh"), 6.0, 1e-9);
        json_decref(a);
    }
    summary_msgs_free(msgs, 3);

    /* A state more than SUMMARY_MAX_CATCHUP intervals old: publishing
     * resumes SUMMARY_MAX_CATCHUP - 1 intervals back, the older
     * consumption in the first of them. */
    CHECK_INT(store_begin(st), 0);
    CHECK_INT(summary_save_state(s, st), 0);
    CHECK_INT(store_commit(st), 0);
    summary_free(s);
    CHECK_INT(summary_new(cfg, ids, "park/gw", &s), 0);
    int64_t later = S(480) + (int64_t)(SUMMARY_MAX_CATCHUP + 10) * 60000 + 1000;
    CHECK_INT(summary_load(s, st, later), 0);
    CHECK_INT(summary_next_from(s),
              (later / 60000 - (SUMMARY_MAX_CATCHUP - 1)) * 60000);

    summary_free(s);
    test_clock_step(st);
    store_close(st);
    for (size_t i = 0; i < 3; i++)
        free(ids[i]);
    config_free(cfg);
    unlink(cfg_path);
    unlink(db_path);
    char *wal = xasprintf("%s-wal", db_path), *shm = xasprintf("%s-shm", db_path);
    unlink(wal);
    unlink(shm);
    free(wal);
    free(shm);
    free(cfg_path);
    free(db_path);
    return check_done();
}
