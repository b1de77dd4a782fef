/*
 * it_alerts.c - alert delivery to webhooks end to end: mosquitto,
 * parkgw-sim, `parkgw run` with four targets (generic JSON, WeCom, DingTalk
 * limited to supply_lost, and a WeCom chat rate-limited to one message per
 * meter every 12 s) and a local HTTP receiver on loopback (this file). A
 * supply loss reaches every target with the enterprise's Chinese name; a
 * flapping meter reaches the limited chat once per interval with the
 * latest state and the count of changes not sent; with the receiver down
 * the events wait (through a daemon restart) and all arrive, in order, when
 * it is back: none lost, duplicates only with the same id.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 23
#define CHAT_INTERVAL_S 12
#define DING_SECRET "SEC0123456789abcdef"

/* ---- the receiver ---- */

struct rx_msg {
    char *path, *body, *alert_id;
};

static struct {
    int port, fd;
    pthread_t thread;
    bool running, stop;
    pthread_mutex_t lock;
    struct rx_msg *msgs;
    size_t n, cap;
} rx = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void rx_serve(int c)
{
    char *buf = NULL;
    size_t len = 0, cap = 0, need = 0;
    char *body_at = NULL;
    int64_t end = now_mono_ms() + 5000;
    for (;;) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (h_left_ms(end) <= 0 || poll(&p, 1, h_left_ms(end)) <= 0)
            break;
        buf = xgrow(buf, &cap, len + 4097, 1);
        ssize_t n = read(c, buf + len, 4096);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (!body_at && (body_at = strstr(buf, "\r\n\r\n"))) {
            char *cl = strcasestr(buf, "Content-Length:");
            need = (size_t)(body_at + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (body_at && len >= need)
            break;
    }
    if (body_at && len >= need) {
        struct rx_msg m = {0};
        char path[256] = "";
        sscanf(buf, "POST %255s", path);
        m.path = xstrdup(path);
        m.body = xstrdup(strstr(buf, "\r\n\r\n") + 4);
        char *id = strcasestr(buf, "X-Parkgw-Alert-Id: ");
        if (id) {
            id += 19;
            m.alert_id = xstrdup(id);
            m.alert_id[strcspn(m.alert_id, "\r\n")] = '\0';
        }
        pthread_mutex_lock(&rx.lock);
        rx.msgs = xgrow(rx.msgs, &rx.cap, rx.n + 1, sizeof(*rx.msgs));
        rx.msgs[rx.n++] = m;
        pthread_mutex_unlock(&rx.lock);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 27\r\nConnection: close\r\n\r\n"
                                 "{\"errcode\":0,\"errmsg\":\"ok\"}";
        write_all(c, ok, strlen(ok));
    }
    free(buf);
    close(c);
}

static void *rx_thread(void *arg)
{
    UNUSED(arg);
    for (;;) {
        pthread_mutex_lock(&rx.lock);
        bool stop = rx.stop;
        pthread_mutex_unlock(&rx.lock);
        if (stop)
            return NULL;
        struct pollfd p = {.fd = rx.fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            int c = accept4(rx.fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0)
                rx_serve(c);
        }
    }
}

static void rx_start(void)
{
    rx.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(rx.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rx.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(rx.fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(rx.fd, 16) < 0) {
        perror("receiver");
        exit(2);
    }
    rx.stop = false;
    pthread_create(&rx.thread, NULL, rx_thread, NULL);
    rx.running = true;
}

static void rx_down(void)
{
    pthread_mutex_lock(&rx.lock);
    rx.stop = true;
    pthread_mutex_unlock(&rx.lock);
    pthread_join(rx.thread, NULL);
    close(rx.fd);
    rx.running = false;
}

/* Messages received on path so far, their bodies parsed (caller frees the
 * array and decrefs each). */
static size_t rx_on(const char *path, json_t ***ret, char ***ret_ids)
{
    pthread_mutex_lock(&rx.lock);
    json_t **v = xcalloc(rx.n + 1, sizeof(*v));
    char **ids = xcalloc(rx.n + 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < rx.n; i++)
        if (strcmp(rx.msgs[i].path, path) == 0 ||
            (!strchr(path, '?') && !strncmp(rx.msgs[i].path, path, strlen(path)) &&
             rx.msgs[i].path[strlen(path)] == '?')) {
            v[k] = json_loads(rx.msgs[i].body, 0, NULL);
            ids[k++] = xstrdup(rx.msgs[i].alert_id ? rx.msgs[i].alert_id : "");
        }
    pthread_mutex_unlock(&rx.lock);
    *ret = v;
    *ret_ids = ids;
    return k;
}

static void free_on(json_t **v, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(v[i]);
        free(ids[i]);
    }
    free(v);
    free(ids);
}

struct want {
    const char *path;
    size_t n;
};

static bool rx_has(void *ud)
{
    struct want *w = ud;
    json_t **v;
    char **ids;
    size_t n = rx_on(w->path, &v, &ids);
    free_on(v, ids, n);
    return n >= w->n;
}

static bool rx_wait(const char *path, size_t n, int timeout_ms)
{
    struct want w = {path, n};
    bool ok = h_wait_until(rx_has, &w, timeout_ms);
    if (!ok)
        fprintf(stderr, "receiver: fewer than %zu messages on %s\n", n, path);
    return ok;
}

/* The text content of a robot message. */
static const char *robot_text(json_t *m)
{
    return json_string_value(json_object_get(json_object_get(m, "text"), "content"));
}

/* ---- the park ---- */

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"algw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-algw\"; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; "
        "timeout_ms = 300; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; } ); },\n"
        "  { id = \"hongfei-casting\"; name = \"长沙虹飞机床铸造有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 2;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 40.0; } ); }\n"
        ");\n"
        "alerts = { min_interval = 0; webhooks = (\n"
        "  { name = \"gen\"; url = \"http://127.0.0.1:%d/gen\"; },\n"
        "  { name = \"wecom\"; format = \"wecom\"; url = \"http://127.0.0.1:%d/wecom?key=k1\"; },\n"
        "  { name = \"ding\"; format = \"dingtalk\"; url = \"http://127.0.0.1:%d/ding\";\n"
        "    events = [ \"supply_lost\" ]; timeout_ms = 2000; secret = \"" DING_SECRET "\"; },\n"
        "  { name = \"chat\"; format = \"wecom\"; url = \"http://127.0.0.1:%d/chat\";\n"
        "    min_interval = %d; }\n"
        "); };\n",
        dir, mqtt_port, sim_port, rx.port, rx.port, rx.port, rx.port, CHAT_INTERVAL_S);
}

static struct h_park pk;

/* The DingTalk robot's check of a signed request path
 * "/ding?timestamp=MS&sign=S": S is the URL-encoded Base64 of
 * HMAC-SHA256(secret, "MS\nsecret"), MS within an hour of now. */
static bool ding_signed(const char *path)
{
    long long ts;
    char sign[200];
    if (sscanf(path, "/ding?timestamp=%lld&sign=%199s", &ts, sign) != 2)
        return false;
    char *msg = xasprintf("%lld\n%s", ts, DING_SECRET);
    unsigned char mac[EVP_MAX_MD_SIZE], b64[128];
    unsigned int n = 0;
    HMAC(EVP_sha256(), DING_SECRET, (int)strlen(DING_SECRET), (unsigned char *)msg, strlen(msg),
         mac, &n);
    free(msg);
    EVP_EncodeBlock(b64, mac, (int)n);
    char want[200], *o = want;
    for (unsigned char *c = b64; *c; c++)
        o += isalnum(*c) ? sprintf(o, "%c", *c) : sprintf(o, "%%%02X", *c);
    return strcmp(sign, want) == 0 && llabs(ts - now_real_ms()) < 3600 * 1000;
}

static void check_first_alert(void)
{
    int64_t t0 = now_mono_ms();
    CHECK(h_sim_do(&pk.sim, "supply chengtong-plastics/e1 off"));
    CHECK(rx_wait("/gen", 1, 15000));
    printf("first alert %lld ms after the supply went off\n", (long long)(now_mono_ms() - t0));
    CHECK(rx_wait("/wecom?key=k1", 1, 5000));
    CHECK(rx_wait("/ding", 1, 5000));
    CHECK(rx_wait("/chat", 1, 5000));
    json_t **v;
    char **ids;
    size_t n = rx_on("/gen", &v, &ids);
    if (n) {
        CHECK_STR(json_string_value(json_object_get(v[0], "type")), "alarm_raised");
        CHECK_STR(json_string_value(json_object_get(v[0], "kind")), "supply_lost");
        CHECK_STR(json_string_value(json_object_get(v[0], "enterprise_name")), "湖南城通塑业有限公司");
        CHECK_STR(json_string_value(json_object_get(v[0], "id")), ids[0]);
        CHECK(json_is_false(json_object_get(v[0], "cleared")));
        CHECK_STR(json_string_value(json_object_get(json_object_get(v[0], "event"), "meter")),
                  "e1");
    }
    free_on(v, ids, n);
    pthread_mutex_lock(&rx.lock);
    size_t signed_ok = 0, dings = 0;
    for (size_t i = 0; i < rx.n; i++)
        if (!strncmp(rx.msgs[i].path, "/ding", 5)) {
            dings++;
            signed_ok += ding_signed(rx.msgs[i].path);
        }
    pthread_mutex_unlock(&rx.lock);
    CHECK(dings >= 1);
    CHECK_INT(signed_ok, dings);
    static const char *const robots[] = {"/wecom?key=k1", "/ding", "/chat"};
    for (size_t k = 0; k < ARRAY_SIZE(robots); k++) {
        n = rx_on(robots[k], &v, &ids);
        CHECK(n >= 1);
        if (n) {
            CHECK_STR(json_string_value(json_object_get(v[0], "msgtype")), "text");
            const char *t = robot_text(v[0]);
            CHECK(t != NULL);
            if (t) {
                CHECK_CONTAINS(t, "湖南城通塑业有限公司");
                CHECK_CONTAINS(t, "断供 supply_lost");
                CHECK_CONTAINS(t, "告警 ALARM");
            }
        }
        free_on(v, ids, n);
    }
}

/* The meter flaps: every change reaches /gen; the chat gets the latest
 * state once its 12 s have passed, with the count of changes not sent. */
static void check_rate_limit(void)
{
    int64_t t0 = now_mono_ms();
    CHECK(h_sim_do(&pk.sim, "supply chengtong-plastics/e1 on"));
    CHECK(rx_wait("/gen", 2, 10000));
    CHECK(h_sim_do(&pk.sim, "supply chengtong-plastics/e1 off"));
    CHECK(rx_wait("/gen", 3, 15000));
    json_t **v;
    char **ids;
    size_t n = rx_on("/chat", &v, &ids);
    CHECK_INT(n, 1); /* the flaps are held */
    free_on(v, ids, n);
    CHECK(rx_wait("/chat", 2, CHAT_INTERVAL_S * 1000 + 5000));
    printf("chat: second message %lld ms after the first flap\n",
           (long long)(now_mono_ms() - t0));
    n = rx_on("/chat", &v, &ids);
    if (n >= 2) {
        const char *t = robot_text(v[1]);
        CHECK(t && strstr(t, "告警 ALARM")); /* the latest state: supply lost again */
        CHECK(t && strstr(t, "1 earlier changes not sent"));
    }
    CHECK(n == 2);
    free_on(v, ids, n);
}

/* The new outage is in the alert queue (committed with its event). */
static bool hongfei_queued(void *ud)
{
    UNUSED(ud);
    char *db = xasprintf("%s/parkgw.db", pk.dir);
    int64_t n = h_db_int(db, "SELECT count(*) FROM alert_events"
                             " WHERE payload LIKE '%\"enterprise\":\"hongfei-casting\"%'");
    free(db);
    return n >= 1;
}

/* Receiver down: the clear waits, through a daemon restart, and arrives
 * once the receiver is back; every event once or more, in order. */
static void check_outage(void)
{
    rx_down();
    CHECK(h_sim_do(&pk.sim, "supply chengtong-plastics/e1 on"));
    CHECK(h_wait_log(&pk.gw, "retrying with backoff", 1, 15000));
    CHECK(h_park_stop_gw(&pk));
    size_t failed = h_log_count(&pk.gw, "retrying with backoff");
    h_park_run(&pk, true);
    /* The restarted daemon finds the queued clear and cannot send it
     * either; a new outage is queued behind it. */
    CHECK(h_wait_log(&pk.gw, "retrying with backoff", failed + 1, 20000));
    CHECK(h_sim_do(&pk.sim, "supply hongfei-casting/e1 off"));
    CHECK(h_wait_until(hongfei_queued, NULL, 15000));
    json_t **v0;
    char **ids0;
    size_t n0 = rx_on("/gen", &v0, &ids0);
    CHECK_INT(n0, 3); /* nothing got through meanwhile */
    free_on(v0, ids0, n0);
    rx_start();
    /* Backoff after a few failures is a few seconds. */
    CHECK(rx_wait("/gen", 5, 30000));
    CHECK(rx_wait("/ding", 5, 10000));
    json_t **v;
    char **ids;
    size_t n = rx_on("/gen", &v, &ids);
    /* Distinct ids in order of first arrival: raised, cleared, raised,
     * cleared for chengtong, then raised for hongfei; a repeat carries an
     * id already seen and the same event. */
    static const char *const want[][2] = {{"chengtong-plastics", "alarm_raised"},
                                          {"chengtong-plastics", "alarm_cleared"},
                                          {"chengtong-plastics", "alarm_raised"},
                                          {"chengtong-plastics", "alarm_cleared"},
                                          {"hongfei-casting", "alarm_raised"}};
    size_t distinct = 0, repeats = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            if (strcmp(ids[k], ids[i]) == 0) {
                seen = true;
                CHECK(json_equal(json_object_get(v[k], "event"), json_object_get(v[i], "event")));
            }
        if (seen) {
            repeats++;
            continue;
        }
        if (distinct < ARRAY_SIZE(want)) {
            json_t *ev = json_object_get(v[i], "event");
            CHECK_STR(json_string_value(json_object_get(ev, "enterprise")), want[distinct][0]);
            CHECK_STR(json_string_value(json_object_get(v[i], "type")), want[distinct][1]);
        }
        distinct++;
    }
    printf("/gen: %zu messages, %zu distinct events, %zu repeats\n", n, distinct, repeats);
    CHECK_INT(distinct, ARRAY_SIZE(want));
    free_on(v, ids, n);
    n = rx_on("/gen", &v, &ids);
    const char *t = n ? json_string_value(json_object_get(v[n - 1], "enterprise_name")) : NULL;
    CHECK(t && strcmp(t, "长沙虹飞机床铸造有限公司") == 0);
    free_on(v, ids, n);
}

int main(void)
{
    rx.port = h_free_port();
    rx_start();
    h_park_start(&pk, "it_alerts", make_config, SEED);
    h_park_run(&pk, true);
    CHECK(h_wait_log(&pk.gw, "alerts: 4 webhook(s)", 1, 10000));
    if (!check_failed) {
        check_first_alert();
        check_rate_limit();
        check_outage();
    }
    h_park_free(&pk, check_failed > 0);
    if (rx.running)
        rx_down();
    for (size_t i = 0; i < rx.n; i++) {
        free(rx.msgs[i].path);
        free(rx.msgs[i].body);
        free(rx.msgs[i].alert_id);
    }
    free(rx.msgs);
    return check_done();
}
