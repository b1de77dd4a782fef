/*
 * test_mbtcp.c - Modbus TCP framing (protocols/mbtcp.c) on hand-built
 * frames: the request ADU byte by byte; replies to fc 3/4 (1, 2, 125
 * registers) and fc 1/2 (1, 8, 9, 2000 bits); every exception code; each
 * header or PDU field wrong in turn; every truncation of a valid frame
 * (asks for more, with the right total); trailing bytes; the limits of the
 * length field; unit ids 0 and 255; out untouched unless the reply is good.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/mbtcp.h"
#include "tests/unit/check.h"

#define SENTINEL 0xA5A5
#define OUT_MAX 2000

static uint16_t out[OUT_MAX + 8];

static void fill_out(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(out); i++)
        out[i] = SENTINEL;
}

/* Writes an ADU: MBAP (length computed from the PDU) + pdu. Returns its size. */
static size_t adu(uint8_t *f, uint16_t tid, uint8_t unit, const uint8_t *pdu, size_t n)
{
    f[0] = (uint8_t)(tid >> 8);
    f[1] = (uint8_t)tid;
    f[2] = 0;
    f[3] = 0;
    f[4] = (uint8_t)((n + 1) >> 8);
    f[5] = (uint8_t)(n + 1);
    f[6] = unit;
    memcpy(f + 7, pdu, n);
    return 7 + n;
}

/* A good reply to req: registers hold 0x1234 + 0x0101 * i, bit i is set
 * when i % 3 == 0 or i % 7 == 0. */
static size_t good_reply(uint8_t *f, uint16_t tid, uint8_t unit, const struct plan_req *req)
{
    uint8_t pdu[2 + 250] = { req->fc };
    bool bits = req->fc <= 2;
    size_t data = bits ? ((size_t)req->count + 7) / 8 : 2 * (size_t)req->count;
    pdu[1] = (uint8_t)data;
    memset(pdu + 2, 0, data);
    for (size_t i = 0; i < req->count; i++) {
        if (bits) {
            if (i % 3 == 0 || i % 7 == 0)
                pdu[2 + i / 8] |= (uint8_t)(1u << (i % 8));
        } else {
            uint16_t v = (uint16_t)(0x1234 + 0x0101 * i);
            pdu[2 + 2 * i] = (uint8_t)(v >> 8);
            pdu[3 + 2 * i] = (uint8_t)v;
        }
    }
    return adu(f, tid, unit, pdu, 2 + data);
}

static bool out_matches(const struct plan_req *req)
{
    for (size_t i = 0; i < req->count; i++) {
        uint16_t want = req->fc <= 2 ? (uint16_t)(i % 3 == 0 || i % 7 == 0)
                                     : (uint16_t)(0x1234 + 0x0101 * i);
        if (out[i] != want) {
            fprintf(stderr, "out[%zu] = 0x%04x, want 0x%04x\n", i, out[i], want);
            return false;
        }
    }
    return out[req->count] == SENTINEL; /* nothing written past the count */
}

static bool out_untouched(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(out); i++)
        if (out[i] != SENTINEL)
            return false;
    return true;
}

/* Parses f[0..n) into a buffer of exactly n bytes, so that ASan sees any
 * read past the end. */
static int parse(const uint8_t *f, size_t n, uint16_t tid, int unit, const struct plan_req *req,
                 size_t *need)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, f, n);
    int rc = mbtcp_parse(copy, n, tid, unit, req, out, need);
    free(copy);
    return rc;
}

static void test_request(void)
{
    uint8_t q[MBTCP_REQ_LEN];
    struct plan_req r = {.fc = 4, .address = 0x1234, .count = 125};
    CHECK_INT(mbtcp_build_request(q, 0xBEEF, 17, &r), 12);
    static const uint8_t want[12] = { 0xBE, 0xEF, 0, 0, 0, 6, 17, 4, 0x12, 0x34, 0, 125 };
    CHECK(memcmp(q, want, 12) == 0);
    struct plan_req bits = {.fc = 1, .address = 65535, .count = 1};
    mbtcp_build_request(q, 1, 255, &bits);
    static const uint8_t want2[12] = { 0, 1, 0, 0, 0, 6, 255, 1, 0xFF, 0xFF, 0, 1 };
    CHECK(memcmp(q, want2, 12) == 0);
    struct plan_req many = {.fc = 2, .address = 0, .count = 2000};
    mbtcp_build_request(q, 0, 0, &many);
    CHECK_INT(q[10], 2000 >> 8);
    CHECK_INT(q[11], 2000 & 0xFF);
}

static void test_valid(void)
{
    CHECK(mbtcp_req_valid(&(struct plan_req){.fc = 3, .address = 0, .count = 125}));
    CHECK(mbtcp_req_valid(&(struct plan_req){.fc = 1, .address = 0, .count = 2000}));
    CHECK(mbtcp_req_valid(&(struct plan_req){.fc = 4, .address = 65535, .count = 1}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 3, .address = 0, .count = 126}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 2, .address = 0, .count = 2001}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 3, .address = 0, .count = 0}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 0, .address = 0, .count = 1}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 5, .address = 0, .count = 1}));
    CHECK(!mbtcp_req_valid(&(struct plan_req){.fc = 3, .address = 65535, .count = 2}));
    uint8_t f[16] = { 0 };
    size_t need = 0;
    fill_out();
    CHECK_INT(parse(f, 9, 0, 1, &(struct plan_req){.fc = 5, .address = 0, .count = 1}, &need), -EINVAL);
    CHECK(out_untouched());
}

/* A good reply parses, and every proper prefix of it asks for more: the
 * shortest frame before the length field is in, the whole frame after. */
static void check_good(const struct plan_req *req, uint16_t tid, int unit, uint8_t reply_unit)
{
    uint8_t f[MBTCP_MAX_ADU + 8];
    size_t n = good_reply(f, tid, reply_unit, req);
    size_t need = 0;

    for (size_t k = 0; k < n; k++) {
        fill_out();
        need = 0;
        int rc = parse(f, k, tid, unit, req, &need);
        CHECK_INT(rc, 1);
        CHECK_INT(need, k < 6 ? MBTCP_MIN_ADU : n);
        if (rc != 1 || !out_untouched()) {
            fprintf(stderr, "  prefix %zu of fc %d count %d\n", k, req->fc, req->count);
            CHECK(0);
            break;
        }
    }
    fill_out();
    need = 12345;
    CHECK_INT(parse(f, n, tid, unit, req, &need), 0);
    CHECK_INT(need, 12345);
    CHECK(out_matches(req));

    /* One byte more: not Modbus (one request is outstanding). */
    f[n] = 0;
    fill_out();
    CHECK_INT(parse(f, n + 1, tid, unit, req, &need), -EBADMSG);
    CHECK(out_untouched());
}

static void test_registers(void)
{
    static const int counts[] = { 1, 2, 125 };
    for (int fc = 3; fc <= 4; fc++)
        for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
            struct plan_req r = {.fc = (uint8_t)fc, .address = 100, .count = (uint16_t)counts[i]};
            check_good(&r, (uint16_t)(7 + i), 1, 1);
        }
    /* The longest reply: 125 registers, 259 bytes, length field 253. */
    uint8_t f[MBTCP_MAX_ADU + 8];
    struct plan_req r = {.fc = 3, .address = 0, .count = 125};
    CHECK_INT(good_reply(f, 1, 1, &r), 259);
    CHECK_INT(f[4] << 8 | f[5], 253);
    /* Byte order: 0x1234 on the wire as 12 34. */
    struct plan_req one = {.fc = 4, .address = 0, .count = 1};
    size_t n = good_reply(f, 9, 3, &one);
    CHECK_INT(f[9], 0x12);
    CHECK_INT(f[10], 0x34);
    size_t need;
    CHECK_INT(parse(f, n, 9, 3, &one, &need), 0);
    CHECK_INT(out[0], 0x1234);
}

static void test_bits(void)
{
    static const int counts[] = { 1, 8, 9, 2000 };
    for (int fc = 1; fc <= 2; fc++)
        for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
            struct plan_req r = {.fc = (uint8_t)fc, .address = 0, .count = (uint16_t)counts[i]};
            check_good(&r, 65535, 200, 200);
        }
    /* LSB first: 0x05 0x01 for 9 bits is 1 0 1 0 0 0 0 0 1; the unused
     * high bits of the last byte are ignored. */
    uint8_t pdu[] = { 2, 2, 0x05, 0xFF };
    uint8_t f[32];
    size_t n = adu(f, 4, 1, pdu, sizeof(pdu));
    struct plan_req r = {.fc = 2, .address = 0, .count = 9};
    size_t need;
    fill_out();
    CHECK_INT(parse(f, n, 4, 1, &r, &need), 0);
    static const uint16_t want[9] = { 1, 0, 1, 0, 0, 0, 0, 0, 1 };
    for (int i = 0; i < 9; i++)
        CHECK_INT(out[i], want[i]);
    CHECK_INT(out[9], SENTINEL);
    /* 2000 bits: 250 data bytes, the longest bit reply. */
    struct plan_req all = {.fc = 1, .address = 0, .count = 2000};
    uint8_t g[MBTCP_MAX_ADU + 8];
    CHECK_INT(good_reply(g, 1, 1, &all), 259);
}

static void test_exceptions(void)
{
    uint8_t f[16];
    size_t need;
    for (int fc = 1; fc <= 4; fc++) {
        struct plan_req r = {.fc = (uint8_t)fc, .address = 0, .count = 10};
        for (int code = 1; code <= 255; code++) {
            uint8_t pdu[2] = { (uint8_t)(fc | 0x80), (uint8_t)code };
            size_t n = adu(f, 300, 9, pdu, 2);
            CHECK_INT(n, 9);
            fill_out();
            int rc = parse(f, n, 300, 9, &r, &need);
            if (rc != -(BUS_EXC_BASE + code)) {
                CHECK_INT(rc, -(BUS_EXC_BASE + code));
                break;
            }
            CHECK(out_untouched());
            /* Truncated: more needed, 9 in all once the length is in. */
            CHECK_INT(parse(f, 8, 300, 9, &r, &need), 1);
            CHECK_INT(need, 9);
        }
        /* Code 0 is no exception; a trailing byte is not Modbus. */
        uint8_t zero[2] = { (uint8_t)(fc | 0x80), 0 };
        size_t n = adu(f, 1, 9, zero, 2);
        CHECK_INT(parse(f, n, 1, 9, &r, &need), -EBADMSG);
        uint8_t two[3] = { (uint8_t)(fc | 0x80), 2, 0 };
        n = adu(f, 1, 9, two, 2);
        f[n] = 0;
        CHECK_INT(parse(f, n + 1, 1, 9, &r, &need), -EBADMSG);
        /* An exception for another function. */
        uint8_t other[2] = { (uint8_t)((fc % 4 + 1) | 0x80), 2 };
        n = adu(f, 1, 9, other, 2);
        CHECK_INT(parse(f, n, 1, 9, &r, &need), -EBADMSG);
        /* An exception with a length field of 4. */
        n = adu(f, 1, 9, two, 3);
        CHECK_INT(parse(f, n, 1, 9, &r, &need), -EBADMSG);
    }
    CHECK_STR(bus_strerror(-(BUS_EXC_BASE + 2)), "exception 2 (illegal data address)");
    CHECK_CONTAINS(bus_strerror(-(BUS_EXC_BASE + 255)), "unknown");
}

/* Each field of a good 2-register fc 3 reply spoiled in turn: refused as
 * soon as the spoiled byte is in, never filling out. */
static void test_malformed(void)
{
    struct plan_req r = {.fc = 3, .address = 10, .count = 2};
    uint8_t good[32];
    size_t n = good_reply(good, 0x0102, 5, &r);
    CHECK_INT(n, 13);
    struct {
        size_t at;
        uint8_t value;
        const char *what;
    } spoil[] = {
        { 0, 0x02, "tid high" },        { 1, 0x01, "tid low (the previous request's)" },
        { 2, 0x01, "protocol id high" }, { 3, 0x01, "protocol id low" },
        { 4, 0x01, "length high" },      { 5, 8, "length one too many" },
        { 5, 6, "length one short" },    { 5, 2, "length below 3" },
        { 5, 0, "length 0" },            { 6, 6, "unit" },
        { 7, 4, "function 4 for 3" },    { 7, 0x13, "function 0x13" },
        { 8, 3, "byte count short" },    { 8, 5, "byte count long" },
        { 8, 0, "byte count 0" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(spoil); i++) {
        uint8_t f[32];
        memcpy(f, good, n);
        f[spoil[i].at] = spoil[i].value;
        bool failed_early = false;
        size_t need;
        for (size_t k = spoil[i].at + 1; k <= n; k++) {
            fill_out();
            int rc = parse(f, k, 0x0102, 5, &r, &need);
            if (rc != -EBADMSG || !out_untouched()) {
                fprintf(stderr, "%s: %zu bytes gave %d\n", spoil[i].what, k, rc);
                failed_early = true;
            }
        }
        CHECK(!failed_early);
    }
    /* The function of an exception reply with the length of a normal one. */
    uint8_t f[32];
    memcpy(f, good, n);
    f[7] = 0x83;
    size_t need;
    CHECK_INT(parse(f, 8, 0x0102, 5, &r, &need), -EBADMSG);
    /* Unit 0 and 255 accept any unit in the reply, others only their own. */
    fill_out();
    CHECK_INT(parse(good, n, 0x0102, 0, &r, &need), 0);
    CHECK_INT(out[1], 0x1335);
    CHECK_INT(parse(good, n, 0x0102, 255, &r, &need), 0);
    CHECK_INT(parse(good, n, 0x0102, 4, &r, &need), -EBADMSG);
    memcpy(f, good, n);
    f[6] = 255;
    CHECK_INT(parse(f, n, 0x0102, 255, &r, &need), 0);
    CHECK_INT(parse(f, n, 0x0102, 5, &r, &need), -EBADMSG);
}

/* The length field's bounds: 3..254 are plausible in general, but only the
 * reply's own length or an exception's (3) fits a given request. */
static void test_lengths(void)
{
    uint8_t f[MBTCP_MAX_ADU + 8] = { 0, 1, 0, 0 };
    struct plan_req r = {.fc = 3, .address = 0, .count = 125};
    size_t need;
    for (unsigned l = 0; l <= 0xFFFF; l++) {
        f[4] = (uint8_t)(l >> 8);
        f[5] = (uint8_t)l;
        int rc = parse(f, 6, 1, 1, &r, &need);
        int want = l == 3 || l == 253 ? 1 : -EBADMSG;
        if (rc != want) {
            CHECK_INT(rc, want);
            fprintf(stderr, "  length field %u\n", l);
            break;
        }
        if (rc == 1)
            CHECK_INT(need, 6 + l);
    }
    /* Before the length is in: the shortest frame (an exception). */
    f[4] = 0;
    CHECK_INT(parse(f, 0, 1, 1, &r, &need), 1);
    CHECK_INT(need, MBTCP_MIN_ADU);
    CHECK_INT(parse(f, 5, 1, 1, &r, &need), 1);
    CHECK_INT(need, 9);
    CHECK_INT(MBTCP_MAX_ADU, 6 + MBTCP_LEN_MAX);
}

int main(void)
{
    test_request();
    test_valid();
    test_registers();
    test_bits();
    test_exceptions();
    test_malformed();
    test_lengths();
    return check_done();
}
