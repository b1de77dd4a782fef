/*
 * sim_cn.c - replies of simulated DL/T 645-2007 and CJ/T 188 meters, built
 * with the gateway's own frame builders (dlt645.c, cjt188.c) from the
 * value model's data bytes (sim_item_bytes).
 */
#include "tools/sim/sim_cn.h"

#include <string.h>
#include <time.h>

#include "protocols/cjt188.h"
#include "protocols/cnframe.h"
#include "protocols/dlt645.h"

int sim_cn_frame_len(enum bus_protocol proto, const uint8_t *b, size_t n)
{
    if (n < 1)
        return 0;
    if (b[0] != 0x68)
        return -1;
    if (proto == PROTO_DLT645) {
        if (n >= 8 && b[7] != 0x68)
            return -1;
        return n < 10 ? 0 : DLT645_OVERHEAD + b[9];
    }
    return n < 11 ? 0 : CJT188_OVERHEAD + b[10];
}

static bool addr_match(const uint8_t *want, const uint8_t *have, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (want[i] != BCD_ADDR_WILDCARD && want[i] != have[i])
            return false;
    return true;
}

bool sim_cn_addressed(enum bus_protocol proto, const struct config *cfg, const struct cfg_meter *m,
                      const uint8_t *f, size_t len)
{
    if (len < 2 || !cnframe_tail_ok(f, len - 2))
        return false;
    if (proto == PROTO_DLT645)
        return len >= DLT645_OVERHEAD && addr_match(f + 1, m->addr, DLT645_ADDR_LEN);
    int type = cfg->profiles[m->profile].meter_type;
    return len >= CJT188_OVERHEAD && (f[1] == BCD_ADDR_WILDCARD || f[1] == type) &&
           addr_match(f + 2, m->addr, CJT188_ADDR_LEN);
}

/* The data of a DL/T 645 read of di: the profile's points of that item at
 * their offsets (the rest of a block zero). Returns its length, 0 when the
 * profile has no such item. */
static size_t dlt645_item(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                          const struct sim_meter_state *st, int64_t t, uint32_t di, uint8_t *d)
{
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    size_t n = 0;
    memset(d, 0, DLT645_MAX_DATA - 4);
    if (di == DLT645_DI_SETTLEMENT_DAY) {
        /* DDhh: settles on day SIM_SETTLE_DAY at SIM_SETTLE_HOUR. */
        d[0] = (uint8_t)((SIM_SETTLE_HOUR / 10) << 4 | SIM_SETTLE_HOUR % 10);
        d[1] = (uint8_t)((SIM_SETTLE_DAY / 10) << 4 | SIM_SETTLE_DAY % 10);
        return 2;
    }
    int k = (int)(di & 0xFF);
    uint32_t kind = (di >> 8) & 0xFF;
    if ((di & 0xFFFF0000u) == 0x05060000u && k >= 1 && k <= SIM_DAILY_FROZEN && kind <= 8) {
        /* The k-th last daily freeze, at local midnight: today's is k = 1. */
        time_t now = (time_t)t;
        struct tm tm;
        localtime_r(&now, &tm);
        struct tm f = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday - (k - 1),
                       .tm_isdst = -1};
        time_t at = mktime(&f);
        localtime_r(&at, &f);
        if (kind == 0) {
            /* YYMMDDhhmm, the minute first */
            int v[5] = {f.tm_min, f.tm_hour, f.tm_mday, f.tm_mon + 1, f.tm_year % 100};
            for (int i = 0; i < 5; i++)
                d[i] = (uint8_t)((v[i] / 10) << 4 | v[i] % 10);
            return 5;
        }
        /* The energies of 00xx0000: the total, then tariffs 1-4 (zero where
         * the profile lacks the item). */
        uint32_t cur = kind << 16;
        for (size_t i = 0; i < p->n_points; i++) {
            uint32_t pdi = p->points[i].di;
            if ((pdi & 0xFFFF00FFu) == cur && ((pdi >> 8) & 0xFF) <= 4)
                sim_item_bytes(seed, cfg, m, i, (int64_t)at, st, d + 4 * ((pdi >> 8) & 0xFF));
        }
        return 20;
    }
    if (k >= 1 && k <= 12 && !(di >> 24)) {
        /* An energy at the k-th last settlement instant: the current item's
         * point, valued then (the model's counters are exact integrals). */
        int64_t at = dlt645_settlement_instant(SIM_SETTLE_DAY, SIM_SETTLE_HOUR, t * 1000, k);
        for (size_t i = 0; i < p->n_points && at >= 0; i++)
            if (p->points[i].di == (di & 0xFFFFFF00u))
                return (size_t)sim_item_bytes(seed, cfg, m, i, at / 1000, st, d);
        return 0;
    }
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *pt = &p->points[i];
        if (pt->req_di != di)
            continue;
        sim_item_bytes(seed, cfg, m, i, t, st, d + pt->data_offset);
        size_t end = (size_t)(pt->data_offset + pt->data_len);
        n = end > n ? end : n;
    }
    return n;
}

static size_t dlt645_reply(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                           const struct sim_meter_state *st, int64_t t, const uint8_t *f,
                           int abnormal, const uint8_t *addr, uint8_t *out)
{
    uint8_t d[DLT645_MAX_DATA];
    uint8_t c = f[8], l = f[9];
    if (c == DLT645_C_READ_ADDR)
        return dlt645_build(out, true, addr, 0x93, m->addr, DLT645_ADDR_LEN);
    if (c != DLT645_C_READ || l < 4)
        return 0;
    for (int i = 0; i < 4; i++)
        d[i] = (uint8_t)(f[10 + i] - 0x33);
    uint32_t di =
        (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
    size_t n = abnormal >= 0 ? 0 : dlt645_item(seed, cfg, m, st, t, di, d + 4);
    if (!n) {
        d[0] = abnormal >= 0 ? (uint8_t)abnormal : DLT645_ERR_NO_DATA;
        return dlt645_build(out, true, addr, 0xD1, d, 1);
    }
    return dlt645_build(out, true, addr, 0x91, d, 4 + n);
}

static uint8_t bcd2(int v)
{
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

static size_t cjt188_reply(uint64_t seed, const struct config *cfg, const struct cfg_meter *m,
                           const struct sim_meter_state *st, int64_t t, const uint8_t *f,
                           int abnormal, const uint8_t *addr, uint8_t *out)
{
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    uint8_t type = (uint8_t)p->meter_type;
    uint8_t c = f[9], l = f[10];
    if (c != CJT188_C_READ || l < 3)
        return 0;
    uint16_t di = (uint16_t)(f[11] | f[12] << 8);
    uint8_t ser = f[13];
    if (abnormal >= 0 || di != CJT188_DI_METERING) {
        uint8_t e[3] = {ser, (uint8_t)(abnormal >= 0 ? abnormal : 0x01), 0};
        return cjt188_build(out, true, type, addr, 0xC1, e, sizeof(e));
    }
    /* DI, SER, both volumes (0 m3 unless a point reads them), the clock
     * (ss mm hh DD MM YY CC, UTC), status 00 00. */
    uint8_t d[3 + CJT188_W_LEN] = {f[11], f[12], ser};
    cjt188_encode_volume(0, d + 3 + CJT188_W_FLOW);
    cjt188_encode_volume(0, d + 3 + CJT188_W_SETTLE_FLOW);
    for (size_t i = 0; i < p->n_points; i++)
        if (p->points[i].req_di == di)
            sim_item_bytes(seed, cfg, m, i, t, st, d + 3 + p->points[i].data_offset);
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    uint8_t *k = d + 3 + CJT188_W_TIME;
    k[0] = bcd2(tm.tm_sec % 60);
    k[1] = bcd2(tm.tm_min);
    k[2] = bcd2(tm.tm_hour);
    k[3] = bcd2(tm.tm_mday);
    k[4] = bcd2(tm.tm_mon + 1);
    k[5] = bcd2((tm.tm_year + 1900) % 100);
    k[6] = bcd2((tm.tm_year + 1900) / 100);
    return cjt188_build(out, true, type, addr, 0x81, d, sizeof(d));
}

size_t sim_cn_reply(enum bus_protocol proto, uint64_t seed, const struct config *cfg,
                    const struct cfg_meter *m, const struct sim_meter_state *st, int64_t t,
                    const uint8_t *f, size_t len, int abnormal, int flags, uint8_t *out)
{
    uint8_t addr[BCD_MAX_ADDR];
    memcpy(addr, m->addr, sizeof(addr));
    if (flags & SIM_CN_WRONG_ADDR)
        addr[0] ^= 0x01;
    size_t n;
    if (proto == PROTO_DLT645)
        n = len >= DLT645_OVERHEAD ? dlt645_reply(seed, cfg, m, st, t, f, abnormal, addr, out) : 0;
    else
        n = len >= CJT188_OVERHEAD + 3 ? cjt188_reply(seed, cfg, m, st, t, f, abnormal, addr, out)
                                       : 0;
    if (n && (flags & SIM_CN_BAD_SUM))
        out[n - 2] ^= 0x01;
    return n;
}
