/*
 * it_outage.c - durable delivery through broker outages, against real
 * processes: mosquitto (with persistence, so a persistent session survives
 * its restart), parkgw-sim and `parkgw run` with summary_interval = 2 s.
 * A subscriber with a persistent session (QoS 1, subscribed before the
 * outage) must receive every durable seq without a gap and in order (after
 * dropping duplicates, as DESIGN.md allows) through (1) a broker outage of
 * several summary intervals, and (2) a broker outage during which parkgw is
 * killed with SIGKILL and restarted. Summary intervals must follow each
 * other without a hole, the payloads must have DESIGN.md's shape, and the
 * consumption must match what the simulator's counters did in each interval.
 * An outage lasts until the gateway has queued the summaries it is about
 * (rows in its outbox table), not a fixed time.
 */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "storage/outbox.h"
#include "tests/integration/harness.h"
#include "tools/sim/sim_model.h"

#define SEED 4242
#define IV_MS 2000

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itgw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itgw\";\n"
        "         topic_prefix = \"park\"; summary_interval = 2; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; "
        "timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"rmu-1\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1; } ); },\n"
        "  { id = \"hongfei-casting\"; name = \"长沙虹飞机床铸造有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 40.0; },\n"
        "    { id = \"g1\"; utility = \"gas\"; bus = \"rmu-1\"; unit_id = 21;\n"
        "      profile = \"generic-gas\"; interval = 2; } ); }\n"
        ");\n",
        dir, mqtt_port, sim_port);
}

/* A durable message as the subscriber got it. */
struct dmsg {
    char *topic;
    json_t *j;
    int64_t seq;
};

/* The durable messages (payload with an integer "seq") received so far, in
 * arrival order. */
static size_t collect(struct h_sub *sub, struct dmsg **ret)
{
    size_t n = h_sub_count(sub), k = 0;
    struct dmsg *v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        struct h_msg m;
        if (!h_sub_get(sub, i, &m))
            break;
        json_t *j = json_loads(m.payload, 0, NULL);
        json_t *seq = j ? json_object_get(j, "seq") : NULL;
        if (json_is_integer(seq)) {
            v[k].topic = m.topic;
            m.topic = NULL;
            v[k].j = j;
            v[k].seq = json_integer_value(seq);
            k++;
        } else {
            json_decref(j);
        }
        h_msg_free(&m);
    }
    *ret = v;
    return k;
}

static void free_dmsgs(struct dmsg *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].topic);
        json_decref(v[i].j);
    }
    free(v);
}

/* Waits until a park summary with from >= want_from arrived. */
static bool wait_summary_from(struct h_sub *sub, int64_t want_from, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    size_t from = 0;
    while (now_mono_ms() < end) {
        long i = h_sub_wait(sub, from, "park/itgw/summary", NULL, 200);
        if (i < 0)
            continue;
        struct h_msg m;
        h_sub_get(sub, (size_t)i, &m);
        json_t *j = json_loads(m.payload, 0, NULL);
        int64_t f = j ? json_integer_value(json_object_get(j, "from")) : 0;
        json_decref(j);
        h_msg_free(&m);
        if (f >= want_from)
            return true;
        from = (size_t)i + 1;
    }
    return false;
}

/* Counter of meter m's billing point at Unix second t, as the gateway
 * decodes it. */
static double counter_at(const struct config *cfg, const struct cfg_meter *m, int64_t t)
{
    int bp = profile_billing_point(&cfg->profiles[m->profile]);
    return sim_expected_decoded(SEED, cfg, m, (size_t)bp, t, NULL);
}

static const char *util_key(enum utility u)
{
    return u == UTIL_ELECTRICITY ? "kwh" : u == UTIL_GAS ? "nm3" : "m3";
}

/*
 * Checks one enterprise summary against the simulator: per utility, the sum
 * over the enterprise's meters of counter(to) - counter(from), within one
 * poll's worth of consumption at each edge plus float32 steps. Returns the
 * number of mismatches.
 */
static int check_consumption(const struct config *cfg, const struct cfg_enterprise *ent,
                             json_t *j, int64_t from, int64_t to)
{
    double want[UTIL__COUNT] = {0}, tol[UTIL__COUNT] = {0};
    bool present[UTIL__COUNT] = {false};
    int bad = 0;
    for (size_t i = 0; i < ent->n_meters; i++) {
        const struct cfg_meter *m = &ent->meters[i];
        int64_t f = from / 1000, t = to / 1000, p = m->interval;
        double cf = counter_at(cfg, m, f), ct = counter_at(cfg, m, t);
        present[m->utility] = true;
        want[m->utility] += ct - cf;
        /* One poll's worth at each edge, and two float32 steps of the
         * counter's magnitude. */
        tol[m->utility] += fabs(counter_at(cfg, m, t + p) - ct) +
                           fabs(counter_at(cfg, m, f + p) - cf) +
                           4.0 * fabs(ct) * 1.2e-7 + 1e-6;
    }
    for (int u = 0; u < UTIL__COUNT; u++) {
        json_t *o = json_object_get(j, utility_name((enum utility)u));
        if (!present[u]) {
            CHECK(o == NULL);
            continue;
        }
        CHECK(json_is_object(o));
        json_t *v = json_object_get(o, util_key((enum utility)u));
        CHECK(json_is_number(v));
        if (!json_is_number(v)) {
            bad++;
            continue;
        }
        double got = json_number_value(v);
        if (fabs(got - want[u]) > tol[u]) {
            fprintf(stderr, "%s %s [%lld, %lld): summary %.6f, simulator %.6f (tolerance %.6f)\n",
                    ent->id, utility_name((enum utility)u), (long long)from, (long long)to, got,
                    want[u], tol[u]);
            bad++;
        }
    }
    json_t *el = json_object_get(j, "electricity");
    if (el) {
        double kwh = json_number_value(json_object_get(el, "kwh"));
        double avg = json_number_value(json_object_get(el, "kw_avg"));
        double max = json_number_value(json_object_get(el, "kw_max"));
        CHECK(json_is_number(json_object_get(el, "kw_avg")));
        CHECK(max >= avg - 1e-9);
        /* The gauge's mean over the interval and the energy describe the
         * same load: avg x hours within 25% of the kWh (the sim's gauges
         * carry noise), plus the counter's tolerance above (a float32
         * counter x PT x CT moves in steps of about 2 kWh here). */
        double hours = (double)(to - from) / 3600000.0;
        if (fabs(avg * hours - kwh) > 0.25 * kwh + tol[UTIL_ELECTRICITY]) {
            fprintf(stderr, "%s [%lld, %lld): kw_avg %.3f x %.6f h vs %.3f kWh\n", ent->id,
                    (long long)from, (long long)to, avg, hours, kwh);
            bad++;
        }
    }
    return bad;
}

/*
 * The whole stream: drop duplicates (seq not above the last kept), then
 * every kept seq must be the previous + 1 from the first kept one on; park
 * summaries must follow each other interval by interval; every enterprise
 * and park summary is checked. Returns the highest seq.
 */
static int64_t check_stream(const struct config *cfg, struct h_sub *sub, int64_t *ret_first)
{
    struct dmsg *v;
    size_t n = collect(sub, &v);
    int64_t last = 0, first = 0, last_park_from = 0;
    size_t kept = 0, dups = 0, gaps = 0, park = 0, holes = 0;
    int mismatches = 0;

    for (size_t i = 0; i < n; i++) {
        if (last && v[i].seq <= last) {
            dups++;
            continue;
        }
        if (last && v[i].seq != last + 1) {
            fprintf(stderr, "seq gap: %lld after %lld\n", (long long)v[i].seq, (long long)last);
            gaps++;
        }
        if (!first)
            first = v[i].seq;
        last = v[i].seq;
        kept++;
        json_t *j = v[i].j;
        int64_t from = json_integer_value(json_object_get(j, "from"));
        int64_t to = json_integer_value(json_object_get(j, "to"));
        if (strcmp(v[i].topic, "park/itgw/summary") == 0) {
            park++;
            CHECK_INT(to - from, IV_MS);
            CHECK_INT(json_integer_value(json_object_get(j, "enterprises")), 2);
            json_t *ok = json_object_get(j, "meters_ok"), *down = json_object_get(j, "meters_down");
            CHECK(json_is_integer(ok) && json_is_integer(down));
            CHECK_INT(json_integer_value(ok) + json_integer_value(down), 4);
            CHECK(json_is_object(json_object_get(j, "electricity")));
            CHECK(json_is_object(json_object_get(j, "water")));
            CHECK(json_is_object(json_object_get(j, "gas")));
            CHECK(json_object_get(j, "wastewater") == NULL);
            if (last_park_from && from != last_park_from + IV_MS) {
                fprintf(stderr, "park summary interval hole: from %lld after %lld\n",
                        (long long)from, (long long)last_park_from);
                holes++;
            }
            last_park_from = from;
            continue;
        }
        for (size_t e = 0; e < cfg->n_enterprises; e++) {
            const struct cfg_enterprise *ent = &cfg->enterprises[e];
            char *topic = xasprintf("park/itgw/%s/summary", ent->id);
            if (strcmp(v[i].topic, topic) == 0) {
                CHECK_INT(to - from, IV_MS);
                CHECK(json_object_get(j, "enterprises") == NULL);
                mismatches += check_consumption(cfg, ent, j, from, to);
            }
            free(topic);
        }
    }
    fprintf(stderr, "it_outage: %zu durable messages received, %zu kept (seq %lld..%lld), "
                    "%zu duplicates dropped, %zu park summaries\n",
            n, kept, (long long)first, (long long)last, dups, park);
    CHECK_INT(gaps, 0);
    CHECK_INT(holes, 0);
    CHECK_INT(mismatches, 0);
    CHECK(park >= 6);
    free_dmsgs(v, n);
    *ret_first = first;
    return last;
}

static struct h_park pk;
static struct config *cfg;
static struct h_sub *sub;
static char *db;

/* Park summaries waiting in the outbox (not acknowledged by the broker)
 * whose interval starts at or after from_ms. */
static bool wait_queued_summaries(int64_t from_ms, int64_t n, int timeout_ms)
{
    char *sql = xasprintf("SELECT count(*) FROM outbox WHERE topic = 'park/itgw/summary' "
                          "AND json_extract(payload, '$.from') >= %lld",
                          (long long)from_ms);
    bool ok = h_wait_rows(db, sql, n, timeout_ms);
    if (!ok)
        fprintf(stderr, "fewer than %lld park summaries from %lld queued in %d ms\n",
                (long long)n, (long long)from_ms, timeout_ms);
    free(sql);
    return ok;
}

/* The start of the latest park summary in the outbox, or -1. */
static int64_t last_queued_from(void)
{
    return h_db_int(db, "SELECT max(json_extract(payload, '$.from')) FROM outbox "
                        "WHERE topic = 'park/itgw/summary'");
}

/* The subscriber's persistent session exists before anything is
 * published; parkgw runs until its first park summary arrives (the first
 * whole interval after the start plus the 2.5 s grace). */
static bool setup(void)
{
    h_park_start(&pk, "it_outage", make_config, SEED);
    char err[512];
    if (config_load(pk.gw_cfg, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "config: %s\n", err);
        exit(2);
    }
    db = xasprintf("%s/parkgw.db", pk.dir);
    sub = h_sub_new_persistent(pk.mport, "it-outage-billing", "park/itgw/#");
    h_park_run(&pk, true);
    long idx = h_sub_wait(sub, 0, "park/itgw/summary", NULL, 15000);
    CHECK(idx >= 0);
    return idx >= 0;
}

/* A broker outage of three summary intervals (until three park summaries
 * wait in the outbox): every interval closed during the outage, and one
 * after, arrives once the broker is back. */
static void scenario_broker_outage(void)
{
    CHECK(h_stop(&pk.mosq, SIGTERM, 5000) >= 0);
    int64_t down_at = now_real_ms();
    CHECK(wait_queued_summaries(down_at / IV_MS * IV_MS, 3, 20000));
    int64_t last = last_queued_from();
    h_restart_mosquitto(&pk.mosq, pk.dir, pk.mport);
    CHECK(wait_summary_from(sub, last + IV_MS, 40000));
}

/* The broker goes away; once a summary is queued parkgw is killed
 * (SIGKILL), stays dead across an interval boundary and is restarted while
 * the broker is still down; once the restarted parkgw queued a summary of
 * its own the broker comes back: everything queued before and after the
 * kill arrives (the stream check follows). */
static void scenario_kill_during_outage(void)
{
    CHECK(h_stop(&pk.mosq, SIGTERM, 5000) >= 0);
    int64_t down_at = now_real_ms();
    CHECK(wait_queued_summaries(down_at / IV_MS * IV_MS, 1, 15000));
    CHECK(h_stop(&pk.gw, SIGKILL, 5000) >= 0);
    int64_t next_iv = (now_real_ms() / IV_MS + 1) * IV_MS;
    while (now_real_ms() < next_iv + 100)
        sleep_ms(20);
    h_park_run(&pk, true);
    CHECK(wait_queued_summaries(next_iv, 1, 15000));
    int64_t last = last_queued_from();
    h_restart_mosquitto(&pk.mosq, pk.dir, pk.mport);
    bool ok = wait_summary_from(sub, last + IV_MS, 45000);
    CHECK(ok);
    if (!ok)
        h_dump_log(&pk.mosq, "mosquitto");
}

/* The whole stream (see check_stream), then a clean stop: whatever the
 * outbox still holds was not acknowledged, so lies above the last seq
 * received (summaries closed at shutdown); nothing was dropped. */
static void scenario_stream_and_outbox(void)
{
    int64_t first = 0;
    int64_t last = check_stream(cfg, sub, &first);
    CHECK(first > 0);
    CHECK(h_park_stop_gw(&pk));
    struct outbox *ob = NULL;
    char err[512];
    CHECK_INT(outbox_open(db, &ob, err, sizeof(err)), 0);
    if (ob) {
        struct outbox_msg *rows = NULL;
        size_t n = 0;
        CHECK_INT(outbox_fetch(ob, 0, 1, &rows, &n), 0);
        if (n && rows[0].seq <= last)
            fprintf(stderr, "outbox still holds seq %lld (%s), last received %lld\n",
                    (long long)rows[0].seq, rows[0].topic, (long long)last);
        if (n)
            CHECK(rows[0].seq > last);
        outbox_msgs_free(rows, n);
        struct outbox_stats st;
        CHECK_INT(outbox_stats(ob, &st), 0);
        CHECK_INT(st.dropped, 0);
        CHECK(st.last_seq >= last);
        outbox_free(ob);
    }
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    if (setup()) {
        scenario_broker_outage();
        scenario_kill_during_outage();
        scenario_stream_and_outbox();
    }
    h_sub_free(sub);
    h_park_free(&pk, check_failed);
    config_free(cfg);
    free(db);
    return check_done();
}
