/*
 * cmd_query.c - `parkgw query`: reads the options and the target, then
 * writes the export through query.c (docs/CLI.md "parkgw query").
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/query.h"
#include "common/timeparse.h"
#include "common/util.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: parkgw query [-c FILE] ENTERPRISE/METER[/POINT] (--from T --to T | --month YYYY-MM)\n"
            "                    [--step raw|1m|15m|1h|1d] [--format csv|json]\n"
            "T is " TIMEPARSE_FORMS ",\nor " TIMEPARSE_WORDS ".\n");
}

static int parse_step(const char *s, int *ret)
{
    static const struct {
        const char *name;
        int s;
    } steps[] = {{"raw", 0}, {"1m", 60}, {"15m", 900}, {"1h", 3600}, {"1d", 86400}};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++)
        if (strcmp(s, steps[i].name) == 0) {
            *ret = steps[i].s;
            return 0;
        }
    return -EINVAL;
}

int cmd_query(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},     {"step", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
        {"month", required_argument, NULL, 'm'},  {NULL, 0, NULL, 0},
    };
    const char *from_arg = NULL, *to_arg = NULL, *month_arg = NULL, *target = NULL;
    int step_s = 0, c, ret = 1;
    bool json = false;
    struct config *cfg = NULL;
    struct store *st = NULL;
    char err[512];
    int64_t from, to;

    optind = 0; /* restart getopt: main may have used it */
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'f':
            from_arg = optarg;
            break;
        case 't':
            to_arg = optarg;
            break;
        case 'm':
            month_arg = optarg;
            break;
        case 's':
            if (parse_step(optarg, &step_s) < 0) {
                fprintf(stderr, "parkgw query: unknown step '%s' (raw, 1m, 15m, 1h, 1d)\n",
                        optarg);
                return 1;
            }
            break;
        case 'F':
            if (strcmp(optarg, "csv") == 0) {
                json = false;
            } else if (strcmp(optarg, "json") == 0) {
                json = true;
            } else {
                fprintf(stderr, "parkgw query: unknown format '%s' (csv, json)\n", optarg);
                return 1;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "parkgw query: %s\n",
                optind >= argc ? "ENTERPRISE/METER[/POINT] is required"
                               : "one ENTERPRISE/METER[/POINT] only");
        usage(stderr);
        return 1;
    }
    target = argv[optind];

    if (cli_load_period("query", cfg_path, from_arg, to_arg, month_arg, &cfg, &from, &to) < 0) {
        return 1;
    }
    /* Check the target before touching the store, so a typo is exit 1. */
    char *em = xstrdup(target), *s1 = strchr(em, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (s2)
        *s2 = '\0';
    const struct cfg_meter *m = config_find_meter(cfg, em);
    const char *point = s2 ? target + (s2 - em) + 1 : NULL;
    free(em);
    if (!m) {
        fprintf(stderr, "parkgw query: unknown meter '%s' (ENTERPRISE/METER[/POINT])\n",
                target);
        goto out_free_cfg;
    }
    if (point) {
        /* An unknown point is answered with the ones the meter has. */
        const struct cfg_profile *prof = &cfg->profiles[m->profile];
        if (profile_find_point(prof, point) < 0) {
            fprintf(stderr, "parkgw query: meter %s/%s has no point '%s'; its points (profile %s):\n",
                    m->enterprise->id, m->id, point, prof->name);
            for (size_t i = 0; i < prof->n_points; i++)
                fprintf(stderr, "  %s%s\n", prof->points[i].name,
                        prof->points[i].billing ? "  (billing)" : "");
            goto out_free_cfg;
        }
    }

    if (cli_open_store("query", cfg, &st) < 0) {
        ret = 2;
        goto out_free_cfg;
    }
    int r = query_write(stdout, cfg, st, target, from, to, step_s, json, err, sizeof(err));
    ret = cli_exit_code("query", r, err);
    store_close(st);
out_free_cfg:
    config_free(cfg);
    return ret;
}
