// bench/attention: kern_attention_forward alone at paper-scale shapes, the forward pass's
// layout (no P: a kv group's query heads stacked per block), T = 512, 1 thread.
//
// SmolLM-135M (9 heads, 3 kv heads) and Pythia-160M (12 heads, 12 kv heads), D = 64: the best
// of 40 calls per round, ROUNDS rounds; useful GFLOP/s counts q.k and p.v over the causal
// triangle. The block size is a build-time constant, so block sizes are compared by building
// this bench once per size (docs/performance.md has the commands):
//   make BUILD=build-b128 OPT="-O2 -DKERN_ATT_BLOCK=128" build-b128/bench/attention
// Run with OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (ibc's threads call OpenBLAS single-threaded).
// On a CPU where the forward pass runs ibc's own attention products (kern_attention_own), each
// shape is timed with them and then with OpenBLAS's, in turn: their ratio is from one run.
//
//   usage: attention [ROUNDS]   (default 3)
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/kernels.h"

static double best_ms(int H, int KV) {
    int T = 512, D = 64, ld = (H + 2 * KV) * D;
    float *qkv = malloc(sizeof(float) * (size_t)T * ld), *out = malloc(sizeof(float) * (size_t)T * H * D);
    for (size_t i = 0; i < (size_t)T * ld; i++) qkv[i] = (float)((int)(i * 7 % 13) - 6) * 0.05f;
    kern_att_shape as = {T, H, KV, D, 0};
    float *sc = malloc(sizeof(float) * kern_attention_scratch(&as));
    double best = 1e30;
    for (int r = 0; r < 41; r++) { // call 0 warms up
        double t = bench_now();
        kern_attention_forward(out, H * D, qkv, ld, qkv + H * D, ld, qkv + (H + KV) * D, ld, &as, NULL, sc);
        t = bench_now() - t;
        if (r && t < best) best = t;
    }
    free(qkv); free(out); free(sc);
    return best * 1e3;
}

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    omp_set_num_threads(1);
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    const struct { const char *name; int H, KV; } shapes[] = {{"smollm-135m", 9, 3}, {"pythia-160m", 12, 12}};
    int own = kern_attention_own(64);
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < 2; s++)
            for (int blas = !own; blas <= 1; blas++) { // the own products (if this CPU runs them), then OpenBLAS's
                kern_attention_use_blas(blas);
                double ms = best_ms(shapes[s].H, shapes[s].KV), fl = 4.0 * shapes[s].H * 64 * 512 * 513 / 2;
                printf("%-12s block %d %-8s %.3f ms  %.1f useful GFLOP/s\n", shapes[s].name, KERN_ATT_BLOCK,
                       blas ? "OpenBLAS" : "own", ms, fl / ms / 1e6);
            }
    return 0;
}
