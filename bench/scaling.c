// bench/scaling: memory of the label tables (issue 4 §7, docs/scaling.md).
//
// A Zipf(1.1) token stream over 49152 ids, cut into documents of 512 tokens, with label
// sets X1..X4 and Y1..Y4. For POSITIONS (default 1M) it precounts the labels, allocates the
// tables at n = 100 for LAYERS hidden states, and prints per set the distinct labels, those
// seen twice or more (the only ones with count rows in precount mode), the bytes the formula
// predicts and the resident memory measured. Then it counts labels at the paper's 5.12M
// positions (10k documents x 512) without allocating rows, for the extrapolation.
//
//   usage: scaling [POSITIONS] [LAYERS]
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "ibc/blas.h"
#include "ibc/softent.h"

static double rss_mb(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    if (f) fclose(f);
    return rss * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

// Bytes held per label apart from rows: key 16, N_x 8, row index 8, hash slot 4 at a load
// between 0.35 and 0.7 (so 5.7-11.4 B; 8 taken).
#define LABEL_BYTES 40.0

static void count(int64_t positions, int layers, int allocate) {
    int T = 512, n = 100;
    int64_t docs = positions / T;
    zipf z = zipf_make(49152, 1.1);
    rng r;
    rng_seed(&r, 1);
    int32_t *ids = malloc(sizeof(int32_t) * T);
    ibc_err e = {0};
    se_acc acc;
    se_acc_init(&acc, allocate ? n : 2, 1, allocate ? layers : 1, 0xf, 0, &e);
    for (int64_t dcount = 0; dcount < docs; dcount++) {
        for (int t = 0; t < T; t++) ids[t] = zipf_draw(&z, &r);
        se_precount_doc(&acc, ids, T, -1, &e);
    }
    double before = rss_mb();
    se_precount_done(&acc, &e);
    if (allocate) // touch every row, as a run does
        for (int s = 0; s < acc.n_sets; s++)
            for (int64_t i = 0; i < acc.tables[s].n_rows * layers * n; i += 512) acc.tables[s].Cx[i] = 1;
    double after = rss_mb();
    printf("positions %lld (%lld docs x %d)%s\n", (long long)docs * T, (long long)docs, T,
           allocate ? "" : " (labels only)");
    printf("  set  distinct  with-rows  singletons%%\n");
    double labels = 0, rows = 0;
    for (int s = 0; s < acc.n_sets; s++) {
        const se_table *t = &acc.tables[s];
        printf("  %-4s %9lld %10lld %10.1f\n", acc.sets[s].name, (long long)t->n_labels, (long long)t->n_rows,
               100.0 * (t->n_labels - t->n_rows) / (double)t->n_labels);
        labels += (double)t->n_labels;
        rows += (double)t->n_rows;
    }
    printf("  total labels %.0f, rows %.0f\n", labels, rows);
    if (allocate) {
        double predicted = (labels * LABEL_BYTES + rows * 8.0 * n * layers) / 1e6;
        printf("  n = %d, %d layers: formula %.0f MB for rows (%.0f MB labels), measured rows %.0f MB\n", n,
               layers, rows * 8.0 * n * layers / 1e6, labels * LABEL_BYTES / 1e6, after - before);
        printf("  total predicted %.0f MB; streaming mode (every label a row) would need %.0f MB\n", predicted,
               (labels * LABEL_BYTES + labels * 8.0 * n * layers) / 1e6);
    }
    se_acc_free(&acc);
    free(ids);
    free(z.cdf);
}

int main(int argc, char **argv) {
    blas_select(argv); // the kernels ibc itself runs (blas.h)
    int64_t positions = argc > 1 ? atoll(argv[1]) : 1000000;
    int layers = argc > 2 ? atoi(argv[2]) : 33;
    count(positions, layers, 1);
    count(10000LL * 512, 1, 0);
    return 0;
}
