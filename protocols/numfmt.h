/*
 * numfmt.h - numbers as JSON text without printf in the common case: integers
 * by a digit loop, doubles to N significant digits by exact scaling with a
 * table of powers of ten. The live payload (protocols/payload.c) uses it once
 * per point and poll; anything unusual falls back to snprintf.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Room numfmt_int64 and numfmt_double need, terminating NUL included. */
#define NUMFMT_INT64_SIZE 21
#define NUMFMT_DOUBLE_SIZE 32

/* Writes v in decimal and a NUL into buf (NUMFMT_INT64_SIZE bytes); returns
 * the length without the NUL. */
size_t numfmt_int64(char *buf, int64_t v);

/*
 * Writes v with 'digits' significant digits (clamped to 1..17) and a NUL into
 * buf (NUMFMT_DOUBLE_SIZE bytes); returns the length without the NUL. The
 * digits and the choice between plain and exponent form are those of
 * printf("%.*g") (round half to even on the exact binary value), written the
 * way jansson writes a real: an integral plain value keeps ".0" ("123.0",
 * "-0.0"), the exponent has no '+' and no leading zeros ("1e20", "1.5e-7").
 * Up to 15 digits and decimal exponents within about 1e-8..1e36 are done
 * here; other values go through snprintf with the same result, except that a
 * value within a rounding of DBL_MAX gets the digits (up to 17) it needs not
 * to read back as an overflow. A non-finite v, which JSON cannot carry, is
 * written as "null".
 */
size_t numfmt_double(char *buf, double v, int digits);
