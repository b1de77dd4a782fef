/*
 * test_bus_cn.c - the bus on DL/T 645-2007 and CJ/T 188 lines (bus.c's
 * serial exchange with dlt645.c / cjt188.c) against a fake meter on a
 * pseudo-terminal: the request bytes as sent, a reply decoded through the
 * plan and decoder, a reply from another address refused (and the next
 * read fine), an abnormal reply, a bad checksum, garbage, silence, a reply
 * in pieces, a block read, a reply shorter than asked; and a CJ/T 188
 * water meter read.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bcd.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/cjt188.h"
#include "protocols/decode.h"
#include "protocols/dlt645.h"
#include "tests/unit/check.h"

#define CLIENT_TIMEOUT_MS 150

enum mode {
    M_NORMAL,
    M_OTHER_ADDR, /* the reply of another meter (address + 1), well formed */
    M_ABNORMAL,   /* error byte 0x02, no data requested */
    M_BADSUM,
    M_GARBAGE,
    M_SILENT,
    M_PIECES, /* one byte per write */
    M_SHORT,  /* one data byte fewer than the item has */
};

struct fake {
    int master;
    pthread_t thread;
    atomic_int mode;
    atomic_int stop;
    bool cjt188;
    uint8_t addr[BCD_MAX_ADDR];
    uint8_t last_req[64];
    atomic_int last_len;
};

static void put(int fd, const uint8_t *p, size_t n, bool pieces)
{
    for (size_t i = 0; i < n;) {
        ssize_t w = write(fd, p + i, pieces ? 1 : n - i);
        if (w <= 0)
            return;
        i += (size_t)w;
    }
}

/* The DL/T 645 reply data for di: energies 123456.78 (total) + 1000 per
 * tariff, the block 0001FF00 total and 4 tariffs, voltage 220.1 V. */
static size_t dlt645_data(uint32_t di, uint8_t *d)
{
    struct bcd_fmt e, v;
    bcd_fmt_parse("XXXXXX.XX", &e);
    bcd_fmt_parse("XXX.X", &v);
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(di >> (8 * i));
    if (di == 0x0001FF00) {
        for (int t = 0; t <= 4; t++)
            bcd_encode_num(123456.78 - 1000.0 * t, &e, false, d + 4 + 4 * t);
        return 4 + 20;
    }
    if (di == 0x02010100) {
        bcd_encode_num(220.1, &v, false, d + 4);
        return 6;
    }
    bcd_encode_num(123456.78, &e, false, d + 4);
    return 8;
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    uint8_t buf[256];
    size_t got = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = f->master, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t n = read(f->master, buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        size_t want = f->cjt188 ? CJT188_READ_REQ_LEN : DLT645_READ_REQ_LEN;
        if (got < want)
            continue;
        memcpy(f->last_req, buf, want);
        atomic_store(&f->last_len, (int)want);
        got = 0;
        /* Taken and reset at once: the test sets the next mode as soon as
         * it has this reply. */
        enum mode mode = (enum mode)atomic_exchange(&f->mode, M_NORMAL);
        uint8_t addr[BCD_MAX_ADDR], rsp[300], d[256];
        memcpy(addr, f->addr, sizeof(addr));
        if (mode == M_OTHER_ADDR)
            addr[0] ^= 0x01;
        size_t len;
        if (f->cjt188) {
            /* DI, SER echoed, then flow 1234.56 m3 and settlement 1200 m3,
             * clock and status. */
            uint8_t w[3 + CJT188_W_LEN] = {buf[15], buf[16], buf[17]};
            cjt188_encode_volume(1234.56, w + 3 + CJT188_W_FLOW);
            cjt188_encode_volume(1200.0, w + 3 + CJT188_W_SETTLE_FLOW);
            len = cjt188_build(rsp, true, CJT188_T_COLD_WATER, addr, 0x81, w, sizeof(w));
        } else {
            uint32_t di = 0;
            for (int i = 0; i < 4; i++)
                di |= (uint32_t)(uint8_t)(buf[14 + i] - 0x33) << (8 * i);
            size_t dn = dlt645_data(di, d);
            if (mode == M_SHORT)
                dn--;
            if (mode == M_ABNORMAL) {
                d[0] = DLT645_ERR_NO_DATA;
                len = dlt645_build(rsp, true, addr, 0xD1, d, 1);
            } else {
                len = dlt645_build(rsp, true, addr, 0x91, d, dn);
            }
        }
        if (mode == M_BADSUM)
            rsp[len - 2] ^= 0x01;
        if (mode == M_GARBAGE) {
            memset(rsp, 0x5A, 16);
            len = 16;
        }
        if (mode != M_SILENT)
            put(f->master, rsp, len, mode == M_PIECES);
    }
    return NULL;
}

static int fake_open(struct fake *f, char **ret_dev)
{
    f->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (f->master < 0 || grantpt(f->master) < 0 || unlockpt(f->master) < 0)
        return -1;
    *ret_dev = xstrdup(ptsname(f->master));
    return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_close(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->master);
}

static void test_dlt645(void)
{
    struct fake f = {0};
    char *dev = NULL;
    CHECK_INT(bcd_addr_parse("000012345678", 6, f.addr), 0);
    if (fake_open(&f, &dev) < 0) {
        CHECK(0);
        return;
    }
    struct cfg_bus cfg = {.name = "pty645",
                          .type = BUS_RTU,
                          .device = dev,
                          .baud = 9600,
                          .parity = 'E',
                          .data_bits = 8,
                          .stop_bits = 1,
                          .timeout_ms = CLIENT_TIMEOUT_MS,
                          .protocol = PROTO_DLT645};
    struct cfg_meter m = {.id = "e1", .address = "000012345678"};
    memcpy(m.addr, f.addr, 6);
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    uint16_t out[256];

    struct plan_req energy = {.fc = PLAN_FC_DLT645, .count = 4, .di = 0x00010000, .exact = true};
    CHECK_INT(bus_read_meter(b, &m, &energy, out), 0);
    /* The request as test_dlt645.c works it out by hand. */
    static const uint8_t want_req[] = {0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x78, 0x56, 0x34, 0x12, 0x00,
                                       0x00, 0x68, 0x11, 0x04, 0x33, 0x33, 0x34, 0x33, 0xC6, 0x16};
    CHECK_INT(atomic_load(&f.last_len), sizeof(want_req));
    CHECK(memcmp(f.last_req, want_req, sizeof(want_req)) == 0);
    struct cfg_point pt = {.name = "energy_import_kwh", .scale = 1.0, .data_len = 4};
    bcd_fmt_parse("XXXXXX.XX", &pt.fmt);
    double v = 0;
    CHECK_INT(decode_point(&pt, 1.0, 1.0, out, &v), 0);
    CHECK_NEAR(v, 123456.78, 1e-6);

    /* A well-formed reply from another address is refused; the line is
     * flushed and the next read is fine. */
    atomic_store(&f.mode, M_OTHER_ADDR);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), -EBADMSG);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), 0);

    atomic_store(&f.mode, M_ABNORMAL);
    int r = bus_read_meter(b, &m, &energy, out);
    CHECK_INT(r, -(DLT645_ERR_BASE + DLT645_ERR_NO_DATA));
    CHECK(r <= -BUS_EXC_BASE); /* counted as an exception: the meter is alive */
    CHECK_STR(bus_strerror(r), "abnormal reply, error 0x02 (no data requested)");

    atomic_store(&f.mode, M_BADSUM);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), -EBADMSG);
    atomic_store(&f.mode, M_GARBAGE);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), -EBADMSG);
    atomic_store(&f.mode, M_SILENT);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), -ETIMEDOUT);
    atomic_store(&f.mode, M_PIECES);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), 0);
    atomic_store(&f.mode, M_SHORT);
    CHECK_INT(bus_read_meter(b, &m, &energy, out), -EBADMSG);
    CHECK(bus_is_connected(b));

    /* The block: total and 4 tariffs in one reply; tariff 2 at byte 8. */
    struct plan_req block = {.fc = PLAN_FC_DLT645, .count = 12, .di = 0x0001FF00};
    CHECK_INT(bus_read_meter(b, &m, &block, out), 0);
    CHECK_INT(decode_point(&pt, 1.0, 1.0, out + 8, &v), 0);
    CHECK_NEAR(v, 121456.78, 1e-6);
    /* A single item must have exactly its size. */
    struct plan_req volt = {.fc = PLAN_FC_DLT645, .count = 4, .di = 0x02010100, .exact = true};
    CHECK_INT(bus_read_meter(b, &m, &volt, out), -EBADMSG);
    volt.count = 2;
    CHECK_INT(bus_read_meter(b, &m, &volt, out), 0);

    /* Wrong kinds of request for this bus. */
    struct plan_req modbus = {.fc = 3, .address = 0, .count = 2};
    CHECK_INT(bus_read_meter(b, &m, &modbus, out), -EINVAL);
    CHECK_INT(bus_read(b, 1, &energy, out), -EINVAL);
    struct plan_req big = {.fc = PLAN_FC_DLT645, .count = 197, .di = 0x0001FF00};
    CHECK_INT(bus_read_meter(b, &m, &big, out), -EINVAL);

    /* The read-address broadcast a scan sends reaches the meter too. */
    uint8_t bc[6];
    bcd_addr_parse("AAAAAAAAAAAA", 6, bc);
    CHECK_INT(bus_read_addr(b, bc, &energy, out), 0);

    bus_free(b);
    fake_close(&f);
    free(dev);
}

static void test_cjt188(void)
{
    struct fake f = {.cjt188 = true};
    char *dev = NULL;
    CHECK_INT(bcd_addr_parse("12345678901234", 7, f.addr), 0);
    if (fake_open(&f, &dev) < 0) {
        CHECK(0);
        return;
    }
    struct cfg_bus cfg = {.name = "pty188",
                          .type = BUS_RTU,
                          .device = dev,
                          .baud = 2400,
                          .parity = 'E',
                          .data_bits = 8,
                          .stop_bits = 1,
                          .timeout_ms = CLIENT_TIMEOUT_MS,
                          .protocol = PROTO_CJT188};
    struct cfg_meter m = {.id = "w1", .address = "12345678901234"};
    memcpy(m.addr, f.addr, 7);
    struct bus *b = NULL;
    CHECK_INT(bus_new(&cfg, &b), 0);
    uint16_t out[256];
    struct plan_req rq = {.fc = PLAN_FC_CJT188, .count = 10, .di = 0x901F, .meter_type = 0x10};
    CHECK_INT(bus_read_meter(b, &m, &rq, out), 0);
    /* The request of test_cjt188.c (SER 00: the bus's first). */
    static const uint8_t want_req[] = {0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x34, 0x12, 0x90, 0x78,
                                       0x56, 0x34, 0x12, 0x01, 0x03, 0x1F, 0x90, 0x00, 0x15, 0x16};
    CHECK(memcmp(f.last_req, want_req, sizeof(want_req)) == 0);
    struct cfg_point flow = {.name = "volume_m3", .scale = 1.0, .data_len = 5},
                     settle = {.name = "settle_m3", .scale = 1.0, .data_len = 5};
    double v = 0;
    CHECK_INT(decode_point(&flow, 1.0, 1.0, out + CJT188_W_FLOW, &v), 0);
    CHECK_NEAR(v, 1234.56, 1e-6);
    CHECK_INT(decode_point(&settle, 1.0, 1.0, out + CJT188_W_SETTLE_FLOW, &v), 0);
    CHECK_NEAR(v, 1200.0, 1e-6);
    atomic_store(&f.mode, M_OTHER_ADDR);
    CHECK_INT(bus_read_meter(b, &m, &rq, out), -EBADMSG);
    /* A gas meter's type at this address: the reply's type 10 is refused. */
    rq.meter_type = 0x30;
    CHECK_INT(bus_read_meter(b, &m, &rq, out), -EBADMSG);
    bus_free(b);
    fake_close(&f);
    free(dev);
}

int main(void)
{
    test_dlt645();
    test_cjt188();
    return check_done();
}
