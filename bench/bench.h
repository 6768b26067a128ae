// Shared by the benchmarks: a monotonic clock and the paper-scale model shapes.
#ifndef IBC_BENCH_H
#define IBC_BENCH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "ibc/config.h"
#include "ibc/rng.h"

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// SmolLM-135M: llama, d 576, 30 layers, 9 heads, 3 kv heads, F 1536, vocab 49152, tied.
static inline model_config bench_smollm(void) {
    model_config c = {.arch = ARCH_LLAMA, .d = 576, .n_layers = 30, .n_heads = 9, .n_kv_heads = 3,
                      .head_dim = 64, .d_ff = 1536, .vocab = 49152, .norm_eps = 1e-5f,
                      .rope_theta = 10000, .rot_dim = 64, .tied = 1, .gated_mlp = 1, .max_pos = 2048};
    return c;
}

// Pythia-160M: gpt_neox, d 768, 12 layers, 12 heads, F 3072, vocab 50304, untied.
static inline model_config bench_pythia(void) {
    model_config c = {.arch = ARCH_GPT_NEOX, .d = 768, .n_layers = 12, .n_heads = 12, .n_kv_heads = 12,
                      .head_dim = 64, .d_ff = 3072, .vocab = 50304, .norm_eps = 1e-5f,
                      .rope_theta = 10000, .rot_dim = 16, .parallel_residual = 1, .max_pos = 2048};
    return c;
}

// Zipf(s) sampler over [0, V) by inverse CDF on a precomputed table.
typedef struct { double *cdf; int V; } zipf;

static inline zipf zipf_make(int V, double s) {
    zipf z = {malloc(sizeof(double) * (size_t)V), V};
    double tot = 0;
    for (int i = 0; i < V; i++) tot += pow(i + 1, -s);
    double acc = 0;
    for (int i = 0; i < V; i++) z.cdf[i] = (acc += pow(i + 1, -s) / tot);
    return z;
}

static inline int32_t zipf_draw(const zipf *z, rng *r) {
    double u = rng_uniform(r);
    int lo = 0, hi = z->V - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cdf[mid] < u) lo = mid + 1; else hi = mid;
    }
    return lo;
}

#endif
