/*
 * bcd.c - BCD formats of DL/T 645-2007 and CJ/T 188-2004: format text parsed
 * into a byte count and decimals (numbers) or a field list (times); values
 * decoded from and encoded to the wire's lowest-byte-first order.
 */
#include "common/bcd.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int bcd_byte(uint8_t b)
{
    int hi = b >> 4, lo = b & 0x0F;
    if (hi > 9 || lo > 9)
        return -1;
    return hi * 10 + lo;
}

static uint8_t to_bcd(int v)
{
    return (uint8_t)((v / 10) << 4 | (v % 10));
}

/* Time field letter of a two-letter pair, or 0. */
static char time_field(char a, char b)
{
    static const char *const pairs[] = {"YY", "MM", "DD", "hh", "mm", "ss", "WW"};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (a == pairs[i][0] && b == pairs[i][1])
            return pairs[i][0];
    return 0;
}

static int parse_time(const char *text, struct bcd_fmt *f)
{
    size_t n = strlen(text);
    if (n % 2 || n == 0 || n / 2 > BCD_MAX_BYTES)
        return -EINVAL;
    for (size_t i = 0; i < n; i += 2) {
        char c = time_field(text[i], text[i + 1]);
        if (!c || memchr(f->fields, c, i / 2))
            return -EINVAL;
        f->fields[i / 2] = c;
    }
    f->fields[n / 2] = '\0';
    f->bytes = (uint8_t)(n / 2);
    f->time = true;
    return 0;
}

int bcd_fmt_parse(const char *text, struct bcd_fmt *ret)
{
    struct bcd_fmt f = {0};
    if (!text)
        return -EINVAL;
    if (text[0] != 'X' && text[0] != 'N' && text[0] != '.') {
        int r = parse_time(text, &f);
        if (r < 0)
            return r;
        *ret = f;
        return 0;
    }
    int digits = 0, decimals = 0;
    bool point = false;
    for (const char *s = text; *s; s++) {
        if (*s == '.') {
            if (point)
                return -EINVAL;
            point = true;
        } else if (*s == 'X' || *s == 'N') {
            digits++;
            if (point)
                decimals++;
        } else {
            return -EINVAL;
        }
    }
    if (digits < 2 || digits > 2 * BCD_MAX_BYTES || digits % 2 || (point && !decimals) ||
        decimals == digits)
        return -EINVAL;
    f.bytes = (uint8_t)(digits / 2);
    f.decimals = (uint8_t)decimals;
    *ret = f;
    return 0;
}

int bcd_decode_num(const uint8_t *p, const struct bcd_fmt *f, bool is_signed, double *ret)
{
    int64_t acc = 0;
    bool neg = false;
    if (f->time || f->bytes < 1 || f->bytes > BCD_MAX_BYTES)
        return -EINVAL;
    for (int i = f->bytes - 1; i >= 0; i--) {
        uint8_t b = p[i];
        if (is_signed && i == f->bytes - 1) {
            neg = b & 0x80;
            b &= 0x7F;
        }
        int d = bcd_byte(b);
        if (d < 0)
            return -EBADMSG;
        acc = acc * 100 + d;
    }
    double v = (double)acc / pow(10.0, f->decimals);
    *ret = neg && acc ? -v : v;
    return 0;
}

int bcd_encode_num(double v, const struct bcd_fmt *f, bool is_signed, uint8_t *out)
{
    if (f->time || f->bytes < 1 || f->bytes > BCD_MAX_BYTES || !isfinite(v) ||
        (v < 0 && !is_signed))
        return -ERANGE;
    double scaled = round(fabs(v) * pow(10.0, f->decimals));
    /* The top digit pair is at most 79 when its high bit is the sign. */
    double limit = (is_signed ? 80.0 : 100.0) * pow(100.0, f->bytes - 1);
    if (scaled >= limit)
        return -ERANGE;
    int64_t acc = (int64_t)scaled;
    for (int i = 0; i < f->bytes; i++) {
        out[i] = to_bcd((int)(acc % 100));
        acc /= 100;
    }
    if (is_signed && v < 0 && scaled > 0)
        out[f->bytes - 1] |= 0x80;
    return 0;
}

double bcd_fmt_modulus(const struct bcd_fmt *f)
{
    return pow(10.0, 2 * f->bytes - f->decimals);
}

int bcd_decode_time(const uint8_t *p, const struct bcd_fmt *f, struct bcd_time *ret)
{
    struct bcd_time t = {.year = 2000, .mon = 1, .day = 1};
    if (!f->time)
        return -EINVAL;
    for (int k = 0; k < f->bytes; k++) {
        int v = bcd_byte(p[f->bytes - 1 - k]);
        bool ok = v >= 0;
        switch (f->fields[k]) {
        case 'Y':
            t.year = 2000 + v;
            break;
        case 'M':
            t.mon = v;
            ok = ok && v >= 1 && v <= 12;
            break;
        case 'D':
            t.day = v;
            ok = ok && v >= 1 && v <= 31;
            break;
        case 'h':
            t.hour = v;
            ok = ok && v <= 23;
            break;
        case 'm':
            t.min = v;
            ok = ok && v <= 59;
            break;
        case 's':
            t.sec = v;
            ok = ok && v <= 59;
            break;
        default:
            ok = ok && v <= 6;
            break; /* 'W': weekday, 0 = Sunday */
        }
        if (!ok)
            return -EBADMSG;
    }
    *ret = t;
    return 0;
}

/* Day of the week, 0 = Sunday (Sakamoto's method). */
static int weekday(int y, int m, int d)
{
    static const int off[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3)
        y--;
    return (y + y / 4 - y / 100 + y / 400 + off[m - 1] + d) % 7;
}

int bcd_encode_time(const struct bcd_time *t, const struct bcd_fmt *f, uint8_t *out)
{
    if (!f->time)
        return -ERANGE;
    if (t->year < 2000 || t->year > 2099 || t->mon < 1 || t->mon > 12 || t->day < 1 ||
        t->day > 31 || t->hour < 0 || t->hour > 23 || t->min < 0 || t->min > 59 || t->sec < 0 ||
        t->sec > 59)
        return -ERANGE;
    for (int k = 0; k < f->bytes; k++) {
        int v;
        switch (f->fields[k]) {
        case 'Y':
            v = t->year - 2000;
            break;
        case 'M':
            v = t->mon;
            break;
        case 'D':
            v = t->day;
            break;
        case 'h':
            v = t->hour;
            break;
        case 'm':
            v = t->min;
            break;
        case 's':
            v = t->sec;
            break;
        default:
            v = weekday(t->year, t->mon, t->day);
            break;
        }
        out[f->bytes - 1 - k] = to_bcd(v);
    }
    return 0;
}

int bcd_addr_parse(const char *text, size_t n, uint8_t *ret_addr)
{
    uint8_t a[BCD_MAX_ADDR];
    if (!text || n > BCD_MAX_ADDR || strlen(text) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        char h = text[2 * i], l = text[2 * i + 1];
        uint8_t b;
        if ((h == 'A' || h == 'a') && (l == 'A' || l == 'a')) {
            b = BCD_ADDR_WILDCARD;
        } else if (h >= '0' && h <= '9' && l >= '0' && l <= '9') {
            b = (uint8_t)((h - '0') << 4 | (l - '0'));
        } else {
            return -EINVAL;
        }
        a[n - 1 - i] = b;
    }
    memcpy(ret_addr, a, n);
    return 0;
}

void bcd_addr_format(const uint8_t *addr, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = addr[n - 1 - i];
        bool bcd = bcd_byte(b) >= 0;
        out[2 * i] = bcd ? (char)('0' + (b >> 4)) : 'A';
        out[2 * i + 1] = bcd ? (char)('0' + (b & 0x0F)) : 'A';
    }
    out[2 * n] = '\0';
}
