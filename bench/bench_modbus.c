/*
 * bench_modbus.c - how close parkgw gets to what a Modbus line can carry.
 * Part 1 (wire-time computation) takes a park-sized config (default
 * config/demo.cfg): requests per poll cycle with read planning vs one request
 * per point, and the RTU bus time each bus would need at 9600 baud 8E1.
 * Part 2 (emulated line) runs the real bus code (libmodbus RTU, flush, our
 * checks) over a pseudo-terminal whose far end answers only after the wire
 * time of request + response + the two 3.5-character silences at the
 * emulated baud rate, and reports the achieved reads/s as a fraction of the
 * physical limit (the meter's own turnaround taken as zero, so the gap is
 * the gateway's: pty, libmodbus, our checks). Prints figures only: bench_modbus [CONFIG]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/plan.h"

#define BITS_PER_CHAR 11 /* 8E1: start + 8 data + parity + stop */

/* ---- part 1: the config's plans ---- */

static void part1(const struct config *cfg)
{
    size_t pts = 0, reqs = 0, reqs_single = 0, meters = 0;
    printf("part 1: %s, read plans, RTU time at 9600 baud 8E1 (20 + 2N characters per "
           "request + 10 ms turnaround)\n",
           cfg->path);
    printf("%-16s %6s %7s %9s %9s %11s %11s %9s\n", "bus", "meters", "points", "req/cyc",
           "req/pt", "rtu_s/cyc", "rtu_s/pt", "load@iv");
    for (size_t b = 0; b < cfg->n_buses; b++) {
        size_t bm = 0, bp = 0, br = 0, bs = 0;
        double secs = 0, secs_single = 0, busy = 0;
        for (size_t e = 0; e < cfg->n_enterprises; e++)
            for (size_t i = 0; i < cfg->enterprises[e].n_meters; i++) {
                const struct cfg_meter *m = &cfg->enterprises[e].meters[i];
                if (m->bus != (int)b)
                    continue;
                const struct cfg_profile *prof = &cfg->profiles[m->profile];
                struct plan_opts o = plan_opts_for_meter(m);
                struct plan *merged = NULL, *single = NULL;
                if (plan_build(prof, &o, &merged) < 0)
                    continue;
                o.one_request_per_point = true;
                if (plan_build(prof, &o, &single) < 0) {
                    plan_free(merged);
                    continue;
                }
                bm++;
                bp += prof->n_points;
                br += merged->n_reqs;
                bs += single->n_reqs;
                double s = plan_rtu_seconds(merged, 9600, BITS_PER_CHAR);
                secs += s;
                secs_single += plan_rtu_seconds(single, 9600, BITS_PER_CHAR);
                busy += s / m->interval;
                plan_free(merged);
                plan_free(single);
            }
        printf("%-16s %6zu %7zu %9zu %9zu %11.3f %11.3f %8.1f%%\n", cfg->buses[b].name, bm, bp,
               br, bs, secs, secs_single, busy * 100.0);
        meters += bm;
        pts += bp;
        reqs += br;
        reqs_single += bs;
    }
    printf("total: %zu meters, %zu points: %zu requests per cycle vs %zu one per point "
           "(%.1f%% of the requests)\n\n",
           meters, pts, reqs, reqs_single, reqs_single ? 100.0 * (double)reqs / (double)reqs_single : 0);
}

/* ---- part 2: an emulated line on a pty ---- */

struct line {
    int master;
    int baud;
    pthread_t thread;
    atomic_int stop;
};

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* Wire time of one read of 'count' registers: request (8) and response
 * (5 + 2N) characters plus two inter-frame silences t3.5, which the spec
 * fixes at 1.75 ms above 19200 baud (3.5 characters would be shorter). */
static double wire_seconds(int baud, int count)
{
    double chr = (double)BITS_PER_CHAR / baud;
    double t35 = baud > 19200 ? 0.00175 : 3.5 * chr;
    return (13.0 + 2.0 * count) * chr + 2 * t35;
}

static void sleep_until_ns(const struct timespec *t)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL) == EINTR)
        ;
}

/* A meter at the far end of a line of 'baud': a request arrives whole on the
 * pty at once, so the reply leaves when request + silence + reply + silence
 * would have taken on the wire, i.e. the reply's last byte is "received" at
 * the earliest moment physics allows. */
static void *line_main(void *arg)
{
    struct line *l = arg;
    uint8_t req[8], rsp[5 + 2 * 125];
    size_t got = 0;
    while (!atomic_load(&l->stop)) {
        struct pollfd pfd = {.fd = l->master, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ssize_t n = read(l->master, req + got, sizeof(req) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got < sizeof(req))
            continue;
        got = 0;
        int addr = req[2] << 8 | req[3], count = req[4] << 8 | req[5];
        rsp[0] = req[0];
        rsp[1] = req[1];
        rsp[2] = (uint8_t)(2 * count);
        for (int i = 0; i < count; i++) {
            rsp[3 + 2 * i] = (uint8_t)((addr + i) >> 8);
            rsp[4 + 2 * i] = (uint8_t)(addr + i);
        }
        size_t len = 3 + 2 * (size_t)count;
        uint16_t crc = crc16(rsp, len);
        rsp[len] = (uint8_t)(crc & 0xFF);
        rsp[len + 1] = (uint8_t)(crc >> 8);
        long ns = (long)(wire_seconds(l->baud, count) * 1e9);
        t0.tv_nsec += ns % 1000000000L;
        t0.tv_sec += ns / 1000000000L + t0.tv_nsec / 1000000000L;
        t0.tv_nsec %= 1000000000L;
        sleep_until_ns(&t0);
        if (write(l->master, rsp, len + 2) < 0)
            break;
    }
    return NULL;
}

/* Reads 'count' registers 'reads' times at 'baud'; prints reads/s vs the limit. */
static int run_line(int baud, int count, int reads)
{
    struct line l = {.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), .baud = baud};
    if (l.master < 0 || grantpt(l.master) < 0 || unlockpt(l.master) < 0) {
        perror("pty");
        return -1;
    }
    char *dev = xstrdup(ptsname(l.master));
    pthread_create(&l.thread, NULL, line_main, &l);
    struct cfg_bus cfg = {.name = "bench", .type = BUS_RTU, .device = dev, .baud = baud,
                          .parity = 'E', .data_bits = 8, .stop_bits = 1, .timeout_ms = 1000};
    struct bus *b = NULL;
    int rc = bus_new(&cfg, &b);
    uint16_t out[125];
    struct plan_req req = {.fc = 3, .address = 0, .count = (uint16_t)count};
    int ok = 0;
    int64_t t0 = now_mono_ms();
    for (int i = 0; rc == 0 && i < reads; i++)
        if (bus_read(b, 1, &req, out) == 0 && out[count - 1] == count - 1)
            ok++;
    double secs = (double)(now_mono_ms() - t0) / 1000.0;
    double limit = 1.0 / wire_seconds(baud, count);
    double achieved = secs > 0 ? ok / secs : 0;
    printf("%7d %6d %6d/%-5d %9.1f %9.1f %8.1f%%\n", baud, count, ok, reads, limit, achieved,
           100.0 * achieved / limit);
    bus_free(b);
    atomic_store(&l.stop, 1);
    pthread_join(l.thread, NULL);
    close(l.master);
    free(dev);
    return ok == reads ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *src = getenv("PARKGW_SOURCE_DIR");
    char *path = argc > 1 ? xstrdup(argv[1]) : xasprintf("%s/config/demo.cfg", src ? src : ".");
    char err[512];
    struct config *cfg = NULL;
    if (config_load(path, &cfg, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_modbus: %s (part 1 skipped)\n", err);
    else
        part1(cfg);
    config_free(cfg);
    free(path);

    printf("part 2: bus_read over a pty whose far end answers after the wire time at the "
           "emulated baud rate (8E1)\n");
    printf("%7s %6s %12s %9s %9s %9s\n", "baud", "regs", "ok/reads", "limit/s", "reads/s",
           "of limit");
    /* 9 registers: a generic water meter's one request; 38: an SDM630-sized
     * block; 125: the largest request. About 2 s per row. */
    int bad = 0;
    bad |= run_line(9600, 9, 45);
    bad |= run_line(9600, 38, 20);
    bad |= run_line(9600, 125, 8);
    bad |= run_line(19200, 9, 90);
    bad |= run_line(38400, 9, 180);
    bad |= run_line(115200, 9, 400);
    return bad ? 1 : 0;
}
