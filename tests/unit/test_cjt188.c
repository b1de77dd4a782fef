/*
 * test_cjt188.c - CJ/T 188-2004 framing (protocols/cjt188.c) on frames
 * worked out by hand: the 901F read request of a cold-water meter byte by
 * byte; its reply decoded (current and settlement-day flow with unit code,
 * the meter's clock); an abnormal reply; every truncation; each field
 * wrong in turn, another meter type or address refused; the unit codes.
 *
 * The meter is printed 12345678901234: pairs 12 34 56 78 90 12 34 sent
 * lowest first, A0..A6 = 34 12 90 78 56 34 12, which sum to
 *   0x34 + 0x12 + 0x90 + 0x78 + 0x56 + 0x34 + 0x12 = 0x1EA,
 * and with 0x68 and T = 0x10 (cold water): 0x78 + 0x1EA = 0x262.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "protocols/cjt188.h"
#include "tests/unit/check.h"

static uint8_t addr[CJT188_ADDR_LEN];

/*
 * Read metering data: C = 0x01, L = 3, DI 901F sent 1F 90, SER 00.
 *   sum = 0x262 + 0x01 + 0x03 + 0x1F + 0x90 + 0x00 = 0x315 -> CS 0x15
 */
static const uint8_t read_req[] = {0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x34, 0x12, 0x90, 0x78,
                                   0x56, 0x34, 0x12, 0x01, 0x03, 0x1F, 0x90, 0x00, 0x15, 0x16};

/*
 * The reply: C = 0x81, L = 0x16 (22 = DI 2 + SER 1 + 19 data bytes):
 *   current flow 1234.56 m3: pairs 00 12 34 56 sent 56 34 12 00, unit 2C
 *   settlement-day flow 1200.00 m3: 00 12 00 00 sent 00 00 12 00, unit 2C
 *   clock 2026-12-06 10:30:00 as ss mm hh DD MM YY CC: 00 30 10 06 12 26 20
 *   status ST0 ST1: 00 00 (valve open, battery fine)
 *   sum = 0x262 + 0x81 + 0x16 + 0x1F + 0x90 + 0x00     = 0x3A8
 *       + 0x56 + 0x34 + 0x12 + 0x00 + 0x2C (= 0xC8)   = 0x470
 *       + 0x00 + 0x00 + 0x12 + 0x00 + 0x2C (= 0x3E)   = 0x4AE
 *       + 0x00 + 0x30 + 0x10 + 0x06 + 0x12 + 0x26 + 0x20 (= 0x9E) = 0x54C
 *   -> CS 0x4C. Three wake-up bytes before it.
 */
static const uint8_t read_rep[] = {0xFE, 0xFE, 0xFE, 0x68, 0x10, 0x34, 0x12, 0x90, 0x78, 0x56,
                                   0x34, 0x12, 0x81, 0x16, 0x1F, 0x90, 0x00, 0x56, 0x34, 0x12,
                                   0x00, 0x2C, 0x00, 0x00, 0x12, 0x00, 0x2C, 0x00, 0x30, 0x10,
                                   0x06, 0x12, 0x26, 0x20, 0x00, 0x00, 0x4C, 0x16};

/*
 * Abnormal reply: C = 0xC1, L = 3: SER 00, ST0 04, ST1 00.
 *   sum = 0x262 + 0xC1 + 0x03 + 0x00 + 0x04 + 0x00 = 0x32A -> CS 0x2A
 */
static const uint8_t abn_rep[] = {0x68, 0x10, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34,
                                  0x12, 0xC1, 0x03, 0x00, 0x04, 0x00, 0x2A, 0x16};

static void test_request(void)
{
    uint8_t buf[CJT188_READ_REQ_LEN];
    CHECK_INT(bcd_addr_parse("12345678901234", CJT188_ADDR_LEN, addr), 0);
    CHECK_INT(addr[0], 0x34);
    CHECK_INT(addr[6], 0x12);
    CHECK_INT(cjt188_build_read(buf, CJT188_T_COLD_WATER, addr, CJT188_DI_METERING, 0),
              sizeof(read_req));
    CHECK(memcmp(buf, read_req, sizeof(read_req)) == 0);
    char text[CJT188_ADDR_TEXT];
    bcd_addr_format(addr, CJT188_ADDR_LEN, text);
    CHECK_STR(text, "12345678901234");
    uint8_t a[CJT188_ADDR_LEN];
    CHECK_INT(bcd_addr_parse("000012345678", CJT188_ADDR_LEN, a), -EINVAL);
}

static void test_reply(void)
{
    uint8_t out[CJT188_MAX_DATA];
    size_t n = 0, need = 0;
    CHECK_INT(cjt188_parse_read(read_rep, sizeof(read_rep), CJT188_T_COLD_WATER, addr,
                                CJT188_DI_METERING, out, &n, &need),
              0);
    CHECK_INT(n, CJT188_W_LEN);
    double v = 0;
    enum cjt188_quantity q = CJT188_Q_POWER;
    CHECK_INT(cjt188_decode_quantity(out + CJT188_W_FLOW, &v, &q), 0);
    CHECK_NEAR(v, 1234.56, 1e-9);
    CHECK_INT(q, CJT188_Q_VOLUME);
    CHECK_INT(cjt188_decode_quantity(out + CJT188_W_SETTLE_FLOW, &v, &q), 0);
    CHECK_NEAR(v, 1200.0, 1e-9);
    CHECK_INT(out[CJT188_W_TIME + 5], 0x26);
    CHECK_INT(out[CJT188_W_TIME + 6], 0x20);

    /* The same reply asked of a gas meter, or for another item. */
    n = 77;
    CHECK_INT(cjt188_parse_read(read_rep, sizeof(read_rep), CJT188_T_GAS, addr, CJT188_DI_METERING,
                                out, &n, &need),
              -EBADMSG);
    CHECK_INT(cjt188_parse_read(read_rep, sizeof(read_rep), CJT188_T_COLD_WATER, addr, 0x1F90, out,
                                &n, &need),
              -EBADMSG);
    CHECK_INT(n, 77);
    /* A wildcard type matches. */
    CHECK_INT(cjt188_parse_read(read_rep, sizeof(read_rep), CJT188_WILDCARD, addr,
                                CJT188_DI_METERING, out, &n, &need),
              0);
    /* The encoder gives back the flow bytes. */
    uint8_t enc[5];
    CHECK_INT(cjt188_encode_volume(1234.56, enc), 0);
    CHECK(memcmp(enc, read_rep + 17, 5) == 0);
    CHECK_INT(cjt188_encode_volume(-1, enc), -ERANGE);
    CHECK_INT(cjt188_encode_volume(1000000.0, enc), -ERANGE);
}

static void test_abnormal(void)
{
    uint8_t out[CJT188_MAX_DATA];
    size_t n = 0, need = 0;
    CHECK_INT(cjt188_parse_read(abn_rep, sizeof(abn_rep), CJT188_T_COLD_WATER, addr,
                                CJT188_DI_METERING, out, &n, &need),
              -(CJT188_ERR_BASE + 0x04));
    /* An abnormal reply must carry SER ST0 ST1. */
    uint8_t f[64], d[2] = {0, 4};
    size_t len = cjt188_build(f, false, CJT188_T_COLD_WATER, addr, 0xC1, d, 2);
    CHECK_INT(
        cjt188_parse_read(f, len, CJT188_T_COLD_WATER, addr, CJT188_DI_METERING, out, &n, &need),
        -EBADMSG);
}

static void test_truncation(void)
{
    uint8_t out[CJT188_MAX_DATA];
    size_t n = 0;
    for (size_t k = 0; k < sizeof(read_rep); k++) {
        size_t need = 0;
        CHECK_INT(cjt188_parse_read(read_rep, k, CJT188_T_COLD_WATER, addr, CJT188_DI_METERING, out,
                                    &n, &need),
                  1);
        size_t skip = k < 3 ? k : 3;
        CHECK_INT(need, k < 14 ? skip + CJT188_OVERHEAD : sizeof(read_rep));
    }
}

static void test_fields(void)
{
    uint8_t out[CJT188_MAX_DATA];
    size_t n = 0, need = 0;
    for (size_t i = 3; i < sizeof(read_rep); i++) {
        uint8_t f[sizeof(read_rep)];
        memcpy(f, read_rep, sizeof(f));
        f[i] ^= 0x01;
        /* L (index 13) 0x16 -> 0x17: a longer frame, wait for its byte. */
        CHECK_INT(cjt188_parse_read(f, sizeof(f), CJT188_T_COLD_WATER, addr, CJT188_DI_METERING,
                                    out, &n, &need),
                  i == 13 ? 1 : -EBADMSG);
    }
    /* Another meter's correct reply is refused; a wildcard byte takes it. */
    for (int i = 0; i < CJT188_ADDR_LEN; i++) {
        uint8_t other[CJT188_ADDR_LEN], f[64], d[3] = {0x1F, 0x90, 0x00};
        memcpy(other, addr, sizeof(other));
        other[i] ^= 0x01;
        size_t len = cjt188_build(f, true, CJT188_T_COLD_WATER, other, 0x81, d, sizeof(d));
        CHECK_INT(cjt188_parse_read(f, len, CJT188_T_COLD_WATER, addr, CJT188_DI_METERING, out, &n,
                                    &need),
                  -EBADMSG);
        uint8_t wild[CJT188_ADDR_LEN];
        memcpy(wild, addr, sizeof(wild));
        wild[i] = CJT188_WILDCARD;
        CHECK_INT(cjt188_parse_read(f, len, CJT188_T_COLD_WATER, wild, CJT188_DI_METERING, out, &n,
                                    &need),
                  0);
        CHECK_INT(n, 0);
    }
    /* Our own request echoed back. */
    CHECK_INT(cjt188_parse_read(read_req, sizeof(read_req), CJT188_T_COLD_WATER, addr,
                                CJT188_DI_METERING, out, &n, &need),
              -EBADMSG);
    /* Trailing bytes; a garbage byte first. */
    uint8_t longer[sizeof(read_rep) + 1];
    memcpy(longer, read_rep, sizeof(read_rep));
    longer[sizeof(read_rep)] = 0;
    CHECK_INT(cjt188_parse_read(longer, sizeof(longer), CJT188_T_COLD_WATER, addr,
                                CJT188_DI_METERING, out, &n, &need),
              -EBADMSG);
    longer[2] = 0x00;
    CHECK_INT(cjt188_parse_read(longer + 2, sizeof(read_rep) - 1, CJT188_T_COLD_WATER, addr,
                                CJT188_DI_METERING, out, &n, &need),
              -EBADMSG);
}

static void test_units(void)
{
    static const struct {
        uint8_t code;
        enum cjt188_quantity q;
        double want; /* 12.34 in the base unit */
    } u[] = {
        {0x29, CJT188_Q_VOLUME, 0.01234},     {0x2C, CJT188_Q_VOLUME, 12.34},
        {0x32, CJT188_Q_FLOW_RATE, 0.01234},  {0x35, CJT188_Q_FLOW_RATE, 12.34},
        {0x02, CJT188_Q_ENERGY, 0.01234},     {0x05, CJT188_Q_ENERGY, 12.34},
        {0x08, CJT188_Q_ENERGY, 12340},       {0x0A, CJT188_Q_ENERGY, 1234000},
        {0x0E, CJT188_Q_ENERGY, 12.34 / 3.6}, {0x11, CJT188_Q_ENERGY, 12340 / 3.6},
        {0x17, CJT188_Q_POWER, 12.34},        {0x1A, CJT188_Q_POWER, 12340},
    };
    for (size_t i = 0; i < ARRAY_SIZE(u); i++) {
        /* 12.34 as XXXXXX.XX: pairs 00 00 12 34, sent 34 12 00 00. */
        uint8_t p[5] = {0x34, 0x12, 0x00, 0x00, u[i].code};
        double v = 0;
        enum cjt188_quantity q = (enum cjt188_quantity)99;
        CHECK_INT(cjt188_decode_quantity(p, &v, &q), 0);
        CHECK_NEAR(v, u[i].want, u[i].want * 1e-12);
        CHECK_INT(q, u[i].q);
    }
    uint8_t unknown[5] = {0x34, 0x12, 0, 0, 0x2D};
    uint8_t notbcd[5] = {0x3A, 0x12, 0, 0, 0x2C};
    double v = 5;
    enum cjt188_quantity q;
    CHECK_INT(cjt188_decode_quantity(unknown, &v, &q), -EBADMSG);
    CHECK_INT(cjt188_decode_quantity(notbcd, &v, &q), -EBADMSG);
    CHECK_NEAR(v, 5, 0);
}

int main(void)
{
    test_request();
    test_reply();
    test_abnormal();
    test_truncation();
    test_fields();
    test_units();
    return check_done();
}
