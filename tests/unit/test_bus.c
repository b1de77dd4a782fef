/*
 * test_bus.c - the bus against a small libmodbus TCP server running in a
 * thread on 127.0.0.1 (ephemeral port): register and bit reads, exception
 * mapping, a timeout whose late reply must not be taken for the next answer,
 * a dropped connection, a refused one with the reconnect backoff (0.5 s,
 * then 1 s, fast -ENOTCONN in between, reset once connected), argument
 * checks and error texts; then the TCP exchange (bus.c + mbtcp.c) against a
 * raw socket server that checks every request byte by byte and answers in
 * one write, byte by byte, late, with a wrong transaction id, unit or
 * trailing bytes, an exception, silence or a close, with signals
 * interrupting the wait; then RTU against a fake meter on a pseudo-terminal
 * (exception, bad CRC, a late reply that must be discarded, RS-485 mode
 * refused by a pty without failing, the inter-frame delay, and a device that
 * vanishes and comes back under the same path).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/mbtcp.h"
#include "tests/unit/check.h"

enum srv_mode { SRV_NORMAL, SRV_LATE_ONCE, SRV_DROP_ONCE };

#define LATE_REPLY_MS 500
#define CLIENT_TIMEOUT_MS 200

struct server {
    modbus_t *ctx;
    modbus_mapping_t *map;
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int mode;
    atomic_int late_sent;
    atomic_int requests;
    atomic_int stop;
};

static void serve_connection(struct server *s)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];

    for (;;) {
        /* Blocks until a request or until the client closes (rc -1). */
        int rc = modbus_receive(s->ctx, query);
        if (rc < 0)
            break;
        if (rc == 0)
            continue;
        atomic_fetch_add(&s->requests, 1);
        int mode = atomic_exchange(&s->mode, SRV_NORMAL);
        if (mode == SRV_DROP_ONCE)
            break;
        if (mode == SRV_LATE_ONCE) {
            sleep_ms(LATE_REPLY_MS);
            modbus_reply(s->ctx, query, rc, s->map);
            atomic_store(&s->late_sent, 1);
            continue;
        }
        modbus_reply(s->ctx, query, rc, s->map);
    }
    modbus_close(s->ctx);
}

static void *server_main(void *arg)
{
    struct server *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = { .fd = s->listen_fd, .events = POLLIN };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        if (modbus_tcp_accept(s->ctx, &s->listen_fd) < 0)
            continue;
        serve_connection(s);
    }
    return NULL;
}

/* The port of listening socket fd in *port, and fn(arg) started on *thread. */
static int serve_in_thread(int fd, int *port, pthread_t *thread, void *(*fn)(void *), void *arg)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return pthread_create(thread, NULL, fn, arg) == 0 ? 0 : -1;
}

static void stop_thread(atomic_int *stop, pthread_t thread, int listen_fd)
{
    atomic_store(stop, 1);
    pthread_join(thread, NULL);
    close(listen_fd);
}

static int server_start(struct server *s)
{
    memset(s, 0, sizeof(*s));
    /* Port 0: libmodbus passes it to bind(), which picks a free port. */
    s->ctx = modbus_new_tcp("127.0.0.1", 0);
    if (!s->ctx)
        return -1;
    /* 20 coils, 20 discrete inputs, 20 holding, 20 input registers. */
    s->map = modbus_mapping_new(20, 20, 20, 20);
    for (int i = 0; i < 20; i++) {
        s->map->tab_registers[i] = (uint16_t)(1000 + i);
        s->map->tab_input_registers[i] = (uint16_t)(2000 + i);
        s->map->tab_bits[i] = (uint8_t)(i % 3 == 0);
        s->map->tab_input_bits[i] = (uint8_t)(i % 2);
    }
    s->listen_fd = modbus_tcp_listen(s->ctx, 4);
    return serve_in_thread(s->listen_fd, &s->port, &s->thread, server_main, s);
}

static void server_stop(struct server *s)
{
    stop_thread(&s->stop, s->thread, s->listen_fd);
    modbus_mapping_free(s->map);
    modbus_free(s->ctx);
}

static struct cfg_bus tcp_cfg(int port)
{
    return (struct cfg_bus){ .name = "test", .type = BUS_TCP, .host = "127.0.0.1", .port = port,
                             .timeout_ms = CLIENT_TIMEOUT_MS };
}

/* The client's socket to the test server, found among our fds. */
static int find_client_fd(int port)
{
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
            peer.sin_family == AF_INET && ntohs(peer.sin_port) == port)
            return fd;
    }
    return -1;
}

static void test_reads(struct server *s, struct bus *b)
{
    uint16_t out[32];

    CHECK(!bus_is_connected(b));
    struct plan_req hr = {.fc = 3, .address = 2, .count = 5};
    memset(out, 0, sizeof(out));
    CHECK_INT(bus_read(b, 1, &hr, out), 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(out[i], 1002 + i);
    CHECK(bus_is_connected(b));

    /* Sockets must not leak into children (the sim, scripts). */
    int fd = find_client_fd(s->port);
    CHECK(fd >= 0);
    if (fd >= 0)
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    struct plan_req ir = {.fc = 4, .address = 18, .count = 2};
    CHECK_INT(bus_read(b, 7, &ir, out), 0);
    CHECK_INT(out[0], 2018);
    CHECK_INT(out[1], 2019);

    /* Coils: i % 3 == 0 -> 1 0 0 1 0 0 1 for 0..6. */
    struct plan_req co = {.fc = 1, .address = 0, .count = 7};
    CHECK_INT(bus_read(b, 1, &co, out), 0);
    static const uint16_t coils[7] = { 1, 0, 0, 1, 0, 0, 1 };
    for (int i = 0; i < 7; i++)
        CHECK_INT(out[i], coils[i]);

    /* Discrete inputs: i % 2 -> 1 0 1 for 5..7. */
    struct plan_req di = {.fc = 2, .address = 5, .count = 3};
    CHECK_INT(bus_read(b, 1, &di, out), 0);
    CHECK_INT(out[0], 1);
    CHECK_INT(out[1], 0);
    CHECK_INT(out[2], 1);
}

static void test_exception(struct bus *b)
{
    uint16_t out[4];

    /* Registers 100..101 are outside the 20-register map. */
    struct plan_req bad = {.fc = 3, .address = 100, .count = 2};
    int rc = bus_read(b, 1, &bad, out);
    CHECK_INT(rc, -(BUS_EXC_BASE + 2));
    CHECK_STR(bus_strerror(rc), "exception 2 (illegal data address)");
    /* An exception is a valid answer: the connection stays and works. */
    CHECK(bus_is_connected(b));
    struct plan_req ok = {.fc = 3, .address = 0, .count = 1};
    CHECK_INT(bus_read(b, 1, &ok, out), 0);
    CHECK_INT(out[0], 1000);
}

static void test_timeout_late_reply(struct server *s, struct bus *b)
{
    uint16_t out[4] = { 0 };

    atomic_store(&s->late_sent, 0);
    atomic_store(&s->mode, SRV_LATE_ONCE);
    struct plan_req first = {.fc = 3, .address = 0, .count = 2};
    int64_t t0 = now_mono_ms();
    CHECK_INT(bus_read(b, 1, &first, out), -ETIMEDOUT);
    int64_t dt = now_mono_ms() - t0;
    CHECK(dt >= CLIENT_TIMEOUT_MS - 20 && dt < LATE_REPLY_MS);
    CHECK(!bus_is_connected(b));

    /* Let the server send its late reply (to registers 0..1 = 1000, 1001)
     * before the next request goes out. */
    for (int i = 0; i < 500 && !atomic_load(&s->late_sent); i++)
        sleep_ms(10);
    CHECK(atomic_load(&s->late_sent));

    /* The next answer is the one for registers 10..11. */
    struct plan_req second = {.fc = 3, .address = 10, .count = 2};
    CHECK_INT(bus_read(b, 1, &second, out), 0);
    CHECK_INT(out[0], 1010);
    CHECK_INT(out[1], 1011);
    CHECK(bus_is_connected(b));
}

static void test_drop(struct server *s, struct bus *b)
{
    uint16_t out[4];

    atomic_store(&s->mode, SRV_DROP_ONCE);
    struct plan_req r = {.fc = 4, .address = 0, .count = 2};
    CHECK_INT(bus_read(b, 1, &r, out), -ECONNRESET);
    CHECK(!bus_is_connected(b));
    CHECK_INT(bus_read(b, 1, &r, out), 0);
    CHECK_INT(out[0], 2000);
    CHECK_INT(out[1], 2001);
}

static void test_refused(void)
{
    /* A bound but not listening socket owns a port nobody accepts on. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);

    struct cfg_bus cfg = tcp_cfg(ntohs(sa.sin_port));
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    CHECK_INT(bus_connect(b), -ECONNREFUSED);
    uint16_t out[2];
    struct plan_req r = {.fc = 3, .address = 0, .count = 1};
    /* Backoff: the next attempt waits 500 ms; until then reads fail at once
     * without a connect (a dead gateway costs its meters nothing). */
    int64_t t0 = now_mono_ms();
    CHECK_INT(bus_read(b, 1, &r, out), -ENOTCONN);
    CHECK(now_mono_ms() - t0 < 50);
    CHECK(!bus_is_connected(b));
    int64_t w = bus_connect_wait_ms(b);
    CHECK(w > 400 && w <= BUS_BACKOFF_MIN_MS);
    CHECK_CONTAINS(bus_strerror(-ENOTCONN), "not connected");
    sleep_ms(w + 20);
    CHECK_INT(bus_read(b, 1, &r, out), -ECONNREFUSED);
    /* Second failure: 1000 ms. */
    w = bus_connect_wait_ms(b);
    CHECK(w > 900 && w <= 2 * BUS_BACKOFF_MIN_MS);
    sleep_ms(520);
    CHECK_INT(bus_read(b, 1, &r, out), -ENOTCONN);
    /* The gateway comes back (the socket listens: the kernel completes the
     * handshake): the attempt after the wait connects and the backoff resets. */
    CHECK_INT(listen(fd, 4), 0);
    sleep_ms(bus_connect_wait_ms(b) + 20);
    CHECK_INT(bus_connect(b), 0);
    CHECK(bus_is_connected(b));
    CHECK_INT(bus_connect_wait_ms(b), 0);
    bus_free(b);
    close(fd);
}

/* ---- TCP exchange: a raw Modbus TCP server that checks each request ---- */

enum raw_mode {
    RAW_ONE_WRITE,   /* the reply in one write */
    RAW_BYTEWISE,    /* one byte per write, 2 ms apart */
    RAW_SPLIT_LATE,  /* header now, the rest after 60 ms (signals meanwhile) */
    RAW_WRONG_TID,   /* the previous request's transaction id */
    RAW_WRONG_UNIT,  /* unit id + 1 */
    RAW_OTHER_UNIT,  /* unit id 42 (fine when the request had 0 or 255) */
    RAW_TRAILING,    /* the reply and one more byte in one write */
    RAW_EXCEPTION,   /* exception 2 */
    RAW_SILENT,      /* no reply */
    RAW_CLOSE,       /* closes the connection instead of replying */
};

struct raw_server {
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int mode;
    atomic_int stop;
    atomic_int accepts;
    atomic_int requests;
    atomic_int bad_requests; /* a request byte that was not what we sent */
    /* what the next request must be */
    atomic_int exp_unit, exp_fc, exp_addr, exp_count;
};

/* Reads exactly n bytes from fd (socket or pty): 0, or -1 at EOF, on an
 * error, or once *stop is set. */
static int read_exact(atomic_int *stop, int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (atomic_load(stop))
            return -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Register i holds 0x4000 + address + i; bit i is set when (address + i) % 3 == 0. */
static size_t raw_reply(uint8_t *f, const uint8_t *q)
{
    int fc = q[7], addr = q[8] << 8 | q[9], count = q[10] << 8 | q[11];
    size_t data = fc <= 2 ? ((size_t)count + 7) / 8 : 2 * (size_t)count;
    memcpy(f, q, 4);
    f[4] = (uint8_t)((3 + data) >> 8);
    f[5] = (uint8_t)(3 + data);
    f[6] = q[6];
    f[7] = (uint8_t)fc;
    f[8] = (uint8_t)data;
    memset(f + 9, 0, data);
    for (int i = 0; i < count; i++) {
        if (fc <= 2) {
            if ((addr + i) % 3 == 0)
                f[9 + i / 8] |= (uint8_t)(1u << (i % 8));
        } else {
            uint16_t v = (uint16_t)(0x4000 + addr + i);
            f[9 + 2 * i] = (uint8_t)(v >> 8);
            f[10 + 2 * i] = (uint8_t)v;
        }
    }
    return 9 + data;
}

static void raw_check_request(struct raw_server *s, const uint8_t *q, int *last_tid)
{
    int tid = q[0] << 8 | q[1];
    bool ok = q[2] == 0 && q[3] == 0 && q[4] == 0 && q[5] == 6 &&
              q[6] == atomic_load(&s->exp_unit) && q[7] == atomic_load(&s->exp_fc) &&
              (q[8] << 8 | q[9]) == atomic_load(&s->exp_addr) &&
              (q[10] << 8 | q[11]) == atomic_load(&s->exp_count);
    /* One more than the last request's, across reconnects too. */
    if (*last_tid >= 0 && tid != ((*last_tid + 1) & 0xFFFF))
        ok = false;
    *last_tid = tid;
    if (!ok) {
        fprintf(stderr, "raw server: unexpected request");
        for (int i = 0; i < MBTCP_REQ_LEN; i++)
            fprintf(stderr, " %02x", q[i]);
        fprintf(stderr, "\n");
        atomic_fetch_add(&s->bad_requests, 1);
    }
}

static void raw_serve(struct raw_server *s, int fd, int *last_tid)
{
    uint8_t q[MBTCP_REQ_LEN], f[MBTCP_MAX_ADU + 2];

    while (read_exact(&s->stop, fd, q, sizeof(q)) == 0) {
        atomic_fetch_add(&s->requests, 1);
        raw_check_request(s, q, last_tid);
        size_t n = raw_reply(f, q);
        int mode = atomic_exchange(&s->mode, RAW_ONE_WRITE);
        switch (mode) {
        case RAW_SILENT:
            continue;
        case RAW_CLOSE:
            return;
        case RAW_BYTEWISE:
            for (size_t i = 0; i < n; i++) {
                if (write_all(fd, f + i, 1) < 0)
                    return;
                sleep_ms(2);
            }
            continue;
        case RAW_SPLIT_LATE:
            if (write_all(fd, f, 7) < 0)
                return;
            sleep_ms(60);
            if (write_all(fd, f + 7, n - 7) < 0)
                return;
            continue;
        case RAW_WRONG_TID: {
            uint16_t prev = (uint16_t)((q[0] << 8 | q[1]) - 1);
            f[0] = (uint8_t)(prev >> 8);
            f[1] = (uint8_t)prev;
            break;
        }
        case RAW_WRONG_UNIT:
            f[6] = (uint8_t)(q[6] + 1);
            break;
        case RAW_OTHER_UNIT:
            f[6] = 42;
            break;
        case RAW_TRAILING:
            f[n++] = 0;
            break;
        case RAW_EXCEPTION:
            f[5] = 3;
            f[7] = (uint8_t)(q[7] | 0x80);
            f[8] = 2;
            n = 9;
            break;
        default:
            break;
        }
        if (write_all(fd, f, n) < 0)
            return;
    }
}

static void *raw_main(void *arg)
{
    struct raw_server *s = arg;
    int last_tid = -1;

    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = { .fd = s->listen_fd, .events = POLLIN };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepts, 1);
        raw_serve(s, fd, &last_tid);
        close(fd);
    }
    return NULL;
}

static int raw_start(struct raw_server *s)
{
    memset(s, 0, sizeof(*s));
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s->listen_fd, 4) < 0)
        return -1;
    return serve_in_thread(s->listen_fd, &s->port, &s->thread, raw_main, s);
}

static void raw_stop(struct raw_server *s)
{
    stop_thread(&s->stop, s->thread, s->listen_fd);
}

/* One bus_read against the raw server with the given reply mode. */
static int raw_read_req(struct raw_server *s, struct bus *b, int mode, int unit,
                        struct plan_req r, uint16_t *out)
{
    atomic_store(&s->exp_unit, unit);
    atomic_store(&s->exp_fc, r.fc);
    atomic_store(&s->exp_addr, r.address);
    atomic_store(&s->exp_count, r.count);
    atomic_store(&s->mode, mode);
    return bus_read(b, unit, &r, out);
}

static bool raw_regs_ok(const uint16_t *out, const struct plan_req *r)
{
    for (int i = 0; i < r->count; i++) {
        uint16_t want = r->fc <= 2 ? (uint16_t)((r->address + i) % 3 == 0)
                                   : (uint16_t)(0x4000 + r->address + i);
        if (out[i] != want) {
            fprintf(stderr, "value %d: 0x%04x, want 0x%04x\n", i, out[i], want);
            return false;
        }
    }
    return true;
}

static void on_sigusr1(int sig)
{
    UNUSED(sig);
}

struct kicker {
    pthread_t target;
    atomic_int kicks;
};

/* Interrupts the reading thread's poll() a few times. */
static void *kicker_main(void *arg)
{
    struct kicker *k = arg;
    for (int i = 0; i < 4; i++) {
        sleep_ms(12);
        pthread_kill(k->target, SIGUSR1);
        atomic_fetch_add(&k->kicks, 1);
    }
    return NULL;
}

static void test_tcp_exchange(void)
{
    struct raw_server s;
    CHECK_INT(raw_start(&s), 0);
    struct cfg_bus cfg = tcp_cfg(s.port);
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    if (!b) {
        raw_stop(&s);
        return;
    }
    static uint16_t out[2048];
    int rc;

    /* Registers and bits, one write each, one connection. */
    struct plan_req reqs[] = {
        {.fc = 3, .address = 0, .count = 1},    {.fc = 4, .address = 100, .count = 2},
        {.fc = 3, .address = 1000, .count = 125}, {.fc = 1, .address = 0, .count = 1},
        {.fc = 2, .address = 5, .count = 8},    {.fc = 1, .address = 7, .count = 9},
        {.fc = 2, .address = 65535 - 1999, .count = 2000}};
    for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
        memset(out, 0xEE, sizeof(out));
        rc = raw_read_req(&s, b, RAW_ONE_WRITE, 1, reqs[i], out);
        CHECK_INT(rc, 0);
        CHECK(rc == 0 && raw_regs_ok(out, &reqs[i]));
    }
    CHECK_INT(atomic_load(&s.accepts), 1);
    CHECK(fcntl(find_client_fd(s.port), F_GETFD) & FD_CLOEXEC);

    /* Byte by byte: many partial reads, one answer. */
    struct plan_req r10 = {.fc = 3, .address = 20, .count = 10}, bits = {.fc = 1, .address = 3, .count = 17};
    rc = raw_read_req(&s, b, RAW_BYTEWISE, 1, r10, out);
    CHECK_INT(rc, 0);
    CHECK(rc == 0 && raw_regs_ok(out, &r10));
    rc = raw_read_req(&s, b, RAW_BYTEWISE, 1, bits, out);
    CHECK_INT(rc, 0);
    CHECK(rc == 0 && raw_regs_ok(out, &bits));

    /* Signals while waiting (EINTR) do not end or restart the deadline. */
    struct sigaction sa = { .sa_handler = on_sigusr1 }; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    struct kicker k = { .target = pthread_self() };
    pthread_t kt;
    CHECK_INT(pthread_create(&kt, NULL, kicker_main, &k), 0);
    int64_t t0 = now_mono_ms();
    rc = raw_read_req(&s, b, RAW_SPLIT_LATE, 1, r10, out);
    int64_t dt = now_mono_ms() - t0;
    pthread_join(kt, NULL);
    CHECK_INT(rc, 0);
    CHECK(rc == 0 && raw_regs_ok(out, &r10));
    CHECK(dt >= 55 && dt < CLIENT_TIMEOUT_MS);
    CHECK_INT(atomic_load(&k.kicks), 4);
    CHECK_INT(atomic_load(&s.accepts), 1);

    /* An exception is an answer: the connection stays. */
    rc = raw_read_req(&s, b, RAW_EXCEPTION, 1, r10, out);
    CHECK_INT(rc, -(BUS_EXC_BASE + 2));
    CHECK(bus_is_connected(b));
    CHECK_INT(raw_read_req(&s, b, RAW_ONE_WRITE, 1, r10, out), 0);
    CHECK_INT(atomic_load(&s.accepts), 1);

    /* A late reply to the previous request (its transaction id) is never
     * this request's answer: malformed, and a new connection. */
    CHECK_INT(raw_read_req(&s, b, RAW_WRONG_TID, 1, r10, out), -EBADMSG);
    CHECK(!bus_is_connected(b));
    CHECK_INT(raw_read_req(&s, b, RAW_ONE_WRITE, 1, r10, out), 0);
    CHECK(raw_regs_ok(out, &r10));
    CHECK_INT(atomic_load(&s.accepts), 2);

    /* Another unit's reply, bytes after the reply: malformed, closed. */
    CHECK_INT(raw_read_req(&s, b, RAW_WRONG_UNIT, 9, r10, out), -EBADMSG);
    CHECK(!bus_is_connected(b));
    CHECK_INT(raw_read_req(&s, b, RAW_TRAILING, 9, r10, out), -EBADMSG);
    CHECK(!bus_is_connected(b));
    CHECK_INT(atomic_load(&s.accepts), 3);

    /* Unit ids 0 and 255 go out as such and take a reply from any unit. */
    CHECK_INT(raw_read_req(&s, b, RAW_OTHER_UNIT, 0, r10, out), 0);
    CHECK_INT(raw_read_req(&s, b, RAW_OTHER_UNIT, 255, r10, out), 0);
    CHECK_INT(raw_read_req(&s, b, RAW_ONE_WRITE, 255, r10, out), 0);
    CHECK(raw_regs_ok(out, &r10));
    CHECK(bus_is_connected(b));

    /* No reply: -ETIMEDOUT after the response timeout, connection closed;
     * the next request reconnects. */
    t0 = now_mono_ms();
    CHECK_INT(raw_read_req(&s, b, RAW_SILENT, 1, r10, out), -ETIMEDOUT);
    dt = now_mono_ms() - t0;
    CHECK(dt >= CLIENT_TIMEOUT_MS - 5 && dt < CLIENT_TIMEOUT_MS + 100);
    CHECK(!bus_is_connected(b));
    CHECK_INT(raw_read_req(&s, b, RAW_ONE_WRITE, 1, r10, out), 0);

    /* The timeout is one deadline for the whole reply: 125 registers at
     * 2 ms a byte (over 500 ms) do not make it within 200 ms. */
    struct plan_req big = {.fc = 4, .address = 0, .count = 125};
    t0 = now_mono_ms();
    CHECK_INT(raw_read_req(&s, b, RAW_BYTEWISE, 1, big, out), -ETIMEDOUT);
    dt = now_mono_ms() - t0;
    CHECK(dt >= CLIENT_TIMEOUT_MS - 5 && dt < CLIENT_TIMEOUT_MS + 100);
    CHECK(!bus_is_connected(b));

    /* The server closes: -ECONNRESET, closed; then reconnect works. */
    CHECK_INT(raw_read_req(&s, b, RAW_CLOSE, 1, r10, out), -ECONNRESET);
    CHECK(!bus_is_connected(b));
    CHECK_INT(raw_read_req(&s, b, RAW_ONE_WRITE, 1, r10, out), 0);
    CHECK(raw_regs_ok(out, &r10));
    CHECK(bus_is_connected(b));

    /* Every request was the exact bytes expected, transaction ids one
     * apart throughout. */
    CHECK_INT(atomic_load(&s.bad_requests), 0);
    CHECK_INT(atomic_load(&s.requests), 24);
    bus_free(b);
    raw_stop(&s);
}

/* The backoff doubles from 0.5 s and stops at 30 s: 0.5, 1, 2, 4, 8, 16, 30. */
static void test_backoff_cap(void)
{
    CHECK_INT(BUS_BACKOFF_MIN_MS, 500);
    CHECK_INT(BUS_BACKOFF_MAX_MS, 30000);
    int64_t w = BUS_BACKOFF_MIN_MS;
    int steps = 0;
    while (w < BUS_BACKOFF_MAX_MS) {
        w = w * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS : w * 2;
        steps++;
    }
    CHECK_INT(steps, 6);
}

static void test_args(struct bus *b)
{
    uint16_t out[2];
    struct plan_req zero = {.fc = 3, .address = 0, .count = 0}, big = {.fc = 3, .address = 0, .count = 126}, bigbits = {.fc = 1, .address = 0, .count = 2001},
                    fc5 = {.fc = 5, .address = 0, .count = 1}, wrap = {.fc = 3, .address = 65535, .count = 2};
    CHECK_INT(bus_read(b, 1, &zero, out), -EINVAL);
    CHECK_INT(bus_read(b, 1, &big, out), -EINVAL);
    CHECK_INT(bus_read(b, 1, &bigbits, out), -EINVAL);
    CHECK_INT(bus_read(b, 1, &fc5, out), -EINVAL);
    CHECK_INT(bus_read(b, 1, &wrap, out), -EINVAL);
    struct plan_req ok = {.fc = 3, .address = 0, .count = 1};
    CHECK_INT(bus_read(b, 300, &ok, out), -EINVAL);
}

static void test_rtu_missing_device(void)
{
    struct cfg_bus cfg = { .name = "rs485", .type = BUS_RTU, .device = "/nonexistent/ttyUSB9",
                           .baud = 9600, .parity = 'E', .data_bits = 8, .stop_bits = 1,
                           .timeout_ms = 300 };
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    CHECK(!bus_is_connected(b));
    CHECK_INT(bus_connect(b), -ENOENT);
    uint16_t out[1];
    struct plan_req r = {.fc = 3, .address = 0, .count = 1};
    CHECK_INT(bus_read(b, 1, &r, out), -ENOTCONN);
    bus_free(b);
    bus_free(NULL);
}

/* ---- RTU: a fake meter on the master side of a pseudo-terminal ---- */

enum meter_mode { MTR_NORMAL, MTR_LATE_ONCE, MTR_BADCRC_ONCE, MTR_EXC4_ONCE };

struct fake_meter {
    int master;
    pthread_t thread;
    atomic_int mode;
    atomic_int late_sent;
    atomic_int stop;
};

/* Modbus CRC-16: reflected polynomial 0xA001, initial 0xFFFF. */
static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static void put_crc(uint8_t *frame, size_t n)
{
    uint16_t crc = crc16(frame, n);
    frame[n] = (uint8_t)(crc & 0xFF); /* low byte first on the wire */
    frame[n + 1] = (uint8_t)(crc >> 8);
}

/* Holding/input register i holds 1000 + i, as on the TCP server. */
static void *meter_main(void *arg)
{
    struct fake_meter *m = arg;
    uint8_t req[8], rsp[5 + 2 * 125];

    while (read_exact(&m->stop, m->master, req, sizeof(req)) == 0) {
        uint16_t crc = crc16(req, 6);
        if (req[6] != (crc & 0xFF) || req[7] != (crc >> 8))
            continue;
        int addr = req[2] << 8 | req[3], count = req[4] << 8 | req[5];
        size_t n;
        int mode = atomic_exchange(&m->mode, MTR_NORMAL);
        rsp[0] = req[0];
        if (mode == MTR_EXC4_ONCE) {
            rsp[1] = (uint8_t)(req[1] | 0x80);
            rsp[2] = 4;
            n = 3;
        } else {
            rsp[1] = req[1];
            rsp[2] = (uint8_t)(2 * count);
            for (int i = 0; i < count; i++) {
                uint16_t v = (uint16_t)(1000 + addr + i);
                rsp[3 + 2 * i] = (uint8_t)(v >> 8);
                rsp[4 + 2 * i] = (uint8_t)(v & 0xFF);
            }
            n = 3 + 2 * (size_t)count;
        }
        put_crc(rsp, n);
        if (mode == MTR_BADCRC_ONCE)
            rsp[n] ^= 0x55;
        if (mode == MTR_LATE_ONCE)
            sleep_ms(CLIENT_TIMEOUT_MS + 100);
        if (write(m->master, rsp, n + 2) != (ssize_t)(n + 2))
            break;
        if (mode == MTR_LATE_ONCE)
            atomic_store(&m->late_sent, 1);
    }
    return NULL;
}

static void test_rtu(void)
{
    /* The CRC helper against the textbook frame 01 03 00 00 00 0A C5 CD. */
    uint8_t ex[8] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x0A };
    put_crc(ex, 6);
    CHECK_INT(ex[6], 0xC5);
    CHECK_INT(ex[7], 0xCD);

    struct fake_meter m = { .master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC) };
    CHECK(m.master >= 0);
    if (m.master < 0 || grantpt(m.master) < 0 || unlockpt(m.master) < 0) {
        CHECK(0);
        return;
    }
    char *dev = xstrdup(ptsname(m.master));
    CHECK_INT(pthread_create(&m.thread, NULL, meter_main, &m), 0);

    struct cfg_bus cfg = { .name = "pty", .type = BUS_RTU, .device = dev, .baud = 9600,
                           .parity = 'E', .data_bits = 8, .stop_bits = 1,
                           .timeout_ms = CLIENT_TIMEOUT_MS };
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    uint16_t out[8];

    struct plan_req r = {.fc = 3, .address = 4, .count = 3};
    CHECK_INT(bus_read(b, 5, &r, out), 0);
    CHECK_INT(out[0], 1004);
    CHECK_INT(out[2], 1006);

    atomic_store(&m.mode, MTR_EXC4_ONCE);
    CHECK_INT(bus_read(b, 5, &r, out), -(BUS_EXC_BASE + 4));

    atomic_store(&m.mode, MTR_BADCRC_ONCE);
    CHECK_INT(bus_read(b, 5, &r, out), -EBADMSG);
    CHECK(bus_is_connected(b));

    /* Timeout, then the late reply (registers 0..1) arrives while the line
     * settles. The next request has the same unit, fc and count, so a
     * leftover late reply would pass every check libmodbus makes. */
    atomic_store(&m.mode, MTR_LATE_ONCE);
    struct plan_req first = {.fc = 3, .address = 0, .count = 2}, second = {.fc = 3, .address = 10, .count = 2};
    CHECK_INT(bus_read(b, 5, &first, out), -ETIMEDOUT);
    CHECK(atomic_load(&m.late_sent));
    CHECK_INT(bus_read(b, 5, &second, out), 0);
    CHECK_INT(out[0], 1010);
    CHECK_INT(out[1], 1011);

    bus_free(b);
    atomic_store(&m.stop, 1);
    pthread_join(m.thread, NULL);
    close(m.master);
    free(dev);
}

/* Opens a pty for a fake meter and links 'link' to its slave side. */
static int meter_open(struct fake_meter *m, const char *link)
{
    memset(m, 0, sizeof(*m));
    m->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m->master < 0 || grantpt(m->master) < 0 || unlockpt(m->master) < 0)
        return -1;
    unlink(link);
    if (symlink(ptsname(m->master), link) < 0)
        return -1;
    return pthread_create(&m->thread, NULL, meter_main, m) == 0 ? 0 : -1;
}

/* The adapter is unplugged: the meter side closes and the path disappears. */
static void meter_unplug(struct fake_meter *m, const char *link)
{
    atomic_store(&m->stop, 1);
    pthread_join(m->thread, NULL);
    close(m->master);
    unlink(link);
}

static void test_rtu_options_and_replug(void)
{
    const char *tmp = getenv("PARKGW_TEST_TMP");
    char *dir = xasprintf("%s/test_bus.%d", tmp ? tmp : "/tmp", (int)getpid());
    mkdir(tmp ? tmp : "/tmp", 0700);
    CHECK_INT(mkdir(dir, 0700), 0);
    char *link = xasprintf("%s/ttyUSB-park", dir);
    struct fake_meter m;
    CHECK_INT(meter_open(&m, link), 0);

    /* A pty is no RS-485 port: the ioctl fails, the bus warns and polls on. */
    struct cfg_bus cfg = { .name = "usb", .type = BUS_RTU, .device = link, .baud = 9600,
                           .parity = 'E', .data_bits = 8, .stop_bits = 1,
                           .timeout_ms = CLIENT_TIMEOUT_MS, .rs485 = true,
                           .frame_delay_ms = 80 };
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    uint16_t out[4];
    struct plan_req r = {.fc = 3, .address = 20, .count = 2};
    CHECK_INT(bus_read(b, 9, &r, out), 0);
    CHECK_INT(out[0], 1020);
    CHECK(bus_is_connected(b));

    /* frame_delay_ms = 80: three back-to-back reads leave at least 80 ms of
     * silence before each of the last two: >= 160 ms in all (a pty answers
     * in well under a millisecond without the delay). */
    int64_t t0 = now_mono_ms();
    CHECK_INT(bus_read(b, 9, &r, out), 0);
    CHECK_INT(bus_read(b, 9, &r, out), 0);
    CHECK_INT(bus_read(b, 9, &r, out), 0);
    int64_t dt = now_mono_ms() - t0;
    CHECK(dt >= 160);
    CHECK(dt < 160 + 3 * CLIENT_TIMEOUT_MS);

    /* Unplugged: the read fails (EIO or a lost link, not a timeout that
     * would keep a dead descriptor), the bus closes; reopening finds no
     * device (-ENOENT) and then backs off with -ENOTCONN. */
    meter_unplug(&m, link);
    int rc = bus_read(b, 9, &r, out);
    CHECK(rc < 0 && rc != -ETIMEDOUT && rc > -BUS_EXC_BASE);
    CHECK(!bus_is_connected(b));
    if (rc == -ETIMEDOUT)
        fprintf(stderr, "vanished device read as a timeout\n");
    rc = bus_read(b, 9, &r, out);
    CHECK(rc == -ENOENT || rc == -ENOTCONN);
    CHECK_INT(bus_read(b, 9, &r, out), -ENOTCONN);

    /* Plugged back in (a new pty behind the same path): the read after the
     * backoff reopens the device and works. */
    CHECK_INT(meter_open(&m, link), 0);
    int64_t deadline = now_mono_ms() + 3000;
    do {
        sleep_ms(bus_connect_wait_ms(b) + 10);
        rc = bus_read(b, 9, &r, out);
    } while (rc < 0 && now_mono_ms() < deadline);
    CHECK_INT(rc, 0);
    CHECK_INT(out[1], 1021);
    CHECK(bus_is_connected(b));

    bus_free(b);
    meter_unplug(&m, link);
    rmdir(dir);
    free(link);
    free(dir);
}

static void test_strerror(void)
{
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 1)), "exception 1 (illegal function)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 3)), "exception 3 (illegal data value)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 4)), "exception 4 (server device failure)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 5)), "exception 5 (acknowledge)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 6)), "exception 6 (server device busy)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 8)), "exception 8 (memory parity error)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 10)), "exception 10 (gateway path unavailable)");
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 11)),
              "exception 11 (gateway target device failed to respond)");
    CHECK_CONTAINS(bus_strerror(-(BUS_EXC_BASE + 9)), "unknown");
    CHECK_CONTAINS(bus_strerror(-(BUS_EXC_BASE + 200)), "unknown");
    CHECK_CONTAINS(bus_strerror(-ETIMEDOUT), "timeout");
    CHECK_CONTAINS(bus_strerror(-EBADMSG), "malformed");
    CHECK_CONTAINS(bus_strerror(-ECONNRESET), "connection lost");
    CHECK(strlen(bus_strerror(-ENOENT)) > 0);
}

int main(void)
{
    /* The server may write its late reply to a connection the client closed. */
    signal(SIGPIPE, SIG_IGN);

    struct server srv;
    CHECK_INT(server_start(&srv), 0);
    CHECK(srv.port > 0);

    struct cfg_bus cfg = tcp_cfg(srv.port);
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    if (b) {
        test_reads(&srv, b);
        test_exception(b);
        test_timeout_late_reply(&srv, b);
        test_drop(&srv, b);
        test_args(b);
        /* Closing ends the server's blocking receive so it can stop. */
        bus_free(b);
    }
    server_stop(&srv);

    test_tcp_exchange();
    test_refused();
    test_rtu_missing_device();
    test_rtu();
    test_rtu_options_and_replug();
    test_backoff_cap();
    test_strerror();
    return check_done();
}
