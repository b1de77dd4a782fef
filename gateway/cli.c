/*
 * cli.c - small pieces every subcommand that writes a report shares: the
 * exit code of DESIGN.md from a module's result, with the message printed once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gateway/cli.h"

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
