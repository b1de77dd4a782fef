/*
 * cjt188.c - CJ/T 188-2004 frames: address text <-> wire bytes, the read
 * request, a reply parser that fails on the first wrong field, and the
 * quantity-with-unit-code decoding of the metering data.
 */
#include "protocols/cjt188.h"

#include <errno.h>
#include <string.h>

#include "protocols/cnframe.h"

size_t cjt188_build(uint8_t *buf, bool preamble, uint8_t type, const uint8_t addr[CJT188_ADDR_LEN],
                    uint8_t ctrl, const uint8_t *data, size_t n)
{
    size_t k = cnframe_preamble(buf, preamble);
    size_t start = k;
    buf[k++] = 0x68;
    buf[k++] = type;
    memcpy(buf + k, addr, CJT188_ADDR_LEN);
    k += CJT188_ADDR_LEN;
    buf[k++] = ctrl;
    buf[k++] = (uint8_t)n;
    if (n)
        memcpy(buf + k, data, n);
    k += n;
    return cnframe_close(buf, start, k);
}

size_t cjt188_build_read(uint8_t buf[CJT188_READ_REQ_LEN], uint8_t type,
                         const uint8_t addr[CJT188_ADDR_LEN], uint16_t di, uint8_t ser)
{
    uint8_t d[3] = {(uint8_t)di, (uint8_t)(di >> 8), ser};
    return cjt188_build(buf, true, type, addr, CJT188_C_READ, d, sizeof(d));
}

int cjt188_parse(const uint8_t *buf, size_t len, uint8_t type, const uint8_t addr[CJT188_ADDR_LEN],
                 uint8_t req_ctrl, struct cjt188_frame *ret, size_t *need)
{
    size_t skip = cnframe_skip(buf, len);
    if (skip > CJT188_MAX_SKIP)
        return -EBADMSG;
    const uint8_t *h = buf + skip;
    size_t n = len - skip;
    size_t frame = 0;

    if (n >= 1 && h[0] != 0x68)
        return -EBADMSG;
    if (n >= 2 && type != CJT188_WILDCARD && h[1] != type)
        return -EBADMSG;
    for (size_t i = 0; i < CJT188_ADDR_LEN && i + 2 < n; i++)
        if (addr[i] != CJT188_WILDCARD && h[2 + i] != addr[i])
            return -EBADMSG;
    bool abnormal = false;
    if (n >= 10) {
        uint8_t c = h[9];
        if (!(c & CJT188_C_REPLY) || (c & 0x3F) != (req_ctrl & 0x3F))
            return -EBADMSG;
        abnormal = c & CJT188_C_ABNORMAL;
    }
    if (n >= 11) {
        if (abnormal && h[10] < 3)
            return -EBADMSG;
        frame = skip + CJT188_OVERHEAD + h[10];
    }
    if (!frame || len < frame) {
        *need = frame ? frame : skip + CJT188_OVERHEAD;
        return 1;
    }
    if (len > frame)
        return -EBADMSG;
    size_t l = h[10];
    if (!cnframe_tail_ok(h, 11 + l))
        return -EBADMSG;
    if (abnormal) /* SER ST0 ST1 */
        return -(CJT188_ERR_BASE + h[12]);
    ret->type = h[1];
    memcpy(ret->addr, h + 2, CJT188_ADDR_LEN);
    ret->ctrl = h[9];
    ret->len = (uint8_t)l;
    memcpy(ret->data, h + 11, l);
    return 0;
}

int cjt188_parse_read(const uint8_t *buf, size_t len, uint8_t type,
                      const uint8_t addr[CJT188_ADDR_LEN], uint16_t di, uint8_t *out, size_t *ret_n,
                      size_t *need)
{
    struct cjt188_frame f;
    int r = cjt188_parse(buf, len, type, addr, CJT188_C_READ, &f, need);
    if (r != 0)
        return r;
    if (f.len < 3 || (f.data[0] | f.data[1] << 8) != di)
        return -EBADMSG;
    memcpy(out, f.data + 3, f.len - 3u);
    *ret_n = f.len - 3u;
    return 0;
}

int cjt188_decode_quantity(const uint8_t p[5], double *ret, enum cjt188_quantity *ret_q)
{
    static const struct {
        uint8_t code;
        enum cjt188_quantity q;
        double factor; /* to m3, m3/h, kWh, kW */
    } units[] = {
        {0x02, CJT188_Q_ENERGY, 1e-3},        /* Wh */
        {0x05, CJT188_Q_ENERGY, 1.0},         /* kWh */
        {0x08, CJT188_Q_ENERGY, 1e3},         /* MWh */
        {0x0A, CJT188_Q_ENERGY, 1e5},         /* MWh x 100 */
        {0x01, CJT188_Q_ENERGY, 1.0 / 3.6e6}, /* J */
        {0x0B, CJT188_Q_ENERGY, 1.0 / 3.6e3}, /* kJ */
        {0x0E, CJT188_Q_ENERGY, 1.0 / 3.6},   /* MJ */
        {0x11, CJT188_Q_ENERGY, 1e3 / 3.6},   /* GJ */
        {0x13, CJT188_Q_ENERGY, 1e5 / 3.6},   /* GJ x 100 */
        {0x14, CJT188_Q_POWER, 1e-3},         /* W */
        {0x17, CJT188_Q_POWER, 1.0},          /* kW */
        {0x1A, CJT188_Q_POWER, 1e3},          /* MW */
        {0x29, CJT188_Q_VOLUME, 1e-3},        /* L */
        {0x2C, CJT188_Q_VOLUME, 1.0},         /* m3 */
        {0x32, CJT188_Q_FLOW_RATE, 1e-3},     /* L/h */
        {0x35, CJT188_Q_FLOW_RATE, 1.0},      /* m3/h */
    };
    static const struct bcd_fmt f = {.bytes = 4, .decimals = 2};
    double v;
    if (bcd_decode_num(p, &f, false, &v) < 0)
        return -EBADMSG;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (units[i].code == p[4]) {
            *ret = v * units[i].factor;
            *ret_q = units[i].q;
            return 0;
        }
    }
    return -EBADMSG;
}

int cjt188_encode_volume(double v, uint8_t out[5])
{
    static const struct bcd_fmt f = {.bytes = 4, .decimals = 2};
    uint8_t b[4];
    int r = bcd_encode_num(v, &f, false, b);
    if (r < 0)
        return r;
    memcpy(out, b, 4);
    out[4] = 0x2C;
    return 0;
}
