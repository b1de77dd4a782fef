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
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "engine/statement_html.h"
#include "engine/statement_out.h"
#include "common/timeparse.h"
#include "common/util.h"
#include "common/utility.h"
#include "storage/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: parkgw bill [-c FILE] (--from DATE --to DATE | --month YYYY-MM)\n"
               "                   [--enterprise ID|NAME] [--utility electricity|water|gas|wastewater]\n"
               "                   [--format table|csv|json] [--excel] [--close]\n"
               "       parkgw bill ... --format html --out DIR\n"
               "DATE is " TIMEPARSE_FORMS ",\nor " TIMEPARSE_WORDS ";\n"
               "--from is inclusive, --to exclusive; --month is the whole local month.\n"
               "--enterprise takes the enterprise's id or its registered name. --excel starts\n"
               "the CSV with a UTF-8 byte-order mark (spreadsheets then read the Chinese\n"
               "names); html writes\n"
               "DIR/index.html and one DIR/ENTERPRISE.html per enterprise. --close stores\n"
               "the whole park's statement of the period in the database: later bills of\n"
               "it print it unchanged, changes show as adjustments in the next period.\n");
}

/* Writes one page through a temporary file renamed into place, so that a
 * failure never leaves a half page under the final name. */
static int write_page(const char *dir, const char *file, const struct config *cfg,
                      const struct statement *s, size_t e, bool index, char *err, size_t errlen)
{
    char *tmp = xasprintf("%s/.%s.tmp", dir, file), *dst = xasprintf("%s/%s", dir, file);
    int r = -EIO;
    FILE *f = fopen(tmp, "we");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out_free;
    }
    r = index ? statement_html_index(f, cfg, s, NULL) : statement_html_page(f, cfg, s, e);
    if (fclose(f) != 0 || r < 0) {
        r = -EIO;
        snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out_free;
    }
    if (rename(tmp, dst) < 0) {
        r = -EIO;
        snprintf(err, errlen, "%s: %s", dst, strerror(errno));
        unlink(tmp);
    }
out_free:
    free(tmp);
    free(dst);
    return r;
}

/* --format html: DIR/index.html and a page per enterprise with rows. */
static int write_html(const char *dir, const struct config *cfg, struct store *st,
                      struct statement_request *req, char *err, size_t errlen)
{
    struct statement *s;
    char file[256];
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -EIO;
    }
    req->daily = true;
    int r = statement_build(cfg, st, req, &s, err, errlen);
    if (r < 0)
        return r;
    for (size_t e = 0; e < cfg->n_enterprises && r == 0; e++)
        if (statement_html_has(s, e))
            r = write_page(dir, statement_html_file(cfg, e, file, sizeof(file)), cfg, s, e, false,
                           err, errlen);
    if (r == 0)
        r = write_page(dir, "index.html", cfg, s, 0, true, err, errlen);
    statement_free(s);
    return r;
}

int cmd_bill(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},  {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"enterprise", required_argument, NULL, 'e'},
        {"utility", required_argument, NULL, 'u'}, {"format", required_argument, NULL, 'F'},
        {"out", required_argument, NULL, 'o'},     {"excel", no_argument, NULL, 'x'},
        {"close", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},          {"month", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    const char *from_arg = NULL, *to_arg = NULL, *util_arg = NULL, *fmt_arg = "table";
    const char *month_arg = NULL;
    const char *out_dir = NULL;
    bool excel = false, html = false, close_it = false;
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
        case 'm':
            month_arg = optarg;
            break;
        case 'u':
            util_arg = optarg;
            break;
        case 'F':
            fmt_arg = optarg;
            break;
        case 'o':
            out_dir = optarg;
            break;
        case 'x':
            excel = true;
            break;
        case 'C':
            close_it = true;
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
    if (!strcmp(fmt_arg, "table")) {
        format = STATEMENT_TABLE;
    } else if (!strcmp(fmt_arg, "csv")) {
        format = STATEMENT_CSV;
    } else if (!strcmp(fmt_arg, "json")) {
        format = STATEMENT_JSON;
    } else if (!strcmp(fmt_arg, "html")) {
        html = true;
        format = STATEMENT_TABLE;
    } else {
        fprintf(stderr, "parkgw bill: unknown format '%s' (table, csv, json, html)\n", fmt_arg);
        return 1;
    }
    if (html != (out_dir != NULL)) {
        fprintf(stderr, "parkgw bill: --out DIR goes with --format html, and html needs it\n");
        return 1;
    }
    if (excel && format != STATEMENT_CSV) {
        fprintf(stderr, "parkgw bill: --excel is for --format csv\n");
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

    if (cli_load_period("bill", cfg_path, from_arg, to_arg, month_arg, &cfg, &req.from,
                        &req.to) < 0)
        return 1;
    if (req.enterprise) {
        /* By id or by the registered (Chinese) name. */
        const struct cfg_enterprise *ent = config_find_enterprise(cfg, req.enterprise);
        if (!ent || !statement_has_enterprise(cfg, ent->id)) {
            fprintf(stderr, "parkgw bill: unknown enterprise '%s' (an id or a name of the "
                            "config's enterprises)\n",
                    req.enterprise);
            goto out_free_cfg;
        }
        req.enterprise = ent->id;
    }

    int r;
    if (close_it) {
        if (html) {
            fprintf(stderr, "parkgw bill: --close prints the table, CSV or JSON\n");
            goto out_free_cfg;
        }
        /* the only bill that writes: read-write, beside the daemon */
        r = store_open(cfg->storage_path, false, &st, err, sizeof(err));
        if (r < 0) {
            fprintf(stderr, "parkgw bill: %s\n", err);
            ret = 2;
            goto out_free_cfg;
        }
        if (excel)
            fputs("\xEF\xBB\xBF", stdout);
        r = statement_out_close(stdout, cfg, st, &req, format, err, sizeof(err));
        ret = cli_exit_code("bill", r, err);
        store_close(st);
        goto out_free_cfg;
    }
    if (cli_open_store("bill", cfg, &st) < 0) {
        ret = 2;
        goto out_free_cfg;
    }
    if (html) {
        r = write_html(out_dir, cfg, st, &req, err, sizeof(err));
    } else {
        if (excel)
            fputs("\xEF\xBB\xBF", stdout);
        r = statement_out_print(stdout, cfg, st, &req, format, err, sizeof(err));
    }
    ret = cli_exit_code("bill", r, err);
    store_close(st);
out_free_cfg:
    config_free(cfg);
    return ret;
}
