/*
 * test_payload.c - topics and JSON payloads of protocols/payload.c: every
 * payload is parsed back with jansson and checked field by field (names,
 * values, JSON types), plus the exact compact text where it is fixed.
 */
#include "protocols/payload.h"
#include "tests/unit/check.h"
#include "tests/unit/live_jansson.h"

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

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next_u64(void)
{
    return check_rand64(&rng);
}

/* Names that need every kind of escape, valid UTF-8 throughout. */
static const char *const escape_names[] = {
    "energy_import_kwh", "quote\"d", "back\\slash", "slash/ok", "tab\there", "nl\ncr\r",
    "bell\x01\x07\x1f", "bs\bff\f", "del\x7f", "能耗_kwh", "", "a\xf0\x9f\x92\xa1z",
};
#define N_ESCAPE_NAMES (sizeof(escape_names) / sizeof(escape_names[0]))

/* The prepared payload with 15 digits is the old jansson text, byte for
 * byte, for random values, validity and strings needing escapes; reusing
 * the buffer leaves nothing of the previous poll behind. */
static void test_live_same_as_jansson(void)
{
    struct live_payload *lp = live_payload_new("湖南\"城通\"\x1b", "e/1\\", "electricity",
                                               escape_names, NULL, N_ESCAPE_NAMES);
    double values[N_ESCAPE_NAMES];
    bool valid[N_ESCAPE_NAMES];
    long differ = 0;
    for (int round = 0; round < 20000; round++) {
        for (size_t i = 0; i < N_ESCAPE_NAMES; i++) {
            uint64_t r = next_u64();
            double m = (double)(r >> 11) / 9007199254740992.0;
            values[i] = (m - 0.3) * pow(10, (double)(int)(r % 40) - 12);
            if (r % 17 == 0)
                values[i] = (double)(int64_t)(r % 100000); /* integral */
            if (r % 23 == 0)
                values[i] = r % 2 ? NAN : -INFINITY;
            valid[i] = r % 13 != 0;
        }
        int64_t ts = (int64_t)(next_u64() >> 1) * (round % 2 ? -1 : 1);
        size_t len;
        const char *got = live_payload_build(lp, ts, values, round % 5 ? valid : NULL, &len);
        char *want = live_jansson(ts, "湖南\"城通\"\x1b", "e/1\\", "electricity", escape_names,
                                  values, round % 5 ? valid : NULL, N_ESCAPE_NAMES);
        char *old_api = payload_live(ts, "湖南\"城通\"\x1b", "e/1\\", "electricity",
                                     escape_names, values, round % 5 ? valid : NULL,
                                     N_ESCAPE_NAMES);
        if (!want || strcmp(got, want) != 0 || strcmp(old_api, want) != 0 ||
            len != strlen(want)) {
            if (differ++ < 3)
                fprintf(stderr, "live payload\n  new %s\n  old %s\n", got,
                        want ? want : "(null)");
        }
        free(want);
        free(old_api);
    }
    CHECK_INT(differ, 0);
    live_payload_free(lp);
    live_payload_free(NULL);
}

/* float32 points get 7 significant digits, everything else 15; parsed
 * back, each value is within half a unit of its last printed digit. */
static void test_live_precision(void)
{
    struct cfg_point pts[6] = {
        {.name = "f32", .type = PT_FLOAT32, .scale = 1},
        {.name = "f32_ctpt", .type = PT_FLOAT32, .scale = 0.001, .ratio = RATIO_PT_CT},
        {.name = "f32_offset", .type = PT_FLOAT32, .scale = 1, .offset = 273.15},
        {.name = "u32_frac", .type = PT_UINT32, .scale = 1, .has_frac = true,
         .frac_type = PT_FLOAT32},
        {.name = "f64", .type = PT_FLOAT64, .scale = 1},
        {.name = "i16", .type = PT_INT16, .scale = 0.1},
    };
    int want_digits[6] = {7, 7, 15, 15, 15, 15};
    const char *names[6];
    int digits[6];
    for (int i = 0; i < 6; i++) {
        names[i] = pts[i].name;
        digits[i] = payload_point_digits(&pts[i]);
        CHECK_INT(digits[i], want_digits[i]);
    }
    struct live_payload *lp = live_payload_new("ent", "m1", "electricity", names, digits, 6);

    /* The profile's example: a float32 reading is 22.12745, not
     * 22.1274509429932; an integral float32 value keeps its ".0". */
    double v[6] = {(double)22.12745f, (double)230.1f * 4000.0, (double)21.7f + 273.15,
                   123456789.0 + (double)0.123f, 0.1, 123.0};
    size_t len;
    const char *s = live_payload_build(lp, 1767225600000LL, v, NULL, &len);
    CHECK_STR(s, "{\"ts\":1767225600000,\"enterprise\":\"ent\",\"meter\":\"m1\","
                 "\"utility\":\"electricity\",\"values\":{\"f32\":22.12745,"
                 "\"f32_ctpt\":920400.0,\"f32_offset\":294.850000762939,"
                 "\"u32_frac\":123456789.123,\"f64\":0.1,\"i16\":123.0}}");

    /* A big float32 counter keeps its units digit and plain notation:
     * 15243883 kWh is "15243883.0", not "1.524388e7"; the same at 1e14. */
    double big[6] = {(double)15243882.8f, (double)16777217.0f * 4000.0, 0, 0,
                     0, 0};
    s = live_payload_build(lp, 1, big, (const bool[6]){true, true, false, false, false, false},
                           &len);
    CHECK_STR(s, "{\"ts\":1,\"enterprise\":\"ent\",\"meter\":\"m1\","
                 "\"utility\":\"electricity\",\"values\":{\"f32\":15243883.0,"
                 "\"f32_ctpt\":67108864000.0}}");

    long bad = 0;
    for (int round = 0; round < 20000; round++) {
        for (int i = 0; i < 6; i++) {
            uint64_t r = next_u64();
            float f;
            uint32_t u = (uint32_t)r;
            memcpy(&f, &u, sizeof(f));
            v[i] = isfinite(f) ? (double)f * (i == 1 ? 4000.0 : 1.0) : 1.0;
        }
        s = live_payload_build(lp, round, v, NULL, &len);
        json_t *j = parse(s);
        json_t *vals = j ? json_object_get(j, "values") : NULL;
        CHECK(vals != NULL);
        for (int i = 0; vals && i < 6; i++) {
            json_t *jv = json_object_get(vals, names[i]);
            double got = json_real_value(jv);
            /* Half a unit of the last digit is 0.5 * 10^(1-digits) of the
             * leading digit's unit, at most that fraction of |v|; strtod of
             * the text adds up to half an ulp. */
            double tol = (0.5 * pow(10, 1 - digits[i]) + 2 * DBL_EPSILON) * fabs(v[i]);
            if (!json_is_real(jv) || fabs(got - v[i]) > tol) {
                if (bad++ < 3)
                    fprintf(stderr, "%s: %.17g printed as %s\n", names[i], v[i], s);
            }
        }
        json_decref(j);
    }
    CHECK_INT(bad, 0);
    live_payload_free(lp);
}

/* Escapes and UTF-8 repair of the prepared strings, read back by jansson. */
static void test_live_strings(void)
{
    const char *names[] = {"ok", "bad\xff" "byte", NULL, "ctl\x01\x1f\"\\"};
    struct live_payload *lp =
        live_payload_new("ab\xff" "c", "e\xe6\xb9", "gas\n", names, NULL, 4);
    double v[] = {1.0, 2.5, 3.0, -4.0};
    size_t len;
    const char *s = live_payload_build(lp, -5, v, NULL, &len);
    CHECK_INT(len, strlen(s));
    json_t *j = parse(s);
    CHECK(j != NULL);
    if (j) {
        CHECK_INT(json_integer_value(json_object_get(j, "ts")), -5);
        CHECK_STR(json_string_value(json_object_get(j, "enterprise")), "ab\xef\xbf\xbd" "c");
        CHECK_STR(json_string_value(json_object_get(j, "meter")), "e\xef\xbf\xbd\xef\xbf\xbd");
        CHECK_STR(json_string_value(json_object_get(j, "utility")), "gas\n");
        json_t *vals = json_object_get(j, "values");
        CHECK_INT(json_object_size(vals), 3); /* the point without a name is left out */
        CHECK_NEAR(json_real_value(json_object_get(vals, "ok")), 1.0, 0);
        CHECK_NEAR(json_real_value(json_object_get(vals, "bad\xef\xbf\xbd" "byte")), 2.5, 0);
        CHECK_NEAR(json_real_value(json_object_get(vals, "ctl\x01\x1f\"\\")), -4.0, 0);
        json_decref(j);
    }
    CHECK_CONTAINS(s, "\"ctl\\u0001\\u001F\\\"\\\\\":-4.0");

    /* The longest numbers everywhere fit the buffer (ASan builds check it). */
    double longest[] = {-1.23456789012345e-300, -1.23456789012345e-300,
                        -1.23456789012345e-300, -1.23456789012345e-300};
    s = live_payload_build(lp, INT64_MIN, longest, NULL, &len);
    CHECK_CONTAINS(s, "\"ts\":-9223372036854775808,");
    CHECK_CONTAINS(s, "\"ok\":-1.23456789012345e-300");
    live_payload_free(lp);
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
    test_live_same_as_jansson();
    test_live_precision();
    test_live_strings();
    test_utf8();
    test_status();
    test_state();
    test_events();
    return check_done();
}
