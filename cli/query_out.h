/*
 * query_out.h - the CSV and JSON forms of `parkgw query`'s rows
 * (docs/CLI.md): raw rows (the `import` format) and bucket rows, written as
 * cli/query.c computes them. Times in the gateway's zone (TZ); numbers in
 * the fewest digits that read back as the same double; inf and NaN never
 * printed (JSON null, an empty CSV field).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A bucket's statistics over the readings inside it, and a counter's share
 * of consumption (engine/billing.c's rules). */
struct query_bucket {
    int64_t count;
    double min, max, sum, last;
    double consumption;
};

struct query_out {
    FILE *out;
    bool json;
    bool first_row; /* JSON: no comma before the first object */
};

/* Starts the output on out: the CSV header of raw rows or of bucket rows
 * (steps), or JSON's opening bracket. */
void query_out_begin(struct query_out *o, FILE *out, bool json, bool steps);
/* One raw reading (value finite). */
void query_out_raw(struct query_out *o, const char *ent, const char *meter, const char *point,
                   int64_t ts, double value);
/* One bucket starting at start; counter: its consumption is printed (for a
 * gauge it is empty). An empty bucket (count 0) has empty statistics. */
void query_out_bucket(struct query_out *o, const char *ent, const char *meter, const char *point,
                      int64_t start, const struct query_bucket *b, bool counter);
/* Ends the output (JSON's closing bracket). */
void query_out_end(struct query_out *o);
