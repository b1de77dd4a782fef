/*
 * test_profiles.c - the shipped register maps of real meter models
 * (config/profiles/<vendor-model>.cfg): each loads through config_load from a
 * generated config that @includes it by absolute path, its billing counter
 * sits where the cited vendor document puts it, a hand-made register image
 * of that counter decodes to the hand-computed reading, and its read plan
 * takes the number of requests worked out below. Fixtures go to
 * $PARKGW_TEST_TMP; profiles are read from $PARKGW_SOURCE_DIR.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "config/config.h"
#include "protocols/decode.h"
#include "protocols/plan.h"
#include "tests/unit/check.h"

static char tmpdir[1024];
static char srcdir[1024];

/* What one profile must look like, written from its cited document. */
struct expect {
    const char *file;       /* under config/profiles/ */
    const char *profile;
    const char *utility;
    size_t n_points;
    /* billing counter */
    const char *billing;
    int fc;
    int address;
    enum point_type type;
    enum word_order order;
    double scale;
    enum point_ratio ratio;
    /* a register image of the billing counter and its reading */
    uint16_t regs[4];
    double pt_ct;
    double reading;
    /* supply_lost threshold on voltage_a_v; 0 = profile has no alarm */
    double supply_lost_below;
    /* read plan */
    size_t n_reqs;
    uint32_t total_regs;
};

static const struct expect profiles[] = {
    /* Eastron SDM630-Modbus V2 manual V1.6B: 30073 "Import active energy",
     * input register, float32 -> address 30073 - 30001 = 72.
     * Image: 1234.5 = 1.00110100101b x 2^10 -> sign 0, exponent 137
     * (0x89), mantissa 0x34A000 -> 0x449A5000 -> {0x449A, 0x5000}.
     * Plan (fc 4): 0..11 (three voltages, three currents) = 12 registers;
     * 52 is 40 registers further -> new request 52..53; 60 (gap 6, 2*6 < 20)
     * joins, 62 adjacent, 70 (gap 6) joins, 72..79 adjacent -> 52..79 = 28.
     * 2 requests, 40 registers. */
    {"eastron-sdm630.cfg", "eastron-sdm630", "electricity", 14,
     "energy_import_kwh", 4, 72, PT_FLOAT32, WO_ABCD, 1.0, RATIO_NONE,
     {0x449A, 0x5000}, 1.0, 1234.5, 115.0, 2, 40},
    /* CHINT DTSU666 manual, Table 11: ImpEp at 401EH, float32, read 03H.
     * Secondary value: with CT 200/5 (ratio 40) the image 1234.5 reads
     * 1234.5 x 40 = 49380 kWh.
     * Plan (fc 3): 0x2006..0x2013 (U, I, Pt = 14 registers); 0x201A gap 6
     * joins -> 0x2006..0x201B = 22; 0x202A gap 14 (28 >= 20) -> new, 2;
     * 0x2044 gap 24 -> new, 2; 0x401E new, 0x4028 gap 8 (16 < 20) joins ->
     * 0x401E..0x4029 = 12. 4 requests, 22 + 2 + 2 + 12 = 38 registers. */
    {"chint-dtsu666.cfg", "chint-dtsu666", "electricity", 12,
     "energy_import_kwh", 3, 0x401E, PT_FLOAT32, WO_ABCD, 1.0, RATIO_PT_CT,
     {0x449A, 0x5000}, 40.0, 49380.0, 110.0, 4, 38},
    /* Acrel DTSD1352 V2.0, 9.1: current forward active total energy at
     * 000AH, uint32, 0.01 kWh, secondary. Image 123456 = 0x0001E240 ->
     * 1234.56 kWh secondary; behind 10 kV/100 V (100) and 200/5 A (40):
     * 1234.56 x 4000 = 4 938 240 kWh.
     * Plan: 10..11, 20 (gap 8) joins -> 10..21 = 12; 40 (gap 18) new, 2;
     * 97..102 new, 6; 119 (gap 16) new, 1; 362..363 new, 370 (gap 6) joins
     * -> 362..371 = 10; 383 (gap 11, 22 >= 20) new, 1. 6 requests,
     * 12 + 2 + 6 + 1 + 10 + 1 = 32 registers. */
    {"acrel-dtsd1352.cfg", "acrel-dtsd1352", "electricity", 13,
     "energy_import_kwh", 3, 0x000A, PT_UINT32, WO_ABCD, 0.01, RATIO_PT_CT,
     {0x0001, 0xE240}, 4000.0, 4938240.0, 30.0, 6, 32},
    /* Schneider DOCA0005EN-13: 3204 "Total Active Energy Import", INT64,
     * Wh -> address 3203, scale 0.001 to kWh. Image 1 234 567 Wh =
     * 0x0012D687 -> {0, 0, 0x0012, 0xD687} -> 1234.567 kWh.
     * Plan: 2999..3004 = 6; 3027 (gap 22) new, 3027..3032 = 6; 3059 (gap
     * 26) new, 3067 (gap 6) joins -> 3059..3068 = 10; 3083 (gap 14) new, 2;
     * 3109 (gap 24) new, 2; 3203..3210 (two int64) = 8. 6 requests,
     * 6 + 6 + 10 + 2 + 2 + 8 = 34 registers. */
    {"schneider-iem3255.cfg", "schneider-iem3255", "electricity", 12,
     "energy_import_kwh", 3, 3203, PT_INT64, WO_ABCD, 0.001, RATIO_NONE,
     {0x0000, 0x0000, 0x0012, 0xD687}, 1.0, 1234.567, 115.0, 6, 34},
    /* Siemens A5E00753974-AB, Process data MAG: 4:03015 / address 3014
     * "Totalizer 1 (m3)", Double, big-endian. Image 1234.5 as a double:
     * exponent 1023 + 10 = 0x409, mantissa 0x34A0000000000 ->
     * 0x40934A0000000000 -> {0x4093, 0x4A00, 0, 0}.
     * Plan: 3002..3003; 3014 is 10 registers further (2*10 = 20, not
     * cheaper) -> new, 3014..3021 = 8. 2 requests, 10 registers. */
    {"siemens-mag6000.cfg", "siemens-mag6000", "water", 3,
     "volume_m3", 3, 3014, PT_FLOAT64, WO_ABCD, 1.0, RATIO_NONE,
     {0x4093, 0x4A00, 0x0000, 0x0000}, 1.0, 1234.5, 0.0, 2, 10},
    /* TUF-2000M manual, MODBUS registers table: REG0009-0010 "Positive
     * accumulator", LONG, low word first -> address 8, int32 CDAB.
     * Image 70 000 = 0x00011170 -> low word first {0x1170, 0x0001}.
     * Plan: 0..1, 4 (gap 2) joins, 8 (gap 2) joins, 10 and 12 adjacent ->
     * 0..13 = 14; 71 (gap 57) new, 1. 2 requests, 15 registers. */
    {"tuf-2000m.cfg", "tuf-2000m", "wastewater", 6,
     "volume_m3", 3, 8, PT_INT32, WO_CDAB, 1.0, RATIO_NONE,
     {0x1170, 0x0001}, 1.0, 70000.0, 0.0, 2, 15},
};

#define N_PROFILES (sizeof profiles / sizeof profiles[0])

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        return -errno;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -EIO;
}

static const struct cfg_profile *profile_named(const struct config *c, const char *name)
{
    int i = config_find_profile(c, name);
    return i < 0 ? NULL : &c->profiles[i];
}

/* The common head of every generated config: one TCP bus. */
static const char config_head[] = "gateway = { id = \"gw1\"; timezone = \"UTC\"; };\n"
                                  "storage = { path = \"x.db\"; };\n"
                                  "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
                                  "buses = ( { name = \"b1\"; type = \"tcp\"; host = \"127.0.0.1\"; } );\n";

/* Writes $PARKGW_TEST_TMP/<name>.cfg with one meter per entry of 'ex'
 * (meter i has unit id i + 1) and loads it. */
static int load_generated(const char *name, const struct expect *ex, size_t n,
                          struct config **ret)
{
    char path[1200], err[600] = "";
    size_t cap = 8192;
    char *text = malloc(cap);
    size_t len = 0;
    int r;

    if (!text)
        abort();
    len += (size_t)snprintf(text + len, cap - len, "%s", config_head);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "@include \"%s/config/profiles/%s\"\n",
                                srcdir, ex[i].file);
    len += (size_t)snprintf(text + len, cap - len,
                            "enterprises = ( { id = \"chengtong-plastics\"; name = \"A\";\n"
                            "  meters = (\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "    { id = \"m%zu\"; utility = \"%s\"; bus = \"b1\"; unit_id = %zu;"
                                " profile = \"%s\"; interval = 10; }%s\n",
                                i + 1, ex[i].utility, i + 1, ex[i].profile,
                                i + 1 < n ? "," : "");
    len += (size_t)snprintf(text + len, cap - len, "  ); } );\n");
    if (len >= cap) {
        fprintf(stderr, "generated config too long\n");
        free(text);
        return -E2BIG;
    }

    snprintf(path, sizeof path, "%s/%s.cfg", tmpdir, name);
    r = write_file(path, text);
    free(text);
    if (r)
        return r;
    r = config_load(path, ret, err, sizeof err);
    if (r)
        fprintf(stderr, "%s: %s\n", path, err);
    return r;
}

static void test_one(const struct expect *ex)
{
    struct config *c = NULL;
    char name[128];

    snprintf(name, sizeof name, "profile-%s", ex->profile);
    int r = load_generated(name, ex, 1, &c);
    CHECK_INT(r, 0);
    if (r)
        return;

    const struct cfg_profile *p = profile_named(c, ex->profile);
    CHECK(p != NULL);
    if (!p)
        goto out_free_config;
    {
        enum utility u = UTIL__COUNT;
        CHECK_INT(utility_parse(ex->utility, &u), 0);
        CHECK(profile_suits(p, u));
    }
    CHECK_INT(p->n_points, ex->n_points);
    /* The profile remembers the file it came from (for error messages). */
    CHECK_CONTAINS(p->file, ex->file);

    /* The billing counter, against the cited document. */
    int b = profile_billing_point(p);
    CHECK(b >= 0);
    if (b < 0)
        goto out_free_config;
    const struct cfg_point *bp = &p->points[b];
    CHECK_STR(bp->name, ex->billing);
    CHECK_INT(bp->fc, ex->fc);
    CHECK_INT(bp->address, ex->address);
    CHECK_STR(point_type_name(bp->type), point_type_name(ex->type));
    CHECK_INT(bp->order, ex->order);
    CHECK_NEAR(bp->scale, ex->scale, 1e-12);
    CHECK_INT(bp->kind, KIND_COUNTER);
    CHECK_INT(bp->ratio, ex->ratio);

    /* Its register image decodes to the hand-computed reading. */
    double v = 0;
    CHECK_INT(decode_point(bp, ex->pt_ct, 1.0, ex->regs, &v), 0);
    CHECK_NEAR(v, ex->reading, 1e-6 * (ex->reading > 1 ? ex->reading : 1));

    /* Electricity profiles raise supply_lost on phase A; the flow meters
     * here measure no pressure: a no_flow alarm on their flow, scheduled. */
    if (ex->supply_lost_below > 0) {
        CHECK_INT(p->n_alarms, 1);
        if (p->n_alarms == 1) {
            const struct cfg_alarm *a = &p->alarms[0];
            CHECK_STR(a->name, "supply_lost");
            CHECK_INT(a->point, profile_find_point(p, "voltage_a_v"));
            CHECK(a->has_below && !a->has_above);
            CHECK_NEAR(a->below, ex->supply_lost_below, 1e-9);
            CHECK_NEAR(a->for_s, 5.0, 1e-9);
        }
    } else {
        CHECK_INT(p->n_alarms, 1);
        if (p->n_alarms == 1) {
            const struct cfg_alarm *a = &p->alarms[0];
            CHECK_STR(a->name, "no_flow");
            CHECK_INT(a->point, profile_find_point(p, "flow_m3h"));
            CHECK(a->has_below && !a->has_above && a->below > 0);
            CHECK(a->for_s >= 600);
            CHECK_INT(a->n_hours, 1);
            /* a plant idle at night is not an outage */
            CHECK(alarm_in_schedule(a, 12 * 60) && !alarm_in_schedule(a, 2 * 60));
        }
    }

    /* Only electricity points may be scaled by PT or CT; and every shipped
     * electricity profile publishes primary values: a meter whose energy is
     * a secondary value (pt_ct) also has its voltages scaled by the PT and
     * its currents by the CT, one that reports primary values scales none. */
    for (size_t i = 0; i < p->n_points; i++) {
        const struct cfg_point *q = &p->points[i];
        if (q->ratio != RATIO_NONE)
            CHECK_INT(p->utility, UTIL_ELECTRICITY);
        bool secondary = bp->ratio == RATIO_PT_CT;
        const char *n = q->name;
        size_t len = strlen(n);
        enum point_ratio want = RATIO_NONE;
        if (strncmp(n, "voltage_", 8) == 0 && len > 2 && strcmp(n + len - 2, "_v") == 0)
            want = secondary ? RATIO_PT : RATIO_NONE;
        else if (strncmp(n, "current_", 8) == 0 && len > 2 && strcmp(n + len - 2, "_a") == 0)
            want = secondary ? RATIO_CT : RATIO_NONE;
        else if (strstr(n, "_kw") || strstr(n, "_kvar") || strstr(n, "_kva"))
            want = secondary ? RATIO_PT_CT : RATIO_NONE; /* energies and powers */
        else
            continue;
        if (q->ratio != want) {
            check_failed++;
            fprintf(stderr, "%s: point %s has ratio '%s', expected '%s'\n", ex->profile, n,
                    point_ratio_name(q->ratio), point_ratio_name(want));
        } else {
            check_passed++;
        }
    }

    /* The read plan of the meter using it. */
    const struct cfg_meter *m = &c->enterprises[0].meters[0];
    CHECK_INT(m->profile, (int)(p - c->profiles));
    struct plan_opts opts = plan_opts_for_meter(m);
    struct plan *pl = NULL;
    CHECK_INT(plan_build(p, &opts, &pl), 0);
    if (pl) {
        CHECK_INT(pl->n_reqs, ex->n_reqs);
        CHECK_INT(pl->total_regs, ex->total_regs);
        /* The billing counter is read whole, at its own address. */
        const struct plan_req *rq = &pl->reqs[pl->locs[b].req];
        CHECK_INT(rq->fc, ex->fc);
        CHECK_INT(rq->address + pl->locs[b].offset, ex->address);
        CHECK(pl->locs[b].offset + point_type_regs(bp->type) <= rq->count);
        /* No request is larger than Modbus allows. */
        for (size_t i = 0; i < pl->n_reqs; i++)
            CHECK(pl->reqs[i].count >= 1 && pl->reqs[i].count <= 125);
        plan_free(pl);
    }

out_free_config:
    config_free(c);
}

/* Hand-checked request lists for two profiles, to pin the plans down
 * beyond their counts (see the reasoning in the table above). */
static void test_plan_layout(void)
{
    struct config *c = NULL;
    struct plan *pl = NULL;

    /* SDM630: fc 4, 0..11 and 52..79. */
    if (load_generated("layout-sdm630", &profiles[0], 1, &c) == 0) {
        struct plan_opts o = plan_opts_for_meter(&c->enterprises[0].meters[0]);
        CHECK_INT(plan_build(&c->profiles[0], &o, &pl), 0);
        if (pl && pl->n_reqs == 2) {
            CHECK_INT(pl->reqs[0].fc, 4);
            CHECK_INT(pl->reqs[0].address, 0);
            CHECK_INT(pl->reqs[0].count, 12);
            CHECK_INT(pl->reqs[1].address, 52);
            CHECK_INT(pl->reqs[1].count, 28);
        } else {
            CHECK(!"sdm630 plan has 2 requests");
        }
        plan_free(pl);
        pl = NULL;
        config_free(c);
        c = NULL;
    } else {
        CHECK(!"sdm630 layout config loads");
    }

    /* DTSU666: 0x2006/22, 0x202A/2, 0x2044/2, 0x401E/12. */
    if (load_generated("layout-dtsu666", &profiles[1], 1, &c) == 0) {
        struct plan_opts o = plan_opts_for_meter(&c->enterprises[0].meters[0]);
        CHECK_INT(plan_build(&c->profiles[0], &o, &pl), 0);
        static const uint16_t want[4][2] = {
            {0x2006, 22}, {0x202A, 2}, {0x2044, 2}, {0x401E, 12}};
        if (pl && pl->n_reqs == 4) {
            for (size_t i = 0; i < 4; i++) {
                CHECK_INT(pl->reqs[i].address, want[i][0]);
                CHECK_INT(pl->reqs[i].count, want[i][1]);
            }
        } else {
            CHECK(!"dtsu666 plan has 4 requests");
        }
        plan_free(pl);
        config_free(c);
    } else {
        CHECK(!"dtsu666 layout config loads");
    }
}

/* All profiles at once: their profiles_* lists and names do not collide,
 * so a park config can @include every one of them. */
static void test_all_together(void)
{
    struct config *c = NULL;
    int r = load_generated("all-profiles", profiles, N_PROFILES, &c);
    CHECK_INT(r, 0);
    if (r)
        return;
    CHECK_INT(c->n_profiles, N_PROFILES);
    CHECK_INT(config_count_meters(c), N_PROFILES);
    for (size_t i = 0; i < N_PROFILES; i++) {
        const struct cfg_profile *p = profile_named(c, profiles[i].profile);
        CHECK(p != NULL);
        if (p)
            CHECK_INT(c->enterprises[0].meters[i].profile, (int)(p - c->profiles));
    }
    config_free(c);
}

/* One meter model, two utilities: the TUF-2000M (utilities = water,
 * wastewater) meters an enterprise's water supply and its discharge; each
 * meter is billed as its own utility (its entry's `utility`), and a gas
 * meter on it is refused with the utilities the profile suits. */
static void test_two_utilities(void)
{
    char path[1200], err[600] = "", text[2048];
    struct config *c = NULL;
    snprintf(text, sizeof text,
             "%s@include \"%s/config/profiles/tuf-2000m.cfg\"\n"
             "enterprises = ( { id = \"runyu-plastics\"; name = \"湖南润宇塑业有限公司\";\n"
             "  meters = (\n"
             "    { id = \"w1\"; utility = \"water\"; bus = \"b1\"; unit_id = 1;"
             " profile = \"tuf-2000m\"; interval = 10; },\n"
             "    { id = \"ww1\"; utility = \"wastewater\"; bus = \"b1\"; unit_id = 2;"
             " profile = \"tuf-2000m\"; interval = 10; } ); } );\n"
             "tariffs = ( { utility = \"water\"; currency = \"CNY\"; price = 3.9; },\n"
             "  { utility = \"wastewater\"; currency = \"CNY\"; price = 1.4; } );\n",
             config_head, srcdir);
    snprintf(path, sizeof path, "%s/two-utilities.cfg", tmpdir);
    CHECK_INT(write_file(path, text), 0);
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "two utilities: %s\n", err);
        return;
    }
    const struct cfg_profile *p = profile_named(c, "tuf-2000m");
    CHECK(p != NULL);
    const struct cfg_meter *w = config_find_meter(c, "runyu-plastics/w1");
    const struct cfg_meter *ww = config_find_meter(c, "runyu-plastics/ww1");
    CHECK(w && ww);
    if (p && w && ww) {
        CHECK_INT(w->profile, ww->profile);
        CHECK_INT(w->utility, UTIL_WATER);
        CHECK_INT(ww->utility, UTIL_WASTEWATER);
        CHECK(profile_suits(p, UTIL_WATER) && profile_suits(p, UTIL_WASTEWATER));
        CHECK(!profile_suits(p, UTIL_GAS) && !profile_suits(p, UTIL_ELECTRICITY));
        CHECK_STR(utility_unit(ww->utility), "m3");
    }
    config_free(c);
    c = NULL;

    /* The same model as a gas meter: refused at the meter's utility line. */
    snprintf(text, sizeof text,
             "%s@include \"%s/config/profiles/tuf-2000m.cfg\"\n"
             "enterprises = ( { id = \"a\"; name = \"A\";\n"
             "  meters = (\n"
             "    { id = \"g1\";\n"
             "      utility = \"gas\"; bus = \"b1\"; unit_id = 1; profile = \"tuf-2000m\";"
             " interval = 10; } ); } );\n",
             config_head, srcdir);
    CHECK_INT(write_file(path, text), 0);
    r = config_load(path, &c, err, sizeof err);
    CHECK(r < 0);
    char want[1300];
    snprintf(want, sizeof want, "%s:9: ", path);
    CHECK_CONTAINS(err, want);
    CHECK_CONTAINS(err, "utility 'gas' is not one profile 'tuf-2000m' suits (water, wastewater)");
    config_free(c);
}

/* The value of point 'name' of p decoded from 'bytes' (as bus_read_meter
 * delivers them, one per element). */
static double decode_named(const struct cfg_profile *p, const char *name, const uint8_t *bytes,
                           size_t n)
{
    uint16_t d[16] = {0};
    for (size_t i = 0; i < n && i < 16; i++)
        d[i] = bytes[i];
    int i = profile_find_point(p, name);
    double v = -1;
    CHECK(i >= 0);
    if (i >= 0)
        CHECK_INT(decode_point(&p->points[i], 1.0, 1.0, d, &v), 0);
    return v;
}

/* The DL/T 645-2007 and CJ/T 188 profiles: data items, block offsets, the
 * requests of their plans, and hand-made data decoded. */
static void test_cn_profiles(void)
{
    char path[1200], err[600] = "";
    snprintf(path, sizeof path, "%s/cn-profiles.cfg", tmpdir);
    char *text = xasprintf(
        "gateway = { id = \"gw1\"; timezone = \"UTC\"; };\n"
        "storage = { path = \"x.db\"; };\n"
        "mqtt = { uri = \"tcp://127.0.0.1:1883\"; };\n"
        "buses = ( { name = \"d1\"; type = \"rtu\"; device = \"/dev/null\"; protocol = \"dlt645-2007\"; },\n"
        "          { name = \"c1\"; type = \"rtu\"; device = \"/dev/null\"; protocol = \"cjt188\"; } );\n"
        "@include \"%s/config/profiles/generic-dlt645.cfg\"\n"
        "@include \"%s/config/profiles/cjt188-water.cfg\"\n"
        "@include \"%s/config/profiles/cjt188-gas.cfg\"\n"
        "enterprises = ( { id = \"a\"; name = \"A\"; meters = (\n"
        "  { id = \"e1\"; utility = \"electricity\"; bus = \"d1\"; address = \"000012345678\";\n"
        "    profile = \"generic-dlt645\"; interval = 60; },\n"
        "  { id = \"w1\"; utility = \"water\"; bus = \"c1\"; address = \"12345678901234\";\n"
        "    profile = \"cjt188-water\"; interval = 60; },\n"
        "  { id = \"g1\"; utility = \"gas\"; bus = \"c1\"; address = \"12345678901235\";\n"
        "    profile = \"cjt188-gas\"; interval = 60; } ); } );\n",
        srcdir, srcdir, srcdir);
    CHECK_INT(write_file(path, text), 0);
    free(text);
    struct config *c = NULL;
    int r = config_load(path, &c, err, sizeof err);
    CHECK_INT(r, 0);
    if (r) {
        fprintf(stderr, "%s: %s\n", path, err);
        return;
    }
    const struct cfg_profile *e = profile_named(c, "generic-dlt645"),
                             *w = profile_named(c, "cjt188-water"), *g = profile_named(c, "cjt188-gas");
    CHECK(e && w && g);
    if (!e || !w || !g)
        goto out;

    /* Eleven data items: the energy block (total + tariffs 1-4, 5 x 4
     * bytes), export, reactive 1 and 2 (4 each), the voltage block (3 x 2),
     * the current block (3 x 3), power (3), PF (2), frequency (2), CT and
     * PT ratios (3 each): 20 + 12 + 6 + 9 + 3 + 2 + 2 + 6 = 60 bytes. */
    CHECK_INT(e->n_points, 19);
    struct plan_opts o = {0};
    struct plan *pl = NULL;
    CHECK_INT(plan_build(e, &o, &pl), 0);
    if (pl) {
        CHECK_INT(pl->n_reqs, 11);
        CHECK_INT(pl->total_regs, 60);
        int b = profile_billing_point(e), t4 = profile_find_point(e, "energy_import_t4_kwh"),
            ic = profile_find_point(e, "current_c_a"), vb = profile_find_point(e, "voltage_b_v");
        CHECK_INT(pl->reqs[pl->locs[b].req].di, 0x0001FF00);
        CHECK_INT(pl->reqs[pl->locs[b].req].count, 20);
        CHECK_INT(pl->locs[b].offset, 0);
        CHECK_INT(pl->locs[t4].offset, 16);
        CHECK_INT(pl->reqs[pl->locs[ic].req].di, 0x0202FF00);
        CHECK_INT(pl->locs[ic].offset, 6);
        CHECK_INT(pl->locs[vb].offset, 2);
        plan_free(pl);
    }
    /* 123456.78 kWh: pairs 12 34 56 78 sent 78 56 34 12. -1.234 A: 00 12
     * 34 with the sign, sent 34 12 80. PF -0.5: 0 500 -> 05 00, signed 85
     * 00, sent 00 85. CT ratio 200/5 = 40: 00 00 40, sent 40 00 00. */
    CHECK_NEAR(decode_named(e, "energy_import_kwh", (const uint8_t[]){0x78, 0x56, 0x34, 0x12}, 4),
               123456.78, 1e-6);
    CHECK_NEAR(decode_named(e, "current_a_a", (const uint8_t[]){0x34, 0x12, 0x80}, 3), -1.234,
               1e-9);
    CHECK_NEAR(decode_named(e, "pf", (const uint8_t[]){0x00, 0x85}, 2), -0.5, 1e-9);
    CHECK_NEAR(decode_named(e, "ct_ratio", (const uint8_t[]){0x40, 0x00, 0x00}, 3), 40, 0);
    CHECK_NEAR(decode_named(e, "frequency_hz", (const uint8_t[]){0x02, 0x50}, 2), 50.02, 1e-9);

    /* CJ/T 188: one 901F request of at least 10 bytes (two quantities). */
    CHECK_INT(w->meter_type, 0x10);
    CHECK_INT(g->meter_type, 0x30);
    CHECK_INT(plan_build(w, &o, &pl), 0);
    if (pl) {
        CHECK_INT(pl->n_reqs, 1);
        CHECK_INT(pl->reqs[0].di, 0x901F);
        CHECK_INT(pl->reqs[0].count, 10);
        CHECK(!pl->reqs[0].exact);
        plan_free(pl);
    }
    /* 1234.56 m3; a gas meter counting in litres: 1250.00 L = 1.25 m3. */
    CHECK_NEAR(decode_named(w, "volume_m3", (const uint8_t[]){0x56, 0x34, 0x12, 0x00, 0x2C}, 5),
               1234.56, 1e-9);
    CHECK_NEAR(decode_named(g, "volume_nm3", (const uint8_t[]){0x00, 0x50, 0x12, 0x00, 0x29}, 5),
               1.25, 1e-12);
out:
    config_free(c);
}

int main(void)
{
    const char *t = getenv("PARKGW_TEST_TMP");
    const char *s = getenv("PARKGW_SOURCE_DIR");
    if (!t || !s) {
        fprintf(stderr, "PARKGW_TEST_TMP and PARKGW_SOURCE_DIR must be set\n");
        return 2;
    }
    snprintf(srcdir, sizeof srcdir, "%s", s);
    mkdir(t, 0755);
    snprintf(tmpdir, sizeof tmpdir, "%s/profiles", t);
    mkdir(tmpdir, 0755);

    for (size_t i = 0; i < N_PROFILES; i++)
        test_one(&profiles[i]);
    test_plan_layout();
    test_all_together();
    test_two_utilities();
    test_cn_profiles();
    return check_done();
}
