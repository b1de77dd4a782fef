/*
 * main.c - the parkgw command line: global options (-c FILE, -v, -q), then
 * dispatch to a subcommand (run, check, probe, bill, query, status, import,
 * scan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/log.h"
#include "version.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv, const char *cfg_path);
    const char *help;
} commands[] = {
    {"run", cmd_run, "run the gateway daemon in the foreground"},
    {"check", cmd_check, "validate the configuration and print a summary"},
    {"probe", cmd_probe, "ENTERPRISE/METER: read one meter once and print every point"},
    {"bill", cmd_bill, "--from DATE --to DATE: billing statement per enterprise"},
    {"query", cmd_query, "ENTERPRISE/METER[/POINT] --from T --to T: time-series export"},
    {"status", cmd_status, "meter states, outbox backlog, database size"},
    {"meter", cmd_meter, "ENT/METER history|ratio|replace: the meter's PT/CT and replacement history"},
    {"import", cmd_import, "--csv FILE: load readings into the store, all or nothing"},
    {"scan", cmd_scan, "BUS: the address of the only meter on a DL/T 645 line"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: parkgw [-c FILE] [-v|-q] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\noptions (before or after COMMAND):\n"
                 "  -c, --config FILE  configuration (default " PARKGW_DEFAULT_CONFIG ")\n"
                 "  -v, --verbose      log debug messages\n"
                 "  -q, --quiet        log warnings and errors only\n"
                 "  -h, --help         this help; COMMAND --help for a command's options\n"
                 "  -V, --version      print the version\n");
}

int main(int argc, char **argv)
{
    const char *cfg_path = getenv("PARKGW_CONFIG");
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0;
    if (!rest)
        return 2;
    if (!cfg_path)
        cfg_path = PARKGW_DEFAULT_CONFIG;

    /* Global options may stand anywhere (parkgw run -c FILE is the documented
     * form); take them out so subcommands parse only their own. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                rest[nrest++] = argv[i++];
            break;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "parkgw: %s needs a FILE\n", a);
                free(rest);
                return 1;
            }
            cfg_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cfg_path = a + 9;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            log_set_level(LOG_LVL_DEBUG);
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            log_set_level(LOG_LVL_WARN);
        } else if ((strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) && nrest == 0) {
            printf("parkgw %s\n", PARKGW_VERSION);
            free(rest);
            return 0;
        } else if ((strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) && nrest == 0) {
            usage(stdout);
            free(rest);
            return 0;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (nrest == 0) {
        usage(stderr);
        free(rest);
        return 1;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(rest[0], commands[i].name) == 0) {
            int r = commands[i].fn(nrest, rest, cfg_path);
            free(rest);
            return r;
        }
    }
    fprintf(stderr, "parkgw: unknown command '%s'\n", rest[0]);
    usage(stderr);
    free(rest);
    return 1;
}
