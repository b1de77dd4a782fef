/*
 * check.h - the unit tests' assertions: each failed check prints what was
 * expected and what came, with file and line; check_done() prints the
 * "N passed, N failed" line and gives main's exit code.
 */
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                  \
    } while (0)

#define CHECK_INT(got, want)                                                               \
    do {                                                                                   \
        long long g_ = (long long)(got), w_ = (long long)(want);                           \
        if (g_ == w_) {                                                                    \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__,    \
                    #got, w_, g_);                                                         \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(got, want, tol)                                                         \
    do {                                                                                   \
        double g_ = (double)(got), w_ = (double)(want);                                    \
        if (fabs(g_ - w_) <= (tol)) {                                                      \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s: expected %.17g (+-%g), got %.17g\n", __FILE__,     \
                    __LINE__, #got, w_, (double)(tol), g_);                                \
        }                                                                                  \
    } while (0)

#define CHECK_STR(got, want)                                                               \
    do {                                                                                   \
        const char *g_ = (got), *w_ = (want);                                              \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                             \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s: expected \"%s\", got \"%s\"\n", __FILE__,          \
                    __LINE__, #got, w_ ? w_ : "(null)", g_ ? g_ : "(null)");               \
        }                                                                                  \
    } while (0)

/* The string 'hay' contains 'needle'. */
#define CHECK_CONTAINS(hay, needle)                                                        \
    do {                                                                                   \
        const char *h_ = (hay), *n_ = (needle);                                            \
        if (h_ && strstr(h_, n_)) {                                                        \
            check_passed++;                                                                \
        } else {                                                                           \
            check_failed++;                                                                \
            fprintf(stderr, "%s:%d: %s: expected to contain \"%s\", got \"%s\"\n",         \
                    __FILE__, __LINE__, #hay, n_, h_ ? h_ : "(null)");                     \
        }                                                                                  \
    } while (0)

/* xorshift64*: a fixed-seed pseudo-random sequence, the same on every run,
 * for tests that sweep many generated inputs. *state must not be 0. */
static inline uint64_t check_rand64(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dULL;
}

static inline int check_done(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}
