/*
 * test_tou.c - the time-of-use split of engine/billing.c: bands crossing
 * midnight over a period crossing midnight and a month boundary
 * (Asia/Shanghai), pricing, hours no band covers, overlapping bands, and the
 * split across DST changes (Europe/Berlin), all computed by hand below.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "engine/billing.h"
#include "common/timeparse.h"
#include "tests/unit/check.h"

#define H 3600000LL

static int64_t lt(const char *s)
{
    int64_t ms = 0;
    if (timeparse(s, &ms) < 0) {
        fprintf(stderr, "bad test time %s\n", s);
        abort();
    }
    return ms;
}

static void add_hours(struct cfg_band *b, const char *from, const char *to)
{
    int fh, fm, th, tm;
    if (sscanf(from, "%d:%d", &fh, &fm) != 2 || sscanf(to, "%d:%d", &th, &tm) != 2)
        abort();
    b->hours = realloc(b->hours, (b->n_hours + 1) * sizeof(*b->hours));
    if (!b->hours)
        abort();
    b->hours[b->n_hours].from_min = fh * 60 + fm;
    b->hours[b->n_hours].to_min = th * 60 + tm;
    b->n_hours++;
}

/* The DESIGN.md electricity tariff. */
static void design_tariff(struct cfg_tariff *t, struct cfg_band *b)
{
    memset(t, 0, sizeof(*t));
    memset(b, 0, 3 * sizeof(*b));
    b[0] = (struct cfg_band){.name = "peak", .price = 1.0525};
    add_hours(&b[0], "08:00", "11:00");
    add_hours(&b[0], "18:00", "23:00");
    b[1] = (struct cfg_band){.name = "flat", .price = 0.6793};
    add_hours(&b[1], "07:00", "08:00");
    add_hours(&b[1], "11:00", "18:00");
    b[2] = (struct cfg_band){.name = "valley", .price = 0.3218};
    add_hours(&b[2], "23:00", "07:00");
    t->utility = UTIL_ELECTRICITY;
    t->currency = "CNY";
    t->bands = b;
    t->n_bands = 3;
}

static void free_bands(struct cfg_band *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].hours);
}

/*
 * Period [Oct 31 20:00, Nov 1 10:00) local, readings:
 *   Oct 31 19:00 0 | 21:00 20 | Nov 1 01:00 100 | 09:00 180 | 11:00 200
 *  19:00-21:00 +20 (10/h): inside 20:00-21:00 = 10 peak
 *  21:00-01:00 +80 (20/h): 21-23 peak 40, 23-01 valley 40
 *  01:00-09:00 +80 (10/h): 01-07 valley 60, 07-08 flat 10, 08-09 peak 10
 *  09:00-11:00 +20 (10/h): inside 09-10 = 10 peak
 * consumption 180 = peak 70 + flat 10 + valley 100
 * amount 70 x 1.0525 + 10 x 0.6793 + 100 x 0.3218 = 73.675 + 6.793 + 32.18 = 112.648
 */
static void test_split_midnight_month(void)
{
    struct cfg_tariff t;
    struct cfg_band b[3];
    design_tariff(&t, b);
    struct bill_sample s[] = {{lt("2026-10-31T19:00"), 0},
                              {lt("2026-10-31T21:00"), 20},
                              {lt("2026-11-01T01:00"), 100},
                              {lt("2026-11-01T09:00"), 180},
                              {lt("2026-11-01T11:00"), 200}};
    struct bill_params p = {.from = lt("2026-10-31T20:00"), .to = lt("2026-11-01T10:00"),
                            .gap_ms = 8 * H, .tariff = &t};
    struct bill_result r;
    CHECK_INT(bill_compute(&p, s, 5, &r), 0);
    CHECK_INT(r.n_bands, 3);
    CHECK_NEAR(r.consumption, 180, 1e-9);
    CHECK_NEAR(r.band[0], 70, 1e-9);
    CHECK_NEAR(r.band[1], 10, 1e-9);
    CHECK_NEAR(r.band[2], 100, 1e-9);
    CHECK_NEAR(r.unbanded, 0, 0);
    CHECK_NEAR(fabs(r.band[0] + r.band[1] + r.band[2] - r.consumption) / r.consumption, 0, 1e-9);
    CHECK_NEAR(r.amount, 112.648, 1e-9);
    /* at 20:00 halfway 0 -> 20 = 10; at 10:00 halfway 180 -> 200 = 190;
     * 190 - 10 = 180, the consumption */
    CHECK_NEAR(r.start_reading, 10, 1e-9);
    CHECK_NEAR(r.end_reading, 190, 1e-9);
    CHECK_NEAR(r.coverage_pct, 100, 1e-9);
    CHECK_NEAR(r.estimated, 0, 0);

    /* A 4 h gap limit: 01:00-09:00 is still covered (a good reading each
     * side) but its 80 are spread over an 8 h gap: estimated 80 of 180. */
    p.gap_ms = 4 * H;
    CHECK_INT(bill_compute(&p, s, 5, &r), 0);
    CHECK_NEAR(r.coverage_pct, 100, 1e-9);
    CHECK_NEAR(r.estimated, 80, 1e-9);
    CHECK_NEAR(r.consumption, 180, 1e-9);

    /* Without bands: consumption x flat price; no band figures. */
    t.n_bands = 0;
    t.price = 0.5;
    CHECK_INT(bill_compute(&p, s, 5, &r), 0);
    CHECK_INT(r.n_bands, 0);
    CHECK_NEAR(r.amount, 90, 1e-9);
    free_bands(b, 3);
}

/* A whole month of 15-minute readings with an irregular load: the bands
 * must add up to the consumption, which must equal the counter's rise. */
static void test_month_sums(void)
{
    struct cfg_tariff t;
    struct cfg_band b[3];
    design_tariff(&t, b);
    int64_t from = lt("2026-11-01"), to = lt("2026-12-01");
    struct bill_params p = {.from = from, .to = to, .gap_ms = 45 * 60000, .tariff = &t};
    struct bill_acc *a;
    CHECK_INT(bill_acc_new(&p, &a), 0);
    double v = 1000;
    for (int64_t ts = from; ts <= to; ts += 15 * 60000) {
        bill_acc_add(a, ts, v);
        v += 1.0 + (double)((ts / 60000) % 7) * 0.37;
    }
    struct bill_result r;
    bill_acc_finish(a, &r);
    bill_acc_free(a);
    /* readings at from and at to exactly: consumption = last - first, where
     * the last is the reading at 'to' (the end_reading is the one before) */
    double rise = v - 1000 - (1.0 + (double)((to / 60000) % 7) * 0.37);
    CHECK_NEAR(r.consumption, rise, 1e-6);
    CHECK_NEAR(fabs(r.band[0] + r.band[1] + r.band[2] - r.consumption) / r.consumption, 0, 1e-9);
    CHECK_NEAR(r.coverage_pct, 100, 1e-9);
    /* 30 days x 8 h peak / 8 h flat / 8 h valley, load varies: each share near a third */
    CHECK(r.band[0] > 0.3 * r.consumption && r.band[0] < 0.37 * r.consumption);
    CHECK(r.band[2] > 0.3 * r.consumption && r.band[2] < 0.37 * r.consumption);
    free_bands(b, 3);
}

/*
 * Bands not covering the day and overlapping: A 08:00-12:00, B 10:00-14:00
 * (10-12 belongs to A, listed first), nothing 14:00-08:00 (priced at the
 * tariff's flat price 0.1). Readings 06:00 0 and 16:00 100 (10/h):
 * A 08-12 = 40, B 12-14 = 20, unbanded 06-08 + 14-16 = 40.
 * amount = 40 x 1 + 20 x 2 + 40 x 0.1 = 84.
 */
static void test_partial_bands(void)
{
    struct cfg_band b[2] = {{.name = "a", .price = 1}, {.name = "b", .price = 2}};
    add_hours(&b[0], "08:00", "12:00");
    add_hours(&b[1], "10:00", "14:00");
    struct cfg_tariff t = {.currency = "CNY", .price = 0.1, .bands = b, .n_bands = 2};
    struct bill_sample s[] = {{lt("2026-11-01T06:00"), 0}, {lt("2026-11-01T16:00"), 100}};
    struct bill_params p = {.from = lt("2026-11-01"), .to = lt("2026-11-02"), .tariff = &t};
    struct bill_result r;
    CHECK_INT(bill_compute(&p, s, 2, &r), 0);
    CHECK_NEAR(r.band[0], 40, 1e-9);
    CHECK_NEAR(r.band[1], 20, 1e-9);
    CHECK_NEAR(r.unbanded, 40, 1e-9);
    CHECK_NEAR(r.amount, 84, 1e-9);
    /* covered 06:00-16:00 of 24 h (no gap limit) */
    CHECK_NEAR(r.coverage_pct, 10.0 / 24.0 * 100.0, 1e-9);

    /* hours outside 0..24:00 are refused */
    b[1].hours[0].to_min = 1441;
    struct bill_acc *acc = NULL;
    CHECK_INT(bill_acc_new(&p, &acc), -EINVAL);
    CHECK(acc == NULL);
    free_bands(b, 2);
}

/*
 * Europe/Berlin, valley 23:00-07:00, day 07:00-23:00.
 * Spring forward 2026-03-29 02:00 CET -> 03:00 CEST: readings at local
 * 00:00 (0) and 08:00 (70) are 7 real hours apart (10/h): valley is
 * 00:00-02:00 + 03:00-07:00 = 6 h = 60, day 07:00-08:00 = 10.
 * Fall back 2026-10-25 03:00 CEST -> 02:00 CET: local 00:00 (0) to 08:00
 * (90) is 9 real hours: valley 00:00-07:00 = 8 h = 80, day 10.
 */
static void test_dst(void)
{
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    struct cfg_band b[2] = {{.name = "valley", .price = 0.2}, {.name = "day", .price = 0.4}};
    add_hours(&b[0], "23:00", "07:00");
    add_hours(&b[1], "07:00", "23:00");
    struct cfg_tariff t = {.currency = "EUR", .bands = b, .n_bands = 2};

    struct bill_sample s[] = {{lt("2026-03-29"), 0}, {lt("2026-03-29T08:00"), 70}};
    CHECK_INT(s[1].ts - s[0].ts, 7 * H);
    struct bill_params p = {.from = lt("2026-03-28"), .to = lt("2026-03-30"), .tariff = &t};
    struct bill_result r;
    CHECK_INT(bill_compute(&p, s, 2, &r), 0);
    CHECK_NEAR(r.band[0], 60, 1e-9);
    CHECK_NEAR(r.band[1], 10, 1e-9);

    struct bill_sample f[] = {{lt("2026-10-25"), 0}, {lt("2026-10-25T08:00"), 90}};
    CHECK_INT(f[1].ts - f[0].ts, 9 * H);
    p.from = lt("2026-10-24");
    p.to = lt("2026-10-26");
    CHECK_INT(p.to - p.from, 49 * H);
    CHECK_INT(bill_compute(&p, f, 2, &r), 0);
    CHECK_NEAR(r.band[0], 80, 1e-9);
    CHECK_NEAR(r.band[1], 10, 1e-9);

    free_bands(b, 2);
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    test_split_midnight_month();
    test_month_sums();
    test_partial_bands();
    test_dst();
    return check_done();
}
