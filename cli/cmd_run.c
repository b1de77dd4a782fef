/*
 * cmd_run.c - `parkgw run`: options, the config, then the daemon
 * (daemon/daemon.c) until SIGTERM.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "daemon/daemon.h"

int cmd_run(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw run [-c FILE] [-v|-q]\n");
            return 0;
        }
        return 1;
    }
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    return daemon_run(cfg, cfg_path);
}
