/*
 * live_jansson.h - the live payload as parkgw built it before
 * live_payload_build(): a jansson object dumped compact with 15 significant
 * digits. The reference that test_payload compares the new text with byte
 * for byte, and the "old" side of bench/bench_payload.c. Names and strings
 * must be valid UTF-8 here (the old code repaired them first).
 */
#pragma once
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static char *live_jansson(int64_t ts, const char *ent, const char *meter, const char *utility,
                          const char *const *names, const double *values, const bool *valid,
                          size_t n)
{
    json_t *root = json_object();
    json_object_set_new(root, "ts", json_integer((json_int_t)ts));
    json_object_set_new(root, "enterprise", json_string(ent));
    json_object_set_new(root, "meter", json_string(meter));
    json_object_set_new(root, "utility", json_string(utility));
    json_t *vals = json_object();
    for (size_t i = 0; i < n; i++) {
        if ((valid && !valid[i]) || !isfinite(values[i]) || !names[i])
            continue;
        json_object_set_new(vals, names[i], json_real(values[i]));
    }
    json_object_set_new(root, "values", vals);
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(root);
    return s;
}
