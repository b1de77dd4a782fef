/*
 * mqtt.c - the broker connection (see mqtt.h) on Paho's MQTTAsync client:
 * retained online status on every connect, retained offline LWT, TLS for
 * ssl:// and mqtts://, reconnects with backoff, and publishes that never block
 * the pollers. Payloads come from payload.c; durability (the outbox) lives in
 * storage/, so Paho keeps nothing on disk and buffers nothing while offline.
 *
 * Paho quirks met here (libpaho-mqtt3as 1.3.12 as shipped by Debian 12):
 *  - automaticReconnect only works once a connection has succeeded: when the
 *    very first MQTTAsync_connect fails (broker not up yet) Paho calls
 *    onFailure once and never tries again. retry_main() below re-issues the
 *    connect with its own backoff until the first success, then leaves
 *    reconnecting to Paho.
 *  - When a connect onSuccess is set, Paho clears onSuccess and onFailure
 *    after the first success, and failed automatic reconnects become silent.
 *    So only onFailure is set (the connected callback does the success
 *    work), and every failed reconnect attempt reports its reason.
 *  - maxBufferedMessages is not only the offline buffer: it caps the
 *    publish commands queued and not yet written while connected too
 *    (MQTTASYNC_MAX_BUFFERED_MESSAGES, -12), so it is sized for bursts and
 *    doubles as the bound on Paho's memory.
 *  - Paho's one receive thread polls its sockets with a 1 s timeout and only
 *    adds a new socket at the next round, so a connect to a broker that is
 *    up can take a second or two, longer while other clients are idle.
 *  - The connected callback (MQTTAsync_setConnected) fires on the first
 *    connect as well as on every automatic reconnect, so it alone publishes
 *    the online status and counts connects.
 *  - MQTTAsync_disconnect cannot cancel the automatic reconnection of a
 *    client that is not connected (it returns MQTTASYNC_DISCONNECTED and
 *    Paho keeps retrying); only MQTTAsync_destroy ends it. A reconnect that
 *    lands after mqtt_stop() therefore publishes offline instead of online,
 *    and mqtt_free() closes it.
 *  - Callbacks run on Paho's threads with Paho's client mutex held, and a
 *    QoS 1 send from any other thread takes that mutex. So no lock of ours
 *    is ever held across a Paho call; the order of the online and offline
 *    status messages is kept with the status_sending flag instead.
 *  - With a persistent session (cleansession=0) Paho 1.3.12 keeps QoS 1
 *    messages in flight across a reconnect only if the broker still has the
 *    session; when it comes back without one (restarted without
 *    persistence) they are dropped with no callback, and its file
 *    persistence never fsyncs. So the session stays clean and the durable
 *    messages' retries belong to the outbox publisher: an unacknowledged
 *    mqtt_publish_acked is reported lost when the connection drops (Paho's
 *    own onFailure for it, which a clean session also produces, is then
 *    ignored) and the publisher sends it again after the reconnect.
 *  - MQTT 5: the client is created for version 5, which lets one handle
 *    connect with 5 or with 3.1.1 (MQTTAsync_connect takes the version from
 *    the connect options each time). A v5 connection needs the *5 response
 *    callbacks: with the plain onSuccess Paho reports a PUBACK whose reason
 *    code says "refused" (>= 0x80) as a success. A broker that answers the
 *    v5 CONNECT with "unacceptable protocol version" (3.1.1 code 1, v5 code
 *    0x84) is asked again with 3.1.1; the version found at the first
 *    successful connect stays for the client's life (Paho's automatic
 *    reconnect reuses it).
 */
#include "protocols/mqtt.h"
#include "protocols/mqtt_reason.h"
#include "common/log.h"
#include "common/util.h"
#include "protocols/payload.h"

#include <MQTTAsync.h>
#include <MQTTReasonCodes.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MQTT_KEEPALIVE_S 30
#define MQTT_CONNECT_TIMEOUT_S 10
#define MQTT_RETRY_MIN_MS 1000
#define MQTT_RETRY_MAX_MS 60000
/* Paho's maxBufferedMessages bounds the publishes it has accepted but not
 * yet written, connected or not (see the quirks above); beyond it a publish
 * fails with -EAGAIN. maxInflight bounds the QoS 1 messages written and
 * awaiting their PUBACK; past it they wait in the same bounded queue. */
#define MQTT_MAX_BUFFERED 10000
/* The control packet type of a PUBACK (MQTT 3.1.1 and 5, section 2.1.2);
 * Paho reports it in MQTTAsync_failureData5.packet_type but does not
 * export its enum. */
#define MQTT_PACKET_PUBACK 4
#define MQTT_MAX_INFLIGHT 1000

struct mqtt {
    MQTTAsync client;
    char *uri;
    char *client_id;
    char *username;
    char *password;
    char *status_topic;
    char *online;
    char *offline;
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool tls;
    /* Paho copies what it needs at connect time; these live as long as the
     * handle anyway, since the retry thread reconnects with them. */
    MQTTAsync_connectOptions conn;
    MQTTAsync_willOptions will;
    MQTTAsync_SSLOptions ssl;

    pthread_mutex_t lock;
    pthread_cond_t cond;  /* CLOCK_MONOTONIC; retry thread and mqtt_stop wait on it */
    pthread_t retry_thread;
    bool thread_started;
    bool started;
    bool stopping;
    bool ever_connected;  /* Paho's automatic reconnect is armed from then on */
    bool connect_pending; /* a connect issued by retry_main() is outstanding */
    bool down_logged;     /* the current outage has been reported */
    int last_fail_code;
    int64_t next_attempt_ms;
    int backoff_ms;
    unsigned int rand_state;
    bool disconnect_done;
    bool status_sending;  /* on_connected is queueing the online status */
    int proto;            /* MQTT version of the next connect attempt: 5, or 4 (3.1.1) */
    struct mqtt_stats stats;
    struct mqtt_ack *acks; /* mqtt_publish_acked records Paho may still call back */
    int done_running;      /* done() calls in progress (mqtt_cancel_acked waits) */
    void (*link_cb)(void *ctx, bool up);
    void *link_ctx;
};

/*
 * One mqtt_publish_acked in flight: Paho's context for its callbacks, so it
 * lives until Paho called back (or mqtt_free, after MQTTAsync_destroy).
 * 'reported' once done() was called: by Paho's callback or because the
 * connection dropped; 'sending' while MQTTAsync_sendMessage runs, when a
 * connection loss must leave it to the sender.
 */
struct mqtt_ack {
    struct mqtt_ack *prev, *next;
    struct mqtt *m;
    void (*done)(void *ctx, int outcome);
    void *ctx;
    bool reported;
    bool sending;
    bool lost_while_sending;
    int early_outcome;    /* Paho's verdict when it came while 'sending' */
};

static void ack_unlink_locked(struct mqtt *m, struct mqtt_ack *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        m->acks = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

static bool uri_is_tls(const char *uri)
{
    return strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0 ||
           strncmp(uri, "wss://", 6) == 0;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Schedules the next connect attempt of retry_main(): capped exponential
 * backoff with +-20% jitter so a fleet of gateways does not reconnect in
 * lockstep after a broker restart. Called with the lock held. */
static void schedule_retry_locked(struct mqtt *m)
{
    int base = m->backoff_ms;
    int spread = base / 5;
    int jitter = spread ? rand_r(&m->rand_state) % (2 * spread + 1) - spread : 0;
    m->next_attempt_ms = now_mono_ms() + base + jitter;
    m->backoff_ms = base >= MQTT_RETRY_MAX_MS / 2 ? MQTT_RETRY_MAX_MS : base * 2;
    pthread_cond_broadcast(&m->cond);
}

/* Why a connect failed, in words an operator can act on: the broker's
 * CONNACK refusal, or for a TLS URI the causes Paho folds into its generic
 * "TCP/TLS connect failure" (nothing listening, TLS handshake failed, server
 * certificate or host name not accepted). Never contains the password. */
static void connect_reason(const struct mqtt *m, int code, const char *message, char *buf,
                           size_t len)
{
    if (code >= 0x80)
        snprintf(buf, len, "broker refused the connection: %s (CONNACK reason code 0x%02X)",
                 mqtt_connack5_reason(code), code);
    else if (code > 0)
        snprintf(buf, len, "broker refused the connection: %s (CONNACK code %d)",
                 mqtt_connack_reason(code), code);
    else if (m->tls && code == MQTTASYNC_FAILURE)
        snprintf(buf, len,
                 "%s (paho code %d): no TLS session: the broker is unreachable, the TLS "
                 "handshake failed, or the server certificate was refused (it must chain to "
                 "tls.ca_file and name the host of the uri)",
                 mqtt_paho_reason(code, message), code);
    else
        snprintf(buf, len, "%s (paho code %d)", mqtt_paho_reason(code, message), code);
}

/* Logs a failed connect once per outage (and again only if the reason
 * changes), so a broker that stays down does not flood the journal. Called
 * with the lock held. */
static void log_connect_failure_locked(struct mqtt *m, int code, const char *message)
{
    char why[512];
    connect_reason(m, code, message, why, sizeof(why));
    if (!m->down_logged || code != m->last_fail_code) {
        log_warn("mqtt: cannot connect to %s: %s; retrying with backoff up to %d s", m->uri,
                 why, MQTT_RETRY_MAX_MS / 1000);
        m->down_logged = true;
        m->last_fail_code = code;
    } else {
        log_debug("mqtt: connect to %s failed again: %s", m->uri, why);
    }
}

/* Connect options for MQTT version 'proto' (5 or 4) into m->conn. A v5
 * session starts clean (cleanstart), a 3.1.1 one is clean (cleansession):
 * the outbox owns the retries either way. */
static void set_proto(struct mqtt *m, int proto)
{
    m->proto = proto;
    m->conn.MQTTVersion = proto == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    m->conn.cleanstart = proto == 5;
    m->conn.cleansession = proto != 5;
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
    struct mqtt *m = ctx;
    int code = resp ? resp->code : MQTTASYNC_FAILURE;
    const char *message = resp ? resp->message : NULL;

    pthread_mutex_lock(&m->lock);
    m->connect_pending = false;
    if (!m->stopping && !m->ever_connected && m->proto == 5 && mqtt_refuses_v5(code)) {
        /* Before the first connection only: Paho's automatic reconnect
         * keeps the version of the connection it restores. */
        log_notice("mqtt: %s does not accept MQTT 5 (CONNACK code %d); using MQTT 3.1.1, with "
                   "which a publish the broker refuses (ACL) cannot be seen (docs/MQTT.md)",
                   m->uri, code);
        set_proto(m, 4);
        m->next_attempt_ms = now_mono_ms();
        pthread_cond_broadcast(&m->cond);
    } else if (!m->stopping) {
        log_connect_failure_locked(m, code, message);
        /* Once connected, Paho's automatic reconnect owns the retries. */
        if (!m->ever_connected)
            schedule_retry_locked(m);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Hands one message to Paho. Never waits for the network. */
static int paho_send(struct mqtt *m, const char *topic, const void *payload, int len, int qos,
                     bool retain, MQTTAsync_token *ret_token)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

    msg.payload = (void *)payload;
    msg.payloadlen = len;
    msg.qos = qos;
    msg.retained = retain ? 1 : 0;

    int rc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);
    if (rc == MQTTASYNC_SUCCESS && ret_token)
        *ret_token = ro.token;
    return rc;
}

/* Calls the link callback, counted like done() so mqtt_cancel_acked and
 * mqtt_set_link_callback(NULL) can wait for it to return. */
static void notify_link(struct mqtt *m, bool up)
{
    pthread_mutex_lock(&m->lock);
    void (*cb)(void *ctx, bool up) = m->link_cb;
    void *ctx = m->link_ctx;
    if (cb)
        m->done_running++;
    pthread_mutex_unlock(&m->lock);
    if (!cb)
        return;
    cb(ctx, up);
    pthread_mutex_lock(&m->lock);
    m->done_running--;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* The TCP port of a broker URI: the one after the host, else the scheme's
 * default (tcp/mqtt 1883, ssl/mqtts 8883, ws 80, wss 443). 0 if unknown. */
static int uri_port(const char *uri)
{
    const char *h = strstr(uri, "://");
    if (!h)
        return 0;
    h += 3;
    if (*h == '[') {
        h = strchr(h, ']');
        if (!h)
            return 0;
    }
    const char *c = strchr(h, ':');
    if (c) {
        char *end;
        long port = strtol(c + 1, &end, 10);
        return port > 0 && port < 65536 ? (int)port : 0;
    }
    if (strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0)
        return 8883;
    if (strncmp(uri, "wss://", 6) == 0)
        return 443;
    if (strncmp(uri, "ws://", 5) == 0)
        return 80;
    return 1883;
}

/*
 * Paho (1.3.11) never sets TCP_NODELAY and has no hook for socket options,
 * so each small publish after the first few waits for the broker's delayed
 * ACK (~40 ms, docs/PERFORMANCE.md "Latency"). Once connected, find Paho's
 * socket among ours - the TCP socket whose peer port is the broker's - and
 * set it. Modbus TCP sockets have it from libmodbus already; any other TCP
 * socket to that port would only lose Nagle's delay, which is harmless.
 */
static void set_broker_nodelay(struct mqtt *m)
{
    int port = uri_port(m->uri);
    DIR *d = port ? opendir("/proc/self/fd") : NULL;
    if (!d)
        return;
    struct dirent *e;
    int set = 0;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || fd < 0 || fd == dirfd(d))
            continue;
        int type = 0, proto = 0, one = 1;
        socklen_t len = sizeof(type);
        if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
            continue;
        len = sizeof(proto);
        if (getsockopt((int)fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 ||
            proto != IPPROTO_TCP)
            continue;
        struct sockaddr_storage sa;
        len = sizeof(sa);
        if (getpeername((int)fd, (struct sockaddr *)&sa, &len) < 0)
            continue;
        int peer = sa.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
                   : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                              : -1;
        if (peer == port &&
            setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
            set++;
    }
    closedir(d);
    log_debug("mqtt: TCP_NODELAY set on %d socket(s) to port %d", set, port);
}

static void on_connected(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    UNUSED(cause);

    pthread_mutex_lock(&m->lock);
    bool stopping = m->stopping;
    m->ever_connected = true;
    m->connect_pending = false;
    m->down_logged = false;
    m->backoff_ms = MQTT_RETRY_MIN_MS;
    m->stats.connected = true;
    m->stats.connects++;
    m->stats.proto = m->proto;
    int proto = m->proto;
    if (!stopping)
        m->status_sending = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);

    log_info("mqtt: connected to %s (MQTT %s)", m->uri, proto == 5 ? "5" : "3.1.1");
    set_broker_nodelay(m);

    /* A reconnect that Paho completed after mqtt_stop (see the quirks) must
     * not leave "online" retained. */
    const char *status = stopping ? m->offline : m->online;
    int rc = paho_send(m, m->status_topic, status, (int)strlen(status), 1, true, NULL);

    if (!stopping) {
        pthread_mutex_lock(&m->lock);
        m->status_sending = false;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
    if (rc != MQTTASYNC_SUCCESS)
        log_warn("mqtt: cannot publish the status on %s: %s (paho code %d)", m->status_topic,
                 mqtt_paho_reason(rc, NULL), rc);
    if (!stopping)
        notify_link(m, true);
}

/* Reports every unreported acked publish as lost (the link dropped). The
 * records stay linked for Paho's late callback. */
static void fail_pending_acks(struct mqtt *m)
{
    struct pending {
        void (*done)(void *ctx, int outcome);
        void *ctx;
    } *list = NULL;
    size_t n = 0, cap = 0;

    pthread_mutex_lock(&m->lock);
    for (struct mqtt_ack *a = m->acks; a; a = a->next) {
        if (a->reported)
            continue;
        if (a->sending) {
            a->lost_while_sending = true;
            continue;
        }
        a->reported = true;
        list = xgrow(list, &cap, n + 1, sizeof(*list));
        list[n].done = a->done;
        list[n].ctx = a->ctx;
        n++;
    }
    m->stats.ack_failed += n;
    m->done_running++;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++)
        list[i].done(list[i].ctx, MQTT_LOST);
    free(list);
    pthread_mutex_lock(&m->lock);
    m->done_running--;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct mqtt *m = ctx;

    pthread_mutex_lock(&m->lock);
    m->stats.connected = false;
    m->stats.connection_lost++;
    /* The first failed reconnect then says why, once. */
    m->down_logged = false;
    bool stopping = m->stopping;
    pthread_mutex_unlock(&m->lock);

    if (!stopping)
        log_warn("mqtt: connection to %s lost%s%s; reconnecting", m->uri, cause ? ": " : "",
                 cause ? cause : "");
    fail_pending_acks(m);
    notify_link(m, false);
}

static void count_outcome_locked(struct mqtt *m, int outcome)
{
    if (outcome == MQTT_DELIVERED)
        m->stats.acked++;
    else if (outcome == MQTT_LOST)
        m->stats.ack_failed++;
    else
        m->stats.ack_refused++;
}

/* Paho's verdict on one acked publish: MQTT_DELIVERED, MQTT_LOST or a
 * refusal's reason code. */
static void ack_finish(struct mqtt_ack *a, int outcome)
{
    struct mqtt *m = a->m;
    bool report;

    pthread_mutex_lock(&m->lock);
    report = !a->reported && !a->sending;
    if (a->sending) {
        /* Paho answered before MQTTAsync_sendMessage returned: the sender
         * reports it. */
        a->reported = true;
        a->early_outcome = outcome;
        pthread_mutex_unlock(&m->lock);
        return;
    }
    a->reported = true;
    if (report)
        count_outcome_locked(m, outcome);
    ack_unlink_locked(m, a);
    if (report)
        m->done_running++;
    pthread_mutex_unlock(&m->lock);
    if (report) {
        a->done(a->ctx, outcome);
        pthread_mutex_lock(&m->lock);
        m->done_running--;
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
    }
    free(a);
}

static void on_ack_success(void *ctx, MQTTAsync_successData *resp)
{
    UNUSED(resp);
    ack_finish(ctx, MQTT_DELIVERED);
}

static void on_ack_failure(void *ctx, MQTTAsync_failureData *resp)
{
    UNUSED(resp);
    ack_finish(ctx, MQTT_LOST);
}

/* MQTT 5: a PUBACK with a reason code below 0x80 (0 success, 0x10 "no
 * matching subscribers") is a delivery. */
static void on_ack_success5(void *ctx, MQTTAsync_successData5 *resp)
{
    UNUSED(resp);
    ack_finish(ctx, MQTT_DELIVERED);
}

/* MQTT 5: the broker answered the PUBLISH with a refusal (PUBACK reason code
 * >= 0x80: not authorized, quota exceeded, ...), or Paho gave it up. */
static void on_ack_failure5(void *ctx, MQTTAsync_failureData5 *resp)
{
    int rc = resp ? (int)resp->reasonCode : 0;
    bool refused = resp && resp->packet_type == MQTT_PACKET_PUBACK && rc >= 0x80;
    ack_finish(ctx, refused ? rc : MQTT_LOST);
}

static int message_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    UNUSED(ctx);
    UNUSED(topic_len);
    /* The gateway subscribes to nothing; free whatever a broker pushes. */
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData *resp)
{
    struct mqtt *m = ctx;
    UNUSED(resp);
    pthread_mutex_lock(&m->lock);
    m->disconnect_done = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData *resp)
{
    UNUSED(resp);
    on_disconnect_done(ctx, NULL);
}

/* Issues connect attempts until the first one succeeds (see the quirk at the
 * top of the file), then idles until mqtt_stop. */
static void *retry_main(void *arg)
{
    struct mqtt *m = arg;

    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        if (m->ever_connected || m->connect_pending) {
            pthread_cond_wait(&m->cond, &m->lock);
            continue;
        }
        int64_t wait = m->next_attempt_ms - now_mono_ms();
        if (wait > 0) {
            struct timespec ts = mono_deadline(wait);
            pthread_cond_timedwait(&m->cond, &m->lock, &ts);
            continue;
        }
        m->connect_pending = true;
        pthread_mutex_unlock(&m->lock);

        int rc = MQTTAsync_connect(m->client, &m->conn);

        pthread_mutex_lock(&m->lock);
        if (rc != MQTTASYNC_SUCCESS) {
            /* Refused before any I/O: no callback will come. */
            m->connect_pending = false;
            log_connect_failure_locked(m, rc, NULL);
            schedule_retry_locked(m);
        }
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int mqtt_new(const struct config *cfg, const char *online_payload, struct mqtt **ret)
{
    if (!cfg || !cfg->mqtt_uri || !*cfg->mqtt_uri || !cfg->gateway_id || !online_payload ||
        !ret)
        return -EINVAL;

    int r;
    struct mqtt *m = xcalloc(1, sizeof(*m));
    pthread_condattr_t ca;

    m->uri = xstrdup(cfg->mqtt_uri);
    m->client_id = cfg->mqtt_client_id && *cfg->mqtt_client_id
                       ? xstrdup(cfg->mqtt_client_id)
                       : xasprintf("parkgw-%s", cfg->gateway_id);
    m->username = dup_or_null(cfg->mqtt_username);
    m->password = dup_or_null(cfg->mqtt_password);
    char *base = topic_base(cfg->topic_prefix ? cfg->topic_prefix : "park", cfg->gateway_id);
    m->status_topic = topic_status(base);
    free(base);
    m->online = xstrdup(online_payload);
    m->offline = payload_status_offline();
    m->tls = uri_is_tls(m->uri);
    m->backoff_ms = MQTT_RETRY_MIN_MS;
    m->rand_state = (unsigned int)now_mono_ms() ^ (unsigned int)(uintptr_t)m;

    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_5;   /* connects with 5 or 3.1.1 (see the quirks) */
    /* Durability is the SQLite outbox's job: nothing queues in Paho while the
     * broker is away, a publish then fails fast with -ENOTCONN. */
    co.sendWhileDisconnected = 0;
    co.maxBufferedMessages = MQTT_MAX_BUFFERED;
    int rc = MQTTAsync_createWithOptions(&m->client, m->uri, m->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        log_err("mqtt: cannot create a client for %s: %s (paho code %d)", m->uri,
                mqtt_paho_reason(rc, NULL), rc);
        m->client = NULL;
        r = mqtt_paho_to_errno(rc);
        goto out_free;
    }
    /* Paho's own trace output stays off even if MQTT_C_CLIENT_TRACE is set. */
    MQTTAsync_setTraceCallback(NULL);
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_FATAL);

    rc = MQTTAsync_setCallbacks(m->client, m, on_connection_lost, message_arrived, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setConnected(m->client, m, on_connected);
    if (rc != MQTTASYNC_SUCCESS) {
        log_err("mqtt: cannot set callbacks: %s (paho code %d)", mqtt_paho_reason(rc, NULL), rc);
        r = mqtt_paho_to_errno(rc);
        goto out_free;
    }

    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    will.topicName = m->status_topic;
    will.message = m->offline;
    will.qos = 1;
    will.retained = 1;
    m->will = will;

    MQTTAsync_connectOptions conn = MQTTAsync_connectOptions_initializer5;
    conn.keepAliveInterval = MQTT_KEEPALIVE_S;
    conn.maxInflight = MQTT_MAX_INFLIGHT;
    conn.connectTimeout = MQTT_CONNECT_TIMEOUT_S;
    conn.automaticReconnect = 1;
    conn.minRetryInterval = MQTT_RETRY_MIN_MS / 1000;
    conn.maxRetryInterval = MQTT_RETRY_MAX_MS / 1000;
    conn.username = m->username;
    conn.password = m->password;
    conn.onFailure = on_connect_failure;
    conn.context = m;
    m->conn = conn;
    m->conn.will = &m->will;
    set_proto(m, 5);

    if (m->tls) {
        MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
        if (cfg->tls_set) {
            m->ca_file = dup_or_null(cfg->tls.ca_file);
            m->cert_file = dup_or_null(cfg->tls.cert_file);
            m->key_file = dup_or_null(cfg->tls.key_file);
        }
        /* Without a ca_file OpenSSL's default trust store applies; the server
         * certificate and its host name are always verified. */
        ssl.trustStore = m->ca_file;
        ssl.keyStore = m->cert_file;
        ssl.privateKey = m->key_file;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1;
        m->ssl = ssl;
        m->conn.ssl = &m->ssl;
    } else {
        if (cfg->tls_set)
            log_warn("mqtt: tls settings are ignored: %s is not an ssl:// or mqtts:// URI",
                     m->uri);
        if (m->password && *m->password)
            log_notice("mqtt: %s is not TLS; the MQTT password crosses the network in plaintext",
                       m->uri);
    }

    *ret = m;
    return 0;

out_free:
    mqtt_free(m);
    return r;
}

int mqtt_start(struct mqtt *m)
{
    if (!m)
        return -EINVAL;

    pthread_mutex_lock(&m->lock);
    if (m->started || m->stopping) {
        pthread_mutex_unlock(&m->lock);
        return -EALREADY;
    }
    m->started = true;
    m->next_attempt_ms = now_mono_ms();
    int r = -pthread_create(&m->retry_thread, NULL, retry_main, m);
    if (r == 0)
        m->thread_started = true;
    else
        m->started = false;
    pthread_mutex_unlock(&m->lock);
    return r;
}

int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, size_t len, int qos,
                 bool retain)
{
    if (!m || !topic || (!payload && len) || qos < 0 || qos > 2)
        return -EINVAL;

    pthread_mutex_lock(&m->lock);
    int r = 0;
    if (!m->stats.connected || m->stopping)
        r = -ENOTCONN;
    else if (len > INT_MAX)
        r = -EMSGSIZE;
    if (r < 0) {
        m->stats.dropped++;
        pthread_mutex_unlock(&m->lock);
        return r;
    }
    pthread_mutex_unlock(&m->lock);

    /* Outside our lock: Paho's callbacks take it from Paho's threads. */
    int rc = paho_send(m, topic, payload, (int)len, qos, retain, NULL);

    pthread_mutex_lock(&m->lock);
    if (rc == MQTTASYNC_SUCCESS) {
        m->stats.published++;
    } else {
        m->stats.dropped++;
        r = rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EAGAIN;
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

int mqtt_publish_acked(struct mqtt *m, const char *topic, const char *payload, size_t len,
                       int qos, bool retain, void (*done)(void *ctx, int outcome), void *ctx)
{
    if (!m || !topic || (!payload && len) || qos < 0 || qos > 2 || !done)
        return -EINVAL;
    if (len > INT_MAX)
        return -EMSGSIZE;

    struct mqtt_ack *a = xcalloc(1, sizeof(*a));
    a->m = m;
    a->done = done;
    a->ctx = ctx;
    a->sending = true;

    pthread_mutex_lock(&m->lock);
    if (!m->stats.connected || m->stopping) {
        m->stats.dropped++;
        pthread_mutex_unlock(&m->lock);
        free(a);
        return -ENOTCONN;
    }
    a->next = m->acks;
    if (m->acks)
        m->acks->prev = a;
    m->acks = a;
    bool v5 = m->stats.proto == 5;
    pthread_mutex_unlock(&m->lock);

    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    msg.payload = (void *)payload;
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain ? 1 : 0;
    /* Paho refuses the other version's callbacks (MQTTASYNC_BAD_MQTT_OPTION). */
    if (v5) {
        ro.onSuccess5 = on_ack_success5;
        ro.onFailure5 = on_ack_failure5;
    } else {
        ro.onSuccess = on_ack_success;
        ro.onFailure = on_ack_failure;
    }
    ro.context = a;
    /* Outside our lock: Paho's callbacks take it from Paho's threads. */
    int rc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);

    pthread_mutex_lock(&m->lock);
    a->sending = false;
    if (rc != MQTTASYNC_SUCCESS) {
        /* Refused: no callback will come. */
        m->stats.dropped++;
        ack_unlink_locked(m, a);
        pthread_mutex_unlock(&m->lock);
        free(a);
        return rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EAGAIN;
    }
    m->stats.published++;
    if (!a->reported && !a->lost_while_sending) {
        pthread_mutex_unlock(&m->lock);
        return 0;
    }
    /* The connection dropped, or Paho answered, while it was being sent. */
    int outcome = a->lost_while_sending || !a->reported ? MQTT_LOST : a->early_outcome;
    bool paho_done = a->reported;   /* Paho's callback came: nothing will follow */
    a->reported = true;
    count_outcome_locked(m, outcome);
    if (paho_done)
        ack_unlink_locked(m, a);
    pthread_mutex_unlock(&m->lock);
    done(ctx, outcome);
    if (paho_done)
        free(a);
    return 0;
}

void mqtt_cancel_acked(struct mqtt *m, void (*done)(void *ctx, int outcome))
{
    pthread_mutex_lock(&m->lock);
    for (struct mqtt_ack *a = m->acks; a; a = a->next)
        if (a->done == done)
            a->reported = true;
    while (m->done_running > 0)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

void mqtt_set_link_callback(struct mqtt *m, void (*cb)(void *ctx, bool up), void *ctx)
{
    pthread_mutex_lock(&m->lock);
    m->link_cb = cb;
    m->link_ctx = ctx;
    /* A callback still running with the old values finishes first. */
    while (m->done_running > 0)
        pthread_cond_wait(&m->cond, &m->lock);
    pthread_mutex_unlock(&m->lock);
}

void mqtt_stop(struct mqtt *m, int timeout_ms)
{
    if (!m)
        return;
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t deadline = now_mono_ms() + timeout_ms;

    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    /* Paho sends queued messages in order: once an online status being
     * queued right now is in, the offline one below goes after it. */
    while (m->status_sending)
        pthread_cond_wait(&m->cond, &m->lock);
    bool connected = m->stats.connected;
    pthread_mutex_unlock(&m->lock);

    if (m->thread_started) {
        pthread_join(m->retry_thread, NULL);
        m->thread_started = false;
    }
    if (!m->client)
        return;

    /* A clean DISCONNECT makes the broker drop the LWT, so the offline
     * status has to be published by hand. When not connected there is
     * nothing to send: the broker fired the LWT when the link dropped. */
    if (connected) {
        MQTTAsync_token tok = 0;
        int rc = paho_send(m, m->status_topic, m->offline, (int)strlen(m->offline), 1,
                                  true, &tok);
        if (rc == MQTTASYNC_SUCCESS) {
            int64_t left = deadline - now_mono_ms();
            rc = MQTTAsync_waitForCompletion(m->client, tok,
                                             (unsigned long)(left > 0 ? left : 0));
        }
        if (rc != MQTTASYNC_SUCCESS)
            log_warn("mqtt: offline status not confirmed by the broker: %s (paho code %d)",
                     mqtt_paho_reason(rc, NULL), rc);
    }

    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    int64_t left = deadline - now_mono_ms();
    dopt.timeout = (int)(left > 0 ? left : 0);
    dopt.onSuccess = on_disconnect_done;
    dopt.onFailure = on_disconnect_failed;
    dopt.context = m;
    int rc = MQTTAsync_disconnect(m->client, &dopt);

    pthread_mutex_lock(&m->lock);
    if (rc == MQTTASYNC_SUCCESS) {
        struct timespec ts = mono_deadline(left > 0 ? left : 0);
        while (!m->disconnect_done)
            if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
                break;
    }
    m->stats.connected = false;
    pthread_mutex_unlock(&m->lock);
}

void mqtt_free(struct mqtt *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (m->thread_started)
        pthread_join(m->retry_thread, NULL);
    if (m->client)
        MQTTAsync_destroy(&m->client);
    /* Paho calls nothing back after destroy: records it never answered go. */
    while (m->acks) {
        struct mqtt_ack *a = m->acks;
        m->acks = a->next;
        free(a);
    }

    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m->uri);
    free(m->client_id);
    free(m->username);
    if (m->password) {
        explicit_bzero(m->password, strlen(m->password));
        free(m->password);
    }
    free(m->status_topic);
    free(m->online);
    free(m->offline);
    free(m->ca_file);
    free(m->cert_file);
    free(m->key_file);
    free(m);
}

void mqtt_get_stats(struct mqtt *m, struct mqtt_stats *ret)
{
    pthread_mutex_lock(&m->lock);
    *ret = m->stats;
    pthread_mutex_unlock(&m->lock);
}
