/*
 * numfmt.c - decimal text for integers and doubles (see numfmt.h). A double
 * a with decimal exponent x is printed with p digits as the integer nearest
 * to t = a * 10^(p-1-x); t is computed with one correctly rounded multiply or
 * divide by an exact power of ten, and the only decisions that rounding could
 * get wrong (is t below 10^(p-1)? above 10^p? exactly halfway?) are settled
 * with the exact sign of a fused multiply-add.
 */
#include "protocols/numfmt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every power of ten up to 1e22 is exact in a double (5^22 < 2^53). */
static const double pow10_d[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static const uint64_t pow10_u[17] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
};

/* The fast path: p <= 15 keeps every scaled value below 2^53, where the
 * integer part and the fraction of a double are exact. */
#define FAST_MAX_DIGITS 15
#define FAST_MAX_SCALE 22

size_t numfmt_int64(char *buf, int64_t v)
{
    char tmp[NUMFMT_INT64_SIZE];
    size_t n = 0, o = 0;
    /* The magnitude as unsigned: -INT64_MIN does not fit an int64. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    buf[o] = '\0';
    return o;
}

/* snprintf("%.*g") rewritten the way jansson writes a real. */
static size_t fmt_slow(char *buf, double v, int p)
{
    char tmp[64];
    int r;
    for (;;) {
        r = snprintf(tmp, sizeof(tmp), "%.*g", p, v);
        if (r < 0 || (size_t)r >= sizeof(tmp)) {
            memcpy(buf, "null", 5);
            return 4;
        }
        /* Near DBL_MAX, p digits may round past the largest double, which
         * JSON readers refuse as an overflow; 17 digits always read back. */
        if (p >= 17 || fabs(v) < 1e308 || isfinite(strtod(tmp, NULL)))
            break;
        p++;
    }
    size_t n = (size_t)r;
    bool has_point = false, has_exp = false;
    for (size_t i = 0; i < n; i++) {
        char c = tmp[i];
        if (c == 'e') {
            has_exp = true;
        } else if (!(c >= '0' && c <= '9') && c != '-' && c != '+') {
            tmp[i] = '.'; /* a locale's decimal comma */
            has_point = true;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf[o++] = tmp[i];
        if (tmp[i] == 'e') {
            i++;
            if (tmp[i] == '-')
                buf[o++] = tmp[i++];
            else if (tmp[i] == '+')
                i++;
            while (i + 1 < n && tmp[i] == '0')
                i++;
            while (i < n)
                buf[o++] = tmp[i++];
            break;
        }
    }
    if (!has_point && !has_exp) {
        buf[o++] = '.';
        buf[o++] = '0';
    }
    buf[o] = '\0';
    return o;
}

/* The sign of a * 10^s - m, exactly: fma rounds once, and rounding never
 * changes a sign. For s < 0 the sign of a - m * 10^-s is the same. */
static int scaled_cmp(double a, int s, double m)
{
    double d = s >= 0 ? fma(a, pow10_d[s], -m) : fma(-m, pow10_d[-s], a);
    return (d > 0) - (d < 0);
}

/* Writes the p digits of n (10^(p-1) <= n < 10^p) times 10^(x-p+1) in the
 * style of %g; returns the length. */
static size_t emit(char *o, uint64_t n, int x, int p)
{
    char d[FAST_MAX_DIGITS];
    for (int i = p - 1; i >= 0; i--) {
        d[i] = (char)('0' + n % 10);
        n /= 10;
    }
    int nd = p; /* significant digits once trailing zeros are gone */
    while (nd > 1 && d[nd - 1] == '0')
        nd--;

    char *start = o;
    if (x < -4 || x >= p) {
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)(nd - 1));
            o += nd - 1;
        }
        *o++ = 'e';
        if (x < 0) {
            *o++ = '-';
            x = -x;
        }
        if (x >= 100)
            *o++ = (char)('0' + x / 100);
        if (x >= 10)
            *o++ = (char)('0' + x / 10 % 10);
        *o++ = (char)('0' + x % 10);
    } else if (x >= 0) {
        memcpy(o, d, (size_t)(x + 1));
        o += x + 1;
        *o++ = '.';
        if (nd > x + 1) {
            memcpy(o, d + x + 1, (size_t)(nd - x - 1));
            o += nd - x - 1;
        } else {
            *o++ = '0'; /* "123.0": stays a real for type-guessing readers */
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > x; i--)
            *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    *o = '\0';
    return (size_t)(o - start);
}

size_t numfmt_double(char *buf, double v, int digits)
{
    if (!isfinite(v)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    int p = digits < 1 ? 1 : digits > 17 ? 17 : digits;
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    int biased = (int)((bits >> 52) & 0x7ff);
    if (p > FAST_MAX_DIGITS || biased == 0) {
        if (v != 0)
            return fmt_slow(buf, v, p); /* many digits, or subnormal */
    }

    char *o = buf;
    if (bits >> 63)
        *o++ = '-';
    if (v == 0) {
        memcpy(o, "0.0", 4);
        return (size_t)(o - buf) + 3;
    }
    double a = fabs(v);

    /* a is in [2^k, 2^(k+1)), so floor(log10 a) is floor(k log10 2) or one
     * more; 1233/4096 is log10 2 to 5e-6, close enough for a first guess
     * (the loop below corrects it either way). */
    int k = biased - 1023;
    int x = k >= 0 ? (k * 1233) >> 12 : -((-k * 1233 + 4095) >> 12);
    double lo = pow10_d[p - 1], hi = pow10_d[p];
    for (int tries = 0; tries < 4; tries++) {
        int s = p - 1 - x;
        if (s > FAST_MAX_SCALE || s < -FAST_MAX_SCALE)
            break;
        /* t = a * 10^s rounded once; t rounds to below lo only if the exact
         * value is below it, and likewise above hi. */
        double t = s >= 0 ? a * pow10_d[s] : a / pow10_d[-s];
        if (t < lo || (t == lo && scaled_cmp(a, s, lo) < 0)) {
            x--;
            continue;
        }
        if (t > hi || (t == hi && scaled_cmp(a, s, hi) >= 0)) {
            x++;
            continue;
        }
        /* The exact value is in [lo, hi): x is its decimal exponent. t's
         * fraction is exact (t < 2^53) and differs from 0.5 by at least one
         * unit of t's last place unless it is 0.5, while t is within half a
         * unit of the exact value: only an apparent tie needs a closer look. */
        uint64_t n = (uint64_t)t;
        double f = t - (double)n;
        bool up;
        if (f != 0.5) {
            up = f > 0.5;
        } else {
            int c = scaled_cmp(a, s, (double)n + 0.5);
            up = c > 0 || (c == 0 && (n & 1)); /* an exact tie goes to even */
        }
        n += up;
        if (n == pow10_u[p]) { /* 9.9999996 -> 10.00000 */
            n = pow10_u[p - 1];
            x++;
        }
        return (size_t)(o - buf) + emit(o, n, x, p);
    }
    return fmt_slow(buf, v, p);
}
