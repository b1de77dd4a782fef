/*
 * fuzz_common.h - helpers shared by the libFuzzer targets of tests/fuzz:
 * a per-process scratch directory and a byte reader that hands out
 * structured values from the fuzzer's input (zeros once it runs out).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A scratch directory for this process, created once (never removed: the
 * fuzzer exits through _exit paths; it lives under /tmp). */
static inline const char *fz_tmpdir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/parkgw-fuzz.XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Writes len bytes to path (truncating); aborts on I/O failure. */
static inline void fz_write(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "we");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        abort();
}

struct fz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fz_u8(struct fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fz_u16(struct fz_in *in)
{
    uint16_t hi = fz_u8(in);
    return (uint16_t)(hi << 8 | fz_u8(in));
}

static inline uint32_t fz_u32(struct fz_in *in)
{
    uint32_t hi = fz_u16(in);
    return hi << 16 | fz_u16(in);
}

/* True when every byte of p[0..n) is v (an output buffer left untouched). */
static inline bool fz_all(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}
