/*
 * mqtt_reason.c - the broker's and Paho's answers in words: Paho return codes
 * as negative errno, CONNACK refusals (MQTT 3.1.1 codes and MQTT 5 reason
 * codes) as what an operator should check, PUBACK reason codes. Used by the
 * connection (mqtt.c); no state.
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "protocols/mqtt.h"
#include "protocols/mqtt_reason.h"

int mqtt_paho_to_errno(int rc)
{
    switch (rc) {
    case MQTTASYNC_SUCCESS:
        return 0;
    case MQTTASYNC_DISCONNECTED:
        return -ENOTCONN;
    case MQTTASYNC_BAD_PROTOCOL:
    case MQTTASYNC_BAD_UTF8_STRING:
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_BAD_STRUCTURE:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_BAD_MQTT_OPTION:
    case MQTTASYNC_WRONG_MQTT_VERSION:
    case MQTTASYNC_0_LEN_WILL_TOPIC:
        return -EINVAL;
    case MQTTASYNC_SSL_NOT_SUPPORTED:
        return -ENOTSUP;
    default:
        return -EIO;
    }
}

const char *mqtt_paho_reason(int code, const char *message)
{
    if (message && *message)
        return message;
    const char *s = MQTTAsync_strerror(code);
    return s ? s : "unknown error";
}

/* What an MQTT 3.1.1 CONNACK return code means. Paho reports a refused
 * connect as onFailure with the broker's return code (1-5, positive; its own
 * errors are negative) and the bare message "CONNACK return code".
 * mosquitto answers a wrong user name or password with 5. */
const char *mqtt_connack_reason(int code)
{
    switch (code) {
    case 1:
        return "unacceptable protocol version (the broker does not accept MQTT 3.1.1)";
    case 2:
        return "identifier rejected (check mqtt.client_id)";
    case 3:
        return "server unavailable (the broker cannot take clients right now)";
    case 4:
        return "bad user name or password (check mqtt.username and the password_file)";
    case 5:
        return "not authorized (bad user name or password, or this user may not connect; "
               "check mqtt.username, the password_file and the broker's ACL)";
    default:
        return "refused with an unknown CONNACK return code";
    }
}

/* An MQTT 5 CONNACK reason code (>= 0x80) in the words of the 3.1.1 code
 * with the same meaning, so the log reads alike for both versions. */
const char *mqtt_connack5_reason(int code)
{
    switch (code) {
    case MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION:
        return mqtt_connack_reason(1);
    case MQTTREASONCODE_CLIENT_IDENTIFIER_NOT_VALID:
        return mqtt_connack_reason(2);
    case MQTTREASONCODE_SERVER_UNAVAILABLE:
    case MQTTREASONCODE_SERVER_BUSY:
        return mqtt_connack_reason(3);
    case MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD:
        return mqtt_connack_reason(4);
    case MQTTREASONCODE_NOT_AUTHORIZED:
    case MQTTREASONCODE_BANNED:
        return mqtt_connack_reason(5);
    default: {
        const char *t = MQTTReasonCode_toString((enum MQTTReasonCodes)code);
        return t ? t : "refused with an unknown reason code";
    }
    }
}

const char *mqtt_reason_str(int code)
{
    const char *t = MQTTReasonCode_toString((enum MQTTReasonCodes)code);
    return t ? t : "unknown reason code";
}

/* The broker does not speak MQTT 5: its answer to a v5 CONNECT. */
bool mqtt_refuses_v5(int code)
{
    return code == 1 || code == MQTTREASONCODE_UNSUPPORTED_PROTOCOL_VERSION;
}
