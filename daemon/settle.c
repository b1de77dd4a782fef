/*
 * settle.c - reading a DL/T 645 meter's latest settlement-day reading and
 * the instant it belongs to.
 */
#include "daemon/settle.h"

#include <errno.h>

#include "common/bcd.h"
#include "protocols/decode.h"
#include "protocols/dlt645.h"

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
    r = bus_read_meter(b, m, &rd, out);
    if (r < 0)
        return r;
    /* As the poller stores the billing counter: the dial reading when the
     * point has a ratio (bills apply the meter's history), else primary. */
    double v;
    bool dial = pt->ratio != RATIO_NONE;
    if (decode_point(pt, dial ? 1.0 : m->pt_ratio, dial ? 1.0 : m->ct_ratio, out, &v) < 0)
        return -EBADMSG;
    *ret_ts = at;
    *ret_value = v;
    return 0;
}
