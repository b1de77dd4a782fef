/*
 * test_decode.c - the decoder against register images written out by hand
 * for every type and word order, scaling / offset / PT x CT, rejection of
 * NaN and infinity, and encode -> decode round trips including saturation.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "protocols/decode.h"
#include "tests/unit/check.h"

static const enum word_order orders[] = { WO_ABCD, WO_CDAB, WO_BADC, WO_DCBA };

/* One value written out in the four orders: regs[order][word]. */
struct pattern {
    enum point_type type;
    double value;
    uint16_t regs[4][4];
};

/*
 * Hand derivations (A = most significant byte):
 *  float32 123.456 = 0x42F6E979 (given); decodes to the float nearest,
 *    123.45600128173828.
 *  float32 -2.5: sign 1, exponent 127+1 = 0x80, mantissa .25 = 0x200000
 *    -> 1 1000 0000 010 0000... = 0xC0200000.
 *  int32 0x12345678 = 305419896.
 *  int32 -123456789: 123456789 = 0x075BCD15, ~ = 0xF8A432EA, +1 = 0xF8A432EB.
 *  uint32 0xF8A432EB = 2^32 - 123456789 = 4171510507.
 *  64-bit integers are picked with distinct bytes AND exactly representable
 *  as a double (the low bits below the 53-bit mantissa are zero), so the
 *  encoder can be checked against the same words:
 *  int64 0x0102030405060780 = 0x0102030405060708 (72623859790382856) + 0x78
 *    = 72623859790382976; < 2^57 so the ulp is 16 and 0x80 is a multiple.
 *  int64 -72623859790382976 = ~0x0102030405060780 + 1 = 0xFEFDFCFBFAF9F880.
 *  uint64 0xFEFDFCFBFAF9F800 = 2^64 - 0x0102030405060800
 *    = 18446744073709551616 - 72623859790383104 = 18374120213919168512;
 *    >= 2^63 so the ulp is 2048 = 0x800, and 0xF800 is a multiple.
 *  int64 -2 = 0xFFFFFFFFFFFFFFFE.
 *  float64 -2.5: sign 1, exponent 1023+1 = 0x400, mantissa .25 = 0x4000000000000
 *    -> 0xC004000000000000.
 *  float64 123456.789 = 0x40FE240C9FBE76C9 (IEEE-754 layout; 123456.789 =
 *    1.8838... * 2^16, exponent 1039 = 0x40F, so the pattern starts 0x40F).
 * Orders: ABCD words big-endian; CDAB the words reversed; BADC each word's
 * bytes swapped; DCBA both (fully little-endian).
 */
static const struct pattern patterns[] = {
    { PT_FLOAT32, 123.45600128173828,
      { { 0x42F6, 0xE979 }, { 0xE979, 0x42F6 }, { 0xF642, 0x79E9 }, { 0x79E9, 0xF642 } } },
    { PT_FLOAT32, -2.5,
      { { 0xC020, 0x0000 }, { 0x0000, 0xC020 }, { 0x20C0, 0x0000 }, { 0x0000, 0x20C0 } } },
    { PT_INT32, 305419896,
      { { 0x1234, 0x5678 }, { 0x5678, 0x1234 }, { 0x3412, 0x7856 }, { 0x7856, 0x3412 } } },
    { PT_INT32, -123456789,
      { { 0xF8A4, 0x32EB }, { 0x32EB, 0xF8A4 }, { 0xA4F8, 0xEB32 }, { 0xEB32, 0xA4F8 } } },
    { PT_UINT32, 4171510507.0,
      { { 0xF8A4, 0x32EB }, { 0x32EB, 0xF8A4 }, { 0xA4F8, 0xEB32 }, { 0xEB32, 0xA4F8 } } },
    { PT_INT64, 72623859790382976.0,
      { { 0x0102, 0x0304, 0x0506, 0x0780 },
        { 0x0780, 0x0506, 0x0304, 0x0102 },
        { 0x0201, 0x0403, 0x0605, 0x8007 },
        { 0x8007, 0x0605, 0x0403, 0x0201 } } },
    { PT_INT64, -72623859790382976.0,
      { { 0xFEFD, 0xFCFB, 0xFAF9, 0xF880 },
        { 0xF880, 0xFAF9, 0xFCFB, 0xFEFD },
        { 0xFDFE, 0xFBFC, 0xF9FA, 0x80F8 },
        { 0x80F8, 0xF9FA, 0xFBFC, 0xFDFE } } },
    { PT_INT64, -2,
      { { 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE },
        { 0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF },
        { 0xFFFF, 0xFFFF, 0xFFFF, 0xFEFF },
        { 0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF } } },
    { PT_UINT64, 18374120213919168512.0,
      { { 0xFEFD, 0xFCFB, 0xFAF9, 0xF800 },
        { 0xF800, 0xFAF9, 0xFCFB, 0xFEFD },
        { 0xFDFE, 0xFBFC, 0xF9FA, 0x00F8 },
        { 0x00F8, 0xF9FA, 0xFBFC, 0xFDFE } } },
    { PT_UINT64, 72623859790382976.0,
      { { 0x0102, 0x0304, 0x0506, 0x0780 },
        { 0x0780, 0x0506, 0x0304, 0x0102 },
        { 0x0201, 0x0403, 0x0605, 0x8007 },
        { 0x8007, 0x0605, 0x0403, 0x0201 } } },
    { PT_FLOAT64, -2.5,
      { { 0xC004, 0, 0, 0 }, { 0, 0, 0, 0xC004 }, { 0x04C0, 0, 0, 0 }, { 0, 0, 0, 0x04C0 } } },
    { PT_FLOAT64, 123456.789,
      { { 0x40FE, 0x240C, 0x9FBE, 0x76C9 },
        { 0x76C9, 0x9FBE, 0x240C, 0x40FE },
        { 0xFE40, 0x0C24, 0xBE9F, 0xC976 },
        { 0xC976, 0xBE9F, 0x0C24, 0xFE40 } } },
};

static int nregs(enum point_type t)
{
    return t == PT_INT64 || t == PT_UINT64 || t == PT_FLOAT64 ? 4
         : t == PT_INT32 || t == PT_UINT32 || t == PT_FLOAT32 ? 2
                                                              : 1;
}

static void test_patterns(void)
{
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        const struct pattern *pt = &patterns[i];
        for (int o = 0; o < 4; o++) {
            double got = decode_raw(pt->type, orders[o], pt->regs[o]);
            if (got != pt->value)
                fprintf(stderr, "pattern %zu order %d\n", i, o);
            CHECK_NEAR(got, pt->value, 0);

            /* The encoder writes exactly the hand-written words. */
            uint16_t enc[4] = { 0xAAAA, 0xAAAA, 0xAAAA, 0xAAAA };
            encode_raw(pt->type, orders[o], pt->value, enc);
            for (int w = 0; w < nregs(pt->type); w++)
                CHECK_INT(enc[w], pt->regs[o][w]);
            /* ...and not one word more. */
            for (int w = nregs(pt->type); w < 4; w++)
                CHECK_INT(enc[w], 0xAAAA);
        }
    }
}

static void test_16bit(void)
{
    /* One-element arrays: ASan catches a decoder that reads a second word. */
    for (int o = 0; o < 4; o++) {
        uint16_t r1[1] = { 0xFFFE };
        CHECK_NEAR(decode_raw(PT_INT16, orders[o], r1), -2, 0);
        CHECK_NEAR(decode_raw(PT_UINT16, orders[o], r1), 65534, 0);
        uint16_t r2[1] = { 0x0102 }; /* 258; no byte swap even for BADC/DCBA */
        CHECK_NEAR(decode_raw(PT_INT16, orders[o], r2), 258, 0);
        uint16_t r3[1] = { 0x8000 };
        CHECK_NEAR(decode_raw(PT_INT16, orders[o], r3), -32768, 0);
        CHECK_NEAR(decode_raw(PT_UINT16, orders[o], r3), 32768, 0);

        uint16_t b0[1] = { 0 }, b1[1] = { 1 }, bff[1] = { 0xFF00 };
        CHECK_NEAR(decode_raw(PT_BOOL, orders[o], b0), 0, 0);
        CHECK_NEAR(decode_raw(PT_BOOL, orders[o], b1), 1, 0);
        CHECK_NEAR(decode_raw(PT_BOOL, orders[o], bff), 1, 0);

        uint16_t e[2] = { 0xAAAA, 0xAAAA };
        encode_raw(PT_INT16, orders[o], -2, e);
        CHECK_INT(e[0], 0xFFFE);
        CHECK_INT(e[1], 0xAAAA);
        encode_raw(PT_UINT16, orders[o], 258, e);
        CHECK_INT(e[0], 0x0102);
        encode_raw(PT_BOOL, orders[o], 1, e);
        CHECK_INT(e[0], 1);
        encode_raw(PT_BOOL, orders[o], 0, e);
        CHECK_INT(e[0], 0);
    }
}

static struct cfg_point mkpoint(enum point_type t, enum word_order o, double scale, double offset,
                                bool pt_ct)
{
    return (struct cfg_point){ .name = "p", .fc = 3, .type = t, .order = o, .scale = scale,
                               .offset = offset, .ratio = pt_ct ? RATIO_PT_CT : RATIO_NONE };
}

static void test_scaling(void)
{
    double v = -1;

    /* 2305 * 0.1 = 230.5 */
    struct cfg_point volts = mkpoint(PT_UINT16, WO_ABCD, 0.1, 0, false);
    uint16_t r_volts[1] = { 2305 };
    CHECK_INT(decode_point(&volts, 1, 1, r_volts, &v), 0);
    CHECK_NEAR(v, 230.5, 1e-9);

    /* int16 -40 (0xFFD8) * 0.5 + (-10) = -30 */
    struct cfg_point temp = mkpoint(PT_INT16, WO_ABCD, 0.5, -10, false);
    uint16_t r_temp[1] = { 0xFFD8 };
    CHECK_INT(decode_point(&temp, 1, 1, r_temp, &v), 0);
    CHECK_NEAR(v, -30, 1e-12);

    /* pt_ct: 123.45600128173828 * 1 * (PT 10 x CT 20 = 200) = 24691.200256347656 */
    struct cfg_point kwh = mkpoint(PT_FLOAT32, WO_ABCD, 1, 0, true);
    uint16_t r_kwh[2] = { 0x42F6, 0xE979 };
    CHECK_INT(decode_point(&kwh, 10, 20, r_kwh, &v), 0);
    CHECK_NEAR(v, 24691.200256347656, 1e-9);

    /* Without a ratio the meter's ratios are ignored. */
    kwh.ratio = RATIO_NONE;
    CHECK_INT(decode_point(&kwh, 10, 20, r_kwh, &v), 0);
    CHECK_NEAR(v, 123.45600128173828, 1e-12);

    /* Order is applied before scaling: CDAB uint32 {0x0001, 0x0002} = 0x00020001
     * = 131073; * 0.01 + 1 = 1311.73; * 50 = 65586.5 */
    struct cfg_point cnt = mkpoint(PT_UINT32, WO_CDAB, 0.01, 1, true);
    uint16_t r_cnt[2] = { 0x0001, 0x0002 };
    CHECK_INT(decode_point(&cnt, 5, 10, r_cnt, &v), 0);
    CHECK_NEAR(v, 65586.5, 1e-6);
}

/* Each point type of a 10 kV meter behind a 10 kV/100 V PT (ratio 100) and
 * a 200/5 A CT (ratio 40), all float32 57.5 (0x4266 0x0000) on the
 * secondary side: a phase voltage (pt) reads 5750 V, a current (ct) 2300 A,
 * an energy or power (pt_ct) 230000, a power factor (none) 57.5; the
 * encoder inverts each, so the simulator shows secondary registers. */
static void test_ratio_per_point(void)
{
    static const struct {
        enum point_ratio ratio;
        double factor, want;
        const char *name;
    } cases[] = {
        {RATIO_NONE, 1, 57.5, ""},
        {RATIO_PT, 100, 5750, "pt"},
        {RATIO_CT, 40, 2300, "ct"},
        {RATIO_PT_CT, 4000, 230000, "pt_ct"},
    };
    uint16_t r[2] = {0x4266, 0x0000};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cfg_point p = mkpoint(PT_FLOAT32, WO_ABCD, 1, 0, false);
        p.ratio = cases[i].ratio;
        double v = 0;
        CHECK_NEAR(point_ratio_factor(&p, 100, 40), cases[i].factor, 0);
        CHECK_STR(point_ratio_name(p.ratio), cases[i].name);
        CHECK_INT(decode_point(&p, 100, 40, r, &v), 0);
        CHECK_NEAR(v, cases[i].want, 0);
        uint16_t back[2] = {0, 0};
        encode_raw(p.type, p.order, encode_unscale(&p, 100, 40, cases[i].want), back);
        CHECK_INT(back[0], 0x4266);
        CHECK_INT(back[1], 0x0000);
        /* A meter with no transformers (ratios 1) reads the terminal value. */
        CHECK_INT(decode_point(&p, 1, 1, r, &v), 0);
        CHECK_NEAR(v, 57.5, 0);
    }
    /* Scale and offset come first, the ratio last: uint16 1234 x 0.1 - 3
     * = 120.4 V, x PT 100 = 12040 V. */
    struct cfg_point u = mkpoint(PT_UINT16, WO_ABCD, 0.1, -3, false);
    u.ratio = RATIO_PT;
    uint16_t ru[1] = {1234};
    double v = 0;
    CHECK_INT(decode_point(&u, 100, 40, ru, &v), 0);
    CHECK_NEAR(v, 12040, 1e-9);
}

static void test_nonfinite(void)
{
    struct cfg_point f = mkpoint(PT_FLOAT32, WO_ABCD, 1, 0, false);
    double v = 42;

    uint16_t nan32[2] = { 0x7FC0, 0x0000 };
    uint16_t inf32[2] = { 0x7F80, 0x0000 };
    uint16_t ninf32[2] = { 0xFF80, 0x0000 };
    CHECK_INT(decode_point(&f, 1, 1, nan32, &v), -ERANGE);
    CHECK_INT(decode_point(&f, 1, 1, inf32, &v), -ERANGE);
    CHECK_INT(decode_point(&f, 1, 1, ninf32, &v), -ERANGE);
    CHECK_NEAR(v, 42, 0); /* untouched */

    /* The same NaN in another order is still caught: CDAB {0x0000, 0x7FC0}. */
    struct cfg_point fc = mkpoint(PT_FLOAT32, WO_CDAB, 1, 0, false);
    uint16_t nan32c[2] = { 0x0000, 0x7FC0 };
    CHECK_INT(decode_point(&fc, 1, 1, nan32c, &v), -ERANGE);

    struct cfg_point d = mkpoint(PT_FLOAT64, WO_ABCD, 1, 0, false);
    uint16_t nan64[4] = { 0x7FF8, 0, 0, 0 };
    uint16_t inf64[4] = { 0x7FF0, 0, 0, 0 };
    CHECK_INT(decode_point(&d, 1, 1, nan64, &v), -ERANGE);
    CHECK_INT(decode_point(&d, 1, 1, inf64, &v), -ERANGE);

    /* Finite raw, infinite after scaling: DBL_MAX (0x7FEFFFFFFFFFFFFF) * 10. */
    struct cfg_point big = mkpoint(PT_FLOAT64, WO_ABCD, 10, 0, false);
    uint16_t max64[4] = { 0x7FEF, 0xFFFF, 0xFFFF, 0xFFFF };
    CHECK_INT(decode_point(&big, 1, 1, max64, &v), -ERANGE);
    CHECK_NEAR(v, 42, 0);
    big.scale = 1;
    CHECK_INT(decode_point(&big, 1, 1, max64, &v), 0);
    CHECK(v > 1.79e308);
}

static void test_saturation(void)
{
    uint16_t r[4];

    /* Round to nearest, halves away from zero. */
    encode_raw(PT_INT16, WO_ABCD, 2.5, r);
    CHECK_INT(r[0], 3);
    encode_raw(PT_INT16, WO_ABCD, 2.4, r);
    CHECK_INT(r[0], 2);
    encode_raw(PT_INT16, WO_ABCD, -2.6, r);
    CHECK_INT(r[0], 0xFFFD); /* -3 */

    encode_raw(PT_INT16, WO_ABCD, 40000, r);
    CHECK_INT(r[0], 0x7FFF);
    encode_raw(PT_INT16, WO_ABCD, -40000, r);
    CHECK_INT(r[0], 0x8000);
    encode_raw(PT_UINT16, WO_ABCD, -5, r);
    CHECK_INT(r[0], 0);
    encode_raw(PT_UINT16, WO_ABCD, 70000, r);
    CHECK_INT(r[0], 0xFFFF);

    encode_raw(PT_INT32, WO_ABCD, 3e9, r);
    CHECK_INT(r[0], 0x7FFF);
    CHECK_INT(r[1], 0xFFFF);
    encode_raw(PT_INT32, WO_CDAB, -3e9, r);
    CHECK_INT(r[0], 0x0000); /* 0x80000000 word-swapped */
    CHECK_INT(r[1], 0x8000);
    encode_raw(PT_UINT32, WO_ABCD, 5e9, r);
    CHECK_INT(r[0], 0xFFFF);
    CHECK_INT(r[1], 0xFFFF);
    encode_raw(PT_UINT32, WO_ABCD, -1, r);
    CHECK_INT(r[0], 0);
    CHECK_INT(r[1], 0);

    encode_raw(PT_INT64, WO_ABCD, 1e19, r);
    CHECK_INT(r[0], 0x7FFF);
    CHECK_INT(r[3], 0xFFFF);
    encode_raw(PT_INT64, WO_DCBA, -1e19, r);
    CHECK_INT(r[0], 0);
    CHECK_INT(r[3], 0x0080); /* 0x8000 byte-swapped, last word in DCBA */
    encode_raw(PT_UINT64, WO_ABCD, 1e20, r);
    for (int i = 0; i < 4; i++)
        CHECK_INT(r[i], 0xFFFF);
    encode_raw(PT_UINT64, WO_ABCD, -7, r);
    for (int i = 0; i < 4; i++)
        CHECK_INT(r[i], 0);

    /* float32 beyond its range becomes infinity, not undefined behaviour. */
    encode_raw(PT_FLOAT32, WO_ABCD, 1e300, r);
    CHECK_INT(r[0], 0x7F80);
    CHECK_INT(r[1], 0);

    /* NaN encodes as 0 for integers (a sim fault must pick a float type). */
    encode_raw(PT_UINT32, WO_ABCD, NAN, r);
    CHECK_INT(r[0], 0);
    CHECK_INT(r[1], 0);
}

static void test_round_trip(void)
{
    /* Values each type holds exactly, decoded back through every order. */
    static const struct {
        enum point_type t;
        double v[4];
    } cases[] = {
        { PT_INT16, { -32768, -1, 0, 32767 } },
        { PT_UINT16, { 0, 1, 40000, 65535 } },
        { PT_INT32, { -2147483648.0, -70000, 70000, 2147483647.0 } },
        { PT_UINT32, { 0, 65536, 3000000000.0, 4294967295.0 } },
        { PT_INT64, { -9223372036854775808.0, -5e15, 5e15, 4611686018427387904.0 } },
        { PT_UINT64, { 0, 1, 5e15, 9223372036854775808.0 } },
        { PT_FLOAT32, { -1.5, 0, 0.15625, 3.4028234663852886e38 } },
        { PT_FLOAT64, { -1e-300, 0, 0.1, 1.7976931348623157e308 } },
        { PT_BOOL, { 0, 1, 0, 1 } },
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (int o = 0; o < 4; o++) {
            for (int k = 0; k < 4; k++) {
                uint16_t r[4] = { 0 };
                encode_raw(cases[c].t, orders[o], cases[c].v[k], r);
                CHECK_NEAR(decode_raw(cases[c].t, orders[o], r), cases[c].v[k], 0);
            }
        }
    }

    /* Saturated values decode to the type's bound. */
    uint16_t r[4];
    encode_raw(PT_INT64, WO_BADC, 1e30, r);
    CHECK_NEAR(decode_raw(PT_INT64, WO_BADC, r), 9223372036854775807.0, 0);
    encode_raw(PT_UINT64, WO_CDAB, 1e30, r);
    CHECK_NEAR(decode_raw(PT_UINT64, WO_CDAB, r), 18446744073709551615.0, 0);
    encode_raw(PT_INT32, WO_DCBA, -1e30, r);
    CHECK_NEAR(decode_raw(PT_INT32, WO_DCBA, r), -2147483648.0, 0);

    /* Scaled round trip: value 1000 with PT x CT 100, scale 0.1, offset 5:
     * 1000 / 100 = 10; 10 - 5 = 5; 5 / 0.1 = 50 raw. */
    struct cfg_point p = mkpoint(PT_UINT32, WO_CDAB, 0.1, 5, true);
    double raw = encode_unscale(&p, 10, 10, 1000);
    CHECK_NEAR(raw, 50, 1e-9);
    encode_raw(p.type, p.order, raw, r);
    CHECK_INT(r[0], 50); /* CDAB: low word first */
    CHECK_INT(r[1], 0);
    double v = 0;
    CHECK_INT(decode_point(&p, 10, 10, r, &v), 0);
    CHECK_NEAR(v, 1000, 1e-9);

    /* float32 energy: the decode equals the value to float precision. */
    struct cfg_point e = mkpoint(PT_FLOAT32, WO_DCBA, 1, 0, true);
    encode_raw(e.type, e.order, encode_unscale(&e, 10, 20, 24691.2), r);
    CHECK_INT(decode_point(&e, 10, 20, r, &v), 0);
    CHECK_NEAR(v, 24691.2, 200 * 123.456 * 1.2e-7);
}

static void test_frac(void)
{
    double v = 0;
    /* TUF-2000M forward volume: LONG 70000 low word first (CDAB) ->
     * {0x1170, 0x0001}; fraction REAL4 0.25 = 0x3E800000, CDAB ->
     * {0x0000, 0x3E80}. 70000 * 1 + 0.25 * 1 = 70000.25, exact in a double. */
    struct cfg_point tuf = { .name = "volume_m3", .fc = 3, .address = 8, .type = PT_INT32,
                             .order = WO_CDAB, .scale = 1, .kind = KIND_COUNTER,
                             .has_frac = true, .frac_address = 10, .frac_type = PT_FLOAT32,
                             .frac_scale = 1 };
    uint16_t r_tuf[4] = { 0x1170, 0x0001, 0x0000, 0x3E80 };
    CHECK_INT(decode_point(&tuf, 1, 1, r_tuf, &v), 0);
    CHECK_NEAR(v, 70000.25, 0);
    /* The same registers without the fraction: the integer part alone. */
    tuf.has_frac = false;
    CHECK_INT(decode_point(&tuf, 1, 1, r_tuf, &v), 0);
    CHECK_NEAR(v, 70000, 0);
    tuf.has_frac = true;

    /* A fraction before its integer, with its own scale and PT x CT:
     * uint32 0x00000C35 = 3125 at 20 (x10 kWh) = 31250; uint16 734 at 19
     * (x0.01 kWh) = 7.34; sum 31257.34; x pt_ct 2 = 62514.68. */
    struct cfg_point heat = { .name = "e_kwh", .fc = 3, .address = 20, .type = PT_UINT32,
                              .order = WO_ABCD, .scale = 10, .kind = KIND_COUNTER,
                              .ratio = RATIO_PT_CT,
                              .has_frac = true, .frac_address = 19, .frac_type = PT_UINT16,
                              .frac_scale = 0.01 };
    uint16_t r_heat[3] = { 734, 0x0000, 0x0C35 };
    CHECK_INT(decode_point(&heat, 2, 1, r_heat + 1, &v), 0);
    CHECK_NEAR(v, 62514.68, 1e-9);
    /* offset applies once, after the sum: 31257.34 + 5 = 31262.34 (pt_ct 1) */
    heat.offset = 5;
    heat.ratio = RATIO_NONE;
    CHECK_INT(decode_point(&heat, 1, 1, r_heat + 1, &v), 0);
    CHECK_NEAR(v, 31262.34, 1e-9);

    /* A NaN fraction makes the point invalid. */
    uint16_t r_nan[4] = { 0x1170, 0x0001, 0x0000, 0x7FC0 };
    CHECK_INT(decode_point(&tuf, 1, 1, r_nan, &v), -ERANGE);

    /* Splitting for the encoder: 70000.75 m3 -> integer 70000, fraction
     * 0.75 (scale and frac_scale 1); 3125.734 units of 10 kWh -> 3125 and
     * 0.734 * 10 / 0.01 = 734 hundredths. A point without a fraction keeps
     * its raw value. */
    double fr = -1;
    CHECK_NEAR(encode_frac_split(&tuf, 70000.75, &fr), 70000, 0);
    CHECK_NEAR(fr, 0.75, 1e-9);
    CHECK_NEAR(encode_frac_split(&heat, 3125.734, &fr), 3125, 0);
    CHECK_NEAR(fr, 734, 1e-6);
    struct cfg_point plain = { .name = "x", .fc = 3, .type = PT_UINT32, .scale = 1 };
    CHECK_NEAR(encode_frac_split(&plain, 12.5, &fr), 12.5, 0);
    CHECK_NEAR(fr, 0, 0);

    /* Round trip through the registers, as the simulator does it. */
    uint16_t img[4] = { 0 };
    double whole = encode_frac_split(&tuf, 123456.5, &fr);
    encode_raw(PT_INT32, WO_CDAB, whole, img);
    encode_raw(PT_FLOAT32, WO_CDAB, fr, img + 2);
    CHECK_INT(img[0], 0xE240); /* 123456 = 0x0001E240, low word first */
    CHECK_INT(img[1], 0x0001);
    CHECK_INT(img[3], 0x3F00); /* 0.5 = 0x3F000000 */
    CHECK_INT(decode_point(&tuf, 1, 1, img, &v), 0);
    CHECK_NEAR(v, 123456.5, 0);
}

int main(void)
{
    test_patterns();
    test_16bit();
    test_scaling();
    test_nonfinite();
    test_ratio_per_point();
    test_saturation();
    test_round_trip();
    test_frac();
    return check_done();
}
