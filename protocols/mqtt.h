/*
 * mqtt.h - the broker connection: Paho MQTTAsync with automatic reconnect,
 * the retained P/status online message (re-sent on every connect) and the
 * retained offline LWT, non-blocking publishes for the pollers, and
 * publishes with a delivery callback for the outbox publisher, which owns
 * the retries of durable messages (daemon/publisher.h).
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
    uint64_t acked;           /* mqtt_publish_acked: delivered */
    uint64_t ack_failed;      /* mqtt_publish_acked: reported lost */
    uint64_t ack_refused;     /* mqtt_publish_acked: refused by the broker (MQTT 5) */
    int proto;                /* MQTT version of the last connection: 5, 4 (3.1.1), 0 none yet */
    bool connected;
};

/* Outcomes of mqtt_publish_acked; a value > 0 is the MQTT 5 reason code of
 * a PUBACK that refused the message (>= 0x80, e.g. 0x87 not authorized). */
#define MQTT_DELIVERED 0
#define MQTT_LOST (-1)

/* The name of an MQTT 5 reason code ("Not authorized"), static. */
const char *mqtt_reason_str(int code);

/* Creates the client for cfg (uri, client id, credentials, TLS, LWT on
 * "<prefix>/<gw>/status"). 'online_payload' is copied. 0 and *ret, or -errno.
 * It connects with MQTT 5 and falls back to 3.1.1 when the broker answers
 * that it does not speak 5 (before the first connection; the version found
 * then stays). */
int mqtt_new(const struct config *cfg, const char *online_payload, struct mqtt **ret);

/* Starts connecting in the background; retries forever with backoff. */
int mqtt_start(struct mqtt *m);

/* Publishes without blocking. 0, or -ENOTCONN / -EAGAIN (dropped, counted). */
int mqtt_publish(struct mqtt *m, const char *topic, const char *payload, size_t len, int qos,
                 bool retain);

/*
 * Publishes without blocking and reports the outcome once: done(ctx,
 * MQTT_DELIVERED) when the broker acknowledged it (PUBACK at QoS 1; written
 * to the socket at QoS 0), done(ctx, MQTT_LOST) when it may not have arrived
 * (connection lost before the acknowledgement, Paho gave up), done(ctx,
 * code) when an MQTT 5 broker refused it (PUBACK reason code >= 0x80; an
 * MQTT 3.1.1 broker cannot say so and acknowledges). done runs on a Paho thread with
 * no lock of this module held; it must not block. Returns 0 (done will be
 * called exactly once), or -ENOTCONN, -EAGAIN, -EINVAL, -EMSGSIZE (done is
 * never called). A false outcome may still have reached the broker: the
 * caller resends and the consumer drops the duplicate by its seq.
 */
int mqtt_publish_acked(struct mqtt *m, const char *topic, const char *payload, size_t len,
                       int qos, bool retain, void (*done)(void *ctx, int outcome), void *ctx);

/* No call of 'done' after this returns: outstanding publishes with that
 * callback are forgotten and a callback running on a Paho thread has
 * finished. Not from a done() or link callback. */
void mqtt_cancel_acked(struct mqtt *m, void (*done)(void *ctx, int outcome));

/*
 * Link notification: cb(ctx, true) after every connect (the online status
 * already queued), cb(ctx, false) when the connection is lost (after every
 * outstanding mqtt_publish_acked was reported). Runs on Paho's threads; it
 * must not block or call back into this module. Set it before mqtt_start;
 * setting NULL waits for a running callback to return (not from a callback).
 */
void mqtt_set_link_callback(struct mqtt *m, void (*cb)(void *ctx, bool up), void *ctx);

/* Publishes the retained offline status, waits up to timeout_ms for it to
 * leave, disconnects. */
void mqtt_stop(struct mqtt *m, int timeout_ms);
void mqtt_free(struct mqtt *m);

void mqtt_get_stats(struct mqtt *m, struct mqtt_stats *ret);
