// run: `ibc run JOB.ini`, the whole job, collectively over MPI_COMM_WORLD (design.md).
//
// For each checkpoint in order: every rank maps the weights; the documents (rank 0 read and
// broadcast them) are precounted into identical label tables on every rank; work units of
// RUN_BLOCK documents go to ranks round-robin (unit u to rank u mod P); after every round the
// ranks agree on progress and on a stop request (SIGTERM, SIGUSR1); then counts merge by
// integer all-reduce and the results (HDF5, CSV) are rewritten. Checkpoints already complete
// in the results file are skipped, so running an interrupted job again resumes it.
//
// Errors: after every phase (corpus read, tokenize, precount, load, each round of the
// forward pass, merge, results write) the ranks agree through dist_agree, so any rank's
// failure ends every rank with the failing rank's code and message; main prints it once
// (rank 0) and exits 2. IBC_FAULT=PHASE:RANK injects a failure there (err.h).
#ifndef IBC_RUN_H
#define IBC_RUN_H

#include "ibc/err.h"
#include "ibc/job.h"

#define RUN_BLOCK 4

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
