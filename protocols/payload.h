/*
 * payload.h - MQTT topics and JSON payloads of DESIGN.md, built with jansson.
 * Every function returns a malloc'd string the caller frees.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "<prefix>/<gw>" */
char *topic_base(const char *prefix, const char *gateway_id);
/* "<base>/<ent>/<utility>/<meter>/<leaf>", leaf "live" or "state" */
char *topic_meter(const char *base, const char *ent, const char *utility, const char *meter,
                  const char *leaf);

/* {"ts":..,"enterprise":..,"meter":..,"utility":..,"values":{name:value,..}}
 * Points with valid[i] false are left out. Compact JSON, no trailing newline. */
char *payload_live(int64_t ts, const char *ent, const char *meter, const char *utility,
                   const char *const *names, const double *values, const bool *valid, size_t n);

/* {"state":"online","version":..,"started":ts,"meters":N} */
char *payload_status_online(const char *version, int64_t started, size_t meters);
/* {"state":"offline"} */
char *payload_status_offline(void);
