/*
 * regtype.c - names and register widths of the point types and word
 * orders (see regtype.h).
 */
#include "common/regtype.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

static const struct {
    const char *name;
    int regs;
} point_types[] = {
    [PT_INT16] = {"int16", 1},     [PT_UINT16] = {"uint16", 1},   [PT_INT32] = {"int32", 2},
    [PT_UINT32] = {"uint32", 2},   [PT_INT64] = {"int64", 4},     [PT_UINT64] = {"uint64", 4},
    [PT_FLOAT32] = {"float32", 2}, [PT_FLOAT64] = {"float64", 4}, [PT_BOOL] = {"bool", 1},
};

static const char *const word_orders[] = {
    [WO_ABCD] = "ABCD", [WO_CDAB] = "CDAB", [WO_BADC] = "BADC", [WO_DCBA] = "DCBA"};

const char *point_type_name(enum point_type t)
{
    return (unsigned)t < ARRAY_SIZE(point_types) ? point_types[t].name : "?";
}

int point_type_regs(enum point_type t)
{
    return (unsigned)t < ARRAY_SIZE(point_types) ? point_types[t].regs : 1;
}

int point_type_parse(const char *s, enum point_type *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(point_types); i++) {
        if (strcmp(s, point_types[i].name) == 0) {
            *ret = (enum point_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *word_order_name(enum word_order o)
{
    return (unsigned)o < ARRAY_SIZE(word_orders) ? word_orders[o] : "?";
}

int word_order_parse(const char *s, enum word_order *ret)
{
    for (size_t i = 0; i < ARRAY_SIZE(word_orders); i++) {
        if (strcmp(s, word_orders[i]) == 0) {
            *ret = (enum word_order)i;
            return 0;
        }
    }
    return -EINVAL;
}
