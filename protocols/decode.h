/*
 * decode.h - turns raw Modbus registers into engineering values and back:
 * every point type x word order of DESIGN.md, then scale, offset and PT x CT.
 * Pure functions, no I/O; the sim uses the encoder, the poller the decoder.
 */
#pragma once
#include <stdint.h>
#include "config/config.h"

/*
 * Decodes the registers of one point (regs[0] is the register at the point's
 * address; point_type_regs(t) of them are read). For PT_BOOL regs[0] is 0/1.
 * Word orders for 32 bits (A = most significant byte): ABCD regs={AB,CD},
 * CDAB regs={CD,AB}, BADC regs={BA,DC}, DCBA regs={DC,BA}; 64 bits extend
 * this naturally (CDAB = word order reversed, bytes big-endian in a word).
 * 16-bit types ignore the order. Returns the unscaled value.
 */
double decode_raw(enum point_type t, enum word_order o, const uint16_t *regs);

/*
 * Decodes and scales one point: raw * scale + offset, times the meter's
 * pt_ratio, ct_ratio or both as the point's ratio says (point_ratio_factor). An integer + fraction point (has_frac) adds
 * frac_raw * frac_scale, frac_raw read at regs + (frac_address - address),
 * which may lie before regs: the caller passes the point's position inside
 * a buffer holding both parts (the plan's request does). A DL/T 645 or
 * CJ/T 188 point (data_len > 0) decodes its data bytes, one per element of
 * regs, as its BCD format or as a CJ/T 188 volume with unit code (m3).
 * 0 on success, -ERANGE when the result is NaN or infinite, -EBADMSG when
 * the bytes are not BCD or not a volume (*ret_value untouched).
 */
int decode_point(const struct cfg_point *p, double pt_ratio, double ct_ratio, const uint16_t *regs,
                 double *ret_value);

/* The inverse of decode_raw: writes point_type_regs(t) registers. Integer
 * types round to nearest and saturate at the type's range. */
void encode_raw(enum point_type t, enum word_order o, double raw, uint16_t *regs);

/* The inverse of decode_point: the raw value that decodes to 'value'. */
double encode_unscale(const struct cfg_point *p, double pt_ratio, double ct_ratio, double value);

/* For an integer + fraction point: splits 'raw' (as from encode_unscale, in
 * units of the integer register) into the integer register's value, returned,
 * and the fraction register's raw value in *ret_frac_raw, so that decoding
 * both gives back raw * scale. Points without a fraction: returns raw, 0. */
double encode_frac_split(const struct cfg_point *p, double raw, double *ret_frac_raw);
