/*
 * query.h - the time-series export of `parkgw query`: one meter's points
 * for a period, raw or in local-time buckets, as CSV or JSON (docs/CLI.md).
 * Counter buckets carry the consumption of engine/billing.c's rules.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

struct store;

/*
 * Writes the export to out. target is "ENTERPRISE/METER" or
 * "ENTERPRISE/METER/POINT"; step_s 0 = raw, else 60, 900, 3600 or 86400
 * (local-time buckets). json selects JSON over CSV. 0, -EINVAL (message in
 * err, nothing written), -EIO (message in err; output may be partial, the
 * caller exits 2).
 */
int query_write(FILE *out, const struct config *cfg, struct store *st, const char *target,
                int64_t from, int64_t to, int step_s, bool json, char *err, size_t errlen);
/* The same computed from raw samples only (the reference the rollup path
 * must match; tests). */
int query_write_raw(FILE *out, const struct config *cfg, struct store *st, const char *target,
                    int64_t from, int64_t to, int step_s, bool json, char *err, size_t errlen);
