/*
 * timeutil.h - integer arithmetic for time buckets: division and remainder
 * rounded toward minus infinity, so that a timestamp before 1970 (or a
 * negative offset) falls in the bucket that contains it, not the next one.
 * Used by the poll schedule, chunk periods, rollups, billing and the
 * simulator. Inline: they sit on the per-sample paths.
 */
#pragma once
#include <stdint.h>

/* floor(a / b) for b != 0 (C's '/' truncates toward zero). */
static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

/* a - floor_div(a, b) * b: in [0, b) for b > 0, in (b, 0] for b < 0. */
static inline int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}
