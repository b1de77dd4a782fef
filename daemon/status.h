/*
 * status.h - the gateway's status document (docs/OPERATOR.md "Status
 * document"): per meter its state, last good reading, age, active alarms,
 * poll counters and last values; the outbox backlog, the database's size and
 * the daemon's counters. One builder for `parkgw status` (cli/cmd_status.c,
 * which prints it as a table or as JSON) and for the daemon's HTTP
 * listener (daemon/http.c: GET /api/status and the dashboard's stream),
 * so both always say the same.
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct config;
struct store;

/* Include the sample count and the oldest sample's time (a scan of the
 * series table: the CLI and /api/status, not the dashboard's stream). */
#define STATUS_SAMPLES 0x1
/* Rows of the alarm history in the document's "events" (newest first). */
#define STATUS_EVENTS 20

/*
 * Builds the status document of cfg at Unix ms 'now'. st: the store, open
 * read-only or not (NULL: no database part, readings from rs only). rs: the
 * daemon's counters (runstate_build or runstate_read), NULL when the daemon
 * is not running; its live state and values win over the database's. flags:
 * STATUS_*. Returns a new JSON object (json_decref); never NULL.
 */
json_t *status_build(const struct config *cfg, struct store *st, json_t *rs, int64_t now,
                     unsigned flags);

/* A meter's state word for a reading age_s seconds old at its interval:
 * "ok" within 3 intervals + 5 s, else "stale"; "never" when age_s < 0. */
const char *status_age_state(int64_t age_s, int interval);
