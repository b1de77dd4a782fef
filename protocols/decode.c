/*
 * decode.c - register words <-> engineering values. A point's registers are
 * first put back into canonical big-endian order (undoing the word order),
 * giving an up-to-64-bit pattern that is read as the point's type; then
 * scale, offset and PT x CT apply. The encoder runs the same steps backwards.
 */
#include "protocols/decode.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "common/regtype.h"
#include "protocols/cjt188.h"

static bool order_swaps_words(enum word_order o)
{
    return o == WO_CDAB || o == WO_DCBA;
}

static bool order_swaps_bytes(enum word_order o)
{
    return o == WO_BADC || o == WO_DCBA;
}

static uint16_t swap16(uint16_t w)
{
    return (uint16_t)((w << 8) | (w >> 8));
}

/* Register index holding canonical word i (0 = most significant) of n. */
static int wire_index(enum word_order o, int n, int i)
{
    return order_swaps_words(o) ? n - 1 - i : i;
}

/* The n registers as one big-endian pattern in the low 16*n bits. */
static uint64_t gather(enum word_order o, int n, const uint16_t *regs)
{
    uint64_t bits = 0;

    for (int i = 0; i < n; i++) {
        uint16_t w = regs[wire_index(o, n, i)];
        if (order_swaps_bytes(o))
            w = swap16(w);
        bits = (bits << 16) | w;
    }
    return bits;
}

static void scatter(enum word_order o, int n, uint64_t bits, uint16_t *regs)
{
    for (int i = n - 1; i >= 0; i--) {
        uint16_t w = (uint16_t)(bits & 0xffff);
        if (order_swaps_bytes(o))
            w = swap16(w);
        regs[wire_index(o, n, i)] = w;
        bits >>= 16;
    }
}

double decode_raw(enum point_type t, enum word_order o, const uint16_t *regs)
{
    int n = point_type_regs(t);
    /* A single register has no word order; byte swapping it would turn a
     * BADC meter's uint16 into nonsense, and DESIGN.md says 16-bit ignores it. */
    uint64_t bits = n == 1 ? regs[0] : gather(o, n, regs);

    switch (t) {
    case PT_INT16:
        return (double)(int16_t)(uint16_t)bits;
    case PT_UINT16:
        return (double)(uint16_t)bits;
    case PT_INT32:
        return (double)(int32_t)(uint32_t)bits;
    case PT_UINT32:
        return (double)(uint32_t)bits;
    case PT_INT64:
        return (double)(int64_t)bits;
    case PT_UINT64:
        return (double)bits;
    case PT_FLOAT32: {
        uint32_t u = (uint32_t)bits;
        float f;
        memcpy(&f, &u, sizeof(f));
        return (double)f;
    }
    case PT_FLOAT64: {
        double d;
        memcpy(&d, &bits, sizeof(d));
        return d;
    }
    case PT_BOOL:
        return bits ? 1.0 : 0.0;
    }
    return NAN;
}

/* A DL/T 645 BCD number or a CJ/T 188 quantity from data bytes held one
 * per element of regs (as bus_read delivers them). 0 or -EBADMSG. */
static int decode_item(const struct cfg_point *p, const uint16_t *regs, double *ret)
{
    uint8_t b[BCD_MAX_BYTES + 1];
    if (p->data_len < 1 || p->data_len > (int)sizeof(b))
        return -EINVAL;
    for (int i = 0; i < p->data_len; i++)
        b[i] = (uint8_t)regs[i];
    if (p->fmt.bytes)
        return bcd_decode_num(b, &p->fmt, p->is_signed, ret);
    enum cjt188_quantity q;
    int r = cjt188_decode_quantity(b, ret, &q);
    /* A flow field must hold a volume (m3 or L), not an energy. */
    return r < 0 || q != CJT188_Q_VOLUME ? -EBADMSG : 0;
}

int decode_point(const struct cfg_point *p, double pt_ratio, double ct_ratio, const uint16_t *regs,
                 double *ret_value)
{
    double v;
    if (p->data_len > 0) {
        int r = decode_item(p, regs, &v);
        if (r < 0)
            return r;
        v *= p->scale;
    } else {
        v = decode_raw(p->type, p->order, regs) * p->scale;
    }

    /* Sum the scaled parts, not raw + frac_raw * frac_scale / scale: the
     * fraction's own scale may be finer than the integer's. */
    if (p->has_frac)
        v += decode_raw(p->frac_type, p->order, regs + (p->frac_address - p->address)) *
             p->frac_scale;
    v += p->offset;

    v *= point_ratio_factor(p, pt_ratio, ct_ratio);
    if (!isfinite(v))
        return -ERANGE;
    *ret_value = v;
    return 0;
}

/* Rounds to nearest and clamps into [lo, hi]; NaN becomes 0. lo/hi are
 * exactly representable doubles (powers of two or their negatives). */
static double round_clamp(double x, double lo, double hi)
{
    if (isnan(x))
        return 0;
    x = round(x);
    if (x < lo)
        return lo;
    if (x > hi)
        return hi;
    return x;
}

void encode_raw(enum point_type t, enum word_order o, double raw, uint16_t *regs)
{
    uint64_t bits = 0;

    switch (t) {
    case PT_INT16:
        bits = (uint16_t)(int16_t)round_clamp(raw, INT16_MIN, INT16_MAX);
        break;
    case PT_UINT16:
        bits = (uint16_t)round_clamp(raw, 0, UINT16_MAX);
        break;
    case PT_INT32:
        bits = (uint32_t)(int32_t)round_clamp(raw, INT32_MIN, INT32_MAX);
        break;
    case PT_UINT32:
        bits = (uint32_t)round_clamp(raw, 0, UINT32_MAX);
        break;
    case PT_INT64: {
        /* 2^63 is not an int64; anything at or above it saturates. */
        double r = round_clamp(raw, -9223372036854775808.0, 9223372036854775808.0);
        bits = r >= 9223372036854775808.0 ? (uint64_t)INT64_MAX : (uint64_t)(int64_t)r;
        break;
    }
    case PT_UINT64: {
        double r = round_clamp(raw, 0, 18446744073709551616.0);
        bits = r >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)r;
        break;
    }
    case PT_FLOAT32: {
        float f;
        uint32_t u;
        /* Converting an out-of-range double to float is undefined in C;
         * IEEE hardware would give infinity, so say so explicitly. */
        if (!isnan(raw) && fabs(raw) > FLT_MAX)
            f = raw > 0 ? INFINITY : -INFINITY;
        else
            f = (float)raw;
        memcpy(&u, &f, sizeof(u));
        bits = u;
        break;
    }
    case PT_FLOAT64:
        memcpy(&bits, &raw, sizeof(bits));
        break;
    case PT_BOOL:
        bits = round_clamp(fabs(raw), 0, 1) != 0 ? 1 : 0;
        break;
    }

    int n = point_type_regs(t);
    if (n == 1)
        regs[0] = (uint16_t)bits;
    else
        scatter(o, n, bits, regs);
}

double encode_unscale(const struct cfg_point *p, double pt_ratio, double ct_ratio, double value)
{
    double f = point_ratio_factor(p, pt_ratio, ct_ratio);
    if (f != 0)
        value /= f;
    value -= p->offset;
    /* Config validation rejects scale 0; without it any raw decodes to
     * 'offset', so 0 is as good an answer as any. */
    if (p->scale == 0)
        return 0;
    return value / p->scale;
}

double encode_frac_split(const struct cfg_point *p, double raw, double *ret_frac_raw)
{
    if (!p->has_frac || p->frac_scale == 0 || !isfinite(raw)) {
        *ret_frac_raw = 0;
        return raw;
    }
    double whole = floor(raw);
    *ret_frac_raw = (raw - whole) * p->scale / p->frac_scale;
    return whole;
}
