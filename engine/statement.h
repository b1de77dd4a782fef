/*
 * statement.h - the billing statement as data: one row per enterprise x
 * meter (its billing counter run through engine/billing.c for the period,
 * read by engine/billfeed.c), totals per enterprise and utility and for the
 * park. No output here: engine/statement_out.c prints it as table, CSV or
 * JSON. In engine/ (reading through storage's public API, no SQL) so that
 * any front end, the CLI or a daemon-side listener, computes the same one.
 *
 * Rules the billing office should know (docs/CLI.md):
 *  - readings are looked for up to BILLFEED_MARGIN_MS either side of the
 *    period; an interval counts as covered up to 3 poll intervals;
 *  - the CSV columns peak/flat/valley are the tariff bands of those names
 *    (0 when the tariff has bands but none of that name);
 *  - amounts are rounded to cents per row; totals add the rounded rows;
 *  - no tariff for a utility: no amount and no currency.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "engine/billing.h"
#include "engine/tariff.h"

struct store;

/* The bands with a column of their own, in column order: peak, flat,
 * valley (Part 1's columns), then critical and deep_valley (the second
 * version's, after the first 15 columns). */
#define STATEMENT_COLUMN_BANDS 5
extern const char *const statement_column_band[STATEMENT_COLUMN_BANDS];

struct statement_request {
    int64_t from, to;       /* Unix ms, from < to */
    const char *enterprise; /* NULL = all */
    bool has_utility;
    enum utility utility;
    bool raw_only;          /* read every raw sample, no rollups (tests, benchmarks) */
    bool no_adjustments;    /* leave out the adjustments of a closed period ending at from */
    bool daily;             /* also each row's consumption by local day (the HTML chart) */
};

/* A stretch of a meter's period with one multiplier and one physical
 * meter: the period is cut at every record of its history (ratio change,
 * replacement; storage/meterlog.h) inside it. Dial readings before PT x CT. */
struct statement_segment {
    int64_t from, to;
    bool has_readings;
    double start_dial, end_dial;    /* at from and at to (bill_result's rules) */
    /* The start / end reading is the meter's own frozen reading stored at
     * that instant after an outage (storage/frozenlog.h), not a poll. */
    bool start_frozen, end_frozen;
    double multiplier;              /* pt x ct in force (1 for a counter without ratio) */
    double consumption;             /* (dial delta + wraps) x multiplier */
    int cause;                      /* what starts it: STATEMENT_CAUSE_PERIOD, an enum
                                     * meterlog_kind, or STATEMENT_CAUSE_TARIFF */
    const struct cfg_tariff *tariff; /* the version in force (NULL: none) */
};
#define STATEMENT_CAUSE_PERIOD (-1)
#define STATEMENT_CAUSE_TARIFF 16   /* a tariff version comes into force */

/* One band line of a row: a band name at one unit price (a period that
 * spans a price change has a line per price). */
struct statement_band {
    const char *name;               /* the tariff's, or "unbanded" */
    double price;
    double consumption;
};
#define STATEMENT_MAX_BAND_LINES 32

struct statement_row {
    const struct cfg_enterprise *ent;
    size_t ent_idx;                  /* in cfg->enterprises */
    const struct cfg_meter *m;
    const struct cfg_tariff *tariff; /* in force at 'to' (NULL: no tariff for the utility) */
    /* The whole period in billing units (the segments' sums, multiplied):
     * start_reading/end_reading are the first segment's start and the last
     * one's end dial reading x their multipliers. */
    struct bill_result r;
    double multiplier;               /* in force at 'to' */
    double col_band[STATEMENT_COLUMN_BANDS]; /* consumption per band column, by name */
    struct statement_band bands[STATEMENT_MAX_BAND_LINES]; /* n_bands in r.n_bands */
    double estimated_pct;            /* share of consumption spread over long gaps */
    struct statement_segment *seg;   /* n_seg >= 1, 0 on adjustment rows */
    size_t n_seg;
    struct tariff_series daily;      /* by local day when req->daily, else n = 0 */
    /* The two-part tariff (docs/CLI.md "Charges"): the charges rounded to
     * cents, their sum the row's amount; quarter-hour consumption of a
     * max_demand meter (n = 0 otherwise) and its maximum demand; the
     * reactive energy and the power factor (NaN: none). */
    struct tariff_charges ch;
    struct tariff_series quarter;
    double demand_kw;
    int64_t demand_ts;               /* the window's start, -1 = none */
    double basic_kva;                /* capacity billed (0: none) */
    double kvarh, pf;
    /* An adjustment row: what changed in the closed period [adj_from,
     * adj_to) since it was closed (late readings, meter history, tariff
     * edits): r.consumption and r.amount are the differences, nothing else
     * is set. */
    bool adjustment;
    int64_t adj_from, adj_to;
};

struct statement_total {
    bool used;
    bool banded;            /* some row had bands: the band columns are filled */
    double consumption;
    double band[STATEMENT_COLUMN_BANDS];
    double amount;          /* sum of the rows' rounded amounts */
    const char *currency;   /* NULL: no tariff */
};

struct statement {
    int64_t from, to;
    struct statement_row *rows;   /* grouped by enterprise, in config order */
    size_t n_rows;
    struct statement_total (*ent_total)[UTIL__COUNT]; /* per cfg->enterprises index */
    struct statement_total park[UTIL__COUNT];
};

/* Computes the statement of req from st into a new *ret (free with
 * statement_free). 0; -EINVAL (unknown enterprise, from >= to, a profile
 * without billing counter, unusable tariff bands; message in err); -EIO (a
 * store read failed; message in err). cfg must outlive *ret. */
int statement_build(const struct config *cfg, struct store *st,
                    const struct statement_request *req, struct statement **ret, char *err,
                    size_t errlen);
void statement_free(struct statement *s);

/* Consumption of a row in band column i (0 when its tariff has no such
 * band). */
double statement_row_band(const struct statement_row *row, int i);
/* v rounded to a multiple of unit (0.01: cents), as the statement rounds. */
double statement_round(double v, double unit);
/* The row's amount rounded to cents: the sum of its charges (ch). */
double statement_row_amount(const struct statement_row *row);
/* Whether cfg has an enterprise of that id. */
bool statement_has_enterprise(const struct config *cfg, const char *id);
