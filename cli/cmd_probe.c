/*
 * cmd_probe.c - `parkgw probe ENTERPRISE/METER`: commissioning aid. Reads a
 * meter once with its read plan and prints the requests used, then every
 * point with its raw registers in hex, the decoded value and the unit its
 * name implies.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "cli/cli.h"
#include "cli/probe_tou.h"
#include "common/log.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/decode.h"
#include "protocols/plan.h"

/* By convention point names end in their unit (DESIGN.md). */
static const char *unit_of(const char *name)
{
    static const struct {
        const char *suffix, *unit;
    } units[] = {{"_kwh", "kWh"}, {"_kvarh", "kvarh"}, {"_kvar", "kvar"}, {"_kw", "kW"},
                 {"_kva", "kVA"}, {"_v", "V"},         {"_a", "A"},       {"_hz", "Hz"},
                 {"_m3h", "m3/h"}, {"_m3", "m3"},      {"_nm3h", "Nm3/h"}, {"_nm3", "Nm3"},
                 {"_kpa", "kPa"}, {"_c", "°C"},        {"_pct", "%"}};
    size_t n = strlen(name);
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        size_t k = strlen(units[i].suffix);
        if (n > k && strcmp(name + n - k, units[i].suffix) == 0)
            return units[i].unit;
    }
    return "";
}

/* The points of a DL/T 645 or CJ/T 188 meter: data item, format, the data
 * bytes as received (lowest first, 0x33 already taken off) and the value. */
static void print_items(const struct cfg_profile *prof, const struct plan *plan,
                        uint16_t *const *data, const struct cfg_meter *m)
{
    bool dlt = prof->protocol == PROTO_DLT645;
    printf("\n%-24s %-9s %-10s %-26s %s\n", "point", "di", dlt ? "format" : "field",
           "data (hex)", "value");
    for (size_t i = 0; i < prof->n_points; i++) {
        const struct cfg_point *pt = &prof->points[i];
        const uint16_t *bytes = data[plan->locs[i].req] + plan->locs[i].offset;
        char hex[64] = "", fmt[24];
        int off = 0;
        for (int k = 0; k < pt->data_len && off < (int)sizeof(hex) - 4; k++)
            off += snprintf(hex + off, sizeof(hex) - (size_t)off, "%s%02X", k ? " " : "",
                            bytes[k]);
        if (dlt)
            snprintf(fmt, sizeof(fmt), "%d.%d%s", pt->fmt.bytes * 2 - pt->fmt.decimals,
                     pt->fmt.decimals, pt->is_signed ? " +-" : "");
        else
            snprintf(fmt, sizeof(fmt), "%s", pt->data_offset ? "settlement" : "flow");
        printf("%-24s %0*X%*s %-10s %-26s ", pt->name, dlt ? 8 : 4, pt->di, dlt ? 1 : 5, "", fmt,
               hex);
        double v;
        if (decode_point(pt, m->pt_ratio, m->ct_ratio, bytes, &v) == 0)
            printf(pt->kind == KIND_COUNTER ? "%.12g %s%s\n" : "%.6g %s%s\n", v,
                   unit_of(pt->name), pt->billing ? "  (billing)" : "");
        else
            printf("invalid (not BCD, or not a volume)\n");
    }
}

/* What a failed Modbus request means and what to try, for commissioning:
 * a timeout with the bus's configured timeouts against the measured time,
 * exceptions 2 and 3 with the meter workarounds that avoid them. */
static void explain_failure(const struct cfg_bus *bc, const struct cfg_meter *m,
                            const struct plan_req *q, int r, int64_t took_ms)
{
    if (r == -ETIMEDOUT) {
        printf("  hint: no reply within the bus's timeout_ms = %d ms (measured %lld ms, which "
               "%s",
               bc->timeout_ms, (long long)took_ms,
               bc->type == BUS_TCP ? "includes connecting to the gateway when needed"
                                   : "includes sending the request at the line's baud rate and "
                                     "the line's settling");
        if (bc->type == BUS_RTU && bc->byte_timeout_ms > 0)
            printf("; byte_timeout_ms = %d ms between the reply's bytes", bc->byte_timeout_ms);
        else if (bc->type == BUS_RTU)
            printf("; byte_timeout_ms not set: libmodbus's default between the reply's bytes");
        printf(").\n  Check unit_id %d%s, then raise timeout_ms if the meter is slow to "
               "answer.\n",
               m->unit_id,
               bc->type == BUS_RTU ? ", the wiring (A/B swapped?), baud rate, parity and stop "
                                     "bits against the meter's menu"
                                   : " behind the gateway, and the gateway's serial settings");
    } else if (r == -(BUS_EXC_BASE + 2)) {
        printf("  hint: exception 2 (illegal data address): the meter has no register in "
               "%u..%u. The planner bridges gaps between points with a single read; if the "
               "meter refuses registers in a gap, set no_gap_fill = true on meter %s/%s "
               "(or one_request_per_point = true). Otherwise check the profile's addresses "
               "(0-based: a manual's 40001 or REG0001 is address 0).\n",
               q->address, (unsigned)(q->address + q->count - 1), m->enterprise->id, m->id);
    } else if (r == -(BUS_EXC_BASE + 3)) {
        unsigned half = q->count > 1 ? q->count / 2u : 1u;
        printf("  hint: exception 3 (illegal data value): the meter refuses %u registers in one "
               "request. Set max_registers_per_read = %u on meter %s/%s (or the limit its "
               "manual gives) and probe again.\n",
               q->count, half, m->enterprise->id, m->id);
    } else if (r == -EBADMSG) {
        printf("  hint: a reply that is not this request's answer: another device with unit id "
               "%d, a second master on the line, or noise (check the termination).\n",
               m->unit_id);
    }
}

int cmd_probe(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c, rc = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw probe [-c FILE] ENTERPRISE/METER\n");
            return 0;
        }
        return 1;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: parkgw probe [-c FILE] ENTERPRISE/METER\n");
        return 1;
    }
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    const struct cfg_meter *m = config_find_meter(cfg, argv[optind]);
    if (!m) {
        fprintf(stderr, "parkgw probe: no meter '%s' in %s (use ENTERPRISE/METER)\n",
                argv[optind], cfg->path);
        config_free(cfg);
        return 1;
    }
    const struct cfg_profile *prof = &cfg->profiles[m->profile];
    const struct cfg_bus *bc = &cfg->buses[m->bus];
    struct plan_opts po = plan_opts_for_meter(m);
    struct plan *plan = NULL;
    struct bus *bus = NULL;
    uint16_t **data = NULL;

    if (plan_build(prof, &po, &plan) < 0) {
        fprintf(stderr, "parkgw probe: profile %s cannot be planned\n", prof->name);
        rc = 1;
        goto out;
    }
    int r = bus_new(bc, &bus);
    if (r < 0) {
        fprintf(stderr, "parkgw probe: bus %s: %s\n", bc->name, strerror(-r));
        goto out;
    }
    if (bc->type == BUS_TCP)
        printf("meter %s/%s: %s, profile %s, bus %s (tcp %s:%d), unit %d\n", m->enterprise->id,
               m->id, utility_name(m->utility), prof->name, bc->name, bc->host, bc->port,
               m->unit_id);
    else if (bc->protocol == PROTO_MODBUS)
        printf("meter %s/%s: %s, profile %s, bus %s (rtu %s %d %d%c%d), unit %d\n",
               m->enterprise->id, m->id, utility_name(m->utility), prof->name, bc->name,
               bc->device, bc->baud, bc->data_bits, bc->parity, bc->stop_bits, m->unit_id);
    else
        printf("meter %s/%s: %s, profile %s, bus %s (%s %s %d %d%c%d), address %s\n",
               m->enterprise->id, m->id, utility_name(m->utility), prof->name, bc->name,
               bus_protocol_name(bc->protocol), bc->device, bc->baud, bc->data_bits, bc->parity,
               bc->stop_bits, m->address);

    data = xcalloc(plan->n_reqs, sizeof(uint16_t *));
    bool failed = false;
    for (size_t i = 0; i < plan->n_reqs; i++) {
        const struct plan_req *q = &plan->reqs[i];
        data[i] = xcalloc(q->count, sizeof(uint16_t));
        int64_t t0 = now_mono_ms();
        r = bus_read_meter(bus, m, q, data[i]);
        int64_t took = now_mono_ms() - t0;
        if (bc->protocol == PROTO_MODBUS) {
            printf("request %zu: fc %d address %u count %u: %s (%lld ms)\n", i + 1, q->fc,
                   q->address, q->count, r < 0 ? bus_strerror(r) : "ok", (long long)took);
            if (r < 0)
                explain_failure(bc, m, q, r, took);
        } else
            printf("request %zu: di %0*X, %u data bytes: %s (%lld ms)\n", i + 1,
                   bc->protocol == PROTO_DLT645 ? 8 : 4, q->di, q->count,
                   r < 0 ? bus_strerror(r) : "ok", (long long)(now_mono_ms() - t0));
        if (r < 0)
            failed = true;
    }
    if (failed) {
        fprintf(stderr, "parkgw probe: meter %s/%s did not answer every request\n",
                m->enterprise->id, m->id);
        goto out;
    }
    if (bc->protocol != PROTO_MODBUS) {
        print_items(prof, plan, data, m);
        rc = probe_tou_print(cfg, m, bus, now_real_ms()) < 0 ? 2 : 0;
        goto out;
    }
    printf("\n%-24s %-3s %-6s %-8s %-5s %-20s %s\n", "point", "fc", "addr", "type", "order",
           "raw (hex)", "value");
    for (size_t i = 0; i < prof->n_points; i++) {
        const struct cfg_point *pt = &prof->points[i];
        const uint16_t *regs = data[plan->locs[i].req] + plan->locs[i].offset;
        char hex[64] = "";
        int nregs = point_type_regs(pt->type);
        int off = 0;
        for (int k = 0; k < nregs; k++)
            off += snprintf(hex + off, sizeof(hex) - (size_t)off, "%s%04X", k ? " " : "",
                            regs[k]);
        /* An integer + fraction totaliser: the fraction's registers after a '+'. */
        if (pt->has_frac) {
            const uint16_t *fr = regs + (pt->frac_address - pt->address);
            off += snprintf(hex + off, sizeof(hex) - (size_t)off, " +");
            for (int k = 0; k < point_type_regs(pt->frac_type); k++)
                off += snprintf(hex + off, sizeof(hex) - (size_t)off, " %04X", fr[k]);
        }
        double v;
        printf("%-24s %-3d %-6d %-8s %-5s %-20s ", pt->name, pt->fc, pt->address,
               point_type_name(pt->type), nregs > 1 ? word_order_name(pt->order) : "", hex);
        /* Counters get their full resolution (a fraction part would vanish in 6 digits). */
        if (decode_point(pt, m->pt_ratio, m->ct_ratio, regs, &v) == 0)
            printf(pt->kind == KIND_COUNTER ? "%.12g %s%s\n" : "%.6g %s%s\n", v,
                   unit_of(pt->name), pt->billing ? "  (billing)" : "");
        else
            printf("invalid (NaN/Inf)\n");
    }
    rc = 0;
out:
    for (size_t i = 0; data && i < plan->n_reqs; i++)
        free(data[i]);
    free(data);
    bus_free(bus);
    plan_free(plan);
    config_free(cfg);
    return rc;
}
