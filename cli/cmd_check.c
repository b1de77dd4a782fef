/*
 * cmd_check.c - `parkgw check`: validates the configuration (the loader does
 * the work and names FILE:LINE) and prints what the gateway would do: counts,
 * Modbus requests per cycle from the read plans, and per bus the estimated
 * load (RTU: wire time per second of schedule, in % of the line's capacity).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config/config.h"
#include "cli/cli.h"
#include "common/log.h"
#include "engine/meterhist.h"
#include "protocols/plan.h"
#include "storage/store.h"

/*
 * Meter ratios: a meter whose billing counter is scaled by PT/CT with
 * neither ratio set bills secondary-side energy (a 10 kV meter behind PT
 * 100 and CT 40 would bill 4000 times too little): a warning. Then the
 * ratio changes a reload would record in the database's meter history
 * (engine/meterhist.h), when the database exists.
 */
static void check_ratios(const struct config *cfg)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            if (meterhist_scaled(cfg, m) && m->pt_ratio == 1.0 && m->ct_ratio == 1.0)
                fprintf(stderr,
                        "%s:%d: warning: meter %s/%s: profile %s's billing counter is metered "
                        "through PT/CT (ratio) but the meter sets neither pt_ratio nor "
                        "ct_ratio: it would bill secondary-side energy\n",
                        cfg->path, m->line, cfg->enterprises[e].id, m->id,
                        cfg->profiles[m->profile].name);
        }

    struct store *st;
    char err[512];
    if (store_open(cfg->storage_path, true, &st, err, sizeof(err)) < 0)
        return; /* no database yet (or not readable): nothing recorded to compare with */
    struct meterhist_change *ch = NULL;
    size_t n = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (meterhist_sync(store_db(st), cfg, (int64_t)now.tv_sec * 1000, "check", true, &ch, &n) ==
            0 &&
        n > 0) {
        printf("\nratio changes a reload (or start) would record in the meter history, "
               "from that instant on:\n");
        for (size_t k = 0; k < n; k++)
            printf("  %s/%s: PT %g x CT %g (multiplier %g) -> PT %g x CT %g (multiplier %g)\n",
                   ch[k].ent->id, ch[k].m->id, ch[k].old_pt, ch[k].old_ct, ch[k].old_mult,
                   ch[k].pt, ch[k].ct, ch[k].mult);
    }
    free(ch);
    store_close(st);
}

/* 1 start bit + data bits + parity bit (if any) + stop bits. */
static int bits_per_char(const struct cfg_bus *b)
{
    return 1 + b->data_bits + (b->parity == 'N' ? 0 : 1) + b->stop_bits;
}

int cmd_check(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw check [-c FILE]\n");
            return 0;
        }
        return 1;
    }

    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;

    size_t n_meters = 0, n_points = 0, n_reqs = 0;
    size_t per_util[UTIL__COUNT] = {0};
    int rc = 0;
    printf("%s: ok\n", cfg->path);
    printf("gateway %s, time zone %s, store %s, broker %s\n", cfg->gateway_id, cfg->timezone,
           cfg->storage_path, cfg->mqtt_uri);
    if (cfg->http_listen)
        printf("http listener on %s (%s)\n", cfg->http_listen,
               cfg->http_password ? "basic auth" : "no password: loopback only");
    if (cfg->n_webhooks)
        printf("alerts to %zu webhook(s), at most one message per meter and target every %d s\n",
               cfg->n_webhooks, cfg->alerts_min_interval);
    printf("\n%-16s %-4s %7s %9s %9s %9s  %s\n", "bus", "type", "meters", "points", "req/cycle",
           "req/s", "load");
    for (size_t b = 0; b < cfg->n_buses; b++) {
        const struct cfg_bus *bus = &cfg->buses[b];
        size_t bm = 0, bp = 0, br = 0;
        double req_per_s = 0, busy_s_per_s = 0;
        for (size_t e = 0; e < cfg->n_enterprises; e++)
            for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
                const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
                if (m->bus != (int)b)
                    continue;
                const struct cfg_profile *prof = &cfg->profiles[m->profile];
                struct plan_opts po = plan_opts_for_meter(m);
                struct plan *plan;
                if (plan_build(prof, &po, &plan) < 0) {
                    fprintf(stderr, "%s:%d: meter %s/%s: profile %s cannot be planned\n",
                            prof->file ? prof->file : cfg->path, m->line,
                            cfg->enterprises[e].id, m->id, prof->name);
                    rc = 1;
                    continue;
                }
                bm++;
                bp += prof->n_points;
                br += plan->n_reqs;
                per_util[m->utility]++;
                req_per_s += (double)plan->n_reqs / m->interval;
                if (bus->type == BUS_RTU)
                    busy_s_per_s += (plan_rtu_seconds(plan, bus->baud, bits_per_char(bus)) +
                                     (double)plan->n_reqs * bus->frame_delay_ms / 1000.0) /
                                    m->interval;
                plan_free(plan);
            }
        char load[128];
        if (bus->type == BUS_RTU)
            snprintf(load, sizeof(load), "%.1f%% of %d baud%s", busy_s_per_s * 100.0, bus->baud,
                     busy_s_per_s > 1.0   ? "  OVER CAPACITY"
                     : busy_s_per_s > 0.8 ? "  OVERLOADED: lengthen intervals or split the line"
                                          : "");
        else
            snprintf(load, sizeof(load), "-");
        printf("%-16s %-4s %7zu %9zu %9zu %9.1f  %s\n", bus->name,
               bus->type == BUS_TCP                ? "tcp"
               : bus->protocol == PROTO_DLT645     ? "645"
               : bus->protocol == PROTO_CJT188     ? "188"
                                                   : "rtu",
               bm, bp, br, req_per_s, load);
        /* Above 100 % the schedule is impossible, not merely tight: every
         * cycle ends later than the next begins and polls are skipped. */
        if (bus->type == BUS_RTU && busy_s_per_s > 1.0)
            fprintf(stderr, "%s:%d: error: bus %s needs %.0f%% of its line's capacity: it cannot "
                            "keep its schedule (meters will be read late or skipped); lengthen "
                            "intervals, raise the baud rate or split the line\n",
                    cfg->path, bus->line, bus->name, busy_s_per_s * 100.0);
        n_meters += bm;
        n_points += bp;
        n_reqs += br;
    }
    printf("\n%zu enterprises, %zu meters (", cfg->n_enterprises, n_meters);
    const char *sep = "";
    for (int u = 0; u < UTIL__COUNT; u++)
        if (per_util[u]) {
            printf("%s%zu %s", sep, per_util[u], utility_name((enum utility)u));
            sep = ", ";
        }
    printf("), %zu buses, %zu profiles, %zu points\n", cfg->n_buses, cfg->n_profiles, n_points);
    printf("%zu requests per cycle (one request per point would be %zu)\n", n_reqs, n_points);
    check_ratios(cfg);
    config_free(cfg);
    return rc;
}
