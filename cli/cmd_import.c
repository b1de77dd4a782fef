/*
 * cmd_import.c - `parkgw import --csv FILE`: loads manual readings or a
 * meter's stored load profile. Every row (enterprise,meter,point,ts,value) is
 * validated against the config first; the samples then go in one transaction,
 * so the import is all or nothing, rollups included (store_insert keeps them
 * in the same transaction). ts is ISO 8601 with an offset (or Z), or Unix
 * milliseconds.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "cli/cli.h"
#include "common/util.h"
#include "storage/store.h"

/* Rows held in memory for one all-or-nothing import. */
#define IMPORT_MAX_ROWS 20000000

/* "YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+HH:MM|-HH:MM)" or Unix ms. 0 or -EINVAL. */
static int parse_ts(const char *s, int64_t *ret)
{
    int64_t ms;
    if (parse_int64(s, &ms) == 0) {
        *ret = ms;
        return 0;
    }
    int Y, M, D, h, m, n = 0;
    double sec = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[T ]%2d:%2d%n", &Y, &M, &D, &h, &m, &n) != 5 || n == 0)
        return -EINVAL;
    const char *p = s + n;
    if (*p == ':') {
        char *end;
        sec = strtod(p + 1, &end);
        if (end == p + 1 || sec < 0 || sec >= 61)
            return -EINVAL;
        p = end;
    }
    int off_min;
    if (*p == 'Z' && p[1] == 0) {
        off_min = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off_min = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0');
        if (*p == '-')
            off_min = -off_min;
    } else {
        return -EINVAL; /* an offset is required: local time would be ambiguous */
    }
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59)
        return -EINVAL;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m};
    time_t t = timegm(&tm);
    if (tm.tm_mday != D)
        return -EINVAL; /* 2026-02-30 */
    *ret = ((int64_t)t - (int64_t)off_min * 60) * 1000 + (int64_t)llround(sec * 1000.0);
    return 0;
}

/* (point, ts) order: each point's readings reach the rollups as one run. */
static int cmp_sample(const void *x, const void *y)
{
    const struct sample *a = x, *b = y;
    if (a->point != b->point)
        return a->point < b->point ? -1 : 1;
    return (a->ts > b->ts) - (a->ts < b->ts);
}

/* Splits a CSV line of plain fields (no quotes needed for ids and numbers). */
static int split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

int cmd_import(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"csv", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *csv = NULL;
    int c, rc = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f')
            csv = optarg;
        else if (c == 'h') {
            printf("usage: parkgw import [-c FILE] --csv FILE\n"
                   "rows: enterprise,meter,point,ts,value (ts ISO 8601 with offset, or Unix ms);\n"
                   "a header row is allowed\n");
            return 0;
        } else
            return 1;
    }
    if (!csv || optind != argc) {
        fprintf(stderr, "usage: parkgw import [-c FILE] --csv FILE\n");
        return 1;
    }
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    FILE *in = strcmp(csv, "-") == 0 ? stdin : fopen(csv, "re");
    struct store *st = NULL;
    struct sample *rows = NULL;
    char **keys = NULL;
    size_t n = 0, cap = 0, kcap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    char err[512];

    if (!in) {
        fprintf(stderr, "parkgw import: %s: %s\n", csv, strerror(errno));
        goto out;
    }
    /* Pass 1: validate every row; nothing is written unless all are good. */
    while (getline(&line, &lcap, in) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!*line || *line == '#')
            continue;
        char *f[6];
        int nf = split(line, f, 6);
        if (lineno == 1 && nf == 5 && strcmp(f[0], "enterprise") == 0)
            continue;
        if (nf != 5) {
            fprintf(stderr, "%s:%ld: expected 5 fields enterprise,meter,point,ts,value\n", csv,
                    lineno);
            goto out;
        }
        char em[256];
        snprintf(em, sizeof(em), "%s/%s", f[0], f[1]);
        const struct cfg_meter *m = config_find_meter(cfg, em);
        if (!m) {
            fprintf(stderr, "%s:%ld: no meter '%s' in %s\n", csv, lineno, em, cfg->path);
            goto out;
        }
        const struct cfg_profile *prof = &cfg->profiles[m->profile];
        size_t pi = 0;
        while (pi < prof->n_points && strcmp(prof->points[pi].name, f[2]) != 0)
            pi++;
        if (pi == prof->n_points) {
            fprintf(stderr, "%s:%ld: meter %s has no point '%s' (profile %s)\n", csv, lineno, em,
                    f[2], prof->name);
            goto out;
        }
        int64_t ts;
        if (parse_ts(f[3], &ts) < 0) {
            fprintf(stderr, "%s:%ld: bad timestamp '%s' (ISO 8601 with offset, or Unix ms)\n",
                    csv, lineno, f[3]);
            goto out;
        }
        double v;
        if (parse_double(f[4], &v) < 0 || !isfinite(v)) {
            fprintf(stderr, "%s:%ld: bad value '%s'\n", csv, lineno, f[4]);
            goto out;
        }
        if (n >= IMPORT_MAX_ROWS) {
            fprintf(stderr, "%s:%ld: more than %d rows; split the file\n", csv, lineno,
                    IMPORT_MAX_ROWS);
            goto out;
        }
        rows = xgrow(rows, &cap, n + 1, sizeof(*rows));
        keys = xgrow(keys, &kcap, n + 1, sizeof(*keys));
        keys[n] = xasprintf("%s\t%s\t%s", f[0], f[1], f[2]);
        rows[n].ts = ts;
        rows[n].value = v;
        rows[n].point = 0; /* assigned in pass 2 */
        n++;
    }
    if (ferror(in)) {
        fprintf(stderr, "parkgw import: %s: read error\n", csv);
        goto out;
    }
    if (n == 0) {
        printf("no readings in %s; nothing imported\n", csv);
        rc = 0;
        goto out;
    }
    rc = 2;
    if (store_open(cfg->storage_path, false, &st, err, sizeof(err)) < 0) {
        fprintf(stderr, "parkgw import: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *ent = keys[i], *met = strchr(ent, '\t'), *pt;
        *met++ = 0;
        pt = strchr(met, '\t');
        *pt++ = 0;
        char em[256];
        snprintf(em, sizeof(em), "%s/%s", ent, met);
        const struct cfg_meter *m = config_find_meter(cfg, em);
        const struct cfg_profile *prof = &cfg->profiles[m->profile];
        enum point_kind kind = KIND_GAUGE;
        for (size_t k = 0; k < prof->n_points; k++)
            if (strcmp(prof->points[k].name, pt) == 0)
                kind = prof->points[k].kind;
        if (store_point_id(st, ent, met, pt, m->utility, kind, &rows[i].point) < 0) {
            fprintf(stderr, "parkgw import: cannot register point %s/%s\n", em, pt);
            goto out;
        }
    }
    qsort(rows, n, sizeof(*rows), cmp_sample);
    int r = store_insert(st, rows, n);
    if (r < 0) {
        fprintf(stderr, "parkgw import: nothing imported: %s\n",
                r == -ENOSPC ? "disk full" : "database error");
        goto out;
    }
    printf("imported %zu readings from %s into %s\n", n, csv, cfg->storage_path);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(rows);
    free(line);
    if (in && in != stdin)
        fclose(in);
    store_close(st);
    config_free(cfg);
    return rc;
}
