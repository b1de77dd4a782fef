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
