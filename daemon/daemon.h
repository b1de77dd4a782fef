/*
 * daemon.h - the daemon's lifecycle, what `parkgw run` (cli/cmd_run.c) calls
 * once the config is loaded: store, writer, MQTT client, one poller per bus,
 * signals, sd_notify and the watchdog, until SIGTERM/SIGINT.
 */
#pragma once

struct config;

/* Runs the daemon on cfg (loaded from cfg_path, which SIGHUP reloads) until
 * a stop signal. Takes ownership of cfg. Returns the process exit code:
 * 0 after a clean stop, 2 on a runtime failure. */
int daemon_run(struct config *cfg, const char *cfg_path);
