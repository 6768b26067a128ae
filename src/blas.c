// blas: OpenBLAS's kernels checked against the CPU (include/ibc/blas.h).
#include "ibc/blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

// OpenBLAS cores whose sgemm uses AVX2 + FMA or AVX-512 (names as openblas_get_corename gives).
static const char *const VECTOR_CORES[] = {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen"};

const char *blas_better_core(const char *chosen, int avx512, int avx2fma) {
    for (size_t i = 0; i < sizeof VECTOR_CORES / sizeof *VECTOR_CORES; i++)
        if (chosen && strcasecmp(chosen, VECTOR_CORES[i]) == 0) return NULL;
    if (avx512) return "SkylakeX";
    if (avx2fma) return "Haswell";
    return NULL;
}

void blas_select(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("IBC_BLAS_DETECTED")) return; // the user's, or done
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    int avx2fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char *chosen = openblas_get_corename();
    const char *core = blas_better_core(chosen, avx512, avx2fma);
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("IBC_BLAS_DETECTED", chosen ? chosen : "unknown", 1);
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); // exec failed: this image keeps OpenBLAS's own choice
    unsetenv("IBC_BLAS_DETECTED");
}

void blas_describe(char *buf, size_t cap) {
    const char *core = openblas_get_corename(), *first = getenv("IBC_BLAS_DETECTED");
    char version[64] = "OpenBLAS";
    const char *cfg = openblas_get_config(); // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."
    if (cfg && strncmp(cfg, "OpenBLAS ", 9) == 0) {
        size_t n = strcspn(cfg + 9, " ");
        snprintf(version, sizeof version, "OpenBLAS %.*s", (int)(n < 32 ? n : 32), cfg + 9);
    }
    if (first && strcasecmp(first, core ? core : "") != 0)
        snprintf(buf, cap, "%s %s (set by ibc: OpenBLAS's own detection gave %s)", version, core, first);
    else
        snprintf(buf, cap, "%s %s", version, core ? core : "unknown");
}
