/*
 * commands.h - the parkgw subcommands that main.c dispatches to. Each
 * parses its own options with getopt_long (argv[0] is the subcommand's
 * name; -c/--config is accepted there too and overrides cfg_path, NULL =
 * the default /etc/parkgw/parkgw.cfg) and returns the process exit code:
 * 0 ok, 1 user/config/input error, 2 runtime failure (DESIGN.md).
 */
#pragma once

/* `parkgw bill`: the billing statement (cmd_bill.c). */
int cmd_bill(int argc, char **argv, const char *cfg_path);
/* `parkgw query`: time-series export (cmd_query.c). */
int cmd_query(int argc, char **argv, const char *cfg_path);
