/*
 * payload.c - the MQTT topic strings and JSON payloads of DESIGN.md ("MQTT
 * topics and payloads"), built with jansson. The poller uses the live payload,
 * the daemon the status one, alarm detection the state and event ones; mqtt.c
 * only moves the bytes.
 */
#include "protocols/payload.h"
#include "gateway/log.h"
#include "gateway/util.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 15 significant digits: a float32 reading (7 digits) or a scaled double round
 * trips far inside 1e-6 relative, and 230.1 stays "230.1" instead of the
 * 17-digit "230.10000000000002". */
#define PAYLOAD_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one:
 * overlong forms, surrogates and code points above U+10FFFF are invalid, as
 * jansson would refuse them. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && s[1] >= 0xa0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && s[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* A JSON string for s. jansson refuses invalid UTF-8 (json_string returns
 * NULL); a name from a badly encoded config file must not make a payload
 * vanish, so invalid bytes become U+FFFD. NULL becomes "". */
static json_t *jstr(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;

    size_t n = strlen(s);
    char *fixed = xmalloc(3 * n + 1); /* each bad byte grows to 3 */
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t l = utf8_seq_len(p);
        if (l) {
            memcpy(fixed + o, p, l);
            o += l;
            p += l;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        }
    }
    fixed[o] = '\0';
    j = json_string(fixed);
    free(fixed);
    if (!j) {
        log_err("payload: cannot build a JSON string");
        abort();
    }
    return j;
}

/* Sets obj[key] = val, taking the reference; aborts like xmalloc when jansson
 * runs out of memory (the only way these calls fail with valid keys). */
static void jset(json_t *obj, const char *key, json_t *val)
{
    if (!val || json_object_set_new(obj, key, val) != 0) {
        log_err("payload: out of memory building JSON");
        abort();
    }
}

static json_t *jobj(void)
{
    json_t *o = json_object();
    if (!o) {
        log_err("payload: out of memory building JSON");
        abort();
    }
    return o;
}

/* Serialises and releases obj. */
static char *dump(json_t *obj)
{
    char *s = json_dumps(obj, PAYLOAD_DUMP_FLAGS);
    json_decref(obj);
    if (!s) {
        log_err("payload: out of memory serialising JSON");
        abort();
    }
    return s;
}

char *topic_base(const char *prefix, const char *gateway_id)
{
    return xasprintf("%s/%s", prefix, gateway_id);
}

char *topic_meter(const char *base, const char *ent, const char *utility, const char *meter,
                  const char *leaf)
{
    return xasprintf("%s/%s/%s/%s/%s", base, ent, utility, meter, leaf);
}

char *topic_status(const char *base)
{
    return xasprintf("%s/status", base);
}

char *topic_events(const char *base)
{
    return xasprintf("%s/events", base);
}

char *topic_summary(const char *base, const char *ent)
{
    if (!ent)
        return xasprintf("%s/summary", base);
    return xasprintf("%s/%s/summary", base, ent);
}

char *payload_live(int64_t ts, const char *ent, const char *meter, const char *utility,
                   const char *const *names, const double *values, const bool *valid, size_t n)
{
    json_t *root = jobj();
    jset(root, "ts", json_integer((json_int_t)ts));
    jset(root, "enterprise", jstr(ent));
    jset(root, "meter", jstr(meter));
    jset(root, "utility", jstr(utility));

    json_t *vals = jobj();
    for (size_t i = 0; i < n; i++) {
        if (valid && !valid[i])
            continue;
        /* jansson would refuse NaN/Inf anyway; a decoder that let one through
         * is treated as an invalid reading rather than a broken payload. */
        if (!isfinite(values[i]) || !names[i])
            continue;
        json_t *name = jstr(names[i]);
        jset(vals, json_string_value(name), json_real(values[i]));
        json_decref(name);
    }
    jset(root, "values", vals);
    return dump(root);
}

char *payload_status_online(const char *version, int64_t started, size_t meters)
{
    json_t *root = jobj();
    jset(root, "state", json_string("online"));
    jset(root, "version", jstr(version));
    jset(root, "started", json_integer((json_int_t)started));
    jset(root, "meters", json_integer((json_int_t)meters));
    return dump(root);
}

char *payload_status_offline(void)
{
    json_t *root = jobj();
    jset(root, "state", json_string("offline"));
    return dump(root);
}

char *payload_state(int64_t ts, const char *state, int64_t since, const char *const *alarms,
                    size_t n_alarms)
{
    json_t *root = jobj();
    jset(root, "ts", json_integer((json_int_t)ts));
    jset(root, "state", jstr(state));
    jset(root, "since", json_integer((json_int_t)since));

    json_t *arr = json_array();
    if (!arr) {
        log_err("payload: out of memory building JSON");
        abort();
    }
    for (size_t i = 0; i < n_alarms; i++) {
        if (!alarms[i])
            continue;
        if (json_array_append_new(arr, jstr(alarms[i])) != 0) {
            log_err("payload: out of memory building JSON");
            abort();
        }
    }
    jset(root, "alarms", arr);
    return dump(root);
}

char *payload_event(int64_t seq, int64_t ts, const char *type, const struct payload_field *extra,
                    size_t n_extra)
{
    json_t *root = jobj();
    if (seq >= 0)
        jset(root, "seq", json_integer((json_int_t)seq));
    jset(root, "ts", json_integer((json_int_t)ts));
    jset(root, "type", jstr(type));

    for (size_t i = 0; i < n_extra; i++) {
        const struct payload_field *f = &extra[i];
        if (!f->key || strcmp(f->key, "seq") == 0 || strcmp(f->key, "ts") == 0 ||
            strcmp(f->key, "type") == 0)
            continue;
        json_t *val = NULL;
        switch (f->type) {
        case PF_STR:
            if (f->s)
                val = jstr(f->s);
            break;
        case PF_INT:
            val = json_integer((json_int_t)f->i);
            break;
        case PF_REAL:
            if (isfinite(f->d))
                val = json_real(f->d);
            break;
        case PF_BOOL:
            val = json_boolean(f->b);
            break;
        }
        if (!val)
            continue;
        json_t *key = jstr(f->key);
        jset(root, json_string_value(key), val);
        json_decref(key);
    }
    return dump(root);
}
