/*
 * it_hadisc.c - Home Assistant MQTT discovery against a real mosquitto:
 * with mqtt.ha_discovery on, `parkgw run` publishes one retained config
 * per meter point under homeassistant/sensor/, one device per meter (named
 * with the enterprise's Chinese name), billing counters as energy / water /
 * gas sensors with state_class total_increasing (what HA's energy
 * dashboard takes), gauges as measurements; each reads a key the meter's
 * live payload carries; and a broker restart brings them back.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tests/integration/harness.h"

#define SEED 41
#define BASE "park/hagw"

static char *make_config(const char *dir, int mqtt_port, int sim_port)
{
    return xasprintf(
        "gateway = { id = \"hagw\"; timezone = \"Asia/Shanghai\"; };\n"
        "storage = { path = \"%s/parkgw.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:%d\"; client_id = \"parkgw-hagw\"; ha_discovery = true; };\n"
        "buses = ( { name = \"rmu-1\"; type = \"tcp\"; host = \"127.0.0.1\"; port = %d; "
        "timeout_ms = 300; } );\n"
        "@include \"profiles/generic-electricity.cfg\"\n"
        "@include \"profiles/generic-water.cfg\"\n"
        "@include \"profiles/generic-gas.cfg\"\n"
        "enterprises = (\n"
        "  { id = \"chengtong-plastics\"; name = \"湖南城通塑业有限公司\"; meters = (\n"
        "    { id = \"e1\"; utility = \"electricity\"; bus = \"rmu-1\"; unit_id = 1;\n"
        "      profile = \"generic-electricity\"; interval = 1; pt_ratio = 100.0; ct_ratio = 20.0; },\n"
        "    { id = \"w1\"; utility = \"water\"; bus = \"rmu-1\"; unit_id = 11;\n"
        "      profile = \"generic-water\"; interval = 1; },\n"
        "    { id = \"g1\"; utility = \"gas\"; bus = \"rmu-1\"; unit_id = 21;\n"
        "      profile = \"generic-gas\"; interval = 1; } ); }\n"
        ");\n",
        dir, mqtt_port, sim_port);
}

/* 13 electricity + 3 water + 5 gas points. */
#define N_CONFIGS 21

static json_t *config_of(struct h_sub *sub, const char *meter, const char *point)
{
    char *topic = xasprintf("homeassistant/sensor/parkgw_hagw_chengtong-plastics_%s/%s/config",
                            meter, point);
    long i = h_sub_wait(sub, 0, topic, NULL, 10000);
    free(topic);
    struct h_msg m;
    if (i < 0 || !h_sub_get(sub, (size_t)i, &m))
        return NULL;
    json_t *j = json_loads(m.payload, 0, NULL);
    h_msg_free(&m);
    return j;
}

static void check_sensor(struct h_sub *sub, const char *meter, const char *point,
                         const char *device_class, const char *state_class, const char *unit)
{
    json_t *c = config_of(sub, meter, point);
    CHECK(c != NULL);
    if (!c)
        return;
    const char *dc = json_string_value(json_object_get(c, "device_class"));
    if (device_class)
        CHECK_STR(dc, device_class);
    else
        CHECK(dc == NULL);
    CHECK_STR(json_string_value(json_object_get(c, "state_class")), state_class);
    CHECK_STR(json_string_value(json_object_get(c, "unit_of_measurement")), unit);
    json_t *dev = json_object_get(c, "device");
    char *want = xasprintf("湖南城通塑业有限公司 %s", meter);
    CHECK_STR(json_string_value(json_object_get(dev, "name")), want);
    free(want);
    CHECK_STR(json_string_value(json_object_get(c, "availability_topic")), BASE "/status");
    /* The template's key is in the live payload on the state topic. */
    const char *st = json_string_value(json_object_get(c, "state_topic"));
    long i = st ? h_sub_wait(sub, 0, st, NULL, 10000) : -1;
    CHECK(i >= 0);
    struct h_msg m;
    if (i >= 0 && h_sub_get(sub, (size_t)i, &m)) {
        json_t *live = json_loads(m.payload, 0, NULL);
        CHECK(json_is_number(json_object_get(json_object_get(live, "values"), point)));
        char *tmpl = xasprintf("{{ value_json['values']['%s'] }}", point);
        CHECK_STR(json_string_value(json_object_get(c, "value_template")), tmpl);
        free(tmpl);
        json_decref(live);
        h_msg_free(&m);
    }
    json_decref(c);
}

static size_t count_configs(struct h_sub *sub, size_t from)
{
    size_t n = 0, total = h_sub_count(sub);
    for (size_t i = from; i < total; i++) {
        struct h_msg m;
        if (!h_sub_get(sub, i, &m))
            continue;
        if (strncmp(m.topic, "homeassistant/sensor/", 21) == 0)
            n++;
        h_msg_free(&m);
    }
    return n;
}

struct cnt {
    struct h_sub *sub;
    size_t from, want;
};

static bool have_configs(void *ud)
{
    struct cnt *c = ud;
    return count_configs(c->sub, c->from) >= c->want;
}

int main(void)
{
    struct h_park pk;
    h_park_start(&pk, "it_hadisc", make_config, SEED);
    struct h_sub *sub = h_sub_new(pk.mport, "it-hadisc-sub", "#");
    h_park_run(&pk, false);
    struct cnt c = {sub, 0, N_CONFIGS};
    CHECK(h_wait_until(have_configs, &c, 15000));
    CHECK_INT(count_configs(sub, 0), N_CONFIGS);
    check_sensor(sub, "e1", "energy_import_kwh", "energy", "total_increasing", "kWh");
    check_sensor(sub, "e1", "power_kw", "power", "measurement", "kW");
    check_sensor(sub, "e1", "voltage_a_v", "voltage", "measurement", "V");
    check_sensor(sub, "w1", "total_m3", "water", "total_increasing", "m³");
    check_sensor(sub, "w1", "flow_m3h", "volume_flow_rate", "measurement", "m³/h");
    check_sensor(sub, "g1", "volume_nm3", "gas", "total_increasing", "m³");
    h_sub_free(sub);

    /* A new subscriber after a broker restart (persistence on: the
     * retained configs survive; parkgw sends them again anyway). */
    h_stop(&pk.mosq, SIGTERM, 5000);
    h_restart_mosquitto(&pk.mosq, pk.dir, pk.mport);
    CHECK(h_wait_log(&pk.gw, "ha discovery: configs published", 2, 20000));
    sub = h_sub_new(pk.mport, "it-hadisc-sub2", "homeassistant/#");
    c = (struct cnt){sub, 0, N_CONFIGS};
    CHECK(h_wait_until(have_configs, &c, 10000));
    h_sub_free(sub);
    CHECK(h_park_stop_gw(&pk));
    h_park_free(&pk, check_failed > 0);
    return check_done();
}
