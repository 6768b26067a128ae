// bench/sgemm: the sgemm-implied limit of a layout, for bench/job.sh.
//
// THREADS OpenMP threads each run single-threaded OpenBLAS sgemm [M, K] x [K, N] (the model's
// MLP shape, [T, d] x [d, F]) on their own buffers at the same time, as `ibc run`'s threads
// and ranks each carry whole documents. Prints the aggregate GFLOP/s: the best of REPS rounds
// of 10 calls each, or, with SECONDS > 0, the mean over a window of SECONDS (every thread
// calls until the window ends; all the calls' FLOPs over the wall time until the last one
// returns): the rate a job of that length can sustain, bursts of the machine's load included,
// as a job's own tokens/s includes them (bench/job.sh).
//
//   usage: sgemm [M N K THREADS REPS [SECONDS]]   (default 512 1536 576 2 3: SmolLM-135M, 2 threads)
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
    double best = 1e30, window = argc > 6 ? atof(argv[6]) : 0, t_end = 0;
    int64_t done = 0; // calls in the window, every thread
#pragma omp parallel num_threads(threads)
    {
        omp_set_num_threads(1); // OpenBLAS on this thread alone
        float *a = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)N * K),
              *c = malloc(sizeof(float) * (size_t)M * N);
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
        for (int r = 0; window <= 0 && r <= reps; r++) { // the first round warms up
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
        if (window > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N); // warm
            double t0;
            int64_t mine = 0;
#pragma omp barrier
#pragma omp master
            t_end = bench_now() + window;
#pragma omp barrier
            t0 = t_end - window;
            while (bench_now() < t_end) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
                mine++;
            }
#pragma omp atomic
            done += mine;
#pragma omp barrier
#pragma omp master
            best = bench_now() - t0; // until the last thread's last call returned
        }
        free(a); free(b); free(c);
    }
    if (window > 0)
        printf("sgemm [%d x %d] x [%d x %d], %d threads each single-threaded: %.1f GFLOP/s sustained over %.2f s\n", M,
               K, K, N, threads, 2.0 * M * N * K * (double)done / best / 1e9, best);
    else
        printf("sgemm [%d x %d] x [%d x %d], %d threads each single-threaded: %.1f GFLOP/s\n", M, K, K, N, threads,
               2.0 * M * N * K * calls * threads / best / 1e9);
    return 0;
}
