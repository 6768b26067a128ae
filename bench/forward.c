// bench/forward: the forward pass at paper-scale shapes against OpenBLAS sgemm, in one run.
//
// Writes random-weight checkpoints with ibc's own writer (ckpt_write_random) at the shapes of
// SmolLM-135M (llama: d 576, 30 layers, 9 heads, 3 kv heads, F 1536, vocab 49152, tied) and
// Pythia-160M (gpt_neox: d 768, 12 layers, 12 heads, F 3072, vocab 50304), then runs T = 512
// on 1 and 2 threads. Reports tokens/s, achieved GFLOP/s (useful FLOPs: projections + causal
// attention; no logits, as `ibc run` computes none) and the ratio to sgemm's GFLOP/s measured
// on the model's own MLP shape [T, d] x [d, F] in the same process, same thread count.
//
//   usage: forward [TMPDIR] [REPS]
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/ckpt.h"
#include "ibc/model.h"
#include "ibc/plan.h"

// Useful FLOPs of one T-token pass: 2 per multiply-add of every projection, plus q.k and p.v
// over the causal triangle (T(T+1)/2 pairs per head); the count `ibc plan` uses.
static double forward_flops(const model_config *c, int T) { return plan_forward_flops(c, c->n_layers, T, T * (T + 1) / 2.0); }

static double sgemm_gflops(int M, int N, int K, int reps) {
    float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N * K),
          *c = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { // first run warms up
        double t0 = bench_now();
        for (int k = 0; k < 10; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double dt = (bench_now() - t0) / 10;
        if (r && dt < best) best = dt;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

static void bench(const char *name, const model_config *c, const char *tmp, int reps) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ibc-bench-%s", tmp, name);
    ibc_err e = {0};
    double t0 = bench_now();
    if (ckpt_write_random(dir, c, 1, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    model m;
    if (model_load(dir, &m, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    fprintf(stderr, "%s: wrote and loaded %.0fM parameters in %.1fs\n", name, m.n_params / 1e6, bench_now() - t0);
    int T = 512;
    int32_t *ids = malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) ids[t] = (t * 7919) % c->vocab;
    double fl = forward_flops(&m.c, T);
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
        double peak = sgemm_gflops(T, c->d_ff, c->d, reps);
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            double s = bench_now();
            if (model_forward(&m, ids, T, NULL, NULL, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
            double dt = bench_now() - s;
            if (r && dt < best) best = dt;
        }
        double gf = fl / best / 1e9;
        printf("%-12s T=%d threads=%d  %8.0f tokens/s  %6.1f GFLOP/s  sgemm %6.1f GFLOP/s  ratio %.2f\n",
               name, T, threads, T / best, gf, peak, gf / peak);
    }
    free(ids);
    model_free(&m);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    const char *tmp = argc > 1 ? argv[1] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    model_config smol = bench_smollm(), pythia = bench_pythia();
    bench("smollm-135m", &smol, tmp, reps);
    bench("pythia-160m", &pythia, tmp, reps);
    return 0;
}
