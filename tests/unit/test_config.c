/*
 * test_config.c - the config loader: the shipped demo and example configs
 * load with the values they spell out, and every class of mistake is refused
 * with "FILE:LINE: message" naming the file and line of the offending
 * setting. Error fixtures are generated into $PARKGW_TEST_TMP at run time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "tests/unit/check.h"

static char tmpdir[1024];
static char srcdir[1024];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* the shipped configs                                                 */

static const struct cfg_profile *profile_named(const struct config *c, const char *name)
{
    int i = config_find_profile(c, name);
    return i < 0 ? NULL : &c->profiles[i];
}

/* Minutes of the day a band covers (to < from crosses midnight). */
static int band_minutes(const struct cfg_band *b)
{
    int total = 0;
    for (size_t i = 0; i < b->n_hours; i++) {
        int from = b->hours[i].from_min, to = b->hours[i].to_min;
        total += to > from ? to - from : to + 1440 - from;
    }
    return total;
}

static void test_demo(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/config/demo.cfg", srcdir);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "demo.cfg: %s\n", err);
        return;
    }
    /* 29 enterprises x (e1, w1, g1) + 12 wastewater meters = 87 + 12 = 99 */
    CHECK_INT(c->n_enterprises, 29);
    CHECK_INT(config_count_meters(c), 99);
    CHECK_INT(c->n_buses, 6);
    CHECK_INT(c->n_profiles, 4);
    CHECK_INT(c->n_tariffs, 4);
    CHECK_STR(c->gateway_id, "demo");
    CHECK_STR(c->timezone, "Asia/Shanghai");
    CHECK_STR(c->mqtt_uri, "tcp://127.0.0.1:18830");
    CHECK_STR(c->storage_path, "parkgw-demo.db");
    CHECK_STR(c->topic_prefix, "park");
    CHECK(c->mqtt_password == NULL);
    CHECK(!c->tls_set);

    struct cfg_meter *m = config_find_meter(c, "chengtong-plastics/e1");
    CHECK(m != NULL);
    if (m) {
        CHECK_NEAR(m->pt_ratio, 100.0, 0);
        CHECK_NEAR(m->ct_ratio, 75.0, 0);
        CHECK_INT(m->interval, 5);
        CHECK_INT(m->unit_id, 1);
        CHECK_STR(c->buses[m->bus].name, "rmu-1");
        CHECK_INT(c->buses[m->bus].port, 15021);
        CHECK_INT(m->max_registers_per_read, 125);
        CHECK_STR(m->enterprise->name, "湖南城通塑业有限公司");
        CHECK_STR(c->profiles[m->profile].name, "generic-electricity");
    }
    /* the 29th enterprise is the housing area: 3rd RMU (index 28 / 10 = 2), unit 28 % 10 + 1 = 9,
     * and the 12th wastewater meter */
    m = config_find_meter(c, "yijia-housing/e1");
    CHECK(m && strcmp(c->buses[m->bus].name, "rmu-3") == 0 && m->unit_id == 9);
    m = config_find_meter(c, "yijia-housing/ww1");
    CHECK(m && m->unit_id == 12 && m->utility == UTIL_WASTEWATER && m->interval == 10);
    CHECK(config_find_meter(c, "tanjian-machinery/ww1") == NULL);
    CHECK(config_find_meter(c, "tanjian-machinery") == NULL);
    CHECK(config_find_meter(c, "nobody/e1") == NULL);
    m = config_find_meter(c, "tanjian-machinery/g1");
    CHECK(m && m->utility == UTIL_GAS && strcmp(m->enterprise->name, "谭建机械") == 0);

    /* electricity: three seasons; summer (Jul-Sep) and winter (Dec, Jan) with
     * a 2 h critical peak: critical 120 + peak 360 + flat 480 + valley 480
     * minutes; the rest peak 480 + flat 480 + valley 480; 4 + 4 + 3 bands */
    const struct cfg_tariff *te = NULL, *tw = NULL;
    for (size_t i = 0; i < c->n_tariffs; i++) {
        if (c->tariffs[i].utility == UTIL_ELECTRICITY)
            te = &c->tariffs[i];
        if (c->tariffs[i].utility == UTIL_WASTEWATER)
            tw = &c->tariffs[i];
    }
    CHECK(te && te->n_bands == 11 && te->n_seasons == 3);
    if (te && te->n_bands == 11 && te->n_seasons == 3) {
        CHECK_INT(te->seasons[0].months, 1u << 7 | 1u << 8 | 1u << 9);
        CHECK_INT(te->seasons[1].months, 1u << 12 | 1u << 1);
        CHECK_STR(te->bands[0].name, "critical");
        CHECK_INT(band_minutes(&te->bands[0]), 120);
        CHECK_INT(band_minutes(&te->bands[1]), 360);
        CHECK_INT(band_minutes(&te->bands[2]), 480);
        CHECK_INT(band_minutes(&te->bands[3]), 480);
        CHECK_INT(te->bands[8].season, 2);
        CHECK_STR(te->bands[8].name, "peak");
        CHECK_INT(band_minutes(&te->bands[8]), 480);
        CHECK_INT(te->bands[3].hours[0].from_min, 23 * 60);
        CHECK_INT(te->bands[3].hours[0].to_min, 7 * 60);
        CHECK_NEAR(te->bands[2].price, 0.5970, 1e-12);
        CHECK_STR(te->currency, "CNY");
        /* the two-part keys and the national 0.90 table through @include */
        CHECK_NEAR(te->demand_price, 33.0, 0);
        CHECK_NEAR(te->capacity_price, 22.0, 0);
        CHECK_NEAR(te->surcharge, 0.0295, 1e-12);
        CHECK_NEAR(te->pf_standard, 0.90, 1e-12);
        CHECK_INT(te->n_pf_adjust, 96);
    }
    /* chengtong-plastics/e1 (CT 75): maximum demand; a CT-40 meter: 630 kVA */
    CHECK(c->enterprises[0].meters[0].max_demand);
    CHECK(c->enterprises[0].meters[0].reactive >= 0);
    CHECK_NEAR(c->enterprises[2].meters[0].capacity_kva, 630.0, 0);
    CHECK(tw && tw->n_bands == 0);
    if (tw)
        CHECK_NEAR(tw->price, 1.20, 1e-12);

    const struct cfg_profile *pe = profile_named(c, "generic-electricity");
    CHECK(pe != NULL);
    CHECK_INT(config_find_profile(c, "generic-electricty"), -1);
    CHECK_INT(config_find_profile(c, ""), -1);
    if (pe) {
        CHECK_INT(pe->utility, UTIL_ELECTRICITY);
        CHECK_INT(profile_find_point(pe, "energy_import"), -1);
        CHECK_INT(profile_find_point(pe, "ENERGY_IMPORT_KWH"), -1);
        CHECK_INT(profile_find_point(pe, pe->points[pe->n_points - 1].name),
                  (long long)pe->n_points - 1);
        CHECK_INT(profile_billing_point(pe), profile_find_point(pe, "energy_import_kwh"));
        const struct cfg_point *p = &pe->points[profile_billing_point(pe)];
        CHECK_INT(p->type, PT_FLOAT32);
        CHECK_INT(p->order, WO_ABCD);
        CHECK_INT(p->kind, KIND_COUNTER);
        CHECK_INT(p->ratio, RATIO_PT_CT);
        CHECK_CONTAINS(pe->file, "profiles/generic-electricity.cfg");
        CHECK_INT(pe->n_alarms, 1);
        if (pe->n_alarms == 1) {
            CHECK_STR(pe->alarms[0].name, "supply_lost");
            CHECK_INT(pe->alarms[0].point, profile_find_point(pe, "voltage_a_v"));
            CHECK(pe->alarms[0].has_below && !pe->alarms[0].has_above);
            CHECK_NEAR(pe->alarms[0].for_s, 5.0, 0);
        }
        int v = profile_find_point(pe, "voltage_a_v");
        CHECK(v >= 0 && pe->points[v].ratio == RATIO_PT && pe->points[v].kind == KIND_GAUGE);
        int a = profile_find_point(pe, "current_a_a");
        CHECK(a >= 0 && pe->points[a].ratio == RATIO_CT);
        int pf = profile_find_point(pe, "pf");
        CHECK(pf >= 0 && pe->points[pf].ratio == RATIO_NONE);
    }
    const struct cfg_profile *pg = profile_named(c, "generic-gas");
    CHECK(pg != NULL);
    if (pg) {
        int i = profile_find_point(pg, "volume_nm3");
        CHECK(i >= 0);
        if (i >= 0) {
            CHECK_INT(pg->points[i].type, PT_UINT32);
            CHECK_INT(pg->points[i].order, WO_CDAB);
            CHECK_NEAR(pg->points[i].scale, 0.01, 0);
            CHECK_NEAR(pg->points[i].offset, 0, 0);
            CHECK_INT(pg->points[i].fc, 3);
            CHECK(pg->points[i].billing);
            CHECK_NEAR(pg->points[i].max_rate, 2000.0, 0);
        }
        i = profile_find_point(pg, "valve_closed");
        CHECK(i >= 0 && pg->points[i].fc == 2 && pg->points[i].type == PT_BOOL);
        i = profile_find_point(pg, "temperature_c");
        CHECK(i >= 0 && pg->points[i].type == PT_INT16 && pg->points[i].order == WO_ABCD);
    }
    const struct cfg_profile *pw = profile_named(c, "generic-wastewater");
    CHECK(pw && pw->n_points == 2 && pw->points[0].type == PT_FLOAT64 &&
          pw->points[1].order == WO_DCBA && pw->n_alarms == 1);
    if (pw && pw->n_alarms == 1)
        CHECK_STR(pw->alarms[0].name, "no_flow");
    /* Water and gas lose their supply as a pressure drop: supply_lost. */
    const char *pressure_profiles[] = {"generic-water", "generic-gas"};
    for (size_t k = 0; k < 2; k++) {
        const struct cfg_profile *pp = profile_named(c, pressure_profiles[k]);
        int found = -1;
        for (size_t a = 0; pp && a < pp->n_alarms; a++)
            if (strcmp(pp->alarms[a].name, "supply_lost") == 0)
                found = (int)a;
        CHECK(found >= 0);
        if (found >= 0)
            CHECK_INT(pp->alarms[found].point, profile_find_point(pp, "pressure_kpa"));
    }
    config_free(c);
}

static void test_example(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/config/park.example.cfg", srcdir);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "park.example.cfg: %s\n", err);
        return;
    }
    /* 5 enterprises: 4 + 4 + 3 + 4 + 3 meters = 18 */
    CHECK_INT(c->n_enterprises, 5);
    CHECK_INT(config_count_meters(c), 18);
    CHECK_INT(c->n_buses, 5);
    CHECK_STR(c->gateway_id, "gw1");
    CHECK_INT(c->summary_interval, 60);
    CHECK_INT(c->outbox_max_messages, 1000000);
    CHECK_INT(c->raw_retention_days, 400);
    const struct cfg_bus *b = &c->buses[2];
    CHECK_STR(b->name, "rs485-water");
    CHECK_INT(b->type, BUS_RTU);
    CHECK_STR(b->device, "/dev/ttyUSB0");
    CHECK_INT(b->baud, 9600);
    CHECK_INT(b->parity, 'E');
    CHECK_INT(b->data_bits, 8);
    CHECK_INT(b->stop_bits, 1);
    CHECK_INT(b->timeout_ms, 300);
    CHECK_INT(b->byte_timeout_ms, 0);
    CHECK_INT(c->buses[4].byte_timeout_ms, 50);
    CHECK_STR(c->buses[0].host, "10.0.0.21");
    CHECK_INT(c->buses[0].port, 502);
    struct cfg_meter *m = config_find_meter(c, "hongfei-casting/e1");
    CHECK(m && m->max_registers_per_read == 32 && !m->no_gap_fill && !m->one_request_per_point);
    m = config_find_meter(c, "jiekun-doors/w1");
    CHECK(m && m->pt_ratio == 1.0 && m->ct_ratio == 1.0 && m->interval == 60);
    config_free(c);
}

static void test_helpers(void)
{
    enum utility u = UTIL_GAS;
    CHECK_STR(utility_name(UTIL_WASTEWATER), "wastewater");
    CHECK_STR(utility_unit(UTIL_ELECTRICITY), "kWh");
    CHECK_STR(utility_unit(UTIL_GAS), "Nm3");
    CHECK_STR(utility_unit(UTIL_WATER), "m3");
    CHECK_INT(utility_parse("water", &u), 0);
    CHECK_INT(u, UTIL_WATER);
    CHECK_INT(utility_parse("steam", &u), -EINVAL);
    CHECK_INT(u, UTIL_WATER);
    CHECK_STR(point_type_name(PT_FLOAT64), "float64");
    CHECK_STR(point_type_name(PT_BOOL), "bool");
    CHECK_INT(point_type_regs(PT_INT16), 1);
    CHECK_INT(point_type_regs(PT_UINT16), 1);
    CHECK_INT(point_type_regs(PT_BOOL), 1);
    CHECK_INT(point_type_regs(PT_UINT32), 2);
    CHECK_INT(point_type_regs(PT_FLOAT32), 2);
    CHECK_INT(point_type_regs(PT_INT64), 4);
    CHECK_INT(point_type_regs(PT_FLOAT64), 4);
    struct cfg_point pts[2] = {{.name = "a"}, {.name = "b", .billing = true}};
    struct cfg_profile p = {.points = pts, .n_points = 2};
    CHECK_INT(profile_billing_point(&p), 1);
    pts[1].billing = false;
    CHECK_INT(profile_billing_point(&p), -1);
    config_free(NULL);
}

/* ------------------------------------------------------------------ */
/* error fixtures                                                      */

/* A small valid config in pieces; each case replaces one or more. */
#define GATEWAY "gateway = { id = \"gw1\"; timezone = \"UTC\"; };\n"
#define STORAGE "storage = { path = \"x.db\"; };\n"
#define MQTT "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
#define BUSES                                                                              \
    "buses = (\n"                                                                          \
    "  { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; },\n"                        \
    "  { name = \"r1\"; type = \"rtu\"; device = \"/dev/null\"; }\n"                       \
    ");\n"
#define POINTS                                                                             \
    "    points = (\n"                                                                     \
    "      { name = \"total_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; " \
    "billing = true; },\n"                                                                 \
    "      { name = \"flow_m3h\"; fc = 3; address = 4; type = \"float32\"; }\n"            \
    "    );\n"
#define PROFILES                                                                           \
    "profiles = (\n"                                                                       \
    "  { name = \"p\"; utility = \"water\";\n" POINTS                                      \
    "    alarms = ( { name = \"low\"; point = \"flow_m3h\"; below = 1.0; } );\n"          \
    "  }\n"                                                                                \
    ");\n"
#define METER_W1 "{ id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"p\"; interval = 10; }"
#define ENTS                                                                               \
    "enterprises = (\n"                                                                    \
    "  { id = \"a\"; name = \"A\";\n"                                                      \
    "    meters = ( " METER_W1 " );\n"                                                    \
    "  }\n"                                                                                \
    ");\n"
#define TARIFFS "tariffs = ( { utility = \"water\"; currency = \"CNY\"; price = 3.9; } );\n"

struct ecase {
    const char *name;
    const char *gateway, *storage, *mqtt, *buses, *profiles, *ents, *tariffs;
    const char *want; /* the message must contain this */
};

/* Profile text with one point (plus the billing counter) replaced. */
#define PROF_WITH(extra_points)                                                            \
    "profiles = (\n"                                                                       \
    "  { name = \"p\"; utility = \"water\";\n"                                            \
    "    points = (\n"                                                                     \
    "      { name = \"total_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; " \
    "billing = true; },\n" extra_points "    );\n"                                         \
    "  }\n"                                                                                \
    ");\n"

/* An electricity profile with one point besides its billing counter. */
#define PROF_ELEC_WITH(extra_points)                                                       \
    "profiles = (\n"                                                                       \
    "  { name = \"p\"; utility = \"electricity\";\n"                                      \
    "    points = (\n"                                                                     \
    "      { name = \"energy_kwh\"; fc = 3; address = 0; type = \"uint32\"; "              \
    "kind = \"counter\"; billing = true; ratio = \"pt_ct\"; },\n" extra_points "    );\n"  \
    "  }\n"                                                                                \
    ");\n"

#define ENT_WITH(meters)                                                                   \
    "enterprises = (\n"                                                                    \
    "  { id = \"a\"; name = \"A\";\n"                                                      \
    "    meters = (\n" meters "    );\n"                                                   \
    "  }\n"                                                                                \
    ");\n"


/* DL/T 645 and CJ/T 188: buses, profiles and meters (test_cn_keys and the
 * error cases). */
#define CN_BUSES                                                                           \
    "buses = (\n"                                                                          \
    "  { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; },\n"                        \
    "  { name = \"d1\"; type = \"rtu\"; device = \"/dev/null\"; protocol = \"dlt645-2007\"; baud = 2400; },\n" \
    "  { name = \"c1\"; type = \"rtu\"; device = \"/dev/zero\"; protocol = \"cjt188\"; }\n" \
    ");\n"
#define CN_PROFILES                                                                        \
    "profiles = (\n"                                                                       \
    "  { name = \"p\"; utility = \"water\";\n" POINTS "  },\n"                             \
    "  { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n" \
    "    { name = \"energy_import_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\"; block = \"0001FF00\";\n" \
    "      kind = \"counter\"; billing = true; ct_pt = true; },\n"                         \
    "    { name = \"energy_import_t2_kwh\"; di = \"00010200\"; format = \"XXXXXX.XX\"; block = \"0001FF00\"; kind = \"counter\"; },\n" \
    "    { name = \"voltage_b_v\"; di = \"02010200\"; format = \"XXX.X\"; block = \"0201FF00\"; },\n" \
    "    { name = \"current_a_a\"; di = \"02020100\"; format = \"XXX.XXX\"; signed = true; },\n" \
    "    { name = \"energy_total_kwh\"; di = \"00000000\"; format = \"XXXXXX.XX\"; signed = true; }\n" \
    "  ); },\n"                                                                            \
    "  { name = \"w188\"; utility = \"water\"; protocol = \"cjt188\"; meter_type = 0x10; points = (\n" \
    "    { name = \"volume_m3\"; di = \"901F\"; field = \"flow\"; kind = \"counter\"; billing = true; },\n" \
    "    { name = \"settlement_m3\"; di = \"901f\"; field = \"settlement_flow\"; kind = \"counter\"; }\n" \
    "  ); }\n"                                                                             \
    ");\n"
#define CN_ENTS(extra)                                                                     \
    "enterprises = (\n"                                                                    \
    "  { id = \"a\"; name = \"A\";\n"                                                      \
    "    meters = ( " METER_W1 ",\n"                                                      \
    "      { id = \"e1\"; utility = \"electricity\"; bus = \"d1\"; address = \"000012345678\";\n" \
    "        profile = \"e645\"; interval = 10; },\n"                                       \
    "      { id = \"w2\"; utility = \"water\"; bus = \"c1\"; address = \"12345678901234\";\n" \
    "        profile = \"w188\"; interval = 60; }" extra "\n"                               \
    "    );\n"                                                                             \
    "  }\n"                                                                                \
    ");\n"
#define CN_TARIFFS                                                                         \
    "tariffs = ( { utility = \"water\"; currency = \"CNY\"; price = 3.9; },\n"             \
    "            { utility = \"electricity\"; currency = \"CNY\"; price = 0.7; } );\n"
#define CN_CASE(n, b, p, e, w) {n, .buses = b, .profiles = p, .ents = e, .tariffs = CN_TARIFFS, .want = w}

static const struct ecase cases[] = {
    /* DL/T 645 and CJ/T 188 */
    CN_CASE("cn-protocol",
            "buses = ( { name = \"d1\"; type = \"rtu\"; device = \"/dev/null\";\n"
            "  protocol = \"iec1107\"; } ); #!\n", CN_PROFILES, CN_ENTS(""), "protocol 'iec1107' must be"),
    CN_CASE("cn-tcp-protocol",
            "buses = ( { name = \"d1\"; type = \"tcp\"; host = \"h\";\n"
            "  protocol = \"dlt645-2007\"; } ); #!\n", CN_PROFILES, CN_ENTS(""), "'protocol' is not valid for a tcp bus"),
    CN_CASE("cn-mismatch", CN_BUSES, CN_PROFILES,
            CN_ENTS(",\n { id = \"e2\"; utility = \"electricity\"; bus = \"b1\"; unit_id = 3; #!\n"
                    "   profile = \"e645\"; interval = 10; }"),
            "bus 'b1' speaks modbus, but profile 'e645' is for dlt645-2007 meters"),
    CN_CASE("cn-address-digits", CN_BUSES, CN_PROFILES,
            CN_ENTS(",\n { id = \"e2\"; utility = \"electricity\"; bus = \"d1\"; profile = \"e645\";\n"
                    "   address = \"0000123456\"; interval = 10; } #!"),
            "must be the meter's number as printed: 12 digits"),
    CN_CASE("cn-address-unit", CN_BUSES, CN_PROFILES,
            CN_ENTS(",\n { id = \"e2\"; utility = \"electricity\"; bus = \"d1\"; profile = \"e645\";\n"
                    "   unit_id = 2; address = \"000012345679\"; interval = 10; } #!"),
            "'unit_id' is not valid for a meter on dlt645-2007 bus 'd1'"),
    CN_CASE("cn-address-dup", CN_BUSES, CN_PROFILES,
            CN_ENTS(",\n { id = \"e2\"; utility = \"electricity\"; bus = \"d1\"; profile = \"e645\";\n"
                    "   address = \"000012345678\"; interval = 10; } #!"),
            "address 000012345678 on bus 'd1' is already used by meter 'a/e1'"),
    CN_CASE("cn-address-modbus", CN_BUSES, CN_PROFILES,
            CN_ENTS(",\n { id = \"w3\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 9;\n"
                    "   address = \"000012345678\"; interval = 10; } #!"),
            "address is for meters on dlt645-2007 or cjt188 buses"),
    CN_CASE("cn-di-hex", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"0001000G\"; format = \"XXXXXX.XX\"; kind = \"counter\"; billing = true; } #!\n"
            "); } );\n", "", "di '0001000G' must be 8 hexadecimal digits"),
    CN_CASE("cn-format", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"00010000\"; format = \"XX.X\"; kind = \"counter\"; billing = true; } #!\n"
            "); } );\n", "", "format 'XX.X' is not a DL/T 645 data format"),
    CN_CASE("cn-format-time", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"05060001\"; format = \"YYMMDDhhmm\"; kind = \"counter\"; billing = true; } #!\n"
            "); } );\n", "", "is a date/time; a point needs a number"),
    CN_CASE("cn-block", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\"; block = \"0002FF00\"; kind = \"counter\"; billing = true; } #!\n"
            "); } );\n", "", "di 00010000 is not an item of block 0002FF00"),
    CN_CASE("cn-block-unknown", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"04000101\"; format = \"XXXXXX.XX\"; block = \"0400FF01\"; kind = \"counter\"; billing = true; } #!\n"
            "); } );\n", "", "block 0400FF01 is not one parkgw reads"),
    CN_CASE("cn-block-format", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\"; block = \"0001FF00\"; kind = \"counter\"; billing = true; },\n"
            "  { name = \"t1_kwh\"; di = \"00010100\"; format = \"XXXXXXXX.XX\"; block = \"0001FF00\"; kind = \"counter\"; } #!\n"
            "); } );\n", "", "its format has 5 bytes, point 'e_kwh'"),
    CN_CASE("cn-fc", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\"; points = (\n"
            "  { name = \"e_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\"; kind = \"counter\"; billing = true;\n"
            "    fc = 3; } #!\n"
            "); } );\n", "", "'fc' is not valid in a dlt645-2007 profile"),
    CN_CASE("cn-di-modbus", CN_BUSES,
            "profiles = ( { name = \"p\"; utility = \"water\"; points = (\n"
            "  { name = \"t_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; billing = true;\n"
            "    di = \"901F\"; } #!\n"
            "); } );\n", "", "'di' needs the profile's protocol"),
    CN_CASE("cn-meter-type", CN_BUSES,
            "profiles = ( { name = \"w188\"; utility = \"water\"; protocol = \"cjt188\";\n"
            "  meter_type = 0x20; #!\n"
            "  points = ( { name = \"v_m3\"; di = \"901F\"; field = \"flow\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "parkgw reads CJ/T 188 water (0x10-0x1F) and gas"),
    CN_CASE("cn-meter-type-missing", CN_BUSES,
            "profiles = ( { name = \"w188\"; utility = \"water\"; protocol = \"cjt188\"; #!\n"
            "  points = ( { name = \"v_m3\"; di = \"901F\"; field = \"flow\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "missing required setting 'meter_type'"),
    CN_CASE("cn-settlement-modbus", CN_BUSES,
            "profiles = ( { name = \"p\"; utility = \"water\"; settlement = true; #!\n"
            "  points = ( { name = \"t_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "settlement applies only to dlt645-2007 profiles"),
    CN_CASE("cn-settlement-di", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\";\n"
            "  settlement = true; #!\n"
            "  points = ( { name = \"e_kwh\"; di = \"00010001\"; format = \"XXXXXX.XX\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "settlement needs a billing point whose di ends in 00"),
    CN_CASE("cn-daily-modbus", CN_BUSES,
            "profiles = ( { name = \"p\"; utility = \"water\"; daily_frozen = 7; #!\n"
            "  points = ( { name = \"t_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "daily_frozen applies only to dlt645-2007 profiles"),
    CN_CASE("cn-daily-di", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\";\n"
            "  daily_frozen = 7; #!\n"
            "  points = ( { name = \"e_kwh\"; di = \"00010100\"; format = \"XXXXXX.XX\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "daily_frozen needs a billing point that is a total energy"),
    CN_CASE("cn-daily-range", CN_BUSES,
            "profiles = ( { name = \"e645\"; utility = \"electricity\"; protocol = \"dlt645-2007\";\n"
            "  daily_frozen = 63; #!\n"
            "  points = ( { name = \"e_kwh\"; di = \"00010000\"; format = \"XXXXXX.XX\"; kind = \"counter\"; billing = true; } ); } );\n",
            "", "daily_frozen"),
    CN_CASE("cn-field", CN_BUSES,
            "profiles = ( { name = \"w188\"; utility = \"water\"; protocol = \"cjt188\"; meter_type = 0x10;\n"
            "  points = ( { name = \"v_m3\"; di = \"901F\"; kind = \"counter\"; billing = true;\n"
            "    field = \"heat\"; } ); } ); #!\n",
            "", "field 'heat' must be \"flow\" or \"settlement_flow\""),
    /* syntax and top level */
    {"syntax", .storage = "storage = { path = ; }; #!\n", .want = "syntax error"},
    {"dup-setting", .storage = "storage = { path = \"x\";\n path = \"y\"; }; #!\n",
     .want = "duplicate setting name"},
    {"unknown-top", .tariffs = TARIFFS "tarifs = ( ); #!\n", .want = "did you mean 'tariffs'"},
    {"missing-gateway", .gateway = "#!\n", .want = "missing required setting 'gateway'"},
    /* gateway */
    {"unknown-key", .gateway = "gateway = {\n  id = \"gw1\";\n  timezon = \"UTC\"; #!\n};\n",
     .want = "unknown setting 'timezon' (did you mean 'timezone'?)"},
    {"gateway-id", .gateway = "gateway = {\n  id = \"GW_1\"; #!\n};\n", .want = "[a-z0-9-]+"},
    {"timezone", .gateway = "gateway = { id = \"gw1\";\n timezone = \"Mars/Olympus\"; }; #!\n",
     .want = "unknown time zone 'Mars/Olympus'"},
    {"log-level", .gateway = "gateway = { id = \"gw1\";\n log_level = \"loud\"; }; #!\n",
     .want = "log_level 'loud'"},
    /* gateway.http (docs/OPERATOR.md) */
    {"http-public", .gateway = "gateway = { id = \"gw1\";\n http = {\n listen = \"0.0.0.0:8080\"; #!\n }; };\n",
     .want = "is not a loopback address: it needs password_file"},
    {"http-public-default6", .gateway = "gateway = { id = \"gw1\";\n http = { listen = \"[::]:8080\"; }; }; #!\n",
     .want = "needs password_file"},
    {"http-port", .gateway = "gateway = { id = \"gw1\";\n http = { listen = \"127.0.0.1:0\"; }; }; #!\n",
     .want = "port must be 1..65535"},
    {"http-host", .gateway = "gateway = { id = \"gw1\";\n http = { listen = \"park.example:80\"; }; }; #!\n",
     .want = "host must be a numeric IPv4 address"},
    {"http-key", .gateway = "gateway = { id = \"gw1\";\n http = { listn = \"127.0.0.1:80\"; }; }; #!\n",
     .want = "did you mean 'listen'"},
    {"http-pass", .gateway = "gateway = { id = \"gw1\";\n http = { listen = \"10.0.0.5:80\";\n"
                             "  password_file = \"/nonexistent/http.pass\"; }; }; #!\n",
     .want = "cannot read password_file '/nonexistent/http.pass'"},
    /* alerts (docs/OPERATOR.md) */
    {"alerts-format", .tariffs = TARIFFS "alerts = { webhooks = ( { name = \"a\";\n url = \"http://h/x\";\n format = \"slack\"; } ); }; #!\n",
     .want = "format 'slack' must be json, wecom or dingtalk"},
    {"alerts-url", .tariffs = TARIFFS "alerts = { webhooks = ( { name = \"a\";\n url = \"ftp://h/x\"; } ); }; #!\n",
     .want = "must start with http:// or https://"},
    {"alerts-dup", .tariffs = TARIFFS "alerts = { webhooks = ( { name = \"a\"; url = \"http://h/x\"; },\n { name = \"a\"; url = \"http://h/y\"; } ); }; #!\n",
     .want = "duplicate webhook name 'a'"},
    {"alerts-events", .tariffs = TARIFFS "alerts = { webhooks = ( { name = \"a\"; url = \"http://h/x\";\n events = [ ]; } ); }; #!\n",
     .want = "events must be a non-empty list"},
    {"alerts-secret", .tariffs = TARIFFS "alerts = { webhooks = ( { name = \"a\"; url = \"http://h/x\";\n secret = \"SECx\"; } ); }; #!\n",
     .want = "secret is the signing secret of a dingtalk robot"},
    {"alerts-interval", .tariffs = TARIFFS "alerts = {\n min_interval = -1; }; #!\n",
     .want = "'min_interval' = -1 is out of range"},
    /* storage, mqtt */
    {"storage-path", .storage = "storage = { #!\n  raw_retention_days = 10; };\n",
     .want = "missing required setting 'path'"},
    {"wrong-type", .mqtt = "mqtt = { uri = \"tcp://h:1\";\n summary_interval = \"60\"; }; #!\n",
     .want = "'summary_interval' must be an integer"},
    {"summary-interval", .mqtt = "mqtt = { uri = \"tcp://h:1\";\n summary_interval = 0; }; #!\n",
     .want = "out of range 1.."},
    {"outbox", .mqtt = "mqtt = { uri = \"tcp://h:1\";\n outbox_max_messages = 0; }; #!\n",
     .want = "'outbox_max_messages' = 0 is out of range"},
    {"password-file",
     .mqtt = "mqtt = { uri = \"tcp://h:1\"; username = \"u\";\n"
             "  password_file = \"/nonexistent/parkgw.pass\"; #!\n};\n",
     .want = "cannot read password_file '/nonexistent/parkgw.pass'"},
    {"uri", .mqtt = "mqtt = {\n uri = \"http://h:1\"; }; #!\n", .want = "uri 'http://h:1'"},
    {"tls-plain", .mqtt = "mqtt = { uri = \"tcp://h:1\";\n tls = { }; }; #!\n",
     .want = "tls is set but uri"},
    /* buses */
    {"tcp-host", .buses = "buses = (\n { name = \"b1\"; type = \"tcp\"; } #!\n);\n",
     .want = "missing required setting 'host'"},
    {"rtu-device", .buses = "buses = (\n { name = \"b1\"; type = \"rtu\"; baud = 9600; } #!\n);\n",
     .want = "missing required setting 'device'"},
    /* issue 14: numbers past the double range and impossible addresses */
    {"host-ipv4", .buses = "buses = (\n { name = \"b1\"; type = \"tcp\"; host = \"999.1.1.1\"; } #!\n);\n",
     .want = "host '999.1.1.1' is not an address or a host name"},
    {"host-name", .buses = "buses = (\n { name = \"b1\"; type = \"tcp\"; host = \"rmu_1.park\"; } #!\n);\n",
     .want = "host 'rmu_1.park' is not an address or a host name"},
    {"pt-ratio-inf", .ents = "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
                             " { id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"p\";\n"
                             "   interval = 10; pt_ratio = 1e400; } #!\n ); } );\n",
     .want = "'pt_ratio' is out of range (inf)"},
    {"ct-ratio-huge", .ents = "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
                              " { id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"p\";\n"
                              "   interval = 10; ct_ratio = 1.7e308; } #!\n ); } );\n",
     .want = "'ct_ratio' is out of range"},
    {"scale-inf", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; scale = 1e400; } #!\n"),
     .want = "'scale' is out of range (inf)"},
    {"offset-inf", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; offset = -1e400; } #!\n"),
     .want = "'offset' is out of range (-inf)"},
    {"price-inf", .tariffs = "tariffs = (\n { utility = \"water\"; currency = \"CNY\"; price = 1e400; } #!\n);\n",
     .want = "'price' is out of range (inf)"},
    {"bus-type", .buses = "buses = ( { name = \"b1\";\n type = \"udp\"; } ); #!\n",
     .want = "type 'udp'"},
    {"parity", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                        " parity = \"X\"; } ); #!\n",
     .want = "parity 'X'"},
    {"data-bits", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                           " data_bits = 9; } ); #!\n",
     .want = "'data_bits' = 9 is out of range 5..8"},
    {"stop-bits", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                           " stop_bits = 3; } ); #!\n",
     .want = "'stop_bits' = 3 is out of range 1..2"},
    {"baud", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                      " baud = 0; } ); #!\n",
     .want = "'baud' = 0 is out of range"},
    {"baud-9601", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                           " baud = 9601; } ); #!\n",
     .want = "baud 9601 is not a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200)"},
    {"data-bits-7", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                             " data_bits = 7; } ); #!\n",
     .want = "data_bits 7: Modbus RTU, DL/T 645 and CJ/T 188 need 8 data bits"},
    {"timeout", .buses = "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"h\";\n"
                         " timeout_ms = 0; } ); #!\n",
     .want = "'timeout_ms' = 0 is out of range"},
    {"rtu-key-on-tcp", .buses = "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"h\";\n"
                                " baud = 9600; } ); #!\n",
     .want = "'baud' is not valid for a tcp bus"},
    {"rs485-on-tcp", .buses = "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"h\";\n"
                              " rs485 = true; } ); #!\n",
     .want = "'rs485' is not valid for a tcp bus"},
    {"rs485-type", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                            " rs485 = 1; } ); #!\n",
     .want = "'rs485' must be true or false"},
    {"frame-delay", .buses = "buses = ( { name = \"b1\"; type = \"rtu\"; device = \"/dev/null\";\n"
                             " frame_delay_ms = 20000; } ); #!\n",
     .want = "'frame_delay_ms' = 20000 is out of range 0..10000"},
    /* integer + fraction totalisers */
    {"frac-self", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                        "\"uint32\"; frac_address = 11; } #!\n"),
     .want = "fraction registers 11..12 overlap the point's own registers 10..11"},
    {"frac-other", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                         "\"uint32\"; frac_address = 1; } #!\n"),
     .want = "point 'x_m3' (fc 3, registers 1..2) overlaps point 'total_m3' (registers 0..1"},
    {"frac-span", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                        "\"uint32\"; frac_address = 134; } #!\n"),
     .want = "span registers 10..135; they must fit one request"},
    {"frac-type", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                        "\"uint32\"; frac_address = 12; frac_type = \"bool\"; } #!\n"),
     .want = "frac_type 'bool' must be a register type"},
    {"frac-type-alone", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                              "\"uint32\"; frac_type = \"uint16\"; } #!\n"),
     .want = "frac_type needs frac_address"},
    {"frac-scale-alone", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                               "\"uint32\"; frac_scale = 0.001; } #!\n"),
     .want = "frac_scale needs frac_address"},
    {"frac-scale-zero", .profiles = PROF_WITH("      { name = \"x_m3\"; fc = 3; address = 10; type = "
                                              "\"uint32\"; frac_address = 12; frac_scale = 0.0; } #!\n"),
     .want = "frac_scale must be a non-zero number"},
    {"frac-bits", .profiles = PROF_WITH("      { name = \"x_on\"; fc = 1; address = 10; type = "
                                        "\"bool\"; frac_address = 12; } #!\n"),
     .want = "frac_address needs fc 3 or 4"},
    {"dup-bus", .buses = "buses = (\n { name = \"b1\"; type = \"tcp\"; host = \"h\"; },\n"
                         " { name = \"b1\"; type = \"tcp\"; host = \"i\"; } #!\n);\n",
     .want = "duplicate bus name (first defined at line"},
    /* points */
    {"fc", .profiles = PROF_WITH("      { name = \"x\"; fc = 5; address = 9; type = \"uint16\"; } #!\n"),
     .want = "'fc' = 5 is out of range 1..4"},
    {"type", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"float16\"; } #!\n"),
     .want = "unknown type 'float16'"},
    {"bool-fc3", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"bool\"; } #!\n"),
     .want = "type bool needs fc 1"},
    {"fc1-uint16", .profiles = PROF_WITH("      { name = \"x\"; fc = 1; address = 9; type = \"uint16\"; } #!\n"),
     .want = "type must be bool"},
    {"address-range", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 70000; type = \"uint16\"; } #!\n"),
     .want = "'address' = 70000 is out of range 0..65535"},
    {"address-width", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 65534; type = \"float64\"; } #!\n"),
     .want = "runs past register 65535"},
    {"order", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int32\"; order = \"ABDC\"; } #!\n"),
     .want = "unknown order 'ABDC'"},
    {"order-16bit", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; order = \"CDAB\"; } #!\n"),
     .want = "order applies only to 32- and 64-bit types"},
    {"kind", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; kind = \"meter\"; } #!\n"),
     .want = "kind 'meter'"},
    {"scale-0", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; scale = 0.0; } #!\n"),
     .want = "scale must not be 0"},
    {"point-unknown-key", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"int16\"; scael = 1.0; } #!\n"),
     .want = "unknown setting 'scael' (did you mean 'scale'?)"},
    {"two-billing", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"uint32\"; kind = \"counter\"; billing = true; } #!\n"),
     .want = "only one point per profile may have billing = true"},
    {"billing-gauge", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n    points = (\n"
                                  "      { name = \"t\"; fc = 3; address = 0; type = \"uint32\"; billing = true; } #!\n"
                                  "    );\n  }\n);\n",
     .want = "the billing point must be kind = \"counter\""},
    {"no-billing", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\"; #!\n    points = (\n"
                               "      { name = \"t\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; }\n"
                               "    );\n  }\n);\n",
     .want = "no billing counter"},
    {"overlap", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 1; type = \"uint16\"; } #!\n"),
     .want = "point 'x' (fc 3, registers 1..1) overlaps point 'total_m3'"},
    {"overlap-same", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 0; type = \"uint32\"; } #!\n"),
     .want = "overlaps point 'total_m3'"},
    {"dup-point", .profiles = PROF_WITH("      { name = \"total_m3\"; #!\n fc = 3; address = 9; type = \"uint16\"; }\n"),
     .want = "duplicate point 'total_m3'"},
    {"ct-pt-water", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"uint16\";\n ct_pt = true; } #!\n"),
     .want = "ct_pt applies only to electricity"},
    {"utilities-and-utility", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n utilities = [ \"water\" ]; #!\n" POINTS "  }\n);\n",
     .want = "set either utility or utilities, not both"},
    {"utilities-empty", .profiles = "profiles = (\n  { name = \"p\";\n utilities = [ ]; #!\n" POINTS "  }\n);\n",
     .want = "utilities must be a non-empty array"},
    {"utilities-unknown", .profiles = "profiles = (\n  { name = \"p\";\n utilities = [ \"water\", \"steam\" ]; #!\n" POINTS "  }\n);\n",
     .want = "utilities[1]: 'steam' is not a utility"},
    {"utilities-twice", .profiles = "profiles = (\n  { name = \"p\";\n utilities = [ \"water\", \"water\" ]; #!\n" POINTS "  }\n);\n",
     .want = "'water' listed twice"},
    {"utilities-electricity", .profiles = "profiles = (\n  { name = \"p\";\n utilities = [ \"water\", \"electricity\" ]; #!\n" POINTS "  }\n);\n",
     .want = "an electricity meter model meters only electricity"},
    {"utilities-none", .profiles = "profiles = (\n  { name = \"p\"; #!\n" POINTS "  }\n);\n",
     .want = "missing required setting 'utility' (or 'utilities'"},
    {"ratio-water", .profiles = PROF_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"uint16\";\n ratio = \"ct\"; } #!\n"),
     .want = "ratio applies only to electricity"},
    {"ratio-unknown", .profiles = PROF_ELEC_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"uint16\";\n ratio = \"kv\"; } #!\n"),
     .want = "ratio 'kv' must be \"pt\""},
    {"ratio-and-ct-pt", .profiles = PROF_ELEC_WITH("      { name = \"x\"; fc = 3; address = 9; type = \"uint16\"; ct_pt = true;\n ratio = \"pt_ct\"; } #!\n"),
     .want = "ratio and ct_pt both set"},
    {"ratio-billing-pt", .profiles = "profiles = (\n  { name = \"p\"; utility = \"electricity\";\n    points = (\n"
                                     "      { name = \"e\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\"; billing = true;\n ratio = \"pt\"; } #!\n"
                                     "    );\n  }\n);\n",
     .want = "its ratio is \"pt_ct\", not \"pt\""},
    {"ratio-bool", .profiles = PROF_ELEC_WITH("      { name = \"x\"; fc = 1; address = 9; type = \"bool\";\n ratio = \"pt\"; } #!\n"),
     .want = "a bool point has no ratio"},
    {"profile-utility", .profiles = "profiles = (\n  { name = \"p\";\n utility = \"steam\"; #!\n" POINTS "  }\n);\n",
     .want = "unknown utility 'steam'"},
    {"dup-profile", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n" POINTS "  },\n"
                                "  { name = \"p\"; #!\n utility = \"water\";\n" POINTS "  }\n);\n",
     .want = "duplicate profile name (first defined at "},
    /* alarms */
    {"alarm-point", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n" POINTS
                                "    alarms = ( { name = \"low\";\n point = \"flow\"; below = 1.0; } ); #!\n  }\n);\n",
     .want = "alarm 'low': unknown point 'flow'"},
    {"alarm-bounds", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n" POINTS
                                 "    alarms = ( { name = \"low\"; point = \"flow_m3h\"; } ); #!\n  }\n);\n",
     .want = "needs 'below' or 'above'"},
    {"alarm-for", .profiles = "profiles = (\n  { name = \"p\"; utility = \"water\";\n" POINTS
                              "    alarms = ( { name = \"low\"; point = \"flow_m3h\"; below = 1.0;\n for = -1; } ); #!\n  }\n);\n",
     .want = "for must be 0..86400"},
    /* enterprises and meters */
    {"no-enterprises", .ents = "enterprises = ( ); #!\n", .want = "no enterprises configured"},
    {"reserved-id", .ents = "enterprises = ( { id = \"status\"; } ); #!\n",
     .want = "enterprise id 'status' is reserved"},
    {"dup-enterprise", .ents = "enterprises = (\n { id = \"a\"; },\n { id = \"a\"; } #!\n);\n",
     .want = "duplicate enterprise id 'a' (first defined at line"},
    {"enterprise-id", .ents = "enterprises = (\n { id = \"A Co\"; } #!\n);\n",
     .want = "enterprise id 'A Co' must match [a-z0-9-]+"},
    {"meter-id", .ents = ENT_WITH("      { id = \"W1\"; } #!\n"), .want = "meter id 'W1' must match"},
    {"dup-meter", .ents = ENT_WITH("      " METER_W1 ",\n      { id = \"w1\"; } #!\n"),
     .want = "duplicate meter id 'w1'"},
    {"unknown-bus", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; profile = \"p\";\n"
                                     "        bus = \"b9\"; unit_id = 1; interval = 10; } #!\n"),
     .want = "meter 'a/w1': unknown bus 'b9'"},
    {"unknown-profile", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\";\n"
                                         "        profile = \"q\"; unit_id = 1; interval = 10; } #!\n"),
     .want = "unknown profile 'q'"},
    {"utility-mismatch", .ents = ENT_WITH("      { id = \"w1\"; bus = \"b1\"; profile = \"p\";\n"
                                          "        utility = \"gas\"; unit_id = 1; interval = 10; } #!\n"),
     .want = "utility 'gas' is not one profile 'p' suits (water)"},
    {"unit-rtu", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"r1\"; profile = \"p\";\n"
                                  "        unit_id = 248; interval = 10; } #!\n"),
     .want = "'unit_id' = 248 is out of range 1..247"},
    {"unit-tcp", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\";\n"
                                  "        unit_id = 256; interval = 10; } #!\n"),
     .want = "'unit_id' = 256 is out of range 0..255"},
    {"dup-unit", .ents = "enterprises = (\n  { id = \"a\"; meters = ( " METER_W1 " ); },\n"
                         "  { id = \"b\"; meters = ( { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\";\n"
                         "      unit_id = 1; interval = 10; } ); } #!\n);\n",
     .want = "unit_id 1 on bus 'b1' is already used by meter 'a/w1'"},
    {"interval", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                  "        interval = 0; } #!\n"),
     .want = "'interval' = 0 is out of range"},
    {"comm-timeout", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                      "        interval = 30; comm_timeout = 0; } #!\n"),
     .want = "'comm_timeout' = 0 is out of range 1..86400"},
    {"missing-interval", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; #!\n"
                                          "        profile = \"p\"; unit_id = 1; }\n"),
     .want = "missing required setting 'interval'"},
    {"ct-ratio", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                  "        interval = 10; ct_ratio = 0.0; } #!\n"),
     .want = "ct_ratio must be > 0"},
    {"max-regs", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                  "        interval = 10; max_registers_per_read = 126; } #!\n"),
     .want = "'max_registers_per_read' = 126 is out of range 1..125"},
    {"bool-type", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                   "        interval = 10; no_gap_fill = 1; } #!\n"),
     .want = "'no_gap_fill' must be true or false"},
    /* tariffs */
    {"tariff-utility", .tariffs = "tariffs = (\n { utility = \"steam\"; currency = \"CNY\"; price = 1.0; } #!\n);\n",
     .want = "unknown utility 'steam'"},
    {"tariff-dup", .tariffs = "tariffs = (\n { utility = \"water\"; currency = \"CNY\"; price = 1.0; },\n"
                              " { utility = \"water\"; currency = \"CNY\"; price = 2.0; } #!\n);\n",
     .want = "a tariff for water is already defined at line"},
    {"tariff-price", .tariffs = "tariffs = (\n { utility = \"water\"; currency = \"CNY\"; price = -1.0; } #!\n);\n",
     .want = "price must be >= 0"},
    {"tariff-currency", .tariffs = "tariffs = (\n { utility = \"water\"; price = 1.0; } #!\n);\n",
     .want = "missing required setting 'currency'"},
    {"bands-gap", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; #!\n"
                             "   bands = ( { name = \"peak\"; price = 1.0; hours = [ \"08:00-20:00\" ]; },\n"
                             "             { name = \"valley\"; price = 0.3; hours = [ \"20:00-07:00\" ]; } ); }\n);\n",
     .want = "bands leave 07:00-08:00 uncovered"},
    {"bands-overlap", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\";\n"
                                 "   bands = ( { name = \"peak\"; price = 1.0; hours = [ \"08:00-20:00\" ]; },\n"
                                 "             { name = \"valley\"; price = 0.3; hours = [ \"19:00-08:00\" ]; } ); } #!\n);\n",
     .want = "band 'valley': 19:00-08:00 overlaps band 'peak' at 19:00"},
    {"bands-format", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\";\n"
                                "   bands = ( { name = \"peak\"; price = 1.0; hours = [ \"8:00-24:00\" ]; } ); } #!\n);\n",
     .want = "hours entry 1 must be \"HH:MM-HH:MM\""},
    {"band-price", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\";\n"
                              "   bands = ( { name = \"peak\"; price = -0.5; hours = [ \"00:00-24:00\" ]; } ); } #!\n);\n",
     .want = "band 'peak': price must be >= 0"},
    /* seasons and the two-part tariff (docs/CONFIG.md "Tariffs") */
#define SEASON_OK(months) "   { months = " months "; bands = ( { name = \"flat\"; price = 0.6; " \
                          "hours = [ \"00:00-24:00\" ]; } ); }"
    {"season-gap", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; seasons = (\n"
                              SEASON_OK("[ 1, 2, 3, 4, 5, 6, 9, 10, 11, 12 ]") ",\n"
                              "   { months = [ 7, 8 ]; #!\n"
                              "     bands = ( { name = \"critical\"; price = 1.3; hours = [ \"20:00-22:00\" ]; },\n"
                              "               { name = \"peak\"; price = 1.0; hours = [ \"08:00-20:00\" ]; },\n"
                              "               { name = \"valley\"; price = 0.3; hours = [ \"22:00-07:00\" ]; } ); } ); }\n);\n",
     .want = "season 2: bands leave 07:00-08:00 uncovered"},
    {"season-overlap", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; seasons = (\n"
                                  SEASON_OK("[ 1, 2, 3, 4, 5, 6, 9, 10, 11, 12 ]") ",\n"
                                  "   { months = [ 7, 8 ];\n"
                                  "     bands = ( { name = \"peak\"; price = 1.0; hours = [ \"08:00-21:00\" ]; },\n"
                                  "               { name = \"critical\"; price = 1.3; hours = [ \"20:00-22:00\" ]; }, #!\n"
                                  "               { name = \"valley\"; price = 0.3; hours = [ \"22:00-08:00\" ]; } ); } ); }\n);\n",
     .want = "band 'critical': 20:00-22:00 overlaps band 'peak' at 20:00"},
    {"season-month-twice", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; seasons = (\n"
                                      SEASON_OK("[ 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12 ]") ",\n"
                                      SEASON_OK("[ 7, #!\n 8 ]") " ); }\n);\n",
     .want = "month 7 is already in the season at line"},
    {"season-month-missing", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; seasons = ( #!\n"
                                        SEASON_OK("[ 1, 2, 3, 4, 5, 6, 9, 10, 11, 12 ]") ",\n"
                                        SEASON_OK("[ 7 ]") " ); }\n);\n",
     .want = "seasons leave month 8 without a season"},
    {"band-name", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\";\n"
                             "   bands = ( { name = \"sharp\"; price = 1.0; hours = [ \"00:00-24:00\" ]; } ); } #!\n);\n",
     .want = "band name 'sharp' must be one of critical, peak, flat, valley, deep_valley"},
    {"pf-order", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; price = 0.6;\n"
                            "   pf_standard = 0.9; pf_adjust = ( (0.90, 0.0),\n (0.91, -0.15) #!\n ); }\n);\n",
     .want = "pf_adjust entry 2: PF 0.91 must be below the entry before"},
    {"pf-no-table", .tariffs = "tariffs = (\n { utility = \"electricity\"; currency = \"CNY\"; price = 0.6;\n"
                               "   pf_standard = 0.9; } #!\n);\n",
     .want = "pf_standard needs its table pf_adjust"},
    {"blocks-order", .tariffs = "tariffs = (\n { utility = \"water\"; currency = \"CNY\";\n"
                                "   blocks = ( (0.0, 3.9),\n (0.0, 4.9) #!\n ); }\n);\n",
     .want = "blocks entry 2: threshold 0 must be above the one before"},
    {"blocks-and-price", .tariffs = "tariffs = (\n { utility = \"water\"; currency = \"CNY\"; #!\n"
                                    "   price = 1.0; blocks = ( (0.0, 3.9) ); }\n);\n",
     .want = "give one of price, bands, seasons or blocks"},
    {"capacity-water", .ents = ENT_WITH("      { id = \"w1\"; utility = \"water\"; bus = \"b1\"; profile = \"p\"; unit_id = 1;\n"
                                        "        interval = 10; max_demand = true; } #!\n"),
     .want = "capacity_kva and max_demand are for electricity meters"},
};

static char *assemble(const struct ecase *c)
{
    const char *parts[] = {c->gateway ? c->gateway : GATEWAY,    c->storage ? c->storage : STORAGE,
                           c->mqtt ? c->mqtt : MQTT,             c->buses ? c->buses : BUSES,
                           c->profiles ? c->profiles : PROFILES, c->ents ? c->ents : ENTS,
                           c->tariffs ? c->tariffs : TARIFFS};
    size_t n = 1;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        n += strlen(parts[i]);
    char *s = malloc(n);
    s[0] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        strcat(s, parts[i]);
    return s;
}

/* The 1-based line holding the "#!" marker, the line the error must name. */
static int marker_line(const char *text)
{
    const char *m = strstr(text, "#!");
    int line = 1;
    for (const char *p = text; m && p < m; p++)
        line += *p == '\n';
    return m ? line : -1;
}

/* Loads 'path' and checks it fails with "<file>:<line>:" and mentions 'want'. */
static void expect_error(const char *path, const char *file, int line, const char *want)
{
    char err[1024] = "", prefix[1200];
    struct config *c = NULL;
    int r = config_load(path, &c, err, sizeof err);
    CHECK(r < 0);
    CHECK(c == NULL);
    snprintf(prefix, sizeof prefix, "%s:%d: ", file, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0) {
        check_failed++;
        fprintf(stderr, "%s: expected error starting \"%s\", got \"%s\"\n", path, prefix, err);
    } else {
        check_passed++;
    }
    CHECK_CONTAINS(err, want);
    config_free(c);
}

static void test_errors(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;

    /* the base fixture itself is valid, so each case fails for its own change */
    struct ecase base = {.name = "base"};
    char *text = assemble(&base);
    snprintf(path, sizeof path, "%s/cfg-base.cfg", tmpdir);
    write_file(path, text);
    free(text);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r)
        fprintf(stderr, "base fixture: %s\n", err);
    if (c) {
        CHECK_STR(c->mqtt_client_id, "parkgw-gw1");
        CHECK_STR(c->topic_prefix, "park");
        CHECK_INT(c->summary_interval, 60);
        CHECK_INT(c->raw_retention_days, 400);
        CHECK_INT(c->buses[0].port, 502);
        CHECK_INT(c->buses[0].timeout_ms, 500);
        CHECK_INT(c->buses[1].parity, 'E');
        CHECK_INT(c->buses[1].baud, 9600);
        CHECK_NEAR(c->profiles[0].points[0].scale, 1.0, 0);
        CHECK_INT(c->profiles[0].points[1].kind, KIND_GAUGE);
        CHECK_STR(c->enterprises[0].meters[0].enterprise->id, "a");
        config_free(c);
    }

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        text = assemble(&cases[i]);
        int line = marker_line(text);
        snprintf(path, sizeof path, "%s/cfg-%s.cfg", tmpdir, cases[i].name);
        write_file(path, text);
        free(text);
        if (line < 0) {
            check_failed++;
            fprintf(stderr, "case %s has no #! marker\n", cases[i].name);
            continue;
        }
        expect_error(path, path, line, cases[i].want);
    }
}

/* gateway.http accepted: loopback without a password (the default
 * address when only the group is there), any address with one. */
static void test_http(void)
{
    char path[1200], pass[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(pass, sizeof pass, "%s/http.pass", tmpdir);
    write_file(pass, "s3cret\n");
    const struct {
        const char *http, *listen, *password;
    } ok[] = {
        {"http = { };", "127.0.0.1:8080", NULL},
        {"http = { listen = \"[::1]:9100\"; };", "[::1]:9100", NULL},
        {"http = { listen = \"localhost:8081\"; };", "localhost:8081", NULL},
        {"http = { listen = \"0.0.0.0:8080\"; password_file = \"%s\"; };", "0.0.0.0:8080",
         "s3cret"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char http[1400], gw[1600];
        snprintf(http, sizeof http, ok[i].http, pass);
        snprintf(gw, sizeof gw, "gateway = { id = \"gw1\"; %s };\n", http);
        struct ecase e = {.name = "http", .gateway = gw};
        char *text = assemble(&e);
        snprintf(path, sizeof path, "%s/cfg-http-ok.cfg", tmpdir);
        write_file(path, text);
        free(text);
        int r = config_load(path, &c, err, sizeof err);
        CHECK_INT(r, 0);
        if (r) {
            fprintf(stderr, "%s: %s\n", ok[i].http, err);
            continue;
        }
        CHECK_STR(c->http_listen, ok[i].listen);
        if (ok[i].password)
            CHECK_STR(c->http_password, ok[i].password);
        else
            CHECK(c->http_password == NULL);
        config_free(c);
    }
}

/* @include: errors inside an included file, missing files, nesting, the
 * profile-directory fallback, and the password file. */
static void test_includes(void)
{
    char path[1200], inc[1200], err[512] = "";
    struct config *c = NULL;

    /* the bad type sits on line 4 of the included file */
    snprintf(inc, sizeof inc, "%s/inc-bad-profile.cfg", tmpdir);
    write_file(inc, "# a profile with a typo\n"
                    "profiles_bad = (\n"
                    "  { name = \"bad\"; utility = \"gas\"; points = (\n"
                    "    { name = \"v\"; fc = 3; address = 0; type = \"unit32\"; kind = \"counter\"; billing = true; }\n"
                    "  ); }\n"
                    ");\n");
    snprintf(path, sizeof path, "%s/inc-main.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT BUSES PROFILES "@include \"inc-bad-profile.cfg\"\n" ENTS);
    expect_error(path, inc, 4, "unknown type 'unit32'");

    /* a syntax error in the included file: line 2 of it */
    write_file(inc, "profiles_bad = (\n  { name = \"bad\" utility = ; }\n);\n");
    expect_error(path, inc, 2, "syntax error");

    /* the main file's @include is its line 5 (GATEWAY..BUSES: 1 + 1 + 1 + 4 lines) */
    snprintf(path, sizeof path, "%s/inc-missing.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT BUSES "@include \"profiles/no-such-profile.cfg\"\n" PROFILES ENTS);
    expect_error(path, path, 8, "cannot find include file \"profiles/no-such-profile.cfg\"");

    /* nested include: line 2 of the included file */
    snprintf(inc, sizeof inc, "%s/inc-nested.cfg", tmpdir);
    write_file(inc, "# nested\n@include \"other.cfg\"\n");
    snprintf(path, sizeof path, "%s/inc-nest-main.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT BUSES PROFILES ENTS "@include \"inc-nested.cfg\"\n");
    expect_error(path, inc, 2, "nested @include is not supported");

    /* "profiles/generic-water.cfg" is not next to this config: found through
     * PARKGW_PROFILE_DIR; the profiles from `profiles` and `profiles_*` merge */
    char pdir[1200];
    snprintf(pdir, sizeof pdir, "%s/config/profiles", srcdir);
    setenv("PARKGW_PROFILE_DIR", pdir, 1);
    snprintf(path, sizeof path, "%s/inc-fallback.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT BUSES PROFILES "@include \"profiles/generic-water.cfg\"\n"
                     "@include \"generic-gas.cfg\"\n"
                     ENT_WITH("      " METER_W1 ",\n"
                              "      { id = \"w2\"; utility = \"water\"; bus = \"r1\"; unit_id = 1;"
                              " profile = \"generic-water\"; interval = 60; }\n"));
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r)
        fprintf(stderr, "fallback: %s\n", err);
    if (c) {
        CHECK_INT(c->n_profiles, 3);
        CHECK_STR(c->profiles[1].name, "generic-water");
        CHECK_CONTAINS(c->profiles[1].file, pdir);
        struct cfg_meter *m = config_find_meter(c, "a/w2");
        CHECK(m && m->profile == 1 && m->bus == 1);
        config_free(c);
        c = NULL;
    }
    unsetenv("PARKGW_PROFILE_DIR");

    /* password file: trailing newline stripped; TLS files checked */
    char pass[1200];
    snprintf(pass, sizeof pass, "%s/mqtt.pass", tmpdir);
    write_file(pass, "s3cret\r\n");
    snprintf(path, sizeof path, "%s/pw.cfg", tmpdir);
    char text[4096];
    snprintf(text, sizeof text,
             GATEWAY STORAGE
             "mqtt = { uri = \"ssl://broker:8883\"; username = \"gw1\"; password_file = \"%s\";\n"
             "  client_id = \"gw-one\"; topic_prefix = \"site/a\"; tls = { ca_file = \"%s\"; }; };\n"
             BUSES PROFILES ENTS,
             pass, pass);
    write_file(path, text);
    r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r)
        fprintf(stderr, "password: %s\n", err);
    if (c) {
        CHECK_STR(c->mqtt_password, "s3cret");
        CHECK_STR(c->mqtt_username, "gw1");
        CHECK_STR(c->mqtt_client_id, "gw-one");
        CHECK_STR(c->topic_prefix, "site/a");
        CHECK(c->tls_set);
        CHECK_STR(c->tls.ca_file, pass);
        CHECK(c->tls.cert_file == NULL);
        CHECK_INT(c->n_tariffs, 0);
        config_free(c);
        c = NULL;
    }

    /* a missing config file is an I/O error with the path, not a crash */
    snprintf(path, sizeof path, "%s/does-not-exist.cfg", tmpdir);
    r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, -ENOENT);
    CHECK_CONTAINS(err, "does-not-exist.cfg: cannot read config");
}

/* RTU line options and an integer + fraction totaliser, with their defaults. */
static void test_modbus_keys(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/modbus-keys.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT
               "buses = (\n"
               "  { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; },\n"
               "  { name = \"r1\"; type = \"rtu\"; device = \"/dev/null\"; rs485 = true;\n"
               "    frame_delay_ms = 5; baud = 115200; parity = \"N\"; stop_bits = 2; },\n"
               "  { name = \"r2\"; type = \"rtu\"; device = \"/dev/zero\"; }\n"
               ");\n"
               "profiles = (\n"
               "  { name = \"p\"; utility = \"water\"; points = (\n"
               "    { name = \"total_m3\"; fc = 3; address = 8; type = \"int32\"; order = \"CDAB\";\n"
               "      frac_address = 10; kind = \"counter\"; billing = true; },\n"
               "    { name = \"heat_kwh\"; fc = 4; address = 20; type = \"uint32\"; scale = 10.0;\n"
               "      frac_address = 19; frac_type = \"uint16\"; frac_scale = 0.01; kind = \"counter\"; },\n"
               "    { name = \"flow_m3h\"; fc = 3; address = 4; type = \"float32\"; }\n"
               "  ); }\n"
               ");\n" ENTS TARIFFS);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "modbus keys: %s\n", err);
        return;
    }
    CHECK(c->buses[1].rs485);
    CHECK_INT(c->buses[1].baud, 115200);
    CHECK_INT(c->buses[1].parity, 'N');
    CHECK_INT(c->buses[1].stop_bits, 2);
    CHECK_INT(c->buses[2].baud, 9600); /* the defaults: 9600 8E1 */
    CHECK_INT(c->buses[2].data_bits, 8);
    CHECK_INT(c->buses[2].parity, 'E');
    CHECK_INT(c->buses[2].stop_bits, 1);
    CHECK_INT(c->buses[1].frame_delay_ms, 5);
    CHECK(!c->buses[2].rs485);
    CHECK_INT(c->buses[2].frame_delay_ms, 0);
    CHECK(!c->buses[0].rs485);
    const struct cfg_point *t = &c->profiles[0].points[0];
    CHECK(t->has_frac);
    CHECK_INT(t->frac_address, 10);
    CHECK_INT(t->frac_type, PT_FLOAT32);   /* default */
    CHECK_NEAR(t->frac_scale, 1.0, 0);     /* default: the point's scale */
    CHECK_INT(t->order, WO_CDAB);
    const struct cfg_point *h = &c->profiles[0].points[1];
    CHECK(h->has_frac);
    CHECK_INT(h->frac_address, 19);         /* a fraction may sit before the integer */
    CHECK_INT(h->frac_type, PT_UINT16);
    CHECK_NEAR(h->frac_scale, 0.01, 0);
    CHECK(!c->profiles[0].points[2].has_frac);
    /* One meter of 3 points every 10 s. */
    CHECK_NEAR(config_points_per_second(c), 0.3, 1e-12);
    config_free(c);

    /* The load the writer's queue is sized for: 3 points at 1 s + 3 at 4 s
     * + 1 at 2 s = 3 + 0.75 + 0.5 points per second. */
    snprintf(path, sizeof path, "%s/load.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT
               "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; } );\n"
               "profiles = (\n"
               "  { name = \"p3\"; utility = \"water\"; points = (\n"
               "    { name = \"a\"; fc = 3; address = 0; type = \"uint16\"; kind = \"counter\";"
               " billing = true; },\n"
               "    { name = \"b\"; fc = 3; address = 1; type = \"uint16\"; },\n"
               "    { name = \"c\"; fc = 3; address = 2; type = \"uint16\"; } ); },\n"
               "  { name = \"p1\"; utility = \"water\"; points = (\n"
               "    { name = \"a\"; fc = 3; address = 0; type = \"uint16\"; kind = \"counter\";"
               " billing = true; } ); }\n"
               ");\n"
               "enterprises = (\n"
               "  { id = \"a\"; name = \"A\"; meters = (\n"
               "    { id = \"m1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"p3\"; interval = 1; },\n"
               "    { id = \"m2\"; utility = \"water\"; bus = \"b1\"; unit_id = 2; profile = \"p3\"; interval = 4; } ); },\n"
               "  { id = \"b\"; name = \"B\"; meters = (\n"
               "    { id = \"m3\"; utility = \"water\"; bus = \"b1\"; unit_id = 3; profile = \"p1\"; interval = 2; } ); }\n"
               ");\n" TARIFFS);
    r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    CHECK_NEAR(config_points_per_second(c), 4.25, 1e-12);
    config_free(c);
}


/* DL/T 645 and CJ/T 188 keys: bus protocol, addresses, data items, blocks. */
static void test_cn_keys(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/cn-keys.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT CN_BUSES CN_PROFILES CN_ENTS("") CN_TARIFFS);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "cn keys: %s\n", err);
        return;
    }
    CHECK_INT(c->buses[0].protocol, PROTO_MODBUS);
    CHECK_INT(c->buses[1].protocol, PROTO_DLT645);
    CHECK_INT(c->buses[2].protocol, PROTO_CJT188);
    CHECK_STR(bus_protocol_name(c->buses[1].protocol), "dlt645-2007");
    const struct cfg_profile *e = profile_named(c, "e645"), *w = profile_named(c, "w188");
    CHECK(e && w);
    if (!e || !w)
        goto out;
    CHECK_INT(e->protocol, PROTO_DLT645);
    const struct cfg_point *tot = &e->points[0], *t2 = &e->points[1], *vb = &e->points[2],
                           *ia = &e->points[3], *comb = &e->points[4];
    CHECK_INT(tot->di, 0x00010000);
    CHECK_INT(tot->req_di, 0x0001FF00);
    CHECK_INT(tot->data_offset, 0);
    CHECK_INT(tot->data_len, 4);
    CHECK(!tot->exact_len);
    CHECK_INT(t2->data_offset, 8);  /* tariff 2: the third value of the block */
    CHECK_INT(vb->data_offset, 2);  /* voltages start at phase A (DI1 01) */
    CHECK_INT(vb->fmt.decimals, 1);
    CHECK_INT(ia->req_di, 0x02020100);
    CHECK(ia->exact_len);
    CHECK(ia->is_signed);
    CHECK_INT(ia->fmt.bytes, 3);
    CHECK_INT(comb->di, 0);
    CHECK_INT(comb->data_len, 4);
    CHECK_INT(w->protocol, PROTO_CJT188);
    CHECK_INT(w->meter_type, 0x10);
    CHECK_INT(w->points[0].di, 0x901F);
    CHECK_INT(w->points[1].data_offset, 5);
    const struct cfg_meter *m = config_find_meter(c, "a/e1");
    CHECK(m != NULL);
    if (m) {
        CHECK_STR(m->address, "000012345678");
        CHECK_INT(m->addr[0], 0x78);
        CHECK_INT(m->addr[3], 0x12);
    }
    m = config_find_meter(c, "a/w2");
    CHECK(m != NULL);
    if (m)
        CHECK_INT(m->addr[6], 0x12);
out:
    config_free(c);
}

/* ratio = "pt" | "ct" | "pt_ct", and ct_pt = true as the old spelling of
 * pt_ct (ct_pt = false: no ratio). */
static void test_ratio_keys(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/ratio-keys.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT
               "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; } );\n"
               "profiles = (\n"
               "  { name = \"e\"; utility = \"electricity\"; points = (\n"
               "    { name = \"energy_kwh\"; fc = 3; address = 0; type = \"float32\";"
               " kind = \"counter\"; billing = true; ct_pt = true; },\n"
               "    { name = \"power_kw\"; fc = 3; address = 2; type = \"float32\"; ratio = \"pt_ct\"; },\n"
               "    { name = \"voltage_a_v\"; fc = 3; address = 4; type = \"float32\"; ratio = \"pt\"; },\n"
               "    { name = \"current_a_a\"; fc = 3; address = 6; type = \"float32\"; ratio = \"ct\"; },\n"
               "    { name = \"pf\"; fc = 3; address = 8; type = \"float32\"; ct_pt = false; },\n"
               "    { name = \"frequency_hz\"; fc = 3; address = 10; type = \"float32\"; }\n"
               "  ); }\n"
               ");\n"
               "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
               "  { id = \"e1\"; utility = \"electricity\"; bus = \"b1\"; unit_id = 1; profile = \"e\";"
               " interval = 10; pt_ratio = 100.0; ct_ratio = 40.0; } ); } );\n"
               "tariffs = ( { utility = \"electricity\"; currency = \"CNY\"; price = 0.6; } );\n");
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "ratio keys: %s\n", err);
        return;
    }
    static const enum point_ratio want[] = {RATIO_PT_CT, RATIO_PT_CT, RATIO_PT,
                                            RATIO_CT,    RATIO_NONE,  RATIO_NONE};
    static const double factor[] = {4000, 4000, 100, 40, 1, 1};
    const struct cfg_profile *p = &c->profiles[0];
    const struct cfg_meter *m = &c->enterprises[0].meters[0];
    CHECK_INT(p->n_points, 6);
    for (size_t i = 0; i < p->n_points && i < 6; i++) {
        CHECK_INT(p->points[i].ratio, want[i]);
        CHECK_NEAR(point_ratio_factor(&p->points[i], m->pt_ratio, m->ct_ratio), factor[i], 0);
    }
    config_free(c);
}

/* A meter's alarms = ( ... ): the plant's own window and hours for
 * no_flow, an alarm turned off, and what is refused. */
static void test_alarm_overrides(void)
{
    char path[1200], err[512] = "";
    struct config *c = NULL;
    snprintf(path, sizeof path, "%s/alarm-overrides.cfg", tmpdir);
    write_file(path, GATEWAY STORAGE MQTT
               "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; } );\n"
               "profiles = (\n"
               "  { name = \"f\"; utilities = [ \"water\", \"wastewater\" ]; points = (\n"
               "    { name = \"total_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\";"
               " billing = true; },\n"
               "    { name = \"flow_m3h\"; fc = 3; address = 2; type = \"float32\"; } );\n"
               "    alarms = ( { name = \"no_flow\"; point = \"flow_m3h\"; below = 0.05; for = 1800;\n"
               "                 hours = [ \"08:00-18:00\" ]; },\n"
               "               { name = \"high_flow\"; point = \"flow_m3h\"; above = 90.0; } ); }\n"
               ");\n"
               "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
               "  { id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"f\"; interval = 10;\n"
               "    alarms = ( { name = \"no_flow\"; for = 900; hours = [ \"22:00-06:00\", \"12:00-13:00\" ]; },\n"
               "               { name = \"high_flow\"; enabled = false; } ); },\n"
               "  { id = \"ww1\"; utility = \"wastewater\"; bus = \"b1\"; unit_id = 2; profile = \"f\"; interval = 10; }\n"
               "  ); } );\n" TARIFFS);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "alarm overrides: %s\n", err);
        return;
    }
    const struct cfg_meter *w1 = config_find_meter(c, "a/w1"), *ww1 = config_find_meter(c, "a/ww1");
    struct cfg_alarm a;
    CHECK(config_meter_alarm(c, w1, 0, &a));
    CHECK_NEAR(a.for_s, 900, 0);
    CHECK_NEAR(a.below, 0.05, 0);  /* not changed: the profile's */
    CHECK_INT(a.n_hours, 2);
    /* a night shift: 22:00-06:00 crosses midnight */
    CHECK(alarm_in_schedule(&a, 23 * 60) && alarm_in_schedule(&a, 5 * 60 + 59));
    CHECK(!alarm_in_schedule(&a, 6 * 60) && !alarm_in_schedule(&a, 9 * 60));
    CHECK(alarm_in_schedule(&a, 12 * 60 + 30) && !alarm_in_schedule(&a, 13 * 60));
    CHECK(!config_meter_alarm(c, w1, 1, &a)); /* high_flow off on w1 */
    CHECK(config_meter_alarm(c, ww1, 0, &a)); /* ww1: the profile's rule */
    CHECK_NEAR(a.for_s, 1800, 0);
    CHECK(alarm_in_schedule(&a, 8 * 60) && !alarm_in_schedule(&a, 18 * 60));
    CHECK(config_meter_alarm(c, ww1, 1, &a));
    config_free(c);

    static const struct {
        const char *name, *meter_alarms, *want;
    } bad[] = {
        {"override-unknown", "{ name = \"no_water\"; for = 10; }",
         "profile 'f' has no alarm 'no_water' (it has: no_flow)"},
        {"override-twice", "{ name = \"no_flow\"; for = 10; }, { name = \"no_flow\"; for = 20; }",
         "'no_flow' changed twice"},
        {"override-above", "{ name = \"no_flow\"; above = 10.0; }",
         "the profile's rule has no 'above' to change"},
        {"override-hours", "{ name = \"no_flow\"; hours = [ \"8-18\" ]; }",
         "hours entry 0 must be \"HH:MM-HH:MM\""},
        {"override-for", "{ name = \"no_flow\"; for = -1; }", "for must be 0..86400"},
        {"override-key", "{ name = \"no_flow\"; window = 10; }", "unknown setting 'window'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text,
                 GATEWAY STORAGE MQTT
                 "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; } );\n"
                 "profiles = (\n"
                 "  { name = \"f\"; utility = \"water\"; points = (\n"
                 "    { name = \"total_m3\"; fc = 3; address = 0; type = \"uint32\"; kind = \"counter\";"
                 " billing = true; },\n"
                 "    { name = \"flow_m3h\"; fc = 3; address = 2; type = \"float32\"; } );\n"
                 "    alarms = ( { name = \"no_flow\"; point = \"flow_m3h\"; below = 0.05; for = 1800; } ); }\n"
                 ");\n"
                 "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
                 "  { id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1; profile = \"f\"; interval = 10;\n"
                 "    alarms = ( %s ); } #!\n"
                 "  ); } );\n" TARIFFS,
                 bad[i].meter_alarms);
        snprintf(path, sizeof path, "%s/%s.cfg", tmpdir, bad[i].name);
        write_file(path, text);
        int line = marker_line(text);
        expect_error(path, path, line, bad[i].want);
    }
}

int main(void)
{
    const char *s = getenv("PARKGW_SOURCE_DIR");
    const char *t = getenv("PARKGW_TEST_TMP");
    snprintf(srcdir, sizeof srcdir, "%s", s ? s : ".");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_config", t ? t : "/tmp");
    mkdir(t ? t : "/tmp", 0755);
    mkdir(tmpdir, 0755);

    test_helpers();
    test_ratio_keys();
    test_alarm_overrides();
    test_demo();
    test_example();
    test_errors();
    test_http();
    test_includes();
    test_modbus_keys();
    test_cn_keys();
    return check_done();
}
