/*
 * hadisc.c - Home Assistant MQTT discovery (see hadisc.h). The sensor
 * kind comes from the point's unit suffix (the profiles' naming
 * convention, docs/PROFILES.md) and its kind (counter: total_increasing).
 */
#include "daemon/hadisc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "protocols/mqtt.h"
#include "protocols/payload.h"

/* Config messages handed to Paho per call (the main loop calls every
 * 200 ms): well inside its in-flight window. */
#define HADISC_BATCH 200

struct hadisc {
    const struct config *cfg;
    uint64_t connects;   /* broker connects when the current round began */
    size_t ent, meter, point;
    bool done;
};

/* Unit suffix -> Home Assistant unit and device class (NULL: none). */
static const struct {
    const char *suffix, *unit, *device_class;
} units[] = {
    {"_kwh", "kWh", "energy"},         {"_kvarh", "kvarh", NULL},
    {"_kvar", "kvar", "reactive_power"}, {"_kw", "kW", "power"},
    {"_nm3h", "m³/h", "volume_flow_rate"}, {"_nm3", "m³", "gas"},
    {"_m3h", "m³/h", "volume_flow_rate"}, {"_m3", "m³", "water"},
    {"_kpa", "kPa", "pressure"},       {"_hz", "Hz", "frequency"},
    {"_v", "V", "voltage"},            {"_a", "A", "current"},
    {"_c", "°C", "temperature"},
};

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

char *hadisc_config(const struct config *cfg, size_t e, size_t i, size_t p, char **ret_topic)
{
    const struct cfg_enterprise *ent = &cfg->enterprises[e];
    const struct cfg_meter *m = &ent->meters[i];
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    const struct cfg_point *pt = &prof->points[p];
    char *base = topic_base(cfg->topic_prefix, cfg->gateway_id);
    char *live = topic_meter(base, ent->id, utility_name(m->utility), m->id, "live");
    char *status = topic_status(base);
    char *dev = xasprintf("parkgw_%s_%s_%s", cfg->gateway_id, ent->id, m->id);
    char *uid = xasprintf("%s_%s", dev, pt->name);
    char *tmpl = xasprintf("{{ value_json['values']['%s'] }}", pt->name);
    char *dname = xasprintf("%s %s", ent->name ? ent->name : ent->id, m->id);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", pt->name, "unique_id",
                          uid, "object_id", uid, "state_topic", live, "value_template", tmpl,
                          "availability_topic", status, "availability_template",
                          "{{ 'online' if value_json.state == 'online' else 'offline' }}",
                          "state_class", pt->kind == KIND_COUNTER ? "total_increasing"
                                                                  : "measurement");
    for (size_t k = 0; k < ARRAY_SIZE(units); k++)
        if (ends_with(pt->name, units[k].suffix)) {
            json_object_set_new(o, "unit_of_measurement", json_string(units[k].unit));
            /* An energy, water or gas class on a gauge would be refused. */
            if (units[k].device_class &&
                (pt->kind == KIND_COUNTER ||
                 (strcmp(units[k].device_class, "energy") && strcmp(units[k].device_class, "water") &&
                  strcmp(units[k].device_class, "gas"))))
                json_object_set_new(o, "device_class", json_string(units[k].device_class));
            break;
        }
    if (strcmp(pt->name, "pf") == 0)
        json_object_set_new(o, "device_class", json_string("power_factor"));
    json_object_set_new(o, "device",
                        json_pack("{s:[s],s:s,s:s,s:s,s:s}", "identifiers", dev, "name", dname,
                                  "manufacturer", "parkgw", "model", prof->name, "suggested_area",
                                  ent->name ? ent->name : ent->id));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *ret_topic = xasprintf("%s/sensor/%s/%s/config", cfg->ha_prefix, dev, pt->name);
    free(base);
    free(live);
    free(status);
    free(dev);
    free(uid);
    free(tmpl);
    free(dname);
    return text;
}

struct hadisc *hadisc_new(const struct config *cfg)
{
    if (!cfg->ha_discovery)
        return NULL;
    struct hadisc *h = xcalloc(1, sizeof(*h));
    h->cfg = cfg;
    h->done = true;
    return h;
}

void hadisc_free(struct hadisc *h)
{
    free(h);
}

void hadisc_tick(struct hadisc *h, struct mqtt *m)
{
    if (!h || !m)
        return;
    struct mqtt_stats ms;
    mqtt_get_stats(m, &ms);
    if (!ms.connected)
        return;
    if (ms.connects != h->connects) {
        /* A new connection: the broker may have lost its retained messages. */
        h->connects = ms.connects;
        h->ent = h->meter = h->point = 0;
        h->done = false;
    }
    const struct config *cfg = h->cfg;
    for (int n = 0; !h->done && n < HADISC_BATCH;) {
        if (h->ent >= cfg->n_enterprises) {
            h->done = true;
            log_info("ha discovery: configs published under %s/sensor/", cfg->ha_prefix);
            break;
        }
        const struct cfg_enterprise *ent = &cfg->enterprises[h->ent];
        if (h->meter >= ent->n_meters) {
            h->ent++;
            h->meter = h->point = 0;
            continue;
        }
        const struct cfg_profile *prof = &cfg->profiles[ent->meters[h->meter].profile];
        if (h->point >= prof->n_points) {
            h->meter++;
            h->point = 0;
            continue;
        }
        char *topic;
        char *text = hadisc_config(cfg, h->ent, h->meter, h->point, &topic);
        int r = mqtt_publish(m, topic, text, strlen(text), 1, true);
        free(topic);
        free(text);
        if (r < 0)
            return; /* in-flight window full or disconnected: the same one next time */
        h->point++;
        n++;
    }
}
