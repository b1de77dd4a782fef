/*
 * test_utility.c - common/utility.c: each utility's name and billing unit,
 * parsing every name back, refusing other spellings, values outside the enum.
 */
#include "common/utility.h"
#include "tests/unit/check.h"

#include <errno.h>

int main(void)
{
    static const struct {
        enum utility u;
        const char *name, *unit;
    } want[] = {{UTIL_ELECTRICITY, "electricity", "kWh"},
                {UTIL_WATER, "water", "m3"},
                {UTIL_GAS, "gas", "Nm3"},
                {UTIL_WASTEWATER, "wastewater", "m3"}};
    CHECK_INT(sizeof want / sizeof want[0], UTIL__COUNT);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        enum utility u = UTIL__COUNT;
        CHECK_STR(utility_name(want[i].u), want[i].name);
        CHECK_STR(utility_unit(want[i].u), want[i].unit);
        CHECK_INT(utility_parse(want[i].name, &u), 0);
        CHECK_INT(u, want[i].u);
    }

    static const char *const bad[] = {"", "Water", "GAS", "steam", "electric", "water ",
                                      "waste water", "kWh"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum utility u = UTIL_GAS;
        CHECK_INT(utility_parse(bad[i], &u), -EINVAL);
        CHECK_INT(u, UTIL_GAS); /* untouched */
    }

    CHECK_STR(utility_name(UTIL__COUNT), "?");
    CHECK_STR(utility_unit(UTIL__COUNT), "?");
    CHECK_STR(utility_name((enum utility)-1), "?");
    return check_done();
}
