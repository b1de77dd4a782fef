/*
 * cnframe.c - wake-up bytes and the sum-and-end-byte tail of the Chinese
 * metering frames.
 */
#include "protocols/cnframe.h"

static uint8_t sum(const uint8_t *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return (uint8_t)s;
}

size_t cnframe_preamble(uint8_t *buf, bool on)
{
    size_t k = 0;
    for (; on && k < CNFRAME_PREAMBLE_LEN; k++)
        buf[k] = 0xFE;
    return k;
}

size_t cnframe_close(uint8_t *buf, size_t start, size_t k)
{
    buf[k] = sum(buf + start, k - start);
    buf[k + 1] = 0x16;
    return k + 2;
}

size_t cnframe_skip(const uint8_t *buf, size_t len)
{
    size_t k = 0;
    while (k < len && buf[k] == 0xFE)
        k++;
    return k;
}

bool cnframe_tail_ok(const uint8_t *h, size_t body)
{
    return h[body] == sum(h, body) && h[body + 1] == 0x16;
}
