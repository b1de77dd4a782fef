/*
 * cli.h - the subcommands implemented in cli/ besides bill and query
 * (commands.h). Each gets argv starting at the subcommand's name, with the
 * global options (-c, -v, -q) already removed by main.c, and returns the
 * process exit code: 0 ok, 1 user/config/input error, 2 runtime failure.
 */
#pragma once
#include <stdint.h>

#define PARKGW_DEFAULT_CONFIG "/etc/parkgw/parkgw.cfg"

int cmd_run(int argc, char **argv, const char *cfg_path);
int cmd_check(int argc, char **argv, const char *cfg_path);
int cmd_probe(int argc, char **argv, const char *cfg_path);
int cmd_status(int argc, char **argv, const char *cfg_path);
int cmd_import(int argc, char **argv, const char *cfg_path);
int cmd_scan(int argc, char **argv, const char *cfg_path);
int cmd_meter(int argc, char **argv, const char *cfg_path);

/* Loads the config, printing "FILE:LINE: message" to stderr on failure.
 * Returns NULL on failure. Also sets TZ to the gateway's time zone. */
struct config;
struct config *cli_load_config(const char *cfg_path);

/* Parses the timestamp argument s of option opt (common/timeparse.h; local
 * forms in the gateway's zone, so after cli_load_config). 0 and *ret_ms, or
 * -EINVAL after printing "parkgw CMD: bad OPT 'S': why" and the forms. */
int cli_parse_time(const char *cmd, const char *opt, const char *s, const struct config *cfg,
                   int64_t *ret_ms);

/* For a command over a period (bill, query): loads the config (cfg_path
 * NULL = the default) and parses from_arg/to_arg with cli_parse_time, or
 * month_arg ("YYYY-MM", the whole local month; not with from/to). 0 with
 * *ret_cfg (config_free it), *ret_from < *ret_to; or -EINVAL after printing
 * why (FILE:LINE, bad time, --from not before --to, missing or conflicting
 * options), nothing to free. */
int cli_load_period(const char *cmd, const char *cfg_path, const char *from_arg,
                    const char *to_arg, const char *month_arg, struct config **ret_cfg,
                    int64_t *ret_from, int64_t *ret_to);

/* Opens cfg's store read-only for a report. 0 and *ret, or -EIO after
 * printing "parkgw CMD: why" (the caller exits 2). */
struct store;
int cli_open_store(const char *cmd, const struct config *cfg, struct store **ret);

/* The exit code for a report written to stdout by a module that returned r
 * (0, -EINVAL for bad input, other -errno) with its reason in err: 0, 1 or
 * 2; prints "parkgw CMD: reason" on failure, also when flushing stdout fails. */
int cli_exit_code(const char *cmd, int r, const char *err);
