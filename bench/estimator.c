// bench/estimator: the estimator and all label bookkeeping against the forward pass.
//
// Issue 4 §8: 8 label sets (X1..X4, Y1..Y4), d 576, n 100, T 512, and 31 hidden states per
// token (SmolLM-135M: 30 layers + embeddings). Tokens follow a Zipf(1.1) law over 49152 ids,
// so label tables grow as on real text; hidden states are random (the estimator's cost does
// not depend on their values). The forward pass of the SmolLM-135M-shaped random checkpoint
// is timed in the same run, at the same thread count, and the ratio of token rates printed.
//
//   usage: estimator [TMPDIR] [DOCS]
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/ckpt.h"
#include "ibc/limits.h"
#include "ibc/mem.h"
#include "ibc/model.h"
#include "ibc/rng.h"
#include "ibc/softent.h"

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    const char *tmp = argc > 1 ? argv[1] : "/tmp";
    int docs = argc > 2 ? atoi(argv[2]) : 40;
    model_config c = bench_smollm();
    int T = 512, n = 100, d = c.d, L = c.n_layers + 1;
    zipf z = zipf_make(c.vocab, 1.1);
    rng r;
    rng_seed(&r, 1);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)docs * T);
    for (size_t i = 0; i < (size_t)docs * T; i++) ids[i] = zipf_draw(&z, &r);
    float *h = xmalloc(sizeof(float) * (size_t)T * d), *W = xmalloc(sizeof(float) * (size_t)n * d);
    for (size_t i = 0; i < (size_t)T * d; i++) h[i] = (float)rng_normal(&r);
    se_anchors(n, d, 0, W);
    double eps;
    ibc_err e = {0};
    se_eps_bound(n, d, &eps, &e);

    char dir[IBC_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ibc-bench-estimator-smollm", tmp);
    if (ckpt_write_random(dir, &c, 1, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    model m;
    if (model_load(dir, &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }

    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
        double t0 = bench_now();
        int fwd_docs = 3;
        for (int i = 0; i < fwd_docs; i++)
            if (model_forward(&m, ids + (size_t)i * T, T, NULL, NULL, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
        double fwd_rate = fwd_docs * T / (bench_now() - t0);

        for (int precount = 1; precount >= 0; precount--) {
        se_acc acc;
        se_acc_init(&acc, n, d, L, 0xf, 0, &e);
        t0 = bench_now();
        if (precount) { // the label pass is part of the cost
            for (int i = 0; i < docs; i++) se_precount_doc(&acc, ids + (size_t)i * T, T, -1, &e);
            se_precount_done(&acc, &e);
        }
        for (int i = 0; i < docs; i++) {
            if (se_doc_begin(&acc, ids + (size_t)i * T, T, -1, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            for (int l = 0; l < L; l++) se_doc_layer(&acc, l, W, eps, h, T);
        }
        se_result res;
        se_result_compute(&acc, &res, &e); // the final entropies are part of the cost
        double est_rate = (double)docs * T / (bench_now() - t0);
        int64_t labels = 0, rows = 0;
        for (int s = 0; s < acc.n_sets; s++) labels += acc.tables[s].n_labels, rows += acc.tables[s].n_rows;
        printf("threads=%d  %-9s forward %6.0f tokens/s  estimator %8.0f tokens/s  ratio %5.1f  "
               "(%d docs, %lld labels, %lld with rows)\n", threads, precount ? "precount" : "streaming",
               fwd_rate, est_rate, est_rate / fwd_rate, docs, (long long)labels, (long long)rows);
        se_result_free(&res);
        se_acc_free(&acc);
        }
    }
    model_free(&m);
    char cmd[IBC_CMD_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
