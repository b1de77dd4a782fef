/*
 * settle.h - DL/T 645 settlement-day readings: a meter keeps the reading of
 * each item at its monthly settlement instant (DI0 = 01 for the latest), so
 * when the gateway was down across that instant the poller reads it and
 * stores it at the instant, and the month's bill starts from the meter's
 * own reading instead of the first poll after the outage. docs/DLT645.md.
 */
#pragma once
#include <stdint.h>

#include "config/config.h"
#include "protocols/bus.h"

/* Whether profile p's meters read frozen readings back after an outage. */
static inline bool settle_wanted(const struct cfg_profile *p)
{
    return p->settlement || p->daily_frozen > 0;
}

/*
 * Reads meter m's settlement day (04000B01) and the latest settlement-day
 * reading of its profile's billing point (its di with DI0 = 01) on bus b.
 * 0 with *ret_ts (the settlement instant at or before now_ms, local time)
 * and *ret_value (in the form the poller stores the billing counter: the
 * dial reading when the point has a ratio, else the primary value), or a
 * bus_read error, or -EBADMSG for a settlement day outside 1-28 / 0-23 or
 * a reading that is not BCD. The profile must have settlement set.
 */
int settle_read(struct bus *b, const struct cfg_meter *m, const struct cfg_profile *p,
                int64_t now_ms, int64_t *ret_ts, double *ret_value);

/*
 * Reads meter m's nn-th last daily freeze (nn 1..62) of its profile's
 * billing point: the freeze's time (050600NN, YYMMDDhhmm, local time) into
 * *ret_ts (Unix ms) and the frozen total (0506xxNN, the block's first
 * value) into *ret_value, in the form settle_read gives. 0, a bus_read
 * error (an abnormal reply when the meter keeps fewer freezes), -EBADMSG
 * for a time or value that is not BCD, -EINVAL when the billing point is
 * not a total energy with daily freezes (dlt645_daily_item).
 */
int settle_read_daily(struct bus *b, const struct cfg_meter *m, const struct cfg_profile *p,
                      int nn, int64_t *ret_ts, double *ret_value);
