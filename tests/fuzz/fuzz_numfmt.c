/*
 * fuzz_numfmt.c - libFuzzer target for protocols/numfmt.c and the prepared
 * live payload: the first 8 bytes are a double (any bit pattern), the next
 * one the digits, the rest three strings and point names (NUL-separated,
 * any bytes). Invariants: numfmt_double writes what snprintf("%.*g") means
 * (same number, same form; near DBL_MAX a number that reads back finite)
 * within NUMFMT_DOUBLE_SIZE; numfmt_int64 reads
 * back; the live payload is JSON jansson accepts, with every valid point.
 */
#include <jansson.h>
#include <math.h>

#include "protocols/numfmt.h"
#include "protocols/payload.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAMES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint64_t bits = (uint64_t)fz_u32(&in) << 32 | fz_u32(&in);
    double v;
    memcpy(&v, &bits, sizeof(v));
    int digits = fz_u8(&in) % 19; /* 0 and 18 test the clamp */

    char got[NUMFMT_DOUBLE_SIZE + 8], want[64];
    memset(got, 'x', sizeof(got));
    size_t n = numfmt_double(got, v, digits);
    if (n >= NUMFMT_DOUBLE_SIZE || got[n] != '\0' || got[NUMFMT_DOUBLE_SIZE] != 'x')
        abort();
    if (isfinite(v)) {
        int p = digits < 1 ? 1 : digits > 17 ? 17 : digits;
        snprintf(want, sizeof(want), "%.*g", p, v);
        char *end;
        double a = strtod(got, &end), b = strtod(want, NULL);
        if (*end || !isfinite(a))
            abort();
        /* Where printf's digits overflow, numfmt uses more (see numfmt.h). */
        if (isfinite(b) && (memcmp(&a, &b, sizeof(a)) != 0 ||
                            (strchr(got, 'e') != NULL) != (strchr(want, 'e') != NULL)))
            abort();
        if (!isfinite(b) && fabs(a - v) > fabs(v) * pow(10, 1 - p))
            abort();
    } else if (strcmp(got, "null") != 0) {
        abort();
    }

    char ibuf[NUMFMT_INT64_SIZE];
    int64_t iv = (int64_t)bits;
    numfmt_int64(ibuf, iv);
    if (strtoll(ibuf, NULL, 10) != iv)
        abort();

    /* Strings from the rest of the input, NUL-separated. */
    char *rest = malloc(in.n + 1);
    memcpy(rest, in.p, in.n);
    rest[in.n] = '\0';
    const char *strs[3 + MAX_NAMES];
    size_t ns = 0;
    for (char *p = rest, *end = rest + in.n; ns < 3 + MAX_NAMES; ns++) {
        strs[ns] = p;
        p += strlen(p);
        if (p >= end) {
            ns++;
            break;
        }
        p++;
    }
    while (ns < 3 + MAX_NAMES)
        strs[ns++] = "";
    double values[MAX_NAMES];
    int dig[MAX_NAMES];
    for (int i = 0; i < MAX_NAMES; i++) {
        values[i] = i % 2 ? v : (double)i * 1.5;
        dig[i] = 1 + (digits + i) % 17;
    }
    struct live_payload *lp = live_payload_new(strs[0], strs[1], strs[2], strs + 3, dig, MAX_NAMES);
    size_t len;
    const char *s = live_payload_build(lp, iv, values, NULL, &len);
    json_error_t err;
    json_t *j = json_loadb(s, len, 0, &err);
    if (!j || strlen(s) != len)
        abort();
    json_t *vals = json_object_get(j, "values");
    if (!json_is_object(vals) || json_integer_value(json_object_get(j, "ts")) != iv)
        abort();
    /* Equal names collapse into one key on parsing; at least one remains. */
    if (json_object_size(vals) < 1 || json_object_size(vals) > MAX_NAMES)
        abort();
    json_decref(j);
    live_payload_free(lp);
    free(rest);
    return 0;
}
