/*
 * it_mqtt_acl.c - a broker that refuses the gateway's durable messages
 * (issue 14): mosquitto with an ACL that lets the gateway write its status,
 * live and state topics but not its summaries and events. With MQTT 5 the
 * broker answers each refused PUBLISH with PUBACK reason code 0x87 (not
 * authorized); the gateway keeps every outbox row, logs the refusal once for
 * the topic, counts it (`parkgw status`) and retries with backoff. After the
 * broker is restarted on the same port with an ACL that allows the topics,
 * every durable message arrives, from seq 1 up, none missing.
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

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* The "seq" of a durable payload, or -1. */
static long long payload_seq(const char *payload)
{
    long long seq;
    return payload && sscanf(payload, "{\"seq\":%lld", &seq) == 1 ? seq : -1;
}

int main(void)
{
    char *dir = h_park_dir("it_mqtt_acl");
    char *acl = xasprintf("%s/acl", dir);
    /* Anonymous clients (the ACL's top section): everyone reads everything;
     * the gateway may write only these. */
    h_write_file(acl, "topic read #\n"
                      "topic write park/itacl/status\n"
                      "topic write park/itacl/+/+/+/live\n"
                      "topic write park/itacl/+/+/+/state\n");
    /* log_type all: mosquitto logs each denial ("Denied PUBLISH"). */
    char *listener = xasprintf("allow_anonymous true\nacl_file %s\nlog_type all", acl);
    struct proc mosq = {.stdin_fd = -1}, sim = {.stdin_fd = -1}, gw = {.stdin_fd = -1};
    int mport = h_start_mosquitto_conf(&mosq, dir, listener);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir), *gw_cfg = xasprintf("%s/gw.cfg", dir);
    char *text = make_config(dir, mport, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    text = make_config(dir, mport, sport);
    h_write_file(gw_cfg, text);
    free(text);

    const char *parkgw = h_env("PARKGW_BIN", "parkgw");
    char *gw_log = xasprintf("%s/parkgw.log", dir), *db = xasprintf("%s/parkgw.db", dir);
    char *run_argv[] = {(char *)parkgw, "run", "-c", gw_cfg, "-v", NULL};
    h_spawn(&gw, run_argv, gw_log, false);

    /* Refused, logged once for the topic, retried (debug lines) with backoff. */
    CHECK(h_wait_log(&gw, "(MQTT 5)", 1, 15000));
    CHECK(h_wait_log(&gw, "outbox: the broker refused the message on park/itacl/", 1, 15000));
    CHECK(h_wait_log(&gw, "refused again: Not authorized (0x87)", 3, 20000));
    /* Once per topic: the enterprise's summary and the park's (the first two
     * messages were in flight together). */
    CHECK_INT(h_log_count(&gw, "refused the message on park/itacl/ent0/summary ("), 1);
    CHECK(h_log_count(&gw, "refused the message on park/itacl/summary (") <= 1);
    CHECK_INT(h_log_count(&gw, "outbox: the broker refused the message on"),
              h_log_count(&gw, "(MQTT 5 reason code 0x87)"));
    CHECK(h_log_count(&mosq, "Denied PUBLISH from parkgw-itacl") >= 4);

    /* No row deleted: the outbox holds every seq assigned so far. */
    int64_t rows = db_int(db, "SELECT count(*) FROM outbox");
    int64_t lo = db_int(db, "SELECT min(seq) FROM outbox");
    int64_t hi = db_int(db, "SELECT max(seq) FROM outbox");
    printf("outbox while refused: %lld rows, seq %lld..%lld\n", (long long)rows, (long long)lo,
           (long long)hi);
    CHECK(rows >= 3);
    CHECK_INT(lo, 1);
    CHECK_INT(rows, hi - lo + 1);

    /* `parkgw status` counts the refusals (its counters file is rewritten
     * every 5 s). */
    char *status_argv[] = {(char *)parkgw, "status", "-c", gw_cfg, NULL};
    char *out = NULL;
    bool seen = false;
    for (int64_t end = now_mono_ms() + 15000; !seen && now_mono_ms() < end;) {
        free(out);
        out = NULL;
        h_run(status_argv, &out, NULL, 10000);
        seen = out && strstr(out, "(MQTT 5)") && !strstr(out, " 0 refused by the broker") &&
               strstr(out, "refused by the broker");
        if (!seen)
            sleep_ms(500);
    }
    CHECK(seen);
    if (!seen)
        printf("status:\n%s\n", out ? out : "(none)");
    free(out);

    /* The ACL now allows the gateway's topics: mosquitto restarted on the
     * same port; a subscriber sees every durable message from seq 1. */
    int64_t max_before = db_int(db, "SELECT max(seq) FROM outbox");
    h_write_file(acl, "topic read #\ntopic write park/itacl/#\n");
    h_stop(&mosq, SIGTERM, 5000);
    h_restart_mosquitto_conf(&mosq, dir, mport, listener);
    struct h_sub *sub = h_sub_new(mport, "itacl-sub", "park/itacl/#");
    int64_t end = now_mono_ms() + 30000;
    long long want = (long long)max_before, next = 1;
    size_t idx = 0;
    bool gap = false;
    while (next <= want && now_mono_ms() < end) {
        if (idx >= h_sub_count(sub)) {
            sleep_ms(50);
            continue;
        }
        struct h_msg m;
        if (h_sub_get(sub, idx++, &m)) {
            long long seq = strstr(m.topic, "summary") || strstr(m.topic, "events")
                                ? payload_seq(m.payload)
                                : -1;
            if (seq >= 0 && seq < next)
                ; /* a resend of one already seen */
            else if (seq == next)
                next++;
            else if (seq > next)
                gap = true;
            h_msg_free(&m);
        }
    }
    printf("after the ACL allowed it: seq 1..%lld expected, next missing %lld\n", want, next);
    CHECK(next > want);
    CHECK(!gap);
    CHECK(h_wait_log(&gw, "outbox: the broker accepts messages on park/itacl/", 1, 10000));

    if (check_failed) {
        h_dump_log(&gw, "parkgw");
        h_dump_log(&mosq, "mosquitto");
    }
    h_sub_free(sub);
    h_stop(&gw, SIGTERM, 10000);
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&mosq, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&mosq);
    free(listener);
    free(acl);
    free(gw_log);
    free(db);
    free(gw_cfg);
    free(sim_cfg);
    free(dir);
    return check_done();
}
