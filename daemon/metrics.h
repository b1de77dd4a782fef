/*
 * metrics.h - the daemon's counters in the Prometheus text exposition
 * format (version 0.0.4) for GET /metrics (daemon/http.c): polls and their
 * failures per meter, meter states, bus load, writer queue, outbox backlog,
 * broker state. Names and labels: docs/OPERATOR.md "Metrics".
 */
#pragma once
#include <jansson.h>

struct config;

/* The exposition text for cfg from a status document (status_build) and
 * the daemon's counters (runstate_build). malloc'd; never NULL. */
char *metrics_render(const struct config *cfg, json_t *status, json_t *rs);
