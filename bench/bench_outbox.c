/*
 * bench_outbox.c - the durable path through a real mosquitto on loopback:
 * (1) drain rate of an outbox backlog (as left by a broker outage) through
 * the publisher, with the daemon's window/rate and without the rate limit,
 * while live QoS 0 messages keep being published beside it; (2) end-to-end
 * latency of a durable message from writer_submit_msg (the moment a poller
 * hands it over) through the writer's commit, the publisher and the broker
 * to a subscriber, p50/p99, with the daemon's 1 s commit window and without.
 * Prints figures, asserts nothing (a lost or reordered message is reported).
 *
 *   bench_outbox [-n backlog (20000)] [-l latency_msgs (200)] [-k]
 *
 * Needs mosquitto ($MOSQUITTO_BIN or /usr/sbin/mosquitto); runs it on a free
 * loopback port in a temporary directory under $TMPDIR (or /tmp).
 */
#include "common/log.h"
#include "daemon/publisher.h"
#include "common/util.h"
#include "protocols/mqtt.h"
#include "storage/outbox.h"
#include "storage/store.h"
#include "daemon/writer.h"

#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A summary-sized payload: what the outbox mostly carries. */
#define PAYLOAD_FMT                                                                            \
    "{\"t\":%lld,\"from\":1795980870000,\"to\":1795980930000,\"electricity\":{\"kwh\":"      \
    "1234.567,\"kw_avg\":74074.02,\"kw_max\":80211.5},\"water\":{\"m3\":12.345},\"gas\":"     \
    "{\"nm3\":45.678},\"enterprises\":29,\"meters_ok\":87,\"meters_down\":0}"

struct sub {
    MQTTAsync client;
    pthread_mutex_t mu;
    volatile int subscribed;
    uint64_t durable, live, out_of_order, dups;
    int64_t last_seq;
    int64_t first_rx, last_rx;   /* monotonic ms of the first/last durable message */
    double *lat;                 /* latency samples, ms */
    size_t n_lat, cap_lat;
};

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    close(fd);
    return r == 0;
}

static pid_t start_mosquitto(const char *dir, int port)
{
    const struct passwd *pw = getpwuid(geteuid());
    char *conf = xasprintf("%s/mosquitto.conf", dir);
    char *log = xasprintf("%s/mosquitto.log", dir);
    char *text = xasprintf("listener %d 127.0.0.1\nallow_anonymous true\n"
                           "max_queued_messages 0\nmax_inflight_messages 0\nuser %s\n",
                           port, pw ? pw->pw_name : "mosquitto");
    FILE *f = fopen(conf, "we");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    const char *bin = getenv("MOSQUITTO_BIN");
    if (!bin || !*bin)
        bin = "/usr/sbin/mosquitto";
    char *argv[] = {(char *)bin, "-c", conf, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; pid > 0 && i < 500 && !port_open(port); i++)
        sleep_ms(20);
    free(conf);
    free(log);
    free(text);
    return pid;
}

static int sub_arrived(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    struct sub *s = ctx;
    UNUSED(tlen);
    int64_t now_mono = now_mono_ms(), now_real = now_real_ms();
    char buf[64];
    size_t n = (size_t)m->payloadlen < sizeof(buf) - 1 ? (size_t)m->payloadlen : sizeof(buf) - 1;
    memcpy(buf, m->payload, n);
    buf[n] = 0;
    pthread_mutex_lock(&s->mu);
    if (strncmp(buf, "{\"seq\":", 7) == 0) {
        long long seq = strtoll(buf + 7, NULL, 10);
        const char *t = strstr(buf, "\"t\":");
        if (seq <= s->last_seq) {
            s->dups++;
        } else {
            if (s->last_seq && seq != s->last_seq + 1)
                s->out_of_order++;
            s->last_seq = seq;
            s->durable++;
            if (!s->first_rx)
                s->first_rx = now_mono;
            s->last_rx = now_mono;
            if (t) {
                s->lat = xgrow(s->lat, &s->cap_lat, s->n_lat + 1, sizeof(*s->lat));
                s->lat[s->n_lat++] = (double)(now_real - strtoll(t + 4, NULL, 10));
            }
        }
    } else if (strcmp(topic, "bench/live") == 0) {
        s->live++;
    }
    pthread_mutex_unlock(&s->mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void sub_ok(void *ctx, MQTTAsync_successData *d)
{
    UNUSED(d);
    ((struct sub *)ctx)->subscribed = 1;
}

static void sub_connected(void *ctx, char *cause)
{
    struct sub *s = ctx;
    UNUSED(cause);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = sub_ok;
    ro.context = s;
    MQTTAsync_subscribe(s->client, "bench/#", 1, &ro);
}

static struct sub *sub_new(int port)
{
    struct sub *s = xcalloc(1, sizeof(*s));
    char *uri = xasprintf("tcp://127.0.0.1:%d", port);
    pthread_mutex_init(&s->mu, NULL);
    MQTTAsync_create(&s->client, uri, "bench-sub", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    MQTTAsync_setCallbacks(s->client, s, NULL, sub_arrived, NULL);
    MQTTAsync_setConnected(s->client, s, sub_connected);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.cleansession = 1;
    co.keepAliveInterval = 30;
    MQTTAsync_connect(s->client, &co);
    for (int i = 0; i < 500 && !s->subscribed; i++)
        sleep_ms(10);
    free(uri);
    return s;
}

static void sub_reset(struct sub *s)
{
    pthread_mutex_lock(&s->mu);
    s->durable = s->live = s->out_of_order = s->dups = 0;
    s->last_seq = 0;
    s->first_rx = s->last_rx = 0;
    s->n_lat = 0;
    pthread_mutex_unlock(&s->mu);
}

static void sub_free(struct sub *s)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(s->client, &d);
    sleep_ms(50);
    MQTTAsync_destroy(&s->client);
    pthread_mutex_destroy(&s->mu);
    free(s->lat);
    free(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static struct store *fresh_store(const char *dir, const char *name, char **ret_path)
{
    char err[512];
    struct store *st = NULL;
    char *path = xasprintf("%s/%s", dir, name);
    if (store_open(path, false, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "store: %s\n", err);
        exit(2);
    }
    *ret_path = path;
    return st;
}

static struct mqtt *connect_gw(int port)
{
    struct config cfg = {0};
    char *uri = xasprintf("tcp://127.0.0.1:%d", port);
    cfg.mqtt_uri = uri;
    cfg.gateway_id = "bench";
    cfg.topic_prefix = "bench";
    cfg.mqtt_client_id = "bench-gw";
    struct mqtt *m = NULL;
    if (mqtt_new(&cfg, "{\"state\":\"online\"}", &m) < 0) {
        fprintf(stderr, "mqtt_new failed\n");
        exit(2);
    }
    mqtt_start(m);
    struct mqtt_stats ms = {0};
    for (int i = 0; i < 1000 && !ms.connected; i++) {
        sleep_ms(10);
        mqtt_get_stats(m, &ms);
    }
    free(uri);
    return m;
}

/* One drain run: n rows already in the outbox at path; live messages at
 * 'live_rate' per second alongside. */
static void drain_run(const char *label, const char *path, int port, struct sub *sub, int64_t n,
                      const struct publisher_opts *po, int live_rate)
{
    struct mqtt *m = connect_gw(port);
    struct publisher *p = NULL;
    sub_reset(sub);
    int64_t t0 = now_mono_ms();
    if (publisher_start(path, m, po, &p) < 0)
        exit(2);
    uint64_t live_sent = 0;
    int64_t next_live = t0, end = t0 + 600000;
    for (;;) {
        int64_t now = now_mono_ms();
        pthread_mutex_lock(&sub->mu);
        uint64_t got = sub->durable;
        pthread_mutex_unlock(&sub->mu);
        if ((int64_t)got >= n || now > end)
            break;
        if (live_rate > 0 && now >= next_live) {
            char payload[64];
            snprintf(payload, sizeof(payload), "{\"live\":%llu}", (unsigned long long)live_sent);
            if (mqtt_publish(m, "bench/live", payload, strlen(payload), 0, false) == 0)
                live_sent++;
            next_live += 1000 / live_rate;
        }
        sleep_ms(2);
    }
    /* Acknowledged rows are deleted in batches: give the last one time. */
    sleep_ms(500);
    struct publisher_stats ps;
    publisher_get_stats(p, &ps);
    publisher_stop(p);
    mqtt_stop(m, 2000);
    mqtt_free(m);

    pthread_mutex_lock(&sub->mu);
    double secs = (double)(sub->last_rx - t0) / 1000.0;
    printf("%-34s %7lld msgs in %6.2f s = %8.0f msg/s; in order %s (gaps %llu, dups %llu); "
           "live QoS0 beside it: %llu sent, %llu received\n",
           label, (long long)sub->durable, secs, secs > 0 ? (double)sub->durable / secs : 0.0,
           sub->out_of_order ? "NO" : "yes", (unsigned long long)sub->out_of_order,
           (unsigned long long)sub->dups, (unsigned long long)live_sent,
           (unsigned long long)sub->live);
    pthread_mutex_unlock(&sub->mu);
    printf("%-34s publisher: sent %llu acked %llu deleted %llu failed %llu\n", "",
           (unsigned long long)ps.sent, (unsigned long long)ps.acked,
           (unsigned long long)ps.deleted, (unsigned long long)ps.failed);
}

static void fill_outbox(struct store *st, int64_t n)
{
    struct outbox *ob;
    char payload[512];
    int64_t seq;
    if (outbox_attach(store_db(st), &ob) < 0 || store_begin(st) < 0)
        exit(2);
    for (int64_t i = 0; i < n; i++) {
        snprintf(payload, sizeof(payload), PAYLOAD_FMT, 0LL);
        if (outbox_add(ob, "bench/summary", payload, 1, false, i, &seq) < 0)
            exit(2);
    }
    if (store_commit(st) < 0)
        exit(2);
    outbox_free(ob);
}

/* Durable messages at 'rate' per second through writer -> outbox ->
 * publisher -> broker -> subscriber; prints latency percentiles. */
static void latency_run(const char *label, const char *dir, const char *name, int port,
                        struct sub *sub, int count, int rate, int64_t commit_ms)
{
    char *path;
    struct store *st = fresh_store(dir, name, &path);
    struct writer *w;
    if (writer_start(st, 100000, &w) < 0)
        exit(2);
    writer_set_commit_interval(w, commit_ms);
    struct mqtt *m = connect_gw(port);
    struct publisher *p = NULL;
    if (publisher_start(path, m, NULL, &p) < 0)
        exit(2);
    writer_set_outbox_notify(w, publisher_kick, p);
    sub_reset(sub);
    char payload[512];
    for (int i = 0; i < count; i++) {
        snprintf(payload, sizeof(payload), PAYLOAD_FMT, (long long)now_real_ms());
        writer_submit_msg(w, "bench/summary", payload, 1, false);
        sleep_ms(1000 / rate);
    }
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&sub->mu);
        bool all = sub->durable >= (uint64_t)count;
        pthread_mutex_unlock(&sub->mu);
        if (all)
            break;
        sleep_ms(10);
    }
    writer_set_outbox_notify(w, NULL, NULL);
    publisher_stop(p);
    mqtt_stop(m, 2000);
    mqtt_free(m);
    writer_stop(w);
    store_close(st);
    free(path);

    pthread_mutex_lock(&sub->mu);
    qsort(sub->lat, sub->n_lat, sizeof(*sub->lat), cmp_double);
    double p50 = sub->n_lat ? sub->lat[sub->n_lat / 2] : NAN;
    double p99 = sub->n_lat ? sub->lat[(sub->n_lat * 99) / 100 - (sub->n_lat >= 100 ? 1 : 0)] : NAN;
    double mx = sub->n_lat ? sub->lat[sub->n_lat - 1] : NAN;
    printf("%-34s %zu/%d msgs at %d/s: submit -> subscriber p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           label, sub->n_lat, count, rate, p50, p99, mx);
    pthread_mutex_unlock(&sub->mu);
}

int main(int argc, char **argv)
{
    int64_t backlog = 20000;
    int lat_count = 200;
    bool keep = false;
    int c;
    while ((c = getopt(argc, argv, "n:l:kh")) != -1) {
        int64_t v;
        switch (c) {
        case 'n':
            if (parse_int64(optarg, &v) < 0 || v <= 0)
                return 1;
            backlog = v;
            break;
        case 'l':
            if (parse_int64(optarg, &v) < 0 || v <= 0 || v > 100000)
                return 1;
            lat_count = (int)v;
            break;
        case 'k':
            keep = true;
            break;
        default:
            fprintf(stderr, "usage: bench_outbox [-n backlog (20000)] [-l latency_msgs (200)] [-k]\n");
            return c == 'h' ? 0 : 1;
        }
    }
    log_set_level(LOG_LVL_WARN);
    signal(SIGPIPE, SIG_IGN);

    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/bench_outbox.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    int port = free_port();
    pid_t mosq = start_mosquitto(dir, port);
    if (mosq <= 0 || !port_open(port)) {
        fprintf(stderr, "bench_outbox: mosquitto did not start\n");
        return 2;
    }
    struct sub *sub = sub_new(port);
    if (!sub->subscribed) {
        fprintf(stderr, "bench_outbox: subscriber could not subscribe\n");
        return 2;
    }
    printf("bench_outbox: mosquitto on 127.0.0.1:%d, backlog %lld summary-sized messages "
           "(%zu bytes)\n",
           port, (long long)backlog, strlen(PAYLOAD_FMT));

    struct {
        const char *label;
        struct publisher_opts po;
    } runs[] = {
        {"drain, daemon defaults (w100, 500/s)", {PUBLISHER_WINDOW, PUBLISHER_RATE}},
        {"drain, window 100, no rate limit", {100, 0}},
        {"drain, window 1000, no rate limit", {1000, 0}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(runs); i++) {
        char *path;
        char name[32];
        snprintf(name, sizeof(name), "drain%zu.db", i);
        struct store *st = fresh_store(dir, name, &path);
        /* The default-rate run is long at 500/s: a fifth of the backlog. */
        int64_t n = runs[i].po.rate > 0 ? backlog / 5 : backlog;
        fill_outbox(st, n);
        store_close(st);
        drain_run(runs[i].label, path, port, sub, n, &runs[i].po, 100);
        free(path);
    }
    latency_run("latency, commit window 1000 ms", dir, "lat1.db", port, sub, lat_count, 20, 1000);
    latency_run("latency, commit window 0", dir, "lat0.db", port, sub, lat_count, 20, 0);

    sub_free(sub);
    kill(mosq, SIGTERM);
    waitpid(mosq, NULL, 0);
    if (!keep) {
        char *cmd = xasprintf("rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_outbox: could not remove %s\n", dir);
        free(cmd);
    } else {
        printf("kept %s\n", dir);
    }
    free(dir);
    return 0;
}
