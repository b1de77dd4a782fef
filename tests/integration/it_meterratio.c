/*
 * it_meterratio.c - a CT ratio change through the daemon: parkgw-sim's
 * 10 kV meter keeps counting while the gateway's config goes from CT 400 to
 * CT 800 and SIGHUP reloads it. The reload logs the change at warning,
 * publishes a meter_changed event on P/events and records it in the meter
 * history at its instant T; the stored billing samples are dial readings
 * throughout. `parkgw bill` over the run must then equal the dial deltas x
 * each segment's multiplier: (dial(T) - dial(from)) x 40000 + (dial(to) -
 * dial(T)) x 80000, dial(T) interpolated between the samples around T, and
 * list the two segments. A few seconds of a 10 kV meter (at most 2000 kW:
 * 0.05 kWh/h on the dial at the sim's PT 100 x CT 400) are about the
 * float32 register's resolution (0.000061 at a dial of about 650), so the
 * sim's counter steps by 8 kWh (dial +0.0002) before the reload and again
 * after it: both segments move by at least that. The profile's max_rate
 * (1.25 kWh/h on the dial) allows 0.000347 a 1 s poll plus two register
 * steps (0.000122), so the step is no spike.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "storage/meterlog.h"
#include "storage/store.h"
#include "tests/integration/harness.h"

#define SEED 1313
#define ENT "tanjian-machinery"
#define T_EVENTS "park/itmr/events"

static double ct = 400.0;

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itmr\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itmr\"; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;"
        " timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "enterprises = ( { id = \"" ENT "\"; name = \"谭建机械\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "    profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0;"
        " ct_ratio = %.1f; } ); } );\n"
        "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; price = 1.0; } );\n",
        dir, mqtt_port, sim_port, ct);
}

struct series {
    int64_t ts[512];
    double v[512];
    size_t n;
};

static int collect(void *ud, int64_t ts, double v)
{
    struct series *s = ud;
    if (s->n < ARRAY_SIZE(s->ts)) {
        s->ts[s->n] = ts;
        s->v[s->n] = v;
        s->n++;
    }
    return 0;
}

/* The dial reading at t, interpolated between the samples around it. */
static double dial_at(const struct series *s, int64_t t)
{
    for (size_t i = 1; i < s->n; i++)
        if (s->ts[i] >= t) {
            double f = (double)(t - s->ts[i - 1]) / (double)(s->ts[i] - s->ts[i - 1]);
            return s->v[i - 1] + (s->v[i] - s->v[i - 1]) * f;
        }
    return NAN;
}

static struct h_park pk;
static struct h_sub *sub;

static bool wait_samples(int64_t after, int timeout_ms)
{
    /* 4 live values of e1 polled after 'after' */
    int64_t end = now_real_ms() + timeout_ms;
    size_t seen = 0;
    while (now_real_ms() < end) {
        seen = 0;
        for (size_t i = 0; i < h_sub_count(sub); i++) {
            struct h_msg m;
            if (!h_sub_get(sub, i, &m))
                continue;
            if (strstr(m.topic, "/e1/live")) {
                json_t *j = json_loads(m.payload, 0, NULL);
                seen += j && json_integer_value(json_object_get(j, "ts")) > after;
                json_decref(j);
            }
            h_msg_free(&m);
        }
        if (seen >= 4)
            return true;
        sleep_ms(50);
    }
    return false;
}

int main(void)
{
    h_park_start(&pk, "it_meterratio", make_config, SEED);
    sub = h_sub_new(pk.mport, "it-meterratio-sub", "park/itmr/#");
    h_park_run(&pk, false);
    CHECK(h_sub_wait(sub, 0, "park/itmr/status", "\"online\"", 10000) >= 0);
    CHECK(wait_samples(0, 10000));
    CHECK(h_sim_do(&pk.sim, "offset " ENT "/e1 8"));
    CHECK(wait_samples(now_real_ms(), 10000));

    /* CT 400 -> 800 by SIGHUP */
    ct = 800.0;
    char *text = make_config(pk.dir, pk.mport, pk.sport);
    h_write_file(pk.gw_cfg, text);
    free(text);
    int64_t before = now_real_ms();
    kill(pk.gw.pid, SIGHUP);
    CHECK(h_wait_log(&pk.gw,
                     "PT/CT ratio 100 x 400 (multiplier 40000) -> 100 x 800 (multiplier 80000)",
                     1, 5000));
    CHECK(h_sub_wait(sub, 0, T_EVENTS, "\"meter_changed\"", 5000) >= 0);
    CHECK(wait_samples(now_real_ms(), 10000));
    CHECK(h_sim_do(&pk.sim, "offset " ENT "/e1 16"));
    CHECK(wait_samples(now_real_ms(), 10000));
    /* a second reload of the same file records nothing */
    kill(pk.gw.pid, SIGHUP);
    CHECK(h_wait_log(&pk.gw, "configuration reloaded", 2, 5000));
    CHECK(h_park_stop_gw(&pk));
    CHECK_INT(h_log_count(&pk.gw, "PT/CT ratio 100 x 400"), 1);

    /* the history and the dial readings */
    struct store *st = NULL;
    char err[512], dbp[600];
    snprintf(dbp, sizeof(dbp), "%s/parkgw.db", pk.dir);
    CHECK_INT(store_open(dbp, true, &st, err, sizeof(err)), 0);
    struct series s = {0};
    struct meterlog_list h = {0};
    uint32_t id = 0;
    if (st) {
        CHECK_INT(store_find_point(st, ENT, "e1", "energy_import_kwh", &id), 0);
        CHECK_INT(store_scan(st, id, 0, INT64_MAX, collect, &s), 0);
        CHECK_INT(meterlog_read(store_db(st), ENT, "e1", &h), 0);
        store_close(st);
    }
    /* initial (CT 400 since ever, written at the first start), the reload's */
    CHECK_INT(h.n, 2);
    CHECK(s.n >= 8);
    if (h.n != 2 || s.n < 8 || check_failed) {
        meterlog_list_free(&h);
        h_sub_free(sub);
        h_park_free(&pk, true);
        return check_done();
    }
    int64_t T = h.v[1].ts;
    CHECK(T >= before && T <= now_real_ms());
    CHECK_NEAR(h.v[1].ct, 800, 0);
    int64_t from = s.ts[1], to = s.ts[s.n - 1];
    CHECK(from < T && T < to);
    double dT = dial_at(&s, T);
    double want = (dT - s.v[1]) * 40000 + (s.v[s.n - 1] - dT) * 80000;
    printf("dial %.6f at from, %.6f at the reload, %.6f at to: %.3f kWh\n", s.v[1], dT,
           s.v[s.n - 1], want);
    /* each segment rose by at least most of a step (0.0002, in float32 steps
     * of 0.000061) */
    CHECK(dT - s.v[1] > 0.00015 && s.v[s.n - 1] - dT > 0.00015);

    char from_s[32], to_s[32];
    snprintf(from_s, sizeof(from_s), "%lld", (long long)from);
    snprintf(to_s, sizeof(to_s), "%lld", (long long)to);
    char *out = NULL, *eout = NULL;
    char *argv[] = {(char *)pk.parkgw, "bill", "-c", pk.gw_cfg, "--from", from_s, "--to", to_s,
                    "--format", "json", NULL};
    CHECK_INT(h_run(argv, &out, &eout, 20000), 0);
    json_t *root = out ? json_loads(out, 0, NULL) : NULL;
    json_t *row = json_array_get(json_object_get(root, "rows"), 0);
    CHECK(row != NULL);
    /* JSON rounds to 3 decimals */
    CHECK_NEAR(json_number_value(json_object_get(row, "consumption")), want, 0.0015);
    CHECK_NEAR(json_number_value(json_object_get(row, "multiplier")), 80000, 0);
    json_t *segs = json_object_get(row, "segments");
    CHECK_INT(json_array_size(segs), 2);
    json_t *s0 = json_array_get(segs, 0), *s1 = json_array_get(segs, 1);
    CHECK_NEAR(json_number_value(json_object_get(s0, "multiplier")), 40000, 0);
    CHECK_NEAR(json_number_value(json_object_get(s1, "multiplier")), 80000, 0);
    CHECK_NEAR(json_number_value(json_object_get(s0, "start_dial")), s.v[1], 0.0005);
    CHECK_NEAR(json_number_value(json_object_get(s0, "end_dial")), dT, 0.0005);
    CHECK_NEAR(json_number_value(json_object_get(s1, "end_dial")), s.v[s.n - 1], 0.0005);
    CHECK_NEAR(json_number_value(json_object_get(s0, "consumption")), (dT - s.v[1]) * 40000,
               0.0015);
    const char *cause = json_string_value(json_object_get(s1, "cause"));
    CHECK(cause && !strcmp(cause, "ratio"));
    /* end - start: the start at CT 400, the end at CT 800 */
    CHECK_NEAR(json_number_value(json_object_get(row, "start_reading")), s.v[1] * 40000, 0.0015);
    CHECK_NEAR(json_number_value(json_object_get(row, "end_reading")), s.v[s.n - 1] * 80000,
               0.0015);
    json_decref(root);
    free(out);
    free(eout);
    meterlog_list_free(&h);
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    return check_done();
}
