/* test_util.h — the tiny assertion kit every ctest in tests/ uses.
 *
 * CHECK records a failure with file:line and a message and goes on, so that
 * one run reports every broken case; test_finish() prints a summary line and
 * returns the process exit status (0 pass, 1 fail).  Paths to the source tree,
 * the build tree and the extracted bundled models come from the build as
 * ARMO_SOURCE_DIR / ARMO_BINARY_DIR / ARMO_MODELS_DIR. */
#ifndef ARMO_TEST_UTIL_H
#define ARMO_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int g_test_checks, g_test_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        g_test_checks++;                                                        \
        if (!(cond)) {                                                          \
            g_test_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* |a - b| <= tol * max(|b|, floor_) — relative error with an absolute floor. */
static inline int test_close(double a, double b, double tol, double floor_) {
    double s = fabs(b) > floor_ ? fabs(b) : floor_;
    return fabs(a - b) <= tol * s && a == a;
}

/* 1 if haystack contains needle (for asserting error messages). */
static inline int test_contains(const char *haystack, const char *needle) {
    return haystack && needle && strstr(haystack, needle) != NULL;
}

/* Reads at most len - 1 bytes of path into buf, NUL-terminated ("" when the
 * file cannot be read); returns the byte count. */
static inline size_t test_read_file(const char *path, char *buf, size_t len) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
    return n;
}

static inline int test_finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, g_test_checks, g_test_failures);
    return g_test_failures ? 1 : 0;
}

#endif
