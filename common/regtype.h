/*
 * regtype.h - the Modbus register types a point can have and the word
 * orders of multi-register values: their names (as written in the config)
 * and how many registers each type occupies. The one table behind config/
 * (validation), protocols/plan.c (request spans), protocols/decode.c and
 * the simulator.
 */
#pragma once

enum point_type { PT_INT16, PT_UINT16, PT_INT32, PT_UINT32, PT_INT64, PT_UINT64, PT_FLOAT32,
                  PT_FLOAT64, PT_BOOL };
enum word_order { WO_ABCD, WO_CDAB, WO_BADC, WO_DCBA };

/* The config name of t ("int16", ..., "bool"); "?" for a value outside the enum. */
const char *point_type_name(enum point_type t);
/* Registers a point of this type occupies: 1 for 16-bit types and bool (one
 * bit, or one register), 2 for 32-bit, 4 for 64-bit; 1 outside the enum. */
int point_type_regs(enum point_type t);
/* The type named s (exact, lower case). 0, or -EINVAL with *ret untouched. */
int point_type_parse(const char *s, enum point_type *ret);

/* "ABCD", "CDAB", "BADC" or "DCBA"; "?" outside the enum. */
const char *word_order_name(enum word_order o);
/* The order named s (exact, upper case). 0, or -EINVAL with *ret untouched. */
int word_order_parse(const char *s, enum word_order *ret);
