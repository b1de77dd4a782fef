/*
 * utility.c - the utilities' names and billing units (see utility.h).
 */
#include "common/utility.h"

#include <errno.h>
#include <string.h>

static const struct {
    const char *name, *unit;
} utilities[UTIL__COUNT] = {
    [UTIL_ELECTRICITY] = {"electricity", "kWh"},
    [UTIL_WATER] = {"water", "m3"},
    [UTIL_GAS] = {"gas", "Nm3"},
    [UTIL_WASTEWATER] = {"wastewater", "m3"},
};

const char *utility_name(enum utility u)
{
    return (unsigned)u < UTIL__COUNT ? utilities[u].name : "?";
}

const char *utility_unit(enum utility u)
{
    return (unsigned)u < UTIL__COUNT ? utilities[u].unit : "?";
}

int utility_parse(const char *s, enum utility *ret)
{
    for (int i = 0; i < UTIL__COUNT; i++) {
        if (strcmp(s, utilities[i].name) == 0) {
            *ret = (enum utility)i;
            return 0;
        }
    }
    return -EINVAL;
}
