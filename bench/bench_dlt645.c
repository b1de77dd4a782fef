/*
 * bench_dlt645.c - how close parkgw gets to what a DL/T 645-2007 or CJ/T 188
 * line can carry. The real bus code (bus_read_meter: the serial exchange,
 * dlt645.c / cjt188.c framing and checks) reads a meter over a
 * pseudo-terminal whose far end answers only after the wire time of the
 * request and the reply at the emulated baud rate, 8E1 (11 bits a
 * character), wake-up bytes included (4 before each request and each
 * reply), the meter's own turnaround taken as zero. Reported: achieved
 * reads/s as a fraction of that physical limit, so the gap is the
 * gateway's. Prints figures only: bench_dlt645
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bcd.h"
#include "common/util.h"
#include "protocols/bus.h"
#include "protocols/cjt188.h"
#include "protocols/dlt645.h"

#define BITS_PER_CHAR 11

struct line {
    int master;
    int baud;
    bool cjt188;
    size_t data; /* data bytes of each reply after DI (and SER) */
    pthread_t thread;
    atomic_int stop;
};

static double wire_seconds(int baud, size_t chars)
{
    return (double)chars * BITS_PER_CHAR / baud;
}

/* The meter: a request arrives whole on the pty at once, so the reply
 * leaves when request + reply would have taken on the wire. */
static void *line_main(void *arg)
{
    struct line *l = arg;
    size_t want = l->cjt188 ? CJT188_READ_REQ_LEN : DLT645_READ_REQ_LEN;
    uint8_t req[32], d[256] = {0}, rsp[400];
    size_t got = 0;
    while (!atomic_load(&l->stop)) {
        struct pollfd pfd = {.fd = l->master, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ssize_t n = read(l->master, req + got, want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got < want)
            continue;
        got = 0;
        size_t len;
        if (l->cjt188) {
            memcpy(d, req + 15, 3); /* DI and SER as asked */
            len = cjt188_build(rsp, true, req[5], req + 6, 0x81, d, 3 + l->data);
        } else {
            for (int i = 0; i < 4; i++)
                d[i] = (uint8_t)(req[14 + i] - 0x33);
            len = dlt645_build(rsp, true, req + 5, 0x91, d, 4 + l->data);
        }
        long ns = (long)(wire_seconds(l->baud, want + len) * 1e9);
        t0.tv_nsec += ns % 1000000000L;
        t0.tv_sec += ns / 1000000000L + t0.tv_nsec / 1000000000L;
        t0.tv_nsec %= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t0, NULL) != 0)
            ;
        if (write(l->master, rsp, len) < 0)
            break;
    }
    return NULL;
}

/* Reads one item of 'data' bytes 'reads' times; prints reads/s vs the limit. */
static int run_line(bool cjt188, int baud, size_t data, int reads, const char *what)
{
    struct line l = {.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC),
                     .baud = baud,
                     .cjt188 = cjt188,
                     .data = data};
    if (l.master < 0 || grantpt(l.master) < 0 || unlockpt(l.master) < 0) {
        perror("pty");
        return -1;
    }
    char *dev = xstrdup(ptsname(l.master));
    pthread_create(&l.thread, NULL, line_main, &l);
    struct cfg_bus cfg = {.name = "bench",
                          .type = BUS_RTU,
                          .device = dev,
                          .baud = baud,
                          .parity = 'E',
                          .data_bits = 8,
                          .stop_bits = 1,
                          .timeout_ms = 1000,
                          .protocol = cjt188 ? PROTO_CJT188 : PROTO_DLT645};
    struct cfg_meter m = {.id = "m"};
    bcd_addr_parse(cjt188 ? "00000000000201" : "000000000101", cjt188 ? 7 : 6, m.addr);
    struct bus *b = NULL;
    int rc = bus_new(&cfg, &b);
    uint16_t out[256];
    struct plan_req req = {.fc = cjt188 ? PLAN_FC_CJT188 : PLAN_FC_DLT645,
                           .count = (uint16_t)data,
                           .di = cjt188      ? CJT188_DI_METERING
                                 : data == 4 ? 0x00010000
                                             : 0x0001FF00,
                           .meter_type = CJT188_T_COLD_WATER};
    int ok = 0;
    int64_t t0 = now_mono_ms();
    for (int i = 0; rc == 0 && i < reads; i++)
        if (bus_read_meter(b, &m, &req, out) == 0)
            ok++;
    double secs = (double)(now_mono_ms() - t0) / 1000.0;
    size_t chars = cjt188 ? CJT188_READ_REQ_LEN + CJT188_PREAMBLE_LEN + CJT188_OVERHEAD + 3 + data
                          : DLT645_READ_REQ_LEN + DLT645_PREAMBLE_LEN + DLT645_OVERHEAD + 4 + data;
    double limit = 1.0 / wire_seconds(baud, chars);
    double achieved = secs > 0 ? ok / secs : 0;
    printf("%-30s %6d %6zu %6d/%-4d %8.2f %8.2f %8.1f%%\n", what, baud, chars, ok, reads, limit,
           achieved, 100.0 * achieved / limit);
    bus_free(b);
    atomic_store(&l.stop, 1);
    pthread_join(l.thread, NULL);
    close(l.master);
    free(dev);
    return ok == reads ? 0 : -1;
}

int main(void)
{
    printf("bus_read_meter over a pty whose far end answers after the wire time at the "
           "emulated baud rate (8E1, 4 wake-up bytes each way)\n");
    printf("%-30s %6s %6s %11s %8s %8s %9s\n", "item", "baud", "chars", "ok/reads", "limit/s",
           "reads/s", "of limit");
    int bad = 0;
    /* About 2-3 s per row. */
    bad |= run_line(false, 2400, 4, 10, "DL/T 645 energy (4 bytes)");
    bad |= run_line(false, 2400, 20, 8, "DL/T 645 block 0001FF00 (20)");
    bad |= run_line(true, 2400, 19, 8, "CJ/T 188 901F water (19)");
    bad |= run_line(false, 9600, 4, 40, "DL/T 645 energy (4 bytes)");
    bad |= run_line(false, 9600, 20, 32, "DL/T 645 block 0001FF00 (20)");
    bad |= run_line(true, 9600, 19, 32, "CJ/T 188 901F water (19)");
    return bad ? 1 : 0;
}
