/*
 * runstate.h - the running daemon's counters (per meter: polls and every
 * failure class; writer, MQTT) as a small JSON file beside the database,
 * "<storage.path>.state.json". The daemon's main thread rewrites it
 * atomically every few seconds, so neither pollers nor SQLite are involved;
 * `parkgw status` reads it.
 */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct poller;
struct writer;
struct mqtt;

/* "<storage_path>.state.json", malloc'd. */
char *runstate_path(const char *storage_path);

/* The snapshot as of now: pid, started/updated times, per meter
 * ("ENT/METER") the poll counters, the alarm engine's state and the last
 * good poll's values, the writer's and the broker's counters (w, m may be
 * NULL). A new JSON object (json_decref). Main thread only: pollers must
 * not be stopped meanwhile. */
json_t *runstate_build(int64_t started_ms, struct poller *const *pollers, size_t n_pollers,
                       struct writer *w, struct mqtt *m);

/* Writes a snapshot to path (tmp file + rename). 0 or -errno. */
int runstate_write(const char *path, json_t *snapshot);

/* Reads a snapshot: a new JSON object (json_decref), or NULL when absent or
 * unreadable. */
json_t *runstate_read(const char *path);
