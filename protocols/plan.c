/*
 * plan.c - the read planner: sorts a profile's points by (fc, address) and
 * sweeps them once, growing the current request while the next point is
 * adjacent, overlapping, or behind a gap cheaper to read than a new request's
 * fixed RTU overhead, and while the request stays within the size limit.
 * The bus (bus.c) executes the requests; the poller decodes through locs[].
 */
#include "protocols/plan.h"

#include <errno.h>
#include <stdlib.h>

#include "common/regtype.h"
#include "common/util.h"

#define PLAN_MAX_REGS 125
#define PLAN_MAX_BITS 2000

/*
 * Bus time a request costs beyond its characters: the meter's processing
 * time between the end of our request and the start of its reply. The two
 * 3.5-character silences are already in PLAN_RTU_OVERHEAD_CHARS; typical
 * utility meters answer within 5-20 ms, so 10 ms is a middle allowance
 * (the estimate is for "will this bus keep up", not for scheduling).
 */
#define PLAN_RTU_TURNAROUND_S 0.010

/* First register (fc 3/4) or bit (fc 1/2) a point reads and how many: a
 * point read with fc 1/2 is one bit whatever its declared type; an integer +
 * fraction totaliser spans both parts, so they come from one request and
 * belong to the same instant (a roll-over between two requests would make
 * 99 + 0.999 or 100 + 0.0 of 99.9995). */
static void point_span(const struct cfg_point *pt, int *ret_first, int *ret_width)
{
    if (pt->fc == 1 || pt->fc == 2) {
        *ret_first = pt->address;
        *ret_width = 1;
        return;
    }
    int first = pt->address, end = pt->address + point_type_regs(pt->type);
    if (pt->has_frac) {
        int fe = pt->frac_address + point_type_regs(pt->frac_type);
        if (pt->frac_address < first)
            first = pt->frac_address;
        if (fe > end)
            end = fe;
    }
    *ret_first = first;
    *ret_width = end - first;
}

static bool fc_is_bits(int fc)
{
    return fc == 1 || fc == 2;
}

bool plan_gap_worth_bridging(int fc, int gap)
{
    if (gap <= 0)
        return true;
    if (fc_is_bits(fc))
        return (gap + 7) / 8 < PLAN_RTU_OVERHEAD_CHARS;
    return 2 * gap < PLAN_RTU_OVERHEAD_CHARS;
}

/* A DL/T 645 or CJ/T 188 exchange beyond its data bytes: our request with
 * its 4 wake-up bytes (20 characters either way: 4 + 12 + 4-byte DI, 4 +
 * 13 + DI and SER), and a reply of the same frame with the preamble most
 * meters send. No silent intervals: these protocols frame by length. */
#define PLAN_CN_OVERHEAD_CHARS 40

int plan_req_wire_chars(const struct plan_req *r)
{
    if (r->fc == PLAN_FC_DLT645 || r->fc == PLAN_FC_CJT188)
        return PLAN_CN_OVERHEAD_CHARS + r->count;
    if (fc_is_bits(r->fc))
        return PLAN_RTU_OVERHEAD_CHARS + (r->count + 7) / 8;
    return PLAN_RTU_OVERHEAD_CHARS + 2 * r->count;
}

/* Sorting context: qsort has no user pointer, so sort indices paired with
 * the key they sort on. */
struct plan_key {
    int fc;
    int address;
    int width;
    size_t index;
};

static int key_cmp(const void *a, const void *b)
{
    const struct plan_key *x = a, *y = b;

    if (x->fc != y->fc)
        return x->fc < y->fc ? -1 : 1;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    /* Widest first at one address: the later, narrower points then lie
     * inside the request and share it. */
    if (x->width != y->width)
        return x->width > y->width ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* One request per data item, the points of an item sharing it. */
static int build_items(const struct cfg_profile *prof, struct plan **ret)
{
    size_t n = prof->n_points;
    struct plan *p = xcalloc(1, sizeof(*p));
    p->reqs = xcalloc(n ? n : 1, sizeof(*p->reqs));
    p->locs = xcalloc(n ? n : 1, sizeof(*p->locs));
    p->n_locs = n;
    uint8_t fc = prof->protocol == PROTO_DLT645 ? PLAN_FC_DLT645 : PLAN_FC_CJT188;

    for (size_t i = 0; i < n; i++) {
        const struct cfg_point *pt = &prof->points[i];
        int end = pt->data_offset + pt->data_len;
        if (pt->data_offset < 0 || pt->data_len < 1 || end > 255) {
            plan_free(p);
            return -EINVAL;
        }
        size_t r = 0;
        while (r < p->n_reqs && p->reqs[r].di != pt->req_di)
            r++;
        struct plan_req *q = &p->reqs[r];
        if (r == p->n_reqs) {
            p->n_reqs++;
            *q = (struct plan_req){.fc = fc, .di = pt->req_di, .exact = pt->exact_len,
                                   .meter_type = (uint8_t)prof->meter_type};
        }
        if (end > q->count)
            q->count = (uint16_t)end;
        q->exact = q->exact && pt->exact_len;
        p->locs[i].req = (uint16_t)r;
        p->locs[i].offset = (uint16_t)pt->data_offset;
    }
    for (size_t r = 0; r < p->n_reqs; r++)
        p->total_regs += p->reqs[r].count;
    *ret = p;
    return 0;
}

int plan_build(const struct cfg_profile *prof, const struct plan_opts *opts, struct plan **ret)
{
    if (prof->protocol != PROTO_MODBUS)
        return build_items(prof, ret);

    int max_regs = opts->max_registers;
    if (max_regs <= 0 || max_regs > PLAN_MAX_REGS)
        max_regs = PLAN_MAX_REGS;
    int max_bits = max_regs * 16 < PLAN_MAX_BITS ? max_regs * 16 : PLAN_MAX_BITS;

    size_t n = prof->n_points;
    struct plan_key *keys = xcalloc(n ? n : 1, sizeof(*keys));
    struct plan *p = xcalloc(1, sizeof(*p));
    /* At most one request per point. */
    p->reqs = xcalloc(n ? n : 1, sizeof(*p->reqs));
    p->locs = xcalloc(n ? n : 1, sizeof(*p->locs));
    p->n_locs = n;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const struct cfg_point *pt = &prof->points[i];
        int first, width;
        point_span(pt, &first, &width);
        keys[i] = (struct plan_key){ pt->fc, first, width, i };
        int limit = fc_is_bits(pt->fc) ? max_bits : max_regs;
        if (pt->fc < 1 || pt->fc > 4 || first < 0 || width > limit || first + width > 65536) {
            rc = -EINVAL;
            goto out_free_plan;
        }
    }
    qsort(keys, n, sizeof(*keys), key_cmp);

    struct plan_req *cur = NULL;
    int cur_end = 0; /* one past the last register/bit of *cur */
    for (size_t k = 0; k < n; k++) {
        const struct plan_key *key = &keys[k];
        int end = key->address + key->width;
        bool join = false;

        if (cur && cur->fc == key->fc) {
            int limit = fc_is_bits(key->fc) ? max_bits : max_regs;
            int new_end = end > cur_end ? end : cur_end;
            int gap = key->address - cur_end;
            bool fits = new_end - cur->address <= limit;

            if (opts->one_request_per_point)
                join = end <= cur_end; /* wholly inside: it costs nothing */
            else if (opts->no_gap_fill)
                join = fits && gap <= 0;
            else
                join = fits && plan_gap_worth_bridging(key->fc, gap);
        }
        if (!join) {
            cur = &p->reqs[p->n_reqs++];
            cur->fc = (uint8_t)key->fc;
            cur->address = (uint16_t)key->address;
            cur_end = key->address;
        }
        if (end > cur_end)
            cur_end = end;
        cur->count = (uint16_t)(cur_end - cur->address);
        p->locs[key->index].req = (uint16_t)(p->n_reqs - 1);
        /* The point's own address, not its span's start: the decoder finds a
         * fraction part relative to it. */
        p->locs[key->index].offset =
            (uint16_t)(prof->points[key->index].address - cur->address);
    }

    for (size_t r = 0; r < p->n_reqs; r++)
        p->total_regs += p->reqs[r].count;
    free(keys);
    *ret = p;
    return 0;

out_free_plan:
    plan_free(p);
    free(keys);
    return rc;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    free(p->reqs);
    free(p->locs);
    free(p);
}

struct plan_opts plan_opts_for_meter(const struct cfg_meter *m)
{
    struct plan_opts o = {
        .max_registers = m->max_registers_per_read,
        .no_gap_fill = m->no_gap_fill,
        .one_request_per_point = m->one_request_per_point,
    };

    if (o.max_registers <= 0 || o.max_registers > PLAN_MAX_REGS)
        o.max_registers = PLAN_MAX_REGS;
    return o;
}

double plan_rtu_seconds(const struct plan *p, int baud, int bits_per_char)
{
    if (baud <= 0)
        return 0;
    long chars = 0;
    for (size_t r = 0; r < p->n_reqs; r++)
        chars += plan_req_wire_chars(&p->reqs[r]);
    return (double)chars * bits_per_char / baud + (double)p->n_reqs * PLAN_RTU_TURNAROUND_S;
}

double plan_bus_load(const struct config *cfg, int bus)
{
    const struct cfg_bus *b = &cfg->buses[bus];
    if (b->type != BUS_RTU)
        return 0;
    int bits = 1 + b->data_bits + (b->parity == 'N' ? 0 : 1) + b->stop_bits;
    double busy = 0;
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            struct plan_opts po = plan_opts_for_meter(m);
            struct plan *plan;
            if (m->bus != bus || plan_build(&cfg->profiles[m->profile], &po, &plan) < 0)
                continue;
            busy += (plan_rtu_seconds(plan, b->baud, bits) +
                     (double)plan->n_reqs * b->frame_delay_ms / 1000.0) /
                    m->interval;
            plan_free(plan);
        }
    return busy;
}
