/*
 * fuzz_plan_decode.c - libFuzzer target for the read planner and the
 * register decoder: a random profile (up to 64 points of any fc, address,
 * register type and word order; bool exactly on fc 1/2, as config_load
 * enforces) and random meter workarounds go through plan_build;
 * then every point is decoded from random register contents at the place
 * the plan says. Invariants: no request exceeds the limit (125 registers or
 * the meter's max, bits scaled to at most 2000), every point lies inside
 * its request with the same function code, and decoding never crashes and
 * yields a finite value or -ERANGE.
 */
#include <errno.h>
#include <math.h>

#include "config/config.h"
#include "protocols/decode.h"
#include "protocols/plan.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_POINTS 64

/* Registers (fc 3/4) or bits (fc 1/2) of a point, as the planner counts them. */
static int width(const struct cfg_point *pt)
{
    return pt->fc == 1 || pt->fc == 2 ? 1 : point_type_regs(pt->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct cfg_point pts[MAX_POINTS];
    struct cfg_profile prof = {.name = "fuzz", .points = pts};
    struct plan_opts opts;
    struct plan *plan = NULL;

    opts.max_registers = fz_u8(&in) % 130; /* 0 and > 125 mean "default" */
    uint8_t flags = fz_u8(&in);
    opts.no_gap_fill = flags & 1;
    opts.one_request_per_point = flags & 2;
    prof.n_points = 1 + fz_u8(&in) % MAX_POINTS;
    for (size_t i = 0; i < prof.n_points; i++) {
        struct cfg_point *pt = &pts[i];
        uint8_t k = fz_u8(&in);
        memset(pt, 0, sizeof(*pt));
        pt->name = "p";
        pt->fc = 1 + (k & 3);
        /* As config_load enforces: bool exactly for the bit function codes. */
        pt->type = pt->fc <= 2 ? PT_BOOL : (enum point_type)((k >> 2) % PT_BOOL);
        pt->order = (enum word_order)(k >> 6);
        pt->address = fz_u16(&in);
        pt->scale = (flags & 4) ? (double)(int8_t)fz_u8(&in) / 4.0 : 1.0;
        pt->offset = (flags & 8) ? (double)(int16_t)fz_u16(&in) : 0.0;
        pt->ratio = (enum point_ratio)((k >> 4) & 3);
    }
    int max = opts.max_registers >= 1 && opts.max_registers <= 125 ? opts.max_registers : 125;
    int max_bits = max * 16 < 2000 ? max * 16 : 2000;

    if (plan_build(&prof, &opts, &plan) < 0) {
        /* Refused only when some point cannot fit a request. */
        bool unfit = false;
        for (size_t i = 0; i < prof.n_points; i++)
            if (pts[i].address + width(&pts[i]) > 65536 ||
                width(&pts[i]) > (pts[i].fc <= 2 ? max_bits : max))
                unfit = true;
        if (!unfit)
            abort();
        return 0;
    }
    if (plan->n_locs != prof.n_points || plan->n_reqs == 0 || plan->n_reqs > prof.n_points)
        abort();
    size_t total = 0;
    uint32_t regs_sum = 0;
    for (size_t r = 0; r < plan->n_reqs; r++) {
        const struct plan_req *q = &plan->reqs[r];
        int limit = q->fc <= 2 ? max_bits : max;
        if (q->fc < 1 || q->fc > 4 || q->count == 0 || q->count > limit ||
            (uint32_t)q->address + q->count > 65536)
            abort();
        total += q->count;
        regs_sum += q->count;
    }
    if (regs_sum != plan->total_regs)
        abort();
    /* Register contents of the whole cycle, random from the rest of the input. */
    uint16_t *regs = calloc(total + 4, sizeof(uint16_t));
    size_t *base = calloc(plan->n_reqs, sizeof(size_t));
    if (!regs || !base)
        abort();
    for (size_t r = 0, off = 0; r < plan->n_reqs; r++) {
        base[r] = off;
        for (size_t j = 0; j < plan->reqs[r].count; j++)
            regs[off + j] = plan->reqs[r].fc <= 2 ? fz_u8(&in) & 1 : fz_u16(&in);
        off += plan->reqs[r].count;
    }
    double pt_ratio = 1.0 + fz_u8(&in), ct_ratio = 1.0 + fz_u8(&in);
    for (size_t i = 0; i < prof.n_points; i++) {
        const struct plan_loc *loc = &plan->locs[i];
        if (loc->req >= plan->n_reqs)
            abort();
        const struct plan_req *q = &plan->reqs[loc->req];
        if (q->fc != pts[i].fc || q->address + loc->offset != pts[i].address ||
            loc->offset + width(&pts[i]) > q->count)
            abort();
        double v = 0;
        int rc = decode_point(&pts[i], pt_ratio, ct_ratio, regs + base[loc->req] + loc->offset, &v);
        if (rc == 0 ? !isfinite(v) : rc != -ERANGE)
            abort();
        /* Raw decoding is total: any register pattern gives some double. */
        (void)decode_raw(pts[i].type, pts[i].order, regs + base[loc->req] + loc->offset);
    }
    free(regs);
    free(base);
    plan_free(plan);
    return 0;
}
