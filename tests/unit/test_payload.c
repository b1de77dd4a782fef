/*
 * test_payload.c - topics and JSON payloads of protocols/payload.c: every
 * payload is parsed back with jansson and checked field by field (names,
 * values, JSON types), plus the exact compact text where it is fixed.
 */
#include "protocols/payload.h"
#include "tests/unit/check.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *s)
{
    json_error_t err;
    json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fprintf(stderr, "JSON parse error: %s in %s\n", err.text, s);
    return j;
}

static void test_topics(void)
{
    char *base = topic_base("park", "gw1");
    CHECK_STR(base, "park/gw1");
    char *live = topic_meter(base, "chengtong-plastics", "electricity", "e1", "live");
    CHECK_STR(live, "park/gw1/chengtong-plastics/electricity/e1/live");
    char *state = topic_meter(base, "chengtong-plastics", "water", "w1", "state");
    CHECK_STR(state, "park/gw1/chengtong-plastics/water/w1/state");
    char *st = topic_status(base);
    CHECK_STR(st, "park/gw1/status");
    char *ev = topic_events(base);
    CHECK_STR(ev, "park/gw1/events");
    char *se = topic_summary(base, "chengtong-plastics");
    CHECK_STR(se, "park/gw1/chengtong-plastics/summary");
    char *sp = topic_summary(base, NULL);
    CHECK_STR(sp, "park/gw1/summary");
    free(base);
    free(live);
    free(state);
    free(st);
    free(ev);
    free(se);
    free(sp);
}

static void test_live(void)
{
    const char *names[] = {"energy_import_kwh", "voltage_a_v", "current_a_a", "pf", "freq_hz"};
    /* A float32 register value scaled by PT x CT = 100 x 40 = 4000 as the
     * decoder does it: the double that results carries float32 noise. */
    float raw = 12345.678f;
    double energy = (double)raw * 4000.0;
    double values[] = {energy, 230.1, 12.5, NAN, INFINITY};
    bool valid[] = {true, true, false, true, true};
    int64_t ts = 1767225600123LL; /* 2026-01-01T00:00:00.123Z, above 2^32 */

    char *s = payload_live(ts, "chengtong-plastics", "e1", "electricity", names, values, valid, 5);
    CHECK(s != NULL);
    CHECK(strchr(s, '\n') == NULL);
    CHECK(strchr(s, ' ') == NULL); /* compact, and no name here has a space */
    CHECK(strstr(s, "NaN") == NULL && strstr(s, "nan") == NULL && strstr(s, "inf") == NULL);
    /* 230.1 is printed with 15 digits, so it reads back as written by a human. */
    CHECK_CONTAINS(s, "\"voltage_a_v\":230.1");

    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        json_t *jts = json_object_get(j, "ts");
        CHECK(json_is_integer(jts));
        CHECK_INT(json_integer_value(jts), 1767225600123LL);
        CHECK_STR(json_string_value(json_object_get(j, "enterprise")), "chengtong-plastics");
        CHECK_STR(json_string_value(json_object_get(j, "meter")), "e1");
        CHECK_STR(json_string_value(json_object_get(j, "utility")), "electricity");
        CHECK_INT(json_object_size(j), 5);

        json_t *v = json_object_get(j, "values");
        CHECK(json_is_object(v));
        /* current (valid=false), pf (NaN) and freq (Inf) are left out: 2 remain. */
        CHECK_INT(json_object_size(v), 2);
        CHECK(json_object_get(v, "current_a_a") == NULL);
        CHECK(json_object_get(v, "pf") == NULL);
        CHECK(json_object_get(v, "freq_hz") == NULL);

        json_t *e = json_object_get(v, "energy_import_kwh");
        CHECK(json_is_real(e));
        /* 12345.678f is 12345.677734375; x4000 = 49382710.9375. Round trip
         * within 1e-6 relative of the double that went in. */
        double back = json_real_value(e);
        CHECK_NEAR(back, 49382710.9375, 49382710.9375 * 1e-6);
        CHECK_NEAR(back / energy, 1.0, 1e-12);
        /* and the float32 itself survives: (float)(back / 4000) == raw */
        CHECK((float)(back / 4000.0) == raw);

        json_t *volt = json_object_get(v, "voltage_a_v");
        CHECK(json_is_real(volt));
        CHECK_NEAR(json_real_value(volt), 230.1, 1e-12);
        json_decref(j);
    }
    free(s);

    /* valid == NULL means all valid. An integral real stays a JSON real. */
    const char *n2[] = {"volume_m3"};
    double v2[] = {5.0};
    s = payload_live(1000, "a", "w1", "water", n2, v2, NULL, 1);
    CHECK_STR(s, "{\"ts\":1000,\"enterprise\":\"a\",\"meter\":\"w1\",\"utility\":\"water\","
                 "\"values\":{\"volume_m3\":5.0}}");
    free(s);

    /* No points at all: an empty values object, not a missing one. */
    s = payload_live(0, "a", "w1", "water", NULL, NULL, NULL, 0);
    CHECK_STR(s, "{\"ts\":0,\"enterprise\":\"a\",\"meter\":\"w1\",\"utility\":\"water\","
                 "\"values\":{}}");
    free(s);

    /* Extremes of float32 survive: FLT_MAX and the smallest normal. */
    const char *n3[] = {"big", "tiny", "neg"};
    double v3[] = {(double)FLT_MAX, (double)FLT_MIN, -0.001};
    s = payload_live(1, "a", "m", "gas", n3, v3, NULL, 3);
    j = parse(s);
    CHECK(j != NULL);
    if (j) {
        json_t *v = json_object_get(j, "values");
        double big = json_real_value(json_object_get(v, "big"));
        double tiny = json_real_value(json_object_get(v, "tiny"));
        CHECK_NEAR(big / (double)FLT_MAX, 1.0, 1e-12);
        CHECK_NEAR(tiny / (double)FLT_MIN, 1.0, 1e-12);
        CHECK_NEAR(json_real_value(json_object_get(v, "neg")), -0.001, 1e-18);
        json_decref(j);
    }
    free(s);
}

static void test_utf8(void)
{
    /* 湖南城通塑业有限公司 as raw UTF-8 bytes: must pass through unescaped. */
    const char *name = "湖南城通塑业有限公司";
    const char *names[] = {"能耗_kwh"};
    double v[] = {1.5};
    char *s = payload_live(7, name, "e1", "electricity", names, v, NULL, 1);
    CHECK_CONTAINS(s, "\"enterprise\":\"湖南城通塑业有限公司\"");
    CHECK(strstr(s, "\\u") == NULL);
    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK_STR(json_string_value(json_object_get(j, "enterprise")), name);
        CHECK_NEAR(json_real_value(json_object_get(json_object_get(j, "values"), "能耗_kwh")),
                   1.5, 0);
        json_decref(j);
    }
    free(s);

    /* Invalid UTF-8 (a lone 0xff and a truncated 3-byte sequence) does not
     * lose the payload: each bad byte becomes U+FFFD (EF BF BD). */
    s = payload_live(7, "ab\xff" "c", "e\xe6\xb9", "electricity", NULL, NULL, NULL, 0);
    CHECK(s != NULL);
    j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK_STR(json_string_value(json_object_get(j, "enterprise")), "ab\xef\xbf\xbd" "c");
        CHECK_STR(json_string_value(json_object_get(j, "meter")),
                  "e\xef\xbf\xbd\xef\xbf\xbd");
        json_decref(j);
    }
    free(s);
}

static void test_status(void)
{
    char *s = payload_status_online("0.1.0", 1767225600000LL, 87);
    CHECK_STR(s, "{\"state\":\"online\",\"version\":\"0.1.0\",\"started\":1767225600000,"
                 "\"meters\":87}");
    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK(json_is_integer(json_object_get(j, "started")));
        CHECK(json_is_integer(json_object_get(j, "meters")));
        CHECK_INT(json_integer_value(json_object_get(j, "meters")), 87);
        json_decref(j);
    }
    free(s);

    s = payload_status_offline();
    CHECK_STR(s, "{\"state\":\"offline\"}");
    free(s);
}

static void test_state(void)
{
    const char *alarms[] = {"supply_lost", "voltage_low"};
    char *s = payload_state(2000, "supply_lost", 1500, alarms, 2);
    CHECK_STR(s, "{\"ts\":2000,\"state\":\"supply_lost\",\"since\":1500,"
                 "\"alarms\":[\"supply_lost\",\"voltage_low\"]}");
    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK(json_is_integer(json_object_get(j, "ts")));
        CHECK(json_is_integer(json_object_get(j, "since")));
        json_t *a = json_object_get(j, "alarms");
        CHECK(json_is_array(a));
        CHECK_INT(json_array_size(a), 2);
        CHECK_STR(json_string_value(json_array_get(a, 1)), "voltage_low");
        json_decref(j);
    }
    free(s);

    /* No alarms: still an (empty) array. */
    s = payload_state(3000, "ok", 3000, NULL, 0);
    CHECK_STR(s, "{\"ts\":3000,\"state\":\"ok\",\"since\":3000,\"alarms\":[]}");
    free(s);
}

static void test_events(void)
{
    struct payload_field f[] = {
        {.key = "enterprise", .type = PF_STR, .s = "chengtong-plastics"},
        {.key = "meter", .type = PF_STR, .s = "e1"},
        {.key = "alarm", .type = PF_STR, .s = "supply_lost"},
        {.key = "value", .type = PF_REAL, .d = 12.5},
        {.key = "limit", .type = PF_INT, .i = 50},
        {.key = "latched", .type = PF_BOOL, .b = true},
        {.key = "bad", .type = PF_REAL, .d = NAN},    /* left out */
        {.key = "none", .type = PF_STR, .s = NULL},   /* left out */
        {.key = "seq", .type = PF_INT, .i = 999},     /* cannot override */
        {.key = "type", .type = PF_STR, .s = "evil"}, /* cannot override */
    };
    char *s = payload_event(42, 5000, "alarm_raised", f, sizeof(f) / sizeof(f[0]));
    CHECK_STR(s, "{\"seq\":42,\"ts\":5000,\"type\":\"alarm_raised\","
                 "\"enterprise\":\"chengtong-plastics\",\"meter\":\"e1\",\"alarm\":\"supply_lost\","
                 "\"value\":12.5,\"limit\":50,\"latched\":true}");
    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK_INT(json_object_size(j), 9);
        CHECK(json_is_integer(json_object_get(j, "seq")));
        CHECK_INT(json_integer_value(json_object_get(j, "seq")), 42);
        CHECK(json_is_real(json_object_get(j, "value")));
        CHECK(json_is_integer(json_object_get(j, "limit")));
        CHECK(json_is_true(json_object_get(j, "latched")));
        CHECK(json_object_get(j, "bad") == NULL);
        CHECK(json_object_get(j, "none") == NULL);
        json_decref(j);
    }
    free(s);

    s = payload_event(1, 2, "comm_restored", NULL, 0);
    CHECK_STR(s, "{\"seq\":1,\"ts\":2,\"type\":\"comm_restored\"}");
    free(s);
}

int main(void)
{
    test_topics();
    test_live();
    test_utf8();
    test_status();
    test_state();
    test_events();
    return check_done();
}
