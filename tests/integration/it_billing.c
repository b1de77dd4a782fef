/*
 * it_billing.c - billing end to end: `parkgw run` polls parkgw-sim (one
 * electricity meter, one water meter with a uint32 x 0.001 register, 1 s
 * intervals) while the test forces the water register through its wrap and
 * replaces the electricity meter (sim `offset` commands); then `parkgw bill`
 * for the whole ingest window must give the model's consumption: the
 * counter values at the first and last sample, the wrap added back, the
 * replacement as a new segment (nothing negative, nothing across the swap).
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
        "enterprises = ( { id = \"xiangjiang-pharma\"; meters = (\n"
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

/* The model's value for a stored sample: the poll is stamped when it
 * starts, the sim may answer in the next second. Returns whether the stored
 * value is one of the two (then *ret is it). */
static bool model_value(const struct config *cfg, const struct cfg_meter *m, size_t pi,
                        int64_t ts, double offset, double stored, double *ret)
{
    struct sim_meter_state st = {.counter_offset = offset};
    for (int64_t dt = 0; dt <= 1; dt++) {
        double want = sim_expected_decoded(SEED, cfg, m, pi, ts / 1000 + dt, &st);
        if (fabs(want - stored) <= 1e-9 * fmax(1.0, fabs(want))) {
            *ret = want;
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

int main(void)
{
    char *dir = h_park_dir("it_billing");
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();

    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
    int mport = h_start_mosquitto(&mosq, dir);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir), *gw_cfg = xasprintf("%s/gw.cfg", dir);
    char *text = make_config(dir, mport, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    text = make_config(dir, mport, sport);
    h_write_file(gw_cfg, text);
    free(text);

    struct config *cfg;
    char err[512];
    if (config_load(gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    const struct cfg_meter *e1 = config_find_meter(cfg, "xiangjiang-pharma/e1");
    const struct cfg_meter *w1 = config_find_meter(cfg, "xiangjiang-pharma/w1");
    size_t epi = (size_t)profile_billing_point(&cfg->profiles[e1->profile]);
    size_t wpi = (size_t)profile_billing_point(&cfg->profiles[w1->profile]);
    const struct cfg_point *wpt = &cfg->profiles[w1->profile].points[wpi];
    double wmod = bill_wrap_modulus(wpt, w1);
    /* uint32 x 0.001 m3: the register wraps at 2^32 x 0.001 = 4294967.296 m3 */
    CHECK_NEAR(wmod, 4294967.296, 1e-6);

    /* Forced wrap: before the gateway starts, put the water counter about
     * 12 s of flow below 2^32 x 0.001 m3, so it wraps while we watch (the
     * offset holds for every sample: no jump). */
    int64_t now_s = now_real_ms() / 1000;
    double wv = sim_value(SEED, cfg, w1, wpi, now_s, NULL);
    double wrate = sim_main_rate(SEED, cfg, w1, now_s) / 3600.0; /* m3/s */
    /* sent with 3 decimals: the model must use the value the sim parses */
    double w_off = round((wmod - wv - 12.0 * wrate) * 1000.0) / 1000.0;
    CHECK(h_sim_command(&sim, "offset xiangjiang-pharma/w1 %.3f", w_off));

    struct h_sub *sub = h_sub_new(mport, "it-billing-events", "park/itbill/events");
    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *gw_log = xasprintf("%s/parkgw.log", dir);
    char *run_argv[] = {(char *)parkgw, "run", "-c", gw_cfg, "-v", NULL};
    h_spawn(&gw, run_argv, gw_log, false);
    if (!h_wait_log(&gw, "storage: committed", 3, 15000)) {
        CHECK(!"parkgw commits samples");
        h_dump_log(&gw, "parkgw");
        return 1;
    }

    sleep_ms(14000);

    /* Meter replacement: the electricity counter restarts near 50 kWh. */
    now_s = now_real_ms() / 1000;
    double ev = sim_value(SEED, cfg, e1, epi, now_s, NULL);
    double e_off = round((50.0 - ev) * 1000.0) / 1000.0;
    CHECK(h_sim_command(&sim, "offset xiangjiang-pharma/e1 %.3f", e_off));
    sleep_ms(10000);
    /* The replacement is announced on P/events (durable, so it arrives
     * once the writer committed it); the wrap is not a reset. */
    long ri = h_sub_wait(sub, 0, "park/itbill/events", "\"counter_reset\"", 10000);
    CHECK(ri >= 0);
    if (ri >= 0) {
        struct h_msg m;
        h_sub_get(sub, (size_t)ri, &m);
        CHECK_CONTAINS(m.payload, "\"meter\":\"e1\"");
        CHECK_CONTAINS(m.payload, "\"point\":\"energy_import_kwh\"");
        CHECK_CONTAINS(m.payload, "\"seq\":");
        h_msg_free(&m);
    }
    CHECK(h_sub_wait(sub, 0, "park/itbill/events", "\"meter\":\"w1\"", 1) < 0);
    h_sub_free(sub);
    int status = h_stop(&gw, SIGTERM, 15000);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* What was stored, checked against the model. */
    struct store *st = NULL;
    struct series es = {0}, ws = {0};
    uint32_t eid = 0, wid = 0;
    CHECK_INT(store_open(cfg->storage_path, true, &st, err, sizeof(err)), 0);
    if (!st)
        return 1;
    CHECK_INT(store_find_point(st, "xiangjiang-pharma", "e1", "energy_import_kwh", &eid), 0);
    CHECK_INT(store_find_point(st, "xiangjiang-pharma", "w1", wpt->name, &wid), 0);
    store_scan(st, eid, 0, INT64_MAX, collect, &es);
    store_scan(st, wid, 0, INT64_MAX, collect, &ws);
    store_close(st);
    CHECK(es.n >= 20 && ws.n >= 20);
    if (es.n < 20 || ws.n < 20)
        return check_done();

    /* Water: exactly one drop (the wrap); electricity one (the swap). The
     * stored values are the model's (offset w_off on every water sample). */
    size_t wdrops = 0, edrop = 0, edrops = 0;
    for (size_t i = 1; i < ws.n; i++)
        wdrops += ws.v[i] < ws.v[i - 1];
    for (size_t i = 1; i < es.n; i++)
        if (es.v[i] < es.v[i - 1]) {
            edrops++;
            edrop = i;
        }
    CHECK_INT(wdrops, 1);
    CHECK_INT(edrops, 1);
    double wfirst, wlast, efirst, ebefore, eafter, elast;
    CHECK(model_value(cfg, w1, wpi, ws.ts[0], w_off, ws.v[0], &wfirst));
    CHECK(model_value(cfg, w1, wpi, ws.ts[ws.n - 1], w_off, ws.v[ws.n - 1], &wlast));
    CHECK(model_value(cfg, e1, epi, es.ts[0], 0, es.v[0], &efirst));
    CHECK(model_value(cfg, e1, epi, es.ts[edrop - 1], 0, es.v[edrop - 1], &ebefore));
    CHECK(model_value(cfg, e1, epi, es.ts[edrop], e_off, es.v[edrop], &eafter));
    CHECK(model_value(cfg, e1, epi, es.ts[es.n - 1], e_off, es.v[es.n - 1], &elast));

    /* Bill the whole ingest window: from the first sample's second to the
     * second after the last sample. Nothing lies outside, so:
     *   water = last - first + 4294967.296 (the wrap added back);
     *   electricity = (before the swap - first) + (last - first after it);
     * coverage: water every 1 s interval is covered, (last - first) / (to -
     * from); electricity loses the swap interval. */
    int64_t t_first = es.ts[0] < ws.ts[0] ? es.ts[0] : ws.ts[0];
    int64_t t_last = es.ts[es.n - 1] > ws.ts[ws.n - 1] ? es.ts[es.n - 1] : ws.ts[ws.n - 1];
    int64_t from = t_first / 1000 * 1000, to = t_last / 1000 * 1000 + 1000;
    char from_s[64], to_s[64];
    time_t fs = (time_t)(from / 1000), ts_ = (time_t)(to / 1000);
    struct tm tm;
    localtime_r(&fs, &tm);
    strftime(from_s, sizeof(from_s), "%Y-%m-%dT%H:%M:%S", &tm);
    localtime_r(&ts_, &tm);
    strftime(to_s, sizeof(to_s), "%Y-%m-%dT%H:%M:%S", &tm);

    double want_w = wlast - wfirst + wmod;
    double want_e = (ebefore - efirst) + (elast - eafter);
    double want_wcov = (double)(ws.ts[ws.n - 1] - ws.ts[0]) * 100.0 / (double)(to - from);
    double want_ecov = (double)(es.ts[es.n - 1] - es.ts[0] - (es.ts[edrop] - es.ts[edrop - 1])) *
                       100.0 / (double)(to - from);
    printf("window %s .. %s: water %.3f m3 (wrap), electricity %.3f kWh (swap at %lld)\n", from_s,
           to_s, want_w, want_e, (long long)es.ts[edrop]);

    char *out = NULL, *eout = NULL;
    char *bill_argv[] = {(char *)parkgw, "bill", "-c", gw_cfg, "--from", from_s, "--to", to_s,
                         "--format", "csv", NULL};
    CHECK_INT(h_run(bill_argv, &out, &eout, 20000), 0);
    printf("%s", out ? out : "");
    int rows = 0;
    for (char *save = NULL, *line = strtok_r(out ? out : (char *)"", "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[16];
        int nf = csv_fields(line, f, 16);
        if (nf != 15 || strcmp(f[0], "xiangjiang-pharma") != 0)
            continue;
        rows++;
        double cons = strtod(f[8], NULL), cov = strtod(f[12], NULL);
        CHECK(cons >= 0);
        if (!strcmp(f[1], "w1")) {
            CHECK_NEAR(cons, want_w, 0.0015);
            CHECK_NEAR(strtod(f[6], NULL), wfirst, 0.0015);
            CHECK_NEAR(strtod(f[7], NULL), wlast, 0.0015);
            CHECK_NEAR(cov, want_wcov, 0.06);
            CHECK(cov > 90.0);
            /* flat price: 3.90 CNY per m3, rounded to cents */
            CHECK_NEAR(strtod(f[13], NULL), round(want_w * 3.90 * 100) / 100, 0.0101);
        } else if (!strcmp(f[1], "e1")) {
            CHECK_NEAR(cons, want_e, 0.0015);
            CHECK_NEAR(strtod(f[7], NULL), elast, 0.0015);
            CHECK_NEAR(cov, want_ecov, 0.06);
            /* the bands split the whole consumption */
            CHECK_NEAR(strtod(f[9], NULL) + strtod(f[10], NULL) + strtod(f[11], NULL), cons,
                       0.003);
        }
    }
    CHECK_INT(rows, 2);
    free(out);
    free(eout);

    /* JSON: the swap is one reset (a new segment), the wrap one wrap. */
    char *json_argv[] = {(char *)parkgw, "bill", "-c", gw_cfg, "--from", from_s, "--to", to_s,
                         "--format", "json", NULL};
    CHECK_INT(h_run(json_argv, &out, &eout, 20000), 0);
    json_error_t jerr;
    json_t *root = out ? json_loads(out, 0, &jerr) : NULL;
    CHECK(root != NULL);
    json_t *jrows = json_object_get(root, "rows");
    for (size_t i = 0; i < json_array_size(jrows); i++) {
        json_t *r = json_array_get(jrows, i);
        const char *meter = json_string_value(json_object_get(r, "meter"));
        if (meter && !strcmp(meter, "e1")) {
            CHECK_INT(json_integer_value(json_object_get(r, "reset_count")), 1);
            json_t *rs = json_array_get(json_object_get(r, "resets"), 0);
            CHECK_INT(json_integer_value(json_object_get(rs, "ts")), es.ts[edrop]);
            CHECK_NEAR(json_number_value(json_object_get(rs, "after")), eafter, 0.0015);
        } else if (meter && !strcmp(meter, "w1")) {
            CHECK_INT(json_integer_value(json_object_get(r, "wraps")), 1);
            CHECK_INT(json_integer_value(json_object_get(r, "reset_count")), 0);
        }
    }
    json_decref(root);
    free(out);
    free(eout);

    if (check_failed) {
        h_dump_log(&gw, "parkgw");
        h_dump_log(&sim, "parkgw-sim");
    }
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    config_free(cfg);
    free(gw_log);
    free(gw_cfg);
    free(sim_cfg);
    free(dir);
    return check_done();
}
