/*
 * utility.h - the four utilities a meter can measure and their one table
 * of names ("electricity", ...: config values, MQTT topic levels and
 * payload keys, the points table's column) and billing units ("kWh", ...:
 * statements, status).
 */
#pragma once

enum utility { UTIL_ELECTRICITY, UTIL_WATER, UTIL_GAS, UTIL_WASTEWATER, UTIL__COUNT };

/* "electricity", "water", "gas", "wastewater"; "?" outside the enum. */
const char *utility_name(enum utility u);
/* The billing unit: "kWh", "m3", "Nm3", "m3"; "?" outside the enum. */
const char *utility_unit(enum utility u);
/* The utility named s (exact, lower case). 0, or -EINVAL with *ret untouched. */
int utility_parse(const char *s, enum utility *ret);
