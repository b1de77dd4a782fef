/*
 * test_regtype.c - common/regtype.c: every point type's name and register
 * width, parsing each name back, refusing near misses, and the word orders.
 */
#include "common/regtype.h"
#include "tests/unit/check.h"

#include <errno.h>

static const struct {
    enum point_type t;
    const char *name;
    int regs;
} want[] = {
    {PT_INT16, "int16", 1},     {PT_UINT16, "uint16", 1},   {PT_INT32, "int32", 2},
    {PT_UINT32, "uint32", 2},   {PT_INT64, "int64", 4},     {PT_UINT64, "uint64", 4},
    {PT_FLOAT32, "float32", 2}, {PT_FLOAT64, "float64", 4}, {PT_BOOL, "bool", 1},
};

static void test_types(void)
{
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        enum point_type t = PT_BOOL;
        CHECK_STR(point_type_name(want[i].t), want[i].name);
        CHECK_INT(point_type_regs(want[i].t), want[i].regs);
        CHECK_INT(point_type_parse(want[i].name, &t), 0);
        CHECK_INT(t, want[i].t);
    }
    /* outside the enum: a name that cannot be mistaken for a type, one register */
    CHECK_STR(point_type_name((enum point_type)99), "?");
    CHECK_INT(point_type_regs((enum point_type)99), 1);
    CHECK_STR(point_type_name((enum point_type)-1), "?");
}

static void test_type_parse_refuses(void)
{
    static const char *const bad[] = {"", "Int16", "FLOAT32", "float", "int", "int8",
                                      "uint16 ", " bool", "float32x", "?"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum point_type t = PT_UINT64;
        CHECK_INT(point_type_parse(bad[i], &t), -EINVAL);
        CHECK_INT(t, PT_UINT64); /* untouched */
    }
}

static void test_orders(void)
{
    static const struct {
        enum word_order o;
        const char *name;
    } orders[] = {{WO_ABCD, "ABCD"}, {WO_CDAB, "CDAB"}, {WO_BADC, "BADC"}, {WO_DCBA, "DCBA"}};
    for (size_t i = 0; i < sizeof orders / sizeof orders[0]; i++) {
        enum word_order o = WO_DCBA;
        CHECK_STR(word_order_name(orders[i].o), orders[i].name);
        CHECK_INT(word_order_parse(orders[i].name, &o), 0);
        CHECK_INT(o, orders[i].o);
    }
    enum word_order o = WO_BADC;
    CHECK_INT(word_order_parse("abcd", &o), -EINVAL);
    CHECK_INT(word_order_parse("ABDC", &o), -EINVAL);
    CHECK_INT(word_order_parse("", &o), -EINVAL);
    CHECK_INT(o, WO_BADC);
    CHECK_STR(word_order_name((enum word_order)4), "?");
}

int main(void)
{
    test_types();
    test_type_parse_refuses();
    test_orders();
    return check_done();
}
