// bench/stacked: the forward pass of DOCS documents of 512 ids on 1 thread, each alone (one
// unit each) or stacked as one unit (model_forward_docs, model_doc.join): what a unit saves
// on packing the weights, at the SmolLM-135M shape. Without CKPT it writes a random-weight
// checkpoint to TMPDIR and removes it after; with CKPT (say from `ibc random-checkpoint`) the
// process does nothing but forward passes, so that a profile of MODE alone is clean:
//   perf record -e cpu-clock build/bench/stacked /tmp/smol 6 2 unit
// Prints the best tokens/s of REPS passes per mode; MODE both alternates the two.
//
//   usage: stacked [CKPT|-] [REPS] [DOCS] [alone|unit|both]   (default - 5 2 both)
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/ckpt.h"
#include "ibc/model.h"

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    const char *ck = argc > 1 ? argv[1] : "-", *mode = argc > 4 ? argv[4] : "both";
    int reps = argc > 2 ? atoi(argv[2]) : 5, n = argc > 3 ? atoi(argv[3]) : 2, T = 512;
    char dir[4096];
    ibc_err e = {0};
    if (!strcmp(ck, "-")) {
        snprintf(dir, sizeof dir, "%s/ibc-bench-stacked", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        model_config c = bench_smollm();
        if (ckpt_write_random(dir, &c, 1, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    } else {
        snprintf(dir, sizeof dir, "%s", ck);
    }
    model m;
    if (model_load(dir, &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T * n);
    model_doc *docs = malloc(sizeof(model_doc) * (size_t)n);
    for (int t = 0; t < T * n; t++) ids[t] = (t * 7919) % m.c.vocab;
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < reps; r++)
        for (int join = 0; join < 2; join++) {
            if (strcmp(mode, "both") && strcmp(mode, join ? "unit" : "alone")) continue;
            for (int i = 0; i < n; i++) docs[i] = (model_doc){ids + (size_t)i * T, T, i > 0 && join};
            double t = bench_now();
            if (model_forward_docs(&m, docs, n, m.c.n_layers, NULL, NULL, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            t = bench_now() - t;
            if (t < best[join]) best[join] = t;
        }
    for (int join = 0; join < 2; join++)
        if (best[join] < 1e30)
            printf("%s: %d documents of %d ids %s, 1 thread: %.0f tokens/s\n", m.dir, n, T, join ? "as one unit" : "each alone",
                   n * T / best[join]);
    model_free(&m);
    free(ids); free(docs);
    if (!strcmp(ck, "-")) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
