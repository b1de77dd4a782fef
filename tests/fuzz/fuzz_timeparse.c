/*
 * fuzz_timeparse.c - libFuzzer target for common/timeparse.c, the parser of
 * every timestamp a person types: the first byte picks the local zone (one
 * without DST, two with, one with a half-hour offset, UTC), the rest is the
 * text, any bytes. Invariants: only the documented errors, *ret_ms untouched
 * on failure; a success lies in 1..TIMEPARSE_MAX_MS, had no NUL byte, gives
 * the same instant from a NUL-terminated copy, and reads back from
 * timeparse_format's text (with milliseconds; without them, cut to the
 * second, from 1 s on).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeparse.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const zones[] = {"Asia/Shanghai", "Europe/Berlin", "America/St_Johns",
                                        "UTC"};
    static int zone = -1;
    if (size == 0)
        return 0;
    if (zone != data[0] % 4) {
        zone = data[0] % 4;
        setenv("TZ", zones[zone], 1);
        tzset();
    }
    const char *s = (const char *)data + 1;
    size_t len = size - 1;

    int64_t ms = -7;
    int r = timeparse_mem(s, len, &ms);
    if (r != 0 && r != -EINVAL && r != -ERANGE && r != -ENOENT)
        abort();
    if (r != 0) {
        if (ms != -7)
            abort();
        return 0;
    }
    if (ms < 1 || ms > TIMEPARSE_MAX_MS || memchr(s, '\0', len))
        abort();

    char *copy = malloc(len + 1);
    if (!copy)
        abort();
    memcpy(copy, s, len);
    copy[len] = '\0';
    int64_t again = -7;
    if (timeparse(copy, &again) != 0 || again != ms)
        abort();
    free(copy);

    char buf[64];
    int64_t back = -7;
    if (timeparse(timeparse_format(ms, true, buf, sizeof(buf)), &back) != 0 || back != ms)
        abort();
    /* Cut to the second; instant 0 is refused by design. */
    if (ms >= 1000 && (timeparse(timeparse_format(ms, false, buf, sizeof(buf)), &back) != 0 ||
                       back != ms - ms % 1000))
        abort();
    return 0;
}
