/*
 * webhook.h - alert messages to HTTP webhooks (docs/OPERATOR.md "Alerts"):
 * an event of P/events as a generic JSON document, a WeCom (企业微信) group
 * robot message or a DingTalk (钉钉) group robot message, and its delivery
 * by an HTTP POST through libcurl. The daemon's alerter (daemon/alerter.c)
 * decides what to send and when.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* What an alert message is about. */
struct webhook_alert {
    const char *id;              /* "<gateway>-<event id>": the same on every retry */
    const char *gateway;
    const char *event;           /* the event's JSON as on P/events (without seq) */
    const char *enterprise_name; /* NULL: bus event or unknown enterprise */
    int suppressed;              /* earlier changes of this meter not sent (rate limit) */
};

/* The kind an event is filtered by: the alarm's name for alarm_raised and
 * alarm_cleared, "comm_lost" for comm_lost/comm_restored, "bus_down" for
 * bus_down/bus_restored; NULL for other events. Points into ev. */
const char *webhook_event_kind(const char *type, const char *alarm);

/* The request body for a in format f (malloc'd), or NULL when a->event is
 * not an event object. */
char *webhook_body(enum webhook_format f, const struct webhook_alert *a);

/* Must be called once, single-threaded, before the first webhook_post. */
void webhook_global_init(void);

/* POSTs body to url (Content-Type application/json, X-Parkgw-Alert-Id: id),
 * no redirects, within timeout_ms. Success is a 2xx answer, and for the
 * robots also "errcode": 0 in it. 0, or -errno with the reason in err
 * (-EPROTO: answered with an error; -EIO/-ETIMEDOUT: not reached). */
int webhook_post(const char *url, enum webhook_format f, const char *body, const char *id,
                 int timeout_ms, char *err, size_t errlen);

/* A DingTalk robot's signed URL: url + "&timestamp=MS&sign=S" (or "?..."),
 * S = URL-encoded Base64 of HMAC-SHA256(secret, "MS\nsecret"), the robot's
 * "加签" security setting. malloc'd. */
char *webhook_dingtalk_sign(const char *url, const char *secret, int64_t now_ms);
