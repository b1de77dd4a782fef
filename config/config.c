/*
 * config.c - loads the gateway's libconfig file into the plain structs of
 * config.h and validates every setting; the first problem is reported as
 * "FILE:LINE: message" naming the file (main or included) the setting is in.
 * cli/main.c (check, run, reload) calls config_load; every other module
 * reads the structs. The files in profiles/ are the register maps it includes.
 *
 * Profiles from several files: libconfig refuses a setting defined twice, and
 * @include inlines text, so two profile files cannot both define `profiles`.
 * The top level therefore accepts one list named `profiles` and any number of
 * lists whose name starts with `profiles_` (each shipped profile file defines
 * its own, e.g. `profiles_generic_water = ( { ... } );`). All are merged;
 * profile names must be unique across them.
 *
 * @include resolution: libconfig 1.5 resolves every @include against one
 * fixed include directory and has no hook to change that. So the loader reads
 * the main file itself and resolves each `@include "X"` line to the first
 * readable of: X when absolute; the config file's directory/X; then
 * $PARKGW_PROFILE_DIR/X and $PARKGW_PROFILE_DIR/basename(X) (the environment
 * variable, else the installed profile directory from version.h). It rewrites
 * the quoted path with the path found (line numbers are unchanged), then lets
 * libconfig parse the text, so every setting still carries its own file and
 * line. `@include "profiles/generic-water.cfg"` thus finds a local copy next
 * to the config first, the installed profile otherwise. An included file may
 * not @include again (libconfig 1.5 would resolve it against the working
 * directory, which is never what was meant), and that is reported.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "version.h"

#define MAX_CONFIG_BYTES (4 * 1024 * 1024)
#define MAX_PASSWORD_BYTES 65535
#define MAX_ID_LEN 64
#define ZONEINFO_DIR "/usr/share/zoneinfo"

/* Loader state: where errors go and what is being parsed (message prefix). */
struct ld {
    const char *path;
    char *err;
    size_t errlen;
    char ctx[192];
};

/* ------------------------------------------------------------------ */
/* error reporting                                                     */

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

__attribute__((format(printf, 4, 5))) static int fail_at(struct ld *ld, const char *file, int line,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfail_at(ld, file, line, fmt, ap);
    va_end(ap);
    return r;
}

static const char *setting_file(const struct ld *ld, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : ld->path;
}

static int setting_line(const config_setting_t *s)
{
    int l = s ? (int)config_setting_source_line(s) : 0;
    return l > 0 ? l : 1;
}

/* Reports a problem at setting s's file and line; returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int fail(struct ld *ld, const config_setting_t *s,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vfail_at(ld, setting_file(ld, s), setting_line(s), fmt, ap);
    va_end(ap);
    return r;
}

__attribute__((format(printf, 2, 3))) static void set_ctx(struct ld *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->ctx, sizeof ld->ctx, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* small checks                                                        */

/* Non-empty, at most MAX_ID_LEN, only [a-z0-9] and the characters in 'extra'. */
static bool id_ok(const char *s, const char *extra)
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

/* Every member of group g must be one of 'allowed' (NULL-terminated). */
static int check_keys(struct ld *ld, const config_setting_t *g, const char *const *allowed)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        const char *best = NULL;
        size_t best_d = 3;
        bool ok = false;

        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, name) == 0) {
                ok = true;
                break;
            }
            size_t d = edit_distance(name, *a);
            if (d < best_d) {
                best_d = d;
                best = *a;
            }
        }
        if (ok)
            continue;
        if (best)
            return fail(ld, s, "unknown setting '%s' (did you mean '%s'?)", name, best);
        return fail(ld, s, "unknown setting '%s'", name);
    }
    return 0;
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

/*
 * Typed getters: 0 when found (value in *ret), 1 when absent and optional
 * (*ret untouched, so callers preset defaults), -EINVAL otherwise.
 */
static int lookup(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                  config_setting_t **ret)
{
    config_setting_t *s = config_setting_get_member(g, key);
    if (!s) {
        if (required)
            return fail(ld, g, "missing required setting '%s'", key);
        return 1;
    }
    *ret = s;
    return 0;
}

static int get_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                   const char **ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, required, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(ld, s, "'%s' must be a string in double quotes, not %s", key, type_word(s));
    *ret = config_setting_get_string(s);
    if (ret_s)
        *ret_s = s;
    return 0;
}

/* Like get_str but duplicates into *ret (freeing the previous value). */
static int dup_str(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                   char **ret, config_setting_t **ret_s)
{
    const char *v;
    int r = get_str(ld, g, key, required, &v, ret_s);
    if (r)
        return r;
    free(*ret);
    *ret = xstrdup(v);
    return 0;
}

static int get_integer(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                       long long min, long long max, long long *ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, required, &s);
    if (r)
        return r;
    long long v;
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    else if (config_setting_type(s) == CONFIG_TYPE_INT64)
        v = config_setting_get_int64(s);
    else
        return fail(ld, s, "'%s' must be an integer, not %s", key, type_word(s));
    if (v < min || v > max)
        return fail(ld, s, "'%s' = %lld is out of range %lld..%lld", key, v, min, max);
    *ret = v;
    if (ret_s)
        *ret_s = s;
    return 0;
}

static int get_int(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                   int min, int max, int *ret, config_setting_t **ret_s)
{
    long long v;
    int r = get_integer(ld, g, key, required, min, max, &v, ret_s);
    if (r == 0)
        *ret = (int)v;
    return r;
}

static int get_double(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                      double *ret, config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, required, &s);
    if (r)
        return r;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: *ret = config_setting_get_int(s); break;
    case CONFIG_TYPE_INT64: *ret = (double)config_setting_get_int64(s); break;
    case CONFIG_TYPE_FLOAT: *ret = config_setting_get_float(s); break;
    default: return fail(ld, s, "'%s' must be a number, not %s", key, type_word(s));
    }
    if (ret_s)
        *ret_s = s;
    return 0;
}

static int get_bool(struct ld *ld, const config_setting_t *g, const char *key, bool *ret,
                    config_setting_t **ret_s)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, false, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail(ld, s, "'%s' must be true or false, not %s", key, type_word(s));
    *ret = config_setting_get_bool(s);
    if (ret_s)
        *ret_s = s;
    return 0;
}

static int get_group(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                     config_setting_t **ret)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, required, &s);
    if (r)
        return r;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return fail(ld, s, "'%s' must be a group { ... }, not %s", key, type_word(s));
    *ret = s;
    return 0;
}

/* A list of groups: ( { ... }, { ... } ). An empty array [] is accepted too. */
static int check_group_list(struct ld *ld, const config_setting_t *s, const char *key)
{
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)
        return 0;
    if (t != CONFIG_TYPE_LIST)
        return fail(ld, s, "'%s' must be a list ( { ... }, ... ), not %s", key, type_word(s));
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_GROUP)
            return fail(ld, e, "each entry of '%s' must be a group { ... }, not %s", key,
                        type_word(e));
    }
    return 0;
}

static int get_list(struct ld *ld, const config_setting_t *g, const char *key, bool required,
                    config_setting_t **ret)
{
    config_setting_t *s = NULL;
    int r = lookup(ld, g, key, required, &s);
    if (r)
        return r;
    r = check_group_list(ld, s, key);
    if (r)
        return r;
    *ret = s;
    return 0;
}

static bool regular_readable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

static bool timezone_ok(const char *tz)
{
    if (strcmp(tz, "UTC") == 0)
        return true;
    if (!tz[0] || tz[0] == '/' || strstr(tz, "..") || strlen(tz) > 200)
        return false;
    char *p = xasprintf("%s/%s", ZONEINFO_DIR, tz);
    bool ok = regular_readable(p);
    free(p);
    return ok;
}

/* Reads a whole file of at most 'max' bytes, NUL-terminated. 0 or -errno. */
static int slurp(const char *path, size_t max, char **ret, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    int r = 0;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max) {
                r = -EFBIG;
                goto out_free;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        r = -EFBIG;
        goto out_free;
    }
    buf[len] = '\0';
    close(fd);
    *ret = buf;
    if (ret_len)
        *ret_len = len;
    return 0;
out_free:
    free(buf);
    close(fd);
    return r;
}

/* ------------------------------------------------------------------ */
/* names of enums                                                      */

static const char *const log_levels[] = {"err", "warning", "notice", "info", "debug", NULL};
static const char *const band_names[] = {"peak", "flat", "valley", NULL};

int profile_billing_point(const struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++)
        if (p->points[i].billing)
            return (int)i;
    return -1;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static int parse_utility_setting(struct ld *ld, const config_setting_t *g, enum utility *ret)
{
    const char *v;
    config_setting_t *s = NULL;
    int r = get_str(ld, g, "utility", true, &v, &s);
    if (r)
        return r;
    if (utility_parse(v, ret) < 0)
        return fail(ld, s, "unknown utility '%s' (expected electricity, water, gas or wastewater)",
                    v);
    return 0;
}

/* ------------------------------------------------------------------ */
/* @include handling                                                   */

/* An @include line as libconfig 1.5 recognises it: optional blanks,
 * "@include", blanks, a quoted path. [*q0, *q1) is the path. */
static bool include_line(const char *line, size_t len, size_t *q0, size_t *q1)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (len - i < 8 || memcmp(line + i, "@include", 8) != 0)
        return false;
    i += 8;
    size_t ws = i;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == ws || i >= len || line[i] != '"')
        return false;
    *q0 = ++i;
    while (i < len && line[i] != '"')
        i++;
    if (i >= len)
        return false;
    *q1 = i;
    return true;
}

static const char *profile_dir(void)
{
    const char *e = getenv("PARKGW_PROFILE_DIR");
    return e && *e ? e : PARKGW_PROFILE_DIR;
}

/* The readable file an @include of 'inc' in the main file means, or NULL. */
static char *resolve_include(const char *main_path, const char *inc)
{
    if (inc[0] == '/')
        return regular_readable(inc) ? xstrdup(inc) : NULL;

    const char *slash = strrchr(main_path, '/');
    int dirlen = slash ? (int)(slash - main_path + 1) : 0;
    char *cand = xasprintf("%.*s%s", dirlen, main_path, inc);
    if (regular_readable(cand))
        return cand;
    free(cand);

    const char *pd = profile_dir();
    cand = xasprintf("%s/%s", pd, inc);
    if (regular_readable(cand))
        return cand;
    free(cand);

    const char *base = strrchr(inc, '/');
    if (base) {
        cand = xasprintf("%s/%s", pd, base + 1);
        if (regular_readable(cand))
            return cand;
        free(cand);
    }
    return NULL;
}

/* Rejects @include inside an included file (see the top of this file). */
static int check_no_nested_include(struct ld *ld, const char *file)
{
    char *text;
    int r = slurp(file, MAX_CONFIG_BYTES, &text, NULL);
    if (r < 0)
        return fail_at(ld, file, 1, "cannot read included file: %s", strerror(-r));
    int line = 1;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t q0, q1;
        if (include_line(p, len, &q0, &q1)) {
            r = fail_at(ld, file, line,
                        "nested @include is not supported; include \"%.*s\" from the main "
                        "config file",
                        (int)(q1 - q0), p + q0);
            break;
        }
        if (!nl)
            break;
        p = nl + 1;
        line++;
    }
    free(text);
    return r;
}

/* Reads the main file and rewrites its @include lines to resolved paths. */
static int preprocess(struct ld *ld, char **ret)
{
    char *text;
    size_t len;
    int r = slurp(ld->path, MAX_CONFIG_BYTES, &text, &len);
    if (r < 0) {
        snprintf(ld->err, ld->errlen, "%s: cannot read config: %s", ld->path, strerror(-r));
        return r;
    }

    size_t cap = len + 1, olen = 0;
    char *out = xmalloc(cap);
    int line = 1;
    const char *p = text;
    while (p < text + len) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t l = nl ? (size_t)(nl - p + 1) : (size_t)(text + len - p);
        size_t q0, q1;
        const char *piece = p;
        size_t piece_len = l;
        char *rewritten = NULL;

        if (include_line(p, l, &q0, &q1)) {
            char *inc = xasprintf("%.*s", (int)(q1 - q0), p + q0);
            char *found = strchr(inc, '\\') ? NULL : resolve_include(ld->path, inc);
            if (!found) {
                r = fail_at(ld, ld->path, line,
                            "cannot find include file \"%s\" (looked next to the config and in "
                            "%s)",
                            inc, profile_dir());
                free(inc);
                goto out_free;
            }
            free(inc);
            if (strchr(found, '"') || strchr(found, '\\')) {
                r = fail_at(ld, ld->path, line, "include path \"%s\" cannot be quoted", found);
                free(found);
                goto out_free;
            }
            r = check_no_nested_include(ld, found);
            if (r < 0) {
                free(found);
                goto out_free;
            }
            rewritten = xasprintf("%.*s%s%.*s", (int)q0, p, found, (int)(l - q1), p + q1);
            free(found);
            piece = rewritten;
            piece_len = strlen(rewritten);
        }
        out = xgrow(out, &cap, olen + piece_len + 1, 1);
        memcpy(out + olen, piece, piece_len);
        olen += piece_len;
        free(rewritten);
        p += l;
        line++;
    }
    out[olen] = '\0';
    free(text);
    *ret = out;
    return 0;
out_free:
    free(out);
    free(text);
    return r;
}

/* ------------------------------------------------------------------ */
/* sections                                                            */

static int parse_gateway(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"id", "timezone", "log_level", NULL};
    config_setting_t *g, *s;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_group(ld, root, "gateway", true, &g)))
        return r;
    set_ctx(ld, "gateway");
    if ((r = check_keys(ld, g, keys)))
        return r;
    if ((r = dup_str(ld, g, "id", true, &cfg->gateway_id, &s)))
        return r;
    if (!id_ok(cfg->gateway_id, "-"))
        return fail(ld, s, "id '%s' must match [a-z0-9-]+ (at most %d characters)",
                    cfg->gateway_id, MAX_ID_LEN);
    cfg->timezone = xstrdup("UTC");
    if ((r = dup_str(ld, g, "timezone", false, &cfg->timezone, &s)) < 0)
        return r;
    if (r == 0 && !timezone_ok(cfg->timezone))
        return fail(ld, s, "unknown time zone '%s' (not in %s)", cfg->timezone, ZONEINFO_DIR);
    if ((r = dup_str(ld, g, "log_level", false, &cfg->log_level, &s)) < 0)
        return r;
    if (r == 0 && !in_list(cfg->log_level, log_levels))
        return fail(ld, s, "log_level '%s' must be one of err, warning, notice, info, debug",
                    cfg->log_level);
    return 0;
}

static int parse_storage(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"path", "raw_retention_days", NULL};
    config_setting_t *g, *s;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_group(ld, root, "storage", true, &g)))
        return r;
    set_ctx(ld, "storage");
    if ((r = check_keys(ld, g, keys)))
        return r;
    if ((r = dup_str(ld, g, "path", true, &cfg->storage_path, &s)))
        return r;
    if (!cfg->storage_path[0])
        return fail(ld, s, "path must not be empty");
    cfg->raw_retention_days = 400;
    if ((r = get_int(ld, g, "raw_retention_days", false, 0, 100000, &cfg->raw_retention_days,
                     NULL)) < 0)
        return r;
    return 0;
}

static int parse_tls(struct ld *ld, const config_setting_t *m, struct config *cfg)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", NULL};
    static const char *const names[] = {"ca_file", "cert_file", "key_file"};
    char **fields[] = {&cfg->tls.ca_file, &cfg->tls.cert_file, &cfg->tls.key_file};
    config_setting_t *g, *s;
    int r;

    if ((r = get_group(ld, m, "tls", false, &g)))
        return r < 0 ? r : 0;
    if ((r = check_keys(ld, g, keys)))
        return r;
    cfg->tls_set = true;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if ((r = dup_str(ld, g, names[i], false, fields[i], &s)) < 0)
            return r;
        if (r == 0 && !regular_readable(*fields[i]))
            return fail(ld, s, "cannot read %s '%s'", names[i], *fields[i]);
    }
    if (!cfg->tls.cert_file != !cfg->tls.key_file)
        return fail(ld, g, "cert_file and key_file must be given together");
    if (strncmp(cfg->mqtt_uri, "ssl://", 6) && strncmp(cfg->mqtt_uri, "mqtts://", 8) &&
        strncmp(cfg->mqtt_uri, "wss://", 6))
        return fail(ld, g, "tls is set but uri '%s' is not ssl://, mqtts:// or wss://",
                    cfg->mqtt_uri);
    return 0;
}

static int read_password(struct ld *ld, const config_setting_t *s, struct config *cfg)
{
    char *pw;
    size_t len;
    int r = slurp(cfg->mqtt_password_file, MAX_PASSWORD_BYTES, &pw, &len);
    if (r < 0) {
        fail(ld, s, "cannot read password_file '%s': %s", cfg->mqtt_password_file,
             strerror(-r));
        return r;
    }
    while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        pw[--len] = '\0';
    cfg->mqtt_password = pw;
    return 0;
}

static int parse_mqtt(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    static const char *const keys[] = {"uri",          "client_id",        "username",
                                       "password_file", "topic_prefix",     "summary_interval",
                                       "outbox_max_messages", "tls",        NULL};
    static const char *const schemes[] = {"tcp://", "ssl://", "mqtt://", "mqtts://",
                                          "ws://",  "wss://"};
    config_setting_t *g, *s;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_group(ld, root, "mqtt", true, &g)))
        return r;
    set_ctx(ld, "mqtt");
    if ((r = check_keys(ld, g, keys)))
        return r;
    if ((r = dup_str(ld, g, "uri", true, &cfg->mqtt_uri, &s)))
        return r;
    bool scheme_ok = false;
    for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(cfg->mqtt_uri, schemes[i], n) == 0 && cfg->mqtt_uri[n])
            scheme_ok = true;
    }
    if (!scheme_ok)
        return fail(ld, s, "uri '%s' must look like tcp://HOST:PORT (or ssl://, mqtt://, "
                           "mqtts://, ws://, wss://)",
                    cfg->mqtt_uri);

    cfg->mqtt_client_id = xasprintf("parkgw-%s", cfg->gateway_id);
    if ((r = dup_str(ld, g, "client_id", false, &cfg->mqtt_client_id, &s)) < 0)
        return r;
    if (r == 0 && !cfg->mqtt_client_id[0])
        return fail(ld, s, "client_id must not be empty");

    if ((r = dup_str(ld, g, "username", false, &cfg->mqtt_username, NULL)) < 0)
        return r;
    if ((r = dup_str(ld, g, "password_file", false, &cfg->mqtt_password_file, &s)) < 0)
        return r;
    if (r == 0) {
        if (!cfg->mqtt_username)
            return fail(ld, s, "password_file needs a username");
        if ((r = read_password(ld, s, cfg)) < 0)
            return r;
    }

    cfg->topic_prefix = xstrdup("park");
    if ((r = dup_str(ld, g, "topic_prefix", false, &cfg->topic_prefix, &s)) < 0)
        return r;
    const char *tp = cfg->topic_prefix;
    if (r == 0 && (!tp[0] || strpbrk(tp, "+#") || tp[0] == '/' || tp[strlen(tp) - 1] == '/'))
        return fail(ld, s, "topic_prefix '%s' must be non-empty, without + or # and without a "
                           "leading or trailing /",
                    tp);

    cfg->summary_interval = 60;
    if ((r = get_int(ld, g, "summary_interval", false, 1, 86400, &cfg->summary_interval, NULL)) <
        0)
        return r;
    long long obm = 1000000;
    if ((r = get_integer(ld, g, "outbox_max_messages", false, 1, 1000000000LL, &obm, NULL)) < 0)
        return r;
    cfg->outbox_max_messages = (long)obm;
    return parse_tls(ld, g, cfg);
}

static int find_bus(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_buses; i++)
        if (cfg->buses[i].name && strcmp(cfg->buses[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_profile(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_profiles; i++)
        if (cfg->profiles[i].name && strcmp(cfg->profiles[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int parse_bus(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"name",      "type",      "host",       "port",
                                       "device",    "baud",      "parity",     "data_bits",
                                       "stop_bits", "timeout_ms", "byte_timeout_ms",
                                       "rs485",     "frame_delay_ms", "description", NULL};
    static const char *const tcp_only[] = {"host", "port", NULL};
    static const char *const rtu_only[] = {"device",    "baud",  "parity",         "data_bits",
                                           "stop_bits", "rs485", "frame_delay_ms", NULL};
    struct cfg_bus *b = &cfg->buses[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    set_ctx(ld, "buses[%zu]", idx);
    b->line = setting_line(g);
    if ((r = check_keys(ld, g, keys)) || (r = dup_str(ld, g, "name", true, &b->name, &s)))
        return r;
    if (!id_ok(b->name, "-_"))
        return fail(ld, s, "name '%s' must match [a-z0-9_-]+", b->name);
    set_ctx(ld, "bus '%s'", b->name);
    int prev = find_bus(cfg, b->name);
    if (prev >= 0 && (size_t)prev < idx)
        return fail(ld, s, "duplicate bus name (first defined at line %d)", cfg->buses[prev].line);
    if ((r = get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = get_str(ld, g, "type", true, &v, &s)))
        return r;
    if (strcmp(v, "tcp") == 0)
        b->type = BUS_TCP;
    else if (strcmp(v, "rtu") == 0)
        b->type = BUS_RTU;
    else
        return fail(ld, s, "type '%s' must be \"tcp\" or \"rtu\"", v);

    const char *const *foreign = b->type == BUS_TCP ? rtu_only : tcp_only;
    for (const char *const *k = foreign; *k; k++) {
        config_setting_t *f = config_setting_get_member(g, *k);
        if (f)
            return fail(ld, f, "'%s' is not valid for a %s bus", *k,
                        b->type == BUS_TCP ? "tcp" : "rtu");
    }

    b->port = 502;
    b->baud = 9600;
    b->parity = 'E';
    b->data_bits = 8;
    b->stop_bits = 1;
    b->timeout_ms = 500;
    b->byte_timeout_ms = 0;
    if (b->type == BUS_TCP) {
        if ((r = dup_str(ld, g, "host", true, &b->host, &s)))
            return r;
        if (!b->host[0])
            return fail(ld, s, "host must not be empty");
        if ((r = get_int(ld, g, "port", false, 1, 65535, &b->port, NULL)) < 0)
            return r;
    } else {
        if ((r = dup_str(ld, g, "device", true, &b->device, &s)))
            return r;
        if (!b->device[0])
            return fail(ld, s, "device must not be empty");
        if ((r = get_int(ld, g, "baud", false, 1, 10000000, &b->baud, NULL)) < 0)
            return r;
        if ((r = get_str(ld, g, "parity", false, &v, &s)) < 0)
            return r;
        if (r == 0) {
            if (strcmp(v, "N") && strcmp(v, "E") && strcmp(v, "O"))
                return fail(ld, s, "parity '%s' must be \"N\", \"E\" or \"O\"", v);
            b->parity = v[0];
        }
        if ((r = get_int(ld, g, "data_bits", false, 5, 8, &b->data_bits, NULL)) < 0 ||
            (r = get_int(ld, g, "stop_bits", false, 1, 2, &b->stop_bits, NULL)) < 0 ||
            (r = get_bool(ld, g, "rs485", &b->rs485, NULL)) < 0 ||
            (r = get_int(ld, g, "frame_delay_ms", false, 0, 10000, &b->frame_delay_ms, NULL)) < 0)
            return r;
    }
    if ((r = get_int(ld, g, "timeout_ms", false, 1, 600000, &b->timeout_ms, NULL)) < 0 ||
        (r = get_int(ld, g, "byte_timeout_ms", false, 0, 600000, &b->byte_timeout_ms, NULL)) < 0)
        return r;
    return 0;
}

static int parse_buses(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_list(ld, root, "buses", false, &l)))
        return r < 0 ? r : 0;
    cfg->n_buses = (size_t)config_setting_length(l);
    cfg->buses = xcalloc(cfg->n_buses ? cfg->n_buses : 1, sizeof *cfg->buses);
    for (size_t i = 0; i < cfg->n_buses; i++)
        if ((r = parse_bus(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

/* Registers [first, end) a point reads: its own and, for an integer +
 * fraction totaliser, the fraction's, as one span (one request). */
static void point_span(const struct cfg_point *pt, int *ret_first, int *ret_end)
{
    int first = pt->address, end = pt->address + point_type_regs(pt->type);
    if (pt->has_frac) {
        int ff = pt->frac_address, fe = ff + point_type_regs(pt->frac_type);
        if (ff < first)
            first = ff;
        if (fe > end)
            end = fe;
    }
    *ret_first = first;
    *ret_end = end;
}

/* frac_address / frac_type of an integer + fraction totaliser; scale and
 * order are read by the caller. 0, or -EINVAL with the message set. */
static int parse_frac(struct ld *ld, const config_setting_t *g, struct cfg_point *pt)
{
    config_setting_t *s_addr = NULL, *s = NULL;
    const char *v;
    int r;

    pt->frac_type = PT_FLOAT32;
    if ((r = get_int(ld, g, "frac_address", false, 0, 65535, &pt->frac_address, &s_addr)) < 0)
        return r;
    pt->has_frac = r == 0;
    if ((r = get_str(ld, g, "frac_type", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        if (!pt->has_frac)
            return fail(ld, s, "point '%s': frac_type needs frac_address", pt->name);
        enum point_type t = PT_FLOAT32;
        if (point_type_parse(v, &t) < 0 || t == PT_BOOL)
            return fail(ld, s, "point '%s': frac_type '%s' must be a register type (int16, "
                               "uint16, int32, uint32, int64, uint64, float32 or float64)",
                        pt->name, v);
        pt->frac_type = t;
    }
    if (!pt->has_frac)
        return 0;
    if (pt->fc != 3 && pt->fc != 4)
        return fail(ld, s_addr, "point '%s': frac_address needs fc 3 or 4", pt->name);
    int fe = pt->frac_address + point_type_regs(pt->frac_type);
    int me = pt->address + point_type_regs(pt->type);
    if (fe > 65536)
        return fail(ld, s_addr, "point '%s': fraction (%s at %d) runs past register 65535",
                    pt->name, point_type_name(pt->frac_type), pt->frac_address);
    if (pt->frac_address < me && pt->address < fe)
        return fail(ld, s_addr, "point '%s': fraction registers %d..%d overlap the point's "
                                "own registers %d..%d",
                    pt->name, pt->frac_address, fe - 1, pt->address, me - 1);
    int first, end;
    point_span(pt, &first, &end);
    if (end - first > 125)
        return fail(ld, s_addr, "point '%s': integer and fraction span registers %d..%d; "
                                "they must fit one request (125 registers) to be consistent",
                    pt->name, first, end - 1);
    return 0;
}

static int parse_point(struct ld *ld, const config_setting_t *g, struct cfg_profile *p, size_t idx)
{
    static const char *const keys[] = {"name",     "fc",           "address",   "type",
                                       "order",    "scale",        "offset",    "kind",
                                       "billing",  "ct_pt",        "max_rate",  "frac_address",
                                       "frac_type", "frac_scale",  NULL};
    struct cfg_point *pt = &p->points[idx];
    config_setting_t *s, *s_type, *s_addr;
    const char *v;
    int r;

    pt->line = setting_line(g);
    if ((r = check_keys(ld, g, keys)) || (r = dup_str(ld, g, "name", true, &pt->name, &s)))
        return r;
    if (!id_ok(pt->name, "_"))
        return fail(ld, s, "point name '%s' must match [a-z0-9_]+", pt->name);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(p->points[i].name, pt->name) == 0)
            return fail(ld, s, "duplicate point '%s' (first defined at line %d)", pt->name,
                        p->points[i].line);

    if ((r = get_int(ld, g, "fc", true, 1, 4, &pt->fc, NULL)) ||
        (r = get_str(ld, g, "type", true, &v, &s_type)))
        return r;
    if (point_type_parse(v, &pt->type) < 0)
        return fail(ld, s_type, "point '%s': unknown type '%s' (expected int16, uint16, int32, "
                                "uint32, int64, uint64, float32, float64 or bool)",
                    pt->name, v);
    bool bitfc = pt->fc == 1 || pt->fc == 2;
    if (pt->type == PT_BOOL && !bitfc)
        return fail(ld, s_type, "point '%s': type bool needs fc 1 (coils) or 2 (discrete inputs)",
                    pt->name);
    if (pt->type != PT_BOOL && bitfc)
        return fail(ld, s_type, "point '%s': fc %d reads bits, so type must be bool", pt->name,
                    pt->fc);

    if ((r = get_int(ld, g, "address", true, 0, 65535, &pt->address, &s_addr)))
        return r;
    int regs = point_type_regs(pt->type);
    if (pt->address + regs > 65536)
        return fail(ld, s_addr, "point '%s': %s at address %d runs past register 65535",
                    pt->name, point_type_name(pt->type), pt->address);

    if ((r = parse_frac(ld, g, pt)) < 0)
        return r;
    if (pt->has_frac && point_type_regs(pt->frac_type) > regs)
        regs = point_type_regs(pt->frac_type); /* the order may be for the fraction */

    pt->order = WO_ABCD;
    if ((r = get_str(ld, g, "order", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        enum word_order o = WO_ABCD;
        if (word_order_parse(v, &o) < 0)
            return fail(ld, s, "point '%s': unknown order '%s' (expected ABCD, CDAB, BADC or "
                               "DCBA)",
                        pt->name, v);
        if (regs == 1)
            return fail(ld, s, "point '%s': order applies only to 32- and 64-bit types",
                        pt->name);
        pt->order = o;
    }

    pt->scale = 1.0;
    if ((r = get_double(ld, g, "scale", false, &pt->scale, &s)) < 0)
        return r;
    if (r == 0 && pt->scale == 0.0)
        return fail(ld, s, "point '%s': scale must not be 0", pt->name);
    pt->frac_scale = pt->scale;
    if ((r = get_double(ld, g, "frac_scale", false, &pt->frac_scale, &s)) < 0)
        return r;
    if (r == 0) {
        if (!pt->has_frac)
            return fail(ld, s, "point '%s': frac_scale needs frac_address", pt->name);
        if (pt->frac_scale == 0.0 || !isfinite(pt->frac_scale))
            return fail(ld, s, "point '%s': frac_scale must be a non-zero number", pt->name);
    }
    if ((r = get_double(ld, g, "offset", false, &pt->offset, NULL)) < 0)
        return r;

    pt->kind = KIND_GAUGE;
    if ((r = get_str(ld, g, "kind", false, &v, &s)) < 0)
        return r;
    if (r == 0) {
        if (strcmp(v, "counter") == 0)
            pt->kind = KIND_COUNTER;
        else if (strcmp(v, "gauge") != 0)
            return fail(ld, s, "point '%s': kind '%s' must be \"counter\" or \"gauge\"", pt->name,
                        v);
    }
    if ((r = get_bool(ld, g, "billing", &pt->billing, &s)) < 0)
        return r;
    if (pt->billing && pt->kind != KIND_COUNTER)
        return fail(ld, s, "point '%s': the billing point must be kind = \"counter\"", pt->name);
    if ((r = get_bool(ld, g, "ct_pt", &pt->ct_pt, &s)) < 0)
        return r;
    if (pt->ct_pt && p->utility != UTIL_ELECTRICITY)
        return fail(ld, s, "point '%s': ct_pt applies only to electricity profiles", pt->name);
    if ((r = get_double(ld, g, "max_rate", false, &pt->max_rate, &s)) < 0)
        return r;
    if (r == 0) {
        if (pt->kind != KIND_COUNTER)
            return fail(ld, s, "point '%s': max_rate applies only to counters", pt->name);
        if (!(pt->max_rate > 0))
            return fail(ld, s, "point '%s': max_rate must be > 0", pt->name);
    }
    return 0;
}

static int parse_alarm(struct ld *ld, const config_setting_t *g, struct cfg_profile *p, size_t idx)
{
    static const char *const keys[] = {"name", "point", "below", "above", "for", "hysteresis",
                                       NULL};
    struct cfg_alarm *a = &p->alarms[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    a->line = setting_line(g);
    if ((r = check_keys(ld, g, keys)) || (r = dup_str(ld, g, "name", true, &a->name, &s)))
        return r;
    if (!id_ok(a->name, "_"))
        return fail(ld, s, "alarm name '%s' must match [a-z0-9_]+", a->name);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(p->alarms[i].name, a->name) == 0)
            return fail(ld, s, "duplicate alarm '%s' (first defined at line %d)", a->name,
                        p->alarms[i].line);
    if ((r = get_str(ld, g, "point", true, &v, &s)))
        return r;
    a->point = -1;
    for (size_t i = 0; i < p->n_points; i++)
        if (strcmp(p->points[i].name, v) == 0)
            a->point = (int)i;
    if (a->point < 0)
        return fail(ld, s, "alarm '%s': unknown point '%s'", a->name, v);
    if ((r = get_double(ld, g, "below", false, &a->below, NULL)) < 0)
        return r;
    a->has_below = r == 0;
    if ((r = get_double(ld, g, "above", false, &a->above, NULL)) < 0)
        return r;
    a->has_above = r == 0;
    if (!a->has_below && !a->has_above)
        return fail(ld, g, "alarm '%s' needs 'below' or 'above' (or both)", a->name);
    if (a->has_below && a->has_above && !(a->below < a->above))
        return fail(ld, g, "alarm '%s': below (%g) must be less than above (%g), else it never "
                           "clears",
                    a->name, a->below, a->above);
    if ((r = get_double(ld, g, "for", false, &a->for_s, &s)) < 0)
        return r;
    if (!(a->for_s >= 0) || a->for_s > 86400)
        return fail(ld, s, "alarm '%s': for must be 0..86400 seconds", a->name);
    if ((r = get_double(ld, g, "hysteresis", false, &a->hysteresis, &s)) < 0)
        return r;
    if (!(a->hysteresis >= 0))
        return fail(ld, s, "alarm '%s': hysteresis must be >= 0", a->name);
    return 0;
}

/* Two points of the same function code whose registers (or bits) overlap. */
static int check_overlaps(struct ld *ld, const config_setting_t *pts, const struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *a = &p->points[i];
        /* A fraction part counts as registers of its point: the simulator
         * and the decoder assume no other point lives there. */
        struct { int first, end; } ar[2] = {{a->address, a->address + point_type_regs(a->type)},
                                            {-1, -1}};
        if (a->has_frac)
            ar[1].end = (ar[1].first = a->frac_address) + point_type_regs(a->frac_type);
        for (size_t j = 0; j < i; j++) {
            const struct cfg_point *b = &p->points[j];
            struct { int first, end; } br[2] = {
                {b->address, b->address + point_type_regs(b->type)}, {-1, -1}};
            if (b->has_frac)
                br[1].end = (br[1].first = b->frac_address) + point_type_regs(b->frac_type);
            if (a->fc != b->fc)
                continue;
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    if (ar[x].first >= 0 && br[y].first >= 0 && ar[x].first < br[y].end &&
                        br[y].first < ar[x].end)
                        return fail(ld, config_setting_get_elem(pts, (unsigned)i),
                                    "point '%s' (fc %d, registers %d..%d) overlaps point '%s' "
                                    "(registers %d..%d, line %d)",
                                    a->name, a->fc, ar[x].first, ar[x].end - 1, b->name,
                                    br[y].first, br[y].end - 1, b->line);
        }
    }
    return 0;
}

static int parse_profile(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"name", "utility", "points", "alarms", "description", NULL};
    struct cfg_profile *p = &cfg->profiles[idx];
    config_setting_t *s, *pts, *als = NULL;
    const char *v;
    int r;

    p->line = setting_line(g);
    p->file = xstrdup(setting_file(ld, g));
    if ((r = check_keys(ld, g, keys)) || (r = dup_str(ld, g, "name", true, &p->name, &s)))
        return r;
    if (!id_ok(p->name, "-_."))
        return fail(ld, s, "profile name '%s' must match [a-z0-9_.-]+", p->name);
    set_ctx(ld, "profile '%s'", p->name);
    int prev = find_profile(cfg, p->name);
    if (prev >= 0 && (size_t)prev < idx)
        return fail(ld, s, "duplicate profile name (first defined at %s:%d)",
                    cfg->profiles[prev].file, cfg->profiles[prev].line);
    if ((r = get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = parse_utility_setting(ld, g, &p->utility)))
        return r;
    if ((r = get_list(ld, g, "points", true, &pts)))
        return r;
    p->n_points = (size_t)config_setting_length(pts);
    if (p->n_points == 0)
        return fail(ld, pts, "a profile needs at least one point");
    p->points = xcalloc(p->n_points, sizeof *p->points);
    for (size_t i = 0; i < p->n_points; i++)
        if ((r = parse_point(ld, config_setting_get_elem(pts, (unsigned)i), p, i)))
            return r;
    if ((r = check_overlaps(ld, pts, p)))
        return r;

    int n_billing = 0;
    for (size_t i = 0; i < p->n_points; i++) {
        if (!p->points[i].billing)
            continue;
        if (++n_billing > 1)
            return fail(ld, config_setting_get_elem(pts, (unsigned)i),
                        "point '%s': only one point per profile may have billing = true "
                        "(already '%s')",
                        p->points[i].name, p->points[profile_billing_point(p)].name);
    }
    if (n_billing == 0)
        return fail(ld, g, "no billing counter: exactly one point needs billing = true and "
                           "kind = \"counter\"");

    if ((r = get_list(ld, g, "alarms", false, &als)) < 0)
        return r;
    if (r == 0) {
        p->n_alarms = (size_t)config_setting_length(als);
        p->alarms = xcalloc(p->n_alarms ? p->n_alarms : 1, sizeof *p->alarms);
        for (size_t i = 0; i < p->n_alarms; i++)
            if ((r = parse_alarm(ld, config_setting_get_elem(als, (unsigned)i), p, i)))
                return r;
    }
    return 0;
}

static bool is_profiles_key(const char *name)
{
    return strcmp(name, "profiles") == 0 || strncmp(name, "profiles_", 9) == 0;
}

static int parse_profiles(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    int n_top = config_setting_length(root);
    size_t total = 0;
    int r;

    set_ctx(ld, "%s", "");
    for (int i = 0; i < n_top; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (!is_profiles_key(config_setting_name(s)))
            continue;
        if ((r = check_group_list(ld, s, config_setting_name(s))))
            return r;
        total += (size_t)config_setting_length(s);
    }
    cfg->profiles = xcalloc(total ? total : 1, sizeof *cfg->profiles);
    cfg->n_profiles = total;
    size_t k = 0;
    for (int i = 0; i < n_top; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (!is_profiles_key(config_setting_name(s)))
            continue;
        for (int j = 0; j < config_setting_length(s); j++) {
            set_ctx(ld, "%s[%d]", config_setting_name(s), j);
            if ((r = parse_profile(ld, config_setting_get_elem(s, (unsigned)j), cfg, k++)))
                return r;
        }
    }
    return 0;
}

/* A (bus, unit_id) already taken by another meter, or NULL. */
static const struct cfg_meter *unit_taken(const struct config *cfg, const struct cfg_meter *m)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        for (size_t i = 0; i < ent->n_meters; i++) {
            const struct cfg_meter *o = &ent->meters[i];
            if (o == m)
                return NULL;
            if (o->id && o->bus == m->bus && o->unit_id == m->unit_id)
                return o;
        }
    }
    return NULL;
}

static int parse_meter(struct ld *ld, const config_setting_t *g, struct config *cfg,
                       struct cfg_enterprise *ent, size_t idx)
{
    static const char *const keys[] = {"id",       "utility",  "bus",
                                       "unit_id",  "profile",  "interval",
                                       "pt_ratio", "ct_ratio", "max_registers_per_read",
                                       "no_gap_fill", "one_request_per_point", "description",
                                       NULL};
    struct cfg_meter *m = &ent->meters[idx];
    config_setting_t *s = NULL;
    const char *v;
    int r;

    m->enterprise = ent;
    m->line = setting_line(g);
    m->bus = -1;
    m->profile = -1;
    set_ctx(ld, "enterprise '%s' meters[%zu]", ent->id, idx);
    if ((r = check_keys(ld, g, keys)))
        return r;
    char *id = NULL;
    if ((r = dup_str(ld, g, "id", true, &id, &s)))
        return r;
    if (!id_ok(id, "-")) {
        r = fail(ld, s, "meter id '%s' must match [a-z0-9-]+", id);
        free(id);
        return r;
    }
    for (size_t i = 0; i < idx; i++) {
        if (strcmp(ent->meters[i].id, id) == 0) {
            r = fail(ld, s, "duplicate meter id '%s' (first defined at line %d)", id,
                     ent->meters[i].line);
            free(id);
            return r;
        }
    }
    /* Only a validated id is stored: unit_taken() skips meters without one. */
    m->id = id;
    set_ctx(ld, "meter '%s/%s'", ent->id, m->id);
    if ((r = get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;

    config_setting_t *s_util;
    if ((r = parse_utility_setting(ld, g, &m->utility)))
        return r;
    s_util = config_setting_get_member(g, "utility");
    if ((r = get_str(ld, g, "profile", true, &v, &s)))
        return r;
    m->profile = find_profile(cfg, v);
    if (m->profile < 0)
        return fail(ld, s, "unknown profile '%s'", v);
    const struct cfg_profile *p = &cfg->profiles[m->profile];
    if (p->utility != m->utility)
        return fail(ld, s_util, "utility '%s' does not match profile '%s' (%s)",
                    utility_name(m->utility), p->name, utility_name(p->utility));

    if ((r = get_str(ld, g, "bus", true, &v, &s)))
        return r;
    m->bus = find_bus(cfg, v);
    if (m->bus < 0)
        return fail(ld, s, "unknown bus '%s'", v);
    const struct cfg_bus *b = &cfg->buses[m->bus];
    /* Modbus TCP gateways pass any unit id byte; RTU slaves are 1..247 (0 is broadcast). */
    int umin = b->type == BUS_TCP ? 0 : 1, umax = b->type == BUS_TCP ? 255 : 247;
    if ((r = get_int(ld, g, "unit_id", true, umin, umax, &m->unit_id, &s)))
        return r;
    const struct cfg_meter *o = unit_taken(cfg, m);
    if (o)
        return fail(ld, s, "unit_id %d on bus '%s' is already used by meter '%s/%s' (line %d)",
                    m->unit_id, b->name, o->enterprise->id, o->id, o->line);

    if ((r = get_int(ld, g, "interval", true, 1, 86400, &m->interval, NULL)))
        return r;
    m->pt_ratio = 1.0;
    m->ct_ratio = 1.0;
    if ((r = get_double(ld, g, "pt_ratio", false, &m->pt_ratio, &s)) < 0)
        return r;
    if (!(m->pt_ratio > 0))
        return fail(ld, s, "pt_ratio must be > 0");
    if ((r = get_double(ld, g, "ct_ratio", false, &m->ct_ratio, &s)) < 0)
        return r;
    if (!(m->ct_ratio > 0))
        return fail(ld, s, "ct_ratio must be > 0");
    m->max_registers_per_read = 125;
    if ((r = get_int(ld, g, "max_registers_per_read", false, 1, 125, &m->max_registers_per_read,
                     NULL)) < 0 ||
        (r = get_bool(ld, g, "no_gap_fill", &m->no_gap_fill, NULL)) < 0 ||
        (r = get_bool(ld, g, "one_request_per_point", &m->one_request_per_point, NULL)) < 0)
        return r;
    return 0;
}

static const char *const reserved_ids[] = {"status", "summary", "events", NULL};

static int parse_enterprise(struct ld *ld, const config_setting_t *g, struct config *cfg,
                            size_t idx)
{
    static const char *const keys[] = {"id", "name", "meters", "description", NULL};
    struct cfg_enterprise *ent = &cfg->enterprises[idx];
    config_setting_t *s, *ms;
    const char *v;
    int r;

    ent->line = setting_line(g);
    set_ctx(ld, "enterprises[%zu]", idx);
    if ((r = check_keys(ld, g, keys)))
        return r;
    char *id = NULL;
    if ((r = dup_str(ld, g, "id", true, &id, &s)))
        return r;
    ent->id = id;
    if (!id_ok(id, "-"))
        return fail(ld, s, "enterprise id '%s' must match [a-z0-9-]+", id);
    if (in_list(id, reserved_ids))
        return fail(ld, s, "enterprise id '%s' is reserved (it is an MQTT topic level)", id);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(cfg->enterprises[i].id, id) == 0)
            return fail(ld, s, "duplicate enterprise id '%s' (first defined at line %d)", id,
                        cfg->enterprises[i].line);
    set_ctx(ld, "enterprise '%s'", id);
    ent->name = xstrdup(id);
    if ((r = dup_str(ld, g, "name", false, &ent->name, &s)) < 0)
        return r;
    if (r == 0 && !ent->name[0])
        return fail(ld, s, "name must not be empty");
    if ((r = get_str(ld, g, "description", false, &v, NULL)) < 0)
        return r;
    if ((r = get_list(ld, g, "meters", false, &ms)) < 0)
        return r;
    if (r == 0) {
        ent->n_meters = (size_t)config_setting_length(ms);
        ent->meters = xcalloc(ent->n_meters ? ent->n_meters : 1, sizeof *ent->meters);
        for (size_t i = 0; i < ent->n_meters; i++)
            if ((r = parse_meter(ld, config_setting_get_elem(ms, (unsigned)i), cfg, ent, i)))
                return r;
    }
    return 0;
}

static int parse_enterprises(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_list(ld, root, "enterprises", true, &l)))
        return r;
    if (config_setting_length(l) == 0)
        return fail(ld, l, "no enterprises configured");
    cfg->n_enterprises = (size_t)config_setting_length(l);
    cfg->enterprises = xcalloc(cfg->n_enterprises, sizeof *cfg->enterprises);
    for (size_t i = 0; i < cfg->n_enterprises; i++)
        if ((r = parse_enterprise(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* "HH:MM-HH:MM" into minutes of the day; the end may be 24:00. */
static bool parse_hours(const char *s, int *ret_from, int *ret_to)
{
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':')
        return false;
    int h1 = two_digits(s), m1 = two_digits(s + 3), h2 = two_digits(s + 6),
        m2 = two_digits(s + 9);
    if (h1 < 0 || m1 < 0 || h2 < 0 || m2 < 0 || h1 > 23 || m1 > 59 || m2 > 59 || h2 > 24 ||
        (h2 == 24 && m2 != 0))
        return false;
    *ret_from = h1 * 60 + m1;
    *ret_to = h2 * 60 + m2;
    return true;
}

static int parse_band(struct ld *ld, const config_setting_t *g, struct cfg_tariff *t, size_t idx,
                      int owner[1440])
{
    static const char *const keys[] = {"name", "price", "hours", NULL};
    struct cfg_band *b = &t->bands[idx];
    config_setting_t *s = NULL, *hs = NULL;
    int r;

    if ((r = check_keys(ld, g, keys)) || (r = dup_str(ld, g, "name", true, &b->name, &s)))
        return r;
    if (!in_list(b->name, band_names))
        return fail(ld, s, "band name '%s' must be \"peak\", \"flat\" or \"valley\" (the "
                           "statement's columns)",
                    b->name);
    for (size_t i = 0; i < idx; i++)
        if (strcmp(t->bands[i].name, b->name) == 0)
            return fail(ld, s, "duplicate band '%s'", b->name);
    if ((r = get_double(ld, g, "price", true, &b->price, &s)))
        return r;
    if (!(b->price >= 0))
        return fail(ld, s, "band '%s': price must be >= 0", b->name);
    if ((r = lookup(ld, g, "hours", true, &hs)))
        return r;
    int ht = config_setting_type(hs);
    if ((ht != CONFIG_TYPE_ARRAY && ht != CONFIG_TYPE_LIST) || config_setting_length(hs) == 0)
        return fail(ld, hs, "band '%s': hours must be a non-empty array [ \"HH:MM-HH:MM\", ... ]",
                    b->name);
    b->n_hours = (size_t)config_setting_length(hs);
    b->hours = xcalloc(b->n_hours, sizeof *b->hours);
    for (size_t i = 0; i < b->n_hours; i++) {
        config_setting_t *e = config_setting_get_elem(hs, (unsigned)i);
        const char *v = config_setting_type(e) == CONFIG_TYPE_STRING
                            ? config_setting_get_string(e)
                            : NULL;
        int from, to;
        if (!v || !parse_hours(v, &from, &to) || from == to)
            return fail(ld, e, "band '%s': hours entry %zu must be \"HH:MM-HH:MM\" (end after "
                               "start, or before it to cross midnight; 24:00 allowed as end)",
                        b->name, i + 1);
        b->hours[i].from_min = from;
        b->hours[i].to_min = to;
        int end = to > from ? to : to + 1440;
        for (int m = from; m < end; m++) {
            int *o = &owner[m % 1440];
            if (*o >= 0)
                return fail(ld, e, "band '%s': %s overlaps band '%s' at %02d:%02d", b->name, v,
                            t->bands[*o].name, (m % 1440) / 60, m % 60);
            *o = (int)idx;
        }
    }
    return 0;
}

static int parse_tariff(struct ld *ld, const config_setting_t *g, struct config *cfg, size_t idx)
{
    static const char *const keys[] = {"utility", "currency", "price", "bands", NULL};
    struct cfg_tariff *t = &cfg->tariffs[idx];
    config_setting_t *s, *bs, *ps = NULL;
    int r;

    t->line = setting_line(g);
    set_ctx(ld, "tariffs[%zu]", idx);
    if ((r = check_keys(ld, g, keys)) || (r = parse_utility_setting(ld, g, &t->utility)))
        return r;
    set_ctx(ld, "tariff '%s'", utility_name(t->utility));
    for (size_t i = 0; i < idx; i++)
        if (cfg->tariffs[i].utility == t->utility)
            return fail(ld, config_setting_get_member(g, "utility"),
                        "a tariff for %s is already defined at line %d",
                        utility_name(t->utility), cfg->tariffs[i].line);
    if ((r = dup_str(ld, g, "currency", true, &t->currency, &s)))
        return r;
    if (!t->currency[0])
        return fail(ld, s, "currency must not be empty");

    if ((r = get_double(ld, g, "price", false, &t->price, &ps)) < 0)
        return r;
    bool has_price = r == 0;
    if ((r = lookup(ld, g, "bands", false, &bs)) < 0)
        return r;
    bool has_bands = r == 0;
    if (has_price && has_bands)
        return fail(ld, ps, "give either price or bands, not both");
    if (!has_price && !has_bands)
        return fail(ld, g, "needs a price or bands");
    if (has_price) {
        if (!(t->price >= 0))
            return fail(ld, ps, "price must be >= 0");
        return 0;
    }
    if ((r = check_group_list(ld, bs, "bands")))
        return r;
    t->n_bands = (size_t)config_setting_length(bs);
    if (t->n_bands == 0)
        return fail(ld, bs, "bands must not be empty");
    t->bands = xcalloc(t->n_bands, sizeof *t->bands);
    int owner[1440];
    for (int m = 0; m < 1440; m++)
        owner[m] = -1;
    for (size_t i = 0; i < t->n_bands; i++)
        if ((r = parse_band(ld, config_setting_get_elem(bs, (unsigned)i), t, i, owner)))
            return r;
    for (int m = 0; m < 1440; m++) {
        if (owner[m] < 0) {
            int end = m;
            while (end < 1440 && owner[end] < 0)
                end++;
            return fail(ld, g, "bands leave %02d:%02d-%02d:%02d uncovered; every minute of the "
                               "day needs exactly one band",
                        m / 60, m % 60, end / 60, end % 60);
        }
    }
    return 0;
}

static int parse_tariffs(struct ld *ld, const config_setting_t *root, struct config *cfg)
{
    config_setting_t *l;
    int r;

    set_ctx(ld, "%s", "");
    if ((r = get_list(ld, root, "tariffs", false, &l)))
        return r < 0 ? r : 0;
    cfg->n_tariffs = (size_t)config_setting_length(l);
    cfg->tariffs = xcalloc(cfg->n_tariffs ? cfg->n_tariffs : 1, sizeof *cfg->tariffs);
    for (size_t i = 0; i < cfg->n_tariffs; i++)
        if ((r = parse_tariff(ld, config_setting_get_elem(l, (unsigned)i), cfg, i)))
            return r;
    return 0;
}

static int check_top_keys(struct ld *ld, const config_setting_t *root)
{
    static const char *const keys[] = {"gateway",     "storage", "mqtt",    "buses",
                                       "profiles",    "enterprises", "tariffs", NULL};
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        if (strncmp(config_setting_name(s), "profiles_", 9) == 0)
            continue;
        const char *name = config_setting_name(s);
        if (in_list(name, keys))
            continue;
        const char *best = NULL;
        size_t best_d = 3;
        for (const char *const *k = keys; *k; k++) {
            size_t d = edit_distance(name, *k);
            if (d < best_d) {
                best_d = d;
                best = *k;
            }
        }
        if (best)
            return fail(ld, s, "unknown setting '%s' (did you mean '%s'?)", name, best);
        return fail(ld, s, "unknown setting '%s' (top-level settings: gateway, storage, mqtt, "
                           "buses, profiles, profiles_*, enterprises, tariffs)",
                    name);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* public                                                              */

int config_load(const char *path, struct config **ret, char *err, size_t errlen)
{
    struct ld ld = {.path = path, .err = err, .errlen = errlen};
    struct config *cfg = NULL;
    char *text = NULL;
    config_t lc;
    int r;

    if (err && errlen)
        err[0] = '\0';
    r = preprocess(&ld, &text);
    if (r < 0)
        return r;

    config_init(&lc);
    if (!config_read_string(&lc, text)) {
        const char *f = config_error_file(&lc);
        r = fail_at(&ld, f ? f : path, config_error_line(&lc) > 0 ? config_error_line(&lc) : 1,
                    "%s", config_error_text(&lc));
        goto out_destroy;
    }

    cfg = xcalloc(1, sizeof *cfg);
    cfg->path = xstrdup(path);
    const config_setting_t *root = config_root_setting(&lc);
    if ((r = check_top_keys(&ld, root)) || (r = parse_gateway(&ld, root, cfg)) ||
        (r = parse_storage(&ld, root, cfg)) || (r = parse_mqtt(&ld, root, cfg)) ||
        (r = parse_buses(&ld, root, cfg)) || (r = parse_profiles(&ld, root, cfg)) ||
        (r = parse_enterprises(&ld, root, cfg)) || (r = parse_tariffs(&ld, root, cfg)))
        goto out_free_cfg;

    *ret = cfg;
    cfg = NULL;
    r = 0;
out_free_cfg:
    config_free(cfg);
out_destroy:
    config_destroy(&lc);
    free(text);
    return r;
}

static void free_profile(struct cfg_profile *p)
{
    for (size_t i = 0; i < p->n_points; i++)
        free(p->points[i].name);
    free(p->points);
    for (size_t i = 0; i < p->n_alarms; i++)
        free(p->alarms[i].name);
    free(p->alarms);
    free(p->name);
    free(p->file);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_buses; i++) {
        free(cfg->buses[i].name);
        free(cfg->buses[i].host);
        free(cfg->buses[i].device);
    }
    free(cfg->buses);
    for (size_t i = 0; i < cfg->n_profiles; i++)
        free_profile(&cfg->profiles[i]);
    free(cfg->profiles);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        struct cfg_enterprise *ent = &cfg->enterprises[e];
        for (size_t i = 0; i < ent->n_meters; i++)
            free(ent->meters[i].id);
        free(ent->meters);
        free(ent->id);
        free(ent->name);
    }
    free(cfg->enterprises);
    for (size_t t = 0; t < cfg->n_tariffs; t++) {
        struct cfg_tariff *tf = &cfg->tariffs[t];
        for (size_t b = 0; b < tf->n_bands; b++) {
            free(tf->bands[b].name);
            free(tf->bands[b].hours);
        }
        free(tf->bands);
        free(tf->currency);
    }
    free(cfg->tariffs);
    free(cfg->tls.ca_file);
    free(cfg->tls.cert_file);
    free(cfg->tls.key_file);
    free(cfg->mqtt_uri);
    free(cfg->mqtt_client_id);
    free(cfg->mqtt_username);
    free(cfg->mqtt_password_file);
    if (cfg->mqtt_password) {
        /* Do not leave the broker password in freed heap memory. */
        explicit_bzero(cfg->mqtt_password, strlen(cfg->mqtt_password));
        free(cfg->mqtt_password);
    }
    free(cfg->topic_prefix);
    free(cfg->storage_path);
    free(cfg->gateway_id);
    free(cfg->timezone);
    free(cfg->log_level);
    free(cfg->path);
    free(cfg);
}

struct cfg_meter *config_find_meter(const struct config *cfg, const char *ent_slash_meter)
{
    const char *slash = strchr(ent_slash_meter, '/');
    if (!slash)
        return NULL;
    size_t elen = (size_t)(slash - ent_slash_meter);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (strlen(ent->id) != elen || strncmp(ent->id, ent_slash_meter, elen) != 0)
            continue;
        for (size_t i = 0; i < ent->n_meters; i++)
            if (strcmp(ent->meters[i].id, slash + 1) == 0)
                return &ent->meters[i];
        return NULL;
    }
    return NULL;
}

double config_points_per_second(const struct config *cfg)
{
    double pps = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            pps += (double)cfg->profiles[m->profile].n_points / (m->interval > 0 ? m->interval : 1);
        }
    return pps;
}

size_t config_count_meters(const struct config *cfg)
{
    size_t n = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        n += cfg->enterprises[e].n_meters;
    return n;
}
