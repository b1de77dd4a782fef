/*
 * dlt645.c - DL/T 645-2007 frames: address text <-> wire bytes, request
 * building, and a reply parser that checks each field against the request
 * as soon as it has arrived, so the serial receive loop learns at once
 * whether to wait for more bytes (and how many) or to give up.
 */
#include "protocols/dlt645.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "protocols/cnframe.h"

_Static_assert(DLT645_MAX_DATA <= 255, "L is one byte");

size_t dlt645_build(uint8_t *buf, bool preamble, const uint8_t addr[DLT645_ADDR_LEN], uint8_t ctrl,
                    const uint8_t *data, size_t n)
{
    size_t k = cnframe_preamble(buf, preamble);
    size_t start = k;
    buf[k++] = 0x68;
    memcpy(buf + k, addr, DLT645_ADDR_LEN);
    k += DLT645_ADDR_LEN;
    buf[k++] = 0x68;
    buf[k++] = ctrl;
    buf[k++] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        buf[k++] = (uint8_t)(data[i] + 0x33);
    return cnframe_close(buf, start, k);
}

size_t dlt645_build_read(uint8_t buf[DLT645_READ_REQ_LEN], const uint8_t addr[DLT645_ADDR_LEN],
                         uint32_t di)
{
    uint8_t d[4] = {(uint8_t)di, (uint8_t)(di >> 8), (uint8_t)(di >> 16), (uint8_t)(di >> 24)};
    return dlt645_build(buf, true, addr, DLT645_C_READ, d, sizeof(d));
}

int dlt645_parse(const uint8_t *buf, size_t len, const uint8_t addr[DLT645_ADDR_LEN],
                 uint8_t req_ctrl, struct dlt645_frame *ret, size_t *need)
{
    size_t skip = cnframe_skip(buf, len);
    if (skip > DLT645_MAX_SKIP)
        return -EBADMSG;
    const uint8_t *h = buf + skip;
    size_t n = len - skip;
    size_t frame = 0; /* unknown until L is in */

    if (n >= 1 && h[0] != 0x68)
        return -EBADMSG;
    for (size_t i = 0; i < DLT645_ADDR_LEN && i + 1 < n; i++)
        if (addr[i] != DLT645_WILDCARD && h[1 + i] != addr[i])
            return -EBADMSG;
    if (n >= 8 && h[7] != 0x68)
        return -EBADMSG;
    bool abnormal = false;
    if (n >= 9) {
        uint8_t c = h[8];
        if (!(c & DLT645_C_REPLY) || (c & 0x1F) != (req_ctrl & 0x1F))
            return -EBADMSG;
        abnormal = c & DLT645_C_ABNORMAL;
        /* An abnormal reply has nothing to follow. */
        if (abnormal && (c & DLT645_C_FOLLOW))
            return -EBADMSG;
    }
    if (n >= 10) {
        if (h[9] > DLT645_MAX_DATA || (abnormal && h[9] != 1))
            return -EBADMSG;
        frame = skip + DLT645_OVERHEAD + h[9];
    }
    if (!frame || len < frame) {
        *need = frame ? frame : skip + DLT645_OVERHEAD;
        return 1;
    }
    /* One request is outstanding: anything after its reply is noise. */
    if (len > frame)
        return -EBADMSG;
    size_t l = h[9];
    if (!cnframe_tail_ok(h, 10 + l))
        return -EBADMSG;
    if (abnormal)
        return -(DLT645_ERR_BASE + (uint8_t)(h[10] - 0x33));
    memcpy(ret->addr, h + 1, DLT645_ADDR_LEN);
    ret->ctrl = h[8];
    ret->len = (uint8_t)l;
    for (size_t i = 0; i < l; i++)
        ret->data[i] = (uint8_t)(h[10 + i] - 0x33);
    return 0;
}

int dlt645_parse_read(const uint8_t *buf, size_t len, const uint8_t addr[DLT645_ADDR_LEN],
                      uint32_t di, uint8_t *out, size_t *ret_n, size_t *need)
{
    struct dlt645_frame f;
    int r = dlt645_parse(buf, len, addr, DLT645_C_READ, &f, need);
    if (r != 0)
        return r;
    if (f.len < 4)
        return -EBADMSG;
    uint32_t got = (uint32_t)f.data[0] | (uint32_t)f.data[1] << 8 | (uint32_t)f.data[2] << 16 |
                   (uint32_t)f.data[3] << 24;
    if (got != di)
        return -EBADMSG;
    memcpy(out, f.data + 4, f.len - 4u);
    *ret_n = f.len - 4u;
    return 0;
}

const char *dlt645_err_text(uint8_t err)
{
    static const char *const text[] = {
        "other error",
        "no data requested",
        "password error or not authorised",
        "communication rate cannot be changed",
        "year time zones exceed the limit",
        "day periods exceed the limit",
        "tariffs exceed the limit",
        "reserved error bit 7",
    };
    for (int i = 0; i < 8; i++)
        if (err & (1u << i))
            return text[i];
    return "abnormal reply without an error bit";
}

uint32_t dlt645_daily_item(uint32_t di)
{
    uint32_t kind = (di >> 16) & 0xFF;
    if ((di & 0xFF00FFFFu) != 0 || kind < 1 || kind > 8)
        return 0;
    return 0x05060000u | kind << 8;
}

int64_t dlt645_settlement_instant(int day, int hour, int64_t now_ms, int k)
{
    if (day < 1 || day > 28 || hour < 0 || hour > 23 || k < 1)
        return -1;
    time_t now = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    /* This month's instant, or last month's when it is still ahead; then
     * k - 1 months further back. */
    int y = tm.tm_year, mon = tm.tm_mon;
    bool ahead = tm.tm_mday < day || (tm.tm_mday == day && tm.tm_hour < hour);
    int back = (ahead ? 1 : 0) + k - 1;
    mon -= back;
    while (mon < 0) {
        mon += 12;
        y--;
    }
    struct tm t = {.tm_year = y, .tm_mon = mon, .tm_mday = day, .tm_hour = hour, .tm_isdst = -1};
    time_t at = mktime(&t);
    return at == (time_t)-1 ? -1 : (int64_t)at * 1000;
}
