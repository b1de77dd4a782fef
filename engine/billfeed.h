/*
 * billfeed.h - reads one billing counter's stored readings into a billing
 * accumulator (engine/billing.h) for a period: the read strategy that lets a
 * month's statement come from the rollups instead of every raw sample.
 *
 * It lives in engine/, beside the accumulator, because which rollup buckets
 * may stand in for their raw samples is a consequence of the accumulator's
 * rules (no drop, no spike, no uncovered gap inside the bucket); it reads
 * only through storage's public API (store_scan, store_seek_back,
 * store_rollup_scan), never SQL, so storage stays below engine. Both the
 * statement (engine/statement.c) and `query`'s counter buckets use it.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "engine/billing.h"

struct store;

/* Readings are looked for this far either side of a period: an interval
 * straddling an edge is shared between the two periods; a meter silent
 * for longer than this around an edge loses that interval. */
#define BILLFEED_MARGIN_MS (7 * 86400000LL)

/* Fills p for point pt of meter m over [from, to): the register's wrap
 * modulus, max_rate, and coverage up to 3 poll intervals of the meter.
 * Leaves p's other fields (tariff, on_delta, ud) as they are. */
void billfeed_params(struct bill_params *p, const struct cfg_point *pt,
                     const struct cfg_meter *m, int64_t from, int64_t to);

/*
 * Feeds the readings of one billing counter (store point id) for p->from..
 * p->to into acc, which was created with the same p. raw_only: every raw
 * sample from BILLFEED_MARGIN_MS before to as long after the period, the
 * reference. Otherwise raw samples only around the period's edges (16
 * readings before 'from', up to the first 15-minute boundary; from the last
 * boundary to 16 readings after 'to') and inside rollup buckets whose pair
 * flags say something happened; every other bucket contributes its first and
 * last readings, at the coarsest level (1d, 1h, 15m, up to max_level) whose
 * buckets never straddle a band boundary of p->tariff. The series fed is
 * then a subset of the raw one on which the accumulator takes the same
 * decisions (storage/rollup.h), so the result equals the raw one up to
 * floating-point summation order. 0 or -EIO (store_errmsg tells).
 */
int billfeed_counter(struct store *st, uint32_t point, const struct bill_params *p,
                     bool raw_only, int max_level, struct bill_acc *acc);

/* The coarsest rollup level (storage/rollup.h) whose buckets lie within one
 * band of t: 1d without bands, 1h when every band boundary is a whole hour,
 * 15m on quarter hours, else -1 (raw only). */
int billfeed_level(const struct cfg_tariff *t);
