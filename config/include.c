/*
 * include.c - reading the config file and resolving its @include lines.
 *
 * libconfig 1.5 resolves every @include against one fixed include directory
 * and has no hook to change that. So the loader reads the main file itself
 * and resolves each `@include "X"` line to the first readable of: X when
 * absolute; the config file's directory/X; then $PARKGW_PROFILE_DIR/X and
 * $PARKGW_PROFILE_DIR/basename(X) (the environment variable, else the
 * installed profile directory from version.h). It rewrites the quoted path
 * with the path found (line numbers are unchanged), then lets libconfig parse
 * the text, so every setting still carries its own file and line.
 * `@include "profiles/generic-water.cfg"` thus finds a local copy next to the
 * config first, the installed profile otherwise. An included file may not
 * @include again (libconfig 1.5 would resolve it against the working
 * directory, which is never what was meant), and that is reported.
 */
#include "config/config_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "version.h"

#define MAX_CONFIG_BYTES (4 * 1024 * 1024)

bool cfg_regular_readable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

int cfg_slurp(const char *path, size_t max, char **ret, size_t *ret_len)
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
        return cfg_regular_readable(inc) ? xstrdup(inc) : NULL;

    const char *slash = strrchr(main_path, '/');
    int dirlen = slash ? (int)(slash - main_path + 1) : 0;
    char *cand = xasprintf("%.*s%s", dirlen, main_path, inc);
    if (cfg_regular_readable(cand))
        return cand;
    free(cand);

    const char *pd = profile_dir();
    cand = xasprintf("%s/%s", pd, inc);
    if (cfg_regular_readable(cand))
        return cand;
    free(cand);

    const char *base = strrchr(inc, '/');
    if (base) {
        cand = xasprintf("%s/%s", pd, base + 1);
        if (cfg_regular_readable(cand))
            return cand;
        free(cand);
    }
    return NULL;
}

/* Rejects @include inside an included file (see the top of this file). */
static int check_no_nested_include(struct ld *ld, const char *file)
{
    char *text;
    int r = cfg_slurp(file, MAX_CONFIG_BYTES, &text, NULL);
    if (r < 0)
        return cfg_fail_at(ld, file, 1, "cannot read included file: %s", strerror(-r));
    int line = 1;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t q0, q1;
        if (include_line(p, len, &q0, &q1)) {
            r = cfg_fail_at(ld, file, line,
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

int cfg_preprocess(struct ld *ld, char **ret)
{
    char *text;
    size_t len;
    int r = cfg_slurp(ld->path, MAX_CONFIG_BYTES, &text, &len);
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
                r = cfg_fail_at(ld, ld->path, line,
                                "cannot find include file \"%s\" (looked next to the config and in "
                                "%s)",
                                inc, profile_dir());
                free(inc);
                goto out_free;
            }
            free(inc);
            if (strchr(found, '"') || strchr(found, '\\')) {
                r = cfg_fail_at(ld, ld->path, line, "include path \"%s\" cannot be quoted", found);
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
