/*
 * cmd_scan.c - `parkgw scan BUS`: commissioning aid for a DL/T 645-2007
 * line. Sends the broadcast read-address (AAAAAAAAAAAA), which the only
 * meter on the line answers with its address, and prints it with the
 * configured meter that has it, if any: the way to learn the number of a
 * meter whose label is unreadable, one meter at a time on the line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/bcd.h"
#include "config/config.h"
#include "protocols/bus.h"

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

int cmd_scan(int argc, char **argv, const char *cfg_path)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("usage: parkgw scan [-c FILE] BUS\n"
                   "Reads the address of the only meter on a dlt645-2007 bus (broadcast "
                   "read-address).\n");
            return 0;
        }
        return 1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: parkgw scan [-c FILE] BUS\n");
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
