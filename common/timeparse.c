/*
 * timeparse.c - the timestamp parser of timeparse.h, written as a cursor over
 * a length-bounded buffer (so an embedded NUL or a missing terminator cannot
 * be read past), its inverse and the local day boundaries.
 */
#include "common/timeparse.h"
#include "common/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL
/* Longest accepted text: "YYYY-MM-DDTHH:MM:SS.fffffffff+HH:MM" is 35 bytes. */
#define MAX_LEN 40
#define MAX_OFFSET_MIN (14 * 60)

struct cursor {
    const char *p, *end;
};

static bool at_end(const struct cursor *c)
{
    return c->p == c->end;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Takes ch if it is next. */
static bool take(struct cursor *c, char ch)
{
    if (at_end(c) || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* Exactly n digits. */
static bool digits(struct cursor *c, int n, int *ret)
{
    int v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *ret = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_unix_ms(struct cursor *c, int64_t *ret)
{
    int64_t v = 0;
    for (; !at_end(c); c->p++) {
        if (!is_digit(*c->p))
            return -EINVAL;
        v = v * 10 + (*c->p - '0');
        if (v > TIMEPARSE_MAX_MS)
            return -ERANGE;
    }
    if (v <= 0)
        return -ERANGE;
    *ret = v;
    return 0;
}

/* Z, +HH, +HHMM or +HH:MM (also '-'), in minutes east of UTC. */
static int parse_offset(struct cursor *c, int *ret_min)
{
    if (take(c, 'Z') || take(c, 'z')) {
        *ret_min = 0;
        return 0;
    }
    int sign = take(c, '+') ? 1 : take(c, '-') ? -1 : 0, h, m = 0;
    if (!sign || !digits(c, 2, &h))
        return -EINVAL;
    if (take(c, ':')) {
        if (!digits(c, 2, &m))
            return -EINVAL;
    } else if (!at_end(c) && !digits(c, 2, &m)) {
        return -EINVAL;
    }
    if (m > 59 || h * 60 + m > MAX_OFFSET_MIN)
        return -ERANGE;
    *ret_min = sign * (h * 60 + m);
    return 0;
}

/* The instant of a local wall-clock time: of the standard-time and the
 * daylight-time readings, those that read back as the same wall clock; the
 * earlier when both do (the hour DST ends repeats), none when the zone
 * skips it. */
static int local_to_utc(int y, int mo, int d, int h, int mi, int s, int64_t *ret_s)
{
    bool found = false;
    int64_t best = 0;
    for (int dst = 0; dst <= 1; dst++) {
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                        .tm_hour = h, .tm_min = mi, .tm_sec = s, .tm_isdst = dst};
        time_t t = mktime(&tm);
        struct tm back;
        if (!localtime_r(&t, &back))
            continue;
        if (back.tm_year != y - 1900 || back.tm_mon != mo - 1 || back.tm_mday != d ||
            back.tm_hour != h || back.tm_min != mi || back.tm_sec != s)
            continue;
        if (!found || (int64_t)t < best)
            best = (int64_t)t;
        found = true;
    }
    if (!found)
        return -ENOENT;
    *ret_s = best;
    return 0;
}

int timeparse_mem(const char *s, size_t len, int64_t *ret_ms)
{
    struct cursor c = {s, s + len};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, off_min = 0, r;
    bool zoned = false;

    if (!s || len == 0 || len > MAX_LEN)
        return -EINVAL;
    if (len < 5 || s[4] != '-') {
        int64_t v;
        r = parse_unix_ms(&c, &v);
        if (r == 0)
            *ret_ms = v;
        return r;
    }
    if (!digits(&c, 4, &y) || !take(&c, '-') || !digits(&c, 2, &mo) || !take(&c, '-') ||
        !digits(&c, 2, &d))
        return -EINVAL;
    if (!at_end(&c)) {
        if (!take(&c, 'T') && !take(&c, 't') && !take(&c, ' '))
            return -EINVAL;
        if (!digits(&c, 2, &h) || !take(&c, ':') || !digits(&c, 2, &mi))
            return -EINVAL;
        if (take(&c, ':')) {
            if (!digits(&c, 2, &sec))
                return -EINVAL;
            if (take(&c, '.')) {
                int nd = 0;
                for (; !at_end(&c) && is_digit(*c.p); c.p++, nd++)
                    if (nd < 3)
                        frac_ms = frac_ms * 10 + (*c.p - '0');
                if (nd == 0 || nd > 9)
                    return -EINVAL;
                for (; nd < 3; nd++)
                    frac_ms *= 10;
            }
        }
        if (!at_end(&c)) {
            r = parse_offset(&c, &off_min);
            if (r < 0)
                return r;
            if (!at_end(&c))
                return -EINVAL;
            zoned = true;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -ERANGE;

    int64_t t;
    if (zoned) {
        t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_min * 60LL;
    } else {
        /* Outside this span the instant is refused anyway; mktime need not
         * be trusted with it. */
        if (y < 1969)
            return -ERANGE;
        r = local_to_utc(y, mo, d, h, mi, sec, &t);
        if (r < 0)
            return r;
    }
    int64_t ms = t * 1000 + frac_ms;
    if (ms <= 0 || ms > TIMEPARSE_MAX_MS)
        return -ERANGE;
    *ret_ms = ms;
    return 0;
}

int timeparse(const char *s, int64_t *ret_ms)
{
    size_t len = 0;
    if (!s)
        return -EINVAL;
    while (len <= MAX_LEN && s[len])
        len++;
    return timeparse_mem(s, len, ret_ms);
}

int timeparse_relative(const char *s, int64_t now_ms, int64_t *ret_ms)
{
    static const struct {
        const char *word;
        int days;
    } words[] = {{"today", 0}, {"yesterday", -1}, {"tomorrow", 1}};
    for (size_t i = 0; s && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(s, words[i].word) != 0)
            continue;
        int64_t m = timeparse_midnight(now_ms);
        /* Step through midnights, not by 24 h: a DST day is 23 or 25 h. */
        for (int k = 0; k < words[i].days; k++)
            m = timeparse_next_midnight(m);
        for (int k = 0; k > words[i].days; k--)
            m = timeparse_midnight(m - 1);
        if (m <= 0 || m > TIMEPARSE_MAX_MS)
            return -ERANGE;
        *ret_ms = m;
        return 0;
    }
    return timeparse(s, ret_ms);
}

int timeparse_month(const char *s, int64_t *ret_from, int64_t *ret_to)
{
    struct cursor c = {s, s ? s + strlen(s) : s};
    int y, mo;
    if (!s || !digits(&c, 4, &y) || !take(&c, '-') || !digits(&c, 2, &mo) || !at_end(&c))
        return -EINVAL;
    if (mo < 1 || mo > 12 || y < 1970 || y > 9998)
        return -ERANGE;
    char a[32], b[32];
    snprintf(a, sizeof(a), "%04d-%02d-01", y, mo);
    snprintf(b, sizeof(b), "%04d-%02d-01", mo == 12 ? y + 1 : y, mo == 12 ? 1 : mo + 1);
    int64_t from, to;
    int r = timeparse(a, &from);
    if (r == 0)
        r = timeparse(b, &to);
    if (r < 0)
        return r;
    *ret_from = from;
    *ret_to = to;
    return 0;
}

const char *timeparse_why(int r)
{
    switch (r) {
    case -ERANGE:
        return "a field, the offset or the time out of range";
    case -ENOENT:
        return "that local time does not exist in the gateway's time zone";
    default:
        return "not a timestamp";
    }
}

char *timeparse_format(int64_t ms, bool with_ms, char *buf, size_t len)
{
    time_t s = (time_t)floor_div(ms, 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    char base[32];
    localtime_r(&s, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    if (with_ms)
        snprintf(buf, len, "%s.%03d%c%02ld:%02ld", base, frac, sign, off / 3600,
                 (off % 3600) / 60);
    else
        snprintf(buf, len, "%s%c%02ld:%02ld", base, sign, off / 3600, (off % 3600) / 60);
    return buf;
}

int64_t timeparse_midnight(int64_t ms)
{
    time_t s = (time_t)floor_div(ms, 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t m = (int64_t)mktime(&tm) * 1000;
    return m <= ms ? m : ms;
}

int64_t timeparse_offset_ms(int64_t ms)
{
    time_t s = (time_t)floor_div(ms, 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    return (int64_t)tm.tm_gmtoff * 1000;
}

int64_t timeparse_next_midnight(int64_t ms)
{
    time_t s = (time_t)floor_div(ms, 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    tm.tm_mday++;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t m = (int64_t)mktime(&tm) * 1000;
    return m > ms ? m : ms + MS_PER_DAY;
}
