// Helpers shared by the unit tests: where the fixtures are, reading raw arrays, comparing.
#ifndef IBC_TESTUTIL_H
#define IBC_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

// Test paths are short temp names; truncation warnings on them are noise.
#pragma GCC diagnostic ignored "-Wformat-truncation"

// The shared fixtures: $IBC_FIXTURES, else ../shared/fixtures from the project root (tests run
// from there). NULL when absent; tests then skip with a visible message, never pass.
static inline const char *fx_dir(void) {
    const char *e = getenv("IBC_FIXTURES");
    const char *d = e && *e ? e : "../shared/fixtures";
    return access(d, R_OK) == 0 ? d : NULL;
}

// path = fixtures/rel, or skip the test when the fixtures are absent.
#define FX_PATH(buf, rel)                                                                   \
    do {                                                                                    \
        const char *fx_ = fx_dir();                                                         \
        if (!fx_) {                                                                         \
            print_message("SKIP: fixtures folder absent (set IBC_FIXTURES): %s\n", rel);   \
            skip();                                                                         \
        }                                                                                   \
        snprintf(buf, sizeof buf, "%s/%s", fx_, rel);                                       \
    } while (0)

// Reads a whole binary file; fails the test if it cannot.
static inline void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static inline float max_abs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i]));
    return m;
}

static inline float max_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

// A scratch folder under $TMPDIR for one test, created fresh.
static inline void tmp_dir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "%s/ibc-test-%s-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag, (int)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) fail_msg("cannot create %s", buf);
}

#endif
