/*
 * cmd_bill.c - `parkgw bill`: reads the options and prints the statement
 * through engine/statement_out.c (computed by engine/statement.c). Nothing is
 * printed until every row is computed, so a failure leaves no half
 * statement. Exit 1 for bad options, config, dates, unknown
 * enterprise/utility; exit 2 when the store cannot be opened (missing
 * database included) or read, or stdout cannot be written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "engine/statement_out.h"
#include "common/timeparse.h"
#include "common/utility.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: parkgw bill [-c FILE] --from DATE --to DATE [--enterprise ID]\n"
               "                   [--utility electricity|water|gas|wastewater]\n"
               "                   [--format table|csv|json]\n"
               "DATE is " TIMEPARSE_FORMS ";\n"
               "--from is inclusive, --to exclusive.\n");
}

int cmd_bill(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"enterprise", required_argument, NULL, 'e'},
        {"utility", required_argument, NULL, 'u'}, {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *from_arg = NULL, *to_arg = NULL, *util_arg = NULL, *fmt_arg = "table";
    struct statement_request req = {0};
    enum statement_format format;
    struct config *cfg = NULL;
    struct store *st = NULL;
    char err[512];
    int c, ret = 1;

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
        case 'e':
            req.enterprise = optarg;
            break;
        case 'u':
            util_arg = optarg;
            break;
        case 'F':
            fmt_arg = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parkgw bill: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    if (!from_arg || !to_arg) {
        fprintf(stderr, "parkgw bill: --from and --to are required\n");
        usage(stderr);
        return 1;
    }
    if (!strcmp(fmt_arg, "table")) {
        format = STATEMENT_TABLE;
    } else if (!strcmp(fmt_arg, "csv")) {
        format = STATEMENT_CSV;
    } else if (!strcmp(fmt_arg, "json")) {
        format = STATEMENT_JSON;
    } else {
        fprintf(stderr, "parkgw bill: unknown format '%s' (table, csv, json)\n", fmt_arg);
        return 1;
    }
    if (util_arg) {
        if (utility_parse(util_arg, &req.utility) < 0) {
            fprintf(stderr,
                    "parkgw bill: unknown utility '%s' (electricity, water, gas, wastewater)\n",
                    util_arg);
            return 1;
        }
        req.has_utility = true;
    }

    if (cli_load_period("bill", cfg_path, from_arg, to_arg, &cfg, &req.from, &req.to) < 0)
        return 1;
    if (req.enterprise && !statement_has_enterprise(cfg, req.enterprise)) {
        fprintf(stderr, "parkgw bill: unknown enterprise '%s'\n", req.enterprise);
        goto out_free_cfg;
    }

    if (cli_open_store("bill", cfg, &st) < 0) {
        ret = 2;
        goto out_free_cfg;
    }
    int r = statement_out_print(stdout, cfg, st, &req, format, err, sizeof(err));
    ret = cli_exit_code("bill", r, err);
    store_close(st);
out_free_cfg:
    config_free(cfg);
    return ret;
}
