/*
 * cli.c - small pieces every subcommand shares: loading the config (and the
 * gateway's time zone), timestamp arguments, the exit code of DESIGN.md
 * from a module's result, with the message printed once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/timeparse.h"
#include "config/config.h"
#include "storage/store.h"

int cli_exit_code(const char *cmd, int r, const char *err)
{
    if (r == 0 && fflush(stdout) != 0) {
        fprintf(stderr, "parkgw %s: writing the output: %s\n", cmd, strerror(errno));
        return 2;
    }
    if (r < 0) {
        fprintf(stderr, "parkgw %s: %s\n", cmd, err);
        return r == -EINVAL ? 1 : 2;
    }
    return 0;
}

struct config *cli_load_config(const char *cfg_path)
{
    char err[1024];
    struct config *cfg;
    int r = config_load(cfg_path, &cfg, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "%s\n", err);
        /* The default path on a box without it (a checkout, a workstation):
         * say how to give one instead of only that it is missing. */
        if (r == -ENOENT && strcmp(cfg_path, PARKGW_DEFAULT_CONFIG) == 0)
            fprintf(stderr,
                    "parkgw: no configuration at %s: give one with -c FILE (or "
                    "PARKGW_CONFIG=FILE),\n"
                    "  e.g. -c config/demo.cfg in a checkout; the package installs %s.example\n"
                    "  (copy it to %s and adapt it, docs/OPERATIONS.md)\n",
                    PARKGW_DEFAULT_CONFIG, PARKGW_DEFAULT_CONFIG, PARKGW_DEFAULT_CONFIG);
        return NULL;
    }
    if (cfg->timezone) {
        setenv("TZ", cfg->timezone, 1);
        tzset();
    }
    return cfg;
}


int cli_parse_time(const char *cmd, const char *opt, const char *s, const struct config *cfg,
                   int64_t *ret_ms)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int r = timeparse_relative(s, now_ms, ret_ms);
    if (r < 0) {
        fprintf(stderr, "parkgw %s: bad %s '%s': %s\n  use %s, or %s (time zone %s)\n", cmd,
                opt, s, timeparse_why(r), TIMEPARSE_FORMS, TIMEPARSE_WORDS,
                cfg && cfg->timezone ? cfg->timezone : "UTC");
        return -EINVAL;
    }
    return 0;
}

int cli_load_period(const char *cmd, const char *cfg_path, const char *from_arg,
                    const char *to_arg, const char *month_arg, struct config **ret_cfg,
                    int64_t *ret_from, int64_t *ret_to)
{
    int64_t from, to;
    if (month_arg && (from_arg || to_arg)) {
        fprintf(stderr, "parkgw %s: --month is a whole period: give it or --from/--to, not both\n",
                cmd);
        return -EINVAL;
    }
    if (!month_arg && (!from_arg || !to_arg)) {
        fprintf(stderr, "parkgw %s: --from and --to (or --month YYYY-MM) are required\n", cmd);
        return -EINVAL;
    }
    /* FILE:LINE errors on stderr; TZ set to the gateway's time zone. */
    struct config *cfg = cli_load_config(cfg_path ? cfg_path : PARKGW_DEFAULT_CONFIG);
    if (!cfg)
        return -EINVAL;
    if (month_arg) {
        int r = timeparse_month(month_arg, &from, &to);
        if (r < 0) {
            fprintf(stderr, "parkgw %s: bad --month '%s': %s; use YYYY-MM (2026-11)\n", cmd,
                    month_arg, timeparse_why(r));
            goto out_free_cfg;
        }
    } else if (cli_parse_time(cmd, "--from", from_arg, cfg, &from) < 0 ||
               cli_parse_time(cmd, "--to", to_arg, cfg, &to) < 0) {
        goto out_free_cfg;
    }
    if (from >= to) {
        fprintf(stderr, "parkgw %s: --from %s is not before --to %s\n", cmd, from_arg, to_arg);
        goto out_free_cfg;
    }
    *ret_cfg = cfg;
    *ret_from = from;
    *ret_to = to;
    return 0;
out_free_cfg:
    config_free(cfg);
    return -EINVAL;
}

int cli_open_store(const char *cmd, const struct config *cfg, struct store **ret)
{
    char err[512];
    if (store_open(cfg->storage_path, true, ret, err, sizeof(err)) < 0) {
        fprintf(stderr, "parkgw %s: %s\n", cmd, err);
        return -EIO;
    }
    return 0;
}
