/*
 * cmd_meter.c - `parkgw meter ENT/METER history|ratio|replace`: reads and
 * writes a meter's history in the database (storage/meterlog.h): the PT/CT
 * ratios in force from an instant on, and replacements with the old meter's
 * final and the new one's initial dial reading. Bills split the meter's
 * periods at these records (engine/statement.c). Exit 1 for bad arguments
 * (unknown meter, bad time or number, a ratio on a meter whose billing
 * counter is not scaled by PT/CT), 2 when the database cannot be opened or
 * written.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/timeparse.h"
#include "common/util.h"
#include "config/config.h"
#include "engine/meterhist.h"
#include "storage/meterlog.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: parkgw meter [-c FILE] ENT/METER history [--format table|json]\n"
               "       parkgw meter [-c FILE] ENT/METER ratio --at T [--pt N] [--ct N]\n"
               "       parkgw meter [-c FILE] ENT/METER replace --at T --final X --initial Y\n"
               "T is " TIMEPARSE_FORMS ";\n"
               "X and Y are dial readings (before PT x CT).\n");
}

static const struct cfg_meter *find_meter(const struct config *cfg, const char *target,
                                          const struct cfg_enterprise **ret_ent)
{
    const char *slash = strchr(target, '/');
    if (!slash)
        return NULL;
    size_t el = (size_t)(slash - target);
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        const struct cfg_enterprise *ent = &cfg->enterprises[e];
        if (strlen(ent->id) != el || strncmp(ent->id, target, el) != 0)
            continue;
        for (size_t i = 0; i < ent->n_meters; i++)
            if (strcmp(ent->meters[i].id, slash + 1) == 0) {
                *ret_ent = ent;
                return &ent->meters[i];
            }
    }
    return NULL;
}

static int number_arg(const char *opt, const char *s, bool positive, double *ret)
{
    double v;
    if (parse_double(s, &v) < 0 || !isfinite(v) || fabs(v) > 1e15 || (positive && !(v > 0)) ||
        (!positive && v < 0)) {
        fprintf(stderr, "parkgw meter: bad %s '%s' (a %s decimal number)\n", opt, s,
                positive ? "positive" : "non-negative");
        return -EINVAL;
    }
    *ret = v;
    return 0;
}

static void fmt_ts(int64_t ts, char *buf, size_t len)
{
    if (ts == 0)
        snprintf(buf, len, "(since ever)");
    else
        timeparse_format(ts, false, buf, len);
}

static int print_history(const struct config *cfg, const struct cfg_enterprise *ent,
                         const struct cfg_meter *m, const struct meterlog_list *h, bool json)
{
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    const struct cfg_point *bp = &prof->points[profile_billing_point(prof)];
    char when[64], rec[64];
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < h->n; i++) {
            const struct meterlog_rec *r = &h->v[i];
            json_t *o = json_object();
            timeparse_format(r->ts, false, when, sizeof(when));
            json_object_set_new(o, "ts", json_integer(r->ts));
            json_object_set_new(o, "time", json_string(when));
            json_object_set_new(o, "kind", json_string(meterlog_kind_name(r->kind)));
            json_object_set_new(o, "pt_ratio", json_real(r->pt));
            json_object_set_new(o, "ct_ratio", json_real(r->ct));
            json_object_set_new(o, "multiplier", json_real(point_ratio_factor(bp, r->pt, r->ct)));
            json_object_set_new(o, "final", r->kind == METERLOG_REPLACE ? json_real(r->final_dial)
                                                                        : json_null());
            json_object_set_new(o, "initial", r->kind == METERLOG_REPLACE
                                                  ? json_real(r->initial_dial)
                                                  : json_null());
            json_object_set_new(o, "source", json_string(r->source));
            timeparse_format(r->recorded, false, rec, sizeof(rec));
            json_object_set_new(o, "recorded", json_string(rec));
            json_array_append_new(arr, o);
        }
        json_t *root = json_object();
        json_object_set_new(root, "enterprise", json_string(ent->id));
        json_object_set_new(root, "meter", json_string(m->id));
        json_object_set_new(root, "records", arr);
        int r = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
        return r < 0 ? -EIO : 0;
    }
    printf("%-29s  %-8s  %10s  %10s  %10s  %14s  %14s  %-7s  %s\n", "IN FORCE FROM", "KIND",
           "PT", "CT", "MULTIPLIER", "FINAL", "INITIAL", "SOURCE", "RECORDED");
    for (size_t i = 0; i < h->n; i++) {
        const struct meterlog_rec *r = &h->v[i];
        char fin[32] = "", ini[32] = "";
        fmt_ts(r->ts, when, sizeof(when));
        timeparse_format(r->recorded, false, rec, sizeof(rec));
        if (r->kind == METERLOG_REPLACE) {
            snprintf(fin, sizeof(fin), "%.3f", r->final_dial);
            snprintf(ini, sizeof(ini), "%.3f", r->initial_dial);
        }
        printf("%-29s  %-8s  %10g  %10g  %10g  %14s  %14s  %-7s  %s\n", when,
               meterlog_kind_name(r->kind), r->pt, r->ct, point_ratio_factor(bp, r->pt, r->ct),
               fin, ini, r->source, rec);
    }
    if (h->n == 0)
        printf("(no records: the config's PT %g x CT %g are in force)\n", m->pt_ratio,
               m->ct_ratio);
    return 0;
}

int cmd_meter(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"at", required_argument, NULL, 'a'},
        {"pt", required_argument, NULL, 'p'},     {"ct", required_argument, NULL, 't'},
        {"final", required_argument, NULL, 'f'},  {"initial", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *at_arg = NULL, *pt_arg = NULL, *ct_arg = NULL, *fin_arg = NULL,
               *ini_arg = NULL, *fmt = "table";
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct meterlog_list h = {0};
    char err[512];
    int c, ret = 1, r;

    optind = 0;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfg_path = optarg; break;
        case 'a': at_arg = optarg; break;
        case 'p': pt_arg = optarg; break;
        case 't': ct_arg = optarg; break;
        case 'f': fin_arg = optarg; break;
        case 'i': ini_arg = optarg; break;
        case 'F': fmt = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return 1;
    }
    const char *target = argv[optind], *action = argv[optind + 1];
    bool history = !strcmp(action, "history"), ratio = !strcmp(action, "ratio"),
         replace = !strcmp(action, "replace");
    if (!history && !ratio && !replace) {
        fprintf(stderr, "parkgw meter: unknown action '%s' (history, ratio, replace)\n", action);
        return 1;
    }
    if (history && strcmp(fmt, "table") != 0 && strcmp(fmt, "json") != 0) {
        fprintf(stderr, "parkgw meter: unknown format '%s' (table, json)\n", fmt);
        return 1;
    }
    if ((ratio || replace) && !at_arg) {
        fprintf(stderr, "parkgw meter: %s needs --at\n", action);
        return 1;
    }
    if (ratio && !pt_arg && !ct_arg) {
        fprintf(stderr, "parkgw meter: ratio needs --pt, --ct or both\n");
        return 1;
    }
    if (replace && (!fin_arg || !ini_arg)) {
        fprintf(stderr, "parkgw meter: replace needs --final and --initial\n");
        return 1;
    }
    if ((history && (at_arg || pt_arg || ct_arg || fin_arg || ini_arg)) ||
        (ratio && (fin_arg || ini_arg)) || (replace && (pt_arg || ct_arg))) {
        fprintf(stderr, "parkgw meter: option not valid for '%s'\n", action);
        return 1;
    }

    cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    const struct cfg_enterprise *ent = NULL;
    const struct cfg_meter *m = find_meter(cfg, target, &ent);
    if (!m) {
        fprintf(stderr, "parkgw meter: no meter '%s' in the configuration (ENTERPRISE/METER)\n",
                target);
        goto out_free_cfg;
    }
    int64_t at = 0;
    double pt = 0, ct = 0, fin = 0, ini = 0;
    if (at_arg && cli_parse_time("meter", "--at", at_arg, cfg, &at) < 0)
        goto out_free_cfg;
    if ((pt_arg && number_arg("--pt", pt_arg, true, &pt) < 0) ||
        (ct_arg && number_arg("--ct", ct_arg, true, &ct) < 0) ||
        (fin_arg && number_arg("--final", fin_arg, false, &fin) < 0) ||
        (ini_arg && number_arg("--initial", ini_arg, false, &ini) < 0))
        goto out_free_cfg;
    if (ratio && !meterhist_scaled(cfg, m)) {
        fprintf(stderr,
                "parkgw meter: %s's billing counter (profile %s) is not scaled by PT/CT: "
                "no ratio to record\n",
                target, cfg->profiles[m->profile].name);
        goto out_free_cfg;
    }

    if (history) {
        if (cli_open_store("meter", cfg, &st) < 0) {
            ret = 2;
            goto out_free_cfg;
        }
    } else {
        r = store_open(cfg->storage_path, false, &st, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "parkgw meter: %s\n", err);
            ret = 2;
            goto out_free_cfg;
        }
    }
    sqlite3 *db = store_db(st);
    if (!history && (r = meterhist_ensure_initial(db, ent, m)) < 0) {
        fprintf(stderr, "parkgw meter: writing the history: %s\n", strerror(-r));
        ret = 2;
        goto out_close;
    }
    if (meterlog_read(db, ent->id, m->id, &h) < 0) {
        fprintf(stderr, "parkgw meter: reading the history: %s\n", store_errmsg(st));
        ret = 2;
        goto out_close;
    }
    if (history) {
        ret = print_history(cfg, ent, m, &h, !strcmp(fmt, "json")) < 0 ? 2 : 0;
        goto out_close;
    }

    /* The ratios in force at 'at' (a replacement keeps them). */
    const struct meterlog_rec *cur = meterlog_at(&h, at);
    struct meterlog_rec rec = {.ts = at,
                               .kind = ratio ? METERLOG_RATIO : METERLOG_REPLACE,
                               .pt = cur ? cur->pt : m->pt_ratio,
                               .ct = cur ? cur->ct : m->ct_ratio,
                               .final_dial = fin,
                               .initial_dial = ini};
    snprintf(rec.source, sizeof(rec.source), "meter");
    if (ratio) {
        if (pt_arg)
            rec.pt = pt;
        if (ct_arg)
            rec.ct = ct;
        if (cur && cur->pt == rec.pt && cur->ct == rec.ct) {
            printf("PT %g x CT %g already in force at %s: nothing recorded\n", rec.pt, rec.ct,
                   at_arg);
            ret = 0;
            goto out_close;
        }
    }
    for (size_t i = 0; i < h.n; i++)
        if (h.v[i].ts > at && h.v[i].kind != METERLOG_REPLACE && ratio)
            fprintf(stderr,
                    "parkgw meter: note: a later record (%s) sets the ratios again from its "
                    "instant on\n",
                    meterlog_kind_name(h.v[i].kind));
    int64_t id;
    r = meterlog_add(db, ent->id, m->id, &rec, &id);
    if (r < 0) {
        fprintf(stderr, "parkgw meter: writing the history: %s\n", strerror(-r));
        ret = 2;
        goto out_close;
    }
    char when[64];
    timeparse_format(at, false, when, sizeof(when));
    if (ratio)
        printf("recorded: %s PT %g x CT %g from %s on\n", target, rec.pt, rec.ct, when);
    else
        printf("recorded: %s replaced at %s (final %.3f, initial %.3f)\n", target, when, fin,
               ini);
    if (ratio && (rec.pt != m->pt_ratio || rec.ct != m->ct_ratio))
        printf("note: the config still says PT %g x CT %g; set it to PT %g x CT %g before the "
               "next reload, or the reload records the config's ratios again\n",
               m->pt_ratio, m->ct_ratio, rec.pt, rec.ct);
    ret = 0;
out_close:
    meterlog_list_free(&h);
    store_close(st);
out_free_cfg:
    config_free(cfg);
    return ret;
}
