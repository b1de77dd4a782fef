/*
 * util.h - small helpers shared by every module: the allocation policy,
 * clocks and string helpers.
 *
 * Allocation policy (one for the whole daemon): x* allocators abort the
 * process with a log line when memory is exhausted. A gateway that cannot
 * allocate a few hundred bytes cannot do anything useful, and checking every
 * allocation would bury the real error paths. Buffers that input can grow are
 * bounded by the callers instead.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED(x) ((void)(x))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array to at least 'need' elements of 'size' bytes, doubling. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic time in milliseconds, for scheduling and timeouts. */
int64_t now_mono_ms(void);
/* Wall-clock time in milliseconds since the Unix epoch, for timestamps. */
int64_t now_real_ms(void);
/* The CLOCK_MONOTONIC time 'ms' from now, as pthread_cond_timedwait wants
 * it (for condition variables made with pthread_condattr_setclock). */
struct timespec mono_deadline(int64_t ms);
/* Sleeps for ms milliseconds (EINTR restarts with the remaining time). */
void sleep_ms(int64_t ms);

/* strtol/strtod wrappers: the whole string must be a number. 0 or -EINVAL/-ERANGE. */
int parse_int64(const char *s, int64_t *ret);
int parse_double(const char *s, double *ret);

/* Writes all of buf to fd, retrying short writes and EINTR. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
