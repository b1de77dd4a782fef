/*
 * fuzz_cjt188.c - libFuzzer target for the CJ/T 188-2004 reply parser and
 * the quantity decoder (protocols/cjt188.c). Input: byte 0 flags (bit 7
 * "fix the frame": start byte, type, address, reply control code, length,
 * checksum, end byte made consistent; bit 6 abnormal; bit 5 put the asked
 * identifier first; bit 4 with a preamble; bit 3 a wildcard type), byte 1
 * the meter type, bytes 2-8 the address, 9-10 the identifier; the rest is
 * the reply, in a buffer of exactly its size. Invariants as fuzz_dlt645:
 * documented codes only, out/*ret_n only on 0, *need only on 1 and within
 * one frame, every prefix of a good or abnormal reply asks for more, a
 * good reply's type and address match, and its quantities decode or fail
 * with -EBADMSG, a volume in m3 encoding back to the same bytes.
 */
#include <errno.h>

#include "protocols/cjt188.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0xA5

static uint8_t out[CJT188_MAX_DATA + 16];

static int parse(const uint8_t *buf, size_t len, uint8_t type, const uint8_t *addr, uint16_t di,
                 size_t *n, size_t *need)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    int rc = cjt188_parse_read(copy, len, type, addr, di, out, n, need);
    free(copy);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t flags = fz_u8(&in);
    uint8_t type = fz_u8(&in);
    if (flags & 0x08)
        type = CJT188_WILDCARD;
    uint8_t addr[CJT188_ADDR_LEN];
    for (int i = 0; i < CJT188_ADDR_LEN; i++)
        addr[i] = fz_u8(&in);
    uint16_t di = fz_u16(&in);
    if (in.n > CJT188_MAX_FRAME + 16)
        return 0;
    uint8_t buf[CJT188_MAX_FRAME + 16];
    size_t len = in.n;
    memcpy(buf, in.p, len);

    if ((flags & 0x80) && len >= CJT188_OVERHEAD) {
        size_t dl = len - CJT188_OVERHEAD;
        if (dl > CJT188_MAX_DATA)
            dl = CJT188_MAX_DATA;
        uint8_t d[CJT188_MAX_DATA] = {0};
        memcpy(d, in.p + CJT188_OVERHEAD - 2, dl);
        uint8_t a[CJT188_ADDR_LEN];
        for (int i = 0; i < CJT188_ADDR_LEN; i++)
            a[i] = addr[i] == CJT188_WILDCARD ? in.p[2 + i] : addr[i];
        if ((flags & 0x40) && dl < 3)
            dl = 3;
        if ((flags & 0x20) && dl >= 2) {
            d[0] = (uint8_t)di;
            d[1] = (uint8_t)(di >> 8);
        }
        uint8_t t = type == CJT188_WILDCARD ? in.p[1] : type;
        len = cjt188_build(buf, flags & 0x10, t, a, (flags & 0x40) ? 0xC1 : 0x81, d, dl);
    }

    memset(out, SENTINEL, sizeof(out));
    size_t need = SIZE_MAX, n = SIZE_MAX;
    int rc = parse(buf, len, type, addr, di, &n, &need);
    bool abnormal = rc <= -CJT188_ERR_BASE && rc >= -(CJT188_ERR_BASE + 255);
    if (rc != 0 && rc != 1 && rc != -EBADMSG && !abnormal)
        abort();
    if (rc == 1 ? need <= len || need > CJT188_MAX_FRAME : need != SIZE_MAX)
        abort();
    if (rc != 0 && (!fz_all(out, sizeof(out), SENTINEL) || n != SIZE_MAX))
        abort();
    if (rc == 0) {
        size_t skip = 0;
        while (buf[skip] == 0xFE)
            skip++;
        if (n + 3 + CJT188_OVERHEAD + skip != len)
            abort();
        if (type != CJT188_WILDCARD && buf[skip + 1] != type)
            abort();
        for (int i = 0; i < CJT188_ADDR_LEN; i++)
            if (addr[i] != CJT188_WILDCARD && buf[skip + 2 + i] != addr[i])
                abort();
        if (!fz_all(out + n, sizeof(out) - n, SENTINEL))
            abort();
        for (size_t off = 0; off + 5 <= n; off += 5) {
            double v;
            enum cjt188_quantity q;
            int r = cjt188_decode_quantity(out + off, &v, &q);
            if (r != 0 && r != -EBADMSG)
                abort();
            uint8_t e[5];
            if (r == 0 && out[off + 4] == 0x2C &&
                (cjt188_encode_volume(v, e) != 0 || memcmp(e, out + off, 5) != 0))
                abort();
        }
    }
    if (rc == 0 || abnormal) {
        for (size_t k = 0; k < len; k++) {
            memset(out, SENTINEL, sizeof(out));
            need = SIZE_MAX;
            n = SIZE_MAX;
            if (parse(buf, k, type, addr, di, &n, &need) != 1 ||
                !fz_all(out, sizeof(out), SENTINEL) || need <= k || need > len)
                abort();
        }
    }
    return 0;
}
