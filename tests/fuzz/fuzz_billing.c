/*
 * fuzz_billing.c - libFuzzer target for the billing computation: a random
 * counter series (steady increases, arbitrary jumps standing for resets,
 * wraps, spikes and bad reads, NaN, repeated timestamps) with random wrap
 * modulus, max_rate, gap and a random time-of-use tariff, in Europe/Berlin
 * so the period can straddle the 2025-03-30 DST change. Invariants:
 * consumption is never negative, every accepted delta is non-negative, the
 * bands (plus unbanded) sum to the consumption, coverage lies in [0, 100],
 * and splitting the period at any instant gives two bills whose
 * consumptions add up to the whole period's.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "engine/billing.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SAMPLES 512
/* 2025-03-29 00:00 UTC: Berlin switches to summer time 26 hours later. */
#define BASE_MS 1743206400000LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    return 0;
}

static void on_delta(void *ud, int64_t t0, int64_t t1, double delta)
{
    (void)ud;
    if (!(delta >= 0) || t1 < t0)
        abort();
}

static bool near(double a, double b)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= 1e-6 * (scale > 1 ? scale : 1);
}

static void check(const struct bill_result *r, const struct bill_params *p)
{
    if (!(r->consumption >= 0) || !(r->coverage_pct >= 0) || !(r->coverage_pct <= 100 + 1e-9))
        abort();
    if (p->tariff && p->tariff->n_bands) {
        double sum = r->unbanded;
        for (size_t i = 0; i < r->n_bands; i++) {
            if (!(r->band[i] >= 0))
                abort();
            sum += r->band[i];
        }
        if (!near(sum, r->consumption))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct cfg_band bands[4];
    struct { int from_min, to_min; } hours[4][3];
    struct cfg_tariff tariff = {.utility = UTIL_ELECTRICITY, .currency = "CNY", .price = 0.6,
                                .bands = bands};
    static const char *const names[] = {"peak", "flat", "valley", "peak"};
    struct bill_params p = {0};
    static struct bill_sample s[MAX_SAMPLES];

    uint8_t flags = fz_u8(&in);
    tariff.n_bands = (flags & 3) + ((flags & 4) ? 1 : 0);
    if (tariff.n_bands > 4)
        tariff.n_bands = 4;
    for (size_t b = 0; b < tariff.n_bands; b++) {
        bands[b].name = (char *)names[b];
        bands[b].price = 0.3 + (double)b * 0.2;
        bands[b].n_hours = 1 + fz_u8(&in) % 3;
        for (size_t h = 0; h < bands[b].n_hours; h++) {
            hours[b][h].from_min = fz_u16(&in) % 1440;
            hours[b][h].to_min = 1 + fz_u16(&in) % 1440;
        }
        bands[b].hours = (void *)hours[b];
    }
    p.tariff = (flags & 8) ? &tariff : NULL;
    static const double wraps[] = {0, 65536.0, 6553.6, 4294967296.0};
    p.wrap = wraps[(flags >> 4) & 3];
    p.max_rate = (flags & 0x40) ? fz_u16(&in) : 0;
    p.gap_ms = (flags & 0x80) ? (int64_t)fz_u16(&in) * 1000 : 0;
    p.from = BASE_MS + (int64_t)fz_u16(&in) * 1000;
    p.to = p.from + 1 + (int64_t)(fz_u32(&in) % (20LL * 86400000));
    p.on_delta = on_delta;

    size_t n = 0;
    int64_t ts = BASE_MS - 3600000;
    double v = fz_u16(&in);
    while (in.n >= 2 && n < MAX_SAMPLES) {
        uint8_t k = fz_u8(&in);
        ts += (k & 0x40) ? 0 : (int64_t)(1 + fz_u8(&in)) * 60000; /* 0: a repeated ts */
        if (k == 0x7f)
            s[n].value = NAN;
        else if (k & 0x80)
            s[n].value = v = (double)(int32_t)fz_u32(&in) / 16.0; /* jump: reset, wrap, spike */
        else
            s[n].value = v = v + (double)fz_u8(&in) / 4.0;
        s[n].ts = ts;
        n++;
    }

    struct bill_result whole, a, b;
    if (bill_compute(&p, s, n, &whole) < 0)
        return 0; /* bad band hours: refused, as it must be */
    check(&whole, &p);

    int64_t mid = p.from + (int64_t)((double)(p.to - p.from) * (double)(flags & 0x0f) / 16.0);
    if (mid <= p.from || mid >= p.to)
        return 0;
    struct bill_params pa = p, pb = p;
    pa.to = mid;
    pb.from = mid;
    if (bill_compute(&pa, s, n, &a) < 0 || bill_compute(&pb, s, n, &b) < 0)
        abort();
    check(&a, &pa);
    check(&b, &pb);
    if (!near(a.consumption + b.consumption, whole.consumption))
        abort();
    return 0;
}
