// bench/sgemm: the sgemm-implied limit of a layout, for bench/job.sh.
//
// THREADS OpenMP threads each run single-threaded OpenBLAS sgemm [M, K] x [K, N] (the model's
// MLP shape, [T, d] x [d, F]) on their own buffers at the same time, as `ibc run`'s threads
// and ranks each carry whole documents. Prints the aggregate GFLOP/s (best of REPS).
//
//   usage: sgemm [M N K THREADS REPS]   (default 512 1536 576 2 3: SmolLM-135M, 2 threads)
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "ibc/blas.h"

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    int M = argc > 4 ? atoi(argv[1]) : 512, N = argc > 4 ? atoi(argv[2]) : 1536, K = argc > 4 ? atoi(argv[3]) : 576;
    int threads = argc > 4 ? atoi(argv[4]) : 2, reps = argc > 5 ? atoi(argv[5]) : 3, calls = 10;
    double best = 1e30;
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1); // OpenBLAS on this thread alone
        float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N * K),
              *c = malloc(sizeof(float) * (size_t)M * N);
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
        for (int r = 0; r <= reps; r++) { // the first round warms up
            double t0;
#pragma omp barrier
#pragma omp master
            t0 = bench_now();
            for (int k = 0; k < calls; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
#pragma omp barrier
#pragma omp master
            if (r && bench_now() - t0 < best) best = bench_now() - t0;
        }
        free(a); free(b); free(c);
    }
    printf("sgemm [%d x %d] x [%d x %d], %d threads each single-threaded: %.1f GFLOP/s\n", M, K, K, N, threads,
           2.0 * M * N * K * calls * threads / best / 1e9);
    return 0;
}
