/*
 * fuzz_dlt645.c - libFuzzer target for the DL/T 645-2007 reply parser
 * (protocols/dlt645.c) and the BCD decoders (common/bcd.c), where a serial
 * line's bytes become meter values. Input: byte 0 flags (bit 7 "fix the
 * frame": start bytes, address, reply control code, length, checksum and
 * end byte made consistent so the fuzzer reaches the data and decoders;
 * bit 6 an abnormal reply; bits 0-1 wildcard the first 0-3 address bytes),
 * bytes 1-6 the address asked, 7-10 the identifier, 11 a format selector;
 * the rest is the reply, in a buffer of exactly its size.
 * Invariants: the result is one of the documented codes; out and *ret_n
 * are written only on 0, *need only on 1 (beyond len, within one frame); a
 * good or abnormal reply has exactly its frame's length and every shorter
 * prefix asks for more; a good reply's address equals the one asked in
 * every non-wildcard byte; decoding its data never fails but with -EBADMSG.
 */
#include <errno.h>

#include "common/bcd.h"
#include "protocols/dlt645.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0xA5

static uint8_t out[DLT645_MAX_DATA + 16];

static int parse(const uint8_t *buf, size_t len, const uint8_t *addr, uint32_t di, size_t *n,
                 size_t *need)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    int rc = dlt645_parse_read(copy, len, addr, di, out, n, need);
    free(copy);
    return rc;
}

static void decode_all(const uint8_t *p, size_t n)
{
    static const char *const fmts[] = {"XXXXXX.XX", "XXX.X",  "XXX.XXX",  "XX.XXXX",
                                       "X.XXX",     "NNNNNN", "XX.XX",    "YYMMDDhhmm",
                                       "YYMMDDWW",  "hhmmss", "MMDDhhmm", "XXXXXXXXXX.XX"};
    for (size_t k = 0; k < sizeof(fmts) / sizeof(fmts[0]); k++) {
        struct bcd_fmt f;
        if (bcd_fmt_parse(fmts[k], &f) != 0)
            abort();
        for (size_t off = 0; off + f.bytes <= n; off += f.bytes) {
            double v;
            struct bcd_time t;
            int r = f.time ? bcd_decode_time(p + off, &f, &t)
                           : bcd_decode_num(p + off, &f, off % 2, &v);
            if (r != 0 && r != -EBADMSG)
                abort();
            if (r == 0 && !f.time) {
                /* A decoded number encodes back to the same bytes, except
                 * a negative zero. */
                uint8_t e[BCD_MAX_BYTES];
                if (v != 0 &&
                    (bcd_encode_num(v, &f, off % 2, e) != 0 || memcmp(e, p + off, f.bytes) != 0))
                    abort();
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    uint8_t addr[DLT645_ADDR_LEN];
    for (int i = 0; i < DLT645_ADDR_LEN; i++)
        addr[i] = fz_u8(&in);
    for (int i = 0; i < (flags & 3); i++)
        addr[DLT645_ADDR_LEN - 1 - i] = DLT645_WILDCARD;
    uint32_t di = fz_u32(&in);
    (void)fz_u8(&in);
    if (in.n > DLT645_MAX_FRAME + 16)
        return 0;
    uint8_t buf[DLT645_MAX_FRAME + 16];
    size_t len = in.n;
    memcpy(buf, in.p, len);

    if ((flags & 0x80) && len >= DLT645_OVERHEAD + 1) {
        /* Keep the input's data bytes; rebuild the frame around them. */
        size_t dl = len - DLT645_OVERHEAD;
        if (dl > DLT645_MAX_DATA)
            dl = DLT645_MAX_DATA;
        uint8_t d[DLT645_MAX_DATA];
        for (size_t i = 0; i < dl; i++)
            d[i] = (uint8_t)(in.p[DLT645_OVERHEAD - 2 + i] - 0x33);
        uint8_t a[DLT645_ADDR_LEN];
        memcpy(a, addr, sizeof(a));
        for (int i = 0; i < DLT645_ADDR_LEN; i++)
            if (a[i] == DLT645_WILDCARD)
                a[i] = in.p[1 + i];
        if (flags & 0x40) {
            dl = 1;
        } else if (dl >= 4 && (flags & 0x20)) {
            d[0] = (uint8_t)di;
            d[1] = (uint8_t)(di >> 8);
            d[2] = (uint8_t)(di >> 16);
            d[3] = (uint8_t)(di >> 24);
        }
        len = dlt645_build(buf, flags & 0x10, a, (flags & 0x40) ? 0xD1 : 0x91, d, dl);
    }

    memset(out, SENTINEL, sizeof(out));
    size_t need = SIZE_MAX, n = SIZE_MAX;
    int rc = parse(buf, len, addr, di, &n, &need);
    bool abnormal = rc <= -DLT645_ERR_BASE && rc >= -(DLT645_ERR_BASE + 255);
    if (rc != 0 && rc != 1 && rc != -EBADMSG && !abnormal)
        abort();
    if (rc == 1 ? need <= len || need > DLT645_MAX_FRAME : need != SIZE_MAX)
        abort();
    if (rc != 0 && (!fz_all(out, sizeof(out), SENTINEL) || n != SIZE_MAX))
        abort();
    if (rc == 0) {
        size_t skip = 0;
        while (buf[skip] == 0xFE)
            skip++;
        if (n + 4 + DLT645_OVERHEAD + skip != len)
            abort();
        for (int i = 0; i < DLT645_ADDR_LEN; i++)
            if (addr[i] != DLT645_WILDCARD && buf[skip + 1 + i] != addr[i])
                abort();
        if (!fz_all(out + n, sizeof(out) - n, SENTINEL))
            abort();
        decode_all(out, n);
    }
    if (rc == 0 || abnormal) {
        for (size_t k = 0; k < len; k++) {
            memset(out, SENTINEL, sizeof(out));
            need = SIZE_MAX;
            n = SIZE_MAX;
            if (parse(buf, k, addr, di, &n, &need) != 1 || !fz_all(out, sizeof(out), SENTINEL) ||
                need <= k || need > len)
                abort();
        }
    }
    return 0;
}
