/*
 * it_billing.c - billing end to end: `parkgw run` polls parkgw-sim (one
 * electricity meter, one water meter with a uint32 x 0.001 register, 1 s
 * intervals) while the test forces the water register through its wrap and
 * replaces the electricity meter (sim `offset` commands); then `parkgw bill`
 * for the whole ingest window must give the model's consumption: the
 * counter values at the first and last sample, the wrap added back, the
 * replacement as a new segment (nothing negative, nothing across the swap).
 * Every step waits on what it needs (a commit, the wrap seen live, the
 * reset event, later live values) with a deadline.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/billing.h"
#include "common/util.h"
#include "storage/store.h"
#include "tests/integration/harness.h"
#include "tools/sim/sim_model.h"

#define SEED 4242
#define MAXS 256
#define BASE "park/itbill"
#define W1_LIVE BASE "/xiangjiang-pharma/water/w1/live"
#define E1_LIVE BASE "/xiangjiang-pharma/electricity/e1/live"
#define EVENTS BASE "/events"

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itbill\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; topic_prefix = \"park\"; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "enterprises = ( { id = \"xiangjiang-pharma\"; name = \"湘江制药有限公司\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"line\"; unit_id = 1;\n"
        "    profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"line\"; unit_id = 2;\n"
        "    profile = \"generic-water\"; interval = 1; } ); } );\n"
        "tariffs = (\n"
        "  { utility = \"electricity\"; currency = \"CNY\";\n"
        "    bands = ( { name = \"peak\"; price = 1.0; hours = [ \"08:00-11:00\", \"18:00-23:00\" ]; },\n"
        "              { name = \"flat\"; price = 0.7; hours = [ \"07:00-08:00\", \"11:00-18:00\" ]; },\n"
        "              { name = \"valley\"; price = 0.3; hours = [ \"23:00-07:00\" ]; } ); },\n"
        "  { utility = \"water\"; currency = \"CNY\"; price = 3.90; } );\n",
        dir, mqtt_port, sim_port);
}

struct series {
    size_t n;
    int64_t ts[MAXS];
    double v[MAXS];
};

static int collect(void *ud, int64_t ts, double v)
{
    struct series *s = ud;
    if (s->n < MAXS) {
        s->ts[s->n] = ts;
        s->v[s->n] = v;
        s->n++;
    }
    return 0;
}

/* The multiplier between a stored billing counter (the dial reading) and
 * the value the model publishes: e1's PT 100 x CT 20 = 2000, 1 for water. */
static double stored_mult(const struct config *cfg, const struct cfg_meter *m, size_t pi)
{
    const struct cfg_point *pt = &cfg->profiles[m->profile].points[pi];
    return pt->billing ? point_ratio_factor(pt, m->pt_ratio, m->ct_ratio) : 1.0;
}

/* The model's value for a stored sample: the poll is stamped when it
 * starts, the sim may answer in the next second. Returns whether the stored
 * value is one of the two (then *ret is it, as stored: the dial reading). */
static bool model_value(const struct config *cfg, const struct cfg_meter *m, size_t pi,
                        int64_t ts, double offset, double stored, double *ret)
{
    struct sim_meter_state st = {.counter_offset = offset};
    double f = stored_mult(cfg, m, pi);
    for (int64_t dt = 0; dt <= 1; dt++) {
        double want = sim_expected_decoded(SEED, cfg, m, pi, ts / 1000 + dt, &st);
        if (fabs(want - stored * f) <= 1e-9 * fmax(1.0, fabs(want))) {
            *ret = stored;
            return true;
        }
    }
    return false;
}

/* Splits a CSV data line into fields (no quoting in these rows). */
static int csv_fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        p = strchr(p, ',');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

/* What the scenarios share: the park, its config, the meters' billing
 * points, the offsets the sim applied, and what was stored. */
static struct h_park pk;
static struct config *cfg;
static const struct cfg_meter *e1, *w1;
static size_t epi, wpi;
static const struct cfg_point *wpt;
static double wmod, w_off, e_off;
static struct h_sub *sub;
static struct series es, ws;
static size_t edrop, wdrop;
static double wfirst, wlast, efirst, ebefore, eafter, elast;
static char from_s[64], to_s[64];
static int64_t from_ms, to_ms;

/* The billing point's value in a live payload, or NAN. */
static double live_value(const char *payload, const char *point)
{
    json_t *root = json_loads(payload, 0, NULL);
    json_t *v = json_object_get(json_object_get(root, "values"), point);
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(root);
    return d;
}

/* Waits until a live message on topic carries a value of point below the
 * one before it (the counter wrapped or restarted); its index or -1. */
static long wait_live_drop(const char *topic, const char *point, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    double prev = NAN;
    for (size_t from = 0;;) {
        long i = h_sub_wait(sub, from, topic, NULL, h_left_ms(end));
        if (i < 0)
            return -1;
        struct h_msg m;
        h_sub_get(sub, (size_t)i, &m);
        double v = live_value(m.payload, point);
        h_msg_free(&m);
        if (v < prev)
            return i;
        prev = v;
        from = (size_t)i + 1;
    }
}

/* The sim and mosquitto run, the config is loaded; the water register's
 * wrap modulus is 2^32 x 0.001 m3 (uint32 x 0.001). */
static void setup(void)
{
    h_park_start(&pk, "it_billing", make_config, SEED);
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        exit(2);
    }
    e1 = config_find_meter(cfg, "xiangjiang-pharma/e1");
    w1 = config_find_meter(cfg, "xiangjiang-pharma/w1");
    epi = (size_t)profile_billing_point(&cfg->profiles[e1->profile]);
    wpi = (size_t)profile_billing_point(&cfg->profiles[w1->profile]);
    wpt = &cfg->profiles[w1->profile].points[wpi];
    wmod = bill_wrap_modulus(wpt, w1);
    CHECK_NEAR(wmod, 4294967.296, 1e-6);
    sub = h_sub_new(pk.mport, "it-billing-sub", BASE "/#");
}

/* Ingest through a wrap: before the gateway starts, the water counter is
 * put about 5 s of flow below 2^32 x 0.001 m3 (the offset holds for every
 * sample: no jump), so it wraps while the gateway polls; the test waits
 * until a live value shows the wrap. */
static void scenario_ingest_through_wrap(void)
{
    int64_t now_s = now_real_ms() / 1000;
    double wv = sim_value(SEED, cfg, w1, wpi, now_s, NULL);
    double wrate = sim_main_rate(SEED, cfg, w1, now_s) / 3600.0; /* m3/s */
    /* sent with 3 decimals: the model must use the value the sim parses */
    w_off = round((wmod - wv - 5.0 * wrate) * 1000.0) / 1000.0;
    CHECK(h_sim_do(&pk.sim, "offset xiangjiang-pharma/w1 %.3f", w_off));
    h_park_run(&pk, true);
    if (!h_wait_log(&pk.gw, "storage: committed", 1, 15000)) {
        CHECK(!"parkgw commits samples");
        return;
    }
    long wi = wait_live_drop(W1_LIVE, wpt->name, 20000);
    CHECK(wi >= 0);
}

/* Meter replacement: the electricity counter restarts near 50 kWh; the
 * replacement is announced once on P/events (durable, so it arrives once
 * the writer committed it), the water wrap is not a reset. Two more live
 * values of e1 after the event, so the new segment has samples. */
static void scenario_meter_replacement(void)
{
    int64_t now_s = now_real_ms() / 1000;
    double ev = sim_value(SEED, cfg, e1, epi, now_s, NULL);
    e_off = round((50.0 - ev) * 1000.0) / 1000.0;
    CHECK(h_sim_do(&pk.sim, "offset xiangjiang-pharma/e1 %.3f", e_off));
    long ri = h_sub_wait(sub, 0, EVENTS, "\"counter_reset\"", 15000);
    CHECK(ri >= 0);
    if (ri >= 0) {
        struct h_msg m;
        h_sub_get(sub, (size_t)ri, &m);
        CHECK_CONTAINS(m.payload, "\"meter\":\"e1\"");
        CHECK_CONTAINS(m.payload, "\"point\":\"energy_import_kwh\"");
        CHECK_CONTAINS(m.payload, "\"seq\":");
        h_msg_free(&m);
        CHECK(h_sub_wait_count(sub, (size_t)ri + 1, E1_LIVE, NULL, 2, 5000));
    }
    CHECK_INT(h_sub_count_topic(sub, 0, EVENTS, "\"counter_reset\""), 1);
    CHECK_INT(h_sub_count_topic(sub, 0, EVENTS, "\"meter\":\"w1\""), 0);
    h_sub_free(sub);
    sub = NULL;
    CHECK(h_park_stop_gw(&pk));
}

/* What was stored, checked against the model: water has exactly one drop
 * (the wrap), electricity one (the swap), each with samples on both sides;
 * the values at the edges are the sim's (offset w_off on every water
 * sample, e_off on electricity after the swap). Sets the bill window: from
 * the first sample's second to the second after the last sample. */
static bool scenario_stored_series(void)
{
    struct store *st = NULL;
    uint32_t eid = 0, wid = 0;
    char err[512];
    CHECK_INT(store_open(cfg->storage_path, true, &st, err, sizeof(err)), 0);
    if (!st)
        return false;
    CHECK_INT(store_find_point(st, "xiangjiang-pharma", "e1", "energy_import_kwh", &eid), 0);
    CHECK_INT(store_find_point(st, "xiangjiang-pharma", "w1", wpt->name, &wid), 0);
    store_scan(st, eid, 0, INT64_MAX, collect, &es);
    store_scan(st, wid, 0, INT64_MAX, collect, &ws);
    store_close(st);

    size_t wdrops = 0, edrops = 0;
    for (size_t i = 1; i < ws.n; i++)
        if (ws.v[i] < ws.v[i - 1]) {
            wdrops++;
            wdrop = i;
        }
    for (size_t i = 1; i < es.n; i++)
        if (es.v[i] < es.v[i - 1]) {
            edrops++;
            edrop = i;
        }
    printf("stored: water %zu samples (wrap at %zu), electricity %zu (swap at %zu)\n", ws.n,
           wdrop, es.n, edrop);
    CHECK_INT(wdrops, 1);
    CHECK_INT(edrops, 1);
    if (wdrops != 1 || edrops != 1)
        return false;
    /* Samples on both sides of each drop. */
    CHECK(wdrop >= 2 && ws.n - wdrop >= 3);
    CHECK(edrop >= 3 && es.n - edrop >= 2);
    CHECK(model_value(cfg, w1, wpi, ws.ts[0], w_off, ws.v[0], &wfirst));
    CHECK(model_value(cfg, w1, wpi, ws.ts[ws.n - 1], w_off, ws.v[ws.n - 1], &wlast));
    CHECK(model_value(cfg, e1, epi, es.ts[0], 0, es.v[0], &efirst));
    CHECK(model_value(cfg, e1, epi, es.ts[edrop - 1], 0, es.v[edrop - 1], &ebefore));
    CHECK(model_value(cfg, e1, epi, es.ts[edrop], e_off, es.v[edrop], &eafter));
    CHECK(model_value(cfg, e1, epi, es.ts[es.n - 1], e_off, es.v[es.n - 1], &elast));

    int64_t t_first = es.ts[0] < ws.ts[0] ? es.ts[0] : ws.ts[0];
    int64_t t_last = es.ts[es.n - 1] > ws.ts[ws.n - 1] ? es.ts[es.n - 1] : ws.ts[ws.n - 1];
    from_ms = t_first / 1000 * 1000;
    to_ms = t_last / 1000 * 1000 + 1000;
    time_t fs = (time_t)(from_ms / 1000), ts_ = (time_t)(to_ms / 1000);
    struct tm tm;
    localtime_r(&fs, &tm);
    strftime(from_s, sizeof(from_s), "%Y-%m-%dT%H:%M:%S", &tm);
    localtime_r(&ts_, &tm);
    strftime(to_s, sizeof(to_s), "%Y-%m-%dT%H:%M:%S", &tm);
    return true;
}

/* `parkgw bill --format csv` over the whole ingest window. Nothing lies
 * outside, so water = last - first + 4294967.296 (the wrap added back);
 * electricity = (before the swap - first) + (last - first after it);
 * coverage: every 1 s water interval is covered, (last - first) / (to -
 * from); electricity loses the swap interval. Nothing negative; the water
 * price is flat, the electricity bands split the whole consumption. */
static void scenario_bill_csv(void)
{
    double want_w = wlast - wfirst + wmod;
    /* e1 is stored as dial readings: billed x 2000 (PT 100 x CT 20) */
    double emult = stored_mult(cfg, e1, epi);
    double want_e = ((ebefore - efirst) + (elast - eafter)) * emult;
    double want_wcov = (double)(ws.ts[ws.n - 1] - ws.ts[0]) * 100.0 / (double)(to_ms - from_ms);
    double want_ecov = (double)(es.ts[es.n - 1] - es.ts[0] - (es.ts[edrop] - es.ts[edrop - 1])) *
                       100.0 / (double)(to_ms - from_ms);
    printf("window %s .. %s: water %.3f m3 (wrap), electricity %.3f kWh (swap at %lld)\n", from_s,
           to_s, want_w, want_e, (long long)es.ts[edrop]);

    char *out = NULL, *eout = NULL;
    char *bill_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--from", from_s, "--to",
                         to_s, "--format", "csv", NULL};
    CHECK_INT(h_run(bill_argv, &out, &eout, 20000), 0);
    printf("%s", out ? out : "");
    int rows = 0;
    for (char *save = NULL, *line = strtok_r(out ? out : (char *)"", "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[32];
        int nf = csv_fields(line, f, 32);
        if (nf != 26 || strcmp(f[0], "xiangjiang-pharma") != 0)
            continue;
        rows++;
        double cons = strtod(f[8], NULL), cov = strtod(f[12], NULL);
        CHECK(cons >= 0);
        if (!strcmp(f[1], "w1")) {
            CHECK_NEAR(cons, want_w, 0.0015);
            CHECK_NEAR(strtod(f[6], NULL), wfirst, 0.0015);
            CHECK_NEAR(strtod(f[7], NULL), wlast, 0.0015);
            CHECK_NEAR(cov, want_wcov, 0.06);
            /* every interval inside: only the edges (< 1 s each) uncovered */
            CHECK(cov >= 100.0 * (double)(to_ms - from_ms - 2000) / (double)(to_ms - from_ms));
            /* flat price: 3.90 CNY per m3, rounded to cents */
            CHECK_NEAR(strtod(f[13], NULL), round(want_w * 3.90 * 100) / 100, 0.0101);
        } else if (!strcmp(f[1], "e1")) {
            CHECK_NEAR(cons, want_e, 0.0015);
            CHECK_NEAR(strtod(f[7], NULL), elast * emult, 0.0015);
            CHECK_NEAR(strtod(f[16], NULL), emult, 0);
            CHECK_NEAR(cov, want_ecov, 0.06);
            CHECK_NEAR(strtod(f[9], NULL) + strtod(f[10], NULL) + strtod(f[11], NULL), cons,
                       0.003);
        }
    }
    CHECK_INT(rows, 2);
    free(out);
    free(eout);
}

/* `parkgw bill --format json`: the swap is one reset (a new segment at the
 * swap's sample, starting at the new counter), the wrap one wrap and no
 * reset. */
static void scenario_bill_json(void)
{
    char *out = NULL, *eout = NULL;
    char *json_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--from", from_s, "--to",
                         to_s, "--format", "json", NULL};
    CHECK_INT(h_run(json_argv, &out, &eout, 20000), 0);
    json_error_t jerr;
    json_t *root = out ? json_loads(out, 0, &jerr) : NULL;
    CHECK(root != NULL);
    json_t *jrows = json_object_get(root, "rows");
    size_t seen = 0;
    for (size_t i = 0; i < json_array_size(jrows); i++) {
        json_t *r = json_array_get(jrows, i);
        const char *meter = json_string_value(json_object_get(r, "meter"));
        if (meter && !strcmp(meter, "e1")) {
            seen++;
            CHECK_INT(json_integer_value(json_object_get(r, "reset_count")), 1);
            json_t *rs = json_array_get(json_object_get(r, "resets"), 0);
            CHECK_INT(json_integer_value(json_object_get(rs, "ts")), es.ts[edrop]);
            CHECK_NEAR(json_number_value(json_object_get(rs, "after")), eafter, 0.0015);
        } else if (meter && !strcmp(meter, "w1")) {
            seen++;
            CHECK_INT(json_integer_value(json_object_get(r, "wraps")), 1);
            CHECK_INT(json_integer_value(json_object_get(r, "reset_count")), 0);
        }
    }
    CHECK_INT(seen, 2);
    json_decref(root);
    free(out);
    free(eout);
}

/* The forms a person types: the table names the enterprise by its
 * registered name (with the id), --enterprise takes that name, --month
 * the whole local month holding the window, --to today; an unknown point
 * of query is answered with the meter's points. */
static void scenario_bill_for_people(void)
{
    char *out = NULL, *eout = NULL;
    char *table_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--from", from_s,
                          "--to", to_s, "--enterprise", "湘江制药有限公司", "--format", "table",
                          NULL};
    CHECK_INT(h_run(table_argv, &out, &eout, 20000), 0);
    CHECK_CONTAINS(out ? out : "", "\n湘江制药有限公司 (xiangjiang-pharma)\n");
    CHECK_CONTAINS(out ? out : "", "\nPark\n");
    free(out);
    free(eout);

    time_t t = (time_t)(from_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    char month[32], first[64];
    snprintf(month, sizeof month, "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
    snprintf(first, sizeof first, ",%s-01T00:00:00+08:00,", month);
    char *month_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--month", month,
                          "--format", "csv", NULL};
    out = eout = NULL;
    CHECK_INT(h_run(month_argv, &out, &eout, 20000), 0);
    CHECK_CONTAINS(out ? out : "", "xiangjiang-pharma,w1,water,m3");
    CHECK_CONTAINS(out ? out : "", first);
    free(out);
    free(eout);

    char *both_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--month", month,
                         "--from", "yesterday", NULL};
    out = eout = NULL;
    CHECK_INT(h_run(both_argv, &out, &eout, 20000), 1);
    CHECK_CONTAINS(eout ? eout : "", "--month is a whole period");
    free(out);
    free(eout);

    char *words_argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--from", from_s,
                          "--to", "tomorrow", "--format", "csv", NULL};
    out = eout = NULL;
    CHECK_INT(h_run(words_argv, &out, &eout, 20000), 0);
    CHECK_CONTAINS(out ? out : "", "xiangjiang-pharma,e1,electricity");
    free(out);
    free(eout);

    char *point_argv[] = {(char *)pk.parkgw, "query", "-c", pk.gw_cfg,
                          "xiangjiang-pharma/w1/flow", "--from", "yesterday", "--to", "tomorrow",
                          NULL};
    out = eout = NULL;
    CHECK_INT(h_run(point_argv, &out, &eout, 20000), 1);
    CHECK_CONTAINS(eout ? eout : "", "has no point 'flow'");
    CHECK_CONTAINS(eout ? eout : "", "\n  flow_m3h\n");
    CHECK_CONTAINS(eout ? eout : "", "\n  total_m3  (billing)\n");
    free(out);
    free(eout);
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    setup();
    scenario_ingest_through_wrap();
    if (!check_failed)
        scenario_meter_replacement();
    if (!check_failed && scenario_stored_series()) {
        scenario_bill_csv();
        scenario_bill_json();
        scenario_bill_for_people();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    config_free(cfg);
    return check_done();
}
