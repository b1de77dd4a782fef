/*
 * chunk.h - the sample encoding of schema 5 (docs/STORAGE.md, "Chunks and
 * their codec"), shared by series chunks and staged rows: a sequence of
 * (key, value) pairs with non-decreasing keys, each one an unsigned LEB128
 * varint of ((key - previous key) << 1 | f32flag) followed by the value as 4
 * bytes little-endian IEEE float32 (f32flag set: the value is exactly a
 * float) or 8 bytes little-endian double. In a series chunk the key is the
 * ts (previous key of the first = the chunk's t0), in a staged row the point
 * id (previous key of the first = the meter key).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. */
struct chunk_buf {
    uint8_t *p;
    size_t len, cap;
};

/* Appends (key, v) after *prev (key >= *prev; NaN must be filtered by the
 * caller) and sets *prev = key. */
void chunk_put(struct chunk_buf *b, int64_t *prev, int64_t key, double v);
void chunk_buf_free(struct chunk_buf *b);

/* Decodes a sequence: chunk_next returns 1 and the next pair, 0 at the
 * end, -EINVAL on a truncated or malformed sequence. */
struct chunk_iter {
    const uint8_t *p, *end;
    int64_t key;
};
void chunk_iter_init(struct chunk_iter *it, const void *data, size_t len, int64_t first_prev);
int chunk_next(struct chunk_iter *it, int64_t *ret_key, double *ret_v);

/* Whether v is stored in 4 bytes. */
bool chunk_is_f32(double v);
