/*
 * bus.c - one Modbus bus: a TCP gateway or an RS-485 line, chosen by a
 * backend table. libmodbus opens both (connect, reconnect with a capped
 * exponential backoff between failed attempts) and does the RTU exchange;
 * on TCP the exchange is ours (send, poll, recv on libmodbus's socket,
 * framing by mbtcp.c), three syscalls a request instead of libmodbus's
 * seven. After a failed read the bus drops the TCP connection or lets the
 * RTU line settle, so a late reply is never mistaken for the next one. A lost
 * connection or a vanished serial device closes the bus; the next read
 * reopens it. Used by the poller's per-bus thread (and `parkgw probe`) only.
 */
#include "protocols/bus.h"

#include <errno.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "protocols/cjt188.h"
#include "protocols/dlt645.h"
#include "protocols/mbtcp.h"

struct bus;

/* Who a request is for: a Modbus unit id, or the wire form of a DL/T 645
 * or CJ/T 188 meter address. */
struct bus_dest {
    int unit_id;
    const uint8_t *addr;
};

struct bus_backend {
    const char *name;
    /* A new, unconnected libmodbus context for cfg, or NULL with errno set. */
    modbus_t *(*create)(const struct cfg_bus *cfg);
    /* Human description of the endpoint, for log lines. */
    void (*describe)(const struct cfg_bus *cfg, char *buf, size_t len);
    /* One request and its reply on the connected bus: 0 (out filled) or a
     * bus_read error; what that error does to the link is bus_read's job. */
    int (*exchange)(struct bus *b, const struct bus_dest *d, const struct plan_req *req,
                    uint16_t *out);
    /* Called after a request timed out: its reply may still come and must
     * not be read as the answer to the next request. */
    void (*after_timeout)(struct bus *b);
    /* Called after a malformed reply (-EBADMSG) or an exception: whatever
     * may be left of the reply must not start the next one. */
    void (*after_bad_reply)(struct bus *b, int err);
    /* Line settings that need an open descriptor; NULL when none. */
    void (*after_connect)(struct bus *b);
};

struct bus {
    const struct bus_backend *backend;
    modbus_t *ctx;
    bool connected;
    int timeout_ms;
    uint16_t tid;                /* TCP: transaction id of the last request */
    char desc[160];
    /* reconnect backoff */
    int64_t next_connect_ms;     /* monotonic; 0 = may connect now */
    int64_t backoff_ms;          /* wait after the next failed connect */
    unsigned connect_failures;   /* in a row */
    /* RTU line options */
    bool rs485;
    bool rs485_warned;
    int frame_delay_ms;
    int64_t last_frame_end_ms;   /* monotonic end of the last exchange */
    /* DL/T 645 / CJ/T 188 lines */
    enum bus_protocol proto;
    int baud;
    int bits_per_char;
    uint8_t ser;                 /* CJ/T 188 sequence number */
};

static modbus_t *tcp_create(const struct cfg_bus *cfg)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", cfg->port > 0 ? cfg->port : 502);
    return modbus_new_tcp_pi(cfg->host ? cfg->host : "", port);
}

static void tcp_describe(const struct cfg_bus *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s (tcp %s:%d)", cfg->name ? cfg->name : "?",
             cfg->host ? cfg->host : "?", cfg->port > 0 ? cfg->port : 502);
}

static modbus_t *rtu_create(const struct cfg_bus *cfg)
{
    if (!cfg->device) {
        errno = EINVAL;
        return NULL;
    }
    return modbus_new_rtu(cfg->device, cfg->baud > 0 ? cfg->baud : 9600,
                          cfg->parity ? cfg->parity : 'E',
                          cfg->data_bits > 0 ? cfg->data_bits : 8,
                          cfg->stop_bits > 0 ? cfg->stop_bits : 1);
}

static void rtu_describe(const struct cfg_bus *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s (rtu %s %d %d%c%d%s)", cfg->name ? cfg->name : "?",
             cfg->device ? cfg->device : "?", cfg->baud, cfg->data_bits,
             cfg->parity ? cfg->parity : '?', cfg->stop_bits, cfg->rs485 ? " rs485" : "");
}

/* RS-485 mode asks the kernel driver to drive the transceiver's DE/RE line
 * (TIOCSRS485). Most USB adapters switch direction in hardware and refuse
 * the ioctl: that is worth one warning, never a reason not to poll. */
static void rtu_after_connect(struct bus *b)
{
    if (b->rs485 && modbus_rtu_set_serial_mode(b->ctx, MODBUS_RTU_RS485) < 0 &&
        !b->rs485_warned) {
        b->rs485_warned = true;
        log_warn("bus %s: rs485 = true but the port refuses RS-485 mode (%s); polling "
                 "anyway, relying on the adapter to switch direction itself",
                 b->desc, strerror(errno));
    }
    /* Bytes from before we opened the port (another program, line noise at
     * power-up) must not be read as the first reply. */
    modbus_flush(b->ctx);
}

/* On a stream the only certain way is a new connection: the late reply goes
 * to the old socket (libmodbus would also reject it by transaction id, but
 * then the request after it would fail too). */
static void tcp_after_timeout(struct bus *b)
{
    bus_close(b);
}

/* An exception reply was read whole: the stream is in step. A malformed one
 * may have been cut anywhere (or be a late reply to an earlier request), so
 * where the next reply starts is unknown: only a new connection is sure. */
static void tcp_after_bad_reply(struct bus *b, int err)
{
    if (err == -EBADMSG)
        bus_close(b);
}

/* A failed send() or recv(): the peer is gone, or the link has some other
 * lasting error; either way the bus closes. */
static int tcp_link_errno(int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
    case EBADF:
        return -ECONNRESET;
    case 0:
        return -EIO;
    default:
        /* Not the error classes the poller counts apart (a keepalive
         * ETIMEDOUT is a dead link, not a silent meter). */
        return e == ETIMEDOUT || e == EBADMSG || e == EINVAL ? -ECONNRESET : -e;
    }
}

/* Waits until fd is ready for 'events' or the deadline passes: 1, 0 on
 * timeout, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { .fd = fd, .events = events };
        int rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        return rc > 0;
    }
}

/* Writes buf whole to the non-blocking fd (a socket: send() without
 * SIGPIPE), waiting for room until the deadline. 0, -ETIMEDOUT, or the
 * -errno of the failed call for the caller to map. */
static int send_req(int fd, bool sock, const uint8_t *buf, size_t len, int64_t deadline)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = sock ? send(fd, buf + sent, len - sent, MSG_NOSIGNAL)
                         : write(fd, buf + sent, len - sent);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (n == 0)
            return -EIO;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc <= 0)
            return rc < 0 ? rc : -ETIMEDOUT;
    }
    return 0;
}

/*
 * libmodbus 3.1.6 reads a TCP reply in three steps (header, byte count,
 * data), each after a select(): 7 syscalls a request. Here: one send(),
 * then poll() + recv() until the parser has a whole frame, normally once.
 * b->timeout_ms is one deadline for the whole reply. The socket is
 * libmodbus's, non-blocking.
 */
static int tcp_exchange(struct bus *b, const struct bus_dest *d, const struct plan_req *req,
                        uint16_t *out)
{
    int unit_id = d->unit_id;
    int fd = modbus_get_socket(b->ctx);
    uint8_t q[MBTCP_REQ_LEN];
    uint16_t tid = ++b->tid;
    size_t qlen = mbtcp_build_request(q, tid, unit_id, req);
    int64_t deadline = now_mono_ms() + b->timeout_ms;

    /* 12 bytes fit any socket buffer at once; send_req covers the
     * theoretical short send into a full buffer. */
    int rc = send_req(fd, true, q, qlen, deadline);
    if (rc < 0)
        return rc == -ETIMEDOUT ? rc : tcp_link_errno(-rc);

    /* One byte more than the longest frame, so that bytes after the reply
     * in the same segment are seen (and refused) now. */
    uint8_t rsp[MBTCP_MAX_ADU + 1];
    size_t got = 0;
    for (;;) {
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc <= 0)
            return rc < 0 ? tcp_link_errno(-rc) : -ETIMEDOUT;
        ssize_t n = recv(fd, rsp + got, sizeof(rsp) - got, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return tcp_link_errno(errno);
        }
        got += (size_t)n;
        size_t need;
        rc = mbtcp_parse(rsp, got, tid, unit_id, req, out, &need);
        if (rc != 1)
            return rc;
    }
}

/* A serial line has no transaction id: a late reply for the same unit and
 * function would be accepted as the next answer. So the line must settle:
 * for one more response timeout everything that arrives is discarded, and
 * while bytes keep coming the window stretches (a reply in progress), up to
 * twice the timeout. A timed-out RTU request thus costs up to three
 * timeouts of bus time; the poller's back-off keeps a dead meter from
 * taking the bus with it. */
#define RTU_SETTLE_GAP_MS 20

static void rtu_after_timeout(struct bus *b)
{
    int fd = modbus_get_socket(b->ctx);
    int64_t start = now_mono_ms();
    int64_t deadline = start + b->timeout_ms;
    int64_t hard_stop = start + 2 * (int64_t)b->timeout_ms;
    char junk[256];

    while (fd >= 0) {
        int64_t now = now_mono_ms();
        if (now >= deadline)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0 || !(pfd.revents & POLLIN))
            break;
        /* The device is non-blocking (libmodbus opens it O_NDELAY). */
        if (read(fd, junk, sizeof(junk)) <= 0)
            break;
        now = now_mono_ms();
        if (now + RTU_SETTLE_GAP_MS > deadline)
            deadline = now + RTU_SETTLE_GAP_MS;
        if (deadline > hard_stop)
            deadline = hard_stop;
    }
    modbus_flush(b->ctx);
}

/* The rest of a bad frame may still be arriving or buffered. */
static void rtu_after_bad_reply(struct bus *b, int err)
{
    UNUSED(err);
    modbus_flush(b->ctx);
}

/* Maps the errno of a failed libmodbus read to our contract. */
static int map_modbus_errno(int e)
{
    if (e > MODBUS_ENOBASE && e <= EMBXGTAR)
        return -(BUS_EXC_BASE + (e - MODBUS_ENOBASE));
    switch (e) {
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EMBBADCRC:
    case EMBBADDATA:
    case EMBBADEXC:
    case EMBUNKEXC:
    case EMBMDATA:
    case EMBBADSLAVE:
        return -EBADMSG;
    case ECONNRESET:
    case EPIPE:
    case ECONNREFUSED:
    case EBADF:
    case ENOTCONN:
        return -ECONNRESET;
    case 0:
        return -EIO;
    default:
        return e > 0 && e < MODBUS_ENOBASE ? -e : -EIO;
    }
}

static int rtu_exchange(struct bus *b, const struct bus_dest *d, const struct plan_req *req,
                        uint16_t *out)
{
    UNUSED(d); /* the unit id is set on the context by bus_read */
    uint8_t bitbuf[MODBUS_MAX_READ_BITS];
    int rc;

    errno = 0;
    switch (req->fc) {
    case 1:
        rc = modbus_read_bits(b->ctx, req->address, req->count, bitbuf);
        break;
    case 2:
        rc = modbus_read_input_bits(b->ctx, req->address, req->count, bitbuf);
        break;
    case 3:
        rc = modbus_read_registers(b->ctx, req->address, req->count, out);
        break;
    default:
        rc = modbus_read_input_registers(b->ctx, req->address, req->count, out);
        break;
    }
    if (rc == req->count) {
        if (req->fc <= 2)
            for (int i = 0; i < req->count; i++)
                out[i] = bitbuf[i] ? 1 : 0;
        return 0;
    }
    /* A short count with rc >= 0 cannot happen in 3.1.6 (it checks the
     * quantity), but if it did the reply was not what we asked for. */
    return rc < 0 ? map_modbus_errno(errno) : -EBADMSG;
}

static void cn_describe(const struct cfg_bus *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s (%s %s %d %d%c%d%s)", cfg->name ? cfg->name : "?",
             bus_protocol_name(cfg->protocol), cfg->device ? cfg->device : "?", cfg->baud,
             cfg->data_bits, cfg->parity ? cfg->parity : '?', cfg->stop_bits,
             cfg->rs485 ? " rs485" : "");
}

/* A failed write() or read() on the serial device: the adapter is gone
 * (EIO, ENXIO, ENODEV) or the descriptor is bad; the bus closes. */
static int serial_link_errno(int e)
{
    return e == 0 || e == ETIMEDOUT || e == EBADMSG || e == EINVAL ? -EIO : -e;
}

/*
 * A DL/T 645 or CJ/T 188 exchange on the serial descriptor libmodbus
 * opened and configured (baud, parity, non-blocking): write the request
 * with its wake-up bytes, then poll() + read() until the parser has a
 * whole reply. The response timeout counts from the end of the request on
 * the wire (at 2400 baud its 20 characters take 92 ms), not from write(),
 * which returns as soon as the kernel has the bytes.
 */
/* Parses the reply bytes received so far: 0 whole and accepted, 1 more
 * needed, or a bus_read error. */
typedef int (*cn_parse_fn)(const uint8_t *rsp, size_t got, void *ctx);

/* Writes request q, then reads until parse accepts or refuses the reply. */
static int cn_transact(struct bus *b, const uint8_t *q, size_t qlen, cn_parse_fn parse, void *ctx)
{
    int fd = modbus_get_socket(b->ctx);
    int64_t wire_ms = ((int64_t)qlen * b->bits_per_char * 1000 + b->baud - 1) / b->baud;
    int64_t deadline = now_mono_ms() + wire_ms + b->timeout_ms;

    int rc = send_req(fd, false, q, qlen, deadline);
    if (rc < 0)
        return rc == -ETIMEDOUT ? rc : serial_link_errno(-rc);

    /* One byte more than the longest reply, so a longer one is refused. */
    uint8_t rsp[CJT188_MAX_FRAME + 1];
    _Static_assert(CJT188_MAX_FRAME >= DLT645_MAX_FRAME, "room for either reply");
    size_t got = 0;
    for (;;) {
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc <= 0)
            return rc < 0 ? serial_link_errno(-rc) : -ETIMEDOUT;
        ssize_t n = read(fd, rsp + got, sizeof(rsp) - got);
        if (n == 0)
            return -EIO; /* hang-up: the device or the pty's far end is gone */
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return serial_link_errno(errno);
        }
        got += (size_t)n;
        rc = parse(rsp, got, ctx);
        if (rc != 1)
            return rc;
    }
}

struct cn_read {
    const struct bus *b;
    const struct bus_dest *d;
    const struct plan_req *req;
    uint16_t *out;
};

static int cn_parse_read(const uint8_t *rsp, size_t got, void *ctx)
{
    const struct cn_read *c = ctx;
    uint8_t data[CJT188_MAX_DATA];
    size_t need, len = 0;
    int rc = c->b->proto == PROTO_DLT645
                 ? dlt645_parse_read(rsp, got, c->d->addr, c->req->di, data, &len, &need)
                 : cjt188_parse_read(rsp, got, c->req->meter_type, c->d->addr,
                                     (uint16_t)c->req->di, data, &len, &need);
    if (rc != 0)
        return rc;
    if (c->req->exact ? len != c->req->count : len < c->req->count)
        return -EBADMSG;
    for (size_t i = 0; i < c->req->count; i++)
        c->out[i] = data[i];
    return 0;
}

static int cn_exchange(struct bus *b, const struct bus_dest *d, const struct plan_req *req,
                       uint16_t *out)
{
    uint8_t q[DLT645_READ_REQ_LEN > CJT188_READ_REQ_LEN ? DLT645_READ_REQ_LEN
                                                         : CJT188_READ_REQ_LEN];
    size_t qlen = b->proto == PROTO_DLT645
                      ? dlt645_build_read(q, d->addr, req->di)
                      : cjt188_build_read(q, req->meter_type, d->addr, (uint16_t)req->di,
                                          b->ser++);
    struct cn_read c = {b, d, req, out};
    return cn_transact(b, q, qlen, cn_parse_read, &c);
}

/* The DL/T 645 broadcast address: every byte a wildcard. */
static const uint8_t any[DLT645_ADDR_LEN] = {0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA};

/* The reply to the broadcast read-address: the meter's address, in its
 * header and as its data (which must agree, and be BCD). */
static int cn_parse_address(const uint8_t *rsp, size_t got, void *ctx)
{
    struct dlt645_frame f;
    size_t need;
    int rc = dlt645_parse(rsp, got, any, DLT645_C_READ_ADDR, &f, &need);
    if (rc != 0)
        return rc;
    if (f.len != DLT645_ADDR_LEN || memcmp(f.data, f.addr, DLT645_ADDR_LEN) != 0)
        return -EBADMSG;
    for (int i = 0; i < DLT645_ADDR_LEN; i++)
        if (bcd_byte(f.addr[i]) < 0)
            return -EBADMSG;
    memcpy(ctx, f.addr, DLT645_ADDR_LEN);
    return 0;
}

static const struct bus_backend bus_tcp = {
    .name = "tcp",
    .create = tcp_create,
    .describe = tcp_describe,
    .exchange = tcp_exchange,
    .after_timeout = tcp_after_timeout,
    .after_bad_reply = tcp_after_bad_reply,
    .after_connect = NULL,
};

static const struct bus_backend bus_rtu = {
    .name = "rtu",
    .create = rtu_create,
    .describe = rtu_describe,
    .exchange = rtu_exchange,
    .after_timeout = rtu_after_timeout,
    .after_bad_reply = rtu_after_bad_reply,
    .after_connect = rtu_after_connect,
};

/* DL/T 645 and CJ/T 188 on a serial line: opened by libmodbus like RTU
 * (it sets the line and reopens a vanished adapter), the exchange ours. */
static const struct bus_backend bus_cn = {
    .name = "serial",
    .create = rtu_create,
    .describe = cn_describe,
    .exchange = cn_exchange,
    .after_timeout = rtu_after_timeout,
    .after_bad_reply = rtu_after_bad_reply,
    .after_connect = rtu_after_connect,
};

static void set_timeout(modbus_t *ctx, int ms, int (*setter)(modbus_t *, uint32_t, uint32_t))
{
    setter(ctx, (uint32_t)(ms / 1000), (uint32_t)(ms % 1000) * 1000);
}

int bus_new(const struct cfg_bus *cfg, struct bus **ret)
{
    const struct bus_backend *be;

    switch (cfg->type) {
    case BUS_TCP:
        be = &bus_tcp;
        break;
    case BUS_RTU:
        be = cfg->protocol == PROTO_MODBUS ? &bus_rtu : &bus_cn;
        break;
    default:
        return -EINVAL;
    }

    errno = 0;
    modbus_t *ctx = be->create(cfg);
    if (!ctx)
        return errno ? -errno : -EINVAL;

    int timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 500;
    set_timeout(ctx, timeout_ms, modbus_set_response_timeout);
    if (cfg->byte_timeout_ms > 0)
        set_timeout(ctx, cfg->byte_timeout_ms, modbus_set_byte_timeout);
    /* Recovery is ours: libmodbus must not reconnect or sleep behind our back. */
    modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);

    struct bus *b = xcalloc(1, sizeof(*b));
    b->backend = be;
    b->ctx = ctx;
    b->timeout_ms = timeout_ms;
    b->backoff_ms = BUS_BACKOFF_MIN_MS;
    if (cfg->type == BUS_RTU) {
        b->rs485 = cfg->rs485;
        b->frame_delay_ms = cfg->frame_delay_ms;
        b->proto = cfg->protocol;
        b->baud = cfg->baud > 0 ? cfg->baud : 9600;
        b->bits_per_char = 1 + (cfg->data_bits > 0 ? cfg->data_bits : 8) +
                           (cfg->parity && cfg->parity != 'N') +
                           (cfg->stop_bits > 0 ? cfg->stop_bits : 1);
    }
    be->describe(cfg, b->desc, sizeof(b->desc));
    *ret = b;
    return 0;
}

void bus_free(struct bus *b)
{
    if (!b)
        return;
    bus_close(b);
    modbus_free(b->ctx);
    free(b);
}

/*
 * The bus logs its own connection state changes (once each way), unlike
 * read errors: only the bus knows that twenty meters failing with -ENOTCONN
 * are one gateway that is down, and the poller logs per meter.
 */
static int connect_failed(struct bus *b, int err)
{
    b->connect_failures++;
    b->next_connect_ms = now_mono_ms() + b->backoff_ms;
    if (b->connect_failures == 1)
        log_warn("bus %s: cannot connect: %s; retrying after %lld ms, backing off up to %d s",
                 b->desc, strerror(err), (long long)b->backoff_ms, BUS_BACKOFF_MAX_MS / 1000);
    else
        log_debug("bus %s: connect attempt %u failed: %s; next in %lld ms", b->desc,
                  b->connect_failures, strerror(err), (long long)b->backoff_ms);
    b->backoff_ms = b->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS
                                                          : b->backoff_ms * 2;
    return -err;
}

int bus_connect(struct bus *b)
{
    if (b->connected)
        return 0;
    if (b->next_connect_ms && now_mono_ms() < b->next_connect_ms)
        return -ENOTCONN;
    errno = 0;
    if (modbus_connect(b->ctx) < 0) {
        /* libmodbus's connect timeout (select() returning 0) leaves errno
         * as EINPROGRESS from the non-blocking connect(). */
        int err = errno;
        if (err == 0 || err == EINPROGRESS)
            err = ETIMEDOUT;
        /* Every failing path of libmodbus's connect closes its own fd. */
        return connect_failed(b, err);
    }
    /* libmodbus 3.1.6 already opens with SOCK_CLOEXEC / O_CLOEXEC; this
     * keeps the guarantee should it ever stop doing so. */
    int fd = modbus_get_socket(b->ctx);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    }
    b->connected = true;
    if (b->connect_failures)
        log_notice("bus %s: connected again after %u failed attempt%s", b->desc,
                   b->connect_failures, b->connect_failures == 1 ? "" : "s");
    else
        log_debug("bus %s: connected", b->desc);
    b->connect_failures = 0;
    b->next_connect_ms = 0;
    b->backoff_ms = BUS_BACKOFF_MIN_MS;
    if (b->backend->after_connect)
        b->backend->after_connect(b);
    return 0;
}

int64_t bus_connect_wait_ms(const struct bus *b)
{
    if (b->connected || !b->next_connect_ms)
        return 0;
    int64_t left = b->next_connect_ms - now_mono_ms();
    return left > 0 ? left : 0;
}

void bus_close(struct bus *b)
{
    if (!b || !b->connected)
        return;
    modbus_close(b->ctx);
    b->connected = false;
}

bool bus_is_connected(const struct bus *b)
{
    return b->connected;
}

/* True when req is a request this bus can send. */
static bool req_fits_bus(const struct bus *b, const struct plan_req *req)
{
    switch (b->proto) {
    case PROTO_DLT645:
        return req->fc == PLAN_FC_DLT645 && req->count >= 1 &&
               req->count <= DLT645_MAX_DATA - 4;
    case PROTO_CJT188:
        return req->fc == PLAN_FC_CJT188 && req->count >= 1 && req->count <= CJT188_MAX_DATA - 3 &&
               req->di <= 0xFFFF;
    default:
        return mbtcp_req_valid(req);
    }
}

/* Connects, keeps the frame delay, runs one exchange (fn) and recovers
 * from its error as bus_read describes. */
static int bus_run(struct bus *b, int (*fn)(struct bus *b, void *arg), void *arg)
{
    int rc = bus_connect(b);
    if (rc < 0)
        return rc;
    if (b->frame_delay_ms > 0 && b->last_frame_end_ms) {
        /* Slow devices and some RS-232/485 converters need more silence
         * between frames than the 3.5 characters of the standard. */
        int64_t wait = b->last_frame_end_ms + b->frame_delay_ms - now_mono_ms();
        if (wait > 0)
            sleep_ms(wait);
    }

    int err = fn(b, arg);
    if (b->frame_delay_ms > 0)
        b->last_frame_end_ms = now_mono_ms();
    if (err == 0)
        return 0;
    if (err == -ETIMEDOUT)
        b->backend->after_timeout(b);
    else if (err == -EBADMSG || err <= -BUS_EXC_BASE)
        b->backend->after_bad_reply(b, err);
    else
        /* The link itself failed: a reset connection, or a serial device
         * that vanished (USB adapter unplugged: EIO/ENXIO/ENODEV). Reopen on
         * the next read; the device path finds the adapter when it returns. */
        bus_close(b);
    return err;
}

struct exchange_arg {
    const struct bus_dest *d;
    const struct plan_req *req;
    uint16_t *out;
};

static int run_exchange(struct bus *b, void *arg)
{
    const struct exchange_arg *x = arg;
    return b->backend->exchange(b, x->d, x->req, x->out);
}

static int bus_exchange(struct bus *b, const struct bus_dest *d, const struct plan_req *req,
                        uint16_t *out)
{
    if (!req_fits_bus(b, req))
        return -EINVAL;
    /* Also the unit id check of both kinds of bus (TCP: 0-247 or 255). */
    if (b->proto == PROTO_MODBUS && modbus_set_slave(b->ctx, d->unit_id) < 0)
        return -EINVAL;
    struct exchange_arg x = {d, req, out};
    return bus_run(b, run_exchange, &x);
}

static int run_read_address(struct bus *b, void *arg)
{
    uint8_t q[DLT645_PREAMBLE_LEN + DLT645_OVERHEAD];
    size_t qlen = dlt645_build(q, true, any, DLT645_C_READ_ADDR, NULL, 0);
    return cn_transact(b, q, qlen, cn_parse_address, arg);
}

int bus_read_address(struct bus *b, uint8_t ret_addr[BCD_MAX_ADDR])
{
    uint8_t a[DLT645_ADDR_LEN];
    if (b->proto != PROTO_DLT645)
        return -EINVAL;
    int rc = bus_run(b, run_read_address, a);
    if (rc == 0)
        memcpy(ret_addr, a, sizeof(a));
    return rc;
}

int bus_read(struct bus *b, int unit_id, const struct plan_req *req, uint16_t *out)
{
    if (b->proto != PROTO_MODBUS)
        return -EINVAL;
    struct bus_dest d = {.unit_id = unit_id};
    return bus_exchange(b, &d, req, out);
}

int bus_read_meter(struct bus *b, const struct cfg_meter *m, const struct plan_req *req,
                   uint16_t *out)
{
    struct bus_dest d = {.unit_id = m->unit_id, .addr = m->addr};
    return bus_exchange(b, &d, req, out);
}

int bus_read_addr(struct bus *b, const uint8_t *addr, const struct plan_req *req, uint16_t *out)
{
    if (b->proto == PROTO_MODBUS)
        return -EINVAL;
    struct bus_dest d = {.addr = addr};
    return bus_exchange(b, &d, req, out);
}

static const char *const exc_text[] = {
    [1] = "exception 1 (illegal function)",
    [2] = "exception 2 (illegal data address)",
    [3] = "exception 3 (illegal data value)",
    [4] = "exception 4 (server device failure)",
    [5] = "exception 5 (acknowledge)",
    [6] = "exception 6 (server device busy)",
    [7] = "exception 7 (negative acknowledge)",
    [8] = "exception 8 (memory parity error)",
    [10] = "exception 10 (gateway path unavailable)",
    [11] = "exception 11 (gateway target device failed to respond)",
};

const char *bus_strerror(int err)
{
    int e = err < 0 ? -err : err;
    static _Thread_local char text[96];

    if (e >= DLT645_ERR_BASE && e <= DLT645_ERR_BASE + 255) {
        uint8_t code = (uint8_t)(e - DLT645_ERR_BASE);
        snprintf(text, sizeof(text), "abnormal reply, error 0x%02X (%s)", code,
                 dlt645_err_text(code));
        return text;
    }
    if (e >= CJT188_ERR_BASE && e <= CJT188_ERR_BASE + 255) {
        snprintf(text, sizeof(text), "abnormal reply, status 0x%02X", e - CJT188_ERR_BASE);
        return text;
    }
    if (e > BUS_EXC_BASE) {
        int code = e - BUS_EXC_BASE;
        if (code < (int)ARRAY_SIZE(exc_text) && exc_text[code])
            return exc_text[code];
        return "exception (unknown code)";
    }
    switch (e) {
    case 0:
        return "success";
    case ETIMEDOUT:
        return "timeout (no reply)";
    case EBADMSG:
        return "malformed reply (bad CRC or checksum, length, header or address)";
    case ECONNRESET:
        return "connection lost";
    case EPIPE:
        return "connection lost (broken pipe)";
    case ENOTCONN:
        return "not connected (waiting before the next connect attempt)";
    case EIO:
        return "I/O error (serial device gone?)";
    default:
        return strerror(e);
    }
}
