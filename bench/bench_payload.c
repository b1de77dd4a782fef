/*
 * bench_payload.c - the cost of one live payload of 30 float32 points, built
 * the old way (a jansson object, json_dumps with 15 digits) and the new way
 * (live_payload_build: prepared text, numfmt, 7 digits for float32 points;
 * also with 15 digits), and the cost of one number: numfmt_double vs
 * snprintf("%.*g"). Values are float32 readings of a power meter, new each
 * round. Prints figures only: bench_payload [ROUNDS]
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocols/numfmt.h"
#include "protocols/payload.h"
#include "tests/unit/live_jansson.h"

#define N_POINTS 30
#define N_SETS 64 /* value sets cycled through, so no branch learns one */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng = 0x853c49e6748fea9bULL;

static double next_unit(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    long rounds = 200000;
    if (argc > 1) {
        char *end;
        errno = 0;
        rounds = strtol(argv[1], &end, 10);
        if (errno || *end || rounds < 1) {
            fprintf(stderr, "usage: bench_payload [ROUNDS]\n");
            return 2;
        }
    }

    char name_buf[N_POINTS][32];
    const char *names[N_POINTS];
    int digits7[N_POINTS], digits15[N_POINTS];
    for (int i = 0; i < N_POINTS; i++) {
        static const char *const unit[3] = {"kwh", "v", "a"};
        snprintf(name_buf[i], sizeof(name_buf[i]), "point_%02d_%s", i, unit[i % 3]);
        names[i] = name_buf[i];
        digits7[i] = 7;
        digits15[i] = 15;
    }
    /* Readings as a meter gives them: energy counters, voltages, currents,
     * power factor, as float32 widened to double. */
    static double sets[N_SETS][N_POINTS];
    for (int s = 0; s < N_SETS; s++)
        for (int i = 0; i < N_POINTS; i++) {
            static const double mag[5] = {1e6, 230, 12, 1, 50};
            sets[s][i] = (double)(float)(mag[i % 5] * (0.5 + next_unit()));
        }

    const char *ent = "chengtong-plastics", *meter = "e1", *util = "electricity";
    struct live_payload *lp7 = live_payload_new(ent, meter, util, names, digits7, N_POINTS);
    struct live_payload *lp15 = live_payload_new(ent, meter, util, names, digits15, N_POINTS);
    size_t sink = 0, len = 0;
    int64_t ts = 1767225600000LL;

    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        char *s = live_jansson(ts + r, ent, meter, util, names, sets[r % N_SETS], NULL, N_POINTS);
        sink += strlen(s);
        free(s);
    }
    double t_old = (now_ns() - t0) / (double)rounds;

    t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        sink += (size_t)live_payload_build(lp15, ts + r, sets[r % N_SETS], NULL, &len)[0] + len;
    }
    double t_new15 = (now_ns() - t0) / (double)rounds;

    t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        sink += (size_t)live_payload_build(lp7, ts + r, sets[r % N_SETS], NULL, &len)[0] + len;
    }
    double t_new7 = (now_ns() - t0) / (double)rounds;
    size_t len7 = len;
    live_payload_build(lp15, ts, sets[0], NULL, &len);
    size_t len15 = len;
    char *old = live_jansson(ts, ent, meter, util, names, sets[0], NULL, N_POINTS);
    size_t len_old = strlen(old);
    free(old);

    /* One number: every value of the sets in turn. */
    long n_nums = rounds * 10;
    char buf[64];
    double t_num[4];
    for (int mode = 0; mode < 4; mode++) {
        int p = mode % 2 ? 15 : 7;
        t0 = now_ns();
        for (long k = 0; k < n_nums; k++) {
            double v = sets[(k / N_POINTS) % N_SETS][k % N_POINTS];
            if (mode < 2)
                sink += numfmt_double(buf, v, p);
            else
                sink += (size_t)snprintf(buf, sizeof(buf), "%.*g", p, v);
        }
        t_num[mode] = (now_ns() - t0) / (double)n_nums;
    }

    printf("live payload, %d float32 points, %ld rounds:\n", N_POINTS, rounds);
    printf("  old: jansson, 15 digits       %8.0f ns/payload  (%zu bytes)\n", t_old, len_old);
    printf("  new: prepared text, 15 digits %8.0f ns/payload  (%zu bytes)  %.1fx faster\n", t_new15,
           len15, t_old / t_new15);
    printf("  new: prepared text, 7 digits  %8.0f ns/payload  (%zu bytes)  %.1fx faster\n", t_new7,
           len7, t_old / t_new7);
    printf("one number (%ld):\n", n_nums);
    printf("  numfmt_double  7 digits %6.1f ns   snprintf %%.7g  %6.1f ns\n", t_num[0], t_num[2]);
    printf("  numfmt_double 15 digits %6.1f ns   snprintf %%.15g %6.1f ns\n", t_num[1], t_num[3]);
    printf("(checksum %zu)\n", sink);
    live_payload_free(lp7);
    live_payload_free(lp15);
    return 0;
}
