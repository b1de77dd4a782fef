/*
 * test_plan.c - the read planner on profiles built in code: merging of
 * adjacent points, the gap rule at its boundary, size limits, the meter
 * workarounds, shared registers, fc separation, bits, locs, the RTU
 * wire cost and bus-time estimate, and integer + fraction totalisers (both
 * parts always in one request).
 */
#include <errno.h>
#include <stdlib.h>

#include "protocols/plan.h"
#include "tests/unit/check.h"

#define MAXP 2100

static struct cfg_point pts[MAXP];
static struct cfg_profile prof;

static void reset(void)
{
    memset(pts, 0, sizeof(pts));
    prof = (struct cfg_profile){ .name = "t", .points = pts, .n_points = 0 };
}

static void add(int fc, int address, enum point_type t)
{
    struct cfg_point *p = &pts[prof.n_points++];
    p->name = "p";
    p->fc = fc;
    p->address = address;
    p->type = t;
    p->order = WO_ABCD;
    p->scale = 1;
}

static const struct plan_opts defaults = { .max_registers = 125 };

static struct plan *build(const struct plan_opts *o)
{
    struct plan *p = NULL;
    int rc = plan_build(&prof, o, &p);
    CHECK_INT(rc, 0);
    return p;
}

#define CHECK_REQ(pl, i, f, a, c)                                                          \
    do {                                                                                   \
        CHECK_INT((pl)->reqs[i].fc, f);                                                    \
        CHECK_INT((pl)->reqs[i].address, a);                                               \
        CHECK_INT((pl)->reqs[i].count, c);                                                 \
    } while (0)

#define CHECK_LOC(pl, i, r, off)                                                           \
    do {                                                                                   \
        CHECK_INT((pl)->locs[i].req, r);                                                   \
        CHECK_INT((pl)->locs[i].offset, off);                                              \
    } while (0)

static void test_adjacent(void)
{
    reset();
    add(3, 0, PT_FLOAT32);
    add(3, 2, PT_FLOAT32);
    add(3, 4, PT_UINT16);
    struct plan *p = build(&defaults);
    /* 0-1, 2-3, 4: one request of 5 registers. */
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 5);
    CHECK_INT(p->n_locs, 3);
    CHECK_LOC(p, 0, 0, 0);
    CHECK_LOC(p, 1, 0, 2);
    CHECK_LOC(p, 2, 0, 4);
    CHECK_INT(p->total_regs, 5);
    plan_free(p);
}

static void test_gap_boundary(void)
{
    /* uint16 at 0 ends at 1; next at 10: gap 9, 2*9 = 18 < 20 -> bridged. */
    reset();
    add(3, 0, PT_UINT16);
    add(3, 10, PT_UINT16);
    struct plan *p = build(&defaults);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 11);
    CHECK_LOC(p, 1, 0, 10);
    CHECK_INT(p->total_regs, 11);
    plan_free(p);

    /* next at 11: gap 10, 2*10 = 20, not < 20 -> two requests. */
    reset();
    add(3, 0, PT_UINT16);
    add(3, 11, PT_UINT16);
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 1);
    CHECK_REQ(p, 1, 3, 11, 1);
    CHECK_LOC(p, 1, 1, 0);
    CHECK_INT(p->total_regs, 2);
    plan_free(p);

    /* The gap is measured from the end of a wide point: float32 at 0 ends
     * at 2, next at 11 -> gap 9 -> bridged, 12 registers. */
    reset();
    add(3, 0, PT_FLOAT32);
    add(3, 11, PT_FLOAT32);
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 13);
    plan_free(p);

    CHECK(plan_gap_worth_bridging(3, 0));
    CHECK(plan_gap_worth_bridging(3, 9));
    CHECK(!plan_gap_worth_bridging(3, 10));
    CHECK(plan_gap_worth_bridging(4, 9));
    CHECK(!plan_gap_worth_bridging(4, 10));
    /* Bits: ceil(152/8) = 19 < 20 yes; ceil(153/8) = 20 no. */
    CHECK(plan_gap_worth_bridging(1, 152));
    CHECK(!plan_gap_worth_bridging(1, 153));
    CHECK(plan_gap_worth_bridging(2, 152));
    CHECK(!plan_gap_worth_bridging(2, 160));
}

static void test_limit_125(void)
{
    /* 125 uint16 at 0..124: exactly one full request. */
    reset();
    for (int a = 0; a < 125; a++)
        add(3, a, PT_UINT16);
    struct plan *p = build(&defaults);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 125);
    plan_free(p);

    /* One more register: 126 -> split 125 + 1. */
    add(3, 125, PT_UINT16);
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 125);
    CHECK_REQ(p, 1, 3, 125, 1);
    CHECK_LOC(p, 125, 1, 0);
    plan_free(p);

    /* 63 float32 at 0,2,..,124 = 126 registers: a float32 is never split,
     * so the first request stops at 124 registers (62 points). */
    reset();
    for (int a = 0; a < 126; a += 2)
        add(3, a, PT_FLOAT32);
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 124);
    CHECK_REQ(p, 1, 3, 124, 2);
    CHECK_LOC(p, 61, 0, 122);
    CHECK_LOC(p, 62, 1, 0);
    plan_free(p);

    /* A max_registers above 125 is clamped to 125. */
    reset();
    for (int a = 0; a < 130; a++)
        add(4, a, PT_UINT16);
    struct plan_opts big = { .max_registers = 500 };
    p = build(&big);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 4, 0, 125);
    CHECK_REQ(p, 1, 4, 125, 5);
    plan_free(p);
}

static void test_max_registers(void)
{
    /* 20 adjacent uint16 with max 10 -> 10 + 10. */
    reset();
    for (int a = 0; a < 20; a++)
        add(3, a, PT_UINT16);
    struct plan_opts o = { .max_registers = 10 };
    struct plan *p = build(&o);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 10);
    CHECK_REQ(p, 1, 3, 10, 10);
    CHECK_LOC(p, 13, 1, 3);
    plan_free(p);

    /* A gap that would be bridged is not when it breaks the limit:
     * uint16 at 0 and 9 -> 10 registers (fits 10); at 10 -> 11 (does not). */
    reset();
    add(3, 0, PT_UINT16);
    add(3, 9, PT_UINT16);
    p = build(&o);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 10);
    plan_free(p);
    reset();
    add(3, 0, PT_UINT16);
    add(3, 10, PT_UINT16);
    p = build(&o);
    CHECK_INT(p->n_reqs, 2);
    plan_free(p);

    /* A point wider than the limit cannot be read: float64 with max 3. */
    reset();
    add(3, 0, PT_FLOAT64);
    struct plan_opts tiny = { .max_registers = 3 };
    struct plan sentinel;
    struct plan *untouched = &sentinel;
    CHECK_INT(plan_build(&prof, &tiny, &untouched), -EINVAL);
    CHECK(untouched == &sentinel);

    /* A point past the end of the address space. */
    reset();
    add(3, 65535, PT_FLOAT32);
    CHECK_INT(plan_build(&prof, &defaults, &untouched), -EINVAL);
    CHECK(untouched == &sentinel);
}

static void test_no_gap_fill(void)
{
    reset();
    add(3, 0, PT_FLOAT32); /* 0-1 */
    add(3, 2, PT_UINT16);  /* 2: adjacent, merged */
    add(3, 4, PT_UINT16);  /* gap 1: not bridged */
    add(3, 4, PT_INT16);   /* same register: shared */
    add(3, 5, PT_UINT32);  /* adjacent to 4: merged */
    struct plan_opts o = { .max_registers = 125, .no_gap_fill = true };
    struct plan *p = build(&o);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 3);
    CHECK_REQ(p, 1, 3, 4, 3);
    CHECK_LOC(p, 2, 1, 0);
    CHECK_LOC(p, 3, 1, 0);
    CHECK_LOC(p, 4, 1, 1);
    CHECK_INT(p->total_regs, 6);
    plan_free(p);

    /* The same profile with gap fill: one request of 7. */
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 0, 7);
    plan_free(p);
}

static void test_one_request_per_point(void)
{
    reset();
    add(3, 0, PT_FLOAT32);
    add(3, 2, PT_FLOAT32);
    add(3, 4, PT_UINT16);
    add(3, 4, PT_INT16);   /* identical register: still read once */
    add(3, 1, PT_UINT16);  /* inside the first float32: shares its request */
    struct plan_opts o = { .max_registers = 125, .one_request_per_point = true };
    struct plan *p = build(&o);
    CHECK_INT(p->n_reqs, 3);
    CHECK_REQ(p, 0, 3, 0, 2);
    CHECK_REQ(p, 1, 3, 2, 2);
    CHECK_REQ(p, 2, 3, 4, 1);
    CHECK_LOC(p, 0, 0, 0);
    CHECK_LOC(p, 1, 1, 0);
    CHECK_LOC(p, 2, 2, 0);
    CHECK_LOC(p, 3, 2, 0);
    CHECK_LOC(p, 4, 0, 1);
    plan_free(p);
}

static void test_shared_registers(void)
{
    /* Two views of register 5 plus a float32 over 4-5 and a uint32 over 5-6:
     * registers 4..6 once, total 3. */
    reset();
    add(3, 5, PT_UINT16);
    add(3, 5, PT_INT16);
    add(3, 4, PT_FLOAT32);
    add(3, 5, PT_UINT32);
    struct plan *p = build(&defaults);
    CHECK_INT(p->n_reqs, 1);
    CHECK_REQ(p, 0, 3, 4, 3);
    CHECK_LOC(p, 0, 0, 1);
    CHECK_LOC(p, 1, 0, 1);
    CHECK_LOC(p, 2, 0, 0);
    CHECK_LOC(p, 3, 0, 1);
    CHECK_INT(p->total_regs, 3);
    plan_free(p);
}

static void test_fc_separation_and_order(void)
{
    /* Profile order is not address order; fc 4 listed before fc 3. */
    reset();
    add(4, 1, PT_UINT16);  /* 0 */
    add(3, 20, PT_UINT16); /* 1 */
    add(4, 0, PT_UINT16);  /* 2 */
    add(3, 0, PT_FLOAT32); /* 3 */
    add(3, 10, PT_UINT16); /* 4: gap 8 after 0-1 -> bridged */
    struct plan *p = build(&defaults);
    /* fc 3: 0..1, 10, 20: gaps 8 and 9 -> one request 0..20 (21).
     * fc 4: 0..1 (2). Registers of the same address in different fcs are
     * different registers and never merge. */
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 3, 0, 21);
    CHECK_REQ(p, 1, 4, 0, 2);
    CHECK_LOC(p, 0, 1, 1);
    CHECK_LOC(p, 1, 0, 20);
    CHECK_LOC(p, 2, 1, 0);
    CHECK_LOC(p, 3, 0, 0);
    CHECK_LOC(p, 4, 0, 10);
    CHECK_INT(p->total_regs, 23);
    plan_free(p);
}

static void test_bits(void)
{
    /* Coils 0 and 100: gap 99 bits, ceil(99/8) = 13 < 20 -> bridged (101).
     * Discrete inputs 0 and 161: gap 160 bits, 20 bytes -> split. */
    reset();
    add(1, 0, PT_BOOL);
    add(1, 100, PT_BOOL);
    add(2, 0, PT_BOOL);
    add(2, 161, PT_BOOL);
    struct plan *p = build(&defaults);
    CHECK_INT(p->n_reqs, 3);
    CHECK_REQ(p, 0, 1, 0, 101);
    CHECK_REQ(p, 1, 2, 0, 1);
    CHECK_REQ(p, 2, 2, 161, 1);
    CHECK_LOC(p, 1, 0, 100);
    CHECK_LOC(p, 3, 2, 0);
    plan_free(p);

    /* 2001 adjacent coils: 2000 + 1. */
    reset();
    for (int a = 0; a < 2001; a++)
        add(1, a, PT_BOOL);
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 1, 0, 2000);
    CHECK_REQ(p, 1, 1, 2000, 1);
    plan_free(p);

    /* max_registers 10 -> bit limit 160: 200 coils -> 160 + 40. */
    reset();
    for (int a = 0; a < 200; a++)
        add(2, a, PT_BOOL);
    struct plan_opts o = { .max_registers = 10 };
    p = build(&o);
    CHECK_INT(p->n_reqs, 2);
    CHECK_REQ(p, 0, 2, 0, 160);
    CHECK_REQ(p, 1, 2, 160, 40);
    plan_free(p);
}

static void test_wire_and_time(void)
{
    struct plan_req r1 = {.fc = 3, .address = 0, .count = 10}, r2 = {.fc = 1, .address = 0, .count = 16}, r3 = {.fc = 2, .address = 0, .count = 17}, r4 = {.fc = 4, .address = 0, .count = 125};
    CHECK_INT(plan_req_wire_chars(&r1), 40);  /* 20 + 2*10 */
    CHECK_INT(plan_req_wire_chars(&r2), 22);  /* 20 + 16/8 */
    CHECK_INT(plan_req_wire_chars(&r3), 23);  /* 20 + ceil(17/8) = 20 + 3 */
    CHECK_INT(plan_req_wire_chars(&r4), 270); /* 20 + 250 */

    /* Plan: fc 3 0..9 (10 regs) and fc 4 0..1 (2 regs).
     * Characters: (20 + 20) + (20 + 4) = 64.
     * At 9600 baud, 11 bits/char (8E1): 64 * 11 / 9600 = 0.0733333 s,
     * plus the 10 ms turnaround allowance per request: 2 * 0.010 = 0.020,
     * total 0.0933333 s. */
    reset();
    for (int a = 0; a < 10; a++)
        add(3, a, PT_UINT16);
    add(4, 0, PT_FLOAT32);
    struct plan *p = build(&defaults);
    CHECK_INT(p->n_reqs, 2);
    CHECK_NEAR(plan_rtu_seconds(p, 9600, 11), 0.0933333333, 1e-9);
    /* At 19200 baud: 64 * 11 / 19200 = 0.0366667 + 0.020 = 0.0566667. */
    CHECK_NEAR(plan_rtu_seconds(p, 19200, 11), 0.0566666667, 1e-9);
    plan_free(p);

    /* Versus one request per point: 11 requests, 10 of 1 register (22 chars)
     * and one of 2 (24): 244 chars * 11 / 9600 = 0.2795833 + 0.110 = 0.3895833. */
    struct plan_opts o = { .max_registers = 125, .one_request_per_point = true };
    p = build(&o);
    CHECK_INT(p->n_reqs, 11);
    CHECK_NEAR(plan_rtu_seconds(p, 9600, 11), 0.3895833333, 1e-9);
    plan_free(p);

    /* An empty profile plans nothing. */
    reset();
    p = build(&defaults);
    CHECK_INT(p->n_reqs, 0);
    CHECK_INT(p->n_locs, 0);
    CHECK_NEAR(plan_rtu_seconds(p, 9600, 11), 0, 0);
    plan_free(p);
    plan_free(NULL);
}

static void test_opts_for_meter(void)
{
    struct cfg_meter m = { .id = "m", .max_registers_per_read = 0 };
    struct plan_opts o = plan_opts_for_meter(&m);
    CHECK_INT(o.max_registers, 125);
    CHECK(!o.no_gap_fill);
    CHECK(!o.one_request_per_point);

    m.max_registers_per_read = 32;
    m.no_gap_fill = true;
    m.one_request_per_point = true;
    o = plan_opts_for_meter(&m);
    CHECK_INT(o.max_registers, 32);
    CHECK(o.no_gap_fill);
    CHECK(o.one_request_per_point);
}

static void add_frac(int address, enum point_type t, int frac_address, enum point_type ft)
{
    add(3, address, t);
    struct cfg_point *p = &pts[prof.n_points - 1];
    p->has_frac = true;
    p->frac_address = frac_address;
    p->frac_type = ft;
    p->frac_scale = 1;
}

static void test_frac(void)
{
    /* TUF-2000M: flow 0-1, velocity 4-5, sound speed 6-7, volume 8-9 +
     * fraction 10-11, reverse 12-13, error code 71. The gap 2-3 costs 4
     * characters (< 20): bridged, so 0..13 is one request (14 registers);
     * 71 is 57 registers further: a second request. The volume's loc is its
     * integer part: offset 8 in request 0. */
    reset();
    add(3, 0, PT_FLOAT32);
    add(3, 4, PT_FLOAT32);
    add(3, 6, PT_FLOAT32);
    add_frac(8, PT_INT32, 10, PT_FLOAT32);
    add(3, 12, PT_INT32);
    add(3, 71, PT_UINT16);
    struct plan *p = build(&defaults);
    if (p) {
        CHECK_INT(p->n_reqs, 2);
        CHECK_REQ(p, 0, 3, 0, 14);
        CHECK_REQ(p, 1, 3, 71, 1);
        CHECK_LOC(p, 3, 0, 8);
        CHECK_INT(p->total_regs, 15);
    }
    plan_free(p);

    /* A fraction before its integer: uint16 at 19, uint32 at 20-21: the span
     * is 19..21. A point at 10 leaves a gap of 11..18 = 8 registers (16
     * characters < 20): bridged -> 10..21, 12 registers. The loc points at
     * the integer (offset 20 - 10 = 10), the decoder finds the fraction at -1. */
    reset();
    add(3, 10, PT_UINT16);
    add_frac(20, PT_UINT32, 19, PT_UINT16);
    p = build(&defaults);
    if (p) {
        CHECK_INT(p->n_reqs, 1);
        CHECK_REQ(p, 0, 3, 10, 12);
        CHECK_LOC(p, 1, 0, 10);
    }
    plan_free(p);

    /* The parts are never split, whatever the workarounds: 30-31 + 34-35 is
     * one request of 6 with no_gap_fill and with one_request_per_point. */
    reset();
    add_frac(30, PT_UINT32, 34, PT_FLOAT32);
    struct plan_opts o = defaults;
    o.no_gap_fill = true;
    p = build(&o);
    if (p) {
        CHECK_INT(p->n_reqs, 1);
        CHECK_REQ(p, 0, 3, 30, 6);
    }
    plan_free(p);
    o = defaults;
    o.one_request_per_point = true;
    p = build(&o);
    if (p) {
        CHECK_INT(p->n_reqs, 1);
        CHECK_REQ(p, 0, 3, 30, 6);
        CHECK_LOC(p, 0, 0, 0);
    }
    plan_free(p);

    /* ...and a meter that reads at most 4 registers cannot read a 6-register
     * totaliser consistently: the plan is refused rather than split. */
    o = defaults;
    o.max_registers = 4;
    struct plan *untouched = (struct plan *)&o;
    CHECK_INT(plan_build(&prof, &o, &untouched), -EINVAL);
    CHECK(untouched == (struct plan *)&o);
    o.max_registers = 6;
    p = build(&o);
    if (p)
        CHECK_INT(p->n_reqs, 1);
    plan_free(p);
}

int main(void)
{
    test_adjacent();
    test_gap_boundary();
    test_limit_125();
    test_max_registers();
    test_no_gap_fill();
    test_one_request_per_point();
    test_shared_registers();
    test_fc_separation_and_order();
    test_bits();
    test_wire_and_time();
    test_opts_for_meter();
    test_frac();
    return check_done();
}
