// lanes: what the elementwise loops of the kernels and the estimator share (private to src/):
// vector calls of libm, functions compiled for several vector widths, and reductions whose
// rounding depends only on the length of what they reduce.
//
// Why a fixed grouping: a serial sum waits on the latency of every add, and a compiler's own
// vectorised reduction groups elements by where the loop starts in memory; a sum in explicit
// lanes (lane l takes elements l, l + LANES, ...; the lanes then added in a fixed tree) is a
// vector add per step and the same bits whatever the address, thread or rank.
#ifndef IBC_LANES_H
#define IBC_LANES_H

#include <math.h>

// glibc's vector math library (libmvec, linked with -lmvec): with these declarations a
// `#pragma omp simd` loop calls expf, erff, tanhf and log a vector at a time (_ZGVb/_ZGVd/_ZGVe
// variants for SSE4, AVX2, AVX-512). A lane is the same function of its input wherever it runs,
// within 1 ULP of the scalar call; a loop's tail past the last full vector may take a narrower
// variant or the scalar call, which depends on the loop's length only.
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float erff(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
double log(double);

// A function marked LANES_WIDE is compiled three times (the x86-64 baseline's SSE2, AVX2,
// AVX-512) and the loader picks the widest the CPU has (GCC target_clones: an ifunc, resolved
// once). -std=c17 keeps -ffp-contract=off, so a clone's arithmetic is the baseline's bit for
// bit; only libmvec's variants may differ in the last place between clones, that is between
// CPUs, never between layouts on one machine. An OpenMP region's outlined body is not cloned:
// the loops stay in row functions that the region calls. noinline: GCC's early inliner would
// otherwise paste the baseline body into a caller of the same file before the clones exist.
// Building with -DIBC_NO_CLONES (make OPT="-O2 -g -DIBC_NO_CLONES") keeps the baseline only:
// slower, and libmvec's SSE variants on every x86-64 CPU.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(IBC_NO_CLONES)
#define LANES_WIDE __attribute__((target_clones("default", "avx2", "avx512f"), noinline))
#else
#define LANES_WIDE
#endif

#define LANES_F 16 // f32 lanes: one AVX-512 register
#define LANES_D 8  // f64 lanes

// Sum of x[0..n).
static inline float lanes_sum(const float *x, int n) {
    float acc[LANES_F] = {0};
    int j = 0;
    for (; j + LANES_F <= n; j += LANES_F)
        for (int l = 0; l < LANES_F; l++) acc[l] += x[j + l];
    for (int l = 0; j + l < n; l++) acc[l] += x[j + l];
    for (int w = LANES_F / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

// Maximum of x[0..n), n >= 1 (exact in any order; the lanes make it vector compares).
static inline float lanes_max(const float *x, int n) {
    float acc[LANES_F];
    for (int l = 0; l < LANES_F; l++) acc[l] = -INFINITY;
    int j = 0;
    for (; j + LANES_F <= n; j += LANES_F)
        for (int l = 0; l < LANES_F; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    for (int l = 0; j + l < n; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
    for (int w = LANES_F / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) acc[l] = acc[l + w] > acc[l] ? acc[l + w] : acc[l];
    return acc[0];
}

// The LANES_D partial sums acc added in the fixed tree (acc is overwritten).
static inline double lanes_dfold(double *acc) {
    for (int w = LANES_D / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

// Sum over x[0..n) of (x_i - mu)^p, p 1 or 2, in double.
static inline double lanes_dsum(const float *x, int n, double mu, int p) {
    double acc[LANES_D] = {0};
    int j = 0;
    for (; j + LANES_D <= n; j += LANES_D)
        if (p == 2)
            for (int l = 0; l < LANES_D; l++) acc[l] += ((double)x[j + l] - mu) * ((double)x[j + l] - mu);
        else
            for (int l = 0; l < LANES_D; l++) acc[l] += (double)x[j + l] - mu;
    for (int l = 0; j + l < n; l++) {
        double v = x[j + l] - mu;
        acc[l] += p == 2 ? v * v : v;
    }
    return lanes_dfold(acc);
}

#endif
