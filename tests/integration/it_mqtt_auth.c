/*
 * it_mqtt_auth.c - broker security against real processes: mosquitto with
 * a TLS listener (a CA and certificates made with openssl at test time) and
 * a password file (allow_anonymous false), parkgw-sim, and `parkgw run`.
 * A server certificate for another host name is refused with a clear log
 * line and no connection; a wrong password gives the broker's refusal in
 * words, retried with growing backoff, the password never logged; with the
 * right password (after a restart: see docs/MQTT.md, Security) the retained
 * online status and live values reach an authenticated TLS subscriber.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 7177
#define STATUS_TOPIC "park/itau/status"
#define LIVE_TOPIC "park/itau/chengtong-plastics/water/w1/live"

/* Distinctive strings, so their absence from a log means something. */
static const char good_pass[] = "gwPass-6d1f0a93";
static const char bad_pass[] = "WrongPw-b83c55e1";
static const char watch_pass[] = "watchPw-42e7c0";

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"itau\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"ssl://127.0.0.1:%d\"; client_id = \"parkgw-itau\";\n"
        "         username = \"parkgw\"; password_file = \"%s/gw.pass\";\n"
        "         tls = { ca_file = \"%s/ca.crt\"; }; };\n"
        "buses = (\n"
        "  { name = \"line-a\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; timeout_ms = 500; }\n"
        ");\n"
        "@include \"%s/config/profiles/generic-water.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\";\n"
        "    meters = (\n"
        "      { id = \"w1\"; utility = \"water\"; bus = \"line-a\"; unit_id = 11;\n"
        "        profile = \"generic-water\"; interval = 1; }\n"
        "    ); }\n"
        ");\n",
        dir, mqtt_port, dir, dir, sim_port, h_env("PARKGW_SOURCE_DIR", "."));
}

/* Starts `parkgw -v run` for cfg with its log at dir/name. */
static void start_gw(struct proc *gw, const char *cfg, const char *dir, const char *name)
{
    char *log = xasprintf("%s/%s", dir, name);
    const char *bin = h_env("PARKGW_BIN", "parkgw");
    char *argv[] = {(char *)bin, "-v", "run", "-c", (char *)cfg, NULL};
    h_spawn(gw, argv, log, false);
    free(log);
}

/* SIGTERM; true when it exited 0 within 10 s. */
static bool stop_gw(struct proc *gw)
{
    int st = h_stop(gw, SIGTERM, 10000);
    return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Wall-clock times (ms since midnight, from the "HH:MM:SS.mmm" prefix) of
 * parkgw's log lines reporting a failed broker connect. Returns the count. */
static size_t connect_failures(const struct proc *p, int64_t *ret_ms, size_t max)
{
    char *text = h_read_file(p->log_path);
    size_t n = 0;
    int64_t day = 0, last = -1;
    for (char *line = text, *next; line && *line && n < max; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strstr(line, "mqtt: cannot connect to") &&
            !(strstr(line, "mqtt: connect to") && strstr(line, "failed again")))
            continue;
        int hh, mm, ss, ms;
        if (sscanf(line, "%2d:%2d:%2d.%3d ", &hh, &mm, &ss, &ms) != 4)
            continue;
        int64_t t = ((hh * 60 + mm) * 60 + ss) * 1000LL + ms;
        if (last >= 0 && t + day < last)
            day += 86400000; /* the run crossed midnight */
        last = t + day;
        ret_ms[n++] = last;
    }
    free(text);
    return n;
}

static void check_no_secret(const struct proc *p, const char *what)
{
    const char *secrets[] = {good_pass, bad_pass, watch_pass};
    for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
        if (h_log_count(p, secrets[i]) != 0) {
            fprintf(stderr, "%s log (%s) contains a password\n", what, p->log_path);
            CHECK(false);
        }
}

/* What the scenarios share: the test dir, the two brokers, the sim, the
 * two gateway configs and the authenticated TLS subscriber. */
static char *dir, *ca, *gw_pass, *cfg_good, *cfg_bad;
static struct proc good = {.stdin_fd = -1}, bad = {.stdin_fd = -1}, sim = {.stdin_fd = -1},
                   gw = {.stdin_fd = -1};
static int port_good;
static struct h_sub *watch;

static void write_gw_pass(const char *password)
{
    char *text = xasprintf("%s\n", password);
    h_write_file(gw_pass, text);
    free(text);
}

/* A throwaway PKI and password file; two TLS brokers, both refusing
 * anonymous clients: one whose certificate names 127.0.0.1, one whose
 * certificate (same CA) names only other.example; the sim; and the
 * operator's view: an authenticated TLS subscriber on the good broker.
 * False (after a message) when the tools failed. */
static bool setup(void)
{
    dir = h_tmpdir("it_mqtt_auth");
    chmod(dir, 0755);
    if (!h_make_test_certs(dir)) {
        fprintf(stderr, "openssl could not make the test certificates\n");
        return false;
    }
    ca = xasprintf("%s/ca.crt", dir);
    char *passwd = xasprintf("%s/broker.passwd", dir);
    if (!h_mosquitto_passwd(passwd, true, "parkgw", good_pass) ||
        !h_mosquitto_passwd(passwd, false, "watcher", watch_pass)) {
        fprintf(stderr, "mosquitto_passwd failed\n");
        free(passwd);
        return false;
    }
    char *good_conf = xasprintf("cafile %s\ncertfile %s/srv.crt\nkeyfile %s/srv.key\n"
                                "allow_anonymous false\npassword_file %s\n",
                                ca, dir, dir, passwd);
    char *bad_conf = xasprintf("cafile %s\ncertfile %s/wrongname.crt\nkeyfile %s/wrongname.key\n"
                               "allow_anonymous false\npassword_file %s\n",
                               ca, dir, dir, passwd);
    port_good = h_start_mosquitto_conf(&good, dir, good_conf);
    int port_bad = h_start_mosquitto_conf(&bad, dir, bad_conf);
    free(good_conf);
    free(bad_conf);
    free(passwd);

    gw_pass = xasprintf("%s/gw.pass", dir);
    write_gw_pass(good_pass);
    char *sim_cfg = xasprintf("%s/sim.cfg", dir);
    char *text = make_config(dir, port_good, 502);
    h_write_file(sim_cfg, text);
    free(text);
    int sport = h_start_sim(&sim, dir, sim_cfg, SEED);
    free(sim_cfg);
    cfg_bad = xasprintf("%s/gw-wrongname.cfg", dir);
    text = make_config(dir, port_bad, sport);
    h_write_file(cfg_bad, text);
    free(text);
    cfg_good = xasprintf("%s/gw.cfg", dir);
    text = make_config(dir, port_good, sport);
    h_write_file(cfg_good, text);
    free(text);
    watch = h_sub_new_auth(port_good, "it-auth-watch", "park/itau/#", ca, "watcher", watch_pass);
    return true;
}

/* (b) The server certificate is for other.example, the URI says
 * 127.0.0.1: the handshake is refused, parkgw says why in words, keeps
 * retrying, and never completes an MQTT connect (no plaintext fallback:
 * the broker never sees a CONNECT from it). */
static void scenario_wrong_server_name_refused(void)
{
    start_gw(&gw, cfg_bad, dir, "parkgw-wrongname.log");
    bool refused = h_wait_log(&gw, "server certificate was refused", 1, 10000);
    CHECK(refused);
    CHECK(h_wait_log(&gw, "failed again", 1, 8000));
    CHECK_INT(h_log_count(&gw, "mqtt: connected"), 0);
    CHECK_INT(h_log_count(&bad, "New client connected"), 0);
    CHECK(h_log_count(&bad, "New connection from") >= 2); /* it did reach the broker */
    CHECK(h_alive(&gw));
    check_no_secret(&gw, "parkgw");
    CHECK(stop_gw(&gw));
    if (!refused)
        h_dump_log(&gw, "parkgw (wrong host name)");
}

/* (c) Wrong password on the good broker: mosquitto answers CONNACK 5;
 * parkgw logs the refusal in words (one warning for the outage, then a
 * debug line per further attempt), retries with growing backoff, never
 * logs the password, never publishes. */
static void scenario_wrong_password_backoff(void)
{
    write_gw_pass(bad_pass);
    start_gw(&gw, cfg_good, dir, "parkgw-badpass.log");
    /* Hand computation of the spacing: retry_main() waits 1 s, 2 s, 4 s
     * (each +-20% jitter) between a failure and the next attempt, and the
     * attempt itself takes 0-~1.2 s (TLS handshake, Paho's 1 s socket poll).
     * Gaps between failure lines: g1 in [0.8, ~2.4] s, g2 in [1.6, ~3.6] s,
     * g3 in [3.2, ~6.0] s: so the first failure plus three retries arrive
     * within ~13 s, g2 >= 1.55 s, g3 >= 3.15 s, and g3 exceeds g1 by at
     * least ~0.8 s whatever the attempt times. */
    bool four = h_wait_log(&gw, "failed again", 3, 20000);
    CHECK(four);
    CHECK(h_log_count(&gw, "broker refused the connection: not authorized (bad user name "
                           "or password") >= 1 + 3);
    CHECK_INT(h_log_count(&gw, "warning: mqtt: cannot connect to"), 1);
    CHECK(h_log_count(&gw, "socket error") == 0);
    int64_t t[8];
    size_t nf = connect_failures(&gw, t, ARRAY_SIZE(t));
    CHECK(nf >= 4);
    if (nf >= 4) {
        int64_t g1 = t[1] - t[0], g2 = t[2] - t[1], g3 = t[3] - t[2];
        printf("retry spacing: %lld, %lld, %lld ms\n", (long long)g1, (long long)g2,
               (long long)g3);
        CHECK(g1 >= 750 && g1 <= 4000);
        CHECK(g2 >= 1550 && g2 <= 6000);
        CHECK(g3 >= 3150 && g3 <= 9000);
        CHECK(g3 > g1 + 500);
    }
    CHECK_INT(h_log_count(&gw, "mqtt: connected"), 0);
    /* The broker's side: each attempt refused at CONNECT, none accepted. */
    CHECK(h_log_count(&good, "disconnected, not authorised") >= 4);
    CHECK_INT(h_log_count(&good, "as parkgw-itau"), 0);
    CHECK(h_sub_wait(watch, 0, STATUS_TOPIC, NULL, 0) < 0);
    CHECK(h_alive(&gw));
    check_no_secret(&gw, "parkgw");
    if (!four)
        h_dump_log(&gw, "parkgw (bad password)");
    /* A SIGHUP reload does not rebuild the broker connection (docs/MQTT.md,
     * Security), so the next scenario restarts parkgw. */
    CHECK(stop_gw(&gw));
}

/* (a) Right CA and password: online (retained) and live values arrive at
 * the authenticated subscriber; a later subscriber gets the retained
 * status; a clean stop publishes offline; no password in any log. */
static void scenario_right_password_publishes(void)
{
    write_gw_pass(good_pass);
    start_gw(&gw, cfg_good, dir, "parkgw.log");
    long on = h_sub_wait(watch, 0, STATUS_TOPIC, "\"online\"", 15000);
    CHECK(on >= 0);
    if (on < 0)
        h_dump_log(&gw, "parkgw (right password)");
    char *connected = xasprintf("mqtt: connected to ssl://127.0.0.1:%d", port_good);
    CHECK_INT(h_log_count(&gw, connected), 1);
    free(connected);
    CHECK_INT(h_log_count(&gw, "mqtt: cannot connect"), 0);
    CHECK(h_sub_wait(watch, 0, LIVE_TOPIC, NULL, 5000) >= 0);
    CHECK_INT(h_log_count(&good, "as parkgw-itau (p5, c1, k30, u'parkgw')"), 1);
    struct h_sub *late =
        h_sub_new_auth(port_good, "it-auth-late", STATUS_TOPIC, ca, "watcher", watch_pass);
    long r = h_sub_wait(late, 0, STATUS_TOPIC, "\"online\"", 5000);
    CHECK(r >= 0);
    if (r >= 0) {
        struct h_msg msg;
        h_sub_get(late, (size_t)r, &msg);
        CHECK(msg.retained);
        h_msg_free(&msg);
    }
    h_sub_free(late);
    size_t mark = h_sub_count(watch);
    CHECK(stop_gw(&gw));
    CHECK(h_sub_wait(watch, mark, STATUS_TOPIC, "\"offline\"", 5000) >= 0);
    check_no_secret(&gw, "parkgw");
    check_no_secret(&good, "mosquitto");
    check_no_secret(&bad, "mosquitto");
}

int main(void)
{
    const char *mosq_bin = h_env("MOSQUITTO_BIN", "/usr/sbin/mosquitto");
    if (!h_have_program("openssl") || !h_have_program("mosquitto_passwd") ||
        access(mosq_bin, X_OK) != 0) {
        printf("SKIP it_mqtt_auth: needs openssl, mosquitto_passwd and %s "
               "(scripts/deps.sh --test installs them)\n", mosq_bin);
        return 0;
    }
    if (!setup())
        return 1;
    scenario_wrong_server_name_refused();
    scenario_wrong_password_backoff();
    scenario_right_password_publishes();

    h_sub_free(watch);
    h_stop(&sim, SIGTERM, 5000);
    h_stop(&good, SIGTERM, 5000);
    h_stop(&bad, SIGTERM, 5000);
    h_proc_release(&gw);
    h_proc_release(&sim);
    h_proc_release(&good);
    h_proc_release(&bad);
    free(cfg_good);
    free(cfg_bad);
    free(gw_pass);
    free(ca);
    free(dir);
    return check_done();
}
