/*
 * cmd_scan.c - `parkgw scan BUS`: commissioning aid. On a Modbus bus (TCP
 * gateway or RS-485 line) it asks every unit id of a range for one holding
 * register and prints one line per device that answers (a reply or an
 * exception: both prove a device is there), beginning with its unit id,
 * with the configured meter at that id or a profile guess; silent ids are
 * not listed. On a DL/T 645-2007 line it sends the broadcast read-address
 * (AAAAAAAAAAAA), which the only meter on the line answers with its
 * address: the way to learn the number of a meter whose label is
 * unreadable, one meter at a time on the line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/bcd.h"
#include "config/config.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/plan.h"

/* The configured meter on bus index b with this printed address, or NULL. */
static const struct cfg_meter *meter_at(const struct config *cfg, int b, const char *address)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            if (m->bus == b && m->address && strcmp(m->address, address) == 0)
                return m;
        }
    return NULL;
}

/* The configured Modbus meter with this unit id on bus index b, or NULL. */
static const struct cfg_meter *meter_with_unit(const struct config *cfg, int b, int unit)
{
    for (size_t e = 0; e < cfg->n_enterprises; e++)
        for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
            const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
            if (m->bus == b && !m->address && m->unit_id == unit)
                return m;
        }
    return NULL;
}

/* "A-B" or "A" into [*lo, *hi] within [min, max]; false when malformed. */
static bool parse_units(const char *s, int min, int max, int *lo, int *hi)
{
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s)
        return false;
    if (*end == '-') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t)
            return false;
    }
    if (*end || a < min || b > max || a > b)
        return false;
    *lo = (int)a;
    *hi = (int)b;
    return true;
}

/* Exceptions 10 and 11 come from a TCP gateway whose serial side got no
 * reply: the unit id behind it is silent. */
static bool device_answered(int r)
{
    return r == 0 || (r <= -BUS_EXC_BASE && r != -(BUS_EXC_BASE + 10) &&
                      r != -(BUS_EXC_BASE + 11));
}

/* Profiles of the config whose billing counter reads without error at
 * this unit id, into buf ("generic-water, tuf-2000m"); the guess for a
 * device no meter entry names. */
static void guess_profiles(const struct config *cfg, struct bus *bus, int unit, char *buf,
                           size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < cfg->n_profiles; k++) {
        const struct cfg_profile *p = &cfg->profiles[k];
        int bp = profile_billing_point(p);
        if (p->protocol != PROTO_MODBUS || bp < 0)
            continue;
        const struct cfg_point *pt = &p->points[bp];
        struct plan_req q = {.fc = (uint8_t)pt->fc, .address = (uint16_t)pt->address,
                             .count = (uint16_t)point_type_regs(pt->type)};
        uint16_t regs[8];
        if (q.count > 8 || bus_read(bus, unit, &q, regs) != 0)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", p->name);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

/* Modbus: one line per unit id in [lo, hi] that answers. 0 when the scan
 * ran (whether or not anything answered), 2 when the bus is unreachable. */
static int scan_modbus(const struct config *cfg, int b, struct bus *bus, int lo, int hi)
{
    const struct cfg_bus *bc = &cfg->buses[b];
    int found = 0;
    for (int u = lo; u <= hi; u++) {
        struct plan_req q = {.fc = 3, .address = 0, .count = 1};
        uint16_t reg[1];
        int64_t t0 = now_mono_ms();
        int r = bus_read(bus, u, &q, reg);
        int64_t ms = now_mono_ms() - t0;
        if (!device_answered(r)) {
            /* A silent id times out (or the gateway says so); a link that
             * is down makes every other id pointless. */
            if (r != -ETIMEDOUT && r != -EBADMSG && r > -BUS_EXC_BASE) {
                fprintf(stderr, "parkgw scan: bus %s: %s; scan stopped at unit %d\n", bc->name,
                        bus_strerror(r), u);
                return 2;
            }
            continue;
        }
        found++;
        printf("%d answers in %lld ms (%s)", u, (long long)ms,
               r == 0 ? "holding register 0 read" : bus_strerror(r));
        const struct cfg_meter *m = meter_with_unit(cfg, b, u);
        if (m) {
            printf(": meter %s/%s, profile %s\n", m->enterprise->id, m->id,
                   cfg->profiles[m->profile].name);
        } else {
            char guess[256];
            guess_profiles(cfg, bus, u, guess, sizeof(guess));
            printf(": no meter of the configuration; profile guess: %s\n",
                   guess[0] ? guess : "none (no profile's billing register reads)");
        }
        fflush(stdout);
    }
    fprintf(stderr, "parkgw scan: bus %s: %d of %d unit ids answered (%d..%d, %d ms timeout)\n",
            bc->name, found, hi - lo + 1, lo, hi, bc->timeout_ms);
    return 0;
}

int cmd_scan(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
                                         {"units", required_argument, NULL, 'u'},
                                         {NULL, 0, NULL, 0}};
    const char *units = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw scan [-c FILE] BUS [--units A-B]\n"
                   "Modbus: lists the unit ids (default 1-247) that answer, one a line.\n"
                   "dlt645-2007: reads the address of the only meter on the line "
                   "(broadcast read-address).\n");
            return 0;
        }
        if (c == 'u') {
            units = optarg;
            continue;
        }
        return 1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: parkgw scan [-c FILE] BUS [--units A-B]\n");
        return 1;
    }
    const char *name = argv[optind];
    struct config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    int rc = 1, b = -1;
    for (size_t i = 0; i < cfg->n_buses; i++)
        if (strcmp(cfg->buses[i].name, name) == 0)
            b = (int)i;
    if (b < 0) {
        fprintf(stderr, "parkgw scan: no bus '%s' in %s\n", name, cfg->path);
        goto out_free_config;
    }
    const struct cfg_bus *bc = &cfg->buses[b];
    if (bc->protocol == PROTO_MODBUS) {
        int min = bc->type == BUS_TCP ? 0 : 1, max = bc->type == BUS_TCP ? 255 : 247;
        int lo = 1, hi = 247;
        if (units && !parse_units(units, min, max, &lo, &hi)) {
            fprintf(stderr, "parkgw scan: --units '%s': give A-B (or A) within %d..%d\n", units,
                    min, max);
            goto out_free_config;
        }
        struct bus *mb = NULL;
        rc = 2;
        int r = bus_new(bc, &mb);
        if (r < 0) {
            fprintf(stderr, "parkgw scan: bus %s: %s\n", name, strerror(-r));
            goto out_free_config;
        }
        r = bus_connect(mb);
        if (r < 0)
            fprintf(stderr, "parkgw scan: bus %s: %s\n", name, bus_strerror(r));
        else
            rc = scan_modbus(cfg, b, mb, lo, hi);
        bus_free(mb);
        goto out_free_config;
    }
    if (units) {
        fprintf(stderr, "parkgw scan: --units is for Modbus buses\n");
        goto out_free_config;
    }
    if (bc->protocol != PROTO_DLT645) {
        fprintf(stderr,
                "parkgw scan: bus '%s' speaks %s; scan reads DL/T 645 addresses (protocol = "
                "\"dlt645-2007\")\n",
                name, bc->type == BUS_TCP ? "modbus (tcp)" : bus_protocol_name(bc->protocol));
        goto out_free_config;
    }
    struct bus *bus = NULL;
    rc = 2;
    int r = bus_new(bc, &bus);
    if (r < 0) {
        fprintf(stderr, "parkgw scan: bus %s: %s\n", name, strerror(-r));
        goto out_free_config;
    }
    uint8_t addr[BCD_MAX_ADDR];
    r = bus_read_address(bus, addr);
    if (r == 0) {
        char text[2 * BCD_MAX_ADDR + 1];
        bcd_addr_format(addr, 6, text);
        const struct cfg_meter *m = meter_at(cfg, b, text);
        printf("bus %s: address %s", name, text);
        if (m)
            printf(" (meter %s/%s)\n", m->enterprise->id, m->id);
        else
            printf(" (no meter of the configuration has it)\n");
        rc = 0;
    } else if (r == -ETIMEDOUT) {
        fprintf(stderr,
                "parkgw scan: bus %s: no meter answered the broadcast (none connected, "
                "or another baud rate or parity)\n",
                name);
    } else if (r == -EBADMSG) {
        fprintf(stderr,
                "parkgw scan: bus %s: a garbled reply (several meters answering at once? "
                "the broadcast finds the address of a single meter on the line)\n",
                name);
    } else {
        fprintf(stderr, "parkgw scan: bus %s: %s\n", name, bus_strerror(r));
    }
    bus_free(bus);
out_free_config:
    config_free(cfg);
    return rc;
}
