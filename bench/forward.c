// bench/forward: the forward pass at paper-scale shapes against OpenBLAS sgemm, in one run.
//
// Writes random-weight checkpoints with ibc's own writer (ckpt_write_random) at the shapes of
// SmolLM-135M (llama: d 576, 30 layers, 9 heads, 3 kv heads, F 1536, vocab 49152, tied) and
// Pythia-160M (gpt_neox: d 768, 12 layers, 12 heads, F 3072, vocab 50304), then runs T = 512
// on 1 and 2 threads (model_forward: one document, the kernels split over the threads), and
// two documents of 512 as one unit on 1 thread (model_forward_docs: how `ibc run`'s threads
// each carry a unit at the default unit_rows = 1024). Reports tokens/s, achieved GFLOP/s
// (useful FLOPs: projections + causal attention; no logits, as `ibc run` computes none) and
// the ratio to sgemm's GFLOP/s measured on the model's own MLP shape [T, d] x [d, F] in the
// same process, same thread count.
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

// Operands of the reference sgemm [M, K] x [K, N] (B stored [N, K], as ibc's weights).
typedef struct {
    int M, N, K;
    float *a, *b, *c;
} ref_gemm;

static void ref_init(ref_gemm *g, int M, int N, int K) {
    *g = (ref_gemm){M, N, K, malloc(sizeof(float) * (size_t)M * K), malloc(sizeof(float) * (size_t)N * K),
                    malloc(sizeof(float) * (size_t)M * N)};
    for (size_t i = 0; i < (size_t)M * K; i++) g->a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)N * K; i++) g->b[i] = (float)(i % 5) * 0.1f;
}

static void ref_free(ref_gemm *g) { free(g->a); free(g->b); free(g->c); }

// Seconds per sgemm, the mean of 10 calls.
static double ref_time(const ref_gemm *g) {
    double t0 = bench_now();
    for (int k = 0; k < 10; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->K,
                    0.0f, g->c, g->N);
    return (bench_now() - t0) / 10;
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
    int32_t *ids = malloc(sizeof(int32_t) * 2 * T);
    for (int t = 0; t < 2 * T; t++) ids[t] = (t * 7919) % c->vocab;
    model_doc unit[2] = {{ids, T, 0}, {ids + T, T, 1}};
    double fl = forward_flops(&m.c, T);
    for (int run = 0; run < 3; run++) { // 1 thread, 2 threads, a unit of two on 1 thread
        int threads = run == 1 ? 2 : 1, docs = run == 2 ? 2 : 1;
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
        // The reference sgemm and the forward pass alternate, best of each over the rounds:
        // both see the same machine (a drift or a neighbour's burst touches both alike).
        ref_gemm g;
        ref_init(&g, T, c->d_ff, c->d);
        double best = 1e30, gbest = 1e30;
        for (int r = 0; r < reps + 1; r++) { // round 0 warms up
            double dg = ref_time(&g), s = bench_now();
            if (docs == 1 ? model_forward(&m, ids, T, NULL, NULL, NULL, &e)
                          : model_forward_docs(&m, unit, 2, m.c.n_layers, NULL, NULL, NULL, &e)) {
                fprintf(stderr, "%s\n", e.msg);
                exit(1);
            }
            double dt = bench_now() - s;
            if (r && dt < best) best = dt;
            if (r && dg < gbest) gbest = dg;
        }
        ref_free(&g);
        double peak = 2.0 * T * c->d_ff * c->d / gbest / 1e9;
        double gf = docs * fl / best / 1e9;
        printf("%-12s T=%d%s threads=%d  %8.0f tokens/s  %6.1f GFLOP/s  sgemm %6.1f GFLOP/s  ratio %.2f\n",
               name, T, docs == 2 ? "x2 (one unit)" : "", threads, docs * T / best, gf, peak, gf / peak);
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
