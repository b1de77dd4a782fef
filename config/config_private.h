/*
 * config_private.h - what the files of config/ share and nothing else
 * includes: the loader state, the "FILE:LINE: message" error reporting and
 * the typed getters over libconfig settings (getters.c), file reading and
 * @include resolution (include.c), and each section's parser (profiles.c,
 * park.c, operator.c), which config.c's config_load calls in order.
 */
#pragma once
#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

#define MAX_ID_LEN 64

/* Loader state: where errors go and what is being parsed (message prefix). */
struct ld {
    const char *path;
    char *err;
    size_t errlen;
    char ctx[192];
};

/* ---- getters.c: errors ---- */

/* Writes "FILE:LINE: [ctx: ]message" into ld->err; returns -EINVAL. */
int cfg_fail_at(struct ld *ld, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reports a problem at setting s's file and line; returns -EINVAL. */
int cfg_fail(struct ld *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the context named in the messages that follow ("bus 'b1'"). */
void cfg_set_ctx(struct ld *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The file s comes from (main or included; the main path when unknown). */
const char *cfg_setting_file(const struct ld *ld, const config_setting_t *s);
/* The line of s, at least 1. */
int cfg_setting_line(const config_setting_t *s);

/* ---- getters.c: checks ---- */

/* Non-empty, at most MAX_ID_LEN, only [a-z0-9] and the characters in 'extra'. */
bool cfg_id_ok(const char *s, const char *extra);
/* s is one of 'list' (NULL-terminated). */
bool cfg_in_list(const char *s, const char *const *list);
/* The entry of 'list' (NULL-terminated) within two edits of name, the
 * closest and first of equals; NULL when none is that close. */
const char *cfg_closest(const char *name, const char *const *list);
/* Every member of group g must be one of 'allowed' (NULL-terminated);
 * else -EINVAL naming the unknown setting and the closest allowed one. */
int cfg_check_keys(struct ld *ld, const config_setting_t *g, const char *const *allowed);
/* s is a list of groups ( { ... }, ... ) or an empty array []; else -EINVAL. */
int cfg_check_group_list(struct ld *ld, const config_setting_t *s, const char *key);

/*
 * ---- getters.c: typed getters ----
 * Each returns 0 when 'key' is found in group g (value in *ret, the setting
 * in *ret_s when ret_s is not NULL), 1 when absent and optional (*ret
 * untouched, so callers preset defaults), -EINVAL with the message written
 * when absent and required or of the wrong type or range.
 */
int cfg_lookup(struct ld *ld, const config_setting_t *g, const char *key, bool required,
               config_setting_t **ret);
/* *ret points into libconfig's tree (valid until config_destroy). */
int cfg_get_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                const char **ret, config_setting_t **ret_s);
/* Like cfg_get_str but *ret gets a copy (the previous value is freed). */
int cfg_dup_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                char **ret, config_setting_t **ret_s);
int cfg_get_integer(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                    long long min, long long max, long long *ret, config_setting_t **ret_s);
int cfg_get_int(struct ld *ld, const config_setting_t *g, const char *key, bool required, int min,
                int max, int *ret, config_setting_t **ret_s);
/* An integer or a number with a fraction, finite and at most CFG_DOUBLE_MAX
 * in magnitude (else a FILE:LINE error). */
#define CFG_DOUBLE_MAX 1e12
int cfg_get_double(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                   double *ret, config_setting_t **ret_s);
/* Always optional. */
int cfg_get_bool(struct ld *ld, const config_setting_t *g, const char *key, bool *ret,
                 config_setting_t **ret_s);
int cfg_get_group(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                  config_setting_t **ret);
/* A list of groups, as cfg_check_group_list. */
int cfg_get_list(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                 config_setting_t **ret);
/* The required setting `utility`, one of the utility names. */
int cfg_get_utility(struct ld *ld, const config_setting_t *g, enum utility *ret);

/* "HH:MM-HH:MM" into minutes of the day (the end may be 24:00); false when
 * malformed. */
bool cfg_parse_hours(const char *s, int *ret_from, int *ret_to);
/* An alarm's schedule: the array 'key' of "HH:MM-HH:MM" spans (end after
 * start, or before it to cross midnight) into *ret (caller frees). 0, 1
 * when absent, -EINVAL with the message written. */
int cfg_get_schedule(struct ld *ld, const config_setting_t *g, const char *what,
                     struct cfg_minutes **ret, size_t *ret_n);

/* ---- include.c ---- */

/* p is a regular file this process can read. */
bool cfg_regular_readable(const char *p);
/* Reads a whole file of at most 'max' bytes, NUL-terminated, into *ret
 * (caller frees), its length into *ret_len when not NULL. 0 or -errno
 * (-EFBIG when larger). */
int cfg_slurp(const char *path, size_t max, char **ret, size_t *ret_len);
/* Reads the main file ld->path and rewrites its @include lines to the
 * paths they resolve to; *ret is the text for libconfig (caller frees).
 * 0, or -EINVAL/-errno with the message written. */
int cfg_preprocess(struct ld *ld, char **ret);

/* ---- profiles.c ---- */

/* The top-level lists `profiles` and `profiles_*`, merged into cfg->profiles. */
int cfg_parse_profiles(struct ld *ld, const config_setting_t *root, struct config *cfg);

/* ---- cnmeter.c: DL/T 645-2007 and CJ/T 188 ---- */

/* The optional key `protocol` of group g: 0 and *ret, 1 when absent,
 * -EINVAL for an unknown name. */
int cfg_get_protocol(struct ld *ld, const config_setting_t *g, enum bus_protocol *ret);
/* The profile key `meter_type` (required for cjt188 profiles, refused by
 * others). 0, 1 when absent and not required, or -EINVAL. */
int cfg_get_meter_type(struct ld *ld, const config_setting_t *g, struct cfg_profile *p);
/* The data-item keys of point pt (name parsed) of a DL/T 645 or CJ/T 188
 * profile p; Modbus register keys are refused. 0 or -EINVAL. */
int cfg_parse_cn_point(struct ld *ld, const config_setting_t *g, const struct cfg_profile *p,
                       struct cfg_point *pt);
/* The profile key `settlement` (DL/T 645 profiles whose billing di ends in
 * 00), read after the points. 0 or -EINVAL. */
int cfg_get_settlement(struct ld *ld, const config_setting_t *g, struct cfg_profile *p);
/* The profile key `daily_frozen` (0..62; DL/T 645 profiles whose billing
 * point is a total energy of Table A.6's daily freeze). */
int cfg_get_daily_frozen(struct ld *ld, const config_setting_t *g, struct cfg_profile *p);
/* Whole-profile checks of such a profile (pts: its points list). */
int cfg_check_cn_profile(struct ld *ld, const config_setting_t *pts, const struct cfg_profile *p);
/* The `address` of meter m (bus set) on a DL/T 645 or CJ/T 188 bus; the
 * Modbus-only meter keys are refused. 0 or -EINVAL. */
int cfg_parse_meter_address(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                            struct cfg_meter *m);

/* ---- park.c ---- */

/* A meter before m (in file order, with its id parsed) on m's bus for which
 * same(other, m) holds, or NULL: a unit id or address used twice. */
const struct cfg_meter *cfg_meter_clash(const struct config *cfg, const struct cfg_meter *m,
                                        bool (*same)(const struct cfg_meter *,
                                                     const struct cfg_meter *));

/* A meter's `alarms = ( { name; for; below; above; hysteresis; hours;
 * enabled; }, ... )`: changes to its profile's alarms. Needs m->profile. */
int cfg_parse_alarm_overrides(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                              struct cfg_meter *m);

/* ---- park.c: the sections, each 0 or -EINVAL/-errno with the message written ---- */

int cfg_parse_gateway(struct ld *ld, const config_setting_t *root, struct config *cfg);

/* ---- operator.c ---- */
/* gateway.http inside the gateway group gw (absent: no listener). */
int cfg_parse_http(struct ld *ld, const config_setting_t *gw, struct config *cfg);
/* Frees what cfg_parse_http set (the password wiped first). */
void cfg_free_http(struct config *cfg);
/* The top-level alerts group (absent: no alerts). */
int cfg_parse_alerts(struct ld *ld, const config_setting_t *root, struct config *cfg);
void cfg_free_alerts(struct config *cfg);
int cfg_parse_storage(struct ld *ld, const config_setting_t *root, struct config *cfg);
int cfg_parse_mqtt(struct ld *ld, const config_setting_t *root, struct config *cfg);
int cfg_parse_buses(struct ld *ld, const config_setting_t *root, struct config *cfg);
/* Needs the buses and profiles parsed (meters refer to them by name). */
int cfg_parse_enterprises(struct ld *ld, const config_setting_t *root, struct config *cfg);
int cfg_parse_tariffs(struct ld *ld, const config_setting_t *root, struct config *cfg);

/* ---- twopart.c: the two-part tariff's and ladder prices' keys ---- */
/* surcharge, fixed_monthly, demand_price, capacity_price, pf_standard,
 * pf_adjust, blocks of tariff group g into t. 0 or -EINVAL (FILE:LINE). */
int cfg_parse_tariff_charges(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t);
/* Frees what the tariff's two-part keys and seasons allocated. */
void cfg_free_tariff_charges(struct cfg_tariff *t);
/* capacity_kva, max_demand, reactive of meter group g (its profile and
 * utility already set). 0 or -EINVAL. */
int cfg_parse_meter_charges(struct ld *ld, const config_setting_t *g, const struct config *cfg,
                            struct cfg_meter *m);
