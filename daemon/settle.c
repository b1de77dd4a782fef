/*
 * settle.c - reading a DL/T 645 meter's latest settlement-day reading and
 * the instant it belongs to.
 */
#include "daemon/settle.h"

#include <errno.h>
#include <time.h>

#include "common/bcd.h"
#include "protocols/decode.h"
#include "protocols/dlt645.h"

/* Reads req (the billing point's value in some frozen item) and decodes
 * it as the poller stores the billing counter: the dial reading when the
 * point has a ratio (bills apply the meter's history), else primary. */
static int read_value(struct bus *b, const struct cfg_meter *m, const struct cfg_point *pt,
                      const struct plan_req *req, double *ret)
{
    uint16_t out[BCD_MAX_BYTES];
    int r = bus_read_meter(b, m, req, out);
    if (r < 0)
        return r;
    bool dial = pt->ratio != RATIO_NONE;
    if (decode_point(pt, dial ? 1.0 : m->pt_ratio, dial ? 1.0 : m->ct_ratio, out, ret) < 0)
        return -EBADMSG;
    return 0;
}

int settle_read(struct bus *b, const struct cfg_meter *m, const struct cfg_profile *p,
                int64_t now_ms, int64_t *ret_ts, double *ret_value)
{
    int bp = profile_billing_point(p);
    if (!p->settlement || bp < 0)
        return -EINVAL;
    const struct cfg_point *pt = &p->points[bp];
    uint16_t out[BCD_MAX_BYTES];
    struct plan_req day = {
        .fc = PLAN_FC_DLT645, .count = 2, .di = DLT645_DI_SETTLEMENT_DAY, .exact = true};
    int r = bus_read_meter(b, m, &day, out);
    if (r < 0)
        return r;
    /* DDhh: the hour first on the wire. */
    struct bcd_fmt f;
    struct bcd_time t;
    uint8_t ddhh[2] = {(uint8_t)out[0], (uint8_t)out[1]};
    if (bcd_fmt_parse("DDhh", &f) < 0 || bcd_decode_time(ddhh, &f, &t) < 0)
        return -EBADMSG;
    int64_t at = dlt645_settlement_instant(t.day, t.hour, now_ms, 1);
    if (at < 0)
        return -EBADMSG;
    struct plan_req rd = {.fc = PLAN_FC_DLT645,
                          .count = (uint16_t)pt->fmt.bytes,
                          .di = (pt->di & 0xFFFFFF00u) | 0x01,
                          .exact = true};
    r = read_value(b, m, pt, &rd, ret_value);
    if (r < 0)
        return r;
    *ret_ts = at;
    return 0;
}

int settle_read_daily(struct bus *b, const struct cfg_meter *m, const struct cfg_profile *p,
                      int nn, int64_t *ret_ts, double *ret_value)
{
    int bp = profile_billing_point(p);
    uint32_t item = bp < 0 ? 0 : dlt645_daily_item(p->points[bp].di);
    if (item == 0 || nn < 1 || nn > DLT645_DAILY_FROZEN_MAX)
        return -EINVAL;
    const struct cfg_point *pt = &p->points[bp];
    uint16_t out[BCD_MAX_BYTES];
    struct plan_req tr = {
        .fc = PLAN_FC_DLT645, .count = 5, .di = DLT645_DI_DAILY_TIME((uint32_t)nn), .exact = true};
    int r = bus_read_meter(b, m, &tr, out);
    if (r < 0)
        return r;
    struct bcd_fmt f;
    struct bcd_time t;
    uint8_t raw[5];
    for (size_t i = 0; i < 5; i++)
        raw[i] = (uint8_t)out[i];
    if (bcd_fmt_parse("YYMMDDhhmm", &f) < 0 || bcd_decode_time(raw, &f, &t) < 0)
        return -EBADMSG;
    struct tm tm = {.tm_year = t.year - 1900, .tm_mon = t.mon - 1, .tm_mday = t.day,
                    .tm_hour = t.hour, .tm_min = t.min, .tm_isdst = -1};
    time_t at = mktime(&tm);
    if (at == (time_t)-1)
        return -EBADMSG;
    /* The block: the total first, then the tariffs (a meter sends as many
     * as it has), so at least the total's bytes. */
    struct plan_req rd = {.fc = PLAN_FC_DLT645,
                          .count = (uint16_t)pt->fmt.bytes,
                          .di = item | (uint32_t)nn,
                          .exact = false};
    r = read_value(b, m, pt, &rd, ret_value);
    if (r < 0)
        return r;
    *ret_ts = (int64_t)at * 1000;
    return 0;
}
