// bench/mlp: the MLP block of one unit through ibc's own kernels, 1 thread, at the
// SmolLM-135M shape: up and gate [R, d] x [d, 2F] (kern_linear_forward), SwiGLU
// (kern_glu_forward), down [R, F] x [F, d] added into the residual stream (kern_linear_add).
//
// Each call takes the next of LAYERS weight sets in turn: LAYERS = 1 keeps one layer's
// weights in cache, LAYERS = 30 reads all 30 layers' MLP weights (318 MB) as a forward pass
// does. bench/cores.sh runs it alone and as two copies at once, to see what a second busy core
// costs these products (docs/performance.md, "One core against two").
//
//   usage: mlp [R] [CALLS] [LAYERS]     (defaults 1024 rows, 40 calls, 1 set)
//   prints: best and mean ms per call after the first, and GFLOP/s at the best and the mean
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/kernels.h"

static float *filled(size_t n, float scale, uint64_t seed) {
    float *p = malloc(sizeof(float) * n);
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = (float)(scale * rng_normal(&r));
    return p;
}

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    omp_set_num_threads(1);
    model_config c = bench_smollm();
    int R = argc > 1 ? atoi(argv[1]) : 1024, calls = argc > 2 ? atoi(argv[2]) : 40, NL = argc > 3 ? atoi(argv[3]) : 1;
    int d = c.d, F = c.d_ff;
    if (R < 1 || calls < 2 || NL < 1) { fprintf(stderr, "usage: mlp [R] [CALLS>=2] [LAYERS]\n"); return 2; }
    float *xn = filled((size_t)R * d, 1.0, 1), *x = filled((size_t)R * d, 1.0, 2);
    float *up = malloc(sizeof(float) * (size_t)R * 2 * F);
    float **Wup = malloc(sizeof(float *) * NL), **Wdown = malloc(sizeof(float *) * NL);
    for (int l = 0; l < NL; l++) { // [2F, d] and [d, F], nn.Linear's [out, in]
        Wup[l] = filled((size_t)2 * F * d, 0.04, 10 + 2 * l);
        Wdown[l] = filled((size_t)d * F, 0.025, 11 + 2 * l);
    }
    double best = 1e30, sum = 0;
    for (int k = 0; k < calls; k++) { // call 0 warms up
        int l = k % NL;
        double t = bench_now();
        kern_linear_forward(up, xn, d, Wup[l], KERN_W_OUT_IN, NULL, R, d, 2 * F);
        kern_glu_forward(up, 2 * F, up, up + F, 2 * F, R, F, ACT_SILU);
        kern_linear_add(x, up, 2 * F, Wdown[l], KERN_W_OUT_IN, NULL, R, F, d);
        t = bench_now() - t;
        if (k) { best = t < best ? t : best; sum += t; }
    }
    double mean = sum / (calls - 1), fl = 2.0 * R * d * 2 * F + 2.0 * R * F * d;
    printf("mlp R %d layers %d: best %.2f ms (%.1f GFLOP/s), mean %.2f ms (%.1f GFLOP/s)\n", R, NL, best * 1e3,
           fl / best / 1e9, mean * 1e3, fl / mean / 1e9);
    for (int l = 0; l < NL; l++) { free(Wup[l]); free(Wdown[l]); }
    free(Wup); free(Wdown); free(up); free(xn); free(x);
    return 0;
}
