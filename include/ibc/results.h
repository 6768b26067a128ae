// results: what a job produces, on disk (docs/results.md has the schema).
//
//   DIR/NAME.h5     parallel HDF5: /run (job text, version, revision), /anchors/d<d>,
//                   /checkpoints/<name>/ {layers, N, H, I_X [4, layers], I_Y [4, layers],
//                   I_pref} with the summary and model as attributes
//   DIR/layers.csv  one row per checkpoint and tracked layer
//   DIR/summary.csv one row per complete checkpoint
// Every file is written under a temporary name and renamed only when all three are whole
// (all or nothing: a full disk leaves the previous results in place, complete and resumable).
// The HDF5 file is rewritten after each checkpoint from all results so far, so a killed job
// leaves the last complete state; results_load reads it back to resume.
// MPI: results_write is collective (parallel HDF5 over MPI_COMM_WORLD, errors agreed through
// dist_agree); the readers are not.
#ifndef IBC_RESULTS_H
#define IBC_RESULTS_H

#include <stdint.h>

#include "ibc/err.h"
#include "ibc/limits.h"
#include "ibc/softent.h"

#define RES_ORDERS SE_MAX_ORDER

typedef enum { RES_PENDING = 0, RES_COMPLETE = 1, RES_FAILED = 2 } res_status;

typedef struct {
    char name[128];
    res_status status;
    char error[1024];         // RES_FAILED: why
    char arch[16];
    int64_t params;
    int d, L;                 // width, blocks (hidden states 0..L)
    int n_layers;             // tracked hidden states
    int *layer_ids;           // [n_layers]
    int64_t n_documents, n_skipped, n_positions;
    double eps;
    double imbalance;         // busiest rank's document time over the mean: a measurement, not
                              // a result (differs from run to run and layout to layout)
    double *H;                // [n_layers]
    double *I_X, *I_Y;        // [RES_ORDERS, n_layers], NaN for orders not computed
    double *I_pref;           // [n_layers], NaN without preference labels
    se_summary sum;
    // Anchor ensemble (`[estimator] seeds`, n_seeds = K sets): H, I_X, I_Y, I_pref and sum
    // above are the means over the sets (for K = 1 the one set's numbers, bit for bit); each
    // set's own numbers are here when K > 1 (NULL otherwise; res_ckpt_alloc_seeds).
    int n_seeds;
    double *H_seeds;          // [K, n_layers]
    double *I_X_seeds;        // [K, RES_ORDERS, n_layers]
    double *I_Y_seeds;        // [K, RES_ORDERS, n_layers]
    double *I_pref_seeds;     // [K, n_layers]
    se_summary *sum_seeds;    // [K]
    // Data folds (`folds`, n_folds = F > 1; 0 and NULL when off): the summary of each fold's
    // documents alone (its mean over the anchor sets).
    int n_folds;
    se_summary *sum_folds;    // [F]
    // Label-row balance across ranks (issue 12): rows held per rank and bytes of outbox rows
    // sent per rank (dist_exchange), max and mean. Attributes of the checkpoint group; they
    // depend on the number of ranks, the numbers above do not.
    int64_t rows_max, sent_max;
    double rows_mean, sent_mean;
} res_ckpt;

typedef struct {
    int d, n;
    int K;                    // anchor sets (the job's seeds)
    uint64_t seeds[IBC_MAX_SEEDS]; // [K] their seeds
    float *W;                 // [K, n, d]: set s at W + s n d
    double eps;               // depends on n and d only: the same for every set
} res_anchors;

// Allocates the per-layer arrays of r for n_layers slots (NaN-filled; out of memory aborts).
void res_ckpt_alloc(res_ckpt *r, int n_layers);
void res_ckpt_free(res_ckpt *r);
// Per-set arrays for K anchor sets (NaN-filled), and per-fold summaries for F folds.
void res_ckpt_alloc_seeds(res_ckpt *r, int K);
void res_ckpt_alloc_folds(res_ckpt *r, int F);
// H, I_X, I_Y, I_pref and sum := the means over the K sets of the per-set arrays (se_mean_sd:
// K = 1 copies them). Spreads: res_ckpt_sd (NULL outputs skipped).
void res_ckpt_mean(res_ckpt *r);
// Sample sd over the anchor sets of each per-layer value (H [n_layers], I_X, I_Y [RES_ORDERS,
// n_layers], I_pref [n_layers]) and of each summary metric. Only for K > 1 (the per-set arrays).
void res_ckpt_sd(const res_ckpt *r, double *H, double *I_X, double *I_Y, double *I_pref, se_summary *sum);
// Standard error over documents of each summary metric from the folds: sd(fold values) /
// sqrt(F) (docs/results.md states the assumption); NaN without folds.
void res_ckpt_se(const res_ckpt *r, se_summary *se);

// Writes DIR/JOB.h5 (rank 0 writes the bytes) and, from rank 0, layers.csv and summary.csv.
// Collective: every rank calls it, with the same data. Returns the same code and message on
// every rank (the failing file named); on failure the previous files are untouched.
// Fault hook `write` (err.h) fires after the HDF5 file is written under its temporary name.
int results_write(const char *dir, const char *job_name, const char *job_text, const res_ckpt *r, int n,
                  const res_anchors *anchors, int n_anchors, ibc_err *err);

// Reads DIR/JOB.h5 if it exists (local: no communication; a caller on many ranks agrees after). *found = 0 if there is no file. Checkpoints whose status is
// complete or failed are returned in r (n_max entries, matched by name, others left pending).
// IBC_EINPUT if the file was made by a different job text.
int results_load(const char *dir, const char *job_name, const char *job_text, res_ckpt *r, int n, int *found,
                 ibc_err *err);

// Every checkpoint (complete or failed) of an HDF5 results file, in job order; *out malloc'd.
int results_read_all(const char *h5, res_ckpt **out, int *n, ibc_err *err);

#endif
