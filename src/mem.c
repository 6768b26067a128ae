#include "ibc/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mem_fail_fn g_fail;
static int g_rank;
static long long g_fail_at = -1, g_count; // IBC_FAIL_ALLOC: the allocation that fails

void mem_set_fail_handler(mem_fail_fn fn) { g_fail = fn; }
void mem_set_rank(int rank) { g_rank = rank; }

static void print_count(void) { fprintf(stderr, "ibc: rank %d: allocations: %lld\n", g_rank, g_count); }

// IBC_FAIL_ALLOC=N fails the N-th allocation; IBC_FAIL_ALLOC=count prints how many there were
// at exit (so a test can spread a sweep over them).
static void fail_init(void) {
    const char *s = getenv("IBC_FAIL_ALLOC");
    g_fail_at = s && atoll(s) > 0 ? atoll(s) : 0;
    if (s && !strcmp(s, "count")) atexit(print_count);
}

// Inline: every allocation of the tokenizer's hot loops passes here (the environment is read
// once, out of line).
static inline int injected(void) {
    if (g_fail_at < 0) fail_init();
    g_count++;
    return g_fail_at > 0 && g_count == g_fail_at;
}

static void die(size_t n, const char *file, int line) {
    char msg[256];
    snprintf(msg, sizeof msg, "ibc: rank %d: out of memory: %zu bytes at %s:%d", g_rank, n, file, line);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    if (g_fail) g_fail(msg);
    exit(1);
}

void *mem_malloc(size_t n, const char *file, int line) {
    void *p = injected() ? NULL : malloc(n ? n : 1);
    if (!p) die(n, file, line);
    return p;
}

void *mem_calloc(size_t k, size_t n, const char *file, int line) {
    if (n && k > (size_t)-1 / n) die((size_t)-1, file, line);
    void *p = injected() ? NULL : calloc(k ? k : 1, n ? n : 1);
    if (!p) die(k * n, file, line);
    return p;
}

void *mem_realloc(void *p, size_t n, const char *file, int line) {
    void *q = injected() ? NULL : realloc(p, n ? n : 1);
    if (!q) die(n, file, line);
    return q;
}

char *mem_strdup(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = mem_malloc(n, file, line);
    memcpy(d, s, n);
    return d;
}

void mem_grow(void **p, size_t size, size_t *cap, size_t need, const char *file, int line) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > (size_t)-1 / 2 / size) die((size_t)-1, file, line);
        c *= 2;
    }
    *p = mem_realloc(*p, c * size, file, line);
    *cap = c;
}
