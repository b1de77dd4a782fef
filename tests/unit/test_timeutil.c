/*
 * test_timeutil.c - common/timeutil.h: floor_div and floor_mod round toward
 * minus infinity for every sign combination, at exact multiples, and at the
 * ends of int64_t; compared with a slow reference over a sweep.
 */
#include "common/timeutil.h"
#include "tests/unit/check.h"

#include <stdint.h>

/* Reference: the largest q with q * b <= a (b > 0) or q * b >= a (b < 0),
 * found by stepping from the truncated quotient. */
static int64_t ref_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    while ((b > 0 && q * b > a) || (b < 0 && q * b < a))
        q--;
    return q;
}

static void test_signs(void)
{
    CHECK_INT(floor_div(7, 2), 3);
    CHECK_INT(floor_div(-7, 2), -4);
    CHECK_INT(floor_div(7, -2), -4);
    CHECK_INT(floor_div(-7, -2), 3);
    CHECK_INT(floor_div(6, 3), 2);
    CHECK_INT(floor_div(-6, 3), -2);
    CHECK_INT(floor_div(6, -3), -2);
    CHECK_INT(floor_div(0, 5), 0);
    CHECK_INT(floor_div(0, -5), 0);
    CHECK_INT(floor_div(-1, 1000), -1);
    CHECK_INT(floor_div(-1000, 1000), -1);
    CHECK_INT(floor_div(-1001, 1000), -2);
    CHECK_INT(floor_div(999, 1000), 0);

    CHECK_INT(floor_mod(7, 2), 1);
    CHECK_INT(floor_mod(-7, 2), 1);
    CHECK_INT(floor_mod(7, -2), -1);
    CHECK_INT(floor_mod(-7, -2), -1);
    CHECK_INT(floor_mod(-6, 3), 0);
    CHECK_INT(floor_mod(-1, 604800), 604799);
}

/* A timestamp one millisecond before the epoch is in the bucket that starts
 * a whole bucket earlier: the case truncating division gets wrong. */
static void test_buckets(void)
{
    const int64_t q15 = 900000;
    CHECK_INT(floor_div(-1, q15) * q15, -q15);
    CHECK_INT(floor_div(-q15, q15) * q15, -q15);
    CHECK_INT(floor_div(-q15 - 1, q15) * q15, -2 * q15);
    /* 1969-12-31T23:59:59.999Z is second -1, not 0 */
    CHECK_INT(floor_div(-1, 1000), -1);
    /* local days at +08:00: 1970-01-01T15:59:59.999Z is 23:59:59.999 on Jan 1 (day 0),
     * 16:00Z is midnight of Jan 2 (day 1), 1969-12-31T15:59:59.999Z is Dec 31 (day -1) */
    const int64_t day = 86400000, off = 8 * 3600000;
    CHECK_INT(floor_div(16 * 3600000 - 1 + off, day), 0);
    CHECK_INT(floor_div(16 * 3600000 + off, day), 1);
    CHECK_INT(floor_div(-8 * 3600000 - 1 + off, day), -1);
}

static void test_extremes(void)
{
    CHECK_INT(floor_div(INT64_MAX, 1), INT64_MAX);
    CHECK_INT(floor_div(INT64_MIN, 1), INT64_MIN);
    CHECK_INT(floor_div(INT64_MIN, 2), INT64_MIN / 2);
    CHECK_INT(floor_div(INT64_MIN + 1, 2), INT64_MIN / 2);
    CHECK_INT(floor_div(INT64_MAX, -1), -INT64_MAX);
    CHECK_INT(floor_div(INT64_MAX, INT64_MAX), 1);
    CHECK_INT(floor_div(INT64_MIN, INT64_MAX), -2);
    CHECK_INT(floor_div(-1, INT64_MAX), -1);
    CHECK_INT(floor_div(1, INT64_MIN), -1);
}

static void test_sweep(void)
{
    int bad = 0;
    for (int64_t a = -50; a <= 50; a++) {
        for (int64_t b = -7; b <= 7; b++) {
            if (b == 0)
                continue;
            int64_t q = floor_div(a, b), m = floor_mod(a, b);
            if (q != ref_floor_div(a, b) || q * b + m != a ||
                (b > 0 && (m < 0 || m >= b)) || (b < 0 && (m > 0 || m <= b))) {
                if (bad++ < 5)
                    fprintf(stderr, "floor_div(%lld, %lld) = %lld, floor_mod = %lld\n",
                            (long long)a, (long long)b, (long long)q, (long long)m);
            }
        }
    }
    CHECK_INT(bad, 0);
}

int main(void)
{
    test_signs();
    test_buckets();
    test_extremes();
    test_sweep();
    return check_done();
}
