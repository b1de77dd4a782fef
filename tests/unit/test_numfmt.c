/*
 * test_numfmt.c - protocols/numfmt.c against the C library and jansson:
 * fixed edge cases with their exact text, then millions of seeded random
 * doubles across magnitudes, each compared with snprintf("%.*g") (same
 * decimal value, same plain/exponent form) and a share of them with the
 * text jansson writes for the same real, byte for byte. numfmt promises
 * exact equality (no last-digit slack), so the allowed difference count is 0.
 */
#include "protocols/numfmt.h"
#include "tests/unit/check.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_u64(void)
{
    return check_rand64(&rng);
}

static void check_fmt(double v, int digits, const char *want)
{
    char buf[NUMFMT_DOUBLE_SIZE];
    size_t n = numfmt_double(buf, v, digits);
    CHECK_INT(n, strlen(buf));
    if (strcmp(buf, want) != 0) {
        check_failed++;
        fprintf(stderr, "numfmt_double(%.17g, %d): expected \"%s\", got \"%s\"\n", v, digits, want,
                buf);
    } else {
        check_passed++;
    }
}

static void check_int(int64_t v, const char *want)
{
    char buf[NUMFMT_INT64_SIZE];
    size_t n = numfmt_int64(buf, v);
    CHECK_STR(buf, want);
    CHECK_INT(n, strlen(want));
}

static void test_edges(void)
{
    check_int(0, "0");
    check_int(7, "7");
    check_int(-1, "-1");
    check_int(1767225600123LL, "1767225600123");
    check_int(INT64_MAX, "9223372036854775807");
    check_int(INT64_MIN, "-9223372036854775808");

    check_fmt(0.0, 15, "0.0");
    check_fmt(-0.0, 15, "-0.0");
    check_fmt(0.0, 7, "0.0");
    check_fmt(1e-300, 15, "1e-300");
    check_fmt(1e300, 15, "1e300");
    check_fmt(-1e300, 7, "-1e300");
    check_fmt(5e-324, 15, "4.94065645841247e-324"); /* subnormal: snprintf */
    /* 15 or 16 digits of DBL_MAX read back as an overflow: 17 are used;
     * with 1 digit, 2e308 would, and the first that does not has 6. */
    check_fmt(DBL_MAX, 15, "1.7976931348623157e308");
    check_fmt(-DBL_MAX, 1, "-1.79769e308");
    check_fmt(1.7e308, 1, "1.7e308");
    check_fmt(0.1, 15, "0.1");
    check_fmt(0.1, 7, "0.1");
    check_fmt(230.1, 15, "230.1");
    check_fmt(-230.1, 15, "-230.1");
    check_fmt(-12.5, 7, "-12.5");
    check_fmt(123.0, 15, "123.0"); /* integral values stay reals */
    check_fmt(123.0, 7, "123.0");
    check_fmt(-4.0, 15, "-4.0");
    check_fmt(1.0, 1, "1.0");
    check_fmt(9.9999995, 7, "9.999999"); /* the double is just below the tie */
    check_fmt(9.9999996, 7, "10.0");     /* rounding carries into a new digit */
    check_fmt(9.99999999999999999, 15, "10.0");
    check_fmt(999999.96, 7, "1000000.0");
    check_fmt(9999999.6, 7, "1e7"); /* the carry crosses into exponent form */
    check_fmt(9007199254740992.0, 15, "9.00719925474099e15"); /* 2^53 */
    check_fmt(9007199254740992.0, 17, "9007199254740992.0");
    check_fmt(9007199254740991.0, 16, "9007199254740991.0");
    check_fmt(1e15, 15, "1e15");
    check_fmt(1e14, 15, "100000000000000.0");
    check_fmt(123456789012345.0, 15, "123456789012345.0");
    check_fmt(0.0001, 15, "0.0001");
    check_fmt(0.00001, 15, "1e-5");
    check_fmt(1.5e-7, 7, "1.5e-7");
    check_fmt(1.5e20, 15, "1.5e20");
    check_fmt(0.125, 2, "0.12"); /* exact ties go to even, as printf */
    check_fmt(0.375, 2, "0.38");
    check_fmt(1234567.5, 7, "1234568.0");
    check_fmt(1234568.5, 7, "1234568.0");
    check_fmt(2.5, 1, "2.0");
    check_fmt(3.5, 1, "4.0");
    check_fmt((double)22.12745f, 7, "22.12745"); /* a float32 reading, no noise */
    check_fmt((double)22.12745f, 15, "22.1274509429932");
    /* From 1e7 up, 7 digits take printf's exponent form. */
    check_fmt((double)12345.678f * 4000.0, 7, "4.938271e7");
    check_fmt(NAN, 15, "null");
    check_fmt(INFINITY, 7, "null");
    check_fmt(3.0, 0, "3.0"); /* digits clamp to 1..17 */
    check_fmt(0.1, 40, "0.10000000000000001");
}

/* The same decimal number written two ways: for up to 15 digits distinct
 * decimals give distinct doubles, so equal strtod means equal digits. */
static long widened; /* printf's text overflowed, numfmt's has more digits */

static bool same_number(const char *ours, const char *libc)
{
    char *end;
    double a = strtod(ours, &end);
    if (*end || !isfinite(a))
        return false;
    double b = strtod(libc, NULL);
    if (!isfinite(b)) {
        /* Near DBL_MAX: numfmt adds digits until the text reads back; its
         * value is then closer to the double than printf's. */
        widened++;
        return fabs(a) >= 1e308 && strchr(ours, 'e') != NULL;
    }
    if (memcmp(&a, &b, sizeof(a)) != 0 && !(a == 0 && b == 0 && signbit(a) == signbit(b)))
        return false;
    /* Same form: exponent form exactly when printf chose it. */
    return (strchr(ours, 'e') != NULL) == (strchr(libc, 'e') != NULL);
}

/* The text jansson writes for this real at this precision (the old live
 * payload's numbers). */
static bool same_as_jansson(const char *ours, double v, int digits)
{
    json_t *j = json_real(v);
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(digits));
    json_decref(j);
    bool same = s && strcmp(s, ours) == 0;
    if (!same)
        fprintf(stderr, "jansson wrote \"%s\", numfmt \"%s\" (%.17g, %d digits)\n",
                s ? s : "(null)", ours, v, digits);
    free(s);
    return same;
}

/* A random double of the given kind. */
static double random_double(int kind)
{
    uint64_t r = next_u64();
    switch (kind) {
    case 0: { /* any finite double: every exponent */
        double d;
        uint64_t bits = r;
        memcpy(&d, &bits, sizeof(d));
        return isfinite(d) ? d : 1.0 / (double)(r | 1);
    }
    case 1: { /* uniform mantissa, decimal magnitude 1e-12 .. 1e40 */
        double m = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
        int e = (int)(next_u64() % 53) - 12;
        double v = (1 + 9 * m) * pow(10, e);
        return (r & 1) ? -v : v;
    }
    case 2: { /* a float32 register, as the decoder widens it */
        uint32_t u = (uint32_t)r;
        float f;
        memcpy(&f, &u, sizeof(f));
        return isfinite(f) ? (double)f : 0.5;
    }
    case 3: { /* meter-like: a few decimals, maybe times PT x CT */
        double v = (double)(r % 100000000) / pow(10, (double)(next_u64() % 6));
        return (r >> 40) & 1 ? v * 4000.0 : v;
    }
    default: { /* dyadic: many exact halfway cases for 1..16 digits */
        double v = (double)(r % 100000000000ULL) / (double)(1ULL << (next_u64() % 20));
        return (r >> 50) & 1 ? -v : v;
    }
    }
}

static void test_random(void)
{
    const long rounds = 2500000;
    long diffs = 0, jansson_diffs = 0, jansson_checked = 0;
    char ours[NUMFMT_DOUBLE_SIZE], libc[64];
    for (long i = 0; i < rounds; i++) {
        int kind = (int)(i % 5);
        double v = random_double(kind);
        /* The live payload's precisions mostly, every other one now and then. */
        int digits = i % 3 == 0 ? 7 : i % 3 == 1 ? 15 : 1 + (int)(next_u64() % 17);
        numfmt_double(ours, v, digits);
        snprintf(libc, sizeof(libc), "%.*g", digits, v);
        if (!same_number(ours, libc)) {
            if (diffs < 10)
                fprintf(stderr, "%.17g, %d digits: numfmt \"%s\", printf \"%s\"\n", v, digits, ours,
                        libc);
            diffs++;
        }
        if (i % 8 == 0 && fabs(v) < 1e308) { /* jansson: printf, overflow and all */
            jansson_checked++;
            if (!same_as_jansson(ours, v, digits) && ++jansson_diffs > 10)
                break;
        }
    }
    printf("%ld random doubles: %ld differ from printf (%ld more digits near DBL_MAX, where "
           "printf's overflow); %ld compared with jansson, %ld differ\n",
           rounds, diffs, widened, jansson_checked, jansson_diffs);
    CHECK_INT(diffs, 0);
    CHECK_INT(jansson_diffs, 0);
}

/* Around every power of ten the fast path must pick the right exponent,
 * including the doubles just below and above it. */
static void test_powers_of_ten(void)
{
    long diffs = 0;
    char ours[NUMFMT_DOUBLE_SIZE], libc[64];
    for (int e = -30; e <= 40; e++) {
        char txt[16];
        snprintf(txt, sizeof(txt), "1e%d", e);
        double p10 = strtod(txt, NULL);
        double around[] = {p10,
                           nextafter(p10, 0),
                           nextafter(p10, INFINITY),
                           nextafter(nextafter(p10, 0), 0),
                           p10 * (1 - 1e-15),
                           p10 * (1 + 1e-15),
                           p10 * (1 - 5e-8),
                           p10 * (1 - 4.9e-8),
                           p10 * (1 - 5.1e-8)};
        for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
            for (int digits = 1; digits <= 17; digits++) {
                numfmt_double(ours, around[i], digits);
                snprintf(libc, sizeof(libc), "%.*g", digits, around[i]);
                if (!same_number(ours, libc) || !same_as_jansson(ours, around[i], digits)) {
                    if (diffs < 10)
                        fprintf(stderr, "%.17g, %d digits: numfmt \"%s\", printf \"%s\"\n",
                                around[i], digits, ours, libc);
                    diffs++;
                }
            }
        }
    }
    CHECK_INT(diffs, 0);
}

int main(void)
{
    test_edges();
    test_powers_of_ten();
    test_random();
    return check_done();
}
