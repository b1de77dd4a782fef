/*
 * bench_plan.c - what read planning saves: for each profile of a config
 * (default config/demo.cfg; a built-in generic electricity profile when the
 * config cannot be loaded) and for each bus, Modbus requests per poll cycle
 * merged vs one request per point, and the estimated RTU bus time per cycle.
 * Prints figures only: bench_plan [CONFIG] [BAUD]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "common/util.h"
#include "protocols/plan.h"

/* 8E1: start + 8 data + parity + stop. */
#define BITS_PER_CHAR 11

struct figures {
    size_t reqs, reqs_single;
    uint32_t regs, regs_single;
    double secs, secs_single;
};

static int plan_figures(const struct cfg_profile *prof, struct plan_opts opts, int baud,
                        struct figures *ret)
{
    struct plan *merged = NULL, *single = NULL;
    int rc = plan_build(prof, &opts, &merged);
    if (rc < 0)
        return rc;
    opts.one_request_per_point = true;
    rc = plan_build(prof, &opts, &single);
    if (rc < 0) {
        plan_free(merged);
        return rc;
    }
    *ret = (struct figures){
        .reqs = merged->n_reqs,
        .reqs_single = single->n_reqs,
        .regs = merged->total_regs,
        .regs_single = single->total_regs,
        .secs = plan_rtu_seconds(merged, baud, BITS_PER_CHAR),
        .secs_single = plan_rtu_seconds(single, baud, BITS_PER_CHAR),
    };
    plan_free(merged);
    plan_free(single);
    return 0;
}

static void print_row(const char *name, size_t points, const struct figures *f)
{
    printf("%-26s %6zu %8zu %8zu %7u %7u %9.3f %9.3f\n", name, points, f->reqs, f->reqs_single,
           f->regs, f->regs_single, f->secs, f->secs_single);
}

static void print_header(const char *first)
{
    printf("%-26s %6s %8s %8s %7s %7s %9s %9s\n", first, "points", "req", "req/pt", "regs",
           "regs/pt", "rtu_s", "rtu_s/pt");
}

/* The generic electricity meter's map (float32 at 0-4, 10-20, 40-46). */
static struct cfg_profile *builtin_profile(void)
{
    static const int addrs[] = { 0, 2, 4, 10, 12, 14, 16, 18, 20, 40, 42, 44, 46 };
    static struct cfg_point pts[ARRAY_SIZE(addrs)];
    static struct cfg_profile prof = { .name = "builtin-electricity", .points = pts,
                                       .n_points = ARRAY_SIZE(addrs) };

    for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
        pts[i] = (struct cfg_point){ .name = "p", .fc = 3, .address = addrs[i],
                                     .type = PT_FLOAT32, .scale = 1 };
    return &prof;
}

int main(int argc, char **argv)
{
    const char *src = getenv("PARKGW_SOURCE_DIR");
    char *path = argc > 1 ? xstrdup(argv[1]) : xasprintf("%s/config/demo.cfg", src ? src : ".");
    int baud = 9600;
    if (argc > 2) {
        int64_t v;
        if (parse_int64(argv[2], &v) < 0 || v <= 0 || v > 4000000) {
            fprintf(stderr, "bench_plan: bad baud rate '%s'\n", argv[2]);
            free(path);
            return 1;
        }
        baud = (int)v;
    }
    const struct plan_opts defaults = { .max_registers = 125 };
    struct figures f;

    printf("RTU estimate at %d baud, %d bits/char, per poll cycle; '/pt' = one request per point\n",
           baud, BITS_PER_CHAR);

    struct config *cfg = NULL;
    char err[512] = "";
    int rc = config_load(path, &cfg, err, sizeof(err));
    if (rc < 0) {
        printf("config %s not loaded (%s); using the built-in profile\n\n", path,
               err[0] ? err : "error");
        print_header("profile");
        struct cfg_profile *prof = builtin_profile();
        if (plan_figures(prof, defaults, baud, &f) == 0)
            print_row(prof->name, prof->n_points, &f);
        free(path);
        return 0;
    }

    printf("config %s\n\n", path);
    print_header("profile");
    for (size_t i = 0; i < cfg->n_profiles; i++) {
        const struct cfg_profile *prof = &cfg->profiles[i];
        if (plan_figures(prof, defaults, baud, &f) == 0)
            print_row(prof->name, prof->n_points, &f);
        else
            printf("%-26s cannot be planned\n", prof->name);
    }

    /* Per bus: every meter's plan with its own workarounds, as if the bus
     * were one RS-485 line at 'baud'. */
    printf("\n");
    print_header("bus (meters)");
    struct figures *per_bus = xcalloc(cfg->n_buses ? cfg->n_buses : 1, sizeof(*per_bus));
    size_t *points = xcalloc(cfg->n_buses ? cfg->n_buses : 1, sizeof(*points));
    size_t *meters = xcalloc(cfg->n_buses ? cfg->n_buses : 1, sizeof(*meters));
    for (size_t e = 0; e < cfg->n_enterprises; e++) {
        for (size_t k = 0; k < cfg->enterprises[e].n_meters; k++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[k];
            const struct cfg_profile *prof = &cfg->profiles[m->profile];
            if (m->bus < 0 || (size_t)m->bus >= cfg->n_buses ||
                plan_figures(prof, plan_opts_for_meter(m), baud, &f) < 0)
                continue;
            struct figures *t = &per_bus[m->bus];
            t->reqs += f.reqs;
            t->reqs_single += f.reqs_single;
            t->regs += f.regs;
            t->regs_single += f.regs_single;
            t->secs += f.secs;
            t->secs_single += f.secs_single;
            points[m->bus] += prof->n_points;
            meters[m->bus]++;
        }
    }
    struct figures total = { 0 };
    size_t total_points = 0;
    for (size_t i = 0; i < cfg->n_buses; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s (%zu)", cfg->buses[i].name, meters[i]);
        print_row(name, points[i], &per_bus[i]);
        total.reqs += per_bus[i].reqs;
        total.reqs_single += per_bus[i].reqs_single;
        total.regs += per_bus[i].regs;
        total.regs_single += per_bus[i].regs_single;
        total.secs += per_bus[i].secs;
        total.secs_single += per_bus[i].secs_single;
        total_points += points[i];
    }
    print_row("all buses", total_points, &total);

    free(per_bus);
    free(points);
    free(meters);
    config_free(cfg);
    free(path);
    return 0;
}
