/*
 * it_mqtt_acl.c - a broker that refuses the gateway's durable messages
 * (issue 14): mosquitto with an ACL that lets the gateway write its status,
 * live and state topics but not its summaries and events. With MQTT 5 the
 * broker answers each refused PUBLISH with PUBACK reason code 0x87 (not
 * authorized); the gateway keeps every outbox row, logs the refusal once for
 * the topic, counts it (`parkgw status`) and retries with backoff. After the
 * broker is restarted on the same port with an ACL that allows the topics,
 * every durable message arrives, from seq 1 up, none missing. Each step
 * waits on a log line, a status output or the messages, with a deadline.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 99

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itacl\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-itacl\";\n"
        "         summary_interval = 1; };\n"
        "buses = ( { name = \"line\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d;\n"
        "            timeout_ms = 500; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "enterprises = ( { id = \"ent0\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"line\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; } ); } );\n",
        dir, mqtt_port, sim_port);
}

/* The "seq" of a durable payload, or -1. */
static long long payload_seq(const char *payload)
{
    long long seq;
    return payload && sscanf(payload, "{\"seq\":%lld", &seq) == 1 ? seq : -1;
}

static char *dir, *acl, *listener, *gw_cfg, *db;
static struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
static int mport;

/* mosquitto with an ACL letting anonymous clients read everything and the
 * gateway write only its status, live and state topics (log_type all: it
 * logs each denial, "Denied PUBLISH"); the sim; `parkgw run -v`. */
static void setup(void)
{
    dir = h_park_dir("it_mqtt_acl");
    acl = xasprintf("%s/acl", dir);
    h_write_file(acl, "topic read #\n"
                      "topic write park/itacl/status\n"
                      "topic write park/itacl/+/+/+/live\n"
                      "topic write park/itacl/+/+/+/state\n");
    listener = xasprintf("allow_anonymous true\nacl_file %s\nlog_type all", acl);
    mport = h_start_mosquitto_conf(&mosq, dir, listener);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir);
    gw_cfg = xasprintf("%s/gw.cfg", dir);
    char *text = make_config(dir, mport, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    text = make_config(dir, mport, sport);
    h_write_file(gw_cfg, text);
    free(text);
    free(sim_cfg);
    db = xasprintf("%s/parkgw.db", dir);
    char *gw_log = xasprintf("%s/parkgw.log", dir);
    char *run_argv[] = {(char *)h_env("PARKGW_BIN", "parkgw"), "run", "-c", gw_cfg, "-v", NULL};
    h_spawn(&gw, run_argv, gw_log, false);
    free(gw_log);
}

/* Refused with PUBACK 0x87: logged once per topic (the enterprise's
 * summary and the park's; the first two messages were in flight together),
 * retried (debug lines) with backoff; the broker logged the denials; no
 * outbox row deleted: it holds every seq assigned so far, from 1. */
static void scenario_refused_and_kept(void)
{
    CHECK(h_wait_log(&gw, "(MQTT 5)", 1, 15000));
    CHECK(h_wait_log(&gw, "outbox: the broker refused the message on park/itacl/", 1, 15000));
    CHECK(h_wait_log(&gw, "refused again: Not authorized (0x87)", 3, 20000));
    CHECK_INT(h_log_count(&gw, "refused the message on park/itacl/ent0/summary ("), 1);
    CHECK(h_log_count(&gw, "refused the message on park/itacl/summary (") <= 1);
    CHECK_INT(h_log_count(&gw, "outbox: the broker refused the message on"),
              h_log_count(&gw, "(MQTT 5 reason code 0x87)"));
    CHECK(h_log_count(&mosq, "Denied PUBLISH from parkgw-itacl") >= 4);

    int64_t rows = h_db_int(db, "SELECT count(*) FROM outbox");
    int64_t lo = h_db_int(db, "SELECT min(seq) FROM outbox");
    int64_t hi = h_db_int(db, "SELECT max(seq) FROM outbox");
    printf("outbox while refused: %lld rows, seq %lld..%lld\n", (long long)rows, (long long)lo,
           (long long)hi);
    CHECK(rows >= 3);
    CHECK_INT(lo, 1);
    CHECK_INT(rows, hi - lo + 1);
}

/* `parkgw status` output (the last one asked, caller frees). */
static bool status_counts_refusals(void *ud)
{
    char **out = ud;
    char *status_argv[] = {(char *)h_env("PARKGW_BIN", "parkgw"), "status", "-c", gw_cfg, NULL};
    free(*out);
    *out = NULL;
    h_run(status_argv, out, NULL, 10000);
    return *out && strstr(*out, "(MQTT 5)") && !strstr(*out, " 0 refused by the broker") &&
           strstr(*out, "refused by the broker");
}

/* `parkgw status` counts the refusals (its counters file is rewritten
 * every 5 s). */
static void scenario_status_counts_refusals(void)
{
    char *out = NULL;
    bool seen = h_wait_until(status_counts_refusals, &out, 15000);
    CHECK(seen);
    if (!seen)
        printf("status:\n%s\n", out ? out : "(none)");
    free(out);
}

/* Durable messages seen in order from seq 1 (resends dropped). */
struct seq_scan {
    struct h_sub *sub;
    size_t idx;
    long long next;
    bool gap;
};

/* Scans the messages that arrived since the last call. */
static void seq_scan_step(struct seq_scan *sc)
{
    struct h_msg m;
    while (h_sub_get(sc->sub, sc->idx, &m)) {
        sc->idx++;
        long long seq = strstr(m.topic, "summary") || strstr(m.topic, "events")
                            ? payload_seq(m.payload)
                            : -1;
        if (seq == sc->next)
            sc->next++;
        else if (seq > sc->next)
            sc->gap = true;
        /* seq < next: a resend of one already seen */
        h_msg_free(&m);
    }
}

/* The ACL now allows the gateway's topics: mosquitto restarted on the same
 * port; a subscriber sees every durable message from seq 1 up to the
 * outbox's last before the restart, none missing; the gateway logs that
 * the broker accepts them again. */
static void scenario_allowed_all_arrive(void)
{
    long long want = (long long)h_db_int(db, "SELECT max(seq) FROM outbox");
    h_write_file(acl, "topic read #\ntopic write park/itacl/#\n");
    h_stop(&mosq, SIGTERM, 5000);
    h_restart_mosquitto_conf(&mosq, dir, mport, listener);
    struct seq_scan sc = {.sub = h_sub_new(mport, "itacl-sub", "park/itacl/#"), .next = 1};
    int64_t end = now_mono_ms() + 30000;
    while (sc.next <= want && now_mono_ms() < end) {
        seq_scan_step(&sc);
        sleep_ms(50);
    }
    printf("after the ACL allowed it: seq 1..%lld expected, next missing %lld\n", want, sc.next);
    CHECK(sc.next > want);
    CHECK(!sc.gap);
    CHECK(h_wait_log(&gw, "outbox: the broker accepts messages on park/itacl/", 1, 10000));
    h_sub_free(sc.sub);
}

int main(void)
{
    setup();
    scenario_refused_and_kept();
    scenario_status_counts_refusals();
    scenario_allowed_all_arrive();
    if (check_failed) {
        h_dump_log(&gw, "parkgw");
        h_dump_log(&mosq, "mosquitto");
    }
    h_stop(&gw, SIGTERM, 10000);
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    free(listener);
    free(acl);
    free(db);
    free(gw_cfg);
    free(dir);
    return check_done();
}
