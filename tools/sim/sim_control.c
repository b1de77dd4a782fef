/*
 * sim_control.c - parkgw-sim's control channel (docs/SIM.md): one command a
 * line on stdin or a FIFO (faults, supply, values, unplug/plug, quit),
 * answered "ok" or "error: ..." on stdout. Runs on the serving loop's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "tools/sim/sim_private.h"

static void reply_ok(void)
{
    fputs("ok\n", stdout);
    fflush(stdout);
}

static void reply_err(const char *fmt, const char *arg)
{
    fputs("error: ", stdout);
    fprintf(stdout, fmt, arg);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Parses "fault" arguments into (fault, arg, maxregs) of one meter. */
static int parse_fault(char **argv, int argc, struct sim_meter *proto)
{
    int64_t v;
    if (argc < 1)
        return -EINVAL;
    if (!strcmp(argv[0], "none") && argc == 1) {
        proto->fault = FAULT_NONE;
        proto->maxregs = 0;
    } else if (!strcmp(argv[0], "noreply") && argc == 1) {
        proto->fault = FAULT_NOREPLY;
    } else if (!strcmp(argv[0], "drop") && argc == 1) {
        proto->fault = FAULT_DROP;
    } else if (!strcmp(argv[0], "corrupt") && argc == 1) {
        proto->fault = FAULT_CORRUPT;
    } else if (!strcmp(argv[0], "wrongaddr") && argc == 1) {
        proto->fault = FAULT_WRONGADDR;
    } else if (!strcmp(argv[0], "garbage") && argc == 1) {
        proto->fault = FAULT_GARBAGE;
    } else if (!strcmp(argv[0], "exception") && argc == 2) {
        if (parse_int64(argv[1], &v) < 0 || v < 1 || v >= MODBUS_EXCEPTION_MAX)
            return -EINVAL;
        proto->fault = FAULT_EXCEPTION;
        proto->fault_arg = (int)v;
    } else if (!strcmp(argv[0], "delay") && argc == 2) {
        if (parse_int64(argv[1], &v) < 0 || v < 0 || v > 600000)
            return -EINVAL;
        proto->fault = FAULT_DELAY;
        proto->fault_arg = (int)v;
    } else if (!strcmp(argv[0], "maxregs") && argc == 2) {
        if (parse_int64(argv[1], &v) < 0 || v < 0 || v > 2000)
            return -EINVAL;
        proto->maxregs = (int)v;
    } else {
        return -EINVAL;
    }
    return 0;
}


/* `unplug BUS` / `plug BUS`: an RTU bus's USB adapter pulled out and put
 * back. Unplugging closes both ends of the pty and removes the link, so the
 * gateway's descriptor hangs up and reopening the path fails (ENOENT) like a
 * vanished /dev/ttyUSB0; plugging creates a new pty behind the same path. */
static void rtu_plug_command(struct sim *s, const char *bus, bool plug)
{
    struct rtu_port *r = NULL;
    for (size_t i = 0; i < s->n_rtus; i++)
        if (!strcmp(s->rtus[i].bus->name, bus))
            r = &s->rtus[i];
    if (!r) {
        reply_err("no served RTU bus '%s'", bus);
        return;
    }
    bool plugged = r->master_fd >= 0;
    if (plug && !plugged) {
        int rc = sim_rtu_open(r);
        if (rc < 0) {
            reply_err("cannot create the pty: %s", strerror(-rc));
            sim_rtu_close(r);
            return;
        }
        log_info("RTU bus %s plugged in: %s -> %s", bus, r->link, r->slave_path);
    } else if (!plug && plugged) {
        sim_rtu_close(r);
        log_info("RTU bus %s unplugged", bus);
    }
    reply_ok();
}

static void run_command(struct sim *s, char *line)
{
    char *argv[8];
    int argc = 0;
    for (char *tok = strtok(line, " \t\r"); tok && argc < (int)ARRAY_SIZE(argv);
         tok = strtok(NULL, " \t\r"))
        argv[argc++] = tok;
    if (argc == 0)
        return;
    if (!strcmp(argv[0], "quit")) {
        reply_ok();
        s->quit = true;
        return;
    }
    if (!strcmp(argv[0], "help")) {
        fputs("ok commands: fault ENT/METER none|noreply|exception CODE|delay MS|drop|"
              "maxregs N|corrupt|wrongaddr|garbage; supply ENT/METER off|on; offset ENT/METER VALUE; "
              "values ENT/METER; unplug BUS; plug BUS; quit (ENT/METER may be * or ENT/*)\n",
              stdout);
        fflush(stdout);
        return;
    }
    if ((!strcmp(argv[0], "unplug") || !strcmp(argv[0], "plug")) && argc == 2) {
        rtu_plug_command(s, argv[1], !strcmp(argv[0], "plug"));
        return;
    }
    if (argc < 2) {
        reply_err("unknown or incomplete command '%s' (try help)", argv[0]);
        return;
    }
    const char *target = argv[1];
    size_t matched = 0;
    for (size_t i = 0; i < s->n_meters; i++)
        matched += sim_meter_matches(&s->meters[i], target);
    if (!matched) {
        reply_err("no meter '%s' in the config", target);
        return;
    }
    if (!strcmp(argv[0], "fault")) {
        for (size_t i = 0; i < s->n_meters; i++) {
            struct sim_meter *sm = &s->meters[i];
            if (!sim_meter_matches(sm, target))
                continue;
            if (parse_fault(argv + 2, argc - 2, sm) < 0) {
                reply_err("bad fault '%s': none|noreply|exception 1-11|delay MS|drop|maxregs N|"
                          "corrupt|wrongaddr|garbage",
                          argc > 2 ? argv[2] : "");
                return;
            }
        }
        log_info("fault %s %s%s%s", target, argc > 2 ? argv[2] : "", argc > 3 ? " " : "",
                 argc > 3 ? argv[3] : "");
        reply_ok();
    } else if (!strcmp(argv[0], "supply") && argc == 3 &&
               (!strcmp(argv[2], "off") || !strcmp(argv[2], "on"))) {
        bool off = !strcmp(argv[2], "off");
        for (size_t i = 0; i < s->n_meters; i++)
            if (sim_meter_matches(&s->meters[i], target))
                sim_set_supply(s->seed, s->cfg, s->meters[i].m, &s->meters[i].st, off, sim_now_s());
        log_info("supply %s %s", target, argv[2]);
        reply_ok();
    } else if (!strcmp(argv[0], "offset") && argc == 3) {
        double v;
        if (parse_double(argv[2], &v) < 0 || !isfinite(v)) {
            reply_err("bad offset '%s'", argv[2]);
            return;
        }
        for (size_t i = 0; i < s->n_meters; i++)
            if (sim_meter_matches(&s->meters[i], target))
                s->meters[i].st.counter_offset = v;
        log_info("offset %s %s", target, argv[2]);
        reply_ok();
    } else if (!strcmp(argv[0], "values") && argc == 2) {
        struct sim_meter *sm = sim_find_meter(s, target);
        if (!sm) {
            reply_err("values needs one meter, not '%s'", target);
            return;
        }
        fputs("ok ", stdout);
        sim_print_values(s, sm, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    } else {
        reply_err("unknown or malformed command '%s' (try help)", argv[0]);
    }
}

void sim_control_readable(struct sim *s)
{
    char buf[1024];
    ssize_t n = read(s->control_fd, buf, sizeof(buf));
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            log_err("control channel: %s", strerror(errno));
            s->quit = true;
        }
        return;
    }
    if (n == 0) {
        /* stdin closed: whoever started us is gone, so we go too */
        log_info("control channel closed, stopping");
        s->quit = true;
        return;
    }
    for (ssize_t i = 0; i < n && !s->quit; i++) {
        if (buf[i] != '\n') {
            if (s->line_len + 1 < sizeof(s->line))
                s->line[s->line_len++] = buf[i];
            else
                s->line_overflow = true;
            continue;
        }
        s->line[s->line_len] = 0;
        if (s->line_overflow)
            reply_err("command longer than %s bytes ignored", "4095");
        else
            run_command(s, s->line);
        s->line_len = 0;
        s->line_overflow = false;
    }
}

int sim_control_open(struct sim *s, const char *path)
{
    if (!path)
        return 0;
    if (!strcmp(path, "-")) {
        s->control_fd = STDIN_FILENO;
        s->control_is_stdin = true;
        return 0;
    }
    if (mkfifo(path, 0600) == 0)
        s->control_fifo = xstrdup(path);
    else if (errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISFIFO(st.st_mode))
        return -ENOTSUP;
    /* O_RDWR: we hold a writer ourselves, so writers coming and going never
     * make us read EOF */
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    s->control_fd = fd;
    return 0;
}

/* ---- listeners ---- */
