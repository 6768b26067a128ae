// run: `ibc run JOB.ini`, the whole job, collectively over MPI_COMM_WORLD (design.md).
//
// For each checkpoint in order: every rank maps the weights; the documents (rank 0 read and
// broadcast them) are precounted into identical label tables on every rank; documents are
// stacked into units (plan_units: one taller product per projection, model.h) fixed by the
// corpus alone; units go to ranks longest first, each to the rank with the fewest tokens so far
// (deterministic); a rank takes its list in rounds of `[parallel] round_units` (4) per OpenMP
// thread, the units of a round dynamically over its threads, each thread carrying whole units
// through the model and the estimator with single-threaded BLAS calls, so the bits do not
// depend on the rank or thread count; after every round the ranks agree on progress, failures
// and a stop request (SIGTERM, SIGUSR1) and on each rank's busy time (imbalance: the busiest
// over the mean, in the progress line and the results) and on an exchange of label-row sums to
// their owner ranks when an outbox could pass `[parallel] exchange_mb` (IBC_EXCHANGE_BYTES in
// tests; dist_exchange); then a last exchange, counts merge by integer all-reduce and the
// results (HDF5, CSV) are rewritten. Checkpoints already complete in the results file are
// skipped, so running an interrupted job again resumes it. IBC_TIMING=1 prints per-checkpoint
// timing lines (forward and its idle, estimator, precount, agreement, merge, results, peak
// memory per rank, the largest outbox) for bench/job.sh.
//
// Errors: after every phase (corpus read, tokenize, precount, load, each round of the forward
// pass, merge, results write) the ranks agree through dist_agree, so any rank's failure ends
// every rank with the failing rank's code and message; main prints it once (rank 0) and exits
// 2. IBC_FAULT=PHASE:RANK injects a failure there (err.h).
#ifndef IBC_RUN_H
#define IBC_RUN_H

#include "ibc/err.h"
#include "ibc/job.h"

typedef struct {
    int quiet;          // no progress lines
    double progress_s;  // seconds between progress lines (default 5)
    int only;           // >= 0: run only checkpoint `only` (0-based, a Slurm array task)
    const char *results; // results folder instead of output/name (NULL: the job's)
} run_opts;

// 0 on success; IBC_ESTOP when a signal stopped it after saving; else an error (the same
// code and message on every rank). Collective: every rank calls it.
int run_job(const job *j, const run_opts *o, ibc_err *err);

// Merges the results folders of separate runs of the same job (e.g. the tasks of a Slurm
// array) into the job's results folder, in the job's checkpoint order. Collective: every
// rank calls it (run it on one rank or many). IBC_EINPUT if a folder holds results of another job file.
int run_merge(const job *j, const char *const *dirs, int n_dirs, const char *out, ibc_err *err);

#include "ibc/results.h"
// The anchors of width d for this job (generated from its seed, or its file) and their eps.
// Local (no communication).
int run_anchors(const job *j, int d, res_anchors *a, ibc_err *err);

#endif
