/*
 * timeparse.h - the one parser for every timestamp a person types (the
 * commands' --from/--to/--at, the ts column of `parkgw import`), its inverse
 * for output, and local day boundaries. Local time is the process's TZ: the
 * commands set it from the config's gateway.timezone (cli_load_config)
 * before they parse or format anything.
 *
 * Accepted forms (nothing else: no leading or trailing blanks, no signs on
 * Unix time, no hex):
 *   1793462400000                  Unix time in milliseconds, digits only
 *   2026-11-01                     local midnight
 *   2026-11-01T08:30[:15[.250]]    local time ('T', 't' or one space)
 *   ...the same with Z, +08:00, +0800 or +08 after the time: that offset
 *   from UTC instead of the local zone (at most 14:00 either way)
 * Seconds are 00..59 (no leap second), a fraction has 1 to 9 digits and is
 * cut to the millisecond below. A local time the zone skips (the hour lost
 * when DST starts) is refused; one it repeats (DST ends) is the earlier
 * instant. The result must lie after the Unix epoch and before
 * 9999-12-31T00:00Z, so that its local text in any zone has a 4-digit year
 * (timeparse_format's output always parses back).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The latest instant accepted: 9999-12-30T23:59:59.999Z. */
#define TIMEPARSE_MAX_MS 253402214399999LL

/* The forms, for error messages ("bad time 'x': why; use FORMS"). */
#define TIMEPARSE_FORMS                                                                    \
    "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]] in the gateway's time zone, the same with " \
    "Z or an offset (+08:00, +0800), or Unix milliseconds"

/* Parses the len bytes at s (a NUL among them is refused). 0 and *ret_ms
 * (Unix ms), or -EINVAL (not one of the forms), -ERANGE (a field, the offset
 * or the instant out of range), -ENOENT (a local time the zone skips);
 * *ret_ms is left untouched on failure. */
int timeparse_mem(const char *s, size_t len, int64_t *ret_ms);
/* The same for a NUL-terminated string. */
int timeparse(const char *s, int64_t *ret_ms);
/* The forms a command line takes besides TIMEPARSE_FORMS. */
#define TIMEPARSE_WORDS "today, yesterday or tomorrow (local midnight)"

/* As timeparse, and also the words "today", "yesterday", "tomorrow": the
 * local midnight of the day that holds now_ms, the one before, the one after.
 * For command-line options (not for data files). */
int timeparse_relative(const char *s, int64_t now_ms, int64_t *ret_ms);

/* A calendar month "YYYY-MM" (month 01..12): its first local midnight into
 * *ret_from and the next month's into *ret_to. 0, or -EINVAL / -ERANGE
 * with both untouched. */
int timeparse_month(const char *s, int64_t *ret_from, int64_t *ret_to);

/* Why timeparse refused: a short phrase for its return value r. */
const char *timeparse_why(int r);

/* Formats ms as ISO 8601 local time with offset, "2026-11-01T00:00:00+08:00",
 * with ".mmm" before the offset when with_ms. Returns buf (64 bytes hold any
 * result). */
char *timeparse_format(int64_t ms, bool with_ms, char *buf, size_t len);
/* The local midnight at or before ms (DST-aware). */
int64_t timeparse_midnight(int64_t ms);
/* The next local midnight strictly after ms (a zone whose midnight was
 * skipped still moves forward by a day). */
int64_t timeparse_next_midnight(int64_t ms);
/* The local zone's UTC offset in force at ms, in ms (+08:00 = 28800000). */
int64_t timeparse_offset_ms(int64_t ms);
