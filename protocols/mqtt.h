/*
 * mqtt.h - the broker connection: Paho MQTTAsync with automatic reconnect,
 * the retained P/status online message (re-sent on every connect) and the
 * retained offline LWT, and non-blocking publishes for the pollers.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

struct mqtt;

struct mqtt_stats {
    uint64_t published;       /* accepted by Paho */
    uint64_t dropped;         /* not connected or Paho refused */
    uint64_t connects;
    uint64_t connection_lost;
    bool connected;
};

/* Creates the client for cfg (uri, client id, credentials, TLS, LWT on
 * "<prefix>/<gw>/status"). 'online_payload' is copied. 0 and *ret, or -errno. */
int mqtt_new(const struct config *cfg, const char *online_payload, struct mqtt **ret);

/* Starts connecting in the background; retries forever with backoff. */
int mqtt_start(struct mqtt *m);

/* Publishes without blocking. 0, or -ENOTCONN / -EAGAIN (dropped, counted). */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, size_t len, int qos,
                 bool retain);

/* Publishes the retained offline status, waits up to timeout_ms for it to
 * leave, disconnects. */
void mqtt_stop(struct mqtt *m, int timeout_ms);
void mqtt_free(struct mqtt *m);

void mqtt_get_stats(struct mqtt *m, struct mqtt_stats *ret);
