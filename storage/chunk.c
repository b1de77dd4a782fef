/*
 * chunk.c - varint + float32/double sample encoding (chunk.h). Byte order is
 * fixed (little endian) whatever the host, so files move between machines
 * and outside tools can decode the blobs.
 */
#include "storage/chunk.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool chunk_is_f32(double v)
{
    /* volatile: no excess precision may make the round trip look exact */
    volatile float f = (float)v;
    return (double)f == v;
}

void chunk_put(struct chunk_buf *b, int64_t *prev, int64_t key, double v)
{
    bool f32 = chunk_is_f32(v);
    uint64_t x = ((uint64_t)(key - *prev) << 1) | (f32 ? 1u : 0u);
    uint8_t *p;

    b->p = xgrow(b->p, &b->cap, b->len + 10 + 8, 1);
    p = b->p + b->len;
    while (x >= 0x80) {
        *p++ = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    *p++ = (uint8_t)x;
    if (f32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        for (int i = 0; i < 4; i++)
            *p++ = (uint8_t)(u >> (8 * i));
    } else {
        uint64_t u;
        memcpy(&u, &v, sizeof(u));
        for (int i = 0; i < 8; i++)
            *p++ = (uint8_t)(u >> (8 * i));
    }
    b->len = (size_t)(p - b->p);
    *prev = key;
}

void chunk_buf_free(struct chunk_buf *b)
{
    free(b->p);
    *b = (struct chunk_buf){0};
}

void chunk_iter_init(struct chunk_iter *it, const void *data, size_t len, int64_t first_prev)
{
    it->p = data;
    it->end = it->p ? it->p + len : NULL;
    it->key = first_prev;
}

int chunk_next(struct chunk_iter *it, int64_t *ret_key, double *ret_v)
{
    uint64_t x = 0;
    unsigned shift = 0;

    if (it->p == it->end)
        return 0;
    for (;;) {
        if (it->p == it->end || shift > 63)
            return -EINVAL;
        uint8_t c = *it->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
        shift += 7;
    }
    size_t w = (x & 1) ? 4 : 8;
    if ((size_t)(it->end - it->p) < w)
        return -EINVAL;
    if (w == 4) {
        uint32_t u = 0;
        float f;
        for (int i = 0; i < 4; i++)
            u |= (uint32_t)it->p[i] << (8 * i);
        memcpy(&f, &u, sizeof(f));
        *ret_v = f;
    } else {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u |= (uint64_t)it->p[i] << (8 * i);
        memcpy(ret_v, &u, sizeof(*ret_v));
    }
    it->p += w;
    it->key = (int64_t)((uint64_t)it->key + (x >> 1));
    *ret_key = it->key;
    return 1;
}
