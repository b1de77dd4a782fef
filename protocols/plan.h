/*
 * plan.h - read plans: the points of a meter's profile merged into the fewest
 * Modbus requests, computed once at config load. A request never exceeds
 * 125 registers / 2000 bits (or the meter's max_registers_per_read); a gap
 * between points is bridged when reading it costs fewer wire characters than
 * the fixed overhead of a new request (see plan_gap_worth_bridging).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

struct plan_req {
    uint8_t fc;        /* 1..4, or PLAN_FC_DLT645 / PLAN_FC_CJT188 */
    uint16_t address;  /* first register/bit */
    uint16_t count;    /* registers (fc 3/4), bits (fc 1/2), or data bytes */
    /* DL/T 645 and CJ/T 188: the data item read; its reply carries count
     * data bytes after the identifier (and SER), exactly count when exact,
     * else at least count (a block, or a CJ/T 188 item, may hold more). */
    uint32_t di;
    bool exact;
    uint8_t meter_type; /* CJ/T 188 */
};

/* Requests for data items, not registers (plan_req.fc). */
#define PLAN_FC_DLT645 0x45
#define PLAN_FC_CJT188 0x88

/* Where point i of the profile sits: request index and offset in it
 * (registers, bits, or data bytes). */
struct plan_loc {
    uint16_t req;
    uint16_t offset;
};

struct plan {
    struct plan_req *reqs;
    size_t n_reqs;
    struct plan_loc *locs;  /* one per profile point, same order as the profile */
    size_t n_locs;
    uint32_t total_regs;    /* registers/bits read per cycle, gaps included */
};

struct plan_opts {
    int max_registers;         /* 1..125; bits limit scales to 2000 */
    bool no_gap_fill;
    bool one_request_per_point;
};

/* Per-request fixed cost of RTU in character times: 8-byte request, 5-byte
 * response frame, and two 3.5-character silent intervals (rounded). */
#define PLAN_RTU_OVERHEAD_CHARS 20

/* True when reading 'gap' unused registers (fc 3/4) or bits (fc 1/2) is
 * cheaper on the wire than starting a new request. */
bool plan_gap_worth_bridging(int fc, int gap);

/* Wire characters of one request + response on RTU: 20 + 2N for registers,
 * 20 + ceil(N/8) for bits. DL/T 645: 20 (preamble, frame, DI) + 20 (the
 * reply with a preamble of 4) + N; CJ/T 188: 20 + 20 + N likewise. */
int plan_req_wire_chars(const struct plan_req *r);

/* Builds the plan for a profile. 0 and *ret (plan_free) or -EINVAL when a
 * point cannot fit any request. A DL/T 645 or CJ/T 188 profile gets one
 * request per data item its points name (req_di), in the order of first
 * use; opts do not apply. */
int plan_build(const struct cfg_profile *prof, const struct plan_opts *opts, struct plan **ret);
void plan_free(struct plan *p);

/* Options from a meter's workaround settings. */
struct plan_opts plan_opts_for_meter(const struct cfg_meter *m);

/* Seconds of bus time one read cycle of this plan takes on RTU at 'baud' with
 * 'bits_per_char' (1 start + data + parity + stop). */
double plan_rtu_seconds(const struct plan *p, int baud, int bits_per_char);

/* The share of RTU bus 'bus' of cfg that its meters' read cycles need per
 * second of schedule (wire time and turnarounds plus frame delays; 1 = the
 * line is full), as `parkgw check` prints it; 0 for a TCP bus. */
double plan_bus_load(const struct config *cfg, int bus);
