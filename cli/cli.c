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
    int r = timeparse(s, ret_ms);
    if (r < 0) {
        fprintf(stderr, "parkgw %s: bad %s '%s': %s\n  use %s (time zone %s)\n", cmd, opt, s,
                timeparse_why(r), TIMEPARSE_FORMS,
                cfg && cfg->timezone ? cfg->timezone : "UTC");
        return -EINVAL;
    }
    return 0;
}
