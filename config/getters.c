/*
 * getters.c - the loader's typed access to libconfig settings: each getter
 * checks presence, type and range and reports the first problem as
 * "FILE:LINE: context: message" at the setting's own file and line (main
 * or included file), so a person can go straight to it. Unknown keys get a
 * "did you mean" from an edit distance. The sections (profiles.c, park.c)
 * use nothing of libconfig but these and the element walk.
 */
#include "config/config_private.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

__attribute__((format(printf, 4, 0))) static int vfail_at(struct ld *ld, const char *file,
                                                           int line, const char *fmt, va_list ap)
{
    char msg[600];

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (ld->err && ld->errlen) {
        if (ld->ctx[0])
            snprintf(ld->err, ld->errlen, "%s:%d: %s: %s", file, line, ld->ctx, msg);
        else
            snprintf(ld->err, ld->errlen, "%s:%d: %s", file, line, msg);
    }
    return -EINVAL;
}

int cfg_fail_at(struct ld *ld, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfail_at(ld, file, line, fmt, ap);
    va_end(ap);
    return r;
}

const char *cfg_setting_file(const struct ld *ld, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : ld->path;
}

int cfg_setting_line(const config_setting_t *s)
{
    int l = s ? (int)config_setting_source_line(s) : 0;
    return l > 0 ? l : 1;
}

int cfg_fail(struct ld *ld, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfail_at(ld, cfg_setting_file(ld, s), cfg_setting_line(s), fmt, ap);
    va_end(ap);
    return r;
}

void cfg_set_ctx(struct ld *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->ctx, sizeof ld->ctx, fmt, ap);
    va_end(ap);
}

bool cfg_id_ok(const char *s, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_ID_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(extra, c)))
            return false;
    }
    return true;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[MAX_ID_LEN + 1];

    if (la > MAX_ID_LEN || lb > MAX_ID_LEN)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cfg_closest(const char *name, const char *const *list)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (const char *const *a = list; *a; a++) {
        size_t d = edit_distance(name, *a);
        if (d < best_d) {
            best_d = d;
            best = *a;
        }
    }
    return best;
}

int cfg_check_keys(struct ld *ld, const config_setting_t *g, const char *const *allowed)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        if (cfg_in_list(name, allowed))
            continue;
        const char *best = cfg_closest(name, allowed);
        if (best)
            return cfg_fail(ld, s, "unknown setting '%s' (did you mean '%s'?)", name, best);
        return cfg_fail(ld, s, "unknown setting '%s'", name);
    }
    return 0;
}

bool cfg_in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static const char *type_word(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group { }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number with a fraction";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array [ ]";
    case CONFIG_TYPE_LIST: return "a list ( )";
    default: return "something else";
    }
}

int cfg_lookup(struct ld *ld, const config_setting_t *g, const char *key, bool required,
               config_setting_t **ret)
{
    config_setting_t *s = config_setting_get_member(g, key);
    if (!s) {
        if (required)
            return cfg_fail(ld, g, "missing required setting '%s'", key);
        return 1;
    }
    *ret = s;
    return 0;
}

int cfg_get_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                const char **ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, required, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return cfg_fail(ld, s, "'%s' must be a string in double quotes, not %s", key, type_word(s));
    *ret = config_setting_get_string(s);
    if (ret_s)
        *ret_s = s;
    return 0;
}

int cfg_dup_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                char **ret, config_setting_t **ret_s)
{
    const char *v;
    int r = cfg_get_str(ld, g, key, required, &v, ret_s);
    if (r)
        return r;
    free(*ret);
    *ret = xstrdup(v);
    return 0;
}

int cfg_get_integer(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                    long long min, long long max, long long *ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, required, &s);
    if (r)
        return r;
    long long v;
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    else if (config_setting_type(s) == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(s);
    else
        return cfg_fail(ld, s, "'%s' must be an integer, not %s", key, type_word(s));
    if (v < min || v > max)
        return cfg_fail(ld, s, "'%s' = %lld is out of range %lld..%lld", key, v, min, max);
    *ret = v;
    if (ret_s)
        *ret_s = s;
    return 0;
}

int cfg_get_int(struct ld *ld, const config_setting_t *g, const char *key, bool required, int min,
                int max, int *ret, config_setting_t **ret_s)
{
    long long v;
    int r = cfg_get_integer(ld, g, key, required, min, max, &v, ret_s);
    if (r == 0)
        *ret = (int)v;
    return r;
}

int cfg_get_double(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                   double *ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, required, &s);
    if (r)
        return r;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: *ret = config_setting_get_int(s); break;
    case CONFIG_TYPE_INT64: *ret = (double)config_setting_get_int64(s); break;
    case CONFIG_TYPE_FLOAT: *ret = config_setting_get_float(s); break;
    default:
        return cfg_fail(ld, s, "'%s' must be a number, not %s", key, type_word(s));
    }
    /* libconfig reads 1e400 as infinity. Bounded, a product of a register
     * value (< 2^64), a scale and two ratios stays finite: no inf reaches
     * a reading, a bill or a JSON payload. */
    if (!isfinite(*ret) || fabs(*ret) > CFG_DOUBLE_MAX)
        return cfg_fail(ld, s, "'%s' is out of range (%g): a number here must be finite and at "
                               "most %g in magnitude",
                        key, *ret, CFG_DOUBLE_MAX);
    if (ret_s)
        *ret_s = s;
    return 0;
}

int cfg_get_bool(struct ld *ld, const config_setting_t *g, const char *key, bool *ret,
                 config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, false, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return cfg_fail(ld, s, "'%s' must be true or false, not %s", key, type_word(s));
    *ret = config_setting_get_bool(s);
    if (ret_s)
        *ret_s = s;
    return 0;
}

int cfg_get_group(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                  config_setting_t **ret)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, required, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return cfg_fail(ld, s, "'%s' must be a group { ... }, not %s", key, type_word(s));
    *ret = s;
    return 0;
}

int cfg_check_group_list(struct ld *ld, const config_setting_t *s, const char *key)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)
        return 0;
    if (t != CONFIG_TYPE_LIST)
        return cfg_fail(ld, s, "'%s' must be a list ( { ... }, ... ), not %s", key, type_word(s));
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_GROUP)
            return cfg_fail(ld, e, "each entry of '%s' must be a group { ... }, not %s", key,
                            type_word(e));
    }
    return 0;
}

int cfg_get_list(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                 config_setting_t **ret)
{
    config_setting_t *s = NULL;
    int r = cfg_lookup(ld, g, key, required, &s);
    if (r)
        return r;
    r = cfg_check_group_list(ld, s, key);
    if (r)
        return r;
    *ret = s;
    return 0;
}

int cfg_get_utility(struct ld *ld, const config_setting_t *g, enum utility *ret)
{
    const char *v;
    config_setting_t *s = NULL;
    int r = cfg_get_str(ld, g, "utility", true, &v, &s);
    if (r)
        return r;
    if (utility_parse(v, ret) < 0)
        return cfg_fail(ld, s,
                        "unknown utility '%s' (expected electricity, water, gas or wastewater)", v);
    return 0;
}
