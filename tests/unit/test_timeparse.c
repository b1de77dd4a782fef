/*
 * test_timeparse.c - common/timeparse.c, the one parser of the timestamps a
 * person types (import, query, bill): every accepted form with its instant
 * worked out by hand, every refusal the issue lists (offsets out of range,
 * second 60, hex, trailing garbage, an embedded NUL, Unix time 0 and
 * negative, out-of-range fields), DST gaps and folds (Europe/Berlin), the
 * formatter's round trip, and the local day boundaries.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeparse.h"
#include "tests/unit/check.h"

#define S 1000LL
#define H 3600000LL
/* 2026-11-01T00:00:00Z: days 1970-01-01..2026-11-01 = 20758 -> 20758 x 86400 s */
#define NOV1_UTC 1793491200000LL

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* timeparse's result, or -1 with the error in *ret_err. */
static int64_t parse(const char *s, int *ret_err)
{
    int64_t ms = -1;
    *ret_err = timeparse(s, &ms);
    return ms;
}

#define CHECK_PARSE(s, want)                                                               \
    do {                                                                                   \
        int e_;                                                                            \
        int64_t got_ = parse(s, &e_);                                                      \
        CHECK_INT(e_, 0);                                                                  \
        CHECK_INT(got_, want);                                                             \
    } while (0)

#define CHECK_REFUSED(s, err)                                                              \
    do {                                                                                   \
        int64_t ms_ = 12345;                                                               \
        CHECK_INT(timeparse(s, &ms_), err);                                                \
        CHECK_INT(ms_, 12345); /* untouched */                                             \
    } while (0)

/* Asia/Shanghai: UTC+8, no DST since 1991. */
static void test_forms(void)
{
    set_tz("Asia/Shanghai");
    int64_t local_nov1 = NOV1_UTC - 8 * H;
    CHECK_PARSE("2026-11-01", local_nov1);
    CHECK_PARSE("2026-11-01T08:30", local_nov1 + 8 * H + 30 * 60 * S);
    CHECK_PARSE("2026-11-01t08:30", local_nov1 + 8 * H + 30 * 60 * S);
    CHECK_PARSE("2026-11-01 08:30", local_nov1 + 8 * H + 30 * 60 * S);
    CHECK_PARSE("2026-11-01T08:30:15", local_nov1 + 8 * H + 30 * 60 * S + 15 * S);
    CHECK_PARSE("2026-11-01T00:00:00.250", local_nov1 + 250);
    CHECK_PARSE("2026-11-01T00:00:00.5", local_nov1 + 500);
    CHECK_PARSE("2026-11-01T00:00:00.25", local_nov1 + 250);
    /* Beyond milliseconds the fraction is cut, never rounded up. */
    CHECK_PARSE("2026-11-01T00:00:00.999999999", local_nov1 + 999);

    CHECK_PARSE("2026-11-01T00:00:00Z", NOV1_UTC);
    CHECK_PARSE("2026-11-01T00:00Z", NOV1_UTC);
    CHECK_PARSE("2026-11-01T00:00:00z", NOV1_UTC);
    CHECK_PARSE("2026-11-01T08:00:00+08:00", NOV1_UTC);
    CHECK_PARSE("2026-11-01T08:00:00+0800", NOV1_UTC);
    CHECK_PARSE("2026-11-01T08:00:00+08", NOV1_UTC);
    CHECK_PARSE("2026-10-31T19:30:00-04:30", NOV1_UTC);
    CHECK_PARSE("2026-11-01T00:00:00-00:00", NOV1_UTC);
    CHECK_PARSE("2026-11-01T14:00:00+14:00", NOV1_UTC);
    CHECK_PARSE("2026-10-31T10:00:00-14:00", NOV1_UTC);
    CHECK_PARSE("2026-11-01T01:00:00.250+09:00", local_nov1 + 250);

    CHECK_PARSE("1793491200000", NOV1_UTC);
    CHECK_PARSE("1", 1);
    CHECK_PARSE("0001793491200000", NOV1_UTC); /* leading zeros: still digits */
    CHECK_PARSE("1970-01-01T00:00:00.001Z", 1);
    CHECK_PARSE("9999-12-30T23:59:59.999Z", TIMEPARSE_MAX_MS);
    CHECK_PARSE("9999-12-31T13:59:59.999+14:00", TIMEPARSE_MAX_MS);
    CHECK_PARSE("253402214399999", TIMEPARSE_MAX_MS);
    /* Leap days. */
    CHECK_PARSE("2024-02-29T00:00Z", 1709164800000LL);
    CHECK_PARSE("2000-02-29T00:00Z", 951782400000LL);
}

static void test_refusals(void)
{
    set_tz("Asia/Shanghai");
    /* Offsets out of range. */
    CHECK_REFUSED("2026-11-01T00:00:00+99:99", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:00+25:00", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:00+14:01", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:00-15:00", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:00+08:60", -ERANGE);
    /* Malformed offsets. */
    CHECK_REFUSED("2026-11-01T00:00:00+8:00", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00+08:0", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00+080", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00+08000", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00+", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00ZZ", -EINVAL);
    CHECK_REFUSED("2026-11-01T00:00:00 +08:00", -EINVAL);
    CHECK_REFUSED("2026-11-01Z", -EINVAL);
    CHECK_REFUSED("2026-11-01+08:00", -EINVAL);
    /* Fields out of range. */
    CHECK_REFUSED("2026-11-01T00:00:60+08:00", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:60", -ERANGE);
    CHECK_REFUSED("2026-11-01T00:00:99Z", -ERANGE);
    CHECK_REFUSED("2026-11-01T24:00", -ERANGE);
    CHECK_REFUSED("2026-11-01T23:60", -ERANGE);
    CHECK_REFUSED("2026-13-01", -ERANGE);
    CHECK_REFUSED("2026-00-01", -ERANGE);
    CHECK_REFUSED("2026-11-00", -ERANGE);
    CHECK_REFUSED("2026-11-31", -ERANGE);
    CHECK_REFUSED("2026-02-29", -ERANGE);
    CHECK_REFUSED("1900-02-29T00:00Z", -ERANGE);
    /* Shapes that are not one of the forms. */
    CHECK_REFUSED("", -EINVAL);
    CHECK_REFUSED("2026-11-1", -EINVAL);
    CHECK_REFUSED("26-11-01", -EINVAL);
    CHECK_REFUSED("2026/11/01", -EINVAL);
    CHECK_REFUSED("2026-11-01x", -EINVAL);
    CHECK_REFUSED("2026-11-01T", -EINVAL);
    CHECK_REFUSED("2026-11-01T8:30", -EINVAL);
    CHECK_REFUSED("2026-11-01T08", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30:1", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30:00.", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30:00.1234567890", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30:00,5", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30.5", -EINVAL);
    CHECK_REFUSED(" 2026-11-01", -EINVAL);
    CHECK_REFUSED("2026-11-01 ", -EINVAL);
    CHECK_REFUSED("2026-11-01\n", -EINVAL);
    CHECK_REFUSED("2026-11-01T08:30:00+08:00 trailing", -EINVAL);
    /* Unix time: digits only, after the epoch, before year 10000. */
    CHECK_REFUSED("0", -ERANGE);
    CHECK_REFUSED("000", -ERANGE);
    CHECK_REFUSED("-1", -EINVAL);
    CHECK_REFUSED("-1793491200000", -EINVAL);
    CHECK_REFUSED("+1793491200000", -EINVAL);
    CHECK_REFUSED("0x1a2b", -EINVAL);
    CHECK_REFUSED("0X10", -EINVAL);
    CHECK_REFUSED("1e12", -EINVAL);
    CHECK_REFUSED("1793491200000.5", -EINVAL);
    CHECK_REFUSED(" 1793491200000", -EINVAL);
    CHECK_REFUSED("1793491200000 ", -EINVAL);
    CHECK_REFUSED("253402214400000", -ERANGE);
    CHECK_REFUSED("9999-12-31T00:00:00Z", -ERANGE);
    CHECK_REFUSED("9999-12-31T23:59:59", -ERANGE); /* local, UTC+8 */
    CHECK_REFUSED("99999999999999999999999999", -ERANGE);
    CHECK_REFUSED("9999999999999999", -ERANGE);
    /* Instants at or before the epoch. */
    CHECK_REFUSED("1970-01-01T00:00:00Z", -ERANGE);
    CHECK_REFUSED("1970-01-01T07:59:59+08:00", -ERANGE);
    CHECK_REFUSED("1970-01-01", -ERANGE); /* local midnight in UTC+8 */
    CHECK_REFUSED("1969-12-31T23:59:59Z", -ERANGE);
    CHECK_REFUSED("0000-01-01T00:00Z", -ERANGE);
    CHECK_REFUSED("1000-06-15", -ERANGE);

    /* An embedded NUL: the bytes after it are not ignored. */
    int64_t ms = 7;
    static const char nul_date[] = "2026-11-01\0T08:30";
    CHECK_INT(timeparse_mem(nul_date, sizeof(nul_date) - 1, &ms), -EINVAL);
    static const char nul_ms[] = "1793491200000\0";
    CHECK_INT(timeparse_mem(nul_ms, sizeof(nul_ms) - 1, &ms), -EINVAL);
    CHECK_INT(ms, 7);
    /* Length-bounded: no terminator needed, nothing read past len. */
    char *heap = malloc(10);
    memcpy(heap, "2026-11-01", 10);
    CHECK_INT(timeparse_mem(heap, 10, &ms), 0);
    CHECK_INT(ms, NOV1_UTC - 8 * H);
    CHECK_INT(timeparse_mem(heap, 7, &ms), -EINVAL);
    free(heap);
    CHECK_INT(timeparse(NULL, &ms), -EINVAL);

    CHECK_CONTAINS(timeparse_why(-ERANGE), "out of range");
    CHECK_CONTAINS(timeparse_why(-ENOENT), "does not exist");
    CHECK_CONTAINS(timeparse_why(-EINVAL), "not a timestamp");
}

/* Europe/Berlin: CET +01:00, CEST +02:00 from 2026-03-29 02:00 to
 * 2026-10-25 03:00 local. */
static void test_dst(void)
{
    set_tz("Europe/Berlin");
    int e;
    /* 2026-03-29T01:00Z is when 02:00 CET jumps to 03:00 CEST. */
    int64_t spring = parse("2026-03-29T01:00:00Z", &e);
    CHECK_PARSE("2026-03-29T01:59:59", spring - 1 * S);
    CHECK_PARSE("2026-03-29T03:00", spring);
    CHECK_REFUSED("2026-03-29T02:00", -ENOENT);
    CHECK_REFUSED("2026-03-29T02:30", -ENOENT);
    CHECK_REFUSED("2026-03-29T02:59:59", -ENOENT);
    /* An offset names the instant; the zone's gap does not matter. */
    CHECK_PARSE("2026-03-29T02:30:00+01:00", spring + 30 * 60 * S);
    /* 02:00-03:00 on 2026-10-25 happens twice: the earlier (CEST) wins. */
    int64_t fall = parse("2026-10-25T01:00:00Z", &e); /* 03:00 CEST -> 02:00 CET */
    CHECK_PARSE("2026-10-25T02:30", fall - 30 * 60 * S);
    CHECK_PARSE("2026-10-25T02:30+02:00", fall - 30 * 60 * S);
    CHECK_PARSE("2026-10-25T02:30+01:00", fall + 30 * 60 * S);
    CHECK_PARSE("2026-10-25T03:00", fall + H);
    CHECK_PARSE("2026-07-01", parse("2026-06-30T22:00Z", &e));
    CHECK_PARSE("2026-01-01", parse("2025-12-31T23:00Z", &e));

    /* Local days are 23 and 25 hours long on those dates. */
    int64_t d29 = parse("2026-03-29", &e), d25 = parse("2026-10-25", &e);
    CHECK_INT(timeparse_next_midnight(d29 + 12 * H) - d29, 23 * H);
    CHECK_INT(timeparse_next_midnight(d25 + 12 * H) - d25, 25 * H);
    CHECK_INT(timeparse_midnight(d25 + 24 * H + 30 * 60 * S), d25); /* 23:30 local */
    char buf[64];
    CHECK_STR(timeparse_format(parse("2026-07-01", &e), false, buf, sizeof(buf)),
              "2026-07-01T00:00:00+02:00");
    CHECK_STR(timeparse_format(fall + 30 * 60 * S, true, buf, sizeof(buf)),
              "2026-10-25T02:30:00.000+01:00");
}

static void test_format_round_trip(void)
{
    set_tz("Asia/Shanghai");
    char buf[64];
    int e;
    CHECK_STR(timeparse_format(NOV1_UTC - 8 * H, false, buf, sizeof(buf)),
              "2026-11-01T00:00:00+08:00");
    CHECK_STR(timeparse_format(NOV1_UTC + 250, true, buf, sizeof(buf)),
              "2026-11-01T08:00:00.250+08:00");
    /* Whatever query prints, import reads back as the same instant, in any
     * zone, with and without milliseconds. */
    const char *zones[] = {"Asia/Shanghai", "Europe/Berlin", "America/St_Johns", "UTC"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t z = 0; z < 4; z++) {
        set_tz(zones[z]);
        int bad = 0;
        /* Both ends of the range, then random instants. */
        for (int i = -2; i < 20000; i++) {
            int64_t ms = i == -2   ? 1
                         : i == -1 ? TIMEPARSE_MAX_MS
                                   : 1 + (int64_t)(check_rand64(&seed) % (uint64_t)TIMEPARSE_MAX_MS);
            int64_t back = -1;
            if (timeparse(timeparse_format(ms, true, buf, sizeof(buf)), &back) != 0 ||
                back != ms)
                bad++;
            int64_t sec = ms - ms % 1000; /* 0 is refused: not an instant to type */
            if (sec > 0 && (timeparse(timeparse_format(ms, false, buf, sizeof(buf)), &back) != 0 ||
                            back != sec))
                bad++;
        }
        CHECK_INT(bad, 0);
    }
    set_tz("Asia/Shanghai");
    int64_t noon = parse("2026-11-01T12:00", &e);
    CHECK_INT(timeparse_midnight(noon), parse("2026-11-01", &e));
    CHECK_INT(timeparse_midnight(parse("2026-11-01", &e)), parse("2026-11-01", &e));
    CHECK_INT(timeparse_next_midnight(noon), parse("2026-11-02", &e));
    CHECK_INT(timeparse_next_midnight(parse("2026-11-30", &e)), parse("2026-12-01", &e));
}

/* today / yesterday / tomorrow: local midnights around 'now' (DST days
 * included); everything else as timeparse. --month YYYY-MM: the month's
 * first local midnight and the next month's. */
static void test_words_and_months(void)
{
    int e;
    int64_t f = 0, t = 0;
    set_tz("Asia/Shanghai");
    int64_t now = parse("2026-11-15T09:30", &e), got = 0;
    CHECK_INT(timeparse_relative("today", now, &got), 0);
    CHECK_INT(got, parse("2026-11-15", &e));
    CHECK_INT(timeparse_relative("yesterday", now, &got), 0);
    CHECK_INT(got, parse("2026-11-14", &e));
    CHECK_INT(timeparse_relative("tomorrow", now, &got), 0);
    CHECK_INT(got, parse("2026-11-16", &e));
    /* just before midnight is still the same day */
    CHECK_INT(timeparse_relative("today", parse("2026-11-15T23:59:59.999", &e), &got), 0);
    CHECK_INT(got, parse("2026-11-15", &e));
    CHECK_INT(timeparse_relative("2026-11-01T08:00", now, &got), 0);
    CHECK_INT(got, parse("2026-11-01T08:00", &e));
    got = 7;
    CHECK_INT(timeparse_relative("Today", now, &got), -EINVAL);
    CHECK_INT(timeparse_relative("today ", now, &got), -EINVAL);
    CHECK_INT(timeparse_relative("now", now, &got), -EINVAL);
    CHECK_INT(got, 7);
    /* The 23-hour day: yesterday of 2026-03-30 in Berlin is 23 h earlier. */
    set_tz("Europe/Berlin");
    now = parse("2026-03-30T10:00", &e);
    CHECK_INT(timeparse_relative("yesterday", now, &got), 0);
    CHECK_INT(got, parse("2026-03-29", &e));
    CHECK_INT(parse("2026-03-30", &e) - got, 23 * H);

    set_tz("Asia/Shanghai");
    CHECK_INT(timeparse_month("2026-11", &f, &t), 0);
    CHECK_INT(f, NOV1_UTC - 8 * H);
    CHECK_INT(t, parse("2026-12-01", &e));
    CHECK_INT(timeparse_month("2026-12", &f, &t), 0);
    CHECK_INT(t, parse("2027-01-01", &e));
    CHECK_INT(timeparse_month("2028-02", &f, &t), 0);
    CHECK_INT(t - f, 29 * 24 * H); /* a leap February */
    f = t = 5;
    CHECK_INT(timeparse_month("2026-13", &f, &t), -ERANGE);
    CHECK_INT(timeparse_month("2026-00", &f, &t), -ERANGE);
    CHECK_INT(timeparse_month("2026-1", &f, &t), -EINVAL);
    CHECK_INT(timeparse_month("2026-11-01", &f, &t), -EINVAL);
    CHECK_INT(timeparse_month("26-11", &f, &t), -EINVAL);
    CHECK_INT(timeparse_month("", &f, &t), -EINVAL);
    CHECK_INT(timeparse_month(NULL, &f, &t), -EINVAL);
    CHECK_INT(f, 5);
    CHECK_INT(t, 5);
}

int main(void)
{
    test_words_and_months();
    test_forms();
    test_refusals();
    test_dst();
    test_format_round_trip();
    return check_done();
}
