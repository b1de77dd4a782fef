/*
 * fuzz_mbtcp.c - libFuzzer target for the Modbus TCP reply parser
 * (protocols/mbtcp.c), the boundary where a TCP gateway's bytes become
 * register values since bus.c does the TCP exchange itself. Input: byte 0
 * the function (bits 0-1 fc-1; bit 7: bits 0-2 raw, 0 and 5-7 invalid),
 * bit 6 a raw quantity (possibly 0 or too large), bit 5 "fix the header"
 * (tid, protocol id, length, unit, function, byte count made consistent so
 * the fuzzer reaches the data), bit 4 fix as an exception; bytes 1-2
 * quantity, 3-4 address, 5-6 transaction id, 7 unit id; the rest is the
 * reply, in a buffer of exactly its size (ASan sees any read past it).
 * Invariants: the result is one of the documented codes (-EINVAL exactly
 * for an invalid request); out is written only on 0, with exactly the
 * quantity of values, each equal to the wire's (bits 0/1); *need only on 1,
 * beyond len and within one ADU; a good reply or an exception has exactly
 * its frame's length, and every shorter prefix of it asks for more.
 */
#include <errno.h>

#include "protocols/bus.h"
#include "protocols/mbtcp.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0x5AA5
#define OUT_SLACK 16

static uint16_t out[2000 + OUT_SLACK];

static bool out_untouched(void)
{
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        if (out[i] != SENTINEL)
            return false;
    return true;
}

static void fill_out(void)
{
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        out[i] = SENTINEL;
}

static bool documented(int rc)
{
    return rc == 0 || rc == 1 || rc == -EBADMSG || rc == -EINVAL ||
           (rc <= -(BUS_EXC_BASE + 1) && rc >= -(BUS_EXC_BASE + 255));
}

/* Parses a copy of buf[0..len) of exactly len bytes. */
static int parse(const uint8_t *buf, size_t len, uint16_t tid, int unit,
                 const struct plan_req *req, size_t *need)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    int rc = mbtcp_parse(copy, len, tid, unit, req, out, need);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    uint16_t rawcount = fz_u16(&in);
    struct plan_req req;
    req.fc = (flags & 0x80) ? (uint8_t)(flags & 7) : (uint8_t)(1 + (flags & 3));
    bool bits = req.fc == 1 || req.fc == 2;
    req.count = (flags & 0x40) ? rawcount : (uint16_t)(1 + rawcount % (bits ? 2000 : 125));
    req.address = fz_u16(&in);
    uint16_t tid = fz_u16(&in);
    int unit = fz_u8(&in);
    if (in.n > MBTCP_MAX_ADU + 16)
        return 0;
    uint8_t buf[MBTCP_MAX_ADU + 16];
    size_t len = in.n;
    memcpy(buf, in.p, len);

    if ((flags & 0x20) && len >= 9) {
        buf[0] = (uint8_t)(tid >> 8);
        buf[1] = (uint8_t)tid;
        buf[2] = buf[3] = 0;
        buf[4] = (uint8_t)((len - 6) >> 8);
        buf[5] = (uint8_t)(len - 6);
        if (unit != 0 && unit != 255)
            buf[6] = (uint8_t)unit;
        if (flags & 0x10) {
            buf[7] = (uint8_t)(req.fc | 0x80);
        } else {
            buf[7] = req.fc;
            buf[8] = (uint8_t)(len - 9);
        }
    }

    fill_out();
    size_t need = SIZE_MAX;
    int rc = parse(buf, len, tid, unit, &req, &need);
    if (!documented(rc))
        abort();
    if ((rc == -EINVAL) != !mbtcp_req_valid(&req))
        abort();
    if (rc == 1 ? need <= len || need < MBTCP_MIN_ADU || need > MBTCP_MAX_ADU
                : need != SIZE_MAX)
        abort();
    if (rc != 0 && !out_untouched())
        abort();

    size_t nbytes = bits ? ((size_t)req.count + 7) / 8 : 2 * (size_t)req.count;
    if (rc == 0) {
        if (len != MBTCP_MBAP_LEN + 2 + nbytes)
            abort();
        for (size_t i = 0; i < req.count; i++) {
            const uint8_t *p = buf + MBTCP_MBAP_LEN + 2;
            uint16_t want = bits ? (uint16_t)(p[i / 8] >> (i % 8) & 1)
                                 : (uint16_t)(p[2 * i] << 8 | p[2 * i + 1]);
            if (out[i] != want)
                abort();
        }
        for (size_t i = req.count; i < sizeof(out) / sizeof(out[0]); i++)
            if (out[i] != SENTINEL)
                abort();
    }
    if (rc <= -BUS_EXC_BASE && len != MBTCP_MIN_ADU)
        abort();

    /* A whole frame arriving in pieces: every piece asks for more. */
    if (rc == 0 || rc <= -BUS_EXC_BASE) {
        for (size_t k = 0; k < len; k++) {
            fill_out();
            need = SIZE_MAX;
            if (parse(buf, k, tid, unit, &req, &need) != 1 || !out_untouched() ||
                need != (k < 6 ? MBTCP_MIN_ADU : len))
                abort();
        }
    }
    return 0;
}
