/*
 * probe_tou.c - the tariff registers' cross-check of `parkgw probe`
 * (probe_tou.h).
 */
#include "cli/probe_tou.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/bcd.h"
#include "common/timeparse.h"
#include "engine/statement.h"
#include "protocols/decode.h"
#include "protocols/dlt645.h"
#include "storage/store.h"

const char *const probe_tou_band[PROBE_TOU_TARIFFS] = {"critical", "peak", "flat", "valley"};
static const char *const tariff_zh[PROBE_TOU_TARIFFS] = {"尖", "峰", "平", "谷"};

/* Reads item di of m formatted as the billing point pt, in billing units
 * (primary, as a bill counts). 0 and *ret, or a bus error / -EBADMSG. */
static int read_energy(struct bus *b, const struct cfg_meter *m, const struct cfg_point *pt,
                       uint32_t di, double *ret)
{
    uint16_t out[BCD_MAX_BYTES];
    struct plan_req q = {
        .fc = PLAN_FC_DLT645, .count = (uint16_t)pt->fmt.bytes, .di = di, .exact = true};
    int r = bus_read_meter(b, m, &q, out);
    if (r < 0)
        return r;
    return decode_point(pt, m->pt_ratio, m->ct_ratio, out, ret) < 0 ? -EBADMSG : 0;
}

/* The settlement instant at or before now_ms from 04000B01; -1 when the
 * meter does not say. */
static int64_t settlement_at(struct bus *b, const struct cfg_meter *m, int64_t now_ms)
{
    uint16_t out[BCD_MAX_BYTES];
    struct plan_req q = {
        .fc = PLAN_FC_DLT645, .count = 2, .di = DLT645_DI_SETTLEMENT_DAY, .exact = true};
    struct bcd_fmt f;
    struct bcd_time t;
    if (bus_read_meter(b, m, &q, out) < 0 || bcd_fmt_parse("DDhh", &f) < 0)
        return -1;
    uint8_t ddhh[2] = {(uint8_t)out[0], (uint8_t)out[1]};
    if (bcd_decode_time(ddhh, &f, &t) < 0)
        return -1;
    return dlt645_settlement_instant(t.day, t.hour, now_ms, 1);
}

/* parkgw's split of [from, to) for m: the statement's row, or NULL with
 * the reason in why. */
static struct statement *split(const struct config *cfg, const struct cfg_meter *m, int64_t from,
                               int64_t to, const struct statement_row **ret_row, char *why,
                               size_t len)
{
    struct store *st = NULL;
    struct statement *s = NULL;
    *ret_row = NULL;
    if (store_open(cfg->storage_path, true, &st, why, len) < 0)
        return NULL;
    struct statement_request req = {.from = from, .to = to, .enterprise = m->enterprise->id,
                                    .has_utility = true, .utility = m->utility};
    if (statement_build(cfg, st, &req, &s, why, len) == 0)
        for (size_t i = 0; i < s->n_rows; i++)
            if (s->rows[i].m == m)
                *ret_row = &s->rows[i];
    store_close(st);
    return s;
}

int probe_tou_print(const struct config *cfg, const struct cfg_meter *m, struct bus *b,
                    int64_t now_ms)
{
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    int bp = profile_billing_point(prof);
    if (prof->protocol != PROTO_DLT645 || bp < 0)
        return 0;
    const struct cfg_point *pt = &prof->points[bp];
    uint32_t base = pt->di;
    if ((base & 0xFF00FFFFu) != 0 || ((base >> 16) & 0xFF) == 0)
        return 0; /* not a total energy: no tariff registers */
    int64_t at = settlement_at(b, m, now_ms);
    char t0[40], t1[40], why[256] = "";
    if (at < 0) {
        printf("\ntariff registers: the meter does not give its settlement day (04000B01)\n");
        return ferror(stdout) ? -EIO : 0;
    }
    timeparse_format(at, false, t0, sizeof(t0));
    timeparse_format(now_ms, false, t1, sizeof(t1));
    const struct statement_row *row = NULL;
    struct statement *s = split(cfg, m, at, now_ms, &row, why, sizeof(why));
    bool banded = row && row->r.n_bands > 0;
    printf("\ntariff registers since the settlement instant %s (the meter's) and parkgw's "
           "time-of-use split of %s .. %s:\n",
           t0, t0, t1);
    printf("%-16s %-9s %14s %14s %12s %12s %12s\n", "tariff", "di", "now", "at settlement",
           "meter", "parkgw", "difference");
    for (int t = 1; t <= PROBE_TOU_TARIFFS; t++) {
        uint32_t di = base | (uint32_t)t << 8;
        double now_v = 0, then_v = 0, pk = 0;
        bool ok = read_energy(b, m, pt, di, &now_v) == 0 &&
                  read_energy(b, m, pt, di | 1, &then_v) == 0;
        if (banded)
            for (int k = 0; k < STATEMENT_COLUMN_BANDS; k++)
                if (!strcmp(statement_column_band[k], probe_tou_band[t - 1]))
                    pk = statement_row_band(row, k);
        char name[32], c1[24] = "-", c2[24] = "-", c3[24] = "-", c4[24] = "-", c5[24] = "-";
        snprintf(name, sizeof(name), "%d %s %s", t, tariff_zh[t - 1], probe_tou_band[t - 1]);
        if (ok) {
            snprintf(c1, sizeof(c1), "%.2f", now_v);
            snprintf(c2, sizeof(c2), "%.2f", then_v);
            snprintf(c3, sizeof(c3), "%.2f", now_v - then_v);
        }
        if (banded)
            snprintf(c4, sizeof(c4), "%.2f", pk);
        if (ok && banded)
            snprintf(c5, sizeof(c5), "%+.2f", pk - (now_v - then_v));
        /* "尖" is 3 bytes, one column wide in a terminal: pad by bytes + 2 */
        printf("%-18s %08X %14s %14s %12s %12s %12s\n", name, di, c1, c2, c3, c4, c5);
    }
    if (!row)
        printf("parkgw: no statement (%s)\n", why[0] ? why : "no stored readings");
    else if (!banded)
        printf("parkgw: the %s tariff in force has no time-of-use bands\n",
               utility_name(m->utility));
    else
        printf("parkgw: coverage %.1f %% of the period%s\n", row->r.coverage_pct,
               row->r.coverage_pct < 99.95 ? " (readings missing: the split is partial)" : "");
    statement_free(s);
    return ferror(stdout) ? -EIO : 0;
}
