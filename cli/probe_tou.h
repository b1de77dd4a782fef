/*
 * probe_tou.h - `parkgw probe` of a DL/T 645 meter: the meter's own
 * per-tariff registers of its billing energy since its last settlement
 * instant, next to parkgw's time-of-use split of the same period from the
 * store (docs/CLI.md "probe", docs/DLT645.md).
 */
#pragma once
#include <stdint.h>

#include "config/config.h"
#include "protocols/bus.h"

/* The tariffs a DL/T 645 meter counts apart (Table A.1: DI1 = 01..04) and
 * the tariff bands they are by convention: 1 尖 critical, 2 峰 peak, 3 平
 * flat, 4 谷 valley. */
#define PROBE_TOU_TARIFFS 4
extern const char *const probe_tou_band[PROBE_TOU_TARIFFS];

/*
 * Prints the cross-check for meter m (a DL/T 645 meter whose billing point
 * is a total energy 00xx0000) read on bus b at now_ms: per tariff t its
 * registers 00xx0t00 now and 00xx0t01 at the last settlement instant
 * (04000B01), their difference, and the consumption in band
 * probe_tou_band[t - 1] of a statement of [that instant, now_ms) from the
 * store. Items the meter lacks print "-"; a store that cannot be read
 * prints why. Nothing for another kind of meter. Returns 0, or -EIO when
 * stdout fails.
 */
int probe_tou_print(const struct config *cfg, const struct cfg_meter *m, struct bus *b,
                    int64_t now_ms);
