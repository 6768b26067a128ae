// blas: which OpenBLAS kernels this process runs.
//
// Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels once, when the library loads,
// from the CPU's family and model. A CPU newer than the library (e.g. Emerald Rapids, family 6
// model 207) is not in its table and gets the generic "Prescott" kernels: SSE3, no FMA, ~6x
// slower sgemm than the AVX-512 kernels the same CPU runs (bench/sgemm on this project's
// machine). Cluster nodes are often newer than the distribution's BLAS, so ibc checks.
//
// blas_select, the first call of main() (before MPI_Init, threads or any allocation): when
// OpenBLAS chose a core without AVX2 kernels but the CPU (and the OS, as libgcc's
// __builtin_cpu_supports checks) has AVX-512 F/BW/DQ/VL or AVX2 + FMA, it sets
// OPENBLAS_CORETYPE to SkylakeX or Haswell and re-executes /proc/self/exe with the same
// arguments, so the library loads again with those kernels. It never overrides a user's own
// OPENBLAS_CORETYPE, runs at most once (IBC_BLAS_DETECTED marks the second image and keeps
// what OpenBLAS first chose, for blas_describe), and when the exec fails the process goes on
// with OpenBLAS's own choice. Not collective: every rank does it alone, before MPI exists.
//
// The kernels change the bits of every product (another summation order, FMA), not their
// accuracy; results stay identical across ranks and threads of one job because every rank of a
// node runs the same choice. blas_describe names the kernels in the manifest.
#ifndef IBC_BLAS_H
#define IBC_BLAS_H

#include <stddef.h>

// Returns only when this image keeps its kernels (see above).
void blas_select(char **argv);

// The core OpenBLAS should be given instead of its own choice `chosen`, or NULL to keep it.
// Pure: tests call it with any name; avx512 / avx2fma say what the CPU supports.
const char *blas_better_core(const char *chosen, int avx512, int avx2fma);

// One line for logs and the manifest, e.g. "OpenBLAS 0.3.21 SkylakeX (set by ibc: OpenBLAS's
// own detection gave Prescott)" or "OpenBLAS 0.3.21 Haswell".
void blas_describe(char *buf, size_t cap);

#endif
