/*
 * sim_main.c - parkgw-sim: serves the simulated park (sim_model.c) over
 * Modbus TCP for every meter of every TCP bus of a gateway config, and over
 * RTU on a pty for RTU buses whose device path it may link, with a
 * line-based control channel for fault injection (docs/SIM.md). One thread:
 * a poll() loop over listeners, clients, ptys, the control channel and
 * delayed replies; libmodbus parses requests and builds replies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <termios.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "common/log.h"
#include "common/util.h"
#include "tools/sim/sim_cn.h"
#include "tools/sim/sim_model.h"
#include "tools/sim/sim_private.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(FILE *f)
{
    fputs("usage: parkgw-sim --config FILE [--seed N] [--port N] [--port-file PATH]\n"
          "                  [--bind ADDR] [--control -|FIFO] [--verbose]\n"
          "       parkgw-sim --config FILE [--seed N] --dump ENTERPRISE/METER\n"
          "Serves every meter of every TCP bus of FILE over Modbus TCP. Without --port,\n"
          "each bus listens on its own host:port (must be loopback); --port N serves all\n"
          "buses on ADDR:N (default 127.0.0.1, N=0 picks a free port). An RTU bus whose\n"
          "device path is outside /dev and free is served on a pty linked there.\n"
          "See docs/SIM.md.\n",
          f);
}

int64_t sim_now_s(void)
{
    return now_real_ms() / 1000;
}

/* ---- meters ---- */

struct sim_meter *sim_find_meter(struct sim *s, const char *path)
{
    for (size_t i = 0; i < s->n_meters; i++)
        if (strcmp(s->meters[i].path, path) == 0)
            return &s->meters[i];
    return NULL;
}

/* Does pattern ("*", "ENT/" followed by "*", or "ENT/METER") select meter sm? */
bool sim_meter_matches(const struct sim_meter *sm, const char *pattern)
{
    if (strcmp(pattern, "*") == 0)
        return true;
    size_t n = strlen(pattern);
    if (n >= 2 && strcmp(pattern + n - 2, "/*") == 0)
        return strncmp(sm->path, pattern, n - 1) == 0;
    return strcmp(sm->path, pattern) == 0;
}

static void refresh_registers(struct sim *s, struct sim_meter *sm)
{
    modbus_mapping_t *mp = sm->map;
    sim_fill_registers(s->seed, s->cfg, sm->m, sim_now_s(), &sm->st, mp->tab_input_registers,
                       mp->tab_registers, mp->tab_bits, mp->tab_input_bits, sm->nregs, sm->nbits);
}

/* Prints {"meter":...,"values":{...}} for what the gateway would decode now. */
void sim_print_values(struct sim *s, struct sim_meter *sm, FILE *out)
{
    const struct cfg_profile *p = &s->cfg->profiles[sm->m->profile];
    int64_t t = sim_now_s();
    fprintf(out, "{\"meter\":\"%s\",\"utility\":\"%s\",\"ts\":%lld,\"supply\":\"%s\",\"values\":{",
            sm->path, utility_name(sm->m->utility), (long long)t * 1000,
            sm->st.supply_off ? "off" : "on");
    for (size_t i = 0; i < p->n_points; i++) {
        double v = sim_expected_decoded(s->seed, s->cfg, sm->m, i, t, &sm->st);
        fprintf(out, "%s\"", i ? "," : "");
        for (const char *c = p->points[i].name; *c; c++)
            fprintf(out, (*c == '"' || *c == '\\') ? "\\%c" : "%c", *c);
        if (isfinite(v))
            fprintf(out, "\":%.10g", v);
        else
            fprintf(out, "\":null");
    }
    fprintf(out, "}}");
}

/* ---- clients ---- */

static void client_close(struct sim *s, struct client *c, const char *why)
{
    log_debug("client %llu on port %d closed: %s", (unsigned long long)c->id, c->l->port, why);
    close(c->fd);
    c->fd = -1;
    /* delayed replies to this connection are dropped with it */
    size_t k = 0;
    for (size_t i = 0; i < s->n_pending; i++)
        if (s->pending[i].client_id != c->id)
            s->pending[k++] = s->pending[i];
    s->n_pending = k;
}

static void accept_client(struct sim *s, struct listener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept on port %d: %s", l->port, strerror(errno));
        return;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &s->clients[i];
        if (c->fd >= 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->id = ++s->next_client_id;
        c->l = l;
        log_debug("client %llu connected on port %d", (unsigned long long)c->id, l->port);
        return;
    }
    log_warn("more than %d clients: refusing a connection on port %d", MAX_CLIENTS, l->port);
    close(fd);
}

static struct client *client_by_id(struct sim *s, uint64_t id)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i].fd >= 0 && s->clients[i].id == id)
            return &s->clients[i];
    return NULL;
}

/* Number of registers/bits a read request asks for, or -1 for other functions. */
static int read_quantity(const uint8_t *q, int hl, int len)
{
    int fc = q[hl];
    if (len < hl + 5)
        return -1;
    if (fc == MODBUS_FC_READ_COILS || fc == MODBUS_FC_READ_DISCRETE_INPUTS ||
        fc == MODBUS_FC_READ_HOLDING_REGISTERS || fc == MODBUS_FC_READ_INPUT_REGISTERS)
        return (q[hl + 3] << 8) | q[hl + 4];
    return -1;
}

/* The normal answer of a meter on ctx, whose socket is already set.
 * corrupt (TCP): the transaction id is changed. */
static void answer(struct sim *s, modbus_t *ctx, struct sim_meter *sm, uint8_t *q, int len,
                   bool corrupt)
{
    refresh_registers(s, sm);
    if (corrupt)
        q[0] ^= 0x80; /* the client matches replies by transaction id */
    if (modbus_reply(ctx, q, len, sm->map) < 0)
        log_debug("reply to %s: %s", sm->path, modbus_strerror(errno));
}

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xffff;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* A meter answers a request that reached it over TCP (c) or RTU (rtu),
 * with its faults applied. */
static void serve_meter(struct sim *s, modbus_t *ctx, struct sim_meter *sm, uint8_t *q, int len,
                        struct client *c, struct rtu_port *rtu)
{
    int hl = modbus_get_header_length(ctx);
    log_debug("%s: function %d, %d bytes", sm->path, q[hl], len);
    if (sm->maxregs > 0 && read_quantity(q, hl, len) > sm->maxregs) {
        modbus_reply_exception(ctx, q, MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE);
        return;
    }
    switch (sm->fault) {
    case FAULT_NOREPLY:
        return;
    case FAULT_DROP:
        /* an RS-485 line has no connection to drop: the meter stays silent */
        if (c)
            client_close(s, c, "fault drop");
        return;
    case FAULT_EXCEPTION:
        modbus_reply_exception(ctx, q, (unsigned)sm->fault_arg);
        return;
    case FAULT_DELAY:
        if (s->n_pending >= MAX_PENDING) {
            log_warn("%s: too many delayed replies, dropping one request", sm->path);
            return;
        }
        s->pending = xrealloc(s->pending, (s->n_pending + 1) * sizeof(*s->pending));
        struct pending *p = &s->pending[s->n_pending++];
        p->client_id = c ? c->id : 0;
        p->rtu = rtu;
        p->due_ms = now_mono_ms() + sm->fault_arg;
        p->sm = sm;
        p->len = len;
        memcpy(p->query, q, (size_t)len);
        return;
    case FAULT_WRONGADDR:
    case FAULT_GARBAGE:
        if (rtu) {
            /* bytes that are no Modbus frame at all */
            static const uint8_t junk[] = {0x5A, 0xA5, 0x00, 0xFF, 0x13, 0x37, 0x42};
            if (write(rtu->master_fd, junk, sizeof(junk)) < 0)
                log_debug("%s: %s", rtu->link, strerror(errno));
            return;
        }
        answer(s, ctx, sm, q, len, true);
        return;
    case FAULT_CORRUPT:
        if (rtu) {
            /* an exception frame whose CRC is wrong: line noise */
            uint8_t f[5] = {q[0], (uint8_t)(q[1] | 0x80), MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE};
            uint16_t crc = (uint16_t)~crc16(f, 3);
            f[3] = (uint8_t)(crc & 0xff);
            f[4] = (uint8_t)(crc >> 8);
            if (write(rtu->master_fd, f, sizeof(f)) < 0)
                log_debug("%s: %s", rtu->link, strerror(errno));
            return;
        }
        answer(s, ctx, sm, q, len, true);
        return;
    case FAULT_NONE:
    default:
        answer(s, ctx, sm, q, len, false);
        return;
    }
}

static void handle_request(struct sim *s, struct client *c, uint8_t *q, int len)
{
    struct listener *l = c->l;
    int hl = modbus_get_header_length(l->ctx);
    int unit = q[hl - 1];
    struct sim_meter *sm = l->by_unit[unit];
    if (!sm) {
        /* what a real Modbus TCP gateway says for a slave it does not have */
        log_debug("port %d: no meter with unit id %d", l->port, unit);
        modbus_reply_exception(l->ctx, q, MODBUS_EXCEPTION_GATEWAY_TARGET);
        return;
    }
    serve_meter(s, l->ctx, sm, q, len, c, NULL);
}

/* Length of the RTU request frame at the start of b (CRC included), 0 when
 * more bytes are needed to tell, -1 for a function we do not parse. */
static int rtu_frame_len(const uint8_t *b, size_t n)
{
    if (n < 2)
        return 0;
    switch (b[1]) {
    case MODBUS_FC_READ_COILS:
    case MODBUS_FC_READ_DISCRETE_INPUTS:
    case MODBUS_FC_READ_HOLDING_REGISTERS:
    case MODBUS_FC_READ_INPUT_REGISTERS:
    case MODBUS_FC_WRITE_SINGLE_COIL:
    case MODBUS_FC_WRITE_SINGLE_REGISTER:
        return 8;
    case MODBUS_FC_WRITE_MULTIPLE_COILS:
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS:
        return n < 7 ? 0 : 9 + b[6];
    case MODBUS_FC_MASK_WRITE_REGISTER:
        return 10;
    case MODBUS_FC_WRITE_AND_READ_REGISTERS:
        return n < 11 ? 0 : 13 + b[10];
    default:
        return -1;
    }
}

static void rtu_frame(struct sim *s, struct rtu_port *r, uint8_t *f, int len)
{
    uint16_t crc = crc16(f, (size_t)len - 2);
    if (f[len - 2] != (crc & 0xff) || f[len - 1] != (crc >> 8)) {
        log_debug("%s: frame with a bad CRC ignored", r->link);
        return;
    }
    struct sim_meter *sm = r->by_unit[f[0]];
    /* a unit nobody has (or a broadcast) gets silence, as on a real line */
    if (!sm)
        return;
    modbus_set_socket(r->ctx, r->master_fd);
    serve_meter(s, r->ctx, sm, f, len, NULL, r);
}

/* Moves the first fl bytes of the port's buffer (a whole frame) to f. */
static void take_frame(struct rtu_port *r, uint8_t *f, size_t fl)
{
    memcpy(f, r->buf, fl);
    memmove(r->buf, r->buf + fl, r->len - fl);
    r->len -= fl;
}

/* A DL/T 645 / CJ/T 188 meter answers request f, with its faults. */
static void cn_serve(struct sim *s, struct rtu_port *r, struct sim_meter *sm, const uint8_t *f,
                     size_t len, bool delayed)
{
    int abnormal = -1, flags = 0;
    switch (delayed ? FAULT_NONE : sm->fault) {
    case FAULT_NOREPLY:
    case FAULT_DROP:
        return;
    case FAULT_DELAY:
        if (s->n_pending >= MAX_PENDING || len > sizeof(s->pending->query))
            return;
        s->pending = xrealloc(s->pending, (s->n_pending + 1) * sizeof(*s->pending));
        struct pending *p = &s->pending[s->n_pending++];
        memset(p, 0, sizeof(*p));
        p->rtu = r;
        p->due_ms = now_mono_ms() + sm->fault_arg;
        p->sm = sm;
        p->len = (int)len;
        memcpy(p->query, f, len);
        return;
    case FAULT_GARBAGE: {
        static const uint8_t junk[] = {0x5A, 0xA5, 0x00, 0xFF, 0x13, 0x37, 0x42, 0x16};
        if (write(r->master_fd, junk, sizeof(junk)) < 0)
            log_debug("%s: %s", r->link, strerror(errno));
        return;
    }
    case FAULT_EXCEPTION:
        abnormal = sm->fault_arg;
        break;
    case FAULT_CORRUPT:
        flags = SIM_CN_BAD_SUM;
        break;
    case FAULT_WRONGADDR:
        flags = SIM_CN_WRONG_ADDR;
        break;
    default:
        break;
    }
    uint8_t out[SIM_CN_MAX_REPLY];
    size_t n = sim_cn_reply(r->bus->protocol, s->seed, s->cfg, sm->m, &sm->st, sim_now_s(), f, len,
                            abnormal, flags, out);
    if (n && write(r->master_fd, out, n) < 0)
        log_debug("%s: %s", r->link, strerror(errno));
}

/* A request frame on a DL/T 645 / CJ/T 188 line: the one meter it
 * addresses answers (two answering a wildcard would collide: none does). */
static void cn_frame(struct sim *s, struct rtu_port *r, const uint8_t *f, size_t len)
{
    struct sim_meter *hit = NULL;
    size_t n_hit = 0;
    for (size_t i = 0; i < r->n_cn; i++)
        if (sim_cn_addressed(r->bus->protocol, s->cfg, r->cn[i]->m, f, len)) {
            hit = r->cn[i];
            n_hit++;
        }
    if (n_hit == 1)
        cn_serve(s, r, hit, f, len, false);
    else if (n_hit > 1)
        log_debug("%s: %zu meters match a wildcard address; none answers", r->link, n_hit);
}

/* Cuts request frames from the line: wake-up bytes and noise before a
 * 0x68 are dropped. */
static void cn_frames(struct sim *s, struct rtu_port *r)
{
    for (;;) {
        size_t skip = 0;
        while (skip < r->len && r->buf[skip] != 0x68)
            skip++;
        memmove(r->buf, r->buf + skip, r->len - skip);
        r->len -= skip;
        int fl = sim_cn_frame_len(r->bus->protocol, r->buf, r->len);
        if (fl < 0 || fl > (int)sizeof(r->buf)) {
            /* not a frame start after all: look for the next 0x68 */
            memmove(r->buf, r->buf + 1, r->len - 1);
            r->len--;
            continue;
        }
        if (fl == 0 || (size_t)fl > r->len)
            return;
        uint8_t f[MODBUS_RTU_MAX_ADU_LENGTH];
        take_frame(r, f, (size_t)fl);
        cn_frame(s, r, f, (size_t)fl);
    }
}

static void rtu_readable(struct sim *s, struct rtu_port *r)
{
    int64_t now = now_mono_ms();
    if (r->len && now - r->last_rx_ms > RTU_FRAME_GAP_MS)
        r->len = 0; /* the rest of an old frame never came */
    ssize_t n = read(r->master_fd, r->buf + r->len, sizeof(r->buf) - r->len);
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            log_warn("%s: %s", r->link, strerror(errno));
        return;
    }
    r->len += (size_t)n;
    r->last_rx_ms = now;
    if (r->bus->protocol != PROTO_MODBUS) {
        cn_frames(s, r);
        return;
    }
    for (;;) {
        int fl = rtu_frame_len(r->buf, r->len);
        if (fl < 0 || fl > (int)sizeof(r->buf)) {
            r->len = 0; /* unparseable: wait for the next frame */
            return;
        }
        if (fl == 0 || (size_t)fl > r->len)
            return;
        uint8_t f[MODBUS_RTU_MAX_ADU_LENGTH];
        take_frame(r, f, (size_t)fl);
        rtu_frame(s, r, f, fl);
    }
}

static void client_readable(struct sim *s, struct client *c)
{
    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(c->l->ctx, c->fd);
    int len = modbus_receive(c->l->ctx, q);
    if (len < 0) {
        client_close(s, c, errno == ECONNRESET ? "disconnected" : modbus_strerror(errno));
        return;
    }
    if (len == 0)
        return;
    handle_request(s, c, q, len);
}

static void send_due_replies(struct sim *s)
{
    int64_t now = now_mono_ms();
    size_t i = 0;
    while (i < s->n_pending) {
        struct pending p = s->pending[i];
        if (p.due_ms > now) {
            i++;
            continue;
        }
        memmove(&s->pending[i], &s->pending[i + 1], (s->n_pending - i - 1) * sizeof(p));
        s->n_pending--;
        if (p.rtu) {
            if (p.rtu->master_fd < 0)
                continue; /* unplugged meanwhile: the reply is lost with the line */
            if (p.rtu->bus->protocol != PROTO_MODBUS) {
                cn_serve(s, p.rtu, p.sm, p.query, (size_t)p.len, true);
                continue;
            }
            modbus_set_socket(p.rtu->ctx, p.rtu->master_fd);
            answer(s, p.rtu->ctx, p.sm, p.query, p.len, false);
            continue;
        }
        struct client *c = client_by_id(s, p.client_id);
        if (!c)
            continue;
        modbus_set_socket(c->l->ctx, c->fd);
        answer(s, c->l->ctx, p.sm, p.query, p.len, false);
    }
}

/* ---- control channel ---- */

static bool is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static struct listener *listener_get(struct sim *s, const char *host, int port)
{
    const char *h = strcmp(host, "localhost") ? host : "127.0.0.1";
    for (size_t i = 0; i < s->n_ls; i++)
        if (s->ls[i].port == port && !strcmp(s->ls[i].host, h))
            return &s->ls[i];
    s->ls = xrealloc(s->ls, (s->n_ls + 1) * sizeof(*s->ls));
    struct listener *l = &s->ls[s->n_ls++];
    memset(l, 0, sizeof(*l));
    l->host = xstrdup(h);
    l->port = port;
    l->fd = -1;
    return l;
}

static int listener_open(struct listener *l)
{
    bool v6 = strchr(l->host, ':') != NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", l->port);
    l->ctx = v6 ? modbus_new_tcp_pi(l->host, service) : modbus_new_tcp(l->host, l->port);
    if (!l->ctx)
        return -errno;
    int fd = v6 ? modbus_tcp_pi_listen(l->ctx, 64) : modbus_tcp_listen(l->ctx, 64);
    if (fd < 0)
        return -errno;
    l->fd = fd;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Puts sm at its unit id in by_unit; where names the endpoint in errors. */
static int add_unit(struct sim_meter **by_unit, size_t *n, struct sim_meter *sm,
                    const char *where, const char *hint)
{
    int u = sm->m->unit_id;
    if (u < 0 || u > 255) {
        log_err("%s: unit id %d out of range", sm->path, u);
        return -EINVAL;
    }
    if (by_unit[u]) {
        log_err("%s and %s both have unit id %d on %s%s", by_unit[u]->path, sm->path, u, where,
                hint);
        return -EEXIST;
    }
    by_unit[u] = sm;
    (*n)++;
    return 0;
}

static int listener_add_meter(struct listener *l, struct sim_meter *sm)
{
    char where[300];
    snprintf(where, sizeof(where), "%s:%d", l->host, l->port);
    return add_unit(l->by_unit, &l->n_meters, sm, where,
                    "; serve their buses on separate ports (run without --port)");
}

/* Why an RTU bus's device path cannot be a pty symlink of ours, or NULL. */
static const char *rtu_unservable(const char *path)
{
    struct stat st;
    char target[256];
    if (!path || !*path)
        return "no device path";
    if (strncmp(path, "/dev/", 5) == 0)
        return "a real device path (the simulator only creates pty links elsewhere)";
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? NULL : "cannot be inspected";
    if (!S_ISLNK(st.st_mode))
        return "an existing file";
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n < 0)
        return "cannot be inspected";
    target[n] = 0;
    /* a link left by an earlier simulator is replaced */
    return strncmp(target, "/dev/pts/", 9) == 0 ? NULL : "an existing link";
}

static struct rtu_port *rtu_get(struct sim *s, const struct cfg_bus *bus)
{
    for (size_t i = 0; i < s->n_rtus; i++)
        if (strcmp(s->rtus[i].bus->device, bus->device) == 0)
            return &s->rtus[i];
    s->rtus = xrealloc(s->rtus, (s->n_rtus + 1) * sizeof(*s->rtus));
    struct rtu_port *r = &s->rtus[s->n_rtus++];
    memset(r, 0, sizeof(*r));
    r->bus = bus;
    r->master_fd = r->slave_fd = -1;
    return r;
}

/* Creates the pty pair and the symlink at the bus's device path. */
int sim_rtu_open(struct rtu_port *r)
{
    char name[128];
    struct termios tio;
    const struct cfg_bus *b = r->bus;
    r->master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (r->master_fd < 0 || grantpt(r->master_fd) < 0 || unlockpt(r->master_fd) < 0 ||
        ptsname_r(r->master_fd, name, sizeof(name)) != 0)
        return -errno;
    r->slave_path = xstrdup(name);
    r->slave_fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (r->slave_fd < 0)
        return -errno;
    /* raw until the gateway sets its own line settings: no echo, no line editing */
    if (tcgetattr(r->slave_fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(r->slave_fd, TCSANOW, &tio);
    }
    fcntl(r->master_fd, F_SETFL, fcntl(r->master_fd, F_GETFL) | O_NONBLOCK);
    struct stat st;
    if (lstat(b->device, &st) == 0 && S_ISLNK(st.st_mode))
        unlink(b->device);
    if (symlink(name, b->device) < 0)
        return -errno;
    r->link = xstrdup(b->device);
    r->ctx = modbus_new_rtu(b->device, b->baud > 0 ? b->baud : 9600, b->parity ? b->parity : 'E',
                            b->data_bits > 0 ? b->data_bits : 8,
                            b->stop_bits > 0 ? b->stop_bits : 1);
    if (!r->ctx)
        return -errno;
    return 0;
}

/* Closes the pty and removes our link; the port can be opened again. */
void sim_rtu_close(struct rtu_port *r)
{
    char target[256];
    if (r->link) {
        /* only our own link: another simulator may have taken the path since */
        ssize_t n = readlink(r->link, target, sizeof(target) - 1);
        if (n > 0 && r->slave_path && (size_t)n == strlen(r->slave_path) &&
            strncmp(target, r->slave_path, (size_t)n) == 0)
            unlink(r->link);
    }
    if (r->ctx) {
        modbus_set_socket(r->ctx, -1);
        modbus_free(r->ctx);
    }
    if (r->master_fd >= 0)
        close(r->master_fd);
    if (r->slave_fd >= 0)
        close(r->slave_fd);
    free(r->link);
    free(r->slave_path);
    r->link = r->slave_path = NULL;
    r->ctx = NULL;
    r->master_fd = r->slave_fd = -1;
    r->len = 0;
}

static int write_port_file(const struct sim *s, const char *path)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "we");
    int r = 0;
    if (!f) {
        r = -errno;
        goto out_free;
    }
    for (size_t i = 0; i < s->n_ls; i++)
        fprintf(f, "%d\n", s->ls[i].port);
    if (fclose(f) != 0) {
        r = -errno;
        goto out_unlink;
    }
    if (rename(tmp, path) < 0) {
        r = -errno;
        goto out_unlink;
    }
    goto out_free;
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    return r;
}

/* Builds the meter table and assigns TCP meters to listeners. */
static int setup(struct sim *s, bool one_port, int port, const char *bind_addr)
{
    size_t n = config_count_meters(s->cfg);
    s->meters = xcalloc(n ? n : 1, sizeof(*s->meters));
    for (size_t e = 0; e < s->cfg->n_enterprises; e++) {
        struct cfg_enterprise *ent = &s->cfg->enterprises[e];
        for (size_t j = 0; j < ent->n_meters; j++) {
            struct sim_meter *sm = &s->meters[s->n_meters++];
            sm->m = &ent->meters[j];
            sm->path = xasprintf("%s/%s", ent->id, sm->m->id);
        }
    }
    if (one_port && !is_loopback(bind_addr))
        log_warn("--bind %s is not a loopback address: the simulator is reachable from the "
                 "network",
                 bind_addr);
    size_t n_rtu_skipped = 0;
    for (size_t i = 0; i < s->n_meters; i++) {
        struct sim_meter *sm = &s->meters[i];
        const struct cfg_bus *bus = &s->cfg->buses[sm->m->bus];
        int r;
        if (bus->type != BUS_TCP) {
            const char *why = rtu_unservable(bus->device);
            if (why) {
                log_info("%s: RTU bus '%s' not served: %s is %s", sm->path, bus->name,
                         bus->device ? bus->device : "", why);
                n_rtu_skipped++;
                continue;
            }
            struct rtu_port *rp = rtu_get(s, bus);
            if (bus->protocol != PROTO_MODBUS) {
                /* addressed by number, read by data item: no register map */
                rp->cn = xrealloc(rp->cn, (rp->n_cn + 1) * sizeof(*rp->cn));
                rp->cn[rp->n_cn++] = sm;
                rp->n_meters++;
                continue;
            }
            r = add_unit(rp->by_unit, &rp->n_meters, sm, bus->device, "");
        } else {
            if (!one_port && !is_loopback(bus->host)) {
                log_err("bus '%s' is at %s, not a loopback address: parkgw-sim only serves "
                        "local addresses; use --port N to serve every bus on one local port",
                        bus->name, bus->host);
                return -EINVAL;
            }
            struct listener *l = one_port ? listener_get(s, bind_addr, port)
                                          : listener_get(s, bus->host, bus->port);
            r = listener_add_meter(l, sm);
        }
        if (r < 0)
            return r;
        const struct cfg_profile *p = &s->cfg->profiles[sm->m->profile];
        sm->nregs = sim_profile_nregs(p);
        sm->nbits = sim_profile_nbits(p);
        sm->map = modbus_mapping_new((int)sm->nbits, (int)sm->nbits, (int)sm->nregs,
                                     (int)sm->nregs);
        if (!sm->map)
            return -ENOMEM;
    }
    if (n_rtu_skipped)
        log_notice("%zu meters on RTU buses are not served (their device paths are real "
                   "devices or taken)",
                   n_rtu_skipped);
    if (s->n_rtus > MAX_RTU_PORTS) {
        log_err("%zu RTU buses: parkgw-sim serves at most %d", s->n_rtus, MAX_RTU_PORTS);
        return -EINVAL;
    }
    if (s->n_ls > MAX_LISTENERS) {
        log_err("%zu distinct bus endpoints: parkgw-sim serves at most %d; use --port N",
                s->n_ls, MAX_LISTENERS);
        return -EINVAL;
    }
    if (s->n_ls == 0 && s->n_rtus == 0) {
        log_err("no meter on a TCP bus or a servable RTU bus in %s: nothing to serve",
                s->cfg->path);
        return -EINVAL;
    }
    for (size_t i = 0; i < s->n_ls; i++) {
        struct listener *l = &s->ls[i];
        int r = listener_open(l);
        if (r < 0) {
            log_err("cannot listen on %s:%d: %s", l->host, l->port, strerror(-r));
            return r;
        }
        printf("parkgw-sim: listening on %s:%d (%zu meters)\n", l->host, l->port, l->n_meters);
    }
    for (size_t i = 0; i < s->n_rtus; i++) {
        struct rtu_port *rp = &s->rtus[i];
        int r = sim_rtu_open(rp);
        if (r < 0) {
            log_err("RTU bus '%s': cannot create a pty at %s: %s", rp->bus->name,
                    rp->bus->device, strerror(-r));
            return r;
        }
        printf("parkgw-sim: serving RTU bus %s on %s -> %s (%zu meters)\n", rp->bus->name,
               rp->link, rp->slave_path, rp->n_meters);
    }
    fflush(stdout);
    return 0;
}

static void teardown(struct sim *s)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        if (s->clients[i].fd >= 0)
            close(s->clients[i].fd);
    for (size_t i = 0; i < s->n_ls; i++) {
        if (s->ls[i].fd >= 0)
            close(s->ls[i].fd);
        if (s->ls[i].ctx) {
            /* the ctx only ever borrowed client sockets, already closed */
            modbus_set_socket(s->ls[i].ctx, -1);
            modbus_free(s->ls[i].ctx);
        }
        free(s->ls[i].host);
    }
    free(s->ls);
    for (size_t i = 0; i < s->n_rtus; i++) {
        sim_rtu_close(&s->rtus[i]);
        free(s->rtus[i].cn);
    }
    free(s->rtus);
    for (size_t i = 0; i < s->n_meters; i++) {
        if (s->meters[i].map)
            modbus_mapping_free(s->meters[i].map);
        free(s->meters[i].path);
    }
    free(s->meters);
    free(s->pending);
    if (s->control_fd >= 0 && !s->control_is_stdin)
        close(s->control_fd);
    if (s->control_fifo)
        unlink(s->control_fifo);
    free(s->control_fifo);
}

static int serve(struct sim *s)
{
    struct pollfd pfd[MAX_LISTENERS + MAX_CLIENTS + MAX_RTU_PORTS + 1];
    struct client *pclient[MAX_LISTENERS + MAX_CLIENTS + MAX_RTU_PORTS + 1];
    while (!s->quit && !stop_signal) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_ls; i++) {
            pfd[n] = (struct pollfd){.fd = s->ls[i].fd, .events = POLLIN};
            pclient[n++] = NULL;
        }
        size_t first_client = n;
        for (size_t i = 0; i < MAX_CLIENTS; i++)
            if (s->clients[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = s->clients[i].fd, .events = POLLIN};
                pclient[n++] = &s->clients[i];
            }
        size_t first_rtu = n;
        for (size_t i = 0; i < s->n_rtus; i++) {
            pfd[n] = (struct pollfd){.fd = s->rtus[i].master_fd, .events = POLLIN};
            pclient[n++] = NULL;
        }
        size_t ctl = n;
        if (s->control_fd >= 0) {
            pfd[n] = (struct pollfd){.fd = s->control_fd, .events = POLLIN};
            pclient[n++] = NULL;
        }
        int timeout = 1000;
        int64_t now = now_mono_ms();
        for (size_t i = 0; i < s->n_pending; i++) {
            int64_t wait = s->pending[i].due_ms - now;
            if (wait < timeout)
                timeout = wait < 0 ? 0 : (int)wait;
        }
        int r = poll(pfd, n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log_err("poll: %s", strerror(errno));
            return -errno;
        }
        send_due_replies(s);
        if (r == 0)
            continue;
        for (size_t i = 0; i < first_client; i++)
            if (pfd[i].revents & POLLIN)
                accept_client(s, &s->ls[i]);
        for (size_t i = first_client; i < first_rtu; i++) {
            struct client *c = pclient[i];
            /* a client closed earlier in this round may have been reused */
            if (c->fd != pfd[i].fd || !pfd[i].revents)
                continue;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                client_readable(s, c);
        }
        for (size_t i = first_rtu; i < ctl; i++)
            if (pfd[i].revents & POLLIN)
                rtu_readable(s, &s->rtus[i - first_rtu]);
        if (s->control_fd >= 0 && ctl < n && pfd[ctl].revents)
            sim_control_readable(s);
    }
    if (stop_signal)
        log_info("signal %d, stopping", (int)stop_signal);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"seed", required_argument, NULL, 's'},
        {"port", required_argument, NULL, 'p'},   {"port-file", required_argument, NULL, 'f'},
        {"bind", required_argument, NULL, 'b'},   {"control", required_argument, NULL, 'C'},
        {"dump", required_argument, NULL, 'd'},   {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *config_path = NULL, *port_file = NULL, *bind_addr = "127.0.0.1";
    const char *control = NULL, *dump = NULL;
    int64_t seed = 1, port = -1;
    int opt, ret = 1;
    struct sim s = {.control_fd = -1};
    char err[512];

    while ((opt = getopt_long(argc, argv, "c:s:p:f:b:C:d:vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 's':
            if (parse_int64(optarg, &seed) < 0) {
                fprintf(stderr, "parkgw-sim: bad --seed '%s'\n", optarg);
                return 1;
            }
            break;
        case 'p':
            if (parse_int64(optarg, &port) < 0 || port < 0 || port > 65535) {
                fprintf(stderr, "parkgw-sim: bad --port '%s' (0-65535)\n", optarg);
                return 1;
            }
            break;
        case 'f': port_file = optarg; break;
        case 'b': bind_addr = optarg; break;
        case 'C': control = optarg; break;
        case 'd': dump = optarg; break;
        case 'v': log_set_level(LOG_LVL_DEBUG); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (!config_path || optind != argc) {
        usage(stderr);
        return 1;
    }
    if (config_load(config_path, &s.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "parkgw-sim: %s\n", err);
        return 1;
    }
    /* The meters' clocks run in the park's time zone, as the gateway's:
     * a DL/T 645 meter settles at its local day and hour. */
    if (s.cfg->timezone) {
        setenv("TZ", s.cfg->timezone, 1);
        tzset();
    }
    s.seed = (uint64_t)seed;
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        s.clients[i].fd = -1;

    if (dump) {
        struct sim_meter sm = {.m = config_find_meter(s.cfg, dump), .path = (char *)dump};
        if (!sm.m) {
            fprintf(stderr, "parkgw-sim: no meter '%s' in %s\n", dump, config_path);
            goto out_free_config;
        }
        sim_print_values(&s, &sm, stdout);
        fputc('\n', stdout);
        ret = 0;
        goto out_free_config;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-reply is an EPIPE, not our death */

    int r = sim_control_open(&s, control);
    if (r < 0) {
        fprintf(stderr, "parkgw-sim: control channel %s: %s\n", control, strerror(-r));
        goto out_teardown;
    }
    if (setup(&s, port >= 0, (int)port, bind_addr) < 0)
        goto out_teardown;
    if (port_file && (r = write_port_file(&s, port_file)) < 0) {
        log_err("cannot write port file %s: %s", port_file, strerror(-r));
        goto out_teardown;
    }
    log_info("serving %zu meters of %s, seed %llu", s.n_meters, config_path,
             (unsigned long long)s.seed);
    ret = serve(&s) < 0 ? 2 : 0;
out_teardown:
    teardown(&s);
out_free_config:
    config_free(s.cfg);
    return ret;
}
