/*
 * bcd.h - the BCD data formats of the Chinese metering standards (DL/T
 * 645-2007 Appendix A, CJ/T 188-2004): a format written as in the standard's
 * tables ("XXXXXX.XX", "XXX.XXX", "NNNNNN", "YYMMDDhhmm") parsed once, and
 * values decoded from / encoded to the wire, where the lowest byte comes
 * first. Here in common/ because config/ validates the formats and
 * protocols/ and the sim decode and encode them.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest format: 8 bytes, 16 digits (fits an int64 exactly). */
#define BCD_MAX_BYTES 8
/* The longest meter address: 7 bytes (CJ/T 188). */
#define BCD_MAX_ADDR 7

struct bcd_fmt {
    uint8_t bytes;    /* on the wire, 1..BCD_MAX_BYTES */
    uint8_t decimals; /* digits after the point (numbers) */
    bool time;        /* a date/time format (YY MM DD hh mm ss WW) */
    /* Time formats: the field of each byte in text order (the most
     * significant first), one letter each: Y M D h m s W. */
    char fields[BCD_MAX_BYTES + 1];
};

/* A decoded date/time: fields the format lacks are 0 (day/month 1). */
struct bcd_time {
    int year; /* 2000 + YY */
    int mon, day, hour, min, sec;
};

/*
 * Parses a format: a number of 'X' or 'N' digits with at most one '.' (an
 * even count of digits, 2..16), or a date/time of two-letter fields from
 * YY MM DD hh mm ss WW (1..8 fields, none twice). 0 and *ret, or -EINVAL.
 */
int bcd_fmt_parse(const char *text, struct bcd_fmt *ret);

/*
 * Decodes a number of format f (not a time) from p[0..f->bytes), lowest
 * byte first. With is_signed the highest bit of the last (most significant)
 * byte is the sign (set = negative), as the standard marks currents, powers,
 * power factors and combined energies. 0 and *ret, or -EBADMSG when a digit
 * is not 0-9 (e.g. the 0xFF a meter sends for an item it lacks).
 */
int bcd_decode_num(const uint8_t *p, const struct bcd_fmt *f, bool is_signed, double *ret);

/* Decodes a time of format f from p[0..f->bytes), lowest byte first. 0 and
 * *ret, or -EBADMSG for a non-BCD digit or a field out of range (month
 * 1-12, day 1-31, hour 0-23, minute and second 0-59, weekday 0-6). */
int bcd_decode_time(const uint8_t *p, const struct bcd_fmt *f, struct bcd_time *ret);

/* The inverse of bcd_decode_num: writes f->bytes bytes (lowest first),
 * rounding to f->decimals. 0, or -ERANGE when |v| does not fit the digits
 * (the sign bit takes the top one when is_signed) or a negative v is
 * given without is_signed, or v is not finite; out untouched then. */
int bcd_encode_num(double v, const struct bcd_fmt *f, bool is_signed, uint8_t *out);

/* The inverse of bcd_decode_time (a weekday field is computed). 0, or
 * -ERANGE when a field is out of range or the year is not 2000..2099. */
int bcd_encode_time(const struct bcd_time *t, const struct bcd_fmt *f, uint8_t *out);

/* Where an unsigned number of format f wraps: 10^(digits before the
 * point), e.g. 1e6 for "XXXXXX.XX" (999999.99 is followed by 0). */
double bcd_fmt_modulus(const struct bcd_fmt *f);

/* One packed BCD byte 0x00..0x99 as 0..99, or -1. */
int bcd_byte(uint8_t b);

/* The wildcard byte of a meter address (DL/T 645 and CJ/T 188: "AA"). */
#define BCD_ADDR_WILDCARD 0xAA

/*
 * Parses a meter address as printed: 2n characters, each pair two decimal
 * digits or "AA" (the wildcard byte 0xAA). Writes the wire order, the last
 * pair first, into ret_addr[0..n). 0, or -EINVAL (length, a character).
 */
int bcd_addr_parse(const char *text, size_t n, uint8_t *ret_addr);
/* Writes the printed form of addr[0..n) into out (2n + 1 bytes), "AA"
 * for a byte that is not BCD. */
void bcd_addr_format(const uint8_t *addr, size_t n, char *out);
