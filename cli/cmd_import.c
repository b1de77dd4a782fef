/*
 * cmd_import.c - `parkgw import --csv FILE`: loads manual readings or a
 * meter's stored load profile. Every row (enterprise,meter,point,ts,value) is
 * validated against the config first, so a bad row imports nothing. The
 * samples then go in transactions of about IMPORT_TXN_MS each with a pause
 * between them, so a daemon writing the same database never waits long for
 * the write lock (rollups commit with their samples). ts takes every form of common/timeparse.h; a
 * value is a plain decimal number within +-IMPORT_MAX_ABS. Rows the store
 * already holds (same point and time) are reported apart from the new ones.
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
#include "common/timeparse.h"
#include "common/util.h"
#include "storage/store.h"

/* Rows held in memory for one all-or-nothing import. */
#define IMPORT_MAX_ROWS 20000000

/* Largest magnitude accepted for a reading: doubles hold 15 significant
 * digits exactly, no meter register shows more, and sums and prices of such
 * values stay finite (a 1.7e308 reading would print inf in a statement). */
#define IMPORT_MAX_ABS 1e15

/* A plain decimal number: [+-]digits[.digits][e[+-]digits], at least one
 * digit before the exponent; no hex, inf, nan or blanks (strtod takes all). */
static bool is_decimal(const char *s)
{
    bool mant = false;
    if (*s == '+' || *s == '-')
        s++;
    for (; isdigit((unsigned char)*s); s++)
        mant = true;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            mant = true;
    if (!mant)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* A row being imported: the sample, and its row's place in the file so that
 * of two rows for the same point and time the first one wins. */
struct irow {
    uint32_t point;
    uint32_t seq;
    int64_t ts;
    double value;
};

/* (point, ts) order: each point's readings reach the rollups as one run. */
static int cmp_irow(const void *x, const void *y)
{
    const struct irow *a = x, *b = y;
    if (a->point != b->point)
        return a->point < b->point ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Marks the rows of one point (sorted by ts, no two alike) that the store
 * already holds, merging them with a scan of their time span. */
struct present {
    struct irow *r;
    size_t n, i, found;
};

static int mark_present(void *ud, int64_t ts, double value)
{
    struct present *p = ud;
    UNUSED(value);
    while (p->i < p->n && p->r[p->i].ts < ts)
        p->i++;
    if (p->i == p->n)
        return 1;
    if (p->r[p->i].ts == ts) {
        p->r[p->i].seq = UINT32_MAX;
        p->found++;
        p->i++;
    }
    return 0;
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

static void usage(FILE *f)
{
    fprintf(f, "usage: parkgw import [-c FILE] --csv FILE\n"
               "rows: enterprise,meter,point,ts,value; a header row is allowed\n"
               "ts is " TIMEPARSE_FORMS "\n");
}


/* Transactions of about this long (the batch size adapts to it), each
 * followed by a pause, so the daemon's writer, whose SQLite busy handler
 * retries at most every 100 ms, takes the write lock between two of them:
 * it waits at most about IMPORT_TXN_MS + a retry. */
#define IMPORT_TXN_MS 250
#define IMPORT_PAUSE_MS 120
#define IMPORT_BATCH_MIN 1000
#define IMPORT_BATCH_MAX 1000000

/* Writes samples[0..n) in bounded transactions; *ret_done of them are
 * committed whatever happens. 0 or the store's -errno. */
static int import_bounded(struct store *st, const struct sample *samples, size_t n,
                          size_t *ret_done)
{
    size_t done = 0, batch = 10000;
    int r = 0;
    while (done < n) {
        size_t k = n - done < batch ? n - done : batch;
        int64_t t0 = now_mono_ms();
        r = store_insert(st, samples + done, k);
        if (r < 0)
            break;
        done += k;
        int64_t dt = now_mono_ms() - t0;
        if (dt < IMPORT_TXN_MS / 2 && batch < IMPORT_BATCH_MAX)
            batch *= 2;
        else if (dt > IMPORT_TXN_MS && batch > IMPORT_BATCH_MIN)
            batch /= 2;
        if (done < n)
            sleep_ms(IMPORT_PAUSE_MS);
    }
    *ret_done = done;
    return r;
}

int cmd_import(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"csv", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *csv = NULL;
    int c, rc = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'f') {
            csv = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            return 1;
        }
    }
    if (!csv || optind != argc) {
        usage(stderr);
        return 1;
    }
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    FILE *in = strcmp(csv, "-") == 0 ? stdin : fopen(csv, "re");
    struct store *st = NULL;
    struct irow *rows = NULL;
    struct sample *fresh = NULL;
    char **keys = NULL;
    size_t n = 0, cap = 0, kcap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    char err[512];

    if (!in) {
        fprintf(stderr, "parkgw import: %s: %s\n", csv, strerror(errno));
        goto out;
    }
    /* Pass 1: validate every row; nothing is written unless all are good. */
    while ((len = getline(&line, &lcap, in)) > 0) {
        lineno++;
        char *text = line;
        /* A spreadsheet's UTF-8 byte-order mark before the first row. */
        if (lineno == 1 && len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
            text += 3;
            len -= 3;
        }
        if (memchr(text, '\0', (size_t)len)) {
            fprintf(stderr, "%s:%ld: a NUL byte in the row\n", csv, lineno);
            goto out;
        }
        text[strcspn(text, "\r\n")] = 0;
        if (!*text || *text == '#')
            continue;
        char *f[6];
        int nf = split(text, f, 6);
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
        if (profile_find_point(prof, f[2]) < 0) {
            fprintf(stderr, "%s:%ld: meter %s has no point '%s' (profile %s)\n", csv, lineno, em,
                    f[2], prof->name);
            goto out;
        }
        int64_t ts;
        int r = timeparse(f[3], &ts);
        if (r < 0) {
            fprintf(stderr, "%s:%ld: bad timestamp '%s': %s\n  use %s (time zone %s)\n", csv,
                    lineno, f[3], timeparse_why(r), TIMEPARSE_FORMS,
                    cfg->timezone ? cfg->timezone : "UTC");
            goto out;
        }
        double v;
        if (!is_decimal(f[4]) || parse_double(f[4], &v) < 0 || !isfinite(v) ||
            fabs(v) > IMPORT_MAX_ABS) {
            fprintf(stderr, "%s:%ld: bad value '%s' (a decimal number within +-%g)\n", csv,
                    lineno, f[4], IMPORT_MAX_ABS);
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
        rows[n].seq = (uint32_t)n;
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
        enum point_kind kind = prof->points[profile_find_point(prof, pt)].kind;
        if (store_point_id(st, ent, met, pt, m->utility, kind, &rows[i].point) < 0) {
            fprintf(stderr, "parkgw import: cannot register point %s/%s\n", em, pt);
            goto out;
        }
    }

    /* (point, ts) order: each point's readings reach the rollups as one run.
     * A row repeating an earlier row's point and time, or a reading the store
     * already holds, is already present: it is counted, not written (the
     * store would ignore it; a concurrent daemon writing the same instant
     * between this count and the insert is counted as imported). */
    qsort(rows, n, sizeof(*rows), cmp_irow);
    size_t uniq = 0, present = 0;
    for (size_t i = 0; i < n; i++)
        if (uniq == 0 || rows[i].point != rows[uniq - 1].point ||
            rows[i].ts != rows[uniq - 1].ts)
            rows[uniq++] = rows[i];
    present = n - uniq;
    for (size_t i = 0; i < uniq;) {
        size_t j = i;
        while (j < uniq && rows[j].point == rows[i].point)
            j++;
        struct present p = {.r = rows + i, .n = j - i};
        if (store_scan(st, rows[i].point, rows[i].ts, rows[j - 1].ts + 1, mark_present, &p) <
            0) {
            fprintf(stderr, "parkgw import: nothing imported: reading the store: %s\n",
                    store_errmsg(st));
            goto out;
        }
        present += p.found;
        i = j;
    }
    fresh = xcalloc(uniq + 1, sizeof(*fresh));
    size_t nf = 0;
    for (size_t i = 0; i < uniq; i++)
        if (rows[i].seq != UINT32_MAX)
            fresh[nf++] = (struct sample){
                .point = rows[i].point, .ts = rows[i].ts, .value = rows[i].value};
    size_t done = 0;
    int r = import_bounded(st, fresh, nf, &done);
    if (r < 0 && done == 0) {
        fprintf(stderr, "parkgw import: nothing imported: %s\n",
                r == -ENOSPC ? "disk full" : "database error");
        goto out;
    }
    if (r < 0) {
        fprintf(stderr,
                "parkgw import: stopped after %zu of %zu new readings: %s; those stay in %s, "
                "and running the same import again adds the rest (readings already present "
                "are skipped)\n",
                done, nf, r == -ENOSPC ? "disk full" : "database error", cfg->storage_path);
        goto out;
    }
    printf("imported %zu readings from %s into %s, %zu already present\n", nf, csv,
           cfg->storage_path, present);
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(rows);
    free(fresh);
    free(line);
    if (in && in != stdin)
        fclose(in);
    store_close(st);
    config_free(cfg);
    return rc;
}
