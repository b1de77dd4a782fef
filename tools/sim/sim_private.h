/*
 * sim_private.h - parkgw-sim's state shared by its serving loop (sim_main.c)
 * and its control channel (sim_control.c); not for other programs.
 */
#pragma once
#include <modbus.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "tools/sim/sim_model.h"

#define MAX_CLIENTS 256
#define MAX_PENDING 1024
#define MAX_LISTENERS 64
#define MAX_RTU_PORTS 64
/* Bytes separated by more than this are separate frames (RTU's 3.5-character
 * silence, generously: a pty delivers a frame in one piece). */
#define RTU_FRAME_GAP_MS 50
#define CONTROL_LINE_MAX 4096

enum fault { FAULT_NONE, FAULT_NOREPLY, FAULT_EXCEPTION, FAULT_DELAY, FAULT_DROP, FAULT_CORRUPT,
             FAULT_WRONGADDR, FAULT_GARBAGE };

struct sim_meter {
    const struct cfg_meter *m;
    char *path;                 /* "ENTERPRISE/METER" */
    struct sim_meter_state st;
    modbus_mapping_t *map;      /* NULL for meters on RTU buses (not served) */
    size_t nregs, nbits;
    enum fault fault;
    int fault_arg;              /* exception code or delay ms */
    int maxregs;                /* longest read answered; 0 = no limit */
};

struct listener {
    char *host;
    int port;
    int fd;
    modbus_t *ctx;              /* request parser/reply builder for this listener */
    struct sim_meter *by_unit[256];
    size_t n_meters;
};

struct client {
    int fd;                     /* -1 = free slot */
    uint64_t id;
    struct listener *l;
};

/* An RTU bus served on a pseudo-terminal: the gateway opens the symlink
 * 'link' (the bus's device path) and talks to the pty as to an RS-485 line. */
struct rtu_port {
    const struct cfg_bus *bus;
    char *link;                 /* symlink we created at bus->device */
    char *slave_path;           /* /dev/pts/N */
    int master_fd;
    int slave_fd;               /* held open so the master never reads EIO */
    modbus_t *ctx;              /* RTU request parser/reply builder */
    struct sim_meter *by_unit[256];
    size_t n_meters;
    struct sim_meter **cn;      /* DL/T 645 / CJ/T 188 meters, by address */
    size_t n_cn;
    uint8_t buf[MODBUS_RTU_MAX_ADU_LENGTH];
    size_t len;
    int64_t last_rx_ms;
};

struct pending {
    uint64_t client_id;         /* TCP client, or 0 for an RTU port */
    struct rtu_port *rtu;
    int64_t due_ms;             /* monotonic */
    struct sim_meter *sm;
    int len;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
};

struct sim {
    struct config *cfg;
    uint64_t seed;
    struct sim_meter *meters;
    size_t n_meters;
    struct listener *ls;
    size_t n_ls;
    struct rtu_port *rtus;
    size_t n_rtus;
    struct client clients[MAX_CLIENTS];
    uint64_t next_client_id;
    struct pending *pending;
    size_t n_pending;
    int control_fd;             /* -1 = none */
    bool control_is_stdin;
    char *control_fifo;         /* FIFO we created, removed at exit */
    char line[CONTROL_LINE_MAX];
    size_t line_len;
    bool line_overflow;
    bool quit;
};

/* Seconds since the epoch on the simulator's clock (faketime moves it too). */
int64_t sim_now_s(void);
/* The meter "ENTERPRISE/METER", or NULL. */
struct sim_meter *sim_find_meter(struct sim *s, const char *path);
/* True when pattern selects sm: "ENT/METER", "ENT/" followed by a star, or a
 * star alone. */
bool sim_meter_matches(const struct sim_meter *sm, const char *pattern);
/* Prints {"meter":...,"values":{...}}: what the gateway would decode now. */
void sim_print_values(struct sim *s, struct sim_meter *sm, FILE *out);
/* Opens an RTU port's pty and its symlink; 0 or negative errno. */
int sim_rtu_open(struct rtu_port *r);
/* Closes an RTU port's pty and removes its symlink (unplugged). */
void sim_rtu_close(struct rtu_port *r);

/* The control channel (sim_control.c, docs/SIM.md): opens path ("-" for
 * stdin, else a FIFO made if absent); 0 or negative errno. */
int sim_control_open(struct sim *s, const char *path);
/* Reads what the control channel has and runs each complete line. */
void sim_control_readable(struct sim *s);
