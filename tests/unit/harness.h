/* A tiny assert harness: TEST(name) functions registered in main with RUN(name); CHECK records a
 * failure with file:line and goes on. Prints "N passed, N failed" last, which ctest's log and CI
 * read, and exits 1 when anything failed. */
#ifndef JWTAUTHZ_TESTS_HARNESS_H
#define JWTAUTHZ_TESTS_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_passed, harness_failed, harness_current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            harness_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            harness_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *ha_ = (a), *hb_ = (b);                                                         \
        if (ha_ == NULL || hb_ == NULL || strcmp(ha_, hb_) != 0) {                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, ha_ ? ha_ : "(null)", hb_ ? hb_ : "(null)");                 \
            harness_current_failed = 1;                                                            \
        }                                                                                          \
    } while (0)

#define TEST(name) static void name(void)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        harness_current_failed = 0;                                                                \
        name();                                                                                    \
        if (harness_current_failed) {                                                              \
            harness_failed++;                                                                      \
            fprintf(stderr, "FAIL %s\n", #name);                                                   \
        } else {                                                                                   \
            harness_passed++;                                                                      \
        }                                                                                          \
    } while (0)

static inline int harness_report(void)
{
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

#endif
