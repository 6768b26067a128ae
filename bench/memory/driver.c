// bench/memory/driver: one MPI rank's memory and forward rate on a checkpoint (see
// bench/weights-memory.sh, which builds this file against `main` with -DIBC_OLD_API too).
//
//   driver write DIR smollm-bf16|pythia-f32   writes a random checkpoint of that shape
//   mpirun -np P driver run DIR DOCS T         every rank runs DOCS documents of T ids and
//                                              prints one line: rank, tokens/s and its
//                                              /proc/self/smaps_rollup figures (kB), read
//                                              during the last document's last layer
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench.h"
#ifndef IBC_OLD_API // the base tree has no blas.h: the script sets OPENBLAS_CORETYPE for both
#include "ibc/blas.h"
#endif
#include "ibc/ckpt.h"
#include "ibc/model.h"
#include "ibc/safetensors.h"

static char g_mem[256];

// Pss, Private_Clean, Private_Dirty of this process and its peak RSS, in kB. Every rank calls
// it at the same point (the last document's last layer): the barriers make the ranks read
// while all of them still map the checkpoint (else pages of a rank that has already unmapped
// show as another's private).
static void read_mem(void) {
    MPI_Barrier(MPI_COMM_WORLD);
    long pss = 0, pc = 0, pd = 0, hwm = 0;
    char line[256];
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "Pss: %ld", &pss);
        sscanf(line, "Private_Clean: %ld", &pc);
        sscanf(line, "Private_Dirty: %ld", &pd);
    }
    if (f) fclose(f);
    f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f)) sscanf(line, "VmHWM: %ld", &hwm);
    if (f) fclose(f);
    snprintf(g_mem, sizeof g_mem, "pss_kb %ld private_clean_kb %ld private_dirty_kb %ld hwm_kb %ld", pss, pc, pd, hwm);
    MPI_Barrier(MPI_COMM_WORLD);
}

typedef struct { int last_doc, L; } ctx_t;

#ifdef IBC_OLD_API
static int cb_one(void *ctx, int l, const float *h, int T, int d) {
    (void)h; (void)T; (void)d;
    ctx_t *c = ctx; // last_doc: 1 on the last document
    if (c->last_doc && l == c->L) read_mem();
    return 0;
}
#else
static int cb_docs(void *ctx, int doc, int l, const float *h, int T, int d) {
    (void)h; (void)T; (void)d;
    ctx_t *c = ctx;
    if (doc == c->last_doc && l == c->L) read_mem();
    return 0;
}
#endif

static int run(const char *dir, int ndocs, int T) {
    model m;
    ibc_err e = {0};
    if (model_load(dir, &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)ndocs * T);
    for (int i = 0; i < ndocs * T; i++) ids[i] = (int32_t)((i * 7919) % m.c.vocab);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = bench_now();
#ifdef IBC_OLD_API // main: one document per call; memory read at the last one's last layer
    for (int i = 0; i < ndocs; i++) {
        ctx_t c = {i == ndocs - 1, m.c.n_layers};
        if (model_forward(&m, ids + (size_t)i * T, T, cb_one, &c, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    }
#else // a batch, layer-major: one layer converted once for every document
    model_doc *docs = malloc(sizeof(model_doc) * (size_t)ndocs);
    for (int i = 0; i < ndocs; i++) docs[i] = (model_doc){ids + (size_t)i * T, T, 0};
    ctx_t c = {ndocs - 1, m.c.n_layers};
    if (model_forward_docs(&m, docs, ndocs, m.c.n_layers, cb_docs, &c, NULL, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    free(docs);
#endif
    double dt = bench_now() - t0;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    printf("rank %d tokens_per_s %.1f %s\n", rank, ndocs * T / dt, g_mem);
    free(ids);
    model_free(&m);
    return 0;
}

#ifndef IBC_OLD_API
// A random checkpoint of the shape; BF16 by rounding ckpt_write_random's F32 tensors.
static int write(const char *dir, const char *what) {
    model_config c = strncmp(what, "smollm", 6) == 0 ? bench_smollm() : bench_pythia();
    ibc_err e = {0};
    if (ckpt_write_random(dir, &c, 1, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    if (!strstr(what, "bf16")) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file f;
    if (st_open(path, &f, &e)) { fprintf(stderr, "%s\n", e.msg); return 2; }
    st_wtensor *w = calloc((size_t)f.n, sizeof *w);
    for (int i = 0; i < f.n; i++) { // ibc writes F32 8-aligned: the mapped data is the f32 array
        w[i] = (st_wtensor){f.tensors[i].name, f.tensors[i].ndim, {0}, (const float *)f.tensors[i].data};
        for (int k = 0; k < f.tensors[i].ndim; k++) w[i].shape[k] = f.tensors[i].shape[k];
    }
    int rc = st_write(path, w, f.n, ST_BF16, &e); // a new file renamed over the mapped one
    if (rc) fprintf(stderr, "%s\n", e.msg);
    free(w);
    st_close(&f);
    return rc ? 2 : 0;
}
#endif

int main(int argc, char **argv) {
#ifndef IBC_OLD_API
    blas_select(argv); // the kernels ibc itself runs (blas.h)
#endif
#ifndef IBC_OLD_API
    if (argc == 4 && !strcmp(argv[1], "write")) return write(argv[2], argv[3]);
#endif
    if (argc != 5 || strcmp(argv[1], "run")) { fprintf(stderr, "usage: driver run DIR DOCS T | write DIR KIND\n"); return 2; }
    MPI_Init(&argc, &argv);
    int rc = run(argv[2], atoi(argv[3]), atoi(argv[4]));
    MPI_Finalize();
    return rc;
}
