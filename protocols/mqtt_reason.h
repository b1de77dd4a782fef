/*
 * mqtt_reason.h - private to the MQTT connection (protocols/mqtt.c): Paho's
 * and the broker's codes in words (mqtt_reason.c).
 */
#pragma once
#include <stdbool.h>

/* A Paho MQTTASYNC_* return code as 0 or a negative errno. */
int mqtt_paho_to_errno(int rc);
/* Paho's message when it gave one, else its text for code; never NULL. */
const char *mqtt_paho_reason(int code, const char *message);
/* An MQTT 3.1.1 CONNACK return code (1-5) as what to check; never NULL. */
const char *mqtt_connack_reason(int code);
/* An MQTT 5 CONNACK reason code (>= 0x80) in the words of the 3.1.1 code of
 * the same meaning; never NULL. */
const char *mqtt_connack5_reason(int code);
/* True when code is a broker's refusal of an MQTT 5 CONNECT for its version. */
bool mqtt_refuses_v5(int code);
